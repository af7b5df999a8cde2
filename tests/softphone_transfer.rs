//! Attended transfer from the agent's softphone (RFC 3515 REFER with RFC
//! 3891 Replaces), with real peers: a caller through the real IVR to the
//! operator queue (600 Hz, A-law), answered by seat 1001 played by SIPp
//! (its media on a socket of the test speaking 800 Hz: the first line);
//! the softphone's second line, another SIPp from 127.0.0.1 that calls 119
//! through the hotline (media on a socket speaking 1 kHz: the consult
//! line); and 119, the far end of a trunk (1.4 kHz). The REFER that
//! completes the transfer goes in the first dialog, sent by the test with
//! the dialog's identifiers read from SIPp's message log, since SIPp cannot
//! know the consult dialog's tags when it starts. Goertzel says who hears
//! whom.

mod common;

use common::conversation::trunk_server;
use common::media::*;
use common::seat::SippSeat;
use common::trunk::*;
use common::*;
use hotline::media::g711::Law;
use serde_json::{Value, json};
use std::net::UdpSocket;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// 119's far end.
const FIRE_TONE: f32 = 1400.0;
/// The agent on the consult line (the softphone's second call).
const AGENT_TONE: f32 = 1000.0;
/// The agent on the first line, with the caller.
const DESK_TONE: f32 = 800.0;
/// Every party's tone.
const ALL: [f32; 4] = [CALLER_TONE, DESK_TONE, AGENT_TONE, FIRE_TONE];

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Every tone but these.
fn others(want: &[f32]) -> Vec<f32> {
    ALL.iter().copied().filter(|t| !want.contains(t)).collect()
}

/// A server whose trunks are these far ends, not health-checked; no NAT
/// keep-alive OPTIONS to seats (the seat's SIPp would take one for a call).
fn server(name: &str, ends: &[&TrunkEndpoint]) -> Server {
    let entries: Vec<String> = ends.iter().map(|t| t.entry("options_secs = 0")).collect();
    trunk_server(name, &entries, &[])
}

/// Something whose logs explain a failure.
trait Logs {
    fn logs(&self) -> String;
}

impl Logs for TrunkEndpoint {
    fn logs(&self) -> String {
        format!(
            "{}--- trunk {} {}",
            self.messages(),
            self.name,
            self.media.describe()
        )
    }
}

/// A peer played by one SIPp process.
trait Sipp: Logs {
    fn sipp(&mut self) -> &mut SippProcess;
}

impl Sipp for Desk {
    fn sipp(&mut self) -> &mut SippProcess {
        &mut self.sipp
    }
}

impl Sipp for ConsultCall {
    fn sipp(&mut self) -> &mut SippProcess {
        &mut self.sipp
    }
}

/// Waits up to 10 s for `peer`'s SIPp to end; fails unless it ended well,
/// with `what`, how it ended and every peer's logs.
fn assert_ends_ok<P: Sipp>(server: &Server, peer: &mut P, others: &[&dyn Logs], what: &str) {
    let ended = exit_of(peer.sipp(), Duration::from_secs(10));
    let mut peers: Vec<&dyn Logs> = vec![&*peer];
    peers.extend_from_slice(others);
    assert!(
        ended.is_some_and(|s| s.success()),
        "{what} ({ended:?})\n{}",
        diag(server, &peers)
    );
}

/// Every peer's logs, then the server's.
fn diag(server: &Server, peers: &[&dyn Logs]) -> String {
    let mut text: String = peers.iter().map(|p| p.logs()).collect();
    text.push_str("--- server log ---\n");
    text.push_str(&server.log());
    text
}

/// The SIP messages of a SIPp message log (`-trace_msg`), in order.
fn sip_messages(log: &str) -> Vec<String> {
    log.split("\n-----------------------------------------------")
        .filter_map(|chunk| {
            let lines: Vec<&str> = chunk.lines().collect();
            let start = lines
                .iter()
                .position(|l| l.starts_with("SIP/2.0 ") || l.ends_with(" SIP/2.0"))?;
            Some(lines[start..].join("\n").trim_end().to_owned())
        })
        .collect()
}

/// A header's value (before the body).
fn header<'m>(msg: &'m str, name: &str) -> Option<&'m str> {
    msg.lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

/// The `tag` parameter of a From or To value.
fn tag(value: &str) -> Option<&str> {
    let rest = value.split(";tag=").nth(1)?;
    rest.split([';', '>', ' ']).next()
}

/// Whether a response answers an INVITE.
fn to_invite(msg: &str) -> bool {
    header(msg, "CSeq").is_some_and(|c| c.ends_with("INVITE"))
}

/// Waits for a SIPp process to end.
fn exit_of(sipp: &mut SippProcess, limit: Duration) -> Option<ExitStatus> {
    poll(limit, Duration::from_millis(50), || {
        sipp.child.try_wait().unwrap()
    })
}

