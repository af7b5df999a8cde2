//! The real-time data push (art. 14) on the real binary: outbox rows
//! written in the same transaction as the change, delivered in order to a
//! real Redis stream and to an HTTP endpoint, with personal data masked;
//! the standalone `hotline push` killed with SIGKILL mid-stream and
//! restarted (the consumer still sees every event, no gaps), one pusher
//! per sink across processes (a lease), a PostgreSQL row committing after
//! a later one, a sink that fails and recovers, a database that goes away,
//! and bad `[push]` config.
//!
//! PostgreSQL comes from `HOTLINE_TEST_POSTGRES` through `common::temp_db`,
//! Redis from `HOTLINE_TEST_REDIS` (stream keys of the test's own, deleted
//! after).

mod common;

use common::orders::*;
use common::push::*;
use common::temp_db::TempDb;
use common::*;
use serde_json::{Value, json};
use sqlx::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// 路灯不亮 in 新城区 goes to urban management.
const STREET_LIGHT: &str = "010701";
const DIVISION: &str = "150102";
const URBAN: &str = "hhht-urban";
const PHONE: &str = "13800138000";

fn appeal(phone: &str) -> Value {
    json!({
        "channel": "phone",
        "citizen": {"name": "张三", "phone": phone},
        "appeal_type": "help",
        "category": STREET_LIGHT,
        "division": DIVISION,
        "location": "新城区海拉尔东街 12 号",
        "content": "路灯不亮已经一周了",
    })
}

fn create(agent: &Client) -> String {
    let v = agent.post("/api/v1/orders", &appeal(PHONE));
    v.expect(201)["order"]["order_no"]
        .as_str()
        .unwrap_or_else(|| panic!("no order number: {v}"))
        .to_owned()
}

fn dispatch(dispatcher: &Client, no: &str) {
    let v = dispatcher.post(
        &format!("/api/v1/orders/{no}/dispatch"),
        &json!({"lead": URBAN}),
    );
    v.expect(200);
}

/// The `[push]` section for a Redis sink on `stream`, plus `extra` lines.
fn redis_push(stream: &RedisStream, extra: &str) -> String {
    format!(
        "redis_url = \"{}\"\nredis_stream = \"{}\"\npoll_ms = 20\nbackoff_min_ms = 50\nbackoff_max_ms = 500\n{extra}",
        redis_url(),
        stream.key
    )
}

/// Runs a query on the test's own connection to the server's database.
fn query_outbox(url: &str, sql: &str) -> Vec<(i64, String, String)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let mut con = sqlx::AnyConnection::connect(url).await.unwrap();
        let rows: Vec<(i64, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&mut con)
            .await
            .unwrap();
        rows
    })
}

/// (seq, event_id, stream) of every outbox row, in seq order.
fn outbox(url: &str) -> Vec<(i64, String, String)> {
    query_outbox(url, "SELECT seq, event_id, stream FROM outbox ORDER BY seq")
}

fn sqlite_url(server: &Server) -> String {
    format!("sqlite://{}/hotline.db", server.dir.display())
}

/// The order events (and the tests' own rows) among what was pushed: seat
/// changes are pushed too, whenever the ACD logs them.
fn orders_only(seen: &[Seen]) -> Vec<Seen> {
    seen.iter()
        .filter(|s| s.kind.starts_with("order.") || s.kind.starts_with("test."))
        .cloned()
        .collect()
}

/// Waits for `n` order events on the stream.
fn wait_orders(stream: &RedisStream, n: usize) -> Vec<Seen> {
    poll(Duration::from_secs(20), Duration::from_millis(50), || {
        let seen = orders_only(&stream.read());
        (seen.len() >= n).then_some(seen)
    })
    .unwrap_or_else(|| panic!("fewer than {n} order events: {:?}", stream.read()))
}

/// Every stream key's events arrive in increasing seq (so version) order.
fn assert_in_order_per_stream(seen: &[Seen]) {
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for s in seen {
        let prev = last.insert(&s.stream, s.seq).unwrap_or(0);
        assert!(
            prev < s.seq,
            "{} went back from seq {prev} to {}",
            s.stream,
            s.seq
        );
    }
}

