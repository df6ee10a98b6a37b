//! An action's life before it runs: proposal, advancing through guards
//! and approval, blocks, approval and rejection.

use super::*;

impl Engine {
    pub(super) fn new_action_id(&mut self) -> ActionId {
        let id = ActionId(self.next_action);
        self.next_action += 1;
        id
    }

    pub(super) fn action_record(&self, kind: RecordKind, a: &Action, now: Time) -> Record {
        let mut r = rec(kind, now);
        r.alert = Some(a.alert.clone());
        r.runbook = Some(a.runbook.clone());
        r.target = Some(a.target.clone());
        r.action_id = Some(a.id.to_string());
        r
    }

    /// Alert → runbook → action, then guards.
    pub(super) fn propose(&mut self, fp: &str, now: Time) {
        self.propose_as(fp, None, now);
    }

    /// `propose`, by an operator (`by` = actor and detail) or by Vigil.
    pub(super) fn propose_as(&mut self, fp: &str, by: Option<(String, String)>, now: Time) {
        self.propose_runbook(fp, by, None, now);
    }

    /// Proposes the matched runbook for alert `fp`, or `chosen`: a runbook
    /// (by index) with the parameters and the basis an analysis gave.
    pub(crate) fn propose_runbook(
        &mut self,
        fp: &str,
        by: Option<(String, String)>,
        chosen: Option<(usize, BTreeMap<String, String>, serde_json::Value)>,
        now: Time,
    ) {
        let Some(alert) = self.alerts.get(fp).cloned() else {
            return;
        };
        let labels = alert.runbook_labels();
        let cands = self.catalog.candidates(&labels);
        // The catalog is shared: no copy of the runbook per proposal.
        let catalog = self.catalog.clone();
        let (best, given, basis) = match chosen {
            Some((i, given, basis)) if i < catalog.runbooks.len() => (i, given, Some(basis)),
            Some(_) => return,
            None => {
                let Some(&(best, _, ref why)) = cands.first() else {
                    return;
                };
                let rb = &catalog.runbooks[best];
                let mut r = rec(RecordKind::RunbookMatched, now);
                r.alert = Some(alert.name.clone());
                r.fingerprint = Some(fp.to_string());
                r.runbook = Some(rb.name().to_string());
                r.target = labels.get(rb.target_label()).cloned();
                r.detail = Some(why.join("; "));
                r.data = Some(json!({
                    "candidates": cands.iter().map(|(i, score, why)| json!({
                        "runbook": self.catalog.runbooks[*i].name(), "score": score, "reasons": why,
                    })).collect::<Vec<_>>()
                }));
                self.out.push(Command::Record(r));
                (best, BTreeMap::new(), None)
            }
        };
        let rb = &catalog.runbooks[best];

        let target = labels.get(rb.target_label()).cloned().unwrap_or_default();
        let facts = self.inventory.facts(&target);
        let params = rb.resolve_params(&labels, &facts, &given);
        let id = self.new_action_id();
        let (params, param_err) = match params {
            Ok(p) => (p, None),
            Err(e) => (BTreeMap::new(), Some(e)),
        };
        let plan = if param_err.is_none() {
            rb.plan(&target, &params)
        } else {
            Vec::new()
        };
        // A proposal taken from the analysis is the proposer's request:
        // they cannot be its only approver.
        let requested_by = basis
            .as_ref()
            .and(by.as_ref().map(|(actor, _)| actor.clone()));
        let action = Action {
            alert: alert.name.clone(),
            fingerprint: fp.to_string(),
            severity: alert.severity,
            approvals_needed: rb.approvals,
            plan,
            requested_by,
            ..Action::proposed(id, rb.name(), &target, params.clone(), now)
        };
        let mut r = self.action_record(RecordKind::ActionProposed, &action, now);
        r.params = Some(params);
        r.severity = Some(alert.severity);
        match by {
            Some((actor, detail)) => {
                r.actor = Some(actor);
                r.detail = Some(detail);
            }
            None => r.actor = Some(ACTOR_VIGIL.into()),
        }
        if let Some(basis) = basis {
            r.data = Some(json!({
                "from_analysis": basis,
                "requested_params": given,
                "matched": cands.first().map(|(i, ..)| catalog.runbooks[*i].name()),
            }));
        }
        r.fingerprint = Some(fp.to_string());
        self.out.push(Command::Record(r));
        self.actions.insert(id, action);
        self.reindex(id);
        if let Some(a) = self.alerts.get_mut(fp).map(Arc::make_mut) {
            a.action = Some(id);
        }
        if target.is_empty() {
            let label = self.catalog.runbooks[best].target_label().to_string();
            let why = match &alert.host_note {
                Some(note) if label == "host" => format!(
                    "no target: {note}; Vigil acts on one configured host, never on an empty or unbounded set"
                ),
                _ => format!(
                    "no target: the alert has no {label:?} label; Vigil acts on one named host, never on an empty or unbounded set"
                ),
            };
            self.block(id, Block::new(BlockReason::ParamInvalid, why), now);
            return;
        }
        if let Some(e) = param_err {
            self.block(id, Block::new(BlockReason::ParamInvalid, e.message), now);
            return;
        }
        self.advance(id, now, false);
    }

