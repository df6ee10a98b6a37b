//! More than one hub on one shared PostgreSQL store (`[store] url`):
//! exactly one is active, the others are standbys.
//!
//! - Joining: the data dir's SQLite file is brought up to date as a copy of
//!   the shared trail ([`catch_up`]), then the lease is taken or found held.
//! - Active: the writer appends to PostgreSQL under the lease's fence
//!   (every batch: a hub that lost the lease writes nothing), then to the
//!   copy; state is restored from the copy; [`keep_lease`] renews the lease
//!   every third of its time and reports its loss, upon which the process
//!   stops acting at once and starts again as a standby.
//! - Standby: [`follow`] copies the trail as it grows (the API's audit reads
//!   and the consoles' view come from the copy) and takes the lease once it
//!   is free or expired; the process then starts again as the active hub,
//!   restoring the open work from the trail (a running action becomes
//!   interrupted, recorded once).
//!
//! Starting again is an `exec` of the same command line: the process keeps
//! its pid (and so its name in the lease), and comes back through the one
//! start-up path with nothing of the old role left in memory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::hub::Followed;
use crate::store::{
    AuditWriter, Lease, LeaseState, PersistedState, PgStore, PgTarget, Store, StoreError, catch_up,
};
use crate::vital::{Role, Vitals};

/// How often a standby looks at the trail and the lease.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// The newest records a standby's view carries (as the hub's own feed).
const RECENT: usize = 500;

/// This process's name in the lease: host and pid (an `exec` keeps both).
pub fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// A hub that joined the hubs of a shared store.
pub enum Joined {
    Active {
        writer: AuditWriter,
        state: PersistedState,
        lease: Box<Lease>,
        role: Role,
    },
    Standby {
        /// Never written to: a standby writes nothing (the hub wants one).
        writer: AuditWriter,
        state: PersistedState,
        follower: Box<Follower>,
        role: Role,
    },
}

