//! The agent desktop's call actions in a real headless Chromium whose fake
//! microphone speaks 1 kHz (the agent's voice), with a caller through the
//! real IVR to the operator queue speaking 600 Hz: the keypad's digits
//! reach the far end as RFC 4733 telephone-events, a blind transfer from
//! the directory hands the caller to a unit's line (SIPp, 1.4 kHz, found
//! by Goertzel on both sides), the agent leaves a three-way call with 119
//! to the caller and the line, a rejected ring goes to another seat, a
//! direct answer from the knowledge base closes the call's order, and
//! the caller's number is masked on the page for a role that may not see
//! it.

mod common;

use common::browser::js_string;
use common::conversation::{AGENT_TONE, trunk_server};
use common::desk::*;
use common::media::*;
use common::orders::{Client, user};
use common::rtc_client::{RtcSeat, opus_tone};
use common::trunk::*;
use common::*;
use hotline::media::g711::Law;
use serde_json::{Value, json};
use std::time::Duration;

/// The far end of a unit's line, or 119.
const LINE_TONE: f32 = 1400.0;

const SEAT: &str = "1001";
const PASSWORD: &str = "hotline-1001";

/// A server with browser seats on and these trunk far ends, none of them
/// health-checked.
fn desk_server(name: &str, ends: &[&TrunkEndpoint]) -> Server {
    let entries: Vec<String> = ends.iter().map(|t| t.entry("options_secs = 0")).collect();
    trunk_server(name, &entries, &[("webseat", "enabled = true")])
}

/// The agent desktop logged in as `seat`, available, answering by hand
/// or (`auto_answer`) by itself.
fn agent_desk(
    server: &Server,
    name: &str,
    seat: &str,
    password: &str,
    auto_answer: bool,
    diag: &dyn Fn() -> String,
) -> Desk {
    let mut desk = Desk::open(server, name, "/agent", AGENT_TONE);
    desk.log_in(seat, password, diag);
    desk.expect_status("available", diag);
    wait_seat(
        server,
        seat,
        "is not available and registered after the browser logged in",
        |s| s["status"] == "available" && s["registered"] == true,
        diag,
    );
    let ticked = desk
        .browser
        .eval("document.querySelector('#auto-answer').checked");
    if ticked != auto_answer {
        desk.browser.click("#auto-answer");
    }
    desk
}

/// After the answer: waits for the server to connect the caller, starts
/// decoding in the page, and waits until the caller hears the agent (the
/// fake microphone's Opus takes a moment to come through).
fn connected(desk: &mut Desk, server: &Server, caller: &ToneMedia, diag: &dyn Fn() -> String) {
    desk.expect_call_state("connected", diag);
    assert!(
        server.wait_log("caller connected to agent", PAGE),
        "the server did not connect the caller\n{}",
        diag()
    );
    desk.listen_to_call(diag);
    let mut w = desk.listen(1.0);
    for _ in 0..5 {
        if presence(&caller.heard_between(w.from, w.to), AGENT_TONE) > 0.1 {
            break;
        }
        w = desk.listen(1.0);
    }
    assert_hears(
        "the caller",
        &caller.heard_between(w.from, w.to),
        &[AGENT_TONE],
        &[CALLER_TONE, LINE_TONE],
        diag,
    );
}

/// Clicks the keypad's keys one by one.
fn press_keys(desk: &mut Desk, keys: &str) {
    for key in keys.chars() {
        desk.browser
            .click(&format!("[data-dtmf={}]", js_string(&key.to_string())));
    }
}

/// Waits until `media` has received `want` as telephone-events; fails
/// with what it got.
fn expect_keys(who: &str, media: &ToneMedia, want: &str, diag: &dyn Fn() -> String) {
    let got = poll(PAGE, Duration::from_millis(100), || {
        (media.keys() == want).then_some(())
    });
    assert!(
        got.is_some(),
        "{who} received the keys {:?} as telephone-events, not {want:?}\n{}",
        media.keys(),
        diag()
    );
}

