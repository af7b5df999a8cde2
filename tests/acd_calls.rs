//! Queued callers reach agent seats: a baresip softphone registers as seat
//! 1001 and auto-answers; a caller goes through the real IVR into a queue;
//! the server rings the seat, bridges the two legs through its own media
//! (A-law caller, µ-law agent), records the conversation in stereo, and
//! sends the caller to the survey when the agent hangs up. Each side sends
//! its own tone and must hear the other's, checked by Goertzel.

mod common;

use common::baresip::*;
use common::events::EventStream;
use common::media::*;
use common::seat::*;
use common::*;
use hotline::media::dtmf::goertzel_power;
use std::time::{Duration, Instant};

const AGENT_TONE: f32 = 1000.0;

#[test]
fn queued_caller_talks_to_a_registered_softphone_seat() {
    require("baresip", "baresip-core");
    let server = Server::start("acd-bridge", &[MD5_ONLY]);

    // Seat 1001 on baresip: registers with its demo password, answers by
    // itself, speaks a 1 kHz tone, takes µ-law only.
    let (mut baresip, mut ctrl, rec) = baresip_seat(&server, "1001", AGENT_TONE);
    let diag = |ctrl: &Ctrl, baresip: &Baresip| {
        format!(
            "{}{}--- server log ---\n{}",
            ctrl.transcript(),
            baresip.output(),
            server.log()
        )
    };
    // baresip may register before ctrl_tcp is connected: ask the server.
    let registered = server.wait_log("registered seat=1001", Duration::from_secs(10));
    assert!(
        registered,
        "seat 1001 did not register\n{}",
        diag(&ctrl, &baresip)
    );

    // The caller: A-law, through the real main flow. After the greeting
    // (no barge-in) it presses 0 in the language menu: the operator queue.
    let (call, media, dtmf_socket) = dial(&server);
    let mut seq = to_operator(&dtmf_socket, &call);

    let connected = server.wait_log("caller connected to agent", Duration::from_secs(10));
    assert!(
        connected,
        "the seat never answered\n{}",
        diag(&ctrl, &baresip)
    );
    let established = ctrl.event("CALL_ESTABLISHED", Duration::from_secs(5));
    assert!(
        established.is_some(),
        "baresip did not report the call\n{}",
        diag(&ctrl, &baresip)
    );
    // Let the jitter buffers fill, then listen for three seconds.
    std::thread::sleep(Duration::from_millis(500));
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let caller_heard = media.heard_between(from, Instant::now());
    assert!(
        caller_heard.len() > 8000 * 2,
        "the caller heard only {} samples while bridged\n{}",
        caller_heard.len(),
        diag(&ctrl, &baresip)
    );
    let caller_ratio = dominance(&caller_heard, AGENT_TONE, CALLER_TONE);
    assert!(
        caller_ratio > 20.0,
        "the caller does not hear the agent's tone: 1 kHz / 600 Hz power {caller_ratio:.2}\n{}",
        diag(&ctrl, &baresip)
    );

    // A key the caller presses reaches the agent's phone as a
    // telephone-event.
    press(&dtmf_socket, call.server_rtp, '7', 950_000, &mut seq);
    let dtmf = ctrl.wait_for(Duration::from_secs(3), |v| {
        v["event"] == true
            && v["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("CALL_DTMF"))
    });
    assert!(
        dtmf.as_ref()
            .is_some_and(|v| v["param"].as_str().is_some_and(|p| p.contains('7'))),
        "the agent's phone did not get the caller's 7: {dtmf:?}\n{}",
        diag(&ctrl, &baresip)
    );
    // The agent hangs up: the caller stays on the line, in the survey.
    ctrl.send("hangup", None);
    assert!(
        server.wait_log("agent hung up: survey", Duration::from_secs(5)),
        "the caller was not sent to the survey\n{}",
        diag(&ctrl, &baresip)
    );
    std::thread::sleep(Duration::from_millis(1_500));
    call.bye();
    drop(media);
    ctrl.send("quit", None);
    baresip.wait_exit(Duration::from_secs(5));

    // What the agent heard: the caller's tone, transcoded A-law -> µ-law.
    let recordings = decoded_recordings(&rec);
    assert_eq!(
        recordings.len(),
        1,
        "{recordings:?}\n{}",
        diag(&ctrl, &baresip)
    );
    let (rate, pcm) = read_wav(&recordings[0]).unwrap();
    let agent_heard = to_8khz(rate, &pcm);
    let tail = &agent_heard[agent_heard.len().saturating_sub(8000 * 3)..];
    let agent_ratio = dominance(tail, CALLER_TONE, AGENT_TONE);
    assert!(
        agent_ratio > 20.0,
        "the agent does not hear the caller's tone: 600 Hz / 1 kHz power {agent_ratio:.2}\n{}",
        diag(&ctrl, &baresip)
    );

    // The record keeps both legs; the recording has the caller left and
    // the agent right.
    let record = server.call_record(&call.call_id);
    assert_eq!(record["final_action"], "queue:operator:5", "{record}");
    assert_eq!(record["seat"], "1001", "{record}\n{}", server.log());
    assert_eq!(record["codec"], "PCMA", "{record}");
    assert_eq!(record["seat_codec"], "PCMU", "{record}");
    assert_eq!(record["hangup_by"], "caller", "{record}");
    for key in ["queued_at", "connected_at", "seat_ended_at", "seat_call_id"] {
        assert!(!record[key].is_null(), "{key} missing: {record}");
    }
    let path = record["call_recording"]
        .as_str()
        .unwrap_or_else(|| panic!("no recording: {record}\n{}", server.log()));
    assert!(path.contains("/calls/operator/"), "{path}");
    let (status, body) = server.get(&format!("/api/v1/calls/{}/recording", call.call_id));
    assert_eq!(status, 200);
    assert!(body.starts_with("RIFF"), "the API does not serve the WAV");
    let (status, _) = server.get("/api/v1/calls/no-such-call/recording");
    assert_eq!(status, 404);
    let (left, right) = stereo(path);
    let secs = left.len() as f32 / 8000.0;
    assert!(secs > 2.5, "recording holds {secs:.1} s: {record}");
    let mid = |v: &[i16]| v[v.len() / 4..v.len() * 3 / 4].to_vec();
    let left_ratio = dominance(&mid(&left), CALLER_TONE, AGENT_TONE);
    let right_ratio = dominance(&mid(&right), AGENT_TONE, CALLER_TONE);
    assert!(
        left_ratio > 20.0 && right_ratio > 20.0,
        "recording channels: left 600/1000 {left_ratio:.2}, right 1000/600 {right_ratio:.2}"
    );
    // The queue counted an answer within the service level; the seat is in
    // its wrap-up (30 s on the operator queue).
    let q = "{queue=\"operator\"}";
    assert_eq!(
        server.metric(&format!("hotline_queue_entered_total{q}")),
        1.0
    );
    assert_eq!(
        server.metric(&format!("hotline_queue_answered_total{q}")),
        1.0
    );
    assert_eq!(
        server.metric(&format!("hotline_queue_answered_within_15s_total{q}")),
        1.0
    );
    assert_eq!(
        server.metric(&format!("hotline_queue_abandoned_total{q}")),
        0.0
    );
    assert!(server.metric("hotline_seat_talk_seconds_total") >= 3.0);
    assert_eq!(
        // baresip unregistered when it quit: logged out, still wrapping up.
        server.metric("hotline_seats{status=\"logged_out\",activity=\"wrap_up\"}"),
        1.0
    );
    eprintln!(
        "caller heard 1 kHz x{caller_ratio:.0}, agent heard 600 Hz x{agent_ratio:.0}, \
         recording {secs:.1} s left x{left_ratio:.0} right x{right_ratio:.0}"
    );
}

/// Nobody is logged in: the caller waits in the queue, hears hold music, and
/// hangs up. The call goes on the missed-call list and counts as abandoned.
#[test]
fn a_caller_who_gives_up_waiting_is_a_missed_call() {
    let server = Server::start("acd-missed", &[]);
    let (call, media, dtmf_socket) = dial(&server);
    to_operator(&dtmf_socket, &call);
    assert!(
        server.wait_log("queued queue=operator", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    let q = "{queue=\"operator\"}";
    assert_eq!(server.metric(&format!("hotline_queue_waiting{q}")), 1.0);
    std::thread::sleep(Duration::from_secs(2));
    assert!(server.metric(&format!("hotline_queue_longest_wait_seconds{q}")) >= 1.0);
    call.bye();
    drop(media);

    let record = server.call_record(&call.call_id);
    assert!(record["seat"].is_null(), "{record}");
    assert!(!record["queued_at"].is_null(), "{record}");
    assert!(record["call_recording"].is_null(), "{record}");
    assert_eq!(
        server.metric(&format!("hotline_queue_abandoned_total{q}")),
        1.0
    );
    assert_eq!(server.metric(&format!("hotline_queue_waiting{q}")), 0.0);
    let (status, body) = server.get("/api/v1/missed-calls");
    assert_eq!(status, 200, "{body}");
    let missed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = missed["missed_calls"]
        .as_array()
        .or_else(|| missed.as_array())
        .unwrap_or_else(|| panic!("{body}"))
        .clone();
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["call_id"], call.call_id.as_str(), "{body}");
    assert_eq!(list[0]["queue"], "operator", "{body}");
    assert!(list[0]["waited_ms"].as_u64().unwrap() >= 2000, "{body}");
}

/// Queues for a test: the five the shipped flows name, with the operator
/// queue announcing positions every `announce` seconds.
fn queues_announcing(announce: u32) -> (&'static str, String) {
    (
        "[queue]",
        format!(
            "name = \"operator\"\nannounce_secs = {announce}\n\
             [[queue]]\nname = \"emergency\"\n\
             [[queue]]\nname = \"general\"\n\
             [[queue]]\nname = \"enterprise\"\n\
             [[queue]]\nname = \"mongolian\"\nlanguage = \"mn\"\n"
        ),
    )
}

/// A waiting caller is told how many callers are ahead, every few seconds:
/// the announcements are found in the decoded audio, between hold music.
#[test]
fn waiting_callers_hear_their_position() {
    let (section, queues) = queues_announcing(4);
    let server = Server::start("acd-announce", &[(section, &queues)]);
    let (call, media, dtmf_socket) = dial(&server);
    to_operator(&dtmf_socket, &call);
    // The key's last event packet queues the call (the log may be written
    // later than that, so time runs from the key).
    let queued = Instant::now();
    assert!(
        server.wait_log("queued queue=operator", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    // Two announcements fall in 10 s of waiting.
    std::thread::sleep(Duration::from_secs(10));
    let heard = media.heard_between(queued, Instant::now());
    call.bye();
    drop(media);

    let env = envelope(&heard);
    let (at, corr) = locate(&env, "queue_position_before", 1.9);
    assert!(
        corr > 0.8,
        "no position announcement in {:.1} s of waiting (best match {corr:.2} at {:.1} s)\n{}",
        heard.len() as f64 / 8000.0,
        at as f64 / 50.0,
        server.log()
    );
    let secs = at as f64 / 50.0;
    assert!(
        (3.0..6.0).contains(&secs),
        "the announcement came {secs:.1} s after queueing, not about 4 s"
    );
    // First in line: nobody ahead, "0" follows the lead-in.
    let lead = prompt_pcm("queue_position_before").len() / 160;
    let (digit_at, digit_corr) = locate(&env[at + lead..], "digit_0", 0.3);
    assert!(
        digit_corr > 0.8 && digit_at < 10,
        "nobody ahead not read after the lead-in: {digit_corr:.2} at +{digit_at} frames"
    );
    // And again 4 s later.
    let next = at + 150;
    let (again, again_corr) = locate(&env[next..], "queue_position_before", 1.0);
    assert!(
        again_corr > 0.8 && (25..=80).contains(&again),
        "no second announcement about 4 s after the first: {again_corr:.2} at +{:.1} s",
        (150 + again) as f64 / 50.0
    );
    eprintln!("announcement at {secs:.1} s (r = {corr:.2}), digit r = {digit_corr:.2}");
}

/// Three SIPp seats in the operator queue, longest-idle first: 1002 is
/// busy (486) and is left alone; 1003 rings without answering, so after the
/// ring time the caller goes back to the head of the queue and 1003, having
/// missed once with `max_misses = 1`, goes on break; 1004 answers and the
/// caller is bridged to it. The caller's hang-up ends the agent leg. The
/// queue has recording switched off.
#[test]
fn busy_and_silent_seats_are_passed_over_and_the_next_one_answers() {
    let queues = "name = \"operator\"\nring_secs = 2\nmax_misses = 1\nwrap_up_secs = 3\nrecord = false\n\
                  [[queue]]\nname = \"emergency\"\n[[queue]]\nname = \"general\"\n\
                  [[queue]]\nname = \"enterprise\"\n\
                  [[queue]]\nname = \"mongolian\"\nlanguage = \"mn\"\n";
    let server = Server::start("acd-skip", &[MD5_ONLY, ("[queue]", queues)]);
    // Registered in this order, so longest-idle offers them in this order.
    let busy = SippSeat::start(&server, "1002", Answer::Busy, 1);
    std::thread::sleep(Duration::from_millis(50));
    let silent = SippSeat::start(&server, "1003", Answer::NeverAnswers, 1);
    std::thread::sleep(Duration::from_millis(50));
    let answers = SippSeat::start(&server, "1004", Answer::Answers, 1);
    let diag = || {
        format!(
            "{}{}{}--- server log ---\n{}",
            busy.messages(),
            silent.messages(),
            answers.messages(),
            server.log()
        )
    };

    let (call, media, dtmf_socket) = dial(&server);
    to_operator(&dtmf_socket, &call);
    assert!(
        server.wait_log("caller connected to agent", Duration::from_secs(10)),
        "no seat took the call\n{}",
        diag()
    );
    let seat = |id: &str| {
        let (status, body) = server.get(&format!("/api/v1/seats/{id}"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let s1003 = seat("1003");
    assert_eq!(s1003["status"], "on_break", "{s1003}\n{}", diag());
    assert_eq!(s1003["reason"], "no-answer", "{s1003}");
    assert_eq!(seat("1004")["state"], "in_call", "{}", diag());
    std::thread::sleep(Duration::from_secs(1));
    call.bye();
    drop(media);

    let record = server.call_record(&call.call_id);
    assert_eq!(record["seat"], "1004", "{record}\n{}", diag());
    // This queue does not record.
    assert!(record["call_recording"].is_null(), "{record}");
    // The offers, in order, in the seat log.
    let (_, body) = server.get("/api/v1/seat-log?limit=100");
    let log: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entries = log["changes"]
        .as_array()
        .or_else(|| log.as_array())
        .unwrap_or_else(|| panic!("{body}"))
        .clone();
    let offered: Vec<&str> = entries
        .iter()
        .filter(|e| e["state"] == "offered")
        .filter_map(|e| e["seat"].as_str())
        .collect();
    assert_eq!(offered, ["1002", "1003", "1004"], "{body}");
    // The caller's BYE reached the agent: its SIPp scenario completed.
    assert!(
        server.wait_log(
            "seat changed seat=1004 status=Available activity=WrapUp",
            Duration::from_secs(3)
        ),
        "{}",
        diag()
    );
}

/// The agent's softphone puts the caller on hold with a re-INVITE
/// (`a=sendonly`): the caller hears the hold music, decoded; off hold the
/// music stops and the conversation goes on.
#[test]
fn agent_hold_gives_the_caller_music() {
    let server = Server::start("acd-hold", &[MD5_ONLY]);
    let agent = SippSeat::start(&server, "1005", Answer::AnswersAndHolds, 1);
    let (call, media, dtmf_socket) = dial(&server);
    to_operator(&dtmf_socket, &call);
    let diag = || format!("{}--- server log ---\n{}", agent.messages(), server.log());
    assert!(
        server.wait_log("caller connected to agent", Duration::from_secs(10)),
        "{}",
        diag()
    );
    let connected = Instant::now();
    std::thread::sleep(Duration::from_millis(5_500));
    call.bye();
    let at = |secs: f64| connected + Duration::from_secs_f64(secs);
    // The seat holds 1 s after its 200 (a little under 1 s after the log
    // line) for 3 s.
    let before = media.heard_between(at(0.1), at(0.6));
    let held = media.heard_between(at(1.2), at(3.6));
    let after = media.heard_between(at(4.3), at(5.3));
    // From before the music starts, to find its beginning.
    let onset = media.heard_between(at(0.4), at(3.6));
    drop(media);

    for text in [
        "agent put the caller on hold",
        "agent took the caller off hold",
    ] {
        assert!(
            server.wait_log(text, Duration::from_secs(2)),
            "{text}?\n{}",
            diag()
        );
    }
    let energy = |pcm: &[i16]| {
        (pcm.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
    };
    let (e_before, e_held, e_after) = (energy(&before), energy(&held), energy(&after));
    assert!(
        e_held > 300.0 && e_before < 50.0 && e_after < 50.0,
        "RMS before {e_before:.0}, on hold {e_held:.0}, after {e_after:.0}\n{}",
        diag()
    );
    let (_, corr) = locate(&envelope(&onset), "hold_music", 1.5);
    assert!(
        corr > 0.8,
        "what the held caller heard is not the hold music: r = {corr:.2}"
    );
}

const SUPERVISOR_TONE: f32 = 1400.0;

/// A supervisor whispers to the agent: seat 1009 (a second baresip) is rung
/// through the API and joins; the agent hears caller and supervisor, the
/// supervisor hears both, and the caller never hears the supervisor.
#[test]
fn whisper_is_heard_by_the_agent_only() {
    require("baresip", "baresip-core");
    let server = Server::start("acd-whisper", &[MD5_ONLY]);
    let (mut agent, mut agent_ctrl, agent_rec) = baresip_seat(&server, "1001", AGENT_TONE);
    assert!(
        server.wait_log("registered seat=1001", Duration::from_secs(10)),
        "{}",
        server.log()
    );
    let (call, media, dtmf_socket) = dial(&server);

    // Nobody else waits now; a call before the agent is connected is
    // refused.
    let body = r#"{"supervisor": "1009", "mode": "whisper"}"#;
    let (status, _) = server.post(&format!("/api/v1/calls/{}/monitor", call.call_id), body);
    assert_eq!(status, 409, "monitoring a call not yet with an agent");
    let (status, reply) = server.post("/api/v1/calls/nope/monitor", body);
    assert_eq!(status, 404, "{reply}");
    let (status, reply) = server.post(
        &format!("/api/v1/calls/{}/monitor", call.call_id),
        r#"{"supervisor": "1009", "mode": "shout"}"#,
    );
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("\"mode\""), "{reply}");

    to_operator(&dtmf_socket, &call);
    assert!(
        server.wait_log("caller connected to agent", Duration::from_secs(10)),
        "{}",
        server.log()
    );
    let (mut sup, mut sup_ctrl, sup_rec) = baresip_seat(&server, "1009", SUPERVISOR_TONE);
    assert!(
        server.wait_log("registered seat=1009", Duration::from_secs(10)),
        "{}",
        server.log()
    );
    let (status, reply) = server.post(&format!("/api/v1/calls/{}/monitor", call.call_id), body);
    assert_eq!(status, 202, "{reply}\n{}", server.log());
    assert!(
        server.wait_log("supervisor joined", Duration::from_secs(5)),
        "{}{}",
        sup.output(),
        server.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let caller_heard = media.heard_between(from, Instant::now());
    call.bye();
    drop(media);
    for (b, c) in [(&mut agent, &mut agent_ctrl), (&mut sup, &mut sup_ctrl)] {
        c.send("quit", None);
        b.wait_exit(Duration::from_secs(5));
    }

    let power = |pcm: &[i16], f: f32| goertzel_power(pcm, f, 8000.0);
    let caller_whisper = power(&caller_heard, SUPERVISOR_TONE) / power(&caller_heard, AGENT_TONE);
    assert!(
        caller_whisper < 0.001,
        "the caller heard the whisper: 1.4 kHz / 1 kHz power {caller_whisper}"
    );
    let heard = |rec: &std::path::Path| {
        let files = decoded_recordings(rec);
        assert_eq!(files.len(), 1, "{files:?}");
        let (rate, pcm) = read_wav(&files[0]).unwrap();
        let pcm = to_8khz(rate, &pcm);
        // The last 2.5 s: the supervisor is on.
        pcm[pcm.len().saturating_sub(20_000)..].to_vec()
    };
    let by_agent = heard(&agent_rec);
    let by_sup = heard(&sup_rec);
    let ratio =
        |pcm: &[i16], want: f32, against: f32| power(pcm, want) / power(pcm, against).max(1.0);
    assert!(
        ratio(&by_agent, SUPERVISOR_TONE, AGENT_TONE) > 10.0
            && ratio(&by_agent, CALLER_TONE, AGENT_TONE) > 10.0,
        "the agent hears supervisor and caller: 1.4k {} 600 {} (against its own 1k)",
        power(&by_agent, SUPERVISOR_TONE),
        power(&by_agent, CALLER_TONE)
    );
    assert!(
        ratio(&by_sup, CALLER_TONE, SUPERVISOR_TONE) > 10.0
            && ratio(&by_sup, AGENT_TONE, SUPERVISOR_TONE) > 10.0,
        "the supervisor hears caller and agent: 600 {} 1k {}",
        power(&by_sup, CALLER_TONE),
        power(&by_sup, AGENT_TONE)
    );
}

/// Queued callback: a waiting caller presses 1, hears the confirmation and
/// is let go with their place kept. When seat 1002 comes in, the agent is
/// rung first, then the caller's number is called through the `pstn`
/// trunk (a SIPp phone) from 12345; the two are bridged and recorded, and
/// the call-back has its own record.
#[test]
fn a_queued_callback_rings_the_agent_then_the_caller() {
    let phone_port = free_udp_port(1);
    // The SIPp phone takes INVITEs only: no trunk health checks at it.
    let trunk = format!(
        "name = \"pstn\"\nuri = \"sip:{{number}}@127.0.0.1:{phone_port}\"\noptions_secs = 0\n"
    );
    let (section, queues) = queues_announcing(30);
    let server = Server::start(
        "acd-callback",
        &[MD5_ONLY, (section, &queues), ("[trunk]", &trunk)],
    );
    let phone = SippSeat::answering("citizen", phone_port, Answer::AnswersThenHangsUp, 1);
    let (call, media, dtmf_socket) = dial(&server);
    let mut seq = to_operator(&dtmf_socket, &call);
    assert!(
        server.wait_log("queued queue=operator", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    press(&dtmf_socket, call.server_rtp, '1', 901_000, &mut seq);
    assert!(
        server.wait_log(
            "caller keeps their place for a call-back",
            Duration::from_secs(3)
        ),
        "{}",
        server.log()
    );
    // The confirmation plays, then the server hangs up on the caller.
    assert!(
        server.wait_log("end=callback-queued", Duration::from_secs(10)),
        "{}",
        server.log()
    );
    let heard = media.heard_between(asked, Instant::now());
    drop(media);
    let (_, corr) = locate(&envelope(&heard), "callback_confirm", 1.5);
    assert!(corr > 0.8, "the confirmation was not heard: r = {corr:.2}");
    let original = server.call_record(&call.call_id);
    assert_eq!(original["callback_requested"], true, "{original}");
    assert_eq!(
        server.metric("hotline_queue_waiting{queue=\"operator\"}"),
        1.0,
        "the place is kept"
    );

    // A seat comes in: agent first, then the caller is called back.
    let agent = SippSeat::start(&server, "1002", Answer::Answers, 1);
    let diag = || {
        format!(
            "{}{}--- server log ---\n{}",
            agent.messages(),
            phone.messages(),
            server.log()
        )
    };
    assert!(
        server.wait_log("call-back ended", Duration::from_secs(15)),
        "{}",
        diag()
    );
    let record = server
        .recent_calls(5)
        .into_iter()
        .find(|c| c["final_action"] == "callback:operator")
        .unwrap_or_else(|| panic!("no call-back record\n{}", diag()));
    assert_eq!(record["seat"], "1002", "{record}");
    assert_eq!(record["caller"], "13800138000", "{record}");
    assert_eq!(record["end_reason"], "caller-bye", "{record}\n{}", diag());
    assert!(!record["answered_at"].is_null(), "{record}");
    assert!(!record["call_recording"].is_null(), "{record}");
    let messages = phone.messages();
    assert!(
        messages.contains("INVITE sip:13800138000@127.0.0.1"),
        "the trunk call is not to the caller's number\n{messages}"
    );
    assert!(
        messages.contains("From: <sip:12345@"),
        "the call-back does not show 12345\n{messages}"
    );
    // The agent was connected before the caller's phone rang.
    let log = server.log();
    let agent_at = log.find("ringing seat seat=\"1002\"").unwrap();
    let phone_at = log.find("calling the caller back").unwrap();
    assert!(agent_at < phone_at, "{log}");
    assert_eq!(
        server.metric("hotline_queue_waiting{queue=\"operator\"}"),
        0.0
    );
}

/// The agent desktop's WebSocket: a snapshot on connect, the seat's state
/// changes, and the screen pop when a call is offered (caller, queue, wait,
/// IVR path, and the caller's earlier calls), then connected and ended.
#[test]
fn seat_events_pop_the_callers_details_on_offer() {
    let server = Server::start("acd-events", &[MD5_ONLY]);
    // An earlier call from the same number, for the history.
    let (rtp, _rtcp) = rtp_sockets();
    let port = rtp.local_addr().unwrap().port();
    let first = RawCall::place(&server, port, "8 101", PCMA_DTMF);
    first.bye();
    server.call_record(&first.call_id);

    let events = EventStream::connect(&server, "/api/v1/seats/1002/events");
    let snapshot = events.wait("snapshot", Duration::from_secs(10));
    assert_eq!(
        snapshot.as_ref().map(|s| s["seat"]["seat"].clone()),
        Some(serde_json::json!("1002")),
        "{:?}",
        events.all()
    );
    let _agent = SippSeat::start(&server, "1002", Answer::Answers, 1);
    let state = events
        .wait("state", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no state change: {:?}\n{}", events.all(), server.log()));
    assert_eq!(state["status"], "available", "{state}");

    let (call, media, dtmf_socket) = dial(&server);
    to_operator(&dtmf_socket, &call);
    let offer = events
        .wait("offered", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no offer: {:?}\n{}", events.all(), server.log()));
    assert_eq!(offer["call_id"], call.call_id.as_str(), "{offer}");
    assert_eq!(offer["caller"], "13800138000", "{offer}");
    assert_eq!(offer["queue"], "operator", "{offer}");
    let path: Vec<&str> = offer["ivr_path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        path.contains(&"main:choose_language") && path.contains(&"main:operator"),
        "{offer}"
    );
    let earlier = offer["earlier_calls"].as_array().unwrap();
    assert_eq!(earlier.len(), 1, "{offer}");
    assert_eq!(earlier[0]["call_id"], first.call_id.as_str(), "{offer}");
    assert!(
        events.wait("connected", Duration::from_secs(5)).is_some(),
        "{:?}",
        events.all()
    );
    call.bye();
    drop(media);
    assert!(
        events.wait("ended", Duration::from_secs(5)).is_some(),
        "{:?}",
        events.all()
    );
}

/// Overflow and longest wait on live calls. The operator queue here needs
/// the emergency skill, which seat 1004 lacks: a caller waits there 2 s,
/// overflows to `general` (enterprise skill, which 1004 has) and is
/// answered by 1004. A second caller, with 1004 busy, reaches `general`'s
/// longest wait, hears that all agents are busy, and is let go.
#[test]
fn callers_overflow_to_another_queue_and_leave_at_the_longest_wait() {
    let queues = "name = \"operator\"\nskills = { emergency = 1 }\noverflow_secs = 2\noverflow_queue = \"general\"\n\
                  [[queue]]\nname = \"general\"\nskills = { enterprise = 1 }\nmax_wait_secs = 3\n\
                  [[queue]]\nname = \"emergency\"\n[[queue]]\nname = \"enterprise\"\n\
                  [[queue]]\nname = \"mongolian\"\nlanguage = \"mn\"\n";
    let server = Server::start("acd-overflow", &[MD5_ONLY, ("[queue]", queues)]);
    let _seat = SippSeat::start(&server, "1004", Answer::Answers, 1);
    let (first, first_media, first_dtmf) = dial(&server);
    let (second, second_media, second_dtmf) = dial(&server);
    std::thread::sleep(Duration::from_millis(9_000));
    let mut seq = 40_000;
    press(&first_dtmf, first.server_rtp, '0', 900_000, &mut seq);
    assert!(
        server.wait_log("caller connected to agent", Duration::from_secs(8)),
        "{}",
        server.log()
    );
    let pressed = Instant::now();
    press(&second_dtmf, second.server_rtp, '0', 900_000, &mut seq);
    // 2 s in operator, then 3 s in general: told at about 5 s that all
    // agents are busy, then let go.
    assert!(
        server.wait_log("end=queue-max-wait", Duration::from_secs(20)),
        "{}",
        server.log()
    );
    let heard = second_media.heard_between(pressed, Instant::now());
    let (at, corr) = locate(&envelope(&heard), "queue_timeout", 2.0);
    assert!(
        corr > 0.8 && (4.0..8.0).contains(&(at as f64 / 50.0)),
        "the busy message: r = {corr:.2} at {:.1} s",
        at as f64 / 50.0
    );
    first.bye();
    drop((first_media, second_media));

    let answered = server.call_record(&first.call_id);
    assert_eq!(answered["seat"], "1004", "{answered}");
    assert_eq!(answered["queue"], "general", "overflowed: {answered}");
    let left = server.call_record(&second.call_id);
    assert_eq!(left["end_reason"], "queue-max-wait", "{left}");
    assert!(left["seat"].is_null(), "{left}");
    assert_eq!(
        server.metric("hotline_queue_timed_out_total{queue=\"general\"}"),
        1.0
    );
}
