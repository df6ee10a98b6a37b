//! A deterministic incident for the console's tests and benchmarks: a real
//! engine fed real alerts and samples at fixed times, so every pane has
//! something true to show. Nothing here is used by the running console.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};

use crate::config::Config;
use crate::engine::{Command, Engine, Event};
use crate::hub::{HealthState, HostView, Snapshot, SourceHealth};
use crate::model::{AlertStatus, IncomingAlert, Labels, Record, Sample, Severity, Time};

const HOSTS: &str = r#"
operator = "alice"
[[hosts]]
name = "web-01"
labels = { group = "web", service_manager = "systemd" }
services = ["nginx"]
[[hosts]]
name = "web-02"
labels = { group = "web", service_manager = "systemd" }
services = ["nginx"]
[[hosts]]
name = "web-03"
labels = { group = "web", service_manager = "systemd" }
services = ["nginx"]
[[hosts]]
name = "api-01"
labels = { group = "api", service_manager = "systemd" }
services = ["payments"]
[[hosts]]
name = "db-01"
labels = { group = "db", service_manager = "systemd" }
services = ["postgresql"]
"#;

/// The fixed start of the story.
pub fn t0() -> Time {
    Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0)
        .single()
        .unwrap_or_default()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alert(name: &str, host: &str, severity: &str, extra: &[(&str, &str)]) -> Event {
    let mut l = labels(&[("alertname", name), ("host", host), ("severity", severity)]);
    l.extend(labels(extra));
    Event::Alert(IncomingAlert {
        labels: l,
        annotations: labels(&[("summary", &format!("{name} on {host}"))]),
        status: AlertStatus::Firing,
        fingerprint: None,
        starts_at: None,
        ends_at: None,
        source: Some("alertmanager".into()),
        generator_url: None,
    })
}

/// An engine, its audit records (numbered), and the time it ends at.
pub struct Incident {
    pub engine: Engine,
    pub records: Vec<Record>,
    pub now: Time,
}

/// Builds the incident: a service down awaiting approval, a disk cleanup
/// that ran, a pending memory condition, an info alert, a resolved one,
/// and `extra` more warning alerts across made-up hosts.
pub fn incident(extra: usize) -> Incident {
    let c = match Config::parse("fixture.toml", HOSTS) {
        Ok(c) => c,
        Err(e) => panic!("fixture config: {e:?}"),
    };
    let setup = match c.build("fixture.toml", HOSTS, false, Some("sim".into())) {
        Ok(s) => s,
        Err(e) => panic!("fixture setup: {e:?}"),
    };
    let mut e = Engine::new(setup);
    let mut records = Vec::new();
    let mut at = t0();
    let feed = |e: &mut Engine, ev: Event, at: Time, records: &mut Vec<Record>| {
        for c in e.handle(ev, at) {
            if let Command::Record(mut r) = c {
                r.seq = records.len() as u64 + 1;
                records.push(r);
            }
        }
    };
    feed(
        &mut e,
        alert(
            "ServiceDown",
            "api-01",
            "critical",
            &[("service", "payments")],
        ),
        at,
        &mut records,
    );
    at += TimeDelta::seconds(20);
    feed(
        &mut e,
        alert(
            "DiskSpaceLow",
            "web-03",
            "warning",
            &[("mountpoint", "/var")],
        ),
        at,
        &mut records,
    );
    at += TimeDelta::seconds(15);
    feed(
        &mut e,
        alert("NodeClockSkew", "db-01", "info", &[]),
        at,
        &mut records,
    );
    at += TimeDelta::seconds(5);
    feed(
        &mut e,
        alert("HighLatency", "web-01", "high", &[("route", "/checkout")]),
        at,
        &mut records,
    );
    let mut resolved = match alert("CronJobFailed", "web-02", "warning", &[("job", "backup")]) {
        Event::Alert(a) => a,
        _ => unreachable!(),
    };
    feed(&mut e, Event::Alert(resolved.clone()), at, &mut records);
    at += TimeDelta::seconds(10);
    resolved.status = AlertStatus::Resolved;
    feed(&mut e, Event::Alert(resolved), at, &mut records);
    // A memory condition that holds but not yet for its `for`.
    feed(
        &mut e,
        Event::Sample(Sample {
            name: "memory_used_percent".into(),
            labels: labels(&[("host", "web-02"), ("service", "gunicorn")]),
            value: 93.5,
        }),
        at,
        &mut records,
    );
    for i in 0..extra {
        let host = format!("node-{:05}", i);
        feed(
            &mut e,
            alert("DiskSpaceLow", &host, "warning", &[("mountpoint", "/data")]),
            at,
            &mut records,
        );
    }
    at += TimeDelta::seconds(30);
    feed(&mut e, Event::Tick, at, &mut records);
    Incident {
        engine: e,
        records,
        now: at,
    }
}

