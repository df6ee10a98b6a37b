//! Runbook suggestions for an alert, with why and why not.

use super::*;

impl Engine {
    /// The runbooks that could handle alert `fingerprint`, best first: why
    /// each matched, its parameters (or why they are invalid), the exact
    /// plan, and which guard would block it now (for the console).
    pub fn suggestions(&self, fingerprint: &str, now: Time) -> Vec<Suggestion> {
        let Some(alert) = self.alerts.get(fingerprint) else {
            return Vec::new();
        };
        let labels = alert.runbook_labels();
        self.catalog
            .candidates(&labels)
            .into_iter()
            .map(|(i, score, reasons)| {
                self.suggestion(alert, i, score, reasons, &BTreeMap::new(), now)
            })
            .collect()
    }

    /// Runbook `runbook` for alert `fingerprint` with `given` parameters
    /// (those an analysis took from the evidence), as the console shows a
    /// suggestion: resolved parameters or why not, the plan, the guard that
    /// would stop it now. None when the alert or the runbook is unknown.
    pub fn suggestion_for(
        &self,
        fingerprint: &str,
        runbook: &str,
        given: &BTreeMap<String, String>,
        now: Time,
    ) -> Option<Suggestion> {
        let alert = self.alerts.get(fingerprint)?;
        let i = self
            .catalog
            .runbooks
            .iter()
            .position(|r| r.name() == runbook)?;
        let mut s = self.suggestion(alert, i, 0, Vec::new(), given, now);
        s.origin = SuggestionOrigin::Analysis;
        if !self.catalog.runbooks[i].enabled {
            s.why_not.push(format!(
                "runbook {runbook} is disabled in the config ([runbooks.{runbook}] enabled = false)"
            ));
        }
        Some(s)
    }

    pub(super) fn suggestion(
        &self,
        alert: &Alert,
        i: usize,
        score: u32,
        reasons: Vec<String>,
        given: &BTreeMap<String, String>,
        now: Time,
    ) -> Suggestion {
        let rb = &self.catalog.runbooks[i];
        let labels = alert.runbook_labels();
        let target = labels.get(rb.target_label()).cloned().unwrap_or_default();
        let facts = self.inventory.facts(&target);
        let mut why_not = Vec::new();
        let (params, plan, block) = match rb.resolve_params(&labels, &facts, given) {
            Ok(p) => {
                let plan = rb.plan(&target, &p);
                let block = self.would_block(rb.name(), &target, &p, now);
                (Ok(p), plan, block)
            }
            Err(e) => {
                why_not.push(format!("parameter {}: {}", e.param, e.message));
                (Err(format!("{}: {}", e.param, e.message)), Vec::new(), None)
            }
        };
        if target.is_empty() {
            why_not.push(format!(
                "the alert has no {:?} label to name the host",
                rb.target_label()
            ));
        }
        if let Some(b) = &block {
            why_not.push(format!("{}: {}", b.reason.as_str(), b.detail));
        }
        let mut approval = match rb.approval {
            ApprovalSpec::Mode(ApprovalMode::Auto) => "auto".to_string(),
            ApprovalSpec::Mode(ApprovalMode::Manual) => "manual".to_string(),
            ApprovalSpec::Threshold { manual_at } => {
                format!("manual at {} and above", manual_at.as_str())
            }
        };
        if rb.approvals > 1 && rb.approval != ApprovalSpec::Mode(ApprovalMode::Auto) {
            approval.push_str(&format!(", {} approvals", rb.approvals));
        }
        Suggestion {
            runbook: rb.name().to_string(),
            description: rb.spec.description.clone(),
            risk: format!("{:?}", rb.spec.risk).to_lowercase(),
            score,
            why: reasons.clone(),
            reasons,
            target,
            params,
            plan,
            block,
            approval,
            origin: SuggestionOrigin::Match,
            why_not,
            analysis_rank: None,
            proposable: false,
            frees_at_most: None,
            needed: None,
            unit: None,
        }
    }
}
