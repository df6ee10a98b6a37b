//! What the engine knows about the fleet and its calendar (hosts, groups,
//! maintenance windows), and the guards that decide whether an action may
//! run now. Each guard that says no names itself and why.
//!
//! Pure: `now` is an argument.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::TimeDelta;
use croner::Cron;
use serde::{Deserialize, Serialize};

use crate::model::{BlockReason, Labels, Time};

/// A host of the inventory, as the engine sees it (the config's
/// `[[hosts]]` entry without its executor settings, which are exec's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSpec {
    pub name: String,
    /// Facts about the host: `group`, `role`, `env`, `service_manager`...
    pub labels: Labels,
    /// Services that run there (preconditions check against it).
    pub services: Vec<String>,
    /// How Vigil reaches it: `local`, `ssh`, `http`, `sim`.
    pub executor: Option<String>,
    /// `[hosts.ssh] host`, when set: the address ssh reaches it at, which
    /// alerts may name it by.
    pub ssh_host: Option<String>,
    /// Other addresses and names the host is known by (what Prometheus'
    /// `instance` label holds, without the port): alerts carrying one of
    /// them are about this host.
    pub addresses: Vec<String>,
}

/// The fleet as the engine sees it.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub hosts: BTreeMap<String, HostSpec>,
    /// Members of each `group` label value.
    groups: BTreeMap<String, Vec<String>>,
    /// The executor for hosts not listed (the demo fleet and the replayer
    /// use `sim` for every host); None means unlisted hosts have none.
    pub default_executor: Option<String>,
}

impl Inventory {
    pub fn new(hosts: Vec<HostSpec>, default_executor: Option<String>) -> Inventory {
        let hosts: BTreeMap<String, HostSpec> =
            hosts.into_iter().map(|h| (h.name.clone(), h)).collect();
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for h in hosts.values() {
            if let Some(g) = h.labels.get("group") {
                groups.entry(g.clone()).or_default().push(h.name.clone());
            }
        }
        Inventory {
            hosts,
            groups,
            default_executor,
        }
    }

    /// Facts used for parameters and selectors: the host's labels plus `host`.
    pub fn facts(&self, host: &str) -> Labels {
        let mut l = self
            .hosts
            .get(host)
            .map(|h| h.labels.clone())
            .unwrap_or_default();
        l.insert("host".into(), host.to_string());
        l
    }

    pub fn executor_of(&self, host: &str) -> Option<String> {
        match self.hosts.get(host) {
            Some(h) => h.executor.clone().or_else(|| self.default_executor.clone()),
            None => self.default_executor.clone(),
        }
    }

    /// The hosts that share `host`'s `group` label (itself included).
    pub fn group_of(&self, host: &str) -> Option<(&str, &[String])> {
        let g = self.hosts.get(host)?.labels.get("group")?;
        self.groups.get(g).map(|m| (g.as_str(), m.as_slice()))
    }
}

/// A `[[maintenance]]` entry as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Label equality table; `host` matches the host name, other keys the
    /// host's labels.
    #[serde(default)]
    pub selector: Labels,
    /// Five-field cron, UTC.
    pub schedule: String,
    pub duration: String,
    #[serde(default)]
    pub reason: String,
}

/// A compiled maintenance window.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    pub spec: WindowSpec,
    cron: Cron,
    pub duration: TimeDelta,
}

impl MaintenanceWindow {
    pub fn compile(spec: &WindowSpec) -> Result<MaintenanceWindow, String> {
        let fields = spec.schedule.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "schedule {:?} has {fields} fields; expected 5 (minute hour day-of-month month day-of-week, UTC)",
                spec.schedule
            ));
        }
        let cron = Cron::from_str(&spec.schedule).map_err(|e| {
            format!(
                "schedule {:?} is not a valid cron expression: {e}",
                spec.schedule
            )
        })?;
        let duration =
            crate::units::limits::MAINTENANCE_DURATION.parse_delta("duration", &spec.duration)?;
        Ok(MaintenanceWindow {
            spec: spec.clone(),
            cron,
            duration,
        })
    }

    /// Does the window cover this host (by name and facts)?
    pub fn selects(&self, facts: &Labels) -> bool {
        self.spec
            .selector
            .iter()
            .all(|(k, v)| facts.get(k).is_some_and(|f| f == v))
    }

    /// If a window occurrence covers `now`, its end.
    pub fn active_until(&self, now: Time) -> Option<Time> {
        let from = crate::units::sub_time(now, self.duration);
        let occ = self.cron.find_next_occurrence(&from, false).ok()?;
        let end = crate::units::add_time(occ, self.duration);
        if occ <= now && now < end {
            Some(end)
        } else {
            None
        }
    }

    pub fn describe(&self) -> String {
        let reason = if self.spec.reason.is_empty() {
            String::new()
        } else {
            format!(" \"{}\"", self.spec.reason)
        };
        format!(
            "maintenance window{reason} ({}, {})",
            self.spec.schedule, self.spec.duration
        )
    }
}

