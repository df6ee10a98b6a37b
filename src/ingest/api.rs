//! The routes of the HTTP listener: the Alertmanager webhook, the ingest
//! API, the JSON API over the hub's snapshots and the audit trail, `/health`
//! and `/metrics`. Errors are JSON naming the field and what is accepted.
//!
//! Hands events to the hub and reads; never decides nor writes the trail.

// Handlers' early returns are ready responses; boxing them buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::parse::{
    BadInput, IngestMetric, KeyedMetric, parse_ingest_keyed, parse_json, parse_webhook,
};
use super::silence::SilenceError;
use super::stats::Stats;
use super::{Api, MAX_BODY};
use crate::engine::Event;
use crate::model::{ActionId, ActionState, AlertStatus, KeyedSample};
use crate::policy::eval::Evaluator;
use crate::policy::{Policy, PolicySpec};

/// The router: `/health` open, everything else behind the token and the
/// rate limit.
pub fn router(api: Arc<Api>) -> Router {
    let guarded = Router::new()
        .route("/hooks/alertmanager", post(webhook))
        .route("/api/v1/ingest", post(ingest))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{fingerprint}/silence", post(silence))
        .route("/api/v1/alerts/{fingerprint}/unsilence", post(unsilence))
        .route("/api/v1/silences", get(silences))
        .route("/api/v1/actions", get(actions))
        .route("/api/v1/actions/{id}", get(action))
        .route("/api/v1/actions/{id}/approve", post(approve))
        .route("/api/v1/actions/{id}/reject", post(reject))
        .route("/api/v1/policies", get(policies))
        .route("/api/v1/policies/evaluate", post(evaluate))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/query", get(query))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(api.clone(), guard));
    Router::new()
        .route("/health", get(health))
        .merge(guarded)
        .fallback(not_found)
        .with_state(api)
}

/// A JSON error.
pub fn error(status: u16, field: &str, message: impl Into<String>, accepted: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({ "error": message.into(), "field": field, "accepted": accepted });
    (code, axum::Json(body)).into_response()
}

fn bad(e: BadInput) -> Response {
    error(e.status, &e.field, e.message, &e.accepted)
}

async fn not_found() -> Response {
    error(
        404,
        "path",
        "no such route",
        "see README.md, section \"HTTP API\"",
    )
}

/// Bearer token (constant-time), then the rate limit.
async fn guard(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    if let Some(t) = &api.token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !presented.is_some_and(|p| t.admits(p)) {
            Stats::add(&api.stats.requests_unauthorized, 1);
            let mut r = error(
                401,
                "authorization",
                "missing or wrong bearer token",
                "Authorization: Bearer TOKEN",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    if let Some(l) = &api.limiter
        && !l.admit()
    {
        Stats::add(&api.stats.requests_limited, 1);
        let mut r = error(
            429,
            "rate",
            "the listener's rate limit is reached",
            "fewer requests per second ([listener] rate_limit)",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    let r = next.run(req).await;
    let c = if r.status().is_success() {
        &api.stats.requests_ok
    } else {
        &api.stats.requests_rejected
    };
    Stats::add(c, 1);
    r
}

/// Bodies over `MAX_BODY` but under this are read to their end (and
/// dropped) so that the client reliably gets its 413 instead of a reset
/// connection; larger ones are answered at once.
const DRAIN_MAX: u64 = 16 << 20;

/// Reads a body of at most `MAX_BODY` bytes.
/// Reads a JSON body into `T`; the error response names the field and
/// what is `accepted`.
async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    accepted: &str,
) -> Result<T, Response> {
    let bytes = read_body(headers, body).await?;
    parse_json(&bytes, accepted).map_err(bad)
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, Response> {
    use http_body_util::BodyExt;
    let too_large = || {
        error(
            413,
            "body",
            format!("the body is larger than {MAX_BODY} bytes"),
            "at most 1 MiB per request; split batches",
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_MAX) {
        return Err(too_large());
    }
    let mut body = body;
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(MAX_BODY as u64) as usize);
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            error(
                400,
                "body",
                format!("the body could not be read: {e}"),
                "a complete request body",
            )
        })?;
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            if total > DRAIN_MAX {
                return Err(too_large());
            }
            if total <= MAX_BODY as u64 {
                buf.extend_from_slice(&data);
            }
        }
    }
    if total > MAX_BODY as u64 {
        return Err(too_large());
    }
    Ok(axum::body::Bytes::from(buf))
}

