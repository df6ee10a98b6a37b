//! Weighing a filling resource (a file system, memory, a connection pool):
//! its capacity when a source reports sizes (node_exporter's
//! `node_filesystem_size_bytes`/`node_filesystem_avail_bytes`,
//! `node_memory_MemTotal_bytes`/`node_memory_MemAvailable_bytes`, or
//! `*_size_bytes`/`*_limit` series), how fast it fills and when it is full,
//! how much must be freed to clear the alert; each candidate contributor's
//! growth over the same window and the share of the resource's growth it
//! explains; and how much a runbook could free at most.
//!
//! Pure arithmetic over the analysis input: no decisions about causes (the
//! heuristic makes them) and nothing taken from an analyser's answer.

use serde::{Deserialize, Serialize};

use super::input::{AnalysisInput, Point, SeriesHistory};
use super::signals::{Resource, is_log_file, limit_of, resource_of};
use super::trend::{Shape, Trend, fit};
use super::{Evidence, fmt_value};
use crate::model::Time;

/// A contributor explaining less than this share of the growth explains
/// nothing meaningful (the cause is then unknown).
pub const MEANINGFUL_SHARE: f64 = 0.3;

/// The unit a resource is weighed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Bytes,
    Connections,
}

impl Unit {
    /// A quantity for people: `6.0 GiB`, `40 MiB`, `12 connections`.
    pub fn show(self, v: f64) -> String {
        match self {
            Unit::Bytes => fmt_bytes(v),
            Unit::Connections => format!("{} connections", v.round() as i64),
        }
    }
}

/// Bytes for people, in binary units.
pub fn fmt_bytes(b: f64) -> String {
    const K: f64 = 1024.0;
    let a = b.abs();
    if a >= K * K * K * K {
        format!("{:.1} TiB", b / (K * K * K * K))
    } else if a >= K * K * K {
        format!("{:.1} GiB", b / (K * K * K))
    } else if a >= K * K {
        format!("{:.0} MiB", b / (K * K))
    } else if a >= K {
        format!("{:.0} KiB", b / K)
    } else {
        format!("{b:.0} B")
    }
}

/// What a filling resource holds and how fast it fills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// What fills, in words: `disk /var`, `memory`, `pool orders_db`.
    pub resource: String,
    pub unit: Unit,
    /// The resource's size (in `unit`).
    pub size: f64,
    /// In use at the latest point.
    pub used: f64,
    /// Growth of `used` per hour over the window (least squares).
    pub growth_per_hour: f64,
    /// Seconds until full at that rate; none when it is not growing.
    #[serde(default)]
    pub full_in_secs: Option<i64>,
    /// Above this much in use the alert fires (from its condition; the
    /// default policy's threshold when the alert carries none).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// How much must be freed to get back below `threshold`.
    #[serde(default)]
    pub needed: Option<f64>,
    /// The series the size was read from.
    pub size_from: String,
}

/// What a contributor is, for the cause it points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContributorKind {
    /// A live log file or log directory (rotation frees it).
    Log,
    /// Database or application data (no cleanup frees it).
    Data,
    /// Temporary files, caches, archives (a cleanup frees the old ones).
    Temp,
    /// A service's memory.
    Service,
    /// Connections that sit idle (idle, idle in transaction).
    Idle,
    /// Connections that work (active, waiting).
    Busy,
    Other,
}

/// One candidate contributor to the resource's growth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contributor {
    /// The series key (`name{k="v",...}`).
    pub series: String,
    /// What it is, in words: `log /var/log/app.log`, `data analytics`.
    pub what: String,
    pub kind: ContributorKind,
    /// Its latest value (in the resource's unit).
    pub size: f64,
    /// Its growth per hour over the same window as the resource.
    pub growth_per_hour: f64,
    /// The share of the resource's growth it explains (of the candidates'
    /// summed growth when `Weighing::basis` is `candidates`); 0 when it did
    /// not grow.
    pub share: f64,
    /// The runbook parameter it gives (`path` of a log file, `service` of
    /// a process), when it gives one.
    #[serde(default)]
    pub param: Option<(String, String)>,
    /// Its latest point (what the evidence cites).
    #[serde(skip)]
    pub last: Option<Point>,
}

