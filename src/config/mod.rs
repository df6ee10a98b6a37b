//! The config file (`config.toml`): one serde struct per section, and the
//! step that turns it into a ready engine `Setup`. Every error names the
//! file, the line when it can be found, the key and what is accepted.
//!
//! Reads files; decides nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod analysis;
mod hosts;

pub use hosts::HostEntry;

use serde::{Deserialize, Serialize};

use crate::engine::{Inventory, MaintenanceWindow, Modes, Settings, Setup, WindowSpec};
use crate::policy::{Policy, PolicySpec, default_specs, merge_specs, node_exporter_specs};
use crate::runbook::{Approvals, Catalog, Risk, RunbookOverride};
use crate::units::{
    FileError, check_count, key_line, key_line_after, limits, line_of, toml_error_line,
};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsSpec {
    /// How long an approval request waits (default `30m`).
    #[serde(default)]
    pub approval_expiry: Option<String>,
    /// First retry delay; doubles each attempt (default `30s`).
    #[serde(default)]
    pub retry_backoff: Option<String>,
    /// Fraction of a group acted on at once (default 1/3, at least one host).
    #[serde(default)]
    pub blast_radius: Option<f64>,
    /// How long after a successful run Vigil waits for an outside source
    /// (Alertmanager, Prometheus) to resolve the alert it acted on (default
    /// `10m`: Alertmanager's default group_interval of 5m plus slack).
    #[serde(default)]
    pub external_verify_window: Option<String>,
    /// Start in dry-run.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Start frozen.
    #[serde(default)]
    pub frozen: Option<bool>,
    /// Runs (local, ssh, http) in flight at once across all hosts (default 16).
    #[serde(default)]
    pub max_parallel_runs: Option<usize>,
    /// Distinct approvals needed by runbook risk (`{ high = 2 }`), for the
    /// runbooks whose file and `[runbooks.NAME]` do not set `approvals`.
    #[serde(default)]
    pub approvals_by_risk: BTreeMap<Risk, Approvals>,
    /// A series with no sample for this long is forgotten (default `1h`).
    #[serde(default)]
    pub series_ttl: Option<String>,
    /// New series of a metric beyond this many are refused (default
    /// 100,000).
    #[serde(default)]
    pub max_series_per_metric: Option<usize>,
    /// The alert labels that name its host, tried in order against each
    /// host's name, `[hosts.ssh] host` and `addresses` (default
    /// `["host", "instance"]`).
    #[serde(default)]
    pub host_labels: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The operator's identity in the audit trail (default: `$USER`).
    #[serde(default)]
    pub operator: Option<String>,
    /// Where the store lives (default: the platform data dir).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// A directory of runbook files that override or extend the built-ins.
    #[serde(default)]
    pub runbook_dir: Option<PathBuf>,
    /// HTTP listener address of `vigil serve` (default `127.0.0.1:9797`).
    #[serde(default)]
    pub listen: Option<String>,
    /// Run the built-in demo fleet.
    #[serde(default)]
    pub demo: Option<bool>,
    #[serde(default)]
    pub theme: Option<String>,
    #[serde(default)]
    pub keymap: Option<String>,
    #[serde(default)]
    pub settings: SettingsSpec,
    #[serde(default)]
    pub hosts: Vec<HostEntry>,
    #[serde(default)]
    pub maintenance: Vec<WindowSpec>,
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    #[serde(default)]
    pub runbooks: BTreeMap<String, RunbookOverride>,
    /// HTTP listener settings (auth token, rate limit).
    #[serde(default)]
    pub listener: ListenerSpec,
    /// Signal sources (Alertmanager, Prometheus pollers).
    #[serde(default)]
    pub sources: Vec<SourceSpec>,
    /// Where escalations go (PagerDuty, webhooks).
    #[serde(default)]
    pub escalation: Vec<EscalationSpec>,
    /// Root-cause analysis (`[analysis]`, `[analysis.llm]`).
    #[serde(default)]
    pub analysis: Option<analysis::AnalysisSpec>,
    /// People with tokens (consoles and tools over TCP).
    #[serde(default)]
    pub operators: Vec<crate::access::OperatorSpec>,
    /// The unix socket's group and the roles of OS users on it.
    #[serde(default)]
    pub access: crate::access::AccessSpec,
    /// Where the audit trail lives (`[store] url`; default: the SQLite
    /// file in the data dir).
    #[serde(default)]
    pub store: Option<crate::store::StoreSpec>,
}

