//! The hub's vital signs: which of its long-lived tasks are alive, and the
//! first internal fault (a task that panicked or ended while nothing asked
//! it to stop, or a panic on any thread). `vigil serve` stops on the first
//! fault with a non-zero status after flushing the audit trail, so that a
//! service manager restarts it; `/health` reports every task and is never
//! "ok" for a control plane that lost one.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::Utc;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::model::Time;

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    Alive,
    /// Ended because the hub is stopping.
    Stopped,
    /// Panicked, failed or ended on its own.
    Dead,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskState {
    pub state: Liveness,
    pub since: Time,
    /// Why it died.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A hub's place among the hubs sharing one store (`[store] url`): the
/// active one acts, standbys serve reads and wait for the lease.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Role {
    /// "active" or "standby".
    pub role: &'static str,
    /// The lease's fencing epoch as this hub last saw it.
    pub epoch: i64,
    /// This hub's name in the lease.
    pub holder: String,
    /// The hub holding the lease (a standby's view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    /// Where the active hub serves its API, as it advertised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_addr: Option<String>,
}

impl Role {
    pub fn is_standby(&self) -> bool {
        self.role == "standby"
    }

    /// The active hub as a standby names it: `HOLDER at ADDR`.
    pub fn active_name(&self) -> String {
        let active = self
            .active
            .as_deref()
            .unwrap_or("no hub (the lease is free)");
        match &self.active_addr {
            Some(addr) => format!("{active} at {addr}"),
            None => active.to_string(),
        }
    }

    /// Why a standby refuses what only the active hub does.
    pub fn refusal(&self) -> String {
        let active = self
            .active
            .as_deref()
            .unwrap_or("no hub (the lease is free)");
        match &self.active_addr {
            Some(addr) => format!(
                "this hub is a standby; the active hub is {active} at {addr} (epoch {})",
                self.epoch
            ),
            None => format!(
                "this hub is a standby; the active hub is {active} (epoch {})",
                self.epoch
            ),
        }
    }
}

/// The tasks of one hub and its first fault.
#[derive(Debug)]
pub struct Vitals {
    tasks: Mutex<BTreeMap<String, TaskState>>,
    fault: watch::Sender<Option<String>>,
    role: Mutex<Option<Role>>,
}

impl Vitals {
    pub fn new() -> Arc<Vitals> {
        Arc::new(Vitals {
            tasks: Mutex::new(BTreeMap::new()),
            fault: watch::Sender::new(None),
            role: Mutex::new(None),
        })
    }

    /// Sets this hub's role (hubs on a shared store only).
    pub fn set_role(&self, role: Role) {
        *self.role.lock().unwrap_or_else(|p| p.into_inner()) = Some(role);
    }

    /// This hub's role; None for a hub on its own SQLite store.
    pub fn role(&self) -> Option<Role> {
        self.role.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The active hub's name when this hub is a standby.
    pub fn standby_of(&self) -> Option<String> {
        self.role()
            .filter(Role::is_standby)
            .map(|r| r.active_name())
    }

    /// Why a standby refuses an intent or a delivery; None on an active
    /// hub (or one on its own store).
    pub fn standby_refusal(&self) -> Option<String> {
        self.role().filter(Role::is_standby).map(|r| r.refusal())
    }

    fn set(&self, name: &str, state: Liveness, detail: Option<String>) {
        let mut t = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        t.insert(
            name.to_string(),
            TaskState {
                state,
                since: Utc::now(),
                detail,
            },
        );
    }

    /// Records that task `name` died of `why`; the first fault of the hub
    /// is kept.
    pub fn fault(&self, name: &str, why: String) {
        tracing::error!(task = name, "internal fault: {why}");
        self.set(name, Liveness::Dead, Some(why.clone()));
        self.fault.send_if_modified(|f| {
            if f.is_none() {
                *f = Some(format!("{name}: {why}"));
                true
            } else {
                false
            }
        });
    }

    /// Spawns `fut` as the long-lived task `name` (see [`Vitals::watch`]).
    pub fn spawn<F>(
        self: &Arc<Self>,
        name: &str,
        stopping: watch::Receiver<bool>,
        fut: F,
    ) -> JoinHandle<()>
    where
        F: Future + Send + 'static,
        F::Output: TaskResult + Send + 'static,
    {
        self.watch(name, stopping, tokio::spawn(fut))
    }

    /// Watches the long-lived task `name`. It is alive until it ends;
    /// ending with an error, by a panic, or while `stopping` is not set is a
    /// fault. The returned handle completes when the task has ended and
    /// been accounted for.
    pub fn watch<T: TaskResult + Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        stopping: watch::Receiver<bool>,
        inner: JoinHandle<T>,
    ) -> JoinHandle<()> {
        self.set(name, Liveness::Alive, None);
        let (me, name) = (self.clone(), name.to_string());
        tokio::spawn(async move {
            match inner.await.map(TaskResult::into_result) {
                Ok(Ok(())) if *stopping.borrow() => me.set(&name, Liveness::Stopped, None),
                Ok(Ok(())) => me.fault(&name, "ended while the hub was running".into()),
                Ok(Err(e)) => me.fault(&name, format!("failed: {e}")),
                Err(e) if e.is_panic() => {
                    let why = panic_text(e.into_panic().as_ref());
                    me.fault(&name, format!("panicked: {why}"))
                }
                Err(_) => me.fault(&name, "was cancelled".into()),
            }
        })
    }

