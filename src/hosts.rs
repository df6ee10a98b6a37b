//! What the Hosts pane shows about each host: every configured host, with
//! its latest disk, memory and service state from whatever source has them
//! (the ingest API, a Prometheus source, the demo fleet), its open alerts
//! and actions, and when data last came. The hub keeps the board; the
//! console only draws it.
//!
//! Owns no decisions: a sample here changes nothing the engine decides.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::engine::{Action, Alert, Inventory};
use crate::model::{AlertStatus, Labels, Sample, Severity, Time};

/// The metrics the board keeps per host.
pub const DISK: &str = "disk_used_percent";
pub const MEMORY: &str = "memory_used_percent";
pub const SERVICE_UP: &str = "service_up";

/// True for a metric the board keeps (a cheap test on the ingest path).
pub fn is_host_metric(name: &str) -> bool {
    matches!(name, DISK | MEMORY | SERVICE_UP)
        || name == "cpu_percent"
        || name.starts_with("connection_pool")
}

/// How many points of history a host keeps per metric and per series.
const HISTORY: usize = 120;
/// How many series a host keeps a history of.
const MAX_SERIES: usize = 64;
/// How many services a host reports at most.
const MAX_SERVICES: usize = 256;

/// A host as the console shows it: latest values and a short history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct HostView {
    pub name: String,
    pub group: Option<String>,
    /// The worst (highest) latest value of each metric across its series.
    pub metrics: BTreeMap<String, f64>,
    /// The worst value of each metric per tick, oldest first.
    pub history: BTreeMap<String, VecDeque<f64>>,
    /// Each series' own history: (metric, labels but `host`).
    #[serde(with = "crate::model::map_as_pairs")]
    pub series: BTreeMap<(String, crate::model::Labels), VecDeque<f64>>,
    /// Listed in the config's `[[hosts]]` (or the demo fleet).
    #[serde(default)]
    pub configured: bool,
    /// When a sample about it last came, and from where (`demo`, `ingest`,
    /// a source's name).
    #[serde(default)]
    pub last_seen: Option<Time>,
    #[serde(default)]
    pub source: Option<String>,
    /// The latest `service_up` of each service: true when up.
    #[serde(default)]
    pub services: BTreeMap<String, bool>,
    /// Its firing alerts, the worst of their severities, and its open actions.
    #[serde(default)]
    pub alerts: u32,
    #[serde(default)]
    pub worst: Option<Severity>,
    #[serde(default)]
    pub actions: u32,
}

impl HostView {
    /// The history of the series of `metric` whose labels all appear in
    /// `labels` (an alert's), if there is one.
    pub fn series_for(&self, metric: &str, labels: &Labels) -> Option<&VecDeque<f64>> {
        self.series
            .iter()
            .filter(|((m, l), _)| m == metric && l.iter().all(|(k, v)| labels.get(k) == Some(v)))
            .max_by_key(|((_, l), _)| l.len())
            .map(|(_, h)| h)
    }

    /// No sample came for `STALENESS` (5m) at `now`, or none ever.
    pub fn no_data(&self, now: Time) -> bool {
        self.last_seen
            .is_none_or(|t| now - t > crate::policy::STALENESS)
    }

    /// The services reported down, by name.
    pub fn services_down(&self) -> impl Iterator<Item = &str> {
        self.services
            .iter()
            .filter(|(_, up)| !**up)
            .map(|(s, _)| s.as_str())
    }
}

fn push(h: &mut VecDeque<f64>, v: f64) {
    h.push_back(v);
    while h.len() > HISTORY {
        h.pop_front();
    }
}

/// Every host's view, kept by the hub.
#[derive(Debug, Default)]
pub struct HostBoard {
    hosts: BTreeMap<String, HostView>,
    /// The labels that name a sample's host (`[settings] host_labels`).
    order: Vec<String>,
    /// The views as last handed out, and when they were built.
    shared: Option<(std::sync::Arc<Vec<HostView>>, std::time::Instant)>,
    /// A host came, or a host's alert or action count changed, since.
    rows_changed: bool,
    /// Only figures (values, sparklines, services, last seen) changed since.
    figures_changed: bool,
}

