//! AWS Signature Version 4 for Bedrock requests, with the `aws-sigv4` crate.
//!
//! Signed: the method, the path and query as sent, the headers `host`, `content-type`,
//! `accept`, `x-amz-date` and (with temporary credentials) `x-amz-security-token`, and the
//! SHA-256 of the exact body bytes. The signer's default settings are those the AWS SDKs use
//! for Bedrock Runtime: the path is normalized and encoded again (a model id's `%3A` is signed
//! as `%253A`), no `x-amz-content-sha256` header.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request};
use http_body_util::Full;
use secrecy::ExposeSecret;

use crate::config::AwsCredentials;
use crate::provider::{ProviderError, upstream};

/// The SigV4 service name of Bedrock Runtime.
pub const SERVICE: &str = "bedrock";

/// Signs requests for one region with one set of credentials.
pub struct Signer {
    /// Holds the credentials (zeroized on drop, redacted in `Debug`).
    identity: Identity,
    region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(credentials: &AwsCredentials, region: &str) -> Self {
        let credentials = Credentials::new(
            credentials.access_key_id.expose_secret(),
            credentials.secret_access_key.expose_secret(),
            credentials
                .session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            None,
            "portcullis-config",
        );
        Self {
            identity: credentials.into(),
            region: region.to_owned(),
        }
    }

    /// Sets `host` and signs `request` (whose body is `body`) as of `time`, adding
    /// `x-amz-date`, `authorization` and, with a session token, `x-amz-security-token`
    /// (the last two marked sensitive).
    pub fn sign(
        &self,
        request: &mut Request<Full<Bytes>>,
        body: &[u8],
        time: SystemTime,
    ) -> Result<(), ProviderError> {
        let failed =
            |what: &str| ProviderError::Connect(format!("cannot sign the request: {what}"));
        let host = host_header(request.uri()).ok_or_else(|| failed("no host"))?;
        request.headers_mut().insert(HOST, host);
        let uri = request.uri().to_string();
        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers,
            SignableBody::Bytes(body),
        )
        .map_err(|_| failed("invalid request"))?;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(SERVICE)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| failed("invalid parameters"))?
            .into();
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|_| failed("invalid credentials or headers"))?
            .into_parts();
        let (headers, _query) = instructions.into_parts();
        for header in headers {
            // The signature and the session token are both credentials.
            let secret = header.sensitive()
                || header.name() == http::header::AUTHORIZATION.as_str()
                || header.name() == "x-amz-security-token";
            let value = if secret {
                upstream::secret_header(header.value())
            } else {
                HeaderValue::from_str(header.value()).ok()
            };
            let name = http::HeaderName::from_bytes(header.name().as_bytes())
                .map_err(|_| failed("invalid header name"))?;
            request
                .headers_mut()
                .insert(name, value.ok_or_else(|| failed("invalid header value"))?);
        }
        Ok(())
    }
}

/// The `host` header for `uri`: its authority without a default port, as the signer and
/// HTTP clients write it.
fn host_header(uri: &http::Uri) -> Option<HeaderValue> {
    let authority = uri.authority()?;
    let default_port = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    let host = if authority.port_u16().is_some() && authority.port_u16() != default_port {
        authority.as_str()
    } else {
        authority.host()
    };
    HeaderValue::from_str(host).ok()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use http::Method;
    use secrecy::SecretString;

    use super::*;

    fn signer(token: Option<&str>) -> Signer {
        Signer::new(
            &AwsCredentials {
                access_key_id: SecretString::from("AKIDEXAMPLE"),
                secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                session_token: token.map(SecretString::from),
            },
            "us-east-1",
        )
    }

    fn request(uri: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
        let mut r = Request::new(Full::new(Bytes::from_static(body)));
        *r.method_mut() = Method::POST;
        *r.uri_mut() = uri.parse().unwrap();
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }

    /// 2015-08-30T12:36:00Z, the date of AWS's published SigV4 examples.
    fn time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    #[test]
    fn signs_with_date_host_and_token() {
        let mut r = request(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/a%3A0/converse",
            b"{}",
        );
        signer(Some("TOKEN")).sign(&mut r, b"{}", time()).unwrap();
        let h = r.headers();
        assert_eq!(h["host"], "bedrock-runtime.us-east-1.amazonaws.com");
        assert_eq!(h["x-amz-date"], "20150830T123600Z");
        assert_eq!(h["x-amz-security-token"], "TOKEN");
        assert!(h["x-amz-security-token"].is_sensitive());
        let auth = h["authorization"].to_str().unwrap();
        assert!(h["authorization"].is_sensitive());
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
    }

    #[test]
    fn the_signature_covers_body_path_and_credentials() {
        let sig = |uri: &str, body: &'static [u8], token: Option<&str>| {
            let mut r = request(uri, body);
            signer(token).sign(&mut r, body, time()).unwrap();
            r.headers()["authorization"].to_str().unwrap().to_owned()
        };
        let base = "http://127.0.0.1:8080/model/m/converse";
        let a = sig(base, b"{}", None);
        assert!(
            a.contains("SignedHeaders=content-type;host;x-amz-date,"),
            "{a}"
        );
        assert_eq!(a, sig(base, b"{}", None), "deterministic for a given time");
        assert_ne!(a, sig(base, b"{ }", None));
        assert_ne!(
            a,
            sig("http://127.0.0.1:8080/model/n/converse", b"{}", None)
        );
        assert_ne!(a, sig(base, b"{}", Some("T")));
    }

    #[test]
    fn host_keeps_only_non_default_ports() {
        let h = |u: &str| host_header(&u.parse().unwrap()).unwrap();
        assert_eq!(h("https://a.example:443/x"), "a.example");
        assert_eq!(h("http://a.example:80/x"), "a.example");
        assert_eq!(h("http://127.0.0.1:4000/x"), "127.0.0.1:4000");
        assert_eq!(h("https://a.example/x"), "a.example");
    }

    #[test]
    fn debug_hides_credentials() {
        let printed = format!("{:?}", signer(Some("TOKEN-CANARY")));
        assert!(!printed.contains("TOKEN-CANARY") && !printed.contains("EXAMPLEKEY"));
    }
}
