//! Running one argv as a child process: no shell, a known minimal
//! environment, stdin closed, stdout and stderr captured up to a limit, its
//! own process group, and on timeout the whole group is sent SIGTERM, then
//! SIGKILL; the same happens when the caller stops it (a cancelled job).
//!
//! Used by the local executor directly, by the ssh executor for the `ssh`
//! client process and by `vigil agent` for a job's steps. Must not
//! interpret or join arguments.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// The PATH every step gets.
pub const STEP_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a finished (or killed) process left.
#[derive(Debug, Clone, Default)]
pub struct ProcOutput {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Stopped by the caller before it ended (its group was killed).
    pub stopped: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Bytes beyond the limit (both streams).
    pub dropped: u64,
    /// Why it could not run at all.
    pub error: Option<String>,
}

impl ProcOutput {
    pub fn not_started(error: String) -> ProcOutput {
        ProcOutput {
            error: Some(error),
            ..Default::default()
        }
    }
}

/// The environment of a local step: PATH, the C locale, and HOME/USER/
/// LOGNAME when set (psql and others read files under HOME). Nothing else
/// leaks in from the console's environment.
pub fn step_env() -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), STEP_PATH.to_string()),
        ("LC_ALL".to_string(), "C".to_string()),
        ("LANG".to_string(), "C".to_string()),
    ];
    for k in ["HOME", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(k) {
            env.push((k.to_string(), v));
        }
    }
    env
}

async fn read_capped<R: AsyncRead + Unpin>(mut r: R, limit: usize) -> (Vec<u8>, u64) {
    let mut keep = Vec::new();
    let mut dropped = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(keep.len());
                let take = room.min(n);
                keep.extend_from_slice(&buf[..take]);
                dropped += (n - take) as u64;
            }
        }
    }
    (keep, dropped)
}

fn signal_group(pgid: u32, sig: i32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals that process group; the
    // group is the child's own (process_group(0)), never ours.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// Runs `argv` (argv[0] looked up in the env's PATH) and waits at most
/// `timeout`; on timeout the process group gets SIGTERM, then SIGKILL two
/// seconds later.
pub async fn run_argv(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
    limit: usize,
) -> ProcOutput {
    run_argv_until(argv, env, timeout, limit, std::future::pending(), |_| {}).await
}

/// SIGTERM to the group, SIGKILL two seconds later (or at once when the
/// leader is gone), then the leader's exit status.
async fn stop_group(
    pid: u32,
    child: &mut tokio::process::Child,
) -> Option<std::process::ExitStatus> {
    signal_group(pid, libc::SIGTERM);
    match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(s) => {
            signal_group(pid, libc::SIGKILL);
            s.ok()
        }
        Err(_) => {
            signal_group(pid, libc::SIGKILL);
            child.wait().await.ok()
        }
    }
}

/// [`run_argv`], also stopped (its whole group) when `stop` completes;
/// `started` learns the process's pid (its group's id) once it runs.
pub async fn run_argv_until(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
    limit: usize,
    stop: impl std::future::Future<Output = ()>,
    started: impl FnOnce(u32),
) -> ProcOutput {
    let Some(prog) = argv.first() else {
        return ProcOutput::not_started("empty argv".into());
    };
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(STEP_PATH);
    let Some(exe) = resolve(prog, path) else {
        return ProcOutput::not_started(format!("{prog:?} is not installed (not found in {path})"));
    };
    let mut cmd = Command::new(exe);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return ProcOutput::not_started(format!("cannot start {prog:?}: {e}")),
    };
    let pid = child.id().unwrap_or(0);
    started(pid);
    let out = child
        .stdout
        .take()
        .map(|s| tokio::spawn(read_capped(s, limit)));
    let err = child
        .stderr
        .take()
        .map(|s| tokio::spawn(read_capped(s, limit)));
    let (mut timed_out, mut stopped) = (false, false);
    let waited = tokio::select! {
        w = tokio::time::timeout(timeout, child.wait()) => Some(w),
        () = stop => None,
    };
    let status = match waited {
        Some(Ok(s)) => s.ok(),
        Some(Err(_)) => {
            timed_out = true;
            stop_group(pid, &mut child).await
        }
        None => {
            stopped = true;
            stop_group(pid, &mut child).await
        }
    };
    let exit_code = status.and_then(|s| {
        use std::os::unix::process::ExitStatusExt;
        s.code().or_else(|| s.signal().map(|n| 128 + n))
    });
    // A grandchild may still hold the pipes: wait briefly, then give up on
    // the rest of the output.
    let mut res = ProcOutput {
        exit_code,
        timed_out,
        stopped,
        ..Default::default()
    };
    for (task, slot) in [(out, 0), (err, 1)] {
        let Some(mut task) = task else { continue };
        match tokio::time::timeout(Duration::from_millis(500), &mut task).await {
            Ok(Ok((bytes, dropped))) => {
                res.dropped += dropped;
                if slot == 0 {
                    res.stdout = bytes;
                } else {
                    res.stderr = bytes;
                }
            }
            _ => task.abort(),
        }
    }
    res
}

/// Runs `argv` with stdin, stdout and stderr on /dev/null (for a process
/// that leaves a daemon behind, such as `ssh -f`); true when it exited 0
/// within `timeout` (otherwise its process group is killed).
pub async fn run_quiet(argv: &[String], env: &[(String, String)], timeout: Duration) -> bool {
    let Some(exe) = argv.first().and_then(|p| resolve(p, STEP_PATH)) else {
        return false;
    };
    let mut cmd = Command::new(exe);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    let pid = child.id().unwrap_or(0);
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) => st.success(),
        _ => {
            signal_group(pid, libc::SIGKILL);
            let _ = child.wait().await;
            false
        }
    }
}

/// Finds a program in PATH (or takes it as is when it has a slash).
fn resolve(prog: &str, path: &str) -> Option<std::path::PathBuf> {
    if prog.contains('/') {
        return Some(prog.into());
    }
    if prog.is_empty() {
        return None;
    }
    path.split(':')
        .map(|d| std::path::Path::new(d).join(prog))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}
