//! The LLM analyser: any OpenAI-compatible chat completions API (OpenAI,
//! DeepSeek, vLLM, Ollama, llama.cpp's server). It sends the same evidence
//! the heuristic sees, with secrets redacted, asks for one JSON object in
//! the analysis schema, streams the answer (SSE) and validates it strictly:
//! evidence must exist in the input, runbooks must exist in the catalog and
//! their parameters must pass their patterns. Any failure (timeout, HTTP
//! error, 429, malformed or invalid answer) falls back to the heuristic with
//! the reason.
//!
//! The model never produces commands: an answer that carries any is
//! rejected, and only runbook names and parameters are ever taken from it.

use std::time::Duration;

use serde_json::{Value, json};

use super::redact::redact_input;
use super::{Analyser, Analysis, AnalysisInput, Cause, Heuristic, Rejection, check};
use crate::runbook::{Catalog, ParamSource};

/// The default time an answer may take, start to end.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub use crate::config::analysis::{AnalysisSpec, LlmSpec};

/// Why the LLM's answer was not used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("rate limited by the provider (HTTP 429){0}")]
    RateLimited(String),
    #[error("the provider answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("cannot reach the provider: {0}")]
    Transport(String),
    #[error("the response is not a chat completion: {0}")]
    Protocol(String),
    #[error("the answer is not valid JSON in the schema: {0}")]
    Malformed(String),
    #[error("the answer contains commands ({0}); only runbook names are accepted")]
    Commands(String),
    #[error("the answer was rejected: {0}")]
    Rejected(#[from] Rejection),
    #[error("{0}")]
    Config(String),
}

/// A configured client.
#[derive(Debug, Clone)]
pub struct LlmClient {
    url: String,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
    stream: bool,
    http: reqwest::Client,
}

impl LlmClient {
    /// Builds the client; reads the key from the named environment variable.
    pub fn from_spec(spec: &LlmSpec) -> Result<LlmClient, LlmError> {
        let api_key = match &spec.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                LlmError::Config(format!(
                    "analysis.llm.api_key_env names {var}, which is not set in the environment"
                ))
            })?),
            None => None,
        };
        LlmClient::with_key(spec, api_key)
    }

    /// Builds the client with the key given directly.
    pub fn with_key(spec: &LlmSpec, api_key: Option<String>) -> Result<LlmClient, LlmError> {
        let base = spec.base_url.trim().trim_end_matches('/');
        let url = if base.ends_with("/chat/completions") {
            base.to_string()
        } else {
            format!("{base}/chat/completions")
        };
        let timeout = match &spec.timeout {
            Some(t) => crate::units::parse_delta(t)
                .ok()
                .and_then(|d| d.to_std().ok())
                .ok_or_else(|| {
                    LlmError::Config(format!("analysis.llm.timeout = {t:?} is not a duration"))
                })?,
            None => DEFAULT_TIMEOUT,
        };
        // The whole call, streamed answer included, is bounded by `timeout`
        // in `ask`, so the client itself has only the connect limit.
        let http = crate::net::client(crate::net::HttpOptions {
            connect_timeout: timeout,
            timeout: None,
            pool_idle_timeout: None,
            unix_socket: None,
            tls: None,
        })
        .map_err(LlmError::Config)?;
        Ok(LlmClient {
            url,
            model: spec.model.clone(),
            api_key,
            timeout,
            stream: spec.stream.unwrap_or(true),
            http,
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Asks the model; `on_text` receives the answer's text as it streams.
    /// The result is validated against `input` and `catalog`.
    pub async fn analyse(
        &self,
        input: &AnalysisInput,
        catalog: &Catalog,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Analysis, LlmError> {
        let body = request_body(&self.model, input, catalog, self.stream);
        let text = tokio::time::timeout(self.timeout, self.complete(&body, on_text))
            .await
            .map_err(|_| LlmError::Timeout(self.timeout))??;
        parse_answer(&text, input, catalog)
    }

    async fn complete(
        &self,
        body: &Value,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<String, LlmError> {
        let mut req = self.http.post(&self.url).json(body);
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| LlmError::Transport(e.without_url().to_string()))?;
        let status = resp.status();
        if status.as_u16() == 429 {
            let after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(|v| format!("; retry after {v}s"))
                .unwrap_or_default();
            return Err(LlmError::RateLimited(after));
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(LlmError::Http {
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            });
        }
        let is_sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
        if !is_sse {
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| LlmError::Transport(e.without_url().to_string()))?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| LlmError::Protocol(format!("not JSON: {e}")))?;
            let text = v
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .ok_or_else(|| LlmError::Protocol("no choices[0].message.content".into()))?;
            on_text(text);
            return Ok(text.to_string());
        }
        let mut sse = SseText::default();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| LlmError::Transport(e.without_url().to_string()))?
        {
            for delta in sse.feed(&chunk)? {
                on_text(&delta);
            }
            if sse.done {
                break;
            }
        }
        Ok(sse.text)
    }
}

