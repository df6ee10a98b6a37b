//! Every duration, count and ratio has an accepted range: a value outside
//! it is refused by `vigil check` (exit 1) and `vigil replay` (exit 2) with
//! the file, the line, the key, the value and the range, never a panic.
//! The binary is spawned as a user runs it.

use std::path::Path;

#[path = "cli_support/mod.rs"]
mod cli_support;

use cli_support::{text, vigil};

/// One out-of-range value: a config fragment (every key under a table
/// header), the text of the offending line, and what the error must say.
struct Case {
    config: &'static str,
    bad_line: &'static str,
    says: &'static [&'static str],
}

const HUGE: &str = "10000000y";

fn cases() -> Vec<Case> {
    vec![
        Case {
            config: "[settings]\napproval_expiry = \"10000000y\"\n",
            bad_line: "approval_expiry",
            says: &["settings.approval_expiry", HUGE, "1m..7d"],
        },
        Case {
            config: "[settings]\ndry_run = true\napproval_expiry = \"5s\"\n",
            bad_line: "approval_expiry",
            says: &["settings.approval_expiry", "5s", "1m..7d"],
        },
        Case {
            config: "[settings]\nretry_backoff = \"10000000y\"\n",
            bad_line: "retry_backoff",
            says: &["settings.retry_backoff", HUGE, "1s..1h"],
        },
        Case {
            config: "[settings]\nblast_radius = 1.5\n",
            bad_line: "blast_radius",
            says: &["settings.blast_radius", "1.5", "at most 1"],
        },
        Case {
            config: "[settings]\nmax_parallel_runs = 100000\n",
            bad_line: "max_parallel_runs",
            says: &["settings.max_parallel_runs", "100000", "1..1024"],
        },
        Case {
            config: "[[policies]]\nname = \"Hot\"\nwhen = \"temp > 3\"\nfor = \"10000000y\"\n",
            bad_line: "for = ",
            says: &["Hot", "for", HUGE, "0s..1d"],
        },
        Case {
            config: "[runbooks.service_restart]\napproval = \"auto\"\ncooldown = \"10000000y\"\n",
            bad_line: "cooldown",
            says: &["[runbooks.service_restart]", "cooldown", HUGE, "0s..7d"],
        },
        Case {
            config: "[runbooks.service_restart]\nmax_runs = \"3/10000000y\"\n",
            bad_line: "max_runs",
            says: &["max_runs", "3/10000000y", "1s..30d"],
        },
        Case {
            config: "[runbooks.disk_cleanup]\nmax_runs = \"5000/1h\"\n",
            bad_line: "max_runs",
            says: &["[runbooks.disk_cleanup]", "5000/1h", "1..1000"],
        },
        Case {
            config: "[runbooks.service_restart]\nmax_attempts = 0\n",
            bad_line: "max_attempts",
            says: &["max_attempts = 0", "1..10"],
        },
        Case {
            config: "[runbooks.service_restart]\nmax_attempts = 4000000000\n",
            bad_line: "max_attempts",
            says: &["max_attempts = 4000000000", "1..10"],
        },
        Case {
            config: "[runbooks.log_rotation]\nverify_window = \"10000000y\"\n",
            bad_line: "verify_window",
            says: &["verify_window", HUGE, "0s..1d"],
        },
        Case {
            config: "[analysis.llm]\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\ntimeout = \"10000000y\"\n",
            bad_line: "timeout",
            says: &["analysis.llm.timeout", HUGE, "at most 10m"],
        },
        Case {
            config: "[listener]\nrate_limit = 0\n",
            bad_line: "rate_limit",
            says: &["listener.rate_limit = 0", "1..1000000"],
        },
        Case {
            config: "[[sources]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:9093\"\ninterval = \"10000000y\"\n",
            bad_line: "interval",
            says: &["interval", HUGE, "10ms..1h"],
        },
        Case {
            config: "[[sources]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:9093\"\ntimeout = \"1h\"\n",
            bad_line: "timeout",
            says: &["timeout", "1h", "10ms..5m"],
        },
        Case {
            config: "[[escalation]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\nmax_attempts = 100\n",
            bad_line: "max_attempts",
            says: &["max_attempts = 100", "1..20"],
        },
        Case {
            config: "[[escalation]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\nbackoff = \"10000000y\"\n",
            bad_line: "backoff",
            says: &["backoff", HUGE, "10ms..1h"],
        },
        Case {
            config: "[[escalation]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\ntimeout = \"2h\"\n",
            bad_line: "timeout",
            says: &["timeout", "2h", "10ms..5m"],
        },
        Case {
            config: "[[maintenance]]\nselector = { host = \"db-01\" }\nschedule = \"0 2 * * *\"\nduration = \"10000000y\"\n",
            bad_line: "duration",
            says: &["duration", HUGE, "1s..31d"],
        },
        Case {
            config: "[[hosts]]\nname = \"web-1\"\nexecutor = \"ssh\"\n[hosts.ssh]\nport = 70000\n",
            bad_line: "port",
            says: &["port", "70000", "1..65535"],
        },
        Case {
            config: "[[hosts]]\nname = \"web-1\"\nexecutor = \"ssh\"\n[hosts.ssh]\nconnect_timeout = 1000\n",
            bad_line: "connect_timeout",
            says: &["connect_timeout", "1000", "1..300"],
        },
        Case {
            config: "[[hosts]]\nname = \"web-1\"\nexecutor = \"ssh\"\n[hosts.ssh]\ncontrol_persist = \"10000000y\"\n",
            bad_line: "control_persist",
            says: &["control_persist", HUGE, "0s..1d"],
        },
        Case {
            config: "[[hosts]]\nname = \"api\"\nexecutor = \"http\"\n[hosts.http]\nurl = \"http://127.0.0.1:9/api\"\npoll_interval = \"10000000y\"\n",
            bad_line: "poll_interval",
            says: &["poll_interval", HUGE, "10ms..5m"],
        },
        Case {
            config: "[[hosts]]\nname = \"api\"\nexecutor = \"http\"\n[hosts.http]\nurl = \"http://127.0.0.1:9/api\"\nmax_wait = \"10000000y\"\n",
            bad_line: "max_wait",
            says: &["max_wait", HUGE, "1s..7d"],
        },
        Case {
            config: "[[hosts]]\nname = \"api\"\nexecutor = \"http\"\n[hosts.http]\nurl = \"http://127.0.0.1:9/api\"\nretries = 99\n",
            bad_line: "retries",
            says: &["retries", "99", "0..20"],
        },
    ]
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_with(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {text}"))
        + 1
}

fn assert_says(out: &str, file: &Path, line: usize, case: &Case) {
    let at = format!("{}:{line}:", file.display());
    assert!(out.contains(&at), "expected {at} in:\n{out}");
    let msg = out
        .lines()
        .find(|l| l.contains(&at))
        .unwrap_or_default()
        .to_string();
    for s in case.says {
        assert!(
            msg.contains(s),
            "expected {s:?} in {msg:?}\nconfig:\n{}",
            case.config
        );
    }
    assert!(!out.contains("panicked"), "{out}");
}

#[test]
fn check_refuses_every_out_of_range_value_with_file_line_key_value_and_range() {
    let dir = tempfile::tempdir().unwrap();
    for (i, case) in cases().iter().enumerate() {
        let cfg = dir.path().join(format!("config-{i}.toml"));
        let body = format!("operator = \"ana\"\n\n{}", case.config);
        std::fs::write(&cfg, &body).unwrap();
        let o = vigil(&["check", "--config", cfg.to_str().unwrap()]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{}\n{out}", case.config);
        assert_says(&out, &cfg, line_with(&body, case.bad_line), case);
    }
}

/// The same fragment as a scenario's `[config]`: table headers move under
/// `config.`.
fn as_scenario(config: &str) -> String {
    let mut s = String::from(
        "name = \"bounds\"\nstart = \"2026-05-01T00:00:00Z\"\n\n\
         [[events]]\nat = \"0s\"\nmetric = { name = \"disk_used_percent\", value = 50.0, labels = { host = \"web-1\" } }\n\n",
    );
    for line in config.lines() {
        if let Some(rest) = line.strip_prefix("[[") {
            s.push_str(&format!("[[config.{rest}\n"));
        } else if let Some(rest) = line.strip_prefix('[') {
            s.push_str(&format!("[config.{rest}\n"));
        } else {
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

#[test]
fn replay_refuses_every_out_of_range_value_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (i, case) in cases().iter().enumerate() {
        let file = dir.path().join(format!("scenario-{i}.toml"));
        let body = as_scenario(case.config);
        std::fs::write(&file, &body).unwrap();
        let o = vigil(&["replay", file.to_str().unwrap()]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{body}\n{out}");
        assert_says(&out, &file, line_with(&body, case.bad_line), case);
    }
}

#[test]
fn replay_refuses_out_of_range_offsets_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let head = "name = \"bounds\"\nstart = \"2026-05-01T00:00:00Z\"\n";
    let metric =
        "metric = { name = \"disk_used_percent\", value = 50.0, labels = { host = \"web-1\" } }";
    for (body, bad_line, says) in [
        (
            format!("{head}\n[[events]]\nat = \"10000000y\"\n{metric}\n"),
            "at = ",
            &["events.at", HUGE, "0s..366d"][..],
        ),
        (
            format!("{head}end = \"10000000y\"\n\n[[events]]\nat = \"1m\"\n{metric}\n"),
            "end = ",
            &["end", HUGE, "0s..366d"][..],
        ),
        (
            format!(
                "{head}\n[[events]]\nat = \"1m\"\nmetric = {{ name = \"x\", value = inf, labels = {{ host = \"a\" }} }}\n"
            ),
            "metric = ",
            &["metric.value", "inf", "finite"][..],
        ),
        (
            format!(
                "{head}\n[[events]]\nat = \"1m\"\n{metric}\n\n[outcomes]\n\"disk_cleanup@web-1\" = {{ result = \"success\", set = {{ disk_used_percent = nan }} }}\n"
            ),
            "disk_cleanup@web-1",
            &["disk_used_percent", "NaN", "finite"][..],
        ),
    ] {
        let file = dir.path().join("s.toml");
        std::fs::write(&file, &body).unwrap();
        let o = vigil(&["replay", file.to_str().unwrap()]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{body}\n{out}");
        let at = format!("{}:{}:", file.display(), line_with(&body, bad_line));
        assert!(out.contains(&at), "expected {at} in {out}");
        for s in says {
            assert!(out.contains(s), "expected {s:?} in {out}");
        }
    }
}

#[test]
fn check_refuses_out_of_range_values_in_runbook_files() {
    let dir = tempfile::tempdir().unwrap();
    let rb_dir = dir.path().join("runbooks");
    std::fs::create_dir(&rb_dir).unwrap();
    let runbook = "name = \"restart_it\"\n\
                   cooldown = \"1m\"\n\
                   [match]\nalertname = [\"Down\"]\n\n\
                   [[steps]]\nname = \"restart\"\nargv = [\"true\"]\ntimeout = \"10000000y\"\n\n\
                   [verify]\nwindow = \"2d\"\n";
    let rb = rb_dir.join("restart_it.toml");
    std::fs::write(&rb, runbook).unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!("runbook_dir = {:?}\n", rb_dir.display().to_string()),
    )
    .unwrap();
    let o = vigil(&["check", "--config", cfg.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let at = format!("{}:{}:", rb.display(), line_with(runbook, "timeout"));
    assert!(out.contains(&at), "expected {at} in {out}");
    assert!(
        out.contains("steps[0].timeout") && out.contains(HUGE) && out.contains("1s..1d"),
        "{out}"
    );

    std::fs::write(&rb, runbook.replace("10000000y", "30s")).unwrap();
    let o = vigil(&["check", "--config", cfg.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let at = format!("{}:{}:", rb.display(), line_with(runbook, "window"));
    assert!(
        out.contains(&at) && out.contains("verify.window") && out.contains("0s..1d"),
        "{out}"
    );
}

#[test]
fn serve_refuses_to_start_on_an_out_of_range_value() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let body = "operator = \"ana\"\n[settings]\nretry_backoff = \"10000000y\"\n";
    std::fs::write(&cfg, body).unwrap();
    let data = dir.path().join("data");
    let o = vigil(&[
        "serve",
        "--config",
        cfg.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--duration",
        "1s",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("{}:3:", cfg.display())) && out.contains("1s..1h"),
        "{out}"
    );
}

#[test]
fn values_inside_the_ranges_pass() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[settings]\napproval_expiry = \"7d\"\nretry_backoff = \"1h\"\nmax_parallel_runs = 1024\n\
         [runbooks.service_restart]\ncooldown = \"0s\"\nmax_runs = \"1000/30d\"\nmax_attempts = 10\nverify_window = \"1d\"\n\
         [listener]\nrate_limit = 1000000\n\
         [[policies]]\nname = \"Hot\"\nwhen = \"temp > 3\"\nfor = \"1d\"\n",
    )
    .unwrap();
    let o = vigil(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
