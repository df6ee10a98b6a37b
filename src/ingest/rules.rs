//! PromQL policies: each `prometheus` source that evaluates policies
//! (`expr = '...'`, or `policies = "node_exporter"`) runs their queries on
//! its interval and hands the answers to the hub as samples of one
//! synthetic metric per query (`policy::query_metric`). The engine then
//! decides as for any policy: `for`, hysteresis, severities, staleness,
//! verification.
//!
//! Per series: its value (the expression's answer, else the resolve
//! expression's) and, per query, 1 when the query answered it and 0 when
//! not. So a pending alert whose expression stopped holding goes back to
//! inactive and, without a resolve expression, a firing one resolves, as
//! in Prometheus. A series that neither the expression nor the
//! resolve expression answers (the hysteresis band) keeps its state; one
//! answered by no query for 5 minutes is forgotten, and its alert resolves
//! as stale 5 minutes later.
//!
//! Reads Prometheus; never decides what an answer means.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::client::PrometheusClient;
use super::poll::{SourceLog, backoff, report};
use crate::config::{SourceKind, SourceSpec};
use crate::engine::Event;
use crate::hub::{HealthState, SourceBoard};
use crate::model::{Labels, Sample};
use crate::policy::{Policy, STALENESS};

/// The file systems the disk figures leave out (as the default policy does).
const FS: &str =
    r#"fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|fuse.*",mountpoint!~"/boot.*|/run.*""#;

/// What each Prometheus source is asked about hosts for the Hosts pane:
/// (metric shown, PromQL on node_exporter's metrics).
fn host_queries() -> Vec<(&'static str, String)> {
    vec![
        (
            crate::hosts::DISK,
            format!("100 * (1 - node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}})"),
        ),
        (
            crate::hosts::MEMORY,
            "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)".into(),
        ),
        (
            crate::hosts::SERVICE_UP,
            r#"(1 - label_replace(node_systemd_unit_state{state="failed",name=~".+\\.service"}, "service", "$1", "name", "(.+)\\.service")) or service_up"#.into(),
        ),
    ]
}

/// How long a series no query answers is still told the expression does
/// not hold.
fn forget_after() -> Duration {
    STALENESS.to_std().unwrap_or(Duration::from_secs(300))
}

/// The board name of a source's policy evaluation.
pub fn board_name(source: &str) -> String {
    format!("{source} policies")
}

/// One PromQL policy as its evaluator sees it.
struct Rule {
    /// The metric of the series' value.
    value: String,
    /// (metric of the 1/0 "answered", PromQL), fire first.
    queries: Vec<(String, String)>,
    /// Series seen, with when some query last answered them.
    known: HashMap<Labels, Instant>,
}

/// The samples one round of answers gives, and which series it keeps.
/// `answers[i]` is the answer to `rule.queries[i]`.
fn samples_of(rule: &mut Rule, answers: &[Vec<(Labels, f64)>], now: Instant) -> Vec<Sample> {
    let mut rows: HashMap<Labels, Vec<Option<f64>>> = HashMap::new();
    let n = rule.queries.len();
    for (i, answer) in answers.iter().enumerate() {
        for (labels, v) in answer {
            let mut l = labels.clone();
            l.remove("__name__");
            rows.entry(l).or_insert_with(|| vec![None; n])[i] = Some(*v);
        }
    }
    for l in rows.keys() {
        rule.known.insert(l.clone(), now);
    }
    let limit = forget_after();
    rule.known
        .retain(|_, seen| now.saturating_duration_since(*seen) <= limit);
    let mut out = Vec::new();
    let mut push = |name: &str, value: f64, labels: &Labels| {
        out.push(Sample {
            name: name.to_string(),
            value,
            labels: labels.clone(),
        })
    };
    for l in rule.known.keys() {
        match rows.get(l) {
            // Answered by no query (the hysteresis band, or going away):
            // only the expression learns it no longer holds.
            None => push(&rule.queries[0].0, 0.0, l),
            Some(row) => {
                // The value shown: the expression's, else the resolve
                // expression's (what the series is now).
                if let Some(v) = row.iter().take(2).flatten().next() {
                    push(&rule.value, *v, l);
                }
                // The expression's own leaf last: the engine decides on
                // it at once, so the resolve and severity leaves must be
                // current by then (a series that just left the resolve
                // answer would otherwise still read as resolved).
                let order = (1..rule.queries.len()).chain(std::iter::once(0));
                for i in order {
                    let present = if row[i].is_some() { 1.0 } else { 0.0 };
                    push(&rule.queries[i].0, present, l);
                }
            }
        }
    }
    out
}

