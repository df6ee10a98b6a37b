//! The domain vocabulary shared by every part of Vigil: labels, severities,
//! samples, alerts, actions and the records of the decision log / audit trail.
//!
//! Plain data only: no I/O, no clock reads, no policy decisions.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A label set, ordered so that it hashes, prints and serialises the same way
/// every time.
pub type Labels = BTreeMap<String, String>;

/// Time as the engine sees it: always passed in, never read from a clock.
pub type Time = DateTime<Utc>;

/// Formats a time the way every record and log line shows it: RFC 3339, UTC,
/// second precision unless sub-second digits are present.
pub fn fmt_time(t: &Time) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// How bad an alert is. Ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Warning,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses the severity words used by Vigil and by common Prometheus rule
    /// sets (`page`, `error`, `major` and friends map onto the nearest level).
    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" | "informational" | "none" | "low" => Some(Severity::Info),
            "warning" | "warn" | "minor" => Some(Severity::Warning),
            "high" | "error" | "major" => Some(Severity::High),
            "critical" | "crit" | "page" | "fatal" | "disaster" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A series (metric name and labels) as one flat byte string: the name,
/// then each label in name order, every string preceded by its length (u32,
/// little-endian). Equal series have equal keys, so a known series is found
/// with one hash and one comparison, and a sample costs one allocation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey(Box<[u8]>);

impl SeriesKey {
    /// `labels` must be in name order without repeated names (as a
    /// [`Labels`] map iterates, or as the ingest parser sorts them).
    pub fn new<'a>(
        name: &str,
        labels: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> SeriesKey {
        let mut b = Vec::new();
        Self::encode(&mut b, name, labels);
        SeriesKey(b.into_boxed_slice())
    }

    /// Writes the key of a series into `b` (cleared first), so that a known
    /// series can be looked up without an allocation.
    pub fn encode<'a>(
        b: &mut Vec<u8>,
        name: &str,
        labels: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) {
        let len = 4
            + name.len()
            + labels
                .clone()
                .into_iter()
                .map(|(k, v)| 8 + k.len() + v.len())
                .sum::<usize>();
        b.clear();
        b.reserve_exact(len);
        let mut put = |s: &str| {
            // Label names and values are bounded far below 4 GiB.
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        };
        put(name);
        for (k, v) in labels {
            put(k);
            put(v);
        }
    }

    /// [`SeriesKey::encode`] for a [`Labels`] map.
    pub fn encode_into(b: &mut Vec<u8>, name: &str, labels: &Labels) {
        Self::encode(
            b,
            name,
            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }

    /// A key from what [`SeriesKey::encode`] wrote.
    pub(crate) fn from_encoded(b: &[u8]) -> SeriesKey {
        SeriesKey(b.into())
    }

    pub fn of(name: &str, labels: &Labels) -> SeriesKey {
        SeriesKey::new(name, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The strings in order: the name, then label name, label value, ...
    fn parts(&self) -> impl Iterator<Item = &str> + '_ {
        let mut rest: &[u8] = &self.0;
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let (s, tail) = tail.split_at_checked(len)?;
            rest = tail;
            // Built from &str only: always UTF-8.
            std::str::from_utf8(s).ok()
        })
    }

    pub fn name(&self) -> &str {
        self.parts().next().unwrap_or_default()
    }

    /// The labels in name order.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut p = self.parts().skip(1);
        std::iter::from_fn(move || Some((p.next()?, p.next()?)))
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn to_labels(&self) -> Labels {
        self.labels()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The encoded bytes (what equality and hashing look at).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The empty key (no name, no labels; allocates nothing): marks a freed
    /// slot in dense tables.
    pub fn empty() -> SeriesKey {
        SeriesKey(Box::default())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?}", self.name(), self.to_labels())
    }
}

/// A sample whose series is given by its [`SeriesKey`] (the ingest API's
/// form: cheap to parse into and to look up).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedSample {
    pub key: SeriesKey,
    pub value: f64,
}

/// One metric sample as it enters the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub name: String,
    pub value: f64,
    #[serde(default)]
    pub labels: Labels,
}

/// Where an alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOrigin {
    /// Raised by one of Vigil's own policies.
    Policy,
    /// Evaluated elsewhere (Alertmanager, Prometheus) and delivered to Vigil.
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// An alert that arrives already evaluated (Alertmanager webhook, poller,
/// scenario `alert = {...}` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingAlert {
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    pub status: AlertStatus,
    /// The sender's fingerprint, when it has one; otherwise Vigil derives one
    /// from the labels.
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub starts_at: Option<Time>,
    #[serde(default)]
    pub ends_at: Option<Time>,
    /// Which source delivered it (for the status bar and the audit trail).
    #[serde(default)]
    pub source: Option<String>,
    /// The rule that raised it, as Alertmanager passes it on
    /// (`generatorURL`: Prometheus' graph link with the rule's expression).
    #[serde(default)]
    pub generator_url: Option<String>,
}

