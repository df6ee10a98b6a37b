//! Samples in, alerts out: series eviction, policy transitions, outside
//! alerts, firing and resolving (with their records).

use super::*;

impl Engine {
    /// One eviction step (see [`Evaluator::evict_idle`]): an instance an
    /// alert of the table refers to is kept, so that the alert's
    /// verification never reads another series' data.
    pub(super) fn evict_idle(&mut self, now: Time) {
        if self.eval.series_count() == 0 && self.eval.figures().instances == 0 {
            return;
        }
        let keep: std::collections::HashSet<InstanceId> =
            self.alerts.values().filter_map(|a| a.instance).collect();
        self.eval
            .evict_idle(now, crate::policy::eval::SWEEP_STEP, |i| keep.contains(&i));
    }

    pub(super) fn on_sample(&mut self, s: &Sample, now: Time) {
        let r = self
            .eval
            .observe_sample(&s.name, &s.labels, s.value, now, &mut self.transitions);
        self.after_sample(r, now);
    }

    pub(super) fn after_sample(
        &mut self,
        r: Result<crate::policy::eval::SeriesId, SeriesLimit>,
        now: Time,
    ) {
        if let Err(e) = r {
            // Recorded once an hour per metric (per limit): a client that
            // keeps inventing series must not flood the audit trail.
            let what = match e.kind {
                crate::policy::eval::LimitKind::PerMetric => e.name.clone(),
                crate::policy::eval::LimitKind::Total => String::new(),
            };
            let due = self
                .refusal_noted
                .get(&what)
                .is_none_or(|t| now - *t >= TimeDelta::hours(1) || now < *t);
            if due {
                self.refusal_noted.insert(what, now);
                let mut r = rec(RecordKind::Signal, now);
                r.detail = Some(format!(
                    "{e}; further refusals are counted in vigil_series_refused_total and recorded again in an hour"
                ));
                self.out.push(Command::Record(r));
            }
        }
        if !self.transitions.is_empty() {
            self.apply_transitions(now);
        }
    }

    pub(super) fn apply_transitions(&mut self, now: Time) {
        let ts = std::mem::take(&mut self.transitions);
        for t in &ts {
            match *t {
                Transition::Fired { instance, severity } => {
                    self.policy_fired(instance, severity, now)
                }
                Transition::Resolved { instance, stale } => {
                    let fp = self.eval.instance(instance).fingerprint.clone();
                    let why = if stale {
                        "no sample for 5m (stale)".to_string()
                    } else {
                        let p = self.eval.policy(self.eval.instance(instance).policy);
                        format!("{} holds", p.resolve_text)
                    };
                    self.resolve_alert(&fp, why, now);
                }
            }
        }
        self.transitions = ts;
        self.transitions.clear();
    }

    pub(super) fn policy_fired(&mut self, instance: InstanceId, severity: Severity, now: Time) {
        let inst = self.eval.instance(instance);
        let p = self.eval.policy(inst.policy);
        let value = self
            .eval
            .values(instance)
            .first()
            .copied()
            .flatten()
            .map(|(v, _)| v);
        let mut labels = inst.labels();
        labels.insert("severity".into(), severity.as_str().into());
        let alert = Alert {
            fingerprint: inst.fingerprint.clone(),
            name: p.name.clone(),
            labels,
            annotations: p.annotations.clone(),
            severity,
            status: AlertStatus::Firing,
            origin: AlertOrigin::Policy,
            source: "vigil".into(),
            since: now,
            resolved_at: None,
            condition: Some(format!("{} for {}", p.fire_text, fmt_delta(p.hold))),
            value,
            action: None,
            silence: None,
            generator_url: None,
            host: None,
            host_note: None,
            instance: Some(instance),
        };
        self.fire_alert(alert, now);
    }

