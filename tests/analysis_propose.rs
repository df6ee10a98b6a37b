//! Acting on the analysis in the running hub: a disk fills mostly with one
//! log; the matched runbook (disk_cleanup) is proposed, the analysis
//! recommends rotating that log with the path taken from the evidence, the
//! suggestions say why and why not, and an operator proposes the
//! analysis' runbook through the same checks, guards and approvals. The
//! record says it came from the analysis. Requests that name a runbook the
//! analysis does not recommend, or come while an action is open, are
//! refused with the reason.

use std::sync::Arc;
use std::time::Duration;

use vigil::config::Config;
use vigil::engine::{Engine, Event, RefusalKind, SuggestionOrigin};
use vigil::hub::{Hub, HubHandle, HubSetup, IntentError, Snapshot};
use vigil::model::{ActionState, RecordKind, Sample};
use vigil::store::{AuditWriter, Store};

const CONFIG: &str = r#"
[[hosts]]
name = "web-09"
labels = { group = "web" }
services = ["app"]
executor = "sim"

[[policies]]
name = "DiskSpaceLow"
when = "disk_used_percent > 85"
for = "0s"
resolve = "disk_used_percent < 80"
severity = "high"
labels = ["host", "mountpoint"]
runbook = "disk_cleanup"

[runbooks.disk_cleanup]
approval = "manual"
"#;

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

