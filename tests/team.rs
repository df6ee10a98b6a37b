//! One control plane, many consoles (ARCHITECTURE.md, safety rules 9 and
//! 10), tried with real processes: data-dir ownership, attached clients,
//! identity over the unix socket and by token, roles.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
