//! `vigil rca eval` over the labelled cases in tests/rca: the heuristic must
//! reach the figures the issue asks for, and the command must behave as the
//! README says (spawned as a user would).

use std::path::Path;
use std::process::Command;

use vigil::analysis::Cause;
use vigil::sim::eval::{CaseResult, Report, load_case, run_heuristic};

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

#[test]
fn the_heuristic_meets_the_thresholds_on_the_labelled_cases() {
    let r = run_heuristic(Path::new("tests/rca")).expect("the cases load");
    assert!(
        r.errors.is_empty(),
        "cases that did not load: {:#?}",
        r.errors
    );
    assert!(
        r.cases.len() >= 25,
        "at least 25 cases, got {}",
        r.cases.len()
    );
    let report = r.text();
    assert!(r.runbook_accuracy.ratio >= 0.95, "{report}");
    assert!(r.cause_accuracy.ratio >= 0.95, "{report}");
    assert_eq!(r.evidence_validity.hits, r.evidence_validity.of, "{report}");
    assert!(r.inconclusive_when_it_should.of >= 1, "{report}");
    // Every cause of the fixed list is covered by at least one case.
    for c in Cause::ALL {
        assert!(
            r.cases.iter().any(|x| x.expected_cause == c),
            "no case is labelled {c}"
        );
    }
}

fn case<'a>(r: &'a Report, name: &str) -> &'a CaseResult {
    r.cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("case {name} is missing"))
}

#[test]
fn the_decoys_get_no_wrong_fix() {
    let r = run_heuristic(Path::new("tests/rca")).unwrap();
    let by = |name: &str| case(&r, name);
    let backup = by("backup-spike-not-a-leak");
    assert_eq!(backup.cause, Cause::ScheduledJob);
    assert_ne!(backup.runbook, "memory_pressure");
    for data in [
        "disk-postgres-data-volume",
        "disk-root-mysql-consumer",
        "disk-database-size-growth",
    ] {
        assert_ne!(by(data).runbook, "disk_cleanup", "{data}");
    }
    for lp in ["crash-loop-after-restarts", "memory-restart-loop"] {
        let c = by(lp);
        assert_eq!(c.cause, Cause::CrashLoop, "{lp}");
        assert!(
            !c.runbook.contains("restart") && c.runbook != "memory_pressure",
            "{lp}"
        );
    }
}

#[test]
fn mixed_signals_are_weighed_and_blind_cases_hold() {
    let r = run_heuristic(Path::new("tests/rca")).unwrap();
    let by = |name: &str| case(&r, name);
    // Each kind of mixed signal has several variants.
    for (prefix, at_least) in [
        ("mixed-", 5),
        ("capacity-", 4),
        ("oom-kill-loop-", 3),
        ("spike-", 3),
        ("blind-", 10),
    ] {
        let n = r
            .cases
            .iter()
            .filter(|c| c.name.starts_with(prefix))
            .count();
        assert!(n >= at_least, "{n} {prefix}* cases");
    }
    // The slow log is not blamed when the data directory fills the disk.
    let c = by("mixed-data-dir-outgrows-log");
    assert_eq!(c.cause, Cause::DiskGrowthData);
    assert_eq!(c.runbook, "none");
    assert!(c.summary.contains("99% of the growth"), "{}", c.summary);
    // A runbook that cannot free what is needed is not recommended.
    for name in [
        "capacity-cleanup-cannot-free-enough",
        "capacity-rotation-cannot-free-enough",
        "capacity-restart-frees-too-little",
        "capacity-reset-frees-too-little",
    ] {
        assert_eq!(by(name).runbook, "none", "{name}");
    }
    // Cases written after the code: all right, evidence all valid.
    let blind: Vec<_> = r
        .cases
        .iter()
        .filter(|c| c.name.starts_with("blind-"))
        .collect();
    let right = blind
        .iter()
        .filter(|c| c.cause_ok() && c.runbook_ok())
        .count();
    assert!(right * 100 >= blind.len() * 95, "{right}/{}", blind.len());
    assert!(blind.iter().all(|c| c.evidence_invalid.is_empty()));
}

#[test]
fn the_input_is_taken_at_the_moment_the_last_alert_fired() {
    let case = load_case(Path::new("tests/rca/disk-logs-after-large-logfile.toml"))
        .unwrap()
        .unwrap();
    assert_eq!(case.input.alert.name, "DiskSpaceLow");
    assert!(
        case.input.related.iter().any(|a| a.name == "LogFileLarge"),
        "the earlier alert is in view"
    );
    for s in &case.input.series {
        assert!(
            s.points.iter().all(|p| p.at <= case.input.at),
            "no future points"
        );
    }
    let crash = load_case(Path::new("tests/rca/crash-loop-after-restarts.toml"))
        .unwrap()
        .unwrap();
    assert!(
        crash
            .input
            .records
            .iter()
            .filter(|r| r.kind == vigil::model::RecordKind::ActionStarted)
            .count()
            >= 2,
        "the earlier restarts are in view"
    );
}

#[test]
fn rca_eval_prints_the_figures_and_exits_0() {
    let out = vigil().args(["rca", "eval", "tests/rca"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "top-1 cause accuracy:",
        "top-1 runbook accuracy:",
        "evidence validity:",
        "inconclusive when it should:",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let out = vigil()
        .args(["rca", "eval", "tests/rca", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(v["cause_accuracy"]["ratio"].as_f64().unwrap() >= 0.95);
    assert_eq!(v["analyser"], "heuristic");
}

#[test]
fn rca_eval_reports_bad_input_clearly() {
    let out = vigil()
        .args(["rca", "eval", "/nonexistent/rca-cases"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the directory"));

    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string("tests/rca/zombie-accumulation-cron-parent.toml").unwrap();
    std::fs::write(
        dir.path().join("bad-cause.toml"),
        good.replace("cause = \"zombie_accumulation\"", "cause = \"gremlins\""),
    )
    .unwrap();
    std::fs::write(dir.path().join("good.toml"), &good).unwrap();
    let out = vigil()
        .args(["rca", "eval"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "it ran");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cause = \"gremlins\" is not a cause; expected one of memory_leak"),
        "{text}"
    );
    assert!(
        text.contains("top-1 cause accuracy:        1/2 = 50.0%"),
        "{text}"
    );

    let out = vigil()
        .args(["rca", "eval", "tests/rca", "--analyser", "llm", "--config"])
        .arg(dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_validates_the_analysis_section_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "operator = \"ana\"\n\n[analysis.llm]\nbase_url = \"ftp://models.example\"\nmodel = \"\"\napi_key_env = \"sk-live-123\"\ntimeout = \"soon\"\n",
    )
    .unwrap();
    let out = vigil()
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = cfg.display().to_string();
    assert!(
        err.contains(&format!("{f}:4: analysis.llm.base_url")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:5: analysis.llm.model is empty")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:6: analysis.llm.api_key_env")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:7: analysis.llm.timeout")),
        "{err}"
    );

    std::fs::write(
        &cfg,
        "[analysis.llm]\nbase_url = \"http://127.0.0.1:11434/v1\"\nmodel = \"qwen2.5:7b\"\ntimeout = \"20s\"\n",
    )
    .unwrap();
    let out = vigil()
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::write(
        &cfg,
        "[analysis.llm]\nbase_url = \"http://x\"\nmodel = \"m\"\nkey = \"oops\"\n",
    )
    .unwrap();
    let out = vigil()
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `key`"));
}
