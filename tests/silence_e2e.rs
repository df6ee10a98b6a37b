//! Silences held by a real Alertmanager (the Debian package, started here on
//! 127.0.0.1 with a temp config and storage dir) and the real `vigil serve`
//! polling it: an alert that Alertmanager silences is shown silenced (who,
//! why, until) and gets no action; when the silence is expired in
//! Alertmanager, Vigil proposes the action.
//!
//! Runs when VIGIL_E2E=1 (and then fails if Alertmanager is missing).

use std::process::Command;
use std::time::Duration;

use serde_json::json;

mod server_support;
use server_support::{Kill, audit, free_port, http, serve, spawn, wait_for};

#[test]
#[cfg_attr(not(vigil_e2e), ignore = "needs VIGIL_E2E=1: real Alertmanager")]
fn an_alertmanager_silence_holds_the_action_back_until_it_is_expired() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let (p_am, p_vigil) = (free_port(), free_port());
    std::fs::write(
        dir.join("alertmanager.yml"),
        "route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n",
    )
    .unwrap();
    let mut procs = Kill(Vec::new());
    procs.0.push(spawn(
        Command::new("prometheus-alertmanager").args([
            format!("--config.file={}", dir.join("alertmanager.yml").display()),
            format!("--storage.path={}", dir.join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{p_am}"),
            "--cluster.listen-address=".into(),
        ]),
        &dir.join("alertmanager.log"),
        "prometheus-alertmanager (apt-get install prometheus-alertmanager)",
    ));
    let am = format!("http://127.0.0.1:{p_am}");
    wait_for("Alertmanager ready", 30, dir, || {
        http("GET", &format!("{am}/-/ready"), None)
    });

    // nginx is down on web-01, and bob silenced it in Alertmanager.
    let labels = json!({"alertname": "ServiceDown", "host": "web-01",
                        "service": "nginx", "severity": "critical"});
    let alert = json!([{ "labels": labels, "annotations": {"summary": "nginx is down"} }]);
    http("POST", &format!("{am}/api/v2/alerts"), Some(&alert)).expect("alert posted");
    let now = chrono::Utc::now();
    let silence = json!({
        "matchers": [
            {"name": "alertname", "value": "ServiceDown", "isRegex": false, "isEqual": true},
            {"name": "host", "value": "web-0[0-9]", "isRegex": true, "isEqual": true},
        ],
        "startsAt": (now - chrono::TimeDelta::minutes(1)).to_rfc3339(),
        "endsAt": (now + chrono::TimeDelta::hours(2)).to_rfc3339(),
        "createdBy": "bob",
        "comment": "nginx being migrated",
    });
    let created =
        http("POST", &format!("{am}/api/v2/silences"), Some(&silence)).expect("silence created");
    let id = created["silenceID"]
        .as_str()
        .expect("silenceID")
        .to_string();

    std::fs::write(
        dir.join("vigil.toml"),
        format!(
            "operator = \"ana\"\nlisten = \"127.0.0.1:{p_vigil}\"\n\n[[hosts]]\nname = \"web-01\"\nservices = [\"nginx\"]\nexecutor = \"sim\"\n\n[[sources]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{am}\"\ninterval = \"1s\"\ntimeout = \"2s\"\n"
        ),
    )
    .unwrap();
    procs.0.push(serve(dir));
    let vigil = format!("http://127.0.0.1:{p_vigil}");

    // Shown silenced, with who, why and until.
    let shown = wait_for("ServiceDown silenced in Vigil", 60, dir, || {
        let v = http("GET", &format!("{vigil}/api/v1/alerts"), None)?;
        v["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["name"] == "ServiceDown" && a["state"] == "silenced")
            .cloned()
    });
    assert_eq!(shown["silence"]["id"], id.as_str(), "{shown:#}");
    assert_eq!(shown["silence"]["actor"], "bob");
    assert_eq!(shown["silence"]["comment"], "nginx being migrated");
    let created = audit(&vigil)
        .into_iter()
        .find(|r| r["kind"] == "silence_created")
        .expect("silence_created recorded");
    assert_eq!(created["actor"], "bob");
    assert_eq!(created["reason"], "nginx being migrated");
    // Several polls later nothing was proposed: no action, no guard, no run.
    std::thread::sleep(Duration::from_secs(4));
    let recs = audit(&vigil);
    for kind in [
        "runbook_matched",
        "action_proposed",
        "action_blocked",
        "action_started",
    ] {
        assert!(
            !recs.iter().any(|r| r["kind"] == kind),
            "{kind} while silenced: {recs:#?}"
        );
    }

    // bob expires the silence in Alertmanager: the restart is proposed.
    http("DELETE", &format!("{am}/api/v2/silence/{id}"), None).expect("silence expired");
    let recs = wait_for("the action proposed after the silence", 30, dir, || {
        let recs = audit(&vigil);
        recs.iter()
            .any(|r| r["kind"] == "action_proposed" && r["runbook"] == "service_restart")
            .then_some(recs)
    });
    let ended = recs
        .iter()
        .position(|r| r["kind"] == "silence_expired")
        .expect("silence_expired recorded");
    let proposed = recs
        .iter()
        .position(|r| r["kind"] == "action_proposed")
        .unwrap();
    assert!(ended < proposed, "{recs:#?}");
    assert!(
        recs.iter()
            .any(|r| r["kind"] == "approval_requested" && r["target"] == "web-01"),
        "{recs:#?}"
    );
}
