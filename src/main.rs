//! The `vigil` command line: console, serve, replay, check, runbooks, audit.
//! Parses arguments, loads files and hands over to the library; exit codes
//! are part of the contract (see README.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use vigil::config::{Config, ConfigError, default_data_dir};
use vigil::model::Labels;
use vigil::runbook::Catalog;
use vigil::start::{self, Prepared, init_logging, start_io};

#[path = "cli/console.rs"]
mod console;
use console::*;
#[path = "cli/serve.rs"]
mod serve;
use serve::*;
use vigil::sim::scenario::{Scenario, replay_file};
use vigil::store::AnyStore;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "The on-call console with a self-healing control plane"
)]
struct Cli {
    /// Config file (default: the platform config dir's config.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Where the store lives (default: the platform data dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Start in dry-run: nothing that changes a host runs.
    #[arg(long, global = true)]
    dry_run: bool,
    /// Run the built-in demo fleet even when a config exists.
    #[arg(long, global = true)]
    demo: bool,
    /// Colour theme of the console.
    #[arg(long, global = true)]
    theme: Option<String>,
    /// Key bindings of the console.
    #[arg(long, global = true)]
    keymap: Option<String>,
    /// Attach as a viewer: watch only, never start a hub.
    #[arg(long, global = true)]
    read_only: bool,
    /// Attach the console to a hub: `http://HOST:PORT` (token from
    /// VIGIL_TOKEN) or the path of its unix socket.
    #[arg(long, global = true, value_name = "URL")]
    connect: Option<String>,
    /// The console's own hub listens here (default 127.0.0.1:9797).
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the hub without a terminal.
    Serve {
        /// Stop after this long (e.g. `5m`); runs until SIGINT/SIGTERM otherwise.
        #[arg(long)]
        duration: Option<String>,
    },
    /// Run a scenario on a virtual clock and check its [expect].
    Replay {
        file: PathBuf,
        /// One JSON object per record on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Validate config, policies, runbooks, themes and keymaps.
    Check,
    /// Show runbooks and what they would run.
    Runbooks {
        #[command(subcommand)]
        command: RunbooksCmd,
    },
    /// Inspect the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCmd,
    },
    /// Root-cause analysis tools.
    Rca {
        #[command(subcommand)]
        command: RcaCmd,
    },
    /// Serve the job API on a host for hubs' http executors: runs only the
    /// runbooks it knows, exactly as it plans them (`--listen ADDR`,
    /// default 127.0.0.1:9798; `--data-dir DIR`; `--config FILE`, the
    /// agent's own config).
    Agent,
    /// Try every host (ssh BatchMode `true`), source and escalation target
    /// from this machine; print ok or the failure, its reason and the fix.
    Doctor,
    /// The policies in force: the defaults merged with the config.
    Policies {
        #[command(subcommand)]
        command: PoliciesCmd,
    },
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `vigil man > /usr/local/share/man/man1/vigil.1`.
    Man,
}

#[derive(Subcommand)]
enum PoliciesCmd {
    /// One line per policy: name, where it is evaluated, condition, runbook.
    List,
    /// A policy in full.
    Show { name: String },
}

#[derive(Subcommand)]
enum RcaCmd {
    /// Score an analyser over labelled scenario files ([expect.rca]).
    Eval {
        dir: PathBuf,
        /// The report as one JSON object.
        #[arg(long)]
        json: bool,
        /// heuristic (default) or llm (uses [analysis.llm] of the config).
        #[arg(long, default_value = "heuristic", value_parser = ["heuristic", "llm"])]
        analyser: String,
    },
}

