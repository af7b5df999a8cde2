//! Trunk health: OPTIONS checks against a SIPp trunk that answers and a
//! loopback port where nothing listens, seen through `/healthz`,
//! `/metrics` and the log; the SIPp trunk then goes away and comes back.

mod common;

use common::*;
use serde_json::Value;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// A SIPp UAS that answers every OPTIONS with 200.
const OPTIONS_UAS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="trunk answering OPTIONS">
  <recv request="OPTIONS"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"#;

/// The far end of a trunk, played by SIPp on a fixed loopback port: it
/// answers OPTIONS until dropped.
fn sipp_trunk(port: u16) -> SippProcess {
    SippProcess::start("sipp-trunk", OPTIONS_UAS, port, &["-m", "100000"])
}

fn health(server: &Server) -> Value {
    let (status, body) = server.get("/healthz");
    // A down trunk never makes the node unhealthy.
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `/healthz` until the trunk has `state`.
fn wait_trunk(server: &Server, trunk: &str, state: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let h = health(server);
        if h["trunks"][trunk] == state {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "trunk {trunk} not {state} within {limit:?}: {h}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn trunk_up_metric(server: &Server, trunk: &str) -> f64 {
    server.metric(&format!("hotline_trunk_up{{trunk=\"{trunk}\"}}"))
}

#[test]
fn trunk_checks_follow_the_far_end_going_and_coming_back() {
    let live_port = free_udp_port(1);
    // A port that was free a moment ago: nothing answers there.
    let dead_port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let far_end = sipp_trunk(live_port);
    let trunks = format!(
        "name = \"119\"\nuri = \"sip:119@127.0.0.1:{live_port}\"\noptions_secs = 1\n\n\
         [[trunk]]\nname = \"120\"\nuri = \"sip:120@127.0.0.1:{dead_port}\"\noptions_secs = 1\n\n\
         [[trunk]]\nname = \"pstn\"\nuri = \"sip:{{number}}@127.0.0.1:{dead_port}\"\noptions_secs = 0\n"
    );
    let server = Server::start("trunks", &[("[trunk]", &trunks)]);

    let h = wait_trunk(&server, "119", "up", Duration::from_secs(5));
    let h = if h["trunks"]["120"] == "down" {
        h
    } else {
        wait_trunk(&server, "120", "down", Duration::from_secs(6))
    };
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["trunks_down"], serde_json::json!(["120"]), "{h}");
    // Checks off: never known.
    assert_eq!(h["trunks"]["pstn"], "unknown", "{h}");
    assert_eq!(trunk_up_metric(&server, "119"), 1.0);
    assert_eq!(trunk_up_metric(&server, "120"), 0.0);
    assert_eq!(trunk_up_metric(&server, "pstn"), 0.0);
    assert!(
        server.metric("hotline_trunk_check_failures_total{trunk=\"120\"}") >= 2.0,
        "{}",
        server.get("/metrics").1
    );
    assert_eq!(
        server.metric("hotline_trunk_check_failures_total{trunk=\"119\"}"),
        0.0
    );
    server.expect_log("trunk up trunk=\"119\"", Duration::from_secs(2));
    server.expect_log("trunk down trunk=\"120\"", Duration::from_secs(2));

    drop(far_end);
    wait_trunk(&server, "119", "down", Duration::from_secs(6));
    assert_eq!(trunk_up_metric(&server, "119"), 0.0);
    server.expect_log("trunk down trunk=\"119\"", Duration::from_secs(2));

    let _far_end = sipp_trunk(live_port);
    wait_trunk(&server, "119", "up", Duration::from_secs(5));
    assert_eq!(trunk_up_metric(&server, "119"), 1.0);
    assert_eq!(health(&server)["trunks"]["120"], "down");
}
