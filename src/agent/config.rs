//! The agent's own config file (`vigil agent --config FILE`): where it
//! listens, its data dir, how many jobs run at once, how long finished
//! jobs are kept, the hubs' tokens, TLS, and its runbook catalog (the
//! built-ins plus `*.toml` files in `runbook_dir`, by default `runbooks/`
//! beside the config file).
//!
//! Errors name the file, the line when known, the key, the value and what
//! is accepted. Token values are never printed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::ingest::Token;
use crate::runbook::{Catalog, RunbookOverride};
use crate::units::{DurationRange, FileError, check_count, toml_error_line};

/// The agent's default address (the hub's is 9797).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9798";
/// Shortest token accepted, in bytes.
pub const MIN_TOKEN_BYTES: usize = 32;

const KEEP_FINISHED: DurationRange =
    DurationRange::new(Duration::from_secs(60), Duration::from_secs(365 * 86400));

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    runbook_dir: Option<PathBuf>,
    max_running: Option<i64>,
    max_queued: Option<i64>,
    keep_finished: Option<String>,
    output_limit: Option<i64>,
    targets: Option<Vec<String>>,
    #[serde(default)]
    tokens: Vec<TokenSpec>,
    tls: Option<TlsSpec>,
    #[serde(default)]
    runbooks: BTreeMap<String, RunbookOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSpec {
    hub: String,
    env: Option<String>,
    file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One hub's token (kept hashed; see [`Token`]).
#[derive(Debug, Clone)]
pub struct HubToken {
    pub hub: String,
    pub token: Token,
}

/// The agent's settings, validated.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Jobs running at once; the rest wait in the queue, in order.
    pub max_running: usize,
    /// Jobs waiting at most; more are answered 503 (the hub retries).
    pub max_queued: usize,
    /// How long a finished job stays listed.
    pub keep_finished: Duration,
    /// Bytes of stdout and of stderr kept per step.
    pub output_limit: usize,
    /// When set, the only target names jobs may carry.
    pub targets: Option<Vec<String>>,
    pub tokens: Vec<HubToken>,
    pub tls: Option<TlsSpec>,
    pub runbook_dir: Option<PathBuf>,
    pub overrides: BTreeMap<String, RunbookOverride>,
}

/// Command-line values that win over the file.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl AgentConfig {
    /// Reads the file (when given) and applies the flags.
    pub fn load(flags: &Flags) -> Result<AgentConfig, FileError> {
        let (spec, file, text) = match &flags.config {
            Some(p) => {
                let file = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| FileError {
                    file: file.clone(),
                    line: None,
                    message: format!("cannot read: {e}"),
                })?;
                let spec: FileSpec = toml::from_str(&text).map_err(|e| {
                    let (line, message) = toml_error_line(&e, &text);
                    FileError {
                        file: file.clone(),
                        line,
                        message,
                    }
                })?;
                (spec, file, text)
            }
            None => (
                FileSpec::default(),
                "(no agent config)".to_string(),
                String::new(),
            ),
        };
        let err = |key: &str, message: String| FileError {
            file: file.clone(),
            line: crate::units::line_of(&text, &format!("{key} ="))
                .or_else(|| crate::units::line_of(&text, key)),
            message: format!("{key}: {message}"),
        };
        let listen_text = flags
            .listen
            .clone()
            .or(spec.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            err(
                "listen",
                format!(
                    "{:?} is not an address; expected IP:PORT such as {DEFAULT_LISTEN}",
                    listen_text.escape_debug().to_string()
                ),
            )
        })?;
        let data_dir = flags
            .data_dir
            .clone()
            .or(spec.data_dir.clone())
            .ok_or_else(|| {
                err(
                    "data_dir",
                    "missing; give --data-dir DIR or data_dir in the agent config".into(),
                )
            })?;
        let count = |key: &str, v: Option<i64>, default: i64, min: i64, max: i64| {
            check_count(key, v.unwrap_or(default), min, max)
                .map(|n| n as usize)
                .map_err(|m| err(key, m))
        };
        let max_running = count("max_running", spec.max_running, 2, 1, 64)?;
        let max_queued = count("max_queued", spec.max_queued, 10_000, 1, 1_000_000)?;
        let output_limit = count("output_limit", spec.output_limit, 8 * 1024, 1024, 1 << 20)?;
        let keep_finished = match &spec.keep_finished {
            Some(s) => KEEP_FINISHED
                .parse("keep_finished", s)
                .map_err(|m| err("keep_finished", m))?,
            None => Duration::from_secs(7 * 86400),
        };
        if let Some(ts) = &spec.targets
            && let Some(bad) = ts.iter().find(|t| !valid_target(t))
        {
            return Err(err(
                "targets",
                format!(
                    "{:?} is not a host name; accepted letters, digits, '.', '-', '_' and ':' (1..253)",
                    bad.escape_debug().to_string()
                ),
            ));
        }
        let base = flags.config.as_deref().and_then(Path::parent);
        let runbook_dir = spec
            .runbook_dir
            .clone()
            .or_else(|| base.map(|b| b.join("runbooks")));
        let mut tokens = Vec::new();
        for (i, t) in spec.tokens.iter().enumerate() {
            let key = format!("tokens[{i}]");
            let secret = read_token(t, base).map_err(|m| err(&key, m))?;
            if secret.len() < MIN_TOKEN_BYTES {
                return Err(err(
                    &key,
                    format!(
                        "the token of hub {:?} is {} bytes; at least {MIN_TOKEN_BYTES} are required (e.g. `openssl rand -hex 32`)",
                        t.hub,
                        secret.len()
                    ),
                ));
            }
            if t.hub.is_empty() || tokens.iter().any(|h: &HubToken| h.hub == t.hub) {
                return Err(err(
                    &key,
                    format!("hub = {:?}: each hub needs its own, non-empty name", t.hub),
                ));
            }
            tokens.push(HubToken {
                hub: t.hub.clone(),
                token: Token::new(&secret),
            });
        }
        let resolve = |p: &PathBuf| match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p.clone(),
        };
        let tls = spec.tls.as_ref().map(|t| TlsSpec {
            cert: resolve(&t.cert),
            key: resolve(&t.key),
        });
        if !listen.ip().is_loopback() && tokens.is_empty() {
            return Err(err(
                "listen",
                format!(
                    "{listen} is not a loopback address and no [[tokens]] are configured: \
                     the agent refuses to serve jobs to anyone on the network; add a token per hub"
                ),
            ));
        }
        Ok(AgentConfig {
            listen,
            data_dir,
            max_running,
            max_queued,
            keep_finished,
            output_limit,
            targets: spec.targets,
            tokens,
            tls,
            runbook_dir,
            overrides: spec.runbooks,
        })
    }

    /// The runbooks this agent runs: the built-ins, replaced or extended by
    /// the files in `runbook_dir`, with the config's overrides.
    pub fn catalog(&self) -> Result<Catalog, String> {
        Catalog::load(self.runbook_dir.as_deref(), &self.overrides).map_err(|es| {
            es.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
    }
}

fn read_token(t: &TokenSpec, base: Option<&Path>) -> Result<String, String> {
    match (&t.env, &t.file) {
        (Some(var), None) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(format!(
                "hub {:?}: the environment variable {var:?} is not set",
                t.hub
            )),
        },
        (None, Some(file)) => {
            let path = match base {
                Some(b) if file.is_relative() => b.join(file),
                _ => file.clone(),
            };
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(&path)
                .map_err(|e| format!("hub {:?}: cannot read {}: {e}", t.hub, path.display()))?;
            if meta.mode() & 0o077 != 0 {
                return Err(format!(
                    "hub {:?}: {} is readable by others (mode {:o}); chmod 600 it",
                    t.hub,
                    path.display(),
                    meta.mode() & 0o777
                ));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("hub {:?}: cannot read {}: {e}", t.hub, path.display()))?;
            Ok(text.trim_end_matches(['\n', '\r']).to_string())
        }
        _ => Err(format!(
            "hub {:?}: give exactly one of env = \"VAR\" or file = \"PATH\"",
            t.hub
        )),
    }
}

