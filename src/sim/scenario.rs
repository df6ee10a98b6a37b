//! Scenario files and `vigil replay`: runs the real engine over a recorded
//! incident on a virtual clock, as fast as possible, with simulated executors
//! answering as the scenario's `[outcomes]` say, and checks `[expect]`.
//!
//! The format is the contract in shared/scenarios/README.md.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use serde::Deserialize;

use crate::config::Config;
use crate::engine::{
    Alert, Command, Engine, Event, Inventory, MaintenanceWindow, Outcome, WindowSpec,
};
use crate::model::{AlertStatus, IncomingAlert, Labels, Record, RecordKind, Sample, Time};
use crate::policy::PolicySpec;
use crate::runbook::Catalog;
use crate::units::{FileError, key_line, key_line_from, limits, toml_error_line};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioHost {
    pub name: String,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricEvent {
    pub name: String,
    pub value: f64,
    #[serde(default)]
    pub labels: Labels,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertEvent {
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    #[serde(default = "firing")]
    pub status: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

fn firing() -> String {
    "firing".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionEvent {
    pub runbook: String,
    pub target: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub actor: Option<String>,
}

/// `run = { runbook, target, params, actor }`: an operator's manual run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunEvent {
    pub runbook: String,
    pub target: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub actor: Option<String>,
}

/// `repropose = { alert = "NAME", target, actor }` (or `fingerprint`): an
/// operator proposes a firing alert's runbook again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReproposeEvent {
    #[serde(default)]
    pub alert: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeEvent {
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(default)]
    pub frozen: Option<bool>,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub at: String,
    #[serde(default)]
    pub metric: Option<MetricEvent>,
    #[serde(default)]
    pub alert: Option<AlertEvent>,
    #[serde(default)]
    pub approve: Option<DecisionEvent>,
    #[serde(default)]
    pub reject: Option<DecisionEvent>,
    #[serde(default)]
    pub set_mode: Option<ModeEvent>,
    /// An operator resets a circuit breaker (Vigil extension).
    #[serde(default)]
    pub reset_breaker: Option<DecisionEvent>,
    /// An operator's manual run of a runbook on a host (Vigil extension).
    #[serde(default)]
    pub run: Option<RunEvent>,
    /// An operator proposes an alert's runbook again (Vigil extension).
    #[serde(default)]
    pub repropose: Option<ReproposeEvent>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeSpec {
    #[serde(default = "success")]
    pub result: String,
    #[serde(default)]
    pub set: BTreeMap<String, f64>,
}

fn success() -> String {
    "success".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    #[serde(default)]
    pub records: Vec<toml::Table>,
    #[serde(default)]
    pub absent: Vec<toml::Table>,
    #[serde(default)]
    pub max_executions: BTreeMap<String, u32>,
    /// Labels for `vigil rca eval`; replay does not check them.
    #[serde(default)]
    pub rca: Option<toml::Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub start: String,
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub hosts: Vec<ScenarioHost>,
    #[serde(default)]
    pub maintenance: Vec<WindowSpec>,
    #[serde(default)]
    pub config: Option<toml::Table>,
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    #[serde(default)]
    pub events: Vec<toml::Spanned<EventSpec>>,
    #[serde(default)]
    pub outcomes: BTreeMap<String, OutcomeSpec>,
    #[serde(default)]
    pub expect: Option<ExpectSpec>,
}

/// One input at an offset, ready to feed.
#[derive(Debug, Clone)]
enum Input {
    Metric(Sample),
    Alert(IncomingAlert),
    Approve(String, String, String),
    Reject(String, String, String, String),
    Mode(Option<bool>, Option<bool>, String),
    Reset(String, String, String),
    Run(String, String, BTreeMap<String, String>, String),
    /// (fingerprint, alert name, target, actor)
    Repropose(Option<String>, Option<String>, Option<String>, String),
}

/// A parsed, validated scenario.
pub struct Scenario {
    pub file: ScenarioFile,
    pub start: Time,
    pub end: Time,
    inputs: Vec<(Time, Input)>,
    outcomes: BTreeMap<String, (bool, BTreeMap<String, f64>)>,
    engine: Engine,
    /// What `vigil rca eval` needs beyond the log (filled while running).
    seen: Seen,
    /// Operators' intents the engine refused, with why.
    refused: Vec<(Time, String)>,
}

/// What a run saw besides its decision log: every sample fed (with its
/// time) and every alert as it was when it fired (keyed by the `seq` of its
/// `alert_firing` record). Read by `vigil rca eval`.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub samples: Vec<(Time, Sample)>,
    pub fired: Vec<(u64, Alert)>,
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// A line number that is only counted when an error needs it.
#[derive(Clone, Copy)]
struct LazyLine<'a>(&'a str, usize);

impl LazyLine<'_> {
    fn get(self) -> Option<usize> {
        Some(line_at(self.0, self.1))
    }
}

impl Scenario {
    pub fn parse(file: &str, text: &str) -> Result<Scenario, FileError> {
        let fail = |line: Option<usize>, message: String| FileError {
            file: file.to_string(),
            line,
            message,
        };
        let sf: ScenarioFile = toml::from_str(text).map_err(|e| {
            let (line, message) = toml_error_line(&e, text);
            fail(line, message)
        })?;
        let find = |needle: &str| crate::units::line_of(text, needle);
        let start: Time = chrono::DateTime::parse_from_rfc3339(sf.start.trim())
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| {
                fail(
                    find("start"),
                    format!("start = {:?} is not an RFC 3339 time ({e}); expected e.g. \"2026-03-01T02:00:00Z\"", sf.start),
                )
            })?;

        let mut inputs = Vec::new();
        for ev in &sf.events {
            // Computed only when needed: counting lines per event is quadratic.
            let span_start = ev.span().start;
            let line = LazyLine(text, span_start);
            let e = ev.get_ref();
            let off = limits::SCENARIO_OFFSET
                .parse_delta("events.at", &e.at)
                .map_err(|m| fail(key_line_from(text, span_start, "at").or(line.get()), m))?;
            let at = start.checked_add_signed(off).ok_or_else(|| {
                fail(
                    line.get(),
                    format!("events.at = {:?} is past the end of time", e.at),
                )
            })?;
            let given = [
                e.metric.is_some(),
                e.alert.is_some(),
                e.approve.is_some(),
                e.reject.is_some(),
                e.set_mode.is_some(),
                e.reset_breaker.is_some(),
                e.run.is_some(),
                e.repropose.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if given != 1 {
                return Err(fail(
                    line.get(),
                    format!(
                        "an event needs exactly one of metric, alert, approve, reject, set_mode, reset_breaker, run, repropose (found {given})"
                    ),
                ));
            }
            let actor = |a: &Option<String>| a.clone().unwrap_or_else(|| "operator".into());
            let input = if let Some(m) = &e.metric {
                if !m.value.is_finite() {
                    return Err(fail(
                        key_line_from(text, span_start, "metric").or(line.get()),
                        format!(
                            "metric.value = {} is not a finite number; accepted any finite number",
                            m.value
                        ),
                    ));
                }
                Input::Metric(Sample {
                    name: m.name.clone(),
                    value: m.value,
                    labels: m.labels.clone(),
                })
            } else if let Some(a) = &e.alert {
                let status = match a.status.as_str() {
                    "firing" => AlertStatus::Firing,
                    "resolved" => AlertStatus::Resolved,
                    other => {
                        return Err(fail(
                            line.get(),
                            format!(
                                "alert.status = {other:?}; expected \"firing\" or \"resolved\""
                            ),
                        ));
                    }
                };
                if !a.labels.contains_key("alertname") {
                    return Err(fail(
                        line.get(),
                        "alert.labels needs an \"alertname\"".into(),
                    ));
                }
                Input::Alert(IncomingAlert {
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    status,
                    fingerprint: a.fingerprint.clone(),
                    starts_at: None,
                    ends_at: None,
                    source: Some("scenario".into()),
                    generator_url: None,
                })
            } else if let Some(d) = &e.approve {
                Input::Approve(d.runbook.clone(), d.target.clone(), actor(&d.actor))
            } else if let Some(d) = &e.reject {
                Input::Reject(
                    d.runbook.clone(),
                    d.target.clone(),
                    actor(&d.actor),
                    d.reason.clone().unwrap_or_default(),
                )
            } else if let Some(m) = &e.set_mode {
                if m.dry_run.is_none() && m.frozen.is_none() {
                    return Err(fail(line.get(), "set_mode needs dry_run or frozen".into()));
                }
                Input::Mode(m.dry_run, m.frozen, actor(&m.actor))
            } else if let Some(d) = &e.reset_breaker {
                Input::Reset(d.runbook.clone(), d.target.clone(), actor(&d.actor))
            } else if let Some(r) = &e.run {
                Input::Run(
                    r.runbook.clone(),
                    r.target.clone(),
                    r.params.clone(),
                    actor(&r.actor),
                )
            } else if let Some(r) = &e.repropose {
                if r.fingerprint.is_none() && r.alert.is_none() {
                    return Err(fail(
                        line.get(),
                        "repropose needs alert (the alert's name, with target) or fingerprint"
                            .into(),
                    ));
                }
                Input::Repropose(
                    r.fingerprint.clone(),
                    r.alert.clone(),
                    r.target.clone(),
                    actor(&r.actor),
                )
            } else {
                return Err(fail(line.get(), "empty event".into()));
            };
            inputs.push((at, input));
        }
        // Stable: events at the same offset keep file order.
        inputs.sort_by_key(|(t, _)| *t);

        let end_line = || key_line(text, "end");
        let end = match &sf.end {
            Some(e) => {
                let off = limits::SCENARIO_OFFSET
                    .parse_delta("end", e)
                    .map_err(|m| fail(end_line(), m))?;
                start.checked_add_signed(off).ok_or_else(|| {
                    fail(end_line(), format!("end = {e:?} is past the end of time"))
                })?
            }
            None => {
                let last = inputs.last().map(|(t, _)| *t).unwrap_or(start);
                last.checked_add_signed(TimeDelta::hours(1)).unwrap_or(last)
            }
        };

        let mut outcomes = BTreeMap::new();
        for (key, o) in &sf.outcomes {
            let ok = match o.result.as_str() {
                "success" => true,
                "failure" => false,
                other => {
                    return Err(fail(
                        find(&format!("\"{key}\"")),
                        format!(
                            "outcomes.{key:?}.result = {other:?}; expected \"success\" or \"failure\""
                        ),
                    ));
                }
            };
            if let Some((metric, v)) = o.set.iter().find(|(_, v)| !v.is_finite()) {
                return Err(fail(
                    find(&format!("\"{key}\"")),
                    format!(
                        "outcomes.{key:?}.set.{metric} = {v} is not a finite number; accepted any finite number"
                    ),
                ));
            }
            if !key.contains('@') {
                return Err(fail(
                    find(&format!("\"{key}\"")),
                    format!("outcomes key {key:?} must be \"RUNBOOK@HOST\""),
                ));
            }
            outcomes.insert(key.clone(), (ok, o.set.clone()));
        }

        if let Some(exp) = &sf.expect {
            for (what, list) in [("records", &exp.records), ("absent", &exp.absent)] {
                for t in list.iter() {
                    match t.get("kind").and_then(|k| k.as_str()) {
                        Some(k) if RecordKind::parse(k).is_some() => {}
                        Some(k) => {
                            return Err(fail(
                                find(&format!("\"{k}\"")),
                                format!("expect.{what}: kind {k:?} is not a record kind"),
                            ));
                        }
                        None => {
                            return Err(fail(
                                find(&format!("expect.{what}")),
                                format!("expect.{what}: every entry needs a kind"),
                            ));
                        }
                    }
                }
            }
        }

        // The config: [config] merged over the defaults, plus hosts and windows.
        let mut config: Config = match &sf.config {
            Some(t) => t.clone().try_into().map_err(|e: toml::de::Error| {
                fail(find("[config"), format!("config: {}", e.message()))
            })?,
            None => Config::default(),
        };
        config.policies.extend(sf.policies.iter().cloned());
        config.maintenance.extend(sf.maintenance.iter().cloned());
        for h in &sf.hosts {
            config.hosts.push(crate::config::HostEntry {
                name: h.name.clone(),
                labels: h.labels.clone(),
                services: h.services.clone(),
                executor: Some("sim".into()),
                ..Default::default()
            });
        }
        // As in production: when the scenario lists its hosts, a host it
        // does not list has no executor (`no_executor`). Without a list every
        // host is simulated.
        let default_executor = sf.hosts.is_empty().then(|| "sim".to_string());
        let setup = config
            .build(file, text, true, default_executor)
            .map_err(|es| {
                let first = &es[0];
                FileError {
                    file: file.to_string(),
                    line: first.line,
                    message: es
                        .iter()
                        .map(|e| e.message.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            })?;
        Ok(Scenario {
            file: sf,
            start,
            end,
            inputs,
            outcomes,
            engine: Engine::new(setup),
            seen: Seen::default(),
            refused: Vec::new(),
        })
    }

    /// Runs the scenario; returns the decision log.
    pub fn run(mut self) -> Replay {
        let mut log: Vec<Record> = Vec::new();
        let inputs = std::mem::take(&mut self.inputs);
        let mut now = self.start;
        for (at, input) in inputs {
            self.advance_to(at, &mut now, &mut log);
            now = at;
            let ev = match input {
                Input::Metric(s) => {
                    self.seen.samples.push((now, s.clone()));
                    Some(Event::Sample(s))
                }
                Input::Alert(a) => Some(Event::Alert(a)),
                Input::Approve(rb, t, actor) => self
                    .engine
                    .find_action(&rb, &t)
                    .map(|action| Event::Approve { action, actor }),
                Input::Reject(rb, t, actor, reason) => {
                    self.engine
                        .find_action(&rb, &t)
                        .map(|action| Event::Reject {
                            action,
                            actor,
                            reason,
                        })
                }
                Input::Mode(d, f, actor) => {
                    if let Some(on) = d {
                        let cmds = self.engine.handle(
                            Event::SetDryRun {
                                on,
                                actor: actor.clone(),
                            },
                            now,
                        );
                        self.apply(cmds, now, &mut log);
                    }
                    f.map(|on| Event::SetFrozen { on, actor })
                }
                Input::Reset(runbook, target, actor) => Some(Event::ResetBreaker {
                    runbook,
                    target,
                    actor,
                }),
                Input::Run(runbook, target, params, actor) => Some(Event::Run {
                    runbook,
                    target,
                    params,
                    actor,
                }),
                Input::Repropose(fp, alert, target, actor) => {
                    let fingerprint = fp
                        .or_else(|| self.alert_fingerprint(alert.as_deref(), target.as_deref()))
                        .unwrap_or_default();
                    Some(Event::Repropose { fingerprint, actor })
                }
            };
            if let Some(ev) = ev {
                // As the hub does: an intent that cannot be carried out is
                // refused (and noted) instead of handled.
                match self.engine.vet(&ev, now) {
                    Ok(()) => {
                        let cmds = self.engine.handle(ev, now);
                        self.apply(cmds, now, &mut log);
                    }
                    Err(r) => self.refused.push((now, r.message)),
                }
            }
        }
        let end = self.end;
        self.advance_to(end, &mut now, &mut log);
        Replay {
            log,
            expect: self.file.expect.clone().unwrap_or_default(),
            seen: std::mem::take(&mut self.seen),
            refused: std::mem::take(&mut self.refused),
            windows: self.engine.windows().to_vec(),
            inventory: self.engine.inventory().clone(),
            catalog: self.engine.catalog().clone(),
        }
    }

    fn advance_to(&mut self, t: Time, now: &mut Time, log: &mut Vec<Record>) {
        let mut guard = 0u64;
        while let Some(d) = self.engine.next_deadline() {
            if d > t || guard > 50_000_000 {
                break;
            }
            guard += 1;
            let at = d.max(*now);
            *now = at;
            let cmds = self.engine.handle(Event::Tick, at);
            self.apply(cmds, at, log);
        }
    }

    fn apply(&mut self, cmds: Vec<Command>, now: Time, log: &mut Vec<Record>) {
        let mut queue = std::collections::VecDeque::from(cmds);
        while let Some(c) = queue.pop_front() {
            match c {
                Command::Record(mut r) => {
                    r.seq = log.len() as u64 + 1;
                    if r.kind == RecordKind::AlertFiring
                        && let Some(a) = r.fingerprint.as_deref().and_then(|f| self.engine.alert(f))
                    {
                        self.seen.fired.push((r.seq, a.clone()));
                    }
                    log.push(r);
                }
                // A replay has no Prometheus to ask.
                Command::Escalate(_) | Command::Probe(_) => {}
                Command::Execute(x) => {
                    let key = format!("{}@{}", x.runbook, x.target);
                    let (ok, set) = self
                        .outcomes
                        .get(&key)
                        .cloned()
                        .unwrap_or((true, BTreeMap::new()));
                    let outcome = if ok {
                        Outcome::success("simulated run succeeded")
                    } else {
                        Outcome::failure(Some(1), "simulated run failed")
                    };
                    let mut more = self.engine.handle(
                        Event::Finished {
                            action: x.action,
                            attempt: x.attempt,
                            outcome,
                        },
                        now,
                    );
                    for (metric, value) in set {
                        for labels in self.series_of(&x.target, &metric) {
                            self.seen.samples.push((
                                now,
                                Sample {
                                    name: metric.clone(),
                                    value,
                                    labels: labels.clone(),
                                },
                            ));
                            more.extend(self.engine.handle(
                                Event::Sample(Sample {
                                    name: metric.clone(),
                                    value,
                                    labels,
                                }),
                                now,
                            ));
                        }
                    }
                    queue.extend(more);
                }
            }
        }
    }

    /// The fingerprint of the alert named `name` on host `target`: the
    /// firing one, else the latest.
    fn alert_fingerprint(&self, name: Option<&str>, target: Option<&str>) -> Option<String> {
        let name = name?;
        self.engine
            .alerts()
            .filter(|a| a.name == name && target.is_none_or(|t| a.host() == Some(t)))
            .max_by_key(|a| (a.status == AlertStatus::Firing, a.since))
            .map(|a| a.fingerprint.clone())
    }

    /// The label sets of a host's series of a metric (a bare `{host}` when
    /// there is none yet).
    fn series_of(&self, host: &str, metric: &str) -> Vec<Labels> {
        let mut v: Vec<Labels> = self
            .engine
            .evaluator()
            .series()
            .filter(|k| k.name() == metric && k.label("host") == Some(host))
            .map(|k| k.to_labels())
            .collect();
        if v.is_empty() {
            v.push([("host".to_string(), host.to_string())].into());
        }
        v
    }
}

/// The result of a replay.
pub struct Replay {
    pub log: Vec<Record>,
    pub expect: ExpectSpec,
    pub seen: Seen,
    /// Operators' intents that were refused (`Engine::vet`), with why.
    pub refused: Vec<(Time, String)>,
    pub windows: Vec<MaintenanceWindow>,
    pub inventory: Inventory,
    pub catalog: Catalog,
}

fn field_matches(r: &serde_json::Value, key: &str, want: &toml::Value) -> bool {
    let got = r.get(key);
    match (got, want) {
        (Some(serde_json::Value::String(g)), toml::Value::String(w)) => g == w,
        (Some(serde_json::Value::Number(g)), toml::Value::Integer(w)) => g.as_i64() == Some(*w),
        (Some(serde_json::Value::Number(g)), toml::Value::Float(w)) => g.as_f64() == Some(*w),
        (Some(serde_json::Value::Bool(g)), toml::Value::Boolean(w)) => g == w,
        (Some(g), w) => g.to_string().trim_matches('"') == w.to_string().trim_matches('"'),
        (None, _) => false,
    }
}

fn describe(t: &toml::Table) -> String {
    t.iter()
        .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Replay {
    /// Every unmet expectation, one line each; empty when `[expect]` holds.
    pub fn unmet(&self) -> Vec<String> {
        let json: Vec<serde_json::Value> = self
            .log
            .iter()
            .map(|r| serde_json::to_value(r).unwrap_or_default())
            .collect();
        let matches =
            |t: &toml::Table, r: &serde_json::Value| t.iter().all(|(k, v)| field_matches(r, k, v));
        let mut out = Vec::new();
        for t in &self.expect.records {
            if !json.iter().any(|r| matches(t, r)) {
                out.push(format!(
                    "expected a record {} but none was found",
                    describe(t)
                ));
            }
        }
        for t in &self.expect.absent {
            if let Some((i, _)) = json.iter().enumerate().find(|(_, r)| matches(t, r)) {
                out.push(format!(
                    "expected no record {} but found: {}",
                    describe(t),
                    self.log[i].summary().trim()
                ));
            }
        }
        for (key, max) in &self.expect.max_executions {
            let (rb, host) = key.split_once('@').unwrap_or((key.as_str(), ""));
            let n = self
                .log
                .iter()
                .filter(|r| {
                    r.kind == RecordKind::ActionStarted
                        && r.runbook.as_deref() == Some(rb)
                        && r.target.as_deref() == Some(host)
                })
                .count();
            if n as u32 > *max {
                out.push(format!(
                    "expected at most {max} action_started for {key}, got {n}"
                ));
            }
        }
        out
    }
}

/// Parses and runs a scenario file from disk.
pub fn replay_file(path: &std::path::Path) -> Result<Replay, FileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        file: file.clone(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    Ok(Scenario::parse(&file, &text)?.run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_are_vetted_and_refusals_kept() {
        let text = r#"
name = "x"
start = "2026-01-01T00:00:00Z"
[[hosts]]
name = "h1"
services = ["api"]
[[events]]
at = "0s"
run = { runbook = "service_restart", target = "h9", params = { service = "api" }, actor = "ana" }
[[events]]
at = "1s"
run = { runbook = "service_restart", target = "h1", params = { service = "api" }, actor = "ana" }
[[events]]
at = "2s"
approve = { runbook = "service_restart", target = "h1", actor = "ana" }
[[events]]
at = "3s"
repropose = { alert = "ServiceDown", target = "h1" }
"#;
        let r = Scenario::parse("x.toml", text).unwrap().run();
        let msgs: Vec<&str> = r.refused.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].starts_with("no host \"h9\""), "{}", msgs[0]);
        assert!(
            msgs[1].contains("cannot be its only approver"),
            "{}",
            msgs[1]
        );
        assert!(
            msgs[2].starts_with("no alert with fingerprint"),
            "{}",
            msgs[2]
        );
        assert_eq!(
            r.log
                .iter()
                .filter(|x| x.kind == RecordKind::ActionProposed)
                .count(),
            1
        );

        let bad = "name = \"x\"\nstart = \"2026-01-01T00:00:00Z\"\n[[events]]\nat = \"0s\"\nrepropose = { target = \"h1\" }\n";
        let e = Scenario::parse("x.toml", bad).err().unwrap();
        assert!(e.message.contains("repropose needs alert"), "{e}");
        assert_eq!(e.line, Some(3));
    }
}