/// Figures that change with every sample are rebuilt for the snapshots at
/// most this often; rows and counts at once.
pub const FIGURES_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl HostBoard {
    /// A board with a row for every configured host.
    pub fn new(inventory: &Inventory, order: Vec<String>) -> HostBoard {
        let hosts = inventory
            .hosts
            .values()
            .map(|h| {
                (
                    h.name.clone(),
                    HostView {
                        name: h.name.clone(),
                        group: h.labels.get("group").cloned(),
                        configured: true,
                        ..HostView::default()
                    },
                )
            })
            .collect();
        HostBoard {
            hosts,
            order,
            ..HostBoard::default()
        }
    }

    pub fn views(&self) -> Vec<HostView> {
        self.hosts.values().cloned().collect()
    }

    /// The views for a snapshot: the same list as last time unless a row
    /// or count changed, or figures changed and the last build is
    /// [`FIGURES_EVERY`] old (copying every host's sparklines at every
    /// published change cost the hub more than evaluating the samples).
    pub fn shared_views(&mut self) -> std::sync::Arc<Vec<HostView>> {
        let fresh = match &self.shared {
            None => false,
            Some((_, at)) => {
                !self.rows_changed && (!self.figures_changed || at.elapsed() < FIGURES_EVERY)
            }
        };
        if !fresh {
            let built = std::sync::Arc::new(self.views());
            self.shared = Some((built, std::time::Instant::now()));
            self.rows_changed = false;
            self.figures_changed = false;
        }
        self.shared
            .as_ref()
            .map(|(v, _)| v.clone())
            .unwrap_or_default()
    }

    /// Figures held back are due now: the next snapshot carries them.
    pub fn figures_due(&self) -> bool {
        self.figures_changed
            && self
                .shared
                .as_ref()
                .is_none_or(|(_, at)| at.elapsed() >= FIGURES_EVERY)
    }

    /// Takes the samples a source (`from`) delivered at `now`. Samples of
    /// hosts that are not configured show up too when they say `host`
    /// (the demo fleet, an unlisted host the ingest API reports).
    pub fn observe(&mut self, inventory: &Inventory, samples: &[Sample], from: &str, now: Time) {
        let mut worst: BTreeMap<(String, &str), f64> = BTreeMap::new();
        for s in samples {
            if !is_host_metric(&s.name) || !s.value.is_finite() {
                continue;
            }
            let Some(host) = inventory
                .locate(&s.labels, &self.order)
                .host()
                .map(str::to_string)
            else {
                continue;
            };
            self.figures_changed = true;
            if !self.hosts.contains_key(&host) {
                self.rows_changed = true;
            }
            let hv = self.hosts.entry(host.clone()).or_insert_with(|| HostView {
                name: host.clone(),
                group: inventory
                    .hosts
                    .get(&host)
                    .and_then(|h| h.labels.get("group").cloned()),
                configured: inventory.hosts.contains_key(&host),
                ..HostView::default()
            });
            hv.last_seen = Some(now);
            hv.source = Some(from.to_string());
            if s.name == SERVICE_UP {
                if let Some(svc) = s.labels.get("service")
                    && (hv.services.len() < MAX_SERVICES || hv.services.contains_key(svc))
                {
                    hv.services.insert(svc.clone(), s.value >= 1.0);
                }
                continue;
            }
            let mut l = s.labels.clone();
            for k in &self.order {
                l.remove(k);
            }
            l.remove("host");
            l.remove("job");
            // Bounded: a host with a runaway number of series keeps only the
            // first 64.
            let key = (s.name.clone(), l);
            if hv.series.len() < MAX_SERIES || hv.series.contains_key(&key) {
                push(hv.series.entry(key).or_default(), s.value);
            }
            let v = worst.entry((host, s.name.as_str())).or_insert(s.value);
            if s.value > *v {
                *v = s.value;
            }
        }
        for ((host, metric), value) in worst {
            if let Some(hv) = self.hosts.get_mut(&host) {
                hv.metrics.insert(metric.to_string(), value);
                push(hv.history.entry(metric.to_string()).or_default(), value);
            }
        }
    }

    /// Counts each host's firing alerts and open actions.
    pub fn count<'a>(
        &mut self,
        alerts: impl Iterator<Item = &'a Alert>,
        actions: impl Iterator<Item = &'a Action>,
    ) {
        // Counted in place: only hosts on the board are counted, with no
        // map of every alert's host built on the way (10,000 alerts are
        // counted at every published change).
        let before: Vec<(u32, Option<Severity>, u32)> = self
            .hosts
            .values()
            .map(|hv| (hv.alerts, hv.worst, hv.actions))
            .collect();
        for hv in self.hosts.values_mut() {
            hv.alerts = 0;
            hv.worst = None;
            hv.actions = 0;
        }
        for a in alerts.filter(|a| a.status == AlertStatus::Firing) {
            if let Some(hv) = a.host().and_then(|h| self.hosts.get_mut(h)) {
                hv.alerts += 1;
                hv.worst = hv.worst.max(Some(a.severity));
            }
        }
        for a in actions.filter(|a| a.is_open()) {
            if let Some(hv) = self.hosts.get_mut(a.target.as_str()) {
                hv.actions += 1;
            }
        }
        if self
            .hosts
            .values()
            .zip(&before)
            .any(|(hv, b)| (hv.alerts, hv.worst, hv.actions) != *b)
        {
            self.rows_changed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HostSpec;
    use std::sync::Arc;

    fn sample(name: &str, v: f64, kv: &[(&str, &str)]) -> Sample {
        Sample {
            name: name.into(),
            value: v,
            labels: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn snapshots_get_new_rows_at_once_and_new_figures_at_most_once_a_second() {
        let web1 = HostSpec {
            name: "web-1".into(),
            ..HostSpec::default()
        };
        let inv = Inventory::new(vec![web1], None);
        let mut b = HostBoard::new(&inv, vec!["host".to_string()]);
        let now: Time = "2026-05-01T12:00:00Z".parse().unwrap();
        let first = b.shared_views();
        assert!(Arc::ptr_eq(&first, &b.shared_views()), "nothing changed");

        // A figure of a known host: held back, then due.
        b.observe(
            &inv,
            &[sample(DISK, 40.0, &[("host", "web-1")])],
            "ingest",
            now,
        );
        assert!(Arc::ptr_eq(&first, &b.shared_views()), "held back");
        assert!(!b.figures_due());
        std::thread::sleep(FIGURES_EVERY);
        assert!(b.figures_due());
        let second = b.shared_views();
        assert_eq!(second[0].metrics.get(DISK), Some(&40.0));
        assert!(!b.figures_due());

        // A host that was not on the board: its row comes at once.
        b.observe(
            &inv,
            &[sample(DISK, 10.0, &[("host", "db-9")])],
            "ingest",
            now,
        );
        let third = b.shared_views();
        assert_eq!(third.len(), 2);

        // A host's alert count changes: at once too.
        let alert: Alert = serde_json::from_value::<crate::view::AlertView>(serde_json::json!({
            "fingerprint": "f1", "name": "Disk", "labels": {"host": "web-1"},
            "annotations": {}, "severity": "critical", "status": "firing",
            "origin": "external", "source": "test", "since": "2026-05-01T12:00:00Z",
            "resolved_at": null, "condition": null, "value": null, "action": null,
            "silence": null, "host": "web-1"
        }))
        .unwrap()
        .into();
        b.count(std::iter::once(&alert), std::iter::empty());
        let fourth = b.shared_views();
        assert!(!Arc::ptr_eq(&third, &fourth));
        assert_eq!(fourth.iter().find(|h| h.name == "web-1").unwrap().alerts, 1);
    }

    #[test]
    fn every_configured_host_has_a_row_and_instance_samples_land_on_it() {
        let inv = Inventory::new(
            vec![
                HostSpec {
                    name: "web-1".into(),
                    addresses: vec!["127.0.0.1".into()],
                    ..HostSpec::default()
                },
                HostSpec {
                    name: "idle".into(),
                    ..HostSpec::default()
                },
            ],
            None,
        );
        let order = vec!["host".to_string(), "instance".to_string()];
        let mut b = HostBoard::new(&inv, order);
        assert_eq!(b.views().len(), 2);
        let now: Time = "2026-05-01T12:00:00Z".parse().unwrap();
        b.observe(
            &inv,
            &[
                sample(
                    DISK,
                    42.0,
                    &[("instance", "127.0.0.1:9100"), ("mountpoint", "/")],
                ),
                sample(
                    DISK,
                    71.0,
                    &[("instance", "127.0.0.1:9100"), ("mountpoint", "/var")],
                ),
                sample(MEMORY, 33.0, &[("instance", "127.0.0.1:9100")]),
                sample(
                    SERVICE_UP,
                    0.0,
                    &[("instance", "127.0.0.1:9100"), ("service", "nginx")],
                ),
                sample("unrelated", 1.0, &[("instance", "127.0.0.1:9100")]),
                sample(DISK, 99.0, &[("instance", "10.9.9.9:9100")]),
            ],
            "prom",
            now,
        );
        let v = b.views();
        let web = v.iter().find(|h| h.name == "web-1").unwrap();
        assert_eq!(web.metrics.get(DISK), Some(&71.0));
        assert_eq!(web.metrics.get(MEMORY), Some(&33.0));
        assert_eq!(web.services_down().collect::<Vec<_>>(), ["nginx"]);
        assert_eq!(web.source.as_deref(), Some("prom"));
        assert!(!web.no_data(now));
        assert!(web.no_data(now + chrono::TimeDelta::minutes(6)));
        let idle = v.iter().find(|h| h.name == "idle").unwrap();
        assert!(idle.configured && idle.no_data(now));
        // An address nobody is configured with makes no row.
        assert_eq!(v.len(), 2);
    }
}
