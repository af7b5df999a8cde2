//! Seats from the store: `hotline agents` on a temp database, seats added
//! through the API registering with SIPp, the agent's buttons on the board,
//! the seat log, and bad requests answered with the field at fault.

mod common;

use common::seat::*;
use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// Runs `hotline <args> --config <config>`; (success, stdout, stderr).
fn cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .arg("--config")
        .arg(config)
        .current_dir(config.parent().unwrap())
        .env("HOTLINE_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("HOTLINE_SEAT_PASSWORD")
        .output()
        .expect("run hotline");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The `agents list` row of a seat, split into its columns.
fn list_row(config: &Path, id: &str) -> Option<Vec<String>> {
    let (ok, out, err) = cli(config, &["agents", "list"]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("ID "), "{out}");
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .map(|l| {
            // Columns are separated by two spaces or more; names hold one.
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
}

fn json_of(status_body: (u16, String)) -> (u16, Value) {
    let (status, body) = status_body;
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status} {body:?}: {e}"));
    (status, v)
}

fn seat(server: &Server, id: &str) -> Value {
    let (status, v) = json_of(server.get(&format!("/api/v1/seats/{id}")));
    assert_eq!(status, 200, "{v}");
    v
}

/// The seat as the whole board shows it.
fn on_board(server: &Server, id: &str) -> Value {
    let (status, v) = json_of(server.get("/api/v1/seats"));
    assert_eq!(status, 200, "{v}");
    v["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seat"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not on the board: {v}"))
}

#[test]
fn cli_adds_lists_and_disables_seats_and_the_server_picks_them_up() {
    let dir = scratch("agents-cli");
    let config = dir.join("hotline.toml");
    std::fs::write(&config, config_text(&dir, &[])).unwrap();

    let (ok, out, err) = cli(
        &config,
        &[
            "agents",
            "add",
            "2001",
            "--password",
            "secret-2001",
            "--name",
            "Wang Fang",
            "--skill",
            "general=5",
            "--skill",
            "emergency=3",
            "--language",
            "cmn",
            "--language",
            "mn",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("seat 2001 added"), "{out}");
    assert_eq!(
        list_row(&config, "2001").unwrap(),
        [
            "2001",
            "Wang Fang",
            "yes",
            "store",
            "emergency=3,general=5",
            "cmn,mn"
        ]
    );
    // Config seats are listed too, marked as such.
    assert_eq!(list_row(&config, "1001").unwrap()[3], "config");

    let (ok, out, err) = cli(&config, &["agents", "disable", "2001"]);
    assert!(ok, "{out}{err}");
    assert_eq!(list_row(&config, "2001").unwrap()[2], "no");
    let (ok, out, err) = cli(&config, &["agents", "enable", "2001"]);
    assert!(ok, "{out}{err}");
    assert_eq!(list_row(&config, "2001").unwrap()[2], "yes");

    // An update keeps what it does not mention.
    let (ok, out, err) = cli(&config, &["agents", "add", "2001", "--name", "Wang F."]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("seat 2001 updated"), "{out}");
    let row = list_row(&config, "2001").unwrap();
    assert_eq!(row[1], "Wang F.");
    assert_eq!(row[4], "emergency=3,general=5");

    // Bad input: a clear error naming the option, and nothing stored.
    let refused = [
        (
            vec!["agents", "add", "2002", "--password", "short"],
            "--password",
        ),
        (vec!["agents", "add", "2002"], "--password"),
        (
            vec![
                "agents",
                "add",
                "2002",
                "--password",
                "secret-2002",
                "--skill",
                "general=11",
            ],
            "--skill",
        ),
        (
            vec![
                "agents",
                "add",
                "2002",
                "--password",
                "secret-2002",
                "--language",
                "CMN",
            ],
            "--language",
        ),
        (
            vec!["agents", "add", "20 02", "--password", "secret-2002"],
            "letters and digits",
        ),
        (
            vec!["agents", "add", "1001", "--password", "secret-1001"],
            "[[seat]]",
        ),
        (vec!["agents", "disable", "1001"], "[[seat]]"),
        (vec!["agents", "disable", "9999"], "no stored seat \"9999\""),
    ];
    for (args, expected) in refused {
        let (ok, out, err) = cli(&config, &args);
        assert!(!ok, "{args:?} was accepted: {out}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(list_row(&config, "2002").is_none());

    // The server starts with the stored seat...
    let server = Server::spawn(dir.clone(), config.clone(), &[]).expect("server starts");
    let s = seat(&server, "2001");
    assert_eq!(s["source"], "store", "{s}");
    assert_eq!(s["name"], "Wang F.");
    assert_eq!(s["skills"], json!({"emergency": 3, "general": 5}));
    assert_eq!(s["status"], "logged_out");
    assert_eq!(s["registered"], false);

    // ...and picks up one added while it runs at the next reload.
    let (ok, out, err) = cli(
        &config,
        &["agents", "add", "2002", "--password", "secret-2002"],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(server.get("/api/v1/seats/2002").0, 404);
    let (status, body) = server.post("/api/v1/admin/reload", "");
    assert_eq!(status, 200, "{body}");
    let s = seat(&server, "2002");
    assert_eq!(s["source"], "store", "{s}");
    assert_eq!(s["languages"], json!(["cmn"]));

    // SIGHUP does the same.
    let (ok, out, err) = cli(&config, &["agents", "disable", "2002"]);
    assert!(ok, "{out}{err}");
    server.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while seat(&server, "2002")["enabled"] != false {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not apply the disable:\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn seat_added_by_api_registers_and_disabling_it_locks_it_out() {
    let server = Server::start("agents-api", &[MD5_ONLY]);
    let body = json!({
        "id": "3001",
        "password": "pass-3001-x",
        "name": "Li Lei",
        "skills": {"general": 5},
        "languages": ["cmn", "mn"],
    });
    let (status, s) = json_of(server.post("/api/v1/seats", &body.to_string()));
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["seat"], "3001");
    assert_eq!(s["source"], "store");
    assert_eq!(s["enabled"], true);
    assert_eq!(s["registered"], false);
    assert!(s.get("password").is_none(), "password leaked: {s}");

    let run = sipp(
        &server,
        &register_scenario("3001", "pass-3001-x", 600, 200, ""),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    let s = on_board(&server, "3001");
    assert_eq!(s["registered"], true, "{s}");
    // available_on_register (the default) puts a registered seat to work.
    assert_eq!(s["status"], "available", "{s}");

    // An update without a password keeps the stored one.
    let (status, s) = json_of(server.post(
        "/api/v1/seats",
        &json!({"id": "3001", "name": "Li Lei (night)"}).to_string(),
    ));
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["name"], "Li Lei (night)");
    assert_eq!(s["languages"], json!(["cmn"]));
    let run = sipp(
        &server,
        &register_scenario("3001", "pass-3001-x", 600, 200, ""),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());

    // Disabled: its registration goes, it leaves work, and it cannot
    // register again.
    let (status, s) = json_of(server.post("/api/v1/seats/3001/disable", ""));
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["enabled"], false);
    assert_eq!(s["registered"], false);
    assert_eq!(s["status"], "logged_out");
    let run = sipp(
        &server,
        &register_scenario("3001", "pass-3001-x", 600, 403, ""),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    let (status, v) = json_of(server.post("/api/v1/seats/3001/login", ""));
    assert_eq!(status, 409, "{v}");

    let (status, s) = json_of(server.post("/api/v1/seats/3001/enable", ""));
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["enabled"], true);
    let run = sipp(
        &server,
        &register_scenario("3001", "pass-3001-x", 600, 200, ""),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());

    // A config seat cannot be shadowed or disabled from the API.
    let (status, v) = json_of(server.post(
        "/api/v1/seats",
        &json!({"id": "1001", "password": "whatever-1001"}).to_string(),
    ));
    assert_eq!((status, v["field"].as_str()), (409, Some("id")), "{v}");
    assert_eq!(server.post("/api/v1/seats/1001/disable", "").0, 409);
    assert!(
        server.wait_log(
            "stored seat saved through the API",
            std::time::Duration::from_secs(2)
        ),
        "{}",
        server.log()
    );
}

#[test]
fn agent_buttons_change_the_board_and_the_seat_log() {
    let server = Server::start("agents-buttons", &[]);
    let press = |button: &str, body: &str| -> Value {
        let (status, v) = json_of(server.post(&format!("/api/v1/seats/1001/{button}"), body));
        assert_eq!(status, 200, "{button}: {v}");
        assert_eq!(
            v,
            on_board(&server, "1001"),
            "{button}: the answer is the board's view"
        );
        v
    };
    assert_eq!(seat(&server, "1001")["status"], "logged_out");
    // Break and available are for a seat at work.
    let (status, v) = json_of(server.post("/api/v1/seats/1001/available", ""));
    assert_eq!(status, 409, "{v}");
    let (status, v) = json_of(server.post("/api/v1/seats/1001/break", r#"{"reason": "lunch"}"#));
    assert_eq!(status, 409, "{v}");

    assert_eq!(press("login", "")["status"], "available");
    let v = press("break", r#"{"reason": "lunch"}"#);
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("on_break"), Some("lunch"))
    );
    assert_eq!(press("available", "")["status"], "available");
    let v = press("wrap-up-done", "");
    assert_eq!(
        (v["status"].as_str(), v["state"].as_str()),
        (Some("available"), Some("idle"))
    );
    assert_eq!(press("logout", "")["status"], "logged_out");
    // Other seats were not touched.
    assert_eq!(on_board(&server, "1002")["status"], "logged_out");

    let (status, v) = json_of(server.get("/api/v1/seats/1001/log"));
    assert_eq!(status, 200, "{v}");
    let changes = v["changes"].as_array().unwrap();
    let seen: Vec<(String, String)> = changes
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want = [
        ("available", ""),
        ("on_break", "lunch"),
        ("available", ""),
        ("logged_out", ""),
    ]
    .map(|(s, r)| (s.to_string(), r.to_string()));
    assert_eq!(seen, want, "{v}");
    let mut last = 0;
    for c in changes {
        assert_eq!(c["seat"], "1001");
        let at = c["at"].as_i64().expect("at is Unix ms");
        assert!(at >= last && at > 1_700_000_000_000, "{c}");
        last = at;
        let time = c["time"].as_str().unwrap();
        assert!(time.len() >= 20 && time.contains('T'), "RFC 3339 time: {c}");
    }
    // The same changes reach the store's durable seat log (written once a
    // second).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let stored = loop {
        let (status, v) = json_of(server.get("/api/v1/seats/1001/history"));
        assert_eq!(status, 200, "{v}");
        let rows = v["changes"].as_array().unwrap().clone();
        if rows.len() >= 4 || std::time::Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let seen_stored: Vec<(String, String)> = stored
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(seen_stored, want, "{stored:?}");
    let last_at = stored[3]["at"].as_i64().unwrap();
    let (_, v) = json_of(server.get(&format!("/api/v1/seats/1001/history?since={last_at}")));
    assert_eq!(v["changes"].as_array().unwrap().len(), 1, "{v}");
    let (status, v) = json_of(server.get("/api/v1/seats/1001/history?since=yesterday"));
    assert_eq!((status, v["field"].as_str()), (400, Some("since")), "{v}");
    let (status, v) = json_of(server.get("/api/v1/seat-log?limit=2"));
    assert_eq!(status, 200, "{v}");
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{v}");
    assert_eq!(changes[1]["status"], "logged_out");

    let (status, v) = json_of(server.get("/api/v1/queues"));
    assert_eq!(status, 200, "{v}");
    let queues = v["queues"].as_array().unwrap();
    assert!(!queues.is_empty(), "{v}");
    for q in queues {
        assert!(q["name"].is_string() && q["waiting"] == 0, "{v}");
    }
    let (status, v) = json_of(server.get("/api/v1/missed-calls"));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["missed_calls"], json!([]));
}

#[test]
fn bad_requests_name_the_field_and_unknown_seats_are_404() {
    let server = Server::start("agents-bad", &[]);
    assert_eq!(server.post("/api/v1/seats/1001/login", "").0, 200);
    let long = "x".repeat(65);
    let cases: Vec<(&str, String, &str)> = vec![
        ("/api/v1/seats/1001/break", String::new(), "reason"),
        ("/api/v1/seats/1001/break", "{}".into(), "reason"),
        (
            "/api/v1/seats/1001/break",
            r#"{"reason": ""}"#.into(),
            "reason",
        ),
        (
            "/api/v1/seats/1001/break",
            r#"{"reason": "   "}"#.into(),
            "reason",
        ),
        (
            "/api/v1/seats/1001/break",
            r#"{"reason": 5}"#.into(),
            "reason",
        ),
        (
            "/api/v1/seats/1001/break",
            format!(r#"{{"reason": "{long}"}}"#),
            "reason",
        ),
        ("/api/v1/seats/1001/break", "lunch".into(), "body"),
        (
            "/api/v1/seats/1001/break",
            r#"{"reason": "x", "mood": 1}"#.into(),
            "body",
        ),
        (
            "/api/v1/seats",
            r#"{"password": "longenough"}"#.into(),
            "id",
        ),
        (
            "/api/v1/seats",
            r#"{"id": "30 01", "password": "longenough"}"#.into(),
            "id",
        ),
        ("/api/v1/seats", r#"{"id": "3001"}"#.into(), "password"),
        (
            "/api/v1/seats",
            r#"{"id": "3001", "password": "short"}"#.into(),
            "password",
        ),
        (
            "/api/v1/seats",
            r#"{"id": "3001", "password": "longenough", "skills": {"general": 11}}"#.into(),
            "skills",
        ),
        (
            "/api/v1/seats",
            r#"{"id": "3001", "password": "longenough", "skills": {"general": 0}}"#.into(),
            "skills",
        ),
        (
            "/api/v1/seats",
            r#"{"id": "3001", "password": "longenough", "languages": "cmn"}"#.into(),
            "languages",
        ),
        (
            "/api/v1/seats",
            r#"{"id": "3001", "password": "longenough", "enabled": "yes"}"#.into(),
            "enabled",
        ),
        (
            "/api/v1/seats",
            r#"{"id": "3001", "password": "longenough", "nmae": "x"}"#.into(),
            "body",
        ),
    ];
    for (path, body, field) in cases {
        let (status, v) = json_of(server.post(path, &body));
        assert_eq!(status, 400, "{path} {body}: {v}");
        assert_eq!(v["field"], field, "{path} {body}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    // None of that changed the seat or stored one.
    assert_eq!(seat(&server, "1001")["status"], "available");
    assert_eq!(server.get("/api/v1/seats/3001").0, 404);
    for query in ["limit=0", "limit=x", "limit=1001"] {
        for path in [
            "/api/v1/seat-log",
            "/api/v1/seats/1001/log",
            "/api/v1/missed-calls",
        ] {
            let (status, v) = json_of(server.get(&format!("{path}?{query}")));
            assert_eq!(
                (status, v["field"].as_str()),
                (400, Some("limit")),
                "{path}?{query}: {v}"
            );
        }
    }

    for button in [
        "login",
        "logout",
        "available",
        "wrap-up-done",
        "disable",
        "enable",
    ] {
        let (status, v) = json_of(server.post(&format!("/api/v1/seats/9999/{button}"), ""));
        assert_eq!(status, 404, "{button}: {v}");
        assert!(v["error"].as_str().unwrap().contains("9999"), "{v}");
    }
    let (status, _) = server.post("/api/v1/seats/9999/break", r#"{"reason": "lunch"}"#);
    assert_eq!(status, 404);
    // An unknown seat is 404 whatever the body.
    assert_eq!(server.post("/api/v1/seats/9999/break", "").0, 404);
    assert_eq!(server.get("/api/v1/seats/9999").0, 404);
    assert_eq!(server.get("/api/v1/seats/9999/log").0, 404);
    assert_eq!(server.get("/api/v1/seats/no%20such").0, 404);
}