#[test]
fn order_events_reach_redis_in_order_masked_and_only_for_committed_changes() {
    let stream = RedisStream::new("sqlite");
    let server = Server::start("push-sqlite", &[("push", &redis_push(&stream, ""))]);
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let dispatcher = Client::new(&server, &user(&server, "li.lei", "dispatcher", None));

    let no = create(&agent);
    dispatch(&dispatcher, &no);
    let seen = orders_only(&stream.wait_len(2, Duration::from_secs(15)));
    let mine: Vec<&Seen> = seen.iter().filter(|s| s.stream == no).collect();
    assert_eq!(mine.len(), 2, "{seen:?}");
    assert_eq!(mine[0].event_id, format!("order:{no}:v1"));
    assert_eq!(mine[0].kind, "order.created");
    assert_eq!(mine[1].event_id, format!("order:{no}:v2"));
    assert_eq!(mine[1].kind, "order.changed");
    assert!(mine[0].seq < mine[1].seq);
    assert_eq!(mine[1].payload["order"]["status"], "dispatched");
    assert!(
        mine[1].payload["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "the lifecycle events travel with the snapshot: {}",
        mine[1].payload
    );
    // Partial masking (the default): as units see it.
    let citizen = &mine[0].payload["order"]["intake"]["citizen"];
    assert_eq!(citizen["phone"], "138****8000", "{citizen}");
    assert_eq!(citizen["name"], "张*", "{citizen}");
    assert!(!mine[0].payload.to_string().contains(PHONE));

    // A change whose outbox row cannot be written does not happen at all.
    let other = create(&agent);
    let url = sqlite_url(&server);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let trigger = |sql: &str| {
        rt.block_on(async {
            let mut con = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut con)
                .await
                .unwrap();
        })
    };
    trigger(
        "CREATE TRIGGER outbox_refuses BEFORE INSERT ON outbox \
         BEGIN SELECT RAISE(ABORT, 'outbox refused'); END",
    );
    let refused = agent.post("/api/v1/orders", &appeal(PHONE));
    assert!(refused.status >= 500, "{refused}");
    let v = dispatcher.post(
        &format!("/api/v1/orders/{other}/dispatch"),
        &json!({"lead": URBAN}),
    );
    assert!(v.status >= 500, "{v}");
    let audit = dispatcher.get(&format!("/api/v1/orders/{other}/audit"));
    let entries = audit.expect(200)["entries"].as_array().unwrap().len();
    assert_eq!(entries, 1, "the dispatch left no trace: {audit}");
    assert_ne!(
        dispatcher
            .get(&format!("/api/v1/orders/{other}"))
            .expect(200)["order"]["status"],
        "dispatched"
    );
    trigger("DROP TRIGGER outbox_refuses");

    dispatch(&dispatcher, &other);
    let ids: Vec<String> = outbox(&url)
        .into_iter()
        .map(|(_, id, _)| id)
        .filter(|id| id.starts_with("order:"))
        .collect();
    let want: Vec<String> = [(&no, 1), (&no, 2), (&other, 1), (&other, 2)]
        .iter()
        .map(|(n, v)| format!("order:{n}:v{v}"))
        .collect();
    assert_eq!(ids, want, "no row for the refused writes");
    let seen = poll(Duration::from_secs(15), Duration::from_millis(50), || {
        let seen = orders_only(&stream.read());
        (seen.len() >= 4).then_some(seen)
    })
    .expect("all four order events pushed");
    let pushed: Vec<&str> = seen.iter().map(|s| s.event_id.as_str()).collect();
    assert_eq!(pushed, want);
    assert!(server.metric("hotline_push_delivered_total") >= 4.0);
    assert_eq!(server.metric("hotline_push_leader"), 1.0);
}

/// A server on `db` without a pusher, and a config for `hotline push` on
/// the same database.
fn pg_server_and_push_config(db: &TempDb, name: &str, push: &str) -> (Server, PathBuf) {
    let store = format!("database_url = \"{}\"", db.url());
    let server = Server::start(name, &[("store", &store)]);
    let config = server.dir.join("push.toml");
    std::fs::write(
        &config,
        config_text(&server.dir, &[("store", &store), ("push", push)]),
    )
    .unwrap();
    (server, config)
}

