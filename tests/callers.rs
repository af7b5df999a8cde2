//! Repeat and abusive callers (regulation art. 26) on the real binary.
//!
//! SIPp callers dial 12345 from chosen numbers. The nuisance sweep (every
//! second here, with a threshold of three calls a day) flags a number that
//! called three times; nothing is blocked until a supervisor reviews the
//! flag. After a block, the next call from that number hears the notice for
//! the block's reason (decoded from the RTP the caller received and matched
//! against the shipped prompt), is hung up by the hotline and recorded as
//! blocked; another number is served as usual meanwhile. The block, set to
//! end a few seconds later, expires by itself and the number is served
//! again. Each step is in the callers' audit log. Agents report harassment
//! on a call; reviews, blocks and lifts are refused to agents (403) and
//! bad fields are named (400).
//!
//! A second test links a repeat call to the citizen's open order. A third
//! runs the store's sweep, review, expiry and audit on SQLite and on the
//! machine's PostgreSQL (`HOTLINE_TEST_POSTGRES`).

mod common;

use common::callers::call_and_listen;
use common::orders::{Client, user};
use common::temp_db::TempDb;
use common::*;
use hotline::call::record::{CallRecord, format_ms, now_ms};
use serde_json::{Value, json};
use std::time::Duration;

/// Calls three times in a few seconds.
const NUISANCE: &str = "13911112222";
/// Calls while the nuisance number is blocked.
const OTHER: &str = "13933334444";
/// Blocked directly by a supervisor, then lifted.
const DIRECT: &str = "13955556666";
/// Has an open order and calls again.
const REPEAT: &str = "13977778888";

/// Detection as the shipped defaults, but three calls a day raise a flag,
/// the sweep runs every second, and other patterns stay quiet.
const CALLERS: &str = "sweep_secs = 1\nrefresh_secs = 1\ncalls_per_day = 3\n\
                       silent_hangups = 100\nlong_calls = 100";

/// A short call from `number` with Call-ID `call_id`: 1.5 s into the
/// greeting, then BYE.
fn short_call(server: &Server, number: &str, call_id: &str) {
    let scenario =
        uac_scenario(Some(&offer("0", "")), &pause(1_500)).replace("13800138000", number);
    let run = sipp(server, &scenario, 1, &["-cid_str", call_id]);
    assert!(run.success, "{}\n{}", run.describe(), server.log());
}

