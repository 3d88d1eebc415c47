//! A ConverseStream body (`application/vnd.amazon.eventstream`) as a stream of OpenAI chunk
//! events: frames are decoded (CRCs checked) as bytes arrive, each message is routed by its
//! `:message-type` to the [`StreamTranslator`] (events) or to classification (exceptions and
//! errors), and the stream ends with `[DONE]`.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use hyper::body::Incoming;

use crate::aws_eventstream::{
    ERROR_CODE, ERROR_MESSAGE, EVENT_TYPE, EXCEPTION_TYPE, EventStreamDecoder, EventStreamError,
    MESSAGE_TYPE, Message,
};
use crate::provider::translated::{self, Translator};
use crate::provider::{EventStream, ProviderError, StreamEvent, upstream};
use crate::translate::bedrock::{StreamTranslator, classify_error};

/// The events of `body`, translated.
pub fn events(body: Incoming, translator: StreamTranslator) -> EventStream {
    translate(Box::pin(upstream::chunks(body)), translator)
}

/// A response body as byte chunks, as they arrive.
pub type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, ProviderError>> + Send>>;

/// Translates raw body chunks; separate from [`events`] so tests (and golden tests) can feed
/// bytes.
pub fn translate(chunks: Chunks, translator: StreamTranslator) -> EventStream {
    translated::translate_stream(
        chunks,
        Frames {
            decoder: EventStreamDecoder::default(),
            translator,
        },
    )
}

/// Decoding and translation for the stream driver. Each chunk of bytes yields the chunks of the
/// messages it completes; the events of a message that fails come after those of the messages
/// before it.
struct Frames {
    decoder: EventStreamDecoder,
    translator: StreamTranslator,
}

impl Translator for Frames {
    type Input = Bytes;

    fn push(&mut self, bytes: Bytes, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        self.decoder.push(&bytes);
        while let Some(message) = self.decoder.next_message().map_err(|e| decode_error(&e))? {
            out.extend(
                handle(&mut self.translator, &message)?
                    .into_iter()
                    .map(StreamEvent::data),
            );
        }
        Ok(())
    }

    /// Everything needed arrived (`messageStop` and `metadata`): a connection lost after it
    /// changes nothing.
    fn is_complete(&self) -> bool {
        self.translator.is_complete()
    }

    /// The body ended: check it ended on a message boundary (unless the answer is already
    /// whole), close the translation, add `[DONE]`.
    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let complete = self.translator.is_complete();
        if let Err(e) = self.decoder.finish()
            && !complete
        {
            return Err(decode_error(&e));
        }
        out.extend(self.translator.finish()?.into_iter().map(StreamEvent::data));
        out.push(StreamEvent::done());
        Ok(())
    }
}

fn handle(
    translator: &mut StreamTranslator,
    message: &Message,
) -> Result<Vec<Bytes>, ProviderError> {
    match message.header_str(MESSAGE_TYPE) {
        Some("event") | None => {
            let event_type = message.header_str(EVENT_TYPE).unwrap_or_default();
            translator.push(event_type, &message.payload)
        }
        Some("exception") => Err(classify_error(
            None,
            message.header_str(EXCEPTION_TYPE),
            &message.payload,
        )),
        Some(_) => {
            // `error` messages carry their code and text in headers.
            let text = message.header_str(ERROR_MESSAGE).unwrap_or_default();
            let payload = serde_json::json!({ "message": text }).to_string();
            Err(classify_error(
                None,
                message.header_str(ERROR_CODE),
                payload.as_bytes(),
            ))
        }
    }
}

