//! The million-record store the console and attach benchmarks read: built
//! once in `target/console-bench-store`, then reused (also by
//! `scripts/console-figures.sh`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Instant;

use vigil::model::{Record, RecordKind};
use vigil::store::Store;
use vigil::tui::fixture;

pub const AUDIT: u64 = 1_000_000;

/// A store with a million records (built once, then reused).
pub fn store_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-bench-store");
    if let Ok(s) = Store::open_read_only(&dir)
        && s.last_seq().unwrap_or(0) >= AUDIT
    {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut s = Store::open(&dir).expect("store");
    let t0 = fixture::t0();
    let kinds = [
        RecordKind::AlertFiring,
        RecordKind::RunbookMatched,
        RecordKind::ActionProposed,
        RecordKind::ActionApproved,
        RecordKind::ActionStarted,
        RecordKind::ActionSucceeded,
        RecordKind::VerificationPassed,
        RecordKind::AlertResolved,
    ];
    let start = Instant::now();
    let mut n = 0u64;
    while n < AUDIT {
        let mut batch: Vec<Record> = (0..20_000u64)
            .map(|i| {
                let k = n + i;
                // A month of history ending at the fixture's time: a
                // record every 2.6 s.
                let mut r = Record::new(
                    kinds[(k % 8) as usize],
                    t0 - chrono::TimeDelta::milliseconds(((AUDIT - k) * 2592) as i64),
                );
                r.target = Some(format!("node-{:05}", k % 5000));
                r.runbook = Some(
                    ["disk_cleanup", "service_restart", "log_rotation"][(k % 3) as usize].into(),
                );
                r.action_id = Some(format!("A{:06}", k / 8));
                r.actor = Some(if k % 8 == 3 { "alice" } else { "vigil" }.into());
                r.detail = Some("seeded for the console benchmark".into());
                r
            })
            .collect();
        s.append(&mut batch).expect("append");
        n += batch.len() as u64;
    }
    eprintln!(
        "seeded {AUDIT} audit records in {:.1}s into {}",
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    dir
}
