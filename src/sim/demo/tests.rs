use std::collections::{BTreeSet, VecDeque};

use super::*;
use crate::engine::{Command, Engine, Event};
use crate::model::{ActionId, Record, RecordKind};

fn t0() -> Time {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn sample<'a>(v: &'a [Sample], name: &str, host: &str, key: Option<(&str, &str)>) -> &'a Sample {
    v.iter()
        .find(|s| {
            s.name == name
                && s.labels.get("host").map(String::as_str) == Some(host)
                && key.is_none_or(|(k, val)| s.labels.get(k).map(String::as_str) == Some(val))
        })
        .unwrap_or_else(|| panic!("no {name} for {host} {key:?}"))
}

/// The result of running the real engine over the demo fleet.
struct Run {
    log: Vec<Record>,
    fleet: DemoFleet,
    executions: usize,
}

impl Run {
    fn has(&self, kind: RecordKind, f: impl Fn(&Record) -> bool) -> bool {
        self.log.iter().any(|r| r.kind == kind && f(r))
    }

    fn count(&self, kind: RecordKind, f: impl Fn(&Record) -> bool) -> usize {
        self.log.iter().filter(|r| r.kind == kind && f(r)).count()
    }

    fn firing(&self, alert: &str, host: &str) -> usize {
        self.count(RecordKind::AlertFiring, |r| {
            r.alert.as_deref() == Some(alert) && r.target.as_deref() == Some(host)
        })
    }

    fn by(&self, kind: RecordKind, runbook: &str, target: &str) -> usize {
        self.count(kind, |r| {
            r.runbook.as_deref() == Some(runbook) && r.target.as_deref() == Some(target)
        })
    }

