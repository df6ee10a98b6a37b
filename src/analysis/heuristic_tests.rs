//! Unit tests for each heuristic, on inputs built by hand.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;

use super::*;
use crate::analysis::input::{AlertFacts, Point, SeriesHistory, WindowOccurrence};
use crate::analysis::trend::fit;
use crate::analysis::{Rejection, check};
use crate::model::{AlertStatus, Labels, Record, RecordKind, Severity, Time};

fn t0() -> Time {
    "2026-05-01T00:00:00Z".parse().unwrap()
}

fn at(mins: i64) -> Time {
    t0() + TimeDelta::minutes(mins)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pts(v: &[(i64, f64)]) -> Vec<Point> {
    v.iter()
        .map(|(m, x)| Point {
            at: at(*m),
            value: *x,
        })
        .collect()
}

fn series(name: &str, l: &[(&str, &str)], v: &[(i64, f64)]) -> SeriesHistory {
    SeriesHistory {
        name: name.into(),
        labels: labels(l),
        points: pts(v),
    }
}

fn alert(name: &str, condition: &str, l: &[(&str, &str)], since: i64) -> AlertFacts {
    let labels = labels(l);
    AlertFacts {
        name: name.into(),
        fingerprint: crate::model::fingerprint(&labels),
        host: labels.get("host").cloned(),
        labels,
        annotations: Labels::new(),
        severity: Severity::Warning,
        status: AlertStatus::Firing,
        since: at(since),
        value: None,
        condition: (!condition.is_empty()).then(|| condition.to_string()),
        relation: None,
    }
}

fn input(a: AlertFacts, series: Vec<SeriesHistory>) -> AnalysisInput {
    AnalysisInput {
        at: a.since,
        alert: a,
        host_labels: labels(&[("group", "web")]),
        series,
        related: Vec::new(),
        records: Vec::new(),
        windows: Vec::new(),
    }
}

fn heuristic() -> Heuristic {
    Heuristic::new(Arc::new(Catalog::builtin()))
}

/// Analyses and checks that the result passes the strict validation.
fn analyse(i: &AnalysisInput) -> Analysis {
    let h = heuristic();
    let a = h.analyse(i);
    check(a.clone(), i, h.catalog()).expect("the heuristic's own result passes the checks");
    a
}

fn mem_alert(since: i64) -> AlertFacts {
    alert(
        "MemoryPressure",
        "memory_used_percent > 90",
        &[
            ("alertname", "MemoryPressure"),
            ("host", "app-02"),
            ("service", "gunicorn"),
        ],
        since,
    )
}

fn mem_series(v: &[(i64, f64)]) -> SeriesHistory {
    series(
        "memory_used_percent",
        &[("host", "app-02"), ("service", "gunicorn")],
        v,
    )
}

#[test]
fn fit_tells_climb_step_spike_flat_and_too_little() {
    let climb = fit(
        &pts(&[(0, 50.0), (60, 60.0), (120, 70.0), (180, 80.0)]),
        Some(100.0),
    );
    assert_eq!(climb.shape, Shape::Climb);
    assert!((climb.slope_per_hour - 10.0).abs() < 1e-9);
    assert_eq!(climb.exhaustion, Some(TimeDelta::hours(2)));

    let step = fit(
        &pts(&[(0, 40.0), (60, 40.5), (120, 80.0), (240, 80.5)]),
        None,
    );
    assert_eq!(step.shape, Shape::Step);
    assert_eq!(step.onset.at, at(60));

    let spike = fit(
        &pts(&[(0, 40.0), (60, 41.0), (100, 41.5), (110, 70.0), (115, 95.0)]),
        None,
    );
    assert_eq!(
        spike.shape,
        Shape::Spike,
        "a rise over two samples within 30m"
    );
    assert_eq!(spike.onset.at, at(100));

    // A sawtooth that still climbs (garbage collection on a leaking heap).
    let saw: Vec<(i64, f64)> = (0..24)
        .map(|i| {
            (
                i * 15,
                50.0 + i as f64 * 1.5 - if i % 3 == 2 { 12.0 } else { 0.0 },
            )
        })
        .collect();
    assert_eq!(fit(&pts(&saw), Some(100.0)).shape, Shape::Climb);
    // A climb over two minutes that levels off near the ceiling, sampled
    // every 10 s (a compressed clock): still a climb, not a jump.
    let fast: Vec<Point> = (0..16)
        .map(|i| Point {
            at: t0() + TimeDelta::seconds(i * 10),
            value: (87.0 + i as f64 * 1.5).min(97.3),
        })
        .collect();
    assert_eq!(fit(&fast, Some(100.0)).shape, Shape::Climb);
    assert_eq!(
        fit(&pts(&[(0, 5.0), (1, 5.0), (2, 5.0)]), None).shape,
        Shape::Flat
    );
    assert_eq!(fit(&pts(&[(0, 5.0)]), None).shape, Shape::Insufficient);
    assert_eq!(
        fit(&pts(&[(0, 40.0), (17, 97.0)]), None).shape,
        Shape::Spike,
        "two points with a large rise"
    );
}

#[test]
fn steady_climb_is_a_leak_and_recommends_memory_pressure() {
    let i = input(
        mem_alert(360),
        vec![mem_series(&[
            (0, 60.0),
            (120, 70.0),
            (240, 81.0),
            (360, 91.0),
        ])],
    );
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::MemoryLeak);
    assert_eq!(a.top_runbook(), "memory_pressure");
    assert_eq!(a.runbooks[0].params["service"], "gunicorn");
    assert!(a.evidence.iter().any(|e| e.kind == EvidenceKind::Series));
}

