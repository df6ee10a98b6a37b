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
use axum::extract::{Extension, Path, Query, Request, State};
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
use crate::access::{Identity, Role, Via};
use crate::engine::Event;
use crate::model::{ActionId, ActionState, AlertStatus, KeyedSample};
use crate::policy::eval::Evaluator;
use crate::policy::{Policy, PolicySpec};

/// Every route but `/health`, without the door (identity, rate limit).
fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/hooks/alertmanager", post(webhook))
        .route("/api/v1/ingest", post(ingest))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/stream", get(stream))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{fingerprint}/silence", post(silence))
        .route("/api/v1/alerts/{fingerprint}/unsilence", post(unsilence))
        .route("/api/v1/alerts/{fingerprint}/suggestions", get(suggestions))
        .route("/api/v1/silences", get(silences))
        .route("/api/v1/actions", get(actions))
        .route("/api/v1/actions/{id}", get(action))
        .route("/api/v1/actions/{id}/approve", post(approve))
        .route("/api/v1/actions/{id}/reject", post(reject))
        .route("/api/v1/alerts/{fingerprint}/repropose", post(repropose))
        .route("/api/v1/alerts/{fingerprint}/propose", post(propose))
        .route("/api/v1/run", post(run))
        .route("/api/v1/modes", post(modes))
        .route("/api/v1/breakers/reset", post(reset_breaker))
        .route("/api/v1/policies", get(policies))
        .route("/api/v1/policies/evaluate", post(evaluate))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/page", get(audit_page))
        .route("/api/v1/audit/export", get(audit_export))
        .route("/api/v1/query", get(query))
        .route("/metrics", get(metrics))
}

/// The TCP router: `/health` open, everything else behind a bearer token
/// (or, on loopback with no listener token, open for reads and
/// deliveries) and the rate limit.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/health", get(health))
        .merge(routes().route_layer(middleware::from_fn_with_state(api.clone(), tcp_guard)))
        .fallback(not_found)
        .with_state(api)
}

/// The unix socket's router: the same routes; the identity is the peer's
/// OS user.
pub fn socket_router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/health", get(health))
        .merge(routes().route_layer(middleware::from_fn_with_state(api.clone(), socket_guard)))
        .fallback(not_found)
        .with_state(api)
}

