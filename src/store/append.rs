//! Appending records: the hash chain, the tag index and, in the same
//! transaction, the derived state; rebuilding that state from the trail.

use super::*;

impl Store {
    /// The seq and hash of the newest record (0 and [`GENESIS_PREV`] when the
    /// trail is empty).
    pub fn head(&self) -> Result<(u64, String), StoreError> {
        head(&self.conn).map_err(self.err("read the newest audit record"))
    }

    /// The newest record's seq (0 when the trail is empty).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self.head()?.0)
    }

    /// Numbers `records` (continuing after the newest stored record), chains
    /// their hashes, writes them and the derived state in one transaction and
    /// returns once it is committed. `at` is kept as given. On error nothing
    /// was written and the records' `seq` are as they were.
    pub fn append(&mut self, records: &mut [Record]) -> Result<(), StoreError> {
        self.append_serialised(records, None)
    }

    /// [`Store::append`] of records whose
    /// [`Record::canonical_json_after_seq`] the caller already made (one per
    /// record, in order): the writer thread then only numbers and chains.
    pub(crate) fn append_serialised(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let refuse = self.read_only_error();
        let res = guarded_append(records, refuse, |records| {
            self.append_tx(records, after_seq)
        });
        if res.is_err() {
            // Ids the rolled-back transaction assigned are not in the file.
            self.names.clear();
        }
        res
    }

    fn append_tx(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let Store {
            conn, path, names, ..
        } = self;
        let what = "append audit records";
        let e = || sql_err(path, what);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e())?;
        let (mut seq, mut prev) = head(&tx).map_err(e())?;
        let mut derived = DerivedBatch::default();
        let mut tags = Vec::with_capacity(records.len() * 4);
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO audit (seq, at, kind, runbook, target, actor, action_id, json, prev, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(e())?;
            for (i, r) in records.iter_mut().enumerate() {
                seq += 1;
                r.seq = seq;
                let json = match after_seq.and_then(|a| a.get(i)) {
                    Some(after) => canonical_json_with_seq(seq, after),
                    None => r.canonical_json(),
                };
                let hash = chain_hash(&prev, &json);
                ins.execute(params![
                    seq as i64,
                    fmt_time(&r.at),
                    r.kind.as_str(),
                    r.runbook,
                    r.target,
                    r.actor,
                    r.action_id,
                    json,
                    prev,
                    hash,
                ])
                .map_err(e())?;
                for (col, value) in tag_values(r).into_iter().enumerate() {
                    if let Some(value) = value {
                        tags.push((
                            seq >> schema::BUCKET_SHIFT,
                            names.id(&tx, col, value).map_err(e())?,
                            seq,
                        ));
                    }
                }
                apply_derived(&tx, r, &mut derived).map_err(e())?;
                prev = hash;
            }
        }
        insert_tags(&tx, &mut tags).map_err(e())?;
        derived.flush(&tx).map_err(e())?;
        tx.execute(
            "INSERT INTO chain_head (id, seq, hash) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            params![seq as i64, prev],
        )
        .map_err(e())?;
        tx.commit().map_err(e())
    }

    /// Recomputes the derived tables from the audit trail (recovery, or after
    /// a migration that adds derived state).
    pub fn rebuild_state(&mut self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
                what: "rebuild the derived state",
            });
        }
        let path = self.path.clone();
        let e = || sql_err(&path, "rebuild the derived state");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e())?;
        tx.execute_batch(
            "DELETE FROM actions; DELETE FROM breakers; DELETE FROM alerts;
             DELETE FROM modes; DELETE FROM action_starts; DELETE FROM silences;",
        )
        .map_err(e())?;
        let mut derived = DerivedBatch::default();
        {
            let mut stmt = tx
                .prepare("SELECT seq, json FROM audit ORDER BY seq")
                .map_err(e())?;
            let mut rows = stmt.query([]).map_err(e())?;
            while let Some(row) = rows.next().map_err(e())? {
                let seq: i64 = row.get(0).map_err(e())?;
                let json: String = row.get(1).map_err(e())?;
                let mut rec: Record =
                    serde_json::from_str(&json).map_err(|err| StoreError::Corrupt {
                        path: path.clone(),
                        seq: seq as u64,
                        why: format!("stored JSON is not a record: {err}"),
                    })?;
                rec.seq = seq as u64;
                apply_derived(&tx, &rec, &mut derived).map_err(e())?;
                if derived.actions.len() >= DerivedBatch::MAX_PENDING {
                    derived.flush(&tx).map_err(e())?;
                }
            }
        }
        derived.flush(&tx).map_err(e())?;
        tx.commit().map_err(e())
    }
}

