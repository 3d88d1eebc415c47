//! A decoder of the AWS event-stream framing (`application/vnd.amazon.eventstream`), the body
//! of Bedrock's `ConverseStream` and `InvokeModelWithResponseStream` responses. Called by the
//! Bedrock adapter while a stream is forwarded, like [`crate::sse::SseDecoder`] for SSE: it keeps
//! only the unfinished tail of the input, so memory stays bounded by the largest message.
//! [`encode_message`] writes the same framing, for tests and mock upstreams.
//!
//! A message on the wire, integers big-endian:
//!
//! ```text
//! total length    u32  the whole message, these 4 bytes and the message CRC included
//! headers length  u32  the bytes of the headers section
//! prelude CRC     u32  CRC-32 (IEEE) of the 8 bytes above
//! headers              repeated: name length u8, name (UTF-8), value type u8, value
//! payload              total length - headers length - 16 bytes
//! message CRC     u32  CRC-32 of every byte before it
//! ```
//!
//! The prelude has a checksum of its own so that a corrupted length is caught before the
//! decoder waits for, and buffers, the bytes it announces. Both checksums are verified before
//! anything else in a message is read.

use std::fmt;

use bytes::{Bytes, BytesMut};

/// Prelude: total length, headers length, prelude CRC.
const PRELUDE_LEN: usize = 12;
const CRC_LEN: usize = 4;

/// The smallest message: a prelude and a message CRC, no headers, no payload.
pub const MIN_MESSAGE_BYTES: usize = PRELUDE_LEN + CRC_LEN;

/// The largest message AWS sends (its SDKs reject more), and the decoder's default limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Header naming the event of an `event` message (`contentBlockDelta`, `messageStop`, ...).
pub const EVENT_TYPE: &str = ":event-type";
/// Header saying what a message is: `event`, `exception` or `error`.
pub const MESSAGE_TYPE: &str = ":message-type";
/// Header giving the payload's media type (`application/json` for Bedrock).
pub const CONTENT_TYPE: &str = ":content-type";
/// Header naming the exception of an `exception` message (`throttlingException`, ...).
pub const EXCEPTION_TYPE: &str = ":exception-type";
/// Header carrying the code of an `error` message.
pub const ERROR_CODE: &str = ":error-code";
/// Header carrying the text of an `error` message.
pub const ERROR_MESSAGE: &str = ":error-message";

/// A header value, one variant per wire type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false): the type byte is the value.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6: at most 65535 bytes (u16 length prefix).
    Bytes(Bytes),
    /// Type 7: UTF-8, at most 65535 bytes (u16 length prefix).
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> Self {
        HeaderValue::String(s.to_owned())
    }
}

impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        HeaderValue::String(s)
    }
}

/// One decoded message: its headers in wire order and its payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

impl Message {
    /// The value of the first header called `name`. The format allows a name only once, so the
    /// first is the only one a well-behaved upstream sends.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The value of the header `name` when it is a string ([`EVENT_TYPE`], [`MESSAGE_TYPE`],
    /// [`CONTENT_TYPE`], [`EXCEPTION_TYPE`], ...); `None` when absent or of another type.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        match self.header(name)? {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }
}

// By hand, so that logging a message never writes the model's output: the payload is shown by
// its length only (see "Logs and privacy" in docs/architecture.md).
impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("headers", &self.headers)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// What is wrong with a header, inside [`EventStreamError::MalformedHeader`]. Names and values
/// are not echoed: the error may end up in a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderFault {
    #[error("a header runs past the end of the headers section")]
    Truncated,
    #[error("unknown header value type {0}")]
    UnknownType(u8),
    #[error("a header name is not UTF-8")]
    InvalidName,
    #[error("a string header value is not UTF-8")]
    InvalidString,
}

/// Why decoding stopped. Every error is final: once bytes are corrupted the message boundaries
/// cannot be trusted, so the decoder returns the same error from then on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    #[error("prelude checksum mismatch (sent {sent:#010x}, computed {computed:#010x})")]
    PreludeCrc { sent: u32, computed: u32 },
    #[error("message checksum mismatch (sent {sent:#010x}, computed {computed:#010x})")]
    MessageCrc { sent: u32, computed: u32 },
    #[error("message length {0} is below the minimum of 16 bytes")]
    TooShort(usize),
    #[error("message length {len} exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("headers length {headers} does not fit in a message of {total} bytes")]
    HeadersLength { headers: usize, total: usize },
    #[error("malformed header: {0}")]
    MalformedHeader(HeaderFault),
    #[error("the stream ended {buffered} bytes into a message")]
    Truncated { buffered: usize },
}