/// A stable fingerprint of a label set: FNV-1a 64 over `name=value` pairs in
/// order, printed as 16 hex digits (the same shape as Alertmanager's).
pub fn fingerprint(labels: &Labels) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (k, v) in labels {
        eat(k.as_bytes());
        eat(&[0xff]);
        eat(v.as_bytes());
        eat(&[0xfe]);
    }
    format!("{h:016x}")
}

/// Identifies one action: the engine hands them out in order.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ActionId(pub u64);

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A{:06}", self.0)
    }
}

impl ActionId {
    /// Parses `A000042` or `42`.
    pub fn parse(s: &str) -> Option<ActionId> {
        let digits = s.strip_prefix('A').unwrap_or(s);
        digits.parse().ok().map(ActionId)
    }
}

/// Where an action is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Matched, guards not yet passed.
    Proposed,
    /// A guard said no; it may clear (window ends, cooldown passes, unfreeze).
    Blocked,
    /// Waiting for an operator.
    AwaitingApproval,
    /// Approved and about to start (or waiting for a retry slot).
    Approved,
    /// A step is running on the target.
    Running,
    /// Finished; waiting for the verification window to end.
    Verifying,
    /// Waiting for a retry after a failed run or verification.
    RetryWaiting,
    /// Verified, or planned in dry-run: nothing more to do.
    Done,
    Rejected,
    Expired,
    /// Gave up and handed to a human.
    Escalated,
    /// The alert went away before the action ran.
    Cancelled,
    /// Was running when Vigil stopped; waits for a human.
    Interrupted,
}

impl ActionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Proposed => "proposed",
            ActionState::Blocked => "blocked",
            ActionState::AwaitingApproval => "awaiting_approval",
            ActionState::Approved => "approved",
            ActionState::Running => "running",
            ActionState::Verifying => "verifying",
            ActionState::RetryWaiting => "retry_waiting",
            ActionState::Done => "done",
            ActionState::Rejected => "rejected",
            ActionState::Expired => "expired",
            ActionState::Escalated => "escalated",
            ActionState::Cancelled => "cancelled",
            ActionState::Interrupted => "interrupted",
        }
    }

    /// True once nothing more will happen to the action by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ActionState::Done
                | ActionState::Rejected
                | ActionState::Expired
                | ActionState::Escalated
                | ActionState::Cancelled
        )
    }

    /// True while the action occupies its runbook@target (duplicate guard).
    pub fn is_open(self) -> bool {
        !self.is_final() && self != ActionState::Interrupted
    }

    /// True while the action counts against the blast radius: from its start
    /// until its verification ends.
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            ActionState::Running | ActionState::Verifying | ActionState::RetryWaiting
        )
    }
}

/// The kinds of record in the decision log and the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Signal,
    AlertFiring,
    AlertResolved,
    Rca,
    RunbookMatched,
    ActionProposed,
    ActionBlocked,
    ApprovalRequested,
    ActionApproved,
    ActionRejected,
    ActionExpired,
    ActionCancelled,
    DryRunPlanned,
    ActionStarted,
    ActionSucceeded,
    ActionFailed,
    RetryScheduled,
    VerificationPassed,
    VerificationFailed,
    CircuitOpened,
    CircuitClosed,
    Escalated,
    ActionInterrupted,
    ModeChanged,
    SilenceCreated,
    SilenceExpired,
    ServiceStarted,
    ServiceStopped,
}

