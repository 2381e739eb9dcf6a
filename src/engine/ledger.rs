//! Which SCAN cursors are done: for each source node, the pages its SCAN
//! returned and how many of their keys are still unfinished (not yet
//! acknowledged by the target, nor found vanished at the source).
//!
//! A checkpoint may only record a cursor all of whose keys the target has
//! acknowledged: resuming from a later one would skip keys still in flight
//! when the run stopped. Pages complete out of order (a big value holds its
//! page back), so the ledger keeps them in SCAN order and advances each
//! node's resume cursor past the leading run of finished pages.
//!
//! Both loops touch it about once per page (a thousand keys), so one mutex
//! is cheap.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::engine::item::PageId;

/// A source node's progress, as a checkpoint records it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeProgress {
    /// The node as messages name it (`host:port`).
    pub name: String,
    pub run_id: String,
    pub db: u32,
    /// The cursor to resume the scan from: every key before it is done.
    /// `"0"` is the start (or, with `complete`, the end).
    pub cursor: String,
    /// The scan returned cursor 0 and every key is done.
    pub complete: bool,
}

#[derive(Debug)]
struct Page {
    seq: u32,
    /// The cursor SCAN returned with this page: where the next page starts.
    next: String,
    pending: u64,
}

#[derive(Debug, Default)]
struct Node {
    progress: NodeProgress,
    epoch: u16,
    next_seq: u32,
    pages: VecDeque<Page>,
}

impl Node {
    /// Retires the leading run of finished pages.
    fn advance(&mut self) {
        while self.pages.front().is_some_and(|p| p.pending == 0) {
            if let Some(page) = self.pages.pop_front() {
                self.progress.complete = page.next == "0";
                self.progress.cursor = page.next;
            }
        }
    }
}

/// Shared by the source loop (pages found, keys vanished), the target loop
/// (keys acknowledged) and the checkpoint writer (snapshots).
#[derive(Debug, Default)]
pub struct Ledger {
    nodes: Mutex<Vec<Node>>,
}

impl Ledger {
    /// Adds a source node whose scan starts at `cursor`; returns its index.
    pub fn add_node(&self, name: &str, run_id: &str, db: u32, cursor: &str) -> u16 {
        let mut nodes = self.lock();
        nodes.push(Node {
            progress: NodeProgress {
                name: name.to_string(),
                run_id: run_id.to_string(),
                db,
                cursor: cursor.to_string(),
                complete: false,
            },
            ..Node::default()
        });
        u16::try_from(nodes.len() - 1).unwrap_or(u16::MAX)
    }

    /// Records a SCAN page of `keys` keys that ended with cursor `next`.
    pub fn open_page(&self, node: u16, epoch: u16, next: &str, keys: u64) -> PageId {
        let mut nodes = self.lock();
        let Some(n) = nodes.get_mut(usize::from(node)) else {
            return PageId::new(epoch, node, 0);
        };
        if n.epoch != epoch {
            return PageId::new(epoch, node, 0);
        }
        let seq = n.next_seq;
        n.next_seq = n.next_seq.wrapping_add(1);
        n.pages.push_back(Page {
            seq,
            next: next.to_string(),
            pending: keys,
        });
        n.advance();
        PageId::new(epoch, node, seq)
    }

    /// Marks keys done: each `(page, n)` finishes `n` keys of that page.
    /// Pages of an earlier epoch (before the copy started over) are ignored.
    pub fn done(&self, runs: &[(PageId, u64)]) {
        if runs.is_empty() {
            return;
        }
        let mut nodes = self.lock();
        for &(page, count) in runs {
            if page.is_live() {
                continue;
            }
            let Some(n) = nodes.get_mut(usize::from(page.node())) else {
                continue;
            };
            if n.epoch != page.epoch() {
                continue;
            }
            let Some(front) = n.pages.front().map(|p| p.seq) else {
                continue;
            };
            let index = page.seq().wrapping_sub(front) as usize;
            if let Some(p) = n.pages.get_mut(index) {
                p.pending = p.pending.saturating_sub(count);
            }
            n.advance();
        }
    }

    /// The node's scan starts over from cursor 0 in `epoch` (the server
    /// restarted, or the copy starts over): earlier pages mean nothing now.
    pub fn restart(&self, node: u16, epoch: u16, run_id: &str) {
        let mut nodes = self.lock();
        if let Some(n) = nodes.get_mut(usize::from(node)) {
            n.epoch = epoch;
            n.pages.clear();
            n.progress.cursor = "0".into();
            n.progress.complete = false;
            n.progress.run_id = run_id.to_string();
        }
    }

    /// Every node's progress now.
    pub fn snapshot(&self) -> Vec<NodeProgress> {
        self.lock().iter().map(|n| n.progress.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Node>> {
        // A poisoned lock means a loop panicked; the counts are still usable.
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Collects acknowledgements by page, so a loop calls [`Ledger::done`] once
/// per burst of replies instead of once per key.
#[derive(Debug, Default)]
pub struct Acks {
    runs: Vec<(PageId, u64)>,
}

impl Acks {
    pub fn push(&mut self, page: PageId) {
        match self.runs.last_mut() {
            Some((last, n)) if *last == page => *n += 1,
            _ => self.runs.push((page, 1)),
        }
    }

    /// Hands what was collected to the ledger.
    pub fn flush(&mut self, ledger: &Ledger) {
        ledger.done(&self.runs);
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(l: &Ledger) -> (String, bool) {
        let p = &l.snapshot()[0];
        (p.cursor.clone(), p.complete)
    }

    #[test]
    fn the_cursor_advances_only_past_fully_acknowledged_pages() {
        let l = Ledger::default();
        let n = l.add_node("h:1", "r", 0, "0");
        let a = l.open_page(n, 0, "17", 2);
        let b = l.open_page(n, 0, "42", 1);
        assert_eq!(cursor(&l), ("0".into(), false));
        // The later page finishes first: nothing can be recorded yet.
        l.done(&[(b, 1)]);
        assert_eq!(cursor(&l), ("0".into(), false));
        l.done(&[(a, 1)]);
        assert_eq!(cursor(&l), ("0".into(), false));
        l.done(&[(a, 1)]);
        assert_eq!(cursor(&l), ("42".into(), false));
        let c = l.open_page(n, 0, "0", 1);
        assert_eq!(cursor(&l), ("42".into(), false));
        l.done(&[(c, 1)]);
        assert_eq!(cursor(&l), ("0".into(), true));
    }

    #[test]
    fn empty_pages_finish_at_once_and_old_epochs_are_ignored() {
        let l = Ledger::default();
        let n = l.add_node("h:1", "r", 0, "5");
        l.open_page(n, 0, "9", 0);
        assert_eq!(cursor(&l), ("9".into(), false));
        let old = l.open_page(n, 0, "12", 1);
        l.restart(n, 1, "r2");
        l.done(&[(old, 1)]);
        assert_eq!(cursor(&l), ("0".into(), false));
        assert_eq!(l.snapshot()[0].run_id, "r2");
        let new = l.open_page(n, 1, "3", 1);
        let mut acks = Acks::default();
        acks.push(new);
        acks.flush(&l);
        assert_eq!(cursor(&l), ("3".into(), false));
    }

    #[test]
    fn acks_coalesce_runs_of_the_same_page() {
        let mut acks = Acks::default();
        let (a, b) = (PageId::new(0, 0, 1), PageId::new(0, 0, 2));
        for p in [a, a, a, b, b, a] {
            acks.push(p);
        }
        assert_eq!(acks.runs, vec![(a, 3), (b, 2), (a, 1)]);
    }
}
