//! Golden tests of the Anthropic-inbound translation (Anthropic clients, OpenAI-chat providers):
//! every fixture in `tests/fixtures/anthropic_inbound/` (see its README for the reference page
//! each follows) is translated and compared with its snapshot in `tests/snapshots/`:
//! - `request_*.json`: Anthropic Messages requests, translated to OpenAI chat requests;
//! - `response_*.json`: OpenAI chat completions, translated to Anthropic messages;
//! - `stream_*.sse`: whole OpenAI streams as sent on the wire, decoded as SSE and translated to
//!   Anthropic events.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::{Path, PathBuf};

use portcullis_core::sse::SseDecoder;
use portcullis_core::translate::anthropic_inbound::{
    MessagesStream, chat_request, message_response,
};
use portcullis_types::anthropic::MessagesRequest;
use serde_json::{Value, json};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/anthropic_inbound")
}

fn fixtures(prefix: &str, ext: &str) -> Vec<(String, PathBuf)> {
    let mut found: Vec<_> = std::fs::read_dir(dir())
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
fn every_fixture_is_read_and_documented() {
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    for entry in std::fs::read_dir(dir()).unwrap() {
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
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} is not in the README"
        );
    }
}

#[test]
fn requests() {
    for (name, path) in fixtures("request_", ".json") {
        let request: MessagesRequest =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let chat = chat_request(&request, "gpt-4o").unwrap();
        let body: Value = serde_json::from_slice(&chat.to_upstream_json(true).unwrap()).unwrap();
        insta::assert_json_snapshot!(format!("anthropic_inbound_{name}"), body);
    }
}

#[test]
fn responses() {
    for (name, path) in fixtures("response_", ".json") {
        let message = message_response(&std::fs::read(&path).unwrap()).unwrap();
        insta::assert_json_snapshot!(format!("anthropic_inbound_{name}"), message);
    }
}

#[test]
fn streams() {
    for (name, path) in fixtures("stream_", ".sse") {
        let mut decoder = SseDecoder::default();
        decoder.push(&std::fs::read(&path).unwrap());
        let mut translator = MessagesStream::new();
        let mut events = Vec::new();
        while let Some(event) = decoder.next_event().unwrap() {
            for (event_name, data) in translator.push(&event.data).unwrap() {
                let data: Value = serde_json::from_slice(&data).unwrap();
                events.push(json!({"event": event_name, "data": data}));
            }
        }
        assert!(translator.is_done(), "{name}: the message was not closed");
        insta::assert_json_snapshot!(format!("anthropic_inbound_{name}"), events);
    }
}
