//! Tests of the journal: framing, torn-tail recovery, checkpoint and restart, rotation, and the
//! writer against a store that fails and comes back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::usage::writer::{self, UsageSink, WriterOptions};

fn rec(n: u32) -> UsageRecord {
    UsageRecord {
        id: format!("id-{n:06}"),
        request_id: format!("req_{n}"),
        endpoint: "/v1/chat/completions".into(),
        status: 200,
        outcome: "completed".into(),
        input_tokens: Some(10),
        output_tokens: Some(u64::from(n)),
        latency_us: 1000,
        ..UsageRecord::default()
    }
}

fn opts(dir: &Path, segment_bytes: u64) -> JournalOptions {
    JournalOptions {
        dir: dir.to_owned(),
        segment_bytes,
        max_bytes: 1 << 30,
        fsync: Fsync::Never,
    }
}

fn ids(batch: &Batch) -> Vec<String> {
    batch.records.iter().map(|r| r.request_id.clone()).collect()
}

fn want(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| format!("req_{n}")).collect()
}

fn segment_files(dir: &Path) -> Vec<u64> {
    list_segments(dir).unwrap()
}

#[test]
fn frames_round_trip_and_reject_damage() {
    let frame = encode(&rec(7)).unwrap();
    let (payload, n) = decode(&frame).unwrap();
    assert_eq!(n, frame.len());
    assert_eq!(
        serde_json::from_slice::<UsageRecord>(payload).unwrap(),
        rec(7)
    );
    // Every strict prefix is incomplete.
    for cut in 0..frame.len() {
        assert!(decode(&frame[..cut]).is_none(), "prefix {cut}");
    }
    // A flipped payload bit fails the CRC; an impossible length is refused.
    let mut bad = frame.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(decode(&bad).is_none());
    let mut huge = frame;
    huge[..4].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
    assert!(decode(&huge).is_none());
}

#[test]
fn a_torn_tail_is_truncated_on_recovery_and_appends_resume_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path(), 1 << 20)).unwrap();
    for n in 0..5 {
        j.append(&rec(n)).unwrap();
    }
    drop(j);
    // The process died in the middle of writing a sixth frame.
    let seg = segment_path(dir.path(), 1);
    let whole = fs::metadata(&seg).unwrap().len();
    let frame = encode(&rec(5)).unwrap();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&frame[..frame.len() / 2]).unwrap();
    drop(f);

    let (j, recovery) = Journal::open(opts(dir.path(), 1 << 20)).unwrap();
    assert_eq!(recovery.truncated_bytes, (frame.len() / 2) as u64);
    assert_eq!(recovery.pending_records, 5);
    assert_eq!(fs::metadata(&seg).unwrap().len(), whole);
    j.append(&rec(6)).unwrap();
    let batch = j.read(j.checkpoint(), 100).unwrap();
    assert_eq!(
        ids(&batch),
        ["req_0", "req_1", "req_2", "req_3", "req_4", "req_6"]
    );
}

#[test]
fn a_corrupt_frame_ends_the_valid_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path(), 1 << 20)).unwrap();
    for n in 0..3 {
        j.append(&rec(n)).unwrap();
    }
    drop(j);
    // Damage the last byte of the second frame (a lost block after a power failure).
    let seg = segment_path(dir.path(), 1);
    let mut bytes = fs::read(&seg).unwrap();
    let first = encode(&rec(0)).unwrap().len();
    let second = encode(&rec(1)).unwrap().len();
    bytes[first + second - 1] ^= 0xff;
    fs::write(&seg, &bytes).unwrap();
    let (j, recovery) = Journal::open(opts(dir.path(), 1 << 20)).unwrap();
    assert_eq!(recovery.pending_records, 1);
    assert_eq!(ids(&j.read(j.checkpoint(), 100).unwrap()), ["req_0"]);
}

#[test]
fn after_a_restart_only_what_was_not_committed_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path(), 1 << 20)).unwrap();
    for n in 0..10 {
        j.append(&rec(n)).unwrap();
    }
    let batch = j.read(j.checkpoint(), 4).unwrap();
    assert_eq!(ids(&batch), want(0..4));
    j.commit(batch.next, batch.bytes).unwrap();
    // Read but never committed (the store insert was lost with the process).
    let lost = j.read(j.checkpoint(), 3).unwrap();
    assert_eq!(ids(&lost), want(4..7));
    let backlog = j.backlog();
    drop(j);

    let (j, recovery) = Journal::open(opts(dir.path(), 1 << 20)).unwrap();
    assert_eq!(recovery.pending_records, 6);
    assert_eq!(recovery.pending_bytes, backlog);
    assert_eq!(j.backlog(), backlog);
    let batch = j.read(j.checkpoint(), 100).unwrap();
    assert_eq!(ids(&batch), want(4..10));
    j.commit(batch.next, batch.bytes).unwrap();
    assert_eq!(j.backlog(), 0);
    drop(j);
    let (j, recovery) = Journal::open(opts(dir.path(), 1 << 20)).unwrap();
    assert_eq!(recovery.pending_records, 0);
    assert!(j.read(j.checkpoint(), 100).unwrap().records.is_empty());
}

