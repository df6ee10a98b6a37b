//! The demo fleet: a deterministic simulation of fourteen hosts whose
//! metrics evolve so that `vigil` with no config shows live incidents on
//! first run, and the whole loop detect → approve → act → verify → resolve
//! (and, for one service, → circuit open → escalate) can be watched.
//!
//! Owns the hosts and their metric series, the scripted incidents, the
//! demo's maintenance window and runbook overrides, and the `sim` executor
//! that applies a runbook's effect to a simulated host.
//!
//! Pure like the engine: time comes in as an argument; no clock reads, no
//! tasks, no randomness from the OS (a seeded splitmix64 hash gives the
//! jitter). The samples at a given time depend only on that time and on the
//! runs executed before it, never on how often `step` was called.
//!
//! # Clocks
//!
//! `speed` compresses the *metric* clock: at speed 4 a disk fills four times
//! as fast. What has to line up with the engine's own timers stays on the
//! real clock (`now`): the maintenance window (a cron schedule), the crash
//! loop (restarts against `for`, cooldown, verification and the `max_runs`
//! window) and the cool-off after a fix (against the verification window),
//! so the story is the same at every speed.
//!
//! # Incidents (sim seconds after `start`, at speed 1)
//!
//! | first | host | what | alert | runbook |
//! |---|---|---|---|---|
//! | ~5 s | worker-01 | the celery log grows past 1 GiB (+2.5 MiB/s) | LogFileLarge at once | log_rotation, auto |
//! | 3 s | api-02 | a bad deploy: `payments` dies 75 s after every restart, for 15 min | ServiceDown at ~13 s (the demo holds it 10 s), again after each restart | service_restart, manual; the 4th try opens the circuit |
//! | ~10 s | web-03 | `/var` fills with old logs (+0.08 %/s) | DiskSpaceLow at ~70 s | disk_cleanup, auto |
//! | ~20 s | app-02 | gunicorn leaks memory (+0.16 %/s) | MemoryPressure at ~140 s | memory_pressure, manual |
//! | ~200 s | worker-02 | celery stops reaping children (+1 zombie / 15 s) | ZombieProcesses at ~260 s | zombie_killer, auto |
//! | ~280 s | api-01 | the `orders_db` pool runs dry | ConnectionPoolExhausted at ~340 s | connection_reset, manual |
//!
//! So a newcomer sees a firing alert and an automatic fix within seconds,
//! an approval request within half a minute, then an incident every minute
//! or two.
//!
//! | first | host | what | alert | runbook |
//! |---|---|---|---|---|
//! | window + 27 s | db-01 | the backup pushes postgresql's memory to ~94 % | MemoryPressure 2 min later | blocked: maintenance_window; subsides before the window ends, so it is never acted on |
//!
//! After a fix the problem stays away for a cool-off of 150 s (real time,
//! longer than any verification window) and then builds up again from its
//! healthy level, so each incident recurs every 8½–10½ minutes at speed 1
//! (every 4–5 minutes at speed 8); left alone, each one also
//! clears by itself after 25–30 minutes (the kernel OOM-kills the leak, the
//! nightly jobs rotate and clean, the deploy is rolled back) so that a demo
//! in dry-run keeps cycling too. The backup window opens a few minutes after
//! `start` and every 20 minutes after that.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use serde_json::json;

use crate::config::Config;
use crate::engine::{Execution, HostSpec, MaintenanceWindow, Outcome, WindowSpec};
use crate::model::{Labels, Sample, Time, fmt_time};
use crate::runbook::RunbookOverride;
mod hosts;
use hosts::*;
mod story;
use story::*;
mod driver;

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// The seed of the jitter; any value gives a valid demo.
const SEED: u64 = 0x5eed_0000_d3e0_f1ee;

/// How long a small effect on a healthy host takes to wear off (sim seconds).
const BUMP_DECAY: f64 = 1200.0;

/// How long the crash-looping service stays up after a restart (real time:
/// longer than service_restart's 1m verification window, so each restart
/// verifies, then the service dies again and a new alert fires).
const CRASH_SURVIVAL_SECS: i64 = 75;

/// How long a fixed problem stays away before it builds up again (real
/// time: longer than the longest verification window, 2m).
const COOL_OFF: TimeDelta = TimeDelta::seconds(150);

/// Connections in a simulated pool.
const POOL_SIZE: f64 = 200.0;

