//! The series budget as an ingest client meets it, over real HTTP on
//! 127.0.0.1 against a real hub and SQLite store: a metric at
//! `max_series_per_metric` refuses samples of new series with a 422 naming
//! the metric and the limit, evaluates the rest, tells each of several
//! concurrent senders of its own refusals, counts them in `/metrics` and
//! records the refusal once in the audit trail.

mod ingest_support;

use std::time::Duration;

use serde_json::{Value, json};

use ingest_support::{Options, TestHub, start};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn disk(host: &str, value: f64) -> Value {
    json!({"name": "disk_used_percent", "value": value, "tags": {"host": host, "mountpoint": "/"}})
}

fn up(host: &str) -> Value {
    json!({"name": "service_up", "value": 1, "tags": {"host": host, "service": "api"}})
}

async fn ingest(c: &reqwest::Client, base: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(format!("{base}/api/v1/ingest"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn get(c: &reqwest::Client, url: String) -> reqwest::Response {
    c.get(url).send().await.unwrap()
}

async fn metrics(c: &reqwest::Client, base: &str) -> String {
    get(c, format!("{base}/metrics"))
        .await
        .text()
        .await
        .unwrap()
}

/// A hub whose metrics take at most 3 series each.
async fn limited() -> (TestHub, reqwest::Client) {
    let h = start(Options {
        config: "[settings]\nmax_series_per_metric = 3\n",
        ..Default::default()
    })
    .await;
    (h, client())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metric_at_its_limit_refuses_new_series_and_says_so() {
    let (h, c) = limited().await;
    // Three series fill the metric; the fourth and fifth are refused, the
    // other metric's sample is evaluated. Values above the threshold show
    // that refused samples cross nothing.
    let (status, v) = ingest(
        &c,
        &h.base,
        json!([
            disk("h1", 99.0),
            disk("h2", 50.0),
            disk("h3", 50.0),
            disk("h4", 99.0),
            up("h1"),
            disk("h5", 99.0)
        ]),
    )
    .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["evaluated"], 4, "{v}");
    assert_eq!(v["refused"], 2, "{v}");
    assert_eq!(v["field"], "[3].name", "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("metric disk_used_percent already has 3 series")
            && e.contains("max_series_per_metric"),
        "{e}"
    );
    assert!(
        v["accepted"].as_str().unwrap().contains("series_ttl"),
        "{v}"
    );
    let refusals = v["refusals"].as_array().unwrap();
    let idx: Vec<u64> = refusals
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, [3, 5]);
    assert_eq!(refusals[0]["metric"], "disk_used_percent");
    assert_eq!(refusals[0]["reason"], "max_series_per_metric");
    assert_eq!(refusals[0]["limit"], 3);
    let crossed: Vec<u64> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    assert_eq!(crossed, [0], "only the evaluated sample crossed: {v}");

    // Series already held go on being accepted.
    let (status, v) = ingest(&c, &h.base, json!([disk("h1", 40.0), disk("h3", 41.0)])).await;
    assert_eq!((status, &v["evaluated"]), (201, &json!(2)), "{v}");

    let m = metrics(&c, &h.base).await;
    assert!(
        m.contains("vigil_series_refused_total{reason=\"max_series_per_metric\"} 2\n"),
        "{m}"
    );
    assert!(
        m.contains("vigil_series_refused_total{reason=\"max_series\"} 0\n"),
        "{m}"
    );
    h.wait_for(5, |s| s.series.live == 4).await;
    let m = metrics(&c, &h.base).await;
    assert!(m.contains("\nvigil_series 4\n"), "{m}");

    // One audit record says the metric reached its limit, not one per
    // refused sample.
    let (status, _) = ingest(&c, &h.base, json!([disk("h6", 1.0), disk("h7", 1.0)])).await;
    assert_eq!(status, 422);
    let url = format!("{}/api/v1/audit?since=0&limit=5000", h.base);
    let a: Value = get(&c, url).await.json().await.unwrap();
    let noted: Vec<&Value> = a["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["kind"] == "signal"
                && r["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("max_series_per_metric"))
        })
        .collect();
    assert_eq!(noted.len(), 1, "{noted:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_each_hear_of_their_own_refusals() {
    let (h, c) = limited().await;
    let (status, _) = ingest(
        &c,
        &h.base,
        json!([disk("h1", 1.0), disk("h2", 1.0), disk("h3", 1.0)]),
    )
    .await;
    assert_eq!(status, 201);
    // The hub may evaluate these together (one inbox): each answer still
    // names only its own samples, by their index in its own request.
    for _ in 0..20 {
        let a = ingest(&c, &h.base, json!([disk("h9", 1.0), up("h1")]));
        let b = ingest(
            &c,
            &h.base,
            json!([up("h2"), disk("h1", 2.0), disk("h8", 1.0)]),
        );
        let d = ingest(&c, &h.base, json!([up("h3"), disk("h2", 2.0)]));
        let ((sa, va), (sb, vb), (sd, vd)) = tokio::join!(a, b, d);
        assert_eq!((sa, &va["evaluated"]), (422, &json!(1)), "{va}");
        assert_eq!(va["refusals"][0]["index"], 0, "{va}");
        assert_eq!((sb, &vb["evaluated"]), (422, &json!(2)), "{vb}");
        assert_eq!(vb["refusals"].as_array().unwrap().len(), 1, "{vb}");
        assert_eq!(vb["refusals"][0]["index"], 2, "{vb}");
        assert_eq!((sd, &vd["evaluated"]), (201, &json!(2)), "{vd}");
    }
    let m = metrics(&c, &h.base).await;
    assert!(
        m.contains("vigil_series_refused_total{reason=\"max_series_per_metric\"} 40\n"),
        "{m}"
    );
    h.stop().await;
}