/// What a standby needs to follow the trail and wait for the lease.
pub struct Follower {
    pg: PgStore,
    local: Store,
    lease: Lease,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Copies the shared trail into `dir`'s file, then takes the lease or finds
/// it held.
pub fn join(target: &PgTarget, ttl: Duration, dir: &Path) -> Result<Joined, StoreError> {
    let holder = holder_name();
    let mut pg = PgStore::open(target)?;
    let mut local = Store::open(dir)?;
    local.relax_sync_for_copy()?;
    let copied = catch_up(&mut pg, &mut local)?;
    tracing::info!(
        copied,
        store = %target.display(),
        "the data dir's copy of the shared trail is up to date"
    );
    let mut lease = Lease::open(target, &holder, ttl)?;
    match lease.try_acquire()? {
        LeaseState::Active { epoch } => {
            pg.set_fence_all(lease.fence(epoch));
            // What the previous active hub wrote before its lease ran out.
            catch_up(&mut pg, &mut local)?;
            let state = local.load_state()?;
            tracing::info!(epoch, holder, "this hub is active (it holds the lease)");
            let writer = AuditWriter::spawn_mirrored(pg, local)?;
            Ok(Joined::Active {
                writer,
                state,
                lease: Box::new(lease),
                role: Role {
                    role: "active",
                    epoch,
                    holder: holder.clone(),
                    active: Some(holder),
                    active_addr: None,
                },
            })
        }
        LeaseState::Standby {
            holder: active,
            epoch,
        } => {
            let (_, active_addr) = lease.holder_addr()?;
            tracing::info!(epoch, %active, "this hub is a standby");
            let state = local.load_state()?;
            let writer = AuditWriter::open(dir)?;
            Ok(Joined::Standby {
                writer,
                state,
                follower: Box::new(Follower { pg, local, lease }),
                role: Role {
                    role: "standby",
                    epoch,
                    holder,
                    active: Some(active).filter(|a| !a.is_empty()),
                    active_addr,
                },
            })
        }
    }
}

/// Renews the active hub's lease every third of its time on a thread of its
/// own, advertising `addr`. The receiver fires, with why, when the lease is
/// lost: another hub holds it, or it was not renewed within its time (a
/// watchdog on the runtime says so even while the thread is stuck on a
/// store that does not answer). Once `stop` is set the thread releases the
/// lease (a standby takes it at once) and ends; join it before the process
/// exits. Call from within the runtime.
pub fn keep_lease(
    lease: Box<Lease>,
    epoch: i64,
    addr: Option<String>,
    vitals: Arc<Vitals>,
    stop: Arc<AtomicBool>,
) -> (
    oneshot::Receiver<String>,
    Option<std::thread::JoinHandle<()>>,
) {
    let (tx, rx) = oneshot::channel();
    let (thread_tx, mut thread_rx) = mpsc::channel::<String>(1);
    let mut lease = *lease;
    let ttl = lease.ttl();
    let holder = lease.holder().to_string();
    let base = Instant::now();
    // Milliseconds since `base` of the last renewal.
    let renewed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let thread_stop = stop.clone();
    let thread_renewed = renewed.clone();
    let thread_vitals = vitals.clone();
    let spawned = std::thread::Builder::new()
        .name("vigil-lease".into())
        .spawn(move || {
            let stop = thread_stop;
            if let Some(a) = &addr {
                match lease.advertise(a) {
                    Ok(()) => {
                        if let Some(mut r) = thread_vitals.role() {
                            r.active_addr = Some(a.clone());
                            thread_vitals.set_role(r);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not advertise this hub's address"),
                }
            }
            let why = loop {
                let wait = ttl / 3;
                let t0 = Instant::now();
                while t0.elapsed() < wait {
                    if stop.load(Ordering::Acquire) {
                        match lease.release() {
                            Ok(()) => tracing::info!("lease released"),
                            Err(e) => tracing::warn!(error = %e, "could not release the lease"),
                        }
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50).min(wait));
                }
                match lease.try_acquire() {
                    Ok(LeaseState::Active { epoch: e }) if e == epoch => {
                        let ms = base.elapsed().as_millis() as u64;
                        thread_renewed.store(ms, Ordering::Release);
                    }
                    Ok(LeaseState::Active { epoch: e }) => {
                        break format!(
                            "the lease lapsed and was taken again at epoch {e} (this hub had {epoch})"
                        );
                    }
                    Ok(LeaseState::Standby { holder, epoch: e }) => {
                        break format!("{holder} holds the lease at epoch {e}");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "lease renewal failed; retrying");
                        // The store may be back in a moment: reconnect.
                        if let Ok(l) = lease.reopen() {
                            lease = l;
                        }
                    }
                }
            };
            let _ = thread_tx.try_send(why);
        });
    let thread = match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the lease thread");
            None
        }
    };
    tokio::spawn(async move {
        let why = loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stop.load(Ordering::Acquire) {
                return;
            }
            match thread_rx.try_recv() {
                Ok(why) => break why,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    break "the lease thread ended".to_string();
                }
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            let since = base.elapsed().as_millis() as u64 - renewed.load(Ordering::Acquire);
            if since >= ttl.as_millis() as u64 {
                break format!(
                    "the lease was not renewed for {:.1} s (its time is {} s): the store does not answer",
                    since as f64 / 1000.0,
                    ttl.as_secs()
                );
            }
        };
        vitals.set_role(Role {
            role: "standby",
            epoch,
            holder,
            active: None,
            active_addr: None,
        });
        let _ = tx.send(why);
    });
    (rx, thread)
}

