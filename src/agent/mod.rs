//! `vigil agent`: the job API on a host that the hub's http executor talks
//! to (`exec::http`). It runs only what it knows: a job is accepted when it
//! is exactly the plan the agent computes itself from its own runbook
//! catalog, and is stored durably before the hub hears "accepted".
//!
//! - `config`: the agent's config file, tokens, TLS, catalog location.
//! - `check`: the job against the agent's own plan (422 names the difference).
//! - `store`: the SQLite job store (idempotency, queue, recovery, pruning).
//! - `runner`: the queue and the steps, run as the local executor runs them.
//! - `api`: the routes and the token check.
//! - `tls`: the listener's certificate (rustls).
//!
//! The agent decides nothing about whether a fix is wise (the hub's engine
//! does, and decides any retry: a new attempt, a new key); it refuses what
//! it was not built to run. One agent per data dir (a lock, as the hub's).

pub mod api;
pub mod check;
pub mod config;
pub mod runner;
pub mod store;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use config::{AgentConfig, Flags};

/// How long a stopping agent waits for its running jobs.
const STOP_GRACE: Duration = Duration::from_secs(60);
/// How often finished jobs past `keep_finished` are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Runs the agent until SIGINT or SIGTERM (or `stop` turns true); the
/// error is what an operator must fix.
pub async fn run(cfg: AgentConfig, stop: watch::Receiver<bool>) -> Result<(), String> {
    if let crate::private::DirState::Tightened(m) = crate::private::private_dir(&cfg.data_dir)? {
        tracing::warn!(
            "{} had mode {m:04o}; it is now 0700",
            cfg.data_dir.display()
        );
    }
    let mut lock = crate::owner::DirLock::acquire(&cfg.data_dir).map_err(|e| e.to_string())?;
    let catalog = cfg.catalog()?;
    let tls = cfg.tls.as_ref().map(tls::load).transpose()?;
    let store = Arc::new(store::JobStore::open(&cfg.data_dir).map_err(|e| e.to_string())?);
    let orphans = store.orphans().map_err(|e| e.to_string())?;
    let notes = runner::stop_orphans(&orphans);
    let interrupted = store.recover(&notes).map_err(|e| e.to_string())?;
    if interrupted > 0 {
        tracing::warn!(
            "{interrupted} job(s) were running when the agent stopped: failed as interrupted, not re-run"
        );
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    lock.set_listen(&addr.to_string());
    let runner = runner::Runner::new(store.clone(), cfg.max_running, cfg.output_limit);
    let state = Arc::new(api::AgentState {
        store: store.clone(),
        runner: runner.clone(),
        catalog,
        targets: cfg.targets.clone(),
        tokens: cfg.tokens.clone(),
        max_queued: cfg.max_queued,
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    match &tls {
        Some(t) => eprintln!(
            "vigil agent: listening on {scheme}://{addr} (certificate sha256 {}); {} runbook(s); {} hub token(s)",
            t.fingerprint,
            state.catalog.runbooks.len(),
            cfg.tokens.len()
        ),
        None => eprintln!(
            "vigil agent: listening on {scheme}://{addr}; {} runbook(s); {} hub token(s)",
            state.catalog.runbooks.len(),
            cfg.tokens.len()
        ),
    }
    if tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            "{addr} is reachable from the network without TLS: tokens and job output travel in clear; configure [tls]"
        );
    }
    let keep = chrono::TimeDelta::from_std(cfg.keep_finished).unwrap_or(chrono::TimeDelta::days(7));
    let pruner = {
        let (store, mut stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let st = store.clone();
                let before = chrono::Utc::now() - keep;
                match tokio::task::spawn_blocking(move || st.prune(before)).await {
                    Ok(Ok(n)) if n > 0 => tracing::info!("pruned {n} finished job(s)"),
                    Ok(Err(e)) => tracing::error!("{e}"),
                    _ => {}
                }
                tokio::select! {
                    _ = tokio::time::sleep(PRUNE_EVERY) => {}
                    _ = stopped(&mut stop) => break,
                }
            }
        })
    };
    let work = tokio::spawn(runner.clone().run(stop.clone(), STOP_GRACE));
    crate::ingest::serve_connections(
        listener,
        api::router(state),
        tls.map(|t| t.acceptor),
        stop.clone(),
    )
    .await;
    let _ = work.await;
    let _ = pruner.await;
    eprintln!("vigil agent: stopped");
    Ok(())
}

/// Waits until `stop` turns true (or its sender is gone). The guard
/// `wait_for` returns is dropped at once, so the waiting future is Send.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A stop signal that turns true on SIGINT or SIGTERM.
pub fn stop_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!(
            "vigil agent: stopping (running jobs get up to {}s)",
            STOP_GRACE.as_secs()
        );
        let _ = tx.send(true);
        // Held until the process ends: a dropped sender would read as a stop.
        std::future::pending::<()>().await;
    });
    rx
}

/// `vigil agent`: loads the config, logs to stderr (the journal under
/// systemd; `VIGIL_LOG` sets the level) and serves until stopped. Exit 0
/// after a clean stop, 2 when it cannot start (the message says why).
pub fn cli(flags: Flags) -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let cfg = match AgentConfig::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vigil agent: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigil agent: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(async { run(cfg, stop_on_signals()).await }) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil agent: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
