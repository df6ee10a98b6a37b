//! The hub: the imperative shell around the engine. It owns the engine, the
//! audit writer and the effect tasks; it reads the clock, receives events on
//! a channel, writes every record durably *before* performing the commands
//! of the same batch, spawns executions and feeds their results back, and
//! publishes immutable snapshots on a watch channel for the console.
//!
//! It makes no decisions: those are the engine's.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};

use serde::Serialize;

use crate::analysis::assess::Assessment;
use crate::analysis::live::{AnalysisView, LiveAnalysis};
use crate::analysis::llm::LlmClient;
use crate::engine::{
    Action, Alert, Breaker, Command, Engine, Event, Execution, InterruptedAction, Modes, Outcome,
    Restored, RestoredAction, RestoredAlert, Suggestion,
};
use crate::model::{ActionId, ActionState, AlertStatus, Record, RecordKind, Time};
use crate::store::{AuditWriter, PersistedState, StoreError};

pub use crate::engine::{Escalator, Executors, Prober, Resolution};

/// A fleet the hub drives on its own tick (the demo fleet): a signal source
/// whose samples are evaluated every tick and the executor of the runs it
/// claims. Start-up code hands it over; the hub knows nothing else of it.
pub trait DrivenFleet: Send {
    /// The source name its samples are observed under.
    fn source(&self) -> &'static str;
    /// Whether runs of this executor are the fleet's.
    fn runs(&self, executor: &str) -> bool;
    /// The fleet's samples at `now` (called once a tick).
    fn step(&mut self, now: Time) -> Vec<crate::model::Sample>;
    /// Performs a run the fleet claims, at once; the hub reports its
    /// outcome after `HubSetup::sim_run_time`.
    fn execute(&mut self, x: &Execution, now: Time) -> Outcome;
    /// What is going on in the fleet, one line each (the status bar).
    fn incidents(&self) -> Vec<String>;
}

/// The health of one signal source, as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SourceHealth {
    pub name: String,
    /// `alertmanager`, `prometheus`, `webhook`, `ingest`, `demo`, ...
    pub kind: String,
    pub state: HealthState,
    /// A short human text: "12 alerts", "connection refused", ...
    pub detail: String,
    pub last_ok: Option<Time>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    Unknown,
    Ok,
    Degraded,
    Down,
}

/// Where sources report their health; the hub copies it into every
/// snapshot. Keyed by source name.
pub type SourceBoard = Arc<std::sync::RwLock<BTreeMap<String, SourceHealth>>>;

/// How many recent records a snapshot carries.
const RECENT: usize = 500;

pub use crate::hosts::HostView;

/// Everything the console needs to draw a frame. Immutable once published.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub at: Time,
    pub modes: Modes,
    pub demo: bool,
    pub operator: String,
    /// Firing first, then resolved; by severity, then age.
    pub alerts: Vec<Arc<Alert>>,
    /// Open actions first, then the most recent finished ones.
    /// Shared between snapshots (and attached consoles) until it changes.
    pub actions: Arc<Vec<Action>>,
    pub breakers: Vec<(String, String, Breaker)>,
    /// The newest records, oldest first.
    /// Each record shared (a console copies the list, not the records, when
    /// one arrives).
    pub recent: Arc<Vec<Arc<Record>>>,
    pub audit_seq: u64,
    pub store_error: Option<String>,
    pub hosts: Arc<Vec<HostView>>,
    pub incidents: Vec<String>,
    pub sources: Vec<SourceHealth>,
    /// Policy conditions that hold but not yet for long enough.
    pub pending: Vec<PendingAlert>,
    /// The alert the console looks at, and the runbooks that could handle it.
    pub focus: Option<String>,
    pub suggestions: Vec<Suggestion>,
    /// Every runbook's name, risk and description (fixed at start).
    pub runbooks: Arc<Vec<RunbookInfo>>,
    /// Root-cause analyses by alert fingerprint (alerts the engine knows).
    pub analyses: crate::shard_map::ShardMap<AnalysisView>,
    /// The weighed facts behind the focused alert's analysis (capacity,
    /// shares, what each runbook would free, what it passes over and why).
    #[serde(default)]
    pub assessment: Option<Arc<Assessment>>,
    /// Who is attached to the hub (filled in by the client from the stream).
    #[serde(default)]
    pub presence: Vec<Presence>,
    /// The console's connection to the hub (the client's own, never sent).
    #[serde(skip)]
    pub link: Option<Link>,
    /// How many series the engine holds and has evicted.
    #[serde(default)]
    pub series: crate::policy::eval::SeriesFigures,
}

/// A console's connection to its hub, as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// What the console is attached to: `vigil.sock`, `http://...`.
    pub to: String,
    /// Who the hub says the console is.
    pub me: Option<crate::access::Identity>,
    /// The console started the hub it talks to.
    pub owns_hub: bool,
    /// Attached and receiving; false while it reconnects.
    pub up: bool,
    /// Why it is down, when it is.
    pub problem: Option<String>,
}

/// The order of the Alerts pane: firing first, then by severity (worst
/// first), then age (oldest first), then fingerprint.
pub fn alert_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    (a.status == AlertStatus::Resolved)
        .cmp(&(b.status == AlertStatus::Resolved))
        .then(b.severity.cmp(&a.severity))
        .then(a.since.cmp(&b.since))
        .then(a.fingerprint.cmp(&b.fingerprint))
}

/// Someone attached to the hub, as the status bar shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Presence {
    pub name: String,
    pub role: crate::access::Role,
    pub via: crate::access::Via,
    pub since: Time,
}

/// Takes the alerts `touched` out of `alerts` (in the hub's order) and
/// puts `upsert` where that order wants them. A change touches few alerts:
/// the others keep their place, with no re-sort of the whole table.
pub fn place_alerts(alerts: &mut Vec<Arc<Alert>>, touched: &[&str], upsert: &[Arc<Alert>]) {
    if touched.len() <= 8 {
        for fp in touched {
            if let Some(i) = alerts.iter().position(|a| a.fingerprint == *fp) {
                alerts.remove(i);
            }
        }
    } else {
        let touched: std::collections::HashSet<&str> = touched.iter().copied().collect();
        alerts.retain(|a| !touched.contains(a.fingerprint.as_str()));
    }
    for a in upsert {
        let at = alerts.partition_point(|x| alert_order(x, a) == std::cmp::Ordering::Less);
        alerts.insert(at, a.clone());
    }
}

