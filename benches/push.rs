//! Delivery rate of the outbox pusher: seeds an SQLite store with seat
//! changes (one outbox event each), then lets the real pusher deliver them
//! all to a Redis stream and to a local HTTP endpoint, per batch size, and
//! prints events per second.
//!
//! `cargo bench --bench push` (Redis from `HOTLINE_TEST_REDIS`, default
//! `redis://127.0.0.1:6379`; `PUSH_EVENTS` sets how many, default 20000).

use axum::routing::post;
use hotline::acd::router::{Activity, Status};
use hotline::push::{MaskMode, PushConfig, spawn, stats_for};
use hotline::store::Store;
use hotline::store::seat_log::SeatLogRow;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn main() {
    let events: usize = std::env::var("PUSH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        // `cargo test --all-targets` runs this without --bench: a smoke test.
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            20_000
        } else {
            500
        });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run(events));
}

async fn run(events: usize) {
    let dir = std::env::temp_dir().join(format!("hotline-bench-push-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let store = Store::connect(&format!("sqlite://{}/push.db", dir.display()))
        .await
        .expect("store");
    let rows: Vec<SeatLogRow> = (0..events)
        .map(|i| {
            SeatLogRow::new(
                &format!("{}", 1001 + i % 10),
                i as i64,
                &Status::Available,
                &Activity::Idle,
            )
        })
        .collect();
    for chunk in rows.chunks(1_000) {
        store.insert_seat_log(chunk).await.expect("seed");
    }
    println!("push: {events} outbox events (SQLite)");

    let redis_url =
        std::env::var("HOTLINE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = http.local_addr().expect("addr");
    tokio::spawn(async move {
        let app = axum::Router::new().route("/in", post(|| async { "ok" }));
        axum::serve(http, app).await.ok();
    });

    for batch in [100, 500] {
        let stream = format!("hotline-bench:{}:{batch}", std::process::id());
        let redis = PushConfig {
            redis_url: redis_url.clone(),
            redis_stream: stream.clone(),
            batch_size: batch,
            poll_ms: 5,
            mask: MaskMode::Partial,
            ..PushConfig::default()
        };
        let rate = measure(&store, redis, events).await;
        println!("push: redis  batch {batch:>4}: {rate:>8.0} events/s");
        if let Ok(client) = redis::Client::open(redis_url.as_str())
            && let Ok(mut con) = client.get_multiplexed_async_connection().await
        {
            let _: Result<(), _> = redis::cmd("DEL").arg(&stream).query_async(&mut con).await;
        }
        let http = PushConfig {
            http_url: format!("http://{addr}/in?batch={batch}"),
            batch_size: batch,
            poll_ms: 5,
            mask: MaskMode::Partial,
            ..PushConfig::default()
        };
        let rate = measure(&store, http, events).await;
        println!("push: http   batch {batch:>4}: {rate:>8.0} events/s");
    }
    store.close().await;
    std::fs::remove_dir_all(dir).ok();
}

/// Runs a pusher for `config`'s one sink from cursor 0 until it has
/// delivered `events`; events per second.
async fn measure(store: &Store, config: PushConfig, events: usize) -> f64 {
    let stats = stats_for(&config);
    let stop = CancellationToken::new();
    let started = Instant::now();
    let tasks = spawn(store.clone(), config, stats.clone(), stop.clone()).expect("pusher");
    let sink = stats.sinks[0].clone();
    while sink.delivered.load(Ordering::Relaxed) < events as u64 {
        if started.elapsed() > Duration::from_secs(300) {
            panic!("{} not done: {sink:?}", sink.name);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = started.elapsed();
    stop.cancel();
    for t in tasks {
        t.await.ok();
    }
    events as f64 / took.as_secs_f64()
}
