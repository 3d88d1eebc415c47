//! Structured logs: JSON (one object per line) or human-readable, to standard output.
//! `PORTCULLIS_LOG` overrides the configured level with an env-filter directive (e.g.
//! `info,portcullis::access=off`).
//!
//! Lines are not written one by one: a request only appends its line to a shared buffer, and a
//! background thread writes the buffer in batches (every 50 ms, or sooner once 64 KiB wait).
//! One write syscall per request, plus a thread wake-up per line, was the largest cost of the
//! access log at load. If the output stalls (a full pipe), the buffer grows to 16 MiB and then
//! writers block on the output: logs are never dropped, and memory stays bounded.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use portcullis_core::config::{LogFormat, LoggingConfig};
use portcullis_core::pipeline::record::Field;
use portcullis_core::{AccessLog, AccessRecord};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const FLUSH_EVERY: Duration = Duration::from_millis(50);
const FLUSH_AT: usize = 64 * 1024;
const BLOCK_AT: usize = 16 * 1024 * 1024;

/// Installs the global subscriber and returns the access-log sink (when `access_log` is on)
/// writing to the same output. Keep the guard alive until exit: dropping it flushes.
pub fn init(config: &LoggingConfig) -> anyhow::Result<(LogGuard, Option<Arc<dyn AccessLog>>)> {
    let filter = match std::env::var("PORTCULLIS_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::try_new(directive)?,
        _ => EnvFilter::try_new(&config.level)?,
    }
    // The SigV4 signer traces canonical requests, session tokens included: never log them.
    .add_directive("aws_sigv4=off".parse()?);
    let (writer, guard) = BatchWriter::start()?;
    let access: Option<Arc<dyn AccessLog>> = config.access_log.then(|| {
        Arc::new(AccessWriter {
            format: config.format,
            out: writer.0.clone(),
        }) as Arc<dyn AccessLog>
    });
    let registry = tracing_subscriber::registry().with(filter);
    match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init()?,
        LogFormat::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                    .with_writer(writer),
            )
            .try_init()?,
    }
    Ok((guard, access))
}

#[derive(Debug, Default)]
struct Shared {
    buf: Mutex<Vec<u8>>,
    wake: Condvar,
    closed: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buf
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn write_out(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    // Nowhere to report a failing log output: the process keeps serving.
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

/// The `MakeWriter` handed to the fmt layer.
#[derive(Debug, Clone)]
struct BatchWriter(Arc<Shared>);

impl BatchWriter {
    fn start() -> std::io::Result<(Self, LogGuard)> {
        let shared = Arc::new(Shared::default());
        let flusher = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || flush_loop(&flusher))?;
        Ok((
            Self(shared.clone()),
            LogGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

fn flush_loop(shared: &Shared) {
    let mut spare = Vec::with_capacity(FLUSH_AT);
    loop {
        let closed = shared.closed.load(std::sync::atomic::Ordering::Acquire);
        {
            let mut buf = shared.lock();
            if !closed && buf.len() < FLUSH_AT {
                buf = shared
                    .wake
                    .wait_timeout(buf, FLUSH_EVERY)
                    .map_or_else(|e| e.into_inner().0, |(b, _)| b);
            }
            std::mem::swap(&mut *buf, &mut spare);
        }
        if !spare.is_empty() {
            write_out(&spare);
            spare.clear();
        }
        if closed {
            return;
        }
    }
}

impl Shared {
    /// Appends one or more whole lines.
    fn append(&self, bytes: &[u8]) {
        let mut buf = self.lock();
        if buf.len() >= BLOCK_AT {
            // The output is stalled: write through, holding the lock, so producers wait.
            write_out(&buf);
            buf.clear();
        }
        let before = buf.len();
        buf.extend_from_slice(bytes);
        if before < FLUSH_AT && buf.len() >= FLUSH_AT {
            self.wake.notify_one();
        }
    }
}

/// One line being written.
#[derive(Debug)]
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.0)
    }
}

/// Flushes the remaining lines when dropped.
#[derive(Debug)]
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes access records as log lines of the configured format, shaped like the other lines
/// (`timestamp`, `level`, `message`, `target`, then the record's fields).
#[derive(Debug)]
struct AccessWriter {
    format: LogFormat,
    out: Arc<Shared>,
}

/// The per-thread line buffer, and the timestamp down to the second, formatted once per second.
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    second: u64,
    second_text: String,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

impl Scratch {
    /// `2026-01-02T03:04:05.123456Z`, the format of the other log lines.
    fn timestamp(&mut self) -> String {
        let now = std::time::SystemTime::now();
        let since = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if since.as_secs() != self.second || self.second_text.is_empty() {
            self.second = since.as_secs();
            let full = humantime::format_rfc3339_seconds(now).to_string();
            self.second_text = full.trim_end_matches('Z').to_owned();
        }
        format!("{}.{:06}Z", self.second_text, since.subsec_micros())
    }
}

impl AccessLog for AccessWriter {
    fn write(&self, record: &AccessRecord<'_>) {
        SCRATCH.with_borrow_mut(|scratch| {
            let now = scratch.timestamp();
            let line = &mut scratch.line;
            line.clear();
            match self.format {
                LogFormat::Json => {
                    line.extend_from_slice(b"{\"timestamp\":\"");
                    line.extend_from_slice(now.as_bytes());
                    line.extend_from_slice(
                        br#"","level":"INFO","message":"request finished","target":"portcullis::access""#,
                    );
                    for (name, value) in record.fields() {
                        line.extend_from_slice(b",\"");
                        line.extend_from_slice(name.as_bytes());
                        line.extend_from_slice(b"\":");
                        write_json_value(line, value);
                    }
                    line.push(b'}');
                }
                LogFormat::Human => {
                    let _ = write!(line, "{now}  INFO portcullis::access: request finished");
                    for (name, value) in record.fields() {
                        let _ = write!(line, " {name}=");
                        write_json_value(line, value);
                    }
                }
            }
            line.push(b'\n');
            self.out.append(line);
        });
    }
}

/// Writes one access field as JSON. Written by hand: serde's general serializer was the larger
/// part of the cost of an access line.
fn write_json_value(line: &mut Vec<u8>, value: Field<'_>) {
    match value {
        Field::Str(s) => {
            if s.bytes()
                .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
            {
                line.push(b'"');
                line.extend_from_slice(s.as_bytes());
                line.push(b'"');
            } else {
                let _ = serde_json::to_writer(&mut *line, s);
            }
        }
        Field::Uint(n) => line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        Field::Bool(b) => line.extend_from_slice(if b { b"true" } else { b"false" }),
        Field::Millis(us) => {
            line.extend_from_slice(itoa::Buffer::new().format(us / 1000).as_bytes());
            let frac = us % 1000;
            line.extend_from_slice(&[
                b'.',
                b'0' + (frac / 100) as u8,
                b'0' + (frac / 10 % 10) as u8,
                b'0' + (frac % 10) as u8,
            ]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_values_are_valid_json() {
        let cases = [
            (Field::Str("plain"), r#""plain""#),
            (
                Field::Str("quote\"back\\slash\nnl"),
                r#""quote\"back\\slash\nnl""#,
            ),
            (Field::Uint(42), "42"),
            (Field::Bool(false), "false"),
            (Field::Millis(1_234_567), "1234.567"),
            (Field::Millis(5), "0.005"),
        ];
        for (value, expected) in cases {
            let mut line = Vec::new();
            write_json_value(&mut line, value);
            assert_eq!(String::from_utf8_lossy(&line), expected);
            assert!(serde_json::from_slice::<serde_json::Value>(&line).is_ok());
        }
    }
}
