//! The cost of one wallboard refresh: the store's two statements
//! (`Store::board_counts`) over a realistic history, and the sans-IO
//! `Snapshot::compute` on their result. One refresh runs per second per
//! node, whatever the number of screens, so this is the board's whole load
//! on the database.
//!
//! `cargo bench --bench wallboard -- [--db sqlite|postgres] [--orders N]
//! [--calls-per-day N] [--days N] [--runs R]`
//!
//! The history: `--orders` work orders spread evenly over `--days` days
//! ending at the benchmark's "now" (20:00 local, so today has a full
//! day's share), most of them closed or archived, 2 % emergencies; every
//! order not yet closed has a running handle clock, 1 in 20 of them past
//! due; `--calls-per-day` queued calls a day, 85 % answered (most within
//! 15 s), 6 % abandoned. Rows are written straight into the tables the
//! board reads (the columns it does not read keep plain values).

use hotline::call::record::CallRecord;
use hotline::report::wallboard::{Inputs, Snapshot, Targets, day_start_ms};
use hotline::store::{Dialect, Store};
use sqlx::{AnyConnection, Connection};
use std::time::{Duration, Instant};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-12-14 20:00 +08:00.
const NOW: i64 = 1_797_177_600_000 + 20 * HOUR;
const STATEMENT_ROWS: usize = 500;

struct Args {
    db: Dialect,
    orders: usize,
    calls_per_day: usize,
    days: i64,
    runs: usize,
    pg: String,
}

const USAGE: &str = "cargo bench --bench wallboard -- [options]
  --db sqlite|postgres   the store to seed (default sqlite)
  --orders N             work orders over the period (default 200000)
  --calls-per-day N      queued calls a day (default 20000)
  --days N               days of history (default 30)
  --runs R               refreshes timed (default 300)
  --pg URL               PostgreSQL server, without a database
                         (default postgres://postgres@127.0.0.1:5432)";

fn parse_args() -> Args {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // without it, as a smoke test of a small history.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let mut args = Args {
        db: Dialect::Sqlite,
        orders: if smoke { 2_000 } else { 200_000 },
        calls_per_day: if smoke { 500 } else { 20_000 },
        days: if smoke { 3 } else { 30 },
        runs: if smoke { 5 } else { 300 },
        pg: "postgres://postgres@127.0.0.1:5432".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| panic!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--db" => {
                args.db = match value().as_str() {
                    "sqlite" => Dialect::Sqlite,
                    "postgres" => Dialect::Postgres,
                    other => panic!("--db {other}: sqlite or postgres\n{USAGE}"),
                }
            }
            "--orders" => args.orders = value().parse().expect("--orders N"),
            "--calls-per-day" => args.calls_per_day = value().parse().expect("--calls-per-day N"),
            "--days" => args.days = value().parse().expect("--days N"),
            "--runs" => args.runs = value().parse().expect("--runs R"),
            "--pg" => args.pg = value(),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            // cargo bench passes --bench.
            "--bench" => {}
            other => panic!("unknown option {other}\n{USAGE}"),
        }
    }
    args
}

/// A cheap, repeatable spread of numbers.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

async fn exec(conn: &mut AnyConnection, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .expect("a seeding statement");
}

