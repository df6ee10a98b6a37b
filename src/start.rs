//! Start-up: from the command line's choices and the config file to a
//! prepared hub (store opened, state restored, executors, notifier, demo
//! fleet and prober handed over), and the hub's listeners. The binary and
//! its shells (console, serve) start through here.
//!
//! Wires modules together; decides nothing.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, default_config_path, default_data_dir};
use crate::runbook::RunbookOverride;
use crate::sim::demo::DemoFleet;
use crate::store::{AuditWriter, Store};

/// What start-up takes from the command line.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// `--config`: else the default path when it exists, else none.
    pub config: Option<PathBuf>,
    /// `--data-dir`: else the config's, else the platform's.
    pub data_dir: Option<PathBuf>,
    /// `--demo`: run the demo fleet even with a config.
    pub demo: bool,
    /// `--dry-run`: start in dry-run.
    pub dry_run: bool,
    /// `vigil serve`: a hub on a shared store (`[store] url`) may start;
    /// a console does not start one there (it attaches).
    pub serve: bool,
}

/// A hub's part among the hubs sharing a store (see [`crate::ha`]).
pub enum SharedRole {
    /// It holds the lease: renew it ([`crate::ha::keep_lease`]).
    Active {
        lease: Box<crate::store::Lease>,
        epoch: i64,
    },
    /// It follows the trail ([`crate::ha::follow`]) and shows it.
    Standby {
        follower: Box<crate::ha::Follower>,
        make_engine: crate::hub::EngineFactory,
    },
}

/// The config file in force: `--config`, else the default path when it
/// exists, else none (the demo fleet).
pub fn load_config(file: Option<&Path>) -> Result<(Config, String, String), ConfigError> {
    let path = match file {
        Some(p) => Some(p.to_path_buf()),
        None => default_config_path().filter(|p| p.exists()),
    };
    match path {
        Some(p) => {
            let (c, text) = Config::load(&p)?;
            Ok((c, text, p.display().to_string()))
        }
        None => Ok((
            Config::default(),
            String::new(),
            "(no config file: defaults)".into(),
        )),
    }
}

pub fn data_dir(explicit: Option<&Path>, config: &Config) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| config.data_dir.clone())
        .unwrap_or_else(default_data_dir)
}

/// The operator's identity: the config's, else `$USER`, else `operator`.
pub fn operator(config: &Config) -> String {
    config
        .operator
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "operator".into())
}

/// Logs to `log_dir/file` (and stderr when asked), never to the terminal
/// the console draws on. `VIGIL_LOG` sets the level (default info).
pub fn init_logging(
    log_dir: &Path,
    file: &str,
    to_stderr: bool,
) -> Result<tracing_appender::non_blocking::WorkerGuard, String> {
    std::fs::create_dir_all(log_dir)
        .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
    let appender = tracing_appender::rolling::never(log_dir, file);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let stderr_layer = to_stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    Ok(guard)
}

/// Everything a hub needs, from the command line and the config.
pub struct Prepared {
    pub hub: crate::hub::Hub,
    pub handle: crate::hub::HubHandle,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    pub demo: bool,
    /// Where sources (pollers, the listener) report their health.
    pub sources: crate::hub::SourceBoard,
    pub config: Config,
    /// The compiled policies (the listener's violation checks and
    /// `/api/v1/policies`).
    pub policies: Vec<crate::policy::Policy>,
    /// The data dir's lock, held for the life of the process.
    pub lock: crate::owner::DirLock,
    /// On a shared store: active or standby.
    pub shared: Option<SharedRole>,
}

