//! Usage records: the [`UsageStore`](crate::UsageStore) methods as portable SQL (see `sql.rs`),
//! expanded in each backend's module by `impl_store!`. A separate trait (a supertrait of
//! `Store`) so that its impl needs no tokens from the tenancy and key macros.
//!
//! A batch is inserted with one multi-row `INSERT ... ON CONFLICT (id) DO NOTHING` per chunk of
//! [`INSERT_CHUNK`](crate::sql_usage::INSERT_CHUNK) rows, all in one transaction: a batch
//! re-sent after a crash (the journal re-sends what the store had not acknowledged) inserts
//! nothing twice.

/// Rows per `INSERT` statement: 22 binds a row stays under SQLite's 32766 bind limit.
pub(crate) const INSERT_CHUNK: usize = 500;

pub(crate) const USAGE_COLS: &str = "id, request_id, started_at, key_name, key_id, org, team, \
    user_name, endpoint, model, served_model, provider, status, outcome, stream, input_tokens, \
    output_tokens, cached_tokens, reasoning_tokens, latency_us, ttfb_us, cost_micros";

/// A count as a signed 64-bit column (counts past `i64::MAX` saturate).
pub(crate) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A signed column read back as a count (a negative value, which the gateway never writes,
/// reads as 0).
pub(crate) fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Microseconds since the epoch as a timestamp.
pub(crate) fn at_micros(us: i64) -> crate::Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_err(|e| crate::StoreError::Invalid(format!("usage record time: {e}")))
}

