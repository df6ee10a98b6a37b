//! One control plane, many consoles (ARCHITECTURE.md, safety rules 9 and
//! 10), tried with real processes: data-dir ownership, attached clients,
//! identity over the unix socket and by token, roles.

#[path = "tmux_support/mod.rs"]
mod tmux_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tmux_support::Tmux;

fn serve(data: &Path, listen: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["serve", "--demo", "--data-dir"])
        .arg(data)
        .args(["--listen", listen])
        .args(extra)
        .env("HOME", std::env::temp_dir())
        .env_remove("XDG_CONFIG_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vigil serve")
}

/// Waits until the hub `pid` owns `data` and has written its listener
/// into the owner file (it is then serving).
fn wait_owned(data: &Path, pid: u32) -> String {
    let t0 = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(data.join("vigil.lock"))
            && t.contains(&format!("pid={pid}\n"))
            && t.lines().any(|l| l.starts_with("listen=") && l.len() > 7)
        {
            return t;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the hub never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_second_hub_on_one_data_dir_refuses_and_names_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = serve(&data, &format!("127.0.0.1:{}", free_port()), &[]);
    wait_owned(&data, first.id());

    let t0 = Instant::now();
    let second = serve(&data, &format!("127.0.0.1:{}", free_port()), &[])
        .wait_with_output()
        .unwrap();
    let waited = t0.elapsed();
    let err = String::from_utf8_lossy(&second.stderr).into_owned();
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("pid {}", first.id())),
        "names the owner's pid: {err}"
    );
    assert!(err.contains("vigil serve"), "names the command: {err}");
    assert!(err.contains("since 20"), "says since when: {err}");
    assert!(
        err.contains("vigil --data-dir"),
        "says how to attach: {err}"
    );
    assert!(waited < Duration::from_secs(20), "refuses at once");

    // SIGKILL leaves no stale lock: the next hub starts.
    first.kill().unwrap();
    first.wait().unwrap();
    let mut third = serve(&data, &format!("127.0.0.1:{}", free_port()), &[]);
    wait_owned(&data, third.id());
    third.kill().unwrap();
    third.wait().unwrap();
}

/// A hub with operators and four-eyes on service_restart, on the demo
/// fleet, with the operators' tokens in its environment.
struct Hub {
    child: Child,
    data: std::path::PathBuf,
    base: String,
    _dir: tempfile::TempDir,
}

const ANA: &str = "ana-token-0123456789abcdef0123456789abcdef";
const BEN: &str = "ben-token-0123456789abcdef0123456789abcdef";
const VIC: &str = "vic-token-0123456789abcdef0123456789abcdef";

const TEAM_CONFIG: &str = r#"
demo = true

[[operators]]
name = "ana"
role = "operator"
token_env = "T_ANA"

[[operators]]
name = "ben"
role = "operator"
token_env = "T_BEN"

[[operators]]
name = "vic"
role = "viewer"
token_env = "T_VIC"

[runbooks.service_restart]
approvals = 2
"#;

