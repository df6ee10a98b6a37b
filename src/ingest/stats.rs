//! Vigil's own counters and gauges, and their Prometheus exposition for
//! `GET /metrics`. Counters are atomics bumped by the listener; gauges are
//! read from the latest hub snapshot; executor latencies are followed from
//! the audit records the snapshots carry (started → succeeded/failed).
//!
//! Owns no decisions; never blocks the hub.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hub::Snapshot;
use crate::model::{ActionState, AlertStatus, RecordKind, Time};

/// Upper bounds of the executor latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Debug, Default)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

/// The listener's counters.
#[derive(Debug, Default)]
pub struct Stats {
    pub samples_ingested: AtomicU64,
    pub samples_evaluated: AtomicU64,
    pub webhook_alerts: AtomicU64,
    pub requests_ok: AtomicU64,
    pub requests_rejected: AtomicU64,
    pub requests_unauthorized: AtomicU64,
    pub requests_limited: AtomicU64,
    /// Samples of new series refused by `[settings]
    /// max_series_per_metric`, and by the total series limit.
    refused_per_metric: AtomicU64,
    refused_total: AtomicU64,
    /// Violations by policy name.
    violations: Mutex<HashMap<String, u64>>,
    /// Executor latency by runbook, and runs seen started.
    latency: Mutex<LatencyFollower>,
}

#[derive(Debug, Default)]
struct LatencyFollower {
    last_seq: u64,
    started: HashMap<String, (String, Time)>,
    by_runbook: HashMap<String, Histogram>,
}

impl Stats {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// A sample of a new series was refused by a series limit.
    pub fn series_refused(&self, e: &crate::policy::eval::SeriesLimit) {
        let c = match e.kind {
            crate::policy::eval::LimitKind::PerMetric => &self.refused_per_metric,
            crate::policy::eval::LimitKind::Total => &self.refused_total,
        };
        Self::add(c, 1);
    }

    pub fn violation(&self, policy: &str, n: u64) {
        if let Ok(mut m) = self.violations.lock() {
            *m.entry(policy.to_string()).or_default() += n;
        }
    }

    /// Follows the snapshot's records to time executions.
    pub fn follow(&self, snap: &Snapshot) {
        let Ok(mut f) = self.latency.lock() else {
            return;
        };
        let from = f.last_seq;
        for r in snap.recent.iter().filter(|r| r.seq > from) {
            f.last_seq = r.seq;
            let Some(id) = &r.action_id else { continue };
            match r.kind {
                RecordKind::ActionStarted => {
                    let rb = r.runbook.clone().unwrap_or_default();
                    f.started.insert(id.clone(), (rb, r.at));
                }
                RecordKind::ActionSucceeded | RecordKind::ActionFailed => {
                    if let Some((rb, at)) = f.started.remove(id) {
                        let secs = (r.at - at).num_milliseconds().max(0) as f64 / 1000.0;
                        f.by_runbook.entry(rb).or_default().observe(secs);
                    }
                }
                _ => {}
            }
        }
        if f.started.len() > 10_000 {
            f.started.clear();
        }
    }