/// Whether these samples are a second of the agent's first line and
/// nothing else (no music, no prompt).
fn only_desk(pcm: &[i16]) -> bool {
    pcm.len() >= 7_000 && presence(pcm, DESK_TONE) > 0.1 && others_share(pcm, &[DESK_TONE]) < 0.05
}

/// Per half second of `pcm`: each tone's level and the share of energy
/// outside the tones, for a failed assertion.
fn profile(pcm: &[i16]) -> String {
    pcm.chunks(4_000)
        .enumerate()
        .map(|(i, w)| {
            let levels: Vec<String> = ALL
                .iter()
                .map(|&t| format!("{t}:{:.3}", presence(w, t)))
                .collect();
            format!(
                "{:>4.1} s {} rest {:.3}\n",
                i as f32 / 2.0,
                levels.join(" "),
                others_share(w, &ALL)
            )
        })
        .collect()
}

/// Waits up to `limit` until the caller has heard only the agent's first
/// line for a whole second, after `since`.
fn back_with_desk(caller: &ToneMedia, since: Instant, limit: Duration) -> bool {
    poll(limit, Duration::from_millis(250), || {
        let now = Instant::now();
        let from = (now - Duration::from_secs(1)).max(since);
        only_desk(&caller.heard_between(from, now)).then_some(())
    })
    .is_some()
}

/// Sleeps half a second for the media to settle, then `secs`; the window.
fn listen(secs: f32) -> (Instant, Instant) {
    std::thread::sleep(Duration::from_millis(500));
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs_f32(secs));
    (from, Instant::now())
}

/// Checks that `pcm` holds `want` and no other party's tone.
fn hears_only(who: &str, pcm: &[i16], want: f32, diag: impl Fn() -> String) {
    assert_hears(who, pcm, &[want], &others(&[want]), diag);
}

