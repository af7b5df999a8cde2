//! The deadline sweep (催办 / 督办), sans-IO.
//!
//! Each running [`Clock`] owes a fixed series of alerts: one warning at
//! each configured percentage of its limit (`[orders] warn_percents`,
//! ascending, e.g. `[50, 80]`), then one overdue alert once the due time
//! has passed. `Clock::alerts_sent` counts how far along that series the
//! clock is. [`next_alert_at`] says when the next one falls, so the store
//! can keep it in an indexed column and a sweep reads only rows that are
//! due; [`sweep`] says what to record now. The caller turns warnings into
//! urges (催办) and overdue alerts into supervision (督办), stores
//! `alerts_sent_after`, and recomputes [`next_alert_at`]. Nothing here
//! reads a clock or a database: `now` is passed in.
//!
//! Warnings are placed on the current limit (`started_at` to `due_at`), so
//! an approved extension moves the remaining ones later. If the percents
//! in configuration change, `alerts_sent` keeps counting positions in the
//! new list; at worst one warning is skipped or repeated.

use crate::orders::model::Clock;

/// What the caller should record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// `percent` of the limit has gone by: urge (催办).
    Warning { percent: u8 },
    /// The due time has passed: supervise (督办).
    Overdue,
}

/// One alert now due for a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    /// When the alert fell due (Unix ms), not when the sweep ran.
    pub at: i64,
    /// The clock's `alerts_sent` once this alert is recorded.
    pub alerts_sent_after: u8,
}

