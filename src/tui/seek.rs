//! Reaching any record of a trail of millions with nothing but the hub's
//! paging route ("the newest `limit` records before `B`"): a state machine
//! the reader drives with pages, so that the same search runs against the
//! hub, a store in a benchmark, or a list in a test.

use crate::model::Record;
use crate::tui::audit::Seek;

/// What the reader asks the hub next while it moves the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub before: Option<u64>,
    pub limit: usize,
}

/// Moves the window with nothing but "the newest `limit` records before
/// `B`": a binary search over `B`. Without a filter the trail is numbered
/// without gaps, so the first guess lands and one page is enough; with a
/// filter it takes about log2(trail) small pages.
#[derive(Debug)]
pub struct Seeker {
    seek: Seek,
    limit: usize,
    /// Phase 1 (since): the search for the first record at or after a time.
    since_lo: u64,
    since_hi: u64,
    since_found: Option<u64>,
    /// Phase 2 (newer than `after`): smallest `B` whose page is all newer.
    after: u64,
    lo: u64,
    hi: u64,
    probe: u64,
    best: Option<Vec<Record>>,
    head: u64,
    phase: Phase,
    done: Option<(Vec<Record>, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Since,
    HeadCheck,
    First,
    Search,
}

impl Seeker {
    /// `head`: the newest sequence number known.
    pub fn new(seek: Seek, head: u64, limit: usize) -> Seeker {
        let limit = limit.max(1);
        let mut s = Seeker {
            seek,
            limit,
            since_lo: 1,
            since_hi: head + 1,
            since_found: None,
            after: 0,
            lo: 0,
            hi: head + 1,
            probe: 0,
            best: None,
            head,
            phase: Phase::First,
            done: None,
        };
        match seek {
            Seek::Oldest => s.start_after(0),
            Seek::Seq(n) => s.start_after(n.saturating_sub(1)),
            Seek::Newer(t) => s.start_after(t),
            Seek::Since(_) => s.phase = Phase::Since,
        }
        s
    }

    fn start_after(&mut self, after: u64) {
        self.after = after;
        self.lo = after + 1;
        self.hi = self.head + 1;
        self.phase = Phase::First;
        self.probe = (after + self.limit as u64 + 1).min(self.hi);
        if self.hi <= self.lo {
            self.done = Some((Vec::new(), true));
        }
    }

    /// The next page to read, or `None` when done.
    pub fn next(&self) -> Option<PageRequest> {
        if self.done.is_some() {
            return None;
        }
        Some(match self.phase {
            Phase::Since => PageRequest {
                before: Some(self.since_mid()),
                limit: 1,
            },
            // The head is read as "the newest" (no bound): the head the
            // console knows may lag behind the store.
            Phase::First | Phase::HeadCheck | Phase::Search => PageRequest {
                before: (self.probe <= self.head).then_some(self.probe),
                limit: self.limit,
            },
        })
    }

    fn since_mid(&self) -> u64 {
        self.since_lo + (self.since_hi - self.since_lo) / 2
    }

    /// Feeds the answer to the last request.
    pub fn feed(&mut self, page: Vec<Record>) {
        match self.phase {
            Phase::Since => {
                let Seek::Since(t) = self.seek else {
                    return;
                };
                let mid = self.since_mid();
                match page.first() {
                    Some(r) if r.at >= t => {
                        self.since_found = Some(r.seq);
                        self.since_hi = mid;
                    }
                    _ => self.since_lo = mid + 1,
                }
                if self.since_lo >= self.since_hi {
                    if self.since_found.is_none() {
                        // Probe the very newest once (B = head + 1).
                        if self.since_hi <= self.head {
                            self.since_lo = self.head + 1;
                            self.since_hi = self.head + 2;
                            return;
                        }
                        self.done = Some((Vec::new(), true));
                        return;
                    }
                    let s = self.since_found.unwrap_or(1);
                    self.start_after(s.saturating_sub(1));
                }
            }
            Phase::First | Phase::HeadCheck | Phase::Search => {
                let all_newer =
                    page.len() >= self.limit && page.last().is_some_and(|r| r.seq > self.after);
                match self.phase {
                    Phase::First
                        if all_newer && page.last().map(|r| r.seq) == Some(self.after + 1) =>
                    {
                        return self.finish_with(page);
                    }
                    Phase::First | Phase::HeadCheck if !all_newer => {
                        if self.phase == Phase::HeadCheck || self.probe >= self.hi {
                            // Fewer than a page is newer: the head page.
                            let after = self.after;
                            let recs = page.into_iter().filter(|r| r.seq > after).collect();
                            self.done = Some((recs, true));
                            return;
                        }
                        self.lo = self.probe;
                        self.phase = Phase::HeadCheck;
                        self.probe = self.hi;
                        return;
                    }
                    _ => {}
                }
                if all_newer {
                    self.hi = self.probe;
                    self.best = Some(page);
                } else {
                    self.lo = self.probe;
                }
                self.phase = Phase::Search;
                if self.hi - self.lo <= 1 {
                    let page = self.best.take().unwrap_or_default();
                    self.finish_with(page);
                } else {
                    self.probe = self.lo + (self.hi - self.lo) / 2;
                }
            }
        }
    }

    fn finish_with(&mut self, page: Vec<Record>) {
        let head = self.probe > self.head || page.first().is_none_or(|r| r.seq >= self.head);
        self.done = Some((page, head));
    }

    /// The window (newest first) and whether it reaches the head.
    pub fn finish(self) -> Option<(Vec<Record>, bool)> {
        self.done
    }
}

/// Runs a seek against any page source (the hub's route, or a store in
/// tests and benchmarks).
pub fn run_seek(
    seek: Seek,
    head: u64,
    limit: usize,
    mut page: impl FnMut(PageRequest) -> Result<Vec<Record>, String>,
) -> Result<(Vec<Record>, bool), String> {
    let mut s = Seeker::new(seek, head, limit);
    // A bound on round trips: 4 binary searches over 2^64.
    for _ in 0..300 {
        match s.next() {
            None => break,
            Some(req) => s.feed(page(req)?),
        }
    }
    s.finish()
        .ok_or_else(|| "the audit trail changed while it was searched; try again".into())
}
