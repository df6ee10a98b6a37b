//! The intents: approve, reject, run, re-propose, propose, modes, breaker
//! resets, silence and unsilence. Each is checked against the caller's
//! identity and handed to the hub as an event.

use super::*;

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
pub(super) async fn intent(api: &Api, ev: Event) -> Result<(), Response> {
    match api.hub.intent(ev).await {
        Ok(()) => Ok(()),
        Err(crate::hub::IntentError::HubStopped) => Err(hub_stopped()),
        Err(crate::hub::IntentError::Standby(why)) => Err(error(
            503,
            "hub",
            why,
            "send it to the active hub, or retry: a standby takes over within the lease time",
        )),
        Err(crate::hub::IntentError::Refused(r)) => Err(error(
            r.http_status(),
            "intent",
            r.message,
            "an intent the hub can carry out now",
        )),
    }
}

pub(super) async fn approve(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(api, who, id, headers, body, true).await
}

pub(super) async fn reject(
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
pub(super) async fn run(
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
pub(super) async fn repropose(
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
pub(super) async fn propose(
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
pub(super) async fn modes(
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

pub(super) async fn reset_breaker(
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

pub(super) async fn silence(
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

pub(super) async fn unsilence(
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
