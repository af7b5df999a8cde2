//! The agent's second line: while talking to a caller, the agent's
//! softphone holds the caller and dials a number through the hotline (110,
//! a unit, a colleague) to consult first. The INVITE reaches the caller's
//! actor, which dials the target as its third party and answers this leg
//! only once the target answers (or refuses it with the target's status),
//! so the softphone sees the target's progress as its own. A REFER with
//! Replaces naming this leg then hands the caller to the target (RFC 3891
//! attended transfer).

use super::seat_leg::LegEvent;
use crate::call::transfer::Replaces;
use crate::media::engine::{MediaEvent, OpenParams, StreamHandle};
use crate::server::Shared;
use crate::sip::headers::{self, capabilities};
use crate::sip::sdp::{self, LocalAudio, Negotiated};
use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::IpAddr;
use tokio::sync::mpsc::UnboundedReceiver;

/// What the listener hands the caller's actor with the INVITE.
pub struct ConsultInvite {
    pub tx: Transaction,
    /// The seat that dialled (From user, checked against its registration).
    pub seat: String,
    /// The number dialled (request-URI user).
    pub target: String,
    pub offer: Negotiated,
    /// Our address for SDP and Contact.
    pub local_ip: IpAddr,
    pub contact_port: u16,
}

impl std::fmt::Debug for ConsultInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsultInvite")
            .field("seat", &self.seat)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The agent's consult call, server side.
pub struct ConsultLeg {
    pub seat: String,
    dialog: InviteDialog,
    states: UnboundedReceiver<DialogState>,
    stream: Option<StreamHandle>,
    media_events: UnboundedReceiver<MediaEvent>,
    local: LocalAudio,
    negotiated: Negotiated,
    answered: bool,
    ended: bool,
}

