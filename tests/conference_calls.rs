//! Three-way calls and attended transfers with real peers: a caller goes
//! through the real IVR to the operator queue and is answered by seat 1001
//! (baresip, µ-law, 1 kHz); the agent brings in 119, the far end of a
//! trunk played by SIPp with media on a socket the test owns. Each party
//! speaks its own tone, and Goertzel says who hears whom.

mod common;

use common::conversation::*;
use common::media::*;
use common::seat::*;
use common::trunk::*;
use common::*;
use hotline::media::g711::Law;
use serde_json::Value;
use std::time::{Duration, Instant};

const FIRE_TONE: f32 = 1400.0;
const POLICE_TONE: f32 = 1800.0;

/// The call record once written, with its `n` transfer events; and the last.
fn transfer_event(c: &Conversation, n: usize) -> (Value, Value) {
    let record = c.server.call_record(&c.call.call_id);
    let transfers = record["transfers"]
        .as_array()
        .unwrap_or_else(|| panic!("no transfers in {record}"));
    assert_eq!(transfers.len(), n, "{record}");
    (record.clone(), transfers[n - 1].clone())
}

/// Checks the fields every answered transfer event has.
fn assert_answered_event(event: &Value, kind: &str, target: &str, ending: &str) {
    assert_eq!(event["kind"], kind, "{event}");
    assert_eq!(event["target"], target, "{event}");
    assert_eq!(event["by"], "1001", "{event}");
    assert_eq!(event["via"], "api", "{event}");
    assert_eq!(event["result"], "answered", "{event}");
    assert!(event["status"].is_null(), "{event}");
    assert_eq!(event["ending"], ending, "{event}");
    // Times are RFC 3339, like the rest of the record.
    let ms = |key: &str| {
        event[key]
            .as_str()
            .and_then(hotline::call::record::parse_ms)
            .unwrap_or_else(|| panic!("{key} is not an RFC 3339 time: {event}"))
    };
    let (asked, answered, ended) = (ms("asked_at"), ms("answered_at"), ms("ended_at"));
    assert!(asked <= answered && answered < ended, "{event}");
    assert_eq!(
        event["duration_ms"].as_i64(),
        Some(ended - answered),
        "{event}"
    );
}

/// A server whose trunks are these far ends, none of them health-checked.
fn server_with(name: &str, ends: &[&TrunkEndpoint]) -> Server {
    let entries: Vec<String> = ends.iter().map(|t| t.entry("options_secs = 0")).collect();
    trunk_server(name, &entries, &[])
}

/// Fails unless `trunk` gets a BYE: it was hung up.
fn assert_hung_up(c: &Conversation, trunk: &TrunkEndpoint) {
    assert!(
        trunk.wait_message("BYE sip:", Duration::from_secs(5)),
        "{} was not hung up\n{}",
        trunk.name,
        c.diag()
    );
}

