//! Policies: which metric conditions raise which alerts. Owns the policy file
//! format (`[[policies]]`), its validation, the six defaults, and the
//! evaluator that turns samples into firing and resolved alerts.
//!
//! Pure: time comes in as an argument, nothing here does I/O.

pub mod eval;
pub mod matcher;

use std::collections::BTreeMap;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::model::Severity;
pub use matcher::{CmpOp, Comparison, MatchOp, Matcher};

/// How long a series' last value stays current without a new sample.
pub const STALENESS: TimeDelta = TimeDelta::minutes(5);

/// A condition as written: an expression string, a table, or `all`/`any`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConditionSpec {
    Expr(String),
    All {
        all: Vec<ConditionSpec>,
    },
    Any {
        any: Vec<ConditionSpec>,
    },
    Table {
        metric: String,
        op: String,
        value: f64,
        #[serde(default)]
        matchers: Vec<String>,
    },
}

/// A severity that applies while its condition holds
/// (`severities = [{ when = "disk_used_percent > 95", severity = "critical" }]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityRule {
    pub when: ConditionSpec,
    pub severity: Severity,
}

/// One `[[policies]]` entry as written in a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The alert name it raises (`alertname` label).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The condition that raises the alert (Vigil's own samples).
    #[serde(default)]
    pub when: Option<ConditionSpec>,
    /// Instead of `when`: a PromQL expression evaluated by a `prometheus`
    /// source on its interval; every series it returns holds (Prometheus'
    /// alerting-rule semantics). `resolve` and `severities[].when` are then
    /// PromQL too.
    #[serde(default)]
    pub expr: Option<String>,
    /// The `[[sources]]` entry that evaluates `expr` (default: the first
    /// `prometheus` source).
    #[serde(default)]
    pub source: Option<String>,
    /// How long `when` must hold before the alert fires (default `0s`).
    #[serde(default, rename = "for")]
    pub hold: Option<String>,
    /// The condition that resolves a firing alert (hysteresis). Default: `when`
    /// no longer holds.
    #[serde(default)]
    pub resolve: Option<ConditionSpec>,
    #[serde(default = "default_severity")]
    pub severity: Severity,
    #[serde(default)]
    pub severities: Vec<SeverityRule>,
    /// Labels that identify one alert of this policy (one per distinct
    /// combination). Default: every label of the series.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// The runbook the built-in catalog pairs with this alert (informative;
    /// runbooks choose the alerts they handle).
    #[serde(default)]
    pub runbook: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_severity() -> Severity {
    Severity::Warning
}

fn yes() -> bool {
    true
}

/// A compiled condition over a policy's leaves (distinct metric selectors).
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp { leaf: usize, op: CmpOp, value: f64 },
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

/// A metric selector that feeds a policy: the metric name and its matchers.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

/// A validated, compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub description: String,
    pub leaves: Vec<Leaf>,
    pub fire: Cond,
    pub resolve: Cond,
    /// The text of the conditions, for people.
    pub fire_text: String,
    pub resolve_text: String,
    pub hold: TimeDelta,
    pub severity: Severity,
    pub severities: Vec<(Cond, Severity)>,
    pub group_by: Option<Vec<String>>,
    pub runbook: Option<String>,
    pub annotations: BTreeMap<String, String>,
    /// For a PromQL policy: its queries and source.
    pub query: Option<PolicyQuery>,
}

/// A policy evaluated by Prometheus: each query's answer is fed back as
/// samples of synthetic metrics (`query_metric`): per series, the value
/// (leaf 0: the expression's answer, else the resolve expression's) and,
/// per query, 1 when it answered the series and 0 when not. So `for`,
/// hysteresis, staleness, severities and verification work as for any
/// policy, and the value shown is the series' own.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyQuery {
    /// The `[[sources]]` entry (None: the first `prometheus` source).
    pub source: Option<String>,
    /// The metric the series' value is fed as (leaf 0).
    pub value_metric: String,
    /// (metric the query's 1/0 is fed as, PromQL), fire first (leaf 1),
    /// then resolve (if any), then one per severity rule.
    pub queries: Vec<(String, String)>,
}

