//! The KPI core on a small hand-made October 2026 (UTC+8, shipped calendar:
//! Monday 12 October is a working day; sign is due by the end of the next
//! working day, contact by the end of the second, a consultation's reply by
//! the end of the third and a help request's by the end of the seventh).

use super::*;
use crate::auth::{Principal, Role};
use crate::calendar::Calendar;
use crate::orders::deadline::{Limits, WorkTime};
use crate::orders::lifecycle::{Citizen, Command, Intake, PhoneNumber, Plan, Policy};
use crate::orders::model::{Channel, Urgency};
use std::path::Path;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2026-10-01 00:00 +08:00.
const OCT: i64 = 1_790_784_000_000;
const WATER: &str = "hhht-water";
const GAS: &str = "hhht-gas";

/// October `day` at `h:m` local time.
fn t(day: i64, h: i64, m: i64) -> i64 {
    OCT + (day - 1) * DAY + h * HOUR + m * MIN
}

fn cst() -> UtcOffset {
    UtcOffset::from_hms(8, 0, 0).unwrap()
}

fn october() -> Month {
    Month::parse("2026-10").unwrap()
}

fn units() -> Units {
    Units::load(Path::new("sip-config/units.toml")).unwrap()
}

struct World {
    time: WorkTime,
    limits: Limits,
}

impl World {
    fn new() -> World {
        World {
            time: WorkTime::new(
                Calendar::load_dir(Path::new("sip-config/calendar")).unwrap(),
                cst(),
            ),
            limits: Limits::default(),
        }
    }

    fn policy(&self) -> Policy<'_> {
        Policy {
            time: &self.time,
            limits: &self.limits,
        }
    }

    /// A submitted order.
    fn order(&self, no: &str, kind: AppealType, at: i64) -> WorkOrder {
        let intake = Intake {
            channel: Channel::Phone,
            citizen: Citizen {
                name: Some("张三".into()),
                phone: PhoneNumber::parse("13800138000").unwrap(),
                confidential: false,
            },
            appeal_type: kind,
            category: "0101".into(),
            urgency: Urgency::Normal,
            life_at_risk: false,
            division: "150102".into(),
            location: None,
            content: "暖气不热".into(),
            attachments: vec![],
            calls: vec![],
        };
        let mut o = WorkOrder::new(no.into(), intake, &who(Role::Agent, None), at);
        self.run(&mut o, Role::Agent, None, Command::Submit, at);
        o
    }

    fn run(&self, o: &mut WorkOrder, role: Role, unit: Option<&str>, c: Command, at: i64) {
        let name = format!("{c:?}");
        o.apply(&who(role, unit), c, at, &self.policy())
            .unwrap_or_else(|e| panic!("{}: {name}: {e:?}", o.order_no));
    }

    fn unit(&self, o: &mut WorkOrder, unit: &str, c: Command, at: i64) {
        self.run(o, Role::UnitHandler, Some(unit), c, at);
    }

    fn hotline(&self, o: &mut WorkOrder, c: Command, at: i64) {
        self.run(o, Role::Dispatcher, None, c, at);
    }
}

fn who(role: Role, unit: Option<&str>) -> Principal {
    Principal {
        name: format!("{role:?}"),
        role,
        unit: unit.map(str::to_owned),
    }
}

fn dispatch(lead: &str, co: &[&str]) -> Command {
    Command::Dispatch {
        plan: Plan {
            lead: lead.into(),
            co_handlers: co.iter().map(|c| c.to_string()).collect(),
        },
        default: None,
        override_reason: None,
    }
}

fn sign(unit: &str) -> Command {
    Command::Sign { unit: unit.into() }
}

fn contact(unit: &str) -> Command {
    Command::Contact {
        unit: unit.into(),
        note: None,
    }
}

fn reply(unit: &str) -> Command {
    Command::Reply {
        unit: unit.into(),
        text: "已处理".into(),
    }
}

fn accept() -> Command {
    Command::Review {
        accept: true,
        note: None,
    }
}

fn follow_up(resolved: bool, s: Satisfaction) -> Command {
    Command::FollowUp {
        reached: true,
        resolved: Some(resolved),
        satisfaction: Some(s),
        note: None,
    }
}