async fn send(api: &Api, ev: Event) -> Result<(), Response> {
    api.hub.events.send(ev).await.map_err(|_| hub_stopped())
}

fn hub_stopped() -> Response {
    error(
        503,
        "hub",
        "the hub has stopped",
        "retry after Vigil restarts",
    )
}

async fn webhook(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let p = match parse_webhook(&bytes) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    if p.truncated_alerts > 0 {
        tracing::warn!(
            group = %p.group_key,
            "Alertmanager left out {} alerts of this group (max_alerts); poll the source to see them",
            p.truncated_alerts
        );
    }
    let alerts = p.incoming(&api.webhook_source);
    let firing = alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .count();
    let n = alerts.len();
    Stats::add(&api.stats.webhook_alerts, n as u64);
    for a in alerts {
        if let Err(r) = send(&api, Event::Alert(a)).await {
            return r;
        }
    }
    axum::Json(json!({
        "received": n, "firing": firing, "resolved": n - firing,
        "truncated_alerts": p.truncated_alerts,
    }))
    .into_response()
}

async fn ingest(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let metrics = match parse_ingest_keyed(&bytes) {
        Ok(m) => m,
        Err(e) => return bad(e),
    };
    let samples: Vec<KeyedSample> = metrics.into_iter().map(KeyedMetric::into_sample).collect();
    let n = samples.len() as u64;
    Stats::add(&api.stats.samples_ingested, n);
    let violations = api.violations.check_keyed(&samples);
    // Waits while the hub has many samples still to evaluate (memory stays
    // bounded; clients slow down instead).
    let ticket = api.hub.backlog.admit(n).await;
    if api.hub.events.is_closed() {
        return hub_stopped();
    }
    ticket.deliver(samples);
    Stats::add(&api.stats.samples_evaluated, n);
    for v in &violations {
        api.stats.violation(&v.policy, 1);
    }
    /// The 201 body, serialised without building a JSON value first.
    #[derive(serde::Serialize)]
    struct Ingested<'a> {
        evaluated: u64,
        violations: &'a [super::violations::Violation],
    }
    (
        StatusCode::CREATED,
        axum::Json(Ingested {
            evaluated: n,
            violations: &violations,
        }),
    )
        .into_response()
}

fn alert_json(a: &crate::engine::Alert) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
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

async fn alerts(State(api): State<Arc<Api>>) -> Response {
    let snap = api.hub.snapshots.borrow().clone();
    let list: Vec<Value> = snap.alerts.iter().map(|a| alert_json(a)).collect();
    axum::Json(json!({ "alerts": list })).into_response()
}

const STATES: &str = "proposed, blocked, awaiting_approval, approved, running, verifying, retry_waiting, done, rejected, expired, escalated, cancelled, interrupted";

async fn actions(
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
    let list: Vec<&crate::engine::Action> = snap
        .actions
        .iter()
        .filter(|a| status.is_none_or(|s| a.state.as_str() == s))
        .collect();
    axum::Json(json!({ "actions": list })).into_response()
}

