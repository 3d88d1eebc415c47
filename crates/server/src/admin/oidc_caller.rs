//! Admin callers from OIDC bearer tokens. With `auth.oidc` configured, a presented key of the JWT
//! shape (that is not the master key) is verified by the runtime's [`OidcVerifier`] and mapped to
//! a [`Caller`]:
//!
//! - the role comes from the claim mapping of the config;
//! - a `gateway_admin` is bound to nothing (its org and team claims, if any, are ignored);
//! - an `org_admin` needs the organization claim, matched against a stored organization's id,
//!   else its name;
//! - a `team_admin`, `member` or `viewer` needs the team claim, matched against a stored team's
//!   id, else its name within the token's organization (a name alone is ambiguous across
//!   organizations, so it needs the organization claim; an id does not, but when both are
//!   given the team must belong to that organization).
//!
//! A token that does not verify answers 401 saying what failed; an unknown organization or team
//! 403. Messages never carry the token or a claim value. Tokens are not linked to stored users
//! (`user_id` stays `None`); the subject is `oidc:<sub>`.

use axum::http::{HeaderMap, StatusCode};
use portcullis_core::auth::presented_jwt;
use portcullis_core::error::AuthError;
use portcullis_core::oidc::{JwtPrincipal, OidcError, OidcVerifier};
use portcullis_store::{OrgFilter, Organization, PageRequest, Store, StoreError, Team, TeamFilter};
use portcullis_types::Role;

use super::{AdminError, AdminState, Caller};

/// The caller of a request whose key is an OIDC token; `None` when OIDC is not configured, the
/// key does not have the JWT shape, or it is the master key (which keeps its meaning).
pub(crate) async fn from_headers(
    state: &AdminState,
    headers: &HeaderMap,
) -> Option<Result<Caller, AdminError>> {
    let runtime = state.gateway.runtime();
    runtime.oidc.as_ref()?;
    let token = presented_jwt(headers)?;
    if runtime.keys.check_master(headers).is_ok() {
        return None;
    }
    Some(caller_from_jwt(state, token).await)
}

/// Verifies `token` and maps it to a caller, resolving its organization and team in the store.
pub(crate) async fn caller_from_jwt(state: &AdminState, token: &str) -> Result<Caller, AdminError> {
    let runtime = state.gateway.runtime();
    let verifier: &OidcVerifier = runtime.oidc.as_deref().ok_or_else(|| {
        AdminError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "bearer tokens are not accepted: auth.oidc is not configured",
        )
    })?;
    let verified = verifier.verify(token).await.map_err(token_error)?;
    scope(state.store.as_ref(), verified).await
}

/// The caller a verified token stands for.
async fn scope(store: &dyn Store, token: JwtPrincipal) -> Result<Caller, AdminError> {
    let mut caller = Caller {
        role: token.role,
        org_id: None,
        team_id: None,
        user_id: None,
        subject: format!("oidc:{}", token.subject),
    };
    match token.role {
        Role::GatewayAdmin => {}
        Role::OrgAdmin => {
            let claim = token.org.as_deref().ok_or_else(|| {
                AdminError::forbidden(
                    "an org_admin token must name its organization, and this one names none (see auth.oidc.claims.org)",
                )
            })?;
            caller.org_id = Some(find_org(store, claim).await?.id);
        }
        Role::TeamAdmin | Role::Member | Role::Viewer => {
            let claim = token.team.as_deref().ok_or_else(|| {
                AdminError::forbidden(format!(
                    "a {} token must name its team, and this one names none (see auth.oidc.claims.team)",
                    token.role
                ))
            })?;
            let org = match token.org.as_deref() {
                Some(org) => Some(find_org(store, org).await?),
                None => None,
            };
            let team = find_team(store, org.as_ref(), claim).await?;
            caller.org_id = Some(team.org_id);
            caller.team_id = Some(team.id);
        }
    }
    Ok(caller)
}

