//! The browser-seat gateway with a WebRTC client made with the `webrtc`
//! crate (DTLS-SRTP, 48 kHz Opus like a browser): a caller comes through
//! the real IVR to the operator queue and the browser seat answers; each
//! side's tone is decoded on the other. Bad input on the desktop socket
//! gets a clear error and leaves the socket usable.

mod common;

use common::conversation::trunk_server;
use common::media::*;
use common::rtc_client::{self, RtcSeat, opus_tone};
use common::*;
use std::time::{Duration, Instant};

/// The browser agent's voice.
const BROWSER_TONE: f32 = 1000.0;

#[test]
fn a_browser_seat_answers_a_queued_call_and_both_hear_each_other() {
    let server = trunk_server("webseat-call", &[], &[]);
    let rt = rtc_client::runtime();
    let mut seat = rt.block_on(RtcSeat::login(server.http, "1001", "hotline-1001"));
    let (status, body) = server.get("/api/v1/seats/1001");
    assert_eq!(status, 200, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["registered"], true, "{view}");
    assert_eq!(view["status"], "available", "{view}");

    let (call, caller, keys) = dial(&server);
    to_operator(&keys, &call);
    let ring =
        rt.block_on(seat.take_call(opus_tone(BROWSER_TONE, 1.0), true, Duration::from_secs(15)));
    assert_eq!(
        ring["caller_call_id"], call.call_id,
        "the ring names the caller's call: {ring}"
    );
    rt.block_on(seat.wait_for("connected", Duration::from_secs(10)));
    server.expect_log("caller connected to agent", Duration::from_secs(10));
    // Let audio flow both ways, then listen to two seconds of each side.
    std::thread::sleep(Duration::from_millis(1_500));
    let mark = seat.heard.lock().unwrap().len();
    let from = Instant::now();
    std::thread::sleep(Duration::from_millis(2_000));
    let to = Instant::now();
    let caller_heard = caller.heard_between(from, to);
    let diag = || format!("{}\nseat saw: {:?}", server.log(), seat.seen);
    assert_hears(
        "the caller",
        &caller_heard,
        &[BROWSER_TONE],
        &[CALLER_TONE],
        diag,
    );
    let browser_heard = seat.heard_since(mark);
    assert_hears(
        "the browser seat",
        &browser_heard,
        &[CALLER_TONE],
        &[BROWSER_TONE],
        || format!("{} samples; {}", browser_heard.len(), server.log()),
    );

    // The agent hangs up from the desktop: the caller's call ends with the
    // agent as the one who hung up, and the seat goes to wrap-up.
    rt.block_on(seat.hang_up());
    let ended = rt.block_on(seat.wait_for("ended", Duration::from_secs(10)));
    assert_eq!(ended["reason"], "agent_hangup", "{ended}");
    call.bye();
    let record = server.call_record(&call.call_id);
    assert_eq!(record["seat"], "1001", "{record}");
    assert!(record["connected_at"].is_string(), "{record}");
    assert!(record["seat_ended_at"].is_string(), "{record}");
    // The engine's side of the bridge is plain G.711.
    assert_eq!(record["seat_codec"], "PCMU", "{record}");
    // Recorded like any seat's call: the caller left, the browser right.
    let path = record["call_recording"]
        .as_str()
        .unwrap_or_else(|| panic!("no recording: {record}"));
    let (left, right) = stereo(path);
    let mid = |v: &[i16]| v[v.len() / 4..v.len() * 3 / 4].to_vec();
    let left_ratio = dominance(&mid(&left), CALLER_TONE, BROWSER_TONE);
    let right_ratio = dominance(&mid(&right), BROWSER_TONE, CALLER_TONE);
    assert!(
        left_ratio > 20.0 && right_ratio > 20.0,
        "recording channels: left 600/1000 {left_ratio:.2}, right 1000/600 {right_ratio:.2}"
    );
}

#[test]
fn the_desktop_socket_refuses_bad_input_clearly_and_stays_usable() {
    let server = trunk_server("webseat-bad", &[], &[]);
    let rt = rtc_client::runtime();
    rt.block_on(async {
        let url = format!("ws://{}/api/v1/webseat", server.http);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let mut ask = async |text: &str| -> serde_json::Value {
            ws.send(Message::Text(text.to_owned().into()))
                .await
                .unwrap();
            // The seat's ACD events may come in between: skip them.
            loop {
                match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                        if v["type"] != "event" {
                            return v;
                        }
                    }
                    other => panic!("no answer to {text}: {other:?}"),
                }
            }
        };
        let r = ask(r#"{"type":"answer","call":"x"}"#).await;
        assert_eq!(r["code"], "not_logged_in", "{r}");
        let r = ask("{not json").await;
        assert_eq!(r["code"], "bad_message", "{r}");
        let r = ask(r#"{"type":"dance"}"#).await;
        assert_eq!(r["code"], "bad_message", "{r}");
        assert!(r["message"].as_str().unwrap().contains("dance"), "{r}");
        let r = ask(r#"{"type":"login","seat":"1001","password":"wrong"}"#).await;
        assert_eq!(r["code"], "login_failed", "{r}");
        let r = ask(r#"{"type":"login","seat":"1001","password":"hotline-1001"}"#).await;
        assert_eq!(r["type"], "welcome", "{r}");
        let r = ask(r#"{"type":"dtmf","call":"x","digits":"12z"}"#).await;
        assert_eq!(r["code"], "bad_message", "{r}");
        let r = ask(r#"{"type":"hangup","call":"nonesuch"}"#).await;
        assert_eq!(r["code"], "no_call", "{r}");
        let r = ask(r#"{"type":"ping"}"#).await;
        assert_eq!(r["type"], "pong", "{r}");
        // The desktop token works for the API while the socket is open.
        let token = {
            let second = RtcSeat::login(server.http, "1002", "hotline-1002").await;
            second.token.clone()
        };
        // `second` is dropped: its socket closed, so its token is refused.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, body) = http_with_token(server.http, "/api/v1/kb/search?q=x", &token);
        assert_eq!(status, 401, "a closed desktop's token: {body}");
        ws.send(Message::Close(None)).await.ok();
    });
    // Seat 1001's socket closed: it is no longer registered.
    let gone = poll(Duration::from_secs(5), Duration::from_millis(100), || {
        let (_, body) = server.get("/api/v1/seats/1001");
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["registered"] == false).then_some(v)
    });
    assert!(
        gone.is_some(),
        "seat 1001 still registered\n{}",
        server.log()
    );
}

fn http_with_token(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}