/// `[listener]`: how the HTTP listener admits requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSpec {
    /// The name of the environment variable holding the bearer token. The
    /// token itself never appears in the file.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Requests per second the listener accepts before answering 429 (off
    /// when unset).
    #[serde(default)]
    pub rate_limit: Option<u32>,
}

/// What a `[[sources]]` entry talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Alertmanager,
    Prometheus,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Alertmanager => "alertmanager",
            SourceKind::Prometheus => "prometheus",
        }
    }
}

/// `[[sources]]`: an Alertmanager or Prometheus Vigil polls (and, for an
/// Alertmanager, where silences are created).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: String,
    pub kind: SourceKind,
    /// Base URL, e.g. `http://127.0.0.1:9093`.
    pub url: String,
    /// Poll its alerts (default true); an Alertmanager that delivers by
    /// webhook can be used for silences only with `poll = false`.
    #[serde(default)]
    pub poll: Option<bool>,
    /// Time between polls (default `15s`).
    #[serde(default)]
    pub interval: Option<String>,
    /// Time limit of one request (default `5s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// How long to wait for this source to resolve an alert Vigil acted on
    /// (default: `settings.external_verify_window`).
    #[serde(default)]
    pub verify_window: Option<String>,
    /// `"node_exporter"`: this Prometheus evaluates the six default
    /// policies on node_exporter's metrics (PromQL), in place of the
    /// defaults that read Vigil's own samples.
    #[serde(default)]
    pub policies: Option<String>,
}

impl SourceSpec {
    pub fn polls(&self) -> bool {
        self.poll.unwrap_or(true)
    }
    /// The poll interval (validated by `Config::build`; default 15s).
    pub fn interval(&self) -> std::time::Duration {
        dur_or(&self.interval, 15)
    }
    pub fn timeout(&self) -> std::time::Duration {
        dur_or(&self.timeout, 5)
    }
}

/// What an `[[escalation]]` entry delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EscalationKind {
    /// PagerDuty Events API v2.
    Pagerduty,
    /// A generic JSON webhook with a Slack-compatible `text`.
    Webhook,
}

/// The PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// `[[escalation]]`: where escalations are delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationSpec {
    pub name: String,
    pub kind: EscalationKind,
    /// Endpoint; PagerDuty's public one by default, required for a webhook.
    #[serde(default)]
    pub url: Option<String>,
    /// PagerDuty: the environment variable holding the integration's
    /// routing key (required for `pagerduty`).
    #[serde(default)]
    pub routing_key_env: Option<String>,
    /// Only escalations at least this severe are sent (default: all).
    #[serde(default)]
    pub min_severity: Option<crate::model::Severity>,
    /// Attempts per message before giving up (default 5).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// First retry delay; doubles per attempt (default `1s`).
    #[serde(default)]
    pub backoff: Option<String>,
    /// Time limit of one request (default `10s`).
    #[serde(default)]
    pub timeout: Option<String>,
}

impl EscalationSpec {
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(PAGERDUTY_URL)
    }
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(5).max(1)
    }
    pub fn backoff(&self) -> std::time::Duration {
        dur_or(&self.backoff, 1)
    }
    pub fn timeout(&self) -> std::time::Duration {
        dur_or(&self.timeout, 10)
    }
}

fn dur_or(s: &Option<String>, default_secs: u64) -> std::time::Duration {
    s.as_deref()
        .and_then(|s| crate::units::parse_duration(s).ok())
        .unwrap_or(std::time::Duration::from_secs(default_secs))
}

/// True for a name usable as an environment variable.
fn env_name_ok(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True for a Prometheus label name.
fn label_name_ok(s: &str) -> bool {
    env_name_ok(s)
}

/// True for an absolute `http://` or `https://` URL with a host.
fn http_url_ok(s: &str) -> bool {
    reqwest::Url::parse(s)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false)
}

/// A problem in the config file (or a file it names), with where it is:
/// the one file error every loader returns, under the name start-up uses.
pub type ConfigError = FileError;

