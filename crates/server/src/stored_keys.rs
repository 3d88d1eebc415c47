//! The store's virtual keys on the request path. At start the store is opened (its migrations
//! applied) and its active keys loaded into the gateway's in-memory table before the listener
//! opens; then the table is reloaded every second, so a key revoked, disabled or expired in the
//! store stops working within a second on this replica, and a request never waits on the
//! database. A store that cannot be read keeps the last table and logs a warning.
//!
//! Each key carries its quotas (`KeyOwner::quotas`): its own limits and budgets, and those of
//! its user, team and organization, read with the keys on every load (`Store::list_quotas`,
//! one query for the three tables), so a quota changed in the store applies within a second
//! too, and at once on the replica whose admin API changed it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use portcullis_core::Gateway;
use portcullis_core::auth::{KeyOwner, ModelPattern, StoredKey, StoredKeys};
use portcullis_core::config::StoreConfig;
use portcullis_core::quota::{Quota, Quotas};
use portcullis_core::virtual_key::KeyHasher;
use portcullis_store::{
    MAX_PAGE, PageRequest, PostgresStore, QuotaTable, SqliteStore, Store, StoredQuota, TeamFilter,
    VirtualKey,
};
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use tokio::sync::watch;

/// How often the table is reloaded.
const REFRESH: Duration = Duration::from_secs(1);

/// Opens the configured store and applies its migrations.
pub async fn open(config: &StoreConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config {
        StoreConfig::Sqlite(path) => Arc::new(
            SqliteStore::open(path)
                .await
                .with_context(|| format!("cannot open the SQLite store {}", path.display()))?,
        ),
        StoreConfig::Postgres(url) => Arc::new(
            PostgresStore::connect(url.expose_secret())
                .await
                .context("cannot connect to the PostgreSQL store")?,
        ),
    })
}

/// The active keys of `store` as the request path's table.
pub async fn load(
    store: &dyn Store,
    hasher: &Arc<KeyHasher>,
) -> Result<StoredKeys, portcullis_store::StoreError> {
    let keys = store.list_active_keys(OffsetDateTime::now_utc()).await?;
    let orgs = team_orgs(store).await?;
    let scopes = ScopeQuotas::from(store.list_quotas().await?);
    Ok(StoredKeys::new(
        hasher.clone(),
        keys.into_iter().map(|k| {
            let org = orgs.get(&k.team_id).cloned();
            let quotas = scopes.of(&k, org.as_deref());
            (k.public_id.clone(), stored_key(k, org, quotas))
        }),
    ))
}

/// The quotas of the organizations, teams and users that have one, converted once per load:
/// the keys of one team share its quota's budgets rather than copying them.
struct ScopeQuotas {
    orgs: HashMap<String, Quota>,
    teams: HashMap<String, Quota>,
    users: HashMap<String, Quota>,
}

impl From<QuotaTable> for ScopeQuotas {
    fn from(table: QuotaTable) -> Self {
        let convert = |map: HashMap<String, StoredQuota>| {
            map.into_iter()
                .map(|(id, q)| (id, Quota::new(q.limits, q.budgets)))
                .collect()
        };
        Self {
            orgs: convert(table.orgs),
            teams: convert(table.teams),
            users: convert(table.users),
        }
    }
}

impl ScopeQuotas {
    /// The quotas of `key` (of the organization `org`) and of its scopes; `None` when none of
    /// them has any.
    fn of(&self, key: &VirtualKey, org: Option<&str>) -> Option<Arc<Quotas>> {
        let own = Quota::new(key.limits, key.budgets.clone());
        Quotas {
            key: (!own.is_empty()).then_some(own),
            user: key
                .user_id
                .as_ref()
                .and_then(|u| self.users.get(u))
                .cloned(),
            team: self.teams.get(&key.team_id).cloned(),
            org: org.and_then(|o| self.orgs.get(o)).cloned(),
        }
        .shared()
    }
}

