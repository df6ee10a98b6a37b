//! Runs the queue: at most `max_running` jobs at once, oldest first, each
//! job's steps as the local executor runs them (`exec::local`: argv, no
//! shell of ours, a minimal environment, its own process group killed on
//! timeout or cancel, capped output), its progress and end written to the
//! job store so the hub sees them as it polls.
//!
//! A cancelled job's running step is stopped with its whole process group
//! and no later step or rollback runs. The queue lives in the store, not in
//! memory: a thousand queued jobs cost a thousand rows, not a thousand
//! tasks. This module never decides what may run (`check` did, before the
//! job was stored).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{Notify, Semaphore, watch};

use crate::exec::{StepResult, local, summarize};
use crate::runbook::PlannedStep;

use super::store::{Ending, Job, JobStore, Status, off_thread};

/// Bytes of the job's `output` (the tail of its steps' output) kept.
const OUTPUT_TAIL: usize = 4096;

pub struct Runner {
    store: Arc<JobStore>,
    wake: Notify,
    slots: Arc<Semaphore>,
    max_running: usize,
    /// Running jobs by seq: set to true to stop one.
    running: Mutex<HashMap<i64, watch::Sender<bool>>>,
    output_limit: usize,
}

impl Runner {
    pub fn new(store: Arc<JobStore>, max_running: usize, output_limit: usize) -> Arc<Runner> {
        Arc::new(Runner {
            store,
            wake: Notify::new(),
            slots: Arc::new(Semaphore::new(max_running.max(1))),
            max_running: max_running.max(1),
            running: Mutex::new(HashMap::new()),
            output_limit,
        })
    }