impl Hub {
    fn start(extra_config: &str) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cfg = dir.path().join("config.toml");
        std::fs::write(&cfg, format!("{TEAM_CONFIG}\n{extra_config}")).unwrap();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("HOME", dir.path())
            .env("T_ANA", ANA)
            .env("T_BEN", BEN)
            .env("T_VIC", VIC)
            .env_remove("XDG_CONFIG_HOME")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vigil serve");
        wait_owned(&data, child.id());
        Hub {
            child,
            data,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    fn socket(&self) -> std::path::PathBuf {
        self.data.join("vigil.sock")
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl` as a user would type it; (status, body).
fn curl(args: &[&str]) -> (u16, serde_json::Value) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn post(url: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        body,
    ];
    if let Some(a) = &auth {
        args.extend(["-H", a.as_str()]);
    }
    args.push(url);
    curl(&args)
}

/// Sends a ServiceDown alert for the demo's api-02 through the webhook and
/// waits for the service_restart it proposes to ask for approval.
fn service_down_awaiting(hub: &Hub) -> String {
    let alert = serde_json::json!({
        "version": "4", "status": "firing", "receiver": "vigil", "groupKey": "{}:{}",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "ServiceDown", "host": "api-02", "service": "payments", "severity": "critical"},
            "annotations": {}, "startsAt": "2026-12-02T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prom/graph", "fingerprint": "feedfacecafe0001"
        }]
    });
    let (code, _) = post(
        &format!("{}/hooks/alertmanager", hub.base),
        None,
        &alert.to_string(),
    );
    assert_eq!(code, 200);
    let t0 = Instant::now();
    loop {
        let (_, v) = curl(&[&format!(
            "{}/api/v1/actions?status=awaiting_approval",
            hub.base
        )]);
        if let Some(a) = v["actions"].as_array().and_then(|l| {
            l.iter()
                .find(|a| a["runbook"] == "service_restart" && a["target"] == "api-02")
        }) {
            return format!("A{:06}", a["id"].as_u64().expect("a numeric id"));
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no approval request"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn records(hub: &Hub) -> Vec<serde_json::Value> {
    records_at(&hub.base)
}

fn records_at(base: &str) -> Vec<serde_json::Value> {
    let (_, v) = curl(&[&format!("{base}/api/v1/audit?since=0&limit=5000")]);
    v["records"].as_array().cloned().unwrap_or_default()
}

fn wait_records(
    hub: &Hub,
    what: &str,
    ok: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        let r = records(hub);
        if ok(&r) {
            return r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn four_eyes_with_two_tokens_and_roles_over_tcp() {
    let hub = Hub::start("");
    let id = service_down_awaiting(&hub);
    let approve = format!("{}/api/v1/actions/{id}/approve", hub.base);

    // No token, a wrong one, a viewer's: refused, and nothing recorded.
    assert_eq!(post(&approve, None, "{}").0, 401);
    assert_eq!(post(&approve, Some("x".repeat(40).as_str()), "{}").0, 401);
    let (code, v) = post(&approve, Some(VIC), "{}");
    assert_eq!(code, 403, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("needs the operator role; vic is viewer"),
        "{v}"
    );

    // ana approves, naming someone else in the body: recorded as ana.
    let (code, v) = post(&approve, Some(ANA), r#"{"actor": "mallory"}"#);
    assert_eq!(code, 202, "{v}");
    let (_, a) = curl(&[&format!("{}/api/v1/actions/{id}", hub.base)]);
    assert_eq!(a["state"], "awaiting_approval", "one of two approvals: {a}");
    assert_eq!(a["approvals"], serde_json::json!(["ana"]));
    // The same operator twice is not a second pair of eyes.
    let (code, v) = post(&approve, Some(ANA), "{}");
    assert_eq!(code, 409, "{v}");
    // ben's is the second: it starts.
    assert_eq!(post(&approve, Some(BEN), "{}").0, 202);
    let recs = wait_records(&hub, "the action to start", |r| {
        r.iter()
            .any(|x| x["kind"] == "action_started" && x["action_id"] == id.as_str())
    });
    let approvals: Vec<(&str, &str)> = recs
        .iter()
        .filter(|r| r["kind"] == "action_approved" && r["action_id"] == id.as_str())
        .map(|r| {
            (
                r["actor"].as_str().unwrap(),
                r["detail"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(approvals.len(), 2, "{approvals:?}");
    assert_eq!(approvals[0].0, "ana");
    assert!(
        approvals[0].1.contains("1 of 2 approvals (ana)"),
        "{approvals:?}"
    );
    assert_eq!(approvals[1].0, "ben");
    assert!(
        approvals[1].1.contains("2 of 2 approvals (ana, ben)"),
        "{approvals:?}"
    );
    assert!(!recs.iter().any(|r| r["actor"] == "mallory"));
    let started = recs
        .iter()
        .filter(|r| r["kind"] == "action_started" && r["action_id"] == id.as_str())
        .count();
    assert_eq!(started, 1);

    // A manual run: its requester is not enough to approve it.
    let (code, v) = post(
        &format!("{}/api/v1/run", hub.base),
        Some(ANA),
        r#"{"runbook": "service_restart", "target": "api-01", "params": {"service": "payments"}}"#,
    );
    assert_eq!(code, 202, "{v}");
    // Reads stay open to a viewer; a viewer cannot run anything.
    let (code, _) = post(
        &format!("{}/api/v1/run", hub.base),
        Some(VIC),
        r#"{"runbook": "service_restart", "target": "api-01"}"#,
    );
    assert_eq!(code, 403);
    // Modes need an admin: an operator is refused naming the role.
    let (code, v) = post(
        &format!("{}/api/v1/modes", hub.base),
        Some(BEN),
        r#"{"frozen": true}"#,
    );
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("admin"), "{v}");
}

/// Throw-away OS users in a throw-away group, removed on drop.
struct Users {
    group: String,
    names: Vec<String>,
}

impl Users {
    fn create(group: &str, names: &[&str]) -> Users {
        let run = |cmd: &str, args: &[&str]| {
            let o = Command::new(cmd).args(args).output().expect(cmd);
            assert!(
                o.status.success(),
                "{cmd} {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        // Leftovers of an earlier run that was killed go first.
        for n in names {
            let _ = Command::new("userdel").arg(n).output();
        }
        let _ = Command::new("groupdel").arg(group).output();
        run("groupadd", &[group]);
        let users = Users {
            group: group.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
        };
        for n in names {
            run(
                "useradd",
                &["-M", "-N", "-g", group, "-s", "/usr/sbin/nologin", n],
            );
        }
        users
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("userdel").arg(n).output();
        }
        let _ = Command::new("groupdel").arg(&self.group).output();
    }
}

/// `curl` over the hub's socket as OS user `user`.
fn post_as(user: &str, socket: &Path, path: &str, body: &str) -> (u16, serde_json::Value) {
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            user,
            "--regid",
            "vigile2e",
            "--init-groups",
            "--",
        ])
        .args([
            "curl",
            "-s",
            "-m",
            "10",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
        ])
        .arg(socket)
        .args([
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            body,
        ])
        .arg(format!("http://vigil{path}"))
        .output()
        .expect("setpriv curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: runs as root, creates OS users, setpriv and curl"
)]
fn approvals_over_the_socket_are_recorded_under_each_os_user() {
    let users = Users::create(
        "vigile2e",
        &["vigil-e2e-ana", "vigil-e2e-ben", "vigil-e2e-vic"],
    );
    let hub = Hub::start(&format!(
        "[access]\nsocket_group = \"{}\"\nusers = {{ \"vigil-e2e-ana\" = \"operator\", \"vigil-e2e-ben\" = \"operator\" }}\n",
        users.group
    ));
    let sock = hub.socket();
    use std::os::unix::fs::PermissionsExt;
    // The temp dir above the data dir is private to root: let the users
    // pass through it, as /var/lib is passable on a jump box.
    std::fs::set_permissions(hub._dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "the socket is the group's, nobody else's");
    let id = service_down_awaiting(&hub);
    let path = format!("/api/v1/actions/{id}/approve");

    // An unlisted OS user is a viewer: refused, naming the role.
    let (code, v) = post_as("vigil-e2e-vic", &sock, &path, "{}");
    assert_eq!(code, 403, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("vigil-e2e-vic is viewer"),
        "{v}"
    );
    // A body's actor is ignored: the peer's OS user is the actor.
    let (code, v) = post_as("vigil-e2e-ana", &sock, &path, r#"{"actor": "root"}"#);
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["actor"], "vigil-e2e-ana");
    assert_eq!(post_as("vigil-e2e-ana", &sock, &path, "{}").0, 409);
    assert_eq!(post_as("vigil-e2e-ben", &sock, &path, "{}").0, 202);
    let recs = wait_records(&hub, "the action to start", |r| {
        r.iter()
            .any(|x| x["kind"] == "action_started" && x["action_id"] == id.as_str())
    });
    let actors: Vec<&str> = recs
        .iter()
        .filter(|r| r["kind"] == "action_approved" && r["action_id"] == id.as_str())
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["vigil-e2e-ana", "vigil-e2e-ben"]);
    drop(hub);
    drop(users);
    let gone = Command::new("id").arg("vigil-e2e-ana").output().unwrap();
    assert!(!gone.status.success(), "the test users are removed");
}

fn console_cmd(env: &str, args: &str) -> String {
    format!(
        "env HOME=/tmp {env} {} {args}; sleep 30",
        env!("CARGO_BIN_EXE_vigil")
    )
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: drives consoles in tmux")]
fn a_console_attached_to_serve_never_runs_a_second_control_plane() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["serve", "--demo", "--data-dir"])
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("HOME", dir.path())
            .env("VIGIL_DEMO_SPEED", "8")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut hub = spawn();
    wait_owned(&data, hub.id());
    let t = Tmux::start(
        "attach",
        &console_cmd("", &format!("--data-dir {}", data.display())),
    );
    let sock = data.join("vigil.sock").display().to_string();
    t.wait("the console to attach", 20, |s| {
        s.contains(&format!("@ {sock}"))
    });
    // A minute of the demo at speed 8, approving what asks from the console.
    let end = Instant::now() + Duration::from_secs(60);
    let mut approved = 0;
    while Instant::now() < end {
        let s = t.screen();
        if s.contains("awaiting_approval") {
            t.keys(&["4", "a", "Tab", "Enter"]);
            approved += 1;
        }
        std::thread::sleep(Duration::from_millis(1500));
        // The hub stays the only owner of the data dir.
        let owner = std::fs::read_to_string(data.join("vigil.lock")).unwrap();
        assert!(owner.contains(&format!("pid={}\n", hub.id())), "{owner}");
    }
    let recs = records_at(&format!("http://127.0.0.1:{port}"));
    let mut starts = std::collections::BTreeSet::new();
    let mut n = 0;
    for r in recs.iter().filter(|r| r["kind"] == "action_started") {
        n += 1;
        let key = (r["action_id"].to_string(), r["attempt"].to_string());
        assert!(starts.insert(key.clone()), "{key:?} started twice");
    }
    assert!(
        n > 0,
        "the demo ran actions in a minute (approved {approved})"
    );

    // The hub dies: the console says so at once, and comes back with it.
    hub.kill().unwrap();
    hub.wait().unwrap();
    t.wait("the console to say the hub is lost", 5, |s| {
        s.contains("HUB LOST")
    });
    let mut hub = spawn();
    t.wait("the console to reattach", 20, |s| {
        !s.contains("HUB LOST") && s.contains(&format!("@ {sock}"))
    });
    hub.kill().unwrap();
    hub.wait().unwrap();
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: drives consoles in tmux")]
fn a_remote_console_attaches_with_its_token_and_a_read_only_one_watches() {
    let hub = Hub::start("");
    // A wrong token is refused before the screen opens.
    let bad = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["--connect", &hub.base])
        .env("VIGIL_TOKEN", "y".repeat(40))
        .env("HOME", "/tmp")
        .output()
        .unwrap();
    // Without a terminal the console refuses first (exit 2); in tmux the
    // token is checked.
    assert_ne!(bad.status.code(), Some(0));
    let t = Tmux::start(
        "remote",
        &console_cmd(
            &format!("VIGIL_TOKEN={ANA}"),
            &format!("--connect {}", hub.base),
        ),
    );
    t.wait("the remote console", 20, |s| {
        s.contains(&format!("ana (operator) @ {}", hub.base))
    });
    let wrong = Tmux::start(
        "wrong",
        &console_cmd(
            "VIGIL_TOKEN=not-a-token",
            &format!("--connect {}", hub.base),
        ),
    );
    wrong.wait("the refusal", 20, |s| {
        s.contains("cannot attach to the hub") && s.contains("wrong bearer token")
    });
    // A read-only console attaches as a viewer even as root, and its
    // approve key does nothing.
    let ro = Tmux::start(
        "ro",
        &console_cmd(
            "",
            &format!("--read-only --data-dir {}", hub.data.display()),
        ),
    );
    ro.wait("the read-only console", 20, |s| {
        s.contains("root (viewer) @")
    });
    // Presence: the first console sees the others attached.
    t.wait("presence", 20, |s| {
        s.contains("+1 root") || s.contains("+2")
    });
    // No hub on a data dir: --read-only never starts one.
    let empty = tempfile::tempdir().unwrap();
    let none = Tmux::start(
        "none",
        &console_cmd(
            "",
            &format!("--read-only --data-dir {}", empty.path().display()),
        ),
    );
    none.wait("the refusal", 20, |s| s.contains("no hub is running on"));
    assert!(!empty.path().join("vigil.lock").exists());
}

#[test]
fn check_and_serve_refuse_operators_whose_tokens_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "operator = \"ana\"\n\n[[operators]]\nname = \"dee\"\nrole = \"operator\"\ntoken_env = \"T_DEE\"\n",
    )
    .unwrap();
    let run = |args: &[&str], token: &str| {
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("HOME", dir.path())
            .env("T_DEE", token)
            .output()
            .unwrap()
    };
    let o = run(&["check"], "short");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{}:4:", cfg.display())),
        "names the line: {err}"
    );
    assert!(
        err.contains("\"dee\"") && err.contains("at least 32"),
        "{err}"
    );
    let o = run(
        &["serve", "--duration", "1s", "--listen", "127.0.0.1:0"],
        "",
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("T_DEE, which is not set or empty"), "{err}");
    let o = run(&["check"], &"k".repeat(32));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The listener's delivery token is held to the same length.
    std::fs::write(&cfg, "[listener]\ntoken_env = \"T_DEE\"\n").unwrap();
    let o = run(
        &["serve", "--duration", "1s", "--listen", "127.0.0.1:0"],
        "x",
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("token of 1 bytes; at least 32"), "{err}");
}

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: drives consoles in tmux")]
fn a_console_that_owns_the_hub_asks_before_quitting_under_others() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let owner = Tmux::start(
        "owner",
        &console_cmd(
            "",
            &format!(
                "--demo --data-dir {} --listen 127.0.0.1:{port}",
                data.display()
            ),
        ),
    );
    owner.wait("the owning console", 20, |s| s.contains("(admin) own hub"));
    // A second console on the same data dir attaches; it starts no hub.
    let other = Tmux::start(
        "other",
        &console_cmd("", &format!("--data-dir {}", data.display())),
    );
    other.wait("the attached console", 20, |s| s.contains("(admin) @ "));
    owner.wait("presence", 20, |s| s.contains("+1 "));
    owner.keys(&["q"]);
    owner.wait("the question", 5, |s| {
        s.contains("Stop the hub others are using?") && s.contains("1 other console is attached")
    });
    // Cancel is focused: enter keeps everything running.
    owner.keys(&["Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(owner.screen().contains("own hub"), "still running");
    owner.keys(&["q", "Tab", "Enter"]);
    other.wait("the attached console to see the hub gone", 10, |s| {
        s.contains("HUB LOST")
    });
}

#[test]
fn the_analysis_runbook_is_proposed_over_the_api_with_its_own_parameters_only() {
    let hub = Hub::start("");
    let id = service_down_awaiting(&hub);
    let fp = "feedfacecafe0001";
    let propose = format!("{}/api/v1/alerts/{fp}/propose", hub.base);
    // The suggestions say why and why not, with the analysis' side.
    let (code, v) = curl(&[&format!("{}/api/v1/alerts/{fp}/suggestions", hub.base)]);
    assert_eq!(code, 200, "{v}");
    let s = v["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["runbook"] == "service_restart")
        .cloned()
        .unwrap();
    assert_eq!(s["origin"], "both", "{s}");
    assert_eq!(s["analysis_rank"], 1);
    assert_eq!(s["proposable"], false);
    assert!(
        s["why_not"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("already has action")),
        "{s}"
    );
    // A viewer may not; a request cannot carry parameters; the analysis
    // does not recommend every runbook; the open action comes first.
    assert_eq!(
        post(&propose, Some(VIC), r#"{"runbook": "service_restart"}"#).0,
        403
    );
    let (code, v) = post(
        &propose,
        Some(ANA),
        r#"{"runbook": "service_restart", "params": {"service": "sshd"}}"#,
    );
    assert_eq!(code, 422, "{v}");
    let (code, v) = post(&propose, Some(ANA), r#"{"runbook": "disk_cleanup"}"#);
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("does not recommend disk_cleanup"),
        "{v}"
    );
    let (code, v) = post(&propose, Some(ANA), r#"{"runbook": "service_restart"}"#);
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains(&format!("already has action {id}")),
        "{v}"
    );
    let (code, _) = post(
        &format!("{}/api/v1/alerts/0000000000000000/propose", hub.base),
        Some(ANA),
        r#"{"runbook": "service_restart"}"#,
    );
    assert_eq!(code, 404);

    // ana rejects the pending restart and proposes the analysis' one.
    let (code, _) = post(
        &format!("{}/api/v1/actions/{id}/reject", hub.base),
        Some(ANA),
        r#"{"reason": "taking the analysis' advice"}"#,
    );
    assert_eq!(code, 202);
    let (code, v) = post(&propose, Some(ANA), r#"{"runbook": "service_restart"}"#);
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["from"], "analysis");
    let recs = wait_records(&hub, "the proposal from the analysis", |r| {
        r.iter().any(|x| {
            x["kind"] == "action_proposed"
                && x["actor"] == "ana"
                && x["data"]["from_analysis"]["cause"].is_string()
        })
    });
    let p = recs
        .iter()
        .find(|x| x["kind"] == "action_proposed" && x["actor"] == "ana")
        .unwrap();
    assert_eq!(p["params"]["service"], "payments", "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("proposed from the analysis by ana")
    );
}
