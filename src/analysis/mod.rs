//! Root-cause analysis: the `Analyser` interface, the structured result it
//! returns, the input it reads (what the hub or the replayer knew when an
//! alert fired), and the strict checks every result passes before anyone
//! sees it (evidence must point at the input, runbooks must exist in the
//! catalog, parameters must pass their patterns).
//!
//! Analysers only explain and recommend: they never produce commands, never
//! touch the engine and never act. The engine and its guards decide.

pub mod advice;
pub mod assess;
pub mod heuristic;
pub mod input;
pub mod live;
pub mod llm;
pub mod redact;
pub mod signals;
pub mod trend;
pub mod weigh;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Labels, Time};
use crate::runbook::{Catalog, ParamSource};

pub use heuristic::Heuristic;
pub use input::{AlertFacts, AnalysisInput, HistoryBook, Point, SeriesHistory, WindowOccurrence};

/// The likely causes an analysis may name: a fixed list, so that the console,
/// the evaluation and the LLM all speak the same words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    MemoryLeak,
    DiskGrowthLogs,
    DiskGrowthData,
    CrashLoop,
    DependencyDown,
    ConnectionLeak,
    ZombieAccumulation,
    ScheduledJob,
    TrafficSpike,
    Unknown,
}

impl Cause {
    pub const ALL: [Cause; 10] = [
        Cause::MemoryLeak,
        Cause::DiskGrowthLogs,
        Cause::DiskGrowthData,
        Cause::CrashLoop,
        Cause::DependencyDown,
        Cause::ConnectionLeak,
        Cause::ZombieAccumulation,
        Cause::ScheduledJob,
        Cause::TrafficSpike,
        Cause::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::MemoryLeak => "memory_leak",
            Cause::DiskGrowthLogs => "disk_growth_logs",
            Cause::DiskGrowthData => "disk_growth_data",
            Cause::CrashLoop => "crash_loop",
            Cause::DependencyDown => "dependency_down",
            Cause::ConnectionLeak => "connection_leak",
            Cause::ZombieAccumulation => "zombie_accumulation",
            Cause::ScheduledJob => "scheduled_job",
            Cause::TrafficSpike => "traffic_spike",
            Cause::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The accepted words, for error messages and the LLM prompt.
    pub fn list() -> String {
        Cause::ALL.map(Cause::as_str).join(", ")
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of thing in the input an evidence item points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A point of a series: `signal` is the series key
    /// (`name{k="v",...}`), `value` the sample's value, `at` its time.
    Series,
    /// An alert: `signal` is its name, `value` its host ("" when none),
    /// `at` when it started firing.
    Alert,
    /// A record of the decision log: `signal` is its kind, `value` its
    /// `seq`, `at` its time.
    Record,
    /// A maintenance window occurrence: `signal` is its reason (or schedule
    /// when it has none), `value` its schedule, `at` when it opened.
    Window,
    /// A label or annotation of the alert or its host: `signal` is the key,
    /// `value` the value, no `at`.
    Label,
}

/// One fact an analysis rests on, which an engineer can find and check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub kind: EvidenceKind,
    pub signal: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time")]
    pub at: Option<Time>,
    /// What it shows, in a few words.
    #[serde(default)]
    pub note: String,
}

/// A runbook the analysis recommends, with its parameters (validated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recommendation {
    pub runbook: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub why: String,
}

/// The structured result of an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// One line for the detail pane.
    pub summary: String,
    pub cause: Cause,
    /// 0 to 1.
    pub confidence: f64,
    pub evidence: Vec<Evidence>,
    /// Best first; empty means "no runbook fixes this: a human should look".
    pub runbooks: Vec<Recommendation>,
    /// What would change the conclusion.
    #[serde(default)]
    pub would_change: Vec<String>,
}

impl Analysis {
    /// "Inconclusive" is a valid answer: the cause is unknown.
    pub fn inconclusive(&self) -> bool {
        self.cause == Cause::Unknown
    }

    /// The top runbook's name, or "none".
    pub fn top_runbook(&self) -> &str {
        self.runbooks
            .first()
            .map(|r| r.runbook.as_str())
            .unwrap_or("none")
    }
}

/// Which analyser produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalyserKind {
    Heuristic,
    Llm,
}

