//! The audit trail on a real PostgreSQL (VIGIL_E2E=1): a cluster started by
//! the test (tests/pg_support) on a 127.0.0.1 high port. The same records
//! give the same chain as in SQLite; tampering is found; concurrent writers
//! chain one after another; `vigil audit ... --config` reads the store;
//! bad set-ups (nothing listening, a wrong password, a newer schema, a
//! password in the URL) are clear errors that never show a password.

mod cli_support;
mod pg_support;

use std::path::Path;
use std::process::{Command, Output};

use std::time::{Duration, Instant};
use vigil::model::{Record, RecordKind};

use vigil::store::{
    AnyStore, AuditFilter, AuditWriter, Lease, LeaseState, PgStore, PgTarget, Store,
};

use cli_support::text;
use pg_support::{PASSWORD, PASSWORD_ENV, Pg};

fn record(i: u64) -> Record {
    let at = "2026-03-01T00:00:00Z"
        .parse::<vigil::model::Time>()
        .unwrap()
        + chrono::Duration::seconds(i as i64);
    let mut r = Record::new(
        if i.is_multiple_of(5) {
            RecordKind::ActionStarted
        } else {
            RecordKind::Signal
        },
        at,
    );
    r.target = Some(format!("web-{}", i % 3));
    r.runbook = Some(
        if i.is_multiple_of(2) {
            "disk_cleanup"
        } else {
            "service_restart"
        }
        .into(),
    );
    r.actor = i.is_multiple_of(4).then(|| "alice".to_string());
    r.detail = Some(format!("sample {i} \"quoted\" ünïcode"));
    r.value = Some(i as f64 / 3.0);
    r
}

fn records(from: u64, n: u64) -> Vec<Record> {
    (from..from + n).map(record).collect()
}

/// The tests' process environment holds the right password; each test
/// that needs another one runs the binary with its own.
fn target(pg: &Pg, db: &str) -> PgTarget {
    // SAFETY: every test sets the same value; none reads it concurrently
    // with a different write.
    unsafe { std::env::set_var(PASSWORD_ENV, PASSWORD) };
    PgTarget::parse(&pg.url(db), Some(PASSWORD_ENV)).unwrap()
}

fn config(dir: &Path, url: &str) -> std::path::PathBuf {
    let file = dir.join("config.toml");
    std::fs::write(
        &file,
        format!("[store]\nurl = \"{url}\"\npassword_env = \"{PASSWORD_ENV}\"\n"),
    )
    .unwrap();
    file
}

/// `vigil --data-dir DIR --config FILE ARGS` with the password `pw` in the
/// environment (and no ~/.pgpass).
fn vigil(dir: &Path, file: &Path, pw: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--config")
        .arg(file)
        .args(args)
        .env("HOME", dir)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("PGPASSFILE")
        .env(PASSWORD_ENV, pw)
        .output()
        .expect("spawn vigil")
}