/// A guard's "no": which one, why, and when to look again (None: only an
/// event such as unfreeze, a breaker reset or another action ending can
/// change it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Block {
    pub reason: BlockReason,
    pub detail: String,
    pub recheck_at: Option<Time>,
}

impl Block {
    pub fn new(reason: BlockReason, detail: impl Into<String>) -> Block {
        Block {
            reason,
            detail: detail.into(),
            recheck_at: None,
        }
    }

    pub fn until(mut self, t: Time) -> Block {
        self.recheck_at = Some(t);
        self
    }
}

/// The active maintenance window for a host, if any: (description, end).
pub fn maintenance_for(
    windows: &[MaintenanceWindow],
    facts: &Labels,
    now: Time,
) -> Option<(String, Time)> {
    windows
        .iter()
        .filter(|w| w.selects(facts))
        .filter_map(|w| w.active_until(now).map(|end| (w.describe(), end)))
        .max_by_key(|(_, end)| *end)
}

/// `max(1, floor(n / 3))`: how many hosts of a group may be acted on at once.
pub fn blast_radius_limit(group_size: usize, fraction: f64) -> usize {
    ((group_size as f64 * fraction).floor() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        s.parse().unwrap()
    }

    #[test]
    fn windows_cover_their_occurrence_and_duration() {
        let w = MaintenanceWindow::compile(&WindowSpec {
            selector: [("host".to_string(), "db-01".to_string())].into(),
            schedule: "0 2 * * *".into(),
            duration: "1h".into(),
            reason: "nightly backup".into(),
        })
        .unwrap();
        assert_eq!(
            w.active_until(t("2026-03-01T02:00:00Z")),
            Some(t("2026-03-01T03:00:00Z"))
        );
        assert_eq!(
            w.active_until(t("2026-03-01T02:59:59Z")),
            Some(t("2026-03-01T03:00:00Z"))
        );
        assert_eq!(w.active_until(t("2026-03-01T03:00:00Z")), None);
        assert_eq!(w.active_until(t("2026-03-01T01:59:59Z")), None);
        let mut facts = Labels::new();
        facts.insert("host".into(), "db-01".into());
        assert!(w.selects(&facts));
        facts.insert("host".into(), "db-02".into());
        assert!(!w.selects(&facts));
    }

    #[test]
    fn bad_windows_say_what_is_accepted() {
        let mut spec = WindowSpec {
            selector: Labels::new(),
            schedule: "0 2 * *".into(),
            duration: "1h".into(),
            reason: String::new(),
        };
        assert!(
            MaintenanceWindow::compile(&spec)
                .unwrap_err()
                .contains("expected 5")
        );
        spec.schedule = "0 25 * * *".into();
        assert!(
            MaintenanceWindow::compile(&spec)
                .unwrap_err()
                .contains("not a valid cron")
        );
        spec.schedule = "0 2 * * *".into();
        spec.duration = "forever".into();
        assert!(
            MaintenanceWindow::compile(&spec)
                .unwrap_err()
                .contains("duration")
        );
    }

    #[test]
    fn blast_radius_is_a_third_at_least_one() {
        assert_eq!(blast_radius_limit(1, 1.0 / 3.0), 1);
        assert_eq!(blast_radius_limit(3, 1.0 / 3.0), 1);
        assert_eq!(blast_radius_limit(6, 1.0 / 3.0), 2);
        assert_eq!(blast_radius_limit(10, 1.0 / 3.0), 3);
    }
}
