//! Pure state tests of the engine on a virtual clock: events in, records
//! and commands out. No sleeps, no I/O.

use super::*;
use crate::config::Config;
use crate::model::Labels;

fn t(secs: i64) -> Time {
    "2026-05-01T12:00:00Z".parse::<Time>().unwrap() + TimeDelta::seconds(secs)
}

fn engine(config: &str) -> Engine {
    let mut text = String::from(
        r#"
[[hosts]]
name = "web-01"
labels = { group = "web" }
services = ["nginx", "gunicorn"]
[[hosts]]
name = "web-02"
labels = { group = "web" }
services = ["nginx"]
[[hosts]]
name = "web-03"
labels = { group = "web" }
services = ["nginx"]
"#,
    );
    text.push_str(config);
    let c = Config::parse("t.toml", &text).unwrap();
    Engine::new(c.build("t.toml", &text, false, Some("sim".into())).unwrap())
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn records(cmds: &[Command]) -> Vec<&Record> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Record(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn kinds(cmds: &[Command]) -> Vec<RecordKind> {
    records(cmds).iter().map(|r| r.kind).collect()
}

fn firing(name: &str, host: &str, extra: &[(&str, &str)]) -> Event {
    let mut l = labels(&[("alertname", name), ("host", host)]);
    l.extend(labels(extra));
    Event::Alert(IncomingAlert {
        labels: l,
        annotations: Labels::new(),
        status: AlertStatus::Firing,
        fingerprint: None,
        starts_at: None,
        ends_at: None,
        source: Some("test".into()),
    })
}

#[test]
fn the_same_alert_delivered_twice_is_one_alert_and_one_action() {
    let mut e = engine("");
    let first = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    assert!(kinds(&first).contains(&RecordKind::ApprovalRequested));
    let again = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(5),
    );
    assert!(again.is_empty(), "a redelivery changes nothing: {again:?}");
    assert_eq!(e.actions().count(), 1);
    assert_eq!(e.alerts().count(), 1);
}

#[test]
fn records_come_before_the_execution_they_describe() {
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    let cmds = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    let started = cmds
        .iter()
        .position(|c| matches!(c, Command::Record(r) if r.kind == RecordKind::ActionStarted))
        .unwrap();
    let exec = cmds
        .iter()
        .position(|c| matches!(c, Command::Execute(_)))
        .unwrap();
    assert!(started < exec);
    let Command::Execute(x) = &cmds[exec] else {
        unreachable!()
    };
    assert_eq!(x.params.get("service").unwrap(), "nginx");
    assert!(
        x.steps
            .iter()
            .any(|s| s.argv == ["systemctl", "restart", "--", "nginx"])
    );
}

#[test]
fn approval_reject_and_actor_are_recorded() {
    let mut e = engine("");
    e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    let id = e.find_action("service_restart", "web-01").unwrap();
    let cmds = e.handle(
        Event::Reject {
            action: id,
            actor: "ana".into(),
            reason: "it is being deployed".into(),
        },
        t(10),
    );
    let r = records(&cmds);
    assert_eq!(r[0].kind, RecordKind::ActionRejected);
    assert_eq!(r[0].actor.as_deref(), Some("ana"));
    assert_eq!(r[0].reason.as_deref(), Some("it is being deployed"));
    assert_eq!(e.action(id).unwrap().state, ActionState::Rejected);
    // approving a rejected action does nothing
    assert!(
        e.handle(
            Event::Approve {
                action: id,
                actor: "bo".into()
            },
            t(11)
        )
        .is_empty()
    );
}

#[test]
fn dry_run_plans_instead_of_running() {
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    e.handle(
        Event::SetDryRun {
            on: true,
            actor: "ana".into(),
        },
        t(0),
    );
    let cmds = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(1),
    );
    assert!(kinds(&cmds).contains(&RecordKind::DryRunPlanned));
    assert!(!kinds(&cmds).contains(&RecordKind::ActionStarted));
    assert!(!cmds.iter().any(|c| matches!(c, Command::Execute(_))));
    let plan = records(&cmds)
        .into_iter()
        .find(|r| r.kind == RecordKind::DryRunPlanned)
        .unwrap();
    assert!(
        plan.detail
            .as_deref()
            .unwrap()
            .contains("systemctl restart -- nginx")
    );
}