/// Fails unless the call went into the IVR as usual (not turned away).
fn served(server: &Server, call_id: &str) {
    let record = server.call_record(call_id);
    let path: Vec<&str> = record["flow_path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(path.contains(&"main:welcome"), "not served: {record}");
    assert!(
        !record["final_action"]
            .as_str()
            .unwrap_or("")
            .starts_with("blocked"),
        "{record}"
    );
}

/// Waits for `f` to find something in the API.
fn wait_for<T>(what: &str, server: &Server, mut f: impl FnMut() -> Option<T>) -> T {
    poll(Duration::from_secs(20), Duration::from_millis(200), &mut f)
        .unwrap_or_else(|| panic!("{what} did not happen\n{}", server.log()))
}

fn actions(entries: &Value) -> Vec<String> {
    let mut list: Vec<String> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    list.reverse();
    list
}

#[test]
fn a_flagged_number_is_blocked_only_after_review_hears_why_and_is_served_after_expiry() {
    let server = Server::start("callers-flow", &[("callers", CALLERS)]);
    let supervisor = Client::new(&server, &user(&server, "li.jun", "supervisor", None));
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let pid = std::process::id();

    // Three calls in a day from one number: a pending flag naming them.
    let ids: Vec<String> = (1..=3).map(|i| format!("nuisance-{pid}-{i}")).collect();
    for id in &ids {
        short_call(&server, NUISANCE, id);
    }
    let flag = wait_for("a many_calls flag", &server, || {
        let v = supervisor.get("/api/v1/callers/flags?state=pending");
        v.expect(200)["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["pattern"] == "many_calls")
            .cloned()
    });
    let mut evidence: Vec<String> = flag["call_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    evidence.sort();
    assert_eq!(evidence, ids, "{flag}");
    assert_eq!(flag["state"], "pending");
    assert_eq!(flag["suggested_reason"], "repeated_calls");
    assert_eq!(flag["created_by"], "nuisance-sweep");
    let masked = flag["number"].as_str().unwrap();
    assert!(masked != NUISANCE && masked.contains('*'), "{flag}");
    let flag_id = flag["id"].as_i64().unwrap();

    // The sweep runs every second; the same calls flag nothing more.
    std::thread::sleep(Duration::from_millis(2_500));
    let all = supervisor.get("/api/v1/callers/flags?state=all");
    let many: Vec<&Value> = all.expect(200)["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["pattern"] == "many_calls")
        .collect();
    assert_eq!(many.len(), 1, "{all}");

    // A flag blocks nothing: the number is still served.
    let v = supervisor.get("/api/v1/callers/blocks");
    assert_eq!(v.expect(200)["blocks"], json!([]), "{v}");
    let fourth = format!("nuisance-{pid}-4");
    short_call(&server, NUISANCE, &fourth);
    served(&server, &fourth);

    // Only supervisors review; bad fields are named and change nothing.
    let review_path = format!("/api/v1/callers/flags/{flag_id}/review");
    let good = json!({"decision": "block", "reason": "repeated_calls", "duration_days": 7});
    let v = agent.post(&review_path, &good);
    assert!(v.error(403).contains("agent"), "{v}");
    agent.get("/api/v1/callers/flags").error(403);
    let soon = |secs: i64| format_ms(now_ms() + secs * 1000);
    for (body, field) in [
        (
            json!({"decision": "ban", "reason": "repeated_calls", "duration_days": 7}),
            "decision",
        ),
        (
            json!({"decision": "block", "reason": "spam", "duration_days": 7}),
            "reason",
        ),
        (json!({"decision": "block", "duration_days": 7}), "reason"),
        (
            json!({"decision": "block", "reason": "harassment", "duration_days": 0}),
            "duration_days",
        ),
        (
            json!({"decision": "block", "reason": "harassment", "duration_days": 91}),
            "duration_days",
        ),
        (
            json!({"decision": "block", "reason": "harassment"}),
            "duration_days",
        ),
        (
            json!({"decision": "block", "reason": "harassment", "duration_days": "7"}),
            "duration_days",
        ),
        (
            json!({"decision": "block", "reason": "harassment", "until": "tomorrow"}),
            "until",
        ),
        (
            json!({"decision": "block", "reason": "harassment", "until": soon(-60)}),
            "until",
        ),
        (
            json!({"decision": "block", "reason": "harassment", "until": soon(100 * 86_400)}),
            "until",
        ),
        (
            json!({"decision": "dismiss", "duration_days": 3}),
            "duration_days",
        ),
        (
            json!({"reason": "harassment", "duration_days": 3}),
            "decision",
        ),
        (
            json!({"decision": "block", "reason": "harassment", "duration_days": 3, "colour": "red"}),
            "colour",
        ),
    ] {
        let v = supervisor.post(&review_path, &body);
        assert_eq!(v.field(), field, "{body} -> {v}");
    }
    assert_eq!(
        supervisor
            .post("/api/v1/callers/flags/abc/review", &good)
            .field(),
        "id"
    );
    supervisor
        .post("/api/v1/callers/flags/999999/review", &good)
        .error(404);
    let v = supervisor.get(&format!("/api/v1/callers/flags/{flag_id}"));
    assert_eq!(v.expect(200)["flag"]["state"], "pending", "{v}");

    // A supervisor blocks the number until a few seconds from now.
    let v = supervisor.post(
        &review_path,
        &json!({"decision": "block", "reason": "repeated_calls", "until": soon(20),
                "note": "三次无故来电"}),
    );
    let body = v.expect(200);
    assert_eq!(body["flag"]["state"], "blocked", "{v}");
    assert_eq!(body["block"]["state"], "active", "{v}");
    assert_eq!(body["block"]["reason"], "repeated_calls", "{v}");
    let block_id = body["block"]["id"].as_i64().unwrap();
    assert_eq!(body["flag"]["block_id"], block_id);
    supervisor.post(&review_path, &good).error(409);
    let v = supervisor.get("/api/v1/callers/blocks?state=active");
    assert_eq!(v.expect(200)["blocks"][0]["id"], block_id, "{v}");

    // The next call from it hears why, until when and where emergencies
    // go, and the hotline hangs up; another number is served meanwhile.
    let other_id = format!("other-{pid}");
    let other = {
        let (sip, id) = (server.sip, other_id.clone());
        let scenario =
            uac_scenario(Some(&offer("0", "")), &pause(1_500)).replace("13800138000", OTHER);
        std::thread::spawn(move || sipp_to(sip, &scenario, 1, &["-cid_str", &id]))
    };
    let heard = call_and_listen(&server, NUISANCE, Duration::from_secs(60));
    let run = other.join().unwrap();
    assert!(run.success, "{}", run.describe());
    assert!(
        heard.hung_up_by_hotline,
        "the hotline did not hang up: {:?}",
        heard.elapsed
    );
    let diag = || server.log();
    // The whole notice: the three reasons open with the same words.
    expect_prompt(
        &heard.pcm,
        "blocked_repeated_calls",
        14.0,
        true,
        "blocked caller",
        diag,
    );
    let (at_until, _) = expect_prompt(
        &heard.pcm,
        "blocked_until_hours",
        2.0,
        false,
        "blocked caller",
        diag,
    );
    let (at_emergency, _) = expect_prompt(
        &heard.pcm,
        "blocked_emergency",
        4.0,
        false,
        "blocked caller",
        diag,
    );
    assert!(at_until < at_emergency, "the emergency numbers come last");
    let notice = prompt_pcm("blocked_repeated_calls").len();
    assert!(heard.pcm.len() > notice, "the notice was cut short");
    // Not the notice of another reason.
    let (_, other_reason) = locate(
        &envelope(&heard.pcm[..8000 * 20]),
        "blocked_harassment",
        14.0,
    );
    assert!(
        other_reason < 0.8,
        "heard the harassment notice: r = {other_reason:.2}"
    );

    let record = server.call_record(&heard.call_id);
    assert_eq!(
        record["final_action"],
        format!("blocked:{block_id}"),
        "{record}"
    );
    assert_eq!(record["hangup_by"], "hotline", "{record}");
    assert_eq!(record["end_reason"], "flow-hangup", "{record}");
    assert_eq!(
        record["flow_path"],
        json!(["main:check_blocked", "main:blocked_notice"]),
        "{record}"
    );
    let wav = record["call_recording"].as_str().unwrap_or_else(|| {
        panic!(
            "the blocked call is recorded: {record}\nserver log:\n{}",
            server.log()
        )
    });
    let (caller_side, _) = common::media::stereo(wav);
    assert!(
        common::media::dominance(&caller_side, 300.0, 1000.0) > 10.0,
        "the caller's side is not in the recording"
    );
    served(&server, &other_id);

    // The block expires by itself, is marked so, and the number is served.
    let expired = wait_for("the block's expiry", &server, || {
        let v = supervisor.get("/api/v1/callers/blocks?state=expired");
        v.expect(200)["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == block_id)
            .cloned()
    });
    assert_eq!(expired["ended_by"], "callers-expiry", "{expired}");
    let after = format!("nuisance-{pid}-after");
    short_call(&server, NUISANCE, &after);
    served(&server, &after);

    // Every step is audited, masked unless asked for (and that is audited).
    let v = supervisor.get(&format!("/api/v1/callers/audit?number={NUISANCE}"));
    let steps = actions(v.expect(200));
    assert_eq!(steps.first().map(String::as_str), Some("flag"), "{v}");
    for step in ["block", "review"] {
        assert!(steps.contains(&step.to_owned()), "{step} missing: {v}");
    }
    assert_eq!(steps.last().map(String::as_str), Some("expire"), "{v}");
    let entries = &v.json["entries"];
    assert!(entries[0]["number"].as_str().unwrap().contains('*'), "{v}");
    let review = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "review")
        .unwrap();
    assert_eq!(review["actor"], "li.jun");
    assert_eq!(review["role"], "supervisor");
    assert_eq!(review["detail"]["reason"], "repeated_calls");
    assert_eq!(review["detail"]["note"], "三次无故来电");
    let v = supervisor.get(&format!(
        "/api/v1/callers/audit?number={NUISANCE}&personal=true"
    ));
    assert_eq!(v.expect(200)["entries"][0]["number"], NUISANCE, "{v}");
    let v = supervisor.get(&format!("/api/v1/callers/audit?number={NUISANCE}&limit=1"));
    assert_eq!(
        v.expect(200)["entries"][0]["action"],
        "read_personal_data",
        "{v}"
    );
    agent.get("/api/v1/callers/audit").error(403);
    assert_eq!(
        supervisor.get("/api/v1/callers/audit?personal=yes").field(),
        "personal"
    );

    // An agent reports harassment on a call: a pending flag (once).
    let report = format!("/api/v1/calls/{other_id}/flag");
    let v = agent.post(&report, &json!({"reason": "来电者辱骂话务员"}));
    let reported = v.expect(201)["flag"].clone();
    assert_eq!(reported["pattern"], "agent_report", "{v}");
    assert_eq!(reported["call_ids"], json!([other_id]), "{v}");
    assert_eq!(reported["created_by"], "wang.fang", "{v}");
    let again = agent.post(&report, &json!({"reason": "again"}));
    assert_eq!(again.expect(200)["flag"]["id"], reported["id"], "{again}");
    assert_eq!(
        agent.post(&report, &json!({"reason": " "})).field(),
        "reason"
    );
    assert_eq!(agent.post(&report, &json!({})).field(), "reason");
    agent
        .post("/api/v1/calls/no-such-call/flag", &json!({"reason": "x"}))
        .error(404);
    // Dismissed on review: nothing is blocked.
    let v = supervisor.post(
        &format!("/api/v1/callers/flags/{}/review", reported["id"]),
        &json!({"decision": "dismiss", "note": "误报"}),
    );
    assert_eq!(v.expect(200)["flag"]["state"], "dismissed", "{v}");
    assert_eq!(v.json["block"], Value::Null, "{v}");

    // A direct block, lifted early with a reason.
    agent
        .post(
            "/api/v1/callers/blocks",
            &json!({"number": DIRECT, "reason": "harassment", "duration_days": 3}),
        )
        .error(403);
    for (body, field) in [
        (
            json!({"number": "12345", "reason": "harassment", "duration_days": 3}),
            "number",
        ),
        (
            json!({"number": "call me", "reason": "harassment", "duration_days": 3}),
            "number",
        ),
        (
            json!({"number": DIRECT, "reason": "rude", "duration_days": 3}),
            "reason",
        ),
        (
            json!({"number": DIRECT, "reason": "harassment"}),
            "duration_days",
        ),
        (
            json!({"reason": "harassment", "duration_days": 3}),
            "number",
        ),
    ] {
        assert_eq!(
            supervisor.post("/api/v1/callers/blocks", &body).field(),
            field,
            "{body}"
        );
    }
    let v = supervisor.post(
        "/api/v1/callers/blocks",
        &json!({"number": DIRECT, "reason": "harassment", "duration_days": 3, "note": "转交"}),
    );
    let direct = v.expect(201)["block"]["id"].as_i64().unwrap();
    let lift = format!("/api/v1/callers/blocks/{direct}/lift");
    assert_eq!(supervisor.post(&lift, &json!({})).field(), "reason");
    agent.post(&lift, &json!({"reason": "x"})).error(403);
    let v = supervisor.post(&lift, &json!({"reason": "市民已致歉"}));
    assert_eq!(v.expect(200)["block"]["state"], "lifted", "{v}");
    supervisor
        .post(&lift, &json!({"reason": "again"}))
        .error(409);
    let v = supervisor.get(&format!("/api/v1/callers/audit?number={DIRECT}"));
    assert_eq!(actions(v.expect(200)), ["block", "lift"], "{v}");
    let v = supervisor.get("/api/v1/callers/blocks?state=lifted&personal=true");
    assert_eq!(v.expect(200)["blocks"][0]["number"], DIRECT, "{v}");
}

#[test]
fn a_repeat_call_joins_the_open_order() {
    let server = Server::start("callers-repeat", &[]);
    let agent = Client::new(&server, &user(&server, "wang.fang", "agent", None));
    let v = agent.post(
        "/api/v1/orders",
        &json!({
            "channel": "phone",
            "citizen": {"name": "赵敏", "phone": REPEAT},
            "appeal_type": "help",
            "category": "010701",
            "division": "150102",
            "location": "新城区海拉尔东街 12 号",
            "content": "路灯不亮已经一周了",
        }),
    );
    let no = v.expect(201)["order"]["order_no"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(v.json["order"]["repeat_calls"], 0, "{v}");

    let call_id = format!("repeat-{}", std::process::id());
    short_call(&server, REPEAT, &call_id);
    let order = wait_for("the repeat call on the order", &server, || {
        let v = agent.get(&format!("/api/v1/orders/{no}"));
        let order = v.expect(200)["order"].clone();
        (order["repeat_calls"] == 1).then_some(order)
    });
    let calls = order["intake"]["calls"].as_array().unwrap();
    assert!(calls.iter().any(|c| c["call_id"] == call_id), "{order}");
    let linked = calls.iter().find(|c| c["call_id"] == call_id).unwrap();
    assert!(
        linked["ivr_path"]
            .as_array()
            .unwrap()
            .contains(&json!("main:welcome")),
        "{linked}"
    );
    let supervisor = Client::new(&server, &user(&server, "li.jun", "supervisor", None));
    let v = supervisor.get(&format!("/api/v1/orders/{no}/audit"));
    let entry = v.expect(200)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "repeat_call")
        .cloned()
        .unwrap_or_else(|| panic!("no repeat_call audit entry: {v}"));
    assert_eq!(entry["actor"], "repeat-caller", "{entry}");

    // A call from someone without an open order links nothing.
    let stranger = format!("stranger-{}", std::process::id());
    short_call(&server, OTHER, &stranger);
    server.call_record(&stranger);
    std::thread::sleep(Duration::from_millis(500));
    let v = agent.get(&format!("/api/v1/orders/{no}"));
    assert_eq!(v.expect(200)["order"]["repeat_calls"], 1, "{v}");
}

/// A call record from `caller` `ago_ms` before now, 60 s in the IVR.
fn record(call_id: &str, caller: &str, now: i64, ago_ms: i64) -> CallRecord {
    let start = now - ago_ms;
    CallRecord {
        call_id: call_id.into(),
        caller: caller.into(),
        callee: "12345".into(),
        remote_addr: "127.0.0.1:5060".into(),
        transport: "udp".into(),
        started_at: start,
        answered_at: Some(start + 100),
        ended_at: start + 60_000,
        status: 200,
        end_reason: "caller-bye".into(),
        hangup_by: "caller".into(),
        flow: Some("main".into()),
        final_action: Some("hangup".into()),
        ..CallRecord::default()
    }
}

/// Sweep, review, expiry and audit through the store on one database.
async fn store_round(url: &str) {
    use hotline::auth::{Principal, Role};
    use hotline::callers::Reason;
    use hotline::store::callers::Decision;
    let store = hotline::store::Store::connect(url).await.unwrap();
    let now = now_ms();
    let mut records: Vec<CallRecord> = (0..3)
        .map(|i| record(&format!("s-{i}"), NUISANCE, now, (i + 1) * 600_000))
        .collect();
    records.push(record("s-old", NUISANCE, now, 30 * 3_600_000));
    records.push(record("s-other", OTHER, now, 1_000));
    store.insert_calls(&records).await.unwrap();
    let config = hotline::callers::config::CallersConfig {
        calls_per_day: 3,
        ..Default::default()
    };
    let thresholds = config.thresholds();
    assert_eq!(
        hotline::callers::task::sweep(&store, &thresholds, now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        hotline::callers::task::sweep(&store, &thresholds, now + 1)
            .await
            .unwrap(),
        0
    );
    // serve's sweeper: whole window first, then only numbers with new records.
    let mut sweeper = hotline::callers::task::Sweeper::default();
    assert_eq!(sweeper.run(&store, &thresholds, now).await.unwrap(), 0);
    let more: Vec<CallRecord> = (0..3)
        .map(|i| record(&format!("d-{i}"), DIRECT, now, (i + 1) * 1_000))
        .collect();
    store.insert_calls(&more).await.unwrap();
    assert_eq!(sweeper.run(&store, &thresholds, now).await.unwrap(), 1);
    assert_eq!(sweeper.run(&store, &thresholds, now).await.unwrap(), 0);
    let direct = store.flags(Some("pending"), 10).await.unwrap();
    assert_eq!(direct[0].number, DIRECT);
    assert_eq!(direct[0].call_ids, ["d-2", "d-1", "d-0"]);

    let flags: Vec<_> = store
        .flags(Some("pending"), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.number == NUISANCE)
        .collect();
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].call_ids, ["s-2", "s-1", "s-0"], "oldest first");

    let boss = Principal {
        name: "li.jun".into(),
        role: Role::Supervisor,
        unit: None,
    };
    let until = now + 60_000;
    let decision = Decision::Block {
        reason: Reason::LineOccupation,
        until,
    };
    let (flag, block) = store
        .review_flag(flags[0].id, &boss, &decision, "note", now)
        .await
        .unwrap();
    assert_eq!(flag.state, "blocked");
    let block = block.unwrap();
    assert!(
        store
            .review_flag(flags[0].id, &boss, &decision, "", now)
            .await
            .is_err()
    );
    let active = store.active_blocks(now).await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(
        (active[0].id, active[0].reason),
        (block.id, Reason::LineOccupation)
    );
    assert_eq!(store.expire_blocks(now).await.unwrap(), 0);
    assert_eq!(store.expire_blocks(until).await.unwrap(), 1);
    assert_eq!(store.expire_blocks(until).await.unwrap(), 0, "expired once");
    assert!(store.active_blocks(until).await.unwrap().is_empty());
    assert_eq!(
        store.block(block.id).await.unwrap().unwrap().state,
        "expired"
    );
    let audit = store.caller_audit(Some(NUISANCE), 10).await.unwrap();
    let mut steps: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    steps.reverse();
    assert_eq!(steps, ["flag", "block", "review", "expire"]);
    assert!(
        store
            .open_orders_of(NUISANCE, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

#[test]
fn the_store_flags_blocks_and_expires_on_sqlite_and_postgresql() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = scratch("callers-store");
    rt.block_on(store_round(&format!(
        "sqlite://{}/hotline.db",
        dir.display()
    )));
    let db = TempDb::new("callers");
    db.rt.block_on(store_round(&db.url()));
}

/// The call path reads blocks from memory: with the database away, a
/// blocked number is still turned away with its notice, the API says 503,
/// and the call's record is written once the database is back.
#[test]
fn a_blocked_number_stays_blocked_while_the_database_is_away() {
    let db = TempDb::new("callers_down");
    let store = format!("database_url = \"{}\"", db.url());
    let server = Server::start(
        "callers-down",
        &[("store", &store), ("callers", "refresh_secs = 1")],
    );
    let supervisor = Client::new(&server, &user(&server, "li.jun", "supervisor", None));
    let v = supervisor.post(
        "/api/v1/callers/blocks",
        &json!({"number": DIRECT, "reason": "harassment", "duration_days": 1}),
    );
    let block = v.expect(201)["block"]["id"].as_i64().unwrap();
    // The API's change reaches the view at once; let one refresh pass too.
    std::thread::sleep(Duration::from_millis(1_500));

    db.outage();
    server.expect_log("active blocks not re-read", Duration::from_secs(10));
    let v = supervisor.get("/api/v1/callers/blocks");
    assert!(v.error(503).contains("database"), "{v}");

    // Six seconds of the call: the harassment notice from its start.
    let heard = call_and_listen(&server, DIRECT, Duration::from_secs(6));
    expect_prompt(
        &heard.pcm,
        "blocked_harassment",
        4.0,
        true,
        "blocked caller during the outage",
        || server.log(),
    );

    db.restore();
    let record = server.call_record(&heard.call_id);
    assert_eq!(
        record["final_action"],
        format!("blocked:{block}"),
        "{record}"
    );
    assert_eq!(record["hangup_by"], "caller", "{record}");
}
