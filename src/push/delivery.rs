//! The delivery policy of one sink, sans-IO: which outbox rows may go
//! now, where the cursor stands, and when to try again after a failure.
//! Time comes in as Unix milliseconds and randomness as a number, so every
//! decision is a plain function call in the tests below.
//!
//! **Gaps.** Rows are delivered strictly in `seq` order and the cursor
//! only moves past a row once the sink has acknowledged it, so each order's
//! events arrive in order. On PostgreSQL a `seq` is taken from a sequence
//! when the row is inserted but becomes visible only at commit, so a reader
//! can see `seq` 8 while 7 is still in flight; reading past 7 would lose it
//! for good. A gap is therefore held until it is known never to fill: its
//! writer had a transaction id below the horizon's `xmax` of the read that
//! saw the gap, so once a later read's `xmin` reaches that `xmax` every such
//! writer has finished, and the row is either visible or was rolled back.
//! SQLite has one writer that commits in `seq` order, so a gap there is a
//! pruned or rolled-back row and never fills ([`Horizon`] `None`).

use crate::store::outbox::Horizon;

/// Retry timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min_ms: i64,
    pub max_ms: i64,
}

impl Backoff {
    /// The wait before attempt `failures + 1`: doubling from `min_ms` up to
    /// `max_ms`, with "equal jitter" (half fixed, half random by
    /// `jitter` in 0..1) so pushers that failed together do not retry in
    /// step.
    pub fn delay(&self, failures: u32, jitter: f64) -> i64 {
        let shift = failures.saturating_sub(1).min(32);
        let full = self.min_ms.saturating_mul(1_i64 << shift).min(self.max_ms);
        let jitter = jitter.clamp(0.0, 1.0);
        full / 2 + ((full - full / 2) as f64 * jitter) as i64
    }
}

/// A gap seen at a read: the first missing seq and the horizon then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gap {
    missing: i64,
    xmax: i64,
}

/// One sink's delivery state.
#[derive(Debug, Clone)]
pub struct Delivery {
    cursor: i64,
    /// Missing seqs up to here are known never to fill.
    settled_through: i64,
    gap: Option<Gap>,
    failures: u32,
    retry_at: i64,
    backoff: Backoff,
}

impl Delivery {
    /// Starts after `cursor` (the last seq the sink acknowledged).
    pub fn new(cursor: i64, backoff: Backoff) -> Delivery {
        Delivery {
            cursor,
            settled_through: cursor,
            gap: None,
            failures: 0,
            retry_at: 0,
            backoff,
        }
    }

    /// The last acknowledged seq.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// When the next attempt may start (`<= now`: at once).
    pub fn retry_at(&self) -> i64 {
        self.retry_at
    }

    /// Failed attempts in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The seq a held gap waits for, if any.
    pub fn waiting_for(&self) -> Option<i64> {
        self.gap.map(|g| g.missing)
    }

    /// Given the seqs read after the cursor (ascending) and the horizon of
    /// that read, how many of them, from the first, may be delivered now.
    pub fn ready(&mut self, seqs: &[i64], horizon: Option<Horizon>) -> usize {
        let mut expected = self.cursor + 1;
        for (i, &seq) in seqs.iter().enumerate() {
            if seq < expected {
                // Already delivered (a stale read); never resend past.
                return i;
            }
            if seq > expected && expected > self.settled_through {
                if !self.settles(expected, horizon) {
                    return i;
                }
                self.settled_through = seq - 1;
                self.gap = None;
            }
            expected = seq + 1;
        }
        seqs.len()
    }

    /// Whether the gap starting at `missing` can be passed, recording it
    /// when first seen.
    fn settles(&mut self, missing: i64, horizon: Option<Horizon>) -> bool {
        let Some(h) = horizon else {
            return true;
        };
        match self.gap {
            Some(g) if g.missing == missing => h.xmin >= g.xmax,
            _ => {
                self.gap = Some(Gap {
                    missing,
                    xmax: h.xmax,
                });
                false
            }
        }
    }

    /// The sink acknowledged everything up to `seq`: the cursor moves.
    pub fn acked(&mut self, seq: i64) {
        self.cursor = self.cursor.max(seq);
        self.settled_through = self.settled_through.max(self.cursor);
        if self.gap.is_some_and(|g| g.missing <= self.cursor) {
            self.gap = None;
        }
        self.failures = 0;
        self.retry_at = 0;
    }

