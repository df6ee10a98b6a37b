//! The analysis' advice taken from the console, end to end: a hub serving
//! a host whose disk fills with one log file, samples through the ingest
//! API, a console attached in tmux. The operator sees the matched cleanup
//! and the recommended log rotation side by side, rejects the cleanup and
//! proposes the rotation from the Runbooks pane; the audit trail says so.
//! Needs VIGIL_E2E=1 (and then fails if tmux is missing).

#[path = "tmux_support/mod.rs"]
mod tmux_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tmux_support::{Tmux, audit_json};

const BIN: &str = env!("CARGO_BIN_EXE_vigil");

const DISK_CONFIG: &str = include_str!("fixtures/disk_fills_with_a_log.toml");

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

struct Hub {
    child: Child,
    port: u16,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, data: &Path) -> Hub {
    let cfg = dir.join("config.toml");
    // The rotation waits for a human, so the screen holds still.
    std::fs::write(
        &cfg,
        format!("{DISK_CONFIG}\n[runbooks.log_rotation]\napproval = \"manual\"\n"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("HOME", dir)
        .env_remove("XDG_CONFIG_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vigil serve");
    let hub = Hub { child, port };
    let t0 = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(data.join("vigil.lock"))
            && t.lines().any(|l| l.starts_with("listen=") && l.len() > 7)
        {
            return hub;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the hub never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(name: &str, value: f64, extra: &[(&str, &str)]) -> serde_json::Value {
    let mut tags = serde_json::json!({ "host": "web-09" });
    for (k, v) in extra {
        tags[*k] = serde_json::Value::String(v.to_string());
    }
    serde_json::json!({ "name": name, "value": value, "tags": tags })
}

/// Twelve steps through the ingest API: the disk (4 GiB) climbs 1.5
/// points a step, the app log grows 57 MiB a step (most of the growth),
/// the database 2 MiB.
fn feed_disk(port: u16) {
    for i in 0..12 {
        let i = f64::from(i);
        let batch = serde_json::json!([
            metric(
                "node_filesystem_size_bytes",
                4.0 * GIB,
                &[("mountpoint", "/")]
            ),
            metric(
                "log_file_bytes",
                (100.0 + 57.0 * i) * MIB,
                &[("path", "/var/log/app/app.log"), ("service", "app")],
            ),
            metric(
                "pg_database_size_bytes",
                (2048.0 + 2.0 * i) * MIB,
                &[("datname", "app")],
            ),
            metric("disk_used_percent", 70.0 + 1.5 * i, &[("mountpoint", "/")]),
        ]);
        let out = Command::new("curl")
            .args(["-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(["-X", "POST", "-H", "content-type: application/json", "-d"])
            .arg(batch.to_string())
            .arg(format!("http://127.0.0.1:{port}/api/v1/ingest"))
            .output()
            .expect("curl runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "201", "ingest");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: a hub, curl and a console in tmux"
)]
fn an_operator_rejects_the_matched_cleanup_and_proposes_the_analysis_rotation() {
    tmux_support::require_tmux();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hub = serve(dir.path(), &data);
    feed_disk(hub.port);

    let t = Tmux::start(
        "analysis",
        &format!(
            "env HOME={} {BIN} --data-dir {}; sleep 30",
            dir.path().display(),
            data.display()
        ),
    );
    t.wait("the cleanup to ask for approval", 30, |s| {
        s.contains("disk_cleanup@web-09") && s.contains("awaiting_approval")
    });

    // Side by side in Runbooks: the cleanup (matched, and the analysis'
    // second choice) and the rotation the analysis ranks first, which
    // cannot be proposed while the cleanup is open.
    t.keys(&["1", "3", "z"]);
    let s = t.wait("the weighed runbooks", 20, |s| {
        s.contains("1. disk_cleanup  [matched + analysis #2]")
            && s.contains("2. log_rotation  [analysis #1]")
    });
    assert!(s.contains("% of the growth"), "the shares line:\n{s}");
    assert!(s.contains("must be freed"), "the capacity line:\n{s}");
    assert!(s.contains("why not:"), "{s}");
    t.keys(&["z"]);

    // P on the rotation while the cleanup is open: the status line says
    // why not, nothing is sent.
    t.keys(&["g", "g", "j", "P"]);
    t.wait("the refusal in the status line", 10, |s| {
        s.contains("log_rotation cannot be proposed now")
    });

    // Reject the cleanup with a reason.
    t.keys(&["4", "r"]);
    t.text("the app log fills the disk");
    t.keys(&["Enter"]);
    t.wait("the rejection", 10, |s| s.contains("rejected"));

    // Propose the rotation from Runbooks: the dialog shows the parameters
    // the analysis took and why.
    t.keys(&["1", "3", "g", "g", "j", "z"]);
    t.wait("the rotation to become proposable", 20, |s| {
        s.contains("2. log_rotation  [analysis #1]") && s.contains(":propose-analysis log_rotation")
    });
    t.keys(&["P"]);
    let s = t.wait("the confirmation", 10, |s| {
        s.contains("Propose log_rotation as the analysis recommends?")
    });
    assert!(s.contains("path=/var/log/app/app.log"), "{s}");
    assert!(s.contains("why"), "{s}");
    t.keys(&["Tab", "Enter"]);
    // The hub's answer is the flash message, until the next state change
    // (the rotation asking for approval) takes its place.
    t.wait("the hub's answer in the status line", 15, |s| {
        s.contains("log_rotation proposed (the analysis' recommendation)")
            || s.contains("log_rotation@web-09 awaits approval")
    });
    t.keys(&["4"]);
    t.wait("the rotation in Approvals", 10, |s| {
        s.lines()
            .any(|l| l.contains("log_rotation@web-09") && l.contains("awaiting_approval"))
    });

    let recs = audit_json(BIN, &data);
    let p = recs
        .iter()
        .find(|r| r["kind"] == "action_proposed" && r["runbook"] == "log_rotation")
        .unwrap_or_else(|| panic!("no log_rotation proposal in {recs:#?}"));
    assert_eq!(p["params"]["path"], "/var/log/app/app.log", "{p}");
    assert!(p["data"]["from_analysis"].is_object(), "{p}");
    assert!(
        recs.iter().any(|r| r["kind"] == "action_rejected"
            && r["runbook"] == "disk_cleanup"
            && r["reason"] == "the app log fills the disk"),
        "the rejection is recorded with its reason: {:#?}",
        recs.iter().find(|r| r["kind"] == "action_rejected")
    );
    drop(t);
}
