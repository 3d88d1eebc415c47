//! Usage records: batch insert, a re-sent batch counts once, id order and paging, filters.

use portcullis_store::*;

fn record(n: u32, key: &str) -> UsageRecord {
    UsageRecord {
        // Fixed-width so that id order is `n` order, as UUIDv7 ids are time order.
        id: format!("0190-usage-{n:06}"),
        request_id: format!("req_{n}"),
        started_at_us: 1_700_000_000_000_000 + i64::from(n),
        key_name: Some(key.into()),
        endpoint: "/v1/chat/completions".into(),
        model: Some(
            if n.is_multiple_of(2) {
                "gpt-even"
            } else {
                "gpt-odd"
            }
            .into(),
        ),
        served_model: Some("upstream-model".into()),
        provider: Some("up".into()),
        status: 200,
        outcome: "completed".into(),
        stream: n.is_multiple_of(3),
        input_tokens: Some(10),
        output_tokens: Some(u64::from(n)),
        cached_tokens: None,
        reasoning_tokens: Some(0),
        latency_us: 1500,
        ttfb_us: (!n.is_multiple_of(2)).then_some(700),
        cost_micros: (n == 1).then_some(42),
        ..UsageRecord::default()
    }
}

pub async fn usage_batches_are_idempotent(s: &dyn Store) {
    let batch: Vec<UsageRecord> = (0..700).map(|n| record(n, "k")).collect();
    // More rows than one INSERT statement holds: the chunks share one transaction.
    assert_eq!(s.insert_usage(&batch).await.unwrap(), 700);
    assert_eq!(s.count_usage(&UsageFilter::default()).await.unwrap(), 700);
    // The same batch again, and a batch overlapping it: only new ids count.
    assert_eq!(s.insert_usage(&batch).await.unwrap(), 0);
    let overlap: Vec<UsageRecord> = (650..750).map(|n| record(n, "k")).collect();
    assert_eq!(s.insert_usage(&overlap).await.unwrap(), 50);
    assert_eq!(s.count_usage(&UsageFilter::default()).await.unwrap(), 750);
    assert_eq!(s.insert_usage(&[]).await.unwrap(), 0);
    // Every field reads back as written.
    let one = UsageFilter {
        request_id: Some("req_1".into()),
        ..UsageFilter::default()
    };
    let page = s.list_usage(&one, &PageRequest::first(10)).await.unwrap();
    assert_eq!(page.items, vec![record(1, "k")]);
    assert_eq!(page.next_after, None);
}

pub async fn usage_order_paging_and_filters(s: &dyn Store) {
    // Inserted out of order; listed in id order.
    let mut batch: Vec<UsageRecord> = (0..25).map(|n| record(n, "a")).collect();
    batch.extend((25..30).map(|n| record(n, "b")));
    batch.reverse();
    s.insert_usage(&batch).await.unwrap();
    let mut seen = Vec::new();
    let mut page = PageRequest::first(7);
    loop {
        let got = s.list_usage(&UsageFilter::default(), &page).await.unwrap();
        assert!(got.items.len() <= 7);
        seen.extend(got.items.into_iter().map(|r| r.request_id));
        match got.next_after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    let want: Vec<String> = (0..30).map(|n| format!("req_{n}")).collect();
    assert_eq!(seen, want);
    let by_key = |k: &str| UsageFilter {
        key_name: Some(k.into()),
        ..UsageFilter::default()
    };
    assert_eq!(s.count_usage(&by_key("a")).await.unwrap(), 25);
    assert_eq!(s.count_usage(&by_key("b")).await.unwrap(), 5);
    assert_eq!(s.count_usage(&by_key("nobody")).await.unwrap(), 0);
    let odd_b = UsageFilter {
        key_name: Some("b".into()),
        model: Some("gpt-odd".into()),
        ..UsageFilter::default()
    };
    let got = s
        .list_usage(&odd_b, &PageRequest::first(100))
        .await
        .unwrap();
    let ids: Vec<&str> = got.items.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, ["req_25", "req_27", "req_29"]);
    // A request id is not unique: a client may reuse its own; each record still counts.
    let mut again = record(3, "a");
    again.id = "0190-usage-999999".into();
    s.insert_usage(&[again]).await.unwrap();
    let same = UsageFilter {
        request_id: Some("req_3".into()),
        ..UsageFilter::default()
    };
    assert_eq!(s.count_usage(&same).await.unwrap(), 2);
}
