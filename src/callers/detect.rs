//! Nuisance detection: patterns over recorded calls, as a pure function.
//!
//! The sweep in [`super::task`] reads the recent calls and the calls already
//! used as evidence, and hands them here with the time; what comes back are
//! new flags, each naming its number, its pattern and the calls it rests on.
//! A call is evidence for a pattern once, so sweeping the same calls again
//! finds nothing new (the store enforces the same rule).

use super::Pattern;
use std::collections::{BTreeMap, HashSet};

/// What detection needs to know about one recorded call. Times are Unix ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFact {
    pub call_id: String,
    pub caller: String,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: i64,
    /// `caller`, `hotline` or empty.
    pub hangup_by: String,
    /// When an agent answered, and when the agent's leg ended.
    pub connected_at: Option<i64>,
    pub seat_ended_at: Option<i64>,
    /// RTP packets the caller sent.
    pub packets_in: i64,
    /// An order links the call: it carried an appeal.
    pub has_order: bool,
    /// The call was turned away by a block (it counts toward nothing).
    pub blocked: bool,
}

impl CallFact {
    /// How long the agent talked with the caller.
    fn talk_ms(&self) -> i64 {
        match (self.connected_at, self.seat_ended_at) {
            (Some(from), Some(to)) => to - from,
            (Some(from), None) => self.ended_at - from,
            _ => 0,
        }
    }

    fn long_without_appeal(&self, t: &Thresholds) -> bool {
        !self.has_order && self.talk_ms() >= t.long_talk_ms
    }

    fn silent_hangup(&self, t: &Thresholds) -> bool {
        let Some(answered) = self.answered_at else {
            return false;
        };
        self.hangup_by == "caller"
            && self.connected_at.is_none()
            && (self.ended_at - answered < t.short_call_ms || self.packets_in == 0)
    }
}

/// When a pattern is a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// How far back calls count.
    pub window_ms: i64,
    pub calls_per_window: u32,
    pub long_talk_ms: i64,
    pub long_calls: u32,
    pub short_call_ms: i64,
    pub silent_hangups: u32,
}

/// A new flag: a number, what it did, and the calls that show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub number: String,
    pub pattern: Pattern,
    /// Oldest first.
    pub call_ids: Vec<String>,
    /// A sentence for the reviewer.
    pub detail: String,
}

/// The flags `calls` show at `now`. `used` holds (call id, pattern) pairs
/// that are already evidence of an earlier flag; they count for nothing.
pub fn detect(
    t: &Thresholds,
    now: i64,
    calls: &[CallFact],
    used: &HashSet<(String, Pattern)>,
) -> Vec<Found> {
    let since = now - t.window_ms;
    let mut by_number: BTreeMap<&str, Vec<&CallFact>> = BTreeMap::new();
    for c in calls {
        if c.started_at < since || c.started_at > now || c.blocked || !is_number(&c.caller) {
            continue;
        }
        by_number.entry(&c.caller).or_default().push(c);
    }
    let hours = t.window_ms / 3_600_000;
    let mut found = Vec::new();
    for (number, mut list) in by_number {
        list.sort_by(|a, b| (a.started_at, &a.call_id).cmp(&(b.started_at, &b.call_id)));
        let rules = [
            (
                Pattern::ManyCalls,
                t.calls_per_window,
                format!("calls within {hours} h"),
            ),
            (
                Pattern::LongCalls,
                t.long_calls,
                format!(
                    "calls within {hours} h held over {} s with an agent and no appeal",
                    t.long_talk_ms / 1000
                ),
            ),
            (
                Pattern::SilentHangups,
                t.silent_hangups,
                format!(
                    "calls within {hours} h hung up silently or within {} s",
                    t.short_call_ms / 1000
                ),
            ),
        ];
        for (pattern, threshold, what) in rules {
            let evidence: Vec<String> = list
                .iter()
                .filter(|c| shows(pattern, c, t) && !used.contains(&(c.call_id.clone(), pattern)))
                .map(|c| c.call_id.clone())
                .collect();
            if evidence.len() >= threshold as usize {
                found.push(Found {
                    number: number.to_owned(),
                    pattern,
                    detail: format!("{} {what}", evidence.len()),
                    call_ids: evidence,
                });
            }
        }
    }
    found
}

/// Whether a call is evidence of `pattern`.
fn shows(pattern: Pattern, c: &CallFact, t: &Thresholds) -> bool {
    match pattern {
        Pattern::ManyCalls => true,
        Pattern::LongCalls => c.long_without_appeal(t),
        Pattern::SilentHangups => c.silent_hangup(t),
        // Only an agent raises these.
        Pattern::AgentReport => false,
    }
}

