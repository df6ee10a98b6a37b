//! The hub's http executor against a real `vigil agent` process on
//! 127.0.0.1: idempotency, the plan check, tokens, cancel, SIGKILL of the
//! agent during a step, progress as the job runs, TLS with a pinned
//! certificate, and (VIGIL_E2E=1, as root) the built-in runbooks on temp
//! fixtures: a log to rotate, old files to clean, a supervisor-managed
//! service to restart.

mod agent_support;
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use vigil::engine::{Event, Execution};
use vigil::exec::http::HttpTarget;
use vigil::hub::Executors;

use agent_support::{
    Agent, HOST, TOKEN_A, TOKEN_B, group_alive, insecure_client, kill_group, marker_dir, runs,
    until,
};
use support::{cases, execution, execution_in, show};

/// An execution of the test runbook marking `file` and sleeping `secs`.
fn marker(agent: &Agent, file: &std::path::Path, secs: u32) -> Execution {
    execution_in(
        &agent.catalog(),
        "slow_marker",
        HOST,
        "http",
        &[
            ("file", file.to_str().unwrap()),
            ("seconds", &secs.to_string()),
        ],
    )
}

/// One request as a hub makes it: the status and the JSON answer.
async fn call(
    agent: &Agent,
    token: &str,
    method: reqwest::Method,
    path: &str,
    job: Option<(&str, &Value)>,
) -> (u16, Value) {
    let mut rb = insecure_client()
        .request(method, format!("{}{path}", agent.url()))
        .bearer_auth(token);
    if let Some((key, body)) = job {
        rb = rb.header("Idempotency-Key", key).json(body);
    }
    let r = rb.send().await.expect("the agent answers");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(agent: &Agent, token: &str, key: &str, body: &Value) -> (u16, Value) {
    call(
        agent,
        token,
        reqwest::Method::POST,
        "/jobs",
        Some((key, body)),
    )
    .await
}

/// Submits an execution's job as hub A, as its executor would.
async fn submit(agent: &Agent, x: &Execution) -> (u16, Value) {
    post(agent, TOKEN_A, &HttpTarget::key(x), &HttpTarget::body(x)).await
}

async fn get(agent: &Agent, token: &str, path: &str) -> (u16, Value) {
    call(agent, token, reqwest::Method::GET, path, None).await
}

async fn cancel(agent: &Agent, token: &str, id: &str) -> (u16, Value) {
    let path = format!("/jobs/{id}/cancel");
    call(agent, token, reqwest::Method::POST, &path, None).await
}

async fn status_of(agent: &Agent, id: &str) -> Value {
    get(agent, TOKEN_A, &format!("/jobs/{id}")).await.1
}

async fn wait_terminal(agent: &Agent, id: &str) -> Value {
    let mut last = Value::Null;
    until(&format!("{id} ends"), 60, async || {
        last = status_of(agent, id).await;
        ["succeeded", "failed", "cancelled"].contains(&last["status"].as_str().unwrap_or(""))
    })
    .await;
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_twice_is_one_job_and_another_body_is_a_conflict() {
    let agent = Agent::start("").await;
    let dir = marker_dir();
    let file = dir.path().join("once");
    let x = marker(&agent, &file, 1);
    let (key, body) = (HttpTarget::key(&x), HttpTarget::body(&x));
    let (s1, j1) = post(&agent, TOKEN_A, &key, &body).await;
    assert_eq!(s1, 201, "{j1}");
    let id = j1["id"].as_str().unwrap().to_string();
    let (s2, j2) = post(&agent, TOKEN_A, &key, &body).await;
    assert_eq!((s2, j2["id"].as_str()), (200, Some(id.as_str())), "{j2}");
    // The same key with another (valid) body: 409, nothing new.
    let mut y = marker(&agent, &file, 2);
    y.action = x.action;
    let (s3, j3) = post(&agent, TOKEN_A, &key, &HttpTarget::body(&y)).await;
    assert_eq!(s3, 409, "{j3}");
    assert!(j3["error"].as_str().unwrap().contains(&id), "{j3}");
    // Another hub neither sees nor cancels this hub's job.
    assert_eq!(get(&agent, TOKEN_B, &format!("/jobs/{id}")).await.0, 404);
    assert_eq!(cancel(&agent, TOKEN_B, &id).await.0, 404);
    let done = wait_terminal(&agent, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["facts"]["slept"], json!(1), "{done}");
    assert_eq!(runs(&file), 1, "the job ran more than once");
    // A third POST after the end still answers the same job, not a new run.
    let (s4, j4) = post(&agent, TOKEN_A, &key, &body).await;
    assert_eq!((s4, j4["status"].as_str()), (200, Some("succeeded")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs(&file), 1);
    let (_, list) = get(&agent, TOKEN_A, "/jobs?status=succeeded").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1, "{list}");
    let (s, e) = get(&agent, TOKEN_A, "/jobs?status=bogus").await;
    assert_eq!(s, 400);
    assert!(e["error"].as_str().unwrap().contains("failed"), "{e}");
    // A hub's executor with a key already used for another body fails on
    // the 409 and is not retried.
    let mut reused = marker(&agent, &file, 3);
    reused.action = x.action;
    let o = agent.hub(TOKEN_A, "").run(&reused).await;
    assert!(!o.success && o.detail.contains("409"), "{}", show(&o));
    assert_eq!(runs(&file), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_differs_from_the_agents_plan_by_one_character_is_refused() {
    let agent = Agent::start("").await;
    let x = execution(
        "log_rotation",
        HOST,
        "http",
        &[("path", "/var/log/app.log")],
    );
    let mut body = HttpTarget::body(&x);
    let arg = &mut body["steps"][1]["argv"][4];
    assert_eq!(arg, "/var/log/app.log");
    *arg = json!("/var/log/app.loG");
    let (s, e) = post(&agent, TOKEN_A, &HttpTarget::key(&x), &body).await;
    assert_eq!(s, 422, "{e}");
    let why = e["error"].as_str().unwrap();
    assert!(
        why.contains("step 2 \"rotate\" argv[4]") && why.contains("character 16"),
        "{why}"
    );
    // An arbitrary command under a known runbook's name.
    let dir = marker_dir();
    let mut evil = marker(&agent, &dir.path().join("x"), 0);
    evil.steps[0].argv = vec!["sh".into(), "-c".into(), "id > /tmp/pwned".into()];
    let o = agent.hub(TOKEN_A, "").run(&evil).await;
    assert!(!o.success, "{}", show(&o));
    assert!(
        o.detail.contains("422") && o.detail.contains("argv"),
        "{}",
        show(&o)
    );
    // A parameter outside its pattern, even with the matching plan.
    let mut bad = marker(&agent, &dir.path().join("x"), 0);
    bad.params.insert("file".into(), "/etc/passwd".into());
    let (s, e) = submit(&agent, &bad).await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("params.file"), "{e}");
    // A runbook the agent does not have.
    let mut unknown = HttpTarget::body(&x);
    unknown["runbook"] = json!("shell");
    let (s, e) = post(&agent, TOKEN_A, &HttpTarget::key(&x), &unknown).await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("log_rotation"), "{e}");
    // Nothing was stored, nothing ran; the refusals are in the log.
    let (_, list) = get(&agent, TOKEN_A, "/jobs").await;
    assert_eq!(list["jobs"], json!([]), "{list}");
    assert!(!std::path::Path::new("/tmp/pwned").exists());
    assert!(
        agent.log().matches("refused a job").count() >= 4,
        "{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_and_only_health_is_open() {
    let agent = Agent::start("").await;
    let c = insecure_client();
    let h = c
        .get(format!("{}/health", agent.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
    let dir = marker_dir();
    let file = dir.path().join("never");
    let x = marker(&agent, &file, 0);
    let wrong = "hub-a-secret-0123456789abcdef012345678X";
    for token in [None, Some(wrong), Some("short"), Some("")] {
        let mut rb = c
            .post(format!("{}/jobs", agent.url()))
            .header("Idempotency-Key", HttpTarget::key(&x))
            .json(&HttpTarget::body(&x));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 401, "{token:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
    assert_eq!(get(&agent, wrong, "/jobs/job-1").await.0, 401);
    assert_eq!(get(&agent, wrong, "/jobs?status=failed").await.0, 401);
    assert_eq!(cancel(&agent, wrong, "job-1").await.0, 401);
    let o = agent.hub(wrong, "").run(&x).await;
    assert!(!o.success && o.detail.contains("401"), "{}", show(&o));
    assert!(!o.detail.contains(wrong), "the token leaked: {}", o.detail);
    assert!(!agent.log().contains(wrong), "the token was logged");
    assert_eq!(runs(&file), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_refuses_to_start_exposed_or_with_a_short_token() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("agent")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--listen", "0.0.0.0:0"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("not a loopback address") && err.contains("tokens"),
        "{err}"
    );
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, "[[tokens]]\nhub = \"j\"\nenv = \"VIGIL_T\"\n").unwrap();
    let (code, err) = run(
        &["--config", cfg.to_str().unwrap()],
        &[("VIGIL_T", "sixteen-bytes-xx")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("at least 32"), "{err}");
    assert!(!err.contains("sixteen-bytes-xx"), "the token leaked: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_step_fails_the_job_as_interrupted_and_nothing_runs_twice() {
    let mut agent = Agent::start("max_running = 1").await;
    let dir = marker_dir();
    let (f1, f2) = (dir.path().join("first"), dir.path().join("second"));
    let x1 = marker(&agent, &f1, 30);
    let x2 = marker(&agent, &f2, 0);
    // The hub waits on the first job; the second is queued behind it.
    let hub = agent.hub(TOKEN_A, "retries = 8");
    let waiting = tokio::spawn({
        let x1 = x1.clone();
        async move { hub.run(&x1).await }
    });
    until("the first step starts", 20, async || runs(&f1) == 1).await;
    let (s, j2) = submit(&agent, &x2).await;
    assert_eq!((s, j2["status"].as_str()), (201, Some("queued")), "{j2}");
    let orphan: i32 = std::fs::read_to_string(&f1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    agent.kill9();
    // The step's process group outlives the killed agent; the restarted
    // one stops it (its leader's identity checked) before anything else.
    assert!(group_alive(orphan), "the step died with the agent");
    agent.spawn().await;
    let o = waiting.await.unwrap();
    assert!(!o.success, "{}", show(&o));
    assert!(
        o.detail.contains("failed") && o.detail.contains("interrupted"),
        "{}",
        show(&o)
    );
    let first = status_of(&agent, o.data.as_ref().unwrap()["job"].as_str().unwrap()).await;
    assert!(
        first["detail"].as_str().unwrap().contains(&format!(
            "process group {orphan} was still running and was killed"
        )),
        "{first}"
    );
    until("the orphaned step is gone", 10, async || {
        !group_alive(orphan)
    })
    .await;
    let second = wait_terminal(&agent, j2["id"].as_str().unwrap()).await;
    assert_eq!(
        second["status"], "succeeded",
        "the queued job ran after restart: {second}"
    );
    assert_eq!(runs(&f2), 1);
    // The same key again answers the interrupted job; it is not re-run.
    let (s, again) = submit(&agent, &x1).await;
    assert_eq!(
        (s, again["status"].as_str()),
        (200, Some("failed")),
        "{again}"
    );
    let (_, dead) = get(&agent, TOKEN_A, "/jobs?status=failed").await;
    assert_eq!(dead["jobs"].as_array().unwrap().len(), 1, "{dead}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs(&f1), 1, "the interrupted job ran twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_outlives_the_hubs_wait_is_cancelled_on_the_host() {
    let agent = Agent::start("").await;
    let dir = marker_dir();
    let file = dir.path().join("slow");
    let x = marker(&agent, &file, 120);
    let o = agent.hub(TOKEN_A, "max_wait = \"2s\"").run(&x).await;
    assert!(!o.success, "{}", show(&o));
    assert!(
        o.detail
            .contains("stopped waiting and the job was cancelled"),
        "{}",
        show(&o)
    );
    let pgid: i32 = std::fs::read_to_string(&file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let id = o.data.as_ref().unwrap()["job"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_terminal(&agent, &id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    until("the step's process group is gone", 10, async || {
        !group_alive(pgid)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_long_step_kills_its_process_group() {
    let agent = Agent::start("max_running = 1").await;
    let dir = marker_dir();
    let (long, queued) = (dir.path().join("long"), dir.path().join("queued"));
    let xa = marker(&agent, &long, 300);
    let xb = marker(&agent, &queued, 0);
    let (_, a) = submit(&agent, &xa).await;
    let (_, b) = submit(&agent, &xb).await;
    let (ida, idb) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let child = long.with_file_name("long.child");
    until("the long step starts its child", 20, async || {
        child.exists()
    })
    .await;
    let pgid: i32 = std::fs::read_to_string(&long)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(group_alive(pgid));
    // The queued job is cancelled before it starts.
    let (s, cb) = cancel(&agent, TOKEN_A, idb).await;
    assert_eq!((s, cb["status"].as_str()), (200, Some("cancelled")), "{cb}");
    let (s, ca) = cancel(&agent, TOKEN_A, ida).await;
    assert_eq!(s, 202, "{ca}");
    let done = wait_terminal(&agent, ida).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let detail = done["detail"].as_str().unwrap();
    assert!(detail.contains("cancelled by hub hub-a"), "{detail}");
    until("the step's process group is gone", 10, async || {
        !group_alive(pgid)
    })
    .await;
    assert_eq!(cancel(&agent, TOKEN_A, ida).await.0, 409);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs(&queued), 0, "a cancelled queued job ran");
    kill_group(pgid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_sees_the_job_progress_and_records_its_id_and_answer() {
    let agent = Agent::start("").await;
    let dir = marker_dir();
    let file = dir.path().join("progress");
    let x = marker(&agent, &file, 2);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    agent.hub(TOKEN_A, "").spawn(x.clone(), tx);
    let mut progress = Vec::new();
    let outcome = loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(Event::Progress { action, detail, .. })) => {
                assert_eq!(action, x.action);
                progress.push(detail);
            }
            Ok(Some(Event::Finished { outcome, .. })) => break outcome,
            other => panic!("unexpected: {other:?}"),
        }
    };
    assert!(outcome.success, "{}", show(&outcome));
    assert!(
        progress
            .iter()
            .any(|p| p.contains("running") && p.contains("step 1/1")),
        "{progress:?}"
    );
    let data = outcome.data.as_ref().unwrap();
    let id = data["job"].as_str().unwrap();
    assert!(
        progress
            .iter()
            .all(|p| p.starts_with(&format!("job {id} ")))
    );
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["idempotency_key"], json!(HttpTarget::key(&x)));
    assert_eq!(data["facts"]["slept"], json!(1));
    assert_eq!(data["steps"][0]["name"], "mark and wait");
    assert!(
        outcome
            .detail
            .starts_with(&format!("job {id} succeeded: 1 step(s) ok"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: openssl")]
async fn tls_with_a_pinned_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (
        certs.path().join("agent.crt"),
        certs.path().join("agent.key"),
    );
    let st = std::process::Command::new(support::need("openssl", "openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=agent-host", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let der = std::process::Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .unwrap()
        .stdout;
    use sha2::Digest;
    let pin = hex::encode(sha2::Sha256::digest(&der));
    let agent = Agent::start(&format!(
        "[tls]\ncert = {:?}\nkey = {:?}",
        cert.display().to_string(),
        key.display().to_string()
    ))
    .await;
    assert!(
        agent.log().contains(&pin),
        "the agent prints its certificate's SHA-256"
    );
    let dir = marker_dir();
    let file = dir.path().join("tls");
    let ok = agent
        .hub(TOKEN_A, &format!("pin_sha256 = \"{pin}\""))
        .run(&marker(&agent, &file, 0))
        .await;
    assert!(ok.success, "{}", show(&ok));
    let other_pin = "00".repeat(32);
    let o = agent
        .hub(
            TOKEN_A,
            &format!("pin_sha256 = \"{other_pin}\"\nretries = 0"),
        )
        .run(&marker(&agent, &file, 0))
        .await;
    assert!(!o.success, "{}", show(&o));
    assert!(o.detail.contains("certificate"), "{}", show(&o));
    assert_eq!(
        runs(&file),
        1,
        "a job went to an agent whose certificate was not pinned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(vigil_e2e),
    ignore = "needs VIGIL_E2E=1: root, gzip, supervisor (writes under /var/log)"
)]
async fn built_in_runbooks_run_through_a_real_agent() {
    let agent = Agent::start("").await;
    let hub = agent.hub(TOKEN_A, "");
    cases::log_rotation(&hub, "http", HOST).await;
    cases::disk_cleanup(&hub, "http", HOST).await;
    cases::service_restart_supervisor(&hub, "http", HOST).await;
    let (_, all) = get(&agent, TOKEN_A, "/jobs").await;
    assert_eq!(all["jobs"].as_array().unwrap().len(), 4, "{all}");
}

/// The hub as `vigil serve` wires it, with `agent-host` reached through the
/// agent: a manual run of the test runbook shows the job's progress as the
/// action's detail in the snapshots the console draws, and the audit
/// record of its end holds the job id and the agent's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_run_through_the_agent_shows_the_job_and_records_its_answer() {
    use vigil::model::{ActionState, RecordKind};

    let agent = Agent::start("").await;
    let text = format!(
        "runbook_dir = {:?}\n\n[[hosts]]\nname = \"{HOST}\"\nexecutor = \"http\"\n\
         [hosts.http]\nurl = \"{}\"\ntoken = \"{TOKEN_A}\"\npoll_interval = \"50ms\"\n",
        agent.dir.path().join("runbooks").display().to_string(),
        agent.url()
    );
    let data = tempfile::tempdir().unwrap();
    let (hub, handle) = support::serve_hub(&text, data.path());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(hub.run(stop_rx));
    let dir = marker_dir();
    let file = dir.path().join("hub");
    handle
        .events
        .send(Event::Run {
            runbook: "slow_marker".into(),
            target: HOST.into(),
            params: [
                ("file".to_string(), file.display().to_string()),
                ("seconds".to_string(), "2".to_string()),
            ]
            .into(),
            actor: "ana".into(),
        })
        .await
        .unwrap();
    let mut snaps = handle.snapshots.clone();
    let mut seen_running = None;
    let mut approved = false;
    let start = std::time::Instant::now();
    let end =
        loop {
            let s = snaps.borrow_and_update().clone();
            if let Some(a) = s.actions.first() {
                if a.state == ActionState::AwaitingApproval && !approved {
                    handle
                        .events
                        .send(Event::Approve {
                            action: a.id,
                            actor: "ben".into(),
                        })
                        .await
                        .unwrap();
                    approved = true;
                }
                if a.state == ActionState::Running && a.detail.contains("running step 1/1") {
                    seen_running = Some(a.detail.clone());
                }
            }
            if let Some(r) = s.recent.iter().find(|r| {
                r.kind == RecordKind::ActionSucceeded || r.kind == RecordKind::ActionFailed
            }) {
                break (**r).clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no end: {:?}",
                s.actions
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), snaps.changed()).await;
        };
    let _ = stop_tx.send(true);
    let _ = task.await;
    assert_eq!(end.kind, RecordKind::ActionSucceeded, "{end:?}");
    let shown = seen_running.expect("the console's snapshot showed the running job");
    let data = end.data.expect("the record's data");
    let id = data["job"].as_str().unwrap();
    assert!(
        shown.starts_with(&format!("job {id} running: running step 1/1")),
        "{shown}"
    );
    assert_eq!(data["executor"], "http");
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["facts"]["slept"], json!(1));
    assert!(
        data["agent_detail"]
            .as_str()
            .unwrap()
            .contains("1 step(s) ok")
    );
    assert!(
        end.detail
            .unwrap()
            .starts_with(&format!("job {id} succeeded"))
    );
    assert_eq!(runs(&file), 1);
}
