//! The SQL of every [`Store`](crate::Store) operation, written once and expanded for each
//! backend by `impl_store!`. The SQL is portable between SQLite and PostgreSQL: `$n`
//! placeholders (SQLite reads `$1` as parameter 1), `RETURNING`, `COALESCE` for optional
//! updates, `($n IS NULL OR ...)` for optional filters, and `substr(name, 1, length($n)) = $n`
//! for name prefixes (case-sensitive on both, unlike `LIKE`, and with no wildcards to escape).
//!
//! A macro rather than generic code: sqlx's generic bounds over `Database` for every bound and
//! decoded type would be longer than the SQL. The invoking module defines `Db` (the sqlx
//! database), `Ts` (its timestamp column type, a newtype over `OffsetDateTime`), the store
//! type with a `pool` field, and the two fragments of a usage summary that differ by backend
//! (`USAGE_DAY`, `TEXT_ORDER`: see `sql_usage.rs`).
//!
//! `#[async_trait]` must see every method of the impl at once (it cannot look into a macro call
//! inside the impl), so the method macros pass their tokens along: `impl_store!` calls
//! `tenancy_methods!`, which hands its methods to `key_methods!`, which writes the impl.

pub(crate) const ORG_COLS: &str = "id, name, limits, budgets, created_at, updated_at";
pub(crate) const TEAM_COLS: &str = "id, org_id, name, limits, budgets, created_at, updated_at";
pub(crate) const USER_COLS: &str =
    "id, team_id, name, email, role, limits, budgets, created_at, updated_at";
pub(crate) const KEY_COLS: &str = "id, public_id, digest, name, team_id, user_id, labels, \
    allowed_models, allowed_endpoints, limits, budgets, expires_at, enabled, created_at, \
    updated_at, revoked_at, previous_digest, previous_valid_until";
pub(crate) const CRED_COLS: &str =
    "id, name, provider, ciphertext, wrapped_key, key_id, created_at, updated_at";

/// Serializes labels or a list into its JSON column.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> crate::Result<String> {
    serde_json::to_string(v).map_err(|e| crate::StoreError::Invalid(e.to_string()))
}

/// Serializes an optional new value for a JSON column.
pub(crate) fn opt_json<T: serde::Serialize>(v: Option<&T>) -> crate::Result<Option<String>> {
    v.map(to_json).transpose()
}

/// Reads labels or a list back from its JSON column.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> crate::Result<T> {
    serde_json::from_str(s).map_err(|e| crate::StoreError::Invalid(e.to_string()))
}

/// Reads a role back from its text column.
pub(crate) fn role(s: &str) -> crate::Result<portcullis_types::Role> {
    s.parse()
        .map_err(|_| crate::StoreError::Invalid(format!("unknown role {s:?} in the users table")))
}

/// The limit to bind: one more row than the page, to learn whether another page follows.
pub(crate) fn fetch_limit(page: &crate::PageRequest) -> i64 {
    i64::from(page.effective_limit()) + 1
}

