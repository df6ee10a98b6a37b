//! Evidence for verifying an action on an outside alert: the rule that
//! raised it is queried on a configured Prometheus source while Vigil waits
//! for the alert to resolve (Alertmanager resolves late, after its
//! group_interval).
//!
//! The rule comes from the alert's `generatorURL` (Prometheus' graph link,
//! `…/graph?g0.expr=EXPR&g0.tab=1`). The source is the configured
//! Prometheus whose URL has the same scheme, host and port as that link, or
//! the only configured Prometheus when none has (a Prometheus behind a
//! proxy publishes another external URL than the one Vigil reaches).
//!
//! Reads a remote server; the engine decides what the answer means.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;

use super::client::{PrometheusClient, SeriesValues};
use crate::config::{SourceKind, SourceSpec};
use crate::engine::Prober;
use crate::engine::{Event, Probe, SourceEvidence};
use crate::model::Labels;

/// The expression of the first graph of a Prometheus `generatorURL`.
pub fn rule_expr(generator_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(generator_url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "g0.expr")
        .map(|(_, v)| v.into_owned())
        .filter(|e| !e.trim().is_empty())
}

/// `scheme://host:port` of a URL (the port made explicit).
fn origin(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    Some(format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str()?,
        u.port_or_known_default()?
    ))
}

/// The series of an answer that belong to an alert: all their labels but
/// `__name__` are the alert's (an alert carries the series' labels plus
/// the rule's own).
pub fn alert_series<'a>(answer: &'a [SeriesValues], alert: &Labels) -> Vec<&'a SeriesValues> {
    answer
        .iter()
        .filter(|s| {
            s.labels
                .iter()
                .all(|(k, v)| k == "__name__" || alert.get(k) == Some(v))
        })
        .collect()
}

/// A sample value as people read it: `93.2`, `1500000000`, `0.125`.
fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Queries the rules of outside alerts on the configured Prometheus sources.
pub struct RuleProber {
    sources: Vec<(Option<String>, Arc<PrometheusClient>, Duration)>,
}

impl RuleProber {
    /// A prober over the `prometheus` sources of the config; `None` when
    /// there is none.
    pub fn from_sources(specs: &[SourceSpec]) -> Option<RuleProber> {
        let sources: Vec<_> = specs
            .iter()
            .filter(|s| s.kind == SourceKind::Prometheus)
            .map(|s| {
                (
                    origin(&s.url),
                    Arc::new(PrometheusClient::new(&s.name, &s.url, s.timeout())),
                    s.interval().max(Duration::from_secs(1)),
                )
            })
            .collect();
        (!sources.is_empty()).then_some(RuleProber { sources })
    }

    fn source_for(&self, generator_url: &str) -> Option<(Arc<PrometheusClient>, Duration)> {
        let want = origin(generator_url);
        let pick = self
            .sources
            .iter()
            .find(|(o, _, _)| want.is_some() && *o == want)
            .or_else(|| (self.sources.len() == 1).then(|| &self.sources[0]))?;
        Some((pick.1.clone(), pick.2))
    }
}

/// What one query said about the alert.
fn judge(
    client: &PrometheusClient,
    expr: &str,
    p: &Probe,
    answer: &[SeriesValues],
) -> SourceEvidence {
    let mine = alert_series(answer, &p.labels);
    let value = mine
        .first()
        .and_then(|s| s.points.last())
        .map(|(_, v)| fmt_value(*v));
    let why = match &value {
        Some(v) => format!(
            "Prometheus {}: the rule's expression `{expr}` still returns {v} for this alert's series",
            client.name()
        ),
        None => format!(
            "Prometheus {}: the rule's expression `{expr}` no longer returns this alert's series",
            client.name()
        ),
    };
    SourceEvidence {
        holds: !mine.is_empty(),
        why,
        at: Utc::now(),
    }
}

