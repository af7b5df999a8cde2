//! Work orders filed from real calls, on real parts. A SIPp caller dials
//! 12345 (A-law with telephone-events), goes through the shipped IVR (RFC
//! 4733 digit 0 in the language menu: the operator queue) and a SIPp seat
//! answers; during the call an agent files the order with `POST
//! /api/v1/calls/{id}/order`, which fills in the caller's number, the
//! Call-ID, the IVR path, the seat and the recording from the call. API
//! users are made with the real `hotline users add` and act with their
//! bearer tokens.
//!
//! The first test takes that order from intake to archive: dispatch to a
//! lead and a co-handler, signing, the co-handler's report, contact, an
//! approved extension, a reply sent back at review, a second reply
//! accepted, an unsatisfied follow-up and the rework, and a satisfied
//! follow-up. After every step it checks which clocks stopped and started
//! and their due times against the shipped working-day calendar (read
//! here, not through the server's code), and at the end one audit entry
//! per step: action, actor, role and the before/after of `status`. The
//! deadline sweeps are off there (`sweep_secs = 0`), so no urge written by
//! the scheduler can slip into the audit log. A second caller, who talks
//! to an agent and hangs up, leaves a call record and no order.
//!
//! The second test runs the server on a private PostgreSQL database and
//! files an order from a live call while the database is unavailable: it
//! is spooled (202), listing orders answers 503, and once the database is
//! back the order is written with the time it was filed and the spool is
//! emptied.

mod common;

use common::media::PCMA_DTMF;
use common::orders::{Client, user};
use common::seat::{Answer as Pickup, MD5_ONLY, SippSeat};
use common::temp_db::TempDb;
use common::*;
use hotline::call::record::now_ms;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

/// The citizen who files the order.
const CALLER: &str = "13800138000";
/// A citizen who talks to an agent and gets no order.
const OTHER_CALLER: &str = "13900139000";
/// 040201 建筑施工噪声 in 150104 玉泉区: the dispatch catalogue's rule for
/// 呼和浩特市 names the urban management bureau as lead and the ecology
/// and environment bureau as co-handler.
const CATEGORY: &str = "040201";
const DIVISION: &str = "150104";
const LEAD: &str = "hhht-urban";
const CO: &str = "hhht-eco";
/// The shipped limits (working days) for a complaint.
const SIGN_DAYS: u32 = 1;
const CONTACT_DAYS: u32 = 2;
const HANDLE_DAYS: u32 = 15;
const REVIEW_DAYS: u32 = 1;
const FOLLOW_UP_DAYS: u32 = 1;
const DISPATCH_DAYS: u32 = 0;
/// The extension the lead asks for.
const EXTRA_DAYS: u32 = 5;

/// The appeal an agent types in while on the call (the rest comes from it).
fn intake() -> Value {
    json!({
        "citizen": {"name": "张建国"},
        "appeal_type": "complaint",
        "category": CATEGORY,
        "division": DIVISION,
        "location": "玉泉区南二环路某小区东侧工地",
        "content": "工地每晚22点后仍在施工，噪声扰民，请求处理。",
    })
}

/// A SIPp caller from `number` with Call-ID `call_id`: after the greeting
/// (no barge-in) it plays RFC 4733 digit 0 in the language menu (the
/// operator queue), then speaks (the shipped 7 s A-law capture) and stays
/// `stay_ms` in all before hanging up.
fn caller(server: &Server, number: &str, call_id: &str, stay_ms: u32) -> JoinHandle<SippRun> {
    let after_ack = [
        pause(9_500),
        play_pcap("dtmf_2833_0.pcap"),
        pause(1_000),
        play_pcap("g711a.pcap"),
        pause(stay_ms),
    ]
    .concat();
    let scenario =
        uac_scenario(Some(&offer("8 101", PCMA_DTMF)), &after_ack).replace("13800138000", number);
    let (sip, call_id) = (server.sip, call_id.to_owned());
    std::thread::spawn(move || sipp_to(sip, &scenario, 1, &["-cid_str", &call_id]))
}

/// Waits until the server bridged `call_id` to a seat.
fn connected(server: &Server, call_id: &str, limit: Duration) -> bool {
    poll(limit, Duration::from_millis(50), || {
        server
            .log()
            .lines()
            .any(|l| l.contains(call_id) && l.contains("caller connected to agent"))
            .then_some(())
    })
    .is_some()
}

/// Fails unless `seat` is talking right now (the call is live).
fn in_call(server: &Server, seat: &str) {
    let (status, body) = server.get(&format!("/api/v1/seats/{seat}"));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "in_call", "seat {seat} is not on the call: {v}");
}

/// Waits for a SIPp caller's run and fails unless every message went as
/// scripted.
fn finished(call: JoinHandle<SippRun>, server: &Server) {
    let run = call.join().expect("the SIPp thread panicked");
    assert!(run.success, "{}\n{}", run.describe(), server.log());
}

