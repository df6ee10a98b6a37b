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

use super::assess::{Assessment, assess};
use super::input::AnalysisInput;
use super::signals::{Findings, Resource, ev_label, ev_series, is_log_file};
use super::trend::Shape;
use super::weigh::{self, ContributorKind, ShareBasis, Weighing, pct};
use super::{
    Analyser, AnalyserKind, Analysis, Cause, Evidence, EvidenceKind, Recommendation, fmt_value,
    resolve_recommendation,
};
use crate::runbook::Catalog;

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
        self.assessed(input).0
    }
}

impl Heuristic {
    /// The analysis and the weighed facts behind it (capacity, shares, what
    /// each runbook would free, the runbooks it passes over and why).
    pub fn assessed(&self, input: &AnalysisInput) -> (Analysis, Assessment) {
        let f = Findings::new(input);
        let v = self.decide(&f);
        let mut evidence = v.evidence;
        dedup_all(&mut evidence);
        evidence.truncate(8);
        let mut a = Analysis {
            summary: v.summary,
            cause: v.cause,
            confidence: v.confidence,
            evidence,
            runbooks: v.runbooks,
            would_change: v.would_change,
        };
        let assessment = assess(&mut a, input, &self.catalog, f.weighing);
        (a, assessment)
    }
}

/// Removes repeated items, keeping the first of each.
fn dedup_all(v: &mut Vec<Evidence>) {
    let mut seen: Vec<(EvidenceKind, String, String, Option<crate::model::Time>)> = Vec::new();
    v.retain(|e| {
        let k = (e.kind, e.signal.clone(), e.value.clone(), e.at);
        if seen.contains(&k) {
            false
        } else {
            seen.push(k);
            true
        }
    });
}