/// Issue "agent desktop": the keypad's keys reach the caller as RFC 4733
/// telephone-events, one event per click and in order, and are not taken
/// for the caller's own keys; then a unit's line chosen in the directory
/// takes the caller by blind transfer: the agent's leg ends, caller and
/// the line hear each other, and the record keeps the transfer. The desk
/// answers by itself (自动应答).
#[test]
fn the_keypad_reaches_the_caller_and_a_blind_transfer_hands_them_to_a_unit() {
    let water = TrunkEndpoint::start("hhht-water", Law::Alaw, LINE_TONE);
    let server = desk_server("desk-keys-transfer", &[&water]);
    let log = || format!("{}--- server log ---\n{}", water.messages(), server.log());
    let mut desk = agent_desk(&server, "desk-keys-transfer", SEAT, PASSWORD, true, &log);

    let (call, caller, keys) = dial(&server);
    let diag = || {
        format!(
            "--- caller {}--- line {}{}",
            caller.describe(),
            water.media.describe(),
            log()
        )
    };
    to_operator(&keys, &call);
    connected(&mut desk, &server, &caller, &diag);

    // 1. The keypad.
    press_keys(&mut desk, "50*#9");
    expect_keys("the caller", &caller, "50*#9", &diag);
    desk.browser.keep_screenshot("desk-actions-keypad");

    // 2. A blind transfer to the water company's line, from the directory.
    desk.browser.wait_until(
        "!!document.querySelector('#transfer-target option[value=\"hhht-water\"]')",
        PAGE,
        "the directory does not offer the water company",
        &diag,
    );
    desk.browser.select("#transfer-target", &["hhht-water"]);
    desk.browser.click("#btn-transfer");
    assert!(
        server.wait_log("transfer target answered", PAGE),
        "the water company's line did not answer\n{}",
        diag()
    );
    let invite = water.invite();
    assert!(
        invite.starts_with("INVITE sip:hhht-water@127.0.0.1"),
        "{invite}\n{}",
        diag()
    );
    desk.browser.wait_until(
        "(el => el.dataset.target === 'hhht-water' && \
         ['answered', 'ended'].includes(el.dataset.state))(document.querySelector('#conf-state'))",
        PAGE,
        "the desk does not show the transfer answered",
        &diag,
    );
    // The agent's part is over; the caller and the line talk.
    desk.expect_call_state("ended", &diag);
    let w = desk.listen(2.0);
    assert_hears(
        "the caller after the transfer",
        &caller.heard_between(w.from, w.to),
        &[LINE_TONE],
        &[CALLER_TONE, AGENT_TONE],
        diag,
    );
    assert_hears(
        "the water company after the transfer",
        &water.media.heard_between(w.from, w.to),
        &[CALLER_TONE],
        &[LINE_TONE, AGENT_TONE],
        diag,
    );
    desk.browser.keep_screenshot("desk-actions-transferred");
    // The keys went to the caller, not to the line they were sent on to.
    assert_eq!(water.media.keys(), "", "{}", diag());

    call.bye();
    assert!(
        water.wait_message("BYE sip:", PAGE),
        "the line was not hung up with the caller\n{}",
        diag()
    );
    let record = server.call_record(&call.call_id);
    assert_eq!(record["seat"], SEAT, "{record:#}");
    // The caller's own keys only: the agent's went out, not in.
    assert_eq!(record["digits"], "0", "{record:#}");
    let transfer = &record["transfers"][0];
    for (key, want) in [
        ("kind", "blind"),
        ("target", "hhht-water"),
        ("result", "answered"),
        ("by", SEAT),
        ("via", "api"),
    ] {
        assert_eq!(transfer[key], want, "transfers[0].{key}: {record:#}");
    }
    drop(caller);
}

/// A three-way call with 119 (a line that takes keys) brought in from the
/// desk.
fn three_way_with_119(name: &str) -> (TrunkEndpoint, Server) {
    let fire = TrunkEndpoint::taking_keys("119", Law::Alaw, LINE_TONE);
    let server = desk_server(name, &[&fire]);
    (fire, server)
}

/// Brings 119 in from the desk and checks all three hear each other.
fn bring_in_119(
    desk: &mut Desk,
    server: &Server,
    fire: &TrunkEndpoint,
    caller: &ToneMedia,
    diag: &dyn Fn() -> String,
) {
    desk.browser.click("#btn-conf-119");
    assert!(
        server.wait_log("transfer target answered", PAGE),
        "119 did not answer the three-way call\n{}",
        diag()
    );
    desk.wait_attribute("#conf-state", "data-state", "answered", diag);
    let w = desk.listen(1.5);
    assert_hears(
        "119 in the three-way call",
        &fire.media.heard_between(w.from, w.to),
        &[CALLER_TONE, AGENT_TONE],
        &[LINE_TONE],
        diag,
    );
    assert_hears(
        "the caller in the three-way call",
        &caller.heard_between(w.from, w.to),
        &[AGENT_TONE, LINE_TONE],
        &[CALLER_TONE],
        diag,
    );
}

