//! The monthly KPIs of DOMAIN.md ("KPI formulas") as a sans-IO core:
//! recorded rows in (call records, the seat log, order documents), KPI
//! tables out. Nothing here reads a counter; every figure is recounted from
//! what was recorded, so it cannot drift. [`compute`] is the only entry.
//!
//! # When a row counts (the deciding event)
//!
//! Each row is counted in the month, in local time (`[orders] utc_offset`),
//! in which its deciding event falls:
//!
//! - a call: when it asked for an agent (`queued_at`). Calls that never
//!   queued are IVR-only and count nowhere. Connected = `connected_at` set;
//!   within 15 s = connected at most 15 000 ms after queueing; abandoned =
//!   not connected and no callback requested. Speed of answer is
//!   `connected_at - queued_at`, handling time `seat_ended_at - connected_at`.
//! - wrap-up: a seat-log row with activity `wrap_up`, when it starts; it lasts
//!   until the seat's next row.
//! - valid appeal and direct answer: when the order was accepted. Orders
//!   closed as out of scope (art. 9) or merged are not valid appeals; a direct
//!   answer is a valid appeal closed as such that never went to a unit.
//! - sign, return (per assignment) and response, extension (lead assignments
//!   only, since only the lead contacts the citizen and asks for time): when
//!   the unit was dispatched. Signed on time = signed by the sign clock's due
//!   time; responded = the contact clock started at that dispatch stopped by
//!   its due time (a lead whose return was approved before it contacted the
//!   citizen is left out: the order was not its remit); returned = the
//!   assignment ended by an approved return; extended = an approved extension
//!   asked during that assignment.
//! - on-time closing: when the lead's handle clock is (now) due, counting only
//!   clocks that have stopped or whose due time has passed; on time = the
//!   reply stopped the clock by the extended due time (and, for the
//!   `_original` rate, by the first due time). Clocks ended by a return do not
//!   count. Late ones are the month's overdue orders. A co-handler's handle
//!   clock that ran past its due time is a late report.
//! - rework: numerator when an unsatisfied follow-up sent the order back,
//!   denominator when a lead's reply was accepted at review; both go to the
//!   unit whose reply was accepted last before.
//! - follow-up: when the order closed (its follow-up clock started); followed
//!   up = at least one attempt since, reached or not.
//! - resolution and satisfaction: when the citizen was reached; one per order
//!   and month (the month's last reached follow-up).
//! - a return request rejected as within the unit's remit (buck-passing) and
//!   a reply sent back at review: when decided.
//!
//! Unit rows are summed into every division enclosing the unit's
//! (`units.toml`), and with the rows that have no unit (a direct answer's
//! follow-up) into the hotline's.
//!
//! # Late rows
//!
//! A month that was published keeps its report. A row whose deciding event
//! falls in a published month but that was recorded after the publication
//! (its call id, seat-log id or order audit id above the month's watermark)
//! counts in the next month instead, and the report says how many came from
//! which month.

use super::month::Month;
use crate::orders::lifecycle::{Closing, RequestState, WorkOrder};
use crate::orders::model::{AppealType, AssignmentRole, AssignmentState, ClockKind, Satisfaction};
use crate::orders::units::Units;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use time::UtcOffset;

/// The slice of a call record the KPIs read.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRow {
    /// The record's id: later records have higher ids.
    pub id: i64,
    pub queue: Option<String>,
    pub queued_at: Option<i64>,
    pub connected_at: Option<i64>,
    pub seat_ended_at: Option<i64>,
    pub ended_at: i64,
    pub callback_requested: bool,
}

/// The slice of a seat-log row the KPIs read.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatRow {
    pub id: i64,
    pub seat: String,
    pub at: i64,
    pub activity: String,
}

/// The highest ids a published report counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Watermarks {
    pub call_id: i64,
    pub seat_log_id: i64,
    pub audit_id: i64,
}

