use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use serde_json::json;

use super::*;
use crate::model::{Record, RecordKind, Time};

fn t(s: &str) -> Time {
    s.parse().expect("test time")
}

fn rec(kind: RecordKind, at: &str) -> Record {
    Record::new(kind, t(at))
}

fn signal(i: u64) -> Record {
    let mut r = rec(RecordKind::Signal, "2026-03-01T00:00:00Z");
    r.at += chrono::Duration::seconds(i as i64);
    r.target = Some(format!("web-{}", i % 3));
    r.runbook = Some(
        if i.is_multiple_of(2) {
            "disk_cleanup"
        } else {
            "service_restart"
        }
        .into(),
    );
    r.detail = Some(format!("sample {i}"));
    r.value = Some(i as f64 / 4.0);
    r
}

fn filled(dir: &Path, n: u64) -> Store {
    let mut s = Store::open(dir).unwrap();
    let mut recs: Vec<Record> = (0..n).map(signal).collect();
    s.append(&mut recs).unwrap();
    s
}

fn raw(dir: &Path) -> Connection {
    Connection::open(dir.join(DB_FILE)).unwrap()
}

fn first_bad(s: &Store) -> Option<u64> {
    s.verify().unwrap().first_bad.map(|b| b.seq)
}

#[test]
fn append_numbers_records_and_reopen_continues_seq() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.last_seq().unwrap(), 0);
        let mut recs = vec![signal(0), signal(1), signal(2)];
        let at = recs[1].at;
        s.append(&mut recs).unwrap();
        assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(recs[1].at, at, "at is kept as given");
        let mut one = vec![signal(3)];
        s.append(&mut one).unwrap();
        assert_eq!(one[0].seq, 4);
    }
    let mut s = Store::open(dir.path()).unwrap();
    assert_eq!(s.last_seq().unwrap(), 4);
    let mut recs = vec![signal(4), signal(5)];
    s.append(&mut recs).unwrap();
    assert_eq!(recs[0].seq, 5);
    assert_eq!(recs[1].seq, 6);
    assert!(s.verify().unwrap().is_ok());
    assert_eq!(s.verify().unwrap().records, 6);
    // The stored JSON is the canonical JSON of the numbered record.
    assert_eq!(s.get(6).unwrap().unwrap(), recs[1]);
}

#[test]
fn hashes_follow_the_documented_formula() {
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 3);
    let c = raw(dir.path());
    let mut prev = GENESIS_PREV.to_string();
    for seq in 1..=3i64 {
        let (json, p, h): (String, String, String) = c
            .query_row(
                "SELECT json, prev, hash FROM audit WHERE seq = ?1",
                [seq],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(p, prev);
        let mut hasher = Sha256::new();
        hasher.update(format!("{prev}\n{json}").as_bytes());
        assert_eq!(h, hex::encode(hasher.finalize()));
        assert!(json.starts_with(&format!("{{\"seq\":{seq},")));
        prev = h;
    }
    drop(s);
}

#[test]
fn verify_passes_on_a_clean_trail() {
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 100);
    let r = s.verify().unwrap();
    assert_eq!(
        r,
        VerifyReport {
            records: 100,
            first_bad: None
        }
    );
    // Also read-only, and on an empty store.
    let ro = Store::open_read_only(dir.path()).unwrap();
    assert!(ro.verify().unwrap().is_ok());
    let empty = tempfile::tempdir().unwrap();
    let e = Store::open(empty.path()).unwrap();
    assert_eq!(e.verify().unwrap().records, 0);
    assert!(e.verify().unwrap().is_ok());
}

#[test]
fn altered_json_is_reported_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 20);
    raw(dir.path())
        .execute(
            "UPDATE audit SET json = replace(json, 'sample 6', 'sample 666') WHERE seq = 7",
            [],
        )
        .unwrap();
    let r = s.verify().unwrap();
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.seq, 7, "{}", bad.why);
    assert!(bad.why.contains("hash"), "{}", bad.why);
}

#[test]
fn altered_hash_is_reported_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 20);
    raw(dir.path())
        .execute(
            "UPDATE audit SET hash = ?1 WHERE seq = 12",
            [GENESIS_PREV.replace('0', "a")],
        )
        .unwrap();
    assert_eq!(first_bad(&s), Some(12));
}

#[test]
fn recomputed_hash_is_still_caught_by_the_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 20);
    let c = raw(dir.path());
    let (json, prev): (String, String) = c
        .query_row("SELECT json, prev FROM audit WHERE seq = 5", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let json = json.replace("sample 4", "sample 44");
    c.execute(
        "UPDATE audit SET json = ?1, hash = ?2 WHERE seq = 5",
        [&json, &chain_hash(&prev, &json)],
    )
    .unwrap();
    assert_eq!(first_bad(&s), Some(6));
}