/// The longest PromQL expression accepted.
pub const MAX_EXPR: usize = 8192;

/// The synthetic metric that carries the answer of `role` (`fire`,
/// `resolve`, `severity0`...) of PromQL policy `policy`.
pub fn query_metric(policy: &str, role: &str) -> String {
    format!("vigil_query:{policy}:{role}")
}

/// A cheap shape check of a PromQL expression (the source's answer is the
/// real check: `vigil doctor` runs each one): not empty, within
/// `MAX_EXPR`, brackets and quotes balanced.
pub fn check_promql(e: &str) -> Result<(), String> {
    let t = e.trim();
    if t.is_empty() {
        return Err("is empty; expected a PromQL expression such as 'up == 0'".into());
    }
    if t.len() > MAX_EXPR {
        return Err(format!(
            "is {} bytes long; accepted at most {MAX_EXPR}",
            t.len()
        ));
    }
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in t.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Err(format!("has an unbalanced {c:?}"));
                }
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Err(format!("has an unterminated {q} quote"));
    }
    if let Some(c) = stack.pop() {
        return Err(format!("has an unclosed {c:?}"));
    }
    Ok(())
}

/// The condition "query `i` answered this series": its leaf (after the
/// value leaf) is 1.
fn answered(i: usize) -> Cond {
    Cond::Cmp {
        leaf: i + 1,
        op: CmpOp::Eq,
        value: 1.0,
    }
}

fn promql_of(c: &ConditionSpec, what: &str) -> Result<String, String> {
    match c {
        ConditionSpec::Expr(s) => {
            check_promql(s).map_err(|e| format!("{what} {e}"))?;
            Ok(s.trim().to_string())
        }
        _ => Err(format!(
            "{what} must be a PromQL string in a policy with `expr` (tables, all and any are for Vigil's own samples)"
        )),
    }
}

impl Policy {
    /// Compiles a PromQL policy (`expr`).
    fn compile_query(spec: &PolicySpec, name: &str, expr: &str) -> Result<Policy, String> {
        if spec.when.is_some() {
            return Err(
                "expr: a policy has either `when` (Vigil's samples) or `expr` (PromQL), not both"
                    .into(),
            );
        }
        check_promql(expr).map_err(|e| format!("expr {e}"))?;
        let mut queries = vec![(query_metric(name, "fire"), expr.trim().to_string())];
        let resolve = match &spec.resolve {
            Some(r) => {
                queries.push((query_metric(name, "resolve"), promql_of(r, "resolve")?));
                Some(answered(1))
            }
            None => None,
        };
        let mut severities = Vec::new();
        for (i, r) in spec.severities.iter().enumerate() {
            let q = promql_of(&r.when, &format!("severities[{i}].when"))?;
            severities.push((answered(queries.len()), r.severity));
            queries.push((query_metric(name, &format!("severity{i}")), q));
        }
        let fire = answered(0);
        Ok(Policy {
            leaves: std::iter::once(query_metric(name, "value"))
                .chain(queries.iter().map(|(m, _)| m.clone()))
                .map(|metric| Leaf {
                    metric,
                    matchers: Vec::new(),
                })
                .collect(),
            resolve: resolve.unwrap_or_else(|| Cond::Not(Box::new(fire.clone()))),
            fire,
            severities,
            query: Some(PolicyQuery {
                source: spec.source.clone(),
                value_metric: query_metric(name, "value"),
                queries,
            }),
            ..Policy::shell(spec, name, expr.trim().to_string())?
        })
    }

