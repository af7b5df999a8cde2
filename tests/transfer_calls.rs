//! Transfers and three-way calls to trunks (110, 119, 120, the water
//! company), with real peers: a caller through the real IVR to the
//! operator queue, a baresip softphone as seat 1001, and SIPp trunk
//! endpoints that are busy, never answer, or answer. Whatever the target
//! does, the caller is never dropped: a failed attempt brings them back to
//! the agent (prompt `transfer_failed`, then the agent's voice again, found
//! by decoding what the caller hears), the seat's desktop is told why, and
//! the call record keeps the attempt.

mod common;

use common::conversation::*;
use common::media::*;
use common::seat::{Answer, SippSeat};
use common::trunk::*;
use common::*;
use hotline::media::g711::Law;
use serde_json::{Value, json};
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the far end of a trunk says.
const TRUNK_TONE: f32 = 1400.0;

/// The share of the samples' energy at `freq` (about 1 for a pure tone,
/// near 0 for speech or music).
fn tone_share(samples: &[i16], freq: f32) -> f32 {
    let energy: f32 = samples.iter().map(|&s| f32::from(s) * f32::from(s)).sum();
    if energy == 0.0 {
        return 0.0;
    }
    2.0 * power(samples, freq) / (samples.len() as f32 * energy)
}

/// Checks one failed attempt's answer.
fn assert_failed(answer: &Value, kind: &str, target: &str, result: &str, status: Option<u16>) {
    assert_eq!(answer["kind"], kind, "{answer}");
    assert_eq!(answer["target"], target, "{answer}");
    assert_eq!(answer["result"], result, "{answer}");
    assert_eq!(answer["status"], serde_json::json!(status), "{answer}");
    assert_eq!(answer["caller_with"], "agent", "{answer}");
}

/// Checks a record's transfer event `i`: the fields in `expect` (a JSON
/// object) and a valid `asked_at`.
fn assert_event(record: &Value, i: usize, expect: Value) {
    let events = record["transfers"]
        .as_array()
        .unwrap_or_else(|| panic!("no transfers on the record: {record}"));
    let e = events
        .get(i)
        .unwrap_or_else(|| panic!("no transfer event {i}: {record}"));
    for (key, want) in expect.as_object().unwrap() {
        assert_eq!(&e[key], want, "transfers[{i}].{key}: {e}");
    }
    assert!(
        e["asked_at"]
            .as_str()
            .and_then(hotline::call::record::parse_ms)
            .is_some_and(|t| t > 0),
        "{e}"
    );
}

