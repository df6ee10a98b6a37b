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
        generator_url: None,
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
            generator_url: None,
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
            generator_url: None,
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
    let started = records(&cmds)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionStarted)
        .unwrap();
    // The re-run is the next attempt, never a second start of the first.
    assert_eq!(started.attempt, Some(2));
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
        generator_url: None,
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

// ----- four-eyes approvals, manual runs, proposing again, refusals -----

fn approve(e: &mut Engine, id: ActionId, actor: &str, at: i64) -> Vec<Command> {
    e.handle(
        Event::Approve {
            action: id,
            actor: actor.into(),
        },
        t(at),
    )
}

fn run_event(runbook: &str, target: &str, params: &[(&str, &str)], actor: &str) -> Event {
    Event::Run {
        runbook: runbook.into(),
        target: target.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        actor: actor.into(),
    }
}

fn started(cmds: &[Command]) -> bool {
    kinds(cmds).contains(&RecordKind::ActionStarted)
        && cmds.iter().any(|c| matches!(c, Command::Execute(_)))
}

#[test]
fn four_eyes_starts_only_after_the_second_distinct_approver() {
    let mut e = engine("[runbooks.service_restart]\napprovals = 2\n");
    e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    let id = e.find_action("service_restart", "web-01").unwrap();
    assert_eq!(e.action(id).unwrap().approvals_needed, 2);

    let cmds = approve(&mut e, id, "ana", 10);
    assert!(!started(&cmds), "one approval of two must not start it");
    let r = records(&cmds);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, RecordKind::ActionApproved);
    assert_eq!(r[0].actor.as_deref(), Some("ana"));
    assert_eq!(r[0].detail.as_deref(), Some("1 of 2 approvals (ana)"));
    let a = e.action(id).unwrap();
    assert_eq!(a.state, ActionState::AwaitingApproval);
    assert_eq!(a.approvals, ["ana"]);
    assert_eq!(a.approved_by, None);

    // the same approver again: refused by vet, and handle changes nothing
    let again = Event::Approve {
        action: id,
        actor: "ana".into(),
    };
    let refusal = e.vet(&again, t(20)).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::Conflict);
    assert_eq!(refusal.http_status(), 409);
    assert!(
        refusal
            .message
            .contains("ana already approved A000001 (1 of 2 approvals (ana))"),
        "{refusal}"
    );
    assert!(e.handle(again, t(20)).is_empty());
    assert_eq!(e.action(id).unwrap().approvals, ["ana"]);

    let cmds = approve(&mut e, id, "ben", 30);
    assert!(started(&cmds));
    let r = records(&cmds);
    assert_eq!(r[0].detail.as_deref(), Some("2 of 2 approvals (ana, ben)"));
    let a = e.action(id).unwrap();
    assert_eq!(a.approvals, ["ana", "ben"]);
    assert_eq!(a.approved_by.as_deref(), Some("ben"));
    // the console and the API see the tally
    let v = serde_json::to_value(crate::view::ActionView::from(a)).unwrap();
    assert_eq!(v["approvals"], serde_json::json!(["ana", "ben"]));
    assert_eq!(v["approvals_needed"], 2);
}

#[test]
fn a_reject_after_a_partial_approval_ends_it() {
    let mut e = engine("[runbooks.service_restart]\napprovals = 3\n");
    e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    let id = e.find_action("service_restart", "web-01").unwrap();
    approve(&mut e, id, "ana", 1);
    approve(&mut e, id, "ben", 2);
    let cmds = e.handle(
        Event::Reject {
            action: id,
            actor: "cy".into(),
            reason: "not now".into(),
        },
        t(3),
    );
    assert_eq!(kinds(&cmds), vec![RecordKind::ActionRejected]);
    assert_eq!(e.action(id).unwrap().state, ActionState::Rejected);
    assert!(approve(&mut e, id, "dee", 4).is_empty());
}

#[test]
fn approvals_by_risk_apply_unless_the_runbook_says_and_auto_is_unaffected() {
    let e2 = |cfg: &str| {
        let mut e = engine(cfg);
        e.handle(
            firing("ServiceDown", "web-01", &[("service", "nginx")]),
            t(0),
        );
        e
    };
    // service_restart is a medium risk runbook
    let e = e2("[settings]\napprovals_by_risk = { medium = 2 }\n");
    let a = e.actions().next().unwrap();
    assert_eq!(a.approvals_needed, 2);
    let e = e2(
        "[settings]\napprovals_by_risk = { medium = 2 }\n[runbooks.service_restart]\napprovals = 1\n",
    );
    assert_eq!(e.actions().next().unwrap().approvals_needed, 1);
    let e = e2("[settings]\napprovals_by_risk = { high = 4 }\n");
    assert_eq!(e.actions().next().unwrap().approvals_needed, 1);

    // automatic approval needs nobody, whatever `approvals` says
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\napprovals = 3\n");
    let cmds = e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    assert!(started(&cmds));
    let approved = records(&cmds)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionApproved)
        .unwrap();
    assert_eq!(approved.actor.as_deref(), Some(crate::model::ACTOR_VIGIL));
}

