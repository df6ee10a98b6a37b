//! Who may ask: the TCP and unix-socket guards, the role cap a client may
//! ask for, the per-intent permission check, and bounded body reading.

use super::*;

/// A client may ask for less than its identity allows: `X-Vigil-Role:
/// viewer` (a read-only console).
const ROLE_HEADER: &str = "x-vigil-role";

fn role_cap(headers: &HeaderMap) -> Option<Role> {
    headers
        .get(ROLE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_value(Value::String(v.trim().to_lowercase())).ok())
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
pub(super) async fn admit(api: &Api, mut req: Request, who: Identity, next: Next) -> Response {
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
    // A standby changes nothing: every route that would is refused before
    // it runs, naming the active hub (the evaluation of a policy against
    // given samples only reads; the webhook journals for the active hub).
    if req.method() == axum::http::Method::POST
        && !matches!(
            req.uri().path(),
            "/api/v1/policies/evaluate" | "/hooks/alertmanager"
        )
        && let Some(r) = super::standby(api)
    {
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
pub(super) async fn tcp_guard(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
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
pub(super) async fn socket_guard(
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
pub(super) fn require(who: &Identity, intent: &str) -> Result<(), Response> {
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
pub(super) async fn allowed_json<T: serde::de::DeserializeOwned>(
    who: &Identity,
    what: &str,
    headers: &HeaderMap,
    body: Body,
    accepted: &str,
) -> Result<T, Response> {
    require(who, what)?;
    read_json(headers, body, accepted).await
}

pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    accepted: &str,
) -> Result<T, Response> {
    let bytes = read_body(headers, body).await?;
    parse_json(&bytes, accepted).map_err(bad)
}

/// How long a request body may take to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, Response> {
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
