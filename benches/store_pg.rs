//! Durable appends to a PostgreSQL store through the group-commit writer,
//! beside the same load on the SQLite file, and verification speed. Starts
//! its own cluster (tests/pg_support: initdb in a temp dir, fsync on,
//! synchronous_commit on) and prints figures.
//!
//! Run with `cargo bench --bench store_pg` (PostgreSQL must be installed).
//! `VIGIL_BENCH_SECS` sets each run's length (default 5).

#[path = "../tests/pg_support/mod.rs"]
mod pg_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigil::model::{Record, RecordKind, Time};
use vigil::store::{AnyStore, AuditWriter, Lease, LeaseState, PgStore, PgTarget, Store};

fn record(i: u64) -> Record {
    let base: Time = "2026-03-01T00:00:00Z".parse().expect("a valid time");
    let kinds = [
        RecordKind::ActionProposed,
        RecordKind::ActionApproved,
        RecordKind::ActionStarted,
        RecordKind::ActionSucceeded,
        RecordKind::VerificationPassed,
    ];
    let mut r = Record::new(
        kinds[(i % 5) as usize],
        base + chrono::Duration::milliseconds(i as i64),
    );
    r.alert = Some("DiskSpaceLow".into());
    r.runbook = Some("disk_cleanup".into());
    r.target = Some(format!("web-{:02}", i % 40));
    r.action_id = Some(format!("A{:06}", i / 5));
    r.actor = Some("vigil".into());
    r.attempt = Some(1);
    r.detail = Some(format!(
        "step {i}: find /var/log -name '*.gz' -mtime +7 -delete"
    ));
    r
}

/// `writers` threads appending `batch` records per request, each waiting
/// for its commit, for `secs`: records per second and records per commit.
fn run(name: &str, w: &AuditWriter, writers: u64, batch: u64, secs: u64) {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let mut lat = Vec::new();
    let before = w.stats();
    let start = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..writers)
            .map(|t| {
                let (w, stop, done) = (w.clone(), &stop, &done);
                s.spawn(move || {
                    let mut lat = Vec::new();
                    let mut i = t * 1_000_000_000;
                    while !stop.load(Ordering::Relaxed) {
                        let recs = (i..i + batch).map(record).collect();
                        i += batch;
                        let t0 = Instant::now();
                        w.append_blocking(recs).expect("append");
                        lat.push(t0.elapsed());
                        done.fetch_add(batch, Ordering::Relaxed);
                    }
                    lat
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        for h in hs {
            lat.extend(h.join().expect("writer"));
        }
    });
    let el = start.elapsed().as_secs_f64();
    let after = w.stats();
    let n = done.load(Ordering::Relaxed);
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{name:<34} {:>9.0} records/s  {:>6.1} records/commit  append p50 {:>6.2} ms  p99 {:>6.2} ms",
        n as f64 / el,
        (after.records - before.records) as f64 / (after.commits - before.commits).max(1) as f64,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

fn main() {
    let secs: u64 = std::env::var("VIGIL_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let pg = pg_support::Pg::start("bench");
    // SAFETY: set before any other thread starts.
    unsafe { std::env::set_var(pg_support::PASSWORD_ENV, pg_support::PASSWORD) };
    let t = PgTarget::parse(&pg.url("bench"), Some(pg_support::PASSWORD_ENV)).expect("url");
    println!(
        "PostgreSQL {} on 127.0.0.1 (fsync on, synchronous_commit on); {} cores; {secs} s per run",
        pg.sql("bench", "SHOW server_version"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let w = AnyStore::Postgres(PgStore::open(&t).expect("open"))
        .into_writer()
        .expect("writer");
    for (writers, batch) in [(1, 1), (8, 1), (8, 10), (8, 100), (64, 1)] {
        run(
            &format!("postgres writer {writers}x{batch}"),
            &w,
            writers,
            batch,
            secs,
        );
    }
    w.shutdown().expect("shutdown");

    // An active hub's writer: fenced by the lease on every batch, then the
    // data dir's copy. A decision to start an action is one such append (the
    // batch holding its `action_started`) before the execution begins.
    pg.sql("postgres", "CREATE DATABASE hub OWNER vigil");
    let th = PgTarget::parse(&pg.url("hub"), Some(pg_support::PASSWORD_ENV)).expect("url");
    let mut lease = Lease::open(&th, "bench", Duration::from_secs(60)).expect("lease");
    let LeaseState::Active { epoch } = lease.try_acquire().expect("lease") else {
        panic!("the lease of a fresh store is free");
    };
    let mut ps = PgStore::open(&th).expect("open");
    ps.set_fence_all(lease.fence(epoch));
    let copy = tempfile::tempdir().expect("tempdir");
    let local = Store::open(copy.path()).expect("open");
    local.relax_sync_for_copy().expect("copy durability");
    let w = AuditWriter::spawn_mirrored(ps, local).expect("writer");
    for (writers, batch) in [(1, 2), (8, 2)] {
        run(
            &format!("active hub writer {writers}x{batch}"),
            &w,
            writers,
            batch,
            secs,
        );
    }
    w.shutdown().expect("shutdown");

    let dir = tempfile::tempdir().expect("tempdir");
    let w = AuditWriter::spawn(Store::open(dir.path()).expect("open")).expect("writer");
    for (writers, batch) in [(8, 1), (8, 10), (8, 100)] {
        run(
            &format!("sqlite writer {writers}x{batch}"),
            &w,
            writers,
            batch,
            secs,
        );
    }
    w.shutdown().expect("shutdown");

    let mut p = PgStore::open_read_only(&t).expect("open");
    let n = p.head().expect("head").0;
    let t0 = Instant::now();
    let report = p.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    println!(
        "postgres verify                    {:>9.0} records/s  ({n} records in {:.2} s)",
        n as f64 / t0.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
