//! `portcullis serve`: loads the config (in two phases when a store is configured: the store is
//! opened first, so that the stored credentials the providers reference can be decrypted),
//! starts logging, the listener and the reload watcher,
//! and shuts down gracefully: on SIGTERM or SIGINT it stops accepting, fails `/readyz`, lets
//! requests and streams in flight finish within `server.shutdown_grace`, lets the usage writer
//! drain, then exits. A second signal exits at once.

use portcullis_core::budget::alerts::BudgetAlerts;
use portcullis_core::pipeline::budgets::Budgets;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use portcullis_core::config::{Config, ConfigProblem, ProcessEnv};
use portcullis_core::provider::client;
use portcullis_core::virtual_key::KeyHasher;
use portcullis_core::{AccessLog, Gateway, Runtime};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::admin::credentials::CredentialsState;
use crate::cli::ServeArgs;
use crate::http::{AppState, router};
use crate::reload::{Reloader, Stored};
use crate::{stored_credentials, stored_keys};

pub fn run(args: ServeArgs) -> ExitCode {
    let path = args.config.config.clone();
    let invalid = |problems: Vec<ConfigProblem>| {
        eprintln!("portcullis: the config {} is invalid:", path.display());
        for p in problems {
            eprintln!("  {p}");
        }
        ExitCode::FAILURE
    };
    // Phase one: the store and the master keys, to decrypt the credentials the file references.
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return invalid(vec![ConfigProblem::new(
                "",
                format!("cannot read {}: {e}", path.display()),
            )]);
        }
    };
    let boot = match Config::bootstrap(&text, &ProcessEnv) {
        Ok(b) => b,
        Err(problems) => return invalid(problems),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = match &boot.store {
        Some(store_config) => match runtime.block_on(stored_keys::open(store_config)) {
            Ok(store) => Some(store),
            Err(e) => {
                eprintln!("portcullis: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let keyring = boot.secrets.map(|s| s.keyring);
    // Read before the credentials are, so that a change made meanwhile triggers a reload.
    let credentials_seen = runtime.block_on(crate::reload::fingerprint_of(
        store.as_deref(),
        keyring.as_deref(),
    ));
    // Phase two: the whole file, with the stored credentials it references.
    let loaded = runtime.block_on(stored_credentials::load(
        &text,
        store.as_deref(),
        keyring.as_deref(),
    ));
    let config = match loaded {
        Ok(c) => c,
        Err(problems) => return invalid(problems),
    };
    let (_log_guard, access_log) = match crate::logging::init(&config.logging) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("portcullis: cannot start logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stored = Stored {
        store,
        keyring,
        uses: config.credential_uses.clone(),
        credentials_seen,
    };
    match runtime.block_on(serve(args, config, stored, access_log)) {
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
    stored: Stored,
    access_log: Option<Arc<dyn AccessLog>>,
) -> anyhow::Result<()> {
    let http = client::build(config.server.connect_timeout).context("building the HTTP client")?;
    // Before anything records a metric.
    let metrics = crate::metrics::install();
    let gateway = Arc::new(Gateway::new(Runtime::build(&config, &http), access_log));
    // The limiter's backend is read at start only (its counters live as long as the process).
    let limiter = portcullis_limits::build(&config.limits.backend)
        .context("building the rate limiter (limits.redis)")?;
    gateway.set_limiter(limiter);
    let ledger = portcullis_limits::build_ledger(&config.limits.backend)
        .context("building the budgets' ledger (limits.redis)")?;
    let alerts = Arc::new(BudgetAlerts::new(Some(http.clone())));
    // With a store, a budget window this process has not used yet starts from the store's
    // records of it.
    let source = stored.store.clone().map(|store| {
        Arc::new(crate::budget_seed::StoreSpend(store))
            as Arc<dyn portcullis_core::pipeline::budgets::SpendSource>
    });
    gateway.set_budgets(Budgets::new(ledger, source, alerts));
    let (stop_tx, stop_rx) = watch::channel(false);
    if !config.credential_uses.is_empty() {
        tracing::info!(
            references = config.credential_uses.len(),
            "providers use stored credentials"
        );
    }
    let store = stored.store.clone();
    let keyring = stored.keyring.clone();
    let reloader = Arc::new(Reloader::new(
        gateway.clone(),
        args.config.config.clone(),
        http,
        config.server.clone(),
        config.logging.clone(),
        config.limits.backend.clone(),
        stored,
    ));
    let mut admin = None;
    let mut accounting = None;
    if let Some(store) = store {
        let secret = config
            .auth
            .hashing_secret
            .as_ref()
            .context("a store needs auth.hashing_secret")?;
        let hasher = Arc::new(
            KeyHasher::new(secret.expose_secret().as_bytes())
                .context("auth.hashing_secret is too short")?,
        );
        admin = Some(crate::admin::AdminState {
            gateway: gateway.clone(),
            store: store.clone(),
            hasher: hasher.clone(),
            credentials: CredentialsState {
                keyring,
                reloader: Some(reloader.clone()),
            },
        });
        let table = stored_keys::load(store.as_ref(), &hasher)
            .await
            .context("cannot read the store's keys")?;
        tracing::info!(keys = table.len(), "store opened");
        gateway.set_stored_keys(table);
        if let Some(store_config) = &config.store {
            accounting = Some(crate::usage::start(
                &gateway,
                store.clone(),
                store_config,
                &config.usage,
            )?);
        }
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

    tokio::spawn(reloader.run(config.reload.clone(), stop_rx.clone()));
    tokio::spawn(wait_for_signals(gateway.clone(), stop_tx));

    let state = AppState {
        gateway,
        max_body_bytes: config.server.max_body_bytes,
        metrics,
    };
    let mut app = router(state);
    if let Some(admin) = admin {
        app = crate::admin::router(admin).merge(app);
    }
    crate::listener::serve(listener, app, stop_rx, config.server.shutdown_grace).await;
    if let Some(accounting) = accounting {
        accounting.stop().await;
    }
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
