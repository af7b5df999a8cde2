//! The order API on the real binary: bearer tokens, intake and the
//! idempotent online intake, role and unit isolation, masking of citizens'
//! personal data, listing filters and pagination, the database going away,
//! and one order's whole lifecycle (with its audit log) on SQLite and on
//! PostgreSQL.
//!
//! Users are made with `hotline users add` against each server's config;
//! units, divisions and categories are real entries of the shipped
//! `sip-config/units.toml` and `sip-config/catalogue.toml`. The PostgreSQL
//! tests use the machine's server (`HOTLINE_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`) through `common::temp_db`.

mod common;

use common::orders::*;
use common::temp_db::TempDb;
use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// 新城区, inside 呼和浩特市 (150100).
const DIVISION: &str = "150102";
/// 室温不达标: 0101 in 150100 goes to the heating company, with the housing
/// bureau as co-handler.
const ROOM_TOO_COLD: &str = "010102";
const HEATING: &str = "hhht-heating";
const HOUSING: &str = "hhht-housing";
/// 路灯不亮 and 井盖缺失破损: 0107 in 150100 goes to urban management alone.
const STREET_LIGHT: &str = "010701";
const MANHOLE: &str = "010702";
const URBAN: &str = "hhht-urban";
/// 过期变质食品: 02 in 150100 goes to market supervision alone.
const SPOILED_FOOD: &str = "020101";
const MARKET: &str = "hhht-market";
/// 物业服务质量 (0104 in 150102 goes to the district; never dispatched here).
const PROPERTY: &str = "010401";

/// A phone appeal for help in 新城区.
fn appeal(category: &str, phone: &str) -> Value {
    json!({
        "channel": "phone",
        "citizen": {"name": "张三", "phone": phone},
        "appeal_type": "help",
        "category": category,
        "division": DIVISION,
        "location": "新城区海拉尔东街 12 号",
        "content": "小区门口的问题已经一周了，请尽快处理",
    })
}

/// Takes an appeal; returns the new order's number.
fn create(agent: &Client, body: &Value) -> String {
    let v = agent.post("/api/v1/orders", body);
    v.expect(201)["order"]["order_no"]
        .as_str()
        .unwrap_or_else(|| panic!("no order number: {v}"))
        .to_owned()
}

/// Runs `POST /api/v1/orders/{no}/{action}`; the order after it.
fn act(who: &Client, no: &str, action: &str, body: Value) -> Value {
    let v = who.post(&format!("/api/v1/orders/{no}/{action}"), &body);
    v.expect(200)["order"].clone()
}

fn dispatch(dispatcher: &Client, no: &str, lead: &str, co_handlers: &[&str]) -> Value {
    act(
        dispatcher,
        no,
        "dispatch",
        json!({"lead": lead, "co_handlers": co_handlers}),
    )
}

/// Order numbers of a listing, failing unless it is a 200.
fn listed(who: &Client, query: &str) -> Vec<String> {
    let v = who.get(&format!("/api/v1/orders{query}"));
    numbers(&v.expect(200)["orders"])
}

fn numbers(orders: &Value) -> Vec<String> {
    orders
        .as_array()
        .unwrap_or_else(|| panic!("not a list of orders: {orders}"))
        .iter()
        .map(|o| o["order_no"].as_str().unwrap().to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The actions of an order's audit log, oldest first, as the dispatcher
/// reads them.
fn audit(dispatcher: &Client, no: &str) -> Vec<Value> {
    let v = dispatcher.get(&format!("/api/v1/orders/{no}/audit"));
    v.expect(200)["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries: {v}"))
        .clone()
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

/// `YYYYMMDD` of an instant in Beijing time.
fn beijing_day(t: time::OffsetDateTime) -> String {
    let local = t.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap());
    format!(
        "{:04}{:02}{:02}",
        local.year(),
        u8::from(local.month()),
        local.day()
    )
}

#[test]
fn requests_without_a_valid_token_get_401_with_a_bearer_challenge() {
    let server = Server::start("orders-401", &[]);
    let token = user(&server, "wang.fang", "agent", None);
    let anonymous = Client::anonymous(&server);
    let unknown = format!("hl_{}", "0".repeat(64));
    let cases: [(&str, Option<String>); 5] = [
        ("no header", None),
        ("malformed token", Some("Bearer abc".into())),
        (
            "upper-case token",
            Some(format!("Bearer {}", token.to_uppercase())),
        ),
        ("other scheme", Some("Basic d2FuZzpmYW5n".into())),
        ("unknown token", Some(format!("Bearer {unknown}"))),
    ];
    for (what, authorization) in cases {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|a| ("Authorization", a.as_str()))
            .collect();
        for (method, path, body) in [
            ("GET", "/api/v1/orders", String::new()),
            (
                "POST",
                "/api/v1/orders",
                appeal(STREET_LIGHT, "13800138000").to_string(),
            ),
        ] {
            let v = anonymous.send(method, path, &headers, &body);
            v.error(401);
            let challenge = v.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.starts_with("Bearer"),
                "{what}, {method}: WWW-Authenticate {challenge:?}"
            );
            assert!(!v.text.contains(&token[3..]), "the token echoed: {v}");
        }
    }
    // The same request with the token works, and nothing was made before.
    let agent = Client::new(&server, &token);
    assert!(listed(&agent, "").is_empty());
}

