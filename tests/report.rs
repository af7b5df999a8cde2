//! `hotline report monthly` end to end: a month seeded through the store's
//! own APIs (call records, the seat log, orders driven by real lifecycle
//! commands) in a fresh SQLite database, then the real binary's JSON, CSV
//! and HTML compared with golden files under `tests/fixtures/report/`
//! (`UPDATE_GOLDEN=1` rewrites them), the KPIs and hot topics checked
//! against values worked out by hand below, publication and late rows, bad
//! arguments, and the same month on PostgreSQL (`HOTLINE_TEST_POSTGRES`).
//!
//! Hot topics come from the knowledge base as the product fills it: unit
//! handlers write and submit entries, a supervisor approves and publishes
//! them, and an agent closing an order as a direct answer with an entry
//! records a hit in the same transaction (`Store::change_order_with_hit`).
//!
//! The month is October 2026 in UTC+8 on the shipped calendar: Monday the
//! 12th is a working day; sign is due by the end of the next working day,
//! contact by the end of the second, a consultation's reply by the end of
//! the third, a help request's by the end of the seventh.

mod common;

use common::temp_db::TempDb;
use hotline::auth::{Principal, Role};
use hotline::calendar::Calendar;
use hotline::call::record::CallRecord;
use hotline::kb::lifecycle::{Command as KbCommand, Content, Entry, Source};
use hotline::orders::deadline::{Limits, WorkTime};
use hotline::orders::lifecycle::{Citizen, Command, Intake, PhoneNumber, Plan, Policy, WorkOrder};
use hotline::orders::model::{AppealType, Channel, Satisfaction, Urgency};
use hotline::store::Store;
use hotline::store::seat_log::SeatLogRow;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2026-10-01 00:00 +08:00.
const OCT: i64 = 1_790_784_000_000;
/// 2026-11-01 00:00 +08:00: the end of October, exclusive.
const NOV: i64 = OCT + 31 * DAY;
const WATER: &str = "hhht-water";
const GAS: &str = "hhht-gas";
const PERCENTS: &[u8] = &[50, 80];

/// October `day` at `h:m` local time.
fn t(day: i64, h: i64, m: i64) -> i64 {
    OCT + (day - 1) * DAY + h * HOUR + m * MIN
}

fn policy() -> Policy<'static> {
    static TIME: OnceLock<WorkTime> = OnceLock::new();
    static LIMITS: OnceLock<Limits> = OnceLock::new();
    Policy {
        time: TIME.get_or_init(|| {
            WorkTime::new(
                Calendar::load_dir(&common::repo("sip-config/calendar")).unwrap(),
                time::UtcOffset::from_hms(8, 0, 0).unwrap(),
            )
        }),
        limits: LIMITS.get_or_init(Limits::default),
    }
}

fn who(role: Role, unit: Option<&str>) -> Principal {
    Principal {
        name: format!("{}-{}", role.as_str(), unit.unwrap_or("hotline")),
        role,
        unit: unit.map(str::to_owned),
    }
}

// ---------------------------------------------------------------------------
// Seeding through the store
// ---------------------------------------------------------------------------

struct Seed<'a> {
    store: &'a Store,
}

