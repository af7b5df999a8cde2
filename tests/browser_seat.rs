//! Browser seats end to end: the agent desktop (`/agent`) in a real
//! headless Chromium whose fake microphone speaks 1 kHz (the agent's
//! voice), a caller through the real IVR to the operator queue speaking
//! 600 Hz, and 119, the far end of a trunk played by SIPp, speaking
//! 1.4 kHz. Goertzel says who hears whom: on the caller's and 119's RTP as
//! the test receives it, and on the browser's side on what the page's
//! WebRTC connection received, decoded in the page.
//!
//! The seat socket (`/api/v1/webseat`) is also spoken to directly with bad
//! input, and a browser that vanishes mid-call must leave a clean call
//! record and an unregistered seat.

mod common;

use common::conversation::{AGENT_TONE, trunk_server};
use common::desk::*;
use common::media::*;
use common::orders::Client;
use common::trunk::*;
use common::*;
use hotline::call::record::{now_ms, parse_ms};
use hotline::media::g711::Law;
use serde_json::json;
use std::time::Duration;

/// 119's tone.
const FIRE_TONE: f32 = 1400.0;

/// The browser's seat: a demo seat, logged in with its SIP password.
const SEAT: &str = "1001";
const PASSWORD: &str = "hotline-1001";

/// A server with browser seats on and these trunk far ends, none of them
/// health-checked.
fn desk_server(name: &str, ends: &[&TrunkEndpoint]) -> Server {
    let entries: Vec<String> = ends.iter().map(|t| t.entry("options_secs = 0")).collect();
    trunk_server(name, &entries, &[("webseat", "enabled = true")])
}

/// Fails unless the caller heard none of `tone` in `pcm` (at most a
/// thousandth of a party's level), `when` saying when.
fn assert_silent(who: &str, pcm: &[i16], tone: f32, diag: &dyn Fn() -> String) {
    assert!(
        pcm.len() >= 8000,
        "{who} heard only {} samples\n{}",
        pcm.len(),
        diag()
    );
    let level = presence(pcm, tone);
    assert!(
        level < 0.001,
        "{who} hears {tone} Hz at {level:.4} of a party's level\n{}",
        diag()
    );
}

/// A page with no server of ours: two peer connections in the page, the
/// fake microphone on one, and what the other receives decoded by the
/// test's listener. Proves the harness: the tone is found, other tones
/// are not, and a muted microphone is heard as silence.
#[test]
fn the_page_decodes_what_a_peer_connection_receives() {
    let page = LocalPage::serve(
        "<!doctype html><meta charset=\"utf-8\"><title>loopback</title><p>loopback</p>",
    );
    let mut desk = Desk::at(&page.url(), "loopback", AGENT_TONE);
    let none = String::new;
    // Default constraints, as a desk page would ask for a headset.
    let connected = desk.browser.eval_async(
        "(async () => {
           const mic = await navigator.mediaDevices.getUserMedia({audio: true});
           const a = new RTCPeerConnection(), b = new RTCPeerConnection();
           a.onicecandidate = e => e.candidate && b.addIceCandidate(e.candidate);
           b.onicecandidate = e => e.candidate && a.addIceCandidate(e.candidate);
           const remote = new Promise(r => b.ontrack = e => r(e.streams[0]));
           mic.getAudioTracks().forEach(t => a.addTrack(t, mic));
           await a.setLocalDescription();
           await b.setRemoteDescription(a.localDescription);
           await b.setLocalDescription();
           await a.setRemoteDescription(b.localDescription);
           window.hotlineDesk = {pc: b, localStream: mic, remoteStream: await remote};
           return true;
         })()",
    );
    assert_eq!(connected, true);
    // The microphone as the harness gives it to every page.
    let settings = desk
        .browser
        .eval("hotlineDesk.localStream.getAudioTracks()[0].getSettings()");
    assert_eq!(settings["noiseSuppression"], false, "{settings}");
    assert_eq!(settings["autoGainControl"], false, "{settings}");
    desk.listen_to_call(&none);

    let w = desk.listen(2.0);
    desk.hears(
        "the receiving connection",
        &w,
        &[AGENT_TONE],
        &[CALLER_TONE, FIRE_TONE],
        &none,
    );
    // The statistics the failure messages show. (Chromium runs with
    // its audio output muted, so the levels it reports are 0.)
    let stats = desk.stats();
    let inbound = &stats["inbound"][0];
    assert!(
        inbound["packetsReceived"]
            .as_f64()
            .is_some_and(|p| p > 50.0)
            && inbound["bytesReceived"].as_f64().is_some_and(|b| b > 0.0),
        "getStats() shows no audio received: {stats:#}"
    );
    assert_eq!(inbound["codec"], "audio/opus", "{stats:#}");

    // The microphone muted: the same analysis hears nothing.
    desk.browser
        .eval("hotlineDesk.localStream.getAudioTracks()[0].enabled = false");
    let w = desk.listen(1.5);
    let heard = desk.heard(&w);
    let page = desk.describe();
    assert_silent(
        "the receiving connection, muted",
        &heard,
        AGENT_TONE,
        &|| page.clone(),
    );
}

