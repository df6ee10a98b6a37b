//! The engine: every decision Vigil makes, and nothing else.
//!
//! `Engine::handle(event, now)` takes a signal, an operator's intent or an
//! executor's result and returns commands: records to write (always first),
//! executions, escalations. It owns the alert table, the actions and their
//! life cycle, the guards and the modes (dry-run, freeze).
//!
//! It must not do I/O, read a clock, spawn tasks or sleep: time comes in as
//! `now`, effects go out as `Command`s. That is what makes it replayable.

mod effects;
pub mod fleet;
pub mod guards;
mod intents;
mod restore;
mod silence;
mod table;
mod upstream;
mod verify;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::TimeDelta;
use serde::Serialize;
use serde_json::json;

use crate::model::{
    ACTOR_VIGIL, ActionId, ActionState, AlertOrigin, AlertStatus, BlockReason, IncomingAlert,
    Labels, Record, RecordKind, Sample, Severity, Time, fingerprint, fmt_time,
};
use crate::policy::Policy;
use crate::policy::eval::{Evaluator, InstState, InstanceId, SeriesLimit, Transition};
use crate::runbook::{ApprovalMode, ApprovalSpec, Catalog, PlannedStep};
use crate::units::{add_time, fmt_delta, mul_delta};
pub use effects::{Escalator, Executors, Prober, Resolution};
pub use guards::{Block, HostSpec, Inventory, MaintenanceWindow, WindowSpec};
pub use intents::{Refusal, RefusalKind};
pub use silence::AlertSilence;
pub use table::AlertChanges;
pub use upstream::{Suppressed, UpstreamMatcher, UpstreamSilence, while_inhibited};
use verify::External;

/// The `alert` a manual run's records and action carry (it has no alert and
/// no fingerprint).
pub const MANUAL_ALERT: &str = "manual";

/// Engine-wide settings (defaults from ARCHITECTURE.md).
#[derive(Debug, Clone)]
pub struct Settings {
    pub approval_expiry: TimeDelta,
    pub retry_backoff: TimeDelta,
    /// Fraction of a group that may be acted on at once (at least one host).
    pub blast_radius: f64,
    /// How many resolved alerts to keep in the table for the console.
    pub keep_resolved: usize,
    /// How long after a successful run Vigil waits for an outside source to
    /// resolve the alert (Alertmanager resolves late: group_interval).
    pub external_verify_window: TimeDelta,
    /// The same, per source name (`[[sources]] verify_window`).
    pub source_verify_windows: BTreeMap<String, TimeDelta>,
    /// How many series are held and for how long without a sample
    /// (`[settings] series_ttl`, `max_series_per_metric`).
    pub series: crate::policy::eval::SeriesBudget,
    /// The labels that name an alert's host, tried in order
    /// (`[settings] host_labels`; default `host`, then `instance`).
    pub host_labels: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            approval_expiry: TimeDelta::minutes(30),
            retry_backoff: TimeDelta::seconds(30),
            blast_radius: 1.0 / 3.0,
            keep_resolved: 500,
            external_verify_window: TimeDelta::minutes(10),
            source_verify_windows: BTreeMap::new(),
            series: Default::default(),
            host_labels: fleet::DEFAULT_HOST_LABELS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// What goes into the engine.
#[derive(Debug, Clone)]
pub enum Event {
    Sample(Sample),
    Samples(Vec<Sample>),
    /// Samples by series key (the ingest API).
    Keyed(Vec<crate::model::KeyedSample>),
    Alert(IncomingAlert),
    /// What a source says about hosts (disk, memory, services) for the
    /// Hosts pane; shown, never evaluated.
    HostState {
        source: String,
        samples: Vec<Sample>,
    },
    /// Time passed; deadlines due at `now` fire.
    Tick,
    Approve {
        action: ActionId,
        actor: String,
    },
    Reject {
        action: ActionId,
        actor: String,
        reason: String,
    },
    SetDryRun {
        on: bool,
        actor: String,
    },
    SetFrozen {
        on: bool,
        actor: String,
    },
    ResetBreaker {
        runbook: String,
        target: String,
        actor: String,
    },
    /// An operator silenced an alert until `until`: it stays in the table,
    /// shown as silenced, and gets no new action while the silence lasts.
    /// `id` is the Alertmanager silence id when one was created there.
    Silence {
        fingerprint: String,
        id: String,
        until: Time,
        actor: String,
        comment: String,
    },
    /// What a source (an Alertmanager) holds now: its silences (`None`:
    /// unknown this time) and the alerts it reports suppressed, by
    /// fingerprint (`None`: not polled). Its alerts that match an active
    /// silence, or that it suppresses, get no action while that lasts.
    SourceState {
        source: String,
        silences: Option<Vec<UpstreamSilence>>,
        suppressed: Option<BTreeMap<String, Suppressed>>,
    },
    /// An operator expired the silence of an alert before its end.
    Unsilence {
        fingerprint: String,
        actor: String,
    },
    /// An operator asks for `runbook` on host `target` without an alert (a
    /// manual run): the same parameter checks, guards and approval policy
    /// as an alert's action; the requester alone cannot approve it.
    Run {
        runbook: String,
        target: String,
        params: BTreeMap<String, String>,
        actor: String,
    },
    /// An operator proposes the matched runbook of a firing alert again
    /// after its action ended without fixing it.
    Repropose {
        fingerprint: String,
        actor: String,
    },
    /// What a query of an outside alert's rule said after a run
    /// (answers [`Command::Probe`]).
    Evidence {
        action: ActionId,
        attempt: u32,
        evidence: SourceEvidence,
    },
    /// An operator proposes, for a firing alert, the runbook its
    /// root-cause analysis recommends, with the parameters the analysis
    /// took from the evidence: the same parameter checks, guards and
    /// approval policy as any action, and the proposer alone cannot approve
    /// it. `basis` (what the analysis said) goes into the record. The hub
    /// fills `params` and `basis` from the alert's analysis: what a caller
    /// puts there is ignored.
    ProposeRecommended {
        fingerprint: String,
        runbook: String,
        params: BTreeMap<String, String>,
        actor: String,
        basis: serde_json::Value,
    },
    /// An executor finished a run.
    Finished {
        action: ActionId,
        attempt: u32,
        outcome: Outcome,
    },
    /// What a running attempt reports before it ends (a job API's status
    /// and output): shown as the action's detail, never recorded; the
    /// outcome in `Finished` is what the trail keeps.
    Progress {
        action: ActionId,
        attempt: u32,
        detail: String,
    },
}

/// How a run ended, as the executor reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub success: bool,
    pub exit_code: Option<i32>,
    pub detail: String,
    pub data: Option<serde_json::Value>,
}

impl Outcome {
    pub fn success(detail: impl Into<String>) -> Outcome {
        Outcome {
            success: true,
            exit_code: Some(0),
            detail: detail.into(),
            data: None,
        }
    }

    pub fn failure(exit_code: Option<i32>, detail: impl Into<String>) -> Outcome {
        Outcome {
            success: false,
            exit_code,
            detail: detail.into(),
            data: None,
        }
    }
}

/// A run for an executor to perform.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    pub action: ActionId,
    pub attempt: u32,
    pub runbook: String,
    pub target: String,
    pub executor: String,
    pub params: BTreeMap<String, String>,
    pub steps: Vec<PlannedStep>,
}

/// A page or message for a human.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    pub action: Option<ActionId>,
    pub alert: Option<String>,
    pub fingerprint: Option<String>,
    pub runbook: Option<String>,
    pub target: Option<String>,
    pub severity: Severity,
    pub summary: String,
}

/// What comes out of the engine. The hub writes every `Record` before it
/// performs any other command of the same batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Record(Record),
    Execute(Execution),
    Escalate(Escalation),
    /// Ask the source's metrics about an outside alert while its action
    /// waits for the source ([`Event::Evidence`] answers).
    Probe(Probe),
}

/// A request to query the rule behind an outside alert until `until`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    pub action: ActionId,
    pub attempt: u32,
    pub alert: String,
    /// The alert's labels: a series of the rule's answer belongs to the
    /// alert when all its labels (but `__name__`) are the alert's.
    pub labels: Labels,
    pub generator_url: String,
    pub until: Time,
}

/// An alert in the alert table.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Alert {
    pub fingerprint: String,
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub severity: Severity,
    pub status: AlertStatus,
    pub origin: AlertOrigin,
    pub source: String,
    pub since: Time,
    pub resolved_at: Option<Time>,
    /// The condition that raised it and the value that crossed it.
    pub condition: Option<String>,
    pub value: Option<f64>,
    pub action: Option<ActionId>,
    /// Set while an operator's silence covers the alert.
    pub silence: Option<AlertSilence>,
    /// For an outside alert: the link to the rule that raised it
    /// (`generatorURL`), whose expression verification can query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    /// The host it is about: a configured host found through
    /// `[settings] host_labels` (`instance` = `10.0.0.5:9100` finds the host
    /// with that address), else its `host` label.
    #[serde(default)]
    pub host: Option<String>,
    /// Why no configured host matched (then nothing acts on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_note: Option<String>,
    #[serde(skip)]
    instance: Option<InstanceId>,
}

impl Alert {
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The labels runbooks read: the alert's own, with `host` set to the
    /// host it is about (an alert with only `instance` gets the configured
    /// host's name there).
    pub fn runbook_labels(&self) -> std::borrow::Cow<'_, Labels> {
        match &self.host {
            Some(h) if self.labels.get("host") != Some(h) => {
                let mut l = self.labels.clone();
                l.insert("host".into(), h.clone());
                std::borrow::Cow::Owned(l)
            }
            _ => std::borrow::Cow::Borrowed(&self.labels),
        }
    }
}