#[test]
fn an_interrupted_action_needs_n_approvals_to_re_run() {
    let mut e = engine("[runbooks.service_restart]\napprovals = 2\n");
    let params: BTreeMap<String, String> = [
        ("service".to_string(), "nginx".to_string()),
        ("manager".to_string(), "systemd".to_string()),
    ]
    .into();
    e.restore(
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
    let cmds = approve(&mut e, ActionId(7), "ana", 5);
    assert!(!started(&cmds));
    assert_eq!(
        records(&cmds)[0].detail.as_deref(),
        Some("re-run of an interrupted action approved; 1 of 2 approvals (ana)")
    );
    assert_eq!(
        e.action(ActionId(7)).unwrap().state,
        ActionState::Interrupted
    );
    assert!(approve(&mut e, ActionId(7), "ana", 6).is_empty());
    assert!(started(&approve(&mut e, ActionId(7), "ben", 7)));
}

#[test]
fn a_manual_run_is_proposed_as_its_operator_and_he_cannot_approve_it_alone() {
    let mut e = engine("");
    let ev = run_event("service_restart", "web-01", &[("service", "nginx")], "ana");
    assert_eq!(e.vet(&ev, t(0)), Ok(()));
    let cmds = e.handle(ev, t(0));
    assert_eq!(
        kinds(&cmds),
        vec![RecordKind::ActionProposed, RecordKind::ApprovalRequested]
    );
    let p = records(&cmds)[0];
    assert_eq!(p.actor.as_deref(), Some("ana"));
    assert_eq!(p.alert.as_deref(), Some(MANUAL_ALERT));
    assert_eq!(p.fingerprint, None);
    assert_eq!(
        p.detail.as_deref(),
        Some("manual run requested by ana (no alert)")
    );
    assert_eq!(p.params.as_ref().unwrap().get("service").unwrap(), "nginx");
    let id = e.find_action("service_restart", "web-01").unwrap();
    assert_eq!(e.action(id).unwrap().requested_by.as_deref(), Some("ana"));

    // the requester alone: refused, nothing changes
    let own = Event::Approve {
        action: id,
        actor: "ana".into(),
    };
    let r = e.vet(&own, t(5)).unwrap_err();
    assert!(r.message.contains("cannot be its only approver"), "{r}");
    assert!(e.handle(own, t(5)).is_empty());
    assert!(e.action(id).unwrap().approvals.is_empty());

    // someone else: it starts, and with no alert the run verifies at once
    // by the runbook's own verify step
    let cmds = approve(&mut e, id, "ben", 10);
    assert!(started(&cmds));
    let Some(Command::Execute(x)) = cmds.iter().find(|c| matches!(c, Command::Execute(_))) else {
        unreachable!()
    };
    let cmds = e.handle(
        Event::Finished {
            action: x.action,
            attempt: x.attempt,
            outcome: Outcome::success("ok"),
        },
        t(12),
    );
    assert_eq!(
        kinds(&cmds),
        vec![RecordKind::ActionSucceeded, RecordKind::VerificationPassed]
    );
    assert_eq!(e.action(id).unwrap().state, ActionState::Done);
}

#[test]
fn the_requester_of_a_manual_run_may_be_one_of_several_approvers() {
    let mut e = engine("[runbooks.service_restart]\napprovals = 2\n");
    e.handle(
        run_event("service_restart", "web-01", &[("service", "nginx")], "ana"),
        t(0),
    );
    let id = e.find_action("service_restart", "web-01").unwrap();
    let cmds = approve(&mut e, id, "ana", 1);
    assert_eq!(
        records(&cmds)[0].detail.as_deref(),
        Some("1 of 2 approvals (ana)")
    );
    assert!(!started(&cmds));
    assert!(started(&approve(&mut e, id, "ben", 2)));
}

#[test]
fn a_manual_run_follows_the_approval_policy_and_its_guards() {
    // automatic approval: it runs as an alert's action would
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    let cmds = e.handle(
        run_event("service_restart", "web-01", &[("service", "nginx")], "ana"),
        t(0),
    );
    assert!(started(&cmds));
    // a protected service is blocked, as for an alert
    let mut e = engine("");
    let cmds = e.handle(
        run_event("service_restart", "web-02", &[("service", "sshd")], "ana"),
        t(0),
    );
    let b = records(&cmds)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionBlocked)
        .unwrap();
    assert_eq!(b.reason.as_deref(), Some("protected_target"));
    // frozen blocks it too
    let mut e = engine("[settings]\nfrozen = true\n");
    let cmds = e.handle(
        run_event("service_restart", "web-01", &[("service", "nginx")], "ana"),
        t(0),
    );
    assert!(
        records(&cmds)
            .iter()
            .any(|r| r.reason.as_deref() == Some("frozen"))
    );
}

#[test]
fn a_manual_run_with_a_hostile_parameter_is_blocked_param_invalid() {
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    for (rb, k, v) in [
        ("service_restart", "service", "$(reboot)"),
        ("log_rotation", "path", "/var/log/../../etc/shadow"),
        ("service_restart", "service", "nginx\n; rm -rf /"),
    ] {
        let ev = run_event(rb, "web-03", &[(k, v)], "mallory");
        assert_eq!(e.vet(&ev, t(0)), Ok(()), "recorded, then blocked");
        let cmds = e.handle(ev, t(0));
        assert_eq!(
            kinds(&cmds),
            vec![RecordKind::ActionProposed, RecordKind::ActionBlocked],
            "{v}"
        );
        let b = records(&cmds)[1];
        assert_eq!(b.reason.as_deref(), Some("param_invalid"));
        assert!(!b.detail.as_deref().unwrap().contains('\n'));
        assert!(!cmds.iter().any(|c| matches!(c, Command::Execute(_))));
        let id = e
            .actions()
            .rev()
            .find(|a| a.runbook == rb && a.state == ActionState::Blocked)
            .unwrap()
            .id;
        assert!(e.action(id).unwrap().stuck);
        assert!(approve(&mut e, id, "ben", 1).is_empty());
    }
    // a missing required parameter (no alert label to take it from)
    let cmds = e.handle(run_event("service_restart", "web-01", &[], "ana"), t(2));
    assert_eq!(
        records(&cmds)[1].reason.as_deref(),
        Some("param_invalid"),
        "{cmds:?}"
    );
}

