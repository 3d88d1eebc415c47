//! A chaos upstream: a [`MockUpstream`] driven by a script of failures. Each request takes the
//! next [`Chaos`] behaviour of the script (then a default, healthy unless told otherwise), so a
//! test can say "the first request gets a 503, the second a reset, then all is well". Answers
//! are in OpenAI's chat-completions wire format: JSON bodies, and SSE `data:` chunks ending with
//! `data: [DONE]` when a stream ends well. The mock records every request, and the script
//! records which behaviour each request got, in the order they arrived.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::upstream::{
    MockUpstream, Recorded, Reply, SseEnd, chat_chunk, chat_events, model_of, openai_reply,
};

/// How the chaos upstream answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chaos {
    /// Answers as OpenAI does ([`openai_reply`]): JSON, or a stream ending with `[DONE]`.
    Healthy,
    /// An error status with OpenAI's error body (`{"error":{"message","type","param","code"}}`)
    /// and these extra headers (`Retry-After`, ...).
    Status {
        status: u16,
        headers: Vec<(String, String)>,
    },
    /// Waits, then behaves as the inner behaviour says.
    Delay(Duration, Box<Chaos>),
    /// Reads the request, then resets the connection (TCP RST) without any HTTP answer.
    Reset,
    /// A 200 stream of this many valid chunks, then the connection is cut: no finish reason,
    /// no `[DONE]`, and a chunked body that never ends properly.
    TruncatedStream(usize),
    /// A 200 stream of this many valid chunks whose body then ends properly, but without the
    /// finish chunk or `[DONE]`: an upstream that stopped early and closed cleanly.
    ClosedStream(usize),
    /// A 200 stream of `after` valid chunks, then a `data:` line that is not JSON, then the
    /// rest of a valid stream (the finish chunk and `[DONE]`).
    MalformedSse { after: usize },
    /// A valid stream of `chunks` content chunks, the finish chunk and `[DONE]`, each event
    /// arriving `chunk_every` after the previous one (the first too).
    SlowDrip {
        chunk_every: Duration,
        chunks: usize,
    },
    /// Reads the request and never answers.
    Hang,
}

impl Chaos {
    /// An error status with OpenAI's error body.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            headers: Vec::new(),
        }
    }

    /// This behaviour with the header `name: value` added (statuses only; others are as they
    /// are, since they never send headers of their own choosing).
    #[must_use]
    pub fn with_header(self, name: &str, value: &str) -> Self {
        match self {
            Self::Status {
                status,
                mut headers,
            } => {
                headers.push((name.to_owned(), value.to_owned()));
                Self::Status { status, headers }
            }
            other => other,
        }
    }

    /// This behaviour after a delay.
    #[must_use]
    pub fn after(self, delay: Duration) -> Self {
        Self::Delay(delay, Box::new(self))
    }

    /// The reply to `request`. Stream behaviours answer with a stream whether or not the
    /// request asked for one (a gateway must cope with that too).
    pub fn reply(&self, request: &Recorded) -> Reply {
        let model = model_of(request);
        match self {
            Self::Healthy => openai_reply(request),
            Self::Status { status, headers } => headers.iter().fold(
                Reply::json(*status, error_body(*status)),
                |reply, (name, value)| reply.with_header(name, value),
            ),
            Self::Delay(delay, then) => then.reply(request).after(*delay),
            Self::Reset => Reply::Reset,
            Self::Hang => Reply::Hang,
            Self::TruncatedStream(n) => Reply::Sse {
                events: chat_events(&model, &texts(*n)),
                delay: Duration::from_millis(1),
                end: SseEnd::Abort,
            },
            Self::ClosedStream(n) => Reply::Sse {
                events: chat_events(&model, &texts(*n)),
                delay: Duration::from_millis(1),
                end: SseEnd::Close,
            },
            Self::MalformedSse { after } => {
                let mut events = chat_events(&model, &texts(*after));
                events.push("{not json".to_owned());
                events.extend(finish(&model));
                Reply::Sse {
                    events,
                    delay: Duration::from_millis(1),
                    end: SseEnd::Close,
                }
            }
            Self::SlowDrip {
                chunk_every,
                chunks,
            } => {
                let mut events = chat_events(&model, &texts(*chunks));
                events.extend(finish(&model));
                Reply::Sse {
                    events,
                    delay: *chunk_every,
                    end: SseEnd::Close,
                }
            }
        }
    }
}

