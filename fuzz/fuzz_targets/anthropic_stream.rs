//! Fuzz target for the Anthropic stream translator: arbitrary bytes, pushed in arbitrary chunks,
//! through the SSE decoder and `translate::anthropic_stream::ChatStream`. Beyond not panicking:
//! chunking must not change the translation, every output is a `chat.completion.chunk` object
//! until one `[DONE]` which comes last, tool calls are numbered 0, 1, .. in the order they start,
//! and nothing is returned after an error.
//!
//! Random bytes rarely make a valid `message_start`, without which every content event is an
//! error; bit 4 of the first byte prefixes one, so the fuzzer reaches the content events.

#![no_main]

#[path = "chunks.rs"]
mod chunks;

use libfuzzer_sys::fuzz_target;
use portcullis_core::sse::SseDecoder;
use portcullis_core::translate::anthropic_stream::{ChatStream, Chunk};
use serde_json::Value;

const MESSAGE_START: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n";

/// How a run ended: the decoder failed, the translator failed, or neither.
#[derive(Debug, PartialEq)]
enum End {
    Decoder,
    Translator,
    Clean,
}

// The first byte picks the size limit (top two bits), the message_start prefix (bit 4) and how
// many chunk sizes follow (low four bits); the rest is the stream.
fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let max = [64, 1024, 64 * 1024, 16 * 1024 * 1024][usize::from(control >> 6)];
    let (sizes, input) = rest.split_at(usize::from(control & 0x0f).min(rest.len()));
    let mut owned;
    let input = if control & 0x10 != 0 {
        owned = MESSAGE_START.to_vec();
        owned.extend_from_slice(input);
        &owned[..]
    } else {
        input
    };

    let (whole, whole_end) = translate(input, &[], max);
    let (chunked, chunked_end) = translate(input, sizes, max);
    if whole_end != End::Decoder && chunked_end != End::Decoder {
        assert_eq!(whole, chunked, "chunking changed the translation");
        assert_eq!(whole_end, chunked_end, "chunking changed how it ended");
    }
    check(&whole);
    check(&chunked);
});

/// Decodes `input` pushed in chunks cycling through `sizes` and translates every event, up to
/// the first error (after which nothing more is pushed).
fn translate(input: &[u8], sizes: &[u8], max: usize) -> (Vec<Chunk>, End) {
    let mut decoder = SseDecoder::new(max);
    let mut translator = ChatStream::new(0);
    let mut out = Vec::new();
    for chunk in chunks::chunks(input, sizes) {
        decoder.push(chunk);
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => match translator.push_sse(&event) {
                    Ok(chunks) => out.extend(chunks),
                    Err(_) => return (out, End::Translator),
                },
                Ok(None) => break,
                Err(_) => return (out, End::Decoder),
            }
        }
    }
    match decoder.finish() {
        Ok(Some(event)) => match translator.push_sse(&event) {
            Ok(chunks) => out.extend(chunks),
            Err(_) => return (out, End::Translator),
        },
        Ok(None) => {}
        Err(_) => return (out, End::Decoder),
    }
    match translator.finish() {
        Ok(()) => (out, End::Clean),
        Err(_) => (out, End::Translator),
    }
}

fn check(out: &[Chunk]) {
    let mut next_tool = 0u64;
    for (i, chunk) in out.iter().enumerate() {
        let value = match chunk {
            Chunk::Done => {
                assert_eq!(i + 1, out.len(), "[DONE] is not last");
                continue;
            }
            Chunk::Json(bytes) => serde_json::from_slice::<Value>(bytes).expect("chunks are JSON"),
        };
        assert_eq!(value["object"], "chat.completion.chunk");
        let Some(Value::Array(calls)) = value.pointer("/choices/0/delta/tool_calls").cloned()
        else {
            continue;
        };
        for call in calls {
            let index = call["index"].as_u64().expect("a tool call index");
            if call.get("id").is_some() {
                assert_eq!(index, next_tool, "tool calls are not numbered in order");
                next_tool += 1;
            } else {
                assert!(index < next_tool, "a fragment of a call that did not start");
            }
        }
    }
}
