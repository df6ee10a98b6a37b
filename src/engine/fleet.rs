//! Which configured host an alert is about. Standard Prometheus alerts carry
//! `instance` (`10.0.0.5:9100`), not `host`: the labels named in
//! `[settings] host_labels` are tried in order, each value reduced to its
//! address part (port stripped, IPv6 brackets removed) and matched against
//! every host's `name`, its `[hosts.ssh] host` and its `addresses`.
//!
//! Pure: reads the inventory, never the network (no DNS).

use crate::model::Labels;

use super::guards::Inventory;

/// The labels tried by default, in order.
pub const DEFAULT_HOST_LABELS: [&str; 2] = ["host", "instance"];

/// Where an alert's host came from.
#[derive(Debug, Clone, PartialEq)]
pub enum HostMatch {
    /// A configured host, found through `label` (its value was `value`).
    Configured {
        host: String,
        label: String,
        value: String,
    },
    /// No configured host matched, but the alert names one in `host` and
    /// unlisted hosts have an executor (the demo fleet, the replayer) or
    /// none and say so when acted on (`no_executor`).
    Named(String),
    /// No configured host matched: why, for the operator.
    Unmatched(String),
}

impl HostMatch {
    pub fn host(&self) -> Option<&str> {
        match self {
            HostMatch::Configured { host, .. } => Some(host),
            HostMatch::Named(h) => Some(h),
            HostMatch::Unmatched(_) => None,
        }
    }
}

/// The address part of a label value: `10.0.0.5:9100` → `10.0.0.5`,
/// `[::1]:9100` → `::1`, `web-1:9100` → `web-1`; a bare IPv6 address and a
/// value without a port stay as they are. A URL's scheme and path are
/// dropped (`http://web-1:8080/metrics` → `web-1`, blackbox targets).
pub fn address_part(value: &str) -> &str {
    let v = value.trim();
    let v = v.split_once("://").map(|(_, rest)| rest).unwrap_or(v);
    let v = v.split(['/', '?', '#']).next().unwrap_or(v);
    let v = v.rsplit_once('@').map(|(_, h)| h).unwrap_or(v);
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match v.rsplit_once(':') {
        // One colon: host:port. More: a bare IPv6 address.
        Some((h, port)) if !h.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => v,
    }
}

