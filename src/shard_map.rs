//! A map from strings (alert fingerprints) to values that is cheap to
//! clone and cheap to compare with an earlier clone of itself.
//!
//! The hub publishes a snapshot at every change and each attached console
//! keeps the previous one while it applies the next. A plain map of 10,000
//! analyses would be copied whole for every change on both sides. Here the
//! entries are spread over a fixed number of shards, each shared
//! copy-on-write: a clone copies the shard pointers, a change copies one
//! shard (about 1/64 of the entries), and two versions of one map differ
//! only in the shards whose pointers differ.
//!
//! Iteration is grouped by shard, sorted by key within each shard; no
//! caller depends on an overall order.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SHARDS: usize = 64;

#[derive(Clone)]
pub struct ShardMap<V> {
    shards: Arc<Vec<Arc<BTreeMap<String, V>>>>,
    len: usize,
}

/// The shard of `key`: FNV-1a, stable across processes (the hub and a
/// console must agree only on contents, but a stable spread keeps the
/// shards even).
fn shard_of(key: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}

impl<V> Default for ShardMap<V> {
    fn default() -> Self {
        ShardMap {
            shards: Arc::new((0..SHARDS).map(|_| Arc::new(BTreeMap::new())).collect()),
            len: 0,
        }
    }
}

impl<V: Clone> ShardMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.shards[shard_of(key)].get(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The shard of `key`, made this map's own.
    fn shard_mut(&mut self, key: &str) -> &mut BTreeMap<String, V> {
        let i = shard_of(key);
        Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[i])
    }

    /// A value to change in place; copies its shard if it is shared.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        if !self.contains_key(key) {
            return None;
        }
        self.shard_mut(key).get_mut(key)
    }

    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        let old = self.shard_mut(&key).insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        if !self.contains_key(key) {
            return None;
        }
        let old = self.shard_mut(key).remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Keeps the entries `keep` says yes to. Shards with nothing to drop
    /// stay shared.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &V) -> bool) {
        for i in 0..SHARDS {
            let drop = self.shards[i].iter().any(|(k, v)| !keep(k, v));
            if drop {
                let shard = Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[i]);
                let before = shard.len();
                shard.retain(|k, v| keep(k, v));
                self.len -= before - shard.len();
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// The entries that may differ between `self` and `other`, as pairs of
    /// shards (this map's, the other's): shards that are the same
    /// allocation are equal and left out.
    pub fn changed_shards<'a>(
        &'a self,
        other: &'a ShardMap<V>,
    ) -> impl Iterator<Item = (&'a BTreeMap<String, V>, &'a BTreeMap<String, V>)> {
        let same = Arc::ptr_eq(&self.shards, &other.shards);
        self.shards
            .iter()
            .zip(other.shards.iter())
            .filter(move |(a, b)| !same && !Arc::ptr_eq(a, b))
            .map(|(a, b)| (&**a, &**b))
    }
}

impl<V: Clone + PartialEq> PartialEq for ShardMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.changed_shards(other).all(|(a, b)| a == b)
    }
}

impl<V: std::fmt::Debug + Clone> std::fmt::Debug for ShardMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Clone> FromIterator<(String, V)> for ShardMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut m = ShardMap::new();
        m.extend(iter);
        m
    }
}

impl<V: Clone> Extend<(String, V)> for ShardMap<V> {
    fn extend<I: IntoIterator<Item = (String, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<V: Serialize + Clone> Serialize for ShardMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de, V: Deserialize<'de> + Clone> Deserialize<'de> for ShardMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<String, V>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_copies_one_shard_and_leaves_the_clone_as_it_was() {
        let a: ShardMap<u32> = (0..1000).map(|i| (format!("fp-{i}"), i)).collect();
        let mut b = a.clone();
        assert_eq!(a, b);
        assert_eq!(b.changed_shards(&a).count(), 0);

        *b.get_mut("fp-7").unwrap() = 70;
        b.insert("new".into(), 1);
        assert_eq!(a.get("fp-7"), Some(&7), "the clone is untouched");
        assert_eq!(b.get("fp-7"), Some(&70));
        assert_eq!((a.len(), b.len()), (1000, 1001));
        assert!(b.changed_shards(&a).count() <= 2);
        assert_ne!(a, b);

        assert_eq!(b.remove("new"), Some(1));
        assert_eq!(b.remove("new"), None);
        b.retain(|k, _| k != "fp-8");
        assert_eq!(b.len(), 999);
        assert!(!b.contains_key("fp-8"));
        assert_eq!(b.iter().count(), 999);
    }

    #[test]
    fn it_travels_as_a_json_object() {
        let a: ShardMap<u32> = [("x".to_string(), 1), ("y".to_string(), 2)]
            .into_iter()
            .collect();
        let text = serde_json::to_string(&a).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, serde_json::json!({"x": 1, "y": 2}));
        let back: ShardMap<u32> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a);
    }
}
