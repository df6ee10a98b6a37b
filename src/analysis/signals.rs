//! What the heuristic looks for in an analysis input: the alert's resource
//! and primary series, restarts of the target, maintenance windows and
//! scheduled jobs, traffic surges, alerts across the group, failing
//! dependencies, top consumers, growing logs and data. Each finding comes
//! as evidence items taken from the input.
//!
//! Reads the input only; the heuristic decides what the findings mean.

use chrono::TimeDelta;

use super::input::{AlertFacts, AnalysisInput, Point, SeriesHistory, WindowOccurrence};
use super::trend::{Shape, Trend, fit};
use super::{Evidence, EvidenceKind, fmt_value};
use crate::model::{Record, RecordKind, Time};

/// Recent actions on the target within this window count as restarts.
pub const RESTART_WINDOW: TimeDelta = TimeDelta::minutes(30);
/// Out-of-memory kills within this window count towards a crash loop.
pub const OOM_WINDOW: TimeDelta = TimeDelta::hours(1);
/// What the alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Memory,
    Disk,
    Service,
    LogFile,
    Zombies,
    Pool,
    Other,
}

/// The resource and the metric of an alert (from its condition when it has
/// one, else from its name).
pub fn resource_of(a: &AlertFacts) -> (Resource, Option<String>) {
    let metric = a.condition.as_deref().and_then(|c| {
        let m: String = c
            .trim_start_matches(['{', ' ', '('])
            .chars()
            .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_' || *ch == ':')
            .collect();
        (!m.is_empty()).then_some(m)
    });
    let hay = format!(
        "{} {}",
        a.name.to_ascii_lowercase(),
        metric.as_deref().unwrap_or("")
    );
    let has = |w: &[&str]| w.iter().any(|x| hay.contains(x));
    let r = if has(&["zombie", "defunct"]) {
        Resource::Zombies
    } else if has(&["pool", "connection"]) {
        Resource::Pool
    } else if has(&["log"]) && has(&["file", "size", "large", "bytes"]) {
        Resource::LogFile
    } else if has(&["disk", "filesystem", "space", "volume", "inode"]) {
        Resource::Disk
    } else if has(&["mem", "oom"]) {
        Resource::Memory
    } else if has(&[
        "down",
        "service_up",
        "crash",
        "unavailable",
        "restart",
        "dead",
    ]) {
        Resource::Service
    } else {
        Resource::Other
    };
    let default = match r {
        Resource::Memory => Some("memory_used_percent"),
        Resource::Disk => Some("disk_used_percent"),
        Resource::Service => Some("service_up"),
        Resource::LogFile => Some("log_file_bytes"),
        Resource::Zombies => Some("zombie_processes"),
        Resource::Pool => Some("connection_pool_used_ratio"),
        Resource::Other => None,
    };
    (r, metric.or(default.map(str::to_string)))
}

pub(super) fn limit_of(metric: &str) -> Option<f64> {
    if metric.ends_with("_percent") {
        Some(100.0)
    } else if metric.ends_with("_ratio") {
        Some(1.0)
    } else {
        None
    }
}

pub(super) fn ev_series(s: &SeriesHistory, p: Point, note: impl Into<String>) -> Evidence {
    Evidence {
        kind: EvidenceKind::Series,
        signal: s.key(),
        value: fmt_value(p.value),
        at: Some(p.at),
        note: note.into(),
    }
}

pub(super) fn ev_alert(a: &AlertFacts, note: impl Into<String>) -> Evidence {
    Evidence {
        kind: EvidenceKind::Alert,
        signal: a.name.clone(),
        value: a.host.clone().unwrap_or_default(),
        at: Some(a.since),
        note: note.into(),
    }
}

pub(super) fn ev_record(r: &Record, note: impl Into<String>) -> Evidence {
    Evidence {
        kind: EvidenceKind::Record,
        signal: r.kind.as_str().into(),
        value: r.seq.to_string(),
        at: Some(r.at),
        note: note.into(),
    }
}

pub(super) fn ev_window(w: &WindowOccurrence, note: impl Into<String>) -> Evidence {
    Evidence {
        kind: EvidenceKind::Window,
        signal: w.signal().to_string(),
        value: w.schedule.clone(),
        at: Some(w.start),
        note: note.into(),
    }
}

