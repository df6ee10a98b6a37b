//! The read side: alerts, actions, suggestions, policies (and a dry
//! evaluation), the audit trail (pages, export), silences, Prometheus
//! queries, the event stream, `/health` and `/metrics`.

use super::*;
use crate::view::{ActionView, AlertView, SilenceView};

fn alert_json(a: &crate::engine::Alert) -> Value {
    let mut v = serde_json::to_value(AlertView::from(a)).unwrap_or(Value::Null);
    let state = match (a.status, &a.silence) {
        (AlertStatus::Resolved, _) => "resolved",
        (AlertStatus::Firing, Some(_)) => "silenced",
        (AlertStatus::Firing, None) => "firing",
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("state".into(), state.into());
    }
    v
}

pub(super) async fn alerts(State(api): State<Arc<Api>>) -> Response {
    let snap = api.hub.snapshots.borrow().clone();
    let list: Vec<Value> = snap.alerts.iter().map(|a| alert_json(a)).collect();
    axum::Json(json!({ "alerts": list })).into_response()
}

const STATES: &str = "proposed, blocked, awaiting_approval, approved, running, verifying, retry_waiting, done, rejected, expired, escalated, cancelled, interrupted";

pub(super) async fn actions(
    State(api): State<Arc<Api>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let snap = api.hub.snapshots.borrow().clone();
    let status = q.get("status").map(String::as_str);
    if let Some(s) = status
        && !STATES.split(", ").any(|x| x == s)
    {
        return error(
            400,
            "status",
            format!("unknown action status {s:?}"),
            STATES,
        );
    }
    let list: Vec<ActionView> = snap
        .actions
        .iter()
        .filter(|a| status.is_none_or(|s| a.state.as_str() == s))
        .map(ActionView::from)
        .collect();
    axum::Json(json!({ "actions": list })).into_response()
}

pub(super) fn find_action(api: &Api, id: &str) -> Result<crate::engine::Action, Response> {
    let Some(aid) = ActionId::parse(id) else {
        return Err(error(
            400,
            "id",
            format!("{id:?} is not an action id"),
            "A000042 or 42",
        ));
    };
    api.hub
        .snapshots
        .borrow()
        .actions
        .iter()
        .find(|a| a.id == aid)
        .cloned()
        .ok_or_else(|| {
            error(
                404,
                "id",
                format!("no action {aid}"),
                "an id from GET /api/v1/actions",
            )
        })
}

pub(super) async fn action(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    match find_action(&api, &id) {
        Ok(a) => axum::Json(ActionView::from(&a)).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn whoami(Extension(who): Extension<Identity>) -> Response {
    axum::Json(json!({ "name": who.name, "role": who.role, "via": who.via })).into_response()
}

/// The change stream: one JSON line with the whole snapshot, then one per
/// change (see `crate::stream`).
pub(super) async fn stream(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Identity>,
) -> Response {
    let body = Body::new(ChannelBody {
        rx: api.feed.attach(&who),
    });
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// A body fed by a task through a channel.
fn async_stream_body<F, Fut>(f: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<axum::body::Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(4);
    tokio::spawn(f(tx));
    Body::new(ChannelBody { rx })
}

struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<axum::body::Bytes>,
}

impl http_body::Body for ChannelBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(http_body::Frame::data(b))))
    }
}

pub(super) async fn suggestions(State(api): State<Arc<Api>>, Path(fp): Path<String>) -> Response {
    let (Ok(s), Ok(a)) = (
        api.hub.suggestions(fp.clone()).await,
        api.hub.assessment(fp).await,
    ) else {
        return hub_stopped();
    };
    axum::Json(json!({ "suggestions": s, "assessment": a })).into_response()
}

fn policy_json(p: &Policy) -> Value {
    json!({
        "name": p.name, "description": p.description, "when": p.fire_text,
        "resolve": p.resolve_text, "for": crate::units::fmt_delta(p.hold),
        "severity": p.severity, "runbook": p.runbook, "metrics": p.metrics().collect::<Vec<_>>(),
    })
}

pub(super) async fn policies(State(api): State<Arc<Api>>) -> Response {
    let list: Vec<Value> = api.policies.iter().map(policy_json).collect();
    axum::Json(json!({ "policies": list })).into_response()
}

const EVALUATE: &str = "{\"policy\": NAME or a [[policies]] table as JSON, \"samples\": [{\"name\", \"value\", \"tags\"}]}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateRequest {
    policy: Value,
    samples: Vec<IngestMetric>,
}

