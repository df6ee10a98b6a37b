//! The routes of the HTTP listener: the Alertmanager webhook, the ingest
//! API, the JSON API over the hub's snapshots and the audit trail, `/health`
//! and `/metrics`. Errors are JSON naming the field and what is accepted.
//!
//! Hands events to the hub and reads; never decides nor writes the trail.

// Handlers' early returns are ready responses; boxing them buys nothing.
#![allow(clippy::result_large_err)]

mod guard;
mod intents;
mod reads;

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
use guard::*;
use intents::*;
use reads::*;

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

/// A standby acts on nothing: what only the active hub does is refused
/// with its name and address (503, so that a sender retries; a standby
/// that takes over accepts the retry).
pub(super) fn standby(api: &Api) -> Option<Response> {
    let why = api.hub.vitals.standby_refusal()?;
    let mut r = error(
        503,
        "hub",
        why,
        "send it to the active hub, or retry: a standby takes over within the lease time",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    Some(r)
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
    if let Some(r) = standby(&api) {
        // A standby on a shared store keeps the delivery in the store's
        // inbox for the active hub: acknowledged once journaled.
        let Some(j) = &api.journal else { return r };
        let n = p.alerts.len();
        let by = api.hub.vitals.role().map(|r| r.holder).unwrap_or_default();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        return match j.put(by, api.webhook_source.clone(), body).await {
            Ok(id) => {
                tracing::info!(id, received = n, "journaled a delivery for the active hub");
                (
                    StatusCode::ACCEPTED,
                    axum::Json(json!({
                        "received": n,
                        "journaled": id,
                        "detail": "this hub is a standby: the delivery is in the shared store for the active hub",
                    })),
                )
                    .into_response()
            }
            Err(e) => {
                tracing::warn!("cannot journal a delivery: {e}");
                r
            }
        };
    }
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