/// Issue "Browser agent seat": a browser seat logs in and is available; a
/// caller who pressed 0 is offered to it with the screen pop; the agent
/// answers and both hear each other; mute and hold silence the agent; the
/// agent files an order linked to the call; brings in 119, and all three
/// hear each other; drops 119; the caller hangs up and the agent ends the
/// wrap-up. Screenshots of the desk are kept.
#[test]
fn a_browser_seat_answers_files_an_order_and_brings_in_119() {
    let fire = TrunkEndpoint::start("119", Law::Alaw, FIRE_TONE);
    let server = desk_server("browser-seat", &[&fire]);
    let log = || format!("{}--- server log ---\n{}", fire.messages(), server.log());
    let mut desk = Desk::open(&server, "browser-seat", "/agent", AGENT_TONE);

    // 1. Logged in: available on the page and for the ACD.
    desk.log_in(SEAT, PASSWORD, &log);
    desk.expect_status("available", &log);
    wait_seat(
        &server,
        SEAT,
        "is not available and registered after the browser logged in",
        |s| s["status"] == "available" && s["registered"] == true,
        &log,
    );
    let token = desk.desk_field("token");
    let token = token
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("no API token in hotlineDesk: {token}"))
        .to_owned();
    desk.browser.keep_screenshot("browser-seat-login");

    // A break and back, from the desk's buttons.
    set_break_reason(&mut desk, "培训");
    desk.browser.click("#btn-break");
    desk.expect_status("on_break", &log);
    wait_seat(
        &server,
        SEAT,
        "is not on a break",
        |s| s["status"] == "on_break",
        &log,
    );
    desk.browser.click("#btn-available");
    desk.expect_status("available", &log);
    wait_seat(
        &server,
        SEAT,
        "is not available after the break",
        |s| s["status"] == "available",
        &log,
    );
    // The agent answers by hand.
    if desk
        .browser
        .eval("document.querySelector('#auto-answer').checked")
        == true
    {
        desk.browser.click("#auto-answer");
    }

    // 2. A caller asks for the operator and is offered to the browser.
    let (call, caller, keys) = dial(&server);
    let diag = || format!("--- caller {}{}", caller.describe(), log());
    to_operator(&keys, &call);
    desk.expect_call_state("ringing", &diag);
    desk.wait_shown("#call-panel", "no screen pop while it rings", &diag);
    assert_eq!(
        desk.desk_field("callerCallId"),
        call.call_id.as_str(),
        "the ring names another call"
    );
    check_screen_pop(&mut desk);
    desk.browser.keep_screenshot("browser-seat-ringing");

    desk.browser.click("#btn-answer");
    desk.expect_call_state("connected", &diag);
    assert!(
        server.wait_log("caller connected to agent", PAGE),
        "the server did not connect the caller\n{}",
        diag()
    );
    wait_seat(
        &server,
        SEAT,
        "is not in the call",
        |s| s["state"] == "in_call",
        &diag,
    );
    desk.listen_to_call(&diag);
    desk.browser.keep_screenshot("browser-seat-connected");

    let w = desk.listen(2.0);
    let stats = desk.stats();
    eprintln!("the browser's connection: {stats:#}");
    assert_hears(
        "the caller",
        &caller.heard_between(w.from, w.to),
        &[AGENT_TONE],
        &[CALLER_TONE, FIRE_TONE],
        diag,
    );
    desk.hears(
        "the browser",
        &w,
        &[CALLER_TONE],
        &[AGENT_TONE, FIRE_TONE],
        &diag,
    );

    // Muted, the agent is heard by nobody but still hears the caller.
    desk.browser.click("#btn-mute");
    let w = desk.listen(1.5);
    assert_silent(
        "the caller, with the agent muted",
        &caller.heard_between(w.from, w.to),
        AGENT_TONE,
        &diag,
    );
    desk.hears(
        "the browser, muted",
        &w,
        &[CALLER_TONE],
        &[AGENT_TONE, FIRE_TONE],
        &diag,
    );
    desk.browser.click("#btn-mute");
    // Chrome's audio processing takes a moment to let a steady tone
    // through again after the track is re-enabled; wait for it.
    let mut w = desk.listen(1.5);
    for _ in 0..5 {
        if presence(&caller.heard_between(w.from, w.to), AGENT_TONE) > 0.1 {
            break;
        }
        w = desk.listen(1.5);
    }
    assert_hears(
        "the caller, with the agent unmuted",
        &caller.heard_between(w.from, w.to),
        &[AGENT_TONE],
        &[CALLER_TONE, FIRE_TONE],
        diag,
    );

    // On hold the caller no longer hears the agent; back, they do.
    desk.browser.click("#btn-hold");
    desk.expect_call_state("held", &diag);
    let w = desk.listen(1.5);
    assert_silent(
        "the caller, on hold",
        &caller.heard_between(w.from, w.to),
        AGENT_TONE,
        &diag,
    );
    desk.browser.click("#btn-hold");
    desk.expect_call_state("connected", &diag);
    desk.listen_to_call(&diag);
    let w = desk.listen(1.5);
    assert_hears(
        "the caller, back from hold",
        &caller.heard_between(w.from, w.to),
        &[AGENT_TONE],
        &[CALLER_TONE, FIRE_TONE],
        diag,
    );
    desk.hears(
        "the browser, back from hold",
        &w,
        &[CALLER_TONE],
        &[AGENT_TONE, FIRE_TONE],
        &diag,
    );

    // 3. The order, filed from the desk during the call.
    let order_no = file_order(&mut desk, &diag);
    let answer = Client::new(&server, &token).get(&format!("/api/v1/orders/{order_no}"));
    let order = answer.expect(200)["order"].clone();
    let intake = &order["intake"];
    assert_eq!(intake["category"], "010701", "{order:#}");
    assert_eq!(intake["appeal_type"], "help", "{order:#}");
    // The desk puts the title in front of the content.
    assert_eq!(
        intake["content"],
        format!("【路灯不亮】{ORDER_CONTENT}"),
        "{order:#}"
    );
    let linked = &intake["calls"][0];
    assert_eq!(
        linked["call_id"],
        call.call_id.as_str(),
        "the order is not linked to the caller's call: {order:#}"
    );
    assert_eq!(linked["seat"], SEAT, "{order:#}");

    // 4. 119 brought in: all three hear each other.
    desk.browser.click("#btn-conf-119");
    assert!(
        server.wait_log("transfer target answered", PAGE),
        "119 did not answer the three-way call\n{}",
        diag()
    );
    let invite = fire.invite();
    assert!(
        invite.starts_with("INVITE sip:119@127.0.0.1"),
        "{invite}\n{}",
        diag()
    );
    desk.browser.wait_until(
        "document.querySelector('#conf-state')?.textContent.trim() !== ''",
        PAGE,
        "the desk does not show the three-way call",
        &diag,
    );
    desk.listen_to_call(&diag);
    let w = desk.listen(2.5);
    assert_hears(
        "the caller in the three-way call",
        &caller.heard_between(w.from, w.to),
        &[AGENT_TONE, FIRE_TONE],
        &[CALLER_TONE],
        diag,
    );
    assert_hears(
        "119 in the three-way call",
        &fire.media.heard_between(w.from, w.to),
        &[CALLER_TONE, AGENT_TONE],
        &[FIRE_TONE],
        diag,
    );
    desk.hears(
        "the browser in the three-way call",
        &w,
        &[CALLER_TONE, FIRE_TONE],
        &[AGENT_TONE],
        &diag,
    );
    desk.browser.keep_screenshot("browser-seat-three-way");

    // 119 dropped from the desk: caller and agent carry on.
    desk.browser.click("#btn-conf-drop");
    assert!(
        fire.wait_message("BYE sip:", PAGE),
        "119 was not hung up\n{}",
        diag()
    );
    let w = desk.listen(1.5);
    assert_hears(
        "the caller after 119 was dropped",
        &caller.heard_between(w.from, w.to),
        &[AGENT_TONE],
        &[CALLER_TONE, FIRE_TONE],
        diag,
    );
    desk.hears(
        "the browser after 119 was dropped",
        &w,
        &[CALLER_TONE],
        &[AGENT_TONE, FIRE_TONE],
        &diag,
    );

    // The caller hangs up; the agent wraps up and is free again.
    call.bye();
    desk.expect_call_state("ended", &diag);
    wait_seat(
        &server,
        SEAT,
        "is not wrapping up after the call",
        |s| s["state"] == "wrap_up",
        &diag,
    );
    desk.browser.click("#btn-wrapup-done");
    wait_seat(
        &server,
        SEAT,
        "is not idle after the wrap-up",
        |s| s["state"] == "idle" && s["status"] == "available",
        &diag,
    );
    desk.expect_status("available", &diag);

    let record = server.call_record(&call.call_id);
    assert_eq!(record["seat"], SEAT, "{record:#}");
    assert_eq!(record["end_reason"], "caller-bye", "{record:#}");
    assert!(!record["connected_at"].is_null(), "{record:#}");
    let conference = &record["transfers"][0];
    assert_eq!(conference["kind"], "conference", "{record:#}");
    assert_eq!(conference["target"], "119", "{record:#}");
    assert_eq!(conference["result"], "answered", "{record:#}");
    assert_eq!(conference["by"], SEAT, "{record:#}");
    drop(caller);
}

