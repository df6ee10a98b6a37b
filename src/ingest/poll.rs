//! Pollers: for consoles that cannot receive webhooks, fetch the firing
//! alerts of each `[[sources]]` entry on its interval, with a time limit and
//! exponential backoff, hand them to the hub, resolve the ones that went
//! away, and report each source's health on the `SourceBoard`.
//!
//! Reads remote servers; never decides what an alert means.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};

use super::client::{AlertmanagerClient, ClientError, PrometheusClient};
use crate::config::{SourceKind, SourceSpec};
use crate::engine::Event;
use crate::hub::{HealthState, SourceBoard, SourceHealth};
use crate::model::{AlertStatus, IncomingAlert};

/// Consecutive failures after which a source shows as Down (Degraded before).
const DOWN_AFTER: u32 = 3;
/// The longest wait between polls of a failing source.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Writes a source's health to the board.
pub fn report(board: &SourceBoard, name: &str, kind: &str, state: HealthState, detail: String) {
    if let Ok(mut b) = board.write() {
        let last_ok = match state {
            HealthState::Ok => Some(Utc::now()),
            _ => b.get(name).and_then(|h| h.last_ok),
        };
        b.insert(
            name.to_string(),
            SourceHealth {
                name: name.to_string(),
                kind: kind.to_string(),
                state,
                detail,
                last_ok,
            },
        );
    }
}

/// A source's run of failures, and the log lines it is worth: one warning
/// when it starts failing, one when it is Down, one info line when it
/// recovers (not one line per failed poll).
#[derive(Debug, Default)]
pub struct SourceLog {
    failures: u32,
    since: Option<chrono::DateTime<Utc>>,
}

impl SourceLog {
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A failure: logs when the run starts and when it turns Down; the
    /// state the source is in now.
    pub fn failed(&mut self, name: &str, why: &str) -> HealthState {
        self.failures += 1;
        if self.failures == 1 {
            self.since = Some(Utc::now());
            tracing::warn!(source = %name, "source failing: {why}");
        } else if self.failures == DOWN_AFTER {
            tracing::warn!(source = %name, failures = self.failures, "source down: {why}");
        } else {
            tracing::debug!(source = %name, failures = self.failures, "source still failing: {why}");
        }
        if self.failures >= DOWN_AFTER {
            HealthState::Down
        } else {
            HealthState::Degraded
        }
    }

    /// A success: logs the recovery after a run of failures.
    pub fn ok(&mut self, name: &str) {
        if self.failures > 0 {
            let since = self
                .since
                .map(|t| crate::model::fmt_time(&t))
                .unwrap_or_default();
            tracing::info!(source = %name, failures = self.failures, "source recovered (failing since {since})");
        }
        self.failures = 0;
        self.since = None;
    }
}

enum Fetcher {
    Am(AlertmanagerClient),
    Prom(PrometheusClient),
}

/// One poll of a source: its alerts, and for an Alertmanager what it holds
/// (sent to the engine before the alerts, so a suppressed alert is known
/// as such when it fires).
struct Polled {
    alerts: Vec<IncomingAlert>,
    state: Option<Event>,
    /// Why the silences could not be read, if they could not.
    silences_error: Option<String>,
}

impl Fetcher {
    async fn poll(&self, name: &str, alerts: bool) -> Result<Polled, ClientError> {
        match self {
            Fetcher::Am(c) => {
                let silences = c.silences().await;
                let (list, suppressed) = if alerts {
                    let with = c.alerts_with_state().await?;
                    let suppressed: BTreeMap<String, crate::engine::Suppressed> = with
                        .iter()
                        .filter_map(|(a, s)| Some((a.fingerprint.clone()?, s.clone()?)))
                        .collect();
                    (with.into_iter().map(|(a, _)| a).collect(), Some(suppressed))
                } else {
                    // Webhook delivery: only the silences are polled, and a
                    // source that answers nothing is down.
                    if let Err(e) = silences {
                        return Err(e);
                    }
                    (Vec::new(), None)
                };
                let silences_error = silences.as_ref().err().map(|e| e.to_string());
                let state = Event::SourceState {
                    source: name.to_string(),
                    silences: silences
                        .ok()
                        .map(|v| v.iter().map(|s| s.to_upstream()).collect()),
                    suppressed,
                };
                Ok(Polled {
                    alerts: list,
                    state: Some(state),
                    silences_error,
                })
            }
            Fetcher::Prom(c) => Ok(Polled {
                alerts: c.alerts().await?,
                state: None,
                silences_error: None,
            }),
        }
    }
}