/// 坐席退出三方 on the desk: the agent leaves a three-way call with 119,
/// the desk's call ends, caller and 119 go on talking, and now the
/// caller's keys reach 119 (the server gives a caller's key to the agent
/// while there is one, else to the line). This also shows the line takes
/// telephone-events, for the test below.
#[test]
fn the_agent_leaves_a_three_way_call_and_the_caller_keys_into_the_line() {
    let (fire, server) = three_way_with_119("desk-leave");
    let log = || format!("{}--- server log ---\n{}", fire.messages(), server.log());
    let mut desk = agent_desk(&server, "desk-leave", SEAT, PASSWORD, true, &log);
    let (call, caller, keys) = dial(&server);
    let diag = || {
        format!(
            "--- caller {}--- 119 {}{}",
            caller.describe(),
            fire.media.describe(),
            log()
        )
    };
    let mut seq = to_operator(&keys, &call);
    connected(&mut desk, &server, &caller, &diag);
    bring_in_119(&mut desk, &server, &fire, &caller, &diag);

    desk.browser.click("#btn-conf-leave");
    assert!(
        server.wait_log("agent left the three-way call", PAGE),
        "the agent did not leave\n{}",
        diag()
    );
    desk.expect_call_state("ended", &diag);
    desk.wait_attribute("#conf-state", "data-state", "ended", &diag);
    let w = desk.listen(1.5);
    assert_hears(
        "the caller after the agent left",
        &caller.heard_between(w.from, w.to),
        &[LINE_TONE],
        &[CALLER_TONE, AGENT_TONE],
        diag,
    );
    assert_hears(
        "119 after the agent left",
        &fire.media.heard_between(w.from, w.to),
        &[CALLER_TONE],
        &[LINE_TONE, AGENT_TONE],
        diag,
    );
    press(&keys, call.server_rtp, '7', 960_000, &mut seq);
    expect_keys("119", &fire.media, "7", &diag);

    call.bye();
    let record = server.call_record(&call.call_id);
    let conference = &record["transfers"][0];
    assert_eq!(conference["kind"], "conference", "{record:#}");
    assert_eq!(conference["target"], "119", "{record:#}");
    assert_eq!(conference["result"], "answered", "{record:#}");
    assert_eq!(record["digits"], "07", "{record:#}");
    drop(caller);
}

/// The keypad during a three-way call with 119: the keys go to the line
/// brought in (a line with a menu of its own, as units' lines have; the
/// test above shows this one takes telephone-events), not to the caller.
#[test]
fn the_keypad_reaches_a_line_brought_into_a_three_way_call() {
    let (fire, server) = three_way_with_119("desk-keys-three-way");
    let log = || format!("{}--- server log ---\n{}", fire.messages(), server.log());
    let mut desk = agent_desk(&server, "desk-keys-three-way", SEAT, PASSWORD, true, &log);
    let (call, caller, keys) = dial(&server);
    let diag = || {
        format!(
            "--- caller {}--- 119 {}{}",
            caller.describe(),
            fire.media.describe(),
            log()
        )
    };
    to_operator(&keys, &call);
    connected(&mut desk, &server, &caller, &diag);
    bring_in_119(&mut desk, &server, &fire, &caller, &diag);

    press_keys(&mut desk, "12#");
    expect_keys("119", &fire.media, "12#", &diag);
    // They were for the line's menu: the caller is not beeped at.
    assert_eq!(
        caller.keys(),
        "",
        "the caller got the line's keys\n{}",
        diag()
    );
    call.bye();
    drop(caller);
}