#[test]
fn a_spike_inside_a_backup_window_is_a_scheduled_job_not_a_leak() {
    let mut i = input(
        mem_alert(135),
        vec![mem_series(&[
            (0, 40.0),
            (60, 41.0),
            (120, 40.0),
            (131, 96.0),
            (135, 96.0),
        ])],
    );
    i.windows.push(WindowOccurrence {
        reason: "nightly backup".into(),
        schedule: "0 2 * * *".into(),
        start: at(120),
        end: at(180),
    });
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::ScheduledJob);
    assert_eq!(a.top_runbook(), "none");
    assert!(a.evidence.iter().any(|e| e.kind == EvidenceKind::Window));
}

#[test]
fn a_window_that_only_covers_a_slow_climb_does_not_explain_it() {
    let mut i = input(
        mem_alert(600),
        vec![mem_series(&[
            (0, 50.0),
            (200, 64.0),
            (400, 78.0),
            (600, 91.0),
        ])],
    );
    i.windows.push(WindowOccurrence {
        reason: "nightly backup".into(),
        schedule: "0 2 * * *".into(),
        start: at(580),
        end: at(640),
    });
    assert_eq!(analyse(&i).cause, Cause::MemoryLeak);
}

#[test]
fn restarts_in_the_last_minutes_are_a_crash_loop_and_no_restart_is_recommended() {
    let a_ = alert(
        "ServiceDown",
        "service_up == 0",
        &[
            ("alertname", "ServiceDown"),
            ("host", "api-01"),
            ("service", "api"),
        ],
        10,
    );
    let mut i = input(
        a_,
        vec![series(
            "service_up",
            &[("host", "api-01"), ("service", "api")],
            &[(0, 0.0), (1, 1.0), (9, 0.0)],
        )],
    );
    for (seq, m) in [(3, 1), (7, 5)] {
        let mut r = Record::new(RecordKind::ActionStarted, at(m));
        r.seq = seq;
        r.runbook = Some("service_restart".into());
        r.target = Some("api-01".into());
        r.params = Some(BTreeMap::from([("service".to_string(), "api".to_string())]));
        i.records.push(r);
    }
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::CrashLoop);
    assert!(a.runbooks.is_empty(), "another restart is the wrong fix");
    assert_eq!(
        a.evidence
            .iter()
            .filter(|e| e.kind == EvidenceKind::Record)
            .count(),
        2
    );
}

#[test]
fn a_first_failure_recommends_a_restart_but_stays_inconclusive() {
    let a_ = alert(
        "ServiceDown",
        "service_up == 0",
        &[
            ("alertname", "ServiceDown"),
            ("host", "web-03"),
            ("service", "nginx"),
        ],
        90,
    );
    let i = input(
        a_,
        vec![series(
            "service_up",
            &[("host", "web-03"), ("service", "nginx")],
            &[(0, 1.0), (60, 1.0), (89, 0.0)],
        )],
    );
    let a = analyse(&i);
    assert!(a.inconclusive());
    assert_eq!(a.top_runbook(), "service_restart");
}