impl ConsultLeg {
    /// Takes the INVITE: a dialog, 180 Ringing, and a stream beside the
    /// caller's (silent until answered).
    pub fn ring(
        shared: &Shared,
        invite: ConsultInvite,
        beside: &StreamHandle,
    ) -> anyhow::Result<ConsultLeg> {
        let ConsultInvite {
            mut tx,
            seat,
            offer,
            local_ip,
            contact_port,
            ..
        } = invite;
        let (state_tx, states) = shared.dialogs.new_dialog_state_channel();
        let host = match local_ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let contact = rsipstack::sip::Uri::try_from(format!("sip:hotline@{host}:{contact_port}"))
            .map_err(|e| anyhow::anyhow!("bad Contact: {e}"))?;
        let dialog =
            shared
                .dialogs
                .get_or_create_server_invite(&tx, state_tx, None, Some(contact))?;
        let mut driver = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = driver.handle(&mut tx).await {
                tracing::debug!(error = %e, "consult INVITE transaction ended with error");
            }
        });
        let (events_tx, media_events) = tokio::sync::mpsc::unbounded_channel();
        let mut config = super::in_dialog::stream_config(&offer);
        // Nothing flows before the answer.
        config.send = false;
        let stream = shared.media.open_beside(
            beside,
            OpenParams {
                config,
                events: events_tx,
                cname: format!("hotline@{local_ip}"),
            },
        )?;
        let local = LocalAudio {
            ip: local_ip,
            port: stream.local_port(),
            session_id: rand::random::<u32>().into(),
            version: 1,
        };
        dialog.ringing(None, None).ok();
        Ok(ConsultLeg {
            seat,
            dialog,
            states,
            stream: Some(stream),
            media_events,
            local,
            negotiated: offer,
            answered: false,
            ended: false,
        })
    }

    /// The target answered: so does the hotline, and audio flows.
    pub fn answer(&mut self) {
        if self.ended || self.answered {
            return;
        }
        let body = sdp::answer_text(&self.local, &self.negotiated);
        let mut extra = vec![Header::ContentType("application/sdp".into())];
        extra.extend(capabilities());
        match self.dialog.accept(Some(extra), Some(body.into_bytes())) {
            Ok(()) => {
                self.answered = true;
                if let Some(stream) = &self.stream {
                    stream.update(super::in_dialog::stream_config(&self.negotiated));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "consult answer failed: the agent cancelled");
                self.ended = true;
            }
        }
    }

    /// The target failed: the agent's consult call fails the same way.
    pub fn reject(&mut self, status: u16) {
        if self.ended || self.answered {
            return;
        }
        self.ended = true;
        self.dialog
            .reject(Some(StatusCode::from(status)), None)
            .ok();
    }

    pub fn stream(&self) -> Option<&StreamHandle> {
        self.stream.as_ref()
    }

    /// Whether a Replaces names this dialog. Tags are compared both ways
    /// round: whose tag is the "to" depends on who dialled.
    pub fn replaced_by(&self, r: &Replaces) -> bool {
        let id = self.dialog.id();
        id.call_id == r.call_id
            && ((id.local_tag == r.to_tag && id.remote_tag == r.from_tag)
                || (id.local_tag == r.from_tag && id.remote_tag == r.to_tag))
    }

    /// The agent hung up, cancelled, or their phone went silent; a held
    /// consult or a key press.
    pub async fn next(&mut self) -> LegEvent {
        loop {
            if self.ended {
                return std::future::pending().await;
            }
            tokio::select! {
                state = self.states.recv() => match state {
                    Some(DialogState::Terminated(_, reason)) => {
                        self.ended = true;
                        return LegEvent::Ended {
                            by_agent: matches!(
                                reason,
                                TerminatedReason::UacBye | TerminatedReason::UacCancel
                            ),
                        };
                    }
                    Some(DialogState::Updated(_, req, handle)) => {
                        if super::in_dialog::has_offer(&req)
                            && let Some(n) = super::in_dialog::accept_offer(&req, &handle).await
                        {
                            self.local.version += 1;
                            if let Some(stream) = &self.stream {
                                stream.update(super::in_dialog::stream_config(&n));
                            }
                            self.negotiated = n;
                        } else if super::in_dialog::has_offer(&req) {
                            continue;
                        }
                        super::in_dialog::answer_modify(
                            &req,
                            &handle,
                            capabilities(),
                            &self.local,
                            Some(&self.negotiated),
                        )
                        .await;
                    }
                    Some(DialogState::Options(_, _, handle)) => {
                        handle.respond(StatusCode::OK, Some(capabilities()), None).await.ok();
                    }
                    Some(DialogState::Info(_, req, handle)) => {
                        handle.reply(StatusCode::OK).await.ok();
                        let content_type = headers::content_type(&req);
                        if let Some(d) = crate::media::dtmf::parse_info_body(&content_type, &req.body) {
                            return LegEvent::Digit(d);
                        }
                    }
                    Some(
                        DialogState::Refer(_, _, handle)
                        | DialogState::Notify(_, _, handle)
                        | DialogState::Message(_, _, handle)
                        | DialogState::Publish(_, _, handle),
                    ) => super::in_dialog::refuse_method(&handle).await,
                    Some(_) => {}
                    None => {
                        self.ended = true;
                        return LegEvent::Ended { by_agent: false };
                    }
                },
                event = self.media_events.recv() => match event {
                    Some(MediaEvent::RtpTimeout) if self.answered => {
                        self.ended = true;
                        self.hang_up();
                        return LegEvent::Ended { by_agent: false };
                    }
                    Some(MediaEvent::Digit(d)) => return LegEvent::Digit(d),
                    _ => {}
                },
            }
        }
    }

    fn hang_up(&self) {
        let dialog = self.dialog.clone();
        let answered = self.answered;
        tokio::spawn(async move {
            if answered {
                dialog.bye().await.ok();
            } else {
                dialog
                    .reject(Some(StatusCode::RequestTerminated), None)
                    .ok();
            }
        });
    }

    /// Ends the leg (BYE, or 487 if never answered) and frees it.
    pub async fn close(mut self, shared: &Shared) {
        if !self.ended {
            self.ended = true;
            self.hang_up();
        }
        shared.dialogs.remove_dialog(&self.dialog.id());
        if let Some(stream) = self.stream.take() {
            stream.close().await;
        }
    }
}
