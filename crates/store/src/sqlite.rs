//! `SqliteStore`: the embedded default. One file, created on first start, in WAL mode (readers
//! never block the writer), with foreign keys enforced and a busy timeout so that concurrent
//! writers wait rather than fail. Timestamps are stored as integer microseconds since the Unix
//! epoch (UTC), which compare correctly in SQL; see `Ts`.

use std::path::Path;
use std::time::Duration;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous, SqliteTypeInfo,
    SqliteValueRef,
};
use sqlx::{Decode, Encode, Sqlite, Type};
use time::OffsetDateTime;

use crate::StoreError;

type Db = Sqlite;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in the pool: SQLite serialises writers anyway; a few serve concurrent readers.
const MAX_CONNECTIONS: u32 = 4;

/// The SQLite store. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path` and applies the migrations.
    pub async fn open(path: impl AsRef<Path>) -> crate::Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(StoreError::Backend)?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// The UTC date (`YYYY-MM-DD`) a usage record started on: its microseconds as whole seconds,
/// then SQLite's date of a Unix time.
const USAGE_DAY: &str = "date(started_at / 1000000, 'unixepoch')";
/// Text sorted by its bytes: SQLite's default collation (`BINARY`) already does.
const TEXT_ORDER: &str = "";

/// A timestamp column: integer microseconds since the Unix epoch, UTC.
struct Ts(OffsetDateTime);

fn to_micros(t: OffsetDateTime) -> Result<i64, BoxDynError> {
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1000)?)
}

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Sqlite>>::encode(to_micros(self.0)?, buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let micros = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)?;
        Ok(Ts(t))
    }
}

impl_store!(SqliteStore, "sqlite");
