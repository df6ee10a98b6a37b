//! Verifying an action taken on an outside alert (Alertmanager,
//! Prometheus) with the best evidence there is: the runbook's own verify
//! step, Vigil's own series for the same host and metric, and the source's
//! state. Sources resolve late (Alertmanager waits for its group_interval),
//! so when Vigil's own evidence passed and only the source lags, the action
//! is never run again: it waits for the source within a window that fits it
//! and then passes, or escalates.
//!
//! Pure like the rest of the engine.

use chrono::TimeDelta;

use super::{ActionState, Command, Engine, Probe, SourceEvidence};
use crate::model::{ActionId, AlertStatus, Time, fmt_time};
use crate::units::fmt_delta;

/// What the look at an outside alert's action decided.
pub(super) enum External {
    /// Record verification passed (`false`) or failed (`true`), with why.
    Verdict(bool, String),
    /// Keep waiting for the source (nothing recorded).
    Wait,
    /// Escalated: the own check passed but the source never resolved.
    Escalated,
}

impl Engine {
    /// How long to wait for `source` to resolve an alert after a run.
    pub(super) fn source_window(&self, source: &str) -> TimeDelta {
        self.settings
            .source_verify_windows
            .get(source)
            .copied()
            .unwrap_or(self.settings.external_verify_window)
    }

    /// " (latest value V at T)" of instance `inst`'s first leaf, or nothing.
    pub(super) fn latest_value_text(&self, inst: crate::policy::eval::InstanceId) -> String {
        self.eval
            .values(inst)
            .first()
            .copied()
            .flatten()
            .map(|(v, at)| format!(" (latest value {v} at {})", fmt_time(&at)))
            .unwrap_or_default()
    }