/// The break reason: typed, or the first reason offered when the desk
/// lists them.
fn set_break_reason(desk: &mut Desk, reason: &str) {
    let kind = desk
        .browser
        .eval("document.querySelector('#break-reason')?.tagName ?? null");
    match kind.as_str() {
        Some("SELECT") => {
            desk.browser.eval(
                "(el => { el.value = Array.from(el.options).find(o => o.value).value; \
                 el.dispatchEvent(new Event('change', {bubbles: true})); })\
                 (document.querySelector('#break-reason'))",
            );
        }
        Some(_) => desk.browser.type_into("#break-reason", reason),
        None => panic!("the desk has no #break-reason"),
    }
}

/// The screen pop while it rings: who calls (masked or not, as the role
/// wants), the way through the IVR, the queue and the wait, and the
/// caller's history (empty for a first call, but there).
fn check_screen_pop(desk: &mut Desk) {
    let from = desk.browser.text("#call-from").unwrap_or_default();
    assert!(
        from.contains("138") && from.contains("8000"),
        "#call-from shows {from:?}, not the caller 13800138000"
    );
    for field in ["#call-ivr-path", "#call-queue", "#call-wait"] {
        let text = desk.browser.text(field);
        assert!(
            text.as_deref().is_some_and(|t| !t.is_empty()),
            "the screen pop shows nothing in {field}: {text:?}"
        );
        eprintln!("screen pop {field}: {text:?}");
    }
    for field in ["#earlier-calls", "#open-orders"] {
        assert!(
            desk.browser.text(field).is_some(),
            "the screen pop has no {field}"
        );
    }
}

