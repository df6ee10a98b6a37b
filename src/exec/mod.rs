//! Executors: turn an engine `Execution` (a planned run of argv steps on one
//! host) into real work and report exactly one `Event::Finished` for it.
//!
//! - `local`: the step's argv through `tokio::process`, a fixed minimal
//!   environment, captured output, its own process group killed on timeout.
//! - `ssh`: the system OpenSSH client with every argument shell-quoted and
//!   the remote command wrapped in `timeout -k`.
//! - `http`: a job submitted to a backing job API with an `Idempotency-Key`.
//!
//! This module owns the per-host executor settings (`[hosts.ssh]`,
//! `[hosts.http]`), their validation, running steps in order, rollback on
//! failure, and what goes into `Outcome` (truncated output, exit codes,
//! durations, facts such as bytes freed), with secrets redacted.
//!
//! It must not decide whether a run may happen (the engine's guards do) and
//! must never build a shell string from a value except through
//! `runbook::shell_quote`.

pub mod http;
pub mod local;
pub mod pin;
pub mod ssh;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use crate::engine::Executors;
use crate::engine::{Event, Execution, Outcome};
use crate::runbook::PlannedStep;

pub use crate::redact::redact;

/// A problem with a host's executor settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("hosts[name={host:?}].{key}: {message}")]
pub struct ExecConfigError {
    pub host: String,
    /// The key at fault, such as `ssh.port` or `executor`.
    pub key: String,
    pub message: String,
}

/// How one host is reached.
#[derive(Debug, Clone)]
pub enum HostExecutor {
    Local,
    Ssh(ssh::SshTarget),
    Http(http::HttpTarget),
}

/// Settings shared by every executor.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Bytes of stdout and of stderr kept per step (the rest is counted).
    pub output_limit: usize,
    /// Runs in flight at once across all hosts.
    pub max_parallel: usize,
    /// Where OpenSSH's ControlMaster sockets live (mode 0700).
    pub ssh_control_dir: PathBuf,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            output_limit: 8 * 1024,
            max_parallel: 16,
            ssh_control_dir: default_control_dir(),
        }
    }
}

/// `$TMPDIR/vigil-ssh-UID`: short enough for a socket path.
pub fn default_control_dir() -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("vigil-ssh-{uid}"))
}

/// The executors a `[[hosts]]` entry may name (`sim`: the demo fleet's).
pub const EXECUTORS: [&str; 4] = ["local", "ssh", "http", "sim"];

/// A host as the config gives it: its name, `executor` and settings
/// tables, typed when the file was read (`config::HostEntry`).
pub trait HostSettings {
    fn name(&self) -> &str;
    /// `local`, `ssh`, `http` or `sim` (none: `sim`).
    fn executor(&self) -> Option<&str>;
    fn ssh(&self) -> Option<&ssh::SshSpec>;
    fn http(&self) -> Option<&http::HttpSpec>;
}