#[test]
fn intake_numbers_the_order_and_names_each_bad_field() {
    let server = Server::start("orders-intake", &[]);
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));

    let before = beijing_day(time::OffsetDateTime::now_utc());
    let v = agent.post("/api/v1/orders", &appeal(STREET_LIGHT, "13800138000"));
    let after = beijing_day(time::OffsetDateTime::now_utc());
    let order = &v.expect(201)["order"];
    assert_eq!(order["status"], "accepted", "{v}");
    assert_eq!(order["created_by"], "wang.fang", "{v}");
    let no = order["order_no"].as_str().unwrap();
    assert!(
        no.len() == 14 && no.bytes().all(|b| b.is_ascii_digit()),
        "order number {no:?} is not YYYYMMDD + 6 digits"
    );
    assert!(
        no[..8] == before || no[..8] == after,
        "{no} is not numbered on today's date ({before})"
    );
    assert_eq!(&no[8..], "000001");
    let second = create(&agent, &appeal(MANHOLE, "13800138000"));
    assert_eq!(second[..8], no[..8]);
    assert_eq!(&second[8..], "000002");

    let good = appeal(STREET_LIGHT, "13800138000");
    let mut bad_phone = good.clone();
    bad_phone["citizen"]["phone"] = json!("12");
    let mut bad_category = good.clone();
    bad_category["category"] = json!("019999");
    let mut bad_division = good.clone();
    bad_division["division"] = json!("999999");
    let mut unknown_field = good.clone();
    unknown_field["colour"] = json!("red");
    let mut bad_channel = good.clone();
    bad_channel["channel"] = json!("fax");
    let mut no_content = good.clone();
    no_content.as_object_mut().unwrap().remove("content");
    for (body, field) in [
        (bad_phone, "citizen.phone"),
        (bad_category, "category"),
        (bad_division, "division"),
        (unknown_field, "colour"),
        (bad_channel, "channel"),
        (no_content, "content"),
    ] {
        let v = agent.post("/api/v1/orders", &body);
        assert_eq!(v.field(), field, "{body}: {v}");
    }
    // None of the refused appeals made an order.
    assert_eq!(listed(&agent, "").len(), 2);
}

#[test]
fn online_appeals_are_idempotent_per_key() {
    let server = Server::start("orders-appeals", &[]);
    let portal = Client::new(&server, &user(&server, "web-portal", "agent", None));
    let mut body = appeal(SPOILED_FOOD, "13900139000");
    body["channel"] = json!("web");

    let first = portal.post_keyed("/api/v1/appeals", "web-7f3a", &body);
    let no = first.expect(201)["order"]["order_no"].clone();
    assert_eq!(first.json["order"]["intake"]["channel"], "web", "{first}");
    assert_eq!(first.json["order"]["status"], "accepted", "{first}");
    assert_eq!(first.header("idempotent-replayed"), None, "{first:?}");

    // The portal retries: the same order, said to be a replay.
    let again = portal.post_keyed("/api/v1/appeals", "web-7f3a", &body);
    assert_eq!(again.expect(200)["order"]["order_no"], no, "{again}");
    assert_eq!(
        again.header("idempotent-replayed"),
        Some("true"),
        "{again:?}"
    );

    // The key reused for another appeal is refused.
    let mut other = body.clone();
    other["content"] = json!("另一件事");
    portal
        .post_keyed("/api/v1/appeals", "web-7f3a", &other)
        .error(422);

    // A key is required, and phone appeals come from calls.
    let v = portal.post("/api/v1/appeals", &body);
    assert_eq!(v.field(), "Idempotency-Key", "{v}");
    let mut phone = body.clone();
    phone["channel"] = json!("phone");
    let v = portal.post_keyed("/api/v1/appeals", "web-7f3b", &phone);
    assert_eq!(v.field(), "channel", "{v}");

    let all = listed(&portal, "");
    assert_eq!(all, [no.as_str().unwrap()], "one order for one appeal");
}

