//! The monthly report at scale: seeds a realistic month (default 100,000
//! orders and 300,000 calls, October 2026) in a fresh SQLite file, then
//! times `report monthly` end to end (read from the store, count, build)
//! and its parts: the KPI core alone on rows in memory, and rendering JSON,
//! CSV and HTML.
//!
//! `cargo bench --bench report -- [--orders N] [--calls N] [--runs R]`
//!
//! Orders are driven through `WorkOrder::apply` on the shipped calendar,
//! one of ten shapes each: handled on time with a follow-up (half of them;
//! one in forty of those reworked), with a co-handler, overdue, returned
//! and dispatched again, answered directly, or accepted only. Their units
//! are the shipped departments and enterprises, their callers one of 50,000
//! numbers (so complaints repeat).

use hotline::auth::{Principal, Role};
use hotline::call::record::CallRecord;
use hotline::config::Config;
use hotline::orders::deadline::WorkTime;
use hotline::orders::lifecycle::{Citizen, Command, Intake, PhoneNumber, Plan, Policy, WorkOrder};
use hotline::orders::model::{AppealType, Channel, Satisfaction, Urgency};
use hotline::orders::units::{UnitKind, Units};
use hotline::report::kpi::{self, CallRow, Input, Lateness, SeatRow};
use hotline::report::month::Month;
use hotline::report::{generate, render_csv, render_html};
use hotline::store::Store;
use hotline::store::seat_log::SeatLogRow;
use std::time::{Duration, Instant};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2026-10-01 00:00 +08:00.
const OCT: i64 = 1_790_784_000_000;
const BATCH: usize = 10_000;

struct Args {
    orders: usize,
    calls: usize,
    runs: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        orders: 100_000,
        calls: 300_000,
        runs: 5,
    };
    // `cargo test --all-targets` runs this without --bench: keep it small.
    if !std::env::args().any(|x| x == "--bench") {
        a = Args {
            orders: 1_000,
            calls: 3_000,
            runs: 1,
        };
    }
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = || {
            it.next()
                .and_then(|n| n.replace('_', "").parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--orders" => a.orders = number(),
            "--calls" => a.calls = number(),
            "--runs" => a.runs = number(),
            _ => {}
        }
    }
    a
}

fn who(role: Role, unit: Option<&str>) -> Principal {
    Principal {
        name: role.as_str().into(),
        role,
        unit: unit.map(str::to_owned),
    }
}

struct Maker<'a> {
    policy: Policy<'a>,
    units: Vec<String>,
}

