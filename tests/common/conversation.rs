//! A caller in conversation with an agent, where transfers and three-way
//! calls start: a server with test trunks, seat 1001 on baresip (µ-law,
//! speaking [`AGENT_TONE`]) with its desktop's events, and a caller who
//! came through the real IVR to the operator queue and was answered.
//!
//! ```text
//! let fire = TrunkEndpoint::start("119", Law::Alaw, 1400.0);
//! let server = trunk_server("x", &[fire.entry("options_secs = 0")], &[]);
//! let c = Conversation::start(&server, &[&fire]);
//! c.bring_in("/conference", "119");
//! let w = c.listen(2.0);
//! w.caller_hears("in the three-way call", &[AGENT_TONE, 1400.0]);
//! w.hears("119", &fire.media, &[CALLER_TONE, AGENT_TONE]);
//! ```

use super::baresip::{Baresip, Ctrl, baresip_seat, decoded_recordings, read_wav, to_8khz};
use super::events::EventStream;
use super::media::{
    CALLER_TONE, CLEAR, ToneMedia, assert_hears, before_end, dial, dominance, own_rtp_ports,
    to_operator,
};
use super::seat::MD5_ONLY;
use super::trunk::{TrunkEndpoint, trunk_section};
use super::{RawCall, Server, expect_prompt, http, prompt_pcm, require};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Seat 1001's tone: the agent's voice.
pub const AGENT_TONE: f32 = 1000.0;

/// A server for transfer tests: MD5-only registrar (for SIPp and
/// baresip), RTP ports of its own, these `[[trunk]]` entries (see
/// [`trunk_section`]), and `extra` sections.
pub fn trunk_server(name: &str, entries: &[String], extra: &[(&str, &str)]) -> Server {
    let trunks = trunk_section(entries);
    let (media, ports) = own_rtp_ports();
    let mut sections = vec![
        MD5_ONLY,
        // SIPp seats run fixed scripts: a keep-alive OPTIONS arriving in
        // the middle of one (a slow run reaches the first ping at 30 s)
        // would abort it.
        ("registrar", "keepalive_secs = 0"),
        ("[trunk]", trunks.as_str()),
        (media, ports.as_str()),
    ];
    sections.extend_from_slice(extra);
    Server::start(name, &sections)
}

/// A stretch of a conversation listened to, for checking who heard what.
pub struct Window<'c> {
    conversation: &'c Conversation<'c>,
    pub from: Instant,
    pub to: Instant,
}

impl Window<'_> {
    /// Checks that `who` heard, on `media`, the `want` tones and no other
    /// party (see [`Conversation::hears`]).
    pub fn hears(&self, who: &str, media: &ToneMedia, want: &[f32]) {
        let pcm = media.heard_between(self.from, self.to);
        self.conversation.hears(who, &pcm, want);
    }

    /// The same for the caller, `when` saying when ("the caller {when}").
    pub fn caller_hears(&self, when: &str, want: &[f32]) {
        let who = format!("the caller {when}").trim_end().to_owned();
        self.hears(&who, &self.conversation.caller, want);
    }
}

/// A caller talking with agent 1001 on baresip.
pub struct Conversation<'a> {
    pub server: &'a Server,
    /// The far ends of trunks the test may call (their logs go in
    /// [`Conversation::diag`]).
    pub trunks: Vec<&'a TrunkEndpoint>,
    pub call: RawCall,
    /// The caller's media, speaking [`CALLER_TONE`].
    pub caller: ToneMedia,
    pub agent: Baresip,
    pub ctrl: Ctrl,
    /// Where the agent's softphone records what it hears.
    pub rec: PathBuf,
    /// Seat 1001's desktop events.
    pub events: EventStream,
}

