//! The wallboard's picture of the floor: what an operations room hangs on
//! the wall. Sans-IO: [`Inputs`] (the ACD's queues and seats as they are,
//! today's figures the store counted) and the time go in, a [`Snapshot`]
//! comes out, ready to serialise as JSON for the page.
//!
//! The shell that gathers the inputs once a second and fans the snapshot
//! out to every screen is `crate::wallboard`; the page is `api/wallboard`.
//! Colours are decided here ([`Level`]), so the page only paints.

use serde::Serialize;
use std::collections::BTreeMap;

/// The queue whose callers are emergencies (article 10).
pub const EMERGENCY_QUEUE: &str = "emergency";

/// Answered within this many seconds of asking for an agent counts toward
/// the service level (GB/T 33358-2016: answer within 15 s).
pub const SERVICE_LEVEL_SECS: i64 = 15;

/// Overdue orders listed by name on the board (the count covers all).
pub const OLDEST_SHOWN: usize = 5;

/// Order statuses in process order, each shown even when none are in it.
pub const ORDER_STATUSES: [&str; 7] = [
    "draft",
    "accepted",
    "dispatched",
    "handling",
    "replied",
    "closed",
    "archived",
];

/// The targets the board colours against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Targets {
    /// Share of callers answered within 15 s; below it is red.
    pub service_level: f64,
    /// Share of callers answered at all (24 h connection rate ≥ 95%).
    pub connection_rate: f64,
    /// Share of callers who hung up waiting; above it is red.
    pub abandonment_rate: f64,
    /// A caller waiting longer than this turns the longest wait red.
    pub longest_wait_secs: u64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            service_level: 0.90,
            connection_rate: 0.95,
            abandonment_rate: 0.05,
            longest_wait_secs: SERVICE_LEVEL_SECS as u64,
        }
    }
}

/// How a figure stands against its target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// On target, or nothing to judge yet.
    #[default]
    Ok,
    /// Close to the line: within a tenth of the target's margin.
    Warn,
    /// Past the line.
    Bad,
}

/// A queue as the ACD holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLoad {
    pub queue: String,
    pub waiting: u64,
    pub longest_wait_secs: u64,
}

/// What a seat is doing now, as the board groups seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    Available,
    Ringing,
    Talking,
    WrapUp,
    OnBreak,
    Offline,
}

impl SeatState {
    /// The board's state of a seat: what it is doing wins over what the
    /// agent set (a seat talking is talking, whatever its status).
    pub fn of(
        status: &crate::acd::router::Status,
        activity: &crate::acd::router::Activity,
    ) -> Self {
        use crate::acd::router::{Activity, Status};
        match (status, activity) {
            (_, Activity::Offered(_)) => SeatState::Ringing,
            (_, Activity::InCall(_)) => SeatState::Talking,
            (_, Activity::WrapUp) => SeatState::WrapUp,
            (Status::OnBreak(_), Activity::Idle) => SeatState::OnBreak,
            (Status::LoggedOut, Activity::Idle) => SeatState::Offline,
            (Status::Available, Activity::Idle) => SeatState::Available,
        }
    }
}

/// Today's queued calls, from the call records (calls that have ended).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls that asked for an agent (joined a queue).
    pub asked: u64,
    /// Of those, answered by an agent.
    pub answered: u64,
    /// Of those, answered within [`SERVICE_LEVEL_SECS`] of asking.
    pub answered_in_time: u64,
    /// Callers who hung up while queued.
    pub abandoned: u64,
}

/// An order past one of its deadlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueClock {
    pub order_no: String,
    /// The step that is late (`sign`, `handle`, ...).
    pub step: String,
    /// The unit that is late; empty for the hotline's own steps.
    pub unit: String,
    /// Unix ms.
    pub due_at: i64,
}

