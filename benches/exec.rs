//! Executor figures, printed (not asserted):
//! - local step overhead: spawn `true`, capture its output, and append the
//!   outcome's audit record durably (p50/p90/p99 over 300 runs);
//! - ssh steps per second to one host with connection sharing (a real sshd
//!   on 127.0.0.1 started here, a user `vigil-bench` with /bin/sh as its
//!   shell; skipped with a note when sshd is missing);
//! - 50 targets in parallel over ssh under a concurrency limit of 10.
//!
//! Run with `cargo bench --bench exec`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use vigil::engine::Execution;
use vigil::exec::{ExecOptions, ExecutorSet, HostExecutor};
use vigil::model::{ActionId, Record, RecordKind};
use vigil::runbook::PlannedStep;
use vigil::store::AuditWriter;

fn exec(target: &str, executor: &str, argv: &[&str]) -> Execution {
    Execution {
        action: ActionId(1),
        attempt: 1,
        runbook: "bench".into(),
        target: target.into(),
        executor: executor.into(),
        params: BTreeMap::new(),
        steps: vec![PlannedStep {
            name: "step".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            read_only: false,
            timeout: TimeDelta::seconds(30),
            rollback: false,
        }],
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

async fn local_overhead() {
    let dir = tempfile::tempdir().expect("temp dir");
    let writer = AuditWriter::open(dir.path()).expect("store");
    let set = ExecutorSet::new(BTreeMap::new(), ExecOptions::default());
    let x = exec("localhost", "local", &["true"]);
    for _ in 0..20 {
        set.run(&x).await;
    }
    // The floor on this machine: a bare fork+exec+wait of /bin/true.
    let mut bare = Vec::new();
    for _ in 0..300 {
        let t0 = Instant::now();
        let _ = std::process::Command::new("/bin/true").status();
        bare.push(t0.elapsed());
    }
    println!(
        "bare fork+exec+wait of /bin/true (floor): p50 {:.2} ms, p90 {:.2} ms",
        pct(&mut bare, 0.5),
        pct(&mut bare, 0.9)
    );
    let mut tk = Vec::new();
    for _ in 0..300 {
        let t0 = Instant::now();
        let _ = tokio::process::Command::new("/bin/true").output().await;
        tk.push(t0.elapsed());
    }
    println!(
        "tokio::process output() of /bin/true: p50 {:.2} ms, p90 {:.2} ms",
        pct(&mut tk, 0.5),
        pct(&mut tk, 0.9)
    );
    let (mut spawn, mut total) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let t0 = Instant::now();
        let o = set.run(&x).await;
        let t1 = Instant::now();
        let mut r = Record::new(RecordKind::ActionSucceeded, chrono::Utc::now());
        r.action_id = Some(format!("A{i:06}"));
        r.exit_code = o.exit_code;
        r.detail = Some(o.detail.clone());
        r.data = o.data.clone();
        writer.append(vec![r]).await.expect("append");
        spawn.push(t1 - t0);
        total.push(t0.elapsed());
    }
    println!(
        "local step (spawn + capture): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        pct(&mut spawn, 0.5),
        pct(&mut spawn, 0.9),
        pct(&mut spawn, 0.99)
    );
    println!(
        "local step + durable audit record: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        pct(&mut total, 0.5),
        pct(&mut total, 0.9),
        pct(&mut total, 0.99)
    );
    let _ = writer.shutdown();
}

async fn ssh_figures() {
    if !std::path::Path::new("/usr/sbin/sshd").exists() {
        println!("ssh: skipped (openssh-server is not installed)");
        return;
    }
    let sshd = support::Sshd::start();
    let target = sshd.as_plain_user("vigil-bench");
    let mut one = BTreeMap::new();
    one.insert("h".to_string(), HostExecutor::Ssh(target.clone()));
    let set = ExecutorSet::new(
        one,
        ExecOptions {
            ssh_control_dir: sshd.control_dir(),
            ..Default::default()
        },
    );
    let x = exec("h", "ssh", &["true"]);
    let o = set.run(&x).await;
    assert!(o.success, "{}", o.detail);
    let n = 200;
    let t = Instant::now();
    for _ in 0..n {
        set.run(&x).await;
    }
    let el = t.elapsed();
    println!(
        "ssh, one host, shared connection: {n} sequential steps in {:.2} s = {:.1} steps/s",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64()
    );

    // 50 targets (host entries) through one executor set limited to 10 runs
    // in flight; each step sleeps 0.2 s on the host.
    let mut hosts = BTreeMap::new();
    for i in 0..50 {
        hosts.insert(format!("t{i:02}"), HostExecutor::Ssh(target.clone()));
    }
    let set = std::sync::Arc::new(ExecutorSet::new(
        hosts,
        ExecOptions {
            max_parallel: 10,
            ssh_control_dir: sshd.control_dir(),
            ..Default::default()
        },
    ));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let set = set.clone();
        tasks.push(tokio::spawn(async move {
            set.run(&exec(&format!("t{i:02}"), "ssh", &["sleep", "0.2"]))
                .await
                .success
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap_or(false) {
            ok += 1;
        }
    }
    println!(
        "ssh, 50 targets, at most 10 in flight, 0.2 s step each: {ok}/50 ok in {:.2} s (ideal 1.0 s)",
        t.elapsed().as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        local_overhead().await;
        ssh_figures().await;
    });
}
