//! The job store alone: idempotency per hub, the queue order, the queue
//! limit, cancel in each state, recovery after a crash and pruning.

use super::*;

fn new(hub: &str, key: &str, body: &str) -> NewJob {
    NewJob {
        hub: hub.into(),
        key: key.into(),
        body_hash: body.into(),
        action_id: "A000001".into(),
        attempt: 1,
        runbook: "disk_cleanup".into(),
        target: "web-1".into(),
        params: BTreeMap::new(),
        plan: Vec::new(),
    }
}

fn ending(status: Status) -> Ending {
    Ending {
        status,
        exit_code: None,
        detail: status.as_str().into(),
        output: String::new(),
        facts: json!({}),
        steps: json!([]),
    }
}

fn created(s: Submitted) -> Job {
    match s {
        Submitted::Created(j) => j,
        other => panic!("expected a new job, got {other:?}"),
    }
}

#[test]
fn keys_are_per_hub_and_a_body_is_bound_to_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let st = JobStore::open(dir.path()).unwrap();
    let a = created(st.submit(&new("a", "k", "h1"), 10).unwrap());
    assert!(
        matches!(st.submit(&new("a", "k", "h1"), 10).unwrap(), Submitted::Existing(j) if j.seq == a.seq)
    );
    assert!(
        matches!(st.submit(&new("a", "k", "h2"), 10).unwrap(), Submitted::Conflict(j) if j.seq == a.seq)
    );
    let b = created(st.submit(&new("b", "k", "h1"), 10).unwrap());
    assert_ne!(a.seq, b.seq);
    assert!(st.get("b", a.seq).unwrap().is_none(), "another hub's job");
    assert_eq!(st.get("a", a.seq).unwrap().unwrap().id(), a.id());
    assert_eq!(seq_of(&a.id()), Some(a.seq));
    for bad in ["1", "job-", "job-0", "job--1", "job-1x", "../job-1"] {
        assert_eq!(seq_of(bad), None, "{bad}");
    }
}

#[test]
fn the_queue_runs_in_order_and_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let st = JobStore::open(dir.path()).unwrap();
    let ids: Vec<i64> = (0..3)
        .map(|i| created(st.submit(&new("a", &format!("k{i}"), "h"), 3).unwrap()).seq)
        .collect();
    assert!(matches!(
        st.submit(&new("a", "k9", "h"), 3).unwrap(),
        Submitted::Full
    ));
    let first = st.claim_next().unwrap().unwrap();
    assert_eq!((first.seq, first.status), (ids[0], Status::Running));
    assert_eq!(
        st.get("a", ids[0]).unwrap().unwrap().status,
        Status::Running
    );
    // One left the queue: one more fits.
    created(st.submit(&new("a", "k9", "h"), 3).unwrap());
    assert_eq!(st.claim_next().unwrap().unwrap().seq, ids[1]);
    assert_eq!(st.counts().unwrap()["running"], 2);
}

#[test]
fn a_crash_fails_running_jobs_as_interrupted_and_keeps_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (run, wait) = {
        let st = JobStore::open(dir.path()).unwrap();
        let run = created(st.submit(&new("a", "k1", "h"), 10).unwrap()).seq;
        let wait = created(st.submit(&new("a", "k2", "h"), 10).unwrap()).seq;
        st.claim_next().unwrap();
        st.progress(run, "running step 1/2 \"x\"", "", &json!([]))
            .unwrap();
        (run, wait)
    };
    let st = JobStore::open(dir.path()).unwrap();
    assert_eq!(st.recover(&BTreeMap::new()).unwrap(), 1);
    let j = st.get("a", run).unwrap().unwrap();
    assert_eq!(j.status, Status::Failed);
    assert!(
        j.detail.starts_with("interrupted") && j.detail.contains("step 1/2"),
        "{}",
        j.detail
    );
    assert!(j.finished_at.is_some());
    assert_eq!(st.recover(&BTreeMap::new()).unwrap(), 0, "recovered once");
    assert_eq!(st.claim_next().unwrap().unwrap().seq, wait);
    let failed = st.list("a", Some(Status::Failed), 10).unwrap();
    assert_eq!(failed.iter().map(|j| j.seq).collect::<Vec<_>>(), vec![run]);
}

