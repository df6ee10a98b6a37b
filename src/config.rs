//! The config file (`config.toml`): one serde struct per section, and the
//! step that turns it into a ready engine `Setup`. Every error names the
//! file, the line when it can be found, the key and what is accepted.
//!
//! Reads files; decides nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::{HostSpec, Inventory, MaintenanceWindow, Modes, Settings, Setup, WindowSpec};
use crate::policy::{Policy, PolicySpec, default_specs, merge_specs};
use crate::runbook::{Catalog, RunbookOverride};
use crate::units::{line_of, parse_delta, toml_error_line};

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
    /// Start in dry-run.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Start frozen.
    #[serde(default)]
    pub frozen: Option<bool>,
    /// Runs (local, ssh, http) in flight at once across all hosts (default 16).
    #[serde(default)]
    pub max_parallel_runs: Option<usize>,
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
    pub hosts: Vec<HostSpec>,
    #[serde(default)]
    pub maintenance: Vec<WindowSpec>,
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    #[serde(default)]
    pub runbooks: BTreeMap<String, RunbookOverride>,
    /// Signal sources (Alertmanager, Prometheus pollers).
    #[serde(default)]
    pub sources: Vec<toml::Table>,
    /// Where escalations go (PagerDuty, webhooks).
    #[serde(default)]
    pub escalation: Vec<toml::Table>,
    /// Root-cause analysis (`[analysis]`, `[analysis.llm]`).
    #[serde(default)]
    pub analysis: Option<crate::analysis::llm::AnalysisSpec>,
}