#[test]
fn intents_that_cannot_be_carried_out_are_refused_with_a_reason() {
    let mut e = engine("");
    let cases: Vec<(Event, RefusalKind, &str)> = vec![
        (
            run_event("nope", "web-01", &[], "ana"),
            RefusalKind::NotFound,
            "no runbook \"nope\"; known: disk_cleanup",
        ),
        (
            run_event("service_restart", "db-99", &[("service", "x")], "ana"),
            RefusalKind::NotFound,
            "no host \"db-99\" in the inventory; a manual run names a configured host: web-01, web-02, web-03",
        ),
        (
            run_event("service_restart", "web-01", &[("servce", "nginx")], "ana"),
            RefusalKind::Invalid,
            "\"servce\" is not a parameter of service_restart; accepted: ",
        ),
        (
            run_event("service_restart", "web-01", &[("service", "nginx")], " "),
            RefusalKind::Invalid,
            "actor is empty",
        ),
        (
            Event::Approve {
                action: ActionId(99),
                actor: "ana".into(),
            },
            RefusalKind::NotFound,
            "no action A000099; waiting for approval: none",
        ),
        (
            Event::Reject {
                action: ActionId(99),
                actor: "ana".into(),
                reason: "x".into(),
            },
            RefusalKind::NotFound,
            "no action A000099",
        ),
        (
            Event::Repropose {
                fingerprint: "feedbeef".into(),
                actor: "ana".into(),
            },
            RefusalKind::NotFound,
            "no alert with fingerprint \"feedbeef\"",
        ),
        (
            Event::ResetBreaker {
                runbook: "service_restart".into(),
                target: "web-01".into(),
                actor: "ana".into(),
            },
            RefusalKind::Conflict,
            "the circuit for service_restart@web-01 is not open; open circuits: none",
        ),
    ];
    for (ev, kind, msg) in cases {
        let r = e.vet(&ev, t(0)).unwrap_err();
        assert_eq!(r.kind, kind, "{r}");
        assert!(r.message.contains(msg), "{r}\nwanted: {msg}");
        // un-vetted, the same event changes nothing and does not panic
        assert!(e.handle(ev, t(0)).is_empty());
    }
    assert_eq!(e.actions().count(), 0);
    // an action that is not waiting
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    let id = e.find_action("service_restart", "web-01").unwrap();
    let r = e
        .vet(
            &Event::Approve {
                action: id,
                actor: "ana".into(),
            },
            t(1),
        )
        .unwrap_err();
    assert_eq!(r.kind, RefusalKind::Conflict);
    assert!(
        r.message
            .contains("A000001 is running, not waiting for approval"),
        "{r}"
    );
    // events that are not intents are never refused
    assert_eq!(e.vet(&Event::Tick, t(1)), Ok(()));
}

#[test]
fn an_alert_is_proposed_again_only_when_firing_without_an_open_action() {
    let mut e = engine("");
    e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    let fp = e.alerts().next().unwrap().fingerprint.clone();
    let again = |actor: &str| Event::Repropose {
        fingerprint: fp.clone(),
        actor: actor.into(),
    };
    // its action is still waiting
    let r = e.vet(&again("ben"), t(1)).unwrap_err();
    assert_eq!(r.kind, RefusalKind::Conflict);
    assert!(
        r.message
            .contains("already has action A000001 (awaiting_approval)"),
        "{r}"
    );
    assert!(e.handle(again("ben"), t(1)).is_empty());

    let first = e.find_action("service_restart", "web-01").unwrap();
    e.handle(
        Event::Reject {
            action: first,
            actor: "ana".into(),
            reason: "wait for the deploy".into(),
        },
        t(2),
    );
    assert_eq!(e.vet(&again("ben"), t(3)), Ok(()));
    let cmds = e.handle(again("ben"), t(3));
    assert_eq!(
        kinds(&cmds),
        vec![
            RecordKind::RunbookMatched,
            RecordKind::ActionProposed,
            RecordKind::ApprovalRequested
        ]
    );
    let p = records(&cmds)[1];
    assert_eq!(p.actor.as_deref(), Some("ben"));
    assert_eq!(p.action_id.as_deref(), Some("A000002"));
    assert_eq!(
        p.detail.as_deref(),
        Some("proposed again by ben; the previous action A000001 ended rejected")
    );
    assert_eq!(e.alert(&fp).unwrap().action, Some(ActionId(2)));
    assert!(started(&approve(&mut e, ActionId(2), "ana", 4)));

    // resolved: refused
    e.handle(
        Event::Alert(IncomingAlert {
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
            source: Some("test".into()),
            generator_url: None,
        }),
        t(20),
    );
    let r = e.vet(&again("ben"), t(100)).unwrap_err();
    assert!(r.message.contains("resolved at"), "{r}");
    assert!(e.handle(again("ben"), t(100)).is_empty());
}