/// Checks that `pcm` is hold music or a prompt: no party's voice in it,
/// and not silence; `who` heard it.
fn assert_on_hold(who: &str, pcm: &[i16], diag: impl Fn() -> String) {
    for tone in [AGENT_TONE, FIRE_TONE, DESK_TONE] {
        let level = presence(pcm, tone);
        assert!(
            level < 0.001,
            "{who} hears {tone} Hz at {level:.4} of a party's level\n{}",
            diag()
        );
    }
    let rms =
        (pcm.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt();
    assert!(rms > 300.0, "{who} hears silence: RMS {rms:.0}\n{}", diag());
}

/// Fails unless each of these lines reaches the server's log within `limit`.
fn expect_logs(server: &Server, lines: &[&str], limit: Duration, diag: impl Fn() -> String) {
    for line in lines {
        assert!(
            server.wait_log(line, limit),
            "{line:?} not logged\n{}",
            diag()
        );
    }
}

/// The seat's response to the last request, with our tag if `tag`.
fn reply(status: &str, tag: bool, body: &str) -> String {
    uas_reply(
        status,
        tag.then_some("desk[call_number]"),
        "sip:1001@[local_ip]:[local_port];transport=[transport]",
        body,
    )
}

/// Seat 1001's first line: answers the queued call with media at
/// `rtp_port`, then answers up to four NOTIFYs (logging `NOTIFY <sipfrag
/// status> <subscription state>`) and the BYE (logging `BYE`). Unrolled:
/// SIPp takes a request that comes while it is still on a jump back as
/// unexpected.
fn desk_scenario(rtp_port: u16) -> String {
    let sdp = format!(
        "v=0\no=desk 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
         m=audio {rtp_port} RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=sendrecv\n"
    );
    let bye = "  <recv request=\"BYE\" next=\"bye\">\n    <action>\n      <log message=\"BYE\"/>\n    </action>\n  </recv>\n";
    let slots: String = (1..=4)
        .map(|k| {
            format!(
                "{notify}{bye}  <label id=\"n{k}\"/>\n{ok}",
                notify = logged_notify(
                    &format!(" optional=\"true\" next=\"n{k}\""),
                    "frag",
                    "state"
                ),
                ok = reply("200 OK", false, ""),
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="desk 1001">
  <recv request="INVITE"/>
{ringing}{ok}  <recv request="ACK"/>
{slots}{bye}  <label id="bye"/>
{bye_ok}  <Reference variables="frag,state"/>
</scenario>
"#,
        ringing = reply("180 Ringing", true, ""),
        ok = reply("200 OK", true, &sdp),
        bye = bye.replace(" next=\"bye\"", ""),
        bye_ok = reply("200 OK", false, ""),
    )
}

/// Seat 1001 played by SIPp: registered from its port, which takes one
/// call there (see [`desk_scenario`]); its media speaks [`DESK_TONE`].
struct Desk {
    sipp: SippProcess,
    media: ToneMedia,
}

/// The seat's first dialog, as a REFER in it must name it.
struct FirstDialog {
    call_id: String,
    /// The INVITE's From: the hotline, with its tag (the REFER's To).
    hotline: String,
    /// The 200's To: the seat, with its tag (the REFER's From).
    seat: String,
    /// The INVITE's Contact URI: where requests in the dialog go.
    target: String,
    /// The seat's Contact.
    contact: String,
}

impl Desk {
    fn start(server: &Server) -> Desk {
        let port = SippSeat::register(server, "1001");
        let (socket, _rtcp) = rtp_sockets();
        let rtp_port = socket.local_addr().unwrap().port();
        let media = ToneMedia::answering(socket, Law::Ulaw, DESK_TONE);
        let sipp = SippProcess::start(
            "desk-1001",
            &desk_scenario(rtp_port),
            port,
            &[
                "-m",
                "1",
                "-timeout",
                "120",
                "-timeout_error",
                "-trace_logs",
            ],
        );
        Desk { sipp, media }
    }

    /// What the scenario logged (`NOTIFY ..`, `BYE`), one per line.
    fn notes(&self) -> Vec<String> {
        self.sipp
            .logs("desk 1001", &["_logs.log"])
            .lines()
            .filter(|l| !l.starts_with("--- "))
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Whether the scenario logged this note.
    fn noted(&self, note: &str) -> bool {
        self.notes().iter().any(|n| n == note)
    }

    /// The first dialog, read from the SIPp message log.
    fn first_dialog(&self) -> FirstDialog {
        let messages = sip_messages(&self.sipp.messages("desk 1001"));
        let invite = messages
            .iter()
            .find(|m| m.starts_with("INVITE "))
            .unwrap_or_else(|| panic!("no INVITE in the seat's log:\n{}", self.logs()));
        let ok = messages
            .iter()
            .find(|m| m.starts_with("SIP/2.0 200") && to_invite(m))
            .unwrap_or_else(|| panic!("no 200 in the seat's log:\n{}", self.logs()));
        let get = |m: &str, name: &str| {
            header(m, name)
                .unwrap_or_else(|| panic!("no {name} in\n{m}"))
                .to_owned()
        };
        let uri = |c: String| {
            c.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        FirstDialog {
            call_id: get(invite, "Call-ID"),
            hotline: get(invite, "From"),
            seat: get(ok, "To"),
            target: uri(get(invite, "Contact")),
            contact: get(ok, "Contact"),
        }
    }
}

impl Logs for Desk {
    fn logs(&self) -> String {
        format!(
            "{}{}--- desk {}",
            self.sipp.messages("desk 1001"),
            self.sipp.logs("desk 1001", &["_logs.log"]),
            self.media.describe()
        )
    }
}

/// Sends REFER with this Refer-To in the seat's first dialog, from a socket
/// of the test at 127.0.0.1 (the softphone's Contact stays the seat's);
/// returns the final answer.
fn send_refer(server: &Server, dialog: &FirstDialog, refer_to: &str) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = socket.local_addr().unwrap();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let refer = format!(
        "REFER {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-refer-{pid}-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 101 REFER\r\n\
         Contact: {contact}\r\n\
         Refer-To: {refer_to}\r\n\
         Referred-By: <sip:1001@127.0.0.1>\r\n\
         Content-Length: 0\r\n\r\n",
        target = dialog.target,
        pid = std::process::id(),
        from = dialog.seat,
        to = dialog.hotline,
        call_id = dialog.call_id,
        contact = dialog.contact,
    );
    socket.send_to(refer.as_bytes(), server.sip).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let Ok((len, _)) = socket.recv_from(&mut buf) else {
            panic!("no answer to the REFER:\n{refer}\n{}", server.log());
        };
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        if !text.starts_with("SIP/2.0 1") {
            return text;
        }
    }
}

/// How the consult call goes, as the softphone's second line sees it.
#[derive(Debug, Clone, Copy)]
enum Consult {
    /// 200 (after 180), ACK; then waits for the hotline's BYE.
    Answered,
    /// 200, ACK, and the agent hangs up this many ms later.
    HangsUpAfter(u32),
    /// Refused with this status.
    Refused(u16),
    /// An INVITE without SDP, refused with this status.
    NoOffer(u16),
}

/// The consult call: INVITE sip:`target`@hotline From 1001 with a fixed
/// tag (the Call-ID is SIPp's `-cid_str`), SDP pointing at `rtp_port`.
fn consult_scenario(target: &str, from_tag: &str, rtp_port: u16, how: Consult) -> String {
    let sdp = format!(
        "v=0\no=agent 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
         m=audio {rtp_port} RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=sendrecv\n"
    );
    let (ctype, body) = match how {
        Consult::NoOffer(_) => ("", String::new()),
        _ => ("Content-Type: application/sdp\n", sdp),
    };
    let request = |method: &str, cseq: u32, branch: &str, to_tag: bool, body: &str, ctype: &str| {
        let tag = if to_tag { "[peer_tag_param]" } else { "" };
        format!(
            r#"  <send retrans="500"><![CDATA[
{method} sip:{target}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}
From: <sip:1001@[local_ip]:[local_port]>;tag={from_tag}
To: <sip:{target}@[remote_ip]:[remote_port]>{tag}
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: <sip:1001@[local_ip]:[local_port]>
Max-Forwards: 70
{ctype}Content-Length: [len]

{body}]]></send>
"#
        )
    };
    let invite = request("INVITE", 1, "[branch]", false, &body, ctype);
    let progress = "  <recv response=\"100\" optional=\"true\"/>\n  \
                    <recv response=\"180\" optional=\"true\"/>\n  \
                    <recv response=\"183\" optional=\"true\"/>\n";
    // An ACK to a 2xx is a new transaction; to a failure, the INVITE's
    // (five messages back: 100, 180, 183 and the failure in between).
    let ack_ok = request("ACK", 1, "[branch]", true, "", "").replace(" retrans=\"500\"", "");
    let ack_failed = request("ACK", 1, "[branch-5]", true, "", "").replace(" retrans=\"500\"", "");
    let rest = match how {
        Consult::Answered => format!(
            "  <recv response=\"200\" rtd=\"true\"/>\n{ack_ok}  <recv request=\"BYE\"/>\n  <send><![CDATA[\n\
             SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\n\
             Content-Length: 0\n\n]]></send>\n"
        ),
        Consult::HangsUpAfter(ms) => format!(
            "  <recv response=\"200\" rtd=\"true\"/>\n{ack_ok}  <pause milliseconds=\"{ms}\"/>\n{}  \
             <recv response=\"200\"/>\n",
            request("BYE", 2, "[branch]", true, "", "")
        ),
        Consult::Refused(status) | Consult::NoOffer(status) => {
            format!("  <recv response=\"{status}\"/>\n{ack_failed}")
        }
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="consult">
{invite}{progress}{rest}</scenario>
"#
    )
}

