//! The far end of a trunk (110, 119, a utility's line): a SIPp UAS on a
//! loopback port that answers OPTIONS health checks and INVITEs, with the
//! call's audio on a socket the test owns ([`ToneMedia`]: a tone out, what
//! it hears kept with arrival times).
//!
//! ```text
//! let fire = TrunkEndpoint::start("119", Law::Ulaw, 1400.0);
//! let trunks = trunk_section(&[fire.entry("options_secs = 0")]);
//! let server = Server::start("x", &[("[trunk]", &trunks)]);
//! // ... calls to "119" reach `fire`; `fire.media.heard_between(..)`,
//! // `fire.messages()` (SIP as SIPp logged it).
//! ```

use super::media::ToneMedia;
use super::{SippProcess, free_udp_port, poll, require, rtp_sockets, uas_request};
use hotline::media::g711::Law;
use std::time::Duration;

/// How the endpoint takes an INVITE. Every variant answers OPTIONS with 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkAnswer {
    /// 180, then 200 with SDP for the test's socket; waits for the BYE.
    Answers,
    /// Answers, then sends BYE itself this many ms after the ACK.
    AnswersThenHangsUp(u32),
    /// 180, then this many ms of ringing, then as [`TrunkAnswer::Answers`].
    AnswersAfter(u32),
    /// 486 Busy Here.
    Busy,
    /// 180 and nothing more, until the server cancels (200, 487).
    NeverAnswers,
    /// Challenges the first INVITE (401 with a `WWW-Authenticate` digest
    /// challenge, realm `trunk.test`, qop `auth`); the INVITE sent again
    /// is answered as [`TrunkAnswer::Answers`] if its `Authorization`
    /// holds the digest of `user` and `password`, else with 403.
    Challenges {
        user: &'static str,
        password: &'static str,
    },
}

/// A trunk's far end: SIPp on `127.0.0.1:port`, media on `media`.
pub struct TrunkEndpoint {
    pub name: String,
    /// SIPp's SIP port.
    pub port: u16,
    /// The call's audio: sends the tone in the chosen law to wherever the
    /// server's RTP comes from, and keeps what it hears.
    pub media: ToneMedia,
    /// The tone the far end speaks, in Hz.
    pub tone: f32,
    /// SIPp, with its folder (scenario and `-trace_msg` logs).
    pub sipp: SippProcess,
}

impl TrunkEndpoint {
    /// An endpoint that answers every INVITE, speaking `tone_hz` in `law`
    /// (the SDP answer offers only that law).
    pub fn start(name: &str, law: Law, tone_hz: f32) -> TrunkEndpoint {
        Self::with(name, law, tone_hz, TrunkAnswer::Answers)
    }

    /// An endpoint that takes INVITEs as `answer` says.
    pub fn with(name: &str, law: Law, tone_hz: f32, answer: TrunkAnswer) -> TrunkEndpoint {
        Self::build(name, law, tone_hz, answer, false)
    }

    /// An endpoint that answers every INVITE and also takes keys as RFC
    /// 4733 telephone-events (payload type 101, which the server offers):
    /// a line with a menu of its own. The keys it gets are in
    /// `media.keys()`.
    pub fn taking_keys(name: &str, law: Law, tone_hz: f32) -> TrunkEndpoint {
        Self::build(name, law, tone_hz, TrunkAnswer::Answers, true)
    }

    fn build(name: &str, law: Law, tone_hz: f32, answer: TrunkAnswer, keys: bool) -> TrunkEndpoint {
        require("sipp", "sip-tester");
        let (socket, _rtcp) = rtp_sockets();
        let rtp_port = socket.local_addr().unwrap().port();
        let media = ToneMedia::answering(socket, law, tone_hz);
        let port = free_udp_port(1);
        let sipp = SippProcess::start(
            &format!("trunk-{name}"),
            &scenario(answer, rtp_port, law.payload_type(), law.name(), keys),
            port,
            &[],
        );
        TrunkEndpoint {
            name: name.to_owned(),
            port,
            media,
            tone: tone_hz,
            sipp,
        }
    }

    /// This endpoint as a `[[trunk]]` entry (name and URI), plus `extra`
    /// lines such as `options_secs = 0` or `ring_secs = 3`.
    pub fn entry(&self, extra: &str) -> String {
        trunk_entry(&self.name, self.port, extra)
    }

    /// The SIP messages SIPp sent and received, as it logged them.
    pub fn messages(&self) -> String {
        self.sipp.messages(&format!("trunk {}", self.name))
    }

    /// Waits until SIPp's log contains `text` (e.g. `"BYE sip:"`).
    pub fn wait_message(&self, text: &str, limit: Duration) -> bool {
        poll(limit, Duration::from_millis(50), || {
            self.messages().contains(text).then_some(())
        })
        .is_some()
    }

    /// The first INVITE SIPp received, as logged (empty when none).
    pub fn invite(&self) -> String {
        let log = self.messages();
        let Some(start) = log.find("INVITE sip:") else {
            return String::new();
        };
        let rest = &log[start..];
        // SIPp separates logged messages with a dashed line.
        let end = rest.find("\n----").unwrap_or(rest.len());
        rest[..end].to_string()
    }
}

