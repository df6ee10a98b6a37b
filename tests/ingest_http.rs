//! The HTTP listener as clients use it, over real TCP on 127.0.0.1 against a
//! real hub and SQLite store: auth, JSON errors, the webhook's idempotence,
//! hostile payloads next to valid traffic, the JSON API and silences.

mod ingest_support;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ingest_support::{ADAM_TOKEN, ANA_TOKEN, Options, VIC_TOKEN, fixture, start};
use vigil::model::AlertStatus;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn audit(c: &reqwest::Client, base: &str, token: Option<&str>) -> Vec<Value> {
    let mut r = c.get(format!("{base}/api/v1/audit?since=0&limit=5000"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let v: Value = r.send().await.unwrap().json().await.unwrap();
    v["records"].as_array().cloned().unwrap_or_default()
}

fn count(records: &[Value], kind: &str) -> usize {
    records.iter().filter(|r| r["kind"] == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_guards_everything_but_health() {
    let h = start(Options {
        token: Some("s3cret-token"),
        ..Default::default()
    })
    .await;
    let c = client();
    let r = c.get(format!("{}/health", h.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    for path in ["/api/v1/alerts", "/metrics", "/api/v1/audit"] {
        let r = c.get(format!("{}{path}", h.base)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let r = c
            .get(format!("{}{path}", h.base))
            .bearer_auth("s3cret-tokeN")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("s3cret"), "{body}");
        let r = c
            .get(format!("{}{path}", h.base))
            .bearer_auth("s3cret-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = c
        .post(format!("{}/api/v1/ingest", h.base))
        .header("authorization", "Basic czNjcmV0LXRva2Vu")
        .body(r#"{"name":"x","value":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_naming_the_field() {
    let h = start(Options::default()).await;
    let c = client();
    let post = |path: &str, body: Vec<u8>| c.post(format!("{}{path}", h.base)).body(body).send();

    let r = post(
        "/api/v1/ingest",
        b"{\"name\": \"cpu\", \"value\": ".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    // Cut off where the value should be: the error says so.
    assert_eq!(v["field"], "value");
    assert!(v["accepted"].as_str().unwrap().contains("name"));

    let r = post(
        "/api/v1/ingest",
        br#"[{"name":"cpu","value":1},{"name":"cpu","value":true}]"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["field"], "[1].value", "{v}");

    let r = post(
        "/hooks/alertmanager",
        br#"{"version":"4","status":"firing"}"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("alerts"), "{v}");

    let big = vec![b' '; (1 << 20) + 10];
    let r = post("/api/v1/ingest", big).await.unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["field"], "body");

    let r = c
        .get(format!("{}/api/v1/actions/A000999", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .get(format!("{}/api/v1/actions/xyz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(format!("{}/api/v1/audit?since=-1", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["field"], "since");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_rate_limit_answers_429() {
    let h = start(Options {
        rate_limit: Some(5),
        ..Default::default()
    })
    .await;
    let c = client();
    let mut codes = Vec::new();
    for _ in 0..30 {
        let r = c
            .get(format!("{}/api/v1/alerts", h.base))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["field"], "rate");
        }
    }
    assert!(codes.contains(&200) && codes.contains(&429), "{codes:?}");
    // /health is not limited.
    for _ in 0..20 {
        let r = c.get(format!("{}/health", h.base)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_double_delivery_is_idempotent() {
    let h = start(Options::default()).await;
    let c = client();
    let firing = fixture("alertmanager_webhook_firing_critical.json");
    let mut raw: Value = serde_json::from_slice(&firing).unwrap();
    // Two Alertmanagers deliver the same notification at the same time.
    let (a, b) = tokio::join!(
        c.post(format!("{}/hooks/alertmanager", h.base))
            .body(firing.clone())
            .send(),
        c.post(format!("{}/hooks/alertmanager", h.base))
            .body(firing.clone())
            .send(),
    );
    assert_eq!(a.unwrap().status(), 200);
    assert_eq!(b.unwrap().status(), 200);
    h.wait_for(5, |s| {
        s.alerts.iter().any(|a| a.fingerprint == "465b37a73746d1d8")
    })
    .await;
    raw["status"] = "resolved".into();
    raw["alerts"][0]["status"] = "resolved".into();
    raw["alerts"][0]["endsAt"] = "2026-11-22T21:00:00Z".into();
    let resolved = serde_json::to_vec(&raw).unwrap();
    for body in [resolved.clone(), resolved, firing.clone()] {
        let r = c
            .post(format!("{}/hooks/alertmanager", h.base))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    h.wait_for(5, |s| {
        s.alerts
            .iter()
            .any(|a| a.fingerprint == "465b37a73746d1d8" && a.status == AlertStatus::Resolved)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let recs = audit(&c, &h.base, None).await;
    let of = |k: &str| {
        recs.iter()
            .filter(|r| r["kind"] == k && r["fingerprint"] == "465b37a73746d1d8")
            .count()
    };
    assert_eq!(of("alert_firing"), 1, "{recs:#?}");
    assert_eq!(of("alert_resolved"), 1, "{recs:#?}");
    h.stop().await;
}

/// Sends a chunked body of `total` bytes over raw TCP; returns the status.
async fn chunked(addr: std::net::SocketAddr, path: &str, total: usize) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'['; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let frame = format!("{:x}\r\n", chunk.len());
        if s.write_all(frame.as_bytes()).await.is_err()
            || s.write_all(&chunk).await.is_err()
            || s.write_all(b"\r\n").await.is_err()
        {
            break; // the server stopped reading: fine, read its answer
        }
        sent += chunk.len();
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_payloads_get_4xx_and_valid_traffic_is_not_lost() {
    let h = start(Options::default()).await;
    let c = client();
    let url = format!("{}/api/v1/ingest", h.base);
    let hook = format!("{}/hooks/alertmanager", h.base);
    let many: Vec<String> = (0..5000).map(|i| format!("\"l{i}\":\"v\"")).collect();
    let hostile: Vec<(&str, String, Vec<u8>)> = vec![
        ("deep nesting", url.clone(), format!("{}{}", "[".repeat(200_000), "]".repeat(200_000)).into_bytes()),
        ("10 MB", url.clone(), vec![b'{'; 10 * 1024 * 1024]),
        ("invalid UTF-8", hook.clone(), b"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"labels\":{\"a\":\"\xff\xfe\"}}]}".to_vec()),
        ("5000 labels", url.clone(), format!("{{\"name\":\"x\",\"value\":1,\"tags\":{{{}}}}}", many.join(",")).into_bytes()),
        ("duplicate keys", url.clone(), br#"{"name":"x","value":1,"tags":{"host":"a","host":"b"}}"#.to_vec()),
        ("duplicate fields", hook.clone(), br#"{"version":"4","version":"4","status":"firing","alerts":[]}"#.to_vec()),
    ];
    let mut tasks = Vec::new();
    for (what, u, body) in hostile {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut codes = Vec::new();
            for _ in 0..3 {
                let r = c.post(&u).body(body.clone()).send().await.unwrap();
                codes.push(r.status().as_u16());
            }
            (what, codes)
        }));
    }
    let addr = h.addr;
    let chunk_task =
        tokio::spawn(async move { chunked(addr, "/api/v1/ingest", 10 * 1024 * 1024).await });
    // Valid traffic at the same time: 200 hosts with a log file over 1 GiB
    // (LogFileLarge fires at once).
    let mut valid = Vec::new();
    for i in 0..200 {
        let c = c.clone();
        let u = url.clone();
        valid.push(tokio::spawn(async move {
            let body = json!({"name": "log_file_bytes", "value": 2e9,
                "tags": {"host": format!("h{i:03}"), "path": "/var/log/app.log", "service": "app"}});
            c.post(&u).json(&body).send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        let (what, codes) = t.await.unwrap();
        assert!(
            codes.iter().all(|c| (400..500).contains(c)),
            "{what}: {codes:?}"
        );
    }
    assert_eq!(chunk_task.await.unwrap(), 413);
    for v in valid {
        assert_eq!(v.await.unwrap(), 201);
    }
    let s = h
        .wait_for(10, |s| {
            s.alerts.iter().filter(|a| a.name == "LogFileLarge").count() == 200
        })
        .await;
    assert_eq!(s.alerts.len(), 200);
    let m = c
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("vigil_samples_evaluated_total 200\n"), "{m}");
    assert!(
        m.contains("vigil_violations_total{policy=\"LogFileLarge\"} 200\n"),
        "{m}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_answers_what_was_evaluated_and_the_violations() {
    let h = start(Options::default()).await;
    let c = client();
    let body = json!([
        {"name": "disk_used_percent", "value": 97.0, "tags": {"host": "db-01", "mountpoint": "/"}},
        {"name": "disk_used_percent", "value": 12.0, "tags": {"host": "db-02", "mountpoint": "/"}, "timestamp": 1795380800},
        {"name": "unrelated_metric", "value": 1.0}
    ]);
    let r = c
        .post(format!("{}/api/v1/ingest", h.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["evaluated"], 3);
    let viol = v["violations"].as_array().unwrap();
    assert_eq!(viol.len(), 1, "{v}");
    assert_eq!(viol[0]["policy"], "DiskSpaceLow");
    assert_eq!(viol[0]["index"], 0);
    assert_eq!(viol[0]["condition"], "disk_used_percent > 85");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_can_be_listed_approved_and_rejected() {
    let h = start(Options::default()).await;
    let c = client();
    let mut raw: Value =
        serde_json::from_slice(&fixture("alertmanager_webhook_firing_critical.json")).unwrap();
    for (i, host) in ["web-01", "web-02"].iter().enumerate() {
        raw["alerts"][0]["labels"] = json!({"alertname": "ServiceDown", "host": host, "service": "nginx", "severity": "critical"});
        raw["alerts"][0]["fingerprint"] = format!("00000000000000a{i}").into();
        let r = c
            .post(format!("{}/hooks/alertmanager", h.base))
            .json(&raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    h.wait_for(5, |s| s.pending_approvals() == 2).await;
    let v: Value = c
        .get(format!(
            "{}/api/v1/actions?status=awaiting_approval",
            h.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = v["actions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let ids: Vec<String> = list.iter().map(|a| a["id"].to_string()).collect();
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let r = c
        .get(format!("{}/api/v1/actions/{a}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Over TCP a decision needs an operator's token, on loopback too;
    // a viewer's token is refused naming the role it needs.
    let r = c
        .post(format!("{}/api/v1/actions/{a}/approve", h.base))
        .json(&json!({"actor": "ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{}/api/v1/actions/{a}/approve", h.base))
        .bearer_auth("ana-wrong-token-0123456789abcdef0123")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{}/api/v1/actions/{a}/approve", h.base))
        .bearer_auth(VIC_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("needs the operator role"),
        "{v}"
    );
    let r = c
        .post(format!("{}/api/v1/actions/{a}/reject", h.base))
        .bearer_auth(ANA_TOKEN)
        .json(&json!({"actor": "ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["field"], "reason");
    let r = c
        .post(format!("{}/api/v1/actions/{a}/reject", h.base))
        .bearer_auth(ANA_TOKEN)
        .json(&json!({"actor": "mallory", "reason": "restarting by hand"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = c
        .post(format!("{}/api/v1/actions/{b}/approve", h.base))
        .bearer_auth(ADAM_TOKEN)
        .json(&json!({"actor": "bo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    h.wait_for(5, |s| s.pending_approvals() == 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let recs = audit(&c, &h.base, None).await;
    let rej = recs
        .iter()
        .find(|r| r["kind"] == "action_rejected")
        .unwrap();
    // The actor is the token's operator, never the body's name.
    assert_eq!(rej["actor"], "ana");
    assert_eq!(rej["reason"], "restarting by hand");
    let app = recs
        .iter()
        .find(|r| r["kind"] == "action_approved")
        .unwrap();
    assert_eq!(app["actor"], "adam");
    // A decided action cannot be decided again.
    let r = c
        .post(format!("{}/api/v1/actions/{a}/approve", h.base))
        .bearer_auth(ADAM_TOKEN)
        .json(&json!({"actor": "bo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_listed_and_evaluated_without_changing_anything() {
    let h = start(Options::default()).await;
    let c = client();
    let v: Value = c
        .get(format!("{}/api/v1/policies", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["policies"].as_array().unwrap().len(), 6);
    let seq = h.handle.snapshots.borrow().audit_seq;
    let body = json!({"policy": "DiskSpaceLow", "samples": [
        {"name": "disk_used_percent", "value": 90, "tags": {"host": "a", "mountpoint": "/"}},
        {"name": "disk_used_percent", "value": 10, "tags": {"host": "b", "mountpoint": "/"}}]});
    let v: Value = c
        .post(format!("{}/api/v1/policies/evaluate", h.base))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = v["results"].as_array().unwrap();
    assert_eq!(res.len(), 2, "{v}");
    let holds: Vec<bool> = res
        .iter()
        .map(|r| r["condition_holds"].as_bool().unwrap())
        .collect();
    assert!(holds.contains(&true) && holds.contains(&false), "{v}");
    let inline = json!({"policy": {"name": "Hot", "when": "temp > 50"}, "samples": [{"name": "temp", "value": 60}]});
    let v: Value = c
        .post(format!("{}/api/v1/policies/evaluate", h.base))
        .json(&inline)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["results"][0]["condition_holds"], true, "{v}");
    let r = c
        .post(format!("{}/api/v1/policies/evaluate", h.base))
        .json(&json!({"policy": "Nope", "samples": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.handle.snapshots.borrow().audit_seq, seq);
    assert!(h.handle.snapshots.borrow().alerts.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_alert_is_silenced_in_vigil_and_recorded() {
    let h = start(Options::default()).await;
    let c = client();
    let body = json!({"name": "log_file_bytes", "value": 2e9, "tags": {"host": "h1", "path": "/var/log/a.log", "service": "app"}});
    c.post(format!("{}/api/v1/ingest", h.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = h.wait_for(5, |s| !s.alerts.is_empty()).await;
    let fp = s.alerts[0].fingerprint.clone();
    let r = c
        .post(format!("{}/api/v1/alerts/{fp}/silence", h.base))
        .json(&json!({"duration": "2h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a silence needs an operator");
    let r = c
        .post(format!("{}/api/v1/alerts/{fp}/silence", h.base))
        .bearer_auth(ANA_TOKEN)
        .json(&json!({"duration": "soon", "actor": "ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = c
        .post(format!("{}/api/v1/alerts/{fp}/silence", h.base))
        .bearer_auth(ANA_TOKEN)
        .json(&json!({"duration": "2h", "actor": "ana", "comment": "rotating by hand"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("vigil-"), "{v}");
    assert!(v["alertmanager"].is_null());
    h.wait_for(5, |s| s.alerts[0].silence.is_some()).await;
    let v: Value = c
        .get(format!("{}/api/v1/alerts", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["alerts"][0]["state"], "silenced");
    let r = c
        .post(format!("{}/api/v1/alerts/{fp}/unsilence", h.base))
        .bearer_auth(ADAM_TOKEN)
        .json(&json!({"actor": "bo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    h.wait_for(5, |s| s.alerts[0].silence.is_none()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let recs = audit(&c, &h.base, None).await;
    let created = recs
        .iter()
        .find(|r| r["kind"] == "silence_created")
        .unwrap();
    assert_eq!(created["actor"], "ana");
    assert_eq!(created["reason"], "rotating by hand");
    assert_eq!(created["alert"], "LogFileLarge");
    assert_eq!(count(&recs, "silence_expired"), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_do_not_hold_the_listener_and_are_cut_off() {
    let h = start(Options::default()).await;
    // Hundreds of clients that send half a request line and stop.
    let mut slow = Vec::new();
    for _ in 0..600 {
        let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
        s.write_all(b"POST /hooks/alertmanager HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // Everyone else is still served at once.
    let r = client()
        .get(format!("{}/health", h.base))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The half-sent ones are closed once their headers are overdue.
    tokio::time::sleep(vigil::ingest::HEADER_TIMEOUT + Duration::from_secs(2)).await;
    let mut closed = 0;
    for s in &mut slow {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(n)) if n == 0 || buf[..n].starts_with(b"HTTP/1.1 408") => closed += 1,
            Ok(Err(_)) => closed += 1,
            _ => {}
        }
    }
    assert_eq!(closed, slow.len(), "every half-sent request is cut off");
    // A body that trickles in is refused with 408.
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    s.write_all(b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
        .await
        .expect("an answer before the test gives up")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    h.stop().await;
}
