//! The Audit pane's window onto the trail: which records are loaded, which
//! is selected, how many match, and how to reach any record of a trail of
//! millions (the newest, the oldest, a sequence number, a time) with the
//! hub's one paging route (`/api/v1/audit/page`: newest first, `before` a
//! sequence number). Pure: queries go out as intents; the [`Seeker`] is a
//! state machine that the reader drives with pages.

use crate::model::{Record, RecordKind, Time};
use crate::store::AuditFilter;
use crate::tui::panes::clean;
pub use crate::tui::seek::{PageRequest, Seeker, run_seek};

/// Audit rows fetched per page.
pub const AUDIT_PAGE: usize = 200;

/// At most this many rows are kept; past it the far end is dropped and
/// fetched again when it is needed.
pub const AUDIT_KEEP: usize = 40 * AUDIT_PAGE;

/// Where to move the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seek {
    /// The oldest records of the whole trail.
    Oldest,
    /// The record with this sequence number (or the next newer match).
    Seq(u64),
    /// The first record at or after this time.
    Since(Time),
    /// The records just newer than this sequence number (scrolling up).
    Newer(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditQuery {
    pub generation: u64,
    pub filter: AuditFilter,
    pub before: Option<u64>,
    pub limit: usize,
    /// Count the matching records too (when the filter changed).
    pub count: bool,
    /// Move the window instead of reading a page before `before`.
    pub seek: Option<Seek>,
    /// The newest sequence number the console knows of.
    pub head: u64,
}

/// The audit reader's answer.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub generation: u64,
    pub before: Option<u64>,
    pub records: Vec<Record>,
    pub total: Option<u64>,
    pub error: Option<String>,
    /// The seek this answers.
    pub seek: Option<Seek>,
    /// The records reach the newest one that matches.
    pub head: bool,
}

/// The audit pane's window onto the store.
#[derive(Debug)]
pub struct AuditView {
    pub filter: AuditFilter,
    pub filter_text: String,
    /// Newest first.
    pub rows: Vec<Record>,
    pub selected: usize,
    /// How many records match (the whole trail without a filter).
    pub total: Option<u64>,
    /// The newest sequence number `total` accounts for.
    pub counted_to: u64,
    pub generation: u64,
    pub loading: bool,
    /// No older records match: the last row is the oldest.
    pub exhausted: bool,
    /// The first row is the newest record (new ones are added on top).
    pub at_head: bool,
    /// The audit seq the head was last fetched at.
    pub seen_seq: u64,
    pub error: Option<String>,
    /// Said once when a seek lands: where it went.
    pub landed: Option<String>,
}

impl Default for AuditView {
    fn default() -> AuditView {
        AuditView {
            filter: AuditFilter::default(),
            filter_text: String::new(),
            rows: Vec::new(),
            selected: 0,
            total: None,
            counted_to: 0,
            generation: 0,
            loading: false,
            exhausted: false,
            at_head: true,
            seen_seq: 0,
            error: None,
            landed: None,
        }
    }
}

impl AuditView {
    pub fn filtered(&self) -> bool {
        self.filter != AuditFilter::default()
    }