/// Starts one evaluator per `prometheus` source that has PromQL policies;
/// they stop when `shutdown` turns true or the hub goes away.
pub fn spawn_rules(
    sources: &[SourceSpec],
    policies: &[Policy],
    events: mpsc::Sender<Event>,
    board: SourceBoard,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let proms: Vec<&SourceSpec> = sources
        .iter()
        .filter(|s| s.kind == SourceKind::Prometheus)
        .collect();
    for (si, s) in proms.iter().enumerate() {
        let rules: Vec<Rule> = policies
            .iter()
            .filter_map(|p| p.query.as_ref())
            .filter(|q| match &q.source {
                Some(n) => *n == s.name,
                None => si == 0,
            })
            .map(|q| Rule {
                value: q.value_metric.clone(),
                queries: q.queries.clone(),
                known: HashMap::new(),
            })
            .collect();
        let name = board_name(&s.name);
        let source = s.name.clone();
        let has_rules = !rules.is_empty();
        if has_rules {
            report(
                &board,
                &name,
                "prometheus",
                HealthState::Unknown,
                format!("{} PromQL policies; first evaluation pending", rules.len()),
            );
        }
        let client = Arc::new(PrometheusClient::new(&s.name, &s.url, s.timeout()));
        let interval = s.interval();
        let (events, board, mut shutdown) = (events.clone(), board.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            let mut rules = rules;
            let mut log = SourceLog::default();
            loop {
                let mut batch = Vec::new();
                let mut failure = None;
                'rules: for rule in rules.iter_mut() {
                    let mut answers = Vec::new();
                    for (_, q) in &rule.queries {
                        match client.query(q).await {
                            Ok(series) => answers.push(
                                series
                                    .into_iter()
                                    .filter_map(|s| Some((s.labels, s.points.last()?.1)))
                                    .collect::<Vec<_>>(),
                            ),
                            Err(e) => {
                                failure = Some(e.to_string());
                                break 'rules;
                            }
                        }
                    }
                    batch.extend(samples_of(rule, &answers, Instant::now()));
                }
                match failure {
                    None => {
                        let n = batch.len();
                        if !batch.is_empty() && events.send(Event::Samples(batch)).await.is_err() {
                            return;
                        }
                        log.ok(&name);
                        if has_rules {
                            report(
                                &board,
                                &name,
                                "prometheus",
                                HealthState::Ok,
                                format!("{} PromQL policies; {n} samples", rules.len()),
                            );
                        }
                    }
                    Some(e) => {
                        let state = log.failed(&name, &e);
                        if has_rules {
                            report(&board, &name, "prometheus", state, e);
                        }
                    }
                }
                // What the Hosts pane shows; a failure here changes no
                // policy's health (the policies' own queries tell that).
                let mut hosts = Vec::new();
                for (metric, q) in host_queries() {
                    match client.query(&q).await {
                        Ok(series) => hosts.extend(series.into_iter().filter_map(|x| {
                            Some(Sample {
                                name: metric.to_string(),
                                value: x.points.last()?.1,
                                labels: x.labels,
                            })
                        })),
                        Err(e) => tracing::debug!(source = %source, "host state query failed: {e}"),
                    }
                }
                if !hosts.is_empty()
                    && events
                        .send(Event::HostState {
                            source: source.clone(),
                            samples: hosts,
                        })
                        .await
                        .is_err()
                {
                    return;
                }
                continue_wait(&mut shutdown, backoff(interval, log.failures())).await;
                if *shutdown.borrow() {
                    return;
                }
            }
        }));
    }
    tasks
}