/// What is needed to move late rows out of published months.
#[derive(Debug, Clone, Default)]
pub struct Lateness {
    /// Published months and what they counted.
    pub published: BTreeMap<Month, Watermarks>,
    /// For order changes in published months: (order number, time) → the
    /// lowest audit id recording a change at that time.
    pub order_change_ids: HashMap<(String, i64), i64>,
}

/// Everything [`compute`] reads.
pub struct Input<'a> {
    pub month: Month,
    pub offset: UtcOffset,
    /// Clocks due after this are not judged yet.
    pub now: i64,
    pub calls: &'a [CallRow],
    /// Sorted by seat, then time, then id.
    pub seat_log: &'a [SeatRow],
    pub orders: &'a [WorkOrder],
    pub units: &'a Units,
    pub lateness: &'a Lateness,
}

/// A rate with its numerator and denominator; `rate` is null when nothing
/// was counted, never 0 or 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub numerator: u64,
    pub denominator: u64,
    pub rate: Option<f64>,
}

impl Rate {
    fn count(&mut self, hit: bool) {
        self.denominator += 1;
        if hit {
            self.numerator += 1;
        }
        self.settle();
    }

    fn settle(&mut self) {
        self.rate = (self.denominator > 0).then(|| {
            (self.numerator as f64 / self.denominator as f64 * 10_000.0).round() / 10_000.0
        });
    }

    fn add(&mut self, other: &Rate) {
        self.numerator += other.numerator;
        self.denominator += other.denominator;
        self.settle();
    }
}

/// A mean duration in seconds with its count and total; null when empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Mean {
    pub count: u64,
    pub total_ms: i64,
    pub seconds: Option<f64>,
}

impl Mean {
    fn push(&mut self, ms: i64) {
        self.count += 1;
        self.total_ms += ms.max(0);
        self.seconds =
            Some((self.total_ms as f64 / self.count as f64 / 1000.0 * 10.0).round() / 10.0);
    }
}

/// Call KPIs of the hotline or one queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallKpis {
    /// Calls that asked for an agent.
    pub offered: u64,
    pub connection_rate: Rate,
    pub answered_within_15s_rate: Rate,
    pub abandonment_rate: Rate,
    pub average_speed_of_answer: Mean,
    pub average_handling_time: Mean,
}

/// One local day's calls (for the daily chart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayCalls {
    /// Day of the month, from 1.
    pub day: u32,
    pub offered: u64,
    pub answered_within_15s: u64,
}

/// How reached citizens rated the handling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SatisfactionCounts {
    pub very_satisfied: u64,
    pub satisfied: u64,
    pub basically_satisfied: u64,
    pub unsatisfied: u64,
}

/// Order KPIs of a unit, a division or the hotline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderKpis {
    /// Assignments dispatched (lead and co-handler).
    pub dispatched: u64,
    /// Lead assignments dispatched.
    pub dispatched_as_lead: u64,
    pub on_time_sign_rate: Rate,
    pub response_rate: Rate,
    pub on_time_closing_rate: Rate,
    pub on_time_closing_original_rate: Rate,
    pub return_rate: Rate,
    pub extension_rate: Rate,
    pub rework_rate: Rate,
    pub follow_up_rate: Rate,
    pub resolution_rate: Rate,
    pub satisfaction_rate: Rate,
    pub satisfaction: SatisfactionCounts,
    /// Lead handle clocks due in the month and missed.
    pub overdue_orders: u64,
    /// Return requests rejected as within the unit's remit.
    pub returns_rejected: u64,
    /// Replies sent back at review.
    pub replies_sent_back: u64,
    /// Co-handler reports later than due.
    pub late_co_handler_reports: u64,
    /// Praise orders (表扬) the unit led.
    pub praise_orders: u64,
}