    /// The exposition text (format 0.0.4).
    /// `queue_depth`: events waiting for the hub; `backlog`: ingested
    /// samples among them.
    pub fn render(
        &self,
        snap: &Snapshot,
        queue_depth: usize,
        backlog: u64,
        sources: usize,
    ) -> String {
        self.follow(snap);
        let mut o = String::with_capacity(4096);
        let c = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let g = |o: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        c(
            &mut o,
            "vigil_samples_ingested_total",
            "Samples accepted by the ingest API.",
            ld(&self.samples_ingested),
        );
        c(
            &mut o,
            "vigil_samples_evaluated_total",
            "Samples handed to the engine for evaluation.",
            ld(&self.samples_evaluated),
        );
        c(
            &mut o,
            "vigil_webhook_alerts_total",
            "Alerts received from Alertmanager webhooks.",
            ld(&self.webhook_alerts),
        );
        let _ = writeln!(
            o,
            "# HELP vigil_http_requests_total HTTP requests by outcome.\n# TYPE vigil_http_requests_total counter"
        );
        for (k, v) in [
            ("ok", &self.requests_ok),
            ("rejected", &self.requests_rejected),
            ("unauthorized", &self.requests_unauthorized),
            ("rate_limited", &self.requests_limited),
        ] {
            let _ = writeln!(o, "vigil_http_requests_total{{outcome=\"{k}\"}} {}", ld(v));
        }
        let _ = writeln!(
            o,
            "# HELP vigil_series_refused_total Ingested samples of new series refused by a series limit.\n# TYPE vigil_series_refused_total counter"
        );
        for (k, v) in [
            ("max_series_per_metric", &self.refused_per_metric),
            ("max_series", &self.refused_total),
        ] {
            let _ = writeln!(o, "vigil_series_refused_total{{reason=\"{k}\"}} {}", ld(v));
        }
        g(
            &mut o,
            "vigil_series",
            "Series held by the policy evaluator.",
            snap.series.live as f64,
        );
        c(
            &mut o,
            "vigil_series_evicted_total",
            "Series evicted after series_ttl without a sample.",
            snap.series.evicted,
        );
        let _ = writeln!(
            o,
            "# HELP vigil_violations_total Ingested samples that crossed a policy's firing condition.\n# TYPE vigil_violations_total counter"
        );
        if let Ok(m) = self.violations.lock() {
            let mut v: Vec<_> = m.iter().collect();
            v.sort();
            for (p, n) in v {
                let _ = writeln!(o, "vigil_violations_total{{policy=\"{}\"}} {n}", escape(p));
            }
        }
        let _ = writeln!(
            o,
            "# HELP vigil_actions Actions by state (open ones and the most recent finished).\n# TYPE vigil_actions gauge"
        );
        let mut by_state: HashMap<&'static str, u64> = HashMap::new();
        for a in snap.actions.iter() {
            *by_state.entry(a.state.as_str()).or_default() += 1;
        }
        for s in ALL_STATES {
            let _ = writeln!(
                o,
                "vigil_actions{{state=\"{}\"}} {}",
                s.as_str(),
                by_state.get(s.as_str()).copied().unwrap_or(0)
            );
        }
        let firing = snap
            .alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .count();
        g(
            &mut o,
            "vigil_alerts_firing",
            "Alerts firing now.",
            firing as f64,
        );
        g(
            &mut o,
            "vigil_event_queue_depth",
            "Events waiting for the hub.",
            queue_depth as f64,
        );
        g(
            &mut o,
            "vigil_ingest_backlog_samples",
            "Ingested samples waiting for the hub to evaluate them.",
            backlog as f64,
        );
        g(
            &mut o,
            "vigil_audit_seq",
            "The last audit record's sequence number.",
            snap.audit_seq as f64,
        );
        g(
            &mut o,
            "vigil_sources",
            "Configured signal sources.",
            sources as f64,
        );
        let _ = writeln!(
            o,
            "# HELP vigil_executor_seconds Time from action_started to its end, by runbook.\n# TYPE vigil_executor_seconds histogram"
        );
        if let Ok(f) = self.latency.lock() {
            let mut v: Vec<_> = f.by_runbook.iter().collect();
            v.sort_by(|a, b| a.0.cmp(b.0));
            for (rb, h) in v {
                let rb = escape(rb);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "vigil_executor_seconds_bucket{{runbook=\"{rb}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    o,
                    "vigil_executor_seconds_bucket{{runbook=\"{rb}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    o,
                    "vigil_executor_seconds_sum{{runbook=\"{rb}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    o,
                    "vigil_executor_seconds_count{{runbook=\"{rb}\"}} {}",
                    h.count
                );
            }
        }
        o
    }
}

const ALL_STATES: [ActionState; 13] = [
    ActionState::Proposed,
    ActionState::Blocked,
    ActionState::AwaitingApproval,
    ActionState::Approved,
    ActionState::Running,
    ActionState::Verifying,
    ActionState::RetryWaiting,
    ActionState::Done,
    ActionState::Rejected,
    ActionState::Expired,
    ActionState::Escalated,
    ActionState::Cancelled,
    ActionState::Interrupted,
];

/// Escapes a label value for the exposition format.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
