//! Silencing an alert: the one entry point the console's palette
//! (`silence DURATION [comment]`) and the HTTP API share. Creates the
//! Alertmanager silence from the alert's labels (author = the operator) when
//! the alert came from an Alertmanager or one is configured, then tells the
//! hub (`Event::Silence`), which records `silence_created` and holds new
//! actions back until the silence ends.
//!
//! Does I/O (the Alertmanager call); the decision stays in the engine.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use super::client::{AlertmanagerClient, ClientError, Silence, matchers_for};
use crate::config::{SourceKind, SourceSpec};
use crate::engine::Event;
use crate::hub::HubHandle;
use crate::model::{AlertOrigin, Time};

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("no alert with fingerprint {0:?}")]
    UnknownAlert(String),
    #[error("duration {0:?} is invalid; expected from 1m to 30d, e.g. \"2h\"")]
    BadDuration(String),
    #[error("the alert has no active silence")]
    NotSilenced,
    #[error("Alertmanager refused: {0}")]
    Upstream(#[from] ClientError),
    #[error("the hub has stopped")]
    HubGone,
}

/// What a silence request did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SilenceOutcome {
    pub fingerprint: String,
    pub id: String,
    pub until: Time,
    /// The Alertmanager it was created in; `None` when only Vigil holds it.
    pub alertmanager: Option<String>,
}

/// Creates, lists and expires silences.
#[derive(Clone)]
pub struct Silencer {
    hub: HubHandle,
    alertmanagers: Arc<Vec<AlertmanagerClient>>,
}

impl Silencer {
    pub fn new(hub: HubHandle, sources: &[SourceSpec]) -> Silencer {
        let ams = sources
            .iter()
            .filter(|s| s.kind == SourceKind::Alertmanager)
            .map(|s| AlertmanagerClient::new(&s.name, &s.url, s.timeout()))
            .collect();
        Silencer {
            hub,
            alertmanagers: Arc::new(ams),
        }
    }

    fn upstream_for(&self, source: &str) -> Option<&AlertmanagerClient> {
        self.alertmanagers
            .iter()
            .find(|c| c.name() == source)
            .or_else(|| self.alertmanagers.first())
    }

    /// Silences the alert `fingerprint` for `duration` (`"2h"`), by `actor`
    /// with `comment`. An alert from outside is silenced in Alertmanager
    /// too; one of Vigil's own policies only in Vigil.
    pub async fn silence(
        &self,
        fingerprint: &str,
        duration: &str,
        actor: &str,
        comment: &str,
    ) -> Result<SilenceOutcome, SilenceError> {
        let d = crate::units::parse_duration(duration)
            .ok()
            .filter(|d| *d >= Duration::from_secs(60) && *d <= Duration::from_secs(30 * 86400))
            .ok_or_else(|| SilenceError::BadDuration(duration.to_string()))?;
        let alert = self
            .hub
            .snapshots
            .borrow()
            .alerts
            .iter()
            .find(|a| a.fingerprint == fingerprint)
            .cloned()
            .ok_or_else(|| SilenceError::UnknownAlert(fingerprint.to_string()))?;
        let now = Utc::now();
        let until = now + chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::hours(1));
        let upstream = match alert.origin {
            AlertOrigin::External => self.upstream_for(&alert.source),
            AlertOrigin::Policy => None,
        };
        let (id, am) = match upstream {
            Some(c) => {
                // Alertmanager matches on the alert's own labels, not on the
                // severity Vigil may have derived.
                let id = c
                    .create_silence(matchers_for(&alert.labels), now, until, actor, comment)
                    .await?;
                (id, Some(c.name().to_string()))
            }
            None => (format!("vigil-{fingerprint}-{}", now.timestamp()), None),
        };
        self.hub
            .events
            .send(Event::Silence {
                fingerprint: fingerprint.to_string(),
                id: id.clone(),
                until,
                actor: actor.to_string(),
                comment: comment.to_string(),
            })
            .await
            .map_err(|_| SilenceError::HubGone)?;
        Ok(SilenceOutcome {
            fingerprint: fingerprint.to_string(),
            id,
            until,
            alertmanager: am,
        })
    }

    /// Ends the silence of an alert now (in Alertmanager too).
    pub async fn expire(&self, fingerprint: &str, actor: &str) -> Result<String, SilenceError> {
        let alert = self
            .hub
            .snapshots
            .borrow()
            .alerts
            .iter()
            .find(|a| a.fingerprint == fingerprint)
            .cloned()
            .ok_or_else(|| SilenceError::UnknownAlert(fingerprint.to_string()))?;
        let s = alert.silence.clone().ok_or(SilenceError::NotSilenced)?;
        if !s.id.starts_with("vigil-")
            && let Some(c) = self.upstream_for(&alert.source)
        {
            c.expire_silence(&s.id).await?;
        }
        self.hub
            .events
            .send(Event::Unsilence {
                fingerprint: fingerprint.to_string(),
                actor: actor.to_string(),
            })
            .await
            .map_err(|_| SilenceError::HubGone)?;
        Ok(s.id)
    }

    /// The silences of every configured Alertmanager, by source name.
    pub async fn list(&self) -> Vec<(String, Result<Vec<Silence>, ClientError>)> {
        let mut out = Vec::new();
        for c in self.alertmanagers.iter() {
            out.push((c.name().to_string(), c.silences().await));
        }
        out
    }
}
