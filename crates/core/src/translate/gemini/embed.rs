//! OpenAI embeddings <-> Gemini: `batchEmbedContents` on AI Studio, `:predict` on Vertex AI.
//!
//! Choices:
//! - `input` is a string or an array of strings, one embedding each, in order. Token arrays
//!   (OpenAI's pre-tokenized input) have no Gemini equivalent and are refused, as is an empty
//!   array.
//! - `dimensions` is `outputDimensionality` (per request on AI Studio, in `parameters` on
//!   Vertex AI). `encoding_format: "base64"` (the OpenAI SDKs' default) is honoured by encoding
//!   the returned floats as little-endian `f32`s, as OpenAI does. `user` is dropped.
//! - AI Studio: `{requests: [{model: "models/<model>", content: {parts: [{text}]}}]}`, answered
//!   with `{embeddings: [{values}]}`. It reports no token counts, so usage is 0 unless the
//!   response carries `usageMetadata.promptTokenCount`.
//! - Vertex AI: `{instances: [{content}]}`, answered with
//!   `{predictions: [{embeddings: {values, statistics: {token_count}}}]}`; usage is the sum of
//!   the `token_count`s.
//! - A response with another number of vectors than inputs is an invalid response.

use base64::Engine as _;
use portcullis_types::Usage;
use portcullis_types::openai::EmbeddingRequest;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Flavor;
use crate::provider::ProviderError;
use crate::translate::TranslateError;

/// A translated embeddings request: the body to send and what reading the answer needs.
#[derive(Clone)]
pub struct EmbedPlan {
    pub body: Value,
    /// How many inputs were sent (and vectors expected).
    pub inputs: usize,
    /// Whether the client asked for base64 vectors.
    pub base64: bool,
}

impl std::fmt::Debug for EmbedPlan {
    /// The counts, never the texts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedPlan")
            .field("inputs", &self.inputs)
            .field("base64", &self.base64)
            .finish_non_exhaustive()
    }
}

/// Translates an OpenAI embeddings request for `model` (the upstream model name).
pub fn embed_request(
    req: &EmbeddingRequest,
    model: &str,
    flavor: Flavor,
) -> Result<EmbedPlan, TranslateError> {
    let invalid = TranslateError::InvalidField { field: "input" };
    let texts: Vec<String> = match serde_json::from_str::<Value>(req.input.get()) {
        Ok(Value::String(text)) => vec![text],
        Ok(Value::Array(items)) if !items.is_empty() => items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => Ok(text),
                Value::Number(_) | Value::Array(_) => {
                    Err(TranslateError::UnsupportedValue { field: "input" })
                }
                _ => Err(invalid.clone()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid),
    };
    let dimensions = match req.extra.get("dimensions") {
        None => None,
        Some(raw) => serde_json::from_str::<Option<u64>>(raw.get()).map_err(|_| {
            TranslateError::InvalidField {
                field: "dimensions",
            }
        })?,
    };
    let base64 = match req.extra.get("encoding_format") {
        None => false,
        Some(raw) => match serde_json::from_str::<Option<String>>(raw.get()).as_ref() {
            Ok(None) => false,
            Ok(Some(f)) if f == "float" => false,
            Ok(Some(f)) if f == "base64" => true,
            _ => {
                return Err(TranslateError::UnsupportedValue {
                    field: "encoding_format",
                });
            }
        },
    };
    let inputs = texts.len();
    let body = match flavor {
        Flavor::AiStudio => {
            let name = format!("models/{model}");
            let requests: Vec<Value> = texts
                .into_iter()
                .map(|text| {
                    let mut r =
                        json!({ "model": name, "content": { "parts": [{ "text": text }] } });
                    if let Some(d) = dimensions {
                        r["outputDimensionality"] = d.into();
                    }
                    r
                })
                .collect();
            json!({ "requests": requests })
        }
        Flavor::Vertex => {
            let instances: Vec<Value> = texts
                .into_iter()
                .map(|text| json!({ "content": text }))
                .collect();
            let mut body = json!({ "instances": instances });
            if let Some(d) = dimensions {
                body["parameters"] = json!({ "outputDimensionality": d });
            }
            body
        }
    };
    Ok(EmbedPlan {
        body,
        inputs,
        base64,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchEmbedResponse {
    embeddings: Vec<Values>,
    #[serde(default)]
    usage_metadata: Option<EmbedUsage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbedUsage {
    #[serde(default)]
    prompt_token_count: u64,
}

#[derive(Deserialize)]
struct Values {
    values: Vec<f64>,
}

#[derive(Deserialize)]
struct PredictResponse {
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    embeddings: VertexEmbedding,
}

#[derive(Deserialize)]
struct VertexEmbedding {
    values: Vec<f64>,
    #[serde(default)]
    statistics: Option<Statistics>,
}

#[derive(Deserialize)]
struct Statistics {
    #[serde(default)]
    token_count: f64,
}

/// Translates an embeddings answer into an OpenAI `list` for `model`, and its usage.
pub fn embed_response(
    body: &[u8],
    plan: &EmbedPlan,
    model: &str,
    flavor: Flavor,
) -> Result<(Value, Usage), ProviderError> {
    let invalid =
        || ProviderError::InvalidResponse("the response is not an embeddings response".into());
    let (vectors, prompt_tokens) = match flavor {
        Flavor::AiStudio => {
            let resp: BatchEmbedResponse = serde_json::from_slice(body).map_err(|_| invalid())?;
            let tokens = resp.usage_metadata.map_or(0, |u| u.prompt_token_count);
            (
                resp.embeddings
                    .into_iter()
                    .map(|e| e.values)
                    .collect::<Vec<_>>(),
                tokens,
            )
        }
        Flavor::Vertex => {
            let resp: PredictResponse = serde_json::from_slice(body).map_err(|_| invalid())?;
            let tokens = resp
                .predictions
                .iter()
                .filter_map(|p| p.embeddings.statistics.as_ref())
                .map(|s| token_count(s.token_count))
                .fold(0u64, u64::saturating_add);
            let vectors = resp
                .predictions
                .into_iter()
                .map(|p| p.embeddings.values)
                .collect::<Vec<_>>();
            (vectors, tokens)
        }
    };
    if vectors.len() != plan.inputs {
        return Err(ProviderError::InvalidResponse(format!(
            "the response has {} embeddings for {} inputs",
            vectors.len(),
            plan.inputs
        )));
    }
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, values)| {
            let embedding = if plan.base64 {
                Value::String(base64_f32(&values))
            } else {
                json!(values)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let usage = Usage::new(prompt_tokens, 0);
    let body = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens },
    });
    Ok((body, usage))
}

/// A token count Vertex AI writes as a JSON number (sometimes with a fraction): whole tokens.
fn token_count(count: f64) -> u64 {
    if count.is_finite() && count > 0.0 {
        count.round() as u64
    } else {
        0
    }
}

/// Base64 of the little-endian bytes of `values`, as OpenAI encodes `encoding_format: "base64"`.
fn base64_f32(values: &[f64]) -> String {
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