/// Everything one snapshot is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    pub queues: Vec<QueueLoad>,
    /// One entry per seat, defined seats the ACD has not seen as offline.
    pub seats: Vec<SeatState>,
    pub calls_today: CallCounts,
    /// Today's orders (created since local midnight) by status.
    pub orders_today: BTreeMap<String, u64>,
    /// Orders with at least one running clock past due.
    pub overdue_orders: u64,
    /// The oldest overdue clocks, oldest first; an order may have several
    /// (each step and unit has its own), the board lists it once.
    pub overdue_oldest: Vec<OverdueClock>,
    /// Emergency orders not yet closed.
    pub open_emergency_orders: u64,
    /// The store could not be read: its figures are the last read.
    pub database_down: bool,
}

/// What the board shows, as the page receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Unix ms of the computation.
    pub at: i64,
    /// The same in the hotline's local time, `HH:MM:SS`.
    pub local_time: String,
    /// The local day "today" means, `YYYY-MM-DD`.
    pub day: String,
    pub waiting: Waiting,
    pub calls: Calls,
    pub seats: Seats,
    pub orders: Orders,
    pub overdue: Overdue,
    pub emergency: Emergency,
    pub targets: Targets,
    /// Today's counts and the overdue list are from before the database
    /// went away; the queues and seats are live.
    pub database_down: bool,
}

/// Callers in queues now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Waiting {
    pub total: u64,
    pub longest_wait_secs: u64,
    pub level: Level,
    pub queues: Vec<QueueFigure>,
}

/// One queue on the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueFigure {
    pub queue: String,
    pub waiting: u64,
    pub longest_wait_secs: u64,
    pub level: Level,
}

/// Today's rates; a rate is null while no caller has asked for an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calls {
    pub asked: u64,
    pub answered: u64,
    pub answered_within_15s: u64,
    pub abandoned: u64,
    pub service_level: Option<f64>,
    pub service_level_level: Level,
    pub connection_rate: Option<f64>,
    pub connection_rate_level: Level,
    pub abandonment_rate: Option<f64>,
    pub abandonment_rate_level: Level,
}

/// Seats by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Seats {
    pub available: u64,
    pub ringing: u64,
    pub talking: u64,
    pub wrap_up: u64,
    pub on_break: u64,
    pub offline: u64,
    pub total: u64,
    /// Callers wait and nobody is available.
    pub level: Level,
}

/// Today's orders by status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orders {
    pub total: u64,
    /// Every status in process order, zero included.
    pub by_status: Vec<StatusCount>,
}

/// One status and how many of today's orders are in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusCount {
    pub status: String,
    pub count: u64,
}

/// Orders past a deadline: how many, and the oldest few without any
/// citizen data (a wall is public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overdue {
    pub orders: u64,
    pub level: Level,
    pub oldest: Vec<OverdueLine>,
}

/// One late step of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverdueLine {
    pub order_no: String,
    pub step: String,
    pub unit: String,
    pub overdue_secs: u64,
}

/// The emergency queue and open emergency orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Emergency {
    pub waiting: u64,
    pub longest_wait_secs: u64,
    pub open_orders: u64,
    /// Red while an emergency caller waits.
    pub level: Level,
}

/// Unix ms of the local midnight that starts the day `now_ms` falls in.
pub fn day_start_ms(now_ms: i64, offset: time::UtcOffset) -> i64 {
    const DAY_MS: i64 = 86_400_000;
    let offset_ms = i64::from(offset.whole_seconds()) * 1000;
    (now_ms + offset_ms).div_euclid(DAY_MS) * DAY_MS - offset_ms
}

fn local(now_ms: i64, offset: time::UtcOffset) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset)
}