/// The softphone's second line: SIPp from 127.0.0.1, its media speaking
/// [`AGENT_TONE`] on a socket of the test.
struct ConsultCall {
    sipp: SippProcess,
    media: ToneMedia,
    call_id: String,
    from_tag: String,
    /// When the INVITE was sent.
    placed: Instant,
}

impl ConsultCall {
    fn place(server: &Server, target: &str, how: Consult) -> ConsultCall {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let call_id = format!("consult-{}-{n}@127.0.0.1", std::process::id());
        let from_tag = format!("agent{n}x");
        let (socket, _rtcp) = rtp_sockets();
        let rtp_port = socket.local_addr().unwrap().port();
        let media = ToneMedia::answering(socket, Law::Ulaw, AGENT_TONE);
        let hotline = server.sip.to_string();
        let placed = Instant::now();
        let sipp = SippProcess::start(
            "consult",
            &consult_scenario(target, &from_tag, rtp_port, how),
            free_udp_port(1),
            &[
                "-m",
                "1",
                "-timeout",
                "120",
                "-timeout_error",
                "-cid_str",
                &call_id,
                &hotline,
            ],
        );
        ConsultCall {
            sipp,
            media,
            call_id,
            from_tag,
            placed,
        }
    }

    fn messages(&self) -> Vec<String> {
        sip_messages(&self.sipp.messages("consult"))
    }

    /// Waits for the hotline's 200 to the INVITE.
    fn answered(&self, limit: Duration) -> bool {
        poll(limit, Duration::from_millis(50), || {
            self.messages()
                .iter()
                .any(|m| m.starts_with("SIP/2.0 200") && to_invite(m))
                .then_some(())
        })
        .is_some()
    }

    /// Waits for the hotline's 180 to the INVITE.
    fn ringing(&self, limit: Duration) -> bool {
        poll(limit, Duration::from_millis(50), || {
            self.messages()
                .iter()
                .any(|m| m.starts_with("SIP/2.0 180") && to_invite(m))
                .then_some(())
        })
        .is_some()
    }

    /// The Replaces value naming this dialog: Call-ID, the hotline's tag
    /// (To, from its 200), ours (From), escaped for a URI header.
    fn replaces(&self) -> String {
        self.replaces_from("SIP/2.0 200")
    }

    /// As [`ConsultCall::replaces`], with the hotline's tag from its
    /// response to the INVITE that starts with `status` (`SIP/2.0 180`
    /// for the early dialog).
    fn replaces_from(&self, status: &str) -> String {
        let messages = self.messages();
        let response = messages
            .iter()
            .find(|m| m.starts_with(status) && to_invite(m))
            .unwrap_or_else(|| panic!("no {status} to the consult call:\n{}", self.logs()));
        let to_tag = header(response, "To")
            .and_then(tag)
            .unwrap_or_else(|| panic!("no To tag in\n{response}"));
        format!(
            "{}%3Bto-tag%3D{to_tag}%3Bfrom-tag%3D{}",
            self.call_id.replace('@', "%40"),
            self.from_tag
        )
    }
}

