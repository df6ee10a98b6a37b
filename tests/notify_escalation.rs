//! Escalation against a local HTTP server that checks the exact request
//! bodies: PagerDuty Events v2 trigger/resolve and a Slack-compatible
//! webhook, retried with backoff when the receiver fails.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use vigil::config::Config;
use vigil::engine::Escalation;
use vigil::hub::Escalator;
use vigil::model::{ActionId, Severity};
use vigil::notify::Notifier;

#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
    /// Requests to fail (500) before accepting.
    fail_first: Arc<Mutex<usize>>,
}

async fn take(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> StatusCode {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    r.bodies.lock().unwrap().push((uri.path().to_string(), v));
    let mut f = r.fail_first.lock().unwrap();
    if *f > 0 {
        *f -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::ACCEPTED
}

async fn receiver(fail_first: usize) -> (String, Receiver) {
    let r = Receiver::default();
    *r.fail_first.lock().unwrap() = fail_first;
    let app = Router::new()
        .route("/pd", post(take))
        .route("/hook", post(take))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("http://{addr}"), r)
}

async fn wait_bodies(r: &Receiver, n: usize) -> Vec<(String, Value)> {
    for _ in 0..200 {
        if r.bodies.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    r.bodies.lock().unwrap().clone()
}

fn notifier(text: &str) -> Notifier {
    let c = Config::parse("c.toml", text).unwrap();
    c.build("c.toml", text, false, None).unwrap();
    Notifier::new(&c.escalation).unwrap()
}

fn escalation(summary: String, severity: Severity) -> Escalation {
    Escalation {
        action: Some(ActionId(42)),
        alert: Some("ServiceDown".into()),
        fingerprint: Some("465b37a73746d1d8".into()),
        runbook: Some("service_restart".into()),
        target: Some("web-01".into()),
        severity,
        summary,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_trigger_retries_then_resolve_with_exact_bodies() {
    let (base, r) = receiver(2).await;
    // SAFETY: set once, before any thread reads it; the name is unique to this test.
    unsafe { std::env::set_var("VIGIL_TEST_PD_KEY", "R0UTING-KEY") };
    let n = notifier(&format!(
        "[[escalation]]\nname = \"pd\"\nkind = \"pagerduty\"\nurl = \"{base}/pd\"\nrouting_key_env = \"VIGIL_TEST_PD_KEY\"\nbackoff = \"50ms\"\n"
    ));
    let long = "x".repeat(3000);
    n.escalate(escalation(long, Severity::High));
    let got = wait_bodies(&r, 3).await;
    assert_eq!(got.len(), 3, "two failures, then delivered: {got:?}");
    let expected = json!({
        "routing_key": "R0UTING-KEY",
        "event_action": "trigger",
        "dedup_key": "465b37a73746d1d8",
        "payload": {
            "summary": format!("{}…", "x".repeat(1023)),
            "source": "web-01",
            "severity": "error",
            "component": "service_restart",
            "class": "ServiceDown",
            "custom_details": {"alert": "ServiceDown", "runbook": "service_restart", "target": "web-01", "action_id": "A000042"},
        },
    });
    for (path, body) in &got {
        assert_eq!(path, "/pd");
        assert_eq!(body, &expected);
    }
    assert_eq!(
        got[0].1["payload"]["summary"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        1024
    );
    assert!(n.resolve(
        "465b37a73746d1d8",
        Some("ServiceDown".into()),
        Some("web-01".into()),
        None
    ));
    let got = wait_bodies(&r, 4).await;
    assert_eq!(
        got[3].1,
        json!({"routing_key": "R0UTING-KEY", "event_action": "resolve", "dedup_key": "465b37a73746d1d8"})
    );
    // An incident that was never triggered is not resolved.
    assert!(!n.resolve("ffffffffffffffff", None, None, None));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(r.bodies.lock().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_gets_slack_text_and_severity_filter_applies() {
    let (base, r) = receiver(0).await;
    let n = notifier(&format!(
        "[[escalation]]\nname = \"chat\"\nkind = \"webhook\"\nurl = \"{base}/hook\"\nmin_severity = \"warning\"\n"
    ));
    n.escalate(escalation("informational only".into(), Severity::Info));
    n.escalate(escalation(
        "service_restart@web-01 for ServiceDown failed 3 times".into(),
        Severity::Critical,
    ));
    let got = wait_bodies(&r, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got_all = r.bodies.lock().unwrap().clone();
    assert_eq!(
        got_all.len(),
        1,
        "the info escalation is filtered: {got_all:?}"
    );
    assert_eq!(
        got[0].1,
        json!({
            "text": "ESCALATED [CRITICAL] service_restart@web-01 for ServiceDown failed 3 times",
            "event": "trigger",
            "incident": "465b37a73746d1d8",
            "severity": "critical",
            "alert": "ServiceDown",
            "fingerprint": "465b37a73746d1d8",
            "runbook": "service_restart",
            "target": "web-01",
            "action_id": "A000042",
            "summary": "service_restart@web-01 for ServiceDown failed 3 times",
        })
    );
    n.resolve("465b37a73746d1d8", Some("ServiceDown".into()), None, None);
    let got = wait_bodies(&r, 2).await;
    assert_eq!(got[1].1["text"], "RESOLVED [CRITICAL] ServiceDown");
    assert_eq!(got[1].1["event"], "resolve");
}

#[test]
fn a_missing_routing_key_is_refused_at_start() {
    let text = "[[escalation]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key_env = \"VIGIL_TEST_UNSET_KEY_X\"\n";
    let c = Config::parse("c.toml", text).unwrap();
    let e = Notifier::new(&c.escalation).err().unwrap();
    assert!(e.to_string().contains("VIGIL_TEST_UNSET_KEY_X"), "{e}");
}

#[test]
fn severities_map_to_pagerduty_words() {
    use vigil::notify::pagerduty_severity as p;
    assert_eq!(
        [
            p(Severity::Critical),
            p(Severity::High),
            p(Severity::Warning),
            p(Severity::Info)
        ],
        ["critical", "error", "warning", "info"]
    );
}