#[test]
fn deleted_rows_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 20);
    let c = raw(dir.path());
    c.execute("DELETE FROM audit WHERE seq = 9", []).unwrap();
    let bad = s.verify().unwrap().first_bad.unwrap();
    assert_eq!(bad.seq, 9, "{}", bad.why);
    assert!(bad.why.contains("missing"), "{}", bad.why);

    // The first record.
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 5);
    raw(dir.path())
        .execute("DELETE FROM audit WHERE seq = 1", [])
        .unwrap();
    assert_eq!(first_bad(&s), Some(1));

    // Renumbering after a delete does not help: the chain breaks.
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 10);
    let c = raw(dir.path());
    c.execute_batch(
        "DELETE FROM audit WHERE seq = 4; UPDATE audit SET seq = seq - 1 WHERE seq > 4;",
    )
    .unwrap();
    assert_eq!(first_bad(&s), Some(4));

    // The newest records: caught by the chain head.
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 10);
    raw(dir.path())
        .execute("DELETE FROM audit WHERE seq >= 9", [])
        .unwrap();
    let bad = s.verify().unwrap().first_bad.unwrap();
    assert_eq!(bad.seq, 9, "{}", bad.why);
}

#[test]
fn swapped_rows_are_reported_at_the_first_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 20);
    let c = raw(dir.path());
    let j5: String = c
        .query_row("SELECT json FROM audit WHERE seq = 5", [], |r| r.get(0))
        .unwrap();
    let j14: String = c
        .query_row("SELECT json FROM audit WHERE seq = 14", [], |r| r.get(0))
        .unwrap();
    c.execute("UPDATE audit SET json = ?1 WHERE seq = 5", [&j14])
        .unwrap();
    c.execute("UPDATE audit SET json = ?1 WHERE seq = 14", [&j5])
        .unwrap();
    let bad = s.verify().unwrap().first_bad.unwrap();
    assert_eq!(bad.seq, 5, "{}", bad.why);

    // Swapping whole rows (json, prev and hash) is caught as well.
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 20);
    raw(dir.path())
        .execute_batch(
            "UPDATE audit SET seq = -1 WHERE seq = 7;
             UPDATE audit SET seq = 7 WHERE seq = 8;
             UPDATE audit SET seq = 8 WHERE seq = -1;",
        )
        .unwrap();
    assert_eq!(first_bad(&s), Some(7));
}

#[test]
fn json_seq_must_match_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path(), 5);
    let c = raw(dir.path());
    // Rewrite record 3 to claim seq 30, recomputing its hash and the rest of
    // the chain, so only the seq check can notice.
    let mut prev: String = c
        .query_row("SELECT hash FROM audit WHERE seq = 2", [], |r| r.get(0))
        .unwrap();
    for seq in 3..=5i64 {
        let json: String = c
            .query_row("SELECT json FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
            .unwrap();
        let json = if seq == 3 {
            json.replacen("{\"seq\":3,", "{\"seq\":30,", 1)
        } else {
            json
        };
        let hash = chain_hash(&prev, &json);
        c.execute(
            "UPDATE audit SET json = ?1, prev = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![json, prev, hash, seq],
        )
        .unwrap();
        prev = hash;
    }
    c.execute("UPDATE chain_head SET hash = ?1", [&prev])
        .unwrap();
    let bad = s.verify().unwrap().first_bad.unwrap();
    assert_eq!(bad.seq, 3);
    assert!(bad.why.contains("seq 30"), "{}", bad.why);
}

