//! SDP offer/answer (RFC 3264) for G.711 voice with RFC 4733 telephone-events.
//!
//! Sans-IO: bytes in, a [`Negotiated`] media description out, and the answer or
//! offer text back. Parsing is done by the `sdp` crate; this module holds only
//! the policy: the caller's preferred common codec wins, telephone-event is
//! kept when offered, directions mirror the offer (hold = we stop sending).

use crate::media::g711::Law;
use sdp::description::common::{Address, Attribute, ConnectionInformation};
use sdp::description::media::{MediaDescription, MediaName, RangedPort};
use sdp::description::session::{Origin, SessionDescription, TimeDescription, Timing};
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

/// Payload type we offer for telephone-event when we make the offer.
pub const DEFAULT_DTMF_PT: u8 = 101;

/// Why an SDP body could not be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SdpError {
    #[error("malformed SDP: {0}")]
    Malformed(String),
    #[error("no audio stream in SDP")]
    NoAudio,
    #[error("no common codec (we support PCMU and PCMA at 8000 Hz)")]
    NoCommonCodec,
    #[error("no usable connection address in SDP")]
    NoAddress,
}

/// Media direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction an answerer takes for this offered direction.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether the side holding this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side holding this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// The remote side's audio description, as parsed from its SDP.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteAudio {
    /// Where to send RTP; `None` for a held stream (`c=0.0.0.0`).
    pub rtp: Option<SocketAddr>,
    /// Where to send RTCP (`a=rtcp` or RTP port + 1).
    pub rtcp: Option<SocketAddr>,
    /// Codecs in the remote's order of preference: (payload type, law).
    pub codecs: Vec<(u8, Law)>,
    /// Payload type of telephone-event/8000, if offered.
    pub dtmf_pt: Option<u8>,
    /// The remote's direction.
    pub direction: Direction,
}

/// The outcome of offer/answer for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    pub law: Law,
    pub payload_type: u8,
    pub dtmf_pt: Option<u8>,
    pub remote_rtp: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    /// Our direction (what we write in our SDP).
    pub local_direction: Direction,
    /// The remote's direction.
    pub remote_direction: Direction,
}

/// Our side of the media: where we listen and the SDP origin counters.
#[derive(Debug, Clone)]
pub struct LocalAudio {
    pub ip: IpAddr,
    pub port: u16,
    pub session_id: u64,
    /// Incremented whenever our SDP changes (RFC 3264 §8).
    pub version: u64,
}

/// Parses a remote SDP body and extracts its first audio stream.
pub fn parse(body: &[u8]) -> Result<RemoteAudio, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
    // The sdp crate requires CRLF-or-LF lines; tolerate a missing final newline.
    let mut owned;
    let text = if text.ends_with('\n') {
        text
    } else {
        owned = text.to_owned();
        owned.push_str("\r\n");
        owned.as_str()
    };
    let session = SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
        .map_err(|e| SdpError::Malformed(e.to_string()))?;
    let media = session
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media.eq_ignore_ascii_case("audio"))
        .ok_or(SdpError::NoAudio)?;

    let conn = media
        .connection_information
        .as_ref()
        .or(session.connection_information.as_ref());
    let ip = conn
        .and_then(|c| c.address.as_ref())
        .map(|a| a.address.as_str())
        .ok_or(SdpError::NoAddress)?;
    // Strip a multicast TTL suffix ("224.2.1.1/127") if any.
    let ip: IpAddr = ip
        .split('/')
        .next()
        .unwrap_or(ip)
        .parse()
        .map_err(|_| SdpError::NoAddress)?;
    let port = u16::try_from(media.media_name.port.value).map_err(|_| SdpError::NoAddress)?;

    let direction = direction_of(&media.attributes)
        .or_else(|| direction_of(&session.attributes))
        .unwrap_or(Direction::SendRecv);
    // RFC 3264 §8.4 legacy hold: c=0.0.0.0 means "do not send to me".
    let rtp = (!ip.is_unspecified() && port != 0).then(|| SocketAddr::new(ip, port));
    let rtcp = rtp.map(|rtp| {
        let rtcp_port = media
            .attribute("rtcp")
            .flatten()
            .and_then(|v| v.split_whitespace().next()?.parse::<u16>().ok())
            .unwrap_or(rtp.port().wrapping_add(1));
        SocketAddr::new(rtp.ip(), rtcp_port)
    });

    let mut codecs = Vec::new();
    let mut dtmf_pt = None;
    for format in &media.media_name.formats {
        let Ok(pt) = format.parse::<u8>() else {
            continue;
        };
        match rtpmap(media, pt) {
            Some((name, rate)) if rate == 8000 && name.eq_ignore_ascii_case("PCMU") => {
                codecs.push((pt, Law::Ulaw))
            }
            Some((name, rate)) if rate == 8000 && name.eq_ignore_ascii_case("PCMA") => {
                codecs.push((pt, Law::Alaw))
            }
            Some((name, rate)) if rate == 8000 && name.eq_ignore_ascii_case("telephone-event") => {
                dtmf_pt.get_or_insert(pt);
            }
            Some(_) => {}
            // Static payload types need no rtpmap (RFC 3551).
            None if pt == 0 => codecs.push((0, Law::Ulaw)),
            None if pt == 8 => codecs.push((8, Law::Alaw)),
            None => {}
        }
    }
    Ok(RemoteAudio {
        rtp,
        rtcp,
        codecs,
        dtmf_pt,
        direction: if rtp.is_none() && direction.sends() {
            // Held with c=0.0.0.0: the remote will not receive.
            Direction::SendOnly
        } else {
            direction
        },
    })
}

