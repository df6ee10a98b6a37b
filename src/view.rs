//! The wire form of the engine's alerts, actions, silences and breakers:
//! what the HTTP API answers and what the change stream carries to the
//! consoles. The field names here are the public contract; the engine's
//! structs are its own and carry no serde derive, so renaming an engine
//! field is a compile error here, never a silent change on the wire.
//!
//! A view borrows from the engine's value when it is written and turns
//! back into the engine's value when a console reads it.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::{Action, Alert, AlertSilence, Breaker, SourceEvidence};
use crate::model::{
    ActionId, ActionState, AlertOrigin, AlertStatus, BlockReason, Labels, Severity, Time,
};
use crate::runbook::PlannedStep;

/// An alert (`GET /api/v1/alerts`, the stream's `alerts`).
#[derive(Debug, Serialize, Deserialize)]
pub struct AlertView<'a> {
    pub fingerprint: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub labels: Cow<'a, Labels>,
    pub annotations: Cow<'a, Labels>,
    pub severity: Severity,
    pub status: AlertStatus,
    pub origin: AlertOrigin,
    pub source: Cow<'a, str>,
    pub since: Time,
    pub resolved_at: Option<Time>,
    pub condition: Option<Cow<'a, str>>,
    pub value: Option<f64>,
    pub action: Option<ActionId>,
    pub silence: Option<SilenceView<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<Cow<'a, str>>,
    #[serde(default)]
    pub host: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_note: Option<Cow<'a, str>>,
}

/// The silence covering an alert.
#[derive(Debug, Serialize, Deserialize)]
pub struct SilenceView<'a> {
    pub id: Cow<'a, str>,
    pub until: Time,
    pub actor: Cow<'a, str>,
    pub comment: Cow<'a, str>,
}

/// An action (`GET /api/v1/actions`, `/actions/{id}`, the stream's
/// `actions`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ActionView<'a> {
    pub id: ActionId,
    pub runbook: Cow<'a, str>,
    pub target: Cow<'a, str>,
    pub params: Cow<'a, BTreeMap<String, String>>,
    pub alert: Cow<'a, str>,
    pub fingerprint: Cow<'a, str>,
    pub severity: Severity,
    pub state: ActionState,
    pub attempt: u32,
    pub created: Time,
    pub updated: Time,
    pub block: Option<BlockReason>,
    pub detail: Cow<'a, str>,
    pub due: Option<Time>,
    pub approved_by: Option<Cow<'a, str>>,
    #[serde(default)]
    pub approved_at: Option<Time>,
    pub approvals: Cow<'a, [String]>,
    pub approvals_needed: u32,
    pub requested_by: Option<Cow<'a, str>>,
    pub plan: Cow<'a, [PlannedStep]>,
    pub stuck: bool,
    #[serde(default)]
    pub source_deadline: Option<Time>,
    #[serde(default)]
    pub own_check: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_evidence: Option<EvidenceView<'a>>,
}

/// What a query of an outside alert's rule said after a run.
#[derive(Debug, Serialize, Deserialize)]
pub struct EvidenceView<'a> {
    pub holds: bool,
    pub why: Cow<'a, str>,
    pub at: Time,
}

/// A circuit breaker (the stream's `breakers`: `[runbook, target, this]`).
#[derive(Debug, Serialize, Deserialize)]
pub struct BreakerView<'a> {
    pub open_since: Option<Time>,
    pub runs: Cow<'a, VecDeque<Time>>,
}

fn own(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

fn lent(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(Cow::Borrowed)
}

impl<'a> From<&'a AlertSilence> for SilenceView<'a> {
    fn from(s: &'a AlertSilence) -> Self {
        SilenceView {
            id: Cow::Borrowed(&s.id),
            until: s.until,
            actor: Cow::Borrowed(&s.actor),
            comment: Cow::Borrowed(&s.comment),
        }
    }
}

impl From<SilenceView<'_>> for AlertSilence {
    fn from(s: SilenceView<'_>) -> Self {
        AlertSilence {
            id: s.id.into_owned(),
            until: s.until,
            actor: s.actor.into_owned(),
            comment: s.comment.into_owned(),
        }
    }
}

impl<'a> From<&'a Alert> for AlertView<'a> {
    fn from(a: &'a Alert) -> Self {
        AlertView {
            fingerprint: Cow::Borrowed(&a.fingerprint),
            name: Cow::Borrowed(&a.name),
            labels: Cow::Borrowed(&a.labels),
            annotations: Cow::Borrowed(&a.annotations),
            severity: a.severity,
            status: a.status,
            origin: a.origin,
            source: Cow::Borrowed(&a.source),
            since: a.since,
            resolved_at: a.resolved_at,
            condition: lent(&a.condition),
            value: a.value,
            action: a.action,
            silence: a.silence.as_ref().map(SilenceView::from),
            generator_url: lent(&a.generator_url),
            host: lent(&a.host),
            host_note: lent(&a.host_note),
        }
    }
}