/// Caller (A-law, 600 Hz), agent (µ-law, 1 kHz) and 119 (A-law, 1.4 kHz)
/// in one call: each hears the other two and not itself. The agent leaves;
/// caller and 119 talk on, and the recording follows them.
#[test]
fn three_parties_each_hear_the_other_two() {
    let fire = TrunkEndpoint::start("119", Law::Alaw, FIRE_TONE);
    let server = server_with("conf-three", &[&fire]);
    let c = Conversation::start(&server, &[&fire]);

    let reply = c.bring_in("/conference", "119");
    assert_eq!(reply["call_id"], c.call.call_id.as_str(), "{reply}");
    assert_eq!(reply["kind"], "conference", "{reply}");
    assert_eq!(reply["target"], "119", "{reply}");
    assert!(reply["status"].is_null(), "{reply}");
    assert_eq!(reply["caller_with"], "agent-and-target", "{reply}");
    for line in ["transfer asked", "transfer target answered"] {
        c.expect_log(line, Duration::from_secs(2));
    }
    // The trunk is told who the citizen is, behind the hotline's number.
    let invite = fire.invite();
    assert!(
        invite.starts_with("INVITE sip:119@127.0.0.1"),
        "{invite}\n{}",
        c.diag()
    );
    assert!(
        invite.contains("P-Asserted-Identity: <sip:13800138000@"),
        "no P-Asserted-Identity with the caller's number:\n{invite}"
    );
    let from = invite
        .lines()
        .find(|l| l.starts_with("From:"))
        .unwrap_or("");
    assert!(from.contains("sip:12345@"), "{from}");

    let w = c.listen(2.5);
    w.caller_hears("", &[AGENT_TONE, FIRE_TONE]);
    w.hears("119", &fire.media, &[CALLER_TONE, AGENT_TONE]);

    // The agent leaves: their phone gets a BYE, caller and 119 go on.
    let reply = c.ask("/leave", "");
    assert_eq!(reply["status"], "left", "{reply}");
    c.agent_hung_up();
    c.expect_log("agent left the three-way call", Duration::from_secs(2));
    // The agent is free: wrapping up, no longer in the call.
    let (_, seat) = c.server.get("/api/v1/seats/1001");
    let seat: Value = serde_json::from_str(&seat).unwrap();
    assert_eq!(seat["state"], "wrap_up", "{seat}\n{}", c.diag());
    // The agent's last 2 s in the conference, before the BYE.
    c.agent_hears_before_end("", 2.4, 0.4, &[CALLER_TONE, FIRE_TONE]);

    let w = c.listen(2.0);
    w.caller_hears("after the agent left", &[FIRE_TONE]);
    w.hears("119 after the agent left", &fire.media, &[CALLER_TONE]);

    // The caller hangs up: 119 gets its BYE too.
    c.call.bye();
    assert_hung_up(&c, &fire);
    let (record, event) = transfer_event(&c, 1);
    assert_answered_event(&event, "conference", "119", "caller-left");
    assert_eq!(record["seat"], "1001", "{record}");
    assert!(!record["seat_ended_at"].is_null(), "{record}");
    let path = record["call_recording"]
        .as_str()
        .unwrap_or_else(|| panic!("no recording: {record}\n{}", c.diag()));
    let (left, right) = stereo(path);
    let secs = right.len() as f32 / 8000.0;
    assert!(secs > 5.0, "the recording holds {secs:.1} s: {record}");
    // The end of the call: the caller with 119 alone.
    c.hears(
        "the recording's right channel at the end",
        before_end(&right, 1.8, 0.3),
        &[FIRE_TONE],
    );
    c.hears(
        "the recording's left channel",
        before_end(&left, 1.8, 0.3),
        &[CALLER_TONE],
    );
}

/// 119 hangs up in a three-way call: caller and agent talk on. Then 110 is
/// brought in and dropped by the agent (`DELETE .../conference`): again
/// caller and agent carry on.
#[test]
fn the_target_drops_out_and_agent_and_caller_carry_on() {
    let hangs_up = TrunkAnswer::AnswersThenHangsUp(2_500);
    let fire = TrunkEndpoint::with("119", Law::Ulaw, FIRE_TONE, hangs_up);
    let police = TrunkEndpoint::start("110", Law::Alaw, POLICE_TONE);
    let server = server_with("conf-drop", &[&fire, &police]);
    let c = Conversation::start(&server, &[&fire, &police]);

    c.bring_in("/conference", "119");
    let w = c.listen(1.5);
    w.caller_hears("with 119 on", &[AGENT_TONE, FIRE_TONE]);
    c.expect_log("transfer target left", Duration::from_secs(5));
    let w = c.listen(2.0);
    w.caller_hears("after 119 left", &[AGENT_TONE]);

    // 110 in, then dropped by the agent.
    c.bring_in("/conference", "110");
    let w = c.listen(1.5);
    w.caller_hears("with 110 on", &[AGENT_TONE, POLICE_TONE]);
    c.call_off("/conference");
    assert_hung_up(&c, &police);
    let w = c.listen(2.0);
    w.caller_hears("after 110 was dropped", &[AGENT_TONE]);
    let from = w.from;
    assert!(
        police
            .media
            .last_heard()
            .is_some_and(|at| at < from - Duration::from_millis(300)),
        "110 still gets audio after it was dropped"
    );

    // The agent still hears the caller (the softphone's last 1.5 s).
    c.call.bye();
    c.agent_hung_up();
    c.agent_hears_before_end("at the end", 1.8, 0.3, &[CALLER_TONE]);
    let (record, police_event) = transfer_event(&c, 2);
    assert_answered_event(&record["transfers"][0], "conference", "119", "target-left");
    assert_answered_event(&police_event, "conference", "110", "agent-cancelled");
}

