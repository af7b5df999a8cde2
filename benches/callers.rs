//! The nuisance sweep at scale: seeds a day of N call records (default
//! 200,000, about what a provincial 12345 centre answers on a busy day),
//! then times the sweep's parts: reading the window's calls, the pure
//! detection over them, whole-window sweeps (the first writes the flags,
//! the next find the same evidence used and write nothing), and the
//! incremental sweep `serve` runs after its first round (only the numbers
//! with new call records: five minutes' worth, then none).
//!
//! `cargo bench --bench callers -- [--calls N] [--db-url URL]`
//! (SQLite in a temporary folder unless `--db-url` names a database).
//!
//! Callers: most numbers call once or twice; one in 500 calls 12 times
//! (over the shipped threshold of 10), spread over the 24 hours before
//! "now"; a tenth of the calls end within 3 s in the IVR.

use hotline::call::record::CallRecord;
use hotline::callers::config::CallersConfig;
use hotline::callers::detect::detect;
use hotline::callers::task::{Sweeper, sweep};
use hotline::store::Store;
use std::time::{Duration, Instant};

struct Args {
    calls: usize,
    db_url: Option<String>,
}

fn parse_args() -> Args {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // without it, as a smoke test of a small history.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let mut args = Args {
        calls: if smoke { 2_000 } else { 200_000 },
        db_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--calls" => args.calls = it.next().and_then(|n| n.parse().ok()).expect("--calls N"),
            "--db-url" => args.db_url = it.next(),
            // cargo bench passes --bench.
            "--bench" => {}
            "--help" | "-h" => {
                println!("cargo bench --bench callers -- [--calls N] [--db-url URL]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }
    args
}

/// A day of calls ending at `now`, from a deterministic population.
fn day_of_calls(n: usize, now: i64) -> Vec<CallRecord> {
    let day = 86_400_000i64;
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    let mut number = 0u64;
    while out.len() < n {
        number += 1;
        // One number in 500 calls 12 times; the rest once or twice.
        let calls = if number.is_multiple_of(500) {
            12
        } else if number.is_multiple_of(3) {
            2
        } else {
            1
        };
        for _ in 0..calls {
            if out.len() == n {
                break;
            }
            i += 1;
            // Spread over the day by a fixed stride (no clustering).
            let start = now - day + ((i as i64 * 7_919_993) % day);
            let short = i.is_multiple_of(10);
            out.push(CallRecord {
                call_id: format!("bench-{i}"),
                caller: format!("139{number:08}"),
                callee: "12345".into(),
                remote_addr: "127.0.0.1:5060".into(),
                transport: "udp".into(),
                started_at: start,
                answered_at: Some(start + 200),
                ended_at: start + if short { 2_500 } else { 180_000 },
                status: 200,
                end_reason: "caller-bye".into(),
                hangup_by: "caller".into(),
                flow: Some("main".into()),
                final_action: Some("queue:general:5".into()),
                connected_at: (!short).then_some(start + 30_000),
                seat_ended_at: (!short).then_some(start + 170_000),
                rtp: hotline::call::record::RtpSummary {
                    packets_in: if short { 100 } else { 9_000 },
                    ..Default::default()
                },
                ..CallRecord::default()
            });
        }
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn run(args: Args) {
    let dir = std::env::temp_dir().join(format!("hotline-bench-callers-{}", std::process::id()));
    let url = args
        .db_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/callers.db", dir.display()));
    let store = Store::connect(&url).await.expect("the store");
    let now = hotline::call::record::now_ms();
    let calls = day_of_calls(args.calls, now);
    let t = Instant::now();
    for chunk in calls.chunks(5_000) {
        store.insert_calls(chunk).await.expect("seed calls");
    }
    println!(
        "callers bench: {} calls in the last 24 h seeded in {:.1?} ({})",
        calls.len(),
        t.elapsed(),
        if args.db_url.is_some() {
            "given database"
        } else {
            "SQLite"
        }
    );
    let config = CallersConfig::default();
    let thresholds = config.thresholds();
    let since = now - thresholds.window_ms;

    let mut reads = Vec::new();
    let mut facts = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        facts = store.recent_call_facts(since).await.expect("read calls");
        reads.push(t.elapsed());
    }
    println!(
        "  read the window's calls ({}): median {:.1?}",
        facts.len(),
        median(reads)
    );
    let used = store.flag_evidence_since(since).await.expect("evidence");
    let mut detects = Vec::new();
    let mut found = 0;
    for _ in 0..5 {
        let t = Instant::now();
        found = detect(&thresholds, now, &facts, &used).len();
        detects.push(t.elapsed());
    }
    println!(
        "  detect over them: median {:.1?} ({found} flags)",
        median(detects)
    );
    let mut sweeper = Sweeper::default();
    let t = Instant::now();
    let first = sweeper
        .run(&store, &thresholds, now)
        .await
        .expect("first sweep");
    println!(
        "  first sweep (whole window, writes the flags): {:.1?}, {first} flags",
        t.elapsed()
    );
    let mut again = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let n = sweep(&store, &thresholds, now).await.expect("sweep");
        assert_eq!(n, 0, "the same evidence flagged twice");
        again.push(t.elapsed());
    }
    println!(
        "  whole-window sweeps after it (nothing new): median {:.1?}",
        median(again)
    );
    // Five minutes of new calls (the shipped sweep period) at the same rate.
    let fresh: Vec<CallRecord> = day_of_calls(args.calls + args.calls / 288, now)
        .split_off(args.calls)
        .into_iter()
        .map(|mut c| {
            c.call_id = format!("{}-new", c.call_id);
            c
        })
        .collect();
    store.insert_calls(&fresh).await.expect("new calls");
    let t = Instant::now();
    let n = sweeper.run(&store, &thresholds, now).await.expect("sweep");
    println!(
        "  incremental sweep after {} new calls: {:.1?} ({n} flags)",
        fresh.len(),
        t.elapsed()
    );
    let mut idle = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        sweeper.run(&store, &thresholds, now).await.expect("sweep");
        idle.push(t.elapsed());
    }
    println!(
        "  incremental sweep with no new calls: median {:.1?}",
        median(idle)
    );
    store.close().await;
    if args.db_url.is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
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
