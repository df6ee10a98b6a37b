//! The console's traps, each tried end to end as an operator meets it: the
//! real binary in a real terminal (tmux) on the demo fleet, the audit
//! trail read back with `vigil audit export`. Needs VIGIL_E2E=1 (and then
//! fails if tmux is missing).

#[path = "tmux_support/mod.rs"]
mod tmux_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tmux_support::{Tmux, audit_json};

const BIN: &str = env!("CARGO_BIN_EXE_vigil");

/// A console in tmux on its own data dir; the shell writes the exit code
/// and the terminal's modes after it exits.
struct Console {
    t: Tmux,
    dir: tempfile::TempDir,
    data: PathBuf,
}

impl Console {
    /// `env` and `args` go before and after the binary.
    fn start(name: &str, env: &str, args: &str) -> Console {
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "VIGIL_E2E=1 but tmux is not installed");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = dir.path().display();
        let cmd = format!(
            "sh -c 'echo $$ > {d}/pid; exec env {env} HOME={d} {BIN} --data-dir {} {args}'; \
             echo $? > {d}/exit; stty -a > {d}/stty; sleep 600",
            data.display(),
        );
        let t = Tmux::start(name, &cmd);
        t.wait("the console", 30, |s| {
            s.contains("1 Alerts") && s.contains("5 Audit")
        });
        Console { t, dir, data }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(self.path("pid"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Waits for the console to exit and the shell to write the modes.
    fn exited(&self) -> (String, String) {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let modes = std::fs::read_to_string(self.path("stty")).unwrap_or_default();
            if modes.contains("speed") {
                let code = std::fs::read_to_string(self.path("exit")).unwrap_or_default();
                return (code.trim().to_string(), modes);
            }
            assert!(
                Instant::now() < end,
                "the console did not exit:\n{}",
                self.t.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn flag(&self, f: &str) -> String {
        self.t
            .run(&[
                "display-message",
                "-p",
                "-t",
                &self.t.session,
                &format!("#{{{f}}}"),
            ])
            .trim()
            .to_string()
    }

    fn quit(&self) {
        self.t.keys(&["Escape", "q"]);
        self.exited();
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        audit_json(BIN, &self.data)
    }
}

/// The action id on the row awaiting approval.
fn waiting_id(s: &str) -> String {
    s.lines()
        .find(|l| l.contains("awaiting_approval"))
        .and_then(|l| {
            l.split(|c: char| c == '│' || c.is_whitespace())
                .find(|w| w.starts_with("A0"))
        })
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no action awaiting approval:\n{s}"))
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: drives the console in tmux"
)]
fn reject_with_a_typed_reason_and_enter_records_the_reason() {
    let c = Console::start("reject", "", "--demo");
    let s = c.t.wait("an approval request", 60, |s| {
        s.contains("awaiting_approval")
    });
    let id = waiting_id(&s);
    c.t.keys(&["4", "r"]);
    c.t.wait("the reject dialog", 10, |s| {
        s.contains(&format!("Reject {id}?"))
    });
    c.t.text("restart will not help: bad deploy");
    // Enter, with Cancel still the focused button: the reason is sent.
    c.t.keys(&["Enter"]);
    c.t.wait("the rejection in the audit pane", 20, |s| {
        s.lines()
            .any(|l| l.contains("action_rejected") && l.contains(&id))
    });
    c.quit();
    let recs = c.audit();
    let r = recs
        .iter()
        .find(|r| r["kind"] == "action_rejected" && r["action_id"] == id.as_str())
        .expect("an action_rejected record");
    assert_eq!(r["reason"], "restart will not help: bad deploy", "{r}");
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: drives the console in tmux"
)]
fn the_silence_dialog_records_its_comment_and_the_duration_picked() {
    let c = Console::start("silence", "", "--demo");
    c.t.wait("a firing ServiceDown", 60, |s| {
        s.lines()
            .any(|l| l.contains("CRIT") && l.contains("firing") && l.contains("ServiceDown"))
    });
    c.t.keys(&["1", "g", "g", "s"]);
    c.t.wait("the silence dialog", 10, |s| {
        s.contains("Silence ServiceDown for 1h?")
    });
    c.t.text("deploy in progress");
    // Tab to the durations, two to the right: 4h.
    c.t.keys(&["Tab", "Right", "Right"]);
    c.t.wait("4h picked", 10, |s| {
        s.contains("Silence ServiceDown for 4h?")
    });
    c.t.keys(&["Enter"]);
    c.t.wait("the silenced alert", 20, |s| s.contains("SILENCED until"));
    c.quit();
    let recs = c.audit();
    let r = recs
        .iter()
        .find(|r| r["kind"] == "silence_created")
        .expect("a silence_created record");
    assert_eq!(r["reason"], "deploy in progress", "{r}");
    let at: chrono::DateTime<chrono::Utc> = r["at"].as_str().unwrap().parse().unwrap();
    let ends: chrono::DateTime<chrono::Utc> =
        r["data"]["ends_at"].as_str().unwrap().parse().unwrap();
    let hours = (ends - at).num_minutes();
    assert!((238..=242).contains(&hours), "{hours} minutes: {r}");
}

/// The number after "newest first · " in the Audit pane's title.
fn audit_title_count(s: &str) -> Option<u64> {
    let t = s.split("newest first · ").nth(1)?;
    let n: String = t
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    n.parse().ok()
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: drives the console in tmux"
)]
fn audit_counts_match_the_trail_as_records_arrive_into_an_empty_list() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "operator = \"e2e-op\"\nlisten = \"127.0.0.1:{port}\"\n\n[[hosts]]\nname = \"web-01\"\nexecutor = \"sim\"\n"
        ),
    )
    .unwrap();
    let c = Console::start("counts", "", &format!("--config {}", cfg.display()));
    let s = c.t.wait("the empty trail", 20, |s| {
        s.contains("the audit trail is empty") || audit_title_count(s).is_some_and(|n| n > 0)
    });
    let before = audit_title_count(&s).unwrap_or(0);
    // Three alerts no runbook handles arrive while the console watches.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for i in 0..3 {
        let body = serde_json::json!({
            "version": "4", "status": "firing", "receiver": "vigil",
            "alerts": [{"status": "firing",
                "labels": {"alertname": format!("TrapTest{i}"), "host": "web-01", "severity": "info"},
                "annotations": {}, "startsAt": "2026-12-01T00:00:00Z"}]
        });
        let ok = rt.block_on(async {
            reqwest::Client::new()
                .post(format!("http://127.0.0.1:{port}/hooks/alertmanager"))
                .json(&body)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        });
        assert!(ok, "the hub refused the webhook");
    }
    // The count settles with every record shown.
    let mut last = (String::new(), Instant::now());
    let end = Instant::now() + Duration::from_secs(30);
    let settled = loop {
        // Below the status bar (its clock ticks).
        let s: String = c.t.screen().lines().skip(1).collect::<Vec<_>>().join("\n");
        if s != last.0 {
            last = (s, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3)
            && audit_title_count(&s).is_some_and(|n| n > before)
        {
            break s;
        }
        assert!(Instant::now() < end, "never settled:\n{}", last.0);
        std::thread::sleep(Duration::from_millis(200));
    };
    let n = audit_title_count(&settled).unwrap();
    assert!(
        n >= before + 6,
        "{n} records after three alerts:\n{settled}"
    );
    assert!(
        settled.contains(&format!(" 1/{n} ")),
        "the list's position marker says {n} too:\n{settled}"
    );
    c.quit();
    assert_eq!(c.audit().len() as u64, n, "the pane's count is the trail's");
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: drives the console in tmux"
)]
fn enter_opens_an_audit_record_in_full_with_its_plan_as_numbered_commands() {
    let c = Console::start("detail", "", "--demo --dry-run");
    c.t.wait("a dry-run plan", 60, |s| s.contains("dry_run_planned"));
    c.t.keys(&["5", "/"]);
    c.t.text("kind=dry_run_planned");
    c.t.keys(&["Enter"]);
    c.t.wait("the filtered trail", 10, |s| {
        s.contains("filter kind=dry_run_planned")
    });
    c.t.keys(&["g", "g", "Enter"]);
    let s = c.t.wait("the record in full", 10, |s| {
        s.contains("plan (dry-run: nothing ran)")
    });
    assert!(s.contains("· dry_run_planned ·"), "{s}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        s.lines()
            .any(|l| l.contains("at          ") && l.contains(&today)),
        "a full date:\n{s}"
    );
    // One number per command (a script's lines stay in its step).
    assert!(
        s.contains("   1. [read-only] perl -e"),
        "numbered commands:\n{s}"
    );
    assert!(s.contains("   2. "), "numbered commands:\n{s}");
    // The perl script is one step, its line breaks marked; step 2 is the
    // next command, not the script's second line.
    assert!(
        s.lines()
            .any(|l| l.contains("   1. [read-only] perl -e") && l.contains(" ↵ ")),
        "a script's line breaks are marked in its step:\n{s}"
    );
    assert!(s.contains("   2. perl -e"), "{s}");
    assert!(!s.contains("   2. use Fcntl"), "{s}");
    c.quit();
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: drives the console in tmux"
)]
fn goto_and_g_reach_any_record_of_the_trail() {
    let c = Console::start("goto", "", "--demo");
    c.t.wait("a few records", 60, |s| {
        audit_title_count(s).is_some_and(|n| n >= 10)
    });
    c.t.keys(&[":"]);
    c.t.text("goto 2");
    c.t.keys(&["Enter"]);
    let s = c.t.wait("record 2", 10, |s| {
        s.contains("record 2") && s.lines().any(|l| l.contains("│2 "))
    });
    assert!(s.lines().last().unwrap_or("").contains("record 2"), "{s}");
    // G: the oldest of the whole trail.
    c.t.keys(&["G"]);
    c.t.wait("record 1", 10, |s| s.lines().any(|l| l.contains("│1 ")));
    // Moving up from the oldest reads newer pages; g g is the newest.
    c.t.keys(&["g", "g"]);
    c.t.wait("the newest again", 10, |s| {
        s.contains(" 1/") && !s.contains("back in time")
    });
    c.t.keys(&[":"]);
    c.t.text("goto nine");
    c.t.keys(&["Enter"]);
    c.t.wait("the usage", 10, |s| s.contains("is not a sequence number"));
    c.quit();
}