/// A timestamp as microseconds since the epoch.
pub(crate) fn micros(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

macro_rules! usage_methods {
    ($store:ty) => {
        mod usage_rows {
            use super::{Db, Ts};
            use crate::StoreError;
            use crate::sql_usage::{micros, unsigned};
            use portcullis_types::UsageRecord;
            use sqlx::Row;

            type R = <Db as sqlx::Database>::Row;

            fn count(r: &R, col: &str) -> crate::Result<Option<u64>> {
                let v: Option<i64> = r.try_get(col).map_err(StoreError::Backend)?;
                Ok(v.map(unsigned))
            }

            pub(super) fn usage(r: &R) -> crate::Result<UsageRecord> {
                let b = StoreError::Backend;
                let status: i32 = r.try_get("status").map_err(b)?;
                Ok(UsageRecord {
                    id: r.try_get("id").map_err(b)?,
                    request_id: r.try_get("request_id").map_err(b)?,
                    started_at_us: micros(r.try_get::<Ts, _>("started_at").map_err(b)?.0),
                    key_name: r.try_get("key_name").map_err(b)?,
                    key_id: r.try_get("key_id").map_err(b)?,
                    org: r.try_get("org").map_err(b)?,
                    team: r.try_get("team").map_err(b)?,
                    user: r.try_get("user_name").map_err(b)?,
                    endpoint: r.try_get("endpoint").map_err(b)?,
                    model: r.try_get("model").map_err(b)?,
                    served_model: r.try_get("served_model").map_err(b)?,
                    provider: r.try_get("provider").map_err(b)?,
                    status: u16::try_from(status).unwrap_or(0),
                    outcome: r.try_get("outcome").map_err(b)?,
                    stream: r.try_get("stream").map_err(b)?,
                    input_tokens: count(r, "input_tokens")?,
                    output_tokens: count(r, "output_tokens")?,
                    cached_tokens: count(r, "cached_tokens")?,
                    reasoning_tokens: count(r, "reasoning_tokens")?,
                    latency_us: unsigned(r.try_get("latency_us").map_err(b)?),
                    ttfb_us: count(r, "ttfb_us")?,
                    cost_micros: r.try_get("cost_micros").map_err(b)?,
                })
            }
        }

        #[async_trait::async_trait]
        impl crate::UsageStore for $store {
            async fn insert_usage(
                &self,
                batch: &[portcullis_types::UsageRecord],
            ) -> crate::Result<u64> {
                use crate::sql_usage::signed;
                let write =
                    |e| crate::StoreError::from_sqlx(e, "usage record", crate::error::Op::Write);
                let mut started = Vec::with_capacity(batch.len());
                for r in batch {
                    started.push(Ts(crate::sql_usage::at_micros(r.started_at_us)?));
                }
                let mut tx = self.pool.begin().await.map_err(write)?;
                let mut inserted = 0;
                for (rows, started) in batch
                    .chunks(crate::sql_usage::INSERT_CHUNK)
                    .zip(started.chunks(crate::sql_usage::INSERT_CHUNK))
                {
                    let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                        "INSERT INTO usage_records ({}) ",
                        crate::sql_usage::USAGE_COLS
                    ));
                    q.push_values(rows.iter().zip(started), |mut b, (r, at)| {
                        b.push_bind(&r.id)
                            .push_bind(&r.request_id)
                            .push_bind(Ts(at.0))
                            .push_bind(&r.key_name)
                            .push_bind(&r.key_id)
                            .push_bind(&r.org)
                            .push_bind(&r.team)
                            .push_bind(&r.user)
                            .push_bind(&r.endpoint)
                            .push_bind(&r.model)
                            .push_bind(&r.served_model)
                            .push_bind(&r.provider)
                            .push_bind(i32::from(r.status))
                            .push_bind(&r.outcome)
                            .push_bind(r.stream)
                            .push_bind(r.input_tokens.map(signed))
                            .push_bind(r.output_tokens.map(signed))
                            .push_bind(r.cached_tokens.map(signed))
                            .push_bind(r.reasoning_tokens.map(signed))
                            .push_bind(signed(r.latency_us))
                            .push_bind(r.ttfb_us.map(signed))
                            .push_bind(r.cost_micros);
                    });
                    q.push(" ON CONFLICT (id) DO NOTHING");
                    let done = q.build().execute(&mut *tx).await.map_err(write)?;
                    inserted += done.rows_affected();
                }
                tx.commit().await.map_err(write)?;
                Ok(inserted)
            }

            async fn list_usage(
                &self,
                filter: &crate::UsageFilter,
                page: &crate::PageRequest,
            ) -> crate::Result<crate::Page<portcullis_types::UsageRecord>> {
                let sql = format!(
                    "SELECT {} FROM usage_records WHERE ($1 IS NULL OR id > $1) \
                     AND ($2 IS NULL OR request_id = $2) AND ($3 IS NULL OR key_name = $3) \
                     AND ($4 IS NULL OR model = $4) ORDER BY id LIMIT $5",
                    crate::sql_usage::USAGE_COLS
                );
                let q = sqlx::query(&sql)
                    .bind(page.after.as_deref())
                    .bind(filter.request_id.as_deref())
                    .bind(filter.key_name.as_deref())
                    .bind(filter.model.as_deref())
                    .bind(crate::sql::fetch_limit(page));
                let items = ops::all(&self.pool, q, "usage record", usage_rows::usage).await?;
                Ok(crate::Page::from_rows(items, page.effective_limit(), |r| {
                    &r.id
                }))
            }

            async fn count_usage(&self, filter: &crate::UsageFilter) -> crate::Result<u64> {
                use sqlx::Row;
                let q = sqlx::query(
                    "SELECT COUNT(*) AS n FROM usage_records WHERE ($1 IS NULL OR request_id = $1) \
                     AND ($2 IS NULL OR key_name = $2) AND ($3 IS NULL OR model = $3)",
                )
                .bind(filter.request_id.as_deref())
                .bind(filter.key_name.as_deref())
                .bind(filter.model.as_deref());
                let row = q.fetch_one(&self.pool).await.map_err(|e| {
                    crate::StoreError::from_sqlx(e, "usage record", crate::error::Op::Write)
                })?;
                let n: i64 = row.try_get("n").map_err(crate::StoreError::Backend)?;
                Ok(crate::sql_usage::unsigned(n))
            }
        }
    };
}
