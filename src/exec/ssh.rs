//! The ssh executor's settings (`[hosts.ssh]`) and the exact `ssh` client
//! command line for one step: `BatchMode=yes`, `ConnectTimeout`,
//! `StrictHostKeyChecking=yes` (known_hosts enforced), `ControlMaster=auto`
//! with a ControlPath and ControlPersist for connection sharing; the user's
//! `~/.ssh/config` (and its ProxyJump) still applies. The remote command is
//! `timeout -k 5 SECS` followed by every argument shell-quoted, so a timeout
//! also ends the step on the host.
//!
//! Must never pass a value to the remote shell unquoted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runbook::shell_quote;

/// `[hosts.ssh]` as written (typed when the config is read; checked into
/// an [`SshTarget`] by [`SshTarget::from_spec`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// Address or ssh_config alias (default: the host's name).
    pub host: Option<String>,
    pub user: Option<String>,
    pub port: Option<i64>,
    /// Private key file (`-i`, with IdentitiesOnly).
    pub identity: Option<PathBuf>,
    /// known_hosts file (default: OpenSSH's own).
    pub known_hosts: Option<PathBuf>,
    /// An ssh_config file (`-F`) instead of ~/.ssh/config.
    pub config: Option<PathBuf>,
    /// `-J` jump host(s).
    pub proxy_jump: Option<String>,
    /// Seconds (default 10).
    pub connect_timeout: Option<i64>,
    /// How long a shared connection stays open when idle (default `60s`).
    pub control_persist: Option<String>,
    /// Extra `-o` options, `Key=Value`.
    #[serde(default)]
    pub options: Vec<String>,
}

/// Options a site may not override through `options`.
const FIXED: [&str; 6] = [
    "batchmode",
    "stricthostkeychecking",
    "controlmaster",
    "controlpath",
    "permitlocalcommand",
    "localcommand",
];

/// One ssh host, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SshTarget {
    pub host: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub proxy_jump: Option<String>,
    pub connect_timeout: u64,
    pub control_persist: String,
    pub options: Vec<String>,
}

fn host_ok(h: &str) -> bool {
    !h.is_empty()
        && !h.starts_with('-')
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]%".contains(c))
}

