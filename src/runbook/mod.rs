//! Runbooks as data: the file format (`runbooks/*.toml`), its validation, the
//! catalog (built-ins compiled in, overridable from the config dir), matching
//! alerts to runbooks with reasons, parameter resolution and validation, and
//! the plan (the exact argument vectors a run would execute).
//!
//! Nothing here runs a command or decides whether one may run (the engine's
//! guards do that).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::TimeDelta;
use globset::{Glob, GlobMatcher};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::model::{Labels, Severity};
use crate::policy::Matcher;
use crate::units::files::{Bundled, FileError};
use crate::units::{Rate, check_count, limits, line_of, parse_delta, toml_error_line};

pub mod inline;
mod spec;
pub use spec::*;

/// The built-in runbooks, compiled in.
pub const BUILTIN: [(&str, &str); 6] = [
    (
        "disk_cleanup",
        include_str!("../../runbooks/disk_cleanup.toml"),
    ),
    (
        "service_restart",
        include_str!("../../runbooks/service_restart.toml"),
    ),
    (
        "memory_pressure",
        include_str!("../../runbooks/memory_pressure.toml"),
    ),
    (
        "log_rotation",
        include_str!("../../runbooks/log_rotation.toml"),
    ),
    (
        "zombie_killer",
        include_str!("../../runbooks/zombie_killer.toml"),
    ),
    (
        "connection_reset",
        include_str!("../../runbooks/connection_reset.toml"),
    ),
];

/// Runbook files: the built-in ones, replaced by same-named files in the
/// runbook dir, plus any other files there.
pub const RUNBOOKS: Bundled = Bundled {
    kind: "runbook",
    folder: "runbooks",
    tag: "built in",
    files: &BUILTIN,
    missing: |_, name, _| format!("no runbook file {name}.toml"),
};

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub spec: ParamSpec,
    pattern: Option<Regex>,
}

