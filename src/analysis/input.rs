//! What an analyser sees: the alert, the host's recent series history, the
//! other alerts on the host or its group, the recent records about the host
//! and the maintenance windows around the moment it fired. Built the same
//! way by the hub (live) and by `vigil rca eval` (from a replay), so that an
//! evaluation measures what the console shows.
//!
//! Plain data and pure functions: no clock reads, no I/O.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

use chrono::TimeDelta;
use hashbrown::HashTable;
use serde::Serialize;

use super::{Evidence, EvidenceKind, series_key};
use crate::engine::{Alert, Inventory, MaintenanceWindow};
use crate::model::{AlertStatus, Labels, Record, Sample, SeriesKey, Severity, Time};
use crate::policy::eval::SeriesBudget;

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

/// One series as the book keeps it: its key (empty for a free slot) and
/// its points.
#[derive(Debug, Clone)]
struct Kept {
    key: SeriesKey,
    points: VecDeque<Point>,
}

type FastHash = foldhash::fast::RandomState;

/// Points kept across all series: with many series each keeps fewer (never
/// fewer than [`MIN_POINTS`], never more than [`MAX_POINTS`]), so that the
/// history stays near 200 MB however many series come.
pub const POINT_BUDGET: usize = 8_000_000;
/// Points a series keeps however many series there are.
pub const MIN_POINTS: usize = 8;

/// Recent series history per host, with times: what the hub and the
/// replayer remember for analysis. Every ingested sample passes through
/// here, so a known series is found by its [`SeriesKey`] (one hash, one
/// comparison) and nothing is allocated for it.
///
/// Bounded like the evaluator ([`SeriesBudget`]): a series is stored once
/// (the index holds its slot number), a series with no sample for `ttl` is
/// evicted by [`HistoryBook::evict_idle`] and its slot reused, a metric with
/// `per_metric` series (or a book with `total`) takes no new ones, and the
/// points per series shrink as series grow ([`POINT_BUDGET`]).
#[derive(Debug, Clone, Default)]
pub struct HistoryBook {
    /// Slots in `kept` by key (hashed with `hasher`).
    index: HashTable<u32>,
    hasher: FastHash,
    kept: Vec<Kept>,
    /// Free slots, the lowest reused first (so that `kept` can shrink from
    /// its end).
    free: BTreeSet<u32>,
    hosts: HashMap<String, Vec<u32>, FastHash>,
    per_metric: HashMap<Box<str>, u32, FastHash>,
    live: usize,
    budget: SeriesBudget,
    sweep: usize,
    evicted: u64,
}

fn hash_key(h: &FastHash, key: &SeriesKey) -> u64 {
    let mut s = h.build_hasher();
    s.write(key.as_bytes());
    s.finish()
}

impl HistoryBook {
    pub fn new() -> HistoryBook {
        HistoryBook::default()
    }

    /// Sets how many series the book keeps and for how long without a
    /// sample (series already kept stay).
    pub fn set_budget(&mut self, budget: SeriesBudget) {
        self.budget = budget;
    }

    /// Series kept now.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Series evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Points each series keeps now.
    pub fn points_per_series(&self) -> usize {
        (POINT_BUDGET / self.live.max(1)).clamp(MIN_POINTS, MAX_POINTS)
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
        let h = hash_key(&self.hasher, key);
        let i = match self.index.find(h, |&i| self.kept[i as usize].key == *key) {
            Some(&i) => i,
            None => match self.add(key, h) {
                Some(i) => i,
                None => return,
            },
        };
        let cap = self.points_per_series();
        let points = &mut self.kept[i as usize].points;
        points.push_back(Point { at, value });
        while points
            .front()
            .is_some_and(|p| p.at < at - HISTORY || points.len() > cap)
        {
            points.pop_front();
        }
        if points.capacity() > 2 * cap {
            points.shrink_to(cap);
        }
    }