impl Maker<'_> {
    fn apply(&self, o: &mut WorkOrder, role: Role, unit: Option<&str>, c: Command, at: i64) {
        let name = c.name();
        o.apply(&who(role, unit), c, at, &self.policy)
            .unwrap_or_else(|e| panic!("{} {name}: {e:?}", o.order_no));
    }

    fn unit(&self, o: &mut WorkOrder, u: &str, c: Command, at: i64) {
        self.apply(o, Role::UnitHandler, Some(u), c, at);
    }

    fn hotline(&self, o: &mut WorkOrder, c: Command, at: i64) {
        self.apply(o, Role::Dispatcher, None, c, at);
    }

    fn order(&self, i: usize, seq: &mut [u32; 32]) -> WorkOrder {
        let day = 1 + (i % 31) as i64;
        let start = OCT + (day - 1) * DAY + 8 * HOUR + (i % 600) as i64 * MIN;
        seq[day as usize] += 1;
        let no = format!("202610{day:02}{:06}", seq[day as usize]);
        let shape = i % 10;
        let kind = match shape {
            6 | 8 => AppealType::Consultation,
            9 => AppealType::Complaint,
            _ if i.is_multiple_of(97) => AppealType::Praise,
            _ => AppealType::Help,
        };
        let intake = Intake {
            channel: Channel::Phone,
            citizen: Citizen {
                name: Some("王五".into()),
                phone: PhoneNumber::parse(&format!("138{:08}", i % 50_000)).unwrap(),
                confidential: false,
            },
            appeal_type: kind,
            category: "0101".into(),
            urgency: Urgency::Normal,
            life_at_risk: false,
            division: "150102".into(),
            location: Some(format!("小区{}号楼", i % 3_000)),
            content: "诉求内容".into(),
            attachments: vec![],
            calls: vec![],
        };
        let agent = who(Role::Agent, None);
        let mut o = WorkOrder::new(no, intake, &agent, start);
        self.apply(&mut o, Role::Agent, None, Command::Submit, start);
        let lead = &self.units[i % self.units.len()];
        let other = &self.units[(i / 7 + 1) % self.units.len()];
        let other = if other == lead {
            &self.units[(i / 7 + 2) % self.units.len()]
        } else {
            other
        };
        let plan = |lead: &str, co: Option<&str>| Command::Dispatch {
            plan: Plan {
                lead: lead.into(),
                co_handlers: co.into_iter().map(str::to_owned).collect(),
            },
            default: None,
            override_reason: None,
        };
        let sign = |u: &str| Command::Sign { unit: u.into() };
        let contact = |u: &str| Command::Contact {
            unit: u.into(),
            note: None,
        };
        let reply = |u: &str| Command::Reply {
            unit: u.into(),
            text: "已办理".into(),
        };
        let accept = Command::Review {
            accept: true,
            note: None,
        };
        let follow = |ok: bool| Command::FollowUp {
            reached: true,
            resolved: Some(ok),
            satisfaction: Some(if ok {
                Satisfaction::Satisfied
            } else {
                Satisfaction::Unsatisfied
            }),
            note: None,
        };
        let t = |h: i64| start + h * HOUR;
        match shape {
            0..=5 => {
                let co = (shape == 5).then_some(other.as_str());
                self.hotline(&mut o, plan(lead, co), t(1));
                self.unit(&mut o, lead, sign(lead), t(2));
                self.unit(&mut o, lead, contact(lead), t(3));
                if let Some(co) = co {
                    self.unit(&mut o, co, sign(co), t(2));
                    let report = Command::Report {
                        unit: co.into(),
                        text: "已配合".into(),
                    };
                    self.unit(&mut o, co, report, t(4));
                }
                self.unit(&mut o, lead, reply(lead), t(48));
                self.hotline(&mut o, accept.clone(), t(49));
                let rework = i.is_multiple_of(40);
                self.hotline(&mut o, follow(!rework), t(72));
                if rework {
                    self.unit(&mut o, lead, contact(lead), t(73));
                    self.unit(&mut o, lead, reply(lead), t(96));
                    self.hotline(&mut o, accept, t(97));
                    self.hotline(&mut o, follow(true), t(120));
                }
            }
            6 => {
                self.hotline(&mut o, plan(lead, None), t(1));
                self.unit(&mut o, lead, sign(lead), t(2));
                self.unit(&mut o, lead, contact(lead), t(3));
            }
            7 => {
                self.hotline(&mut o, plan(lead, None), t(1));
                self.unit(&mut o, lead, sign(lead), t(2));
                let ret = Command::RequestReturn {
                    unit: lead.clone(),
                    reason: "非本单位职责".into(),
                    basis: "职责清单".into(),
                    suggested_unit: Some(other.clone()),
                };
                self.unit(&mut o, lead, ret, t(3));
                let decide = Command::DecideReturn {
                    unit: lead.clone(),
                    approve: i % 20 != 7,
                    note: Some("依职责".into()),
                };
                self.hotline(&mut o, decide, t(4));
                if i % 20 != 7 {
                    self.hotline(&mut o, plan(other, None), t(5));
                    self.unit(&mut o, other, sign(other), t(30));
                }
            }
            8 => {
                let answer = Command::DirectAnswer {
                    kb_entry: None,
                    answer: "按政策答复".into(),
                };
                self.apply(&mut o, Role::Agent, None, answer, t(0));
                self.hotline(&mut o, follow(true), t(24));
            }
            _ => {}
        }
        o
    }
}

fn calls(n: usize) -> Vec<CallRecord> {
    (0..n)
        .map(|i| {
            let queued = OCT + (i as i64 * 31 * DAY) / n as i64;
            let connected =
                (i % 20 != 0).then(|| queued + if i % 10 == 1 { 40_000 } else { 8_000 });
            CallRecord {
                call_id: format!("bench-{i}"),
                caller: format!("138{:08}", i % 50_000),
                callee: "12345".into(),
                remote_addr: "127.0.0.1:5060".into(),
                transport: "udp".into(),
                started_at: queued - 20_000,
                answered_at: Some(queued - 19_000),
                ended_at: connected.unwrap_or(queued + 60_000) + 180_000,
                status: 200,
                end_reason: "bye".into(),
                hangup_by: "caller".into(),
                queue: Some(if i % 3 == 0 { "complaints" } else { "general" }.into()),
                queued_at: Some(queued),
                seat: connected.map(|_| format!("10{:02}", i % 50)),
                connected_at: connected,
                seat_ended_at: connected.map(|c| c + 180_000),
                ..CallRecord::default()
            }
        })
        .collect()
}

