//! Verifying the chain and exporting the trail as JSON lines.

use super::*;

impl Store {
    /// Walks the whole trail in seq order, recomputing every hash, and
    /// reports the first record that was altered, removed or reordered.
    /// Checks per record, in order: seq continuity (a gap names the first
    /// missing seq), `prev` against the previous record's hash, the JSON's
    /// own `seq` against the row, and the recomputed hash. The chain head
    /// (written with every append) catches records removed from the end.
    /// The filter columns (`kind`, `target`, ...) are copies for the indexes
    /// and are not checked; the JSON is what the hash covers. Streams rows;
    /// memory use does not grow with the trail.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let e = || self.err("read the audit trail");
        // One read transaction: the rows and the chain head are one snapshot
        // even while a writer appends.
        let tx = self.conn.unchecked_transaction().map_err(e())?;
        let mut check = chain::ChainCheck::new();
        {
            let mut stmt = tx
                .prepare("SELECT seq, json, prev, hash FROM audit ORDER BY seq")
                .map_err(e())?;
            let mut rows = stmt.query([]).map_err(e())?;
            while let Some(row) = rows.next().map_err(e())? {
                let seq: i64 = row.get(0).map_err(e())?;
                let text = |i: usize| -> Result<Option<&str>, StoreError> {
                    Ok(row.get_ref(i).map_err(e())?.as_str().ok())
                };
                if !check.row(seq, text(1)?, text(2)?, text(3)?) {
                    break;
                }
            }
        }
        if let Some(report) = check.stopped() {
            return Ok(report);
        }
        let head: Option<(i64, String)> = tx
            .query_row("SELECT seq, hash FROM chain_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(e())?;
        Ok(check.finish(head))
    }

    /// Writes the records with seq greater than `since` (all when `None`) as
    /// JSON lines: each record's fields plus `prev` and `hash`. Returns the
    /// number of lines written.
    pub fn export_jsonl(&self, w: &mut dyn Write, since: Option<u64>) -> Result<u64, StoreError> {
        let e = || self.err("read the audit trail");
        let io_err = |err: io::Error| StoreError::Export {
            path: self.path.clone(),
            source: Arc::new(err),
        };
        let mut out = io::BufWriter::with_capacity(1 << 16, w);
        let mut stmt = self
            .conn
            .prepare("SELECT seq, json, prev, hash FROM audit WHERE seq > ?1 ORDER BY seq")
            .map_err(e())?;
        let mut rows = stmt
            .query([since.unwrap_or(0).min(i64::MAX as u64) as i64])
            .map_err(e())?;
        let mut n = 0u64;
        let mut line = String::new();
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(0).map_err(e())? as u64;
            let json: String = row.get(1).map_err(e())?;
            let prev: String = row.get(2).map_err(e())?;
            let hash: String = row.get(3).map_err(e())?;
            chain::export_line(&mut line, &json, prev, hash)
                .map_err(|why| self.corrupt(seq, why))?;
            out.write_all(line.as_bytes()).map_err(io_err)?;
            n += 1;
        }
        out.flush().map_err(io_err)?;
        Ok(n)
    }
}