/// Seeds orders and their open clocks in multi-row statements.
async fn seed_orders(conn: &mut AnyConnection, args: &Args) -> (usize, usize) {
    let start = NOW - args.days * DAY;
    let span = NOW - start;
    let mut orders = Vec::with_capacity(STATEMENT_ROWS);
    let mut clocks = Vec::with_capacity(STATEMENT_ROWS);
    let (mut open, mut overdue) = (0, 0);
    let mut tx = conn.begin().await.expect("a transaction");
    for i in 0..args.orders {
        let r = mix(i as u64);
        let created = start + (span * i as i64) / args.orders as i64;
        let age_days = (NOW - created) / DAY;
        // Older orders are mostly done; today's mostly in progress.
        let status = match (age_days, r % 100) {
            (0, 0..=9) => "accepted",
            (0, 10..=59) => "dispatched",
            (0, 60..=89) => "handling",
            (0, _) => "closed",
            (1..=6, 0..=19) => "handling",
            (1..=6, 20..=29) => "replied",
            (1..=6, _) => "closed",
            (_, 0..=2) => "handling",
            (_, 3..=29) => "closed",
            _ => "archived",
        };
        let urgency = if r % 50 == 7 { "emergency" } else { "normal" };
        let no = format!("B{i:011}");
        orders.push(format!(
            "('{no}', '139{:08}', '{status}', {created}, {created}, '{urgency}', '0107', 'hhht-urban')",
            r % 100_000_000
        ));
        if !matches!(status, "closed" | "archived") {
            open += 1;
            // One in twenty open orders is past its handling deadline.
            let due = if r % 20 == 3 {
                overdue += 1;
                NOW - 1 - (r >> 8) as i64 % (5 * DAY)
            } else {
                NOW + 1 + (r >> 8) as i64 % (7 * DAY)
            };
            clocks.push(format!(
                "('{no}', 'hhht-urban', 'handle', {created}, {due}, {due}, 0, NULL, NULL)"
            ));
        }
        if orders.len() == STATEMENT_ROWS || i + 1 == args.orders {
            exec(
                &mut tx,
                format!(
                    "INSERT INTO work_orders (order_no, caller, status, created_at, updated_at, \
                     urgency, category, lead_unit) VALUES {}",
                    orders.join(", ")
                ),
            )
            .await;
            orders.clear();
        }
        if clocks.len() == STATEMENT_ROWS || (i + 1 == args.orders && !clocks.is_empty()) {
            exec(
                &mut tx,
                format!(
                    "INSERT INTO order_clocks (order_no, unit, kind, started_at, due_at, \
                     original_due_at, alerts_sent, stopped_at, next_alert_at) VALUES {}",
                    clocks.join(", ")
                ),
            )
            .await;
            clocks.clear();
        }
    }
    tx.commit().await.expect("commit the orders");
    (open, overdue)
}