/// The engine's alerts in the hub's order (a full sort).
pub fn ordered_alerts(engine: &Engine) -> Vec<Arc<Alert>> {
    let mut alerts: Vec<Arc<Alert>> = engine.alerts_shared().cloned().collect();
    alerts.sort_by(|a, b| alert_order(a, b));
    alerts
}

/// Brings `ordered` (the engine's alerts in the hub's order, as of the
/// last call) up to date: only the alerts that changed since are taken out
/// and put back. `kept` false (no order kept yet) sorts the whole table.
pub fn follow_alert_order(engine: &mut Engine, ordered: &mut Vec<Arc<Alert>>, kept: bool) {
    match engine.take_alert_changes() {
        crate::engine::AlertChanges::Some(fps) if kept => {
            let touched: Vec<&str> = fps.iter().map(String::as_str).collect();
            let upsert: Vec<Arc<Alert>> = touched
                .iter()
                .filter_map(|fp| engine.alert_shared(fp).cloned())
                .collect();
            place_alerts(ordered, &touched, &upsert);
        }
        _ => *ordered = ordered_alerts(engine),
    }
}

/// A policy condition that holds, waiting out its `for`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PendingAlert {
    pub name: String,
    pub labels: crate::model::Labels,
    pub since: Time,
    /// The severity it fires with.
    #[serde(default)]
    pub severity: Option<crate::model::Severity>,
    /// The latest value of the policy's (first) metric.
    #[serde(default)]
    pub value: Option<f64>,
    /// The policy's condition, for people.
    #[serde(default)]
    pub condition: Option<String>,
    /// When it fires if the condition keeps holding.
    #[serde(default)]
    pub fires_at: Option<Time>,
}

/// The conditions that hold but not yet for their `for`, with what the
/// console shows of each: severity, current value, when it fires.
fn pending_alerts(engine: &Engine) -> Vec<PendingAlert> {
    use crate::policy::eval::InstState;
    let ev = engine.evaluator();
    ev.instances()
        .iter()
        .enumerate()
        .filter_map(|(id, i)| match ev.state(id as _) {
            InstState::Pending { since } => Some((id, i, since)),
            _ => None,
        })
        .take(1000)
        .map(|(id, i, since)| {
            let p = ev.policy(i.policy);
            let labels = i.labels();
            PendingAlert {
                name: labels.get("alertname").cloned().unwrap_or_default(),
                labels,
                since,
                severity: Some(p.severity),
                value: ev.values(id as _).iter().flatten().map(|(v, _)| *v).next(),
                condition: Some(p.fire_text.clone()),
                fires_at: Some(since + p.hold),
            }
        })
        .collect()
}

/// Every runbook's name, risk and description.
pub fn runbook_infos(engine: &Engine) -> Vec<RunbookInfo> {
    engine
        .catalog()
        .runbooks
        .iter()
        .map(|r| RunbookInfo {
            name: r.name().to_string(),
            description: r.spec.description.clone(),
            risk: format!("{:?}", r.spec.risk).to_lowercase(),
        })
        .collect()
}

/// What the console shows of a runbook without asking the engine.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RunbookInfo {
    pub name: String,
    pub description: String,
    pub risk: String,
}

impl Snapshot {
    /// What the engine knows at `now`, with the runbook suggestions for
    /// the alert in `focus`; the hub fills in the rest (operator, hosts,
    /// recent records, sources).
    pub fn of_engine(engine: &Engine, now: Time, focus: Option<String>) -> Snapshot {
        Snapshot::of_engine_ordered(engine, now, focus, ordered_alerts(engine))
    }

    /// [`Snapshot::of_engine`] with the engine's alerts already in the
    /// hub's order.
    pub fn of_engine_ordered(
        engine: &Engine,
        now: Time,
        focus: Option<String>,
        alerts: Vec<Arc<Alert>>,
    ) -> Snapshot {
        let mut actions: Vec<Action> = engine
            .actions()
            .rev()
            .filter(|a| !a.state.is_final())
            .cloned()
            .collect();
        actions.extend(
            engine
                .actions()
                .rev()
                .filter(|a| a.state.is_final())
                .take(200)
                .cloned(),
        );
        let breakers = engine
            .breakers()
            .filter(|(_, b)| b.open_since.is_some())
            .map(|((r, t), b)| (r.clone(), t.clone(), b.clone()))
            .collect();
        let suggestions = focus
            .as_deref()
            .map(|fp| engine.suggestions(fp, now))
            .unwrap_or_default();
        Snapshot {
            series: engine.series_figures(),
            at: now,
            modes: engine.modes(),
            demo: false,
            operator: String::new(),
            alerts,
            actions: Arc::new(actions),
            breakers,
            recent: Default::default(),
            audit_seq: 0,
            store_error: None,
            hosts: Default::default(),
            incidents: Vec::new(),
            sources: Vec::new(),
            pending: pending_alerts(engine),
            focus,
            suggestions,
            runbooks: Arc::new(runbook_infos(engine)),
            analyses: Default::default(),
            assessment: None,
            presence: Vec::new(),
            link: None,
        }
    }

    /// Nothing known yet (a console waiting for its hub's first snapshot).
    pub fn empty(at: Time) -> Snapshot {
        Snapshot {
            series: Default::default(),
            at,
            modes: Modes::default(),
            demo: false,
            operator: String::new(),
            alerts: Vec::new(),
            actions: Default::default(),
            breakers: Vec::new(),
            recent: Default::default(),
            audit_seq: 0,
            store_error: None,
            hosts: Default::default(),
            incidents: Vec::new(),
            sources: Vec::new(),
            pending: Vec::new(),
            focus: None,
            suggestions: Vec::new(),
            runbooks: Default::default(),
            analyses: Default::default(),
            assessment: None,
            presence: Vec::new(),
            link: None,
        }
    }

    pub fn pending_approvals(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| a.state == crate::model::ActionState::AwaitingApproval)
            .count()
    }
}

