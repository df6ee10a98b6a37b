//! An action's run and after: start, finish, retries with backoff,
//! verification and escalation.

use super::*;

impl Engine {
    pub(super) fn start(&mut self, id: ActionId, now: Time) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        if self.modes.dry_run {
            let mut r = self.action_record(RecordKind::DryRunPlanned, a, now);
            r.params = Some(a.params.clone());
            r.actor = Some(a.approved_by.clone().unwrap_or_else(|| ACTOR_VIGIL.into()));
            r.detail = Some(
                a.plan
                    .iter()
                    .map(|s| {
                        format!(
                            "{}{}",
                            if s.read_only { "[read-only] " } else { "" },
                            s.display()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            r.data = Some(json!({ "plan": a.plan }));
            self.out.push(Command::Record(r));
            if let Some(a) = self.actions.get_mut(&id) {
                a.detail = "dry-run: planned, nothing ran".into();
                a.block = None;
            }
            self.set_state(id, ActionState::Done, None, now);
            return;
        }
        let executor = self.inventory.executor_of(&a.target).unwrap_or_default();
        let mut r = self.action_record(RecordKind::ActionStarted, a, now);
        r.params = Some(a.params.clone());
        r.attempt = Some(a.attempt);
        r.actor = Some(a.approved_by.clone().unwrap_or_else(|| ACTOR_VIGIL.into()));
        r.detail = Some(format!("{} step(s) via {executor}", a.plan.len()));
        self.out.push(Command::Record(r));
        let exec = Execution {
            action: id,
            attempt: a.attempt,
            runbook: a.runbook.clone(),
            target: a.target.clone(),
            executor,
            params: a.params.clone(),
            steps: a.plan.clone(),
        };
        let key = (a.runbook.clone(), a.target.clone());
        let b = self.breakers.entry(key).or_default();
        b.runs.push_back(now);
        while b.runs.len() > 64 {
            b.runs.pop_front();
        }
        if let Some(a) = self.actions.get_mut(&id) {
            a.block = None;
            a.detail = String::new();
        }
        self.set_state(id, ActionState::Running, None, now);
        self.out.push(Command::Execute(exec));
    }

    pub(super) fn escalate(&mut self, id: ActionId, summary: String, reason: &str, now: Time) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let mut r = self.action_record(RecordKind::Escalated, a, now);
        r.actor = Some(ACTOR_VIGIL.into());
        r.reason = Some(reason.into());
        r.detail = Some(summary.clone());
        r.severity = Some(a.severity);
        self.out.push(Command::Record(r));
        self.out.push(Command::Escalate(Escalation {
            action: Some(id),
            alert: Some(a.alert.clone()),
            fingerprint: Some(a.fingerprint.clone()).filter(|f| !f.is_empty()),
            runbook: Some(a.runbook.clone()),
            target: Some(a.target.clone()),
            severity: a.severity,
            summary,
        }));
    }

    pub(super) fn finish(
        &mut self,
        id: ActionId,
        state: ActionState,
        kind: RecordKind,
        reason: &str,
        detail: &str,
        now: Time,
    ) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let mut r = self.action_record(kind, a, now);
        r.actor = Some(ACTOR_VIGIL.into());
        r.reason = Some(reason.into());
        r.detail = Some(detail.into());
        self.out.push(Command::Record(r));
        if let Some(a) = self.actions.get_mut(&id) {
            a.detail = detail.into();
        }
        self.set_state(id, state, None, now);
        self.recheck_blocked(now);
    }

    pub(super) fn on_finished(&mut self, id: ActionId, attempt: u32, outcome: Outcome, now: Time) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        if a.state != ActionState::Running || a.attempt != attempt {
            return;
        }
        let kind = if outcome.success {
            RecordKind::ActionSucceeded
        } else {
            RecordKind::ActionFailed
        };
        let mut r = self.action_record(kind, a, now);
        r.attempt = Some(a.attempt);
        r.exit_code = outcome.exit_code;
        r.detail = Some(outcome.detail.clone());
        r.data = outcome.data.clone();
        r.actor = Some(ACTOR_VIGIL.into());
        self.out.push(Command::Record(r));
        if outcome.success && a.requested_by.is_some() && a.fingerprint.is_empty() {
            // A manual run has no alert to look at again: its runbook's own
            // verify step (part of the run) is the verification.
            self.set_state(id, ActionState::Verifying, None, now);
            self.verify(id, now);
        } else if outcome.success {
            let window = self
                .catalog
                .get(&a.runbook)
                .map(|rb| rb.verify_window)
                .unwrap_or(TimeDelta::minutes(1));
            let source_deadline = self
                .alerts
                .get(&a.fingerprint)
                .filter(|al| al.instance.is_none())
                .map(|al| add_time(now, self.source_window(&al.source).max(window)));
            if let Some(a) = self.actions.get_mut(&id) {
                a.source_deadline = source_deadline;
                a.own_check = None;
                a.source_evidence = None;
            }
            self.probe_source(id, source_deadline);
            self.set_state(id, ActionState::Verifying, Some(add_time(now, window)), now);
        } else {
            self.retry_or_escalate(id, format!("run failed: {}", outcome.detail), now);
        }
    }

