//! `[analysis]` in the config file: whether the heuristic runs and the
//! LLM to ask, as data with its checks. The analysers themselves are
//! `crate::analysis`'s.

use serde::{Deserialize, Serialize};

/// `[analysis.llm]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSpec {
    /// The API base, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    /// The name of the environment variable that holds the API key (none
    /// for local servers that need no key).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Start-to-end limit of one answer (default `30s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Stream the answer (default true).
    #[serde(default)]
    pub stream: Option<bool>,
}

/// `[analysis]` in the config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSpec {
    /// Run the heuristic analyser on every alert (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub llm: Option<LlmSpec>,
}

impl AnalysisSpec {
    /// Every problem, as (text to find the line by, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let Some(l) = &self.llm else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let url = l.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || reqwest::Url::parse(url).is_err()
        {
            out.push((
                "base_url =".into(),
                format!(
                    "analysis.llm.base_url = {url:?} is not an http(s) URL; expected e.g. \"https://api.openai.com/v1\" or \"http://127.0.0.1:11434/v1\""
                ),
            ));
        }
        if l.model.trim().is_empty() {
            out.push((
                "model =".into(),
                "analysis.llm.model is empty; expected the model name, e.g. \"gpt-4o-mini\"".into(),
            ));
        }
        if let Some(v) = &l.api_key_env
            && (v.is_empty()
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || v.starts_with(|c: char| c.is_ascii_digit()))
        {
            // The value is not echoed: it may be a key pasted by mistake.
            out.push((
                "api_key_env =".into(),
                "analysis.llm.api_key_env is not an environment variable name (letters, digits and _); expected e.g. \"OPENAI_API_KEY\": the variable's name, never the key itself".into(),
            ));
        }
        if let Some(t) = &l.timeout {
            match crate::units::parse_delta(t) {
                Ok(d) if d > chrono::TimeDelta::zero() && d <= chrono::TimeDelta::minutes(10) => {}
                Ok(_) => out.push((
                    "timeout =".into(),
                    format!("analysis.llm.timeout = {t:?} is out of range; expected more than 0s and at most 10m"),
                )),
                Err(e) => out.push(("timeout =".into(), format!("analysis.llm.timeout: {e}"))),
            }
        }
        out
    }
}
