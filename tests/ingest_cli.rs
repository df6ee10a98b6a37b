//! The listener and the new config sections as a user meets them through
//! the binary: `vigil check` locating bad sources, `vigil serve` refusing an
//! exposed address without a token, and a token that never reaches a log.

use std::process::{Command, Stdio};
use std::time::Duration;

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

#[test]
fn check_names_file_and_line_of_bad_sources_and_escalation() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(
        &cfg,
        "operator = \"ana\"\n\n[[sources]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"127.0.0.1:9093\"\n\n[[escalation]]\nname = \"chat\"\nkind = \"webhook\"\n",
    )
    .unwrap();
    let o = vigil()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("c.toml:6: sources[0] (\"am\").url"), "{err}");
    assert!(
        err.contains("c.toml:9: escalation[0] (\"chat\"): a webhook needs url"),
        "{err}"
    );

    std::fs::write(
        &cfg,
        "[[sources]]\nname = \"x\"\nkind = \"graphite\"\nurl = \"http://a\"\n",
    )
    .unwrap();
    let o = vigil()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("c.toml:3:") && err.contains("prometheus"),
        "{err}"
    );
}

#[test]
fn serve_refuses_an_exposed_address_without_a_token() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, "operator = \"ana\"\n").unwrap();
    let o = vigil()
        .args(["--config"])
        .arg(&cfg)
        .args(["--data-dir"])
        .arg(d.path().join("data"))
        .args(["serve", "--listen", "0.0.0.0:0", "--duration", "5s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("without a bearer token"), "{err}");

    std::fs::write(
        &cfg,
        "[listener]\ntoken_env = \"VIGIL_TEST_NO_SUCH_TOKEN\"\n",
    )
    .unwrap();
    let o = vigil()
        .args(["--config"])
        .arg(&cfg)
        .args(["--data-dir"])
        .arg(d.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0", "--duration", "5s"])
        .env_remove("VIGIL_TEST_NO_SUCH_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("VIGIL_TEST_NO_SUCH_TOKEN"), "{err}");
}

#[test]
fn the_token_never_reaches_the_logs() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    std::fs::write(&cfg, "[listener]\ntoken_env = \"VIGIL_TEST_TOKEN\"\n").unwrap();
    let secret = "tok-8d1f2c77e0-secret-5b0e9a41c7d2";
    let child = vigil()
        .args(["--config"])
        .arg(&cfg)
        .args(["--data-dir"])
        .arg(d.path().join("data"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--duration",
            "4s",
        ])
        .env("VIGIL_TEST_TOKEN", secret)
        .env("VIGIL_LOG", "trace")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let codes = rt.block_on(async {
        let c = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/api/v1/alerts");
        for _ in 0..50 {
            if c.get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut codes = Vec::new();
        for t in [secret, "wrong-token"] {
            let r = c.get(&url).bearer_auth(t).send().await.unwrap();
            codes.push(r.status().as_u16());
        }
        codes
    });
    assert_eq!(codes, vec![200, 401]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let log = std::fs::read_to_string(d.path().join("data/logs/vigil.log")).unwrap_or_default();
    let all = format!(
        "{}{}{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("HTTP"), "the logs were captured: {all}");
    assert!(!all.contains(secret), "the token leaked: {all}");
    assert!(
        !all.contains("wrong-token"),
        "a presented token leaked: {all}"
    );
}
