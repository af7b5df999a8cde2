//! The agent desktop's WebSocket messages (docs/browser-seat.md): what the
//! browser may send, what the server sends, and the checks that turn a
//! text frame into a message or a clear error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest DTMF string one message may carry.
pub const MAX_DIGITS: usize = 32;
/// Longest SDP the browser may send (a browser's answer is about 1-3 kB).
pub const MAX_SDP: usize = 16 * 1024;

/// A message from the browser.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Login { seat: String, password: String },
    Sdp { call: String, sdp: String },
    Answer { call: String },
    Reject { call: String },
    Hangup { call: String },
    Hold { call: String, on: bool },
    Dtmf { call: String, digits: String },
    Ping {},
}

/// Why a frame from the browser was refused (the socket stays open).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadMessage {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("{0}")]
    Shape(String),
    #[error("digits must be 1-{MAX_DIGITS} of 0-9, *, #, A-D")]
    Digits,
    #[error("sdp is longer than {MAX_SDP} bytes")]
    SdpTooLong,
    #[error("binary frames are not part of the protocol")]
    Binary,
}

impl ClientMessage {
    /// Parses and checks one text frame.
    pub fn parse(text: &str) -> Result<ClientMessage, BadMessage> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| BadMessage::NotJson(e.to_string()))?;
        let message: ClientMessage =
            serde_json::from_value(value).map_err(|e| BadMessage::Shape(e.to_string()))?;
        match &message {
            ClientMessage::Dtmf { digits, .. }
                if digits.is_empty()
                    || digits.len() > MAX_DIGITS
                    || !digits
                        .chars()
                        .all(|c| c.is_ascii_digit() || "*#ABCD".contains(c)) =>
            {
                Err(BadMessage::Digits)
            }
            ClientMessage::Sdp { sdp, .. } if sdp.len() > MAX_SDP => Err(BadMessage::SdpTooLong),
            _ => Ok(message),
        }
    }

    /// The call a message is about, if any.
    pub fn call(&self) -> Option<&str> {
        match self {
            ClientMessage::Sdp { call, .. }
            | ClientMessage::Answer { call }
            | ClientMessage::Reject { call }
            | ClientMessage::Hangup { call }
            | ClientMessage::Hold { call, .. }
            | ClientMessage::Dtmf { call, .. } => Some(call),
            ClientMessage::Login { .. } | ClientMessage::Ping {} => None,
        }
    }
}

/// Why a call ended, as the desktop shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The far side (caller, or the call actor) hung up.
    CallerHangup,
    AgentHangup,
    /// Rung elsewhere, or the caller left while it rang.
    Cancelled,
    /// The media or the signalling failed.
    Failed,
}

/// Error codes of [`ServerMessage::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    LoginFailed,
    LockedOut,
    Disabled,
    Replaced,
    NotLoggedIn,
    BadMessage,
    NoCall,
}

/// A message to the browser.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        seat: String,
        name: String,
        role: &'static str,
        token: String,
        masked: bool,
    },
    Ring {
        call: String,
        from: String,
        caller_call_id: String,
        sdp: String,
    },
    Connected {
        call: String,
    },
    Held {
        call: String,
        on: bool,
    },
    Ended {
        call: String,
        reason: EndReason,
    },
    Event {
        event: Value,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Pong {},
}

impl ServerMessage {
    /// The frame's text.
    pub fn text(&self) -> String {
        serde_json::to_string(self).expect("server messages serialize")
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_with_their_fields() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"login","seat":"2001","password":"x"}"#),
            Ok(ClientMessage::Login {
                seat: "2001".into(),
                password: "x".into()
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"hold","call":"c1","on":true}"#),
            Ok(ClientMessage::Hold {
                call: "c1".into(),
                on: true
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping {})
        );
        let m = ClientMessage::parse(r#"{"type":"dtmf","call":"c","digits":"12#"}"#).unwrap();
        assert_eq!(m.call(), Some("c"));
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        assert!(matches!(
            ClientMessage::parse("{not json"),
            Err(BadMessage::NotJson(_))
        ));
        let shape = ClientMessage::parse(r#"{"type":"answer"}"#).unwrap_err();
        assert!(shape.to_string().contains("call"), "{shape}");
        let unknown = ClientMessage::parse(r#"{"type":"dance"}"#).unwrap_err();
        assert!(unknown.to_string().contains("dance"), "{unknown}");
        let extra =
            ClientMessage::parse(r#"{"type":"answer","call":"c","colour":"red"}"#).unwrap_err();
        assert!(extra.to_string().contains("colour"), "{extra}");
        assert_eq!(
            ClientMessage::parse(r#"{"type":"dtmf","call":"c","digits":"12x"}"#),
            Err(BadMessage::Digits)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"dtmf","call":"c","digits":""}"#),
            Err(BadMessage::Digits)
        );
        let long = format!(
            r#"{{"type":"sdp","call":"c","sdp":"{}"}}"#,
            "v".repeat(MAX_SDP + 1)
        );
        assert_eq!(ClientMessage::parse(&long), Err(BadMessage::SdpTooLong));
    }

    #[test]
    fn server_messages_have_their_type_tag() {
        let m = ServerMessage::Ended {
            call: "c".into(),
            reason: EndReason::CallerHangup,
        };
        assert_eq!(
            m.text(),
            r#"{"type":"ended","call":"c","reason":"caller_hangup"}"#
        );
        let e = ServerMessage::error(ErrorCode::NotLoggedIn, "log in first");
        assert!(e.text().contains(r#""code":"not_logged_in""#));
        assert_eq!(ServerMessage::Pong {}.text(), r#"{"type":"pong"}"#);
    }
}
