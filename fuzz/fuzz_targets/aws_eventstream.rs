//! Fuzz target for `portcullis_core::aws_eventstream`: arbitrary bytes, pushed in arbitrary
//! chunks, into the decoder of Bedrock's event streams. Beyond not panicking, the decoder must
//! give the same result however the input is chunked, and every message it returns must
//! re-encode to exactly the bytes it came from (the framing has one encoding per message).
//!
//! Random bytes almost never carry a valid CRC-32, so the fuzzer would rarely get past the
//! prelude; in "repair" mode the target first writes correct checksums over the input's
//! frames, which sends arbitrary lengths and headers to the parser behind them.

#![no_main]

#[path = "chunks.rs"]
mod chunks;

use libfuzzer_sys::fuzz_target;
use portcullis_core::aws_eventstream::{
    DEFAULT_MAX_MESSAGE_BYTES, EventStreamDecoder, EventStreamError, HeaderValue, Message,
    encode_message,
};

// The first byte picks the size limit (top two bits), repair mode (bit 4) and how many chunk
// sizes follow (low four bits); the rest is the stream.
fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let max = [16, 64, 4096, DEFAULT_MAX_MESSAGE_BYTES][usize::from(control >> 6)];
    let (sizes, input) = rest.split_at(usize::from(control & 0x0f).min(rest.len()));
    let mut repaired;
    let input = if control & 0x10 != 0 {
        repaired = input.to_vec();
        repair_checksums(&mut repaired);
        &repaired[..]
    } else {
        input
    };

    let whole = decode(input, &[], max);
    let chunked = decode(input, sizes, max);
    assert_eq!(whole, chunked, "chunking changed the result");

    let (messages, error) = whole;
    let mut consumed = Vec::new();
    for message in &messages {
        let bytes = reencode(message);
        assert!(bytes.len() <= max, "a message over the limit was returned");
        consumed.extend_from_slice(&bytes);
    }
    assert!(
        input.starts_with(&consumed),
        "messages are not the input's prefix"
    );
    if let Some(EventStreamError::Truncated { buffered }) = error {
        assert_eq!(consumed.len() + buffered, input.len());
    }
});

/// Pushes `input` in chunks whose sizes cycle through `sizes` (one push when empty; a 0 also
/// pushes an empty chunk), taking every message after each push. Returns the messages and the
/// first error, from `next_message` or else from `finish`.
fn decode(input: &[u8], sizes: &[u8], max: usize) -> (Vec<Message>, Option<EventStreamError>) {
    let mut decoder = EventStreamDecoder::new(max);
    let mut messages = Vec::new();
    for chunk in chunks::chunks(input, sizes) {
        decoder.push(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => return (messages, Some(e)),
            }
        }
    }
    (messages, decoder.finish().err())
}

/// Overwrites the prelude CRC and message CRC of each frame with correct ones, frame after
/// frame, for as long as the total lengths read describe frames that fit in `bytes`.
fn repair_checksums(bytes: &mut [u8]) {
    let mut at = 0;
    while let Some(frame) = bytes.get_mut(at..) {
        let Some(prelude) = frame.first_chunk_mut::<12>() else {
            return;
        };
        let crc = crc32fast::hash(&prelude[..8]);
        prelude[8..].copy_from_slice(&crc.to_be_bytes());
        let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
        if total < 16 || total > frame.len() {
            return;
        }
        let crc = crc32fast::hash(&frame[..total - 4]);
        frame[total - 4..total].copy_from_slice(&crc.to_be_bytes());
        at += total;
    }
}

fn reencode(message: &Message) -> Vec<u8> {
    let headers: Vec<(&str, HeaderValue)> = message
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    encode_message(&headers, &message.payload)
}