impl Param {
    /// Checks a value against the declared pattern or set; the error says what
    /// was wrong and what is accepted, with the value escaped.
    pub fn validate(&self, value: &str) -> Result<(), String> {
        if let Some(set) = &self.spec.one_of
            && !set.iter().any(|v| v == value)
        {
            return Err(format!(
                "{}={:?} is not accepted; expected one of {}",
                self.name,
                value.escape_debug().to_string(),
                set.join(", ")
            ));
        }
        if let Some(re) = &self.pattern
            && !re.is_match(value)
        {
            return Err(format!(
                "{}={:?} does not match the pattern {}",
                self.name,
                value.escape_debug().to_string(),
                self.spec.pattern.as_deref().unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// A validated runbook with the site's overrides applied.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub spec: RunbookSpec,
    pub matchers: Vec<Matcher>,
    pub params: Vec<Param>,
    pub approval: ApprovalSpec,
    /// Distinct operators whose approvals an action needs when its approval
    /// is manual (the override, else the file, else by risk, else 1).
    pub approvals: u32,
    /// Whether `approvals` came from the runbook file or the override (then
    /// `settings.approvals_by_risk` does not apply).
    pub approvals_explicit: bool,
    pub cooldown: TimeDelta,
    pub max_runs: Rate,
    pub verify_window: TimeDelta,
    pub max_attempts: u32,
    pub protected: Vec<(String, Vec<(String, GlobMatcher)>)>,
    pub allow_protected: Vec<String>,
    pub enabled: bool,
}

impl Runbook {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn target_label(&self) -> &str {
        self.spec.target_label.as_deref().unwrap_or("host")
    }

    /// Compiles a spec with an optional override; errors name the key.
    pub fn compile(spec: RunbookSpec, over: Option<&RunbookOverride>) -> Result<Runbook, String> {
        let name_ok = !spec.name.is_empty()
            && spec
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(format!(
                "name {:?} is invalid; expected lower-case letters, digits and '_'",
                spec.name
            ));
        }
        let matchers = spec
            .matches
            .labels
            .iter()
            .map(|m| Matcher::parse(m).map_err(|e| format!("match.labels: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if spec.matches.alertname.is_empty() && matchers.is_empty() {
            return Err("match: give at least one alertname or label matcher".into());
        }
        let mut params = Vec::new();
        for (pname, p) in &spec.params {
            if p.pattern.is_none() && p.one_of.is_none() {
                return Err(format!(
                    "params.{pname}: needs a `pattern` or an `enum`; a value from an alert reaches a command only after it matched one"
                ));
            }
            let pattern = match &p.pattern {
                Some(pat) => Some(Regex::new(&format!("^(?:{pat})$")).map_err(|e| {
                    format!("params.{pname}.pattern {pat:?} is not a valid regex: {e}")
                })?),
                None => None,
            };
            if p.source == ParamSource::Host && p.fact.is_none() && p.default.is_none() {
                // the fact defaults to the parameter's name: fine.
            }
            let param = Param {
                name: pname.clone(),
                spec: p.clone(),
                pattern,
            };
            if let Some(d) = &p.default {
                param
                    .validate(d)
                    .map_err(|e| format!("params.{pname}.default: {e}"))?;
            }
            params.push(param);
        }
        let verify_step = spec.verify.command.as_ref().map(|argv| StepSpec {
            name: "verify".into(),
            argv: argv.clone(),
            timeout: spec.verify.timeout.clone(),
            read_only: true,
            when: BTreeMap::new(),
        });
        for (i, step) in spec
            .steps
            .iter()
            .chain(spec.rollback.iter())
            .chain(verify_step.iter())
            .enumerate()
        {
            if step.argv.is_empty() {
                return Err(format!("steps[{i}] ({}): argv is empty", step.name));
            }
            if let Some(t) = &step.timeout {
                let key = if step.name == "verify" && i >= spec.steps.len() + spec.rollback.len() {
                    "verify.timeout".to_string()
                } else {
                    format!("steps[{i}].timeout")
                };
                limits::STEP_TIMEOUT.parse_delta(&key, t)?;
            }
            for script in inline::inline_scripts(&step.argv) {
                if let Some(p) = placeholders(&step.argv[script.index]).first() {
                    return Err(format!(
                        "steps[{i}] ({}): {{{p}}} inside an inline script run by {} (argument {}); values reach a script only as positional arguments after it (sh -c 'script' sh \"{{{p}}}\", python3 -c 'code' \"{{{p}}}\")",
                        step.name, script.interpreter, script.index
                    ));
                }
            }
            for arg in &step.argv {
                for p in placeholders(arg) {
                    if p != "target" && !spec.params.contains_key(p) {
                        return Err(format!(
                            "steps[{i}] ({}): {{{p}}} is not a parameter of this runbook; declared: {}",
                            step.name,
                            spec.params.keys().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
            }
        }
        if let Some(url) = &spec.verify.http {
            for p in placeholders(url) {
                if p != "target" && !spec.params.contains_key(p) {
                    return Err(format!(
                        "verify.http: {{{p}}} is not a parameter of this runbook"
                    ));
                }
            }
        }
        for pc in &spec.preconditions {
            if !spec.params.contains_key(&pc.param) {
                return Err(format!("preconditions: {:?} is not a parameter", pc.param));
            }
        }
        let mut protected = Vec::new();
        for (pname, globs) in &spec.protected {
            if !spec.params.contains_key(pname) {
                return Err(format!(
                    "protected.{pname}: not a parameter of this runbook"
                ));
            }
            let mut gs = Vec::new();
            for g in globs {
                let m = Glob::new(g)
                    .map_err(|e| format!("protected.{pname}: {g:?} is not a valid glob: {e}"))?
                    .compile_matcher();
                gs.push((g.clone(), m));
            }
            protected.push((pname.clone(), gs));
        }
        let o = over.cloned().unwrap_or_default();
        let approval = o
            .approval
            .or(spec.approval)
            .unwrap_or(ApprovalSpec::Mode(ApprovalMode::Manual));
        // A value from the config's [runbooks.NAME] says so in its error, so
        // that the error points at the config file rather than the runbook's.
        let site = format!("[runbooks.{}] ", spec.name);
        let pick = |over: &Option<String>, own: Option<&String>, default: &'static str| match (
            over, own,
        ) {
            (Some(v), _) => (v.clone(), site.as_str()),
            (None, Some(v)) => (v.clone(), ""),
            (None, None) => (default.to_string(), ""),
        };
        let (v, from) = pick(&o.cooldown, spec.cooldown.as_ref(), "1m");
        let cooldown = limits::COOLDOWN
            .parse_delta("cooldown", &v)
            .map_err(|e| format!("{from}{e}"))?;
        let (v, from) = pick(&o.max_runs, spec.max_runs.as_ref(), "3/10m");
        let max_runs = Rate::parse(&v).map_err(|e| {
            format!(
                "{from}max_runs: {e}; accepted COUNT {}..{} per {}",
                limits::MAX_RUNS_COUNT.0,
                limits::MAX_RUNS_COUNT.1,
                limits::MAX_RUNS_WINDOW.describe()
            )
        })?;
        let per = max_runs.per.to_std().unwrap_or_default();
        if max_runs.count > limits::MAX_RUNS_COUNT.1
            || per < limits::MAX_RUNS_WINDOW.min
            || per > limits::MAX_RUNS_WINDOW.max
        {
            return Err(format!(
                "{from}max_runs = {v:?} is out of range; accepted COUNT {}..{} per {}",
                limits::MAX_RUNS_COUNT.0,
                limits::MAX_RUNS_COUNT.1,
                limits::MAX_RUNS_WINDOW.describe()
            ));
        }
        let (v, from) = pick(&o.verify_window, spec.verify.window.as_ref(), "1m");
        let key = if from.is_empty() {
            "verify.window"
        } else {
            "verify_window"
        };
        let verify_window = limits::VERIFY_WINDOW
            .parse_delta(key, &v)
            .map_err(|e| format!("{from}{e}"))?;
        let max_attempts = match o.max_attempts {
            Some(n) => check_count(
                "max_attempts",
                n,
                limits::MAX_ATTEMPTS.0,
                limits::MAX_ATTEMPTS.1,
            )
            .map_err(|e| format!("{site}{e}"))?,
            None => 3,
        };
        let approvals = o.approvals.or(spec.approvals);
        let mut rb = Runbook {
            matchers,
            params,
            approval,
            approvals: approvals.unwrap_or_default().get(),
            approvals_explicit: approvals.is_some(),
            cooldown,
            max_runs,
            verify_window,
            max_attempts,
            protected,
            allow_protected: o.allow_protected.clone(),
            enabled: o.enabled.unwrap_or(true),
            spec,
        };
        // A site value is the config's (`[runbooks.NAME] params`): its
        // errors name that section, so they point at the user's line.
        let name = rb.spec.name.clone();
        let known = rb
            .params
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        for (k, v) in &o.params {
            let p = rb.params.iter_mut().find(|p| &p.name == k).ok_or_else(|| {
                format!(
                    "[runbooks.{name}] {k}: not a parameter of runbook {name}; its parameters: {known}"
                )
            })?;
            p.validate(v)
                .map_err(|e| format!("[runbooks.{name}] {k} (params): {e}"))?;
            p.spec.default = Some(v.clone());
        }
        Ok(rb)
    }

    /// Does this runbook handle the alert? Returns a score (higher = more
    /// specific) and the reasons, or None.
    pub fn matches(&self, labels: &Labels) -> Option<(u32, Vec<String>)> {
        let mut reasons = Vec::new();
        let mut score = 0;
        if !self.spec.matches.alertname.is_empty() {
            let an = labels.get("alertname").map(String::as_str).unwrap_or("");
            if !self.spec.matches.alertname.iter().any(|a| a == an) {
                return None;
            }
            reasons.push(format!("alertname={an} is one this runbook handles"));
            score += 10;
        }
        for m in &self.matchers {
            if !m.matches(labels) {
                return None;
            }
            reasons.push(format!("label {m} holds"));
            score += 1;
        }
        Some((score, reasons))
    }

    /// Resolves every parameter from the alert's labels, the host's facts,
    /// the defaults and explicit values, validating each.
    pub fn resolve_params(
        &self,
        alert_labels: &Labels,
        host_facts: &Labels,
        explicit: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ParamError> {
        let mut out = BTreeMap::new();
        for p in &self.params {
            let value = if let Some(v) = explicit.get(&p.name) {
                Some(v.clone())
            } else {
                let found = match p.spec.source {
                    ParamSource::Label => alert_labels
                        .get(p.spec.label.as_deref().unwrap_or(&p.name))
                        .cloned(),
                    ParamSource::Host => host_facts
                        .get(p.spec.fact.as_deref().unwrap_or(&p.name))
                        .cloned(),
                    ParamSource::Literal => None,
                };
                found.or_else(|| p.spec.default.clone())
            };
            let Some(value) = value else {
                let whence = match p.spec.source {
                    ParamSource::Label => format!(
                        "alert label {:?}",
                        p.spec.label.as_deref().unwrap_or(&p.name)
                    ),
                    ParamSource::Host => {
                        format!("host fact {:?}", p.spec.fact.as_deref().unwrap_or(&p.name))
                    }
                    ParamSource::Literal => "a default".into(),
                };
                return Err(ParamError {
                    param: p.name.clone(),
                    message: format!("{} is missing: no {whence} and no default", p.name),
                });
            };
            p.validate(&value).map_err(|message| ParamError {
                param: p.name.clone(),
                message,
            })?;
            out.insert(p.name.clone(), value);
        }
        for k in explicit.keys() {
            if !self.params.iter().any(|p| &p.name == k) {
                return Err(ParamError {
                    param: k.clone(),
                    message: format!(
                        "{k} is not a parameter of {}; accepted: {}",
                        self.spec.name,
                        self.params
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        Ok(out)
    }

    /// The protected value a parameter hits, if any (and not allowed).
    pub fn protected_hit(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Option<(String, String, String)> {
        for (pname, globs) in &self.protected {
            let Some(v) = params.get(pname) else { continue };
            if self.allow_protected.iter().any(|a| a == v) {
                continue;
            }
            if let Some((g, _)) = globs.iter().find(|(_, m)| m.is_match(v)) {
                return Some((pname.clone(), v.clone(), g.clone()));
            }
        }
        None
    }

    /// The exact argument vectors of the steps a run would execute: the
    /// steps whose `when` holds, then `verify.command` (as a step named
    /// "verify"), then the rollback steps (flagged `rollback`, run only when
    /// a step failed).
    pub fn plan(&self, target: &str, params: &BTreeMap<String, String>) -> Vec<PlannedStep> {
        let applies = |s: &&StepSpec| s.when.iter().all(|(k, v)| params.get(k) == Some(v));
        let planned = |s: &StepSpec, rollback: bool| PlannedStep {
            name: s.name.clone(),
            argv: s
                .argv
                .iter()
                .map(|a| substitute(a, target, params))
                .collect(),
            read_only: s.read_only,
            timeout: s
                .timeout
                .as_deref()
                .and_then(|t| parse_delta(t).ok())
                .unwrap_or(TimeDelta::seconds(60)),
            rollback,
        };
        let mut out: Vec<PlannedStep> = self
            .spec
            .steps
            .iter()
            .filter(applies)
            .map(|s| planned(s, false))
            .collect();
        if let Some(argv) = &self.spec.verify.command {
            out.push(planned(
                &StepSpec {
                    name: "verify".into(),
                    argv: argv.clone(),
                    timeout: self.spec.verify.timeout.clone(),
                    read_only: true,
                    when: BTreeMap::new(),
                },
                false,
            ));
        }
        if let Some(url) = &self.spec.verify.http {
            let timeout = self.spec.verify.timeout.as_deref().unwrap_or("60s");
            let secs = parse_delta(timeout)
                .map(|d| d.num_seconds().max(1))
                .unwrap_or(60);
            out.push(planned(
                &StepSpec {
                    name: "verify http".into(),
                    argv: vec![
                        "sh".into(),
                        "-c".into(),
                        VERIFY_HTTP_SCRIPT.into(),
                        "sh".into(),
                        url.clone(),
                        secs.to_string(),
                    ],
                    timeout: Some(format!("{}s", secs + 10)),
                    read_only: true,
                    when: BTreeMap::new(),
                },
                false,
            ));
        }
        out.extend(
            self.spec
                .rollback
                .iter()
                .filter(applies)
                .map(|s| planned(s, true)),
        );
        out
    }
}

/// `verify.http` as a step on the host: the URL ($1) must answer 2xx
/// within $2 seconds (curl, one try a second).
const VERIFY_HTTP_SCRIPT: &str = r#"i=0
while [ "$i" -lt "$2" ]; do
  code=$(curl -s -o /dev/null --max-time 5 -w "%{""http_code}" -- "$1")
  case "$code" in 2??) echo "vigil: http_status=$code"; exit 0 ;; esac
  sleep 1; i=$((i + 1))
done
echo "$1 answered ${code:-nothing}" >&2
exit 1"#;

/// One step of a plan: what would run, exactly.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PlannedStep {
    pub name: String,
    pub argv: Vec<String>,
    pub read_only: bool,
    #[serde(serialize_with = "ser_secs", deserialize_with = "de_secs")]
    pub timeout: TimeDelta,
    /// A rollback step: runs only after a step of the same run failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

fn ser_secs<S: serde::Serializer>(d: &TimeDelta, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::units::fmt_delta(*d))
}

fn de_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<TimeDelta, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    crate::units::parse_delta(&text).map_err(serde::de::Error::custom)
}

impl PlannedStep {
    /// The argv as one line a person can read (and paste), each argument
    /// quoted when it needs to be.
    pub fn display(&self) -> String {
        let argv = self
            .argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        if self.rollback {
            format!("[rollback] {argv}")
        } else {
            argv
        }
    }
}

/// POSIX shell quoting of one argument: safe characters stay bare, anything
/// else goes inside single quotes.
pub fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

fn placeholders(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.push(name);
                }
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

fn substitute(arg: &str, target: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                let v = if name == "target" {
                    Some(target)
                } else {
                    params.get(name).map(String::as_str)
                };
                match v {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses one runbook file's text.
pub fn parse_spec(file: &str, text: &str) -> Result<RunbookSpec, FileError> {
    toml::from_str::<RunbookSpec>(text).map_err(|e| {
        let (line, message) = toml_error_line(&e, text);
        FileError {
            file: file.to_string(),
            line,
            message,
        }
    })
}

/// Which line of the file a compile error is about: the first line that
/// mentions the key the error starts with.
fn locate(text: &str, message: &str) -> Option<usize> {
    // `key = "value" is out of range...`: the line holding that value.
    if let Some((_, rest)) = message.split_once(" = \"")
        && let Some(end) = rest.find('"')
        && let Some(l) = line_of(text, &format!("\"{}\"", &rest[..end]))
    {
        return Some(l);
    }
    let key = message.split([':', ' ', '.', '[']).next().unwrap_or("");
    if key.is_empty() {
        return None;
    }
    line_of(text, &format!("[{key}"))
        .or_else(|| line_of(text, &format!("{key} =")))
        .or_else(|| line_of(text, &format!("{key}.")))
        .or_else(|| line_of(text, key))
}

/// The runbook catalog: built-ins, replaced by same-named files in `dir`,
/// plus any other files there.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub runbooks: Vec<Runbook>,
}

/// The file the runbook `name` in force comes from, read as
/// [`Catalog::load`] reads it (a file in `dir` replaces the built-in of its
/// file name; the runbook is found by the `name` inside): its label (a path,
/// or `runbooks/NAME.toml (built in)`) and text.
pub fn source_of(dir: Option<&Path>, name: &str) -> Option<crate::units::files::Source> {
    RUNBOOKS
        .all(dir)
        .ok()?
        .into_iter()
        .find(|s| parse_spec(&s.file, &s.text).is_ok_and(|spec| spec.name == name))
}

impl Catalog {
    /// Loads the catalog; every problem is returned (the catalog is unusable
    /// when there is any).
    pub fn load(
        dir: Option<&Path>,
        overrides: &BTreeMap<String, RunbookOverride>,
    ) -> Result<Catalog, Vec<FileError>> {
        let sources: Vec<(String, String)> = RUNBOOKS
            .all(dir)
            .map_err(|e| vec![e])?
            .into_iter()
            .map(|s| (s.file, s.text))
            .collect();
        Self::from_sources(&sources, overrides)
    }

    /// Builds a catalog from (file label, text) pairs.
    pub fn from_sources(
        sources: &[(String, String)],
        overrides: &BTreeMap<String, RunbookOverride>,
    ) -> Result<Catalog, Vec<FileError>> {
        let mut errors = Vec::new();
        let mut runbooks: Vec<Runbook> = Vec::new();
        for (file, text) in sources {
            let spec = match parse_spec(file, text) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let name = spec.name.clone();
            match Runbook::compile(spec, overrides.get(&name)) {
                Ok(rb) => {
                    if runbooks.iter().any(|r| r.name() == rb.name()) {
                        errors.push(FileError {
                            file: file.clone(),
                            line: line_of(text, "name"),
                            message: format!("runbook {name:?} is defined twice"),
                        });
                    } else {
                        runbooks.push(rb);
                    }
                }
                // A bad value from the config's [runbooks.NAME] is the
                // config's error, not the runbook file's.
                Err(message) if message.starts_with("[runbooks.") => errors.push(FileError {
                    file: "config".into(),
                    line: None,
                    message,
                }),
                Err(message) => errors.push(FileError {
                    file: file.clone(),
                    line: locate(text, &message),
                    message,
                }),
            }
        }
        for (name, _) in overrides.iter() {
            if !runbooks.iter().any(|r| r.name() == name) && errors.is_empty() {
                errors.push(FileError {
                    file: "config".into(),
                    line: None,
                    message: format!(
                        "[runbooks.{name}] names no runbook; known: {}",
                        runbooks
                            .iter()
                            .map(|r| r.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        if errors.is_empty() {
            Ok(Catalog { runbooks })
        } else {
            Err(errors)
        }
    }

    /// The built-in catalog with no overrides.
    pub fn builtin() -> Catalog {
        Self::from_sources(
            &BUILTIN
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect::<Vec<_>>(),
            &BTreeMap::new(),
        )
        .unwrap_or_default()
    }

    pub fn get(&self, name: &str) -> Option<&Runbook> {
        self.runbooks.iter().find(|r| r.name() == name)
    }

    /// The runbooks' names, in catalog order.
    pub fn names(&self) -> Vec<&str> {
        self.runbooks.iter().map(|r| r.name()).collect()
    }

    /// Applies `settings.approvals_by_risk` to the runbooks whose file and
    /// override do not say how many approvals they need.
    pub fn apply_approvals_by_risk(&mut self, by_risk: &BTreeMap<Risk, Approvals>) {
        for rb in &mut self.runbooks {
            if !rb.approvals_explicit
                && let Some(n) = by_risk.get(&rb.spec.risk)
            {
                rb.approvals = n.get();
            }
        }
    }

    /// The runbooks that handle an alert, best first, with the reasons.
    pub fn candidates(&self, labels: &Labels) -> Vec<(usize, u32, Vec<String>)> {
        let mut out: Vec<_> = self
            .runbooks
            .iter()
            .enumerate()
            .filter(|(_, r)| r.enabled)
            .filter_map(|(i, r)| r.matches(labels).map(|(s, why)| (i, s, why)))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests;