/// The delay before the next poll after `failures` consecutive failures.
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.min(10);
    interval
        .saturating_mul(factor)
        .min(MAX_BACKOFF.max(interval))
}

/// Starts one poller per source with `poll` on (by source name); they stop
/// when `shutdown` turns true or the hub goes away.
pub fn spawn_pollers(
    sources: &[SourceSpec],
    events: mpsc::Sender<Event>,
    board: SourceBoard,
    shutdown: watch::Receiver<bool>,
) -> Vec<(String, tokio::task::JoinHandle<()>)> {
    let mut tasks = Vec::new();
    for s in sources {
        let kind = s.kind.as_str();
        // An Alertmanager that delivers by webhook still has its silences
        // polled: a webhook alert matching one gets no action.
        let silences_only = !s.polls() && s.kind == SourceKind::Alertmanager;
        if !s.polls() && !silences_only {
            report(
                &board,
                &s.name,
                kind,
                HealthState::Unknown,
                "not polled (webhook or silences only)".into(),
            );
            continue;
        }
        report(
            &board,
            &s.name,
            kind,
            HealthState::Unknown,
            "first poll pending".into(),
        );
        let fetcher = Arc::new(match s.kind {
            SourceKind::Alertmanager => {
                Fetcher::Am(AlertmanagerClient::new(&s.name, &s.url, s.timeout()))
            }
            SourceKind::Prometheus => {
                Fetcher::Prom(PrometheusClient::new(&s.name, &s.url, s.timeout()))
            }
        });
        let (name, interval) = (s.name.clone(), s.interval());
        let (events, board, mut shutdown) = (events.clone(), board.clone(), shutdown.clone());
        tasks.push((
            s.name.clone(),
            tokio::spawn(async move {
                let mut known: BTreeMap<String, IncomingAlert> = BTreeMap::new();
                let mut log = SourceLog::default();
                loop {
                    match fetcher.poll(&name, !silences_only).await {
                        Ok(Polled {
                            alerts: list,
                            state,
                            silences_error,
                        }) => {
                            log.ok(&name);
                            if let Some(ev) = state
                                && events.send(ev).await.is_err()
                            {
                                return;
                            }
                            let n = list.len();
                            let now: HashSet<String> =
                                list.iter().filter_map(|a| a.fingerprint.clone()).collect();
                            let gone: Vec<IncomingAlert> = known
                                .iter()
                                .filter(|(fp, _)| !now.contains(*fp))
                                .map(|(_, a)| IncomingAlert {
                                    status: AlertStatus::Resolved,
                                    ..a.clone()
                                })
                                .collect();
                            known = list
                                .iter()
                                .filter_map(|a| a.fingerprint.clone().map(|f| (f, a.clone())))
                                .collect();
                            for a in list.into_iter().chain(gone) {
                                if events.send(Event::Alert(a)).await.is_err() {
                                    return;
                                }
                            }
                            let detail = match (silences_only, silences_error) {
                                (true, _) => "webhook delivery; silences polled".to_string(),
                                (false, None) => format!("{n} alerts"),
                                (false, Some(e)) => format!("{n} alerts; silences unreadable: {e}"),
                            };
                            report(&board, &name, kind, HealthState::Ok, detail);
                        }
                        Err(e) => {
                            let state = log.failed(&name, &e.to_string());
                            report(&board, &name, kind, state, e.to_string());
                        }
                    }
                    let wait = backoff(interval, log.failures());
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => {
                            if *shutdown.borrow() { return; }
                        }
                    }
                }
            }),
        ));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let i = Duration::from_secs(15);
        assert_eq!(backoff(i, 0), i);
        assert_eq!(backoff(i, 1), Duration::from_secs(30));
        assert_eq!(backoff(i, 3), Duration::from_secs(120));
        assert_eq!(backoff(i, 30), MAX_BACKOFF);
    }
}
