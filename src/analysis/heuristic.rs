//! The built-in analyser: offline, deterministic and fast. It fits the trend
//! of the alert's series (steady climb, step, spike; time to exhaustion),
//! looks for other alerts on the same host or group, recent actions on the
//! target (restarts in the last minutes mean a crash loop, where another
//! restart is the wrong fix), maintenance windows and scheduled jobs (a
//! backup spike is not a leak), and top consumers when labels carry them.
//!
//! Every evidence item it cites is taken from the input; every runbook it
//! recommends goes through `analysis::check`. It never acts.

use std::sync::Arc;

use chrono::TimeDelta;

use super::input::{AlertFacts, AnalysisInput, Point, SeriesHistory, WindowOccurrence};
use super::{
    Analyser, AnalyserKind, Analysis, Cause, Evidence, EvidenceKind, Recommendation, fmt_value,
    resolve_recommendation,
};
use crate::model::{Record, RecordKind, Time};
use crate::runbook::Catalog;

/// Recent actions on the target within this window count as restarts.
pub const RESTART_WINDOW: TimeDelta = TimeDelta::minutes(30);
/// A rise within this span counts as one jump.
pub const JUMP_SPAN: TimeDelta = TimeDelta::minutes(30);
/// A rise that happened within this long before the alert is a spike.
pub const SPIKE_WINDOW: TimeDelta = TimeDelta::hours(1);

/// The shape of a series' recent history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Fewer than three points: nothing to fit.
    Insufficient,
    Flat,
    Falling,
    /// Rising steadily (a good linear fit over at least 30 minutes).
    Climb,
    /// One sudden rise long enough ago that the level stayed.
    Step,
    /// One sudden rise shortly before the alert.
    Spike,
    /// Up and down without a clear shape.
    Noisy,
}

/// The fitted trend of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub shape: Shape,
    /// Least-squares slope, per hour.
    pub slope_per_hour: f64,
    /// Coefficient of determination of the linear fit.
    pub r2: f64,
    /// Where the rise began (the first point of a climb, the point before
    /// the jump of a step or spike).
    pub onset: Point,
    /// The point the jump reached (step and spike).
    pub jump_to: Option<Point>,
    pub last: Point,
    /// Time until the series reaches its limit at the fitted slope.
    pub exhaustion: Option<TimeDelta>,
}

/// Fits a trend to points (oldest first). `limit` is the value at which
/// the resource is exhausted (100 for a percentage), when there is one.
pub fn fit(points: &[Point], limit: Option<f64>) -> Trend {
    let first = points.first().copied().unwrap_or(Point {
        at: Time::default(),
        value: 0.0,
    });
    let last = points.last().copied().unwrap_or(first);
    let mut t = Trend {
        shape: Shape::Insufficient,
        slope_per_hour: 0.0,
        r2: 0.0,
        onset: first,
        jump_to: None,
        last,
        exhaustion: None,
    };
    if points.len() == 2 && last.value > first.value * 1.3 && last.value - first.value > 1e-9 {
        // Two points: only a large rise says anything (a jump between them).
        t.jump_to = Some(last);
        t.shape = if last.at - first.at <= SPIKE_WINDOW {
            Shape::Spike
        } else {
            Shape::Step
        };
        return t;
    }
    if points.len() < 3 {
        return t;
    }
    let n = points.len() as f64;
    let xs: Vec<f64> = points
        .iter()
        .map(|p| (p.at - first.at).num_milliseconds() as f64 / 3_600_000.0)
        .collect();
    let mx = xs.iter().sum::<f64>() / n;
    let my = points.iter().map(|p| p.value).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, p) in xs.iter().zip(points) {
        sxy += (x - mx) * (p.value - my);
        sxx += (x - mx) * (x - mx);
        syy += (p.value - my) * (p.value - my);
    }
    if sxx > 0.0 {
        t.slope_per_hour = sxy / sxx;
        t.r2 = if syy > 0.0 {
            (sxy * sxy) / (sxx * syy)
        } else {
            0.0
        };
    }
    let (min, max) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.value), hi.max(p.value))
    });
    let range = max - min;
    if range <= 1e-9 * max.abs().max(1.0) {
        t.shape = Shape::Flat;
        return t;
    }
    // The largest rise within any 30 minutes: a jump, even when sampled
    // several times on the way up.
    let (mut from, mut to, mut jump) = (0, 0, f64::MIN);
    for i in 0..points.len() {
        for j in i + 1..points.len() {
            if points[j].at - points[i].at > JUMP_SPAN {
                break;
            }
            let d = points[j].value - points[i].value;
            if d > jump {
                (from, to, jump) = (i, j, d);
            }
        }
    }
    let span = last.at - first.at;
    if jump >= 0.6 * range && last.value >= points[from].value + 0.5 * jump {
        t.onset = points[from];
        t.jump_to = Some(points[to]);
        t.shape = if last.at - points[from].at <= SPIKE_WINDOW {
            Shape::Spike
        } else {
            Shape::Step
        };
    } else if t.slope_per_hour > 0.0
        && t.r2 >= 0.6
        && span >= TimeDelta::minutes(30)
        && last.value > first.value
    {
        t.shape = Shape::Climb;
    } else if t.slope_per_hour < 0.0 && t.r2 >= 0.6 {
        t.shape = Shape::Falling;
    } else {
        t.shape = Shape::Noisy;
    }
    if let Some(limit) = limit
        && t.slope_per_hour > 0.0
        && last.value < limit
    {
        let hours = (limit - last.value) / t.slope_per_hour;
        if hours.is_finite() && hours < 24.0 * 365.0 {
            t.exhaustion = Some(TimeDelta::milliseconds((hours * 3_600_000.0) as i64));
        }
    }
    t
}

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

