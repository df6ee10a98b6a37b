//! Ownership of a data dir: exactly one hub decides and acts for a data dir
//! (safety rule 9). The hub holds an exclusive `flock` on `DATA_DIR/vigil.lock`
//! for its whole life; the kernel drops it when the process ends, however it
//! ends (a SIGKILL never leaves a stale lock). Beside the lock the owner
//! writes who it is (pid, command line, since when), so a second process can
//! name the owner in its refusal, and consoles know there is a hub to attach
//! to.
//!
//! It must not decide anything else: whether to attach or refuse is the
//! caller's choice.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file in a data dir. Its content names the owner.
pub const LOCK_FILE: &str = "vigil.lock";

/// The hub's unix socket in a data dir.
pub const SOCKET_FILE: &str = "vigil.sock";

/// Who owns a data dir, as the owner wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    pub pid: u32,
    pub command: String,
    /// RFC 3339, UTC.
    pub since: String,
    /// The HTTP listener's address, when it has one.
    pub listen: Option<String>,
}

impl Owner {
    fn parse(text: &str) -> Owner {
        let mut o = Owner::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "pid" => o.pid = v.trim().parse().unwrap_or(0),
                "command" => o.command = v.to_string(),
                "since" => o.since = v.to_string(),
                "listen" => o.listen = Some(v.to_string()).filter(|s| !s.is_empty()),
                _ => {}
            }
        }
        o
    }

    fn render(&self) -> String {
        format!(
            "pid={}\ncommand={}\nsince={}\nlisten={}\n",
            self.pid,
            self.command,
            self.since,
            self.listen.as_deref().unwrap_or("")
        )
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pid == 0 {
            return f.write_str("a process that has not said who it is yet");
        }
        write!(f, "pid {}", self.pid)?;
        if !self.command.is_empty() {
            write!(f, " ({})", self.command)?;
        }
        if !self.since.is_empty() {
            write!(f, ", since {}", self.since)?;
        }
        Ok(())
    }
}

/// Why a data dir could not be owned.
#[derive(Debug, thiserror::Error)]
pub enum OwnError {
    #[error("the data dir {dir} is owned by another hub: {owner}")]
    Taken { dir: PathBuf, owner: Owner },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock. Dropping it (or the process ending) releases the data dir.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
    owner: Owner,
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // A symlink planted as the lock file is refused, not followed.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn try_flock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor this process owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// This process's command line, as `ps` would show it.
fn own_command() -> String {
    std::fs::read("/proc/self/cmdline")
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" "))
        .replace('\n', " ")
}

impl DirLock {
    /// Takes the data dir, or says who has it. Never waits.
    pub fn acquire(dir: &Path) -> Result<DirLock, OwnError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| OwnError::Io {
            path: path.clone(),
            source,
        };
        let mut file = open_lock(&path).map_err(io)?;
        if !try_flock(&file).map_err(io)? {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(OwnError::Taken {
                dir: dir.to_path_buf(),
                owner: Owner::parse(&text),
            });
        }
        let owner = Owner {
            pid: std::process::id(),
            command: own_command(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            listen: None,
        };
        let mut lock = DirLock {
            file,
            path: path.clone(),
            owner,
        };
        lock.write_owner().map_err(io)?;
        Ok(lock)
    }

    fn write_owner(&mut self) -> std::io::Result<()> {
        let text = self.owner.render();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.set_len(0)?;
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }

    /// Records the HTTP listener's address for consoles that attach.
    pub fn set_listen(&mut self, addr: &str) {
        self.owner.listen = Some(addr.to_string());
        if let Err(e) = self.write_owner() {
            tracing::warn!(path = %self.path.display(), "cannot update the owner file: {e}");
        }
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }
}

/// Who owns `dir` now, if anyone: `None` when no live process holds the
/// lock (a lock file left by a dead hub names nobody).
pub fn current_owner(dir: &Path) -> std::io::Result<Option<Owner>> {
    let path = dir.join(LOCK_FILE);
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // A shared probe: if it succeeds, nobody holds the exclusive lock.
    // SAFETY: flock on a descriptor this process owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if rc == 0 {
        // SAFETY: as above.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        return Ok(None);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
        return Err(e);
    }
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(Some(Owner::parse(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_owner_and_a_released_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = DirLock::acquire(dir.path()).unwrap();
        first.set_listen("127.0.0.1:9797");
        // flock locks belong to the open file description: a second open in
        // the same process conflicts as another process would.
        match DirLock::acquire(dir.path()) {
            Err(OwnError::Taken { owner, .. }) => {
                assert_eq!(owner.pid, std::process::id());
                assert_eq!(owner.listen.as_deref(), Some("127.0.0.1:9797"));
                assert!(!owner.since.is_empty());
            }
            other => panic!("expected Taken, got {other:?}"),
        }
        let seen = current_owner(dir.path()).unwrap().expect("an owner");
        assert_eq!(seen.pid, std::process::id());
        drop(first);
        assert_eq!(current_owner(dir.path()).unwrap(), None);
        DirLock::acquire(dir.path()).expect("free after release");
    }

    #[test]
    fn a_symlink_in_place_of_the_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(LOCK_FILE)).unwrap();
        assert!(matches!(
            DirLock::acquire(dir.path()),
            Err(OwnError::Io { .. })
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
