//! Fuzz target for `portcullis_core::sse`: arbitrary bytes, pushed in arbitrary chunks, into
//! the SSE decoder that reads OpenAI-compatible streams. Beyond not panicking, chunking must
//! not change the events. It may change where a size error is raised (the decoder refuses an
//! unfinished line as soon as it outgrows the limit), so when either run fails, the events of
//! one must be a prefix of the other's.

#![no_main]

#[path = "chunks.rs"]
mod chunks;

use libfuzzer_sys::fuzz_target;
use portcullis_core::sse::{SseDecoder, SseError, SseEvent};

// The first byte picks the size limit (top two bits) and how many chunk sizes follow (low
// four bits); the rest is the stream.
fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let max = [1, 16, 256, 16 * 1024 * 1024][usize::from(control >> 6)];
    let (sizes, input) = rest.split_at(usize::from(control & 0x0f).min(rest.len()));

    let (whole, whole_err) = decode(input, &[], max);
    let (chunked, chunked_err) = decode(input, sizes, max);
    if whole_err.is_none() && chunked_err.is_none() {
        assert_eq!(whole, chunked, "chunking changed the events");
    } else {
        let n = whole.len().min(chunked.len());
        assert_eq!(whole[..n], chunked[..n], "chunking changed the events");
    }
    for event in whole.iter().chain(&chunked) {
        assert!(
            event.data.len() <= max,
            "an event over the limit was returned"
        );
    }
});

/// Pushes `input` in chunks whose sizes cycle through `sizes` (one push when empty; a 0 also
/// pushes an empty chunk), taking every event after each push, then the final one.
fn decode(input: &[u8], sizes: &[u8], max: usize) -> (Vec<SseEvent>, Option<SseError>) {
    let mut decoder = SseDecoder::new(max);
    let mut events = Vec::new();
    for chunk in chunks::chunks(input, sizes) {
        decoder.push(chunk);
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    match decoder.finish() {
        Ok(Some(event)) => events.push(event),
        Ok(None) => {}
        Err(e) => return (events, Some(e)),
    }
    (events, None)
}
