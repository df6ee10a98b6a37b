//! A real `vigil agent` process for the tests: its own config dir (a
//! config with two hubs' tokens and a test runbook beside the built-ins),
//! data dir and port on 127.0.0.1; killed on drop. Also the hub's side: an
//! executor set whose host is that agent.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil::exec::http::HttpTarget;
use vigil::exec::{ExecOptions, ExecutorSet, HostExecutor};
use vigil::runbook::Catalog;

pub const TOKEN_A: &str = "hub-a-secret-0123456789abcdef0123456789";
pub const TOKEN_B: &str = "hub-b-secret-0123456789abcdef0123456789";
/// The host name the hub gives the agent's machine.
pub const HOST: &str = "agent-host";

/// A test runbook: appends its shell's pid to `file` (one line per run),
/// then waits for a `sleep` it starts in the background (its pid in
/// `file.child`), then prints a fact.
pub const SLOW_MARKER: &str = r#"
name = "slow_marker"
description = "Test: marks a file, then sleeps in a child of its own process group."
risk = "low"
approval = "auto"

[match]
alertname = ["TestMarker"]

[params.file]
source = "literal"
pattern = '/tmp/vigil-agent-[A-Za-z0-9._-]+/[a-z0-9]+'

[params.seconds]
source = "literal"
default = "0"
pattern = '[0-9]{1,3}'

[[steps]]
name = "mark and wait"
argv = ["sh", "-c", "echo $$ >> \"$1\"; sleep \"$2\" & echo $! > \"$1.child\"; wait; echo 'vigil: slept=1'", "sh", "{file}", "{seconds}"]
timeout = "120s"
"#;

pub struct Agent {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub scheme: &'static str,
    extra: String,
}

impl Agent {
    /// Starts an agent whose config holds `extra` after the tokens.
    pub async fn start(extra: &str) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("vigil-agent-cfg-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir(dir.path().join("runbooks")).unwrap();
        std::fs::write(dir.path().join("runbooks/slow_marker.toml"), SLOW_MARKER).unwrap();
        std::fs::write(
            dir.path().join("agent.toml"),
            format!(
                "{extra}\n\n[[tokens]]\nhub = \"hub-a\"\nenv = \"VIGIL_TEST_TOKEN_A\"\n\n\
                 [[tokens]]\nhub = \"hub-b\"\nenv = \"VIGIL_TEST_TOKEN_B\"\n"
            ),
        )
        .unwrap();
        let scheme = if extra.contains("[tls]") {
            "https"
        } else {
            "http"
        };
        let mut a = Agent {
            child: None,
            dir,
            port: super::support::free_port(),
            scheme,
            extra: extra.to_string(),
        };
        a.spawn().await;
        a
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// (Re)starts the process on the same dirs and port.
    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("agent")
            .arg("--config")
            .arg(self.config())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .env("VIGIL_TEST_TOKEN_A", TOKEN_A)
            .env("VIGIL_TEST_TOKEN_B", TOKEN_B)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("vigil agent starts");
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let client = insecure_client();
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/health", self.url())).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("vigil agent exited with {st}: {}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "vigil agent did not answer /health: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The runbooks the agent knows (the hub plans with the same ones).
    pub fn catalog(&self) -> Catalog {
        Catalog::load(Some(&self.dir.path().join("runbooks")), &BTreeMap::new())
            .expect("the test catalog")
    }

    /// A hub whose host [`HOST`] is this agent, with `token`.
    pub fn hub(&self, token: &str, extra: &str) -> ExecutorSet {
        let t: toml::Table = toml::from_str(&format!(
            "url = \"{}\"\ntoken = \"{token}\"\npoll_interval = \"50ms\"\n{extra}",
            self.url()
        ))
        .expect("http table");
        let mut hosts = BTreeMap::new();
        hosts.insert(
            HOST.to_string(),
            HostExecutor::Http(HttpTarget::from_table(Some(&t)).expect("http settings")),
        );
        ExecutorSet::new(hosts, ExecOptions::default())
    }

    pub fn extra(&self) -> &str {
        &self.extra
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A client for raw requests (accepts any certificate: tests of the API,
/// not of pinning).
pub fn insecure_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A temp dir the test runbook's `file` pattern accepts.
pub fn marker_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vigil-agent-")
        .tempdir_in("/tmp")
        .expect("temp dir")
}

/// Lines in a marker file (runs that started).
pub fn runs(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// True while any process of group `pgid` exists (zombies aside).
pub fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .any(|pid| {
                    let stat =
                        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
                        return false;
                    };
                    let f: Vec<&str> = rest.split_whitespace().collect();
                    f.first() != Some(&"Z")
                        && f.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid)
                })
        })
        .unwrap_or(false)
}

/// Kills a process group the test left behind (an orphaned step).
pub fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) on a process group this test started.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Waits until `f` holds (at most `secs`).
pub async fn until(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
