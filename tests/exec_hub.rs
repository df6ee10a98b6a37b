//! The executors inside the hub, as `vigil serve` wires them: an alert
//! for a `local` host runs disk_cleanup for real and the audit trail gets
//! the exit code and the bytes freed; in dry-run the same alert records the
//! exact argv and nothing on the host changes.

mod support;

use std::time::{Duration, Instant};

use tokio::sync::watch;
use vigil::engine::Event;
use vigil::model::{AlertStatus, IncomingAlert, Labels, Record, RecordKind};

struct Tree {
    root: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let root = tempfile::Builder::new()
            .prefix("vigil-hub-")
            .tempdir()
            .unwrap();
        let f = root.path().join("old.bin");
        std::fs::write(&f, vec![0u8; 12_345]).unwrap();
        let st = std::process::Command::new("touch")
            .args(["-d", "30 days ago"])
            .arg(&f)
            .status()
            .unwrap();
        assert!(st.success());
        Tree { root }
    }

    fn old(&self) -> std::path::PathBuf {
        self.root.path().join("old.bin")
    }
}

async fn run_hub(tree: &Tree, dry_run: bool) -> Vec<Record> {
    let root = tree.root.path().display().to_string();
    let text = format!(
        "[settings]\ndry_run = {dry_run}\n\n[[hosts]]\nname = \"localhost\"\nexecutor = \"local\"\n\n\
         [runbooks.disk_cleanup]\napproval = \"auto\"\nparams = {{ tmp_root = \"{root}\", var_tmp_root = \"/var/tmp/vigil-none\", log_root = \"/var/log/vigil-none\", system_caches = \"no\" }}\n"
    );
    let data = tempfile::tempdir().unwrap();
    let (hub, handle) = support::serve_hub(&text, data.path());
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(hub.run(stop_rx));
    let mut labels = Labels::new();
    labels.insert("alertname".into(), "DiskSpaceLow".into());
    labels.insert("host".into(), "localhost".into());
    labels.insert("mountpoint".into(), "/".into());
    labels.insert("severity".into(), "warning".into());
    handle
        .events
        .send(Event::Alert(IncomingAlert {
            labels,
            annotations: Labels::new(),
            status: AlertStatus::Firing,
            fingerprint: None,
            starts_at: None,
            ends_at: None,
            source: Some("test".into()),
            generator_url: None,
        }))
        .await
        .unwrap();
    let want = if dry_run {
        RecordKind::DryRunPlanned
    } else {
        RecordKind::ActionSucceeded
    };
    let mut snaps = handle.snapshots.clone();
    let start = Instant::now();
    let records = loop {
        let s = snaps.borrow_and_update().clone();
        if s.recent
            .iter()
            .any(|r| r.kind == want || r.kind == RecordKind::ActionFailed)
        {
            break s
                .recent
                .iter()
                .map(|r| (**r).clone())
                .collect::<Vec<Record>>();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {want:?}: {:?}",
            s.recent
                .iter()
                .map(|r| (r.kind, r.detail.clone()))
                .collect::<Vec<_>>()
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), snaps.changed()).await;
    };
    let _ = stop_tx.send(true);
    let _ = task.await;
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_runs_the_runbook_and_the_audit_has_what_it_did() {
    let tree = Tree::new();
    let records = run_hub(&tree, false).await;
    let ok = records
        .iter()
        .find(|r| r.kind == RecordKind::ActionSucceeded)
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(ok.exit_code, Some(0));
    let data = ok.data.as_ref().unwrap();
    assert_eq!(
        data["facts"]["freed_bytes"],
        serde_json::json!(12_345),
        "{data}"
    );
    assert!(!tree.old().exists());
    let started = records
        .iter()
        .position(|r| r.kind == RecordKind::ActionStarted)
        .unwrap();
    let done = records
        .iter()
        .position(|r| r.kind == RecordKind::ActionSucceeded)
        .unwrap();
    assert!(started < done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_records_the_exact_argv_and_changes_nothing() {
    let tree = Tree::new();
    let before = support::hash_tree(tree.root.path());
    let records = run_hub(&tree, true).await;
    let plan = records
        .iter()
        .find(|r| r.kind == RecordKind::DryRunPlanned)
        .unwrap();
    let detail = plan.detail.as_deref().unwrap_or("");
    assert!(detail.contains("[read-only] sh -c"), "{detail}");
    assert!(
        detail.contains(&tree.root.path().display().to_string()),
        "{detail}"
    );
    assert!(!records.iter().any(|r| r.kind == RecordKind::ActionStarted));
    assert_eq!(before, support::hash_tree(tree.root.path()));
    assert!(tree.old().exists());
}