const ORDER_CONTENT: &str = "小区门口路灯连续三晚不亮，夜间出行不便，请尽快维修。";

/// Fills in and submits the desk's order form; returns the order number
/// the desk shows.
fn file_order(desk: &mut Desk, diag: &dyn Fn() -> String) -> String {
    let b = &mut desk.browser;
    b.type_into("#order-phone", "13800138000");
    b.select("#order-category", &["010701", "路灯不亮"]);
    b.select("#order-type", &["help", "求助"]);
    b.select("#order-division", &["150102", "新城区"]);
    b.type_into("#order-title", "路灯不亮");
    b.type_into("#order-content", ORDER_CONTENT);
    b.type_into("#order-location", "新城区海东路12号");
    b.type_into("#order-name", "王女士");
    b.click("#btn-submit-order");
    let no = poll(PAGE, Duration::from_millis(100), || {
        b.attribute("#order-result", "data-order-no")
            .filter(|no| !no.is_empty())
    });
    let no = no.unwrap_or_else(|| {
        let (shown, console) = (b.text("#order-result"), b.console());
        panic!(
            "the desk shows no order number after submitting; #order-result: {shown:?}\n\
             page console:\n{console}\n{}",
            diag()
        )
    });
    eprintln!("order filed from the desk: {no}");
    no
}

