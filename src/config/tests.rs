use super::*;

#[test]
fn empty_config_gives_the_defaults() {
    let c = Config::parse("c.toml", "").unwrap();
    let s = c.build("c.toml", "", false, Some("sim".into())).unwrap();
    assert_eq!(s.policies.len(), 6);
    assert_eq!(s.catalog.runbooks.len(), 6);
}

#[test]
fn series_budget_settings_have_ranges() {
    let text = "[settings]\nseries_ttl = \"2h\"\nmax_series_per_metric = 5000\n";
    let c = Config::parse("c.toml", text).unwrap();
    let s = c.build("c.toml", text, false, None).unwrap();
    assert_eq!(s.settings.series.ttl, chrono::TimeDelta::hours(2));
    assert_eq!(s.settings.series.per_metric, 5000);
    let d = Config::parse("c.toml", "")
        .unwrap()
        .build("c.toml", "", false, None)
        .unwrap();
    assert_eq!(d.settings.series.ttl, chrono::TimeDelta::hours(1));
    assert_eq!(d.settings.series.per_metric, 100_000);

    let text = "[settings]\nseries_ttl = \"10s\"\nmax_series_per_metric = 0\n";
    let c = Config::parse("c.toml", text).unwrap();
    let e = c.build("c.toml", text, false, None).unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].line, Some(2));
    assert!(
        e[0].message
            .contains("settings.series_ttl = \"10s\" is out of range; accepted 5m..30d"),
        "{}",
        e[0]
    );
    assert_eq!(e[1].line, Some(3));
    assert!(
        e[1].message
            .contains("settings.max_series_per_metric = 0 is out of range; accepted 1..1000000"),
        "{}",
        e[1]
    );
}

#[test]
fn unknown_keys_and_bad_values_name_file_and_line() {
    let text = "operator = \"ana\"\n\n[settings]\napproval_expiry = \"soon\"\n";
    let c = Config::parse("c.toml", text).unwrap();
    let e = c.build("c.toml", text, false, None).unwrap_err();
    assert_eq!(e[0].line, Some(4));
    assert!(e[0].message.contains("approval_expiry"), "{}", e[0]);

    let text = "operatr = \"ana\"\n";
    let e = Config::parse("c.toml", text).unwrap_err();
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("operatr"), "{e}");
}

#[test]
fn bad_policy_and_window_are_located() {
    let text = r#"
[[policies]]
name = "Hot"
when = "temp >> 3"

[[maintenance]]
selector = { host = "a" }
schedule = "0 2 * *"
duration = "1h"
"#;
    let c = Config::parse("c.toml", text).unwrap();
    let e = c.build("c.toml", text, false, None).unwrap_err();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].line, Some(3));
    assert_eq!(e[1].line, Some(8));
    assert!(e[1].message.contains("expected 5"));
}

#[test]
fn sources_and_escalation_are_typed_and_located() {
    let text = r#"
[listener]
token_env = "VIGIL_TOKEN"

[[sources]]
name = "am"
kind = "alertmanager"
url = "http://127.0.0.1:9093"
interval = "often"

[[escalation]]
name = "pd"
kind = "pagerduty"
"#;
    let c = Config::parse("c.toml", text).unwrap();
    assert_eq!(c.sources[0].kind, SourceKind::Alertmanager);
    let e = c.build("c.toml", text, false, None).unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].line, Some(9));
    assert!(e[0].message.contains("interval"), "{}", e[0]);
    assert_eq!(e[1].line, Some(12));
    assert!(e[1].message.contains("routing_key_env"), "{}", e[1]);

    let text = "[[sources]]\nname = \"x\"\nkind = \"graphite\"\nurl = \"http://a\"\n";
    let e = Config::parse("c.toml", text).unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("alertmanager"), "{e}");

    let text = "[[escalation]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"not a url\"\n";
    let c = Config::parse("c.toml", text).unwrap();
    let e = c.build("c.toml", text, false, None).unwrap_err();
    assert_eq!(e[0].line, Some(4));
}