/// The snapshot the hub would publish for the incident, with hosts and
/// sources filled in and the first alert in focus.
pub fn snapshot(inc: &Incident, focus: Option<String>) -> Snapshot {
    let mut s = Snapshot::of_engine(&inc.engine, inc.now, focus);
    s.operator = "alice".into();
    s.audit_seq = inc.records.len() as u64;
    s.recent = Arc::new(
        inc.records
            .iter()
            .rev()
            .take(500)
            .rev()
            .cloned()
            .map(Arc::new)
            .collect(),
    );
    s.sources = vec![
        SourceHealth {
            name: "alertmanager".into(),
            kind: "alertmanager".into(),
            state: HealthState::Ok,
            detail: "webhook".into(),
            last_ok: Some(inc.now),
        },
        SourceHealth {
            name: "prometheus".into(),
            kind: "prometheus".into(),
            state: HealthState::Down,
            detail: "connection refused".into(),
            last_ok: None,
        },
    ];
    let counted = |h: &str| {
        let firing: Vec<_> = s
            .alerts
            .iter()
            .filter(|a| a.status == crate::model::AlertStatus::Firing && a.host() == Some(h))
            .collect();
        let actions = s
            .actions
            .iter()
            .filter(|a| a.target == h && a.is_open())
            .count();
        (
            firing.len() as u32,
            firing.iter().map(|a| a.severity).max(),
            actions as u32,
        )
    };
    let counts: Vec<_> = ["api-01", "db-01", "web-01", "web-02", "web-03"]
        .iter()
        .map(|h| counted(h))
        .collect();
    s.hosts = ["api-01", "db-01", "web-01", "web-02", "web-03"]
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut metrics = BTreeMap::new();
            let mut history = BTreeMap::new();
            let disk: VecDeque<f64> = (0..60)
                .map(|k| {
                    40.0 + (i as f64) * 8.0 + (k as f64) * if *h == "web-03" { 0.8 } else { 0.05 }
                })
                .collect();
            let mem: VecDeque<f64> = (0..60)
                .map(|k| 50.0 + ((k * (i + 1)) % 17) as f64)
                .collect();
            metrics.insert(
                "disk_used_percent".to_string(),
                disk.back().copied().unwrap_or(0.0),
            );
            metrics.insert(
                "memory_used_percent".to_string(),
                mem.back().copied().unwrap_or(0.0),
            );
            history.insert("disk_used_percent".to_string(), disk);
            history.insert("memory_used_percent".to_string(), mem);
            HostView {
                name: h.to_string(),
                group: Some(h.split('-').next().unwrap_or("-").to_string()),
                metrics,
                history,
                series: BTreeMap::new(),
                configured: true,
                last_seen: Some(inc.now),
                source: Some("demo".into()),
                alerts: counts[i].0,
                worst: counts[i].1,
                actions: counts[i].2,
                ..HostView::default()
            }
        })
        .collect::<Vec<_>>()
        .into();
    s.runbooks = Arc::new(crate::hub::runbook_infos(&inc.engine));
    // An analysis of the service that keeps dying, as the heuristic would
    // give it.
    if let Some(a) = s.alerts.iter().find(|a| a.name == "ServiceDown") {
        use crate::analysis::{
            AnalyserKind, Analysis, Cause, Evidence, EvidenceKind, Recommendation,
            live::{AnalysisState, AnalysisView},
        };
        s.analyses.insert(
            a.fingerprint.clone(),
            AnalysisView {
                alert: a.name.clone(),
                target: a.host().map(str::to_string),
                state: AnalysisState::Done,
                analyser: AnalyserKind::Heuristic,
                analysis: Analysis {
                    summary: "payments on api-01 stopped; nothing else on the host is wrong".into(),
                    cause: Cause::Unknown,
                    confidence: 0.4,
                    evidence: vec![Evidence {
                        kind: EvidenceKind::Alert,
                        signal: "ServiceDown".into(),
                        value: "api-01".into(),
                        at: Some(a.since),
                        note: "the first failure in the window".into(),
                    }],
                    runbooks: vec![Recommendation {
                        runbook: "service_restart".into(),
                        params: [("service".to_string(), "payments".to_string())].into(),
                        why: "a first failure: one restart is reasonable".into(),
                    }],
                    would_change: vec!["a restart in the last 15 minutes (a crash loop)".into()],
                },
                streamed: String::new(),
                fallback: None,
                at: inc.now,
            },
        );
    }
    s
}