/// What the hub needs to start.
pub struct HubSetup {
    pub engine: Engine,
    pub writer: AuditWriter,
    pub restored: PersistedState,
    /// The demo fleet, when one runs.
    pub demo: Option<Box<dyn DrivenFleet>>,
    pub operator: String,
    /// How long a simulated run takes (real time).
    pub sim_run_time: Duration,
    pub tick: Duration,
    /// Real executors; `None` means only the demo fleet's `sim` runs.
    pub executors: Option<Arc<dyn Executors>>,
    /// Where escalations go; `None` means they are only logged.
    pub escalator: Option<Arc<dyn Escalator>>,
    pub sources: SourceBoard,
}

/// Samples sent to the hub and not yet evaluated. The event queue is
/// bounded in events, and an event can carry thousands of samples: senders of
/// sample batches wait here so that a fast client cannot make the queue
/// hold gigabytes.
///
/// Ingested samples reach the hub through its `inbox` rather than the event
/// channel ([`Admitted::deliver`]): the hub takes everything delivered in a
/// millisecond at once, so that a thousand single-sample requests cost it one
/// wakeup instead of a thousand.
#[derive(Debug, Default)]
pub struct SampleBacklog {
    queued: std::sync::atomic::AtomicU64,
    drained: tokio::sync::Notify,
    inbox: std::sync::Mutex<Vec<crate::model::KeyedSample>>,
    /// Senders waiting for the samples now in the inbox to be evaluated
    /// and their records committed (taken with the inbox, under its lock),
    /// with where their samples are in the inbox (start, count).
    waiting: std::sync::Mutex<Vec<(Evaluated, usize, usize)>>,
    /// Set (under the inbox lock) when the hub took the inbox for the last
    /// time: later deliveries are refused, not left unanswered.
    closed: std::sync::atomic::AtomicBool,
    /// Notified when the inbox stops being empty.
    arrived: tokio::sync::Notify,
}

impl SampleBacklog {
    /// At most this many samples wait for the hub (a batch is let in when
    /// nothing waits, however large).
    pub const MAX_SAMPLES: u64 = 250_000;

    /// Waits until `n` more samples fit, and counts them in. Unless
    /// [`Admitted::sent`] is called, dropping the ticket counts them out
    /// again (a client that went away before its batch was sent).
    pub async fn admit(self: &Arc<Self>, n: u64) -> Admitted {
        self.wait_for_room(n).await;
        Admitted {
            backlog: self.clone(),
            n,
        }
    }

    async fn wait_for_room(&self, n: u64) {
        use std::sync::atomic::Ordering;
        loop {
            // Registered before the check, so a drain in between wakes it.
            let drained = self.drained.notified();
            let before = self.queued.load(Ordering::Acquire);
            if before != 0 && before + n > Self::MAX_SAMPLES {
                drained.await;
            } else if self
                .queued
                .compare_exchange(before, before + n, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The hub evaluated `n` samples that were counted in (or a sender gave
    /// up before sending them).
    pub fn done(&self, n: u64) {
        use std::sync::atomic::Ordering;
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(n))
            });
        self.drained.notify_waiters();
    }

    /// Samples waiting now.
    pub fn queued(&self) -> u64 {
        self.queued.load(std::sync::atomic::Ordering::Acquire)
    }

    fn inbox(&self) -> std::sync::MutexGuard<'_, Vec<crate::model::KeyedSample>> {
        self.inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every delivered sample not taken yet, in the order delivered.
    pub fn take_delivered(&self) -> Vec<crate::model::KeyedSample> {
        self.take_with_waiters().0
    }

    /// The delivered samples and the senders waiting for them to be
    /// durable.
    fn take_with_waiters(
        &self,
    ) -> (
        Vec<crate::model::KeyedSample>,
        Vec<(Evaluated, usize, usize)>,
    ) {
        let mut inbox = self.inbox();
        let samples = std::mem::take(&mut *inbox);
        let waiting = std::mem::take(
            &mut *self
                .waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        drop(inbox);
        (samples, waiting)
    }
}

/// Samples counted into a [`SampleBacklog`] and not sent yet.
#[must_use]
pub struct Admitted {
    backlog: Arc<SampleBacklog>,
    n: u64,
}

impl Admitted {
    /// The samples are in the hub's queue: the hub counts them out.
    pub fn sent(mut self) {
        self.n = 0;
    }

    /// Hands the admitted samples to the hub's inbox (the hub counts them
    /// out once it evaluated them).
    pub fn deliver(self, samples: Vec<crate::model::KeyedSample>) {
        self.deliver_inner(samples, None);
    }

    /// [`Admitted::deliver`], and an answer once the hub evaluated the
    /// samples and committed every record they caused (Ok, with the samples
    /// a series limit refused), or could not (Err with why; dropped when the
    /// hub stopped first).
    pub fn deliver_durable(
        self,
        samples: Vec<crate::model::KeyedSample>,
    ) -> tokio::sync::oneshot::Receiver<Result<Vec<Refused>, String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.deliver_inner(samples, Some(tx));
        rx
    }

    fn deliver_inner(mut self, samples: Vec<crate::model::KeyedSample>, waiter: Option<Evaluated>) {
        let first = {
            let mut inbox = self.backlog.inbox();
            if self
                .backlog
                .closed
                .load(std::sync::atomic::Ordering::Acquire)
            {
                // Dropped unanswered: the sender hears that the hub stopped.
                drop(waiter);
                return;
            }
            if let Some(w) = waiter {
                self.backlog
                    .waiting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((w, inbox.len(), samples.len()));
            }
            let first = inbox.is_empty();
            if first {
                *inbox = samples;
            } else {
                inbox.extend(samples);
            }
            first
        };
        if first {
            self.backlog.arrived.notify_one();
        }
        self.n = 0;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.n > 0 {
            self.backlog.done(self.n);
        }
    }
}

/// Where the hub says whether what a sender delivered is durable.
type Durable = tokio::sync::oneshot::Sender<Result<(), String>>;

/// A sample a series limit refused: its index in the sender's request,
/// and why.
pub type Refused = (usize, crate::policy::eval::SeriesLimit);

/// Where the hub answers a sender of samples: the samples it refused (the
/// others were evaluated and their records committed), or why nothing was.
type Evaluated = tokio::sync::oneshot::Sender<Result<Vec<Refused>, String>>;

/// Events a sender wants acknowledged once durable (a webhook's alerts): the
/// hub handles them and answers after their records are committed.
#[derive(Debug)]
pub struct Delivery {
    pub events: Vec<Event>,
    pub done: Durable,
}

/// Why a delivery was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// The hub's delivery queue is full: try again shortly.
    Busy,
    /// The hub has stopped (or stopped before it got to the delivery).
    Stopped,
    /// The records could not be written.
    Store(String),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Busy => f.write_str("the hub's delivery queue is full"),
            DeliveryError::Stopped => f.write_str("the hub has stopped"),
            DeliveryError::Store(e) => write!(f, "the audit trail could not be written: {e}"),
        }
    }
}