fn user_ok(u: &str) -> bool {
    !u.is_empty()
        && !u.starts_with('-')
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl SshTarget {
    /// Reads `[hosts.ssh]` from a TOML table (a table built in code); the
    /// error is (key, what is wrong and accepted).
    pub fn from_table(name: &str, t: Option<&toml::Table>) -> Result<SshTarget, (String, String)> {
        let spec: SshSpec = match t {
            None => SshSpec::default(),
            Some(t) => toml::Value::Table(t.clone())
                .try_into()
                .map_err(|e: toml::de::Error| ("*".to_string(), e.message().to_string()))?,
        };
        Self::from_spec(name, spec)
    }

    /// Checks `[hosts.ssh]` of the host `name` (its address by default);
    /// the error is (key, what is wrong and accepted).
    pub fn from_spec(name: &str, spec: SshSpec) -> Result<SshTarget, (String, String)> {
        let bad = |k: &str, m: String| Err((k.to_string(), m));
        let host = spec.host.unwrap_or_else(|| name.to_string());
        if !host_ok(&host) {
            return bad(
                "host",
                format!(
                    "{:?} is not a host name or address; expected letters, digits, '.', '-', ':' (not leading '-')",
                    host.escape_debug().to_string()
                ),
            );
        }
        if let Some(u) = &spec.user
            && !user_ok(u)
        {
            return bad(
                "user",
                format!(
                    "{u:?} is not a user name; expected letters, digits, '.', '_', '-' (not leading '-')"
                ),
            );
        }
        let port = match spec.port {
            None => None,
            Some(p) if (1..=65535).contains(&p) => Some(p as u16),
            Some(p) => return bad("port", format!("{p} is out of range; expected 1..65535")),
        };
        if let Some(j) = &spec.proxy_jump
            && !j.split(',').all(|h| {
                let h = h.rsplit('@').next().unwrap_or("");
                host_ok(h)
            })
        {
            return bad(
                "proxy_jump",
                format!("{j:?} is not [user@]host[:port][,...]"),
            );
        }
        let connect_timeout = match spec.connect_timeout {
            None => 10,
            Some(s) if (1..=300).contains(&s) => s as u64,
            Some(s) => {
                return bad(
                    "connect_timeout",
                    format!("{s} is out of range; expected 1..300 seconds"),
                );
            }
        };
        let control_persist = spec.control_persist.unwrap_or_else(|| "60s".into());
        if !control_persist.chars().all(|c| c.is_ascii_alphanumeric()) || control_persist.is_empty()
        {
            return bad(
                "control_persist",
                format!("{control_persist:?}; expected a time such as \"60s\" or \"10m\""),
            );
        }
        // yes/no, or a time: bare seconds or with units, at most a day.
        if !["yes", "no"].contains(&control_persist.as_str()) {
            let as_time = if control_persist.chars().all(|c| c.is_ascii_digit()) {
                format!("{control_persist}s")
            } else {
                control_persist.clone()
            };
            let range = crate::units::limits::SSH_CONTROL_PERSIST;
            if range.parse("control_persist", &as_time).is_err() {
                return bad(
                    "control_persist",
                    format!(
                        "{control_persist:?} is out of range; accepted \"yes\", \"no\" or a time {}",
                        range.describe()
                    ),
                );
            }
        }
        for o in &spec.options {
            let Some((k, _)) = o.split_once('=') else {
                return bad("options", format!("{o:?} is not Key=Value"));
            };
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
                return bad("options", format!("{o:?}: {k:?} is not an ssh option name"));
            }
            if FIXED.contains(&k.to_ascii_lowercase().as_str()) {
                return bad(
                    "options",
                    format!("{k} is fixed by Vigil and cannot be overridden"),
                );
            }
        }
        for (k, p) in [
            ("identity", &spec.identity),
            ("known_hosts", &spec.known_hosts),
            ("config", &spec.config),
        ] {
            if let Some(p) = p
                && !p.is_absolute()
            {
                return bad(k, format!("{} is not an absolute path", p.display()));
            }
        }
        Ok(SshTarget {
            host,
            user: spec.user,
            port,
            identity: spec.identity,
            known_hosts: spec.known_hosts,
            config: spec.config,
            proxy_jump: spec.proxy_jump,
            connect_timeout,
            control_persist,
            options: spec.options,
        })
    }

    /// The remote command line: `timeout -k 5 SECS` and the argv, each
    /// argument shell-quoted.
    pub fn remote_command(argv: &[String], timeout: Duration) -> String {
        let secs = timeout.as_secs().max(1);
        let mut s = format!("timeout -k 5 {secs}");
        for a in argv {
            s.push(' ');
            s.push_str(&shell_quote(a));
        }
        s
    }

    /// The ControlPath socket of this target: one per distinct connection
    /// setting, short enough for a socket path.
    pub fn control_path(&self, control_dir: &Path) -> PathBuf {
        use sha2::Digest;
        let id = format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.host,
            self.user,
            self.port,
            self.identity,
            self.known_hosts,
            self.config,
            self.proxy_jump,
            self.options
        );
        let h = sha2::Sha256::digest(id.as_bytes());
        control_dir.join(hex::encode(&h[..10]))
    }

    /// The argv that starts this target's shared master connection in the
    /// background (`-f -N`, `ControlMaster=yes`).
    pub fn master_command(&self, control_dir: &Path) -> Vec<String> {
        let mut c = self.base("yes", control_dir);
        c.push("-f".into());
        c.push("-N".into());
        c.push("--".into());
        c.push(self.host.clone());
        c
    }

    /// The full local argv of the `ssh` client for one step.
    pub fn command(&self, argv: &[String], timeout: Duration, control_dir: &Path) -> Vec<String> {
        let mut c = self.base("auto", control_dir);
        c.push("-T".into());
        c.push("--".into());
        c.push(self.host.clone());
        c.push(Self::remote_command(argv, timeout));
        c
    }

    /// `ssh -G`: the client's effective settings for this target (host
    /// name after aliases, port, known_hosts files), without connecting.
    pub fn settings_command(&self, control_dir: &Path) -> Vec<String> {
        let mut c = self.base("no", control_dir);
        c.push("-G".into());
        c.push("--".into());
        c.push(self.host.clone());
        c
    }

    /// A fresh connection (no shared master) that runs `true`: what
    /// `vigil doctor` tries.
    pub fn probe_command(&self, control_dir: &Path) -> Vec<String> {
        let mut c = self.base("no", control_dir);
        c.push("-T".into());
        c.push("--".into());
        c.push(self.host.clone());
        c.push("true".into());
        c
    }

    /// `user@host:port` as ssh would be asked for it (for messages).
    pub fn address(&self) -> String {
        format!(
            "{}{}{}",
            self.user
                .as_deref()
                .map(|u| format!("{u}@"))
                .unwrap_or_default(),
            self.host,
            self.port.map(|p| format!(":{p}")).unwrap_or_default()
        )
    }

    fn base(&self, master: &str, control_dir: &Path) -> Vec<String> {
        let mut c: Vec<String> = vec!["ssh".into()];
        let mut o = |kv: String| {
            c.push("-o".into());
            c.push(kv);
        };
        // Given first: OpenSSH keeps the first value it reads for an option.
        o("BatchMode=yes".into());
        o("StrictHostKeyChecking=yes".into());
        o(format!("ConnectTimeout={}", self.connect_timeout));
        o(format!("ControlMaster={master}"));
        o(format!(
            "ControlPath={}",
            self.control_path(control_dir).display()
        ));
        o(format!("ControlPersist={}", self.control_persist));
        o("ServerAliveInterval=15".into());
        o("ServerAliveCountMax=3".into());
        o("LogLevel=ERROR".into());
        if let Some(k) = &self.known_hosts {
            o(format!("UserKnownHostsFile={}", k.display()));
            o("GlobalKnownHostsFile=none".into());
        }
        if self.identity.is_some() {
            o("IdentitiesOnly=yes".into());
        }
        for opt in &self.options {
            o(opt.clone());
        }
        if let Some(f) = &self.config {
            c.push("-F".into());
            c.push(f.display().to_string());
        }
        if let Some(i) = &self.identity {
            c.push("-i".into());
            c.push(i.display().to_string());
        }
        if let Some(p) = self.port {
            c.push("-p".into());
            c.push(p.to_string());
        }
        if let Some(u) = &self.user {
            c.push("-l".into());
            c.push(u.clone());
        }
        if let Some(j) = &self.proxy_jump {
            c.push("-J".into());
            c.push(j.clone());
        }
        c
    }
}

