//! Usage summaries: grouping by each dimension and by several (checked against a summary
//! computed here from the records), the UTC day across midnight, the time range's ends, every
//! filter, errors and missing counts, empty results, the row limit; the rows of every grouping
//! add up to the total.

use std::collections::BTreeMap;

use portcullis_store::*;
use time::OffsetDateTime;

/// Microseconds since the epoch of an RFC 3339 time.
fn at(rfc3339: &str) -> i64 {
    let t = OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).unwrap();
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap()
}

fn time(rfc3339: &str) -> OffsetDateTime {
    OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).unwrap()
}

fn date(text: &str) -> time::Date {
    time(&format!("{text}T00:00:00Z")).date()
}

/// A record of key `key` (`(id, name)`: a key of the config file has no id) at `when`, of
/// organization, team and user `tenant`, for `model` on `provider`: 200, completed, 10 tokens
/// in and 5 out, 100 micro-dollars.
fn rec(
    n: u32,
    when: &str,
    key: (Option<&str>, &str),
    tenant: (Option<&str>, Option<&str>, Option<&str>),
    model: Option<&str>,
    provider: Option<&str>,
) -> UsageRecord {
    let s = |v: Option<&str>| v.map(str::to_owned);
    UsageRecord {
        id: format!("0190-summary-{n:06}"),
        request_id: format!("req_{n}"),
        started_at_us: at(when),
        key_id: s(key.0),
        key_name: Some(key.1.to_owned()),
        org: s(tenant.0),
        team: s(tenant.1),
        user: s(tenant.2),
        endpoint: "/v1/chat/completions".into(),
        model: s(model),
        served_model: s(model),
        provider: s(provider),
        status: 200,
        outcome: "completed".into(),
        input_tokens: Some(10),
        output_tokens: Some(5),
        latency_us: 1000,
        cost_micros: Some(100),
        ..UsageRecord::default()
    }
}

/// Records across a UTC midnight (1 and 2 are a microsecond apart), a stored key renamed (3), a
/// request the client left (4), a key of the config file without a tenant or a price (5), a
/// server error (6), a failure before any model was known (7), and large counts (8).
fn records() -> Vec<UsageRecord> {
    let one = (Some("o1"), Some("t1"), Some("u1"));
    let two = (Some("o1"), Some("t2"), Some("u2"));
    let none = (None, None, None);
    let k1 = (Some("k1"), "one");
    let k2 = (Some("k2"), "two");
    let (a, b) = (Some("m-a"), Some("m-b"));
    let (p1, p2) = (Some("p1"), Some("p2"));
    vec![
        rec(1, "2026-11-26T23:59:59.999999Z", k1, one, a, p1),
        UsageRecord {
            cached_tokens: Some(3),
            reasoning_tokens: Some(1),
            input_tokens: Some(20),
            output_tokens: Some(7),
            cost_micros: Some(250),
            ..rec(2, "2026-11-27T00:00:00Z", k1, one, b, p2)
        },
        UsageRecord {
            status: 429,
            outcome: "failed".into(),
            input_tokens: None,
            output_tokens: None,
            cost_micros: None,
            ..rec(
                3,
                "2026-11-27T08:00:00Z",
                (Some("k1"), "one-renamed"),
                one,
                a,
                p1,
            )
        },
        UsageRecord {
            outcome: "client_gone".into(),
            input_tokens: Some(4),
            output_tokens: Some(0),
            cost_micros: Some(7),
            ..rec(4, "2026-11-27T09:00:00Z", k2, two, a, p1)
        },
        UsageRecord {
            input_tokens: Some(1),
            output_tokens: Some(1),
            cost_micros: None,
            ..rec(5, "2026-11-27T10:00:00Z", (None, "cfg"), none, b, p2)
        },
        UsageRecord {
            status: 500,
            outcome: "failed".into(),
            input_tokens: Some(2),
            output_tokens: None,
            cost_micros: Some(3),
            ..rec(
                6,
                "2026-11-28T00:00:00Z",
                (Some("k3"), "three"),
                (Some("o2"), Some("t3"), None),
                a,
                p2,
            )
        },
        UsageRecord {
            status: 401,
            outcome: "failed".into(),
            input_tokens: None,
            output_tokens: None,
            cost_micros: None,
            ..rec(7, "2026-11-25T12:00:00Z", (None, "cfg2"), none, None, None)
        },
        UsageRecord {
            input_tokens: Some(3_000_000_000),
            output_tokens: Some(2_000_000_000),
            cached_tokens: Some(500),
            reasoning_tokens: Some(100),
            cost_micros: Some(9_000_000_000_000),
            ..rec(8, "2026-11-27T23:59:59.999999Z", k2, two, b, p1)
        },
    ]
}