/// The orders of the month; see each for what it shows.
fn orders(w: &World) -> Vec<WorkOrder> {
    // A: help, water leads, gas assists; all on time; satisfied.
    let mut a = w.order("A", AppealType::Help, t(12, 9, 0));
    w.hotline(&mut a, dispatch(WATER, &[GAS]), t(12, 9, 30));
    w.unit(&mut a, WATER, sign(WATER), t(12, 10, 0));
    w.unit(&mut a, GAS, sign(GAS), t(12, 10, 0));
    w.unit(&mut a, WATER, contact(WATER), t(12, 11, 0));
    let report = Command::Report {
        unit: GAS.into(),
        text: "已配合".into(),
    };
    w.unit(&mut a, GAS, report, t(12, 12, 0));
    w.unit(&mut a, WATER, reply(WATER), t(14, 10, 0));
    w.hotline(&mut a, accept(), t(14, 11, 0));
    w.hotline(
        &mut a,
        follow_up(true, Satisfaction::Satisfied),
        t(15, 10, 0),
    );

    // C: consultation, water signs in time, contacts late (due end of 14th),
    // never replies (due end of 15th): overdue.
    let mut c = w.order("C", AppealType::Consultation, t(12, 9, 0));
    w.hotline(&mut c, dispatch(WATER, &[]), t(12, 9, 30));
    w.unit(&mut c, WATER, sign(WATER), t(13, 10, 0));
    w.unit(&mut c, WATER, contact(WATER), t(15, 10, 0));

    // D: help, gas returns it, water takes it late, replies in time, the
    // citizen is unsatisfied (rework), water replies again, satisfied.
    let mut d = w.order("D", AppealType::Help, t(12, 9, 0));
    w.hotline(&mut d, dispatch(GAS, &[]), t(12, 9, 30));
    w.unit(&mut d, GAS, sign(GAS), t(12, 10, 0));
    let ret = Command::RequestReturn {
        unit: GAS.into(),
        reason: "不属于本单位职责".into(),
        basis: "三定方案".into(),
        suggested_unit: Some(WATER.into()),
    };
    w.unit(&mut d, GAS, ret, t(12, 11, 0));
    let approve = Command::DecideReturn {
        unit: GAS.into(),
        approve: true,
        note: None,
    };
    w.hotline(&mut d, approve, t(12, 12, 0));
    w.hotline(&mut d, dispatch(WATER, &[]), t(12, 13, 0));
    w.unit(&mut d, WATER, sign(WATER), t(16, 10, 0));
    w.unit(&mut d, WATER, contact(WATER), t(16, 11, 0));
    w.unit(&mut d, WATER, reply(WATER), t(19, 10, 0));
    w.hotline(&mut d, accept(), t(19, 11, 0));
    w.hotline(
        &mut d,
        follow_up(false, Satisfaction::Unsatisfied),
        t(20, 10, 0),
    );
    w.unit(&mut d, WATER, contact(WATER), t(20, 11, 0));
    w.unit(&mut d, WATER, reply(WATER), t(21, 10, 0));
    w.hotline(&mut d, accept(), t(21, 11, 0));
    w.hotline(
        &mut d,
        follow_up(true, Satisfaction::VerySatisfied),
        t(22, 10, 0),
    );

    // E: answered directly at intake, basically satisfied.
    let mut e = w.order("E", AppealType::Consultation, t(13, 9, 0));
    let answer = Command::DirectAnswer {
        kb_entry: None,
        answer: "按政策办理".into(),
    };
    w.run(&mut e, Role::Agent, None, answer, t(13, 9, 0));
    w.hotline(
        &mut e,
        follow_up(true, Satisfaction::BasicallySatisfied),
        t(14, 10, 0),
    );

    // F: out of scope (art. 9): not a valid appeal.
    let mut f = w.order("F", AppealType::Other, t(13, 9, 0));
    let out = Command::OutOfScope {
        reason: "诉讼".into(),
        channel: "法院".into(),
    };
    w.run(&mut f, Role::Agent, None, out, t(13, 9, 0));

    // S: September: counts nowhere in October.
    let mut s = w.order("S", AppealType::Help, t(1, 9, 0) - 2 * DAY);
    w.hotline(&mut s, dispatch(WATER, &[]), t(1, 9, 30) - 2 * DAY);
    vec![a, c, d, e, f, s]
}

fn call(id: i64, queued: Option<i64>, answer_after_s: Option<i64>, talk_s: i64) -> CallRow {
    let connected = queued.zip(answer_after_s).map(|(q, a)| q + a * 1000);
    CallRow {
        id,
        queue: Some("general".into()),
        queued_at: queued,
        connected_at: connected,
        seat_ended_at: connected.map(|c| c + talk_s * 1000),
        ended_at: queued.unwrap_or(OCT) + 600_000,
        callback_requested: false,
    }
}

