//! One test per transition of the work order lifecycle, legal and illegal,
//! on the shipped 2026 calendar and the default limits (UTC+8).

use super::*;
use crate::calendar::Calendar;
use std::path::Path;
use time::macros::datetime;

const LEAD: &str = "hhht-housing";
const CO: &str = "hhht-heat";
const OTHER: &str = "hhht-market";

/// Monday 2026-11-30 09:00 in Hohhot, in Unix ms.
fn monday_9() -> i64 {
    at(datetime!(2026-11-30 09:00 +8))
}

fn at(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

const HOUR: i64 = 3_600_000;

struct Fixture {
    time: WorkTime,
    limits: Limits,
}

impl Fixture {
    fn new() -> Fixture {
        let calendar = Calendar::load_dir(Path::new("sip-config/calendar")).unwrap();
        Fixture {
            time: WorkTime::new(calendar, time::UtcOffset::from_hms(8, 0, 0).unwrap()),
            limits: Limits::default(),
        }
    }

    fn policy(&self) -> Policy<'_> {
        Policy {
            time: &self.time,
            limits: &self.limits,
        }
    }
}

fn person(name: &str, role: Role, unit: Option<&str>) -> Principal {
    Principal {
        name: name.into(),
        role,
        unit: unit.map(str::to_owned),
    }
}

fn agent() -> Principal {
    person("agent-1001", Role::Agent, None)
}

fn dispatcher() -> Principal {
    person("disp-li", Role::Dispatcher, None)
}

fn handler(unit: &str) -> Principal {
    person(&format!("h-{unit}"), Role::UnitHandler, Some(unit))
}

fn intake(appeal_type: AppealType, urgency: Urgency) -> Intake {
    Intake {
        channel: Channel::Phone,
        citizen: Citizen {
            name: Some("张三".into()),
            phone: PhoneNumber::parse("13800138000").unwrap(),
            confidential: false,
        },
        appeal_type,
        category: "010101".into(),
        urgency,
        life_at_risk: false,
        division: "150102".into(),
        location: Some("新城区 某小区 3 号楼".into()),
        content: "暖气不热，室温 14 度".into(),
        attachments: vec![],
        calls: vec![],
    }
}

/// Drives an order through commands, failing the test on any refusal.
struct Run {
    fx: Fixture,
    order: WorkOrder,
    now: i64,
}

impl Run {
    fn draft(appeal_type: AppealType) -> Run {
        let now = monday_9();
        Run {
            fx: Fixture::new(),
            order: WorkOrder::new(
                "20261130000001".into(),
                intake(appeal_type, Urgency::Normal),
                &agent(),
                now,
            ),
            now,
        }
    }

    fn accepted() -> Run {
        let mut r = Run::draft(AppealType::Complaint);
        r.ok(&agent(), Command::Submit);
        r
    }

    fn dispatched() -> Run {
        let mut r = Run::accepted();
        r.ok(&dispatcher(), dispatch(LEAD, &[CO]));
        r
    }

    fn contacted() -> Run {
        let mut r = Run::dispatched();
        r.ok(&handler(LEAD), Command::Sign { unit: LEAD.into() });
        r.ok(
            &handler(LEAD),
            Command::Contact {
                unit: LEAD.into(),
                note: None,
            },
        );
        r
    }

    fn replied() -> Run {
        let mut r = Run::contacted();
        r.ok(&handler(CO), Command::Sign { unit: CO.into() });
        r.ok(
            &handler(CO),
            Command::Report {
                unit: CO.into(),
                text: "热力站已检修".into(),
            },
        );
        r.ok(&handler(LEAD), reply("已联系热力公司，今日恢复供热"));
        r
    }

    fn closed() -> Run {
        let mut r = Run::replied();
        r.ok(
            &dispatcher(),
            Command::Review {
                accept: true,
                note: None,
            },
        );
        r
    }

    fn later(&mut self, ms: i64) -> &mut Run {
        self.now += ms;
        self
    }

    fn ok(&mut self, who: &Principal, command: Command) -> Vec<Event> {
        let name = command.name();
        let policy = self.fx.policy();
        self.order
            .apply(who, command, self.now, &policy)
            .unwrap_or_else(|e| panic!("{name} refused: {e:?}"))
    }

    fn refused(&mut self, who: &Principal, command: Command) -> Refusal {
        let before = self.order.clone();
        let policy = self.fx.policy();
        let err = self
            .order
            .apply(who, command, self.now, &policy)
            .expect_err("expected a refusal");
        assert_eq!(self.order, before, "a refused command changed the order");
        err
    }

