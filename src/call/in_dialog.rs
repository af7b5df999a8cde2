//! What the caller's leg and an agent's leg answer alike inside a dialog:
//! a re-INVITE or UPDATE offer (the stream it asks for, the 488 when it
//! cannot be met, the SDP in the 200), and the methods refused with 405.

use crate::media::engine::StreamConfig;
use crate::sip::headers;
use crate::sip::sdp::{self, LocalAudio, Negotiated, SdpError};
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::{Header, Method, Request, StatusCode};

/// The media stream a negotiation asks for.
pub fn stream_config(n: &Negotiated) -> StreamConfig {
    StreamConfig {
        law: n.law,
        payload_type: n.payload_type,
        dtmf_pt: n.dtmf_pt,
        remote_rtp: n.remote_rtp,
        remote_rtcp: n.remote_rtcp,
        // An inactive or sendonly peer is answered recvonly/inactive, so
        // this is false exactly when the peer does not want our audio.
        send: n.local_direction.sends(),
        expect_rtp: n.remote_direction.sends(),
    }
}

/// Whether a re-INVITE or UPDATE carries an SDP offer.
pub fn has_offer(req: &Request) -> bool {
    !req.body.iter().all(u8::is_ascii_whitespace)
}

/// The offer in a re-INVITE or UPDATE, answered; on failure the request
/// has been refused with 488 and a Warning saying why.
pub async fn accept_offer(req: &Request, handle: &TransactionHandle) -> Option<Negotiated> {
    match sdp::parse(&req.body).and_then(|o| sdp::answer(&o)) {
        Ok(n) => Some(n),
        Err(e) => {
            refuse_offer(handle, &e).await;
            None
        }
    }
}

async fn refuse_offer(handle: &TransactionHandle, e: &SdpError) {
    let warning = headers::other("Warning", format!("305 hotline \"{e}\""));
    handle
        .respond(StatusCode::NotAcceptableHere, Some(vec![warning]), None)
        .await
        .ok();
}

/// The 200 to a re-INVITE or UPDATE: a re-INVITE always gets our current
/// SDP, an UPDATE only when it carried an offer (RFC 3311).
pub async fn answer_modify(
    req: &Request,
    handle: &TransactionHandle,
    mut extra: Vec<Header>,
    local: &LocalAudio,
    negotiated: Option<&Negotiated>,
) {
    let body = match (negotiated, has_offer(req) || req.method == Method::Invite) {
        (Some(n), true) => {
            extra.push(Header::ContentType("application/sdp".into()));
            Some(sdp::answer_text(local, n).into_bytes())
        }
        _ => None,
    };
    handle.respond(StatusCode::OK, Some(extra), body).await.ok();
}

/// REFER, NOTIFY, MESSAGE, PUBLISH inside a call: 405 with what we allow.
pub async fn refuse_method(handle: &TransactionHandle) {
    let allow = vec![Header::Allow(headers::ALLOW.into())];
    handle
        .respond(StatusCode::MethodNotAllowed, Some(allow), None)
        .await
        .ok();
}