    /// A delivery failed at `now`; returns when to try again.
    pub fn failed(&mut self, now: i64, jitter: f64) -> i64 {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = now + self.backoff.delay(self.failures, jitter);
        self.retry_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        min_ms: 100,
        max_ms: 1_000,
    };

    fn h(xmin: i64, xmax: i64) -> Option<Horizon> {
        Some(Horizon { xmin, xmax })
    }

    #[test]
    fn contiguous_rows_all_go_and_the_cursor_moves_on_ack_only() {
        let mut d = Delivery::new(10, BACKOFF);
        assert_eq!(d.ready(&[11, 12, 13], h(5, 6)), 3);
        assert_eq!(d.cursor(), 10);
        d.acked(13);
        assert_eq!(d.cursor(), 13);
        assert_eq!(d.ready(&[14], h(5, 6)), 1);
    }

    #[test]
    fn a_gap_on_postgres_waits_until_every_writer_then_running_is_done() {
        let mut d = Delivery::new(10, BACKOFF);
        // 12 is in flight: 11 goes, 13 waits.
        assert_eq!(d.ready(&[11, 13], h(100, 105)), 1);
        d.acked(11);
        assert_eq!(d.waiting_for(), Some(12));
        // Writers below 105 still running: still waiting.
        assert_eq!(d.ready(&[13, 14], h(104, 110)), 0);
        // 12 commits: it goes first, then the rest.
        assert_eq!(d.ready(&[12, 13, 14], h(104, 110)), 3);
        d.acked(14);
        assert_eq!(d.waiting_for(), None);
    }

    #[test]
    fn a_rolled_back_gap_is_passed_once_the_horizon_moves_past_it() {
        let mut d = Delivery::new(0, BACKOFF);
        assert_eq!(d.ready(&[2, 3], h(50, 51)), 0);
        assert_eq!(d.ready(&[2, 3], h(50, 52)), 0);
        // Every transaction below 51 has ended and 1 never showed: gone.
        assert_eq!(d.ready(&[2, 3], h(51, 52)), 2);
        // A failed delivery re-reads the same rows: the gap stays passed.
        d.failed(0, 0.0);
        assert_eq!(d.ready(&[2, 3], h(51, 52)), 2);
        d.acked(3);
        assert_eq!(d.cursor(), 3);
    }

    #[test]
    fn a_later_gap_is_judged_on_its_own() {
        let mut d = Delivery::new(0, BACKOFF);
        assert_eq!(d.ready(&[1, 3, 5], h(10, 12)), 1);
        assert_eq!(d.ready(&[1, 3, 5], h(12, 13)), 2);
        // The gap at 4 was first seen now, with xmax 13.
        assert_eq!(d.waiting_for(), Some(4));
        assert_eq!(d.ready(&[1, 3, 5], h(12, 14)), 2);
        assert_eq!(d.ready(&[1, 3, 5], h(13, 14)), 3);
    }

    #[test]
    fn sqlite_gaps_never_fill_and_are_passed_at_once() {
        let mut d = Delivery::new(0, BACKOFF);
        assert_eq!(d.ready(&[5, 9, 10], None), 3);
    }

    #[test]
    fn rows_at_or_below_the_cursor_are_never_resent() {
        let mut d = Delivery::new(5, BACKOFF);
        assert_eq!(d.ready(&[5, 6], None), 0);
        assert_eq!(d.ready(&[6, 7], None), 2);
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        assert_eq!(BACKOFF.delay(1, 1.0), 100);
        assert_eq!(BACKOFF.delay(2, 1.0), 200);
        assert_eq!(BACKOFF.delay(3, 1.0), 400);
        assert_eq!(BACKOFF.delay(5, 1.0), 1_000);
        assert_eq!(BACKOFF.delay(60, 1.0), 1_000);
        assert_eq!(BACKOFF.delay(1, 0.0), 50);
        assert_eq!(BACKOFF.delay(5, 0.0), 500);
        let mid = BACKOFF.delay(5, 0.5);
        assert!((500..=1_000).contains(&mid), "{mid}");
    }

    #[test]
    fn failures_push_the_retry_out_and_an_ack_resets_them() {
        let mut d = Delivery::new(0, BACKOFF);
        assert_eq!(d.failed(1_000, 1.0), 1_100);
        assert_eq!(d.failed(1_100, 1.0), 1_300);
        assert_eq!(d.failures(), 2);
        d.acked(4);
        assert_eq!(d.failures(), 0);
        assert_eq!(d.retry_at(), 0);
        assert_eq!(d.failed(2_000, 1.0), 2_100);
    }
}