/// Incremental decoder: feed bytes with [`EventStreamDecoder::push`], take messages with
/// [`EventStreamDecoder::next_message`], and call [`EventStreamDecoder::finish`] when the body
/// ends. Once `next_message` has returned `Ok(None)`, fewer than `max_message_bytes` bytes (or
/// 12, a prelude, if that is more) are buffered.
#[derive(Debug)]
pub struct EventStreamDecoder {
    buf: BytesMut,
    /// Total and headers length of the message at the front of `buf`, once its prelude has
    /// been checked, so that waiting for the rest does not check it again on every push.
    pending: Option<(usize, usize)>,
    max_message_bytes: usize,
    failed: Option<EventStreamError>,
}

impl Default for EventStreamDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

impl EventStreamDecoder {
    /// A decoder that rejects messages longer than `max_message_bytes` (whole message, prelude
    /// and CRC included) as soon as their prelude arrives.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            pending: None,
            max_message_bytes,
            failed: None,
        }
    }

    /// Appends upstream bytes. Ignored after an error: nothing more will be decoded.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Returns the next complete message, if the buffered bytes hold one.
    pub fn next_message(&mut self) -> Result<Option<Message>, EventStreamError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.decode().inspect_err(|err| {
            self.failed = Some(err.clone());
            // Nothing after a bad byte can be decoded: free the buffer now.
            self.buf = BytesMut::new();
            self.pending = None;
        })
    }

    /// Checks that the body ended on a message boundary. Call it once `next_message` has
    /// returned `Ok(None)`: any byte still buffered then belongs to an unfinished message.
    pub fn finish(&mut self) -> Result<(), EventStreamError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(EventStreamError::Truncated {
                buffered: self.buf.len(),
            })
        }
    }

    fn decode(&mut self) -> Result<Option<Message>, EventStreamError> {
        let (total, headers_len) = match self.pending {
            Some(lengths) => lengths,
            None => {
                let Some(prelude) = self.buf.first_chunk::<PRELUDE_LEN>() else {
                    return Ok(None);
                };
                let lengths = check_prelude(prelude, self.max_message_bytes)?;
                self.pending = Some(lengths);
                lengths
            }
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        self.pending = None;
        let frame = self.buf.split_to(total).freeze();
        decode_frame(&frame, headers_len).map(Some)
    }
}

/// Checks the prelude's CRC, then its lengths: (total length, headers length).
fn check_prelude(
    prelude: &[u8; PRELUDE_LEN],
    max_message_bytes: usize,
) -> Result<(usize, usize), EventStreamError> {
    let [t0, t1, t2, t3, h0, h1, h2, h3, c0, c1, c2, c3] = *prelude;
    let lengths = [t0, t1, t2, t3, h0, h1, h2, h3];
    let sent = u32::from_be_bytes([c0, c1, c2, c3]);
    let computed = crc32fast::hash(&lengths);
    // The CRC first: the lengths mean nothing until it matches.
    if sent != computed {
        return Err(EventStreamError::PreludeCrc { sent, computed });
    }
    let total = to_usize(u32::from_be_bytes([t0, t1, t2, t3]));
    let headers = to_usize(u32::from_be_bytes([h0, h1, h2, h3]));
    if total < MIN_MESSAGE_BYTES {
        return Err(EventStreamError::TooShort(total));
    }
    if total > max_message_bytes {
        return Err(EventStreamError::TooLarge {
            len: total,
            max: max_message_bytes,
        });
    }
    if headers > total - MIN_MESSAGE_BYTES {
        return Err(EventStreamError::HeadersLength { headers, total });
    }
    Ok((total, headers))
}

/// Decodes one whole message whose prelude [`check_prelude`] accepted.
fn decode_frame(frame: &Bytes, headers_len: usize) -> Result<Message, EventStreamError> {
    // `check_prelude` guarantees these ranges; a failed `get` would mean a bug here, reported
    // as the lengths' fault rather than a panic.
    let bad_lengths = || EventStreamError::HeadersLength {
        headers: headers_len,
        total: frame.len(),
    };
    let body_len = frame.len().checked_sub(CRC_LEN).ok_or_else(bad_lengths)?;
    let (body, crc) = frame.split_at_checked(body_len).ok_or_else(bad_lengths)?;
    let crc: [u8; CRC_LEN] = crc.try_into().map_err(|_| bad_lengths())?;
    let sent = u32::from_be_bytes(crc);
    let computed = crc32fast::hash(body);
    if sent != computed {
        return Err(EventStreamError::MessageCrc { sent, computed });
    }
    let payload_start = PRELUDE_LEN + headers_len;
    let headers = sub_bytes(frame, PRELUDE_LEN, payload_start).ok_or_else(bad_lengths)?;
    let payload = sub_bytes(frame, payload_start, body_len).ok_or_else(bad_lengths)?;
    let headers = decode_headers(headers).map_err(EventStreamError::MalformedHeader)?;
    Ok(Message { headers, payload })
}