/// The OS user behind a unix socket connection (peer credentials).
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub uid: Option<u32>,
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tokio::net::UnixListener>,
    > for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        Peer {
            uid: stream.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

/// A client may ask for less than its identity allows: `X-Vigil-Role:
/// viewer` (a read-only console).
const ROLE_HEADER: &str = "x-vigil-role";

fn role_cap(headers: &HeaderMap) -> Option<Role> {
    headers
        .get(ROLE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_value(Value::String(v.trim().to_lowercase())).ok())
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

fn unauthorized(api: &Api, message: &str) -> Response {
    Stats::add(&api.stats.requests_unauthorized, 1);
    // A failed login counts against the rate limit too.
    if let Some(l) = &api.limiter {
        l.admit();
    }
    let mut r = error(
        401,
        "authorization",
        message,
        "Authorization: Bearer TOKEN (an [[operators]] token, or the [listener] token for deliveries), or the unix socket DATA_DIR/vigil.sock",
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Rate limit, then the route; counts the answer.
async fn admit(api: &Api, mut req: Request, who: Identity, next: Next) -> Response {
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
    let cap = role_cap(req.headers());
    req.extensions_mut().insert(who.capped(cap));
    let r = next.run(req).await;
    let c = if r.status().is_success() {
        &api.stats.requests_ok
    } else {
        &api.stats.requests_rejected
    };
    Stats::add(c, 1);
    r
}

/// Over TCP: an operator's token names the actor; the listener's token
/// admits deliveries and reads; no token admits them on loopback only when
/// no listener token is configured.
async fn tcp_guard(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let who = match presented {
        Some(p) => match api.access.by_token(p) {
            Some(id) => id,
            None if api.token.as_ref().is_some_and(|t| t.admits(p)) => Identity {
                name: "listener".into(),
                role: Role::Viewer,
                via: Via::Listener,
            },
            None => return unauthorized(&api, "wrong bearer token"),
        },
        None if api.token.is_some() => return unauthorized(&api, "missing bearer token"),
        None => Identity {
            name: "anonymous".into(),
            role: Role::Viewer,
            via: Via::Anonymous,
        },
    };
    admit(&api, req, who, next).await
}

/// Over the unix socket: the peer's OS user, whatever a body says.
async fn socket_guard(
    State(api): State<Arc<Api>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    let Some(uid) = peer.uid else {
        return unauthorized(&api, "the peer of the unix socket cannot be identified");
    };
    let who = api.access.by_uid(uid);
    admit(&api, req, who, next).await
}

/// Refuses `who` unless it may carry out `intent`: 401 without an
/// operator's identity, 403 naming the role it needs.
fn require(who: &Identity, intent: &str) -> Result<(), Response> {
    let need = crate::access::needed(intent);
    if need == Role::Viewer {
        return Ok(());
    }
    if matches!(who.via, Via::Anonymous | Via::Listener) {
        let mut r = error(
            401,
            "authorization",
            format!("{intent} needs an operator's identity"),
            "Authorization: Bearer TOKEN of an [[operators]] entry, or the unix socket DATA_DIR/vigil.sock",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Err(r);
    }
    if who.role < need {
        return Err(error(
            403,
            "role",
            format!(
                "{intent} needs the {need} role; {} is {}",
                who.name, who.role
            ),
            match need {
                Role::Admin => "an admin ([access.users] or [[operators]] role = \"admin\")",
                _ => "an operator or admin ([access.users] or [[operators]] role)",
            },
        ));
    }
    Ok(())
}

/// Bodies over `MAX_BODY` but under this are read to their end (and
/// dropped) so that the client reliably gets its 413 instead of a reset
/// connection; larger ones are answered at once.
const DRAIN_MAX: u64 = 16 << 20;

/// Reads a body of at most `MAX_BODY` bytes.
/// Reads a JSON body into `T`; the error response names the field and
/// what is `accepted`.
/// The intent's JSON body, once `who` may do `what` (refusals answered).
async fn allowed_json<T: serde::de::DeserializeOwned>(
    who: &Identity,
    what: &str,
    headers: &HeaderMap,
    body: Body,
    accepted: &str,
) -> Result<T, Response> {
    require(who, what)?;
    read_json(headers, body, accepted).await
}

async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    accepted: &str,
) -> Result<T, Response> {
    let bytes = read_body(headers, body).await?;
    parse_json(&bytes, accepted).map_err(bad)
}

/// How long a request body may take to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

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
    // A body that trickles in is cut off: the whole of it must arrive
    // within BODY_TIMEOUT.
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => {
                return Err(error(
                    408,
                    "body",
                    format!("the body did not arrive within {}s", BODY_TIMEOUT.as_secs()),
                    "a request body sent at once",
                ));
            }
        };
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

/// A delivery that is not durable: 503 with `Retry-After`, so that the
/// sender delivers it again (nothing was acknowledged).
fn not_durable(e: crate::hub::DeliveryError) -> Response {
    use crate::hub::DeliveryError;
    let (msg, accepted, after) = match &e {
        DeliveryError::Busy => (e.to_string(), "retry after a second", "1"),
        DeliveryError::Stopped => (e.to_string(), "retry after Vigil restarts", "5"),
        DeliveryError::Store(_) => (
            format!("{e}; the delivery was not accepted"),
            "retry once the store is writable",
            "5",
        ),
    };
    let mut r = error(503, "hub", msg, accepted);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(after));
    r
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
    // Answered only once the alerts are handled and their records are
    // committed: a 2xx means durable (rule 12).
    if let Err(e) = api
        .hub
        .deliver(alerts.into_iter().map(Event::Alert).collect())
        .await
    {
        return not_durable(e);
    }
    tracing::info!(
        source = %api.webhook_source,
        received = n,
        firing,
        resolved = n - firing,
        "alertmanager webhook delivered {n} alerts ({firing} firing, {} resolved)",
        n - firing
    );
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
    // Answered once the hub evaluated them and committed every record they
    // caused (rule 12; the samples themselves are measurements, see
    // README "Durability").
    let refused = match ticket.deliver_durable(samples).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return not_durable(crate::hub::DeliveryError::Store(e)),
        Err(_) => return not_durable(crate::hub::DeliveryError::Stopped),
    };
    let evaluated = n - refused.len() as u64;
    Stats::add(&api.stats.samples_evaluated, evaluated);
    for (_, e) in &refused {
        api.stats.series_refused(e);
    }
    let mut violations = violations;
    if !refused.is_empty() {
        // Both in request order.
        violations.retain(|v| refused.binary_search_by_key(&v.index, |(i, _)| *i).is_err());
    }
    for v in &violations {
        api.stats.violation(&v.policy, 1);
    }
    if let Some((first, e)) = refused.first() {
        return series_refused(evaluated, &refused, *first, e, &violations);
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
            evaluated,
            violations: &violations,
        }),
    )
        .into_response()
}

