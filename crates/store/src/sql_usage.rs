//! Usage records: the [`UsageStore`](crate::UsageStore) methods as portable SQL (see `sql.rs`),
//! expanded in each backend's module by `impl_store!`. A separate trait (a supertrait of
//! `Store`) so that its impl needs no tokens from the tenancy and key macros.
//!
//! A batch is inserted with one multi-row `INSERT ... ON CONFLICT (id) DO NOTHING` per chunk of
//! [`INSERT_CHUNK`](crate::sql_usage::INSERT_CHUNK) rows, all in one transaction: a batch
//! re-sent after a crash (the journal re-sends what the store had not acknowledged) inserts
//! nothing twice.
//!
//! A summary (`usage_summary`) is one `GROUP BY` query whose text is assembled from fixed
//! fragments ([`summary_sql`]) for the dimensions asked for; values are always bound. Unlike the
//! other lists it names only the filters given instead of `($n IS NULL OR ...)`: neither
//! planner can use an index through that `OR` (SQLite never, PostgreSQL not in a generic plan),
//! and a report over a long table needs the indexes of migration 0005. Two fragments differ by
//! backend and come from the backend's module: `USAGE_DAY`, the UTC date of `started_at` as
//! `YYYY-MM-DD` text, and `TEXT_ORDER`, the collation that sorts text by its bytes, so that rows
//! come in the same order from both.

use crate::model::UsageGroup;

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

/// The parts of a summary's SQL around its filters: the `SELECT ... FROM ... WHERE` head (the
/// caller adds the filters after it, each as `AND ...`) and the `GROUP BY ... ORDER BY` tail.
pub(crate) struct SummarySql {
    pub head: String,
    pub tail: String,
}