    /// Moves an action forward as far as the guards and approvals allow.
    pub(super) fn advance(&mut self, id: ActionId, now: Time, retry: bool) {
        match self.check_guards(id, now, retry) {
            Err(b) => self.block(id, b, now),
            Ok(()) => {
                // Rule 11: the alert must still hold on the latest data.
                if let Some((reason, why)) = self.gone_before_start(id, now) {
                    self.finish(
                        id,
                        ActionState::Cancelled,
                        RecordKind::ActionCancelled,
                        reason,
                        &why,
                        now,
                    );
                    return;
                }
                // Rule 11: an approval is given for now.
                let lapse = self.lapsed_approval(id, now);
                if lapse.is_some()
                    && let Some(a) = self.actions.get_mut(&id)
                {
                    a.approvals.clear();
                    a.approved_by = None;
                    a.approved_at = None;
                    a.block = None;
                }
                let Some(a) = self.actions.get(&id) else {
                    return;
                };
                let approved = lapse.is_none() && (a.approved_by.is_some() || retry);
                if approved {
                    self.start(id, now);
                    return;
                }
                let Some(rb) = self.catalog.get(&a.runbook) else {
                    return;
                };
                // A lapsed human approval is replaced by a human's, never
                // by policy.
                if rb.approval.needs_human(a.severity) || lapse.is_some() {
                    let expires = add_time(now, self.settings.approval_expiry);
                    let mut r = self.action_record(RecordKind::ApprovalRequested, a, now);
                    r.params = Some(a.params.clone());
                    r.severity = Some(a.severity);
                    r.actor = Some(ACTOR_VIGIL.into());
                    let mut who = String::new();
                    if a.approvals_needed > 1 {
                        who.push_str(&format!(
                            "; needs {} approvals from distinct operators",
                            a.approvals_needed
                        ));
                    }
                    if let Some(req) = &a.requested_by {
                        who.push_str(&format!(
                            "; {} by {req}, who cannot be its only approver",
                            if a.fingerprint.is_empty() {
                                "manual run requested"
                            } else {
                                "proposed from the analysis"
                            }
                        ));
                    }
                    let again = lapse
                        .as_ref()
                        .map(|l| format!("{l}; asking again: "))
                        .unwrap_or_default();
                    r.detail = Some(format!(
                        "{again}approval {} for a {} risk runbook{who}; expires at {}",
                        rb.approval.describe(),
                        rb.spec.risk.as_str(),
                        fmt_time(&expires)
                    ));
                    r.data = Some(json!({
                        "expires_at": fmt_time(&expires),
                        "plan": a.plan,
                        "approvals_needed": a.approvals_needed,
                        "lapsed": lapse,
                    }));
                    self.out.push(Command::Record(r));
                    self.set_state(id, ActionState::AwaitingApproval, Some(expires), now);
                } else {
                    let mut r = self.action_record(RecordKind::ActionApproved, a, now);
                    r.actor = Some(ACTOR_VIGIL.into());
                    r.detail = Some(format!("approval {} by policy", rb.approval.describe()));
                    self.out.push(Command::Record(r));
                    if let Some(a) = self.actions.get_mut(&id) {
                        a.approved_by = Some(ACTOR_VIGIL.into());
                        a.approved_at = Some(now);
                    }
                    self.start(id, now);
                }
            }
        }
    }

