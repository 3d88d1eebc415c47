//! Stage `parse`: the request body to a typed [`ApiRequest`]. Fields the gateway acts on are
//! typed and checked; all others are kept as they came for pass-through. Error messages name the
//! offending field but never echo its value, which may be prompt content.

use portcullis_types::error::scrubbed;
use portcullis_types::raw;
use serde::de::DeserializeOwned;

use super::{AnthropicCall, ApiRequest};
use crate::error::RequestError;
use crate::provider::Operation;

pub fn parse(op: Operation, body: &[u8]) -> Result<ApiRequest, RequestError> {
    let request = match op {
        Operation::Chat => ApiRequest::Chat(typed(body)?),
        Operation::Completion => ApiRequest::Completion(typed(body)?),
        Operation::Embedding => ApiRequest::Embedding(typed(body)?),
        Operation::Messages => ApiRequest::Messages(Box::new(AnthropicCall::new(typed(body)?))),
        Operation::CountTokens => {
            ApiRequest::CountTokens(Box::new(AnthropicCall::new(typed(body)?)))
        }
    };
    check(&request)?;
    Ok(request)
}

fn typed<T: DeserializeOwned>(body: &[u8]) -> Result<T, RequestError> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        // Parse again only on failure, to learn where: success pays nothing for paths.
        Err(e) if e.is_data() => {
            let de = &mut serde_json::Deserializer::from_slice(body);
            let (message, param) = match serde_path_to_error::deserialize::<_, T>(de) {
                Err(pe) => {
                    let path = pe.path().to_string();
                    let param = (path != ".").then_some(path);
                    (scrubbed(pe.inner()), param)
                }
                Ok(_) => (scrubbed(&e), None),
            };
            Err(RequestError::Schema { message, param })
        }
        Err(e) => Err(RequestError::Json(format!(
            "{} at line {} column {}",
            match e.classify() {
                serde_json::error::Category::Eof => "unexpected end of input",
                _ => "syntax error",
            },
            e.line(),
            e.column()
        ))),
    }
}

fn schema(message: &str, param: &str) -> RequestError {
    RequestError::Schema {
        message: message.to_owned(),
        param: Some(param.to_owned()),
    }
}

fn check(request: &ApiRequest) -> Result<(), RequestError> {
    if request.model().is_empty() {
        return Err(schema("'model' must not be empty", "model"));
    }
    match request {
        // Messages are forwarded as they came; their inner shape is the upstream's to judge.
        ApiRequest::Chat(r) if !raw::is_non_empty_array(&r.messages) => {
            return Err(schema("'messages' must be a non-empty array", "messages"));
        }
        ApiRequest::Completion(r) if raw::is_null(&r.prompt) => {
            return Err(schema("'prompt' must not be null", "prompt"));
        }
        ApiRequest::Embedding(r) if raw::is_null(&r.input) => {
            return Err(schema("'input' must not be null", "input"));
        }
        ApiRequest::Messages(r) if r.messages.is_empty() => {
            return Err(schema("'messages' must be a non-empty array", "messages"));
        }
        ApiRequest::Messages(r) if r.max_tokens == 0 => {
            return Err(schema("'max_tokens' must be at least 1", "max_tokens"));
        }
        ApiRequest::CountTokens(r) if r.messages.is_empty() => {
            return Err(schema("'messages' must be a non-empty array", "messages"));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(op: Operation, body: &str) -> RequestError {
        match parse(op, body.as_bytes()) {
            Err(e) => e,
            Ok(r) => panic!("parsed {r:?}"),
        }
    }

    #[test]
    fn parses_all_operations() {
        let chat = parse(
            Operation::Chat,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        );
        assert!(chat.is_ok_and(|r| r.is_stream() && r.model() == "m"));
        let comp = parse(Operation::Completion, br#"{"model":"m","prompt":"hi"}"#);
        assert!(comp.is_ok_and(|r| !r.is_stream()));
        let emb = parse(Operation::Embedding, br#"{"model":"m","input":["a","b"]}"#);
        assert!(emb.is_ok_and(|r| r.op() == Operation::Embedding));
    }

    #[test]
    fn bad_json_and_schema_errors() {
        assert!(matches!(err(Operation::Chat, "{"), RequestError::Json(_)));
        assert!(matches!(
            err(Operation::Chat, "not json"),
            RequestError::Json(_)
        ));
        match err(Operation::Chat, r#"{"messages":[]}"#) {
            RequestError::Schema { message, .. } => assert!(message.contains("model")),
            other => panic!("{other:?}"),
        }
        match err(
            Operation::Chat,
            r#"{"model":"m","messages":[{"role":"user"}],"max_tokens":"SECRET"}"#,
        ) {
            RequestError::Schema { message, param } => {
                assert_eq!(param.as_deref(), Some("max_tokens"));
                assert!(!message.contains("SECRET"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match err(
            Operation::Chat,
            r#"{"model":"m","messages":{"role":"user"}}"#,
        ) {
            RequestError::Schema { param, .. } => {
                assert_eq!(param.as_deref(), Some("messages"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            err(Operation::Chat, r#"{"model":"m","messages":[]}"#),
            RequestError::Schema { .. }
        ));
        assert!(matches!(
            err(Operation::Embedding, r#"{"model":"","input":"x"}"#),
            RequestError::Schema { .. }
        ));
        assert!(matches!(
            err(Operation::Chat, "[]"),
            RequestError::Schema { .. }
        ));
    }
}
