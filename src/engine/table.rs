//! The alert table: alerts by fingerprint, shared copy-on-write with the
//! snapshots, and which of them changed since the hub last asked, so that
//! publishing a change re-orders only what changed instead of sorting the
//! whole table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Alert;

/// Past this many changes between two looks, the next look is told to
/// start over (and the set stops growing when nobody looks: replays,
/// tests).
const MAX_TRACKED: usize = 1024;

#[derive(Debug, Default, Clone)]
pub(crate) struct AlertTable {
    map: HashMap<String, Arc<Alert>>,
    changed: HashSet<String>,
    overflow: bool,
}

/// What changed in the table since the last look.
#[derive(Debug, PartialEq)]
pub enum AlertChanges {
    /// These fingerprints (inserted, changed or removed).
    Some(HashSet<String>),
    /// Too many to list: look at the whole table.
    All,
}

impl AlertTable {
    fn mark(&mut self, fp: &str) {
        if self.overflow {
            return;
        }
        if self.changed.len() >= MAX_TRACKED {
            self.overflow = true;
            self.changed = HashSet::new();
        } else if !self.changed.contains(fp) {
            self.changed.insert(fp.to_string());
        }
    }

    pub fn get(&self, fp: &str) -> Option<&Arc<Alert>> {
        self.map.get(fp)
    }

    /// The alert to change (counted as changed).
    pub fn get_mut(&mut self, fp: &str) -> Option<&mut Arc<Alert>> {
        if self.map.contains_key(fp) {
            self.mark(fp);
        }
        self.map.get_mut(fp)
    }

    pub fn insert(&mut self, fp: String, a: Arc<Alert>) -> Option<Arc<Alert>> {
        self.mark(&fp);
        self.map.insert(fp, a)
    }

    pub fn remove(&mut self, fp: &str) -> Option<Arc<Alert>> {
        let old = self.map.remove(fp);
        if old.is_some() {
            self.mark(fp);
        }
        old
    }

    pub fn values(&self) -> impl Iterator<Item = &Arc<Alert>> {
        self.map.values()
    }

    /// What changed since the last call.
    pub fn take_changes(&mut self) -> AlertChanges {
        if std::mem::take(&mut self.overflow) {
            self.changed = HashSet::new();
            return AlertChanges::All;
        }
        AlertChanges::Some(std::mem::take(&mut self.changed))
    }
}