impl OrderKpis {
    fn add(&mut self, o: &OrderKpis) {
        self.dispatched += o.dispatched;
        self.dispatched_as_lead += o.dispatched_as_lead;
        for (a, b) in [
            (&mut self.on_time_sign_rate, &o.on_time_sign_rate),
            (&mut self.response_rate, &o.response_rate),
            (&mut self.on_time_closing_rate, &o.on_time_closing_rate),
            (
                &mut self.on_time_closing_original_rate,
                &o.on_time_closing_original_rate,
            ),
            (&mut self.return_rate, &o.return_rate),
            (&mut self.extension_rate, &o.extension_rate),
            (&mut self.rework_rate, &o.rework_rate),
            (&mut self.follow_up_rate, &o.follow_up_rate),
            (&mut self.resolution_rate, &o.resolution_rate),
            (&mut self.satisfaction_rate, &o.satisfaction_rate),
        ] {
            a.add(b);
        }
        self.satisfaction.very_satisfied += o.satisfaction.very_satisfied;
        self.satisfaction.satisfied += o.satisfaction.satisfied;
        self.satisfaction.basically_satisfied += o.satisfaction.basically_satisfied;
        self.satisfaction.unsatisfied += o.satisfaction.unsatisfied;
        self.overdue_orders += o.overdue_orders;
        self.returns_rejected += o.returns_rejected;
        self.replies_sent_back += o.replies_sent_back;
        self.late_co_handler_reports += o.late_co_handler_reports;
        self.praise_orders += o.praise_orders;
    }
}

/// The order numbers behind a unit's failures and merits: the evidence
/// notices and scores cite.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitEvidence {
    pub overdue: BTreeSet<String>,
    pub returned: BTreeSet<String>,
    pub reworked: BTreeSet<String>,
    pub buck_passing: BTreeSet<String>,
    pub late_co_handler: BTreeSet<String>,
    pub sent_back: BTreeSet<String>,
    pub praise: BTreeSet<String>,
}

/// One step done late or still open past its due time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overdue {
    pub order_no: String,
    pub unit: String,
    /// `handle` (the lead's reply) or `report` (a co-handler's).
    pub step: String,
    pub due_at: i64,
    /// When it was done; null while still open.
    pub done_at: Option<i64>,
    /// Hours past due at `done_at` (while open: at the month's end, or now
    /// if that is earlier).
    pub hours_late: f64,
}

/// The hotline's own order KPIs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HotlineKpis {
    pub valid_appeals: u64,
    pub direct_answer_rate: Rate,
    #[serde(flatten)]
    pub orders: OrderKpis,
}

/// Everything [`compute`] finds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kpis {
    pub calls: CallKpis,
    pub average_wrap_up_time: Mean,
    pub queues: BTreeMap<String, CallKpis>,
    pub daily: Vec<DayCalls>,
    pub hotline: HotlineKpis,
    pub units: BTreeMap<String, OrderKpis>,
    pub divisions: BTreeMap<String, OrderKpis>,
    pub evidence: BTreeMap<String, UnitEvidence>,
    pub overdue: Vec<Overdue>,
    /// Rows recorded after their month was published, by that month.
    pub late: BTreeMap<Month, u64>,
    /// Indexes into [`Input::orders`] of the orders accepted in the month
    /// (valid or not), for the lists built from appeals.
    pub accepted: Vec<usize>,
}

/// Decides which month each row counts in.
struct Months<'a> {
    target: Month,
    offset: UtcOffset,
    lateness: &'a Lateness,
    late_rows: BTreeSet<(u8, String, i64)>,
    late: BTreeMap<Month, u64>,
}

impl Months<'_> {
    /// Whether a row of kind `kind` (0 call, 1 seat, 2 order) with its event
    /// at `t` counts in the target month; `is_late` says whether it was
    /// recorded after a month's publication.
    fn counts(
        &mut self,
        t: i64,
        kind: u8,
        key: &str,
        is_late: impl Fn(&Watermarks) -> bool,
    ) -> bool {
        let home = Month::of(t, self.offset);
        let mut m = home;
        while let Some(w) = self.lateness.published.get(&m) {
            if !is_late(w) {
                break;
            }
            m = m.next();
        }
        if m != self.target {
            return false;
        }
        if home != m && self.late_rows.insert((kind, key.to_owned(), t)) {
            *self.late.entry(home).or_default() += 1;
        }
        true
    }

    fn order(&mut self, order_no: &str, t: i64) -> bool {
        let id = self
            .lateness
            .order_change_ids
            .get(&(order_no.to_owned(), t))
            .copied();
        self.counts(t, 2, order_no, |w| id.is_some_and(|id| id > w.audit_id))
    }
}

