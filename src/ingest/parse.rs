//! Parsers for what arrives over HTTP: Alertmanager webhook payloads
//! (version 4) and ingest metrics (`{name, value, tags, timestamp?}` or an
//! array of them). Every error names the field and says what is accepted.
//!
//! Pure functions over bytes: no I/O, no clock, no engine access.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::model::{AlertStatus, IncomingAlert, KeyedSample, Labels, SeriesKey, Time};

/// At most this many labels (or tags, or annotations) per object.
pub const MAX_LABELS: usize = 128;
/// At most this many bytes per label name.
pub const MAX_LABEL_NAME: usize = 256;
/// At most this many bytes per label value.
pub const MAX_LABEL_VALUE: usize = 16 * 1024;

/// Why a body was refused; `status` is the HTTP status to answer with.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadInput {
    /// 400 (not JSON), 413 (too large), 422 (JSON of the wrong shape).
    #[serde(skip)]
    pub status: u16,
    /// Where in the body: `alerts[1].status`, `[3].value`, `body`.
    pub field: String,
    pub message: String,
    /// What would have been accepted.
    pub accepted: String,
}

impl BadInput {
    pub fn new(status: u16, field: &str, message: impl Into<String>, accepted: &str) -> BadInput {
        BadInput {
            status,
            field: field.into(),
            message: message.into(),
            accepted: accepted.into(),
        }
    }
}

/// Labels as a JSON object of strings: duplicate names, too many labels and
/// oversized names or values are refused instead of silently kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrictLabels(pub Labels);

impl<'de> Deserialize<'de> for StrictLabels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictLabels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<StrictLabels, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(k) = m.next_key::<String>()? {
                    check_label_name(out.len(), &k)?;
                    let v: String = m.next_value()?;
                    check_label_value(&k, &v, out.contains_key(&k))?;
                    out.insert(k, v);
                }
                Ok(StrictLabels(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The label name checks: the count of labels before this one, the name.
fn check_label_name<E: de::Error>(before: usize, k: &str) -> Result<(), E> {
    if before >= MAX_LABELS {
        return Err(E::custom(format!(
            "more than {MAX_LABELS} labels; accepted: at most {MAX_LABELS}"
        )));
    }
    if k.is_empty() || k.len() > MAX_LABEL_NAME {
        return Err(E::custom(format!(
            "label name {:?} must be 1 to {MAX_LABEL_NAME} bytes",
            truncate(k, 40)
        )));
    }
    Ok(())
}

/// The label value checks; `repeated` when the name was seen already.
fn check_label_value<E: de::Error>(k: &str, v: &str, repeated: bool) -> Result<(), E> {
    if v.len() > MAX_LABEL_VALUE {
        return Err(E::custom(format!(
            "label {k:?} has a value over {MAX_LABEL_VALUE} bytes"
        )));
    }
    if repeated {
        return Err(E::custom(format!(
            "label {k:?} appears twice; each name once"
        )));
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// One alert of a webhook payload, every field Alertmanager sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: WireStatus,
    pub labels: StrictLabels,
    #[serde(default)]
    pub annotations: StrictLabels,
    pub starts_at: WireTime,
    #[serde(default)]
    pub ends_at: Option<WireTime>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

/// `firing` or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireStatus {
    Firing,
    Resolved,
}

impl From<WireStatus> for AlertStatus {
    fn from(s: WireStatus) -> AlertStatus {
        match s {
            WireStatus::Firing => AlertStatus::Firing,
            WireStatus::Resolved => AlertStatus::Resolved,
        }
    }
}

/// An RFC 3339 time; Go's zero time (`0001-01-01T00:00:00Z`) means unset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireTime(pub Option<Time>);

impl<'de> Deserialize<'de> for WireTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let t = chrono::DateTime::parse_from_rfc3339(&s).map_err(|_| {
            de::Error::custom(format!(
                "{:?} is not an RFC 3339 time such as \"2026-11-22T20:54:30.814Z\"",
                truncate(&s, 60)
            ))
        })?;
        let t = t.with_timezone(&chrono::Utc);
        // Go's zero time, and anything before year 2, is "unset".
        Ok(WireTime((t.timestamp() > -62_000_000_000).then_some(t)))
    }
}

/// A webhook body (payload version 4).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: WireStatus,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: StrictLabels,
    #[serde(default)]
    pub common_labels: StrictLabels,
    #[serde(default)]
    pub common_annotations: StrictLabels,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<WebhookAlert>,
}