fn by(groups: &[UsageGroup]) -> UsageQuery {
    UsageQuery {
        group_by: groups.to_vec(),
        ..UsageQuery::default()
    }
}

async fn summary(s: &dyn Store, q: &UsageQuery) -> Vec<UsageRow> {
    s.usage_summary(q).await.unwrap()
}

/// The summary of `records` for `groups` (no filters), computed here: the reference the
/// store's SQL must agree with.
fn expected(records: &[UsageRecord], groups: &[UsageGroup]) -> Vec<UsageRow> {
    use UsageGroup::*;
    let mut order: Vec<UsageGroup> = groups.iter().copied().filter(|g| *g == Day).collect();
    for g in groups {
        if !order.contains(g) {
            order.push(*g);
        }
    }
    // Sort keys: per dimension (value missing, value), so missing values come last and text
    // sorts by bytes.
    let mut groups_of: BTreeMap<Vec<(bool, String)>, UsageRow> = BTreeMap::new();
    for r in records {
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.started_at_us) * 1000).unwrap();
        let mut sort = Vec::new();
        let mut row = UsageRow::default();
        let mut part = |v: &Option<String>| sort.push((v.is_none(), v.clone().unwrap_or_default()));
        for g in &order {
            match g {
                Day => {
                    row.day = Some(t.date());
                    part(&Some(t.date().to_string()));
                }
                Org => {
                    row.org = r.org.clone();
                    part(&r.org);
                }
                Team => {
                    row.team = r.team.clone();
                    part(&r.team);
                }
                User => {
                    row.user = r.user.clone();
                    part(&r.user);
                }
                Key => {
                    row.key_id = r.key_id.clone();
                    part(&r.key_id);
                    part(&r.key_id.is_none().then(|| r.key_name.clone()).flatten());
                }
                Model => {
                    row.model = r.model.clone();
                    part(&r.model);
                }
                Provider => {
                    row.provider = r.provider.clone();
                    part(&r.provider);
                }
            }
        }
        let sum = groups_of.entry(sort).or_insert(row);
        if groups.contains(&Key) {
            sum.key_name = sum.key_name.clone().max(r.key_name.clone());
        }
        sum.requests += 1;
        sum.errors += u64::from(r.status >= 400 || r.outcome != "completed");
        sum.input_tokens += r.input_tokens.unwrap_or(0);
        sum.output_tokens += r.output_tokens.unwrap_or(0);
        sum.cached_tokens += r.cached_tokens.unwrap_or(0);
        sum.reasoning_tokens += r.reasoning_tokens.unwrap_or(0);
        sum.cost_micros += r.cost_micros.unwrap_or(0);
    }
    groups_of.into_values().collect()
}

/// The rows' sums, as one row without groups.
fn total(rows: &[UsageRow]) -> UsageRow {
    let mut t = UsageRow::default();
    for r in rows {
        t.requests += r.requests;
        t.errors += r.errors;
        t.input_tokens += r.input_tokens;
        t.output_tokens += r.output_tokens;
        t.cached_tokens += r.cached_tokens;
        t.reasoning_tokens += r.reasoning_tokens;
        t.cost_micros += r.cost_micros;
    }
    t
}

/// Groupings: none, each dimension alone, pairs, all of them, and the day named last (it
/// still sorts first) and twice.
fn groupings() -> Vec<Vec<UsageGroup>> {
    use UsageGroup::*;
    let mut all: Vec<Vec<UsageGroup>> = vec![vec![]];
    all.extend(UsageGroup::ALL.map(|g| vec![g]));
    all.extend([
        vec![Key, Model],
        vec![Model, Key],
        vec![Team, Provider],
        vec![Org, User],
        vec![Provider, Day],
        vec![Day, Key, Day],
        UsageGroup::ALL.to_vec(),
    ]);
    all
}