pub(super) async fn evaluate(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req: EvaluateRequest = match read_json(&headers, body, EVALUATE).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let policy = match &req.policy {
        Value::String(name) => match api.policies.iter().find(|p| &p.name == name) {
            Some(p) => p.clone(),
            None => {
                let known: Vec<&str> = api.policies.iter().map(|p| p.name.as_str()).collect();
                return error(
                    422,
                    "policy",
                    format!("no policy named {name:?}"),
                    &known.join(", "),
                );
            }
        },
        v @ Value::Object(_) => match serde_json::from_value::<PolicySpec>(v.clone())
            .map_err(|e| e.to_string())
            .and_then(|s| Policy::compile(&s))
        {
            Ok(p) => p,
            Err(e) => return error(422, "policy", e, EVALUATE),
        },
        _ => return error(422, "policy", "expected a name or an object", EVALUATE),
    };
    let samples: Vec<_> = req
        .samples
        .into_iter()
        .map(|m| (m.name, m.tags.0, m.value))
        .collect();
    let results: Vec<Value> = Evaluator::evaluate_once(&policy, &samples, Utc::now())
        .into_iter()
        .map(|(labels, holds)| json!({ "labels": labels, "condition_holds": holds }))
        .collect();
    axum::Json(json!({
        "policy": policy.name, "when": policy.fire_text, "for": crate::units::fmt_delta(policy.hold),
        "results": results, "note": "evaluated once on these samples; nothing was changed",
    }))
    .into_response()
}

pub(super) async fn audit(
    State(api): State<Arc<Api>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let num = |k: &str, d: u64| -> Result<u64, Response> {
        match q.get(k) {
            None => Ok(d),
            Some(v) => v.parse().map_err(|_| {
                error(
                    400,
                    k,
                    format!("{v:?} is not a whole number"),
                    "a non-negative integer",
                )
            }),
        }
    };
    let since = match num("since", 0) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let limit = match num("limit", 500) {
        Ok(v) => v.clamp(1, 5000) as usize,
        Err(r) => return r,
    };
    let dir = api.data_dir.clone();
    let got = tokio::task::spawn_blocking(move || {
        crate::store::Store::open_read_only(&dir).and_then(|s| s.since(since, limit))
    })
    .await;
    match got {
        Ok(Ok(records)) => axum::Json(json!({ "records": records })).into_response(),
        Ok(Err(e)) => error(500, "store", e.to_string(), "a readable store"),
        Err(e) => error(500, "store", e.to_string(), "a readable store"),
    }
}

const PAGE: &str = "?before=SEQ&limit=N&count=1&target=HOST&runbook=NAME&kind=KIND&actor=NAME";

/// A page of the trail, newest first, filtered (the console's Audit pane).
pub(super) async fn audit_page(
    State(api): State<Arc<Api>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let num = |k: &str| -> Result<Option<u64>, Response> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| error(400, k, format!("{v:?} is not a whole number"), PAGE)),
        }
    };
    let before = match num("before") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let limit = match num("limit") {
        Ok(v) => v.unwrap_or(100).clamp(1, 5000) as usize,
        Err(r) => return r,
    };
    let text = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let filter = crate::store::AuditFilter {
        target: text("target"),
        runbook: text("runbook"),
        kind: text("kind"),
        actor: text("actor"),
    };
    let count = q.get("count").is_some_and(|v| v == "1" || v == "true");
    let dir = api.data_dir.clone();
    let got = tokio::task::spawn_blocking(move || {
        let s = crate::store::Store::open_read_only(&dir)?;
        let records = s.page(&filter, before, limit)?;
        let total = if count { Some(s.count(&filter)?) } else { None };
        Ok::<_, crate::store::StoreError>((records, total))
    })
    .await;
    match got {
        Ok(Ok((records, total))) => {
            axum::Json(json!({ "records": records, "total": total })).into_response()
        }
        Ok(Err(e)) => error(500, "store", e.to_string(), "a readable store"),
        Err(e) => error(500, "store", e.to_string(), "a readable store"),
    }
}

/// Sends what a blocking writer writes as body chunks.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<axum::body::Bytes>,
    buf: Vec<u8>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = axum::body::Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client left"))
    }
}