#[test]
fn a_silenced_alert_is_not_proposed_again() {
    let mut e = engine("");
    e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    let fp = e.alerts().next().unwrap().fingerprint.clone();
    let id = e.find_action("service_restart", "web-01").unwrap();
    e.handle(
        Event::Reject {
            action: id,
            actor: "ana".into(),
            reason: "known".into(),
        },
        t(1),
    );
    e.handle(
        Event::Silence {
            fingerprint: fp.clone(),
            id: "vigil-1".into(),
            until: t(3600),
            actor: "ana".into(),
            comment: "deploy".into(),
        },
        t(2),
    );
    let ev = Event::Repropose {
        fingerprint: fp,
        actor: "ben".into(),
    };
    let r = e.vet(&ev, t(3)).unwrap_err();
    assert!(r.message.contains("silenced until"), "{r}");
    assert!(e.handle(ev, t(3)).is_empty());
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

fn disk(host: &str, value: f64) -> Event {
    Event::Sample(Sample {
        name: "disk_used_percent".into(),
        value,
        labels: labels(&[("host", host), ("mountpoint", "/var")]),
    })
}

fn freeze(on: bool) -> Event {
    Event::SetFrozen {
        on,
        actor: "ic".into(),
    }
}

fn approve_on(e: &Engine, runbook: &str, target: &str, actor: &str) -> Event {
    Event::Approve {
        action: e.find_action(runbook, target).unwrap(),
        actor: actor.into(),
    }
}

#[test]
fn an_approval_held_by_a_freeze_past_its_expiry_lapses_and_is_asked_again() {
    let mut e = engine("");
    e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    e.handle(freeze(true), t(10));
    let c = e.handle(approve_on(&e, "service_restart", "web-01", "ana"), t(20));
    assert_eq!(
        kinds(&c),
        vec![RecordKind::ActionApproved, RecordKind::ActionBlocked]
    );
    // 30m after the approval it has lapsed: the unfreeze does not start it.
    let c = e.handle(freeze(false), t(20 + 1800));
    assert!(!kinds(&c).contains(&RecordKind::ActionStarted), "{c:?}");
    assert!(!c.iter().any(|c| matches!(c, Command::Execute(_))));
    let asked = records(&c)
        .into_iter()
        .find(|r| r.kind == RecordKind::ApprovalRequested)
        .expect("a new approval_requested");
    let detail = asked.detail.as_deref().unwrap();
    assert!(
        detail.starts_with("the approval by ana lapsed while frozen"),
        "{detail}"
    );
    let id = e.find_action("service_restart", "web-01").unwrap();
    let a = e.action(id).unwrap();
    assert_eq!(a.state, ActionState::AwaitingApproval);
    assert!(a.approvals.is_empty() && a.approved_by.is_none());
    // A fresh approval starts it, by the new approver.
    let c = e.handle(approve_on(&e, "service_restart", "web-01", "ben"), t(1900));
    let started = records(&c)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionStarted)
        .expect("started on the fresh approval");
    assert_eq!(started.actor.as_deref(), Some("ben"));
}

#[test]
fn an_approval_still_fresh_when_the_freeze_ends_starts_the_action() {
    let mut e = engine("");
    e.handle(
        firing("ServiceDown", "web-01", &[("service", "nginx")]),
        t(0),
    );
    e.handle(freeze(true), t(10));
    e.handle(approve_on(&e, "service_restart", "web-01", "ana"), t(20));
    let c = e.handle(freeze(false), t(20 + 1799));
    assert!(kinds(&c).contains(&RecordKind::ActionStarted), "{c:?}");
}

#[test]
fn a_policy_alert_whose_data_went_stale_is_not_acted_on_at_start() {
    let mut e = engine("[runbooks.disk_cleanup]\napproval = \"manual\"\n");
    e.handle(disk("web-01", 92.0), t(0));
    let c = e.handle(disk("web-01", 92.0), t(60));
    assert!(kinds(&c).contains(&RecordKind::ApprovalRequested), "{c:?}");
    e.handle(freeze(true), t(70));
    e.handle(approve_on(&e, "disk_cleanup", "web-01", "ana"), t(80));
    // Samples stopped at t(60): 5m later they are stale, and the start
    // re-checks the alert on the latest data before anything runs (the
    // evaluator's own stale tick comes a second later).
    let c = e.handle(freeze(false), t(60 + 300) + TimeDelta::milliseconds(500));
    assert!(!kinds(&c).contains(&RecordKind::ActionStarted), "{c:?}");
    let cancelled = records(&c)
        .into_iter()
        .find(|r| r.kind == RecordKind::ActionCancelled)
        .expect("cancelled");
    assert_eq!(cancelled.reason.as_deref(), Some("alert_resolved"));
    assert!(
        cancelled
            .detail
            .as_deref()
            .unwrap()
            .contains("no longer holds on the latest data"),
        "{cancelled:?}"
    );
}

fn external_disk(status: AlertStatus) -> Event {
    Event::Alert(IncomingAlert {
        labels: labels(&[
            ("alertname", "DiskSpaceLow"),
            ("host", "web-02"),
            ("mountpoint", "/var"),
        ]),
        annotations: Labels::new(),
        status,
        fingerprint: Some("am-fp-1".into()),
        starts_at: None,
        ends_at: None,
        source: Some("am".into()),
        generator_url: None,
    })
}

fn run_to_finish(e: &mut Engine, cmds: Vec<Command>, at: Time) -> Vec<Command> {
    let mut out = Vec::new();
    for c in cmds {
        if let Command::Execute(x) = &c {
            out.extend(e.handle(
                Event::Finished {
                    action: x.action,
                    attempt: x.attempt,
                    outcome: Outcome::success("ok"),
                },
                at,
            ));
        }
    }
    out
}

#[test]
fn an_outside_alert_whose_own_series_recovered_waits_for_its_source() {
    let mut e = engine("");
    let c = e.handle(external_disk(AlertStatus::Firing), t(0));
    run_to_finish(&mut e, c, t(0));
    // Vigil's own series for web-02 /var says the cleanup worked.
    e.handle(disk("web-02", 70.0), t(30));
    let c = e.handle(Event::Tick, t(60));
    assert!(
        !kinds(&c).contains(&RecordKind::VerificationFailed),
        "{c:?}"
    );
    let id = e.find_action("disk_cleanup", "web-02").unwrap();
    let a = e.action(id).unwrap();
    assert_eq!(a.state, ActionState::Verifying);
    assert!(a.detail.contains("Vigil's own series"), "{}", a.detail);
    assert_eq!(e.next_deadline(), Some(t(600)));
    // The source resolves 4 minutes after the run: passed, never re-run.
    let c = e.handle(external_disk(AlertStatus::Resolved), t(240));
    assert!(kinds(&c).contains(&RecordKind::VerificationPassed), "{c:?}");
    assert!(!c.iter().any(|c| matches!(c, Command::Execute(_))));
}

