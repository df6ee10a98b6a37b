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

use crate::engine::{
    Action, Alert, Breaker, Command, Engine, Escalation, Event, Execution, InterruptedAction,
    Modes, Outcome, Restored,
};
use crate::model::{ActionId, AlertStatus, Record, RecordKind, Time};
use crate::sim::demo::DemoFleet;
use crate::store::{AuditWriter, PersistedState, StoreError};

/// Runs the executions that are not simulated (local, ssh, http). The
/// implementation lives in `crate::exec`; the hub only hands work over.
pub trait Executors: Send + Sync {
    /// Starts `x` in the background. Must send exactly one
    /// `Event::Finished` for it on `done`, whatever happens.
    fn spawn(&self, x: Execution, done: mpsc::Sender<Event>);
}

/// Delivers escalations to people (PagerDuty, chat webhooks). The
/// implementation retries on its own; the hub does not wait for it.
pub trait Escalator: Send + Sync {
    fn escalate(&self, e: Escalation);
}

/// The health of one signal source, as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceHealth {
    pub name: String,
    /// `alertmanager`, `prometheus`, `webhook`, `ingest`, `demo`, ...
    pub kind: String,
    pub state: HealthState,
    /// A short human text: "12 alerts", "connection refused", ...
    pub detail: String,
    pub last_ok: Option<Time>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// A host as the console shows it: latest values and a short history.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    pub name: String,
    pub group: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    pub history: BTreeMap<String, VecDeque<f64>>,
}

/// Everything the console needs to draw a frame. Immutable once published.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Time,
    pub modes: Modes,
    pub demo: bool,
    pub operator: String,
    /// Firing first, then resolved; by severity, then age.
    pub alerts: Vec<Alert>,
    /// Open actions first, then the most recent finished ones.
    pub actions: Vec<Action>,
    pub breakers: Vec<(String, String, Breaker)>,
    /// The newest records, oldest first.
    pub recent: Vec<Record>,
    pub audit_seq: u64,
    pub store_error: Option<String>,
    pub hosts: Vec<HostView>,
    pub incidents: Vec<String>,
    pub sources: Vec<SourceHealth>,
}

