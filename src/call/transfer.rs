//! Transfers and three-way calls: what an agent can ask for, how an attempt
//! ends, and the event each attempt leaves on the call record.
//!
//! The caller's actor dials the target (a trunk such as 110, a number
//! through the outside-line trunk, or another seat) as a leg beside the
//! caller's stream and changes who hears whom ([`super::mixplan`]). Whatever
//! happens to the target, the caller stays on the line: a failed attempt
//! brings them back to the agent.

use serde::Serialize;

/// What the agent asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The caller goes to the target once it answers; the agent is free.
    Blind,
    /// The agent talks to the target first (the caller holds), then
    /// completes or cancels.
    Attended,
    /// Caller, agent and target all talk.
    Conference,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Blind => "blind",
            Kind::Attended => "attended",
            Kind::Conference => "conference",
        }
    }
}

/// How an attempt to reach the target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Answered,
    Busy,
    NoAnswer,
    Declined,
    /// Not found, forbidden, or another refusal of the request itself.
    Rejected,
    /// No answer from the network: the trunk or phone is unreachable.
    Unreachable,
    /// The trunk's health checks say it is down; nothing was sent.
    TrunkDown,
    /// The agent (or the caller hanging up) called it off while ringing.
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no-answer",
            Outcome::Declined => "declined",
            Outcome::Rejected => "rejected",
            Outcome::Unreachable => "unreachable",
            Outcome::TrunkDown => "trunk-down",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// Reads a failed INVITE's final status. A 408 is what the stack
    /// reports when nothing answered at all, so it means unreachable; our
    /// own ring timeout reports [`Outcome::NoAnswer`] directly.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Answered,
            486 | 600 => Outcome::Busy,
            480 | 487 => Outcome::NoAnswer,
            603 => Outcome::Declined,
            408 | 500 | 502..=504 => Outcome::Unreachable,
            _ => Outcome::Rejected,
        }
    }

    /// The sipfrag status line reported to a softphone that sent REFER:
    /// the target's own final status when there was one.
    pub fn sipfrag(self, status: Option<u16>) -> String {
        let code = match (self, status) {
            (Outcome::Answered, _) => 200,
            (_, Some(s)) if s >= 300 => s,
            (Outcome::Busy, _) => 486,
            (Outcome::NoAnswer, _) => 480,
            (Outcome::Declined, _) => 603,
            (Outcome::Cancelled, _) => 487,
            (Outcome::TrunkDown | Outcome::Unreachable, _) => 503,
            (Outcome::Rejected, _) => 403,
        };
        let status = rsipstack::sip::StatusCode::from(code);
        format!("SIP/2.0 {code} {}\r\n", status.text())
    }
}

/// One transfer or three-way call on the call record. Times are Unix ms,
/// written as RFC 3339 like the rest of the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Event {
    /// `blind`, `attended` or `conference`.
    pub kind: String,
    /// The seat that asked.
    pub by: String,
    /// What was dialled: a trunk name, a number or a seat.
    pub target: String,
    /// `api`, `refer` (from the softphone), `ivr` (a transfer node) or
    /// `phone` (a consult call from the softphone not completed by REFER).
    pub via: String,
    #[serde(
        serialize_with = "crate::call::record::rfc3339",
        deserialize_with = "crate::call::record::from_rfc3339"
    )]
    pub asked_at: i64,
    #[serde(
        serialize_with = "crate::call::record::rfc3339_opt",
        deserialize_with = "crate::call::record::from_rfc3339_opt"
    )]
    pub answered_at: Option<i64>,
    #[serde(
        serialize_with = "crate::call::record::rfc3339_opt",
        deserialize_with = "crate::call::record::from_rfc3339_opt"
    )]
    pub ended_at: Option<i64>,
    /// See [`Outcome`]; empty while still ringing.
    pub result: String,
    /// The final SIP status of a failed attempt.
    pub status: Option<u16>,
    /// How the target's part ended: `target-left`, `caller-left`,
    /// `agent-cancelled` or `failed`.
    pub ending: Option<String>,
    /// Milliseconds from answer to the end of the target's leg.
    pub duration_ms: Option<i64>,
}

impl Event {
    /// Closes the event when the target's leg ends.
    pub fn end(&mut self, at: i64, ending: &str) {
        if self.ended_at.is_some() {
            return;
        }
        self.ended_at = Some(at);
        self.ending = Some(ending.to_owned());
        self.duration_ms = self.answered_at.map(|a| at - a);
    }
}

/// What a REFER from the agent's softphone asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferTo {
    /// Send the caller to this target (blind transfer).
    Blind(String),
    /// Join the caller to the target the agent is consulting on another
    /// line, which `replaces` names (attended transfer, RFC 3891).
    Attended { target: String, replaces: Replaces },
}

/// An RFC 3891 Replaces value: the dialog to take over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
}

/// Reads `call-id;to-tag=...;from-tag=...`; both tags are required.
pub fn parse_replaces(value: &str) -> Option<Replaces> {
    let mut parts = value.split(';').map(str::trim);
    let call_id = parts.next().filter(|c| !c.is_empty())?.to_owned();
    let (mut to_tag, mut from_tag) = (None, None);
    for part in parts {
        match part.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("to-tag") => to_tag = Some(v.to_owned()),
            Some((k, v)) if k.eq_ignore_ascii_case("from-tag") => from_tag = Some(v.to_owned()),
            // early-only and extensions do not change which dialog.
            _ => {}
        }
    }
    Some(Replaces {
        call_id,
        to_tag: to_tag.filter(|t| !t.is_empty())?,
        from_tag: from_tag.filter(|t| !t.is_empty())?,
    })
}