/// The seat socket spoken to directly: a message before login, a wrong
/// password, malformed and unknown messages, a call that does not exist,
/// a second login of the same seat; the socket stays usable after each
/// error, and its token works in the API while it is open.
#[test]
fn the_seat_socket_refuses_bad_input() {
    let server = desk_server("webseat-socket", &[]);

    let mut early = SeatSocket::connect(&server);
    early.send(json!({"type": "answer", "call": "c1"}));
    early.expect_error("not_logged_in", "answer before login");

    let mut wrong = SeatSocket::connect(&server);
    wrong.send(json!({"type": "login", "seat": SEAT, "password": "not-the-password"}));
    wrong.expect_error("login_failed", "a wrong password");
    assert!(
        !server
            .get(&format!("/api/v1/seats/{SEAT}"))
            .1
            .contains("\"registered\":true"),
        "a wrong password registered the seat"
    );

    let mut first = SeatSocket::connect(&server);
    first.send(json!({"type": "login", "seat": SEAT, "password": PASSWORD}));
    let welcome = first.expect("welcome", "the right password");
    assert_eq!(welcome["seat"], SEAT, "{welcome}");
    assert!(
        welcome["role"].as_str().is_some_and(|r| !r.is_empty()),
        "{welcome}"
    );
    assert!(welcome["masked"].is_boolean(), "{welcome}");
    let token = welcome["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("no token: {welcome}"))
        .to_owned();
    wait_seat(
        &server,
        SEAT,
        "is not registered and available after a socket logged in",
        |s| s["registered"] == true && s["status"] == "available",
        &|| server.log(),
    );
    let orders = Client::new(&server, &token).get("/api/v1/orders?phone=13800138000");
    assert_eq!(orders.status, 200, "the socket's token: {orders}");

    // Bad messages are refused one by one; the socket stays usable.
    for (bad, what) in [
        ("{\"type\": \"hangup\", ", "malformed JSON"),
        ("[1, 2, 3]", "JSON that is not an object"),
        ("{\"call\": \"c1\"}", "a message without a type"),
        ("{\"type\": \"dance\"}", "an unknown type"),
        ("{\"type\": \"hangup\"}", "a hangup without a call"),
    ] {
        first.send_text(bad);
        first.expect_error("bad_message", what);
        first.send(json!({"type": "ping"}));
        first.expect("pong", &format!("a ping after {what}"));
    }
    first.send(json!({"type": "hangup", "call": "no-such-call"}));
    first.expect_error("no_call", "a hangup of a call the seat does not have");
    first.send(json!({"type": "ping"}));
    first.expect("pong", "a ping after no_call");

    // A second login of the seat takes over; the first socket is closed.
    let mut second = SeatSocket::connect(&server);
    second.send(json!({"type": "login", "seat": SEAT, "password": PASSWORD}));
    let welcome = second.expect("welcome", "a second login");
    first.expect_error("replaced", "the first socket after a second login");
    assert!(
        first.wait_closed(Duration::from_secs(5)),
        "the replaced socket stays open: {:#?}",
        first.received
    );
    let token = welcome["token"].as_str().unwrap_or_default().to_owned();

    // Closing the socket unbinds the seat and ends its token.
    second.close();
    wait_seat(
        &server,
        SEAT,
        "is still registered after its socket closed",
        |s| s["registered"] == false && s["status"] == "logged_out",
        &|| server.log(),
    );
    let orders = Client::new(&server, &token).get("/api/v1/orders?phone=13800138000");
    assert_eq!(orders.status, 401, "a closed socket's token: {orders}");
}

/// Chromium killed in the middle of a call: the server notices the socket
/// gone, hangs up the agent's leg (the caller stops hearing the agent),
/// the seat is no longer registered, and the caller's call record ends
/// cleanly with the agent's leg ended when the browser went.
#[test]
fn a_vanished_browser_ends_its_call_cleanly() {
    let server = desk_server("browser-seat-vanished", &[]);
    let log = || server.log();
    let mut desk = Desk::open(&server, "browser-seat-vanished", "/agent", AGENT_TONE);
    desk.log_in(SEAT, PASSWORD, &log);
    desk.expect_status("available", &log);
    if desk
        .browser
        .eval("document.querySelector('#auto-answer').checked")
        == true
    {
        desk.browser.click("#auto-answer");
    }

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
    desk.browser.click("#btn-answer");
    desk.expect_call_state("connected", &diag);
    let w = desk.listen(1.5);
    assert_hears(
        "the caller before the browser vanished",
        &caller.heard_between(w.from, w.to),
        &[AGENT_TONE],
        &[CALLER_TONE],
        diag,
    );

    let vanished = now_ms();
    desk.browser.kill();
    let seat = wait_seat(
        &server,
        SEAT,
        "is still registered or in the call after the browser vanished",
        |s| s["registered"] == false && s["status"] == "logged_out" && s["state"] != "in_call",
        &diag,
    );
    eprintln!("the seat after the browser vanished: {seat}");
    std::thread::sleep(Duration::from_millis(500));
    let from = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(1_500));
    assert_silent(
        "the caller after the browser vanished",
        &caller.heard_between(from, std::time::Instant::now()),
        AGENT_TONE,
        &diag,
    );

    // The caller leaves (a BYE the server may already have sent first).
    let left = now_ms();
    call.bye();
    let record = server.call_record(&call.call_id);
    assert_eq!(record["seat"], SEAT, "{record:#}\n{}", diag());
    assert!(
        ["caller-bye", "seat-lost"].contains(&record["end_reason"].as_str().unwrap_or("")),
        "the call ended as {}: {record:#}",
        record["end_reason"]
    );
    let time = |key: &str| -> i64 {
        record[key]
            .as_str()
            .and_then(parse_ms)
            .unwrap_or_else(|| panic!("no {key} in {record:#}"))
    };
    let (connected, seat_ended, ended) = (
        time("connected_at"),
        time("seat_ended_at"),
        time("ended_at"),
    );
    assert!(
        connected < vanished && (vanished..=left).contains(&seat_ended) && seat_ended <= ended,
        "connected {connected}, browser gone {vanished}, seat leg ended {seat_ended}, \
         caller left {left}, call ended {ended}: {record:#}"
    );
    drop(caller);
}