/// 119 answers 486 twice: a three-way call, then a blind transfer. Each
/// time the request reports `busy` (486) and the desktop gets a failed
/// event. After the blind transfer the caller hears transfer_failed and
/// then the agent again; in the three-way call they never left the agent
/// and hear no prompt. The record keeps both attempts. The requests that cannot be carried out
/// are refused with their status first.
#[test]
fn a_busy_target_brings_the_caller_back_to_the_agent() {
    let busy = TrunkEndpoint::with("119", Law::Ulaw, TRUNK_TONE, TrunkAnswer::Busy);
    let server = trunk_server("transfer-busy", &[busy.entry("options_secs = 0")], &[]);

    // Refusals that need no agent.
    let (status, body) = server.post("/api/v1/calls/no-such-call/transfer", r#"{"target":"119"}"#);
    assert_eq!(status, 404, "{body}");

    let c = Conversation::start(&server, &[&busy]);
    let path = c.path("/transfer");
    for (body, want) in [
        (r#"{"target":"nosuch"}"#, 422),
        (r#"{}"#, 400),
        (r#"{"target":119}"#, 400),
        (r#"{"target":"119","extra":1}"#, 400),
        (r#"{"target":"sip:119@x"}"#, 400),
        ("not json", 400),
    ] {
        let (status, reply) = server.post(&path, body);
        assert_eq!(status, want, "{body} -> {reply}\n{}", c.diag());
    }

    // A three-way call: 119 is busy.
    let (asked, took, answer) = c.ask_timed("/conference", "119");
    let failed = asked + took;
    assert_failed(&answer, "conference", "119", "busy", Some(486));
    assert_eq!(answer["call_id"], c.call.call_id.as_str(), "{answer}");
    assert!(took < Duration::from_secs(3), "busy took {took:?}");
    let event = c.desktop_transfer("119", "failed");
    assert_eq!(event["result"], "busy", "{event}");
    assert_eq!(event["kind"], "conference", "{event}");
    assert_eq!(event["seat"], "1001", "{event}");
    assert_eq!(event["call_id"], c.call.call_id.as_str(), "{event}");
    c.expect_log("transfer failed: caller back", Duration::from_secs(2));
    // The caller never left the agent for a three-way call: no prompt,
    // the conversation simply goes on.
    std::thread::sleep(Duration::from_millis(1_500));
    let heard = c.caller.heard_between(failed, Instant::now());
    let (_, corr1) = locate(&envelope(&heard), "transfer_failed", 1.0);
    assert!(
        corr1 < 0.5,
        "a failed three-way call played transfer_failed: r = {corr1:.2}"
    );
    let ratio1 = dominance(&heard, AGENT_TONE, CALLER_TONE);
    assert!(
        ratio1 > CLEAR,
        "after a failed three-way call the caller does not hear the agent: x{ratio1:.2}\n{}",
        c.diag()
    );

    // The same call tries again, blind this time: busy again.
    let (asked, took, answer) = c.ask_timed("/transfer", "119");
    assert_failed(&answer, "blind", "119", "busy", Some(486));
    let blind_failed = c.events.wait_for(Duration::from_secs(2), |v| {
        v["event"] == "transfer" && v["state"] == "failed" && v["kind"] == "blind"
    });
    assert_eq!(
        blind_failed.as_ref().map(|v| v["result"].clone()),
        Some(json!("busy")),
        "{:?}",
        c.events.all()
    );
    let (corr2, ratio2) = c.back_with_agent(asked, asked + took);

    // Still with the agent: nothing ended the seat's conversation.
    assert!(
        c.events.wait("ended", Duration::ZERO).is_none(),
        "{:?}",
        c.events.all()
    );
    let messages = busy.messages();
    let record = c.hang_up();
    assert_eq!(record["seat"], "1001", "{record}");
    assert_eq!(record["end_reason"], "caller-bye", "{record}");
    for (i, kind) in [(0, "conference"), (1, "blind")] {
        let failed = json!({"kind": kind, "by": "1001", "target": "119", "via": "api",
            "result": "busy", "status": 486, "ending": "failed", "answered_at": null,
            "duration_ms": null});
        assert_event(&record, i, failed);
        assert!(
            !record["transfers"][i]["ended_at"].is_null(),
            "{}",
            record["transfers"][i]
        );
    }
    assert_eq!(
        messages.matches("INVITE sip:119@127.0.0.1").count(),
        2,
        "two INVITEs to 119:\n{messages}"
    );
    eprintln!("busy: prompt r = {corr1:.2}/{corr2:.2}, agent after it x{ratio1:.0}/x{ratio2:.0}");
}

/// 120 rings and never answers; its trunk gives up after 5 s. Meanwhile the
/// caller hears transfer_wait and hold music, and a second request is
/// refused (409). Then: `no-answer`, the ringing INVITE is cancelled, and
/// the caller is back with the agent. Last, a three-way call to 120 rings
/// and the caller hangs up: the request ends `cancelled`.
#[test]
fn a_target_that_never_answers_brings_the_caller_back() {
    let silent = TrunkEndpoint::with("120", Law::Ulaw, TRUNK_TONE, TrunkAnswer::NeverAnswers);
    let entry = silent.entry("options_secs = 0\nring_secs = 5");
    let server = trunk_server("transfer-noanswer", &[entry], &[]);
    let c = Conversation::start(&server, &[&silent]);

    let asked = Instant::now();
    let request = ask_in_background(&c, "/transfer", "120");
    let ringing = c.desktop_transfer("120", "ringing");
    assert_eq!(ringing["kind"], "blind", "{ringing}");
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = server.post(&c.path("/conference"), r#"{"target":"120"}"#);
    assert_eq!(status, 409, "a second request while 120 rings: {body}");
    assert!(body.contains("already in progress"), "{body}");

    let (answer, failed) = answer_of(request, || c.diag());
    assert_failed(&answer, "blind", "120", "no-answer", None);
    let took = failed - asked;
    assert!(
        (Duration::from_millis(4_800)..Duration::from_millis(7_000)).contains(&took),
        "no answer after {took:?}, not the trunk's 5 s"
    );
    let event = c.desktop_transfer("120", "failed");
    assert_eq!(event["result"], "no-answer", "{event}");

    // While it rang: "正在为您转接，请稍候" (no agent in the caller's ear).
    let ringing_audio = c.caller.heard_between(asked, failed);
    let (at, corr) = expect_prompt(
        &ringing_audio,
        "transfer_wait",
        2.0,
        true,
        "the caller while 120 rang",
        || c.diag(),
    );
    // From 0.5 s after the request, the agent's 1 kHz is gone.
    let on_hold = c
        .caller
        .heard_between(asked + Duration::from_millis(500), failed);
    let agent_while_ringing = tone_share(&on_hold, AGENT_TONE);
    assert!(
        agent_while_ringing < 0.1,
        "the caller heard the agent while on hold for a blind transfer: 1 kHz share {agent_while_ringing:.2}"
    );
    // Then hold music.
    let wait_frames = prompt_pcm("transfer_wait").len() / 160;
    let env = envelope(&ringing_audio);
    let music_from = (at + wait_frames).min(env.len());
    let (music_at, music) = locate(&env[music_from..], "hold_music", 1.0);
    assert!(
        music > 0.8 && music_at < 25,
        "no hold music after transfer_wait: r = {music:.2} at +{:.1} s",
        music_at as f64 / 50.0
    );
    let (corr2, ratio) = c.back_with_agent(asked, failed);

    // A three-way call to 120 rings; the caller hangs up meanwhile: the
    // request ends as cancelled and 120 is cancelled too.
    let request = ask_in_background(&c, "/conference", "120");
    let rang = c.events.wait_count(Duration::from_secs(2), 2, |v| {
        v["event"] == "transfer" && v["state"] == "ringing"
    });
    assert!(rang, "{:?}", c.events.all());
    std::thread::sleep(Duration::from_millis(800));
    let record = c.hang_up();
    let (answer, _) = answer_of(request, String::new);
    assert_eq!(answer["result"], "cancelled", "{answer}");
    assert_event(
        &record,
        0,
        json!({"kind": "blind", "by": "1001", "target": "120", "via": "api",
            "result": "no-answer", "status": null, "ending": "failed", "answered_at": null}),
    );
    assert_event(
        &record,
        1,
        json!({"kind": "conference", "target": "120", "result": "cancelled",
            "ending": "caller-left", "answered_at": null}),
    );
    assert_eq!(
        record["transfers"].as_array().map(Vec::len),
        Some(2),
        "the refused request left no event: {record}"
    );
    // The INVITE was cancelled, not left ringing.
    std::thread::sleep(Duration::from_millis(500));
    let messages = silent.messages();
    assert_eq!(
        messages.matches("CANCEL sip:120@127.0.0.1").count(),
        2,
        "120 was not cancelled twice:\n{messages}"
    );
    eprintln!(
        "no answer after {took:?}: wait r = {corr:.2}, failed r = {corr2:.2}, agent x{ratio:.0}"
    );
}

/// 110's health checks go unanswered (a test socket takes them and says
/// nothing), so it is down: a transfer to it fails at once with
/// `trunk-down`, no INVITE is sent, and the caller stays with the agent.
#[test]
fn a_down_trunk_fails_at_once_and_the_caller_stays_with_the_agent() {
    let mute = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    let entry = trunk_entry("110", mute_port, "options_secs = 1");
    let server = trunk_server("transfer-down", &[entry], &[]);
    // What reaches the trunk's address, kept by a thread.
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let received = received.clone();
        mute.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let deadline = Instant::now() + Duration::from_secs(90);
            while Instant::now() < deadline {
                if let Ok((n, _)) = mute.recv_from(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    received.lock().unwrap().push(text);
                }
            }
        });
    }
    let c = Conversation::start(&server, &[]);
    let (_, health) = server.get("/healthz");
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["trunks"]["110"], "down", "{health}");

    let invites_before = count_invites(&received);
    let (asked, took, answer) = c.ask_timed("/transfer", "110");
    assert_failed(&answer, "blind", "110", "trunk-down", None);
    assert!(
        took < Duration::from_millis(500),
        "a down trunk took {took:?} to fail"
    );
    let event = c.desktop_transfer("110", "failed");
    assert_eq!(event["result"], "trunk-down", "{event}");
    let (corr, ratio) = c.back_with_agent(asked, asked + took);
    assert_eq!(
        count_invites(&received),
        invites_before,
        "an INVITE went to the down trunk"
    );
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.starts_with("OPTIONS ")),
        "the health checks never reached the trunk's address"
    );

    let record = c.hang_up();
    assert_event(
        &record,
        0,
        json!({"kind": "blind", "target": "110", "result": "trunk-down", "status": null,
            "ending": "failed", "answered_at": null}),
    );
    assert!(!record["transfers"][0]["ended_at"].is_null(), "{record}");
    eprintln!("trunk down in {took:?}: prompt r = {corr:.2}, agent x{ratio:.0}");
}

fn count_invites(received: &Mutex<Vec<String>>) -> usize {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.starts_with("INVITE "))
        .count()
}