#[test]
fn request_rate_surge_is_a_traffic_spike() {
    let a_ = alert(
        "ConnectionPoolExhausted",
        "connection_pool_used_ratio > 0.95",
        &[
            ("alertname", "ConnectionPoolExhausted"),
            ("host", "app-18"),
            ("service", "shop"),
            ("pool", "main"),
        ],
        44,
    );
    let i = input(
        a_,
        vec![
            series(
                "connection_pool_used_ratio",
                &[("host", "app-18"), ("service", "shop"), ("pool", "main")],
                &[(0, 0.3), (20, 0.31), (35, 0.7), (40, 0.97), (44, 0.98)],
            ),
            series(
                "http_requests_per_second",
                &[("host", "app-18")],
                &[(0, 200.0), (20, 210.0), (35, 480.0), (40, 890.0)],
            ),
        ],
    );
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::TrafficSpike);
    assert_eq!(a.top_runbook(), "none");
}

#[test]
fn a_pool_that_fills_while_traffic_is_flat_is_a_connection_leak() {
    let a_ = alert(
        "ConnectionPoolExhausted",
        "connection_pool_used_ratio > 0.95",
        &[
            ("alertname", "ConnectionPoolExhausted"),
            ("host", "app-16"),
            ("service", "orders"),
            ("pool", "primary"),
        ],
        300,
    );
    let i = input(
        a_,
        vec![
            series(
                "connection_pool_used_ratio",
                &[
                    ("host", "app-16"),
                    ("service", "orders"),
                    ("pool", "primary"),
                ],
                &[(0, 0.4), (100, 0.6), (200, 0.8), (300, 0.96)],
            ),
            series(
                "http_requests_per_second",
                &[("host", "app-16")],
                &[(0, 300.0), (100, 310.0), (200, 295.0), (300, 305.0)],
            ),
        ],
    );
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::ConnectionLeak);
    assert_eq!(a.top_runbook(), "connection_reset");
    assert_eq!(a.runbooks[0].params["service"], "orders");
}

#[test]
fn a_failing_dependency_probe_means_dependency_down() {
    let a_ = alert(
        "ServiceDown",
        "service_up == 0",
        &[
            ("alertname", "ServiceDown"),
            ("host", "app-14"),
            ("service", "checkout"),
        ],
        31,
    );
    let i = input(
        a_,
        vec![
            series(
                "service_up",
                &[("host", "app-14"), ("service", "checkout")],
                &[(0, 1.0), (30, 0.0)],
            ),
            series(
                "dependency_up",
                &[("host", "app-14"), ("dependency", "postgres")],
                &[(0, 1.0), (29, 0.0)],
            ),
        ],
    );
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::DependencyDown);
    assert!(a.runbooks.is_empty());
}

#[test]
fn the_same_alert_across_the_group_at_once_points_at_a_shared_dependency() {
    let mk = |h: &str, since: i64| {
        alert(
            "ServiceDown",
            "service_up == 0",
            &[
                ("alertname", "ServiceDown"),
                ("host", h),
                ("service", "api"),
            ],
            since,
        )
    };
    let mut i = input(mk("api-23", 22), Vec::new());
    for (h, s) in [("api-21", 20), ("api-22", 21)] {
        let mut a = mk(h, s);
        a.relation = Some("group".into());
        i.related.push(a);
    }
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::DependencyDown);
    assert_eq!(
        a.evidence
            .iter()
            .filter(|e| e.kind == EvidenceKind::Alert)
            .count(),
        2
    );
}

fn disk_alert(l: &[(&str, &str)]) -> AlertFacts {
    let mut all = vec![("alertname", "DiskSpaceLow")];
    all.extend_from_slice(l);
    alert("DiskSpaceLow", "disk_used_percent > 85", &all, 600)
}

#[test]
fn a_log_top_consumer_means_log_growth_and_rotates_that_file() {
    let s = series(
        "disk_used_percent",
        &[
            ("host", "web-01"),
            ("mountpoint", "/"),
            ("top_consumer", "/var/log/nginx/access.log"),
        ],
        &[(0, 60.0), (200, 70.0), (400, 79.0), (600, 88.0)],
    );
    let i = input(
        disk_alert(&[("host", "web-01"), ("mountpoint", "/")]),
        vec![s],
    );
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::DiskGrowthLogs);
    assert_eq!(a.top_runbook(), "log_rotation");
    assert_eq!(a.runbooks[0].params["path"], "/var/log/nginx/access.log");
}

