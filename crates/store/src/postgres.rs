//! `PostgresStore`: the shared store for several replicas. Connects to a URL (TLS through
//! rustls with the ring backend when the URL asks for it, e.g. `sslmode=require`).
//! Timestamps are TIMESTAMPTZ; `Ts` only delegates to `OffsetDateTime` so that the SQL shared
//! with SQLite (`sql.rs`) names one timestamp type.

use std::time::Duration;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};
use time::OffsetDateTime;

use crate::StoreError;

type Db = Postgres;

/// How long to wait for a connection (also the first one, at start) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections in the pool; the store is off the request path, so a few suffice.
const MAX_CONNECTIONS: u32 = 8;

/// The PostgreSQL store. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?sslmode=...`) and applies
    /// the migrations.
    pub async fn connect(url: &str) -> crate::Result<Self> {
        let options: PgConnectOptions = url.parse().map_err(StoreError::Backend)?;
        Self::connect_with(options).await
    }

    /// Connects with explicit options (such as a `search_path`) and applies the migrations.
    pub async fn connect_with(options: PgConnectOptions) -> crate::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(StoreError::Backend)?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// The UTC date (`YYYY-MM-DD`) a usage record started on, whatever the session's time zone.
const USAGE_DAY: &str = "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
/// Text sorted by its bytes (as SQLite does), not by the database's locale.
const TEXT_ORDER: &str = " COLLATE \"C\"";

/// A timestamp column: TIMESTAMPTZ.
struct Ts(OffsetDateTime);

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Ts(<OffsetDateTime as Decode<'r, Postgres>>::decode(value)?))
    }
}

impl_store!(PostgresStore, "postgres");
