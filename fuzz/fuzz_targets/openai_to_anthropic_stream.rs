//! Fuzz target for `portcullis_core::translate::anthropic_inbound::MessagesStream`: arbitrary
//! upstream bytes decoded as SSE, each event's data pushed through the translator that turns an
//! OpenAI chat stream into Anthropic events (Anthropic clients served by other providers).
//! Beyond not panicking: every event it emits is JSON whose `type` is the event's name, blocks
//! open and close in order, and nothing follows `message_stop`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::sse::SseDecoder;
use portcullis_core::translate::anthropic_inbound::MessagesStream;

fuzz_target!(|data: &[u8]| {
    let mut decoder = SseDecoder::new(1 << 20);
    decoder.push(data);
    let mut translator = MessagesStream::new();
    let mut emitted = Vec::new();
    while let Ok(Some(event)) = decoder.next_event() {
        match translator.push(&event.data) {
            Ok(events) => emitted.extend(events),
            Err(_) => break,
        }
    }
    if let Some(events) = translator.end() {
        emitted.extend(events);
    }
    let mut open = false;
    let mut stopped = false;
    for (name, payload) in &emitted {
        assert!(!stopped, "an event after message_stop");
        let value: serde_json::Value = serde_json::from_slice(payload).expect("events are JSON");
        assert_eq!(
            value["type"], *name,
            "the payload's type is the event's name"
        );
        match *name {
            "content_block_start" => {
                assert!(!open, "a block opened inside another");
                open = true;
            }
            "content_block_delta" => assert!(open, "a delta outside a block"),
            "content_block_stop" => {
                assert!(open, "a stop outside a block");
                open = false;
            }
            "message_stop" => stopped = true,
            _ => {}
        }
    }
});