fn start(
    dir: &std::path::Path,
) -> (
    tokio::sync::watch::Sender<bool>,
    HubHandle,
    tokio::task::JoinHandle<()>,
) {
    let config = Config::parse("config.toml", CONFIG).unwrap();
    let setup = config
        .build("config.toml", CONFIG, false, Some("sim".into()))
        .unwrap();
    let store = Store::open(dir).unwrap();
    let restored = store.load_state().unwrap();
    let writer = AuditWriter::spawn(store).unwrap();
    let (mut hub, handle) = Hub::new(HubSetup {
        engine: Engine::new(setup),
        writer,
        restored,
        demo: None,
        operator: "test".into(),
        sim_run_time: Duration::from_millis(10),
        tick: Duration::from_millis(50),
        executors: None,
        escalator: None,
        sources: Default::default(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let _ = hub.run(stop_rx).await;
    });
    (stop_tx, handle, task)
}

fn sample(name: &str, value: f64, extra: &[(&str, &str)]) -> Sample {
    let mut labels: vigil::model::Labels = [("host".to_string(), "web-09".to_string())].into();
    for (k, v) in extra {
        labels.insert(k.to_string(), v.to_string());
    }
    Sample {
        name: name.into(),
        value,
        labels,
    }
}

/// Twelve steps: the disk (4 GiB) climbs 1.5 points (61 MiB) a step; the
/// app log grows 57 MiB a step (93% of the growth; it stays under the
/// LogFileLarge threshold), the database 2 MiB (3%).
async fn feed(handle: &HubHandle) {
    for i in 0..12 {
        let i = f64::from(i);
        let batch = vec![
            sample(
                "node_filesystem_size_bytes",
                4.0 * GIB,
                &[("mountpoint", "/")],
            ),
            sample(
                "log_file_bytes",
                (100.0 + 57.0 * i) * MIB,
                &[("path", "/var/log/app/app.log"), ("service", "app")],
            ),
            sample(
                "pg_database_size_bytes",
                (2048.0 + 2.0 * i) * MIB,
                &[("datname", "app")],
            ),
            sample("disk_used_percent", 70.0 + 1.5 * i, &[("mountpoint", "/")]),
        ];
        handle.events.send(Event::Samples(batch)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for(
    handle: &mut HubHandle,
    what: &str,
    want: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let snap = handle.snapshots.borrow().clone();
        if want(&snap) {
            return snap;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; suggestions: {:#?}",
            snap.suggestions
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), handle.snapshots.changed()).await;
    }
}

#[tokio::test]
async fn the_analysis_changes_what_is_proposed_through_the_same_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (stop, mut handle, task) = start(dir.path());
    feed(&handle).await;
    let snap = wait_for(&mut handle, "the analysis and the pending cleanup", |s| {
        !s.analyses.is_empty()
            && s.actions
                .iter()
                .any(|a| a.runbook == "disk_cleanup" && a.state == ActionState::AwaitingApproval)
    })
    .await;
    let (fp, view) = snap
        .analyses
        .iter()
        .find(|(_, v)| v.alert == "DiskSpaceLow")
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    assert_eq!(snap.analyses.len(), 1, "only the disk alert fired");
    assert_eq!(
        view.analysis.cause.as_str(),
        "disk_growth_logs",
        "{:#?}",
        view.analysis
    );
    assert_eq!(view.analysis.top_runbook(), "log_rotation");
    assert_eq!(
        view.analysis.runbooks[0]
            .params
            .get("path")
            .map(String::as_str),
        Some("/var/log/app/app.log"),
        "the path comes from the evidence"
    );
    assert!(
        view.analysis
            .evidence
            .iter()
            .any(|e| e.note.contains("log /var/log/app/app.log: 9")),
        "the evidence gives the log's share: {:#?}",
        view.analysis.evidence
    );

    // Side by side: the matched cleanup (waiting for approval) and the
    // analysis' rotation, which cannot be proposed while the cleanup is open.
    handle.focus.send_replace(Some(fp.clone()));
    let snap = wait_for(&mut handle, "the focused suggestions", |s| {
        s.suggestions.iter().any(|x| x.runbook == "log_rotation") && s.assessment.is_some()
    })
    .await;
    let rot = snap
        .suggestions
        .iter()
        .find(|x| x.runbook == "log_rotation")
        .unwrap();
    assert_eq!(rot.origin, SuggestionOrigin::Analysis);
    assert_eq!(rot.analysis_rank, Some(1));
    assert!(!rot.proposable);
    assert!(
        rot.why_not.iter().any(|w| w.contains("already has action")),
        "{:?}",
        rot.why_not
    );
    assert!(rot.frees_at_most.unwrap() > rot.needed.unwrap(), "{rot:#?}");
    assert_eq!(rot.unit.as_deref(), Some("bytes"));
    let dc = snap
        .suggestions
        .iter()
        .find(|x| x.runbook == "disk_cleanup")
        .unwrap();
    assert_eq!(dc.origin, SuggestionOrigin::Both);
    assert_eq!(dc.analysis_rank, Some(2));
    let w = snap.assessment.as_ref().unwrap().weighing.as_ref().unwrap();
    assert!(
        w.contributors[0].share > 0.9 && w.contributors[1].share < 0.05,
        "{w:#?}"
    );

    // Refused: a runbook the analysis does not recommend, and anything
    // while the cleanup is open.
    let e = handle
        .propose_recommended(fp.clone(), "service_restart".into(), "ana".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, IntentError::Refused(r) if r.kind == RefusalKind::Conflict && r.message.contains("does not recommend service_restart")),
        "{e}"
    );
    let e = handle
        .propose_recommended(fp.clone(), "log_rotation".into(), "ana".into())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already has action"), "{e}");
    let e = handle
        .propose_recommended("no-such-alert".into(), "log_rotation".into(), "ana".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, IntentError::Refused(r) if r.kind == RefusalKind::NotFound),
        "{e}"
    );

    // The operator rejects the cleanup and takes the analysis' advice.
    let cleanup = snap
        .actions
        .iter()
        .find(|a| a.runbook == "disk_cleanup")
        .unwrap()
        .id;
    handle
        .intent(Event::Reject {
            action: cleanup,
            actor: "ana".into(),
            reason: "the log is what fills the disk".into(),
        })
        .await
        .unwrap();
    let snap = wait_for(&mut handle, "the rotation to be proposable", |s| {
        s.suggestions
            .iter()
            .any(|x| x.runbook == "log_rotation" && x.proposable)
    })
    .await;
    let rot = snap
        .suggestions
        .iter()
        .find(|x| x.runbook == "log_rotation")
        .unwrap();
    assert!(rot.why_not.is_empty(), "{:?}", rot.why_not);
    handle
        .propose_recommended(fp.clone(), "log_rotation".into(), "ana".into())
        .await
        .unwrap();
    wait_for(&mut handle, "the rotation to run", |s| {
        s.actions
            .iter()
            .any(|a| a.runbook == "log_rotation" && a.state != ActionState::Proposed)
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();

    let recs = Store::open_read_only(dir.path())
        .unwrap()
        .tail(1000)
        .unwrap();
    let p = recs
        .iter()
        .find(|r| {
            r.kind == RecordKind::ActionProposed && r.runbook.as_deref() == Some("log_rotation")
        })
        .expect("the rotation was proposed");
    assert_eq!(p.actor.as_deref(), Some("ana"));
    assert_eq!(p.fingerprint.as_deref(), Some(fp.as_str()));
    assert_eq!(
        p.params
            .as_ref()
            .and_then(|x| x.get("path"))
            .map(String::as_str),
        Some("/var/log/app/app.log")
    );
    assert!(
        p.detail
            .as_deref()
            .unwrap()
            .starts_with("proposed from the analysis by ana"),
        "{:?}",
        p.detail
    );
    let from = &p.data.as_ref().unwrap()["from_analysis"];
    assert_eq!(from["cause"], "disk_growth_logs");
    assert_eq!(p.data.as_ref().unwrap()["matched"], "disk_cleanup");
    // The same guards and approval policy: log_rotation is approved by
    // policy (auto), recorded as such, then started.
    let seq = p.seq;
    assert!(recs.iter().any(|r| r.seq > seq
        && r.kind == RecordKind::ActionApproved
        && r.runbook.as_deref() == Some("log_rotation")));
    assert!(recs.iter().any(|r| r.seq > seq
        && r.kind == RecordKind::ActionStarted
        && r.runbook.as_deref() == Some("log_rotation")));
}
