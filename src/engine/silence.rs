//! Silences in the engine: an operator's decision that an alert needs no
//! automation for a while. A silenced alert stays in the table (shown as
//! silenced) and gets no new action until the silence ends; the start and the
//! end are recorded (`silence_created`, `silence_expired`).
//!
//! Pure like the rest of the engine: the Alertmanager call that creates the
//! upstream silence is made by the caller (`crate::ingest::silence`).

use serde_json::json;

use super::{Command, Engine, rec};
use crate::model::{ACTOR_VIGIL, RecordKind, Time, fmt_time};

/// A silence covering one alert (on the wire: `crate::view::SilenceView`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSilence {
    /// The Alertmanager silence id, or `vigil-...` for a silence kept only
    /// by Vigil (an alert of its own policies).
    pub id: String,
    pub until: Time,
    pub actor: String,
    pub comment: String,
}

impl Engine {
    /// The active silence of an alert, if any.
    pub fn silence(&self, fingerprint: &str) -> Option<&AlertSilence> {
        self.silences.get(fingerprint)
    }

    pub(super) fn on_silence(
        &mut self,
        fingerprint: String,
        id: String,
        until: Time,
        actor: String,
        comment: String,
        now: Time,
    ) {
        if until <= now {
            return;
        }
        let s = AlertSilence {
            id,
            until,
            actor,
            comment,
        };
        let mut r = rec(RecordKind::SilenceCreated, now);
        r.fingerprint = Some(fingerprint.clone());
        r.actor = Some(s.actor.clone());
        r.reason = Some(s.comment.clone());
        r.detail = Some(format!("silenced until {}", fmt_time(&until)));
        r.data = Some(json!({ "silence_id": s.id, "ends_at": fmt_time(&until) }));
        if let Some(a) = self
            .alerts
            .get_mut(&fingerprint)
            .map(std::sync::Arc::make_mut)
        {
            r.alert = Some(a.name.clone());
            r.target = a.host().map(str::to_string);
            r.labels = Some(a.labels.clone());
            a.silence = Some(s.clone());
        }
        self.out.push(Command::Record(r));
        self.silences.insert(fingerprint, s);
    }

    /// Ends the silence of `fingerprint`: by an operator (`actor`) or because
    /// its time is up (`None`). A still-firing alert without an action gets
    /// one proposed then.
    pub(super) fn end_silence(&mut self, fingerprint: &str, actor: Option<String>, now: Time) {
        let Some(s) = self.silences.remove(fingerprint) else {
            return;
        };
        let mut r = rec(RecordKind::SilenceExpired, now);
        r.fingerprint = Some(fingerprint.to_string());
        r.actor = Some(actor.clone().unwrap_or_else(|| ACTOR_VIGIL.into()));
        r.detail = Some(match &actor {
            Some(a) => format!("expired early by {a}"),
            None => format!("ended at {}", fmt_time(&s.until)),
        });
        r.data = Some(json!({ "silence_id": s.id }));
        if let Some(a) = self.alerts.get(fingerprint) {
            r.alert = Some(a.name.clone());
            r.target = a.host().map(str::to_string);
        }
        // Expired early through Vigil: expired in Alertmanager too.
        if actor.is_some()
            && self
                .upstream_on
                .get(fingerprint)
                .is_some_and(|u| u.id == s.id)
        {
            self.upstream_on.remove(fingerprint);
        }
        self.show_silence(fingerprint);
        self.out.push(Command::Record(r));
        self.resume_after_silence(fingerprint, now);
    }

    pub(super) fn expire_silences(&mut self, now: Time) {
        if self.silences.is_empty() {
            return;
        }
        let mut due: Vec<(Time, String)> = self
            .silences
            .iter()
            .filter(|(_, s)| s.until <= now)
            .map(|(fp, s)| (s.until, fp.clone()))
            .collect();
        due.sort();
        for (_, fp) in due {
            self.end_silence(&fp, None, now);
        }
    }

    pub(super) fn next_silence_end(&self) -> Option<Time> {
        self.silences.values().map(|s| s.until).min()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::super::{Engine, Event, Setup};
    use crate::config::Config;
    use crate::model::{AlertStatus, IncomingAlert, Labels, RecordKind, Time};

    fn engine() -> Engine {
        let c = Config::parse("c.toml", "").unwrap();
        let setup: Setup = c.build("c.toml", "", false, Some("sim".into())).unwrap();
        Engine::new(setup)
    }

    fn t(s: i64) -> Time {
        "2026-01-01T00:00:00Z".parse::<Time>().unwrap() + TimeDelta::seconds(s)
    }

    fn alert(status: AlertStatus) -> Event {
        let labels: Labels = [
            ("alertname", "ServiceDown"),
            ("host", "web-01"),
            ("service", "nginx"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Event::Alert(IncomingAlert {
            labels,
            annotations: Labels::new(),
            status,
            fingerprint: Some("fp1".into()),
            starts_at: None,
            ends_at: None,
            source: Some("am".into()),
            generator_url: None,
        })
    }

    fn kinds(cmds: &[super::Command]) -> Vec<RecordKind> {
        cmds.iter()
            .filter_map(|c| match c {
                super::Command::Record(r) => Some(r.kind),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_silenced_alert_gets_no_action_until_the_silence_ends() {
        let mut e = engine();
        let silence = Event::Silence {
            fingerprint: "fp1".into(),
            id: "s-1".into(),
            until: t(600),
            actor: "ana".into(),
            comment: "known, deploy in progress".into(),
        };
        let c = e.handle(silence, t(0));
        assert_eq!(kinds(&c), vec![RecordKind::SilenceCreated]);
        let c = e.handle(alert(AlertStatus::Firing), t(10));
        let k = kinds(&c);
        assert!(k.contains(&RecordKind::AlertFiring), "{k:?}");
        assert!(!k.contains(&RecordKind::RunbookMatched), "{k:?}");
        assert_eq!(e.alert("fp1").unwrap().silence.as_ref().unwrap().id, "s-1");
        assert_eq!(e.next_deadline(), Some(t(600)));
        let c = e.handle(Event::Tick, t(600));
        let k = kinds(&c);
        assert_eq!(k[0], RecordKind::SilenceExpired);
        assert!(k.contains(&RecordKind::RunbookMatched), "{k:?}");
        assert!(e.alert("fp1").unwrap().silence.is_none());
    }

    #[test]
    fn silencing_a_firing_alert_and_expiring_it_early_are_recorded() {
        let mut e = engine();
        e.handle(alert(AlertStatus::Firing), t(0));
        let c = e.handle(
            Event::Silence {
                fingerprint: "fp1".into(),
                id: "s-2".into(),
                until: t(60),
                actor: "ana".into(),
                comment: "c".into(),
            },
            t(1),
        );
        let super::Command::Record(r) = &c[0] else {
            panic!("{c:?}")
        };
        assert_eq!(r.alert.as_deref(), Some("ServiceDown"));
        assert_eq!(r.target.as_deref(), Some("web-01"));
        let c = e.handle(
            Event::Unsilence {
                fingerprint: "fp1".into(),
                actor: "bo".into(),
            },
            t(2),
        );
        let super::Command::Record(r) = &c[0] else {
            panic!("{c:?}")
        };
        assert_eq!(r.kind, RecordKind::SilenceExpired);
        assert_eq!(r.actor.as_deref(), Some("bo"));
        // The alert already had its action: ending the silence adds none.
        assert_eq!(c.len(), 1);
    }
}
