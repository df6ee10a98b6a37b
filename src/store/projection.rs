//! The derived projection: what each record changes in the derived tables
//! (actions, breakers, alerts, silences, modes), batched per append.

use super::*;

/// One `actions` row as the records of one transaction leave it, written
/// once when the transaction's records are all applied. Fields merge the way
/// the upsert does: a record's value replaces the earlier one, an absent
/// value keeps it.
pub(super) struct PendingAction {
    runbook: Option<String>,
    target: Option<String>,
    alert: Option<String>,
    fingerprint: Option<String>,
    params: Option<String>,
    state: &'static str,
    first_at: String,
    last_at: String,
    attempt: Option<u32>,
    first_seq: i64,
    last_seq: i64,
    phase: Option<&'static str>,
    severity: Option<&'static str>,
    reason: Option<String>,
    due_at: Option<String>,
    approved_by: Option<String>,
    requested_by: Option<String>,
}

/// What one record says about its action beyond the record's own columns
/// (the schema 4 columns of `actions`); None keeps what was known.
struct ActionFacts {
    phase: Option<&'static str>,
    severity: Option<&'static str>,
    reason: Option<String>,
    due_at: Option<String>,
    approved_by: Option<String>,
    requested_by: Option<String>,
}

impl ActionFacts {
    fn of(r: &Record) -> ActionFacts {
        let data_str = |k: &str| {
            r.data
                .as_ref()
                .and_then(|d| d.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let phase = match r.kind {
            RecordKind::ActionProposed => Some("proposed"),
            RecordKind::ActionBlocked => Some("blocked"),
            RecordKind::ApprovalRequested => Some("awaiting_approval"),
            RecordKind::ActionApproved => {
                // Partial four-eyes approvals leave the action waiting.
                let d = r.data.as_ref();
                let got = d
                    .and_then(|d| d.get("approvals"))
                    .and_then(|v| v.as_array())
                    .map(Vec::len);
                let need = d
                    .and_then(|d| d.get("approvals_needed"))
                    .and_then(|v| v.as_u64());
                match (got, need) {
                    (Some(g), Some(n)) if (g as u64) < n => None,
                    _ => Some("approved"),
                }
            }
            RecordKind::ActionStarted => Some("running"),
            RecordKind::ActionInterrupted => Some("interrupted"),
            RecordKind::ActionSucceeded => Some("verifying"),
            RecordKind::RetryScheduled => Some("retry_waiting"),
            RecordKind::VerificationPassed | RecordKind::DryRunPlanned => Some("done"),
            RecordKind::ActionRejected => Some("rejected"),
            RecordKind::ActionExpired => Some("expired"),
            RecordKind::Escalated => Some("escalated"),
            RecordKind::ActionCancelled => Some("cancelled"),
            _ => None,
        };
        let due_at = match r.kind {
            RecordKind::ApprovalRequested => data_str("expires_at"),
            RecordKind::RetryScheduled => data_str("at").or_else(|| {
                // "...; attempt 2 of 3 at 2026-01-01T00:00:30Z (backoff 30s)"
                let d = r.detail.as_deref()?;
                let (_, rest) = d.rsplit_once(" at ")?;
                Some(rest.split(' ').next()?.to_string())
            }),
            _ => None,
        };
        ActionFacts {
            phase,
            severity: match r.kind {
                RecordKind::ActionProposed => r.severity.map(Severity::as_str),
                _ => None,
            },
            reason: match r.kind {
                RecordKind::ActionBlocked => r.reason.clone(),
                _ => None,
            },
            due_at,
            approved_by: match (r.kind, phase) {
                (RecordKind::ActionApproved, Some(_)) => r.actor.clone(),
                _ => None,
            },
            requested_by: match r.kind {
                RecordKind::ActionProposed
                    if r.alert.as_deref() == Some(crate::engine::MANUAL_ALERT)
                        || r.data
                            .as_ref()
                            .is_some_and(|d| d.get("from_analysis").is_some()) =>
                {
                    r.actor.clone()
                }
                _ => None,
            },
        }
    }
}

/// The derived-state writes of one transaction. Most records of a batch
/// change an action's row; merging them per action writes each row once.
#[derive(Default)]
pub(super) struct DerivedBatch {
    /// Action ids in the order they first appeared (rows are written in it).
    order: Vec<String>,
    pub(super) actions: std::collections::HashMap<String, PendingAction>,
    /// "alert received from X" of a `signal` record, for the
    /// `alert_firing` of the same fingerprint that follows it.
    sources: std::collections::HashMap<String, String>,
}

impl DerivedBatch {
    /// Rebuilding over a long history flushes now and then instead of
    /// holding every action in memory.
    pub(super) const MAX_PENDING: usize = 4096;

    fn merge_action(&mut self, id: &str, r: &Record, at: &str) {
        fn keep(new: &Option<String>, old: &mut Option<String>) {
            if new.is_some() {
                old.clone_from(new);
            }
        }
        let params = r
            .params
            .as_ref()
            .and_then(|p| serde_json::to_string(p).ok());
        let seq = r.seq as i64;
        let f = ActionFacts::of(r);
        if let Some(p) = self.actions.get_mut(id) {
            p.phase = f.phase.or(p.phase);
            p.severity = f.severity.or(p.severity);
            keep(&f.reason, &mut p.reason);
            keep(&f.due_at, &mut p.due_at);
            keep(&f.approved_by, &mut p.approved_by);
            keep(&f.requested_by, &mut p.requested_by);
            keep(&r.runbook, &mut p.runbook);
            keep(&r.target, &mut p.target);
            keep(&r.alert, &mut p.alert);
            keep(&r.fingerprint, &mut p.fingerprint);
            if params.is_some() {
                p.params = params;
            }
            p.state = r.kind.as_str();
            at.clone_into(&mut p.last_at);
            p.attempt = r.attempt.or(p.attempt);
            p.last_seq = seq;
            return;
        }
        self.order.push(id.to_string());
        self.actions.insert(
            id.to_string(),
            PendingAction {
                runbook: r.runbook.clone(),
                target: r.target.clone(),
                alert: r.alert.clone(),
                fingerprint: r.fingerprint.clone(),
                params,
                state: r.kind.as_str(),
                first_at: at.to_string(),
                last_at: at.to_string(),
                attempt: r.attempt,
                first_seq: seq,
                last_seq: seq,
                phase: f.phase,
                severity: f.severity,
                reason: f.reason,
                due_at: f.due_at,
                approved_by: f.approved_by,
                requested_by: f.requested_by,
            },
        );
    }

    /// The runbook and target an action has so far: this transaction's
    /// records first, then the stored row.
    fn action_subject(
        &self,
        tx: &Connection,
        id: &str,
    ) -> rusqlite::Result<Option<(Option<String>, Option<String>)>> {
        let stored: Option<(Option<String>, Option<String>)> = tx
            .prepare_cached("SELECT runbook, target FROM actions WHERE action_id = ?1")?
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(match (self.actions.get(id), stored) {
            (Some(p), Some((rb, t))) => Some((p.runbook.clone().or(rb), p.target.clone().or(t))),
            (Some(p), None) => Some((p.runbook.clone(), p.target.clone())),
            (None, stored) => stored,
        })
    }

    /// Writes the merged rows.
    pub(super) fn flush(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        if self.order.is_empty() {
            return Ok(());
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO actions (action_id, runbook, target, alert, fingerprint, params, state,
                                  first_at, last_at, attempt, first_seq, last_seq, phase,
                                  severity, reason, due_at, approved_by, requested_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18)
             ON CONFLICT (action_id) DO UPDATE SET
                 runbook = coalesce(excluded.runbook, runbook),
                 target = coalesce(excluded.target, target),
                 alert = coalesce(excluded.alert, alert),
                 fingerprint = coalesce(excluded.fingerprint, fingerprint),
                 params = coalesce(excluded.params, params),
                 state = excluded.state,
                 last_at = excluded.last_at,
                 attempt = coalesce(excluded.attempt, attempt),
                 last_seq = excluded.last_seq,
                 phase = coalesce(excluded.phase, phase),
                 severity = coalesce(excluded.severity, severity),
                 reason = coalesce(excluded.reason, reason),
                 due_at = coalesce(excluded.due_at, due_at),
                 approved_by = coalesce(excluded.approved_by, approved_by),
                 requested_by = coalesce(excluded.requested_by, requested_by)",
        )?;
        for id in self.order.drain(..) {
            let Some(p) = self.actions.remove(&id) else {
                continue;
            };
            stmt.execute(params![
                id,
                p.runbook,
                p.target,
                p.alert,
                p.fingerprint,
                p.params,
                p.state,
                p.first_at,
                p.last_at,
                p.attempt,
                p.first_seq,
                p.last_seq,
                p.phase,
                p.severity,
                p.reason,
                p.due_at,
                p.approved_by,
                p.requested_by,
            ])?;
        }
        Ok(())
    }
}

/// Updates the derived tables for one (numbered) record. The `actions` row
/// is merged into `batch`; [`DerivedBatch::flush`] writes it.
pub(super) fn apply_derived(
    tx: &Connection,
    r: &Record,
    batch: &mut DerivedBatch,
) -> rusqlite::Result<()> {
    let seq = r.seq as i64;
    let at = fmt_time(&r.at);
    if let Some(id) = &r.action_id {
        batch.merge_action(id, r, &at);
    }
    match r.kind {
        RecordKind::Signal => {
            if let (Some(fp), Some(src)) = (
                &r.fingerprint,
                r.detail
                    .as_deref()
                    .and_then(|d| d.strip_prefix("alert received from ")),
            ) {
                batch.sources.insert(fp.clone(), src.to_string());
            }
        }
        RecordKind::ActionProposed => {
            if let (Some(fp), Some(id)) = (&r.fingerprint, &r.action_id) {
                tx.prepare_cached("UPDATE alerts SET action_id = ?2 WHERE fingerprint = ?1")?
                    .execute(params![fp, id])?;
            }
        }
        RecordKind::SilenceCreated => {
            if let Some(fp) = &r.fingerprint {
                let d = |k: &str| {
                    r.data
                        .as_ref()
                        .and_then(|d| d.get(k))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                };
                if let Some(until) = d("ends_at") {
                    tx.prepare_cached(
                        "INSERT INTO silences (fingerprint, silence_id, until, actor, comment, seq)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (fingerprint) DO UPDATE SET
                             silence_id = excluded.silence_id, until = excluded.until,
                             actor = excluded.actor, comment = excluded.comment,
                             seq = excluded.seq",
                    )?
                    .execute(params![
                        fp,
                        d("silence_id"),
                        until,
                        r.actor,
                        r.reason,
                        seq
                    ])?;
                }
            }
        }
        RecordKind::SilenceExpired => {
            if let Some(fp) = &r.fingerprint {
                tx.prepare_cached("DELETE FROM silences WHERE fingerprint = ?1")?
                    .execute([fp])?;
            }
        }
        RecordKind::CircuitOpened => {
            if let Some(runbook) = &r.runbook {
                tx.prepare_cached(
                    "INSERT INTO breakers (runbook, target, opened_at, reason, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (runbook, target) DO UPDATE SET
                         reason = coalesce(excluded.reason, reason), seq = excluded.seq",
                )?
                .execute(params![
                    runbook,
                    r.target.as_deref().unwrap_or(""),
                    at,
                    r.reason,
                    seq
                ])?;
            }
        }
        RecordKind::CircuitClosed => {
            if let Some(runbook) = &r.runbook {
                match &r.target {
                    Some(t) => tx
                        .prepare_cached("DELETE FROM breakers WHERE runbook = ?1 AND target = ?2")?
                        .execute(params![runbook, t])?,
                    // No target: every breaker of the runbook closes.
                    None => tx
                        .prepare_cached("DELETE FROM breakers WHERE runbook = ?1")?
                        .execute(params![runbook])?,
                };
            }
        }
        RecordKind::AlertFiring => {
            if let Some(fp) = alert_fingerprint(r) {
                let labels = r
                    .labels
                    .as_ref()
                    .and_then(|l| serde_json::to_string(l).ok());
                tx.prepare_cached(
                    "INSERT INTO alerts (fingerprint, alert, labels, severity, status, since,
                                         last_at, resolved_at, seq, source, action_id)
                     VALUES (?1, ?2, ?3, ?4, 'firing', ?5, ?5, NULL, ?6, ?7, NULL)
                     ON CONFLICT (fingerprint) DO UPDATE SET
                         source = CASE WHEN status = 'firing'
                                       THEN coalesce(source, excluded.source)
                                       ELSE excluded.source END,
                         action_id = CASE WHEN status = 'firing' THEN action_id ELSE NULL END,
                         alert = coalesce(excluded.alert, alert),
                         labels = coalesce(excluded.labels, labels),
                         severity = coalesce(excluded.severity, severity),
                         since = CASE WHEN status = 'firing' THEN since ELSE excluded.since END,
                         status = 'firing',
                         last_at = excluded.last_at,
                         resolved_at = NULL,
                         seq = excluded.seq",
                )?
                .execute(params![
                    fp,
                    r.alert,
                    labels,
                    r.severity.map(Severity::as_str),
                    at,
                    seq,
                    batch.sources.remove(&fp),
                ])?;
            }
        }
        RecordKind::AlertResolved => {
            if let Some(fp) = alert_fingerprint(r) {
                tx.prepare_cached(
                    "UPDATE alerts SET status = 'resolved', resolved_at = ?2, last_at = ?2, seq = ?3
                     WHERE fingerprint = ?1",
                )?
                .execute(params![fp, at, seq])?;
            }
        }
        RecordKind::ModeChanged => {
            if let Some(serde_json::Value::Object(m)) = &r.data {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO modes (name, value, at, seq) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (name) DO UPDATE SET
                         value = excluded.value, at = excluded.at, seq = excluded.seq",
                )?;
                for (k, v) in m {
                    stmt.execute(params![k, v.to_string(), at, seq])?;
                }
            }
        }
        RecordKind::ActionStarted => {
            let (mut runbook, mut target) = (r.runbook.clone(), r.target.clone());
            if let (Some(id), true) = (&r.action_id, runbook.is_none() || target.is_none())
                && let Some((rb, t)) = batch.action_subject(tx, id)?
            {
                runbook = runbook.or(rb);
                target = target.or(t);
            }
            if let Some(runbook) = runbook {
                tx.prepare_cached(
                    "INSERT INTO action_starts (seq, runbook, target, action_id, at, at_us)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    seq,
                    runbook,
                    target.unwrap_or_default(),
                    r.action_id,
                    at,
                    micros(&r.at)
                ])?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The fingerprint an alert record is keyed by: its own, or the one of its
/// labels.
fn alert_fingerprint(r: &Record) -> Option<String> {
    r.fingerprint
        .clone()
        .or_else(|| r.labels.as_ref().map(fingerprint))
}
