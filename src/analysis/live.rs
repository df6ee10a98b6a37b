//! Analysis inside the running hub: remembers series history with times,
//! analyses every alert the moment it fires (the heuristic at once, the LLM
//! when configured in a spawned task that never blocks the hub), turns the
//! results into `rca` records and keeps the per-alert views the console
//! shows (pending, streaming text, done, fallback with the reason).
//!
//! Owned by the hub; it decides nothing for the engine and writes nothing
//! itself: the hub writes the records it returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::assess::{Assessment, assess};
use super::input::{AlertFacts, AnalysisInput, Context, HistoryBook};
use super::llm::{LlmClient, LlmOutcome, analyse_or_fallback};
use super::redact::{REDACTED, is_secret_key, redact_text};
use super::weigh::weigh;
use super::{AnalyserKind, Analysis, Heuristic};
use crate::engine::{Alert, Engine, Event};
use crate::model::{Record, RecordKind, Time};
use crate::runbook::Catalog;
use crate::shard_map::ShardMap;

/// At most this many LLM analyses run at once; alerts beyond that keep the
/// heuristic's answer (an alert storm must not become an API storm).
pub const MAX_LLM_IN_FLIGHT: usize = 4;
/// Streamed text kept per alert.
const MAX_STREAM: usize = 16 * 1024;
/// Views kept at most (the oldest go first).
const MAX_VIEWS: usize = 500;

/// Where an alert's analysis is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisState {
    /// The heuristic's answer is shown; the LLM has not answered yet.
    Pending,
    /// The LLM's answer is arriving (`streamed` grows).
    Streaming,
    /// Final: `analysis` is from `analyser`.
    Done,
    /// The LLM's answer was not used (`fallback` says why); the heuristic's
    /// answer stands.
    Fallback,
}

/// One alert's analysis as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AnalysisView {
    pub alert: String,
    pub target: Option<String>,
    pub state: AnalysisState,
    pub analyser: AnalyserKind,
    pub analysis: Analysis,
    /// The LLM's raw text so far (display only; never acted upon).
    pub streamed: String,
    pub fallback: Option<String>,
    #[serde(serialize_with = "ser_time")]
    pub at: Time,
}

fn ser_time<S: serde::Serializer>(t: &Time, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::model::fmt_time(t))
}

/// What a spawned LLM analysis sends back to the hub.
#[derive(Debug)]
pub enum AnalysisUpdate {
    Text {
        fingerprint: String,
        text: String,
    },
    Finished {
        fingerprint: String,
        alert: Box<AlertFacts>,
        outcome: Box<LlmOutcome>,
        assessment: Arc<Assessment>,
    },
}

/// The hub's analysis state.
pub struct LiveAnalysis {
    heuristic: Heuristic,
    llm: Option<Arc<LlmClient>>,
    enabled: bool,
    history: HistoryBook,
    /// Shared with the published snapshots shard by shard (see
    /// `crate::shard_map`).
    views: ShardMap<AnalysisView>,
    /// The weighed facts behind each view, by fingerprint.
    assessments: BTreeMap<String, Arc<Assessment>>,
    tx: mpsc::Sender<AnalysisUpdate>,
    rx: mpsc::Receiver<AnalysisUpdate>,
    in_flight: usize,
}

impl LiveAnalysis {
    pub fn new(catalog: Arc<Catalog>) -> LiveAnalysis {
        let (tx, rx) = mpsc::channel(1024);
        LiveAnalysis {
            heuristic: Heuristic::new(catalog),
            llm: None,
            enabled: true,
            history: HistoryBook::new(),
            views: ShardMap::new(),
            assessments: BTreeMap::new(),
            tx,
            rx,
            in_flight: 0,
        }
    }

    pub fn set_llm(&mut self, client: Option<LlmClient>) {
        self.llm = client.map(Arc::new);
    }

    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// The series history (the hub sets its budget and evicts from it).
    pub fn history_mut(&mut self) -> &mut HistoryBook {
        &mut self.history
    }

    /// Remembers the samples an event carries.
    pub fn observe(&mut self, ev: &Event, now: Time) {
        match ev {
            Event::Sample(s) => self.history.observe(s, now),
            Event::Samples(v) => {
                for s in v {
                    self.history.observe(s, now);
                }
            }
            Event::Keyed(v) => {
                for s in v {
                    self.history.observe_key(&s.key, s.value, now);
                }
            }
            _ => {}
        }
    }

