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
mod evict;

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
mod tests;
