//! What the hub publishes: the snapshot a console draws, the alert order
//! it keeps, source health and the views of pending alerts and runbooks.

use super::*;

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
pub(super) const RECENT: usize = 500;

pub use crate::hosts::HostView;

/// Everything the console needs to draw a frame. Immutable once published.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub at: Time,
    pub modes: Modes,
    pub demo: bool,
    pub operator: String,
    /// Firing first, then resolved; by severity, then age.
    #[serde(with = "crate::view::alerts")]
    pub alerts: Vec<Arc<Alert>>,
    /// Open actions first, then the most recent finished ones.
    /// Shared between snapshots (and attached consoles) until it changes.
    #[serde(with = "crate::view::actions")]
    pub actions: Arc<Vec<Action>>,
    #[serde(with = "crate::view::breakers")]
    pub breakers: Vec<(String, String, Breaker)>,
    /// The newest records, oldest first.
    /// Each record shared (a console copies the list, not the records, when
    /// one arrives).
    pub recent: Arc<Vec<Arc<Record>>>,
    pub audit_seq: u64,
    pub store_error: Option<String>,
    /// On a standby (hubs sharing a store): the active hub, `HOLDER at
    /// ADDR`; a standby shows what the active did and acts on nothing.
    #[serde(default)]
    pub standby: Option<String>,
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
pub(super) fn pending_alerts(engine: &Engine) -> Vec<PendingAlert> {
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
            standby: None,
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
            standby: None,
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
