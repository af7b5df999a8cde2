//! Calls to 12345 from SIPp: codecs, digits, CANCEL, late offer, hold,
//! session timers, the server hanging up, and the audio the caller hears.

mod common;

use common::*;
use std::net::UdpSocket;
use std::time::Duration;

const PCMU_DTMF: &str =
    "a=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n";

/// Checks a SIP message SIPp received: the call fails when the regexp does not match.
fn expect(regexp: &str, var: &str) -> String {
    format!(
        "<action><ereg regexp=\"{regexp}\" search_in=\"msg\" check_it=\"true\" assign_to=\"{var}\"/></action>"
    )
}

#[test]
fn pcmu_call_collects_rfc2833_and_info_digits() {
    let server = Server::start("digits", &[]);
    let after_ack = [
        pause(500),
        play_pcap("dtmf_2833_1.pcap"),
        pause(1500),
        info_dtmf('5', 2),
        pause(300),
    ]
    .concat();
    let run = sipp(
        &server,
        &uac_scenario(Some(&offer("0 101", PCMU_DTMF)), &after_ack),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    let call = server.call_record(&sipp_call_id(&run));
    assert_eq!(call["digits"], "15", "{call}");
    assert_eq!(call["codec"], "PCMU");
    assert_eq!(call["status"], 200);
    assert_eq!(call["callee"], "12345");
    assert_eq!(call["caller"], "13800138000");
    assert_eq!(call["end_reason"], "caller-bye");
    assert_eq!(call["hangup_by"], "caller");
    assert!(call["answered_at"].is_string());
    assert!(call["rtp"]["packets_out"].as_i64().unwrap() > 50, "{call}");
    assert!(call["rtp"]["packets_in"].as_i64().unwrap() > 0, "{call}");
    assert!(server.metric("hotline_dtmf_digits_total") >= 2.0);
}

/// Places a call whose SDP points at a socket of the test, holds it for
/// `hold_ms`, and returns what arrived there.
fn call_and_capture(
    server: &Server,
    formats: &str,
    rtpmaps: &str,
    hold_ms: u32,
) -> (SippRun, Vec<(u8, Vec<u8>, std::time::Instant)>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let scenario = uac_scenario(Some(&offer_to(port, formats, rtpmaps)), &pause(hold_ms));
    let capture = std::thread::spawn(move || {
        capture_rtp(
            &socket,
            Duration::from_millis(u64::from(hold_ms) + 8000),
            Duration::from_millis(800),
        )
    });
    let run = sipp(server, &scenario, 1, &[]);
    (run, capture.join().unwrap())
}

#[test]
fn caller_hears_the_greeting() {
    let server = Server::start("greeting", &[]);
    let (run, packets) = call_and_capture(&server, "0", "a=rtpmap:0 PCMU/8000\n", 4000);
    assert!(run.success, "{}", run.describe());
    assert!(packets.len() > 150, "only {} packets", packets.len());
    assert!(packets.iter().all(|(pt, p, _)| *pt == 0 && p.len() == 160));
    let heard: Vec<i16> = packets
        .iter()
        .flat_map(|(pt, p, _)| decode(*pt, p))
        .collect();
    let corr = best_envelope_correlation(&heard, &greeting_pcm());
    assert!(
        corr > 0.9,
        "what the caller heard is not the greeting: correlation {corr:.3}"
    );
    // Paced at 20 ms: the median gap between packets.
    let mut gaps: Vec<u128> = packets
        .windows(2)
        .map(|w| w[1].2.duration_since(w[0].2).as_micros())
        .collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    assert!(
        (15_000..25_000).contains(&median),
        "median packet gap {median} µs"
    );
}

#[test]
fn pcma_only_offer_is_answered_in_pcma() {
    let server = Server::start("pcma", &[]);
    let (run, packets) = call_and_capture(&server, "8", "a=rtpmap:8 PCMA/8000\n", 2500);
    assert!(run.success, "{}", run.describe());
    assert!(packets.len() > 80, "only {} packets", packets.len());
    assert!(packets.iter().all(|(pt, _, _)| *pt == 8));
    let heard: Vec<i16> = packets
        .iter()
        .flat_map(|(pt, p, _)| decode(*pt, p))
        .collect();
    let corr = best_envelope_correlation(&heard, &greeting_pcm());
    assert!(
        corr > 0.9,
        "A-law audio is not the greeting: correlation {corr:.3}"
    );
    let call = server.call_record(&sipp_call_id(&run));
    assert_eq!(call["codec"], "PCMA");
}

#[test]
fn no_common_codec_gets_488() {
    let server = Server::start("488", &[]);
    let sdp = offer("18 9", "a=rtpmap:18 G729/8000\na=rtpmap:9 G722/8000\n");
    let run = sipp(
        &server,
        &rejected_scenario(&sdp, 488, &expect("Warning: 305", "1")),
        1,
        &[],
    );
    assert!(run.success, "{}", run.describe());
    let call = server.call_record(&sipp_call_id(&run));
    assert_eq!(call["status"], 488);
    assert_eq!(call["end_reason"], "rejected");
    assert!(call["answered_at"].is_null());
}

#[test]
fn unknown_number_gets_404() {
    let server = Server::start("404", &[]);
    let run = sipp(
        &server,
        &rejected_scenario(&offer("0", ""), 404, ""),
        1,
        &["-s", "99999"],
    );
    assert!(run.success, "{}", run.describe());
    assert_eq!(server.call_record(&sipp_call_id(&run))["status"], 404);
}

#[test]
fn cancel_before_answer_gets_487() {
    let server = Server::start("cancel", &[("sip", "answer_delay_ms = 5000")]);
    let scenario = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="cancel">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:13800138000@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180"/>
  <send><![CDATA[
CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
  <recv response="487"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
"#;
    let run = sipp(&server, scenario, 1, &[]);
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    let call = server.call_record(&sipp_call_id(&run));
    assert_eq!(call["status"], 487, "{call}");
    assert_eq!(call["end_reason"], "cancelled");
    assert!(call["answered_at"].is_null());
}

#[test]
fn late_offer_call_gets_offer_in_200_and_answer_in_ack() {
    let server = Server::start("late", &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let scenario = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="late offer">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:13800138000@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200">{offer_check}</recv>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:13800138000@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {port} RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
  <pause milliseconds="2000"/>
  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
  <Reference variables="1"/>
</scenario>
"#,
        offer_check = expect("m=audio [0-9]+ RTP/AVP 0 8 101", "1"),
    );
    let capture = std::thread::spawn(move || {
        capture_rtp(&socket, Duration::from_secs(10), Duration::from_millis(800))
    });
    let run = sipp(&server, &scenario, 1, &[]);
    let packets = capture.join().unwrap();
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    assert!(
        packets.len() > 50,
        "only {} packets after the ACK's answer",
        packets.len()
    );
    assert!(
        packets.iter().all(|(pt, _, _)| *pt == 8),
        "the answer chose PCMA"
    );
    let call = server.call_record(&sipp_call_id(&run));
    assert_eq!(call["codec"], "PCMA");
    assert_eq!(call["status"], 200);
}

/// The server hangs up: a number blocked after review hears the notice and
/// gets BYE from the hotline.
#[test]
fn server_hangs_up_on_a_blocked_number() {
    let server = Server::start("blocked", &[("ivr", "blocked_numbers = [\"13800138000\"]")]);
    let scenario = uac_until_server_bye(&offer("0", ""), 30_000);
    let run = sipp(&server, &scenario, 1, &[]);
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    let call = server.call_record(&sipp_call_id(&run));
    assert_eq!(call["hangup_by"], "hotline", "{call}");
    assert_eq!(call["end_reason"], "flow-hangup");
    assert_eq!(call["final_action"], "hangup");
    assert_eq!(call["flow"], "main");
    let path: Vec<&str> = call["flow_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(path, ["main:check_blocked", "main:blocked_notice"]);
}

fn reinvite(direction: &str, port: u16, cseq: u32, check: &str) -> String {
    format!(
        r#"  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: sip:13800138000@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 {cseq} IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {port} RTP/AVP 0
a=rtpmap:0 PCMU/8000
a={direction}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="200">{check}</recv>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
"#
    )
}

#[test]
fn reinvite_holds_and_resumes_media() {
    let server = Server::start("hold", &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let after_ack = [
        pause(1500),
        reinvite("sendonly", port, 2, &expect("a=recvonly", "1")),
        pause(2000),
        reinvite("sendrecv", port, 3, &expect("a=sendrecv", "2")),
        pause(1500),
    ]
    .concat();
    let scenario = uac_scenario(
        Some(&offer_to(port, "0", "a=rtpmap:0 PCMU/8000\n")),
        &after_ack,
    )
    .replace(
        "</scenario>",
        "  <Reference variables=\"1,2\"/>\n</scenario>",
    );
    let capture = std::thread::spawn(move || {
        capture_rtp(
            &socket,
            Duration::from_secs(15),
            Duration::from_millis(3000),
        )
    });
    let run = sipp(&server, &scenario, 1, &[]);
    let packets = capture.join().unwrap();
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    // Media flowed, stopped for the hold, and came back.
    let biggest_gap = packets
        .windows(2)
        .map(|w| w[1].2.duration_since(w[0].2))
        .max()
        .unwrap();
    assert!(
        biggest_gap > Duration::from_millis(1500),
        "no hold gap: {biggest_gap:?} over {} packets from {:?} to {:?}\n{}",
        packets.len(),
        packets.first().map(|p| p.2),
        packets.last().map(|p| p.2),
        server.log()
    );
    let first = packets.first().unwrap().2;
    let last = packets.last().unwrap().2;
    assert!(
        last.duration_since(first) > Duration::from_millis(4000),
        "media did not resume"
    );
}

#[test]
fn session_timer_is_granted_and_refreshed_by_update() {
    let server = Server::start("timer", &[]);
    let update = format!(
        r#"  <send retrans="500"><![CDATA[
UPDATE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 UPDATE
Contact: sip:13800138000@[local_ip]:[local_port]
Supported: timer
Session-Expires: 120;refresher=uac
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200">{}</recv>
"#,
        expect("Session-Expires: *120;refresher=uac", "2")
    );
    let checks = concat!(
        "<action>",
        "<ereg regexp=\"Session-Expires: *300;refresher=uac\" search_in=\"msg\" check_it=\"true\" assign_to=\"1\"/>",
        "<ereg regexp=\"Require: *timer\" search_in=\"msg\" check_it=\"true\" assign_to=\"3\"/>",
        "</action>"
    );
    let scenario = uac_scenario(Some(&offer("0", "")), &update)
        .replace(
            "Max-Forwards: 70\nContent-Type: application/sdp",
            "Max-Forwards: 70\nSupported: timer\nSession-Expires: 300;refresher=uac\nContent-Type: application/sdp",
        )
        .replace(
            "<recv response=\"200\" rtd=\"true\"/>",
            &format!("<recv response=\"200\" rtd=\"true\">{checks}</recv>"),
        )
        .replace("</scenario>", "  <Reference variables=\"1,2,3\"/>\n</scenario>");
    let run = sipp(&server, &scenario, 1, &[]);
    assert!(run.success, "{}\n{}", run.describe(), server.log());

    // Too short an interval is refused with 422 and our Min-SE.
    let short = rejected_scenario(&offer("0", ""), 422, &expect("Min-SE: *90", "1")).replace(
        "Max-Forwards: 70\nContent-Type",
        "Max-Forwards: 70\nSupported: timer\nSession-Expires: 30\nContent-Type",
    );
    let run = sipp(&server, &short, 1, &[]);
    assert!(run.success, "{}", run.describe());
}

#[test]
fn tcp_call_is_answered() {
    let server = Server::start("tcp", &[]);
    let run = sipp(
        &server,
        &uac_scenario(Some(&offer("0", "")), &pause(500)),
        1,
        &["-t", "t1"],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    let call = server.call_record(&sipp_call_id(&run));
    assert_eq!(call["transport"], "tcp");
    assert_eq!(call["status"], 200);
}

#[test]
fn options_register_and_stray_requests() {
    let server = Server::start("options", &[]);
    let request = |method: &str, cseq: u32, status: u16, check: &str| {
        format!(
            r#"  <send retrans="500"><![CDATA[
{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: sip:13800138000@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="{status}">{check}</recv>
"#
        )
    };
    let scenario = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"misc\">\n{}{}{}<Reference variables=\"1,2,3\"/>\n</scenario>\n",
        request(
            "OPTIONS",
            1,
            200,
            &expect("Allow: [^\\r\\n]*INVITE[^\\r\\n]*INFO", "1")
        ),
        request("REGISTER", 2, 401, &expect("WWW-Authenticate: Digest", "2")),
        request("SUBSCRIBE", 3, 405, &expect("Allow:", "3")),
    );
    let run = sipp(&server, &scenario, 1, &[]);
    assert!(run.success, "{}\n{}", run.describe(), server.log());
}

/// A caller behind NAT: its Via and SDP name addresses it cannot be reached
/// at (127.0.0.3 and 127.0.0.2 stand in for its private addresses). Responses
/// must follow rport/received, and RTP must go where its RTP comes from.
#[test]
fn caller_behind_nat_is_reached_by_rport_and_symmetric_rtp() {
    let server = Server::start("nat", &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let scenario = uac_scenario(
        Some(&offer_to(9, "0", "a=rtpmap:0 PCMU/8000\n").replace("127.0.0.1", "127.0.0.2")),
        &pause(4000),
    )
    .replace(
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
        "Via: SIP/2.0/[transport] 127.0.0.3:5999;branch=[branch];rport",
    );
    let sip = server.sip;
    let call = std::thread::spawn(move || sipp_to(sip, &scenario, 1, &[]));
    // Find our RTP port in the answer SIPp logged, then talk to it from the
    // "real" address.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let port = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no answer SDP\n{}",
            server.log()
        );
        let answered = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.starts_with(&format!("hotline-test-{}-sipp", std::process::id()))
            })
            .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
            .filter(|f| f.file_name().to_string_lossy().ends_with("_messages.log"))
            .filter_map(|f| std::fs::read_to_string(f.path()).ok())
            .find(|log| log.contains("127.0.0.3:5999") && log.contains("SIP/2.0 200 OK"));
        if let Some(log) = answered {
            let answer = &log[log.find("SIP/2.0 200 OK").unwrap()..];
            let line = answer
                .lines()
                .find(|l| l.starts_with("m=audio "))
                .unwrap()
                .to_string();
            break line.split(' ').nth(1).unwrap().parse::<u16>().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let silence = [0xffu8; 160];
    let mut packet = vec![0x80u8, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
    packet.extend_from_slice(&silence);
    for seq in 0..5u16 {
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        socket.send_to(&packet, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let packets = capture_rtp(&socket, Duration::from_secs(2), Duration::from_millis(500));
    let run = call.join().unwrap();
    assert!(
        run.success,
        "responses did not follow rport: {}\n{}",
        run.describe(),
        server.log()
    );
    assert!(
        packets.len() > 50,
        "RTP did not latch to the real source: {} packets",
        packets.len()
    );
    let heard: Vec<i16> = packets
        .iter()
        .flat_map(|(pt, p, _)| decode(*pt, p))
        .collect();
    assert!(best_envelope_correlation(&heard, &greeting_pcm()) > 0.9);
}

/// A 200 OK that is not ACKed is retransmitted (RFC 3261 timer G, doubling
/// from T1 = 500 ms) until the ACK arrives. Raw UDP, since SIPp absorbs
/// retransmissions itself.
#[test]
fn unacknowledged_200_is_retransmitted() {
    let server = Server::start("retransmit", &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = socket.local_addr().unwrap();
    let sdp = offer_to(9, "0", "").replace('\n', "\r\n");
    let invite = format!(
        "INVITE sip:12345@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrtx1\r\nFrom: <sip:a@{me}>;tag=rtx\r\nTo: <sip:12345@{dst}>\r\nCall-ID: rtx-{pid}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@{me}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
        dst = server.sip,
        pid = std::process::id(),
        len = sdp.len(),
    );
    socket.send_to(invite.as_bytes(), server.sip).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut oks = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < Duration::from_millis(2200) {
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("SIP/2.0 200") {
                oks.push((start.elapsed(), text));
            }
        }
    }
    // Sent at about 0, 0.5 and 1.5 s.
    assert!(
        oks.len() >= 3,
        "200 sent {} times in 2.2 s\n{}",
        oks.len(),
        server.log()
    );
    let gap = oks[2].0 - oks[1].0;
    assert!(
        gap > Duration::from_millis(800),
        "T2 doubling: second gap {gap:?}"
    );
    let to = oks[0]
        .1
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap()
        .to_string();
    let ack = format!(
        "ACK sip:12345@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrtx2\r\nFrom: <sip:a@{me}>;tag=rtx\r\n{to}\r\nCall-ID: rtx-{pid}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        dst = server.sip,
        pid = std::process::id(),
    );
    socket.send_to(ack.as_bytes(), server.sip).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Acknowledged: no more retransmissions (RTP may still arrive at port 9,
    // which is not this socket).
    socket
        .set_read_timeout(Some(Duration::from_millis(1200)))
        .unwrap();
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            !text.starts_with("SIP/2.0 200"),
            "200 still retransmitted after ACK"
        );
    }
}

/// RTCP: the server's sender reports arrive at RTP port + 1 and report the
/// loss and jitter of what the caller sent.
#[test]
fn rtcp_reports_what_the_caller_lost() {
    let server = Server::start("rtcp", &[("media", "rtcp_interval_secs = 1")]);
    let (rtp, rtcp) = rtp_sockets();
    let port = rtp.local_addr().unwrap().port();
    let call = RawCall::place(&server, port, "0", "");
    // 100 packets, 20 ms apart, with 5 of them never sent.
    let ssrc = 0x1234_5678;
    for seq in 0..100u16 {
        if !(40..45).contains(&seq) {
            rtp.send_to(
                &rtp_packet(ssrc, seq, u32::from(seq) * 160, &[0xff; 160]),
                call.server_rtp,
            )
            .unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    rtcp.set_read_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    let mut report = None;
    while std::time::Instant::now() < deadline {
        let Ok((n, _)) = rtcp.recv_from(&mut buf) else {
            break;
        };
        assert_eq!(buf[1], 200, "expected a sender report, got PT {}", buf[1]);
        let parsed = hotline::media::rtcp::parse_compound(&buf[..n]).expect("valid RTCP");
        if let Some(r) = parsed
            .reports
            .into_iter()
            .find(|r| r.ssrc == ssrc && r.total_lost > 0)
        {
            report = Some(r);
            break;
        }
    }
    let report = report.unwrap_or_else(|| panic!("no SR reporting our loss\n{}", server.log()));
    assert_eq!(report.total_lost, 5);
    assert!(
        report.jitter < 8 * 20,
        "jitter {} timestamp units",
        report.jitter
    );
    call.bye();
    let record = server.call_record(&call.call_id);
    assert_eq!(record["rtp"]["lost"], 5, "{record}");
    assert!(record["rtp"]["packets_in"].as_i64().unwrap() >= 95);
}