impl RecordKind {
    pub const ALL: [RecordKind; 28] = [
        RecordKind::Signal,
        RecordKind::AlertFiring,
        RecordKind::AlertResolved,
        RecordKind::Rca,
        RecordKind::RunbookMatched,
        RecordKind::ActionProposed,
        RecordKind::ActionBlocked,
        RecordKind::ApprovalRequested,
        RecordKind::ActionApproved,
        RecordKind::ActionRejected,
        RecordKind::ActionExpired,
        RecordKind::ActionCancelled,
        RecordKind::DryRunPlanned,
        RecordKind::ActionStarted,
        RecordKind::ActionSucceeded,
        RecordKind::ActionFailed,
        RecordKind::RetryScheduled,
        RecordKind::VerificationPassed,
        RecordKind::VerificationFailed,
        RecordKind::CircuitOpened,
        RecordKind::CircuitClosed,
        RecordKind::Escalated,
        RecordKind::ActionInterrupted,
        RecordKind::ModeChanged,
        RecordKind::SilenceCreated,
        RecordKind::SilenceExpired,
        RecordKind::ServiceStarted,
        RecordKind::ServiceStopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Signal => "signal",
            RecordKind::AlertFiring => "alert_firing",
            RecordKind::AlertResolved => "alert_resolved",
            RecordKind::Rca => "rca",
            RecordKind::RunbookMatched => "runbook_matched",
            RecordKind::ActionProposed => "action_proposed",
            RecordKind::ActionBlocked => "action_blocked",
            RecordKind::ApprovalRequested => "approval_requested",
            RecordKind::ActionApproved => "action_approved",
            RecordKind::ActionRejected => "action_rejected",
            RecordKind::ActionExpired => "action_expired",
            RecordKind::ActionCancelled => "action_cancelled",
            RecordKind::DryRunPlanned => "dry_run_planned",
            RecordKind::ActionStarted => "action_started",
            RecordKind::ActionSucceeded => "action_succeeded",
            RecordKind::ActionFailed => "action_failed",
            RecordKind::RetryScheduled => "retry_scheduled",
            RecordKind::VerificationPassed => "verification_passed",
            RecordKind::VerificationFailed => "verification_failed",
            RecordKind::CircuitOpened => "circuit_opened",
            RecordKind::CircuitClosed => "circuit_closed",
            RecordKind::Escalated => "escalated",
            RecordKind::ActionInterrupted => "action_interrupted",
            RecordKind::ModeChanged => "mode_changed",
            RecordKind::SilenceCreated => "silence_created",
            RecordKind::SilenceExpired => "silence_expired",
            RecordKind::ServiceStarted => "service_started",
            RecordKind::ServiceStopped => "service_stopped",
        }
    }

    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a guard stopped an action (`action_blocked.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    MaintenanceWindow,
    RateLimited,
    CircuitOpen,
    ProtectedTarget,
    PreconditionFailed,
    Frozen,
    Duplicate,
    ConcurrencyLimit,
    ParamInvalid,
    NoExecutor,
}

impl BlockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::MaintenanceWindow => "maintenance_window",
            BlockReason::RateLimited => "rate_limited",
            BlockReason::CircuitOpen => "circuit_open",
            BlockReason::ProtectedTarget => "protected_target",
            BlockReason::PreconditionFailed => "precondition_failed",
            BlockReason::Frozen => "frozen",
            BlockReason::Duplicate => "duplicate",
            BlockReason::ConcurrencyLimit => "concurrency_limit",
            BlockReason::ParamInvalid => "param_invalid",
            BlockReason::NoExecutor => "no_executor",
        }
    }

    /// True when the block can clear by itself (time passes, a slot frees);
    /// false when only a human or a new alert can change it.
    pub fn may_clear(self) -> bool {
        matches!(
            self,
            BlockReason::MaintenanceWindow
                | BlockReason::RateLimited
                | BlockReason::Frozen
                | BlockReason::Duplicate
                | BlockReason::ConcurrencyLimit
        )
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who did something: an operator's identity, or `vigil` for automatic steps.
pub const ACTOR_VIGIL: &str = "vigil";

/// One entry of the decision log / audit trail. Fields a kind does not need
/// are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    #[serde(with = "rfc3339")]
    pub at: Time,
    pub kind: RecordKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Anything else a kind carries (a plan, candidates, evidence...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Record {
    /// A record of `kind` at `at`, every optional field empty, `seq` 0 (the
    /// store or the replayer numbers records).
    pub fn new(kind: RecordKind, at: Time) -> Record {
        Record {
            seq: 0,
            at,
            kind,
            alert: None,
            fingerprint: None,
            severity: None,
            runbook: None,
            target: None,
            action_id: None,
            actor: None,
            reason: None,
            detail: None,
            params: None,
            labels: None,
            value: None,
            attempt: None,
            exit_code: None,
            data: None,
        }
    }

    /// The canonical JSON of the record: the bytes the audit hash covers.
    pub fn canonical_json(&self) -> String {
        // Field order is the struct's; maps are BTreeMaps; so the output is
        // deterministic. Serialising plain data cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// [`Record::canonical_json`] without its leading `{"seq":N`: the part
    /// that does not depend on the number the store gives the record, so
    /// that callers can serialise before the store numbers it.
    /// [`canonical_json_with_seq`] puts the two together.
    pub fn canonical_json_after_seq(&self) -> String {
        let mut json = self.canonical_json();
        let digits = json.strip_prefix(SEQ_PREFIX).map_or(0, |rest| {
            rest.bytes().take_while(u8::is_ascii_digit).count()
        });
        json.drain(..SEQ_PREFIX.len() + digits);
        json
    }

    /// One line for people: `seq at kind key=value ...`.
    pub fn summary(&self) -> String {
        let mut s = format!("{:>6} {} {:<20}", self.seq, fmt_time(&self.at), self.kind);
        let mut push = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                s.push_str(&format!(" {k}={}", clean(v)));
            }
        };
        push("alert", &self.alert);
        push("runbook", &self.runbook);
        push("target", &self.target);
        push("action", &self.action_id);
        push("actor", &self.actor);
        push("reason", &self.reason);
        push("detail", &self.detail);
        s
    }
}

/// Only what can be shown of a value from outside: control characters
/// escaped, so a label can never move the cursor or fake a line; a value
/// without them is shown as it is (quotes stay quotes).
pub fn clean(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.escape_debug().to_string()
    } else {
        s.to_string()
    }
}

/// How every record's canonical JSON starts: `seq` is its first field.
const SEQ_PREFIX: &str = "{\"seq\":";

/// The canonical JSON of a record numbered `seq` whose
/// [`Record::canonical_json_after_seq`] is `after_seq`.
pub fn canonical_json_with_seq(seq: u64, after_seq: &str) -> String {
    let mut json = String::with_capacity(SEQ_PREFIX.len() + 20 + after_seq.len());
    json.push_str(SEQ_PREFIX);
    let _ = std::fmt::Write::write_fmt(&mut json, format_args!("{seq}"));
    json.push_str(after_seq);
    json
}

mod rfc3339 {
    use super::Time;
    use chrono::SecondsFormat;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Time, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let s = String::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keys_round_trip_and_differ_when_series_differ() {
        let mut l = Labels::new();
        l.insert("host".into(), "web-1".into());
        l.insert("path".into(), "a\u{0}b=\"c\",d".into());
        l.insert("z".into(), String::new());
        let k = SeriesKey::of("disk_used_percent", &l);
        assert_eq!(k.name(), "disk_used_percent");
        assert_eq!(k.to_labels(), l);
        assert_eq!(k.label("host"), Some("web-1"));
        assert_eq!(k.label("nope"), None);
        assert_eq!(SeriesKey::of("disk_used_percent", &l.clone()), k);
        // Boundaries are lengths, not separators: moving bytes between a
        // name and a value, or between labels, gives another key.
        let one = SeriesKey::new("m", [("a", "bc")]);
        let two = SeriesKey::new("m", [("ab", "c")]);
        let three = SeriesKey::new("ma", [("b", "c")]);
        assert!(one != two && two != three && one != three);
        assert_ne!(SeriesKey::new("m", []), SeriesKey::new("m", [("", "")]));
        assert!(SeriesKey::new("m", []).to_labels().is_empty());
    }

    #[test]
    fn record_json_leaves_out_empty_fields_and_uses_utc() {
        let at = "2026-03-01T02:19:00Z".parse::<Time>().unwrap();
        let mut r = Record::new(RecordKind::ActionBlocked, at);
        r.seq = 7;
        r.reason = Some("maintenance_window".into());
        assert_eq!(
            r.canonical_json(),
            r#"{"seq":7,"at":"2026-03-01T02:19:00Z","kind":"action_blocked","reason":"maintenance_window"}"#
        );
        let back: Record = serde_json::from_str(&r.canonical_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn json_serialised_before_numbering_is_the_canonical_json() {
        let mut r = Record::new(
            RecordKind::ActionStarted,
            "2026-03-01T02:19:00Z".parse().unwrap(),
        );
        r.detail = Some("{\"seq\":9} \\ \u{2028} \"quoted\"".into());
        r.params = Some(BTreeMap::from([("seq".to_string(), "1".to_string())]));
        for before in [0, 7, 12345] {
            r.seq = before;
            let after = r.canonical_json_after_seq();
            assert!(after.starts_with(",\"at\":"), "{after}");
            for seq in [1, 10, u64::MAX] {
                r.seq = seq;
                assert_eq!(canonical_json_with_seq(seq, &after), r.canonical_json());
                r.seq = before;
            }
        }
    }

    #[test]
    fn summary_escapes_control_characters_and_leaves_quotes() {
        let mut r = Record::new(
            RecordKind::ActionBlocked,
            "2026-03-01T02:19:00Z".parse().unwrap(),
        );
        r.seq = 3;
        r.target = Some("web-1\nfake 00:00 action_succeeded\u{1b}[2J".into());
        r.detail = Some("group \"web\" is busy".into());
        let line = r.summary();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(
            line.contains(r"target=web-1\nfake 00:00 action_succeeded\u{1b}[2J"),
            "{line}"
        );
        assert!(line.ends_with(r#"detail=group "web" is busy"#), "{line}");
    }

    #[test]
    fn fingerprint_depends_on_every_label() {
        let mut a = Labels::new();
        a.insert("alertname".into(), "X".into());
        let mut b = a.clone();
        b.insert("host".into(), "h".into());
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_eq!(fingerprint(&a).len(), 16);
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
    }
}

/// A map whose keys are not strings, as a JSON list of `[key, value]`
/// pairs (`#[serde(with = "crate::model::map_as_pairs")]`).
pub mod map_as_pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        m: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Vec::<(K, V)>::deserialize(d).map(|v| v.into_iter().collect())
    }
}