#[test]
fn segments_rotate_by_size_and_flushed_ones_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let frame = encode(&rec(0)).unwrap().len() as u64;
    // About three records a segment.
    let (j, _) = Journal::open(opts(dir.path(), frame * 3)).unwrap();
    for n in 0..10 {
        j.append(&rec(n)).unwrap();
    }
    assert_eq!(segment_files(dir.path()), [1, 2, 3, 4]);
    // Reads cross segment boundaries, in order.
    let batch = j.read(j.checkpoint(), 7).unwrap();
    assert_eq!(ids(&batch), want(0..7));
    j.commit(batch.next, batch.bytes).unwrap();
    assert_eq!(segment_files(dir.path()), [3, 4]);
    drop(j);
    // A restart resumes mid-segment and keeps appending to the last one.
    let (j, recovery) = Journal::open(opts(dir.path(), frame * 3)).unwrap();
    assert_eq!((recovery.pending_records, recovery.segments), (3, 2));
    j.append(&rec(10)).unwrap();
    let batch = j.read(j.checkpoint(), 100).unwrap();
    assert_eq!(ids(&batch), want(7..11));
    j.commit(batch.next, batch.bytes).unwrap();
    assert_eq!(j.backlog(), 0);
    assert_eq!(segment_files(dir.path()), [4]);
}

#[test]
fn admission_is_refused_past_max_bytes_until_the_store_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 4096);
    o.max_bytes = 4096;
    let (j, _) = Journal::open(o).unwrap();
    let mut n = 0;
    while j.admit().is_ok() {
        j.append(&rec(n)).unwrap();
        n += 1;
        assert!(n < 1000);
    }
    assert!(matches!(j.admit(), Err(JournalError::Full { .. })));
    // An admitted request still appends: nothing admitted goes unaccounted.
    j.append(&rec(n)).unwrap();
    let batch = j.read(j.checkpoint(), 1000).unwrap();
    assert_eq!(batch.records.len() as u32, n + 1);
    j.commit(batch.next, batch.bytes).unwrap();
    assert!(j.admit().is_ok());
}

/// A store that fails while `down` is set, and remembers what it took.
#[derive(Debug, Default)]
struct FlakyStore {
    down: AtomicBool,
    rows: Mutex<Vec<UsageRecord>>,
}

impl UsageSink for FlakyStore {
    fn insert<'a>(
        &'a self,
        batch: &'a [UsageRecord],
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>> {
        Box::pin(async move {
            if self.down.load(Ordering::Relaxed) {
                return Err("store down".into());
            }
            let mut rows = self.rows.lock().unwrap();
            let mut new = 0;
            for r in batch {
                if !rows.iter().any(|x| x.id == r.id) {
                    rows.push(r.clone());
                    new += 1;
                }
            }
            Ok(new)
        })
    }
}

#[tokio::test]
async fn the_writer_keeps_records_while_the_store_is_down_and_drains_them_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 4096);
    o.max_bytes = 8192;
    let (j, _) = Journal::open(o).unwrap();
    let j = Arc::new(j);
    let store = Arc::new(FlakyStore::default());
    store.down.store(true, Ordering::Relaxed);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let wopts = WriterOptions {
        batch_size: 7,
        flush_interval: Duration::from_millis(5),
    };
    let task = tokio::spawn(writer::run(j.clone(), store.clone(), wopts, stop_rx));
    let mut accepted = 0;
    while j.admit().is_ok() {
        j.append(&rec(accepted)).unwrap();
        accepted += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(store.rows.lock().unwrap().is_empty());
    assert!(j.backlog() > 8192);
    store.down.store(false, Ordering::Relaxed);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while j.backlog() > 0 {
        assert!(std::time::Instant::now() < deadline, "did not drain");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(j.admit().is_ok());
    let _ = stop.send(true);
    task.await.unwrap();
    let got: Vec<String> = store
        .rows
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.request_id.clone())
        .collect();
    assert_eq!(got, want(0..accepted));
}
