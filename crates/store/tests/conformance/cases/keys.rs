//! Cases on the key lifecycle: active keys, revocation, rotation, and timestamps.

use super::*;

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