/// Refusals listed in an ingest answer at most (the count is always whole).
const MAX_REFUSALS_LISTED: usize = 100;

/// 422 for an ingest request some of whose samples a series limit refused:
/// the others were evaluated and are durable (`evaluated`); the refused
/// ones are listed by index (the first 100) with the metric and the limit.
fn series_refused(
    evaluated: u64,
    refused: &[crate::hub::Refused],
    first: usize,
    e: &crate::policy::eval::SeriesLimit,
    violations: &[super::violations::Violation],
) -> Response {
    let listed: Vec<Value> = refused
        .iter()
        .take(MAX_REFUSALS_LISTED)
        .map(|(i, e)| json!({ "index": i, "metric": e.name, "reason": e.reason(), "limit": e.limit }))
        .collect();
    let body = json!({
        "error": e.to_string(),
        "field": format!("[{first}].name"),
        "accepted": SERIES_ACCEPTED,
        "evaluated": evaluated,
        "refused": refused.len(),
        "refusals": listed,
        "violations": violations,
    });
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

const SERIES_ACCEPTED: &str = "samples of series Vigil already holds, and new series while their metric has fewer than [settings] max_series_per_metric series (and Vigil fewer than 1,000,000 in all); a series with no sample for [settings] series_ttl is evicted and makes room; the request's other samples were evaluated (\"evaluated\"): do not send them again";

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
    /// Ignored: the actor is who is asking (the socket's OS user, the
    /// token's operator).
    #[serde(default)]
    #[allow(dead_code)]
    actor: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

const DECISION: &str = "{\"reason\": TEXT} (reason required to reject; the actor is who asks)";

async fn decide(
    api: Arc<Api>,
    who: Identity,
    id: String,
    headers: HeaderMap,
    body: Body,
    approve: bool,
) -> Response {
    if let Err(r) = require(&who, if approve { "approve" } else { "reject" }) {
        return r;
    }
    let d: Decision = if headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v == "0")
    {
        Decision {
            actor: None,
            reason: None,
        }
    } else {
        match read_json(&headers, body, DECISION).await {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
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
            actor: who.name.clone(),
        }
    } else {
        Event::Reject {
            action: a.id,
            actor: who.name.clone(),
            reason,
        }
    };
    if let Err(r) = intent(&api, ev).await {
        return r;
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "action": a.id.to_string(),
            "decision": if approve { "approve" } else { "reject" },
            "actor": who.name,
        })),
    )
        .into_response()
}

