//! Hostile values for labels and parameters: shell metacharacters,
//! newlines, NUL, path traversal, leading dashes, very long values,
//! Unicode look-alikes, glob characters. Each is refused by its pattern
//! (param_invalid) or reaches the command verbatim as one argument, over
//! local and over ssh; none runs an extra command or leaves the roots.

mod support;

use std::collections::BTreeMap;

use vigil::engine::Execution;
use vigil::exec::ExecutorSet;
use vigil::model::{ActionId, Labels};
use vigil::runbook::{Catalog, ParamSource};

use support::{Sshd, e2e, local_set, show};

/// At least 50 hostile values; `C` is replaced by a canary path that must
/// never come to exist.
fn hostile(canary: &str) -> Vec<String> {
    let long = "A".repeat(60_000);
    let v: Vec<&str> = vec![
        ";",
        "; rm -rf /",
        "a;b",
        "&&",
        "a && touch C",
        "|",
        "a | touch C",
        "||",
        "$(touch C)",
        "${IFS}",
        "`touch C`",
        "a\ntouch C",
        "\n",
        "\r\ntouch C",
        "a\0b",
        "\0",
        "../",
        "../../etc/passwd",
        "/tmp/../etc",
        "/var/log/../../etc/shadow",
        "-rf",
        "--help",
        "-",
        "--",
        "-oProxyCommand=touch C",
        "-exec",
        &long,
        "ѕshd",
        "pоstgres",
        "／etc／passwd",
        "\u{202e}evil",
        "\u{200b}",
        "*",
        "?",
        "[a-z]",
        "/tmp/*",
        "{a,b}",
        "~",
        "~root",
        "$HOME",
        "'",
        "\"",
        "\\",
        "' ; touch C ; '",
        "\" ; touch C ; \"",
        ">",
        "< /etc/passwd",
        "> C",
        "a b",
        "\t",
        " ",
        "",
        "#",
        "!",
        "%s%n",
        "%{http_code}",
        "{target}",
        "{service}",
        "x=y",
        "$$",
        "$1",
        "\\$(touch C)",
        "a\u{85}b",
        "😀",
        "$(",
        ")",
        "& touch C &",
        ";touch C;",
        "/tmp/x\ntouch C",
        "nginx\u{0}; reboot",
    ];
    v.into_iter().map(|s| s.replace('C', canary)).collect()
}

/// A runbook that writes its parameter to a file through the same kind of
/// fixed helper script the built-ins use, and passes it to printf as a
/// plain argument too.
fn echo_catalog() -> Catalog {
    let text = r#"
name = "echo_value"
[match]
alertname = ["Echo"]
[params.value]
pattern = '[^\x00]*'
[params.out]
source = "literal"
pattern = '/tmp/[A-Za-z0-9._/-]+'
[[steps]]
name = "write through a script"
argv = ["sh", "-c", 'printf "%s" "$1" > "$2"', "sh", "{value}", "{out}"]
[[steps]]
name = "plain argument"
argv = ["sh", "-c", 'test "$#" -eq 1 || exit 9', "sh", "{value}"]
"#;
    Catalog::from_sources(&[("echo.toml".into(), text.into())], &BTreeMap::new())
        .expect("the echo runbook compiles")
}

async fn run_all(set: &ExecutorSet, executor: &str, host: &str) -> (usize, usize) {
    let dir = tempfile::Builder::new()
        .prefix("vigil-hostile-")
        .tempdir()
        .unwrap();
    // Writable by the plain user the ssh case logs in as.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let canary = dir.path().join("PWNED");
    let canary_s = canary.to_str().unwrap().to_string();
    let cat = echo_catalog();
    let rb = cat.get("echo_value").unwrap();
    let (mut refused, mut verbatim) = (0, 0);
    for (i, value) in hostile(&canary_s).iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        let mut labels = Labels::new();
        labels.insert("value".into(), value.clone());
        let mut explicit = BTreeMap::new();
        explicit.insert("out".to_string(), out.to_str().unwrap().to_string());
        let params = match rb.resolve_params(&labels, &Labels::new(), &explicit) {
            Ok(p) => p,
            Err(e) => {
                assert!(value.contains('\0'), "{value:?} refused: {}", e.message);
                assert_eq!(e.param, "value");
                refused += 1;
                continue;
            }
        };
        let x = Execution {
            action: ActionId(i as u64 + 1),
            attempt: 1,
            runbook: "echo_value".into(),
            target: host.into(),
            executor: executor.into(),
            steps: rb.plan(host, &params),
            params,
        };
        let o = set.run(&x).await;
        assert!(o.success, "{value:?} over {executor}: {}", show(&o));
        let got = std::fs::read(&out).unwrap();
        assert_eq!(
            got,
            value.as_bytes(),
            "{value:?} was not passed verbatim over {executor}"
        );
        assert!(
            !canary.exists(),
            "{value:?} ran an extra command over {executor}"
        );
        verbatim += 1;
    }
    (refused, verbatim)
}