fn limit_of(metric: &str) -> Option<f64> {
    if metric.ends_with("_percent") {
        Some(100.0)
    } else if metric.ends_with("_ratio") {
        Some(1.0)
    } else {
        None
    }
}

fn ev_series(s: &SeriesHistory, p: Point, note: impl Into<String>) -> Evidence {
    Evidence {
        kind: EvidenceKind::Series,
        signal: s.key(),
        value: fmt_value(p.value),
        at: Some(p.at),
        note: note.into(),
    }
}

fn ev_alert(a: &AlertFacts, note: impl Into<String>) -> Evidence {
    Evidence {
        kind: EvidenceKind::Alert,
        signal: a.name.clone(),
        value: a.host.clone().unwrap_or_default(),
        at: Some(a.since),
        note: note.into(),
    }
}

fn ev_record(r: &Record, note: impl Into<String>) -> Evidence {
    Evidence {
        kind: EvidenceKind::Record,
        signal: r.kind.as_str().into(),
        value: r.seq.to_string(),
        at: Some(r.at),
        note: note.into(),
    }
}

fn ev_window(w: &WindowOccurrence, note: impl Into<String>) -> Evidence {
    Evidence {
        kind: EvidenceKind::Window,
        signal: w.signal().to_string(),
        value: w.schedule.clone(),
        at: Some(w.start),
        note: note.into(),
    }
}

fn ev_label(k: &str, v: &str, note: impl Into<String>) -> Evidence {
    Evidence {
        kind: EvidenceKind::Label,
        signal: k.into(),
        value: v.into(),
        at: None,
        note: note.into(),
    }
}