// ---------------------------------------------------------------------------
// The working-day calendar, read here from the shipped files
// ---------------------------------------------------------------------------

const DAY_MS: i64 = 86_400_000;
/// China's +08:00 (the shipped `[orders] utc_offset`).
const OFFSET_MS: i64 = 8 * 3_600_000;

/// Holidays and make-up working days of `sip-config/calendar/*.toml`, as
/// local day numbers (days since 1970-01-01).
struct WorkDays {
    holidays: BTreeSet<i64>,
    workdays: BTreeSet<i64>,
}

impl WorkDays {
    fn shipped() -> WorkDays {
        let mut days = WorkDays {
            holidays: BTreeSet::new(),
            workdays: BTreeSet::new(),
        };
        for entry in std::fs::read_dir(repo("sip-config/calendar")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let file: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for (key, set) in [
                ("holidays", &mut days.holidays),
                ("workdays", &mut days.workdays),
            ] {
                for date in file[key].as_array().into_iter().flatten() {
                    set.insert(day_number(date.as_str().unwrap()));
                }
            }
        }
        assert!(!days.holidays.is_empty(), "no calendar read");
        days
    }

    fn is_working(&self, day: i64) -> bool {
        // 1970-01-01 was a Thursday: (day + 4) mod 7 is 0 on Sundays.
        self.workdays.contains(&day)
            || (!self.holidays.contains(&day) && !matches!((day + 4).rem_euclid(7), 0 | 6))
    }

    /// A step started at `start` with `n` working days: due at the local
    /// midnight ending the n-th working day after the start's working day
    /// (the next working day when it started on a day off).
    fn due(&self, start: i64, n: u32) -> i64 {
        let mut day = (start + OFFSET_MS).div_euclid(DAY_MS);
        while !self.is_working(day) {
            day += 1;
        }
        for _ in 0..n {
            day += 1;
            while !self.is_working(day) {
                day += 1;
            }
        }
        (day + 1) * DAY_MS - OFFSET_MS
    }

    /// Working days after the day a due time ends up to the day `later`
    /// ends.
    fn working_days_between(&self, due: i64, later: i64) -> u32 {
        let day = |ms: i64| (ms - 1 + OFFSET_MS).div_euclid(DAY_MS);
        (day(due) + 1..=day(later))
            .filter(|d| self.is_working(*d))
            .count() as u32
    }
}

/// `YYYY-MM-DD` as days since 1970-01-01.
fn day_number(date: &str) -> i64 {
    let parts: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let month = time::Month::try_from(parts[1] as u8).unwrap();
    let date = time::Date::from_calendar_date(parts[0] as i32, month, parts[2] as u8).unwrap();
    i64::from(date.to_julian_day()) - 2_440_588
}

// ---------------------------------------------------------------------------
// Reading an order
// ---------------------------------------------------------------------------

/// The order's clocks of `kind` for `unit` (`None`: the hotline's own),
/// oldest first.
fn clocks<'a>(order: &'a Value, kind: &str, unit: Option<&str>) -> Vec<&'a Value> {
    order["clocks"]
        .as_array()
        .unwrap_or_else(|| panic!("no clocks: {order}"))
        .iter()
        .filter(|c| c["kind"] == kind && c["unit"].as_str() == unit)
        .collect()
}

/// The newest clock of `kind` for `unit`.
fn clock<'a>(order: &'a Value, kind: &str, unit: Option<&str>) -> &'a Value {
    clocks(order, kind, unit)
        .pop()
        .unwrap_or_else(|| panic!("no {kind} clock for {unit:?}: {:#}", order["clocks"]))
}

/// The running clocks as `kind` or `kind@unit`.
fn running(order: &Value) -> BTreeSet<String> {
    order["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["stopped_at"].is_null())
        .map(|c| match c["unit"].as_str() {
            Some(unit) => format!("{}@{unit}", c["kind"].as_str().unwrap()),
            None => c["kind"].as_str().unwrap().to_owned(),
        })
        .collect()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not a time: {v}"))
}

/// One unit's part in the order.
fn part<'a>(order: &'a Value, unit: &str) -> &'a Value {
    order["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|a| a["unit"] == unit)
        .unwrap_or_else(|| panic!("{unit} has no part: {order}"))
}