/// Seeds the queued calls through the store's own batch writer.
async fn seed_calls(store: &Store, args: &Args) -> usize {
    let total = args.calls_per_day * args.days as usize;
    let start = NOW - args.days * DAY;
    let span = NOW - start;
    let mut batch = Vec::with_capacity(5_000);
    for i in 0..total {
        let r = mix(i as u64 ^ 0x5eed);
        let started = start + (span * i as i64) / total as i64;
        let queued = started + 20_000;
        let mut call = CallRecord {
            call_id: format!("bench-{i}"),
            caller: format!("138{:08}", r % 100_000_000),
            callee: "12345".into(),
            remote_addr: "127.0.0.1:5060".into(),
            transport: "udp".into(),
            started_at: started,
            answered_at: Some(started + 100),
            status: 200,
            queue: Some("general".into()),
            queued_at: Some(queued),
            ..CallRecord::default()
        };
        match r % 100 {
            // Abandoned while queued.
            0..=5 => {
                call.ended_at = queued + (r >> 8) as i64 % 120_000;
                call.end_reason = "caller-bye".into();
                call.hangup_by = "caller".into();
            }
            // Sent on (voicemail, time-out) by the hotline.
            6..=14 => {
                call.ended_at = queued + 600_000;
                call.end_reason = "max-wait".into();
                call.hangup_by = "hotline".into();
            }
            // Answered; four in five within 15 s.
            n => {
                let wait = if n % 5 == 0 {
                    16_000 + (r >> 8) as i64 % 60_000
                } else {
                    (r >> 8) as i64 % 15_000
                };
                call.connected_at = Some(queued + wait);
                call.seat = Some(format!("{}", 1001 + r % 10));
                call.ended_at = queued + wait + 240_000;
                call.end_reason = "caller-bye".into();
                call.hangup_by = "caller".into();
            }
        }
        batch.push(call);
        if batch.len() == batch.capacity() || i + 1 == total {
            store.insert_calls(&batch).await.expect("insert calls");
            batch.clear();
        }
    }
    total
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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
    sqlx::any::install_default_drivers();
    let pid = std::process::id();
    let pg_db = format!("hotline_bench_wallboard_{pid}");
    let dir = std::env::temp_dir().join(format!("hotline-bench-wallboard-{pid}"));
    let url = match args.db {
        Dialect::Sqlite => format!("sqlite://{}/board.db", dir.display()),
        Dialect::Postgres => {
            let mut admin = AnyConnection::connect(&format!("{}/test", args.pg))
                .await
                .expect("the PostgreSQL server");
            exec(
                &mut admin,
                format!("DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"),
            )
            .await;
            exec(&mut admin, format!("CREATE DATABASE {pg_db}")).await;
            admin.close().await.ok();
            format!("{}/{pg_db}", args.pg)
        }
    };
    let store = Store::connect(&url).await.expect("the store");
    let mut conn = AnyConnection::connect(&url)
        .await
        .expect("a seeding connection");

    let t = Instant::now();
    let (open, overdue) = seed_orders(&mut conn, &args).await;
    let calls = seed_calls(&store, &args).await;
    if args.db == Dialect::Postgres {
        exec(&mut conn, "ANALYZE".into()).await;
    }
    let db = match args.db {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgres => "PostgreSQL",
    };
    println!(
        "wallboard bench: {db}, {} orders over {} days ({open} open, {overdue} overdue), \
         {calls} queued calls ({} a day); seeded in {:.1} s",
        args.orders,
        args.days,
        args.calls_per_day,
        t.elapsed().as_secs_f64()
    );

    let offset = time::macros::offset!(+08:00);
    let day_start = day_start_ms(NOW, offset);
    // Warm the caches as a running board would have.
    let counts = store
        .board_counts(day_start, NOW, hotline::wallboard::CLOCKS_READ)
        .await
        .expect("the board's counts");
    let mut store_times = Vec::with_capacity(args.runs);
    let mut compute_times = Vec::with_capacity(args.runs);
    let mut snapshot = None;
    for _ in 0..args.runs {
        let t = Instant::now();
        let counts = store
            .board_counts(day_start, NOW, hotline::wallboard::CLOCKS_READ)
            .await
            .expect("the board's counts");
        store_times.push(t.elapsed());
        let inputs = Inputs {
            calls_today: counts.calls_today,
            orders_today: counts.orders_today,
            overdue_orders: counts.overdue_orders,
            overdue_oldest: counts.overdue_oldest,
            open_emergency_orders: counts.open_emergency_orders,
            ..Inputs::default()
        };
        let t = Instant::now();
        let s = Snapshot::compute(&inputs, Targets::default(), NOW, offset);
        let json = serde_json::to_string(&s).expect("JSON");
        compute_times.push(t.elapsed());
        snapshot = Some(json);
    }
    store_times.sort();
    compute_times.sort();
    println!(
        "today: {} queued calls, {} orders; {} overdue orders, {} open emergency orders",
        counts.calls_today.asked,
        counts.orders_today.values().sum::<u64>(),
        counts.overdue_orders,
        counts.open_emergency_orders
    );
    println!(
        "store (2 statements): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms over {} refreshes",
        ms(pct(&store_times, 0.5)),
        ms(pct(&store_times, 0.99)),
        ms(*store_times.last().expect("a run")),
        args.runs
    );
    println!(
        "snapshot + JSON:      p50 {:.1} µs  p99 {:.1} µs ({} bytes)",
        pct(&compute_times, 0.5).as_secs_f64() * 1e6,
        pct(&compute_times, 0.99).as_secs_f64() * 1e6,
        snapshot.map_or(0, |s| s.len())
    );

    store.close().await;
    conn.close().await.ok();
    match args.db {
        Dialect::Sqlite => {
            std::fs::remove_dir_all(&dir).ok();
        }
        Dialect::Postgres => {
            let mut admin = AnyConnection::connect(&format!("{}/test", args.pg))
                .await
                .expect("the PostgreSQL server");
            exec(
                &mut admin,
                format!("DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"),
            )
            .await;
        }
    }
}