impl WebhookPayload {
    /// The alerts as the engine takes them, attributed to `source`.
    pub fn incoming(&self, source: &str) -> Vec<IncomingAlert> {
        self.alerts
            .iter()
            .map(|a| IncomingAlert {
                labels: a.labels.0.clone(),
                annotations: a.annotations.0.clone(),
                status: a.status.into(),
                fingerprint: (!a.fingerprint.is_empty()).then(|| a.fingerprint.clone()),
                starts_at: a.starts_at.0,
                ends_at: a.ends_at.and_then(|t| t.0),
                source: Some(source.to_string()),
                generator_url: (!a.generator_url.is_empty()).then(|| a.generator_url.clone()),
            })
            .collect()
    }
}

/// Parses a webhook body.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookPayload, BadInput> {
    let p: WebhookPayload = parse_json(body, WEBHOOK_ACCEPTED)?;
    if p.version != "4" {
        return Err(BadInput::new(
            422,
            "version",
            format!(
                "payload version {:?} is not supported",
                truncate(&p.version, 20)
            ),
            "version \"4\" (Alertmanager 0.16 and later)",
        ));
    }
    for (i, a) in p.alerts.iter().enumerate() {
        if a.labels.0.is_empty() {
            return Err(BadInput::new(
                422,
                &format!("alerts[{i}].labels"),
                "an alert needs at least one label",
                "an object with alertname and the alert's labels",
            ));
        }
    }
    Ok(p)
}

const WEBHOOK_ACCEPTED: &str = "an Alertmanager webhook body: {\"version\":\"4\",\"status\":\"firing\"|\"resolved\",\"alerts\":[{\"status\",\"labels\",\"annotations\",\"startsAt\",\"endsAt\",\"fingerprint\"}],...}";
const INGEST_ACCEPTED: &str = "{\"name\": METRIC, \"value\": NUMBER, \"tags\": {LABEL: STRING}, \"timestamp\"?: UNIX_SECONDS|RFC3339} or an array of them";

/// One metric of the ingest API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestMetric {
    pub name: String,
    pub value: f64,
    #[serde(default)]
    pub tags: StrictLabels,
    #[serde(default)]
    pub timestamp: Option<IngestTime>,
}

/// A sample time: Unix seconds (a number) or an RFC 3339 string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestTime(pub Time);

impl<'de> Deserialize<'de> for IngestTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<'a> {
            N(f64),
            S(std::borrow::Cow<'a, str>),
        }
        let bad = || {
            de::Error::custom(
                "expected Unix seconds (a number) or an RFC 3339 time such as \"2026-11-22T20:54:30Z\"",
            )
        };
        match Raw::deserialize(d).map_err(|_| bad())? {
            Raw::N(n) if n.is_finite() && (0.0..1e11).contains(&n) => {
                let secs = n.trunc() as i64;
                let nanos = ((n - n.trunc()) * 1e9) as u32;
                chrono::DateTime::from_timestamp(secs, nanos)
                    .map(IngestTime)
                    .ok_or_else(bad)
            }
            Raw::S(s) => chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| IngestTime(t.with_timezone(&chrono::Utc)))
                .map_err(|_| bad()),
            Raw::N(_) => Err(bad()),
        }
    }
}

/// True for a Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn metric_name_ok(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
        && s.len() <= MAX_LABEL_NAME
}

/// Parses an ingest body: one metric or an array of them. An empty array
/// is refused (nothing to evaluate is a client mistake).
pub fn parse_ingest(body: &[u8]) -> Result<Vec<IngestMetric>, BadInput> {
    Ok(parse_ingest_keyed(body)?
        .into_iter()
        .map(|m| IngestMetric {
            name: m.key.name().to_string(),
            value: m.value,
            tags: StrictLabels(m.key.to_labels()),
            timestamp: m.timestamp,
        })
        .collect())
}