/// Hands an operator's intent to the hub and waits for its answer (409
/// with the hub's reason when it refuses).
async fn intent(api: &Api, ev: Event) -> Result<(), Response> {
    match api.hub.intent(ev).await {
        Ok(()) => Ok(()),
        Err(crate::hub::IntentError::HubStopped) => Err(hub_stopped()),
        Err(crate::hub::IntentError::Refused(r)) => Err(error(
            r.http_status(),
            "intent",
            r.message,
            "an intent the hub can carry out now",
        )),
    }
}

async fn approve(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(api, who, id, headers, body, true).await
}

async fn reject(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(api, who, id, headers, body, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    runbook: String,
    target: String,
    #[serde(default)]
    params: std::collections::BTreeMap<String, String>,
}

const RUN: &str = "{\"runbook\": NAME, \"target\": HOST, \"params\": {KEY: VALUE}}";

/// A manual run: proposed as the operator who asks, through the same
/// parameter checks, guards and approvals as an alert's action; its
/// requester cannot be its only approver.
async fn run(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Identity>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req: RunRequest = match allowed_json(&who, "run", &headers, body, RUN).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let ev = Event::Run {
        runbook: req.runbook.clone(),
        target: req.target.clone(),
        params: req.params,
        actor: who.name.clone(),
    };
    if let Err(r) = intent(&api, ev).await {
        return r;
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(
            json!({ "proposed": format!("{}@{}", req.runbook, req.target), "actor": who.name }),
        ),
    )
        .into_response()
}

/// Proposes an alert's runbook again after its action ended without
/// fixing it (dry-run plan, rejection, failure, expiry).
async fn repropose(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Identity>,
    Path(fp): Path<String>,
) -> Response {
    if let Err(r) = require(&who, "repropose") {
        return r;
    }
    let ev = Event::Repropose {
        fingerprint: fp.clone(),
        actor: who.name.clone(),
    };
    if let Err(r) = intent(&api, ev).await {
        return r;
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({ "reproposed": fp, "actor": who.name })),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposeRequest {
    runbook: String,
}

const PROPOSE: &str = "{\"runbook\": NAME} naming a runbook the alert's analysis recommends";

/// Proposes the runbook the alert's analysis recommends, with the
/// parameters the analysis took from the evidence (a request cannot give
/// any): the same parameter checks, guards and approvals as any action;
/// the proposer cannot be its only approver.
async fn propose(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Identity>,
    Path(fp): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req: ProposeRequest = match allowed_json(&who, "repropose", &headers, body, PROPOSE).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // The hub takes the parameters from the alert's analysis.
    let ev = Event::ProposeRecommended {
        fingerprint: fp.clone(),
        runbook: req.runbook.clone(),
        params: Default::default(),
        actor: who.name.clone(),
        basis: serde_json::Value::Null,
    };
    if let Err(r) = intent(&api, ev).await {
        return r;
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "proposed": req.runbook,
            "alert": fp,
            "from": "analysis",
            "actor": who.name,
        })),
    )
        .into_response()
}

async fn whoami(Extension(who): Extension<Identity>) -> Response {
    axum::Json(json!({ "name": who.name, "role": who.role, "via": who.via })).into_response()
}