/// Sleeps `wait`, or less when `shutdown` changes.
async fn continue_wait(shutdown: &mut watch::Receiver<bool>, wait: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(kv: &[(&str, &str)]) -> Labels {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn answers_become_values_and_presence() {
        let mut rule = Rule {
            value: "v".into(),
            queries: vec![("f".into(), "x > 85".into()), ("r".into(), "x < 80".into())],
            known: HashMap::new(),
        };
        let t0 = Instant::now();
        let a = l(&[("__name__", "x"), ("instance", "h:9100")]);
        let b = l(&[("instance", "g:9100")]);
        let s = samples_of(
            &mut rule,
            &[vec![(a.clone(), 90.0)], vec![(b.clone(), 10.0)]],
            t0,
        );
        let get = |s: &[Sample], m: &str, inst: &str| {
            s.iter()
                .find(|x| x.name == m && x.labels["instance"] == inst)
                .map(|x| x.value)
        };
        assert_eq!(get(&s, "v", "h:9100"), Some(90.0));
        assert_eq!(get(&s, "f", "h:9100"), Some(1.0));
        assert_eq!(get(&s, "r", "h:9100"), Some(0.0));
        assert_eq!(get(&s, "v", "g:9100"), Some(10.0));
        assert_eq!(get(&s, "f", "g:9100"), Some(0.0));
        assert_eq!(get(&s, "r", "g:9100"), Some(1.0));
        assert!(s.iter().all(|x| !x.labels.contains_key("__name__")));
        // In the band (answered by neither): the expression says no, the
        // value and the resolve leaf keep theirs.
        let s = samples_of(&mut rule, &[vec![], vec![(b.clone(), 10.0)]], t0);
        assert_eq!(get(&s, "f", "h:9100"), Some(0.0));
        assert_eq!(get(&s, "r", "h:9100"), None);
        assert_eq!(get(&s, "v", "h:9100"), None);
        // Forgotten after 5 minutes of silence.
        let later = t0 + forget_after() + Duration::from_secs(1);
        let s = samples_of(&mut rule, &[vec![], vec![]], later);
        assert!(s.is_empty(), "{s:?}");
    }
}

#[cfg(test)]
mod engine_tests {
    use super::*;
    use crate::engine::{Command, Engine};
    use crate::model::RecordKind;

    #[test]
    fn a_firing_promql_alert_gets_its_action() {
        let text = "[settings]\ndry_run = true\n[[hosts]]\nname = \"web-1\"\naddresses = [\"127.0.0.1\"]\nexecutor = \"local\"\n[[sources]]\nname = \"prom\"\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:9\"\npoll = false\npolicies = \"node_exporter\"\n";
        let c = crate::config::Config::parse("t.toml", text).unwrap();
        let setup = c.build("t.toml", text, false, None).unwrap();
        let q = setup
            .policies
            .iter()
            .find(|p| p.name == "LogFileLarge")
            .and_then(|p| p.query.clone())
            .unwrap();
        let mut e = Engine::new(setup);
        let mut rule = Rule {
            value: q.value_metric.clone(),
            queries: q.queries.clone(),
            known: HashMap::new(),
        };
        let series: Labels = [
            ("instance", "127.0.0.1:9100"),
            ("path", "/var/log/a.log"),
            ("service", "app"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // First the series meets the resolve expression (a small file),
        // then the expression (it grew): the action goes ahead.
        let t0 = Instant::now();
        let now: crate::model::Time = "2026-05-01T12:00:00Z".parse().unwrap();
        let s = samples_of(&mut rule, &[vec![], vec![(series.clone(), 10.0)]], t0);
        e.handle(Event::Samples(s), now);
        let s = samples_of(&mut rule, &[vec![(series, 2e9)], vec![]], t0);
        let cmds = e.handle(Event::Samples(s), now + chrono::TimeDelta::seconds(15));
        let kinds: Vec<_> = cmds
            .iter()
            .filter_map(|c| match c {
                Command::Record(r) => Some((r.kind, r.detail.clone())),
                _ => None,
            })
            .collect();
        assert!(
            kinds.iter().any(|(k, _)| *k == RecordKind::DryRunPlanned),
            "{kinds:#?}"
        );
    }
}
