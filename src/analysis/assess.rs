//! The weighed facts behind an analysis, the same for every analyser: the
//! weighing of the alert's resource, what each recommended runbook would
//! free at most against what is needed, and the runbooks the analysis does
//! not recommend with why. Also the checks an answer passes against those
//! facts: a runbook that cannot cover the need is not recommended, and a
//! cause must agree with the shares when they are known.
//!
//! Computed from the input alone, never taken from an analyser's answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::weigh::{ContributorKind, MEANINGFUL_SHARE, ShareBasis, Unit, Weighing, pct};
use super::{Analysis, AnalysisInput, Cause, Rejection};
use crate::runbook::Catalog;

/// A runbook the analysis recommends, with what it would free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessed {
    pub runbook: String,
    pub params: BTreeMap<String, String>,
    /// The most it would free (in the weighing's unit), when that can be told.
    #[serde(default)]
    pub frees_at_most: Option<f64>,
    /// How much must be freed to clear the alert, when known.
    #[serde(default)]
    pub needed: Option<f64>,
}

/// A runbook the analysis does not recommend, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Declined {
    pub runbook: String,
    /// The parameters it was weighed with.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub why: String,
    #[serde(default)]
    pub frees_at_most: Option<f64>,
    #[serde(default)]
    pub needed: Option<f64>,
}

/// The weighed facts behind one alert's analysis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The resource's capacity and contributors (filling resources only).
    #[serde(default)]
    pub weighing: Option<Weighing>,
    /// The analysis' runbooks, best first, with what each would free.
    #[serde(default)]
    pub recommended: Vec<Assessed>,
    /// Matched runbooks it passes over and runbooks that cannot cover the
    /// need, with why.
    #[serde(default)]
    pub declined: Vec<Declined>,
}

impl Assessment {
    /// The unit quantities are given in, when there is a capacity.
    pub fn unit(&self) -> Option<Unit> {
        self.weighing
            .as_ref()
            .and_then(|w| w.capacity.as_ref())
            .map(|c| c.unit)
    }
}

/// When a runbook with these parameters cannot free what is needed:
/// (why, frees at most, needed).
pub fn cannot_cover(
    w: &Weighing,
    runbook: &str,
    params: &BTreeMap<String, String>,
) -> Option<(String, f64, f64)> {
    let cap = w.capacity.as_ref()?;
    let needed = cap.needed.filter(|n| *n > 0.0)?;
    let frees = w.frees_at_most(runbook, params)?;
    (frees < needed).then(|| {
        (
            format!(
                "{runbook} would free at most {} of the {} needed to bring {} below {}",
                cap.unit.show(frees),
                cap.unit.show(needed),
                cap.resource,
                cap.unit.show(cap.threshold.unwrap_or(cap.size))
            ),
            frees,
            needed,
        )
    })
}

/// Does the cause agree with the shares? `Err` names what they show.
pub fn agrees_with_shares(cause: Cause, w: &Weighing) -> Result<(), String> {
    if w.basis != ShareBasis::Resource || !w.weighed() {
        return Ok(());
    }
    let need = match cause {
        Cause::DiskGrowthLogs => ContributorKind::Log,
        Cause::DiskGrowthData => ContributorKind::Data,
        Cause::MemoryLeak
            if w.contributors
                .iter()
                .any(|c| c.kind == ContributorKind::Service) =>
        {
            ContributorKind::Service
        }
        Cause::ConnectionLeak
            if w.contributors
                .iter()
                .any(|c| c.kind == ContributorKind::Idle) =>
        {
            ContributorKind::Idle
        }
        _ => return Ok(()),
    };
    let share = if need == ContributorKind::Service || need == ContributorKind::Idle {
        // One leaking service or state, not the sum of many small ones.
        w.contributors
            .iter()
            .filter(|c| c.kind == need)
            .map(|c| c.share)
            .fold(0.0, f64::max)
    } else {
        w.share_of(need)
    };
    if share >= MEANINGFUL_SHARE {
        Ok(())
    } else {
        Err(format!(
            "{cause} needs a contributor of that kind explaining at least {} of the growth; the shares are: {}",
            pct(MEANINGFUL_SHARE),
            w.shares_line()
        ))
    }
}

/// Checks an analysis against the weighed facts (after its parameters
/// were resolved): every recommended runbook can cover the need, and the
/// cause agrees with the shares.
pub fn check_weighed(a: &Analysis, w: Option<&Weighing>) -> Result<(), Rejection> {
    let Some(w) = w else { return Ok(()) };
    for r in &a.runbooks {
        if let Some((why, ..)) = cannot_cover(w, &r.runbook, &r.params) {
            return Err(Rejection::CannotCover {
                runbook: r.runbook.clone(),
                why,
            });
        }
    }
    agrees_with_shares(a.cause, w).map_err(|why| Rejection::ContradictsShares {
        cause: a.cause,
        why,
    })
}

