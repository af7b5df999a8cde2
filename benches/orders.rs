//! The work-order store at scale: seeds N orders (default 1,000,000) with
//! `Store::import_orders`, then times `list_orders` for the API's filters
//! and the deadline sweeper's `sweep_once` over the open clocks, with
//! nothing due and with about 1 % of them due.
//!
//! `cargo bench --bench orders -- [--db sqlite|postgres] [--orders N]`
//! (`--orders 20000` for a quick check; `--help` lists the rest).
//!
//! The orders are realistic rather than random: intake on the shipped
//! catalogue's level-3 categories in divisions that have a dispatch rule,
//! to the rule's units, driven through `WorkOrder::apply` into every stage
//! of the lifecycle (a third dispatched and not yet signed, so with N =
//! 1,000,000 more than a million unit clocks run). One template per
//! (day, stage, category and division) is driven on the day's calendar at
//! 08:00; each order clones one, takes its own number and caller, and
//! moves every time by its place in the day (08:00 to 20:00), over the 90
//! days before Monday 2026-12-14. The sweeper is assumed to have run all
//! along: every alert due before the benchmark's "now" (that Monday 08:00)
//! is recorded on the order, as `sweep_once` would have.

use hotline::auth::{Principal, Role};
use hotline::calendar::Calendar;
use hotline::config::Config;
use hotline::orders::desk::{self, Rules};
use hotline::orders::events::OrderEvents;
use hotline::orders::lifecycle::{
    Alert, Assignment, Citizen, Command, ExtensionRequest, FollowUp, Intake, PhoneNumber, Plan,
    Reply, ReturnRequest, Review, WorkOrder,
};
use hotline::orders::model::{AppealType, Channel, Clock, OrderStatus, Satisfaction};
use hotline::orders::scheduler::{self, AlertKind, next_alert_at};
use hotline::orders::sweeper::sweep_once;
use hotline::store::orders::OrderFilter;
use hotline::store::{Dialect, Store};
use sqlx::{AnyConnection, Connection};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Monday 2026-12-14 00:00 +08:00: orders were made in the 90 days before.
const END: i64 = 1_797_177_600_000;
const DAYS: i64 = 90;
/// The benchmark's "now": that Monday 08:00, after every seeded step.
const NOW: i64 = END + 8 * HOUR;
/// Orders per `import_orders` call (one transaction).
const BATCH: usize = 10_000;
/// Longest a filter is repeated before its figures are taken.
const FILTER_BUDGET: Duration = Duration::from_secs(30);

struct Args {
    db: Dialect,
    orders: usize,
    runs: usize,
    pg: String,
    dir: PathBuf,
    analyze: bool,
    keep: bool,
}

