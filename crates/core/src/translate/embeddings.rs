//! The OpenAI side of every embeddings translation (Gemini, Cohere, Bedrock): reading `input`
//! and `encoding_format`, encoding base64 vectors, and writing the `list` answer. The providers
//! differ in their bodies, not in what an OpenAI client sends and expects back, so one reading
//! here keeps a client's request refused (or served) the same way whichever provider serves it.
//!
//! Choices:
//! - `input` is a string or an array of strings, one vector each, in order. Token ids (a number,
//!   an array of numbers or of arrays: OpenAI's pre-tokenized input) have no equivalent in any
//!   provider's embedding API and are refused as untranslatable; anything else that is not a
//!   string is malformed. An empty array reads as no texts: whether that is refused is each
//!   adapter's call.
//! - `encoding_format`: absent, null or `float` yields numbers; `base64` (the official SDKs ask
//!   for it by default) yields base64 of the little-endian `f32`s, as OpenAI encodes it. Another
//!   string is untranslatable, another JSON type malformed.
//! - The answer is `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
//!   "model", "usage": {"prompt_tokens", "total_tokens"}}`; embeddings have no output tokens, so
//!   the total is the prompt count.

use base64::Engine as _;
use portcullis_types::openai::EmbeddingRequest;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{TranslateError, extra};

/// The texts of the request's `input`, in order. An empty array is malformed, as OpenAI has it:
/// there is nothing to embed.
pub fn texts(req: &EmbeddingRequest) -> Result<Vec<String>, TranslateError> {
    let malformed = TranslateError::InvalidField { field: "input" };
    let text = |value: Value| match value {
        Value::String(text) => Ok(text),
        Value::Number(_) | Value::Array(_) => {
            Err(TranslateError::UnsupportedValue { field: "input" })
        }
        _ => Err(malformed.clone()),
    };
    match serde_json::from_str::<Value>(req.input.get()) {
        Ok(Value::Array(items)) if items.is_empty() => Err(malformed),
        Ok(Value::Array(items)) => items.into_iter().map(text).collect(),
        Ok(value) => text(value).map(|t| vec![t]),
        Err(_) => Err(malformed),
    }
}

/// Whether the client asked for base64 vectors (`encoding_format`).
pub fn wants_base64(req: &EmbeddingRequest) -> Result<bool, TranslateError> {
    match extra::<String>(&req.extra, "encoding_format")?.as_deref() {
        None | Some("float") => Ok(false),
        Some("base64") => Ok(true),
        Some(_) => Err(TranslateError::UnsupportedValue {
            field: "encoding_format",
        }),
    }
}

/// Base64 of the little-endian `f32`s of `values`, as OpenAI encodes `encoding_format: "base64"`.
pub fn base64_f32(values: &[f64]) -> String {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "embeddings are f32 on the wire"
    )]
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One vector of the answer, as the client gets it.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Vector<'a> {
    /// JSON numbers.
    Floats(&'a [f64]),
    /// JSON numbers as the provider wrote them (not re-formatted).
    Raw(&'a RawValue),
    /// [`base64_f32`] of the numbers.
    Base64(String),
}

impl std::fmt::Debug for Vector<'_> {
    /// Vectors are derived from the client's texts: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Floats(_) => "Vector::Floats",
            Self::Raw(_) => "Vector::Raw",
            Self::Base64(_) => "Vector::Base64",
        })
    }
}

impl<'a> Vector<'a> {
    /// `values` as numbers, or as base64 when the client asked for it.
    pub fn of(values: &'a [f64], base64: bool) -> Self {
        if base64 {
            Self::Base64(base64_f32(values))
        } else {
            Self::Floats(values)
        }
    }
}

/// OpenAI's embeddings answer: a `list` of vectors in input order.
#[derive(Serialize)]
pub struct List<'a> {
    object: &'static str,
    data: Vec<Item<'a>>,
    model: &'a str,
    usage: ListUsage,
}

