//! The supervisor view (`/supervisor`) in a real headless Chromium whose
//! fake microphone speaks 1.4 kHz (the supervisor's voice), over a caller
//! (600 Hz, through the real IVR to the operator queue) talking with agent
//! seat 1001, a browser seat played by the `webrtc` crate speaking 1 kHz.
//! The supervisor logs in their own seat, 1003, made a supervisor by the
//! API user of the same name; the seats and queues tables show the floor;
//! listen, whisper, barge and stop are clicked on the page, and Goertzel
//! says who hears whom at each step, on the caller's RTP, on what the
//! agent's WebRTC connection decoded and on what the supervisor's page
//! received (the same expectations as `acd_calls.rs` has for softphones
//! and `src/call/mixplan.rs` states).

mod common;

use common::browser::js_string;
use common::conversation::{AGENT_TONE, trunk_server};
use common::desk::*;
use common::media::*;
use common::orders::user;
use common::rtc_client::{self, RtcSeat, opus_tone};
use common::*;
use std::sync::Mutex;
use std::time::Duration;

/// The supervisor's voice.
const SUPERVISOR_TONE: f32 = 1400.0;
/// Every party's tone: a party must hear none but the ones it should.
const ALL: [f32; 3] = [CALLER_TONE, AGENT_TONE, SUPERVISOR_TONE];

const AGENT: &str = "1001";
const SUPERVISOR: &str = "1003";

/// The tones `pcm` must not hold: every party's but `want`.
fn others(want: &[f32]) -> Vec<f32> {
    ALL.into_iter().filter(|t| !want.contains(t)).collect()
}

/// What the agent's connection decoded over the last `window`'s length
/// (read right after the window closed; the agent's decoder keeps no
/// arrival times).
fn agent_tail(heard: &Mutex<Vec<i16>>, window: &Window) -> Vec<i16> {
    let n = ((window.to - window.from).as_secs_f32() * 8000.0) as usize;
    let heard = heard.lock().unwrap();
    heard[heard.len().saturating_sub(n)..].to_vec()
}

/// Who must hear which tones at one step, `when` saying which; the
/// supervisor's page is not checked when `supervisor` is `None`.
struct Hearing<'a> {
    when: &'a str,
    caller: &'a [f32],
    agent: &'a [f32],
    supervisor: Option<&'a [f32]>,
}

/// Listens to all three for two seconds and checks by Goertzel that the
/// caller, the agent and the supervisor each hear exactly the tones
/// `want` names.
fn check_hearing(
    desk: &mut Desk,
    caller: &ToneMedia,
    agent: &Mutex<Vec<i16>>,
    want: Hearing,
    diag: &dyn Fn() -> String,
) {
    let when = want.when;
    let w = desk.listen(2.0);
    let by_agent = agent_tail(agent, &w);
    let by_caller = caller.heard_between(w.from, w.to);
    assert_hears(
        &format!("the caller {when}"),
        &by_caller,
        want.caller,
        &others(want.caller),
        diag,
    );
    assert_hears(
        &format!("the agent {when}"),
        &by_agent,
        want.agent,
        &others(want.agent),
        diag,
    );
    if let Some(tones) = want.supervisor {
        desk.hears(
            &format!("the supervisor's page {when}"),
            &w,
            tones,
            &others(tones),
            diag,
        );
    }
}