/// Counts one month. See the module docs for the rules.
pub fn compute(input: &Input) -> Kpis {
    let mut months = Months {
        target: input.month,
        offset: input.offset,
        lateness: input.lateness,
        late_rows: BTreeSet::new(),
        late: BTreeMap::new(),
    };
    let mut k = Kpis::default();
    count_calls(input, &mut months, &mut k);
    count_wrap_up(input, &mut months, &mut k);
    for (i, order) in input.orders.iter().enumerate() {
        if order
            .accepted_at
            .is_some_and(|at| months.order(&order.order_no, at))
        {
            k.accepted.push(i);
        }
        count_order(input, &mut months, &mut k, order);
    }
    // Numerators added outside `count` need their rate worked out.
    k.hotline.orders.rework_rate.settle();
    for u in k.units.values_mut() {
        u.rework_rate.settle();
    }
    for (unit, kpis) in &k.units {
        let Some(u) = input.units.unit(unit) else {
            continue;
        };
        for d in input.units.divisions_up(&u.division) {
            k.divisions.entry(d.code.clone()).or_default().add(kpis);
        }
    }
    k.overdue
        .sort_by(|a, b| (a.due_at, &a.order_no, &a.unit).cmp(&(b.due_at, &b.order_no, &b.unit)));
    k.late = months.late;
    k
}

fn count_calls(input: &Input, months: &mut Months, k: &mut Kpis) {
    let (from, _) = input.month.bounds(input.offset);
    k.daily = (1..=input.month.days(input.offset) as u32)
        .map(|day| DayCalls {
            day,
            ..DayCalls::default()
        })
        .collect();
    for c in input.calls {
        let Some(q) = c.queued_at else { continue };
        let id = c.id;
        if !months.counts(q, 0, &id.to_string(), |w| id > w.call_id) {
            continue;
        }
        let within = c.connected_at.is_some_and(|a| a - q <= 15_000);
        let queue = c.queue.clone().unwrap_or_else(|| "-".into());
        for kpis in [&mut k.calls, k.queues.entry(queue).or_default()] {
            kpis.offered += 1;
            kpis.connection_rate.count(c.connected_at.is_some());
            kpis.answered_within_15s_rate.count(within);
            kpis.abandonment_rate
                .count(c.connected_at.is_none() && !c.callback_requested);
            if let Some(a) = c.connected_at {
                kpis.average_speed_of_answer.push(a - q);
                kpis.average_handling_time
                    .push(c.seat_ended_at.unwrap_or(c.ended_at) - a);
            }
        }
        // A late row lands on day 1 of the month it counts in.
        let day = ((q - from).max(0) / 86_400_000) as usize;
        if let Some(d) = k.daily.get_mut(day) {
            d.offered += 1;
            d.answered_within_15s += u64::from(within);
        }
    }
}

fn count_wrap_up(input: &Input, months: &mut Months, k: &mut Kpis) {
    for pair in input.seat_log.windows(2) {
        let (row, next) = (&pair[0], &pair[1]);
        if row.activity != "wrap_up" || row.seat != next.seat {
            continue;
        }
        let id = row.id;
        if months.counts(row.at, 1, &id.to_string(), |w| id > w.seat_log_id) {
            k.average_wrap_up_time.push(next.at - row.at);
        }
    }
}

/// Adds to the unit's row (when there is a unit) and the hotline's.
fn bump(k: &mut Kpis, unit: Option<&str>, f: impl Fn(&mut OrderKpis)) {
    f(&mut k.hotline.orders);
    if let Some(u) = unit {
        f(k.units.entry(u.to_owned()).or_default());
    }
}

fn evidence<'k>(k: &'k mut Kpis, unit: &str) -> &'k mut UnitEvidence {
    k.evidence.entry(unit.to_owned()).or_default()
}