#[test]
fn a_pusher_killed_mid_stream_loses_nothing_and_a_second_one_waits_for_the_lease() {
    let db = TempDb::new("push_kill");
    let stream = RedisStream::new("kill");
    let push = redis_push(&stream, "batch_size = 5\nlease_secs = 2\nmask = \"none\"");
    let (server, config) = pg_server_and_push_config(&db, "push-kill", &push);
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let dispatcher = Client::new(&server, &user(&server, "li.lei", "dispatcher", None));

    let mut first = PushProcess::start(&server.dir, &config);
    first.expect_log("took the push lease", Duration::from_secs(10));
    let second =
        PushProcess::start_with(&server.dir, &config, &["--metrics-listen", "127.0.0.1:0"]);
    second.expect_log(
        "another node holds the push lease; waiting",
        Duration::from_secs(10),
    );

    // Orders are made and changed on another thread the whole time.
    let load = {
        let (agent, dispatcher) = (agent.clone(), dispatcher.clone());
        std::thread::spawn(move || {
            for _ in 0..30 {
                let no = create(&agent);
                dispatch(&dispatcher, &no);
            }
        })
    };
    stream.wait_len(10, Duration::from_secs(30));
    first.kill();
    let acked_at_kill = query_outbox(
        &db.url(),
        "SELECT seq, sink, sink AS again FROM outbox_cursors",
    )
    .first()
    .map_or(0, |r| r.0);
    // The second takes over once the dead one's lease runs out, and the
    // first, restarted, now waits in its turn.
    second.expect_log("took the push lease", Duration::from_secs(15));
    let restarted = PushProcess::start(&server.dir, &config);
    load.join().unwrap();

    let rows = outbox(&db.url());
    let order_rows = rows.iter().filter(|r| r.1.starts_with("order:")).count();
    assert_eq!(order_rows, 60, "30 orders made and dispatched");
    let seen = stream.wait_len(rows.len(), Duration::from_secs(30));
    let seen = poll(Duration::from_secs(20), Duration::from_millis(100), || {
        let s = stream.read();
        (dedup(&s).len() >= rows.len()).then_some(s)
    })
    .unwrap_or(seen);
    let unique = dedup(&seen);
    let want: Vec<(i64, &str)> = rows.iter().map(|(s, id, _)| (*s, id.as_str())).collect();
    let got: Vec<(i64, &str)> = unique
        .iter()
        .map(|s| (s.seq, s.event_id.as_str()))
        .collect();
    assert_eq!(got, want, "every outbox event once, in seq order, no gaps");
    // Duplicates: only what was sent but not yet acknowledged at the kill.
    let dups: Vec<i64> = seen
        .iter()
        .enumerate()
        .filter(|(i, s)| seen[..*i].iter().any(|e| e.event_id == s.event_id))
        .map(|(_, s)| s.seq)
        .collect();
    eprintln!(
        "{} events, {} pushed, killed at cursor {acked_at_kill}, sent again: {dups:?}",
        rows.len(),
        seen.len()
    );
    assert!(dups.len() <= 5, "at most one batch again: {dups:?}");
    assert!(
        dups.iter()
            .all(|&d| d > acked_at_kill && d <= acked_at_kill + 5),
        "duplicates {dups:?} must follow the cursor {acked_at_kill} at the kill"
    );
    assert_in_order_per_stream(&unique);
    assert!(
        !restarted.log().contains("took the push lease"),
        "two pushers at once:\n{}",
        restarted.log()
    );
    // Unmasked by config: the platform is entitled to the identity here.
    // The standalone pusher's own figures.
    let metrics = second.metrics();
    let sink = format!("sink=\"redis:{}\"", stream.key);
    assert!(
        metrics.contains(&format!("hotline_push_leader{{{sink}}} 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("hotline_push_delivered_total{{{sink}}}")),
        "{metrics}"
    );
    let order = orders_only(&unique);
    assert_eq!(
        order[0].payload["order"]["intake"]["citizen"]["phone"],
        PHONE
    );
}

#[test]
fn a_row_committing_after_a_later_one_is_still_delivered_on_postgres() {
    let db = TempDb::new("push_gap");
    let stream = RedisStream::new("gap");
    let store = format!("database_url = \"{}\"", db.url());
    let server = Server::start(
        "push-gap",
        &[("store", &store), ("push", &redis_push(&stream, ""))],
    );
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let first = create(&agent);
    wait_orders(&stream, 1);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut held = rt.block_on(sqlx::PgConnection::connect(&db.url())).unwrap();
    // A writer takes the next seq and keeps its transaction open.
    let insert = "INSERT INTO outbox (event_id, stream, kind, at, payload) \
                  VALUES ($1, 'held', 'test.held', 0, '{}') RETURNING seq";
    let held_seq: i64 = rt.block_on(async {
        sqlx::raw_sql("BEGIN").execute(&mut held).await.unwrap();
        sqlx::query_scalar(insert)
            .bind("test:held")
            .fetch_one(&mut held)
            .await
            .unwrap()
    });
    // A later order commits first, with a higher seq.
    let second = create(&agent);
    std::thread::sleep(Duration::from_secs(1));
    let seen = orders_only(&stream.read());
    assert_eq!(seen.len(), 1, "nothing may pass the open gap yet: {seen:?}");
    rt.block_on(sqlx::raw_sql("COMMIT").execute(&mut held))
        .unwrap();
    let seen = wait_orders(&stream, 3);
    let order: Vec<&str> = seen.iter().map(|s| s.stream.as_str()).collect();
    assert_eq!(order, [first.as_str(), "held", &second]);
    assert_eq!(seen[1].seq, held_seq);

    // A writer that rolls back leaves a gap that never fills: passed once
    // every transaction that could have filled it has ended.
    rt.block_on(async {
        sqlx::raw_sql("BEGIN").execute(&mut held).await.unwrap();
        sqlx::query_scalar::<_, i64>(insert)
            .bind("test:rolled-back")
            .fetch_one(&mut held)
            .await
            .unwrap();
        sqlx::raw_sql("ROLLBACK").execute(&mut held).await.unwrap();
    });
    let third = create(&agent);
    let seen = wait_orders(&stream, 4);
    assert_eq!(seen[3].stream, third);
    assert!(seen.iter().all(|s| s.event_id != "test:rolled-back"));
}

#[test]
fn an_http_sink_that_is_down_then_failing_then_back_gets_everything() {
    // A port nobody listens on yet.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let push = format!(
        "http_url = \"http://{addr}/platform/events\"\nhttp_timeout_ms = 2000\npoll_ms = 20\n\
         backoff_min_ms = 50\nbackoff_max_ms = 400\nmask = \"full\""
    );
    let server = Server::start("push-http", &[("push", &push)]);
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(create(&agent));
    }
    let failed = |n: f64| {
        poll(Duration::from_secs(10), Duration::from_millis(50), || {
            (server.metric("hotline_push_failed_total") >= n).then_some(())
        })
        .is_some()
    };
    assert!(failed(2.0), "the pusher keeps trying a closed port");

    let receiver = Receiver::start(addr, Reply::Fail);
    assert!(
        poll(Duration::from_secs(10), Duration::from_millis(50), || {
            (receiver.requests() >= 2).then_some(())
        })
        .is_some(),
        "retries reach the failing endpoint"
    );
    assert!(receiver.events().is_empty());
    for _ in 0..2 {
        made.push(create(&agent));
    }
    receiver.answer(Reply::Ok);
    let want = outbox(&sqlite_url(&server));
    let all = poll(Duration::from_secs(15), Duration::from_millis(50), || {
        let all = dedup(&receiver.events());
        (all.len() >= want.len()).then_some(all)
    })
    .unwrap_or_else(|| panic!("not all delivered: {:?}", receiver.events()));
    let got: Vec<i64> = all.iter().map(|s| s.seq).collect();
    let seqs: Vec<i64> = want.iter().map(|r| r.0).collect();
    assert_eq!(got, seqs, "every outbox row, in order, no gaps");
    let all = orders_only(&all);
    let streams: Vec<&str> = all.iter().map(|s| s.stream.as_str()).collect();
    assert_eq!(streams, made.iter().map(String::as_str).collect::<Vec<_>>());
    // `mask = "full"`: nothing of the number or name is left.
    let citizen = &all[0].payload["order"]["intake"]["citizen"];
    assert_eq!(citizen["phone"], "***********", "{citizen}");
    assert_eq!(citizen["name"], "**", "{citizen}");
    assert!(
        poll(Duration::from_secs(5), Duration::from_millis(50), || {
            (server.metric("hotline_push_lag_events") == 0.0).then_some(())
        })
        .is_some(),
        "the lag returns to zero"
    );
}

