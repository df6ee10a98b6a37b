use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn builtins_load_and_each_handles_its_default_alert() {
    let c = Catalog::from_sources(
        &BUILTIN
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect::<Vec<_>>(),
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(c.runbooks.len(), 6);
    for (alert, rb) in [
        ("DiskSpaceLow", "disk_cleanup"),
        ("ServiceDown", "service_restart"),
        ("MemoryPressure", "memory_pressure"),
        ("LogFileLarge", "log_rotation"),
        ("ZombieProcesses", "zombie_killer"),
        ("ConnectionPoolExhausted", "connection_reset"),
    ] {
        let cands = c.candidates(&labels(&[("alertname", alert), ("host", "h")]));
        assert_eq!(c.runbooks[cands[0].0].name(), rb, "{alert}");
    }
}

#[test]
fn hostile_label_values_fail_their_pattern_and_are_shown_escaped() {
    let c = Catalog::builtin();
    let rb = c.get("service_restart").unwrap();
    let l = labels(&[
        ("alertname", "ServiceDown"),
        ("host", "h"),
        ("service", "api; rm -rf /\n"),
    ]);
    let e = rb
        .resolve_params(&l, &Labels::new(), &BTreeMap::new())
        .unwrap_err();
    assert_eq!(e.param, "service");
    assert!(e.message.contains("\\n"), "{}", e.message);
    assert!(!e.message.contains('\n'));
}

#[test]
fn protected_values_are_found_unless_allowed() {
    let c = Catalog::builtin();
    let rb = c.get("service_restart").unwrap();
    let mut p = BTreeMap::new();
    p.insert("service".to_string(), "postgresql".to_string());
    p.insert("manager".to_string(), "systemd".to_string());
    assert!(rb.protected_hit(&p).is_some());
    let over = RunbookOverride {
        allow_protected: vec!["postgresql".into()],
        ..Default::default()
    };
    let rb2 = Runbook::compile(rb.spec.clone(), Some(&over)).unwrap();
    assert!(rb2.protected_hit(&p).is_none());
}

#[test]
fn plans_substitute_inside_one_argument() {
    let c = Catalog::builtin();
    let rb = c.get("service_restart").unwrap();
    let mut p = BTreeMap::new();
    p.insert("service".to_string(), "gunicorn".to_string());
    p.insert("manager".to_string(), "systemd".to_string());
    let plan = rb.plan("app-02", &p);
    assert!(
        plan.iter()
            .any(|s| s.argv.contains(&"gunicorn".to_string()))
    );
    assert_eq!(shell_quote("a b'c"), "'a b'\\''c'");
    assert_eq!(shell_quote("/var/log"), "/var/log");
}

#[test]
fn verify_and_rollback_are_planned_and_scripts_take_no_placeholders() {
    let text = r#"
name = "x"
[match]
alertname = ["A"]
[params.svc]
pattern = '[a-z]+'
[[steps]]
name = "go"
argv = ["systemctl", "restart", "{svc}"]
[[rollback]]
name = "undo"
argv = ["systemctl", "stop", "{svc}"]
[verify]
command = ["systemctl", "is-active", "{svc}"]
http = "http://127.0.0.1:8080/{svc}/health"
timeout = "5s"
"#;
    let c = Catalog::from_sources(&[("x.toml".into(), text.into())], &BTreeMap::new()).unwrap();
    let mut p = BTreeMap::new();
    p.insert("svc".to_string(), "api".to_string());
    let plan = c.get("x").unwrap().plan("h", &p);
    let names: Vec<_> = plan.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["go", "verify", "verify http", "undo"]);
    assert!(plan[3].rollback && plan[3].display().starts_with("[rollback] "));
    assert_eq!(plan[2].argv[4], "http://127.0.0.1:8080/api/health");
    assert_eq!(plan[2].argv[5], "5");

    let bad = "name = \"y\"\n[match]\nalertname = [\"A\"]\n[params.v]\npattern = '.*'\n[[steps]]\nname = \"s\"\nargv = [\"sh\", \"-c\", \"echo {v}\"]\n";
    let e = Catalog::from_sources(&[("y.toml".into(), bad.into())], &BTreeMap::new()).unwrap_err();
    assert!(
        e[0].message.contains("inside an inline script"),
        "{}",
        e[0].message
    );
}

#[test]
fn approvals_are_read_from_the_file_and_the_override_wins() {
    let text = "name = \"x\"\nrisk = \"high\"\napprovals = 2\n[match]\nalertname = [\"A\"]\n";
    let c = Catalog::from_sources(&[("x.toml".into(), text.into())], &BTreeMap::new()).unwrap();
    assert_eq!(c.get("x").unwrap().approvals, 2);
    let mut over = BTreeMap::new();
    over.insert(
        "x".to_string(),
        RunbookOverride {
            approvals: Approvals::new(3),
            ..Default::default()
        },
    );
    let mut c = Catalog::from_sources(&[("x.toml".into(), text.into())], &over).unwrap();
    assert_eq!(c.get("x").unwrap().approvals, 3);
    // by risk applies only when neither says
    c.apply_approvals_by_risk(&[(Risk::High, Approvals::new(5).unwrap())].into());
    assert_eq!(c.get("x").unwrap().approvals, 3);

    let bad = "name = \"x\"\n\napprovals = 7\n[match]\nalertname = [\"A\"]\n";
    let e = Catalog::from_sources(&[("x.toml".into(), bad.into())], &BTreeMap::new()).unwrap_err();
    assert_eq!(e[0].line, Some(3));
    assert!(e[0].message.contains("from 1 to 5"), "{}", e[0].message);
    let bad = "name = \"x\"\napprovals = \"2\"\n[match]\nalertname = [\"A\"]\n";
    let e = Catalog::from_sources(&[("x.toml".into(), bad.into())], &BTreeMap::new()).unwrap_err();
    assert_eq!(e[0].line, Some(2));
    assert!(e[0].message.contains("from 1 to 5"), "{}", e[0].message);
}

#[test]
fn broken_runbook_names_file_line_and_key() {
    let text = "name = \"x\"\n[match]\nalertname = [\"A\"]\n[params.p]\nsource = \"label\"\n";
    let e = Catalog::from_sources(&[("x.toml".into(), text.into())], &BTreeMap::new()).unwrap_err();
    assert_eq!(e[0].file, "x.toml");
    assert!(e[0].message.contains("params.p"), "{}", e[0].message);
    assert_eq!(e[0].line, Some(4));
    let text = "name = \"x\"\nrisk = \"extreme\"\n";
    let e = Catalog::from_sources(&[("x.toml".into(), text.into())], &BTreeMap::new()).unwrap_err();
    assert_eq!(e[0].line, Some(2));
}
