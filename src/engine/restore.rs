//! Restart: what the store remembers becomes the engine's state again, so
//! that a restart changes nothing an operator can see (rule 13). Firing
//! alerts keep their episode (a redelivery is not a new firing), open actions
//! keep their state and deadlines (a deadline that passed while Vigil was
//! down fires at the first tick, in order), silences keep their end. Only an
//! action that was running is changed: it comes back interrupted, recorded
//! once, and waits for a human (rule 7).

use std::cmp::Reverse;
use std::sync::Arc;

use chrono::TimeDelta;

use super::{
    Action, Alert, AlertSilence, Command, Engine, InterruptedAction, Restored, RestoredAction,
    RestoredAlert, rec,
};
use crate::model::{
    ACTOR_VIGIL, ActionState, AlertOrigin, AlertStatus, BlockReason, Labels, RecordKind, Time,
    fingerprint,
};
use crate::units::fmt_delta;

/// The detail of an action interrupted by a restart.
pub(super) const INTERRUPTED: &str =
    "was running when Vigil stopped; not re-run without an operator";

impl Engine {
    /// The policy that raised a firing alert named `name` with `labels` and
    /// `fp`, if it was one of Vigil's own (its fingerprint is the one the
    /// policy gives those labels).
    fn policy_of(&self, name: &str, labels: &Labels, fp: &str) -> Option<usize> {
        self.eval.policies().iter().position(|p| {
            if p.name != name {
                return false;
            }
            let mut key: Labels = match &p.group_by {
                Some(g) => g
                    .iter()
                    .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
                    .collect(),
                None => {
                    let mut l = labels.clone();
                    l.remove("severity");
                    l
                }
            };
            key.insert("alertname".into(), p.name.clone());
            fingerprint(&key) == fp
        })
    }

    pub(super) fn restore_open(
        &mut self,
        silences: Vec<(String, AlertSilence)>,
        alerts: Vec<RestoredAlert>,
        actions: Vec<RestoredAction>,
        now: Time,
        view: bool,
    ) {
        self.silences.extend(silences);
        let mut policy_alerts = false;
        for ra in alerts {
            let policy = self.policy_of(&ra.name, &ra.labels, &ra.fingerprint);
            let condition = policy.map(|i| {
                let p = &self.eval.policies()[i];
                format!("{} for {}", p.fire_text, fmt_delta(p.hold))
            });
            if policy.is_some() {
                policy_alerts = true;
                self.eval
                    .restore_firing(&ra.fingerprint, ra.since, ra.severity, now);
            }
            let mut alert = Alert {
                fingerprint: ra.fingerprint.clone(),
                name: ra.name,
                labels: ra.labels,
                annotations: Labels::new(),
                severity: ra.severity,
                status: AlertStatus::Firing,
                origin: if policy.is_some() {
                    AlertOrigin::Policy
                } else {
                    AlertOrigin::External
                },
                source: ra.source.unwrap_or_else(|| {
                    if policy.is_some() {
                        "vigil".into()
                    } else {
                        "external".into()
                    }
                }),
                since: ra.since,
                resolved_at: None,
                condition,
                value: None,
                action: ra.action,
                silence: self.silences.get(&ra.fingerprint).cloned(),
                generator_url: None,
                host: None,
                host_note: None,
                instance: None,
            };
            self.place(&mut alert);
            self.resolved_order.retain(|f| f != &ra.fingerprint);
            self.alerts.insert(ra.fingerprint, Arc::new(alert));
        }
        if policy_alerts {
            self.restored_stale_at = Some(now + crate::policy::STALENESS + TimeDelta::seconds(1));
        }
        let mut go_on = Vec::new();
        for ra in actions {
            let id = ra.id;
            self.next_action = self.next_action.max(id.0 + 1);
            let rb = self.catalog.get(&ra.runbook);
            let plan = rb
                .map(|rb| rb.plan(&ra.target, &ra.params))
                .unwrap_or_default();
            let approvals_needed = rb.map_or(1, |rb| rb.approvals);
            let verify_window = rb.map_or(TimeDelta::minutes(1), |rb| rb.verify_window);
            let mut state = ra.state;
            let mut due = None;
            let mut detail = String::new();
            let mut stuck = false;
            let mut interrupted_now = false;
            match ra.state {
                // A standby's view: the active hub is running it.
                ActionState::Running if view => {}
                ActionState::Running => {
                    state = ActionState::Interrupted;
                    detail = INTERRUPTED.into();
                    interrupted_now = true;
                }
                ActionState::Interrupted => detail = INTERRUPTED.into(),
                ActionState::AwaitingApproval => {
                    due = Some(ra.due.unwrap_or(ra.updated + self.settings.approval_expiry));
                }
                ActionState::RetryWaiting => {
                    let backoff = self.settings.retry_backoff
                        * 2i32.pow(ra.attempt.saturating_sub(1).min(16));
                    due = Some(ra.due.unwrap_or(ra.updated + backoff));
                }
                ActionState::Verifying => due = Some(ra.updated + verify_window),
                ActionState::Blocked => {
                    stuck = ra
                        .block
                        .is_some_and(|b| !b.may_clear() && b != BlockReason::CircuitOpen);
                    if !stuck {
                        // Looked at again at the first tick: the block may
                        // have cleared while Vigil was down.
                        due = Some(now);
                    }
                }
                ActionState::Proposed | ActionState::Approved => go_on.push(id),
                _ => continue,
            }
            // An outside alert's action that was verifying waits for its
            // source again, from the run's end (its last record): the
            // restart never turns a lagging source into a failed check.
            let source_deadline = self
                .alerts
                .get(&ra.fingerprint)
                .filter(|al| state == ActionState::Verifying && al.origin == AlertOrigin::External)
                .map(|al| ra.updated + self.source_window(&al.source).max(verify_window));
            let a = Action {
                id,
                runbook: ra.runbook,
                target: ra.target,
                params: ra.params,
                alert: ra.alert,
                fingerprint: ra.fingerprint,
                severity: ra.severity,
                state,
                attempt: ra.attempt.max(1),
                created: ra.created,
                updated: ra.updated,
                block: if state == ActionState::Blocked {
                    ra.block
                } else {
                    None
                },
                detail,
                due,
                // The approval's own time is not stored; the action's last
                // update (at or after it) stands in for it.
                approved_at: ra.approved_by.as_ref().map(|_| ra.updated),
                source_deadline,
                own_check: None,
                source_evidence: None,
                approved_by: ra.approved_by,
                approvals: Vec::new(),
                approvals_needed,
                requested_by: ra.requested_by,
                plan,
                stuck,
            };
            if interrupted_now {
                let mut r = rec(RecordKind::ActionInterrupted, now);
                r.action_id = Some(id.to_string());
                r.runbook = Some(a.runbook.clone());
                r.target = Some(a.target.clone());
                r.alert = Some(a.alert.clone());
                if !a.fingerprint.is_empty() {
                    r.fingerprint = Some(a.fingerprint.clone());
                }
                r.params = Some(a.params.clone());
                r.attempt = Some(a.attempt);
                r.actor = Some(ACTOR_VIGIL.into());
                r.detail = Some(a.detail.clone());
                self.out.push(Command::Record(r));
            }
            if let Some(al) = self.alerts.get_mut(&a.fingerprint).map(Arc::make_mut)
                && al.action.is_none()
            {
                al.action = Some(id);
            }
            self.actions.insert(id, a);
            if let Some(t) = due {
                self.due.push(Reverse((t, id)));
            }
            self.reindex(id);
        }
        if view {
            return;
        }
        for id in go_on {
            self.advance(id, now, false);
        }
    }