fn calls() -> Vec<CallRow> {
    let mut callback = call(4, Some(t(13, 10, 0)), None, 0);
    callback.callback_requested = true;
    vec![
        call(1, Some(t(12, 10, 0)), Some(10), 290),
        call(2, Some(t(12, 11, 0)), Some(20), 110),
        call(3, Some(t(13, 9, 0)), None, 0),
        callback,
        call(5, None, None, 0),
        call(6, Some(OCT - HOUR), Some(5), 60),
    ]
}

fn seat_log() -> Vec<SeatRow> {
    let row = |id, at, activity: &str| SeatRow {
        id,
        seat: "1001".into(),
        at,
        activity: activity.into(),
    };
    vec![
        row(1, t(12, 9, 0), "idle"),
        row(2, t(12, 10, 0), "in_call"),
        row(3, t(12, 10, 5), "wrap_up"),
        row(4, t(12, 10, 5) + 30_000, "idle"),
        row(5, t(12, 11, 0), "wrap_up"),
        row(6, t(12, 11, 0) + 50_000, "idle"),
    ]
}

fn rate(n: u64, d: u64) -> Rate {
    let mut r = Rate {
        numerator: n,
        denominator: d,
        rate: None,
    };
    r.settle();
    r
}

fn run(orders: &[WorkOrder], calls: &[CallRow], lateness: &Lateness) -> Kpis {
    let units = units();
    let seats = seat_log();
    compute(&Input {
        month: october(),
        offset: cst(),
        now: t(1, 0, 0) + 58 * DAY,
        calls,
        seat_log: &seats,
        orders,
        units: &units,
        lateness,
    })
}

#[test]
fn call_kpis_by_hand() {
    let k = run(&[], &calls(), &Lateness::default());
    // Calls 1-4 queued in October; 5 never queued, 6 is September's.
    assert_eq!(k.calls.offered, 4);
    // Connected: 1 and 2.
    assert_eq!(k.calls.connection_rate, rate(2, 4));
    // Within 15 s: only 1 (10 s); 2 took 20 s.
    assert_eq!(k.calls.answered_within_15s_rate, rate(1, 4));
    // Abandoned: 3; 4 asked for a callback.
    assert_eq!(k.calls.abandonment_rate, rate(1, 4));
    // (10 + 20) / 2 = 15 s to answer; (290 + 110) / 2 = 200 s talking.
    assert_eq!(k.calls.average_speed_of_answer.seconds, Some(15.0));
    assert_eq!(k.calls.average_handling_time.seconds, Some(200.0));
    // Wrap-up (30 + 50) / 2 = 40 s.
    assert_eq!(k.average_wrap_up_time.seconds, Some(40.0));
    assert_eq!(k.queues["general"].offered, 4);
    assert_eq!(k.daily[11].offered, 2);
    assert_eq!(k.daily[11].answered_within_15s, 1);
    assert_eq!(k.daily[12].offered, 2);
    assert!(k.late.is_empty());
}