fn count_order(input: &Input, months: &mut Months, k: &mut Kpis, o: &WorkOrder) {
    let no = o.order_no.as_str();
    // Valid appeals and direct answers.
    if let Some(at) = o.accepted_at
        && months.order(no, at)
        && !matches!(
            o.closing,
            Some(Closing::OutOfScope { .. } | Closing::Merged { .. })
        )
    {
        k.hotline.valid_appeals += 1;
        let direct =
            o.assignments.is_empty() && matches!(o.closing, Some(Closing::DirectAnswer { .. }));
        k.hotline.direct_answer_rate.count(direct);
    }
    // Per assignment: sign, return; the lead's response and extension.
    for a in &o.assignments {
        if !months.order(no, a.dispatched_at) {
            continue;
        }
        let unit = a.unit.as_str();
        let clock = |kind| {
            o.clocks.iter().find(|c| {
                c.kind == kind && c.unit.as_deref() == Some(unit) && c.started_at == a.dispatched_at
            })
        };
        let signed =
            clock(ClockKind::Sign).is_some_and(|c| a.signed_at.is_some_and(|s| s <= c.due_at));
        let returned = a.state == AssignmentState::Returned;
        let lead = a.role == AssignmentRole::Lead;
        // A lead whose return was approved before contacting never owed
        // the contact: the order was not its remit.
        let owes_contact = !(returned && a.contacted_at.is_none());
        let responded =
            clock(ClockKind::Contact).is_some_and(|c| c.stopped_at.is_some_and(|s| s <= c.due_at));
        let extended = o.extensions.iter().any(|e| {
            e.unit == unit
                && e.state == RequestState::Approved
                && e.requested_at >= a.dispatched_at
                && a.finished_at.is_none_or(|f| e.requested_at <= f)
        });
        let praise = lead && o.intake.appeal_type == AppealType::Praise;
        bump(k, Some(unit), |u| {
            u.dispatched += 1;
            u.on_time_sign_rate.count(signed);
            u.return_rate.count(returned);
            if lead {
                u.dispatched_as_lead += 1;
                if owes_contact {
                    u.response_rate.count(responded);
                }
                u.extension_rate.count(extended);
                u.praise_orders += u64::from(praise);
            }
        });
        if returned {
            evidence(k, unit).returned.insert(no.to_owned());
        }
        if praise {
            evidence(k, unit).praise.insert(no.to_owned());
        }
    }
    // Rejected returns: buck-passing.
    for r in &o.returns {
        if r.state == RequestState::Rejected
            && let Some(at) = r.decided_at
            && months.order(no, at)
        {
            bump(k, Some(&r.unit), |u| u.returns_rejected += 1);
            evidence(k, &r.unit).buck_passing.insert(no.to_owned());
        }
    }
    // Handle clocks: on-time closing (lead), late reports (co-handlers).
    let return_times: BTreeSet<i64> = o
        .returns
        .iter()
        .filter(|r| r.state == RequestState::Approved)
        .filter_map(|r| r.decided_at)
        .collect();
    // Open steps are measured at the month's end (or now, in a month still
    // running), so an ended month's report reads the same whenever made.
    let as_of = input.now.min(input.month.bounds(input.offset).1);
    for c in &o.clocks {
        let (ClockKind::Handle, Some(unit)) = (c.kind, c.unit.as_deref()) else {
            continue;
        };
        if c.stopped_at.is_some_and(|s| return_times.contains(&s)) {
            continue;
        }
        if c.stopped_at.is_none() && c.due_at > input.now {
            continue;
        }
        let decided = c.stopped_at.unwrap_or(c.started_at);
        let id = input
            .lateness
            .order_change_ids
            .get(&(no.to_owned(), decided))
            .copied();
        if !months.counts(c.due_at, 2, no, |w| id.is_some_and(|id| id > w.audit_id)) {
            continue;
        }
        let Some(a) = o
            .assignments
            .iter()
            .rev()
            .find(|a| a.unit == unit && a.dispatched_at <= c.started_at)
        else {
            continue;
        };
        let on_time = c.stopped_at.is_some_and(|s| s <= c.due_at);
        let on_time_original = c.stopped_at.is_some_and(|s| s <= c.original_due_at);
        let late = Overdue {
            order_no: no.to_owned(),
            unit: unit.to_owned(),
            step: "handle".into(),
            due_at: c.due_at,
            done_at: c.stopped_at,
            hours_late: ((c.stopped_at.unwrap_or(as_of) - c.due_at) as f64 / 36_000.0).round()
                / 100.0,
        };
        if a.role == AssignmentRole::Lead {
            bump(k, Some(unit), |u| {
                u.on_time_closing_rate.count(on_time);
                u.on_time_closing_original_rate.count(on_time_original);
                u.overdue_orders += u64::from(!on_time);
            });
            if !on_time {
                evidence(k, unit).overdue.insert(no.to_owned());
                k.overdue.push(late);
            }
        } else if !on_time {
            bump(k, Some(unit), |u| u.late_co_handler_reports += 1);
            evidence(k, unit).late_co_handler.insert(no.to_owned());
            k.overdue.push(Overdue {
                step: "report".into(),
                ..late
            });
        }
    }
    // Reviews: sent back; accepted replies are the rework denominator.
    let mut accepted: Vec<(i64, &str)> = Vec::new();
    for r in o.replies.iter().filter(|r| !r.report) {
        let Some(review) = &r.review else { continue };
        if review.accepted {
            accepted.push((review.at, &r.unit));
        }
        if !months.order(no, review.at) {
            continue;
        }
        if review.accepted {
            bump(k, Some(&r.unit), |u| u.rework_rate.denominator += 1);
        } else {
            bump(k, Some(&r.unit), |u| u.replies_sent_back += 1);
            evidence(k, &r.unit).sent_back.insert(no.to_owned());
        }
    }
    let lead_at = |t: i64| {
        accepted
            .iter()
            .filter(|(at, _)| *at <= t)
            .max_by_key(|(at, _)| *at)
            .map(|(_, u)| u.to_string())
    };
    // Follow-up rate: per closing.
    for c in o
        .clocks
        .iter()
        .filter(|c| c.kind == ClockKind::FollowUp && c.unit.is_none())
    {
        if !months.order(no, c.started_at) {
            continue;
        }
        let done = o
            .follow_ups
            .iter()
            .any(|f| f.at >= c.started_at && c.stopped_at.is_none_or(|s| f.at <= s));
        let unit = lead_at(c.started_at);
        bump(k, unit.as_deref(), |u| u.follow_up_rate.count(done));
    }
    // Reached follow-ups: rework, resolution, satisfaction.
    let mut last_reached = None;
    for f in o.follow_ups.iter().filter(|f| f.reached) {
        if !months.order(no, f.at) {
            continue;
        }
        let unit = lead_at(f.at);
        let unsatisfied = f.satisfaction == Some(Satisfaction::Unsatisfied);
        if unsatisfied && let Some(u) = &unit {
            bump(k, Some(u), |x| {
                x.rework_rate.numerator += 1;
            });
            evidence(k, u).reworked.insert(no.to_owned());
        }
        last_reached = Some((f, unit));
    }
    if let Some((f, unit)) = last_reached {
        bump(k, unit.as_deref(), |u| {
            u.resolution_rate.count(f.resolved == Some(true));
            u.satisfaction_rate
                .count(f.satisfaction.is_some_and(Satisfaction::is_satisfied));
            match f.satisfaction {
                Some(Satisfaction::VerySatisfied) => u.satisfaction.very_satisfied += 1,
                Some(Satisfaction::Satisfied) => u.satisfaction.satisfied += 1,
                Some(Satisfaction::BasicallySatisfied) => u.satisfaction.basically_satisfied += 1,
                Some(Satisfaction::Unsatisfied) => u.satisfaction.unsatisfied += 1,
                None => {}
            }
        });
    }
}

#[cfg(test)]
#[path = "kpi_tests.rs"]
mod tests;