/// [`parse_ingest`] into series keys: what the ingest API sends the hub.
/// The same checks and errors.
pub fn parse_ingest_keyed(body: &[u8]) -> Result<Vec<KeyedMetric>, BadInput> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let metrics = match first {
        Some(b'[') => parse_json::<Vec<KeyedMetric>>(body, INGEST_ACCEPTED)?,
        Some(b'{') => vec![parse_json::<KeyedMetric>(body, INGEST_ACCEPTED)?],
        Some(_) => {
            // Let the JSON parser say what is wrong where.
            return Err(match serde_json::from_slice::<serde_json::Value>(body) {
                Err(e) => BadInput::new(400, "body", e.to_string(), INGEST_ACCEPTED),
                Ok(_) => BadInput::new(
                    422,
                    "body",
                    "expected an object or an array of objects",
                    INGEST_ACCEPTED,
                ),
            });
        }
        None => {
            return Err(BadInput::new(
                400,
                "body",
                "the body is empty",
                INGEST_ACCEPTED,
            ));
        }
    };
    if metrics.is_empty() {
        return Err(BadInput::new(
            422,
            "body",
            "the array is empty",
            INGEST_ACCEPTED,
        ));
    }
    let array = first == Some(b'[');
    for (i, m) in metrics.iter().enumerate() {
        let name = m.key.name();
        if !metric_name_ok(name) {
            let field = if array {
                format!("[{i}].name")
            } else {
                "name".into()
            };
            return Err(BadInput::new(
                422,
                &field,
                format!("{:?} is not a metric name", truncate(name, 60)),
                "a Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*",
            ));
        }
    }
    Ok(metrics)
}

/// One metric of the ingest API with its series as a [`SeriesKey`]: parsed
/// from borrowed strings where the JSON has no escapes, tags checked like
/// [`StrictLabels`], one allocation per metric.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedMetric {
    pub key: SeriesKey,
    pub value: f64,
    pub timestamp: Option<IngestTime>,
}

impl KeyedMetric {
    pub fn into_sample(self) -> KeyedSample {
        KeyedSample {
            key: self.key,
            value: self.value,
        }
    }
}

/// A string borrowed from the body when it has no escapes.
struct CowStr<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Tags as [`StrictLabels`] checks them, kept as borrowed pairs.
struct Tags<'de>(Vec<(Cow<'de, str>, Cow<'de, str>)>);

impl<'de> Deserialize<'de> for Tags<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tags<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Tags<'de>, A::Error> {
                let mut out: Vec<(Cow<'de, str>, Cow<'de, str>)> = Vec::new();
                while let Some(CowStr(k)) = m.next_key::<CowStr<'de>>()? {
                    check_label_name(out.len(), &k)?;
                    let CowStr(v) = m.next_value::<CowStr<'de>>()?;
                    check_label_value(&k, &v, out.iter().any(|(seen, _)| *seen == k))?;
                    out.push((k, v));
                }
                Ok(Tags(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for KeyedMetric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const FIELDS: &[&str] = &["name", "value", "tags", "timestamp"];
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "lowercase")]
        enum Field {
            Name,
            Value,
            Tags,
            Timestamp,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyedMetric;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object {name, value, tags, timestamp}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<KeyedMetric, A::Error> {
                let mut name: Option<Cow<'de, str>> = None;
                let mut value: Option<f64> = None;
                let mut tags: Option<Tags<'de>> = None;
                let mut timestamp: Option<Option<IngestTime>> = None;
                while let Some(f) = m.next_key::<Field>()? {
                    match f {
                        Field::Name if name.is_some() => {
                            return Err(de::Error::duplicate_field("name"));
                        }
                        Field::Name => name = Some(m.next_value::<CowStr<'de>>()?.0),
                        Field::Value if value.is_some() => {
                            return Err(de::Error::duplicate_field("value"));
                        }
                        Field::Value => value = Some(m.next_value()?),
                        Field::Tags if tags.is_some() => {
                            return Err(de::Error::duplicate_field("tags"));
                        }
                        Field::Tags => tags = Some(m.next_value()?),
                        Field::Timestamp if timestamp.is_some() => {
                            return Err(de::Error::duplicate_field("timestamp"));
                        }
                        Field::Timestamp => timestamp = Some(m.next_value()?),
                    }
                }
                let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
                let value = value.ok_or_else(|| de::Error::missing_field("value"))?;
                let mut tags = tags.map(|t| t.0).unwrap_or_default();
                tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                Ok(KeyedMetric {
                    key: SeriesKey::new(&name, tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))),
                    value,
                    timestamp: timestamp.flatten(),
                })
            }
        }
        d.deserialize_struct("IngestMetric", FIELDS, V)
    }
}