#[test]
fn order_kpis_by_hand() {
    let w = World::new();
    let k = run(&orders(&w), &[], &Lateness::default());
    let water = &k.units[WATER];
    // Water was dispatched A, C and D (each as lead).
    assert_eq!((water.dispatched, water.dispatched_as_lead), (3, 3));
    // Signed by the end of the next working day: A (12th), C (13th); D on the 16th.
    assert_eq!(water.on_time_sign_rate, rate(2, 3));
    // Contact by the end of the 14th: A only (C on the 15th, D on the 16th).
    assert_eq!(water.response_rate, rate(1, 3));
    // Handle clocks due: A (21st, replied 14th), C (15th, open: overdue),
    // D (21st, replied 19th), D again after rework (29th, replied 21st), and
    // September's S (7 working days after 29 September fall in October, the
    // national holiday in between; open: overdue).
    assert_eq!(water.on_time_closing_rate, rate(3, 5));
    assert_eq!(water.on_time_closing_original_rate, rate(3, 5));
    assert_eq!(water.overdue_orders, 2);
    assert_eq!(water.return_rate, rate(0, 3));
    assert_eq!(water.extension_rate, rate(0, 3));
    // Replies accepted: A 14th, D 19th, D 21st; one unsatisfied follow-up (D 20th).
    assert_eq!(water.rework_rate, rate(1, 3));
    // Closings followed up: A, D, D again.
    assert_eq!(water.follow_up_rate, rate(3, 3));
    // One per order: A resolved, D's last (22nd) resolved.
    assert_eq!(water.resolution_rate, rate(2, 2));
    assert_eq!(water.satisfaction_rate, rate(2, 2));
    assert_eq!(water.satisfaction.satisfied, 1);
    assert_eq!(water.satisfaction.very_satisfied, 1);

    let gas = &k.units[GAS];
    // A as co-handler, D as lead (returned).
    assert_eq!((gas.dispatched, gas.dispatched_as_lead), (2, 1));
    assert_eq!(gas.on_time_sign_rate, rate(2, 2));
    assert_eq!(gas.return_rate, rate(1, 2));
    // Returned before contacting: it never owed the contact.
    assert_eq!(gas.response_rate, rate(0, 0));
    // Its only lead handle clock ended with the return: nothing due.
    assert_eq!(gas.on_time_closing_rate, rate(0, 0));
    assert_eq!(gas.on_time_closing_rate.rate, None);
    assert_eq!(gas.late_co_handler_reports, 0);

    let h = &k.hotline;
    // A, C, D, E (F out of scope, S September).
    assert_eq!(h.valid_appeals, 4);
    assert_eq!(h.direct_answer_rate, rate(1, 4));
    assert_eq!(h.orders.dispatched, 5);
    assert_eq!(h.orders.on_time_sign_rate, rate(4, 5));
    assert_eq!(h.orders.response_rate, rate(1, 3));
    assert_eq!(h.orders.on_time_closing_rate, rate(3, 5));
    assert_eq!(h.orders.return_rate, rate(1, 5));
    assert_eq!(h.orders.rework_rate, rate(1, 3));
    // Water's three closings and E's direct answer.
    assert_eq!(h.orders.follow_up_rate, rate(4, 4));
    assert_eq!(h.orders.resolution_rate, rate(3, 3));
    assert_eq!(h.orders.satisfaction_rate, rate(3, 3));

    // Both units serve 呼和浩特市 (150100), inside the region (150000).
    assert_eq!(k.divisions["150100"].dispatched, 5);
    assert_eq!(k.divisions["150000"].response_rate, rate(1, 3));
    assert_eq!(k.divisions.len(), 2);

    let ev = &k.evidence;
    assert_eq!(ev[WATER].overdue.iter().collect::<Vec<_>>(), ["C", "S"]);
    assert_eq!(ev[WATER].reworked.iter().collect::<Vec<_>>(), ["D"]);
    assert_eq!(ev[GAS].returned.iter().collect::<Vec<_>>(), ["D"]);
    // Oldest due first: S, then C.
    let overdue: Vec<&str> = k.overdue.iter().map(|o| o.order_no.as_str()).collect();
    assert_eq!(overdue, ["S", "C"]);
    assert_eq!(k.overdue[1].done_at, None);
    // Due at the end of 15 October, still open at the end of the month:
    // 16 days = 384 hours late.
    assert_eq!(k.overdue[1].due_at, t(16, 0, 0));
    assert_eq!(k.overdue[1].hours_late, 384.0);
    // A, C, D, E, F were accepted in October.
    assert_eq!(k.accepted.len(), 5);
}

#[test]
fn rows_recorded_after_publication_count_next_month() {
    let w = World::new();
    let mut late = w.order("L", AppealType::Help, t(1, 9, 0) - DAY);
    let dispatched = t(1, 9, 30) - DAY;
    w.hotline(&mut late, dispatch(WATER, &[]), dispatched);
    let mut published = BTreeMap::new();
    let september = october().prev();
    published.insert(
        september,
        Watermarks {
            call_id: 5,
            seat_log_id: 0,
            audit_id: 10,
        },
    );
    let mut lateness = Lateness {
        published,
        order_change_ids: HashMap::new(),
    };
    // The dispatch was recorded (audit id 11) after September's publication.
    lateness
        .order_change_ids
        .insert(("L".into(), dispatched), 11);
    // Call 6 (September, id 6 > 5) too; the order's acceptance was not late.
    let k = run(std::slice::from_ref(&late), &calls(), &lateness);
    assert_eq!(k.units[WATER].dispatched, 1);
    assert_eq!(k.calls.offered, 5);
    assert_eq!(k.daily[0].offered, 1);
    assert_eq!(k.hotline.valid_appeals, 0);
    assert_eq!(k.late.get(&september), Some(&2));

    // Recorded before publication: September keeps them.
    lateness.order_change_ids.clear();
    lateness.published.get_mut(&september).unwrap().call_id = 6;
    let k = run(&[late], &calls(), &lateness);
    // (Its handle clock is due in October all the same.)
    assert_eq!(k.units[WATER].dispatched, 0);
    assert_eq!(k.calls.offered, 4);
    assert!(k.late.is_empty());
}