    /// Restored alerts of policies whose series sent nothing for 5 minutes
    /// after the restart resolve as stale, as they would have had Vigil run.
    pub(super) fn resolve_unreturned(&mut self, now: Time) {
        let gone: Vec<String> = self
            .alerts
            .values()
            .filter(|a| {
                a.status == AlertStatus::Firing
                    && a.origin == AlertOrigin::Policy
                    && a.instance.is_none()
                    && self.eval.awaits_restored(&a.fingerprint)
            })
            .map(|a| a.fingerprint.clone())
            .collect();
        for fp in gone {
            self.eval.forget_restored(&fp);
            self.resolve_alert(&fp, "no sample for 5m (stale)".into(), now);
        }
    }
}

impl Engine {
    /// Brings back what the store remembers; interrupted actions are
    /// reported and wait for a human.
    pub fn restore(&mut self, r: Restored, now: Time) -> Vec<Command> {
        self.restore_as(r, now, false)
    }

    /// What the store remembers, as a standby shows it: the state as the
    /// active hub left it, running actions running, nothing recorded and
    /// nothing advanced (a standby acts on nothing).
    pub fn restore_view(&mut self, r: Restored, now: Time) {
        let _ = self.restore_as(r, now, true);
        self.out.clear();
    }

    fn restore_as(&mut self, r: Restored, now: Time, view: bool) -> Vec<Command> {
        self.next_action = self.next_action.max(r.next_action);
        if let Some(m) = r.modes {
            self.modes = m;
        }
        for (rb, target, at) in r.open_breakers {
            self.breakers.entry((rb, target)).or_default().open_since = Some(at);
        }
        for (rb, target, at) in r.runs {
            self.breakers
                .entry((rb, target))
                .or_default()
                .runs
                .push_back(at);
        }
        for b in self.breakers.values_mut() {
            b.runs.make_contiguous().sort();
        }
        self.restore_open(r.silences, r.alerts, r.actions, now, view);
        for InterruptedAction {
            id,
            runbook,
            target,
            params,
            alert,
        } in r.interrupted
        {
            if self.actions.contains_key(&id) {
                continue;
            }
            let plan = self
                .catalog
                .get(&runbook)
                .map(|rb| rb.plan(&target, &params))
                .unwrap_or_default();
            let approvals_needed = self.catalog.get(&runbook).map_or(1, |rb| rb.approvals);
            let a = Action {
                alert: alert.clone(),
                state: ActionState::Interrupted,
                detail: INTERRUPTED.into(),
                approvals_needed,
                plan,
                ..Action::proposed(id, &runbook, &target, params.clone(), now)
            };
            let mut r = rec(RecordKind::ActionInterrupted, now);
            r.action_id = Some(id.to_string());
            r.runbook = Some(runbook);
            r.target = Some(target);
            r.alert = Some(alert);
            r.params = Some(params);
            r.actor = Some(ACTOR_VIGIL.into());
            r.detail = Some(a.detail.clone());
            self.out.push(Command::Record(r));
            self.actions.insert(id, a);
            self.reindex(id);
            self.next_action = self.next_action.max(id.0 + 1);
        }
        std::mem::take(&mut self.out)
    }
}
