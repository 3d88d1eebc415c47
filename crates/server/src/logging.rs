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
    };
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

thread_local! {
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl AccessLog for AccessWriter {
    fn write(&self, record: &AccessRecord<'_>) {
        let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
        LINE.with_borrow_mut(|line| {
            line.clear();
            match self.format {
                LogFormat::Json => {
                    let _ = write!(
                        line,
                        r#"{{"timestamp":"{now}","level":"INFO","message":"request finished","target":"portcullis::access","#
                    );
                    let start = line.len();
                    if serde_json::to_writer(&mut *line, record).is_err() {
                        return;
                    }
                    // Splice the record's fields into the object opened above.
                    line.remove(start);
                }
                LogFormat::Human => {
                    let _ = write!(line, "{now}  INFO portcullis::access: request finished");
                    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(record) {
                        for (k, v) in fields {
                            let _ = write!(line, " {k}={v}");
                        }
                    }
                }
            }
            line.push(b'\n');
            self.out.append(line);
        });
    }
}
