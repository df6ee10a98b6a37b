//! The local executor for real: process groups killed on timeout, output
//! limits, a minimal environment, exactly one Finished per execution, and
//! every built-in runbook run against this machine (VIGIL_E2E=1).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::mpsc;
use vigil::engine::{Event, Execution};
use vigil::exec::{ExecOptions, ExecutorSet};
use vigil::hub::Executors;
use vigil::model::ActionId;
use vigil::runbook::PlannedStep;

use support::{cases, e2e, local_set, show};

fn step(name: &str, argv: &[&str], secs: i64) -> PlannedStep {
    PlannedStep {
        name: name.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        read_only: false,
        timeout: TimeDelta::seconds(secs),
        rollback: false,
    }
}

fn exec_of(executor: &str, target: &str, steps: Vec<PlannedStep>) -> Execution {
    Execution {
        action: ActionId(7),
        attempt: 2,
        runbook: "test".into(),
        target: target.into(),
        executor: executor.into(),
        params: BTreeMap::new(),
        steps,
    }
}

fn alive(pid: &str) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_step_is_killed_with_its_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let x = exec_of(
        "local",
        "localhost",
        vec![step(
            "hang",
            &[
                "sh",
                "-c",
                "sleep 300 & echo $! > \"$1\"; trap '' TERM; wait",
                "sh",
                pidfile.to_str().unwrap(),
            ],
            1,
        )],
    );
    let started = std::time::Instant::now();
    let o = local_set().run(&x).await;
    assert!(!o.success);
    assert!(o.detail.contains("timed out"), "{}", show(&o));
    assert!(started.elapsed() < Duration::from_secs(10));
    let bg = std::fs::read_to_string(&pidfile).unwrap();
    let bg = bg.trim();
    let mut gone = false;
    for _ in 0..50 {
        if !alive(bg) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone, "the background child {bg} survived the timeout");
}

#[tokio::test]
async fn output_is_capped_and_the_environment_is_minimal() {
    let set = ExecutorSet::new(
        BTreeMap::new(),
        ExecOptions {
            output_limit: 1000,
            ..Default::default()
        },
    );
    let x = exec_of(
        "local",
        "localhost",
        vec![
            step("env", &["env"], 10),
            step(
                "flood",
                &["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a"],
                10,
            ),
        ],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    let data = o.data.unwrap();
    let steps = data["steps"].as_array().unwrap();
    let env = steps[0]["stdout"].as_str().unwrap();
    for line in env.lines() {
        let k = line.split('=').next().unwrap();
        assert!(
            ["PATH", "LC_ALL", "LANG", "HOME", "USER", "LOGNAME", "PWD"].contains(&k),
            "{k} leaked into the step's environment"
        );
    }
    assert!(env.contains("LC_ALL=C"));
    assert_eq!(steps[1]["stdout"].as_str().unwrap().len(), 1000);
    assert_eq!(steps[1]["dropped_bytes"].as_u64(), Some(99_000));
}

#[tokio::test]
async fn a_failed_step_stops_the_run_runs_rollback_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("later-step-ran");
    let rolled = dir.path().join("rolled-back");
    let mut rb = step("undo", &["touch", rolled.to_str().unwrap()], 5);
    rb.rollback = true;
    let x = exec_of(
        "local",
        "localhost",
        vec![
            step("ok", &["true"], 5),
            step(
                "fails",
                &[
                    "sh",
                    "-c",
                    "echo 'connect failed: password=hunter22' >&2; exit 3",
                ],
                5,
            ),
            step("later", &["touch", marker.to_str().unwrap()], 5),
            rb,
        ],
    );
    let o = local_set().run(&x).await;
    assert!(!o.success);
    assert_eq!(o.exit_code, Some(3));
    assert!(
        o.detail.contains("step 2/3 \"fails\" exit 3"),
        "{}",
        o.detail
    );
    assert!(o.detail.contains("rollback: 1/1"), "{}", o.detail);
    let all = show(&o);
    assert!(!all.contains("hunter22"), "{all}");
    assert!(all.contains("[REDACTED]"), "{all}");
    assert!(!marker.exists());
    assert!(rolled.exists());
}

#[tokio::test]
async fn spawn_sends_exactly_one_finished_per_execution() {
    let set = local_set();
    let (tx, mut rx) = mpsc::channel(16);
    set.spawn(
        exec_of("local", "h", vec![step("ok", &["true"], 5)]),
        tx.clone(),
    );
    set.spawn(
        exec_of(
            "local",
            "h",
            vec![step("missing", &["no-such-program-xyz"], 5)],
        ),
        tx.clone(),
    );
    set.spawn(
        exec_of("ssh", "unlisted", vec![step("ok", &["true"], 5)]),
        tx,
    );
    let mut got = Vec::new();
    while let Some(Event::Finished {
        action,
        attempt,
        outcome,
    }) = rx.recv().await
    {
        assert_eq!((action, attempt), (ActionId(7), 2));
        got.push(outcome);
    }
    assert_eq!(got.len(), 3);
    assert_eq!(got.iter().filter(|o| o.success).count(), 1);
    assert!(
        got.iter()
            .any(|o| o.detail.contains("not installed") || o.detail.contains("cannot start")),
        "{got:?}"
    );
    assert!(got.iter().any(|o| o.detail.contains("no ssh settings")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_cleanup_locally() {
    if e2e("disk_cleanup_locally") {
        cases::disk_cleanup(&local_set(), "local", "localhost").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rotation_locally() {
    if e2e("log_rotation_locally") {
        cases::log_rotation(&local_set(), "local", "localhost").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombie_killer_locally() {
    if e2e("zombie_killer_locally") {
        cases::zombie_killer(&local_set(), "local", "localhost").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_kills_an_allow_listed_runaway_locally() {
    if e2e("memory_pressure_kill_locally") {
        cases::memory_pressure_kill(&local_set(), "local", "localhost").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_never_signals_a_reused_pid_locally() {
    if e2e("memory_pressure_pid_reuse_locally") {
        cases::memory_pressure_pid_reuse(&local_set(), "local", "localhost").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_restart_through_supervisor_locally() {
    if e2e("service_restart_supervisor_locally") {
        cases::service_restart_supervisor(&local_set(), "local", "localhost").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rotation_create_and_reopen_locally() {
    if e2e("log_rotation_create_locally") {
        cases::log_rotation_create(&local_set(), "local", "localhost").await;
    }
}
