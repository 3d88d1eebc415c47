//! Structured logs: JSON (one object per line) or human-readable, to standard output through a
//! non-blocking writer so a slow terminal or pipe never stalls requests. `PORTCULLIS_LOG`
//! overrides the configured level with an env-filter directive (e.g. `info,portcullis::access=off`).

use portcullis_core::config::{LogFormat, LoggingConfig};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber. Keep the guard alive until exit so buffered lines flush.
pub fn init(config: &LoggingConfig) -> anyhow::Result<WorkerGuard> {
    let filter = match std::env::var("PORTCULLIS_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::try_new(directive)?,
        _ => EnvFilter::try_new(&config.level)?,
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stdout());
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
    Ok(guard)
}