macro_rules! impl_store {
    ($store:ty, $backend:literal) => {
        mod rows {
            use super::{Db, Ts};
            use crate::StoreError;
            use crate::model::*;
            use crate::sql::from_json;
            use sqlx::Row;

            type R = <Db as sqlx::Database>::Row;

            fn backend(e: sqlx::Error) -> StoreError {
                StoreError::Backend(e)
            }

            pub(super) fn org(r: &R) -> crate::Result<Organization> {
                Ok(Organization {
                    id: r.try_get("id").map_err(backend)?,
                    name: r.try_get("name").map_err(backend)?,
                    limits: from_json(r.try_get("limits").map_err(backend)?)?,
                    budgets: from_json(r.try_get("budgets").map_err(backend)?)?,
                    created_at: r.try_get::<Ts, _>("created_at").map_err(backend)?.0,
                    updated_at: r.try_get::<Ts, _>("updated_at").map_err(backend)?.0,
                })
            }

            pub(super) fn team(r: &R) -> crate::Result<Team> {
                Ok(Team {
                    id: r.try_get("id").map_err(backend)?,
                    org_id: r.try_get("org_id").map_err(backend)?,
                    name: r.try_get("name").map_err(backend)?,
                    limits: from_json(r.try_get("limits").map_err(backend)?)?,
                    budgets: from_json(r.try_get("budgets").map_err(backend)?)?,
                    created_at: r.try_get::<Ts, _>("created_at").map_err(backend)?.0,
                    updated_at: r.try_get::<Ts, _>("updated_at").map_err(backend)?.0,
                })
            }

            pub(super) fn user(r: &R) -> crate::Result<User> {
                Ok(User {
                    id: r.try_get("id").map_err(backend)?,
                    team_id: r.try_get("team_id").map_err(backend)?,
                    name: r.try_get("name").map_err(backend)?,
                    email: r.try_get("email").map_err(backend)?,
                    role: crate::sql::role(r.try_get("role").map_err(backend)?)?,
                    limits: from_json(r.try_get("limits").map_err(backend)?)?,
                    budgets: from_json(r.try_get("budgets").map_err(backend)?)?,
                    created_at: r.try_get::<Ts, _>("created_at").map_err(backend)?.0,
                    updated_at: r.try_get::<Ts, _>("updated_at").map_err(backend)?.0,
                })
            }

            fn ts_opt(r: &R, col: &str) -> crate::Result<Option<time::OffsetDateTime>> {
                Ok(r.try_get::<Option<Ts>, _>(col)
                    .map_err(backend)?
                    .map(|t| t.0))
            }

            pub(super) fn key(r: &R) -> crate::Result<VirtualKey> {
                Ok(VirtualKey {
                    id: r.try_get("id").map_err(backend)?,
                    public_id: r.try_get("public_id").map_err(backend)?,
                    digest: r.try_get("digest").map_err(backend)?,
                    name: r.try_get("name").map_err(backend)?,
                    team_id: r.try_get("team_id").map_err(backend)?,
                    user_id: r.try_get("user_id").map_err(backend)?,
                    labels: from_json(r.try_get("labels").map_err(backend)?)?,
                    allowed_models: from_json(r.try_get("allowed_models").map_err(backend)?)?,
                    allowed_endpoints: from_json(r.try_get("allowed_endpoints").map_err(backend)?)?,
                    limits: from_json(r.try_get("limits").map_err(backend)?)?,
                    budgets: from_json(r.try_get("budgets").map_err(backend)?)?,
                    expires_at: ts_opt(r, "expires_at")?,
                    enabled: r.try_get("enabled").map_err(backend)?,
                    created_at: r.try_get::<Ts, _>("created_at").map_err(backend)?.0,
                    updated_at: r.try_get::<Ts, _>("updated_at").map_err(backend)?.0,
                    revoked_at: ts_opt(r, "revoked_at")?,
                    previous_digest: r.try_get("previous_digest").map_err(backend)?,
                    previous_valid_until: ts_opt(r, "previous_valid_until")?,
                })
            }

            /// One row of `list_quotas`: which table (`org`, `team`, `user`), the id, the quota.
            pub(super) fn quota(r: &R) -> crate::Result<(String, String, StoredQuota)> {
                Ok((
                    r.try_get("scope").map_err(backend)?,
                    r.try_get("id").map_err(backend)?,
                    StoredQuota {
                        limits: from_json(r.try_get("limits").map_err(backend)?)?,
                        budgets: from_json(r.try_get("budgets").map_err(backend)?)?,
                    },
                ))
            }

            pub(super) fn credential(r: &R) -> crate::Result<ProviderCredential> {
                Ok(ProviderCredential {
                    id: r.try_get("id").map_err(backend)?,
                    name: r.try_get("name").map_err(backend)?,
                    provider: r.try_get("provider").map_err(backend)?,
                    ciphertext: r.try_get("ciphertext").map_err(backend)?,
                    wrapped_key: r.try_get("wrapped_key").map_err(backend)?,
                    key_id: r.try_get("key_id").map_err(backend)?,
                    created_at: r.try_get::<Ts, _>("created_at").map_err(backend)?.0,
                    updated_at: r.try_get::<Ts, _>("updated_at").map_err(backend)?.0,
                })
            }
        }

        mod ops {
            use super::{Db, Ts};
            use crate::StoreError;
            use crate::error::Op;

            type R = <Db as sqlx::Database>::Row;
            type Q<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

            /// Runs a statement that returns at most one row and maps it.
            pub(super) async fn one<T>(
                pool: &sqlx::Pool<Db>,
                q: Q<'_>,
                entity: &'static str,
                map: fn(&R) -> crate::Result<T>,
            ) -> crate::Result<T> {
                match q.fetch_optional(pool).await {
                    Ok(Some(row)) => map(&row),
                    Ok(None) => Err(StoreError::NotFound { entity }),
                    Err(e) => Err(StoreError::from_sqlx(e, entity, Op::Write)),
                }
            }

            /// Runs a query and maps every row.
            pub(super) async fn all<T>(
                pool: &sqlx::Pool<Db>,
                q: Q<'_>,
                entity: &'static str,
                map: fn(&R) -> crate::Result<T>,
            ) -> crate::Result<Vec<T>> {
                let rows = q
                    .fetch_all(pool)
                    .await
                    .map_err(|e| StoreError::from_sqlx(e, entity, Op::Write))?;
                rows.iter().map(map).collect()
            }

            /// Deletes the row with this id from `table`.
            pub(super) async fn delete(
                pool: &sqlx::Pool<Db>,
                table: &str,
                id: &str,
                entity: &'static str,
            ) -> crate::Result<()> {
                let sql = format!("DELETE FROM {table} WHERE id = $1");
                let done = sqlx::query(&sql)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map_err(|e| StoreError::from_sqlx(e, entity, Op::Delete))?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { entity });
                }
                Ok(())
            }

            pub(super) fn ts(t: time::OffsetDateTime) -> Ts {
                Ts(crate::model::normalize(t))
            }
        }

        tenancy_methods!($store, $backend);
        usage_methods!($store);
    };
}
