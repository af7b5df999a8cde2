//! Work orders on the running server, beyond the plain lifecycle: the
//! deadline sweeper recording supervision on its own and announcing it on
//! the order event stream (with unit isolation), an emergency appeal
//! (art. 10) dispatched at once on short limits, and merging a repeat
//! appeal into the first order over the API, both or neither.

mod common;

use common::events::EventStream;
use common::orders::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// 新城区, inside 呼和浩特市 (150100).
const DIVISION: &str = "150102";
/// 不供暖: an emergency category (heating outage), whose dispatch default in
/// 150100 is the heating company with the housing bureau.
const NO_HEATING: &str = "010101";
/// 路灯不亮: urban management alone.
const STREET_LIGHT: &str = "010701";
const URBAN: &str = "hhht-urban";
const MARKET: &str = "hhht-market";

const HOUR_MS: i64 = 3_600_000;

fn appeal(category: &str, phone: &str) -> Value {
    json!({
        "channel": "phone",
        "citizen": {"name": "王五", "phone": phone},
        "appeal_type": "help",
        "category": category,
        "division": DIVISION,
        "content": "家里暖气停了一整天，老人孩子都在家",
    })
}

fn order_no(v: &Value) -> String {
    v["order"]["order_no"].as_str().unwrap().to_owned()
}

#[test]
fn overdue_clocks_are_supervised_and_announced_to_the_right_listeners() {
    // Dispatch is due "at once" (0 h), so an undispatched order is overdue
    // a millisecond after intake; the sweeper runs every second.
    let server = Server::start(
        "orders-sweep",
        &[
            ("orders", "sweep_secs = 1"),
            ("orders.limits", "dispatch = \"0h\""),
        ],
    );
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let dispatcher_token = user(&server, "li.lei", "dispatcher", None);
    let dispatcher = Client::new(&server, &dispatcher_token);
    let market_token = user(&server, "scj-01", "unit_handler", Some(MARKET));
    let hotline_events =
        EventStream::connect_as(&server, "/api/v1/orders/events", &dispatcher_token);
    let unit_events = EventStream::connect_as(&server, "/api/v1/orders/events", &market_token);

    let v = agent.post("/api/v1/orders", &appeal(STREET_LIGHT, "13800138000"));
    let no = order_no(v.expect(201));
    let supervised = hotline_events
        .wait_for(Duration::from_secs(10), |e| {
            e["order_no"] == no.as_str() && e["kind"] == "supervised"
        })
        .unwrap_or_else(|| panic!("no supervision announced\n{}", server.log()));
    assert_eq!(supervised["detail"], "dispatch is overdue");

    // On the order: one supervision of the dispatch clock, by the
    // scheduler, audited as such; the sweep does not repeat it.
    std::thread::sleep(Duration::from_millis(2500));
    let v = dispatcher.get(&format!("/api/v1/orders/{no}"));
    let alerts = v.expect(200)["order"]["alerts"].as_array().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"], "supervise");
    assert_eq!(alerts[0]["clock"], "dispatch");
    assert_eq!(alerts[0]["by"], "scheduler");
    let audit = dispatcher.get(&format!("/api/v1/orders/{no}/audit"));
    let actions: Vec<&str> = audit.expect(200)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "clock_alert"]);

    // The market unit hears nothing of an order it has no part in; once
    // dispatched to it, it hears of that.
    let v = dispatcher.post(
        &format!("/api/v1/orders/{no}/dispatch"),
        &json!({"lead": MARKET, "override_reason": "涉及商户"}),
    );
    v.expect(200);
    let dispatched = unit_events
        .wait_for(Duration::from_secs(5), |e| e["kind"] == "dispatched")
        .expect("the unit hears of its dispatch");
    assert_eq!(dispatched["unit"], MARKET);
    assert!(
        unit_events
            .wait_for(Duration::from_millis(200), |e| e["kind"] == "supervised")
            .is_none(),
        "the unit heard of supervision before it had a part"
    );
    // The hotline heard both.
    assert!(
        hotline_events
            .wait_for(Duration::from_secs(5), |e| e["kind"] == "dispatched")
            .is_some()
    );
}

