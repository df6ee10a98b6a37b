//! Runbook files as written: the serde specs of a runbook and of its
//! overrides (risk, approval, parameters, match, steps, verification,
//! preconditions). Checked and compiled into a `Runbook` by the parent.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// How an action of a runbook is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ApprovalSpec {
    /// `"auto"` or `"manual"`.
    Mode(ApprovalMode),
    /// `{ manual_at = "critical" }`: automatic below that severity, manual at
    /// or above it.
    Threshold { manual_at: Severity },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    Auto,
    Manual,
}

impl ApprovalSpec {
    /// Does an action at this severity need an operator?
    pub fn needs_human(self, severity: Severity) -> bool {
        match self {
            ApprovalSpec::Mode(ApprovalMode::Auto) => false,
            ApprovalSpec::Mode(ApprovalMode::Manual) => true,
            ApprovalSpec::Threshold { manual_at } => severity >= manual_at,
        }
    }

    pub fn describe(self) -> String {
        match self {
            ApprovalSpec::Mode(ApprovalMode::Auto) => "auto".into(),
            ApprovalSpec::Mode(ApprovalMode::Manual) => "manual".into(),
            ApprovalSpec::Threshold { manual_at } => format!("manual at {manual_at} and above"),
        }
    }
}

/// How many distinct operators must approve an action (four-eyes):
/// `approvals = N` with N from 1 to 5. Checked as the file is read, so a
/// wrong type or value is reported with its file and line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Approvals(u32);

impl Approvals {
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 5;

    /// `Some` when `n` is in range.
    pub fn new(n: u32) -> Option<Approvals> {
        (Self::MIN..=Self::MAX).contains(&n).then_some(Approvals(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Approvals {
    fn default() -> Self {
        Approvals(1)
    }
}

impl<'de> Deserialize<'de> for Approvals {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Approvals;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(
                    f,
                    "a whole number of approvals from {} to {}",
                    Approvals::MIN,
                    Approvals::MAX
                )
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Approvals, E> {
                u32::try_from(v)
                    .ok()
                    .and_then(Approvals::new)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "approvals = {v} is out of range; expected a whole number from {} to {} (distinct operators who must approve)",
                            Approvals::MIN,
                            Approvals::MAX
                        ))
                    })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Approvals, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ParamSource {
    /// An alert label (`label = "..."`, default: the parameter's name).
    #[default]
    Label,
    /// A fact of the target host: its labels in the inventory (`fact = "..."`).
    Host,
    /// Only the `default` value (or an operator's `--param`).
    Literal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(default)]
    pub source: ParamSource,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub fact: Option<String>,
    #[serde(default)]
    pub default: Option<String>,
    /// A regular expression the whole value must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The values accepted, when it is a closed set.
    #[serde(default, rename = "enum")]
    pub one_of: Option<Vec<String>>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// Alert names this runbook handles.
    #[serde(default)]
    pub alertname: Vec<String>,
    /// Label matchers the alert must also satisfy (`'mountpoint=~"/.*"'`).
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub name: String,
    /// The argument vector; `{param}` is replaced by that parameter's value,
    /// always inside one argument.
    pub argv: Vec<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    /// Discovery that changes nothing: may run in dry-run, labelled so.
    #[serde(default)]
    pub read_only: bool,
    /// Only run when these parameters have these values.
    #[serde(default)]
    pub when: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// How long after the run to look again (default `1m`).
    #[serde(default)]
    pub window: Option<String>,
    /// An optional command whose exit status 0 means verified; it runs on
    /// the host as the last step of the run (named "verify").
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The verify command's timeout (default `60s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// An optional URL that must answer 2xx within `timeout`; checked from
    /// the host with curl as a step named "verify http" (`{param}`s are
    /// substituted; the URL reaches curl as one argument).
    #[serde(default)]
    pub http: Option<String>,
    /// An optional PromQL expression that must return no series.
    #[serde(default)]
    pub promql: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Precondition {
    /// The parameter the precondition is about.
    pub param: String,
    /// The value must be one of the target host's `services` (when the
    /// inventory lists them).
    #[serde(default)]
    pub in_host_services: bool,
}

/// One runbook file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_risk")]
    pub risk: Risk,
    #[serde(rename = "match", default)]
    pub matches: MatchSpec,
    /// The alert label that names the target host (default `host`).
    #[serde(default)]
    pub target_label: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    #[serde(default)]
    pub approval: Option<ApprovalSpec>,
    /// Distinct operators who must approve (four-eyes; default 1).
    #[serde(default)]
    pub approvals: Option<Approvals>,
    #[serde(default)]
    pub cooldown: Option<String>,
    #[serde(default)]
    pub max_runs: Option<String>,
    /// Per parameter, glob patterns of values never acted on
    /// (`protected_target`) unless the config allows them.
    #[serde(default)]
    pub protected: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub preconditions: Vec<Precondition>,
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    #[serde(default)]
    pub verify: VerifySpec,
    #[serde(default)]
    pub rollback: Vec<StepSpec>,
}

fn default_risk() -> Risk {
    Risk::Medium
}

/// Per-runbook settings from the config file (`[runbooks.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunbookOverride {
    #[serde(default)]
    pub approval: Option<ApprovalSpec>,
    /// Distinct operators who must approve; wins over the runbook file and
    /// over `settings.approvals_by_risk`.
    #[serde(default)]
    pub approvals: Option<Approvals>,
    #[serde(default)]
    pub cooldown: Option<String>,
    #[serde(default)]
    pub max_runs: Option<String>,
    /// Values of protected parameters that this site allows after all.
    #[serde(default)]
    pub allow_protected: Vec<String>,
    #[serde(default)]
    pub verify_window: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Attempts before escalating (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Parameter defaults for this site.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}