impl Logs for ConsultCall {
    fn logs(&self) -> String {
        format!(
            "{}--- consult line {}",
            self.sipp.messages("consult"),
            self.media.describe()
        )
    }
}

/// A caller through the IVR to the operator queue, answered by the seat;
/// returns once the caller hears the agent's first line.
fn caller_with_agent(server: &Server, desk: &Desk) -> (RawCall, ToneMedia) {
    let (call, caller, keys) = dial(server);
    to_operator(&keys, &call);
    assert!(
        server.wait_log("caller connected to agent", Duration::from_secs(10)),
        "{}",
        diag(server, &[desk])
    );
    assert!(
        back_with_desk(&caller, Instant::now(), Duration::from_secs(5)),
        "the caller does not hear the agent before the consult\n--- caller {}{}",
        caller.describe(),
        diag(server, &[desk])
    );
    (call, caller)
}

/// A consult call to 119 (going as `how` says), once the hotline has
/// answered it.
fn answered_consult(
    server: &Server,
    how: Consult,
    desk: &Desk,
    fire: &TrunkEndpoint,
) -> ConsultCall {
    let consult = ConsultCall::place(server, "119", how);
    assert!(
        consult.answered(Duration::from_secs(10)),
        "the consult call was not answered\n{}",
        diag(server, &[&consult, desk, fire])
    );
    consult
}

/// A consult call to 119 that the hotline must refuse as `how` says
/// without dialling 119; `whom` names it in a failure.
fn refused_before_dialling(
    server: &Server,
    how: Consult,
    whom: &str,
    desk: &Desk,
    fire: &TrunkEndpoint,
) {
    let mut consult = ConsultCall::place(server, "119", how);
    let what = format!("{whom} was not refused as {how:?}");
    assert_ends_ok(server, &mut consult, &[desk, fire], &what);
    assert!(
        fire.invite().is_empty(),
        "119 was dialled for {whom}\n{}",
        diag(server, &[&consult, fire])
    );
}

/// The caller hangs up; the first line's SIPp must end with the call.
fn caller_hangs_up(
    server: &Server,
    call: &RawCall,
    caller: ToneMedia,
    desk: &mut Desk,
    others: &[&dyn Logs],
) {
    call.bye();
    drop(caller);
    let what = "the first line did not end with the caller's call";
    assert_ends_ok(server, desk, others, what);
}

/// Checks the only transfer event on the call's record: the fields in
/// `expect`; returns the record.
/// The consult call reached the call and 119 was dialled for it; `more`
/// log lines are expected besides.
fn consult_dialled(
    server: &Server,
    fire: &TrunkEndpoint,
    more: &[&str],
    diag: impl Fn() -> String,
) {
    assert!(
        fire.invite().starts_with("INVITE sip:119@"),
        "119 was not dialled\n{}",
        diag()
    );
    let mut lines = vec![
        "consult call from a seat",
        "agent consults from the softphone",
        "transfer asked",
    ];
    lines.extend_from_slice(more);
    expect_logs(server, &lines, Duration::from_secs(2), diag);
}

/// The caller, handed to 119 by REFER, talks with 119 and nobody else;
/// hanging up ends 119's leg; the record holds one answered attended
/// transfer made by REFER.
fn transferred_to_119(
    server: &Server,
    call: RawCall,
    caller: ToneMedia,
    fire: &TrunkEndpoint,
    when: &str,
    diag: impl Fn() -> String,
) {
    let (from, to) = listen(2.0);
    let heard = caller.heard_between(from, to);
    hears_only(&format!("the caller {when}"), &heard, FIRE_TONE, &diag);
    let heard = fire.media.heard_between(from, to);
    hears_only(&format!("119 {when}"), &heard, CALLER_TONE, &diag);
    call.bye();
    drop(caller);
    assert!(
        fire.wait_message("BYE sip:", Duration::from_secs(5)),
        "119 was not hung up after the caller left\n{}",
        diag()
    );
    let record = assert_only_event(
        server,
        &call,
        json!({"kind": "attended", "target": "119", "by": "1001", "via": "refer",
            "result": "answered"}),
    );
    assert!(!record["transfers"][0]["answered_at"].is_null(), "{record}");
}

fn assert_only_event(server: &Server, call: &RawCall, expect: Value) -> Value {
    let record = server.call_record(&call.call_id);
    let events = record["transfers"]
        .as_array()
        .unwrap_or_else(|| panic!("no transfers on the record: {record}"));
    assert_eq!(events.len(), 1, "one consult, one event: {record}");
    for (key, want) in expect.as_object().unwrap() {
        assert_eq!(&events[0][key], want, "transfers[0].{key}: {record}");
    }
    record
}

