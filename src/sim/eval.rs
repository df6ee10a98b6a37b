//! `vigil rca eval DIR`: replays labelled scenario files (those with an
//! `[expect.rca]` table), builds the analysis input of the last alert to
//! fire at the moment it fired, runs an analyser and scores it: top-1 cause
//! accuracy, top-1 runbook accuracy, evidence validity (every cited item
//! exists in the input) and inconclusive-when-it-should.
//!
//! Reads scenario files; decides nothing for the engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::scenario::{Replay, Scenario};
use crate::analysis::input::{AlertFacts, AnalysisInput, Context, HistoryBook};
use crate::analysis::llm::{LlmClient, LlmSpec, analyse_or_fallback};
use crate::analysis::{Analyser, Analysis, Cause, Heuristic};
use crate::model::{AlertStatus, RecordKind};
use crate::runbook::Catalog;

/// A labelled case, ready to analyse.
pub struct Case {
    pub file: String,
    pub name: String,
    pub cause: Cause,
    /// The expected top runbook, or "none".
    pub runbook: String,
    pub input: AnalysisInput,
    pub catalog: Arc<Catalog>,
}

/// Why a file could not be turned into a case.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct CaseError {
    pub file: String,
    pub message: String,
}

/// Loads a scenario file as a case; `Ok(None)` when it has no
/// `[expect.rca]` table (not a labelled case).
pub fn load_case(path: &Path) -> Result<Option<Case>, CaseError> {
    let file = path.display().to_string();
    let fail = |message: String| CaseError {
        file: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let scenario = Scenario::parse(&file, &text).map_err(|e| fail(e.to_string()))?;
    let Some(rca) = scenario.file.expect.as_ref().and_then(|e| e.rca.clone()) else {
        return Ok(None);
    };
    let name = scenario.file.name.clone();
    let cause_word = rca
        .get("cause")
        .and_then(|v| v.as_str())
        .ok_or_else(|| fail("[expect.rca] needs cause = \"...\"".into()))?;
    let cause = Cause::parse(cause_word).ok_or_else(|| {
        fail(format!(
            "[expect.rca] cause = {cause_word:?} is not a cause; expected one of {}",
            Cause::list()
        ))
    })?;
    let runbook = rca
        .get("runbook")
        .and_then(|v| v.as_str())
        .ok_or_else(|| fail("[expect.rca] needs runbook = \"NAME\" or \"none\"".into()))?
        .to_string();
    let replay = scenario.run();
    if runbook != "none" && replay.catalog.get(&runbook).is_none() {
        return Err(fail(format!(
            "[expect.rca] runbook = {runbook:?} is not in the catalog"
        )));
    }
    let input = input_of_last_alert(&replay).ok_or_else(|| {
        fail("no alert fired in the scenario, so there is nothing to analyse".into())
    })?;
    Ok(Some(Case {
        file,
        name,
        cause,
        runbook,
        input,
        catalog: Arc::new(replay.catalog),
    }))
}

/// The analysis input of the last alert to fire in a replay, made at the
/// moment it fired with everything before it in view.
pub fn input_of_last_alert(replay: &Replay) -> Option<AnalysisInput> {
    let (seq, alert) = replay.seen.fired.last()?;
    let at = replay.log.iter().find(|r| r.seq == *seq)?.at;
    let mut book = HistoryBook::new();
    for (t, s) in replay.seen.samples.iter().filter(|(t, _)| *t <= at) {
        book.observe(s, *t);
    }
    // Alerts as they stood just before: the latest firing of each
    // fingerprint, resolved when a later alert_resolved came before `seq`.
    let mut alerts: BTreeMap<String, AlertFacts> = BTreeMap::new();
    for (s, a) in replay.seen.fired.iter().filter(|(s, _)| s < seq) {
        let mut f = AlertFacts::from_alert(a);
        f.status = AlertStatus::Firing;
        let resolved = replay.log.iter().any(|r| {
            r.kind == RecordKind::AlertResolved
                && r.seq > *s
                && r.seq < *seq
                && r.fingerprint.as_deref() == Some(&a.fingerprint)
        });
        if resolved {
            f.status = AlertStatus::Resolved;
        }
        alerts.insert(a.fingerprint.clone(), f);
    }
    let alerts: Vec<AlertFacts> = alerts.into_values().collect();
    let records: Vec<_> = replay
        .log
        .iter()
        .filter(|r| r.seq < *seq)
        .cloned()
        .collect();
    let ctx = Context {
        history: &book,
        alerts: &alerts,
        records: &records,
        windows: &replay.windows,
        inventory: &replay.inventory,
    };
    let mut facts = AlertFacts::from_alert(alert);
    facts.status = AlertStatus::Firing;
    Some(AnalysisInput::build(facts, at, &ctx))
}

/// The score of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub expected_cause: Cause,
    pub cause: Cause,
    pub expected_runbook: String,
    pub runbook: String,
    pub confidence: f64,
    pub evidence_cited: usize,
    /// Cited items that are not in the input.
    pub evidence_invalid: Vec<String>,
    /// Set when the analyser fell back (LLM) or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    pub summary: String,
    pub micros: u128,
}

