//! Seats register: SIPp authenticates with the digest challenge, unregisters,
//! and an address that keeps guessing passwords is locked out.

mod common;

use common::*;
use std::net::UdpSocket;
use std::time::Duration;

fn register_scenario(user: &str, password: &str, expires: u32, check: &str) -> String {
    let head = |cseq: u32, auth: &str| {
        format!(
            r#"  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@[remote_ip]>;tag=[pid]SIPpTag[call_number]
To: <sip:{user}@[remote_ip]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:{user}@[local_ip]:[local_port]>
{auth}Expires: {expires}
Max-Forwards: 70
Content-Length: 0

]]></send>
"#
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
{first}  <recv response="401" auth="true"/>
{second}  <recv response="200">{check}</recv>
  <Reference variables="1"/>
</scenario>
"#,
        first = head(1, ""),
        second = head(
            2,
            &format!("[authentication username={user} password={password}]\n")
        ),
    )
}

fn ereg(regexp: &str) -> String {
    format!(
        "<action><ereg regexp=\"{regexp}\" search_in=\"msg\" check_it=\"true\" assign_to=\"1\"/></action>"
    )
}

/// SIPp knows only MD5, and reads the first challenge: offer MD5 alone.
const MD5_ONLY: (&str, &str) = ("registrar", "algorithms = [\"MD5\"]");

#[test]
fn demo_seat_registers_with_digest_and_unregisters() {
    let server = Server::start("register", &[MD5_ONLY]);
    let run = sipp(
        &server,
        &register_scenario("1001", "hotline-1001", 600, &ereg("expires=600")),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    assert!(server.log().contains("registered"), "{}", server.log());
    // Contact: * with Expires: 0 removes every binding: the 200 lists none.
    let none = "<action><ereg regexp=\"Contact:\" search_in=\"msg\" check_it_inverse=\"true\" assign_to=\"1\"/></action>";
    let scenario = register_scenario("1001", "hotline-1001", 0, none)
        .replace("Contact: <sip:1001@[local_ip]:[local_port]>", "Contact: *");
    let run = sipp(&server, &scenario, 1, &[]);
    assert!(run.success, "{}\n{}", run.describe(), server.log());
}

#[test]
fn wrong_password_is_refused() {
    let server = Server::start("register-bad", &[MD5_ONLY]);
    let scenario = register_scenario("1002", "not-the-password", 600, "")
        .replace("<recv response=\"200\"></recv>", "<recv response=\"403\"/>")
        .replace("  <Reference variables=\"1\"/>\n", "");
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