/// The fingerprint of the incident's most severe firing alert.
pub fn first_alert(s: &Snapshot) -> Option<String> {
    s.alerts
        .iter()
        .find(|a| a.status == AlertStatus::Firing && a.severity == Severity::Critical)
        .map(|a| a.fingerprint.clone())
}

/// The incident with the disk alert on web-03 in focus and the hub's
/// weighing of it: /var fills with one log file, the matched cleanup
/// frees too little, and the analysis recommends rotating the log.
pub fn weighed_disk(inc: &Incident) -> Snapshot {
    use crate::analysis::assess::{Assessed, Assessment, Declined};
    use crate::analysis::weigh::{
        Capacity, Contributor, ContributorKind, ShareBasis, Unit, Weighing,
    };
    use crate::engine::SuggestionOrigin;
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let base = snapshot(inc, None);
    let fp = base
        .alerts
        .iter()
        .find(|a| a.name == "DiskSpaceLow" && a.host() == Some("web-03"))
        .map(|a| a.fingerprint.clone());
    let mut s = snapshot(inc, fp);
    let path = "/var/log/app/app.log";
    let weighing = Weighing {
        capacity: Some(Capacity {
            resource: "disk /var".into(),
            unit: Unit::Bytes,
            size: 200.0 * GIB,
            used: 176.0 * GIB,
            growth_per_hour: 12.0 * GIB,
            full_in_secs: Some(7200),
            threshold: Some(170.0 * GIB),
            needed: Some(6.0 * GIB),
            size_from: "node_filesystem_size_bytes".into(),
        }),
        contributors: vec![
            Contributor {
                series: format!("log_file_bytes{{path=\"{path}\"}}"),
                what: format!("log {path}"),
                kind: ContributorKind::Log,
                size: 40.0 * GIB,
                growth_per_hour: 11.0 * GIB,
                share: 0.92,
                param: Some(("path".into(), path.into())),
                last: None,
            },
            Contributor {
                series: "dir_bytes{path=\"/var/tmp\"}".into(),
                what: "temp /var/tmp".into(),
                kind: ContributorKind::Temp,
                size: GIB,
                growth_per_hour: 0.05 * GIB,
                share: 0.004,
                param: None,
                last: None,
            },
        ],
        basis: ShareBasis::Resource,
        from: None,
        to: None,
    };
    let params: BTreeMap<String, String> = [("path".to_string(), path.to_string())].into();
    s.assessment = Some(Arc::new(Assessment {
        weighing: Some(weighing),
        recommended: vec![Assessed {
            runbook: "log_rotation".into(),
            params: params.clone(),
            frees_at_most: Some(40.0 * GIB),
            needed: Some(6.0 * GIB),
        }],
        declined: vec![Declined {
            runbook: "disk_cleanup".into(),
            params: BTreeMap::new(),
            why: "disk_cleanup would free at most 1.0 GiB of the 6.0 GiB needed".into(),
            frees_at_most: Some(GIB),
            needed: Some(6.0 * GIB),
        }],
    }));
    let unit = Some("bytes".to_string());
    for x in &mut s.suggestions {
        x.origin = SuggestionOrigin::Match;
        x.why_not = vec![format!(
            "{} would free at most 1.0 GiB of the 6.0 GiB needed to bring disk /var below 170.0 GiB",
            x.runbook
        )];
        x.frees_at_most = Some(GIB);
        x.needed = Some(6.0 * GIB);
        x.unit = unit.clone();
    }
    let mut rec = match s.suggestions.first() {
        Some(x) => x.clone(),
        None => panic!("fixture: no runbook matches the disk alert"),
    };
    rec.runbook = "log_rotation".into();
    rec.origin = SuggestionOrigin::Analysis;
    rec.analysis_rank = Some(1);
    rec.proposable = true;
    rec.score = 0;
    rec.reasons = Vec::new();
    rec.block = None;
    rec.params = Ok(params);
    rec.plan = Vec::new();
    rec.why = vec![format!(
        "the analysis recommends it: log {path} explains 92% of the growth"
    )];
    rec.why_not = Vec::new();
    rec.frees_at_most = Some(40.0 * GIB);
    s.suggestions.insert(1.min(s.suggestions.len()), rec);
    s
}
