//! A PostgreSQL cluster of the test's own: `initdb` in a temp dir (as the
//! `postgres` OS user when the test runs as root: initdb refuses root),
//! `postgres` on a free 127.0.0.1 port and a socket in that dir. Password
//! logins over TCP (scram-sha-256) for the `vigil` role, trusted local
//! socket for the test's own `psql`. Stopped (immediate) and removed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `vigil` role's password in every test cluster.
pub const PASSWORD: &str = "pg-right-Secret-7781";

/// The environment variable the tests' `[store] password_env` names.
pub const PASSWORD_ENV: &str = "VIGIL_TEST_PG_PASSWORD";

pub struct Pg {
    dir: tempfile::TempDir,
    bin: String,
    pub port: u16,
    /// Run the server tools as this OS user (None: as ourselves).
    as_user: Option<&'static str>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Pg {
    /// Starts a cluster with a `vigil` role (password [`PASSWORD`]) owning
    /// the database `db`. Panics (the test fails) when PostgreSQL is not
    /// installed.
    pub fn start(db: &str) -> Pg {
        let bin = String::from_utf8_lossy(
            &Command::new("sh")
                .arg("-c")
                .arg("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1")
                .output()
                .expect("sh")
                .stdout,
        )
        .trim()
        .to_string();
        assert!(
            !bin.is_empty() && Path::new(&bin).join("initdb").exists(),
            "PostgreSQL is missing: install the Debian package postgresql (.ci/needs.d/postgres.sh)"
        );
        assert!(
            which("psql"),
            "psql is missing: install the Debian package postgresql-client"
        );
        let root = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("vigil-pgstore-")
            .tempdir()
            .expect("temp dir");
        let as_user = root.then_some("postgres");
        if root {
            let st = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(st.success(), "chown of the cluster dir to postgres failed");
        }
        let port = free_port();
        let pg = Pg {
            dir,
            bin,
            port,
            as_user,
        };
        let data = pg.data();
        let out = pg
            .tool("initdb")
            .args([
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-U",
                "postgres",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = pg
            .tool("pg_ctl")
            .args(["-w", "-t", "30", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(pg.dir.path().join("log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
                pg.dir.path().display()
            ))
            .arg("start")
            .stdout(Stdio::null())
            .output()
            .expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            pg.log()
        );
        pg.sql(
            "postgres",
            &format!("CREATE ROLE vigil LOGIN PASSWORD '{PASSWORD}'"),
        );
        pg.sql("postgres", &format!("CREATE DATABASE {db} OWNER vigil"));
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn tool(&self, name: &str) -> Command {
        let path = format!("{}/{name}", self.bin);
        match self.as_user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--", &path]);
                c
            }
            None => Command::new(path),
        }
    }

    /// `postgresql://vigil@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://vigil@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL as the superuser over the socket; its output, trimmed.
    pub fn sql(&self, db: &str, q: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                q,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{q}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn which(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