    /// Takes an answer to a query of this generation. Returns true when a
    /// change arrived meanwhile and the head should be read again.
    pub fn apply(&mut self, page: AuditPage, head_seq: u64) {
        self.loading = false;
        self.error = page.error.clone();
        if page.error.is_some() {
            return;
        }
        if let Some(t) = page.total {
            self.total = Some(t);
            let newest = page.records.first().map_or(0, |r| r.seq);
            self.counted_to = newest.max(self.seen_seq);
        }
        let full = page.records.len() >= AUDIT_PAGE;
        match page.seek {
            Some(Seek::Newer(after)) => {
                // Prepend what is newer than the top row.
                let top = self.rows.first().map_or(after, |r| r.seq);
                let mut new: Vec<Record> =
                    page.records.into_iter().filter(|r| r.seq > top).collect();
                self.selected += new.len();
                new.append(&mut self.rows);
                self.rows = new;
                self.at_head = page.head;
                self.trim_bottom();
            }
            Some(seek) if page.records.is_empty() => {
                // Nothing there: the window stays where it was.
                self.landed = Some(match seek {
                    Seek::Seq(n) => format!("no record {n} or newer matches"),
                    Seek::Since(t) => format!("no record since {}", t.format("%Y-%m-%d %H:%M UTC")),
                    _ => "the audit trail is empty".to_string(),
                });
            }
            Some(seek) => {
                self.rows = page.records;
                self.at_head = page.head;
                // Only the oldest seek knows nothing older matches; from
                // anywhere else, older pages are read as the operator
                // moves down.
                self.exhausted = matches!(seek, Seek::Oldest);
                // The window starts at the target: it is the oldest row.
                self.selected = self.rows.len().saturating_sub(1);
                self.landed = Some(match (seek, self.rows.last()) {
                    (_, None) => "no record there".to_string(),
                    (Seek::Seq(n), Some(r)) if r.seq != n => format!(
                        "record {n} does not match the filter; showing the next newer, {}",
                        r.seq
                    ),
                    (Seek::Since(t), Some(r)) => format!(
                        "first record since {}: {} at {}",
                        t.format("%Y-%m-%d %H:%M UTC"),
                        r.seq,
                        r.at.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                    (_, Some(r)) => format!("record {}", r.seq),
                });
            }
            None => match page.before {
                None => {
                    let newest_old = self.rows.first().map(|r| r.seq);
                    let gap = full
                        && newest_old
                            .is_some_and(|s| page.records.last().is_some_and(|r| r.seq > s + 1));
                    match newest_old {
                        Some(s) if self.at_head && !gap => {
                            // Prepend what is new; keep the window and
                            // the record selected (the newest stays
                            // selected when it was).
                            let mut rows: Vec<Record> =
                                page.records.into_iter().filter(|r| r.seq > s).collect();
                            if self.selected > 0 {
                                self.selected += rows.len();
                            }
                            rows.append(&mut self.rows);
                            self.rows = rows;
                            self.trim_bottom();
                        }
                        _ => {
                            // Empty, elsewhere in the trail, or too far
                            // behind: the newest page.
                            self.rows = page.records;
                            self.exhausted = !full;
                            self.at_head = true;
                            self.selected = 0;
                        }
                    }
                }
                Some(_) => {
                    self.exhausted = !full;
                    self.rows.extend(page.records);
                    self.trim_top();
                }
            },
        }
        self.count_new();
        if !self.filtered() {
            // The trail is numbered from 1 without gaps.
            let newest = self.rows.first().map_or(0, |r| r.seq);
            self.total = Some(head_seq.max(newest).max(self.total.unwrap_or(0)));
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    /// Records on top that the count has not seen are added to it.
    fn count_new(&mut self) {
        if !self.at_head {
            return;
        }
        let Some(t) = self.total.as_mut() else {
            return;
        };
        let added = self
            .rows
            .iter()
            .take_while(|r| r.seq > self.counted_to)
            .count() as u64;
        *t += added;
        if let Some(r) = self.rows.first() {
            self.counted_to = self.counted_to.max(r.seq);
        }
    }

    /// Drops the oldest rows past [`AUDIT_KEEP`].
    fn trim_bottom(&mut self) {
        if self.rows.len() > AUDIT_KEEP && self.selected < AUDIT_KEEP {
            self.rows.truncate(AUDIT_KEEP);
            self.exhausted = false;
        }
    }

    /// Drops the newest rows past [`AUDIT_KEEP`].
    fn trim_top(&mut self) {
        if self.rows.len() > AUDIT_KEEP {
            let cut = self.rows.len() - AUDIT_KEEP;
            if self.selected >= cut {
                self.rows.drain(..cut);
                self.selected -= cut;
                self.at_head = false;
            }
        }
    }
}

/// Parses an audit filter: `key=value` words with keys host (or target),
/// runbook, kind and actor; a bare word is a host.
pub fn parse_audit_filter(text: &str) -> Result<AuditFilter, String> {
    let mut f = AuditFilter::default();
    for w in text.split_whitespace() {
        let (k, v) = w.split_once('=').unwrap_or(("host", w));
        if v.is_empty() {
            return Err(format!("{w:?}: a value is needed after '='"));
        }
        let slot = match k {
            "host" | "target" => &mut f.target,
            "runbook" => &mut f.runbook,
            "kind" => &mut f.kind,
            "actor" => &mut f.actor,
            _ => {
                return Err(format!(
                    "{k:?} is not a filter key; use host=, runbook=, kind= or actor="
                ));
            }
        };
        *slot = Some(v.to_string());
    }
    if let Some(k) = &f.kind
        && RecordKind::parse(k).is_none()
    {
        return Err(format!(
            "kind={k:?} is not a record kind (e.g. action_failed, alert_firing)"
        ));
    }
    Ok(f)
}

/// Parses `:since`: a duration back from `now` (`90s`, `15m`, `2h`, `3d`)
/// or a UTC time (`2026-12-01T03:00`, `2026-12-01 03:00:00`, `2026-12-01`).
pub fn parse_since(text: &str, now: Time) -> Result<Time, String> {
    let t = text.trim();
    if let Ok(d) = crate::units::parse_delta(t) {
        return Ok(now - d);
    }
    if let Ok(x) = t.parse::<Time>() {
        return Ok(x);
    }
    let t2 = t.replace(' ', "T");
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(&t2, fmt) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(format!(
        "{t:?} is neither a duration (90s, 15m, 2h, 3d) nor a UTC time (2026-12-01T03:00)"
    ))
}

/// The WHAT column of a record: action, runbook@target or alert, reason,
/// detail on one line (a multi-line detail shows its first line and how
/// many more there are).
pub fn record_text(r: &Record) -> String {
    let mut s = String::new();
    if let Some(id) = &r.action_id {
        s.push_str(id);
        s.push(' ');
    }
    if let Some(rb) = &r.runbook {
        s.push_str(rb);
        if let Some(tg) = &r.target {
            s.push('@');
            s.push_str(&clean(tg));
        }
        s.push(' ');
    } else if let Some(a) = &r.alert {
        s.push_str(&clean(a));
        if let Some(tg) = &r.target {
            s.push('@');
            s.push_str(&clean(tg));
        }
        s.push(' ');
    }
    if let Some(reason) = &r.reason {
        s.push_str(&clean(reason));
        s.push_str(": ");
    }
    if let Some(d) = &r.detail {
        let mut lines = d.lines();
        s.push_str(&clean(lines.next().unwrap_or("")));
        let more = lines.count();
        if more > 0 {
            s.push_str(&format!(
                " (+{}; enter shows all)",
                crate::tui::panes::plural(more, "line")
            ));
        }
    }
    s
}

/// Every field of a record for the detail view: the full time with its
/// date, `data` pretty-printed, a plan as numbered command lines.
/// `plan`: the action's steps when the console still knows it (a step's
/// script may span lines; the record's `detail` joins steps with line
/// breaks, so without it each line is numbered).
pub fn record_lines(r: &Record, now: Time, plan: Option<&[String]>) -> Vec<String> {
    let mut v = vec![
        format!("seq         {}", r.seq),
        format!(
            "at          {}  ({} ago)",
            r.at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
            crate::tui::panes::duration(now - r.at)
        ),
        format!("kind        {}", r.kind.as_str()),
    ];
    let mut field = |k: &str, val: Option<String>| {
        if let Some(x) = val {
            v.push(format!("{k:<12}{}", clean(&x)));
        }
    };
    field("actor", r.actor.clone());
    field("alert", r.alert.clone());
    field("severity", r.severity.map(|s| s.as_str().to_string()));
    field("target", r.target.clone());
    field("runbook", r.runbook.clone());
    field("action", r.action_id.clone());
    field("reason", r.reason.clone());
    field("attempt", r.attempt.map(|a| a.to_string()));
    field("exit", r.exit_code.map(|c| c.to_string()));
    field("value", r.value.map(crate::tui::panes::fmt_value));
    field("fingerprint", r.fingerprint.clone());
    if let Some(p) = r.params.as_ref().filter(|p| !p.is_empty()) {
        v.push("params".into());
        for (k, val) in p {
            v.push(format!("  {k} = {}", clean(val)));
        }
    }
    if let Some(l) = r.labels.as_ref().filter(|l| !l.is_empty()) {
        v.push("labels".into());
        for (k, val) in l {
            v.push(format!("  {k} = {}", clean(val)));
        }
    }
    if let Some(d) = &r.detail {
        let many = matches!(r.kind, RecordKind::DryRunPlanned) || d.contains('\n');
        if many {
            v.push(if r.kind == RecordKind::DryRunPlanned {
                "plan (dry-run: nothing ran)".to_string()
            } else {
                "detail".to_string()
            });
            let steps: Vec<String> = match plan.filter(|_| r.kind == RecordKind::DryRunPlanned) {
                Some(p) => p.to_vec(),
                None => d.lines().map(str::to_string).collect(),
            };
            for (i, l) in steps.iter().enumerate() {
                v.push(format!(
                    "  {:>2}. {}",
                    i + 1,
                    crate::tui::panes::show_cmd(l)
                ));
            }
        } else {
            v.push(format!("{:<12}{}", "detail", clean(d)));
        }
    }
    if let Some(data) = &r.data {
        v.push("data".into());
        let pretty = serde_json::to_string_pretty(data).unwrap_or_default();
        for l in pretty.lines() {
            v.push(format!("  {}", clean(l)));
        }
    }
    v
}

impl crate::tui::app::App {
    fn audit_query(&mut self, before: Option<u64>, count: bool, seek: Option<Seek>) {
        self.audit.loading = true;
        self.outbox.push(crate::tui::app::Intent::Audit(AuditQuery {
            generation: self.audit.generation,
            filter: self.audit.filter.clone(),
            before,
            limit: AUDIT_PAGE,
            count,
            seek,
            head: self.snap.audit_seq,
        }));
    }

    /// Asks for the newest page again (`count`: the filter changed).
    pub fn refresh_audit(&mut self, count: bool) {
        if self.audit.loading && !count {
            return;
        }
        self.audit.generation += 1;
        self.audit.seen_seq = self.snap.audit_seq;
        self.audit_query(None, count, None);
    }

    pub(crate) fn more_audit(&mut self) {
        if self.audit.loading || self.audit.exhausted {
            return;
        }
        let Some(last) = self.audit.rows.last() else {
            return;
        };
        let before = Some(last.seq);
        self.audit_query(before, false, None);
    }

    /// Moves the window (a new generation: older answers are dropped).
    pub(crate) fn audit_seek(&mut self, seek: Seek) {
        self.audit.generation += 1;
        self.audit.seen_seq = self.snap.audit_seq;
        self.set_focus_audit();
        self.audit_query(None, false, Some(seek));
    }

    fn set_focus_audit(&mut self) {
        self.focus = crate::tui::panes::Pane::Audit;
    }

    /// `g g` in Audit: the newest record, read again when the window is
    /// elsewhere in the trail.
    pub(crate) fn audit_newest(&mut self) {
        if self.audit.at_head {
            self.audit_select(0);
            if self.snap.audit_seq > self.audit.seen_seq {
                self.refresh_audit(false);
            }
        } else {
            self.audit.loading = false;
            self.refresh_audit(false);
            self.audit.selected = 0;
        }
    }

    /// `G` in Audit: the oldest record of the whole trail.
    pub(crate) fn audit_oldest(&mut self) {
        if self.audit.exhausted {
            self.audit_select(self.audit.rows.len().saturating_sub(1));
        } else {
            self.audit_seek(Seek::Oldest);
        }
    }

    pub(crate) fn audit_select(&mut self, i: usize) {
        self.audit.selected = i.min(self.audit.rows.len().saturating_sub(1));
        if self.audit.selected + AUDIT_PAGE / 2 >= self.audit.rows.len() {
            self.more_audit();
        }
        if self.audit.selected == 0
            && self.audit.at_head
            && self.snap.audit_seq > self.audit.seen_seq
        {
            self.refresh_audit(false);
        }
    }

    pub fn apply_audit_page(&mut self, page: AuditPage) {
        if page.generation != self.audit.generation {
            return;
        }
        let seek = page.seek;
        self.audit.apply(page, self.snap.audit_seq);
        if let Some(l) = self.audit.landed.take()
            && !matches!(seek, Some(Seek::Newer(_)))
        {
            self.flash(l, crate::tui::app::Level::Info, std::time::Instant::now());
            // Older records below the one sought, for context.
            self.more_audit();
        }
        // A change arrived while this query was in flight.
        if self.snap.audit_seq > self.audit.seen_seq
            && self.audit.selected == 0
            && self.audit.at_head
        {
            self.refresh_audit(false);
        }
        self.dirty = true;
    }

    pub(crate) fn set_audit_filter(&mut self, text: &str) {
        let f = parse_audit_filter(text).unwrap_or_default();
        self.audit.filter = f;
        self.audit.filter_text = text.trim().to_string();
        self.audit.rows.clear();
        self.audit.selected = 0;
        self.audit.total = None;
        self.audit.counted_to = 0;
        self.audit.exhausted = false;
        self.audit.at_head = true;
        self.audit.loading = false;
        self.refresh_audit(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn trail(n: u64, every: u64) -> Vec<Record> {
        let t0: Time = "2026-12-01T00:00:00Z".parse().unwrap();
        (1..=n)
            .map(|s| {
                let mut r = Record::new(RecordKind::Signal, t0 + TimeDelta::seconds(s as i64));
                r.seq = s;
                if s % every == 0 {
                    r.target = Some("web-01".into());
                }
                r
            })
            .collect()
    }

    /// The hub's route over an in-memory trail: the newest `limit`
    /// matching records before `before`.
    fn source(
        t: &[Record],
        only: bool,
        calls: &mut usize,
    ) -> impl FnMut(PageRequest) -> Result<Vec<Record>, String> {
        move |q: PageRequest| {
            *calls += 1;
            let b = q.before.unwrap_or(u64::MAX);
            Ok(t.iter()
                .rev()
                .filter(|r| r.seq < b && (!only || r.target.is_some()))
                .take(q.limit)
                .cloned()
                .collect())
        }
    }

    fn seqs(v: &[Record]) -> Vec<u64> {
        v.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn the_oldest_of_an_unfiltered_trail_is_one_page_away() {
        let t = trail(100_000, 1);
        let mut calls = 0;
        let (w, head) =
            run_seek(Seek::Oldest, 100_000, 200, source(&t, false, &mut calls)).unwrap();
        assert_eq!(w.len(), 200);
        assert_eq!(w.last().unwrap().seq, 1);
        assert_eq!(w.first().unwrap().seq, 200);
        assert!(!head);
        assert_eq!(calls, 1);
    }

    #[test]
    fn seeks_work_through_a_filter() {
        let t = trail(50_000, 7);
        let mut calls = 0;
        let (w, _) = run_seek(Seek::Oldest, 50_000, 200, source(&t, true, &mut calls)).unwrap();
        assert_eq!(w.last().unwrap().seq, 7);
        assert_eq!(w.len(), 200);
        assert!(seqs(&w).windows(2).all(|p| p[0] == p[1] + 7));
        assert!(calls < 40, "{calls} round trips");
        // Newer than a row: the next 200 matches, nothing skipped.
        let (w2, _) =
            run_seek(Seek::Newer(1400), 50_000, 200, source(&t, true, &mut calls)).unwrap();
        assert_eq!(w2.last().unwrap().seq, 1407);
        // A seq that does not match lands on the next newer match.
        let (w3, _) = run_seek(Seek::Seq(701), 50_000, 200, source(&t, true, &mut calls)).unwrap();
        assert_eq!(w3.last().unwrap().seq, 707);
    }

    #[test]
    fn goto_since_and_the_head() {
        let t = trail(10_000, 1);
        let mut calls = 0;
        let (w, _) = run_seek(Seek::Seq(4242), 10_000, 200, source(&t, false, &mut calls)).unwrap();
        assert_eq!(w.last().unwrap().seq, 4242);
        let at = t[3000].at; // seq 3001
        let (w, _) = run_seek(Seek::Since(at), 10_000, 200, source(&t, false, &mut calls)).unwrap();
        assert_eq!(w.last().unwrap().seq, 3001);
        // Near the head the window is what is left, and reaches it.
        let (w, head) =
            run_seek(Seek::Seq(9_950), 10_000, 200, source(&t, false, &mut calls)).unwrap();
        assert_eq!(seqs(&w).first(), Some(&10_000));
        assert_eq!(seqs(&w).last(), Some(&9_950));
        assert!(head);
        // Since a time after the last record: nothing.
        let late = t[9_999].at + TimeDelta::hours(1);
        let (w, head) = run_seek(
            Seek::Since(late),
            10_000,
            200,
            source(&t, false, &mut calls),
        )
        .unwrap();
        assert!(w.is_empty() && head);
        // An empty trail.
        let (w, head) = run_seek(Seek::Oldest, 0, 200, source(&[], false, &mut calls)).unwrap();
        assert!(w.is_empty() && head);
    }

    #[test]
    fn since_parses_durations_and_times() {
        let now: Time = "2026-12-02T09:00:00Z".parse().unwrap();
        assert_eq!(
            parse_since("2h", now).unwrap(),
            "2026-12-02T07:00:00Z".parse::<Time>().unwrap()
        );
        assert_eq!(
            parse_since("2026-12-01T03:00", now).unwrap(),
            "2026-12-01T03:00:00Z".parse::<Time>().unwrap()
        );
        assert!(
            parse_since("yesterday", now)
                .unwrap_err()
                .contains("2026-12-01T03:00")
        );
    }

    #[test]
    fn a_dry_run_plan_reads_as_numbered_commands() {
        let mut r = Record::new(
            RecordKind::DryRunPlanned,
            "2026-12-01T03:04:05Z".parse().unwrap(),
        );
        r.seq = 9;
        r.detail = Some("[read-only] systemctl status nginx\nsystemctl restart nginx".into());
        r.data = Some(serde_json::json!({"plan": {"steps": 2}}));
        let l = record_lines(&r, "2026-12-01T04:04:05Z".parse().unwrap(), None).join("\n");
        assert!(
            l.contains("2026-12-01 03:04:05.000 UTC  (1h 00m ago)"),
            "{l}"
        );
        assert!(
            l.contains("   1. [read-only] systemctl status nginx"),
            "{l}"
        );
        assert!(l.contains("   2. systemctl restart nginx"), "{l}");
        assert!(l.contains("\"steps\": 2"), "{l}");
        assert!(!record_text(&r).contains("\\n"));
    }
}