/// Only real numbers are flagged: an anonymous or malformed caller id says
/// nothing about who calls.
fn is_number(text: &str) -> bool {
    (3..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit() || b == b'+')
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const NOW: i64 = 1_800_000_000_000;

    fn t() -> Thresholds {
        Thresholds {
            window_ms: 24 * H,
            calls_per_window: 3,
            long_talk_ms: 600_000,
            long_calls: 2,
            short_call_ms: 5_000,
            silent_hangups: 3,
        }
    }

    /// A 60 s IVR-only call from `caller` `ago` ms before now.
    fn call(id: &str, caller: &str, ago: i64) -> CallFact {
        let start = NOW - ago;
        CallFact {
            call_id: id.into(),
            caller: caller.into(),
            started_at: start,
            answered_at: Some(start + 100),
            ended_at: start + 60_000,
            hangup_by: "caller".into(),
            connected_at: None,
            seat_ended_at: None,
            packets_in: 3000,
            has_order: false,
            blocked: false,
        }
    }

    #[test]
    fn many_calls_in_the_window_flag_once() {
        let calls = vec![
            call("a", "13900000001", 2 * H),
            call("b", "13900000001", H),
            call("c", "13900000001", 1000),
            call("old", "13900000001", 25 * H),
            call("x", "13900000002", H),
            call("y", "13900000002", 2 * H),
        ];
        let found = detect(&t(), NOW, &calls, &HashSet::new());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].number, "13900000001");
        assert_eq!(found[0].pattern, Pattern::ManyCalls);
        assert_eq!(found[0].call_ids, ["a", "b", "c"]);
        assert_eq!(found[0].detail, "3 calls within 24 h");

        // The same evidence again: nothing new.
        let used: HashSet<_> = found[0]
            .call_ids
            .iter()
            .map(|c| (c.clone(), Pattern::ManyCalls))
            .collect();
        assert!(detect(&t(), NOW, &calls, &used).is_empty());
        // Three more calls are new evidence.
        let mut more = calls.clone();
        for id in ["d", "e", "f"] {
            more.push(call(id, "13900000001", 10));
        }
        let again = detect(&t(), NOW, &more, &used);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].call_ids, ["d", "e", "f"]);
    }

    #[test]
    fn long_calls_without_an_order_hold_the_line() {
        let long = |id: &str, has_order: bool| {
            let mut c = call(id, "13900000003", H);
            c.connected_at = Some(c.started_at + 10_000);
            c.seat_ended_at = Some(c.started_at + 10_000 + 700_000);
            c.ended_at = c.seat_ended_at.unwrap();
            c.has_order = has_order;
            c
        };
        let mut th = t();
        th.calls_per_window = 10;
        let calls = vec![long("l1", false), long("l2", true)];
        assert!(detect(&th, NOW, &calls, &HashSet::new()).is_empty());
        let calls = vec![long("l1", false), long("l2", true), long("l3", false)];
        let found = detect(&th, NOW, &calls, &HashSet::new());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pattern, Pattern::LongCalls);
        assert_eq!(found[0].call_ids, ["l1", "l3"]);
    }

    #[test]
    fn silent_and_immediate_hangups() {
        let mut quick = call("q1", "13900000004", 3 * H);
        quick.ended_at = quick.started_at + 2_000;
        let mut silent = call("q2", "13900000004", 2 * H);
        silent.packets_in = 0;
        let mut by_us = call("q3", "13900000004", H);
        by_us.ended_at = by_us.started_at + 2_000;
        by_us.hangup_by = "hotline".into();
        let mut unanswered = call("q4", "13900000004", H);
        unanswered.answered_at = None;
        let mut quick2 = call("q5", "13900000004", 1000);
        quick2.ended_at = quick2.started_at + 1_000;
        let mut th = t();
        th.calls_per_window = 10;
        let found = detect(
            &th,
            NOW,
            &[quick, silent, by_us, unanswered, quick2],
            &HashSet::new(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pattern, Pattern::SilentHangups);
        assert_eq!(found[0].call_ids, ["q1", "q2", "q5"]);
    }

    #[test]
    fn blocked_calls_anonymous_callers_and_future_calls_count_for_nothing() {
        let mut calls = vec![];
        for (i, ago) in [H, 2 * H, 3 * H].into_iter().enumerate() {
            let mut c = call(&format!("b{i}"), "13900000005", ago);
            c.blocked = true;
            calls.push(c);
            calls.push(call(&format!("n{i}"), "anonymous", ago));
        }
        calls.push(call("future", "13900000006", -H));
        calls.push(call("f2", "13900000006", H));
        calls.push(call("f3", "13900000006", H));
        assert!(detect(&t(), NOW, &calls, &HashSet::new()).is_empty());
    }
}
