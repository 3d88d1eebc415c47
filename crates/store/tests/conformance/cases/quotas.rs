//! Cases on quotas: the limits and budgets of organizations, teams, users and keys are stored,
//! read back, changed and cleared alike on every backend, and `list_quotas` returns exactly
//! those that have one.

use super::*;

fn limits(rpm: Option<u64>, tpm: Option<u64>, max_concurrent: Option<u64>) -> LimitRules {
    LimitRules {
        rpm,
        tpm,
        max_concurrent,
    }
}

fn budget(period: BudgetPeriod, max_usd: f64, alerts: &[u8], hard: bool) -> BudgetSpec {
    BudgetSpec {
        max_usd,
        period,
        alerts: alerts.to_vec(),
        hard,
    }
}

/// Limits and budgets with every field set, fractions of a cent and a soft budget.
fn full() -> (LimitRules, Vec<BudgetSpec>) {
    (
        limits(Some(60), Some(90_000), Some(4)),
        vec![
            budget(BudgetPeriod::Monthly, 1234.567, &[50, 80, 100], true),
            budget(BudgetPeriod::Daily, 0.015, &[], false),
        ],
    )
}

fn quota(limits: LimitRules, budgets: Vec<BudgetSpec>) -> StoredQuota {
    StoredQuota { limits, budgets }
}