/// Attended transfer: while 119 rings and while the agent consults, the
/// caller hears "please hold" and music and neither of them; agent and
/// 119 hear each other. Completing it hangs up the agent and puts the
/// caller through to 119.
#[test]
fn attended_transfer_over_the_api() {
    let fire = TrunkEndpoint::start("119", Law::Ulaw, FIRE_TONE);
    let server = server_with("conf-attended", &[&fire]);
    let c = Conversation::start(&server, &[&fire]);

    // A first consult the agent calls off: the caller is back with them,
    // the music stopped.
    c.bring_in("/consult", "119");
    std::thread::sleep(Duration::from_millis(500));
    let (status, reply) = c.server.post(&c.path("/leave"), "");
    assert_eq!(status, 409, "leave during a consult: {reply}");
    c.call_off("/consult");
    assert_hung_up(&c, &fire);
    let w = c.listen(2.0);
    w.caller_hears("after the consult was called off", &[AGENT_TONE]);
    assert_only(
        &c,
        "the agent",
        &c.caller.heard_between(w.from, w.to),
        AGENT_TONE,
    );

    let asked = Instant::now();
    let reply = c.bring_in("/consult", "119");
    assert_eq!(reply["kind"], "attended", "{reply}");
    assert_eq!(reply["caller_with"], "hold", "{reply}");
    let w = c.listen(2.5);
    let held = c.caller.heard_between(w.from, w.to);
    for tone in [AGENT_TONE, FIRE_TONE] {
        let level = presence(&held, tone);
        assert!(
            level < 0.001,
            "the held caller hears {tone} Hz at {level:.4} of a party's level\n{}",
            c.diag()
        );
    }
    let rms = (held.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / held.len() as f64).sqrt();
    assert!(rms > 300.0, "the held caller hears silence: RMS {rms:.0}");
    // "Please hold" from the request on, then music.
    let since_asked = c.caller.heard_between(asked, w.to);
    expect_prompt(
        &since_asked,
        "transfer_wait",
        2.0,
        true,
        "the held caller",
        || c.diag(),
    );
    w.hears("119 while consulting", &fire.media, &[AGENT_TONE]);

    let reply = c.ask("/consult/complete", "");
    assert_eq!(reply["status"], "transferred", "{reply}");
    c.expect_log("attended transfer completed", Duration::from_secs(2));
    c.agent_hung_up();
    c.agent_hears_before_end("while consulting", 2.4, 0.4, &[FIRE_TONE]);
    let w = c.listen(2.0);
    w.caller_hears("after the transfer", &[FIRE_TONE]);
    assert_only(&c, "119", &c.caller.heard_between(w.from, w.to), FIRE_TONE);
    w.hears("119 after the transfer", &fire.media, &[CALLER_TONE]);
    c.call.bye();
    assert_hung_up(&c, &fire);
    let (record, event) = transfer_event(&c, 2);
    assert_answered_event(
        &record["transfers"][0],
        "attended",
        "119",
        "agent-cancelled",
    );
    assert_answered_event(&event, "attended", "119", "caller-left");
}

/// Fails if the caller hears more than `who`'s tone (music, say): over 5%
/// of the energy of `heard` elsewhere.
fn assert_only(c: &Conversation, who: &str, heard: &[i16], tone: f32) {
    let rest = others_share(heard, &[tone]);
    assert!(
        rest < 0.05,
        "the caller hears more than {who} ({rest:.3} of the energy): music?\n{}",
        c.diag()
    );
}