#[derive(Subcommand)]
enum RunbooksCmd {
    /// One line per runbook.
    List,
    /// A runbook's full definition.
    Show { name: String },
    /// The exact argv each step would run on a host.
    Plan {
        name: String,
        #[arg(long)]
        target: String,
        /// K=V, repeatable.
        #[arg(long = "param")]
        params: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the hash chain; names the first bad seq.
    Verify,
    /// Write the trail out.
    Export {
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Only records after this seq.
        #[arg(long)]
        since: Option<u64>,
    },
    /// The newest records.
    Tail {
        #[arg(short = 'n', long, default_value_t = 20)]
        count: usize,
    },
}

/// The config file in force: `--config`, else the default path when it
/// exists, else none (the demo fleet).
fn load_config(cli: &Cli) -> Result<(Config, String, String), ConfigError> {
    start::load_config(cli.config.as_deref())
}

fn data_dir(cli: &Cli, config: &Config) -> PathBuf {
    start::data_dir(cli.data_dir.as_deref(), config)
}

fn start_options(cli: &Cli, serve: bool) -> start::StartOptions {
    start::StartOptions {
        config: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        demo: cli.demo,
        dry_run: cli.dry_run,
        serve,
    }
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    limit_malloc_arenas();
    vigil::ingest::raise_fd_limit();
    let cli = Cli::parse();
    match &cli.command {
        Some(Cmd::Replay { file, json }) => cmd_replay(file, *json),
        Some(Cmd::Check) => cmd_check(&cli),
        Some(Cmd::Runbooks { command }) => cmd_runbooks(&cli, command),
        Some(Cmd::Audit { command }) => cmd_audit(&cli, command),
        Some(Cmd::Rca {
            command:
                RcaCmd::Eval {
                    dir,
                    json,
                    analyser,
                },
        }) => cmd_rca_eval(&cli, dir, *json, analyser),
        Some(Cmd::Agent) => vigil::agent::cli(vigil::agent::Flags {
            config: cli.config.clone(),
            listen: cli.listen.clone(),
            data_dir: cli.data_dir.clone(),
        }),
        Some(Cmd::Serve { duration }) => cmd_serve(&cli, cli.listen.clone(), duration.clone()),
        Some(Cmd::Doctor) => cmd_doctor(&cli),
        Some(Cmd::Policies { command }) => cmd_policies(&cli, command),
        Some(Cmd::Completions { shell }) => {
            // Into a buffer first: a closed pipe (`| head`) is an exit
            // status, not a panic inside the generator.
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "vigil", &mut out);
            match std::io::stdout().write_all(&out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(1),
            }
        }
        Some(Cmd::Man) => cmd_man(),
        None => cmd_console(&cli, started),
    }
}

/// `vigil rca eval`: 0 when it ran, 2 when it could not.
fn cmd_rca_eval(cli: &Cli, dir: &Path, json: bool, analyser: &str) -> ExitCode {
    use vigil::sim::eval;
    let report = if analyser == "llm" {
        let spec = load_config(cli)
            .map_err(|e| e.to_string())
            .and_then(|(c, _, file)| {
                c.analysis.and_then(|a| a.llm).ok_or(format!(
                    "{file}: --analyser llm needs an [analysis.llm] section"
                ))
            });
        spec.and_then(|s| eval::run_llm(dir, &s).map_err(|e| e.to_string()))
    } else {
        eval::run_heuristic(dir).map_err(|e| e.to_string())
    };
    match report {
        Ok(r) if json => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(r) => {
            print!("{}", r.text());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn cmd_replay(file: &Path, json: bool) -> ExitCode {
    let replay = match replay_file(file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for r in &replay.log {
        let line = if json {
            r.canonical_json()
        } else {
            r.summary()
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(1);
        }
    }
    let _ = out.flush();
    drop(out);
    let unmet = replay.unmet();
    let report = |s: &str| {
        if json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    };
    if unmet.is_empty() {
        report(&format!(
            "PASS {} ({} records)",
            file.display(),
            replay.log.len()
        ));
        ExitCode::SUCCESS
    } else {
        for u in &unmet {
            report(&format!("UNMET {u}"));
        }
        report(&format!("FAIL {} ({} unmet)", file.display(), unmet.len()));
        ExitCode::from(1)
    }
}

fn cmd_check(cli: &Cli) -> ExitCode {
    let (config, text, file) = match load_config(cli) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let keymap = cli
        .keymap
        .clone()
        .or_else(|| config.keymap.clone())
        .unwrap_or_else(|| "default".into());
    let mut look =
        vigil::tui::run::check_look(&theme_name(cli, &config), &keymap, look_dir(cli).as_deref());
    // What `serve` would refuse at start: operators' tokens, the socket
    // group, a listener beyond loopback without a token.
    if let Err(e) = vigil::ingest::ListenerOptions::resolve(cli.listen.as_deref(), &config) {
        let line = match &e {
            vigil::ingest::ListenError::Access(m) => m
                .split_once("\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .and_then(|(name, _)| vigil::units::line_of(&text, &format!("\"{name}\""))),
            _ => None,
        };
        look.push(vigil::units::FileError::new(&file, line, e.to_string()).to_string());
    }
    // What the hub would meet later on this machine: key files, known
    // hosts, token variables.
    for p in vigil::preflight::check(&config, &file, &text) {
        look.push(p.to_string());
    }
    // `[store]`: the URL's shape, the password's source and the lease time
    // (the server itself is not asked: `vigil doctor` and `serve` do).
    if let Err(e) = AnyStore::target(config.store.as_ref()) {
        let line = vigil::units::line_of(&text, "[store]");
        look.push(vigil::units::FileError::new(&file, line, e.to_string()).to_string());
    }
    match config.build(&file, &text, false, None) {
        Ok(setup) if look.is_empty() => {
            println!(
                "ok: {file}: {} policies, {} runbooks, {} hosts, {} maintenance windows; \
                 themes and keymaps ok",
                setup.policies.len(),
                setup.catalog.runbooks.len(),
                setup.inventory.hosts.len(),
                setup.windows.len()
            );
            ExitCode::SUCCESS
        }
        Ok(_) => {
            for e in &look {
                eprintln!("error: {e}");
            }
            eprintln!("{} problem(s) found", look.len());
            ExitCode::from(1)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            for e in &look {
                eprintln!("error: {e}");
            }
            eprintln!("{} problem(s) found", errors.len() + look.len());
            ExitCode::from(1)
        }
    }
}

/// The config and its compiled setup, or the errors (printed) and exit 1.
fn built(cli: &Cli) -> Result<(Config, vigil::engine::Setup), ExitCode> {
    let (config, text, file) = load_config(cli).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })?;
    match config.build(&file, &text, false, None) {
        Ok(setup) => Ok((config, setup)),
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{} problem(s) found (vigil check lists them too)",
                errors.len()
            );
            Err(ExitCode::from(1))
        }
    }
}

