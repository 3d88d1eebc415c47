//! Golden tests of the Anthropic translation: every fixture in `tests/fixtures/anthropic/` (see
//! its README for the reference page each follows) is translated and compared with its snapshot
//! in `tests/snapshots/`:
//! - `request_*.json`: OpenAI chat requests, translated to Anthropic Messages requests;
//! - `response_*.json`: Anthropic messages, translated to OpenAI chat completions;
//! - `stream_*.sse`: whole Anthropic streams as sent on the wire, decoded as SSE and translated
//!   to OpenAI chunks, with how the stream ended.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::{Path, PathBuf};

use portcullis_core::sse::SseDecoder;
use portcullis_core::translate::anthropic::{chat_request, chat_response};
use portcullis_core::translate::anthropic_stream::ChatStream;
use portcullis_types::anthropic::MessagesResponse;
use portcullis_types::openai::ChatCompletionRequest;
use serde_json::{Value, json};

/// `created` of translated responses and chunks, fixed for the snapshots.
const CREATED: u64 = 1_700_000_000;

fn fixtures(prefix: &str, ext: &str) -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/anthropic");
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(ext)
        })
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no {prefix}*{ext} fixtures");
    found
}

#[test]
fn every_fixture_is_covered_and_documented() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/anthropic");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name == "README.md" {
            continue;
        }
        let known = [
            ("request_", ".json"),
            ("response_", ".json"),
            ("stream_", ".sse"),
        ]
        .iter()
        .any(|(p, e)| name.starts_with(p) && name.ends_with(e));
        assert!(known, "{name} is not a fixture kind this test reads");
        assert!(readme.contains(&name), "README.md does not name {name}");
    }
}

#[test]
fn requests() {
    for (name, path) in fixtures("request_", ".json") {
        let req: ChatCompletionRequest =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let translated = chat_request(&req, "claude-sonnet-4-5", 4096).unwrap();
        // Through serde_json's own Value, so that raw JSON (schemas, tool inputs) shows as JSON.
        let translated = serde_json::to_value(&translated).unwrap();
        insta::assert_json_snapshot!(name, translated);
    }
}

#[test]
fn responses() {
    for (name, path) in fixtures("response_", ".json") {
        let resp: MessagesResponse =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        insta::assert_json_snapshot!(name, chat_response(&resp, CREATED));
    }
}

#[test]
fn streams() {
    for (name, path) in fixtures("stream_", ".sse") {
        let bytes = std::fs::read(&path).unwrap();
        let mut decoder = SseDecoder::default();
        decoder.push(&bytes);
        let mut translator = ChatStream::new(CREATED);
        let mut chunks: Vec<Value> = Vec::new();
        let mut end = None;
        while let Some(event) = decoder.next_event().unwrap() {
            match translator.push_sse(&event) {
                Ok(out) => chunks.extend(out.iter().map(|c| c.to_value())),
                Err(e) => {
                    end = Some(e);
                    break;
                }
            }
        }
        let end = match end.map_or_else(|| translator.finish(), Err) {
            Ok(()) => json!("complete"),
            Err(e) => {
                json!({"error": e.kind(), "message": e.to_string(), "client_status": e.client_status().as_u16()})
            }
        };
        insta::assert_json_snapshot!(name, json!({"chunks": chunks, "end": end}));
    }
}
