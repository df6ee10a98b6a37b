//! The backend-neutral parts of reading a trail: checking the hash chain
//! row by row and writing a record as an export line. SQLite and PostgreSQL
//! feed the same rows through them, so `audit verify` and `audit export`
//! give the same answers on both.

use super::{BadRecord, GENESIS_PREV, VerifyReport, chain_hash_into, json_seq};

/// Checks rows handed in seq order, then the chain head.
pub(crate) struct ChainCheck {
    report: VerifyReport,
    last_hash: [u8; 64],
    computed: [u8; 64],
    last_seq: i64,
}

impl ChainCheck {
    pub(crate) fn new() -> ChainCheck {
        let mut last_hash = [0u8; 64];
        last_hash.copy_from_slice(GENESIS_PREV.as_bytes());
        ChainCheck {
            report: VerifyReport {
                records: 0,
                first_bad: None,
            },
            last_hash,
            computed: [0u8; 64],
            last_seq: 0,
        }
    }

    /// Checks the next row (`None` for a column that is not text). False
    /// once a bad record was found: the caller stops reading.
    pub(crate) fn row(
        &mut self,
        seq: i64,
        json: Option<&str>,
        prev: Option<&str>,
        hash: Option<&str>,
    ) -> bool {
        let last_seq = self.last_seq;
        let bad = |why: String| BadRecord {
            seq: seq as u64,
            why,
        };
        self.report.records += 1;
        if seq != last_seq + 1 {
            let missing = (last_seq + 1) as u64;
            let why = if seq > last_seq + 1 {
                if missing + 1 == seq as u64 {
                    format!(
                        "record {missing} is missing (the trail jumps from {last_seq} to {seq})"
                    )
                } else {
                    format!(
                        "records {missing} to {} are missing (the trail jumps from {last_seq} to {seq})",
                        seq - 1
                    )
                }
            } else {
                format!("unexpected seq {seq} after {last_seq}")
            };
            self.report.first_bad = Some(BadRecord { seq: missing, why });
            return false;
        }
        self.last_seq = seq;
        let (Some(json), Some(prev), Some(hash)) = (json, prev, hash) else {
            self.report.first_bad = Some(bad("a column is not text".into()));
            return false;
        };
        if prev.as_bytes() != self.last_hash {
            self.report.first_bad = Some(bad(if seq == 1 {
                "the first record's prev is not the genesis value (records before it were removed?)"
                    .into()
            } else {
                format!(
                    "prev does not match the hash of record {} (a record was removed, reordered or altered)",
                    seq - 1
                )
            }));
            return false;
        }
        match json_seq(json) {
            Some(s) if s == seq as u64 => {}
            Some(s) => {
                self.report.first_bad = Some(bad(format!(
                    "its JSON says seq {s} (records were reordered or moved)"
                )));
                return false;
            }
            None => {
                self.report.first_bad = Some(bad("its JSON has no valid seq".into()));
                return false;
            }
        }
        chain_hash_into(prev.as_bytes(), json.as_bytes(), &mut self.computed);
        if hash.as_bytes() != self.computed {
            self.report.first_bad = Some(bad(
                "hash does not match its content (the record or its hash was altered)".into(),
            ));
            return false;
        }
        self.last_hash = self.computed;
        true
    }

    /// The report so far, when a row was bad (the head is not checked then).
    pub(crate) fn stopped(&self) -> Option<VerifyReport> {
        self.report.first_bad.as_ref().map(|_| self.report.clone())
    }

    /// Checks the chain head (written with every append; `None` when there
    /// is none) against the last row and returns the report.
    pub(crate) fn finish(mut self, head: Option<(i64, String)>) -> VerifyReport {
        if self.report.first_bad.is_some() {
            return self.report;
        }
        let last_seq = self.last_seq;
        self.report.first_bad = match head {
            None if last_seq > 0 => Some(BadRecord {
                seq: last_seq as u64,
                why: "the chain head is missing".into(),
            }),
            None => None,
            Some((hs, _)) if hs > last_seq => {
                let missing = (last_seq + 1) as u64;
                Some(BadRecord {
                    seq: missing,
                    why: if hs as u64 == missing {
                        format!("record {missing} (the newest) is missing")
                    } else {
                        format!("records {missing} to {hs} (the newest) are missing")
                    },
                })
            }
            Some((hs, _)) if hs < last_seq => Some(BadRecord {
                seq: (hs + 1) as u64,
                why: format!("records after {hs} were added outside vigil"),
            }),
            Some((hs, hh)) if hh.as_bytes() != self.last_hash => Some(BadRecord {
                seq: hs as u64,
                why: "the newest record does not match the chain head (altered)".into(),
            }),
            Some(_) => None,
        };
        self.report
    }
}

/// Makes `line` the export line of one stored record: its fields plus
/// `prev` and `hash`, newline-terminated. Err when the JSON is not an object.
pub(crate) fn export_line(
    line: &mut String,
    json: &str,
    prev: String,
    hash: String,
) -> Result<(), String> {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|err| format!("stored JSON is not an object: {err}"))?;
    line.clear();
    let body = json.trim_end();
    match body.strip_suffix('}') {
        // Keep the record's own field order: splice prev and hash in.
        Some(body) if !map.contains_key("prev") && !map.contains_key("hash") => {
            line.push_str(body);
            if !map.is_empty() {
                line.push(',');
            }
            line.push_str("\"prev\":");
            line.push_str(&serde_json::Value::String(prev).to_string());
            line.push_str(",\"hash\":");
            line.push_str(&serde_json::Value::String(hash).to_string());
            line.push('}');
        }
        _ => {
            map.insert("prev".into(), prev.into());
            map.insert("hash".into(), hash.into());
            line.push_str(&serde_json::Value::Object(map).to_string());
        }
    }
    line.push('\n');
    Ok(())
}