/// How many deliveries may wait for the hub before senders are told to
/// come back later (503).
pub const DELIVERY_QUEUE: usize = 1024;

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
fn injected_panic(ev: &Event) {
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
}

impl std::fmt::Display for IntentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntentError::Refused(r) => f.write_str(&r.message),
            IntentError::HubStopped => f.write_str("the hub has stopped"),
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

/// Samples an event carries that went through the [`SampleBacklog`].
fn sample_count(ev: &Event) -> u64 {
    match ev {
        Event::Samples(v) => v.len() as u64,
        Event::Keyed(v) => v.len() as u64,
        _ => 0,
    }
}

/// One log line for each step of an action's life an operator follows in
/// the log: start, end, dry-run plan, verification, escalation (info;
/// failures and escalations warn). The audit trail has the rest.
fn log_record(r: &Record) {
    use RecordKind as K;
    let action = r.action_id.as_deref().unwrap_or("-");
    let what = format!(
        "{action} {}@{}",
        r.runbook.as_deref().unwrap_or("-"),
        r.target.as_deref().unwrap_or("-")
    );
    let detail = r.detail.as_deref().unwrap_or("");
    match r.kind {
        K::ActionStarted => tracing::info!(
            action,
            actor = r.actor.as_deref().unwrap_or("-"),
            "action started: {what} (attempt {}) {detail}",
            r.attempt.unwrap_or(1)
        ),
        K::ActionSucceeded | K::DryRunPlanned | K::VerificationPassed => {
            tracing::info!(action, "{}: {what}: {detail}", r.kind.as_str())
        }
        K::ActionFailed | K::VerificationFailed | K::Escalated | K::ActionInterrupted => {
            tracing::warn!(action, "{}: {what}: {detail}", r.kind.as_str())
        }
        _ => {}
    }
}

/// Alerts and operator intents are published at once; samples wait for the
/// next publish tick.
fn is_urgent(ev: &Event) -> bool {
    !matches!(ev, Event::Sample(_) | Event::Samples(_) | Event::Keyed(_))
}

/// How long the hub lets ingested samples gather in its inbox before it
/// evaluates them together (see [`SampleBacklog`]).
/// Zero: ingest senders now wait for their samples to be evaluated (rule
/// 12), so what arrives while the hub works gathers by itself; a window
/// would only add to every request's latency.
const DELIVERY_WINDOW: Duration = Duration::ZERO;

/// The longest a snapshot goes unpublished when nothing changes.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub struct Hub {
    engine: Engine,
    writer: AuditWriter,
    demo: Option<Box<dyn DrivenFleet>>,
    operator: String,
    rx: mpsc::Receiver<Event>,
    deliveries: mpsc::Receiver<Delivery>,
    queries: mpsc::Receiver<Query>,
    tx: mpsc::Sender<Event>,
    backlog: Arc<SampleBacklog>,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    recent: VecDeque<Record>,
    /// `recent` as the snapshots share it, kept in step.
    recent_shared: Arc<Vec<Arc<Record>>>,
    audit_seq: u64,
    store_error: Option<String>,
    hosts: crate::hosts::HostBoard,
    sim_run_time: Duration,
    tick: Duration,
    pending_restore: Vec<Command>,
    executors: Option<Arc<dyn Executors>>,
    escalator: Option<Arc<dyn Escalator>>,
    prober: Option<Arc<dyn Prober>>,
    /// The alert table in the hub's order, as last published.
    ordered: Vec<Arc<Alert>>,
    ordered_ready: bool,
    sources: SourceBoard,
    focus: watch::Receiver<Option<String>>,
    runbooks: Arc<Vec<RunbookInfo>>,
    analysis: LiveAnalysis,
    /// Series evicted (engine and analysis history) when last looked at,
    /// and when memory was last handed back to the system.
    evicted_seen: u64,
    evicted_trimmed: u64,
}

/// Turns what the store remembers into what the engine restores: modes,
/// breakers, run history, firing alerts with their episode and action, open
/// actions in their state, silences.
pub fn restored_from(state: &PersistedState) -> Restored {
    let mut r = Restored {
        next_action: state.max_action + 1,
        ..Default::default()
    };
    if state.dry_run.is_some() || state.frozen.is_some() {
        r.modes = Some(Modes {
            dry_run: state.dry_run.unwrap_or(false),
            frozen: state.frozen.unwrap_or(false),
        });
    }
    let mut open = std::collections::HashSet::new();
    for a in &state.open_actions {
        let Some(id) = ActionId::parse(&a.action_id) else {
            continue;
        };
        r.next_action = r.next_action.max(id.0 + 1);
        let Some(st) = a.phase.as_deref().and_then(phase_state) else {
            continue;
        };
        open.insert(id);
        // A retry's record carries the attempt to come; the action is at
        // the one that failed until its time.
        let attempt = a.attempt.unwrap_or(1);
        let attempt = if st == ActionState::RetryWaiting {
            attempt.saturating_sub(1).max(1)
        } else {
            attempt
        };
        r.actions.push(RestoredAction {
            id,
            runbook: a.runbook.clone().unwrap_or_default(),
            target: a.target.clone().unwrap_or_default(),
            params: a.params.clone(),
            alert: a.alert.clone().unwrap_or_default(),
            fingerprint: a.fingerprint.clone().unwrap_or_default(),
            severity: a.severity.unwrap_or(crate::model::Severity::Warning),
            state: st,
            attempt,
            created: a.first_at,
            updated: a.last_at,
            block: a.reason.as_deref().and_then(|r| {
                serde_json::from_value(serde_json::Value::String(r.to_string())).ok()
            }),
            due: a.due_at,
            approved_by: a.approved_by.clone(),
            requested_by: a.requested_by.clone(),
        });
    }
    for a in &state.actions {
        if let Some(id) = ActionId::parse(&a.action_id) {
            r.next_action = r.next_action.max(id.0 + 1);
            let was_running = matches!(
                a.state,
                RecordKind::ActionStarted | RecordKind::ActionInterrupted
            );
            if was_running && !open.contains(&id) {
                // A trail without phases (not rebuilt): as before.
                r.interrupted.push(InterruptedAction {
                    id,
                    runbook: a.runbook.clone().unwrap_or_default(),
                    target: a.target.clone().unwrap_or_default(),
                    params: a.params.clone(),
                    alert: a.alert.clone().unwrap_or_default(),
                });
            }
        }
    }
    for al in &state.firing_alerts {
        r.alerts.push(RestoredAlert {
            fingerprint: al.fingerprint.clone(),
            name: al
                .alert
                .clone()
                .or_else(|| al.labels.get("alertname").cloned())
                .unwrap_or_else(|| "unnamed".into()),
            labels: al.labels.clone(),
            severity: al.severity.unwrap_or(crate::model::Severity::Warning),
            since: al.since,
            source: al.source.clone(),
            action: al.action_id.as_deref().and_then(ActionId::parse),
        });
    }
    for s in &state.silences {
        r.silences.push((
            s.fingerprint.clone(),
            crate::engine::AlertSilence {
                id: s.id.clone(),
                until: s.until,
                actor: s.actor.clone(),
                comment: s.comment.clone(),
            },
        ));
    }
    for b in &state.breakers {
        r.open_breakers
            .push((b.runbook.clone(), b.target.clone(), b.opened_at));
    }
    for s in &state.recent_starts {
        r.runs.push((s.runbook.clone(), s.target.clone(), s.at));
    }
    r
}

