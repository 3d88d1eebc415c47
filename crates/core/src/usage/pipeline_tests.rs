//! The pipeline's side of accounting, in process against the built-in mock provider: a JSON
//! success is in the journal when `handle` returns its body; a stream's record is in the journal
//! when `[DONE]` is yielded (not only when the stream ends); an error is recorded too; a full
//! journal refuses before any work.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use http::{HeaderMap, HeaderValue};

use super::*;
use crate::config::Config;
use crate::pipeline::{self, Reply};
use crate::provider::{Operation, client};
use crate::{Gateway, Runtime};

const KEY: &str = "sk-usage-test";

fn gateway(dir: &std::path::Path, max_bytes: u64) -> (Gateway, Arc<Journal>) {
    let digest = crate::auth::digest(KEY.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let yaml = format!(
        "auth: {{ keys: [{{ name: bot, sha256: \"{hex}\" }}] }}\n\
         providers: {{ m: {{ type: mock }} }}\n\
         models: {{ gpt-test: {{ deployments: [{{ provider: m }}] }} }}\n\
         pricing: {{ models: {{ gpt-test: {{ input: \"1000\", output: \"2000\" }} }} }}\n"
    );
    let config = Config::from_yaml(&yaml, &HashMap::<String, String>::new()).unwrap();
    let http = client::build(Duration::from_secs(5)).unwrap();
    let gw = Gateway::new(Runtime::build(&config, &http), None);
    let opts = JournalOptions {
        dir: dir.to_owned(),
        segment_bytes: 4096,
        max_bytes,
        fsync: Fsync::Never,
    };
    let journal = Arc::new(Journal::open(opts).unwrap().0);
    gw.set_usage_journal(journal.clone());
    (gw, journal)
}

fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    let bearer = HeaderValue::from_str(&format!("Bearer {KEY}")).unwrap();
    h.insert(http::header::AUTHORIZATION, bearer);
    h
}

fn journaled(j: &Journal) -> Vec<UsageRecord> {
    j.read(j.checkpoint(), 100).unwrap().records
}

#[tokio::test]
async fn a_json_success_is_journaled_before_its_body_is_returned() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, j) = gateway(dir.path(), 1 << 20);
    let body = br#"{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}"#;
    let reply = pipeline::handle(&gw, Operation::Chat, "req_json", &headers(), body).await;
    assert!(matches!(reply, Reply::Json { .. }), "{reply:?}");
    let records = journaled(&j);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (r.request_id.as_str(), r.status, r.outcome.as_str()),
        ("req_json", 200, "completed")
    );
    assert_eq!(r.key_name.as_deref(), Some("bot"));
    assert_eq!(r.model.as_deref(), Some("gpt-test"));
    assert_eq!(r.provider.as_deref(), Some("m"));
    assert!(r.input_tokens.is_some() && r.output_tokens.is_some());
    // Costed at the configured price: $1000 and $2000 per million tokens are 1,000 and 2,000
    // micro-dollars per token.
    let (input, output) = (r.input_tokens.unwrap(), r.output_tokens.unwrap());
    assert!(input > 0 && output > 0);
    assert_eq!(
        r.cost_micros,
        Some(i64::try_from(input * 1_000 + output * 2_000).unwrap())
    );
    assert!(!r.stream);
    drop(reply);
    // Nothing more when the reply is dropped: accounted once.
    assert_eq!(journaled(&j).len(), 1);
}

#[tokio::test]
async fn a_stream_is_journaled_before_done_is_yielded() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, j) = gateway(dir.path(), 1 << 20);
    let body = br#"{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let Reply::Stream(mut stream) =
        pipeline::handle(&gw, Operation::Chat, "req_sse", &headers(), body).await
    else {
        panic!("not a stream");
    };
    let mut saw_done = false;
    while let Some(Ok(bytes)) = stream.next().await {
        if bytes.as_ref() == b"data: [DONE]\n\n" {
            saw_done = true;
            let records = journaled(&j);
            assert_eq!(
                records.len(),
                1,
                "[DONE] came before the record was written"
            );
            assert_eq!(records[0].request_id, "req_sse");
            assert!(records[0].stream);
            assert_eq!(records[0].outcome, "completed");
        } else {
            assert!(journaled(&j).is_empty(), "recorded before the stream's end");
        }
    }
    assert!(saw_done);
    drop(stream);
    assert_eq!(journaled(&j).len(), 1);
}

#[tokio::test]
async fn errors_are_journaled_and_a_full_journal_refuses_with_503() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, j) = gateway(dir.path(), 4096);
    let body = br#"{"model":"nope","messages":[{"role":"user","content":"hi"}]}"#;
    let reply = pipeline::handle(&gw, Operation::Chat, "req_404", &headers(), body).await;
    assert!(
        matches!(reply, Reply::Error { ref error, .. } if error.status() == 404),
        "{reply:?}"
    );
    let records = journaled(&j);
    assert_eq!(
        (records[0].status, records[0].outcome.as_str()),
        (404, "failed")
    );
    // Fill the journal past max_bytes (the store is "down": nothing commits).
    let ok = br#"{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}"#;
    let refused = loop {
        match pipeline::handle(&gw, Operation::Chat, "req", &headers(), ok).await {
            Reply::Json { .. } => assert!(j.backlog() <= 4096 + 4096),
            Reply::Error { error, .. } => break error,
            Reply::Stream(_) => panic!("stream"),
        }
    };
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.kind(), "usage_journal_full");
    let before = journaled(&j).len();
    // The refusal itself is not journaled (there is no room), and the journal keeps the rest.
    assert!(matches!(
        pipeline::handle(&gw, Operation::Chat, "req", &headers(), ok).await,
        Reply::Error { .. }
    ));
    assert_eq!(journaled(&j).len(), before);
}
