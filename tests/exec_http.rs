//! The http executor against a small job API served by the test on
//! 127.0.0.1 (axum), with the idempotency semantics a real one has: the
//! same key and body return the same job, the same key with another body
//! answers 409. Retries only on network errors, 429 and 5xx.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use vigil::exec::http::HttpTarget;
use vigil::exec::{ExecOptions, ExecutorSet, HostExecutor};

use support::{execution, free_port, show};

#[derive(Default)]
struct Api {
    /// key -> (body, job id)
    keys: HashMap<String, (Value, String)>,
    /// job id -> (runbook, polls so far)
    jobs: HashMap<String, (String, u32)>,
    posts: u32,
    /// Answer the next POSTs with these statuses (after creating the job:
    /// a lost answer).
    fail_posts: Vec<u16>,
    auth_seen: Vec<String>,
}

type Shared = Arc<Mutex<Api>>;

async fn submit(
    State(api): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut a = api.lock().unwrap();
    a.posts += 1;
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        a.auth_seen.push(v.to_string());
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "Idempotency-Key required"})),
        )
            .into_response();
    };
    let id = match a.keys.get(&key) {
        Some((b, _)) if *b != body => {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": "key reused with another body"})),
            )
                .into_response();
        }
        Some((_, id)) => id.clone(),
        None => {
            let id = format!("job-{}", a.jobs.len() + 1);
            let rb = body["runbook"].as_str().unwrap_or("").to_string();
            a.jobs.insert(id.clone(), (rb, 0));
            a.keys.insert(key, (body, id.clone()));
            id
        }
    };
    if !a.fail_posts.is_empty() {
        let s = a.fail_posts.remove(0);
        return (StatusCode::from_u16(s).unwrap(), "try again").into_response();
    }
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "status": "queued"})),
    )
        .into_response()
}

async fn status(State(api): State<Shared>, Path(id): Path<String>) -> Response {
    let mut a = api.lock().unwrap();
    let Some((rb, polls)) = a.jobs.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, "no such job").into_response();
    };
    *polls += 1;
    let (state, code) = match (*polls, rb.as_str()) {
        (1, _) => ("running", None),
        (_, "zombie_killer") => ("failed", Some(2)),
        _ => ("succeeded", Some(0)),
    };
    Json(json!({"id": id, "status": state, "exit_code": code,
                "output": "done; db password=s3cret-pw used"}))
    .into_response()
}

async fn serve(api: Shared) -> u16 {
    let port = free_port();
    let app = axum::Router::new()
        .route("/jobs", post(submit))
        .route("/jobs/{id}", get(status))
        .with_state(api);
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    port
}

fn set_for(port: u16, extra: &str) -> ExecutorSet {
    let t: toml::Table = toml::from_str(&format!(
        "url = \"http://127.0.0.1:{port}/\"\npoll_interval = \"20ms\"\ntoken = \"tok-abcdef123\"\n{extra}"
    ))
    .unwrap();
    let mut hosts = BTreeMap::new();
    hosts.insert(
        "api-host".to_string(),
        HostExecutor::Http(HttpTarget::from_table(Some(&t)).unwrap()),
    );
    ExecutorSet::new(hosts, ExecOptions::default())
}

#[tokio::test]
async fn a_job_is_submitted_with_its_key_and_polled_to_success() {
    let api = Shared::default();
    let port = serve(api.clone()).await;
    let x = execution("disk_cleanup", "api-host", "http", &[("max_age_days", "3")]);
    let o = set_for(port, "").run(&x).await;
    assert!(o.success, "{}", show(&o));
    let all = show(&o);
    assert!(!all.contains("s3cret-pw"), "{all}");
    assert!(!all.contains("tok-abcdef123"), "{all}");
    let a = api.lock().unwrap();
    assert_eq!(a.posts, 1);
    let key = HttpTarget::key(&x);
    assert_eq!(key, format!("{}-1", x.action), "the key is action-attempt");
    let (body, id) = a.keys.get(&key).expect("the job's key");
    assert_eq!(o.data.as_ref().unwrap()["job"], json!(id));
    assert_eq!(body["target"], "api-host");
    assert_eq!(body["runbook"], "disk_cleanup");
    assert_eq!(body["params"]["max_age_days"], "3");
    assert!(body["steps"].as_array().unwrap().len() >= 2);
    assert_eq!(a.auth_seen, vec!["Bearer tok-abcdef123".to_string()]);
}

#[tokio::test]
async fn lost_answers_and_429_are_retried_without_a_second_job() {
    let api = Shared::default();
    api.lock().unwrap().fail_posts = vec![503, 502, 429];
    let port = serve(api.clone()).await;
    let x = execution("disk_cleanup", "api-host", "http", &[]);
    let o = set_for(port, "").run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert_eq!(o.data.as_ref().unwrap()["retries"], json!(3));
    let a = api.lock().unwrap();
    assert_eq!(a.posts, 4);
    assert_eq!(a.jobs.len(), 1, "the same key created two jobs");
}

#[tokio::test]
async fn a_failed_job_fails_the_run() {
    let api = Shared::default();
    let port = serve(api.clone()).await;
    let x = execution("zombie_killer", "api-host", "http", &[]);
    let o = set_for(port, "").run(&x).await;
    assert!(!o.success);
    assert_eq!(o.exit_code, Some(2));
    assert!(o.detail.contains("failed"), "{}", o.detail);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_conflict_and_not_retried() {
    let api = Shared::default();
    let x = execution("disk_cleanup", "api-host", "http", &[]);
    api.lock().unwrap().keys.insert(
        HttpTarget::key(&x),
        (json!({"other": true}), "job-x".into()),
    );
    let port = serve(api.clone()).await;
    let o = set_for(port, "").run(&x).await;
    assert!(!o.success);
    assert!(o.detail.contains("409"), "{}", o.detail);
    assert_eq!(api.lock().unwrap().posts, 1);
}

#[tokio::test]
async fn an_unreachable_api_is_retried_then_fails() {
    let port = free_port(); // nothing listens there
    let x = execution("disk_cleanup", "api-host", "http", &[]);
    let o = set_for(port, "retries = 2").run(&x).await;
    assert!(!o.success);
    assert!(o.detail.contains("connection failed"), "{}", o.detail);
    assert_eq!(o.data.as_ref().unwrap()["retries"], json!(2));
}

#[test]
fn http_settings_are_validated() {
    for (text, key) in [
        ("", "url"),
        ("url = \"ftp://x\"", "url"),
        (
            "url = \"http://x\"\npoll_interval = \"soon\"",
            "poll_interval",
        ),
        (
            "url = \"http://x\"\ntoken_env = \"VIGIL_NO_SUCH_VAR_XYZ\"",
            "token_env",
        ),
        ("url = \"http://x\"\nretries = 99", "retries"),
    ] {
        let t: toml::Table = toml::from_str(text).unwrap();
        let e = HttpTarget::from_table(Some(&t)).unwrap_err();
        assert_eq!(e.0, key, "{text}: {e:?}");
    }
    let t: toml::Table = toml::from_str("url = \"http://x\"\ntoken = \"abc\"").unwrap();
    let ok = HttpTarget::from_table(Some(&t)).unwrap();
    assert!(!format!("{ok:?}").contains("abc"));
}
