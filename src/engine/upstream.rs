//! Silences and inhibitions held by an Alertmanager. An alert that its
//! Alertmanager reports suppressed (`silencedBy`, `inhibitedBy`), or that
//! matches an active silence of its source, is shown silenced with who, why
//! and until when (for an inhibition: which alert inhibits it), gets no
//! action and counts for nothing. When the silence ends and the alert still
//! fires, the normal flow resumes: an action is proposed then.
//!
//! The pollers report what each source holds (`Event::SourceState`); the
//! engine matches, decides and records. Pure: `now` is an argument.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::json;

use super::{AlertSilence, Command, Engine, rec};
use crate::model::{
    ACTOR_VIGIL, ActionState, AlertOrigin, AlertStatus, Labels, RecordKind, Time, fmt_time,
};

/// One matcher of an Alertmanager silence.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    pub is_equal: bool,
}

/// A silence as an Alertmanager holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSilence {
    pub id: String,
    pub matchers: Vec<UpstreamMatcher>,
    pub starts_at: Time,
    pub ends_at: Time,
    pub created_by: String,
    pub comment: String,
}

/// What an Alertmanager says about an alert it suppresses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Suppressed {
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
}

/// The `until` of an inhibition: it lasts while the inhibiting alert fires.
pub fn while_inhibited() -> Time {
    "9999-12-31T23:59:59Z".parse().unwrap_or_default()
}

/// A matcher ready to test labels.
#[derive(Debug, Clone)]
enum Test {
    Eq(String),
    Re(Option<Regex>),
}

#[derive(Debug, Clone)]
struct Compiled {
    silence: UpstreamSilence,
    tests: Vec<(String, Test, bool)>,
}

impl Compiled {
    fn new(silence: UpstreamSilence) -> Compiled {
        let tests = silence
            .matchers
            .iter()
            .map(|m| {
                let t = if m.is_regex {
                    // Alertmanager anchors its regular expressions; one that
                    // does not compile matches nothing.
                    Test::Re(Regex::new(&format!("^(?:{})$", m.value)).ok())
                } else {
                    Test::Eq(m.value.clone())
                };
                (m.name.clone(), t, m.is_equal)
            })
            .collect();
        Compiled { silence, tests }
    }

    fn active(&self, now: Time) -> bool {
        self.silence.starts_at <= now && now < self.silence.ends_at
    }

    fn matches(&self, labels: &Labels) -> bool {
        !self.tests.is_empty()
            && self.tests.iter().all(|(name, t, equal)| {
                // A missing label reads as "" (as in Alertmanager).
                let v = labels.get(name).map(String::as_str).unwrap_or("");
                let hit = match t {
                    Test::Eq(want) => v == want,
                    Test::Re(Some(re)) => re.is_match(v),
                    Test::Re(None) => false,
                };
                hit == *equal
            })
    }
}

/// What Vigil knows of one source.
#[derive(Debug, Clone, Default)]
pub(super) struct SourceView {
    silences: Vec<Compiled>,
    suppressed: BTreeMap<String, Suppressed>,
}

fn from_silence(s: &UpstreamSilence) -> AlertSilence {
    AlertSilence {
        id: s.id.clone(),
        until: s.ends_at,
        actor: s.created_by.clone(),
        comment: s.comment.clone(),
    }
}

impl Engine {
    /// A source reports the silences it holds (`None`: unknown this time,
    /// keep what was known) and which of its alerts it suppresses (`None`:
    /// not polled).
    pub(super) fn on_source_state(
        &mut self,
        source: String,
        silences: Option<Vec<UpstreamSilence>>,
        suppressed: Option<BTreeMap<String, Suppressed>>,
        now: Time,
    ) {
        let view = self.upstream.entry(source.clone()).or_default();
        if let Some(list) = silences {
            view.silences = list.into_iter().map(Compiled::new).collect();
        }
        if let Some(s) = suppressed {
            view.suppressed = s;
        }
        let mut fps: Vec<String> = self
            .alerts
            .values()
            .filter(|a| {
                a.origin == AlertOrigin::External
                    && a.status == AlertStatus::Firing
                    && a.source == source
            })
            .map(|a| a.fingerprint.clone())
            .collect();
        fps.sort();
        for fp in fps {
            self.refresh_upstream(&fp, now);
        }
    }