/// The audit entry a step should have written.
struct Expected {
    action: &'static str,
    actor: &'static str,
    role: &'static str,
    /// `status` before and after; `None` when the step leaves it alone.
    status: Option<(String, &'static str)>,
    at: i64,
}

/// The order's desk as seen through the API: the order's number, the
/// calendar, and the audit entries the steps should have written.
struct Desk {
    no: String,
    days: WorkDays,
    expected: Vec<Expected>,
}

/// The users of the test, by name and role.
struct User {
    name: &'static str,
    role: &'static str,
    client: Client,
}

impl User {
    fn new(server: &Server, name: &'static str, role: &'static str, unit: Option<&str>) -> User {
        User {
            name,
            role,
            client: Client::new(server, &user(server, name, role, unit)),
        }
    }
}

impl Desk {
    /// `who` posts `body` to `/api/v1/orders/{no}/{action}`; the order
    /// must reach `status`, with exactly the `running` clocks running.
    /// `stamp` finds the step's time in the order, which must fall while
    /// the request was out; the step's audit entry is expected with it.
    /// Returns the order and the step's time.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        who: &User,
        action: &str,
        body: Value,
        audit_action: &'static str,
        status: &'static str,
        running_after: &[&str],
        stamp: impl Fn(&Value) -> &Value,
    ) -> (Value, i64) {
        let before = self.order(who);
        let from = now_ms();
        let answer = who
            .client
            .post(&format!("/api/v1/orders/{}/{action}", self.no), &body);
        let to = now_ms();
        let reply = answer.expect(200);
        let order = reply["order"].clone();
        assert_eq!(
            order["status"], status,
            "{action} by {}: {order:#}",
            who.name
        );
        assert_eq!(
            reply["version"],
            json!(self.expected.len() + 1),
            "one write per step: {reply}"
        );
        let at = int(stamp(&order));
        assert!(
            (from..=to).contains(&at),
            "{action} stamped {at}, outside {from}..={to}: {order:#}"
        );
        let want: BTreeSet<String> = running_after.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            running(&order),
            want,
            "running clocks after {action}: {:#}",
            order["clocks"]
        );
        let was = before["status"].as_str().unwrap().to_owned();
        self.expected.push(Expected {
            action: audit_action,
            actor: who.name,
            role: who.role,
            status: (was != status).then_some((was, status)),
            at,
        });
        (order, at)
    }

    /// The order as `who` sees it now.
    fn order(&self, who: &User) -> Value {
        who.client
            .get(&format!("/api/v1/orders/{}", self.no))
            .expect(200)["order"]
            .clone()
    }

    /// Fails unless the newest `kind` clock of `unit` stopped at `at`.
    fn stopped(&self, order: &Value, kind: &str, unit: Option<&str>, at: i64) {
        let c = clock(order, kind, unit);
        assert_eq!(
            c["stopped_at"], at,
            "{kind} {unit:?} should stop at {at}: {c}"
        );
    }

    /// Fails unless the newest `kind` clock of `unit` started at `at`, is
    /// due `days` working days on, with the same original due time, and
    /// runs.
    fn started(&self, order: &Value, kind: &str, unit: Option<&str>, at: i64, days: u32) {
        let c = clock(order, kind, unit);
        let due = self.days.due(at, days);
        assert_eq!(c["started_at"], at, "{kind} {unit:?}: {c}");
        assert_eq!(
            c["due_at"], due,
            "{kind} {unit:?} started {at} with {days} working days: {c}"
        );
        assert_eq!(c["original_due_at"], due, "{kind} {unit:?}: {c}");
        assert!(c["stopped_at"].is_null(), "{kind} {unit:?}: {c}");
    }

    /// Checks the audit log against the steps: one entry each, in order.
    fn check_audit(&self, dispatcher: &User) {
        let log = dispatcher
            .client
            .get(&format!("/api/v1/orders/{}/audit", self.no))
            .expect(200)["entries"]
            .clone();
        let entries = log.as_array().unwrap();
        let actions: Vec<&str> = entries
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = self.expected.iter().map(|e| e.action).collect();
        assert_eq!(actions, want, "one audit entry per step: {log:#}");
        for (entry, want) in entries.iter().zip(&self.expected) {
            let what = format!("audit entry {}: {entry:#}", want.action);
            assert_eq!(entry["actor"], want.actor, "{what}");
            assert_eq!(entry["role"], want.role, "{what}");
            assert_eq!(entry["at"], want.at, "{what}");
            let changes = &entry["changes"];
            if want.action == "create" {
                assert_eq!(changes["created"]["status"], "accepted", "{what}");
                assert_eq!(changes["created"]["order_no"], self.no.as_str(), "{what}");
                continue;
            }
            match &want.status {
                Some((before, after)) => assert_eq!(
                    changes["status"],
                    json!({"before": before, "after": after}),
                    "{what}"
                ),
                None => assert!(changes.get("status").is_none(), "{what}"),
            }
            assert!(changes.as_object().is_some_and(|c| !c.is_empty()), "{what}");
        }
        eprintln!("audit: {} entries, {}", entries.len(), actions.join(" → "));
    }
}

/// The entry's files in a spool folder (`*.json`), and whether a
/// `rejected/` folder exists.
fn spooled_files(dir: &Path) -> (Vec<String>, bool) {
    let files = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    (files, dir.join("rejected").exists())
}

