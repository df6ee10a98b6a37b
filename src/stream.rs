//! The change stream between the hub and its consoles: on
//! `GET /api/v1/stream` a client gets one JSON line with the whole
//! snapshot, then one line per published change with only what changed
//! (a [`Delta`]). The hub computes each delta once and hands the same bytes
//! to every attached console; a console that falls behind is disconnected
//! and starts over from a snapshot.
//!
//! It owns the wire format and the diff; it decides nothing and reads no
//! store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::access::Identity;
use crate::analysis::live::AnalysisView;
use crate::engine::{Action, Alert, Breaker, Modes};
use crate::hub::{HostView, PendingAlert, RunbookInfo, Snapshot, SourceHealth};
pub use crate::hub::{Presence, place_alerts};
use crate::model::{Record, Time};

/// One line of the stream.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    /// The first line: everything, and who the client is.
    Snapshot {
        version: u64,
        you: Identity,
        presence: Vec<Presence>,
        snapshot: Arc<Snapshot>,
    },
    /// A change since `version - 1`.
    Delta { version: u64, delta: Box<Delta> },
}

/// What changed between two published snapshots. Fields that did not
/// change are absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    pub at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<Modes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::view::alerts"
    )]
    pub alerts_upsert: Vec<Arc<Alert>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts_removed: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::view::actions_changed"
    )]
    pub actions: Option<Arc<Vec<Action>>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::view::breakers_changed"
    )]
    pub breakers: Option<Vec<(String, String, Breaker)>>,
    /// Records newer than the last one the client has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<Arc<Record>>,
    pub audit_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_error: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Arc<Vec<HostView>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incidents: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<SourceHealth>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Vec<PendingAlert>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbooks: Option<Arc<Vec<RunbookInfo>>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub analyses_upsert: BTreeMap<String, AnalysisView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analyses_removed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<Vec<Presence>>,
}

fn changed<T: PartialEq + Clone>(a: &T, b: &T) -> Option<T> {
    (a != b).then(|| b.clone())
}

/// What a client holding `prev` needs to hold `next`.
pub fn diff(prev: &Snapshot, next: &Snapshot) -> Delta {
    let mut d = Delta {
        at: Some(next.at),
        modes: changed(&prev.modes, &next.modes),
        operator: changed(&prev.operator, &next.operator),
        audit_seq: next.audit_seq,
        store_error: changed(&prev.store_error, &next.store_error),
        standby: changed(&prev.standby, &next.standby),
        actions: changed(&prev.actions, &next.actions),
        breakers: changed(&prev.breakers, &next.breakers),
        hosts: changed(&prev.hosts, &next.hosts),
        incidents: changed(&prev.incidents, &next.incidents),
        sources: changed(&prev.sources, &next.sources),
        pending: changed(&prev.pending, &next.pending),
        ..Delta::default()
    };
    if !Arc::ptr_eq(&prev.runbooks, &next.runbooks) && prev.runbooks != next.runbooks {
        d.runbooks = Some(next.runbooks.clone());
    }
    // Alerts are shared with the engine (copy on write): an unchanged alert
    // is the same allocation, and an unchanged table is the same list.
    // Both lists are in the hub's order: what is the same allocation at
    // the start and at the end is unchanged, and only the window between
    // needs comparing (one alert in or out leaves a small window).
    let (p, n) = (&prev.alerts, &next.alerts);
    let head = p
        .iter()
        .zip(n.iter())
        .take_while(|(a, b)| Arc::ptr_eq(a, b))
        .count();
    let tail = p[head..]
        .iter()
        .rev()
        .zip(n[head..].iter().rev())
        .take_while(|(a, b)| Arc::ptr_eq(a, b))
        .count();
    let (p, n) = (&p[head..p.len() - tail], &n[head..n.len() - tail]);
    if p.is_empty() && n.is_empty() {
        return finish(prev, next, d);
    }
    let before: HashMap<&str, &Arc<Alert>> =
        p.iter().map(|a| (a.fingerprint.as_str(), a)).collect();
    let mut seen = 0usize;
    for a in n {
        match before.get(a.fingerprint.as_str()) {
            Some(old) => {
                seen += 1;
                if !Arc::ptr_eq(old, a) && ***old != **a {
                    d.alerts_upsert.push(a.clone());
                }
            }
            None => d.alerts_upsert.push(a.clone()),
        }
    }
    if seen < p.len() {
        let now: std::collections::HashSet<&str> =
            n.iter().map(|a| a.fingerprint.as_str()).collect();
        d.alerts_removed = p
            .iter()
            .filter(|a| !now.contains(a.fingerprint.as_str()))
            .map(|a| a.fingerprint.clone())
            .collect();
    }
    finish(prev, next, d)
}