/// A problem in a file, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl Config {
    /// Parses config text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        toml::from_str::<Config>(text).map_err(|e| {
            let (line, message) = toml_error_line(&e, text);
            ConfigError {
                file: file.into(),
                line,
                message,
            }
        })
    }

    pub fn load(path: &Path) -> Result<(Config, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
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
    ) -> Result<Setup, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let err = |needle: &str, message: String| ConfigError {
            file: file.into(),
            line: if needle.is_empty() {
                None
            } else {
                line_of(text, needle)
            },
            message,
        };

        let mut settings = Settings::default();
        if let Some(s) = &self.settings.approval_expiry {
            match parse_delta(s) {
                Ok(d) => settings.approval_expiry = d,
                Err(e) => errors.push(err(
                    "approval_expiry",
                    format!("settings.approval_expiry: {e}"),
                )),
            }
        }
        if let Some(s) = &self.settings.retry_backoff {
            match parse_delta(s) {
                Ok(d) => settings.retry_backoff = d,
                Err(e) => errors.push(err("retry_backoff", format!("settings.retry_backoff: {e}"))),
            }
        }
        if self.settings.max_parallel_runs == Some(0) {
            errors.push(err(
                "max_parallel_runs",
                "settings.max_parallel_runs = 0; expected at least 1".into(),
            ));
        }
        if let Some(f) = self.settings.blast_radius {
            if f > 0.0 && f <= 1.0 {
                settings.blast_radius = f;
            } else {
                errors.push(err(
                    "blast_radius",
                    format!(
                        "settings.blast_radius = {f} is out of range; expected a fraction in (0, 1]"
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
            merge_specs(default_specs(), &self.policies)
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
            match Policy::compile(s) {
                Ok(p) => policies.push(p),
                Err(e) => errors.push(err(
                    &format!("\"{}\"", s.name),
                    format!("policies[name={:?}].{e}", s.name),
                )),
            }
        }

        let mut windows = Vec::new();
        for (i, w) in self.maintenance.iter().enumerate() {
            match MaintenanceWindow::compile(w) {
                Ok(c) => windows.push(c),
                Err(e) => errors.push(err(
                    &format!("\"{}\"", w.schedule),
                    format!("maintenance[{i}]: {e}"),
                )),
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
            for e in crate::exec::validate_host(h) {
                let needle = format!("[hosts.{}", e.key.split('.').next().unwrap_or(""));
                let line = line_of(
                    text,
                    &format!("{} =", e.key.rsplit('.').next().unwrap_or("")),
                )
                .filter(|_| e.key.contains('.') && !e.key.ends_with('*'))
                .or_else(|| line_of(text, &needle))
                .or_else(|| line_of(text, &format!("\"{}\"", h.name)));
                errors.push(ConfigError {
                    file: file.into(),
                    line,
                    message: e.to_string(),
                });
            }
            if let Some(x) = &h.executor
                && !["local", "ssh", "http", "sim"].contains(&x.as_str())
            {
                errors.push(err(
                    &format!("\"{x}\""),
                    format!(
                        "hosts[name={:?}].executor = {x:?}; expected local, ssh, http or sim",
                        h.name
                    ),
                ));
            }
        }

        let catalog = match Catalog::load(self.runbook_dir.as_deref(), &self.runbooks) {
            Ok(c) => Some(c),
            Err(es) => {
                for e in es {
                    let line = if e.file == "config" {
                        e.message
                            .split(']')
                            .next()
                            .and_then(|k| line_of(text, &format!("{k}]")))
                    } else {
                        e.line
                    };
                    let (f, message) = if e.file == "config" {
                        (file.to_string(), e.message)
                    } else {
                        (e.file.clone(), e.message)
                    };
                    errors.push(ConfigError {
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
        Ok(Setup {
            policies,
            catalog: catalog.unwrap_or_default(),
            inventory: Inventory::new(self.hosts.clone(), default_executor),
            windows,
            settings,
            modes: Modes {
                dry_run: self.settings.dry_run.unwrap_or(false),
                frozen: self.settings.frozen.unwrap_or(false),
            },
        })
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
mod tests {
    use super::*;

    #[test]
    fn empty_config_gives_the_defaults() {
        let c = Config::parse("c.toml", "").unwrap();
        let s = c.build("c.toml", "", false, Some("sim".into())).unwrap();
        assert_eq!(s.policies.len(), 6);
        assert_eq!(s.catalog.runbooks.len(), 6);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_and_line() {
        let text = "operator = \"ana\"\n\n[settings]\napproval_expiry = \"soon\"\n";
        let c = Config::parse("c.toml", text).unwrap();
        let e = c.build("c.toml", text, false, None).unwrap_err();
        assert_eq!(e[0].line, Some(4));
        assert!(e[0].message.contains("approval_expiry"), "{}", e[0]);

        let text = "operatr = \"ana\"\n";
        let e = Config::parse("c.toml", text).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("operatr"), "{e}");
    }

    #[test]
    fn bad_policy_and_window_are_located() {
        let text = r#"
[[policies]]
name = "Hot"
when = "temp >> 3"

[[maintenance]]
selector = { host = "a" }
schedule = "0 2 * *"
duration = "1h"
"#;
        let c = Config::parse("c.toml", text).unwrap();
        let e = c.build("c.toml", text, false, None).unwrap_err();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].line, Some(3));
        assert_eq!(e[1].line, Some(8));
        assert!(e[1].message.contains("expected 5"));
    }

    #[test]
    fn runbook_overrides_apply_and_unknown_ones_are_errors() {
        let text = "[runbooks.service_restart]\napproval = \"auto\"\n";
        let c = Config::parse("c.toml", text).unwrap();
        let s = c.build("c.toml", text, false, None).unwrap();
        let rb = s.catalog.get("service_restart").unwrap();
        assert!(!rb.approval.needs_human(crate::model::Severity::Critical));

        let text = "[runbooks.nope]\napproval = \"auto\"\n";
        let c = Config::parse("c.toml", text).unwrap();
        let e = c.build("c.toml", text, false, None).unwrap_err();
        assert!(e[0].message.contains("names no runbook"), "{}", e[0]);
        assert_eq!(e[0].line, Some(1));
    }
}
