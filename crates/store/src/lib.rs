//! Portcullis's durable state: organizations, teams, users, virtual keys, provider credentials
//! and usage records, behind one [`Store`] trait with a SQLite implementation (the embedded
//! default) and a PostgreSQL one (shared by replicas).
//!
//! This is its own crate because sqlx (with both drivers and the bundled SQLite) is a heavy
//! dependency: the engine and its tests should not recompile it. Nothing here is on the request
//! path; the gateway loads the active keys into an in-memory snapshot and consults that.
//!
//! Both backends run the same SQL text (written once in `sql.rs`, with `$n` placeholders, which
//! SQLite accepts too) and the same conformance suite (`tests/conformance`). They differ only in
//! column types, which their own migrations declare (`migrations/sqlite`, `migrations/postgres`):
//! timestamps are TIMESTAMPTZ on PostgreSQL and integer microseconds on SQLite, booleans are
//! BOOLEAN or INTEGER, bytes are BYTEA or BLOB. Labels, lists and quotas are JSON text on both:
//! the store never queries inside them.
//!
//! Queries are built at run time (`sqlx::query` with binds), not with the compile-time checked
//! macros, which would need a live database to build.

use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

mod error;
pub mod model;
#[macro_use]
mod sql;
#[macro_use]
mod sql_tenancy;
#[macro_use]
mod sql_keys;
#[macro_use]
mod sql_usage;
mod postgres;
mod sqlite;

pub use error::StoreError;
pub use model::*;
pub use portcullis_types::UsageRecord;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Durable state of the gateway. Object-safe (through `async-trait`) because the backend is
/// chosen by configuration at start: the server holds an `Arc<dyn Store>`, and the conformance
/// suite is written once against `&dyn Store`. The cost of a boxed future per call is nothing
/// next to a database round trip.
///
/// Lists return pages in id order (UUIDv7, so creation order): pass a page's `next_after` as
/// the next request's `after`. Deletes are restricted: an organization with teams, a team with
/// users or keys, or a user with keys cannot be deleted ([`StoreError::Conflict`]).
#[async_trait]
pub trait Store: UsageStore + Send + Sync + fmt::Debug {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    async fn create_org(&self, new: NewOrg) -> Result<Organization>;
    async fn get_org(&self, id: &str) -> Result<Organization>;
    async fn update_org(&self, id: &str, update: OrgUpdate) -> Result<Organization>;
    async fn delete_org(&self, id: &str) -> Result<()>;
    async fn list_orgs(&self, filter: &OrgFilter, page: &PageRequest)
    -> Result<Page<Organization>>;

    async fn create_team(&self, new: NewTeam) -> Result<Team>;
    async fn get_team(&self, id: &str) -> Result<Team>;
    async fn update_team(&self, id: &str, update: TeamUpdate) -> Result<Team>;
    async fn delete_team(&self, id: &str) -> Result<()>;
    async fn list_teams(&self, filter: &TeamFilter, page: &PageRequest) -> Result<Page<Team>>;

    async fn create_user(&self, new: NewUser) -> Result<User>;
    async fn get_user(&self, id: &str) -> Result<User>;
    async fn update_user(&self, id: &str, update: UserUpdate) -> Result<User>;
    async fn delete_user(&self, id: &str) -> Result<()>;
    async fn list_users(&self, filter: &UserFilter, page: &PageRequest) -> Result<Page<User>>;

    /// The quotas of every organization, team and user that has one, in one query: the key
    /// table's refresh reads them every second to give each key those of its scopes.
    async fn list_quotas(&self) -> Result<QuotaTable>;

    /// Stores a new key. Its user, if any, must belong to its team.
    async fn create_key(&self, new: NewKey) -> Result<VirtualKey>;
    async fn get_key(&self, id: &str) -> Result<VirtualKey>;
    /// Finds a key by the public id shown in the key itself (to revoke a leaked key).
    async fn get_key_by_public_id(&self, public_id: &str) -> Result<VirtualKey>;
    async fn update_key(&self, id: &str, update: KeyUpdate) -> Result<VirtualKey>;
    async fn delete_key(&self, id: &str) -> Result<()>;
    async fn list_keys(&self, filter: &KeyFilter, page: &PageRequest) -> Result<Page<VirtualKey>>;
    /// Every key that may authenticate at `at` (enabled, not revoked, not expired), for the
    /// in-memory key table.
    async fn list_active_keys(&self, at: OffsetDateTime) -> Result<Vec<VirtualKey>>;
    /// Revokes a key for good at `at`. Revoking again keeps the first time.
    async fn revoke_key(&self, id: &str, at: OffsetDateTime) -> Result<VirtualKey>;
    /// Replaces a key's digest; the old one stays valid until `grace_until`
    /// ([`VirtualKey::previous_digest_at`]). A revoked key cannot be rotated (`Conflict`).
    async fn rotate_key(
        &self,
        id: &str,
        new_digest: Vec<u8>,
        grace_until: OffsetDateTime,
    ) -> Result<VirtualKey>;

    async fn create_credential(&self, new: NewCredential) -> Result<ProviderCredential>;
    async fn get_credential(&self, id: &str) -> Result<ProviderCredential>;
    async fn update_credential(
        &self,
        id: &str,
        update: CredentialUpdate,
    ) -> Result<ProviderCredential>;
    async fn delete_credential(&self, id: &str) -> Result<()>;
    async fn list_credentials(
        &self,
        filter: &CredentialFilter,
        page: &PageRequest,
    ) -> Result<Page<ProviderCredential>>;

    /// Closes the connection pool, waiting for connections in use.
    async fn close(&self);
}

/// Usage records (one per finished request), written in batches by the gateway's usage journal.
/// A supertrait of [`Store`], so an `Arc<dyn Store>` has these methods too.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Inserts a batch; records whose id is already stored are skipped, so a batch sent twice
    /// (after a crash between the insert and the journal's checkpoint) counts once. Returns
    /// how many rows were new. All or nothing: the batch is one transaction.
    async fn insert_usage(&self, batch: &[UsageRecord]) -> Result<u64>;
    /// A page of records in id order (the order requests finished in).
    async fn list_usage(
        &self,
        filter: &UsageFilter,
        page: &PageRequest,
    ) -> Result<Page<UsageRecord>>;
    /// How many records match.
    async fn count_usage(&self, filter: &UsageFilter) -> Result<u64>;
    /// The records matching `query` summed per group (requests, errors, tokens, cost), one row
    /// per group that has records, sorted by the groups (see [`UsageQuery::group_by`]).
    async fn usage_summary(&self, query: &UsageQuery) -> Result<Vec<UsageRow>>;
}
