//! Seats register: SIPp authenticates with the digest challenge, unregisters,
//! and an address that keeps guessing passwords is locked out.

mod common;

use common::seat::*;
use common::*;
use std::net::UdpSocket;
use std::time::Duration;

fn ereg(regexp: &str) -> String {
    format!(
        "<action><ereg regexp=\"{regexp}\" search_in=\"msg\" check_it=\"true\" assign_to=\"1\"/></action>"
    )
}

#[test]
fn demo_seat_registers_with_digest_and_unregisters() {
    let server = Server::start("register", &[MD5_ONLY]);
    let run = sipp(
        &server,
        &register_scenario("1001", "hotline-1001", 600, 200, &ereg("expires=600")),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    assert!(
        server.wait_log("registered", Duration::from_secs(3)),
        "{}",
        server.log()
    );
    // Contact: * with Expires: 0 removes every binding: the 200 lists none.
    let none = "<action><ereg regexp=\"Contact:\" search_in=\"msg\" check_it_inverse=\"true\" assign_to=\"1\"/></action>";
    let scenario = register_scenario("1001", "hotline-1001", 0, 200, none)
        .replace("Contact: <sip:1001@[local_ip]:[local_port]>", "Contact: *");
    let run = sipp(&server, &scenario, 1, &[]);
    assert!(run.success, "{}\n{}", run.describe(), server.log());
}

#[test]
fn wrong_password_is_refused() {
    let server = Server::start("register-bad", &[MD5_ONLY]);
    let scenario = register_scenario("1002", "not-the-password", 600, 403, "");
    let run = sipp(&server, &scenario, 1, &[]);
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    assert_eq!(server.metric("hotline_register_auth_failures_total"), 1.0);
}

/// Five wrong passwords from one address ban it, even for the right one.
#[test]
fn password_guessing_is_locked_out() {
    let server = Server::start("register-lockout", &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let me = socket.local_addr().unwrap();
    let mut buf = [0u8; 4096];
    let mut send = |cseq: u32, auth: &str| -> String {
        let msg = format!(
            "REGISTER sip:{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKlock{cseq}\r\nFrom: <sip:1003@{dst}>;tag=lock\r\nTo: <sip:1003@{dst}>\r\nCall-ID: lockout-{pid}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:1003@{me}>\r\n{auth}Expires: 600\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            dst = server.sip,
            pid = std::process::id(),
        );
        socket.send_to(msg.as_bytes(), server.sip).unwrap();
        let (n, _) = socket.recv_from(&mut buf).expect("an answer to REGISTER");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let nonce = |challenge: &str| -> String {
        let start = challenge.find("nonce=\"").unwrap() + 7;
        challenge[start..start + 32].to_string()
    };
    let mut cseq = 1;
    for attempt in 0..5 {
        let challenge = send(cseq, "");
        assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
        cseq += 1;
        let auth = format!(
            "Authorization: Digest username=\"1003\", realm=\"hotline\", nonce=\"{}\", uri=\"sip:{}\", response=\"00000000000000000000000000000000\", algorithm=MD5\r\n",
            nonce(&challenge),
            server.sip
        );
        let answer = send(cseq, &auth);
        cseq += 1;
        assert!(
            answer.starts_with("SIP/2.0 403"),
            "attempt {attempt}: {answer}"
        );
    }
    // Banned now: no challenge any more.
    let answer = send(cseq, "");
    assert!(answer.starts_with("SIP/2.0 403"), "{answer}");
    assert_eq!(server.metric("hotline_register_lockouts_total"), 1.0);
    assert_eq!(server.metric("hotline_register_auth_failures_total"), 5.0);
}

/// Keep-alive: the server pings a registered phone with OPTIONS at the
/// address it registered from; while the phone answers, the registration
/// stays; when it stops answering, the registration is dropped and the seat
/// is logged out.
#[test]
fn phones_that_stop_answering_keep_alives_are_dropped() {
    let server = Server::start(
        "keepalive",
        &[
            MD5_ONLY,
            ("registrar", "keepalive_secs = 1\nkeepalive_failures = 2"),
        ],
    );
    let port = free_udp_port(1);
    let run = sipp(
        &server,
        &register_scenario("1004", "hotline-1004", 3600, 200, ""),
        1,
        &["-p", &port.to_string()],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    let phone = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    phone
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    // Answer the pings for a while.
    let mut answered = 0;
    let until = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < until {
        let Ok((n, from)) = phone.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(text.starts_with("OPTIONS sip:1004@"), "{text}");
        let header = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_default()
                .to_string()
        };
        let reply = format!(
            "SIP/2.0 200 OK\r\n{}\r\n{}\r\n{};tag=phone\r\n{}\r\n{}\r\nContent-Length: 0\r\n\r\n",
            header("Via:"),
            header("From:"),
            header("To:"),
            header("Call-ID:"),
            header("CSeq:"),
        );
        phone.send_to(reply.as_bytes(), from).unwrap();
        answered += 1;
    }
    assert!(
        answered >= 2,
        "only {answered} keep-alives in 4 s\n{}",
        server.log()
    );
    let seat = |server: &Server| {
        let (_, body) = server.get("/api/v1/seats/1004");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    assert_eq!(seat(&server)["status"], "available", "{}", server.log());
    // Silence: two unanswered pings drop it.
    drop(phone);
    assert!(
        server.wait_log(
            "phone stopped answering keep-alives",
            Duration::from_secs(15)
        ),
        "{}",
        server.log()
    );
    let s = seat(&server);
    assert_eq!(s["status"], "logged_out", "{s}");
    assert_eq!(s["registered"], false, "{s}");
}
