//! Where a PostgreSQL store is: `[store]` in the config file, the URL it
//! names and the password (an environment variable or `~/.pgpass`), never
//! shown in an error or a log.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StoreError;

/// `[store]` in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    /// `postgresql://USER@HOST:PORT/DB`; unset: the SQLite file in the
    /// data dir.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the password (else `~/.pgpass`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// How long the active hub's lease lasts unrenewed (default 10s): a
    /// standby takes over about this long after the active hub is lost,
    /// and a cut-off active hub stops acting within it.
    #[serde(default)]
    pub lease_ttl: Option<String>,
}

impl StoreSpec {
    /// The lease time: `lease_ttl`, 2s to 10m; 10s when unset.
    pub fn lease_ttl(&self) -> Result<Duration, String> {
        let Some(text) = self.lease_ttl.as_deref() else {
            return Ok(Duration::from_secs(10));
        };
        let d = humantime::parse_duration(text.trim()).map_err(|e| {
            format!("[store] lease_ttl = {text:?}: {e}; a duration such as \"10s\" is accepted")
        })?;
        if d < Duration::from_secs(2) || d > Duration::from_secs(600) {
            return Err(format!(
                "[store] lease_ttl = {text:?} is out of range: 2s to 10m is accepted"
            ));
        }
        Ok(d)
    }
}

/// Where a PostgreSQL store is, parsed from `[store] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    /// The environment variable holding the password, if configured.
    pub password_env: Option<String>,
}

const URL_SHAPE: &str = "postgresql://USER@HOST:PORT/DB";

impl PgTarget {
    /// Parses `postgresql://USER@HOST[:PORT]/DB` (also `postgres://`;
    /// HOST may be `[v6]`; PORT defaults to 5432). A password in the URL
    /// is refused without repeating the URL.
    pub fn parse(url: &str, password_env: Option<&str>) -> Result<PgTarget, String> {
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or_else(|| format!("[store] url must start with postgresql:// ({URL_SHAPE})"))?;
        let (userinfo, rest) = rest
            .split_once('@')
            .ok_or_else(|| format!("[store] url names no user ({URL_SHAPE})"))?;
        if userinfo.contains(':') {
            return Err(
                "[store] url must not carry a password; name an environment variable \
                 with [store] password_env or use ~/.pgpass"
                    .into(),
            );
        }
        let (hostport, dbname) = rest
            .split_once('/')
            .ok_or_else(|| format!("[store] url names no database ({URL_SHAPE})"))?;
        if dbname.contains(['?', '/', '#']) {
            return Err(format!(
                "[store] url: options after the database name are not accepted ({URL_SHAPE})"
            ));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("[store] url: unclosed [ in the host ({URL_SHAPE})"))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            None => 5432,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("[store] url: port {p:?} is not a number from 1 to 65535 ({URL_SHAPE})")
            })?,
        };
        let ok = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_control() || c == ' ');
        if !ok(userinfo) || !ok(host) || !ok(dbname) {
            return Err(format!(
                "[store] url needs a user, a host and a database ({URL_SHAPE})"
            ));
        }
        if let Some(var) = password_env
            && (var.is_empty() || var.contains(['=', '\0']))
        {
            return Err(format!(
                "[store] password_env {var:?} is not an environment variable name"
            ));
        }
        Ok(PgTarget {
            user: userinfo.to_string(),
            host: host.to_string(),
            port,
            dbname: dbname.to_string(),
            password_env: password_env.map(str::to_string),
        })
    }

    /// `host:port` (`[v6]:port`).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL without any secret, as errors and logs name the store.
    pub fn display(&self) -> String {
        format!("postgresql://{}@{}/{}", self.user, self.addr(), self.dbname)
    }

    pub(super) fn path(&self) -> PathBuf {
        PathBuf::from(self.display())
    }

    /// The password: from `password_env` when configured (it must be
    /// set), else from the password file, else none.
    pub(super) fn password(&self) -> Result<Option<String>, StoreError> {
        if let Some(var) = &self.password_env {
            return match std::env::var(var) {
                Ok(v) => Ok(Some(v)),
                Err(_) => Err(StoreError::BadConfig {
                    path: self.path(),
                    message: format!(
                        "the environment variable {var} (named by [store] password_env) is not set"
                    ),
                }),
            };
        }
        let file = std::env::var_os("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")));
        let Some(file) = file else { return Ok(None) };
        let Ok(text) = std::fs::read_to_string(&file) else {
            return Ok(None);
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(&file)
                && m.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    "{} is readable by others; not using it (chmod 0600 it)",
                    file.display()
                );
                return Ok(None);
            }
        }
        Ok(pgpass_lookup(&text, self))
    }
}

/// The password of the first `~/.pgpass` line matching `t`
/// (`host:port:database:user:password`, `*` matches anything, `\` escapes).
fn pgpass_lookup(text: &str, t: &PgTarget) -> Option<String> {
    let port = t.port.to_string();
    let want = [
        t.host.as_str(),
        port.as_str(),
        t.dbname.as_str(),
        t.user.as_str(),
    ];
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(5);
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() == 5
            && fields[..4]
                .iter()
                .zip(want)
                .all(|(f, w)| f == "*" || f == w || (f == "localhost" && w == "127.0.0.1"))
        {
            return fields.pop();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_passwords_are_refused_without_echo() {
        let t = PgTarget::parse("postgresql://vigil@db.example:6543/audit", Some("PGPW")).unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port, t.dbname.as_str()),
            ("vigil", "db.example", 6543, "audit")
        );
        assert_eq!(t.display(), "postgresql://vigil@db.example:6543/audit");
        let t = PgTarget::parse("postgres://u@[::1]/d", None).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.addr()),
            ("::1", 5432, "[::1]:5432".into())
        );
        let e = PgTarget::parse("postgresql://u:hunter2@h:1/d", None).unwrap_err();
        assert!(e.contains("password") && !e.contains("hunter2"), "{e}");
        for bad in [
            "mysql://u@h/d",
            "postgresql://h:1/d",
            "postgresql://u@h:99999/d",
            "postgresql://u@h:1",
            "postgresql://u@h/d?sslmode=disable",
            "postgresql://u@/d",
        ] {
            assert!(PgTarget::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn pgpass_matches_fields_wildcards_and_escapes() {
        let t = PgTarget::parse("postgresql://vigil@127.0.0.1:5433/audit", None).unwrap();
        let text = "# comment\nother:5433:audit:vigil:no\n127.0.0.1:5433:*:vigil:p\\:w\\\\d\n";
        assert_eq!(pgpass_lookup(text, &t).as_deref(), Some("p:w\\d"));
        assert_eq!(pgpass_lookup("*:*:*:someone:x\n", &t), None);
    }
}