pub async fn usage_summary_groups(s: &dyn Store) {
    use UsageGroup::*;
    // Nothing recorded yet: no rows, with or without groups.
    assert_eq!(summary(s, &by(&[])).await, vec![]);
    assert_eq!(summary(s, &by(&[Key, Day])).await, vec![]);

    let records = records();
    s.insert_usage(&records).await.unwrap();
    let whole = summary(s, &by(&[])).await;
    assert_eq!(
        whole,
        vec![UsageRow {
            requests: 8,
            errors: 4,
            input_tokens: 3_000_000_037,
            output_tokens: 2_000_000_013,
            cached_tokens: 503,
            reasoning_tokens: 101,
            cost_micros: 9_000_000_000_360,
            ..UsageRow::default()
        }]
    );
    for groups in groupings() {
        let rows = summary(s, &by(&groups)).await;
        assert_eq!(rows, expected(&records, &groups), "grouped by {groups:?}");
        assert_eq!(vec![total(&rows)], whole, "the rows of {groups:?} add up");
    }

    // By day, across midnight: 1 and 2 are a microsecond apart, on two dates.
    let days: Vec<(time::Date, u64)> = summary(s, &by(&[Day]))
        .await
        .iter()
        .map(|r| (r.day.unwrap(), r.requests))
        .collect();
    assert_eq!(
        days,
        [
            (date("2026-11-25"), 1),
            (date("2026-11-26"), 1),
            (date("2026-11-27"), 5),
            (date("2026-11-28"), 1),
        ]
    );

    // By key: a stored key renamed is one row (with the greatest of its names); keys of the
    // config file have no id and are a row each, by name, after the stored ones.
    let keys: Vec<(Option<String>, Option<String>, u64, u64)> = summary(s, &by(&[Key]))
        .await
        .into_iter()
        .map(|r| (r.key_id, r.key_name, r.requests, r.errors))
        .collect();
    let key = |id: Option<&str>, name: &str, requests, errors| {
        (
            id.map(str::to_owned),
            Some(name.to_owned()),
            requests,
            errors,
        )
    };
    assert_eq!(
        keys,
        [
            key(Some("k1"), "one-renamed", 3, 1),
            key(Some("k2"), "two", 2, 1),
            key(Some("k3"), "three", 1, 1),
            key(None, "cfg", 1, 0),
            key(None, "cfg2", 1, 1),
        ]
    );

    // By model and day: the day first, missing models last.
    let pairs: Vec<(String, Option<String>)> = summary(s, &by(&[Model, Day]))
        .await
        .into_iter()
        .map(|r| (r.day.unwrap().to_string(), r.model))
        .collect();
    let pair = |d: &str, m: Option<&str>| (d.to_owned(), m.map(str::to_owned));
    assert_eq!(
        pairs,
        [
            pair("2026-11-25", None),
            pair("2026-11-26", Some("m-a")),
            pair("2026-11-27", Some("m-a")),
            pair("2026-11-27", Some("m-b")),
            pair("2026-11-28", Some("m-a")),
        ]
    );

    // The first rows only, in row order.
    let limited = UsageQuery {
        limit: Some(2),
        ..by(&[Key])
    };
    let ids: Vec<Option<String>> = summary(s, &limited)
        .await
        .into_iter()
        .map(|r| r.key_id)
        .collect();
    assert_eq!(ids, [Some("k1".to_owned()), Some("k2".to_owned())]);
}

