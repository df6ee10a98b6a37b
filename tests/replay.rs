//! `vigil replay` as a user runs it: spawn the built binary on every scenario
//! in tests/scenarios/ and check the contract of ARCHITECTURE.md and
//! shared/scenarios/README.md (exit 0 / 1 / 2, the decision log, `--json`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("scenarios")
}

/// The `*.toml` files directly in `dir`, sorted (sub-directories are not
/// part of the suite).
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

fn replay(path: &Path, json: bool) -> Output {
    let mut c = vigil();
    c.arg("replay").arg(path);
    if json {
        c.arg("--json");
    }
    c.output()
        .unwrap_or_else(|e| panic!("cannot run vigil replay {}: {e}", path.display()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_scenario_meets_its_expectations() {
    let files = toml_files(&scenarios_dir());
    assert!(
        files.len() >= 17,
        "expected the 3 shared examples and at least 14 more scenarios, found {}",
        files.len()
    );
    for shared in [
        "backup-window.toml",
        "crash-loop-breaker.toml",
        "memory-leak-restart.toml",
    ] {
        assert!(
            files
                .iter()
                .any(|f| f.file_name().is_some_and(|n| n == shared)),
            "the shared example {shared} is missing from tests/scenarios/"
        );
    }
    let mut failures = Vec::new();
    for f in &files {
        let out = replay(f, false);
        if out.status.code() != Some(0) {
            failures.push(format!(
                "{} exited {:?}\n--- stdout\n{}--- stderr\n{}",
                f.display(),
                out.status.code(),
                text(&out.stdout),
                text(&out.stderr)
            ));
        } else {
            let stdout = text(&out.stdout);
            assert!(
                stdout.lines().any(|l| l.starts_with("PASS ")),
                "{}: exit 0 but no PASS line:\n{stdout}",
                f.display()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The line each invalid file's error may name (where the problem is, or
/// the start of the table that holds it).
fn expected_lines(name: &str) -> &'static [usize] {
    match name {
        // the unclosed inline table
        "bad-toml-syntax.toml" => &[11],
        // the second [[events]] (header or one of its keys)
        "event-two-kinds.toml" => &[12, 13, 14, 15],
        // the event with at = "ten minutes"
        "bad-duration.toml" => &[12, 13],
        // the [[maintenance]] entry / its schedule
        "bad-cron.toml" => &[8, 10],
        _ => &[],
    }
}

/// Finds `PATH:LINE:` in `stderr` and returns LINE.
fn location_line(stderr: &str, path: &str) -> Option<usize> {
    let mut rest = stderr;
    while let Some(i) = rest.find(path) {
        let after = &rest[i + path.len()..];
        if let Some(tail) = after.strip_prefix(':') {
            let digits: String = tail.chars().take_while(|c| c.is_ascii_digit()).collect();
            if !digits.is_empty() && tail[digits.len()..].starts_with(':') {
                return digits.parse().ok();
            }
        }
        rest = after;
    }
    None
}

#[test]
fn invalid_scenarios_exit_2_naming_file_and_line() {
    let files = toml_files(&scenarios_dir().join("invalid"));
    assert!(
        files.len() >= 3,
        "expected at least 3 invalid scenarios, found {}",
        files.len()
    );
    for f in &files {
        let out = replay(f, false);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{} should be rejected with exit 2\n--- stdout\n{}--- stderr\n{stderr}",
            f.display(),
            text(&out.stdout)
        );
        let path = f.display().to_string();
        let line = location_line(&stderr, &path)
            .unwrap_or_else(|| panic!("stderr does not name {path}:LINE: -- got:\n{stderr}"));
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let allowed = expected_lines(&name);
        if !allowed.is_empty() {
            assert!(
                allowed.contains(&line),
                "{name}: error points at line {line}, expected one of {allowed:?}:\n{stderr}"
            );
        }
        assert!(
            out.stdout.is_empty(),
            "{name}: nothing should be replayed:\n{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn replay_of_a_missing_file_exits_2() {
    let out = replay(&scenarios_dir().join("no-such-scenario.toml"), false);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no-such-scenario.toml"));
}

fn check_json_log(name: &str, stdout: &str) -> usize {
    let mut last_at: Option<chrono::DateTime<chrono::FixedOffset>> = None;
    let mut n = 0;
    for (i, line) in stdout.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{name}: line {} is not JSON ({e}): {line}", i + 1));
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("{name}: line {} is not a JSON object: {line}", i + 1));
        let seq = obj.get("seq").and_then(|s| s.as_u64());
        assert_eq!(
            seq,
            Some(i as u64 + 1),
            "{name}: seq out of order at line {}: {line}",
            i + 1
        );
        let at = obj
            .get("at")
            .and_then(|s| s.as_str())
            .unwrap_or_else(|| panic!("{name}: no `at` string: {line}"));
        assert!(at.ends_with('Z'), "{name}: `at` is not UTC with Z: {at}");
        let t = chrono::DateTime::parse_from_rfc3339(at)
            .unwrap_or_else(|e| panic!("{name}: `at` {at:?} is not RFC 3339: {e}"));
        if let Some(prev) = last_at {
            assert!(
                t >= prev,
                "{name}: the virtual clock went backwards at seq {}: {line}",
                i + 1
            );
        }
        last_at = Some(t);
        let kind = obj.get("kind").and_then(|s| s.as_str()).unwrap_or("");
        assert!(
            !kind.is_empty() && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{name}: bad `kind` in {line}"
        );
        n += 1;
    }
    n
}

#[test]
fn json_log_is_one_object_per_line_with_seq_at_kind() {
    let files = toml_files(&scenarios_dir());
    let mut total = 0;
    for f in &files {
        let out = replay(f, true);
        let name = f.display().to_string();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name} --json:\n{}",
            text(&out.stderr)
        );
        total += check_json_log(&name, &text(&out.stdout));
    }
    assert!(total > 0, "no records at all");

    // A known log: the crash-loop example's kinds, in order of first appearance.
    let out = replay(&scenarios_dir().join("crash-loop-breaker.toml"), true);
    let kinds: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("no {k} in {kinds:?}"))
    };
    assert!(pos("alert_firing") < pos("action_started"));
    assert!(pos("action_started") < pos("action_succeeded"));
    assert!(pos("action_succeeded") < pos("verification_passed"));
    assert!(pos("verification_passed") < pos("circuit_opened"));
    assert!(pos("circuit_opened") < pos("escalated"));
    assert_eq!(kinds.iter().filter(|k| *k == "action_started").count(), 3);
}

fn temp_scenario(body: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .prefix("vigil-unmet-")
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    f.write_all(body.as_bytes()).expect("write temp scenario");
    f.flush().expect("flush");
    f
}

const UNMET: &str = r#"
name = "deliberately-unmet"
description = "A disk cleanup that works; the expectations claim otherwise."
start = "2026-03-01T10:00:00Z"

[[hosts]]
name = "web-01"
labels = { env = "prod" }
services = ["nginx"]

[config.runbooks.disk_cleanup]
cooldown = "0s"

[[events]]
at = "0s"
metric = { name = "disk_used_percent", value = 92.0, labels = { host = "web-01", mountpoint = "/" } }

[[events]]
at = "3m"
metric = { name = "disk_used_percent", value = 93.0, labels = { host = "web-01", mountpoint = "/" } }

[outcomes]
"disk_cleanup@web-01" = { result = "success", set = { disk_used_percent = 60.0 } }

# met: it does run
[[expect.records]]
kind = "action_started"
runbook = "disk_cleanup"
target = "web-01"

# unmet: it is never escalated
[[expect.records]]
kind = "escalated"
target = "web-01"

# unmet: the verification does pass
[[expect.absent]]
kind = "verification_passed"
runbook = "disk_cleanup"

# unmet: it runs twice (once per firing)
[expect.max_executions]
"disk_cleanup@web-01" = 1
"#;

#[test]
fn unmet_expectations_exit_1_and_are_printed() {
    let f = temp_scenario(UNMET);
    let out = replay(f.path(), false);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1\n--- stdout\n{stdout}--- stderr\n{}",
        text(&out.stderr)
    );
    let unmet: Vec<&str> = stdout.lines().filter(|l| l.starts_with("UNMET")).collect();
    assert_eq!(
        unmet.len(),
        3,
        "expected exactly the three unmet lines:\n{stdout}"
    );
    assert!(
        unmet
            .iter()
            .any(|l| l.contains("escalated") && l.contains("web-01")),
        "the missing escalated record is not reported:\n{stdout}"
    );
    assert!(
        unmet.iter().any(|l| l.contains("verification_passed")),
        "the unwanted verification_passed is not reported:\n{stdout}"
    );
    assert!(
        unmet
            .iter()
            .any(|l| l.contains("disk_cleanup@web-01") && l.trim_end().ends_with('2')),
        "the max_executions overrun is not reported with its count:\n{stdout}"
    );
    assert!(
        !unmet
            .iter()
            .any(|l| l.contains("action_started") && !l.contains("disk_cleanup@web-01")),
        "the met expectation is reported as unmet:\n{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("FAIL ")),
        "no FAIL summary line:\n{stdout}"
    );

    // With --json the log stays pure JSON on stdout; the verdict goes to stderr.
    let out = replay(f.path(), true);
    assert_eq!(out.status.code(), Some(1));
    let n = check_json_log("deliberately-unmet --json", &text(&out.stdout));
    assert!(n > 0);
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("UNMET")).count(),
        3,
        "{stderr}"
    );
}

#[test]
fn scenario_without_expect_exits_0() {
    let body = UNMET.split("# met: it does run").next().unwrap();
    let f = temp_scenario(body);
    let out = replay(f.path(), false);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