impl Seed<'_> {
    /// Creates and submits a heating order at `at`; returns its number.
    async fn order(
        &self,
        kind: AppealType,
        phone: &str,
        at: i64,
        location: Option<&str>,
    ) -> String {
        let content = format!("暖气不热，请回电{phone}");
        self.order_about(kind, phone, at, location, "0101", &content)
            .await
    }

    /// Creates and submits an order about `category` at `at`.
    async fn order_about(
        &self,
        kind: AppealType,
        phone: &str,
        at: i64,
        location: Option<&str>,
        category: &str,
        content: &str,
    ) -> String {
        let intake = Intake {
            channel: Channel::Phone,
            citizen: Citizen {
                name: Some("张三".into()),
                phone: PhoneNumber::parse(phone).unwrap(),
                confidential: false,
            },
            appeal_type: kind,
            category: category.into(),
            urgency: Urgency::Normal,
            life_at_risk: false,
            division: "150102".into(),
            location: location.map(str::to_owned),
            content: content.into(),
            attachments: vec![],
            calls: vec![],
        };
        let day = local_day(at);
        let agent = who(Role::Agent, None);
        self.store
            .create_order(&day, &agent, at, PERCENTS, None, |no| {
                let mut o = WorkOrder::new(no, intake, &agent, at);
                let events = o.apply(&agent, Command::Submit, at, &policy())?;
                Ok((o, events))
            })
            .await
            .unwrap()
            .order
            .order_no
    }

    async fn run(&self, no: &str, role: Role, unit: Option<&str>, c: Command, at: i64) {
        let p = who(role, unit);
        let name = c.name();
        self.store
            .change_order(no, &p, at, PERCENTS, name, |o| {
                o.apply(&p, c, at, &policy())
            })
            .await
            .unwrap_or_else(|e| panic!("{no} {name}: {e}"));
    }

    async fn unit(&self, no: &str, unit: &str, c: Command, at: i64) {
        self.run(no, Role::UnitHandler, Some(unit), c, at).await;
    }

    async fn hotline(&self, no: &str, c: Command, at: i64) {
        self.run(no, Role::Dispatcher, None, c, at).await;
    }

    /// A knowledge-base entry of `unit` as the product makes one: the
    /// unit's handler writes and submits it, a supervisor approves and
    /// publishes it, all on `at`. Returns its id.
    async fn kb_entry(&self, unit: &str, title: &str, category: &str, at: i64) -> String {
        let content = Content {
            title: title.into(),
            question: format!("{title}？"),
            answer: "按现行规定办理，详见文件。".into(),
            source: Source {
                issuer: "呼和浩特市人民政府".into(),
                number: "呼政发〔2026〕1号".into(),
                effective: "2026-01-01".into(),
                expires: None,
            },
            unit: unit.into(),
            category: category.into(),
            division: "150100".into(),
        };
        let author = who(Role::UnitHandler, Some(unit));
        let id = self
            .store
            .kb_create(at, |id| Entry::create(id, &author, content, at))
            .await
            .unwrap()
            .entry
            .id;
        let supervisor = who(Role::Supervisor, None);
        for (p, c) in [
            (&author, KbCommand::Submit),
            (&supervisor, KbCommand::Approve),
            (&supervisor, KbCommand::Publish),
        ] {
            let name = c.name();
            self.store
                .kb_change(&id, at, |e| e.apply(p, c, at))
                .await
                .unwrap_or_else(|e| panic!("{id} {name}: {e}"));
        }
        id
    }

    /// A consultation about `category` that the agent answers at once with
    /// knowledge-base entry `entry` (a hit at `at`); returns its number.
    async fn answered_with(&self, entry: &str, category: &str, question: &str, at: i64) -> String {
        let no = self
            .order_about(
                AppealType::Consultation,
                "13800138000",
                at,
                None,
                category,
                question,
            )
            .await;
        self.answer_with(&no, entry, at).await;
        no
    }

    /// Closes order `no` as a direct answer with `entry`, as the order desk
    /// does: the hit is recorded with the closing.
    async fn answer_with(&self, no: &str, entry: &str, at: i64) {
        let agent = who(Role::Agent, None);
        let c = Command::DirectAnswer {
            kb_entry: Some(entry.into()),
            answer: "按知识库答复".into(),
        };
        let name = c.name();
        self.store
            .change_order_with_hit(no, entry, &agent, at, PERCENTS, name, |o| {
                o.apply(&agent, c, at, &policy())
            })
            .await
            .unwrap_or_else(|e| panic!("{no} {name} with {entry}: {e}"));
    }
}

/// What [`seed`] made.
struct Seeded {
    /// October's orders by letter: A, C, D, E, F, R1, R2, G1, G2, H, I.
    orders: Vec<String>,
    /// The knowledge-base entries X, Y, Z, W.
    entries: Vec<String>,
}

fn local_day(at: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(at / 1000)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap());
    format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day())
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

