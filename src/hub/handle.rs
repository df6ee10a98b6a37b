//! The hub's handle: what the console, the servers and the tests send
//! (events, intents, queries) and the answers they get.

use super::*;

/// The handle the console and the servers use.
#[derive(Clone)]
pub struct HubHandle {
    pub events: mpsc::Sender<Event>,
    /// Deliveries acknowledged once durable (see [`HubHandle::deliver`]).
    pub deliveries: mpsc::Sender<Delivery>,
    /// Senders of `Event::Samples` go through it first (see
    /// [`SampleBacklog`]).
    pub backlog: Arc<SampleBacklog>,
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// The alert (fingerprint) the console looks at: the hub adds its
    /// runbook suggestions to the snapshots.
    pub focus: Arc<watch::Sender<Option<String>>>,
    /// Questions and operator intents that want an answer.
    pub queries: mpsc::Sender<Query>,
    /// Which of the hub's tasks are alive, and its first fault.
    pub vitals: Arc<crate::vital::Vitals>,
}

/// The test-only fault `VIGIL_FAULT=panic-on-alert=NAME` (debug builds).
pub(super) fn injected_panic(ev: &Event) {
    if let Event::Alert(a) = ev
        && let Some(name) = crate::vital::injected("panic-on-alert")
        && a.labels.get("alertname").map(String::as_str) == Some(name)
    {
        panic!("injected fault: alert {name} arrived");
    }
}

/// A request to the hub that is answered.
#[derive(Debug)]
pub enum Query {
    /// The runbooks that could handle an alert now, with their guards:
    /// the matched ones and the analysis' recommendations, with why and
    /// why not.
    Suggestions {
        fingerprint: String,
        reply: tokio::sync::oneshot::Sender<Vec<Suggestion>>,
    },
    /// The weighed facts behind an alert's analysis.
    Assessment {
        fingerprint: String,
        reply: tokio::sync::oneshot::Sender<Option<Arc<Assessment>>>,
    },
    /// An operator's intent. Answered once its records are durable, or
    /// with why it was refused.
    Intent {
        event: Event,
        reply: tokio::sync::oneshot::Sender<Result<(), IntentError>>,
    },
}

/// Why an intent was not carried out.
#[derive(Debug, Clone, PartialEq)]
pub enum IntentError {
    /// The engine refused it (unknown action, already approved by this
    /// operator, a run of an unknown runbook, ...).
    Refused(crate::engine::Refusal),
    HubStopped,
    /// This hub is a standby (hubs sharing a store): why, naming the
    /// active hub.
    Standby(String),
}

impl std::fmt::Display for IntentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntentError::Refused(r) => f.write_str(&r.message),
            IntentError::HubStopped => f.write_str("the hub has stopped"),
            IntentError::Standby(why) => f.write_str(why),
        }
    }
}

impl HubHandle {
    /// Hands `events` to the hub and returns once they were handled and
    /// every record they caused is committed: only then may a sender be
    /// told its delivery is accepted (rule 12). A full queue is refused at
    /// once ([`DeliveryError::Busy`]) rather than waited for.
    pub async fn deliver(&self, events: Vec<Event>) -> Result<(), DeliveryError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.deliveries
            .try_send(Delivery { events, done })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => DeliveryError::Busy,
                mpsc::error::TrySendError::Closed(_) => DeliveryError::Stopped,
            })?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DeliveryError::Store(e)),
            Err(_) => Err(DeliveryError::Stopped),
        }
    }

    /// Carries out an operator's intent and waits for the hub's answer.
    pub async fn intent(&self, event: Event) -> Result<(), IntentError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queries
            .send(Query::Intent { event, reply })
            .await
            .map_err(|_| IntentError::HubStopped)?;
        answer.await.map_err(|_| IntentError::HubStopped)?
    }

    /// The runbooks that could handle the alert `fingerprint` now.
    pub async fn suggestions(&self, fingerprint: String) -> Result<Vec<Suggestion>, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queries
            .send(Query::Suggestions { fingerprint, reply })
            .await
            .map_err(|_| "the hub has stopped".to_string())?;
        answer.await.map_err(|_| "the hub has stopped".to_string())
    }

    /// The weighed facts behind the analysis of alert `fingerprint`.
    pub async fn assessment(&self, fingerprint: String) -> Result<Option<Arc<Assessment>>, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queries
            .send(Query::Assessment { fingerprint, reply })
            .await
            .map_err(|_| "the hub has stopped".to_string())?;
        answer.await.map_err(|_| "the hub has stopped".to_string())
    }

    /// Proposes the analysis' runbook `runbook` for alert `fingerprint` as
    /// `actor` (parameters from the analysis, never from the caller).
    pub async fn propose_recommended(
        &self,
        fingerprint: String,
        runbook: String,
        actor: String,
    ) -> Result<(), IntentError> {
        self.intent(Event::ProposeRecommended {
            fingerprint,
            runbook,
            params: BTreeMap::new(),
            actor,
            basis: serde_json::Value::Null,
        })
        .await
    }
}
