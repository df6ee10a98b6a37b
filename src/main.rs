//! The `vigil` command line: console, serve, replay, check, runbooks, audit.
//! Parses arguments, loads files and hands over to the library; exit codes
//! are part of the contract (see README.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use vigil::config::{Config, ConfigError, default_config_path, default_data_dir};
use vigil::model::Labels;
use vigil::runbook::{Catalog, RunbookOverride};
use vigil::sim::demo::DemoFleet;
use vigil::sim::scenario::{Scenario, replay_file};
use vigil::store::{AnyStore, AuditWriter, Store};

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
    let path = match &cli.config {
        Some(p) => Some(p.clone()),
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

fn data_dir(cli: &Cli, config: &Config) -> PathBuf {
    cli.data_dir
        .clone()
        .or_else(|| config.data_dir.clone())
        .unwrap_or_else(default_data_dir)
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
    use vigil::analysis::eval;
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
        look.push(match line {
            Some(l) => format!("{file}:{l}: {e}"),
            None => format!("{file}: {e}"),
        });
    }
    // What the hub would meet later on this machine: key files, known
    // hosts, token variables.
    for p in vigil::preflight::check(&config, &text) {
        look.push(match p.line {
            Some(l) => format!("{file}:{l}: {}", p.message),
            None => format!("{file}: {}", p.message),
        });
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
                let builtin = vigil::runbook::BUILTIN.iter().find(|(n, _)| n == name);
                match (
                    config
                        .runbook_dir
                        .as_ref()
                        .map(|d| d.join(format!("{name}.toml"))),
                    builtin,
                ) {
                    (Some(p), _) if p.exists() => {
                        println!("# {}", p.display());
                        print!("{}", std::fs::read_to_string(&p).unwrap_or_default());
                    }
                    (_, Some((_, text))) => {
                        println!("# runbooks/{name}.toml (built in)");
                        print!("{text}");
                    }
                    _ => match toml::to_string_pretty(&rb.spec) {
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
            let inventory = vigil::engine::Inventory::new(config.hosts.clone(), None);
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

/// The operator's identity: the config's, else `$USER`, else `operator`.
fn operator(config: &Config) -> String {
    config
        .operator
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "operator".into())
}

/// Logs to `log_dir/file` (and stderr when asked), never to the terminal
/// the console draws on. `VIGIL_LOG` sets the level (default info).
fn init_logging(
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
struct Prepared {
    hub: vigil::hub::Hub,
    handle: vigil::hub::HubHandle,
    data_dir: PathBuf,
    log_path: PathBuf,
    demo: bool,
    /// Where sources (pollers, the listener) report their health.
    sources: vigil::hub::SourceBoard,
    config: Config,
    /// The compiled policies (the listener's violation checks and
    /// `/api/v1/policies`).
    policies: Vec<vigil::policy::Policy>,
    /// Escalation delivery, when `[[escalation]]` lists any.
    notifier: Option<std::sync::Arc<vigil::notify::Notifier>>,
    /// The data dir's lock, held for the life of the process.
    lock: vigil::owner::DirLock,
}

fn prepare(
    cli: &Cli,
    log_to_stderr: bool,
) -> Result<(Prepared, tracing_appender::non_blocking::WorkerGuard), String> {
    // Whatever the hub creates (store, logs, exports) is its owner's only.
    vigil::private::private_umask();
    let (mut config, text, file) = load_config(cli).map_err(|e| e.to_string())?;
    if let Some(t) = AnyStore::target(config.store.as_ref()).map_err(|e| e.to_string())? {
        return Err(format!(
            "[store] url: a hub on PostgreSQL ({}) is not built yet; `vigil audit` reads it. Remove [store] url to run on the SQLite file in the data dir",
            t.display()
        ));
    }
    let has_config = file != "(no config file: defaults)";
    let demo = cli.demo || config.demo.unwrap_or(false) || !has_config;
    let dir = data_dir(cli, &config);
    let dir_state = vigil::private::private_dir(&dir)?;
    let log_dir = dir.join("logs");
    vigil::private::private_dir(&log_dir)?;
    vigil::private::private_file(&log_dir.join("vigil.log"))?;
    let guard = init_logging(&log_dir, "vigil.log", log_to_stderr)?;
    if let vigil::private::DirState::Tightened(m) = dir_state {
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
        config.hosts.extend(f.hosts());
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
    let mut setup = config
        .build(
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
    let executors = vigil::exec::ExecutorSet::from_hosts(
        &config.hosts,
        vigil::exec::ExecOptions {
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
    let lock = vigil::owner::DirLock::acquire(&dir).map_err(|e| match e {
        vigil::owner::OwnError::Taken { .. } => format!(
            "{e}\n  a console attaches to it: vigil --data-dir {}\n  or stop that hub first",
            dir.display()
        ),
        other => other.to_string(),
    })?;
    let t0 = std::time::Instant::now();
    let store = Store::open(&dir).map_err(|e| e.to_string())?;
    let restored = store.load_state().map_err(|e| e.to_string())?;
    tracing::info!(
        audit_seq = restored.last_seq,
        "store opened and state loaded in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    let writer = AuditWriter::spawn(store).map_err(|e| e.to_string())?;
    let engine = vigil::engine::Engine::new(setup);
    let policies = engine.evaluator().policies().to_vec();
    let op = operator(&config);
    let sources = vigil::hub::SourceBoard::default();
    let notifier = vigil::notify::Notifier::new(&config.escalation).map_err(|e| e.to_string())?;
    let notifier = (!notifier.is_empty()).then(|| std::sync::Arc::new(notifier));
    let (mut hub, handle) = vigil::hub::Hub::new(vigil::hub::HubSetup {
        engine,
        writer,
        restored,
        demo: fleet,
        operator: op.clone(),
        sim_run_time: std::time::Duration::from_secs(3),
        tick: std::time::Duration::from_secs(1),
        executors: Some(executors),
        escalator: notifier
            .clone()
            .map(|n| n as std::sync::Arc<dyn vigil::hub::Escalator>),
        sources: sources.clone(),
    });
    hub.set_prober(
        vigil::ingest::evidence::RuleProber::from_sources(&config.sources)
            .map(|p| std::sync::Arc::new(p) as std::sync::Arc<dyn vigil::hub::Prober>),
    );
    if let Some(a) = &config.analysis {
        hub.set_analysis(a.enabled.unwrap_or(true));
        if let Some(spec) = &a.llm {
            // A missing key or a bad URL leaves the heuristic alone in charge.
            match vigil::analysis::llm::LlmClient::from_spec(spec) {
                Ok(c) => hub.set_llm(Some(c)),
                Err(e) => tracing::warn!("LLM analysis is off: {e}"),
            }
        }
    }
    if cli.dry_run {
        // --dry-run wins over the mode remembered from the last run.
        let _ = handle.events.try_send(vigil::engine::Event::SetDryRun {
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
            notifier,
            lock,
        },
        guard,
    ))
}

/// The runtime and a prepared hub, or the exit code after printing why not.
fn start_hub(
    cli: &Cli,
    log_to_stderr: bool,
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
    let (p, guard) = prepare(cli, log_to_stderr).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })?;
    Ok((rt, p, guard))
}

fn cmd_serve(cli: &Cli, listen: Option<String>, duration: Option<String>) -> ExitCode {
    let limit = match duration
        .as_deref()
        .map(vigil::units::parse_duration)
        .transpose()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: --duration: {e}");
            return ExitCode::from(2);
        }
    };
    vigil::vital::install_panic_hook();
    let (rt, p, _guard) = match start_hub(cli, true) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let opts = match vigil::ingest::ListenerOptions::resolve(listen.as_deref(), &p.config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "vigil serve: {} data in {}, log {}",
        if p.demo {
            "demo fleet,"
        } else {
            "configured sources,"
        },
        p.data_dir.display(),
        p.log_path.display()
    );
    let result = rt.block_on(async move {
        let mut p = p;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        match start_io(&mut p, opts, stop_rx.clone()).await {
            Ok(vigil::ingest::Started { tcp: Ok(_), .. }) => {}
            Ok(vigil::ingest::Started { tcp: Err(e), .. }) | Err(e) => {
                return Err(e.to_string());
            }
        }
        let vitals = p.handle.vitals.clone();
        let hub = vitals.spawn("hub", stop_rx.clone(), p.hub.run(stop_rx));
        let _keep = p.handle;
        let fault = tokio::select! {
            _ = wait_for_stop(limit) => None,
            why = vitals.faulted() => Some(why),
        };
        match &fault {
            None => tracing::info!("shutting down: flushing the audit trail"),
            Some(why) => {
                tracing::error!("stopping on an internal fault: {why}");
                eprintln!("error: internal fault: {why}; flushing the audit trail and stopping");
            }
        }
        let _ = stop_tx.send(true);
        // A hub that died has already flushed its writer while unwinding;
        // a live one drains and flushes now, within a bound.
        let drained = tokio::time::timeout(FAULT_DRAIN, hub).await.is_ok();
        if fault.is_none() && !drained {
            return Err("the hub did not stop within 30 s".to_string());
        }
        let fault = fault.or_else(|| vitals.first_fault());
        Ok(fault)
    });
    match result {
        Ok(None) => {
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Ok(Some(why)) => {
            eprintln!("error: vigil serve stopped on an internal fault ({why}); exit 70");
            ExitCode::from(70)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// How long a stopping hub may take to drain and flush.
const FAULT_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

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

/// Starts the unix socket, the HTTP listener, the pollers and the
/// escalation follower. A socket that cannot be bound is an error; the TCP
/// listener's failure is in `Started::tcp` (and on the source board).
async fn start_io(
    p: &mut Prepared,
    opts: vigil::ingest::ListenerOptions,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<vigil::ingest::Started, vigil::ingest::ListenError> {
    if let Some(n) = &p.notifier {
        n.follow(p.handle.snapshots.clone());
    }
    let started = vigil::ingest::start(
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

/// The directory whose `themes/` and `keymaps/` override the bundled
/// ones: the config file's own directory, else the platform config dir.
fn look_dir(cli: &Cli) -> Option<PathBuf> {
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
fn theme_name(cli: &Cli, config: &Config) -> String {
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
fn cmd_console(cli: &Cli, started: std::time::Instant) -> ExitCode {
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
fn console_setup(
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
fn attach_console(
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
fn own_console(cli: &Cli, started: std::time::Instant) -> ExitCode {
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

#[allow(dead_code)]
fn scenario_check(file: &str, text: &str) -> Result<(), String> {
    Scenario::parse(file, text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