#[test]
fn an_emergency_appeal_is_dispatched_at_once_on_short_limits() {
    let server = Server::start("orders-emergency", &[("orders", "sweep_secs = 0")]);
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let v = agent.post("/api/v1/orders", &appeal(NO_HEATING, "13800138000"));
    let order = &v.expect(201)["order"];
    assert_eq!(order["intake"]["urgency"], "emergency", "{v}");
    assert_eq!(order["status"], "dispatched", "{v}");
    let lead = order["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"] == "lead")
        .unwrap_or_else(|| panic!("no lead: {v}"));
    assert_eq!(lead["unit"], "hhht-heating");
    let events: Vec<&str> = v.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"emergency"), "{events:?}");
    assert!(events.contains(&"dispatched"), "{events:?}");

    // Sign within 1 h and first feedback within 24 h, wall clock.
    let created = order["created_at"].as_i64().unwrap();
    let due = |kind: &str| {
        order["clocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == kind && c["unit"] == "hhht-heating")
            .unwrap_or_else(|| panic!("no {kind} clock: {v}"))["due_at"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(due("sign"), created + HOUR_MS);
    assert_eq!(due("contact"), created + 24 * HOUR_MS);
    // The dispatch clock stopped the moment it started.
    let dispatch = order["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "dispatch")
        .unwrap();
    assert_eq!(dispatch["stopped_at"], dispatch["started_at"]);
}

#[test]
fn a_repeat_appeal_merges_into_the_first_order_both_or_neither() {
    let server = Server::start("orders-merge", &[("orders", "sweep_secs = 0")]);
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let dispatcher = Client::new(&server, &user(&server, "li.lei", "dispatcher", None));
    let first = order_no(
        agent
            .post("/api/v1/orders", &appeal(STREET_LIGHT, "13800138000"))
            .expect(201),
    );
    dispatcher
        .post(
            &format!("/api/v1/orders/{first}/dispatch"),
            &json!({"lead": URBAN}),
        )
        .expect(200);
    let repeat = order_no(
        agent
            .post("/api/v1/orders", &appeal(STREET_LIGHT, "13800138000"))
            .expect(201),
    );

    // Into an order that does not exist: 404, and the repeat is untouched.
    let v = dispatcher.post(
        &format!("/api/v1/orders/{repeat}/merge"),
        &json!({"into": "20000101000001"}),
    );
    assert_eq!(v.status, 404, "{v}");
    let v = dispatcher.get(&format!("/api/v1/orders/{repeat}"));
    assert_eq!(v.expect(200)["order"]["status"], "accepted");
    // An agent may not merge.
    let v = agent.post(
        &format!("/api/v1/orders/{repeat}/merge"),
        &json!({"into": first}),
    );
    assert_eq!(v.status, 403, "{v}");

    let v = dispatcher.post(
        &format!("/api/v1/orders/{repeat}/merge"),
        &json!({"into": first}),
    );
    let merged = &v.expect(200)["order"];
    assert_eq!(merged["status"], "archived");
    assert_eq!(merged["closing"], json!({"kind": "merged", "into": first}));
    let v = dispatcher.get(&format!("/api/v1/orders/{first}"));
    let kept = &v.expect(200)["order"];
    assert_eq!(kept["merged_from"], json!([repeat]));
    assert_eq!(kept["status"], "dispatched");
    // Each side audited once.
    for (no, action) in [(&repeat, "merge"), (&first, "absorb")] {
        let audit = dispatcher.get(&format!("/api/v1/orders/{no}/audit"));
        let last = audit.expect(200)["entries"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["action"], action, "{no}");
    }
    // A dispatched order is not merged away (409).
    let v = dispatcher.post(
        &format!("/api/v1/orders/{first}/merge"),
        &json!({"into": repeat}),
    );
    assert_eq!(v.status, 409, "{v}");
}
