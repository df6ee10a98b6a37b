//! The demo's story: the metrics it plays, the ramps that make incidents
//! (with jitter and the moment they are worth noticing), the crash loops
//! and the bumps a run leaves behind.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Metric {
    Cpu,
    Load,
    Memory,
    Disk,
    ServiceUp,
    LogBytes,
    Zombies,
    Pool,
}

impl Metric {
    pub(super) fn name(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu_used_percent",
            Metric::Load => "load1",
            Metric::Memory => "memory_used_percent",
            Metric::Disk => "disk_used_percent",
            Metric::ServiceUp => "service_up",
            Metric::LogBytes => "log_file_bytes",
            Metric::Zombies => "zombie_processes",
            Metric::Pool => "connection_pool_used_ratio",
        }
    }
}

/// One metric series of one host, with its healthy behaviour.
pub(super) struct Series {
    pub(super) host: usize,
    pub(super) metric: Metric,
    /// The mount point, service or path it is about ("" for host-wide ones).
    pub(super) key: &'static str,
    pub(super) labels: Labels,
    /// Healthy level (percent, ratio, bytes, count).
    pub(super) base: f64,
    /// Jitter amplitude around `base`.
    pub(super) jitter: f64,
    /// Disk size in GiB (disks only).
    pub(super) size: f64,
    /// Identifies the series in the jitter hash.
    pub(super) id: u64,
}

/// A problem that builds up from a healthy level until it is fixed (or
/// clears by itself after `period`): a leak, a filling disk, a pool running
/// dry, zombies piling up, a growing log.
///
/// After a fix it stays at its healthy level for [`COOL_OFF`] of real time
/// (longer than any verification window, so a fix verifies at every speed),
/// then builds up again on the sim clock.
#[derive(Debug, Clone)]
pub(super) struct Ramp {
    pub(super) series: usize,
    /// Sim second at which the current build-up started.
    pub(super) epoch: f64,
    /// The end of the quiet spell after the last fix.
    pub(super) quiet_until: Option<Time>,
    pub(super) base: f64,
    /// Growth per sim second.
    pub(super) rate: f64,
    pub(super) cap: f64,
    /// Left alone, the cycle restarts after this long (sim seconds).
    pub(super) period: f64,
    pub(super) jitter: f64,
    /// From this value on it is worth a line in `incidents()`.
    pub(super) notice: f64,
}

impl Ramp {
    /// A ramp from `base` growing by `rate` per sim second up to `cap`, that
    /// crosses `threshold` for the first time at sim second `first_cross`
    /// and clears by itself after `period` sim seconds.
    pub(super) fn new(
        series: usize,
        (base, rate, cap): (f64, f64, f64),
        period: f64,
        threshold: f64,
        first_cross: f64,
    ) -> Ramp {
        Ramp {
            series,
            epoch: first_cross - (threshold - base) / rate,
            quiet_until: None,
            base,
            rate,
            cap,
            period,
            jitter: 0.0,
            notice: threshold,
        }
    }

    pub(super) fn jitter(mut self, j: f64) -> Ramp {
        self.jitter = j;
        self
    }

    pub(super) fn notice(mut self, n: f64) -> Ramp {
        self.notice = n;
        self
    }

    pub(super) fn raw(&self, t: f64, now: Time) -> f64 {
        // Before the build-up starts (the first one, or after a fix) it is
        // healthy.
        if t < self.epoch || self.quiet_until.is_some_and(|q| now < q) {
            return self.base;
        }
        let x = (t - self.epoch) % self.period;
        (self.base + self.rate * x).min(self.cap)
    }
}

/// A service that dies shortly after every restart during a bad deploy;
/// each episode ends with a rollback. On the real clock: its story is told
/// by the engine's timers (for, cooldown, verification, max_runs window).
#[derive(Debug, Clone)]
pub(super) struct CrashLoop {
    pub(super) series: usize,
    /// When the first episode starts.
    pub(super) first: Time,
    /// From one episode's start to the next.
    pub(super) period: TimeDelta,
    /// How long an episode lasts (then the deploy is rolled back).
    pub(super) len: TimeDelta,
    /// When the service was restarted.
    pub(super) restarts: Vec<Time>,
}

impl CrashLoop {
    /// The current episode's start, if one is going on.
    pub(super) fn episode(&self, now: Time) -> Option<Time> {
        if now < self.first {
            return None;
        }
        let period = self.period.num_milliseconds().max(1);
        let k = (now - self.first).num_milliseconds().div_euclid(period);
        let s = self.first + TimeDelta::milliseconds(k * period);
        (now - s < self.len).then_some(s)
    }

    /// Is the service up at `now`?
    pub(super) fn up(&self, now: Time) -> bool {
        match self.episode(now) {
            None => true,
            Some(opened) => self
                .restarts
                .iter()
                .rev()
                .find(|r| **r >= opened && **r <= now)
                .is_some_and(|r| now - *r < TimeDelta::seconds(CRASH_SURVIVAL_SECS)),
        }
    }

    pub(super) fn restarts_this_episode(&self, now: Time) -> usize {
        match self.episode(now) {
            None => 0,
            Some(opened) => self
                .restarts
                .iter()
                .filter(|r| **r >= opened && **r <= now)
                .count(),
        }
    }
}

/// The moment a value is computed for: sim seconds, real time, and how far
/// into db-01's backup window (seconds) when it is open.
pub(super) struct At {
    pub(super) t: f64,
    pub(super) now: Time,
    pub(super) backup: Option<f64>,
}

/// A healthy host's response to an action: a small change that wears off.
#[derive(Debug, Clone)]
pub(super) struct Bump {
    pub(super) series: usize,
    pub(super) amount: f64,
    pub(super) at: f64,
}