#[test]
fn json_seq_reads_canonical_and_other_shapes() {
    assert_eq!(json_seq(r#"{"seq":12,"at":"x"}"#), Some(12));
    assert_eq!(json_seq(r#"{"seq":12}"#), Some(12));
    assert_eq!(json_seq(r#"{"at":"x", "seq": 7}"#), Some(7));
    assert_eq!(json_seq(r#"{"seq":-1,"at":"x"}"#), None);
    assert_eq!(json_seq("garbage"), None);
}

#[test]
fn load_state_reflects_actions_breakers_modes_alerts_and_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let mut labels = Labels::new();
    labels.insert("alertname".into(), "DiskSpaceLow".into());
    labels.insert("host".into(), "web-1".into());

    let mut firing = rec(RecordKind::AlertFiring, "2026-03-01T10:00:00Z");
    firing.alert = Some("DiskSpaceLow".into());
    firing.labels = Some(labels.clone());
    firing.severity = Some(Severity::Critical);

    let mut other = rec(RecordKind::AlertFiring, "2026-03-01T10:00:01Z");
    other.alert = Some("ServiceDown".into());
    other.fingerprint = Some("ffff000011112222".into());
    let mut other_resolved = rec(RecordKind::AlertResolved, "2026-03-01T10:00:30Z");
    other_resolved.fingerprint = Some("ffff000011112222".into());

    let mut proposed = rec(RecordKind::ActionProposed, "2026-03-01T10:01:00Z");
    proposed.action_id = Some("A000001".into());
    proposed.runbook = Some("disk_cleanup".into());
    proposed.target = Some("web-1".into());
    proposed.alert = Some("DiskSpaceLow".into());
    proposed.params = Some(BTreeMap::from([("mountpoint".into(), "/var".into())]));
    let mut started = rec(RecordKind::ActionStarted, "2026-03-01T10:01:05Z");
    started.action_id = Some("A000001".into());
    started.attempt = Some(1);
    let mut succeeded = rec(RecordKind::ActionSucceeded, "2026-03-01T10:01:09Z");
    succeeded.action_id = Some("A000001".into());

    let mut old_start = rec(RecordKind::ActionStarted, "2026-02-27T10:00:00Z");
    old_start.action_id = Some("A000000".into());
    old_start.runbook = Some("disk_cleanup".into());
    old_start.target = Some("web-1".into());

    let mut opened = rec(RecordKind::CircuitOpened, "2026-03-01T10:02:00Z");
    opened.runbook = Some("service_restart".into());
    opened.target = Some("web-2".into());
    opened.reason = Some("4 runs in 10m".into());
    let mut opened2 = opened.clone();
    opened2.target = Some("web-3".into());
    let mut closed = rec(RecordKind::CircuitClosed, "2026-03-01T10:03:00Z");
    closed.runbook = Some("service_restart".into());
    closed.target = Some("web-3".into());
    closed.actor = Some("alice".into());

    let mut mode1 = rec(RecordKind::ModeChanged, "2026-03-01T10:04:00Z");
    mode1.data = Some(json!({"dry_run": true, "frozen": false}));
    let mut mode2 = rec(RecordKind::ModeChanged, "2026-03-01T10:05:00Z");
    mode2.data = Some(json!({"frozen": true}));

    let mut recs = vec![
        old_start,
        firing,
        other,
        other_resolved,
        proposed,
        started,
        succeeded,
        opened,
        opened2,
        closed,
        mode1,
        mode2,
    ];
    s.append(&mut recs).unwrap();

    let check = |st: &PersistedState| {
        assert_eq!(st.last_seq, 12);
        // Only the action still running is loaded; the finished one counts
        // for the next id.
        assert_eq!(st.actions.len(), 1, "{:?}", st.actions);
        let a = &st.actions[0];
        assert_eq!(a.state, RecordKind::ActionStarted);
        assert_eq!(a.action_id, "A000000");
        assert_eq!(a.runbook.as_deref(), Some("disk_cleanup"));
        assert_eq!(a.target.as_deref(), Some("web-1"));
        assert_eq!(a.first_at, t("2026-02-27T10:00:00Z"));
        assert_eq!(st.max_action, 1);

        assert_eq!(st.breakers.len(), 1);
        assert_eq!(st.breakers[0].runbook, "service_restart");
        assert_eq!(st.breakers[0].target, "web-2");
        assert_eq!(st.breakers[0].opened_at, t("2026-03-01T10:02:00Z"));
        assert_eq!(st.breakers[0].reason.as_deref(), Some("4 runs in 10m"));

        assert_eq!(st.dry_run, Some(true));
        assert_eq!(st.frozen, Some(true));

        assert_eq!(st.firing_alerts.len(), 1);
        let al = &st.firing_alerts[0];
        assert_eq!(al.fingerprint, crate::model::fingerprint(&labels));
        assert_eq!(al.alert.as_deref(), Some("DiskSpaceLow"));
        assert_eq!(al.labels, labels);
        assert_eq!(al.severity, Some(Severity::Critical));

        // Only the start within 24h; runbook/target come from the action.
        assert_eq!(st.recent_starts.len(), 1);
        let start = &st.recent_starts[0];
        assert_eq!(start.runbook, "disk_cleanup");
        assert_eq!(start.target, "web-1");
        assert_eq!(start.at, t("2026-03-01T10:01:05Z"));
    };
    let now = t("2026-03-01T12:00:00Z");
    let st = s.load_state_at(now).unwrap();
    check(&st);

    // Survives a reopen, and a rebuild from the trail gives the same state.
    drop(s);
    let mut s = Store::open(dir.path()).unwrap();
    assert_eq!(s.load_state_at(now).unwrap(), st);
    s.rebuild_state().unwrap();
    assert_eq!(s.load_state_at(now).unwrap(), st);
    let ro = Store::open_read_only(dir.path()).unwrap();
    check(&ro.load_state_at(now).unwrap());

    // Closing without a target closes every breaker of the runbook; a
    // resolved-then-firing alert starts a new episode.
    let mut reset = rec(RecordKind::CircuitClosed, "2026-03-01T11:00:00Z");
    reset.runbook = Some("service_restart".into());
    let mut refire = rec(RecordKind::AlertFiring, "2026-03-01T11:00:00Z");
    refire.fingerprint = Some("ffff000011112222".into());
    s.append(&mut [reset, refire]).unwrap();
    let st = s.load_state_at(now).unwrap();
    assert!(st.breakers.is_empty());
    assert_eq!(st.firing_alerts.len(), 2);
    let re = &st.firing_alerts[1];
    assert_eq!(re.since, t("2026-03-01T11:00:00Z"));
    assert_eq!(re.alert.as_deref(), Some("ServiceDown"), "kept from before");
}

#[test]
fn not_a_database_is_a_clear_error_and_the_file_is_untouched() {
    for junk in [
        b"this is my shopping list, not a database\n".repeat(200),
        b"hello".to_vec(),
        vec![0xffu8; 4096],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        std::fs::write(&path, &junk).unwrap();
        for res in [Store::open(dir.path()), Store::open_read_only(dir.path())] {
            let err = res.unwrap_err();
            assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("not an SQLite database"), "{msg}");
            assert_eq!(err.path(), path);
        }
        assert!(AuditWriter::open(dir.path()).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), junk);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no -wal or -shm files were created");
    }
    // A directory where the file should be.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(DB_FILE)).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains(DB_FILE), "{err}");
}

#[test]
fn foreign_and_newer_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = raw(dir.path());
        c.execute_batch("CREATE TABLE shopping (item TEXT); INSERT INTO shopping VALUES ('milk');")
            .unwrap();
    }
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains(DB_FILE), "{err}");

    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 3));
    raw(dir.path())
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    for res in [Store::open(dir.path()), Store::open_read_only(dir.path())] {
        let err = res.unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
        assert!(err.to_string().contains(DB_FILE), "{err}");
    }
}

