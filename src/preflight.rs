//! What `vigil check` verifies on this machine beyond the file's syntax:
//! the files and variables the config points at, as the hub will meet them
//! later. SSH identity files (present, readable, not readable by others),
//! known_hosts (present, holding a key for each ssh host), and the
//! environment variables that hold tokens and keys.
//!
//! Reads files and runs `ssh -G` and `ssh-keygen -F` (local, no network);
//! never connects anywhere (that is `vigil doctor`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Config;
use crate::config::HostEntry;
use crate::exec::HostExecutor;
use crate::exec::ssh::SshTarget;
use crate::units::{FileError, key_line_after, line_of};

/// Every problem the environment has with `config` (`file` names it and
/// `text` is its source, for lines): where in the config and what, with
/// the fix.
pub fn check(config: &Config, file: &str, text: &str) -> Vec<FileError> {
    let mut out = Vec::new();
    for h in &config.hosts {
        if let Ok(Some(HostExecutor::Ssh(t))) = crate::exec::host_executor(h) {
            check_ssh(h, &t, file, text, &mut out);
        }
    }
    for (i, e) in config.escalation.iter().enumerate() {
        if let Some(var) = &e.routing_key_env
            && unset(var)
        {
            out.push(FileError {
file: file.to_string(),
                line: key_line_after(text, &format!("\"{}\"", e.name), "routing_key_env"),
                message: format!(
                    "escalation[{i}] ({:?}).routing_key_env names {var}, which is not set or empty in this environment; `vigil serve` refuses to start without it (export {var}=... in the service's environment)",
                    e.name
                ),
            });
        }
    }
    if let Some(var) = config
        .analysis
        .as_ref()
        .and_then(|a| a.llm.as_ref())
        .and_then(|l| l.api_key_env.as_ref())
        && unset(var)
    {
        out.push(FileError {
file: file.to_string(),
            line: line_of(text, "api_key_env"),
            message: format!(
                "analysis.llm.api_key_env names {var}, which is not set or empty; the LLM analyser will fail and fall back to the heuristic (export {var}=...)"
            ),
        });
    }
    out
}

fn unset(var: &str) -> bool {
    std::env::var(var).map(|v| v.is_empty()).unwrap_or(true)
}

/// A private key file: present, a file, readable by this user, and not
/// readable by others (ssh refuses such a key).
pub fn identity_problem(p: &Path) -> Option<String> {
    let m = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!("{} does not exist", p.display()));
        }
        Err(e) => return Some(format!("{} cannot be read: {e}", p.display())),
    };
    if !m.is_file() {
        return Some(format!("{} is not a file", p.display()));
    }
    if let Err(e) = std::fs::File::open(p) {
        return Some(format!(
            "{} cannot be read by this user (uid {}): {e}; the hub's user must own it (chown)",
            p.display(),
            // SAFETY: getuid has no preconditions and cannot fail.
            unsafe { libc::getuid() }
        ));
    }
    let mode = m.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Some(format!(
            "{} has mode {mode:04o}: ssh refuses a private key that group or others can read; chmod 600 {}",
            p.display(),
            p.display()
        ));
    }
    None
}

/// What `ssh -G` says about a target: the name host keys are looked up by
/// and the known_hosts files it reads.
#[derive(Debug, Default)]
struct Resolved {
    lookup: String,
    port: u16,
    hostname: String,
    files: Vec<PathBuf>,
}

fn expand(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

fn resolve(t: &SshTarget) -> Result<Resolved, String> {
    let dir = std::env::temp_dir();
    let argv = t.settings_command(&dir);
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(crate::exec::ssh::client_env())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh -G ({e}); is the OpenSSH client installed?"))?;
    if !out.status.success() {
        return Err(format!(
            "ssh -G failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut r = Resolved {
        port: 22,
        ..Resolved::default()
    };
    let mut alias = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((k, v)) = line.split_once(' ') else {
            continue;
        };
        match k {
            "hostname" => r.hostname = v.to_string(),
            "port" => r.port = v.parse().unwrap_or(22),
            "hostkeyalias" => alias = Some(v.to_string()),
            "userknownhostsfile" | "globalknownhostsfile" => {
                r.files
                    .extend(v.split_whitespace().filter(|f| *f != "none").map(expand));
            }
            _ => {}
        }
    }
    let name = alias.unwrap_or_else(|| r.hostname.clone());
    r.lookup = if r.port == 22 {
        name
    } else {
        format!("[{name}]:{}", r.port)
    };
    Ok(r)
}

/// Does `file` hold a host key for `name` (`ssh-keygen -F`, which also
/// reads hashed entries)?
fn has_key(file: &Path, name: &str) -> bool {
    Command::new("ssh-keygen")
        .args(["-F", name, "-f"])
        .arg(file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn check_ssh(h: &HostEntry, t: &SshTarget, file: &str, text: &str, out: &mut Vec<FileError>) {
    let anchor = format!("\"{}\"", h.name);
    let at = |key: &str| key_line_after(text, &anchor, key).or_else(|| line_of(text, &anchor));
    let what = format!("hosts[name={:?}].ssh", h.name);
    if let Some(p) = &t.identity
        && let Some(why) = identity_problem(p)
    {
        out.push(FileError {
            file: file.to_string(),
            line: at("identity"),
            message: format!("{what}.identity: {why}"),
        });
    }
    if let Some(k) = &t.known_hosts {
        match std::fs::File::open(k) {
            Ok(_) => {}
            Err(e) => {
                out.push(FileError {
file: file.to_string(),
                    line: at("known_hosts"),
                    message: format!(
                        "{what}.known_hosts: {} cannot be read: {e}; ssh checks every host key against it (StrictHostKeyChecking=yes). Create it after checking the host's fingerprint: ssh-keyscan{} {} > {}",
                        k.display(),
                        t.port.map(|p| format!(" -p {p}")).unwrap_or_default(),
                        t.host,
                        k.display()
                    ),
                });
                return;
            }
        }
    }
    let r = match resolve(t) {
        Ok(r) => r,
        Err(e) => {
            out.push(FileError {
                file: file.to_string(),
                line: line_of(text, &anchor),
                message: format!("{what}: {e}"),
            });
            return;
        }
    };
    let readable: Vec<&PathBuf> = r.files.iter().filter(|f| f.is_file()).collect();
    if readable.iter().any(|f| has_key(f, &r.lookup)) {
        return;
    }
    let files = if r.files.is_empty() {
        "(none)".to_string()
    } else {
        r.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let target = r
        .files
        .first()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "~/.ssh/known_hosts".into());
    out.push(FileError {
file: file.to_string(),
        line: at("known_hosts"),
        message: format!(
            "{what}: no host key for {} in {files}; ssh will refuse the host (StrictHostKeyChecking=yes). Add it after checking its fingerprint: ssh-keyscan -p {} {} >> {target}",
            r.lookup, r.port, r.hostname
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_files_are_checked_for_presence_and_mode() {
        let dir = std::env::temp_dir().join(format!("vigil-preflight-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("id");
        assert!(identity_problem(&key).unwrap().contains("does not exist"));
        std::fs::write(&key, "x").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let why = identity_problem(&key).unwrap();
        assert!(why.contains("0644") && why.contains("chmod 600"), "{why}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(identity_problem(&key), None);
        assert!(identity_problem(&dir).unwrap().contains("not a file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
