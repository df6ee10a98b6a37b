//! `[hosts.ssh]` and `[hosts.http]` as a user writes them: `vigil check`
//! names the file, the line, the key and what is accepted; a good file
//! passes; `vigil runbooks plan` prints the exact argv.

use std::process::Command;

fn check(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("config.toml");
    std::fs::write(&f, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--config")
        .arg(&f)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("check")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn bad_executor_settings_are_named_with_file_and_line() {
    let (code, out) = check(
        "[[hosts]]\nname = \"web-1\"\nexecutor = \"ssh\"\n[hosts.ssh]\nuser = \"deploy\"\nport = 70000\n",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("config.toml:6:"), "{out}");
    assert!(out.contains("hosts[name=\"web-1\"].ssh.port"), "{out}");
    assert!(out.contains("1..65535"), "{out}");

    let (code, out) = check(
        "[[hosts]]\nname = \"api\"\nexecutor = \"http\"\n[hosts.http]\nurl = \"ftp://jobs\"\n",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("config.toml:5:") && out.contains("http.url"),
        "{out}"
    );

    let (code, out) =
        check("[[hosts]]\nname = \"db\"\nexecutor = \"local\"\n[hosts.ssh]\nuser = \"x\"\n");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("set executor = \\\"ssh\\\"") || out.contains("set executor"),
        "{out}"
    );

    let (code, out) = check(
        "[[hosts]]\nname = \"web-2\"\nexecutor = \"ssh\"\n[hosts.ssh]\noptions = [\"StrictHostKeyChecking=no\"]\n",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot be overridden"), "{out}");
}

#[test]
fn good_executor_settings_pass() {
    // `vigil check` reads the key and known_hosts files a host names: they
    // exist here, the key private, the host's key listed.
    use std::os::unix::fs::PermissionsExt;
    let files = tempfile::tempdir().unwrap();
    let key = files.path().join("id_ed25519");
    std::fs::write(&key, "not used by check beyond its mode\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let kh = files.path().join("known_hosts");
    std::fs::write(
        &kh,
        "[10.0.0.5]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    )
    .unwrap();
    let (code, out) = check(&format!(
        "[settings]\nmax_parallel_runs = 8\n\n[[hosts]]\nname = \"web-1\"\nexecutor = \"ssh\"\n[hosts.ssh]\nhost = \"10.0.0.5\"\nuser = \"deploy\"\nport = 2222\nidentity = \"{}\"\nknown_hosts = \"{}\"\nproxy_jump = \"bastion.example.com\"\noptions = [\"ServerAliveInterval=10\"]\n\n[[hosts]]\nname = \"jobs\"\nexecutor = \"http\"\n[hosts.http]\nurl = \"https://jobs.example.com/api\"\ntoken = \"t\"\n\n[[hosts]]\nname = \"localhost\"\nexecutor = \"local\"\n",
        key.display(),
        kh.display()
    ));
    assert_eq!(code, 0, "{out}");

    // The same with the key readable by others and a known_hosts without
    // this host: both named, with their lines and the fix.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&kh, "").unwrap();
    let (code, out) = check(&format!(
        "[[hosts]]\nname = \"web-1\"\nexecutor = \"ssh\"\n[hosts.ssh]\nhost = \"10.0.0.5\"\nport = 2222\nidentity = \"{}\"\nknown_hosts = \"{}\"\n",
        key.display(),
        kh.display()
    ));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("config.toml:7: hosts[name=\"web-1\"].ssh.identity:")
            && out.contains("chmod 600"),
        "{out}"
    );
    assert!(
        out.contains("config.toml:8: hosts[name=\"web-1\"].ssh: no host key for [10.0.0.5]:2222"),
        "{out}"
    );
}

#[test]
fn plan_prints_the_exact_argv_with_scripts_constant_and_values_as_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "runbooks",
            "plan",
            "memory_pressure",
            "--target",
            "web-1",
            "--param",
            "service=app",
            "--param",
            "mode=kill",
            "--param",
            "process=java",
            "--param",
            "kill_allow=java",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let argv_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("argv:"))
        .collect();
    let kill = argv_lines
        .iter()
        .find(|l| l.contains("kill -TERM"))
        .expect("the kill step");
    let argv: Vec<String> =
        serde_json::from_str(kill.trim_start().trim_start_matches("argv:").trim()).unwrap();
    assert_eq!(&argv[..2], ["sh", "-c"]);
    assert_eq!(&argv[3..], ["sh", "java", "java", "10"]);

    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "runbooks",
            "plan",
            "log_rotation",
            "--target",
            "web-1",
            "--param",
            "path=/var/log/../etc/passwd",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("param_invalid"));
}