/// What each kind of row is made with, read back, listed and changed: as given.
pub async fn quotas_round_trip(s: &dyn Store) {
    let (l, b) = full();
    let o = s
        .create_org(NewOrg {
            name: "acme".into(),
            limits: l,
            budgets: b.clone(),
        })
        .await
        .unwrap();
    assert_eq!((o.limits, &o.budgets), (l, &b));
    assert_eq!(s.get_org(&o.id).await.unwrap(), o);
    let listed = s.list_orgs(&OrgFilter::default(), &all()).await.unwrap();
    assert_eq!(listed.items, vec![o.clone()]);

    let t = s
        .create_team(NewTeam {
            org_id: o.id.clone(),
            name: "search".into(),
            limits: limits(None, Some(1000), None),
            budgets: vec![budget(BudgetPeriod::Total, 5.0, &[90], true)],
        })
        .await
        .unwrap();
    assert_eq!(t.limits, limits(None, Some(1000), None));
    assert_eq!(t.budgets[0].period, BudgetPeriod::Total);
    assert_eq!(s.get_team(&t.id).await.unwrap(), t);

    let u = s
        .create_user(NewUser {
            team_id: t.id.clone(),
            name: "ada".into(),
            limits: limits(None, None, Some(1)),
            budgets: b.clone(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    assert_eq!((u.limits.max_concurrent, &u.budgets), (Some(1), &b));
    assert_eq!(s.get_user(&u.id).await.unwrap(), u);

    let k = s
        .create_key(NewKey {
            user_id: Some(u.id.clone()),
            limits: l,
            budgets: vec![budget(BudgetPeriod::Weekly, 3.25, &[10, 20], false)],
            ..new_key(&t.id, "pk")
        })
        .await
        .unwrap();
    assert_eq!(k.limits, l);
    assert_eq!(k.budgets[0].max_usd, 3.25);
    assert_eq!(s.get_key(&k.id).await.unwrap(), k);
    assert_eq!(s.list_active_keys(now()).await.unwrap(), vec![k.clone()]);

    // Rows made without quotas have none.
    let plain_team = team(s, &o.id, "plain").await;
    let plain_user = user(s, &plain_team.id, "bob").await;
    let plain_key = key(s, &plain_team.id, "pk_plain").await;
    assert!(plain_team.limits.is_empty() && plain_team.budgets.is_empty());
    assert!(plain_user.limits.is_empty() && plain_user.budgets.is_empty());
    assert!(plain_key.limits.is_empty() && plain_key.budgets.is_empty());
    let plain_org = org(s, "plain").await;
    assert_eq!(
        s.get_org(&plain_org.id).await.unwrap().limits,
        LimitRules::default()
    );
}

/// An update sets what it names and keeps the rest; the empty values clear.
pub async fn quota_updates_and_clearing(s: &dyn Store) {
    let (l, b) = full();
    let o = org(s, "acme").await;
    let t = team(s, &o.id, "search").await;
    let u = user(s, &t.id, "ada").await;
    let k = key(s, &t.id, "pk").await;
    let narrower = limits(Some(10), None, None);
    let daily = vec![budget(BudgetPeriod::Daily, 1.0, &[], true)];

    // Set both, then one at a time; a change of anything else keeps them.
    let o1 = s
        .update_org(
            &o.id,
            OrgUpdate {
                limits: Some(l),
                budgets: Some(b.clone()),
                ..OrgUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((o1.limits, &o1.budgets, o1.name.as_str()), (l, &b, "acme"));
    let o2 = s
        .update_org(
            &o.id,
            OrgUpdate {
                limits: Some(narrower),
                ..OrgUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((o2.limits, &o2.budgets), (narrower, &b));
    let o3 = s
        .update_org(
            &o.id,
            OrgUpdate {
                name: Some("acme2".into()),
                ..OrgUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((o3.limits, &o3.budgets), (narrower, &b));
    let cleared = s
        .update_org(
            &o.id,
            OrgUpdate {
                limits: Some(LimitRules::default()),
                budgets: Some(vec![]),
                ..OrgUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(cleared.limits.is_empty() && cleared.budgets.is_empty());
    assert_eq!(cleared.name, "acme2");
    assert_eq!(s.get_org(&o.id).await.unwrap(), cleared);

    let t1 = s
        .update_team(
            &t.id,
            TeamUpdate {
                budgets: Some(daily.clone()),
                ..TeamUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((t1.limits, &t1.budgets), (LimitRules::default(), &daily));
    let t2 = s
        .update_team(
            &t.id,
            TeamUpdate {
                name: Some("ads".into()),
                limits: Some(l),
                ..TeamUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (t2.limits, &t2.budgets, t2.name.as_str()),
        (l, &daily, "ads")
    );
    assert_eq!(s.get_team(&t.id).await.unwrap(), t2);

    let u1 = s
        .update_user(
            &u.id,
            UserUpdate {
                limits: Some(l),
                budgets: Some(b.clone()),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((u1.limits, &u1.budgets), (l, &b));
    let u2 = s
        .update_user(
            &u.id,
            UserUpdate {
                role: Some(Role::Viewer),
                budgets: Some(vec![]),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((u2.limits, u2.budgets.len(), u2.role), (l, 0, Role::Viewer));
    assert_eq!(s.get_user(&u.id).await.unwrap(), u2);

    let k1 = s
        .update_key(
            &k.id,
            KeyUpdate {
                limits: Some(narrower),
                budgets: Some(daily.clone()),
                ..KeyUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((k1.limits, &k1.budgets), (narrower, &daily));
    let k2 = s
        .update_key(
            &k.id,
            KeyUpdate {
                enabled: Some(false),
                ..KeyUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (k2.limits, &k2.budgets, k2.enabled),
        (narrower, &daily, false)
    );
    let k3 = s
        .update_key(
            &k.id,
            KeyUpdate {
                limits: Some(LimitRules::default()),
                ..KeyUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((k3.limits, &k3.budgets), (LimitRules::default(), &daily));
    // Rotating and revoking keep a key's quotas.
    let rotated = s
        .rotate_key(&k.id, vec![1; 32], now() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(rotated.budgets, daily);
    assert_eq!(s.revoke_key(&k.id, now()).await.unwrap().budgets, daily);
}

/// `list_quotas` holds the organizations, teams and users with a limit or a budget (or both),
/// and nothing else: not those without, not those cleared, not keys.
pub async fn list_quotas_returns_only_rows_with_a_quota(s: &dyn Store) {
    assert_eq!(s.list_quotas().await.unwrap(), QuotaTable::default());
    let (l, b) = full();
    let only_limits = limits(Some(5), None, None);
    let only_budget = vec![budget(BudgetPeriod::Monthly, 50.0, &[80], true)];

    let acme = s
        .create_org(NewOrg {
            name: "acme".into(),
            limits: l,
            budgets: b.clone(),
        })
        .await
        .unwrap();
    let plain = org(s, "plain").await;
    let search = s
        .create_team(NewTeam {
            org_id: acme.id.clone(),
            name: "search".into(),
            budgets: only_budget.clone(),
            ..NewTeam::default()
        })
        .await
        .unwrap();
    let ads = team(s, &plain.id, "ads").await;
    let ada = s
        .create_user(NewUser {
            team_id: search.id.clone(),
            name: "ada".into(),
            limits: only_limits,
            ..NewUser::default()
        })
        .await
        .unwrap();
    let bob = user(s, &ads.id, "bob").await;
    // A key's own quota is not in the table: it comes with the key.
    s.create_key(NewKey {
        limits: l,
        budgets: b.clone(),
        ..new_key(&ads.id, "pk")
    })
    .await
    .unwrap();

    let table = s.list_quotas().await.unwrap();
    let want = QuotaTable {
        orgs: [(acme.id.clone(), quota(l, b.clone()))].into(),
        teams: [(search.id.clone(), quota(LimitRules::default(), only_budget))].into(),
        users: [(ada.id.clone(), quota(only_limits, vec![]))].into(),
    };
    assert_eq!(table, want);
    assert!(!table.users.contains_key(&bob.id) && !table.teams.contains_key(&ads.id));

    // Cleared rows leave the table; a row given a quota joins it.
    s.update_org(
        &acme.id,
        OrgUpdate {
            limits: Some(LimitRules::default()),
            budgets: Some(vec![]),
            ..OrgUpdate::default()
        },
    )
    .await
    .unwrap();
    s.update_user(
        &bob.id,
        UserUpdate {
            budgets: Some(b.clone()),
            ..UserUpdate::default()
        },
    )
    .await
    .unwrap();
    let table = s.list_quotas().await.unwrap();
    assert!(table.orgs.is_empty(), "{table:?}");
    assert_eq!(table.teams.len(), 1);
    assert_eq!(
        table.users,
        [
            (ada.id.clone(), quota(only_limits, vec![])),
            (bob.id.clone(), quota(LimitRules::default(), b))
        ]
        .into()
    );
}
