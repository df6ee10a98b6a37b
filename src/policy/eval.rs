//! The policy evaluator: keeps the latest value of every series, the state of
//! every (policy, label set) alert instance, and turns samples and the passing
//! of time into `Fired` / `Resolved` transitions.
//!
//! Series are interned once (matchers run at interning, not per sample), so a
//! sample costs a lookup and the comparisons of the policies that read it.
//! Pure: `now` is always an argument.
//!
//! What a sample touches lives apart from what it does not: the latest value
//! of a series and the state and values of an alert instance sit in compact
//! arrays (`series_hot`, `hot`, `vals`), in the order they were interned;
//! keys, labels and fingerprints stay in `keys` and `instances`.
//!
//! Memory has a budget ([`SeriesBudget`]): a series is stored once, as its
//! flat [`SeriesKey`] (the index holds only its id); a series with no sample
//! for `ttl` is evicted by [`Evaluator::evict_idle`], a little per tick, and
//! its id is reused; an instance goes with its last series once it is
//! inactive; a metric with `per_metric` series refuses new ones.
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use chrono::TimeDelta;
use hashbrown::HashTable;

use super::{Cond, Policy, STALENESS};
use crate::model::{Labels, SeriesKey, Severity, Time, fingerprint};

pub type SeriesId = u32;

type FastHash = foldhash::fast::RandomState;
pub type InstanceId = u32;

/// Series beyond this many are refused (hostile or runaway label sets).
pub const MAX_SERIES: usize = 1_000_000;
/// A series with no sample for this long is evicted (`[settings] series_ttl`).
pub const DEFAULT_SERIES_TTL: TimeDelta = TimeDelta::hours(1);
/// New series of a metric beyond this many are refused (`[settings]
/// max_series_per_metric`).
pub const DEFAULT_MAX_SERIES_PER_METRIC: usize = 100_000;
/// Series (and instances) looked at per eviction step: one step per tick
/// keeps every step to a few milliseconds.
pub const SWEEP_STEP: usize = 16_384;

/// How much the evaluator (and the analysis history) may hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesBudget {
    /// A series with no sample for this long is evicted.
    pub ttl: TimeDelta,
    /// A metric with this many series refuses new ones.
    pub per_metric: usize,
    /// All metrics together hold at most this many series.
    pub total: usize,
}

impl Default for SeriesBudget {
    fn default() -> Self {
        SeriesBudget {
            ttl: DEFAULT_SERIES_TTL,
            per_metric: DEFAULT_MAX_SERIES_PER_METRIC,
            total: MAX_SERIES,
        }
    }
}

/// What a sample of a series updates: its latest value, and the range of
/// `subs` (instance, value slot) that it feeds.
#[derive(Debug, Clone, Copy)]
struct SeriesHot {
    value: f64,
    at: Option<Time>,
    subs_start: u32,
    subs_len: u32,
}

const FREE_SERIES: SeriesHot = SeriesHot {
    value: f64::NAN,
    at: None,
    subs_start: 0,
    subs_len: 0,
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InstState {
    Inactive,
    Pending { since: Time },
    Firing { since: Time, severity: Severity },
}

/// The identifying labels of an instance (`alertname` and the policy's
/// `labels`), in name order. Label names are shared with the policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceKey(Box<[(Arc<str>, String)]>);

impl InstanceKey {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &String)> + '_ {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    pub fn get(&self, name: &str) -> Option<&String> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn to_labels(&self) -> Labels {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

/// One alert of one policy: a distinct combination of the policy's labels.
/// (Its state and latest values: [`Evaluator::state`], [`Evaluator::values`].)
#[derive(Debug, Clone)]
pub struct Instance {
    /// `u32::MAX` for a freed slot (it matches no policy).
    pub policy: u32,
    /// `alertname` plus the identifying labels.
    pub key: InstanceKey,
    /// `key` plus the other labels of the series that feed it (encoded
    /// once, decoded by [`Instance::labels`]).
    labels: SeriesKey,
    pub fingerprint: String,
}

impl Instance {
    /// `key` plus the other labels of the series that feed it.
    pub fn labels(&self) -> Labels {
        self.labels.to_labels()
    }

    fn free() -> Instance {
        Instance {
            policy: u32::MAX,
            key: InstanceKey::default(),
            labels: SeriesKey::empty(),
            fingerprint: String::new(),
        }
    }
}

/// What evaluating an instance reads and writes.
#[derive(Debug, Clone, Copy)]
struct HotInst {
    state: InstState,
    policy: u32,
    /// Its values are `vals[vals_start..vals_start + leaves]`, one per leaf
    /// of the policy.
    vals_start: u32,
    leaves: u32,
    /// How many series (subs) feed it: at 0 it may be evicted.
    series: u32,
}

/// Latest value and time of one leaf of one instance.
type Slot = Option<(f64, Time)>;

#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Fired {
        instance: InstanceId,
        severity: Severity,
    },
    Resolved {
        instance: InstanceId,
        /// True when it resolved because its data went stale.
        stale: bool,
    },
}

/// Which limit refused a new series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// `[settings] max_series_per_metric`.
    PerMetric,
    /// The hub's total ([`MAX_SERIES`]).
    Total,
}

/// A sample of a new series refused by a limit.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLimit {
    pub name: String,
    pub limit: usize,
    pub kind: LimitKind,
}

impl SeriesLimit {
    /// The `reason` label of `vigil_series_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            LimitKind::PerMetric => "max_series_per_metric",
            LimitKind::Total => "max_series",
        }
    }

    fn message(&self) -> String {
        match self.kind {
            LimitKind::PerMetric => format!(
                "metric {} already has {} series, the limit ([settings] max_series_per_metric); \
                 a sample of a new series of it was refused (a series with no sample for \
                 series_ttl is evicted and makes room)",
                self.name, self.limit
            ),
            LimitKind::Total => format!(
                "Vigil already holds {} series, its limit; a sample of a new series of {} was \
                 refused (a series with no sample for series_ttl is evicted and makes room)",
                self.limit, self.name
            ),
        }
    }
}