#[test]
fn cancel_depends_on_where_the_job_is() {
    let dir = tempfile::tempdir().unwrap();
    let st = JobStore::open(dir.path()).unwrap();
    let running = created(st.submit(&new("a", "k1", "h"), 10).unwrap()).seq;
    let queued = created(st.submit(&new("a", "k2", "h"), 10).unwrap()).seq;
    st.claim_next().unwrap();
    assert!(
        st.cancel("b", queued).unwrap().is_none(),
        "another hub's job"
    );
    assert!(
        matches!(st.cancel("a", queued).unwrap(), Some(Cancel::Dequeued(j)) if j.status == Status::Cancelled)
    );
    assert!(matches!(
        st.cancel("a", running).unwrap(),
        Some(Cancel::Stopping(_))
    ));
    assert_eq!(st.cancel_requested(running).unwrap().as_deref(), Some("a"));
    assert_eq!(
        st.claim_next().unwrap().map(|j| j.seq),
        None,
        "a cancelled job never starts"
    );
    st.finish(running, &ending(Status::Cancelled)).unwrap();
    assert!(matches!(
        st.cancel("a", running).unwrap(),
        Some(Cancel::Finished(_))
    ));
}

#[test]
fn finished_jobs_are_pruned_after_their_time_and_others_never() {
    let dir = tempfile::tempdir().unwrap();
    let st = JobStore::open(dir.path()).unwrap();
    let done = created(st.submit(&new("a", "k1", "h"), 10).unwrap()).seq;
    let queued = created(st.submit(&new("a", "k2", "h"), 10).unwrap()).seq;
    st.claim_next().unwrap();
    st.finish(done, &ending(Status::Succeeded)).unwrap();
    assert_eq!(
        st.prune(Utc::now() - chrono::TimeDelta::minutes(1))
            .unwrap(),
        0
    );
    assert_eq!(
        st.prune(Utc::now() + chrono::TimeDelta::seconds(1))
            .unwrap(),
        1
    );
    assert!(st.get("a", done).unwrap().is_none());
    assert!(
        st.get("a", queued).unwrap().is_some(),
        "a queued job is never pruned"
    );
    // A key whose job was pruned makes a new job, with a new id.
    let again = created(st.submit(&new("a", "k1", "h"), 10).unwrap());
    assert!(again.seq > queued, "ids are never reused");
}

#[test]
fn progress_is_written_lightly_and_everything_else_synced() {
    let dir = tempfile::tempdir().unwrap();
    let st = JobStore::open(dir.path()).unwrap();
    let seq = created(st.submit(&new("a", "k1", "h"), 10).unwrap()).seq;
    st.claim_next().unwrap();
    st.step_started(seq, "running step 1/1", Some((42, "1|sh".into())))
        .unwrap();
    st.progress(seq, "step 1/2 ok", "out", &json!([])).unwrap();
    let sync: i64 = st
        .with("read", |c| {
            c.query_row("PRAGMA synchronous", [], |r| r.get(0))
        })
        .unwrap();
    assert_eq!(sync, 2, "back to synchronous=FULL");
    let j = st.get("a", seq).unwrap().unwrap();
    assert_eq!(
        (j.detail.as_str(), j.output.as_str()),
        ("step 1/2 ok", "out")
    );
    assert!(
        st.orphans().unwrap().is_empty(),
        "no step runs between steps"
    );
}

#[test]
fn the_wal_is_checkpointed_beside_the_writer_and_does_not_grow() {
    let dir = tempfile::tempdir().unwrap();
    let st = JobStore::open(dir.path()).unwrap();
    let wal = dir.path().join("agent.db-wal");
    let mut n = 0;
    let mut burst = |st: &JobStore| {
        for _ in 0..300 {
            n += 1;
            created(
                st.submit(&new("a", &format!("k{n}"), "h"), 100_000)
                    .unwrap(),
            );
        }
    };
    burst(&st);
    std::thread::sleep(CHECKPOINT_EVERY * 3);
    burst(&st);
    let one = std::fs::metadata(&wal).unwrap().len();
    for _ in 0..3 {
        std::thread::sleep(CHECKPOINT_EVERY * 3);
        burst(&st);
    }
    let four = std::fs::metadata(&wal).unwrap().len();
    // Each burst starts the WAL over once the one before was copied in;
    // with checkpoints left to SQLite's threshold, off here, it would be
    // about four times as long.
    assert!(
        four < one * 3 / 2,
        "the WAL grew from {one} to {four} bytes over four bursts"
    );
}