pub async fn usage_summary_filters(s: &dyn Store) {
    let records = records();
    s.insert_usage(&records).await.unwrap();
    // Which records (by number) each query counts.
    let requests = |q: UsageQuery| async move {
        let rows = s.usage_summary(&q).await.unwrap();
        total(&rows).requests
    };
    let ids = |q: UsageQuery| async move {
        let q = UsageQuery {
            group_by: vec![UsageGroup::Key, UsageGroup::Day],
            ..q
        };
        let rows = s.usage_summary(&q).await.unwrap();
        rows.into_iter()
            .map(|r| format!("{}@{}", r.key_name.unwrap(), r.day.unwrap()))
            .collect::<Vec<_>>()
    };
    let q = UsageQuery::default;
    let some = |v: &str| Some(v.to_owned());

    // `from` inclusive, `to` exclusive, to the microsecond.
    let day = UsageQuery {
        from: Some(time("2026-11-27T00:00:00Z")),
        to: Some(time("2026-11-28T00:00:00Z")),
        ..q()
    };
    assert_eq!(requests(day.clone()).await, 5);
    assert_eq!(
        ids(day.clone()).await,
        ["one-renamed@2026-11-27", "two@2026-11-27", "cfg@2026-11-27"]
    );
    let tail = UsageQuery {
        from: Some(time("2026-11-27T23:59:59.999999Z")),
        ..q()
    };
    assert_eq!(ids(tail).await, ["two@2026-11-27", "three@2026-11-28"]);
    let head = UsageQuery {
        to: Some(time("2026-11-27T00:00:00.000001Z")),
        ..q()
    };
    assert_eq!(
        ids(head).await,
        ["cfg2@2026-11-25", "one@2026-11-26", "one@2026-11-27"]
    );
    // Another time zone's offset means the same instant.
    let offset = UsageQuery {
        from: Some(time("2026-11-27T01:00:00+01:00")),
        to: Some(time("2026-11-27T19:00:00-05:00")),
        ..q()
    };
    assert_eq!(requests(offset).await, 5);
    let backwards = UsageQuery {
        from: day.to,
        to: day.from,
        ..q()
    };
    assert_eq!(requests(backwards).await, 0);

    // Each exact filter, and two together.
    for (query, want) in [
        (
            UsageQuery {
                org: some("o1"),
                ..q()
            },
            5,
        ),
        (
            UsageQuery {
                org: some("o2"),
                ..q()
            },
            1,
        ),
        (
            UsageQuery {
                team: some("t2"),
                ..q()
            },
            2,
        ),
        (
            UsageQuery {
                user: some("u1"),
                ..q()
            },
            3,
        ),
        (
            UsageQuery {
                key_id: some("k1"),
                ..q()
            },
            3,
        ),
        (
            UsageQuery {
                model: some("m-b"),
                ..q()
            },
            3,
        ),
        (
            UsageQuery {
                provider: some("p2"),
                ..q()
            },
            3,
        ),
        (
            UsageQuery {
                org: some("o1"),
                model: some("m-a"),
                ..q()
            },
            3,
        ),
        (
            UsageQuery {
                team: some("t1"),
                provider: some("p2"),
                ..day.clone()
            },
            1,
        ),
        // The tenant of one, the key of another: nothing.
        (
            UsageQuery {
                team: some("t2"),
                key_id: some("k1"),
                ..q()
            },
            0,
        ),
        (
            UsageQuery {
                org: some("nobody"),
                ..q()
            },
            0,
        ),
    ] {
        assert_eq!(requests(query.clone()).await, want, "{query:?}");
    }
    // A filter that matches nothing answers no rows, grouped or not.
    let nothing = UsageQuery {
        model: some("no-such-model"),
        ..q()
    };
    assert_eq!(s.usage_summary(&nothing).await.unwrap(), vec![]);
    assert!(ids(nothing).await.is_empty());
    // Values are matched exactly: no prefixes, no wildcards, no case folding.
    for model in ["m", "m-%", "M-A", "m-a "] {
        let query = UsageQuery {
            model: some(model),
            ..q()
        };
        assert_eq!(requests(query).await, 0, "{model}");
    }

    // A filtered grouping still adds up to the filtered total, and agrees with the reference.
    let org1 = |groups: &[UsageGroup]| UsageQuery {
        org: some("o1"),
        group_by: groups.to_vec(),
        ..q()
    };
    let of_o1: Vec<UsageRecord> = records
        .iter()
        .filter(|r| r.org.as_deref() == Some("o1"))
        .cloned()
        .collect();
    for groups in groupings() {
        let rows = s.usage_summary(&org1(&groups)).await.unwrap();
        assert_eq!(rows, expected(&of_o1, &groups), "o1 grouped by {groups:?}");
    }
}
