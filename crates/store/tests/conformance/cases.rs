//! The cases of the conformance suite, each against any `&dyn Store` on a fresh database.

use std::collections::{BTreeMap, HashSet};

use portcullis_store::*;
use time::{Duration, OffsetDateTime};

fn assert_not_found<T: std::fmt::Debug>(r: Result<T>) {
    assert!(
        matches!(r, Err(StoreError::NotFound { .. })),
        "expected NotFound, got {r:?}"
    );
}

fn assert_conflict<T: std::fmt::Debug>(r: Result<T>) {
    assert!(
        matches!(r, Err(StoreError::Conflict { .. })),
        "expected Conflict, got {r:?}"
    );
}

fn assert_invalid_ref<T: std::fmt::Debug>(r: Result<T>) {
    assert!(
        matches!(r, Err(StoreError::InvalidReference { .. })),
        "expected InvalidReference, got {r:?}"
    );
}

async fn org(s: &dyn Store, name: &str) -> Organization {
    s.create_org(NewOrg { name: name.into() }).await.unwrap()
}

async fn team(s: &dyn Store, org_id: &str, name: &str) -> Team {
    s.create_team(NewTeam {
        org_id: org_id.into(),
        name: name.into(),
    })
    .await
    .unwrap()
}

async fn user(s: &dyn Store, team_id: &str, name: &str) -> User {
    let new = NewUser {
        team_id: team_id.into(),
        name: name.into(),
        email: None,
    };
    s.create_user(new).await.unwrap()
}

fn new_key(team_id: &str, public_id: &str) -> NewKey {
    NewKey {
        public_id: public_id.into(),
        digest: public_id.as_bytes().to_vec(),
        name: format!("key {public_id}"),
        team_id: team_id.into(),
        enabled: true,
        ..NewKey::default()
    }
}

async fn key(s: &dyn Store, team_id: &str, public_id: &str) -> VirtualKey {
    s.create_key(new_key(team_id, public_id)).await.unwrap()
}

fn new_credential(name: &str, provider: &str) -> NewCredential {
    NewCredential {
        name: name.into(),
        provider: provider.into(),
        ciphertext: vec![0, 1, 2, 255],
        nonce: vec![9; 12],
        key_id: "k1".into(),
    }
}

fn all() -> PageRequest {
    PageRequest::first(MAX_PAGE)
}

