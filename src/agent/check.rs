//! What the agent accepts: a job for a runbook in its own catalog, on a
//! target it serves, with every parameter matching its pattern and not
//! protected, whose steps are exactly (argv for argv) the plan the agent
//! computes itself for that runbook and those parameters with the same
//! code the hub plans with (`Runbook::plan`).
//!
//! The refusal names the first thing that differs. A job that passes runs
//! the agent's own plan, never the steps it was sent. This module runs
//! nothing and stores nothing.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::Labels;
use crate::runbook::{Catalog, PlannedStep};

use super::config::valid_target;

/// One step as the hub sends it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct JobStep {
    pub name: String,
    pub argv: Vec<String>,
    pub timeout_secs: i64,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub rollback: bool,
}

/// A job submission's body (the http executor's `body`). Unknown fields
/// are ignored, so a newer hub can send more.
#[derive(Debug, Clone, Deserialize)]
pub struct JobBody {
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub action_id: String,
    #[serde(default)]
    pub attempt: u32,
    pub target: String,
    pub runbook: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub steps: Vec<JobStep>,
}

/// A job that passed: the parameters as resolved and the agent's plan.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub params: BTreeMap<String, String>,
    pub plan: Vec<PlannedStep>,
}

/// Shows a value in a refusal: escaped, at most 120 characters.
fn shown(s: &str) -> String {
    let e = s.escape_debug().to_string();
    if e.chars().count() > 120 {
        format!("\"{}...\"", e.chars().take(117).collect::<String>())
    } else {
        format!("\"{e}\"")
    }
}

/// Where two arguments first differ, as "at character N: ...".
fn first_difference(job: &str, plan: &str) -> String {
    let at = job
        .chars()
        .zip(plan.chars())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| job.chars().count().min(plan.chars().count()));
    let around = |s: &str| {
        let from = at.saturating_sub(20);
        s.chars().skip(from).take(50).collect::<String>()
    };
    format!(
        "first difference at character {}: the job has {} where the plan has {}",
        at + 1,
        shown(&around(job)),
        shown(&around(plan))
    )
}

fn compare_step(i: usize, job: &JobStep, plan: &PlannedStep) -> Result<(), String> {
    let at = format!("step {} {}", i + 1, shown(&plan.name));
    if job.name != plan.name {
        return Err(format!(
            "step {}: the job names it {}, the plan {}",
            i + 1,
            shown(&job.name),
            shown(&plan.name)
        ));
    }
    if job.rollback != plan.rollback || job.read_only != plan.read_only {
        return Err(format!(
            "{at}: rollback/read_only flags differ (job {}/{}, plan {}/{})",
            job.rollback, job.read_only, plan.rollback, plan.read_only
        ));
    }
    if job.argv.len() != plan.argv.len() {
        return Err(format!(
            "{at}: the job's argv has {} arguments, the plan's {}",
            job.argv.len(),
            plan.argv.len()
        ));
    }
    for (j, (a, b)) in job.argv.iter().zip(&plan.argv).enumerate() {
        if a != b {
            return Err(format!(
                "{at} argv[{j}] differs: {}",
                first_difference(a, b)
            ));
        }
    }
    if job.timeout_secs != plan.timeout.num_seconds() {
        return Err(format!(
            "{at}: timeout {}s in the job, {}s in the plan",
            job.timeout_secs,
            plan.timeout.num_seconds()
        ));
    }
    Ok(())
}

