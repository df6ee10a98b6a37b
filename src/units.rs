//! Units written in config, runbook and scenario files: durations (`90s`,
//! `6h3m`), rates (`3/10m`) and the errors that explain what is accepted;
//! `files`: where in a file a problem is, and the bundled files a user may
//! override.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

pub mod files;
pub use files::FileError;

/// Parses `0s`, `90s`, `1m`, `6h3m`, `1h 30m`, `250ms`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; expected e.g. \"30s\", \"5m\", \"1h30m\"".into());
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("invalid duration {t:?} ({e}); expected e.g. \"30s\", \"5m\", \"1h30m\", \"7d\"")
    })
}

/// The same as [`parse_duration`], as a chrono `TimeDelta` for time arithmetic.
pub fn parse_delta(s: &str) -> Result<TimeDelta, String> {
    let d = parse_duration(s)?;
    TimeDelta::from_std(d).map_err(|_| format!("duration {s:?} is too long"))
}

/// Prints a delta compactly: `45s`, `2m`, `1h5m`, `3d2h`.
pub fn fmt_delta(d: TimeDelta) -> String {
    let mut secs = d.num_seconds();
    let neg = secs < 0;
    secs = secs.abs();
    let (days, hours, mins, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if days > 0 {
        out.push_str(&format!("{days}d"));
    }
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if mins > 0 && days == 0 {
        out.push_str(&format!("{mins}m"));
    }
    if (s > 0 && days == 0 && hours == 0) || out.is_empty() || out == "-" {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// `t + d` that never panics: past the end of chrono's calendar it stays
/// at the last representable instant (the start, for a negative `d`).
pub fn add_time(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d < TimeDelta::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// `t - d` that never panics (see [`add_time`]).
pub fn sub_time(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(if d < TimeDelta::zero() {
        DateTime::<Utc>::MAX_UTC
    } else {
        DateTime::<Utc>::MIN_UTC
    })
}

/// `d * k` that never panics: it stops at the longest delta.
/// (Milliseconds are kept; chrono's own `checked_mul` can return a delta
/// past `TimeDelta::MAX`.)
pub fn mul_delta(d: TimeDelta, k: i32) -> TimeDelta {
    let ms = i128::from(d.num_milliseconds()) * i128::from(k);
    let max = i128::from(TimeDelta::MAX.num_milliseconds());
    let min = i128::from(TimeDelta::MIN.num_milliseconds());
    let ms = i64::try_from(ms.clamp(min, max)).unwrap_or(0);
    TimeDelta::try_milliseconds(ms).unwrap_or(if ms < 0 {
        TimeDelta::MIN
    } else {
        TimeDelta::MAX
    })
}

/// `N/DURATION`: at most N events in any window of that length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: TimeDelta,
}

impl Rate {
    pub fn parse(s: &str) -> Result<Rate, String> {
        let (n, per) = s.split_once('/').ok_or_else(|| {
            format!("invalid rate {s:?}; expected COUNT/DURATION such as \"3/10m\"")
        })?;
        let count: u32 = n.trim().parse().map_err(|_| {
            format!("invalid rate {s:?}: {n:?} is not a whole number; expected e.g. \"3/10m\"")
        })?;
        if count == 0 {
            return Err(format!("invalid rate {s:?}: the count must be at least 1"));
        }
        let per = parse_delta(per)?;
        if per <= TimeDelta::zero() {
            return Err(format!(
                "invalid rate {s:?}: the window must be longer than 0s"
            ));
        }
        Ok(Rate { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, fmt_delta(self.per))
    }
}

/// The accepted range of a duration key, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86400;

impl DurationRange {
    pub const fn new(min: Duration, max: Duration) -> DurationRange {
        DurationRange { min, max }
    }

    /// `1s..30d`.
    pub fn describe(&self) -> String {
        format!("{}..{}", fmt_std(self.min), fmt_std(self.max))
    }

    /// Parses `value` (the value of `key`) and checks it is in range. The
    /// error names the key, the value and the range.
    pub fn parse(&self, key: &str, value: &str) -> Result<Duration, String> {
        let d = parse_duration(value).map_err(|e| {
            format!(
                "{key} = {:?}: {e}; accepted {}",
                value.escape_debug().to_string(),
                self.describe()
            )
        })?;
        if d < self.min || d > self.max {
            return Err(format!(
                "{key} = {:?} is out of range; accepted {}",
                value.escape_debug().to_string(),
                self.describe()
            ));
        }
        Ok(d)
    }

    /// [`DurationRange::parse`] as a chrono `TimeDelta` (the range keeps it
    /// far from chrono's limits).
    pub fn parse_delta(&self, key: &str, value: &str) -> Result<TimeDelta, String> {
        let d = self.parse(key, value)?;
        TimeDelta::from_std(d).map_err(|_| {
            format!(
                "{key} = {value:?} is out of range; accepted {}",
                self.describe()
            )
        })
    }
}

/// Checks a whole number against its accepted range (both ends included).
pub fn check_count<T>(key: &str, value: T, min: T, max: T) -> Result<T, String>
where
    T: PartialOrd + fmt::Display + Copy,
{
    if value < min || value > max {
        Err(format!(
            "{key} = {value} is out of range; accepted {min}..{max}"
        ))
    } else {
        Ok(value)
    }
}

/// The accepted ranges of every duration and count in config, runbook and
/// scenario files (README.md, "Accepted ranges", lists them).
pub mod limits {
    use super::{DAY, DurationRange, HOUR, MINUTE, secs};
    use std::time::Duration;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `[settings] approval_expiry` (default 30m).
    pub const APPROVAL_EXPIRY: DurationRange = DurationRange::new(secs(MINUTE), secs(7 * DAY));
    /// `[settings] retry_backoff` (default 30s; doubles per attempt).
    pub const RETRY_BACKOFF: DurationRange = DurationRange::new(secs(1), secs(HOUR));
    /// `[settings] series_ttl` (default 1h): a series with no sample for
    /// longer is evicted. At least the 5 minutes a value stays current, so
    /// that only stale values are forgotten.
    pub const SERIES_TTL: DurationRange = DurationRange::new(secs(5 * MINUTE), secs(30 * DAY));
    /// `[settings] max_series_per_metric` (default 100,000; the hub holds at
    /// most 1,000,000 series in all).
    pub const MAX_SERIES_PER_METRIC: (usize, usize) = (1, 1_000_000);
    /// `[settings] max_parallel_runs` (default 16).
    pub const MAX_PARALLEL_RUNS: (usize, usize) = (1, 1024);
    /// A policy's `for` (default 0s).
    pub const POLICY_FOR: DurationRange = DurationRange::new(secs(0), secs(DAY));
    /// A runbook's `cooldown` (default 1m).
    pub const COOLDOWN: DurationRange = DurationRange::new(secs(0), secs(7 * DAY));
    /// The window of a runbook's `max_runs` (default 10m).
    pub const MAX_RUNS_WINDOW: DurationRange = DurationRange::new(secs(1), secs(30 * DAY));
    /// The count of a runbook's `max_runs` (default 3).
    pub const MAX_RUNS_COUNT: (u32, u32) = (1, 1000);
    /// A runbook's `verify.window` / `verify_window` (default 1m).
    pub const VERIFY_WINDOW: DurationRange = DurationRange::new(secs(0), secs(DAY));
    /// `[settings] external_verify_window` and `[[sources]] verify_window`
    /// (default 10m): how long an outside source may lag.
    pub const EXTERNAL_VERIFY_WINDOW: DurationRange = DurationRange::new(secs(1), secs(DAY));
    /// A step's `timeout` and `verify.timeout` (default 60s).
    pub const STEP_TIMEOUT: DurationRange = DurationRange::new(secs(1), secs(DAY));
    /// `[runbooks.NAME] max_attempts` (default 3).
    pub const MAX_ATTEMPTS: (u32, u32) = (1, 10);
    /// `[listener] rate_limit` (requests per second; default off).
    pub const RATE_LIMIT: (u32, u32) = (1, 1_000_000);
    /// `[[sources]] interval` (default 15s).
    pub const SOURCE_INTERVAL: DurationRange = DurationRange::new(ms(10), secs(HOUR));
    /// `[[sources]] timeout` (default 5s).
    pub const SOURCE_TIMEOUT: DurationRange = DurationRange::new(ms(10), secs(5 * MINUTE));
    /// `[[escalation]] max_attempts` (default 5).
    pub const ESCALATION_ATTEMPTS: (u32, u32) = (1, 20);
    /// `[[escalation]] backoff` (default 1s; doubles per attempt).
    pub const ESCALATION_BACKOFF: DurationRange = DurationRange::new(ms(10), secs(HOUR));
    /// `[[escalation]] timeout` (default 10s).
    pub const ESCALATION_TIMEOUT: DurationRange = DurationRange::new(ms(10), secs(5 * MINUTE));
    /// `[hosts.ssh] control_persist` when it is a time (default 60s).
    pub const SSH_CONTROL_PERSIST: DurationRange = DurationRange::new(secs(0), secs(DAY));
    /// `[hosts.http] poll_interval` (default 1s).
    pub const HTTP_POLL_INTERVAL: DurationRange = DurationRange::new(ms(10), secs(5 * MINUTE));
    /// `[hosts.http] max_wait` (default: the steps' timeouts + 1m).
    pub const HTTP_MAX_WAIT: DurationRange = DurationRange::new(secs(1), secs(7 * DAY));
    /// `[[maintenance]] duration`.
    pub const MAINTENANCE_DURATION: DurationRange = DurationRange::new(secs(1), secs(31 * DAY));
    /// A scenario event's `at` and the scenario's `end` (offsets from `start`).
    pub const SCENARIO_OFFSET: DurationRange = DurationRange::new(secs(0), secs(366 * DAY));
}

/// Prints a std duration compactly: `250ms`, `45s`, `1h5m`, `7d`.
pub fn fmt_std(d: Duration) -> String {
    if d.subsec_millis() != 0 && d.as_secs() == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    fmt_delta(TimeDelta::try_seconds(secs).unwrap_or(TimeDelta::MAX))
}

/// The 1-based line of the first line at or after byte `from` that sets
/// `key` (`key = ...`, `key=...`, leading spaces allowed, or `key` inside an
/// inline table `{ key = ... }`).
pub fn key_line_from(text: &str, from: usize, key: &str) -> Option<usize> {
    if key.is_empty() {
        return None;
    }
    let from = from.min(text.len());
    let start = text[..from].rfind('\n').map(|p| p + 1).unwrap_or(0);
    let base = text[..start].bytes().filter(|b| *b == b'\n').count() + 1;
    for (i, line) in text[start..].split('\n').enumerate() {
        let mut rest = line;
        while let Some(pos) = rest.find(key) {
            let before = rest[..pos].chars().next_back();
            let after = rest[pos + key.len()..].trim_start();
            let boundary = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            if boundary && after.starts_with('=') && !after.starts_with("==") {
                return Some(base + i);
            }
            rest = &rest[pos + key.len()..];
        }
    }
    None
}

/// [`key_line_from`] from the start of the file.
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    key_line_from(text, 0, key)
}

/// The line that sets `key` after the first occurrence of `anchor` (a
/// section header or a name), else the anchor's own line.
pub fn key_line_after(text: &str, anchor: &str, key: &str) -> Option<usize> {
    match text.find(anchor) {
        Some(pos) => key_line_from(text, pos, key).or_else(|| line_of(text, anchor)),
        None => key_line(text, key),
    }
}

/// Finds the 1-based line of the first occurrence of `needle` in `text`
/// (used to point at a key in a file after it was parsed).
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.find(needle)
        .map(|pos| text[..pos].bytes().filter(|b| *b == b'\n').count() + 1)
}

/// Turns a toml parse error into `line N: message` (toml's own message
/// already names the line; this keeps only the useful part on one line).
pub fn toml_error_line(e: &toml::de::Error, text: &str) -> (Option<usize>, String) {
    let line = e.span().map(|sp| {
        text[..sp.start.min(text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    });
    (line, e.message().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("6h3m").unwrap(),
            Duration::from_secs(6 * 3600 + 180)
        );
        assert!(parse_duration("soon").unwrap_err().contains("expected"));
        assert_eq!(fmt_delta(TimeDelta::seconds(3900)), "1h5m");
        assert_eq!(fmt_delta(TimeDelta::seconds(45)), "45s");
        assert_eq!(fmt_delta(TimeDelta::zero()), "0s");
    }

    #[test]
    fn rates() {
        let r = Rate::parse("3/10m").unwrap();
        assert_eq!(r.count, 3);
        assert_eq!(r.per, TimeDelta::minutes(10));
        assert!(Rate::parse("3").is_err());
        assert!(Rate::parse("0/1m").is_err());
        assert!(Rate::parse("x/1m").unwrap_err().contains("whole number"));
    }

    #[test]
    fn ranges_name_the_key_the_value_and_what_is_accepted() {
        let r = limits::APPROVAL_EXPIRY;
        assert_eq!(r.describe(), "1m..7d");
        assert_eq!(limits::SOURCE_INTERVAL.describe(), "10ms..1h");
        assert_eq!(
            r.parse_delta("settings.approval_expiry", "2h").unwrap(),
            TimeDelta::hours(2)
        );
        let e = r
            .parse("settings.approval_expiry", "10000000y")
            .unwrap_err();
        assert!(
            e.contains("settings.approval_expiry = \"10000000y\""),
            "{e}"
        );
        assert!(e.contains("accepted 1m..7d"), "{e}");
        let e = r.parse("settings.approval_expiry", "soon").unwrap_err();
        assert!(e.contains("accepted 1m..7d"), "{e}");
        // humantime's own overflow is an error, not a panic
        assert!(r.parse("k", "99999999999999999999999y").is_err());
        assert!(
            check_count("max_attempts", 0u32, 1, 10)
                .unwrap_err()
                .contains("1..10")
        );
    }

    #[test]
    fn time_arithmetic_saturates() {
        let t: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(add_time(t, TimeDelta::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(sub_time(t, TimeDelta::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(add_time(t, TimeDelta::MIN), DateTime::<Utc>::MIN_UTC);
        assert_eq!(add_time(t, TimeDelta::hours(1)), t + TimeDelta::hours(1));
        assert!(mul_delta(TimeDelta::MAX, 2) <= TimeDelta::MAX);
        assert!(mul_delta(TimeDelta::MAX, 2) > TimeDelta::days(365 * 1_000_000));
        assert!(mul_delta(TimeDelta::MAX, -2) >= TimeDelta::MIN);
        assert!(mul_delta(TimeDelta::MAX, -2) < -TimeDelta::days(365 * 1_000_000));
        assert_eq!(mul_delta(TimeDelta::seconds(30), 4), TimeDelta::minutes(2));
    }

    #[test]
    fn key_lines() {
        let t = "a = 1\n[x]\nfor = \"1m\"\nname = \"P\"\n  for=\"2m\"\nm = { for = 3 }\n";
        assert_eq!(key_line(t, "for"), Some(3));
        assert_eq!(key_line_after(t, "\"P\"", "for"), Some(5));
        assert_eq!(key_line_from(t, t.find("m =").unwrap(), "for"), Some(6));
        assert_eq!(key_line(t, "name"), Some(4));
        assert_eq!(key_line(t, "nope"), None);
    }
}
