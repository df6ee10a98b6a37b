//! HTTP clients for the servers on-call engineers already run: the
//! Alertmanager API v2 (alerts, silences) and the Prometheus HTTP API v1
//! (alerts, instant and range queries). Every call has a time limit; errors
//! say which server, which call and what went wrong.
//!
//! Talks HTTP only; turns answers into Vigil's types, decides nothing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{AlertStatus, IncomingAlert, Labels, Time, fingerprint};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{server}: {call}: {source}")]
    Http {
        server: String,
        call: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{server}: {call}: HTTP {status}: {body}")]
    Status {
        server: String,
        call: String,
        status: u16,
        body: String,
    },
    #[error("{server}: {call}: unexpected answer: {why}")]
    Answer {
        server: String,
        call: String,
        why: String,
    },
}

struct Base {
    name: String,
    url: String,
    /// The client, or why it could not be built (every call then fails
    /// with that reason: never a client without time limits).
    http: Result<reqwest::Client, String>,
}

impl Base {
    fn new(name: &str, url: &str, timeout: Duration) -> Base {
        let http = crate::net::http_client(timeout).map_err(|e| {
            tracing::error!(source = name, "{e}");
            e.to_string()
        });
        Base {
            name: name.to_string(),
            url: url.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// The HTTP client, or an error naming why there is none.
    fn client(&self, call: &str) -> Result<&reqwest::Client, ClientError> {
        self.http.as_ref().map_err(|why| ClientError::Answer {
            server: self.name.clone(),
            call: call.to_string(),
            why: format!("no HTTP client: {why}"),
        })
    }

    async fn send(&self, call: &str, req: reqwest::RequestBuilder) -> Result<String, ClientError> {
        let http = |source| ClientError::Http {
            server: self.name.clone(),
            call: call.to_string(),
            source,
        };
        let resp = req.send().await.map_err(http)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(http)?;
        if !(200..300).contains(&status) {
            return Err(ClientError::Status {
                server: self.name.clone(),
                call: call.into(),
                status,
                body: body.chars().take(300).collect(),
            });
        }
        Ok(body)
    }

    fn decode<T: for<'a> Deserialize<'a>>(&self, call: &str, body: &str) -> Result<T, ClientError> {
        serde_json::from_str(body).map_err(|e| ClientError::Answer {
            server: self.name.clone(),
            call: call.into(),
            why: e.to_string(),
        })
    }
}

/// One matcher of an Alertmanager silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence as Alertmanager lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: Time,
    pub ends_at: Time,
    pub created_by: String,
    pub comment: String,
    pub status: SilenceStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceStatus {
    /// `active`, `pending` or `expired`.
    pub state: String,
}

/// Matchers that select exactly the alert with these labels.
pub fn matchers_for(labels: &Labels) -> Vec<SilenceMatcher> {
    labels
        .iter()
        .map(|(k, v)| SilenceMatcher {
            name: k.clone(),
            value: v.clone(),
            is_regex: false,
            is_equal: true,
        })
        .collect()
}

/// The Alertmanager API v2.
pub struct AlertmanagerClient {
    base: Base,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmAlert {
    labels: Labels,
    #[serde(default)]
    annotations: Labels,
    #[serde(default)]
    fingerprint: String,
    #[serde(default)]
    starts_at: Option<Time>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
    status: AmAlertStatus,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmAlertStatus {
    state: String,
    #[serde(default)]
    silenced_by: Vec<String>,
    #[serde(default)]
    inhibited_by: Vec<String>,
}

impl Silence {
    /// The silence as the engine matches it.
    pub fn to_upstream(&self) -> crate::engine::UpstreamSilence {
        crate::engine::UpstreamSilence {
            id: self.id.clone(),
            matchers: self
                .matchers
                .iter()
                .map(|m| crate::engine::UpstreamMatcher {
                    name: m.name.clone(),
                    value: m.value.clone(),
                    is_regex: m.is_regex,
                    is_equal: m.is_equal,
                })
                .collect(),
            starts_at: self.starts_at,
            // Alertmanager moves endsAt to the moment a silence is expired.
            ends_at: self.ends_at,
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
        }
    }
}

impl AlertmanagerClient {
    pub fn new(name: &str, url: &str, timeout: Duration) -> AlertmanagerClient {
        AlertmanagerClient {
            base: Base::new(name, url, timeout),
        }
    }

    pub fn name(&self) -> &str {
        &self.base.name
    }

    /// `GET /api/v2/alerts`: the active and suppressed alerts, as firing.
    pub async fn alerts(&self) -> Result<Vec<IncomingAlert>, ClientError> {
        Ok(self
            .alerts_with_state()
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .collect())
    }

    /// `GET /api/v2/alerts`, each alert with what suppresses it (`silencedBy`,
    /// `inhibitedBy`) when Alertmanager reports it `suppressed`.
    pub async fn alerts_with_state(
        &self,
    ) -> Result<Vec<(IncomingAlert, Option<crate::engine::Suppressed>)>, ClientError> {
        let call = "GET /api/v2/alerts";
        let body = self
            .base
            .send(
                call,
                self.base
                    .client(call)?
                    .get(format!("{}/api/v2/alerts", self.base.url)),
            )
            .await?;
        let list: Vec<AmAlert> = self.base.decode(call, &body)?;
        Ok(list
            .into_iter()
            .filter(|a| a.status.state != "unprocessed")
            .map(|a| {
                let suppressed =
                    (a.status.state == "suppressed").then(|| crate::engine::Suppressed {
                        silenced_by: a.status.silenced_by.clone(),
                        inhibited_by: a.status.inhibited_by.clone(),
                    });
                (
                    IncomingAlert {
                        fingerprint: Some(if a.fingerprint.is_empty() {
                            fingerprint(&a.labels)
                        } else {
                            a.fingerprint
                        }),
                        labels: a.labels,
                        annotations: a.annotations,
                        status: AlertStatus::Firing,
                        starts_at: a.starts_at,
                        ends_at: None,
                        source: Some(self.base.name.clone()),
                        generator_url: (!a.generator_url.is_empty()).then_some(a.generator_url),
                    },
                    suppressed,
                )
            })
            .collect())
    }

    /// `POST /api/v2/silences`; returns the new silence's id.
    pub async fn create_silence(
        &self,
        matchers: Vec<SilenceMatcher>,
        starts_at: Time,
        ends_at: Time,
        created_by: &str,
        comment: &str,
    ) -> Result<String, ClientError> {
        let call = "POST /api/v2/silences";
        let body = serde_json::json!({
            "matchers": matchers,
            "startsAt": crate::model::fmt_time(&starts_at),
            "endsAt": crate::model::fmt_time(&ends_at),
            "createdBy": created_by,
            "comment": comment,
        });
        let text = self
            .base
            .send(
                call,
                self.base
                    .client(call)?
                    .post(format!("{}/api/v2/silences", self.base.url))
                    .json(&body),
            )
            .await?;
        #[derive(Deserialize)]
        struct Created {
            #[serde(rename = "silenceID")]
            id: String,
        }
        Ok(self.base.decode::<Created>(call, &text)?.id)
    }

    /// `GET /api/v2/silences`.
    pub async fn silences(&self) -> Result<Vec<Silence>, ClientError> {
        let call = "GET /api/v2/silences";
        let body = self
            .base
            .send(
                call,
                self.base
                    .client(call)?
                    .get(format!("{}/api/v2/silences", self.base.url)),
            )
            .await?;
        self.base.decode(call, &body)
    }

    /// `DELETE /api/v2/silence/{id}`: expires the silence.
    pub async fn expire_silence(&self, id: &str) -> Result<(), ClientError> {
        let call = "DELETE /api/v2/silence";
        let mut url =
            reqwest::Url::parse(&format!("{}/api/v2/silence/", self.base.url)).map_err(|e| {
                ClientError::Answer {
                    server: self.base.name.clone(),
                    call: call.into(),
                    why: e.to_string(),
                }
            })?;
        url.path_segments_mut()
            .map_err(|_| ClientError::Answer {
                server: self.base.name.clone(),
                call: call.into(),
                why: "the base URL cannot have a path".into(),
            })?
            .pop_if_empty()
            .push(id);
        self.base
            .send(call, self.base.client(call)?.delete(url))
            .await?;
        Ok(())
    }
}

/// The Prometheus HTTP API v1.
pub struct PrometheusClient {
    base: Base,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct PromEnvelope<T> {
    status: String,
    #[serde(default)]
    data: Option<T>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct PromAlerts {
    alerts: Vec<PromAlert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromAlert {
    labels: Labels,
    #[serde(default)]
    annotations: Labels,
    state: String,
    #[serde(default)]
    active_at: Option<Time>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromData {
    result_type: String,
    result: serde_json::Value,
}

/// One series of a query answer: its labels and `(unix seconds, value)`
/// points (one for an instant query).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesValues {
    pub labels: Labels,
    pub points: Vec<(f64, f64)>,
}

fn point(v: &serde_json::Value) -> Option<(f64, f64)> {
    let a = v.as_array()?;
    let t = a.first()?.as_f64()?;
    let x = a.get(1)?.as_str()?.parse::<f64>().ok()?;
    Some((t, x))
}

impl PrometheusClient {
    pub fn new(name: &str, url: &str, timeout: Duration) -> PrometheusClient {
        PrometheusClient {
            base: Base::new(name, url, timeout),
        }
    }

    pub fn name(&self) -> &str {
        &self.base.name
    }

    async fn get<T: for<'a> Deserialize<'a>>(
        &self,
        call: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base.url)).map_err(|e| {
            ClientError::Answer {
                server: self.base.name.clone(),
                call: call.into(),
                why: format!("bad URL: {e}"),
            }
        })?;
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        let req = self.base.client(call)?.get(url);
        let body = match self.base.send(call, req).await {
            Ok(b) => b,
            // Prometheus answers query errors with 400/422 and a JSON error.
            Err(ClientError::Status { body, status, .. })
                if (400..500).contains(&status) && body.contains("\"error\"") =>
            {
                body
            }
            Err(e) => return Err(e),
        };
        let env: PromEnvelope<T> = self.base.decode(call, &body)?;
        match (env.status.as_str(), env.data) {
            ("success", Some(d)) => Ok(d),
            _ => Err(ClientError::Answer {
                server: self.base.name.clone(),
                call: call.into(),
                why: env
                    .error
                    .unwrap_or_else(|| format!("status {}", env.status)),
            }),
        }
    }

    /// `GET /api/v1/alerts`: the firing alerts (pending ones are left out).
    pub async fn alerts(&self) -> Result<Vec<IncomingAlert>, ClientError> {
        let d: PromAlerts = self
            .get("GET /api/v1/alerts", "/api/v1/alerts", &[])
            .await?;
        Ok(d.alerts
            .into_iter()
            .filter(|a| a.state == "firing")
            .map(|a| IncomingAlert {
                fingerprint: Some(fingerprint(&a.labels)),
                labels: a.labels,
                annotations: a.annotations,
                status: AlertStatus::Firing,
                starts_at: a.active_at,
                ends_at: None,
                source: Some(self.base.name.clone()),
                generator_url: None,
            })
            .collect())
    }

    fn series(&self, call: &str, d: PromData) -> Result<Vec<SeriesValues>, ClientError> {
        let bad = |why: String| ClientError::Answer {
            server: self.base.name.clone(),
            call: call.into(),
            why,
        };
        let items = d
            .result
            .as_array()
            .ok_or_else(|| bad(format!("{} result is not a list", d.result_type)))?;
        let mut out = Vec::new();
        for it in items {
            let labels: Labels = it
                .get("metric")
                .and_then(|m| serde_json::from_value(m.clone()).ok())
                .unwrap_or_default();
            let points = match (it.get("value"), it.get("values")) {
                (Some(v), _) => point(v).into_iter().collect(),
                (_, Some(vs)) => vs
                    .as_array()
                    .map(|a| a.iter().filter_map(point).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            out.push(SeriesValues { labels, points });
        }
        Ok(out)
    }

    /// `GET /api/v1/query`: an instant vector.
    pub async fn query(&self, promql: &str) -> Result<Vec<SeriesValues>, ClientError> {
        let call = "GET /api/v1/query";
        let d: PromData = self
            .get(call, "/api/v1/query", &[("query", promql.to_string())])
            .await?;
        self.series(call, d)
    }

    /// `GET /api/v1/query_range` from `start` to `end` every `step`.
    pub async fn query_range(
        &self,
        promql: &str,
        start: Time,
        end: Time,
        step: Duration,
    ) -> Result<Vec<SeriesValues>, ClientError> {
        let call = "GET /api/v1/query_range";
        let d: PromData = self
            .get(
                call,
                "/api/v1/query_range",
                &[
                    ("query", promql.to_string()),
                    ("start", start.timestamp().to_string()),
                    ("end", end.timestamp().to_string()),
                    ("step", format!("{}s", step.as_secs().max(1))),
                ],
            )
            .await?;
        self.series(call, d)
    }

    /// The last six hours of `promql` at a 1-minute step: the context of an
    /// alert for the detail pane and the analyser.
    pub async fn context(&self, promql: &str, now: Time) -> Result<Vec<SeriesValues>, ClientError> {
        self.query_range(
            promql,
            now - chrono::TimeDelta::hours(6),
            now,
            Duration::from_secs(60),
        )
        .await
    }
}