fn call(n: i64, queued: Option<i64>, answer_after_s: Option<i64>, talk_s: i64) -> CallRecord {
    let start = queued.unwrap_or(t(12, 8, 0)) - 30_000;
    let connected = queued.zip(answer_after_s).map(|(q, a)| q + a * 1000);
    CallRecord {
        call_id: format!("report-call-{n}"),
        caller: "13800138000".into(),
        callee: "12345".into(),
        remote_addr: "127.0.0.1:5060".into(),
        transport: "udp".into(),
        started_at: start,
        answered_at: Some(start + 1000),
        ended_at: connected
            .map(|c| c + talk_s * 1000)
            .unwrap_or(start + 90_000),
        status: 200,
        end_reason: "bye".into(),
        hangup_by: "caller".into(),
        queue: queued.map(|_| "general".into()),
        queued_at: queued,
        seat: connected.map(|_| "1001".into()),
        connected_at: connected,
        seat_ended_at: connected.map(|c| c + talk_s * 1000),
        ..CallRecord::default()
    }
}

/// Seeds October 2026 (and a hit on either side of it).
async fn seed(store: &Store) -> Seeded {
    let mut callback = call(4, Some(t(13, 10, 0)), None, 0);
    callback.callback_requested = true;
    store
        .insert_calls(&[
            call(1, Some(t(12, 10, 0)), Some(10), 290),
            call(2, Some(t(12, 11, 0)), Some(20), 110),
            call(3, Some(t(13, 9, 0)), None, 0),
            callback,
            call(5, None, None, 0),
        ])
        .await
        .unwrap();
    let seat = |at, activity: &str| SeatLogRow {
        seat: "1001".into(),
        at,
        status: "available".into(),
        reason: None,
        activity: activity.into(),
        call: None,
    };
    store
        .insert_seat_log(&[
            seat(t(12, 9, 0), "idle"),
            seat(t(12, 10, 0), "in_call"),
            seat(t(12, 10, 5), "wrap_up"),
            seat(t(12, 10, 5) + 30_000, "idle"),
            seat(t(12, 11, 0), "wrap_up"),
            seat(t(12, 11, 0) + 50_000, "idle"),
        ])
        .await
        .unwrap();

    let s = Seed { store };
    let phone = "13800138000";
    // Knowledge-base entries, all published on 1 September.
    let sep1 = OCT - 30 * DAY + 10 * HOUR;
    let x = s
        .kb_entry(WATER, "停水通知与恢复供水时间", "010201", sep1)
        .await;
    let y = s
        .kb_entry(GAS, "燃气开户报装办理流程", "010304", sep1)
        .await;
    let z = s.kb_entry(WATER, "水费缴纳渠道", "010205", sep1).await;
    let w = s.kb_entry(GAS, "燃气收费标准", "010303", sep1).await;
    // A: help, water leads, gas assists; all on time; satisfied.
    let a = s.order(AppealType::Help, phone, t(12, 9, 0), None).await;
    s.hotline(&a, dispatch(WATER, &[GAS]), t(12, 9, 30)).await;
    s.unit(&a, WATER, sign(WATER), t(12, 10, 0)).await;
    s.unit(&a, GAS, sign(GAS), t(12, 10, 0)).await;
    s.unit(&a, WATER, contact(WATER), t(12, 11, 0)).await;
    let report = Command::Report {
        unit: GAS.into(),
        text: "已配合".into(),
    };
    s.unit(&a, GAS, report, t(12, 12, 0)).await;
    s.unit(&a, WATER, reply(WATER), t(14, 10, 0)).await;
    s.hotline(&a, accept(), t(14, 11, 0)).await;
    s.hotline(&a, follow_up(true, Satisfaction::Satisfied), t(15, 10, 0))
        .await;

    // C: consultation; water signs in time, asks to return it and is
    // refused, contacts late, never replies.
    let c = s
        .order(AppealType::Consultation, phone, t(12, 9, 1), None)
        .await;
    s.hotline(&c, dispatch(WATER, &[]), t(12, 9, 30)).await;
    s.unit(&c, WATER, sign(WATER), t(13, 10, 0)).await;
    // Water tries to give it back; the hotline rules it is water's: buck-passing.
    let ret = Command::RequestReturn {
        unit: WATER.into(),
        reason: "不属于本单位职责".into(),
        basis: "无".into(),
        suggested_unit: None,
    };
    s.unit(&c, WATER, ret, t(13, 11, 0)).await;
    let reject = Command::DecideReturn {
        unit: WATER.into(),
        approve: false,
        note: Some("属于供水职责".into()),
    };
    s.hotline(&c, reject, t(13, 12, 0)).await;
    s.unit(&c, WATER, contact(WATER), t(15, 10, 0)).await;

    // D: help; gas returns it, water takes it late, replies in time, the
    // citizen is unsatisfied (rework), water replies again: very satisfied.
    let d = s.order(AppealType::Help, phone, t(12, 9, 2), None).await;
    s.hotline(&d, dispatch(GAS, &[]), t(12, 9, 30)).await;
    s.unit(&d, GAS, sign(GAS), t(12, 10, 0)).await;
    let ret = Command::RequestReturn {
        unit: GAS.into(),
        reason: "不属于本单位职责".into(),
        basis: "三定方案".into(),
        suggested_unit: Some(WATER.into()),
    };
    s.unit(&d, GAS, ret, t(12, 11, 0)).await;
    let approve = Command::DecideReturn {
        unit: GAS.into(),
        approve: true,
        note: None,
    };
    s.hotline(&d, approve, t(12, 12, 0)).await;
    s.hotline(&d, dispatch(WATER, &[]), t(12, 13, 0)).await;
    s.unit(&d, WATER, sign(WATER), t(16, 10, 0)).await;
    s.unit(&d, WATER, contact(WATER), t(16, 11, 0)).await;
    s.unit(&d, WATER, reply(WATER), t(19, 10, 0)).await;
    s.hotline(&d, accept(), t(19, 11, 0)).await;
    s.hotline(
        &d,
        follow_up(false, Satisfaction::Unsatisfied),
        t(20, 10, 0),
    )
    .await;
    s.unit(&d, WATER, contact(WATER), t(20, 11, 0)).await;
    s.unit(&d, WATER, reply(WATER), t(21, 10, 0)).await;
    s.hotline(&d, accept(), t(21, 11, 0)).await;
    s.hotline(
        &d,
        follow_up(true, Satisfaction::VerySatisfied),
        t(22, 10, 0),
    )
    .await;

    // E: answered directly at intake with entry X (a hit), basically satisfied.
    let e = s
        .order(AppealType::Consultation, phone, t(13, 9, 0), None)
        .await;
    s.answer_with(&e, &x, t(13, 9, 0)).await;
    s.hotline(
        &e,
        follow_up(true, Satisfaction::BasicallySatisfied),
        t(14, 10, 0),
    )
    .await;

    // F: out of scope (art. 9): not a valid appeal.
    let f = s.order(AppealType::Other, phone, t(13, 9, 1), None).await;
    let out = Command::OutOfScope {
        reason: "诉讼".into(),
        channel: "人民法院".into(),
    };
    s.run(&f, Role::Agent, None, out, t(13, 9, 1)).await;

    // R1, R2: two complaints from one citizen about one place, not yet
    // dispatched: a repeat complaint.
    let place = Some("新城区某小区3号楼");
    let r1 = s
        .order(AppealType::Complaint, "13900001111", t(13, 14, 0), place)
        .await;
    let r2 = s
        .order(AppealType::Complaint, "13900001111", t(14, 14, 0), place)
        .await;

    // More direct answers with the knowledge base. X: E, G1, G2 (3 hits);
    // Z: I on the 16th; Y: H on the 21st (1 hit each, Y first by id).
    // G1's citizen is reached, resolved and satisfied; G2, H and I are not
    // followed up yet.
    let g1 = s
        .answered_with(&x, "010201", "什么时候恢复供水", t(13, 15, 0))
        .await;
    s.hotline(&g1, follow_up(true, Satisfaction::Satisfied), t(14, 11, 0))
        .await;
    let i = s
        .answered_with(&z, "010205", "水费在哪里交", t(16, 9, 0))
        .await;
    let g2 = s
        .answered_with(&x, "010201", "停水通知在哪里看", t(20, 15, 0))
        .await;
    let h = s
        .answered_with(&y, "010304", "燃气开户要带什么", t(21, 9, 0))
        .await;
    // Outside October, so not its hot topics: W on 30 September 23:59 and
    // Y at the first instant of November (the month's end is exclusive).
    s.answered_with(&w, "010303", "燃气多少钱一方", OCT - MIN)
        .await;
    s.answered_with(&y, "010304", "燃气开户怎么办", NOV).await;
    Seeded {
        orders: vec![a, c, d, e, f, r1, r2, g1, g2, h, i],
        entries: vec![x, y, z, w],
    }
}