#[test]
fn the_pusher_waits_out_a_database_outage_and_delivers_after() {
    let db = TempDb::new("push_outage");
    let stream = RedisStream::new("outage");
    let store = format!("database_url = \"{}\"", db.url());
    let server = Server::start(
        "push-outage",
        &[("store", &store), ("push", &redis_push(&stream, ""))],
    );
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let first = create(&agent);
    wait_orders(&stream, 1);

    db.outage();
    let before = server.metric("hotline_push_failed_total");
    assert!(
        poll(Duration::from_secs(20), Duration::from_millis(100), || {
            (server.metric("hotline_push_failed_total") > before
                || server.log().contains("push lease: database unreachable"))
            .then_some(())
        })
        .is_some(),
        "the outage is noticed:\n{}",
        server.log()
    );
    db.restore();
    let second = poll(Duration::from_secs(20), Duration::from_millis(200), || {
        let v = agent.post("/api/v1/orders", &appeal(PHONE));
        (v.status == 201).then(|| v.json["order"]["order_no"].as_str().unwrap().to_owned())
    })
    .expect("intake works again");
    let seen = wait_orders(&stream, 2);
    let streams: Vec<&str> = seen.iter().map(|s| s.stream.as_str()).collect();
    assert_eq!(streams, [first, second]);
}

