//! End to end with the real Debian servers: node_exporter (textfile
//! collector) → Prometheus (a rule firing while a flag is 1) → Alertmanager
//! (routing to Vigil's webhook) → the real `vigil serve` binary. Checks that
//! the alert fires, the matching runbook is proposed (audit records), a
//! silence created through Vigil is listed by Alertmanager, and the alert
//! resolves when the flag flips to 0.
//!
//! Runs when VIGIL_E2E=1 (then fails if a server is missing).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Procs(Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Procs {
    fn spawn(&mut self, name: &str, cmd: &mut Command, log: &Path) {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.0.push((name.to_string(), child));
    }

    /// Fails with the logs when a server died.
    fn check_alive(&mut self, dir: &Path) {
        for (name, c) in &mut self.0 {
            if let Ok(Some(st)) = c.try_wait() {
                let log =
                    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
                panic!("{name} exited with {st}:\n{log}");
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn need(bin: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var_os("VIGIL_E2E").is_none(),
            "VIGIL_E2E is set but {bin} is not installed (apt-get install prometheus prometheus-alertmanager prometheus-node-exporter)"
        );
    }
    found
}

fn wait_until<T>(
    what: &str,
    secs: u64,
    procs: &mut Procs,
    dir: &Path,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        procs.check_alive(dir);
        if Instant::now() > end {
            let mut logs = String::new();
            for n in ["vigil", "alertmanager", "prometheus"] {
                let l = std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default();
                let tail: Vec<&str> = l.lines().rev().take(15).collect();
                logs.push_str(&format!(
                    "--- {n}\n{}\n",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            panic!("{what}: not within {secs}s\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn get(url: &str) -> Option<Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    })
}

/// The token of the operator `ana` in the test's config.
const ANA_TOKEN: &str = "ana-e2e-token-0123456789abcdef0123456789";

fn post(url: &str, body: &Value) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Intents need an operator's token; deliveries ignore it.
        let r = reqwest::Client::new()
            .post(url)
            .bearer_auth(ANA_TOKEN)
            .json(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("POST");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    })
}

#[test]
fn prometheus_stack_to_vigil_and_back() {
    if std::env::var_os("VIGIL_E2E").is_none() {
        eprintln!("skipped: set VIGIL_E2E=1 to run the Prometheus stack end to end");
        return;
    }
    for b in [
        "prometheus",
        "prometheus-alertmanager",
        "prometheus-node-exporter",
    ] {
        if !need(b) {
            return;
        }
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let (p_node, p_prom, p_am, p_vigil) = (free_port(), free_port(), free_port(), free_port());
    let textfile = dir.join("textfile");
    std::fs::create_dir_all(&textfile).unwrap();
    let flag = |v: u8| {
        let tmp = textfile.join("flag.prom.tmp");
        std::fs::write(
            &tmp,
            format!("oncall_test_flag{{scenario=\"toggle\"}} {v}\n"),
        )
        .unwrap();
        std::fs::rename(&tmp, textfile.join("flag.prom")).unwrap();
    };
    flag(1);
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/stack/rules.yml"
        ),
        dir.join("rules.yml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 2s\n  evaluation_interval: 2s\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{p_am}']\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{p_node}']\n",
            dir.join("rules.yml").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: vigil\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1m\nreceivers:\n  - name: vigil\n    webhook_configs:\n      - url: http://127.0.0.1:{p_vigil}/hooks/alertmanager\n        send_resolved: true\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("vigil.toml"),
        format!(
            "operator = \"ana\"\nlisten = \"127.0.0.1:{p_vigil}\"\n\n[[hosts]]\nname = \"web-01\"\nservices = [\"nginx\"]\nexecutor = \"sim\"\n\n[[sources]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{p_am}\"\ninterval = \"2s\"\ntimeout = \"2s\"\n\n[[sources]]\nname = \"prom\"\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:{p_prom}\"\npoll = false\n\n[[operators]]\nname = \"ana\"\nrole = \"operator\"\ntoken_env = \"VIGIL_E2E_ANA\"\n"
        ),
    )
    .unwrap();

    let mut procs = Procs(Vec::new());
    procs.spawn(
        "node_exporter",
        Command::new("prometheus-node-exporter").args([
            format!("--web.listen-address=127.0.0.1:{p_node}"),
            "--no-collector.systemd".into(),
            format!("--collector.textfile.directory={}", textfile.display()),
        ]),
        &dir.join("node_exporter.log"),
    );
    procs.spawn(
        "alertmanager",
        Command::new("prometheus-alertmanager").args([
            format!("--config.file={}", dir.join("alertmanager.yml").display()),
            format!("--storage.path={}", dir.join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{p_am}"),
            "--cluster.listen-address=".into(),
        ]),
        &dir.join("alertmanager.log"),
    );
    procs.spawn(
        "prometheus",
        Command::new("prometheus").args([
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{p_prom}"),
        ]),
        &dir.join("prometheus.log"),
    );
    procs.spawn(
        "vigil",
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args([
                "--config".into(),
                dir.join("vigil.toml").display().to_string(),
                "--data-dir".into(),
                dir.join("vigil-data").display().to_string(),
                "serve".into(),
            ])
            .env("VIGIL_E2E_ANA", ANA_TOKEN),
        &dir.join("vigil.log"),
    );
    let vigil = format!("http://127.0.0.1:{p_vigil}");
    let am = format!("http://127.0.0.1:{p_am}");

    // 1. The alert fires in Vigil.
    let alert = wait_until("ServiceDown firing in Vigil", 90, &mut procs, dir, || {
        let v = get(&format!("{vigil}/api/v1/alerts"))?;
        v["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["name"] == "ServiceDown" && a["state"] == "firing")
            .cloned()
    });
    assert_eq!(alert["labels"]["host"], "web-01");
    assert_eq!(alert["origin"], "external");
    let fp = alert["fingerprint"].as_str().unwrap().to_string();

    // 2. The matching runbook is proposed, in the audit trail.
    let records = wait_until("service_restart proposed", 30, &mut procs, dir, || {
        let v = get(&format!("{vigil}/api/v1/audit?since=0"))?;
        let recs = v["records"].as_array()?.clone();
        recs.iter()
            .any(|r| r["kind"] == "action_proposed" && r["runbook"] == "service_restart")
            .then_some(recs)
    });
    let matched = records
        .iter()
        .find(|r| r["kind"] == "runbook_matched")
        .expect("runbook_matched");
    assert_eq!(matched["runbook"], "service_restart");
    assert_eq!(matched["target"], "web-01");
    assert!(
        records.iter().any(|r| r["kind"] == "approval_requested"),
        "{records:#?}"
    );

    // The Alertmanager source is healthy on the board.
    wait_until("source am ok", 30, &mut procs, dir, || {
        let v = get(&format!("{vigil}/health"))?;
        v["sources"]
            .as_array()?
            .iter()
            .any(|s| s["name"] == "am" && s["state"] == "ok")
            .then_some(())
    });

    // The alert's context through Vigil from the real Prometheus.
    let v = get(&format!("{vigil}/api/v1/query?query=oncall_test_flag")).expect("query");
    assert_eq!(v["source"], "prom", "{v}");
    assert_eq!(v["series"][0]["points"][0][1], 1.0, "{v}");
    let v = get(&format!(
        "{vigil}/api/v1/query?query=oncall_test_flag&range=5m&step=2s"
    ))
    .expect("range");
    assert!(
        !v["series"][0]["points"].as_array().unwrap().is_empty(),
        "{v}"
    );

    // 3. A silence created through Vigil is listed by Alertmanager.
    let (status, created) = post(
        &format!("{vigil}/api/v1/alerts/{fp}/silence"),
        &json!({"duration": "1h", "actor": "ana", "comment": "e2e: nginx being replaced"}),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["alertmanager"], "am");
    let id = created["id"].as_str().unwrap().to_string();
    let silences = get(&format!("{am}/api/v2/silences")).expect("AM silences");
    let s = silences
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap_or_else(|| panic!("silence {id} not in {silences:#}"));
    assert_eq!(s["createdBy"], "ana");
    assert_eq!(s["comment"], "e2e: nginx being replaced");
    assert_eq!(s["status"]["state"], "active");
    let ms: Vec<(String, String)> = s["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().into(),
                m["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        ms.contains(&("alertname".into(), "ServiceDown".into())),
        "{ms:?}"
    );
    assert!(ms.contains(&("host".into(), "web-01".into())), "{ms:?}");
    wait_until("silence_created recorded", 10, &mut procs, dir, || {
        let v = get(&format!("{vigil}/api/v1/audit?since=0"))?;
        v["records"]
            .as_array()?
            .iter()
            .any(|r| r["kind"] == "silence_created" && r["actor"] == "ana")
            .then_some(())
    });
    let listed = get(&format!("{vigil}/api/v1/silences")).expect("vigil silences");
    assert!(
        listed["alertmanager"]["am"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str())
    );

    // 4. The flag flips to 0: the alert resolves in Vigil.
    flag(0);
    wait_until("ServiceDown resolved in Vigil", 90, &mut procs, dir, || {
        let v = get(&format!("{vigil}/api/v1/alerts"))?;
        v["alerts"]
            .as_array()?
            .iter()
            .any(|a| a["fingerprint"] == fp.as_str() && a["state"] == "resolved")
            .then_some(())
    });
    // The snapshot shows a change before its records are committed: wait
    // for them.
    let recs = wait_until("alert_resolved recorded", 10, &mut procs, dir, || {
        let v = get(&format!("{vigil}/api/v1/audit?since=0"))?;
        let recs = v["records"].as_array()?.clone();
        recs.iter()
            .any(|r| r["kind"] == "alert_resolved")
            .then_some(recs)
    });
    assert_eq!(
        recs.iter()
            .filter(|r| r["kind"] == "alert_resolved" && r["fingerprint"] == fp.as_str())
            .count(),
        1
    );
    // The proposal closed: nothing left to fix.
    assert!(
        recs.iter().any(|r| r["kind"] == "action_cancelled"),
        "{recs:#?}"
    );
}