#[test]
fn an_outside_alert_whose_own_series_still_holds_fails_and_retries() {
    let mut e = engine("");
    let c = e.handle(external_disk(AlertStatus::Firing), t(0));
    run_to_finish(&mut e, c, t(0));
    e.handle(disk("web-02", 97.0), t(30));
    let c = e.handle(Event::Tick, t(60));
    let k = kinds(&c);
    assert!(k.contains(&RecordKind::VerificationFailed), "{k:?}");
    assert!(k.contains(&RecordKind::RetryScheduled), "{k:?}");
}

#[test]
fn an_outside_alert_without_evidence_waits_for_its_source_then_retries() {
    let mut e = engine(
        "[runbooks.memory_pressure]\napproval = \"auto\"\n\
         [[sources]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:9093\"\nverify_window = \"5m\"\n",
    );
    let alert = |status| memory_alert(status, None);
    let c = e.handle(alert(AlertStatus::Firing), t(0));
    assert!(kinds(&c).contains(&RecordKind::ActionStarted), "{c:?}");
    run_to_finish(&mut e, c, t(0));
    // memory_pressure has no verify step and Vigil no series: the source's
    // window (5m for `am`) decides; its 2m verify window alone does not.
    assert!(e.handle(Event::Tick, t(120)).is_empty());
    let c = e.handle(Event::Tick, t(300));
    let k = kinds(&c);
    assert!(k.contains(&RecordKind::VerificationFailed), "{k:?}");
    assert!(k.contains(&RecordKind::RetryScheduled), "{k:?}");
}

fn am_silence(id: &str, ends: i64) -> UpstreamSilence {
    UpstreamSilence {
        id: id.into(),
        matchers: vec![
            UpstreamMatcher {
                name: "alertname".into(),
                value: "ServiceDown".into(),
                is_regex: false,
                is_equal: true,
            },
            UpstreamMatcher {
                name: "host".into(),
                value: "web-0[12]".into(),
                is_regex: true,
                is_equal: true,
            },
        ],
        starts_at: t(-60),
        ends_at: t(ends),
        created_by: "bob".into(),
        comment: "nginx being migrated".into(),
    }
}

fn am_alert(host: &str, status: AlertStatus) -> Event {
    Event::Alert(IncomingAlert {
        labels: labels(&[
            ("alertname", "ServiceDown"),
            ("host", host),
            ("service", "nginx"),
        ]),
        annotations: Labels::new(),
        status,
        fingerprint: Some(format!("fp-{host}")),
        starts_at: None,
        ends_at: None,
        source: Some("am".into()),
        generator_url: None,
    })
}

fn source_state(silences: Vec<UpstreamSilence>) -> Event {
    Event::SourceState {
        source: "am".into(),
        silences: Some(silences),
        suppressed: None,
    }
}

#[test]
fn a_webhook_alert_matching_an_active_alertmanager_silence_gets_no_action() {
    let mut e = engine("[runbooks.service_restart]\napproval = \"auto\"\n");
    assert!(
        e.handle(source_state(vec![am_silence("s-1", 600)]), t(0))
            .is_empty()
    );
    let c = e.handle(am_alert("web-01", AlertStatus::Firing), t(10));
    let k = kinds(&c);
    assert_eq!(
        k,
        vec![
            RecordKind::Signal,
            RecordKind::AlertFiring,
            RecordKind::SilenceCreated
        ],
        "{c:?}"
    );
    let r = records(&c)[2];
    assert_eq!(r.actor.as_deref(), Some("bob"));
    assert_eq!(r.reason.as_deref(), Some("nginx being migrated"));
    assert!(
        r.detail
            .as_deref()
            .unwrap()
            .starts_with("silenced in am by bob until 2026-05-01T12:10:00Z"),
        "{r:?}"
    );
    let s = e.alert("fp-web-01").unwrap().silence.clone().unwrap();
    assert_eq!((s.id.as_str(), s.actor.as_str()), ("s-1", "bob"));
    assert_eq!(s.until, t(600));
    // No guard ran, nothing counts for the breaker.
    assert_eq!(e.actions().count(), 0);
    assert_eq!(e.breakers().count(), 0);
    // A host the silence does not match is acted on.
    let c = e.handle(am_alert("web-03", AlertStatus::Firing), t(11));
    assert!(kinds(&c).contains(&RecordKind::ActionStarted), "{c:?}");
    // The silence is expired in Alertmanager: the next report ends it and
    // the still-firing alert gets its action.
    let mut ended = am_silence("s-1", 120);
    ended.ends_at = t(120);
    let c = e.handle(source_state(vec![ended]), t(120));
    let k = kinds(&c);
    assert_eq!(k[0], RecordKind::SilenceExpired, "{k:?}");
    assert!(k.contains(&RecordKind::ActionProposed), "{k:?}");
    assert!(e.alert("fp-web-01").unwrap().silence.is_none());
}

#[test]
fn an_alertmanager_silence_ends_on_time_without_a_poll() {
    let mut e = engine("");
    e.handle(source_state(vec![am_silence("s-2", 300)]), t(0));
    e.handle(am_alert("web-02", AlertStatus::Firing), t(1));
    assert_eq!(e.next_deadline(), Some(t(300)));
    let c = e.handle(Event::Tick, t(300));
    let k = kinds(&c);
    assert_eq!(k[0], RecordKind::SilenceExpired, "{k:?}");
    assert!(k.contains(&RecordKind::ApprovalRequested), "{k:?}");
}