/// The parts of a delta after the alerts: new records and analyses.
fn finish(prev: &Snapshot, next: &Snapshot, mut d: Delta) -> Delta {
    let last = prev.recent.last().map_or(0, |r| r.seq);
    d.recent = next
        .recent
        .iter()
        .filter(|r| r.seq > last)
        .cloned()
        .collect();
    // Only the shards that are not shared between the two differ.
    for (was, now) in prev.analyses.changed_shards(&next.analyses) {
        for (k, v) in now {
            if was.get(k) != Some(v) {
                d.analyses_upsert.insert(k.clone(), v.clone());
            }
        }
        d.analyses_removed
            .extend(was.keys().filter(|k| !now.contains_key(*k)).cloned());
    }
    d
}

/// How many recent records a client keeps (as the hub's snapshots do).
const RECENT: usize = 500;

/// `prev` with `d` applied.
pub fn apply(prev: &Snapshot, d: Delta) -> Snapshot {
    let mut s = prev.clone();
    if let Some(at) = d.at {
        s.at = at;
    }
    if let Some(m) = d.modes {
        s.modes = m;
    }
    if let Some(o) = d.operator {
        s.operator = o;
    }
    if !d.alerts_upsert.is_empty() || !d.alerts_removed.is_empty() {
        let touched: Vec<&str> = d
            .alerts_removed
            .iter()
            .map(String::as_str)
            .chain(d.alerts_upsert.iter().map(|a| a.fingerprint.as_str()))
            .collect();
        place_alerts(&mut s.alerts, &touched, &d.alerts_upsert);
    }
    if let Some(a) = d.actions {
        s.actions = a;
    }
    if let Some(b) = d.breakers {
        s.breakers = b;
    }
    if !d.recent.is_empty() {
        let recent = Arc::make_mut(&mut s.recent);
        recent.extend(d.recent);
        let over = recent.len().saturating_sub(RECENT);
        recent.drain(..over);
    }
    s.audit_seq = d.audit_seq;
    if let Some(e) = d.store_error {
        s.store_error = e;
    }
    if let Some(a) = d.standby {
        s.standby = a;
    }
    if let Some(h) = d.hosts {
        s.hosts = h;
    }
    if let Some(i) = d.incidents {
        s.incidents = i;
    }
    if let Some(x) = d.sources {
        s.sources = x;
    }
    if let Some(p) = d.pending {
        s.pending = p;
    }
    if let Some(r) = d.runbooks {
        s.runbooks = r;
    }
    if !d.analyses_upsert.is_empty() || !d.analyses_removed.is_empty() {
        for k in &d.analyses_removed {
            s.analyses.remove(k);
        }
        s.analyses.extend(d.analyses_upsert);
    }
    if let Some(p) = d.presence {
        s.presence = p;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::fixture;

    fn json_round_trip(s: &Snapshot) -> Snapshot {
        serde_json::from_slice(&serde_json::to_vec(s).unwrap()).unwrap()
    }

    #[test]
    fn a_snapshot_survives_the_wire_and_deltas_rebuild_the_next_one() {
        let a = fixture::snapshot(&fixture::incident(20), None);
        let back = json_round_trip(&a);
        assert_eq!(back.alerts, a.alerts);
        assert_eq!(back.actions, a.actions);
        assert_eq!(back.hosts, a.hosts);
        assert_eq!(back.recent, a.recent);

        // The next snapshot: one alert gone, one changed, a record added.
        let mut b = a.clone();
        let gone = b.alerts.remove(0).fingerprint.clone();
        if let Some(x) = b.alerts.first_mut() {
            let mut changed = (**x).clone();
            changed.value = Some(99.5);
            *x = Arc::new(changed);
        }
        if let Some(r) = b.recent.last().cloned() {
            let mut r = (*r).clone();
            r.seq += 1;
            Arc::make_mut(&mut b.recent).push(Arc::new(r));
        }
        b.audit_seq += 1;
        b.modes.frozen = !b.modes.frozen;
        let d = diff(&a, &b);
        assert_eq!(d.alerts_removed, vec![gone]);
        assert_eq!(d.alerts_upsert.len(), 1);
        assert_eq!(d.recent.len(), 1);
        assert!(d.hosts.is_none(), "unchanged hosts are not sent");
        let wire: Delta = serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
        let rebuilt = apply(&back, wire);
        assert_eq!(rebuilt.alerts, b.alerts);
        assert_eq!(rebuilt.recent, b.recent);
        assert_eq!(rebuilt.modes, b.modes);
        assert_eq!(rebuilt.audit_seq, b.audit_seq);
    }

    #[test]
    fn an_unchanged_snapshot_gives_an_empty_delta() {
        let a = fixture::snapshot(&fixture::incident(20), None);
        let d = diff(&a, &a.clone());
        assert!(d.alerts_upsert.is_empty() && d.alerts_removed.is_empty());
        assert!(d.actions.is_none() && d.hosts.is_none() && d.recent.is_empty());
        let bytes = serde_json::to_vec(&d).unwrap();
        assert!(bytes.len() < 80, "{}", String::from_utf8_lossy(&bytes));
    }
}