impl std::fmt::Debug for List<'_> {
    /// The counts, never the vectors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("List")
            .field("data", &self.data.len())
            .field("model", &self.model)
            .field("prompt_tokens", &self.usage.prompt_tokens)
            .finish()
    }
}

#[derive(Serialize)]
struct Item<'a> {
    object: &'static str,
    index: usize,
    embedding: Vector<'a>,
}

#[derive(Serialize)]
struct ListUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The answer for `vectors` (in input order) from `model`, which read `prompt_tokens`.
pub fn list<'a>(
    vectors: impl IntoIterator<Item = Vector<'a>>,
    model: &'a str,
    prompt_tokens: u64,
) -> List<'a> {
    List {
        object: "list",
        data: vectors
            .into_iter()
            .enumerate()
            .map(|(index, embedding)| Item {
                object: "embedding",
                index,
                embedding,
            })
            .collect(),
        model,
        usage: ListUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    }
}

/// The answer for vectors read as numbers, as a JSON value.
pub fn float_list(vectors: &[Vec<f64>], base64: bool, model: &str, prompt_tokens: u64) -> Value {
    // Numbers and strings only: serializing cannot fail.
    json!(list(
        vectors.iter().map(|v| Vector::of(v, base64)),
        model,
        prompt_tokens
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(input: Value) -> EmbeddingRequest {
        serde_json::from_value(json!({"model": "m", "input": input})).unwrap()
    }

    #[test]
    fn inputs_are_strings() {
        assert_eq!(texts(&request(json!("a"))).unwrap(), ["a"]);
        assert_eq!(texts(&request(json!(["a", "b"]))).unwrap(), ["a", "b"]);
        assert_eq!(
            texts(&request(json!([]))).unwrap_err(),
            TranslateError::InvalidField { field: "input" }
        );
        let tokens = TranslateError::UnsupportedValue { field: "input" };
        for input in [json!(3), json!([1, 2]), json!([[1, 2]]), json!(["a", 1])] {
            assert_eq!(texts(&request(input)).unwrap_err(), tokens);
        }
        let malformed = TranslateError::InvalidField { field: "input" };
        for input in [
            json!({"a": 1}),
            json!(true),
            json!(["a", null]),
            json!([{}]),
        ] {
            assert_eq!(texts(&request(input)).unwrap_err(), malformed);
        }
    }

    #[test]
    fn encoding_formats() {
        let with = |format: Value| {
            let req: EmbeddingRequest = serde_json::from_value(
                json!({"model": "m", "input": "a", "encoding_format": format}),
            )
            .unwrap();
            wants_base64(&req)
        };
        assert_eq!(with(json!("float")), Ok(false));
        assert_eq!(with(Value::Null), Ok(false));
        assert_eq!(with(json!("base64")), Ok(true));
        assert_eq!(wants_base64(&request(json!("a"))), Ok(false));
        assert_eq!(
            with(json!("int8")),
            Err(TranslateError::UnsupportedValue {
                field: "encoding_format"
            })
        );
        assert_eq!(
            with(json!(1)),
            Err(TranslateError::InvalidField {
                field: "encoding_format"
            })
        );
    }

    #[test]
    fn lists_in_input_order() {
        let raw = RawValue::from_string("[0.10, 2]".to_owned()).unwrap();
        let answer = list(
            [
                Vector::of(&[1.0, -2.0], false),
                Vector::of(&[1.0, -2.0], true),
                Vector::Raw(&raw),
            ],
            "m",
            7,
        );
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0,-2.0]},{"object":"embedding","index":1,"embedding":"AACAPwAAAMA="},{"object":"embedding","index":2,"embedding":[0.10, 2]}],"model":"m","usage":{"prompt_tokens":7,"total_tokens":7}}"#
        );
        assert_eq!(
            float_list(&[vec![0.5]], false, "m", 2),
            json!({"object": "list", "model": "m",
                   "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
                   "usage": {"prompt_tokens": 2, "total_tokens": 2}})
        );
    }
}
