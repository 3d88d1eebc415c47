//! The store conformance suite: every case in `cases.rs` is written once against `&dyn Store`
//! and runs on both backends, each test on a fresh database: SQLite on a temporary file, and
//! PostgreSQL in a schema of its own (created, migrated through `search_path`, dropped at the
//! end), so parallel tests and repeated CI runs never collide.
//!
//! PostgreSQL is at `postgres://postgres@127.0.0.1:5432/test` unless
//! `PORTCULLIS_TEST_POSTGRES_URL` says otherwise. When it cannot be reached the PostgreSQL
//! tests print `skipping: <why>` and pass, unless `PORTCULLIS_TEST_SERVICES=require` (as in
//! CI), where they fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod cases;

use std::sync::Arc;
use std::time::Duration;

use portcullis_store::{PostgresStore, SqliteStore, Store};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const URL_VAR: &str = "PORTCULLIS_TEST_POSTGRES_URL";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const REQUIRE_VAR: &str = "PORTCULLIS_TEST_SERVICES";

/// Runs a case on its own store; a panic in the case is re-raised after the cleanup.
async fn run<S, F, Fut>(store: Arc<S>, case: F)
where
    S: Store + 'static,
    F: FnOnce(Arc<S>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(case(store.clone())).await;
    store.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn sqlite() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    // A nested path: the store creates the file, not the directory.
    let store = SqliteStore::open(dir.path().join("store.db"))
        .await
        .unwrap();
    (dir, Arc::new(store))
}

/// A PostgreSQL store in a fresh schema, or `None` (after saying why) when PostgreSQL is not
/// reachable and not required.
async fn postgres() -> Option<(sqlx::PgPool, String, Arc<PostgresStore>)> {
    let url = std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await;
    let admin = match admin {
        Ok(pool) => pool,
        Err(e) if portcullis_testkit::required(REQUIRE_VAR) => {
            panic!(
                "PostgreSQL is required ({REQUIRE_VAR}=require) but unreachable ({URL_VAR}): {e}"
            )
        }
        Err(e) => {
            eprintln!("skipping: PostgreSQL unreachable ({URL_VAR}): {e}");
            return None;
        }
    };
    let schema = format!(
        "portcullis_test_{}",
        portcullis_store::new_id().replace('-', "")
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let options: PgConnectOptions = url.parse().unwrap();
    let options = options.options([("search_path", schema.as_str())]);
    let store = PostgresStore::connect_with(options).await.unwrap();
    Some((admin, schema, Arc::new(store)))
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let (_dir, store) = crate::sqlite().await;
                    crate::run(store, |s| async move { crate::cases::$case(&*s).await }).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some((admin, schema, store)) = crate::postgres().await else { return };
                    let case = |s: std::sync::Arc<portcullis_store::PostgresStore>| async move {
                        crate::cases::$case(&*s).await
                    };
                    let outcome = tokio::spawn(async move { crate::run(store, case).await }).await;
                    let drop = format!("DROP SCHEMA {schema} CASCADE");
                    sqlx::query(&drop).execute(&admin).await.unwrap();
                    if let Err(e) = outcome {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*
        }
    };
}

conformance!(
    org_crud,
    team_crud,
    user_crud,
    user_roles,
    key_crud,
    credential_crud,
    credential_optimistic_update,
    unique_violations,
    invalid_references,
    deletes_are_restricted,
    pagination,
    filters,
    active_keys,
    revoke,
    rotation,
    timestamps_are_utc,
    usage_batches_are_idempotent,
    usage_order_paging_and_filters,
    usage_summary_groups,
    usage_summary_filters,
    quotas_round_trip,
    quota_updates_and_clearing,
    list_quotas_returns_only_rows_with_a_quota,
);

/// Rows as they were before migrations 0002 (no role) and 0006 (no quotas) and rows written by
/// hand, which only raw SQL can make: the case gets the store and a function running SQL on the
/// same database, where `{p}` in the SQL stands for the schema qualifier of the tables.
mod raw_rows {
    use portcullis_store::{NewOrg, NewTeam, Role, Store, StoreError};

    async fn users_without_a_role_are_members<F, Fut>(s: &dyn Store, exec: F)
    where
        F: Fn(&'static str) -> Fut,
        Fut: Future<Output = ()>,
    {
        let org = NewOrg {
            name: "o".into(),
            ..NewOrg::default()
        };
        let org = s.create_org(org).await.unwrap();
        let team = NewTeam {
            org_id: org.id,
            name: "t".into(),
            ..NewTeam::default()
        };
        s.create_team(team).await.unwrap();
        exec(
            "INSERT INTO {p}users (id, team_id, name, created_at, updated_at) \
             SELECT 'legacy', id, 'legacy', created_at, updated_at FROM {p}teams",
        )
        .await;
        let legacy = s.get_user("legacy").await.unwrap();
        assert_eq!(legacy.role, Role::Member);
        // Nor a quota (a row from before migration 0006 has the defaults).
        assert!(legacy.limits.is_empty() && legacy.budgets.is_empty());
        // A quota written by hand as an empty value in other words is still no quota.
        exec("UPDATE {p}users SET limits = '{\"rpm\": null}' WHERE id = 'legacy'").await;
        assert!(s.list_quotas().await.unwrap().users.is_empty());
        // A role the store does not know is refused when read, never guessed.
        exec(
            "INSERT INTO {p}users (id, team_id, name, role, created_at, updated_at) \
             SELECT 'odd', id, 'odd', 'root', created_at, updated_at FROM {p}teams",
        )
        .await;
        let odd = s.get_user("odd").await;
        assert!(matches!(odd, Err(StoreError::Invalid(_))), "{odd:?}");
    }

    #[tokio::test]
    async fn sqlite() {
        let (dir, store) = crate::sqlite().await;
        let pool = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            dir.path().join("store.db").display()
        ))
        .await
        .unwrap();
        let exec = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query(&sql.replace("{p}", ""))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        };
        users_without_a_role_are_members(&*store, exec).await;
        pool.close().await;
        store.close().await;
    }

    #[tokio::test]
    async fn postgres() {
        let Some((admin, schema, store)) = crate::postgres().await else {
            return;
        };
        let (pool, prefix) = (admin.clone(), format!("{schema}."));
        let outcome = tokio::spawn(async move {
            let exec = |sql: &'static str| {
                let (pool, sql) = (pool.clone(), sql.replace("{p}", &prefix));
                async move {
                    sqlx::query(&sql).execute(&pool).await.unwrap();
                }
            };
            users_without_a_role_are_members(&*store, exec).await;
            store.close().await;
        })
        .await;
        let drop = format!("DROP SCHEMA {schema} CASCADE");
        sqlx::query(&drop).execute(&admin).await.unwrap();
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