#[test]
fn database_data_filling_a_disk_never_gets_disk_cleanup() {
    let s = series(
        "disk_used_percent",
        &[("host", "db-03"), ("mountpoint", "/var/lib/postgresql")],
        &[(0, 71.0), (200, 76.0), (400, 81.0), (600, 86.0)],
    );
    let i = input(
        disk_alert(&[("host", "db-03"), ("mountpoint", "/var/lib/postgresql")]),
        vec![s],
    );
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::DiskGrowthData);
    assert!(!a.runbooks.iter().any(|r| r.runbook == "disk_cleanup"));
}

#[test]
fn climbing_zombies_are_reaped_by_zombie_killer() {
    let a_ = alert(
        "ZombieProcesses",
        "zombie_processes > 20",
        &[("alertname", "ZombieProcesses"), ("host", "batch-01")],
        240,
    );
    let i = input(
        a_,
        vec![series(
            "zombie_processes",
            &[("host", "batch-01")],
            &[(0, 3.0), (80, 9.0), (160, 16.0), (240, 24.0)],
        )],
    );
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::ZombieAccumulation);
    assert_eq!(a.top_runbook(), "zombie_killer");
}

#[test]
fn too_little_history_is_inconclusive() {
    let i = input(mem_alert(2), vec![mem_series(&[(0, 95.0), (2, 95.0)])]);
    let a = analyse(&i);
    assert!(a.inconclusive());
    assert!(a.runbooks.is_empty());
    assert!(a.confidence < 0.5);
}

#[test]
fn check_rejects_hallucinations_and_injections() {
    let i = input(
        mem_alert(360),
        vec![mem_series(&[
            (0, 60.0),
            (120, 70.0),
            (240, 81.0),
            (360, 91.0),
        ])],
    );
    let h = heuristic();
    let good = h.analyse(&i);
    let mut bad = good.clone();
    bad.runbooks = vec![Recommendation {
        runbook: "reboot_host".into(),
        params: BTreeMap::new(),
        why: String::new(),
    }];
    assert_eq!(
        check(bad, &i, h.catalog()),
        Err(Rejection::UnknownRunbook("reboot_host".into()))
    );
    let mut bad = good.clone();
    bad.runbooks[0]
        .params
        .insert("service".into(), "gunicorn; rm -rf /".into());
    assert!(matches!(
        check(bad, &i, h.catalog()),
        Err(Rejection::BadParam { .. })
    ));
    let mut bad = good.clone();
    bad.runbooks[0]
        .params
        .insert("service".into(), "sshd".into());
    assert!(
        matches!(check(bad, &i, h.catalog()), Err(Rejection::BadParam { .. })),
        "a value that passes the pattern but appears nowhere in the input is invented"
    );
    let mut bad = good.clone();
    bad.evidence[0].value = "12".into();
    assert!(matches!(
        check(bad, &i, h.catalog()),
        Err(Rejection::EvidenceNotInInput { .. })
    ));
    let mut bad = good;
    bad.confidence = 1.5;
    assert_eq!(
        check(bad, &i, h.catalog()),
        Err(Rejection::BadConfidence(1.5))
    );
}

// Weighing: shares, capacity, and the same checks for every analyser.

const GB: f64 = 1e9;

/// A 100 GB root file system over six hours: used grows `disk_gb_h`
/// GB/h from `used0` GB, the data directory `data_gb_h`, the log
/// `log_gb_h` (from `log0` GB).
fn disk_case(
    used0: f64,
    disk_gb_h: f64,
    data_gb_h: f64,
    log0: f64,
    log_gb_h: f64,
) -> AnalysisInput {
    let hours = [0i64, 60, 120, 180, 240, 300, 360];
    let mk = |f: &dyn Fn(f64) -> f64| -> Vec<(i64, f64)> {
        hours.iter().map(|m| (*m, f(*m as f64 / 60.0))).collect()
    };
    let size = 100.0 * GB;
    let used = |h: f64| (used0 + disk_gb_h * h) * GB;
    let a = alert(
        "DiskSpaceLow",
        "disk_used_percent > 85",
        &[
            ("alertname", "DiskSpaceLow"),
            ("host", "db-09"),
            ("mountpoint", "/"),
        ],
        360,
    );
    input(
        a,
        vec![
            series(
                "disk_used_percent",
                &[("host", "db-09"), ("mountpoint", "/")],
                &mk(&|h| (used(h) / size * 1000.0).round() / 10.0),
            ),
            series(
                "node_filesystem_avail_bytes",
                &[("host", "db-09"), ("mountpoint", "/")],
                &mk(&|h| size - used(h)),
            ),
            series(
                "node_filesystem_size_bytes",
                &[("host", "db-09"), ("mountpoint", "/")],
                &mk(&|_| size),
            ),
            series(
                "directory_size_bytes",
                &[("host", "db-09"), ("path", "/var/lib/postgresql/16/main")],
                &mk(&|h| (40.0 + data_gb_h * h) * GB),
            ),
            series(
                "log_file_bytes",
                &[("host", "db-09"), ("path", "/var/log/app/app.log")],
                &mk(&|h| (log0 + log_gb_h * h) * GB),
            ),
        ],
    )
}