fn seat_log(n: usize) -> Vec<SeatLogRow> {
    (0..n)
        .map(|i| {
            let seat = format!("10{:02}", i % 50);
            let at = OCT + ((i / 50) as i64 * 31 * DAY * 50) / n as i64;
            let activity = if (i / 50) % 2 == 0 { "wrap_up" } else { "idle" };
            SeatLogRow {
                seat,
                at,
                status: "available".into(),
                reason: None,
                activity: activity.into(),
                call: None,
            }
        })
        .collect()
}

fn time<T>(label: &str, runs: usize, mut f: impl FnMut() -> T) -> T {
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    let mut out = None;
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        out = Some(f());
        let d = t0.elapsed();
        best = best.min(d);
        total += d;
    }
    println!(
        "{label:<44} best {:>9.1} ms   mean {:>9.1} ms   ({} runs)",
        best.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3 / runs.max(1) as f64,
        runs.max(1)
    );
    out.unwrap()
}

fn main() {
    let args = parse_args();
    let config = Config::default();
    let units = Units::load(&config.orders.units).expect("sip-config/units.toml");
    let calendar = hotline::calendar::Calendar::load_dir(&config.ivr.calendar_dir)
        .expect("sip-config/calendar");
    let work = WorkTime::new(calendar, config.orders.offset());
    let maker = Maker {
        policy: Policy {
            time: &work,
            limits: &config.orders.limits,
        },
        units: units
            .units()
            .filter(|u| matches!(u.kind, UnitKind::Department | UnitKind::Enterprise))
            .map(|u| u.id.clone())
            .collect(),
    };
    let dir = std::env::temp_dir().join(format!("hotline-bench-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/report.db", dir.display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let month = Month::parse("2026-10").unwrap();
    let now = OCT + 45 * DAY;

    println!(
        "seeding {} orders, {} calls, {} seat-log rows into {url}",
        args.orders,
        args.calls,
        args.calls / 3
    );
    let t0 = Instant::now();
    let mut seq = [0u32; 32];
    let orders: Vec<WorkOrder> = (0..args.orders).map(|i| maker.order(i, &mut seq)).collect();
    let store = rt.block_on(async {
        let store = Store::connect(&url).await.unwrap();
        for chunk in orders.chunks(BATCH) {
            store
                .import_orders(chunk, &[50, 80], OCT + 31 * DAY - HOUR)
                .await
                .unwrap();
        }
        let calls = calls(args.calls);
        for chunk in calls.chunks(BATCH) {
            store.insert_calls(chunk).await.unwrap();
        }
        let seats = seat_log(args.calls / 3);
        for chunk in seats.chunks(BATCH) {
            store.insert_seat_log(chunk).await.unwrap();
        }
        store
    });
    println!("seeded in {:.1} s", t0.elapsed().as_secs_f64());

    let report = time(
        "report monthly (store → KPIs → model)",
        args.runs,
        || {
            rt.block_on(generate::monthly(&store, &config, &units, month, now))
                .unwrap()
        },
    );
    let model = report.model();
    println!(
        "  {} units, {} divisions, {} overdue, {} notices; calls offered {}",
        model.units.len(),
        model.divisions.len(),
        model.overdue.len(),
        model.notices.len(),
        model.calls.offered
    );

    // The core alone, on the same rows in memory.
    let rows: Vec<CallRow> = calls(args.calls)
        .into_iter()
        .enumerate()
        .map(|(i, c)| CallRow {
            id: i as i64 + 1,
            queue: c.queue,
            queued_at: c.queued_at,
            connected_at: c.connected_at,
            seat_ended_at: c.seat_ended_at,
            ended_at: c.ended_at,
            callback_requested: false,
        })
        .collect();
    let mut seats: Vec<SeatRow> = seat_log(args.calls / 3)
        .into_iter()
        .enumerate()
        .map(|(i, r)| SeatRow {
            id: i as i64 + 1,
            seat: r.seat,
            at: r.at,
            activity: r.activity,
        })
        .collect();
    seats.sort_by(|a, b| (&a.seat, a.at, a.id).cmp(&(&b.seat, b.at, b.id)));
    let lateness = Lateness::default();
    time("kpi::compute (rows in memory)", args.runs, || {
        kpi::compute(&Input {
            month,
            offset: config.orders.offset(),
            now,
            calls: &rows,
            seat_log: &seats,
            orders: &orders,
            units: &units,
            lateness: &lateness,
        })
    });
    let json = time("render json", args.runs, || generate::to_json(model));
    let csv = time("render csv", args.runs, || render_csv::render(model));
    let html = time("render html (with 3 SVG charts)", args.runs, || {
        render_html::render(model)
    });
    println!(
        "sizes: json {} KiB, csv {} KiB, html {} KiB",
        json.len() / 1024,
        csv.len() / 1024,
        html.len() / 1024
    );
    rt.block_on(store.close());
    let _ = std::fs::remove_dir_all(&dir);
}