/// The organization whose id, else whose name, is `claim`.
async fn find_org(store: &dyn Store, claim: &str) -> Result<Organization, AdminError> {
    match store.get_org(claim).await {
        Ok(org) => return Ok(org),
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let filter = OrgFilter {
        name_prefix: Some(claim.to_owned()),
    };
    let mut page = PageRequest::first(portcullis_store::MAX_PAGE);
    loop {
        let found = store.list_orgs(&filter, &page).await?;
        if let Some(org) = found.items.into_iter().find(|o| o.name == claim) {
            return Ok(org);
        }
        match found.next_after {
            Some(after) => page.after = Some(after),
            None => {
                return Err(unknown(
                    "unknown_organization",
                    "the token's organization is not known to the gateway: no organization has that id or name",
                ));
            }
        }
    }
}

/// The team whose id is `claim` (inside `org`, when given), else the team of `org` named `claim`.
async fn find_team(
    store: &dyn Store,
    org: Option<&Organization>,
    claim: &str,
) -> Result<Team, AdminError> {
    match store.get_team(claim).await {
        Ok(team) if org.is_none_or(|o| o.id == team.org_id) => return Ok(team),
        Ok(_) => {
            return Err(unknown(
                "unknown_team",
                "the token's team is not in the token's organization",
            ));
        }
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(org) = org else {
        return Err(unknown(
            "unknown_team",
            "the token's team is not a team id, and a team name needs the token's organization (see auth.oidc.claims.org)",
        ));
    };
    let filter = TeamFilter {
        org_id: Some(org.id.clone()),
        name_prefix: Some(claim.to_owned()),
    };
    let mut page = PageRequest::first(portcullis_store::MAX_PAGE);
    loop {
        let found = store.list_teams(&filter, &page).await?;
        if let Some(team) = found.items.into_iter().find(|t| t.name == claim) {
            return Ok(team);
        }
        match found.next_after {
            Some(after) => page.after = Some(after),
            None => {
                return Err(unknown(
                    "unknown_team",
                    "the token's team is not known in its organization: no team there has that id or name",
                ));
            }
        }
    }
}

fn unknown(code: &'static str, message: &'static str) -> AdminError {
    AdminError::new(StatusCode::FORBIDDEN, code, message)
}

/// 401 saying what failed; 503 when the identity provider's keys cannot be fetched.
fn token_error(e: OidcError) -> AdminError {
    let e = AuthError::from(e);
    let (status, code) = match e {
        AuthError::TokenUnverifiable => (StatusCode::SERVICE_UNAVAILABLE, "token_unverifiable"),
        _ => (StatusCode::UNAUTHORIZED, "invalid_token"),
    };
    AdminError::new(status, code, e.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use portcullis_core::config::Config;
    use portcullis_core::virtual_key::KeyHasher;
    use portcullis_core::{Gateway, Runtime};
    use portcullis_store::{NewOrg, NewTeam, SqliteStore};
    use portcullis_testkit::oidc::{self, TestIdp, TestKey};
    use serde_json::{Value, json};

    use super::*;

    const MASTER: &str = "oidc-caller-master-key-0123";

    struct Setup {
        state: AdminState,
        idp: TestIdp,
        acme: Organization,
        search: Team,
        other_search: Team,
        _dir: tempfile::TempDir,
    }

    /// A store with organizations `acme` (team `search`) and `globex` (also a team `search`),
    /// and a gateway accepting the test IdP's tokens (and `MASTER`).
    async fn setup() -> Setup {
        let idp = TestIdp::start(&[TestKey::Rsa1]).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
        let acme = store
            .create_org(NewOrg {
                name: "acme".into(),
                ..NewOrg::default()
            })
            .await
            .unwrap();
        let globex = store
            .create_org(NewOrg {
                name: "globex".into(),
                ..NewOrg::default()
            })
            .await
            .unwrap();
        let team = |org: &Organization| NewTeam {
            org_id: org.id.clone(),
            name: "search".into(),
            ..NewTeam::default()
        };
        let search = store.create_team(team(&acme)).await.unwrap();
        let other_search = store.create_team(team(&globex)).await.unwrap();
        let yaml = format!(
            r#"
auth:
  master_key: {MASTER}
  oidc:
    issuer: {}
    audience: {}
    jwks_url: {}
    claims:
      org: org
      team: team
      role: roles
      roles: {{ admin: gateway_admin, org-admin: org_admin, lead: team_admin, dev: member, auditor: viewer }}
"#,
            oidc::ISSUER,
            oidc::AUDIENCE,
            idp.jwks_url()
        );
        let config = Config::from_yaml(&yaml, &HashMap::<String, String>::new()).unwrap();
        let http = portcullis_core::provider::client::build(Duration::from_secs(2)).unwrap();
        let gateway = Arc::new(Gateway::new(Runtime::build(&config, &http), None));
        let state = AdminState {
            gateway,
            store: Arc::new(store),
            hasher: Arc::new(KeyHasher::new(&[1u8; 32]).unwrap()),
            credentials: Default::default(),
        };
        Setup {
            state,
            idp,
            acme,
            search,
            other_search,
            _dir: dir,
        }
    }

    fn token(role: &str, org: Option<&str>, team: Option<&str>) -> String {
        let mut c: Value = oidc::claims("alice");
        c["roles"] = json!([role]);
        if let Some(org) = org {
            c["org"] = json!(org);
        }
        if let Some(team) = team {
            c["team"] = json!(team);
        }
        TestKey::Rsa1.sign(&c).unwrap()
    }

    async fn caller(s: &Setup, token: &str) -> Result<Caller, AdminError> {
        caller_from_jwt(&s.state, token).await
    }

    fn refused(result: Result<Caller, AdminError>, status: StatusCode, code: &str) -> String {
        match result {
            Ok(c) => panic!("expected {status} {code}, got {c:?}"),
            Err(e) => {
                assert_eq!((e.status(), e.code()), (status, code), "{}", e.message());
                e.message().to_owned()
            }
        }
    }

    #[tokio::test]
    async fn roles_are_bound_to_the_stored_organization_and_team() {
        let s = setup().await;
        let admin = caller(&s, &token("admin", Some("no-such-org"), None))
            .await
            .unwrap();
        assert_eq!(
            admin,
            Caller {
                role: Role::GatewayAdmin,
                org_id: None,
                team_id: None,
                user_id: None,
                subject: "oidc:alice".into(),
            }
        );

        // An organization by name or by id.
        for org in ["acme", s.acme.id.as_str()] {
            let c = caller(&s, &token("org-admin", Some(org), None))
                .await
                .unwrap();
            assert_eq!(c.role, Role::OrgAdmin);
            assert_eq!(c.org_id.as_deref(), Some(s.acme.id.as_str()));
            assert_eq!(c.team_id, None);
        }

        // A team by name within the token's organization, or by id (with or without the org).
        for (org, team) in [
            (Some("acme"), "search"),
            (Some("acme"), s.search.id.as_str()),
            (None, s.search.id.as_str()),
        ] {
            let c = caller(&s, &token("lead", org, Some(team))).await.unwrap();
            assert_eq!(c.role, Role::TeamAdmin);
            assert_eq!(c.org_id.as_deref(), Some(s.acme.id.as_str()));
            assert_eq!(c.team_id.as_deref(), Some(s.search.id.as_str()));
        }
        let c = caller(&s, &token("dev", Some("globex"), Some("search")))
            .await
            .unwrap();
        assert_eq!(c.team_id.as_deref(), Some(s.other_search.id.as_str()));
        let c = caller(&s, &token("auditor", Some("acme"), Some("search")))
            .await
            .unwrap();
        assert_eq!(c.role, Role::Viewer, "viewers read the admin API");
    }

    #[tokio::test]
    async fn unknown_or_missing_scopes_are_refused_without_echoing_claims() {
        let s = setup().await;
        let cases = [
            (token("org-admin", None, None), "forbidden"),
            (
                token("org-admin", Some("secret-org-name"), None),
                "unknown_organization",
            ),
            (token("dev", Some("acme"), None), "forbidden"),
            (
                token("dev", Some("acme"), Some("secret-team-name")),
                "unknown_team",
            ),
            (token("dev", None, Some("search")), "unknown_team"),
            (
                token("lead", Some("secret-org-name"), Some("search")),
                "unknown_organization",
            ),
            // Globex's team under Acme.
            (
                token("lead", Some("acme"), Some(&s.other_search.id)),
                "unknown_team",
            ),
        ];
        for (t, code) in cases {
            let message = refused(caller(&s, &t).await, StatusCode::FORBIDDEN, code);
            assert!(
                !message.contains("secret-") && !message.contains(&s.other_search.id),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn tokens_that_do_not_verify_are_401_saying_why() {
        let s = setup().await;
        let mut c = oidc::claims("alice");
        c["roles"] = json!(["admin"]);
        c["aud"] = json!("someone-else");
        let t = TestKey::Rsa1.sign(&c).unwrap();
        let message = refused(
            caller(&s, &t).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        );
        assert!(message.contains("another audience"), "{message}");
        let forged = TestKey::Rsa2.sign_as("test-rsa-1", &c).unwrap();
        let message = refused(
            caller(&s, &forged).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        );
        assert!(message.contains("signature"), "{message}");
        assert!(!message.contains(&forged));
    }

    #[tokio::test]
    async fn the_hook_takes_tokens_only_and_leaves_the_master_key_alone() {
        let s = setup().await;
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", format!("Bearer {value}").parse().unwrap());
            h
        };
        assert!(from_headers(&s.state, &headers(MASTER)).await.is_none());
        assert!(
            from_headers(&s.state, &headers("sk-some-key"))
                .await
                .is_none()
        );
        let c = from_headers(&s.state, &headers(&token("admin", None, None)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.role, Role::GatewayAdmin);
        assert_eq!(s.idp.fetches(), 1);

        // Without OIDC a token is left to the key checks.
        let config = Config::from_yaml(
            &format!("auth: {{ master_key: {MASTER} }}"),
            &HashMap::<String, String>::new(),
        )
        .unwrap();
        let http = portcullis_core::provider::client::build(Duration::from_secs(2)).unwrap();
        s.state.gateway.swap(Runtime::build(&config, &http));
        assert!(
            from_headers(&s.state, &headers(&token("admin", None, None)))
                .await
                .is_none()
        );
        refused(
            caller(&s, &token("admin", None, None)).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        );
    }
}
