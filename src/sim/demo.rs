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

/// One host of the demo fleet.
struct HostDef {
    name: &'static str,
    group: &'static str,
    role: &'static str,
    manager: &'static str,
    services: &'static [&'static str],
    /// The service `memory_used_percent` is attributed to.
    main: &'static str,
    /// (mount point, size in GiB)
    mounts: &'static [(&'static str, f64)],
    /// (path, service) of the host's main log file.
    log: (&'static str, &'static str),
    /// (service, pool) when the host has a connection pool.
    pool: Option<(&'static str, &'static str)>,
    cores: f64,
}

const WEB_MOUNTS: &[(&str, f64)] = &[("/", 40.0), ("/var", 200.0)];
const DB_MOUNTS: &[(&str, f64)] = &[
    ("/", 40.0),
    ("/var", 100.0),
    ("/var/lib/postgresql", 1000.0),
];

const fn web(name: &'static str) -> HostDef {
    HostDef {
        name,
        group: "web",
        role: "web",
        manager: "systemd",
        services: &["nginx", "node_exporter"],
        main: "nginx",
        mounts: WEB_MOUNTS,
        log: ("/var/log/nginx/access.log", "nginx"),
        pool: None,
        cores: 4.0,
    }
}

const fn app(name: &'static str) -> HostDef {
    HostDef {
        name,
        group: "web",
        role: "app",
        manager: "supervisor",
        services: &["gunicorn", "nginx", "node_exporter"],
        main: "gunicorn",
        mounts: WEB_MOUNTS,
        log: ("/var/log/gunicorn/app.log", "gunicorn"),
        pool: None,
        cores: 8.0,
    }
}

const fn api(name: &'static str) -> HostDef {
    HostDef {
        name,
        group: "api",
        role: "api",
        manager: "docker",
        services: &["orders", "payments", "node_exporter"],
        main: "orders",
        mounts: WEB_MOUNTS,
        log: ("/var/log/orders/orders.log", "orders"),
        pool: Some(("orders", "orders_db")),
        cores: 8.0,
    }
}

const fn db(name: &'static str) -> HostDef {
    HostDef {
        name,
        group: "db",
        role: "database",
        manager: "systemd",
        services: &["postgresql", "pgbackrest", "node_exporter"],
        main: "postgresql",
        mounts: DB_MOUNTS,
        log: ("/var/log/postgresql/postgresql-16-main.log", "postgresql"),
        pool: None,
        cores: 16.0,
    }
}

const fn worker(name: &'static str) -> HostDef {
    HostDef {
        name,
        group: "workers",
        role: "worker",
        manager: "systemd",
        services: &["celery", "node_exporter"],
        main: "celery",
        mounts: WEB_MOUNTS,
        log: ("/var/log/celery/worker.log", "celery"),
        pool: None,
        cores: 4.0,
    }
}

