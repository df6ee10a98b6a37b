//! The effects the engine's commands ask for, as traits the shell's
//! effect modules implement: executors (`crate::exec`, the demo fleet),
//! escalation delivery (`crate::notify`) and evidence probes
//! (`crate::ingest::evidence`). They sit beside the command types so that
//! an effect module depends on the engine only, never on the hub.
//!
//! The engine never calls them: the hub hands each command over and feeds
//! the results back as events.

use tokio::sync::mpsc;

use super::{Escalation, Event, Execution, Probe};

/// Runs the executions that are not simulated (local, ssh, http). The
/// implementation lives in `crate::exec`; the hub only hands work over.
pub trait Executors: Send + Sync {
    /// Starts `x` in the background. Must send exactly one
    /// `Event::Finished` for it on `done`, whatever happens.
    fn spawn(&self, x: Execution, done: mpsc::Sender<Event>);
}

/// An alert resolved, once its `alert_resolved` record is durable: what an
/// escalator needs to close the incident it opened for the alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub fingerprint: String,
    pub alert: Option<String>,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// Delivers escalations to people (PagerDuty, chat webhooks). The
/// implementation retries on its own; the hub does not wait for it.
pub trait Escalator: Send + Sync {
    fn escalate(&self, e: Escalation);

    /// Every alert resolution, in audit order, each exactly once (the hub
    /// calls it after the record is written). Escalators that open
    /// incidents close them here.
    fn resolved(&self, _r: Resolution) {}
}

/// Queries the rule behind an outside alert while its action waits for the
/// source (`crate::ingest::evidence`). Sends `Event::Evidence` on `done`
/// until the probe's `until`; may send nothing when it cannot ask.
pub trait Prober: Send + Sync {
    fn probe(&self, p: Probe, done: mpsc::Sender<Event>);
}