fn find_action(api: &Api, id: &str) -> Result<crate::engine::Action, Response> {
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

async fn action(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    match find_action(&api, &id) {
        Ok(a) => axum::Json(a).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    actor: String,
    #[serde(default)]
    reason: Option<String>,
}

const DECISION: &str = "{\"actor\": NAME, \"reason\": TEXT} (reason required to reject)";

async fn decide(
    api: Arc<Api>,
    id: String,
    headers: HeaderMap,
    body: Body,
    approve: bool,
) -> Response {
    let d: Decision = match read_json(&headers, body, DECISION).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if d.actor.trim().is_empty() {
        return error(422, "actor", "the actor is empty", DECISION);
    }
    let reason = d.reason.unwrap_or_default();
    if !approve && reason.trim().is_empty() {
        return error(422, "reason", "a rejection needs a reason", DECISION);
    }
    let a = match find_action(&api, &id) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !matches!(
        a.state,
        ActionState::AwaitingApproval | ActionState::Interrupted
    ) {
        return error(
            409,
            "id",
            format!(
                "action {} is {}, not waiting for a decision",
                a.id,
                a.state.as_str()
            ),
            "an action in state awaiting_approval or interrupted",
        );
    }
    let ev = if approve {
        Event::Approve {
            action: a.id,
            actor: d.actor,
        }
    } else {
        Event::Reject {
            action: a.id,
            actor: d.actor,
            reason,
        }
    };
    if let Err(r) = send(&api, ev).await {
        return r;
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({ "action": a.id.to_string(), "decision": if approve { "approve" } else { "reject" } })),
    )
        .into_response()
}

async fn approve(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(api, id, headers, body, true).await
}

async fn reject(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(api, id, headers, body, false).await
}

fn policy_json(p: &Policy) -> Value {
    json!({
        "name": p.name, "description": p.description, "when": p.fire_text,
        "resolve": p.resolve_text, "for": crate::units::fmt_delta(p.hold),
        "severity": p.severity, "runbook": p.runbook, "metrics": p.metrics().collect::<Vec<_>>(),
    })
}

async fn policies(State(api): State<Arc<Api>>) -> Response {
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

async fn evaluate(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Response {
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

async fn audit(State(api): State<Arc<Api>>, Query(q): Query<HashMap<String, String>>) -> Response {
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

async fn health(State(api): State<Arc<Api>>) -> Response {
    let snap = api.hub.snapshots.borrow().clone();
    axum::Json(json!({
        "status": if snap.store_error.is_some() { "degraded" } else { "ok" },
        "audit_seq": snap.audit_seq,
        "sources": snap.sources,
    }))
    .into_response()
}

async fn metrics(State(api): State<Arc<Api>>) -> Response {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceRequest {
    duration: String,
    actor: String,
    #[serde(default)]
    comment: String,
}

const SILENCE: &str = "{\"duration\": \"2h\", \"actor\": NAME, \"comment\": TEXT}";

fn silence_error(e: SilenceError) -> Response {
    match e {
        SilenceError::UnknownAlert(_) => error(
            404,
            "fingerprint",
            e.to_string(),
            "a fingerprint from GET /api/v1/alerts",
        ),
        SilenceError::BadDuration(_) => error(422, "duration", e.to_string(), SILENCE),
        SilenceError::NotSilenced => error(409, "fingerprint", e.to_string(), "a silenced alert"),
        SilenceError::Upstream(_) => error(
            502,
            "alertmanager",
            e.to_string(),
            "a reachable Alertmanager",
        ),
        SilenceError::HubGone => error(503, "hub", e.to_string(), "retry after Vigil restarts"),
    }
}

async fn silence(
    State(api): State<Arc<Api>>,
    Path(fp): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req: SilenceRequest = match read_json(&headers, body, SILENCE).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if req.actor.trim().is_empty() {
        return error(422, "actor", "the actor is empty", SILENCE);
    }
    match api
        .silencer
        .silence(&fp, &req.duration, &req.actor, &req.comment)
        .await
    {
        Ok(o) => (StatusCode::CREATED, axum::Json(o)).into_response(),
        Err(e) => silence_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsilenceRequest {
    actor: String,
}

async fn unsilence(
    State(api): State<Arc<Api>>,
    Path(fp): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req: UnsilenceRequest = match read_json(&headers, body, "{\"actor\": NAME}").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match api.silencer.expire(&fp, &req.actor).await {
        Ok(id) => axum::Json(json!({ "expired": id })).into_response(),
        Err(e) => silence_error(e),
    }
}

async fn silences(State(api): State<Arc<Api>>) -> Response {
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
                .map(|s| json!({ "fingerprint": a.fingerprint, "alert": a.name, "silence": s }))
        })
        .collect();
    axum::Json(json!({ "alertmanager": upstream, "alerts": local })).into_response()
}

const QUERY: &str = "?query=PROMQL[&source=NAME][&range=6h][&step=60s]";

/// PromQL through a configured Prometheus source: an instant query, or
/// with `range` the values over that span up to now (the context of an
/// alert for the detail pane and the analyser).
async fn query(State(api): State<Arc<Api>>, Query(q): Query<HashMap<String, String>>) -> Response {
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