#[test]
fn the_contributor_explaining_most_of_the_growth_is_the_cause() {
    // The case: the log grows 40 MB/h, the data directory 6 GB/h.
    let i = disk_case(50.0, 6.04, 6.0, 1.0, 0.04);
    let h = heuristic();
    let (a, x) = h.assessed(&i);
    check(a.clone(), &i, h.catalog()).unwrap();
    assert_eq!(a.cause, Cause::DiskGrowthData, "{a:#?}");
    assert!(a.runbooks.is_empty(), "no runbook frees data: {a:#?}");
    let w = x.weighing.as_ref().unwrap();
    assert_eq!(w.basis, weigh::ShareBasis::Resource);
    assert!((w.contributors[0].share - 0.993).abs() < 0.01, "{w:#?}");
    assert!((w.contributors[1].share - 0.0066).abs() < 0.002, "{w:#?}");
    let notes: Vec<&str> = a.evidence.iter().map(|e| e.note.as_str()).collect();
    assert!(
        notes[0].starts_with("data /var/lib/postgresql/16/main: 99% of the growth"),
        "{notes:?}"
    );
    assert!(
        notes[1].starts_with("log /var/log/app/app.log: 0.7%"),
        "{notes:?}"
    );
    let cap = w.capacity.as_ref().unwrap();
    assert_eq!(cap.size, 100.0 * GB);
    assert!((cap.growth_per_hour - 6.04 * GB).abs() < 0.01 * GB);
    // 86.24 GB used: 13.76 GB left at 6.04 GB/h is about 2.3 h.
    let full = cap.full_in_secs.unwrap();
    assert!((8000..8400).contains(&full), "{full}");
    assert!((cap.needed.unwrap() - 1.24 * GB).abs() < 0.01 * GB);
    // The matched cleanup is passed over, with the reason.
    let d = x
        .declined
        .iter()
        .find(|d| d.runbook == "disk_cleanup")
        .unwrap();
    assert!(d.why.contains("explains 99% of the growth"), "{}", d.why);

    // The log explaining most of it: rotate it (it holds more than needed).
    let i = disk_case(50.0, 6.1, 0.1, 20.0, 6.0);
    let (a, x) = h.assessed(&i);
    check(a.clone(), &i, h.catalog()).unwrap();
    assert_eq!(a.cause, Cause::DiskGrowthLogs);
    assert_eq!(a.top_runbook(), "log_rotation");
    assert_eq!(a.runbooks[0].params["path"], "/var/log/app/app.log");
    assert_eq!(x.recommended[0].frees_at_most, Some(56.0 * GB));

    // Neither explains a meaningful share: unknown, and the usual cleanup.
    let i = disk_case(50.0, 6.0, 0.5, 1.0, 0.3);
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::Unknown, "{a:#?}");
    assert!(
        a.summary
            .contains("no candidate explains a meaningful share")
    );
    assert_eq!(a.top_runbook(), "disk_cleanup");
}

#[test]
fn a_runbook_that_cannot_free_what_is_needed_is_not_recommended() {
    // The log explains most of the growth and holds 28 GB; the alert's
    // threshold (50%) needs 42 GB freed.
    let mut i = disk_case(62.0, 5.0, 0.2, 0.5, 4.6);
    i.alert.condition = Some("disk_used_percent > 50".into());
    let h = heuristic();
    let (a, x) = h.assessed(&i);
    check(a.clone(), &i, h.catalog()).unwrap();
    assert_eq!(a.cause, Cause::DiskGrowthLogs, "{a:#?}");
    assert!(
        !a.runbooks.iter().any(|r| r.runbook == "log_rotation"),
        "{a:#?}"
    );
    let d = x
        .declined
        .iter()
        .find(|d| d.runbook == "log_rotation")
        .unwrap();
    assert!(
        d.why
            .starts_with("log_rotation would free at most 26.2 GiB of the 39.1 GiB needed"),
        "{}",
        d.why
    );
    assert!(d.frees_at_most.unwrap() < d.needed.unwrap());
    // An answer recommending it anyway is rejected (the LLM's too).
    let mut bad = a.clone();
    bad.runbooks = vec![Recommendation {
        runbook: "log_rotation".into(),
        params: [("path".to_string(), "/var/log/app/app.log".to_string())].into(),
        why: "rotate".into(),
    }];
    assert!(matches!(
        check(bad, &i, h.catalog()),
        Err(Rejection::CannotCover { .. })
    ));
}

