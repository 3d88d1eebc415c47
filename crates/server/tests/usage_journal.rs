//! Usage accounting that loses nothing (issue 5, item 6), on the real binary with an SQLite
//! store:
//!
//! - SIGKILL under load: every request whose response completed (a JSON body read whole, or a
//!   stream that delivered `data: [DONE]`) is in the usage table exactly once after a restart,
//!   and no request id is there twice. Requests cut off by the kill may or may not be there:
//!   a stream killed after its record was written but before `[DONE]` reached the client is
//!   accounted though the client saw no end; the guarantee is one-way.
//! - A store that stops taking writes (an exclusive lock held on the SQLite file): the journal
//!   grows, past `usage.max_bytes` new requests get a 503 in the API's error shape, and once
//!   the store is back everything drains and nothing accepted is missing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BIN, HASHING_SECRET, chat_body, client, single_upstream};
use portcullis_store::{PageRequest, SqliteStore, UsageFilter, UsageStore};
use portcullis_testkit::{GatewayProcess, MockUpstream, TEST_KEY};

/// A gateway config on the SQLite store at `db`, with `usage` as its `usage:` block.
fn config(upstream: &MockUpstream, db: &Path, usage: &str) -> String {
    single_upstream(&upstream.base_url()).replace(
        "auth:\n",
        &format!(
            "store: {{ sqlite: \"{}\" }}\nusage: {usage}\nauth:\n  hashing_secret: {HASHING_SECRET}\n",
            db.display()
        ),
    )
}

/// Every usage record's request id, with how many records it has.
async fn usage_counts(db: &Path) -> HashMap<String, usize> {
    let store = SqliteStore::open(db).await.unwrap();
    let mut counts = HashMap::new();
    let mut page = PageRequest::first(1000);
    loop {
        let got = store
            .list_usage(&UsageFilter::default(), &page)
            .await
            .unwrap();
        for r in got.items {
            *counts.entry(r.request_id).or_insert(0) += 1;
        }
        match got.next_after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    sqlx_close(store).await;
    counts
}

async fn sqlx_close(store: SqliteStore) {
    portcullis_store::Store::close(&store).await;
}

/// One request; its request id if its response completed.
async fn one(gw_url: &str, stream: bool) -> Option<String> {
    let mut body = chat_body("gpt-test");
    if stream {
        body["stream"] = true.into();
    }
    let response = client()
        .post(format!("{gw_url}/v1/chat/completions"))
        .bearer_auth(TEST_KEY)
        .json(&body)
        .send()
        .await
        .ok()?;
    let id = response
        .headers()
        .get("x-request-id")?
        .to_str()
        .ok()?
        .to_owned();
    if response.status() != 200 {
        return None;
    }
    let text = response.text().await.ok()?;
    let complete = if stream {
        text.contains("data: [DONE]")
    } else {
        serde_json::from_str::<serde_json::Value>(&text)
            .is_ok_and(|v| v["choices"][0]["message"]["content"] == "Hello world")
    };
    complete.then_some(id)
}

/// Waits until every id of `want` is in the usage table (at most 30 s); returns the counts.
async fn drained(db: &Path, want: &[String]) -> HashMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts = usage_counts(db).await;
        let missing = want.iter().filter(|id| !counts.contains_key(*id)).count();
        if missing == 0 || Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_acknowledged_request_and_counts_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    let upstream = MockUpstream::openai().await.unwrap();
    // Small segments, so that the load rotates through several and recovery crosses them.
    let yaml = config(
        &upstream,
        &db,
        "{ segment_bytes: 16384, batch_size: 50, flush_interval: 20ms }",
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let url = gw.url("");
    let completed = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..12 {
        let (url, completed, stop) = (url.clone(), completed.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if let Some(id) = one(&url, (n + w).is_multiple_of(2)).await {
                    completed.lock().unwrap().push(id);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    gw.signal("KILL").unwrap();
    // Requests in flight at the kill fail; the workers stop soon after.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    drop(gw);
    let completed = completed.lock().unwrap().clone();
    assert!(
        completed.len() > 50,
        "too little load to test: {}",
        completed.len()
    );

    // Same store, same journal (beside the store file): the new process re-sends what the
    // killed one had not flushed.
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    assert!(
        gw.wait_for_message("usage journal opened", 1, Duration::from_secs(5))
            .await
    );
    let opened = gw
        .json_logs()
        .into_iter()
        .find(|l| l["message"] == "usage journal opened")
        .unwrap();
    let counts = drained(&db, &completed).await;
    let missing: Vec<&String> = completed
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} completed requests are not accounted, e.g. {:?}",
        missing.len(),
        completed.len(),
        missing.first()
    );
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "accounted more than once: {twice:?}");
    eprintln!(
        "completed before SIGKILL: {}; usage records after restart: {}; re-sent from the \
         journal at restart: {} records, torn bytes truncated: {}",
        completed.len(),
        counts.len(),
        opened["pending_records"],
        opened["truncated_bytes"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stops_writing_makes_the_journal_grow_then_refuse_then_drain() {
    use sqlx::Connection as _;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    let upstream = MockUpstream::openai().await.unwrap();
    let yaml = config(
        &upstream,
        &db,
        "{ segment_bytes: 4096, max_bytes: 4096, batch_size: 10, flush_interval: 10ms }",
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    // The store stops taking writes: another connection holds SQLite's write lock.
    let mut lock = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    let mut accepted = Vec::new();
    let refused = loop {
        assert!(accepted.len() < 200, "never refused");
        let response = common::post(gw.url("/v1/chat/completions"), chat_body("gpt-test"))
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        match response.status().as_u16() {
            200 => accepted.push(id),
            503 => break response.json::<serde_json::Value>().await.unwrap(),
            other => panic!("unexpected status {other}"),
        }
    };
    assert_eq!(refused["error"]["code"], "usage_journal_full", "{refused}");
    assert_eq!(refused["error"]["type"], "api_error");
    assert!(accepted.len() >= 5, "refused too early: {}", accepted.len());
    let (stored,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_records")
        .fetch_one(&mut lock)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the store was supposed to be unwritable");
    assert!(
        gw.wait_for_message(
            "usage journal: the store refused a batch; keeping it and retrying",
            1,
            Duration::from_secs(10)
        )
        .await
    );

    // The store is back: everything accepted drains, exactly once, and requests pass again.
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();
    let counts = drained(&db, &accepted).await;
    for id in &accepted {
        assert_eq!(counts.get(id), Some(&1), "request {id}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = common::post(gw.url("/v1/chat/completions"), chat_body("gpt-test"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still refused after the drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
