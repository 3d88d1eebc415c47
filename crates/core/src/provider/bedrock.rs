//! Adapter for Amazon Bedrock Runtime: chat through `Converse` and `ConverseStream`,
//! embeddings through `InvokeModel` (Titan and Cohere models). It owns URLs, SigV4 signing
//! and HTTP; the body mapping lives in [`crate::translate::bedrock`].
//!
//! Requests go to `{base}/model/{modelId}/converse`, `/converse-stream` and `/invoke`, the model
//! id percent-encoded as one path segment (ids hold `:`, ARNs also `/`). Every request is signed
//! (see [`signing`]). Error answers carry their type in `x-amzn-errortype`
//! (`ThrottlingException:http://...`; the part before `:` counts) or in the body's `__type`,
//! and a `{"message": ...}` body.

pub mod events;
mod signing;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use http::header::{ACCEPT, HeaderMap};
use http::{HeaderValue, Response};
use hyper::body::Incoming;
use portcullis_types::Usage;
use portcullis_types::openai::{ChatCompletionRequest, EmbeddingRequest};
use serde::Serialize;

use super::client::HttpClient;
use super::{Operation, Provider, ProviderError, ProviderResponse, upstream};
use crate::config::BedrockConfig;
use crate::pipeline::ApiRequest;
use crate::request_id;
use crate::translate::bedrock::embeddings::{self, Family};
use crate::translate::bedrock::{self as translate, ConverseResponse, StreamTranslator};

/// Titan embeds one text per call: this many calls run at once for an array input.
const TITAN_CONCURRENCY: usize = 4;

const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

pub struct Bedrock {
    base_url: String,
    signer: signing::Signer,
    client: HttpClient,
}

impl std::fmt::Debug for Bedrock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bedrock")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl Bedrock {
    pub fn new(config: &BedrockConfig, client: HttpClient) -> Self {
        Self {
            base_url: config.base_url.clone(),
            signer: signing::Signer::new(&config.credentials, &config.region),
            client,
        }
    }

    /// Signs and sends a POST of `body` to `{base}/model/{model}/{action}`; a non-success answer
    /// becomes its classified error.
    async fn post(
        &self,
        model: &str,
        action: &str,
        body: Vec<u8>,
        accept: &'static str,
    ) -> Result<Response<Incoming>, ProviderError> {
        let uri = upstream::uri(
            &self.base_url,
            &format!("/model/{}/{action}", encode_segment(model)),
        );
        let body = Bytes::from(body);
        let mut request = upstream::post_json(&uri, body.clone(), false);
        request
            .headers_mut()
            .insert(ACCEPT, HeaderValue::from_static(accept));
        self.signer.sign(&mut request, &body, SystemTime::now())?;
        let response = upstream::send(&self.client, request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let kind = error_type(response.headers());
        let body = upstream::read_error_body(response.into_body()).await;
        let kind = kind.or_else(|| body_error_type(&body));
        Err(translate::classify_error(
            Some(status),
            kind.as_deref(),
            &body,
        ))
    }

    async fn chat(
        &self,
        req: &ChatCompletionRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        let model = req.model.as_str();
        let body = encode(&translate::converse_request(req, model).map_err(ProviderError::from)?)?;
        let action = if stream {
            "converse-stream"
        } else {
            "converse"
        };
        let accept = if stream {
            EVENT_STREAM
        } else {
            "application/json"
        };
        let response = self.post(model, action, body, accept).await?;
        let id = completion_id(response.headers());
        let created = now();
        if stream {
            let translator = StreamTranslator::new(id, model, created);
            return Ok(ProviderResponse::Stream(events::events(
                response.into_body(),
                translator,
            )));
        }
        let bytes = upstream::read_body(response.into_body()).await?;
        let parsed: ConverseResponse = serde_json::from_slice(&bytes).map_err(|_| {
            ProviderError::InvalidResponse("the Converse response is malformed".into())
        })?;
        let body = translate::chat_response(&parsed, &id, model, created);
        Ok(ProviderResponse::Complete {
            body: Bytes::from(encode(&body)?),
            usage: Some(parsed.usage()),
        })
    }

    async fn embed(&self, req: &EmbeddingRequest) -> Result<ProviderResponse, ProviderError> {
        let model = req.model.as_str();
        let family = Family::of(model).ok_or(ProviderError::Unsupported(
            "embeddings with this Bedrock model (Titan and Cohere embedding models only)",
        ))?;
        let texts = embeddings::inputs(req).map_err(ProviderError::from)?;
        let base64 = embeddings::wants_base64(req).map_err(ProviderError::from)?;
        let (vectors, tokens) = match family {
            Family::Titan => {
                let calls: Vec<_> = texts
                    .iter()
                    .map(|text| embeddings::titan_request(text, req).map_err(ProviderError::from))
                    .collect::<Result<_, _>>()?;
                let answers: Vec<(Vec<f64>, u64)> = stream::iter(calls)
                    .map(|body| async move {
                        let (bytes, _) = self.invoke(model, &body).await?;
                        embeddings::titan_response(&bytes)
                    })
                    .buffered(TITAN_CONCURRENCY)
                    .try_collect()
                    .await?;
                let tokens = answers.iter().map(|(_, t)| *t).sum();
                (answers.into_iter().map(|(v, _)| v).collect(), tokens)
            }
            Family::Cohere => {
                let mut vectors = Vec::with_capacity(texts.len());
                let mut tokens = 0u64;
                for batch in texts.chunks(embeddings::COHERE_MAX_TEXTS) {
                    let body =
                        embeddings::cohere_request(batch, req).map_err(ProviderError::from)?;
                    let (bytes, counted) = self.invoke(model, &body).await?;
                    let got = embeddings::cohere_response(&bytes)?;
                    if got.len() != batch.len() {
                        return Err(ProviderError::InvalidResponse(
                            "the Cohere response has a different number of vectors than texts"
                                .into(),
                        ));
                    }
                    vectors.extend(got);
                    tokens = tokens.saturating_add(counted.unwrap_or(0));
                }
                (vectors, tokens)
            }
        };
        let body = embeddings::embeddings_response(&vectors, model, tokens, base64);
        Ok(ProviderResponse::Complete {
            body: Bytes::from(encode(&body)?),
            usage: Some(Usage::new(tokens, 0)),
        })
    }

    /// One `InvokeModel` call: the answer's body and Bedrock's input token count header.
    async fn invoke(
        &self,
        model: &str,
        body: &impl Serialize,
    ) -> Result<(Bytes, Option<u64>), ProviderError> {
        let response = self
            .post(model, "invoke", encode(body)?, "application/json")
            .await?;
        let tokens = response
            .headers()
            .get("x-amzn-bedrock-input-token-count")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let bytes = upstream::read_body(response.into_body()).await?;
        Ok((bytes, tokens))
    }
}