    pub(super) fn retry_or_escalate(&mut self, id: ActionId, why: String, now: Time) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let max = self
            .catalog
            .get(&a.runbook)
            .map(|rb| rb.max_attempts)
            .unwrap_or(3);
        if a.attempt < max {
            let backoff = mul_delta(
                self.settings.retry_backoff,
                2i32.pow(a.attempt.saturating_sub(1).min(16)),
            );
            let at = add_time(now, backoff);
            let mut r = self.action_record(RecordKind::RetryScheduled, a, now);
            r.attempt = Some(a.attempt + 1);
            r.actor = Some(ACTOR_VIGIL.into());
            r.detail = Some(format!(
                "{why}; attempt {} of {max} at {} (backoff {})",
                a.attempt + 1,
                fmt_time(&at),
                fmt_delta(backoff)
            ));
            self.out.push(Command::Record(r));
            self.set_state(id, ActionState::RetryWaiting, Some(at), now);
        } else {
            let summary = format!(
                "{}@{} for {}: {why}; {} attempt(s) spent",
                a.runbook, a.target, a.alert, a.attempt
            );
            self.escalate(id, summary, "attempts_exhausted", now);
            self.set_state(id, ActionState::Escalated, None, now);
            self.recheck_blocked(now);
        }
    }

    pub(super) fn verify(&mut self, id: ActionId, now: Time) {
        // An outside alert: the best evidence, and patience with its source.
        let external = self
            .actions
            .get(&id)
            .and_then(|a| self.alerts.get(&a.fingerprint))
            .is_some_and(|al| al.instance.is_none());
        let ext = if external {
            match self.verify_external(id, now) {
                External::Verdict(bad, why) => Some((bad, why)),
                External::Wait | External::Escalated => return,
            }
        } else {
            None
        };
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let alert = self.alerts.get(&a.fingerprint);
        let instance = alert.and_then(|al| {
            al.instance.or_else(|| {
                (al.origin == AlertOrigin::Policy)
                    .then(|| self.eval.find_instance(&al.fingerprint))
                    .flatten()
            })
        });
        let (still_bad, why) = match alert {
            Some(_) if instance.is_some() => {
                let inst = instance.unwrap_or_default();
                let p = self.eval.policy(self.eval.instance(inst).policy);
                let bad = self.eval.fire_holds_latest(inst);
                let v = self.eval.values(inst).first().copied().flatten();
                let val = v
                    .map(|(v, at)| format!("; latest value {v} at {}", fmt_time(&at)))
                    .unwrap_or_default();
                (
                    bad,
                    format!(
                        "{} {}{val}",
                        p.fire_text,
                        if bad {
                            "still holds"
                        } else {
                            "no longer holds"
                        }
                    ),
                )
            }
            Some(_) => ext.unwrap_or_default(),
            None if a.requested_by.is_some() && a.fingerprint.is_empty() => {
                let has_verify = a.plan.iter().any(|s| s.name.starts_with("verify"));
                (
                    false,
                    if has_verify {
                        "manual run without an alert: the runbook's verify step passed".to_string()
                    } else {
                        "manual run without an alert: the run succeeded and the runbook has no verify step".to_string()
                    },
                )
            }
            None => (false, "the alert is gone".to_string()),
        };
        let kind = if still_bad {
            RecordKind::VerificationFailed
        } else {
            RecordKind::VerificationPassed
        };
        let mut r = self.action_record(kind, a, now);
        r.attempt = Some(a.attempt);
        r.actor = Some(ACTOR_VIGIL.into());
        r.detail = Some(why.clone());
        self.out.push(Command::Record(r));
        if still_bad {
            self.retry_or_escalate(id, format!("verification failed: {why}"), now);
        } else {
            if let Some(a) = self.actions.get_mut(&id) {
                a.detail = why;
            }
            self.set_state(id, ActionState::Done, None, now);
            self.recheck_blocked(now);
        }
    }
}