#[test]
fn an_order_follows_a_call_from_intake_to_archive() {
    let server = Server::start(
        "orders-e2e",
        &[
            MD5_ONLY,
            // SIPp seats run fixed scripts: no keep-alive OPTIONS mid-call.
            ("registrar", "keepalive_secs = 0"),
            ("orders", "sweep_secs = 0"),
        ],
    );
    let agent = User::new(&server, "wang.fang", "agent", None);
    let dispatcher = User::new(&server, "li.na", "dispatcher", None);
    let lead = User::new(&server, "zhao.lei", "unit_handler", Some(LEAD));
    let co = User::new(&server, "sun.li", "unit_handler", Some(CO));

    // Two seats and two callers at once: the first files an order, the
    // second talks and hangs up.
    let seats = [
        SippSeat::start(&server, "1002", Pickup::Answers, 1),
        SippSeat::start(&server, "1003", Pickup::Answers, 1),
    ];
    let diag = || {
        let mut text = String::new();
        for s in &seats {
            text.push_str(&s.messages());
        }
        text.push_str("--- server log ---\n");
        text.push_str(&server.log());
        text
    };
    let pid = std::process::id();
    let (cid, other_cid) = (format!("orders-e2e-{pid}"), format!("orders-none-{pid}"));
    let first = caller(&server, CALLER, &cid, 15_000);
    let second = caller(&server, OTHER_CALLER, &other_cid, 3_000);
    assert!(
        connected(&server, &cid, Duration::from_secs(30)),
        "the caller never reached a seat\n{}",
        diag()
    );

    // 2. The agent files the order of the call they are on.
    let filed_from = now_ms();
    let answer = agent
        .client
        .post(&format!("/api/v1/calls/{cid}/order"), &intake());
    let filed_to = now_ms();
    let created = answer.expect(201).clone();
    let order = &created["order"];
    let no = order["order_no"].as_str().unwrap().to_owned();
    assert_eq!(order["status"], "accepted", "{created:#}");
    assert_eq!(created["version"], 1, "{created:#}");
    assert_eq!(created["events"][0]["kind"], "accepted", "{created:#}");
    assert_eq!(order["created_by"], agent.name, "{order:#}");
    assert_eq!(order["intake"]["channel"], "phone", "{order:#}");
    // The number is the caller's, shown masked (the listing below finds
    // the order by the whole number).
    assert_eq!(
        order["intake"]["citizen"]["phone"], "138****8000",
        "{order:#}"
    );
    let calls = order["intake"]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{order:#}");
    let call = calls[0].clone();
    assert_eq!(call["call_id"], cid.as_str(), "{call}");
    let path: Vec<&str> = call["ivr_path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        path.contains(&"main:choose_language") && path.contains(&"main:operator"),
        "IVR path {path:?}"
    );
    let seat = call["seat"]
        .as_str()
        .unwrap_or_else(|| panic!("no seat: {call}"));
    assert!(["1002", "1003"].contains(&seat), "{call}");
    // Filed during the call: the seat is still talking to the caller.
    in_call(&server, seat);
    let recording = call["recording"]
        .as_str()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| panic!("no recording: {call}\n{}", diag()))
        .to_owned();
    let created_at = int(&order["created_at"]);
    assert!((filed_from..=filed_to).contains(&created_at), "{order:#}");
    assert_eq!(order["accepted_at"], created_at, "{order:#}");

    let mut desk = Desk {
        no: no.clone(),
        days: WorkDays::shipped(),
        expected: vec![Expected {
            action: "create",
            actor: agent.name,
            role: agent.role,
            status: None,
            at: created_at,
        }],
    };
    // The hotline's dispatch clock: the same working day.
    desk.started(order, "dispatch", None, created_at, DISPATCH_DAYS);
    assert_eq!(running(order), BTreeSet::from(["dispatch".to_owned()]));
    let listed = agent
        .client
        .get(&format!("/api/v1/orders?phone={CALLER}"))
        .expect(200)["orders"]
        .clone();
    let listed_nos: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["order_no"].as_str())
        .collect();
    assert_eq!(listed_nos, [no.as_str()], "{listed:#}");

    // 3. Dispatch to the catalogue's lead and co-handler.
    let all_units = [
        "sign@hhht-urban",
        "contact@hhht-urban",
        "handle@hhht-urban",
        "sign@hhht-eco",
        "contact@hhht-eco",
        "handle@hhht-eco",
    ];
    let (order, t) = desk.step(
        &dispatcher,
        "dispatch",
        json!({"lead": LEAD, "co_handlers": [CO]}),
        "dispatch",
        "dispatched",
        &all_units,
        |o| &clock(o, "dispatch", None)["stopped_at"],
    );
    assert_eq!(part(&order, LEAD)["role"], "lead");
    assert_eq!(part(&order, CO)["role"], "co_handler");
    for unit in [LEAD, CO] {
        assert_eq!(part(&order, unit)["state"], "pending_sign");
        assert_eq!(part(&order, unit)["dispatched_at"], t);
        desk.started(&order, "sign", Some(unit), t, SIGN_DAYS);
        desk.started(&order, "contact", Some(unit), t, CONTACT_DAYS);
        desk.started(&order, "handle", Some(unit), t, HANDLE_DAYS);
    }

    // 4. The co-handler signs and reports; the lead signs and contacts
    // the citizen.
    let (order, t) = desk.step(
        &co,
        "sign",
        json!({}),
        "sign",
        "dispatched",
        &all_units
            .iter()
            .copied()
            .filter(|c| *c != "sign@hhht-eco")
            .collect::<Vec<_>>(),
        |o| &part(o, CO)["signed_at"],
    );
    desk.stopped(&order, "sign", Some(CO), t);
    let (order, t) = desk.step(
        &co,
        "report",
        json!({"text": "已对工地开展夜间噪声监测，超标，已移交城管执法。"}),
        "report",
        "dispatched",
        &all_units[..3],
        |o| &part(o, CO)["finished_at"],
    );
    assert_eq!(part(&order, CO)["state"], "reported");
    desk.stopped(&order, "contact", Some(CO), t);
    desk.stopped(&order, "handle", Some(CO), t);
    let (order, t) = desk.step(
        &lead,
        "sign",
        json!({}),
        "sign",
        "handling",
        &all_units[1..3],
        |o| &part(o, LEAD)["signed_at"],
    );
    desk.stopped(&order, "sign", Some(LEAD), t);
    let (order, t) = desk.step(
        &lead,
        "contact",
        json!({"note": "已电话联系张先生，说明将于本周内约谈施工单位。"}),
        "contact",
        "handling",
        &all_units[2..3],
        |o| &part(o, LEAD)["contacted_at"],
    );
    desk.stopped(&order, "contact", Some(LEAD), t);
    let handle = clock(&order, "handle", Some(LEAD)).clone();
    let original_due = int(&handle["due_at"]);

    // 5. The lead asks for 5 more working days; the dispatcher approves:
    // the due time moves, the original is kept.
    let (order, _) = desk.step(
        &lead,
        "extension",
        json!({"working_days": EXTRA_DAYS, "reason": "需协调施工单位调整工期", "basis": "施工许可调整需住建部门审批"}),
        "request_extension",
        "handling",
        &all_units[2..3],
        |o| &o["extensions"][0]["requested_at"],
    );
    assert_eq!(order["extensions"][0]["state"], "pending", "{order:#}");
    assert_eq!(
        clock(&order, "handle", Some(LEAD)),
        &handle,
        "unchanged while asked"
    );
    let (order, t) = desk.step(
        &dispatcher,
        "extension/decision",
        json!({"unit": LEAD, "approve": true, "note": "同意延期5个工作日"}),
        "decide_extension",
        "handling",
        &all_units[2..3],
        |o| &o["extensions"][0]["decided_at"],
    );
    let extended = clock(&order, "handle", Some(LEAD)).clone();
    let new_due = int(&extended["due_at"]);
    assert_eq!(extended["original_due_at"], original_due, "{extended}");
    assert_eq!(extended["started_at"], handle["started_at"], "{extended}");
    assert_eq!(
        new_due,
        desk.days.due(original_due - 1, EXTRA_DAYS),
        "the extended due time: {extended}"
    );
    assert_eq!(
        desk.days.working_days_between(original_due, new_due),
        EXTRA_DAYS,
        "{extended}"
    );
    assert_eq!(clocks(&order, "handle", Some(LEAD)).len(), 1, "{order:#}");
    let x = &order["extensions"][0];
    assert_eq!(x["state"], "approved", "{x}");
    assert_eq!(x["decided_by"], dispatcher.name, "{x}");
    assert_eq!(x["due_before"], original_due, "{x}");
    assert_eq!(x["due_after"], new_due, "{x}");
    assert!(t < original_due, "asked before the deadline");

    // 6. The lead replies: its handle clock stops, review starts.
    let (order, t) = desk.step(
        &lead,
        "reply",
        json!({"text": "已责令施工单位夜间停工。"}),
        "reply",
        "replied",
        &["review"],
        |o| &o["replies"].as_array().unwrap().last().unwrap()["at"],
    );
    desk.stopped(&order, "handle", Some(LEAD), t);
    desk.started(&order, "review", None, t, REVIEW_DAYS);

    // 7. Review sends the reply back: handling goes on to the same
    // (extended) deadline.
    let (order, t) = desk.step(
        &dispatcher,
        "review",
        json!({"accept": false, "note": "未说明处罚结果和后续监管措施"}),
        "review",
        "handling",
        &["handle@hhht-urban"],
        |o| &o["replies"].as_array().unwrap().last().unwrap()["review"]["at"],
    );
    desk.stopped(&order, "review", None, t);
    assert_eq!(part(&order, LEAD)["state"], "contacted");
    let reopened = clock(&order, "handle", Some(LEAD));
    assert_eq!(reopened["due_at"], new_due, "{reopened}");
    assert_eq!(reopened["original_due_at"], original_due, "{reopened}");
    assert!(reopened["stopped_at"].is_null(), "{reopened}");

    // 8. The lead replies again.
    let (order, t) = desk.step(
        &lead,
        "reply",
        json!({"text": "已责令夜间停工，罚款2万元，每晚巡查至工程结束。"}),
        "reply",
        "replied",
        &["review"],
        |o| &o["replies"].as_array().unwrap().last().unwrap()["at"],
    );
    desk.stopped(&order, "handle", Some(LEAD), t);
    desk.started(&order, "review", None, t, REVIEW_DAYS);
    assert_eq!(
        clocks(&order, "review", None).len(),
        2,
        "{:#}",
        order["clocks"]
    );

    // 9. The reply is accepted: closed, follow-up due.
    let (order, t) = desk.step(
        &dispatcher,
        "review",
        json!({"accept": true}),
        "review",
        "closed",
        &["follow_up"],
        |o| &o["closed_at"],
    );
    desk.stopped(&order, "review", None, t);
    desk.started(&order, "follow_up", None, t, FOLLOW_UP_DAYS);
    assert_eq!(order["closing"]["kind"], "replied", "{order:#}");
    for unit in [LEAD, CO] {
        assert_eq!(part(&order, unit)["state"], "done", "{order:#}");
    }

    // 10. Unsatisfied at follow-up: rework, the lead's contact and handle
    // clocks start over.
    let (order, t) = desk.step(
        &agent,
        "follow-up",
        json!({"reached": true, "resolved": false, "satisfaction": "unsatisfied", "note": "夜间仍有施工"}),
        "follow_up",
        "handling",
        &["contact@hhht-urban", "handle@hhht-urban"],
        |o| &o["follow_ups"][0]["at"],
    );
    desk.stopped(&order, "follow_up", None, t);
    desk.started(&order, "contact", Some(LEAD), t, CONTACT_DAYS);
    desk.started(&order, "handle", Some(LEAD), t, HANDLE_DAYS);
    assert_eq!(order["rework_count"], 1, "{order:#}");
    assert!(order["closed_at"].is_null(), "{order:#}");
    assert_eq!(part(&order, LEAD)["state"], "signed", "{order:#}");
    // The extended deadline of the first round is kept as it was.
    let rounds = clocks(&order, "handle", Some(LEAD));
    assert_eq!(rounds.len(), 2, "{:#}", order["clocks"]);
    assert_eq!(rounds[0]["due_at"], new_due, "{}", rounds[0]);
    assert_eq!(rounds[0]["original_due_at"], original_due, "{}", rounds[0]);

    // 11. The lead handles again and replies; accepted; satisfied; archived.
    let (order, t) = desk.step(
        &lead,
        "contact",
        json!({"note": "再次上门核实，工地已停工。"}),
        "contact",
        "handling",
        &["handle@hhht-urban"],
        |o| &part(o, LEAD)["contacted_at"],
    );
    desk.stopped(&order, "contact", Some(LEAD), t);
    let (order, t) = desk.step(
        &lead,
        "reply",
        json!({"text": "复查属实，已对施工单位立案处罚，夜间施工已停止。"}),
        "reply",
        "replied",
        &["review"],
        |o| &o["replies"].as_array().unwrap().last().unwrap()["at"],
    );
    desk.stopped(&order, "handle", Some(LEAD), t);
    desk.started(&order, "review", None, t, REVIEW_DAYS);
    let (order, t) = desk.step(
        &dispatcher,
        "review",
        json!({"accept": true}),
        "review",
        "closed",
        &["follow_up"],
        |o| &o["closed_at"],
    );
    desk.started(&order, "follow_up", None, t, FOLLOW_UP_DAYS);
    let (order, t) = desk.step(
        &agent,
        "follow-up",
        json!({"reached": true, "resolved": true, "satisfaction": "satisfied"}),
        "follow_up",
        "archived",
        &[],
        |o| &o["archived_at"],
    );
    desk.stopped(&order, "follow_up", None, t);
    assert_eq!(order["rework_count"], 1, "{order:#}");
    let replies: Vec<(&str, bool)> = order["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["unit"].as_str().unwrap(), r["report"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        replies,
        [(CO, true), (LEAD, false), (LEAD, false), (LEAD, false)],
        "{order:#}"
    );
    desk.check_audit(&dispatcher);

    // The call ends: its record keeps what the order was given.
    finished(first, &server);
    let record = server.call_record(&cid);
    assert_eq!(record["caller"], CALLER, "{record}");
    assert_eq!(record["seat"], seat, "{record}");
    assert_eq!(record["call_recording"], recording.as_str(), "{record}");
    let flow_path: Vec<&str> = record["flow_path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(flow_path.starts_with(&path), "{flow_path:?} vs {path:?}");
    let wav = std::fs::read(&recording).unwrap_or_else(|e| panic!("{recording}: {e}"));
    assert!(wav.starts_with(b"RIFF") && wav.len() > 8_000, "{recording}");

    // A call that ends without an order: a call record, and no order.
    finished(second, &server);
    let other = server.call_record(&other_cid);
    assert_eq!(other["caller"], OTHER_CALLER, "{other}");
    assert!(other["seat"].as_str().is_some(), "{other}\n{}", diag());
    let none = agent
        .client
        .get(&format!("/api/v1/orders?phone={OTHER_CALLER}"))
        .expect(200)
        .clone();
    assert_eq!(none["orders"], json!([]), "{none}");
    eprintln!(
        "order {no}: handle due {original_due} extended to {new_due}; call {cid} on seat {seat}"
    );
}