    /// Why an action must not start because its alert no longer holds on
    /// the latest data (resolved, gone, or, for Vigil's own policies, the
    /// condition no longer holds or its data went stale); None when it holds.
    pub(super) fn gone_before_start(
        &self,
        id: ActionId,
        now: Time,
    ) -> Option<(&'static str, String)> {
        let a = self.actions.get(&id)?;
        if a.fingerprint.is_empty() {
            // A manual run (or an interrupted action) has no alert to look at.
            return None;
        }
        let Some(al) = self.alerts.get(&a.fingerprint) else {
            return Some((
                "alert_resolved",
                format!(
                    "alert {} is no longer in the table; nothing to fix",
                    a.alert
                ),
            ));
        };
        if al.status == AlertStatus::Resolved {
            return Some((
                "alert_resolved",
                format!("alert {} resolved before the action started", al.name),
            ));
        }
        if let Some(s) = &al.silence {
            return Some((
                "silenced",
                format!(
                    "alert {} is silenced by {} until {}; nothing runs while it lasts",
                    al.name,
                    s.actor,
                    fmt_time(&s.until)
                ),
            ));
        }
        let inst = al.instance?;
        if self.eval.holds_at(inst, now) {
            return None;
        }
        let p = self.eval.policy(self.eval.instance(inst).policy);
        let val = self.latest_value_text(inst);
        Some((
            "alert_resolved",
            format!(
                "{} no longer holds on the latest data{val}; nothing to fix",
                p.fire_text
            ),
        ))
    }

    /// Rule 11: the human approval of an action held by a guard lapses
    /// `approval_expiry` after it was given. Returns why (for the new
    /// `approval_requested`), or None while it holds. Automatic approvals
    /// are re-decided by policy and do not lapse; an action that runs on
    /// schedule (its first start right after the approval, its retries)
    /// is covered.
    pub(super) fn lapsed_approval(&self, id: ActionId, now: Time) -> Option<String> {
        let a = self.actions.get(&id)?;
        if a.state != ActionState::Blocked {
            return None;
        }
        let by = a.approved_by.as_deref().filter(|b| *b != ACTOR_VIGIL)?;
        let at = a.approved_at?;
        let expiry = self.settings.approval_expiry;
        if now - at < expiry {
            return None;
        }
        let who = if a.approvals.len() > 1 {
            format!("the approvals by {}", a.approvals.join(" and "))
        } else {
            format!("the approval by {by}")
        };
        let held = match a.block {
            Some(BlockReason::Frozen) => "frozen".to_string(),
            Some(BlockReason::MaintenanceWindow) => "in a maintenance window".to_string(),
            Some(BlockReason::ConcurrencyLimit) => "held by the concurrency limit".to_string(),
            Some(BlockReason::RateLimited) => "rate limited".to_string(),
            Some(BlockReason::Duplicate) => "held behind a duplicate".to_string(),
            Some(BlockReason::CircuitOpen) => "the circuit was open".to_string(),
            Some(r) => format!("blocked ({r})"),
            None => "held".to_string(),
        };
        Some(format!(
            "{who} lapsed while {held} (given at {}, approval_expiry {})",
            fmt_time(&at),
            fmt_delta(expiry)
        ))
    }

    pub(super) fn set_state(
        &mut self,
        id: ActionId,
        state: ActionState,
        due: Option<Time>,
        now: Time,
    ) {
        if let Some(a) = self.actions.get_mut(&id) {
            a.state = state;
            a.due = due;
            a.updated = now;
            if let Some(t) = due {
                self.due.push(Reverse((t, id)));
            }
        }
        self.reindex(id);
    }