    pub fn observe_samples(&mut self, samples: &[crate::model::Sample], now: Time) {
        for s in samples {
            self.history.observe(s, now);
        }
    }

    /// Analyses an alert that just fired: returns the `rca` record of the
    /// heuristic's answer, and starts the LLM when configured.
    pub fn on_firing(
        &mut self,
        alert: &Alert,
        now: Time,
        engine: &Engine,
        recent: &[Record],
    ) -> Option<Record> {
        if !self.enabled {
            return None;
        }
        // Only what can be related (recent or still firing), newest first,
        // bounded so that an alert storm stays cheap.
        let mut near: Vec<&Alert> = engine
            .alerts()
            .filter(|a| {
                a.status == crate::model::AlertStatus::Firing
                    || a.since >= now - super::input::RELATED_WINDOW
            })
            .collect();
        near.sort_by_key(|a| std::cmp::Reverse(a.since));
        near.truncate(4 * super::input::MAX_RELATED);
        let alerts: Vec<AlertFacts> = near.into_iter().map(AlertFacts::from_alert).collect();
        let ctx = Context {
            history: &self.history,
            alerts: &alerts,
            records: recent,
            windows: engine.windows(),
            inventory: engine.inventory(),
        };
        let facts = AlertFacts::from_alert(alert);
        let input = AnalysisInput::build(facts.clone(), now, &ctx);
        let (analysis, assessment) = self.heuristic.assessed(&input);
        self.assessments
            .insert(alert.fingerprint.clone(), Arc::new(assessment));
        let record = rca_record(
            &facts,
            now,
            &analysis,
            AnalyserKind::Heuristic,
            None,
            self.assessments.get(&alert.fingerprint).map(|a| &**a),
        );
        let mut view = AnalysisView {
            alert: alert.name.clone(),
            target: facts.host.clone(),
            state: AnalysisState::Done,
            analyser: AnalyserKind::Heuristic,
            analysis,
            streamed: String::new(),
            fallback: None,
            at: now,
        };
        if let Some(client) = &self.llm {
            if self.in_flight >= MAX_LLM_IN_FLIGHT {
                view.state = AnalysisState::Fallback;
                view.fallback = Some(format!(
                    "{MAX_LLM_IN_FLIGHT} LLM analyses already running; the heuristic's answer stands"
                ));
            } else {
                view.state = AnalysisState::Pending;
                self.in_flight += 1;
                self.spawn_llm(client.clone(), facts, input);
            }
        }
        self.views.insert(alert.fingerprint.clone(), view);
        while self.views.len() > MAX_VIEWS {
            let oldest = self
                .views
                .iter()
                .min_by_key(|(_, v)| v.at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.assessments.remove(&k);
                    self.views.remove(&k)
                }
                None => break,
            };
        }
        Some(record)
    }

    fn spawn_llm(&self, client: Arc<LlmClient>, alert: AlertFacts, input: AnalysisInput) {
        let tx = self.tx.clone();
        let heuristic = self.heuristic.clone();
        let fingerprint = alert.fingerprint.clone();
        tokio::spawn(async move {
            let text_tx = tx.clone();
            let fp = fingerprint.clone();
            let mut on_text = move |t: &str| {
                // Display only: a full channel drops a piece, never blocks.
                let _ = text_tx.try_send(AnalysisUpdate::Text {
                    fingerprint: fp.clone(),
                    text: t.to_string(),
                });
            };
            let outcome = analyse_or_fallback(&client, &heuristic, &input, &mut on_text).await;
            // The same weighed facts, whichever analyser answered.
            let mut a = outcome.analysis.clone();
            let assessment = assess(&mut a, &input, heuristic.catalog(), weigh(&input));
            let _ = tx
                .send(AnalysisUpdate::Finished {
                    fingerprint,
                    alert: Box::new(alert),
                    outcome: Box::new(outcome),
                    assessment: Arc::new(assessment),
                })
                .await;
        });
    }

    /// The next update from a spawned analysis (pends forever when none
    /// can come, so it is safe in a `select!`).
    pub async fn next_update(&mut self) -> Option<AnalysisUpdate> {
        self.rx.recv().await
    }

    /// Applies an update; returns the `rca` record to write when an LLM
    /// analysis finished.
    pub fn apply(&mut self, u: AnalysisUpdate, now: Time) -> Option<Record> {
        match u {
            AnalysisUpdate::Text { fingerprint, text } => {
                if let Some(v) = self.views.get_mut(&fingerprint)
                    && matches!(v.state, AnalysisState::Pending | AnalysisState::Streaming)
                {
                    v.state = AnalysisState::Streaming;
                    if v.streamed.len() + text.len() <= MAX_STREAM {
                        v.streamed.push_str(&text);
                    }
                }
                None
            }
            AnalysisUpdate::Finished {
                fingerprint,
                alert,
                outcome,
                assessment,
            } => {
                if self.views.contains_key(&fingerprint) {
                    self.assessments.insert(fingerprint.clone(), assessment);
                }
                self.in_flight = self.in_flight.saturating_sub(1);
                let (kind, state) = match &outcome.fallback {
                    None => (AnalyserKind::Llm, AnalysisState::Done),
                    Some(_) => (AnalyserKind::Heuristic, AnalysisState::Fallback),
                };
                if let Some(v) = self.views.get_mut(&fingerprint) {
                    v.state = state;
                    v.analyser = kind;
                    v.analysis = outcome.analysis.clone();
                    v.fallback = outcome.fallback.clone();
                }
                Some(rca_record(
                    &alert,
                    now,
                    &outcome.analysis,
                    kind,
                    outcome.fallback.as_deref(),
                    self.assessments.get(&fingerprint).map(|a| &**a),
                ))
            }
        }
    }

    /// The views of alerts the engine still knows (cheap to clone: see
    /// `crate::shard_map`).
    pub fn views(&mut self, known: impl Fn(&str) -> bool) -> ShardMap<AnalysisView> {
        self.views.retain(|fp, _| known(fp));
        let views = &self.views;
        self.assessments.retain(|fp, _| views.contains_key(fp));
        self.views.clone()
    }
}