/// Every way out gives the terminal back: the normal screen, cooked mode
/// with echo, the cursor, no mouse reporting.
fn assert_restored(c: &Console, how: &str) {
    let (_, modes) = c.exited();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        c.flag("alternate_on"),
        "0",
        "{how}: still on the alternate screen"
    );
    assert_eq!(
        c.flag("mouse_any_flag"),
        "0",
        "{how}: mouse reporting left on"
    );
    assert_eq!(c.flag("cursor_flag"), "1", "{how}: cursor left hidden");
    let w: Vec<&str> = modes.split_whitespace().collect();
    assert!(
        w.contains(&"icanon") && w.contains(&"echo"),
        "{how}: raw mode left on: {modes}"
    );
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: drives the console in tmux"
)]
fn every_way_out_restores_the_terminal() {
    for how in ["q", "ctrl-c", "INT", "TERM", "HUP"] {
        let c = Console::start(&format!("exit-{how}"), "", "--demo");
        match how {
            "q" => c.t.keys(&["q"]),
            "ctrl-c" => c.t.keys(&["C-c"]),
            sig => {
                let ok = Command::new("kill")
                    .args([&format!("-{sig}"), &c.pid()])
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
        }
        assert_restored(&c, how);
    }
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: drives the console in tmux"
)]
fn a_panic_restores_the_terminal() {
    // Debug builds panic on purpose when asked (the test binary is one).
    let c = Console::start("panic", "VIGIL_CONSOLE_TEST_PANIC=1", "--demo");
    c.t.keys(&[":"]);
    c.t.text("help");
    c.t.keys(&["Enter"]);
    assert_restored(&c, "panic");
    let (code, _) = c.exited();
    assert_ne!(code, "0", "a panic is not a clean exit");
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: drives the console in tmux"
)]
fn without_truecolor_the_theme_falls_back_to_256_colours() {
    let styled = |c: &Console| c.t.run(&["capture-pane", "-e", "-p", "-t", &c.t.session]);
    let c = Console::start(
        "colour256",
        "-u COLORTERM TERM=screen-256color",
        "--demo --theme default",
    );
    let s = styled(&c);
    assert!(s.contains("38;5;"), "no 256-colour codes:\n{s}");
    assert!(
        !s.contains("38;2;"),
        "24-bit colour without truecolor:\n{s}"
    );
    c.quit();
    let c = Console::start(
        "colour16",
        "-u COLORTERM TERM=screen",
        "--demo --theme default",
    );
    let s = styled(&c);
    // tmux writes the bright eight as 38;5;8-15: nothing past 15.
    let beyond16 = ["38;5;", "48;5;"].iter().any(|p| {
        s.split(p).skip(1).any(|rest| {
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            n.parse::<u16>().is_ok_and(|n| n > 15)
        })
    });
    assert!(
        !beyond16 && !s.contains("38;2;"),
        "more than 16 colours:\n{s}"
    );
    c.quit();
    let c = Console::start("colour24", "COLORTERM=truecolor", "--demo --theme default");
    let s = styled(&c);
    assert!(s.contains("38;2;"), "truecolor unused:\n{s}");
    c.quit();
}