// ---------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------

struct Env {
    dir: PathBuf,
    config: PathBuf,
    /// `--database-url` for PostgreSQL; SQLite comes from the config.
    database_url: Option<String>,
}

impl Env {
    fn sqlite(name: &str) -> Env {
        let dir = common::scratch(name);
        let config = dir.join("hotline.toml");
        std::fs::write(&config, common::config_text(&dir, &[])).unwrap();
        Env {
            dir,
            config,
            database_url: None,
        }
    }

    fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/hotline.db", self.dir.display()))
    }

    fn hotline(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"));
        cmd.args(["report", "monthly"])
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(common::repo(""))
            .env_remove("DATABASE_URL")
            .env("HOTLINE_LOG", "warn");
        if let Some(url) = &self.database_url {
            cmd.args(["--database-url", url]);
        }
        cmd.output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.hotline(args);
        assert!(
            out.status.success(),
            "hotline report monthly {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.hotline(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = common::repo("tests/fixtures/report").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if expected != actual {
        let fresh = path.with_extension("actual");
        std::fs::write(&fresh, actual).unwrap();
        panic!(
            "{} differs from the golden file; the new output is in {} (UPDATE_GOLDEN=1 to accept)",
            path.display(),
            fresh.display()
        );
    }
}

fn rate(v: &Value) -> (u64, u64, Option<f64>) {
    (
        v["numerator"].as_u64().unwrap(),
        v["denominator"].as_u64().unwrap(),
        v["rate"].as_f64(),
    )
}

