//! The http executor: hands a run to a backing job API instead of running
//! argv itself.
//!
//! Protocol (JSON over HTTP):
//! - `POST {url}/jobs` with header `Idempotency-Key: {action_id}-{attempt}`
//!   (e.g. `A000042-1`; a retry by the engine is a new attempt and a new
//!   job) and body `{"idempotency_key", "action_id", "attempt", "target",
//!   "runbook", "params", "steps": [{"name", "argv", "timeout_secs",
//!   "read_only", "rollback"}]}`. Answer `200`/`201`/`202` with
//!   `{"id", "status"}`. The same key with the same body must return the
//!   same job; the same key with another body must answer `409`.
//! - `GET {url}/jobs/{id}` answers `{"id", "status", "exit_code"?,
//!   "output"?, "detail"?, "facts"?, "steps"?}`; `status` is `queued`,
//!   `running`, `succeeded`, `failed` or `cancelled` (the last three are
//!   terminal). `detail` (else `output`) becomes the run's detail; `facts`
//!   (what steps printed as `vigil: key=value`) and `steps` (per-step exit
//!   codes and output) go into the recorded outcome with the job's id and
//!   answer. While the job runs, each new status or detail is reported as
//!   the action's progress. `vigil agent` serves this protocol.
//! - When the job is not over after `max_wait`, `POST {url}/jobs/{id}/cancel`
//!   asks the job API to stop it (a 404 from an API without cancel is
//!   reported, not retried).
//! - Network errors, `429` and `5xx` are retried with exponential backoff
//!   (honouring `Retry-After` in seconds, capped); any other answer is final.
//!   Retrying the POST is safe because of the key.
//!
//! Owns `[hosts.http]` (`url`, `token` or `token_env`, `poll_interval`,
//! `max_wait`, `retries`, `pin_sha256`: the job API's certificate by its
//! SHA-256, see `pin`). Must never log or record the token.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use tokio::sync::mpsc;

use super::pin::{Pin, parse_pin, pinned};
use crate::engine::{Event, Execution, Outcome};
use crate::units::limits;

/// `[hosts.http]` as written (typed when the config is read; checked into
/// an [`HttpTarget`] by [`HttpTarget::from_spec`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    pub url: Option<String>,
    pub token: Option<Secret>,
    pub token_env: Option<String>,
    pub poll_interval: Option<String>,
    pub max_wait: Option<String>,
    pub retries: Option<i64>,
    pub pin_sha256: Option<String>,
}

/// A bearer token; never printed (read from a config file as its text).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// One job API, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTarget {
    /// Base URL; jobs are at `{url}/jobs`.
    pub url: String,
    pub token: Option<Secret>,
    pub poll_interval: Duration,
    /// Longest wait for a terminal state (default: the steps' timeouts plus
    /// a minute).
    pub max_wait: Option<Duration>,
    /// Retries of one request on network errors, 429 and 5xx (default 5).
    pub retries: u32,
    /// The job API's certificate, pinned (https only).
    pub pin: Option<Pin>,
}

fn delta(
    key: &str,
    s: &str,
    range: crate::units::DurationRange,
) -> Result<Duration, (String, String)> {
    range.parse(key, s).map_err(|e| (key.to_string(), e))
}

impl HttpTarget {
    /// Reads `[hosts.http]` from a TOML table (a table built in code); the
    /// error is (key, what is wrong and accepted).
    pub fn from_table(t: Option<&toml::Table>) -> Result<HttpTarget, (String, String)> {
        let spec = match t {
            None => None,
            Some(t) => Some(
                toml::Value::Table(t.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| ("*".to_string(), e.message().to_string()))?,
            ),
        };
        Self::from_spec(spec)
    }

