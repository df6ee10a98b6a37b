//! Shared helpers of the executor tests: the VIGIL_E2E gate, executions of
//! the built-in runbooks, an sshd started on 127.0.0.1 on a free high port
//! with its own keys, and tree hashing.
#![allow(dead_code)]

pub mod cases;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil::engine::Execution;
use vigil::exec::{ExecOptions, ExecutorSet, HostExecutor, ssh::SshTarget};
use vigil::model::ActionId;
use vigil::runbook::Catalog;

/// True when end-to-end tests must run; otherwise says the test is skipped.
pub fn e2e(name: &str) -> bool {
    if std::env::var_os("VIGIL_E2E").is_some() {
        return true;
    }
    eprintln!("{name}: skipped (set VIGIL_E2E=1 to run it)");
    false
}

/// The path of a program, or a panic naming the package (under VIGIL_E2E
/// a missing tool is a failure, never a skip).
pub fn need(prog: &str, package: &str) -> PathBuf {
    for dir in vigil::exec::local::STEP_PATH.split(':') {
        let p = Path::new(dir).join(prog);
        if p.exists() {
            return p;
        }
    }
    panic!("{prog} is missing: install the Debian package {package}");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Action ids of [`execution`]: each execution in a test process is its
/// own action (a job API keys jobs by action and attempt).
static NEXT_ACTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(42);

/// An execution of a built-in runbook with these parameters (defaults for
/// the rest), planned exactly as the engine plans it, as a new action.
pub fn execution(runbook: &str, target: &str, executor: &str, p: &[(&str, &str)]) -> Execution {
    execution_in(&Catalog::builtin(), runbook, target, executor, p)
}

/// [`execution`] of a runbook of `catalog`.
pub fn execution_in(
    catalog: &Catalog,
    runbook: &str,
    target: &str,
    executor: &str,
    p: &[(&str, &str)],
) -> Execution {
    let rb = catalog.get(runbook).expect("a runbook of the catalog");
    let mut labels = vigil::model::Labels::new();
    labels.insert("host".into(), target.into());
    let resolved = rb
        .resolve_params(&labels, &vigil::model::Labels::new(), &params(p))
        .expect("valid parameters");
    Execution {
        action: ActionId(NEXT_ACTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        attempt: 1,
        runbook: runbook.into(),
        target: target.into(),
        executor: executor.into(),
        steps: rb.plan(target, &resolved),
        params: resolved,
    }
}

/// A hub as `vigil serve` wires it, from a config file's text: its store
/// in `data`, its executors from the config's hosts, a 100 ms tick. Run it
/// with `hub.run(stop)`.
pub fn serve_hub(text: &str, data: &Path) -> (vigil::hub::Hub, vigil::hub::HubHandle) {
    use vigil::hub::{Hub, HubSetup, SourceBoard};
    let config = vigil::config::Config::parse("c.toml", text).expect("config");
    let setup = config.build("c.toml", text, false, None).expect("setup");
    let store = vigil::store::Store::open(data).expect("store");
    let restored = store.load_state().expect("state");
    let writer = vigil::store::AuditWriter::spawn(store).expect("writer");
    let executors = ExecutorSet::from_hosts(&config.hosts, ExecOptions::default()).expect("hosts");
    Hub::new(HubSetup {
        engine: vigil::engine::Engine::new(setup),
        writer,
        restored,
        demo: None,
        operator: "test".into(),
        sim_run_time: Duration::from_millis(10),
        tick: Duration::from_millis(100),
        executors: Some(std::sync::Arc::new(executors)),
        escalator: None,
        sources: SourceBoard::default(),
    })
}

/// A local-only executor set.
pub fn local_set() -> ExecutorSet {
    ExecutorSet::new(BTreeMap::new(), ExecOptions::default())
}

pub fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// SHA-256 of every path under `dir` (not following symlinks): path, kind,
/// size, mode, mtime and content.
pub fn hash_tree(dir: &Path) -> BTreeMap<String, String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find \"$1\" -printf '%p %y %s %m %T@ ' -exec sh -c 'if [ -f \"$1\" ] && [ ! -L \"$1\" ]; then sha256sum < \"$1\"; else echo -; fi' sh {} \\;")
        .arg("sh")
        .arg(dir)
        .output()
        .expect("find runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (p, rest) = l.split_once(' ').unwrap_or((l, ""));
            (p.to_string(), rest.to_string())
        })
        .collect()
}