/// The whole attended transfer: the softphone's second line calls 119
/// through the hotline (180, then 200 once 119 answers); while they
/// consult, agent and 119 hear each other and the caller hears
/// "please hold" and music, neither of them. A REFER in the first dialog
/// with Replaces naming the consult call gets 202, NOTIFY `200 OK`
/// (subscription terminated) and then BYE there, and BYE on the consult
/// call; caller and 119 talk, and the record says so.
#[test]
fn the_softphone_consults_119_then_refers_the_caller_with_replaces() {
    let fire = TrunkEndpoint::start("119", Law::Alaw, FIRE_TONE);
    let server = server("softphone-attended", &[&fire]);
    let mut desk = Desk::start(&server);
    let (call, caller) = caller_with_agent(&server, &desk);

    let mut consult = answered_consult(&server, Consult::Answered, &desk, &fire);
    let d = |c: &ConsultCall, d: &Desk| diag(&server, &[d, c, &fire]);
    let messages = consult.messages();
    let ringing = messages.iter().position(|m| m.starts_with("SIP/2.0 180"));
    let ok = messages.iter().position(|m| m.starts_with("SIP/2.0 200"));
    assert!(
        ringing.is_some() && ringing < ok,
        "no 180 before the consult call's 200\n{}",
        d(&consult, &desk)
    );
    consult_dialled(&server, &fire, &["transfer target answered"], || {
        d(&consult, &desk)
    });

    // Consulting: agent and 119 hear each other, the caller is held.
    let (from, to) = listen(2.5);
    let heard = consult.media.heard_between(from, to);
    hears_only("the agent on the consult line", &heard, FIRE_TONE, || {
        d(&consult, &desk)
    });
    let heard = fire.media.heard_between(from, to);
    hears_only("119 while consulting", &heard, AGENT_TONE, || {
        d(&consult, &desk)
    });
    let held = caller.heard_between(from, to);
    assert_on_hold("the held caller", &held, || d(&consult, &desk));
    let since_placed = caller.heard_between(consult.placed, to);
    expect_prompt(
        &since_placed,
        "transfer_wait",
        2.0,
        true,
        "the held caller",
        || d(&consult, &desk),
    );

    // The softphone hands the caller over: REFER in the first dialog.
    let first = desk.first_dialog();
    let refer_to = format!("<sip:119@{}?Replaces={}>", server.sip, consult.replaces());
    let answer = send_refer(&server, &first, &refer_to);
    assert!(
        answer.starts_with("SIP/2.0 202"),
        "REFER with Replaces:\n{answer}\n{}",
        d(&consult, &desk)
    );
    let lines = [
        "agent's softphone completes an attended transfer",
        "attended transfer completed",
    ];
    expect_logs(&server, &lines, Duration::from_secs(3), || {
        d(&consult, &desk)
    });
    assert_ends_ok(
        &server,
        &mut desk,
        &[&consult, &fire],
        "the first line's SIPp ended",
    );
    assert_ends_ok(
        &server,
        &mut consult,
        &[&desk, &fire],
        "the consult line's SIPp ended",
    );
    let notes = desk.notes();
    let done = notes
        .iter()
        .position(|n| n == "NOTIFY SIP/2.0 200 terminated");
    let bye = notes.iter().position(|n| n == "BYE");
    assert!(
        done.is_some() && bye.is_some() && done < bye,
        "the first line got {notes:?}, not NOTIFY 200 (terminated) then BYE\n{}",
        d(&consult, &desk)
    );
    assert!(
        consult.messages().iter().any(|m| m.starts_with("BYE ")),
        "the consult call got no BYE\n{}",
        d(&consult, &desk)
    );

    // Caller and 119 talk.
    transferred_to_119(&server, call, caller, &fire, "after the transfer", || {
        d(&consult, &desk)
    });
}

/// How long 119 rings before answering in the semi-attended transfer:
/// long enough for the REFER and a stretch of music after it.
const FIRE_RINGS_MS: u32 = 8_000;

