//! What goes in and out of the engine: the events it handles, the
//! commands it returns, the outcome of a run and the settings it starts
//! with. Data only.

use super::*;

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