    fn clock(&self, kind: ClockKind, unit: Option<&str>) -> Clock {
        self.order.clock(kind, unit).cloned().unwrap()
    }

    fn state(&self, unit: &str) -> AssignmentState {
        self.order.assignment(unit).unwrap().state
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

fn reply(text: &str) -> Command {
    Command::Reply {
        unit: LEAD.into(),
        text: text.into(),
    }
}

fn follow_up(satisfaction: Satisfaction) -> Command {
    Command::FollowUp {
        reached: true,
        resolved: Some(satisfaction.is_satisfied()),
        satisfaction: Some(satisfaction),
        note: None,
    }
}

fn is_conflict(r: &Refusal) -> bool {
    matches!(r, Refusal::Conflict(_))
}

fn field_of(r: &Refusal) -> &'static str {
    match r {
        Refusal::Invalid { field, .. } => field,
        other => panic!("expected a bad field, got {other:?}"),
    }
}

#[test]
fn phone_numbers_parse_rather_than_validate() {
    assert!(PhoneNumber::parse("13800138000").is_ok());
    assert!(PhoneNumber::parse("0471-6601234").is_ok());
    assert!(PhoneNumber::parse("+8613800138000").is_ok());
    assert!(PhoneNumber::parse("12").is_err());
    assert!(PhoneNumber::parse("138 0013 8000").is_err());
    assert!(PhoneNumber::parse("abc").is_err());
    let bad: Result<PhoneNumber, _> = serde_json::from_str("\"x1\"");
    assert!(bad.is_err());
}

#[test]
fn submit_accepts_a_draft_and_starts_the_dispatch_clock() {
    let mut r = Run::draft(AppealType::Complaint);
    let events = r.ok(&agent(), Command::Submit);
    assert_eq!(r.order.status, OrderStatus::Accepted);
    assert_eq!(events[0].kind, "accepted");
    // Same working day: due at the end of Monday.
    let c = r.clock(ClockKind::Dispatch, None);
    assert_eq!(c.due_at, at(datetime!(2026-12-01 00:00 +8)));
    assert!(is_conflict(&r.refused(&agent(), Command::Submit)));
}

#[test]
fn submit_needs_content_and_a_hotline_role() {
    let mut r = Run::draft(AppealType::Help);
    r.order.intake.content = "  ".into();
    assert_eq!(field_of(&r.refused(&agent(), Command::Submit)), "content");
    let mut r = Run::draft(AppealType::Help);
    let err = r.refused(&handler(LEAD), Command::Submit);
    assert!(matches!(err, Refusal::Forbidden(_)), "{err:?}");
}

#[test]
fn an_emergency_order_is_announced_for_dispatch_at_once() {
    let fx = Fixture::new();
    let now = monday_9();
    let mut order = WorkOrder::new(
        "20261130000002".into(),
        intake(AppealType::Help, Urgency::Emergency),
        &agent(),
        now,
    );
    let events = order
        .apply(&agent(), Command::Submit, now, &fx.policy())
        .unwrap();
    assert!(events.iter().any(|e| e.kind == "emergency"));
    // Dispatch "at once": the clock is already due.
    assert_eq!(order.clock(ClockKind::Dispatch, None).unwrap().due_at, now);
    order
        .apply(&dispatcher(), dispatch(LEAD, &[]), now, &fx.policy())
        .unwrap();
    // First contact within 24 h, sign within 1 h.
    let contact = order.clock(ClockKind::Contact, Some(LEAD)).unwrap();
    assert_eq!(contact.due_at, now + 24 * HOUR);
    assert_eq!(
        order.clock(ClockKind::Sign, Some(LEAD)).unwrap().due_at,
        now + HOUR
    );
}

#[test]
fn a_direct_answer_closes_at_intake_and_records_the_entry() {
    let mut r = Run::accepted();
    r.ok(
        &agent(),
        Command::DirectAnswer {
            kb_entry: Some("kb-heating-hours".into()),
            answer: "供暖期为 10 月 15 日至次年 4 月 15 日".into(),
        },
    );
    assert_eq!(r.order.status, OrderStatus::Closed);
    assert!(matches!(
        &r.order.closing,
        Some(Closing::DirectAnswer { kb_entry: Some(k), .. }) if k == "kb-heating-hours"
    ));
    assert!(!r.clock(ClockKind::Dispatch, None).is_open());
    assert!(r.clock(ClockKind::FollowUp, None).is_open());
    // Not twice, and not once dispatched.
    let again = Command::DirectAnswer {
        kb_entry: None,
        answer: "x".into(),
    };
    assert!(is_conflict(&r.refused(&agent(), again.clone())));
    let mut d = Run::dispatched();
    assert!(is_conflict(&d.refused(&agent(), again)));
}

#[test]
fn an_out_of_scope_appeal_closes_with_the_channel_and_no_dispatch() {
    let mut r = Run::accepted();
    let missing = Command::OutOfScope {
        reason: "诉讼".into(),
        channel: "".into(),
    };
    assert_eq!(field_of(&r.refused(&agent(), missing)), "channel");
    r.ok(
        &agent(),
        Command::OutOfScope {
            reason: "已进入诉讼程序 (art. 9)".into(),
            channel: "人民法院".into(),
        },
    );
    assert_eq!(r.order.status, OrderStatus::Archived);
    assert!(r.order.assignments.is_empty());
    assert!(r.order.clocks.iter().all(|c| !c.is_open()));
    assert!(is_conflict(&r.refused(&dispatcher(), dispatch(LEAD, &[]))));
}

#[test]
fn dispatch_gives_each_unit_its_own_part_and_clocks() {
    let mut r = Run::accepted();
    let events = r.ok(&dispatcher(), dispatch(LEAD, &[CO]));
    assert_eq!(events.len(), 2);
    assert_eq!(r.order.status, OrderStatus::Dispatched);
    assert_eq!(r.order.lead().unwrap().unit, LEAD);
    assert_eq!(r.state(CO), AssignmentState::PendingSign);
    assert!(!r.clock(ClockKind::Dispatch, None).is_open());
    // Sign within 1 working day: end of Tuesday; complaint: 15 working days.
    assert_eq!(
        r.clock(ClockKind::Sign, Some(LEAD)).due_at,
        at(datetime!(2026-12-02 00:00 +8))
    );
    assert_eq!(
        r.clock(ClockKind::Handle, Some(CO)).due_at,
        at(datetime!(2026-12-22 00:00 +8))
    );
    assert!(is_conflict(&r.refused(&dispatcher(), dispatch(OTHER, &[]))));
}

#[test]
fn dispatch_refuses_bad_plans_and_wrong_roles() {
    let mut r = Run::accepted();
    assert!(matches!(
        r.refused(&agent(), dispatch(LEAD, &[])),
        Refusal::Forbidden(_)
    ));
    assert_eq!(
        field_of(&r.refused(&dispatcher(), dispatch(LEAD, &[CO, CO]))),
        "co_handlers"
    );
    assert_eq!(
        field_of(&r.refused(&dispatcher(), dispatch(LEAD, &[LEAD]))),
        "co_handlers"
    );
    assert_eq!(
        field_of(&r.refused(&dispatcher(), dispatch("", &[]))),
        "lead"
    );
    let mut d = Run::draft(AppealType::Help);
    assert!(is_conflict(&d.refused(&dispatcher(), dispatch(LEAD, &[]))));
}

#[test]
fn overriding_the_catalogue_default_needs_a_reason() {
    let mut r = Run::accepted();
    let default = Some(Plan {
        lead: LEAD.into(),
        co_handlers: vec![],
    });
    let mut cmd = Command::Dispatch {
        plan: Plan {
            lead: OTHER.into(),
            co_handlers: vec![],
        },
        default: default.clone(),
        override_reason: None,
    };
    assert_eq!(
        field_of(&r.refused(&dispatcher(), cmd.clone())),
        "override_reason"
    );
    if let Command::Dispatch {
        override_reason, ..
    } = &mut cmd
    {
        *override_reason = Some("涉及价格问题，由市场监管局主办".into());
    }
    r.ok(&dispatcher(), cmd);
    assert_eq!(
        r.order.dispatch_override.as_deref(),
        Some("涉及价格问题，由市场监管局主办")
    );
    // Following the default needs no reason.
    let mut s = Run::accepted();
    s.ok(
        &dispatcher(),
        Command::Dispatch {
            plan: Plan {
                lead: LEAD.into(),
                co_handlers: vec![],
            },
            default,
            override_reason: None,
        },
    );
}

#[test]
fn signing_moves_the_lead_to_handling_and_stops_its_clock() {
    let mut r = Run::dispatched();
    r.later(2 * HOUR);
    r.ok(&handler(CO), Command::Sign { unit: CO.into() });
    assert_eq!(
        r.order.status,
        OrderStatus::Dispatched,
        "a co-handler signed"
    );
    r.ok(&handler(LEAD), Command::Sign { unit: LEAD.into() });
    assert_eq!(r.order.status, OrderStatus::Handling);
    let sign = r.clock(ClockKind::Sign, Some(LEAD));
    assert_eq!(sign.stopped_at, Some(monday_9() + 2 * HOUR));
    assert!(!sign.is_overdue(r.now));
    assert!(is_conflict(
        &r.refused(&handler(LEAD), Command::Sign { unit: LEAD.into() })
    ));
}

#[test]
fn a_unit_acts_only_for_itself_and_its_own_orders() {
    let mut r = Run::dispatched();
    // Another unit's handler naming the lead is forbidden.
    let err = r.refused(&handler(OTHER), Command::Sign { unit: LEAD.into() });
    assert!(matches!(err, Refusal::Forbidden(_)), "{err:?}");
    // Acting for itself on an order it has no part in is a conflict.
    assert!(is_conflict(
        &r.refused(&handler(OTHER), Command::Sign { unit: OTHER.into() })
    ));
    assert!(!r.order.involves(OTHER));
}

#[test]
fn contact_comes_after_signing() {
    let mut r = Run::dispatched();
    let contact = Command::Contact {
        unit: LEAD.into(),
        note: Some("电话联系市民".into()),
    };
    assert!(is_conflict(&r.refused(&handler(LEAD), contact.clone())));
    r.ok(&handler(LEAD), Command::Sign { unit: LEAD.into() });
    r.later(HOUR);
    r.ok(&handler(LEAD), contact.clone());
    assert_eq!(r.state(LEAD), AssignmentState::Contacted);
    assert!(!r.clock(ClockKind::Contact, Some(LEAD)).is_open());
    assert!(is_conflict(&r.refused(&handler(LEAD), contact)));
}

#[test]
fn a_co_handler_reports_to_the_lead_and_the_lead_does_not_report() {
    let mut r = Run::contacted();
    let report = |unit: &str| Command::Report {
        unit: unit.into(),
        text: "已核实".into(),
    };
    assert!(
        is_conflict(&r.refused(&handler(CO), report(CO))),
        "unsigned"
    );
    r.ok(&handler(CO), Command::Sign { unit: CO.into() });
    r.ok(&handler(CO), report(CO));
    assert_eq!(
        r.order.assignment(CO).unwrap().state,
        AssignmentState::Reported
    );
    assert!(!r.clock(ClockKind::Handle, Some(CO)).is_open());
    assert!(is_conflict(&r.refused(&handler(LEAD), report(LEAD))));
    assert!(is_conflict(&r.refused(&handler(CO), report(CO))), "twice");
}

#[test]
fn the_lead_replies_after_contact_and_the_co_handlers_reports() {
    let mut r = Run::dispatched();
    r.ok(&handler(LEAD), Command::Sign { unit: LEAD.into() });
    assert!(
        is_conflict(&r.refused(&handler(LEAD), reply("x"))),
        "no contact"
    );
    r.ok(
        &handler(LEAD),
        Command::Contact {
            unit: LEAD.into(),
            note: None,
        },
    );
    let waiting = r.refused(&handler(LEAD), reply("x"));
    assert!(format!("{waiting}").contains(CO), "{waiting}");
    r.ok(&handler(CO), Command::Sign { unit: CO.into() });
    r.ok(
        &handler(CO),
        Command::Report {
            unit: CO.into(),
            text: "ok".into(),
        },
    );
    assert_eq!(field_of(&r.refused(&handler(LEAD), reply(" "))), "text");
    let co_reply = Command::Reply {
        unit: CO.into(),
        text: "x".into(),
    };
    assert!(is_conflict(&r.refused(&handler(CO), co_reply)));
    r.ok(&handler(LEAD), reply("已恢复供热"));
    assert_eq!(r.order.status, OrderStatus::Replied);
    assert!(!r.clock(ClockKind::Handle, Some(LEAD)).is_open());
    assert!(r.clock(ClockKind::Review, None).is_open());
}

#[test]
fn review_accepts_and_closes_with_a_follow_up_due() {
    let mut r = Run::replied();
    assert!(matches!(
        r.refused(
            &handler(LEAD),
            Command::Review {
                accept: true,
                note: None
            }
        ),
        Refusal::Forbidden(_)
    ));
    r.ok(
        &dispatcher(),
        Command::Review {
            accept: true,
            note: None,
        },
    );
    assert_eq!(r.order.status, OrderStatus::Closed);
    assert_eq!(r.order.closing, Some(Closing::Replied));
    assert_eq!(r.state(LEAD), AssignmentState::Done);
    let reply = r.order.replies.iter().rfind(|x| !x.report).unwrap();
    assert!(reply.review.as_ref().unwrap().accepted);
    // The working day after closing.
    assert_eq!(
        r.clock(ClockKind::FollowUp, None).due_at,
        at(datetime!(2026-12-02 00:00 +8))
    );
}

#[test]
fn review_sends_a_reply_back_on_the_same_deadline() {
    let mut r = Run::replied();
    let due = r.clock(ClockKind::Handle, Some(LEAD)).due_at;
    let bare = Command::Review {
        accept: false,
        note: None,
    };
    assert_eq!(field_of(&r.refused(&dispatcher(), bare)), "note");
    r.ok(
        &dispatcher(),
        Command::Review {
            accept: false,
            note: Some("未说明具体恢复时间".into()),
        },
    );
    assert_eq!(r.order.status, OrderStatus::Handling);
    assert_eq!(r.state(LEAD), AssignmentState::Contacted);
    let handle = r.clock(ClockKind::Handle, Some(LEAD));
    assert!(handle.is_open());
    assert_eq!(handle.due_at, due);
    r.ok(&handler(LEAD), reply("已于 12 月 1 日 18 时恢复供热"));
    assert_eq!(r.order.status, OrderStatus::Replied);
    // Review only when replied.
    let mut d = Run::dispatched();
    assert!(is_conflict(&d.refused(
        &dispatcher(),
        Command::Review {
            accept: true,
            note: None
        }
    )));
}

#[test]
fn a_satisfied_follow_up_archives_the_order() {
    let mut r = Run::closed();
    r.ok(&agent(), follow_up(Satisfaction::Satisfied));
    assert_eq!(r.order.status, OrderStatus::Archived);
    assert!(r.order.clocks.iter().all(|c| !c.is_open()));
    assert!(is_conflict(
        &r.refused(&agent(), follow_up(Satisfaction::Satisfied))
    ));
}

#[test]
fn an_unreached_citizen_keeps_the_follow_up_open() {
    let mut r = Run::closed();
    r.ok(
        &agent(),
        Command::FollowUp {
            reached: false,
            resolved: None,
            satisfaction: None,
            note: Some("无人接听".into()),
        },
    );
    assert_eq!(r.order.status, OrderStatus::Closed);
    assert!(r.clock(ClockKind::FollowUp, None).is_open());
    let incomplete = Command::FollowUp {
        reached: true,
        resolved: Some(true),
        satisfaction: None,
        note: None,
    };
    assert_eq!(field_of(&r.refused(&agent(), incomplete)), "satisfaction");
    assert!(matches!(
        r.refused(&handler(LEAD), follow_up(Satisfaction::Satisfied)),
        Refusal::Forbidden(_)
    ));
}

#[test]
fn an_unsatisfied_follow_up_sends_the_order_to_rework() {
    let mut r = Run::closed();
    r.later(24 * HOUR);
    let events = r.ok(&agent(), follow_up(Satisfaction::Unsatisfied));
    assert!(events.iter().any(|e| e.kind == "rework"));
    assert_eq!(r.order.status, OrderStatus::Handling);
    assert_eq!(r.order.rework_count, 1);
    assert_eq!(r.state(LEAD), AssignmentState::Signed);
    let handle = r.clock(ClockKind::Handle, Some(LEAD));
    assert!(handle.is_open());
    assert_eq!(handle.started_at, r.now);
    assert!(r.clock(ClockKind::Contact, Some(LEAD)).is_open());
    assert!(!r.clock(ClockKind::FollowUp, None).is_open());
}

#[test]
fn the_third_rework_escalates() {
    let mut r = Run::closed();
    for round in 1..=3 {
        let events = r.ok(&agent(), follow_up(Satisfaction::Unsatisfied));
        assert_eq!(
            events.iter().any(|e| e.kind == "escalated"),
            round == 3,
            "round {round}"
        );
        r.ok(
            &handler(LEAD),
            Command::Contact {
                unit: LEAD.into(),
                note: None,
            },
        );
        r.ok(&handler(LEAD), reply("再次处理"));
        r.ok(
            &dispatcher(),
            Command::Review {
                accept: true,
                note: None,
            },
        );
    }
    assert_eq!(r.order.escalated.as_deref(), Some("reworked 3 times"));
}

#[test]
fn a_return_is_asked_with_a_basis_within_a_working_day_of_signing() {
    let mut r = Run::dispatched();
    let ask = |basis: &str| Command::RequestReturn {
        unit: LEAD.into(),
        reason: "不属于本单位职责".into(),
        basis: basis.into(),
        suggested_unit: Some(OTHER.into()),
    };
    assert_eq!(field_of(&r.refused(&handler(LEAD), ask(""))), "basis");
    r.ok(&handler(LEAD), Command::Sign { unit: LEAD.into() });
    // Monday 09:00 signed; Wednesday is two working days later.
    r.later(48 * HOUR);
    assert!(is_conflict(
        &r.refused(&handler(LEAD), ask("《物业管理条例》"))
    ));
    let mut r = Run::dispatched();
    r.ok(&handler(LEAD), Command::Sign { unit: LEAD.into() });
    r.later(24 * HOUR);
    r.ok(&handler(LEAD), ask("《物业管理条例》第二条"));
    assert!(is_conflict(&r.refused(&handler(LEAD), ask("again"))));
    assert!(matches!(
        r.refused(
            &handler(LEAD),
            Command::DecideReturn {
                unit: LEAD.into(),
                approve: true,
                note: None
            }
        ),
        Refusal::Forbidden(_)
    ));
}

#[test]
fn an_approved_lead_return_goes_back_to_dispatch() {
    let mut r = Run::dispatched();
    r.ok(
        &handler(LEAD),
        Command::RequestReturn {
            unit: LEAD.into(),
            reason: "非本单位职责".into(),
            basis: "三定方案".into(),
            suggested_unit: Some(OTHER.into()),
        },
    );
    r.ok(
        &dispatcher(),
        Command::DecideReturn {
            unit: LEAD.into(),
            approve: true,
            note: None,
        },
    );
    assert_eq!(r.order.status, OrderStatus::Accepted);
    assert_eq!(r.order.returned_by, vec![LEAD.to_string()]);
    assert!(r.order.assignment(LEAD).is_none());
    assert_eq!(r.order.assignment(CO).unwrap().state, AssignmentState::Done);
    assert!(r.clock(ClockKind::Dispatch, None).is_open());
    assert!(!r.clock(ClockKind::Handle, Some(LEAD)).is_open());
    // The returning unit leads again only with a reason.
    assert_eq!(
        field_of(&r.refused(&dispatcher(), dispatch(LEAD, &[]))),
        "override_reason"
    );
    r.ok(&dispatcher(), dispatch(OTHER, &[CO]));
    assert_eq!(r.order.lead().unwrap().unit, OTHER);
    assert_eq!(r.state(CO), AssignmentState::PendingSign);
}

#[test]
fn a_rejected_return_leaves_the_unit_in_charge() {
    let mut r = Run::dispatched();
    r.ok(
        &handler(CO),
        Command::RequestReturn {
            unit: CO.into(),
            reason: "x".into(),
            basis: "y".into(),
            suggested_unit: None,
        },
    );
    r.ok(
        &dispatcher(),
        Command::DecideReturn {
            unit: CO.into(),
            approve: false,
            note: Some("属于职责范围".into()),
        },
    );
    assert_eq!(r.state(CO), AssignmentState::PendingSign);
    assert_eq!(r.order.returns[0].state, RequestState::Rejected);
    assert!(is_conflict(&r.refused(
        &dispatcher(),
        Command::DecideReturn {
            unit: CO.into(),
            approve: true,
            note: None
        }
    )));
}

#[test]
fn a_unit_may_cancel_its_own_return() {
    let mut r = Run::dispatched();
    assert!(is_conflict(&r.refused(
        &handler(CO),
        Command::CancelReturn { unit: CO.into() }
    )));
    r.ok(
        &handler(CO),
        Command::RequestReturn {
            unit: CO.into(),
            reason: "x".into(),
            basis: "y".into(),
            suggested_unit: None,
        },
    );
    r.ok(&handler(CO), Command::CancelReturn { unit: CO.into() });
    assert_eq!(r.order.returns[0].state, RequestState::Cancelled);
}

#[test]
fn three_lead_returns_escalate() {
    let mut r = Run::accepted();
    let units = ["u-a", "u-b", "u-c"];
    for (i, unit) in units.iter().enumerate() {
        r.ok(&dispatcher(), dispatch(unit, &[]));
        r.ok(
            &handler(unit),
            Command::RequestReturn {
                unit: unit.to_string(),
                reason: "非本单位职责".into(),
                basis: "三定方案".into(),
                suggested_unit: None,
            },
        );
        let events = r.ok(
            &dispatcher(),
            Command::DecideReturn {
                unit: unit.to_string(),
                approve: true,
                note: None,
            },
        );
        assert_eq!(events.iter().any(|e| e.kind == "escalated"), i == 2);
    }
    assert!(r.order.escalated.is_some());
}

#[test]
fn an_approved_extension_moves_the_deadline_and_keeps_the_original() {
    let mut r = Run::contacted();
    let due = r.clock(ClockKind::Handle, Some(LEAD)).due_at;
    let ask = |days: u32| Command::RequestExtension {
        unit: LEAD.into(),
        working_days: days,
        reason: "需协调多部门".into(),
        basis: None,
    };
    assert_eq!(
        field_of(&r.refused(&handler(LEAD), ask(16))),
        "working_days"
    );
    assert_eq!(field_of(&r.refused(&handler(LEAD), ask(0))), "working_days");
    r.ok(&handler(LEAD), ask(5));
    assert!(is_conflict(&r.refused(&handler(LEAD), ask(2))), "pending");
    r.ok(
        &dispatcher(),
        Command::DecideExtension {
            unit: LEAD.into(),
            approve: true,
            note: None,
        },
    );
    let handle = r.clock(ClockKind::Handle, Some(LEAD));
    assert_eq!(handle.original_due_at, due);
    // Due end of Mon 2026-12-21; five working days on: end of Mon 12-28.
    assert_eq!(handle.due_at, at(datetime!(2026-12-29 00:00 +8)));
    assert_eq!(r.order.extensions[0].due_before, Some(due));
    assert!(
        is_conflict(&r.refused(&handler(LEAD), ask(2))),
        "at most once"
    );
}

#[test]
fn an_extension_is_asked_before_the_deadline() {
    let mut r = Run::contacted();
    let due = r.clock(ClockKind::Handle, Some(LEAD)).due_at;
    r.now = due + 1;
    assert!(is_conflict(&r.refused(
        &handler(LEAD),
        Command::RequestExtension {
            unit: LEAD.into(),
            working_days: 3,
            reason: "x".into(),
            basis: None,
        }
    )));
}

#[test]
fn a_rejected_or_cancelled_extension_changes_no_deadline() {
    let mut r = Run::contacted();
    let due = r.clock(ClockKind::Handle, Some(LEAD)).due_at;
    let ask = Command::RequestExtension {
        unit: LEAD.into(),
        working_days: 3,
        reason: "x".into(),
        basis: None,
    };
    r.ok(&handler(LEAD), ask.clone());
    r.ok(
        &dispatcher(),
        Command::DecideExtension {
            unit: LEAD.into(),
            approve: false,
            note: Some("理由不足".into()),
        },
    );
    assert_eq!(r.clock(ClockKind::Handle, Some(LEAD)).due_at, due);
    r.ok(&handler(LEAD), ask);
    r.ok(
        &handler(LEAD),
        Command::CancelExtension { unit: LEAD.into() },
    );
    assert_eq!(r.order.extensions[1].state, RequestState::Cancelled);
    assert!(is_conflict(&r.refused(
        &dispatcher(),
        Command::DecideExtension {
            unit: LEAD.into(),
            approve: true,
            note: None
        }
    )));
}

#[test]
fn people_urge_and_supervise_units_on_the_order() {
    let mut r = Run::dispatched();
    let urge = |unit: &str| Command::Alert {
        kind: AlertKind::Urge,
        unit: Some(unit.into()),
        text: "请尽快签收".into(),
    };
    let supervisor = person("sup-wang", Role::Supervisor, None);
    r.ok(&supervisor, urge(LEAD));
    assert_eq!(r.order.alerts[0].kind, AlertKind::Urge);
    assert_eq!(field_of(&r.refused(&supervisor, urge(OTHER))), "unit");
    assert!(matches!(
        r.refused(&agent(), urge(LEAD)),
        Refusal::Forbidden(_)
    ));
    assert!(matches!(
        r.refused(&handler(LEAD), urge(LEAD)),
        Refusal::Forbidden(_)
    ));
}

#[test]
fn the_scheduler_records_urges_and_supervision_on_clocks() {
    let mut r = Run::dispatched();
    let system = Principal::system("scheduler");
    let alert = |overdue: bool, sent: u8| Command::ClockAlert {
        kind: ClockKind::Sign,
        unit: Some(LEAD.into()),
        overdue,
        percent: if overdue { 100 } else { 80 },
        alerts_sent: sent,
    };
    r.ok(&system, alert(false, 2));
    r.ok(&system, alert(true, 3));
    assert_eq!(r.clock(ClockKind::Sign, Some(LEAD)).alerts_sent, 3);
    let kinds: Vec<AlertKind> = r.order.alerts.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AlertKind::Urge, AlertKind::Supervise]);
    assert!(matches!(
        r.refused(&dispatcher(), alert(true, 4)),
        Refusal::Forbidden(_)
    ));
    r.ok(&handler(LEAD), Command::Sign { unit: LEAD.into() });
    assert!(is_conflict(&r.refused(&system, alert(true, 4))), "stopped");
}