impl Snapshot {
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
    pub demo: Option<DemoFleet>,
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

/// The handle the console and the servers use.
#[derive(Clone)]
pub struct HubHandle {
    pub events: mpsc::Sender<Event>,
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
}

pub struct Hub {
    engine: Engine,
    writer: AuditWriter,
    demo: Option<DemoFleet>,
    operator: String,
    rx: mpsc::Receiver<Event>,
    tx: mpsc::Sender<Event>,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    recent: VecDeque<Record>,
    audit_seq: u64,
    store_error: Option<String>,
    hosts: BTreeMap<String, HostView>,
    sim_run_time: Duration,
    tick: Duration,
    pending_restore: Vec<Command>,
    executors: Option<Arc<dyn Executors>>,
    escalator: Option<Arc<dyn Escalator>>,
    sources: SourceBoard,
}

/// Turns what the store remembers into what the engine restores, and the
/// records that close actions that cannot be resumed.
pub fn restored_from(state: &PersistedState) -> Restored {
    let mut r = Restored {
        next_action: 1,
        ..Default::default()
    };
    if state.dry_run.is_some() || state.frozen.is_some() {
        r.modes = Some(Modes {
            dry_run: state.dry_run.unwrap_or(false),
            frozen: state.frozen.unwrap_or(false),
        });
    }
    for a in &state.actions {
        if let Some(id) = ActionId::parse(&a.action_id) {
            r.next_action = r.next_action.max(id.0 + 1);
            let was_running = matches!(
                a.state,
                RecordKind::ActionStarted | RecordKind::ActionInterrupted
            );
            if was_running {
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
    for b in &state.breakers {
        r.open_breakers
            .push((b.runbook.clone(), b.target.clone(), b.opened_at));
    }
    for s in &state.recent_starts {
        r.runs.push((s.runbook.clone(), s.target.clone(), s.at));
    }
    r
}

impl Hub {
    /// Builds the hub; returns it and the handle to talk to it.
    pub fn new(setup: HubSetup) -> (Hub, HubHandle) {
        let (tx, rx) = mpsc::channel(4096);
        let empty = Snapshot {
            at: Utc::now(),
            modes: setup.engine.modes(),
            demo: setup.demo.is_some(),
            operator: setup.operator.clone(),
            alerts: Vec::new(),
            actions: Vec::new(),
            breakers: Vec::new(),
            recent: Vec::new(),
            audit_seq: setup.restored.last_seq,
            store_error: None,
            hosts: Vec::new(),
            incidents: Vec::new(),
            sources: Vec::new(),
        };
        let (snap_tx, snap_rx) = watch::channel(Arc::new(empty));
        let mut hub = Hub {
            engine: setup.engine,
            writer: setup.writer,
            demo: setup.demo,
            operator: setup.operator,
            rx,
            tx: tx.clone(),
            snap_tx,
            recent: VecDeque::new(),
            audit_seq: setup.restored.last_seq,
            store_error: None,
            hosts: BTreeMap::new(),
            sim_run_time: setup.sim_run_time,
            tick: setup.tick,
            pending_restore: Vec::new(),
            executors: setup.executors,
            escalator: setup.escalator,
            sources: setup.sources,
        };
        let restored = restored_from(&setup.restored);
        let cmds = hub.engine.restore(restored, Utc::now());
        hub.pending_restore = cmds;
        (
            hub,
            HubHandle {
                events: tx,
                snapshots: snap_rx,
            },
        )
    }

    /// Runs until `shutdown` flips to true; flushes the audit trail before
    /// returning.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), StoreError> {
        let restore = std::mem::take(&mut self.pending_restore);
        self.perform(restore, Utc::now()).await;
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut publish = tokio::time::interval(Duration::from_millis(100));
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut dirty = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
                Some(ev) = self.rx.recv() => {
                    let now = Utc::now();
                    // Alerts and operator intents are published at once (the
                    // console and the API see them within milliseconds);
                    // samples wait for the next publish tick.
                    let mut urgent = !matches!(ev, Event::Sample(_) | Event::Samples(_));
                    self.engine.handle_into(ev, now);
                    // Drain what is queued so one commit covers the batch.
                    let mut n = 0;
                    while n < 1024 {
                        match self.rx.try_recv() {
                            Ok(ev) => {
                                urgent |= !matches!(ev, Event::Sample(_) | Event::Samples(_));
                                self.engine.handle_into(ev, now);
                                n += 1;
                            }
                            Err(_) => break,
                        }
                    }
                    let cmds = self.engine.take_commands();
                    if urgent {
                        // The new state is shown before its records are
                        // synced (showing is not acting); effects still wait
                        // for the write, and the records follow.
                        self.publish();
                    }
                    self.perform(cmds, now).await;
                    dirty = true;
                }
                _ = tick.tick() => {
                    let now = Utc::now();
                    if let Some(demo) = self.demo.as_mut() {
                        let samples = demo.step(now);
                        self.observe_hosts(&samples);
                        self.engine.handle_into(Event::Samples(samples), now);
                    }
                    self.engine.handle_into(Event::Tick, now);
                    let cmds = self.engine.take_commands();
                    self.perform(cmds, now).await;
                    dirty = true;
                }
                _ = publish.tick() => {
                    if dirty {
                        self.publish();
                        dirty = false;
                    }
                }
            }
        }
        self.publish();
        self.writer.flush_async().await
    }

    fn observe_hosts(&mut self, samples: &[crate::model::Sample]) {
        for s in samples {
            let Some(host) = s.labels.get("host") else {
                continue;
            };
            let hv = self.hosts.entry(host.clone()).or_insert_with(|| HostView {
                name: host.clone(),
                group: self
                    .engine
                    .inventory()
                    .hosts
                    .get(host)
                    .and_then(|h| h.labels.get("group").cloned()),
                metrics: BTreeMap::new(),
                history: BTreeMap::new(),
            });
            // The worst value of a metric across the host's series.
            let v = hv.metrics.entry(s.name.clone()).or_insert(s.value);
            *v = s.value;
            let h = hv.history.entry(s.name.clone()).or_default();
            h.push_back(s.value);
            while h.len() > 120 {
                h.pop_front();
            }
        }
    }

    /// Writes the batch's records durably, then performs its other commands.
    /// When the write fails, nothing of the batch is performed.
    async fn perform(&mut self, cmds: Vec<Command>, now: Time) {
        if cmds.is_empty() {
            return;
        }
        let mut records = Vec::new();
        let mut effects = Vec::new();
        for c in cmds {
            match c {
                Command::Record(r) => records.push(r),
                other => effects.push(other),
            }
        }
        if !records.is_empty() {
            match self.writer.append(records).await {
                Ok(written) => {
                    self.store_error = None;
                    for r in written {
                        self.audit_seq = self.audit_seq.max(r.seq);
                        self.recent.push_back(r);
                    }
                    while self.recent.len() > RECENT {
                        self.recent.pop_front();
                    }
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
                    return;
                }
            }
        }
        for c in effects {
            match c {
                Command::Execute(x) => self.execute(x, now),
                Command::Escalate(e) => {
                    tracing::warn!(summary = %e.summary, "escalated");
                    if let Some(esc) = &self.escalator {
                        esc.escalate(e);
                    }
                }
                Command::Record(_) => {}
            }
        }
    }

    fn execute(&mut self, x: Execution, now: Time) {
        let tx = self.tx.clone();
        if x.executor == "sim"
            && let Some(demo) = self.demo.as_mut()
        {
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
        if x.executor != "sim"
            && let Some(ex) = &self.executors
        {
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

    fn publish(&mut self) {
        let mut alerts: Vec<Alert> = self.engine.alerts().cloned().collect();
        alerts.sort_by(|a, b| {
            (a.status == AlertStatus::Resolved)
                .cmp(&(b.status == AlertStatus::Resolved))
                .then(b.severity.cmp(&a.severity))
                .then(a.since.cmp(&b.since))
        });
        let mut actions: Vec<Action> = self
            .engine
            .actions()
            .rev()
            .filter(|a| !a.state.is_final())
            .cloned()
            .collect();
        actions.extend(
            self.engine
                .actions()
                .rev()
                .filter(|a| a.state.is_final())
                .take(200)
                .cloned(),
        );
        let breakers = self
            .engine
            .breakers()
            .filter(|(_, b)| b.open_since.is_some())
            .map(|((r, t), b)| (r.clone(), t.clone(), b.clone()))
            .collect();
        let snap = Snapshot {
            at: Utc::now(),
            modes: self.engine.modes(),
            demo: self.demo.is_some(),
            operator: self.operator.clone(),
            alerts,
            actions,
            breakers,
            recent: self.recent.iter().cloned().collect(),
            audit_seq: self.audit_seq,
            store_error: self.store_error.clone(),
            hosts: self.hosts.values().cloned().collect(),
            incidents: self
                .demo
                .as_ref()
                .map(|d| d.incidents())
                .unwrap_or_default(),
            sources: self
                .sources
                .read()
                .map(|b| b.values().cloned().collect())
                .unwrap_or_default(),
        };
        self.snap_tx.send_replace(Arc::new(snap));
    }
}