/// The semi-attended transfer: the softphone's second line calls 119
/// through the hotline, which sends 180 (its To tag) and rings 119; while
/// 119 still rings, a REFER in the first dialog with Replaces naming the
/// consult call's early dialog gets 202, NOTIFY `200 OK` (subscription
/// terminated) then BYE there, and the consult INVITE 487. The caller
/// holds (transfer_wait, music) until 119 answers; then caller and 119
/// talk, and the record says the attended transfer by REFER was answered.
#[test]
fn the_softphone_refers_the_caller_to_119_while_119_still_rings() {
    let rings = TrunkAnswer::AnswersAfter(FIRE_RINGS_MS);
    let fire = TrunkEndpoint::with("119", Law::Alaw, FIRE_TONE, rings);
    let server = server("softphone-semi-attended", &[&fire]);
    let mut desk = Desk::start(&server);
    let (call, caller) = caller_with_agent(&server, &desk);

    let mut consult = ConsultCall::place(&server, "119", Consult::Refused(487));
    let d = |c: &ConsultCall, d: &Desk| diag(&server, &[d, c, &fire]);
    assert!(
        consult.ringing(Duration::from_secs(10)),
        "no 180 on the consult call\n{}",
        d(&consult, &desk)
    );
    assert!(
        fire.wait_message("SIP/2.0 180", Duration::from_secs(10)),
        "119 was not rung\n{}",
        d(&consult, &desk)
    );
    consult_dialled(&server, &fire, &[], || d(&consult, &desk));

    // 119 rings: the caller holds.
    let (from, to) = listen(1.5);
    let held = caller.heard_between(from, to);
    assert_on_hold("the caller while 119 rings", &held, || d(&consult, &desk));
    let since_placed = caller.heard_between(consult.placed, to);
    expect_prompt(
        &since_placed,
        "transfer_wait",
        1.5,
        true,
        "the caller while 119 rings",
        || d(&consult, &desk),
    );

    // The softphone hands the caller over before 119 answers.
    let first = desk.first_dialog();
    let replaces = consult.replaces_from("SIP/2.0 180");
    let refer_to = format!("<sip:119@{}?Replaces={replaces}>", server.sip);
    assert!(
        !server.log().contains("transfer target answered"),
        "119 answered before the REFER went\n{}",
        d(&consult, &desk)
    );
    let answer = send_refer(&server, &first, &refer_to);
    assert!(
        answer.starts_with("SIP/2.0 202"),
        "REFER with Replaces naming the ringing consult:\n{answer}\n{}",
        d(&consult, &desk)
    );
    let lines = ["agent's softphone transfers while the target rings"];
    expect_logs(&server, &lines, Duration::from_secs(3), || {
        d(&consult, &desk)
    });
    assert_ends_ok(
        &server,
        &mut desk,
        &[&consult, &fire],
        "the first line's SIPp ended",
    );
    let what = "the consult line's SIPp ended on 487";
    assert_ends_ok(&server, &mut consult, &[&desk, &fire], what);
    let notes = desk.notes();
    let done = notes
        .iter()
        .position(|n| n == "NOTIFY SIP/2.0 200 terminated");
    let bye = notes.iter().position(|n| n == "BYE");
    assert!(
        done.is_some() && bye.is_some() && done < bye,
        "the first line got {notes:?}, not NOTIFY 200 (terminated) then BYE\n{}",
        d(&consult, &desk)
    );
    assert!(
        consult
            .messages()
            .iter()
            .any(|m| m.starts_with("SIP/2.0 487 Request Terminated") && to_invite(m)),
        "the consult INVITE was not answered 487 Request Terminated\n{}",
        d(&consult, &desk)
    );

    // 119 still rings, the agent gone: the caller still holds.
    let (from, to) = listen(1.5);
    assert!(
        !server.log().contains("transfer target answered"),
        "119 answered before the caller's hold after the REFER was heard\n{}",
        d(&consult, &desk)
    );
    let held = caller.heard_between(from, to);
    assert_on_hold("the caller after the REFER, 119 ringing", &held, || {
        d(&consult, &desk)
    });

    // 119 answers: caller and 119 talk.
    let limit = Duration::from_millis(u64::from(FIRE_RINGS_MS) + 5_000);
    expect_logs(&server, &["transfer target answered"], limit, || {
        d(&consult, &desk)
    });
    transferred_to_119(&server, call, caller, &fire, "once 119 answers", || {
        d(&consult, &desk)
    });
}

