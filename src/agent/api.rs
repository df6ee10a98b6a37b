//! The agent's job API, the counterpart of the hub's http executor
//! (`exec::http`):
//!
//! - `GET /health` (open): `{"status": "ok", "role": "agent", ...}`.
//! - `POST /jobs` with `Idempotency-Key`: 201 and the job when new (stored
//!   durably first), 200 and the same job for the same key and body, 409
//!   for the same key with another body, 422 when the job is not exactly
//!   the agent's own plan (the answer names what differs; the refusal is
//!   logged), 503 with `Retry-After` when the queue is full.
//! - `GET /jobs/{id}`: the job (`status`, `exit_code`, `detail`, `output`,
//!   `facts`, `steps`).
//! - `GET /jobs?status=failed&limit=N`: a hub's jobs, newest first (the
//!   failed ones are the dead-letter view).
//! - `POST /jobs/{id}/cancel`: a queued job is cancelled at once (200), a
//!   running one is stopped with its process group (202), a finished one
//!   is 409.
//!
//! Every route but `/health` needs a hub's bearer token (compared in
//! constant time); a hub sees and cancels only its own jobs. Without
//! configured tokens (loopback only) every caller is the hub "local".

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::runbook::Catalog;

use super::check::{JobBody, check};
use super::config::HubToken;
use super::runner::Runner;
use super::store::{Cancel, JobStore, NewJob, Status, Submitted, off_thread, seq_of};

/// What the routes share.
pub struct AgentState {
    pub store: Arc<JobStore>,
    pub runner: Arc<Runner>,
    pub catalog: Catalog,
    pub targets: Option<Vec<String>>,
    pub tokens: Vec<HubToken>,
    pub max_queued: usize,
}

/// The hub a request came from (set by the token check).
#[derive(Clone)]
struct Hub(String);

/// The hub name when no tokens are configured (loopback only).
pub const LOCAL_HUB: &str = "local";

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn job_answer(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

pub fn router(state: Arc<AgentState>) -> Router {
    let guarded = Router::new()
        .route("/jobs", post(submit).get(list))
        .route("/jobs/{id}", get(one))
        .route("/jobs/{id}/cancel", post(cancel))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ));
    Router::new()
        .route("/health", get(health))
        .merge(guarded)
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(state)
}

async fn authenticate(State(s): State<Arc<AgentState>>, mut req: Request, next: Next) -> Response {
    let hub = if s.tokens.is_empty() {
        Some(LOCAL_HUB.to_string())
    } else {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().as_bytes());
        // Every token is compared, whichever matches.
        presented.and_then(|p| {
            s.tokens.iter().fold(None, |found, t| {
                if t.token.admits(p) {
                    Some(t.hub.clone())
                } else {
                    found
                }
            })
        })
    };
    match hub {
        Some(h) => {
            req.extensions_mut().insert(Hub(h));
            next.run(req).await
        }
        None => {
            tracing::warn!(
                path = %req.uri().path(),
                "refused a request without a valid bearer token"
            );
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required (Authorization: Bearer TOKEN)",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

async fn health(State(s): State<Arc<AgentState>>) -> Response {
    match off_thread(&s.store, |st| st.counts()).await {
        Ok(c) => axum::Json(json!({
            "status": "ok",
            "role": "agent",
            "version": env!("CARGO_PKG_VERSION"),
            "queued": c.get("queued"),
            "running": s.runner.running(),
        }))
        .into_response(),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the job store cannot be read",
        ),
    }
}

/// Runs a store call off the async threads; a failure is a 503.
async fn blocking<T: Send + 'static>(
    s: &AgentState,
    f: impl FnOnce(&JobStore) -> Result<T, super::store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    off_thread(&s.store, f).await.map_err(|_| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the job store failed; nothing was accepted",
        )
    })
}

fn valid_key(k: &str) -> bool {
    (1..=200).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
}

