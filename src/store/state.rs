//! Loading the state a restarted Vigil resumes from (open actions,
//! breakers, alerts, modes, silences) out of the derived tables.

use super::*;

impl Store {
    /// [`Store::load_state_at`] with the current time.
    pub fn load_state(&self) -> Result<PersistedState, StoreError> {
        self.load_state_at(chrono::Utc::now())
    }

    /// The state a restarted Vigil rebuilds itself from; `recent_starts`
    /// covers the 24 hours before `now`.
    pub fn load_state_at(&self, now: Time) -> Result<PersistedState, StoreError> {
        let e = || self.err("load the persisted state");
        let tx = self.conn.unchecked_transaction().map_err(e())?;
        let mut st = PersistedState {
            last_seq: head(&tx).map_err(e())?.0,
            ..PersistedState::default()
        };

        st.actions = self.load_actions(
            &tx,
            "WHERE state IN ('action_started', 'action_interrupted')",
        )?;
        st.open_actions = self.load_actions(
            &tx,
            "WHERE phase NOT IN ('done', 'rejected', 'expired', 'escalated', 'cancelled')",
        )?;
        // Both through an index: the newest proposal in the trail, and the
        // greatest id of the actions table (ids of one width sort by number).
        let newest = self.newest_proposal()?;
        let greatest: Option<String> = tx
            .query_row("SELECT max(action_id) FROM actions", [], |r| r.get(0))
            .map_err(e())?;
        st.max_action = [newest, greatest]
            .into_iter()
            .flatten()
            .chain(st.actions.iter().map(|a| a.action_id.clone()))
            .filter_map(|id| id.strip_prefix('A').and_then(|n| n.parse::<u64>().ok()))
            .max()
            .unwrap_or(0);

        let mut stmt = tx
            .prepare("SELECT runbook, target, opened_at, reason, seq FROM breakers ORDER BY seq")
            .map_err(e())?;
        let mut rows = stmt.query([]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(4).map_err(e())? as u64;
            st.breakers.push(PersistedBreaker {
                runbook: row.get(0).map_err(e())?,
                target: row.get(1).map_err(e())?,
                opened_at: self.time(seq, row.get_ref(2).map_err(e())?)?,
                reason: row.get(3).map_err(e())?,
                seq,
            });
        }
        drop(rows);
        drop(stmt);

        let mut stmt = tx
            .prepare("SELECT name, value, seq FROM modes ORDER BY name")
            .map_err(e())?;
        let mut rows = stmt.query([]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(2).map_err(e())? as u64;
            let name: String = row.get(0).map_err(e())?;
            let value: String = row.get(1).map_err(e())?;
            let value: serde_json::Value = serde_json::from_str(&value)
                .map_err(|err| self.corrupt(seq, format!("mode {name}: {err}")))?;
            st.modes.insert(name, value);
        }
        drop(rows);
        drop(stmt);
        st.dry_run = st.modes.get("dry_run").and_then(|v| v.as_bool());
        st.frozen = st.modes.get("frozen").and_then(|v| v.as_bool());

        let mut stmt = tx
            .prepare(
                "SELECT fingerprint, alert, labels, severity, since, last_at, seq, source, action_id
                 FROM alerts WHERE status = 'firing' ORDER BY seq",
            )
            .map_err(e())?;
        let mut rows = stmt.query([]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(6).map_err(e())? as u64;
            let labels: Option<String> = row.get(2).map_err(e())?;
            let labels = match labels {
                Some(l) => serde_json::from_str(&l)
                    .map_err(|err| self.corrupt(seq, format!("alert labels: {err}")))?,
                None => Labels::new(),
            };
            let severity: Option<String> = row.get(3).map_err(e())?;
            st.firing_alerts.push(PersistedAlert {
                fingerprint: row.get(0).map_err(e())?,
                alert: row.get(1).map_err(e())?,
                labels,
                severity: severity.as_deref().and_then(Severity::parse),
                since: self.time(seq, row.get_ref(4).map_err(e())?)?,
                last_at: self.time(seq, row.get_ref(5).map_err(e())?)?,
                source: row.get(7).map_err(e())?,
                action_id: row.get(8).map_err(e())?,
            });
        }
        drop(rows);
        drop(stmt);

        let mut stmt = tx
            .prepare(
                "SELECT fingerprint, silence_id, until, actor, comment, seq
                 FROM silences ORDER BY seq",
            )
            .map_err(e())?;
        let mut rows = stmt.query([]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(5).map_err(e())? as u64;
            st.silences.push(PersistedSilence {
                fingerprint: row.get(0).map_err(e())?,
                id: row
                    .get::<_, Option<String>>(1)
                    .map_err(e())?
                    .unwrap_or_default(),
                until: self.time(seq, row.get_ref(2).map_err(e())?)?,
                actor: row
                    .get::<_, Option<String>>(3)
                    .map_err(e())?
                    .unwrap_or_default(),
                comment: row
                    .get::<_, Option<String>>(4)
                    .map_err(e())?
                    .unwrap_or_default(),
            });
        }
        drop(rows);
        drop(stmt);

        let cutoff = micros(&(now - chrono::Duration::hours(24)));
        let mut stmt = tx
            .prepare(
                "SELECT runbook, target, action_id, at_us, seq FROM action_starts
                 WHERE at_us >= ?1 ORDER BY at_us, seq",
            )
            .map_err(e())?;
        let mut rows = stmt.query([cutoff]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(4).map_err(e())? as u64;
            // The indexed microseconds, not the text: no parsing per row.
            let at_us: i64 = row.get(3).map_err(e())?;
            let at = chrono::DateTime::from_timestamp_micros(at_us)
                .ok_or_else(|| self.corrupt(seq, format!("stored start time {at_us} µs")))?;
            st.recent_starts.push(ActionStart {
                runbook: row.get(0).map_err(e())?,
                target: row.get(1).map_err(e())?,
                action_id: row.get(2).map_err(e())?,
                at,
                seq,
            });
        }
        Ok(st)
    }

