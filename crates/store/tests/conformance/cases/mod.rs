//! The cases of the conformance suite, each against any `&dyn Store` on a fresh database.

use std::collections::{BTreeMap, HashSet};

use portcullis_store::*;
use time::{Duration, OffsetDateTime};

mod keys;
mod listing;
mod quotas;
mod usage;
mod usage_summary;

pub use keys::*;
pub use listing::*;
pub use quotas::*;
pub use usage::*;
pub use usage_summary::*;

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
    let new = NewOrg {
        name: name.into(),
        ..NewOrg::default()
    };
    s.create_org(new).await.unwrap()
}

async fn team(s: &dyn Store, org_id: &str, name: &str) -> Team {
    s.create_team(NewTeam {
        org_id: org_id.into(),
        name: name.into(),
        ..NewTeam::default()
    })
    .await
    .unwrap()
}

async fn user(s: &dyn Store, team_id: &str, name: &str) -> User {
    let new = NewUser {
        team_id: team_id.into(),
        name: name.into(),
        ..NewUser::default()
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
        id: new_id(),
        name: name.into(),
        provider: provider.into(),
        ciphertext: vec![0, 1, 2, 255],
        wrapped_key: vec![9; 60],
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
                ..OrgUpdate::default()
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
                ..TeamUpdate::default()
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
        role: Role::TeamAdmin,
        ..NewUser::default()
    };
    let u = s.create_user(new).await.unwrap();
    assert_eq!(u.email.as_deref(), Some("a@x"));
    assert_eq!(u.role, Role::TeamAdmin);
    assert_eq!(s.get_user(&u.id).await.unwrap(), u);

    let renamed = UserUpdate {
        name: Some("ada l".into()),
        ..UserUpdate::default()
    };
    let u2 = s.update_user(&u.id, renamed).await.unwrap();
    assert_eq!(
        (u2.name.as_str(), u2.email.as_deref(), u2.role),
        ("ada l", Some("a@x"), Role::TeamAdmin)
    );
    let cleared = s
        .update_user(
            &u.id,
            UserUpdate {
                email: Some(None),
                ..UserUpdate::default()
            },
        )
        .await;
    assert_eq!(cleared.unwrap().email, None);

    s.delete_user(&u.id).await.unwrap();
    assert_not_found(s.get_user(&u.id).await);
    assert_not_found(s.delete_user(&u.id).await);
}

/// Every role is stored, read back, listed and changed as written; a change without a role
/// keeps it, and a new user without one is a member.
pub async fn user_roles(s: &dyn Store) {
    let o = org(s, "acme").await;
    let t = team(s, &o.id, "search").await;
    assert_eq!(user(s, &t.id, "default").await.role, Role::Member);
    let mut made = Vec::new();
    for role in Role::ALL {
        let new = NewUser {
            team_id: t.id.clone(),
            name: role.to_string(),
            email: None,
            role,
            ..NewUser::default()
        };
        let u = s.create_user(new).await.unwrap();
        assert_eq!(u.role, role);
        assert_eq!(s.get_user(&u.id).await.unwrap().role, role);
        made.push(u);
    }
    let listed = s
        .list_users(
            &UserFilter {
                team_id: Some(t.id.clone()),
                ..UserFilter::default()
            },
            &all(),
        )
        .await
        .unwrap();
    let roles: Vec<Role> = listed.items.iter().skip(1).map(|u| u.role).collect();
    assert_eq!(roles, Role::ALL.to_vec());

    // Each role becomes the next one, and back; other fields stay.
    for (u, next) in made.iter().zip(Role::ALL.iter().cycle().skip(1)) {
        let update = UserUpdate {
            role: Some(*next),
            ..UserUpdate::default()
        };
        let changed = s.update_user(&u.id, update).await.unwrap();
        assert_eq!((changed.role, &changed.name), (*next, &u.name));
        assert_eq!(s.get_user(&u.id).await.unwrap().role, *next);
        let renamed = UserUpdate {
            name: Some(format!("{} again", u.name)),
            ..UserUpdate::default()
        };
        assert_eq!(s.update_user(&u.id, renamed).await.unwrap().role, *next);
    }
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
        ..KeyUpdate::default()
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
    // The caller chooses the id (it seals the secret for that id before the row exists).
    let new = new_credential("openai-main", "openai");
    let chosen = new.id.clone();
    let c = s.create_credential(new).await.unwrap();
    assert_eq!(c.id, chosen);
    assert_eq!(
        (c.ciphertext.as_slice(), c.wrapped_key.as_slice()),
        (&[0, 1, 2, 255][..], &[9; 60][..])
    );
    assert_eq!((c.provider.as_str(), c.key_id.as_str()), ("openai", "k1"));
    assert_eq!(c.created_at, c.updated_at);
    assert_eq!(s.get_credential(&c.id).await.unwrap(), c);

    let renamed = CredentialUpdate {
        name: Some("openai-2".into()),
        ..CredentialUpdate::default()
    };
    let c2 = s.update_credential(&c.id, renamed).await.unwrap();
    assert_eq!(
        (c2.name.as_str(), &c2.ciphertext, &c2.wrapped_key),
        ("openai-2", &c.ciphertext, &c.wrapped_key)
    );
    assert_eq!(c2.created_at, c.created_at);
    assert!(c2.updated_at >= c.updated_at);
    let secret = EncryptedSecret {
        ciphertext: vec![42; 40],
        wrapped_key: vec![1; 60],
        key_id: "k2".into(),
    };
    let update = CredentialUpdate {
        secret: Some(secret),
        ..CredentialUpdate::default()
    };
    let c3 = s.update_credential(&c.id, update).await.unwrap();
    assert_eq!(
        (c3.ciphertext, c3.wrapped_key, c3.key_id),
        (vec![42; 40], vec![1; 60], "k2".into())
    );
    assert_eq!(c3.name, "openai-2");

    s.delete_credential(&c.id).await.unwrap();
    assert_not_found(s.get_credential(&c.id).await);
    assert_not_found(s.delete_credential(&c.id).await);
    assert_not_found(
        s.update_credential(&c.id, CredentialUpdate::default())
            .await,
    );
}