#[test]
fn a_suppressed_alert_shows_who_inhibits_it_and_a_late_silence_cancels_its_pending_action() {
    let mut e = engine("");
    e.handle(am_alert("web-01", AlertStatus::Firing), t(0));
    let c = e.handle(am_alert("web-02", AlertStatus::Firing), t(0));
    assert!(kinds(&c).contains(&RecordKind::ApprovalRequested));
    // Alertmanager reports web-02's alert inhibited by web-01's.
    let c = e.handle(
        Event::SourceState {
            source: "am".into(),
            silences: Some(Vec::new()),
            suppressed: Some(
                [(
                    "fp-web-02".to_string(),
                    Suppressed {
                        silenced_by: Vec::new(),
                        inhibited_by: vec!["fp-web-01".into()],
                    },
                )]
                .into(),
            ),
        },
        t(5),
    );
    let rs = records(&c);
    assert_eq!(rs[0].kind, RecordKind::SilenceCreated);
    assert_eq!(
        rs[0].detail.as_deref(),
        Some("inhibited in am by ServiceDown on web-01 (fingerprint fp-web-01) while it fires")
    );
    let cancelled = rs
        .iter()
        .find(|r| r.kind == RecordKind::ActionCancelled)
        .expect("the pending restart is cancelled");
    assert_eq!(cancelled.reason.as_deref(), Some("silenced"));
    assert_eq!(cancelled.target.as_deref(), Some("web-02"));
    // The inhibition ends: a new action is proposed.
    let c = e.handle(
        Event::SourceState {
            source: "am".into(),
            silences: Some(Vec::new()),
            suppressed: Some(BTreeMap::new()),
        },
        t(30),
    );
    let k = kinds(&c);
    assert_eq!(k[0], RecordKind::SilenceExpired, "{k:?}");
    assert!(k.contains(&RecordKind::ApprovalRequested), "{k:?}");
}

/// MemoryPressure on web-01 from Alertmanager `am`, with a rule link when
/// `generator` is given.
fn memory_alert(status: AlertStatus, generator: Option<&str>) -> Event {
    Event::Alert(IncomingAlert {
        labels: labels(&[
            ("alertname", "MemoryPressure"),
            ("host", "web-01"),
            ("service", "gunicorn"),
        ]),
        annotations: Labels::new(),
        status,
        fingerprint: Some("am-fp-2".into()),
        starts_at: None,
        ends_at: None,
        source: Some("am".into()),
        generator_url: generator.map(String::from),
    })
}

const RULE_LINK: &str = "http://127.0.0.1:9090/graph?g0.expr=mem_used_ratio+%3E+0.9&g0.tab=1";