/// When warning `percent` falls: that share of the way from start to due.
fn warning_at(clock: &Clock, percent: u8) -> i64 {
    let limit = i128::from(clock.due_at) - i128::from(clock.started_at);
    let at = i128::from(clock.started_at) + limit * i128::from(percent) / 100;
    at.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// When the overdue alert falls: the first millisecond after `due_at`, the
/// instant [`Clock::is_overdue`] turns true.
fn overdue_at(clock: &Clock) -> i64 {
    clock.due_at.saturating_add(1)
}

/// When the next alert for `clock` falls, given `alerts_sent`; `None` when
/// the clock is stopped or every alert was sent. `percents` must be the
/// ascending list the clock's alerts were counted against.
pub fn next_alert_at(clock: &Clock, percents: &[u8]) -> Option<i64> {
    if !clock.is_open() {
        return None;
    }
    let sent = usize::from(clock.alerts_sent);
    match percents.get(sent) {
        Some(&percent) => Some(warning_at(clock, percent)),
        None if sent == percents.len() => Some(overdue_at(clock)),
        None => None,
    }
}

/// The alerts due for `clock` at `now`: at most one.
///
/// Normally that is the one [`next_alert_at`] announced. When several fell
/// due at once (the server was down, or sweeps are sparse) only the latest
/// applies and the stale ones are skipped: past the due time, just the
/// overdue alert (a late reminder that time is running out says nothing
/// supervision does not); before it, just the highest warning reached.
/// `alerts_sent_after` jumps past what was skipped, so skipped alerts are
/// never sent later.
pub fn sweep(now: i64, clock: &Clock, percents: &[u8]) -> Vec<Alert> {
    let Some(next) = next_alert_at(clock, percents) else {
        return Vec::new();
    };
    if now < next {
        return Vec::new();
    }
    let overdue = overdue_at(clock);
    let overdue_index = percents.len();
    if now >= overdue {
        return vec![Alert {
            kind: AlertKind::Overdue,
            at: overdue,
            alerts_sent_after: alert_count(overdue_index + 1),
        }];
    }
    // Warnings from alerts_sent on that have fallen due; the last one wins.
    let sent = usize::from(clock.alerts_sent);
    percents
        .iter()
        .enumerate()
        .skip(sent)
        .map(|(index, &percent)| (index, percent, warning_at(clock, percent)))
        .filter(|&(_, _, at)| at <= now)
        .max_by_key(|&(index, _, _)| index)
        .map(|(index, percent, at)| Alert {
            kind: AlertKind::Warning { percent },
            at,
            alerts_sent_after: alert_count(index + 1),
        })
        .into_iter()
        .collect()
}

/// `alerts_sent` is a `u8`; config allows at most 99 warnings, so this
/// never saturates in practice.
fn alert_count(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::model::ClockKind;

    const P: &[u8] = &[50, 80];

    /// A clock from 1000 to 2000 (50% at 1500, 80% at 1800, overdue at 2001).
    fn clock(alerts_sent: u8) -> Clock {
        Clock {
            kind: ClockKind::Handle,
            unit: Some("water-bureau".into()),
            started_at: 1000,
            due_at: 2000,
            original_due_at: 2000,
            stopped_at: None,
            alerts_sent,
        }
    }

    fn after(mut c: Clock, alerts: &[Alert]) -> Clock {
        if let Some(last) = alerts.last() {
            c.alerts_sent = last.alerts_sent_after;
        }
        c
    }

    #[test]
    fn next_alert_walks_warnings_then_overdue() {
        assert_eq!(next_alert_at(&clock(0), P), Some(1500));
        assert_eq!(next_alert_at(&clock(1), P), Some(1800));
        assert_eq!(next_alert_at(&clock(2), P), Some(2001));
        assert_eq!(next_alert_at(&clock(3), P), None);
        assert_eq!(next_alert_at(&clock(200), P), None);
        // No warnings configured: straight to overdue.
        assert_eq!(next_alert_at(&clock(0), &[]), Some(2001));
        assert_eq!(next_alert_at(&clock(1), &[]), None);
    }

    #[test]
    fn stopped_clocks_have_no_alerts() {
        let mut c = clock(0);
        c.stopped_at = Some(1200);
        assert_eq!(next_alert_at(&c, P), None);
        assert!(sweep(5000, &c, P).is_empty());
    }

    #[test]
    fn one_sweep_per_alert_when_on_time() {
        let mut c = clock(0);
        assert!(sweep(1499, &c, P).is_empty());
        let alerts = sweep(1500, &c, P);
        assert_eq!(
            alerts,
            vec![Alert {
                kind: AlertKind::Warning { percent: 50 },
                at: 1500,
                alerts_sent_after: 1
            }]
        );
        c = after(c, &alerts);
        assert!(sweep(1700, &c, P).is_empty());
        let alerts = sweep(1810, &c, P);
        assert_eq!(alerts[0].kind, AlertKind::Warning { percent: 80 });
        assert_eq!((alerts[0].at, alerts[0].alerts_sent_after), (1800, 2));
        c = after(c, &alerts);
        // Exactly at the due time it is not yet overdue.
        assert!(sweep(2000, &c, P).is_empty());
        let alerts = sweep(2001, &c, P);
        assert_eq!(
            alerts,
            vec![Alert {
                kind: AlertKind::Overdue,
                at: 2001,
                alerts_sent_after: 3
            }]
        );
        c = after(c, &alerts);
        assert!(sweep(9999, &c, P).is_empty());
        assert_eq!(next_alert_at(&c, P), None);
    }

    #[test]
    fn stale_warnings_are_skipped_for_the_latest() {
        // Down from before 50% until after 80%: only the 80% warning.
        let alerts = sweep(1900, &clock(0), P);
        assert_eq!(
            alerts,
            vec![Alert {
                kind: AlertKind::Warning { percent: 80 },
                at: 1800,
                alerts_sent_after: 2
            }]
        );
        assert_eq!(next_alert_at(&after(clock(0), &alerts), P), Some(2001));
    }

    #[test]
    fn past_due_only_overdue_is_sent() {
        for sent in 0..=2 {
            let alerts = sweep(50_000, &clock(sent), P);
            assert_eq!(alerts.len(), 1, "sent {sent}");
            assert_eq!(alerts[0].kind, AlertKind::Overdue);
            assert_eq!(alerts[0].at, 2001);
            assert_eq!(alerts[0].alerts_sent_after, 3);
        }
    }

    #[test]
    fn extension_moves_remaining_alerts() {
        // 50% sent; the due time moves from 2000 to 3000.
        let mut c = clock(1);
        c.due_at = 3000;
        assert_eq!(next_alert_at(&c, P), Some(2600));
        assert!(sweep(2500, &c, P).is_empty());
        // Overdue on the original due time no longer counts.
        assert!(sweep(2001, &c, P).is_empty());
        assert_eq!(sweep(3001, &c, P)[0].kind, AlertKind::Overdue);
    }

    #[test]
    fn zero_length_limits_and_odd_inputs() {
        // "0h" (emergency dispatch): warnings at the start, overdue 1 ms on.
        let mut c = clock(0);
        c.due_at = c.started_at;
        assert_eq!(next_alert_at(&c, P), Some(1000));
        assert_eq!(
            sweep(1000, &c, P)[0].kind,
            AlertKind::Warning { percent: 80 }
        );
        assert_eq!(sweep(1001, &c, P)[0].kind, AlertKind::Overdue);
        // Extreme times do not overflow.
        let mut c = clock(0);
        c.started_at = i64::MIN;
        c.due_at = i64::MAX;
        assert_eq!(next_alert_at(&c, &[50]), Some(-1));
        c.alerts_sent = 1;
        assert_eq!(next_alert_at(&c, &[50]), Some(i64::MAX));
        // More warnings than a u8 can count stops at the top.
        assert_eq!(alert_count(300), u8::MAX);
    }
}