/// One `[[trunk]]` entry at a loopback port (where nothing need listen),
/// plus `extra` lines.
pub fn trunk_entry(name: &str, port: u16, extra: &str) -> String {
    format!("name = \"{name}\"\nuri = \"sip:{name}@127.0.0.1:{port}\"\n{extra}\n")
}

/// The body of the `("[trunk]", ..)` config section for these entries:
/// they replace the shipped trunks. A `pstn` trunk with no health checks
/// (to a closed port) is added when none is given, since call-backs need
/// one.
pub fn trunk_section(entries: &[String]) -> String {
    let mut all: Vec<String> = entries.to_vec();
    if !entries.iter().any(|e| e.starts_with("name = \"pstn\"")) {
        let closed = free_udp_port(1);
        all.push(format!(
            "name = \"pstn\"\nuri = \"sip:{{number}}@127.0.0.1:{closed}\"\noptions_secs = 0\n"
        ));
    }
    all.join("\n[[trunk]]\n")
}

/// The UAS scenario: OPTIONS get 200 (a call of their own in SIPp); an
/// INVITE is taken as `answer` says, with an SDP answer pointing at the
/// test's socket (with telephone-event 101 when it takes `keys`).
fn scenario(answer: TrunkAnswer, rtp_port: u16, pt: u8, codec: &str, keys: bool) -> String {
    // A response to the last request; `tag` adds our To tag.
    let respond = |status: &str, cseq: &str, tag: bool, body: &str| {
        let to_tag = if tag {
            ";tag=[pid]SIPpTag01[call_number]"
        } else {
            ""
        };
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\n"
        };
        format!(
            "  <send><![CDATA[\nSIP/2.0 {status}\n[last_Via:]\n[last_From:]\n[last_To:]{to_tag}\n\
             [last_Call-ID:]\n{cseq}\nContact: <sip:[local_ip]:[local_port];transport=[transport]>\n\
             {ctype}Content-Length: [len]\n\n{body}]]></send>\n"
        )
    };
    let last = "[last_CSeq:]";
    let (formats, events) = if keys {
        (
            format!("{pt} 101"),
            "a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n",
        )
    } else {
        (pt.to_string(), "")
    };
    let sdp = format!(
        "v=0\no=trunk 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
         m=audio {rtp_port} RTP/AVP {formats}\na=rtpmap:{pt} {codec}/8000\n{events}a=sendrecv\n"
    );
    let ringing = respond("180 Ringing", last, true, "");
    let ok = respond("200 OK", last, true, &sdp);
    let bye_ok = respond("200 OK", last, false, "");
    let calls = match answer {
        TrunkAnswer::Answers => {
            format!("{ringing}{ok}  <recv request=\"ACK\"/>\n  <recv request=\"BYE\"/>\n{bye_ok}")
        }
        TrunkAnswer::AnswersAfter(ms) => format!(
            "{ringing}  <pause milliseconds=\"{ms}\"/>\n{ok}  <recv request=\"ACK\"/>\n  \
             <recv request=\"BYE\"/>\n{bye_ok}"
        ),
        TrunkAnswer::AnswersThenHangsUp(ms) => format!(
            "{ringing}{ok}  <recv request=\"ACK\"/>\n  <pause milliseconds=\"{ms}\"/>\n\
             {}  <recv response=\"200\"/>\n",
            uas_request("BYE", 201, "[$to]", "", "")
        ),
        TrunkAnswer::Busy => format!(
            "{}  <recv request=\"ACK\"/>\n",
            respond("486 Busy Here", last, true, "")
        ),
        TrunkAnswer::NeverAnswers => format!(
            "{ringing}  <recv request=\"CANCEL\"/>\n{}{}  <recv request=\"ACK\"/>\n",
            respond("200 OK", last, false, ""),
            respond("487 Request Terminated", "CSeq: [$n] INVITE", true, ""),
        ),
        TrunkAnswer::Challenges { user, password } => {
            let challenge = respond("401 Unauthorized", last, true, "").replacen(
                "Contact:",
                "WWW-Authenticate: Digest realm=\"trunk.test\", \
                 nonce=\"4f1d2c3b5a6978e0\", algorithm=MD5, qop=\"auth\"\nContact:",
                1,
            );
            let forbidden = respond("403 Forbidden", last, true, "");
            format!(
                r#"{challenge}  <recv request="ACK"/>
  <recv request="INVITE">
    <action>
      <verifyauth assign_to="authvalid" username="{user}" password="{password}"/>
    </action>
  </recv>
  <nop test="authvalid" next="authorized"/>
{forbidden}  <recv request="ACK"/>
  <nop next="end"/>
  <label id="authorized"/>
{ringing}{ok}  <recv request="ACK"/>
  <recv request="BYE"/>
{bye_ok}"#
            )
        }
    };
    let options_ok = respond("200 OK", last, true, "");
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="trunk endpoint">
  <recv request="OPTIONS" optional="true" next="options"/>
  <recv request="INVITE">
    <action>
      <ereg regexp="([0-9]+) INVITE" search_in="hdr" header="CSeq:" assign_to="x,n"/>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="to"/>
      <ereg regexp="(sip:[^>]*)" search_in="hdr" header="Contact:" assign_to="y,contact"/>
    </action>
  </recv>
{calls}  <nop next="end"/>
  <label id="options"/>
{options_ok}  <label id="end"/>
  <Reference variables="x,n,y,from,to,contact"/>
</scenario>
"#
    )
}