/// An action and where it is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Action {
    pub id: ActionId,
    pub runbook: String,
    pub target: String,
    pub params: BTreeMap<String, String>,
    pub alert: String,
    pub fingerprint: String,
    pub severity: Severity,
    pub state: ActionState,
    pub attempt: u32,
    pub created: Time,
    pub updated: Time,
    pub block: Option<BlockReason>,
    pub detail: String,
    /// When the engine looks at it next (expiry, retry, verification end,
    /// guard re-check).
    pub due: Option<Time>,
    pub approved_by: Option<String>,
    /// When the approval that lets it start was given (rule 11: it lapses
    /// `approval_expiry` later for an action still held by a guard).
    #[serde(default)]
    pub approved_at: Option<Time>,
    /// The operators who approved it so far, distinct, in order (automatic
    /// approval adds nobody).
    pub approvals: Vec<String>,
    /// How many distinct operators must approve it when approval is manual
    /// (four-eyes: the runbook's `approvals`).
    pub approvals_needed: u32,
    /// The operator who asked for a manual run (`Event::Run`); None for an
    /// alert's action.
    pub requested_by: Option<String>,
    pub plan: Vec<PlannedStep>,
    /// A block that only a human can lift (protected, invalid parameter...).
    pub stuck: bool,
    /// For an outside alert: until when Vigil waits for its source to
    /// resolve it after a successful run (set after the run).
    #[serde(default)]
    pub source_deadline: Option<Time>,
    /// Set once the runbook's own evidence passed and only the source's
    /// resolution is awaited: what passed (never re-run then).
    #[serde(default)]
    pub own_check: Option<String>,
    /// The latest answer of the source's own metrics while Vigil waits for
    /// the source (a Prometheus query of the rule's expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_evidence: Option<SourceEvidence>,
}

/// What a query of an outside alert's rule said about it after a run.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SourceEvidence {
    /// The rule's condition still holds for the alert's series.
    pub holds: bool,
    /// What was asked, of whom, and what came back.
    pub why: String,
    pub at: Time,
}

impl Action {
    /// A new action of `runbook` on `target`, proposed at `now`, with
    /// nothing decided yet; callers set what differs.
    pub fn proposed(
        id: ActionId,
        runbook: &str,
        target: &str,
        params: BTreeMap<String, String>,
        now: Time,
    ) -> Action {
        Action {
            id,
            runbook: runbook.to_string(),
            target: target.to_string(),
            params,
            alert: String::new(),
            fingerprint: String::new(),
            severity: Severity::Warning,
            state: ActionState::Proposed,
            attempt: 1,
            created: now,
            updated: now,
            block: None,
            detail: String::new(),
            due: None,
            approved_by: None,
            approved_at: None,
            approvals: Vec::new(),
            approvals_needed: 1,
            requested_by: None,
            plan: Vec::new(),
            stuck: false,
            source_deadline: None,
            own_check: None,
            source_evidence: None,
        }
    }

    /// Holds its runbook@target (the duplicate guard).
    pub fn is_open(&self) -> bool {
        !self.state.is_final() && !self.stuck
    }
}

/// A circuit breaker per runbook@target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Breaker {
    pub open_since: Option<Time>,
    /// Start times of recent runs.
    pub runs: VecDeque<Time>,
}

/// The modes an operator switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Modes {
    pub dry_run: bool,
    pub frozen: bool,
}

/// A runbook that could handle an alert, as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Suggestion {
    pub runbook: String,
    pub description: String,
    pub risk: String,
    pub score: u32,
    pub reasons: Vec<String>,
    pub target: String,
    /// The resolved parameters, or why they are invalid.
    pub params: Result<BTreeMap<String, String>, String>,
    pub plan: Vec<PlannedStep>,
    /// The guard that would stop it now.
    pub block: Option<Block>,
    pub approval: String,
    /// Where it comes from: `match` (its rule matched the alert: the
    /// runbook Vigil proposes on its own), `analysis` (only the root-cause
    /// analysis recommends it) or `both`.
    #[serde(default)]
    pub origin: SuggestionOrigin,
    /// Why, in words: the match rule's reasons and, when the analysis
    /// recommends it, the analysis' reason and the evidence it rests on.
    #[serde(default)]
    pub why: Vec<String>,
    /// Why not, in words: the guard that would stop it now, a missing or
    /// invalid parameter, an action already open for the alert, the
    /// analysis passing it over or finding it cannot free enough.
    #[serde(default)]
    pub why_not: Vec<String>,
    /// Its rank among the analysis' recommendations (1: the first choice);
    /// none when the analysis does not recommend it.
    #[serde(default)]
    pub analysis_rank: Option<u32>,
    /// It can be proposed now from the analysis
    /// (`POST /api/v1/alerts/{fingerprint}/propose` with `{"runbook": NAME}`):
    /// the analysis recommends it, its parameters resolve, the alert fires
    /// and has no open action.
    #[serde(default)]
    pub proposable: bool,
    /// The most it would free, in `unit`, when the analysis can tell.
    #[serde(default)]
    pub frees_at_most: Option<f64>,
    /// How much must be freed to clear the alert, in `unit`, when known.
    #[serde(default)]
    pub needed: Option<f64>,
    /// `bytes` or `connections` (for `frees_at_most` and `needed`).
    #[serde(default)]
    pub unit: Option<String>,
}

/// Where a suggestion comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionOrigin {
    /// The runbook's match rule matched the alert.
    #[default]
    Match,
    /// Only the root-cause analysis recommends it.
    Analysis,
    /// Both.
    Both,
}

/// What the engine needs to start.
#[derive(Debug)]
pub struct Setup {
    pub policies: Vec<Policy>,
    pub catalog: Catalog,
    pub inventory: Inventory,
    pub windows: Vec<MaintenanceWindow>,
    pub settings: Settings,
    pub modes: Modes,
}

/// State brought back from the store after a restart.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    pub next_action: u64,
    pub modes: Option<Modes>,
    /// (runbook, target, opened_at)
    pub open_breakers: Vec<(String, String, Time)>,
    /// (runbook, target, started_at) of recent runs.
    pub runs: Vec<(String, String, Time)>,
    /// Actions that were running when Vigil stopped.
    pub interrupted: Vec<InterruptedAction>,
    /// Alerts that were firing, with their episode's start and action.
    pub alerts: Vec<RestoredAlert>,
    /// Actions that had not ended, in their state (a `Running` one comes
    /// back interrupted, recorded once).
    pub actions: Vec<RestoredAction>,
    /// Silences that were active, by alert fingerprint.
    pub silences: Vec<(String, AlertSilence)>,
}

/// A firing alert brought back by a restart: the same episode goes on.
#[derive(Debug, Clone)]
pub struct RestoredAlert {
    pub fingerprint: String,
    pub name: String,
    pub labels: Labels,
    pub severity: Severity,
    pub since: Time,
    pub source: Option<String>,
    pub action: Option<ActionId>,
}

/// An action that had not ended when Vigil stopped.
#[derive(Debug, Clone)]
pub struct RestoredAction {
    pub id: ActionId,
    pub runbook: String,
    pub target: String,
    pub params: BTreeMap<String, String>,
    pub alert: String,
    pub fingerprint: String,
    pub severity: Severity,
    pub state: ActionState,
    /// The attempt in progress (for a retry waiting: the one that failed).
    pub attempt: u32,
    pub created: Time,
    pub updated: Time,
    pub block: Option<BlockReason>,
    /// The approval's expiry, or the retry's time.
    pub due: Option<Time>,
    pub approved_by: Option<String>,
    pub requested_by: Option<String>,
}

/// An action that was running when Vigil stopped.
#[derive(Debug, Clone, Default)]
pub struct InterruptedAction {
    pub id: ActionId,
    pub runbook: String,
    pub target: String,
    pub params: BTreeMap<String, String>,
    pub alert: String,
}

pub struct Engine {
    eval: Evaluator,
    catalog: Arc<Catalog>,
    inventory: Inventory,
    windows: Vec<MaintenanceWindow>,
    settings: Settings,
    modes: Modes,
    /// Shared with the snapshots: publishing copies pointers, and a change
    /// copies only the alert it touches.
    alerts: table::AlertTable,
    resolved_order: VecDeque<String>,
    actions: BTreeMap<ActionId, Action>,
    next_action: u64,
    breakers: HashMap<(String, String), Breaker>,
    due: BinaryHeap<Reverse<(Time, ActionId)>>,
    transitions: Vec<Transition>,
    out: Vec<Command>,
    /// Open actions per runbook@target (the duplicate guard).
    open_keys: HashMap<(String, String), BTreeSet<ActionId>>,
    /// Actions in flight per target host (the blast radius).
    flight: HashMap<String, BTreeSet<ActionId>>,
    /// Blocked actions that may clear.
    blocked: BTreeSet<ActionId>,
    /// Active silences by alert fingerprint.
    silences: HashMap<String, AlertSilence>,
    /// What each source (Alertmanager) holds: silences, suppressed alerts.
    upstream: HashMap<String, upstream::SourceView>,
    /// The suppression a source holds for an alert now, by fingerprint.
    upstream_on: HashMap<String, AlertSilence>,
    /// When restored alerts of policies whose data never came back resolve
    /// as stale.
    restored_stale_at: Option<Time>,
    /// Samples of the last `Event::Keyed` refused by a series limit: their
    /// index in the event, and why.
    refused: Vec<(usize, SeriesLimit)>,
    /// When a limit's refusal was last recorded, by metric (the total
    /// limit under ""): one `signal` record an hour, not one a sample.
    refusal_noted: HashMap<String, Time>,
}

fn rec(kind: RecordKind, now: Time) -> Record {
    Record::new(kind, now)
}

