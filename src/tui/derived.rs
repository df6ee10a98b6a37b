//! What the panes need from a snapshot that would cost a pass over every
//! alert or action, computed once per snapshot rather than once per frame.

use std::collections::HashMap;

use crate::engine::{Action, Alert};
use crate::hub::Snapshot;
use crate::model::{ActionState, AlertStatus};

/// A 64-bit FNV-1a hash: the derived indexes key strings by it so that a
/// snapshot of ten thousand alerts costs no string copies. Every lookup
/// checks the string it finds.
fn h64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What the panes need from a snapshot that would cost a pass over every
/// alert or action: computed once per snapshot, not once per frame.
#[derive(Debug, Default)]
pub struct Derived {
    /// Firing alerts by severity (index: `Severity as usize`).
    pub firing: [usize; 4],
    /// Per host (by hash): the worst firing severity and up to 8 firing
    /// alerts (indices into `snap.alerts`).
    hosts: HashMap<u64, (crate::model::Severity, Vec<usize>)>,
    /// The action of each alert fingerprint (by hash), open ones first.
    action_of: HashMap<u64, usize>,
    /// The open action of each runbook@target (by hash).
    open_action: HashMap<u64, usize>,
    pub pending_approvals: usize,
    /// Every alert by fingerprint (by hash).
    alert_at: HashMap<u64, usize>,
}

fn pair_hash(a: &str, b: &str) -> u64 {
    h64(a) ^ h64(b).rotate_left(17)
}

impl Derived {
    pub fn of(snap: &Snapshot) -> Derived {
        let mut d = Derived {
            hosts: HashMap::with_capacity(256),
            action_of: HashMap::with_capacity(snap.actions.len()),
            alert_at: HashMap::with_capacity(snap.alerts.len()),
            open_action: HashMap::with_capacity(snap.actions.len()),
            ..Derived::default()
        };
        for (i, a) in snap.alerts.iter().enumerate() {
            d.alert_at.insert(h64(&a.fingerprint), i);
            if a.status != AlertStatus::Firing {
                continue;
            }
            d.firing[a.severity as usize] += 1;
            if let Some(h) = a.host() {
                let e = d.hosts.entry(h64(h)).or_insert((a.severity, Vec::new()));
                if a.severity > e.0 {
                    e.0 = a.severity;
                }
                if e.1.len() < 8 {
                    e.1.push(i);
                }
            }
        }
        for (i, a) in snap.actions.iter().enumerate() {
            if a.state == ActionState::AwaitingApproval {
                d.pending_approvals += 1;
            }
            let open = a.is_open();
            let k = h64(&a.fingerprint);
            match d.action_of.get(&k) {
                Some(&j) if !open || snap.actions[j].is_open() => {}
                _ => {
                    d.action_of.insert(k, i);
                }
            }
            if open {
                d.open_action
                    .entry(pair_hash(&a.runbook, &a.target))
                    .or_insert(i);
            }
        }
        d
    }

    /// The alert with this fingerprint.
    pub fn alert<'s>(&self, snap: &'s Snapshot, fp: &str) -> Option<&'s Alert> {
        self.alert_at
            .get(&h64(fp))
            .and_then(|&i| snap.alerts.get(i))
            .map(|a| &**a)
            .filter(|a| a.fingerprint == fp)
    }

    /// The worst firing severity on `host`.
    pub fn host_worst(&self, host: &str) -> Option<crate::model::Severity> {
        self.hosts.get(&h64(host)).map(|e| e.0)
    }

    /// Firing alerts on `host` (at most 8), checked against the snapshot.
    pub fn host_alerts<'s>(&self, snap: &'s Snapshot, host: &str) -> Vec<&'s Alert> {
        self.hosts
            .get(&h64(host))
            .map(|e| {
                e.1.iter()
                    .filter_map(|&i| snap.alerts.get(i).map(|a| &**a))
                    .filter(|a| a.host() == Some(host))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The action of the alert with this fingerprint.
    pub fn action_of<'s>(&self, snap: &'s Snapshot, fp: &str) -> Option<&'s Action> {
        self.action_of
            .get(&h64(fp))
            .and_then(|&i| snap.actions.get(i))
            .filter(|a| a.fingerprint == fp)
    }

    /// The open action of runbook@target.
    pub fn open_action<'s>(
        &self,
        snap: &'s Snapshot,
        runbook: &str,
        target: &str,
    ) -> Option<&'s Action> {
        self.open_action
            .get(&pair_hash(runbook, target))
            .and_then(|&i| snap.actions.get(i))
            .filter(|a| a.runbook == runbook && a.target == target)
    }
}
