//! Cases on lists: cursor pagination and every filter.

use super::*;

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