/// Every team's organization id, by team id (all pages).
async fn team_orgs(
    store: &dyn Store,
) -> Result<HashMap<String, Arc<str>>, portcullis_store::StoreError> {
    let mut orgs = HashMap::new();
    let mut page = PageRequest::first(MAX_PAGE);
    loop {
        let teams = store.list_teams(&TeamFilter::default(), &page).await?;
        for team in teams.items {
            orgs.insert(team.id, Arc::from(team.org_id.as_str()));
        }
        match teams.next_after {
            Some(after) => page.after = Some(after),
            None => return Ok(orgs),
        }
    }
}

fn stored_key(key: VirtualKey, org: Option<Arc<str>>, quotas: Option<Arc<Quotas>>) -> StoredKey {
    StoredKey {
        owner: KeyOwner {
            key_id: Some(Arc::from(key.id.as_str())),
            org,
            team: Some(Arc::from(key.team_id.as_str())),
            user: key.user_id.as_deref().map(Arc::from),
            quotas,
            labels: (!key.labels.is_empty()).then(|| Arc::new(key.labels)),
        },
        name: Arc::from(key.name.as_str()),
        previous: key
            .previous_digest
            .zip(key.previous_valid_until)
            .map(|(digest, until)| (digest, SystemTime::from(until))),
        digest: key.digest,
        expires_at: key.expires_at.map(SystemTime::from),
        models: patterns(key.allowed_models),
        endpoints: patterns(key.allowed_endpoints),
    }
}

/// A key's allow-list as the request path matches it; empty means no restriction.
fn patterns(list: Vec<String>) -> Option<Arc<[ModelPattern]>> {
    (!list.is_empty()).then(|| list.into_iter().map(ModelPattern::new).collect())
}