fn decode_headers(section: Bytes) -> Result<Vec<(String, HeaderValue)>, HeaderFault> {
    let mut r = Reader {
        buf: section,
        pos: 0,
    };
    let mut headers = Vec::new();
    while !r.at_end() {
        let [name_len] = r.array()?;
        let name = r.take(usize::from(name_len))?;
        let name = std::str::from_utf8(&name)
            .map_err(|_| HeaderFault::InvalidName)?
            .to_owned();
        let [value_type] = r.array()?;
        let value = match value_type {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(r.array()?)),
            3 => HeaderValue::Int16(i16::from_be_bytes(r.array()?)),
            4 => HeaderValue::Int32(i32::from_be_bytes(r.array()?)),
            5 => HeaderValue::Int64(i64::from_be_bytes(r.array()?)),
            6 => {
                let len = u16::from_be_bytes(r.array()?);
                HeaderValue::Bytes(r.take(usize::from(len))?)
            }
            7 => {
                let len = u16::from_be_bytes(r.array()?);
                let value = r.take(usize::from(len))?;
                let value = std::str::from_utf8(&value).map_err(|_| HeaderFault::InvalidString)?;
                HeaderValue::String(value.to_owned())
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(r.array()?)),
            9 => HeaderValue::Uuid(r.array()?),
            other => return Err(HeaderFault::UnknownType(other)),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// A cursor over the headers section; every read is bounds-checked.
struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next `len` bytes, sharing the message's buffer.
    fn take(&mut self, len: usize) -> Result<Bytes, HeaderFault> {
        let end = self.pos.checked_add(len).ok_or(HeaderFault::Truncated)?;
        let out = sub_bytes(&self.buf, self.pos, end).ok_or(HeaderFault::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], HeaderFault> {
        let end = self.pos.checked_add(N).ok_or(HeaderFault::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(HeaderFault::Truncated)?;
        let out = bytes.try_into().map_err(|_| HeaderFault::Truncated)?;
        self.pos = end;
        Ok(out)
    }
}

/// `bytes[start..end]` without copying, or `None` where `Bytes::slice` would panic.
fn sub_bytes(bytes: &Bytes, start: usize, end: usize) -> Option<Bytes> {
    (start <= end && end <= bytes.len()).then(|| bytes.slice(start..end))
}

fn to_usize(n: u32) -> usize {
    // Lossless on every target the gateway builds for; saturating keeps 16-bit targets safe
    // (the length then exceeds any limit and is rejected).
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Encodes one message. For tests and mock upstreams: the gateway itself only decodes.
///
/// The function never fails: a name longer than 255 bytes, or a byte or string value longer
/// than 65535 bytes, is cut to that length (a string possibly inside a UTF-8 character, which
/// the decoder then rejects). AWS never sends such headers, so neither should a mock.
pub fn encode_message(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut section = Vec::new();
    for (name, value) in headers {
        let name = clamp(name.as_bytes(), usize::from(u8::MAX));
        section.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        section.extend_from_slice(name);
        match value {
            HeaderValue::Bool(true) => section.push(0),
            HeaderValue::Bool(false) => section.push(1),
            HeaderValue::Byte(v) => {
                section.push(2);
                section.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int16(v) => {
                section.push(3);
                section.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int32(v) => {
                section.push(4);
                section.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int64(v) => {
                section.push(5);
                section.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(v) => {
                section.push(6);
                push_u16_prefixed(&mut section, v);
            }
            HeaderValue::String(v) => {
                section.push(7);
                push_u16_prefixed(&mut section, v.as_bytes());
            }
            HeaderValue::Timestamp(v) => {
                section.push(8);
                section.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(v) => {
                section.push(9);
                section.extend_from_slice(v);
            }
        }
    }
    let total = PRELUDE_LEN + section.len() + payload.len() + CRC_LEN;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&to_u32(total).to_be_bytes());
    out.extend_from_slice(&to_u32(section.len()).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&section);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

fn push_u16_prefixed(out: &mut Vec<u8>, value: &[u8]) {
    let value = clamp(value, usize::from(u16::MAX));
    out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(value);
}

fn clamp(bytes: &[u8], max: usize) -> &[u8] {
    bytes.get(..max).unwrap_or(bytes)
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` pushed in the given chunks: the messages, then the first error (from
    /// `next_message`, or else from `finish`).
    fn decode_chunks<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
        max: usize,
    ) -> (Vec<Message>, Option<EventStreamError>) {
        let mut d = EventStreamDecoder::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            d.push(chunk);
            loop {
                match d.next_message() {
                    Ok(Some(m)) => out.push(m),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
            assert!(
                d.buf.len() < max.max(PRELUDE_LEN),
                "buffered past the limit"
            );
        }
        (out, d.finish().err())
    }

    fn decode_all(input: &[u8]) -> (Vec<Message>, Option<EventStreamError>) {
        decode_chunks([input], DEFAULT_MAX_MESSAGE_BYTES)
    }

    fn decode_one(input: &[u8]) -> Result<Message, EventStreamError> {
        match decode_all(input) {
            (mut msgs, None) if msgs.len() == 1 => Ok(msgs.remove(0)),
            (_, Some(e)) => Err(e),
            (msgs, None) => panic!("expected one message, got {}", msgs.len()),
        }
    }

    fn reencode(m: &Message) -> Vec<u8> {
        let headers: Vec<(&str, HeaderValue)> = m
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        encode_message(&headers, &m.payload)
    }

    /// A frame with the given raw headers section and correct lengths and CRCs, for headers
    /// that `encode_message` cannot write.
    fn raw_frame(section: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = PRELUDE_LEN + section.len() + payload.len() + CRC_LEN;
        let mut out = Vec::new();
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(section.len() as u32).to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out.extend_from_slice(section);
        out.extend_from_slice(payload);
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out
    }

    /// A prelude with the given lengths and a correct CRC.
    fn prelude(total: u32, headers: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&headers.to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out
    }

    fn all_types() -> Vec<(&'static str, HeaderValue)> {
        vec![
            (":message-type", "event".into()),
            (":event-type", "contentBlockDelta".into()),
            (":content-type", "application/json".into()),
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("byte", HeaderValue::Byte(-7)),
            ("i16", HeaderValue::Int16(-300)),
            ("i32", HeaderValue::Int32(i32::MIN)),
            ("i64", HeaderValue::Int64(i64::MAX)),
            (
                "bytes",
                HeaderValue::Bytes(Bytes::from_static(&[0, 255, 1])),
            ),
            ("empty", HeaderValue::String(String::new())),
            ("ts", HeaderValue::Timestamp(1_700_000_000_123)),
            ("uuid", HeaderValue::Uuid(*b"0123456789abcdef")),
            ("", "empty name".into()),
        ]
    }

    // The vectors below are the shared event-stream test vectors of the AWS SDKs (written by
    // awslabs/aws-c-event-stream, bin/event_stream_write_test_case.c), as published in
    // smithy-lang/smithy-typescript, packages/eventstream-codec/src/TestVectors.fixture.ts. Bytes
    // copied as data; the payload of the non-empty ones is `{'foo':'bar'}`.
    const FOO_BAR: &[u8] = b"{'foo':'bar'}";
    const ALL_HEADERS: [u8; 204] = [
        0, 0, 0, 204, 0, 0, 0, 175, 15, 174, 100, 202, 10, 101, 118, 101, 110, 116, 45, 116, 121,
        112, 101, 4, 0, 0, 160, 12, 12, 99, 111, 110, 116, 101, 110, 116, 45, 116, 121, 112, 101,
        7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116, 105, 111, 110, 47, 106, 115, 111, 110, 10,
        98, 111, 111, 108, 32, 102, 97, 108, 115, 101, 1, 9, 98, 111, 111, 108, 32, 116, 114, 117,
        101, 0, 4, 98, 121, 116, 101, 2, 207, 8, 98, 121, 116, 101, 32, 98, 117, 102, 6, 0, 20, 73,
        39, 109, 32, 97, 32, 108, 105, 116, 116, 108, 101, 32, 116, 101, 97, 112, 111, 116, 33, 9,
        116, 105, 109, 101, 115, 116, 97, 109, 112, 8, 0, 0, 0, 0, 0, 132, 95, 237, 5, 105, 110,
        116, 49, 54, 3, 0, 42, 5, 105, 110, 116, 54, 52, 5, 0, 0, 0, 0, 2, 135, 87, 178, 4, 117,
        117, 105, 100, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 123, 39, 102, 111,
        111, 39, 58, 39, 98, 97, 114, 39, 125, 171, 165, 241, 12,
    ];
    const EMPTY_MESSAGE: [u8; 16] = [0, 0, 0, 16, 0, 0, 0, 0, 5, 194, 72, 235, 125, 152, 200, 255];
    const INT32_HEADER: [u8; 45] = [
        0, 0, 0, 45, 0, 0, 0, 16, 65, 196, 36, 184, 10, 101, 118, 101, 110, 116, 45, 116, 121, 112,
        101, 4, 0, 0, 160, 12, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39, 125, 54, 244,
        128, 160,
    ];
    const PAYLOAD_NO_HEADERS: [u8; 29] = [
        0, 0, 0, 29, 0, 0, 0, 0, 253, 82, 140, 90, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114,
        39, 125, 195, 101, 57, 54,
    ];
    const PAYLOAD_ONE_STR_HEADER: [u8; 61] = [
        0, 0, 0, 61, 0, 0, 0, 32, 7, 253, 131, 150, 12, 99, 111, 110, 116, 101, 110, 116, 45, 116,
        121, 112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116, 105, 111, 110, 47, 106, 115,
        111, 110, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39, 125, 141, 156, 8, 177,
    ];

    #[test]
    fn published_vectors_decode_and_encode_byte_for_byte() {
        let empty = decode_one(&EMPTY_MESSAGE).unwrap();
        assert!(empty.headers.is_empty() && empty.payload.is_empty());
        assert_eq!(encode_message(&[], b""), EMPTY_MESSAGE);

        let int32 = decode_one(&INT32_HEADER).unwrap();
        assert_eq!(
            int32.headers,
            vec![("event-type".to_owned(), HeaderValue::Int32(40972))]
        );
        assert_eq!(&int32.payload[..], FOO_BAR);
        assert_eq!(
            encode_message(&[("event-type", HeaderValue::Int32(40972))], FOO_BAR),
            INT32_HEADER
        );

        let no_headers = decode_one(&PAYLOAD_NO_HEADERS).unwrap();
        assert!(no_headers.headers.is_empty());
        assert_eq!(&no_headers.payload[..], FOO_BAR);
        assert_eq!(encode_message(&[], FOO_BAR), PAYLOAD_NO_HEADERS);

        let one_str = decode_one(&PAYLOAD_ONE_STR_HEADER).unwrap();
        assert_eq!(one_str.header_str("content-type"), Some("application/json"));
        assert_eq!(&one_str.payload[..], FOO_BAR);
        let headers = [("content-type", "application/json".into())];
        assert_eq!(encode_message(&headers, FOO_BAR), PAYLOAD_ONE_STR_HEADER);
    }

    #[test]
    fn published_all_headers_vector() {
        // One header of every type; the reference decoder's values, in wire order.
        let headers = [
            ("event-type", HeaderValue::Int32(40972)),
            ("content-type", "application/json".into()),
            ("bool false", HeaderValue::Bool(false)),
            ("bool true", HeaderValue::Bool(true)),
            ("byte", HeaderValue::Byte(-49)),
            (
                "byte buf",
                HeaderValue::Bytes(Bytes::from_static(b"I'm a little teapot!")),
            ),
            ("timestamp", HeaderValue::Timestamp(8675309)),
            ("int16", HeaderValue::Int16(42)),
            ("int64", HeaderValue::Int64(42424242)),
            (
                "uuid",
                HeaderValue::Uuid([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]),
            ),
        ];
        let m = decode_one(&ALL_HEADERS).unwrap();
        let expected: Vec<(String, HeaderValue)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        assert_eq!(m.headers, expected);
        assert_eq!(&m.payload[..], FOO_BAR);
        assert_eq!(encode_message(&headers, FOO_BAR), ALL_HEADERS);
    }

    #[test]
    fn published_negative_vectors_are_rejected() {
        // Same source; each negative vector is a positive one with one byte changed.
        let mut corrupted_length = PAYLOAD_ONE_STR_HEADER;
        corrupted_length[3] = 62;
        assert!(matches!(
            decode_one(&corrupted_length),
            Err(EventStreamError::PreludeCrc { .. })
        ));

        let mut corrupted_header_len = PAYLOAD_ONE_STR_HEADER;
        corrupted_header_len[7] = 33;
        assert!(matches!(
            decode_one(&corrupted_header_len),
            Err(EventStreamError::PreludeCrc { .. })
        ));

        let mut corrupted_headers = PAYLOAD_ONE_STR_HEADER;
        corrupted_headers[45] = 97;
        assert!(matches!(
            decode_one(&corrupted_headers),
            Err(EventStreamError::MessageCrc { .. })
        ));

        let mut corrupted_payload = PAYLOAD_NO_HEADERS;
        corrupted_payload[12] = 91;
        assert!(matches!(
            decode_one(&corrupted_payload),
            Err(EventStreamError::MessageCrc { .. })
        ));
    }

    #[test]
    fn round_trips_every_header_type() {
        let headers = all_types();
        for payload in [&b""[..], b"{\"delta\":{\"text\":\"hi\"}}", &[0xff; 70_000]] {
            let bytes = encode_message(&headers, payload);
            let m = decode_one(&bytes).unwrap();
            assert_eq!(m.headers.len(), headers.len());
            for ((name, value), (got_name, got_value)) in headers.iter().zip(&m.headers) {
                assert_eq!(name, got_name);
                assert_eq!(value, got_value);
            }
            assert_eq!(&m.payload[..], payload);
            assert_eq!(reencode(&m), bytes);
        }
    }

    #[test]
    fn header_helpers() {
        let m = decode_one(&encode_message(&all_types(), b"canary-7f3a")).unwrap();
        assert_eq!(m.header_str(MESSAGE_TYPE), Some("event"));
        assert_eq!(m.header_str(EVENT_TYPE), Some("contentBlockDelta"));
        assert_eq!(m.header_str(CONTENT_TYPE), Some("application/json"));
        assert_eq!(m.header_str(EXCEPTION_TYPE), None);
        assert_eq!(m.header_str("i32"), None, "not a string");
        assert_eq!(m.header("i32"), Some(&HeaderValue::Int32(i32::MIN)));
        let debug = format!("{m:?}");
        assert!(
            !debug.contains("canary") && debug.contains("payload_len: 11"),
            "{debug}"
        );
    }

    fn three_messages() -> (Vec<Vec<u8>>, Vec<u8>) {
        let frames = vec![
            encode_message(&all_types(), b"first"),
            encode_message(&[], b""),
            encode_message(
                &[
                    (MESSAGE_TYPE, "exception".into()),
                    (EXCEPTION_TYPE, "throttlingException".into()),
                ],
                b"{\"message\":\"slow down\"}",
            ),
        ];
        let stream = frames.concat();
        (frames, stream)
    }

    #[test]
    fn several_messages_in_one_push() {
        let (frames, stream) = three_messages();
        let (msgs, err) = decode_all(&stream);
        assert_eq!(err, None);
        let reencoded: Vec<Vec<u8>> = msgs.iter().map(reencode).collect();
        assert_eq!(reencoded, frames);
        assert_eq!(
            msgs[2].header_str(EXCEPTION_TYPE),
            Some("throttlingException")
        );
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let (_, stream) = three_messages();
        let whole = decode_all(&stream);
        assert_eq!(whole.0.len(), 3);
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(
                decode_chunks([a, b], DEFAULT_MAX_MESSAGE_BYTES),
                whole,
                "split at {at}"
            );
        }
        assert_eq!(
            decode_chunks(stream.chunks(1), DEFAULT_MAX_MESSAGE_BYTES),
            whole
        );
    }

    #[test]
    fn truncated_input_at_every_length() {
        let (frames, stream) = three_messages();
        let ends: Vec<usize> = frames
            .iter()
            .scan(0, |end, f| {
                *end += f.len();
                Some(*end)
            })
            .collect();
        for len in 0..stream.len() {
            let (msgs, err) = decode_all(&stream[..len]);
            let complete = ends.iter().filter(|&&end| end <= len).count();
            assert_eq!(msgs.len(), complete, "length {len}");
            let last_end = ends
                .iter()
                .copied()
                .filter(|&end| end <= len)
                .max()
                .unwrap_or(0);
            if len == last_end {
                assert_eq!(err, None, "length {len} ends on a boundary");
            } else {
                assert_eq!(
                    err,
                    Some(EventStreamError::Truncated {
                        buffered: len - last_end
                    })
                );
            }
        }
    }

    #[test]
    fn flipped_bits_are_caught_by_the_right_checksum() {
        let frame = encode_message(
            &[(EVENT_TYPE, "messageStop".into())],
            b"{\"stopReason\":\"end\"}",
        );
        for byte in 0..frame.len() {
            for bit in 0..8 {
                let mut bad = frame.clone();
                bad[byte] ^= 1 << bit;
                let err = decode_one(&bad).unwrap_err();
                if byte < PRELUDE_LEN {
                    // Lengths and the prelude CRC itself.
                    assert!(
                        matches!(err, EventStreamError::PreludeCrc { .. }),
                        "{byte}.{bit}: {err}"
                    );
                } else {
                    // Headers, payload and the message CRC itself.
                    assert!(
                        matches!(err, EventStreamError::MessageCrc { .. }),
                        "{byte}.{bit}: {err}"
                    );
                }
            }
        }
    }

    #[test]
    fn lengths_out_of_range() {
        assert_eq!(
            decode_one(&prelude(15, 0)),
            Err(EventStreamError::TooShort(15))
        );
        assert_eq!(
            decode_one(&prelude(0, 0)),
            Err(EventStreamError::TooShort(0))
        );
        assert_eq!(
            decode_one(&prelude(20, 5)),
            Err(EventStreamError::HeadersLength {
                headers: 5,
                total: 20
            })
        );
        assert_eq!(
            decode_one(&prelude(u32::MAX, 0)),
            Err(EventStreamError::TooLarge {
                len: u32::MAX as usize,
                max: DEFAULT_MAX_MESSAGE_BYTES
            })
        );

        // The limit is the whole message: exactly the limit passes, one byte more does not, and
        // the second is refused from its prelude alone, before the rest is buffered.
        let frame = encode_message(&[], &[7; 84]);
        assert_eq!(frame.len(), 100);
        assert_eq!(decode_chunks([&frame[..]], 100).1, None);
        assert_eq!(
            decode_chunks([&frame[..PRELUDE_LEN]], 99).1,
            Some(EventStreamError::TooLarge { len: 100, max: 99 })
        );
    }

    #[test]
    fn malformed_headers() {
        let cases: [(&[u8], HeaderFault); 9] = [
            (&[5, b'a', b'b'], HeaderFault::Truncated), // name cut short
            (&[1, b'a'], HeaderFault::Truncated),       // no value type
            (&[1, b'a', 4, 0, 0], HeaderFault::Truncated), // int32 cut short
            (&[1, b'a', 7, 0], HeaderFault::Truncated), // string length cut short
            (&[1, b'a', 7, 0, 9, b'x'], HeaderFault::Truncated), // string cut short
            (&[1, b'a', 9, 1, 2, 3], HeaderFault::Truncated), // uuid cut short
            (&[1, b'a', 10], HeaderFault::UnknownType(10)),
            (&[2, 0xc3, 0x28, 0], HeaderFault::InvalidName),
            (&[1, b'a', 7, 0, 2, 0xff, 0xfe], HeaderFault::InvalidString),
        ];
        for (section, fault) in cases {
            assert_eq!(
                decode_one(&raw_frame(section, b"payload")),
                Err(EventStreamError::MalformedHeader(fault)),
                "{section:?}"
            );
        }
        // A valid header followed by a bad one fails as a whole.
        let mut section = vec![1, b'a', 0];
        section.extend_from_slice(&[1, b'b', 200]);
        assert_eq!(
            decode_one(&raw_frame(&section, b"")),
            Err(EventStreamError::MalformedHeader(HeaderFault::UnknownType(
                200
            )))
        );
    }

    #[test]
    fn an_error_is_final() {
        let good = encode_message(&[], b"ok");
        let mut bad = good.clone();
        bad[13] ^= 1;
        let mut d = EventStreamDecoder::default();
        d.push(&good);
        d.push(&bad);
        d.push(&good);
        assert!(d.next_message().unwrap().is_some());
        let err = d.next_message().unwrap_err();
        assert!(matches!(err, EventStreamError::MessageCrc { .. }));
        d.push(&good);
        assert_eq!(d.next_message(), Err(err.clone()));
        assert_eq!(d.finish(), Err(err));
        assert!(d.buf.is_empty(), "the buffer is freed");
    }

    #[test]
    fn encoder_clamps_oversized_fields() {
        let long_name = "n".repeat(300);
        let long_value = HeaderValue::Bytes(Bytes::from(vec![1; 70_000]));
        let m = decode_one(&encode_message(&[(long_name.as_str(), long_value)], b"")).unwrap();
        assert_eq!(m.headers[0].0.len(), 255);
        assert!(matches!(&m.headers[0].1, HeaderValue::Bytes(b) if b.len() == 65535));
    }

    /// xorshift64: a tiny deterministic generator, so failures reproduce without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }

        /// Fewer than `bound` random bytes.
        fn bytes_below(&mut self, bound: usize) -> Vec<u8> {
            let len = self.below(bound);
            self.bytes(len)
        }

        /// `input` cut into random chunks, some empty.
        fn chunks<'a>(&mut self, mut input: &'a [u8]) -> Vec<&'a [u8]> {
            let mut out = Vec::new();
            while !input.is_empty() {
                let (a, b) = input.split_at(self.below(input.len().min(64) + 1));
                out.push(a);
                input = b;
            }
            out
        }

        fn header_value(&mut self) -> HeaderValue {
            match self.below(9) {
                0 => HeaderValue::Bool(self.next() & 1 == 0),
                1 => HeaderValue::Byte(self.next() as i8),
                2 => HeaderValue::Int16(self.next() as i16),
                3 => HeaderValue::Int32(self.next() as i32),
                4 => HeaderValue::Int64(self.next() as i64),
                5 => HeaderValue::Bytes(Bytes::from(self.bytes_below(20))),
                6 => HeaderValue::String("é\u{1F600}x".repeat(self.below(4))),
                7 => HeaderValue::Timestamp(self.next() as i64),
                _ => HeaderValue::Uuid(self.next().to_be_bytes().repeat(2).try_into().unwrap()),
            }
        }

        fn frame(&mut self) -> Vec<u8> {
            let names: Vec<String> = (0..self.below(5)).map(|i| format!(":h{i}")).collect();
            let headers: Vec<(&str, HeaderValue)> = names
                .iter()
                .map(|n| (n.as_str(), self.header_value()))
                .collect();
            encode_message(&headers, &self.bytes_below(40))
        }
    }

    /// What any decode must satisfy: the same result however the input is chunked, messages
    /// that re-encode to exactly the bytes they came from, and only a truncation at the end
    /// when there is no other error.
    fn check_sane(
        rng: &mut Rng,
        input: &[u8],
        max: usize,
    ) -> (Vec<Message>, Option<EventStreamError>) {
        let whole = decode_chunks([input], max);
        let chunks = rng.chunks(input);
        assert_eq!(
            decode_chunks(chunks, max),
            whole,
            "chunking changed the result"
        );
        let consumed: Vec<u8> = whole.0.iter().flat_map(reencode).collect();
        assert!(
            input.starts_with(&consumed),
            "decoded messages are not the input's prefix"
        );
        if let Some(EventStreamError::Truncated { buffered }) = whole.1 {
            assert_eq!(consumed.len() + buffered, input.len());
        }
        whole
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2_000 {
            let len = rng.below(200);
            let input = rng.bytes(len);
            let max = [16, 64, DEFAULT_MAX_MESSAGE_BYTES][rng.below(3)];
            check_sane(&mut rng, &input, max);
        }
    }

    #[test]
    fn random_header_sections_behind_valid_checksums() {
        // Random bytes almost never pass the prelude CRC; wrapping them in correct lengths and
        // CRCs reaches the header parser with arbitrary input.
        let mut rng = Rng(42);
        let mut decoded = 0;
        for _ in 0..5_000 {
            let mut section = rng.bytes_below(40);
            // Bias towards plausible headers: a short name and a known type.
            if section.len() > 3 && rng.below(2) == 0 {
                section[0] = 1;
                section[2] = rng.below(11) as u8;
            }
            let frame = raw_frame(&section, &rng.bytes_below(8));
            match check_sane(&mut rng, &frame, DEFAULT_MAX_MESSAGE_BYTES) {
                (msgs, None) => {
                    assert_eq!(msgs.len(), 1);
                    decoded += 1;
                }
                (msgs, Some(EventStreamError::MalformedHeader(_))) => assert!(msgs.is_empty()),
                (_, Some(other)) => panic!("unexpected {other}"),
            }
        }
        assert!(decoded > 100, "only {decoded} random sections decoded");
    }

    #[test]
    fn random_mutations_of_valid_streams() {
        let mut rng = Rng(7);
        for round in 0..1_000 {
            let frames: Vec<Vec<u8>> = (0..1 + rng.below(4)).map(|_| rng.frame()).collect();
            let stream = frames.concat();
            let (msgs, err) = check_sane(&mut rng, &stream, DEFAULT_MAX_MESSAGE_BYTES);
            assert_eq!(err, None);
            assert_eq!(msgs.len(), frames.len());

            // One flipped bit: every message before it decodes, the one holding it fails
            // (CRC-32 catches every single-bit error), and nothing after it is decoded.
            let at = rng.below(stream.len());
            let mut flipped = stream.clone();
            flipped[at] ^= 1 << rng.below(8);
            let (msgs, err) = check_sane(&mut rng, &flipped, DEFAULT_MAX_MESSAGE_BYTES);
            let hit = frames
                .iter()
                .scan(0, |end, f| {
                    *end += f.len();
                    Some(*end)
                })
                .position(|end| at < end)
                .unwrap();
            assert_eq!(msgs.len(), hit, "round {round}");
            assert!(
                matches!(
                    err,
                    Some(EventStreamError::PreludeCrc { .. } | EventStreamError::MessageCrc { .. })
                ),
                "round {round}: {err:?}"
            );

            // Heavier damage: random overwrites, insertions, deletions, truncation.
            let mut mutated = stream.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(mutated.len());
                match rng.below(4) {
                    0 => mutated[at] = rng.next() as u8,
                    1 => mutated.insert(at, rng.next() as u8),
                    2 => {
                        mutated.remove(at);
                    }
                    _ => mutated.truncate(at),
                }
                if mutated.is_empty() {
                    break;
                }
            }
            let max = 1 + rng.below(200);
            check_sane(&mut rng, &mutated, max);
        }
    }
}