pub(super) fn ev_label(k: &str, v: &str, note: impl Into<String>) -> Evidence {
    Evidence {
        kind: EvidenceKind::Label,
        signal: k.into(),
        value: v.into(),
        at: None,
        note: note.into(),
    }
}

pub(super) fn fmt_eta(d: TimeDelta) -> String {
    let m = d.num_minutes();
    if m < 120 {
        format!("{m}m")
    } else if m < 48 * 60 {
        format!("{:.1}h", m as f64 / 60.0)
    } else {
        format!("{:.1}d", m as f64 / 1440.0)
    }
}

/// A single log file under /var/log that logrotate can rotate (not a
/// directory such as the journal).
pub(super) fn is_log_file(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    path.starts_with("/var/log/")
        && !path.ends_with('/')
        && !path.contains("/journal")
        && (last.contains('.') || last.contains("log") || last == "messages")
}

pub(super) fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// What the heuristic found, before it decides.
pub(super) struct Findings<'a> {
    pub input: &'a AnalysisInput,
    pub resource: Resource,
    pub primary: Option<&'a SeriesHistory>,
    pub trend: Option<Trend>,
    /// The resource's capacity and contributors (filling resources only).
    pub weighing: Option<super::weigh::Weighing>,
}

const JOB_WORDS: [&str; 9] = [
    "backup",
    "cron",
    "batch",
    "snapshot",
    "dump",
    "vacuum",
    "compaction",
    "reindex",
    "etl",
];
const TRAFFIC_WORDS: [&str; 7] = [
    "request",
    "rps",
    "qps",
    "traffic",
    "throughput",
    "sessions",
    "active_users",
];
const DEP_WORDS: [&str; 10] = [
    "down",
    "unreachable",
    "unavailable",
    "dependency",
    "upstream",
    "backend",
    "database",
    "replication",
    "timeout",
    "refused",
];
const INFRA_WORDS: [&str; 16] = [
    "postgres",
    "mysql",
    "mariadb",
    "redis",
    "rabbit",
    "kafka",
    "etcd",
    "consul",
    "dns",
    "ldap",
    "database",
    "db",
    "memcache",
    "elasticsearch",
    "mongo",
    "zookeeper",
];
const DEP_PHRASES: [&str; 9] = [
    "connection refused",
    "could not connect",
    "cannot connect",
    "no route to host",
    "unreachable",
    "dependency",
    "upstream",
    "timed out connecting",
    "name resolution",
];
const DATA_DIRS: [&str; 14] = [
    "postgres",
    "pgdata",
    "mysql",
    "mariadb",
    "mongo",
    "elasticsearch",
    "opensearch",
    "clickhouse",
    "kafka",
    "influxdb",
    "prometheus",
    "etcd",
    "cassandra",
    "/data",
];