impl std::fmt::Display for SeriesLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for SeriesLimit {}

/// How many series the evaluator holds and has evicted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeriesFigures {
    pub live: u64,
    pub evicted: u64,
    pub instances: u64,
}

pub struct Evaluator {
    policies: Vec<Policy>,
    by_metric: HashMap<String, Vec<(u32, u32)>>,
    /// Per policy: `alertname` and its `labels`, shared by its instances'
    /// keys.
    key_names: Vec<(Arc<str>, Vec<Arc<str>>)>,
    budget: SeriesBudget,
    /// Every series by id; an empty key marks a free id.
    keys: Vec<SeriesKey>,
    series_hot: Vec<SeriesHot>,
    /// Series ids by key (hashed with `hasher`; the key itself is in
    /// `keys`). A fast hash, seeded per process (label values come from
    /// outside).
    index: HashTable<SeriesId>,
    hasher: FastHash,
    /// Free ids, the lowest reused first (so that the tables can shrink
    /// from their end).
    free_series: BTreeSet<SeriesId>,
    live_series: usize,
    /// Live series per metric name.
    per_metric: HashMap<Box<str>, u32, FastHash>,
    /// (instance, index in `vals`) per series, each series' run contiguous.
    subs: Vec<(InstanceId, u32)>,
    /// Entries of `subs` that belong to no live series (compacted when
    /// they are half of it).
    subs_garbage: usize,
    instances: Vec<Instance>,
    hot: Vec<HotInst>,
    vals: Vec<Slot>,
    /// Instance ids by (policy, key).
    inst_index: HashTable<InstanceId>,
    free_insts: BTreeSet<InstanceId>,
    /// Free runs of `vals`, by length.
    free_vals: Vec<Vec<u32>>,
    deadlines: BinaryHeap<Reverse<(Time, InstanceId)>>,
    /// Alerts that were firing when the process stopped, by fingerprint,
    /// with the episode's start and severity and the time of the restart:
    /// their instance starts out firing when its first series is interned.
    restored: HashMap<String, (Time, Severity, Time)>,
    /// Where the next eviction step starts (series, then instances).
    sweep_series: usize,
    sweep_insts: usize,
    evicted: u64,
    /// A key being looked up (reused: no allocation for a known series).
    scratch: Vec<u8>,
}

/// Puts an entry of two parallel tables at the lowest free id, or at their
/// end; returns its id.
fn place<A, B>(free: &mut BTreeSet<u32>, a: &mut Vec<A>, b: &mut Vec<B>, x: A, y: B) -> u32 {
    match free.pop_first() {
        Some(i) => {
            a[i as usize] = x;
            b[i as usize] = y;
            i
        }
        None => {
            a.push(x);
            b.push(y);
            (a.len() - 1) as u32
        }
    }
}

/// Forgets the free ids at the end of a table of `len` entries; returns
/// the length it can be cut to.
pub(crate) fn free_tail(free: &mut BTreeSet<u32>, mut len: usize) -> usize {
    while free.last().is_some_and(|&last| last as usize + 1 == len) {
        free.pop_last();
        len -= 1;
    }
    len
}

fn hash_bytes(h: &FastHash, b: &[u8]) -> u64 {
    let mut s = h.build_hasher();
    s.write(b);
    s.finish()
}

fn hash_inst<'a>(h: &FastHash, policy: u32, key: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut s = h.build_hasher();
    s.write_u32(policy);
    for (k, v) in key {
        s.write(k.as_bytes());
        s.write_u8(0xff);
        s.write(v.as_bytes());
        s.write_u8(0xfe);
    }
    s.finish()
}

fn same_key<'a>(a: &InstanceKey, mut b: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    a.iter().all(|(k, v)| b.next() == Some((k, v.as_str()))) && b.next().is_none()
}

fn fresh(at: Time, now: Time) -> bool {
    now - at <= STALENESS
}

/// Does `c` hold on `values` (ignoring staleness when `now` is `None`)? A
/// single comparison, the usual case, is decided here without a call.
#[inline(always)]
fn eval(c: &Cond, values: &[Slot], now: Option<Time>) -> bool {
    match c {
        Cond::Cmp { leaf, op, value } => match values.get(*leaf).copied().flatten() {
            // The comparison first: it is cheaper than the staleness check
            // and false for almost every healthy sample.
            Some((v, at)) => op.holds(v, *value) && now.is_none_or(|n| fresh(at, n)),
            None => false,
        },
        _ => eval_composite(c, values, now),
    }
}

#[inline(never)]
fn eval_composite(c: &Cond, values: &[Slot], now: Option<Time>) -> bool {
    match c {
        Cond::Cmp { .. } => eval(c, values, now),
        Cond::All(cs) => cs.iter().all(|c| eval(c, values, now)),
        Cond::Any(cs) => cs.iter().any(|c| eval(c, values, now)),
        Cond::Not(c) => !eval(c, values, now),
    }
}

