//! portcullis-core: the engine of the Portcullis AI gateway.
//!
//! A request runs through named stages over one [`pipeline::RequestCtx`] (see
//! `docs/architecture.md`): authenticate, parse, resolve, plan, dispatch, record. The state every
//! request reads (routes, providers, keys) is an immutable [`runtime::Runtime`] snapshot that
//! [`Gateway`] holds in an `ArcSwap`, so a config reload swaps it atomically.

pub mod auth;
pub mod aws_eventstream;
pub mod budget;
pub mod config;
pub mod envelope;
pub mod error;
pub mod json_scan;
pub mod oidc;
pub mod pipeline;
pub mod pricing;
pub mod provider;
pub mod quota;
pub mod request_id;
pub mod routing;
pub mod runtime;
pub mod sse;
pub mod tokens;
pub mod translate;
pub mod usage;
pub mod virtual_key;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};

pub use error::GatewayError;
pub use pipeline::record::{AccessLog, AccessRecord};
pub use runtime::Runtime;

/// The live gateway: the current runtime snapshot plus process-wide state.
#[derive(Debug)]
pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    generation: AtomicU64,
    draining: AtomicBool,
    access_log: Option<Arc<dyn AccessLog>>,
    /// The store's virtual keys, when a store is configured (refreshed by the server).
    stored_keys: ArcSwapOption<auth::StoredKeys>,
    /// The usage journal, when a store is configured (set once at start).
    usage_journal: std::sync::OnceLock<Arc<usage::Journal>>,
    /// The rate limiter (stage `admit`): in memory unless the server sets the configured one.
    limiter: std::sync::OnceLock<Arc<dyn portcullis_limits::RateLimiter>>,
    /// The budgets' ledger, seeding source and alerts: in memory unless the server sets them.
    budgets: std::sync::OnceLock<Arc<pipeline::budgets::Budgets>>,
}

impl Gateway {
    /// A gateway serving `runtime`, writing access records to `access_log` (none: no records).
    pub fn new(runtime: Runtime, access_log: Option<Arc<dyn AccessLog>>) -> Self {
        Self {
            runtime: ArcSwap::from_pointee(runtime),
            generation: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            access_log,
            stored_keys: ArcSwapOption::empty(),
            usage_journal: std::sync::OnceLock::new(),
            limiter: std::sync::OnceLock::new(),
            budgets: std::sync::OnceLock::new(),
        }
    }

    /// The store's virtual keys a request authenticates against (none without a store).
    pub fn stored_keys(&self) -> Option<Arc<auth::StoredKeys>> {
        self.stored_keys.load_full()
    }

    /// Replaces the table of the store's virtual keys.
    pub fn set_stored_keys(&self, keys: auth::StoredKeys) {
        self.stored_keys.store(Some(Arc::new(keys)));
    }

    /// Makes `journal` the sink of usage records (once, at start; a second call is ignored).
    pub fn set_usage_journal(&self, journal: Arc<usage::Journal>) {
        let _ = self.usage_journal.set(journal);
    }

    /// The usage journal, when usage is accounted (a store is configured).
    pub fn usage_journal(&self) -> Option<&Arc<usage::Journal>> {
        self.usage_journal.get()
    }

    /// Makes `limiter` the gateway's rate limiter (once, at start, before the first request;
    /// a later call is ignored).
    pub fn set_limiter(&self, limiter: Arc<dyn portcullis_limits::RateLimiter>) {
        let _ = self.limiter.set(limiter);
    }

    /// The rate limiter: the one set at start, else one in memory.
    pub fn limiter(&self) -> &dyn portcullis_limits::RateLimiter {
        self.limiter
            .get_or_init(|| Arc::new(portcullis_limits::MemoryLimiter::new()))
            .as_ref()
    }

    /// Makes `budgets` the gateway's budget state (once, at start; a later call is ignored).
    pub fn set_budgets(&self, budgets: pipeline::budgets::Budgets) {
        let _ = self.budgets.set(Arc::new(budgets));
    }

    /// The budgets' state: the one set at start, else a ledger in memory without seeding or
    /// webhooks.
    pub fn budgets(&self) -> &Arc<pipeline::budgets::Budgets> {
        self.budgets.get_or_init(|| {
            Arc::new(pipeline::budgets::Budgets::new(
                Arc::new(portcullis_limits::MemoryLedger::new()),
                None,
                Arc::new(budget::alerts::BudgetAlerts::default()),
            ))
        })
    }

    /// The access-log sink, for a new request's context.
    pub fn access_log(&self) -> Option<Arc<dyn AccessLog>> {
        self.access_log.clone()
    }

    /// The snapshot a request works with from start to end.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Atomically replaces the snapshot; requests in flight keep the one they loaded.
    pub fn swap(&self, runtime: Runtime) -> u64 {
        self.runtime.store(Arc::new(runtime));
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// How many snapshots this process has served (1 at start, +1 per reload).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Marks the gateway as shutting down: `/readyz` fails so load balancers stop sending.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}
