//! SIPp as an agent seat: it registers a seat from a fixed port, then a
//! second SIPp answers (or refuses) the INVITEs the server sends to that
//! port, the address the registration came from.

use super::*;

/// SIPp knows only MD5 and reads the first challenge; baresip too is safest
/// with it: offer MD5 alone.
pub const MD5_ONLY: (&str, &str) = ("registrar", "algorithms = [\"MD5\"]");

/// A REGISTER with digest auth: the 401, then `answer` to the authenticated
/// retry, with `check` (an `<action>`, assigning variable 1) inside it.
pub fn register_scenario(
    user: &str,
    password: &str,
    expires: u32,
    answer: u16,
    check: &str,
) -> String {
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
    let reference = if check.is_empty() {
        ""
    } else {
        "  <Reference variables=\"1\"/>\n"
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
{first}  <recv response="401" auth="true"/>
{second}  <recv response="{answer}">{check}</recv>
{reference}</scenario>
"#,
        first = head(1, ""),
        second = head(
            2,
            &format!("[authentication username={user} password={password}]\n")
        ),
    )
}

/// How a SIPp seat answers the server's INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 486 Busy Here.
    Busy,
    /// 180 and nothing more, until the server cancels.
    NeverAnswers,
    /// 180, 200 with µ-law SDP, then waits for the BYE.
    Answers,
    /// Answers, then after 1 s puts the caller on hold (re-INVITE with
    /// `a=sendonly`) for 3 s, takes them off (`a=sendrecv`), and waits for
    /// the BYE.
    AnswersAndHolds,
    /// Answers, and hangs up itself 2 s later.
    AnswersThenHangsUp,
}

fn uas_scenario(answer: Answer) -> String {
    let reply = |status: &str, cseq: &str, body: &str| {
        // A request inside the dialog already carries our tag.
        let to = if status == "200 OK" && cseq == "[last_CSeq:]" && body.is_empty() {
            "[last_To:]"
        } else {
            "[last_To:];tag=[pid]SIPpTag01[call_number]"
        };
        let (ctype, len) = if body.is_empty() {
            (String::new(), 0)
        } else {
            ("Content-Type: application/sdp\n".to_string(), body.len())
        };
        format!(
            r#"  <send><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
{to}
[last_Call-ID:]
{cseq}
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{ctype}Content-Length: {len}

{body}]]></send>
"#
        )
    };
    let sdp = "v=0\no=seat 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\nm=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";
    let invite = r#"  <recv request="INVITE">
    <action>
      <ereg regexp="([0-9]+) INVITE" search_in="hdr" header="CSeq:" assign_to="x,n"/>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>
      <ereg regexp="(sip:[^>]*)" search_in="hdr" header="Contact:" assign_to="y,contact"/>
    </action>
  </recv>
"#;
    // A request from the seat inside the dialog: its To is the server's From.
    let reinvite = |cseq: u32, direction: &str| {
        let sdp = format!(
            "v=0\no=seat 1 {cseq} IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\nm=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000\na={direction}\n"
        );
        let request = uas_request(
            "INVITE",
            cseq,
            "<sip:seat@[local_ip]:[local_port]>",
            "Contact: <sip:[local_ip]:[local_port];transport=[transport]>\n\
             Content-Type: application/sdp\n",
            &sdp,
        );
        format!(
            r#"{request}  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK [$contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:seat@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To: [$from]
Call-ID: [call_id]
CSeq: {cseq} ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
"#
        )
    };
    let body = match answer {
        Answer::Busy => format!(
            "{invite}{}  <recv request=\"ACK\"/>\n",
            reply("486 Busy Here", "[last_CSeq:]", "")
        ),
        Answer::NeverAnswers => format!(
            "{invite}{}  <recv request=\"CANCEL\"/>\n{}{}  <recv request=\"ACK\"/>\n",
            reply("180 Ringing", "[last_CSeq:]", ""),
            reply("200 OK", "[last_CSeq:]", ""),
            reply("487 Request Terminated", "CSeq: [$n] INVITE", ""),
        ),
        Answer::AnswersAndHolds => format!(
            "{invite}{}{}  <recv request=\"ACK\"/>\n  <pause milliseconds=\"1000\"/>\n{}  <pause milliseconds=\"3000\"/>\n{}  <recv request=\"BYE\"/>\n{}",
            reply("180 Ringing", "[last_CSeq:]", ""),
            reply("200 OK", "[last_CSeq:]", sdp),
            reinvite(101, "sendonly"),
            reinvite(102, "sendrecv"),
            reply("200 OK", "[last_CSeq:]", ""),
        ),
        Answer::AnswersThenHangsUp => format!(
            "{invite}{}{}  <recv request=\"ACK\"/>\n  <pause milliseconds=\"2000\"/>\n{}  <recv response=\"200\"/>\n",
            reply("180 Ringing", "[last_CSeq:]", ""),
            reply("200 OK", "[last_CSeq:]", sdp),
            uas_request("BYE", 201, "<sip:peer@[local_ip]:[local_port]>", "", ""),
        ),
        Answer::Answers => format!(
            "{invite}{}{}  <recv request=\"ACK\"/>\n  <recv request=\"BYE\"/>\n{}",
            reply("180 Ringing", "[last_CSeq:]", ""),
            reply("200 OK", "[last_CSeq:]", sdp),
            reply("200 OK", "[last_CSeq:]", ""),
        ),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"seat\">\n{body}  <Reference variables=\"x,n,y,from,contact\"/>\n</scenario>\n"
    )
}

/// A seat played by SIPp: registered from `port`, answering there.
pub struct SippSeat {
    pub id: String,
    pub port: u16,
    /// SIPp, with its folder (scenario and logs).
    pub sipp: SippProcess,
}

impl SippSeat {
    /// Registers `id` (password `hotline-<id>`) from a fresh port, then
    /// starts the UAS that takes `calls` INVITEs on that port.
    pub fn start(server: &Server, id: &str, answer: Answer, calls: u32) -> SippSeat {
        SippSeat::answering(id, SippSeat::register(server, id), answer, calls)
    }

    /// Registers `id` (password `hotline-<id>`) from a fresh port, where
    /// the server will send its INVITEs; returns the port.
    pub fn register(server: &Server, id: &str) -> u16 {
        require("sipp", "sip-tester");
        let port = free_udp_port(1);
        let scenario = register_scenario(id, &format!("hotline-{id}"), 3600, 200, "");
        let run = sipp(server, &scenario, 1, &["-p", &port.to_string()]);
        assert!(
            run.success,
            "seat {id} did not register\n{}\n{}",
            run.describe(),
            server.log()
        );
        port
    }

    /// A UAS on `port` that takes `calls` INVITEs, without registering (a
    /// phone behind a trunk).
    pub fn answering(id: &str, port: u16, answer: Answer, calls: u32) -> SippSeat {
        let calls = calls.to_string();
        let sipp = SippProcess::start(
            "sipp-seat",
            &uas_scenario(answer),
            port,
            &["-m", &calls, "-timeout", "60"],
        );
        SippSeat {
            id: id.to_string(),
            port,
            sipp,
        }
    }

    /// What the seat's SIPp logged.
    pub fn messages(&self) -> String {
        self.sipp.messages(&format!("seat {}", self.id))
    }
}