fn fmt_eta(d: TimeDelta) -> String {
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
fn is_log_file(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    path.starts_with("/var/log/")
        && !path.ends_with('/')
        && !path.contains("/journal")
        && (last.contains('.') || last.contains("log") || last == "messages")
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// What the heuristic found, before it decides.
struct Findings<'a> {
    input: &'a AnalysisInput,
    resource: Resource,
    primary: Option<&'a SeriesHistory>,
    trend: Option<Trend>,
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
    fn new(input: &'a AnalysisInput) -> Findings<'a> {
        let (resource, metric) = resource_of(&input.alert);
        let primary = metric.as_deref().and_then(|m| {
            input
                .series_named(m)
                .into_iter()
                .max_by_key(|s| s.points.len())
        });
        let trend = primary.map(|s| fit(&s.points, limit_of(&s.name)));
        Findings {
            input,
            resource,
            primary,
            trend,
        }
    }

    fn shape(&self) -> Shape {
        self.trend.as_ref().map_or(Shape::Insufficient, |t| t.shape)
    }

    /// When the trouble began: the onset of a step or spike, else the first
    /// point of a climb, else the alert's start.
    fn onset(&self) -> Time {
        match &self.trend {
            Some(t) if matches!(t.shape, Shape::Spike | Shape::Step | Shape::Climb) => t.onset.at,
            _ => self.input.alert.since,
        }
    }

    /// Evidence for the primary series' shape.
    fn trend_evidence(&self) -> Vec<Evidence> {
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
    fn restarts(&self) -> Vec<Evidence> {
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
            } else if s.name.contains("restart") {
                if let (Some(a), Some(b)) = (recent.first(), recent.last())
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
        }
        let name = input.alert.name.to_ascii_lowercase();
        if name.contains("crashloop") || name.contains("crash_loop") {
            out.push(ev_alert(&input.alert, "the source reports a crash loop"));
        }
        out
    }

    /// Maintenance windows or scheduled jobs covering the onset or now.
    fn scheduled(&self) -> Vec<Evidence> {
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
    fn traffic(&self) -> Vec<Evidence> {
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
    fn fleet_wide(&self) -> Vec<Evidence> {
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
    fn dependency(&self) -> Vec<Evidence> {
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
    fn memory_before_death(&self) -> Option<(&'a SeriesHistory, Trend)> {
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
    fn consumers(&self) -> Vec<(Evidence, bool, bool, String)> {
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
    fn growing_logs(&self) -> Vec<(Evidence, String)> {
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
    fn growing_data(&self) -> Vec<Evidence> {
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

/// The built-in heuristic analyser.
#[derive(Debug, Clone)]
pub struct Heuristic {
    catalog: Arc<Catalog>,
}

impl Heuristic {
    pub fn new(catalog: Arc<Catalog>) -> Heuristic {
        Heuristic { catalog }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// A recommendation when its parameters resolve and pass; else nothing.
    fn rec(
        &self,
        input: &AnalysisInput,
        runbook: &str,
        given: &[(&str, &str)],
        why: &str,
    ) -> Option<Recommendation> {
        let given = given
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve_recommendation(runbook, &given, input, &self.catalog)
            .ok()
            .map(|params| Recommendation {
                runbook: runbook.into(),
                params,
                why: why.into(),
            })
    }
}

/// The decision, before it becomes an `Analysis`.
struct Verdict {
    cause: Cause,
    confidence: f64,
    summary: String,
    evidence: Vec<Evidence>,
    runbooks: Vec<Recommendation>,
    would_change: Vec<String>,
}

impl Verdict {
    fn new(cause: Cause, confidence: f64, summary: String, evidence: Vec<Evidence>) -> Verdict {
        Verdict {
            cause,
            confidence,
            summary,
            evidence,
            runbooks: Vec::new(),
            would_change: Vec::new(),
        }
    }

    fn because(mut self, why: &str) -> Verdict {
        self.would_change.push(why.into());
        self
    }
}

impl Analyser for Heuristic {
    fn kind(&self) -> AnalyserKind {
        AnalyserKind::Heuristic
    }

    fn analyse(&self, input: &AnalysisInput) -> Analysis {
        let f = Findings::new(input);
        let v = self.decide(&f);
        let mut evidence = v.evidence;
        evidence.dedup();
        evidence.truncate(8);
        Analysis {
            summary: v.summary,
            cause: v.cause,
            confidence: v.confidence,
            evidence,
            runbooks: v.runbooks,
            would_change: v.would_change,
        }
    }
}

impl Heuristic {
    fn decide(&self, f: &Findings<'_>) -> Verdict {
        let input = f.input;
        let target = input.alert.host.as_deref().unwrap_or("the target");
        let service = input
            .alert
            .labels
            .get("service")
            .map(String::as_str)
            .unwrap_or("");
        let trend_ev = f.trend_evidence();
        let with = |mut a: Vec<Evidence>, b: &[Evidence]| {
            a.extend_from_slice(b);
            a
        };
        let sudden = matches!(f.shape(), Shape::Spike | Shape::Step);

        // A crash loop trumps everything: another restart is the wrong fix.
        let restarts = f.restarts();
        if matches!(
            f.resource,
            Resource::Service | Resource::Memory | Resource::Other
        ) && !restarts.is_empty()
        {
            let n = restarts
                .iter()
                .filter(|e| e.kind == EvidenceKind::Record)
                .count();
            return Verdict::new(
                Cause::CrashLoop,
                if n >= 2 { 0.85 } else { 0.7 },
                format!(
                    "{} on {target} keeps failing right after restarts: a crash loop; another restart will not fix it",
                    if service.is_empty() { "the service" } else { service }
                ),
                with(restarts, &trend_ev),
            )
            .because("a restart that stays up for more than the verification window")
            .because("logs showing a one-off cause (deploy, config change) that is now fixed");
        }

        let dependency = f.dependency();
        let fleet = f.fleet_wide();
        let scheduled = f.scheduled();
        let traffic = f.traffic();

        match f.resource {
            Resource::Service => {
                if let Some((s, t)) = f.memory_before_death() {
                    let mut v = Verdict::new(
                        Cause::MemoryLeak,
                        0.6,
                        format!("{service} on {target} died after its memory climbed to {}: likely killed out of memory by a leak", fmt_value(t.last.value)),
                        with(vec![ev_series(s, t.onset, format!("{} was {}", s.name, fmt_value(t.onset.value))), ev_series(s, t.last, format!("{} reached {} before the service died", s.name, fmt_value(t.last.value)))], &trend_ev),
                    )
                    .because("no out-of-memory kill in the kernel log")
                    .because("memory flat after the restart");
                    v.runbooks.extend(self.rec(
                        input,
                        "service_restart",
                        &[("service", service)],
                        "brings the service back; the leak needs a fix",
                    ));
                    return v;
                }
                if !dependency.is_empty() {
                    return Verdict::new(
                        Cause::DependencyDown,
                        0.7,
                        format!("{service} on {target} is down after a dependency failed; fix the dependency, not the service"),
                        with(dependency, &trend_ev),
                    )
                    .because("the dependency being healthy while the service still fails");
                }
                if !fleet.is_empty() {
                    return Verdict::new(
                        Cause::DependencyDown,
                        0.55,
                        format!("{service} is down on several hosts of the group at once: a shared dependency is the likely cause"),
                        with(fleet, &trend_ev),
                    )
                    .because("the other hosts failing for unrelated reasons (a bad deploy to all of them)");
                }
                let mut v = Verdict::new(
                    Cause::Unknown,
                    0.3,
                    format!("{service} on {target} stopped; no restart loop, dependency or scheduled job explains it yet"),
                    trend_ev,
                )
                .because("a second failure soon after a restart (crash loop)")
                .because("another alert on the host or group showing a failed dependency");
                v.runbooks.extend(self.rec(
                    input,
                    "service_restart",
                    &[("service", service)],
                    "a first failure with no loop: a restart is the standard first step",
                ));
                v
            }
            Resource::Memory => {
                if !scheduled.is_empty() && f.shape() != Shape::Climb {
                    return self.scheduled_verdict(f, scheduled, trend_ev, "memory");
                }
                if !traffic.is_empty() || (!fleet.is_empty() && f.shape() != Shape::Climb) {
                    return traffic_verdict(with(traffic, &fleet), trend_ev, "memory", target);
                }
                if f.shape() == Shape::Climb {
                    let t = f.trend.as_ref().map(|t| t.slope_per_hour).unwrap_or(0.0);
                    let mut v = Verdict::new(
                        Cause::MemoryLeak,
                        0.75,
                        format!("memory on {target} climbed steadily ({t:.1} points/h) with no traffic change or job: a leak{}", if service.is_empty() { String::new() } else { format!(" in {service}") }),
                        trend_ev,
                    )
                    .because("memory falling back by itself (a cache that is released)")
                    .because("a matching rise in traffic or a scheduled job");
                    v.runbooks.extend(self.rec(
                        input,
                        "memory_pressure",
                        &[("service", service)],
                        "restarting the leaking service frees its memory until the leak is fixed",
                    ));
                    return v;
                }
                self.inconclusive(f, trend_ev, "memory")
            }
            Resource::Disk => {
                let consumers = f.consumers();
                let logs = f.growing_logs();
                let data = f.growing_data();
                let mut logs = logs;
                if let Some(mp) = input.alert.labels.get("mountpoint")
                    && mp.starts_with("/var/log")
                {
                    logs.push((
                        ev_label("mountpoint", mp, "the file system holds logs"),
                        String::new(),
                    ));
                }
                let log_consumer = consumers.iter().find(|c| c.1);
                let data_consumer = consumers.iter().find(|c| c.2);
                if !scheduled.is_empty() && sudden && data_consumer.is_none() {
                    return self.scheduled_verdict(f, scheduled, trend_ev, "disk");
                }
                if data_consumer.is_some()
                    || (!data.is_empty() && log_consumer.is_none() && logs.is_empty())
                {
                    let mut ev: Vec<Evidence> =
                        data_consumer.map(|c| vec![c.0.clone()]).unwrap_or_default();
                    ev.extend(data);
                    return Verdict::new(
                        Cause::DiskGrowthData,
                        0.75,
                        format!("the disk of {target} is filling with data, not logs or temp files: cleanup will not help; grow the volume or prune the data"),
                        with(ev, &trend_ev),
                    )
                    .because("the top consumer being logs, temporary files or old archives")
                    .because("a one-off import or backup that will be removed");
                }
                if log_consumer.is_some() || !logs.is_empty() {
                    let path = log_consumer
                        .map(|c| c.3.clone())
                        .filter(|p| is_log_file(p))
                        .or_else(|| logs.iter().map(|l| l.1.clone()).find(|p| is_log_file(p)))
                        .unwrap_or_default();
                    let mut ev: Vec<Evidence> =
                        log_consumer.map(|c| vec![c.0.clone()]).unwrap_or_default();
                    ev.extend(logs.into_iter().map(|l| l.0));
                    let mut v = Verdict::new(
                        Cause::DiskGrowthLogs,
                        0.75,
                        format!(
                            "the disk of {target} is filling with logs{}",
                            if path.is_empty() {
                                String::new()
                            } else {
                                format!(" ({path})")
                            }
                        ),
                        with(ev, &trend_ev),
                    )
                    .because("the top consumer being database data (cleanup would not help)")
                    .because("a log level or debug flag left on: rotation only buys time");
                    if !path.is_empty() {
                        v.runbooks.extend(self.rec(
                            input,
                            "log_rotation",
                            &[("path", &path)],
                            "rotates and compresses the growing log",
                        ));
                    }
                    v.runbooks.extend(self.rec(
                        input,
                        "disk_cleanup",
                        &[],
                        "removes rotated logs, old temporary files and old journal",
                    ));
                    return v;
                }
                let mut v = self.inconclusive(f, trend_ev, "disk");
                v.runbooks.extend(self.rec(input, "disk_cleanup", &[], "frees the usual candidates (old temporary files, rotated logs, journal) while the consumer is found"));
                v.because("a top consumer (labels or `du`) showing what grows")
            }
            Resource::LogFile => {
                let path = input.alert.labels.get("path").cloned().unwrap_or_default();
                let mut v = Verdict::new(
                    Cause::DiskGrowthLogs,
                    0.8,
                    format!("the log file {path} on {target} outgrew its rotation"),
                    with(trend_ev, &[]),
                )
                .because(
                    "the file belonging to a database or application data (then it is not a log)",
                );
                if let Some(p) = input.alert.labels.get("path") {
                    v.evidence.push(ev_label("path", p, "the large file"));
                }
                v.runbooks.extend(self.rec(
                    input,
                    "log_rotation",
                    &[("path", &path)],
                    "rotates and compresses the file, keeping its contents",
                ));
                v
            }
            Resource::Zombies => {
                let mut ev = trend_ev;
                for (e, ..) in f.consumers() {
                    ev.push(e);
                }
                for (k, val) in input.alert.labels.iter().chain(&input.alert.annotations) {
                    let lk = k.to_ascii_lowercase();
                    if lk.contains("parent") || lk.contains("ppid") {
                        ev.push(ev_label(
                            k,
                            val,
                            "the parent that does not reap its children",
                        ));
                    }
                }
                let mut v = Verdict::new(
                    Cause::ZombieAccumulation,
                    if f.shape() == Shape::Climb { 0.8 } else { 0.65 },
                    format!("defunct processes pile up on {target}: a parent is not reaping its children"),
                    ev,
                )
                .because("the count falling by itself (a parent catching up)");
                v.runbooks.extend(self.rec(
                    input,
                    "zombie_killer",
                    &[],
                    "nudges the parents to reap (SIGCHLD)",
                ));
                v
            }
            Resource::Pool => {
                if !dependency.is_empty() {
                    return Verdict::new(
                        Cause::DependencyDown,
                        0.7,
                        format!("the pool of {target} filled because its database is slow or down: connections wait, they do not leak"),
                        with(dependency, &trend_ev),
                    )
                    .because("the database healthy and fast while the pool still fills");
                }
                if !traffic.is_empty() || !fleet.is_empty() {
                    return traffic_verdict(
                        with(traffic, &fleet),
                        trend_ev,
                        "the connection pool",
                        target,
                    );
                }
                if !scheduled.is_empty() && sudden {
                    return self.scheduled_verdict(f, scheduled, trend_ev, "the connection pool");
                }
                if matches!(f.shape(), Shape::Climb | Shape::Step) {
                    let mut v = Verdict::new(
                        Cause::ConnectionLeak,
                        0.7,
                        format!("connections on {target} are taken and never given back while traffic is flat: a connection leak"),
                        trend_ev,
                    )
                    .because("a rise in traffic or a slow database at the same time");
                    v.runbooks.extend(self.rec(
                        input,
                        "connection_reset",
                        &[("service", service)],
                        "terminates idle sessions older than the threshold",
                    ));
                    return v;
                }
                self.inconclusive(f, trend_ev, "the connection pool")
            }
            Resource::Other => {
                if !dependency.is_empty() {
                    return Verdict::new(
                        Cause::DependencyDown,
                        0.5,
                        format!(
                            "{} on {target} follows a failing dependency",
                            input.alert.name
                        ),
                        with(dependency, &trend_ev),
                    )
                    .because("the dependency healthy while the alert persists");
                }
                if !scheduled.is_empty() {
                    return self.scheduled_verdict(f, scheduled, trend_ev, "the signal");
                }
                if !traffic.is_empty() {
                    return traffic_verdict(traffic, trend_ev, "load", target);
                }
                self.inconclusive(f, trend_ev, "the signal")
            }
        }
    }

    fn scheduled_verdict(
        &self,
        f: &Findings<'_>,
        scheduled: Vec<Evidence>,
        trend: Vec<Evidence>,
        what: &str,
    ) -> Verdict {
        let target = f.input.alert.host.as_deref().unwrap_or("the target");
        let mut ev = scheduled;
        ev.extend(trend);
        Verdict::new(
            Cause::ScheduledJob,
            0.75,
            format!("{what} on {target} rose while a scheduled job ran: expected, not a leak; let it finish"),
            ev,
        )
        .because("the value staying high after the job ends")
        .because("the rise starting before the window opened")
    }

    fn inconclusive(&self, f: &Findings<'_>, trend: Vec<Evidence>, what: &str) -> Verdict {
        let target = f.input.alert.host.as_deref().unwrap_or("the target");
        let shape = match f.shape() {
            Shape::Insufficient => "too little history to fit a trend",
            Shape::Spike => "a sudden spike with no job, window or traffic change to explain it",
            Shape::Step => "a step with no job, window or traffic change to explain it",
            Shape::Flat => "a flat series",
            Shape::Falling => "a falling series",
            Shape::Climb => "a climb",
            Shape::Noisy => "an irregular series",
        };
        Verdict::new(
            Cause::Unknown,
            0.2,
            format!("inconclusive: {what} on {target} shows {shape}"),
            trend,
        )
        .because("more history, a top-consumer label, or a correlated alert on the host or group")
    }
}

fn traffic_verdict(
    mut ev: Vec<Evidence>,
    trend: Vec<Evidence>,
    what: &str,
    target: &str,
) -> Verdict {
    ev.extend(trend);
    Verdict::new(
        Cause::TrafficSpike,
        0.7,
        format!("{what} on {target} rose with a surge in traffic: scale out or shed load; restarting would drop requests"),
        ev,
    )
    .because("traffic back at its baseline while the value stays high (then a leak)")
}

#[cfg(test)]
#[path = "heuristic_tests.rs"]
mod tests;