pub(super) fn head(conn: &Connection) -> rusqlite::Result<(u64, String)> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((seq, hash)) => (seq.max(0) as u64, hash),
        None => (0, GENESIS_PREV.to_string()),
    })
}

/// A record's values of [`schema::TAG_COLS`], in that order.
fn tag_values(r: &Record) -> [Option<&str>; 4] {
    [
        Some(r.kind.as_str()),
        r.runbook.as_deref(),
        r.target.as_deref(),
        r.actor.as_deref(),
    ]
}

/// The writer's memory of `audit_names` ids, one map per tag column. Ids
/// are never reused or changed once committed; a failed transaction clears
/// the maps, since ids it assigned were rolled back.
#[derive(Default)]
pub(super) struct NameIds {
    cols: [std::collections::HashMap<String, i64>; 4],
}

impl NameIds {
    /// Invented label values must not grow the maps without bound: a full
    /// map starts over (the ids stay in the file).
    const MAX_PER_COL: usize = 65_536;

    fn clear(&mut self) {
        self.cols
            .iter_mut()
            .for_each(std::collections::HashMap::clear);
    }

    /// The id of `name` in column `col`, numbering it if it is new.
    fn id(&mut self, tx: &Connection, col: usize, name: &str) -> rusqlite::Result<i64> {
        if let Some(&id) = self.cols[col].get(name) {
            return Ok(id);
        }
        let id = match name_id(tx, col, name)? {
            Some(id) => id,
            None => {
                tx.prepare_cached("INSERT INTO audit_names (col, name) VALUES (?1, ?2)")?
                    .execute(params![schema::TAG_COLS[col], name])?;
                tx.last_insert_rowid()
            }
        };
        let map = &mut self.cols[col];
        if map.len() >= Self::MAX_PER_COL {
            map.clear();
        }
        map.insert(name.to_string(), id);
        Ok(id)
    }
}

/// Writes a transaction's `audit_tags` rows (tag id, seq) in key order,
/// many rows per statement: a statement per row cost more than the b-tree
/// work itself.
fn insert_tags(tx: &Connection, tags: &mut [(u64, i64, u64)]) -> rusqlite::Result<()> {
    tags.sort_unstable();
    let mut rest = &tags[..];
    for rows in [256usize, 32, 4, 1] {
        if rest.len() < rows {
            continue;
        }
        let mut sql = String::from("INSERT INTO audit_tags (bucket, tag, seq) VALUES ");
        for i in 0..rows {
            let sep = if i == 0 { "" } else { "," };
            let (t, q) = (2 * i + 1, 2 * i + 2);
            let _ = write!(sql, "{sep}(?{q} >> {}, ?{t}, ?{q})", schema::BUCKET_SHIFT);
        }
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut args: Vec<i64> = Vec::with_capacity(2 * rows);
        while rest.len() >= rows {
            let (now, later) = rest.split_at(rows);
            args.clear();
            for &(_, tag, seq) in now {
                args.extend([tag, seq as i64]);
            }
            stmt.execute(rusqlite::params_from_iter(args.iter()))?;
            rest = later;
        }
    }
    Ok(())
}