#[test]
fn freeze_blocks_and_unfreeze_lets_it_run() {
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    e.handle(
        Event::SetFrozen {
            on: true,
            actor: "ana".into(),
        },
        t(0),
    );
    let cmds = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(1),
    );
    let blocked = records(&cmds)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionBlocked)
        .unwrap();
    assert_eq!(blocked.reason.as_deref(), Some("frozen"));
    let cmds = e.handle(
        Event::SetFrozen {
            on: false,
            actor: "ana".into(),
        },
        t(60),
    );
    assert_eq!(kinds(&cmds)[0], RecordKind::ModeChanged);
    assert!(kinds(&cmds).contains(&RecordKind::ActionStarted));
}

#[test]
fn hostile_label_is_param_invalid_and_never_executes() {
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    for bad in [
        "nginx; reboot",
        "$(reboot)",
        "`id`",
        "a\nb",
        "../../etc",
        "-rf",
        "nginx && true",
    ] {
        let cmds = e.handle(firing("ServiceDown", "web-01", &[("service", bad)]), t(0));
        let blocked = records(&cmds)
            .into_iter()
            .find(|r| r.kind == RecordKind::ActionBlocked);
        assert_eq!(
            blocked.and_then(|r| r.reason.as_deref()),
            Some("param_invalid"),
            "{bad:?}"
        );
        assert!(
            !cmds.iter().any(|c| matches!(c, Command::Execute(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn an_alert_without_a_host_never_acts() {
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    let mut l = labels(&[("alertname", "ServiceDown"), ("service", "nginx")]);
    l.remove("host");
    let cmds = e.handle(
        Event::Alert(IncomingAlert {
            labels: l,
            annotations: Labels::new(),
            status: AlertStatus::Firing,
            fingerprint: None,
            starts_at: None,
            ends_at: None,
            source: None,
        }),
        t(0),
    );
    let blocked = records(&cmds)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionBlocked)
        .unwrap();
    assert_eq!(blocked.reason.as_deref(), Some("param_invalid"));
    assert!(blocked.detail.as_deref().unwrap().contains("no target"));
}

#[test]
fn blast_radius_allows_one_of_three_then_the_next_when_it_is_done() {
    let mut e = engine("[runbooks.disk_cleanup]\napproval = \"auto\"\ncooldown = \"0s\"\n");
    let mut execs = Vec::new();
    for h in ["web-01", "web-02", "web-03"] {
        let cmds = e.handle(firing("DiskSpaceLow", h, &[("mountpoint", "/")]), t(0));
        execs.extend(cmds.iter().filter_map(|c| match c {
            Command::Execute(x) => Some(x.clone()),
            _ => None,
        }));
        if h != "web-01" {
            let b = records(&cmds)
                .into_iter()
                .find(|r| r.kind == RecordKind::ActionBlocked)
                .unwrap();
            assert_eq!(b.reason.as_deref(), Some("concurrency_limit"));
        }
    }
    assert_eq!(execs.len(), 1);
    // The first finishes and verifies; then one more may go.
    let x = &execs[0];
    e.handle(
        Event::Finished {
            action: x.action,
            attempt: 1,
            outcome: Outcome::success("ok"),
        },
        t(10),
    );
    let cmds = e.handle(
        Event::Alert(IncomingAlert {
            labels: labels(&[
                ("alertname", "DiskSpaceLow"),
                ("host", "web-01"),
                ("mountpoint", "/"),
            ]),
            annotations: Labels::new(),
            status: AlertStatus::Resolved,
            fingerprint: None,
            starts_at: None,
            ends_at: None,
            source: None,
        }),
        t(20),
    );
    assert!(kinds(&cmds).contains(&RecordKind::AlertResolved));
    let due = e.next_deadline().unwrap();
    let cmds = e.handle(Event::Tick, due);
    assert!(kinds(&cmds).contains(&RecordKind::VerificationPassed));
    let started = records(&cmds)
        .into_iter()
        .filter(|r| r.kind == RecordKind::ActionStarted)
        .count();
    assert_eq!(started, 1, "{:?}", kinds(&cmds));
}

#[test]
fn failed_runs_retry_with_backoff_then_escalate() {
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\nmax_runs = \"10/10m\"\n");
    let cmds = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    let mut x = cmds
        .iter()
        .find_map(|c| match c {
            Command::Execute(x) => Some(x.clone()),
            _ => None,
        })
        .unwrap();
    let mut now = t(0);
    let mut retries = Vec::new();
    loop {
        let cmds = e.handle(
            Event::Finished {
                action: x.action,
                attempt: x.attempt,
                outcome: Outcome::failure(Some(1), "exit 1"),
            },
            now,
        );
        if kinds(&cmds).contains(&RecordKind::Escalated) {
            assert!(cmds.iter().any(|c| matches!(c, Command::Escalate(_))));
            break;
        }
        let due = e.next_deadline().unwrap();
        retries.push((due - now).num_seconds());
        now = due;
        let cmds = e.handle(Event::Tick, now);
        x = cmds
            .iter()
            .find_map(|c| match c {
                Command::Execute(x) => Some(x.clone()),
                _ => None,
            })
            .unwrap();
    }
    assert_eq!(retries, vec![30, 60]);
    assert_eq!(e.action(x.action).unwrap().state, ActionState::Escalated);
}

#[test]
fn approval_requests_expire_and_escalate() {
    let mut e = engine("");
    e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    assert_eq!(e.next_deadline(), Some(t(1800)));
    let cmds = e.handle(Event::Tick, t(1800));
    assert_eq!(
        kinds(&cmds),
        vec![RecordKind::ActionExpired, RecordKind::Escalated]
    );
}

#[test]
fn interrupted_actions_wait_for_a_human_and_block_duplicates() {
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    let mut params = BTreeMap::new();
    params.insert("service".to_string(), "nginx".to_string());
    params.insert("manager".to_string(), "systemd".to_string());
    let cmds = e.restore(
        Restored {
            next_action: 8,
            interrupted: vec![InterruptedAction {
                id: ActionId(7),
                runbook: "service_restart".into(),
                target: "web-01".into(),
                params,
                alert: "ServiceDown".into(),
            }],
            ..Default::default()
        },
        t(0),
    );
    assert_eq!(kinds(&cmds), vec![RecordKind::ActionInterrupted]);
    assert!(!cmds.iter().any(|c| matches!(c, Command::Execute(_))));
    let cmds = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(5),
    );
    let b = records(&cmds)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionBlocked)
        .unwrap();
    assert_eq!(b.reason.as_deref(), Some("duplicate"));
    assert_eq!(b.action_id.as_deref(), Some("A000008"));
    // An operator approves the re-run.
    let cmds = e.handle(
        Event::Approve {
            action: ActionId(7),
            actor: "ana".into(),
        },
        t(10),
    );
    assert!(kinds(&cmds).contains(&RecordKind::ActionStarted));
}

#[test]
fn protected_and_precondition_guards_name_the_value() {
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    let cmds = e.handle(
        firing("ServiceDown", "web-01", &[("service", "postgresql")]),
        t(0),
    );
    let b = records(&cmds)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionBlocked)
        .unwrap();
    assert_eq!(b.reason.as_deref(), Some("protected_target"));
    assert!(b.detail.as_deref().unwrap().contains("postgresql"));
    let cmds = e.handle(
        firing("ServiceDown", "web-02", &[("service", "gunicorn")]),
        t(0),
    );
    let b = records(&cmds)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionBlocked)
        .unwrap();
    assert_eq!(b.reason.as_deref(), Some("precondition_failed"));
}

