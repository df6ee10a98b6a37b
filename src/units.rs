//! Units written in config, runbook and scenario files: durations (`90s`,
//! `6h3m`), rates (`3/10m`) and the errors that explain what is accepted.

use std::fmt;
use std::time::Duration;

use chrono::TimeDelta;

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
}
