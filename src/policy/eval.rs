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
//! names, labels and fingerprints stay in `series` and `instances`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::TimeDelta;

use super::{Cond, Policy, STALENESS};
use crate::model::{Labels, SeriesKey, Severity, Time, fingerprint};

pub type SeriesId = u32;

type FastHash = foldhash::fast::RandomState;
pub type InstanceId = u32;

/// Series beyond this many are refused (hostile or runaway label sets).
pub const MAX_SERIES: usize = 1_000_000;

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: Labels,
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

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InstState {
    Inactive,
    Pending { since: Time },
    Firing { since: Time, severity: Severity },
}

/// One alert of one policy: a distinct combination of the policy's labels.
/// (Its state and latest values: [`Evaluator::state`], [`Evaluator::values`].)
#[derive(Debug, Clone)]
pub struct Instance {
    pub policy: u32,
    /// `alertname` plus the identifying labels.
    pub key: Labels,
    /// `key` plus the other labels of the series that feed it.
    pub labels: Labels,
    pub fingerprint: String,
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

#[derive(Debug, thiserror::Error)]
#[error("series limit of {MAX_SERIES} reached; sample {name} dropped")]
pub struct SeriesLimit {
    pub name: String,
}

pub struct Evaluator {
    policies: Vec<Policy>,
    by_metric: HashMap<String, Vec<(u32, u32)>>,
    /// Looked up for every sample that comes by labels: a fast hash, seeded
    /// per process (label values come from outside).
    series_ids: HashMap<String, HashMap<Labels, SeriesId, FastHash>, FastHash>,
    /// The same series by flat key (samples from the ingest API).
    key_ids: HashMap<SeriesKey, SeriesId, FastHash>,
    series: Vec<Series>,
    series_hot: Vec<SeriesHot>,
    /// (instance, index in `vals`) per series, each series' run contiguous.
    subs: Vec<(InstanceId, u32)>,
    instances: Vec<Instance>,
    hot: Vec<HotInst>,
    vals: Vec<Slot>,
    inst_index: HashMap<(u32, Labels), InstanceId>,
    deadlines: BinaryHeap<Reverse<(Time, InstanceId)>>,
    /// Alerts that were firing when the process stopped, by fingerprint,
    /// with the episode's start and severity and the time of the restart:
    /// their instance starts out firing when its first series is interned.
    restored: HashMap<String, (Time, Severity, Time)>,
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
        Evaluator {
            policies,
            by_metric,
            series_ids: HashMap::default(),
            key_ids: HashMap::default(),
            series: Vec::new(),
            series_hot: Vec::new(),
            subs: Vec::new(),
            instances: Vec::new(),
            hot: Vec::new(),
            vals: Vec::new(),
            inst_index: HashMap::new(),
            deadlines: BinaryHeap::new(),
            restored: HashMap::new(),
        }
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

    pub fn series(&self) -> &[Series] {
        &self.series
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The id of a series, interning it (and wiring it to the policies whose
    /// matchers select it) the first time it is seen.
    pub fn intern(&mut self, name: &str, labels: &Labels) -> Result<SeriesId, SeriesLimit> {
        if let Some(id) = self.series_ids.get(name).and_then(|m| m.get(labels)) {
            return Ok(*id);
        }
        if self.series.len() >= MAX_SERIES {
            return Err(SeriesLimit { name: name.into() });
        }
        let id = self.series.len() as SeriesId;
        let subs_start = self.subs.len() as u32;
        if let Some(readers) = self.by_metric.get(name) {
            for &(pi, li) in readers.clone().iter() {
                let p = &self.policies[pi as usize];
                if !super::matcher::matches_all(&p.leaves[li as usize].matchers, labels) {
                    continue;
                }
                let mut key: Labels = match &p.group_by {
                    Some(g) => g
                        .iter()
                        .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
                        .collect(),
                    None => labels.clone(),
                };
                key.insert("alertname".into(), p.name.clone());
                let nleaves = p.leaves.len();
                let inst = match self.inst_index.get(&(pi, key.clone())) {
                    Some(i) => *i,
                    None => {
                        let i = self.instances.len() as InstanceId;
                        let fp = fingerprint(&key);
                        self.instances.push(Instance {
                            policy: pi,
                            key: key.clone(),
                            labels: key.clone(),
                            fingerprint: fp,
                        });
                        // An alert firing before a restart goes on firing
                        // (the same episode): its data decides when it
                        // resolves, or its staleness 5 minutes after the
                        // restart when no sample comes.
                        let state = match self
                            .restored
                            .remove(&self.instances[i as usize].fingerprint)
                        {
                            Some((since, severity, at)) => {
                                self.deadlines
                                    .push(Reverse((at + STALENESS + TimeDelta::seconds(1), i)));
                                InstState::Firing { since, severity }
                            }
                            None => InstState::Inactive,
                        };
                        self.hot.push(HotInst {
                            state,
                            policy: pi,
                            vals_start: self.vals.len() as u32,
                            leaves: nleaves as u32,
                        });
                        self.vals.extend(std::iter::repeat_n(None, nleaves));
                        self.inst_index.insert((pi, key), i);
                        i
                    }
                };
                let inst_labels = &mut self.instances[inst as usize].labels;
                for (k, v) in labels {
                    inst_labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                let slot = self.hot[inst as usize].vals_start + li;
                self.subs.push((inst, slot));
            }
        }
        self.series.push(Series {
            name: name.to_string(),
            labels: labels.clone(),
        });
        self.series_hot.push(SeriesHot {
            value: f64::NAN,
            at: None,
            subs_start,
            subs_len: self.subs.len() as u32 - subs_start,
        });
        self.series_ids
            .entry(name.to_string())
            .or_default()
            .insert(labels.clone(), id);
        Ok(id)
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
        let id = match self.key_ids.get(key) {
            Some(id) => *id,
            None => {
                let id = self.intern(key.name(), &key.to_labels())?;
                self.key_ids.insert(key.clone(), id);
                id
            }
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
            match self.hot[id as usize].state {
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
        self.instances
            .iter()
            .position(|i| i.fingerprint == fp)
            .map(|i| i as InstanceId)
    }

    /// Latest value of a metric for a host (`host` label), if any series has one.
    pub fn host_value(&self, host: &str, metric: &str) -> Option<(f64, Time)> {
        let m = self.series_ids.get(metric)?;
        m.iter()
            .filter(|(l, _)| l.get("host").map(String::as_str) == Some(host))
            .filter_map(|(_, id)| {
                let s = &self.series_hot[*id as usize];
                s.at.map(|a| (s.value, a))
            })
            .max_by_key(|(_, a)| *a)
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
                (i.labels.clone(), eval(&policy.fire, values, Some(now)))
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
        assert_eq!(inst.labels.get("alertname").unwrap(), "DiskSpaceLow");
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
        assert_eq!(ev.instance(0).labels.get("device").unwrap(), "sda");
        assert!(!ev.instance(0).key.contains_key("device"));
    }
}