#[test]
fn units_see_and_act_on_their_own_orders_only() {
    let server = Server::start("orders-units", &[]);
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let dispatcher = Client::new(&server, &user(&server, "li.lei", "dispatcher", None));
    let urban = Client::new(
        &server,
        &user(&server, "cg-01", "unit_handler", Some(URBAN)),
    );
    let market = Client::new(
        &server,
        &user(&server, "scj-01", "unit_handler", Some(MARKET)),
    );
    let no = create(&agent, &appeal(STREET_LIGHT, "13800138000"));

    // The agent takes appeals but does not dispatch.
    let body = json!({"lead": URBAN});
    let v = agent.post(&format!("/api/v1/orders/{no}/dispatch"), &body);
    assert!(v.error(403).contains("dispatch"), "{v}");
    // A unit does not see the order before it is dispatched to it.
    let v = urban.post(&format!("/api/v1/orders/{no}/dispatch"), &body);
    v.error(404);
    let order = dispatch(&dispatcher, &no, URBAN, &[]);
    assert_eq!(order["status"], "dispatched");
    // Once it does, it still may not dispatch.
    let v = urban.post(&format!("/api/v1/orders/{no}/dispatch"), &body);
    v.error(403);

    // Another unit: the order does not exist for it.
    market.get(&format!("/api/v1/orders/{no}")).error(404);
    market
        .post(&format!("/api/v1/orders/{no}/sign"), &json!({}))
        .error(404);
    assert!(listed(&market, "").is_empty());
    let v = market.get(&format!("/api/v1/orders?unit={URBAN}"));
    v.error(403);
    // ...nor may a unit act in another's name.
    let v = urban.post(
        &format!("/api/v1/orders/{no}/sign"),
        &json!({"unit": MARKET}),
    );
    v.error(403);

    // Its own unit sees it, in the listing too, and signs.
    let v = urban.get(&format!("/api/v1/orders/{no}"));
    assert_eq!(v.expect(200)["order"]["order_no"], no.as_str());
    assert_eq!(listed(&urban, ""), [no.as_str()]);
    assert_eq!(listed(&urban, &format!("?unit={URBAN}")), [no.as_str()]);
    let order = act(&urban, &no, "sign", json!({}));
    assert_eq!(order["status"], "handling");
    assert_eq!(order["assignments"][0]["state"], "signed");

    // Steps out of turn: 409 with the reason, and nothing changes.
    let path = format!("/api/v1/orders/{no}/sign");
    let v = urban.post(&path, &json!({}));
    assert!(v.error(409).contains("already signed"), "{v}");
    let v = urban.post(
        &format!("/api/v1/orders/{no}/reply"),
        &json!({"text": "已修复"}),
    );
    assert!(v.error(409).contains("contact"), "{v}");
    let v = dispatcher.post(&format!("/api/v1/orders/{no}/dispatch"), &body);
    assert!(v.error(409).contains("handling"), "{v}");
    assert_eq!(
        actions(&audit(&dispatcher, &no)),
        ["create", "dispatch", "sign"]
    );
}

