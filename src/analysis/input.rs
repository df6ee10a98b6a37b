//! What an analyser sees: the alert, the host's recent series history, the
//! other alerts on the host or its group, the recent records about the host
//! and the maintenance windows around the moment it fired. Built the same
//! way by the hub (live) and by `vigil rca eval` (from a replay), so that an
//! evaluation measures what the console shows.
//!
//! Plain data and pure functions: no clock reads, no I/O.

use std::collections::{HashMap, VecDeque};

use chrono::TimeDelta;
use serde::Serialize;

use super::{Evidence, EvidenceKind, series_key};
use crate::engine::{Alert, Inventory, MaintenanceWindow};
use crate::model::{AlertStatus, Labels, Record, Sample, SeriesKey, Severity, Time};

/// How far back series history reaches.
pub const HISTORY: TimeDelta = TimeDelta::hours(24);
/// Points kept per series (older ones are thinned out first).
pub const MAX_POINTS: usize = 720;
/// Other alerts count as related when they were firing within this window.
pub const RELATED_WINDOW: TimeDelta = TimeDelta::hours(1);
/// Alerts on other hosts (outside the group) that started within this
/// window are in view as `fleet` alerts.
pub const FLEET_WINDOW: TimeDelta = TimeDelta::minutes(30);
/// At most this many related alerts are in view.
pub const MAX_RELATED: usize = 50;
/// Records about the host within this window are in view.
pub const RECORD_WINDOW: TimeDelta = TimeDelta::hours(2);
/// Maintenance windows that were open within this window are in view.
pub const WINDOW_LOOKBACK: TimeDelta = TimeDelta::hours(6);
/// At most this many records about the host are in view (the newest).
pub const MAX_RECORDS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    #[serde(serialize_with = "ser_time")]
    pub at: Time,
    pub value: f64,
}

/// One series of the host with its recent points, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesHistory {
    pub name: String,
    pub labels: Labels,
    pub points: Vec<Point>,
}

impl SeriesHistory {
    pub fn key(&self) -> String {
        series_key(&self.name, &self.labels)
    }

    pub fn last(&self) -> Option<Point> {
        self.points.last().copied()
    }
}

/// An alert as analysis input shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertFacts {
    pub name: String,
    pub fingerprint: String,
    pub host: Option<String>,
    pub labels: Labels,
    pub annotations: Labels,
    pub severity: Severity,
    pub status: AlertStatus,
    #[serde(serialize_with = "ser_time")]
    pub since: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// How a related alert relates to the analysed one (`host`, `group` or
    /// `fleet`); None for the analysed alert itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
}

impl AlertFacts {
    pub fn from_alert(a: &Alert) -> AlertFacts {
        AlertFacts {
            name: a.name.clone(),
            fingerprint: a.fingerprint.clone(),
            host: a.host().map(str::to_string),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            severity: a.severity,
            status: a.status,
            since: a.since,
            value: a.value,
            condition: a.condition.clone(),
            relation: None,
        }
    }
}

/// One occurrence of a maintenance window that covers the host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowOccurrence {
    pub reason: String,
    pub schedule: String,
    #[serde(serialize_with = "ser_time")]
    pub start: Time,
    #[serde(serialize_with = "ser_time")]
    pub end: Time,
}

impl WindowOccurrence {
    pub fn covers(&self, t: Time) -> bool {
        self.start <= t && t < self.end
    }

    /// What evidence calls it: the reason, or the schedule when it has none.
    pub fn signal(&self) -> &str {
        if self.reason.is_empty() {
            &self.schedule
        } else {
            &self.reason
        }
    }
}

/// Everything an analyser sees about one alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisInput {
    #[serde(serialize_with = "ser_time")]
    pub at: Time,
    pub alert: AlertFacts,
    /// The host's labels from the inventory (group, role, env...).
    pub host_labels: Labels,
    /// The host's series, each with its points up to `at`.
    pub series: Vec<SeriesHistory>,
    /// Other alerts on the same host or group, firing within the last hour.
    pub related: Vec<AlertFacts>,
    /// Recent records about the host, oldest first.
    pub records: Vec<Record>,
    /// Maintenance windows covering the host in the last hours.
    pub windows: Vec<WindowOccurrence>,
}

fn ser_time<S: serde::Serializer>(t: &Time, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::model::fmt_time(t))
}

fn same_value(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6_f64.max(a.abs().max(b.abs()) * 1e-3)
}