const HOSTS: [HostDef; 14] = [
    web("web-01"),
    web("web-02"),
    web("web-03"),
    web("web-04"),
    app("app-01"),
    app("app-02"),
    api("api-01"),
    api("api-02"),
    api("api-03"),
    db("db-01"),
    db("db-02"),
    worker("worker-01"),
    worker("worker-02"),
    worker("worker-03"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
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
    fn name(self) -> &'static str {
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
struct Series {
    host: usize,
    metric: Metric,
    /// The mount point, service or path it is about ("" for host-wide ones).
    key: &'static str,
    labels: Labels,
    /// Healthy level (percent, ratio, bytes, count).
    base: f64,
    /// Jitter amplitude around `base`.
    jitter: f64,
    /// Disk size in GiB (disks only).
    size: f64,
    /// Identifies the series in the jitter hash.
    id: u64,
}

/// A problem that builds up from a healthy level until it is fixed (or
/// clears by itself after `period`): a leak, a filling disk, a pool running
/// dry, zombies piling up, a growing log.
///
/// After a fix it stays at its healthy level for [`COOL_OFF`] of real time
/// (longer than any verification window, so a fix verifies at every speed),
/// then builds up again on the sim clock.
#[derive(Debug, Clone)]
struct Ramp {
    series: usize,
    /// Sim second at which the current build-up started.
    epoch: f64,
    /// The end of the quiet spell after the last fix.
    quiet_until: Option<Time>,
    base: f64,
    /// Growth per sim second.
    rate: f64,
    cap: f64,
    /// Left alone, the cycle restarts after this long (sim seconds).
    period: f64,
    jitter: f64,
    /// From this value on it is worth a line in `incidents()`.
    notice: f64,
}

impl Ramp {
    /// A ramp from `base` growing by `rate` per sim second up to `cap`, that
    /// crosses `threshold` for the first time at sim second `first_cross`
    /// and clears by itself after `period` sim seconds.
    fn new(
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

    fn jitter(mut self, j: f64) -> Ramp {
        self.jitter = j;
        self
    }

    fn notice(mut self, n: f64) -> Ramp {
        self.notice = n;
        self
    }

    fn raw(&self, t: f64, now: Time) -> f64 {
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
struct CrashLoop {
    series: usize,
    /// When the first episode starts.
    first: Time,
    /// From one episode's start to the next.
    period: TimeDelta,
    /// How long an episode lasts (then the deploy is rolled back).
    len: TimeDelta,
    /// When the service was restarted.
    restarts: Vec<Time>,
}

impl CrashLoop {
    /// The current episode's start, if one is going on.
    fn episode(&self, now: Time) -> Option<Time> {
        if now < self.first {
            return None;
        }
        let period = self.period.num_milliseconds().max(1);
        let k = (now - self.first).num_milliseconds().div_euclid(period);
        let s = self.first + TimeDelta::milliseconds(k * period);
        (now - s < self.len).then_some(s)
    }

    /// Is the service up at `now`?
    fn up(&self, now: Time) -> bool {
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

    fn restarts_this_episode(&self, now: Time) -> usize {
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
struct At {
    t: f64,
    now: Time,
    backup: Option<f64>,
}

/// A healthy host's response to an action: a small change that wears off.
#[derive(Debug, Clone)]
struct Bump {
    series: usize,
    amount: f64,
    at: f64,
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
                ssh: None,
                http: None,
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
            hosts: self.hosts(),
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

    fn find(&self, host: usize, metric: Metric, key: Option<&str>) -> Option<usize> {
        self.series
            .iter()
            .position(|s| s.host == host && s.metric == metric && key.is_none_or(|k| s.key == k))
    }

    /// Restarts the cycle of the ramp on series `i`, or gives a healthy
    /// series a small change that wears off. Returns (before, after).
    fn relieve(
        &mut self,
        i: usize,
        t: f64,
        now: Time,
        healthy_change: impl Fn(f64) -> f64,
    ) -> (f64, f64) {
        let before = self.value(i, &self.at(now));
        let quiet_until = now + COOL_OFF;
        let regrow = self.sim(quiet_until);
        if let Some(r) = self.ramps.iter_mut().find(|r| r.series == i) {
            r.quiet_until = Some(quiet_until);
            r.epoch = regrow;
        } else {
            self.bumps.retain(|b| t - b.at < BUMP_DECAY);
            self.bumps.push(Bump {
                series: i,
                amount: healthy_change(before),
                at: t,
            });
        }
        (before, self.value(i, &self.at(now)))
    }

    /// The `sim` executor: applies the runbook's effect to the simulated
    /// host and reports it as an executor would.
    pub fn execute(&mut self, exec: &Execution, now: Time) -> Outcome {
        let t = self.sim(now);
        let Some(host) = HOSTS.iter().position(|h| h.name == exec.target) else {
            return Outcome::failure(
                Some(255),
                format!(
                    "the demo fleet has no host {:?}",
                    exec.target.escape_debug().to_string()
                ),
            );
        };
        let h = &HOSTS[host];
        let param = |k: &str| exec.params.get(k).map(String::as_str);
        let manager = param("manager").unwrap_or(h.manager);
        match exec.runbook.as_str() {
            "disk_cleanup" => {
                let mount = param("mountpoint").unwrap_or("/");
                let Some(i) = self.find(host, Metric::Disk, Some(mount)) else {
                    return Outcome::failure(
                        Some(1),
                        format!("df: {mount}: no such mount point on {}", h.name),
                    );
                };
                let size = self.series[i].size;
                let (before, after) = self.relieve(i, t, now, |v| -(v * 0.05).min(4.0));
                let freed = ((before - after).max(0.0) / 100.0 * size * GIB).round();
                let mut o = Outcome::success(format!(
                    "freed {:.1} GiB on {mount} ({before:.1}% → {after:.1}% used)",
                    freed / GIB
                ));
                o.data = Some(json!({
                    "mountpoint": mount,
                    "freed_bytes": freed as u64,
                    "used_percent_before": before,
                    "used_percent_after": after,
                    "size_bytes": (size * GIB) as u64,
                }));
                o
            }
            "service_restart" => {
                let Some(svc) = param("service") else {
                    return Outcome::failure(Some(2), "no service given");
                };
                let Some(i) = self.find(host, Metric::ServiceUp, Some(svc)) else {
                    return Outcome::failure(
                        Some(5),
                        format!(
                            "Failed to restart {svc}: unit {svc} not found on {}",
                            h.name
                        ),
                    );
                };
                let was_up = self.value(i, &self.at(now)) >= 1.0;
                if i == self.crash.series {
                    self.crash.restarts.push(now);
                }
                let mut o =
                    Outcome::success(format!("restarted {svc} via {manager}: active (running)"));
                o.data = Some(json!({
                    "service": svc,
                    "manager": manager,
                    "was_up": was_up,
                    "active": true,
                    "restarts_this_episode": self.crash.restarts_this_episode(now),
                }));
                o
            }
            "memory_pressure" => {
                let svc = param("service").unwrap_or(h.main);
                let Some(i) = self.find(host, Metric::Memory, None) else {
                    return Outcome::failure(Some(1), format!("no memory figures for {}", h.name));
                };
                if !h.services.contains(&svc) {
                    return Outcome::failure(
                        Some(5),
                        format!(
                            "Failed to restart {svc}: unit {svc} not found on {}",
                            h.name
                        ),
                    );
                }
                let in_backup = i == self.backup_series && self.backup_phase(now).is_some();
                let (before, after) = if in_backup {
                    let v = self.value(i, &self.at(now));
                    (v, v)
                } else {
                    self.relieve(i, t, now, |v| -(v * 0.2).min(12.0))
                };
                let detail = if in_backup {
                    format!(
                        "restarted {svc} via {manager}: memory {before:.1}% → {after:.1}%; the backup still holds it"
                    )
                } else {
                    format!("restarted {svc} via {manager}: memory {before:.1}% → {after:.1}% used")
                };
                let mut o = Outcome::success(detail);
                o.data = Some(json!({
                    "service": svc,
                    "manager": manager,
                    "memory_percent_before": before,
                    "memory_percent_after": after,
                }));
                o
            }
            "log_rotation" => {
                let Some(path) = param("path") else {
                    return Outcome::failure(Some(2), "no path given");
                };
                let Some(i) = self.find(host, Metric::LogBytes, Some(path)) else {
                    return Outcome::failure(
                        Some(1),
                        format!(
                            "stat: cannot stat '{path}' on {}: No such file or directory",
                            h.name
                        ),
                    );
                };
                let (before, after) = self.relieve(i, t, now, |v| -(v - 1.0 * MIB).max(0.0));
                let archive = (before * 0.09).round();
                let file = path.rsplit('/').next().unwrap_or(path);
                let mut o = Outcome::success(format!(
                    "rotated {path}: {} → {} (kept {file}.1.gz, {})",
                    fmt_bytes(before),
                    fmt_bytes(after),
                    fmt_bytes(archive)
                ));
                o.data = Some(json!({
                    "path": path,
                    "bytes_before": before as u64,
                    "bytes_after": after as u64,
                    "archive_bytes": archive as u64,
                }));
                o
            }
            "zombie_killer" => {
                let Some(i) = self.find(host, Metric::Zombies, None) else {
                    return Outcome::failure(Some(1), format!("no process table for {}", h.name));
                };
                let (before, after) = self.relieve(i, t, now, |v| -v);
                let reaped = (before - after).max(0.0);
                let mut o = Outcome::success(format!(
                    "reaped {reaped:.0} zombie processes (SIGCHLD to their parent {}); {after:.0} left",
                    h.main
                ));
                o.data = Some(json!({
                    "zombies_before": before as u64,
                    "zombies_after": after as u64,
                    "reaped": reaped as u64,
                    "parent": h.main,
                }));
                o
            }
            "connection_reset" => {
                let Some(i) = self.find(host, Metric::Pool, None) else {
                    return Outcome::failure(
                        Some(2),
                        format!(
                            "psql: error: no connection pool is configured on {}",
                            h.name
                        ),
                    );
                };
                let pool = self.series[i].key;
                let (before, after) = self.relieve(i, t, now, |v| -(v * 0.3));
                let terminated = ((before - after).max(0.0) * POOL_SIZE).round();
                let mut o = Outcome::success(format!(
                    "terminated {terminated:.0} idle sessions; pool {pool} {:.0}% → {:.0}% used",
                    before * 100.0,
                    after * 100.0
                ));
                o.data = Some(json!({
                    "pool": pool,
                    "terminated": terminated as u64,
                    "used_ratio_before": before,
                    "used_ratio_after": after,
                    "pool_size": POOL_SIZE as u64,
                }));
                o
            }
            other => Outcome::failure(
                Some(127),
                format!(
                    "the sim executor does not know runbook {:?}",
                    other.escape_debug().to_string()
                ),
            ),
        }
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

/// The hub drives the demo fleet: its samples are the `demo` source and
/// it performs the runs of the `sim` executor.
impl crate::hub::DrivenFleet for DemoFleet {
    fn source(&self) -> &'static str {
        "demo"
    }

    fn runs(&self, executor: &str) -> bool {
        executor == "sim"
    }

    fn step(&mut self, now: Time) -> Vec<Sample> {
        DemoFleet::step(self, now)
    }

    fn execute(&mut self, x: &Execution, now: Time) -> Outcome {
        DemoFleet::execute(self, x, now)
    }

    fn incidents(&self) -> Vec<String> {
        DemoFleet::incidents(self)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, VecDeque};

    use super::*;
    use crate::engine::{Command, Engine, Event};
    use crate::model::{ActionId, Record, RecordKind};

    fn t0() -> Time {
        "2026-03-02T09:00:00Z".parse().unwrap()
    }

    fn secs(n: i64) -> TimeDelta {
        TimeDelta::seconds(n)
    }

    fn sample<'a>(
        v: &'a [Sample],
        name: &str,
        host: &str,
        key: Option<(&str, &str)>,
    ) -> &'a Sample {
        v.iter()
            .find(|s| {
                s.name == name
                    && s.labels.get("host").map(String::as_str) == Some(host)
                    && key.is_none_or(|(k, val)| s.labels.get(k).map(String::as_str) == Some(val))
            })
            .unwrap_or_else(|| panic!("no {name} for {host} {key:?}"))
    }

    /// The result of running the real engine over the demo fleet.
    struct Run {
        log: Vec<Record>,
        fleet: DemoFleet,
        executions: usize,
    }

    impl Run {
        fn has(&self, kind: RecordKind, f: impl Fn(&Record) -> bool) -> bool {
            self.log.iter().any(|r| r.kind == kind && f(r))
        }

        fn count(&self, kind: RecordKind, f: impl Fn(&Record) -> bool) -> usize {
            self.log.iter().filter(|r| r.kind == kind && f(r)).count()
        }

        fn firing(&self, alert: &str, host: &str) -> usize {
            self.count(RecordKind::AlertFiring, |r| {
                r.alert.as_deref() == Some(alert) && r.target.as_deref() == Some(host)
            })
        }

        fn by(&self, kind: RecordKind, runbook: &str, target: &str) -> usize {
            self.count(kind, |r| {
                r.runbook.as_deref() == Some(runbook) && r.target.as_deref() == Some(target)
            })
        }

        /// The decision log without samples, one line each, offsets from
        /// the start (printed with --nocapture for the timeline).
        fn timeline(&self, start: Time) -> String {
            self.log
                .iter()
                .filter(|r| r.kind != RecordKind::Signal)
                .map(|r| {
                    let off = (r.at - start).num_seconds();
                    format!(
                        "{:>5}s {:>2}:{:02} {:<20} {:<24} {:<16} {:<10} {}",
                        off,
                        off / 60,
                        off % 60,
                        r.kind.as_str(),
                        r.alert.as_deref().unwrap_or(""),
                        r.runbook.as_deref().unwrap_or(""),
                        r.target.as_deref().unwrap_or(""),
                        r.reason.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
    }

    /// Runs the real engine over the demo on a virtual clock: samples and a
    /// tick every `step`, every execution answered by the fleet, every
    /// approval request approved `approve_after` later.
    fn run(speed: u32, minutes: i64, step: i64, approve_after: i64) -> Run {
        let start = t0();
        let mut fleet = DemoFleet::new(start, speed);
        let setup = fleet
            .config()
            .build("demo", "", false, None)
            .expect("the demo config builds");
        let mut engine = Engine::new(setup);
        let mut log: Vec<Record> = Vec::new();
        let mut approvals: VecDeque<(Time, ActionId)> = VecDeque::new();
        let mut executions = 0;
        let end = start + TimeDelta::minutes(minutes);
        let mut now = start;
        while now <= end {
            let mut cmds = engine.handle(Event::Samples(fleet.step(now)), now);
            cmds.extend(engine.handle(Event::Tick, now));
            while approvals.front().is_some_and(|(at, _)| *at <= now) {
                let Some((_, action)) = approvals.pop_front() else {
                    break;
                };
                cmds.extend(engine.handle(
                    Event::Approve {
                        action,
                        actor: "demo-operator".into(),
                    },
                    now,
                ));
            }
            let mut queue = VecDeque::from(cmds);
            while let Some(c) = queue.pop_front() {
                match c {
                    Command::Record(mut r) => {
                        if r.kind == RecordKind::ApprovalRequested
                            && let Some(id) = r.action_id.as_deref().and_then(ActionId::parse)
                        {
                            approvals.push_back((now + secs(approve_after), id));
                        }
                        r.seq = log.len() as u64 + 1;
                        log.push(r);
                    }
                    Command::Execute(x) => {
                        executions += 1;
                        assert_eq!(x.executor, "sim");
                        let outcome = fleet.execute(&x, now);
                        queue.extend(engine.handle(
                            Event::Finished {
                                action: x.action,
                                attempt: x.attempt,
                                outcome,
                            },
                            now,
                        ));
                    }
                    Command::Escalate(_) | Command::Probe(_) => {}
                }
            }
            now += secs(step);
        }
        Run {
            log,
            fleet,
            executions,
        }
    }

    #[test]
    fn the_whole_loop_runs_on_the_real_engine() {
        let r = run(1, 120, 5, 20);
        println!("{}", r.timeline(t0()));
        println!("executions: {}", r.executions);

        // Every incident fires.
        for (alert, host) in [
            ("MemoryPressure", "app-02"),
            ("DiskSpaceLow", "web-03"),
            ("ServiceDown", "api-02"),
            ("ZombieProcesses", "worker-02"),
            ("ConnectionPoolExhausted", "api-01"),
            ("LogFileLarge", "worker-01"),
            ("MemoryPressure", "db-01"),
        ] {
            assert!(r.firing(alert, host) >= 1, "{alert} on {host} never fired");
        }
        // ... and nothing else: healthy hosts only jitter.
        let noisy: BTreeSet<(String, String)> = r
            .log
            .iter()
            .filter(|x| x.kind == RecordKind::AlertFiring)
            .map(|x| {
                (
                    x.alert.clone().unwrap_or_default(),
                    x.target.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(noisy.len(), 7, "unexpected alerts: {noisy:?}");

        // The fixes: acted on, verified, resolved; and they recur.
        for (alert, runbook, host) in [
            ("MemoryPressure", "memory_pressure", "app-02"),
            ("DiskSpaceLow", "disk_cleanup", "web-03"),
            ("ZombieProcesses", "zombie_killer", "worker-02"),
            ("ConnectionPoolExhausted", "connection_reset", "api-01"),
            ("LogFileLarge", "log_rotation", "worker-01"),
        ] {
            assert!(
                r.by(RecordKind::ActionSucceeded, runbook, host) >= 2,
                "{runbook}@{host} did not succeed twice"
            );
            assert!(
                r.by(RecordKind::VerificationPassed, runbook, host) >= 2,
                "{runbook}@{host} did not verify twice"
            );
            assert_eq!(
                r.by(RecordKind::VerificationFailed, runbook, host),
                0,
                "{runbook}@{host} failed verification"
            );
            assert!(
                r.has(RecordKind::AlertResolved, |x| x.alert.as_deref()
                    == Some(alert)
                    && x.target.as_deref() == Some(host)),
                "{alert} on {host} never resolved"
            );
            assert!(
                r.firing(alert, host) >= 3,
                "{alert} on {host} did not recur"
            );
        }
        // The detail says what the fix did.
        assert!(r.has(RecordKind::ActionSucceeded, |x| x.runbook.as_deref()
            == Some("disk_cleanup")
            && x.detail.as_deref().is_some_and(
                |d| d.starts_with("freed ") && d.contains(" GiB on /var")
            )));
        assert!(r.has(RecordKind::ActionSucceeded, |x| {
            x.runbook.as_deref() == Some("memory_pressure")
                && x.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("restarted gunicorn via supervisor"))
        }));
        // The manual ones waited for the operator.
        assert!(r.has(RecordKind::ActionApproved, |x| x.actor.as_deref()
            == Some("demo-operator")
            && x.runbook.as_deref() == Some("memory_pressure")));
        assert!(r.has(RecordKind::ActionApproved, |x| x.actor.as_deref()
            == Some("vigil")
            && x.runbook.as_deref() == Some("disk_cleanup")));

        // The crash loop: three restarts, then the breaker.
        assert_eq!(
            r.by(RecordKind::ActionStarted, "service_restart", "api-02"),
            3
        );
        assert!(r.by(RecordKind::CircuitOpened, "service_restart", "api-02") == 1);
        assert!(r.has(RecordKind::Escalated, |x| x.reason.as_deref()
            == Some("circuit_open")
            && x.target.as_deref() == Some("api-02")));
        assert!(r.has(RecordKind::ActionBlocked, |x| x.reason.as_deref()
            == Some("circuit_open")
            && x.target.as_deref() == Some("api-02")));
        assert!(
            r.firing("ServiceDown", "api-02") >= 5,
            "later episodes fire again"
        );

        // db-01: blocked by its window every time, never acted on.
        let windows = r.count(RecordKind::ActionBlocked, |x| {
            x.target.as_deref() == Some("db-01")
                && x.reason.as_deref() == Some("maintenance_window")
        });
        assert!(windows >= 5, "db-01 blocked {windows} times");
        assert_eq!(r.firing("MemoryPressure", "db-01"), windows);
        assert_eq!(
            r.count(RecordKind::ActionCancelled, |x| x.target.as_deref()
                == Some("db-01")),
            windows,
            "each backup subsides before its window ends"
        );
        assert!(!r.has(RecordKind::ActionStarted, |x| x.target.as_deref()
            == Some("db-01")));
        assert!(
            !r.has(RecordKind::ApprovalRequested, |x| x.target.as_deref()
                == Some("db-01"))
        );

        // Nothing failed or expired; nobody else tripped a breaker.
        assert_eq!(r.count(RecordKind::ActionFailed, |_| true), 0);
        assert_eq!(r.count(RecordKind::ActionExpired, |_| true), 0);
        assert_eq!(r.count(RecordKind::CircuitOpened, |_| true), 1);
        assert!(r.fleet.incidents().len() <= 7);
    }

    #[test]
    fn the_demo_starts_at_once_and_keeps_a_steady_rhythm() {
        let r = run(1, 12, 1, 15);
        let first = |kind: RecordKind| {
            r.log
                .iter()
                .find(|x| x.kind == kind)
                .map(|x| (x.at - t0()).num_seconds())
        };
        let firing = first(RecordKind::AlertFiring).expect("an alert");
        assert!(firing <= 15, "first alert after {firing}s");
        let asked = first(RecordKind::ApprovalRequested).expect("an approval");
        assert!(asked <= 30, "first approval asked after {asked}s");
        // Then something happens every couple of minutes, not in a burst
        // followed by silence.
        let mut at: Vec<i64> = r
            .log
            .iter()
            .filter(|x| {
                matches!(
                    x.kind,
                    RecordKind::AlertFiring | RecordKind::ApprovalRequested
                )
            })
            .map(|x| (x.at - t0()).num_seconds())
            .collect();
        at.dedup();
        let gap = at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        assert!(gap <= 240, "{gap}s without a new alert or approval: {at:?}");
        assert!(at.last().is_some_and(|l| *l >= 600), "{at:?}");
    }

    #[test]
    fn the_first_minutes_show_a_live_incident() {
        let r = run(1, 5, 1, 15);
        let first = r
            .log
            .iter()
            .find(|x| x.kind == RecordKind::AlertFiring)
            .expect("an alert within 5 minutes");
        assert!(
            (first.at - t0()).num_seconds() <= 90,
            "first alert at {}",
            first.at
        );
        let fired: BTreeSet<_> = r
            .log
            .iter()
            .filter(|x| x.kind == RecordKind::AlertFiring)
            .filter_map(|x| x.target.clone())
            .collect();
        assert!(fired.len() >= 4, "only {fired:?} within 5 minutes");
        assert!(r.has(RecordKind::ApprovalRequested, |x| x.target.as_deref()
            == Some("app-02")));
        assert!(
            r.has(RecordKind::VerificationPassed, |x| x.target.as_deref()
                == Some("web-03"))
        );
    }

    #[test]
    fn a_compressed_clock_keeps_the_story() {
        let r = run(8, 40, 5, 10);
        println!("{}", r.timeline(t0()));
        for (alert, host) in [
            ("MemoryPressure", "app-02"),
            ("DiskSpaceLow", "web-03"),
            ("ServiceDown", "api-02"),
            ("ZombieProcesses", "worker-02"),
            ("ConnectionPoolExhausted", "api-01"),
            ("LogFileLarge", "worker-01"),
            ("MemoryPressure", "db-01"),
        ] {
            assert!(
                r.firing(alert, host) >= 1,
                "{alert} on {host} never fired at speed 8"
            );
        }
        assert!(r.by(RecordKind::CircuitOpened, "service_restart", "api-02") == 1);
        assert!(r.has(RecordKind::ActionBlocked, |x| x.target.as_deref()
            == Some("db-01")
            && x.reason.as_deref() == Some("maintenance_window")));
        assert!(!r.has(RecordKind::ActionStarted, |x| x.target.as_deref()
            == Some("db-01")));
        assert!(r.by(RecordKind::VerificationPassed, "disk_cleanup", "web-03") >= 4);
        // The cool-off outlasts every verification window at any speed.
        assert_eq!(r.count(RecordKind::VerificationFailed, |_| true), 0);
        assert_eq!(r.count(RecordKind::ActionFailed, |_| true), 0);
        assert_eq!(r.count(RecordKind::CircuitOpened, |_| true), 1);
    }

    #[test]
    fn the_fleet_is_a_dozen_hosts_in_four_groups() {
        let f = DemoFleet::new(t0(), 1);
        let hosts = f.hosts();
        assert_eq!(hosts.len(), 14);
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for h in &hosts {
            assert_eq!(h.executor.as_deref(), Some("sim"));
            assert_eq!(h.labels.get("env").map(String::as_str), Some("prod"));
            for k in ["group", "role", "service_manager"] {
                assert!(h.labels.contains_key(k), "{} has no {k}", h.name);
            }
            assert!(!h.services.is_empty());
            groups
                .entry(h.labels["group"].clone())
                .or_default()
                .push(h.name.clone());
        }
        assert_eq!(
            groups["web"],
            ["web-01", "web-02", "web-03", "web-04", "app-01", "app-02"]
        );
        assert_eq!(groups["api"], ["api-01", "api-02", "api-03"]);
        assert_eq!(groups["db"], ["db-01", "db-02"]);
        assert_eq!(groups["workers"], ["worker-01", "worker-02", "worker-03"]);
        // Every memory series names a service of its host (the runbooks'
        // precondition), and every service has a service_up series.
        let samples = DemoFleet::new(t0(), 1).step(t0());
        for h in &hosts {
            let m = sample(&samples, "memory_used_percent", &h.name, None);
            assert!(h.services.contains(&m.labels["service"]), "{}", h.name);
            for s in &h.services {
                assert_eq!(
                    sample(&samples, "service_up", &h.name, Some(("service", s))).value,
                    1.0
                );
            }
        }
        for name in [
            "cpu_used_percent",
            "load1",
            "memory_used_percent",
            "disk_used_percent",
            "service_up",
            "log_file_bytes",
            "zombie_processes",
            "connection_pool_used_ratio",
        ] {
            assert!(samples.iter().any(|s| s.name == name), "no {name}");
        }
    }

    #[test]
    fn the_window_and_overrides_are_valid_config() {
        let f = DemoFleet::new(t0(), 1);
        let w = f.windows();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].reason, "nightly backup (demo: every 20m)");
        assert_eq!(w[0].selector.get("host").map(String::as_str), Some("db-01"));
        // 09:00:00 + 150 s → the 09:03 window, then every 20 minutes.
        assert_eq!(w[0].schedule, "3-59/20 * * * *");
        let mw = MaintenanceWindow::compile(&w[0]).unwrap();
        assert_eq!(mw.active_until(t0()), None);
        let open: Time = "2026-03-02T09:03:00Z".parse().unwrap();
        assert_eq!(mw.active_until(open), Some(open + TimeDelta::minutes(5)));
        assert_eq!(
            mw.active_until(open + TimeDelta::minutes(20)),
            Some(open + TimeDelta::minutes(25))
        );
        // A start just before a window's minute still gets ≥ 150 s of calm.
        let late: Time = "2026-03-02T09:17:29Z".parse().unwrap();
        assert_eq!(
            DemoFleet::new(late, 1).windows()[0].schedule,
            "0-59/20 * * * *"
        );

        let rbs = f.config_overrides();
        assert_eq!(rbs.len(), 6);
        assert_eq!(rbs["disk_cleanup"]["approval"].as_str(), Some("auto"));
        assert_eq!(rbs["zombie_killer"]["approval"].as_str(), Some("auto"));
        assert_eq!(rbs["service_restart"]["max_runs"].as_str(), Some("3/10m"));
        assert_eq!(rbs["memory_pressure"]["max_runs"].as_str(), Some("12/1h"));
        assert_eq!(
            DemoFleet::new(t0(), 8).config_overrides()["disk_cleanup"]["max_runs"].as_str(),
            Some("60/1h")
        );
        // Each value converts to a RunbookOverride (as the console merges
        // them), and the whole reads as `[runbooks.NAME]` tables in a file.
        for (name, v) in rbs.clone() {
            assert!(v.try_into::<RunbookOverride>().is_ok(), "{name}");
        }
        assert_eq!(f.runbook_overrides().len(), 6);
        let mut file = toml::Table::new();
        file.insert("runbooks".into(), toml::Value::Table(rbs));
        let text = toml::to_string(&file).unwrap();
        let c = Config::parse("demo.toml", &text).unwrap();
        let setup = c
            .build("demo.toml", &text, false, Some("sim".into()))
            .unwrap();
        let zk = setup.catalog.get("zombie_killer").unwrap();
        assert_eq!(zk.cooldown, TimeDelta::minutes(2));
        let sr = setup.catalog.get("service_restart").unwrap();
        assert_eq!(sr.max_runs.count, 3);
        assert!(sr.approval.needs_human(crate::model::Severity::Critical));
    }

    #[test]
    fn samples_depend_on_time_not_on_how_often_step_is_called() {
        let mut a = DemoFleet::new(t0(), 1);
        let mut b = DemoFleet::new(t0(), 1);
        let at = t0() + secs(437);
        for s in 0..437 {
            a.step(t0() + secs(s));
        }
        assert_eq!(a.step(at), b.step(at));
        // Another seed jitters differently but tells the same story.
        let mut c = DemoFleet::with_seed(t0(), 1, 7);
        let sc = c.step(at);
        let sa = a.step(at);
        assert_ne!(sa, sc);
        let web03 = |v: &[Sample]| {
            sample(
                v,
                "disk_used_percent",
                "web-03",
                Some(("mountpoint", "/var")),
            )
            .value
        };
        assert!((web03(&sa) - web03(&sc)).abs() < 0.5);
    }

    #[test]
    fn healthy_hosts_stay_inside_the_thresholds() {
        let mut f = DemoFleet::new(t0(), 1);
        // The incidents' own series; everything else stays healthy.
        let sick = [
            ("disk_used_percent", "web-03", "/var"),
            ("memory_used_percent", "app-02", ""),
            ("service_up", "api-02", "payments"),
            ("zombie_processes", "worker-02", ""),
            ("connection_pool_used_ratio", "api-01", ""),
            ("log_file_bytes", "worker-01", ""),
            ("memory_used_percent", "db-01", ""),
        ];
        for s in (0..4 * 3600).step_by(7) {
            for x in f.step(t0() + secs(s)) {
                let host = x.labels["host"].as_str();
                let key = ["mountpoint", "service"]
                    .iter()
                    .find_map(|k| x.labels.get(*k))
                    .map(String::as_str)
                    .unwrap_or("");
                if sick
                    .iter()
                    .any(|(n, h, k)| *n == x.name && *h == host && (k.is_empty() || *k == key))
                {
                    continue;
                }
                let ok = match x.name.as_str() {
                    "disk_used_percent" => x.value < 75.0,
                    "memory_used_percent" => x.value < 80.0,
                    "service_up" => x.value == 1.0,
                    "log_file_bytes" => x.value < 512.0 * MIB,
                    "zombie_processes" => x.value <= 5.0,
                    "connection_pool_used_ratio" => x.value < 0.75,
                    "cpu_used_percent" => (0.0..=100.0).contains(&x.value),
                    "load1" => x.value >= 0.0,
                    "node_filesystem_size_bytes" => x.value >= 40.0 * GIB,
                    other => panic!("unexpected metric {other}"),
                };
                assert!(ok, "{} {:?} = {} at +{s}s", x.name, x.labels, x.value);
            }
        }
    }

    #[test]
    fn unattended_incidents_cap_then_clear_by_themselves() {
        let mut f = DemoFleet::new(t0(), 1);
        let at = |f: &mut DemoFleet, s: i64| f.step(t0() + secs(s));
        let v = at(&mut f, 600);
        assert!(sample(&v, "memory_used_percent", "app-02", None).value > 96.0);
        assert!(
            sample(
                &v,
                "disk_used_percent",
                "web-03",
                Some(("mountpoint", "/var"))
            )
            .value
                > 95.0
        );
        assert!(sample(&v, "zombie_processes", "worker-02", None).value > 20.0);
        // The kernel OOM-kills the leak after 25 minutes of it.
        let oom = 20.0 - (90.0 - 41.0) / 0.16 + 1500.0;
        let v = at(&mut f, oom as i64 + 5);
        assert!(sample(&v, "memory_used_percent", "app-02", None).value < 50.0);
    }

    fn exec(runbook: &str, target: &str, params: &[(&str, &str)]) -> Execution {
        Execution {
            action: ActionId(1),
            attempt: 1,
            runbook: runbook.into(),
            target: target.into(),
            executor: "sim".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            steps: Vec::new(),
        }
    }

    #[test]
    fn hosts_the_fleet_does_not_have_are_refused() {
        // The engine: no executor for a host outside the fleet.
        let setup = DemoFleet::new(t0(), 1)
            .config()
            .build("demo", "", false, None)
            .unwrap();
        let mut engine = Engine::new(setup);
        let labels: Labels = labels(&[
            ("alertname", "DiskSpaceLow"),
            ("host", "web-99"),
            ("mountpoint", "/var"),
        ]);
        let cmds = engine.handle(
            Event::Alert(crate::model::IncomingAlert {
                labels,
                annotations: Labels::new(),
                status: crate::model::AlertStatus::Firing,
                fingerprint: None,
                starts_at: None,
                ends_at: None,
                source: Some("alertmanager".into()),
                generator_url: None,
            }),
            t0(),
        );
        let blocked: Vec<&Record> = cmds
            .iter()
            .filter_map(|c| match c {
                Command::Record(r) if r.kind == RecordKind::ActionBlocked => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(blocked.len(), 1, "{cmds:?}");
        assert_eq!(blocked[0].reason.as_deref(), Some("no_executor"));
        assert!(!cmds.iter().any(|c| matches!(c, Command::Execute(_))));
        // The executor: a clear failure, nothing changed.
        let mut f = DemoFleet::new(t0(), 1);
        let o = f.execute(&exec("disk_cleanup", "web-99", &[]), t0());
        assert!(!o.success);
        assert_eq!(o.detail, "the demo fleet has no host \"web-99\"");
    }

    #[test]
    fn the_sim_executor_fixes_what_the_runbook_fixes() {
        let mut f = DemoFleet::new(t0(), 1);
        let now = t0() + secs(200);
        let v = f.step(now);
        let disk = |v: &[Sample]| {
            sample(
                v,
                "disk_used_percent",
                "web-03",
                Some(("mountpoint", "/var")),
            )
            .value
        };
        assert!(disk(&v) > 85.0);
        let o = f.execute(
            &exec("disk_cleanup", "web-03", &[("mountpoint", "/var")]),
            now,
        );
        assert!(o.success, "{o:?}");
        assert!(
            o.detail.starts_with("freed ") && o.detail.contains(" GiB on /var ("),
            "{}",
            o.detail
        );
        let data = o.data.unwrap();
        assert!(data["freed_bytes"].as_u64().unwrap() > 40 * GIB as u64);
        assert!(disk(&f.step(now)) < 60.0);
        // The disk fills again: the incident restarts after a cool-off.
        assert!(disk(&f.step(now + secs(300))) < 85.0);
        assert!(disk(&f.step(now + secs(540))) > 85.0);

        let o = f.execute(
            &exec(
                "memory_pressure",
                "app-02",
                &[("service", "gunicorn"), ("manager", "supervisor")],
            ),
            now,
        );
        assert!(
            o.detail
                .starts_with("restarted gunicorn via supervisor: memory 9"),
            "{}",
            o.detail
        );
        assert!(sample(&f.step(now), "memory_used_percent", "app-02", None).value < 45.0);

        let o = f.execute(
            &exec("zombie_killer", "worker-02", &[("max_zombies", "5")]),
            now + secs(300),
        );
        assert!(o.detail.starts_with("reaped "), "{}", o.detail);
        assert!(
            sample(
                &f.step(now + secs(300)),
                "zombie_processes",
                "worker-02",
                None
            )
            .value
                <= 2.0
        );

        let at = now + secs(400);
        assert!(sample(&f.step(at), "connection_pool_used_ratio", "api-01", None).value > 0.95);
        let o = f.execute(
            &exec("connection_reset", "api-01", &[("service", "orders")]),
            at,
        );
        assert!(
            o.detail.starts_with("terminated ")
                && o.detail.contains("pool orders_db 99% → 32% used")
                || o.detail.contains("pool orders_db 100% → 32% used"),
            "{}",
            o.detail
        );
        assert!(sample(&f.step(at), "connection_pool_used_ratio", "api-01", None).value < 0.4);

        let at = now + secs(500);
        let path = "/var/log/celery/worker.log";
        assert!(sample(&f.step(at), "log_file_bytes", "worker-01", None).value > GIB);
        let o = f.execute(&exec("log_rotation", "worker-01", &[("path", path)]), at);
        assert!(
            o.detail.starts_with(
                "rotated /var/log/celery/worker.log: 2.7 GiB → 24 MiB (kept worker.log.1.gz, "
            ),
            "{}",
            o.detail
        );
        assert!(sample(&f.step(at), "log_file_bytes", "worker-01", None).value < 64.0 * MIB);

        // A healthy host gets a small change that wears off.
        let before = sample(
            &f.step(at),
            "disk_used_percent",
            "web-01",
            Some(("mountpoint", "/")),
        )
        .value;
        let o = f.execute(&exec("disk_cleanup", "web-01", &[("mountpoint", "/")]), at);
        assert!(o.success);
        let after = sample(
            &f.step(at),
            "disk_used_percent",
            "web-01",
            Some(("mountpoint", "/")),
        )
        .value;
        assert!(after < before && after > before - 5.0, "{before} → {after}");

        // What it cannot do, it says.
        assert!(!f.execute(&exec("disk_cleanup", "mail-01", &[]), at).success);
        assert!(
            !f.execute(
                &exec("disk_cleanup", "web-01", &[("mountpoint", "/srv")]),
                at
            )
            .success
        );
        assert!(
            !f.execute(
                &exec("service_restart", "web-01", &[("service", "payments")]),
                at
            )
            .success
        );
        assert!(
            !f.execute(&exec("connection_reset", "web-01", &[]), at)
                .success
        );
        let o = f.execute(&exec("reboot", "web-01", &[]), at);
        assert_eq!(o.exit_code, Some(127));
    }

    #[test]
    fn the_crash_looping_service_dies_again_after_each_restart() {
        let mut f = DemoFleet::new(t0(), 1);
        let up = |f: &mut DemoFleet, s: i64| {
            sample(
                &f.step(t0() + secs(s)),
                "service_up",
                "api-02",
                Some(("service", "payments")),
            )
            .value
        };
        assert_eq!(up(&mut f, 2), 1.0);
        assert_eq!(up(&mut f, 3), 0.0);
        let o = f.execute(
            &exec(
                "service_restart",
                "api-02",
                &[("service", "payments"), ("manager", "docker")],
            ),
            t0() + secs(53),
        );
        assert_eq!(o.detail, "restarted payments via docker: active (running)");
        assert_eq!(up(&mut f, 53), 1.0);
        assert_eq!(up(&mut f, 127), 1.0);
        assert_eq!(up(&mut f, 128), 0.0);
        assert!(
            f.incidents()
                .iter()
                .any(|i| i.starts_with("api-02 payments is crash-looping")
                    && i.contains("(1 restart so far)"))
        );
        // The rollback ends the episode; the next one comes 40 minutes later.
        assert_eq!(up(&mut f, 1000), 1.0);
        assert_eq!(up(&mut f, 2402), 1.0);
        assert_eq!(up(&mut f, 2403), 0.0);
        // Another service of the same host restarts and stays up.
        let o = f.execute(
            &exec("service_restart", "api-02", &[("service", "orders")]),
            t0() + secs(2403),
        );
        assert!(o.success);
        assert_eq!(
            sample(
                &f.step(t0() + secs(2603)),
                "service_up",
                "api-02",
                Some(("service", "orders"))
            )
            .value,
            1.0
        );
    }

    #[test]
    fn db01s_backup_spikes_only_inside_its_window() {
        let mut f = DemoFleet::new(t0(), 1);
        let w = MaintenanceWindow::compile(&f.windows()[0]).unwrap();
        let mut seen_high = false;
        for s in (0..3 * 3600).step_by(5) {
            let now = t0() + secs(s);
            let v = sample(
                &f.step(now),
                "memory_used_percent",
                "db-01",
                Some(("service", "postgresql")),
            )
            .value;
            match w.active_until(now) {
                Some(end) => {
                    if v > 90.0 {
                        seen_high = true;
                        // Subsides at least 30 s before the window ends.
                        assert!(end - now >= secs(30), "still {v} at {now}");
                    }
                }
                None => assert!(v < 80.0, "{v} outside the window at {now}"),
            }
        }
        assert!(seen_high);
        // db-02 never.
        let v = f.step(t0() + secs(3 * 60 + 60));
        assert!(sample(&v, "memory_used_percent", "db-02", None).value < 80.0);
        assert!(sample(&v, "memory_used_percent", "db-01", None).value > 90.0);
        assert!(
            f.incidents()
                .iter()
                .any(|i| i.starts_with("db-01 nightly backup running"))
        );
    }

    #[test]
    fn incidents_describe_what_is_going_on() {
        let mut f = DemoFleet::new(t0(), 1);
        f.step(t0());
        let i = f.incidents();
        assert_eq!(i.len(), 3, "{i:?}");
        assert!(
            i[0].starts_with("web-03 /var is filling up with old logs: 8"),
            "{i:?}"
        );
        assert!(
            i[1].starts_with("app-02 gunicorn is leaking memory: 8"),
            "{i:?}"
        );
        // The log that fills first, seconds after start.
        assert!(
            i[2].starts_with("worker-01 /var/log/celery/worker.log has grown to"),
            "{i:?}"
        );
        f.step(t0() + secs(240));
        let i = f.incidents();
        for want in [
            "web-03 /var is filling up",
            "app-02 gunicorn is leaking memory",
            "api-02 payments is crash-looping after a bad deploy: down (0 restarts so far)",
            "worker-02 has 2",
            "db-01 nightly backup running (maintenance window until 2026-03-02T09:08:00Z)",
        ] {
            assert!(
                i.iter().any(|x| x.starts_with(want)),
                "no {want:?} in {i:?}"
            );
        }
        f.step(t0() + secs(440));
        let i = f.incidents();
        assert!(
            i.iter()
                .any(|x| x.starts_with("api-01 connection pool orders_db is running dry")),
            "{i:?}"
        );
        assert!(
            i.iter()
                .any(|x| x.starts_with("worker-01 /var/log/celery/worker.log has grown to")),
            "{i:?}"
        );
    }

    #[test]
    fn the_fleet_can_move_into_a_task() {
        fn send<T: Send + 'static>(_: &T) {}
        send(&DemoFleet::new(t0(), 1));
    }

    #[test]
    fn speed_compresses_the_metric_clock() {
        let mut slow = DemoFleet::new(t0(), 1);
        let mut fast = DemoFleet::new(t0(), 10);
        assert_eq!(fast.speed(), 10);
        assert_eq!(DemoFleet::new(t0(), 0).speed(), 1);
        let disk = |v: &[Sample]| {
            sample(
                v,
                "disk_used_percent",
                "web-03",
                Some(("mountpoint", "/var")),
            )
            .value
        };
        assert_eq!(
            disk(&slow.step(t0() + secs(300))),
            disk(&fast.step(t0() + secs(30)))
        );
    }
}