#[test]
fn personal_data_is_masked_for_units_and_lists_and_unmasked_reads_are_audited() {
    let server = Server::start("orders-mask", &[]);
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let dispatcher = Client::new(&server, &user(&server, "li.lei", "dispatcher", None));
    let urban = Client::new(
        &server,
        &user(&server, "cg-01", "unit_handler", Some(URBAN)),
    );
    let market = Client::new(
        &server,
        &user(&server, "scj-01", "unit_handler", Some(MARKET)),
    );
    let no = create(&agent, &appeal(STREET_LIGHT, "13800138000"));
    dispatch(&dispatcher, &no, URBAN, &[]);
    let masked = json!({"name": "张*", "phone": "138****8000", "confidential": false});

    // The unit: masked, even when it asks for personal data.
    for path in [
        format!("/api/v1/orders/{no}"),
        format!("/api/v1/orders/{no}?personal=true"),
    ] {
        let v = urban.get(&path);
        assert_eq!(v.expect(200)["order"]["intake"]["citizen"], masked, "{v}");
        assert!(!v.text.contains("13800138000"), "{path}: {v}");
    }
    let v = urban.get("/api/v1/orders");
    assert_eq!(v.expect(200)["orders"][0]["intake"]["citizen"], masked);
    assert!(!v.text.contains("13800138000"), "{v}");

    // The hotline: masked in lists and by default...
    let v = dispatcher.get("/api/v1/orders");
    assert_eq!(v.expect(200)["orders"][0]["intake"]["citizen"], masked);
    let v = dispatcher.get(&format!("/api/v1/orders/{no}"));
    assert_eq!(v.expect(200)["order"]["intake"]["citizen"], masked);
    assert!(
        !actions(&audit(&dispatcher, &no)).contains(&"read_personal_data"),
        "masked reads are not personal-data reads"
    );
    // ...and in full when asked, which the audit log records.
    let v = dispatcher.get(&format!("/api/v1/orders/{no}?personal=true"));
    let citizen = &v.expect(200)["order"]["intake"]["citizen"];
    assert_eq!(citizen["phone"], "13800138000", "{v}");
    assert_eq!(citizen["name"], "张三", "{v}");
    let entries = audit(&dispatcher, &no);
    assert_eq!(
        actions(&entries),
        ["create", "dispatch", "read_personal_data"]
    );
    let read = entries.last().unwrap();
    assert_eq!(read["actor"], "li.lei", "{read}");
    assert_eq!(read["role"], "dispatcher", "{read}");
    assert_eq!(
        read["changes"]["read"],
        json!(["citizen.name", "citizen.phone"])
    );

    // A report (举报): the unit never learns who made it.
    let mut report = appeal(SPOILED_FOOD, "13700137000");
    report["appeal_type"] = json!("report");
    report["citizen"]["name"] = json!("李四");
    let reported = create(&agent, &report);
    dispatch(&dispatcher, &reported, MARKET, &[]);
    let v = market.get(&format!("/api/v1/orders/{reported}?personal=true"));
    let citizen = &v.expect(200)["order"]["intake"]["citizen"];
    assert_eq!(citizen["name"], Value::Null, "{v}");
    assert_eq!(citizen["phone"], Value::Null, "{v}");
    assert_eq!(citizen["identity_hidden"], true, "{v}");
    let v = market.get("/api/v1/orders");
    let listed = &v.expect(200)["orders"][0];
    assert_eq!(listed["order_no"], reported.as_str());
    assert_eq!(listed["intake"]["citizen"]["phone"], Value::Null, "{v}");
    for text in ["13700137000", "137****7000", "李"] {
        assert!(!v.text.contains(text), "{text} shown to the unit: {v}");
    }
    // The hotline still sees the reporter (masked).
    let v = dispatcher.get(&format!("/api/v1/orders/{reported}"));
    assert_eq!(
        v.expect(200)["order"]["intake"]["citizen"]["phone"],
        "137****7000"
    );
    // A unit cannot find a reporter by guessing numbers.
    let v = market.get("/api/v1/orders?phone=13700137000");
    assert_eq!(v.status, 403, "{v}");
    assert!(!v.text.contains(&reported), "{v}");

    // The audit log masks the citizen too, unless asked (and that read is
    // audited in turn).
    let v = dispatcher.get(&format!("/api/v1/orders/{reported}/audit"));
    assert!(!v.text.contains("13700137000"), "{v}");
    assert_eq!(
        v.expect(200)["entries"][0]["changes"]["created"]["intake"]["citizen"]["phone"],
        "137****7000"
    );
    let v = dispatcher.get(&format!("/api/v1/orders/{reported}/audit?personal=true"));
    assert_eq!(v.status, 200, "{v}");
    assert!(v.text.contains("13700137000"), "{v}");
    let entries = audit(&dispatcher, &reported);
    let last = entries.last().unwrap();
    assert_eq!(last["action"], "read_personal_data", "{last}");
    assert_eq!(last["changes"]["read"], json!(["audit"]));
}

