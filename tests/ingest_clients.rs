//! The Prometheus and Alertmanager clients and the poller against a local
//! server that answers with the real captures (same paths, same bodies), and
//! against a server that is down.

mod ingest_support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use tokio::sync::watch;

use ingest_support::fixture;
use vigil::config::Config;
use vigil::hub::{HealthState, SourceBoard};
use vigil::ingest::client::{AlertmanagerClient, PrometheusClient, matchers_for};
use vigil::model::AlertStatus;

fn answer(
    name: &'static str,
    status: StatusCode,
) -> impl Fn() -> std::future::Ready<axum::response::Response> + Clone {
    move || {
        let body = fixture(name);
        std::future::ready((status, [("content-type", "application/json")], body).into_response())
    }
}

async fn captured_server() -> String {
    let app = Router::new()
        .route(
            "/api/v2/alerts",
            get(answer("alertmanager_api_v2_alerts.json", StatusCode::OK)),
        )
        .route(
            "/api/v2/silences",
            get(answer("alertmanager_api_v2_silences.json", StatusCode::OK)),
        )
        .route(
            "/api/v2/silences",
            post(answer(
                "alertmanager_api_v2_post_silence_response.json",
                StatusCode::OK,
            )),
        )
        .route("/api/v2/silence/{id}", delete(|| async { StatusCode::OK }))
        .route(
            "/api/v1/alerts",
            get(answer("prometheus_api_v1_alerts.json", StatusCode::OK)),
        )
        .route(
            "/api/v1/query",
            get(answer(
                "prometheus_api_v1_query_node_load1.json",
                StatusCode::OK,
            )),
        )
        .route(
            "/api/v1/query_range",
            get(answer(
                "prometheus_api_v1_query_range_node_load1.json",
                StatusCode::OK,
            )),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_read_the_real_answers() {
    let base = captured_server().await;
    let am = AlertmanagerClient::new("am", &base, Duration::from_secs(2));
    let alerts = am.alerts().await.unwrap();
    assert!(!alerts.is_empty());
    let mem = alerts
        .iter()
        .find(|a| a.fingerprint.as_deref() == Some("465b37a73746d1d8"))
        .expect("the captured HostMemoryCritical");
    assert_eq!(mem.status, AlertStatus::Firing);
    assert_eq!(mem.labels["alertname"], "HostMemoryCritical");
    assert_eq!(mem.source.as_deref(), Some("am"));
    let silences = am.silences().await.unwrap();
    let states: Vec<&str> = silences.iter().map(|s| s.status.state.as_str()).collect();
    assert!(
        states.contains(&"active") && states.contains(&"expired"),
        "{states:?}"
    );
    assert!(
        silences
            .iter()
            .any(|s| s.matchers.iter().any(|m| m.is_regex))
    );
    let now = chrono::Utc::now();
    let id = am
        .create_silence(
            matchers_for(&mem.labels),
            now,
            now + chrono::TimeDelta::hours(1),
            "ana",
            "c",
        )
        .await
        .unwrap();
    assert_eq!(id, "0a77ba13-a47a-4d6e-ac77-4eeea229f73c");
    am.expire_silence(&id).await.unwrap();

    let prom = PrometheusClient::new("prom", &base, Duration::from_secs(2));
    let firing = prom.alerts().await.unwrap();
    assert!(firing.iter().all(|a| a.status == AlertStatus::Firing));
    assert!(
        firing
            .iter()
            .any(|a| a.labels["alertname"] == "HostMemoryCritical")
    );
    let v = prom.query("node_load1").await.unwrap();
    assert_eq!(v[0].labels["__name__"], "node_load1");
    assert_eq!(v[0].points.len(), 1);
    let r = prom.context("node_load1", now).await.unwrap();
    assert_eq!(r[0].points.len(), 9);
    assert_eq!(r[0].points[1], (1795380815.0, 3.06));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_error_is_reported_with_prometheus_words() {
    let app = Router::new().route(
        "/api/v1/query",
        get(answer(
            "prometheus_api_v1_query_error.json",
            StatusCode::BAD_REQUEST,
        )),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    let prom = PrometheusClient::new("prom", &format!("http://{addr}"), Duration::from_secs(2));
    let e = prom.query("sum(").await.unwrap_err().to_string();
    assert!(
        e.contains("prom") && e.contains("unclosed left parenthesis"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_feed_the_hub_and_report_health() {
    let base = captured_server().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}")
    };
    let text = format!(
        "[[sources]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{base}\"\ninterval = \"100ms\"\n\n[[sources]]\nname = \"gone\"\nkind = \"prometheus\"\nurl = \"{dead}\"\ninterval = \"50ms\"\ntimeout = \"200ms\"\n"
    );
    let c = Config::parse("c.toml", &text).unwrap();
    c.build("c.toml", &text, false, None).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let board = SourceBoard::default();
    let (stop, stop_rx) = watch::channel(false);
    let tasks = vigil::ingest::poll::spawn_pollers(&c.sources, tx, board.clone(), stop_rx);
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    // An Alertmanager's silences and suppressed alerts come first, so that a
    // suppressed alert is known as such when it fires.
    assert!(
        matches!(&first, vigil::engine::Event::SourceState { source, .. } if source == "am"),
        "{first:?}"
    );
    let second = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(second, vigil::engine::Event::Alert(_)));
    let board2: Arc<_> = board.clone();
    let mut ok = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let b = board2.read().unwrap();
        if b.get("am").map(|h| h.state) == Some(HealthState::Ok)
            && b.get("gone").map(|h| h.state) == Some(HealthState::Down)
        {
            assert!(b["am"].detail.ends_with("alerts"), "{:?}", b["am"]);
            assert!(b["am"].last_ok.is_some());
            assert!(b["gone"].detail.contains("gone"), "{:?}", b["gone"]);
            ok = true;
            break;
        }
    }
    assert!(ok, "{:?}", board.read().unwrap());
    let _ = stop.send(true);
    for (_, t) in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
}