#[test]
fn there_are_at_least_fifty_hostile_values() {
    assert!(hostile("/tmp/c").len() >= 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_are_refused_or_verbatim_locally() {
    let (refused, verbatim) = run_all(&local_set(), "local", "localhost").await;
    assert!(
        refused >= 2 && verbatim >= 50,
        "{refused} refused, {verbatim} verbatim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_are_refused_or_verbatim_over_ssh() {
    if !e2e("hostile_values_are_refused_or_verbatim_over_ssh") {
        return;
    }
    let sshd = Sshd::start();
    // A user with /bin/sh as its shell: the values meet a plain POSIX shell
    // on the host, and no login files slow the 140 steps down.
    let mut hosts = BTreeMap::new();
    hosts.insert(
        "h".to_string(),
        vigil::exec::HostExecutor::Ssh(sshd.as_plain_user("vigil-bench")),
    );
    let set = ExecutorSet::new(
        hosts,
        vigil::exec::ExecOptions {
            ssh_control_dir: sshd.control_dir(),
            ..Default::default()
        },
    );
    let (refused, verbatim) = run_all(&set, "ssh", "h").await;
    assert!(
        refused >= 2 && verbatim >= 50,
        "{refused} refused, {verbatim} verbatim"
    );
}

/// Every built-in runbook: a hostile value in any parameter is refused by
/// its pattern, or lands only where a placeholder stood, never inside a
/// shell script's text; path parameters never leave their roots.
#[test]
fn built_in_runbooks_refuse_or_confine_hostile_values() {
    let cat = Catalog::builtin();
    let mut refused = 0;
    for rb in &cat.runbooks {
        for p in &rb.params {
            for value in hostile("/tmp/vigil-canary") {
                let mut labels = Labels::new();
                labels.insert("service".into(), "app".into());
                labels.insert("path".into(), "/var/log/app.log".into());
                let mut explicit = BTreeMap::new();
                if p.spec.source == ParamSource::Label {
                    labels.insert(
                        p.spec.label.clone().unwrap_or(p.name.clone()),
                        value.clone(),
                    );
                } else {
                    explicit.insert(p.name.clone(), value.clone());
                }
                let params = match rb.resolve_params(&labels, &Labels::new(), &explicit) {
                    Err(e) => {
                        assert_eq!(e.param, p.name);
                        assert!(!e.message.contains('\n'), "{}", e.message);
                        refused += 1;
                        continue;
                    }
                    Ok(ps) => ps,
                };
                assert!(
                    !value.contains('\0') && !value.contains('\n') && !value.contains(';'),
                    "{}.{} accepted {value:?}",
                    rb.name(),
                    p.name
                );
                assert!(
                    !value.contains(".."),
                    "{}.{} accepted {value:?}",
                    rb.name(),
                    p.name
                );
                assert!(
                    !value.starts_with('-'),
                    "{}.{} accepted {value:?}",
                    rb.name(),
                    p.name
                );
                let plan = rb.plan("h", &params);
                let templates: Vec<_> = rb
                    .spec
                    .steps
                    .iter()
                    .chain(rb.spec.rollback.iter())
                    .filter(|s| s.when.iter().all(|(k, v)| params.get(k) == Some(v)))
                    .collect();
                for (step, spec) in plan.iter().zip(templates) {
                    for (arg, tmpl) in step.argv.iter().zip(&spec.argv) {
                        if arg != tmpl {
                            assert!(
                                tmpl.contains('{'),
                                "{}: {arg:?} changed without a placeholder",
                                rb.name()
                            );
                        }
                    }
                    if step.argv.first().map(String::as_str) == Some("sh") {
                        assert_eq!(
                            step.argv.get(2),
                            spec.argv.get(2),
                            "{}: a script's text changed",
                            rb.name()
                        );
                    }
                }
            }
        }
    }
    assert!(refused > 300, "only {refused} refusals");
}