/// Reloads the table every second until `stop` turns true.
pub async fn refresh(
    gateway: Arc<Gateway>,
    store: Arc<dyn Store>,
    hasher: Arc<KeyHasher>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match load(store.as_ref(), &hasher).await {
            Ok(table) => {
                if failing {
                    tracing::info!(keys = table.len(), "the store can be read again");
                    failing = false;
                }
                gateway.set_stored_keys(table);
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read the store's keys; keeping the last ones");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use portcullis_core::auth::{KeyTable, Principal};
    use portcullis_store::{
        BudgetPeriod, BudgetSpec, LimitRules, NewKey, NewOrg, NewTeam, NewUser, Organization, Team,
        User,
    };
    use secrecy::SecretString;

    use super::*;

    fn rpm(n: u64) -> LimitRules {
        LimitRules {
            rpm: Some(n),
            ..LimitRules::default()
        }
    }

    fn daily(max_usd: f64) -> BudgetSpec {
        BudgetSpec {
            max_usd,
            period: BudgetPeriod::Daily,
            alerts: vec![80],
            hard: true,
        }
    }

    /// An organization, a team, a user and a key of that user, made with the quotas given; the
    /// key's secret.
    struct Tree {
        org: Organization,
        team: Team,
        user: User,
        key: VirtualKey,
        secret: SecretString,
    }

    async fn tree(
        store: &dyn Store,
        hasher: &KeyHasher,
        name: &str,
        quotas: [(LimitRules, Vec<BudgetSpec>); 4],
    ) -> Tree {
        let [org_q, team_q, user_q, key_q] = quotas;
        let org = store
            .create_org(NewOrg {
                name: name.into(),
                limits: org_q.0,
                budgets: org_q.1,
            })
            .await
            .unwrap();
        let team = store
            .create_team(NewTeam {
                org_id: org.id.clone(),
                name: "search".into(),
                limits: team_q.0,
                budgets: team_q.1,
            })
            .await
            .unwrap();
        let user = store
            .create_user(NewUser {
                team_id: team.id.clone(),
                name: "ada".into(),
                limits: user_q.0,
                budgets: user_q.1,
                ..NewUser::default()
            })
            .await
            .unwrap();
        let made = hasher.generate().unwrap();
        let key = store
            .create_key(NewKey {
                public_id: made.id.clone(),
                digest: made.digest.clone(),
                name: "bot".into(),
                team_id: team.id.clone(),
                user_id: Some(user.id.clone()),
                limits: key_q.0,
                budgets: key_q.1,
                enabled: true,
                labels: [("env".to_owned(), "prod".to_owned())].into(),
                ..NewKey::default()
            })
            .await
            .unwrap();
        Tree {
            org,
            team,
            user,
            key,
            secret: made.key,
        }
    }

    fn none() -> [(LimitRules, Vec<BudgetSpec>); 4] {
        std::array::from_fn(|_| (LimitRules::default(), vec![]))
    }

    fn authenticate(table: &StoredKeys, secret: &SecretString) -> Principal {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-api-key",
            http::HeaderValue::from_str(secret.expose_secret()).unwrap(),
        );
        KeyTable::default()
            .authenticate_with(&headers, Some(table))
            .unwrap()
    }

    async fn sqlite(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&dir.path().join("s.db")).await.unwrap()
    }

    fn hasher() -> Arc<KeyHasher> {
        Arc::new(KeyHasher::new(&[7u8; 32]).unwrap())
    }

    #[tokio::test]
    async fn a_stored_key_authenticates_as_its_key_user_team_and_organization() {
        let dir = tempfile::tempdir().unwrap();
        let (store, hasher) = (sqlite(&dir).await, hasher());
        let t = tree(&store, &hasher, "acme", none()).await;
        let p = authenticate(&load(&store, &hasher).await.unwrap(), &t.secret);
        assert_eq!(
            (
                p.key_id.as_deref(),
                p.user.as_deref(),
                p.team.as_deref(),
                p.org.as_deref()
            ),
            (
                Some(t.key.id.as_str()),
                Some(t.user.id.as_str()),
                Some(t.team.id.as_str()),
                Some(t.org.id.as_str())
            )
        );
        assert!(p.quotas.is_none(), "no scope has a quota");
        // Its labels, for routing rules' `key_metadata`.
        let labels = p.labels.as_deref().cloned().unwrap_or_default();
        assert_eq!(labels, [("env".to_owned(), "prod".to_owned())].into());
    }

    #[tokio::test]
    async fn a_stored_key_carries_the_quotas_of_its_four_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, hasher) = (sqlite(&dir).await, hasher());
        let full = tree(
            &store,
            &hasher,
            "acme",
            [
                (rpm(1000), vec![daily(100.0)]),
                (rpm(100), vec![]),
                (LimitRules::default(), vec![daily(5.0)]),
                (rpm(10), vec![daily(1.0)]),
            ],
        )
        .await;
        // Only the team of this one has a quota: the other scopes are `None`.
        let mut only_team = none();
        only_team[1] = (rpm(7), vec![]);
        let partial = tree(&store, &hasher, "globex", only_team).await;
        let bare = tree(&store, &hasher, "initech", none()).await;

        let table = load(&store, &hasher).await.unwrap();
        let quota = |l, b| Some(Quota::new(l, b));
        assert_eq!(
            authenticate(&table, &full.secret).quotas.as_deref(),
            Some(&Quotas {
                key: quota(rpm(10), vec![daily(1.0)]),
                user: quota(LimitRules::default(), vec![daily(5.0)]),
                team: quota(rpm(100), vec![]),
                org: quota(rpm(1000), vec![daily(100.0)]),
            })
        );
        assert_eq!(
            authenticate(&table, &partial.secret).quotas.as_deref(),
            Some(&Quotas {
                team: quota(rpm(7), vec![]),
                ..Quotas::default()
            })
        );
        assert!(authenticate(&table, &bare.secret).quotas.is_none());
    }

    /// A change of quotas through the admin API reaches the table at once: no refresh runs
    /// here, only the reload the handler triggers.
    #[tokio::test]
    async fn quotas_changed_through_the_admin_api_reach_the_table_at_once() {
        const MASTER: &str = "quota-master-key-0123456789";
        let dir = tempfile::tempdir().unwrap();
        let (store, hasher) = (Arc::new(sqlite(&dir).await), hasher());
        let t = tree(store.as_ref(), &hasher, "acme", none()).await;
        let config = portcullis_core::config::Config::from_yaml(
            &format!("auth:\n  master_key: {MASTER}\n"),
            &HashMap::<String, String>::new(),
        )
        .unwrap();
        let http = portcullis_core::provider::client::build(Duration::from_secs(2)).unwrap();
        let gateway = Arc::new(Gateway::new(
            portcullis_core::Runtime::build(&config, &http),
            None,
        ));
        gateway.set_stored_keys(load(store.as_ref(), &hasher).await.unwrap());
        let state = crate::admin::AdminState {
            gateway: gateway.clone(),
            store: store.clone(),
            hasher: hasher.clone(),
            credentials: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/admin/v1", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, crate::admin::router(state))
                .await
                .unwrap();
        });
        let quotas = || {
            let table = gateway.stored_keys().unwrap();
            authenticate(&table, &t.secret).quotas.map(|q| (*q).clone())
        };
        assert_eq!(quotas(), None);

        let client = reqwest::Client::new();
        let patch = |path: String, body: serde_json::Value| {
            let request = client
                .patch(format!("{base}{path}"))
                .bearer_auth(MASTER)
                .json(&body);
            async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
            }
        };
        // Each change is checked alone, so each handler's own reload is what it sees.
        let two_fifty = BudgetSpec {
            alerts: vec![],
            ..daily(2.5)
        };
        let (limits, budgets) = (
            Some(Quota::new(rpm(60), vec![])),
            Some(Quota::new(LimitRules::default(), vec![two_fifty])),
        );
        let rpm_60 = serde_json::json!({"limits": {"rpm": 60}});
        let budget = serde_json::json!({"budgets": [{"max_usd": 2.5, "period": "daily"}]});
        let mut want = Quotas::default();
        patch(format!("/orgs/{}", t.org.id), rpm_60.clone()).await;
        want.org = limits.clone();
        assert_eq!(quotas(), Some(want.clone()));
        patch(format!("/teams/{}", t.team.id), budget.clone()).await;
        want.team = budgets.clone();
        assert_eq!(quotas(), Some(want.clone()));
        patch(format!("/users/{}", t.user.id), rpm_60).await;
        want.user = limits;
        assert_eq!(quotas(), Some(want.clone()));
        patch(format!("/keys/{}", t.key.id), budget).await;
        want.key = budgets;
        assert_eq!(quotas(), Some(want.clone()));

        // Removed one by one, with `null` or the empty value: once no scope has a quota, the
        // key carries nothing.
        type Step<'a> = (String, &'a str, fn(&mut Quotas));
        let steps: [Step; 4] = [
            (format!("/orgs/{}", t.org.id), r#"{"limits": null}"#, |q| {
                q.org = None
            }),
            (format!("/users/{}", t.user.id), r#"{"limits": {}}"#, |q| {
                q.user = None
            }),
            (format!("/teams/{}", t.team.id), r#"{"budgets": []}"#, |q| {
                q.team = None
            }),
            (format!("/keys/{}", t.key.id), r#"{"budgets": null}"#, |q| {
                q.key = None
            }),
        ];
        for (path, body, clear) in steps {
            patch(path, serde_json::from_str(body).unwrap()).await;
            clear(&mut want);
            assert_eq!(quotas(), Quotas::shared(want.clone()).map(|q| (*q).clone()));
        }
        assert_eq!(quotas(), None);
        server.abort();
    }
}