    pub(super) fn block(&mut self, id: ActionId, b: Block, now: Time) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let same = a.state == ActionState::Blocked && a.block == Some(b.reason);
        let opening = b.reason == BlockReason::CircuitOpen
            && self
                .breakers
                .get(&(a.runbook.clone(), a.target.clone()))
                .is_none_or(|br| br.open_since.is_none());
        if opening {
            let key = (a.runbook.clone(), a.target.clone());
            self.breakers.entry(key).or_default().open_since = Some(now);
            let mut r = self.action_record(RecordKind::CircuitOpened, a, now);
            r.actor = Some(ACTOR_VIGIL.into());
            r.reason = Some("max_runs".into());
            r.detail = Some(b.detail.clone());
            self.out.push(Command::Record(r));
            let summary = format!(
                "{}@{}: circuit opened after repeated runs ({}); needs a human",
                a.runbook, a.target, a.alert
            );
            self.escalate(id, summary, "circuit_open", now);
        }
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        if !same {
            let mut r = self.action_record(RecordKind::ActionBlocked, a, now);
            r.reason = Some(b.reason.as_str().into());
            r.detail = Some(b.detail.clone());
            r.actor = Some(ACTOR_VIGIL.into());
            if !a.params.is_empty() {
                r.params = Some(a.params.clone());
            }
            self.out.push(Command::Record(r));
        }
        let stuck = !b.reason.may_clear() && b.reason != BlockReason::CircuitOpen;
        if let Some(a) = self.actions.get_mut(&id) {
            a.block = Some(b.reason);
            a.detail = b.detail;
            a.stuck = stuck;
        }
        self.set_state(id, ActionState::Blocked, b.recheck_at, now);
    }

    /// One operator's approval; the action goes on after the N-th distinct
    /// one (four-eyes). Refused approvals change nothing (see `vet`).
    pub(super) fn on_approve(&mut self, id: ActionId, actor: String, now: Time) {
        if self.vet_approve(id, &actor).is_err() {
            return;
        }
        let Some(a) = self.actions.get_mut(&id) else {
            return;
        };
        a.approvals.push(actor.clone());
        a.updated = now;
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let done = a.approvals.len() >= a.approvals_needed.max(1) as usize;
        let mut r = self.action_record(RecordKind::ActionApproved, a, now);
        r.actor = Some(actor.clone());
        r.params = Some(a.params.clone());
        // The record names the attempt the approval lets run: an approved
        // re-run of an interrupted action is the next attempt, so that a
        // restart between this record and the start does not run the
        // interrupted attempt again under its own number.
        r.attempt = Some(if done && a.state == ActionState::Interrupted {
            a.attempt + 1
        } else {
            a.attempt
        });
        let tally = intents::tally(a);
        r.detail = Some(if a.state == ActionState::Interrupted {
            format!("re-run of an interrupted action approved; {tally}")
        } else {
            tally
        });
        r.data = Some(json!({
            "approvals": a.approvals,
            "approvals_needed": a.approvals_needed.max(1),
        }));
        self.out.push(Command::Record(r));
        if !done {
            return;
        }
        if let Some(a) = self.actions.get_mut(&id) {
            a.approved_by = Some(actor);
            a.approved_at = Some(now);
            if a.state == ActionState::Interrupted {
                // The re-run is a new attempt: its start is not confused
                // with the interrupted one's (nor is its job, whose
                // idempotency key is action and attempt).
                a.attempt += 1;
            }
        }
        self.set_state(id, ActionState::Approved, None, now);
        self.advance(id, now, false);
    }

    pub(super) fn on_reject(&mut self, id: ActionId, actor: String, reason: String, now: Time) {
        let Ok(a) = self.vet_reject(id, &actor) else {
            return;
        };
        let mut r = self.action_record(RecordKind::ActionRejected, a, now);
        r.actor = Some(actor);
        r.reason = Some(if reason.trim().is_empty() {
            "no reason given".into()
        } else {
            reason
        });
        self.out.push(Command::Record(r));
        self.set_state(id, ActionState::Rejected, None, now);
        self.recheck_blocked(now);
    }
}
