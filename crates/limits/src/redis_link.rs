//! What the Redis backends (the rate limiter and the spend ledger) share: the connection, Lua
//! scripts run under the configured timeout in a task of their own, and the outage state (one
//! warning per outage, and the counts of calls that the failure policy admitted or refused).
//!
//! Scripts run as `EVALSHA`, and as `EVAL` (which also caches them) after a `NOSCRIPT`, once
//! per Redis restart. A call runs in a spawned task: a caller dropped mid-flight (a client
//! that disconnects) cannot stop a script half-way, and the timeout means a hung Redis cannot
//! hang a request. Each backend holds a link of its own, so the limiter's and the ledger's
//! outages are warned about (and counted) separately.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, RedisResult, Script, ServerErrorKind};
use tokio::runtime::Handle;

use crate::{FailurePolicy, LimitError, RedisLimiterConfig};

/// A Lua script and its source: the source is sent again after a `NOSCRIPT`.
#[derive(Debug)]
pub(crate) struct Lua {
    source: &'static str,
    /// Hashed on first use (`Script` cannot be built in a `static`).
    script: OnceLock<Script>,
}

impl Lua {
    pub const fn new(source: &'static str) -> Self {
        Self {
            source,
            script: OnceLock::new(),
        }
    }

    fn hash(&self) -> &str {
        self.script
            .get_or_init(|| Script::new(self.source))
            .get_hash()
    }
}

/// One backend's connection to Redis and its outage state. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    conn: ConnectionManager,
    runtime: Handle,
    timeout: Duration,
    policy: FailurePolicy,
    health: Arc<Health>,
}

#[derive(Debug)]
struct Health {
    /// What the backend keeps, for the log: `rate limits`, `spend budgets`.
    what: &'static str,
    /// Set from the first failure of an outage to the next success: one warning per outage.
    down: AtomicBool,
    admitted_unavailable: AtomicU64,
    refused_unavailable: AtomicU64,
}

impl Link {
    /// A link to `config.url`. Connects lazily (the first call connects), so this succeeds
    /// while Redis is down; then loads `scripts` off the request path, so the first call finds
    /// a connection and its script within a timeout of a few milliseconds. Must be called
    /// inside a tokio runtime.
    pub fn new(
        config: &RedisLimiterConfig,
        what: &'static str,
        scripts: &'static [&'static Lua],
    ) -> Result<Self, LimitError> {
        let runtime = Handle::try_current()
            .map_err(|_| LimitError::Config(format!("Redis for {what} needs a tokio runtime")))?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| LimitError::Config(format!("redis url: {e}")))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout.max(Duration::from_millis(100))))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(5))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, manager)
            .map_err(|e| LimitError::Config(format!("redis: {e}")))?;
        let link = Self {
            conn,
            runtime,
            timeout: config.timeout,
            policy: config.on_unavailable,
            health: Arc::new(Health {
                what,
                down: AtomicBool::new(false),
                admitted_unavailable: AtomicU64::new(0),
                refused_unavailable: AtomicU64::new(0),
            }),
        };
        link.runtime.spawn(link.clone().warm_up(scripts));
        Ok(link)
    }

    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    async fn warm_up(self, scripts: &'static [&'static Lua]) {
        let mut conn = self.conn.clone();
        for lua in scripts {
            let load = redis::cmd("SCRIPT").arg("LOAD").arg(lua.source).to_owned();
            if let Err(e) = load.query_async::<String>(&mut conn).await {
                return self.note_down(&e.to_string());
            }
        }
        self.note_up();
    }

    /// Runs `lua` within the timeout, in the current task: for a caller that runs in a task of
    /// its own already. A failure starts an outage (warned once), an answer ends it; the error
    /// says why in words.
    pub async fn eval<T: FromRedisValue>(
        &self,
        lua: &Lua,
        keys: &[String],
        args: &[String],
    ) -> Result<T, String> {
        let mut conn = self.conn.clone();
        let call = eval(&mut conn, lua, keys, args);
        let outcome = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        match &outcome {
            Ok(_) => self.note_up(),
            Err(why) => self.note_down(why),
        }
        outcome
    }

    /// Runs `lua` as [`Link::eval`] does, in a task spawned now; the future answers once it
    /// has finished. Dropping the future (unpolled, or mid-flight) leaves the script to run.
    pub fn spawn<T: FromRedisValue + Send + 'static>(
        &self,
        lua: &'static Lua,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> impl Future<Output = Result<T, String>> + Send + 'static {
        let link = self.clone();
        let task = self
            .runtime
            .spawn(async move { link.eval(lua, &keys, &args).await });
        async move { task.await.unwrap_or_else(|e| Err(format!("task: {e}"))) }
    }

    /// Redis could not answer a call that the failure policy decides: `Ok` to admit without
    /// limits (`fail_open`), else [`LimitError::Unavailable`]; either is counted, here and in
    /// the metric `portcullis_limiter_unavailable_total{policy}`.
    pub fn unavailable(&self, why: String) -> Result<(), LimitError> {
        let policy = match self.policy {
            FailurePolicy::FailOpen => "fail_open",
            FailurePolicy::FailClosed => "fail_closed",
        };
        metrics::counter!("portcullis_limiter_unavailable_total", "policy" => policy).increment(1);
        match self.policy {
            FailurePolicy::FailOpen => {
                self.health
                    .admitted_unavailable
                    .fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            FailurePolicy::FailClosed => {
                self.health
                    .refused_unavailable
                    .fetch_add(1, Ordering::Relaxed);
                Err(LimitError::Unavailable(why))
            }
        }
    }

    /// Calls admitted without limits because Redis was unavailable (`fail_open`).
    pub fn unavailable_admissions(&self) -> u64 {
        self.health.admitted_unavailable.load(Ordering::Relaxed)
    }

    /// Calls refused because Redis was unavailable (`fail_closed`).
    pub fn unavailable_refusals(&self) -> u64 {
        self.health.refused_unavailable.load(Ordering::Relaxed)
    }

    /// Redis failed: the first failure of an outage warns, the rest are only counted.
    fn note_down(&self, why: &str) {
        let health = &self.health;
        if !health.down.swap(true, Ordering::Relaxed) {
            let what = health.what;
            tracing::warn!(error = %why, policy = ?self.policy, "Redis unreachable for {what}");
        }
    }

    /// Redis answered: ends an outage.
    fn note_up(&self) {
        let down = &self.health.down;
        if down.load(Ordering::Relaxed) && down.swap(false, Ordering::Relaxed) {
            let what = self.health.what;
            tracing::info!("Redis answers for {what} again");
        }
    }
}

/// Runs `lua` with `EVALSHA`, and with `EVAL` if Redis does not know it (`NOSCRIPT`).
async fn eval<T: FromRedisValue>(
    conn: &mut ConnectionManager,
    lua: &Lua,
    keys: &[String],
    args: &[String],
) -> RedisResult<T> {
    let command = |verb: &str, body: &str| {
        let mut cmd = redis::cmd(verb);
        cmd.arg(body).arg(keys.len()).arg(keys).arg(args);
        cmd
    };
    match command("EVALSHA", lua.hash()).query_async(conn).await {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            command("EVAL", lua.source).query_async(conn).await
        }
        other => other,
    }
}
