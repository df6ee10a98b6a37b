//! The CLI as a user runs it: `check`, `runbooks`, `audit` and `serve`
//! spawned as processes, with real files and a real SQLite store.

use std::process::Command;

use vigil::model::{Record, RecordKind, Time};
use vigil::store::Store;

#[path = "cli_support/mod.rs"]
mod cli_support;

use cli_support::{text, vigil};

fn at(s: &str) -> Time {
    s.parse().unwrap()
}

#[test]
fn check_names_file_line_and_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "operator = \"ana\"\n\n[[maintenance]]\nselector = { host = \"db-01\" }\nschedule = \"0 2 * *\"\nduration = \"1h\"\n",
    )
    .unwrap();
    let o = vigil(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains(&format!("{}:5:", cfg.display())), "{out}");
    assert!(out.contains("expected 5"), "{out}");

    std::fs::write(
        &cfg,
        "operator = \"ana\"\n[runbooks.service_restart]\napproval = \"sometimes\"\n",
    )
    .unwrap();
    let o = vigil(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    std::fs::write(&cfg, "operator = \"ana\"\n").unwrap();
    let o = vigil(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("6 policies, 6 runbooks"), "{}", text(&o));
}

#[test]
fn runbooks_plan_prints_the_exact_argv_and_refuses_hostile_params() {
    let o = vigil(&["runbooks", "list"]);
    assert!(o.status.success());
    for name in [
        "disk_cleanup",
        "service_restart",
        "memory_pressure",
        "log_rotation",
        "zombie_killer",
        "connection_reset",
    ] {
        assert!(text(&o).contains(name), "{name}");
    }
    let o = vigil(&[
        "runbooks",
        "plan",
        "service_restart",
        "--target",
        "web-01",
        "--param",
        "service=nginx",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(r#"argv: ["systemctl","restart","--","nginx"]"#),
        "{}",
        text(&o)
    );
    let o = vigil(&[
        "runbooks",
        "plan",
        "service_restart",
        "--target",
        "web-01",
        "--param",
        "service=nginx;reboot",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("param_invalid"), "{}", text(&o));
    let o = vigil(&["runbooks", "show", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("known: disk_cleanup"), "{}", text(&o));
}

fn seed(dir: &std::path::Path, n: u64) {
    let mut s = Store::open(dir).unwrap();
    let mut recs: Vec<Record> = (0..n)
        .map(|i| {
            let mut r = Record::new(
                RecordKind::Signal,
                at("2026-01-01T00:00:00Z") + chrono::TimeDelta::seconds(i as i64),
            );
            r.detail = Some(format!("record {i}"));
            r
        })
        .collect();
    s.append(&mut recs).unwrap();
}

#[test]
fn audit_verify_names_the_first_altered_record() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), 50);
    let d = dir.path().to_str().unwrap();
    let o = vigil(&["audit", "verify", "--data-dir", d]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("50 records"), "{}", text(&o));

    let o = vigil(&["audit", "export", "--format", "jsonl", "--data-dir", d]);
    let lines: Vec<_> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 50);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev"].as_str().unwrap(), "0".repeat(64));
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);

    // Alter record 17 behind Vigil's back.
    let conn = rusqlite::Connection::open(dir.path().join("vigil.db")).unwrap();
    let n = conn
        .execute(
            "UPDATE audit SET json = replace(json, 'record 16', 'record X') WHERE seq = 17",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let o = vigil(&["audit", "verify", "--data-dir", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("seq 17"), "{}", text(&o));
}

#[test]
fn a_restart_reports_actions_that_were_running_and_does_not_rerun_them() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Store::open(dir.path()).unwrap();
        let mut r = Record::new(RecordKind::ActionStarted, at("2026-01-01T00:00:00Z"));
        r.action_id = Some("A000041".into());
        r.runbook = Some("service_restart".into());
        r.target = Some("web-01".into());
        r.alert = Some("ServiceDown".into());
        s.append(&mut [r]).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let o = vigil(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--demo",
        "--data-dir",
        d,
        "--duration",
        "2s",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = vigil(&["audit", "export", "--data-dir", d]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let interrupted: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["kind"] == "action_interrupted")
        .collect();
    assert_eq!(interrupted.len(), 1, "{out}");
    assert_eq!(interrupted[0]["action_id"], "A000041");
    // Started again, it still shows the action interrupted, and records
    // nothing about it again.
    let o = vigil(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--demo",
        "--data-dir",
        d,
        "--duration",
        "1s",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = vigil(&["audit", "export", "--data-dir", d]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let again = out
        .lines()
        .filter(|l| l.contains("\"action_interrupted\""))
        .count();
    assert_eq!(again, 1, "an interruption is recorded once: {out}");
    assert!(
        !out.lines().any(|l| l.contains("\"action_started\"")
            && l.contains("A000041")
            && !l.contains("\"seq\":1,")),
        "an interrupted action is never re-run by itself: {out}"
    );
    let o = vigil(&["audit", "verify", "--data-dir", d]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn sigkill_mid_run_leaves_an_intact_trail() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--demo",
            "--data-dir",
            &d,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let o = vigil(&["audit", "verify", "--data-dir", &d]);
    assert!(o.status.success(), "{}", text(&o));
    // And it starts again on the same store.
    let o = vigil(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--demo",
        "--data-dir",
        &d,
        "--duration",
        "1s",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = vigil(&["audit", "verify", "--data-dir", &d]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_corrupted_database_is_reported_not_repaired() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vigil.db"),
        b"this is not a database, just bytes",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let o = vigil(&["audit", "verify", "--data-dir", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("vigil.db"), "{}", text(&o));
    let o = vigil(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--demo",
        "--data-dir",
        d,
        "--duration",
        "1s",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        std::fs::read(dir.path().join("vigil.db")).unwrap(),
        b"this is not a database, just bytes"
    );
}

#[test]
fn check_reports_broken_themes_and_keymaps_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "operator = \"ana\"\ntheme = \"mine\"\n").unwrap();
    std::fs::create_dir_all(dir.path().join("themes")).unwrap();
    std::fs::create_dir_all(dir.path().join("keymaps")).unwrap();
    std::fs::write(
        dir.path().join("themes/mine.toml"),
        "[meta]\nname = \"mine\"\nextends = \"default\"\n\n[severity]\ncritical = \"blood\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("keymaps/fast.toml"),
        "[meta]\nname = \"fast\"\nextends = \"default\"\n[approvals]\napprove = [\"enter\"]\n",
    )
    .unwrap();
    let o = vigil(&["check", "--config", cfg.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("themes/mine.toml:6: [severity] critical: colour \"blood\""),
        "{out}"
    );
    assert!(
        out.contains("keymaps/fast.toml:5: [approvals] approve: \"enter\" is a navigation key"),
        "{out}"
    );
    // Fixed, it passes.
    std::fs::write(
        dir.path().join("themes/mine.toml"),
        "[meta]\nname = \"mine\"\nextends = \"default\"\n\n[severity]\ncritical = \"#ff0000\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("keymaps/fast.toml"),
        "[meta]\nname = \"fast\"\nextends = \"default\"\n[approvals]\napprove = [\"ctrl-a\"]\n",
    )
    .unwrap();
    let o = vigil(&[
        "check",
        "--config",
        cfg.to_str().unwrap(),
        "--keymap",
        "fast",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// POSTs `body` to `path` on 127.0.0.1:`port`: the status code.
fn post(port: u16, path: &str, body: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split(' ').nth(1)?.parse().ok()
}

#[test]
fn a_firing_alert_redelivered_across_restarts_is_one_episode_with_one_action() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let hook = r#"{"version":"4","status":"firing","receiver":"vigil","alerts":[{"status":"firing",
        "labels":{"alertname":"DiskSpaceLow","host":"web-01","mountpoint":"/","severity":"warning"},
        "annotations":{},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"redelivered-1"}]}"#;
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["serve", "--demo", "--data-dir", d, "--duration", "3s"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("HOME", std::env::temp_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while post(port, "/hooks/alertmanager", hook) != Some(200) {
            assert!(
                t0.elapsed().as_secs() < 20,
                "the webhook never answered 200"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(child.wait().unwrap().success());
    }
    let o = vigil(&["audit", "export", "--data-dir", d]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let of_alert = |kind: &str| {
        out.lines()
            .filter(|l| l.contains(&format!("\"kind\":\"{kind}\"")) && l.contains("redelivered-1"))
            .count()
    };
    assert_eq!(of_alert("alert_firing"), 1, "{out}");
    assert_eq!(of_alert("action_proposed"), 1, "{out}");
}

#[test]
fn policies_completions_and_man_come_from_the_cli() {
    let o = cli_support::vigil(&["policies", "list"]);
    let out = cli_support::text(&o);
    assert!(o.status.success(), "{out}");
    for name in ["DiskSpaceLow", "ServiceDown", "ConnectionPoolExhausted"] {
        assert!(out.contains(name), "{out}");
    }
    assert!(out.contains("vigil samples"), "{out}");
    let o = cli_support::vigil(&["policies", "show", "Nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(cli_support::text(&o).contains("known: DiskSpaceLow"));
    let o = cli_support::vigil(&["completions", "bash"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("doctor") && text.contains("policies"),
        "{text}"
    );
    let o = cli_support::vigil(&["man"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(".TH vigil 1"));
}

/// `runbooks show` prints the file the runbook in force was read from, found
/// as the catalog finds it: a runbook in a file of another name, a file of
/// the runbook dir that replaces a built-in, and a built-in.
#[test]
fn runbooks_show_prints_the_file_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let rb_dir = dir.path().join("runbooks");
    std::fs::create_dir(&rb_dir).unwrap();
    let builtin = include_str!("../runbooks/log_rotation.toml");
    let mine = format!(
        "# mine: rotation of the app's logs\n{}",
        builtin.replacen("name = \"log_rotation\"", "name = \"app_rotation\"", 1)
    );
    std::fs::write(rb_dir.join("ops.toml"), &mine).unwrap();
    let replaced = format!("# replaced: site copy\n{builtin}");
    std::fs::write(rb_dir.join("log_rotation.toml"), &replaced).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("runbook_dir = {:?}\n", rb_dir.display().to_string()),
    )
    .unwrap();
    let show = |name: &str| {
        let o = vigil(&[
            "--config",
            config.to_str().unwrap(),
            "runbooks",
            "show",
            name,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let out = show("app_rotation");
    assert!(
        out.starts_with(&format!("# {}\n", rb_dir.join("ops.toml").display())),
        "{out}"
    );
    assert!(out.contains("# mine: rotation of the app's logs"), "{out}");
    let out = show("log_rotation");
    assert!(out.contains("# replaced: site copy"), "{out}");
    let out = show("zombie_killer");
    assert!(
        out.starts_with("# runbooks/zombie_killer.toml (built in)\n"),
        "{out}"
    );
    assert!(out.contains("# in force: approval"), "{out}");
}