/// A consult call is taken only from a seat on a call (404 otherwise, as
/// for any unknown number) and with an SDP offer (488); a busy 119 fails
/// it with 486 and the caller is back with the agent (after the
/// transfer_failed prompt), no music. A REFER
/// whose Replaces names no consult gets 202 and NOTIFY `481`, and nothing
/// else changes.
#[test]
fn consult_calls_are_checked_and_fail_as_their_target_does() {
    let fire = TrunkEndpoint::with("119", Law::Alaw, FIRE_TONE, TrunkAnswer::Busy);
    let server = server("softphone-consult-checks", &[&fire]);
    let mut desk = Desk::start(&server);

    // Registered, but not on a call.
    let idle = Consult::Refused(404);
    refused_before_dialling(&server, idle, "a consult from an idle seat", &desk, &fire);

    let (call, caller) = caller_with_agent(&server, &desk);
    let bare = Consult::NoOffer(488);
    refused_before_dialling(&server, bare, "a consult without SDP", &desk, &fire);

    let mut busy = ConsultCall::place(&server, "119", Consult::Refused(486));
    let heard_since = |at: Instant| profile(&caller.heard_between(at, Instant::now()));
    let what = "a consult to busy 119 was not refused with 486";
    assert_ends_ok(&server, &mut busy, &[&desk, &fire], what);
    assert!(
        fire.invite().starts_with("INVITE sip:119@"),
        "119 was not dialled\n{}",
        diag(&server, &[&busy, &fire])
    );
    assert!(
        back_with_desk(&caller, busy.placed, Duration::from_secs(10)),
        "after busy 119 the caller is not back with the agent alone\n--- caller {}{}{}",
        caller.describe(),
        heard_since(busy.placed),
        diag(&server, &[&busy, &desk, &fire])
    );

    // A REFER naming no consult: 202, NOTIFY 481, and the call goes on.
    let first = desk.first_dialog();
    let refer_to = format!(
        "<sip:119@{}?Replaces=nosuch%40127.0.0.1%3Bto-tag%3D1%3Bfrom-tag%3D2>",
        server.sip
    );
    let answer = send_refer(&server, &first, &refer_to);
    assert!(
        answer.starts_with("SIP/2.0 202"),
        "REFER with an unknown Replaces:\n{answer}\n{}",
        diag(&server, &[&desk, &fire])
    );
    let notified = poll(Duration::from_secs(5), Duration::from_millis(50), || {
        desk.noted("NOTIFY SIP/2.0 481 terminated").then_some(())
    });
    assert!(
        notified.is_some(),
        "no NOTIFY 481 (terminated) for the unknown Replaces: {:?}\n{}",
        desk.notes(),
        diag(&server, &[&desk, &fire])
    );
    let (from, to) = listen(1.5);
    assert!(
        only_desk(&caller.heard_between(from, to)),
        "after the unknown Replaces the caller is not with the agent alone\n{}{}",
        heard_since(busy.placed),
        diag(&server, &[&desk, &fire])
    );
    assert!(
        !desk.noted("BYE"),
        "the first line was hung up after the unknown Replaces\n{}",
        diag(&server, &[&desk, &fire])
    );
    assert_eq!(
        fire.messages().matches("INVITE sip:119@").count(),
        1,
        "119 was dialled again\n{}",
        diag(&server, &[&desk, &fire])
    );

    caller_hangs_up(&server, &call, caller, &mut desk, &[&fire]);
    assert_only_event(
        &server,
        &call,
        json!({"kind": "attended", "target": "119", "by": "1001",
            "result": "busy", "status": 486}),
    );
}

/// The agent hangs up the consult call before any REFER: 119 is hung up
/// and the caller is back with the agent, with no music.
#[test]
fn hanging_up_the_consult_call_brings_the_caller_back_to_the_agent() {
    let fire = TrunkEndpoint::start("119", Law::Alaw, FIRE_TONE);
    let server = server("softphone-consult-bye", &[&fire]);
    let mut desk = Desk::start(&server);
    let (call, caller) = caller_with_agent(&server, &desk);

    let hangs_up = Consult::HangsUpAfter(3_000);
    let mut consult = answered_consult(&server, hangs_up, &desk, &fire);
    let (from, to) = listen(1.5);
    let heard = fire.media.heard_between(from, to);
    hears_only("119 while consulting", &heard, AGENT_TONE, || {
        diag(&server, &[&consult, &desk, &fire])
    });
    let what = "the consult line's BYE was not answered";
    assert_ends_ok(&server, &mut consult, &[&desk, &fire], what);
    let hung_up = Instant::now();
    assert!(
        fire.wait_message("BYE sip:", Duration::from_secs(5)),
        "119 was not hung up with the consult call\n{}",
        diag(&server, &[&consult, &desk, &fire])
    );
    assert!(
        back_with_desk(&caller, hung_up, Duration::from_secs(5)),
        "the caller is not back with the agent alone {:.1} s after the consult ended\n{}",
        hung_up.elapsed().as_secs_f32(),
        diag(&server, &[&consult, &desk, &fire])
    );
    let (from, to) = listen(1.5);
    let d = || diag(&server, &[&consult, &desk, &fire]);
    let heard = caller.heard_between(from, to);
    hears_only("the caller after the consult", &heard, DESK_TONE, d);
    let heard = desk.media.heard_between(from, to);
    hears_only(
        "the agent's first line after the consult",
        &heard,
        CALLER_TONE,
        d,
    );
    assert!(!desk.noted("BYE"), "the first line was hung up\n{}", d());

    caller_hangs_up(&server, &call, caller, &mut desk, &[&consult, &fire]);
    assert_only_event(
        &server,
        &call,
        json!({"kind": "attended", "target": "119", "by": "1001", "result": "answered"}),
    );
}