#[test]
fn orders_filed_during_a_database_outage_are_spooled_and_written_later() {
    let db = TempDb::new("orders_spool");
    let store = format!("database_url = \"{}\"", db.url());
    let server = Server::start(
        "orders-spool",
        &[
            MD5_ONLY,
            ("registrar", "keepalive_secs = 0"),
            ("store", &store),
        ],
    );
    let agent = User::new(&server, "wang.fang", "agent", None);
    let dispatcher = User::new(&server, "li.na", "dispatcher", None);
    // The database vouches for the agent's token once; the server then
    // remembers it through an outage.
    let before = agent
        .client
        .get(&format!("/api/v1/orders?phone={CALLER}"))
        .expect(200)
        .clone();
    assert_eq!(before["orders"], json!([]), "{before}");

    let seat = SippSeat::start(&server, "1002", Pickup::Answers, 1);
    let cid = format!("orders-spool-{}", std::process::id());
    let call = caller(&server, CALLER, &cid, 15_000);
    assert!(
        connected(&server, &cid, Duration::from_secs(30)),
        "the caller never reached a seat\n{}{}",
        seat.messages(),
        server.log()
    );

    db.outage();
    let filed_from = now_ms();
    let answer = agent
        .client
        .post(&format!("/api/v1/calls/{cid}/order"), &intake());
    let filed_to = now_ms();
    let kept = answer.expect(202).clone();
    // From the live call (an ended call's record would need the database).
    in_call(&server, "1002");
    let id = kept["spooled"]
        .as_str()
        .unwrap_or_else(|| panic!("no spool id: {kept}"))
        .to_owned();
    assert!(
        kept["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{kept}"
    );
    let spool = server.dir.join("spool/orders");
    let file = spool.join(format!("{id}.json"));
    let entry: Value = serde_json::from_slice(
        &std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
    )
    .unwrap();
    assert_eq!(
        entry["intake"]["calls"][0]["call_id"],
        cid.as_str(),
        "{entry}"
    );
    assert_eq!(entry["intake"]["calls"][0]["seat"], "1002", "{entry}");
    assert_eq!(entry["intake"]["citizen"]["phone"], CALLER, "{entry}");
    assert_eq!(entry["who"]["name"], agent.name, "{entry}");

    // Reading orders needs the database: a clear 503.
    let listing = agent.client.get(&format!("/api/v1/orders?phone={CALLER}"));
    let error = listing.error(503).to_owned();
    assert!(error.contains("unavailable"), "{listing}");
    assert!(
        listing
            .header("content-type")
            .is_some_and(|c| c.contains("json")),
        "{listing:?}"
    );

    // Back again: the sweeper writes the order within a few seconds.
    std::thread::sleep(Duration::from_millis(1_500));
    let restored_at = now_ms();
    db.restore();
    let written = poll(Duration::from_secs(10), Duration::from_millis(200), || {
        let a = agent.client.get(&format!("/api/v1/orders?phone={CALLER}"));
        (a.status == 200 && a.json["orders"].as_array().is_some_and(|o| !o.is_empty()))
            .then(|| a.json["orders"].clone())
    })
    .unwrap_or_else(|| panic!("the spooled order was never written\n{}", server.log()));
    let delay = now_ms() - restored_at;
    let orders = written.as_array().unwrap();
    assert_eq!(orders.len(), 1, "{written:#}");
    let order = &orders[0];
    let created_at = int(&order["created_at"]);
    assert!(
        (filed_from..=filed_to).contains(&created_at),
        "created {created_at}, filed {filed_from}..={filed_to}: {order:#}"
    );
    assert!(created_at < restored_at, "{order:#}");
    assert_eq!(order["status"], "accepted", "{order:#}");
    assert_eq!(order["created_by"], agent.name, "{order:#}");
    assert_eq!(order["intake"]["channel"], "phone", "{order:#}");
    let linked = &order["intake"]["calls"][0];
    assert_eq!(linked["call_id"], cid.as_str(), "{order:#}");
    assert_eq!(linked["seat"], "1002", "{order:#}");
    assert!(
        linked["ivr_path"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("main:operator"))),
        "{order:#}"
    );
    assert!(
        linked["recording"].as_str().is_some_and(|r| !r.is_empty()),
        "{order:#}"
    );
    desk_clock_check(order, created_at);
    let (files, rejected) = spooled_files(&spool);
    assert!(
        files.is_empty() && !rejected,
        "spool left: {files:?}, rejected/ {rejected}"
    );
    let no = order["order_no"].as_str().unwrap();
    let log = dispatcher
        .client
        .get(&format!("/api/v1/orders/{no}/audit"))
        .expect(200)["entries"]
        .clone();
    let entries = log.as_array().unwrap();
    assert_eq!(entries[0]["action"], "create", "{log:#}");
    assert_eq!(entries[0]["actor"], agent.name, "{log:#}");
    assert_eq!(entries[0]["role"], "agent", "{log:#}");
    assert_eq!(entries[0]["at"], created_at, "{log:#}");
    // Only the scheduler may have added to it (sweeps run here).
    assert!(
        entries[1..].iter().all(|e| e["action"] == "clock_alert"),
        "{log:#}"
    );

    // The call goes on and ends normally; its record reaches the database.
    finished(call, &server);
    let record = server.call_record(&cid);
    assert_eq!(record["seat"], "1002", "{record}");
    eprintln!("spooled {id}; listed {delay} ms after the restore");
}