/// The API refuses what it cannot do, and failed attempts leave the
/// caller with the agent: unknown call (404), no agent yet (409), bad
/// bodies (400), unknown target (422), a busy trunk (up by its OPTIONS
/// checks), a trunk ringing without answer, one the health checks found
/// down, and a second request while one rings (409) that the agent then
/// calls off.
#[test]
fn transfer_requests_are_checked() {
    let busy = TrunkEndpoint::with("110", Law::Ulaw, POLICE_TONE, TrunkAnswer::Busy);
    let silent = TrunkEndpoint::with("120", Law::Ulaw, FIRE_TONE, TrunkAnswer::NeverAnswers);
    let closed = free_udp_port(1);
    let entries = [
        busy.entry("options_secs = 1"),
        silent.entry("options_secs = 0\nring_secs = 2"),
        trunk_entry("122", closed, "options_secs = 1"),
    ];
    let server = trunk_server("conf-api", &entries, &[]);
    let diag = || {
        format!(
            "{}{}--- server log ---\n{}",
            busy.messages(),
            silent.messages(),
            server.log()
        )
    };
    let post = |path: &str, body: &str| server.post(path, body);

    for (path, body) in [
        (
            "/api/v1/calls/no-such-call/conference",
            r#"{"target":"119"}"#,
        ),
        ("/api/v1/calls/no-such-call/consult", r#"{"target":"119"}"#),
        ("/api/v1/calls/no-such-call/leave", ""),
        ("/api/v1/calls/no-such-call/consult/complete", ""),
    ] {
        let (status, reply) = post(path, body);
        assert_eq!(status, 404, "{path}: {reply}");
    }

    let agent = SippSeat::start(&server, "1002", Answer::Answers, 1);
    let (call, media, keys) = dial(&server);
    let path = |tail: &str| format!("/api/v1/calls/{}{tail}", call.call_id);
    // In the IVR, not with an agent.
    let (status, reply) = post(&path("/conference"), r#"{"target":"110"}"#);
    assert_eq!(status, 409, "{reply}");
    for body in [
        r#"{"target":"119","x":1}"#,
        r#"{"target":"sip:119@127.0.0.1"}"#,
        r#"{}"#,
        "not json",
    ] {
        let (status, reply) = post(&path("/conference"), body);
        assert_eq!(status, 400, "{body}: {reply}");
    }

    to_operator(&keys, &call);
    assert!(
        server.wait_log("caller connected to agent", Duration::from_secs(10)),
        "{}\n{}",
        agent.messages(),
        diag()
    );
    let (status, reply) = post(&path("/conference"), r#"{"target":"nosuchtrunk"}"#);
    assert_eq!(status, 422, "{reply}\n{}", diag());
    for tail in ["/leave", "/consult/complete"] {
        let (status, reply) = post(&path(tail), "");
        assert_eq!(status, 409, "{tail} with no transfer: {reply}");
    }

    let dialled = |target: &str| -> Value {
        let (status, reply) = post(&path("/conference"), &format!(r#"{{"target":"{target}"}}"#));
        assert_eq!(status, 200, "{target}: {reply}\n{}", diag());
        serde_json::from_str(&reply).unwrap()
    };
    let reply = dialled("110");
    assert_eq!(
        (&reply["result"], &reply["status"], &reply["caller_with"]),
        (&"busy".into(), &486.into(), &"agent".into()),
        "{reply}"
    );
    assert!(
        server.wait_log("transfer failed: caller back", Duration::from_secs(2)),
        "{}",
        diag()
    );
    let rang = Instant::now();
    let reply = dialled("120");
    assert_eq!(reply["result"], "no-answer", "{reply}\n{}", diag());
    assert!(reply["status"].is_null(), "{reply}");
    let waited = rang.elapsed();
    assert!(
        (Duration::from_millis(1_800)..Duration::from_secs(5)).contains(&waited),
        "120 rang {waited:?}, not its 2 s"
    );
    // 110 answers its health checks; 122's fail: it is down, and nothing
    // is dialled.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let (_, health) = server.get("/healthz");
        if health.contains("\"trunks_down\":[\"122\"]") && health.contains("\"110\":\"up\"") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", server.get("/healthz").1);
        std::thread::sleep(Duration::from_millis(100));
    }
    let reply = dialled("122");
    assert_eq!(reply["result"], "trunk-down", "{reply}\n{}", diag());

    // While 120 rings, nothing else can start; the agent calls it off.
    let ringing = std::thread::scope(|s| {
        let first = s.spawn(|| dialled("120"));
        assert!(
            silent.wait_message("INVITE sip:120", Duration::from_secs(3)),
            "{}",
            diag()
        );
        std::thread::sleep(Duration::from_millis(300));
        let (status, reply) = post(&path("/consult"), r#"{"target":"110"}"#);
        assert_eq!(status, 409, "a second transfer: {reply}");
        let (status, reply) = post(&path("/leave"), "");
        assert_eq!(status, 409, "leave while ringing: {reply}");
        let (status, reply) = http(server.http, "DELETE", &path("/conference"), "");
        assert_eq!(status, 200, "{reply}\n{}", diag());
        assert!(reply.contains("\"cancelled\""), "{reply}");
        first.join().unwrap()
    });
    assert_eq!(ringing["result"], "cancelled", "{ringing}\n{}", diag());
    call.bye();
    drop(media);

    let record = server.call_record(&call.call_id);
    let events = record["transfers"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(String, String, Value)> = events
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap_or("").to_owned(),
                e["result"].as_str().unwrap_or("").to_owned(),
                e["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("110".into(), "busy".into(), 486.into()),
            ("120".into(), "no-answer".into(), Value::Null),
            ("122".into(), "trunk-down".into(), Value::Null),
            ("120".into(), "cancelled".into(), Value::Null),
        ],
        "{record}"
    );
    for e in &events {
        assert!(e["answered_at"].is_null(), "{e}");
        assert!(!e["ended_at"].is_null(), "{e}");
    }
}

/// Waits for the server's BYE on a raw call and answers it.
fn wait_bye(call: &RawCall, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let Ok((n, from)) = call.sip.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if !text.starts_with("BYE ") {
            continue;
        }
        let mut ok = String::from("SIP/2.0 200 OK\r\n");
        for line in text.lines() {
            if ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                .iter()
                .any(|h| line.starts_with(h))
            {
                ok.push_str(line);
                ok.push_str("\r\n");
            }
        }
        ok.push_str("Content-Length: 0\r\n\r\n");
        call.sip.send_to(ok.as_bytes(), from).unwrap();
        return true;
    }
    false
}

/// Mute in a three-way call: a muted party still hears, but nobody hears
/// them until unmuted. A party that leaves takes its mute with it: the
/// next target is heard.
#[test]
fn muted_parties_are_heard_by_nobody() {
    let fire = TrunkEndpoint::start("119", Law::Ulaw, FIRE_TONE);
    let police = TrunkEndpoint::start("110", Law::Alaw, POLICE_TONE);
    let server = server_with("conf-mute", &[&fire, &police]);
    let c = Conversation::start(&server, &[&fire, &police]);
    c.bring_in("/conference", "119");

    let mute = |party: &str, muted: bool| {
        let body = format!(r#"{{"party":"{party}","muted":{muted}}}"#);
        let reply = c.ask("/mute", &body);
        let want = if muted { "muted" } else { "unmuted" };
        assert_eq!(reply["status"], want, "{reply}");
    };
    mute("target", true);
    let w = c.listen(2.0);
    w.caller_hears("with 119 muted", &[AGENT_TONE]);
    w.hears("119 muted", &fire.media, &[CALLER_TONE, AGENT_TONE]);
    mute("caller", true);
    let w = c.listen(2.0);
    w.hears("119 with the caller muted", &fire.media, &[AGENT_TONE]);
    mute("caller", false);
    mute("target", false);
    let w = c.listen(2.0);
    w.caller_hears("with nobody muted", &[AGENT_TONE, FIRE_TONE]);
    w.hears(
        "119 with nobody muted",
        &fire.media,
        &[CALLER_TONE, AGENT_TONE],
    );
    let (status, reply) = c
        .server
        .post(&c.path("/mute"), r#"{"party":"supervisor","muted":true}"#);
    assert_eq!(status, 409, "no supervisor on the call: {reply}");
    let (status, reply) = c
        .server
        .post(&c.path("/mute"), r#"{"party":"nobody","muted":true}"#);
    assert_eq!(status, 400, "{reply}");

    // 119, muted, is dropped; 110 comes in and is heard.
    mute("target", true);
    c.call_off("/conference");
    c.bring_in("/conference", "110");
    let w = c.listen(2.0);
    w.caller_hears(
        "with a new target after a muted one",
        &[AGENT_TONE, POLICE_TONE],
    );
    c.call.bye();
}

/// The agent hangs up their softphone in a three-way call: caller and 110
/// talk on. When 110 hangs up too, the server ends the caller's call.
#[test]
fn the_agent_hangs_up_and_caller_and_target_talk_on() {
    let hangs_up = TrunkAnswer::AnswersThenHangsUp(7_000);
    let police = TrunkEndpoint::with("110", Law::Alaw, POLICE_TONE, hangs_up);
    let server = server_with("conf-agent-bye", &[&police]);
    let mut c = Conversation::start(&server, &[&police]);
    c.bring_in("/conference", "110");
    let w = c.listen(1.5);
    w.caller_hears("in the three-way call", &[AGENT_TONE, POLICE_TONE]);
    c.ctrl.send("hangup", None);
    c.agent_hung_up();
    c.expect_log(
        "agent left; caller stays with the transfer target",
        Duration::from_secs(3),
    );
    let w = c.listen(1.5);
    w.caller_hears("after the agent hung up", &[POLICE_TONE]);
    w.hears("110 after the agent hung up", &police.media, &[CALLER_TONE]);
    // 110 hangs up (7 s after answering): the caller is let go.
    assert!(
        wait_bye(&c.call, Duration::from_secs(8)),
        "the caller got no BYE after 110 left\n{}",
        c.diag()
    );
    let (record, event) = transfer_event(&c, 1);
    assert_answered_event(&event, "conference", "110", "target-left");
    assert_eq!(record["end_reason"], "target-bye", "{record}");
    c.ctrl.send("quit", None);
    c.agent.wait_exit(Duration::from_secs(5));
}

/// A seat brought into a three-way call is on a call: the ACD must not
/// take it for idle and offer it the next caller meanwhile.
#[test]
fn a_seat_brought_in_is_busy_for_the_queue() {
    let server = server_with("conf-seat", &[]);
    let c = Conversation::start(&server, &[]);
    let colleague = SippSeat::start(c.server, "1002", Answer::Answers, 1);
    let diag = || format!("{}{}", colleague.messages(), c.diag());
    assert!(
        c.server.wait_log(
            "seat changed seat=1002 status=Available",
            Duration::from_secs(5)
        ),
        "{}",
        diag()
    );
    let reply = c.ask("/conference", r#"{"target":"1002"}"#);
    assert_eq!(reply["result"], "answered", "{reply}\n{}", diag());
    let (_, seat) = c.server.get("/api/v1/seats/1002");
    let seat: Value = serde_json::from_str(&seat).unwrap();
    assert_ne!(
        seat["state"],
        "idle",
        "seat 1002 is in a three-way call yet idle for the ACD: {seat}\n{}",
        diag()
    );
    c.call.bye();
}

/// The digest credentials 119's trunk is configured with, and the SIPp
/// far end checks.
const TRUNK_USER: &str = "hotline";
const TRUNK_PASSWORD: &str = "s3cret";

/// 119 challenging every INVITE (401, digest), then taking the one sent
/// again only with `TRUNK_USER`/`TRUNK_PASSWORD`; and a server whose 119
/// trunk holds `password`.
fn challenging_119(name: &str, password: &str) -> (TrunkEndpoint, Server) {
    let answer = TrunkAnswer::Challenges {
        user: TRUNK_USER,
        password: TRUNK_PASSWORD,
    };
    let fire = TrunkEndpoint::with("119", Law::Alaw, FIRE_TONE, answer);
    let extra = format!("options_secs = 0\nusername = \"{TRUNK_USER}\"\npassword = \"{password}\"");
    let server = trunk_server(name, &[fire.entry(&extra)], &[]);
    (fire, server)
}

/// The INVITEs SIPp received, as logged, in order.
fn invites(log: &str) -> Vec<&str> {
    log.match_indices("INVITE sip:")
        .map(|(at, _)| {
            let rest = &log[at..];
            // SIPp separates logged messages with a dashed line.
            &rest[..rest.find("\n----").unwrap_or(rest.len())]
        })
        .collect()
}

/// A trunk with digest credentials: 119 answers the first INVITE with 401,
/// the server sends it again with `Authorization` (SIPp checks the
/// digest), and the three-way call goes ahead as any other.
#[test]
fn a_conference_to_a_challenging_trunk_authenticates() {
    let (fire, server) = challenging_119("conf-auth", TRUNK_PASSWORD);
    let c = Conversation::start(&server, &[&fire]);
    let reply = c.bring_in("/conference", "119");
    assert!(reply["status"].is_null(), "{reply}");
    assert_eq!(reply["caller_with"], "agent-and-target", "{reply}");

    let w = c.listen(2.0);
    w.caller_hears("", &[AGENT_TONE, FIRE_TONE]);
    w.hears("119", &fire.media, &[CALLER_TONE, AGENT_TONE]);

    let log = fire.messages();
    let sent = invites(&log);
    assert_eq!(
        sent.len(),
        2,
        "one challenged INVITE, one authorized:\n{log}"
    );
    assert!(!sent[0].contains("Authorization:"), "{}", sent[0]);
    let authorization = sent[1]
        .lines()
        .find(|l| l.starts_with("Authorization:"))
        .unwrap_or_else(|| panic!("no Authorization in the second INVITE:\n{}", sent[1]));
    for part in [
        "Digest username=\"hotline\"",
        "realm=\"trunk.test\"",
        "nonce=\"4f1d2c3b5a6978e0\"",
        "uri=\"sip:119@127.0.0.1",
        "qop=\"auth\"",
    ] {
        assert!(
            authorization.contains(part),
            "{part} not in {authorization}"
        );
    }
    assert!(log.contains("SIP/2.0 401 Unauthorized"), "{log}");
    assert!(
        !log.contains("SIP/2.0 403"),
        "SIPp refused the digest:\n{log}"
    );

    c.call.bye();
    assert_hung_up(&c, &fire);
    let (_, event) = transfer_event(&c, 1);
    assert_answered_event(&event, "conference", "119", "caller-left");
}

/// The same trunk with a wrong password: 119 refuses the authorized
/// INVITE with 403, the request reports `rejected`, and the caller talks
/// on with the agent.
#[test]
fn a_wrong_trunk_password_is_rejected_and_the_caller_stays_with_the_agent() {
    let (fire, server) = challenging_119("conf-auth-wrong", "wrong-password");
    let c = Conversation::start(&server, &[&fire]);
    let answer = c.ask("/conference", r#"{"target":"119"}"#);
    assert_eq!(answer["kind"], "conference", "{answer}");
    assert_eq!(answer["target"], "119", "{answer}");
    assert_eq!(answer["result"], "rejected", "{answer}\n{}", c.diag());
    assert_eq!(answer["status"], 403, "{answer}");
    assert_eq!(answer["caller_with"], "agent", "{answer}");
    let log = fire.messages();
    let sent = invites(&log);
    assert_eq!(sent.len(), 2, "{log}");
    assert!(
        sent[1].contains("Authorization: Digest username=\"hotline\""),
        "{}",
        sent[1]
    );

    let w = c.listen(1.5);
    w.caller_hears("after 119 refused", &[AGENT_TONE]);
    let record = c.hang_up();
    assert_eq!(record["transfers"][0]["result"], "rejected", "{record}");
    assert_eq!(record["transfers"][0]["status"], 403, "{record}");
}
