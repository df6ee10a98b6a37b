//! Shared helpers of the end-to-end tests that start real servers
//! (Alertmanager, Prometheus, node_exporter, `vigil serve`) on 127.0.0.1:
//! processes killed on drop, free ports, a small HTTP client, waiting with
//! the servers' logs on failure.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Children killed and reaped on drop.
pub struct Kill(pub Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `method` (GET, POST with a JSON body, DELETE) on `url`: the JSON answer
/// of a 2xx, else `None`.
pub fn http(method: &str, url: &str, body: Option<&Value>) -> Option<Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let c = reqwest::Client::new();
        let req = match method {
            "POST" => c.post(url).json(body.unwrap_or(&Value::Null)),
            "DELETE" => c.delete(url),
            _ => c.get(url),
        };
        let r = req.timeout(Duration::from_secs(5)).send().await.ok()?;
        if !r.status().is_success() {
            return None;
        }
        Some(r.json().await.unwrap_or(Value::Null))
    })
}

/// Starts `cmd` with its output in `log`; `what` says how to get it.
pub fn spawn(cmd: &mut Command, log: &Path, what: &str) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    cmd.stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("{what} cannot start: {e}"))
}

/// Polls `f` every 250 ms for `secs`; on time-out fails with every `*.log`
/// of `dir`.
pub fn wait_for<T>(what: &str, secs: u64, dir: &Path, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > end {
            let mut logs = String::new();
            let mut names: Vec<_> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect();
            names.sort();
            for p in names {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                logs.push_str(&format!("--- {}\n{text}\n", p.display()));
            }
            panic!("{what}: not within {secs}s\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The whole audit trail of the hub at `vigil` (its HTTP base URL).
pub fn audit(vigil: &str) -> Vec<Value> {
    http("GET", &format!("{vigil}/api/v1/audit?since=0"), None)
        .and_then(|v| v["records"].as_array().cloned())
        .unwrap_or_default()
}

/// `vigil serve` with `dir/vigil.toml` on the data dir `dir/vigil-data`,
/// logging to `dir/vigil.log`.
pub fn serve(dir: &Path) -> Child {
    spawn(
        Command::new(env!("CARGO_BIN_EXE_vigil")).args([
            "--config".into(),
            dir.join("vigil.toml").display().to_string(),
            "--data-dir".into(),
            dir.join("vigil-data").display().to_string(),
            "serve".into(),
        ]),
        &dir.join("vigil.log"),
        "vigil serve",
    )
}