#[test]
fn an_llm_answer_is_held_to_the_shares_and_gets_them_in_its_prompt() {
    let i = disk_case(50.0, 6.04, 6.0, 1.0, 0.04);
    let h = heuristic();
    let answer = serde_json::json!({
        "summary": "the log grows",
        "cause": "disk_growth_logs",
        "confidence": 0.8,
        "evidence": [],
        "runbooks": [{"runbook": "log_rotation", "params": {"path": "/var/log/app/app.log"}, "why": "rotate"}],
    });
    let e = crate::analysis::llm::parse_answer(&answer.to_string(), &i, h.catalog()).unwrap_err();
    assert!(
        e.to_string()
            .contains("log_rotation would free at most 1.2 GiB of the 1.2 GiB needed"),
        "{e}"
    );
    let mut answer = answer;
    answer["runbooks"] = serde_json::json!([]);
    let e = crate::analysis::llm::parse_answer(&answer.to_string(), &i, h.catalog()).unwrap_err();
    assert!(
        e.to_string().contains("contradicts the weighed shares")
            && e.to_string()
                .contains("data /var/lib/postgresql/16/main: 99%"),
        "{e}"
    );
    let body = crate::analysis::llm::request_body("m", &i, h.catalog(), false);
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("Weighed facts"), "{user}");
    assert!(user.contains("\"runbook_capacity\""));
    assert!(user.contains("\"share\":0.99"), "{user}");
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("meaningful_share"));
}

#[test]
fn repeated_out_of_memory_kills_are_a_crash_loop() {
    let i = input(
        mem_alert(60),
        vec![
            mem_series(&[
                (0, 70.0),
                (15, 95.0),
                (16, 40.0),
                (30, 96.0),
                (31, 42.0),
                (45, 95.0),
                (46, 41.0),
                (60, 92.0),
            ]),
            series(
                "node_vmstat_oom_kill",
                &[("host", "app-02")],
                &[(0, 4.0), (16, 5.0), (31, 6.0), (46, 7.0), (60, 7.0)],
            ),
        ],
    );
    let a = analyse(&i);
    assert_eq!(a.cause, Cause::CrashLoop, "{a:#?}");
    assert!(a.runbooks.is_empty());
    assert!(
        a.evidence
            .iter()
            .any(|e| e.note.contains("out-of-memory kills within the hour"))
    );
}

#[test]
fn memory_weighed_by_service_names_the_leaking_one() {
    let gib = 1024.0 * 1024.0 * 1024.0;
    let m = |v: &[(i64, f64)]| v.to_vec();
    let i = input(
        mem_alert(120),
        vec![
            mem_series(&m(&[
                (0, 60.0),
                (30, 68.0),
                (60, 76.0),
                (90, 84.0),
                (120, 92.0),
            ])),
            series(
                "node_memory_MemTotal_bytes",
                &[("host", "app-02")],
                &[(0, 16.0 * gib), (120, 16.0 * gib)],
            ),
            series(
                "process_resident_memory_bytes",
                &[("host", "app-02"), ("service", "celery")],
                &[(0, 1.0 * gib), (60, 1.0 * gib), (120, 1.02 * gib)],
            ),
            series(
                "process_resident_memory_bytes",
                &[("host", "app-02"), ("service", "gunicorn")],
                &[(0, 2.0 * gib), (60, 4.4 * gib), (120, 6.8 * gib)],
            ),
        ],
    );
    let h = heuristic();
    let (a, x) = h.assessed(&i);
    check(a.clone(), &i, h.catalog()).unwrap();
    assert_eq!(a.cause, Cause::MemoryLeak, "{a:#?}");
    assert_eq!(a.runbooks[0].params["service"], "gunicorn");
    let w = x.weighing.unwrap();
    assert!(
        w.contributors[0].what == "service gunicorn" && w.contributors[0].share > 0.9,
        "{w:#?}"
    );
    // Restarting gunicorn frees at most its 6.8 GiB; 0.32 GiB are needed.
    assert_eq!(x.recommended[0].frees_at_most, Some(6.8 * gib));
}