#[test]
fn a_repeat_appeal_merges_into_the_first_order() {
    let mut r = Run::accepted();
    assert_eq!(
        field_of(&r.refused(
            &dispatcher(),
            Command::MergeInto {
                into: r.order.order_no.clone()
            }
        )),
        "into"
    );
    r.ok(
        &dispatcher(),
        Command::MergeInto {
            into: "20261129000007".into(),
        },
    );
    assert_eq!(r.order.status, OrderStatus::Archived);
    assert_eq!(
        r.order.closing,
        Some(Closing::Merged {
            into: "20261129000007".into()
        })
    );
    let mut first = Run::dispatched();
    let absorb = Command::Absorb {
        order_no: "20261130000009".into(),
        calls: vec![LinkedCall {
            call_id: "c-2".into(),
            recording: None,
            ivr_path: vec![],
            seat: None,
            survey_score: None,
        }],
    };
    first.ok(&dispatcher(), absorb.clone());
    assert_eq!(first.order.merged_from, vec!["20261130000009".to_string()]);
    assert_eq!(first.order.intake.calls.len(), 1);
    assert!(is_conflict(&first.refused(&dispatcher(), absorb)));
    // A dispatched order is not merged away.
    assert!(is_conflict(&first.refused(
        &dispatcher(),
        Command::MergeInto {
            into: "20261129000007".into()
        }
    )));
}

