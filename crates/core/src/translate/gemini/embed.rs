//! OpenAI embeddings <-> Gemini: `batchEmbedContents` on AI Studio, `:predict` on Vertex AI.
//!
//! Choices:
//! - `input`, `encoding_format` and the answer's `list` are OpenAI's, read and written as for
//!   every provider ([`crate::translate::embeddings`]): one embedding per string, token arrays
//!   refused, base64 honoured from the returned floats. An empty `input` array is malformed.
//! - `dimensions` is `outputDimensionality` (per request on AI Studio, in `parameters` on
//!   Vertex AI). `user` is dropped.
//! - AI Studio: `{requests: [{model: "models/<model>", content: {parts: [{text}]}}]}`, answered
//!   with `{embeddings: [{values}]}`. It reports no token counts, so usage is 0 unless the
//!   response carries `usageMetadata.promptTokenCount`.
//! - Vertex AI: `{instances: [{content}]}`, answered with
//!   `{predictions: [{embeddings: {values, statistics: {token_count}}}]}`; usage is the sum of
//!   the `token_count`s.
//! - A response with another number of vectors than inputs is an invalid response.

use portcullis_types::Usage;
use portcullis_types::openai::EmbeddingRequest;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Flavor;
use crate::provider::ProviderError;
use crate::translate::{TranslateError, embeddings, extra};

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
    let texts = embeddings::texts(req)?;
    let dimensions = extra::<u64>(&req.extra, "dimensions")?;
    let base64 = embeddings::wants_base64(req)?;
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
    let body = embeddings::float_list(&vectors, plan.base64, model, prompt_tokens);
    Ok((body, Usage::new(prompt_tokens, 0)))
}

/// A token count Vertex AI writes as a JSON number (sometimes with a fraction): whole tokens.
fn token_count(count: f64) -> u64 {
    if count.is_finite() && count > 0.0 {
        count.round() as u64
    } else {
        0
    }
}