/// The runbook settings the demo needs, as they would be written in the
/// config file. The recurring incidents come back every 8½–10½ minutes at
/// speed 1 (faster on a compressed clock) and would trip the default
/// `max_runs` within the hour, which would stop the demo cycling: their
/// budget grows with the speed. service_restart keeps the default `3/10m` on
/// purpose: the crash loop is the breaker's story.
fn overrides_toml(speed: u32) -> String {
    let n = (12 * speed.max(1)).min(60);
    format!(
        r#"
[runbooks.disk_cleanup]
approval = "auto"
cooldown = "1m"
max_runs = "{n}/1h"

[runbooks.zombie_killer]
approval = "auto"
cooldown = "2m"
max_runs = "{n}/1h"

[runbooks.log_rotation]
approval = "auto"
cooldown = "2m"
max_runs = "{n}/1h"

[runbooks.memory_pressure]
approval = "manual"
cooldown = "2m"
max_runs = "{n}/1h"

[runbooks.connection_reset]
approval = "manual"
cooldown = "2m"
max_runs = "{n}/1h"

[runbooks.service_restart]
approval = "manual"
cooldown = "1m"
max_runs = "3/10m"
"#
    )
}

/// The demo fleet. See the module documentation for the story.
pub struct DemoFleet {
    start: Time,
    speed: u32,
    seed: u64,
    series: Vec<Series>,
    ramps: Vec<Ramp>,
    crash: CrashLoop,
    /// db-01's backup window and its memory series.
    backup_spec: WindowSpec,
    backup: Option<MaintenanceWindow>,
    backup_series: usize,
    bumps: Vec<Bump>,
    last: Option<Time>,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in [0, 1) from a seed and two keys.
fn unit(seed: u64, a: u64, b: u64) -> f64 {
    let h = splitmix(seed ^ splitmix(a ^ splitmix(b)));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Smooth value noise in [-1, 1]: random values every `period` seconds,
/// eased in between, so sparklines wander rather than flicker.
fn noise(seed: u64, key: u64, t: f64, period: f64) -> f64 {
    let x = t / period;
    let i = x.floor();
    let f = x - i;
    let f = f * f * (3.0 - 2.0 * f);
    let k = key ^ (period.to_bits()).rotate_left(17);
    let a = unit(seed, k, i as i64 as u64) * 2.0 - 1.0;
    let b = unit(seed, k, (i as i64).wrapping_add(1) as u64) * 2.0 - 1.0;
    a + (b - a) * f
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Bytes for people: `1.1 GiB`, `96 MiB`.
fn fmt_bytes(b: f64) -> String {
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.0} MiB", b / MIB)
    }
}

fn round_to(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

impl DemoFleet {
    /// A fleet whose story starts at `start`; `speed` simulated seconds pass
    /// per real second (0 counts as 1).
    pub fn new(start: Time, speed: u32) -> DemoFleet {
        DemoFleet::with_seed(start, speed, SEED)
    }

    /// The same with another jitter seed (the incidents do not change).
    pub fn with_seed(start: Time, speed: u32, seed: u64) -> DemoFleet {
        let mut series = Vec::new();
        for (hi, h) in HOSTS.iter().enumerate() {
            let u = |what: u64| unit(seed, hi as u64, what);
            let host = h.name;
            let mut push = |metric: Metric,
                            key: &'static str,
                            l: Labels,
                            base: f64,
                            jitter: f64,
                            size: f64| {
                let id = splitmix(((hi as u64) << 32) ^ series.len() as u64);
                series.push(Series {
                    host: hi,
                    metric,
                    key,
                    labels: l,
                    base,
                    jitter,
                    size,
                    id,
                });
            };
            let cpu = if h.group == "db" {
                25.0 + 15.0 * u(1)
            } else {
                12.0 + 30.0 * u(1)
            };
            push(Metric::Cpu, "", labels(&[("host", host)]), cpu, 8.0, 0.0);
            push(
                Metric::Load,
                "",
                labels(&[("host", host)]),
                cpu / 100.0 * h.cores,
                0.1 * h.cores,
                0.0,
            );
            let mem = if h.group == "db" {
                60.0 + 8.0 * u(2)
            } else {
                36.0 + 30.0 * u(2)
            };
            push(
                Metric::Memory,
                h.main,
                labels(&[("host", host), ("service", h.main)]),
                mem,
                2.0,
                0.0,
            );
            for (mi, (mount, size)) in h.mounts.iter().enumerate() {
                let base = match *mount {
                    "/" => 28.0 + 22.0 * u(10 + mi as u64),
                    "/var" => 38.0 + 24.0 * u(10 + mi as u64),
                    _ => 55.0 + 12.0 * u(10 + mi as u64),
                };
                push(
                    Metric::Disk,
                    mount,
                    labels(&[("host", host), ("mountpoint", mount)]),
                    base,
                    0.4,
                    *size,
                );
            }
            for svc in h.services {
                push(
                    Metric::ServiceUp,
                    svc,
                    labels(&[("host", host), ("service", svc)]),
                    1.0,
                    0.0,
                    0.0,
                );
            }
            let (path, svc) = h.log;
            push(
                Metric::LogBytes,
                path,
                labels(&[("host", host), ("path", path), ("service", svc)]),
                (40.0 + 240.0 * u(3)) * MIB,
                0.0,
                0.0,
            );
            push(
                Metric::Zombies,
                "",
                labels(&[("host", host)]),
                1.0,
                1.4,
                0.0,
            );
            if let Some((svc, pool)) = h.pool {
                push(
                    Metric::Pool,
                    pool,
                    labels(&[("host", host), ("service", svc), ("pool", pool)]),
                    0.22 + 0.25 * u(4),
                    0.04,
                    0.0,
                );
            }
        }
        let find = |host: &str, metric: Metric, key: &str| -> usize {
            series
                .iter()
                .position(|s| {
                    HOSTS[s.host].name == host
                        && s.metric == metric
                        && (key.is_empty() || s.key == key)
                })
                .unwrap_or(usize::MAX)
        };
        let ramps = vec![
            // web-03's /var fills with old logs; the nightly cleanup frees it
            // after 30 min if nothing else does.
            Ramp::new(
                find("web-03", Metric::Disk, "/var"),
                (57.0, 0.08, 97.5),
                1800.0,
                85.0,
                10.0,
            )
            .jitter(0.15)
            .notice(80.0),
            // app-02's gunicorn leaks; the kernel OOM-kills it after 25 min.
            Ramp::new(
                find("app-02", Metric::Memory, ""),
                (41.0, 0.16, 97.3),
                1500.0,
                90.0,
                20.0,
            )
            .jitter(0.25)
            .notice(85.0),
            // worker-02's celery stops reaping its children.
            Ramp::new(
                find("worker-02", Metric::Zombies, ""),
                (1.0, 1.0 / 15.0, 64.0),
                1800.0,
                20.5,
                200.0,
            )
            .notice(10.0),
            // api-01's orders_db pool runs dry (connections leak idle).
            Ramp::new(
                find("api-01", Metric::Pool, "orders_db"),
                (0.32, 0.0016, 0.993),
                1800.0,
                0.95,
                280.0,
            )
            .jitter(0.002)
            .notice(0.85),
            // worker-01's celery log grows past 1 GiB.
            Ramp::new(
                find("worker-01", Metric::LogBytes, ""),
                (24.0 * MIB, 2.5 * MIB, 6.0 * GIB),
                1800.0,
                GIB,
                5.0,
            )
            .notice(768.0 * MIB),
        ];
        // api-02's bad deploy: 3 sim seconds in, then every 40 minutes,
        // 15 minutes each (real time).
        let speed = speed.max(1);
        let crash = CrashLoop {
            series: find("api-02", Metric::ServiceUp, "payments"),
            first: start + TimeDelta::milliseconds(3_000 / i64::from(speed)),
            period: TimeDelta::minutes(40),
            len: TimeDelta::minutes(15),
            restarts: Vec::new(),
        };
        // The backup window opens at the first whole minute at least 150 s
        // after `start`, then every 20 minutes.
        let first = (start.timestamp() + 150 + 59).div_euclid(60);
        let minute = first.rem_euclid(60) % 20;
        let backup_spec = WindowSpec {
            selector: labels(&[("host", "db-01")]),
            schedule: format!("{minute}-59/20 * * * *"),
            duration: "5m".into(),
            reason: "nightly backup (demo: every 20m)".into(),
        };
        let backup = MaintenanceWindow::compile(&backup_spec).ok();
        let backup_series = find("db-01", Metric::Memory, "");
        DemoFleet {
            start,
            speed,
            seed,
            series,
            ramps,
            crash,
            backup_spec,
            backup,
            backup_series,
            bumps: Vec::new(),
            last: None,
        }
    }

    pub fn start(&self) -> Time {
        self.start
    }

    pub fn speed(&self) -> u32 {
        self.speed
    }

    /// The inventory: every host with its labels, services and the `sim`
    /// executor.
    pub fn hosts(&self) -> Vec<HostSpec> {
        HOSTS
            .iter()
            .map(|h| HostSpec {
                name: h.name.into(),
                labels: labels(&[
                    ("group", h.group),
                    ("role", h.role),
                    ("env", "prod"),
                    ("service_manager", h.manager),
                ]),
                services: h.services.iter().map(|s| s.to_string()).collect(),
                executor: Some("sim".into()),
                ssh_host: None,
                addresses: Vec::new(),
            })
            .collect()
    }

    /// db-01's backup window, recurring often enough to be seen.
    pub fn windows(&self) -> Vec<WindowSpec> {
        vec![self.backup_spec.clone()]
    }

    /// The runbook overrides the demo needs, keyed by runbook name: each
    /// value is the body of a `[runbooks.NAME]` table (a `RunbookOverride`:
    /// `approval`, `cooldown`, `max_runs`).
    pub fn config_overrides(&self) -> toml::Table {
        // The text is ours and tested; failing here is a build defect.
        toml::from_str::<toml::Table>(&overrides_toml(self.speed))
            .ok()
            .and_then(|mut t| t.remove("runbooks"))
            .and_then(|v| match v {
                toml::Value::Table(t) => Some(t),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The same overrides, typed (`Config::runbooks`).
    pub fn runbook_overrides(&self) -> BTreeMap<String, RunbookOverride> {
        self.config_overrides()
            .into_iter()
            .filter_map(|(name, v)| v.try_into().ok().map(|o| (name, o)))
            .collect()
    }

    /// The policies the demo holds for less than the defaults: ServiceDown
    /// fires after 10 s instead of 30 s, so that the first approval is
    /// asked for within half a minute of start at normal speed.
    pub fn policies(&self) -> Vec<crate::policy::PolicySpec> {
        crate::policy::default_specs()
            .into_iter()
            .filter(|p| p.name == "ServiceDown")
            .map(|mut p| {
                p.hold = Some("10s".into());
                p
            })
            .collect()
    }

    /// A complete config for the demo: hosts, the backup window, the
    /// policies it holds for less and the runbook overrides. Every demo host names the `sim` executor; build it
    /// with no default executor so that a host the fleet does not have is
    /// refused (`no_executor`), as in production.
    pub fn config(&self) -> Config {
        Config {
            demo: Some(true),
            hosts: self.hosts().into_iter().map(Into::into).collect(),
            maintenance: self.windows(),
            policies: self.policies(),
            runbooks: self.runbook_overrides(),
            ..Config::default()
        }
    }

    /// Sim seconds since `start` at real time `now`.
    fn sim(&self, now: Time) -> f64 {
        (now - self.start).num_milliseconds() as f64 / 1000.0 * f64::from(self.speed)
    }

    /// Seconds since the backup window opened and when it closes, if open.
    fn backup_phase(&self, now: Time) -> Option<(f64, Time)> {
        let w = self.backup.as_ref()?;
        let end = w.active_until(now)?;
        let opened = end - w.duration;
        Some(((now - opened).num_milliseconds() as f64 / 1000.0, end))
    }

    /// What every series' value at `now` depends on, worked out once.
    fn at(&self, now: Time) -> At {
        At {
            t: self.sim(now),
            now,
            backup: self.backup_phase(now).map(|(p, _)| p),
        }
    }

    /// The value of series `i` at `at`.
    fn value(&self, i: usize, at: &At) -> f64 {
        let (t, now) = (at.t, at.now);
        let s = &self.series[i];
        let n = |period: f64| noise(self.seed, s.id, t, period);
        let mut v = match s.metric {
            Metric::Cpu => s.base + s.jitter * n(45.0) + 0.3 * s.jitter * n(7.0),
            Metric::Load => s.base + s.jitter * n(60.0),
            Metric::Memory => s.base + s.jitter * n(120.0),
            Metric::Disk => s.base + s.jitter * n(600.0),
            Metric::ServiceUp => 1.0,
            // Grows by ~20 KiB/s and is rotated every hour.
            Metric::LogBytes => s.base + t.rem_euclid(3600.0) * 20.0 * 1024.0,
            Metric::Zombies => s.base + s.jitter * n(90.0),
            Metric::Pool => s.base + s.jitter * n(90.0),
        };
        if let Some(r) = self.ramps.iter().find(|r| r.series == i) {
            v = r.raw(t, now) + r.jitter * n(20.0);
        }
        if i == self.crash.series {
            v = if self.crash.up(now) { 1.0 } else { 0.0 };
        }
        if let Some(p) = at.backup
            && s.host == self.series[self.backup_series].host
        {
            // The backup: ramps up 15–30 s into the window, holds ~94 %,
            // subsides 255–270 s in (well before the 5 min window ends).
            let k = if p < 15.0 {
                0.0
            } else if p < 30.0 {
                (p - 15.0) / 15.0
            } else if p < 255.0 {
                1.0
            } else if p < 270.0 {
                (270.0 - p) / 15.0
            } else {
                0.0
            };
            match s.metric {
                Metric::Memory => v = v + (94.0 + 0.6 * n(11.0) - v) * k,
                Metric::Cpu => v += 35.0 * k,
                Metric::Load => v += 0.35 * HOSTS[s.host].cores * k,
                _ => {}
            }
        }
        for b in self.bumps.iter().filter(|b| b.series == i) {
            let age = t - b.at;
            if (0.0..BUMP_DECAY).contains(&age) {
                v += b.amount * (1.0 - age / BUMP_DECAY);
            }
        }
        match s.metric {
            Metric::Cpu | Metric::Memory | Metric::Disk => round_to(v, 0.1).clamp(0.0, 100.0),
            Metric::Load => round_to(v, 0.01).max(0.0),
            Metric::ServiceUp => v,
            Metric::LogBytes => v.round().max(0.0),
            Metric::Zombies => v.floor().max(0.0),
            Metric::Pool => round_to(v, 0.001).clamp(0.0, 1.0),
        }
    }

    /// Advances the simulation to `now`: one sample per series of every
    /// host (cpu, load, memory, disks, services, main log, zombies, pool).
    pub fn step(&mut self, now: Time) -> Vec<Sample> {
        self.last = Some(now);
        let at = self.at(now);
        let mut out: Vec<Sample> = (0..self.series.len())
            .map(|i| Sample {
                name: self.series[i].metric.name().to_string(),
                value: self.value(i, &at),
                labels: self.series[i].labels.clone(),
            })
            .collect();
        // Each file system's size, as node_exporter reports it: what the
        // analysis weighs a filling disk's growth and its fixes against.
        out.extend(
            self.series
                .iter()
                .filter(|s| s.metric == Metric::Disk)
                .map(|s| Sample {
                    name: "node_filesystem_size_bytes".into(),
                    value: s.size * GIB,
                    labels: s.labels.clone(),
                }),
        );
        out
    }

    /// What is going on right now (as of the last `step`), one short line
    /// per incident, for the console's status.
    pub fn incidents(&self) -> Vec<String> {
        let now = self.last.unwrap_or(self.start);
        let at = self.at(now);
        let mut out = Vec::new();
        for r in &self.ramps {
            let v = self.value(r.series, &at);
            if v < r.notice {
                continue;
            }
            let s = &self.series[r.series];
            let (host, key) = (HOSTS[s.host].name, s.key);
            out.push(match s.metric {
                Metric::Disk => format!("{host} {key} is filling up with old logs: {v:.1}% used"),
                Metric::Memory => format!("{host} {key} is leaking memory: {v:.1}% used"),
                Metric::Zombies => format!(
                    "{host} has {v:.0} zombie processes ({} is not reaping its children)",
                    HOSTS[s.host].main
                ),
                Metric::Pool => format!(
                    "{host} connection pool {key} is running dry: {:.0}% used",
                    v * 100.0
                ),
                Metric::LogBytes => format!("{host} {key} has grown to {}", fmt_bytes(v)),
                _ => format!("{host} {} = {v}", s.metric.name()),
            });
        }
        if self.crash.episode(now).is_some() {
            let s = &self.series[self.crash.series];
            let n = self.crash.restarts_this_episode(now);
            let state = if self.crash.up(now) {
                "up for now, dies again within ~75s"
            } else {
                "down"
            };
            out.push(format!(
                "{} {} is crash-looping after a bad deploy: {state} ({n} restart{} so far)",
                HOSTS[s.host].name,
                s.key,
                if n == 1 { "" } else { "s" }
            ));
        }
        if let Some((_, end)) = self.backup_phase(now) {
            let v = self.value(self.backup_series, &at);
            let s = &self.series[self.backup_series];
            out.push(format!(
                "{} nightly backup running (maintenance window until {}): {} memory {v:.1}%",
                HOSTS[s.host].name,
                fmt_time(&end),
                s.key
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests;