const USAGE: &str = "cargo bench --bench orders -- [options]
  --db sqlite|postgres   the store to seed (default sqlite)
  --orders N             orders to seed (default 1000000)
  --runs R               repetitions of each listing (default 200)
  --pg URL               PostgreSQL server, without a database
                         (default postgres://postgres@127.0.0.1:5432);
                         the bench makes and drops hotline_bench_orders_<pid>
  --dir DIR              where the SQLite folder goes (default the temp dir);
                         the bench makes and removes hotline-bench-orders-<pid> there
  --analyze              ANALYZE SQLite after seeding (PostgreSQL always is,
                         as autovacuum would)
  --keep                 keep the database afterwards (for EXPLAIN)";

fn parse_args() -> Args {
    let mut args = Args {
        db: Dialect::Sqlite,
        orders: 1_000_000,
        runs: 200,
        pg: "postgres://postgres@127.0.0.1:5432".into(),
        dir: std::env::temp_dir(),
        analyze: false,
        keep: false,
    };
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // without it, as a smoke test: a few orders, a few runs.
    if !std::env::args().any(|a| a == "--bench") {
        args.orders = 2_000;
        args.runs = 3;
    }
    let mut it = std::env::args().skip(1);
    let number = |v: Option<String>| -> usize {
        v.and_then(|v| v.replace(['_', ','], "").parse().ok())
            .unwrap_or_else(|| panic!("a number expected\n{USAGE}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--db" => {
                args.db = match it.next().as_deref() {
                    Some("sqlite") => Dialect::Sqlite,
                    Some("postgres") => Dialect::Postgres,
                    other => panic!("--db {other:?}: sqlite or postgres\n{USAGE}"),
                }
            }
            "--orders" => args.orders = number(it.next()).max(1),
            "--runs" => args.runs = number(it.next()).max(1),
            "--pg" => args.pg = it.next().expect(USAGE).trim_end_matches('/').into(),
            "--dir" => args.dir = it.next().expect(USAGE).into(),
            "--analyze" => args.analyze = true,
            "--keep" => args.keep = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    args
}

// ------------------------------------------------------------ the orders

/// The lifecycle stage an order is seeded in, with its share in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Stage {
    Draft,
    Accepted,
    DirectAnswer,
    OutOfScope,
    Dispatched,
    Handling,
    Replied,
    Closed,
    Archived,
    Reworked,
}

const MIX: [(Stage, u64); 10] = [
    (Stage::Draft, 1),
    (Stage::Accepted, 2),
    (Stage::DirectAnswer, 15),
    (Stage::OutOfScope, 2),
    (Stage::Dispatched, 33),
    (Stage::Handling, 10),
    (Stage::Replied, 3),
    (Stage::Closed, 6),
    (Stage::Archived, 26),
    (Stage::Reworked, 2),
];

impl Stage {
    fn of(bucket: u64) -> Stage {
        let mut left = bucket % 100;
        for (stage, share) in MIX {
            if left < share {
                return stage;
            }
            left -= share;
        }
        Stage::Archived
    }

    /// Stages the hotline settles itself, before any dispatch: an emergency
    /// order would have been dispatched at once, so these take ordinary
    /// categories.
    fn before_dispatch(self) -> bool {
        matches!(
            self,
            Stage::Accepted | Stage::DirectAnswer | Stage::OutOfScope
        )
    }
}

/// A category in a division, with the dispatch rule's units.
struct Combo {
    category: String,
    division: String,
    appeal: AppealType,
    channel: Channel,
    plan: Plan,
    emergency: bool,
}

fn mix64(mut x: u64) -> u64 {
    // splitmix64: a cheap, well-spread hash of the order's index.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Two divisions for each level-3 category, among the districts and
/// counties whose dispatch rules cover it; appeal types and channels in
/// roughly a hotline's proportions.
fn combos(rules: &Rules) -> Vec<Combo> {
    let parent_of: HashMap<&str, Option<&str>> = rules
        .units
        .divisions()
        .map(|d| (d.code.as_str(), d.parent.as_deref()))
        .collect();
    let counties: Vec<&str> = rules
        .units
        .divisions()
        .filter(|d| {
            d.parent
                .as_deref()
                .and_then(|p| parent_of.get(p).copied().flatten())
                .is_some()
        })
        .map(|d| d.code.as_str())
        .collect();
    let appeals = [
        (AppealType::Consultation, 25),
        (AppealType::Help, 20),
        (AppealType::Complaint, 30),
        (AppealType::Suggestion, 10),
        (AppealType::Report, 5),
        (AppealType::Praise, 3),
        (AppealType::Other, 7),
    ];
    let channels = [
        (Channel::Phone, 70),
        (Channel::App, 10),
        (Channel::Web, 10),
        (Channel::MiniProgram, 5),
        (Channel::Sms, 5),
    ];
    fn pick<T: Copy>(table: &[(T, u64)], h: u64) -> T {
        let mut left = h % table.iter().map(|(_, w)| w).sum::<u64>();
        for &(v, w) in table {
            if left < w {
                return v;
            }
            left -= w;
        }
        table[0].0
    }
    let mut out = Vec::new();
    for (ci, leaf) in rules.catalogue.leaves().enumerate() {
        let covered: Vec<(&str, Plan)> = counties
            .iter()
            .filter_map(|d| {
                let p = rules.units.dispatch_default(&leaf.code, d)?;
                Some((
                    *d,
                    Plan {
                        lead: p.lead,
                        co_handlers: p.co_handlers,
                    },
                ))
            })
            .collect();
        if covered.is_empty() {
            continue;
        }
        for k in 0..2.min(covered.len()) {
            let (division, plan) = &covered[(ci + k * covered.len() / 2) % covered.len()];
            let h = mix64((ci * 2 + k) as u64);
            out.push(Combo {
                category: leaf.code.clone(),
                division: (*division).to_owned(),
                appeal: pick(&appeals, h),
                channel: pick(&channels, h >> 20),
                plan: plan.clone(),
                emergency: rules.catalogue.is_emergency(&leaf.code),
            });
        }
    }
    assert!(!out.is_empty(), "no category has a dispatch rule");
    out
}

fn person(name: &str, role: Role, unit: Option<&str>) -> Principal {
    Principal {
        name: name.into(),
        role,
        unit: unit.map(str::to_owned),
    }
}

/// Drives one order of `stage` from intake at `t0`, then records the
/// alerts due by `alerts_until`.
fn template(rules: &Rules, combo: &Combo, stage: Stage, t0: i64, alerts_until: i64) -> WorkOrder {
    let policy = rules.policy();
    let agent = person("agent-1001", Role::Agent, None);
    let dispatcher = person("disp-li", Role::Dispatcher, None);
    let handler = |unit: &str| person(&format!("h-{unit}"), Role::UnitHandler, Some(unit));
    let mut intake = Intake {
        channel: combo.channel,
        citizen: Citizen {
            name: Some("张三".into()),
            phone: PhoneNumber::parse("13800000000").expect("a phone number"),
            confidential: false,
        },
        appeal_type: combo.appeal,
        category: combo.category.clone(),
        urgency: Default::default(),
        life_at_risk: false,
        division: combo.division.clone(),
        location: Some("某小区 3 号楼 2 单元".into()),
        content: format!(
            "市民来电反映{}方面的问题，请尽快核实处理并答复。",
            rules
                .catalogue
                .get(&combo.category)
                .map(|c| c.name.as_str())
                .unwrap_or_default()
        ),
        attachments: vec![],
        calls: vec![],
    };
    desk::check_intake(rules, &mut intake).expect("the combo is in the catalogue");
    let mut o = WorkOrder::new("template".into(), intake, &agent, t0);
    let step = |o: &mut WorkOrder, who: &Principal, command: Command, minutes: i64| {
        let name = command.name();
        o.apply(who, command, t0 + minutes * MINUTE, &policy)
            .unwrap_or_else(|e| panic!("{stage:?} {}: {name} refused: {e}", combo.category));
    };
    let plan = combo.plan.clone();
    let units: Vec<String> = std::iter::once(plan.lead.clone())
        .chain(plan.co_handlers.iter().cloned())
        .collect();
    let follow_up = |s: Satisfaction| Command::FollowUp {
        reached: true,
        resolved: Some(s.is_satisfied()),
        satisfaction: Some(s),
        note: None,
    };
    let reply = |lead: &str| Command::Reply {
        unit: lead.to_owned(),
        text: "已联系市民并现场核实，问题已处理完毕。".into(),
    };
    let review = Command::Review {
        accept: true,
        note: None,
    };
    'drive: {
        if stage == Stage::Draft {
            break 'drive;
        }
        step(&mut o, &agent, Command::Submit, 2);
        if o.is_emergency() {
            // As the desk does: dispatched at once to the catalogue's units.
            let system = Principal::system("emergency-dispatch");
            let dispatch = Command::Dispatch {
                plan: plan.clone(),
                default: Some(plan.clone()),
                override_reason: None,
            };
            step(&mut o, &system, dispatch, 2);
        }
        match stage {
            Stage::Accepted => break 'drive,
            Stage::DirectAnswer => {
                let answer = Command::DirectAnswer {
                    kb_entry: Some("kb-0001".into()),
                    answer: "已按知识库答复市民。".into(),
                };
                step(&mut o, &agent, answer, 6);
                step(&mut o, &agent, follow_up(Satisfaction::Satisfied), 180);
                break 'drive;
            }
            Stage::OutOfScope => {
                let out = Command::OutOfScope {
                    reason: "涉诉事项".into(),
                    channel: "人民法院".into(),
                };
                step(&mut o, &agent, out, 6);
                break 'drive;
            }
            _ => {}
        }
        if !o.is_emergency() {
            let dispatch = Command::Dispatch {
                plan: plan.clone(),
                default: Some(plan.clone()),
                override_reason: None,
            };
            step(&mut o, &dispatcher, dispatch, 20);
        }
        if stage == Stage::Dispatched {
            break 'drive;
        }
        for u in &units {
            step(&mut o, &handler(u), Command::Sign { unit: u.clone() }, 60);
        }
        let contact = |u: &str| Command::Contact {
            unit: u.to_owned(),
            note: None,
        };
        step(&mut o, &handler(&plan.lead), contact(&plan.lead), 120);
        if stage == Stage::Handling {
            break 'drive;
        }
        for u in &plan.co_handlers {
            let report = Command::Report {
                unit: u.clone(),
                text: "协办部分已完成。".into(),
            };
            step(&mut o, &handler(u), report, 180);
        }
        step(&mut o, &handler(&plan.lead), reply(&plan.lead), 240);
        if stage == Stage::Replied {
            break 'drive;
        }
        step(&mut o, &dispatcher, review.clone(), 300);
        if stage == Stage::Closed {
            break 'drive;
        }
        if stage == Stage::Reworked {
            step(&mut o, &agent, follow_up(Satisfaction::Unsatisfied), 360);
            step(&mut o, &handler(&plan.lead), contact(&plan.lead), 420);
            step(&mut o, &handler(&plan.lead), reply(&plan.lead), 480);
            step(&mut o, &dispatcher, review, 540);
            step(&mut o, &agent, follow_up(Satisfaction::Satisfied), 600);
        } else {
            step(&mut o, &agent, follow_up(Satisfaction::Satisfied), 360);
        }
    }
    record_alerts(&mut o, rules, alerts_until);
    o
}

/// Records every alert due by `until`, each at its own time, as the
/// sweeper (`sweep_once`) would have.
fn record_alerts(o: &mut WorkOrder, rules: &Rules, until: i64) {
    let policy = rules.policy();
    let system = Principal::system("scheduler");
    loop {
        let next = o
            .clocks
            .iter()
            .filter(|c| c.is_open())
            .filter_map(|c| Some((next_alert_at(c, &rules.percents)?, c)))
            .filter(|(at, _)| *at <= until)
            .min_by_key(|(at, _)| *at);
        let Some((at, clock)) = next else {
            return;
        };
        let Some(a) = scheduler::sweep(at, clock, &rules.percents).pop() else {
            return;
        };
        let (overdue, percent) = match a.kind {
            AlertKind::Warning { percent } => (false, percent),
            AlertKind::Overdue => (true, 100),
        };
        let command = Command::ClockAlert {
            kind: clock.kind,
            unit: clock.unit.clone(),
            overdue,
            percent,
            alerts_sent: a.alerts_sent_after,
        };
        o.apply(&system, command, at, &policy)
            .expect("an alert on an open clock");
    }
}

fn later(t: &mut Option<i64>, d: i64) {
    if let Some(t) = t {
        *t += d;
    }
}

/// Moves every time in the order by `d` ms. The patterns list every field,
/// so a new time in the order fails to compile here instead of staying put.
fn shift(o: &mut WorkOrder, d: i64) {
    let WorkOrder {
        order_no: _,
        intake: _,
        status: _,
        created_at,
        created_by: _,
        accepted_at,
        closed_at,
        archived_at,
        closing: _,
        assignments,
        clocks,
        returns,
        extensions,
        replies,
        follow_ups,
        alerts,
        rework_count: _,
        leads: _,
        returned_by: _,
        escalated: _,
        merged_from: _,
        dispatch_override: _,
        repeat_calls: _,
    } = o;
    *created_at += d;
    later(accepted_at, d);
    later(closed_at, d);
    later(archived_at, d);
    for a in assignments {
        let Assignment {
            unit: _,
            role: _,
            state: _,
            dispatched_at,
            signed_at,
            contacted_at,
            finished_at,
        } = a;
        *dispatched_at += d;
        later(signed_at, d);
        later(contacted_at, d);
        later(finished_at, d);
    }
    for c in clocks {
        let Clock {
            kind: _,
            unit: _,
            started_at,
            due_at,
            original_due_at,
            stopped_at,
            alerts_sent: _,
        } = c;
        *started_at += d;
        *due_at += d;
        *original_due_at += d;
        later(stopped_at, d);
    }
    for r in returns {
        let ReturnRequest {
            unit: _,
            reason: _,
            basis: _,
            suggested_unit: _,
            requested_at,
            state: _,
            decided_at,
            decided_by: _,
            note: _,
        } = r;
        *requested_at += d;
        later(decided_at, d);
    }
    for x in extensions {
        let ExtensionRequest {
            unit: _,
            working_days: _,
            reason: _,
            basis: _,
            requested_at,
            state: _,
            decided_at,
            decided_by: _,
            note: _,
            due_before,
            due_after,
        } = x;
        *requested_at += d;
        later(decided_at, d);
        later(due_before, d);
        later(due_after, d);
    }
    for r in replies {
        let Reply {
            unit: _,
            by: _,
            at,
            text: _,
            report: _,
            review,
        } = r;
        *at += d;
        if let Some(Review {
            accepted: _,
            by: _,
            at,
            note: _,
        }) = review
        {
            *at += d;
        }
    }
    for f in follow_ups {
        let FollowUp {
            at,
            by: _,
            reached: _,
            resolved: _,
            satisfaction: _,
            note: _,
        } = f;
        *at += d;
    }
    for a in alerts {
        let Alert {
            kind: _,
            unit: _,
            clock: _,
            at,
            by: _,
            text: _,
        } = a;
        *at += d;
    }
}

/// What the seeded orders hold, for choosing filters and the sweep's time.
#[derive(Default)]
struct Seeded {
    by_status: HashMap<&'static str, u64>,
    /// Assignments per unit.
    by_unit: HashMap<String, u64>,
    open_clocks: u64,
    /// Every open clock's next alert (all after NOW).
    pending: Vec<i64>,
    /// A caller with several orders.
    phone: String,
    /// Time spent making orders (the other thread).
    making: Duration,
}

const NAMES: [&str; 8] = [
    "张三", "李四", "王芳", "刘洋", "陈静", "杨帆", "赵磊", "周敏",
];

/// Makes the orders in batches of [`BATCH`], oldest first, on this thread.
fn make_orders(rules: &Rules, n: usize, send: tokio::sync::mpsc::Sender<Vec<WorkOrder>>) -> Seeded {
    let combos = combos(rules);
    let ordinary: Vec<usize> = (0..combos.len())
        .filter(|&i| !combos[i].emergency)
        .collect();
    let callers = (n as u64 / 5).max(1_000);
    let mut seeded = Seeded::default();
    let start = END - DAYS * DAY;
    let mut batch = Vec::with_capacity(BATCH);
    let t = Instant::now();
    // Time spent waiting for the importer does not count as making.
    let mut waiting = Duration::ZERO;
    for day in 0..DAYS {
        let first = (day as usize) * n / DAYS as usize;
        let end = (day as usize + 1) * n / DAYS as usize;
        let morning = start + day * DAY + 8 * HOUR;
        let prefix = rules.day(morning);
        // Shifted by up to 12 h, a template's alerts to NOW - 12 h stay
        // before NOW; the rest are recorded per order.
        let mut templates: HashMap<(Stage, usize), WorkOrder> = HashMap::new();
        for i in first..end {
            let h = mix64(i as u64);
            let stage = Stage::of(h);
            let combo = if stage.before_dispatch() {
                ordinary[(h >> 8) as usize % ordinary.len()]
            } else {
                (h >> 8) as usize % combos.len()
            };
            let offset = ((i - first) as i64) * 12 * HOUR / ((end - first) as i64);
            let mut o = templates
                .entry((stage, combo))
                .or_insert_with(|| template(rules, &combos[combo], stage, morning, NOW - 12 * HOUR))
                .clone();
            o.order_no = format!("{prefix}{:06}", i - first + 1);
            let caller = mix64(h) % callers;
            o.intake.citizen.phone =
                PhoneNumber::parse(&format!("1{}", 3_000_000_000 + caller * 7)).expect("digits");
            o.intake.citizen.name = Some(NAMES[(caller % 8) as usize].to_owned());
            shift(&mut o, offset);
            record_alerts(&mut o, rules, NOW);
            if i == n / 2 {
                seeded.phone = o.intake.citizen.phone.as_str().to_owned();
            }
            *seeded.by_status.entry(o.status.as_str()).or_default() += 1;
            for a in &o.assignments {
                *seeded.by_unit.entry(a.unit.clone()).or_default() += 1;
            }
            for c in o.clocks.iter().filter(|c| c.is_open()) {
                seeded.open_clocks += 1;
                if let Some(at) = next_alert_at(c, &rules.percents) {
                    assert!(at > NOW, "an alert due before now was left");
                    seeded.pending.push(at);
                }
            }
            batch.push(o);
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                let w = Instant::now();
                let sent = send.blocking_send(full);
                waiting += w.elapsed();
                if sent.is_err() {
                    return seeded;
                }
            }
        }
    }
    seeded.making = t.elapsed() - waiting;
    if !batch.is_empty() {
        let _ = send.blocking_send(batch);
    }
    seeded
}

// ------------------------------------------------------------ measuring

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct Row {
    name: String,
    runs: usize,
    rows: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn print_rows(rows: &[Row]) {
    let w = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(10);
    println!(
        "  {:w$}  {:>5}  {:>5}  {:>9}  {:>9}  {:>9}",
        "listing (limit 50)", "runs", "rows", "p50 ms", "p99 ms", "max ms"
    );
    for r in rows {
        let pad = w - r.name.chars().count();
        println!(
            "  {}{}  {:>5}  {:>5}  {:>9.2}  {:>9.2}  {:>9.2}",
            r.name,
            " ".repeat(pad),
            r.runs,
            r.rows,
            ms(r.p50),
            ms(r.p99),
            ms(r.max)
        );
    }
}

async fn time_listing(store: &Store, name: String, filter: &OrderFilter, runs: usize) -> Row {
    let mut rows = 0;
    for _ in 0..3 {
        rows = store
            .list_orders(filter, NOW)
            .await
            .expect("listing")
            .orders
            .len();
    }
    let mut took = Vec::with_capacity(runs);
    let budget = Instant::now();
    for _ in 0..runs {
        let t = Instant::now();
        let page = store.list_orders(filter, NOW).await.expect("listing");
        took.push(t.elapsed());
        std::hint::black_box(page);
        if budget.elapsed() > FILTER_BUDGET {
            break;
        }
    }
    took.sort();
    Row {
        name,
        runs: took.len(),
        rows,
        p50: pct(&took, 50.0),
        p99: pct(&took, 99.0),
        max: *took.last().expect("one run"),
    }
}

async fn raw(url: &str) -> AnyConnection {
    AnyConnection::connect(url)
        .await
        .expect("a second connection")
}

async fn count(conn: &mut AnyConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(conn)
        .await
        .expect("a count")
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let config = Config::default();
    let calendar = Calendar::load_dir(&config.ivr.calendar_dir).expect("sip-config/calendar");
    let rules = std::sync::Arc::new(Rules::load(&config, calendar).expect("catalogue and units"));

    // A fresh database.
    let pg_db = format!("hotline_bench_orders_{}", std::process::id());
    let dir = args
        .dir
        .join(format!("hotline-bench-orders-{}", std::process::id()));
    let url = match args.db {
        Dialect::Sqlite => format!("sqlite://{}/orders.db", dir.display()),
        Dialect::Postgres => {
            sqlx::any::install_default_drivers();
            let mut admin = raw(&format!("{}/test", args.pg)).await;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .expect("drop the old bench database");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {pg_db}")))
                .execute(&mut admin)
                .await
                .expect("create the bench database");
            admin.close().await.ok();
            format!("{}/{pg_db}", args.pg)
        }
    };
    let store = Store::connect(&url).await.expect("the store");
    let db = match args.db {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgres => "PostgreSQL",
    };
    println!(
        "orders bench: {db}, {} orders over {DAYS} days, now = 2026-12-14 08:00 +08:00",
        thousands(args.orders as u64)
    );

    // Seed: one thread makes orders, this one imports them.
    let t = Instant::now();
    let (send, mut recv) = tokio::sync::mpsc::channel(2);
    let maker = {
        let rules = rules.clone();
        let n = args.orders;
        std::thread::spawn(move || make_orders(&rules, n, send))
    };
    let mut imported = 0usize;
    let mut importing = Duration::ZERO;
    let mut shown = 0;
    while let Some(batch) = recv.recv().await {
        let ti = Instant::now();
        store
            .import_orders(&batch, &rules.percents, NOW)
            .await
            .expect("import");
        importing += ti.elapsed();
        imported += batch.len();
        if imported * 10 / args.orders > shown {
            shown = imported * 10 / args.orders;
            eprintln!(
                "  seeded {:>9} in {:6.1} s",
                thousands(imported as u64),
                t.elapsed().as_secs_f64()
            );
        }
    }
    let mut seeded = maker.join().expect("the order maker");
    let seeding = t.elapsed();
    assert_eq!(imported, args.orders);

    let mut conn = raw(&url).await;
    let t = Instant::now();
    let analyzed = match args.db {
        Dialect::Postgres => {
            sqlx::query("ANALYZE")
                .execute(&mut conn)
                .await
                .expect("ANALYZE");
            format!(", ANALYZE {:.1} s", t.elapsed().as_secs_f64())
        }
        Dialect::Sqlite if args.analyze => {
            sqlx::query("ANALYZE")
                .execute(&mut conn)
                .await
                .expect("ANALYZE");
            format!(", ANALYZE {:.1} s", t.elapsed().as_secs_f64())
        }
        Dialect::Sqlite => String::new(),
    };
    let open = count(
        &mut conn,
        "SELECT COUNT(*) FROM order_clocks WHERE stopped_at IS NULL",
    )
    .await;
    let pending = count(
        &mut conn,
        "SELECT COUNT(*) FROM order_clocks WHERE next_alert_at IS NOT NULL",
    )
    .await;
    let clocks = count(&mut conn, "SELECT COUNT(*) FROM order_clocks").await;
    assert_eq!(open as u64, seeded.open_clocks);
    assert_eq!(pending as usize, seeded.pending.len());
    let size = match args.db {
        Dialect::Sqlite => ["orders.db", "orders.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len() as i64)
            .sum(),
        Dialect::Postgres => count(&mut conn, "SELECT pg_database_size(current_database())").await,
    };
    println!(
        "seeded in {:.1} s ({:.0} orders/s; import {:.1} s, making orders {:.1} s on another thread{analyzed}); {:.2} GB on disk",
        seeding.as_secs_f64(),
        args.orders as f64 / seeding.as_secs_f64(),
        importing.as_secs_f64(),
        seeded.making.as_secs_f64(),
        size as f64 / 1e9
    );
    let mut statuses: Vec<_> = seeded.by_status.iter().collect();
    statuses.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
    println!(
        "  statuses: {}",
        statuses
            .iter()
            .map(|(s, n)| format!("{s} {}", thousands(**n)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  clocks: {} rows, {} open, {} with an alert still to come (the sweep's index)",
        thousands(clocks as u64),
        thousands(open as u64),
        thousands(pending as u64)
    );

    // Listings.
    let mut units: Vec<(&String, &u64)> = seeded.by_unit.iter().collect();
    units.sort_by_key(|(u, n)| (std::cmp::Reverse(**n), (*u).clone()));
    let (big, big_n) = units
        .first()
        .map(|(u, n)| ((*u).clone(), **n))
        .expect("units");
    // A small unit: the one at the 10th percentile of the units' loads.
    let (small, small_n) = units
        .get(units.len() * 9 / 10)
        .map(|(u, n)| ((*u).clone(), **n))
        .expect("units");
    // A unit with no orders at all (its handlers' inbox is empty).
    let idle = rules
        .units
        .units()
        .map(|u| u.id.clone())
        .find(|u| !seeded.by_unit.contains_key(u));
    let page = OrderFilter {
        limit: 50,
        ..OrderFilter::default()
    };
    let first = store.list_orders(&page, NOW).await.expect("listing");
    let mid_day = END - DAYS / 2 * DAY;
    let filters: Vec<(String, OrderFilter)> = vec![
        ("newest, no filter".into(), page.clone()),
        (
            "2nd page via cursor".into(),
            OrderFilter {
                after: first.next.clone(),
                ..page.clone()
            },
        ),
        (
            "status=dispatched".into(),
            OrderFilter {
                status: Some(OrderStatus::Dispatched),
                ..page.clone()
            },
        ),
        (
            "status=replied".into(),
            OrderFilter {
                status: Some(OrderStatus::Replied),
                ..page.clone()
            },
        ),
        (
            format!("unit={big} ({} orders)", thousands(big_n)),
            OrderFilter {
                unit: Some(big.clone()),
                ..page.clone()
            },
        ),
        (
            format!("unit={big} & status=dispatched"),
            OrderFilter {
                unit: Some(big.clone()),
                status: Some(OrderStatus::Dispatched),
                ..page.clone()
            },
        ),
        (
            format!("unit={small} ({} orders)", thousands(small_n)),
            OrderFilter {
                unit: Some(small.clone()),
                ..page.clone()
            },
        ),
    ];
    let mut filters = filters;
    if let Some(idle) = idle {
        filters.push((
            format!("unit={idle} (no orders)"),
            OrderFilter {
                unit: Some(idle),
                ..page.clone()
            },
        ));
    }
    filters.extend([
        (
            "overdue=true".into(),
            OrderFilter {
                overdue: Some(true),
                ..page.clone()
            },
        ),
        (
            "overdue=false".into(),
            OrderFilter {
                overdue: Some(false),
                ..page.clone()
            },
        ),
        (
            "category=0101 (level 2)".into(),
            OrderFilter {
                category: Some("0101".into()),
                ..page.clone()
            },
        ),
        (
            "category=01 (level 1)".into(),
            OrderFilter {
                category: Some("01".into()),
                ..page.clone()
            },
        ),
        (
            "phone=<one caller>".into(),
            OrderFilter {
                phone: Some(seeded.phone.clone()),
                ..page.clone()
            },
        ),
        (
            "created within one day".into(),
            OrderFilter {
                created_from: Some(mid_day),
                created_to: Some(mid_day + DAY),
                ..page.clone()
            },
        ),
        (
            "created one day & status=archived".into(),
            OrderFilter {
                created_from: Some(mid_day),
                created_to: Some(mid_day + DAY),
                status: Some(OrderStatus::Archived),
                ..page.clone()
            },
        ),
    ]);
    let mut rows = Vec::new();
    for (name, filter) in &filters {
        let row = time_listing(&store, name.clone(), filter, args.runs).await;
        eprintln!("  {name}: p50 {:.2} ms", ms(row.p50));
        rows.push(row);
    }
    print_rows(&rows);

    // The sweep: nothing due, then about 1 % of the open clocks.
    let events = OrderEvents::default();
    let mut took = Vec::new();
    for _ in 0..args.runs.min(50) {
        let t = Instant::now();
        let n = sweep_once(&store, &rules, &events, NOW)
            .await
            .expect("sweep");
        took.push(t.elapsed());
        assert_eq!(n, 0, "nothing is due at now");
    }
    took.sort();
    println!(
        "  sweep, nothing due over {} open clocks: p50 {:.3} ms, p99 {:.3} ms ({} runs)",
        thousands(open as u64),
        ms(pct(&took, 50.0)),
        ms(pct(&took, 99.0)),
        took.len()
    );
    seeded.pending.sort_unstable();
    let want = ((open as usize).div_ceil(100)).clamp(1, seeded.pending.len().max(1));
    if let Some(&until) = seeded.pending.get(want - 1) {
        let due = seeded.pending.partition_point(|&at| at <= until);
        let t = Instant::now();
        let alerts = sweep_once(&store, &rules, &events, until)
            .await
            .expect("sweep");
        let took = t.elapsed();
        let t = Instant::now();
        let again = sweep_once(&store, &rules, &events, until)
            .await
            .expect("sweep");
        let after = t.elapsed();
        println!(
            "  sweep, {} clocks due ({:.2} % of open, by now + {:.1} h): {} alerts recorded in {:.2} s = {:.0} alerts/s; the next sweep found {again} in {:.3} ms",
            thousands(due as u64),
            100.0 * due as f64 / open as f64,
            (until - NOW) as f64 / HOUR as f64,
            thousands(alerts as u64),
            took.as_secs_f64(),
            alerts as f64 / took.as_secs_f64(),
            ms(after)
        );
    }

    conn.close().await.ok();
    store.close().await;
    if args.keep {
        println!("kept {url}");
    } else {
        match args.db {
            Dialect::Sqlite => {
                std::fs::remove_dir_all(&dir).ok();
            }
            Dialect::Postgres => {
                let mut admin = raw(&format!("{}/test", args.pg)).await;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .expect("drop the bench database");
            }
        }
    }
}