#[test]
fn listing_filters_and_pages() {
    // Dispatch is due at once, so every order still waiting for it is overdue.
    let server = Server::start(
        "orders-filters",
        &[
            ("orders", "sweep_secs = 0"),
            ("orders.limits", "dispatch = \"0h\""),
        ],
    );
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let dispatcher = Client::new(&server, &user(&server, "li.lei", "dispatcher", None));
    let made: Vec<String> = [
        (STREET_LIGHT, "13800138001"),
        (MANHOLE, "13800138002"),
        (SPOILED_FOOD, "13800138003"),
        (ROOM_TOO_COLD, "13800138004"),
        (PROPERTY, "13800138005"),
    ]
    .iter()
    .map(|(category, phone)| create(&agent, &appeal(category, phone)))
    .collect();
    let [light, manhole, food, cold, property] = [0, 1, 2, 3, 4].map(|i| made[i].clone());
    dispatch(&dispatcher, &light, URBAN, &[]);
    dispatch(&dispatcher, &manhole, URBAN, &[]);
    dispatch(&dispatcher, &food, MARKET, &[]);
    std::thread::sleep(Duration::from_millis(20));

    let cases: Vec<(String, Vec<&String>)> = vec![
        ("status=dispatched".into(), vec![&light, &manhole, &food]),
        ("status=accepted".into(), vec![&cold, &property]),
        ("status=closed".into(), vec![]),
        (format!("unit={URBAN}"), vec![&light, &manhole]),
        (format!("unit={MARKET}"), vec![&food]),
        (format!("unit={HEATING}"), vec![]),
        ("overdue=false".into(), vec![&light, &manhole, &food]),
        ("overdue=true".into(), vec![&cold, &property]),
        ("category=0107".into(), vec![&light, &manhole]),
        (
            "category=01".into(),
            vec![&light, &manhole, &cold, &property],
        ),
        (format!("category={ROOM_TOO_COLD}"), vec![&cold]),
        ("phone=13800138003".into(), vec![&food]),
        (
            "status=dispatched&category=01&overdue=false".into(),
            vec![&light, &manhole],
        ),
    ];
    for (query, want) in cases {
        let got = listed(&dispatcher, &format!("?{query}"));
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(sorted(got), sorted(want), "?{query}");
    }
    let v = dispatcher.get("/api/v1/orders?status=lost");
    assert_eq!(v.field(), "status", "{v}");

    // Pages of two, newest first, each order once.
    let mut pages = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let v = dispatcher.get(&format!("/api/v1/orders{query}"));
        let page = numbers(&v.expect(200)["orders"]);
        assert!(page.len() <= 2, "{v}");
        pages.push(page);
        match v.json["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages.len() < 5, "pagination does not end: {v}");
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(pages.concat(), newest_first);
    // Filters page too.
    let v = dispatcher.get("/api/v1/orders?category=01&limit=3");
    assert_eq!(numbers(&v.expect(200)["orders"]), [property, cold, manhole]);
    let cursor = v.json["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let rest = listed(
        &dispatcher,
        &format!("?category=01&limit=3&cursor={cursor}"),
    );
    assert_eq!(rest, [light]);
}

/// A server on `db`, named in `[store] database_url` so the `users` CLI
/// finds the database through the config too.
fn pg_server(db: &TempDb, name: &str) -> Server {
    let store = format!("database_url = \"{}\"", db.url());
    Server::start(name, &[("store", &store)])
}

/// Ends every session on the database (the server's pool must reconnect).
fn kick(db: &TempDb) {
    db.admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
        db.name
    ));
}

/// New sessions may read but not write (a standby after a failover).
fn read_only(db: &TempDb, on: bool) {
    let setting = if on {
        "SET default_transaction_read_only = on"
    } else {
        "RESET default_transaction_read_only"
    };
    db.admin(&format!("ALTER DATABASE {0} {setting}", db.name));
    kick(db);
}

/// A request that must be answered 503 with a JSON error, quickly.
fn unavailable(what: &str, request: impl FnOnce() -> Answer) -> String {
    let started = Instant::now();
    let v = request();
    let took = started.elapsed();
    let message = v.error(503).to_owned();
    assert!(
        took < Duration::from_secs(15),
        "{what}: the 503 took {took:?}"
    );
    message
}