/// memory_pressure on an Alertmanager alert with a rule link: run, finish,
/// and return the probe the engine asked for.
fn run_with_probe() -> (Engine, Probe) {
    let mut e = engine(
        "[runbooks.memory_pressure]\napproval = \"auto\"\n\
         [[sources]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:9093\"\nverify_window = \"5m\"\n",
    );
    let c = e.handle(memory_alert(AlertStatus::Firing, Some(RULE_LINK)), t(0));
    let after = run_to_finish(&mut e, c, t(0));
    let probes: Vec<Probe> = after
        .into_iter()
        .filter_map(|c| match c {
            Command::Probe(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(probes.len(), 1, "one probe per successful run");
    (e, probes.into_iter().next().unwrap())
}

fn evidence(p: &Probe, holds: bool, at: i64) -> Event {
    Event::Evidence {
        action: p.action,
        attempt: p.attempt,
        evidence: SourceEvidence {
            holds,
            why: format!(
                "Prometheus prom: the rule's expression {}",
                if holds {
                    "still returns 0.95"
                } else {
                    "no longer returns this alert's series"
                }
            ),
            at: t(at),
        },
    }
}

#[test]
fn a_rule_link_asks_prometheus_until_the_source_deadline() {
    let (e, p) = run_with_probe();
    assert_eq!(p.until, t(300));
    assert_eq!(p.labels.get("service").unwrap(), "gunicorn");
    assert!(p.generator_url.contains("g0.expr="));
    assert_eq!(e.action(p.action).unwrap().state, ActionState::Verifying);
}

#[test]
fn the_rule_no_longer_holding_escalates_instead_of_running_again() {
    let (mut e, p) = run_with_probe();
    assert!(e.handle(evidence(&p, false, 100), t(100)).is_empty());
    let c = e.handle(Event::Tick, t(120));
    assert!(
        !kinds(&c).contains(&RecordKind::VerificationFailed),
        "{c:?}"
    );
    let a = e.action(p.action).unwrap();
    assert!(a.detail.contains("no longer returns"), "{}", a.detail);
    // Alertmanager never resolves: escalated with the evidence, never re-run.
    let c = e.handle(Event::Tick, t(300));
    assert!(!c.iter().any(|c| matches!(c, Command::Execute(_))), "{c:?}");
    assert!(!kinds(&c).contains(&RecordKind::RetryScheduled), "{c:?}");
    let a = e.action(p.action).unwrap();
    assert_eq!(a.state, ActionState::Escalated);
    assert!(
        a.detail.contains("no longer returns this alert's series"),
        "{}",
        a.detail
    );
    assert!(a.detail.contains("not run again"), "{}", a.detail);
}

#[test]
fn the_rule_still_holding_fails_verification_with_the_evidence() {
    let (mut e, p) = run_with_probe();
    e.handle(evidence(&p, false, 30), t(30));
    // The latest answer counts: the condition came back.
    e.handle(evidence(&p, true, 200), t(200));
    let c = e.handle(Event::Tick, t(300));
    let failed = records(&c)
        .into_iter()
        .find(|r| r.kind == RecordKind::VerificationFailed)
        .unwrap_or_else(|| panic!("{c:?}"));
    assert!(
        failed
            .detail
            .as_deref()
            .unwrap()
            .contains("still returns 0.95"),
        "{failed:?}"
    );
    assert!(kinds(&c).contains(&RecordKind::RetryScheduled), "{c:?}");
}

#[test]
fn evidence_for_another_attempt_or_a_finished_action_is_ignored() {
    let (mut e, p) = run_with_probe();
    let mut old = p.clone();
    old.attempt += 1;
    e.handle(evidence(&old, false, 60), t(60));
    assert!(e.action(p.action).unwrap().source_evidence.is_none());
    e.handle(memory_alert(AlertStatus::Resolved, None), t(90));
    e.handle(Event::Tick, t(120));
    assert_ne!(e.action(p.action).unwrap().state, ActionState::Verifying);
    e.handle(evidence(&p, true, 100), t(100));
    assert!(e.action(p.action).unwrap().source_evidence.is_none());
}

#[test]
fn the_alert_order_kept_by_changes_equals_a_full_sort() {
    use crate::hub::ordered_alerts;
    let mut e = engine("");
    let mut kept = ordered_alerts(&e);
    let _ = e.take_alert_changes();
    let mut step = |e: &mut Engine, ev: Event, at: i64| {
        e.handle(ev, t(at));
        crate::hub::follow_alert_order(e, &mut kept, true);
        let sorted = ordered_alerts(e);
        let full: Vec<&str> = sorted.iter().map(|a| a.fingerprint.as_str()).collect();
        let got: Vec<&str> = kept.iter().map(|a| a.fingerprint.as_str()).collect();
        assert_eq!(got, full, "after event at {at}");
        for (a, b) in kept.iter().zip(sorted.iter()) {
            assert!(
                Arc::ptr_eq(a, b) || **a == **b,
                "stale alert {}",
                a.fingerprint
            );
        }
    };
    for (i, host) in ["web-01", "web-02", "web-03"].iter().enumerate() {
        step(
            &mut e,
            firing(
                "ServiceDown",
                host,
                &[("service", "nginx"), ("severity", "warning")],
            ),
            i as i64,
        );
        step(
            &mut e,
            firing(
                "DiskSpaceLow",
                host,
                &[("mountpoint", "/var"), ("severity", "critical")],
            ),
            10 + i as i64,
        );
    }
    // Policy alerts from samples, a resolution, a silence, a redelivery.
    step(&mut e, disk("web-01", 97.0), 20);
    step(&mut e, disk("web-01", 97.0), 400);
    step(&mut e, disk("web-01", 50.0), 500);
    let fp = e
        .alerts()
        .find(|a| a.name == "ServiceDown" && a.host() == Some("web-02"))
        .unwrap()
        .fingerprint
        .clone();
    step(
        &mut e,
        Event::Silence {
            fingerprint: fp,
            id: String::new(),
            until: t(4000),
            actor: "ana".into(),
            comment: "deploy".into(),
        },
        600,
    );
    step(
        &mut e,
        firing(
            "ServiceDown",
            "web-01",
            &[("service", "nginx"), ("severity", "warning")],
        ),
        700,
    );
    step(&mut e, Event::Tick, 5000);
    // More changes than are tracked between two looks: start over.
    for i in 0..1100 {
        e.handle(firing("Flood", &format!("h{i}"), &[]), t(6000));
    }
    assert_eq!(e.take_alert_changes(), AlertChanges::All);
    assert_eq!(
        e.take_alert_changes(),
        AlertChanges::Some(Default::default())
    );
}

#[test]
fn the_analysis_runbook_is_proposed_through_the_same_checks_and_four_eyes() {
    let mut e = engine(
        "[runbooks.disk_cleanup]\napproval = \"manual\"\n[runbooks.log_rotation]\napproval = \"manual\"\n",
    );
    e.handle(
        firing("DiskSpaceLow", "web-01", &[("mountpoint", "/")]),
        t(0),
    );
    let fp = e.alerts().next().unwrap().fingerprint.clone();
    let propose = |runbook: &str, params: &[(&str, &str)], actor: &str| Event::ProposeRecommended {
        fingerprint: fp.clone(),
        runbook: runbook.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        actor: actor.into(),
        basis: serde_json::json!({"cause": "disk_growth_logs", "summary": "the app log fills /"}),
    };
    let rotate = [("path", "/var/log/app.log")];
    // The matched cleanup is still open.
    let r = e
        .vet(&propose("log_rotation", &rotate, "ben"), t(1))
        .unwrap_err();
    assert_eq!(r.kind, RefusalKind::Conflict);
    assert!(r.message.contains("already has action A000001"), "{r}");
    let cleanup = e.find_action("disk_cleanup", "web-01").unwrap();
    e.handle(
        Event::Reject {
            action: cleanup,
            actor: "ben".into(),
            reason: "the log fills it".into(),
        },
        t(2),
    );
    for (ev, kind, msg) in [
        (
            propose("reboot_host", &[], "ben"),
            RefusalKind::NotFound,
            "no runbook \"reboot_host\"",
        ),
        (
            propose("log_rotation", &[("command", "rm -rf /")], "ben"),
            RefusalKind::Invalid,
            "\"command\" is not a parameter of log_rotation",
        ),
        (
            propose("log_rotation", &rotate, " "),
            RefusalKind::Invalid,
            "actor is empty",
        ),
    ] {
        let r = e.vet(&ev, t(3)).unwrap_err();
        assert_eq!(r.kind, kind, "{r}");
        assert!(r.message.contains(msg), "{r}");
        assert!(
            e.handle(ev, t(3)).is_empty(),
            "un-vetted, it changes nothing"
        );
    }
    // A value that fails the parameter's pattern is proposed and blocked
    // (param_invalid), as for any action: nothing runs.
    let bad = e.handle(
        propose("log_rotation", &[("path", "/etc/shadow")], "ben"),
        t(4),
    );
    assert!(
        kinds(&bad).contains(&RecordKind::ActionBlocked),
        "{:?}",
        kinds(&bad)
    );
    assert!(!started(&bad));
    let blocked = e.find_action("log_rotation", "web-01").unwrap();
    e.handle(
        Event::Reject {
            action: blocked,
            actor: "ben".into(),
            reason: "wrong path".into(),
        },
        t(5),
    );

    assert_eq!(
        e.vet(&propose("log_rotation", &rotate, "ben"), t(6)),
        Ok(())
    );
    let cmds = e.handle(propose("log_rotation", &rotate, "ben"), t(6));
    assert_eq!(
        kinds(&cmds),
        vec![RecordKind::ActionProposed, RecordKind::ApprovalRequested]
    );
    let p = records(&cmds)[0];
    assert_eq!(p.runbook.as_deref(), Some("log_rotation"));
    assert_eq!(p.actor.as_deref(), Some("ben"));
    assert_eq!(p.fingerprint.as_deref(), Some(fp.as_str()));
    assert_eq!(p.params.as_ref().unwrap()["path"], "/var/log/app.log");
    assert_eq!(
        p.detail.as_deref(),
        Some("proposed from the analysis by ben: the app log fills /")
    );
    let data = p.data.as_ref().unwrap();
    assert_eq!(data["from_analysis"]["cause"], "disk_growth_logs");
    assert_eq!(data["matched"], "disk_cleanup");
    assert!(
        records(&cmds)[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("proposed from the analysis by ben, who cannot be its only approver")
    );
    // Four eyes: the proposer cannot approve it alone; another operator can.
    let id = e.find_action("log_rotation", "web-01").unwrap();
    let r = e
        .vet(
            &Event::Approve {
                action: id,
                actor: "ben".into(),
            },
            t(7),
        )
        .unwrap_err();
    assert!(r.message.contains("proposal from the analysis"), "{r}");
    assert!(started(&approve(&mut e, id, "ana", 8)));
}

#[test]
fn progress_of_a_running_attempt_is_shown_as_its_detail_and_never_recorded() {
    let mut e = engine("[runbooks.disk_cleanup]\napproval = \"auto\"\n");
    let fired = e.handle(
        firing("DiskSpaceLow", "web-01", &[("mountpoint", "/")]),
        t(0),
    );
    let Some(Command::Execute(x)) = fired.into_iter().find(|c| matches!(c, Command::Execute(_)))
    else {
        panic!("no execution")
    };
    let detail_of = |e: &Engine| {
        e.actions()
            .find(|a| a.id == x.action)
            .map(|a| a.detail.clone())
            .unwrap()
    };
    let progress = |attempt, detail: &str| Event::Progress {
        action: x.action,
        attempt,
        detail: detail.into(),
    };
    let cmds = e.handle(
        progress(1, "job job-7 running: running step 2/3 \"rotate\""),
        t(1),
    );
    assert!(cmds.is_empty(), "progress is not recorded: {cmds:?}");
    assert_eq!(
        detail_of(&e),
        "job job-7 running: running step 2/3 \"rotate\""
    );
    // Another attempt's progress, or progress after the end, changes nothing.
    e.handle(progress(2, "job job-9 running"), t(2));
    assert!(detail_of(&e).contains("job-7"));
    e.handle(
        Event::Finished {
            action: x.action,
            attempt: 1,
            outcome: Outcome::failure(Some(1), "job job-7 failed"),
        },
        t(3),
    );
    let after = detail_of(&e);
    e.handle(progress(1, "job job-7 running late"), t(4));
    assert_eq!(detail_of(&e), after);
}

// ----- the series budget -----

#[test]
fn idle_series_are_evicted_on_ticks_but_not_while_an_alert_refers_to_them() {
    let mut e = engine("[settings]\nseries_ttl = \"5m\"\nmax_series_per_metric = 2\n");
    let key = |host: &str| {
        crate::model::SeriesKey::of(
            "disk_used_percent",
            &labels(&[("host", host), ("mountpoint", "/")]),
        )
    };
    let keyed = |hosts: &[&str], v: f64| {
        Event::Keyed(
            hosts
                .iter()
                .map(|h| crate::model::KeyedSample {
                    key: key(h),
                    value: v,
                })
                .collect(),
        )
    };
    // web-01 fires (97 for 1m), web-02 stays healthy; a third series is
    // refused.
    e.handle(keyed(&["web-01", "web-02", "web-03"], 50.0), t(0));
    let refused = e.take_refused();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, 2);
    e.handle(keyed(&["web-01"], 97.0), t(10));
    e.handle(keyed(&["web-02"], 50.0), t(20));
    let cmds = e.handle(Event::Tick, t(70));
    assert!(
        kinds(&cmds).contains(&RecordKind::AlertFiring),
        "{:?}",
        kinds(&cmds)
    );
    e.handle(keyed(&["web-01"], 97.0), t(300));
    e.handle(Event::Tick, t(320));
    assert_eq!(
        e.series_figures().live,
        2,
        "5m without a sample is not more"
    );
    // web-02 has had no sample for more than 5m: evicted; the firing
    // web-01 is kept.
    e.handle(Event::Tick, t(321));
    assert_eq!(e.series_figures().live, 1);
    assert_eq!(e.series_figures().evicted, 1);
    // Stale after 5m: the alert resolves and stays in the table; its series
    // stays too (the alert refers to it).
    let cmds = e.handle(Event::Tick, t(601));
    assert!(
        kinds(&cmds).contains(&RecordKind::AlertResolved),
        "{:?}",
        kinds(&cmds)
    );
    e.handle(Event::Tick, t(900));
    assert_eq!(e.series_figures().live, 1);
    // Room again: a new series of the metric is taken.
    e.handle(keyed(&["web-03"], 50.0), t(910));
    assert!(e.take_refused().is_empty());
    assert_eq!(e.series_figures().live, 2);
}
