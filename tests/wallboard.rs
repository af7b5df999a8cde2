//! The wallboard in a real headless Chromium: the page loads from the
//! binary, connects its WebSocket with the token from its URL fragment, and
//! its numbers follow the floor — a SIPp seat registering, a SIPp caller
//! waiting in the emergency queue and hanging up, orders taken through the
//! API. A screenshot of the board is kept as a test artifact. The socket
//! refuses a missing, malformed, unknown or unit handler's token, and the
//! page says it is disconnected when the server goes away.

mod common;

use common::browser::*;
use common::orders::*;
use common::seat::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite;

/// A server whose main flow puts every caller straight into the emergency
/// queue (no greeting to sit through).
fn emergency_server(name: &str) -> Server {
    let flows = editable_flows(&scratch(name));
    std::fs::write(
        flows.join("main.yaml"),
        "name: main\n\
         description: Every caller waits in the emergency queue.\n\
         start: emergency\n\
         nodes:\n  \
           - id: emergency\n    \
             type: queue\n    \
             queue: emergency\n    \
             priority: 9\n    \
             prompts: [emergency_hold]\n",
    )
    .unwrap();
    let flows_dir = format!("flows_dir = \"{}\"", flows.display());
    // SIPp answers digest challenges with MD5 only.
    Server::start(
        name,
        &[MD5_ONLY, ("ivr", &flows_dir), ("orders", "sweep_secs = 0")],
    )
}

/// An appeal in 新城区 (150102), as intake takes it.
fn appeal(category: &str) -> Value {
    json!({
        "channel": "phone",
        "citizen": {"name": "李四", "phone": "13900139000"},
        "appeal_type": "help",
        "category": category,
        "division": "150102",
        "content": "小区供暖问题，请尽快处理",
    })
}

/// 路灯不亮: accepted, waits for dispatch.
const STREET_LIGHT: &str = "010701";
/// 停暖: an emergency order, dispatched at once.
const NO_HEATING: &str = "010101";

/// Moves every running clock of `order_no` in the server's SQLite
/// database so it fell due `ago_ms` ago.
fn make_overdue(server: &Server, order_no: &str, ago_ms: i64) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", server.dir.join("hotline.db").display());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA busy_timeout=5000")
            .execute(&mut db)
            .await
            .unwrap();
        let moved = sqlx::query(
            "UPDATE order_clocks SET due_at = $1, original_due_at = $1 \
             WHERE order_no = $2 AND stopped_at IS NULL",
        )
        .bind(now - ago_ms)
        .bind(order_no)
        .execute(&mut db)
        .await
        .unwrap();
        assert!(
            moved.rows_affected() > 0,
            "order {order_no} has no running clock"
        );
    });
}