#[test]
fn breaker_stays_open_until_reset() {
    let mut e = engine(
        "[runbooks.service_restart]\napproval = \"auto\"\ncooldown = \"0s\"\nmax_runs = \"1/1h\"\n",
    );
    let cmds = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    let x = cmds
        .iter()
        .find_map(|c| match c {
            Command::Execute(x) => Some(x.clone()),
            _ => None,
        })
        .unwrap();
    e.handle(
        Event::Finished {
            action: x.action,
            attempt: 1,
            outcome: Outcome::success("ok"),
        },
        t(1),
    );
    let resolved = IncomingAlert {
        labels: labels(&[
            ("alertname", "ServiceDown"),
            ("host", "web-01"),
            ("service", "nginx"),
        ]),
        annotations: Labels::new(),
        status: AlertStatus::Resolved,
        fingerprint: None,
        starts_at: None,
        ends_at: None,
        source: None,
    };
    e.handle(Event::Alert(resolved.clone()), t(2));
    e.handle(Event::Tick, t(120));
    let cmds = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(200),
    );
    assert!(kinds(&cmds).contains(&RecordKind::CircuitOpened));
    // Hours later it is still open: only a human closes it.
    e.handle(Event::Alert(resolved), t(300));
    let cmds = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(10_000),
    );
    let b = records(&cmds)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionBlocked)
        .unwrap();
    assert_eq!(b.reason.as_deref(), Some("circuit_open"));
    let cmds = e.handle(
        Event::ResetBreaker {
            runbook: "service_restart".into(),
            target: "web-01".into(),
            actor: "ana".into(),
        },
        t(10_010),
    );
    assert_eq!(kinds(&cmds)[0], RecordKind::CircuitClosed);
    assert!(kinds(&cmds).contains(&RecordKind::ActionStarted));
}