/// `n` words of content: "w0 ", "w1 ", ...
fn texts(n: usize) -> Vec<&'static str> {
    const WORDS: [&str; 8] = ["w0 ", "w1 ", "w2 ", "w3 ", "w4 ", "w5 ", "w6 ", "w7 "];
    WORDS.iter().copied().cycle().take(n).collect()
}

/// The end of a good chat stream: the finish chunk and `[DONE]`.
fn finish(model: &str) -> [String; 2] {
    [
        chat_chunk(model, json!({}), Some("stop"), true),
        "[DONE]".to_owned(),
    ]
}

/// OpenAI's error body for `status`, with the `type` and `code` OpenAI gives that class.
fn error_body(status: u16) -> Value {
    let (kind, code) = match status {
        429 => ("requests", json!("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", Value::Null),
        _ => ("server_error", Value::Null),
    };
    json!({"error": {
        "message": format!("chaos upstream: HTTP {status}"),
        "type": kind, "param": null, "code": code,
    }})
}

/// The running chaos upstream; it stops when dropped.
#[derive(Debug)]
pub struct ChaosUpstream {
    mock: MockUpstream,
    script: Arc<Mutex<VecDeque<Chaos>>>,
    served: Arc<Mutex<Vec<Chaos>>>,
}

impl ChaosUpstream {
    /// An upstream that answers with `script`, one behaviour per request, then is healthy.
    pub async fn start(script: impl IntoIterator<Item = Chaos>) -> anyhow::Result<Self> {
        Self::with_default(script, Chaos::Healthy).await
    }

    /// An upstream that answers with `script`, then with `default` for ever.
    pub async fn with_default(
        script: impl IntoIterator<Item = Chaos>,
        default: Chaos,
    ) -> anyhow::Result<Self> {
        let script = Arc::new(Mutex::new(script.into_iter().collect::<VecDeque<_>>()));
        let served = Arc::new(Mutex::new(Vec::new()));
        let (next, log) = (script.clone(), served.clone());
        let mock = MockUpstream::start(move |request| {
            // One lock for taking and logging, so the log is in the order of arrival.
            let Ok(mut script) = next.lock() else {
                return default.reply(request);
            };
            let behaviour = script.pop_front().unwrap_or_else(|| default.clone());
            let reply = behaviour.reply(request);
            if let Ok(mut log) = log.lock() {
                log.push(behaviour);
            }
            reply
        })
        .await?;
        Ok(Self {
            mock,
            script,
            served,
        })
    }

    /// Appends `behaviour` to the script.
    pub fn push(&self, behaviour: Chaos) {
        if let Ok(mut script) = self.script.lock() {
            script.push_back(behaviour);
        }
    }

    /// The behaviour each request got, in the order the requests arrived.
    pub fn served(&self) -> Vec<Chaos> {
        self.served.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT/v1`, the base URL to configure.
    pub fn base_url(&self) -> String {
        self.mock.base_url()
    }

    /// How many requests reached the upstream.
    pub fn count(&self) -> usize {
        self.mock.count()
    }

    /// The requests, as the gateway sent them.
    pub fn requests(&self) -> Vec<Recorded> {
        self.mock.requests()
    }

    /// Requests whose reply the gateway abandoned before it was complete.
    pub fn abandoned(&self) -> usize {
        self.mock.abandoned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn request(stream: bool) -> Recorded {
        Recorded {
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            query: String::new(),
            headers: Default::default(),
            body: json!({"model": "m1", "stream": stream}),
            raw_body: Default::default(),
        }
    }

    fn events(reply: Reply) -> (Vec<String>, Duration, SseEnd) {
        match reply {
            Reply::Sse { events, delay, end } => (events, delay, end),
            other => panic!("not a stream: {other:?}"),
        }
    }

    fn parses(event: &str) -> bool {
        serde_json::from_str::<Value>(event).is_ok()
    }

    #[test]
    fn statuses_carry_openai_error_bodies_and_their_headers() {
        let reply = Chaos::status(429)
            .with_header("retry-after", "1")
            .reply(&request(false));
        let Reply::WithHeaders(headers, inner) = reply else {
            panic!("no headers");
        };
        assert_eq!(headers, vec![("retry-after".into(), "1".into())]);
        let Reply::Json { status, body } = *inner else {
            panic!("not JSON");
        };
        assert_eq!(status, 429);
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert!(body["error"]["message"].is_string());
        assert_eq!(
            error_body(400)["error"]["type"],
            "invalid_request_error",
            "a 400 is the request's fault"
        );
        assert_eq!(error_body(503)["error"]["type"], "server_error");
    }

    #[test]
    fn truncated_streams_are_valid_chunks_cut_before_done() {
        let (events, _, end) = events(Chaos::TruncatedStream(3).reply(&request(true)));
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| parses(e)));
        assert!(events[0].contains(r#""model":"m1""#));
        assert_eq!(end, SseEnd::Abort);
    }

    #[test]
    fn malformed_streams_hold_one_bad_event_among_good_ones() {
        let (events, _, end) = events(Chaos::MalformedSse { after: 2 }.reply(&request(true)));
        let bad: Vec<usize> = (0..events.len()).filter(|&i| !parses(&events[i])).collect();
        assert_eq!(bad, vec![2, 4], "the bad event, and [DONE]: {events:?}");
        assert_eq!(events[4], "[DONE]");
        assert_eq!(end, SseEnd::Close);
    }

    #[test]
    fn slow_drips_are_complete_streams_spaced_out() {
        let every = Duration::from_millis(70);
        let (events, delay, end) = events(
            Chaos::SlowDrip {
                chunk_every: every,
                chunks: 10,
            }
            .reply(&request(true)),
        );
        assert_eq!(events.len(), 12, "10 chunks, the finish chunk, [DONE]");
        assert!(events[10].contains(r#""finish_reason":"stop""#));
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        assert_eq!((delay, end), (every, SseEnd::Close));
    }

    #[test]
    fn delays_wrap_the_behaviour_they_delay() {
        let d = Duration::from_millis(5);
        let reply = Chaos::Reset.after(d).reply(&request(false));
        assert!(
            matches!(reply, Reply::Delay(x, inner) if x == d && matches!(*inner, Reply::Reset))
        );
    }

    /// Sends one chat request on a new connection and reads until the upstream closes it.
    async fn exchange(upstream: &ChaosUpstream) -> std::io::Result<String> {
        let body = json!({"model": "m1", "messages": []}).to_string();
        let addr = upstream.mock.addr;
        let mut socket = tokio::net::TcpStream::connect(addr).await?;
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await?;
        socket.write_all(body.as_bytes()).await?;
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    #[tokio::test]
    async fn the_script_is_served_in_order_then_the_default() {
        let upstream = ChaosUpstream::start([Chaos::Reset, Chaos::status(503)])
            .await
            .unwrap();
        let reset = exchange(&upstream).await;
        assert_eq!(
            reset.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionReset),
            "a reset is a TCP RST, with no HTTP answer"
        );
        let failed = exchange(&upstream).await.unwrap();
        assert!(failed.starts_with("HTTP/1.1 503"), "{failed}");
        assert!(failed.contains(r#""type":"server_error""#), "{failed}");
        let healthy = exchange(&upstream).await.unwrap();
        assert!(healthy.starts_with("HTTP/1.1 200"), "{healthy}");
        assert!(healthy.contains("Hello world"), "{healthy}");
        assert_eq!(
            upstream.served(),
            vec![Chaos::Reset, Chaos::status(503), Chaos::Healthy]
        );
        assert_eq!(upstream.count(), 3);
        upstream.push(Chaos::status(400));
        let refused = exchange(&upstream).await.unwrap();
        assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    }
}