/// A target name as the agent accepts it: what a host name or address
/// holds, nothing a shell or a path could read specially.
pub fn valid_target(t: &str) -> bool {
    (1..=253).contains(&t.len())
        && !t.starts_with(['-', '.'])
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<AgentConfig, FileError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        std::fs::write(&p, text).unwrap();
        AgentConfig::load(&Flags {
            config: Some(p),
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
    }

    #[test]
    fn bad_files_are_named_with_key_and_accepted_values() {
        for (text, needle) in [
            (
                "max_running = 0",
                "max_running = 0 is out of range; accepted 1..64",
            ),
            ("keep_finished = \"soon\"", "keep_finished"),
            ("listen = \"10.0.0.1:9798\"", "refuses to serve"),
            ("listen = \"nowhere\"", "expected IP:PORT"),
            ("targets = [\"a;b\"]", "is not a host name"),
            ("colour = 1", "unknown field"),
            (
                "[[tokens]]\nhub = \"j\"\nenv = \"VIGIL_AGENT_NO_SUCH_VAR\"",
                "is not set",
            ),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(e.contains("agent.toml"), "{e}");
        }
    }

    #[test]
    fn short_or_exposed_token_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tok = dir.path().join("tok");
        std::fs::write(&tok, "short\n").unwrap();
        std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = dir.path().join("agent.toml");
        std::fs::write(&cfg, "[[tokens]]\nhub = \"j\"\nfile = \"tok\"\n").unwrap();
        let flags = Flags {
            config: Some(cfg),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let e = AgentConfig::load(&flags).unwrap_err().to_string();
        assert!(e.contains("at least 32"), "{e}");
        assert!(!e.contains("short"), "the token leaked: {e}");
        std::fs::write(&tok, "x".repeat(40)).unwrap();
        std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = AgentConfig::load(&flags).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ok = AgentConfig::load(&Flags {
            listen: Some("0.0.0.0:0".into()),
            ..flags
        })
        .unwrap();
        assert_eq!(ok.tokens.len(), 1);
        assert!(!format!("{ok:?}").contains("xxxx"));
    }

    #[test]
    fn the_example_config_loads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("agent.toml");
        std::fs::write(&cfg, include_str!("../../contrib/agent.toml")).unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let tok = dir.path().join("tokens/jump-1");
        std::fs::write(&tok, format!("{}\n", "ab".repeat(32))).unwrap();
        std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = AgentConfig::load(&Flags {
            config: Some(cfg),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9798");
        assert_eq!(c.tokens[0].hub, "jump-1");
        assert!(c.tokens[0].token.admits("ab".repeat(32).as_bytes()));
        assert_eq!(c.tls.unwrap().cert, dir.path().join("agent.crt"));
        assert_eq!(c.runbook_dir, Some(dir.path().join("runbooks")));
    }
}