/// Issue "supervisor view": listen → the supervisor's page is rung and
/// answers by itself and hears caller and agent, neither hears the
/// supervisor; whisper → the agent hears the supervisor, the caller does
/// not; barge → all three hear each other; stop → the supervisor is gone
/// and caller and agent still talk. The seats table shows the agent in
/// the call, the queues table the caller waiting behind it.
#[test]
fn a_supervisor_listens_whispers_and_barges_in_from_the_browser() {
    // Seats come in logged out: the supervisor's seat takes no queue
    // calls, and the agent's is logged in by hand.
    let server = trunk_server(
        "browser-supervisor",
        &[],
        &[
            ("webseat", "enabled = true"),
            ("registrar", "available_on_register = false"),
        ],
    );
    user(&server, SUPERVISOR, "supervisor", None);
    let rt = rtc_client::runtime();
    let log = || server.log();

    // 1. The agent's browser seat logs in and is available.
    let mut agent = rt.block_on(RtcSeat::login(server.http, AGENT, "hotline-1001"));
    let (status, body) = server.post(&format!("/api/v1/seats/{AGENT}/login"), "");
    assert_eq!(status, 200, "{body}\n{}", log());
    wait_seat(
        &server,
        AGENT,
        "is not available and registered after logging in",
        |s| s["status"] == "available" && s["registered"] == true,
        &log,
    );

    // 2. The supervisor logs in on the page with their own seat, before
    // the calls come (the page learns a call's id from its events).
    let mut desk = Desk::open(
        &server,
        "browser-supervisor",
        "/supervisor",
        SUPERVISOR_TONE,
    );
    desk.log_in(SUPERVISOR, "hotline-1003", &log);
    assert_eq!(
        desk.desk_field("role"),
        "supervisor",
        "the API user 1003 does not make the session a supervisor"
    );
    desk.browser.wait_until(
        "document.querySelector('#events-state')?.textContent.includes('已连接')",
        PAGE,
        "the page's floor events do not connect",
        &log,
    );

    // A caller asks for the operator and the agent takes the call; a
    // second caller then waits in the queue behind it.
    let (call, caller, keys) = dial(&server);
    let (second, second_caller, second_keys) = dial(&server);
    let diag = || {
        format!(
            "--- caller {}--- second caller {}--- server log ---\n{}",
            caller.describe(),
            second_caller.describe(),
            server.log()
        )
    };
    let mut seq = to_operator(&keys, &call);
    let ring =
        rt.block_on(agent.take_call(opus_tone(AGENT_TONE, 1.0), true, Duration::from_secs(15)));
    assert_eq!(ring["caller_call_id"], call.call_id.as_str(), "{ring}");
    rt.block_on(agent.wait_for("connected", Duration::from_secs(10)));
    assert!(
        server.wait_log("caller connected to agent", PAGE),
        "the caller was not connected to the agent\n{}",
        diag()
    );
    press(&second_keys, second.server_rtp, '0', 900_000, &mut seq);
    let waiting = poll(PAGE, Duration::from_millis(100), || {
        let (_, body) = server.get("/api/v1/queues");
        let queues: serde_json::Value = serde_json::from_str(&body).ok()?;
        queues["queues"]
            .as_array()?
            .iter()
            .any(|q| q["name"] == "operator" && q["waiting"] == 1)
            .then_some(())
    });
    assert!(
        waiting.is_some(),
        "the second caller is not waiting in the operator queue: {}\n{}",
        server.get("/api/v1/queues").1,
        diag()
    );
    let agent_heard = std::sync::Arc::clone(&agent.heard);

    // 3. The seats table, kept live by the floor's events: the agent in
    // the caller's call, with the monitor buttons for it; the supervisor's
    // own row has none.
    let row = format!("#seats tr[data-seat=\"{AGENT}\"]");
    let listen = format!(
        "{row} button[data-monitor=\"listen\"][data-call={}]",
        js_string(&call.call_id)
    );
    let in_call = format!(
        "document.querySelector('{row}')?.dataset.status === 'in_call' && \
         !!document.querySelector({})",
        js_string(&listen)
    );
    let shown_in_call = poll(PAGE, Duration::from_millis(100), || {
        (desk.browser.eval(&in_call) == true).then_some(())
    });
    if shown_in_call.is_none() {
        let table = desk
            .browser
            .eval("document.querySelector('#seats').outerHTML");
        let seats = server.get("/api/v1/seats").1;
        panic!(
            "the seats table does not show the agent in the caller's call {}:\n{}\n\
             GET /api/v1/seats: {seats}\npage console:\n{}\n{}",
            call.call_id,
            table.as_str().unwrap_or_default(),
            desk.browser.console(),
            diag()
        );
    }
    let shown = desk.browser.text(&row).unwrap_or_default();
    eprintln!("the agent's row: {shown}");
    for mode in ["whisper", "barge"] {
        let button = format!("{row} button[data-monitor=\"{mode}\"]");
        assert_eq!(
            desk.browser.attribute(&button, "data-call").as_deref(),
            Some(call.call_id.as_str()),
            "{button}"
        );
    }
    let own = format!("#seats tr[data-seat=\"{SUPERVISOR}\"]");
    desk.browser.wait_until(
        &format!("!!document.querySelector('{own}')"),
        PAGE,
        "the supervisor's own seat is not in the table",
        &diag,
    );
    assert_eq!(
        desk.browser
            .eval(&format!("document.querySelectorAll('{own} button').length")),
        0,
        "the supervisor's own row offers to monitor"
    );
    // The queues table: the second caller waiting.
    desk.browser.wait_until(
        "document.querySelector('#queues tr[data-queue=\"operator\"] .waiting')\
         ?.textContent.trim() === '1'",
        PAGE,
        "the queues table does not show the caller waiting in the operator queue",
        &diag,
    );
    desk.browser.keep_screenshot("browser-supervisor-board");

    // Before anyone supervises: caller and agent hear each other (the
    // agent's Opus tone may need a moment to come through).
    let mut w = desk.listen(1.0);
    for _ in 0..5 {
        if presence(&caller.heard_between(w.from, w.to), AGENT_TONE) > 0.1 {
            break;
        }
        w = desk.listen(1.0);
    }
    check_hearing(
        &mut desk,
        &caller,
        &agent_heard,
        Hearing {
            when: "before anyone supervises",
            caller: &[AGENT_TONE],
            agent: &[CALLER_TONE],
            supervisor: None,
        },
        &diag,
    );

    // 4. Listen: the page is rung, answers by itself, hears both sides.
    desk.browser.click(&listen);
    desk.wait_attribute("#monitor-state", "data-state", "active", &diag);
    assert_eq!(
        desk.browser
            .attribute("#monitor-state", "data-mode")
            .as_deref(),
        Some("listen")
    );
    assert_eq!(
        desk.browser
            .attribute("#monitor-state", "data-call")
            .as_deref(),
        Some(call.call_id.as_str())
    );
    assert!(
        server.wait_log("supervisor joined", PAGE),
        "the supervisor's seat did not join\n{}",
        diag()
    );
    desk.listen_to_call(&diag);
    check_hearing(
        &mut desk,
        &caller,
        &agent_heard,
        Hearing {
            when: "while the supervisor listens",
            caller: &[AGENT_TONE],
            agent: &[CALLER_TONE],
            supervisor: Some(&[CALLER_TONE, AGENT_TONE]),
        },
        &diag,
    );
    desk.browser.keep_screenshot("browser-supervisor-listen");

    // 5. Whisper: the agent hears the supervisor, the caller does not.
    desk.browser
        .click(&format!("{row} button[data-monitor=\"whisper\"]"));
    desk.wait_attribute("#monitor-state", "data-mode", "whisper", &diag);
    desk.wait_attribute("#monitor-state", "data-state", "active", &diag);
    check_hearing(
        &mut desk,
        &caller,
        &agent_heard,
        Hearing {
            when: "while the supervisor whispers",
            caller: &[AGENT_TONE],
            agent: &[CALLER_TONE, SUPERVISOR_TONE],
            supervisor: Some(&[CALLER_TONE, AGENT_TONE]),
        },
        &diag,
    );

    // 6. Barge: all three hear each other.
    desk.browser
        .click(&format!("{row} button[data-monitor=\"barge\"]"));
    desk.wait_attribute("#monitor-state", "data-mode", "barge", &diag);
    desk.wait_attribute("#monitor-state", "data-state", "active", &diag);
    check_hearing(
        &mut desk,
        &caller,
        &agent_heard,
        Hearing {
            when: "after the supervisor barged in",
            caller: &[AGENT_TONE, SUPERVISOR_TONE],
            agent: &[CALLER_TONE, SUPERVISOR_TONE],
            supervisor: Some(&[CALLER_TONE, AGENT_TONE]),
        },
        &diag,
    );
    desk.browser.keep_screenshot("browser-supervisor-barge");
    // The row shows which mode the supervisor is in.
    desk.browser.wait_until(
        &format!(
            "document.querySelector('{row} button[data-monitor=\"barge\"]')\
             ?.getAttribute('aria-pressed') === 'true'"
        ),
        PAGE,
        "the barge button does not show the mode",
        &diag,
    );
    // One supervisor leg all along: the mode changed, no second ring.
    assert_eq!(
        server.log().matches("ringing supervisor").count(),
        1,
        "the supervisor was rung more than once\n{}",
        diag()
    );

    // 7. Stop: the supervisor's leg ends; caller and agent carry on.
    desk.browser.click("#btn-monitor-stop");
    desk.wait_attribute("#monitor-state", "data-state", "idle", &diag);
    desk.browser.wait_until(
        "window.hotlineDesk && hotlineDesk.call === null",
        PAGE,
        "the supervisor's leg did not end after stopping",
        &diag,
    );
    check_hearing(
        &mut desk,
        &caller,
        &agent_heard,
        Hearing {
            when: "after the supervisor stopped",
            caller: &[AGENT_TONE],
            agent: &[CALLER_TONE],
            supervisor: None,
        },
        &diag,
    );
    assert_eq!(
        desk.browser
            .attribute(
                &format!("{row} button[data-monitor=\"listen\"]"),
                "aria-pressed"
            )
            .as_deref(),
        Some("false"),
        "the listen button still shows the call supervised"
    );

    // The caller leaves; the call record is the agent's alone.
    call.bye();
    rt.block_on(agent.wait_for("ended", Duration::from_secs(10)));
    let record = server.call_record(&call.call_id);
    assert_eq!(record["seat"], AGENT, "{record:#}");
    assert_eq!(record["end_reason"], "caller-bye", "{record:#}");
    second.bye();
    drop(caller);
    drop(second_caller);
}