impl From<AlertView<'_>> for Alert {
    fn from(v: AlertView<'_>) -> Self {
        Alert {
            fingerprint: v.fingerprint.into_owned(),
            name: v.name.into_owned(),
            labels: v.labels.into_owned(),
            annotations: v.annotations.into_owned(),
            severity: v.severity,
            status: v.status,
            origin: v.origin,
            source: v.source.into_owned(),
            since: v.since,
            resolved_at: v.resolved_at,
            condition: own(v.condition),
            value: v.value,
            action: v.action,
            silence: v.silence.map(AlertSilence::from),
            generator_url: own(v.generator_url),
            host: own(v.host),
            host_note: own(v.host_note),
            // A console's copy answers to no policy instance.
            instance: None,
        }
    }
}

impl<'a> From<&'a Action> for ActionView<'a> {
    fn from(a: &'a Action) -> Self {
        ActionView {
            id: a.id,
            runbook: Cow::Borrowed(&a.runbook),
            target: Cow::Borrowed(&a.target),
            params: Cow::Borrowed(&a.params),
            alert: Cow::Borrowed(&a.alert),
            fingerprint: Cow::Borrowed(&a.fingerprint),
            severity: a.severity,
            state: a.state,
            attempt: a.attempt,
            created: a.created,
            updated: a.updated,
            block: a.block,
            detail: Cow::Borrowed(&a.detail),
            due: a.due,
            approved_by: lent(&a.approved_by),
            approved_at: a.approved_at,
            approvals: Cow::Borrowed(&a.approvals),
            approvals_needed: a.approvals_needed,
            requested_by: lent(&a.requested_by),
            plan: Cow::Borrowed(&a.plan),
            stuck: a.stuck,
            source_deadline: a.source_deadline,
            own_check: lent(&a.own_check),
            source_evidence: a.source_evidence.as_ref().map(|e| EvidenceView {
                holds: e.holds,
                why: Cow::Borrowed(&e.why),
                at: e.at,
            }),
        }
    }
}

impl From<ActionView<'_>> for Action {
    fn from(v: ActionView<'_>) -> Self {
        Action {
            id: v.id,
            runbook: v.runbook.into_owned(),
            target: v.target.into_owned(),
            params: v.params.into_owned(),
            alert: v.alert.into_owned(),
            fingerprint: v.fingerprint.into_owned(),
            severity: v.severity,
            state: v.state,
            attempt: v.attempt,
            created: v.created,
            updated: v.updated,
            block: v.block,
            detail: v.detail.into_owned(),
            due: v.due,
            approved_by: own(v.approved_by),
            approved_at: v.approved_at,
            approvals: v.approvals.into_owned(),
            approvals_needed: v.approvals_needed,
            requested_by: own(v.requested_by),
            plan: v.plan.into_owned(),
            stuck: v.stuck,
            source_deadline: v.source_deadline,
            own_check: own(v.own_check),
            source_evidence: v.source_evidence.map(|e| SourceEvidence {
                holds: e.holds,
                why: e.why.into_owned(),
                at: e.at,
            }),
        }
    }
}

impl<'a> From<&'a Breaker> for BreakerView<'a> {
    fn from(b: &'a Breaker) -> Self {
        BreakerView {
            open_since: b.open_since,
            runs: Cow::Borrowed(&b.runs),
        }
    }
}

impl From<BreakerView<'_>> for Breaker {
    fn from(v: BreakerView<'_>) -> Self {
        Breaker {
            open_since: v.open_since,
            runs: v.runs.into_owned(),
        }
    }
}

/// `#[serde(with)]` for a list of shared alerts.
pub mod alerts {
    use super::*;

