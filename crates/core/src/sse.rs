//! A decoder of Server-Sent Events (the WHATWG `text/event-stream` format) for upstream bytes.
//! Called by provider adapters while a stream is forwarded; it keeps only the unfinished tail of
//! the input, so memory stays bounded by the largest event.

use bytes::{Buf, Bytes, BytesMut};

/// One dispatched event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: Bytes,
}

/// Why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event exceeded {0} bytes")]
    TooLarge(usize),
}

/// Incremental SSE decoder: feed bytes with [`SseDecoder::push`], take events with
/// [`SseDecoder::next_event`].
#[derive(Debug)]
pub struct SseDecoder {
    buf: BytesMut,
    data: BytesMut,
    event: Option<String>,
    has_data: bool,
    max_event_bytes: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new(16 * 1024 * 1024)
    }
}

impl SseDecoder {
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            data: BytesMut::new(),
            event: None,
            has_data: false,
            max_event_bytes,
        }
    }

    /// Appends upstream bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Returns the next complete event, if the buffered bytes hold one.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            let Some((line_len, term_len)) = self.find_line() else {
                if self.buf.len() + self.data.len() > self.max_event_bytes {
                    return Err(SseError::TooLarge(self.max_event_bytes));
                }
                return Ok(None);
            };
            let line = self.buf.split_to(line_len).freeze();
            self.buf.advance(term_len);
            if let Some(event) = self.process_line(&line)? {
                return Ok(Some(event));
            }
        }
    }

    /// Dispatches a final event that the upstream did not terminate with a blank line.
    pub fn finish(&mut self) -> Result<Option<SseEvent>, SseError> {
        if !self.buf.is_empty() {
            let line = self.buf.split().freeze();
            if let Some(event) = self.process_line(&line)? {
                return Ok(Some(event));
            }
        }
        Ok(self.dispatch())
    }

    /// Finds the first line terminator (`\n`, `\r\n` or `\r`): (line length, terminator length).
    fn find_line(&self) -> Option<(usize, usize)> {
        let pos = memchr::memchr2(b'\n', b'\r', &self.buf)?;
        if self.buf[pos] == b'\n' {
            return Some((pos, 1));
        }
        match self.buf.get(pos + 1) {
            Some(b'\n') => Some((pos, 2)),
            Some(_) => Some((pos, 1)),
            // A trailing '\r' may be the first half of "\r\n": wait for more bytes.
            None => None,
        }
    }

    fn process_line(&mut self, line: &[u8]) -> Result<Option<SseEvent>, SseError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.extend_from_slice(b"\n");
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
                if self.data.len() > self.max_event_bytes {
                    return Err(SseError::TooLarge(self.max_event_bytes));
                }
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: self.data.split().freeze(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Ok(Some(e)) = d.next_event() {
                out.push(e);
            }
        }
        if let Ok(Some(e)) = d.finish() {
            out.push(e);
        }
        out
    }

    #[test]
    fn basic_events_and_comments() {
        let evs = decode_all(&[b": keep-alive\n\ndata: {\"a\":1}\n\ndata: [DONE]\n\n"]);
        assert_eq!(evs.len(), 2);
        assert_eq!(&evs[0].data[..], b"{\"a\":1}");
        assert_eq!(&evs[1].data[..], b"[DONE]");
    }

    #[test]
    fn split_at_every_byte_and_crlf() {
        let input = b"event: message_start\r\ndata: one\r\ndata:two\r\n\r\ndata: x\r\r";
        let whole = decode_all(&[input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let split = decode_all(&bytes);
        assert_eq!(whole, split);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].event.as_deref(), Some("message_start"));
        assert_eq!(&whole[0].data[..], b"one\ntwo");
        assert_eq!(&whole[1].data[..], b"x");
    }

    #[test]
    fn unterminated_final_event_is_flushed() {
        let evs = decode_all(&[b"data: tail"]);
        assert_eq!(evs.len(), 1);
        assert_eq!(&evs[0].data[..], b"tail");
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut d = SseDecoder::new(8);
        d.push(b"data: 0123456789\n");
        assert_eq!(d.next_event(), Err(SseError::TooLarge(8)));
    }
}
