//! Analysis in the running hub: an alert that fires gets an `rca` record in
//! the audit trail right after its `alert_firing`, and a view in the
//! snapshot; with an LLM configured (a local OpenAI-compatible server) the
//! view goes pending, then done or fallback, and a slow LLM never holds the
//! hub up; an operator acts on the analysis' recommendation.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Response;
use axum::routing::post;
use serde_json::json;

use vigil::analysis::AnalyserKind;
use vigil::analysis::live::AnalysisState;
use vigil::analysis::llm::{LlmClient, LlmSpec};
use vigil::config::Config;
use vigil::engine::{Engine, Event, RefusalKind, SuggestionOrigin};
use vigil::hub::{Hub, HubHandle, HubSetup, IntentError, Snapshot};
use vigil::model::{ActionState, RecordKind, Sample};
use vigil::store::{AuditWriter, Store};

const CONFIG: &str = r#"
[[hosts]]
name = "app-02"
labels = { group = "web" }
services = ["gunicorn"]
executor = "sim"

[[policies]]
name = "MemoryPressure"
when = "memory_used_percent > 90"
for = "0s"
resolve = "memory_used_percent < 85"
severity = "high"
labels = ["host", "service"]
runbook = "memory_pressure"
"#;

fn start(
    dir: &std::path::Path,
    llm: Option<LlmClient>,
) -> (
    tokio::sync::watch::Sender<bool>,
    HubHandle,
    tokio::task::JoinHandle<()>,
) {
    start_with(dir, CONFIG, llm)
}

fn start_with(
    dir: &std::path::Path,
    text: &str,
    llm: Option<LlmClient>,
) -> (
    tokio::sync::watch::Sender<bool>,
    HubHandle,
    tokio::task::JoinHandle<()>,
) {
    let config = Config::parse("config.toml", text).unwrap();
    let setup = config
        .build("config.toml", text, false, Some("sim".into()))
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
    hub.set_llm(llm);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let _ = hub.run(stop_rx).await;
    });
    (stop_tx, handle, task)
}

async fn feed(handle: &HubHandle, values: &[f64]) {
    for v in values {
        let s = Sample {
            name: "memory_used_percent".into(),
            value: *v,
            labels: [
                ("host".to_string(), "app-02".to_string()),
                ("service".to_string(), "gunicorn".to_string()),
            ]
            .into(),
        };
        handle.events.send(Event::Sample(s)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (bounded) for a snapshot that satisfies `want`.
async fn wait_for(handle: &mut HubHandle, want: impl Fn(&Snapshot) -> bool) -> Arc<Snapshot> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let snap = handle.snapshots.borrow().clone();
        if want(&snap) {
            return snap;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; last snapshot analyses: {:#?}",
            snap.analyses
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), handle.snapshots.changed()).await;
    }
}

fn audit(dir: &std::path::Path) -> Vec<vigil::model::Record> {
    Store::open_read_only(dir).unwrap().tail(1000).unwrap()
}

#[tokio::test]
async fn a_firing_alert_gets_an_rca_record_and_a_view() {
    let dir = tempfile::tempdir().unwrap();
    let (stop, mut handle, task) = start(dir.path(), None);
    feed(&handle, &[70.0, 75.0, 80.0, 86.0, 93.0]).await;
    let snap = wait_for(&mut handle, |s| !s.analyses.is_empty()).await;
    let (fp, view) = snap.analyses.iter().next().unwrap();
    assert_eq!(view.alert, "MemoryPressure");
    assert_eq!(view.state, AnalysisState::Done);
    assert_eq!(view.analyser, AnalyserKind::Heuristic);
    assert!(snap.alerts.iter().any(|a| &a.fingerprint == fp));
    stop.send(true).unwrap();
    task.await.unwrap();
    let recs = audit(dir.path());
    let firing = recs
        .iter()
        .position(|r| r.kind == RecordKind::AlertFiring)
        .unwrap();
    let rca = &recs[firing + 1];
    assert_eq!(
        rca.kind,
        RecordKind::Rca,
        "the rca record follows alert_firing"
    );
    assert_eq!(rca.fingerprint.as_deref(), Some(fp.as_str()));
    assert_eq!(rca.target.as_deref(), Some("app-02"));
    assert_eq!(rca.data.as_ref().unwrap()["analyser"], "heuristic");
    assert!(rca.reason.is_some() && rca.detail.is_some());
    assert!(
        recs.iter()
            .position(|r| r.kind == RecordKind::ApprovalRequested)
            .unwrap()
            > firing + 1,
        "orient comes before decide"
    );
}

/// A provider that answers after `delay` with a valid answer.
async fn provider(delay: Duration) -> String {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            tokio::time::sleep(delay).await;
            let content = json!({
                "summary": "gunicorn leaks memory", "cause": "memory_leak", "confidence": 0.7,
                "evidence": [], "would_change": [],
                "runbooks": [{"runbook": "memory_pressure", "params": {"service": "gunicorn"}, "why": "frees it"}]
            })
            .to_string();
            let mut sse = String::new();
            for piece in content.as_bytes().chunks(20) {
                let ev = json!({"choices": [{"delta": {"content": String::from_utf8_lossy(piece)}}]});
                sse.push_str(&format!("data: {ev}\n\n"));
            }
            sse.push_str("data: [DONE]\n\n");
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from(sse))
                .unwrap()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/v1")
}

