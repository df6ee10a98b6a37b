//! Audit store throughput: durable appends (every acknowledged record is
//! committed with WAL + synchronous=FULL) and verification of the hash chain.
//!
//! Run with `cargo bench --bench audit`. Figures are records per second.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil::model::{Record, RecordKind, Time};
use vigil::store::{AuditFilter, AuditWriter, Store, WriterStats};

static BASE_TIME: LazyLock<Time> =
    LazyLock::new(|| "2026-03-01T00:00:00Z".parse().expect("a valid time"));

/// Numbers records in the order they are made: as in the hub, concurrent
/// records belong to recent actions and carry recent times.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// `n` records numbered after every record made so far.
fn next_records(n: u64) -> Vec<Record> {
    let first = NEXT.fetch_add(n, Ordering::Relaxed);
    (first..first + n).map(record).collect()
}

/// A realistic record: an action step with the fields the console filters by.
fn record(i: u64) -> Record {
    let kinds = [
        RecordKind::ActionProposed,
        RecordKind::ActionApproved,
        RecordKind::ActionStarted,
        RecordKind::ActionSucceeded,
        RecordKind::VerificationPassed,
    ];
    let mut r = Record::new(
        kinds[(i % kinds.len() as u64) as usize],
        *BASE_TIME + chrono::Duration::milliseconds(i as i64),
    );
    r.alert = Some("DiskSpaceLow".into());
    r.runbook = Some("disk_cleanup".into());
    r.target = Some(format!("web-{:02}", i % 40));
    r.action_id = Some(format!("A{:06}", i / 5));
    r.actor = Some("vigil".into());
    r.attempt = Some(1);
    r.params = Some(BTreeMap::from([
        ("mountpoint".to_string(), "/var".to_string()),
        ("older_than".to_string(), "7d".to_string()),
    ]));
    r.detail = Some(format!(
        "step {i}: find /var/log -name '*.gz' -mtime +7 -delete"
    ));
    r
}

/// `submitters` threads, each appending `iters` requests of `batch` records
/// through one writer and waiting for each commit.
fn run_threads(w: &AuditWriter, submitters: u64, batch: u64, iters: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..submitters {
            let w = w.clone();
            s.spawn(move || {
                for _ in 0..iters {
                    black_box(w.append_blocking(next_records(batch)).expect("append"));
                }
            });
        }
    });
    start.elapsed()
}

/// How well group commit batched: records per transaction.
fn report_batches(name: &str, before: WriterStats, after: WriterStats) {
    let commits = after.commits - before.commits;
    let records = after.records - before.records;
    let busy = (after.busy_micros - before.busy_micros) as f64;
    eprintln!(
        "{name}: {records} records in {commits} commits, {:.1} records per commit (max {}), {:.0} us per commit",
        records as f64 / commits.max(1) as f64,
        after.max_batch,
        busy / commits.max(1) as f64,
    );
}

fn bench_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = AuditWriter::open(dir.path()).expect("open writer");
    let mut g = c.benchmark_group("audit_append");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    for (name, submitters, batch) in [
        ("writer_1x1", 1u64, 1u64),
        ("writer_8x1", 8, 1),
        ("writer_64x1", 64, 1),
        ("writer_8x100", 8, 100),
    ] {
        g.throughput(Throughput::Elements(submitters * batch));
        let before = w.stats();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| run_threads(&w, submitters, batch, iters))
        });
        report_batches(name, before, w.stats());
    }

    // Many async callers (e.g. hub tasks) with one record each.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let tasks = 256u64;
    g.throughput(Throughput::Elements(tasks));
    let before = w.stats();
    g.bench_function("writer_async_256x1", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let mut hs = Vec::new();
                for _ in 0..tasks {
                    let w = w.clone();
                    hs.push(tokio::spawn(async move {
                        for _ in 0..iters {
                            black_box(w.append(next_records(1)).await.expect("append"));
                        }
                    }));
                }
                for h in hs {
                    h.await.expect("task");
                }
                start.elapsed()
            })
        })
    });
    report_batches("writer_async_256x1", before, w.stats());
    drop(rt);
    w.shutdown().expect("shutdown");
    g.finish();

    // The store without the writer: one transaction per call.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let mut g = c.benchmark_group("audit_store");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for batch in [1u64, 1000] {
        g.throughput(Throughput::Elements(batch));
        g.bench_function(format!("append_tx_{batch}"), |b| {
            b.iter_custom(|iters| {
                let mut recs: Vec<Vec<Record>> = (0..iters)
                    .map(|i| (0..batch).map(|k| record(i * batch + k)).collect())
                    .collect();
                let start = Instant::now();
                for r in &mut recs {
                    store.append(r).expect("append");
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

fn bench_verify(c: &mut Criterion) {
    const N: u64 = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut store = Store::open(dir.path()).expect("open");
        for chunk in 0..N / 10_000 {
            let mut recs: Vec<Record> = (0..10_000).map(|k| record(chunk * 10_000 + k)).collect();
            store.append(&mut recs).expect("append");
        }
    }
    let store = Store::open_read_only(dir.path()).expect("open read-only");
    let mut g = c.benchmark_group("audit_verify");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(N));
    g.bench_function("verify_200k", |b| {
        b.iter(|| {
            let report = store.verify().expect("verify");
            assert!(report.first_bad.is_none() && report.records == N);
            report
        })
    });
    g.finish();

    let mut g = c.benchmark_group("audit_query");
    g.sample_size(20);
    let filter = AuditFilter {
        target: Some("web-07".into()),
        ..AuditFilter::default()
    };
    g.throughput(Throughput::Elements(50));
    g.bench_function("page_50_by_target_mid_200k", |b| {
        b.iter(|| black_box(store.page(&filter, Some(N / 2), 50).expect("page")))
    });
    g.throughput(Throughput::Elements(N));
    g.bench_function("count_by_target_200k", |b| {
        b.iter(|| black_box(store.count(&filter).expect("count")))
    });
    g.throughput(Throughput::Elements(50));
    g.bench_function("tail_50", |b| {
        b.iter(|| black_box(store.tail(50).expect("tail")))
    });
    g.throughput(Throughput::Elements(N));
    g.bench_function("export_jsonl_200k", |b| {
        b.iter(|| {
            let mut sink = std::io::sink();
            black_box(store.export_jsonl(&mut sink, None).expect("export"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_append, bench_verify);
criterion_main!(benches);