/// Parses JSON into `T`; on failure parses again tracking the path so the
/// error names the field (the fast path pays nothing for it).
pub fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8], accepted: &str) -> Result<T, BadInput> {
    match serde_json::from_slice::<T>(body) {
        Ok(v) => Ok(v),
        Err(e) => {
            let status = match e.classify() {
                serde_json::error::Category::Data => 422,
                _ => 400,
            };
            let mut de = serde_json::Deserializer::from_slice(body);
            let (field, message) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(pe) => {
                    let path = pe.path().to_string();
                    let field = if path == "." || path.is_empty() {
                        "body".to_string()
                    } else {
                        path.trim_start_matches('.').to_string()
                    };
                    (field, pe.into_inner().to_string())
                }
                Ok(_) => ("body".to_string(), e.to_string()),
            };
            Err(BadInput::new(status, &field, message, accepted))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_parse_gives_the_same_series_as_labels() {
        // Escaped strings are owned, plain ones borrowed: the same keys.
        let body = br#"[{"tags":{"mountpoint":"/v\u0061r","host":"web-1"},"value":3,"name":"disk_used_percent"},
                        {"name":"disk_used_percent","value":4,"tags":{"host":"web-1","mountpoint":"/var"}},
                        {"name":"up","value":1}]"#;
        let keyed = parse_ingest_keyed(body).unwrap();
        assert_eq!(keyed.len(), 3);
        assert_eq!(keyed[0].key, keyed[1].key);
        assert_eq!(keyed[0].value, 3.0);
        let plain = parse_ingest(body).unwrap();
        for (k, p) in keyed.iter().zip(&plain) {
            assert_eq!(k.key, SeriesKey::of(&p.name, &p.tags.0));
        }
        assert_eq!(keyed[2].key.name(), "up");
        assert!(keyed[2].key.to_labels().is_empty());
        let e = parse_ingest_keyed(br#"{"name":"c","value":1,"extra":2}"#).unwrap_err();
        assert_eq!((e.status, e.field.as_str()), (422, "extra"), "{e:?}");
        let e = parse_ingest_keyed(br#"{"value":1}"#).unwrap_err();
        assert!(e.message.contains("missing field `name`"), "{e:?}");
        let e = parse_ingest_keyed(br#"{"name":"c","value":1,"tags":{"a":"1","b":"2","a":"3"}}"#)
            .unwrap_err();
        // The map is named, and the message names the label.
        assert_eq!(e.field, "tags", "{e:?}");
        assert!(e.message.contains("\"a\" appears twice"), "{e:?}");
    }

    #[test]
    fn ingest_errors_name_the_field() {
        let e = parse_ingest(br#"{"name":"cpu","value":"high"}"#).unwrap_err();
        assert_eq!((e.status, e.field.as_str()), (422, "value"), "{e:?}");
        let e =
            parse_ingest(br#"[{"name":"cpu","value":1},{"name":"cpu","value":1,"tags":{"a":1}}]"#)
                .unwrap_err();
        assert_eq!((e.status, e.field.as_str()), (422, "[1].tags.a"), "{e:?}");
        let e = parse_ingest(br#"{"name":"cpu","value":1"#).unwrap_err();
        assert_eq!(e.status, 400);
        let e = parse_ingest(br#"{"name":"9cpu","value":1}"#).unwrap_err();
        assert_eq!((e.status, e.field.as_str()), (422, "name"));
        let e = parse_ingest(br#"{"name":"c","value":1,"tags":{"a":"1","a":"2"}}"#).unwrap_err();
        assert!(e.message.contains("twice"), "{e:?}");
        let m = parse_ingest(br#"{"name":"c","value":1.5,"timestamp":1700000000.5}"#).unwrap();
        assert_eq!(m[0].timestamp.unwrap().0.timestamp(), 1_700_000_000);
    }
}