/// A ring the agent rejects (拒接) goes back to the queue and on to the
/// next seat that comes free: 1002, a browser seat of the `webrtc` crate,
/// takes it and talks with the caller. The agent's desk shows the whole
/// number while it rings (an agent may see it), and the call ended; the
/// seat log keeps 1001's offer, the record names 1002.
#[test]
fn a_rejected_ring_goes_to_another_seat() {
    let server = desk_server("desk-reject", &[]);
    let log = || server.log();
    let mut desk = agent_desk(&server, "desk-reject", SEAT, PASSWORD, false, &log);
    assert_eq!(desk.desk_field("role"), "agent");
    assert_eq!(desk.desk_field("masked"), false);

    let (call, caller, keys) = dial(&server);
    let diag = || {
        format!(
            "--- caller {}--- server log ---\n{}",
            caller.describe(),
            log()
        )
    };
    to_operator(&keys, &call);
    desk.expect_call_state("ringing", &diag);
    assert_eq!(
        desk.desk_field("callerCallId"),
        call.call_id.as_str(),
        "the ring names another call"
    );
    // An agent sees the number whole.
    desk.browser.wait_until(
        "document.querySelector('#call-from').textContent.trim() === '13800138000'",
        PAGE,
        "#call-from does not show the caller's number whole",
        &diag,
    );
    assert_eq!(desk.browser.attribute("#call-from", "data-masked"), None);
    assert_eq!(
        desk.browser
            .eval("document.querySelector('#order-phone').value"),
        "13800138000"
    );
    desk.browser.keep_screenshot("desk-actions-ringing-agent");

    desk.browser.click("#btn-reject");
    desk.expect_call_state("ended", &diag);
    assert!(
        server.wait_log("seat did not take the call", PAGE),
        "the server did not see the seat decline\n{}",
        diag()
    );
    assert!(
        server
            .log()
            .lines()
            .any(|l| l.contains("seat did not take the call") && l.contains("status=603")),
        "the decline is not a 603\n{}",
        diag()
    );
    // The caller is queued again and 1001 left alone a while.
    wait_seat(
        &server,
        SEAT,
        "is not idle after rejecting",
        |s| s["state"] == "idle" && s["status"] == "available",
        &diag,
    );
    desk.expect_status("available", &diag);

    // Seat 1002 comes in and is rung with the same call.
    let second_tone = 1400.0;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut other = rt.block_on(RtcSeat::login(server.http, "1002", "hotline-1002"));
    let ring =
        rt.block_on(other.take_call(opus_tone(second_tone, 1.0), false, Duration::from_secs(15)));
    assert_eq!(ring["caller_call_id"], call.call_id.as_str(), "{ring}");
    rt.block_on(other.wait_for("connected", Duration::from_secs(10)));
    let mut heard = Vec::new();
    let talking = poll(PAGE, Duration::from_millis(500), || {
        let w = desk.listen(1.0);
        heard = caller.heard_between(w.from, w.to);
        (presence(&heard, second_tone) > 0.1).then_some(())
    });
    assert!(
        talking.is_some(),
        "the caller does not hear seat 1002\n{}",
        diag()
    );
    assert_hears(
        "the caller with seat 1002",
        &heard,
        &[second_tone],
        &[CALLER_TONE, AGENT_TONE],
        diag,
    );
    // 1001's desk took no part.
    assert_eq!(
        desk.browser
            .attribute("#call-state", "data-state")
            .as_deref(),
        Some("ended")
    );

    call.bye();
    rt.block_on(other.wait_for("ended", Duration::from_secs(10)));
    let record = server.call_record(&call.call_id);
    assert_eq!(record["seat"], "1002", "{record:#}");
    assert_eq!(record["end_reason"], "caller-bye", "{record:#}");
    // 1001's seat log: offered, never in the call.
    let changes = poll(PAGE, Duration::from_millis(200), || {
        let (status, body) = server.get(&format!("/api/v1/seats/{SEAT}/history"));
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let rows = v["changes"].as_array().cloned().unwrap_or_default();
        rows.iter()
            .any(|r| r["activity"] == "offered")
            .then_some(rows)
    })
    .unwrap_or_else(|| panic!("seat 1001's log shows no offer\n{}", diag()));
    assert!(
        changes.iter().all(|r| r["activity"] != "in_call"),
        "seat 1001 was in the call it rejected: {changes:#?}"
    );
    drop(caller);
}