#[test]
fn overdue_clocks_are_found_at_a_time() {
    let r = Run::dispatched();
    let sign_due = r.clock(ClockKind::Sign, Some(LEAD)).due_at;
    assert_eq!(r.order.overdue_clocks(sign_due).count(), 0);
    let late: Vec<_> = r
        .order
        .overdue_clocks(sign_due + 1)
        .map(|c| (c.kind, c.unit.clone()))
        .collect();
    assert!(late.contains(&(ClockKind::Sign, Some(LEAD.to_string()))));
}

#[test]
fn the_order_survives_a_json_round_trip() {
    let r = Run::replied();
    let text = serde_json::to_string(&r.order).unwrap();
    let back: WorkOrder = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r.order);
}

#[test]
fn the_ivr_survey_rates_the_call_on_its_order() {
    let mut r = Run::draft(AppealType::Help);
    r.order.intake.calls.push(LinkedCall {
        call_id: "c-1".into(),
        recording: None,
        ivr_path: vec!["main:operator".into()],
        seat: Some("1001".into()),
        survey_score: None,
    });
    let system = Principal::system("ivr-survey");
    let rate = |call: &str| Command::CallSurvey {
        call_id: call.into(),
        score: 4,
    };
    assert!(is_conflict(&r.refused(&system, rate("c-1"))), "a draft");
    r.ok(&agent(), Command::Submit);
    assert!(
        is_conflict(&r.refused(&system, rate("c-9"))),
        "not its call"
    );
    assert!(matches!(
        r.refused(&agent(), rate("c-1")),
        Refusal::Forbidden(_)
    ));
    r.ok(&system, rate("c-1"));
    assert_eq!(r.order.intake.calls[0].survey_score, Some(4));
}

#[test]
fn a_repeat_call_joins_an_open_order_once_and_is_counted() {
    let mut r = Run::draft(AppealType::Help);
    let system = Principal::system("repeat-caller");
    let call = |id: &str| Command::RepeatCall {
        call: LinkedCall {
            call_id: id.into(),
            recording: None,
            ivr_path: vec!["main:welcome".into()],
            seat: None,
            survey_score: None,
        },
    };
    assert!(is_conflict(&r.refused(&system, call("c-2"))), "a draft");
    r.ok(&agent(), Command::Submit);
    assert!(matches!(
        r.refused(&agent(), call("c-2")),
        Refusal::Forbidden(_)
    ));
    r.ok(&system, call("c-2"));
    assert_eq!(r.order.repeat_calls, 1);
    assert_eq!(r.order.intake.calls.last().unwrap().call_id, "c-2");
    // The same call again changes nothing.
    let before = r.order.clone();
    assert!(r.ok(&system, call("c-2")).is_empty());
    assert_eq!(r.order, before);
    r.ok(&system, call("c-3"));
    assert_eq!(r.order.repeat_calls, 2);
}
