//! `vigil` with no subcommand: the console, attached to a running hub or
//! on a hub of its own (started through `vigil::start`).

use super::*;

/// The directory whose `themes/` and `keymaps/` override the bundled
/// ones: the config file's own directory, else the platform config dir.
pub(super) fn look_dir(cli: &Cli) -> Option<PathBuf> {
    match &cli.config {
        Some(p) => p
            .parent()
            .map(|d| {
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                }
            })
            .map(Path::to_path_buf),
        None => vigil::config::project_dirs().map(|d| d.config_dir().to_path_buf()),
    }
}

/// The theme in force: `--theme`, the config's, `mono` when `NO_COLOR` is
/// set, else `default`.
pub(super) fn theme_name(cli: &Cli, config: &Config) -> String {
    cli.theme
        .clone()
        .or_else(|| config.theme.clone())
        .or_else(|| {
            std::env::var_os("NO_COLOR")
                .filter(|v| !v.is_empty())
                .map(|_| vigil::tui::theme::NO_COLOR_THEME.to_string())
        })
        .unwrap_or_else(|| "default".into())
}

/// `vigil`: the full-screen console. It attaches to the hub that owns the
/// data dir (or to `--connect URL`); with none running it starts one in
/// this process and attaches to it the same way, through its socket.
pub(super) fn cmd_console(cli: &Cli, started: std::time::Instant) -> ExitCode {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!("error: the console needs a terminal; for a hub without one use `vigil serve`");
        return ExitCode::from(2);
    }
    let (config, _, _) = match load_config(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let dir = data_dir(cli, &config);
    let socket = dir.join(vigil::owner::SOCKET_FILE);
    let remote = match &cli.connect {
        Some(url) => {
            let token = std::env::var("VIGIL_TOKEN").ok().filter(|t| !t.is_empty());
            match vigil::client::Endpoint::parse(url, token) {
                Ok(e) => Some(e),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None if vigil::client::hub_listening(&socket) => {
            Some(vigil::client::Endpoint::Socket(socket.clone()))
        }
        // A hub is starting on this data dir: wait for its socket.
        None if matches!(vigil::owner::current_owner(&dir), Ok(Some(_))) => {
            let t0 = std::time::Instant::now();
            while !vigil::client::hub_listening(&socket) {
                if t0.elapsed() > std::time::Duration::from_secs(10) {
                    let owner = vigil::owner::current_owner(&dir)
                        .ok()
                        .flatten()
                        .map(|o| o.to_string())
                        .unwrap_or_else(|| "another process".into());
                    eprintln!(
                        "error: the data dir {} is owned by {owner}, but its socket {} does not answer",
                        dir.display(),
                        socket.display()
                    );
                    return ExitCode::from(1);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Some(vigil::client::Endpoint::Socket(socket.clone()))
        }
        None if cli.read_only => {
            eprintln!(
                "error: no hub is running on {}; --read-only only watches one.\n  start it with `vigil serve --data-dir {}`, or attach elsewhere with --connect URL",
                dir.display(),
                dir.display()
            );
            return ExitCode::from(1);
        }
        None => None,
    };
    match remote {
        Some(endpoint) => attach_console(cli, &config, endpoint, started),
        None => own_console(cli, started),
    }
}

/// The console's settings that do not depend on where the hub is.
pub(super) fn console_setup(
    cli: &Cli,
    config: &Config,
    client: vigil::client::HubClient,
    owns_hub: bool,
    log_path: PathBuf,
    first: std::sync::Arc<vigil::hub::Snapshot>,
    started: std::time::Instant,
) -> vigil::tui::run::ConsoleSetup {
    vigil::tui::run::ConsoleSetup {
        client,
        owns_hub,
        log_path,
        config_dir: look_dir(cli),
        theme: theme_name(cli, config),
        keymap: cli
            .keymap
            .clone()
            .or_else(|| config.keymap.clone())
            .unwrap_or_else(|| "default".into()),
        read_only: cli.read_only,
        problems: Vec::new(),
        started,
        first,
        history_path: Some(data_dir(cli, config).join("console-history")),
    }
}

/// A console attached to a hub that runs elsewhere (another process on
/// this data dir, or `--connect`).
pub(super) fn attach_console(
    cli: &Cli,
    config: &Config,
    endpoint: vigil::client::Endpoint,
    started: std::time::Instant,
) -> ExitCode {
    // The log goes to this user's own data dir: the hub's may not be
    // writable by them.
    let own = default_data_dir().join("logs");
    let _guard = match init_logging(&own, "console.log", false) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("warning: {e}; the console runs without a log");
            None
        }
    };
    let log_path = own.join("console.log");
    let client = match vigil::client::HubClient::new(&endpoint, cli.read_only) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    // Refused credentials are said before the screen opens.
    if let Err(e) = rt.block_on(client.whoami()) {
        eprintln!("error: cannot attach to the hub at {}: {e}", client.label());
        return ExitCode::from(1);
    }
    tracing::info!(to = client.label(), "console attaching");
    let first = std::sync::Arc::new(vigil::hub::Snapshot::empty(chrono::Utc::now()));
    let setup = console_setup(cli, config, client, false, log_path.clone(), first, started);
    match rt.block_on(vigil::tui::run::run(setup)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: the console stopped: {e} (log: {})",
                log_path.display()
            );
            ExitCode::from(1)
        }
    }
}

/// No hub runs on the data dir: this process becomes its hub, and the
/// console attaches to it through its socket like any other.
pub(super) fn own_console(cli: &Cli, started: std::time::Instant) -> ExitCode {
    let (rt, p, _guard) = match start_hub(cli, false) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let opts = match vigil::ingest::ListenerOptions::resolve(cli.listen.as_deref(), &p.config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let log = p.log_path.display().to_string();
    let result = rt.block_on(async move {
        let mut p = p;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let started_io = match start_io(&mut p, opts, stop_rx.clone()).await {
            Ok(s) => s,
            Err(e) => return (Err(std::io::Error::other(e.to_string())), None),
        };
        // The console carries on without the TCP listener: the failure
        // shows on the source board (status bar) as Down.
        if let Err(e) = &started_io.tcp {
            tracing::warn!("HTTP listener not started: {e}");
        }
        let Some(sock) = started_io.socket.clone() else {
            return (Err(std::io::Error::other("the hub has no socket")), None);
        };
        let first = p.handle.snapshots.borrow().clone();
        let hub = tokio::spawn(p.hub.run(stop_rx));
        let client = match vigil::client::HubClient::new(
            &vigil::client::Endpoint::Socket(sock),
            cli.read_only,
        ) {
            Ok(c) => c,
            Err(e) => return (Err(std::io::Error::other(e)), None),
        };
        let setup = console_setup(
            cli,
            &p.config,
            client,
            true,
            p.log_path.clone(),
            first,
            started,
        );
        let ui = vigil::tui::run::run(setup).await;
        let _ = stop_tx.send(true);
        (ui, Some(hub.await))
    });
    match result {
        (Err(e), _) => {
            eprintln!("error: the console stopped: {e} (log: {log})");
            ExitCode::from(1)
        }
        (Ok(()), Some(Ok(Ok(())))) | (Ok(()), None) => ExitCode::SUCCESS,
        (Ok(()), Some(Ok(Err(e)))) => {
            eprintln!("error: {e} (log: {log})");
            ExitCode::from(1)
        }
        (Ok(()), Some(Err(e))) => {
            eprintln!("error: the hub stopped: {e} (log: {log})");
            ExitCode::from(1)
        }
    }
}