#[test]
fn orders_answer_503_while_the_database_is_away_and_work_again_after() {
    let db = TempDb::new("orders_outage");
    let server = pg_server(&db, "orders-pg-outage");
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let first = create(&agent, &appeal(STREET_LIGHT, "13800138000"));

    db.outage();
    let message = unavailable("intake", || {
        agent.post("/api/v1/orders", &appeal(MANHOLE, "13800138000"))
    });
    assert!(
        message.contains("database") || message.contains("unavailable"),
        "{message}"
    );
    unavailable("reading an order", || {
        agent.get(&format!("/api/v1/orders/{first}"))
    });
    assert_eq!(server.get("/healthz").0, 200, "the server stays up");

    db.restore();
    let second = create(&agent, &appeal(MANHOLE, "13800138000"));
    assert_eq!(second[..8], first[..8]);
    assert_eq!(&second[8..], "000002", "the refused intake took no number");
    assert_eq!(sorted(listed(&agent, "")), [first, second]);
}

#[test]
fn order_writes_on_a_read_only_database_answer_503_and_change_nothing() {
    let db = TempDb::new("orders_ro");
    let server = pg_server(&db, "orders-pg-readonly");
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let dispatcher = Client::new(&server, &user(&server, "li.lei", "dispatcher", None));
    let first = create(&agent, &appeal(STREET_LIGHT, "13800138000"));

    // Tokens can still be checked; the writes themselves fail.
    read_only(&db, true);
    let message = unavailable("intake", || {
        agent.post("/api/v1/orders", &appeal(MANHOLE, "13800138000"))
    });
    assert!(message.contains("nothing was changed"), "{message}");
    unavailable("dispatch", || {
        dispatcher.post(
            &format!("/api/v1/orders/{first}/dispatch"),
            &json!({"lead": URBAN}),
        )
    });
    let v = agent.get(&format!("/api/v1/orders/{first}"));
    assert_eq!(v.expect(200)["order"]["status"], "accepted", "{v}");

    read_only(&db, false);
    let second = create(&agent, &appeal(MANHOLE, "13800138000"));
    assert_eq!(&second[8..], "000002", "the refused intake took no number");
    dispatch(&dispatcher, &first, URBAN, &[]);
    assert_eq!(actions(&audit(&dispatcher, &first)), ["create", "dispatch"]);
}

/// The handling clock of `unit` that is still running.
fn handle_clock(order: &Value, unit: &str) -> Value {
    order["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|c| c["kind"] == "handle" && c["unit"] == unit && c["stopped_at"].is_null())
        .cloned()
        .unwrap_or_else(|| panic!("no running handle clock for {unit}: {order}"))
}

fn assignment<'a>(order: &'a Value, unit: &str) -> &'a Value {
    order["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|a| a["unit"] == unit)
        .unwrap_or_else(|| panic!("{unit} has no part: {order}"))
}