#[test]
fn runbook_overrides_apply_and_unknown_ones_are_errors() {
    let text = "[runbooks.service_restart]\napproval = \"auto\"\n";
    let c = Config::parse("c.toml", text).unwrap();
    let s = c.build("c.toml", text, false, None).unwrap();
    let rb = s.catalog.get("service_restart").unwrap();
    assert!(!rb.approval.needs_human(crate::model::Severity::Critical));

    let text = "[runbooks.nope]\napproval = \"auto\"\n";
    let c = Config::parse("c.toml", text).unwrap();
    let e = c.build("c.toml", text, false, None).unwrap_err();
    assert!(e[0].message.contains("names no runbook"), "{}", e[0]);
    assert_eq!(e[0].line, Some(1));
}

#[test]
fn site_parameter_errors_point_at_the_config_line() {
    for (text, line, what) in [
        (
            "operator = \"ana\"\n[runbooks.service_restart]\nparams = { drain_seconds = \"abc\" }\n",
            3,
            "drain_seconds (params)",
        ),
        (
            "[runbooks.memory_pressure.params]\n\nkill_allow = \"java;rm\"\n",
            3,
            "kill_allow (params)",
        ),
        (
            "[runbooks.service_restart]\nparams = { nope = \"1\" }\n",
            2,
            "nope: not a parameter",
        ),
    ] {
        let c = Config::parse("site.toml", text).unwrap();
        let e = c.build("site.toml", text, false, None).unwrap_err();
        assert_eq!(e[0].file, "site.toml", "{text}: {}", e[0]);
        assert_eq!(e[0].line, Some(line), "{text}: {}", e[0]);
        assert!(e[0].message.contains(what), "{text}: {}", e[0]);
    }
}

#[test]
fn host_labels_and_promql_sources_are_checked() {
    let text = "[settings]\nhost_labels = []\n";
    let c = Config::parse("c.toml", text).unwrap();
    let e = c.build("c.toml", text, false, None).unwrap_err();
    assert_eq!(e[0].line, Some(2));
    assert!(e[0].message.contains("1..16"), "{}", e[0]);
    let text = "[settings]\nhost_labels = [\"instance\", \"9x\"]\n";
    let c = Config::parse("c.toml", text).unwrap();
    let e = c.build("c.toml", text, false, None).unwrap_err();
    assert!(e[0].message.contains("\"9x\""), "{}", e[0]);
    // A PromQL policy needs a prometheus source.
    let text = "[[policies]]\nname = \"Up\"\nexpr = 'up == 0'\n";
    let c = Config::parse("c.toml", text).unwrap();
    let e = c.build("c.toml", text, false, None).unwrap_err();
    assert_eq!(e[0].line, Some(2));
    assert!(e[0].message.contains("kind = \"prometheus\""), "{}", e[0]);
    // policies = "node_exporter" on an alertmanager, or an unknown value.
    let text = "[[sources]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://a:1\"\npolicies = \"node_exporter\"\n\n[[sources]]\nname = \"p\"\nkind = \"prometheus\"\nurl = \"http://a:2\"\npolicies = \"nodes\"\n";
    let c = Config::parse("c.toml", text).unwrap();
    let e = c.build("c.toml", text, false, None).unwrap_err();
    assert_eq!((e[0].line, e[1].line), (Some(5), Some(11)), "{e:?}");
    // With a node_exporter source the defaults are its PromQL ones.
    let text = "[[sources]]\nname = \"p\"\nkind = \"prometheus\"\nurl = \"http://a:2\"\npolicies = \"node_exporter\"\n";
    let c = Config::parse("c.toml", text).unwrap();
    let s = c.build("c.toml", text, false, None).unwrap();
    assert_eq!(s.policies.len(), 6);
    assert!(s.policies.iter().all(|p| p.query.is_some()));
}

