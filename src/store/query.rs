//! Reading the trail: one record, the newest, since a seq, filtered pages
//! and counts over the tag index.

use super::*;

impl Store {
    fn records(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Record>, StoreError> {
        let e = || self.err("read the audit trail");
        let mut stmt = self.conn.prepare_cached(sql).map_err(e())?;
        let mut rows = stmt.query(args).map_err(e())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(0).map_err(e())? as u64;
            let json = row.get_ref(1).map_err(e())?;
            let json = json
                .as_str()
                .map_err(|_| self.corrupt(seq, "stored JSON is not text"))?;
            let rec: Record = serde_json::from_str(json)
                .map_err(|err| self.corrupt(seq, format!("stored JSON is not a record: {err}")))?;
            out.push(rec);
        }
        Ok(out)
    }

    /// The record with this seq, if stored.
    pub fn get(&self, seq: u64) -> Result<Option<Record>, StoreError> {
        let mut v = self.records(
            "SELECT seq, json FROM audit WHERE seq = ?1",
            &[&(seq.min(i64::MAX as u64) as i64)],
        )?;
        Ok(v.pop())
    }

    /// The newest `n` records, oldest first (newest last).
    pub fn tail(&self, n: usize) -> Result<Vec<Record>, StoreError> {
        let mut v = self.records(
            "SELECT seq, json FROM audit ORDER BY seq DESC LIMIT ?1",
            &[&(n.min(i64::MAX as usize) as i64)],
        )?;
        v.reverse();
        Ok(v)
    }

    /// Up to `limit` records with seq greater than `seq`, oldest first (pass
    /// the last seq you already have).
    pub fn since(&self, seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.records(
            "SELECT seq, json FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            &[
                &(seq.min(i64::MAX as u64) as i64),
                &(limit.min(i64::MAX as usize) as i64),
            ],
        )
    }

    /// Up to `limit` records matching `filter` with seq below `before_seq`
    /// (all when `None`), newest first: page back through a long trail by
    /// passing the smallest seq of the previous page.
    ///
    /// A filtered page reads `audit_tags` one bucket of 1,024 seqs at a time,
    /// newest first, until the page is full.
    pub fn page(
        &self,
        filter: &AuditFilter,
        before_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let before = before_seq.map_or(i64::MAX, |s| s.min(i64::MAX as u64) as i64);
        let Some(tags) = self.filter_ids(filter)? else {
            return Ok(Vec::new());
        };
        let Some(&lead) = tags.first() else {
            let limit = limit.min(i64::MAX as usize) as i64;
            return self.records(
                "SELECT seq, json FROM audit WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
                &[&before, &limit],
            );
        };
        if before <= 1 || limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT a.seq, a.json FROM audit_tags t JOIN audit a ON a.seq = t.seq
             WHERE t.bucket = ?1 AND t.tag = ?2 AND t.seq < ?3{} ORDER BY t.seq DESC LIMIT ?4",
            also_tagged(tags.len(), 5)
        );
        let newest = self.last_seq()?.min(before as u64 - 1);
        let mut out = Vec::new();
        let mut bucket = (newest >> schema::BUCKET_SHIFT) as i64;
        while bucket >= 0 && out.len() < limit {
            let want = (limit - out.len()) as i64;
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&bucket, &lead, &before, &want];
            args.extend(tags[1..].iter().map(|t| t as &dyn rusqlite::ToSql));
            out.extend(self.records(&sql, &args)?);
            bucket -= 1;
        }
        Ok(out)
    }

    /// How many records match `filter`.
    pub fn count(&self, filter: &AuditFilter) -> Result<u64, StoreError> {
        let e = || self.err("count audit records");
        let Some(tags) = self.filter_ids(filter)? else {
            return Ok(0);
        };
        let Some(&lead) = tags.first() else {
            // The trail is append-only and contiguous (`audit verify` says
            // so when it is not): its size is read from the two ends of
            // the key, not by scanning a million rows (seconds when cold).
            let n: i64 = self
                .conn
                .query_row(
                    "SELECT coalesce(max(seq) - min(seq) + 1, 0) FROM audit",
                    [],
                    |r| r.get(0),
                )
                .map_err(e())?;
            return Ok(n.max(0) as u64);
        };
        let sql = format!(
            "SELECT count(*) FROM audit_tags t WHERE t.bucket = ?1 AND t.tag = ?2{}",
            also_tagged(tags.len(), 3)
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(e())?;
        let mut total = 0u64;
        for bucket in 0..=(self.last_seq()? >> schema::BUCKET_SHIFT) as i64 {
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&bucket, &lead];
            args.extend(tags[1..].iter().map(|t| t as &dyn rusqlite::ToSql));
            let n: i64 = stmt.query_row(args.as_slice(), |r| r.get(0)).map_err(e())?;
            total += n.max(0) as u64;
        }
        Ok(total)
    }

    /// The `audit_names` ids of the filter's values, the leading one first;
    /// `None` when a value was never recorded (nothing can match).
    fn filter_ids(&self, filter: &AuditFilter) -> Result<Option<Vec<i64>>, StoreError> {
        let mut ids = Vec::new();
        for (col, value) in filter.tags() {
            match name_id(&self.conn, col, value).map_err(self.err("read the audit names"))? {
                Some(id) => ids.push(id),
                None => return Ok(None),
            }
        }
        Ok(Some(ids))
    }
}

/// SQL requiring that `t.seq` also carries the tags bound from `?first` on,
/// for the `n - 1` tags after the leading one.
fn also_tagged(n: usize, first: usize) -> String {
    let mut sql = String::new();
    for i in 0..n.saturating_sub(1) {
        let _ = write!(
            sql,
            " AND EXISTS (SELECT 1 FROM audit_tags u
                          WHERE u.bucket = t.bucket AND u.tag = ?{} AND u.seq = t.seq)",
            first + i
        );
    }
    sql
}

/// The stored id of `name` in tag column `col`, if any record had it.
pub(super) fn name_id(conn: &Connection, col: usize, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM audit_names WHERE col = ?1 AND name = ?2")?
        .query_row(params![schema::TAG_COLS[col], name], |r| r.get(0))
        .optional()
}