/// How a host is reached, checked: every problem found (None: simulated).
pub fn host_executor(h: &impl HostSettings) -> Result<Option<HostExecutor>, Vec<ExecConfigError>> {
    let err = |key: &str, message: String| ExecConfigError {
        host: h.name().to_string(),
        key: key.into(),
        message,
    };
    let mut errors = Vec::new();
    let kind = h.executor().unwrap_or("sim");
    if h.ssh().is_some() && kind != "ssh" {
        errors.push(err(
            "ssh",
            format!(
                "an [hosts.ssh] table is given but executor = {kind:?}; set executor = \"ssh\""
            ),
        ));
    }
    if h.http().is_some() && kind != "http" {
        errors.push(err(
            "http",
            format!(
                "an [hosts.http] table is given but executor = {kind:?}; set executor = \"http\""
            ),
        ));
    }
    let out = match kind {
        "local" => Some(HostExecutor::Local),
        "ssh" => match ssh::SshTarget::from_spec(h.name(), h.ssh().cloned().unwrap_or_default()) {
            Ok(t) => Some(HostExecutor::Ssh(t)),
            Err((key, m)) => {
                errors.push(err(&format!("ssh.{key}"), m));
                None
            }
        },
        "http" => match http::HttpTarget::from_spec(h.http().cloned()) {
            Ok(t) => Some(HostExecutor::Http(t)),
            Err((key, m)) => {
                errors.push(err(&format!("http.{key}"), m));
                None
            }
        },
        _ => None,
    };
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The http executor's client: 10 s to connect, 30 s for a request (a
/// pinned host's client is built the same way, with its own TLS).
pub(crate) fn http_options() -> crate::net::HttpOptions {
    crate::net::HttpOptions {
        connect_timeout: Duration::from_secs(10),
        timeout: Some(Duration::from_secs(30)),
        pool_idle_timeout: None,
        unix_socket: None,
        tls: None,
    }
}

/// The executors of a fleet: one per listed host (local, ssh, http).
pub struct ExecutorSet {
    hosts: Arc<BTreeMap<String, HostExecutor>>,
    opts: ExecOptions,
    permits: Arc<Semaphore>,
    /// The http executor's client; its build error fails each http run.
    client: Result<reqwest::Client, String>,
    /// One lock per ControlPath, so a master connection starts once.
    masters: Masters,
}

/// Per ControlPath: a lock so a master starts once, holding when the last
/// start failed.
type Masters = Arc<std::sync::Mutex<BTreeMap<PathBuf, Arc<tokio::sync::Mutex<Option<Instant>>>>>>;

impl ExecutorSet {
    /// Builds the set from the inventory; hosts with `sim` (or no executor)
    /// are left to the demo fleet.
    pub fn from_hosts(
        hosts: &[impl HostSettings],
        opts: ExecOptions,
    ) -> Result<ExecutorSet, Vec<ExecConfigError>> {
        let mut map = BTreeMap::new();
        let mut errors = Vec::new();
        for h in hosts {
            match host_executor(h) {
                Ok(Some(x)) => {
                    map.insert(h.name().to_string(), x);
                }
                Ok(None) => {}
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Self::checked(map, opts)
    }

    /// The set of hosts whose settings were checked already (by
    /// `config::Config::assemble`); refused when an http host has no
    /// client to reach it.
    pub fn checked(
        map: BTreeMap<String, HostExecutor>,
        opts: ExecOptions,
    ) -> Result<ExecutorSet, Vec<ExecConfigError>> {
        let set = Self::new(map, opts);
        // An http host with no client to reach it is refused at start.
        if let Err(e) = &set.client {
            let errors: Vec<ExecConfigError> = set
                .hosts
                .iter()
                .filter(|(_, x)| matches!(x, HostExecutor::Http(_)))
                .map(|(host, _)| ExecConfigError {
                    host: host.clone(),
                    key: "http".into(),
                    message: e.clone(),
                })
                .collect();
            if !errors.is_empty() {
                return Err(errors);
            }
        }
        Ok(set)
    }

    pub fn new(hosts: BTreeMap<String, HostExecutor>, opts: ExecOptions) -> ExecutorSet {
        let client = crate::net::client(http_options());
        ExecutorSet {
            hosts: Arc::new(hosts),
            permits: Arc::new(Semaphore::new(opts.max_parallel.max(1))),
            opts,
            client,
            masters: Masters::default(),
        }
    }

    /// Runs one execution to its end and returns its outcome (what `spawn`
    /// reports). Waits for a slot under the concurrency limit first.
    pub async fn run(&self, x: &Execution) -> Outcome {
        self.run_reporting(x, None).await
    }

    /// [`ExecutorSet::run`], reporting a job API's progress on `progress`.
    pub async fn run_reporting(
        &self,
        x: &Execution,
        progress: Option<&mpsc::Sender<Event>>,
    ) -> Outcome {
        let _permit = self.permits.acquire().await;
        let started = Instant::now();
        let host = match (x.executor.as_str(), self.hosts.get(&x.target)) {
            (_, Some(h)) => h.clone(),
            ("local", None) => HostExecutor::Local,
            // Simulated hosts are the demo fleet's, which the hub drives
            // itself when it runs.
            ("sim", None) => {
                return Outcome::failure(
                    None,
                    "no sim executor is available in this build; nothing ran".to_string(),
                );
            }
            (kind, None) => {
                return Outcome::failure(
                    None,
                    format!(
                        "no {kind} settings for host {:?} in the config; nothing ran",
                        x.target.escape_debug().to_string()
                    ),
                );
            }
        };
        let mut outcome = match &host {
            HostExecutor::Local => self.run_steps("local", x, None).await,
            HostExecutor::Ssh(t) => {
                let mut o = self.run_steps("ssh", x, Some(t)).await;
                if !o.success && o.exit_code == Some(255) {
                    // 255 is ssh's own failure (the connection), not the
                    // step's: say which host, where, and ssh's reason.
                    o.detail =
                        format!("ssh to {} ({}) failed: {}", x.target, t.address(), o.detail);
                }
                o
            }
            HostExecutor::Http(t) => match self.client.as_ref() {
                Ok(client) => t.run(client, x, progress).await,
                Err(e) => Outcome::failure(None, format!("{e}; nothing ran")),
            },
        };
        outcome.detail = redact(&outcome.detail);
        if let Some(serde_json::Value::Object(m)) = outcome.data.as_mut() {
            m.insert(
                "duration_ms".into(),
                json!(started.elapsed().as_millis() as u64),
            );
        }
        outcome
    }

    async fn run_steps(
        &self,
        executor: &str,
        x: &Execution,
        ssh: Option<&ssh::SshTarget>,
    ) -> Outcome {
        let (steps, rollback): (Vec<&PlannedStep>, Vec<&PlannedStep>) =
            x.steps.iter().partition(|s| !s.rollback);
        let mut results = Vec::new();
        let mut failed = None;
        for (i, s) in steps.iter().enumerate() {
            let r = self.run_step(s, &x.target, ssh).await;
            let ok = r.exit_code == Some(0) && !r.timed_out;
            results.push(r);
            if !ok {
                failed = Some(i);
                break;
            }
        }
        let mut rolled = Vec::new();
        if failed.is_some() {
            for s in &rollback {
                rolled.push(self.run_step(s, &x.target, ssh).await);
            }
        }
        summarize(executor, steps.len(), &results, &rolled, failed)
    }

    /// Runs one step on a local or ssh host.
    /// `host` is the Vigil host's name (for messages).
    pub async fn run_step(
        &self,
        s: &PlannedStep,
        host: &str,
        ssh: Option<&ssh::SshTarget>,
    ) -> StepResult {
        let timeout = s.timeout.to_std().unwrap_or(Duration::from_secs(60));
        let started = Instant::now();
        let out = match ssh {
            None => {
                local::run_argv(&s.argv, &local::step_env(), timeout, self.opts.output_limit).await
            }
            Some(t) => {
                let argv = t.command(&s.argv, timeout, &self.opts.ssh_control_dir);
                if let Err(e) = ssh::ensure_control_dir(&self.opts.ssh_control_dir) {
                    local::ProcOutput::not_started(e)
                } else {
                    self.ensure_master(t, host).await;
                    let outer = timeout + Duration::from_secs(5 + t.connect_timeout + 5);
                    local::run_argv(&argv, &ssh::client_env(), outer, self.opts.output_limit).await
                }
            }
        };
        StepResult::new(s, out, started.elapsed())
    }
}

impl ExecutorSet {
    /// Starts the target's shared connection when there is none, one start
    /// at a time per target. When it cannot start, the step's own `ssh`
    /// connects directly and reports why.
    async fn ensure_master(&self, t: &ssh::SshTarget, host: &str) {
        let path = t.control_path(&self.opts.ssh_control_dir);
        if path.exists() {
            return;
        }
        let lock = {
            let mut m = self.masters.lock().unwrap_or_else(|e| e.into_inner());
            m.entry(path.clone()).or_default().clone()
        };
        let mut failed_at = lock.lock().await;
        if path.exists() {
            return;
        }
        // After a failed start, steps connect on their own for a while (and
        // report why) instead of paying the connect timeout twice.
        if failed_at.is_some_and(|t| t.elapsed() < Duration::from_secs(30)) {
            return;
        }
        // The master forks into the background and keeps its stdio: its
        // errors go to a file (`-E`), read once it returns.
        let errors = path.with_extension("err");
        let _ = std::fs::remove_file(&errors);
        let mut argv = t.master_command(&self.opts.ssh_control_dir);
        argv.splice(1..1, ["-E".to_string(), errors.display().to_string()]);
        let limit = Duration::from_secs(t.connect_timeout + 5);
        let ok = local::run_quiet(&argv, &ssh::client_env(), limit).await;
        let reason = std::fs::read(&errors)
            .map(|b| ssh::ssh_reason(&b, None))
            .unwrap_or_else(|_| "no reason given (timed out?)".into());
        let _ = std::fs::remove_file(&errors);
        if ok {
            *failed_at = None;
        } else {
            *failed_at = Some(Instant::now());
            tracing::warn!(
                host,
                address = %t.address(),
                "the shared ssh connection to {host} ({}) could not be started: {reason}; steps connect on their own for 30 s",
                t.address()
            );
        }
    }
}

impl Executors for ExecutorSet {
    fn spawn(&self, x: Execution, done: mpsc::Sender<Event>) {
        let me = ExecutorSet {
            hosts: self.hosts.clone(),
            opts: self.opts.clone(),
            permits: self.permits.clone(),
            client: self.client.clone(),
            masters: self.masters.clone(),
        };
        tokio::spawn(async move {
            // The run happens in its own task so that a panic in it still
            // ends with a Finished event.
            let (action, attempt) = (x.action, x.attempt);
            let tx = done.clone();
            let run = async move { me.run_reporting(&x, Some(&tx)).await };
            let outcome = match tokio::spawn(run).await {
                Ok(o) => o,
                Err(e) => Outcome::failure(None, format!("the executor task failed: {e}")),
            };
            let _ = done
                .send(Event::Finished {
                    action,
                    attempt,
                    outcome,
                })
                .await;
        });
    }
}

/// What one step did, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub name: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub stdout: String,
    pub stderr: String,
    /// Output bytes beyond the limit that were dropped.
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl StepResult {
    pub fn new(s: &PlannedStep, out: local::ProcOutput, took: Duration) -> StepResult {
        StepResult {
            name: s.name.clone(),
            exit_code: out.exit_code,
            timed_out: out.timed_out,
            duration_ms: took.as_millis() as u64,
            stdout: redact(&String::from_utf8_lossy(&out.stdout)),
            stderr: redact(&String::from_utf8_lossy(&out.stderr)),
            dropped_bytes: out.dropped,
            error: out.error.map(|e| redact(&e)),
            rollback: s.rollback,
        }
    }

    pub fn ok(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// Facts a step reports on stdout as `vigil: key=value` lines (numbers
/// become JSON numbers).
pub fn facts(stdout: &str, into: &mut serde_json::Map<String, serde_json::Value>) {
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("vigil: ") else {
            continue;
        };
        for kv in rest.split_whitespace() {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let val = match v.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => json!(v),
            };
            // Facts of later steps add up when numeric (bytes freed per root).
            match (into.get(k), &val) {
                (Some(serde_json::Value::Number(a)), serde_json::Value::Number(b)) => {
                    let sum = a.as_i64().unwrap_or(0) + b.as_i64().unwrap_or(0);
                    into.insert(k.to_string(), json!(sum));
                }
                _ => {
                    into.insert(k.to_string(), val);
                }
            }
        }
    }
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// The outcome of a run from its step results: `failed` is the index of
/// the step that failed (the run stopped there), `rolled` what rollback ran.
pub fn summarize(
    executor: &str,
    total: usize,
    results: &[StepResult],
    rolled: &[StepResult],
    failed: Option<usize>,
) -> Outcome {
    let mut fs = serde_json::Map::new();
    for r in results {
        facts(&r.stdout, &mut fs);
    }
    let fact_text = fs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str().map(str::to_string).unwrap_or(v.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let took: u64 = results.iter().chain(rolled).map(|r| r.duration_ms).sum();
    let mut steps: Vec<&StepResult> = results.iter().collect();
    steps.extend(rolled);
    let data = json!({
        "executor": executor,
        "steps": steps,
        "facts": fs,
    });
    match failed {
        None => Outcome {
            success: true,
            exit_code: Some(0),
            detail: format!(
                "{total} step(s) ok in {:.2}s over {executor}{}{}",
                took as f64 / 1000.0,
                if fact_text.is_empty() { "" } else { "; " },
                fact_text
            ),
            data: Some(data),
        },
        Some(i) => {
            let r = &results[i];
            let why = if r.timed_out {
                "timed out and was killed".to_string()
            } else if let Some(e) = &r.error {
                e.clone()
            } else {
                match r.exit_code {
                    Some(c) => format!("exit {c}"),
                    None => "ended by a signal".into(),
                }
            };
            let tail = last_line(&r.stderr);
            let tail = if tail.is_empty() {
                last_line(&r.stdout)
            } else {
                tail
            };
            let rb = if rolled.is_empty() {
                String::new()
            } else {
                format!(
                    "; rollback: {}/{} step(s) ok",
                    rolled.iter().filter(|r| r.ok()).count(),
                    rolled.len()
                )
            };
            Outcome {
                success: false,
                exit_code: r.exit_code,
                detail: format!(
                    "step {}/{total} {:?} {why} after {:.2}s over {executor}{}{}{rb}",
                    i + 1,
                    r.name,
                    r.duration_ms as f64 / 1000.0,
                    if tail.is_empty() { "" } else { ": " },
                    tail.chars().take(300).collect::<String>()
                ),
                data: Some(data),
            }
        }
    }
}
