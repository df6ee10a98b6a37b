//! Verification of outside alerts with the rule's own expression, queried
//! on a real Prometheus (the Debian package, started here on 127.0.0.1)
//! scraping a real node_exporter whose textfile collector the runbooks
//! change. Alertmanager's webhook is posted as Alertmanager sends it, with
//! the `generatorURL` that links to the rule; Alertmanager never resolves
//! (as when its group_interval is long), so Prometheus is the only
//! evidence:
//! - a run that brought the value down is escalated, never run again;
//! - a run that left it high fails verification with the value it saw.
//!
//! Runs when VIGIL_E2E=1 (and then fails if Prometheus or node_exporter is
//! missing).

use std::path::Path;
use std::process::Command;

use serde_json::json;

mod server_support;
use server_support::{Kill, audit, free_port, http, serve, spawn, wait_for};

/// The depth series `service` reports through the textfile collector.
fn set_depth(textfiles: &Path, service: &str, v: u32) {
    let tmp = textfiles.join(format!(".{service}.tmp"));
    std::fs::write(
        &tmp,
        format!("vigil_test_queue_depth{{service=\"{service}\"}} {v}\n"),
    )
    .unwrap();
    std::fs::rename(tmp, textfiles.join(format!("{service}.prom"))).unwrap();
}

