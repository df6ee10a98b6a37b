//! Forgetting: series and instances idle past their time to live are
//! evicted in bounded steps, and the tables shrink once much is free.

use super::*;

impl Evaluator {
    /// One eviction step: looks at up to `max_scan` series (and instances)
    /// from where the last step stopped, and evicts the series with no
    /// sample for the budget's `ttl` and the inactive instances no series
    /// feeds any more. A series is kept while an instance it feeds is
    /// pending or firing, or `keep` holds for it (an alert in the table
    /// refers to it). Freed ids are reused by new series. Returns how many
    /// series it evicted.
    pub fn evict_idle(
        &mut self,
        now: Time,
        max_scan: usize,
        keep: impl Fn(InstanceId) -> bool,
    ) -> usize {
        let cutoff = crate::units::sub_time(now, self.budget.ttl);
        let mut evicted = 0;
        let n = self.keys.len();
        for _ in 0..max_scan.min(n) {
            if self.sweep_series >= n {
                self.sweep_series = 0;
            }
            let id = self.sweep_series;
            self.sweep_series += 1;
            let h = self.series_hot[id];
            if h.at.is_some_and(|at| at >= cutoff) || self.keys[id].is_empty() {
                continue;
            }
            let subs = &self.subs[h.subs_start as usize..(h.subs_start + h.subs_len) as usize];
            if subs
                .iter()
                .any(|&(i, _)| self.hot[i as usize].state != InstState::Inactive || keep(i))
            {
                continue;
            }
            self.evict_series(id as SeriesId);
            evicted += 1;
        }
        let n = self.instances.len();
        for _ in 0..max_scan.min(n) {
            if self.sweep_insts >= n {
                self.sweep_insts = 0;
            }
            let i = self.sweep_insts as InstanceId;
            self.sweep_insts += 1;
            let h = self.hot[i as usize];
            if h.series == 0
                && h.state == InstState::Inactive
                && self.instances[i as usize].policy != u32::MAX
                && !keep(i)
            {
                self.evict_instance(i);
            }
        }
        if self.subs_garbage > 1024 && self.subs_garbage * 2 > self.subs.len() {
            self.compact_subs();
        }
        self.shrink_tables();
        if evicted > 0 && self.index.len() * 4 < self.index.capacity() {
            let (keys, hasher) = (&self.keys, &self.hasher);
            self.index
                .shrink_to_fit(|&x| hash_bytes(hasher, keys[x as usize].as_bytes()));
            let (instances, hasher) = (&self.instances, &self.hasher);
            self.inst_index.shrink_to_fit(|&x| {
                let x = &instances[x as usize];
                hash_inst(hasher, x.policy, x.key.iter().map(|(k, v)| (k, v.as_str())))
            });
        }
        evicted
    }

    pub(super) fn evict_series(&mut self, id: SeriesId) {
        let key = std::mem::replace(&mut self.keys[id as usize], SeriesKey::empty());
        let h = hash_bytes(&self.hasher, key.as_bytes());
        if let Ok(e) = self.index.find_entry(h, |&x| x == id) {
            e.remove();
        }
        let name = key.name();
        if let Some(c) = self.per_metric.get_mut(name) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.per_metric.remove(name);
            }
        }
        let s = std::mem::replace(&mut self.series_hot[id as usize], FREE_SERIES);
        for k in s.subs_start..s.subs_start + s.subs_len {
            let (inst, _) = self.subs[k as usize];
            let hi = &mut self.hot[inst as usize];
            hi.series = hi.series.saturating_sub(1);
        }
        self.subs_garbage += s.subs_len as usize;
        self.free_series.insert(id);
        self.live_series -= 1;
        self.evicted += 1;
    }

    pub(super) fn evict_instance(&mut self, i: InstanceId) {
        let inst = std::mem::replace(&mut self.instances[i as usize], Instance::free());
        let h = hash_inst(
            &self.hasher,
            inst.policy,
            inst.key.iter().map(|(k, v)| (k, v.as_str())),
        );
        if let Ok(e) = self.inst_index.find_entry(h, |&x| x == i) {
            e.remove();
        }
        let hot = self.hot[i as usize];
        let (start, leaves) = (hot.vals_start as usize, hot.leaves as usize);
        self.vals[start..start + leaves].fill(None);
        if self.free_vals.len() <= leaves {
            self.free_vals.resize_with(leaves + 1, Vec::new);
        }
        self.free_vals[leaves].push(hot.vals_start);
        self.hot[i as usize].series = 0;
        self.free_insts.insert(i);
    }

    /// Drops the free ids at the end of the tables, and the memory of
    /// tables that are mostly empty: after a large eviction memory falls
    /// back instead of staying at its peak.
    pub(super) fn shrink_tables(&mut self) {
        let n = free_tail(&mut self.free_series, self.keys.len());
        self.keys.truncate(n);
        self.series_hot.truncate(n);
        let n = free_tail(&mut self.free_insts, self.instances.len());
        self.instances.truncate(n);
        self.hot.truncate(n);
        if self.instances.is_empty() && !self.vals.is_empty() {
            self.vals = Vec::new();
            self.free_vals = Vec::new();
        }
        fn fit<T>(v: &mut Vec<T>) {
            if v.capacity() > 2 * v.len() + 1024 {
                v.shrink_to_fit();
            }
        }
        fit(&mut self.keys);
        fit(&mut self.series_hot);
        fit(&mut self.instances);
        fit(&mut self.hot);
        fit(&mut self.subs);
    }

    /// Drops the runs of `subs` that belong to evicted series.
    pub(super) fn compact_subs(&mut self) {
        let mut subs = Vec::with_capacity(self.subs.len() - self.subs_garbage);
        // Every series moves, those that feed nothing too (their empty run
        // must stay inside `subs`).
        for h in self.series_hot.iter_mut() {
            let start = subs.len() as u32;
            subs.extend_from_slice(
                &self.subs[h.subs_start as usize..(h.subs_start + h.subs_len) as usize],
            );
            h.subs_start = start;
        }
        self.subs = subs;
        self.subs_garbage = 0;
    }
}