impl Engine {
    pub fn new(setup: Setup) -> Engine {
        let mut eval = Evaluator::new(setup.policies);
        eval.set_budget(setup.settings.series);
        Engine {
            eval,
            catalog: Arc::new(setup.catalog),
            inventory: setup.inventory,
            windows: setup.windows,
            settings: setup.settings,
            modes: setup.modes,
            alerts: table::AlertTable::default(),
            resolved_order: VecDeque::new(),
            actions: BTreeMap::new(),
            next_action: 1,
            breakers: HashMap::new(),
            due: BinaryHeap::new(),
            transitions: Vec::new(),
            out: Vec::new(),
            open_keys: HashMap::new(),
            flight: HashMap::new(),
            blocked: BTreeSet::new(),
            silences: HashMap::new(),
            upstream: HashMap::new(),
            upstream_on: HashMap::new(),
            restored_stale_at: None,
            refused: Vec::new(),
            refusal_noted: HashMap::new(),
        }
    }

    /// Keeps the indexes in step with an action's state.
    fn reindex(&mut self, id: ActionId) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let key = (a.runbook.clone(), a.target.clone());
        if a.is_open() {
            self.open_keys.entry(key).or_default().insert(id);
        } else if let Some(set) = self.open_keys.get_mut(&key) {
            set.remove(&id);
            if set.is_empty() {
                self.open_keys.remove(&key);
            }
        }
        if a.state.in_flight() {
            self.flight.entry(a.target.clone()).or_default().insert(id);
        } else if let Some(set) = self.flight.get_mut(&a.target) {
            set.remove(&id);
            if set.is_empty() {
                self.flight.remove(&a.target);
            }
        }
        if a.state == ActionState::Blocked && !a.stuck {
            self.blocked.insert(id);
        } else {
            self.blocked.remove(&id);
        }
    }

    // ----- read access for the hub, the console and the replayer -----

    pub fn modes(&self) -> Modes {
        self.modes
    }
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
    /// The catalog itself, shared (it never changes after start).
    pub fn shared_catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn windows(&self) -> &[MaintenanceWindow] {
        &self.windows
    }
    pub fn evaluator(&self) -> &Evaluator {
        &self.eval
    }
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values().map(|a| &**a)
    }
    /// The alerts as the shared pointers snapshots hold.
    pub fn alerts_shared(&self) -> impl Iterator<Item = &Arc<Alert>> {
        self.alerts.values()
    }
    pub fn alert(&self, fp: &str) -> Option<&Alert> {
        self.alerts.get(fp).map(|a| &**a)
    }
    /// The alert as the shared pointer snapshots hold.
    pub fn alert_shared(&self, fp: &str) -> Option<&Arc<Alert>> {
        self.alerts.get(fp)
    }
    /// The fingerprints of the alerts inserted, changed or removed since
    /// the last call (the hub re-orders only those when it publishes).
    pub fn take_alert_changes(&mut self) -> AlertChanges {
        self.alerts.take_changes()
    }
    pub fn actions(&self) -> impl DoubleEndedIterator<Item = &Action> {
        self.actions.values()
    }
    pub fn action(&self, id: ActionId) -> Option<&Action> {
        self.actions.get(&id)
    }
    pub fn breakers(&self) -> impl Iterator<Item = (&(String, String), &Breaker)> {
        self.breakers.iter()
    }

    /// The open action for runbook@target, if any (scenario intents name
    /// actions this way).
    /// The one waiting for a decision (approval, or an interrupted run) wins
    /// over a newer one held behind it as a duplicate.
    pub fn find_action(&self, runbook: &str, target: &str) -> Option<ActionId> {
        let mut open = self
            .actions
            .values()
            .rev()
            .filter(|a| a.runbook == runbook && a.target == target && !a.state.is_final());
        let all: Vec<&Action> = open.by_ref().collect();
        all.iter()
            .find(|a| {
                matches!(
                    a.state,
                    ActionState::AwaitingApproval | ActionState::Interrupted
                )
            })
            .or_else(|| all.first())
            .map(|a| a.id)
    }

    /// The earliest time at which a `Tick` has something to do.
    pub fn next_deadline(&self) -> Option<Time> {
        let a = self.due.peek().map(|Reverse((t, _))| *t);
        let a = match (a, self.restored_stale_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let a = match (a, self.next_silence_end()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let a = match (a, self.next_upstream_end()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (a, self.eval.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Brings back what the store remembers; interrupted actions are
    /// reported and wait for a human.
    pub fn restore(&mut self, r: Restored, now: Time) -> Vec<Command> {
        self.next_action = self.next_action.max(r.next_action);
        if let Some(m) = r.modes {
            self.modes = m;
        }
        for (rb, target, at) in r.open_breakers {
            self.breakers.entry((rb, target)).or_default().open_since = Some(at);
        }
        for (rb, target, at) in r.runs {
            self.breakers
                .entry((rb, target))
                .or_default()
                .runs
                .push_back(at);
        }
        for b in self.breakers.values_mut() {
            b.runs.make_contiguous().sort();
        }
        self.restore_open(r.silences, r.alerts, r.actions, now);
        for InterruptedAction {
            id,
            runbook,
            target,
            params,
            alert,
        } in r.interrupted
        {
            if self.actions.contains_key(&id) {
                continue;
            }
            let plan = self
                .catalog
                .get(&runbook)
                .map(|rb| rb.plan(&target, &params))
                .unwrap_or_default();
            let approvals_needed = self.catalog.get(&runbook).map_or(1, |rb| rb.approvals);
            let a = Action {
                alert: alert.clone(),
                state: ActionState::Interrupted,
                detail: restore::INTERRUPTED.into(),
                approvals_needed,
                plan,
                ..Action::proposed(id, &runbook, &target, params.clone(), now)
            };
            let mut r = rec(RecordKind::ActionInterrupted, now);
            r.action_id = Some(id.to_string());
            r.runbook = Some(runbook);
            r.target = Some(target);
            r.alert = Some(alert);
            r.params = Some(params);
            r.actor = Some(ACTOR_VIGIL.into());
            r.detail = Some(a.detail.clone());
            self.out.push(Command::Record(r));
            self.actions.insert(id, a);
            self.reindex(id);
            self.next_action = self.next_action.max(id.0 + 1);
        }
        std::mem::take(&mut self.out)
    }

    /// Handles one event at `now`; returns the commands, records first in
    /// the order they happened.
    pub fn handle(&mut self, event: Event, now: Time) -> Vec<Command> {
        self.handle_into(event, now);
        std::mem::take(&mut self.out)
    }

    /// Like `handle` but appends to an internal buffer (for batches);
    /// collect with `take_commands`.
    pub fn handle_into(&mut self, event: Event, now: Time) {
        match event {
            Event::Sample(s) => self.on_sample(&s, now),
            Event::Samples(v) => {
                for s in &v {
                    self.on_sample(s, now);
                }
            }
            Event::Keyed(v) => {
                self.refused.clear();
                for (i, s) in v.iter().enumerate() {
                    let r = self
                        .eval
                        .observe_key(&s.key, s.value, now, &mut self.transitions);
                    if let Err(e) = &r {
                        self.refused.push((i, e.clone()));
                    }
                    self.after_sample(r, now);
                }
            }
            Event::Alert(a) => self.on_alert(a, now),
            Event::HostState { .. } => {}
            Event::Tick => self.on_tick(now),
            Event::Approve { action, actor } => self.on_approve(action, actor, now),
            Event::Reject {
                action,
                actor,
                reason,
            } => self.on_reject(action, actor, reason, now),
            Event::SetDryRun { on, actor } => self.set_mode(Some(on), None, actor, now),
            Event::SetFrozen { on, actor } => self.set_mode(None, Some(on), actor, now),
            Event::ResetBreaker {
                runbook,
                target,
                actor,
            } => self.on_reset(runbook, target, actor, now),
            Event::Silence {
                fingerprint,
                id,
                until,
                actor,
                comment,
            } => self.on_silence(fingerprint, id, until, actor, comment, now),
            Event::SourceState {
                source,
                silences,
                suppressed,
            } => self.on_source_state(source, silences, suppressed, now),
            Event::Unsilence { fingerprint, actor } => {
                self.end_silence(&fingerprint, Some(actor), now)
            }
            Event::Run {
                runbook,
                target,
                params,
                actor,
            } => self.on_run(runbook, target, params, actor, now),
            Event::Repropose { fingerprint, actor } => self.on_repropose(fingerprint, actor, now),
            Event::Evidence {
                action,
                attempt,
                evidence,
            } => self.on_evidence(action, attempt, evidence),
            Event::ProposeRecommended {
                fingerprint,
                runbook,
                params,
                actor,
                basis,
            } => self.on_propose_recommended(fingerprint, runbook, params, actor, basis, now),
            Event::Finished {
                action,
                attempt,
                outcome,
            } => self.on_finished(action, attempt, outcome, now),
            Event::Progress {
                action,
                attempt,
                detail,
            } => {
                if let Some(a) = self.actions.get_mut(&action)
                    && a.state == ActionState::Running
                    && a.attempt == attempt
                {
                    a.detail = detail;
                }
            }
        }
    }

    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.out)
    }

    /// Fast path for samples of already interned series (the ingest API and
    /// the benchmarks): no label hashing per sample.
    pub fn observe(&mut self, id: crate::policy::eval::SeriesId, value: f64, now: Time) {
        self.eval.observe(id, value, now, &mut self.transitions);
        if !self.transitions.is_empty() {
            self.apply_transitions(now);
        }
    }

    /// Interns a series for `observe`.
    pub fn intern(
        &mut self,
        name: &str,
        labels: &Labels,
    ) -> Result<crate::policy::eval::SeriesId, SeriesLimit> {
        self.eval.intern(name, labels)
    }

    /// The samples of the last `Event::Keyed` that a series limit refused:
    /// their index in the event, and why.
    pub fn take_refused(&mut self) -> Vec<(usize, SeriesLimit)> {
        std::mem::take(&mut self.refused)
    }

    /// How many series the engine holds and has evicted.
    pub fn series_figures(&self) -> crate::policy::eval::SeriesFigures {
        self.eval.figures()
    }

    /// How many series it may hold, and how long without a sample.
    pub fn series_budget(&self) -> crate::policy::eval::SeriesBudget {
        self.eval.budget()
    }

    /// One eviction step (see [`Evaluator::evict_idle`]): an instance an
    /// alert of the table refers to is kept, so that the alert's
    /// verification never reads another series' data.
    fn evict_idle(&mut self, now: Time) {
        if self.eval.series_count() == 0 && self.eval.figures().instances == 0 {
            return;
        }
        let keep: std::collections::HashSet<InstanceId> =
            self.alerts.values().filter_map(|a| a.instance).collect();
        self.eval
            .evict_idle(now, crate::policy::eval::SWEEP_STEP, |i| keep.contains(&i));
    }

    fn on_sample(&mut self, s: &Sample, now: Time) {
        let r = self
            .eval
            .observe_sample(&s.name, &s.labels, s.value, now, &mut self.transitions);
        self.after_sample(r, now);
    }

    fn after_sample(&mut self, r: Result<crate::policy::eval::SeriesId, SeriesLimit>, now: Time) {
        if let Err(e) = r {
            // Recorded once an hour per metric (per limit): a client that
            // keeps inventing series must not flood the audit trail.
            let what = match e.kind {
                crate::policy::eval::LimitKind::PerMetric => e.name.clone(),
                crate::policy::eval::LimitKind::Total => String::new(),
            };
            let due = self
                .refusal_noted
                .get(&what)
                .is_none_or(|t| now - *t >= TimeDelta::hours(1) || now < *t);
            if due {
                self.refusal_noted.insert(what, now);
                let mut r = rec(RecordKind::Signal, now);
                r.detail = Some(format!(
                    "{e}; further refusals are counted in vigil_series_refused_total and recorded again in an hour"
                ));
                self.out.push(Command::Record(r));
            }
        }
        if !self.transitions.is_empty() {
            self.apply_transitions(now);
        }
    }

    fn apply_transitions(&mut self, now: Time) {
        let ts = std::mem::take(&mut self.transitions);
        for t in &ts {
            match *t {
                Transition::Fired { instance, severity } => {
                    self.policy_fired(instance, severity, now)
                }
                Transition::Resolved { instance, stale } => {
                    let fp = self.eval.instance(instance).fingerprint.clone();
                    let why = if stale {
                        "no sample for 5m (stale)".to_string()
                    } else {
                        let p = self.eval.policy(self.eval.instance(instance).policy);
                        format!("{} holds", p.resolve_text)
                    };
                    self.resolve_alert(&fp, why, now);
                }
            }
        }
        self.transitions = ts;
        self.transitions.clear();
    }

    fn policy_fired(&mut self, instance: InstanceId, severity: Severity, now: Time) {
        let inst = self.eval.instance(instance);
        let p = self.eval.policy(inst.policy);
        let value = self
            .eval
            .values(instance)
            .first()
            .copied()
            .flatten()
            .map(|(v, _)| v);
        let mut labels = inst.labels();
        labels.insert("severity".into(), severity.as_str().into());
        let alert = Alert {
            fingerprint: inst.fingerprint.clone(),
            name: p.name.clone(),
            labels,
            annotations: p.annotations.clone(),
            severity,
            status: AlertStatus::Firing,
            origin: AlertOrigin::Policy,
            source: "vigil".into(),
            since: now,
            resolved_at: None,
            condition: Some(format!("{} for {}", p.fire_text, fmt_delta(p.hold))),
            value,
            action: None,
            silence: None,
            generator_url: None,
            host: None,
            host_note: None,
            instance: Some(instance),
        };
        self.fire_alert(alert, now);
    }

    fn on_alert(&mut self, a: IncomingAlert, now: Time) {
        let fp = a
            .fingerprint
            .clone()
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| fingerprint(&a.labels));
        let name = a
            .labels
            .get("alertname")
            .cloned()
            .unwrap_or_else(|| "unnamed".into());
        match a.status {
            AlertStatus::Firing => {
                if let Some(existing) = self.alerts.get_mut(&fp).map(Arc::make_mut)
                    && existing.status == AlertStatus::Firing
                {
                    // The same alert delivered again (HA Alertmanagers, polling):
                    // one alert, one action. Refresh what may have changed.
                    existing.annotations = a.annotations;
                    if a.generator_url.is_some() {
                        existing.generator_url = a.generator_url;
                    }
                    return;
                }
                if let Some(existing) = self.alerts.get(&fp)
                    && existing.status == AlertStatus::Resolved
                    && existing.origin == AlertOrigin::External
                    && a.starts_at.is_some_and(|s| s == existing.since)
                {
                    // A late copy of an episode that already resolved (the
                    // other Alertmanager of an HA pair): not a new firing.
                    return;
                }
                let severity = a
                    .labels
                    .get("severity")
                    .and_then(|s| Severity::parse(s))
                    .unwrap_or(Severity::Warning);
                let mut r = rec(RecordKind::Signal, now);
                r.alert = Some(name.clone());
                r.fingerprint = Some(fp.clone());
                r.labels = Some(a.labels.clone());
                r.detail = Some(format!(
                    "alert received from {}",
                    a.source.as_deref().unwrap_or("an external source")
                ));
                self.out.push(Command::Record(r));
                let alert = Alert {
                    fingerprint: fp,
                    name,
                    labels: a.labels,
                    annotations: a.annotations,
                    severity,
                    status: AlertStatus::Firing,
                    origin: AlertOrigin::External,
                    source: a.source.unwrap_or_else(|| "external".into()),
                    since: a.starts_at.filter(|s| *s <= now).unwrap_or(now),
                    resolved_at: None,
                    condition: None,
                    value: None,
                    action: None,
                    silence: None,
                    generator_url: a.generator_url,
                    host: None,
                    host_note: None,
                    instance: None,
                };
                self.fire_alert(alert, now);
            }
            AlertStatus::Resolved => {
                if self
                    .alerts
                    .get(&fp)
                    // Only an external alert is resolved from outside: Vigil's
                    // own alerts resolve from their data.
                    .is_some_and(|x| {
                        x.status == AlertStatus::Firing && x.origin == AlertOrigin::External
                    })
                {
                    let src = a.source.unwrap_or_else(|| "the source".into());
                    self.resolve_alert(&fp, format!("resolved by {src}"), now);
                }
            }
        }
    }

    /// Finds the host an alert is about (`[settings] host_labels`).
    fn place(&self, alert: &mut Alert) {
        match self
            .inventory
            .locate(&alert.labels, &self.settings.host_labels)
        {
            fleet::HostMatch::Unmatched(why) => {
                alert.host = None;
                alert.host_note = Some(why);
            }
            m => {
                alert.host = m.host().map(str::to_string);
                alert.host_note = None;
            }
        }
    }

    fn fire_alert(&mut self, mut alert: Alert, now: Time) {
        self.place(&mut alert);
        let mut r = rec(RecordKind::AlertFiring, now);
        r.alert = Some(alert.name.clone());
        r.fingerprint = Some(alert.fingerprint.clone());
        r.severity = Some(alert.severity);
        r.target = alert.host().map(str::to_string);
        r.labels = Some(alert.labels.clone());
        r.value = alert.value;
        r.detail = match (&alert.condition, &alert.host_note) {
            (Some(c), Some(n)) => Some(format!("{c}; {n}")),
            (c, n) => c.clone().or_else(|| n.clone()),
        };
        self.out.push(Command::Record(r));
        let fp = alert.fingerprint.clone();
        self.resolved_order.retain(|f| f != &fp);
        alert.silence = self.silences.get(&fp).cloned();
        let external = alert.origin == AlertOrigin::External;
        self.alerts.insert(fp.clone(), Arc::new(alert));
        if external {
            // Its source may hold a silence or an inhibition for it.
            self.refresh_upstream(&fp, now);
        }
        if !self.is_silenced(&fp) {
            self.propose(&fp, now);
        }
    }

    fn resolve_alert(&mut self, fp: &str, why: String, now: Time) {
        let Some(alert) = self.alerts.get_mut(fp).map(Arc::make_mut) else {
            return;
        };
        if alert.status == AlertStatus::Resolved {
            return;
        }
        alert.status = AlertStatus::Resolved;
        alert.resolved_at = Some(now);
        let mut r = rec(RecordKind::AlertResolved, now);
        r.alert = Some(alert.name.clone());
        r.fingerprint = Some(fp.to_string());
        r.target = alert.host().map(str::to_string);
        r.detail = Some(why);
        let action = alert.action;
        let origin = alert.origin;
        if self.upstream_on.remove(fp).is_some() {
            alert.silence = self.silences.get(fp).cloned();
        }
        self.out.push(Command::Record(r));
        self.resolved_order.push_back(fp.to_string());
        while self.resolved_order.len() > self.settings.keep_resolved {
            if let Some(old) = self.resolved_order.pop_front() {
                self.alerts.remove(&old);
            }
        }
        // An action that ran and waits for the source is verified now.
        if origin == AlertOrigin::External {
            self.source_resolved(fp, now);
        }
        // Actions that have not started have nothing left to fix.
        if let Some(id) = action
            && let Some(a) = self.actions.get(&id)
            && matches!(
                a.state,
                ActionState::Proposed
                    | ActionState::Blocked
                    | ActionState::AwaitingApproval
                    | ActionState::Approved
                    | ActionState::RetryWaiting
            )
        {
            self.finish(
                id,
                ActionState::Cancelled,
                RecordKind::ActionCancelled,
                "alert_resolved",
                "the alert resolved before the action ran",
                now,
            );
        }
    }

    fn new_action_id(&mut self) -> ActionId {
        let id = ActionId(self.next_action);
        self.next_action += 1;
        id
    }

    fn action_record(&self, kind: RecordKind, a: &Action, now: Time) -> Record {
        let mut r = rec(kind, now);
        r.alert = Some(a.alert.clone());
        r.runbook = Some(a.runbook.clone());
        r.target = Some(a.target.clone());
        r.action_id = Some(a.id.to_string());
        r
    }

    /// Alert → runbook → action, then guards.
    fn propose(&mut self, fp: &str, now: Time) {
        self.propose_as(fp, None, now);
    }

    /// `propose`, by an operator (`by` = actor and detail) or by Vigil.
    fn propose_as(&mut self, fp: &str, by: Option<(String, String)>, now: Time) {
        self.propose_runbook(fp, by, None, now);
    }

    /// Proposes the matched runbook for alert `fp`, or `chosen`: a runbook
    /// (by index) with the parameters and the basis an analysis gave.
    pub(super) fn propose_runbook(
        &mut self,
        fp: &str,
        by: Option<(String, String)>,
        chosen: Option<(usize, BTreeMap<String, String>, serde_json::Value)>,
        now: Time,
    ) {
        let Some(alert) = self.alerts.get(fp).cloned() else {
            return;
        };
        let labels = alert.runbook_labels();
        let cands = self.catalog.candidates(&labels);
        // The catalog is shared: no copy of the runbook per proposal.
        let catalog = self.catalog.clone();
        let (best, given, basis) = match chosen {
            Some((i, given, basis)) if i < catalog.runbooks.len() => (i, given, Some(basis)),
            Some(_) => return,
            None => {
                let Some(&(best, _, ref why)) = cands.first() else {
                    return;
                };
                let rb = &catalog.runbooks[best];
                let mut r = rec(RecordKind::RunbookMatched, now);
                r.alert = Some(alert.name.clone());
                r.fingerprint = Some(fp.to_string());
                r.runbook = Some(rb.name().to_string());
                r.target = labels.get(rb.target_label()).cloned();
                r.detail = Some(why.join("; "));
                r.data = Some(json!({
                    "candidates": cands.iter().map(|(i, score, why)| json!({
                        "runbook": self.catalog.runbooks[*i].name(), "score": score, "reasons": why,
                    })).collect::<Vec<_>>()
                }));
                self.out.push(Command::Record(r));
                (best, BTreeMap::new(), None)
            }
        };
        let rb = &catalog.runbooks[best];

        let target = labels.get(rb.target_label()).cloned().unwrap_or_default();
        let facts = self.inventory.facts(&target);
        let params = rb.resolve_params(&labels, &facts, &given);
        let id = self.new_action_id();
        let (params, param_err) = match params {
            Ok(p) => (p, None),
            Err(e) => (BTreeMap::new(), Some(e)),
        };
        let plan = if param_err.is_none() {
            rb.plan(&target, &params)
        } else {
            Vec::new()
        };
        // A proposal taken from the analysis is the proposer's request:
        // they cannot be its only approver.
        let requested_by = basis
            .as_ref()
            .and(by.as_ref().map(|(actor, _)| actor.clone()));
        let action = Action {
            alert: alert.name.clone(),
            fingerprint: fp.to_string(),
            severity: alert.severity,
            approvals_needed: rb.approvals,
            plan,
            requested_by,
            ..Action::proposed(id, rb.name(), &target, params.clone(), now)
        };
        let mut r = self.action_record(RecordKind::ActionProposed, &action, now);
        r.params = Some(params);
        r.severity = Some(alert.severity);
        match by {
            Some((actor, detail)) => {
                r.actor = Some(actor);
                r.detail = Some(detail);
            }
            None => r.actor = Some(ACTOR_VIGIL.into()),
        }
        if let Some(basis) = basis {
            r.data = Some(json!({
                "from_analysis": basis,
                "requested_params": given,
                "matched": cands.first().map(|(i, ..)| catalog.runbooks[*i].name()),
            }));
        }
        r.fingerprint = Some(fp.to_string());
        self.out.push(Command::Record(r));
        self.actions.insert(id, action);
        self.reindex(id);
        if let Some(a) = self.alerts.get_mut(fp).map(Arc::make_mut) {
            a.action = Some(id);
        }
        if target.is_empty() {
            let label = self.catalog.runbooks[best].target_label().to_string();
            let why = match &alert.host_note {
                Some(note) if label == "host" => format!(
                    "no target: {note}; Vigil acts on one configured host, never on an empty or unbounded set"
                ),
                _ => format!(
                    "no target: the alert has no {label:?} label; Vigil acts on one named host, never on an empty or unbounded set"
                ),
            };
            self.block(id, Block::new(BlockReason::ParamInvalid, why), now);
            return;
        }
        if let Some(e) = param_err {
            self.block(id, Block::new(BlockReason::ParamInvalid, e.message), now);
            return;
        }
        self.advance(id, now, false);
    }

    /// Runs the guards for an action; `retry` skips the guards that do not
    /// apply to a retry of an action already running (duplicate, cooldown).
    pub fn check_guards(&self, id: ActionId, now: Time, retry: bool) -> Result<(), Block> {
        let Some(a) = self.actions.get(&id) else {
            return Err(Block::new(
                BlockReason::PreconditionFailed,
                "unknown action",
            ));
        };
        let Some(rb) = self.catalog.get(&a.runbook) else {
            return Err(Block::new(
                BlockReason::NoExecutor,
                format!("runbook {} is not in the catalog", a.runbook),
            ));
        };
        if self.modes.frozen {
            return Err(Block::new(
                BlockReason::Frozen,
                "Vigil is frozen: nothing runs until an operator unfreezes",
            ));
        }
        let facts = self.inventory.facts(&a.target);
        if let Some((what, end)) = guards::maintenance_for(&self.windows, &facts, now) {
            return Err(Block::new(
                BlockReason::MaintenanceWindow,
                format!("{} is in its {what} until {}", a.target, fmt_time(&end)),
            )
            .until(end));
        }
        if let Some((p, v, glob)) = rb.protected_hit(&a.params) {
            return Err(Block::new(
                BlockReason::ProtectedTarget,
                format!(
                    "{p}={:?} is protected for {} (matches {glob:?}); name it in [runbooks.{}] allow_protected to allow it",
                    v.escape_debug().to_string(),
                    rb.name(),
                    rb.name()
                ),
            ));
        }
        for pc in &rb.spec.preconditions {
            if pc.in_host_services
                && let Some(h) = self.inventory.hosts.get(&a.target)
                && !h.services.is_empty()
                && let Some(v) = a.params.get(&pc.param)
                && !h.services.iter().any(|s| s == v)
            {
                return Err(Block::new(
                    BlockReason::PreconditionFailed,
                    format!(
                        "{}={:?} is not a service of {} (known: {})",
                        pc.param,
                        v.escape_debug().to_string(),
                        a.target,
                        h.services.join(", ")
                    ),
                ));
            }
        }
        if self.inventory.executor_of(&a.target).is_none() {
            return Err(Block::new(
                BlockReason::NoExecutor,
                format!(
                    "no executor is configured for host {:?}",
                    a.target.escape_debug().to_string()
                ),
            ));
        }
        let key = (a.runbook.clone(), a.target.clone());
        if !retry
            && let Some(other) = self
                .open_keys
                .get(&key)
                .and_then(|ids| {
                    // An action that is itself waiting behind a duplicate
                    // does not hold the slot.
                    ids.iter().filter(|o| **o != id).find(|o| {
                        self.actions.get(o).is_some_and(|x| {
                            !(x.state == ActionState::Blocked
                                && x.block == Some(BlockReason::Duplicate))
                        })
                    })
                })
                .and_then(|o| self.actions.get(o))
        {
            return Err(Block::new(
                BlockReason::Duplicate,
                format!(
                    "{} is already {} for {}@{}",
                    other.id,
                    other.state.as_str(),
                    a.runbook,
                    a.target
                ),
            ));
        }
        let breaker = self.breakers.get(&key);
        if let Some(since) = breaker.and_then(|b| b.open_since) {
            return Err(Block::new(
                BlockReason::CircuitOpen,
                format!(
                    "the circuit for {}@{} has been open since {}; an operator must reset it",
                    a.runbook,
                    a.target,
                    fmt_time(&since)
                ),
            ));
        }
        let recent = breaker
            .map(|b| {
                b.runs
                    .iter()
                    .filter(|t| now - **t < rb.max_runs.per)
                    .count()
            })
            .unwrap_or(0);
        if recent >= rb.max_runs.count as usize {
            return Err(Block::new(
                BlockReason::CircuitOpen,
                format!(
                    "{recent} runs of {}@{} in the last {} (max_runs {}): opening the circuit",
                    a.runbook,
                    a.target,
                    fmt_delta(rb.max_runs.per),
                    rb.max_runs
                ),
            ));
        }
        if !retry
            && let Some(last) = breaker.and_then(|b| b.runs.back())
            && now - *last < rb.cooldown
        {
            let until = add_time(*last, rb.cooldown);
            return Err(Block::new(
                BlockReason::RateLimited,
                format!(
                    "{}@{} last ran at {}; cooldown {} lasts until {}",
                    a.runbook,
                    a.target,
                    fmt_time(last),
                    fmt_delta(rb.cooldown),
                    fmt_time(&until)
                ),
            )
            .until(until));
        }
        if let Some((group, members)) = self.inventory.group_of(&a.target) {
            let limit = guards::blast_radius_limit(members.len(), self.settings.blast_radius);
            let busy: Vec<&str> = members
                .iter()
                .filter(|m| **m != a.target && self.flight.contains_key(*m))
                .map(String::as_str)
                .collect();
            if busy.len() >= limit {
                return Err(Block::new(
                    BlockReason::ConcurrencyLimit,
                    format!(
                        "{} of the {} hosts of group {group:?} {} being acted on ({}); at most {limit} at once",
                        busy.len(),
                        members.len(),
                        if busy.len() == 1 { "is" } else { "are" },
                        busy.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Moves an action forward as far as the guards and approvals allow.
    fn advance(&mut self, id: ActionId, now: Time, retry: bool) {
        match self.check_guards(id, now, retry) {
            Err(b) => self.block(id, b, now),
            Ok(()) => {
                // Rule 11: the alert must still hold on the latest data.
                if let Some((reason, why)) = self.gone_before_start(id, now) {
                    self.finish(
                        id,
                        ActionState::Cancelled,
                        RecordKind::ActionCancelled,
                        reason,
                        &why,
                        now,
                    );
                    return;
                }
                // Rule 11: an approval is given for now.
                let lapse = self.lapsed_approval(id, now);
                if lapse.is_some()
                    && let Some(a) = self.actions.get_mut(&id)
                {
                    a.approvals.clear();
                    a.approved_by = None;
                    a.approved_at = None;
                    a.block = None;
                }
                let Some(a) = self.actions.get(&id) else {
                    return;
                };
                let approved = lapse.is_none() && (a.approved_by.is_some() || retry);
                if approved {
                    self.start(id, now);
                    return;
                }
                let Some(rb) = self.catalog.get(&a.runbook) else {
                    return;
                };
                // A lapsed human approval is replaced by a human's, never
                // by policy.
                if rb.approval.needs_human(a.severity) || lapse.is_some() {
                    let expires = add_time(now, self.settings.approval_expiry);
                    let mut r = self.action_record(RecordKind::ApprovalRequested, a, now);
                    r.params = Some(a.params.clone());
                    r.severity = Some(a.severity);
                    r.actor = Some(ACTOR_VIGIL.into());
                    let mut who = String::new();
                    if a.approvals_needed > 1 {
                        who.push_str(&format!(
                            "; needs {} approvals from distinct operators",
                            a.approvals_needed
                        ));
                    }
                    if let Some(req) = &a.requested_by {
                        who.push_str(&format!(
                            "; {} by {req}, who cannot be its only approver",
                            if a.fingerprint.is_empty() {
                                "manual run requested"
                            } else {
                                "proposed from the analysis"
                            }
                        ));
                    }
                    let again = lapse
                        .as_ref()
                        .map(|l| format!("{l}; asking again: "))
                        .unwrap_or_default();
                    r.detail = Some(format!(
                        "{again}approval {} for a {} risk runbook{who}; expires at {}",
                        rb.approval.describe(),
                        rb.spec.risk.as_str(),
                        fmt_time(&expires)
                    ));
                    r.data = Some(json!({
                        "expires_at": fmt_time(&expires),
                        "plan": a.plan,
                        "approvals_needed": a.approvals_needed,
                        "lapsed": lapse,
                    }));
                    self.out.push(Command::Record(r));
                    self.set_state(id, ActionState::AwaitingApproval, Some(expires), now);
                } else {
                    let mut r = self.action_record(RecordKind::ActionApproved, a, now);
                    r.actor = Some(ACTOR_VIGIL.into());
                    r.detail = Some(format!("approval {} by policy", rb.approval.describe()));
                    self.out.push(Command::Record(r));
                    if let Some(a) = self.actions.get_mut(&id) {
                        a.approved_by = Some(ACTOR_VIGIL.into());
                        a.approved_at = Some(now);
                    }
                    self.start(id, now);
                }
            }
        }
    }

    /// Why an action must not start because its alert no longer holds on
    /// the latest data (resolved, gone, or, for Vigil's own policies, the
    /// condition no longer holds or its data went stale); None when it holds.
    fn gone_before_start(&self, id: ActionId, now: Time) -> Option<(&'static str, String)> {
        let a = self.actions.get(&id)?;
        if a.fingerprint.is_empty() {
            // A manual run (or an interrupted action) has no alert to look at.
            return None;
        }
        let Some(al) = self.alerts.get(&a.fingerprint) else {
            return Some((
                "alert_resolved",
                format!(
                    "alert {} is no longer in the table; nothing to fix",
                    a.alert
                ),
            ));
        };
        if al.status == AlertStatus::Resolved {
            return Some((
                "alert_resolved",
                format!("alert {} resolved before the action started", al.name),
            ));
        }
        if let Some(s) = &al.silence {
            return Some((
                "silenced",
                format!(
                    "alert {} is silenced by {} until {}; nothing runs while it lasts",
                    al.name,
                    s.actor,
                    fmt_time(&s.until)
                ),
            ));
        }
        let inst = al.instance?;
        if self.eval.holds_at(inst, now) {
            return None;
        }
        let p = self.eval.policy(self.eval.instance(inst).policy);
        let val = self.latest_value_text(inst);
        Some((
            "alert_resolved",
            format!(
                "{} no longer holds on the latest data{val}; nothing to fix",
                p.fire_text
            ),
        ))
    }

    /// Rule 11: the human approval of an action held by a guard lapses
    /// `approval_expiry` after it was given. Returns why (for the new
    /// `approval_requested`), or None while it holds. Automatic approvals
    /// are re-decided by policy and do not lapse; an action that runs on
    /// schedule (its first start right after the approval, its retries)
    /// is covered.
    fn lapsed_approval(&self, id: ActionId, now: Time) -> Option<String> {
        let a = self.actions.get(&id)?;
        if a.state != ActionState::Blocked {
            return None;
        }
        let by = a.approved_by.as_deref().filter(|b| *b != ACTOR_VIGIL)?;
        let at = a.approved_at?;
        let expiry = self.settings.approval_expiry;
        if now - at < expiry {
            return None;
        }
        let who = if a.approvals.len() > 1 {
            format!("the approvals by {}", a.approvals.join(" and "))
        } else {
            format!("the approval by {by}")
        };
        let held = match a.block {
            Some(BlockReason::Frozen) => "frozen".to_string(),
            Some(BlockReason::MaintenanceWindow) => "in a maintenance window".to_string(),
            Some(BlockReason::ConcurrencyLimit) => "held by the concurrency limit".to_string(),
            Some(BlockReason::RateLimited) => "rate limited".to_string(),
            Some(BlockReason::Duplicate) => "held behind a duplicate".to_string(),
            Some(BlockReason::CircuitOpen) => "the circuit was open".to_string(),
            Some(r) => format!("blocked ({r})"),
            None => "held".to_string(),
        };
        Some(format!(
            "{who} lapsed while {held} (given at {}, approval_expiry {})",
            fmt_time(&at),
            fmt_delta(expiry)
        ))
    }

    fn set_state(&mut self, id: ActionId, state: ActionState, due: Option<Time>, now: Time) {
        if let Some(a) = self.actions.get_mut(&id) {
            a.state = state;
            a.due = due;
            a.updated = now;
            if let Some(t) = due {
                self.due.push(Reverse((t, id)));
            }
        }
        self.reindex(id);
    }

    fn block(&mut self, id: ActionId, b: Block, now: Time) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let same = a.state == ActionState::Blocked && a.block == Some(b.reason);
        let opening = b.reason == BlockReason::CircuitOpen
            && self
                .breakers
                .get(&(a.runbook.clone(), a.target.clone()))
                .is_none_or(|br| br.open_since.is_none());
        if opening {
            let key = (a.runbook.clone(), a.target.clone());
            self.breakers.entry(key).or_default().open_since = Some(now);
            let mut r = self.action_record(RecordKind::CircuitOpened, a, now);
            r.actor = Some(ACTOR_VIGIL.into());
            r.reason = Some("max_runs".into());
            r.detail = Some(b.detail.clone());
            self.out.push(Command::Record(r));
            let summary = format!(
                "{}@{}: circuit opened after repeated runs ({}); needs a human",
                a.runbook, a.target, a.alert
            );
            self.escalate(id, summary, "circuit_open", now);
        }
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        if !same {
            let mut r = self.action_record(RecordKind::ActionBlocked, a, now);
            r.reason = Some(b.reason.as_str().into());
            r.detail = Some(b.detail.clone());
            r.actor = Some(ACTOR_VIGIL.into());
            if !a.params.is_empty() {
                r.params = Some(a.params.clone());
            }
            self.out.push(Command::Record(r));
        }
        let stuck = !b.reason.may_clear() && b.reason != BlockReason::CircuitOpen;
        if let Some(a) = self.actions.get_mut(&id) {
            a.block = Some(b.reason);
            a.detail = b.detail;
            a.stuck = stuck;
        }
        self.set_state(id, ActionState::Blocked, b.recheck_at, now);
    }

    fn start(&mut self, id: ActionId, now: Time) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        if self.modes.dry_run {
            let mut r = self.action_record(RecordKind::DryRunPlanned, a, now);
            r.params = Some(a.params.clone());
            r.actor = Some(a.approved_by.clone().unwrap_or_else(|| ACTOR_VIGIL.into()));
            r.detail = Some(
                a.plan
                    .iter()
                    .map(|s| {
                        format!(
                            "{}{}",
                            if s.read_only { "[read-only] " } else { "" },
                            s.display()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            r.data = Some(json!({ "plan": a.plan }));
            self.out.push(Command::Record(r));
            if let Some(a) = self.actions.get_mut(&id) {
                a.detail = "dry-run: planned, nothing ran".into();
                a.block = None;
            }
            self.set_state(id, ActionState::Done, None, now);
            return;
        }
        let executor = self.inventory.executor_of(&a.target).unwrap_or_default();
        let mut r = self.action_record(RecordKind::ActionStarted, a, now);
        r.params = Some(a.params.clone());
        r.attempt = Some(a.attempt);
        r.actor = Some(a.approved_by.clone().unwrap_or_else(|| ACTOR_VIGIL.into()));
        r.detail = Some(format!("{} step(s) via {executor}", a.plan.len()));
        self.out.push(Command::Record(r));
        let exec = Execution {
            action: id,
            attempt: a.attempt,
            runbook: a.runbook.clone(),
            target: a.target.clone(),
            executor,
            params: a.params.clone(),
            steps: a.plan.clone(),
        };
        let key = (a.runbook.clone(), a.target.clone());
        let b = self.breakers.entry(key).or_default();
        b.runs.push_back(now);
        while b.runs.len() > 64 {
            b.runs.pop_front();
        }
        if let Some(a) = self.actions.get_mut(&id) {
            a.block = None;
            a.detail = String::new();
        }
        self.set_state(id, ActionState::Running, None, now);
        self.out.push(Command::Execute(exec));
    }

    fn escalate(&mut self, id: ActionId, summary: String, reason: &str, now: Time) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let mut r = self.action_record(RecordKind::Escalated, a, now);
        r.actor = Some(ACTOR_VIGIL.into());
        r.reason = Some(reason.into());
        r.detail = Some(summary.clone());
        r.severity = Some(a.severity);
        self.out.push(Command::Record(r));
        self.out.push(Command::Escalate(Escalation {
            action: Some(id),
            alert: Some(a.alert.clone()),
            fingerprint: Some(a.fingerprint.clone()).filter(|f| !f.is_empty()),
            runbook: Some(a.runbook.clone()),
            target: Some(a.target.clone()),
            severity: a.severity,
            summary,
        }));
    }

    fn finish(
        &mut self,
        id: ActionId,
        state: ActionState,
        kind: RecordKind,
        reason: &str,
        detail: &str,
        now: Time,
    ) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let mut r = self.action_record(kind, a, now);
        r.actor = Some(ACTOR_VIGIL.into());
        r.reason = Some(reason.into());
        r.detail = Some(detail.into());
        self.out.push(Command::Record(r));
        if let Some(a) = self.actions.get_mut(&id) {
            a.detail = detail.into();
        }
        self.set_state(id, state, None, now);
        self.recheck_blocked(now);
    }

    /// One operator's approval; the action goes on after the N-th distinct
    /// one (four-eyes). Refused approvals change nothing (see `vet`).
    fn on_approve(&mut self, id: ActionId, actor: String, now: Time) {
        if self.vet_approve(id, &actor).is_err() {
            return;
        }
        let Some(a) = self.actions.get_mut(&id) else {
            return;
        };
        a.approvals.push(actor.clone());
        a.updated = now;
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let done = a.approvals.len() >= a.approvals_needed.max(1) as usize;
        let mut r = self.action_record(RecordKind::ActionApproved, a, now);
        r.actor = Some(actor.clone());
        r.params = Some(a.params.clone());
        let tally = intents::tally(a);
        r.detail = Some(if a.state == ActionState::Interrupted {
            format!("re-run of an interrupted action approved; {tally}")
        } else {
            tally
        });
        r.data = Some(json!({
            "approvals": a.approvals,
            "approvals_needed": a.approvals_needed.max(1),
        }));
        self.out.push(Command::Record(r));
        if !done {
            return;
        }
        if let Some(a) = self.actions.get_mut(&id) {
            a.approved_by = Some(actor);
            a.approved_at = Some(now);
            if a.state == ActionState::Interrupted {
                // The re-run is a new attempt: its start is not confused
                // with the interrupted one's (nor is its job, whose
                // idempotency key is action and attempt).
                a.attempt += 1;
            }
        }
        self.set_state(id, ActionState::Approved, None, now);
        self.advance(id, now, false);
    }

    fn on_reject(&mut self, id: ActionId, actor: String, reason: String, now: Time) {
        let Ok(a) = self.vet_reject(id, &actor) else {
            return;
        };
        let mut r = self.action_record(RecordKind::ActionRejected, a, now);
        r.actor = Some(actor);
        r.reason = Some(if reason.trim().is_empty() {
            "no reason given".into()
        } else {
            reason
        });
        self.out.push(Command::Record(r));
        self.set_state(id, ActionState::Rejected, None, now);
        self.recheck_blocked(now);
    }

    fn set_mode(&mut self, dry_run: Option<bool>, frozen: Option<bool>, actor: String, now: Time) {
        let before = self.modes;
        if let Some(d) = dry_run {
            self.modes.dry_run = d;
        }
        if let Some(f) = frozen {
            self.modes.frozen = f;
        }
        if before == self.modes {
            return;
        }
        let mut r = rec(RecordKind::ModeChanged, now);
        r.actor = Some(actor);
        let mut what = Vec::new();
        if before.dry_run != self.modes.dry_run {
            what.push(if self.modes.dry_run {
                "dry-run on"
            } else {
                "dry-run off (LIVE)"
            });
        }
        if before.frozen != self.modes.frozen {
            what.push(if self.modes.frozen {
                "frozen"
            } else {
                "unfrozen"
            });
        }
        r.detail = Some(what.join(", "));
        r.data = Some(json!({ "dry_run": self.modes.dry_run, "frozen": self.modes.frozen }));
        self.out.push(Command::Record(r));
        if before.frozen && !self.modes.frozen {
            self.recheck_blocked(now);
        }
    }

    fn on_reset(&mut self, runbook: String, target: String, actor: String, now: Time) {
        let key = (runbook.clone(), target.clone());
        let Some(b) = self.breakers.get_mut(&key) else {
            return;
        };
        if b.open_since.is_none() {
            return;
        }
        b.open_since = None;
        b.runs.clear();
        let mut r = rec(RecordKind::CircuitClosed, now);
        r.runbook = Some(runbook);
        r.target = Some(target);
        r.actor = Some(actor);
        r.detail = Some("reset by an operator".into());
        self.out.push(Command::Record(r));
        self.recheck_blocked(now);
    }

    fn on_finished(&mut self, id: ActionId, attempt: u32, outcome: Outcome, now: Time) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        if a.state != ActionState::Running || a.attempt != attempt {
            return;
        }
        let kind = if outcome.success {
            RecordKind::ActionSucceeded
        } else {
            RecordKind::ActionFailed
        };
        let mut r = self.action_record(kind, a, now);
        r.attempt = Some(a.attempt);
        r.exit_code = outcome.exit_code;
        r.detail = Some(outcome.detail.clone());
        r.data = outcome.data.clone();
        r.actor = Some(ACTOR_VIGIL.into());
        self.out.push(Command::Record(r));
        if outcome.success && a.requested_by.is_some() && a.fingerprint.is_empty() {
            // A manual run has no alert to look at again: its runbook's own
            // verify step (part of the run) is the verification.
            self.set_state(id, ActionState::Verifying, None, now);
            self.verify(id, now);
        } else if outcome.success {
            let window = self
                .catalog
                .get(&a.runbook)
                .map(|rb| rb.verify_window)
                .unwrap_or(TimeDelta::minutes(1));
            let source_deadline = self
                .alerts
                .get(&a.fingerprint)
                .filter(|al| al.instance.is_none())
                .map(|al| add_time(now, self.source_window(&al.source).max(window)));
            if let Some(a) = self.actions.get_mut(&id) {
                a.source_deadline = source_deadline;
                a.own_check = None;
                a.source_evidence = None;
            }
            self.probe_source(id, source_deadline);
            self.set_state(id, ActionState::Verifying, Some(add_time(now, window)), now);
        } else {
            self.retry_or_escalate(id, format!("run failed: {}", outcome.detail), now);
        }
    }

    fn retry_or_escalate(&mut self, id: ActionId, why: String, now: Time) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let max = self
            .catalog
            .get(&a.runbook)
            .map(|rb| rb.max_attempts)
            .unwrap_or(3);
        if a.attempt < max {
            let backoff = mul_delta(
                self.settings.retry_backoff,
                2i32.pow(a.attempt.saturating_sub(1).min(16)),
            );
            let at = add_time(now, backoff);
            let mut r = self.action_record(RecordKind::RetryScheduled, a, now);
            r.attempt = Some(a.attempt + 1);
            r.actor = Some(ACTOR_VIGIL.into());
            r.detail = Some(format!(
                "{why}; attempt {} of {max} at {} (backoff {})",
                a.attempt + 1,
                fmt_time(&at),
                fmt_delta(backoff)
            ));
            self.out.push(Command::Record(r));
            self.set_state(id, ActionState::RetryWaiting, Some(at), now);
        } else {
            let summary = format!(
                "{}@{} for {}: {why}; {} attempt(s) spent",
                a.runbook, a.target, a.alert, a.attempt
            );
            self.escalate(id, summary, "attempts_exhausted", now);
            self.set_state(id, ActionState::Escalated, None, now);
            self.recheck_blocked(now);
        }
    }

    fn verify(&mut self, id: ActionId, now: Time) {
        // An outside alert: the best evidence, and patience with its source.
        let external = self
            .actions
            .get(&id)
            .and_then(|a| self.alerts.get(&a.fingerprint))
            .is_some_and(|al| al.instance.is_none());
        let ext = if external {
            match self.verify_external(id, now) {
                External::Verdict(bad, why) => Some((bad, why)),
                External::Wait | External::Escalated => return,
            }
        } else {
            None
        };
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let alert = self.alerts.get(&a.fingerprint);
        let instance = alert.and_then(|al| {
            al.instance.or_else(|| {
                (al.origin == AlertOrigin::Policy)
                    .then(|| self.eval.find_instance(&al.fingerprint))
                    .flatten()
            })
        });
        let (still_bad, why) = match alert {
            Some(_) if instance.is_some() => {
                let inst = instance.unwrap_or_default();
                let p = self.eval.policy(self.eval.instance(inst).policy);
                let bad = self.eval.fire_holds_latest(inst);
                let v = self.eval.values(inst).first().copied().flatten();
                let val = v
                    .map(|(v, at)| format!("; latest value {v} at {}", fmt_time(&at)))
                    .unwrap_or_default();
                (
                    bad,
                    format!(
                        "{} {}{val}",
                        p.fire_text,
                        if bad {
                            "still holds"
                        } else {
                            "no longer holds"
                        }
                    ),
                )
            }
            Some(_) => ext.unwrap_or_default(),
            None if a.requested_by.is_some() && a.fingerprint.is_empty() => {
                let has_verify = a.plan.iter().any(|s| s.name.starts_with("verify"));
                (
                    false,
                    if has_verify {
                        "manual run without an alert: the runbook's verify step passed".to_string()
                    } else {
                        "manual run without an alert: the run succeeded and the runbook has no verify step".to_string()
                    },
                )
            }
            None => (false, "the alert is gone".to_string()),
        };
        let kind = if still_bad {
            RecordKind::VerificationFailed
        } else {
            RecordKind::VerificationPassed
        };
        let mut r = self.action_record(kind, a, now);
        r.attempt = Some(a.attempt);
        r.actor = Some(ACTOR_VIGIL.into());
        r.detail = Some(why.clone());
        self.out.push(Command::Record(r));
        if still_bad {
            self.retry_or_escalate(id, format!("verification failed: {why}"), now);
        } else {
            if let Some(a) = self.actions.get_mut(&id) {
                a.detail = why;
            }
            self.set_state(id, ActionState::Done, None, now);
            self.recheck_blocked(now);
        }
    }

    fn on_tick(&mut self, now: Time) {
        self.expire_silences(now);
        self.expire_upstream(now);
        if self.restored_stale_at.is_some_and(|t| t <= now) {
            self.restored_stale_at = None;
            self.resolve_unreturned(now);
        }
        self.eval.tick(now, &mut self.transitions);
        if !self.transitions.is_empty() {
            self.apply_transitions(now);
        }
        self.evict_idle(now);
        while let Some(Reverse((t, id))) = self.due.peek().copied() {
            if t > now {
                break;
            }
            self.due.pop();
            let Some(a) = self.actions.get(&id) else {
                continue;
            };
            if a.due != Some(t) {
                continue;
            }
            match a.state {
                ActionState::AwaitingApproval => {
                    let expiry = self.settings.approval_expiry;
                    self.finish(
                        id,
                        ActionState::Expired,
                        RecordKind::ActionExpired,
                        "approval_timeout",
                        &format!("no operator decided within {}", fmt_delta(expiry)),
                        now,
                    );
                    let Some(a) = self.actions.get(&id) else {
                        continue;
                    };
                    let summary = format!(
                        "{}@{} for {} waited {} for approval and expired",
                        a.runbook,
                        a.target,
                        a.alert,
                        fmt_delta(expiry)
                    );
                    self.escalate(id, summary, "approval_expired", now);
                }
                ActionState::Verifying => self.verify(id, now),
                ActionState::RetryWaiting => {
                    if let Some(a) = self.actions.get_mut(&id) {
                        a.attempt += 1;
                        a.due = None;
                    }
                    self.advance(id, now, true);
                }
                ActionState::Blocked => self.advance(id, now, false),
                _ => {}
            }
        }
    }

    /// Gives blocked actions whose block may have cleared another look.
    fn recheck_blocked(&mut self, now: Time) {
        let ids: Vec<ActionId> = self.blocked.iter().copied().collect();
        for id in ids {
            let retry = self.actions.get(&id).is_some_and(|a| a.attempt > 1);
            self.advance(id, now, retry);
        }
    }

    /// Which guard would block this runbook on this target right now, if
    /// any (for the console's suggestions).
    pub fn would_block(
        &self,
        runbook: &str,
        target: &str,
        params: &BTreeMap<String, String>,
        now: Time,
    ) -> Option<Block> {
        let mut probe = Engine {
            eval: Evaluator::new(Vec::new()),
            catalog: self.catalog.clone(),
            inventory: self.inventory.clone(),
            windows: self.windows.clone(),
            settings: self.settings.clone(),
            modes: self.modes,
            alerts: table::AlertTable::default(),
            resolved_order: VecDeque::new(),
            actions: self
                .actions
                .iter()
                .filter(|(_, a)| !a.state.is_final())
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            next_action: self.next_action,
            breakers: self.breakers.clone(),
            due: BinaryHeap::new(),
            transitions: Vec::new(),
            out: Vec::new(),
            open_keys: self.open_keys.clone(),
            flight: self.flight.clone(),
            blocked: BTreeSet::new(),
            silences: HashMap::new(),
            upstream: HashMap::new(),
            upstream_on: HashMap::new(),
            restored_stale_at: None,
            refused: Vec::new(),
            refusal_noted: HashMap::new(),
        };
        let id = ActionId(u64::MAX);
        probe.actions.insert(
            id,
            Action::proposed(id, runbook, target, params.clone(), now),
        );
        probe.check_guards(id, now, false).err()
    }

    /// The runbooks that could handle alert `fingerprint`, best first: why
    /// each matched, its parameters (or why they are invalid), the exact
    /// plan, and which guard would block it now (for the console).
    pub fn suggestions(&self, fingerprint: &str, now: Time) -> Vec<Suggestion> {
        let Some(alert) = self.alerts.get(fingerprint) else {
            return Vec::new();
        };
        let labels = alert.runbook_labels();
        self.catalog
            .candidates(&labels)
            .into_iter()
            .map(|(i, score, reasons)| {
                self.suggestion(alert, i, score, reasons, &BTreeMap::new(), now)
            })
            .collect()
    }

    /// Runbook `runbook` for alert `fingerprint` with `given` parameters
    /// (those an analysis took from the evidence), as the console shows a
    /// suggestion: resolved parameters or why not, the plan, the guard that
    /// would stop it now. None when the alert or the runbook is unknown.
    pub fn suggestion_for(
        &self,
        fingerprint: &str,
        runbook: &str,
        given: &BTreeMap<String, String>,
        now: Time,
    ) -> Option<Suggestion> {
        let alert = self.alerts.get(fingerprint)?;
        let i = self
            .catalog
            .runbooks
            .iter()
            .position(|r| r.name() == runbook)?;
        let mut s = self.suggestion(alert, i, 0, Vec::new(), given, now);
        s.origin = SuggestionOrigin::Analysis;
        if !self.catalog.runbooks[i].enabled {
            s.why_not.push(format!(
                "runbook {runbook} is disabled in the config ([runbooks.{runbook}] enabled = false)"
            ));
        }
        Some(s)
    }

    fn suggestion(
        &self,
        alert: &Alert,
        i: usize,
        score: u32,
        reasons: Vec<String>,
        given: &BTreeMap<String, String>,
        now: Time,
    ) -> Suggestion {
        let rb = &self.catalog.runbooks[i];
        let labels = alert.runbook_labels();
        let target = labels.get(rb.target_label()).cloned().unwrap_or_default();
        let facts = self.inventory.facts(&target);
        let mut why_not = Vec::new();
        let (params, plan, block) = match rb.resolve_params(&labels, &facts, given) {
            Ok(p) => {
                let plan = rb.plan(&target, &p);
                let block = self.would_block(rb.name(), &target, &p, now);
                (Ok(p), plan, block)
            }
            Err(e) => {
                why_not.push(format!("parameter {}: {}", e.param, e.message));
                (Err(format!("{}: {}", e.param, e.message)), Vec::new(), None)
            }
        };
        if target.is_empty() {
            why_not.push(format!(
                "the alert has no {:?} label to name the host",
                rb.target_label()
            ));
        }
        if let Some(b) = &block {
            why_not.push(format!("{}: {}", b.reason.as_str(), b.detail));
        }
        let mut approval = match rb.approval {
            ApprovalSpec::Mode(ApprovalMode::Auto) => "auto".to_string(),
            ApprovalSpec::Mode(ApprovalMode::Manual) => "manual".to_string(),
            ApprovalSpec::Threshold { manual_at } => {
                format!("manual at {} and above", manual_at.as_str())
            }
        };
        if rb.approvals > 1 && rb.approval != ApprovalSpec::Mode(ApprovalMode::Auto) {
            approval.push_str(&format!(", {} approvals", rb.approvals));
        }
        Suggestion {
            runbook: rb.name().to_string(),
            description: rb.spec.description.clone(),
            risk: format!("{:?}", rb.spec.risk).to_lowercase(),
            score,
            why: reasons.clone(),
            reasons,
            target,
            params,
            plan,
            block,
            approval,
            origin: SuggestionOrigin::Match,
            why_not,
            analysis_rank: None,
            proposable: false,
            frees_at_most: None,
            needed: None,
            unit: None,
        }
    }

    /// Is the alert's instance currently pending (for the console)?
    pub fn pending_instances(&self) -> impl Iterator<Item = (Labels, Time)> + '_ {
        self.eval
            .instances()
            .iter()
            .enumerate()
            .filter_map(|(id, i)| match self.eval.state(id as InstanceId) {
                InstState::Pending { since } => Some((i.labels(), since)),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests;