/// Issue "knowledge base at the desk": during a call the agent searches
/// the knowledge base and clicks 直接答复 on the entry found. The page
/// files the call's order (with the entry's category and division, the
/// form being empty) and closes it as answered directly with the entry's
/// live answer; the entry counts a hit.
#[test]
fn a_direct_answer_from_the_knowledge_base_closes_the_calls_order() {
    let server = desk_server("desk-kb", &[]);
    let log = || server.log();
    let sup = Client::new(&server, &user(&server, "kbsup", "supervisor", None));
    const ANSWER: &str = "通过国家医保服务平台App办理异地就医备案，备案后住院费用直接结算。";
    let created = sup.post(
        "/api/v1/kb",
        &json!({
            "title": "异地就医备案",
            "question": "外地看病住院，医保怎么报销？",
            "answer": ANSWER,
            "source": {
                "issuer": "呼和浩特市医疗保障局",
                "number": "呼医保发〔2025〕12号",
                "effective": "2025-01-01"
            },
            "category": "030202",
            "division": "150100",
            "unit": "hhht-medsec",
        }),
    );
    let entry = created.expect(201)["entry"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no entry id: {created}"))
        .to_owned();
    for step in ["submit", "approve", "publish"] {
        sup.post(&format!("/api/v1/kb/{entry}/{step}"), &json!({}))
            .expect(200);
    }
    let before = hotline::call::record::now_ms();

    let mut desk = agent_desk(&server, "desk-kb", SEAT, PASSWORD, true, &log);
    let (call, caller, keys) = dial(&server);
    let diag = || {
        format!(
            "--- caller {}--- server log ---\n{}",
            caller.describe(),
            log()
        )
    };
    to_operator(&keys, &call);
    connected(&mut desk, &server, &caller, &diag);

    desk.browser.type_into("#kb-query", "外地看病怎么报销");
    desk.browser.click("#btn-kb-search");
    let hit = format!("#kb-results li[data-entry={}]", js_string(&entry));
    desk.browser.wait_until(
        &format!("!!document.querySelector({})", js_string(&hit)),
        PAGE,
        "the search does not list the published entry",
        &diag,
    );
    desk.browser.keep_screenshot("desk-actions-kb");
    desk.browser.click(&format!("{hit} .kb-answer"));
    desk.wait_attribute("#order-result", "data-closing", "direct_answer", &diag);
    let no = desk
        .browser
        .attribute("#order-result", "data-order-no")
        .filter(|no| !no.is_empty())
        .unwrap_or_else(|| panic!("no order number on #order-result\n{}", diag()));
    desk.browser.keep_screenshot("desk-actions-direct-answer");

    let read = sup.get(&format!("/api/v1/orders/{no}?personal=true"));
    let order = read.expect(200)["order"].clone();
    assert_eq!(order["status"], "closed", "{order:#}");
    assert_eq!(
        order["closing"],
        json!({"kind": "direct_answer", "kb_entry": entry, "answer": ANSWER}),
        "{order:#}"
    );
    let intake = &order["intake"];
    assert_eq!(intake["category"], "030202", "{order:#}");
    assert_eq!(intake["division"], "150100", "{order:#}");
    assert_eq!(
        intake["calls"][0]["call_id"],
        call.call_id.as_str(),
        "{order:#}"
    );
    assert_eq!(intake["calls"][0]["seat"], SEAT, "{order:#}");
    assert_eq!(intake["citizen"]["phone"], "13800138000", "{order:#}");

    let hot = sup.get(&format!("/api/v1/kb/hot?from={before}&limit=5"));
    let topics = hot.expect(200)["topics"].clone();
    assert_eq!(topics[0]["entry_id"], entry.as_str(), "{hot}");
    assert_eq!(topics[0]["hits"], 1, "{hot}");
    assert_eq!(topics.as_array().map(Vec::len), Some(1), "{hot}");

    call.bye();
    desk.expect_call_state("ended", &diag);
    drop(caller);
}

/// A seat whose API user is a unit handler may not see citizens' numbers:
/// the ring shows the caller's number masked (`#call-from` with
/// `data-masked`, and in the order form), as the seat's events do.
#[test]
fn a_unit_handler_seat_sees_the_caller_number_masked() {
    let server = desk_server("desk-masked", &[]);
    let log = || server.log();
    user(&server, "1004", "unit_handler", Some("hhht-water"));
    let mut desk = agent_desk(&server, "desk-masked", "1004", "hotline-1004", false, &log);
    assert_eq!(desk.desk_field("role"), "unit_handler");
    assert_eq!(desk.desk_field("masked"), true);

    let (call, caller, keys) = dial(&server);
    let diag = || {
        format!(
            "--- caller {}--- server log ---\n{}",
            caller.describe(),
            log()
        )
    };
    to_operator(&keys, &call);
    desk.expect_call_state("ringing", &diag);
    // The screen pop's offer, once in, must not unmask it either.
    desk.browser.wait_until(
        "document.querySelector('#call-queue').textContent.trim() === 'operator'",
        PAGE,
        "the screen pop does not show the queue",
        &diag,
    );
    let shown = desk.browser.text("#call-from").unwrap_or_default();
    assert_eq!(shown, "138****8000", "#call-from\n{}", diag());
    assert_eq!(
        desk.browser
            .attribute("#call-from", "data-masked")
            .as_deref(),
        Some("")
    );
    assert_eq!(
        desk.browser
            .eval("document.querySelector('#order-phone').value"),
        "138****8000"
    );
    let page = desk.browser.eval("document.body.innerText");
    assert!(
        !page.as_str().unwrap_or_default().contains("13800138000"),
        "the page shows the whole number somewhere: {page}"
    );
    desk.browser.keep_screenshot("desk-actions-ringing-masked");

    call.bye();
    desk.expect_call_state("ended", &diag);
    drop(caller);
}