impl LiveAnalysis {
    /// The analysis of alert `fingerprint`, if it was analysed.
    pub fn view(&self, fingerprint: &str) -> Option<&AnalysisView> {
        self.views.get(fingerprint)
    }

    /// The weighed facts behind the analysis of alert `fingerprint`.
    pub fn assessment(&self, fingerprint: &str) -> Option<Arc<Assessment>> {
        self.assessments.get(fingerprint).cloned()
    }
}

/// The `rca` record of an analysis: `reason` is the cause, `detail` the
/// summary, `value` the confidence, `data` the analyser, the fallback reason,
/// the whole result and its weighed facts (`assessment`: capacity, shares,
/// what each runbook frees; secret-looking values redacted).
pub fn rca_record(
    alert: &AlertFacts,
    at: Time,
    a: &Analysis,
    analyser: AnalyserKind,
    fallback: Option<&str>,
    assessment: Option<&Assessment>,
) -> Record {
    let assessment = assessment.map(|x| {
        let mut x = x.clone();
        if let Some(w) = &mut x.weighing {
            for c in &mut w.contributors {
                c.what = redact_text(&c.what);
                c.series = redact_text(&c.series);
            }
        }
        for d in &mut x.declined {
            d.why = redact_text(&d.why);
        }
        x
    });
    let mut clean = a.clone();
    clean.summary = redact_text(&clean.summary);
    for e in &mut clean.evidence {
        e.value = if is_secret_key(&e.signal) {
            REDACTED.into()
        } else {
            redact_text(&e.value)
        };
        e.note = redact_text(&e.note);
    }
    let mut r = Record::new(RecordKind::Rca, at);
    r.alert = Some(alert.name.clone());
    r.fingerprint = Some(alert.fingerprint.clone());
    r.target = alert.host.clone();
    r.reason = Some(clean.cause.as_str().into());
    r.detail = Some(clean.summary.clone());
    r.value = Some((clean.confidence * 100.0).round() / 100.0);
    r.runbook = clean.runbooks.first().map(|x| x.runbook.clone());
    r.data = Some(json!({
        "analyser": analyser,
        "fallback": fallback,
        "analysis": clean,
        "assessment": assessment,
    }));
    r
}
