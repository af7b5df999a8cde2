//! Property-based fuzzing of the parsers the server runs on untrusted bytes:
//! the exact SIP entry point its UDP transport uses
//! (`rsipstack::sip::SipMessage::try_from(&[u8])`), then our readers of the
//! parsed request, the SDP offer/answer, RTP, RTCP and DTMF parsers. None may
//! panic, whatever arrives.

use hotline::media::{dtmf, rtcp, rtp};
use hotline::sip::{headers, sdp};
use proptest::prelude::*;
use rsipstack::sip::SipMessage;

const INVITE: &str = "INVITE sip:12345@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:12345@127.0.0.1>\r\n\
From: \"Caller\" <sip:13800138000@127.0.0.1>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@127.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:13800138000@127.0.0.1:5070>\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Supported: timer\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 129\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// Everything the listener and call actor do with a request's bytes.
fn exercise(bytes: &[u8]) {
    if let Ok(SipMessage::Request(req)) = SipMessage::try_from(bytes) {
        let _ = headers::caller(&req);
        let _ = headers::callee(&req);
        let _ = headers::call_id(&req);
        let _ = headers::in_dialog(&req);
        let _ = headers::source(&req, None);
        let _ = headers::content_type(&req);
        let _ = headers::lists_token(&req, "Supported", "timer");
        if let Ok(offer) = sdp::parse(&req.body) {
            let _ = sdp::answer(&offer);
            let _ = sdp::accept_answer(&offer);
        }
        let _ = dtmf::parse_info_body(&headers::content_type(&req), &req.body);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&bytes);
        let _ = sdp::parse(&bytes);
        let _ = rtp::parse(&bytes);
        let _ = rtcp::parse_compound(&bytes);
        let _ = dtmf::TelephoneEvent::parse(&bytes);
    }

    #[test]
    fn mutated_invites_never_panic(
        edits in proptest::collection::vec((0usize..INVITE.len(), any::<u8>()), 1..12),
        cut in 0usize..=INVITE.len(),
    ) {
        let mut bytes = INVITE.as_bytes().to_vec();
        for (at, byte) in edits {
            bytes[at] = byte;
        }
        exercise(&bytes);
        exercise(&bytes[..cut]);
    }

    #[test]
    fn text_shaped_sdp_never_panics(lines in proptest::collection::vec("[a-z]=[ -~]{0,40}", 0..20)) {
        let body = lines.join("\r\n");
        if let Ok(offer) = sdp::parse(body.as_bytes()) {
            let _ = sdp::answer(&offer);
        }
    }
}

#[test]
fn the_seed_invite_parses() {
    let SipMessage::Request(req) = SipMessage::try_from(INVITE.as_bytes()).unwrap() else {
        panic!("not a request")
    };
    assert_eq!(headers::callee(&req), "12345");
    assert!(sdp::answer(&sdp::parse(&req.body).unwrap()).is_ok());
}