/// One order from intake to archive over HTTP, with a co-handler, an
/// extension, a reply sent back and a rework; then its audit log.
fn whole_lifecycle(server: &Server) {
    let agent = Client::new(server, &user(server, "wang.fang", "agent", None));
    let dispatcher = Client::new(server, &user(server, "li.lei", "dispatcher", None));
    let heating = Client::new(
        server,
        &user(server, "rl-01", "unit_handler", Some(HEATING)),
    );
    let housing = Client::new(
        server,
        &user(server, "zj-01", "unit_handler", Some(HOUSING)),
    );
    let no = create(&agent, &appeal(ROOM_TOO_COLD, "13800138000"));

    let order = dispatch(&dispatcher, &no, HEATING, &[HOUSING]);
    assert_eq!(order["status"], "dispatched");
    assert_eq!(assignment(&order, HEATING)["role"], "lead");
    assert_eq!(assignment(&order, HOUSING)["role"], "co_handler");

    // The co-handler signs and reports to the lead.
    act(&housing, &no, "sign", json!({}));
    let order = act(&housing, &no, "report", json!({"text": "已配合检查管网"}));
    assert_eq!(assignment(&order, HOUSING)["state"], "reported");
    assert_eq!(order["status"], "dispatched");

    // The lead signs, contacts the citizen, asks for two more days.
    let order = act(&heating, &no, "sign", json!({}));
    assert_eq!(order["status"], "handling");
    act(&heating, &no, "contact", json!({"note": "已电话联系"}));
    let due = handle_clock(&order, HEATING)["due_at"].as_i64().unwrap();
    let order = act(
        &heating,
        &no,
        "extension",
        json!({"working_days": 2, "reason": "需更换换热站阀门"}),
    );
    assert_eq!(order["extensions"][0]["state"], "pending");
    let v = dispatcher.post(
        &format!("/api/v1/orders/{no}/extension/decision"),
        &json!({"unit": HEATING, "approve": true}),
    );
    let order = v.expect(200)["order"].clone();
    let clock = handle_clock(&order, HEATING);
    assert_eq!(clock["original_due_at"], due, "{clock}");
    let extended = clock["due_at"].as_i64().unwrap();
    assert!(extended >= due + 2 * 86_400_000, "{clock}");
    assert_eq!(order["extensions"][0]["due_before"], due);
    assert_eq!(order["extensions"][0]["due_after"], extended);

    // The reply; the review sends it back (saying why), the lead completes it.
    let order = act(&heating, &no, "reply", json!({"text": "已处理"}));
    assert_eq!(order["status"], "replied");
    let path = format!("/api/v1/orders/{no}/review");
    let v = dispatcher.post(&path, &json!({"accept": false}));
    assert_eq!(v.field(), "note", "{v}");
    let order = act(
        &dispatcher,
        &no,
        "review",
        json!({"accept": false, "note": "未说明室温复测结果"}),
    );
    assert_eq!(order["status"], "handling");
    assert_eq!(handle_clock(&order, HEATING)["due_at"], extended);
    let order = act(
        &heating,
        &no,
        "reply",
        json!({"text": "已更换阀门，复测室温 20℃"}),
    );
    assert_eq!(order["status"], "replied");
    let order = act(&dispatcher, &no, "review", json!({"accept": true}));
    assert_eq!(order["status"], "closed");

    // Unsatisfied at follow-up: rework.
    let order = act(
        &agent,
        &no,
        "follow-up",
        json!({"reached": true, "resolved": false, "satisfaction": "unsatisfied"}),
    );
    assert_eq!(order["status"], "handling");
    assert_eq!(order["rework_count"], 1);
    assert_eq!(assignment(&order, HEATING)["state"], "signed");

    act(&heating, &no, "contact", json!({}));
    act(
        &heating,
        &no,
        "reply",
        json!({"text": "已再次上门，室温达标"}),
    );
    let order = act(&dispatcher, &no, "review", json!({"accept": true}));
    assert_eq!(order["status"], "closed");
    let order = act(
        &agent,
        &no,
        "follow-up",
        json!({"reached": true, "resolved": true, "satisfaction": "satisfied"}),
    );
    assert_eq!(order["status"], "archived");
    assert!(order["archived_at"].is_i64(), "{order}");
    let v = dispatcher.get(&format!("/api/v1/orders/{no}"));
    assert_eq!(v.expect(200)["order"]["status"], "archived");
    assert_eq!(v.json["order"]["rework_count"], 1);

    // One audit entry per step, by whom it was taken; refusals left none.
    let entries = audit(&dispatcher, &no);
    let steps: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("create", "wang.fang"),
            ("dispatch", "li.lei"),
            ("sign", "zj-01"),
            ("report", "zj-01"),
            ("sign", "rl-01"),
            ("contact", "rl-01"),
            ("request_extension", "rl-01"),
            ("decide_extension", "li.lei"),
            ("reply", "rl-01"),
            ("review", "li.lei"),
            ("reply", "rl-01"),
            ("review", "li.lei"),
            ("follow_up", "wang.fang"),
            ("contact", "rl-01"),
            ("reply", "rl-01"),
            ("review", "li.lei"),
            ("follow_up", "wang.fang"),
        ]
    );
    let status_change = |i: usize| entries[i]["changes"]["status"]["after"].clone();
    assert_eq!(status_change(1), "dispatched");
    assert_eq!(status_change(12), "handling");
    assert_eq!(status_change(16), "archived");
}

#[test]
fn whole_lifecycle_over_http_on_sqlite() {
    let server = Server::start("orders-life", &[]);
    whole_lifecycle(&server);
}

#[test]
fn whole_lifecycle_over_http_on_postgres() {
    let db = TempDb::new("orders_life");
    let server = pg_server(&db, "orders-pg-life");
    whole_lifecycle(&server);
}