/// Reads a REFER's Refer-To: the target is the user part of its URI
/// (`<sip:119@hotline>` → `119`); a `Replaces` in the URI's headers makes
/// it an attended transfer.
pub fn refer_target(refer_to: &str) -> Result<ReferTo, ReferError> {
    let parsed = rsipstack::sip::event_packages::parse_refer_to(refer_to);
    let target = refer_user(&parsed.uri)?;
    match parsed.replaces {
        None => Ok(ReferTo::Blind(target)),
        Some(r) => {
            let replaces = parse_replaces(&r).ok_or(ReferError::BadReplaces)?;
            Ok(ReferTo::Attended { target, replaces })
        }
    }
}

fn refer_user(uri: &str) -> Result<String, ReferError> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .or_else(|| uri.strip_prefix("tel:"))
        .ok_or(ReferError::Malformed)?;
    let user = match rest.split_once('@') {
        Some((user, _)) => user,
        None if uri.starts_with("tel:") => rest,
        None => return Err(ReferError::Malformed),
    };
    let user = user.split(';').next().unwrap_or_default();
    if valid_target(user) {
        Ok(user.to_owned())
    } else {
        Err(ReferError::Malformed)
    }
}

/// Why a REFER cannot be acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReferError {
    #[error("Refer-To names no target")]
    Malformed,
    #[error("Replaces needs a Call-ID, a to-tag and a from-tag")]
    BadReplaces,
}

/// Whether a target is something agents may dial: a trunk name, a seat id,
/// or a number (letters, digits and `+` only, at most 32).
pub fn valid_target(target: &str) -> bool {
    !target.is_empty()
        && target.len() <= 32
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_statuses_say_why() {
        assert_eq!(Outcome::of_status(486), Outcome::Busy);
        assert_eq!(Outcome::of_status(600), Outcome::Busy);
        assert_eq!(Outcome::of_status(480), Outcome::NoAnswer);
        assert_eq!(Outcome::of_status(603), Outcome::Declined);
        assert_eq!(Outcome::of_status(408), Outcome::Unreachable);
        assert_eq!(Outcome::of_status(503), Outcome::Unreachable);
        assert_eq!(Outcome::of_status(404), Outcome::Rejected);
        assert_eq!(Outcome::of_status(200), Outcome::Answered);
    }

    #[test]
    fn sipfrag_reports_the_status_line() {
        assert_eq!(Outcome::Answered.sipfrag(None), "SIP/2.0 200 OK\r\n");
        assert_eq!(
            Outcome::Busy.sipfrag(Some(486)),
            "SIP/2.0 486 Busy Here\r\n"
        );
        assert_eq!(
            Outcome::TrunkDown.sipfrag(None),
            "SIP/2.0 503 Service Unavailable\r\n"
        );
        assert_eq!(
            Outcome::NoAnswer.sipfrag(None),
            "SIP/2.0 480 Temporarily Unavailable\r\n"
        );
    }

    #[test]
    fn refer_to_names_the_target() {
        let blind = |t: &str| Ok(ReferTo::Blind(t.into()));
        assert_eq!(refer_target("<sip:119@127.0.0.1:5060>"), blind("119"));
        assert_eq!(refer_target("sip:water@hotline"), blind("water"));
        assert_eq!(
            refer_target("\"Fire\" <sip:119@10.0.0.1;transport=udp>"),
            blind("119")
        );
        assert_eq!(
            refer_target("<tel:+8613800138000>"),
            blind("+8613800138000")
        );
        assert_eq!(refer_target("<sip:127.0.0.1>"), Err(ReferError::Malformed));
        assert_eq!(refer_target("<http://x>"), Err(ReferError::Malformed));
        assert_eq!(
            refer_target("<sip:119@h?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"),
            Ok(ReferTo::Attended {
                target: "119".into(),
                replaces: Replaces {
                    call_id: "abc@h".into(),
                    to_tag: "1".into(),
                    from_tag: "2".into(),
                }
            })
        );
        assert_eq!(
            refer_target("<sip:119@h?Replaces=abc%40h%3Bto-tag%3D1>"),
            Err(ReferError::BadReplaces)
        );
        assert_eq!(refer_target("<sip:a b@h>"), Err(ReferError::Malformed));
    }

    #[test]
    fn an_event_ends_once_with_its_duration() {
        let mut e = Event {
            answered_at: Some(1_000),
            ..Event::default()
        };
        e.end(4_000, "target-left");
        e.end(9_000, "caller-left");
        assert_eq!(e.duration_ms, Some(3_000));
        assert_eq!(e.ending.as_deref(), Some("target-left"));
    }

    #[test]
    fn an_event_reads_back_as_written() {
        let e = Event {
            kind: "conference".into(),
            target: "119".into(),
            asked_at: 1_700_000_000_123,
            answered_at: Some(1_700_000_001_000),
            ..Event::default()
        };
        let text = serde_json::to_string(&e).unwrap();
        assert!(
            text.contains("\"asked_at\":\"2023-11-14T22:13:20.123Z\""),
            "{text}"
        );
        assert!(text.contains("\"ended_at\":null"), "{text}");
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
    }

    #[test]
    fn targets_are_names_or_numbers() {
        assert!(valid_target("119"));
        assert!(valid_target("water"));
        assert!(valid_target("+8613800138000"));
        assert!(!valid_target(""));
        assert!(!valid_target("sip:119@x"));
        assert!(!valid_target(&"1".repeat(33)));
    }
}