    /// Vigil's own series for the outside alert of action `id`: a policy of
    /// the same name with an instance on the same host and labels whose data
    /// is fresh. `Some((still_bad, why))` when there is one.
    fn own_series_verdict(&self, fp: &str, now: Time) -> Option<(bool, String)> {
        let al = self.alerts.get(fp)?;
        let (pi, p) = self
            .eval
            .policies()
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == al.name)?;
        let inst = self
            .eval
            .instances()
            .iter()
            .enumerate()
            .find_map(|(i, x)| {
                (x.policy as usize == pi
                    && x.key
                        .iter()
                        .all(|(k, v)| k == "alertname" || al.labels.get(k) == Some(v)))
                .then_some(i as crate::policy::eval::InstanceId)
            })?;
        let last = self.eval.last_update(inst)?;
        if now - last > crate::policy::STALENESS {
            return None;
        }
        let bad = self.eval.fire_holds_latest(inst);
        let val = self.latest_value_text(inst);
        Some((
            bad,
            format!(
                "Vigil's own series: {} {}{val}",
                p.fire_text,
                if bad {
                    "still holds"
                } else {
                    "no longer holds"
                }
            ),
        ))
    }

    /// The verdict on an outside alert's action at the end of its verify
    /// window, or while it waits for the source.
    pub(super) fn verify_external(&mut self, id: ActionId, now: Time) -> External {
        let Some(a) = self.actions.get(&id) else {
            return External::Wait;
        };
        let Some(al) = self.alerts.get(&a.fingerprint) else {
            return External::Verdict(false, "the alert is gone".into());
        };
        let (name, source, status) = (al.name.clone(), al.source.clone(), al.status);
        let own = self.own_series_verdict(&a.fingerprint, now);
        if status == AlertStatus::Resolved {
            let mut why = format!("alert {name} resolved by {source}");
            if let Some(c) = &a.own_check {
                why.push_str(&format!(" after the runbook's check passed ({c})"));
            }
            return External::Verdict(false, why);
        }
        if let Some((true, why)) = own {
            return External::Verdict(true, format!("alert {name} is still firing; {why}"));
        }
        let own_ok = match own {
            Some((false, why)) => Some(why),
            _ if a.plan.iter().any(|s| s.name.starts_with("verify")) => {
                Some("the runbook's verify step passed".to_string())
            }
            _ => a
                .source_evidence
                .as_ref()
                .filter(|e| !e.holds)
                .map(|e| e.why.clone()),
        };
        // The rule's own expression, queried after the run, still holds:
        // the fix did not reach the condition the source alerts on.
        let rule_holds = a
            .source_evidence
            .as_ref()
            .filter(|e| e.holds)
            .map(|e| e.why.clone());
        let deadline = a.source_deadline.unwrap_or(now);
        if now < deadline {
            let detail = match &own_ok {
                Some(c) => format!(
                    "the runbook's check passed ({c}); waiting for {source} to resolve {name} until {}",
                    fmt_time(&deadline)
                ),
                None => format!(
                    "no evidence of Vigil's own; waiting for {source} to resolve {name} until {}",
                    fmt_time(&deadline)
                ),
            };
            if let Some(a) = self.actions.get_mut(&id) {
                a.own_check = own_ok;
                a.detail = detail;
            }
            self.set_state(id, ActionState::Verifying, Some(deadline), now);
            return External::Wait;
        }
        let own_ok = own_ok.or_else(|| a.own_check.clone());
        match (own_ok, rule_holds) {
            (Some(c), holds) => {
                let also = holds.map(|h| format!("; {h}")).unwrap_or_default();
                let summary = format!(
                    "{}@{} for {name}: the runbook's check passed ({c}) but {source} still fires the alert {} after the run{also}; not run again",
                    a.runbook,
                    a.target,
                    fmt_delta(self.source_window(&source))
                );
                self.escalate(id, summary.clone(), "source_still_firing", now);
                if let Some(a) = self.actions.get_mut(&id) {
                    a.detail = summary;
                }
                self.set_state(id, ActionState::Escalated, None, now);
                self.recheck_blocked(now);
                External::Escalated
            }
            (None, holds) => External::Verdict(
                true,
                format!(
                    "alert {name} is still firing at the end of {source}'s verification window{}",
                    holds.map(|h| format!("; {h}")).unwrap_or_default()
                ),
            ),
        }
    }

    /// After a successful run on an outside alert that links to its rule
    /// (`generatorURL`), asks the hub to query the rule's expression until
    /// the source's deadline.
    pub(super) fn probe_source(&mut self, id: ActionId, until: Option<Time>) {
        let (Some(until), Some(a)) = (until, self.actions.get(&id)) else {
            return;
        };
        let Some(al) = self.alerts.get(&a.fingerprint) else {
            return;
        };
        let Some(url) = al.generator_url.clone().filter(|u| !u.is_empty()) else {
            return;
        };
        self.out.push(Command::Probe(Probe {
            action: id,
            attempt: a.attempt,
            alert: al.name.clone(),
            labels: al.labels.clone(),
            generator_url: url,
            until,
        }));
    }

    /// Keeps the latest answer of a probe for the attempt that asked; an
    /// answer for another attempt or an action no longer verifying is old.
    pub(super) fn on_evidence(&mut self, id: ActionId, attempt: u32, evidence: SourceEvidence) {
        if let Some(a) = self.actions.get_mut(&id)
            && a.attempt == attempt
            && a.state == ActionState::Verifying
            && a.source_deadline.is_some()
        {
            if !evidence.holds && a.own_check.is_none() && a.due == a.source_deadline {
                a.detail = format!(
                    "{}; waiting for the source to resolve {} until {}",
                    evidence.why,
                    a.alert,
                    a.source_deadline.as_ref().map(fmt_time).unwrap_or_default()
                );
            }
            a.source_evidence = Some(evidence);
        }
    }

    /// The source resolved an alert whose action waits for it: verify now.
    pub(super) fn source_resolved(&mut self, fp: &str, now: Time) {
        let Some(id) = self.alerts.get(fp).and_then(|al| al.action) else {
            return;
        };
        let waiting = self.actions.get(&id).is_some_and(|a| {
            a.state == ActionState::Verifying
                && a.source_deadline.is_some()
                && a.due.is_some_and(|d| Some(d) == a.source_deadline)
        });
        if waiting {
            self.verify(id, now);
        }
    }
}