impl Evaluator {
    pub fn new(policies: Vec<Policy>) -> Evaluator {
        let mut by_metric: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        for (pi, p) in policies.iter().enumerate() {
            for (li, l) in p.leaves.iter().enumerate() {
                by_metric
                    .entry(l.metric.clone())
                    .or_default()
                    .push((pi as u32, li as u32));
            }
        }
        let alertname: Arc<str> = Arc::from("alertname");
        let key_names = policies
            .iter()
            .map(|p| {
                let names = p
                    .group_by
                    .iter()
                    .flatten()
                    .map(|k| Arc::from(k.as_str()))
                    .collect();
                (alertname.clone(), names)
            })
            .collect();
        Evaluator {
            policies,
            by_metric,
            key_names,
            budget: SeriesBudget::default(),
            keys: Vec::new(),
            series_hot: Vec::new(),
            index: HashTable::new(),
            hasher: FastHash::default(),
            free_series: BTreeSet::new(),
            live_series: 0,
            per_metric: HashMap::default(),
            subs: Vec::new(),
            subs_garbage: 0,
            instances: Vec::new(),
            hot: Vec::new(),
            vals: Vec::new(),
            inst_index: HashTable::new(),
            free_insts: BTreeSet::new(),
            free_vals: Vec::new(),
            deadlines: BinaryHeap::new(),
            restored: HashMap::new(),
            sweep_series: 0,
            sweep_insts: 0,
            evicted: 0,
            scratch: Vec::new(),
        }
    }

    /// Sets how much the evaluator may hold (series already held stay).
    pub fn set_budget(&mut self, budget: SeriesBudget) {
        self.budget = budget;
    }

    pub fn budget(&self) -> SeriesBudget {
        self.budget
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn policy(&self, i: u32) -> &Policy {
        &self.policies[i as usize]
    }

    pub fn instance(&self, id: InstanceId) -> &Instance {
        &self.instances[id as usize]
    }

    /// Every instance slot by id; a freed slot has policy `u32::MAX`, an
    /// empty key and an empty fingerprint.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// The state of an instance.
    pub fn state(&self, id: InstanceId) -> InstState {
        self.hot[id as usize].state
    }

    /// Latest value and time per leaf of the instance's policy.
    pub fn values(&self, id: InstanceId) -> &[Slot] {
        let h = &self.hot[id as usize];
        &self.vals[h.vals_start as usize..(h.vals_start + h.leaves) as usize]
    }

    /// The series held now.
    pub fn series(&self) -> impl Iterator<Item = &SeriesKey> + '_ {
        self.keys.iter().filter(|k| !k.is_empty())
    }

    pub fn series_count(&self) -> usize {
        self.live_series
    }

    /// Series held and evicted, and instances held.
    pub fn figures(&self) -> SeriesFigures {
        SeriesFigures {
            live: self.live_series as u64,
            evicted: self.evicted,
            instances: (self.instances.len() - self.free_insts.len()) as u64,
        }
    }

    /// The id of a series, interning it (and wiring it to the policies whose
    /// matchers select it) the first time it is seen.
    pub fn intern(&mut self, name: &str, labels: &Labels) -> Result<SeriesId, SeriesLimit> {
        let mut buf = std::mem::take(&mut self.scratch);
        SeriesKey::encode_into(&mut buf, name, labels);
        let found = self.find_series(&buf);
        let r = match found {
            Some(id) => Ok(id),
            None => self.add_series(SeriesKey::from_encoded(&buf), labels),
        };
        self.scratch = buf;
        r
    }

    fn find_series(&self, key: &[u8]) -> Option<SeriesId> {
        let h = hash_bytes(&self.hasher, key);
        self.index
            .find(h, |&id| self.keys[id as usize].as_bytes() == key)
            .copied()
    }

    /// Interns a series that is not held yet.
    fn add_series(&mut self, key: SeriesKey, labels: &Labels) -> Result<SeriesId, SeriesLimit> {
        let name = key.name();
        let of_metric = self.per_metric.get(name).copied().unwrap_or(0) as usize;
        if of_metric >= self.budget.per_metric {
            return Err(SeriesLimit {
                name: name.into(),
                limit: self.budget.per_metric,
                kind: LimitKind::PerMetric,
            });
        }
        if self.live_series >= self.budget.total {
            return Err(SeriesLimit {
                name: name.into(),
                limit: self.budget.total,
                kind: LimitKind::Total,
            });
        }
        let subs_start = self.subs.len() as u32;
        if let Some(readers) = self.by_metric.get(name) {
            for &(pi, li) in readers.clone().iter() {
                let p = &self.policies[pi as usize];
                if !super::matcher::matches_all(&p.leaves[li as usize].matchers, labels) {
                    continue;
                }
                let inst = self.instance_for(pi, labels);
                let slot = self.hot[inst as usize].vals_start + li;
                self.hot[inst as usize].series += 1;
                self.subs.push((inst, slot));
            }
        }
        let hot = SeriesHot {
            value: f64::NAN,
            at: None,
            subs_start,
            subs_len: self.subs.len() as u32 - subs_start,
        };
        *self.per_metric.entry(name.into()).or_default() += 1;
        let h = hash_bytes(&self.hasher, key.as_bytes());
        let id = place(
            &mut self.free_series,
            &mut self.keys,
            &mut self.series_hot,
            key,
            hot,
        );
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.index
            .insert_unique(h, id, |&x| hash_bytes(hasher, keys[x as usize].as_bytes()));
        self.live_series += 1;
        Ok(id)
    }