/// `HH:MM:SS` of `now_ms` in the hotline's local time: the board's clock,
/// whatever zone the screen's browser is set to.
pub fn local_clock(now_ms: i64, offset: time::UtcOffset) -> String {
    let t = local(now_ms, offset);
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// A share, or `None` when there is nothing to divide by.
fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A rate that must stay at or above `target`.
fn at_least(value: Option<f64>, target: f64) -> Level {
    match value {
        None => Level::Ok,
        Some(v) if v < target => Level::Bad,
        Some(v) if v < target + (1.0 - target) * 0.1 => Level::Warn,
        Some(_) => Level::Ok,
    }
}

/// A rate that must stay at or below `target`.
fn at_most(value: Option<f64>, target: f64) -> Level {
    match value {
        None => Level::Ok,
        Some(v) if v > target => Level::Bad,
        Some(v) if v > target * 0.8 => Level::Warn,
        Some(_) => Level::Ok,
    }
}

/// A wait against its limit: red past it, amber past two thirds of it.
fn wait_level(secs: u64, limit: u64) -> Level {
    if secs > limit {
        Level::Bad
    } else if secs * 3 > limit * 2 {
        Level::Warn
    } else {
        Level::Ok
    }
}

impl Snapshot {
    /// The board at `now_ms` (Unix ms), "today" being the local day at
    /// `offset`.
    pub fn compute(
        inputs: &Inputs,
        targets: Targets,
        now_ms: i64,
        offset: time::UtcOffset,
    ) -> Snapshot {
        let queues: Vec<QueueFigure> = inputs
            .queues
            .iter()
            .map(|q| QueueFigure {
                queue: q.queue.clone(),
                waiting: q.waiting,
                longest_wait_secs: q.longest_wait_secs,
                level: if q.waiting == 0 {
                    Level::Ok
                } else {
                    wait_level(q.longest_wait_secs, targets.longest_wait_secs)
                },
            })
            .collect();
        let total: u64 = queues.iter().map(|q| q.waiting).sum();
        let longest = queues
            .iter()
            .map(|q| q.longest_wait_secs)
            .max()
            .unwrap_or(0);
        let waiting = Waiting {
            total,
            longest_wait_secs: longest,
            level: if total == 0 {
                Level::Ok
            } else {
                wait_level(longest, targets.longest_wait_secs)
            },
            queues,
        };

        let c = inputs.calls_today;
        let service_level = rate(c.answered_in_time, c.asked);
        let connection_rate = rate(c.answered, c.asked);
        let abandonment_rate = rate(c.abandoned, c.asked);
        let calls = Calls {
            asked: c.asked,
            answered: c.answered,
            answered_within_15s: c.answered_in_time,
            abandoned: c.abandoned,
            service_level,
            service_level_level: at_least(service_level, targets.service_level),
            connection_rate,
            connection_rate_level: at_least(connection_rate, targets.connection_rate),
            abandonment_rate,
            abandonment_rate_level: at_most(abandonment_rate, targets.abandonment_rate),
        };

        let mut seats = Seats::default();
        for s in &inputs.seats {
            *match s {
                SeatState::Available => &mut seats.available,
                SeatState::Ringing => &mut seats.ringing,
                SeatState::Talking => &mut seats.talking,
                SeatState::WrapUp => &mut seats.wrap_up,
                SeatState::OnBreak => &mut seats.on_break,
                SeatState::Offline => &mut seats.offline,
            } += 1;
        }
        seats.total = inputs.seats.len() as u64;
        seats.level = match (total, seats.available) {
            (0, _) => Level::Ok,
            (_, 0) => Level::Bad,
            _ => Level::Warn,
        };

        let by_status: Vec<StatusCount> = ORDER_STATUSES
            .iter()
            .map(|s| StatusCount {
                status: (*s).to_owned(),
                count: inputs.orders_today.get(*s).copied().unwrap_or(0),
            })
            .chain(
                // A status this board does not know yet still counts.
                inputs
                    .orders_today
                    .iter()
                    .filter(|(s, _)| !ORDER_STATUSES.contains(&s.as_str()))
                    .map(|(s, n)| StatusCount {
                        status: s.clone(),
                        count: *n,
                    }),
            )
            .collect();
        let orders = Orders {
            total: by_status.iter().map(|s| s.count).sum(),
            by_status,
        };

        let overdue = Overdue {
            orders: inputs.overdue_orders,
            level: if inputs.overdue_orders > 0 {
                Level::Bad
            } else {
                Level::Ok
            },
            oldest: inputs
                .overdue_oldest
                .iter()
                // One line per order: its longest-overdue step (the
                // clocks come oldest first).
                .filter({
                    let mut seen = std::collections::HashSet::new();
                    move |o| seen.insert(o.order_no.as_str())
                })
                .take(OLDEST_SHOWN)
                .map(|o| OverdueLine {
                    order_no: o.order_no.clone(),
                    step: o.step.clone(),
                    unit: o.unit.clone(),
                    overdue_secs: u64::try_from((now_ms - o.due_at) / 1000).unwrap_or(0),
                })
                .collect(),
        };

        let emergency_queue = waiting.queues.iter().find(|q| q.queue == EMERGENCY_QUEUE);
        let emergency = Emergency {
            waiting: emergency_queue.map_or(0, |q| q.waiting),
            longest_wait_secs: emergency_queue.map_or(0, |q| q.longest_wait_secs),
            open_orders: inputs.open_emergency_orders,
            level: match emergency_queue.map_or(0, |q| q.waiting) {
                0 if inputs.open_emergency_orders > 0 => Level::Warn,
                0 => Level::Ok,
                _ => Level::Bad,
            },
        };

        let local = local(now_ms, offset);
        Snapshot {
            at: now_ms,
            local_time: local_clock(now_ms, offset),
            day: format!(
                "{:04}-{:02}-{:02}",
                local.year(),
                u8::from(local.month()),
                local.day()
            ),
            waiting,
            calls,
            seats,
            orders,
            overdue,
            emergency,
            targets,
            database_down: inputs.database_down,
        }
    }

    /// Whether the board would look different, the clock aside: a
    /// snapshot that only ticked is not pushed again.
    pub fn same_figures(&self, other: &Snapshot) -> bool {
        Snapshot {
            at: other.at,
            local_time: other.local_time.clone(),
            ..self.clone()
        } == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::router::{Activity, Status};
    use time::macros::offset;

    const BEIJING: time::UtcOffset = offset!(+08:00);
    /// 2026-11-28 12:00:00 UTC, 20:00 in Beijing.
    const NOON_UTC: i64 = 1_795_867_200_000;

    fn queue(name: &str, waiting: u64, longest: u64) -> QueueLoad {
        QueueLoad {
            queue: name.into(),
            waiting,
            longest_wait_secs: longest,
        }
    }

    fn board(inputs: &Inputs) -> Snapshot {
        Snapshot::compute(inputs, Targets::default(), NOON_UTC, BEIJING)
    }

    #[test]
    fn today_starts_at_local_midnight() {
        // 20:00 Beijing on the 28th: the day began at 16:00 UTC on the 27th.
        assert_eq!(day_start_ms(NOON_UTC, BEIJING), NOON_UTC - 20 * 3_600_000);
        // 23:30 UTC on the 28th is 07:30 on the 29th in Beijing.
        let late = NOON_UTC + 11 * 3_600_000 + 1_800_000;
        assert_eq!(
            day_start_ms(late, BEIJING),
            late - 7 * 3_600_000 - 1_800_000
        );
        assert_eq!(
            day_start_ms(NOON_UTC, offset!(UTC)),
            NOON_UTC - 12 * 3_600_000
        );
        // West of Greenwich too.
        assert_eq!(
            day_start_ms(NOON_UTC, offset!(-05:00)),
            NOON_UTC - 7 * 3_600_000
        );
        let b = board(&Inputs::default());
        assert_eq!(
            (b.day.as_str(), b.local_time.as_str()),
            ("2026-11-28", "20:00:00")
        );
    }

    #[test]
    fn waiting_sums_queues_and_takes_the_longest_wait() {
        let b = board(&Inputs {
            queues: vec![
                queue("emergency", 1, 4),
                queue("general", 3, 40),
                queue("operator", 0, 0),
            ],
            ..Inputs::default()
        });
        assert_eq!(b.waiting.total, 4);
        assert_eq!(b.waiting.longest_wait_secs, 40);
        assert_eq!(b.waiting.level, Level::Bad);
        assert_eq!(b.waiting.queues[0].level, Level::Ok);
        assert_eq!(b.waiting.queues[1].level, Level::Bad);
        assert_eq!(b.waiting.queues[2].level, Level::Ok);
        // An emergency caller waiting is red whatever the wait.
        assert_eq!(b.emergency.waiting, 1);
        assert_eq!(b.emergency.longest_wait_secs, 4);
        assert_eq!(b.emergency.level, Level::Bad);
        // Callers wait and nobody is available.
        assert_eq!(b.seats.level, Level::Bad);
    }

    #[test]
    fn waits_turn_amber_then_red() {
        let level = |secs| {
            board(&Inputs {
                queues: vec![queue("general", 1, secs)],
                ..Inputs::default()
            })
            .waiting
            .level
        };
        assert_eq!(level(5), Level::Ok);
        assert_eq!(level(11), Level::Warn);
        assert_eq!(level(15), Level::Warn);
        assert_eq!(level(16), Level::Bad);
    }

    #[test]
    fn rates_follow_the_domain_formulas() {
        let b = board(&Inputs {
            calls_today: CallCounts {
                asked: 20,
                answered: 18,
                answered_in_time: 15,
                abandoned: 2,
            },
            ..Inputs::default()
        });
        assert_eq!(b.calls.service_level, Some(0.75));
        assert_eq!(b.calls.service_level_level, Level::Bad);
        assert_eq!(b.calls.connection_rate, Some(0.9));
        assert_eq!(b.calls.connection_rate_level, Level::Bad);
        assert_eq!(b.calls.abandonment_rate, Some(0.1));
        assert_eq!(b.calls.abandonment_rate_level, Level::Bad);
        assert_eq!(b.calls.answered_within_15s, 15);
    }

    #[test]
    fn a_quiet_morning_has_no_rates_and_no_red() {
        let b = board(&Inputs::default());
        assert_eq!(b.calls.service_level, None);
        assert_eq!(b.calls.service_level_level, Level::Ok);
        assert_eq!(b.calls.abandonment_rate_level, Level::Ok);
        assert_eq!(b.waiting.level, Level::Ok);
        assert_eq!(b.seats.level, Level::Ok);
        assert_eq!(b.overdue.level, Level::Ok);
        let json = serde_json::to_value(&b).unwrap();
        assert!(json["calls"]["service_level"].is_null());
    }

    #[test]
    fn rate_levels_have_an_amber_band() {
        let t = Targets::default();
        assert_eq!(at_least(Some(0.95), t.service_level), Level::Ok);
        assert_eq!(at_least(Some(0.905), t.service_level), Level::Warn);
        assert_eq!(at_least(Some(0.89), t.service_level), Level::Bad);
        assert_eq!(at_most(Some(0.01), t.abandonment_rate), Level::Ok);
        assert_eq!(at_most(Some(0.045), t.abandonment_rate), Level::Warn);
        assert_eq!(at_most(Some(0.06), t.abandonment_rate), Level::Bad);
    }

    #[test]
    fn seats_are_grouped_by_what_they_do() {
        let of = SeatState::of;
        let brk = Status::OnBreak("lunch".into());
        assert_eq!(
            of(&Status::Available, &Activity::Idle),
            SeatState::Available
        );
        assert_eq!(
            of(&Status::Available, &Activity::Offered(1)),
            SeatState::Ringing
        );
        assert_eq!(
            of(&Status::Available, &Activity::InCall(1)),
            SeatState::Talking
        );
        // A seat that went on break mid-call is still talking.
        assert_eq!(of(&brk, &Activity::InCall(1)), SeatState::Talking);
        assert_eq!(of(&brk, &Activity::WrapUp), SeatState::WrapUp);
        assert_eq!(of(&brk, &Activity::Idle), SeatState::OnBreak);
        assert_eq!(of(&Status::LoggedOut, &Activity::Idle), SeatState::Offline);

        let b = board(&Inputs {
            seats: vec![
                SeatState::Available,
                SeatState::Talking,
                SeatState::Talking,
                SeatState::Offline,
                SeatState::OnBreak,
            ],
            queues: vec![queue("general", 1, 2)],
            ..Inputs::default()
        });
        assert_eq!(
            (
                b.seats.available,
                b.seats.talking,
                b.seats.offline,
                b.seats.on_break
            ),
            (1, 2, 1, 1)
        );
        assert_eq!((b.seats.ringing, b.seats.wrap_up, b.seats.total), (0, 0, 5));
        assert_eq!(b.seats.level, Level::Warn);
    }

    #[test]
    fn every_order_status_is_shown_in_process_order() {
        let b = board(&Inputs {
            orders_today: BTreeMap::from([
                ("closed".to_string(), 2),
                ("accepted".to_string(), 3),
                ("someday".to_string(), 1),
            ]),
            ..Inputs::default()
        });
        let statuses: Vec<&str> = b
            .orders
            .by_status
            .iter()
            .map(|s| s.status.as_str())
            .collect();
        assert_eq!(
            statuses,
            [
                "draft",
                "accepted",
                "dispatched",
                "handling",
                "replied",
                "closed",
                "archived",
                "someday"
            ]
        );
        assert_eq!(b.orders.by_status[1].count, 3);
        assert_eq!(b.orders.by_status[5].count, 2);
        assert_eq!(b.orders.total, 6);
    }

    #[test]
    fn overdue_lines_carry_no_citizen_data() {
        let clocks: Vec<OverdueClock> = (0..8)
            .map(|i| OverdueClock {
                order_no: format!("2026112800000{i}"),
                step: "handle".into(),
                unit: "water-bureau".into(),
                due_at: NOON_UTC - 3_600_000 + i * 60_000,
            })
            .collect();
        let b = board(&Inputs {
            overdue_orders: 8,
            overdue_oldest: clocks,
            open_emergency_orders: 2,
            ..Inputs::default()
        });
        assert_eq!(b.overdue.orders, 8);
        assert_eq!(b.overdue.level, Level::Bad);
        assert_eq!(b.overdue.oldest.len(), OLDEST_SHOWN);
        assert_eq!(b.overdue.oldest[0].overdue_secs, 3600);
        let line = serde_json::to_value(&b.overdue.oldest[0]).unwrap();
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["order_no", "overdue_secs", "step", "unit"]);
        // Open emergency orders with nobody waiting: amber.
        assert_eq!(b.emergency.open_orders, 2);
        assert_eq!(b.emergency.level, Level::Warn);
    }

    #[test]
    fn an_order_late_on_several_steps_is_listed_once() {
        let clock = |no: &str, step: &str, unit: &str, hours: i64| OverdueClock {
            order_no: no.into(),
            step: step.into(),
            unit: unit.into(),
            due_at: NOON_UTC - hours * 3_600_000,
        };
        let b = board(&Inputs {
            overdue_orders: 2,
            overdue_oldest: vec![
                clock("A", "sign", "heating", 5),
                clock("A", "sign", "housing", 5),
                clock("B", "review", "", 4),
                clock("A", "contact", "heating", 3),
            ],
            ..Inputs::default()
        });
        let lines: Vec<(&str, &str, u64)> = b
            .overdue
            .oldest
            .iter()
            .map(|l| (l.order_no.as_str(), l.step.as_str(), l.overdue_secs))
            .collect();
        assert_eq!(lines, [("A", "sign", 5 * 3600), ("B", "review", 4 * 3600)]);
    }

    #[test]
    fn only_changed_figures_count_as_a_change() {
        let inputs = Inputs {
            queues: vec![queue("general", 1, 3)],
            ..Inputs::default()
        };
        let a = board(&inputs);
        let ticked = Snapshot::compute(&inputs, Targets::default(), NOON_UTC + 400, BEIJING);
        assert!(a.same_figures(&ticked));
        let longer = Inputs {
            queues: vec![queue("general", 1, 4)],
            ..Inputs::default()
        };
        let b = Snapshot::compute(&longer, Targets::default(), NOON_UTC + 1000, BEIJING);
        assert!(!a.same_figures(&b));
    }
}