impl<'a> Findings<'a> {
    pub(super) fn new(input: &'a AnalysisInput) -> Findings<'a> {
        let (resource, metric) = resource_of(&input.alert);
        let primary = metric.as_deref().and_then(|m| {
            input
                .series_named(m)
                .into_iter()
                .max_by_key(|s| s.points.len())
        });
        let trend = primary.map(|s| fit(&s.points, limit_of(&s.name)));
        let weighing = super::weigh::weigh_fitted(
            input,
            resource,
            metric.as_deref().unwrap_or(""),
            primary,
            trend.as_ref(),
        );
        Findings {
            input,
            resource,
            primary,
            trend,
            weighing,
        }
    }

    pub(super) fn shape(&self) -> Shape {
        self.trend.as_ref().map_or(Shape::Insufficient, |t| t.shape)
    }

    /// When the trouble began: the onset of a step or spike, else the first
    /// point of a climb, else the alert's start.
    pub(super) fn onset(&self) -> Time {
        match &self.trend {
            Some(t) if matches!(t.shape, Shape::Spike | Shape::Step | Shape::Climb) => t.onset.at,
            _ => self.input.alert.since,
        }
    }

    /// Evidence for the primary series' shape.
    pub(super) fn trend_evidence(&self) -> Vec<Evidence> {
        let (Some(s), Some(t)) = (self.primary, &self.trend) else {
            return Vec::new();
        };
        match t.shape {
            Shape::Climb => vec![
                ev_series(
                    s,
                    t.onset,
                    format!("{} was {}", s.name, fmt_value(t.onset.value)),
                ),
                ev_series(
                    s,
                    t.last,
                    format!(
                        "{} reached {}: a steady climb of {:.2}/h (r²={:.2}){}",
                        s.name,
                        fmt_value(t.last.value),
                        t.slope_per_hour,
                        t.r2,
                        t.exhaustion
                            .map(|e| format!(", exhausted in about {}", fmt_eta(e)))
                            .unwrap_or_default()
                    ),
                ),
            ],
            Shape::Spike | Shape::Step => {
                let to = t.jump_to.unwrap_or(t.last);
                vec![
                    ev_series(
                        s,
                        t.onset,
                        format!("{} was {}", s.name, fmt_value(t.onset.value)),
                    ),
                    ev_series(
                        s,
                        to,
                        format!(
                            "{} jumped to {} (a {})",
                            s.name,
                            fmt_value(to.value),
                            if t.shape == Shape::Spike {
                                "spike"
                            } else {
                                "step"
                            }
                        ),
                    ),
                ]
            }
            _ => vec![ev_series(
                s,
                t.last,
                format!("{} is {}", s.name, fmt_value(t.last.value)),
            )],
        }
    }

    /// Restarts of the target in the last minutes: actions started on the
    /// host for the alert's service, and up/down flaps of the service.
    pub(super) fn restarts(&self) -> Vec<Evidence> {
        let input = self.input;
        let service = input.alert.labels.get("service");
        let mut out: Vec<Evidence> = input
            .records
            .iter()
            .filter(|r| r.at >= input.at - RESTART_WINDOW)
            .filter(|r| {
                matches!(
                    r.kind,
                    RecordKind::ActionStarted | RecordKind::ActionSucceeded
                )
            })
            .filter(|r| {
                r.runbook
                    .as_deref()
                    .is_some_and(|rb| rb.contains("restart") || rb == "memory_pressure")
            })
            .filter(|r| {
                let p = r.params.as_ref().and_then(|p| p.get("service"));
                service.is_none() || p.is_none() || p == service
            })
            .filter(|r| r.kind == RecordKind::ActionStarted)
            .map(|r| {
                ev_record(
                    r,
                    format!(
                        "{} ran on {} at {}",
                        r.runbook.as_deref().unwrap_or("a restart"),
                        r.target.as_deref().unwrap_or("the host"),
                        crate::model::fmt_time(&r.at)
                    ),
                )
            })
            .collect();
        // Up/down flaps of the service, and restart counters going up.
        for s in &input.series {
            let about_service =
                service.is_none() || s.labels.get("service").is_none_or(|v| Some(v) == service);
            if !about_service {
                continue;
            }
            let recent: Vec<Point> = s
                .points
                .iter()
                .filter(|p| p.at >= input.at - RESTART_WINDOW)
                .copied()
                .collect();
            if s.name == "service_up" || s.name == "up" {
                let ups: Vec<Point> = recent
                    .windows(2)
                    .filter(|w| w[0].value < 0.5 && w[1].value >= 0.5)
                    .map(|w| w[1])
                    .collect();
                if ups.len() >= 2 || (!out.is_empty() && !ups.is_empty()) {
                    for p in ups.iter().take(3) {
                        out.push(ev_series(
                            s,
                            *p,
                            "the service came back up, then died again",
                        ));
                    }
                }
            } else if s.name.to_ascii_lowercase().contains("oom") {
                // Repeated out-of-memory kills: the kernel kills it, it
                // comes back, it is killed again.
                let hour: Vec<&Point> = s
                    .points
                    .iter()
                    .filter(|p| p.at >= input.at - OOM_WINDOW)
                    .collect();
                if let (Some(a), Some(b)) = (hour.first(), hour.last())
                    && b.value - a.value >= 2.0
                {
                    out.push(ev_series(
                        s,
                        **a,
                        format!("{} was {}", s.name, fmt_value(a.value)),
                    ));
                    out.push(ev_series(
                        s,
                        **b,
                        format!(
                            "{} rose to {}: {} out-of-memory kills within the hour",
                            s.name,
                            fmt_value(b.value),
                            fmt_value(b.value - a.value)
                        ),
                    ));
                }
            } else if s.name.contains("restart")
                && let (Some(a), Some(b)) = (recent.first(), recent.last())
                && b.value - a.value >= 2.0
            {
                out.push(ev_series(
                    s,
                    *a,
                    format!("{} was {}", s.name, fmt_value(a.value)),
                ));
                out.push(ev_series(
                    s,
                    *b,
                    format!("{} rose to {} within minutes", s.name, fmt_value(b.value)),
                ));
            }
        }
        let name = input.alert.name.to_ascii_lowercase();
        if name.contains("crashloop") || name.contains("crash_loop") {
            out.push(ev_alert(&input.alert, "the source reports a crash loop"));
        }
        out
    }

    /// Maintenance windows or scheduled jobs covering the onset or now.
    pub(super) fn scheduled(&self) -> Vec<Evidence> {
        let input = self.input;
        let onset = self.onset();
        // A window is evidence when a sudden rise began inside it; a window
        // that merely covers the alert explains nothing.
        let sudden = matches!(self.shape(), Shape::Spike | Shape::Step);
        let mut out: Vec<Evidence> = input
            .windows
            .iter()
            .filter(|w| {
                sudden
                    && (w.covers(onset)
                        || self
                            .trend
                            .as_ref()
                            .and_then(|t| t.jump_to)
                            .is_some_and(|j| w.covers(j.at)))
            })
            .map(|w| {
                ev_window(
                    w,
                    format!(
                        "maintenance window \"{}\" was open ({} to {})",
                        w.signal(),
                        crate::model::fmt_time(&w.start),
                        crate::model::fmt_time(&w.end)
                    ),
                )
            })
            .collect();
        for s in &input.series {
            let n = s.name.to_ascii_lowercase();
            if !JOB_WORDS.iter().any(|w| n.contains(w)) {
                continue;
            }
            if let Some(p) = s
                .points
                .iter()
                .filter(|p| p.at >= onset - TimeDelta::minutes(15) && p.at <= input.at)
                .find(|p| p.value > 0.0)
            {
                out.push(ev_series(s, *p, format!("{} was running", s.name)));
            }
        }
        for (k, v) in input.alert.annotations.iter().chain(&input.alert.labels) {
            let lv = v.to_ascii_lowercase();
            if k != "job" && JOB_WORDS.iter().any(|w| lv.contains(w)) {
                out.push(ev_label(k, v, "the alert names a scheduled job"));
            }
        }
        out
    }

    /// Request rate well above its baseline around the onset, or the same
    /// alert on other hosts of the group at the same time.
    pub(super) fn traffic(&self) -> Vec<Evidence> {
        let input = self.input;
        let onset = self.onset();
        let mut out = Vec::new();
        for s in &input.series {
            let n = s.name.to_ascii_lowercase();
            if !TRAFFIC_WORDS.iter().any(|w| n.contains(w)) {
                continue;
            }
            // (the point to cite, the level): a counter's level is its rate.
            let counter = n.ends_with("_total") || n.ends_with("_count");
            let levels: Vec<(Point, f64)> = if counter {
                s.points
                    .windows(2)
                    .filter(|w| w[1].at > w[0].at && w[1].value >= w[0].value)
                    .map(|w| {
                        let secs = (w[1].at - w[0].at).num_milliseconds() as f64 / 1000.0;
                        (w[1], (w[1].value - w[0].value) / secs)
                    })
                    .collect()
            } else {
                s.points.iter().map(|p| (*p, p.value)).collect()
            };
            let before: Vec<f64> = levels
                .iter()
                .filter(|(p, _)| p.at < onset)
                .map(|(_, v)| *v)
                .collect();
            let base = median(before).or_else(|| levels.first().map(|(_, v)| *v));
            let peak = levels
                .iter()
                .filter(|(p, _)| p.at >= onset - TimeDelta::minutes(10))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let (Some(base), Some((peak_at, peak))) = (base, peak) else {
                continue;
            };
            if base > 0.0 && *peak >= 1.8 * base {
                if let Some((b, _)) = levels.iter().find(|(_, v)| *v <= base) {
                    out.push(ev_series(s, *b, format!("{} was at its baseline", s.name)));
                }
                out.push(ev_series(
                    s,
                    *peak_at,
                    format!(
                        "{} rose to {:.1}{} ({:.1}x its baseline)",
                        s.name,
                        peak,
                        if counter { "/s" } else { "" },
                        peak / base
                    ),
                ));
            }
        }
        out
    }

    /// The same alert on other hosts of the group, starting within 15
    /// minutes of this one.
    pub(super) fn fleet_wide(&self) -> Vec<Evidence> {
        let input = self.input;
        let mut hosts = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for a in &input.related {
            if a.name == input.alert.name
                && a.host != input.alert.host
                && (a.since - input.alert.since).abs() <= TimeDelta::minutes(15)
                && hosts.insert(a.host.clone())
            {
                out.push(ev_alert(a, "the same alert on another host of the group"));
            }
        }
        if hosts.len() >= 2 { out } else { Vec::new() }
    }

    /// Signs that something this service depends on failed first.
    pub(super) fn dependency(&self) -> Vec<Evidence> {
        let input = self.input;
        let mut out = Vec::new();
        for a in &input.related {
            if a.since < input.at - TimeDelta::minutes(30)
                && a.status != crate::model::AlertStatus::Firing
            {
                continue;
            }
            let hay = format!(
                "{} {}",
                a.name.to_ascii_lowercase(),
                a.labels
                    .keys()
                    .map(|k| k.to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let same_thing = a.name == input.alert.name
                && a.labels.get("service") == input.alert.labels.get("service");
            let depends = if a.relation.as_deref() == Some("fleet") {
                // Outside the group, only what looks like shared infrastructure.
                let what = format!(
                    "{} {} {} {}",
                    a.name,
                    a.labels.get("service").map(String::as_str).unwrap_or(""),
                    a.labels.get("role").map(String::as_str).unwrap_or(""),
                    a.host.as_deref().unwrap_or("")
                )
                .to_ascii_lowercase();
                a.since <= input.alert.since && INFRA_WORDS.iter().any(|w| what.contains(w))
            } else {
                DEP_WORDS.iter().any(|w| hay.contains(w))
            };
            if !same_thing && depends {
                out.push(ev_alert(
                    a,
                    format!(
                        "{} on {} started at {}",
                        a.name,
                        a.host.as_deref().unwrap_or("another target"),
                        crate::model::fmt_time(&a.since)
                    ),
                ));
            }
        }
        for s in &input.series {
            let n = s.name.to_ascii_lowercase();
            let probe = n.contains("dependency")
                || n.contains("upstream")
                || n.contains("backend")
                || n == "probe_success"
                || n.ends_with("_reachable");
            if probe
                && (n.ends_with("up") || n.contains("success") || n.contains("reachable"))
                && let Some(p) = s.last()
                && p.value < 0.5
            {
                out.push(ev_series(
                    s,
                    p,
                    format!("{} is {}", s.name, fmt_value(p.value)),
                ));
            }
            let slow = (n.contains("dependency") || n.contains("upstream") || n.contains("db_"))
                && (n.contains("latency") || n.contains("duration") || n.contains("error"));
            if slow {
                let base = median(
                    s.points
                        .iter()
                        .filter(|p| p.at < self.onset())
                        .map(|p| p.value)
                        .collect(),
                );
                if let (Some(base), Some(p)) = (base, s.last())
                    && base > 0.0
                    && p.value >= 3.0 * base
                {
                    out.push(ev_series(
                        s,
                        p,
                        format!("{} is {:.1}x its baseline", s.name, p.value / base),
                    ));
                }
            }
        }
        for (k, v) in input.alert.annotations.iter().chain(&input.alert.labels) {
            let lk = k.to_ascii_lowercase();
            let lv = v.to_ascii_lowercase();
            if lk.contains("dependency")
                || lk.contains("upstream")
                || DEP_PHRASES.iter().any(|p| lv.contains(p))
            {
                out.push(ev_label(k, v, "the alert names a failing dependency"));
            }
        }
        out
    }

    /// The host's memory for the service climbing to near full before the
    /// service died (an out-of-memory kill).
    pub(super) fn memory_before_death(&self) -> Option<(&'a SeriesHistory, Trend)> {
        let input = self.input;
        let service = input.alert.labels.get("service");
        input
            .series
            .iter()
            .filter(|s| s.name.contains("mem") && s.name.ends_with("_percent"))
            .filter(|s| s.labels.get("service").is_none_or(|v| Some(v) == service))
            .find_map(|s| {
                let pts: Vec<Point> = s
                    .points
                    .iter()
                    .filter(|p| p.at <= input.alert.since)
                    .copied()
                    .collect();
                let t = fit(&pts, Some(100.0));
                (t.shape == Shape::Climb && t.last.value >= 85.0
                    || pts.iter().any(|p| p.value >= 95.0))
                .then_some((s, t))
                .filter(|(_, t)| t.shape != Shape::Insufficient)
            })
    }

    /// Top consumers named in labels or annotations, classified as logs or
    /// data: (evidence, is_log, is_data, path).
    pub(super) fn consumers(&self) -> Vec<(Evidence, bool, bool, String)> {
        let input = self.input;
        let mut out = Vec::new();
        let mut look = |k: &str, v: &str, from_series: Option<(&SeriesHistory, Point)>| {
            let lk = k.to_ascii_lowercase();
            let keyed = [
                "top", "consumer", "largest", "biggest", "heaviest", "culprit", "path", "dir",
            ]
            .iter()
            .any(|w| lk.contains(w));
            // Free text (a description) counts when it names a path.
            let names_path = !lk.contains("url")
                && v.split_whitespace().any(|w| {
                    w.starts_with("/var/") || w.starts_with("/srv/") || w.starts_with("/data")
                });
            if !keyed && !names_path {
                return;
            }
            let lv = v.to_ascii_lowercase();
            let is_log = lv.contains("/var/log")
                || lv.contains(".log")
                || lv.contains("journal")
                || lv.contains("/log");
            let is_data = !is_log && DATA_DIRS.iter().any(|d| lv.contains(d));
            if !is_log && !is_data {
                return;
            }
            let path = v
                .split(|c: char| c.is_whitespace() || ",;()\"'".contains(c))
                .find(|w| w.starts_with('/'))
                .unwrap_or("")
                .to_string();
            let note = format!("{k} is {v}");
            let ev = match from_series {
                Some((s, p)) => ev_series(s, p, note),
                None => ev_label(k, v, note),
            };
            out.push((ev, is_log, is_data, path));
        };
        for m in [&input.alert.labels, &input.alert.annotations] {
            for (k, v) in m.iter() {
                look(k, v, None);
            }
        }
        if let Some(s) = self.primary
            && let Some(p) = s.last()
        {
            for (k, v) in &s.labels {
                if k != "mountpoint" {
                    look(k, v, Some((s, p)));
                }
            }
        }
        out
    }

    /// A growing log file on the host (series or a related alert).
    pub(super) fn growing_logs(&self) -> Vec<(Evidence, String)> {
        let input = self.input;
        let mut out = Vec::new();
        for a in &input.related {
            if a.host == input.alert.host && resource_of(a).0 == Resource::LogFile {
                let path = a.labels.get("path").cloned().unwrap_or_default();
                out.push((ev_alert(a, format!("a large log file {path}")), path));
            }
        }
        for s in input
            .series
            .iter()
            .filter(|s| s.name.contains("log") && s.name.contains("bytes"))
        {
            let t = fit(&s.points, None);
            if matches!(t.shape, Shape::Climb | Shape::Step | Shape::Spike)
                && let Some(p) = s.last()
            {
                out.push((
                    ev_series(s, p, format!("{} grew to {}", s.name, fmt_value(p.value))),
                    s.labels.get("path").cloned().unwrap_or_default(),
                ));
            }
        }
        out
    }

    /// Database or data-volume growth (series or the mount point).
    pub(super) fn growing_data(&self) -> Vec<Evidence> {
        let input = self.input;
        let mut out = Vec::new();
        for s in &input.series {
            let n = s.name.to_ascii_lowercase();
            let data = (n.contains("database")
                || n.contains("db_")
                || n.contains("table")
                || n.contains("wal")
                || n.contains("data_bytes")
                || n.contains("index"))
                && (n.contains("bytes") || n.contains("size"));
            if data {
                let t = fit(&s.points, None);
                if matches!(t.shape, Shape::Climb | Shape::Step | Shape::Spike) {
                    out.push(ev_series(
                        s,
                        t.last,
                        format!("{} grew to {}", s.name, fmt_value(t.last.value)),
                    ));
                }
            }
        }
        if let Some(mp) = input.alert.labels.get("mountpoint") {
            let l = mp.to_ascii_lowercase();
            if mp != "/" && DATA_DIRS.iter().any(|d| l.contains(d)) {
                out.push(ev_label(
                    "mountpoint",
                    mp,
                    "the file system holds database data",
                ));
            }
        }
        out
    }
}