/// An OpenSSH server for the tests, killed on drop (with the OS users it
/// created removed).
pub struct Sshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    pub target: SshTarget,
    created: std::sync::Mutex<Vec<String>>,
}

impl Sshd {
    /// Starts sshd as root on 127.0.0.1 on a free port, with a host key, a
    /// client key allowed for root and a known_hosts file for the client.
    pub fn start() -> Sshd {
        let sshd = need("sshd", "openssh-server");
        need("ssh", "openssh-client");
        let dir = tempfile::Builder::new()
            .prefix("vigil-sshd-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        for (name, kind) in [("host_key", "ed25519"), ("client_key", "ed25519")] {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", "", "-f"])
                .arg(d.join(name))
                .status()
                .expect("ssh-keygen");
            assert!(st.success());
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).expect("copy");
        let port = free_port();
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_pub}"),
        )
        .expect("known_hosts");
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\n\
                 AuthorizedKeysFile {ak}\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nMaxSessions 100\nMaxStartups 200\nLogLevel ERROR\n",
                hk = d.join("host_key").display(),
                pid = d.join("sshd.pid").display(),
                ak = d.join("authorized_keys").display(),
            ),
        )
        .expect("sshd_config");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sshd starts");
        let target = SshTarget::from_table(
            "vigil-test",
            Some(
                &toml::from_str(&format!(
                    "host = \"127.0.0.1\"\nuser = \"root\"\nport = {port}\nidentity = {:?}\nknown_hosts = {:?}\n",
                    d.join("client_key").display().to_string(),
                    d.join("known_hosts").display().to_string()
                ))
                .expect("toml"),
            ),
        )
        .expect("ssh settings");
        let mut me = Sshd {
            port,
            dir,
            child,
            target,
            created: std::sync::Mutex::new(Vec::new()),
        };
        me.wait_ready();
        me
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("sshd exited with {st}: {err}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sshd did not listen on 127.0.0.1:{}", self.port);
    }

    /// The same server reached as `user` (created when missing, with
    /// /bin/sh as its shell and no password): figures then measure Vigil
    /// and OpenSSH, not a login shell's start-up files.
    pub fn as_plain_user(&self, user: &str) -> SshTarget {
        let exists = Command::new("id")
            .arg(user)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !exists {
            let st = Command::new("useradd")
                .args(["-M", "-d", "/nonexistent", "-s", "/bin/sh", user])
                .status()
                .expect("useradd");
            assert!(st.success(), "useradd {user}");
            let _ = Command::new("usermod").args(["-p", "*", user]).status();
            self.created
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(user.to_string());
        }
        let mut t = self.target.clone();
        t.user = Some(user.to_string());
        t
    }

    /// The control dir for connection sharing (short path).
    pub fn control_dir(&self) -> PathBuf {
        self.dir.path().join("c")
    }

    /// An executor set with `host` reached over this sshd.
    pub fn executors(&self, host: &str, max_parallel: usize) -> ExecutorSet {
        let mut hosts = BTreeMap::new();
        hosts.insert(host.to_string(), HostExecutor::Ssh(self.target.clone()));
        ExecutorSet::new(
            hosts,
            ExecOptions {
                max_parallel,
                ssh_control_dir: self.control_dir(),
                ..Default::default()
            },
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Close shared master connections first, then the server.
        let _ = Command::new("sh")
            .arg("-c")
            .arg("find \"$1\" -type s | while read -r s; do ssh -o ControlPath=\"$s\" -O exit x 2>/dev/null; done; true")
            .arg("sh")
            .arg(self.dir.path())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The throw-away users this server's tests made.
        let created = std::mem::take(self.created.get_mut().unwrap_or_else(|p| p.into_inner()));
        for user in created {
            let _ = Command::new("userdel").arg(&user).output();
        }
    }
}

/// Fact `key` of an outcome's data, as i64.
pub fn fact(o: &vigil::engine::Outcome, key: &str) -> Option<i64> {
    o.data.as_ref()?.get("facts")?.get(key)?.as_i64()
}

/// The whole outcome as text for assertion messages.
pub fn show(o: &vigil::engine::Outcome) -> String {
    format!(
        "{} | {}",
        o.detail,
        serde_json::to_string_pretty(&o.data).unwrap_or_default()
    )
}
