//! Golden tests of the Bedrock translation: OpenAI requests to Converse bodies, Converse answers
//! to `chat.completion`s, whole ConverseStream bodies (written as binary event-stream frames,
//! decoded by the adapter's own stream code) to chunk lists, and Titan and Cohere embeddings.
//! Fixtures are in `tests/fixtures/bedrock/` (see its README for their sources); snapshots in
//! `tests/snapshots/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use portcullis_core::aws_eventstream::{
    CONTENT_TYPE, EVENT_TYPE, EXCEPTION_TYPE, MESSAGE_TYPE, encode_message,
};
use portcullis_core::provider::ProviderError;
use portcullis_core::provider::bedrock::events;
use portcullis_core::translate::bedrock::embeddings;
use portcullis_core::translate::bedrock::{
    ConverseResponse, StreamTranslator, chat_response, converse_request,
};
use portcullis_types::openai::{ChatCompletionRequest, EmbeddingRequest};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bedrock")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixtures(prefix: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bedrock");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no {prefix}* fixtures");
    names
        .into_iter()
        .map(|n| {
            let text = fixture(&n);
            (n.trim_end_matches(".json").to_owned(), text)
        })
        .collect()
}

#[test]
fn requests() {
    for (name, text) in fixtures("request_") {
        let req: ChatCompletionRequest = serde_json::from_str(&text).unwrap();
        // The adapter calls it with the deployment's model id, which the fixtures put in `model`.
        let out = converse_request(&req, &req.model).unwrap();
        // Through serde_json first: insta's own serializer does not know raw JSON values.
        let out = serde_json::to_value(&out).unwrap();
        insta::assert_json_snapshot!(format!("bedrock_{name}"), out);
    }
}

#[test]
fn responses() {
    for (name, text) in fixtures("response_") {
        let resp: ConverseResponse = serde_json::from_str(&text).unwrap();
        let body = chat_response(
            &resp,
            "chatcmpl-5f2c3a1e",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            1_700_000_000,
        );
        let usage = resp.usage();
        let out = json!({
            "body": body,
            "usage": {
                "prompt": usage.prompt_tokens,
                "completion": usage.completion_tokens,
                "total": usage.total_tokens,
                "cached": usage.cached_tokens,
                "reasoning": usage.reasoning_tokens,
            },
        });
        insta::assert_json_snapshot!(format!("bedrock_{name}"), out);
    }
}

/// The fixture's events as binary frames, the way Bedrock sends them.
fn frames(text: &str) -> Vec<u8> {
    let events: Vec<Value> = serde_json::from_str(text).unwrap();
    events
        .iter()
        .flat_map(|e| {
            let payload = e["payload"].to_string();
            let headers = if let Some(kind) = e["event-type"].as_str() {
                vec![
                    (EVENT_TYPE, kind.into()),
                    (CONTENT_TYPE, "application/json".into()),
                    (MESSAGE_TYPE, "event".into()),
                ]
            } else {
                let kind = e["exception-type"].as_str().unwrap();
                vec![
                    (EXCEPTION_TYPE, kind.into()),
                    (CONTENT_TYPE, "application/json".into()),
                    (MESSAGE_TYPE, "exception".into()),
                ]
            };
            encode_message(&headers, payload.as_bytes())
        })
        .collect()
}

#[tokio::test]
async fn streams() {
    for (name, text) in fixtures("stream_") {
        let bytes = frames(&text);
        // Cut across frame boundaries, as TCP delivers them.
        let chunks: Vec<Result<Bytes, ProviderError>> = bytes
            .chunks(61)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let translator = StreamTranslator::new(
            "chatcmpl-5f2c3a1e",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            1_700_000_000,
        );
        let mut out = events::translate(Box::pin(stream::iter(chunks)), translator);
        let mut items = Vec::new();
        while let Some(item) = out.next().await {
            items.push(match item {
                Ok(event) if event.is_done() => json!("[DONE]"),
                Ok(event) => serde_json::from_slice(&event.data).unwrap(),
                Err(e) => json!({"error": e.kind(), "message": e.to_string(),
                                 "status": e.client_status().as_u16()}),
            });
        }
        insta::assert_json_snapshot!(format!("bedrock_{name}"), items);
    }
}

fn embedding_request(name: &str) -> EmbeddingRequest {
    serde_json::from_str(&fixture(name)).unwrap()
}

#[test]
fn titan_embeddings() {
    let req = embedding_request("titan_v2_request.json");
    let bodies: Vec<Value> = embeddings::inputs(&req)
        .unwrap()
        .iter()
        .map(|text| embeddings::titan_request(text, &req).unwrap())
        .collect();
    insta::assert_json_snapshot!("bedrock_titan_v2_requests", bodies);
    let (vector, tokens) =
        embeddings::titan_response(fixture("titan_v2_response.json").as_bytes()).unwrap();
    // One answer per input; the fixture stands for both.
    let vectors = vec![vector.clone(), vector];
    let list = embeddings::embeddings_response(&vectors, &req.model, tokens * 2, false);
    insta::assert_json_snapshot!("bedrock_titan_v2_list", list);
    let base64 = embeddings::embeddings_response(&vectors[..1], &req.model, tokens, true);
    insta::assert_json_snapshot!("bedrock_titan_v2_list_base64", base64);
}

#[test]
fn cohere_embeddings() {
    let req = embedding_request("cohere_request.json");
    let texts = embeddings::inputs(&req).unwrap();
    insta::assert_json_snapshot!(
        "bedrock_cohere_request",
        embeddings::cohere_request(&texts, &req).unwrap()
    );
    for name in ["cohere_floats_response", "cohere_by_type_response"] {
        let vectors =
            embeddings::cohere_response(fixture(&format!("{name}.json")).as_bytes()).unwrap();
        let list = embeddings::embeddings_response(&vectors, &req.model, 11, false);
        insta::assert_json_snapshot!(format!("bedrock_{name}"), list);
    }
}
