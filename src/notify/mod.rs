//! Escalation to people: PagerDuty Events API v2 (`trigger`, and `resolve`
//! when the alert later resolves) and a generic JSON webhook with a
//! Slack-compatible `text`, each retried with exponential backoff. Implements
//! `crate::engine::Escalator`; the hub hands escalations and resolutions
//! over and never waits.
//!
//! Delivers messages only; whether to escalate is the engine's decision.
//! Secrets (routing keys) come from the environment and are never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{EscalationKind, EscalationSpec};
use crate::engine::{Escalation, Escalator, Resolution};
use crate::model::Severity;

/// PagerDuty's limit on `payload.summary`.
pub const SUMMARY_MAX: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("escalation {name:?}: the environment variable {var} (routing key) is not set")]
    MissingKey { name: String, var: String },
    #[error("escalation: {0}")]
    Client(String),
}

/// One configured destination.
#[derive(Clone)]
struct Target {
    name: String,
    kind: EscalationKind,
    url: String,
    routing_key: Option<String>,
    min_severity: Option<Severity>,
    attempts: u32,
    backoff: Duration,
}

/// Delivers escalations to every configured destination.
pub struct Notifier {
    targets: Vec<Target>,
    http: reqwest::Client,
    /// dedup_key → severity of incidents triggered and not yet resolved.
    open: Arc<Mutex<HashMap<String, Severity>>>,
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// PagerDuty's severities: critical, error, warning, info.
pub fn pagerduty_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// The incident id: the alert's fingerprint, else the action's id.
pub fn incident_id(e: &Escalation) -> String {
    e.fingerprint
        .clone()
        .filter(|f| !f.is_empty())
        .or_else(|| e.action.map(|a| a.to_string()))
        .unwrap_or_else(|| "vigil".into())
}

/// The PagerDuty Events v2 body of a trigger.
pub fn pagerduty_trigger(routing_key: &str, e: &Escalation) -> Value {
    let mut details = serde_json::Map::new();
    for (k, v) in [
        ("alert", &e.alert),
        ("runbook", &e.runbook),
        ("target", &e.target),
        ("action_id", &e.action.map(|a| a.to_string())),
    ] {
        if let Some(v) = v {
            details.insert(k.into(), json!(v));
        }
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": incident_id(e),
        "payload": {
            "summary": clip(&e.summary, SUMMARY_MAX),
            "source": e.target.clone().unwrap_or_else(|| "vigil".into()),
            "severity": pagerduty_severity(e.severity),
            "component": e.runbook,
            "class": e.alert,
            "custom_details": details,
        },
    })
}

/// The PagerDuty Events v2 body of a resolve.
pub fn pagerduty_resolve(routing_key: &str, dedup_key: &str) -> Value {
    json!({ "routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key })
}

/// The generic webhook body: Slack-compatible `text` plus the fields.
pub fn webhook_body(e: &Escalation, event: &str) -> Value {
    let text = match event {
        "resolve" => format!(
            "RESOLVED [{}] {}",
            e.severity.as_str().to_uppercase(),
            e.alert.as_deref().unwrap_or("incident")
        ),
        _ => format!(
            "ESCALATED [{}] {}",
            e.severity.as_str().to_uppercase(),
            e.summary
        ),
    };
    json!({
        "text": text,
        "event": event,
        "incident": incident_id(e),
        "severity": e.severity,
        "alert": e.alert,
        "fingerprint": e.fingerprint,
        "runbook": e.runbook,
        "target": e.target,
        "action_id": e.action.map(|a| a.to_string()),
        "summary": e.summary,
    })
}

impl Notifier {
    /// Builds the notifier; a PagerDuty entry whose routing key variable is
    /// not set is an error (found at start, not at 3 a.m.).
    pub fn new(specs: &[EscalationSpec]) -> Result<Notifier, NotifyError> {
        let mut targets = Vec::new();
        let mut timeout = Duration::from_secs(10);
        for s in specs {
            let routing_key = match &s.routing_key_env {
                Some(var) => match std::env::var(var) {
                    Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
                    _ => {
                        return Err(NotifyError::MissingKey {
                            name: s.name.clone(),
                            var: var.clone(),
                        });
                    }
                },
                None => None,
            };
            timeout = timeout.min(s.timeout());
            targets.push(Target {
                name: s.name.clone(),
                kind: s.kind,
                url: s.url().to_string(),
                routing_key,
                min_severity: s.min_severity,
                attempts: s.max_attempts(),
                backoff: s.backoff(),
            });
        }
        Ok(Notifier {
            targets,
            http: crate::net::http_client(timeout).map_err(NotifyError::Client)?,
            open: Arc::default(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    fn deliver(&self, t: &Target, body: Value, what: String) {
        let http = self.http.clone();
        let t = t.clone();
        tokio::spawn(async move {
            let mut delay = t.backoff;
            for attempt in 1..=t.attempts {
                let r = http.post(&t.url).json(&body).send().await;
                let why = match r {
                    Ok(resp) if resp.status().is_success() => {
                        tracing::info!(escalation = %t.name, attempt, "{what} delivered");
                        return;
                    }
                    Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
                    // The URL is left out: a chat webhook's path is a secret.
                    Err(e) => e.without_url().to_string(),
                };
                tracing::warn!(escalation = %t.name, attempt, of = t.attempts, "{what} not delivered: {why}");
                if attempt < t.attempts {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
            }
            tracing::error!(escalation = %t.name, "{what} given up after {} attempts", t.attempts);
        });
    }

    fn send_all(&self, e: &Escalation, event: &str) {
        for t in &self.targets {
            if t.min_severity.is_some_and(|m| e.severity < m) {
                continue;
            }
            let body = match t.kind {
                EscalationKind::Pagerduty => {
                    let key = t.routing_key.as_deref().unwrap_or_default();
                    if event == "resolve" {
                        pagerduty_resolve(key, &incident_id(e))
                    } else {
                        pagerduty_trigger(key, e)
                    }
                }
                EscalationKind::Webhook => webhook_body(e, event),
            };
            self.deliver(t, body, format!("{event} {}", incident_id(e)));
        }
    }

    /// Resolves the incident of alert `fingerprint` if one was triggered
    /// (PagerDuty `resolve`, a webhook `RESOLVED` message); returns whether
    /// it was.
    pub fn resolve(
        &self,
        fingerprint: &str,
        alert: Option<String>,
        target: Option<String>,
        detail: Option<String>,
    ) -> bool {
        let sev = self
            .open
            .lock()
            .ok()
            .and_then(|mut o| o.remove(fingerprint));
        let Some(severity) = sev else {
            return false;
        };
        let e = Escalation {
            action: None,
            alert,
            fingerprint: Some(fingerprint.to_string()),
            runbook: None,
            target,
            severity,
            summary: detail.unwrap_or_default(),
        };
        self.send_all(&e, "resolve");
        true
    }
}

impl Escalator for Notifier {
    fn escalate(&self, e: Escalation) {
        if let Some(fp) = e.fingerprint.clone().filter(|f| !f.is_empty())
            && let Ok(mut o) = self.open.lock()
        {
            o.insert(fp, e.severity);
        }
        self.send_all(&e, "trigger");
    }

    fn resolved(&self, r: Resolution) {
        self.resolve(&r.fingerprint, r.alert, r.target, r.detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_at_most_max_chars() {
        let long = "é".repeat(2000);
        assert_eq!(clip(&long, SUMMARY_MAX).chars().count(), SUMMARY_MAX);
        assert_eq!(clip("short", SUMMARY_MAX), "short");
    }
}