    pub(super) fn on_alert(&mut self, a: IncomingAlert, now: Time) {
        let fp = a
            .fingerprint
            .clone()
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| fingerprint(&a.labels));
        let name = a
            .labels
            .get("alertname")
            .cloned()
            .unwrap_or_else(|| "unnamed".into());
        match a.status {
            AlertStatus::Firing => {
                if let Some(existing) = self.alerts.get_mut(&fp).map(Arc::make_mut)
                    && existing.status == AlertStatus::Firing
                {
                    // The same alert delivered again (HA Alertmanagers, polling):
                    // one alert, one action. Refresh what may have changed.
                    existing.annotations = a.annotations;
                    if a.generator_url.is_some() {
                        existing.generator_url = a.generator_url;
                    }
                    return;
                }
                if let Some(existing) = self.alerts.get(&fp)
                    && existing.status == AlertStatus::Resolved
                    && existing.origin == AlertOrigin::External
                    && a.starts_at.is_some_and(|s| s == existing.since)
                {
                    // A late copy of an episode that already resolved (the
                    // other Alertmanager of an HA pair): not a new firing.
                    return;
                }
                let severity = a
                    .labels
                    .get("severity")
                    .and_then(|s| Severity::parse(s))
                    .unwrap_or(Severity::Warning);
                let mut r = rec(RecordKind::Signal, now);
                r.alert = Some(name.clone());
                r.fingerprint = Some(fp.clone());
                r.labels = Some(a.labels.clone());
                r.detail = Some(format!(
                    "alert received from {}",
                    a.source.as_deref().unwrap_or("an external source")
                ));
                self.out.push(Command::Record(r));
                let alert = Alert {
                    fingerprint: fp,
                    name,
                    labels: a.labels,
                    annotations: a.annotations,
                    severity,
                    status: AlertStatus::Firing,
                    origin: AlertOrigin::External,
                    source: a.source.unwrap_or_else(|| "external".into()),
                    since: a.starts_at.filter(|s| *s <= now).unwrap_or(now),
                    resolved_at: None,
                    condition: None,
                    value: None,
                    action: None,
                    silence: None,
                    generator_url: a.generator_url,
                    host: None,
                    host_note: None,
                    instance: None,
                };
                self.fire_alert(alert, now);
            }
            AlertStatus::Resolved => {
                if self
                    .alerts
                    .get(&fp)
                    // Only an external alert is resolved from outside: Vigil's
                    // own alerts resolve from their data.
                    .is_some_and(|x| {
                        x.status == AlertStatus::Firing && x.origin == AlertOrigin::External
                    })
                {
                    let src = a.source.unwrap_or_else(|| "the source".into());
                    self.resolve_alert(&fp, format!("resolved by {src}"), now);
                }
            }
        }
    }

    /// Finds the host an alert is about (`[settings] host_labels`).
    pub(super) fn place(&self, alert: &mut Alert) {
        match self
            .inventory
            .locate(&alert.labels, &self.settings.host_labels)
        {
            fleet::HostMatch::Unmatched(why) => {
                alert.host = None;
                alert.host_note = Some(why);
            }
            m => {
                alert.host = m.host().map(str::to_string);
                alert.host_note = None;
            }
        }
    }

    pub(super) fn fire_alert(&mut self, mut alert: Alert, now: Time) {
        self.place(&mut alert);
        let mut r = rec(RecordKind::AlertFiring, now);
        r.alert = Some(alert.name.clone());
        r.fingerprint = Some(alert.fingerprint.clone());
        r.severity = Some(alert.severity);
        r.target = alert.host().map(str::to_string);
        r.labels = Some(alert.labels.clone());
        r.value = alert.value;
        r.detail = match (&alert.condition, &alert.host_note) {
            (Some(c), Some(n)) => Some(format!("{c}; {n}")),
            (c, n) => c.clone().or_else(|| n.clone()),
        };
        self.out.push(Command::Record(r));
        let fp = alert.fingerprint.clone();
        self.resolved_order.retain(|f| f != &fp);
        alert.silence = self.silences.get(&fp).cloned();
        let external = alert.origin == AlertOrigin::External;
        self.alerts.insert(fp.clone(), Arc::new(alert));
        if external {
            // Its source may hold a silence or an inhibition for it.
            self.refresh_upstream(&fp, now);
        }
        if !self.is_silenced(&fp) {
            self.propose(&fp, now);
        }
    }

    pub(super) fn resolve_alert(&mut self, fp: &str, why: String, now: Time) {
        let Some(alert) = self.alerts.get_mut(fp).map(Arc::make_mut) else {
            return;
        };
        if alert.status == AlertStatus::Resolved {
            return;
        }
        alert.status = AlertStatus::Resolved;
        alert.resolved_at = Some(now);
        let mut r = rec(RecordKind::AlertResolved, now);
        r.alert = Some(alert.name.clone());
        r.fingerprint = Some(fp.to_string());
        r.target = alert.host().map(str::to_string);
        r.detail = Some(why);
        let action = alert.action;
        let origin = alert.origin;
        if self.upstream_on.remove(fp).is_some() {
            alert.silence = self.silences.get(fp).cloned();
        }
        self.out.push(Command::Record(r));
        self.resolved_order.push_back(fp.to_string());
        while self.resolved_order.len() > self.settings.keep_resolved {
            if let Some(old) = self.resolved_order.pop_front() {
                self.alerts.remove(&old);
            }
        }
        // An action that ran and waits for the source is verified now.
        if origin == AlertOrigin::External {
            self.source_resolved(fp, now);
        }
        // Actions that have not started have nothing left to fix.
        if let Some(id) = action
            && let Some(a) = self.actions.get(&id)
            && matches!(
                a.state,
                ActionState::Proposed
                    | ActionState::Blocked
                    | ActionState::AwaitingApproval
                    | ActionState::Approved
                    | ActionState::RetryWaiting
            )
        {
            self.finish(
                id,
                ActionState::Cancelled,
                RecordKind::ActionCancelled,
                "alert_resolved",
                "the alert resolved before the action ran",
                now,
            );
        }
    }
}
