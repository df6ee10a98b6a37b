//! What the hub writes is its owner's only: the data dir 0700; the store,
//! its WAL and shared memory, the logs 0600, whatever the umask of the
//! shell that started it. A data dir others can write is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `vigil serve --demo` started from a shell with umask 022.
fn serve(data: &Path, duration: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_vigil"))
        .args(["serve", "--demo", "--duration", duration, "--data-dir"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .env("HOME", std::env::temp_dir())
        .env_remove("XDG_CONFIG_HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vigil serve")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn serve_keeps_the_data_dir_store_wal_and_log_private_under_umask_022() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let child = serve(&data, "4s");
    // the WAL exists while the hub runs (a clean stop removes it)
    let wal = data.join("vigil.db-wal");
    let t0 = Instant::now();
    while !wal.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no WAL appeared in {}",
            data.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mode(&wal), 0o600, "WAL");
    let shm = data.join("vigil.db-shm");
    if shm.exists() {
        assert_eq!(mode(&shm), 0o600, "shared memory");
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("vigil.db")), 0o600, "database");
    assert_eq!(mode(&data.join("logs")), 0o700, "log dir");
    assert_eq!(mode(&data.join("logs/vigil.log")), 0o600, "log");
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p) & 0o077, 0, "{} is readable by others", p.display());
    }
}

#[test]
fn an_existing_0755_data_dir_and_0644_files_are_tightened_and_it_is_logged() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    std::fs::create_dir_all(data.join("logs")).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(data.join("logs"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("logs/vigil.log"), "").unwrap();
    std::fs::set_permissions(
        data.join("logs/vigil.log"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = serve(&data, "1s").wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("logs")), 0o700);
    assert_eq!(mode(&data.join("logs/vigil.log")), 0o600);
    let log = std::fs::read_to_string(data.join("logs/vigil.log")).unwrap();
    assert!(
        log.contains("had mode 0755; made it 0700"),
        "the tightening is logged:\n{log}"
    );

    // a store left 0644 by an older build becomes 0600 when opened
    std::fs::set_permissions(
        data.join("vigil.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = serve(&data, "1s").wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(mode(&data.join("vigil.db")), 0o600);
}

#[test]
fn a_data_dir_others_can_write_is_refused() {
    let t = tempfile::tempdir().unwrap();
    for m in [0o777, 0o775, 0o757] {
        let data = t.path().join(format!("data-{m:o}"));
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(m)).unwrap();
        let o = serve(&data, "1s").wait_with_output().unwrap();
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(
            out.contains(&data.display().to_string()) && out.contains(&format!("{m:04o}")),
            "names the path and the mode: {out}"
        );
        assert!(!data.join("vigil.db").exists(), "nothing written");
        assert_eq!(mode(&data), m, "left as it was");
    }
}

#[test]
fn the_store_refuses_a_world_writable_dir_too() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("open");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let Err(e) = vigil::store::Store::open(&data) else {
        panic!("a world-writable data dir was opened");
    };
    assert!(e.to_string().contains("0777"), "{e}");
}