/// The engine state of an open action's stored phase.
fn phase_state(phase: &str) -> Option<ActionState> {
    Some(match phase {
        "proposed" => ActionState::Proposed,
        "blocked" => ActionState::Blocked,
        "awaiting_approval" => ActionState::AwaitingApproval,
        "approved" => ActionState::Approved,
        "running" => ActionState::Running,
        "verifying" => ActionState::Verifying,
        "retry_waiting" => ActionState::RetryWaiting,
        "interrupted" => ActionState::Interrupted,
        _ => return None,
    })
}

impl Hub {
    /// Builds the hub; returns it and the handle to talk to it.
    pub fn new(setup: HubSetup) -> (Hub, HubHandle) {
        let (tx, rx) = mpsc::channel(4096);
        let (dtx, drx) = mpsc::channel(DELIVERY_QUEUE);
        let (qtx, qrx) = mpsc::channel(256);
        let (focus_tx, focus_rx) = watch::channel(None);
        let runbooks = Arc::new(runbook_infos(&setup.engine));
        let empty = Snapshot {
            modes: setup.engine.modes(),
            demo: setup.demo.is_some(),
            operator: setup.operator.clone(),
            audit_seq: setup.restored.last_seq,
            runbooks: runbooks.clone(),
            ..Snapshot::empty(Utc::now())
        };
        let (snap_tx, snap_rx) = watch::channel(Arc::new(empty));
        let analysis = LiveAnalysis::new(setup.engine.shared_catalog());
        let backlog = Arc::new(SampleBacklog::default());
        let hosts = crate::hosts::HostBoard::new(
            setup.engine.inventory(),
            setup.engine.settings().host_labels.clone(),
        );
        let mut hub = Hub {
            engine: setup.engine,
            writer: setup.writer,
            demo: setup.demo,
            operator: setup.operator,
            rx,
            deliveries: drx,
            queries: qrx,
            tx: tx.clone(),
            backlog: backlog.clone(),
            snap_tx,
            recent: VecDeque::new(),
            recent_shared: Arc::default(),
            audit_seq: setup.restored.last_seq,
            store_error: None,
            hosts,
            sim_run_time: setup.sim_run_time,
            tick: setup.tick,
            pending_restore: Vec::new(),
            executors: setup.executors,
            escalator: setup.escalator,
            prober: None,
            ordered: Vec::new(),
            ordered_ready: false,
            sources: setup.sources,
            focus: focus_rx,
            runbooks,
            analysis,
            evicted_seen: 0,
            evicted_trimmed: 0,
        };
        let budget = hub.engine.series_budget();
        hub.analysis.history_mut().set_budget(budget);
        let restored = restored_from(&setup.restored);
        let cmds = hub.engine.restore(restored, Utc::now());
        hub.pending_restore = cmds;
        // What was restored is shown from the first moment (the restore's
        // own records follow once written).
        hub.publish();
        (
            hub,
            HubHandle {
                events: tx,
                deliveries: dtx,
                backlog,
                snapshots: snap_rx,
                focus: Arc::new(focus_tx),
                queries: qtx,
                vitals: crate::vital::Vitals::new(),
            },
        )
    }

    /// Where verification asks outside alerts' rules (a configured
    /// Prometheus source).
    pub fn set_prober(&mut self, prober: Option<Arc<dyn Prober>>) {
        self.prober = prober;
    }

    /// Sends every firing alert to an LLM too (OpenAI-compatible), after the
    /// heuristic; its answer replaces the heuristic's when it validates.
    pub fn set_llm(&mut self, client: Option<LlmClient>) {
        self.analysis.set_llm(client);
    }

    /// Turns root-cause analysis off (`[analysis] enabled = false`).
    pub fn set_analysis(&mut self, on: bool) {
        self.analysis.set_enabled(on);
    }

    /// Handles deliveries (and the others queued behind them, so that one
    /// commit covers them all), then answers each once its records are
    /// committed.
    async fn handle_deliveries(&mut self, first: Delivery) {
        let now = Utc::now();
        let mut waiting = Vec::new();
        let mut next = Some(first);
        let mut events = 0usize;
        while let Some(d) = next.take() {
            for ev in d.events {
                injected_panic(&ev);
                self.analysis.observe(&ev, now);
                self.engine.handle_into(ev, now);
                events += 1;
            }
            waiting.push(d.done);
            if events < 16_384
                && let Ok(d) = self.deliveries.try_recv()
            {
                next = Some(d);
            }
        }
        let cmds = self.engine.take_commands();
        self.publish();
        // The change feed was just woken on this worker: let it run (and
        // send the change to the consoles) before the work below.
        tokio::task::yield_now().await;
        let result = self.perform(cmds, now).await;
        for w in waiting {
            let _ = w.send(result.clone());
        }
    }

