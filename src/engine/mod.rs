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
mod protocol;
mod restore;
mod silence;
mod table;
mod upstream;
mod verify;
pub use protocol::*;
mod actions;
mod alerts;
mod guard_check;
mod modes;
mod runs;
mod suggest;

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
use crate::policy::eval::{Evaluator, InstanceId, SeriesLimit, Transition};
use crate::runbook::{ApprovalMode, ApprovalSpec, Catalog, PlannedStep};
use crate::units::{add_time, fmt_delta, mul_delta};
pub use effects::{Escalator, Executors, Prober, Resolution};
pub use guards::{Block, HostSpec, Inventory, MaintenanceWindow, WindowSpec};
pub use intents::{Refusal, RefusalKind};
pub use silence::AlertSilence;
pub use table::AlertChanges;
pub use upstream::{Suppressed, UpstreamMatcher, UpstreamSilence, while_inhibited};
use verify::External;

/// An alert in the alert table. Its wire form is `crate::view::AlertView`.
#[derive(Debug, Clone, PartialEq)]
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
    pub generator_url: Option<String>,
    /// The host it is about: a configured host found through
    /// `[settings] host_labels` (`instance` = `10.0.0.5:9100` finds the host
    /// with that address), else its `host` label.
    pub host: Option<String>,
    /// Why no configured host matched (then nothing acts on it).
    pub host_note: Option<String>,
    /// The policy instance that raised it (none for an outside alert or a
    /// console's copy).
    pub(crate) instance: Option<InstanceId>,
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

/// An action and where it is in its life. Its wire form is
/// `crate::view::ActionView`.
#[derive(Debug, Clone, PartialEq)]
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
    pub source_deadline: Option<Time>,
    /// Set once the runbook's own evidence passed and only the source's
    /// resolution is awaited: what passed (never re-run then).
    pub own_check: Option<String>,
    /// The latest answer of the source's own metrics while Vigil waits for
    /// the source (a Prometheus query of the rule's expression).
    pub source_evidence: Option<SourceEvidence>,
}

/// What a query of an outside alert's rule said about it after a run.
#[derive(Debug, Clone, PartialEq)]
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

/// A circuit breaker per runbook@target (on the wire:
/// `crate::view::BreakerView`).
#[derive(Debug, Clone, Default, PartialEq)]
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
}

#[cfg(test)]
mod tests;