/// The spooled order's dispatch clock runs from the time it was filed.
fn desk_clock_check(order: &Value, created_at: i64) {
    let c = clock(order, "dispatch", None);
    assert_eq!(c["started_at"], created_at, "{c}");
    assert_eq!(
        c["due_at"],
        WorkDays::shipped().due(created_at, DISPATCH_DAYS),
        "{c}"
    );
}

/// The caller's rating in the IVR survey after the agent hangs up reaches
/// the order filed during the call; an order filed after the call ended
/// takes the rating from the call record.
#[test]
fn the_survey_rating_reaches_the_orders_of_the_call() {
    use common::media::{dial, to_operator};
    let server = Server::start("orders-survey", &[MD5_ONLY, ("orders", "sweep_secs = 0")]);
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let dispatcher = Client::new(&server, &user(&server, "li.lei", "dispatcher", None));
    // The seat answers and hangs up 2 s later: the caller goes to the survey.
    let _seat = SippSeat::start(&server, "1001", Pickup::AnswersThenHangsUp, 1);
    let (call, _media, keys) = dial(&server);
    let mut seq = to_operator(&keys, &call);
    assert!(
        connected(&server, &call.call_id, Duration::from_secs(15)),
        "the caller never reached the seat\n{}",
        server.log()
    );
    let v = agent.post(&format!("/api/v1/calls/{}/order", call.call_id), &intake());
    let during = v.expect(201)["order"]["order_no"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        server.wait_log("agent hung up: survey", Duration::from_secs(10)),
        "the caller was not sent to the survey\n{}",
        server.log()
    );
    // 2: basically satisfied; pressed while the question plays.
    std::thread::sleep(Duration::from_millis(1_500));
    press(&keys, call.server_rtp, '2', 1_900_000, &mut seq);
    let rated = poll(Duration::from_secs(20), Duration::from_millis(200), || {
        let v = dispatcher.get(&format!("/api/v1/orders/{during}"));
        let score = v.json["order"]["intake"]["calls"][0]["survey_score"].clone();
        (score == 2).then_some(v)
    });
    assert!(
        rated.is_some(),
        "the rating never reached order {during}\n{}",
        server.log()
    );
    let audit = dispatcher.get(&format!("/api/v1/orders/{during}/audit"));
    let last = audit.expect(200)["entries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "call_survey", "{last}");
    assert_eq!(last["actor"], "ivr-survey", "{last}");

    // Filed after the call ended (the hotline hangs up after its thanks):
    // from the call record, rating included.
    server.call_record(&call.call_id);
    let v = agent.post(&format!("/api/v1/calls/{}/order", call.call_id), &intake());
    let linked = &v.expect(201)["order"]["intake"]["calls"][0];
    assert_eq!(linked["survey_score"], 2, "{v}");
    assert_eq!(linked["seat"], "1001", "{v}");
}