/// Follows the trail for a standby on a thread of its own: every
/// [`FOLLOW_EVERY`], copies what is new and sends the state when it moved,
/// and tries the lease (sending [`Followed::Promoted`] once it is this
/// hub's). Ends when the receiver is dropped.
pub fn follow(f: Box<Follower>, vitals: Arc<Vitals>) -> mpsc::Receiver<Followed> {
    let (tx, rx) = mpsc::channel(4);
    let Follower {
        mut pg,
        mut local,
        mut lease,
    } = *f;
    let spawned = std::thread::Builder::new()
        .name("vigil-follow".into())
        .spawn(move || {
            let mut shown = None;
            let mut failing = false;
            loop {
                let step = (|| -> Result<Option<Followed>, String> {
                    catch_up(&mut pg, &mut local).map_err(err)?;
                    let head = local.last_seq().map_err(err)?;
                    match lease.try_acquire().map_err(err)? {
                        LeaseState::Active { epoch } => {
                            tracing::info!(epoch, "this standby holds the lease now");
                            return Ok(Some(Followed::Promoted));
                        }
                        LeaseState::Standby { holder, epoch } => {
                            let (_, addr) = lease.holder_addr().map_err(err)?;
                            vitals.set_role(Role {
                                role: "standby",
                                epoch,
                                holder: lease.holder().to_string(),
                                active: Some(holder).filter(|h| !h.is_empty()),
                                active_addr: addr,
                            });
                        }
                    }
                    if shown == Some(head) {
                        return Ok(None);
                    }
                    shown = Some(head);
                    let state = local.load_state().map_err(err)?;
                    let recent = local.tail(RECENT).map_err(err)?;
                    Ok(Some(Followed::State {
                        state: Box::new(state),
                        recent,
                    }))
                })();
                match step {
                    Ok(Some(msg)) => {
                        failing = false;
                        let promoted = matches!(msg, Followed::Promoted);
                        if tx.blocking_send(msg).is_err() || promoted {
                            return;
                        }
                    }
                    Ok(None) => failing = false,
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "a standby cannot follow the shared store; retrying");
                        }
                        failing = true;
                        if let (Ok(p), Ok(l)) = (PgStore::open(pg.target()), lease.reopen())
                        {
                            pg = p;
                            lease = l;
                        }
                    }
                }
                if tx.is_closed() {
                    return;
                }
                std::thread::sleep(FOLLOW_EVERY);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the standby's follower");
    }
    rx
}

/// Starts this process again with the same command line (same pid): a hub
/// that lost the lease comes back as a standby, a standby that took it as
/// the active hub. Returns only on failure.
pub fn exec_again() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    // The installed binary, as a service manager's restart would run it
    // (after an upgrade replaced it, /proc names the old one "... (deleted)"),
    // else this process's own image.
    let exe = std::env::current_exe()
        .ok()
        .map(|p| {
            let s = p.to_string_lossy();
            match s.strip_suffix(" (deleted)") {
                Some(installed) => std::path::PathBuf::from(installed),
                None => p,
            }
        })
        .filter(|p| p.exists())
        .unwrap_or_else(|| std::path::PathBuf::from("/proc/self/exe"));
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::Command::new(exe)
        .args(args)
        .env(REJOIN_ENV, "1")
        .exec()
}

/// Set on a hub that starts again in a new role: joining waits for the
/// store instead of failing when it cannot be reached (a hub cut off from
/// it comes back once it is reachable again).
pub const REJOIN_ENV: &str = "VIGIL_HA_REJOIN";

/// [`join`], retried every 2 s while the store cannot be reached when this
/// process starts again in a new role ([`REJOIN_ENV`]); at a first start
/// an unreachable store is an error at once.
pub fn join_or_wait(target: &PgTarget, ttl: Duration, dir: &Path) -> Result<Joined, String> {
    let rejoin = std::env::var_os(REJOIN_ENV).is_some();
    let mut said = false;
    loop {
        match join(target, ttl, dir) {
            Ok(j) => return Ok(j),
            // The store cannot be reached (or its connection broke): it may
            // come back. Anything else (a copy that is not the store's, a
            // bad setting, the data dir) will not, by waiting.
            Err(e @ (StoreError::Unreachable { .. } | StoreError::Postgres { .. })) if rejoin => {
                if !said {
                    tracing::warn!("cannot rejoin the shared store yet ({e}); retrying every 2 s");
                    eprintln!(
                        "vigil serve: cannot rejoin the shared store yet ({e}); retrying every 2 s"
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