    /// The instance of policy `pi` that a series with `labels` feeds,
    /// created when it is new (its labels then grow by the series' other
    /// labels).
    fn instance_for(&mut self, pi: u32, labels: &Labels) -> InstanceId {
        let p = &self.policies[pi as usize];
        let mut key: BTreeMap<&str, &str> = match &p.group_by {
            Some(g) => g
                .iter()
                .filter_map(|k| labels.get_key_value(k))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            None => labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        };
        key.insert("alertname", p.name.as_str());
        let h = hash_inst(&self.hasher, pi, key.iter().map(|(k, v)| (*k, *v)));
        let found = self
            .inst_index
            .find(h, |&i| {
                let x = &self.instances[i as usize];
                x.policy == pi && same_key(&x.key, key.iter().map(|(k, v)| (*k, *v)))
            })
            .copied();
        if let Some(i) = found {
            let inst = &mut self.instances[i as usize];
            if labels.keys().any(|k| inst.labels.label(k).is_none()) {
                let mut all = inst.labels.to_labels();
                for (k, v) in labels {
                    all.entry(k.clone()).or_insert_with(|| v.clone());
                }
                inst.labels = SeriesKey::of("", &all);
            }
            return i;
        }
        let (alertname, names) = &self.key_names[pi as usize];
        let owned: Box<[(Arc<str>, String)]> = key
            .iter()
            .map(|(k, v)| {
                let name = if *k == "alertname" {
                    alertname.clone()
                } else {
                    names
                        .iter()
                        .find(|n| &***n == *k)
                        .cloned()
                        .unwrap_or_else(|| Arc::from(*k))
                };
                (name, v.to_string())
            })
            .collect();
        let key = InstanceKey(owned);
        let mut all = key.to_labels();
        for (k, v) in labels {
            all.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let fp = fingerprint(&key.to_labels());
        let nleaves = p.leaves.len();
        // An alert firing before a restart goes on firing (the same
        // episode): its data decides when it resolves, or its staleness 5
        // minutes after the restart when no sample comes.
        let restored = self.restored.remove(&fp);
        let vals_start = match self.free_vals.get_mut(nleaves).and_then(Vec::pop) {
            Some(v) => v,
            None => {
                let v = self.vals.len() as u32;
                self.vals.extend(std::iter::repeat_n(None, nleaves));
                v
            }
        };
        let inst = Instance {
            policy: pi,
            key,
            labels: SeriesKey::of("", &all),
            fingerprint: fp,
        };
        let hot = HotInst {
            state: InstState::Inactive,
            policy: pi,
            vals_start,
            leaves: nleaves as u32,
            series: 0,
        };
        let i = place(
            &mut self.free_insts,
            &mut self.instances,
            &mut self.hot,
            inst,
            hot,
        );
        if let Some((since, severity, at)) = restored {
            self.deadlines
                .push(Reverse((at + STALENESS + TimeDelta::seconds(1), i)));
            self.hot[i as usize].state = InstState::Firing { since, severity };
        }
        let (instances, hasher) = (&self.instances, &self.hasher);
        self.inst_index.insert_unique(h, i, |&x| {
            let x = &instances[x as usize];
            hash_inst(hasher, x.policy, x.key.iter().map(|(k, v)| (k, v.as_str())))
        });
        i
    }

    /// Records a sample of an interned series and evaluates the alerts it feeds.
    #[inline]
    pub fn observe(&mut self, id: SeriesId, value: f64, now: Time, out: &mut Vec<Transition>) {
        let s = &mut self.series_hot[id as usize];
        s.value = value;
        s.at = Some(now);
        let (start, len) = (s.subs_start as usize, s.subs_len as usize);
        for k in start..start + len {
            let (inst, slot) = self.subs[k];
            self.vals[slot as usize] = Some((value, now));
            self.evaluate(inst, now, out);
        }
    }

    /// Observes a sample given by series key; a key seen for the first time
    /// is interned by its name and labels.
    pub fn observe_key(
        &mut self,
        key: &SeriesKey,
        value: f64,
        now: Time,
        out: &mut Vec<Transition>,
    ) -> Result<SeriesId, SeriesLimit> {
        let id = match self.find_series(key.as_bytes()) {
            Some(id) => id,
            None => self.add_series(key.clone(), &key.to_labels())?,
        };
        self.observe(id, value, now, out);
        Ok(id)
    }

    /// Interns and observes in one call.
    pub fn observe_sample(
        &mut self,
        name: &str,
        labels: &Labels,
        value: f64,
        now: Time,
        out: &mut Vec<Transition>,
    ) -> Result<SeriesId, SeriesLimit> {
        let id = self.intern(name, labels)?;
        self.observe(id, value, now, out);
        Ok(id)
    }

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

    fn evict_series(&mut self, id: SeriesId) {
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

    fn evict_instance(&mut self, i: InstanceId) {
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
    fn shrink_tables(&mut self) {
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
    fn compact_subs(&mut self) {
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

    fn severity_of(&self, id: InstanceId, now: Time) -> Severity {
        let p = &self.policies[self.hot[id as usize].policy as usize];
        let values = self.values(id);
        p.severities
            .iter()
            .filter(|(c, _)| eval(c, values, Some(now)))
            .map(|(_, s)| *s)
            .fold(p.severity, Severity::max)
    }

    #[inline]
    fn evaluate(&mut self, id: InstanceId, now: Time, out: &mut Vec<Transition>) {
        let h = self.hot[id as usize];
        let p = &self.policies[h.policy as usize];
        let values = &self.vals[h.vals_start as usize..(h.vals_start + h.leaves) as usize];
        match h.state {
            InstState::Inactive => {
                if eval(&p.fire, values, Some(now)) {
                    if p.hold <= TimeDelta::zero() {
                        self.fire(id, now, out);
                    } else {
                        let due = crate::units::add_time(now, p.hold);
                        self.hot[id as usize].state = InstState::Pending { since: now };
                        self.deadlines.push(Reverse((due, id)));
                    }
                }
            }
            InstState::Pending { since } => {
                if !eval(&p.fire, values, Some(now)) {
                    self.hot[id as usize].state = InstState::Inactive;
                } else if now - since >= p.hold {
                    self.fire(id, now, out);
                }
            }
            InstState::Firing { since, severity } => {
                let all_stale = values
                    .iter()
                    .all(|v| v.is_none_or(|(_, at)| !fresh(at, now)));
                if all_stale {
                    self.hot[id as usize].state = InstState::Inactive;
                    out.push(Transition::Resolved {
                        instance: id,
                        stale: true,
                    });
                } else if eval(&p.resolve, values, Some(now)) {
                    self.hot[id as usize].state = InstState::Inactive;
                    out.push(Transition::Resolved {
                        instance: id,
                        stale: false,
                    });
                } else {
                    let sev = self.severity_of(id, now);
                    if sev != severity {
                        self.hot[id as usize].state = InstState::Firing {
                            since,
                            severity: sev,
                        };
                    }
                }
            }
        }
    }

    fn fire(&mut self, id: InstanceId, now: Time, out: &mut Vec<Transition>) {
        let severity = self.severity_of(id, now);
        self.hot[id as usize].state = InstState::Firing {
            since: now,
            severity,
        };
        let last = self
            .values(id)
            .iter()
            .flatten()
            .map(|(_, at)| *at)
            .max()
            .unwrap_or(now);
        self.deadlines.push(Reverse((
            crate::units::add_time(last, STALENESS + TimeDelta::seconds(1)),
            id,
        )));
        out.push(Transition::Fired {
            instance: id,
            severity,
        });
    }

    /// Remembers that the alert `fingerprint` of a policy was firing since
    /// `since` when the process stopped (restored at `now`): its instance
    /// starts out firing instead of pending.
    pub fn restore_firing(
        &mut self,
        fingerprint: &str,
        since: Time,
        severity: Severity,
        now: Time,
    ) {
        self.restored
            .insert(fingerprint.to_string(), (since, severity, now));
    }

    /// Is `fingerprint` a restored alert whose series has not come back yet?
    pub fn awaits_restored(&self, fingerprint: &str) -> bool {
        self.restored.contains_key(fingerprint)
    }

    /// Forgets a restored alert whose series never came back.
    pub fn forget_restored(&mut self, fingerprint: &str) {
        self.restored.remove(fingerprint);
    }

    /// The earliest time at which `tick` has something to do.
    pub fn next_deadline(&self) -> Option<Time> {
        self.deadlines.peek().map(|Reverse((t, _))| *t)
    }

    /// Lets time pass: pending alerts whose `for` has elapsed fire, firing
    /// alerts whose data went stale resolve.
    pub fn tick(&mut self, now: Time, out: &mut Vec<Transition>) {
        while let Some(Reverse((due, id))) = self.deadlines.peek().copied() {
            if due > now {
                break;
            }
            self.deadlines.pop();
            // A deadline of an instance evicted since (its id is past the
            // end, or reused: the state decides).
            let Some(h) = self.hot.get(id as usize) else {
                continue;
            };
            match h.state {
                InstState::Pending { since } => {
                    let hold = self.policies[self.hot[id as usize].policy as usize].hold;
                    if crate::units::add_time(since, hold) <= now {
                        self.evaluate(id, now, out);
                    }
                }
                InstState::Firing { .. } => {
                    let last = self.last_update(id);
                    match last {
                        Some(l) if fresh(l, now) => {
                            self.deadlines.push(Reverse((
                                crate::units::add_time(l, STALENESS + TimeDelta::seconds(1)),
                                id,
                            )));
                        }
                        _ => self.evaluate(id, now, out),
                    }
                }
                InstState::Inactive => {}
            }
        }
    }

    /// Does the instance's firing condition hold on its latest values,
    /// however old? (Verification: "does the condition still hold?")
    pub fn fire_holds_latest(&self, id: InstanceId) -> bool {
        eval(
            &self.policies[self.hot[id as usize].policy as usize].fire,
            self.values(id),
            None,
        )
    }

    /// Does the instance still hold at `now` on its latest values: firing,
    /// not every value stale, and its resolve condition not met? (Checked
    /// right before an action starts.)
    pub fn holds_at(&self, id: InstanceId, now: Time) -> bool {
        let values = self.values(id);
        self.is_firing(id)
            && values.iter().flatten().any(|(_, at)| fresh(*at, now))
            && !eval(
                &self.policies[self.hot[id as usize].policy as usize].resolve,
                values,
                Some(now),
            )
    }

    /// Is the instance firing right now?
    pub fn is_firing(&self, id: InstanceId) -> bool {
        matches!(self.hot[id as usize].state, InstState::Firing { .. })
    }

    /// The latest sample time among the instance's values.
    pub fn last_update(&self, id: InstanceId) -> Option<Time> {
        self.values(id).iter().flatten().map(|(_, at)| *at).max()
    }

    /// Looks up an instance by its fingerprint.
    pub fn find_instance(&self, fp: &str) -> Option<InstanceId> {
        if fp.is_empty() {
            return None;
        }
        self.instances
            .iter()
            .position(|i| i.fingerprint == fp)
            .map(|i| i as InstanceId)
    }

    /// Evaluates a policy's conditions against samples without touching any
    /// state (dry evaluation for `POST /api/v1/policies/evaluate`).
    pub fn evaluate_once(
        policy: &Policy,
        samples: &[(String, Labels, f64)],
        now: Time,
    ) -> Vec<(Labels, bool)> {
        let mut ev = Evaluator::new(vec![policy.clone()]);
        for (n, l, v) in samples {
            let mut sink = Vec::new();
            let _ = ev.observe_sample(n, l, *v, now, &mut sink);
        }
        ev.instances
            .iter()
            .enumerate()
            .map(|(id, i)| {
                let values = ev.values(id as InstanceId);
                (i.labels(), eval(&policy.fire, values, Some(now)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, default_specs};

    fn t(secs: i64) -> Time {
        "2026-01-01T00:00:00Z".parse::<Time>().unwrap() + TimeDelta::seconds(secs)
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn defaults() -> Evaluator {
        Evaluator::new(
            default_specs()
                .iter()
                .map(|s| Policy::compile(s).unwrap())
                .collect(),
        )
    }

    #[test]
    fn for_duration_then_fire_on_tick_without_new_samples() {
        let mut ev = defaults();
        let l = labels(&[("host", "h1"), ("mountpoint", "/")]);
        let mut out = Vec::new();
        ev.observe_sample("disk_used_percent", &l, 90.0, t(0), &mut out)
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(ev.next_deadline(), Some(t(60)));
        ev.tick(t(59), &mut out);
        assert!(out.is_empty());
        ev.tick(t(60), &mut out);
        assert!(matches!(
            out[0],
            Transition::Fired {
                severity: Severity::Warning,
                ..
            }
        ));
        let inst = ev.instance(0);
        assert_eq!(inst.labels().get("alertname").unwrap(), "DiskSpaceLow");
    }

    #[test]
    fn pending_resets_when_condition_stops_holding() {
        let mut ev = defaults();
        let l = labels(&[("host", "h1"), ("mountpoint", "/")]);
        let mut out = Vec::new();
        ev.observe_sample("disk_used_percent", &l, 90.0, t(0), &mut out)
            .unwrap();
        ev.observe_sample("disk_used_percent", &l, 70.0, t(30), &mut out)
            .unwrap();
        ev.tick(t(60), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn hysteresis_keeps_firing_between_thresholds() {
        let mut ev = defaults();
        let l = labels(&[("host", "h1"), ("mountpoint", "/")]);
        let mut out = Vec::new();
        ev.observe_sample("disk_used_percent", &l, 97.0, t(0), &mut out)
            .unwrap();
        ev.tick(t(60), &mut out);
        assert_eq!(
            out,
            vec![Transition::Fired {
                instance: 0,
                severity: Severity::Critical
            }]
        );
        out.clear();
        ev.observe_sample("disk_used_percent", &l, 82.0, t(70), &mut out)
            .unwrap();
        assert!(out.is_empty(), "82 is inside the hysteresis band");
        ev.observe_sample("disk_used_percent", &l, 79.0, t(80), &mut out)
            .unwrap();
        assert_eq!(
            out,
            vec![Transition::Resolved {
                instance: 0,
                stale: false
            }]
        );
    }

    #[test]
    fn stale_data_resolves_after_five_minutes() {
        let mut ev = defaults();
        let l = labels(&[("host", "h1"), ("service", "api")]);
        let mut out = Vec::new();
        ev.observe_sample("service_up", &l, 0.0, t(0), &mut out)
            .unwrap();
        ev.tick(t(30), &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        ev.tick(t(300), &mut out);
        assert!(out.is_empty(), "still current at exactly 5m");
        let due = ev.next_deadline().unwrap();
        ev.tick(due, &mut out);
        assert_eq!(
            out,
            vec![Transition::Resolved {
                instance: 0,
                stale: true
            }]
        );
    }

    #[test]
    fn matchers_select_series_and_all_combines_metrics() {
        let spec: crate::policy::PolicySpec = toml::from_str(
            r#"
name = "HotAndBusy"
when = { all = ['cpu{role="web"} > 90', "load > 4"] }
labels = ["host"]
"#,
        )
        .unwrap();
        let mut ev = Evaluator::new(vec![Policy::compile(&spec).unwrap()]);
        let web = labels(&[("host", "w1"), ("role", "web")]);
        let db = labels(&[("host", "d1"), ("role", "db")]);
        let mut out = Vec::new();
        ev.observe_sample("cpu", &db, 99.0, t(0), &mut out).unwrap();
        ev.observe_sample("load", &db, 9.0, t(0), &mut out).unwrap();
        assert!(out.is_empty(), "role=db is not selected");
        ev.observe_sample("cpu", &web, 95.0, t(0), &mut out)
            .unwrap();
        assert!(out.is_empty(), "load not yet known for w1");
        ev.observe_sample("load", &labels(&[("host", "w1")]), 5.0, t(1), &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn fingerprints_are_per_label_set() {
        let mut ev = defaults();
        let mut out = Vec::new();
        for m in ["/", "/var"] {
            let l = labels(&[("host", "h1"), ("mountpoint", m), ("device", "sda")]);
            ev.observe_sample("disk_used_percent", &l, 99.0, t(0), &mut out)
                .unwrap();
        }
        assert_eq!(ev.instances().len(), 2);
        assert_ne!(ev.instance(0).fingerprint, ev.instance(1).fingerprint);
        assert_eq!(ev.instance(0).labels().get("device").unwrap(), "sda");
        assert!(!ev.instance(0).key.contains_key("device"));
    }
    fn budget(ttl_secs: i64, per_metric: usize, total: usize) -> SeriesBudget {
        SeriesBudget {
            ttl: TimeDelta::seconds(ttl_secs),
            per_metric,
            total,
        }
    }

    fn disk(host: &str) -> Labels {
        labels(&[("host", host), ("mountpoint", "/")])
    }

    #[test]
    fn idle_series_are_evicted_and_their_ids_reused() {
        let mut ev = defaults();
        ev.set_budget(budget(3600, 100, 100));
        let mut out = Vec::new();
        for h in ["h1", "h2", "h3"] {
            ev.observe_sample("disk_used_percent", &disk(h), 50.0, t(0), &mut out)
                .unwrap();
        }
        ev.observe_sample("disk_used_percent", &disk("h4"), 50.0, t(3000), &mut out)
            .unwrap();
        assert_eq!(ev.series_count(), 4);
        let sizes = (ev.keys.len(), ev.instances.len(), ev.vals.len());
        assert_eq!(
            ev.evict_idle(t(3600), 1000, |_| false),
            0,
            "not idle for 1h yet"
        );
        assert_eq!(ev.evict_idle(t(3601), 1000, |_| false), 3);
        assert_eq!(ev.series_count(), 1);
        assert_eq!(
            ev.figures(),
            SeriesFigures {
                live: 1,
                evicted: 3,
                instances: 1
            }
        );
        let left: Vec<String> = ev.series().map(|k| k.to_labels()["host"].clone()).collect();
        assert_eq!(left, ["h4"]);
        // New series take the freed ids: the tables do not grow.
        for h in ["h5", "h6", "h7"] {
            let id = ev
                .observe_sample("disk_used_percent", &disk(h), 50.0, t(3700), &mut out)
                .unwrap();
            assert!(id < 3, "{h} got id {id}");
        }
        assert_eq!((ev.keys.len(), ev.instances.len(), ev.vals.len()), sizes);
        assert!(out.is_empty());
    }

    #[test]
    fn a_firing_alert_keeps_its_series_until_it_resolves() {
        let mut ev = defaults();
        ev.set_budget(budget(60, 100, 100));
        let l = labels(&[("host", "h1"), ("service", "api")]);
        let mut out = Vec::new();
        ev.observe_sample("service_up", &l, 0.0, t(0), &mut out)
            .unwrap();
        ev.tick(t(30), &mut out);
        assert!(matches!(out[..], [Transition::Fired { .. }]));
        out.clear();
        // Idle for more than the ttl, still firing (staleness resolves it
        // only after 5 minutes): kept.
        assert_eq!(ev.evict_idle(t(200), 1000, |_| false), 0);
        assert!(ev.is_firing(0));
        ev.tick(t(301), &mut out);
        assert_eq!(
            out,
            vec![Transition::Resolved {
                instance: 0,
                stale: true
            }]
        );
        // Resolved, but an alert of the table still refers to it: kept.
        assert_eq!(ev.evict_idle(t(400), 1000, |i| i == 0), 0);
        assert!(!ev.instances()[0].fingerprint.is_empty());
        assert_eq!(ev.evict_idle(t(400), 1000, |_| false), 1);
        assert_eq!(ev.figures().instances, 0);
        assert_eq!(ev.find_instance(""), None);
    }

    #[test]
    fn a_pending_alert_keeps_its_series() {
        let mut ev = defaults();
        ev.set_budget(budget(60, 100, 100));
        let mut out = Vec::new();
        // MemoryPressure holds for 2m: pending past the 1m ttl.
        let l = labels(&[("host", "h1"), ("service", "db")]);
        ev.observe_sample("memory_used_percent", &l, 95.0, t(0), &mut out)
            .unwrap();
        assert_eq!(ev.evict_idle(t(90), 1000, |_| false), 0);
        assert!(matches!(ev.state(0), InstState::Pending { .. }));
        ev.tick(t(120), &mut out);
        assert!(matches!(out[..], [Transition::Fired { .. }]));
    }

    #[test]
    fn an_evicted_series_comes_back_as_a_new_series_and_evaluates_afresh() {
        let mut ev = defaults();
        ev.set_budget(budget(60, 100, 100));
        let mut out = Vec::new();
        let l = disk("h1");
        ev.observe_sample("disk_used_percent", &l, 90.0, t(0), &mut out)
            .unwrap();
        // Pending, then back to normal: inactive.
        ev.observe_sample("disk_used_percent", &l, 50.0, t(10), &mut out)
            .unwrap();
        let fp = ev.instance(0).fingerprint.clone();
        assert_eq!(ev.evict_idle(t(100), 1000, |_| false), 1);
        assert_eq!(ev.figures().instances, 0);
        // Another series takes the freed ids first.
        ev.observe_sample("disk_used_percent", &disk("h2"), 50.0, t(200), &mut out)
            .unwrap();
        assert_eq!(ev.instance(0).key.get("host").unwrap(), "h2");
        // h1 is back: a new series and instance, no memory of the old
        // pending state; it fires after its own minute.
        let id = ev
            .observe_sample("disk_used_percent", &l, 97.0, t(300), &mut out)
            .unwrap();
        assert_eq!(id, 1);
        assert!(out.is_empty());
        ev.tick(t(359), &mut out);
        assert!(out.is_empty(), "for 1m starts at the new sample");
        ev.tick(t(360), &mut out);
        assert_eq!(
            out,
            vec![Transition::Fired {
                instance: 1,
                severity: Severity::Critical
            }]
        );
        assert_eq!(ev.instance(1).fingerprint, fp, "the same alert");
        assert_eq!(ev.instance(1).labels().get("mountpoint").unwrap(), "/");
        // The old deadline of instance 0 (h1's pending) hits h2: nothing.
        out.clear();
        ev.tick(t(10_000), &mut out);
        assert!(
            !out.iter()
                .any(|t| matches!(t, Transition::Fired { instance: 0, .. })),
            "{out:?}"
        );
    }

    #[test]
    fn subs_are_compacted_when_half_of_them_are_garbage() {
        let mut ev = defaults();
        ev.set_budget(budget(60, 10_000, 10_000));
        let mut out = Vec::new();
        for i in 0..3000 {
            let at = if i % 3 == 0 { t(100) } else { t(0) };
            ev.observe_sample(
                "disk_used_percent",
                &disk(&format!("h{i}")),
                50.0,
                at,
                &mut out,
            )
            .unwrap();
        }
        // An idle series no policy reads, interned last: its (empty) run
        // starts at the end of `subs`, and it is swept after a compaction.
        ev.observe_sample("unread", &disk("h1"), 1.0, t(0), &mut out)
            .unwrap();
        assert_eq!(ev.subs.len(), 3000);
        // In small steps, as the hub does it.
        let mut evicted = 0;
        for _ in 0..10 {
            evicted += ev.evict_idle(t(90), 500, |_| false);
        }
        assert_eq!(evicted, 2001);
        assert!(ev.subs.len() < 3000, "compacted");
        assert_eq!(ev.subs.len() - ev.subs_garbage, 1000);
        assert_eq!(ev.series_count(), 1000);
        // The survivors still feed their own instances.
        let id = ev
            .observe_sample("disk_used_percent", &disk("h2997"), 99.0, t(120), &mut out)
            .unwrap();
        ev.tick(t(180), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        let Transition::Fired { instance, .. } = out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(ev.instance(instance).key.get("host").unwrap(), "h2997");
        assert!(ev.keys[id as usize].label("host") == Some("h2997"));
    }

    #[test]
    fn a_metric_at_its_limit_refuses_new_series_and_keeps_old_ones() {
        let mut ev = defaults();
        ev.set_budget(budget(60, 2, 3));
        let mut out = Vec::new();
        for h in ["h1", "h2"] {
            ev.observe_sample("disk_used_percent", &disk(h), 50.0, t(0), &mut out)
                .unwrap();
        }
        let e = ev
            .observe_sample("disk_used_percent", &disk("h3"), 50.0, t(0), &mut out)
            .unwrap_err();
        assert_eq!(e.kind, LimitKind::PerMetric);
        assert_eq!(e.reason(), "max_series_per_metric");
        let msg = e.to_string();
        assert!(
            msg.contains("metric disk_used_percent already has 2 series"),
            "{msg}"
        );
        assert!(msg.contains("max_series_per_metric"), "{msg}");
        // Known series go on; other metrics have their own count.
        ev.observe_sample("disk_used_percent", &disk("h1"), 60.0, t(30), &mut out)
            .unwrap();
        ev.observe_sample("service_up", &disk("h1"), 1.0, t(30), &mut out)
            .unwrap();
        // The total limit.
        let e = ev
            .observe_sample("zombie_processes", &disk("h1"), 1.0, t(30), &mut out)
            .unwrap_err();
        assert_eq!(e.kind, LimitKind::Total);
        assert!(e.to_string().contains("already holds 3 series"), "{e}");
        // An evicted series makes room.
        assert_eq!(ev.evict_idle(t(61), 100, |_| false), 1);
        ev.observe_sample("disk_used_percent", &disk("h3"), 50.0, t(61), &mut out)
            .unwrap();
        assert_eq!(ev.series_count(), 3);
    }
    /// What must hold between every table of the evaluator, whatever
    /// happened before.
    fn check_invariants(ev: &Evaluator) {
        let live: Vec<usize> = (0..ev.keys.len())
            .filter(|&i| !ev.keys[i].is_empty())
            .collect();
        assert_eq!(live.len(), ev.series_count());
        assert_eq!(ev.index.len(), live.len());
        assert_eq!(ev.free_series.len() + live.len(), ev.keys.len());
        assert!(ev.free_series.iter().all(|&i| (i as usize) < ev.keys.len()));
        assert!(
            ev.free_insts
                .iter()
                .all(|&i| (i as usize) < ev.instances.len())
        );
        let per_metric: u32 = ev.per_metric.values().sum();
        assert_eq!(per_metric as usize, live.len());
        let mut fed = vec![0u32; ev.instances.len()];
        for &id in &live {
            assert_eq!(ev.find_series(ev.keys[id].as_bytes()), Some(id as SeriesId));
            let h = ev.series_hot[id];
            let end = (h.subs_start + h.subs_len) as usize;
            assert!(
                end <= ev.subs.len(),
                "series {id}: run {}..{end}",
                h.subs_start
            );
            for &(inst, slot) in &ev.subs[h.subs_start as usize..end] {
                let hi = ev.hot[inst as usize];
                assert_ne!(
                    ev.instances[inst as usize].policy,
                    u32::MAX,
                    "a freed instance"
                );
                assert!(slot >= hi.vals_start && slot < hi.vals_start + hi.leaves);
                fed[inst as usize] += 1;
            }
        }
        let mut live_insts = 0;
        for (i, x) in ev.instances.iter().enumerate() {
            if x.policy == u32::MAX {
                assert!(ev.free_insts.contains(&(i as InstanceId)));
                continue;
            }
            live_insts += 1;
            assert_eq!(ev.hot[i].series, fed[i], "instance {i}");
            let h = hash_inst(
                &ev.hasher,
                x.policy,
                x.key.iter().map(|(k, v)| (k, v.as_str())),
            );
            assert_eq!(
                ev.inst_index.find(h, |&j| j as usize == i),
                Some(&(i as InstanceId))
            );
        }
        assert_eq!(ev.inst_index.len(), live_insts);
    }

    #[test]
    fn eviction_and_reuse_keep_every_table_consistent() {
        // A small deterministic generator (xorshift): many runs of random
        // samples, ticks and eviction steps over a pool of series.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let metrics = [
            "disk_used_percent",
            "service_up",
            "unread",
            "memory_used_percent",
        ];
        let mut ev = defaults();
        ev.set_budget(budget(120, 40, 100));
        let mut out = Vec::new();
        let mut now = 0;
        for step in 0..20_000 {
            now += next(3) as i64;
            match next(10) {
                0 => ev.tick(t(now), &mut out),
                1 => {
                    let pinned = next(50) as InstanceId;
                    ev.evict_idle(t(now), 1 + next(40) as usize, |i| i == pinned);
                }
                _ => {
                    let m = metrics[next(metrics.len() as u64) as usize];
                    let l = labels(&[
                        ("host", &format!("h{}", next(60))),
                        ("mountpoint", "/"),
                        ("service", ["api", "db"][next(2) as usize]),
                    ]);
                    let v = [0.0, 1.0, 50.0, 97.0][next(4) as usize];
                    let r = ev.observe_sample(m, &l, v, t(now), &mut out);
                    if let Err(e) = r {
                        assert!(e.limit == 40 || e.limit == 100, "{e}");
                    }
                }
            }
            out.clear();
            if step % 97 == 0 {
                check_invariants(&ev);
            }
        }
        check_invariants(&ev);
        assert!(ev.figures().evicted > 100, "{:?}", ev.figures());
    }
}
