//! Call records in PostgreSQL, and what happens when the database goes away.
//!
//! Uses the machine's PostgreSQL (`HOTLINE_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`); each test makes its own
//! database and role and drops them afterwards.

mod common;

use common::temp_db::TempDb;
use common::*;
use sqlx::Connection;
use std::time::{Duration, Instant};

fn call(server: &Server, digits: Option<char>) -> String {
    let after = match digits {
        Some(d) => [pause(200), info_dtmf(d, 2)].concat(),
        None => pause(200),
    };
    let run = sipp(server, &uac_scenario(Some(&offer("0", "")), &after), 1, &[]);
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    sipp_call_id(&run)
}

#[test]
fn call_records_go_to_postgres() {
    let db = TempDb::new("records");
    let url = db.url();
    let server = Server::start_with_env("pg", &[], &[("DATABASE_URL", &url)]);
    let id = call(&server, Some('7'));
    let record = server.call_record(&id);
    assert_eq!(record["digits"], "7");
    assert_eq!(record["codec"], "PCMU");
    // It is really in PostgreSQL.
    let count: i64 = db.rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM calls WHERE call_id = $1 AND digits = '7'")
            .bind(&id)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(count, 1);
}

#[test]
fn records_wait_out_a_database_outage() {
    let db = TempDb::new("outage");
    let server = Server::start_with_env("pg-outage", &[], &[("DATABASE_URL", &db.url())]);
    call(&server, None);
    db.outage();

    // Calls are still answered while the database is away.
    let during = call(&server, Some('3'));
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.metric("hotline_call_records_pending") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the writer never noticed the outage\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = server.get("/healthz");
    assert_eq!(status, 200, "calls are still served: {body}");
    assert!(body.contains("\"database\":\"down\""), "{body}");

    // Back again: the record kept in memory is written.
    db.restore();
    let record = server.call_record(&during);
    assert_eq!(record["digits"], "3");
    assert_eq!(server.metric("hotline_call_records_dropped_total"), 0.0);
}

#[test]
fn unreachable_database_fails_the_start_with_a_clear_error() {
    let dir = scratch("pg-down");
    let path = dir.join("hotline.toml");
    std::fs::write(&path, config_text(&dir, &[])).unwrap();
    let port = free_udp_port(1);
    let url = format!("postgres://nobody:secret@127.0.0.1:{port}/none");
    let err = match Server::spawn(dir, path, &[("DATABASE_URL", &url)]) {
        Ok(_) => panic!("server started without its database"),
        Err(log) => log,
    };
    assert!(
        err.contains("database postgres://nobody:***@127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains("secret"), "password leaked: {err}");
}