    /// A job was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops a running job (the store already holds who asked).
    pub fn cancel(&self, seq: i64) {
        let map = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = map.get(&seq) {
            let _ = tx.send(true);
        }
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Takes queued jobs until `stop` turns true, then waits up to `grace`
    /// for the running ones (a job still running after that is reported
    /// interrupted at the next start).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>, grace: Duration) {
        'outer: loop {
            let permit = tokio::select! {
                p = self.slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = super::stopped(&mut stop) => break,
            };
            loop {
                if let Ok(Some(job)) = off_thread(&self.store, |st| st.claim_next()).await {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        me.run_job(job).await;
                    });
                    break;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = super::stopped(&mut stop) => break 'outer,
                }
            }
        }
        let all = self.max_running as u32;
        if tokio::time::timeout(grace, self.slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                "{} job(s) still running after {}s; they will be reported interrupted",
                self.running(),
                grace.as_secs()
            );
        }
    }

    async fn store_do<T: Send + 'static>(
        &self,
        f: impl FnOnce(&JobStore) -> Result<T, super::store::StoreError> + Send + 'static,
    ) -> Option<T> {
        off_thread(&self.store, f).await.ok()
    }

    async fn run_job(self: Arc<Self>, job: Job) {
        let seq = job.seq;
        let (tx, rx) = watch::channel(false);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, tx);
        let j = &job.spec;
        tracing::info!(job = %job.id(), hub = %j.hub, key = %j.key, runbook = %j.runbook, target = %j.target, "job started");
        let (steps, rollback): (Vec<&PlannedStep>, Vec<&PlannedStep>) =
            j.plan.iter().partition(|s| !s.rollback);
        let mut results: Vec<StepResult> = Vec::new();
        let mut failed = None;
        let mut cancelled_by: Option<String> = None;
        for (i, s) in steps.iter().enumerate() {
            // A cancel that came before this job's stop signal existed.
            if let Some(by) = self
                .store_do(move |st| st.cancel_requested(seq))
                .await
                .flatten()
            {
                cancelled_by = Some(by);
                break;
            }
            let doing = format!("running step {}/{} {:?}", i + 1, steps.len(), s.name);
            let r = self.run_step(seq, s, doing, rx.clone()).await;
            let (ok, stopped) = (r.ok(), r.error.as_deref() == Some(STOPPED));
            results.push(r);
            if stopped {
                let by = self.store_do(move |st| st.cancel_requested(seq)).await;
                cancelled_by = Some(by.flatten().unwrap_or_else(|| "a hub".into()));
                failed = Some(i);
                break;
            }
            if !ok {
                failed = Some(i);
                break;
            }
            if i + 1 < steps.len() {
                let (out, js) = (output_tail(&results), json!(results));
                let doing = format!("step {}/{} {:?} ok", i + 1, steps.len(), s.name);
                self.store_do(move |st| st.progress(seq, &doing, &out, &js))
                    .await;
            }
        }
        let mut rolled = Vec::new();
        if failed.is_some() && cancelled_by.is_none() {
            for (k, s) in rollback.iter().enumerate() {
                let doing = format!("rollback step {}/{} {:?}", k + 1, rollback.len(), s.name);
                rolled.push(self.run_step(seq, s, doing, rx.clone()).await);
            }
        }
        let o = match (&cancelled_by, failed) {
            // Cancelled before its first step: nothing ran.
            (Some(_), None) if results.is_empty() => None,
            _ => Some(summarize("agent", steps.len(), &results, &rolled, failed)),
        };
        let (status, detail) = match (&cancelled_by, &o) {
            (Some(by), _) => (
                Status::Cancelled,
                format!(
                    "cancelled by hub {by}{}",
                    match failed {
                        Some(i) => format!(
                            " during step {}/{} {:?}; its process group was killed",
                            i + 1,
                            steps.len(),
                            steps[i].name
                        ),
                        None => format!(" after {} step(s); no later step ran", results.len()),
                    }
                ),
            ),
            (None, Some(o)) if o.success => (Status::Succeeded, o.detail.clone()),
            (None, Some(o)) => (Status::Failed, o.detail.clone()),
            (None, None) => (Status::Failed, "nothing ran".into()),
        };
        let exit_code = o.as_ref().and_then(|o| o.exit_code);
        let facts = o
            .as_ref()
            .and_then(|o| o.data.as_ref())
            .and_then(|d| d.get("facts").cloned())
            .unwrap_or_else(|| json!({}));
        let mut all = results;
        all.extend(rolled);
        let end = Ending {
            status,
            exit_code,
            detail: detail.clone(),
            output: output_tail(&all),
            facts,
            steps: json!(all),
        };
        self.store_do(move |st| st.finish(seq, &end)).await;
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&seq);
        tracing::info!(job = %job.id(), status = status.as_str(), "job ended: {detail}");
    }

    /// Runs one step; `doing` (what the job does now) is recorded with the
    /// step's process group once it runs.
    async fn run_step(
        &self,
        seq: i64,
        s: &PlannedStep,
        doing: String,
        mut stop: watch::Receiver<bool>,
    ) -> StepResult {
        let timeout = s.timeout.to_std().unwrap_or(Duration::from_secs(60));
        let started = Instant::now();
        let stopped = async move {
            if stop.wait_for(|v| *v).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let env = local::step_env();
        let run = local::run_argv_until(
            &s.argv,
            &env,
            timeout,
            self.output_limit,
            stopped,
            move |pid| {
                let _ = tx.send(pid);
            },
        );
        // The step's group is on record while it runs, so a restart after
        // a crash can stop what the crash left running.
        let track = async {
            if let Ok(pid) = rx.await {
                let group = identity(pid).map(|ident| (pid, ident));
                self.store_do(move |st| st.step_started(seq, &doing, group))
                    .await;
            }
        };
        let (out, ()) = tokio::join!(run, track);
        let was_stopped = out.stopped;
        let mut r = StepResult::new(s, out, started.elapsed());
        if was_stopped {
            r.error = Some(STOPPED.into());
        }
        r
    }
}