/// The summary's SQL for `groups`, with the backend's `day` expression and `collate` suffix.
/// Every dimension column is selected, `NULL` where not grouped, so that one row mapping fits
/// every query. Sorted by the groups, the day first, with rows lacking a value last.
pub(crate) fn summary_sql(groups: &[UsageGroup], day: &str, collate: &str) -> SummarySql {
    let mut order: Vec<UsageGroup> = Vec::new();
    if groups.contains(&UsageGroup::Day) {
        order.push(UsageGroup::Day);
    }
    for g in groups {
        if !order.contains(g) {
            order.push(*g);
        }
    }
    let grouped = |g| order.contains(&g);
    let column = |g, expr: &str, alias: &str| {
        if grouped(g) {
            format!("{expr} AS {alias}")
        } else {
            format!("CAST(NULL AS TEXT) AS {alias}")
        }
    };
    // A stored key is one group whatever its names; a key of the config file has no id, so it
    // is a group by its name.
    let key_name = if grouped(UsageGroup::Key) {
        format!("MAX(key_name{collate}) AS key_name")
    } else {
        "CAST(NULL AS TEXT) AS key_name".to_owned()
    };
    let select = [
        column(UsageGroup::Day, day, "day"),
        column(UsageGroup::Org, "org", "org"),
        column(UsageGroup::Team, "team", "team"),
        column(UsageGroup::User, "user_name", "user_name"),
        column(UsageGroup::Key, "key_id", "key_id"),
        key_name,
        column(UsageGroup::Model, "model", "model"),
        column(UsageGroup::Provider, "provider", "provider"),
        "COUNT(*) AS requests".to_owned(),
        "CAST(COALESCE(SUM(CASE WHEN status >= 400 OR outcome <> 'completed' THEN 1 ELSE 0 END), \
         0) AS BIGINT) AS errors"
            .to_owned(),
    ]
    .into_iter()
    .chain(
        [
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "reasoning_tokens",
            "cost_micros",
        ]
        .map(|c| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {c}")),
    )
    .collect::<Vec<_>>()
    .join(", ");
    let expressions: Vec<String> = order
        .iter()
        .flat_map(|g| match g {
            UsageGroup::Day => vec![day.to_owned()],
            UsageGroup::Org => vec!["org".to_owned()],
            UsageGroup::Team => vec!["team".to_owned()],
            UsageGroup::User => vec!["user_name".to_owned()],
            UsageGroup::Key => vec![
                "key_id".to_owned(),
                "CASE WHEN key_id IS NULL THEN key_name END".to_owned(),
            ],
            UsageGroup::Model => vec!["model".to_owned()],
            UsageGroup::Provider => vec!["provider".to_owned()],
        })
        .collect();
    let tail = if expressions.is_empty() {
        String::new()
    } else {
        let sorted: Vec<String> = expressions
            .iter()
            .map(|e| format!("{e}{collate} NULLS LAST"))
            .collect();
        format!(
            " GROUP BY {} ORDER BY {}",
            expressions.join(", "),
            sorted.join(", ")
        )
    };
    SummarySql {
        head: format!("SELECT {select} FROM usage_records WHERE 1 = 1"),
        tail,
    }
}

/// A summary's `day` column (`YYYY-MM-DD`) as a date.
pub(crate) fn parse_day(text: &str) -> crate::Result<time::Date> {
    let invalid = || crate::StoreError::Invalid(format!("usage summary day {text:?}"));
    let mut parts = text.splitn(3, '-');
    let mut next = || parts.next().ok_or_else(invalid);
    let (year, month, day) = (next()?, next()?, next()?);
    let year: i32 = year.parse().map_err(|_| invalid())?;
    let month: u8 = month.parse().map_err(|_| invalid())?;
    let day: u8 = day.parse().map_err(|_| invalid())?;
    let month = time::Month::try_from(month).map_err(|_| invalid())?;
    time::Date::from_calendar_date(year, month, day).map_err(|_| invalid())
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

            fn sum(r: &R, col: &str) -> crate::Result<u64> {
                let v: i64 = r.try_get(col).map_err(StoreError::Backend)?;
                Ok(unsigned(v))
            }

            pub(super) fn summary(r: &R) -> crate::Result<crate::UsageRow> {
                let b = StoreError::Backend;
                let day: Option<String> = r.try_get("day").map_err(b)?;
                Ok(crate::UsageRow {
                    day: day
                        .as_deref()
                        .map(crate::sql_usage::parse_day)
                        .transpose()?,
                    org: r.try_get("org").map_err(b)?,
                    team: r.try_get("team").map_err(b)?,
                    user: r.try_get("user_name").map_err(b)?,
                    key_id: r.try_get("key_id").map_err(b)?,
                    key_name: r.try_get("key_name").map_err(b)?,
                    model: r.try_get("model").map_err(b)?,
                    provider: r.try_get("provider").map_err(b)?,
                    requests: sum(r, "requests")?,
                    errors: sum(r, "errors")?,
                    input_tokens: sum(r, "input_tokens")?,
                    output_tokens: sum(r, "output_tokens")?,
                    cached_tokens: sum(r, "cached_tokens")?,
                    reasoning_tokens: sum(r, "reasoning_tokens")?,
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

            async fn usage_summary(
                &self,
                query: &crate::UsageQuery,
            ) -> crate::Result<Vec<crate::UsageRow>> {
                let sql = crate::sql_usage::summary_sql(&query.group_by, USAGE_DAY, TEXT_ORDER);
                let mut q = sqlx::QueryBuilder::<Db>::new(sql.head);
                if let Some(from) = query.from {
                    q.push(" AND started_at >= ").push_bind(ops::ts(from));
                }
                if let Some(to) = query.to {
                    q.push(" AND started_at < ").push_bind(ops::ts(to));
                }
                let exact = [
                    ("org", &query.org),
                    ("team", &query.team),
                    ("user_name", &query.user),
                    ("key_id", &query.key_id),
                    ("model", &query.model),
                    ("provider", &query.provider),
                ];
                for (column, value) in exact {
                    if let Some(value) = value {
                        q.push(format!(" AND {column} = "))
                            .push_bind(value.as_str());
                    }
                }
                q.push(sql.tail);
                if let Some(limit) = query.limit {
                    q.push(" LIMIT ").push_bind(i64::from(limit));
                }
                let rows = q.build().fetch_all(&self.pool).await.map_err(|e| {
                    crate::StoreError::from_sqlx(e, "usage record", crate::error::Op::Write)
                })?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let row = usage_rows::summary(row)?;
                    // Without groups the query always answers one row; none matched if it
                    // counts nothing.
                    if row.requests > 0 {
                        out.push(row);
                    }
                }
                Ok(out)
            }
        }
    };
}