#[test]
fn the_board_follows_seats_calls_and_orders_in_chromium() {
    require("sipp", "sip-tester");
    let server = emergency_server("wallboard-live");
    let token = user(&server, "wall.screen", "supervisor", None);
    let mut browser = Browser::start("wallboard-live");
    browser.navigate(&format!("http://{}/wallboard#token={token}", server.http));
    let log = || server.log();
    let wait = Duration::from_secs(10);

    // Connected, and the quiet floor: nobody waits, every demo seat is
    // offline, no order yet today.
    browser.expect_figure("status", "实时 Live", wait, &log);
    browser.expect_figure("waiting-total", "0", wait, &log);
    browser.expect_figure("seats-offline", "10", wait, &log);
    browser.expect_figure("seats-available", "0", wait, &log);
    browser.expect_figure("orders-total", "0", wait, &log);
    browser.expect_figure("service-level", "–", wait, &log);
    // The token stayed in the fragment: the server never saw it.
    assert!(!server.log().contains(&token), "the token reached the log");

    // Seat 1007 (no emergency skill) registers: available on register.
    let _port = SippSeat::register(&server, "1007");
    browser.expect_figure("seats-available", "1", wait, &log);
    browser.expect_figure("seats-offline", "9", wait, &log);

    // Orders taken through the API show up in today's orders.
    let agent = Client::new(&server, &user(&server, "zhao.agent", "agent", None));
    let light = agent.post("/api/v1/orders", &appeal(STREET_LIGHT));
    let light = light.expect(201)["order"]["status"]
        .as_str()
        .unwrap()
        .to_owned();
    let emergency = agent.post("/api/v1/orders", &appeal(NO_HEATING));
    assert_eq!(
        emergency.expect(201)["order"]["status"],
        "dispatched",
        "{emergency}"
    );
    browser.expect_figure("orders-total", "2", wait, &log);
    if light == "dispatched" {
        browser.expect_figure("orders-dispatched", "2", wait, &log);
    } else {
        browser.expect_figure(&format!("orders-{light}"), "1", wait, &log);
        browser.expect_figure("orders-dispatched", "1", wait, &log);
    }
    browser.expect_figure("emergency-orders", "1", wait, &log);

    // The emergency order's handling falls two hours overdue (its clocks
    // moved back in the database): the board lists it by number, step and
    // unit, and shows nothing of the citizen.
    let no = emergency.json["order"]["order_no"]
        .as_str()
        .unwrap()
        .to_owned();
    make_overdue(&server, &no, 2 * 3_600_000);
    browser.expect_figure("overdue-orders", "1", wait, &log);
    let rows = browser.eval("document.querySelectorAll('#overdue tr').length");
    assert_eq!(rows, 1, "one line per overdue order");
    let row = browser.eval("document.querySelector('#overdue tr').innerText");
    let row = row.as_str().unwrap_or_default();
    assert!(row.contains(&no), "{row}");
    assert!(row.contains("2h 00m") || row.contains("2h 01m"), "{row}");
    let text = browser.eval("document.body.innerText");
    let text = text.as_str().unwrap_or_default();
    for private in ["李四", "13900139000", "供暖"] {
        assert!(!text.contains(private), "the wall shows {private}");
    }

    // A caller waits in the emergency queue: no emergency seat is
    // registered, so nobody can take it. SIPp hangs up after 8 s.
    let sip = server.sip;
    let caller = std::thread::spawn(move || {
        let scenario = uac_scenario(
            Some(&offer(
                "0 101",
                "a=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n",
            )),
            &pause(8_000),
        );
        sipp_to(sip, &scenario, 1, &[])
    });
    browser.expect_figure("waiting-total", "1", wait, &log);
    browser.expect_figure("emergency-waiting", "1", wait, &log);
    browser.expect_figure("queue-emergency", "1", wait, &log);
    // The emergency tile is red while an emergency caller waits.
    let red = browser.eval("document.getElementById('t-emergency').classList.contains('bad')");
    assert_eq!(red, true, "the emergency tile is not red");

    // The screenshot, with a caller waiting, for people to look at.
    std::thread::sleep(Duration::from_millis(1_500));
    let png = browser.screenshot();
    check_png(&png, WIDTH, HEIGHT);
    let path = artifacts_dir().join("wallboard.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("wallboard screenshot: {}", path.display());

    // The caller hangs up: nobody waits, and today's calls count one
    // caller who asked for an agent and abandoned.
    let run = caller.join().unwrap();
    assert!(
        run.success,
        "the caller's SIPp failed\n{}\n{}",
        run.describe(),
        server.log()
    );
    browser.expect_figure("waiting-total", "0", wait, &log);
    browser.expect_figure("emergency-waiting", "0", wait, &log);
    browser.expect_figure("asked", "1", wait, &log);
    browser.expect_figure("abandoned", "1", wait, &log);
    browser.expect_figure("service-level", "0.0%", wait, &log);
    browser.expect_figure("abandonment-rate", "100.0%", wait, &log);
}

#[test]
fn the_page_says_disconnected_when_the_server_stops() {
    let mut server = Server::start("wallboard-down", &[("orders", "sweep_secs = 0")]);
    let token = user(&server, "wall.down", "agent", None);
    let mut browser = Browser::start("wallboard-down");
    let log = || String::new();
    let wait = Duration::from_secs(10);

    // Without a token the page says how to give it one.
    browser.navigate(&format!("http://{}/wallboard", server.http));
    browser.expect_figure("status", "已断开 Disconnected", wait, &log);
    let banner = browser.figure("banner");
    assert!(banner.contains("#token="), "{banner}");

    // A new fragment alone does not reload a page.
    browser.navigate("about:blank");
    browser.navigate(&format!("http://{}/wallboard#token={token}", server.http));
    browser.expect_figure("status", "实时 Live", wait, &log);
    browser.expect_figure("waiting-total", "0", wait, &log);
    let connected = browser.eval("document.body.classList.contains('disconnected')");
    assert_eq!(connected, false);

    server.signal("KILL");
    server.wait_exit(Duration::from_secs(5));
    browser.expect_figure("status", "已断开 Disconnected", wait, &log);
    let disconnected = browser.eval(
        "document.body.classList.contains('disconnected') && \
         getComputedStyle(document.getElementById('banner')).display !== 'none'",
    );
    assert_eq!(disconnected, true, "the disconnected banner is not shown");
    // It keeps trying, with a countdown to the next attempt.
    let mut banner = String::new();
    let retrying = poll(wait, Duration::from_millis(200), || {
        banner = browser.figure("banner");
        banner.contains("reconnecting in").then_some(())
    });
    assert!(retrying.is_some(), "no reconnect countdown: {banner:?}");
    // The last figures stay on the wall, greyed, not blanked.
    assert_eq!(browser.figure("waiting-total"), "0");
    let png = browser.screenshot();
    check_png(&png, WIDTH, HEIGHT);
    std::fs::write(artifacts_dir().join("wallboard-disconnected.png"), &png).unwrap();
}

/// The answer to a WebSocket upgrade: the status, and the subprotocol the
/// server chose.
fn upgrade(server: &Server, query: &str, protocols: &[&str]) -> (u16, Option<String>, String) {
    use tungstenite::client::IntoClientRequest;
    let url = format!("ws://{}/api/v1/wallboard/ws{query}", server.http);
    let mut request = url.into_client_request().unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            protocols.join(", ").parse().unwrap(),
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use futures::StreamExt;
        match tokio_tungstenite::connect_async(request).await {
            Ok((mut socket, response)) => {
                let chosen = response
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap().to_owned());
                // The first message: a heartbeat or the board.
                let first = tokio::time::timeout(Duration::from_secs(5), socket.next())
                    .await
                    .ok()
                    .flatten()
                    .and_then(|m| m.ok())
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                (101, chosen, first)
            }
            Err(tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                (response.status().as_u16(), None, body)
            }
            Err(e) => panic!("upgrade failed: {e}"),
        }
    })
}