/// Builds the assessment of an analysis and drops (into `declined`) the
/// recommendations that cannot cover the need, so the answer passes
/// [`check_weighed`]. Matched runbooks the analysis does not recommend are
/// declined with the reason.
pub fn assess(
    a: &mut Analysis,
    input: &AnalysisInput,
    catalog: &Catalog,
    w: Option<Weighing>,
) -> Assessment {
    let mut out = Assessment {
        weighing: w,
        ..Assessment::default()
    };
    let needed = out
        .weighing
        .as_ref()
        .and_then(|w| w.capacity.as_ref())
        .and_then(|c| c.needed);
    let mut kept = Vec::new();
    for r in std::mem::take(&mut a.runbooks) {
        let short = out
            .weighing
            .as_ref()
            .and_then(|w| cannot_cover(w, &r.runbook, &r.params));
        match short {
            Some((why, frees, needed)) => {
                out.declined.push(Declined {
                    runbook: r.runbook.clone(),
                    params: r.params.clone(),
                    why,
                    frees_at_most: Some(frees),
                    needed: Some(needed),
                });
            }
            None => {
                out.recommended.push(Assessed {
                    runbook: r.runbook.clone(),
                    params: r.params.clone(),
                    frees_at_most: out
                        .weighing
                        .as_ref()
                        .and_then(|w| w.frees_at_most(&r.runbook, &r.params)),
                    needed,
                });
                kept.push(r);
            }
        }
    }
    a.runbooks = kept;
    if a.runbooks.is_empty() && !out.declined.is_empty() {
        a.summary = clip(&format!(
            "{}; no runbook frees enough: a human must act",
            a.summary
        ));
    }
    // The matched runbooks the analysis passes over.
    for (i, _, _) in catalog.candidates(&input.alert.labels) {
        let rb = &catalog.runbooks[i];
        let name = rb.name();
        if a.runbooks.iter().any(|r| r.runbook == name)
            || out.declined.iter().any(|d| d.runbook == name)
        {
            continue;
        }
        let mut facts = input.host_labels.clone();
        if let Some(h) = &input.alert.host {
            facts.insert("host".into(), h.clone());
        }
        let params = rb
            .resolve_params(&input.alert.labels, &facts, &BTreeMap::new())
            .unwrap_or_default();
        let short = out
            .weighing
            .as_ref()
            .and_then(|w| cannot_cover(w, name, &params));
        let (why, frees, need) = match short {
            Some((why, f, n)) => (why, Some(f), Some(n)),
            None => (passed_over(a, out.weighing.as_ref(), name), None, None),
        };
        let frees = frees.or_else(|| {
            out.weighing
                .as_ref()
                .and_then(|w| w.frees_at_most(name, &params))
        });
        out.declined.push(Declined {
            runbook: name.to_string(),
            params,
            why,
            frees_at_most: frees,
            needed: need.or(needed),
        });
    }
    out
}

/// Why the analysis passes over a matched runbook, in words.
fn passed_over(a: &Analysis, w: Option<&Weighing>, runbook: &str) -> String {
    if let Some(lead) = w.and_then(Weighing::leader) {
        return format!(
            "{} explains {} of the growth; {runbook} does not address it ({})",
            lead.what,
            pct(lead.share),
            a.cause
        );
    }
    match (a.cause, a.runbooks.first()) {
        (Cause::Unknown, None) => format!("the analysis is inconclusive: {}", a.summary),
        (_, Some(r)) => format!(
            "the analysis recommends {} instead ({}): {}",
            r.runbook, a.cause, r.why
        ),
        (c, None) => format!("no runbook fixes {c}: {}", a.summary),
    }
}

/// At most 300 characters (a summary's limit).
pub fn clip(s: &str) -> String {
    if s.chars().count() <= 300 {
        s.to_string()
    } else {
        s.chars().take(299).collect::<String>() + "…"
    }
}

/// The weighed facts an LLM is given with the input: the weighing and, for
/// the runbooks that could apply (the matched ones, a rotation per growing
/// log, a restart per weighed service), what each would free at most
/// against what is needed.
pub fn prompt_facts(input: &AnalysisInput, catalog: &Catalog) -> serde_json::Value {
    let Some(w) = super::weigh::weigh(input) else {
        return serde_json::Value::Null;
    };
    let mut options: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut facts = input.host_labels.clone();
    if let Some(h) = &input.alert.host {
        facts.insert("host".into(), h.clone());
    }
    for (i, _, _) in catalog.candidates(&input.alert.labels) {
        let rb = &catalog.runbooks[i];
        let p = rb
            .resolve_params(&input.alert.labels, &facts, &BTreeMap::new())
            .unwrap_or_default();
        options.push((rb.name().to_string(), p));
    }
    for c in &w.contributors {
        let runbook = match c.param.as_ref().map(|p| p.0.as_str()) {
            Some("path") => "log_rotation",
            Some("service") => "memory_pressure",
            _ => continue,
        };
        if let Some((k, v)) = &c.param {
            options.push((runbook.into(), [(k.clone(), v.clone())].into()));
        }
    }
    let capacity: Vec<serde_json::Value> = options
        .iter()
        .filter(|(r, _)| catalog.get(r).is_some_and(|rb| rb.enabled))
        .filter_map(|(r, p)| {
            let frees = w.frees_at_most(r, p)?;
            let needed = w.capacity.as_ref().and_then(|c| c.needed);
            Some(serde_json::json!({
                "runbook": r,
                "params": p,
                "frees_at_most": frees,
                "needed": needed,
                "covers_the_need": needed.is_none_or(|n| frees >= n),
            }))
        })
        .collect();
    serde_json::json!({
        "weighing": w,
        "meaningful_share": MEANINGFUL_SHARE,
        "runbook_capacity": capacity,
    })
}