/// What the shares are shares of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareBasis {
    /// Of the resource's own growth (its size or used bytes are known).
    Resource,
    /// Of the candidates' summed growth: the resource's growth in the same
    /// unit is unknown, so "nothing explains it" cannot be told.
    Candidates,
}

/// The weighing of one alert's resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weighing {
    #[serde(default)]
    pub capacity: Option<Capacity>,
    /// Best explanation first.
    pub contributors: Vec<Contributor>,
    pub basis: ShareBasis,
    /// The window growth was measured over.
    #[serde(default, with = "super::opt_time")]
    pub from: Option<Time>,
    #[serde(default, with = "super::opt_time")]
    pub to: Option<Time>,
}

impl Weighing {
    /// The contributor explaining most, when it explains a meaningful share.
    pub fn leader(&self) -> Option<&Contributor> {
        self.contributors
            .first()
            .filter(|c| c.share >= MEANINGFUL_SHARE && c.growth_per_hour > 0.0)
    }

    /// Shares can be told (the resource grows and something was weighed).
    pub fn weighed(&self) -> bool {
        !self.contributors.is_empty()
            && match self.basis {
                ShareBasis::Resource => self
                    .capacity
                    .as_ref()
                    .is_some_and(|c| c.growth_per_hour > 0.0),
                ShareBasis::Candidates => self.contributors.iter().any(|c| c.growth_per_hour > 0.0),
            }
    }

    /// The summed share of one kind of contributor.
    pub fn share_of(&self, kind: ContributorKind) -> f64 {
        self.contributors
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.share)
            .sum()
    }

    /// "data analytics: 96% of the growth; log /var/log/app.log: 0.6%".
    pub fn shares_line(&self) -> String {
        let of = match self.basis {
            ShareBasis::Resource => "of the growth",
            ShareBasis::Candidates => "of the candidates' growth",
        };
        self.contributors
            .iter()
            .take(4)
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "{}: {}{}",
                    c.what,
                    pct(c.share),
                    if i == 0 {
                        format!(" {of}")
                    } else {
                        String::new()
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The most a runbook with these parameters could free, when that can
    /// be told: a log rotation frees at most the file, a cleanup at most
    /// what is neither data nor a live log, a restart at most the service's
    /// memory, a connection reset at most the idle connections.
    pub fn frees_at_most(
        &self,
        runbook: &str,
        params: &std::collections::BTreeMap<String, String>,
    ) -> Option<f64> {
        let cap = self.capacity.as_ref()?;
        let sum = |kinds: &[ContributorKind]| -> Option<f64> {
            let v: Vec<f64> = self
                .contributors
                .iter()
                .filter(|c| kinds.contains(&c.kind))
                .map(|c| c.size)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum())
        };
        let by_param = |k: &str| {
            let v = params.get(k)?;
            self.contributors
                .iter()
                .find(|c| c.param.as_ref().is_some_and(|(pk, pv)| pk == k && pv == v))
                .map(|c| c.size)
        };
        match (cap.unit, runbook) {
            (Unit::Bytes, "log_rotation") if cap.resource.starts_with("disk") => by_param("path"),
            (Unit::Bytes, "disk_cleanup") if cap.resource.starts_with("disk") => {
                // It removes neither data nor a live log file (only rotated
                // archives, old temporary files, the journal).
                let kept: Vec<f64> = self
                    .contributors
                    .iter()
                    .filter(|c| {
                        c.kind == ContributorKind::Data
                            || (c.kind == ContributorKind::Log && c.param.is_some())
                    })
                    .map(|c| c.size)
                    .collect();
                if kept.is_empty() {
                    return None;
                }
                Some((cap.used - kept.iter().sum::<f64>()).max(0.0))
            }
            (Unit::Bytes, "memory_pressure" | "service_restart") if cap.resource == "memory" => {
                by_param("service")
            }
            (Unit::Connections, "connection_reset") => sum(&[ContributorKind::Idle]),
            _ => None,
        }
    }
}

