//! A real fleet with no glue, end to end against the Debian servers
//! (VIGIL_E2E=1; a missing server is a failure):
//! - an Alertmanager alert that carries only `instance` reaches the
//!   configured host and its runbook;
//! - the node_exporter default policies (PromQL) fire from node_exporter's
//!   metrics (values set through its textfile collector), keep firing in
//!   the hysteresis band and resolve below it; the Hosts pane of an
//!   attached console (tmux) shows the host's values;
//! - `vigil doctor` reports a reachable sshd as ok and a wrong key as a
//!   failure with ssh's reason and the fix; `vigil check` names a missing
//!   host key.

mod support;
mod tmux_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Servers started by a test, killed on drop.
struct Procs {
    dir: PathBuf,
    children: Vec<(String, Child)>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Procs {
    fn new(dir: &Path) -> Procs {
        Procs {
            dir: dir.to_path_buf(),
            children: Vec::new(),
        }
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command) {
        let out = std::fs::File::create(self.dir.join(format!("{name}.log"))).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e} (is it installed?)"));
        self.children.push((name.to_string(), child));
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for (n, _) in &self.children {
            let l = std::fs::read_to_string(self.dir.join(format!("{n}.log"))).unwrap_or_default();
            let tail: Vec<&str> = l.lines().rev().take(20).collect();
            s.push_str(&format!(
                "--- {n}\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        s
    }

    /// Waits for `f` to give a value; fails with the servers' logs.
    fn wait<T>(&mut self, what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            let dead = self
                .children
                .iter_mut()
                .find_map(|(name, c)| Some((name.clone(), c.try_wait().ok()??)));
            if let Some((name, st)) = dead {
                panic!("{name} exited with {st}\n{}", self.logs());
            }
            if Instant::now() > end {
                panic!("{what}: not within {secs}s\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn node_exporter(&mut self, port: u16, textfile: &Path, only_textfile: bool) {
        let mut args = vec![
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--collector.textfile.directory={}", textfile.display()),
        ];
        if only_textfile {
            args.push("--collector.disable-defaults".into());
            args.push("--collector.textfile".into());
        } else {
            args.push("--no-collector.systemd".into());
        }
        self.spawn(
            "node_exporter",
            Command::new("prometheus-node-exporter").args(args),
        );
    }

    fn prometheus(&mut self, port: u16, node: u16, am: Option<u16>, rules: Option<&Path>) {
        let mut cfg = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n".to_string();
        if let Some(am) = am {
            cfg.push_str(&format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am}']\n"
            ));
        }
        if let Some(r) = rules {
            cfg.push_str(&format!("rule_files:\n  - {}\n", r.display()));
        }
        cfg.push_str(&format!(
            "scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{node}']\n"
        ));
        let file = self.dir.join("prometheus.yml");
        std::fs::write(&file, cfg).unwrap();
        self.spawn(
            "prometheus",
            Command::new("prometheus").args([
                format!("--config.file={}", file.display()),
                format!(
                    "--storage.tsdb.path={}",
                    self.dir.join("prom-data").display()
                ),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ]),
        );
    }

    fn vigil_serve(&mut self, config: &Path) -> PathBuf {
        let data = self.dir.join("vigil-data");
        self.spawn(
            "vigil",
            Command::new(env!("CARGO_BIN_EXE_vigil")).args([
                "--config".into(),
                config.display().to_string(),
                "--data-dir".into(),
                data.display().to_string(),
                "serve".into(),
            ]),
        );
        data
    }
}

/// Writes a textfile-collector file atomically.
fn textfile(dir: &Path, body: &str) {
    let tmp = dir.join("vigil.prom.tmp");
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, dir.join("vigil.prom")).unwrap();
}

fn get(url: &str) -> Option<Value> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn alerts(vigil: &str) -> Vec<Value> {
    get(&format!("{vigil}/api/v1/alerts"))
        .and_then(|v| v["alerts"].as_array().cloned())
        .unwrap_or_default()
}

fn records(vigil: &str) -> Vec<Value> {
    get(&format!("{vigil}/api/v1/audit?since=0"))
        .and_then(|v| v["records"].as_array().cloned())
        .unwrap_or_default()
}

fn firing<'a>(all: &'a [Value], name: &str) -> Option<&'a Value> {
    all.iter()
        .find(|a| a["name"] == name && a["state"] == "firing")
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: prometheus, alertmanager, node_exporter"
)]
fn an_instance_only_alertmanager_alert_reaches_its_host_and_runbook() {
    support::need("curl", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut p = Procs::new(dir);
    let (p_node, p_prom, p_am, p_vigil) = (
        support::free_port(),
        support::free_port(),
        support::free_port(),
        support::free_port(),
    );
    let tf = dir.join("textfile");
    std::fs::create_dir_all(&tf).unwrap();
    textfile(&tf, "oncall_test_flag 1\n");
    // A standard rule: the alert carries `instance`, never `host`.
    let rules = dir.join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: t\n    rules:\n      - alert: ServiceDown\n        expr: oncall_test_flag == 1\n        labels:\n          severity: critical\n          service: nginx\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("am.yml"),
        format!(
            "route:\n  receiver: vigil\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1m\nreceivers:\n  - name: vigil\n    webhook_configs:\n      - url: http://127.0.0.1:{p_vigil}/hooks/alertmanager\n        send_resolved: true\n"
        ),
    )
    .unwrap();
    let config = dir.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{p_vigil}\"\n\n[[hosts]]\nname = \"web-01\"\naddresses = [\"127.0.0.1\"]\nservices = [\"nginx\"]\nexecutor = \"local\"\n\n[[hosts]]\nname = \"web-02\"\naddresses = [\"10.0.0.2\"]\nexecutor = \"local\"\n"
        ),
    )
    .unwrap();
    p.node_exporter(p_node, &tf, false);
    p.spawn(
        "alertmanager",
        Command::new("prometheus-alertmanager").args([
            format!("--config.file={}", dir.join("am.yml").display()),
            format!("--storage.path={}", dir.join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{p_am}"),
            "--cluster.listen-address=".into(),
        ]),
    );
    p.prometheus(p_prom, p_node, Some(p_am), Some(&rules));
    p.vigil_serve(&config);
    let vigil = format!("http://127.0.0.1:{p_vigil}");

    let alert = p.wait("ServiceDown from Alertmanager", 90, || {
        firing(&alerts(&vigil), "ServiceDown").cloned()
    });
    assert_eq!(alert["origin"], "external", "{alert:#}");
    assert_eq!(
        alert["labels"]["instance"],
        format!("127.0.0.1:{p_node}"),
        "{alert:#}"
    );
    assert!(alert["labels"].get("host").is_none(), "{alert:#}");
    assert_eq!(alert["host"], "web-01", "{alert:#}");
    let recs = p.wait("service_restart proposed for web-01", 30, || {
        let r = records(&vigil);
        r.iter()
            .any(|r| r["kind"] == "approval_requested")
            .then_some(r)
    });
    let matched = recs
        .iter()
        .find(|r| r["kind"] == "runbook_matched")
        .expect("runbook_matched");
    assert_eq!(matched["runbook"], "service_restart");
    assert_eq!(matched["target"], "web-01");
    let proposed = recs
        .iter()
        .find(|r| r["kind"] == "action_proposed")
        .expect("action_proposed");
    assert_eq!(proposed["target"], "web-01");
    assert_eq!(proposed["params"]["service"], "nginx");
    assert!(
        !recs.iter().any(|r| r["kind"] == "action_blocked"),
        "{recs:#?}"
    );
    let log = std::fs::read_to_string(dir.join("vigil.log")).unwrap_or_default();
    assert!(
        log.contains("alertmanager webhook delivered") && log.contains("firing"),
        "one info line per delivery: {log}"
    );
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: prometheus, node_exporter, tmux"
)]
fn node_exporter_defaults_fire_hold_in_the_band_and_fill_the_hosts_pane() {
    support::need("curl", "curl");
    support::need("tmux", "tmux");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut p = Procs::new(dir);
    let (p_node, p_prom, p_vigil) = (
        support::free_port(),
        support::free_port(),
        support::free_port(),
    );
    let tf = dir.join("textfile");
    std::fs::create_dir_all(&tf).unwrap();
    // Only the textfile collector runs: these are the node_exporter
    // metrics the defaults read, with values the test sets.
    let metrics = |avail: u64| {
        format!(
            "node_filesystem_avail_bytes{{device=\"/dev/vt\",fstype=\"ext4\",mountpoint=\"/\"}} {avail}\n\
             node_filesystem_size_bytes{{device=\"/dev/vt\",fstype=\"ext4\",mountpoint=\"/\"}} 100\n\
             node_memory_MemAvailable_bytes 600\nnode_memory_MemTotal_bytes 1000\n\
             service_up{{service=\"nginx\"}} 0\n\
             log_file_bytes{{path=\"/var/log/app.log\",service=\"app\"}} 2000000000\n"
        )
    };
    textfile(&tf, &metrics(10));
    let config = dir.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{p_vigil}\"\n\n[settings]\ndry_run = true\n\n[[hosts]]\nname = \"web-01\"\naddresses = [\"127.0.0.1\"]\nservices = [\"nginx\", \"app\"]\nexecutor = \"local\"\n\n[[hosts]]\nname = \"quiet-01\"\nexecutor = \"local\"\n\n[[sources]]\nname = \"prom\"\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:{p_prom}\"\npoll = false\ninterval = \"1s\"\npolicies = \"node_exporter\"\n"
        ),
    )
    .unwrap();
    p.node_exporter(p_node, &tf, true);
    p.prometheus(p_prom, p_node, None, None);
    let data = p.vigil_serve(&config);
    let vigil = format!("http://127.0.0.1:{p_vigil}");

    // LogFileLarge has no `for`: it fires first; ServiceDown after 30s,
    // DiskSpaceLow after 1m.
    let log = p.wait("LogFileLarge firing", 60, || {
        firing(&alerts(&vigil), "LogFileLarge").cloned()
    });
    assert_eq!(log["host"], "web-01", "{log:#}");
    assert_eq!(log["origin"], "policy", "{log:#}");
    assert_eq!(log["labels"]["path"], "/var/log/app.log");
    let all = p.wait("ServiceDown and DiskSpaceLow firing", 120, || {
        let a = alerts(&vigil);
        (firing(&a, "ServiceDown").is_some() && firing(&a, "DiskSpaceLow").is_some()).then_some(a)
    });
    let disk = firing(&all, "DiskSpaceLow").unwrap();
    assert_eq!(disk["host"], "web-01");
    assert_eq!(disk["labels"]["mountpoint"], "/");
    assert_eq!(disk["value"], 90.0, "{disk:#}");
    assert_eq!(
        firing(&all, "ServiceDown").unwrap()["labels"]["service"],
        "nginx"
    );
    // The runbook was matched and planned (dry-run) for the host, with the
    // mountpoint from the series.
    let recs = p.wait("disk_cleanup planned", 30, || {
        let r = records(&vigil);
        r.iter()
            .any(|r| r["kind"] == "dry_run_planned" && r["runbook"] == "disk_cleanup")
            .then_some(r)
    });
    let planned = recs
        .iter()
        .find(|r| r["kind"] == "action_proposed" && r["runbook"] == "disk_cleanup")
        .unwrap();
    assert_eq!(planned["target"], "web-01");
    assert_eq!(planned["params"]["mountpoint"], "/");

    // The Hosts pane of an attached console shows the host's values (from
    // Prometheus), and a configured host without data says so.
    let sock = data.join("vigil.sock");
    let t = tmux_support::Tmux::start(
        "fleet-hosts",
        &format!(
            "{} --connect {} --read-only",
            env!("CARGO_BIN_EXE_vigil"),
            sock.display()
        ),
    );
    t.wait("the console", 20, |s| s.contains("Hosts"));
    t.keys(&["6", "z"]);
    let screen = t.wait("web-01's values in the Hosts pane", 20, |s| {
        s.lines().any(|l| {
            l.contains("web-01")
                && l.contains(" 90 ")
                && l.contains(" 40 ")
                && l.contains("nginx down")
        }) && s
            .lines()
            .any(|l| l.contains("quiet-01") && l.contains("no data"))
    });
    drop(t);

    // In the band (82% used) the alert holds; below 80% it resolves.
    textfile(&tf, &metrics(18));
    let fp = disk["fingerprint"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_secs(6));
    let a = alerts(&vigil);
    assert!(
        a.iter()
            .any(|x| x["fingerprint"] == fp.as_str() && x["state"] == "firing"),
        "DiskSpaceLow resolved in the band (82%): {a:#?}\n{screen}"
    );
    textfile(&tf, &metrics(30));
    p.wait("DiskSpaceLow resolved at 70%", 30, || {
        alerts(&vigil)
            .iter()
            .any(|x| x["fingerprint"] == fp.as_str() && x["state"] == "resolved")
            .then_some(())
    });
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: sshd (as root)")]
fn doctor_reports_a_reachable_sshd_ok_and_a_wrong_key_with_its_reason() {
    let sshd = support::Sshd::start();
    let d = sshd.dir.path();
    let wrong = d.join("wrong_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong)
        .status()
        .unwrap();
    assert!(st.success());
    let host = |name: &str, key: &Path, kh: &Path| {
        format!(
            "[[hosts]]\nname = \"{name}\"\nexecutor = \"ssh\"\n[hosts.ssh]\nhost = \"127.0.0.1\"\nuser = \"root\"\nport = {}\nidentity = \"{}\"\nknown_hosts = \"{}\"\n\n",
            sshd.port,
            key.display(),
            kh.display()
        )
    };
    let kh = d.join("known_hosts");
    let config = d.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "{}{}",
            host("good", &d.join("client_key"), &kh),
            host("badkey", &wrong, &kh)
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["--config", config.to_str().unwrap(), "doctor"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{text}"))
            .to_string()
    };
    let good = line("host good (ssh root@127.0.0.1:");
    assert!(
        good.contains(" ok ") && good.contains("ran `true`"),
        "{text}"
    );
    let bad = line("host badkey (ssh root@127.0.0.1:");
    assert!(bad.contains("FAIL"), "{text}");
    assert!(
        bad.contains("Permission denied (publickey"),
        "ssh's reason: {text}"
    );
    assert!(
        bad.contains("badkey (root@127.0.0.1:"),
        "the host and address: {text}"
    );
    assert!(
        text.contains(&format!(
            "fix: add {}.pub to ~root/.ssh/authorized_keys",
            wrong.display()
        )),
        "{text}"
    );
    assert!(text.contains("1 of 2 checks failed"), "{text}");

    // `vigil check` names a known_hosts without the host's key, with its line.
    let empty = d.join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    std::fs::write(&config, host("good", &d.join("client_key"), &empty)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["--config", config.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "vigil.toml:9: hosts[name=\"good\"].ssh: no host key for [127.0.0.1]:{} in {}",
            sshd.port,
            empty.display()
        )),
        "{err}"
    );
    assert!(err.contains("ssh-keyscan -p"), "{err}");
}