/// ssh's own reason for a failure: its last stderr lines, joined.
pub fn ssh_reason(stderr: &[u8], status: Option<i32>) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("; ");
    if tail.is_empty() {
        format!(
            "ssh exited {}",
            status
                .map(|c| c.to_string())
                .unwrap_or_else(|| "on a signal".into())
        )
    } else {
        tail
    }
}

/// The environment of the ssh client: the step environment plus what the
/// client needs to find the user's config, keys and agent.
pub fn client_env() -> Vec<(String, String)> {
    let mut env = super::local::step_env();
    if let Ok(v) = std::env::var("SSH_AUTH_SOCK") {
        env.push(("SSH_AUTH_SOCK".into(), v));
    }
    env
}

/// Creates the ControlPath directory, private to this user.
pub fn ensure_control_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create the ssh control dir {}: {e}", dir.display()))?;
    }
    let m = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot read the ssh control dir {}: {e}", dir.display()))?;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    if !m.is_dir() || m.uid() != uid || m.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "the ssh control dir {} must be a directory owned by uid {uid} with mode 0700",
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_argument_is_quoted_and_wrapped_in_timeout() {
        let argv: Vec<String> = ["rm", "-f", "--", "a b; reboot", "$(id)", "it's"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = SshTarget::remote_command(&argv, Duration::from_secs(30));
        assert_eq!(
            r,
            "timeout -k 5 30 rm -f -- 'a b; reboot' '$(id)' 'it'\\''s'"
        );
    }

    #[test]
    fn settings_are_validated_with_the_key_named() {
        let t: toml::Table = toml::from_str("port = 70000").unwrap();
        let e = SshTarget::from_table("h", Some(&t)).unwrap_err();
        assert_eq!(e.0, "port");
        let t: toml::Table = toml::from_str("options = [\"StrictHostKeyChecking=no\"]").unwrap();
        assert_eq!(
            SshTarget::from_table("h", Some(&t)).unwrap_err().0,
            "options"
        );
        let t: toml::Table = toml::from_str("host = \"-oProxyCommand=x\"").unwrap();
        assert_eq!(SshTarget::from_table("h", Some(&t)).unwrap_err().0, "host");
        let t: toml::Table = toml::from_str("hots = \"x\"").unwrap();
        assert!(SshTarget::from_table("h", Some(&t)).is_err());
        let ok = SshTarget::from_table("web-1", None).unwrap();
        let c = ok.command(
            &["true".into()],
            Duration::from_secs(5),
            Path::new("/tmp/c"),
        );
        assert!(c.contains(&"BatchMode=yes".to_string()));
        assert!(c.contains(&"StrictHostKeyChecking=yes".to_string()));
        assert_eq!(c[c.len() - 2], "web-1");
    }
}