impl Config {
    /// Parses config text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Config, FileError> {
        toml::from_str::<Config>(text).map_err(|e| {
            let (line, message) = toml_error_line(&e, text);
            FileError {
                file: file.into(),
                line,
                message,
            }
        })
    }

    pub fn load(path: &Path) -> Result<(Config, String), FileError> {
        let text = std::fs::read_to_string(path).map_err(|e| FileError {
            file: path.display().to_string(),
            line: None,
            message: format!("cannot read the config file: {e}"),
        })?;
        let c = Config::parse(&path.display().to_string(), &text)?;
        Ok((c, text))
    }

    /// Builds the engine's setup. `text` (the file's source) is used to find
    /// lines; `policies_replace` drops the defaults when the file lists any
    /// (the scenario rule) instead of merging by name (the config rule);
    /// `default_executor` is given to hosts the inventory does not list.
    pub fn build(
        &self,
        file: &str,
        text: &str,
        policies_replace: bool,
        default_executor: Option<String>,
    ) -> Result<Setup, Vec<FileError>> {
        self.assemble(file, text, policies_replace, default_executor)
            .map(|a| a.setup)
    }

    /// [`Config::build`], with how each `[[hosts]]` entry is reached as its
    /// settings were checked (what `serve` hands its executors).
    pub fn assemble(
        &self,
        file: &str,
        text: &str,
        policies_replace: bool,
        default_executor: Option<String>,
    ) -> Result<Assembled, Vec<FileError>> {
        let mut executors = BTreeMap::new();
        let mut errors = Vec::new();
        let err = |needle: &str, message: String| FileError {
            file: file.into(),
            line: if needle.is_empty() {
                None
            } else {
                line_of(text, needle)
            },
            message,
        };

        // `key` is a key name the line is looked up by (`key = ...`).
        let at_key = |key: &str, message: String| FileError {
            file: file.into(),
            line: key_line(text, key).or_else(|| line_of(text, key)),
            message,
        };
        let mut settings = Settings::default();
        if let Some(s) = &self.settings.approval_expiry {
            match limits::APPROVAL_EXPIRY.parse_delta("settings.approval_expiry", s) {
                Ok(d) => settings.approval_expiry = d,
                Err(e) => errors.push(at_key("approval_expiry", e)),
            }
        }
        if let Some(s) = &self.settings.retry_backoff {
            match limits::RETRY_BACKOFF.parse_delta("settings.retry_backoff", s) {
                Ok(d) => settings.retry_backoff = d,
                Err(e) => errors.push(at_key("retry_backoff", e)),
            }
        }
        if let Some(s) = &self.settings.external_verify_window {
            match limits::EXTERNAL_VERIFY_WINDOW.parse_delta("settings.external_verify_window", s) {
                Ok(d) => settings.external_verify_window = d,
                Err(e) => errors.push(at_key("external_verify_window", e)),
            }
        }
        for (i, src) in self.sources.iter().enumerate() {
            if let Some(v) = &src.verify_window {
                let key = format!("sources[{i}] ({:?}).verify_window", src.name);
                match limits::EXTERNAL_VERIFY_WINDOW.parse_delta(&key, v) {
                    Ok(d) => {
                        settings.source_verify_windows.insert(src.name.clone(), d);
                    }
                    Err(e) => errors.push(err(&format!("\"{v}\""), e)),
                }
            }
        }
        if let Some(s) = &self.settings.series_ttl {
            match limits::SERIES_TTL.parse_delta("settings.series_ttl", s) {
                Ok(d) => settings.series.ttl = d,
                Err(e) => errors.push(at_key("series_ttl", e)),
            }
        }
        if let Some(n) = self.settings.max_series_per_metric {
            let (min, max) = limits::MAX_SERIES_PER_METRIC;
            match check_count("settings.max_series_per_metric", n, min, max) {
                Ok(n) => settings.series.per_metric = n,
                Err(e) => errors.push(at_key("max_series_per_metric", e)),
            }
        }
        if let Some(order) = &self.settings.host_labels {
            let bad = order.iter().find(|k| !label_name_ok(k));
            if order.is_empty() || order.len() > 16 {
                errors.push(at_key(
                    "host_labels",
                    format!(
                        "settings.host_labels has {} labels; accepted 1..16 label names, e.g. [\"host\", \"instance\"]",
                        order.len()
                    ),
                ));
            } else if let Some(k) = bad {
                errors.push(at_key(
                    "host_labels",
                    format!("settings.host_labels: {k:?} is not a label name; expected letters, digits and '_', not starting with a digit"),
                ));
            } else {
                settings.host_labels = order.clone();
            }
        }
        if let Some(n) = self.settings.max_parallel_runs {
            let (min, max) = limits::MAX_PARALLEL_RUNS;
            if let Err(e) = check_count("settings.max_parallel_runs", n, min, max) {
                errors.push(at_key("max_parallel_runs", e));
            }
        }
        if let Some(f) = self.settings.blast_radius {
            if f > 0.0 && f <= 1.0 {
                settings.blast_radius = f;
            } else {
                errors.push(at_key(
                    "blast_radius",
                    format!(
                        "settings.blast_radius = {f} is out of range; accepted a fraction more than 0 and at most 1"
                    ),
                ));
            }
        }

        if let Some(a) = &self.analysis {
            for (needle, message) in a.problems() {
                errors.push(err(&needle, message));
            }
        }

        let specs = if policies_replace && !self.policies.is_empty() {
            self.policies.clone()
        } else {
            merge_specs(self.default_policies(), &self.policies)
        };
        let mut policies = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for s in &specs {
            if !seen.insert(s.name.clone()) {
                errors.push(err(
                    &format!("\"{}\"", s.name),
                    format!("policy {:?} is defined twice", s.name),
                ));
                continue;
            }
            match Policy::compile(s).and_then(|p| self.check_query_source(&p).map(|()| p)) {
                Ok(p) => policies.push(p),
                Err(e) => {
                    let anchor = format!("\"{}\"", s.name);
                    let key = e.split([' ', ':']).next().unwrap_or("");
                    let mut c = err(&anchor, format!("policies[name={:?}].{e}", s.name));
                    if key == "for" {
                        c.line = key_line_after(text, &anchor, "for").or(c.line);
                    }
                    errors.push(c)
                }
            }
        }

        let mut windows = Vec::new();
        for (i, w) in self.maintenance.iter().enumerate() {
            match MaintenanceWindow::compile(w) {
                Ok(c) => windows.push(c),
                Err(e) => {
                    let needle = if e.starts_with("duration") {
                        format!("\"{}\"", w.duration)
                    } else {
                        format!("\"{}\"", w.schedule)
                    };
                    errors.push(err(&needle, format!("maintenance[{i}].{e}")))
                }
            }
        }

        let mut names = std::collections::HashSet::new();
        for h in &self.hosts {
            if h.name.trim().is_empty() {
                errors.push(err(
                    "[[hosts]]",
                    "hosts: a host needs a non-empty name".into(),
                ));
            } else if !names.insert(h.name.clone()) {
                errors.push(err(
                    &format!("\"{}\"", h.name),
                    format!("hosts: {:?} is listed twice", h.name),
                ));
            }
            let problems = match crate::exec::host_executor(h) {
                Ok(Some(x)) => {
                    executors.insert(h.name.clone(), x);
                    Vec::new()
                }
                Ok(None) => Vec::new(),
                Err(es) => es,
            };
            for e in problems {
                let needle = format!("[hosts.{}", e.key.split('.').next().unwrap_or(""));
                let line = line_of(
                    text,
                    &format!("{} =", e.key.rsplit('.').next().unwrap_or("")),
                )
                .filter(|_| e.key.contains('.') && !e.key.ends_with('*'))
                .or_else(|| line_of(text, &needle))
                .or_else(|| line_of(text, &format!("\"{}\"", h.name)));
                errors.push(FileError {
                    file: file.into(),
                    line,
                    message: e.to_string(),
                });
            }
            if let Some(x) = &h.executor
                && !crate::exec::EXECUTORS.contains(&x.as_str())
            {
                let (last, rest) = crate::exec::EXECUTORS.split_last().unwrap_or((&"sim", &[]));
                errors.push(err(
                    &format!("\"{x}\""),
                    format!(
                        "hosts[name={:?}].executor = {x:?}; expected {} or {last}",
                        h.name,
                        rest.join(", ")
                    ),
                ));
            }
        }

        self.check_outputs(file, text, &err, &mut errors);

        let catalog = match Catalog::load(self.runbook_dir.as_deref(), &self.runbooks) {
            Ok(mut c) => {
                c.apply_approvals_by_risk(&self.settings.approvals_by_risk);
                Some(c)
            }
            Err(es) => {
                for e in es {
                    let line = if e.file == "config" {
                        let (section, rest) =
                            e.message.split_once("] ").unwrap_or((&e.message, ""));
                        let key = rest.split([' ', ':']).next().unwrap_or("");
                        key_line_after(text, &format!("{}]", section.trim_start_matches('[')), key)
                    } else {
                        e.line
                    };
                    let (f, message) = if e.file == "config" {
                        (file.to_string(), e.message)
                    } else {
                        (e.file.clone(), e.message)
                    };
                    errors.push(FileError {
                        file: f,
                        line,
                        message,
                    });
                }
                None
            }
        };

        if !errors.is_empty() {
            return Err(errors);
        }
        let setup = Setup {
            policies,
            catalog: catalog.unwrap_or_default(),
            inventory: Inventory::new(
                self.hosts.iter().map(HostEntry::spec).collect(),
                default_executor,
            ),
            windows,
            settings,
            modes: Modes {
                dry_run: self.settings.dry_run.unwrap_or(false),
                frozen: self.settings.frozen.unwrap_or(false),
            },
        };
        Ok(Assembled { setup, executors })
    }
}