fn decode_error(e: &EventStreamError) -> ProviderError {
    match e {
        EventStreamError::Truncated { .. } => {
            ProviderError::StreamBroken(format!("the event stream was cut: {e}"))
        }
        _ => ProviderError::InvalidResponse(format!("the event stream is corrupt: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{StreamExt, TryStreamExt, stream};
    use serde_json::{Value, json};

    use super::*;
    use crate::aws_eventstream::{CONTENT_TYPE, HeaderValue, encode_message};

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        encode_message(
            &[
                (EVENT_TYPE, kind.into()),
                (CONTENT_TYPE, "application/json".into()),
                (MESSAGE_TYPE, "event".into()),
            ],
            payload.to_string().as_bytes(),
        )
    }

    fn exception(kind: &str, message: &str) -> Vec<u8> {
        encode_message(
            &[
                (EXCEPTION_TYPE, kind.into()),
                (CONTENT_TYPE, "application/json".into()),
                (MESSAGE_TYPE, "exception".into()),
            ],
            json!({ "message": message }).to_string().as_bytes(),
        )
    }

    fn whole_answer() -> Vec<Vec<u8>> {
        vec![
            event("messageStart", json!({"role": "assistant"})),
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            ),
            event("contentBlockStop", json!({"contentBlockIndex": 0})),
            event("messageStop", json!({"stopReason": "end_turn"})),
            event(
                "metadata",
                json!({"usage": {"inputTokens": 3, "outputTokens": 1}, "metrics": {"latencyMs": 5}}),
            ),
        ]
    }

    /// Runs `frames`, cut into pieces of `piece` bytes, optionally ending with a transport error.
    async fn run(
        frames: &[Vec<u8>],
        piece: usize,
        broken: bool,
    ) -> (Vec<String>, Option<ProviderError>) {
        let bytes = frames.concat();
        let mut items: Vec<Result<Bytes, ProviderError>> = bytes
            .chunks(piece)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        if broken {
            items.push(Err(ProviderError::StreamBroken("cut".into())));
        }
        let mut out = translate(
            Box::pin(stream::iter(items)),
            StreamTranslator::new("id", "m", 1),
        );
        let mut data = Vec::new();
        while let Some(item) = out.next().await {
            match item {
                Ok(e) => data.push(String::from_utf8(e.data.to_vec()).unwrap()),
                Err(e) => return (data, Some(e)),
            }
        }
        (data, None)
    }

    #[tokio::test]
    async fn a_whole_stream_in_any_chunking() {
        for piece in [1, 7, 64, 100_000] {
            let (data, err) = run(&whole_answer(), piece, false).await;
            assert_eq!(err, None);
            assert_eq!(data.len(), 5, "{data:?}");
            assert!(data[1].contains("\"content\":\"Hi\""));
            assert!(data[3].contains("\"choices\":[]"));
            assert_eq!(data[4], "[DONE]");
        }
    }

    #[tokio::test]
    async fn exceptions_become_classified_errors() {
        let mut frames = whole_answer();
        frames.truncate(2);
        frames.push(exception("throttlingException", "slow down"));
        let (data, err) = run(&frames, 13, false).await;
        assert_eq!(data.len(), 2);
        assert!(
            matches!(err, Some(ProviderError::RateLimited { message: Some(ref m), .. }) if m == "slow down"),
            "{err:?}"
        );
        // As the first message: the attempt fails before any event (failover still possible).
        let (data, err) = run(
            &[exception("serviceUnavailableException", "busy")],
            5,
            false,
        )
        .await;
        assert!(data.is_empty());
        assert!(
            matches!(err, Some(ProviderError::Overloaded { .. })),
            "{err:?}"
        );
        let error = encode_message(
            &[
                (MESSAGE_TYPE, "error".into()),
                (ERROR_CODE, "InternalFailure".into()),
                (ERROR_MESSAGE, HeaderValue::from("boom")),
            ],
            b"",
        );
        let (_, err) = run(&[error], 5, false).await;
        assert!(
            matches!(err, Some(ProviderError::Server { status: 502, .. })),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn corrupt_truncated_and_cut_streams_fail() {
        let mut bytes = whole_answer().concat();
        bytes[20] ^= 0x40;
        let (data, err) = run(&[bytes], 50, false).await;
        assert!(data.is_empty());
        assert!(
            matches!(err, Some(ProviderError::InvalidResponse(_))),
            "{err:?}"
        );

        let mut frames = whole_answer();
        let last = frames.len() - 1;
        frames[last].truncate(10);
        let (_, err) = run(&frames, 50, false).await;
        assert!(
            matches!(err, Some(ProviderError::StreamBroken(_))),
            "{err:?}"
        );

        let mut frames = whole_answer();
        frames.truncate(3);
        let (_, err) = run(&frames, 50, true).await;
        assert!(
            matches!(err, Some(ProviderError::StreamBroken(_))),
            "{err:?}"
        );
        let (_, err) = run(&frames, 50, false).await;
        assert!(
            matches!(err, Some(ProviderError::StreamBroken(_))),
            "no messageStop: {err:?}"
        );

        // Cut after everything arrived: the answer is whole, the stream ends normally.
        let (data, err) = run(&whole_answer(), 50, true).await;
        assert_eq!((data.len(), err), (5, None));
    }

    #[tokio::test]
    async fn nothing_follows_an_error() {
        let mut frames = vec![exception("validationException", "bad")];
        frames.extend(whole_answer());
        let s = translate(
            Box::pin(stream::iter([Ok(Bytes::from(frames.concat()))])),
            StreamTranslator::new("id", "m", 1),
        );
        let items: Vec<_> = s.collect().await;
        assert_eq!(items.len(), 1);
        assert!(items[0].is_err());
        let ok: Result<Vec<StreamEvent>, _> = translate(
            Box::pin(stream::iter([Ok(Bytes::from(whole_answer().concat()))])),
            StreamTranslator::new("id", "m", 1),
        )
        .try_collect()
        .await;
        assert_eq!(ok.map(|v| v.len()), Ok(5));
    }
}