    /// The suppression the alert's source holds for it now, if any.
    fn upstream_for(&self, fp: &str, now: Time) -> Option<AlertSilence> {
        let al = self.alerts.get(fp)?;
        if al.origin != AlertOrigin::External || al.status != AlertStatus::Firing {
            return None;
        }
        let view = self.upstream.get(&al.source)?;
        let src = &al.source;
        if let Some(sup) = view.suppressed.get(fp) {
            for id in &sup.silenced_by {
                match view.silences.iter().find(|c| &c.silence.id == id) {
                    Some(c) if c.active(now) => return Some(from_silence(&c.silence)),
                    Some(_) => {}
                    None => {
                        return Some(AlertSilence {
                            id: id.clone(),
                            until: while_inhibited(),
                            actor: src.clone(),
                            comment: format!("silenced in {src} by silence {id}"),
                        });
                    }
                }
            }
        }
        if let Some(c) = view
            .silences
            .iter()
            .find(|c| c.active(now) && c.matches(&al.labels))
        {
            return Some(from_silence(&c.silence));
        }
        let by = view.suppressed.get(fp)?.inhibited_by.first()?;
        let what = match self.alerts.get(by) {
            Some(x) => format!(
                "{}{}",
                x.name,
                x.host().map(|h| format!(" on {h}")).unwrap_or_default()
            ),
            None => "another alert".to_string(),
        };
        Some(AlertSilence {
            id: format!("inhibited-by-{by}"),
            until: while_inhibited(),
            actor: src.clone(),
            comment: format!("inhibited in {src} by {what} (fingerprint {by}) while it fires"),
        })
    }

    /// Brings the alert's upstream suppression up to date: records its
    /// start (and cancels an action that has not started) or its end (and
    /// proposes an action when the alert still fires).
    pub(super) fn refresh_upstream(&mut self, fp: &str, now: Time) {
        let new = self.upstream_for(fp, now);
        let old = self.upstream_on.get(fp).cloned();
        let Some(al) = self.alerts.get(fp) else {
            return;
        };
        let source = al.source.clone();
        match (old, new) {
            (None, None) => {}
            (Some(o), Some(n)) if o.id == n.id => {
                self.upstream_on.insert(fp.to_string(), n);
                self.show_silence(fp);
            }
            (_, Some(n)) => {
                self.upstream_on.insert(fp.to_string(), n.clone());
                self.show_silence(fp);
                // A silence made through Vigil was recorded when it was made.
                let ours = self.silences.get(fp).is_some_and(|s| s.id == n.id);
                if !ours {
                    self.record_upstream_start(fp, &source, &n, now);
                    self.cancel_for_silence(fp, &source, &n, now);
                }
            }
            (Some(o), None) => {
                self.upstream_on.remove(fp);
                self.show_silence(fp);
                let mut r = rec(RecordKind::SilenceExpired, now);
                r.fingerprint = Some(fp.to_string());
                r.actor = Some(ACTOR_VIGIL.into());
                r.detail = Some(if o.id.starts_with("inhibited-by-") {
                    format!("no longer inhibited in {source}")
                } else if o.until <= now {
                    format!(
                        "silence {} in {source} ended at {}",
                        o.id,
                        fmt_time(&o.until)
                    )
                } else {
                    format!("silence {} in {source} was expired there", o.id)
                });
                r.data = Some(json!({ "silence_id": o.id, "source": source }));
                if let Some(a) = self.alerts.get(fp) {
                    r.alert = Some(a.name.clone());
                    r.target = a.host().map(str::to_string);
                }
                self.out.push(Command::Record(r));
                self.resume_after_silence(fp, now);
            }
        }
    }