    /// What both kinds of policy take from the spec as it is: name,
    /// description, `for`, severity, identity, runbook, annotations and
    /// the texts of the conditions.
    fn shell(spec: &PolicySpec, name: &str, fire_text: String) -> Result<Policy, String> {
        let hold = match &spec.hold {
            Some(h) => crate::units::limits::POLICY_FOR.parse_delta("for", h)?,
            None => TimeDelta::zero(),
        };
        Ok(Policy {
            name: name.to_string(),
            description: spec.description.clone(),
            leaves: Vec::new(),
            fire: Cond::All(Vec::new()),
            resolve: Cond::All(Vec::new()),
            resolve_text: match &spec.resolve {
                Some(r) => cond_text(r),
                None => format!("not ({fire_text})"),
            },
            fire_text,
            hold,
            severity: spec.severity,
            severities: Vec::new(),
            group_by: spec.labels.clone(),
            runbook: spec.runbook.clone(),
            annotations: spec.annotations.clone(),
            query: None,
        })
    }

    pub fn compile(spec: &PolicySpec) -> Result<Policy, String> {
        let name = spec.name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            return Err(format!(
                "policy name {:?} is invalid; expected letters, digits, '_' or ':'",
                spec.name
            ));
        }
        if let Some(expr) = &spec.expr {
            return Policy::compile_query(spec, name, expr);
        }
        if spec.source.is_some() {
            return Err("source: only a policy with `expr` (PromQL) names a source".into());
        }
        let Some(when) = &spec.when else {
            return Err("when: a policy needs `when` (a condition on Vigil's samples) or `expr` (PromQL evaluated by a prometheus source)".into());
        };
        let mut leaves = Vec::new();
        let fire = compile_cond(when, &mut leaves).map_err(|e| format!("when: {e}"))?;
        let resolve = match &spec.resolve {
            Some(r) => compile_cond(r, &mut leaves).map_err(|e| format!("resolve: {e}"))?,
            None => Cond::Not(Box::new(fire.clone())),
        };
        let mut severities = Vec::new();
        for (i, r) in spec.severities.iter().enumerate() {
            let c = compile_cond(&r.when, &mut leaves)
                .map_err(|e| format!("severities[{i}].when: {e}"))?;
            severities.push((c, r.severity));
        }
        Ok(Policy {
            leaves,
            fire,
            resolve,
            severities,
            ..Policy::shell(spec, name, cond_text(when))?
        })
    }

    /// The metric names this policy reads.
    pub fn metrics(&self) -> impl Iterator<Item = &str> {
        self.leaves.iter().map(|l| l.metric.as_str())
    }
}

/// The condition as one line of text.
pub fn cond_text(c: &ConditionSpec) -> String {
    match c {
        ConditionSpec::Expr(s) => s.trim().to_string(),
        ConditionSpec::All { all } => {
            format!(
                "all({})",
                all.iter().map(cond_text).collect::<Vec<_>>().join(", ")
            )
        }
        ConditionSpec::Any { any } => {
            format!(
                "any({})",
                any.iter().map(cond_text).collect::<Vec<_>>().join(", ")
            )
        }
        ConditionSpec::Table {
            metric,
            op,
            value,
            matchers,
        } => {
            if matchers.is_empty() {
                format!("{metric} {op} {value}")
            } else {
                format!("{metric}{{{}}} {op} {value}", matchers.join(", "))
            }
        }
    }
}

fn leaf_index(leaves: &mut Vec<Leaf>, leaf: Leaf) -> usize {
    if let Some(i) = leaves.iter().position(|l| *l == leaf) {
        return i;
    }
    leaves.push(leaf);
    leaves.len() - 1
}

