//! Golden tests of the Gemini translation: OpenAI requests in `tests/fixtures/gemini/` are
//! translated for AI Studio and Vertex AI; Gemini responses and whole `alt=sse` streams, written
//! in the wire format of Google's API reference (see the fixtures' README), are translated back.
//! The results are insta snapshots under `tests/snapshots/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use portcullis_core::provider::ProviderError;
use portcullis_core::sse::SseDecoder;
use portcullis_core::translate::gemini::embed::{embed_request, embed_response};
use portcullis_core::translate::gemini::{
    Flavor, ResponseMeta, StreamTranslator, chat_request, chat_response,
};
use portcullis_types::openai::{ChatCompletionRequest, EmbeddingRequest};
use serde_json::{Value, json};

const META: ResponseMeta<'static> = ResponseMeta {
    fallback_id: "chatcmpl-fallback",
    model: "gemini-requested",
    created: 1_700_000_000,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/gemini/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn error_json(e: &ProviderError) -> Value {
    json!({"error": {"kind": e.kind(), "status": e.client_status().as_u16(), "message": e.to_string()}})
}

#[test]
fn chat_requests() {
    for name in [
        "request_chat",
        "request_tools",
        "request_vision_json",
        "request_required_tool",
    ] {
        let req: ChatCompletionRequest =
            serde_json::from_slice(&fixture(&format!("{name}.json"))).unwrap();
        for (flavor, suffix) in [(Flavor::AiStudio, "ai_studio"), (Flavor::Vertex, "vertex")] {
            let body: Value = serde_json::from_slice(&chat_request(&req, flavor).unwrap()).unwrap();
            insta::assert_json_snapshot!(format!("gemini_{name}__{suffix}"), body);
        }
    }
}

#[test]
fn chat_responses() {
    for name in [
        "response_text",
        "response_parallel_calls",
        "response_thinking",
        "response_max_tokens",
        "response_safety_finish",
        "response_prompt_blocked",
    ] {
        let out = match chat_response(&fixture(&format!("{name}.json")), META) {
            Ok((body, usage)) => json!({
                "body": body,
                "usage": {
                    "prompt": usage.prompt_tokens, "completion": usage.completion_tokens,
                    "total": usage.total_tokens, "cached": usage.cached_tokens,
                    "reasoning": usage.reasoning_tokens,
                },
            }),
            Err(e) => error_json(&e),
        };
        insta::assert_json_snapshot!(format!("gemini_{name}"), out);
    }
}

/// The whole stream through the SSE decoder and the translator: every chunk, then the end
/// (usage chunk) or the error.
fn translate_stream(bytes: &[u8]) -> Vec<Value> {
    let mut decoder = SseDecoder::default();
    decoder.push(bytes);
    let mut translator =
        StreamTranslator::new("chatcmpl-fallback", "gemini-requested", 1_700_000_000);
    let mut out = Vec::new();
    let mut events = Vec::new();
    while let Some(event) = decoder.next_event().unwrap() {
        events.push(event);
    }
    events.extend(decoder.finish().unwrap());
    for event in events {
        match translator.push(&event.data) {
            Ok(chunks) => out.extend(chunks.iter().map(parse)),
            Err(e) => {
                out.push(error_json(&e));
                return out;
            }
        }
    }
    match translator.finish() {
        Ok(chunks) => out.extend(chunks.iter().map(parse)),
        Err(e) => out.push(error_json(&e)),
    }
    out
}

/// A serialized chunk, parsed back for the snapshot.
fn parse(chunk: &bytes::Bytes) -> Value {
    serde_json::from_slice(chunk).unwrap()
}

#[test]
fn chat_streams() {
    for name in [
        "stream_text",
        "stream_parallel_calls",
        "stream_thinking",
        "stream_error",
    ] {
        let chunks = translate_stream(&fixture(&format!("{name}.sse")));
        insta::assert_json_snapshot!(format!("gemini_{name}"), chunks);
    }
}

#[test]
fn embeddings() {
    let req: EmbeddingRequest =
        serde_json::from_slice(&fixture("request_embeddings.json")).unwrap();
    for (flavor, suffix, response) in [
        (Flavor::AiStudio, "ai_studio", "response_batch_embed.json"),
        (Flavor::Vertex, "vertex", "response_vertex_predict.json"),
    ] {
        let plan = embed_request(&req, "gemini-embedding-001", flavor).unwrap();
        let (body, usage) =
            embed_response(&fixture(response), &plan, "gemini-embedding-001", flavor).unwrap();
        insta::assert_json_snapshot!(
            format!("gemini_embeddings__{suffix}"),
            json!({"request": plan.body, "response": body, "prompt_tokens": usage.prompt_tokens})
        );
    }
}