fn rtpmap(media: &MediaDescription, pt: u8) -> Option<(String, u32)> {
    media.attributes.iter().find_map(|a| {
        if !a.key.eq_ignore_ascii_case("rtpmap") {
            return None;
        }
        let value = a.value.as_deref()?;
        let (num, rest) = value.split_once(char::is_whitespace)?;
        if num.trim().parse::<u8>().ok()? != pt {
            return None;
        }
        let mut parts = rest.trim().split('/');
        let name = parts.next()?.to_string();
        let rate = parts.next()?.trim().parse().ok()?;
        Some((name, rate))
    })
}

fn direction_of(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| match a.key.as_str() {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    })
}

/// Answers a remote offer: the first offered codec we support wins.
pub fn answer(offer: &RemoteAudio) -> Result<Negotiated, SdpError> {
    let &(payload_type, law) = offer.codecs.first().ok_or(SdpError::NoCommonCodec)?;
    Ok(Negotiated {
        law,
        payload_type,
        dtmf_pt: offer.dtmf_pt,
        remote_rtp: offer.rtp,
        remote_rtcp: offer.rtcp,
        local_direction: offer.direction.answer(),
        remote_direction: offer.direction,
    })
}

/// Completes a late offer: `answer` is the remote's answer to [`offer_text`].
/// The answerer must pick from what we offered, so anything else is refused.
pub fn accept_answer(answer: &RemoteAudio) -> Result<Negotiated, SdpError> {
    let &(payload_type, law) = answer
        .codecs
        .iter()
        .find(|(pt, _)| *pt == 0 || *pt == 8)
        .ok_or(SdpError::NoCommonCodec)?;
    let dtmf_pt = answer.dtmf_pt.filter(|pt| *pt == DEFAULT_DTMF_PT);
    Ok(Negotiated {
        law,
        payload_type,
        dtmf_pt,
        remote_rtp: answer.rtp,
        remote_rtcp: answer.rtcp,
        local_direction: answer.direction.answer(),
        remote_direction: answer.direction,
    })
}

/// Our answer SDP for a negotiated stream.
pub fn answer_text(local: &LocalAudio, n: &Negotiated) -> String {
    let mut formats = vec![(n.payload_type, n.law.name())];
    if let Some(pt) = n.dtmf_pt {
        formats.push((pt, "telephone-event"));
    }
    describe(local, &formats, n.local_direction)
}

/// Our offer SDP when the INVITE came without one (late offer): PCMU, PCMA
/// and telephone-event.
pub fn offer_text(local: &LocalAudio) -> String {
    describe(
        local,
        &[
            (0, Law::Ulaw.name()),
            (8, Law::Alaw.name()),
            (DEFAULT_DTMF_PT, "telephone-event"),
        ],
        Direction::SendRecv,
    )
}

