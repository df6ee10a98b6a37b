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
mod snapshot;
pub use snapshot::*;
mod backlog;
pub use backlog::*;
mod handle;
pub use handle::*;
mod standby;
pub use standby::*;

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
    /// The handle's vital signs (a standby's role shows in the snapshots).
    vitals: Arc<crate::vital::Vitals>,
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
        let vitals = crate::vital::Vitals::new();
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
            vitals: vitals.clone(),
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
                vitals,
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
                    // Host figures held back (see HostBoard::shared_views)
                    // go out once due, even when nothing else changes.
                    if dirty || self.hosts.figures_due() {
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
        snap.standby = self.vitals.standby_of();
        self.hosts
            .count(self.engine.alerts(), self.engine.actions());
        snap.hosts = self.hosts.shared_views();
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
mod backlog_tests;
