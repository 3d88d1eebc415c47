//! SigV4 checking on the mock's side: the `Authorization` header of a recorded request is
//! recomputed from what was received (method, path, query, the headers it names as signed, the
//! raw body and its `x-amz-date`) with the mock's own copy of the credentials, and must match
//! byte for byte, as AWS checks it. A tampered body, path or header, a wrong secret or a
//! missing session token all fail.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::upstream::Recorded;

/// AWS refuses signatures more than 15 minutes away from its clock; the mock allows 5.
const MAX_SKEW: Duration = Duration::from_secs(300);

/// The credentials and scope a mock expects.
#[derive(Clone)]
pub struct Expected<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
}

impl std::fmt::Debug for Expected<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expected")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// Checks the SigV4 signature of `r`; `Err` says what is wrong (never a secret).
pub fn verify(r: &Recorded, expected: &Expected<'_>) -> Result<(), String> {
    let auth = header(r, "authorization")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("the authorization header is not AWS4-HMAC-SHA256")?;
    let mut credential = None;
    let mut signed_headers = None;
    for part in rest.split(", ") {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        }
    }
    let credential = credential.ok_or("no Credential in the authorization header")?;
    let signed_headers = signed_headers.ok_or("no SignedHeaders in the authorization header")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err("the credential scope is malformed".into());
    };
    if *key_id != expected.access_key_id {
        return Err("the request is signed with another access key id".into());
    }
    if (*region, *service) != (expected.region, expected.service) {
        return Err(format!("the request is signed for {region}/{service}"));
    }

    let amz_date = header(r, "x-amz-date")?;
    if !amz_date.starts_with(date) {
        return Err("x-amz-date does not match the credential scope's date".into());
    }
    let time = parse_amz_date(amz_date).ok_or("x-amz-date is not YYYYMMDDTHHMMSSZ")?;
    let skew = SystemTime::now()
        .duration_since(time)
        .unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err("x-amz-date is too far from now".into());
    }

    let names: Vec<&str> = signed_headers.split(';').collect();
    for required in ["host", "x-amz-date", "content-type"] {
        if !names.contains(&required) {
            return Err(format!("{required} is not signed"));
        }
    }
    match (
        expected.session_token,
        r.headers.get("x-amz-security-token"),
    ) {
        (Some(token), Some(sent)) if sent == token => {
            if !names.contains(&"x-amz-security-token") {
                return Err("x-amz-security-token is not signed".into());
            }
        }
        (Some(_), Some(_)) => return Err("x-amz-security-token is not the session token".into()),
        (Some(_), None) => return Err("x-amz-security-token is missing".into()),
        (None, Some(_)) => return Err("x-amz-security-token sent without a session token".into()),
        (None, None) => {}
    }

    let mut headers = Vec::with_capacity(names.len());
    for name in &names {
        headers.push((*name, header(r, name)?));
    }
    let query = if r.query.is_empty() {
        String::new()
    } else {
        format!("?{}", r.query)
    };
    let uri = format!("http://{}{}{query}", header(r, "host")?, r.path);
    let signable = SignableRequest::new(
        &r.method,
        uri,
        headers.into_iter(),
        SignableBody::Bytes(&r.raw_body),
    )
    .map_err(|e| format!("cannot rebuild the request: {e}"))?;
    let identity: Identity = Credentials::new(
        expected.access_key_id,
        expected.secret_access_key,
        expected.session_token.map(str::to_owned),
        None,
        "mock",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(expected.region)
        .name(expected.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot build signing parameters: {e}"))?
        .into();
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("cannot sign: {e}"))?
        .into_parts();
    let recomputed = instructions
        .headers()
        .find(|(name, _)| *name == "authorization")
        .map(|(_, value)| value.to_owned())
        .ok_or("the signer produced no authorization header")?;
    if recomputed != auth {
        return Err("the signature does not match the request".into());
    }
    Ok(())
}

fn header<'a>(r: &'a Recorded, name: &str) -> Result<&'a str, String> {
    r.headers
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("no {name} header"))
}

/// `YYYYMMDDTHHMMSSZ` as a time.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> { s.get(range)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates() {
        assert_eq!(
            parse_amz_date("20150830T123600Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_440_938_160))
        );
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_amz_date("20240229T235959Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_251_199))
        );
        for bad in [
            "2015-08-30T12:36:00Z",
            "20151330T123600Z",
            "20150830T123600",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }
}