    /// Every task's state.
    pub fn tasks(&self) -> BTreeMap<String, TaskState> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The first fault, if any (a panic anywhere in the process counts).
    pub fn first_fault(&self) -> Option<String> {
        self.fault
            .borrow()
            .clone()
            .or_else(|| PANIC.get().map(|p| format!("panic: {p}")))
    }

    /// Waits for the first fault of this hub or the first panic of the
    /// process, and says what it was.
    pub async fn faulted(&self) -> String {
        let mut rx = self.fault.subscribe();
        tokio::select! {
            r = rx.wait_for(|f| f.is_some()) => match r {
                Ok(f) => f.clone().unwrap_or_default(),
                Err(_) => std::future::pending().await,
            },
            p = panicked() => format!("panic: {p}"),
        }
    }
}

/// How a task's output says it ended.
pub trait TaskResult {
    fn into_result(self) -> Result<(), String>;
}

impl TaskResult for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Display> TaskResult for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The first panic of the process (with its thread and place), once the
/// hook is installed.
static PANIC: OnceLock<String> = OnceLock::new();
static PANICKED: Notify = Notify::const_new();

/// Makes a panic on any thread a fault of the process: it is logged (with
/// where it happened) and [`Vitals::faulted`] returns. The previous hook
/// (the default message, a console's terminal restore) still runs first.
pub fn install_panic_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        prev(info);
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let text = format!("{} (thread {thread}{place})", panic_text(info.payload()));
        tracing::error!("panic: {text}");
        if PANIC.set(text).is_ok() {
            PANICKED.notify_one();
        }
    }));
}

/// Returns once a panic was seen by the hook.
async fn panicked() -> String {
    loop {
        if let Some(p) = PANIC.get() {
            return p.clone();
        }
        PANICKED.notified().await;
        // Another waiter may have taken the permit; wake the next one.
        PANICKED.notify_one();
    }
}

/// Test-only faults, read once from `VIGIL_FAULT` in debug builds (release
/// builds ignore it): `panic-on-alert=NAME` panics the hub when an alert
/// named NAME arrives; `feed-ends` ends the change feed at once.
pub fn injected(what: &str) -> Option<&'static str> {
    #[cfg(debug_assertions)]
    {
        static SPEC: OnceLock<Option<String>> = OnceLock::new();
        let spec = SPEC
            .get_or_init(|| std::env::var("VIGIL_FAULT").ok())
            .as_deref()?;
        let (k, v) = spec.split_once('=').unwrap_or((spec, ""));
        (k == what).then_some(v)
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = what;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_task_that_ends_unasked_or_panics_is_a_fault_and_a_stopped_one_is_not() {
        let v = Vitals::new();
        let (stop_tx, stop) = watch::channel(false);
        let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
        let calm = v.spawn("calm", stop.clone(), async move {
            let _ = go.await;
        });
        assert_eq!(v.tasks()["calm"].state, Liveness::Alive);
        assert!(v.first_fault().is_none() || PANIC.get().is_some());
        let _ = stop_tx.send(true);
        let _ = go_tx.send(());
        calm.await.unwrap();
        assert_eq!(v.tasks()["calm"].state, Liveness::Stopped);

        let v = Vitals::new();
        let (_keep, running) = watch::channel(false);
        v.spawn("quitter", running.clone(), async {}).await.unwrap();
        let t = &v.tasks()["quitter"];
        assert_eq!(t.state, Liveness::Dead);
        assert!(
            t.detail
                .as_deref()
                .unwrap()
                .contains("ended while the hub was running")
        );
        let why = tokio::time::timeout(Duration::from_secs(5), v.faulted())
            .await
            .expect("the fault is reported");
        assert!(why.starts_with("quitter: ended"), "{why}");

        v.spawn("failing", running.clone(), async {
            Err::<(), _>("store gone")
        })
        .await
        .unwrap();
        assert_eq!(
            v.tasks()["failing"].detail.as_deref(),
            Some("failed: store gone")
        );
        v.spawn("panicky", running, async {
            if true {
                panic!("boom in a task");
            }
        })
        .await
        .unwrap();
        assert_eq!(
            v.tasks()["panicky"].detail.as_deref(),
            Some("panicked: boom in a task")
        );
        // The first fault stays the first.
        assert!(v.fault.borrow().as_deref().unwrap().starts_with("quitter"));
    }
}