/// The whole trail as JSON lines, streamed.
pub(super) async fn audit_export(State(api): State<Arc<Api>>) -> Response {
    let dir = api.data_dir.clone();
    let body = async_stream_body(move |tx| async move {
        let _ = tokio::task::spawn_blocking(move || {
            let s = crate::store::Store::open_read_only(&dir)?;
            let mut w = ChunkWriter {
                tx,
                buf: Vec::new(),
            };
            let n = s.export_jsonl(&mut w, None);
            use std::io::Write;
            let _ = w.flush();
            n
        })
        .await;
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

pub(super) async fn health(State(api): State<Arc<Api>>) -> Response {
    let snap = api.hub.snapshots.borrow().clone();
    let tasks = api.hub.vitals.tasks();
    let fault = api.hub.vitals.first_fault();
    let dead = fault.is_some()
        || tasks
            .values()
            .any(|t| t.state == crate::vital::Liveness::Dead);
    let status = if dead {
        "failing"
    } else if snap.store_error.is_some() {
        "degraded"
    } else {
        "ok"
    };
    let mut body = json!({
        "status": status,
        "audit_seq": snap.audit_seq,
        "sources": snap.sources,
        "tasks": tasks,
        "fault": fault,
    });
    // A hub on its own SQLite store is its data dir's only control plane:
    // active, with no lease. Hubs sharing a store report the lease.
    match api.hub.vitals.role() {
        Some(r) => {
            body["role"] = json!(r.role);
            body["epoch"] = json!(r.epoch);
            body["lease"] = json!({
                "holder": r.holder,
                "active": r.active,
                "active_addr": r.active_addr,
            });
        }
        None => body["role"] = json!("active"),
    }
    let body = axum::Json(body);
    if dead {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    } else {
        body.into_response()
    }
}

pub(super) async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let snap = api.hub.snapshots.borrow().clone();
    let depth = api.hub.events.max_capacity() - api.hub.events.capacity();
    let sources = api.board.read().map(|b| b.len()).unwrap_or(0);
    let text = api
        .stats
        .render(&snap, depth, api.hub.backlog.queued(), sources);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

pub(super) async fn silences(State(api): State<Arc<Api>>) -> Response {
    let mut upstream = serde_json::Map::new();
    for (name, r) in api.silencer.list().await {
        upstream.insert(
            name,
            match r {
                Ok(list) => json!(list),
                Err(e) => json!({ "error": e.to_string() }),
            },
        );
    }
    let snap = api.hub.snapshots.borrow().clone();
    let local: Vec<Value> = snap
        .alerts
        .iter()
        .filter_map(|a| {
            a.silence
                .as_ref()
                .map(|s| json!({ "fingerprint": a.fingerprint, "alert": a.name, "silence": SilenceView::from(s) }))
        })
        .collect();
    axum::Json(json!({ "alertmanager": upstream, "alerts": local })).into_response()
}

const QUERY: &str = "?query=PROMQL[&source=NAME][&range=6h][&step=60s]";

/// PromQL through a configured Prometheus source: an instant query, or
/// with `range` the values over that span up to now (the context of an
/// alert for the detail pane and the analyser).
pub(super) async fn query(
    State(api): State<Arc<Api>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(promql) = q.get("query").filter(|s| !s.trim().is_empty()) else {
        return error(400, "query", "a PromQL query is required", QUERY);
    };
    let prom = match q.get("source") {
        Some(name) => api.prometheus.iter().find(|c| c.name() == name),
        None => api.prometheus.first(),
    };
    let Some(prom) = prom else {
        let known: Vec<&str> = api.prometheus.iter().map(|c| c.name()).collect();
        return error(
            422,
            "source",
            "no such prometheus source",
            &format!(
                "one of the [[sources]] with kind = \"prometheus\": {}",
                known.join(", ")
            ),
        );
    };
    let dur = |k: &str, default: &str| -> Result<std::time::Duration, Response> {
        let v = q.get(k).map(String::as_str).unwrap_or(default);
        crate::units::parse_duration(v)
            .ok()
            .filter(|d| !d.is_zero() && d.as_secs() <= 31 * 86400)
            .ok_or_else(|| {
                error(
                    400,
                    k,
                    format!("{v:?} is not a duration from 1s to 31d"),
                    QUERY,
                )
            })
    };
    let answer = match q.get("range") {
        None => prom.query(promql).await,
        Some(_) => {
            let (range, step) = match (dur("range", "6h"), dur("step", "60s")) {
                (Ok(r), Ok(s)) => (r, s),
                (Err(e), _) | (_, Err(e)) => return e,
            };
            if range.as_secs() / step.as_secs().max(1) > 11_000 {
                return error(
                    400,
                    "step",
                    "too many points (over 11,000)",
                    "a larger step",
                );
            }
            let now = Utc::now();
            let start =
                now - chrono::TimeDelta::from_std(range).unwrap_or(chrono::TimeDelta::hours(6));
            prom.query_range(promql, start, now, step).await
        }
    };
    match answer {
        Ok(series) => {
            axum::Json(json!({ "source": prom.name(), "query": promql, "series": series }))
                .into_response()
        }
        Err(e) => error(
            502,
            "query",
            e.to_string(),
            "a query the Prometheus source accepts",
        ),
    }
}