impl<'a> Conversation<'a> {
    /// Seat 1001 on baresip registers with `server`; a caller dials in,
    /// asks for the operator and is answered; the caller hears the agent.
    pub fn start(server: &'a Server, trunks: &[&'a TrunkEndpoint]) -> Conversation<'a> {
        require("baresip", "baresip-core");
        let (agent, ctrl, rec) = baresip_seat(server, "1001", AGENT_TONE);
        let events = EventStream::connect(server, "/api/v1/seats/1001/events");
        assert!(
            server.wait_log("registered seat=1001", Duration::from_secs(10)),
            "seat 1001 did not register\n{}{}",
            agent.output(),
            server.log()
        );
        let (call, caller, keys) = dial(server);
        to_operator(&keys, &call);
        let c = Conversation {
            server,
            trunks: trunks.to_vec(),
            call,
            caller,
            agent,
            ctrl,
            rec,
            events,
        };
        c.expect_log("caller connected to agent", Duration::from_secs(10));
        c.expect_softphone("CALL_ESTABLISHED", "baresip did not report the call");
        // The agent's voice is coming through before anything is tried.
        std::thread::sleep(Duration::from_millis(1_500));
        let heard = c.caller.heard_between(
            Instant::now() - Duration::from_millis(1_000),
            Instant::now(),
        );
        let ratio = dominance(&heard, AGENT_TONE, CALLER_TONE);
        assert!(
            heard.len() >= 4_000 && ratio > CLEAR,
            "the caller does not hear the agent before the transfer: {} samples, 1 kHz x{ratio:.1}\n{}",
            heard.len(),
            c.diag()
        );
        c
    }

    /// Everything the peers and the server said, for a failed assertion.
    pub fn diag(&self) -> String {
        let mut text = self.ctrl.transcript();
        text.push_str(&self.agent.output());
        for t in &self.trunks {
            text.push_str(&t.messages());
            text.push_str(&format!("--- trunk {} {}", t.name, t.media.describe()));
        }
        text.push_str(&format!("--- caller {}", self.caller.describe()));
        text.push_str(&format!("--- seat events ---\n{:#?}\n", self.events.all()));
        text.push_str("--- server log ---\n");
        text.push_str(&self.server.log());
        text
    }

    /// Fails, with [`Conversation::diag`], unless the server logs `text`
    /// within `limit`.
    pub fn expect_log(&self, text: &str, limit: Duration) {
        assert!(
            self.server.wait_log(text, limit),
            "{text:?} not logged within {limit:?}\n{}",
            self.diag()
        );
    }

    /// The API path of this call, then `tail` (`/conference`, `/leave`, ..).
    pub fn path(&self, tail: &str) -> String {
        format!("/api/v1/calls/{}{tail}", self.call.call_id)
    }

    /// POSTs a request about the call; expects 200 and returns the JSON.
    pub fn ask(&self, tail: &str, body: &str) -> Value {
        let (status, reply) = self.server.post(&self.path(tail), body);
        assert_eq!(status, 200, "POST {tail} {body}: {reply}\n{}", self.diag());
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"))
    }

    /// POSTs a dialling request (`/transfer`, `/conference`, `/consult`)
    /// for `target`; returns when it was asked, how long the answer took,
    /// and the answer.
    pub fn ask_timed(&self, tail: &str, target: &str) -> (Instant, Duration, Value) {
        let asked = Instant::now();
        let answer = self.ask(tail, &format!(r#"{{"target":"{target}"}}"#));
        (asked, asked.elapsed(), answer)
    }

    /// A dialling request that `target` must answer; returns the answer.
    pub fn bring_in(&self, tail: &str, target: &str) -> Value {
        let (_, _, reply) = self.ask_timed(tail, target);
        assert_eq!(reply["result"], "answered", "{reply}\n{}", self.diag());
        reply
    }

    /// DELETEs a transfer (`/conference`, `/consult`): the agent calls it
    /// off or drops the target; returns the reply.
    pub fn call_off(&self, tail: &str) -> String {
        let (status, reply) = http(self.server.http, "DELETE", &self.path(tail), "");
        assert_eq!(status, 200, "{reply}\n{}", self.diag());
        assert!(reply.contains("\"cancelled\""), "{reply}");
        reply
    }

    /// The desktop's transfer event to `target` in `state` (within 2 s).
    pub fn desktop_transfer(&self, target: &str, state: &str) -> Value {
        self.events
            .transfer(target, state, Duration::from_secs(2))
            .unwrap_or_else(|| panic!("no {state} event for {target}\n{}", self.diag()))
    }

    /// Every party's tone: the caller's, the agent's and the trunks'.
    pub fn tones(&self) -> Vec<f32> {
        let trunks = self.trunks.iter().map(|t| t.tone);
        [CALLER_TONE, AGENT_TONE]
            .into_iter()
            .chain(trunks)
            .collect()
    }

    /// Checks that `who` heard the `want` tones in `pcm`, each far stronger
    /// than any other party's tone (see [`assert_hears`]).
    pub fn hears(&self, who: &str, pcm: &[i16], want: &[f32]) {
        let mut not = self.tones();
        not.retain(|t| !want.contains(t));
        assert_hears(who, pcm, want, &not, || self.diag());
    }

    /// Lets the media settle for half a second, then listens for `secs`;
    /// the window, for checks.
    pub fn listen(&self, secs: f32) -> Window<'_> {
        std::thread::sleep(Duration::from_millis(500));
        let from = Instant::now();
        std::thread::sleep(Duration::from_secs_f32(secs));
        Window {
            conversation: self,
            from,
            to: Instant::now(),
        }
    }

    /// Waits for the agent's softphone to see its call end.
    pub fn agent_hung_up(&self) {
        self.expect_softphone("CALL_CLOSED", "the agent's call did not end");
    }

    /// Fails with `failure` and [`Conversation::diag`] unless the agent's
    /// softphone reports a `kind` event within 5 s.
    pub fn expect_softphone(&self, kind: &str, failure: &str) {
        let event = self.ctrl.event(kind, Duration::from_secs(5));
        assert!(event.is_some(), "{failure}\n{}", self.diag());
    }

    /// What the agent's softphone heard, at 8 kHz, from the start of its
    /// call to its end (read once the call is over).
    pub fn agent_heard(&self) -> Vec<i16> {
        let files = decoded_recordings(&self.rec);
        assert_eq!(files.len(), 1, "{files:?}\n{}", self.diag());
        let (rate, pcm) = read_wav(&files[0]).unwrap();
        to_8khz(rate, &pcm)
    }

    /// Checks that the agent heard the `want` tones and no other party
    /// from `from_end` to `to_end` seconds before their call ended, `when`
    /// saying when ("the agent {when}"); the call must be over.
    pub fn agent_hears_before_end(&self, when: &str, from_end: f32, to_end: f32, want: &[f32]) {
        let who = format!("the agent {when}").trim_end().to_owned();
        let heard = self.agent_heard();
        self.hears(&who, before_end(&heard, from_end, to_end), want);
    }

    /// After a failed attempt asked at `asked` and answered at `failed`:
    /// the caller hears "对方暂时无法接通…" and then the agent's 1 kHz
    /// again. Returns the prompt's correlation and the tone's dominance
    /// after it.
    pub fn back_with_agent(&self, asked: Instant, failed: Instant) -> (f64, f32) {
        let prompt = prompt_pcm("transfer_failed").len();
        // The whole prompt, then 2.5 s of conversation.
        let until = failed + Duration::from_millis((prompt / 8) as u64 + 2_500);
        if let Some(wait) = until.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let heard = self.caller.heard_between(asked, Instant::now());
        let (at, corr) = expect_prompt(&heard, "transfer_failed", 3.0, false, "the caller", || {
            self.diag()
        });
        // From 0.3 s after the prompt's end, 1.5 s.
        let from = (at + prompt / 160 + 15) * 160;
        let to = (from + 12_000).min(heard.len());
        assert!(
            to > from + 8_000,
            "too little audio after the prompt: {} samples after {from}\n{}",
            heard.len(),
            self.diag()
        );
        let ratio = dominance(&heard[from..to], AGENT_TONE, CALLER_TONE);
        assert!(
            ratio > CLEAR,
            "after transfer_failed the caller does not hear the agent: 1 kHz / 600 Hz x{ratio:.2}\n{}",
            self.diag()
        );
        (corr, ratio)
    }

    /// The caller hangs up and the agent's softphone quits; the record,
    /// once written.
    pub fn hang_up(self) -> Value {
        self.call.bye();
        drop(self.caller);
        let mut ctrl = self.ctrl;
        ctrl.send("quit", None);
        let mut agent = self.agent;
        agent.wait_exit(Duration::from_secs(5));
        self.server.call_record(&self.call.call_id)
    }
}