/// A process's identity: its start time (clock ticks since boot) and
/// command line, read from /proc; None when it is gone.
pub fn identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parens).
    let rest = stat.rsplit_once(") ")?.1;
    let start = rest.split_whitespace().nth(19)?;
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(format!(
        "{start}|{}",
        String::from_utf8_lossy(&cmd).replace('\0', " ")
    ))
}

/// Whether `now` (read right before a signal) is the process `then`
/// identified: the same start time, and the same command line when both
/// were read. A command line reads empty for a zombie and, for a moment,
/// for a process that is still being started (its pid cannot be reused
/// within one clock tick, so the start time alone is conclusive then).
fn same_process(then: &str, now: &str) -> bool {
    let (t_start, t_cmd) = then.split_once('|').unwrap_or((then, ""));
    let (n_start, n_cmd) = now.split_once('|').unwrap_or((now, ""));
    t_start == n_start && (n_cmd == t_cmd || n_cmd.is_empty() || t_cmd.is_empty())
}

/// After a crash, before the interrupted jobs are failed: each step's
/// process group still led by the process that step started (same pid,
/// start time and command line, checked right before the signal) is
/// killed. What happened, by job seq.
pub fn stop_orphans(orphans: &[(i64, u32, String)]) -> BTreeMap<i64, String> {
    let mut notes = BTreeMap::new();
    for (seq, pgid, ident) in orphans {
        let note = match identity(*pgid) {
            Some(now) if same_process(ident, &now) && *pgid > 1 && *pgid != std::process::id() => {
                // SAFETY: kill(2) on a process group this agent started for
                // a step, its leader's identity re-checked just before.
                let rc = unsafe { libc::kill(-(*pgid as i32), libc::SIGKILL) };
                if rc == 0 {
                    format!("its step's process group {pgid} was still running and was killed")
                } else {
                    format!(
                        "its step's process group {pgid} could not be killed: {}",
                        std::io::Error::last_os_error()
                    )
                }
            }
            Some(_) => format!("process {pgid} is no longer its step's: left alone"),
            None => "its step's process had ended".to_string(),
        };
        tracing::warn!(job = %format!("job-{seq}"), "{note}");
        notes.insert(*seq, note);
    }
    notes
}

/// A step's error when its job was cancelled while it ran.
const STOPPED: &str = "cancelled: its process group was killed";

/// The last [`OUTPUT_TAIL`] bytes of the steps' output, each step headed
/// by its name and exit status.
fn output_tail(results: &[StepResult]) -> String {
    let mut s = String::new();
    for r in results {
        let end = match (r.timed_out, r.exit_code, &r.error) {
            (true, _, _) => "timed out".to_string(),
            (_, _, Some(e)) => e.clone(),
            (_, Some(c), _) => format!("exit {c}"),
            _ => "ended by a signal".into(),
        };
        s.push_str(&format!("== {} ({end})\n", r.name));
        for part in [&r.stdout, &r.stderr] {
            if !part.is_empty() {
                s.push_str(part);
                if !part.ends_with('\n') {
                    s.push('\n');
                }
            }
        }
    }
    if s.len() > OUTPUT_TAIL {
        let mut cut = s.len() - OUTPUT_TAIL;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s = format!("...{}", &s[cut..]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_the_same_only_with_its_start_time_and_command_line() {
        let me = identity(std::process::id()).expect("this process");
        assert!(same_process(&me, &me));
        let (start, cmd) = me.split_once('|').unwrap();
        assert!(
            !same_process(&me, &format!("1{start}|{cmd}")),
            "a reused pid"
        );
        assert!(!same_process(&me, &format!("{start}|sh -c other")));
        assert!(
            same_process(&me, &format!("{start}|")),
            "a zombie keeps its pid"
        );
        assert!(
            same_process(&format!("{start}|"), &me),
            "read while it was being started"
        );
        assert!(
            !same_process(&format!("1{start}|"), &me),
            "read while being started, then the pid reused"
        );
        assert_eq!(identity(u32::MAX), None);
    }
}