/// Reads an SSE stream of chat completion chunks: `data: {...}` lines,
/// ended by `data: [DONE]`.
#[derive(Debug, Default)]
pub struct SseText {
    buf: Vec<u8>,
    pub text: String,
    pub done: bool,
}

impl SseText {
    /// Feeds bytes; returns the new pieces of text.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, LlmError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let Some(data) = line.strip_prefix("data:") else {
                continue; // comments, event names, blank separators
            };
            let data = data.trim();
            if data == "[DONE]" {
                self.done = true;
                break;
            }
            let v: Value = serde_json::from_str(data)
                .map_err(|e| LlmError::Protocol(format!("an SSE event is not JSON: {e}")))?;
            if let Some(err) = v.get("error") {
                return Err(LlmError::Protocol(format!(
                    "the stream carried an error: {err}"
                )));
            }
            if let Some(d) = v
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                && !d.is_empty()
            {
                self.text.push_str(d);
                out.push(d.to_string());
            }
        }
        Ok(out)
    }
}

/// The instructions: the schema, the causes, the catalog with parameters.
pub fn system_prompt(catalog: &Catalog) -> String {
    let mut runbooks = String::new();
    for rb in catalog.runbooks.iter().filter(|r| r.enabled) {
        let params: Vec<String> = rb
            .params
            .iter()
            .map(|p| {
                let src = match p.spec.source {
                    ParamSource::Label => "from a label value in the input",
                    ParamSource::Host => "from the host's facts",
                    ParamSource::Literal => "a literal",
                };
                format!(
                    "{} ({src}; pattern {})",
                    p.name,
                    p.spec.pattern.as_deref().unwrap_or("any")
                )
            })
            .collect();
        runbooks.push_str(&format!(
            "- {}: {} Handles alerts: {}. Parameters: {}\n",
            rb.name(),
            rb.spec.description,
            rb.spec.matches.alertname.join(", "),
            if params.is_empty() {
                "none".into()
            } else {
                params.join("; ")
            }
        ));
    }
    format!(
        "You are a root-cause analyst for an on-call engineer. You get one alert and what was known when it fired: \
the host's series history, related alerts, recent decision records, maintenance windows. Explain the likely cause.\n\
Answer with ONE JSON object and nothing else, with exactly these keys:\n\
{{\"summary\": one line, \"cause\": one of [{causes}], \"confidence\": number 0..1, \
\"evidence\": [{{\"kind\": \"series\"|\"alert\"|\"record\"|\"window\"|\"label\", \"signal\": ..., \"value\": string, \"at\": RFC 3339 time or null, \"note\": short text}}], \
\"runbooks\": [{{\"runbook\": name, \"params\": {{name: value}}, \"why\": short text}}], \"would_change\": [short texts]}}\n\
Evidence must point at items of the input exactly: series (signal = the series key, value = a point's value, at = that point's time), \
alert (signal = alert name, value = its host, at = its since), record (signal = its kind, value = its seq, at = its time), \
window (signal = its reason, value = its schedule, at = its start), label (signal = the key of an alert or host label, value = its value, at = null).\n\
Recommend runbooks only from this catalog, best first, or an empty list when no runbook fixes the cause (then a human must act); \
never write shell commands. Use \"unknown\" with low confidence when the input does not support a conclusion.\n\
For a resource that fills (disk, memory, connections) the message ends with weighed facts computed from the input: the capacity \
(size, used, growth per hour, seconds until full, how much must be freed to clear the alert) and each contributor's growth and \
share of the resource's growth over the same window. Rank causes by those shares: a contributor explaining less than \
meaningful_share of the growth is not the cause, and when none does the cause is \"unknown\". Never recommend a runbook whose \
runbook_capacity says it does not cover the need. Answers that contradict these facts are rejected.\n\
Catalog:\n{runbooks}",
        causes = Cause::list()
    )
}

