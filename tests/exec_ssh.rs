//! The ssh executor against a real OpenSSH server started by the test on
//! 127.0.0.1 (VIGIL_E2E=1): every built-in runbook over ssh, a step that
//! times out and is killed on the host, connection sharing.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::TimeDelta;
use vigil::engine::Execution;
use vigil::model::ActionId;
use vigil::runbook::PlannedStep;

use support::{Sshd, cases, e2e, show};

const HOST: &str = "vigil-test";

fn one_step(argv: &[&str], secs: i64) -> Execution {
    Execution {
        action: ActionId(9),
        attempt: 1,
        runbook: "test".into(),
        target: HOST.into(),
        executor: "ssh".into(),
        params: BTreeMap::new(),
        steps: vec![PlannedStep {
            name: "step".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            read_only: false,
            timeout: TimeDelta::seconds(secs),
            rollback: false,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_step_is_killed_on_the_host() {
    if !e2e("a_timed_out_step_is_killed_on_the_host") {
        return;
    }
    let sshd = Sshd::start();
    let set = sshd.executors(HOST, 4);
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("remote.pid");
    let x = one_step(
        &[
            "sh",
            "-c",
            "sleep 300 & echo $! > \"$1\"; wait",
            "sh",
            pidfile.to_str().unwrap(),
        ],
        1,
    );
    let o = set.run(&x).await;
    assert!(!o.success, "{}", show(&o));
    assert_eq!(
        o.exit_code,
        Some(124),
        "timeout(1) reports 124: {}",
        show(&o)
    );
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let pid = pid.trim().to_string();
    let mut gone = false;
    for _ in 0..100 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gone, "the remote process {pid} survived the step's timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_shared_and_host_keys_enforced() {
    if !e2e("connections_are_shared_and_host_keys_enforced") {
        return;
    }
    let sshd = Sshd::start();
    let set = sshd.executors(HOST, 4);
    let o = set.run(&one_step(&["true"], 10)).await;
    assert!(o.success, "{}", show(&o));
    let sockets = std::fs::read_dir(sshd.control_dir()).unwrap().count();
    assert_eq!(sockets, 1, "one ControlMaster socket for the host");
    // A wrong known_hosts entry: the connection is refused, nothing runs.
    let mut bad = sshd.target.clone();
    let kh = sshd.dir.path().join("wrong_known_hosts");
    let other = sshd.dir.path().join("other_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    std::fs::write(&kh, format!("[127.0.0.1]:{} {pubkey}", sshd.port)).unwrap();
    bad.known_hosts = Some(kh);
    let mut hosts = BTreeMap::new();
    hosts.insert(HOST.to_string(), vigil::exec::HostExecutor::Ssh(bad));
    let set = vigil::exec::ExecutorSet::new(
        hosts,
        vigil::exec::ExecOptions {
            ssh_control_dir: sshd.dir.path().join("c2"),
            ..Default::default()
        },
    );
    let marker = sshd.dir.path().join("ran");
    let o = set
        .run(&one_step(&["touch", marker.to_str().unwrap()], 10))
        .await;
    assert!(!o.success);
    assert_eq!(o.exit_code, Some(255), "{}", show(&o));
    assert!(!marker.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_cleanup_over_ssh() {
    if e2e("disk_cleanup_over_ssh") {
        let sshd = Sshd::start();
        cases::disk_cleanup(&sshd.executors(HOST, 4), "ssh", HOST).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rotation_over_ssh() {
    if e2e("log_rotation_over_ssh") {
        let sshd = Sshd::start();
        cases::log_rotation(&sshd.executors(HOST, 4), "ssh", HOST).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombie_killer_over_ssh() {
    if e2e("zombie_killer_over_ssh") {
        let sshd = Sshd::start();
        cases::zombie_killer(&sshd.executors(HOST, 4), "ssh", HOST).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_kills_an_allow_listed_runaway_over_ssh() {
    if e2e("memory_pressure_kill_over_ssh") {
        let sshd = Sshd::start();
        cases::memory_pressure_kill(&sshd.executors(HOST, 4), "ssh", HOST).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_never_signals_a_reused_pid_over_ssh() {
    if e2e("memory_pressure_pid_reuse_over_ssh") {
        let sshd = Sshd::start();
        cases::memory_pressure_pid_reuse(&sshd.executors(HOST, 4), "ssh", HOST).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_restart_through_supervisor_over_ssh() {
    if e2e("service_restart_supervisor_over_ssh") {
        let sshd = Sshd::start();
        cases::service_restart_supervisor(&sshd.executors(HOST, 4), "ssh", HOST).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rotation_create_and_reopen_over_ssh() {
    if e2e("log_rotation_create_over_ssh") {
        let sshd = Sshd::start();
        cases::log_rotation_create(&sshd.executors(HOST, 4), "ssh", HOST).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_config_file_and_proxy_jump_are_honoured() {
    if !e2e("an_ssh_config_file_and_proxy_jump_are_honoured") {
        return;
    }
    let sshd = Sshd::start();
    let d = sshd.dir.path();
    let key = d.join("client_key");
    let kh = d.join("known_hosts");
    let cfg = d.join("ssh_config");
    std::fs::write(
        &cfg,
        format!(
            "Host bastion\n  HostName 127.0.0.1\n  Port {p}\n  User root\n  IdentityFile {k}\n  UserKnownHostsFile {kh}\n  BatchMode yes\n\n\
             Host app-via-bastion\n  HostName 127.0.0.1\n  Port {p}\n  User root\n  IdentityFile {k}\n  UserKnownHostsFile {kh}\n",
            p = sshd.port,
            k = key.display(),
            kh = kh.display()
        ),
    )
    .unwrap();
    let table: toml::Table = toml::from_str(&format!(
        "host = \"app-via-bastion\"\nconfig = {:?}\nproxy_jump = \"bastion\"\n",
        cfg.display().to_string()
    ))
    .unwrap();
    let target = vigil::exec::ssh::SshTarget::from_table("app", Some(&table)).unwrap();
    let argv = target.command(&["true".into()], Duration::from_secs(5), d);
    assert!(argv.windows(2).any(|w| w[0] == "-J" && w[1] == "bastion"));
    let mut hosts = BTreeMap::new();
    hosts.insert("app".to_string(), vigil::exec::HostExecutor::Ssh(target));
    let set = vigil::exec::ExecutorSet::new(
        hosts,
        vigil::exec::ExecOptions {
            ssh_control_dir: d.join("cj"),
            ..Default::default()
        },
    );
    let out = d.join("via-jump");
    let mut x = one_step(&["touch", out.to_str().unwrap()], 10);
    x.target = "app".into();
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert!(out.exists());

    // The jump is really taken: through a bastion that does not resolve,
    // nothing runs.
    let table: toml::Table = toml::from_str(&format!(
        "host = \"app-via-bastion\"\nconfig = {:?}\nproxy_jump = \"no-such-bastion.invalid\"\nconnect_timeout = 3\n",
        cfg.display().to_string()
    ))
    .unwrap();
    let target = vigil::exec::ssh::SshTarget::from_table("app", Some(&table)).unwrap();
    let mut hosts = BTreeMap::new();
    hosts.insert("app".to_string(), vigil::exec::HostExecutor::Ssh(target));
    let set = vigil::exec::ExecutorSet::new(
        hosts,
        vigil::exec::ExecOptions {
            ssh_control_dir: d.join("ck"),
            ..Default::default()
        },
    );
    let out2 = d.join("not-via-jump");
    let mut x = one_step(&["touch", out2.to_str().unwrap()], 10);
    x.target = "app".into();
    let o = set.run(&x).await;
    assert!(!o.success, "{}", show(&o));
    assert!(!out2.exists());
}