fn describe(local: &LocalAudio, formats: &[(u8, &str)], direction: Direction) -> String {
    let ip_kind = if local.ip.is_ipv4() { "IP4" } else { "IP6" };
    let connection = ConnectionInformation {
        network_type: "IN".into(),
        address_type: ip_kind.into(),
        address: Some(Address {
            address: local.ip.to_string(),
            ttl: None,
            range: None,
        }),
    };
    let mut attributes = Vec::new();
    for (pt, name) in formats {
        attributes.push(Attribute::new(
            "rtpmap".into(),
            Some(format!("{pt} {name}/8000")),
        ));
        if *name == "telephone-event" {
            attributes.push(Attribute::new("fmtp".into(), Some(format!("{pt} 0-16"))));
        }
    }
    attributes.push(Attribute::new("ptime".into(), Some("20".into())));
    attributes.push(Attribute::new(direction.attribute().into(), None));
    let media = MediaDescription {
        media_name: MediaName {
            media: "audio".into(),
            port: RangedPort {
                value: local.port as isize,
                range: None,
            },
            protos: vec!["RTP".into(), "AVP".into()],
            formats: formats.iter().map(|(pt, _)| pt.to_string()).collect(),
        },
        media_title: None,
        connection_information: None,
        bandwidth: vec![],
        encryption_key: None,
        attributes,
    };
    let session = SessionDescription {
        version: 0,
        origin: Origin {
            username: "hotline".into(),
            session_id: local.session_id,
            session_version: local.version,
            network_type: "IN".into(),
            address_type: ip_kind.into(),
            unicast_address: local.ip.to_string(),
        },
        session_name: "hotline".into(),
        connection_information: Some(connection),
        time_descriptions: vec![TimeDescription {
            timing: Timing {
                start_time: 0,
                stop_time: 0,
            },
            repeat_times: vec![],
        }],
        media_descriptions: vec![media],
        ..Default::default()
    };
    session.marshal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(formats: &str, extra: &str) -> String {
        format!(
            "v=0\r\no=user 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP {formats}\r\n{extra}"
        )
    }

    #[test]
    fn callers_preferred_common_codec_wins() {
        let o =
            parse(offer("8 0 101", "a=rtpmap:101 telephone-event/8000\r\n").as_bytes()).unwrap();
        let n = answer(&o).unwrap();
        assert_eq!(n.law, Law::Alaw);
        assert_eq!(n.payload_type, 8);
        assert_eq!(n.dtmf_pt, Some(101));
        assert_eq!(n.remote_rtp, Some("192.0.2.10:40000".parse().unwrap()));
        assert_eq!(n.remote_rtcp, Some("192.0.2.10:40001".parse().unwrap()));
        assert_eq!(n.local_direction, Direction::SendRecv);
    }

    #[test]
    fn unsupported_codecs_are_skipped() {
        let o = parse(
            offer(
                "18 9 0",
                "a=rtpmap:18 G729/8000\r\na=rtpmap:9 G722/8000\r\n",
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(answer(&o).unwrap().law, Law::Ulaw);
    }

    #[test]
    fn dynamic_pcmu_by_name() {
        let o = parse(offer("96", "a=rtpmap:96 pcmu/8000\r\n").as_bytes()).unwrap();
        let n = answer(&o).unwrap();
        assert_eq!((n.payload_type, n.law), (96, Law::Ulaw));
    }

    #[test]
    fn nothing_common_is_an_error() {
        let o = parse(offer("18", "a=rtpmap:18 G729/8000\r\n").as_bytes()).unwrap();
        assert_eq!(answer(&o), Err(SdpError::NoCommonCodec));
        let wideband = parse(offer("0", "a=rtpmap:0 PCMU/16000\r\n").as_bytes()).unwrap();
        assert_eq!(answer(&wideband), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn hold_directions_mirror() {
        let o = parse(offer("0", "a=sendonly\r\n").as_bytes()).unwrap();
        let n = answer(&o).unwrap();
        assert_eq!(n.local_direction, Direction::RecvOnly);
        assert!(!n.local_direction.sends());
        let o = parse(offer("0", "a=inactive\r\n").as_bytes()).unwrap();
        assert_eq!(answer(&o).unwrap().local_direction, Direction::Inactive);
    }

    #[test]
    fn legacy_hold_address() {
        let text = offer("0", "").replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0");
        let o = parse(text.as_bytes()).unwrap();
        assert_eq!(o.rtp, None);
        assert!(!answer(&o).unwrap().local_direction.sends());
    }

    #[test]
    fn rtcp_attribute_is_used() {
        let o = parse(offer("0", "a=rtcp:40005\r\n").as_bytes()).unwrap();
        assert_eq!(o.rtcp, Some("192.0.2.10:40005".parse().unwrap()));
    }

    #[test]
    fn garbage_is_malformed_not_panic() {
        for body in [
            &b"hello"[..],
            b"",
            b"v=0\r\nm=audio x RTP/AVP 0\r\n",
            &[0xff, 0xfe],
        ] {
            assert!(parse(body).is_err());
        }
        let no_audio =
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n";
        assert_eq!(parse(no_audio.as_bytes()), Err(SdpError::NoAudio));
    }

    #[test]
    fn answer_round_trips() {
        let o = parse(offer("0 101", "a=rtpmap:101 telephone-event/8000\r\n").as_bytes()).unwrap();
        let n = answer(&o).unwrap();
        let local = LocalAudio {
            ip: "127.0.0.1".parse().unwrap(),
            port: 20000,
            session_id: 7,
            version: 1,
        };
        let text = answer_text(&local, &n);
        assert!(text.contains("m=audio 20000 RTP/AVP 0 101"), "{text}");
        assert!(text.contains("a=rtpmap:101 telephone-event/8000"), "{text}");
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back.codecs, vec![(0, Law::Ulaw)]);
        assert_eq!(back.rtp, Some("127.0.0.1:20000".parse().unwrap()));
    }

    #[test]
    fn late_offer_answer_must_pick_ours() {
        let local = LocalAudio {
            ip: "127.0.0.1".parse().unwrap(),
            port: 20000,
            session_id: 7,
            version: 1,
        };
        let ours = parse(offer_text(&local).as_bytes()).unwrap();
        assert_eq!(ours.codecs.len(), 2);
        let a = parse(offer("8 101", "a=rtpmap:101 telephone-event/8000\r\n").as_bytes()).unwrap();
        let n = accept_answer(&a).unwrap();
        assert_eq!((n.law, n.dtmf_pt), (Law::Alaw, Some(101)));
        let bad = parse(offer("18", "a=rtpmap:18 G729/8000\r\n").as_bytes()).unwrap();
        assert_eq!(accept_answer(&bad), Err(SdpError::NoCommonCodec));
    }
}