#[test]
fn read_only_store_needs_an_existing_trail_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_read_only(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    assert!(!dir.path().join(DB_FILE).exists());
    drop(filled(dir.path(), 2));
    let mut ro = Store::open_read_only(dir.path()).unwrap();
    let err = ro.append(&mut [signal(9)]).unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    assert!(AuditWriter::spawn(ro).is_err());
}

#[test]
fn migrations_set_the_version_and_header() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let c = raw(dir.path());
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let app: i64 = c
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, schema::current_version());
    assert_eq!(app, schema::APPLICATION_ID);
    assert_eq!(mode, "wal");
    // Reopening does not migrate again; commits are fully synced.
    let s = Store::open(dir.path()).unwrap();
    let sync: i64 = s
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
}

#[test]
fn tail_since_page_count_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = filled(dir.path(), 30);
    let mut alice = signal(30);
    alice.actor = Some("alice".into());
    alice.kind = RecordKind::ActionApproved;
    s.append(&mut [alice]).unwrap();

    let tail = s.tail(3).unwrap();
    assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), [29, 30, 31]);
    assert_eq!(s.tail(100).unwrap().len(), 31);
    assert!(s.tail(0).unwrap().is_empty());

    let since = s.since(10, 5).unwrap();
    assert_eq!(
        since.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [11, 12, 13, 14, 15]
    );

    let all = AuditFilter::default();
    assert_eq!(s.count(&all).unwrap(), 31);
    let web1 = AuditFilter {
        target: Some("web-1".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.count(&web1).unwrap(), 10);
    let p1 = s.page(&web1, None, 4).unwrap();
    assert_eq!(
        p1.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [29, 26, 23, 20]
    );
    let p2 = s.page(&web1, Some(20), 4).unwrap();
    assert_eq!(
        p2.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [17, 14, 11, 8]
    );
    let both = AuditFilter {
        target: Some("web-1".into()),
        runbook: Some("disk_cleanup".into()),
        kind: Some("signal".into()),
        actor: None,
    };
    assert!(
        s.page(&both, None, 100)
            .unwrap()
            .iter()
            .all(|r| r.target.as_deref() == Some("web-1")
                && r.runbook.as_deref() == Some("disk_cleanup"))
    );
    assert_eq!(s.count(&both).unwrap(), 5);
    let by_actor = AuditFilter {
        actor: Some("alice".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.page(&by_actor, None, 10).unwrap()[0].seq, 31);
    let by_kind = AuditFilter {
        kind: Some("action_approved".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.count(&by_kind).unwrap(), 1);

    // A value never recorded matches nothing.
    let nobody = AuditFilter {
        actor: Some("mallory".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.count(&nobody).unwrap(), 0);
    assert!(s.page(&nobody, None, 10).unwrap().is_empty());

    // A filtered page seeks the tag index: no scan of the trail.
    let plan: Vec<String> = s
        .conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT a.seq, a.json FROM audit_tags t JOIN audit a ON a.seq = t.seq
             WHERE t.bucket = ?1 AND t.tag = ?2 AND t.seq < ?3 ORDER BY t.seq DESC LIMIT ?4",
        )
        .unwrap()
        .query_map(rusqlite::params![0, 1, i64::MAX, 10], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter().all(|p| p.starts_with("SEARCH")) && plan.len() == 2,
        "{plan:?}"
    );

    let mut out = Vec::new();
    assert_eq!(s.export_jsonl(&mut out, None).unwrap(), 31);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 31);
    let mut prev = GENESIS_PREV.to_string();
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seq"], json!(i + 1));
        assert_eq!(v["prev"], json!(prev));
        // A reader can recompute the hash from the line: drop prev and hash.
        let canonical = line
            .split_once(",\"prev\":")
            .map(|(body, _)| format!("{body}}}"))
            .unwrap();
        let rec: Record = serde_json::from_str(&canonical).unwrap();
        assert_eq!(rec.canonical_json(), canonical);
        assert_eq!(v["hash"], json!(chain_hash(&prev, &canonical)));
        prev = v["hash"].as_str().unwrap().to_string();
    }
    let mut out = Vec::new();
    assert_eq!(s.export_jsonl(&mut out, Some(28)).unwrap(), 3);
    assert!(String::from_utf8(out).unwrap().starts_with("{\"seq\":29,"));
}

#[test]
fn a_failed_commit_leaves_records_unnumbered_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = filled(dir.path(), 3);
    raw(dir.path())
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON audit WHEN NEW.seq = 5
             BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
        )
        .unwrap();
    let mut recs = vec![signal(3), signal(4)];
    let err = s.append(&mut recs).unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert!(err.to_string().contains(DB_FILE), "{err}");
    assert_eq!(recs[0].seq, 0);
    assert_eq!(recs[1].seq, 0);
    assert_eq!(s.last_seq().unwrap(), 3);
    raw(dir.path()).execute_batch("DROP TRIGGER boom").unwrap();
    s.append(&mut recs).unwrap();
    assert_eq!(recs[1].seq, 5);
    assert!(s.verify().unwrap().is_ok());
}