impl CaseResult {
    pub fn cause_ok(&self) -> bool {
        self.cause == self.expected_cause
    }
    pub fn runbook_ok(&self) -> bool {
        self.runbook == self.expected_runbook
    }
}

/// A ratio with its parts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Score {
    pub hits: usize,
    pub of: usize,
    pub ratio: f64,
}

impl Score {
    fn new(hits: usize, of: usize) -> Score {
        Score {
            hits,
            of,
            ratio: if of == 0 {
                1.0
            } else {
                hits as f64 / of as f64
            },
        }
    }
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} = {:.1}%", self.hits, self.of, self.ratio * 100.0)
    }
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dir: String,
    pub analyser: String,
    pub cases: Vec<CaseResult>,
    /// Files that could not be evaluated (counted as misses).
    pub errors: Vec<String>,
    /// Files without `[expect.rca]`, skipped.
    pub skipped: usize,
    pub cause_accuracy: Score,
    pub runbook_accuracy: Score,
    pub evidence_validity: Score,
    pub inconclusive_when_it_should: Score,
    /// Cases answered "unknown" whose label names a cause.
    pub inconclusive_when_it_should_not: usize,
    pub p99_micros: u128,
}

/// Runs `analyse` over every labelled case of `dir` (`*.toml`, sorted).
/// `analyse` returns the analysis and, when it fell back, why.
pub fn run<F>(dir: &Path, analyser: &str, mut analyse: F) -> Result<Report, CaseError>
where
    F: FnMut(&Case) -> (Analysis, Option<String>),
{
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CaseError {
            file: dir.display().to_string(),
            message: format!("cannot read the directory: {e}"),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    let mut skipped = 0;
    for f in &files {
        match load_case(f) {
            Ok(Some(case)) => {
                let t0 = Instant::now();
                let (a, fallback) = analyse(&case);
                let micros = t0.elapsed().as_micros();
                let invalid = a
                    .evidence
                    .iter()
                    .filter(|e| !case.input.contains(e))
                    .map(|e| format!("{:?} {} = {}", e.kind, e.signal, e.value))
                    .collect();
                cases.push(CaseResult {
                    file: case.file.clone(),
                    name: case.name.clone(),
                    expected_cause: case.cause,
                    cause: a.cause,
                    expected_runbook: case.runbook.clone(),
                    runbook: a.top_runbook().to_string(),
                    confidence: a.confidence,
                    evidence_cited: a.evidence.len(),
                    evidence_invalid: invalid,
                    fallback,
                    summary: a.summary.clone(),
                    micros,
                });
            }
            Ok(None) => skipped += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    let total = cases.len() + errors.len();
    let count = |p: &dyn Fn(&CaseResult) -> bool| cases.iter().filter(|c| p(c)).count();
    let should = count(&|c| c.expected_cause == Cause::Unknown);
    let mut times: Vec<u128> = cases.iter().map(|c| c.micros).collect();
    times.sort_unstable();
    let p99 = times
        .get(((times.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0);
    Ok(Report {
        dir: dir.display().to_string(),
        analyser: analyser.to_string(),
        cause_accuracy: Score::new(count(&|c| c.cause_ok()), total),
        runbook_accuracy: Score::new(count(&|c| c.runbook_ok()), total),
        evidence_validity: Score::new(count(&|c| c.evidence_invalid.is_empty()), total),
        inconclusive_when_it_should: Score::new(
            count(&|c| c.expected_cause == Cause::Unknown && c.cause == Cause::Unknown),
            should,
        ),
        inconclusive_when_it_should_not: count(&|c| {
            c.expected_cause != Cause::Unknown && c.cause == Cause::Unknown
        }),
        p99_micros: p99,
        cases,
        errors,
        skipped,
    })
}

impl Report {
    /// The human report: one line per case, then the figures.
    pub fn text(&self) -> String {
        let mut s = format!(
            "rca eval: {} labelled cases in {} (analyser: {}; {} files without [expect.rca] skipped)\n",
            self.cases.len() + self.errors.len(),
            self.dir,
            self.analyser,
            self.skipped
        );
        for c in &self.cases {
            let ok = c.cause_ok() && c.runbook_ok() && c.evidence_invalid.is_empty();
            s.push_str(&format!(
                "  {} {:<40} cause {} (want {})  runbook {} (want {})  evidence {}/{}{}\n",
                if ok { "ok  " } else { "MISS" },
                c.name,
                c.cause,
                c.expected_cause,
                c.runbook,
                c.expected_runbook,
                c.evidence_cited - c.evidence_invalid.len(),
                c.evidence_cited,
                c.fallback
                    .as_deref()
                    .map(|f| format!("  fallback: {f}"))
                    .unwrap_or_default()
            ));
        }
        for e in &self.errors {
            s.push_str(&format!("  ERR  {e}\n"));
        }
        s.push_str(&format!(
            "top-1 cause accuracy:        {}\n",
            self.cause_accuracy
        ));
        s.push_str(&format!(
            "top-1 runbook accuracy:      {}\n",
            self.runbook_accuracy
        ));
        s.push_str(&format!(
            "evidence validity:           {}\n",
            self.evidence_validity
        ));
        s.push_str(&format!(
            "inconclusive when it should: {} ({} inconclusive when it should not)\n",
            self.inconclusive_when_it_should, self.inconclusive_when_it_should_not
        ));
        s.push_str(&format!(
            "analysis time p99:           {} µs\n",
            self.p99_micros
        ));
        s
    }
}

/// Evaluates the heuristic analyser over `dir`.
pub fn run_heuristic(dir: &Path) -> Result<Report, CaseError> {
    run(dir, "heuristic", |case| {
        (
            Heuristic::new(case.catalog.clone()).analyse(&case.input),
            None,
        )
    })
}

/// Evaluates the LLM analyser over `dir` (each failure falls back to the
/// heuristic and is reported with its reason).
pub fn run_llm(dir: &Path, spec: &LlmSpec) -> Result<Report, CaseError> {
    let fail = |message: String| CaseError {
        file: "[analysis.llm]".into(),
        message,
    };
    let client = LlmClient::from_spec(spec).map_err(|e| fail(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the runtime: {e}")))?;
    let label = format!("llm ({})", client.model());
    run(dir, &label, |case| {
        let h = Heuristic::new(case.catalog.clone());
        let out = rt.block_on(analyse_or_fallback(&client, &h, &case.input, &mut |_| {}));
        (out.analysis, out.fallback)
    })
}
