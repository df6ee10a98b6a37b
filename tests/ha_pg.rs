//! More than one hub on one PostgreSQL store, with real processes: one
//! active and one standby, what the standby serves and refuses, failover
//! after SIGKILL of the active, a frozen active (a partition from the
//! store's point of view) fenced out and coming back as a standby, and the
//! trail afterwards: no `(action_id, attempt)` started twice, the chain
//! verifies.
//!
//! `VIGIL_HA_KILLS=N` repeats the kill-and-takeover N times (default 3)
//! and prints the failover times (min/median/max).

mod http_support;
mod pg_support;
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_support::{tcp, unix};
use pg_support::{PASSWORD, PASSWORD_ENV, Pg};
use serde_json::Value;
use support::free_port;

/// The lease time of the test's hubs (`VIGIL_HA_LEASE` to measure with
/// another, e.g. the default 10s).
fn lease() -> String {
    std::env::var("VIGIL_HA_LEASE").unwrap_or_else(|_| "3s".into())
}

fn health(port: u16) -> Option<Value> {
    let (_, body) = tcp(port, "GET", "/health", "")?;
    serde_json::from_str(&body).ok()
}

struct Hub {
    child: Child,
    port: u16,
    data: PathBuf,
    stderr: PathBuf,
}

impl Hub {
    fn start(root: &Path, name: &str, config: &Path, port: u16) -> Hub {
        let data = root.join(name);
        let stderr = root.join(format!("{name}.stderr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["serve", "--demo", "--data-dir"])
            .arg(&data)
            .arg("--config")
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("HOME", root)
            .env_remove("XDG_CONFIG_HOME")
            .env("VIGIL_DEMO_SPEED", "8")
            .env(PASSWORD_ENV, PASSWORD)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn vigil serve");
        Hub {
            child,
            port,
            data,
            stderr,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid(), sig) };
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until its /health says `role`; how long that took.
    fn wait_role(&self, role: &str, within: Duration) -> Duration {
        let t0 = Instant::now();
        loop {
            if let Some(h) = health(self.port)
                && h["role"] == role
            {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < within,
                "hub on port {} not {role} within {within:?}: {:?}\nits stderr:\n{}\nits log:\n{}",
                self.port,
                health(self.port),
                std::fs::read_to_string(&self.stderr).unwrap_or_default(),
                std::fs::read_to_string(self.data.join("logs/vigil.log"))
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        self.kill();
    }
}

fn config(root: &Path, url: &str) -> PathBuf {
    let file = root.join("config.toml");
    std::fs::write(
        &file,
        format!(
            "[store]\nurl = \"{url}\"\npassword_env = \"{PASSWORD_ENV}\"\nlease_ttl = \"{}\"\n",
            lease()
        ),
    )
    .unwrap();
    file
}

/// The shared trail's `action_started` records: (action_id, attempt) →
/// how many.
fn starts(pg: &Pg) -> BTreeMap<(String, String), usize> {
    let out = pg.sql(
        "vigil",
        "SELECT action_id || ' ' || coalesce(json::json->>'attempt', '1') FROM audit WHERE kind = 'action_started' ORDER BY seq",
    );
    let mut m = BTreeMap::new();
    for l in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (a, n) = l.split_once(' ').unwrap();
        *m.entry((a.to_string(), n.to_string())).or_default() += 1;
    }
    m
}

fn count(pg: &Pg, kind: &str) -> u64 {
    pg.sql(
        "vigil",
        &format!("SELECT count(*) FROM audit WHERE kind = '{kind}'"),
    )
    .trim()
    .parse()
    .unwrap_or(0)
}

fn verify(root: &Path, config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["audit", "verify", "--config"])
        .arg(config)
        .env("HOME", root)
        .env(PASSWORD_ENV, PASSWORD)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Approves what awaits approval on the active hub (its own OS user is
/// admin over the socket), so that the demo's runbooks run.
fn approve_all(hub: &Hub) {
    let sock = hub.data.join("vigil.sock");
    let Some((200, body)) = unix(&sock, "GET", "/api/v1/actions", "") else {
        return;
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let list = v
        .get("actions")
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default();
    for a in list {
        if a["state"] == "awaiting_approval"
            && let Some(id) = a["id"].as_str()
        {
            let _ = unix(
                &sock,
                "POST",
                &format!("/api/v1/actions/{id}/approve"),
                "{}",
            );
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: PostgreSQL")]
fn one_active_one_standby_failover_without_double_starts() {
    let pg = Pg::start("vigil");
    let root = tempfile::tempdir().unwrap();
    let cfg = config(root.path(), &pg.url("vigil"));
    let (pa, pb) = (free_port(), free_port());
    let mut a = Hub::start(root.path(), "a", &cfg, pa);
    a.wait_role("active", Duration::from_secs(30));
    let mut b = Hub::start(root.path(), "b", &cfg, pb);
    b.wait_role("standby", Duration::from_secs(30));
    let h = health(pb).unwrap();
    assert_eq!(
        h["lease"]["active_addr"],
        format!("127.0.0.1:{pa}"),
        "the standby names the active hub: {h}"
    );
    assert_eq!(health(pa).unwrap()["epoch"], h["epoch"]);

    // The standby acts on nothing: intents and deliveries are refused with
    // the active's address (503: senders retry), even from its own admin.
    let (st, body) = unix(
        &b.data.join("vigil.sock"),
        "POST",
        "/api/v1/modes",
        r#"{"frozen": true}"#,
    )
    .unwrap();
    assert_eq!(st, 503, "{body}");
    assert!(
        body.contains("standby") && body.contains(&format!("127.0.0.1:{pa}")),
        "{body}"
    );
    // A webhook to the standby is journaled in the shared store (202) and
    // handled by the active hub.
    let hook = r#"{"version":"4","groupKey":"g","status":"firing","receiver":"vigil","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"JournaledOnStandby","host":"web-01","severity":"warning"},"annotations":{},"startsAt":"2026-12-02T03:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"aaaa000011112222"}]}"#;
    let (st, body) = tcp(pb, "POST", "/hooks/alertmanager", hook).unwrap();
    assert_eq!(st, 202, "{body}");
    assert!(body.contains("journaled"), "{body}");
    let t0 = Instant::now();
    loop {
        let (_, body) = tcp(pa, "GET", "/api/v1/alerts", "").unwrap();
        if body.contains("JournaledOnStandby") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the active hub never handled the journaled delivery"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        pg.sql("vigil", "SELECT count(*) FROM inbox").trim(),
        "0",
        "the inbox is cleared once handled"
    );

    // The demo runs on the active hub; approvals go to it.
    let t0 = Instant::now();
    while count(&pg, "action_started") < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(150),
            "no action started on the active hub"
        );
        approve_all(&a);
        std::thread::sleep(Duration::from_millis(500));
    }
    // The standby shows the same alerts (its copy of the trail follows).
    let fps = |port: u16| -> Vec<String> {
        let (_, body) = tcp(port, "GET", "/api/v1/alerts", "").unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        let list = v
            .get("alerts")
            .and_then(Value::as_array)
            .or_else(|| v.as_array())
            .cloned()
            .unwrap_or_default();
        let mut f: Vec<String> = list
            .iter()
            .filter(|a| a["status"] == "firing")
            .filter_map(|a| a["fingerprint"].as_str().map(String::from))
            .collect();
        f.sort();
        f
    };
    let t0 = Instant::now();
    loop {
        let (fa, fb) = (fps(pa), fps(pb));
        if !fa.is_empty() && fa == fb {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the standby does not show the active's alerts: {fa:?} vs {fb:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Kill the active; the standby takes over. Then the killed one comes
    // back as a standby, and the next kill is of the new active.
    let kills: usize = std::env::var("VIGIL_HA_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut times = Vec::new();
    for _ in 0..kills {
        approve_all(&a);
        let epoch = health(a.port).unwrap()["epoch"].as_i64().unwrap();
        a.signal(libc::SIGKILL);
        let t = b.wait_role("active", Duration::from_secs(15));
        times.push(t.as_secs_f64());
        let h = health(b.port).unwrap();
        assert!(
            h["epoch"].as_i64().unwrap() > epoch,
            "a takeover raises the epoch: {h}"
        );
        a.kill();
        let name = a.data.file_name().unwrap().to_str().unwrap().to_string();
        let again = Hub::start(root.path(), &name, &cfg, a.port);
        again.wait_role("standby", Duration::from_secs(30));
        a = again;
        std::mem::swap(&mut a, &mut b);
        // Work goes on on the new active before the next kill.
        let before = count(&pg, "action_started") + count(&pg, "action_interrupted");
        let t0 = Instant::now();
        while count(&pg, "action_started") + count(&pg, "action_interrupted") <= before
            && t0.elapsed() < Duration::from_secs(20)
        {
            approve_all(&a);
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let mut sorted = times.clone();
    let med = median(&mut sorted);
    eprintln!(
        "failover over {} kills (lease {}): min {:.2} s, median {med:.2} s, max {:.2} s",
        times.len(),
        lease(),
        sorted[0],
        sorted[sorted.len() - 1]
    );

    // A frozen active (cut off from the store as far as the lease knows):
    // the standby takes over; the old one, thawed, writes nothing and comes
    // back as a standby.
    let frozen = a.data.file_name().unwrap().to_str().unwrap().to_string();
    a.signal(libc::SIGSTOP);
    b.wait_role("active", Duration::from_secs(15));
    a.signal(libc::SIGCONT);
    a.wait_role("standby", Duration::from_secs(30));
    // It says so (the role flips as the loss is found; the words follow).
    let t0 = Instant::now();
    loop {
        let said = std::fs::read_to_string(root.path().join(format!("{frozen}.stderr"))).unwrap();
        if said.contains("lost the lease") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "{said}");
        std::thread::sleep(Duration::from_millis(100));
    }

    std::thread::sleep(Duration::from_secs(2));
    drop(a);
    drop(b);
    let all = starts(&pg);
    eprintln!(
        "trail: {} starts of {} (action, attempt), {} interrupted, {} records",
        all.values().sum::<usize>(),
        all.len(),
        count(&pg, "action_interrupted"),
        pg.sql("vigil", "SELECT count(*) FROM audit").trim()
    );
    let dup: Vec<_> = all.into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(dup.is_empty(), "started twice: {dup:?}");
    let (ok, out) = verify(root.path(), &cfg);
    assert!(ok, "{out}");
}

/// A TCP relay to the store that a test can block: while blocked it holds
/// every byte in both directions and keeps the connections open, as a
/// network partition looks to the hub (nothing answers, nothing fails).
struct Relay {
    port: u16,
    blocked: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(upstream: u16) -> Relay {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let blocked = Arc::new(AtomicBool::new(false));
        let b = blocked.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(down) = conn else { continue };
                let Ok(up) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (down.try_clone().unwrap(), up.try_clone().unwrap()),
                    (up, down),
                ] {
                    let b = b.clone();
                    std::thread::spawn(move || {
                        from.set_read_timeout(Some(Duration::from_millis(50)))
                            .unwrap();
                        let mut buf = [0u8; 16384];
                        loop {
                            if b.load(Ordering::Acquire) {
                                std::thread::sleep(Duration::from_millis(50));
                                continue;
                            }
                            match from.read(&mut buf) {
                                Ok(0) => {
                                    let _ = to.shutdown(std::net::Shutdown::Both);
                                    return;
                                }
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        return;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => {
                                    let _ = to.shutdown(std::net::Shutdown::Both);
                                    return;
                                }
                            }
                        }
                    });
                }
            }
        });
        Relay { port, blocked }
    }

    fn block(&self, on: bool) {
        self.blocked.store(on, std::sync::atomic::Ordering::Release);
    }
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: PostgreSQL")]
fn a_partitioned_active_stops_acting_and_comes_back_as_a_standby() {
    let pg = Pg::start("vigil");
    let root = tempfile::tempdir().unwrap();
    // A reaches the store through the relay; B directly.
    let relay = Relay::start(pg.port);
    let url_a = pg
        .url("vigil")
        .replace(&format!(":{}/", pg.port), &format!(":{}/", relay.port));
    let dir_a = root.path().join("ca");
    let dir_b = root.path().join("cb");
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let cfg_a = config(&dir_a, &url_a);
    let cfg_b = config(&dir_b, &pg.url("vigil"));
    let (pa, pb) = (free_port(), free_port());
    let a = Hub::start(root.path(), "a", &cfg_a, pa);
    a.wait_role("active", Duration::from_secs(30));
    let b = Hub::start(root.path(), "b", &cfg_b, pb);
    b.wait_role("standby", Duration::from_secs(30));
    let epoch = health(pa).unwrap()["epoch"].as_i64().unwrap();
    std::thread::sleep(Duration::from_secs(2));

    // The partition: A's store stops answering.
    relay.block(true);
    let t = b.wait_role("active", Duration::from_secs(20));
    eprintln!("takeover after the partition: {:.2} s", t.as_secs_f64());
    assert!(health(pb).unwrap()["epoch"].as_i64().unwrap() > epoch);
    // A says it lost the lease and stops acting, without waiting for the
    // store to answer.
    let t0 = Instant::now();
    loop {
        let said = std::fs::read_to_string(&a.stderr).unwrap_or_default();
        if said.contains("lost the lease") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "A never said it lost the lease:\n{said}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Healed: A comes back as a standby of B.
    relay.block(false);
    a.wait_role("standby", Duration::from_secs(40));
    let h = health(pa).unwrap();
    assert_eq!(h["lease"]["active_addr"], format!("127.0.0.1:{pb}"), "{h}");
    drop(a);
    drop(b);
    let dup: Vec<_> = starts(&pg).into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(dup.is_empty(), "started twice: {dup:?}");
    let (ok, out) = verify(&dir_b, &cfg_b);
    assert!(ok, "{out}");
}