/// A share as people read it: `96%`, `0.6%`, `<0.1%`.
pub fn pct(share: f64) -> String {
    let p = share * 100.0;
    if p == 0.0 {
        "0%".into()
    } else if p.abs() < 0.1 {
        "<0.1%".into()
    } else if p.abs() < 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

/// Least-squares slope per hour of the points inside `[from, to]`.
pub fn slope_per_hour(points: &[Point], from: Time, to: Time) -> Option<f64> {
    let inside = points.iter().filter(|p| p.at >= from && p.at <= to);
    let (mut n, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for p in inside.clone() {
        n += 1.0;
        sx += hours(p.at, from);
        sy += p.value;
    }
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for p in inside {
        let x = hours(p.at, from) - mx;
        sxy += x * (p.value - my);
        sxx += x * x;
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

fn hours(t: Time, from: Time) -> f64 {
    (t - from).num_milliseconds() as f64 / 3_600_000.0
}

/// The threshold of a condition such as `disk_used_percent > 85`, as
/// (metric, is_upper_bound, value).
fn condition_threshold(cond: &str) -> Option<(String, bool, f64)> {
    let (i, upper) = match (cond.find('>'), cond.find('<')) {
        (Some(i), None) => (i, true),
        (None, Some(i)) => (i, false),
        _ => return None,
    };
    let metric: String = cond[..i]
        .trim_start_matches(['{', ' ', '('])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let v = cond[i + 1..]
        .trim_start_matches('=')
        .split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()?;
    Some((metric, upper, v))
}

/// Series that measure the size of a file system, memory or a pool.
fn is_size_name(n: &str) -> bool {
    n.ends_with("_size_bytes")
        || n.ends_with("_total_bytes")
        || n.ends_with("_limit_bytes")
        || n == "node_memory_memtotal_bytes"
        || n.ends_with("_limit")
        || n.ends_with("_size")
        || n.ends_with("_max")
        || n.ends_with("max_connections")
}

fn is_avail_name(n: &str) -> bool {
    n.ends_with("_avail_bytes")
        || n.ends_with("_available_bytes")
        || n == "node_memory_memavailable_bytes"
        || (n.contains("filesystem") && n.ends_with("_free_bytes"))
}

/// Does `labels` select the same thing as the alert (every label they
/// share, but `host`, agrees)?
fn agrees(s: &SeriesHistory, want: &[(&str, &str)]) -> bool {
    want.iter()
        .all(|(k, v)| s.labels.get(*k).is_none_or(|x| x == v))
}

/// Weighs the alert's resource; none when the alert is not about a
/// resource that fills.
pub fn weigh(input: &AnalysisInput) -> Option<Weighing> {
    let (resource, metric) = resource_of(&input.alert);
    if !matches!(resource, Resource::Disk | Resource::Memory | Resource::Pool) {
        return None;
    }
    let metric = metric.unwrap_or_default();
    let primary = input
        .series_named(&metric)
        .into_iter()
        .max_by_key(|s| s.points.len());
    let trend = primary.map(|p| fit(&p.points, limit_of(&p.name)));
    weigh_fitted(input, resource, &metric, primary, trend.as_ref())
}

/// [`weigh`] with the alert's series and its trend already found.
pub(super) fn weigh_fitted(
    input: &AnalysisInput,
    resource: Resource,
    metric: &str,
    primary: Option<&SeriesHistory>,
    trend: Option<&Trend>,
) -> Option<Weighing> {
    if !matches!(resource, Resource::Disk | Resource::Memory | Resource::Pool) {
        return None;
    }
    let label = |k: &str| {
        input
            .alert
            .labels
            .get(k)
            .or_else(|| primary.and_then(|p| p.labels.get(k)))
            .cloned()
    };
    let (what, unit, select): (String, Unit, Vec<(&str, String)>) = match resource {
        Resource::Disk => {
            let mp = label("mountpoint").unwrap_or_else(|| "/".into());
            (format!("disk {mp}"), Unit::Bytes, vec![("mountpoint", mp)])
        }
        Resource::Memory => ("memory".into(), Unit::Bytes, Vec::new()),
        _ => {
            let pool = label("pool");
            (
                format!("pool {}", pool.as_deref().unwrap_or(""))
                    .trim()
                    .to_string(),
                Unit::Connections,
                pool.map(|p| vec![("pool", p)]).unwrap_or_default(),
            )
        }
    };
    let want: Vec<(&str, &str)> = select.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let kind_word = match resource {
        Resource::Disk => ["filesystem", "disk", "volume"].as_slice(),
        Resource::Memory => ["memory", "mem"].as_slice(),
        _ => ["pool", "connection"].as_slice(),
    };
    let about = |s: &SeriesHistory| {
        let n = s.name.to_ascii_lowercase();
        kind_word.iter().any(|w| n.contains(w)) && agrees(s, &want)
    };
    let size_s = input
        .series
        .iter()
        .filter(|s| about(s) && is_size_name(&s.name.to_ascii_lowercase()))
        .max_by_key(|s| s.points.len());
    let avail_s = input
        .series
        .iter()
        .filter(|s| about(s) && is_avail_name(&s.name.to_ascii_lowercase()))
        .max_by_key(|s| s.points.len());
    let size = size_s.and_then(SeriesHistory::last).map(|p| p.value);
    // Used over time, in the unit: size minus available, else the alert's
    // own series scaled by the size.
    let map = |pts: &[Point], f: &dyn Fn(f64) -> f64| -> Vec<Point> {
        pts.iter()
            .map(|p| Point {
                at: p.at,
                value: f(p.value),
            })
            .collect()
    };
    let used: Vec<Point> = match (size, avail_s, primary) {
        (Some(sz), Some(a), _) => map(&a.points, &|v| sz - v),
        (Some(sz), None, Some(p)) if metric.ends_with("_percent") => {
            map(&p.points, &|v| v / 100.0 * sz)
        }
        (Some(sz), None, Some(p)) if metric.ends_with("_ratio") => map(&p.points, &|v| v * sz),
        _ => Vec::new(),
    };
    let to = input.at;
    // The window: where the rise began, at most the history seen.
    let from = primary
        .map(|p| match trend.map(|t| (t.shape, t.onset.at)) {
            Some((Shape::Spike | Shape::Step, onset)) => onset,
            _ => p.points.first().map_or(to, |x| x.at),
        })
        .or_else(|| used.first().map(|p| p.at))
        .unwrap_or(to);
    let capacity = match (size, used.last()) {
        (Some(sz), Some(last)) if sz > 0.0 => {
            let growth = slope_per_hour(&used, from, to).unwrap_or(0.0);
            let full_in_secs = (growth > 0.0 && last.value < sz)
                .then(|| ((sz - last.value) / growth * 3600.0) as i64)
                .filter(|s| *s < 10 * 365 * 86_400);
            let threshold = alert_threshold(input, resource, metric, sz);
            Some(Capacity {
                resource: what.clone(),
                unit,
                size: sz,
                used: last.value,
                growth_per_hour: growth,
                full_in_secs,
                threshold,
                needed: threshold.map(|t| (last.value - t).max(0.0)),
                size_from: size_s.map(SeriesHistory::key).unwrap_or_default(),
            })
        }
        _ => None,
    };
    let mounts: Vec<&str> = input
        .series
        .iter()
        .filter_map(|s| s.labels.get("mountpoint").map(String::as_str))
        .collect();
    let mut contributors: Vec<Contributor> = input
        .series
        .iter()
        .filter(|s| {
            ![primary, size_s, avail_s]
                .iter()
                .any(|o| o.is_some_and(|o| std::ptr::eq(o, *s)))
        })
        .filter_map(|s| candidate(s, resource, &want, &mounts, metric))
        .filter_map(|(s, kind, what, param)| {
            let last = s.last()?;
            let growth = slope_per_hour(&s.points, from, to).unwrap_or(0.0);
            Some(Contributor {
                series: s.key(),
                what,
                kind,
                size: last.value,
                growth_per_hour: growth,
                share: 0.0,
                param,
                last: Some(last),
            })
        })
        .collect();
    let total = capacity
        .as_ref()
        .map(|c| c.growth_per_hour)
        .filter(|g| *g > 0.0);
    let basis = if total.is_some() {
        ShareBasis::Resource
    } else {
        ShareBasis::Candidates
    };
    let summed: f64 = contributors
        .iter()
        .map(|c| c.growth_per_hour.max(0.0))
        .sum();
    for c in &mut contributors {
        let of = total.unwrap_or(summed);
        c.share = if of > 0.0 {
            c.growth_per_hour.max(0.0) / of
        } else {
            0.0
        };
    }
    contributors.sort_by(|a, b| b.share.total_cmp(&a.share).then(b.size.total_cmp(&a.size)));
    contributors.truncate(12);
    Some(Weighing {
        capacity,
        contributors,
        basis,
        from: Some(from),
        to: Some(to),
    })
}

/// The alert's threshold in the resource's unit: from its condition, else
/// the default policy's (disk 85%, memory 90%, pool 95%).
fn alert_threshold(input: &AnalysisInput, r: Resource, metric: &str, size: f64) -> Option<f64> {
    let parsed = input
        .alert
        .condition
        .as_deref()
        .and_then(condition_threshold);
    let (m, upper, v) = parsed.unwrap_or_else(|| {
        let v = match r {
            Resource::Disk => 85.0,
            Resource::Memory => 90.0,
            _ => 0.95,
        };
        (metric.to_string(), true, v)
    });
    let m = m.to_ascii_lowercase();
    let as_used = |v: f64| {
        if m.ends_with("_percent") {
            v / 100.0 * size
        } else if m.ends_with("_ratio") {
            v * size
        } else {
            v
        }
    };
    if upper {
        Some(as_used(v))
    } else if m.contains("avail") || m.contains("free") {
        // `avail < X`: it fires when less than X is left.
        Some(size - as_used(v))
    } else {
        None
    }
}

const DATA_WORDS: [&str; 16] = [
    "database",
    "db_",
    "pg_",
    "mysql",
    "mariadb",
    "mongo",
    "table",
    "wal",
    "index",
    "data",
    "postgres",
    "clickhouse",
    "elastic",
    "kafka",
    "influx",
    "tsdb",
];

/// A candidate contributor: its series, kind, name in words and the
/// parameter it gives.
type Candidate<'a> = (
    &'a SeriesHistory,
    ContributorKind,
    String,
    Option<(String, String)>,
);

/// Is this series a candidate contributor to the resource? Returns its
/// kind, its name in words and the parameter it gives.
fn candidate<'a>(
    s: &'a SeriesHistory,
    r: Resource,
    want: &[(&str, &str)],
    mounts: &[&str],
    metric: &str,
) -> Option<Candidate<'a>> {
    let n = s.name.to_ascii_lowercase();
    if n == metric || n.ends_with("_total") || n.ends_with("_count") && r != Resource::Pool {
        return None;
    }
    let io = [
        "transmit",
        "receive",
        "read_bytes",
        "written",
        "network",
        "net_",
        "_io_",
    ];
    if io.iter().any(|w| n.contains(w)) {
        return None;
    }
    let get = |k: &str| s.labels.get(k).map(String::as_str);
    match r {
        Resource::Disk => {
            let memory = ["mem", "rss", "heap", "resident", "swap", "cache_bytes"];
            if !n.ends_with("_bytes") || memory.iter().any(|w| n.contains(w)) {
                return None;
            }
            if n.contains("filesystem") || n.starts_with("disk_") || n.starts_with("node_") {
                return None;
            }
            // On this file system: its mountpoint label agrees, and a path
            // lies under the alert's mount point more deeply than under any
            // other mount of the host.
            if !agrees(s, want) {
                return None;
            }
            let mp = want
                .iter()
                .find(|(k, _)| *k == "mountpoint")
                .map(|(_, v)| *v)
                .unwrap_or("/");
            let path = ["path", "dir", "directory", "file"]
                .iter()
                .find_map(|k| get(k));
            if let Some(p) = path {
                let best = mounts
                    .iter()
                    .filter(|m| under(p, m))
                    .max_by_key(|m| m.len())
                    .copied()
                    .unwrap_or("/");
                if best != mp {
                    return None;
                }
            }
            let lp = path.unwrap_or("").to_ascii_lowercase();
            // A database's own logs (binary logs, WAL, redo) are its data:
            // no rotation or cleanup may remove them.
            let db_log = ["binlog", "wal", "xlog", "redo", "relay_log", "relaylog"]
                .iter()
                .any(|w| n.contains(w) || lp.contains(w));
            let name_of = get("datname")
                .or(get("database"))
                .or(get("db"))
                .or(get("table"))
                .or(path)
                .or(get("service"))
                .unwrap_or(&s.name);
            let kind = if db_log {
                ContributorKind::Data
            } else if lp.starts_with("/var/log") || n.contains("log") || n.contains("journal") {
                if n.contains("rotated") || n.contains("archive") {
                    ContributorKind::Temp
                } else {
                    ContributorKind::Log
                }
            } else if ["tmp", "temp", "cache", "archive", "dump", "backup"]
                .iter()
                .any(|w| n.contains(w) || lp.contains(w))
            {
                ContributorKind::Temp
            } else if DATA_WORDS.iter().any(|w| n.contains(w) || lp.contains(w)) {
                ContributorKind::Data
            } else {
                ContributorKind::Other
            };
            let word = match kind {
                ContributorKind::Log => "log",
                ContributorKind::Data => "data",
                ContributorKind::Temp => "temporary",
                _ => "",
            };
            let what = format!("{word} {name_of}").trim().to_string();
            let param = path
                .filter(|p| kind == ContributorKind::Log && is_log_file(p))
                .map(|p| ("path".to_string(), p.to_string()));
            Some((s, kind, what, param))
        }
        Resource::Memory => {
            if !n.ends_with("_bytes") || n.starts_with("node_memory") {
                return None;
            }
            if !["mem", "rss", "resident", "heap"]
                .iter()
                .any(|w| n.contains(w))
            {
                return None;
            }
            let who = get("service")
                .or(get("process"))
                .or(get("container"))
                .or(get("groupname"))
                .or(get("name"))?;
            Some((
                s,
                ContributorKind::Service,
                format!("service {who}"),
                Some(("service".into(), who.to_string())),
            ))
        }
        _ => {
            if !agrees(s, want) {
                return None;
            }
            let state = get("state").unwrap_or("").to_ascii_lowercase();
            let about = n.contains("connection") || n.contains("activity") || n.contains("pool");
            if !about || state.is_empty() {
                return None;
            }
            let kind = if state.contains("idle") {
                ContributorKind::Idle
            } else {
                ContributorKind::Busy
            };
            Some((s, kind, format!("{state} connections"), None))
        }
    }
}

fn under(path: &str, mount: &str) -> bool {
    mount == "/"
        || path == mount
        || path
            .strip_prefix(mount)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Evidence items for the weighing: each weighed contributor's latest
/// point with its growth and share, best first.
pub fn evidence(w: &Weighing, input: &AnalysisInput, max: usize) -> Vec<Evidence> {
    let unit = w.capacity.as_ref().map_or(Unit::Bytes, |c| c.unit);
    w.contributors
        .iter()
        .filter(|c| c.growth_per_hour > 0.0 || c.share > 0.0)
        .take(max)
        .filter_map(|c| {
            let p = c.last?;
            let s = input.series.iter().find(|s| s.key() == c.series)?;
            Some(super::signals::ev_series(
                s,
                p,
                format!(
                    "{}: {} of the growth ({}/h, now {})",
                    c.what,
                    pct(c.share),
                    unit.show(c.growth_per_hour),
                    unit.show(c.size)
                ),
            ))
        })
        .collect()
}

/// The capacity line: "disk /var: 171.0 GiB of 200.0 GiB used, +590.0 GiB/h,
/// full in 3m; 1.0 GiB must be freed to get below 170.0 GiB".
pub fn capacity_line(c: &Capacity) -> String {
    let mut s = format!(
        "{}: {} of {} used",
        c.resource,
        c.unit.show(c.used),
        c.unit.show(c.size)
    );
    if c.growth_per_hour > 0.0 {
        s.push_str(&format!(", +{}/h", c.unit.show(c.growth_per_hour)));
    }
    if let Some(f) = c.full_in_secs {
        s.push_str(&format!(
            ", full in about {}",
            super::signals::fmt_eta(chrono::TimeDelta::seconds(f))
        ));
    }
    if let (Some(n), Some(t)) = (c.needed, c.threshold) {
        s.push_str(&format!(
            "; {} must be freed to get below {}",
            c.unit.show(n),
            c.unit.show(t)
        ));
    }
    s
}

/// The size series' latest point as evidence, when there is one.
pub fn capacity_evidence(c: &Capacity, input: &AnalysisInput) -> Option<Evidence> {
    let s = input.series.iter().find(|s| s.key() == c.size_from)?;
    let p = s.last()?;
    Some(super::signals::ev_series(
        s,
        p,
        format!("{} (size {})", capacity_line(c), fmt_value(p.value)),
    ))
}