    pub fn serialize<S: Serializer>(list: &[Arc<Alert>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(|a| AlertView::from(&**a)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Arc<Alert>>, D::Error> {
        let list = Vec::<AlertView<'static>>::deserialize(d)?;
        Ok(list.into_iter().map(|v| Arc::new(Alert::from(v))).collect())
    }
}

/// `#[serde(with)]` for the shared list of actions.
pub mod actions {
    use super::*;

    pub fn serialize<S: Serializer>(list: &Arc<Vec<Action>>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(ActionView::from))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Vec<Action>>, D::Error> {
        let list = Vec::<ActionView<'static>>::deserialize(d)?;
        Ok(Arc::new(list.into_iter().map(Action::from).collect()))
    }
}

/// `#[serde(with)]` for a changed list of actions (absent when unchanged).
pub mod actions_changed {
    use super::*;

    pub fn serialize<S: Serializer>(
        list: &Option<Arc<Vec<Action>>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match list {
            Some(l) => s.serialize_some(&Seq(l, ActionView::from)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Arc<Vec<Action>>>, D::Error> {
        let list = Option::<Vec<ActionView<'static>>>::deserialize(d)?;
        Ok(list.map(|l| Arc::new(l.into_iter().map(Action::from).collect())))
    }
}

/// The breakers: `[runbook, target, breaker]` each.
type BreakerRow = (String, String, Breaker);

fn breaker_row(r: &BreakerRow) -> (&str, &str, BreakerView<'_>) {
    (&r.0, &r.1, BreakerView::from(&r.2))
}

fn breaker_back(r: (String, String, BreakerView<'static>)) -> BreakerRow {
    (r.0, r.1, Breaker::from(r.2))
}

/// `#[serde(with)]` for the breakers.
pub mod breakers {
    use super::*;

    pub fn serialize<S: Serializer>(list: &[BreakerRow], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(breaker_row))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<BreakerRow>, D::Error> {
        let list = Vec::<(String, String, BreakerView<'static>)>::deserialize(d)?;
        Ok(list.into_iter().map(breaker_back).collect())
    }
}

/// `#[serde(with)]` for changed breakers (absent when unchanged).
pub mod breakers_changed {
    use super::*;

    pub fn serialize<S: Serializer>(
        list: &Option<Vec<BreakerRow>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match list {
            Some(l) => s.serialize_some(&Seq(l, breaker_row)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<BreakerRow>>, D::Error> {
        let list = Option::<Vec<(String, String, BreakerView<'static>)>>::deserialize(d)?;
        Ok(list.map(|l| l.into_iter().map(breaker_back).collect()))
    }
}

/// A slice written as a sequence of its views.
struct Seq<'a, T, F>(&'a [T], F);

impl<'a, T, V, F> Serialize for Seq<'a, T, F>
where
    F: Fn(&'a T) -> V,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(&self.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn t(s: &str) -> Time {
        s.parse().expect("a time")
    }

    fn alert() -> Alert {
        let mut labels = Labels::new();
        labels.insert("host".into(), "web-01".into());
        Alert {
            fingerprint: "fp1".into(),
            name: "DiskSpaceLow".into(),
            labels,
            annotations: Labels::new(),
            severity: Severity::Warning,
            status: AlertStatus::Firing,
            origin: AlertOrigin::Policy,
            source: "vigil".into(),
            since: t("2026-01-01T00:00:00Z"),
            resolved_at: None,
            condition: Some("disk_used_percent > 85".into()),
            value: Some(91.5),
            action: Some(ActionId(3)),
            silence: Some(AlertSilence {
                id: "vigil-1".into(),
                until: t("2026-01-01T01:00:00Z"),
                actor: "ana".into(),
                comment: "known".into(),
            }),
            generator_url: None,
            host: Some("web-01".into()),
            host_note: None,
            instance: None,
        }
    }

    #[test]
    fn an_alert_goes_over_the_wire_and_back_unchanged() {
        let a = alert();
        let text = serde_json::to_string(&AlertView::from(&a)).expect("written");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        // The contract's names, and the optional fields left out when empty.
        for k in ["fingerprint", "labels", "silence", "host", "condition"] {
            assert!(v.get(k).is_some(), "{k} missing from {text}");
        }
        assert!(v.get("host_note").is_none() && v.get("generator_url").is_none());
        assert_eq!(v["silence"]["actor"], "ana");
        let back: AlertView<'static> = serde_json::from_str(&text).expect("read");
        assert_eq!(Alert::from(back), a);
    }

    #[test]
    fn an_action_and_a_breaker_go_over_the_wire_and_back_unchanged() {
        let mut a = Action::proposed(
            ActionId(7),
            "disk_cleanup",
            "web-01",
            BTreeMap::from([("path".to_string(), "/var/log".to_string())]),
            t("2026-01-01T00:00:00Z"),
        );
        a.approvals = vec!["ana".into()];
        a.source_evidence = Some(SourceEvidence {
            holds: false,
            why: "cleared".into(),
            at: t("2026-01-01T00:05:00Z"),
        });
        let text = serde_json::to_string(&ActionView::from(&a)).expect("written");
        let back: ActionView<'static> = serde_json::from_str(&text).expect("read");
        assert_eq!(Action::from(back), a);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["id"], 7);
        assert_eq!(v["state"], "proposed");

        let rows = vec![(
            "disk_cleanup".to_string(),
            "web-01".to_string(),
            Breaker {
                open_since: Some(t("2026-01-01T00:00:00Z")),
                runs: VecDeque::from([t("2026-01-01T00:00:00Z")]),
            },
        )];
        #[derive(Serialize, Deserialize)]
        struct Holder {
            #[serde(with = "breakers")]
            b: Vec<BreakerRow>,
        }
        let text = serde_json::to_string(&Holder { b: rows.clone() }).expect("written");
        assert!(text.starts_with(r#"{"b":[["disk_cleanup","web-01",{"open_since":"#));
        let back: Holder = serde_json::from_str(&text).expect("read");
        assert_eq!(back.b, rows);
    }
}