impl AnalysisInput {
    /// Does the input hold what this evidence item points at?
    pub fn contains(&self, e: &Evidence) -> bool {
        let at_ok = |t: Time| e.at.is_none_or(|a| a == t);
        match e.kind {
            EvidenceKind::Series => {
                let Ok(v) = e.value.trim().parse::<f64>() else {
                    return false;
                };
                let Some(at) = e.at else { return false };
                self.series.iter().any(|s| {
                    s.key() == e.signal
                        && s.points
                            .iter()
                            .any(|p| p.at == at && same_value(p.value, v))
                })
            }
            EvidenceKind::Alert => {
                std::iter::once(&self.alert)
                    .chain(self.related.iter())
                    .any(|a| {
                        a.name == e.signal
                            && a.host.as_deref().unwrap_or("") == e.value
                            && at_ok(a.since)
                    })
            }
            EvidenceKind::Record => {
                let Ok(seq) = e.value.trim().parse::<u64>() else {
                    return false;
                };
                self.records
                    .iter()
                    .any(|r| r.seq == seq && r.kind.as_str() == e.signal && at_ok(r.at))
            }
            EvidenceKind::Window => self.windows.iter().any(|w| {
                (w.reason == e.signal || w.schedule == e.signal)
                    && w.schedule == e.value
                    && at_ok(w.start)
            }),
            EvidenceKind::Label => [
                &self.alert.labels,
                &self.alert.annotations,
                &self.host_labels,
            ]
            .iter()
            .any(|m| m.get(&e.signal) == Some(&e.value)),
        }
    }

    /// Does a value appear in the input as a label value (of the alert, the
    /// host, a related alert or a series) or as a word of an annotation?
    pub fn mentions_value(&self, v: &str) -> bool {
        let in_labels = |m: &Labels| m.values().any(|x| x == v);
        let in_text = |m: &Labels| {
            m.values().any(|x| {
                x.split(|c: char| c.is_whitespace() || ",;()[]\"'`=".contains(c))
                    .any(|w| w == v)
            })
        };
        in_labels(&self.alert.labels)
            || in_text(&self.alert.annotations)
            || in_labels(&self.host_labels)
            || self
                .related
                .iter()
                .any(|a| in_labels(&a.labels) || in_text(&a.annotations))
            || self.series.iter().any(|s| in_labels(&s.labels))
    }

    /// The series of a metric, best match for the alert's labels first.
    pub fn series_named(&self, name: &str) -> Vec<&SeriesHistory> {
        let mut v: Vec<&SeriesHistory> = self
            .series
            .iter()
            .filter(|s| s.name == name && !s.points.is_empty())
            .collect();
        let score = |s: &SeriesHistory| {
            s.labels
                .iter()
                .filter(|(k, val)| self.alert.labels.get(*k) == Some(*val))
                .count()
        };
        v.sort_by_key(|s| std::cmp::Reverse(score(s)));
        // A series whose labels contradict the alert's is about something else.
        v.retain(|s| {
            !s.labels
                .iter()
                .any(|(k, val)| k != "host" && self.alert.labels.get(k).is_some_and(|a| a != val))
        });
        v
    }
}

/// One series as the book keeps it: name, labels, points.
type Kept = (String, Labels, VecDeque<Point>);

type FastHash = foldhash::fast::RandomState;

/// Recent series history per host, with times: what the hub and the
/// replayer remember for analysis. Every ingested sample passes through
/// here, so a known series is found by its [`SeriesKey`] (one hash, one
/// comparison) and nothing is allocated for it.
#[derive(Debug, Clone, Default)]
pub struct HistoryBook {
    /// Series → index in `kept`, or [`NOT_KEPT`] for a series without a
    /// `host` label.
    index: HashMap<SeriesKey, u32, FastHash>,
    kept: Vec<Kept>,
    hosts: HashMap<String, Vec<u32>, FastHash>,
}

const NOT_KEPT: u32 = u32::MAX;

impl HistoryBook {
    pub fn new() -> HistoryBook {
        HistoryBook::default()
    }

    /// Remembers a sample (samples without a `host` label are not kept).
    pub fn observe(&mut self, s: &Sample, at: Time) {
        if !s.labels.contains_key("host") {
            return;
        }
        self.observe_key(&SeriesKey::of(&s.name, &s.labels), s.value, at);
    }

    /// Remembers a sample given by series key.
    pub fn observe_key(&mut self, key: &SeriesKey, value: f64, at: Time) {
        let i = match self.index.get(key) {
            Some(&i) => i,
            // As many series as the engine takes, and no more: a client
            // inventing label values must not grow this without bound.
            None if self.index.len() >= crate::policy::eval::MAX_SERIES => return,
            None => {
                let i = match key.label("host") {
                    Some(host) => {
                        let i = self.kept.len() as u32;
                        self.kept
                            .push((key.name().to_string(), key.to_labels(), VecDeque::new()));
                        self.hosts.entry(host.to_string()).or_default().push(i);
                        i
                    }
                    None => NOT_KEPT,
                };
                self.index.insert(key.clone(), i);
                i
            }
        };
        let Some(entry) = self.kept.get_mut(i as usize) else {
            return;
        };
        let points = &mut entry.2;
        points.push_back(Point { at, value });
        while points
            .front()
            .is_some_and(|p| p.at < at - HISTORY || points.len() > MAX_POINTS)
        {
            points.pop_front();
        }
    }