/// A multi-threaded runtime, or the error said and exit status 1.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}

/// `vigil doctor`: 0 when every check passed, 1 when any failed.
fn cmd_doctor(cli: &Cli) -> ExitCode {
    let (config, setup) = match built(cli) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let probes = vigil::doctor::probes(&config, &setup.policies);
    if probes.is_empty() {
        println!(
            "nothing to try: no [[hosts]] with an ssh, http or local executor, no [[sources]], no [[escalation]]"
        );
        return ExitCode::SUCCESS;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let findings = rt.block_on(vigil::doctor::run(probes));
    print!("{}", vigil::doctor::table(&findings));
    let failed = findings.iter().filter(|f| !f.ok).count();
    if failed == 0 {
        println!("all {} checks ok", findings.len());
        ExitCode::SUCCESS
    } else {
        println!("{failed} of {} checks failed", findings.len());
        ExitCode::from(1)
    }
}

/// Where a policy is evaluated, in words.
fn policy_where(config: &Config, p: &vigil::policy::Policy) -> String {
    match (&p.query, config.query_source(p)) {
        (Some(_), Some(s)) => format!("prometheus {}", s.name),
        (Some(_), None) => "prometheus (none configured)".into(),
        (None, _) => "vigil samples".into(),
    }
}

/// `vigil policies list | show NAME`: 0, 1 on an unknown name or a bad config.
fn cmd_policies(cli: &Cli, cmd: &PoliciesCmd) -> ExitCode {
    let (config, setup) = match built(cli) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let fmt_for = |p: &vigil::policy::Policy| vigil::units::fmt_delta(p.hold);
    match cmd {
        PoliciesCmd::List => {
            println!(
                "{:<26} {:<20} {:<9} {:<6} {:<17} CONDITION",
                "NAME", "EVALUATED BY", "SEVERITY", "FOR", "RUNBOOK"
            );
            for p in &setup.policies {
                println!(
                    "{:<26} {:<20} {:<9} {:<6} {:<17} {}",
                    p.name,
                    policy_where(&config, p),
                    p.severity.as_str(),
                    fmt_for(p),
                    p.runbook.as_deref().unwrap_or("-"),
                    p.fire_text
                );
            }
            ExitCode::SUCCESS
        }
        PoliciesCmd::Show { name } => {
            let Some(p) = setup.policies.iter().find(|p| &p.name == name) else {
                eprintln!(
                    "error: no policy {name:?}; known: {}",
                    setup
                        .policies
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return ExitCode::from(1);
            };
            println!("name:         {}", p.name);
            if !p.description.is_empty() {
                println!("description:  {}", p.description);
            }
            println!("evaluated by: {}", policy_where(&config, p));
            println!("fires when:   {}", p.fire_text);
            println!("for:          {}", fmt_for(p));
            println!("resolves:     {}", p.resolve_text);
            println!("severity:     {}", p.severity.as_str());
            if let Some(q) = &p.query {
                for (i, (_, sev)) in p.severities.iter().enumerate() {
                    if let Some((_, e)) = q.queries.get(q.queries.len() - p.severities.len() + i) {
                        println!("  {:<11} when {e}", sev.as_str());
                    }
                }
            } else if !p.severities.is_empty() {
                println!("  (plus {} severity rule(s))", p.severities.len());
            }
            println!(
                "one alert per: {}",
                p.group_by
                    .as_ref()
                    .map(|g| g.join(", "))
                    .unwrap_or_else(|| "every label of the series".into())
            );
            println!("runbook:      {}", p.runbook.as_deref().unwrap_or("-"));
            ExitCode::SUCCESS
        }
    }
}

/// `vigil man`: the man page from the CLI definition.
fn cmd_man() -> ExitCode {
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
        eprintln!("error: cannot render the man page: {e}");
        return ExitCode::from(1);
    }
    match std::io::stdout().write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

fn catalog_for(cli: &Cli) -> Result<(Catalog, Config), String> {
    let (config, _text, _file) = load_config(cli).map_err(|e| e.to_string())?;
    let catalog = Catalog::load(config.runbook_dir.as_deref(), &config.runbooks).map_err(|es| {
        es.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok((catalog, config))
}

fn cmd_runbooks(cli: &Cli, cmd: &RunbooksCmd) -> ExitCode {
    let (catalog, config) = match catalog_for(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match cmd {
        RunbooksCmd::List => {
            println!(
                "{:<18} {:<6} {:<28} {:<9} {:<8} {:<7} ALERTS",
                "NAME", "RISK", "APPROVAL", "COOLDOWN", "MAX_RUNS", "STEPS"
            );
            for rb in &catalog.runbooks {
                println!(
                    "{:<18} {:<6} {:<28} {:<9} {:<8} {:<7} {}",
                    rb.name(),
                    rb.spec.risk.as_str(),
                    rb.approval.describe(),
                    vigil::units::fmt_delta(rb.cooldown),
                    rb.max_runs.to_string(),
                    rb.spec.steps.len(),
                    rb.spec.matches.alertname.join(",")
                );
            }
            ExitCode::SUCCESS
        }
        RunbooksCmd::Show { name } => match catalog.get(name) {
            Some(rb) => {
                match vigil::runbook::source_of(config.runbook_dir.as_deref(), name) {
                    Some(src) => {
                        println!("# {}", src.file);
                        print!("{}", src.text);
                    }
                    None => match toml::to_string_pretty(&rb.spec) {
                        Ok(t) => print!("{t}"),
                        Err(e) => eprintln!("error: {e}"),
                    },
                }
                println!(
                    "# in force: approval {}, cooldown {}, max_runs {}, verify window {}, attempts {}",
                    rb.approval.describe(),
                    vigil::units::fmt_delta(rb.cooldown),
                    rb.max_runs,
                    vigil::units::fmt_delta(rb.verify_window),
                    rb.max_attempts
                );
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "error: no runbook named {name:?}; known: {}",
                    catalog
                        .runbooks
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                ExitCode::from(1)
            }
        },
        RunbooksCmd::Plan {
            name,
            target,
            params,
        } => {
            let Some(rb) = catalog.get(name) else {
                eprintln!(
                    "error: no runbook named {name:?}; known: {}",
                    catalog
                        .runbooks
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return ExitCode::from(1);
            };
            let mut explicit = BTreeMap::new();
            for p in params {
                let Some((k, v)) = p.split_once('=') else {
                    eprintln!("error: --param {p:?} is not K=V");
                    return ExitCode::from(1);
                };
                explicit.insert(k.to_string(), v.to_string());
            }
            let inventory = vigil::engine::Inventory::new(
                config.hosts.iter().map(|h| h.spec()).collect(),
                None,
            );
            let facts = inventory.facts(target);
            let mut alert = Labels::new();
            alert.insert("host".into(), target.clone());
            let resolved = match rb.resolve_params(&alert, &facts, &explicit) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: param_invalid: {}", e.message);
                    return ExitCode::from(1);
                }
            };
            if let Some((p, v, g)) = rb.protected_hit(&resolved) {
                println!(
                    "# note: {p}={v:?} is protected (matches {g:?}); the engine would block this (protected_target)"
                );
            }
            println!("# {} on {target} with {}", rb.name(), fmt_params(&resolved));
            for (i, s) in rb.plan(target, &resolved).iter().enumerate() {
                println!(
                    "{}. {}{} (timeout {})",
                    i + 1,
                    if s.rollback {
                        "[rollback] "
                    } else if s.read_only {
                        "[read-only] "
                    } else {
                        ""
                    },
                    s.name,
                    vigil::units::fmt_delta(s.timeout)
                );
                println!(
                    "   argv: {}",
                    serde_json::to_string(&s.argv).unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
    }
}

fn fmt_params(p: &BTreeMap<String, String>) -> String {
    if p.is_empty() {
        return "no parameters".into();
    }
    p.iter()
        .map(|(k, v)| format!("{k}={}", vigil::runbook::shell_quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn cmd_audit(cli: &Cli, cmd: &AuditCmd) -> ExitCode {
    // A broken config must not send the check to another store unnoticed.
    let config = match load_config(cli) {
        Ok((c, _, _)) => c,
        Err(e) if cli.config.is_some() => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("warning: {e}\n  reading the data dir's store without it");
            Config::default()
        }
    };
    let dir = data_dir(cli, &config);
    let mut store = match AnyStore::open_read_only(config.store.as_ref(), &dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match cmd {
        AuditCmd::Verify => match store.verify() {
            Ok(report) => match &report.first_bad {
                None => {
                    println!(
                        "ok: {} records, hash chain intact ({})",
                        report.records,
                        store.path().display()
                    );
                    ExitCode::SUCCESS
                }
                Some(bad) => {
                    eprintln!("error: audit trail broken at seq {}: {}", bad.seq, bad.why);
                    ExitCode::from(1)
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        AuditCmd::Export { format, since } => {
            if format != "jsonl" {
                eprintln!("error: --format {format:?} is not supported; accepted: jsonl");
                return ExitCode::from(2);
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match store.export_jsonl(&mut out, *since) {
                Ok(_) => {
                    let _ = out.flush();
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        AuditCmd::Tail { count } => match store.tail(*count) {
            Ok(records) => {
                for r in records {
                    println!("{}", r.summary());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
    }
}

/// The runtime and a prepared hub, or the exit code after printing why not.
/// `serve`: `vigil serve` (logs to stderr too; may join a shared store).
fn start_hub(
    cli: &Cli,
    serve: bool,
) -> Result<
    (
        tokio::runtime::Runtime,
        Prepared,
        tracing_appender::non_blocking::WorkerGuard,
    ),
    ExitCode,
> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(1)
        })?;
    let (p, guard) = start::prepare(&start_options(cli, serve), serve).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })?;
    Ok((rt, p, guard))
}

/// glibc gives every thread that allocates its own arena (up to 8 per
/// core); the hub, the console and the listener hand data between threads,
/// and the freed memory stays spread over the arenas. Two arenas keep the
/// resident size of a console with 10,000 alerts near its live data.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Waits for SIGINT, SIGTERM or the time limit.
async fn wait_for_stop(limit: Option<std::time::Duration>) {
    let sleep = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term_fut = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term_fut => {}
            _ = sleep => {}
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sleep => {}
    }
}

#[allow(dead_code)]
fn scenario_check(file: &str, text: &str) -> Result<(), String> {
    Scenario::parse(file, text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