/// A dialling request waiting on another thread: its reply and when it came.
type Pending = std::thread::JoinHandle<((u16, String), Instant)>;

/// A dialling request (`/transfer`, `/conference`) for `target` on
/// another thread, since it waits for the target.
fn ask_in_background(c: &Conversation, tail: &str, target: &str) -> Pending {
    let addr = c.server.http;
    let path = c.path(tail);
    let body = format!(r#"{{"target":"{target}"}}"#);
    std::thread::spawn(move || {
        let r = http(addr, "POST", &path, &body);
        (r, Instant::now())
    })
}

/// Waits for a background request: expects 200; the answer and when it
/// came.
fn answer_of(request: Pending, diag: impl Fn() -> String) -> (Value, Instant) {
    let ((status, body), at) = request.join().unwrap();
    assert_eq!(status, 200, "{body}\n{}", diag());
    let answer = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (answer, at)
}

/// The agent's softphone transfers the caller to 119 itself: baresip's
/// `transfer` sends REFER; the server accepts it, dials 119 for the caller,
/// reports progress by NOTIFY and, once 119 answers, hangs up on the
/// agent. Caller and 119 then hear each other; the record says `refer`.
#[test]
fn blind_transfer_by_refer_from_the_softphone() {
    let fire = TrunkEndpoint::start("119", Law::Ulaw, TRUNK_TONE);
    let server = trunk_server("transfer-refer", &[fire.entry("options_secs = 0")], &[]);
    let mut c = Conversation::start(&server, &[&fire]);

    c.ctrl
        .send("transfer", Some(&format!("sip:119@{}", server.sip)));
    for text in [
        "agent's softphone asked for a transfer",
        "transfer asked",
        "transfer target answered",
    ] {
        c.expect_log(text, Duration::from_secs(5));
    }
    let answered = Instant::now();
    let event = c.desktop_transfer("119", "answered");
    assert_eq!(event["kind"], "blind", "{event}");
    assert_eq!(event["seat"], "1001", "{event}");
    // The agent's call is over: the server hung up on the softphone.
    let closed = c
        .ctrl
        .event("CALL_CLOSED", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the agent's call did not end\n{}", c.diag()));
    // baresip closes with "Call transfered" on the NOTIFY `200 OK`; a BYE
    // that overtakes that NOTIFY closes it as a plain hang-up.
    assert_eq!(
        closed["param"],
        "Call transfered",
        "the softphone was not told the transfer succeeded before the BYE\n{}",
        c.diag()
    );
    assert!(
        c.events.wait("ended", Duration::from_secs(2)).is_some(),
        "{:?}",
        c.events.all()
    );

    // Caller and 119 talk.
    let (caller_heard, fire_heard) = talk(&c.caller, &fire);
    let caller_ratio = dominance(&caller_heard, TRUNK_TONE, AGENT_TONE);
    let fire_ratio = dominance(&fire_heard, CALLER_TONE, AGENT_TONE);
    assert!(
        caller_heard.len() > 8_000 && caller_ratio > CLEAR,
        "the caller does not hear 119: {} samples, 1.4 kHz / 1 kHz x{caller_ratio:.2}\n{}",
        caller_heard.len(),
        c.diag()
    );
    assert!(
        fire_heard.len() > 8_000 && fire_ratio > CLEAR,
        "119 does not hear the caller: {} samples, 600 Hz / 1 kHz x{fire_ratio:.2}\n{}",
        fire_heard.len(),
        c.diag()
    );
    assert_eq!(server.metric("hotline_active_calls"), 1.0);
    let invite = fire.invite();
    assert!(
        invite.contains("P-Asserted-Identity: <sip:13800138000@"),
        "119 is not told who is in need:\n{invite}"
    );

    let transcript = c.ctrl.transcript();
    let record = c.hang_up();
    assert!(
        fire.wait_message("BYE sip:", Duration::from_secs(3)),
        "119 was not hung up on with the caller\n{}",
        fire.messages()
    );
    assert_eq!(record["end_reason"], "caller-bye", "{record}");
    assert_eq!(record["seat"], "1001", "{record}");
    assert!(!record["seat_ended_at"].is_null(), "{record}");
    assert_event(
        &record,
        0,
        json!({"kind": "blind", "by": "1001", "target": "119", "via": "refer",
            "result": "answered", "status": null, "ending": "caller-left"}),
    );
    let e = &record["transfers"][0];
    let talked = e["duration_ms"].as_i64().unwrap_or_default();
    assert!(
        talked >= 2_000 && !e["answered_at"].is_null(),
        "caller and 119 talked {talked} ms: {e}"
    );
    eprintln!(
        "refer: caller heard 119 x{caller_ratio:.0}, 119 heard the caller x{fire_ratio:.0} \
         ({:.1} s after the answer)\n{transcript}",
        answered.elapsed().as_secs_f64()
    );
}

/// Lets the caller and a trunk's far end talk for 2.5 s; what each heard
/// in the last 1.5 s.
fn talk(caller: &ToneMedia, far_end: &TrunkEndpoint) -> (Vec<i16>, Vec<i16>) {
    std::thread::sleep(Duration::from_millis(2_500));
    let now = Instant::now();
    let since = now - Duration::from_millis(1_500);
    (
        caller.heard_between(since, now),
        far_end.media.heard_between(since, now),
    )
}

/// A SIPp agent seat (1003) that answers, then transfers by REFER three
/// times: to `busy` (202, NOTIFY `100 Trying`, NOTIFY with the failure
/// ending the subscription; the call goes on), an attended transfer with
/// a Replaces that names no consult call (202, NOTIFY `481`), and to `target` (202, NOTIFY `100 Trying`, NOTIFY
/// `200 OK`, then the server's BYE). Each NOTIFY is logged (`-trace_logs`)
/// as `NOTIFY <sipfrag status> <subscription state>`.
fn refer_seat_scenario(hotline: SocketAddr, busy: &str, target: &str) -> String {
    let sdp = "v=0\no=seat 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\nm=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";
    let reply = |status: &str, tag: bool, body: &str| {
        uas_reply(
            status,
            tag.then_some("[pid]SIPpTag01[call_number]"),
            "sip:[local_ip]:[local_port];transport=[transport]",
            body,
        )
    };
    let refer = |cseq: u32, refer_to: &str| {
        let headers = format!(
            "Contact: <sip:1003@[local_ip]:[local_port];transport=[transport]>\n\
             Refer-To: {refer_to}\n\
             Referred-By: <sip:1003@[local_ip]:[local_port]>\n"
        );
        uas_request(
            "REFER",
            cseq,
            "<sip:seat@[local_ip]:[local_port]>",
            &headers,
            "",
        )
    };
    let notify =
        |var: &str| logged_notify("", var, &format!("{var}s")) + &reply("200 OK", false, "");
    let uri = |user: &str| format!("<sip:{user}@{hotline}>");
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="refer seat">
  <recv request="INVITE">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>
      <ereg regexp="(sip:[^>]*)" search_in="hdr" header="Contact:" assign_to="y,contact"/>
    </action>
  </recv>
{ringing}{ok}  <recv request="ACK"/>
  <pause milliseconds="1000"/>
{to_busy}  <recv response="202"/>
{n1}{n2}  <pause milliseconds="2000"/>
{replaces}  <recv response="202"/>
{n5}
  <pause milliseconds="500"/>
{blind}  <recv response="202"/>
{n3}{n4}  <recv request="BYE"/>
{bye_ok}  <Reference variables="y,n1,n1s,n2,n2s,n3,n3s,n4,n4s,n5,n5s"/>
</scenario>
"#,
        ringing = reply("180 Ringing", true, ""),
        ok = reply("200 OK", true, sdp),
        to_busy = refer(101, &uri(busy)),
        n1 = notify("n1"),
        n2 = notify("n2"),
        replaces = refer(
            102,
            &format!("<sip:{target}@{hotline}?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>")
        ),
        blind = refer(103, &uri(target)),
        n3 = notify("n3"),
        n4 = notify("n4"),
        n5 = notify("n5"),
        bye_ok = reply("200 OK", false, ""),
    )
}

/// REFER signalling, exactly, with a SIPp seat (1003): a REFER to a busy
/// 120 is accepted, followed by NOTIFY `100 Trying` and NOTIFY
/// `486` (subscription terminated), and the caller stays with the agent;
/// a REFER with Replaces naming no consult call in progress is accepted
/// and answered by NOTIFY `481`; a
/// REFER to 119 gets NOTIFY `100 Trying`, NOTIFY `200 OK` and then the
/// server's BYE, in that order.
#[test]
fn refer_progress_is_reported_by_notify_and_replaces_is_refused() {
    let fire = TrunkEndpoint::start("119", Law::Ulaw, TRUNK_TONE);
    let busy = TrunkEndpoint::with("120", Law::Ulaw, TRUNK_TONE, TrunkAnswer::Busy);
    let entries = [
        fire.entry("options_secs = 0"),
        busy.entry("options_secs = 0"),
    ];
    let server = trunk_server("transfer-refer-sipp", &entries, &[]);
    let port = SippSeat::register(&server, "1003");
    let mut seat = SippProcess::start(
        "refer-seat",
        &refer_seat_scenario(server.sip, "120", "119"),
        port,
        &["-m", "1", "-timeout", "60", "-timeout_error", "-trace_logs"],
    );
    let logs = |suffix: &str| seat.logs("seat 1003", &[suffix]);

    let (call, media, keys) = dial(&server);
    to_operator(&keys, &call);
    assert!(
        server.wait_log("caller connected to agent", Duration::from_secs(10)),
        "{}\n{}",
        logs(".log"),
        server.log()
    );
    let connected = Instant::now();
    let status = poll(Duration::from_secs(10), Duration::from_millis(50), || {
        seat.child.try_wait().unwrap()
    });
    let logs = |suffix: &str| seat.logs("seat 1003", &[suffix]);
    let diag = || {
        format!(
            "{}\n{}\n--- server log ---\n{}",
            logs(".log"),
            fire.messages(),
            server.log()
        )
    };
    // The busy attempt: progress, then the failure, and the call goes on.
    let notifies = logs("_logs.log");
    assert!(
        notifies.contains("NOTIFY SIP/2.0 100 active\nNOTIFY SIP/2.0 486 terminated"),
        "NOTIFYs for the REFER to busy 120:\n{}",
        diag()
    );
    assert!(
        notifies.contains("NOTIFY SIP/2.0 481 terminated"),
        "the REFER with an unknown Replaces was not refused by NOTIFY 481\n{}",
        diag()
    );
    assert!(
        server
            .log()
            .contains("REFER with Replaces names no consult in progress"),
        "{}",
        diag()
    );
    // The REFER to 119: progress, success, then BYE.
    assert!(
        notifies.contains("NOTIFY SIP/2.0 100 active\nNOTIFY SIP/2.0 200 terminated"),
        "no NOTIFY 200 before the BYE for the REFER to 119 (seat {status:?}):\n{}",
        diag()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the seat's REFER dialogue did not go as scripted ({status:?})\n{}",
        diag()
    );
    // The caller heard that 120 could not be reached.
    let heard = media.heard_between(connected, Instant::now());
    expect_prompt(
        &heard,
        "transfer_failed",
        1.5,
        false,
        "after 120 was busy",
        diag,
    );
    call.bye();
    drop(media);
    let record = server.call_record(&call.call_id);
    assert_eq!(
        record["transfers"].as_array().map(Vec::len),
        Some(2),
        "two REFERs were attempts, the one with Replaces was not: {record}"
    );
    assert_event(
        &record,
        0,
        json!({"kind": "blind", "by": "1003", "target": "120", "via": "refer",
            "result": "busy", "status": 486}),
    );
    assert_event(
        &record,
        1,
        json!({"kind": "blind", "by": "1003", "target": "119", "via": "refer",
            "result": "answered", "ending": "caller-left"}),
    );
}

/// A server whose main flow sends every caller straight to the water
/// company's trunk, `water`.
fn water_server(name: &str, water: &TrunkEndpoint) -> Server {
    let flows = editable_flows(&scratch(name));
    std::fs::write(
        flows.join("main.yaml"),
        "name: main\n\
         description: Every caller goes straight to the water company.\n\
         start: to_water\n\
         nodes:\n  \
           - id: to_water\n    \
             type: transfer\n    \
             target: water\n    \
             prompts: [transfer_wait]\n",
    )
    .unwrap();
    let flows_dir = format!("flows_dir = \"{}\"", flows.display());
    let entry = water.entry("options_secs = 0\nring_secs = 5");
    trunk_server(name, &[entry], &[("ivr", &flows_dir)])
}

/// A flow's transfer node: the caller goes to the `water` trunk as soon as
/// the call is answered, and talks to it; nobody from the hotline is on.
#[test]
fn an_ivr_transfer_node_sends_the_caller_to_a_trunk() {
    let water = TrunkEndpoint::start("water", Law::Ulaw, TRUNK_TONE);
    let server = water_server("transfer-ivr", &water);
    let (call, media, _keys) = dial(&server);
    assert!(
        server.wait_log("transfer target answered", Duration::from_secs(5)),
        "{}\n{}",
        water.messages(),
        server.log()
    );
    let (caller_heard, water_heard) = talk(&media, &water);
    let caller_share = tone_share(&caller_heard, TRUNK_TONE);
    let water_share = tone_share(&water_heard, CALLER_TONE);
    call.bye();
    drop(media);
    assert!(
        caller_heard.len() > 8_000 && caller_share > 0.5,
        "the caller does not hear the water company: {} samples, 1.4 kHz share {caller_share:.2}\n{}",
        caller_heard.len(),
        server.log()
    );
    assert!(
        water_heard.len() > 8_000 && water_share > 0.5,
        "the water company does not hear the caller: {} samples, 600 Hz share {water_share:.2}",
        water_heard.len()
    );
    let record = server.call_record(&call.call_id);
    assert_eq!(record["final_action"], "transfer:water", "{record}");
    assert!(record["seat"].is_null(), "{record}");
    assert!(record["queued_at"].is_null(), "{record}");
    assert_event(
        &record,
        0,
        json!({"kind": "blind", "by": "ivr", "target": "water", "via": "ivr",
            "result": "answered", "ending": "caller-left"}),
    );
    assert!(
        water.wait_message("BYE sip:", Duration::from_secs(3)),
        "the caller's BYE did not end the water company's leg\n{}",
        water.messages()
    );
}

/// The water company is busy: the caller hears transfer_failed and waits
/// at the head of the operator queue, where seat 1002 then takes the call.
#[test]
fn a_failed_ivr_transfer_puts_the_caller_in_the_operator_queue() {
    let water = TrunkEndpoint::with("water", Law::Ulaw, TRUNK_TONE, TrunkAnswer::Busy);
    let server = water_server("transfer-ivr-busy", &water);
    let (call, media, _keys) = dial(&server);
    let dialled = Instant::now();
    assert!(
        server.wait_log(
            "caller back in the queue after a failed transfer",
            Duration::from_secs(5)
        ),
        "{}\n{}",
        water.messages(),
        server.log()
    );
    server.expect_log("queued queue=operator", Duration::from_secs(2));
    assert_eq!(
        server.metric("hotline_queue_waiting{queue=\"operator\"}"),
        1.0
    );
    std::thread::sleep(Duration::from_secs(4));
    let heard = media.heard_between(dialled, Instant::now());
    expect_prompt(&heard, "transfer_failed", 3.0, false, "the caller", || {
        server.log()
    });

    // A seat comes in and takes the waiting caller.
    let _seat = SippSeat::start(&server, "1002", Answer::Answers, 1);
    server.expect_log("caller connected to agent", Duration::from_secs(10));
    call.bye();
    drop(media);
    let record = server.call_record(&call.call_id);
    assert_eq!(record["final_action"], "transfer:water", "{record}");
    assert_eq!(record["seat"], "1002", "{record}");
    assert!(!record["queued_at"].is_null(), "{record}");
    assert_eq!(
        record["queue"], "operator",
        "the record does not name the queue the caller waited in after the failed transfer: {record}"
    );
    assert_event(
        &record,
        0,
        json!({"kind": "blind", "by": "ivr", "target": "water", "via": "ivr",
            "result": "busy", "status": 486, "ending": "failed"}),
    );
    assert_eq!(
        server.metric("hotline_queue_entered_total{queue=\"operator\"}"),
        1.0
    );
}

/// The agent asks for a blind transfer to 120 and hangs up while it rings
/// (the caller is meant to go on with 120). 120 never answers: with no
/// agent to go back to, the caller hears transfer_failed and waits at the
/// head of the operator queue they came through.
#[test]
fn an_agent_who_hangs_up_while_the_target_rings_leaves_the_caller_in_the_queue() {
    let silent = TrunkEndpoint::with("120", Law::Ulaw, TRUNK_TONE, TrunkAnswer::NeverAnswers);
    let entry = silent.entry("options_secs = 0\nring_secs = 3");
    let server = trunk_server("transfer-agent-left", &[entry], &[]);
    let mut c = Conversation::start(&server, &[&silent]);
    let request = ask_in_background(&c, "/transfer", "120");
    c.desktop_transfer("120", "ringing");
    c.ctrl.send("hangup", None);
    c.expect_log(
        "agent left; caller stays with the transfer target",
        Duration::from_secs(3),
    );
    let (answer, failed) = answer_of(request, || c.diag());
    assert_eq!(answer["result"], "no-answer", "{answer}");
    c.expect_log(
        "caller back in the queue after a failed transfer",
        Duration::from_secs(2),
    );
    // The gauge follows the log line by a moment: wait for it.
    let waiting = poll(Duration::from_secs(3), Duration::from_millis(50), || {
        (server.metric("hotline_queue_waiting{queue=\"operator\"}") == 1.0).then_some(())
    });
    assert!(
        waiting.is_some(),
        "the caller is not waiting in the queue\n{}",
        c.diag()
    );
    let event = c.desktop_transfer("120", "failed");
    assert_eq!(event["result"], "no-answer", "{event}");
    std::thread::sleep(Duration::from_secs(4));
    let heard = c.caller.heard_between(failed, Instant::now());
    expect_prompt(&heard, "transfer_failed", 3.0, true, "the caller", || {
        c.diag()
    });
    assert!(
        tone_share(&heard, AGENT_TONE) < 0.1,
        "the agent who hung up is still heard"
    );
    let record = c.hang_up();
    assert_eq!(record["end_reason"], "caller-bye", "{record}");
    assert!(!record["seat_ended_at"].is_null(), "{record}");
    assert_event(
        &record,
        0,
        json!({"kind": "blind", "by": "1001", "target": "120", "result": "no-answer",
            "ending": "failed"}),
    );
    assert_eq!(
        server.metric("hotline_queue_entered_total{queue=\"operator\"}"),
        2.0,
        "the caller entered the operator queue twice"
    );
}