/// `if_updated_at`: a change applies only to the row as it was read; a stale read is a
/// conflict that leaves the row as it is, and a missing row is still not found.
pub async fn credential_optimistic_update(s: &dyn Store) {
    let c = s
        .create_credential(new_credential("c", "openai"))
        .await
        .unwrap();
    let rewrap = |key_id: &str, read: OffsetDateTime| CredentialUpdate {
        name: None,
        secret: Some(EncryptedSecret {
            ciphertext: c.ciphertext.clone(),
            wrapped_key: vec![7; 60],
            key_id: key_id.into(),
        }),
        if_updated_at: Some(read),
    };
    // A change made after the read (wait so that its updated_at differs from the read's).
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let changed = s
        .update_credential(
            &c.id,
            CredentialUpdate {
                name: Some("c2".into()),
                ..CredentialUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_ne!(changed.updated_at, c.updated_at);
    assert_conflict(s.update_credential(&c.id, rewrap("k2", c.updated_at)).await);
    assert_eq!(s.get_credential(&c.id).await.unwrap(), changed);
    // Against the current row it applies.
    let done = s
        .update_credential(&c.id, rewrap("k2", changed.updated_at))
        .await
        .unwrap();
    assert_eq!((done.key_id.as_str(), done.name.as_str()), ("k2", "c2"));
    assert_eq!(done.wrapped_key, vec![7; 60]);
    assert_not_found(
        s.update_credential(&new_id(), rewrap("k3", done.updated_at))
            .await,
    );
}

pub async fn unique_violations(s: &dyn Store) {
    let o = org(s, "acme").await;
    assert_conflict(
        s.create_org(NewOrg {
            name: "acme".into(),
            ..NewOrg::default()
        })
        .await,
    );
    let other = org(s, "other").await;
    assert_conflict(
        s.update_org(
            &other.id,
            OrgUpdate {
                name: Some("acme".into()),
                ..OrgUpdate::default()
            },
        )
        .await,
    );

    let t = team(s, &o.id, "search").await;
    assert_conflict(
        s.create_team(NewTeam {
            org_id: o.id.clone(),
            name: "search".into(),
            ..NewTeam::default()
        })
        .await,
    );
    // The same team name in another organization is fine.
    team(s, &other.id, "search").await;

    user(s, &t.id, "ada").await;
    let dup = NewUser {
        team_id: t.id.clone(),
        name: "ada".into(),
        ..NewUser::default()
    };
    assert_conflict(s.create_user(dup).await);

    key(s, &t.id, "pk_dup").await;
    assert_conflict(s.create_key(new_key(&t.id, "pk_dup")).await);

    let c = s
        .create_credential(new_credential("c", "openai"))
        .await
        .unwrap();
    assert_conflict(s.create_credential(new_credential("c", "anthropic")).await);
    // A caller-chosen id that is taken is a conflict too.
    let mut same_id = new_credential("d", "openai");
    same_id.id = c.id.clone();
    assert_conflict(s.create_credential(same_id).await);
    let other = s
        .create_credential(new_credential("e", "openai"))
        .await
        .unwrap();
    let rename = CredentialUpdate {
        name: Some("c".into()),
        ..CredentialUpdate::default()
    };
    assert_conflict(s.update_credential(&other.id, rename).await);
}

pub async fn invalid_references(s: &dyn Store) {
    let missing = new_id();
    assert_invalid_ref(
        s.create_team(NewTeam {
            org_id: missing.clone(),
            name: "t".into(),
            ..NewTeam::default()
        })
        .await,
    );
    let lost = NewUser {
        team_id: missing.clone(),
        name: "u".into(),
        ..NewUser::default()
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