    /// Evaluates the samples delivered to the inbox and answers the senders
    /// that wait for them to be durable.
    async fn handle_inbox(&mut self) {
        let (samples, waiting) = self.backlog.take_with_waiters();
        let (result, refused) = if samples.is_empty() {
            (Ok(()), Vec::new())
        } else {
            let r = self.handle_events(Event::Keyed(samples)).await;
            (r, self.engine.take_refused())
        };
        // Each sender hears of its own refused samples (by index in its
        // request; `refused` is in inbox order).
        for (w, start, len) in waiting {
            let answer = result.clone().map(|()| {
                let lo = refused.partition_point(|(i, _)| *i < start);
                let hi = refused.partition_point(|(i, _)| *i < start + len);
                refused[lo..hi]
                    .iter()
                    .map(|(i, e)| (i - start, e.clone()))
                    .collect()
            });
            let _ = w.send(answer);
        }
    }

    /// What an event tells the Hosts pane.
    fn observe_event(&mut self, ev: &Event) {
        match ev {
            Event::Keyed(v) => self.observe_keyed(v),
            Event::HostState { source, samples } => self.observe_hosts(samples, source),
            _ => {}
        }
    }

    /// Evaluates `ev` and what else is queued behind it, so that one commit
    /// covers the batch.
    async fn handle_events(&mut self, ev: Event) -> Result<(), String> {
        let now = Utc::now();
        self.observe_event(&ev);
        let mut samples = sample_count(&ev);
        self.analysis.observe(&ev, now);
        // Urgent events are shown within milliseconds.
        let mut urgent = is_urgent(&ev);
        self.engine.handle_into(ev, now);
        let mut n = 0;
        while n < 1024 {
            match self.rx.try_recv() {
                Ok(ev) => {
                    self.observe_event(&ev);
                    samples += sample_count(&ev);
                    self.analysis.observe(&ev, now);
                    urgent |= is_urgent(&ev);
                    self.engine.handle_into(ev, now);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        self.backlog.done(samples);
        let cmds = self.engine.take_commands();
        if urgent {
            // The new state is shown before its records are synced (showing
            // is not acting); effects still wait for the write, and the
            // records follow.
            self.publish();
            tokio::task::yield_now().await;
        }
        self.perform(cmds, now).await
    }

    /// Runs until `shutdown` flips to true; flushes the audit trail before
    /// returning.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), StoreError> {
        let restore = std::mem::take(&mut self.pending_restore);
        let _ = self.perform(restore, Utc::now()).await;
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut publish = tokio::time::interval(Duration::from_millis(100));
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut dirty = true;
        let mut last_publish = std::time::Instant::now();
        let mut board_seen = 0u64;
        // While set, samples are being delivered: they are taken when it
        // elapses.
        let mut delivering: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
                Some(d) = self.deliveries.recv() => {
                    self.handle_deliveries(d).await;
                    dirty = true;
                }
                Some(ev) = self.rx.recv() => {
                    // A proposal from the analysis never carries its
                    // sender's parameters, whichever way it comes.
                    if let Ok(ev) = self.with_analysis_params(ev) {
                        let _ = self.handle_events(ev).await;
                    }
                    dirty = true;
                }
                Some(q) = self.queries.recv() => match q {
                    Query::Suggestions { fingerprint, reply } => {
                        let _ = reply.send(self.suggestions(&fingerprint, Utc::now()));
                    }
                    Query::Assessment { fingerprint, reply } => {
                        let _ = reply.send(self.analysis.assessment(&fingerprint));
                    }
                    Query::Intent { event, reply } => {
                        let event = match self.with_analysis_params(event) {
                            Ok(ev) => ev,
                            Err(r) => {
                                let _ = reply.send(Err(IntentError::Refused(r)));
                                continue;
                            }
                        };
                        // Vetted first: a refusal is answered with its
                        // reason and changes nothing.
                        match self.engine.vet(&event, Utc::now()) {
                            Err(r) => {
                                let _ = reply.send(Err(IntentError::Refused(r)));
                            }
                            Ok(()) => {
                                let _ = self.handle_events(event).await;
                                dirty = true;
                                let _ = reply.send(Ok(()));
                            }
                        }
                    }
                },
                _ = self.backlog.arrived.notified(), if delivering.is_none() => {
                    delivering = Some(Box::pin(tokio::time::sleep(DELIVERY_WINDOW)));
                }
                () = async { if let Some(s) = delivering.as_mut() { s.await } }, if delivering.is_some() => {
                    delivering = None;
                    self.handle_inbox().await;
                    dirty = true;
                }
                Some(u) = self.analysis.next_update() => {
                    let now = Utc::now();
                    if let Some(r) = self.analysis.apply(u, now) {
                        let _ = self.perform(vec![Command::Record(r)], now).await;
                    }
                    dirty = true;
                }
                _ = tick.tick() => {
                    let now = Utc::now();
                    if let Some(demo) = self.demo.as_mut() {
                        let samples = demo.step(now);
                        let source = demo.source();
                        self.observe_hosts(&samples, source);
                        self.analysis.observe_samples(&samples, now);
                        self.engine.handle_into(Event::Samples(samples), now);
                    }
                    self.engine.handle_into(Event::Tick, now);
                    self.analysis
                        .history_mut()
                        .evict_idle(now, crate::policy::eval::SWEEP_STEP);
                    self.release_memory();
                    let cmds = self.engine.take_commands();
                    // Publishing costs in proportion to the alert table:
                    // only when something changed (or, for ages and the
                    // sources' last-OK times, every HEARTBEAT).
                    let board = self.board_signature();
                    if !cmds.is_empty()
                        || self.demo.is_some()
                        || board != board_seen
                        || last_publish.elapsed() >= HEARTBEAT
                    {
                        dirty = true;
                    }
                    board_seen = board;
                    let _ = self.perform(cmds, now).await;
                }
                Ok(()) = self.focus.changed() => {
                    dirty = true;
                }
                _ = publish.tick() => {
                    if dirty {
                        self.publish();
                        dirty = false;
                        last_publish = std::time::Instant::now();
                    }
                }
            }
        }
        self.drain().await;
        self.publish();
        self.writer.flush_async().await
    }