/// The chat completions request body (the input redacted).
pub fn request_body(model: &str, input: &AnalysisInput, catalog: &Catalog, stream: bool) -> Value {
    let mut red = redact_input(input);
    // The weighed facts, from the redacted input before it is thinned (the
    // same figures: only secret-looking label values differ).
    let facts = super::assess::prompt_facts(&red, catalog);
    // Long histories are thinned: the first, the last and evenly spaced points.
    for s in &mut red.series {
        if s.points.len() > 60 {
            let n = s.points.len();
            let keep: Vec<_> = (0..60).map(|i| s.points[i * (n - 1) / 59]).collect();
            s.points = keep;
        }
    }
    let mut user = serde_json::to_string(&red).unwrap_or_default();
    if !facts.is_null() {
        user.push_str(
            "\n\nWeighed facts (computed from the input; the answer is checked against them): ",
        );
        user.push_str(&facts.to_string());
    }
    json!({
        "model": model,
        "stream": stream,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": system_prompt(catalog)},
            {"role": "user", "content": user},
        ],
    })
}

/// Keys that would carry commands; an answer holding any is rejected.
const COMMAND_KEYS: [&str; 7] = [
    "command", "commands", "argv", "script", "shell", "exec", "steps",
];

fn find_command_key(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            if COMMAND_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                Some(k.clone())
            } else {
                find_command_key(x)
            }
        }),
        Value::Array(a) => a.iter().find_map(find_command_key),
        _ => None,
    }
}

/// Parses and validates the model's text.
pub fn parse_answer(
    text: &str,
    input: &AnalysisInput,
    catalog: &Catalog,
) -> Result<Analysis, LlmError> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .map(|x| x.trim_end().trim_end_matches("```"))
        .unwrap_or(t)
        .trim();
    let v: Value = serde_json::from_str(t).map_err(|e| {
        LlmError::Malformed(format!(
            "{e} (answer starts {:?})",
            t.chars().take(60).collect::<String>()
        ))
    })?;
    if let Some(k) = find_command_key(&v) {
        return Err(LlmError::Commands(k));
    }
    let a: Analysis = serde_json::from_value(v).map_err(|e| LlmError::Malformed(e.to_string()))?;
    Ok(check(a, input, catalog)?)
}

/// What an LLM analysis ended in: its result, or the heuristic's with why.
#[derive(Debug, Clone)]
pub struct LlmOutcome {
    pub analysis: Analysis,
    /// Set when the heuristic's result is used instead.
    pub fallback: Option<String>,
}

/// Asks the model; on any failure returns the heuristic's analysis and the
/// reason.
pub async fn analyse_or_fallback(
    client: &LlmClient,
    heuristic: &Heuristic,
    input: &AnalysisInput,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> LlmOutcome {
    match client.analyse(input, heuristic.catalog(), on_text).await {
        Ok(analysis) => LlmOutcome {
            analysis,
            fallback: None,
        },
        Err(e) => LlmOutcome {
            analysis: heuristic.analyse(input),
            fallback: Some(e.to_string()),
        },
    }
}