#[test]
fn approvals_come_from_the_override_then_the_file_then_the_risk() {
    // service_restart and connection_reset are medium risk, memory_pressure high.
    let text = "[settings]\napprovals_by_risk = { high = 3, medium = 2 }\n\n[runbooks.connection_reset]\napprovals = 4\n";
    let c = Config::parse("c.toml", text).unwrap();
    let s = c.build("c.toml", text, false, None).unwrap();
    let n = |rb: &str| s.catalog.get(rb).unwrap().approvals;
    assert_eq!(n("connection_reset"), 4, "the override wins");
    assert_eq!(n("memory_pressure"), 3, "high risk");
    assert_eq!(n("service_restart"), 2, "medium risk");
    assert_eq!(n("log_rotation"), 1, "low risk: the default");
    let plain = Config::parse("c.toml", "").unwrap();
    let s = plain.build("c.toml", "", false, None).unwrap();
    assert!(s.catalog.runbooks.iter().all(|r| r.approvals == 1));
}

#[test]
fn approvals_out_of_range_or_of_the_wrong_type_name_the_line_and_the_range() {
    for (text, line) in [
        (
            "operator = \"ana\"\n[runbooks.service_restart]\napprovals = 0\n",
            3,
        ),
        ("[runbooks.service_restart]\n\napprovals = 6\n", 3),
        ("[runbooks.service_restart]\napprovals = \"two\"\n", 2),
        ("[runbooks.service_restart]\napprovals = 1.5\n", 2),
        ("[settings]\napprovals_by_risk = { high = 9 }\n", 2),
    ] {
        let e = Config::parse("c.toml", text).unwrap_err();
        assert_eq!(e.line, Some(line), "{text}: {e}");
        assert!(e.message.contains("1 to 5"), "{text}: {e}");
    }
    let text = "[settings]\napprovals_by_risk = { extreme = 2 }\n";
    let e = Config::parse("c.toml", text).unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("high"), "{e}");
}

#[test]
fn assembling_checks_each_hosts_settings_once_into_how_it_is_reached() {
    let text = "[[hosts]]\nname = \"db\"\nexecutor = \"local\"\n\n[[hosts]]\nname = \"web-1\"\nexecutor = \"ssh\"\n[hosts.ssh]\nhost = \"10.0.0.5\"\nport = 2222\n\n[[hosts]]\nname = \"jobs\"\nexecutor = \"http\"\n[hosts.http]\nurl = \"http://127.0.0.1:9/api/\"\n\n[[hosts]]\nname = \"demo\"\nexecutor = \"sim\"\n";
    let c = Config::parse("c.toml", text).unwrap();
    let a = c.assemble("c.toml", text, false, None).unwrap();
    use crate::exec::HostExecutor;
    assert!(matches!(a.executors.get("db"), Some(HostExecutor::Local)));
    match a.executors.get("web-1") {
        Some(HostExecutor::Ssh(t)) => {
            assert_eq!((t.host.as_str(), t.port), ("10.0.0.5", Some(2222)));
        }
        other => panic!("web-1: {other:?}"),
    }
    match a.executors.get("jobs") {
        Some(HostExecutor::Http(t)) => assert_eq!(t.url, "http://127.0.0.1:9/api"),
        other => panic!("jobs: {other:?}"),
    }
    assert!(
        !a.executors.contains_key("demo"),
        "sim hosts are the fleet's"
    );
    // The engine sees the ssh address alerts may name, not the settings.
    let web = &a.setup.inventory.hosts["web-1"];
    assert_eq!(web.ssh_host.as_deref(), Some("10.0.0.5"));
    assert_eq!(web.executor.as_deref(), Some("ssh"));
}

#[test]
fn an_http_hosts_token_is_not_printed_with_the_config() {
    let text = "[[hosts]]\nname = \"jobs\"\nexecutor = \"http\"\n[hosts.http]\nurl = \"http://127.0.0.1:9/api\"\ntoken = \"s3cr3t-value\"\n";
    let c = Config::parse("c.toml", text).unwrap();
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("s3cr3t-value") && shown.contains("REDACTED"),
        "{shown}"
    );
    let a = c.assemble("c.toml", text, false, None).unwrap();
    match a.executors.get("jobs") {
        Some(crate::exec::HostExecutor::Http(t)) => {
            assert_eq!(t.token.as_ref().map(|s| s.0.as_str()), Some("s3cr3t-value"));
        }
        other => panic!("jobs: {other:?}"),
    }
}