#[test]
fn concurrent_writer_appends_make_a_gap_free_verified_chain() {
    let dir = tempfile::tempdir().unwrap();
    let w = AuditWriter::open(dir.path()).unwrap();
    let threads = 8;
    let per = 60;
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let w = w.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for j in 0..per {
                    let n = if j % 5 == 0 { 3 } else { 1 };
                    let recs: Vec<Record> = (0..n).map(|k| signal(i * 1000 + j * 10 + k)).collect();
                    let back = w.append_blocking(recs.clone()).unwrap();
                    assert_eq!(back.len(), recs.len());
                    for (b, r) in back.iter().zip(&recs) {
                        assert_eq!(b.detail, r.detail);
                    }
                    // A request's records are consecutive.
                    for pair in back.windows(2) {
                        assert_eq!(pair[1].seq, pair[0].seq + 1);
                    }
                    seqs.extend(back.iter().map(|r| r.seq));
                }
                seqs
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    w.flush().unwrap();
    all.sort_unstable();
    let expected = threads * (per / 5 * 3 + per - per / 5);
    assert_eq!(all, (1..=expected).collect::<Vec<_>>());
    let ro = Store::open_read_only(dir.path()).unwrap();
    let report = ro.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, expected);
    // Serialised by the callers, numbered by the writer: every stored JSON
    // is the canonical JSON of the stored record.
    let mut stmt = ro
        .conn
        .prepare("SELECT json FROM audit ORDER BY seq")
        .unwrap();
    let stored: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for json in &stored {
        let rec: Record = serde_json::from_str(json).unwrap();
        assert_eq!(&rec.canonical_json(), json);
    }
    let stats = w.stats();
    assert_eq!(stats.records, expected);
    assert_eq!(stats.requests, threads * per + 1, "appends and the flush");
    assert_eq!(stats.failed_requests, 0);
    assert!(stats.commits >= 1 && stats.commits <= threads * per);
    assert!(stats.max_batch >= 1);
    w.shutdown().unwrap();
    let err = w.append_blocking(vec![signal(1)]).unwrap_err();
    assert!(matches!(err, StoreError::WriterClosed { .. }), "{err}");
}

#[test]
fn async_appends_through_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let w = AuditWriter::open(dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let seqs = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..50 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.append(vec![signal(i), signal(i + 100)]).await
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.extend(t.await.unwrap().unwrap().into_iter().map(|r| r.seq));
        }
        w.flush_async().await.unwrap();
        // Blocking from inside the runtime does not panic either.
        let r = w.append_blocking(vec![signal(7)]).unwrap();
        seqs.push(r[0].seq);
        seqs
    });
    let mut seqs = seqs;
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=101).collect::<Vec<_>>());
    drop(w);
    assert!(Store::open(dir.path()).unwrap().verify().unwrap().is_ok());
}

#[test]
fn a_failed_group_commit_is_reported_to_every_requester() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 2));
    let w = AuditWriter::open(dir.path()).unwrap();
    raw(dir.path())
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON audit
             BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
        )
        .unwrap();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let w = w.clone();
            std::thread::spawn(move || w.append_blocking(vec![signal(i)]))
        })
        .collect();
    for h in handles {
        let err = h.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
    }
    assert_eq!(w.stats().failed_requests, 6);
    assert_eq!(w.stats().records, 0);
    raw(dir.path()).execute_batch("DROP TRIGGER boom").unwrap();
    let back = w.append_blocking(vec![signal(9)]).unwrap();
    assert_eq!(back[0].seq, 3, "no seq was used up by the failure");
    w.shutdown().unwrap();
    assert!(Store::open(dir.path()).unwrap().verify().unwrap().is_ok());
}

#[test]
fn dropping_the_last_handle_commits_what_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let w = AuditWriter::open(dir.path()).unwrap();
    let w2 = w.clone();
    let h = std::thread::spawn(move || w2.append_blocking(vec![signal(1), signal(2)]));
    assert_eq!(h.join().unwrap().unwrap().len(), 2);
    drop(w);
    let s = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(s.last_seq().unwrap(), 2);
}

const CRASH_ENV: &str = "VIGIL_STORE_CRASH_DIR";

