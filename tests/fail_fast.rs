//! Fail fast: an internal fault of `vigil serve` (a panic in the hub, a
//! long-lived task that ends on its own) flushes the audit trail and ends
//! the process with status 70, so that a service manager restarts it; what
//! was acknowledged before is in the trail and comes back on restart.
//! `/health` lists every task and says "failing" (503) once one died.
//!
//! Faults are injected with `VIGIL_FAULT` (honoured by debug builds only,
//! which the tests run).

mod server_support;

use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_support::{Kill, free_port, http, spawn, wait_for};

fn webhook(name: &str, host: &str) -> Value {
    json!({
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "vigil", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": name, "host": host, "service": "nginx", "severity": "critical"},
            "annotations": {}, "startsAt": "2026-12-01T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": format!("fp-{name}-{host}")
        }]
    })
}

fn serve(dir: &std::path::Path, port: u16, fault: Option<&str>) -> std::process::Child {
    std::fs::write(
        dir.join("vigil.toml"),
        format!(
            "operator = \"ana\"\nlisten = \"127.0.0.1:{port}\"\n\n[[hosts]]\nname = \"web-01\"\nservices = [\"nginx\"]\nexecutor = \"sim\"\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.args([
        "--config".into(),
        dir.join("vigil.toml").display().to_string(),
        "--data-dir".into(),
        dir.join("vigil-data").display().to_string(),
        "serve".into(),
    ]);
    cmd.env_remove("VIGIL_FAULT");
    if let Some(f) = fault {
        cmd.env("VIGIL_FAULT", f);
    }
    spawn(&mut cmd, &dir.join("vigil.log"), "vigil serve")
}

fn exit_within(child: &mut std::process::Child, secs: u64) -> ExitStatus {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st;
        }
        assert!(Instant::now() < end, "still running after {secs}s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn exported(dir: &std::path::Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["--data-dir"])
        .arg(dir.join("vigil-data"))
        .args(["audit", "export", "--format", "jsonl"])
        .output()
        .expect("vigil audit export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
        .collect()
}

#[test]
fn a_panic_in_the_hub_flushes_the_trail_and_exits_70_then_a_restart_has_it_all() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut procs = Kill(vec![serve(dir, port, Some("panic-on-alert=Boom"))]);
    let health = wait_for("vigil up", 30, dir, || {
        http("GET", &format!("{base}/health"), None)
    });
    assert_eq!(health["status"], "ok", "{health:#}");
    for task in ["hub", "change feed", "http listener", "unix socket"] {
        assert_eq!(
            health["tasks"][task]["state"], "alive",
            "{task}: {health:#}"
        );
    }
    // Acknowledged: durable before the answer.
    http(
        "POST",
        &format!("{base}/hooks/alertmanager"),
        Some(&webhook("ServiceDown", "web-01")),
    )
    .expect("first webhook acknowledged");
    // The alert that makes the hub panic is never acknowledged.
    assert!(
        http(
            "POST",
            &format!("{base}/hooks/alertmanager"),
            Some(&webhook("Boom", "web-01"))
        )
        .is_none(),
        "a delivery the hub died on was acknowledged"
    );
    let st = exit_within(&mut procs.0[0], 40);
    assert_eq!(st.code(), Some(70), "{st:?}");
    let log = std::fs::read_to_string(dir.join("vigil.log")).unwrap();
    assert!(
        log.contains("internal fault") && log.contains("injected fault"),
        "{log}"
    );

    // The trail verifies and holds the acknowledged alert.
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--data-dir")
        .arg(dir.join("vigil-data"))
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let recs = exported(dir);
    assert!(
        recs.iter()
            .any(|r| r["kind"] == "alert_firing" && r["alert"] == "ServiceDown"),
        "{recs:#?}"
    );
    assert!(!recs.iter().any(|r| r["alert"] == "Boom"), "{recs:#?}");

    // Restarted without the fault, the alert is back as it was.
    procs.0.push(serve(dir, port, None));
    let alerts = wait_for("the alert restored", 30, dir, || {
        let v = http("GET", &format!("{base}/api/v1/alerts"), None)?;
        v["alerts"]
            .as_array()?
            .iter()
            .any(|a| a["name"] == "ServiceDown")
            .then_some(v)
    });
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1, "{alerts:#}");
}

#[test]
fn a_task_that_ends_on_its_own_stops_the_hub_with_70() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let port = free_port();
    let mut procs = Kill(vec![serve(dir, port, Some("feed-ends"))]);
    let st = exit_within(&mut procs.0[0], 40);
    assert_eq!(st.code(), Some(70), "{st:?}");
    let log = std::fs::read_to_string(dir.join("vigil.log")).unwrap();
    assert!(
        log.contains("change feed: ended while the hub was running"),
        "{log}"
    );
}

#[test]
fn a_clean_stop_is_not_a_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut procs = Kill(vec![serve(dir, port, None)]);
    wait_for("vigil up", 30, dir, || {
        http("GET", &format!("{base}/health"), None)
    });
    let pid = procs.0[0].id() as i32;
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let st = exit_within(&mut procs.0[0], 40);
    assert_eq!(st.code(), Some(0), "{st:?}");
}

mod ingest_support;

#[tokio::test]
async fn health_is_failing_once_a_task_died_and_names_it() {
    let hub = ingest_support::start(ingest_support::Options::default()).await;
    let get = || async {
        let r = reqwest::get(format!("{}/health", hub.base)).await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (code, body) = get().await;
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["tasks"]["change feed"]["state"], "alive", "{body:#}");
    // A long-lived task of this hub ends while nothing asked it to stop.
    let (_running, not_stopping) = tokio::sync::watch::channel(false);
    hub.handle
        .vitals
        .spawn("escalation follower", not_stopping, async {})
        .await
        .unwrap();
    let (code, body) = get().await;
    assert_eq!(code, 503, "{body:#}");
    assert_eq!(body["status"], "failing");
    assert_eq!(body["tasks"]["escalation follower"]["state"], "dead");
    assert!(
        body["fault"]
            .as_str()
            .unwrap()
            .contains("escalation follower: ended while the hub was running"),
        "{body:#}"
    );
    assert_eq!(body["tasks"]["change feed"]["state"], "alive");
    hub.stop().await;
}