    /// The host's series with their points up to `until`, ordered by name
    /// and then labels.
    pub fn host_series(&self, host: &str, until: Time) -> Vec<SeriesHistory> {
        let Some(slots) = self.hosts.get(host) else {
            return Vec::new();
        };
        let mut kept: Vec<&Kept> = slots
            .iter()
            .filter_map(|&i| self.kept.get(i as usize))
            .collect();
        kept.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        kept.into_iter()
            .filter_map(|(name, labels, pts)| {
                let points: Vec<Point> = pts
                    .iter()
                    .filter(|p| p.at <= until && p.at >= until - HISTORY)
                    .copied()
                    .collect();
                (!points.is_empty()).then(|| SeriesHistory {
                    name: name.clone(),
                    labels: labels.clone(),
                    points,
                })
            })
            .collect()
    }
}

/// What the builder reads besides the alert.
pub struct Context<'a> {
    pub history: &'a HistoryBook,
    /// Every alert known (firing or recently resolved).
    pub alerts: &'a [AlertFacts],
    /// Records in order (the builder keeps those about the host).
    pub records: &'a [Record],
    pub windows: &'a [MaintenanceWindow],
    pub inventory: &'a Inventory,
}

impl AnalysisInput {
    /// Builds the input for `alert` as it was known at `at`.
    pub fn build(alert: AlertFacts, at: Time, ctx: &Context<'_>) -> AnalysisInput {
        let host = alert.host.clone();
        let mut host_labels = host
            .as_deref()
            .map(|h| ctx.inventory.facts(h))
            .unwrap_or_default();
        host_labels.remove("host");
        let group = host_labels.get("group").cloned();
        let series = host
            .as_deref()
            .map(|h| ctx.history.host_series(h, at))
            .unwrap_or_default();
        let group_of = |a: &AlertFacts| {
            a.host
                .as_deref()
                .and_then(|h| ctx.inventory.hosts.get(h))
                .and_then(|h| h.labels.get("group"))
                .or(a.labels.get("group"))
                .cloned()
        };
        let mut related: Vec<AlertFacts> = ctx
            .alerts
            .iter()
            .filter(|a| a.fingerprint != alert.fingerprint && a.since <= at)
            .filter(|a| a.status == AlertStatus::Firing || a.since >= at - RELATED_WINDOW)
            .filter_map(|a| {
                let relation = if host.is_some() && a.host == host {
                    "host"
                } else if group.is_some() && group_of(a) == group {
                    "group"
                } else if a.since >= at - FLEET_WINDOW {
                    "fleet"
                } else {
                    return None;
                };
                let mut a = a.clone();
                a.relation = Some(relation.into());
                Some(a)
            })
            .collect();
        // The nearest first when there are too many.
        related.sort_by_key(|a| (a.relation.as_deref() == Some("fleet"), at - a.since));
        related.truncate(MAX_RELATED);
        let mut records: Vec<Record> = match host.as_deref() {
            Some(h) => ctx
                .records
                .iter()
                .rev()
                .filter(|r| r.at <= at && r.at >= at - RECORD_WINDOW)
                .filter(|r| r.target.as_deref() == Some(h))
                .take(MAX_RECORDS)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        records.reverse();
        let windows = match host.as_deref() {
            Some(h) => {
                let mut facts = ctx.inventory.facts(h);
                facts.insert("host".into(), h.to_string());
                occurrences(ctx.windows, &facts, at)
            }
            None => Vec::new(),
        };
        AnalysisInput {
            at,
            alert,
            host_labels,
            series,
            related,
            records,
            windows,
        }
    }
}

/// The window occurrences covering the host between `at - WINDOW_LOOKBACK`
/// and `at`.
fn occurrences(windows: &[MaintenanceWindow], facts: &Labels, at: Time) -> Vec<WindowOccurrence> {
    let mut out: Vec<WindowOccurrence> = Vec::new();
    for w in windows.iter().filter(|w| w.selects(facts)) {
        let step = w.duration.min(TimeDelta::minutes(5));
        let mut t = at - WINDOW_LOOKBACK;
        while t <= at {
            match w.active_until(t) {
                Some(end) => {
                    let occ = WindowOccurrence {
                        reason: w.spec.reason.clone(),
                        schedule: w.spec.schedule.clone(),
                        start: end - w.duration,
                        end,
                    };
                    if !out.contains(&occ) {
                        out.push(occ);
                    }
                    t = end.max(t + TimeDelta::seconds(1));
                }
                None => t += step,
            }
        }
    }
    out.sort_by_key(|o| o.start);
    out
}