    /// On the way out: whatever senders were let in before the stop is
    /// handled and committed before the hub returns, so that nothing
    /// acknowledged is lost and nothing queued is acknowledged unhandled.
    /// Later senders find the queues closed (503).
    async fn drain(&mut self) {
        self.deliveries.close();
        self.rx.close();
        while let Ok(d) = self.deliveries.try_recv() {
            self.handle_deliveries(d).await;
        }
        {
            let _inbox = self.backlog.inbox();
            self.backlog
                .closed
                .store(true, std::sync::atomic::Ordering::Release);
        }
        self.handle_inbox().await;
        while let Ok(ev) = self.rx.try_recv() {
            let _ = self.handle_events(ev).await;
        }
    }

    /// Once a large eviction is over, hands the freed memory back to the
    /// system (glibc keeps freed pages of its heap otherwise).
    fn release_memory(&mut self) {
        let evicted = self.engine.series_figures().evicted + self.analysis.history_mut().evicted();
        if evicted != self.evicted_seen {
            // Still evicting: wait for the end of it.
            self.evicted_seen = evicted;
            return;
        }
        if evicted - self.evicted_trimmed >= 10_000 {
            self.evicted_trimmed = evicted;
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only returns free heap memory to the
            // system; it takes the allocator's own locks.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }

    /// Keeps the latest disk, memory and service state of each host (the
    /// Hosts pane), from whichever source delivered it.
    fn observe_hosts(&mut self, samples: &[crate::model::Sample], from: &str) {
        self.hosts
            .observe(self.engine.inventory(), samples, from, Utc::now());
    }

    /// The host metrics among ingested samples (a name test per sample;
    /// labels are decoded only for those).
    fn observe_keyed(&mut self, samples: &[crate::model::KeyedSample]) {
        let host: Vec<crate::model::Sample> = samples
            .iter()
            .filter(|s| crate::hosts::is_host_metric(s.key.name()))
            .map(|s| crate::model::Sample {
                name: s.key.name().to_string(),
                value: s.value,
                labels: s
                    .key
                    .labels()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            })
            .collect();
        if !host.is_empty() {
            self.observe_hosts(&host, "ingest");
        }
    }

    /// Writes the batch's records durably, then performs its other commands.
    /// When the write fails, nothing of the batch is performed (and the
    /// error is returned).
    async fn perform(&mut self, cmds: Vec<Command>, now: Time) -> Result<(), String> {
        if cmds.is_empty() {
            return Ok(());
        }
        let mut records = Vec::new();
        let mut effects = Vec::new();
        for c in cmds {
            match c {
                Command::Record(r) => {
                    // Orient: an alert that fires gets its analysis in the
                    // same batch, right after its alert_firing record.
                    let rca = (r.kind == RecordKind::AlertFiring)
                        .then(|| self.analyse(&r, now))
                        .flatten();
                    records.push(r);
                    records.extend(rca);
                }
                other => effects.push(other),
            }
        }
        if !records.is_empty() {
            match self.writer.append(records).await {
                Ok(written) => {
                    self.store_error = None;
                    let shared = Arc::make_mut(&mut self.recent_shared);
                    for r in written {
                        log_record(&r);
                        tell_resolution(self.escalator.as_deref(), &r);
                        self.audit_seq = self.audit_seq.max(r.seq);
                        shared.push(Arc::new(r.clone()));
                        self.recent.push_back(r);
                    }
                    while self.recent.len() > RECENT {
                        self.recent.pop_front();
                    }
                    let over = shared.len().saturating_sub(RECENT);
                    shared.drain(..over);
                }
                Err(e) => {
                    tracing::error!(
                        "audit write failed; the batch's commands are not performed: {e}"
                    );
                    self.store_error = Some(e.to_string());
                    for c in effects {
                        if let Command::Execute(x) = c {
                            let _ = self.tx.try_send(Event::Finished {
                                action: x.action,
                                attempt: x.attempt,
                                outcome: Outcome::failure(
                                    None,
                                    format!("not run: the audit record could not be written ({e})"),
                                ),
                            });
                        }
                    }
                    return Err(e.to_string());
                }
            }
        }
        for c in effects {
            match c {
                Command::Execute(x) => self.execute(x, now),
                Command::Escalate(e) => {
                    tracing::debug!(summary = %e.summary, "escalation handed to the notifier");
                    if let Some(esc) = &self.escalator {
                        esc.escalate(e);
                    }
                }
                Command::Probe(p) => {
                    if let Some(prober) = &self.prober {
                        prober.probe(p, self.tx.clone());
                    }
                }
                Command::Record(_) => {}
            }
        }
        Ok(())
    }

    /// The heuristic's `rca` record for an alert that fired (and the LLM
    /// started in the background when configured).
    fn analyse(&mut self, firing: &Record, now: Time) -> Option<Record> {
        let alert = self.engine.alert(firing.fingerprint.as_deref()?)?;
        let recent = self.recent.make_contiguous();
        self.analysis.on_firing(alert, now, &self.engine, recent)
    }

    fn execute(&mut self, x: Execution, now: Time) {
        let tx = self.tx.clone();
        if let Some(demo) = self.demo.as_mut().filter(|d| d.runs(&x.executor)) {
            let outcome = demo.execute(&x, now);
            let delay = self.sim_run_time;
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tx
                    .send(Event::Finished {
                        action: x.action,
                        attempt: x.attempt,
                        outcome,
                    })
                    .await;
            });
            return;
        }
        if let Some(ex) = &self.executors {
            ex.spawn(x, tx);
            return;
        }
        let msg = format!(
            "no {} executor is available in this build; nothing ran",
            x.executor
        );
        tracing::warn!("{msg}");
        tokio::spawn(async move {
            let _ = tx
                .send(Event::Finished {
                    action: x.action,
                    attempt: x.attempt,
                    outcome: Outcome::failure(None, msg),
                })
                .await;
        });
    }

    /// A hash of what the source board shows (name, state, detail), not
    /// the last-OK times that change with every poll.
    fn board_signature(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        if let Ok(b) = self.sources.read() {
            for s in b.values() {
                (&s.name, s.state as u8, &s.detail).hash(&mut h);
            }
        }
        h.finish()
    }