/// `hotline config check` on a config with these `[push]` lines.
fn check(dir: &Path, push: &str) -> (bool, String) {
    let path = dir.join("bad.toml");
    std::fs::write(&path, config_text(dir, &[("push", push)])).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["config", "check"])
        .arg(&path)
        .env("HOTLINE_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn bad_push_config_is_refused_naming_the_key() {
    let dir = scratch("push-config");
    let cases = [
        ("mask = \"partial\"", "push.redis_url"),
        ("redis_url = \"http://127.0.0.1\"", "push.redis_url"),
        (
            "http_url = \"https://platform.example/in\"",
            "push.http_url",
        ),
        ("http_url = \"platform\"", "push.http_url"),
        (
            "redis_url = \"redis://127.0.0.1\"\nbatch_size = 0",
            "push.batch_size",
        ),
        (
            "redis_url = \"redis://127.0.0.1\"\nbackoff_min_ms = 900\nbackoff_max_ms = 100",
            "push.backoff_min_ms",
        ),
        (
            "redis_url = \"redis://127.0.0.1\"\nlease_secs = 0",
            "push.lease_secs",
        ),
        ("redis_url = \"redis://127.0.0.1\"\nmask = \"some\"", "mask"),
        (
            "redis_url = \"redis://127.0.0.1\"\nstream = \"x\"",
            "stream",
        ),
    ];
    for (lines, key) in cases {
        let (ok, text) = check(&dir, lines);
        assert!(!ok, "{lines:?} was accepted: {text}");
        assert!(text.contains(key), "{lines:?}: {key} not named in {text}");
    }
    let (ok, text) = check(&dir, "redis_url = \"redis://127.0.0.1\"");
    assert!(ok, "{text}");

    // `hotline push` needs a [push] section.
    let path = dir.join("nopush.toml");
    std::fs::write(&path, config_text(&dir, &[])).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["push", "--config"])
        .arg(&path)
        .current_dir(&dir)
        .env("HOTLINE_LOG", "warn")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[push]"), "{err}");
}

/// Sanity of the set arithmetic the kill test relies on.
#[test]
fn dedup_keeps_first_arrivals_in_order() {
    let e = |id: &str, seq| Seen {
        event_id: id.into(),
        seq,
        stream: "s".into(),
        kind: "k".into(),
        payload: Value::Null,
    };
    let seen = [e("a", 1), e("b", 2), e("a", 1), e("c", 3)];
    let ids: BTreeSet<String> = dedup(&seen).into_iter().map(|s| s.event_id).collect();
    assert_eq!(ids.len(), 3);
}