impl Prober for RuleProber {
    fn probe(&self, p: Probe, done: mpsc::Sender<Event>) {
        let Some(expr) = rule_expr(&p.generator_url) else {
            tracing::debug!(action = %p.action, url = %p.generator_url, "no rule expression in generatorURL");
            return;
        };
        let Some((client, step)) = self.source_for(&p.generator_url) else {
            tracing::debug!(action = %p.action, url = %p.generator_url, "no Prometheus source for generatorURL");
            return;
        };
        tokio::spawn(async move {
            loop {
                match client.query(&expr).await {
                    Ok(answer) => {
                        let evidence = judge(&client, &expr, &p, &answer);
                        let ev = Event::Evidence {
                            action: p.action,
                            attempt: p.attempt,
                            evidence,
                        };
                        if done.send(ev).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(action = %p.action, source = client.name(), "rule query for verification failed: {e}")
                    }
                }
                let left = (p.until - Utc::now()).to_std().unwrap_or_default();
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(step.min(left)).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> Labels {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_expression_comes_from_the_graph_link() {
        let url = "http://prom.example:9090/graph?g0.expr=node_filesystem_avail_bytes%7Bmountpoint%3D%22%2F%22%7D+%3C+1e9&g0.tab=1";
        assert_eq!(
            rule_expr(url).as_deref(),
            Some("node_filesystem_avail_bytes{mountpoint=\"/\"} < 1e9")
        );
        assert_eq!(rule_expr("http://prom:9090/graph?g0.tab=1"), None);
        assert_eq!(rule_expr("not a url"), None);
        assert_eq!(rule_expr("http://prom:9090/graph?g0.expr=+"), None);
    }

    #[test]
    fn the_source_is_the_one_the_link_points_at_or_the_only_one() {
        let spec = |name: &str, url: &str| SourceSpec {
            name: name.into(),
            kind: SourceKind::Prometheus,
            url: url.into(),
            poll: Some(false),
            interval: None,
            timeout: None,
            verify_window: None,
            policies: None,
        };
        let two = RuleProber::from_sources(&[
            spec("a", "http://10.0.0.1:9090"),
            spec("b", "http://10.0.0.2:9090/"),
        ])
        .unwrap();
        let (c, _) = two
            .source_for("http://10.0.0.2:9090/graph?g0.expr=up")
            .unwrap();
        assert_eq!(c.name(), "b");
        assert!(
            two.source_for("http://elsewhere:9090/graph?g0.expr=up")
                .is_none()
        );
        let one = RuleProber::from_sources(&[spec("a", "http://127.0.0.1:9090")]).unwrap();
        let (c, _) = one
            .source_for("https://prom.example/graph?g0.expr=up")
            .unwrap();
        assert_eq!(c.name(), "a");
        assert!(RuleProber::from_sources(&[]).is_none());
    }

    #[test]
    fn a_series_belongs_to_the_alert_when_its_labels_are_the_alerts() {
        let alert = labels(&[
            ("alertname", "DiskFull"),
            ("instance", "web-1:9100"),
            ("mountpoint", "/"),
            ("severity", "critical"),
        ]);
        let s = |kv: &[(&str, &str)]| SeriesValues {
            labels: labels(kv),
            points: vec![(0.0, 1.0)],
        };
        let answer = vec![
            s(&[
                ("__name__", "node_filesystem_avail_bytes"),
                ("instance", "web-1:9100"),
                ("mountpoint", "/"),
            ]),
            s(&[("instance", "web-2:9100"), ("mountpoint", "/")]),
            s(&[("instance", "web-1:9100"), ("mountpoint", "/var")]),
        ];
        let mine = alert_series(&answer, &alert);
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].labels.get("instance").unwrap(), "web-1:9100");
        assert_eq!(mine[0].labels.get("mountpoint").unwrap(), "/");
        // An aggregated answer keeps fewer labels and still belongs.
        let agg = vec![s(&[("instance", "web-1:9100")])];
        assert_eq!(alert_series(&agg, &alert).len(), 1);
    }
}