    /// The alert table in the hub's order: kept from one publish to the
    /// next, with only the alerts that changed taken out and put back.
    fn ordered_alerts(&mut self) -> Vec<Arc<Alert>> {
        follow_alert_order(&mut self.engine, &mut self.ordered, self.ordered_ready);
        self.ordered_ready = true;
        self.ordered.clone()
    }

    /// A proposal from the analysis gets its runbook's parameters and its
    /// basis from the alert's analysis, whatever the caller put there;
    /// other intents pass unchanged.
    fn with_analysis_params(&self, event: Event) -> Result<Event, crate::engine::Refusal> {
        let Event::ProposeRecommended {
            fingerprint,
            runbook,
            actor,
            ..
        } = event
        else {
            return Ok(event);
        };
        crate::analysis::advice::proposal(
            self.engine.catalog(),
            self.analysis.view(&fingerprint),
            &fingerprint,
            &runbook,
            &actor,
        )
        .map_err(|e| crate::engine::Refusal {
            kind: match e {
                crate::analysis::advice::ProposalError::NoAnalysis(_) => {
                    crate::engine::RefusalKind::NotFound
                }
                _ => crate::engine::RefusalKind::Conflict,
            },
            message: e.to_string(),
        })
    }

    /// The suggestions for an alert: matched runbooks and the analysis'
    /// recommendations side by side, with why and why not.
    fn suggestions(&self, fingerprint: &str, now: Time) -> Vec<Suggestion> {
        crate::analysis::advice::suggestions(
            &self.engine,
            self.analysis.view(fingerprint),
            self.analysis.assessment(fingerprint).as_deref(),
            fingerprint,
            now,
        )
    }

    fn publish(&mut self) {
        let now = Utc::now();
        let focus = self.focus.borrow_and_update().clone();
        let alerts = self.ordered_alerts();
        let mut snap = Snapshot::of_engine_ordered(&self.engine, now, focus, alerts);
        snap.demo = self.demo.is_some();
        snap.operator = self.operator.clone();
        snap.recent = self.recent_shared.clone();
        snap.audit_seq = self.audit_seq;
        snap.store_error = self.store_error.clone();
        self.hosts
            .count(self.engine.alerts(), self.engine.actions());
        snap.hosts = Arc::new(self.hosts.views());
        snap.incidents = self
            .demo
            .as_ref()
            .map(|d| d.incidents())
            .unwrap_or_default();
        snap.sources = self
            .sources
            .read()
            .map(|b| b.values().cloned().collect())
            .unwrap_or_default();
        snap.runbooks = self.runbooks.clone();
        snap.analyses = {
            let engine = &self.engine;
            self.analysis.views(|fp| engine.alert(fp).is_some())
        };
        if let Some(fp) = snap.focus.clone() {
            snap.suggestions = self.suggestions(&fp, now);
            snap.assessment = self.analysis.assessment(&fp);
        }
        self.snap_tx.send_replace(Arc::new(snap));
    }
}

/// Hands a durable `alert_resolved` record to the escalator, so that the
/// incident it opened for the alert is closed (each resolution once, in
/// audit order, however many arrive between two snapshots).
fn tell_resolution(escalator: Option<&dyn Escalator>, r: &Record) {
    if r.kind != RecordKind::AlertResolved {
        return;
    }
    let (Some(esc), Some(fp)) = (escalator, &r.fingerprint) else {
        return;
    };
    esc.resolved(Resolution {
        fingerprint: fp.clone(),
        alert: r.alert.clone(),
        target: r.target.clone(),
        detail: r.detail.clone(),
    });
}

#[cfg(test)]
mod backlog_tests {
    use super::SampleBacklog;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn senders_wait_while_the_hub_is_behind_and_go_when_it_drains() {
        let b = Arc::new(SampleBacklog::default());
        // A batch larger than the bound still goes when nothing waits.
        let big = b.admit(SampleBacklog::MAX_SAMPLES + 10).await;
        big.sent();
        assert_eq!(b.queued(), SampleBacklog::MAX_SAMPLES + 10);
        // The next one waits until the hub counts samples out.
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.admit(5).await.sent() })
        };
        tokio::task::yield_now().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), async {
                while !waiter.is_finished() {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .is_err(),
            "admitted while the backlog was full"
        );
        b.done(SampleBacklog::MAX_SAMPLES + 10);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("admitted once drained")
            .unwrap();
        assert_eq!(b.queued(), 5);
        // A ticket dropped before its batch was sent counts it out again.
        let t = b.admit(7).await;
        assert_eq!(b.queued(), 12);
        drop(t);
        assert_eq!(b.queued(), 5);
    }

    fn keyed(host: &str, value: f64) -> crate::model::KeyedSample {
        crate::model::KeyedSample {
            key: crate::model::SeriesKey::new("m", [("host", host)]),
            value,
        }
    }

    #[tokio::test]
    async fn delivered_samples_wait_in_order_and_wake_the_hub_once() {
        let b = Arc::new(SampleBacklog::default());
        b.admit(2)
            .await
            .deliver(vec![keyed("a", 1.0), keyed("b", 2.0)]);
        b.admit(1).await.deliver(vec![keyed("a", 3.0)]);
        // Counted until the hub evaluated them.
        assert_eq!(b.queued(), 3);
        tokio::time::timeout(Duration::from_secs(5), b.arrived.notified())
            .await
            .expect("the first delivery wakes the hub");
        // The second delivery found the inbox busy: no second wakeup.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), b.arrived.notified())
                .await
                .is_err()
        );
        let got = b.take_delivered();
        let seen: Vec<(Option<&str>, f64)> =
            got.iter().map(|s| (s.key.label("host"), s.value)).collect();
        assert_eq!(seen, [(Some("a"), 1.0), (Some("b"), 2.0), (Some("a"), 3.0)]);
        assert!(b.take_delivered().is_empty());
        b.done(3);
        assert_eq!(b.queued(), 0);
        // Empty again: the next delivery wakes the hub again.
        b.admit(1).await.deliver(vec![keyed("c", 4.0)]);
        tokio::time::timeout(Duration::from_secs(5), b.arrived.notified())
            .await
            .expect("woken again");
    }
}