/// A runbook for `alertname` whose one step runs `argv`.
fn runbook(name: &str, alertname: &str, argv: &[&str]) -> String {
    format!(
        "name = \"{name}\"\ndescription = \"test\"\nrisk = \"low\"\napproval = \"auto\"\n\n[match]\nalertname = [\"{alertname}\"]\n\n[[steps]]\nname = \"drain\"\nargv = {}\ntimeout = \"10s\"\n",
        serde_json::to_string(argv).unwrap()
    )
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: real Prometheus and node_exporter"
)]
fn the_rules_expression_on_prometheus_decides_between_escalating_and_running_again() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let (p_node, p_prom, p_vigil) = (free_port(), free_port(), free_port());
    let textfiles = dir.join("textfiles");
    std::fs::create_dir_all(&textfiles).unwrap();
    set_depth(&textfiles, "worker", 50);
    set_depth(&textfiles, "stuck", 50);

    let mut procs = Kill(Vec::new());
    procs.0.push(spawn(
        Command::new("prometheus-node-exporter").args([
            format!("--web.listen-address=127.0.0.1:{p_node}"),
            "--collector.disable-defaults".into(),
            "--collector.textfile".into(),
            format!("--collector.textfile.directory={}", textfiles.display()),
        ]),
        &dir.join("node.log"),
        "prometheus-node-exporter (apt-get install prometheus-node-exporter)",
    ));
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{p_node}']\n"
        ),
    )
    .unwrap();
    procs.0.push(spawn(
        Command::new("prometheus").args([
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{p_prom}"),
        ]),
        &dir.join("prometheus.log"),
        "prometheus (apt-get install prometheus)",
    ));
    let prom = format!("http://127.0.0.1:{p_prom}");
    let expr = "vigil_test_queue_depth > 10";
    wait_for("Prometheus sees both queues above 10", 60, dir, || {
        let v = http(
            "GET",
            &format!(
                "{prom}/api/v1/query?query={}",
                "vigil_test_queue_depth%20%3E%2010"
            ),
            None,
        )?;
        (v["data"]["result"].as_array()?.len() == 2).then_some(())
    });

    // worker's runbook drains the queue (the value drops to 0); stuck's
    // runbook runs and changes nothing.
    let rb = dir.join("runbooks");
    std::fs::create_dir_all(&rb).unwrap();
    let drained = textfiles.join("worker.prom");
    let script = format!(
        "printf 'vigil_test_queue_depth{{service=\"worker\"}} 0\\n' > {0}.tmp && mv {0}.tmp {0}",
        drained.display()
    );
    std::fs::write(
        rb.join("queue_drain.toml"),
        runbook("queue_drain", "QueueBacklog", &["/bin/sh", "-c", &script]),
    )
    .unwrap();
    std::fs::write(
        rb.join("queue_poke.toml"),
        runbook("queue_poke", "QueueStuck", &["/bin/true"]),
    )
    .unwrap();
    std::fs::write(
        dir.join("vigil.toml"),
        format!(
            "operator = \"ana\"\nlisten = \"127.0.0.1:{p_vigil}\"\nrunbook_dir = \"{}\"\n\n\
             [settings]\nexternal_verify_window = \"15s\"\nretry_backoff = \"1s\"\n\n\
             [runbooks.queue_drain]\nverify_window = \"2s\"\n\
             [runbooks.queue_poke]\nverify_window = \"2s\"\nmax_attempts = 2\n\n\
             [[hosts]]\nname = \"q1\"\nexecutor = \"local\"\n\n\
             [[hosts]]\nname = \"q2\"\nexecutor = \"local\"\n\n\
             [[sources]]\nname = \"prom\"\nkind = \"prometheus\"\nurl = \"{prom}\"\npoll = false\ninterval = \"1s\"\ntimeout = \"2s\"\n",
            rb.display()
        ),
    )
    .unwrap();
    procs.0.push(serve(dir));
    let vigil = format!("http://127.0.0.1:{p_vigil}");
    wait_for("vigil up", 30, dir, || {
        http("GET", &format!("{vigil}/health"), None)
    });

    // What Alertmanager posts for the two alerts of the rule.
    let generator = format!(
        "{prom}/graph?g0.expr={}&g0.tab=1",
        "vigil_test_queue_depth+%3E+10"
    );
    let alert = |name: &str, host: &str, service: &str| {
        json!({
            "status": "firing",
            "labels": {"alertname": name, "host": host, "instance": format!("127.0.0.1:{p_node}"),
                       "job": "node", "service": service, "severity": "warning"},
            "annotations": {"summary": format!("{service} queue above 10")},
            "startsAt": chrono::Utc::now().to_rfc3339(),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": generator,
            "fingerprint": format!("fp-{service}"),
        })
    };
    let payload = json!({
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "vigil", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert("QueueBacklog", "q1", "worker"), alert("QueueStuck", "q2", "stuck")],
    });
    http(
        "POST",
        &format!("{vigil}/hooks/alertmanager"),
        Some(&payload),
    )
    .expect("webhook accepted");

    // The drained queue: escalated once the source's window ends, with
    // Prometheus' answer as the reason, and never run again.
    let drained_action = wait_for("queue_drain escalated", 60, dir, || {
        let v = http("GET", &format!("{vigil}/api/v1/actions"), None)?;
        v["actions"]
            .as_array()?
            .iter()
            .find(|a| a["runbook"] == "queue_drain" && a["state"] == "escalated")
            .cloned()
    });
    let detail = drained_action["detail"].as_str().unwrap();
    assert!(
        detail.contains("no longer returns this alert's series") && detail.contains(expr),
        "{drained_action:#}"
    );
    assert!(detail.contains("not run again"), "{detail}");
    // The stuck queue: its verification failed on the value Prometheus
    // still returns, and the runbook ran a second time.
    let recs = wait_for("queue_poke verification failed twice", 60, dir, || {
        let recs = audit(&vigil);
        (recs
            .iter()
            .filter(|r| r["kind"] == "verification_failed" && r["runbook"] == "queue_poke")
            .count()
            >= 1
            && recs
                .iter()
                .filter(|r| r["kind"] == "action_started" && r["runbook"] == "queue_poke")
                .count()
                == 2)
            .then_some(recs)
    });
    let failed = recs
        .iter()
        .find(|r| r["kind"] == "verification_failed" && r["runbook"] == "queue_poke")
        .unwrap();
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("the rule's expression `vigil_test_queue_depth > 10` still returns 50"),
        "{failed:#}"
    );
    let of = |kind: &str, runbook: &str| {
        recs.iter()
            .filter(|r| r["kind"] == kind && r["runbook"] == runbook)
            .count()
    };
    assert_eq!(of("action_started", "queue_drain"), 1, "{recs:#?}");
    assert_eq!(of("verification_failed", "queue_drain"), 0, "{recs:#?}");
    assert_eq!(of("retry_scheduled", "queue_drain"), 0, "{recs:#?}");
}
