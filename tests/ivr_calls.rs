//! Callers navigate the shipped IVR flows with RFC 4733 digits: the prompts
//! they hear (decoded), the path and final action on the call record, reload
//! while calls are up, and the per-node counts.

mod common;

use common::*;
use std::time::{Duration, Instant};

const DTMF: &str = "a=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n";

fn record_path(call: &serde_json::Value) -> Vec<String> {
    call["flow_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A repeat caller presses 1 (Mandarin), hears the priority notice and the
/// 110/119/120/122 guidance, presses 1 (emergency) and 3 (gas), and waits in
/// the emergency queue: every prompt is found in the decoded audio, in order.
#[test]
fn repeat_caller_reaches_the_emergency_queue_and_hears_each_prompt() {
    let server = Server::start("ivr-audio", &[]);
    // An open order from yesterday makes this caller a repeat caller.
    let db = format!("sqlite://{}/hotline.db", server.dir.display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
        let day_ago = hotline::call::record::now_ms() - 86_400_000;
        sqlx::query("INSERT INTO work_orders (order_no, caller, status, created_at, updated_at) VALUES ('20261126001', '13800138000', 'handling', ?, ?)")
            .bind(day_ago)
            .bind(day_ago)
            .execute(&mut conn)
            .await
            .unwrap();
    });

    let (rtp, _rtcp) = rtp_sockets();
    let port = rtp.local_addr().unwrap().port();
    let call = RawCall::place(&server, port, "0 101", DTMF);
    let to = call.server_rtp;
    let capture = {
        let rtp = rtp.try_clone().unwrap();
        std::thread::spawn(move || {
            capture_rtp(&rtp, Duration::from_secs(60), Duration::from_secs(5))
        })
    };
    let mut seq = 1;
    // welcome (7.9 s, no barge-in), then choose_language: press 1 in it.
    std::thread::sleep(Duration::from_millis(9_500));
    press(&rtp, to, '1', 1000, &mut seq);
    // repeat notice (5.9 s) and guidance (13.2 s, no barge-in), then the menu.
    std::thread::sleep(Duration::from_millis(21_000));
    press(&rtp, to, '1', 2000, &mut seq);
    std::thread::sleep(Duration::from_millis(2_000));
    press(&rtp, to, '3', 3000, &mut seq);
    std::thread::sleep(Duration::from_millis(9_000));
    call.bye();
    let packets = capture.join().unwrap();

    let record = server.call_record(&call.call_id);
    assert_eq!(
        record["final_action"],
        "queue:emergency:9",
        "{record}\n{}",
        server.log()
    );
    assert_eq!(record["queue"], "emergency");
    assert_eq!(record["digits"], "113");
    let path = record_path(&record);
    for node in [
        "main:welcome",
        "main:choose_language",
        "main:lang_cmn",
        "main:mark_repeat",
        "main:repeat_notice",
        "main:emergency_guidance",
        "main:main_menu",
        "main:emergency_menu",
        "main:emergency_gas",
        "main:emergency",
    ] {
        assert!(
            path.iter().any(|p| p == node),
            "{node} missing from {path:?}"
        );
    }

    let heard: Vec<i16> = packets
        .iter()
        .flat_map(|(pt, p, _)| decode(*pt, p))
        .collect();
    let env = envelope(&heard);
    let mut last = 0;
    for (prompt, secs) in [
        ("welcome", 5.0),
        ("choose_language", 0.8),
        ("repeat_caller_priority", 4.0),
        ("emergency_guidance", 8.0),
        ("main_menu", 1.2),
        ("emergency_menu", 1.2),
        ("emergency_hold", 2.0),
        ("hold_music", 3.0),
    ] {
        let (at, corr) = locate(&env, prompt, secs);
        assert!(
            corr > 0.85,
            "{prompt} not heard (best correlation {corr:.2} at {at})"
        );
        assert!(
            at >= last,
            "{prompt} heard out of order (frame {at}, previous {last})"
        );
        last = at;
    }
}

/// SIPp plays the shipped RFC 4733 captures: 1 for Mandarin, then 2 for the
/// general queue.
#[test]
fn sipp_caller_navigates_to_the_general_queue() {
    let server = Server::start("ivr-sipp", &[]);
    let after_ack = [
        pause(9_500),
        play_pcap("dtmf_2833_1.pcap"),
        pause(15_000),
        play_pcap("dtmf_2833_2.pcap"),
        pause(2_500),
    ]
    .concat();
    let run = sipp(
        &server,
        &uac_scenario(Some(&offer("0 101", DTMF)), &after_ack),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    let call = server.call_record(&sipp_call_id(&run));
    assert_eq!(
        call["final_action"],
        "queue:general:5",
        "{call}\n{}",
        server.log()
    );
    assert_eq!(call["digits"], "12");
    assert_eq!(call["flow"], "main");
    assert_eq!(call["flow_hash"].as_str().unwrap().len(), 64);
    assert_eq!(
        record_path(&call),
        [
            "main:check_blocked",
            "main:welcome",
            "main:choose_language",
            "main:lang_cmn",
            "main:check_repeat",
            "main:emergency_guidance",
            "main:main_menu",
            "main:to_general",
            "main:general"
        ]
    );
}

fn flows_hash(server: &Server) -> String {
    let (_, body) = server.get("/api/v1/flows");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "main")
        .unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Calls to the general queue (SIPp): press 1 for Mandarin, then 2.
fn general_queue_calls(server: &Server, calls: u32) -> std::thread::JoinHandle<SippRun> {
    let after_ack = [
        pause(9_500),
        play_pcap("dtmf_2833_1.pcap"),
        pause(15_000),
        play_pcap("dtmf_2833_2.pcap"),
        pause(1_500),
    ]
    .concat();
    let scenario = uac_scenario(Some(&offer("0 101", DTMF)), &after_ack);
    let sip = server.sip;
    std::thread::spawn(move || sipp_to(sip, &scenario, calls, &["-r", "4", "-l", "10"]))
}

/// Calls in progress finish on the version they started with while new calls
/// get the edited flow; a broken edit is refused and drops nothing.
#[test]
fn reload_under_load_keeps_each_call_on_its_version() {
    let dir = scratch("ivr-reload");
    let flows = editable_flows(&dir);
    let server = Server::start(
        "ivr-reload",
        &[("ivr", &format!("flows_dir = \"{}\"", flows.display()))],
    );
    let v1 = flows_hash(&server);
    let before = general_queue_calls(&server, 3);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metric("hotline_active_calls") < 3.0 {
        assert!(Instant::now() < deadline, "calls did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The edit: the general queue's priority goes from 5 to 6. The watcher
    // picks it up.
    let main = flows.join("main.yaml");
    let text = std::fs::read_to_string(&main).unwrap();
    let edited = text.replacen(
        "    queue: general\n    priority: 5",
        "    queue: general\n    priority: 6",
        1,
    );
    assert_ne!(edited, text, "the general queue node moved in main.yaml");
    std::fs::write(&main, &edited).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while flows_hash(&server) == v1 {
        assert!(
            Instant::now() < deadline,
            "the edit was not picked up\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let v2 = flows_hash(&server);
    let after = general_queue_calls(&server, 2);

    // A broken edit is refused with its position; the running flows stay.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&main, edited.replace("type: menu", "type: menuu")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let errors = loop {
        let (_, body) = server.get("/api/v1/flows");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if let Some(first) = v["last_errors"].as_array().and_then(|e| e.first()).cloned() {
            break first.as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the broken edit was not reported\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(errors.contains("main.yaml:"), "{errors}");
    assert_eq!(
        flows_hash(&server),
        v2,
        "a broken edit replaced the running flow"
    );
    let (status, body) = server.post("/api/v1/admin/reload", "");
    assert_eq!(status, 422, "{body}");

    let before = before.join().unwrap();
    let after = after.join().unwrap();
    assert!(
        before.success,
        "calls dropped during reload: {}\n{}",
        before.describe(),
        server.log()
    );
    assert!(
        after.success,
        "calls dropped after reload: {}\n{}",
        after.describe(),
        server.log()
    );
    // Records are written just after each call ends: wait for all five.
    let deadline = Instant::now() + Duration::from_secs(10);
    let calls = loop {
        let calls = server.recent_calls(10);
        if calls.len() >= 5 || Instant::now() > deadline {
            break calls;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let on = |hash: &str, action: &str| {
        calls
            .iter()
            .filter(|c| c["flow_hash"] == hash && c["final_action"] == action)
            .count()
    };
    assert_eq!(on(&v1, "queue:general:5"), 3, "{calls:#?}");
    assert_eq!(on(&v2, "queue:general:6"), 2, "{calls:#?}");
}

/// Per-node counts match the calls made: three reach the general queue and
/// hang up there, one hangs up during the welcome.
#[test]
fn node_counts_match_the_calls() {
    let server = Server::start("ivr-stats", &[]);
    let queued = general_queue_calls(&server, 3);
    let early = uac_scenario(Some(&offer("0 101", DTMF)), &pause(2_000));
    let run = sipp(&server, &early, 1, &[]);
    assert!(run.success, "{}", run.describe());
    let queued = queued.join().unwrap();
    assert!(queued.success, "{}\n{}", queued.describe(), server.log());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.recent_calls(10).len() < 4 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }

    let (status, body) = server.get("/api/v1/flows/main/stats");
    assert_eq!(status, 200, "{body}");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    let node = |id: &str| stats["nodes"][id].clone();
    assert_eq!(node("check_blocked")["entered"], 4, "{stats:#}");
    assert_eq!(node("welcome")["entered"], 4);
    assert_eq!(node("welcome")["hung_up"], 1);
    assert_eq!(node("welcome")["left"]["next"], 3);
    assert_eq!(node("choose_language")["left"]["1"], 3);
    assert_eq!(node("main_menu")["left"]["2"], 3);
    assert_eq!(node("general")["entered"], 3);
    assert_eq!(node("general")["hung_up"], 3, "they hung up while holding");
    assert_eq!(node("emergency")["entered"], 0);
    assert_eq!(
        server.metric("hotline_ivr_node_hangups_total{flow=\"main\",node=\"welcome\"}"),
        1.0
    );
    let (status, _) = server.get("/api/v1/flows/nope/stats");
    assert_eq!(status, 404);
}