/// An analyser: reads what was known when the alert fired, explains it.
/// Implementations must not act, must not produce commands, and must return
/// results that pass [`check`] (evidence in the input, runbooks in the
/// catalog with valid parameters).
pub trait Analyser: Send + Sync {
    fn kind(&self) -> AnalyserKind;
    fn analyse(&self, input: &AnalysisInput) -> Analysis;
}

/// Why a result was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("evidence item {index} ({kind:?} {signal:?} = {value:?}) is not in the input")]
    EvidenceNotInInput {
        index: usize,
        kind: EvidenceKind,
        signal: String,
        value: String,
    },
    #[error("runbook {0:?} is not in the catalog (or is disabled)")]
    UnknownRunbook(String),
    #[error("runbook {runbook}: {message}")]
    BadParam { runbook: String, message: String },
    #[error("confidence {0} is not between 0 and 1")]
    BadConfidence(f64),
    #[error("the summary is empty or longer than 300 characters")]
    BadSummary,
    #[error("runbook {runbook} cannot cover the need: {why}")]
    CannotCover { runbook: String, why: String },
    #[error("cause {cause} contradicts the weighed shares: {why}")]
    ContradictsShares { cause: Cause, why: String },
}

/// Checks a result strictly against its input and the catalog; returns the
/// result with every runbook's parameters fully resolved. The weighed facts
/// hold for every analyser: a recommended runbook must be able to free what
/// is needed, and the cause must agree with the shares when they are known.
pub fn check(
    mut a: Analysis,
    input: &AnalysisInput,
    catalog: &Catalog,
) -> Result<Analysis, Rejection> {
    if !(0.0..=1.0).contains(&a.confidence) || a.confidence.is_nan() {
        return Err(Rejection::BadConfidence(a.confidence));
    }
    let s = a.summary.trim();
    if s.is_empty() || s.chars().count() > 300 || s.contains('\n') {
        return Err(Rejection::BadSummary);
    }
    for (index, e) in a.evidence.iter().enumerate() {
        if !input.contains(e) {
            return Err(Rejection::EvidenceNotInInput {
                index,
                kind: e.kind,
                signal: e.signal.clone(),
                value: e.value.clone(),
            });
        }
    }
    for r in a.runbooks.iter_mut() {
        r.params = resolve_recommendation(&r.runbook, &r.params, input, catalog)?;
    }
    assess::check_weighed(&a, weigh::weigh(input).as_ref())?;
    Ok(a)
}

/// Resolves a recommended runbook's parameters as the engine would (alert
/// labels, host facts, defaults), with the given values as explicit ones.
/// A value taken from labels must appear in the input: an analyser may pick
/// among the labels it saw, never invent a target.
pub fn resolve_recommendation(
    runbook: &str,
    given: &BTreeMap<String, String>,
    input: &AnalysisInput,
    catalog: &Catalog,
) -> Result<BTreeMap<String, String>, Rejection> {
    let rb = catalog
        .get(runbook)
        .filter(|r| r.enabled)
        .ok_or_else(|| Rejection::UnknownRunbook(runbook.to_string()))?;
    let bad = |message: String| Rejection::BadParam {
        runbook: runbook.to_string(),
        message,
    };
    for (k, v) in given {
        let Some(p) = rb.params.iter().find(|p| &p.name == k) else {
            return Err(bad(format!(
                "{k} is not a parameter; accepted: {}",
                rb.params
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        p.validate(v).map_err(bad)?;
        if p.spec.source == ParamSource::Label
            && p.spec.default.as_deref() != Some(v.as_str())
            && !input.mentions_value(v)
        {
            return Err(bad(format!(
                "{k}={:?} appears nowhere in the alert, its labels or the host's series",
                v.escape_debug().to_string()
            )));
        }
    }
    let mut facts = input.host_labels.clone();
    if let Some(h) = &input.alert.host {
        facts.insert("host".into(), h.clone());
    }
    rb.resolve_params(&input.alert.labels, &facts, given)
        .map_err(|e| bad(e.message))
}

/// Formats a number the way evidence values show it (shortest exact form).
pub fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The canonical key of a series: `name{k="v",...}` in label order.
pub fn series_key(name: &str, labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

mod opt_time {
    use super::Time;
    use chrono::SecondsFormat;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Time>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Time>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| Some(t.with_timezone(&chrono::Utc)))
                .map_err(serde::de::Error::custom),
        }
    }
}