    /// Keeps a new series when it has a `host` label and the budget has
    /// room for it.
    fn add(&mut self, key: &SeriesKey, h: u64) -> Option<u32> {
        let host = key.label("host")?;
        let name = key.name();
        // As many series as the engine takes, and no more: a client
        // inventing label values must not grow this without bound.
        let of_metric = self.per_metric.get(name).copied().unwrap_or(0) as usize;
        if self.live >= self.budget.total || of_metric >= self.budget.per_metric {
            return None;
        }
        let kept = Kept {
            key: key.clone(),
            points: VecDeque::with_capacity(1),
        };
        let i = match self.free.pop_first() {
            Some(i) => {
                self.kept[i as usize] = kept;
                i
            }
            None => {
                self.kept.push(kept);
                (self.kept.len() - 1) as u32
            }
        };
        match self.hosts.get_mut(host) {
            Some(v) => v.push(i),
            None => {
                self.hosts.insert(host.to_string(), vec![i]);
            }
        }
        *self.per_metric.entry(name.into()).or_default() += 1;
        self.live += 1;
        let (kept, hasher) = (&self.kept, &self.hasher);
        self.index
            .insert_unique(h, i, |&x| hash_key(hasher, &kept[x as usize].key));
        Some(i)
    }

    /// One eviction step: looks at up to `max_scan` series from where the
    /// last step stopped and forgets those with no sample for the budget's
    /// `ttl`. Returns how many it forgot.
    pub fn evict_idle(&mut self, now: Time, max_scan: usize) -> usize {
        let cutoff = crate::units::sub_time(now, self.budget.ttl);
        let n = self.kept.len();
        let mut hosts: Vec<String> = Vec::new();
        let mut evicted = 0;
        for _ in 0..max_scan.min(n) {
            if self.sweep >= n {
                self.sweep = 0;
            }
            let i = self.sweep;
            self.sweep += 1;
            let k = &self.kept[i];
            if k.key.is_empty() || k.points.back().is_some_and(|p| p.at >= cutoff) {
                continue;
            }
            let k = std::mem::replace(
                &mut self.kept[i],
                Kept {
                    key: SeriesKey::empty(),
                    points: VecDeque::new(),
                },
            );
            let h = hash_key(&self.hasher, &k.key);
            if let Ok(e) = self.index.find_entry(h, |&x| x as usize == i) {
                e.remove();
            }
            let name = k.key.name();
            if let Some(c) = self.per_metric.get_mut(name) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    self.per_metric.remove(name);
                }
            }
            if let Some(host) = k.key.label("host")
                && !hosts.iter().any(|x| x == host)
            {
                hosts.push(host.to_string());
            }
            self.free.insert(i as u32);
            self.live -= 1;
            evicted += 1;
        }
        // Slots freed in this step are reused only after it.
        for host in hosts {
            if let Some(v) = self.hosts.get_mut(&host) {
                v.retain(|&i| !self.kept[i as usize].key.is_empty());
                if v.is_empty() {
                    self.hosts.remove(&host);
                }
            }
        }
        // Free slots at the end go, and memory of a mostly empty table.
        let n = crate::policy::eval::free_tail(&mut self.free, self.kept.len());
        self.kept.truncate(n);
        if self.kept.capacity() > 2 * self.kept.len() + 1024 {
            self.kept.shrink_to_fit();
        }
        if evicted > 0 && self.index.len() * 4 < self.index.capacity() {
            let (kept, hasher) = (&self.kept, &self.hasher);
            self.index
                .shrink_to_fit(|&x| hash_key(hasher, &kept[x as usize].key));
        }
        self.evicted += evicted as u64;
        evicted
    }

    /// The host's series with their points up to `until`, ordered by name
    /// and then labels.
    pub fn host_series(&self, host: &str, until: Time) -> Vec<SeriesHistory> {
        let Some(slots) = self.hosts.get(host) else {
            return Vec::new();
        };
        let mut out: Vec<SeriesHistory> = slots
            .iter()
            .filter_map(|&i| self.kept.get(i as usize))
            .filter_map(|k| {
                let points: Vec<Point> = k
                    .points
                    .iter()
                    .filter(|p| p.at <= until && p.at >= until - HISTORY)
                    .copied()
                    .collect();
                (!points.is_empty()).then(|| SeriesHistory {
                    name: k.key.name().to_string(),
                    labels: k.key.to_labels(),
                    points,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        out
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

#[cfg(test)]
mod history_tests {
    use super::*;

    fn t(secs: i64) -> Time {
        "2026-01-01T00:00:00Z".parse::<Time>().unwrap() + TimeDelta::seconds(secs)
    }

    fn key(name: &str, host: &str, m: &str) -> SeriesKey {
        SeriesKey::new(name, [("host", host), ("mountpoint", m)])
    }

    fn budget(ttl: i64, per_metric: usize, total: usize) -> SeriesBudget {
        SeriesBudget {
            ttl: TimeDelta::seconds(ttl),
            per_metric,
            total,
        }
    }

    #[test]
    fn idle_series_are_forgotten_and_their_slots_reused() {
        let mut b = HistoryBook::new();
        b.set_budget(budget(60, 100, 100));
        b.observe_key(&key("disk", "h1", "/"), 1.0, t(0));
        b.observe_key(&key("disk", "h1", "/var"), 2.0, t(0));
        b.observe_key(&key("disk", "h2", "/"), 3.0, t(50));
        b.observe_key(&key("disk", "h1", "/"), 1.5, t(40));
        assert_eq!(b.len(), 3);
        assert_eq!(b.evict_idle(t(90), 100), 1, "h1 /var had no sample for 60s");
        assert_eq!((b.len(), b.evicted()), (2, 1));
        let h1 = b.host_series("h1", t(90));
        assert_eq!(h1.len(), 1);
        assert_eq!(h1[0].labels["mountpoint"], "/");
        assert_eq!(h1[0].points.len(), 2);
        assert_eq!(b.evict_idle(t(200), 100), 2);
        assert!(b.host_series("h1", t(200)).is_empty());
        assert!(b.hosts.is_empty(), "hosts without series are dropped");
        // New series reuse the slots.
        b.observe_key(&key("disk", "h3", "/"), 4.0, t(300));
        b.observe_key(&key("disk", "h4", "/"), 5.0, t(300));
        b.observe_key(&key("disk", "h5", "/"), 6.0, t(300));
        assert_eq!(b.kept.len(), 3);
        let h4 = b.host_series("h4", t(300));
        assert_eq!((h4.len(), h4[0].points[0].value), (1, 5.0));
    }

    #[test]
    fn the_budget_bounds_series_per_metric_and_points_per_series() {
        let mut b = HistoryBook::new();
        b.set_budget(budget(3600, 2, 3));
        for h in ["h1", "h2", "h3"] {
            b.observe_key(&key("disk", h, "/"), 1.0, t(0));
        }
        assert_eq!(b.len(), 2, "at most 2 series of a metric");
        b.observe_key(&key("load", "h1", ""), 1.0, t(0));
        b.observe_key(&key("cpu", "h1", ""), 1.0, t(0));
        assert_eq!(b.len(), 3, "at most 3 in all");
        // Samples without a host are not kept (and not indexed).
        b.observe_key(&SeriesKey::new("up", [("job", "x")]), 1.0, t(0));
        assert_eq!(b.len(), 3);
        // Points per series shrink as series grow.
        assert_eq!(b.points_per_series(), MAX_POINTS);
        b.live = POINT_BUDGET / 10;
        assert_eq!(b.points_per_series(), 10.max(MIN_POINTS));
        for i in 0..50 {
            b.observe_key(&key("disk", "h1", "/"), f64::from(i), t(i64::from(i)));
        }
        let h1 = b.host_series("h1", t(100));
        let disk = h1.iter().find(|s| s.name == "disk").unwrap();
        assert_eq!(disk.points.len(), 10);
        assert_eq!(disk.points[9].value, 49.0);
        b.live = 1_000_000;
        assert_eq!(b.points_per_series(), MIN_POINTS);
    }
}