/// The store on its own, on SQLite and PostgreSQL: call records and seat
/// changes write their outbox rows, a retried write makes no second
/// event, a lease keeps a second holder out (and its cursor still), and
/// pruning spares what the sinks have not acknowledged.
#[test]
fn the_store_writes_call_and_seat_events_fences_leases_and_prunes() {
    use hotline::acd::router::{Activity, Status};
    use hotline::call::record::CallRecord;
    use hotline::store::Store;
    use hotline::store::seat_log::SeatLogRow;

    let dir = scratch("push-store");
    let db = TempDb::new("push_store");
    let rt = tokio::runtime::Runtime::new().unwrap();
    for url in [format!("sqlite://{}/store.db", dir.display()), db.url()] {
        rt.block_on(async {
            let store = Store::connect(&url).await.unwrap();
            let record = CallRecord {
                call_id: "c1@test".into(),
                caller: PHONE.into(),
                callee: "12345".into(),
                started_at: 1_000,
                ended_at: 2_000,
                ..CallRecord::default()
            };
            store
                .insert_calls(std::slice::from_ref(&record))
                .await
                .unwrap();
            // Written again (a retry after a commit whose answer was lost).
            store.insert_calls(&[record]).await.unwrap();
            let seat = SeatLogRow::new("1001", 3_000, &Status::Available, &Activity::Idle);
            store.insert_seat_log(&[seat]).await.unwrap();
            let (rows, _) = store.outbox_after(0, 100).await.unwrap();
            let got: Vec<(&str, &str, &str)> = rows
                .iter()
                .map(|r| (r.event_id.as_str(), r.stream.as_str(), r.kind.as_str()))
                .collect();
            assert_eq!(
                got,
                [
                    ("call:c1@test:1000", "c1@test", "call.ended"),
                    ("seat:1", "1001", "seat.changed"),
                ],
                "{url}"
            );
            let call: Value = serde_json::from_str(&rows[0].payload).unwrap();
            assert_eq!(
                call["call"]["caller"], PHONE,
                "kept as recorded; masked on the way out"
            );

            // One holder at a time; the other's cursor does not move.
            assert!(store.take_lease("s", "a", 0, 1_000).await.unwrap());
            assert!(!store.take_lease("s", "b", 500, 1_000).await.unwrap());
            assert!(store.advance_cursor("s", "a", 1, 900, 1_000).await.unwrap());
            assert!(!store.advance_cursor("s", "b", 2, 950, 1_000).await.unwrap());
            assert_eq!(store.push_cursor("s").await.unwrap(), 1);
            // a stops renewing: b takes over after expiry, and a is fenced.
            assert!(store.take_lease("s", "b", 2_000, 1_000).await.unwrap());
            assert!(
                !store
                    .advance_cursor("s", "a", 2, 2_001, 1_000)
                    .await
                    .unwrap()
            );
            assert_eq!(store.push_cursor("s").await.unwrap(), 1);

            // Only acknowledged rows past the retention go.
            assert_eq!(store.prune_outbox(1, 10_000).await.unwrap(), 1);
            assert_eq!(store.prune_outbox(2, 2_500).await.unwrap(), 0);
            let (rows, _) = store.outbox_after(0, 100).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].event_id, "seat:1");
            // (PostgreSQL's sequence spent a number on the ignored retry.)
            assert_eq!(store.outbox_head().await.unwrap(), rows[0].seq);
            store.close().await;
        });
    }
}

/// A real call (SIPp) ends up on the stream as one `call.ended` event,
/// with the caller's number masked.
#[test]
fn a_finished_call_is_pushed_with_its_caller_masked() {
    require("sipp", "sip-tester");
    let stream = RedisStream::new("call");
    let server = Server::start("push-call", &[("push", &redis_push(&stream, ""))]);
    let run = sipp(
        &server,
        &uac_scenario(Some(&offer("0", "a=rtpmap:0 PCMU/8000\n")), &pause(500)),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    let call_id = sipp_call_id(&run);
    let record = server.call_record(&call_id);
    let event = poll(Duration::from_secs(15), Duration::from_millis(50), || {
        stream
            .read()
            .into_iter()
            .find(|s| s.kind == "call.ended" && s.stream == call_id)
    })
    .unwrap_or_else(|| panic!("no call event for {call_id}: {:?}", stream.read()));
    let started = event
        .event_id
        .strip_prefix(&format!("call:{call_id}:"))
        .and_then(|ms| ms.parse::<i64>().ok());
    assert!(
        started.is_some(),
        "call:<call id>:<start ms>: {}",
        event.event_id
    );
    assert_eq!(event.payload["call"]["callee"], "12345");
    assert_eq!(event.payload["call"]["caller"], "138****8000", "{record}");
    assert_eq!(event.payload["call"]["status"], 200);
}
