//! Operators' intents that can be refused: approvals (four-eyes), rejects,
//! manual runs, proposing an alert's runbook again, breaker resets.
//!
//! `Engine::vet` says, without changing anything, whether an intent can be
//! carried out and, when not, why (naming what is wrong and what is
//! accepted). The hub calls it before `handle` and gives the refusal back to
//! the caller; `handle` runs the same checks itself, so an intent that was
//! never vetted changes nothing when it is refused.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::{Action, Command, Engine, Event, MANUAL_ALERT};
use crate::model::{
    ActionId, ActionState, AlertStatus, BlockReason, Labels, RecordKind, Time, fmt_time,
};
use crate::runbook::Runbook;

/// Which way an intent was refused (the HTTP status the hub answers with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// It names an action, alert, runbook or host that does not exist (404).
    NotFound,
    /// It cannot be done in the current state (409).
    Conflict,
    /// It is malformed: an empty actor, an unknown parameter (422).
    Invalid,
}

/// Why an intent cannot be carried out, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

impl Refusal {
    fn new(kind: RefusalKind, message: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            message: message.into(),
        }
    }

    /// The HTTP status that fits: 404, 409 or 422.
    pub fn http_status(&self) -> u16 {
        match self.kind {
            RefusalKind::NotFound => 404,
            RefusalKind::Conflict => 409,
            RefusalKind::Invalid => 422,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// A value as it may be shown: quoted and escaped.
fn shown(s: &str) -> String {
    format!("{:?}", s.escape_debug().to_string())
}

/// A list for a message, cut after `max` items.
fn list<'a>(items: impl Iterator<Item = &'a str>, max: usize) -> String {
    let all: Vec<&str> = items.collect();
    if all.is_empty() {
        return "none".into();
    }
    let mut s = all.iter().take(max).copied().collect::<Vec<_>>().join(", ");
    if all.len() > max {
        s.push_str(&format!(" and {} more", all.len() - max));
    }
    s
}

fn check_actor(actor: &str) -> Result<(), Refusal> {
    if actor.trim().is_empty() {
        return Err(Refusal::new(
            RefusalKind::Invalid,
            "actor is empty; an intent needs the operator's identity",
        ));
    }
    Ok(())
}

/// "1 of 2 approvals (ana)".
pub(super) fn tally(a: &Action) -> String {
    let need = a.approvals_needed.max(1);
    format!(
        "{} of {need} approval{} ({})",
        a.approvals.len(),
        if need == 1 { "" } else { "s" },
        a.approvals.join(", ")
    )
}

impl Engine {
    /// Can `ev` be carried out now? `Err` says why not (what is wrong and
    /// what is accepted). Changes nothing; `handle` makes the same checks.
    /// Events that are not operators' intents are always accepted.
    pub fn vet(&self, ev: &Event, now: Time) -> Result<(), Refusal> {
        match ev {
            Event::Approve { action, actor } => self.vet_approve(*action, actor).map(|_| ()),
            Event::Reject { action, actor, .. } => self.vet_reject(*action, actor).map(|_| ()),
            Event::Run {
                runbook,
                target,
                params,
                actor,
            } => self.vet_run(runbook, target, params, actor).map(|_| ()),
            Event::Repropose { fingerprint, actor } => self.vet_repropose(fingerprint, actor, now),
            Event::ProposeRecommended {
                fingerprint,
                runbook,
                params,
                actor,
                ..
            } => self
                .vet_propose_recommended(fingerprint, runbook, params, actor, now)
                .map(|_| ()),
            Event::ResetBreaker {
                runbook,
                target,
                actor,
            } => {
                check_actor(actor)?;
                let open = self
                    .breakers
                    .get(&(runbook.clone(), target.clone()))
                    .is_some_and(|b| b.open_since.is_some());
                if open {
                    Ok(())
                } else {
                    let mut opened: Vec<String> = self
                        .breakers
                        .iter()
                        .filter(|(_, b)| b.open_since.is_some())
                        .map(|((r, t), _)| format!("{r}@{t}"))
                        .collect();
                    opened.sort();
                    Err(Refusal::new(
                        RefusalKind::Conflict,
                        format!(
                            "the circuit for {}@{} is not open; open circuits: {}",
                            runbook.escape_debug(),
                            target.escape_debug(),
                            list(opened.iter().map(String::as_str), 20)
                        ),
                    ))
                }
            }
            _ => Ok(()),
        }
    }

    fn waiting_ids(&self) -> String {
        let ids: Vec<String> = self
            .actions
            .values()
            .filter(|a| {
                matches!(
                    a.state,
                    ActionState::AwaitingApproval | ActionState::Interrupted
                )
            })
            .map(|a| a.id.to_string())
            .collect();
        list(ids.iter().map(String::as_str), 10)
    }

    pub(super) fn vet_approve(&self, id: ActionId, actor: &str) -> Result<&Action, Refusal> {
        check_actor(actor)?;
        let Some(a) = self.actions.get(&id) else {
            return Err(Refusal::new(
                RefusalKind::NotFound,
                format!(
                    "no action {id}; waiting for approval: {}",
                    self.waiting_ids()
                ),
            ));
        };
        if !matches!(
            a.state,
            ActionState::AwaitingApproval | ActionState::Interrupted
        ) {
            return Err(Refusal::new(
                RefusalKind::Conflict,
                format!(
                    "{id} is {}, not waiting for approval; waiting for approval: {}",
                    a.state.as_str(),
                    self.waiting_ids()
                ),
            ));
        }
        if a.approvals.iter().any(|x| x == actor) {
            let need = a.approvals_needed.max(1) as usize;
            return Err(Refusal::new(
                RefusalKind::Conflict,
                format!(
                    "{} already approved {id} ({}); it needs {} more from other operators",
                    actor.escape_debug(),
                    tally(a),
                    need.saturating_sub(a.approvals.len())
                ),
            ));
        }
        if let Some(req) = &a.requested_by
            && req == actor
        {
            // The requester may count as one of several approvers, never as
            // the only one.
            let after = a.approvals.len() + 1;
            let others = a.approvals.iter().any(|x| x != req);
            if after >= a.approvals_needed.max(1) as usize && !others {
                return Err(Refusal::new(
                    RefusalKind::Conflict,
                    format!(
                        "{} asked for this {} of {}@{} and cannot be its only approver; another operator must approve {id}",
                        actor.escape_debug(),
                        if a.fingerprint.is_empty() {
                            "manual run"
                        } else {
                            "proposal from the analysis"
                        },
                        a.runbook,
                        a.target
                    ),
                ));
            }
        }
        Ok(a)
    }

    pub(super) fn vet_reject(&self, id: ActionId, actor: &str) -> Result<&Action, Refusal> {
        check_actor(actor)?;
        let Some(a) = self.actions.get(&id) else {
            return Err(Refusal::new(
                RefusalKind::NotFound,
                format!(
                    "no action {id}; waiting for a decision: {}",
                    self.waiting_ids()
                ),
            ));
        };
        if !matches!(
            a.state,
            ActionState::AwaitingApproval | ActionState::Interrupted | ActionState::Blocked
        ) {
            return Err(Refusal::new(
                RefusalKind::Conflict,
                format!(
                    "{id} is {}; only an action waiting for approval, interrupted or blocked can be rejected",
                    a.state.as_str()
                ),
            ));
        }
        Ok(a)
    }

    pub(super) fn vet_run(
        &self,
        runbook: &str,
        target: &str,
        params: &BTreeMap<String, String>,
        actor: &str,
    ) -> Result<&Runbook, Refusal> {
        check_actor(actor)?;
        let (_, rb) = self.vet_runbook(runbook, params)?;
        if !self.inventory.hosts.contains_key(target) {
            return Err(Refusal::new(
                RefusalKind::NotFound,
                format!(
                    "no host {} in the inventory; a manual run names a configured host: {}",
                    shown(target),
                    list(self.inventory.hosts.keys().map(String::as_str), 20)
                ),
            ));
        }
        Ok(rb)
    }

    pub(super) fn vet_repropose(&self, fp: &str, actor: &str, now: Time) -> Result<(), Refusal> {
        self.vet_alert_open(fp, actor, now)?;
        if let Some(alert) = self.alerts.get(fp)
            && self.catalog.candidates(&alert.runbook_labels()).is_empty()
        {
            let on = alert
                .host()
                .map(|h| format!(" on {}", h.escape_debug()))
                .unwrap_or_default();
            return Err(Refusal::new(
                RefusalKind::Conflict,
                format!("no runbook matches alert {}{on}", alert.name),
            ));
        }
        Ok(())
    }

    /// Can the analysis' runbook be proposed for alert `fp`? The alert is
    /// firing, not silenced and has no open action; the runbook exists, is
    /// enabled and takes those parameters. Returns the runbook's index.
    pub(super) fn vet_propose_recommended(
        &self,
        fp: &str,
        runbook: &str,
        params: &BTreeMap<String, String>,
        actor: &str,
        now: Time,
    ) -> Result<usize, Refusal> {
        self.vet_alert_open(fp, actor, now)?;
        self.vet_runbook(runbook, params).map(|(i, _)| i)
    }

    /// The runbook exists, is enabled and takes those parameters; returns
    /// its index and itself.
    fn vet_runbook(
        &self,
        runbook: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<(usize, &Runbook), Refusal> {
        let Some(i) = self
            .catalog
            .runbooks
            .iter()
            .position(|r| r.name() == runbook)
        else {
            return Err(Refusal::new(
                RefusalKind::NotFound,
                format!(
                    "no runbook {}; known: {}",
                    shown(runbook),
                    list(self.catalog.runbooks.iter().map(|r| r.name()), 50)
                ),
            ));
        };
        let rb = &self.catalog.runbooks[i];
        if !rb.enabled {
            return Err(Refusal::new(
                RefusalKind::Conflict,
                format!(
                    "runbook {} is disabled in the config ([runbooks.{}] enabled = false)",
                    rb.name(),
                    rb.name()
                ),
            ));
        }
        if let Some(k) = params
            .keys()
            .find(|k| !rb.params.iter().any(|p| &p.name == *k))
        {
            return Err(Refusal::new(
                RefusalKind::Invalid,
                format!(
                    "{} is not a parameter of {}; accepted: {}",
                    shown(k),
                    rb.name(),
                    list(rb.params.iter().map(|p| p.name.as_str()), 50)
                ),
            ));
        }
        Ok((i, rb))
    }

    pub(super) fn on_propose_recommended(
        &mut self,
        fp: String,
        runbook: String,
        params: BTreeMap<String, String>,
        actor: String,
        basis: serde_json::Value,
        now: Time,
    ) {
        let Ok(i) = self.vet_propose_recommended(&fp, &runbook, &params, &actor, now) else {
            return;
        };
        let said = basis
            .get("summary")
            .and_then(|v| v.as_str())
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        let detail = format!("proposed from the analysis by {actor}{said}");
        self.propose_runbook(&fp, Some((actor, detail)), Some((i, params, basis)), now);
    }

    /// The alert exists, fires, is not silenced and has no open action.
    fn vet_alert_open(&self, fp: &str, actor: &str, now: Time) -> Result<(), Refusal> {
        check_actor(actor)?;
        let Some(alert) = self.alerts.get(fp) else {
            return Err(Refusal::new(
                RefusalKind::NotFound,
                format!("no alert with fingerprint {}", shown(fp)),
            ));
        };
        let on = alert
            .host()
            .map(|h| format!(" on {}", h.escape_debug()))
            .unwrap_or_default();
        if alert.status != AlertStatus::Firing {
            return Err(Refusal::new(
                RefusalKind::Conflict,
                format!(
                    "alert {}{on} resolved{}; only a firing alert can be proposed again",
                    alert.name,
                    alert
                        .resolved_at
                        .map(|t| format!(" at {}", fmt_time(&t)))
                        .unwrap_or_default()
                ),
            ));
        }
        if let Some(s) = self.silences.get(fp).or_else(|| self.upstream_on.get(fp))
            && s.until > now
        {
            return Err(Refusal::new(
                RefusalKind::Conflict,
                format!(
                    "alert {}{on} is silenced until {} by {}; unsilence it first",
                    alert.name,
                    fmt_time(&s.until),
                    s.actor
                ),
            ));
        }
        if let Some(id) = alert.action
            && let Some(a) = self.actions.get(&id)
            && !a.state.is_final()
        {
            return Err(Refusal::new(
                RefusalKind::Conflict,
                format!(
                    "alert {}{on} already has action {id} ({}{}); it can be proposed again once that one has ended (reject it to end it)",
                    alert.name,
                    a.state.as_str(),
                    a.block
                        .map(|b| format!(": {}", b.as_str()))
                        .unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn on_repropose(&mut self, fp: String, actor: String, now: Time) {
        if self.vet_repropose(&fp, &actor, now).is_err() {
            return;
        }
        let previous = self
            .alerts
            .get(&fp)
            .and_then(|a| a.action)
            .and_then(|id| self.actions.get(&id))
            .map(|a| format!("; the previous action {} ended {}", a.id, a.state.as_str()))
            .unwrap_or_default();
        let detail = format!("proposed again by {actor}{previous}");
        self.propose_as(&fp, Some((actor, detail)), now);
    }

    pub(super) fn on_run(
        &mut self,
        runbook: String,
        target: String,
        params: BTreeMap<String, String>,
        actor: String,
        now: Time,
    ) {
        let (resolved, plan, needed) = match self.vet_run(&runbook, &target, &params, &actor) {
            Err(_) => return,
            Ok(rb) => {
                // No alert: label-sourced parameters come from what the
                // operator gave, else their defaults; the target label names
                // the host.
                let labels: Labels = [(rb.target_label().to_string(), target.clone())].into();
                let facts = self.inventory.facts(&target);
                let resolved = rb.resolve_params(&labels, &facts, &params);
                let plan = match &resolved {
                    Ok(p) => rb.plan(&target, p),
                    Err(_) => Vec::new(),
                };
                (resolved, plan, rb.approvals)
            }
        };
        let id = self.new_action_id();
        let (ok_params, param_err) = match resolved {
            Ok(p) => (p, None),
            Err(e) => (BTreeMap::new(), Some(e)),
        };
        let action = Action {
            alert: MANUAL_ALERT.into(),
            approvals_needed: needed,
            requested_by: Some(actor.clone()),
            plan,
            ..Action::proposed(id, &runbook, &target, ok_params, now)
        };
        let mut r = self.action_record(RecordKind::ActionProposed, &action, now);
        if param_err.is_none() {
            r.params = Some(action.params.clone());
        }
        r.severity = Some(action.severity);
        r.actor = Some(actor.clone());
        r.detail = Some(format!("manual run requested by {actor} (no alert)"));
        r.data = Some(json!({ "manual": true, "requested_params": params }));
        self.out.push(Command::Record(r));
        self.actions.insert(id, action);
        self.reindex(id);
        if let Some(e) = param_err {
            self.block(
                id,
                super::Block::new(BlockReason::ParamInvalid, e.message),
                now,
            );
            return;
        }
        self.advance(id, now, false);
    }
}