    fn record_upstream_start(&mut self, fp: &str, source: &str, s: &AlertSilence, now: Time) {
        let mut r = rec(RecordKind::SilenceCreated, now);
        r.fingerprint = Some(fp.to_string());
        r.actor = Some(s.actor.clone());
        r.reason = Some(s.comment.clone());
        let inhibited = s.id.starts_with("inhibited-by-");
        r.detail = Some(if inhibited {
            s.comment.clone()
        } else {
            format!(
                "silenced in {source} by {} until {}{}",
                s.actor,
                fmt_time(&s.until),
                if s.comment.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.comment)
                }
            )
        });
        r.data = Some(json!({
            "silence_id": s.id,
            "source": source,
            "ends_at": (!inhibited).then(|| fmt_time(&s.until)),
            "inhibited_by": inhibited.then(|| s.id.trim_start_matches("inhibited-by-").to_string()),
        }));
        if let Some(a) = self.alerts.get(fp) {
            r.alert = Some(a.name.clone());
            r.target = a.host().map(str::to_string);
            r.labels = Some(a.labels.clone());
        }
        self.out.push(Command::Record(r));
    }

    /// An upstream silence says nobody wants automation on the alert: an
    /// action that has not started is closed (`action_cancelled`, reason
    /// `silenced`).
    fn cancel_for_silence(&mut self, fp: &str, source: &str, s: &AlertSilence, now: Time) {
        let Some(id) = self.alerts.get(fp).and_then(|a| a.action) else {
            return;
        };
        let pending = self.actions.get(&id).is_some_and(|a| {
            matches!(
                a.state,
                ActionState::Proposed
                    | ActionState::Blocked
                    | ActionState::AwaitingApproval
                    | ActionState::Approved
                    | ActionState::RetryWaiting
            )
        });
        if pending {
            let why = if s.id.starts_with("inhibited-by-") {
                format!("the alert is {}", s.comment)
            } else {
                format!("the alert was silenced in {source} by {}", s.actor)
            };
            self.finish(
                id,
                ActionState::Cancelled,
                RecordKind::ActionCancelled,
                "silenced",
                &format!("{why}; nothing runs while it lasts"),
                now,
            );
        }
    }

    /// The silence the console shows: the operator's, else the source's.
    pub(super) fn show_silence(&mut self, fp: &str) {
        let s = self
            .silences
            .get(fp)
            .or_else(|| self.upstream_on.get(fp))
            .cloned();
        if let Some(a) = self.alerts.get_mut(fp).map(std::sync::Arc::make_mut) {
            a.silence = s;
        }
    }

    /// Is the alert silenced now (by an operator or its source)?
    pub(super) fn is_silenced(&self, fp: &str) -> bool {
        self.silences.contains_key(fp) || self.upstream_on.contains_key(fp)
    }

    /// A silence ended: a still-firing alert with no open action, and no
    /// other silence, gets an action proposed.
    pub(super) fn resume_after_silence(&mut self, fp: &str, now: Time) {
        if self.is_silenced(fp) {
            return;
        }
        let Some(a) = self.alerts.get(fp) else {
            return;
        };
        let open = a
            .action
            .and_then(|id| self.actions.get(&id))
            .is_some_and(|x| !x.state.is_final());
        if a.status == AlertStatus::Firing && !open {
            self.propose(fp, now);
        }
    }

    /// Upstream silences end on time even when no poll comes.
    pub(super) fn expire_upstream(&mut self, now: Time) {
        if self.upstream_on.is_empty() {
            return;
        }
        let mut due: Vec<String> = self
            .upstream_on
            .iter()
            .filter(|(_, s)| s.until <= now)
            .map(|(fp, _)| fp.clone())
            .collect();
        due.sort();
        for fp in due {
            self.refresh_upstream(&fp, now);
        }
    }

    pub(super) fn next_upstream_end(&self) -> Option<Time> {
        self.upstream_on.values().map(|s| s.until).min()
    }
}
