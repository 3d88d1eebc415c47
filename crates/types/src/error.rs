//! The OpenAI error body: `{"error":{"message","type","param","code"}}`.

use serde::{Deserialize, Serialize};

/// The body of every error response on the OpenAI-compatible routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, in OpenAI's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ErrorBody {
    pub fn new(message: impl Into<String>, kind: &str, code: Option<&str>) -> Self {
        Self {
            error: ErrorDetail {
                message: message.into(),
                kind: kind.to_owned(),
                param: None,
                code: code.map(str::to_owned),
            },
        }
    }

    #[must_use]
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.error.param = Some(param.into());
        self
    }
}

/// A serde_json error as a message that says what was expected but not the value found, which
/// may be prompt content: `invalid type: string "secret", expected u64` becomes `invalid type,
/// expected u64`. Used wherever a parse error of a client body is reported back.
pub fn scrubbed(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let msg = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
    for prefix in ["invalid type", "invalid value", "invalid length"] {
        if msg.starts_with(prefix) {
            return match msg.split_once(", expected ") {
                Some((_, expected)) => format!("{prefix}, expected {expected}"),
                None => prefix.to_owned(),
            };
        }
    }
    if msg.starts_with("unknown variant") {
        return "unknown variant".to_owned();
    }
    msg.to_owned()
}