fn unit<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == id)
        .unwrap_or_else(|| panic!("no unit {id}"))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn october_by_hand_and_golden_files() {
    let env = Env::sqlite("report-golden");
    let rt = runtime();
    let seeded = rt.block_on(async {
        let store = Store::connect(&env.url()).await.unwrap();
        let seeded = seed(&store).await;
        store.close().await;
        seeded
    });
    let nos = &seeded.orders;
    let json = env.ok(&["--month", "2026-10", "--format", "json"]);
    let r: Value = serde_json::from_str(&json).unwrap();

    // Calls 1-4 asked for an agent (5 never left the IVR).
    assert_eq!(r["calls"]["offered"], 4);
    // Connected: 1 and 2 → 2/4.
    assert_eq!(rate(&r["calls"]["connection_rate"]), (2, 4, Some(0.5)));
    // Within 15 s: call 1 (10 s); call 2 took 20 s → 1/4.
    assert_eq!(
        rate(&r["calls"]["answered_within_15s_rate"]),
        (1, 4, Some(0.25))
    );
    // Abandoned: call 3; call 4 asked for a callback → 1/4.
    assert_eq!(rate(&r["calls"]["abandonment_rate"]), (1, 4, Some(0.25)));
    // (10 + 20) / 2 = 15 s; (290 + 110) / 2 = 200 s; wrap-up (30 + 50) / 2 = 40 s.
    assert_eq!(r["calls"]["average_speed_of_answer"]["seconds"], 15.0);
    assert_eq!(r["calls"]["average_handling_time"]["seconds"], 200.0);
    assert_eq!(r["average_wrap_up_time"]["seconds"], 40.0);

    let h = &r["hotline"];
    // Valid appeals accepted in October: A, C, D, E, R1, R2, G1, G2, H, I
    // = 10 (F is out of scope; W's order was accepted on 30 September and
    // Y's second on 1 November). Answered directly, never dispatched: E,
    // G1, G2, H, I = 5 → 5/10.
    assert_eq!(h["valid_appeals"], 10);
    assert_eq!(rate(&h["direct_answer_rate"]), (5, 10, Some(0.5)));
    // Assignments: A water + gas, C water, D gas then water.
    assert_eq!(h["dispatched"], 5);

    let w = unit(&r, WATER);
    // Signed by the end of the next working day: A (12th) and C (13th), not D (16th).
    assert_eq!(rate(&w["on_time_sign_rate"]), (2, 3, Some(0.6667)));
    // Contacted by the end of the 14th: A only (C 15th, D 16th).
    assert_eq!(rate(&w["response_rate"]), (1, 3, Some(0.3333)));
    // Replies due: A (21st; 14th), C (15th; none), D (21st; 19th), D after
    // rework (29th; 21st) → 3/4 on time, C overdue.
    assert_eq!(rate(&w["on_time_closing_rate"]), (3, 4, Some(0.75)));
    assert_eq!(w["overdue_orders"], 1);
    // Replies accepted: A, D, D; sent back by an unsatisfied citizen: D once.
    assert_eq!(rate(&w["rework_rate"]), (1, 3, Some(0.3333)));
    // Closings followed up: 3 of 3; last reached follow-up per order: A
    // resolved and satisfied, D resolved and very satisfied.
    assert_eq!(rate(&w["follow_up_rate"]), (3, 3, Some(1.0)));
    assert_eq!(rate(&w["resolution_rate"]), (2, 2, Some(1.0)));
    assert_eq!(rate(&w["satisfaction_rate"]), (2, 2, Some(1.0)));
    // Base: 25·1/3 + 15·3/4 + 30·1 + 30·1 = 8.3325 + 11.25 + 60 = 79.5825
    // (rates are rounded to 4 places first); −1 overdue, −1 rework, −2 for
    // the notice below.
    assert_eq!(w["score"]["base"], 79.58);
    assert_eq!(w["score"]["total"], 75.58);
    assert_eq!(w["score"]["tier"], "pass");
    assert_eq!(w["returns_rejected"], 1);
    // The refused return is buck-passing: a notice naming water and C.
    let notices = r["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0]["unit"], WATER);
    assert_eq!(notices[0]["rule"], "buck_passing");
    assert_eq!(notices[0]["month"], "2026-10");
    assert_eq!(notices[0]["orders"], serde_json::json!([nos[1]]));

    let g = unit(&r, GAS);
    assert_eq!(rate(&g["return_rate"]), (1, 2, Some(0.5)));
    // Gas led D only until its return was approved, before any contact: it
    // owed no response and nothing came due, so those rates are null (not
    // 0 or 1) and gas is not scored.
    assert_eq!(rate(&g["response_rate"]), (0, 0, None));
    assert_eq!(rate(&g["on_time_closing_rate"]), (0, 0, None));
    assert_eq!(g["score"]["tier"], Value::Null);
    assert_eq!(g["rank"], Value::Null);

    // Whole hotline: a direct answer's follow-up has no unit but counts
    // here. Closings: A, D twice, E, G1, G2, H, I = 8; followed up: A, D
    // twice, E, G1 = 5 → 5/8. Reached (the last per order): A, D, E, G1,
    // all resolved and satisfied (satisfied, very, basically, satisfied).
    assert_eq!(rate(&h["follow_up_rate"]), (5, 8, Some(0.625)));
    assert_eq!(rate(&h["resolution_rate"]), (4, 4, Some(1.0)));
    assert_eq!(rate(&h["satisfaction_rate"]), (4, 4, Some(1.0)));
    assert_eq!(
        h["satisfaction"],
        serde_json::json!({"very_satisfied": 1, "satisfied": 2, "basically_satisfied": 1, "unsatisfied": 0})
    );
    let div = r["divisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "150100")
        .unwrap();
    assert_eq!(div["name"], "呼和浩特市");
    assert_eq!(div["dispatched"], 5);

    // The overdue list names C; the repeat complaint R1 + R2 twice (one
    // citizen, one place), the number masked.
    let (c, r1, r2) = (&nos[1], &nos[5], &nos[6]);
    assert_eq!(r["overdue"][0]["order_no"], *c);
    let repeats = r["repeat_complaints"].as_array().unwrap();
    assert_eq!(repeats.len(), 2);
    assert_eq!(repeats[0]["key"], "139****1111");
    assert_eq!(repeats[0]["orders"], serde_json::json!([r1, r2]));
    assert_eq!(repeats[1]["by"], "place");
    // Hot topics: October's hits per entry, most first, ties by entry id.
    // X: E (13th), G1 (13th), G2 (20th) = 3. Y: H (21st) = 1; its hit at
    // 00:00 on 1 November belongs to November. Z: I (16th) = 1, after Y
    // (an older id) although its hit came first. W's only hit was on 30
    // September: not listed.
    let (x, y, z) = (&seeded.entries[0], &seeded.entries[1], &seeded.entries[2]);
    assert!(x < y && y < z);
    assert_eq!(
        r["hot_topics"],
        serde_json::json!([
            {"entry_id": x, "title": "停水通知与恢复供水时间", "category": "010201", "hits": 3},
            {"entry_id": y, "title": "燃气开户报装办理流程", "category": "010304", "hits": 1},
            {"entry_id": z, "title": "水费缴纳渠道", "category": "010205", "hits": 1},
        ])
    );
    // D was reworked: a typical case, its summary masked.
    assert_eq!(r["typical_cases"][0]["order_no"], nos[2]);
    assert_eq!(
        r["typical_cases"][0]["summary"],
        "暖气不热，请回电138****8000"
    );

    let csv = env.ok(&["--month", "2026-10", "--format", "csv"]);
    let html = env.ok(&["--month", "2026-10", "--format", "html"]);
    for text in [&json, &csv, &html] {
        assert!(!text.contains("13800138000") && !text.contains("13900001111"));
        assert!(!text.contains("张三"));
    }
    assert!(csv.starts_with("# calls\n"));
    assert!(
        csv.contains(&format!(
            "# hot_topics\nentry_id,title,category,hits\n\
             {x},停水通知与恢复供水时间,010201,3\n\
             {y},燃气开户报装办理流程,010304,1\n\
             {z},水费缴纳渠道,010205,1\n\n"
        )),
        "{csv}"
    );
    assert!(html.contains(&format!(
        "<tr><td class=\"t\">{x}</td><td class=\"t\">停水通知与恢复供水时间</td>\
         <td>010201</td><td>3</td></tr>"
    )));
    assert!(!html.contains("本月无知识库热点"));
    assert!(html.contains("<h1>12345政务服务便民热线 2026-10 月度运行报告</h1>"));
    assert_eq!(html, env.ok(&["--month", "2026-10", "--format", "html"]));
    // Every chart is well-formed SVG.
    let mut charts = 0;
    for piece in html.split("<svg").skip(1) {
        let end = piece.find("</svg>").expect("an unclosed svg") + "</svg>".len();
        let svg = format!("<svg{}", &piece[..end]);
        roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("chart {charts}: {e}\n{svg}"));
        charts += 1;
    }
    assert_eq!(charts, 3);
    // --out writes the same bytes.
    let file = env.dir.join("report.json");
    env.ok(&["--month", "2026-10", "--out", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), json);

    golden("2026-10.json", &json);
    golden("2026-10.csv", &csv);
    golden("2026-10.html", &html);
}

#[test]
fn published_months_do_not_change_and_late_rows_move_on() {
    let env = Env::sqlite("report-publish");
    let rt = runtime();
    let nos = rt.block_on(async {
        let store = Store::connect(&env.url()).await.unwrap();
        let seeded = seed(&store).await;
        store.close().await;
        seeded.orders
    });
    let draft = env.ok(&["--month", "2026-10"]);
    let published = env.ok(&["--month", "2026-10", "--publish"]);
    let p: Value = serde_json::from_str(&published).unwrap();
    assert!(p["published_at"].as_i64().unwrap() > OCT);
    // Apart from the publication time it is the draft.
    let mut d: Value = serde_json::from_str(&draft).unwrap();
    d["published_at"] = p["published_at"].clone();
    assert_eq!(d, p);

    // Late: a call queued on 20 October and C's reply on the 25th, recorded now.
    rt.block_on(async {
        let store = Store::connect(&env.url()).await.unwrap();
        store
            .insert_calls(&[call(9, Some(t(20, 10, 0)), Some(5), 60)])
            .await
            .unwrap();
        Seed { store: &store }
            .unit(&nos[1], WATER, reply(WATER), t(25, 10, 0))
            .await;
        store.close().await;
    });
    assert_eq!(env.ok(&["--month", "2026-10"]), published);
    let html = env.ok(&["--month", "2026-10", "--format", "html"]);
    assert!(html.contains("已发布"));

    let nov: Value =
        serde_json::from_str(&env.ok(&["--month", "2026-11", "--format", "json"])).unwrap();
    assert_eq!(nov["late_events"][0]["from_month"], "2026-10");
    assert_eq!(nov["late_events"][0]["count"], 2);
    assert!(
        nov["late_events"][0]["note"]
            .as_str()
            .unwrap()
            .contains("2026-10")
    );
    // The call counts in November (on its first day); so does C's reply
    // deadline, decided by the late reply: still overdue.
    assert_eq!(nov["calls"]["offered"], 1);
    assert_eq!(nov["daily_calls"][0]["offered"], 1);
    assert_eq!(
        rate(&unit(&nov, WATER)["on_time_closing_rate"]),
        (0, 1, Some(0.0))
    );
    // The direct answer with entry Y at 00:00 on 1 November is November's:
    // its one valid appeal and its one hot topic.
    assert_eq!(
        rate(&nov["hotline"]["direct_answer_rate"]),
        (1, 1, Some(1.0))
    );
    assert_eq!(nov["hot_topics"].as_array().unwrap().len(), 1);
    assert_eq!(nov["hot_topics"][0]["title"], "燃气开户报装办理流程");
    assert_eq!(nov["hot_topics"][0]["hits"], 1);

    let again = env.fails(&["--month", "2026-10", "--publish"]);
    assert!(again.contains("2026-10 was already published"), "{again}");
    let early = env.fails(&["--month", "2099-01", "--publish"]);
    assert!(early.contains("2099-01 has not ended yet"), "{early}");
}

#[test]
fn bad_arguments_say_what_is_wrong() {
    let env = Env::sqlite("report-args");
    for month in ["2026-13", "2026/10", "26-10", "oct"] {
        let e = env.fails(&["--month", month]);
        assert!(
            e.contains("--month") && e.contains("YYYY-MM"),
            "{month}: {e}"
        );
    }
    let e = env.fails(&["--month", "2026-10", "--format", "pdf"]);
    assert!(
        e.contains("--format") && e.contains("html, json, csv"),
        "{e}"
    );
    let e = env.fails(&["--format", "json"]);
    assert!(e.contains("--month"), "{e}");
    let e = env.fails(&["--month", "2026-10", "--out", "/nonexistent-dir/r.json"]);
    assert!(e.contains("--out /nonexistent-dir/r.json"), "{e}");
}

#[test]
fn postgres_gives_the_same_report() {
    let sqlite = Env::sqlite("report-pg-sqlite");
    let pg = TempDb::new("report_same");
    let mut postgres = Env::sqlite("report-pg");
    postgres.database_url = Some(pg.url());
    for env in [&sqlite, &postgres] {
        let url = env.url();
        pg.rt.block_on(async {
            let store = Store::connect(&url).await.unwrap();
            seed(&store).await;
            store.close().await;
        });
    }
    let a = sqlite.ok(&["--month", "2026-10"]);
    let b = postgres.ok(&["--month", "2026-10"]);
    assert_eq!(a, b);
    assert!(a.contains("\"response_rate\""));
}

/// A report cannot be made without its database: the error names it.
#[test]
fn a_database_that_is_down_is_a_clear_error() {
    let pg = TempDb::new("report_down");
    let mut env = Env::sqlite("report-down");
    env.database_url = Some(pg.url());
    pg.rt.block_on(async {
        Store::connect(&pg.url()).await.unwrap().close().await;
    });
    pg.outage();
    let e = env.fails(&["--month", "2026-10"]);
    assert!(e.contains("database"), "{e}");
    pg.restore();
}
