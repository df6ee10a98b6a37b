//! The demo fleet through the engine and the live analysis, as the hub
//! runs them: the analysis of each incident agrees with what is proposed
//! or says why not, and an operator can take the analysis' advice.

use std::collections::VecDeque;

use chrono::TimeDelta;
use vigil::analysis::Cause;
use vigil::analysis::advice::{proposal, suggestions};
use vigil::analysis::live::LiveAnalysis;
use vigil::engine::{Command, Engine, Event, SuggestionOrigin};
use vigil::model::{Record, RecordKind, Time};
use vigil::sim::demo::DemoFleet;

struct Demo {
    fleet: DemoFleet,
    engine: Engine,
    live: LiveAnalysis,
    log: Vec<Record>,
    now: Time,
}

impl Demo {
    fn new() -> Demo {
        let start: Time = "2026-03-02T09:00:00Z".parse().unwrap();
        let fleet = DemoFleet::new(start, 1);
        let setup = fleet.config().build("demo", "", false, None).unwrap();
        let engine = Engine::new(setup);
        let live = LiveAnalysis::new(engine.shared_catalog());
        Demo {
            fleet,
            engine,
            live,
            log: Vec::new(),
            now: start,
        }
    }

    fn perform(&mut self, cmds: Vec<Command>) {
        let mut queue = VecDeque::from(cmds);
        while let Some(c) = queue.pop_front() {
            match c {
                Command::Record(mut r) => {
                    r.seq = self.log.len() as u64 + 1;
                    if r.kind == RecordKind::AlertFiring
                        && let Some(a) = r
                            .fingerprint
                            .as_deref()
                            .and_then(|fp| self.engine.alert(fp))
                            .cloned()
                    {
                        self.log.push(r);
                        if let Some(mut rca) =
                            self.live.on_firing(&a, self.now, &self.engine, &self.log)
                        {
                            rca.seq = self.log.len() as u64 + 1;
                            self.log.push(rca);
                        }
                        continue;
                    }
                    self.log.push(r);
                }
                Command::Execute(x) => {
                    let outcome = self.fleet.execute(&x, self.now);
                    queue.extend(self.engine.handle(
                        Event::Finished {
                            action: x.action,
                            attempt: x.attempt,
                            outcome,
                        },
                        self.now,
                    ));
                }
                Command::Escalate(_) | Command::Probe(_) => {}
            }
        }
    }

    /// Runs in 5 s steps until `done` holds (at most `minutes`).
    fn until(&mut self, minutes: i64, done: impl Fn(&Demo) -> bool) {
        let end = self.now + TimeDelta::minutes(minutes);
        while self.now <= end && !done(self) {
            let samples = self.fleet.step(self.now);
            self.live.observe_samples(&samples, self.now);
            let mut cmds = self.engine.handle(Event::Samples(samples), self.now);
            cmds.extend(self.engine.handle(Event::Tick, self.now));
            self.perform(cmds);
            self.now += TimeDelta::seconds(5);
        }
    }

    fn rca_for(&self, alert: &str, host: &str) -> Option<&Record> {
        self.log.iter().rev().find(|r| {
            r.kind == RecordKind::Rca
                && r.alert.as_deref() == Some(alert)
                && r.target.as_deref() == Some(host)
        })
    }
}

#[test]
fn web_03s_filling_disk_gets_the_runbook_that_runs_and_the_log_is_not_blamed() {
    let mut d = Demo::new();
    d.until(6, |d| d.rca_for("DiskSpaceLow", "web-03").is_some());
    let rca = d
        .rca_for("DiskSpaceLow", "web-03")
        .expect("web-03's disk alert was analysed")
        .clone();
    let fp = rca.fingerprint.clone().unwrap();
    let view = d.live.view(&fp).expect("a view").clone();
    let a = &view.analysis;
    // The access log grows by KiB/s while /var grows by hundreds of MiB/s:
    // the log explains almost nothing, so it is not blamed.
    assert_eq!(a.cause, Cause::Unknown, "{a:#?}");
    assert_eq!(a.top_runbook(), "disk_cleanup", "{a:#?}");
    assert!(
        a.summary
            .contains("no candidate explains a meaningful share")
            && a.summary.contains("disk /var"),
        "{}",
        a.summary
    );
    let assessment = d.live.assessment(&fp).expect("weighed");
    let w = assessment.weighing.as_ref().unwrap();
    let cap = w
        .capacity
        .as_ref()
        .expect("the size series gives a capacity");
    assert_eq!(cap.size, 200.0 * 1024.0 * 1024.0 * 1024.0);
    assert!(cap.growth_per_hour > 0.0 && cap.full_in_secs.is_some());
    assert!(w.contributors[0].what.contains("/var/log/nginx/access.log"));
    assert!(w.contributors[0].share < 0.01, "{w:#?}");
    // The record carries the weighed facts.
    let data = rca.data.as_ref().unwrap();
    assert!(data["assessment"]["weighing"]["capacity"]["size"].is_number());

    // The suggestions agree: disk_cleanup is matched and recommended
    // (both), its action is already open (not proposable again), and the
    // analysis says nothing against it.
    let s = suggestions(&d.engine, Some(&view), Some(&assessment), &fp, d.now);
    let dc = s.iter().find(|x| x.runbook == "disk_cleanup").unwrap();
    assert_eq!(dc.origin, SuggestionOrigin::Both);
    assert_eq!(dc.analysis_rank, Some(1));
    assert!(
        dc.why.iter().any(|w| w.contains("the analysis")),
        "{:?}",
        dc.why
    );
    assert!(
        dc.why_not.iter().any(|w| w.contains("already has action")),
        "{:?}",
        dc.why_not
    );
    assert!(!dc.proposable);
    assert!(
        !s.iter()
            .any(|x| x.runbook == "log_rotation" && x.analysis_rank.is_some()),
        "log_rotation is not recommended"
    );
    // And the disk_cleanup that ran is the one the analysis recommends.
    assert!(d.log.iter().any(|r| r.kind == RecordKind::ActionProposed
        && r.runbook.as_deref() == Some("disk_cleanup")
        && r.target.as_deref() == Some("web-03")));
    assert!(proposal(d.engine.catalog(), Some(&view), &fp, "log_rotation", "ana").is_err());
}

#[test]
fn app_02s_leak_gets_the_runbook_that_is_proposed() {
    let mut d = Demo::new();
    d.until(6, |d| d.rca_for("MemoryPressure", "app-02").is_some());
    let rca = d.rca_for("MemoryPressure", "app-02").unwrap().clone();
    let fp = rca.fingerprint.clone().unwrap();
    let view = d.live.view(&fp).unwrap().clone();
    assert_eq!(
        view.analysis.cause,
        Cause::MemoryLeak,
        "{:#?}",
        view.analysis
    );
    assert_eq!(view.analysis.top_runbook(), "memory_pressure");
}
