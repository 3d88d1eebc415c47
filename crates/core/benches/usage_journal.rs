//! The cost usage accounting adds to a request: building its record, and appending it to the
//! journal (one `write(2)` under a mutex) with each fsync policy. The writer's store inserts
//! are off the request path and not measured here.
//! Run with `cargo bench -p portcullis-core --bench usage_journal`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::config::Fsync;
use portcullis_core::pipeline::RequestCtx;
use portcullis_core::usage::{self, Journal, JournalOptions};
use portcullis_types::Usage;

fn ctx() -> RequestCtx {
    let mut ctx = RequestCtx::new(
        "/v1/chat/completions",
        "req_3f2a9c1d0b7e4a51000000000000002a",
        None,
    );
    ctx.key_name = Some(Arc::from("search-bot"));
    ctx.model = Some("gpt-4o-mini".into());
    ctx.provider = Some(Arc::from("openai"));
    ctx.upstream_model = Some(Arc::from("gpt-4o-mini-2024-07-18"));
    ctx.usage = Some(Usage::new(1200, 85).with_details(1024, 0));
    ctx.first_byte = Some(Duration::from_millis(180));
    ctx
}

fn journal(dir: &std::path::Path, fsync: Fsync) -> Journal {
    let opts = JournalOptions {
        dir: dir.to_owned(),
        segment_bytes: 4 << 20,
        max_bytes: u64::MAX,
        fsync,
    };
    Journal::open(opts).unwrap().0
}

/// Times `iters` appends, then empties the journal (untimed) so the disk does not fill up.
fn appends(j: &Journal, ctx: &RequestCtx, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        j.append(black_box(&usage::record_of(ctx))).unwrap();
    }
    let took = start.elapsed();
    loop {
        let batch = j.read(j.checkpoint(), 100_000).unwrap();
        if batch.records.is_empty() {
            break;
        }
        j.commit(batch.next, batch.bytes).unwrap();
    }
    took
}

fn bench(c: &mut Criterion) {
    let ctx = ctx();
    c.bench_function("usage/record_of", |b| {
        b.iter(|| black_box(usage::record_of(black_box(&ctx))))
    });
    c.bench_function("usage/encode", |b| {
        let record = usage::record_of(&ctx);
        b.iter(|| black_box(usage::journal::encode(black_box(&record)).unwrap()))
    });
    let dir = tempfile::tempdir().unwrap();
    for (name, fsync) in [
        (
            "usage/record_and_append/fsync_interval",
            Fsync::Interval(Duration::from_secs(1)),
        ),
        ("usage/record_and_append/fsync_never", Fsync::Never),
    ] {
        let j = journal(&dir.path().join(name.replace('/', "_")), fsync);
        c.bench_function(name, |b| b.iter_custom(|iters| appends(&j, &ctx, iters)));
    }
    let mut slow = c.benchmark_group("usage/fsync_always");
    slow.sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let j = journal(&dir.path().join("always"), Fsync::Always);
    slow.bench_function("record_and_append", |b| {
        b.iter_custom(|iters| appends(&j, &ctx, iters))
    });
    slow.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