impl Inventory {
    /// The configured host named by `value` (an address or a name): its
    /// name, its `[hosts.ssh] host` or one of its `addresses`. Names
    /// compare without regard to case; addresses exactly.
    pub fn host_by_address(&self, value: &str) -> Option<&str> {
        let a = address_part(value);
        if a.is_empty() {
            return None;
        }
        self.hosts
            .values()
            .find(|h| {
                h.name.eq_ignore_ascii_case(a)
                    || h.ssh_host
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case(a))
                    || h.addresses.iter().any(|x| x.eq_ignore_ascii_case(a))
            })
            .map(|h| h.name.as_str())
    }

    /// Which host the alert with `labels` is about, trying `order`.
    pub fn locate(&self, labels: &Labels, order: &[String]) -> HostMatch {
        let mut tried = Vec::new();
        for key in order {
            let Some(v) = labels.get(key) else {
                continue;
            };
            if let Some(h) = self.host_by_address(v) {
                return HostMatch::Configured {
                    host: h.to_string(),
                    label: key.clone(),
                    value: v.clone(),
                };
            }
            tried.push(format!("{key}={v:?}"));
        }
        if let Some(h) = labels.get("host").filter(|h| !h.trim().is_empty()) {
            return HostMatch::Named(h.clone());
        }
        let order = order.join(", ");
        HostMatch::Unmatched(if tried.is_empty() {
            format!(
                "no host: the alert has none of the labels [settings] host_labels tries ({order}); add one to the alert rule (labels: host: NAME)"
            )
        } else {
            format!(
                "no configured host matches {} (tried the labels {order} against each host's name, [hosts.ssh] host and addresses); add the address to that host's `addresses = [...]`",
                tried.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HostSpec;

    fn host(name: &str, ssh: Option<&str>, addresses: &[&str]) -> HostSpec {
        HostSpec {
            name: name.into(),
            labels: Labels::new(),
            services: vec![],
            executor: None,
            ssh_host: ssh.map(str::to_string),
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn labels(kv: &[(&str, &str)]) -> Labels {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn order() -> Vec<String> {
        DEFAULT_HOST_LABELS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn address_part_strips_ports_brackets_and_urls() {
        for (v, want) in [
            ("10.0.0.5:9100", "10.0.0.5"),
            ("10.0.0.5", "10.0.0.5"),
            ("[::1]:9100", "::1"),
            ("[fe80::1]", "fe80::1"),
            ("::1", "::1"),
            ("fe80::1:2", "fe80::1:2"),
            ("web-1:9100", "web-1"),
            ("web-1", "web-1"),
            ("http://web-1:8080/metrics", "web-1"),
            ("https://[::1]:443/x?y", "::1"),
            ("", ""),
            // Hostile or broken values: no panic, nothing invented.
            ("[::1", "::1"),
            ("]:9100", "]"),
            (":9100", ""),
            ("http://", ""),
            ("a@b@c:1", "c"),
            ("web-1:port", "web-1:port"),
        ] {
            assert_eq!(address_part(v), want, "{v}");
        }
    }

    #[test]
    fn instance_finds_the_host_by_name_ssh_host_or_addresses() {
        let inv = Inventory::new(
            vec![
                host("web-1", Some("10.0.0.5"), &[]),
                host("db-1", None, &["10.0.0.9", "::1"]),
                host("cache", None, &[]),
            ],
            None,
        );
        let at = |l: &[(&str, &str)]| inv.locate(&labels(l), &order());
        assert_eq!(at(&[("instance", "10.0.0.5:9100")]).host(), Some("web-1"));
        assert_eq!(at(&[("instance", "10.0.0.9:9100")]).host(), Some("db-1"));
        assert_eq!(at(&[("instance", "[::1]:9100")]).host(), Some("db-1"));
        assert_eq!(at(&[("instance", "CACHE:9100")]).host(), Some("cache"));
        // `host` comes first in the default order.
        assert_eq!(
            at(&[("host", "web-1"), ("instance", "10.0.0.9:9100")]).host(),
            Some("web-1")
        );
        // An address in `host` is matched too.
        assert_eq!(at(&[("host", "10.0.0.9")]).host(), Some("db-1"));
        match at(&[("instance", "10.9.9.9:9100")]) {
            HostMatch::Unmatched(why) => {
                assert!(why.contains("instance=\"10.9.9.9:9100\""), "{why}");
                assert!(why.contains("addresses"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        match at(&[("job", "node")]) {
            HostMatch::Unmatched(why) => assert!(why.contains("host, instance"), "{why}"),
            other => panic!("{other:?}"),
        }
        // An unlisted `host` keeps its name (the executor guard decides).
        assert_eq!(
            at(&[("host", "web-99"), ("instance", "10.9.9.9:9100")]),
            HostMatch::Named("web-99".into())
        );
    }

    #[test]
    fn the_order_is_configurable() {
        let inv = Inventory::new(
            vec![
                host("a", None, &["10.0.0.1"]),
                host("b", None, &["10.0.0.2"]),
            ],
            None,
        );
        let l = labels(&[("host", "a"), ("nodename", "10.0.0.2")]);
        let order = vec!["nodename".to_string(), "host".to_string()];
        assert_eq!(inv.locate(&l, &order).host(), Some("b"));
        let only_instance = vec!["instance".to_string()];
        // `host` not tried: still named, as the alert says.
        assert_eq!(inv.locate(&l, &only_instance), HostMatch::Named("a".into()));
    }

    fn engine_with(config: &str) -> crate::engine::Engine {
        let c = crate::config::Config::parse("t.toml", config).unwrap();
        crate::engine::Engine::new(c.build("t.toml", config, false, None).unwrap())
    }

    fn alert(l: &[(&str, &str)]) -> crate::engine::Event {
        crate::engine::Event::Alert(crate::model::IncomingAlert {
            labels: labels(l),
            annotations: Labels::new(),
            status: crate::model::AlertStatus::Firing,
            fingerprint: None,
            starts_at: None,
            ends_at: None,
            source: Some("am".into()),
            generator_url: None,
        })
    }

    const FLEET: &str = r#"
[[hosts]]
name = "web-1"
executor = "local"
services = ["nginx"]
addresses = ["10.0.0.5"]
[runbooks.service_restart]
approval = "auto"
"#;

    #[test]
    fn an_instance_only_alert_reaches_its_host_and_runbook() {
        use crate::engine::Command;
        use crate::model::RecordKind;
        let mut e = engine_with(FLEET);
        let now = "2026-05-01T12:00:00Z".parse().unwrap();
        let cmds = e.handle(
            alert(&[
                ("alertname", "ServiceDown"),
                ("instance", "10.0.0.5:9100"),
                ("service", "nginx"),
            ]),
            now,
        );
        let exec = cmds.iter().find_map(|c| match c {
            Command::Execute(x) => Some(x),
            _ => None,
        });
        let exec = exec.unwrap_or_else(|| panic!("no execution: {cmds:?}"));
        assert_eq!(exec.target, "web-1");
        assert_eq!(exec.runbook, "service_restart");
        let a = e.alerts().next().unwrap();
        assert_eq!(a.host(), Some("web-1"));
        // The alert's own labels are untouched (silences in Alertmanager
        // are made from them).
        assert!(!a.labels.contains_key("host"));
        let firing = cmds
            .iter()
            .find_map(|c| match c {
                Command::Record(r) if r.kind == RecordKind::AlertFiring => Some(r),
                _ => None,
            })
            .unwrap();
        assert_eq!(firing.target.as_deref(), Some("web-1"));
    }

    #[test]
    fn an_unmatched_alert_is_shown_explained_and_acted_on_nowhere() {
        use crate::engine::Command;
        use crate::model::{ActionState, BlockReason};
        let mut e = engine_with(FLEET);
        let now = "2026-05-01T12:00:00Z".parse().unwrap();
        let cmds = e.handle(
            alert(&[
                ("alertname", "ServiceDown"),
                ("instance", "10.0.0.77:9100"),
                ("service", "nginx"),
            ]),
            now,
        );
        assert!(
            !cmds.iter().any(|c| matches!(c, Command::Execute(_))),
            "{cmds:?}"
        );
        let a = e.alerts().next().unwrap();
        assert_eq!(a.host(), None);
        let note = a.host_note.clone().unwrap();
        assert!(note.contains("10.0.0.77:9100"), "{note}");
        let act = e.actions().next().unwrap();
        assert_eq!(act.state, ActionState::Blocked);
        assert_eq!(act.block, Some(BlockReason::ParamInvalid));
        assert!(
            act.detail.contains("no configured host matches"),
            "{}",
            act.detail
        );
    }
}
