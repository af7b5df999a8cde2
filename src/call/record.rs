//! The call record (CDR): what the hotline keeps about every call.

use serde::{Serialize, Serializer};

/// One call, from INVITE to its end. Times are Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallRecord {
    /// The caller's SIP Call-ID.
    pub call_id: String,
    /// Caller's number (user part of From), or the whole URI if it has none.
    pub caller: String,
    /// The number dialled (user part of the request URI).
    pub callee: String,
    /// Where the INVITE came from (after rport/received).
    pub remote_addr: String,
    /// `udp` or `tcp`.
    pub transport: String,
    #[serde(serialize_with = "rfc3339")]
    pub started_at: i64,
    #[serde(serialize_with = "rfc3339_opt")]
    pub answered_at: Option<i64>,
    #[serde(serialize_with = "rfc3339")]
    pub ended_at: i64,
    /// Final status sent to the INVITE (200, 404, 487, 488, ...).
    pub status: u16,
    /// Why it ended, e.g. `caller-bye`, `cancelled`, `idle-timeout`.
    pub end_reason: String,
    /// `caller`, `hotline`, or empty when the call was never up.
    pub hangup_by: String,
    /// `PCMU` or `PCMA` once negotiated.
    pub codec: Option<String>,
    /// DTMF digits in the order received, from RTP events and SIP INFO.
    pub digits: String,
    pub rtp: RtpSummary,
    /// The flow the call entered and its content hash (the version).
    pub flow: Option<String>,
    pub flow_hash: Option<String>,
    /// `flow:node` ids in the order the call entered them.
    pub flow_path: Vec<String>,
    /// `queue:<name>:<priority>`, `transfer:<target>` or `hangup`.
    pub final_action: Option<String>,
    pub queue: Option<String>,
    /// Satisfaction rating from a survey node.
    pub survey_score: Option<u8>,
    pub callback_requested: bool,
    /// Path of the caller's voice message, if one was recorded.
    pub recording: Option<String>,
    /// Prompt language at the end of the call.
    pub language: Option<String>,
    /// When the caller joined a queue.
    #[serde(serialize_with = "rfc3339_opt")]
    pub queued_at: Option<i64>,
    /// The seat that took the call, and its leg's SIP Call-ID and codec.
    pub seat: Option<String>,
    pub seat_call_id: Option<String>,
    pub seat_codec: Option<String>,
    /// When the agent answered, and when their leg ended.
    #[serde(serialize_with = "rfc3339_opt")]
    pub connected_at: Option<i64>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub seat_ended_at: Option<i64>,
    /// Stereo WAV of the conversation (caller left; right: what the
    /// caller heard, the agent and any party brought in).
    pub call_recording: Option<String>,
    /// Transfers and three-way calls, in the order asked.
    pub transfers: Vec<crate::call::transfer::Event>,
}

/// RTP figures for the call record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RtpSummary {
    pub packets_in: i64,
    pub packets_out: i64,
    pub octets_in: i64,
    pub octets_out: i64,
    pub lost: i64,
    pub late: i64,
    pub jitter_ms: f64,
    /// From the caller's RTCP reports on what we sent.
    pub peer_lost: Option<i64>,
    pub peer_jitter_ms: Option<f64>,
}

/// Milliseconds since the Unix epoch as RFC 3339 text.
pub fn format_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// RFC 3339 text back to Unix milliseconds.
pub fn parse_ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

pub(crate) fn rfc3339<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_ms(*ms))
}

pub(crate) fn rfc3339_opt<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&format_ms(*ms)),
        None => s.serialize_none(),
    }
}

pub(crate) fn from_rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    parse_ms(&text).ok_or_else(|| serde::de::Error::custom(format!("not RFC 3339: {text:?}")))
}

pub(crate) fn from_rfc3339_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<i64>, D::Error> {
    match <Option<String> as serde::Deserialize>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse_ms(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not RFC 3339: {text:?}"))),
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            parse_ms("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_ms("yesterday"), None);
    }
}