fn export(s: &mut AnyStore) -> String {
    let mut out = Vec::new();
    s.export_jsonl(&mut out, None).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: PostgreSQL")]
fn appends_chain_and_verify_on_postgres_as_in_sqlite() {
    let pg = Pg::start("audit");
    let t = target(&pg, "audit");
    let mut p = AnyStore::Postgres(PgStore::open(&t).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut s = AnyStore::Sqlite(Store::open(dir.path()).unwrap());
    assert_eq!(p.head().unwrap(), s.head().unwrap(), "empty trails agree");
    assert!(p.verify().unwrap().is_ok());
    for (from, n) in [(0, 1), (1, 40), (41, 259)] {
        let mut a = records(from, n);
        let mut b = records(from, n);
        p.append(&mut a).unwrap();
        s.append(&mut b).unwrap();
        assert_eq!(
            a.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (from + 1..=from + n).collect::<Vec<_>>()
        );
    }
    let (pv, sv) = (p.verify().unwrap(), s.verify().unwrap());
    assert!(pv.is_ok(), "{pv:?}");
    assert_eq!(pv, sv);
    assert_eq!(pv.records, 300);
    assert_eq!(p.head().unwrap(), s.head().unwrap(), "same newest hash");
    let pe = export(&mut p);
    assert_eq!(pe, export(&mut s), "byte-identical exports");
    assert_eq!(pe.lines().count(), 300);
    // The hash over the canonical JSON is the chain_hash of the contract.
    let first: serde_json::Value = serde_json::from_str(pe.lines().next().unwrap()).unwrap();
    assert_eq!(first["prev"], vigil::store::GENESIS_PREV);

    // The console's queries.
    assert_eq!(p.tail(3).unwrap(), s.tail(3).unwrap());
    assert_eq!(p.tail(3).unwrap().last().unwrap().seq, 300);
    assert_eq!(p.since(295, 10).unwrap(), s.since(295, 10).unwrap());
    assert_eq!(p.get(17).unwrap(), s.get(17).unwrap());
    for f in [
        AuditFilter::default(),
        AuditFilter {
            target: Some("web-1".into()),
            ..Default::default()
        },
        AuditFilter {
            target: Some("web-2".into()),
            runbook: Some("disk_cleanup".into()),
            kind: Some("action_started".into()),
            actor: Some("alice".into()),
        },
        AuditFilter {
            target: Some("nowhere".into()),
            ..Default::default()
        },
    ] {
        assert_eq!(p.count(&f).unwrap(), s.count(&f).unwrap(), "{f:?}");
        assert_eq!(
            p.page(&f, Some(250), 7).unwrap(),
            s.page(&f, Some(250), 7).unwrap(),
            "{f:?}"
        );
    }

    // Reopening continues the chain; a read-only store refuses to write.
    drop(p);
    let mut p = AnyStore::Postgres(PgStore::open(&t).unwrap());
    p.append(&mut records(300, 1)).unwrap();
    assert_eq!(p.head().unwrap().0, 301);
    let mut ro = AnyStore::Postgres(PgStore::open_read_only(&t).unwrap());
    assert!(ro.append(&mut records(301, 1)).is_err());
    assert!(ro.verify().unwrap().is_ok());
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: PostgreSQL")]
fn tampering_on_postgres_is_found_like_in_sqlite() {
    let pg = Pg::start("audit");
    let t = target(&pg, "audit");
    let mut p = PgStore::open(&t).unwrap();
    p.append(&mut records(0, 20)).unwrap();
    assert!(p.verify().unwrap().is_ok());
    let first_bad = |p: &mut PgStore| p.verify().unwrap().first_bad.map(|b| (b.seq, b.why));

    // An edited record.
    pg.sql(
        "audit",
        "UPDATE audit SET json = replace(json, 'sample 6', 'sample 666') WHERE seq = 7",
    );
    let (seq, why) = first_bad(&mut p).unwrap();
    assert_eq!(seq, 7, "{why}");
    assert!(why.contains("altered"), "{why}");
    pg.sql(
        "audit",
        "UPDATE audit SET json = replace(json, 'sample 666', 'sample 6') WHERE seq = 7",
    );
    assert!(p.verify().unwrap().is_ok(), "restored");

    // A record removed from the middle, then the newest one.
    pg.sql("audit", "DELETE FROM audit WHERE seq = 12");
    assert_eq!(first_bad(&mut p).unwrap().0, 12);
    pg.sql(
        "audit",
        "DROP TABLE audit, chain_head, vigil_schema, hub_lease, inbox",
    );
    let mut fresh = PgStore::open(&t).unwrap();
    fresh.append(&mut records(0, 5)).unwrap();
    pg.sql("audit", "DELETE FROM audit WHERE seq = 5");
    let (seq, why) = first_bad(&mut fresh).unwrap();
    assert_eq!(seq, 5);
    assert!(why.contains("newest"), "{why}");

    // `vigil audit verify` says so and fails.
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &pg.url("audit"));
    let out = vigil(dir.path(), &file, PASSWORD, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("broken at seq 5"), "{}", text(&out));
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: PostgreSQL")]
fn concurrent_writers_on_two_connections_chain_one_after_another() {
    let pg = Pg::start("audit");
    let t = target(&pg, "audit");
    // Two writers, as two hubs would be: two connections, two threads.
    let writers: Vec<AuditWriter> = (0..2)
        .map(|_| {
            AnyStore::Postgres(PgStore::open(&t).unwrap())
                .into_writer()
                .unwrap()
        })
        .collect();
    let threads: Vec<_> = (0..8u64)
        .map(|i| {
            let w = writers[(i % 2) as usize].clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for j in 0..50u64 {
                    let got = w.append_blocking(records(i * 1000 + j * 3, 3)).unwrap();
                    seqs.extend(got.iter().map(|r| r.seq));
                }
                seqs
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=1200).collect::<Vec<_>>(),
        "every seq once, no gap"
    );
    let batched = writers
        .iter()
        .map(|w| w.stats())
        .map(|s| (s.commits, s.records))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(batched.1, 1200);
    for w in &writers {
        w.shutdown().unwrap();
    }
    let mut p = PgStore::open_read_only(&t).unwrap();
    let report = p.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, 1200);
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: PostgreSQL")]
fn vigil_audit_reads_the_configured_postgres_store() {
    let pg = Pg::start("audit");
    let t = target(&pg, "audit");
    let mut p = PgStore::open(&t).unwrap();
    p.append(&mut records(0, 12)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &pg.url("audit"));

    let out = vigil(dir.path(), &file, PASSWORD, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("ok: 12 records"), "{said}");
    assert!(
        said.contains(&format!("127.0.0.1:{}/audit", pg.port)),
        "{said}"
    );

    let out = vigil(dir.path(), &file, PASSWORD, &["audit", "tail", "-n", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let tail = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(tail.lines().count(), 2, "{tail}");
    assert!(tail.contains("sample 11"), "{tail}");

    let out = vigil(
        dir.path(),
        &file,
        PASSWORD,
        &["audit", "export", "--since", "10"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|v| v["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [11, 12]
    );
    assert_eq!(lines[1]["prev"], lines[0]["hash"]);
    assert!(
        !dir.path().join("data").join("vigil.db").exists(),
        "no SQLite file was made beside a PostgreSQL store"
    );

    // A hub on it copies the trail into its data dir (the copy it restores
    // from and serves audit reads from), holds the lease while it runs and
    // hands it back when it stops.
    let out = vigil(
        dir.path(),
        &file,
        PASSWORD,
        &["serve", "--listen", "127.0.0.1:0", "--duration", "2s"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let copy = vigil::store::Store::open_read_only(&dir.path().join("data")).unwrap();
    let (seq, hash) = copy.head().unwrap();
    assert!(seq >= 12, "{seq}");
    let mut p = PgStore::open(&t).unwrap();
    assert_eq!(
        p.hash_at(seq).unwrap(),
        Some(hash),
        "the copy chains as the store"
    );
    assert_eq!(p.head().unwrap().0, seq, "the copy is complete");
    assert_eq!(
        pg.sql("audit", "SELECT expires_at = '-infinity' FROM hub_lease")
            .trim(),
        "t",
        "a clean stop releases the lease"
    );
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: PostgreSQL")]
fn bad_setups_are_clear_and_never_show_the_password() {
    let pg = Pg::start("audit");
    let dir = tempfile::tempdir().unwrap();

    // A misspelt key is an error, not a silent check of another store.
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, format!("[store]\nuri = \"{}\"\n", pg.url("audit"))).unwrap();
    let out = vigil(dir.path(), &typo, PASSWORD, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("uri"), "{}", text(&out));

    // password_env without a url says so.
    std::fs::write(&typo, "[store]\npassword_env = \"X\"\n").unwrap();
    let out = vigil(dir.path(), &typo, PASSWORD, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("[store] url is not"), "{}", text(&out));

    // Nothing listening: the error names host and port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let url = format!("postgresql://vigil@127.0.0.1:{dead_port}/audit");
    let file = config(dir.path(), &url);
    let out = vigil(dir.path(), &file, PASSWORD, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "cannot reach the PostgreSQL server at 127.0.0.1:{dead_port}"
        )),
        "{said}"
    );

    // A wrong password: refused by the server, never echoed.
    let wrong = "wrong-Guess-5523";
    let file = config(dir.path(), &pg.url("audit"));
    let out = vigil(dir.path(), &file, wrong, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out);
    assert!(said.contains("password authentication failed"), "{said}");
    assert!(!said.contains(wrong) && !said.contains(PASSWORD), "{said}");
    let t = PgTarget::parse(&pg.url("audit"), Some("VIGIL_TEST_PG_WRONG")).unwrap();
    unsafe { std::env::set_var("VIGIL_TEST_PG_WRONG", wrong) };
    let e = PgStore::open(&t).unwrap_err();
    assert!(!format!("{e} {e:?}").contains(wrong), "{e:?}");

    // The variable named in the config is not set.
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--config")
        .arg(&file)
        .args(["audit", "verify"])
        .env("HOME", dir.path())
        .env_remove(PASSWORD_ENV)
        .output()
        .unwrap();
    assert!(
        text(&out).contains(&format!(
            "{PASSWORD_ENV} (named by [store] password_env) is not set"
        )),
        "{}",
        text(&out)
    );

    // A password in the URL is refused without being repeated.
    let file = config(
        dir.path(),
        &format!("postgresql://vigil:{PASSWORD}@127.0.0.1:{}/audit", pg.port),
    );
    let out = vigil(dir.path(), &file, PASSWORD, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("must not carry a password"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(PASSWORD), "{}", text(&out));

    // ~/.pgpass serves when no variable is named (and only when private).
    let t = PgTarget::parse(&pg.url("audit"), None).unwrap();
    let home = tempfile::tempdir().unwrap();
    let pass = home.path().join(".pgpass");
    std::fs::write(
        &pass,
        format!("127.0.0.1:{}:audit:vigil:{PASSWORD}\n", pg.port),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    unsafe { std::env::set_var("PGPASSFILE", &pass) };
    PgStore::open(&t).expect("password from the password file");
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        PgStore::open(&t).is_err(),
        "a readable password file is not used"
    );
    unsafe { std::env::remove_var("PGPASSFILE") };

    // A store written by a newer schema is refused, read-write and read-only.
    PgStore::open(&target(&pg, "audit")).unwrap();
    pg.sql("audit", "UPDATE vigil_schema SET version = 99");
    let e = PgStore::open(&target(&pg, "audit"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("schema version 99 is newer"), "{e}");
    let file = config(dir.path(), &pg.url("audit"));
    let out = vigil(dir.path(), &file, PASSWORD, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("schema version 99 is newer"),
        "{}",
        text(&out)
    );

    // A database with tables of its own is not taken over.
    pg.sql("postgres", "CREATE DATABASE other OWNER vigil");
    pg.sql("other", "CREATE TABLE audit (x int)");
    pg.sql("other", "ALTER TABLE audit OWNER TO vigil");
    let e = PgStore::open(&target(&pg, "other"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not belong to vigil"), "{e}");

    let log = pg.log();
    assert!(
        !log.contains(wrong) && !log.contains(PASSWORD),
        "server log: {log}"
    );
}

fn started(i: u64) -> Record {
    let mut r = record(i);
    r.kind = RecordKind::ActionStarted;
    r.action_id = Some(format!("A{i:04}"));
    r.attempt = Some(1);
    r
}

/// Waits for `lease` to become active; its epoch.
fn take_over(lease: &mut Lease) -> i64 {
    let t0 = Instant::now();
    loop {
        match lease.try_acquire().unwrap() {
            LeaseState::Active { epoch } => return epoch,
            LeaseState::Standby { .. } => {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "no takeover in 10 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: PostgreSQL")]
fn one_hub_holds_the_lease_and_a_hub_that_lost_it_never_starts_an_action() {
    let pg = Pg::start("audit");
    let t = target(&pg, "audit");
    let ttl = Duration::from_millis(1500);
    let mut a = Lease::open(&t, "hub-a", ttl).unwrap();
    let mut b = Lease::open(&t, "hub-b", ttl).unwrap();
    assert_eq!(a.try_acquire().unwrap(), LeaseState::Active { epoch: 1 });
    let standby = LeaseState::Standby {
        holder: "hub-a".into(),
        epoch: 1,
    };
    assert_eq!(b.try_acquire().unwrap(), standby);
    assert_eq!(
        a.try_acquire().unwrap(),
        LeaseState::Active { epoch: 1 },
        "a renewal keeps the epoch"
    );

    // A's writer starts an action while it holds the lease.
    let mut s = PgStore::open(&t).unwrap();
    s.set_fence(a.fence(1));
    let wa = AnyStore::Postgres(s).into_writer().unwrap();
    wa.append_blocking(vec![started(1)]).unwrap();

    // A stops renewing (stalled, cut off): B takes over once it expires.
    assert_eq!(take_over(&mut b), 2, "a takeover raises the epoch");
    let e = wa
        .append_blocking(vec![started(2)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not the active hub") && e.contains("epoch 2, held by hub-b"),
        "{e}"
    );
    // Records that start nothing (deliveries, its own notes) still go in.
    wa.append_blocking(vec![record(3)]).unwrap();
    // Back, A finds itself a standby.
    assert_eq!(
        a.try_acquire().unwrap(),
        LeaseState::Standby {
            holder: "hub-b".into(),
            epoch: 2
        }
    );
    let mut s = PgStore::open(&t).unwrap();
    s.set_fence(b.fence(2));
    let wb = AnyStore::Postgres(s).into_writer().unwrap();
    wb.append_blocking(vec![started(2)]).unwrap();

    // A clean stop hands over without waiting for the expiry.
    b.release().unwrap();
    assert_eq!(a.try_acquire().unwrap(), LeaseState::Active { epoch: 3 });
    let e = wb
        .append_blocking(vec![started(4)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not the active hub"), "{e}");

    // Holding the lease but not renewing it: starts stop at the expiry,
    // even with no other hub around.
    let mut s = PgStore::open(&t).unwrap();
    s.set_fence(a.fence(3));
    let mut s = AnyStore::Postgres(s);
    s.append(&mut [started(5)]).unwrap();
    std::thread::sleep(ttl + Duration::from_millis(300));
    let e = s.append(&mut [started(6)]).unwrap_err().to_string();
    assert!(e.contains("lease (epoch 3) expired"), "{e}");

    // The lease's connection is killed: renewing fails, it never claims
    // to be active.
    pg.sql(
        "audit",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = 'audit' AND usename = 'vigil' AND pid <> pg_backend_pid()",
    );
    assert!(a.try_acquire().is_err());

    for w in [wa, wb] {
        w.shutdown().unwrap();
    }
    let mut r = PgStore::open_read_only(&t).unwrap();
    assert!(r.verify().unwrap().is_ok());
    let starts = AuditFilter {
        kind: Some("action_started".into()),
        ..Default::default()
    };
    let ids: Vec<String> = r
        .page(&starts, None, 100)
        .unwrap()
        .into_iter()
        .filter_map(|r| r.action_id)
        .collect();
    assert_eq!(ids, ["A0005", "A0002", "A0001"], "only the holders' starts");
}

/// A data dir whose SQLite trail is not a copy of the shared one (it ran on
/// SQLite alone) is refused at start with what to do, never merged into the
/// shared trail; an empty data dir beside it starts and copies the trail.
#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: PostgreSQL")]
fn a_hub_refuses_a_data_dir_that_is_not_a_copy_of_the_shared_trail() {
    let pg = Pg::start("audit");
    let t = target(&pg, "audit");
    PgStore::open(&t)
        .unwrap()
        .append(&mut records(0, 5))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &pg.url("audit"));
    // `vigil serve` on the data dir: exit 1, and what it said.
    let serve_refused = || {
        let out = vigil(
            dir.path(),
            &file,
            PASSWORD,
            &["serve", "--listen", "127.0.0.1:0", "--duration", "1s"],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        text(&out)
    };
    // Its own SQLite trail, longer than the shared one.
    Store::open(&dir.path().join("data"))
        .unwrap()
        .append(&mut records(100, 8))
        .unwrap();
    let said = serve_refused();
    assert!(said.contains("needs a data dir of its own"), "{said}");
    // Nothing of it reached the shared trail.
    assert_eq!(PgStore::open(&t).unwrap().head().unwrap().0, 5);

    // Same length, other records: refused too (record 5 differs).
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    Store::open(&dir.path().join("data"))
        .unwrap()
        .append(&mut records(200, 5))
        .unwrap();
    let said = serve_refused();
    assert!(said.contains("record 5 differs"), "{said}");
}