fn compile_cond(c: &ConditionSpec, leaves: &mut Vec<Leaf>) -> Result<Cond, String> {
    Ok(match c {
        ConditionSpec::Expr(s) => {
            let cmp = Comparison::parse(s)?;
            let leaf = leaf_index(
                leaves,
                Leaf {
                    metric: cmp.metric,
                    matchers: cmp.matchers,
                },
            );
            Cond::Cmp {
                leaf,
                op: cmp.op,
                value: cmp.value,
            }
        }
        ConditionSpec::Table {
            metric,
            op,
            value,
            matchers,
        } => {
            let op = CmpOp::parse(op.trim())
                .ok_or_else(|| format!("op {op:?} is invalid; expected one of > >= < <= == !="))?;
            if !value.is_finite() {
                return Err(format!("value {value} is not a finite number"));
            }
            let ms = matchers
                .iter()
                .map(|m| Matcher::parse(m))
                .collect::<Result<Vec<_>, _>>()?;
            // Validate the metric name with the expression parser.
            Comparison::parse(&format!("{metric} > 0"))
                .map_err(|_| format!("metric name {metric:?} is invalid"))?;
            let leaf = leaf_index(
                leaves,
                Leaf {
                    metric: metric.clone(),
                    matchers: ms,
                },
            );
            Cond::Cmp {
                leaf,
                op,
                value: *value,
            }
        }
        ConditionSpec::All { all } => {
            if all.is_empty() {
                return Err("`all` needs at least one condition".into());
            }
            Cond::All(
                all.iter()
                    .map(|c| compile_cond(c, leaves))
                    .collect::<Result<_, _>>()?,
            )
        }
        ConditionSpec::Any { any } => {
            if any.is_empty() {
                return Err("`any` needs at least one condition".into());
            }
            Cond::Any(
                any.iter()
                    .map(|c| compile_cond(c, leaves))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

/// The built-in policies, as TOML so they read like a user's file.
pub const DEFAULT_POLICIES_TOML: &str = include_str!("../../policies/default.toml");

/// The six defaults on node_exporter's own metrics, for a `prometheus`
/// source with `policies = "node_exporter"`. Disk and memory come from the
/// filesystem and meminfo collectors (on by default), failed systemd units
/// from the systemd collector (`--collector.systemd`), zombies from the
/// processes collector (`--collector.processes`); log sizes, service
/// health without systemd and pool usage from the textfile collector
/// (`log_file_bytes`, `service_up`, `connection_pool_used_ratio`).
pub const NODE_EXPORTER_POLICIES_TOML: &str = include_str!("../../policies/node_exporter.toml");

/// The node_exporter defaults, evaluated by source `source`.
pub fn node_exporter_specs(source: &str) -> Vec<PolicySpec> {
    toml::from_str::<PolicyFile>(NODE_EXPORTER_POLICIES_TOML)
        .map(|f| f.policies)
        .unwrap_or_default()
        .into_iter()
        .map(|mut p| {
            p.source = Some(source.to_string());
            p
        })
        .collect()
}

#[derive(Deserialize)]
struct PolicyFile {
    policies: Vec<PolicySpec>,
}

/// The six default policies, as specs.
pub fn default_specs() -> Vec<PolicySpec> {
    // The text is ours and tested; failing here is a build defect.
    toml::from_str::<PolicyFile>(DEFAULT_POLICIES_TOML)
        .map(|f| f.policies)
        .unwrap_or_default()
}

/// Merges user specs over the defaults: a spec with a default's name replaces
/// it; others are added. Disabled ones are dropped.
pub fn merge_specs(defaults: Vec<PolicySpec>, user: &[PolicySpec]) -> Vec<PolicySpec> {
    let mut out = defaults;
    for u in user {
        if let Some(slot) = out.iter_mut().find(|d| d.name == u.name) {
            *slot = u.clone();
        } else {
            out.push(u.clone());
        }
    }
    out.retain(|p| p.enabled);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_compile_and_match_the_contract() {
        let specs = default_specs();
        assert_eq!(specs.len(), 6);
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "DiskSpaceLow",
                "ServiceDown",
                "MemoryPressure",
                "LogFileLarge",
                "ZombieProcesses",
                "ConnectionPoolExhausted"
            ]
        );
        for s in &specs {
            let p = Policy::compile(s).unwrap();
            assert_eq!(p.leaves.len(), 1, "{}", p.name);
        }
        let disk = Policy::compile(&specs[0]).unwrap();
        assert_eq!(disk.hold, TimeDelta::minutes(1));
        assert_eq!(disk.severities.len(), 1);
    }

    #[test]
    fn node_exporter_defaults_compile_with_the_same_names() {
        let specs = node_exporter_specs("prom");
        let plain: Vec<_> = default_specs().into_iter().map(|s| s.name).collect();
        let names: Vec<_> = specs.iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, plain);
        for s in &specs {
            let p = Policy::compile(s).unwrap();
            let q = p.query.as_ref().unwrap();
            assert_eq!(q.source.as_deref(), Some("prom"));
            assert!(q.queries.len() >= 2, "{}: fire and resolve", p.name);
            assert_eq!(p.leaves.len(), q.queries.len() + 1);
            assert_eq!(p.leaves[0].metric, query_metric(&p.name, "value"));
            assert_eq!(p.leaves[1].metric, query_metric(&p.name, "fire"));
        }
        let disk = Policy::compile(&specs[0]).unwrap();
        assert_eq!(disk.severities.len(), 1);
        assert!(disk.fire_text.contains("node_filesystem_avail_bytes"));
    }

    #[test]
    fn promql_policies_are_checked() {
        let bad = |t: &str| {
            let spec: PolicySpec = toml::from_str(t).unwrap();
            Policy::compile(&spec).unwrap_err()
        };
        let e = bad("name = \"X\"\nexpr = 'up == (0'");
        assert!(e.starts_with("expr ") && e.contains("unclosed"), "{e}");
        let e = bad("name = \"X\"\nexpr = 'up == 0'\nwhen = \"a > 1\"");
        assert!(e.contains("not both"), "{e}");
        let e = bad("name = \"X\"\nexpr = 'up == 0'\nresolve = { all = [\"a > 1\"] }");
        assert!(e.contains("PromQL string"), "{e}");
        let e = bad("name = \"X\"\nexpr = '  '");
        assert!(e.contains("empty"), "{e}");
        let e = bad("name = \"X\"");
        assert!(e.contains("needs `when`"), "{e}");
        let e = bad("name = \"X\"\nwhen = \"a > 1\"\nsource = \"prom\"");
        assert!(e.starts_with("source:"), "{e}");
        assert!(check_promql(r#"up{job="a\"b)"} == 0"#).is_ok());
        assert!(check_promql("up{job='x'}) == 0").is_err());
        assert!(check_promql("\"open").is_err());
    }

    #[test]
    fn all_and_any_share_leaves() {
        let spec: PolicySpec = toml::from_str(
            r#"
name = "Combo"
when = { all = ["a > 1", { any = ["b < 2", "a > 5"] }] }
"#,
        )
        .unwrap();
        let p = Policy::compile(&spec).unwrap();
        assert_eq!(p.leaves.len(), 2);
        assert!(matches!(p.resolve, Cond::Not(_)));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let spec: PolicySpec = toml::from_str("name = \"X\"\nwhen = \"a >> 1\"").unwrap();
        let e = Policy::compile(&spec).unwrap_err();
        assert!(e.starts_with("when:"), "{e}");
        let spec: PolicySpec =
            toml::from_str("name = \"X\"\nwhen = \"a > 1\"\nfor = \"later\"").unwrap();
        let e = Policy::compile(&spec).unwrap_err();
        assert!(
            e.starts_with("for = \"later\"") && e.contains("0s..1d"),
            "{e}"
        );
        let spec: PolicySpec = toml::from_str("name = \"bad name\"\nwhen = \"a > 1\"").unwrap();
        assert!(Policy::compile(&spec).is_err());
    }
}
