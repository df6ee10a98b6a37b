//! Which firing conditions an ingested sample crosses, for the ingest API's
//! answer. A violation is a sample for which one comparison of a policy's
//! `when` holds; the alert itself fires in the engine once the policy's
//! `for` has passed (and, for `all`, when the other leaves hold too).
//!
//! Read-only over compiled policies; decides nothing.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{KeyedSample, Labels, Sample, SeriesKey};

/// Where a sample's labels are.
#[derive(Clone, Copy)]
enum LabelsOf<'a> {
    Map(&'a Labels),
    Key(&'a SeriesKey),
}
use crate::policy::matcher::{CmpOp, Matcher, matches_all};
use crate::policy::{Cond, Policy};

#[derive(Debug, Clone)]
struct Check {
    policy: usize,
    matchers: Vec<Matcher>,
    op: CmpOp,
    threshold: f64,
}

/// Policies' comparisons indexed by metric name.
#[derive(Debug, Clone, Default)]
pub struct ViolationIndex {
    names: Vec<String>,
    by_metric: HashMap<String, Vec<Check>>,
}

/// One sample crossing one condition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// The sample's position in the request.
    pub index: usize,
    pub metric: String,
    pub policy: String,
    pub condition: String,
    pub value: f64,
}

fn leaves(c: &Cond, out: &mut Vec<(usize, CmpOp, f64)>) {
    match c {
        Cond::Cmp { leaf, op, value } => out.push((*leaf, *op, *value)),
        Cond::All(v) | Cond::Any(v) => v.iter().for_each(|c| leaves(c, out)),
        // A negated comparison is not a threshold crossed by a high value.
        Cond::Not(_) => {}
    }
}

impl ViolationIndex {
    pub fn new(policies: &[Policy]) -> ViolationIndex {
        let mut ix = ViolationIndex::default();
        for (pi, p) in policies.iter().enumerate() {
            ix.names.push(p.name.clone());
            let mut cmps = Vec::new();
            leaves(&p.fire, &mut cmps);
            for (leaf, op, threshold) in cmps {
                let Some(l) = p.leaves.get(leaf) else {
                    continue;
                };
                ix.by_metric
                    .entry(l.metric.clone())
                    .or_default()
                    .push(Check {
                        policy: pi,
                        matchers: l.matchers.clone(),
                        op,
                        threshold,
                    });
            }
        }
        ix
    }

    /// The violations of `samples`, in order.
    pub fn check(&self, samples: &[Sample]) -> Vec<Violation> {
        self.check_each(
            samples
                .iter()
                .map(|s| (s.name.as_str(), s.value, LabelsOf::Map(&s.labels))),
        )
    }

    /// [`ViolationIndex::check`] for samples given by series key: labels are
    /// decoded only for a sample that crosses a threshold.
    pub fn check_keyed(&self, samples: &[KeyedSample]) -> Vec<Violation> {
        self.check_each(
            samples
                .iter()
                .map(|s| (s.key.name(), s.value, LabelsOf::Key(&s.key))),
        )
    }

    fn check_each<'a>(
        &self,
        samples: impl Iterator<Item = (&'a str, f64, LabelsOf<'a>)>,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        for (i, (name, value, labels)) in samples.enumerate() {
            let Some(checks) = self.by_metric.get(name) else {
                continue;
            };
            let mut decoded = None;
            for c in checks {
                if !c.op.holds(value, c.threshold) {
                    continue;
                }
                let labels = match labels {
                    LabelsOf::Map(l) => l,
                    LabelsOf::Key(k) => decoded.get_or_insert_with(|| k.to_labels()),
                };
                if matches_all(&c.matchers, labels) {
                    out.push(Violation {
                        index: i,
                        metric: name.to_string(),
                        policy: self.names[c.policy].clone(),
                        condition: format!("{} {} {}", name, c.op.as_str(), c.threshold),
                        value,
                    });
                }
            }
        }
        out
    }
}