pub async fn org_crud(s: &dyn Store) {
    let before = now();
    let o = org(s, "acme").await;
    assert_eq!(o.name, "acme");
    assert!(o.created_at >= before && o.created_at <= now());
    assert_eq!(o.created_at, o.updated_at);
    assert_eq!(s.get_org(&o.id).await.unwrap(), o);

    let renamed = s
        .update_org(
            &o.id,
            OrgUpdate {
                name: Some("acme2".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "acme2");
    assert_eq!(renamed.created_at, o.created_at);
    assert!(renamed.updated_at >= o.updated_at);
    let unchanged = s.update_org(&o.id, OrgUpdate::default()).await.unwrap();
    assert_eq!(unchanged.name, "acme2");

    let listed = s.list_orgs(&OrgFilter::default(), &all()).await.unwrap();
    assert_eq!(listed.items, vec![unchanged.clone()]);
    assert_eq!(listed.next_after, None);

    s.delete_org(&o.id).await.unwrap();
    assert_not_found(s.get_org(&o.id).await);
    assert_not_found(s.delete_org(&o.id).await);
    assert_not_found(s.update_org(&o.id, OrgUpdate::default()).await);
}

pub async fn team_crud(s: &dyn Store) {
    let o = org(s, "acme").await;
    let t = team(s, &o.id, "search").await;
    assert_eq!(
        (t.org_id.as_str(), t.name.as_str()),
        (o.id.as_str(), "search")
    );
    assert_eq!(s.get_team(&t.id).await.unwrap(), t);
    let t2 = s
        .update_team(
            &t.id,
            TeamUpdate {
                name: Some("ads".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(t2.name, "ads");
    assert_eq!(s.get_team(&t.id).await.unwrap(), t2);
    s.delete_team(&t.id).await.unwrap();
    assert_not_found(s.get_team(&t.id).await);
    assert_not_found(s.delete_team(&t.id).await);
    assert_not_found(s.update_team("missing", TeamUpdate::default()).await);
}

pub async fn user_crud(s: &dyn Store) {
    let o = org(s, "acme").await;
    let t = team(s, &o.id, "search").await;
    let new = NewUser {
        team_id: t.id.clone(),
        name: "ada".into(),
        email: Some("a@x".into()),
    };
    let u = s.create_user(new).await.unwrap();
    assert_eq!(u.email.as_deref(), Some("a@x"));
    assert_eq!(s.get_user(&u.id).await.unwrap(), u);

    let renamed = UserUpdate {
        name: Some("ada l".into()),
        email: None,
    };
    let u2 = s.update_user(&u.id, renamed).await.unwrap();
    assert_eq!(
        (u2.name.as_str(), u2.email.as_deref()),
        ("ada l", Some("a@x"))
    );
    let cleared = s
        .update_user(
            &u.id,
            UserUpdate {
                name: None,
                email: Some(None),
            },
        )
        .await;
    assert_eq!(cleared.unwrap().email, None);

    s.delete_user(&u.id).await.unwrap();
    assert_not_found(s.get_user(&u.id).await);
    assert_not_found(s.delete_user(&u.id).await);
}

pub async fn key_crud(s: &dyn Store) {
    let o = org(s, "acme").await;
    let t = team(s, &o.id, "search").await;
    let u = user(s, &t.id, "ada").await;
    let expires = now() + Duration::days(30);
    let labels = BTreeMap::from([
        ("env".into(), "prod".into()),
        ("ü".into(), "☃ \"q\"".into()),
    ]);
    let new = NewKey {
        user_id: Some(u.id.clone()),
        labels: labels.clone(),
        allowed_models: vec!["gpt-4o".into(), "claude-*".into()],
        allowed_endpoints: vec!["/v1/chat/completions".into()],
        expires_at: Some(expires),
        digest: vec![0, 255, 7, 0],
        ..new_key(&t.id, "pk_one")
    };
    let k = s.create_key(new).await.unwrap();
    assert_eq!(k.digest, vec![0, 255, 7, 0]);
    assert_eq!(k.labels, labels);
    assert_eq!(k.allowed_models, vec!["gpt-4o", "claude-*"]);
    assert_eq!(k.allowed_endpoints, vec!["/v1/chat/completions"]);
    assert_eq!(k.expires_at, Some(expires));
    assert_eq!(k.user_id.as_deref(), Some(u.id.as_str()));
    assert!(k.enabled && k.revoked_at.is_none() && k.previous_digest.is_none());
    assert_eq!(s.get_key(&k.id).await.unwrap(), k);
    assert_eq!(s.get_key_by_public_id("pk_one").await.unwrap(), k);
    assert_not_found(s.get_key_by_public_id("pk_other").await);

    let update = KeyUpdate {
        name: Some("renamed".into()),
        labels: Some(BTreeMap::new()),
        allowed_models: Some(vec![]),
        allowed_endpoints: Some(vec!["/v1/embeddings".into()]),
        expires_at: Some(None),
        enabled: Some(false),
    };
    let k2 = s.update_key(&k.id, update).await.unwrap();
    assert_eq!(k2.name, "renamed");
    assert!(k2.labels.is_empty() && k2.allowed_models.is_empty());
    assert_eq!(k2.allowed_endpoints, vec!["/v1/embeddings"]);
    assert_eq!((k2.expires_at, k2.enabled), (None, false));
    assert_eq!(k2.digest, k.digest);
    let k3 = s.update_key(&k.id, KeyUpdate::default()).await.unwrap();
    assert_eq!(
        (k3.name.as_str(), k3.enabled, k3.expires_at),
        ("renamed", false, None)
    );

    s.delete_key(&k.id).await.unwrap();
    assert_not_found(s.get_key(&k.id).await);
    assert_not_found(s.delete_key(&k.id).await);
    assert_not_found(s.update_key(&k.id, KeyUpdate::default()).await);
}

pub async fn credential_crud(s: &dyn Store) {
    let c = s
        .create_credential(new_credential("openai-main", "openai"))
        .await
        .unwrap();
    assert_eq!(
        (c.ciphertext.as_slice(), c.nonce.as_slice()),
        (&[0, 1, 2, 255][..], &[9; 12][..])
    );
    assert_eq!((c.provider.as_str(), c.key_id.as_str()), ("openai", "k1"));
    assert_eq!(s.get_credential(&c.id).await.unwrap(), c);

    let renamed = CredentialUpdate {
        name: Some("openai-2".into()),
        secret: None,
    };
    let c2 = s.update_credential(&c.id, renamed).await.unwrap();
    assert_eq!(
        (c2.name.as_str(), &c2.ciphertext),
        ("openai-2", &c.ciphertext)
    );
    let secret = EncryptedSecret {
        ciphertext: vec![42; 40],
        nonce: vec![1; 12],
        key_id: "k2".into(),
    };
    let update = CredentialUpdate {
        name: None,
        secret: Some(secret),
    };
    let c3 = s.update_credential(&c.id, update).await.unwrap();
    assert_eq!(
        (c3.ciphertext, c3.nonce, c3.key_id),
        (vec![42; 40], vec![1; 12], "k2".into())
    );

    s.delete_credential(&c.id).await.unwrap();
    assert_not_found(s.get_credential(&c.id).await);
    assert_not_found(s.delete_credential(&c.id).await);
}

pub async fn unique_violations(s: &dyn Store) {
    let o = org(s, "acme").await;
    assert_conflict(
        s.create_org(NewOrg {
            name: "acme".into(),
        })
        .await,
    );
    let other = org(s, "other").await;
    assert_conflict(
        s.update_org(
            &other.id,
            OrgUpdate {
                name: Some("acme".into()),
            },
        )
        .await,
    );

    let t = team(s, &o.id, "search").await;
    assert_conflict(
        s.create_team(NewTeam {
            org_id: o.id.clone(),
            name: "search".into(),
        })
        .await,
    );
    // The same team name in another organization is fine.
    team(s, &other.id, "search").await;

    user(s, &t.id, "ada").await;
    let dup = NewUser {
        team_id: t.id.clone(),
        name: "ada".into(),
        email: None,
    };
    assert_conflict(s.create_user(dup).await);

    key(s, &t.id, "pk_dup").await;
    assert_conflict(s.create_key(new_key(&t.id, "pk_dup")).await);

    s.create_credential(new_credential("c", "openai"))
        .await
        .unwrap();
    assert_conflict(s.create_credential(new_credential("c", "anthropic")).await);
}

pub async fn invalid_references(s: &dyn Store) {
    let missing = new_id();
    assert_invalid_ref(
        s.create_team(NewTeam {
            org_id: missing.clone(),
            name: "t".into(),
        })
        .await,
    );
    let lost = NewUser {
        team_id: missing.clone(),
        name: "u".into(),
        email: None,
    };
    assert_invalid_ref(s.create_user(lost).await);
    assert_invalid_ref(s.create_key(new_key(&missing, "pk_a")).await);

    let o = org(s, "acme").await;
    let t1 = team(s, &o.id, "one").await;
    let t2 = team(s, &o.id, "two").await;
    let u2 = user(s, &t2.id, "bob").await;
    let missing_user = NewKey {
        user_id: Some(missing),
        ..new_key(&t1.id, "pk_b")
    };
    assert_invalid_ref(s.create_key(missing_user).await);
    // A key's user must be in the key's team.
    let foreign_user = NewKey {
        user_id: Some(u2.id.clone()),
        ..new_key(&t1.id, "pk_c")
    };
    assert_invalid_ref(s.create_key(foreign_user).await);
    let own_user = NewKey {
        user_id: Some(u2.id),
        ..new_key(&t2.id, "pk_d")
    };
    s.create_key(own_user).await.unwrap();
}

/// Deletes are restricted, not cascaded: a parent with children is refused (`Conflict`) and
/// stays; once the children are gone it can be deleted.
pub async fn deletes_are_restricted(s: &dyn Store) {
    let o = org(s, "acme").await;
    let t = team(s, &o.id, "search").await;
    let u = user(s, &t.id, "ada").await;
    let k = s
        .create_key(NewKey {
            user_id: Some(u.id.clone()),
            ..new_key(&t.id, "pk")
        })
        .await;
    let k = k.unwrap();

    assert_conflict(s.delete_org(&o.id).await);
    assert_conflict(s.delete_team(&t.id).await);
    assert_conflict(s.delete_user(&u.id).await);
    assert_eq!(s.get_org(&o.id).await.unwrap(), o);
    assert_eq!(s.get_key(&k.id).await.unwrap(), k);

    s.delete_key(&k.id).await.unwrap();
    s.delete_user(&u.id).await.unwrap();
    key(s, &t.id, "pk_team").await;
    assert_conflict(s.delete_team(&t.id).await);
    let keys = s.list_keys(&KeyFilter::default(), &all()).await.unwrap();
    s.delete_key(&keys.items[0].id).await.unwrap();
    s.delete_team(&t.id).await.unwrap();
    s.delete_org(&o.id).await.unwrap();
}

pub async fn pagination(s: &dyn Store) {
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(org(s, &format!("org{i}")).await.id);
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    let mut sizes = Vec::new();
    loop {
        let got = s.list_orgs(&OrgFilter::default(), &page).await.unwrap();
        sizes.push(got.items.len());
        seen.extend(got.items.into_iter().map(|o| o.id));
        match got.next_after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        7,
        "no duplicates"
    );
    // Id order is creation order (UUIDv7), and it is stable.
    assert_eq!(seen, created);
    let again = s
        .list_orgs(&OrgFilter::default(), &PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!(
        again.items.iter().map(|o| &o.id).collect::<Vec<_>>(),
        created[..3].iter().collect::<Vec<_>>()
    );
    // An exact fit has no next page.
    let six = PageRequest {
        limit: 6,
        after: Some(created[0].clone()),
    };
    assert_eq!(
        s.list_orgs(&OrgFilter::default(), &six)
            .await
            .unwrap()
            .next_after,
        None
    );

    let o = org(s, "keys").await;
    let t = team(s, &o.id, "t").await;
    for i in 0..5 {
        key(s, &t.id, &format!("pk{i}")).await;
    }
    let first = s
        .list_keys(&KeyFilter::default(), &PageRequest::first(2))
        .await
        .unwrap();
    let rest = PageRequest {
        limit: 10,
        after: first.next_after.clone(),
    };
    let second = s.list_keys(&KeyFilter::default(), &rest).await.unwrap();
    assert_eq!(
        (first.items.len(), second.items.len(), second.next_after),
        (2, 3, None)
    );
}

fn ids<T>(page: Page<T>, id: fn(&T) -> &str) -> Vec<String> {
    page.items.iter().map(|t| id(t).to_owned()).collect()
}

pub async fn filters(s: &dyn Store) {
    let a = org(s, "alpha").await;
    let b = org(s, "Alpha-b").await;
    let by_name = |p: &str| OrgFilter {
        name_prefix: Some(p.into()),
    };
    assert_eq!(
        ids(s.list_orgs(&by_name("al"), &all()).await.unwrap(), |o| &o
            .id),
        vec![a.id.clone()]
    );
    assert_eq!(
        ids(s.list_orgs(&by_name("Al"), &all()).await.unwrap(), |o| &o
            .id),
        vec![b.id.clone()]
    );
    assert!(
        s.list_orgs(&by_name("a%"), &all())
            .await
            .unwrap()
            .items
            .is_empty(),
        "no wildcards"
    );

    let ta = team(s, &a.id, "search").await;
    let ta2 = team(s, &a.id, "ads").await;
    let tb = team(s, &b.id, "search").await;
    let teams =
        |f: TeamFilter| async move { ids(s.list_teams(&f, &all()).await.unwrap(), |t| &t.id) };
    assert_eq!(
        teams(TeamFilter {
            org_id: Some(a.id.clone()),
            name_prefix: None
        })
        .await,
        vec![ta.id.clone(), ta2.id.clone()]
    );
    assert_eq!(
        teams(TeamFilter {
            org_id: None,
            name_prefix: Some("se".into())
        })
        .await,
        vec![ta.id.clone(), tb.id.clone()]
    );

    let ua = user(s, &ta.id, "ada").await;
    let ua2 = user(s, &ta2.id, "alan").await;
    let ub = user(s, &tb.id, "ada").await;
    let users =
        |f: UserFilter| async move { ids(s.list_users(&f, &all()).await.unwrap(), |u| &u.id) };
    assert_eq!(
        users(UserFilter {
            org_id: Some(a.id.clone()),
            ..Default::default()
        })
        .await,
        vec![ua.id.clone(), ua2.id.clone()]
    );
    assert_eq!(
        users(UserFilter {
            team_id: Some(tb.id.clone()),
            ..Default::default()
        })
        .await,
        vec![ub.id.clone()]
    );
    assert_eq!(
        users(UserFilter {
            name_prefix: Some("ad".into()),
            ..Default::default()
        })
        .await,
        vec![ua.id.clone(), ub.id.clone()]
    );

    let k1 = s
        .create_key(NewKey {
            user_id: Some(ua.id.clone()),
            ..new_key(&ta.id, "k1")
        })
        .await
        .unwrap();
    let k2 = s
        .create_key(NewKey {
            enabled: false,
            ..new_key(&ta2.id, "k2")
        })
        .await
        .unwrap();
    let k3 = s
        .create_key(NewKey {
            name: "other".into(),
            ..new_key(&tb.id, "k3")
        })
        .await
        .unwrap();
    let keys = |f: KeyFilter| async move { ids(s.list_keys(&f, &all()).await.unwrap(), |k| &k.id) };
    assert_eq!(
        keys(KeyFilter {
            org_id: Some(a.id.clone()),
            ..Default::default()
        })
        .await,
        vec![k1.id.clone(), k2.id.clone()]
    );
    assert_eq!(
        keys(KeyFilter {
            team_id: Some(tb.id.clone()),
            ..Default::default()
        })
        .await,
        vec![k3.id.clone()]
    );
    assert_eq!(
        keys(KeyFilter {
            user_id: Some(ua.id.clone()),
            ..Default::default()
        })
        .await,
        vec![k1.id.clone()]
    );
    assert_eq!(
        keys(KeyFilter {
            enabled: Some(false),
            ..Default::default()
        })
        .await,
        vec![k2.id.clone()]
    );
    assert_eq!(
        keys(KeyFilter {
            enabled: Some(true),
            ..Default::default()
        })
        .await,
        vec![k1.id.clone(), k3.id.clone()]
    );
    assert_eq!(
        keys(KeyFilter {
            name_prefix: Some("key ".into()),
            ..Default::default()
        })
        .await,
        vec![k1.id.clone(), k2.id.clone()]
    );
    let combined = KeyFilter {
        org_id: Some(a.id.clone()),
        enabled: Some(true),
        ..Default::default()
    };
    assert_eq!(keys(combined).await, vec![k1.id.clone()]);

    let c1 = s
        .create_credential(new_credential("openai-a", "openai"))
        .await
        .unwrap();
    let c2 = s
        .create_credential(new_credential("anthropic-a", "anthropic"))
        .await
        .unwrap();
    let creds = |f: CredentialFilter| async move {
        ids(s.list_credentials(&f, &all()).await.unwrap(), |c| &c.id)
    };
    assert_eq!(
        creds(CredentialFilter {
            provider: Some("anthropic".into()),
            name_prefix: None
        })
        .await,
        vec![c2.id]
    );
    assert_eq!(
        creds(CredentialFilter {
            provider: None,
            name_prefix: Some("open".into())
        })
        .await,
        vec![c1.id]
    );
}

pub async fn active_keys(s: &dyn Store) {
    let o = org(s, "acme").await;
    let t = team(s, &o.id, "t").await;
    let at = now();
    let plain = key(s, &t.id, "plain").await;
    let future = s
        .create_key(NewKey {
            expires_at: Some(at + Duration::hours(1)),
            ..new_key(&t.id, "future")
        })
        .await
        .unwrap();
    s.create_key(NewKey {
        expires_at: Some(at - Duration::seconds(1)),
        ..new_key(&t.id, "expired")
    })
    .await
    .unwrap();
    s.create_key(NewKey {
        expires_at: Some(at),
        ..new_key(&t.id, "expires_now")
    })
    .await
    .unwrap();
    s.create_key(NewKey {
        enabled: false,
        ..new_key(&t.id, "disabled")
    })
    .await
    .unwrap();
    let revoked = key(s, &t.id, "revoked").await;
    s.revoke_key(&revoked.id, at).await.unwrap();

    let active = s.list_active_keys(at).await.unwrap();
    let names: Vec<_> = active.iter().map(|k| k.public_id.as_str()).collect();
    assert_eq!(names, vec!["plain", "future"]);
    assert!(active.iter().all(|k| k.is_active(at)));
    let all_keys = s
        .list_keys(&KeyFilter::default(), &all())
        .await
        .unwrap()
        .items;
    assert_eq!(all_keys.iter().filter(|k| k.is_active(at)).count(), 2);
    // Later, the key with an expiry has expired too.
    let later = s.list_active_keys(at + Duration::hours(2)).await.unwrap();
    assert_eq!(later, vec![plain]);
    assert!(!future.is_active(at + Duration::hours(2)));
}

pub async fn revoke(s: &dyn Store) {
    let o = org(s, "acme").await;
    let t = team(s, &o.id, "t").await;
    let k = key(s, &t.id, "pk").await;
    let at = now() - Duration::minutes(5);
    let r = s.revoke_key(&k.id, at).await.unwrap();
    assert_eq!(r.revoked_at, Some(at));
    assert!(!r.is_active(now()));
    let again = s.revoke_key(&k.id, now()).await.unwrap();
    assert_eq!(
        again.revoked_at,
        Some(at),
        "the first revocation time stays"
    );
    assert_eq!(
        s.get_key_by_public_id("pk").await.unwrap().revoked_at,
        Some(at)
    );
    assert!(s.list_active_keys(now()).await.unwrap().is_empty());
    assert_not_found(s.revoke_key(&new_id(), now()).await);
}

pub async fn rotation(s: &dyn Store) {
    let o = org(s, "acme").await;
    let t = team(s, &o.id, "t").await;
    let k = key(s, &t.id, "pk").await;
    let old = k.digest.clone();
    let deadline = now() + Duration::hours(1);
    let r = s.rotate_key(&k.id, vec![7; 32], deadline).await.unwrap();
    assert_eq!(r.digest, vec![7; 32]);
    assert_eq!(r.previous_digest.as_deref(), Some(old.as_slice()));
    assert_eq!(r.previous_valid_until, Some(deadline));
    assert_eq!(
        r.previous_digest_at(deadline - Duration::seconds(1)),
        Some(old.as_slice())
    );
    assert_eq!(r.previous_digest_at(deadline), None);
    assert_eq!((r.public_id.as_str(), r.created_at), ("pk", k.created_at));
    assert_eq!(s.get_key(&k.id).await.unwrap(), r);
    assert_eq!(s.list_active_keys(now()).await.unwrap(), vec![r.clone()]);

    // A second rotation replaces the previous digest with the one it rotates out.
    let r2 = s.rotate_key(&k.id, vec![8; 32], deadline).await.unwrap();
    assert_eq!(r2.previous_digest, Some(vec![7; 32]));

    assert_not_found(s.rotate_key(&new_id(), vec![1], deadline).await);
    s.revoke_key(&k.id, now()).await.unwrap();
    assert_conflict(s.rotate_key(&k.id, vec![9; 32], deadline).await);
    assert_eq!(s.get_key(&k.id).await.unwrap().digest, vec![8; 32]);
}

pub async fn timestamps_are_utc(s: &dyn Store) {
    let o = org(s, "acme").await;
    let t = team(s, &o.id, "t").await;
    // An instant given in +02:00 with nanoseconds comes back in UTC, to the microsecond.
    let local = OffsetDateTime::from_unix_timestamp_nanos(1_900_000_000_123_456_789)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
    let k = s
        .create_key(NewKey {
            expires_at: Some(local),
            ..new_key(&t.id, "pk")
        })
        .await
        .unwrap();
    let expires = k.expires_at.unwrap();
    assert_eq!(expires.offset(), time::UtcOffset::UTC);
    assert_eq!(expires.unix_timestamp_nanos(), 1_900_000_000_123_456_000);
    assert_eq!(expires, normalize(local));
    assert_eq!(s.get_key(&k.id).await.unwrap().expires_at, Some(expires));
    assert_eq!(k.created_at.offset(), time::UtcOffset::UTC);
    assert_eq!(o.created_at.offset(), time::UtcOffset::UTC);
    // Before the epoch too.
    let old = OffsetDateTime::from_unix_timestamp(-86_400).unwrap();
    let update = KeyUpdate {
        expires_at: Some(Some(old)),
        ..KeyUpdate::default()
    };
    assert_eq!(
        s.update_key(&k.id, update).await.unwrap().expires_at,
        Some(old)
    );
}