    /// The decision log without samples, one line each, offsets from
    /// the start (printed with --nocapture for the timeline).
    fn timeline(&self, start: Time) -> String {
        self.log
            .iter()
            .filter(|r| r.kind != RecordKind::Signal)
            .map(|r| {
                let off = (r.at - start).num_seconds();
                format!(
                    "{:>5}s {:>2}:{:02} {:<20} {:<24} {:<16} {:<10} {}",
                    off,
                    off / 60,
                    off % 60,
                    r.kind.as_str(),
                    r.alert.as_deref().unwrap_or(""),
                    r.runbook.as_deref().unwrap_or(""),
                    r.target.as_deref().unwrap_or(""),
                    r.reason.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs the real engine over the demo on a virtual clock: samples and a
/// tick every `step`, every execution answered by the fleet, every
/// approval request approved `approve_after` later.
fn run(speed: u32, minutes: i64, step: i64, approve_after: i64) -> Run {
    let start = t0();
    let mut fleet = DemoFleet::new(start, speed);
    let setup = fleet
        .config()
        .build("demo", "", false, None)
        .expect("the demo config builds");
    let mut engine = Engine::new(setup);
    let mut log: Vec<Record> = Vec::new();
    let mut approvals: VecDeque<(Time, ActionId)> = VecDeque::new();
    let mut executions = 0;
    let end = start + TimeDelta::minutes(minutes);
    let mut now = start;
    while now <= end {
        let mut cmds = engine.handle(Event::Samples(fleet.step(now)), now);
        cmds.extend(engine.handle(Event::Tick, now));
        while approvals.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, action)) = approvals.pop_front() else {
                break;
            };
            cmds.extend(engine.handle(
                Event::Approve {
                    action,
                    actor: "demo-operator".into(),
                },
                now,
            ));
        }
        let mut queue = VecDeque::from(cmds);
        while let Some(c) = queue.pop_front() {
            match c {
                Command::Record(mut r) => {
                    if r.kind == RecordKind::ApprovalRequested
                        && let Some(id) = r.action_id.as_deref().and_then(ActionId::parse)
                    {
                        approvals.push_back((now + secs(approve_after), id));
                    }
                    r.seq = log.len() as u64 + 1;
                    log.push(r);
                }
                Command::Execute(x) => {
                    executions += 1;
                    assert_eq!(x.executor, "sim");
                    let outcome = fleet.execute(&x, now);
                    queue.extend(engine.handle(
                        Event::Finished {
                            action: x.action,
                            attempt: x.attempt,
                            outcome,
                        },
                        now,
                    ));
                }
                Command::Escalate(_) | Command::Probe(_) => {}
            }
        }
        now += secs(step);
    }
    Run {
        log,
        fleet,
        executions,
    }
}

#[test]
fn the_whole_loop_runs_on_the_real_engine() {
    let r = run(1, 120, 5, 20);
    println!("{}", r.timeline(t0()));
    println!("executions: {}", r.executions);

    // Every incident fires.
    for (alert, host) in [
        ("MemoryPressure", "app-02"),
        ("DiskSpaceLow", "web-03"),
        ("ServiceDown", "api-02"),
        ("ZombieProcesses", "worker-02"),
        ("ConnectionPoolExhausted", "api-01"),
        ("LogFileLarge", "worker-01"),
        ("MemoryPressure", "db-01"),
    ] {
        assert!(r.firing(alert, host) >= 1, "{alert} on {host} never fired");
    }
    // ... and nothing else: healthy hosts only jitter.
    let noisy: BTreeSet<(String, String)> = r
        .log
        .iter()
        .filter(|x| x.kind == RecordKind::AlertFiring)
        .map(|x| {
            (
                x.alert.clone().unwrap_or_default(),
                x.target.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(noisy.len(), 7, "unexpected alerts: {noisy:?}");

    // The fixes: acted on, verified, resolved; and they recur.
    for (alert, runbook, host) in [
        ("MemoryPressure", "memory_pressure", "app-02"),
        ("DiskSpaceLow", "disk_cleanup", "web-03"),
        ("ZombieProcesses", "zombie_killer", "worker-02"),
        ("ConnectionPoolExhausted", "connection_reset", "api-01"),
        ("LogFileLarge", "log_rotation", "worker-01"),
    ] {
        assert!(
            r.by(RecordKind::ActionSucceeded, runbook, host) >= 2,
            "{runbook}@{host} did not succeed twice"
        );
        assert!(
            r.by(RecordKind::VerificationPassed, runbook, host) >= 2,
            "{runbook}@{host} did not verify twice"
        );
        assert_eq!(
            r.by(RecordKind::VerificationFailed, runbook, host),
            0,
            "{runbook}@{host} failed verification"
        );
        assert!(
            r.has(RecordKind::AlertResolved, |x| x.alert.as_deref()
                == Some(alert)
                && x.target.as_deref() == Some(host)),
            "{alert} on {host} never resolved"
        );
        assert!(
            r.firing(alert, host) >= 3,
            "{alert} on {host} did not recur"
        );
    }
    // The detail says what the fix did.
    assert!(r.has(RecordKind::ActionSucceeded, |x| x.runbook.as_deref()
        == Some("disk_cleanup")
        && x.detail.as_deref().is_some_and(
            |d| d.starts_with("freed ") && d.contains(" GiB on /var")
        )));
    assert!(r.has(RecordKind::ActionSucceeded, |x| {
        x.runbook.as_deref() == Some("memory_pressure")
            && x.detail
                .as_deref()
                .is_some_and(|d| d.contains("restarted gunicorn via supervisor"))
    }));
    // The manual ones waited for the operator.
    assert!(r.has(RecordKind::ActionApproved, |x| x.actor.as_deref()
        == Some("demo-operator")
        && x.runbook.as_deref() == Some("memory_pressure")));
    assert!(r.has(RecordKind::ActionApproved, |x| x.actor.as_deref()
        == Some("vigil")
        && x.runbook.as_deref() == Some("disk_cleanup")));

    // The crash loop: three restarts, then the breaker.
    assert_eq!(
        r.by(RecordKind::ActionStarted, "service_restart", "api-02"),
        3
    );
    assert!(r.by(RecordKind::CircuitOpened, "service_restart", "api-02") == 1);
    assert!(r.has(RecordKind::Escalated, |x| x.reason.as_deref()
        == Some("circuit_open")
        && x.target.as_deref() == Some("api-02")));
    assert!(r.has(RecordKind::ActionBlocked, |x| x.reason.as_deref()
        == Some("circuit_open")
        && x.target.as_deref() == Some("api-02")));
    assert!(
        r.firing("ServiceDown", "api-02") >= 5,
        "later episodes fire again"
    );

    // db-01: blocked by its window every time, never acted on.
    let windows = r.count(RecordKind::ActionBlocked, |x| {
        x.target.as_deref() == Some("db-01") && x.reason.as_deref() == Some("maintenance_window")
    });
    assert!(windows >= 5, "db-01 blocked {windows} times");
    assert_eq!(r.firing("MemoryPressure", "db-01"), windows);
    assert_eq!(
        r.count(RecordKind::ActionCancelled, |x| x.target.as_deref()
            == Some("db-01")),
        windows,
        "each backup subsides before its window ends"
    );
    assert!(!r.has(RecordKind::ActionStarted, |x| x.target.as_deref()
        == Some("db-01")));
    assert!(
        !r.has(RecordKind::ApprovalRequested, |x| x.target.as_deref()
            == Some("db-01"))
    );

    // Nothing failed or expired; nobody else tripped a breaker.
    assert_eq!(r.count(RecordKind::ActionFailed, |_| true), 0);
    assert_eq!(r.count(RecordKind::ActionExpired, |_| true), 0);
    assert_eq!(r.count(RecordKind::CircuitOpened, |_| true), 1);
    assert!(r.fleet.incidents().len() <= 7);
}

#[test]
fn the_demo_starts_at_once_and_keeps_a_steady_rhythm() {
    let r = run(1, 12, 1, 15);
    let first = |kind: RecordKind| {
        r.log
            .iter()
            .find(|x| x.kind == kind)
            .map(|x| (x.at - t0()).num_seconds())
    };
    let firing = first(RecordKind::AlertFiring).expect("an alert");
    assert!(firing <= 15, "first alert after {firing}s");
    let asked = first(RecordKind::ApprovalRequested).expect("an approval");
    assert!(asked <= 30, "first approval asked after {asked}s");
    // Then something happens every couple of minutes, not in a burst
    // followed by silence.
    let mut at: Vec<i64> = r
        .log
        .iter()
        .filter(|x| {
            matches!(
                x.kind,
                RecordKind::AlertFiring | RecordKind::ApprovalRequested
            )
        })
        .map(|x| (x.at - t0()).num_seconds())
        .collect();
    at.dedup();
    let gap = at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(gap <= 240, "{gap}s without a new alert or approval: {at:?}");
    assert!(at.last().is_some_and(|l| *l >= 600), "{at:?}");
}

#[test]
fn the_first_minutes_show_a_live_incident() {
    let r = run(1, 5, 1, 15);
    let first = r
        .log
        .iter()
        .find(|x| x.kind == RecordKind::AlertFiring)
        .expect("an alert within 5 minutes");
    assert!(
        (first.at - t0()).num_seconds() <= 90,
        "first alert at {}",
        first.at
    );
    let fired: BTreeSet<_> = r
        .log
        .iter()
        .filter(|x| x.kind == RecordKind::AlertFiring)
        .filter_map(|x| x.target.clone())
        .collect();
    assert!(fired.len() >= 4, "only {fired:?} within 5 minutes");
    assert!(r.has(RecordKind::ApprovalRequested, |x| x.target.as_deref()
        == Some("app-02")));
    assert!(
        r.has(RecordKind::VerificationPassed, |x| x.target.as_deref()
            == Some("web-03"))
    );
}

#[test]
fn a_compressed_clock_keeps_the_story() {
    let r = run(8, 40, 5, 10);
    println!("{}", r.timeline(t0()));
    for (alert, host) in [
        ("MemoryPressure", "app-02"),
        ("DiskSpaceLow", "web-03"),
        ("ServiceDown", "api-02"),
        ("ZombieProcesses", "worker-02"),
        ("ConnectionPoolExhausted", "api-01"),
        ("LogFileLarge", "worker-01"),
        ("MemoryPressure", "db-01"),
    ] {
        assert!(
            r.firing(alert, host) >= 1,
            "{alert} on {host} never fired at speed 8"
        );
    }
    assert!(r.by(RecordKind::CircuitOpened, "service_restart", "api-02") == 1);
    assert!(r.has(RecordKind::ActionBlocked, |x| x.target.as_deref()
        == Some("db-01")
        && x.reason.as_deref() == Some("maintenance_window")));
    assert!(!r.has(RecordKind::ActionStarted, |x| x.target.as_deref()
        == Some("db-01")));
    assert!(r.by(RecordKind::VerificationPassed, "disk_cleanup", "web-03") >= 4);
    // The cool-off outlasts every verification window at any speed.
    assert_eq!(r.count(RecordKind::VerificationFailed, |_| true), 0);
    assert_eq!(r.count(RecordKind::ActionFailed, |_| true), 0);
    assert_eq!(r.count(RecordKind::CircuitOpened, |_| true), 1);
}

#[test]
fn the_fleet_is_a_dozen_hosts_in_four_groups() {
    let f = DemoFleet::new(t0(), 1);
    let hosts = f.hosts();
    assert_eq!(hosts.len(), 14);
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in &hosts {
        assert_eq!(h.executor.as_deref(), Some("sim"));
        assert_eq!(h.labels.get("env").map(String::as_str), Some("prod"));
        for k in ["group", "role", "service_manager"] {
            assert!(h.labels.contains_key(k), "{} has no {k}", h.name);
        }
        assert!(!h.services.is_empty());
        groups
            .entry(h.labels["group"].clone())
            .or_default()
            .push(h.name.clone());
    }
    assert_eq!(
        groups["web"],
        ["web-01", "web-02", "web-03", "web-04", "app-01", "app-02"]
    );
    assert_eq!(groups["api"], ["api-01", "api-02", "api-03"]);
    assert_eq!(groups["db"], ["db-01", "db-02"]);
    assert_eq!(groups["workers"], ["worker-01", "worker-02", "worker-03"]);
    // Every memory series names a service of its host (the runbooks'
    // precondition), and every service has a service_up series.
    let samples = DemoFleet::new(t0(), 1).step(t0());
    for h in &hosts {
        let m = sample(&samples, "memory_used_percent", &h.name, None);
        assert!(h.services.contains(&m.labels["service"]), "{}", h.name);
        for s in &h.services {
            assert_eq!(
                sample(&samples, "service_up", &h.name, Some(("service", s))).value,
                1.0
            );
        }
    }
    for name in [
        "cpu_used_percent",
        "load1",
        "memory_used_percent",
        "disk_used_percent",
        "service_up",
        "log_file_bytes",
        "zombie_processes",
        "connection_pool_used_ratio",
    ] {
        assert!(samples.iter().any(|s| s.name == name), "no {name}");
    }
}

#[test]
fn the_window_and_overrides_are_valid_config() {
    let f = DemoFleet::new(t0(), 1);
    let w = f.windows();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].reason, "nightly backup (demo: every 20m)");
    assert_eq!(w[0].selector.get("host").map(String::as_str), Some("db-01"));
    // 09:00:00 + 150 s → the 09:03 window, then every 20 minutes.
    assert_eq!(w[0].schedule, "3-59/20 * * * *");
    let mw = MaintenanceWindow::compile(&w[0]).unwrap();
    assert_eq!(mw.active_until(t0()), None);
    let open: Time = "2026-03-02T09:03:00Z".parse().unwrap();
    assert_eq!(mw.active_until(open), Some(open + TimeDelta::minutes(5)));
    assert_eq!(
        mw.active_until(open + TimeDelta::minutes(20)),
        Some(open + TimeDelta::minutes(25))
    );
    // A start just before a window's minute still gets ≥ 150 s of calm.
    let late: Time = "2026-03-02T09:17:29Z".parse().unwrap();
    assert_eq!(
        DemoFleet::new(late, 1).windows()[0].schedule,
        "0-59/20 * * * *"
    );

    let rbs = f.config_overrides();
    assert_eq!(rbs.len(), 6);
    assert_eq!(rbs["disk_cleanup"]["approval"].as_str(), Some("auto"));
    assert_eq!(rbs["zombie_killer"]["approval"].as_str(), Some("auto"));
    assert_eq!(rbs["service_restart"]["max_runs"].as_str(), Some("3/10m"));
    assert_eq!(rbs["memory_pressure"]["max_runs"].as_str(), Some("12/1h"));
    assert_eq!(
        DemoFleet::new(t0(), 8).config_overrides()["disk_cleanup"]["max_runs"].as_str(),
        Some("60/1h")
    );
    // Each value converts to a RunbookOverride (as the console merges
    // them), and the whole reads as `[runbooks.NAME]` tables in a file.
    for (name, v) in rbs.clone() {
        assert!(v.try_into::<RunbookOverride>().is_ok(), "{name}");
    }
    assert_eq!(f.runbook_overrides().len(), 6);
    let mut file = toml::Table::new();
    file.insert("runbooks".into(), toml::Value::Table(rbs));
    let text = toml::to_string(&file).unwrap();
    let c = Config::parse("demo.toml", &text).unwrap();
    let setup = c
        .build("demo.toml", &text, false, Some("sim".into()))
        .unwrap();
    let zk = setup.catalog.get("zombie_killer").unwrap();
    assert_eq!(zk.cooldown, TimeDelta::minutes(2));
    let sr = setup.catalog.get("service_restart").unwrap();
    assert_eq!(sr.max_runs.count, 3);
    assert!(sr.approval.needs_human(crate::model::Severity::Critical));
}

#[test]
fn samples_depend_on_time_not_on_how_often_step_is_called() {
    let mut a = DemoFleet::new(t0(), 1);
    let mut b = DemoFleet::new(t0(), 1);
    let at = t0() + secs(437);
    for s in 0..437 {
        a.step(t0() + secs(s));
    }
    assert_eq!(a.step(at), b.step(at));
    // Another seed jitters differently but tells the same story.
    let mut c = DemoFleet::with_seed(t0(), 1, 7);
    let sc = c.step(at);
    let sa = a.step(at);
    assert_ne!(sa, sc);
    let web03 = |v: &[Sample]| {
        sample(
            v,
            "disk_used_percent",
            "web-03",
            Some(("mountpoint", "/var")),
        )
        .value
    };
    assert!((web03(&sa) - web03(&sc)).abs() < 0.5);
}

#[test]
fn healthy_hosts_stay_inside_the_thresholds() {
    let mut f = DemoFleet::new(t0(), 1);
    // The incidents' own series; everything else stays healthy.
    let sick = [
        ("disk_used_percent", "web-03", "/var"),
        ("memory_used_percent", "app-02", ""),
        ("service_up", "api-02", "payments"),
        ("zombie_processes", "worker-02", ""),
        ("connection_pool_used_ratio", "api-01", ""),
        ("log_file_bytes", "worker-01", ""),
        ("memory_used_percent", "db-01", ""),
    ];
    for s in (0..4 * 3600).step_by(7) {
        for x in f.step(t0() + secs(s)) {
            let host = x.labels["host"].as_str();
            let key = ["mountpoint", "service"]
                .iter()
                .find_map(|k| x.labels.get(*k))
                .map(String::as_str)
                .unwrap_or("");
            if sick
                .iter()
                .any(|(n, h, k)| *n == x.name && *h == host && (k.is_empty() || *k == key))
            {
                continue;
            }
            let ok = match x.name.as_str() {
                "disk_used_percent" => x.value < 75.0,
                "memory_used_percent" => x.value < 80.0,
                "service_up" => x.value == 1.0,
                "log_file_bytes" => x.value < 512.0 * MIB,
                "zombie_processes" => x.value <= 5.0,
                "connection_pool_used_ratio" => x.value < 0.75,
                "cpu_used_percent" => (0.0..=100.0).contains(&x.value),
                "load1" => x.value >= 0.0,
                "node_filesystem_size_bytes" => x.value >= 40.0 * GIB,
                other => panic!("unexpected metric {other}"),
            };
            assert!(ok, "{} {:?} = {} at +{s}s", x.name, x.labels, x.value);
        }
    }
}

#[test]
fn unattended_incidents_cap_then_clear_by_themselves() {
    let mut f = DemoFleet::new(t0(), 1);
    let at = |f: &mut DemoFleet, s: i64| f.step(t0() + secs(s));
    let v = at(&mut f, 600);
    assert!(sample(&v, "memory_used_percent", "app-02", None).value > 96.0);
    assert!(
        sample(
            &v,
            "disk_used_percent",
            "web-03",
            Some(("mountpoint", "/var"))
        )
        .value
            > 95.0
    );
    assert!(sample(&v, "zombie_processes", "worker-02", None).value > 20.0);
    // The kernel OOM-kills the leak after 25 minutes of it.
    let oom = 20.0 - (90.0 - 41.0) / 0.16 + 1500.0;
    let v = at(&mut f, oom as i64 + 5);
    assert!(sample(&v, "memory_used_percent", "app-02", None).value < 50.0);
}

fn exec(runbook: &str, target: &str, params: &[(&str, &str)]) -> Execution {
    Execution {
        action: ActionId(1),
        attempt: 1,
        runbook: runbook.into(),
        target: target.into(),
        executor: "sim".into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        steps: Vec::new(),
    }
}

#[test]
fn hosts_the_fleet_does_not_have_are_refused() {
    // The engine: no executor for a host outside the fleet.
    let setup = DemoFleet::new(t0(), 1)
        .config()
        .build("demo", "", false, None)
        .unwrap();
    let mut engine = Engine::new(setup);
    let labels: Labels = labels(&[
        ("alertname", "DiskSpaceLow"),
        ("host", "web-99"),
        ("mountpoint", "/var"),
    ]);
    let cmds = engine.handle(
        Event::Alert(crate::model::IncomingAlert {
            labels,
            annotations: Labels::new(),
            status: crate::model::AlertStatus::Firing,
            fingerprint: None,
            starts_at: None,
            ends_at: None,
            source: Some("alertmanager".into()),
            generator_url: None,
        }),
        t0(),
    );
    let blocked: Vec<&Record> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Record(r) if r.kind == RecordKind::ActionBlocked => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(blocked.len(), 1, "{cmds:?}");
    assert_eq!(blocked[0].reason.as_deref(), Some("no_executor"));
    assert!(!cmds.iter().any(|c| matches!(c, Command::Execute(_))));
    // The executor: a clear failure, nothing changed.
    let mut f = DemoFleet::new(t0(), 1);
    let o = f.execute(&exec("disk_cleanup", "web-99", &[]), t0());
    assert!(!o.success);
    assert_eq!(o.detail, "the demo fleet has no host \"web-99\"");
}

#[test]
fn the_sim_executor_fixes_what_the_runbook_fixes() {
    let mut f = DemoFleet::new(t0(), 1);
    let now = t0() + secs(200);
    let v = f.step(now);
    let disk = |v: &[Sample]| {
        sample(
            v,
            "disk_used_percent",
            "web-03",
            Some(("mountpoint", "/var")),
        )
        .value
    };
    assert!(disk(&v) > 85.0);
    let o = f.execute(
        &exec("disk_cleanup", "web-03", &[("mountpoint", "/var")]),
        now,
    );
    assert!(o.success, "{o:?}");
    assert!(
        o.detail.starts_with("freed ") && o.detail.contains(" GiB on /var ("),
        "{}",
        o.detail
    );
    let data = o.data.unwrap();
    assert!(data["freed_bytes"].as_u64().unwrap() > 40 * GIB as u64);
    assert!(disk(&f.step(now)) < 60.0);
    // The disk fills again: the incident restarts after a cool-off.
    assert!(disk(&f.step(now + secs(300))) < 85.0);
    assert!(disk(&f.step(now + secs(540))) > 85.0);

    let o = f.execute(
        &exec(
            "memory_pressure",
            "app-02",
            &[("service", "gunicorn"), ("manager", "supervisor")],
        ),
        now,
    );
    assert!(
        o.detail
            .starts_with("restarted gunicorn via supervisor: memory 9"),
        "{}",
        o.detail
    );
    assert!(sample(&f.step(now), "memory_used_percent", "app-02", None).value < 45.0);

    let o = f.execute(
        &exec("zombie_killer", "worker-02", &[("max_zombies", "5")]),
        now + secs(300),
    );
    assert!(o.detail.starts_with("reaped "), "{}", o.detail);
    assert!(
        sample(
            &f.step(now + secs(300)),
            "zombie_processes",
            "worker-02",
            None
        )
        .value
            <= 2.0
    );

    let at = now + secs(400);
    assert!(sample(&f.step(at), "connection_pool_used_ratio", "api-01", None).value > 0.95);
    let o = f.execute(
        &exec("connection_reset", "api-01", &[("service", "orders")]),
        at,
    );
    assert!(
        o.detail.starts_with("terminated ") && o.detail.contains("pool orders_db 99% → 32% used")
            || o.detail.contains("pool orders_db 100% → 32% used"),
        "{}",
        o.detail
    );
    assert!(sample(&f.step(at), "connection_pool_used_ratio", "api-01", None).value < 0.4);

    let at = now + secs(500);
    let path = "/var/log/celery/worker.log";
    assert!(sample(&f.step(at), "log_file_bytes", "worker-01", None).value > GIB);
    let o = f.execute(&exec("log_rotation", "worker-01", &[("path", path)]), at);
    assert!(
        o.detail.starts_with(
            "rotated /var/log/celery/worker.log: 2.7 GiB → 24 MiB (kept worker.log.1.gz, "
        ),
        "{}",
        o.detail
    );
    assert!(sample(&f.step(at), "log_file_bytes", "worker-01", None).value < 64.0 * MIB);

    // A healthy host gets a small change that wears off.
    let before = sample(
        &f.step(at),
        "disk_used_percent",
        "web-01",
        Some(("mountpoint", "/")),
    )
    .value;
    let o = f.execute(&exec("disk_cleanup", "web-01", &[("mountpoint", "/")]), at);
    assert!(o.success);
    let after = sample(
        &f.step(at),
        "disk_used_percent",
        "web-01",
        Some(("mountpoint", "/")),
    )
    .value;
    assert!(after < before && after > before - 5.0, "{before} → {after}");

    // What it cannot do, it says.
    assert!(!f.execute(&exec("disk_cleanup", "mail-01", &[]), at).success);
    assert!(
        !f.execute(
            &exec("disk_cleanup", "web-01", &[("mountpoint", "/srv")]),
            at
        )
        .success
    );
    assert!(
        !f.execute(
            &exec("service_restart", "web-01", &[("service", "payments")]),
            at
        )
        .success
    );
    assert!(
        !f.execute(&exec("connection_reset", "web-01", &[]), at)
            .success
    );
    let o = f.execute(&exec("reboot", "web-01", &[]), at);
    assert_eq!(o.exit_code, Some(127));
}

#[test]
fn the_crash_looping_service_dies_again_after_each_restart() {
    let mut f = DemoFleet::new(t0(), 1);
    let up = |f: &mut DemoFleet, s: i64| {
        sample(
            &f.step(t0() + secs(s)),
            "service_up",
            "api-02",
            Some(("service", "payments")),
        )
        .value
    };
    assert_eq!(up(&mut f, 2), 1.0);
    assert_eq!(up(&mut f, 3), 0.0);
    let o = f.execute(
        &exec(
            "service_restart",
            "api-02",
            &[("service", "payments"), ("manager", "docker")],
        ),
        t0() + secs(53),
    );
    assert_eq!(o.detail, "restarted payments via docker: active (running)");
    assert_eq!(up(&mut f, 53), 1.0);
    assert_eq!(up(&mut f, 127), 1.0);
    assert_eq!(up(&mut f, 128), 0.0);
    assert!(
        f.incidents()
            .iter()
            .any(|i| i.starts_with("api-02 payments is crash-looping")
                && i.contains("(1 restart so far)"))
    );
    // The rollback ends the episode; the next one comes 40 minutes later.
    assert_eq!(up(&mut f, 1000), 1.0);
    assert_eq!(up(&mut f, 2402), 1.0);
    assert_eq!(up(&mut f, 2403), 0.0);
    // Another service of the same host restarts and stays up.
    let o = f.execute(
        &exec("service_restart", "api-02", &[("service", "orders")]),
        t0() + secs(2403),
    );
    assert!(o.success);
    assert_eq!(
        sample(
            &f.step(t0() + secs(2603)),
            "service_up",
            "api-02",
            Some(("service", "orders"))
        )
        .value,
        1.0
    );
}

#[test]
fn db01s_backup_spikes_only_inside_its_window() {
    let mut f = DemoFleet::new(t0(), 1);
    let w = MaintenanceWindow::compile(&f.windows()[0]).unwrap();
    let mut seen_high = false;
    for s in (0..3 * 3600).step_by(5) {
        let now = t0() + secs(s);
        let v = sample(
            &f.step(now),
            "memory_used_percent",
            "db-01",
            Some(("service", "postgresql")),
        )
        .value;
        match w.active_until(now) {
            Some(end) => {
                if v > 90.0 {
                    seen_high = true;
                    // Subsides at least 30 s before the window ends.
                    assert!(end - now >= secs(30), "still {v} at {now}");
                }
            }
            None => assert!(v < 80.0, "{v} outside the window at {now}"),
        }
    }
    assert!(seen_high);
    // db-02 never.
    let v = f.step(t0() + secs(3 * 60 + 60));
    assert!(sample(&v, "memory_used_percent", "db-02", None).value < 80.0);
    assert!(sample(&v, "memory_used_percent", "db-01", None).value > 90.0);
    assert!(
        f.incidents()
            .iter()
            .any(|i| i.starts_with("db-01 nightly backup running"))
    );
}

#[test]
fn incidents_describe_what_is_going_on() {
    let mut f = DemoFleet::new(t0(), 1);
    f.step(t0());
    let i = f.incidents();
    assert_eq!(i.len(), 3, "{i:?}");
    assert!(
        i[0].starts_with("web-03 /var is filling up with old logs: 8"),
        "{i:?}"
    );
    assert!(
        i[1].starts_with("app-02 gunicorn is leaking memory: 8"),
        "{i:?}"
    );
    // The log that fills first, seconds after start.
    assert!(
        i[2].starts_with("worker-01 /var/log/celery/worker.log has grown to"),
        "{i:?}"
    );
    f.step(t0() + secs(240));
    let i = f.incidents();
    for want in [
        "web-03 /var is filling up",
        "app-02 gunicorn is leaking memory",
        "api-02 payments is crash-looping after a bad deploy: down (0 restarts so far)",
        "worker-02 has 2",
        "db-01 nightly backup running (maintenance window until 2026-03-02T09:08:00Z)",
    ] {
        assert!(
            i.iter().any(|x| x.starts_with(want)),
            "no {want:?} in {i:?}"
        );
    }
    f.step(t0() + secs(440));
    let i = f.incidents();
    assert!(
        i.iter()
            .any(|x| x.starts_with("api-01 connection pool orders_db is running dry")),
        "{i:?}"
    );
    assert!(
        i.iter()
            .any(|x| x.starts_with("worker-01 /var/log/celery/worker.log has grown to")),
        "{i:?}"
    );
}

#[test]
fn the_fleet_can_move_into_a_task() {
    fn send<T: Send + 'static>(_: &T) {}
    send(&DemoFleet::new(t0(), 1));
}

#[test]
fn speed_compresses_the_metric_clock() {
    let mut slow = DemoFleet::new(t0(), 1);
    let mut fast = DemoFleet::new(t0(), 10);
    assert_eq!(fast.speed(), 10);
    assert_eq!(DemoFleet::new(t0(), 0).speed(), 1);
    let disk = |v: &[Sample]| {
        sample(
            v,
            "disk_used_percent",
            "web-03",
            Some(("mountpoint", "/var")),
        )
        .value
    };
    assert_eq!(
        disk(&slow.step(t0() + secs(300))),
        disk(&fast.step(t0() + secs(30)))
    );
}
