//! What an upstream's response headers say about its capacity: how long to wait before asking
//! again (`Retry-After`, `retry-after-ms`) and how much of its rate limits is left (OpenAI's,
//! Azure's and most OpenAI-compatible servers' `x-ratelimit-*`, Anthropic's
//! `anthropic-ratelimit-*`).
//!
//! Every HTTP adapter sends through [`super::upstream::send`], which hands the response headers
//! to [`record`]. Dispatch runs each attempt inside [`observe`], which collects what the last
//! response said, so routing learns it without any adapter passing it along. Outside
//! [`observe`] (key fetches, identity providers) recording does nothing.

use std::cell::Cell;
use std::future::Future;
use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// The longest wait a `Retry-After` is believed for; anything longer is capped to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The longest rate-limit reset believed (daily limits exist).
const MAX_RESET: Duration = Duration::from_secs(86_400);

tokio::task_local! {
    static HINTS: Cell<Hints>;
}

/// One rate limit as the upstream reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Remaining {
    pub remaining: u64,
    /// The limit itself, when the upstream says it.
    pub limit: Option<u64>,
    /// How long until the limit is whole again, when the upstream says it.
    pub reset: Option<Duration>,
}

/// What one upstream response said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hints {
    pub retry_after: Option<Duration>,
    pub requests: Option<Remaining>,
    pub tokens: Option<Remaining>,
}