#[async_trait::async_trait]
impl Provider for Bedrock {
    fn kind(&self) -> &'static str {
        "bedrock"
    }

    fn supports(&self, op: Operation) -> bool {
        matches!(op, Operation::Chat | Operation::Embedding)
    }

    async fn call(
        &self,
        op: Operation,
        request: &ApiRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        match (op, request) {
            (Operation::Chat, ApiRequest::Chat(req)) => self.chat(req, stream).await,
            (Operation::Embedding, ApiRequest::Embedding(req)) => self.embed(req).await,
            _ => Err(ProviderError::Unsupported(op.endpoint())),
        }
    }
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, ProviderError> {
    serde_json::to_vec(value)
        .map_err(|_| ProviderError::InvalidResponse("cannot encode the request".into()))
}

/// The error type of `x-amzn-errortype` (`ValidationException:http://...` → the part before
/// the first `:`).
fn error_type(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("x-amzn-errortype")?.to_str().ok()?;
    let kind = raw.split(':').next()?.trim();
    (!kind.is_empty()).then(|| kind.chars().take(100).collect())
}

/// The error type of a body's `__type` (`com.amazon.bedrock#ValidationException` → the part
/// after `#`) or `code`.
fn body_error_type(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "__type", alias = "code")]
        kind: Option<String>,
    }
    let kind = serde_json::from_slice::<Typed>(body).ok()?.kind?;
    let kind = kind.rsplit('#').next()?.split(':').next()?.trim();
    (!kind.is_empty()).then(|| kind.chars().take(100).collect())
}

/// `chatcmpl-` and Bedrock's request id (`x-amzn-requestid`), or a generated id without one.
fn completion_id(headers: &HeaderMap) -> String {
    let upstream_id = headers
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()));
    match upstream_id {
        Some(id) => format!("chatcmpl-{id}"),
        None => {
            let generated = request_id::generate();
            format!(
                "chatcmpl-{}",
                generated.strip_prefix("req_").unwrap_or(&generated)
            )
        }
    }
}

/// `segment` percent-encoded as one URI path segment: every byte but RFC 3986's unreserved
/// characters is encoded (`:` → `%3A`, `/` → `%2F`), as the AWS SDKs encode model ids.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() + 8);
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0xf)]));
        }
    }
    out
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_are_one_encoded_segment() {
        assert_eq!(
            encode_segment("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
        );
        assert_eq!(
            encode_segment(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b"
            ),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3-2-1b"
        );
        assert_eq!(encode_segment("a b?é"), "a%20b%3F%C3%A9");
    }

    #[test]
    fn error_types_from_header_or_body() {
        let mut headers = HeaderMap::new();
        assert_eq!(error_type(&headers), None);
        headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(
                "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            ),
        );
        assert_eq!(error_type(&headers).as_deref(), Some("ThrottlingException"));
        assert_eq!(
            body_error_type(
                br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"x"}"#
            )
            .as_deref(),
            Some("ValidationException")
        );
        assert_eq!(
            body_error_type(br#"{"code":"AccessDeniedException"}"#).as_deref(),
            Some("AccessDeniedException")
        );
        assert_eq!(body_error_type(br#"{"message":"x"}"#), None);
        assert_eq!(body_error_type(b"<html>"), None);
    }

    #[test]
    fn completion_ids() {
        let mut headers = HeaderMap::new();
        assert!(completion_id(&headers).starts_with("chatcmpl-"));
        assert!(!completion_id(&headers).contains("req_"));
        headers.insert(
            "x-amzn-requestid",
            HeaderValue::from_static("8e2b7c1a-0000-4000-8000-000000000001"),
        );
        assert_eq!(
            completion_id(&headers),
            "chatcmpl-8e2b7c1a-0000-4000-8000-000000000001"
        );
    }
}