pub fn prepare(
    cli: &StartOptions,
    log_to_stderr: bool,
) -> Result<(Prepared, tracing_appender::non_blocking::WorkerGuard), String> {
    // Whatever the hub creates (store, logs, exports) is its owner's only.
    crate::private::private_umask();
    let (mut config, text, file) = load_config(cli.config.as_deref()).map_err(|e| e.to_string())?;
    let shared_store =
        crate::store::AnyStore::target(config.store.as_ref()).map_err(|e| e.to_string())?;
    if let Some(t) = &shared_store
        && !cli.serve
    {
        return Err(format!(
            "[store] url: hubs on a shared store ({}) run as `vigil serve`; a console attaches to one (vigil --connect URL, or vigil --data-dir DIR on its machine) and does not start a hub itself",
            t.display()
        ));
    }
    let has_config = file != "(no config file: defaults)";
    let demo = cli.demo || config.demo.unwrap_or(false) || !has_config;
    let dir = data_dir(cli.data_dir.as_deref(), &config);
    let dir_state = crate::private::private_dir(&dir)?;
    let log_dir = dir.join("logs");
    crate::private::private_dir(&log_dir)?;
    crate::private::private_file(&log_dir.join("vigil.log"))?;
    let guard = init_logging(&log_dir, "vigil.log", log_to_stderr)?;
    if let crate::private::DirState::Tightened(m) = dir_state {
        tracing::warn!("data dir {} had mode {m:04o}; made it 0700", dir.display());
    }
    let start = chrono::Utc::now();
    // VIGIL_DEMO_SPEED compresses the demo's metric clock (for demos and
    // end-to-end tests); 1 is real time.
    let speed = std::env::var("VIGIL_DEMO_SPEED")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 60);
    let fleet = demo.then(|| DemoFleet::new(start, speed));
    if let Some(f) = &fleet {
        config
            .hosts
            .extend(f.hosts().into_iter().map(crate::config::HostEntry::from));
        config.maintenance.extend(f.windows());
        for p in f.policies() {
            if !config.policies.iter().any(|c| c.name == p.name) {
                config.policies.push(p);
            }
        }
        for (name, v) in f.config_overrides() {
            if config.runbooks.contains_key(&name) {
                continue;
            }
            if let Ok(o) = v.try_into::<RunbookOverride>() {
                config.runbooks.insert(name, o);
            }
        }
    }
    let crate::config::Assembled {
        mut setup,
        executors,
    } = config
        .assemble(
            &file, &text, false,
            // Demo hosts name `sim` themselves; any other host has none.
            None,
        )
        .map_err(|es| {
            es.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })?;
    if cli.dry_run {
        setup.modes.dry_run = true;
    }
    let executors = crate::exec::ExecutorSet::checked(
        executors,
        crate::exec::ExecOptions {
            max_parallel: config.settings.max_parallel_runs.unwrap_or(16),
            ..Default::default()
        },
    )
    .map(std::sync::Arc::new)
    .map_err(|es| {
        es.iter()
            .map(|e| format!("{file}: {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    // One control plane per data dir: taken before the store is opened and
    // held until the process ends.
    let lock = crate::owner::DirLock::acquire(&dir).map_err(|e| match e {
        crate::owner::OwnError::Taken { .. } => format!(
            "{e}\n  a console attaches to it: vigil --data-dir {}\n  or stop that hub first",
            dir.display()
        ),
        other => other.to_string(),
    })?;
    let t0 = std::time::Instant::now();
    let (writer, restored, shared, role) = match &shared_store {
        None => {
            let store = Store::open(&dir).map_err(|e| e.to_string())?;
            let restored = store.load_state().map_err(|e| e.to_string())?;
            let writer = AuditWriter::spawn(store).map_err(|e| e.to_string())?;
            (writer, restored, None, None)
        }
        Some(t) => {
            let ttl = config
                .store
                .as_ref()
                .map_or(Ok(std::time::Duration::from_secs(10)), |s| s.lease_ttl())?;
            match crate::ha::join_or_wait(t, ttl, &dir)? {
                crate::ha::Joined::Active {
                    writer,
                    state,
                    lease,
                    role,
                } => {
                    let epoch = role.epoch;
                    (
                        writer,
                        state,
                        Some(SharedRole::Active { lease, epoch }),
                        Some(role),
                    )
                }
                crate::ha::Joined::Standby {
                    writer,
                    state,
                    follower,
                    role,
                } => {
                    let (config, file, text) = (config.clone(), file.clone(), text.clone());
                    let dry_run = cli.dry_run;
                    let make_engine: crate::hub::EngineFactory = Box::new(move || {
                        let mut setup = config.build(&file, &text, false, None).map_err(|es| {
                            es.iter()
                                .map(|e| e.to_string())
                                .collect::<Vec<_>>()
                                .join("; ")
                        })?;
                        setup.modes.dry_run |= dry_run;
                        Ok(crate::engine::Engine::new(setup))
                    });
                    (
                        writer,
                        state,
                        Some(SharedRole::Standby {
                            follower,
                            make_engine,
                        }),
                        Some(role),
                    )
                }
            }
        }
    };
    tracing::info!(
        audit_seq = restored.last_seq,
        "store opened and state loaded in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    let engine = crate::engine::Engine::new(setup);
    let policies = engine.evaluator().policies().to_vec();
    let op = operator(&config);
    let sources = crate::hub::SourceBoard::default();
    let notifier = crate::notify::Notifier::new(&config.escalation).map_err(|e| e.to_string())?;
    let notifier = (!notifier.is_empty()).then(|| std::sync::Arc::new(notifier));
    let (mut hub, handle) = crate::hub::Hub::new(crate::hub::HubSetup {
        engine,
        writer,
        restored,
        demo: fleet.map(|f| Box::new(f) as Box<dyn crate::hub::DrivenFleet>),
        operator: op.clone(),
        sim_run_time: std::time::Duration::from_secs(3),
        tick: std::time::Duration::from_secs(1),
        executors: Some(executors),
        escalator: notifier
            .clone()
            .map(|n| n as std::sync::Arc<dyn crate::hub::Escalator>),
        sources: sources.clone(),
    });
    hub.set_prober(
        crate::ingest::evidence::RuleProber::from_sources(&config.sources)
            .map(|p| std::sync::Arc::new(p) as std::sync::Arc<dyn crate::hub::Prober>),
    );
    if let Some(a) = &config.analysis {
        hub.set_analysis(a.enabled.unwrap_or(true));
        if let Some(spec) = &a.llm {
            // A missing key or a bad URL leaves the heuristic alone in charge.
            match crate::analysis::llm::LlmClient::from_spec(spec) {
                Ok(c) => hub.set_llm(Some(c)),
                Err(e) => tracing::warn!("LLM analysis is off: {e}"),
            }
        }
    }
    if let Some(r) = role {
        handle.vitals.set_role(r);
    }
    if cli.dry_run {
        // --dry-run wins over the mode remembered from the last run.
        let _ = handle.events.try_send(crate::engine::Event::SetDryRun {
            on: true,
            actor: op,
        });
    }
    tracing::info!(data_dir = %dir.display(), demo, "vigil starting");
    Ok((
        Prepared {
            hub,
            handle,
            data_dir: dir,
            log_path: log_dir.join("vigil.log"),
            demo,
            sources,
            config,
            policies,
            lock,
            shared,
        },
        guard,
    ))
}

/// Starts the unix socket, the HTTP listener, the pollers and the
/// escalation follower. A socket that cannot be bound is an error; the TCP
/// listener's failure is in `Started::tcp` (and on the source board).
pub async fn start_io(
    p: &mut Prepared,
    opts: crate::ingest::ListenerOptions,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<crate::ingest::Started, crate::ingest::ListenError> {
    let started = crate::ingest::start(
        p.handle.clone(),
        &p.config,
        p.policies.clone(),
        p.data_dir.clone(),
        opts,
        p.sources.clone(),
        stop,
    )
    .await?;
    if let Ok(addr) = &started.tcp {
        p.lock.set_listen(&addr.to_string());
        tracing::info!(%addr, "HTTP listener started");
    }
    if let Some(sock) = &started.socket {
        tracing::info!(socket = %sock.display(), "unix socket serving");
    }
    Ok(started)
}
