//! Fuzz target for the Gemini stream path: arbitrary bytes, pushed in arbitrary chunks, through
//! the SSE decoder and `translate::gemini::StreamTranslator`, as the adapter reads a
//! `streamGenerateContent?alt=sse` body. Beyond not panicking:
//! - chunking must not change the translated chunks or the outcome;
//! - every chunk is a `chat.completion.chunk` object, the first one carries the assistant role,
//!   and every tool call is announced (id, name) at the next index before its arguments arrive;
//! - a finished stream ends with exactly one usage chunk whose total is prompt + completion.
//!
//! In "framing" mode the target first makes every input line one SSE `data:` event, which sends
//! the fuzzer's bytes straight to the JSON reading of the translator instead of spending them on
//! SSE syntax.

#![no_main]

#[path = "chunks.rs"]
mod chunks;

use libfuzzer_sys::fuzz_target;
use portcullis_core::sse::SseDecoder;
use portcullis_core::translate::gemini::StreamTranslator;
use serde_json::Value;

// The first byte picks framing mode (bit 4) and how many chunk sizes follow (low four bits);
// the rest is the stream.
fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let (sizes, input) = rest.split_at(usize::from(control & 0x0f).min(rest.len()));
    let framed;
    let input = if control & 0x10 != 0 {
        framed = frame(input);
        &framed[..]
    } else {
        input
    };

    let whole = run(input, &[]);
    let chunked = run(input, sizes);
    assert_eq!(whole, chunked, "chunking changed the translation");

    let (out, outcome) = whole;
    check(&out, &outcome);
});

/// What a run yields: the chunks, then `Ok(())` for a finished stream or the error's kind.
type Run = (Vec<Value>, Result<(), String>);

/// Decodes `input` pushed in chunks sized by `sizes`, translating each event as it comes, then
/// finishes, stopping at the first error like the adapter does.
fn run(input: &[u8], sizes: &[u8]) -> Run {
    let mut decoder = SseDecoder::new(1 << 20);
    let mut translator = StreamTranslator::new("chatcmpl-fuzz", "gemini-fuzz", 1);
    let mut out = Vec::new();
    for chunk in chunks::chunks(input, sizes) {
        decoder.push(chunk);
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => match translator.push(&event.data) {
                    Ok(chunks) => out.extend(parsed(&chunks)),
                    Err(e) => return (out, Err(e.kind().to_owned())),
                },
                Ok(None) => break,
                Err(e) => return (out, Err(e.to_string())),
            }
        }
    }
    match decoder.finish() {
        Ok(Some(event)) => match translator.push(&event.data) {
            Ok(chunks) => out.extend(parsed(&chunks)),
            Err(e) => return (out, Err(e.kind().to_owned())),
        },
        Ok(None) => {}
        Err(e) => return (out, Err(e.to_string())),
    }
    match translator.finish() {
        Ok(chunks) => {
            out.extend(parsed(&chunks));
            (out, Ok(()))
        }
        Err(e) => (out, Err(e.kind().to_owned())),
    }
}

/// The translator's serialized chunks, read back as JSON (they must all be JSON).
fn parsed(chunks: &[impl AsRef<[u8]>]) -> Vec<Value> {
    chunks
        .iter()
        .map(|c| serde_json::from_slice(c.as_ref()).expect("chunks are JSON"))
        .collect()
}

/// Each line of `input` as one `data:` event.
fn frame(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 2);
    for line in input.split(|&b| b == b'\n') {
        let line: Vec<u8> = line.iter().copied().filter(|&b| b != b'\r').collect();
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\n\n");
    }
    out
}

fn check(out: &[Value], outcome: &Result<(), String>) {
    let mut next_call = 0u64;
    let mut announced = Vec::new();
    let (usage_chunks, content_chunks): (Vec<&Value>, Vec<&Value>) = out
        .iter()
        .partition(|c| c["choices"] == Value::Array(Vec::new()));
    for (i, chunk) in content_chunks.iter().enumerate() {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        let delta = &chunk["choices"][0]["delta"];
        assert!(delta.is_object(), "a chunk without a delta: {chunk}");
        assert_eq!(
            i == 0,
            delta.get("role").is_some(),
            "only the first chunk names the role"
        );
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().expect("a tool call index");
            if call.get("id").is_some() {
                assert_eq!(index, next_call, "tool calls are announced in order");
                assert!(call["function"]["name"].is_string());
                announced.push(index);
                next_call += 1;
            } else {
                assert!(announced.contains(&index), "arguments before their call");
                let args = call["function"]["arguments"].as_str().expect("arguments");
                assert!(
                    serde_json::from_str::<Value>(args).is_ok_and(|v| v.is_object()),
                    "arguments are a JSON object"
                );
            }
        }
    }
    match outcome {
        Ok(()) => {
            assert_eq!(usage_chunks.len(), 1, "one usage chunk");
            assert!(
                std::ptr::eq(usage_chunks[0], out.last().expect("chunks")),
                "usage comes last"
            );
            let usage = &usage_chunks[0]["usage"];
            let (p, c, t) = (
                usage["prompt_tokens"].as_u64().expect("prompt_tokens"),
                usage["completion_tokens"]
                    .as_u64()
                    .expect("completion_tokens"),
                usage["total_tokens"].as_u64().expect("total_tokens"),
            );
            assert_eq!(t, p.saturating_add(c));
        }
        Err(_) => assert!(usage_chunks.is_empty(), "no usage chunk after an error"),
    }
}