    /// The rows of `actions` that `filter` (a WHERE clause) selects, oldest
    /// first.
    fn load_actions(
        &self,
        tx: &Connection,
        filter: &str,
    ) -> Result<Vec<PersistedAction>, StoreError> {
        let e = || self.err("load the persisted actions");
        let mut out = Vec::new();
        let mut stmt = tx
            .prepare(&format!(
                "SELECT action_id, runbook, target, alert, fingerprint, params, state, first_at,
                        last_at, attempt, first_seq, last_seq, phase, severity, reason, due_at,
                        approved_by, requested_by
                 FROM actions {filter} ORDER BY first_seq"
            ))
            .map_err(e())?;
        let mut rows = stmt.query([]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let last_seq = row.get::<_, i64>(11).map_err(e())? as u64;
            let params: Option<String> = row.get(5).map_err(e())?;
            let params = match params {
                Some(p) => serde_json::from_str(&p)
                    .map_err(|err| self.corrupt(last_seq, format!("action params: {err}")))?,
                None => BTreeMap::new(),
            };
            let state: String = row.get(6).map_err(e())?;
            let state = RecordKind::parse(&state)
                .ok_or_else(|| self.corrupt(last_seq, format!("unknown kind {state:?}")))?;
            let severity: Option<String> = row.get(13).map_err(e())?;
            let due_at = match row.get_ref(15).map_err(e())? {
                ValueRef::Null => None,
                v => Some(self.time(last_seq, v)?),
            };
            out.push(PersistedAction {
                action_id: row.get(0).map_err(e())?,
                runbook: row.get(1).map_err(e())?,
                target: row.get(2).map_err(e())?,
                alert: row.get(3).map_err(e())?,
                fingerprint: row.get(4).map_err(e())?,
                params,
                state,
                first_at: self.time(last_seq, row.get_ref(7).map_err(e())?)?,
                last_at: self.time(last_seq, row.get_ref(8).map_err(e())?)?,
                attempt: row.get(9).map_err(e())?,
                first_seq: row.get::<_, i64>(10).map_err(e())? as u64,
                last_seq,
                phase: row.get(12).map_err(e())?,
                severity: severity.as_deref().and_then(Severity::parse),
                reason: row.get(14).map_err(e())?,
                due_at,
                approved_by: row.get(16).map_err(e())?,
                requested_by: row.get(17).map_err(e())?,
            });
        }
        Ok(out)
    }

    /// The action id of the newest `action_proposed` record that has one.
    fn newest_proposal(&self) -> Result<Option<String>, StoreError> {
        let proposals = AuditFilter {
            kind: Some(RecordKind::ActionProposed.as_str().to_string()),
            ..AuditFilter::default()
        };
        let mut before = None;
        loop {
            let page = self.page(&proposals, before, 64)?;
            let Some(last) = page.last() else {
                return Ok(None);
            };
            before = Some(last.seq);
            if let Some(id) = page.into_iter().find_map(|r| r.action_id) {
                return Ok(Some(id));
            }
        }
    }

    fn time(&self, seq: u64, v: ValueRef<'_>) -> Result<Time, StoreError> {
        let s = v
            .as_str()
            .map_err(|_| self.corrupt(seq, "a stored time is not text"))?;
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|err| self.corrupt(seq, format!("stored time {s:?}: {err}")))
    }
}
