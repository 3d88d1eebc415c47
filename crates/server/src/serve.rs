//! `portcullis serve`: loads the config, starts logging, the listener and the reload watcher,
//! and shuts down gracefully: on SIGTERM or SIGINT it stops accepting, fails `/readyz`, lets
//! requests and streams in flight finish within `server.shutdown_grace`, then exits. A second
//! signal exits at once.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use portcullis_core::config::Config;
use portcullis_core::provider::client;
use portcullis_core::virtual_key::KeyHasher;
use portcullis_core::{AccessLog, Gateway, Runtime};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::cli::ServeArgs;
use crate::http::{AppState, router};
use crate::reload::Reloader;
use crate::stored_keys;

pub fn run(args: ServeArgs) -> ExitCode {
    let config = match Config::load(&args.config.config) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!(
                "portcullis: the config {} is invalid:",
                args.config.config.display()
            );
            for p in problems {
                eprintln!("  {p}");
            }
            return ExitCode::FAILURE;
        }
    };
    let (_log_guard, access_log) = match crate::logging::init(&config.logging) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("portcullis: cannot start logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args, config, access_log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "the gateway stopped on an error");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    args: ServeArgs,
    config: Config,
    access_log: Option<Arc<dyn AccessLog>>,
) -> anyhow::Result<()> {
    let http = client::build(config.server.connect_timeout).context("building the HTTP client")?;
    let gateway = Arc::new(Gateway::new(Runtime::build(&config, &http), access_log));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut admin = None;
    if let Some(store_config) = &config.store {
        let secret = config
            .auth
            .hashing_secret
            .as_ref()
            .context("a store needs auth.hashing_secret")?;
        let hasher = Arc::new(
            KeyHasher::new(secret.expose_secret().as_bytes())
                .context("auth.hashing_secret is too short")?,
        );
        let store = stored_keys::open(store_config).await?;
        admin = Some(crate::admin::AdminState {
            gateway: gateway.clone(),
            store: store.clone(),
            hasher: hasher.clone(),
        });
        let table = stored_keys::load(store.as_ref(), &hasher)
            .await
            .context("cannot read the store's keys")?;
        tracing::info!(keys = table.len(), "store opened");
        gateway.set_stored_keys(table);
        tokio::spawn(stored_keys::refresh(
            gateway.clone(),
            store,
            hasher,
            stop_rx.clone(),
        ));
    }
    let listen = args.listen.unwrap_or(config.server.listen);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let runtime = gateway.runtime();
    if runtime.keys.is_empty() && gateway.stored_keys().is_none() && runtime.oidc.is_none() {
        tracing::warn!("no API keys are configured: every API request will be rejected");
    }
    tracing::info!(
        addr = %addr,
        version = env!("CARGO_PKG_VERSION"),
        models = config.models.len(),
        providers = config.providers.len(),
        oidc = runtime.oidc.is_some(),
        "listening"
    );
    // The first snapshot is not kept alive past the first reload.
    drop(runtime);

    let reloader = Reloader::new(
        gateway.clone(),
        args.config.config.clone(),
        http,
        config.server.clone(),
        config.logging.clone(),
    );
    tokio::spawn(reloader.run(config.reload.clone(), stop_rx.clone()));
    tokio::spawn(wait_for_signals(gateway.clone(), stop_tx));

    let state = AppState {
        gateway,
        max_body_bytes: config.server.max_body_bytes,
    };
    let mut app = router(state);
    if let Some(admin) = admin {
        app = crate::admin::router(admin).merge(app);
    }
    crate::listener::serve(listener, app, stop_rx, config.server.shutdown_grace).await;
    tracing::info!("stopped");
    Ok(())
}

/// First SIGTERM/SIGINT: drain. Second: exit now.
async fn wait_for_signals(gateway: Arc<Gateway>, stop: watch::Sender<bool>) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; graceful shutdown is unavailable");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "shutting down: finishing requests in flight");
    gateway.start_draining();
    let _ = stop.send(true);
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::warn!("second signal: exiting now");
    std::process::exit(130);
}