impl Heuristic {
    fn decide(&self, f: &Findings<'_>) -> Verdict {
        let input = f.input;
        let target = input.alert.host.as_deref().unwrap_or("the target");
        // The alert's service, else the one its series names (an external
        // alert may carry fewer labels than the metrics).
        let service = input
            .alert
            .labels
            .get("service")
            .or_else(|| f.primary.and_then(|s| s.labels.get("service")))
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
            let oom = restarts
                .iter()
                .any(|e| e.note.contains("out-of-memory kills"));
            let who = if service.is_empty() {
                "the service"
            } else {
                service
            };
            return Verdict::new(
                Cause::CrashLoop,
                if n >= 2 || oom { 0.85 } else { 0.7 },
                if oom {
                    format!(
                        "the kernel keeps killing {who} on {target} out of memory and it comes back to die again: a crash loop; a restart frees nothing, its memory limit or leak must be fixed"
                    )
                } else {
                    format!(
                        "{who} on {target} keeps failing right after restarts: a crash loop; another restart will not fix it"
                    )
                },
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
                // A climb, or no percentage series but used memory growing
                // (node_exporter's MemTotal and MemAvailable alone).
                if (f.shape() == Shape::Climb || f.primary.is_none())
                    && let Some(w) = f
                        .weighing
                        .as_ref()
                        .filter(|w| w.weighed() && w.basis == ShareBasis::Resource)
                {
                    return self.weighed_memory(f, w, trend_ev);
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
                if let Some(w) = f.weighing.as_ref().filter(|w| w.weighed()) {
                    if w.basis == ShareBasis::Resource {
                        return self.weighed_disk(f, w, trend_ev);
                    }
                    // Sizes unknown: the candidates still compare with each
                    // other (a data directory growing by GB/h beats a log
                    // growing by MB/h).
                    if w.share_of(ContributorKind::Data) > w.share_of(ContributorKind::Log)
                        && log_consumer.is_none()
                    {
                        let mut ev = weigh::evidence(w, input, 3);
                        ev.extend(data);
                        return data_verdict(with(ev, &trend_ev), target, w);
                    }
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
                    self.log_runbooks(
                        &mut v,
                        input,
                        &path,
                        "rotates and compresses the growing log",
                    );
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
                if matches!(f.shape(), Shape::Climb | Shape::Step)
                    && let Some(w) = f
                        .weighing
                        .as_ref()
                        .filter(|w| w.weighed() && w.basis == ShareBasis::Resource)
                {
                    return self.weighed_pool(f, w, trend_ev, service);
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

    /// For logs filling a disk: rotate the file when there is one, then
    /// the usual cleanup.
    fn log_runbooks(&self, v: &mut Verdict, input: &AnalysisInput, path: &str, why: &str) {
        if !path.is_empty() {
            v.runbooks
                .extend(self.rec(input, "log_rotation", &[("path", path)], why));
        }
        v.runbooks.extend(self.rec(
            input,
            "disk_cleanup",
            &[],
            "removes rotated logs, old temporary files and old journal",
        ));
    }

    /// A disk whose growth in bytes is known: the contributor explaining
    /// most of it names the cause; nothing meaningful, and it is unknown.
    fn weighed_disk(&self, f: &Findings<'_>, w: &Weighing, trend: Vec<Evidence>) -> Verdict {
        let input = f.input;
        let target = input.alert.host.as_deref().unwrap_or("the target");
        let (ev, capacity) = weighed_facts(input, w, trend, 4);
        match w.leader() {
            Some(c) if c.kind == ContributorKind::Log => {
                let path = c.param.as_ref().map(|p| p.1.clone()).unwrap_or_default();
                let mut v = Verdict::new(
                    Cause::DiskGrowthLogs,
                    confidence(c.share),
                    clip(format!(
                        "the disk of {target} is filling with logs: {}{capacity}",
                        w.shares_line()
                    )),
                    ev,
                )
                .because("another contributor growing faster over the same window")
                .because("a log level or debug flag left on: rotation only buys time");
                let why = format!(
                    "rotates and compresses {path}, {} of the growth",
                    pct(c.share)
                );
                self.log_runbooks(&mut v, input, &path, &why);
                v
            }
            Some(c) if c.kind == ContributorKind::Data => {
                let mut v = data_verdict(ev, target, w);
                v.summary = clip(format!("{}{capacity}", v.summary));
                v.confidence = confidence(c.share);
                v
            }
            lead => {
                let named = lead
                    .map(|c| format!("{} explains {} of the growth", c.what, pct(c.share)))
                    .unwrap_or_else(|| {
                        format!(
                            "no candidate explains a meaningful share ({})",
                            w.shares_line()
                        )
                    });
                let mut v = Verdict::new(
                    Cause::Unknown,
                    0.3,
                    clip(format!("the disk of {target} fills but {named}{capacity}")),
                    ev,
                )
                .because(
                    "a contributor (a directory or database size series) that grows with the disk",
                );
                v.runbooks.extend(self.rec(
                    input,
                    "disk_cleanup",
                    &[],
                    "frees the usual candidates (rotated logs, old temporary files, journal) while the consumer is found",
                ));
                v
            }
        }
    }

    /// Memory that climbs, with per-service memory known: the service
    /// explaining most of the growth leaks; none, and it is unknown.
    fn weighed_memory(&self, f: &Findings<'_>, w: &Weighing, trend: Vec<Evidence>) -> Verdict {
        let input = f.input;
        let target = input.alert.host.as_deref().unwrap_or("the target");
        let (ev, capacity) = weighed_facts(input, w, trend, 3);
        match w.leader().filter(|c| c.kind == ContributorKind::Service) {
            Some(c) => {
                let service = c.param.as_ref().map(|p| p.1.clone()).unwrap_or_default();
                let mut v = Verdict::new(
                    Cause::MemoryLeak,
                    confidence(c.share),
                    clip(format!(
                        "memory on {target} climbs steadily: a leak in {service} ({}){capacity}",
                        w.shares_line()
                    )),
                    ev,
                )
                .because("memory falling back by itself (a cache that is released)")
                .because("a matching rise in traffic or a scheduled job");
                v.runbooks.extend(self.rec(
                    input,
                    "memory_pressure",
                    &[("service", &service)],
                    &format!(
                        "restarting {service}, {} of the growth, frees its memory until the leak is fixed",
                        pct(c.share)
                    ),
                ));
                v
            }
            None => Verdict::new(
                Cause::Unknown,
                0.3,
                clip(format!(
                    "memory on {target} climbs but no service explains a meaningful share ({}){capacity}",
                    w.shares_line()
                )),
                ev,
            )
            .because("a process outside the listed services (kernel, page cache, a new job) growing with the host"),
        }
    }

    /// A pool that fills, with connections by state known: idle ones
    /// piling up leak; busy ones mean slow or stuck queries, which a reset
    /// of idle sessions does not fix.
    fn weighed_pool(
        &self,
        f: &Findings<'_>,
        w: &Weighing,
        trend: Vec<Evidence>,
        service: &str,
    ) -> Verdict {
        let input = f.input;
        let target = input.alert.host.as_deref().unwrap_or("the target");
        let (ev, capacity) = weighed_facts(input, w, trend, 3);
        match w.leader() {
            Some(c) if c.kind == ContributorKind::Idle => {
                let mut v = Verdict::new(
                    Cause::ConnectionLeak,
                    confidence(c.share),
                    clip(format!(
                        "connections on {target} are taken and never given back: {}{capacity}",
                        w.shares_line()
                    )),
                    ev,
                )
                .because("a rise in traffic or a slow database at the same time");
                v.runbooks.extend(self.rec(
                    input,
                    "connection_reset",
                    &[("service", service)],
                    &format!(
                        "terminates the {} idle sessions ({} of the growth)",
                        c.what,
                        pct(c.share)
                    ),
                ));
                v
            }
            lead => Verdict::new(
                Cause::Unknown,
                0.3,
                clip(format!(
                    "the pool of {target} fills with {}: queries are slow or stuck, not leaked{capacity}",
                    lead.map(|c| format!("{} ({} of the growth)", c.what, pct(c.share)))
                        .unwrap_or_else(|| format!("no state explaining a meaningful share ({})", w.shares_line()))
                )),
                ev,
            )
            .because("idle sessions piling up (then a leak that a reset frees)")
            .because("the database's own latency and locks"),
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

/// The weighing's evidence (the `max` leading contributors, the size) then
/// the trend's, and the capacity line for a summary ("; disk /: ...").
fn weighed_facts(
    input: &AnalysisInput,
    w: &Weighing,
    trend: Vec<Evidence>,
    max: usize,
) -> (Vec<Evidence>, String) {
    let mut ev = weigh::evidence(w, input, max);
    let cap = w.capacity.as_ref();
    ev.extend(cap.and_then(|c| weigh::capacity_evidence(c, input)));
    ev.extend(trend);
    let line = cap
        .map(|c| format!("; {}", weigh::capacity_line(c)))
        .unwrap_or_default();
    (ev, line)
}

/// Confidence from the share the leading contributor explains.
fn confidence(share: f64) -> f64 {
    (0.5 + 0.4 * share.clamp(0.0, 1.0)).min(0.9)
}

fn clip(s: String) -> String {
    super::assess::clip(&s)
}

/// Database or application data fills the disk: no cleanup helps.
fn data_verdict(ev: Vec<Evidence>, target: &str, w: &Weighing) -> Verdict {
    Verdict::new(
        Cause::DiskGrowthData,
        0.75,
        clip(format!(
            "the disk of {target} is filling with data, not logs or temp files ({}): cleanup will not help; grow the volume or prune the data",
            w.shares_line()
        )),
        ev,
    )
    .because("the top consumer being logs, temporary files or old archives")
    .because("a one-off import or backup that will be removed")
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