/// The change stream: one JSON line with the whole snapshot, then one per
/// change (see `crate::stream`).
async fn stream(State(api): State<Arc<Api>>, Extension(who): Extension<Identity>) -> Response {
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

async fn suggestions(State(api): State<Arc<Api>>, Path(fp): Path<String>) -> Response {
    let (Ok(s), Ok(a)) = (
        api.hub.suggestions(fp.clone()).await,
        api.hub.assessment(fp).await,
    ) else {
        return hub_stopped();
    };
    axum::Json(json!({ "suggestions": s, "assessment": a })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModesRequest {
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(default)]
    frozen: Option<bool>,
}

const MODES: &str = "{\"dry_run\": BOOL} or {\"frozen\": BOOL}";

/// Dry-run and freeze. Entering dry-run needs an operator (it only makes
/// things safer); leaving it, freezing and unfreezing need an admin.
async fn modes(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Identity>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let m: ModesRequest = match read_json(&headers, body, MODES).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (what, ev) = match (m.dry_run, m.frozen) {
        (Some(on), None) => (
            if on { "dry_run_on" } else { "dry_run_off" },
            Event::SetDryRun {
                on,
                actor: who.name.clone(),
            },
        ),
        (None, Some(on)) => (
            if on { "freeze" } else { "unfreeze" },
            Event::SetFrozen {
                on,
                actor: who.name.clone(),
            },
        ),
        _ => return error(422, "body", "exactly one of dry_run or frozen", MODES),
    };
    if let Err(r) = require(&who, what) {
        return r;
    }
    if let Err(r) = intent(&api, ev).await {
        return r;
    }
    axum::Json(json!({ "changed": what, "actor": who.name })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakerRequest {
    runbook: String,
    target: String,
}

async fn reset_breaker(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Identity>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let b: BreakerRequest = match allowed_json(
        &who,
        "reset_breaker",
        &headers,
        body,
        "{\"runbook\": NAME, \"target\": HOST}",
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let snap = api.hub.snapshots.borrow().clone();
    if !snap
        .breakers
        .iter()
        .any(|(r, t, _)| *r == b.runbook && *t == b.target)
    {
        return error(
            404,
            "runbook",
            format!("no open circuit breaker for {}@{}", b.runbook, b.target),
            "a runbook and target whose breaker is open (GET /api/v1/stream, breakers)",
        );
    }
    let ev = Event::ResetBreaker {
        runbook: b.runbook,
        target: b.target,
        actor: who.name.clone(),
    };
    if let Err(r) = intent(&api, ev).await {
        return r;
    }
    axum::Json(json!({ "reset": true, "actor": who.name })).into_response()
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

const PAGE: &str = "?before=SEQ&limit=N&count=1&target=HOST&runbook=NAME&kind=KIND&actor=NAME";

/// A page of the trail, newest first, filtered (the console's Audit pane).
async fn audit_page(
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
async fn audit_export(State(api): State<Arc<Api>>) -> Response {
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

async fn health(State(api): State<Arc<Api>>) -> Response {
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
    let body = axum::Json(json!({
        "status": status,
        "audit_seq": snap.audit_seq,
        "sources": snap.sources,
        "tasks": tasks,
        "fault": fault,
    }));
    if dead {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    } else {
        body.into_response()
    }
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
    /// Ignored: the actor is who asks.
    #[serde(default)]
    #[allow(dead_code)]
    actor: Option<String>,
    #[serde(default)]
    comment: String,
}

const SILENCE: &str = "{\"duration\": \"2h\", \"comment\": TEXT}";

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
    Extension(who): Extension<Identity>,
    Path(fp): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req: SilenceRequest = match allowed_json(&who, "silence", &headers, body, SILENCE).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match api
        .silencer
        .silence(&fp, &req.duration, &who.name, &req.comment)
        .await
    {
        Ok(o) => (StatusCode::CREATED, axum::Json(o)).into_response(),
        Err(e) => silence_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsilenceRequest {
    /// Ignored: the actor is who asks.
    #[serde(default)]
    #[allow(dead_code)]
    actor: Option<String>,
}

async fn unsilence(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Identity>,
    Path(fp): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = require(&who, "unsilence") {
        return r;
    }
    if headers.get(header::CONTENT_LENGTH).is_none_or(|v| v != "0") {
        let _req: UnsilenceRequest = match read_json(&headers, body, "{}").await {
            Ok(v) => v,
            Err(r) => return r,
        };
    }
    match api.silencer.expire(&fp, &who.name).await {
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