#[test]
fn the_socket_wants_a_hotline_token() {
    let server = Server::start("wallboard-auth", &[("orders", "sweep_secs = 0")]);
    let token = user(&server, "wall.auth", "supervisor", None);
    let unit = user(
        &server,
        "heating.desk",
        "unit_handler",
        Some("hhht-heating"),
    );

    // The page itself is public and self-contained.
    let (status, page) = server.get("/wallboard");
    assert_eq!(status, 200);
    assert!(page.contains("/api/v1/wallboard/ws"), "{page}");

    let (status, _, body) = upgrade(&server, "", &[]);
    assert_eq!(status, 401, "no token: {body}");
    assert!(body.contains("#token="), "the refusal says how: {body}");
    let (status, _, body) = upgrade(&server, "", &["hotline.wallboard", "bearer.hl_short"]);
    assert_eq!(status, 401, "malformed token: {body}");
    let unknown = format!("hl_{}", "0".repeat(64));
    let (status, _, body) = upgrade(&server, &format!("?token={unknown}"), &[]);
    assert_eq!(status, 401, "unknown token: {body}");
    assert!(body.contains("unknown"), "{body}");
    let (status, _, body) = upgrade(&server, "", &[&format!("bearer.{unit}")]);
    assert_eq!(status, 403, "a unit handler: {body}");

    // A supervisor's token as the page sends it: the server picks the
    // board's subprotocol and never echoes the token.
    let bearer = format!("bearer.{token}");
    let (status, chosen, first) = upgrade(&server, "", &["hotline.wallboard", &bearer]);
    assert_eq!(status, 101, "{first}");
    assert_eq!(chosen.as_deref(), Some("hotline.wallboard"));
    let first: Value = serde_json::from_str(&first).unwrap();
    assert!(
        first["type"] == "heartbeat" || first["type"] == "snapshot",
        "{first}"
    );
    // The query parameter works too.
    let (status, chosen, _) = upgrade(&server, &format!("?token={token}"), &[]);
    assert_eq!((status, chosen), (101, None));
}

