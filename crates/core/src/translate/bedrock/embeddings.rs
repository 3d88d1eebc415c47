//! OpenAI embeddings <-> Bedrock `InvokeModel` bodies of Titan and Cohere embedding models.
//!
//! Choices:
//! - The model family comes from the model id: ids containing `titan-embed` are Titan,
//!   `cohere.embed` Cohere (cross-region profile ids such as `us.cohere.embed-v4:0` included).
//!   Other ids (custom or provisioned model ARNs, other families) are not served.
//! - `input`, `encoding_format` and the answer's `list` are OpenAI's, read and written as for
//!   every provider ([`crate::translate::embeddings`]): one vector per string, token arrays
//!   refused (neither family takes token ids), base64 of little-endian `f32`s when asked. An
//!   empty `input` array is refused as untranslatable.
//! - Titan embeds one text per call (`{inputText}`): the adapter makes one call per input and
//!   sums `inputTextTokenCount`. `dimensions` is sent as `dimensions` (Titan v2: 256, 512 or
//!   1024; v1 refuses it); a vendor `normalize` boolean in the request is passed on.
//! - Cohere takes up to [`COHERE_MAX_TEXTS`] texts per call (`{texts, input_type}`): the
//!   adapter batches. `input_type` is the request's vendor `input_type` field, else
//!   `search_document` (the right type for the texts one stores, which is what most embedding
//!   calls do; queries should send `input_type: search_query`). Vendor `truncate` and
//!   `embedding_types` are passed on, and `dimensions` becomes `output_dimension` (Embed v4).
//!   Vectors are read from `embeddings` as an array of arrays, or by type
//!   (`{"embeddings": {"float": [...]}}`: `float` when present, else the first type given).
//!   Cohere's body carries no token count: the adapter reads Bedrock's
//!   `x-amzn-bedrock-input-token-count` header (0 without one).

use portcullis_types::openai::EmbeddingRequest;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::provider::ProviderError;
use crate::translate::{TranslateError, embeddings, extra};

pub use crate::translate::embeddings::wants_base64;

/// The most texts Cohere embedding models take in one call.
pub const COHERE_MAX_TEXTS: usize = 96;

/// The embedding model families the adapter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Titan,
    Cohere,
}

impl Family {
    /// The family of `model_id`, if it is one the adapter speaks.
    pub fn of(model_id: &str) -> Option<Self> {
        if model_id.contains("titan-embed") {
            Some(Self::Titan)
        } else if model_id.contains("cohere.embed") {
            Some(Self::Cohere)
        } else {
            None
        }
    }
}

/// The texts to embed.
pub fn inputs(req: &EmbeddingRequest) -> Result<Vec<String>, TranslateError> {
    embeddings::texts(req)
}

/// The Titan `InvokeModel` body for one text.
pub fn titan_request(text: &str, req: &EmbeddingRequest) -> Result<Value, TranslateError> {
    let mut body = Map::new();
    body.insert("inputText".into(), text.into());
    if let Some(dimensions) = extra::<u64>(&req.extra, "dimensions")? {
        body.insert("dimensions".into(), dimensions.into());
    }
    if let Some(normalize) = extra::<bool>(&req.extra, "normalize")? {
        body.insert("normalize".into(), normalize.into());
    }
    Ok(Value::Object(body))
}

/// The Cohere `InvokeModel` body for a batch of at most [`COHERE_MAX_TEXTS`] texts.
pub fn cohere_request(texts: &[String], req: &EmbeddingRequest) -> Result<Value, TranslateError> {
    let input_type =
        extra::<String>(&req.extra, "input_type")?.unwrap_or_else(|| "search_document".to_owned());
    let mut body = Map::new();
    body.insert("texts".into(), json!(texts));
    body.insert("input_type".into(), input_type.into());
    if let Some(truncate) = extra::<String>(&req.extra, "truncate")? {
        body.insert("truncate".into(), truncate.into());
    }
    if let Some(types) = extra::<Vec<String>>(&req.extra, "embedding_types")? {
        body.insert("embedding_types".into(), json!(types));
    }
    if let Some(dimensions) = extra::<u64>(&req.extra, "dimensions")? {
        body.insert("output_dimension".into(), dimensions.into());
    }
    Ok(Value::Object(body))
}

/// A Titan answer: the vector and its input token count.
pub fn titan_response(body: &[u8]) -> Result<(Vec<f64>, u64), ProviderError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Titan {
        embedding: Vec<f64>,
        #[serde(default)]
        input_text_token_count: u64,
    }
    let parsed: Titan = serde_json::from_slice(body).map_err(|_| {
        ProviderError::InvalidResponse("the Titan embedding response is malformed".into())
    })?;
    Ok((parsed.embedding, parsed.input_text_token_count))
}

/// A Cohere answer: one vector per text, in order.
pub fn cohere_response(body: &[u8]) -> Result<Vec<Vec<f64>>, ProviderError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Embeddings {
        Floats(Vec<Vec<f64>>),
        ByType(serde_json::Map<String, Value>),
    }
    #[derive(Deserialize)]
    struct Cohere {
        embeddings: Embeddings,
    }
    let malformed =
        || ProviderError::InvalidResponse("the Cohere embedding response is malformed".into());
    let parsed: Cohere = serde_json::from_slice(body).map_err(|_| malformed())?;
    match parsed.embeddings {
        Embeddings::Floats(vectors) => Ok(vectors),
        Embeddings::ByType(mut by_type) => {
            let chosen = match by_type.remove("float") {
                Some(v) => v,
                None => by_type
                    .into_iter()
                    .next()
                    .map(|(_, v)| v)
                    .ok_or_else(malformed)?,
            };
            serde_json::from_value(chosen).map_err(|_| malformed())
        }
    }
}

/// The OpenAI embeddings `list` for `vectors` (in input order).
pub fn embeddings_response(
    vectors: &[Vec<f64>],
    model: &str,
    prompt_tokens: u64,
    base64: bool,
) -> Value {
    embeddings::float_list(vectors, base64, model, prompt_tokens)
}
