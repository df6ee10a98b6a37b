//! connection_reset for real (VIGIL_E2E=1): a PostgreSQL cluster (as the
//! postgres user) and a Redis server, both started by the test on
//! 127.0.0.1 high ports in temp dirs, with idle clients; run locally and
//! over ssh.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil::exec::ExecutorSet;

use support::{Sshd, e2e, execution, fact, free_port, local_set, need, show};

struct Pg {
    dir: tempfile::TempDir,
    bin: String,
    port: u16,
}

impl Pg {
    fn start() -> Pg {
        need("psql", "postgresql-client");
        let bin = String::from_utf8_lossy(
            &Command::new("sh")
                .arg("-c")
                .arg("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1")
                .output()
                .unwrap()
                .stdout,
        )
        .trim()
        .to_string();
        assert!(
            !bin.is_empty(),
            "PostgreSQL is missing: install the Debian package postgresql"
        );
        let dir = tempfile::Builder::new()
            .prefix("vigil-pg-")
            .tempdir()
            .unwrap();
        let st = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        let port = free_port();
        let data = dir.path().join("data");
        let ok = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{bin}/initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "initdb failed");
        let ok = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{bin}/pg_ctl"))
            .args(["-w", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1",
                dir.path().display()
            ))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "pg_ctl start failed");
        let pg = Pg { dir, bin, port };
        pg.sql("CREATE ROLE app LOGIN");
        pg
    }

    fn sock(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn sql(&self, q: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-X",
                "-At",
                "-h",
                &self.sock(),
                "-p",
                &self.port.to_string(),
            ])
            .args(["-U", "postgres", "-d", "postgres", "-c", q])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{q}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A psql client that stays connected (stdin kept open).
    fn client(&self, user: &str, first: &str) -> Client {
        let mut c = Command::new("psql")
            .args(["-X", "-q", "-h", &self.sock(), "-p", &self.port.to_string()])
            .args(["-U", user, "-d", "postgres"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if let Some(i) = c.stdin.as_mut() {
            let _ = writeln!(i, "{first}");
        }
        Client(c)
    }

    fn sessions(&self, user: &str) -> i64 {
        self.sql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = '{user}'"
        ))
        .parse()
        .unwrap_or(-1)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/pg_ctl", self.bin))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .status();
    }
}

struct Client(Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn postgres_case(set: &ExecutorSet, executor: &str, host: &str) {
    let pg = Pg::start();
    let _a = pg.client("app", "SELECT 1;");
    let _b = pg.client("app", "SELECT 2;");
    let _t = pg.client("app", "BEGIN; SELECT 3;");
    let _s = pg.client("postgres", "SELECT 4;");
    wait_until("4 sessions", || {
        pg.sessions("app") == 3 && pg.sessions("postgres") >= 1
    });
    std::thread::sleep(Duration::from_millis(3200));
    let _young = pg.client("app", "SELECT 5;");
    wait_until("the young session", || pg.sessions("app") == 4);
    let port = pg.port.to_string();
    let sock = pg.sock();
    let x = execution(
        "connection_reset",
        host,
        executor,
        &[
            ("service", "orders"),
            ("server", "postgresql"),
            ("idle_seconds", "2"),
            ("pg_host", &sock),
            ("pg_port", &port),
            ("pg_user", "postgres"),
        ],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert_eq!(fact(&o, "terminated"), Some(3), "{}", show(&o));
    wait_until("idle app sessions gone", || pg.sessions("app") == 1);
    assert!(
        pg.sessions("postgres") >= 1,
        "a superuser session was terminated"
    );
    assert!(fact(&o, "pool_used").is_some() && fact(&o, "pool_max").is_some());
}

struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let server = need("redis-server", "redis-server");
        need("redis-cli", "redis-tools");
        let dir = tempfile::Builder::new()
            .prefix("vigil-redis-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let child = Command::new(server)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("redis listens", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Redis {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn redis_case(set: &ExecutorSet, executor: &str, host: &str) {
    let r = Redis::start();
    let old: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", r.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(3200));
    let mut young = TcpStream::connect(("127.0.0.1", r.port)).unwrap();
    let port = r.port.to_string();
    let x = execution(
        "connection_reset",
        host,
        executor,
        &[
            ("service", "cache"),
            ("server", "redis"),
            ("idle_seconds", "2"),
            ("redis_host", "127.0.0.1"),
            ("redis_port", &port),
        ],
    );
    let o = set.run(&x).await;
    assert!(o.success, "{}", show(&o));
    assert_eq!(fact(&o, "killed_clients"), Some(3), "{}", show(&o));
    for mut s in old {
        use std::io::Read;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "an idle client survived");
    }
    // The young client still works.
    use std::io::Read;
    young.write_all(b"PING\r\n").unwrap();
    young
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 7];
    young.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_postgresql_locally() {
    if e2e("connection_reset_postgresql_locally") {
        postgres_case(&local_set(), "local", "localhost").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_postgresql_over_ssh() {
    if e2e("connection_reset_postgresql_over_ssh") {
        let sshd = Sshd::start();
        postgres_case(&sshd.executors("db", 4), "ssh", "db").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_redis_locally() {
    if e2e("connection_reset_redis_locally") {
        redis_case(&local_set(), "local", "localhost").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_redis_over_ssh() {
    if e2e("connection_reset_redis_over_ssh") {
        let sshd = Sshd::start();
        redis_case(&sshd.executors("cache", 4), "ssh", "cache").await;
    }
}
