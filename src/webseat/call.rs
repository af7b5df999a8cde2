//! One INVITE to a browser seat: rings the browser with a WebRTC offer,
//! answers the call actor when the agent answers, and turns the agent's
//! hold, keys and hang-up into SIP; the call actor's BYE or CANCEL ends it.

use super::bridge::{Bridge, SipSide};
use super::peer;
use super::protocol::{ClientMessage, EndReason, ErrorCode, ServerMessage};
use super::{CallInput, Gateway, SessionLink};
use crate::server::Shared;
use crate::sip::sdp::{self, Direction, LocalAudio, Negotiated};
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::sync::Arc;
use tokio::sync::mpsc;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;

/// Runs the call until either side ends it.
pub async fn run(
    _shared: Arc<Shared>,
    gateway: Arc<Gateway>,
    session: SessionLink,
    seat: String,
    mut tx: Transaction,
) {
    let req = tx.original.clone();
    let offer = match sdp::parse(&req.body).and_then(|o| sdp::answer(&o)) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(%seat, error = %e, "INVITE to a browser seat without a usable offer");
            tx.reply(StatusCode::NotAcceptableHere).await.ok();
            return;
        }
    };
    let call = format!("{:016x}", rand::random::<u64>());
    let (input_tx, inputs) = mpsc::unbounded_channel();
    session
        .calls
        .lock()
        .expect("seat calls")
        .insert(call.clone(), input_tx);
    let bridge = match Bridge::bind(
        gateway.sip_addr.ip(),
        SipSide {
            law: offer.law,
            dtmf_pt: offer.dtmf_pt,
            remote: offer.remote_rtp,
        },
        gateway.config.opus_bitrate,
    )
    .await
    {
        Ok(b) => Arc::new(b),
        Err(e) => {
            tracing::error!(error = %e, "no RTP port for a browser call");
            tx.reply(StatusCode::ServiceUnavailable).await.ok();
            session.calls.lock().expect("seat calls").remove(&call);
            return;
        }
    };
    let (state_tx, states) = gateway.dialogs.new_dialog_state_channel();
    let contact = rsipstack::sip::Uri::try_from(gateway.contact(&seat).as_str()).ok();
    let dialog = match gateway
        .dialogs
        .get_or_create_server_invite(&tx, state_tx, None, contact)
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot create a dialog for a browser call");
            tx.reply(StatusCode::ServerInternalError).await.ok();
            session.calls.lock().expect("seat calls").remove(&call);
            return;
        }
    };
    let mut driver = dialog.clone();
    tokio::spawn(async move {
        if let Err(e) = driver.handle(&mut tx).await {
            tracing::debug!(error = %e, "browser INVITE transaction ended with error");
        }
    });
    let local = LocalAudio {
        ip: gateway.sip_addr.ip(),
        port: bridge.local_port(),
        session_id: rand::random::<u32>().into(),
        version: 1,
    };
    let mut leg = Leg {
        call: call.clone(),
        seat,
        session: session.clone(),
        dialog,
        bridge,
        pc: None,
        local,
        negotiated: offer,
        answered: false,
        confirmed: false,
    };
    let reason = leg.ring_and_serve(&gateway, &req, inputs, states).await;
    if let Some(reason) = reason {
        session
            .out
            .send(ServerMessage::Ended {
                call: call.clone(),
                reason,
            })
            .ok();
    }
    if let Some(pc) = leg.pc.take() {
        pc.close().await.ok();
    }
    session.calls.lock().expect("seat calls").remove(&call);
    tracing::info!(seat = %leg.seat, call = %call, ?reason, "browser call over");
}

struct Leg {
    call: String,
    seat: String,
    session: SessionLink,
    dialog: InviteDialog,
    bridge: Arc<Bridge>,
    pc: Option<Arc<RTCPeerConnection>>,
    local: LocalAudio,
    negotiated: Negotiated,
    answered: bool,
    confirmed: bool,
}

/// What the peer connection reports to the call.
enum PcEvent {
    Up,
    Down,
}