fn client(url: &str, timeout: &str) -> LlmClient {
    LlmClient::with_key(
        &LlmSpec {
            base_url: url.into(),
            model: "m".into(),
            api_key_env: None,
            timeout: Some(timeout.into()),
            stream: Some(true),
        },
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn the_llm_answer_replaces_the_heuristic_when_it_validates() {
    let dir = tempfile::tempdir().unwrap();
    let url = provider(Duration::from_millis(300)).await;
    let (stop, mut handle, task) = start(dir.path(), Some(client(&url, "5s")));
    feed(&handle, &[70.0, 93.0]).await;
    let snap = wait_for(&mut handle, |s| !s.analyses.is_empty()).await;
    let view = snap.analyses.values().next().unwrap();
    assert!(
        matches!(
            view.state,
            AnalysisState::Pending | AnalysisState::Streaming
        ),
        "{:?}",
        view.state
    );
    let snap = wait_for(&mut handle, |s| {
        s.analyses.values().any(|v| v.state == AnalysisState::Done)
    })
    .await;
    let view = snap.analyses.values().next().unwrap();
    assert_eq!(view.analyser, AnalyserKind::Llm);
    assert!(view.streamed.contains("memory_leak"));
    assert_eq!(view.analysis.summary, "gunicorn leaks memory");
    stop.send(true).unwrap();
    task.await.unwrap();
    let rcas: Vec<_> = audit(dir.path())
        .into_iter()
        .filter(|r| r.kind == RecordKind::Rca)
        .collect();
    assert_eq!(rcas.len(), 2, "the heuristic's, then the LLM's");
    assert_eq!(rcas[1].data.as_ref().unwrap()["analyser"], "llm");
}

#[tokio::test]
async fn a_slow_llm_never_holds_the_hub_up_and_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let url = provider(Duration::from_secs(30)).await;
    let (stop, mut handle, task) = start(dir.path(), Some(client(&url, "1s")));
    feed(&handle, &[70.0, 93.0]).await;
    wait_for(&mut handle, |s| !s.analyses.is_empty()).await;
    // The engine keeps working while the LLM is out: the alert resolves.
    feed(&handle, &[50.0]).await;
    wait_for(&mut handle, |s| {
        s.alerts
            .iter()
            .any(|a| a.status == vigil::model::AlertStatus::Resolved)
    })
    .await;
    let snap = wait_for(&mut handle, |s| {
        s.analyses
            .values()
            .any(|v| v.state == AnalysisState::Fallback)
    })
    .await;
    let view = snap.analyses.values().next().unwrap();
    assert!(
        view.fallback
            .as_deref()
            .unwrap()
            .contains("no answer within 1s")
    );
    assert_eq!(view.analyser, AnalyserKind::Heuristic);
    stop.send(true).unwrap();
    task.await.unwrap();
    let last = audit(dir.path())
        .into_iter()
        .rev()
        .find(|r| r.kind == RecordKind::Rca)
        .unwrap();
    assert!(
        last.data.as_ref().unwrap()["fallback"]
            .as_str()
            .unwrap()
            .contains("no answer")
    );
}

// Acting on the analysis: a disk fills mostly with one log; the matched
// runbook (disk_cleanup) is proposed, the analysis recommends rotating that
// log with the path taken from the evidence, the suggestions say why and
// why not, and an operator proposes the analysis' runbook through the same
// checks, guards and approvals. The record says it came from the analysis.
// Requests naming a runbook the analysis does not recommend, or coming while
// an action is open, are refused with the reason.

const DISK_CONFIG: &str = include_str!("fixtures/disk_fills_with_a_log.toml");

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

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
async fn feed_disk(handle: &HubHandle) {
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

#[tokio::test]
async fn the_analysis_changes_what_is_proposed_through_the_same_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (stop, mut handle, task) = start_with(dir.path(), DISK_CONFIG, None);
    feed_disk(&handle).await;
    let snap = wait_for(&mut handle, |s| {
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
    let snap = wait_for(&mut handle, |s| {
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
    let snap = wait_for(&mut handle, |s| {
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
    wait_for(&mut handle, |s| {
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
