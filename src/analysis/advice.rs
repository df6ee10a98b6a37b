//! What the console offers for an alert: the runbooks its rules matched
//! (from the engine) and the ones its analysis recommends, side by side,
//! each with why (match rule, the analysis' reason and evidence) and why not
//! (the guard that would stop it, a missing parameter, the analysis passing
//! it over or finding it cannot free enough); and the proposal an operator
//! makes from the analysis, with the parameters the analysis took from the
//! evidence.
//!
//! Reads the engine and the analysis; decides nothing: a proposal goes to
//! the engine as an intent, through the same checks as any action.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::assess::Assessment;
use super::live::AnalysisView;
use crate::engine::{Engine, Event, Suggestion, SuggestionOrigin};
use crate::model::Time;
use crate::runbook::{Catalog, ParamSource};

/// The parameters an analysis takes from the evidence: the label-sourced
/// ones (a log's `path`, a service). Host facts and literals are resolved
/// by the engine when it proposes, as for any action.
pub fn evidence_params(
    catalog: &Catalog,
    runbook: &str,
    params: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let Some(rb) = catalog.get(runbook) else {
        return BTreeMap::new();
    };
    params
        .iter()
        .filter(|(k, _)| {
            rb.params
                .iter()
                .any(|p| &p.name == *k && p.spec.source == ParamSource::Label)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Evidence notes quoted per suggestion.
const EVIDENCE_LINES: usize = 3;

/// The suggestions for alert `fingerprint`: the matched runbooks first (in
/// the engine's order), then the analysis' recommendations that no rule
/// matched, then runbooks the analysis considered and declined.
pub fn suggestions(
    engine: &Engine,
    view: Option<&AnalysisView>,
    assessment: Option<&Assessment>,
    fingerprint: &str,
    now: Time,
) -> Vec<Suggestion> {
    let mut list = engine.suggestions(fingerprint, now);
    let Some(view) = view else {
        return list;
    };
    let a = &view.analysis;
    let unit = assessment
        .and_then(Assessment::unit)
        .map(|u| serde_json::to_value(u).ok())
        .and_then(|v| v.and_then(|v| v.as_str().map(str::to_string)));
    let evidence: Vec<String> = a
        .evidence
        .iter()
        .filter(|e| !e.note.is_empty())
        .take(EVIDENCE_LINES)
        .map(|e| format!("evidence: {}", e.note))
        .collect();
    for (rank, rec) in a.runbooks.iter().enumerate() {
        let params = evidence_params(engine.catalog(), &rec.runbook, &rec.params);
        let i = match list.iter().position(|s| s.runbook == rec.runbook) {
            Some(i) => {
                list[i].origin = SuggestionOrigin::Both;
                i
            }
            None => match engine.suggestion_for(fingerprint, &rec.runbook, &params, now) {
                Some(s) => {
                    list.push(s);
                    list.len() - 1
                }
                None => continue,
            },
        };
        let s = &mut list[i];
        s.analysis_rank = Some(rank as u32 + 1);
        s.why.push(format!(
            "the analysis ({}, {:.0}% confident) recommends it: {}",
            a.cause,
            a.confidence * 100.0,
            rec.why
        ));
        s.why.extend(evidence.iter().cloned());
        if let Some(x) =
            assessment.and_then(|x| x.recommended.iter().find(|r| r.runbook == rec.runbook))
        {
            s.frees_at_most = x.frees_at_most;
            s.needed = x.needed;
            s.unit = unit.clone();
        }
        // Proposed with the analysis' parameters.
        if s.origin == SuggestionOrigin::Both
            && !params.is_empty()
            && let Some(fresh) = engine.suggestion_for(fingerprint, &rec.runbook, &params, now)
        {
            s.params = fresh.params;
            s.plan = fresh.plan;
            s.block = fresh.block;
            s.why_not = fresh.why_not;
        }
        match proposable(engine, fingerprint, &rec.runbook, &params, now) {
            Ok(()) if s.params.is_ok() => s.proposable = true,
            Ok(()) => {}
            Err(why) => s.why_not.push(why),
        }
    }
    for d in assessment
        .map(|x| x.declined.as_slice())
        .unwrap_or_default()
    {
        let i = match list.iter().position(|s| s.runbook == d.runbook) {
            Some(i) => i,
            None => match engine.suggestion_for(
                fingerprint,
                &d.runbook,
                &evidence_params(engine.catalog(), &d.runbook, &d.params),
                now,
            ) {
                Some(s) => {
                    list.push(s);
                    list.len() - 1
                }
                None => continue,
            },
        };
        let s = &mut list[i];
        s.why_not
            .push(format!("the analysis does not recommend it: {}", d.why));
        s.frees_at_most = d.frees_at_most.or(s.frees_at_most);
        s.needed = d.needed.or(s.needed);
        if s.frees_at_most.is_some() || s.needed.is_some() {
            s.unit = unit.clone();
        }
    }
    list
}

/// Could it be proposed from the analysis now? `Err` says why not.
fn proposable(
    engine: &Engine,
    fingerprint: &str,
    runbook: &str,
    params: &BTreeMap<String, String>,
    now: Time,
) -> Result<(), String> {
    let ev = Event::ProposeRecommended {
        fingerprint: fingerprint.to_string(),
        runbook: runbook.to_string(),
        params: params.clone(),
        actor: "operator".into(),
        basis: Value::Null,
    };
    engine.vet(&ev, now).map_err(|r| r.message)
}

/// Why a proposal from the analysis cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    #[error("alert {0} has no analysis (yet)")]
    NoAnalysis(String),
    #[error("the analysis does not recommend {runbook}; it recommends: {recommended}")]
    NotRecommended {
        runbook: String,
        recommended: String,
    },
}

/// The intent that proposes the analysis' runbook `runbook` for alert
/// `fingerprint` on behalf of `actor`: the parameters are the ones the
/// analysis took from the evidence (already checked against the input and
/// the runbook's patterns), never values from the request.
pub fn proposal(
    catalog: &Catalog,
    view: Option<&AnalysisView>,
    fingerprint: &str,
    runbook: &str,
    actor: &str,
) -> Result<Event, ProposalError> {
    let view = view.ok_or_else(|| ProposalError::NoAnalysis(fingerprint.to_string()))?;
    let a = &view.analysis;
    let Some(rec) = a.runbooks.iter().find(|r| r.runbook == runbook) else {
        return Err(ProposalError::NotRecommended {
            runbook: runbook.escape_debug().to_string(),
            recommended: if a.runbooks.is_empty() {
                "no runbook".into()
            } else {
                a.runbooks
                    .iter()
                    .map(|r| r.runbook.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        });
    };
    let basis = json!({
        "analyser": view.analyser,
        "analysed_at": crate::model::fmt_time(&view.at),
        "cause": a.cause,
        "confidence": a.confidence,
        "summary": a.summary,
        "why": rec.why,
        "evidence": a.evidence.iter().take(5).map(|e| e.note.clone()).collect::<Vec<_>>(),
    });
    Ok(Event::ProposeRecommended {
        fingerprint: fingerprint.to_string(),
        runbook: rec.runbook.clone(),
        params: evidence_params(catalog, &rec.runbook, &rec.params),
        actor: actor.to_string(),
        basis,
    })
}