/// A config made ready to run: the engine's setup and, by host name, how
/// each host with a local, ssh or http executor is reached (checked once).
#[derive(Debug)]
pub struct Assembled {
    pub setup: Setup,
    pub executors: BTreeMap<String, crate::exec::HostExecutor>,
}

impl Config {
    /// The built-in policies this config starts from: the node_exporter
    /// ones (PromQL) when a `prometheus` source has `policies =
    /// "node_exporter"`, else the ones on Vigil's own samples.
    pub fn default_policies(&self) -> Vec<PolicySpec> {
        match self
            .sources
            .iter()
            .find(|s| s.kind == SourceKind::Prometheus && s.policies.is_some())
        {
            Some(s) => node_exporter_specs(&s.name),
            None => default_specs(),
        }
    }

    /// The `prometheus` source that evaluates PromQL policy `p`.
    pub fn query_source(&self, p: &Policy) -> Option<&SourceSpec> {
        let q = p.query.as_ref()?;
        self.sources.iter().find(|s| {
            s.kind == SourceKind::Prometheus && q.source.as_ref().is_none_or(|n| *n == s.name)
        })
    }

    /// A PromQL policy needs a `prometheus` source to evaluate it.
    fn check_query_source(&self, p: &Policy) -> Result<(), String> {
        let Some(q) = &p.query else {
            return Ok(());
        };
        if self.query_source(p).is_some() {
            return Ok(());
        }
        let proms: Vec<&str> = self
            .sources
            .iter()
            .filter(|s| s.kind == SourceKind::Prometheus)
            .map(|s| s.name.as_str())
            .collect();
        Err(match &q.source {
            Some(n) if !proms.is_empty() => format!(
                "source = {n:?} names no prometheus source; accepted: {}",
                proms.join(", ")
            ),
            _ => "expr: a PromQL policy needs a [[sources]] entry with kind = \"prometheus\" to evaluate it".to_string(),
        })
    }