impl Hints {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Runs `attempt`, returning its output with the hints of the last upstream response it saw.
pub async fn observe<F: Future>(attempt: F) -> (F::Output, Hints) {
    let mut scoped = std::pin::pin!(HINTS.scope(Cell::new(Hints::default()), attempt));
    let output = (&mut scoped).await;
    let hints = scoped
        .as_mut()
        .take_value()
        .map(Cell::into_inner)
        .unwrap_or_default();
    (output, hints)
}

/// Keeps what `headers` say for the [`observe`] around the current attempt, if any.
pub(crate) fn record(headers: &HeaderMap) {
    let _ = HINTS.try_with(|cell| {
        let hints = parse(headers, SystemTime::now());
        if !hints.is_empty() {
            cell.set(hints);
        }
    });
}

/// How a vendor writes when a limit resets.
#[derive(Clone, Copy)]
enum Reset {
    /// A Go duration from now (OpenAI: `6m0s`).
    Go,
    /// An RFC 3339 time (Anthropic).
    Rfc3339,
}

/// The headers of one rate limit, as one vendor names them.
struct Names {
    remaining: &'static str,
    limit: &'static str,
    reset: &'static str,
    reset_format: Reset,
}

/// OpenAI's names (also Azure's and most OpenAI-compatible servers'), then Anthropic's.
const REQUESTS: [Names; 2] = [
    Names {
        remaining: "x-ratelimit-remaining-requests",
        limit: "x-ratelimit-limit-requests",
        reset: "x-ratelimit-reset-requests",
        reset_format: Reset::Go,
    },
    Names {
        remaining: "anthropic-ratelimit-requests-remaining",
        limit: "anthropic-ratelimit-requests-limit",
        reset: "anthropic-ratelimit-requests-reset",
        reset_format: Reset::Rfc3339,
    },
];

const TOKENS: [Names; 2] = [
    Names {
        remaining: "x-ratelimit-remaining-tokens",
        limit: "x-ratelimit-limit-tokens",
        reset: "x-ratelimit-reset-tokens",
        reset_format: Reset::Go,
    },
    Names {
        remaining: "anthropic-ratelimit-tokens-remaining",
        limit: "anthropic-ratelimit-tokens-limit",
        reset: "anthropic-ratelimit-tokens-reset",
        reset_format: Reset::Rfc3339,
    },
];

/// Reads the hints of one response. `now` turns absolute times (an HTTP date in `Retry-After`,
/// Anthropic's RFC 3339 resets) into waits.
pub fn parse(headers: &HeaderMap, now: SystemTime) -> Hints {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let number = |name: &str| text(name).and_then(|v| v.trim().parse::<u64>().ok());
    let retry_after = text("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| text("retry-after").and_then(|v| retry_after(v, now)))
        .map(|d| d.min(MAX_RETRY_AFTER));
    let window = |vendors: &[Names; 2]| {
        vendors.iter().find_map(|n| {
            Some(Remaining {
                remaining: number(n.remaining)?,
                limit: number(n.limit),
                reset: text(n.reset).and_then(|v| match n.reset_format {
                    Reset::Go => go_duration(v),
                    Reset::Rfc3339 => until_rfc3339(v, now),
                }),
            })
        })
    };
    Hints {
        retry_after,
        requests: window(&REQUESTS),
        tokens: window(&TOKENS),
    }
}

/// `Retry-After`: delta-seconds or an HTTP date.
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn until_rfc3339(value: &str, now: SystemTime) -> Option<Duration> {
    let at =
        time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    let at = SystemTime::from(at);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A Go-style duration as OpenAI writes its resets: `1s`, `6m0s`, `20ms`, `1h2m3.5s`.
fn go_duration(value: &str) -> Option<Duration> {
    let mut rest = value.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let amount: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += amount * scale;
    }
    // Whole microseconds: `0.02` seconds is not exactly 20 ms in binary.
    let micros = (total.min(MAX_RESET.as_secs_f64()) * 1e6).round();
    (micros.is_finite() && micros >= 0.0).then(|| Duration::from_micros(micros as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn retry_after_in_its_three_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let h = |pairs| parse(&headers(pairs), now).retry_after;
        assert_eq!(h(&[("retry-after", "7")]), Some(Duration::from_secs(7)));
        assert_eq!(
            h(&[("retry-after", "7"), ("retry-after-ms", "1500")]),
            Some(Duration::from_millis(1500)),
            "the precise form wins"
        );
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            h(&[("retry-after", "Sun, 06 Nov 1994 08:49:47 GMT")]),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            h(&[("retry-after", "Sun, 06 Nov 1994 08:49:00 GMT")]),
            Some(Duration::ZERO),
            "a date in the past: no wait"
        );
        assert_eq!(h(&[("retry-after", "soon")]), None);
        assert_eq!(h(&[("retry-after-ms", "-5")]), None);
        assert_eq!(h(&[("retry-after", "99999999")]), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn openai_rate_limit_headers() {
        let hints = parse(
            &headers(&[
                ("x-ratelimit-limit-requests", "60"),
                ("x-ratelimit-remaining-requests", "59"),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-limit-tokens", "150000"),
                ("x-ratelimit-remaining-tokens", "149984"),
                ("x-ratelimit-reset-tokens", "6m0.5s"),
            ]),
            SystemTime::now(),
        );
        assert_eq!(
            hints.requests,
            Some(Remaining {
                remaining: 59,
                limit: Some(60),
                reset: Some(Duration::from_secs(1)),
            })
        );
        assert_eq!(
            hints.tokens,
            Some(Remaining {
                remaining: 149_984,
                limit: Some(150_000),
                reset: Some(Duration::from_millis(360_500)),
            })
        );
        assert_eq!(hints.retry_after, None);
    }

    #[test]
    fn anthropic_rate_limit_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let hints = parse(
            &headers(&[
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "10"),
                // 1_800_000_000 is 2027-01-15T08:00:00Z.
                ("anthropic-ratelimit-requests-reset", "2027-01-15T08:00:30Z"),
                ("anthropic-ratelimit-tokens-remaining", "5000"),
            ]),
            now,
        );
        assert_eq!(
            hints.requests,
            Some(Remaining {
                remaining: 10,
                limit: Some(50),
                reset: Some(Duration::from_secs(30)),
            })
        );
        assert_eq!(
            hints.tokens.map(|t| (t.remaining, t.limit)),
            Some((5000, None))
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(go_duration(""), None);
        assert_eq!(go_duration("5 parsecs"), None);
        assert_eq!(go_duration("s"), None);
    }

    #[tokio::test]
    async fn observe_sees_the_last_response_of_its_attempt_only() {
        record(&headers(&[("retry-after", "3")])); // outside: ignored, no panic
        let ((), hints) = observe(async {
            record(&headers(&[("retry-after", "1")]));
            tokio::task::yield_now().await;
            record(&headers(&[("content-type", "application/json")])); // says nothing: kept
            record(&headers(&[("retry-after", "2")]));
        })
        .await;
        assert_eq!(hints.retry_after, Some(Duration::from_secs(2)));
        let ((), none) = observe(async {}).await;
        assert!(none.is_empty());
    }
}