/// The child half of `acknowledged_records_survive_a_crash`: appends from
/// several threads, prints every acknowledged seq, then aborts the process
/// without flushing, closing or checkpointing anything.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let w = AuditWriter::open(Path::new(&dir)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let _threads: Vec<_> = (0..4)
        .map(|i| {
            let (w, stop, out) = (w.clone(), stop.clone(), out.clone());
            std::thread::spawn(move || {
                let mut j = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let back = w.append_blocking(vec![signal(i * 100_000 + j)]).unwrap();
                    let mut o = out.lock().unwrap();
                    writeln!(
                        o,
                        "ACK {} {}",
                        back[0].seq,
                        back[0].detail.as_deref().unwrap()
                    )
                    .unwrap();
                    o.flush().unwrap();
                    j += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Crash while the threads are still appending.
    let _hold = out.lock().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    std::process::abort();
}

#[test]
fn acknowledged_records_survive_a_crash() {
    if std::env::var_os(CRASH_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "store::tests::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_ENV, dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child should have aborted");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let acked: Vec<(u64, String)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ACK "))
        .map(|l| {
            let (seq, detail) = l.split_once(' ').unwrap();
            (seq.parse().unwrap(), detail.to_string())
        })
        .collect();
    assert!(acked.len() > 10, "child acknowledged too little: {stdout}");
    // The child left its WAL behind; a new writer recovers it.
    let s = Store::open(dir.path()).unwrap();
    let report = s.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    for (seq, detail) in &acked {
        let r = s.get(*seq).unwrap().unwrap_or_else(|| panic!("lost {seq}"));
        assert_eq!(r.detail.as_deref(), Some(detail.as_str()));
    }
    assert!(report.records >= acked.len() as u64);
}

#[test]
fn the_next_action_number_survives_ids_growing_a_digit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let mut recs = Vec::new();
    for (i, id) in ["A999998", "A999999", "A1000000"].iter().enumerate() {
        let mut p = rec(RecordKind::ActionProposed, "2026-03-01T10:01:00Z");
        p.action_id = Some(id.to_string());
        p.runbook = Some("disk_cleanup".into());
        p.target = Some(format!("web-{i}"));
        let mut done = rec(RecordKind::ActionSucceeded, "2026-03-01T10:01:09Z");
        done.action_id = Some(id.to_string());
        recs.push(p);
        recs.push(done);
    }
    s.append(&mut recs).unwrap();
    let st = s.load_state().unwrap();
    assert!(st.actions.is_empty());
    assert_eq!(st.max_action, 1_000_000);
}

/// The `actions` rows are merged per transaction: appending an action's
/// records together must leave exactly the rows that appending them one by
/// one does (values replaced only by present ones, first_* from the first).
#[test]
fn action_rows_are_the_same_however_records_are_batched() {
    let mut recs = Vec::new();
    for (i, (id, kind)) in [
        ("A000001", RecordKind::ActionProposed),
        ("A000002", RecordKind::ActionProposed),
        ("A000001", RecordKind::ActionApproved),
        ("A000001", RecordKind::ActionStarted),
        ("A000002", RecordKind::ActionBlocked),
        ("A000001", RecordKind::ActionFailed),
        ("A000001", RecordKind::ActionStarted),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = rec(kind, "2026-03-01T10:00:00Z");
        r.at += chrono::Duration::seconds(i as i64);
        r.action_id = Some(id.into());
        if kind == RecordKind::ActionProposed {
            r.runbook = Some("disk_cleanup".into());
            r.target = Some(format!("web-{i}"));
            r.alert = Some("DiskSpaceLow".into());
            r.params = Some(BTreeMap::from([("mountpoint".into(), "/var".into())]));
        }
        if kind == RecordKind::ActionStarted {
            r.attempt = Some(i as u32);
        }
        if i == 5 {
            r.target = Some("web-9".into()); // a later value replaces
            r.params = Some(BTreeMap::from([("mountpoint".into(), "/srv".into())]));
        }
        recs.push(r);
    }
    let rows = |dir: &Path| -> Vec<Vec<String>> {
        let c = raw(dir);
        let mut stmt = c
            .prepare("SELECT * FROM actions ORDER BY action_id")
            .unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |row| {
            Ok((0..n)
                .map(|i| match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    v => format!("{v:?}"),
                })
                .collect())
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let starts = |dir: &Path| -> Vec<(String, String, i64)> {
        let c = raw(dir);
        let mut stmt = c
            .prepare("SELECT runbook, target, seq FROM action_starts ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };

    let one_by_one = tempfile::tempdir().unwrap();
    let mut s = Store::open(one_by_one.path()).unwrap();
    for r in recs.clone() {
        s.append(&mut [r]).unwrap();
    }
    drop(s);
    let together = tempfile::tempdir().unwrap();
    let mut s = Store::open(together.path()).unwrap();
    let mut all = recs.clone();
    s.append(&mut all).unwrap();

    let expected = rows(one_by_one.path());
    assert_eq!(expected.len(), 2);
    // A000001: target and params from the later record, attempt from the
    // last start, first_seq 1 and last_seq 7.
    let a1 = &expected[0];
    assert_eq!(a1[2], "web-9");
    assert!(a1.iter().any(|v| v.contains("/srv")), "{a1:?}");
    assert_eq!(a1[6], "action_started");
    assert_eq!(a1[9], "Integer(6)");
    assert_eq!(
        (a1[10].as_str(), a1[11].as_str()),
        ("Integer(1)", "Integer(7)")
    );
    assert_eq!(rows(together.path()), expected);
    // Starts take the runbook and target the action had at that moment.
    let st = starts(one_by_one.path());
    assert_eq!(
        st,
        vec![
            ("disk_cleanup".to_string(), "web-0".to_string(), 4),
            ("disk_cleanup".to_string(), "web-9".to_string(), 7)
        ]
    );
    assert_eq!(starts(together.path()), st);

    // A rebuild from the trail gives the same rows too.
    s.rebuild_state().unwrap();
    assert_eq!(rows(together.path()), expected);
}

/// The writer leaves copying the WAL into the database to its checkpoint
/// thread: while it runs, the database file grows and the WAL stops
/// growing once a checkpoint has caught up (it is reused from the start).
#[test]
fn the_writer_checkpoints_the_wal_beside_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let w = AuditWriter::open(dir.path()).unwrap();
    let db = dir.path().join(DB_FILE);
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let empty_db = size(&db);
    let mut n = 0;
    let mut wal_after_first = None;
    // Up to 40 rounds of 1,000 records: checkpoints are asked for every
    // 2,000, so the database must have grown long before the end.
    for round in 0..40 {
        w.append_blocking((n..n + 1000).map(signal).collect())
            .unwrap();
        n += 1000;
        if size(&db) > empty_db + (256 << 10) {
            wal_after_first.get_or_insert((round, size(&wal)));
        }
    }
    let (round, wal_then) = wal_after_first.expect("the database file grew while the writer ran");
    assert!(round < 20, "first checkpoint only after round {round}");
    // 40,000 records are about 15 MB of pages; a WAL that is reused stays
    // well under that.
    assert!(
        size(&wal) < 12 << 20,
        "WAL grew to {} bytes (was {wal_then})",
        size(&wal)
    );
    drop(w);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.last_seq().unwrap(), 40_000);
    assert!(s.verify().unwrap().is_ok());
}

/// Records whose tag values vary, so that filters select irregular subsets.
fn varied(i: u64) -> Record {
    let kinds = [
        RecordKind::ActionProposed,
        RecordKind::ActionApproved,
        RecordKind::Signal,
        RecordKind::ActionBlocked,
    ];
    let mut r = rec(kinds[(i * 7 % 4) as usize], "2026-03-01T00:00:00Z");
    r.at += chrono::Duration::seconds(i as i64);
    r.target = (!i.is_multiple_of(11)).then(|| format!("h{}", i * i % 13));
    r.runbook = i
        .is_multiple_of(3)
        .then(|| ["disk_cleanup", "service_restart"][(i / 3 % 2) as usize].into());
    r.actor = Some(if i % 97 == 5 { "alice" } else { "vigil" }.into());
    r
}

fn matches(f: &AuditFilter, r: &Record) -> bool {
    let eq =
        |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
    eq(&f.target, r.target.as_deref())
        && eq(&f.runbook, r.runbook.as_deref())
        && eq(&f.kind, Some(r.kind.as_str()))
        && eq(&f.actor, r.actor.as_deref())
}

/// The seqs of the records of `all` that `f` selects, newest first.
fn scanned(all: &[Record], f: &AuditFilter) -> Vec<u64> {
    all.iter()
        .rev()
        .filter(|r| matches(f, r))
        .map(|r| r.seq)
        .collect()
}

/// Every page of `f`, newest first, `per` records at a time.
fn all_pages(s: &Store, f: &AuditFilter, per: usize) -> Vec<u64> {
    let (mut seqs, mut before) = (Vec::new(), None);
    loop {
        let page = s.page(f, before, per).unwrap();
        assert!(page.len() <= per);
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        seqs.extend(page.iter().map(|r| r.seq));
    }
    seqs
}

fn some_filters() -> Vec<AuditFilter> {
    let f = |target: Option<&str>,
             runbook: Option<&str>,
             kind: Option<&str>,
             actor: Option<&str>| AuditFilter {
        target: target.map(Into::into),
        runbook: runbook.map(Into::into),
        kind: kind.map(Into::into),
        actor: actor.map(Into::into),
    };
    vec![
        f(Some("h4"), None, None, None),
        f(Some("h0"), Some("disk_cleanup"), None, None),
        f(None, Some("service_restart"), Some("signal"), None),
        f(None, None, Some("action_blocked"), Some("vigil")),
        f(None, None, None, Some("alice")),
        f(
            Some("h1"),
            Some("disk_cleanup"),
            Some("action_proposed"),
            Some("vigil"),
        ),
        f(None, None, Some("circuit_opened"), None),
    ]
}

/// Paging and counting through the tag index agree with reading every
/// record, across many buckets of the index and at their edges.
#[test]
fn filtered_pages_and_counts_agree_with_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let n = 3 * 1024 + 100;
    for chunk in (0..n).collect::<Vec<u64>>().chunks(700) {
        let mut recs: Vec<Record> = chunk.iter().map(|&i| varied(i)).collect();
        s.append(&mut recs).unwrap();
    }
    let everything = s.since(0, usize::MAX).unwrap();
    assert_eq!(everything.len() as u64, n);
    for f in some_filters() {
        let want = scanned(&everything, &f);
        assert_eq!(s.count(&f).unwrap(), want.len() as u64, "{f:?}");
        assert_eq!(all_pages(&s, &f, 50), want, "{f:?}");
        assert_eq!(all_pages(&s, &f, 1), want, "{f:?}");
        // Starting inside a bucket, right at a bucket edge, and past the end.
        for before in [2000u64, 2048, 1025, 1024, 1, n + 10] {
            let page = s.page(&f, Some(before), 30).unwrap();
            let expect: Vec<u64> = want
                .iter()
                .copied()
                .filter(|&q| q < before)
                .take(30)
                .collect();
            assert_eq!(
                page.iter().map(|r| r.seq).collect::<Vec<_>>(),
                expect,
                "{f:?} before {before}"
            );
        }
    }
}

/// What migration 4 added, taken away again (a store of schema 3).
const UNDO_MIGRATION_4: &str =
    "DROP INDEX actions_live; DROP INDEX alerts_firing; DROP TABLE silences;
     ALTER TABLE actions DROP COLUMN phase; ALTER TABLE actions DROP COLUMN severity;
     ALTER TABLE actions DROP COLUMN reason; ALTER TABLE actions DROP COLUMN due_at;
     ALTER TABLE actions DROP COLUMN approved_by; ALTER TABLE actions DROP COLUMN requested_by;
     ALTER TABLE alerts DROP COLUMN source; ALTER TABLE alerts DROP COLUMN action_id;
     PRAGMA user_version = 3;";

/// A trail written under schema 2 (five secondary indexes) filters the same
/// after migration 3 built the tag index from it.
#[test]
fn migration_3_indexes_an_existing_trail() {
    let dir = tempfile::tempdir().unwrap();
    let n = 2 * 1024 + 7;
    {
        let mut s = Store::open(dir.path()).unwrap();
        let mut recs: Vec<Record> = (0..n).map(varied).collect();
        s.append(&mut recs).unwrap();
    }
    // Back to schema 2, as a store of that version left it.
    raw(dir.path()).execute_batch(UNDO_MIGRATION_4).unwrap();
    raw(dir.path())
        .execute_batch(
            "DROP TABLE audit_tags; DROP TABLE audit_names;
             CREATE INDEX audit_kind      ON audit(kind);
             CREATE INDEX audit_runbook   ON audit(runbook)   WHERE runbook IS NOT NULL;
             CREATE INDEX audit_target    ON audit(target)    WHERE target IS NOT NULL;
             CREATE INDEX audit_actor     ON audit(actor)     WHERE actor IS NOT NULL;
             CREATE INDEX audit_action_id ON audit(action_id) WHERE action_id IS NOT NULL;
             PRAGMA user_version = 2;",
        )
        .unwrap();
    assert!(matches!(
        Store::open_read_only(dir.path()),
        Err(StoreError::NeedsMigration { found: 2, .. })
    ));
    let mut s = Store::open(dir.path()).unwrap();
    let everything = s.since(0, usize::MAX).unwrap();
    for f in some_filters() {
        let want = scanned(&everything, &f);
        assert_eq!(s.count(&f).unwrap(), want.len() as u64, "{f:?}");
        assert_eq!(all_pages(&s, &f, 40), want, "{f:?}");
    }
    // New records use the names the migration numbered.
    let mut more: Vec<Record> = (n..n + 300).map(varied).collect();
    s.append(&mut more).unwrap();
    let names: i64 = s
        .conn
        .query_row("SELECT count(*) FROM audit_names", [], |r| r.get(0))
        .unwrap();
    let distinct: i64 = s
        .conn
        .query_row(
            "SELECT count(DISTINCT col || '=' || name) FROM audit_names",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(names, distinct);
    let everything = s.since(0, usize::MAX).unwrap();
    for f in some_filters() {
        let want = scanned(&everything, &f);
        assert_eq!(all_pages(&s, &f, 64), want, "{f:?}");
    }
    assert!(s.verify().unwrap().is_ok());
}

/// A failed append leaves no tag behind and no stale id in the writer's
/// memory: the next append numbers the names again.
#[test]
fn a_rolled_back_append_leaves_no_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = filled(dir.path(), 3);
    // Make the audit insert fail after the names of the first record exist.
    raw(dir.path())
        .execute_batch(
            "CREATE TRIGGER no_zed BEFORE INSERT ON audit_tags
             WHEN (SELECT name FROM audit_names WHERE id = NEW.tag) = 'zed'
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let mut bad = signal(3);
    bad.target = Some("zed".into());
    assert!(s.append(&mut [bad]).is_err());
    raw(dir.path())
        .execute_batch("DROP TRIGGER no_zed")
        .unwrap();
    let zed = AuditFilter {
        target: Some("zed".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.count(&zed).unwrap(), 0);
    let mut good = signal(4);
    good.target = Some("zed".into());
    s.append(&mut [good]).unwrap();
    assert_eq!(s.count(&zed).unwrap(), 1);
    assert_eq!(s.page(&zed, None, 5).unwrap()[0].seq, 4);
}

#[test]
fn a_proposal_from_the_analysis_keeps_its_proposer_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let mut proposed = rec(RecordKind::ActionProposed, "2026-03-01T10:01:00Z");
    proposed.action_id = Some("A000007".into());
    proposed.runbook = Some("log_rotation".into());
    proposed.target = Some("web-1".into());
    proposed.alert = Some("DiskSpaceLow".into());
    proposed.fingerprint = Some("0123456789abcdef".into());
    proposed.actor = Some("ben".into());
    proposed.data = Some(json!({"from_analysis": {"cause": "disk_growth_logs"}}));
    let mut waiting = rec(RecordKind::ApprovalRequested, "2026-03-01T10:01:00Z");
    waiting.action_id = Some("A000007".into());
    s.append(&mut [proposed, waiting]).unwrap();
    let st = s.load_state_at(t("2026-03-01T10:02:00Z")).unwrap();
    assert_eq!(st.open_actions.len(), 1, "{:?}", st.open_actions);
    assert_eq!(
        st.open_actions[0].requested_by.as_deref(),
        Some("ben"),
        "the proposer still cannot approve it alone after a restart"
    );
}
