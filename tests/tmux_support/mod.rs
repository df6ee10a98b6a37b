//! The console in a real terminal: a tmux server of the test's own (its
//! socket name), one session, keys in and the screen out. Killed on drop.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Fails (never skips) when tmux is missing under VIGIL_E2E=1.
pub fn require_tmux() {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "VIGIL_E2E=1 but tmux is not installed");
}

pub struct Tmux {
    pub socket: String,
    pub session: String,
}

impl Tmux {
    /// A new tmux server named after `name` and this process, running
    /// `cmd` in a 160x45 session.
    pub fn start(name: &str, cmd: &str) -> Tmux {
        let t = Tmux {
            socket: format!("vigil-{name}-{}", std::process::id()),
            session: "t".into(),
        };
        t.run(&["new-session", "-d", "-s", "t", "-x", "160", "-y", "45", cmd]);
        t
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.session])
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.run(&["send-keys", "-t", &self.session, k]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    pub fn text(&self, s: &str) {
        self.run(&["send-keys", "-t", &self.session, "-l", s]);
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Waits until the screen satisfies `ok`; panics with the screen.
    pub fn wait(&self, what: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if Instant::now() > end {
                panic!("timed out waiting for {what}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The audit trail of a data dir as JSON objects (`vigil audit export`).
pub fn audit_json(bin: &str, data: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(bin)
        .args(["audit", "export", "--data-dir"])
        .arg(data)
        .output()
        .expect("export runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