/// A wallboard connection read from the test: every message, in order.
struct Feed {
    rt: tokio::runtime::Runtime,
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Feed {
    fn open(server: &Server, token: &str) -> Feed {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = format!("ws://{}/api/v1/wallboard/ws?token={token}", server.http);
        let (socket, _) = rt
            .block_on(tokio_tungstenite::connect_async(url.as_str()))
            .expect("the wallboard socket");
        Feed { rt, socket }
    }

    /// The first board within `limit` that `check` accepts.
    fn board_where(&mut self, limit: Duration, check: impl Fn(&Value) -> bool) -> Option<Value> {
        use futures::StreamExt;
        let socket = &mut self.socket;
        self.rt.block_on(async {
            let wait = async {
                while let Some(Ok(message)) = socket.next().await {
                    let Ok(v) = serde_json::from_str::<Value>(&message.to_string()) else {
                        continue;
                    };
                    if v["type"] == "snapshot" && check(&v["board"]) {
                        return Some(v["board"].clone());
                    }
                }
                None
            };
            tokio::time::timeout(limit, wait).await.ok().flatten()
        })
    }
}

/// On PostgreSQL, and through an outage: the board keeps showing the last
/// counts it read and the live queues and seats, says the database is
/// down, and recovers by itself.
#[test]
fn the_board_on_postgresql_survives_a_database_outage() {
    let db = common::temp_db::TempDb::new("wallboard_outage");
    let store = format!("database_url = \"{}\"", db.url());
    let server = Server::start(
        "wallboard-pg",
        &[("store", &store), ("orders", "sweep_secs = 0")],
    );
    let token = user(&server, "wall.pg", "admin", None);
    let agent = Client::new(&server, &user(&server, "qian.agent", "agent", None));
    agent
        .post("/api/v1/orders", &appeal(NO_HEATING))
        .expect(201);

    let mut feed = Feed::open(&server, &token);
    let wait = Duration::from_secs(10);
    let board = feed
        .board_where(wait, |b| b["orders"]["total"] == 1)
        .unwrap_or_else(|| panic!("no board with the order\n{}", server.log()));
    assert_eq!(board["database_down"], false, "{board}");
    assert_eq!(board["emergency"]["open_orders"], 1, "{board}");
    assert_eq!(board["seats"]["total"], 10, "{board}");
    assert_eq!(board["calls"]["asked"], 0, "{board}");

    db.outage();
    let board = feed
        .board_where(Duration::from_secs(20), |b| b["database_down"] == true)
        .unwrap_or_else(|| {
            panic!(
                "the board never said the database is down\n{}",
                server.log()
            )
        });
    assert_eq!(board["orders"]["total"], 1, "the last counts stay: {board}");
    assert_eq!(
        board["seats"]["offline"], 10,
        "the seats stay live: {board}"
    );

    db.restore();
    let board = feed
        .board_where(Duration::from_secs(20), |b| b["database_down"] == false)
        .unwrap_or_else(|| panic!("the board did not recover\n{}", server.log()));
    assert_eq!(board["orders"]["total"], 1, "{board}");
}