    /// Validates `[listener]`, `[[sources]]` and `[[escalation]]`.
    fn check_outputs(
        &self,
        file: &str,
        text: &str,
        err: &dyn Fn(&str, String) -> FileError,
        errors: &mut Vec<FileError>,
    ) {
        if let Some(l) = &self.listen
            && l.parse::<std::net::SocketAddr>().is_err()
        {
            errors.push(err(
                "listen",
                format!(
                    "listen = {l:?} is not an address; expected IP:PORT such as \"127.0.0.1:9797\""
                ),
            ));
        }
        if let Some(t) = &self.listener.token_env
            && !env_name_ok(t)
        {
            errors.push(err(
                "token_env",
                format!("listener.token_env = {t:?} is not an environment variable name; expected letters, digits and '_'"),
            ));
        }
        if let Some(n) = self.listener.rate_limit {
            let (min, max) = limits::RATE_LIMIT;
            if let Err(e) = check_count("listener.rate_limit", n, min, max) {
                errors.push(FileError {
                    file: file.into(),
                    line: key_line(text, "rate_limit"),
                    message: format!("{e} requests per second (leave it out for no limit)"),
                });
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let at = format!("\"{}\"", s.name);
            let what = format!("sources[{i}] ({:?})", s.name);
            if s.name.trim().is_empty() {
                errors.push(err(
                    "[[sources]]",
                    format!("sources[{i}]: a source needs a non-empty name"),
                ));
            } else if !names.insert(s.name.clone()) {
                errors.push(err(&at, format!("{what}: the name is used twice")));
            }
            if !http_url_ok(&s.url) {
                errors.push(err(
                    &format!("\"{}\"", s.url),
                    format!(
                        "{what}.url = {:?} is not a URL; expected http://HOST:PORT",
                        s.url
                    ),
                ));
            }
            match (&s.policies, s.kind) {
                (None, _) => {}
                (Some(p), SourceKind::Prometheus) if p == "node_exporter" => {
                    if self
                        .sources
                        .iter()
                        .take(i)
                        .any(|o| o.policies.is_some() && o.kind == SourceKind::Prometheus)
                    {
                        errors.push(FileError {
                            file: file.into(),
                            line: key_line_after(text, &at, "policies"),
                            message: format!("{what}.policies: another prometheus source already evaluates the default policies; name one source"),
                        });
                    }
                }
                (Some(p), SourceKind::Prometheus) => errors.push(FileError {
                    file: file.into(),
                    line: key_line_after(text, &at, "policies"),
                    message: format!("{what}.policies = {p:?}; accepted \"node_exporter\" (the six default policies on node_exporter's metrics)"),
                }),
                (Some(_), SourceKind::Alertmanager) => errors.push(FileError {
                    file: file.into(),
                    line: key_line_after(text, &at, "policies"),
                    message: format!("{what}.policies: only a prometheus source evaluates policies"),
                }),
            }
            for (key, v, range) in [
                ("interval", &s.interval, limits::SOURCE_INTERVAL),
                ("timeout", &s.timeout, limits::SOURCE_TIMEOUT),
            ] {
                if let Some(v) = v
                    && let Err(e) = range.parse(&format!("{what}.{key}"), v)
                {
                    errors.push(FileError {
                        file: file.into(),
                        line: key_line_after(text, &at, key)
                            .or_else(|| line_of(text, &format!("\"{v}\""))),
                        message: e,
                    });
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, e) in self.escalation.iter().enumerate() {
            let at = format!("\"{}\"", e.name);
            let what = format!("escalation[{i}] ({:?})", e.name);
            if e.name.trim().is_empty() {
                errors.push(err(
                    "[[escalation]]",
                    format!("escalation[{i}]: needs a non-empty name"),
                ));
            } else if !names.insert(e.name.clone()) {
                errors.push(err(&at, format!("{what}: the name is used twice")));
            }
            match (&e.url, e.kind) {
                (None, EscalationKind::Webhook) => errors.push(err(
                    &at,
                    format!("{what}: a webhook needs url = \"http(s)://...\""),
                )),
                (Some(u), _) if !http_url_ok(u) => errors.push(err(
                    &format!("\"{u}\""),
                    format!("{what}.url = {u:?} is not a URL; expected http(s)://HOST/PATH"),
                )),
                _ => {}
            }
            match (&e.routing_key_env, e.kind) {
                (None, EscalationKind::Pagerduty) => errors.push(err(
                    &at,
                    format!("{what}: pagerduty needs routing_key_env = \"NAME\" (the environment variable holding the routing key)"),
                )),
                (Some(k), _) if !env_name_ok(k) => errors.push(err(
                    &format!("\"{k}\""),
                    format!("{what}.routing_key_env = {k:?} is not an environment variable name"),
                )),
                _ => {}
            }
            if let Some(n) = e.max_attempts {
                let (min, max) = limits::ESCALATION_ATTEMPTS;
                if let Err(m) = check_count(&format!("{what}.max_attempts"), n, min, max) {
                    errors.push(FileError {
                        file: file.into(),
                        line: key_line_after(text, &at, "max_attempts"),
                        message: m,
                    });
                }
            }
            for (key, v, range) in [
                ("backoff", &e.backoff, limits::ESCALATION_BACKOFF),
                ("timeout", &e.timeout, limits::ESCALATION_TIMEOUT),
            ] {
                if let Some(v) = v
                    && let Err(m) = range.parse(&format!("{what}.{key}"), v)
                {
                    errors.push(FileError {
                        file: file.into(),
                        line: key_line_after(text, &at, key)
                            .or_else(|| line_of(text, &format!("\"{v}\""))),
                        message: m,
                    });
                }
            }
        }
    }
}

/// The platform's config and data directories for Vigil.
pub fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "vigil", "vigil")
}

/// The default config file path (`<config dir>/config.toml`).
pub fn default_config_path() -> Option<PathBuf> {
    project_dirs().map(|d| d.config_dir().join("config.toml"))
}

/// The default data directory.
pub fn default_data_dir() -> PathBuf {
    project_dirs()
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".vigil"))
}

#[cfg(test)]
mod tests;