    /// Checks `[hosts.http]`; the error is (key, what is wrong and
    /// accepted).
    pub fn from_spec(spec: Option<HttpSpec>) -> Result<HttpTarget, (String, String)> {
        let Some(spec) = spec else {
            return Err((
                "url".into(),
                "executor = \"http\" needs [hosts.http] with url = \"http(s)://...\"".into(),
            ));
        };
        let url = spec.url.ok_or_else(|| {
            (
                "url".to_string(),
                "missing; expected the job API's base URL, http(s)://...".to_string(),
            )
        })?;
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| ("url".to_string(), format!("{url:?} is not a URL: {e}")))?;
        if !["http", "https"].contains(&parsed.scheme()) || parsed.host_str().is_none() {
            return Err((
                "url".into(),
                format!("{url:?}: expected an http:// or https:// URL with a host"),
            ));
        }
        let token = match (spec.token, spec.token_env) {
            (Some(_), Some(_)) => {
                return Err(("token".into(), "give token or token_env, not both".into()));
            }
            (Some(t), None) => Some(t),
            (None, Some(var)) => match std::env::var(&var) {
                Ok(v) if !v.is_empty() => Some(Secret(v)),
                _ => {
                    return Err((
                        "token_env".into(),
                        format!("the environment variable {var:?} is not set"),
                    ));
                }
            },
            (None, None) => None,
        };
        let poll_interval = match &spec.poll_interval {
            Some(s) => delta("poll_interval", s, limits::HTTP_POLL_INTERVAL)?,
            None => Duration::from_secs(1),
        };
        let max_wait = match &spec.max_wait {
            Some(s) => Some(delta("max_wait", s, limits::HTTP_MAX_WAIT)?),
            None => None,
        };
        let retries = match spec.retries {
            None => 5,
            Some(n) if (0..=20).contains(&n) => n as u32,
            Some(n) => return Err(("retries".into(), format!("{n}; expected 0..20"))),
        };
        let pin = match &spec.pin_sha256 {
            None => None,
            Some(_) if parsed.scheme() != "https" => {
                return Err((
                    "pin_sha256".into(),
                    format!("a pinned certificate needs an https:// url, not {url:?}"),
                ));
            }
            Some(text) => {
                let sha = parse_pin(text).map_err(|e| ("pin_sha256".to_string(), e))?;
                Some(pinned(sha).map_err(|e| ("pin_sha256".to_string(), e))?)
            }
        };
        Ok(HttpTarget {
            url: url.trim_end_matches('/').to_string(),
            token,
            poll_interval,
            max_wait,
            retries,
            pin,
        })
    }

    /// The idempotency key of one attempt of an action.
    pub fn key(x: &Execution) -> String {
        format!("{}-{}", x.action, x.attempt)
    }

    /// The job body for an execution.
    pub fn body(x: &Execution) -> serde_json::Value {
        json!({
            "idempotency_key": Self::key(x),
            "action_id": x.action.to_string(),
            "attempt": x.attempt,
            "target": x.target,
            "runbook": x.runbook,
            "params": x.params,
            "steps": x.steps.iter().map(|s| json!({
                "name": s.name,
                "argv": s.argv,
                "timeout_secs": s.timeout.num_seconds(),
                "read_only": s.read_only,
                "rollback": s.rollback,
            })).collect::<Vec<_>>(),
        })
    }

    /// Sends a request, retrying network errors, 429 and 5xx.
    async fn send(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        retried: &mut u32,
    ) -> Result<(reqwest::StatusCode, serde_json::Value), String> {
        let mut attempt = 0u32;
        loop {
            let mut rb = make();
            if let Some(t) = &self.token {
                rb = rb.bearer_auth(&t.0);
            }
            let backoff = Duration::from_millis(200 * 2u64.pow(attempt.min(5)));
            let (retry, why, wait) = match rb.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if status.as_u16() == 429 || status.is_server_error() {
                        let after = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(|s| Duration::from_secs(s.min(30)));
                        (true, format!("HTTP {status}"), after.unwrap_or(backoff))
                    } else {
                        let v = resp
                            .json::<serde_json::Value>()
                            .await
                            .unwrap_or(serde_json::Value::Null);
                        return Ok((status, v));
                    }
                }
                Err(e) => (true, without_url(&e), backoff),
            };
            if !retry || attempt >= self.retries {
                return Err(format!("{why} (after {} retries)", attempt));
            }
            attempt += 1;
            *retried += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// Submits the job and polls it to a terminal state; each new status or
    /// detail of the job goes to `progress` as the action's progress.
    pub async fn run(
        &self,
        client: &reqwest::Client,
        x: &Execution,
        progress: Option<&mpsc::Sender<Event>>,
    ) -> Outcome {
        let client = self.pin.as_ref().map(|p| &p.client).unwrap_or(client);
        let key = Self::key(x);
        let body = Self::body(x);
        let jobs = format!("{}/jobs", self.url);
        let mut retried = 0u32;
        let fail = |detail: String, retried: u32, job: Option<&str>| {
            let mut o = Outcome::failure(None, detail);
            o.data = Some(
                json!({"executor": "http", "idempotency_key": key, "job": job, "retries": retried}),
            );
            o
        };
        let submit = self
            .send(
                || {
                    client
                        .post(&jobs)
                        .header("Idempotency-Key", &key)
                        .json(&body)
                },
                &mut retried,
            )
            .await;
        let (status, v) = match submit {
            Ok(r) => r,
            Err(e) => return fail(format!("job API {jobs}: {e}"), retried, None),
        };
        if status.as_u16() == 409 {
            return fail(
                format!(
                    "job API refused the job: key {key} was already used for another request (409)"
                ),
                retried,
                None,
            );
        }
        if !status.is_success() {
            return fail(
                format!(
                    "job API answered {status} to the job submission: {}",
                    short(&v)
                ),
                retried,
                None,
            );
        }
        let Some(id) = v.get("id").and_then(json_id) else {
            return fail(
                format!("job API answered {status} without a job id: {}", short(&v)),
                retried,
                None,
            );
        };
        let max_wait = self.max_wait.unwrap_or_else(|| {
            let steps: i64 = x.steps.iter().map(|s| s.timeout.num_seconds().max(1)).sum();
            Duration::from_secs(steps.max(0) as u64 + 60)
        });
        let deadline = tokio::time::Instant::now() + max_wait;
        let job_url = format!("{jobs}/{id}");
        let mut last = v;
        let mut shown = String::new();
        loop {
            let state = last.get("status").and_then(|s| s.as_str()).unwrap_or("");
            if let Some(tx) = progress {
                let now = progress_line(&id, state, &last);
                if now != shown {
                    // Progress is for the eye: dropped when the hub is busy.
                    let _ = tx.try_send(Event::Progress {
                        action: x.action,
                        attempt: x.attempt,
                        detail: now.clone(),
                    });
                    shown = now;
                }
            }
            if ["succeeded", "failed", "cancelled", "canceled", "error"].contains(&state) {
                let exit_code = last
                    .get("exit_code")
                    .and_then(|c| c.as_i64())
                    .map(|c| c as i32);
                let text = |k: &str| {
                    last.get(k)
                        .and_then(|o| o.as_str())
                        .filter(|o| !o.is_empty())
                };
                let output = text("output").unwrap_or("");
                let summary = text("detail").unwrap_or(output);
                let success = state == "succeeded";
                let detail = format!(
                    "job {id} {state}{}{}",
                    if summary.is_empty() { "" } else { ": " },
                    summary.chars().take(300).collect::<String>()
                );
                let kept = |k: &str| {
                    last.get(k).filter(|v| !v.is_null()).map(|v| {
                        serde_json::from_str(&super::redact(&v.to_string())).unwrap_or(json!(null))
                    })
                };
                return Outcome {
                    success,
                    exit_code: exit_code.or(Some(if success { 0 } else { 1 })),
                    detail: super::redact(&detail),
                    data: Some(json!({
                        "executor": "http",
                        "idempotency_key": key,
                        "job": id,
                        "status": state,
                        "retries": retried,
                        "output": super::redact(&output.chars().take(4096).collect::<String>()),
                        "agent_detail": super::redact(&summary.chars().take(4096).collect::<String>()),
                        "facts": kept("facts").unwrap_or_else(|| json!({})),
                        "steps": kept("steps"),
                        "started_at": kept("started_at"),
                        "finished_at": kept("finished_at"),
                    })),
                };
            }
            if tokio::time::Instant::now() >= deadline {
                // A run that outlives its wait is stopped, on the host too
                // (as a timed-out step is): the job API is asked to cancel.
                let cancel = format!("{job_url}/cancel");
                let asked = match self.send(|| client.post(&cancel), &mut retried).await {
                    Ok((s, _)) if s.is_success() => "the job was cancelled".to_string(),
                    Ok((s, _)) => format!("cancelling it answered {s}: the job may still run"),
                    Err(e) => format!("cancelling it failed ({e}): the job may still run"),
                };
                return fail(
                    format!(
                        "job {id} still {state:?} after {}s; stopped waiting and {asked}",
                        max_wait.as_secs()
                    ),
                    retried,
                    Some(&id),
                );
            }
            tokio::time::sleep(self.poll_interval).await;
            match self.send(|| client.get(&job_url), &mut retried).await {
                Ok((s, v)) if s.is_success() => last = v,
                Ok((s, v)) => {
                    return fail(
                        format!("job API answered {s} for job {id}: {}", short(&v)),
                        retried,
                        Some(&id),
                    );
                }
                Err(e) => return fail(format!("polling job {id}: {e}"), retried, Some(&id)),
            }
        }
    }
}

/// One line for the console while the job runs: its id, status and what
/// the job API last said (detail, else the last line of its output).
fn progress_line(id: &str, state: &str, v: &serde_json::Value) -> String {
    let said = v
        .get("detail")
        .and_then(|d| d.as_str())
        .filter(|d| !d.is_empty())
        .or_else(|| {
            v.get("output")
                .and_then(|o| o.as_str())
                .and_then(|o| o.lines().rev().find(|l| !l.trim().is_empty()))
        })
        .unwrap_or("");
    let line = format!(
        "job {id} {}{}{}",
        if state.is_empty() { "submitted" } else { state },
        if said.is_empty() { "" } else { ": " },
        said.chars().take(200).collect::<String>()
    );
    super::redact(&line)
}

fn json_id(v: &serde_json::Value) -> Option<String> {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    // The id goes into a URL path: keep it to safe characters.
    (!s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
    .then_some(s)
}

fn short(v: &serde_json::Value) -> String {
    super::redact(&v.to_string().chars().take(200).collect::<String>())
}

/// A reqwest error without its URL (which may carry credentials).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_request() {
        "request failed"
    } else {
        "network error"
    };
    let mut src = String::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        src = c.to_string();
        cur = c.source();
    }
    if src.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {src}")
    }
}