/// Samples by series key (the ingest API) and by labels (the simulator)
/// drive the same alerts and actions.
#[test]
fn keyed_samples_fire_and_resolve_like_labelled_ones() {
    let mut by_labels = engine("");
    let mut by_key = engine("");
    let l = labels(&[("host", "web-02"), ("mountpoint", "/")]);
    let key = crate::model::SeriesKey::of("disk_used_percent", &l);
    let mut fired = false;
    for (i, v) in [50.0, 96.0, 97.0, 97.0, 97.0, 97.0, 97.0, 97.0, 40.0, 40.0]
        .into_iter()
        .enumerate()
    {
        let now = t(i as i64 * 60);
        let a = by_labels.handle(
            Event::Samples(vec![Sample {
                name: "disk_used_percent".into(),
                value: v,
                labels: l.clone(),
            }]),
            now,
        );
        let b = by_key.handle(
            Event::Keyed(vec![crate::model::KeyedSample {
                key: key.clone(),
                value: v,
            }]),
            now,
        );
        assert_eq!(kinds(&a), kinds(&b), "after sample {i} ({v})");
        fired |= kinds(&b).contains(&RecordKind::AlertFiring);
    }
    assert!(fired, "the disk policy fired");
    assert!(
        by_key
            .alerts()
            .all(|a| a.status == crate::model::AlertStatus::Resolved),
        "and resolved"
    );
}

/// Durations far past anything the config accepts (as if one slipped
/// through): every deadline saturates at the end of chrono's calendar and
/// nothing panics, whichever path the action takes.
#[test]
fn absurd_durations_never_panic() {
    let text = "[[hosts]]\nname = \"web-01\"\nlabels = { group = \"web\" }\nservices = [\"nginx\"]\n\
                [runbooks.disk_cleanup]\napproval = \"auto\"\n";
    let c = Config::parse("t.toml", text).unwrap();
    for huge in [
        TimeDelta::MAX,
        TimeDelta::MIN,
        TimeDelta::days(365 * 10_000_000),
    ] {
        let mut setup = c.build("t.toml", text, false, Some("sim".into())).unwrap();
        setup.settings.approval_expiry = huge;
        setup.settings.retry_backoff = huge;
        for rb in &mut setup.catalog.runbooks {
            rb.cooldown = huge;
            rb.verify_window = huge;
            rb.max_runs.per = huge;
            rb.max_attempts = u32::MAX;
        }
        for p in &mut setup.policies {
            p.hold = huge;
        }
        let mut e = Engine::new(setup);
        let mut now = t(0);
        // a policy alert (held by `for`), an approval, runs that fail and
        // retry, a verification: every timer path
        for (i, ev) in [
            firing("ServiceDown", "web-01", &[("service", "nginx")]),
            firing("DiskSpaceLow", "web-01", &[("mountpoint", "/")]),
            Event::Sample(crate::model::Sample {
                name: "disk_used_percent".into(),
                value: 99.0,
                labels: labels(&[("host", "web-01"), ("mountpoint", "/var")]),
            }),
        ]
        .into_iter()
        .enumerate()
        {
            let mut cmds = e.handle(ev, add_time(now, TimeDelta::seconds(i as i64)));
            for round in 0..6 {
                let execs: Vec<Execution> = cmds
                    .iter()
                    .filter_map(|c| match c {
                        Command::Execute(x) => Some(x.clone()),
                        _ => None,
                    })
                    .collect();
                cmds = Vec::new();
                for x in execs {
                    let outcome = if round % 2 == 0 {
                        Outcome::failure(Some(1), "exit 1")
                    } else {
                        Outcome::success("ok")
                    };
                    cmds.extend(e.handle(
                        Event::Finished {
                            action: x.action,
                            attempt: x.attempt,
                            outcome,
                        },
                        now,
                    ));
                }
                if let Some(d) = e.next_deadline() {
                    now = d.max(now);
                    cmds.extend(e.handle(Event::Tick, now));
                }
            }
        }
        // a second alert inside the (endless) cooldown is blocked, not a panic
        e.handle(
            firing("ServiceDown", "web-01", &[("service", "gunicorn")]),
            now,
        );
        e.handle(Event::Tick, Time::MAX_UTC);
    }
}