/// Checks a job against the catalog; the error says what differs and
/// what this agent would accept.
pub fn check(
    catalog: &Catalog,
    targets: Option<&[String]>,
    job: &JobBody,
) -> Result<Accepted, String> {
    if !valid_target(&job.target) {
        return Err(format!(
            "target {} is not a host name; accepted letters, digits, '.', '-', '_' and ':'",
            shown(&job.target)
        ));
    }
    if let Some(ts) = targets
        && !ts.iter().any(|t| t == &job.target)
    {
        return Err(format!(
            "target {} is not served by this agent; it serves {}",
            shown(&job.target),
            ts.join(", ")
        ));
    }
    let Some(rb) = catalog.get(&job.runbook) else {
        return Err(format!(
            "runbook {} is not in this agent's catalog; it runs {}",
            shown(&job.runbook),
            catalog.names().join(", ")
        ));
    };
    if !rb.enabled {
        return Err(format!("runbook {} is disabled on this agent", rb.name()));
    }
    let params = rb
        .resolve_params(&Labels::new(), &Labels::new(), &job.params)
        .map_err(|e| format!("params.{}: {}", e.param, e.message))?;
    if let Some((p, v, glob)) = rb.protected_hit(&params) {
        return Err(format!(
            "params.{p} = {} is protected on this agent (matches {glob:?})",
            shown(&v)
        ));
    }
    let plan = rb.plan(&job.target, &params);
    if job.steps.len() != plan.len() {
        return Err(format!(
            "the job has {} steps, this agent's plan of {} for these parameters has {}: {}",
            job.steps.len(),
            rb.name(),
            plan.len(),
            plan.iter()
                .map(|s| shown(&s.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (i, (a, b)) in job.steps.iter().zip(&plan).enumerate() {
        compare_step(i, a, b)?;
    }
    Ok(Accepted { params, plan })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(runbook: &str, target: &str, params: &[(&str, &str)]) -> JobBody {
        let catalog = Catalog::builtin();
        let rb = catalog.get(runbook).unwrap();
        let p: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let resolved = rb
            .resolve_params(&Labels::new(), &Labels::new(), &p)
            .unwrap();
        let steps = rb
            .plan(target, &resolved)
            .into_iter()
            .map(|s| JobStep {
                name: s.name,
                argv: s.argv,
                timeout_secs: s.timeout.num_seconds(),
                read_only: s.read_only,
                rollback: s.rollback,
            })
            .collect();
        JobBody {
            idempotency_key: None,
            action_id: "A1".into(),
            attempt: 1,
            target: target.into(),
            runbook: runbook.into(),
            params: resolved,
            steps,
        }
    }

    #[test]
    fn the_agents_own_plan_passes_and_anything_else_is_named() {
        let c = Catalog::builtin();
        let ok = body("log_rotation", "web-1", &[("path", "/var/log/app.log")]);
        let a = check(&c, None, &ok).unwrap();
        assert_eq!(a.plan.len(), ok.steps.len());

        let mut one_char = ok.clone();
        let last = one_char.steps[1].argv.len() - 5;
        one_char.steps[1].argv[last] = "/var/log/app.loG".into();
        let e = check(&c, None, &one_char).unwrap_err();
        assert!(e.contains("step 2 \"rotate\" argv["), "{e}");
        assert!(e.contains("character 16"), "{e}");

        let mut script = ok.clone();
        script.steps[0].argv[2].push_str("system('id');");
        let e = check(&c, None, &script).unwrap_err();
        assert!(e.contains("argv[2] differs"), "{e}");

        let mut extra = ok.clone();
        extra.steps.push(extra.steps[0].clone());
        assert!(check(&c, None, &extra).unwrap_err().contains("steps"));

        let mut bad_param = ok.clone();
        bad_param.params.insert("path".into(), "/etc/shadow".into());
        let e = check(&c, None, &bad_param).unwrap_err();
        assert!(e.contains("params.path") && e.contains("pattern"), "{e}");

        let mut unknown = ok.clone();
        unknown.runbook = "rm_everything".into();
        let e = check(&c, None, &unknown).unwrap_err();
        assert!(e.contains("not in this agent's catalog") && e.contains("disk_cleanup"));

        let mut slow = ok.clone();
        slow.steps[0].timeout_secs = 9999;
        assert!(check(&c, None, &slow).unwrap_err().contains("timeout"));

        let mut host = ok.clone();
        host.target = "web-1; reboot".into();
        assert!(
            check(&c, None, &host)
                .unwrap_err()
                .contains("not a host name")
        );
        let only = vec!["db-1".to_string()];
        assert!(
            check(&c, Some(&only), &ok)
                .unwrap_err()
                .contains("not served")
        );
    }
}
