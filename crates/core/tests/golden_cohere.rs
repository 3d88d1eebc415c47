//! Golden tests of the Cohere v2 translation: OpenAI requests from `fixtures/cohere/` to Cohere
//! bodies, and Cohere answers and whole streams (as Cohere's reference documents them) back to
//! OpenAI bodies and chunk lists. Snapshots live in `snapshots/` (insta's default).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use portcullis_core::sse::SseDecoder;
use portcullis_core::translate::cohere::{self, ChatResponse, EmbedResponse, stream::ChatStream};
use portcullis_types::openai::{ChatCompletionRequest, EmbeddingRequest};
use serde_json::Value;

const CREATED: u64 = 1_700_000_000;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/cohere/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn chat_request(name: &str) -> Value {
    let req: ChatCompletionRequest = serde_json::from_str(&fixture(name)).unwrap();
    let stream = req.stream == Some(true);
    let body = cohere::chat_request(&req, "command-a-03-2025", stream).unwrap();
    serde_json::to_value(&body).unwrap()
}

fn chat_response(name: &str) -> Value {
    let resp: ChatResponse = serde_json::from_str(&fixture(name)).unwrap();
    let (body, usage) = cohere::chat_response(&resp, "command-a-03-2025", CREATED).unwrap();
    assert_eq!(body["usage"]["total_tokens"], usage.total_tokens);
    body
}

/// Decodes a whole SSE fixture and translates every event; the list ends with the usage chunk.
fn stream(name: &str) -> Vec<Value> {
    let mut decoder = SseDecoder::default();
    decoder.push(fixture(name).as_bytes());
    let mut translator = ChatStream::new("command-a-03-2025", CREATED);
    let mut chunks = Vec::new();
    while let Some(event) = decoder.next_event().unwrap() {
        let out = translator
            .push(event.event.as_deref(), &event.data)
            .unwrap();
        chunks.extend(
            out.iter()
                .map(|c| serde_json::from_slice::<Value>(c).unwrap()),
        );
    }
    translator.finish().unwrap();
    chunks
}

#[test]
fn request_text() {
    insta::assert_json_snapshot!(chat_request("request_chat_text.json"));
}

#[test]
fn request_tools() {
    insta::assert_json_snapshot!(chat_request("request_chat_tools.json"));
}

#[test]
fn request_image_json_schema() {
    insta::assert_json_snapshot!(chat_request("request_chat_image_json.json"));
}

#[test]
fn response_text() {
    insta::assert_json_snapshot!(chat_response("response_chat_text.json"));
}

#[test]
fn response_parallel_tool_calls() {
    insta::assert_json_snapshot!(chat_response("response_chat_tool_calls.json"));
}

#[test]
fn response_thinking() {
    insta::assert_json_snapshot!(chat_response("response_chat_thinking.json"));
}

#[test]
fn stream_text() {
    insta::assert_json_snapshot!(stream("stream_chat_text.sse"));
}

#[test]
fn stream_parallel_tool_calls() {
    let chunks = stream("stream_chat_tool_calls.sse");
    // Reassembled, each call has its id, its name and whole JSON arguments.
    let mut args = [String::new(), String::new()];
    for chunk in &chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = usize::try_from(call["index"].as_u64().unwrap()).unwrap();
            args[i].push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    for a in &args {
        serde_json::from_str::<Value>(a).unwrap();
    }
    insta::assert_json_snapshot!(chunks);
}

#[test]
fn embeddings() {
    let req: EmbeddingRequest = serde_json::from_str(&fixture("request_embeddings.json")).unwrap();
    let body = cohere::embed_request(&req, "embed-v4.0").unwrap();
    insta::assert_json_snapshot!("embed_request", serde_json::to_value(&body).unwrap());
    let resp: EmbedResponse = serde_json::from_str(&fixture("response_embed.json")).unwrap();
    let (bytes, _) = cohere::embed_response(&resp, "embed-v4.0", body.base64).unwrap();
    let list: Value = serde_json::from_slice(&bytes).unwrap();
    insta::assert_json_snapshot!("embed_response", list);
}