impl Leg {
    /// Rings the browser and serves the call; the reason to tell the
    /// browser it ended (none when its socket is gone).
    async fn ring_and_serve(
        &mut self,
        gateway: &Gateway,
        req: &rsipstack::sip::Request,
        mut inputs: mpsc::UnboundedReceiver<CallInput>,
        mut states: mpsc::UnboundedReceiver<DialogState>,
    ) -> Option<EndReason> {
        self.dialog.ringing(None, None).ok();
        let offered = match gateway.peers.offer().await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "cannot make a WebRTC offer");
                self.dialog
                    .reject(Some(StatusCode::ServiceUnavailable), None)
                    .ok();
                return Some(EndReason::Failed);
            }
        };
        let pc = Arc::clone(&offered.pc);
        self.pc = Some(Arc::clone(&pc));
        let (pc_tx, mut pc_events) = mpsc::unbounded_channel();
        let bridge = Arc::clone(&self.bridge);
        pc.on_track(Box::new(move |track, _, _| {
            match peer::remote_codec(&track.codec().capability.mime_type) {
                Some(codec) => bridge.start_to_sip(track, codec),
                None => tracing::warn!(
                    codec = %track.codec().capability.mime_type,
                    "browser sends a codec the bridge does not take"
                ),
            }
            Box::pin(async {})
        }));
        pc.on_peer_connection_state_change(Box::new(move |state| {
            let event = match state {
                RTCPeerConnectionState::Connected => Some(PcEvent::Up),
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                    Some(PcEvent::Down)
                }
                _ => None,
            };
            if let Some(event) = event {
                pc_tx.send(event).ok();
            }
            Box::pin(async {})
        }));
        self.bridge
            .start_to_browser(Arc::clone(&offered.track), offered.codec);
        let from = req
            .from_header()
            .ok()
            .and_then(|f| f.uri().ok())
            .and_then(|u| u.user().map(str::to_owned))
            .unwrap_or_default();
        let from = if self.session.masked {
            crate::auth::mask::mask_phone(&from)
        } else {
            from
        };
        let caller_call_id = req.header_value("X-Hotline-Call-ID").unwrap_or_default();
        tracing::info!(seat = %self.seat, call = %self.call, codec = offered.codec.name(), "ringing browser seat");
        self.session
            .out
            .send(ServerMessage::Ring {
                call: self.call.clone(),
                from,
                caller_call_id,
                sdp: offered.sdp,
            })
            .ok();
        loop {
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(CallInput::Browser(message)) => {
                        if let Some(end) = self.on_browser(message, &pc).await {
                            return Some(end);
                        }
                    }
                    // The socket closed: the seat is gone, like a phone
                    // that lost power.
                    None | Some(CallInput::Gone) => {
                        self.hang_up(StatusCode::TemporarilyUnavailable).await;
                        return None;
                    }
                },
                state = states.recv() => match state {
                    Some(DialogState::Confirmed(..)) => {
                        self.confirmed = true;
                        self.send(ServerMessage::Connected { call: self.call.clone() });
                    }
                    Some(DialogState::Updated(_, req, handle)) => self.on_modify(req, handle).await,
                    Some(DialogState::Info(_, _, handle)) | Some(DialogState::Options(_, _, handle)) => {
                        handle.reply(StatusCode::OK).await.ok();
                    }
                    Some(DialogState::Notify(_, _, handle))
                    | Some(DialogState::Message(_, _, handle))
                    | Some(DialogState::Refer(_, _, handle))
                    | Some(DialogState::Publish(_, _, handle)) => {
                        crate::call::in_dialog::refuse_method(&handle).await;
                    }
                    Some(DialogState::Terminated(_, reason)) => {
                        tracing::debug!(call = %self.call, ?reason, "browser call dialog ended");
                        return Some(if self.answered {
                            EndReason::CallerHangup
                        } else {
                            EndReason::Cancelled
                        });
                    }
                    Some(_) => {}
                    None => return Some(EndReason::Failed),
                },
                event = pc_events.recv() => match event {
                    Some(PcEvent::Up) => self.bridge.set_connected(true),
                    Some(PcEvent::Down) | None => {
                        tracing::warn!(seat = %self.seat, call = %self.call, "browser media lost");
                        self.hang_up(StatusCode::TemporarilyUnavailable).await;
                        return Some(EndReason::Failed);
                    }
                },
            }
        }
    }

    fn send(&self, message: ServerMessage) {
        self.session.out.send(message).ok();
    }

    /// Ends the SIP side: BYE once answered, else a final refusal.
    async fn hang_up(&mut self, refusal: StatusCode) {
        if self.answered {
            self.dialog.bye().await.ok();
        } else {
            self.dialog.reject(Some(refusal), None).ok();
        }
    }

    async fn on_browser(
        &mut self,
        message: ClientMessage,
        pc: &RTCPeerConnection,
    ) -> Option<EndReason> {
        match message {
            ClientMessage::Sdp { sdp, .. } => {
                let applied = match peer::answer(sdp) {
                    Ok(desc) => pc
                        .set_remote_description(desc)
                        .await
                        .map_err(anyhow::Error::from),
                    Err(e) => Err(e),
                };
                if let Err(e) = applied {
                    self.send(ServerMessage::error(
                        ErrorCode::BadMessage,
                        format!("the SDP answer was refused: {e}"),
                    ));
                    self.hang_up(StatusCode::NotAcceptableHere).await;
                    return Some(EndReason::Failed);
                }
            }
            ClientMessage::Answer { .. } if !self.answered => {
                let body = sdp::answer_text(&self.local, &self.negotiated).into_bytes();
                let headers = vec![Header::ContentType("application/sdp".into())];
                if let Err(e) = self.dialog.accept(Some(headers), Some(body)) {
                    tracing::warn!(error = %e, "cannot answer for the browser seat");
                    return Some(EndReason::Failed);
                }
                self.answered = true;
                self.bridge.set_sending(true);
            }
            ClientMessage::Answer { .. } => {}
            ClientMessage::Reject { .. } => {
                self.hang_up(StatusCode::Decline).await;
                return Some(EndReason::AgentHangup);
            }
            ClientMessage::Hangup { .. } => {
                self.hang_up(StatusCode::Decline).await;
                return Some(EndReason::AgentHangup);
            }
            ClientMessage::Hold { on, .. } => {
                if !self.confirmed {
                    self.send(ServerMessage::error(
                        ErrorCode::NoCall,
                        "hold needs an answered call",
                    ));
                    return None;
                }
                self.local.version += 1;
                self.negotiated.local_direction = if on {
                    Direction::SendOnly
                } else {
                    Direction::SendRecv
                };
                let body = sdp::answer_text(&self.local, &self.negotiated).into_bytes();
                let headers = vec![Header::ContentType("application/sdp".into())];
                match self.dialog.reinvite(Some(headers), Some(body)).await {
                    Ok(Some(r))
                        if r.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful =>
                    {
                        self.bridge.set_sending(!on);
                        self.send(ServerMessage::Held {
                            call: self.call.clone(),
                            on,
                        });
                    }
                    other => {
                        tracing::warn!(?other, "hold re-INVITE not accepted");
                        self.send(ServerMessage::error(ErrorCode::NoCall, "hold was refused"));
                    }
                }
            }
            ClientMessage::Dtmf { digits, .. } => self.bridge.send_digits(&digits),
            ClientMessage::Login { .. } | ClientMessage::Ping {} => {}
        }
        None
    }

    /// A re-INVITE or UPDATE from the call actor.
    async fn on_modify(
        &mut self,
        req: rsipstack::sip::Request,
        handle: rsipstack::dialog::dialog::TransactionHandle,
    ) {
        use crate::call::in_dialog;
        if in_dialog::has_offer(&req) {
            let Some(n) = in_dialog::accept_offer(&req, &handle).await else {
                return;
            };
            self.local.version += 1;
            self.bridge.set_sip(SipSide {
                law: n.law,
                dtmf_pt: n.dtmf_pt,
                remote: n.remote_rtp,
            });
            self.negotiated = n;
        }
        in_dialog::answer_modify(
            &req,
            &handle,
            crate::sip::headers::capabilities(),
            &self.local,
            Some(&self.negotiated),
        )
        .await;
    }
}