async fn submit(
    State(s): State<Arc<AgentState>>,
    axum::Extension(Hub(hub)): axum::Extension<Hub>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| valid_key(k))
        .map(str::to_string)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "an Idempotency-Key header is required: 1..200 printable characters without spaces",
        );
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
            );
        }
    };
    let job: JobBody = match serde_path_to_error::deserialize(&value) {
        Ok(j) => j,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a job: {}: {}", e.path(), e.inner()),
            );
        }
    };
    if job.idempotency_key.as_deref().is_some_and(|k| k != key) {
        return error(
            StatusCode::BAD_REQUEST,
            "the Idempotency-Key header and the body's idempotency_key differ",
        );
    }
    // Object keys are sorted (serde_json's map), so equal bodies hash equal
    // whatever their key order on the wire.
    let body_hash = hex::encode(Sha256::digest(value.to_string().as_bytes()));
    let (h, k) = (hub.clone(), key.clone());
    let old = match blocking(&s, move |st| st.by_key(&h, &k)).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(old) = old {
        return same_key(old, &body_hash, &key);
    }
    let accepted = match check(&s.catalog, s.targets.as_deref(), &job) {
        Ok(a) => a,
        Err(why) => {
            tracing::warn!(
                hub = %hub, key = %key.escape_debug(), runbook = %job.runbook.escape_debug(),
                target = %job.target.escape_debug(), "refused a job: {why}"
            );
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("refused: {why}; nothing was stored or run"),
            );
        }
    };
    let new = NewJob {
        hub,
        key: key.clone(),
        body_hash: body_hash.clone(),
        action_id: job.action_id,
        attempt: job.attempt,
        runbook: job.runbook,
        target: job.target,
        params: accepted.params,
        plan: accepted.plan,
    };
    let max = s.max_queued;
    match blocking(&s, move |st| st.submit(&new, max)).await {
        Err(r) => r,
        Ok(Submitted::Created(j)) => {
            s.runner.wake();
            tracing::info!(job = %j.id(), hub = %j.spec.hub, key = %j.spec.key, runbook = %j.spec.runbook, target = %j.spec.target, "job queued");
            job_answer(StatusCode::CREATED, j.answer())
        }
        Ok(Submitted::Existing(j) | Submitted::Conflict(j)) => same_key(j, &body_hash, &key),
        Ok(Submitted::Full) => {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the queue is full ({max} jobs wait); try again later"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

/// A key seen before: the same job for the same body, 409 otherwise.
fn same_key(old: super::store::Job, body_hash: &str, key: &str) -> Response {
    if old.spec.body_hash == body_hash {
        job_answer(StatusCode::OK, old.answer())
    } else {
        error(
            StatusCode::CONFLICT,
            format!(
                "idempotency key {:?} was used for {} with another body; a new attempt needs a new key",
                key,
                old.id()
            ),
        )
    }
}

/// A job id from the path (`job-123`); anything else is a 404.
struct JobId {
    id: String,
    seq: i64,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for JobId {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<JobId, Response> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match seq_of(&id) {
            Some(seq) => Ok(JobId { id, seq }),
            None => Err(error(
                StatusCode::NOT_FOUND,
                "no such job (ids look like job-123)",
            )),
        }
    }
}

async fn one(
    State(s): State<Arc<AgentState>>,
    axum::Extension(Hub(hub)): axum::Extension<Hub>,
    JobId { id, seq }: JobId,
) -> Response {
    match blocking(&s, move |st| st.get(&hub, seq)).await {
        Err(r) => r,
        Ok(Some(j)) => job_answer(StatusCode::OK, j.answer()),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no job {id} of this hub")),
    }
}

#[derive(serde::Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(s): State<Arc<AgentState>>,
    axum::Extension(Hub(hub)): axum::Extension<Hub>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "accepted query: status=queued|running|succeeded|failed|cancelled, limit=1..1000",
        );
    };
    let status = match q.status.as_deref() {
        None => None,
        Some(t) => match Status::parse(t) {
            Some(st) => Some(st),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "status={:?}: accepted queued, running, succeeded, failed, cancelled",
                        t.escape_debug().to_string()
                    ),
                );
            }
        },
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    match blocking(&s, move |st| st.list(&hub, status, limit)).await {
        Err(r) => r,
        Ok(jobs) => axum::Json(json!({
            "jobs": jobs.iter().map(|j| j.answer()).collect::<Vec<_>>()
        }))
        .into_response(),
    }
}

async fn cancel(
    State(s): State<Arc<AgentState>>,
    axum::Extension(Hub(hub)): axum::Extension<Hub>,
    JobId { id, seq }: JobId,
) -> Response {
    let who = hub.clone();
    match blocking(&s, move |st| st.cancel(&who, seq)).await {
        Err(r) => r,
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no job {id} of this hub")),
        Ok(Some(Cancel::Dequeued(j))) => {
            tracing::info!(job = %j.id(), hub = %hub, "queued job cancelled");
            job_answer(StatusCode::OK, j.answer())
        }
        Ok(Some(Cancel::Stopping(j))) => {
            s.runner.cancel(seq);
            tracing::info!(job = %j.id(), hub = %hub, "running job cancelled: stopping its process group");
            let mut v = j.answer();
            v["detail"] = json!("cancelling: its process group is being stopped");
            job_answer(StatusCode::ACCEPTED, v)
        }
        Ok(Some(Cancel::Finished(j))) => error(
            StatusCode::CONFLICT,
            format!(
                "{} already ended ({}); nothing to cancel",
                j.id(),
                j.status.as_str()
            ),
        ),
    }
}
