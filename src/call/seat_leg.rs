//! The agent leg of a queued call (B2BUA): an outbound INVITE to the seat's
//! registered softphone, a media stream opened beside the caller's so the
//! engine can bridge the two, and the softphone's in-dialog requests (hold,
//! unhold, BYE).
//!
//! The caller's actor owns the leg and turns its [`LegEvent`]s into ACD
//! events and bridge changes.

use crate::media::engine::{MediaEvent, OpenParams, StreamConfig, StreamHandle, StreamStats};
use crate::media::g711::Law;
use crate::server::Shared;
use crate::sip::headers::{self, capabilities};
use crate::sip::registrar::Binding;
use crate::sip::sdp::{self, LocalAudio, Negotiated};
use rsipstack::dialog::dialog::{DialogState, TerminatedReason, TransactionHandle};
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, StatusCode};
use std::net::{IpAddr, SocketAddr};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// What happened on the agent leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// The softphone answered and its media is set up.
    Answered,
    /// The INVITE failed: busy (486), declined (603), not found, timeout
    /// (status 408), or an answer we cannot use (488).
    Failed { status: u16 },
    /// The agent put the caller on hold (true) or took them off (false).
    Hold(bool),
    /// The leg is over; `by_agent` when the softphone sent the BYE.
    Ended { by_agent: bool },
    /// Part of a stereo recording made on this leg's stream (`last` when
    /// the recording ended).
    Recording { samples: Vec<i16>, last: bool },
    /// A key pressed on the leg's phone (RFC 4733 or SIP INFO), to pass on.
    Digit(char),
    /// The softphone asked (REFER, already accepted with 202) to transfer
    /// the caller to this target; progress goes back by
    /// [`SeatLeg::notify_refer`].
    Refer(String),
    /// The softphone asked (REFER with Replaces, accepted with 202) to hand
    /// the caller to the target it consults on the dialog `replaces` names.
    ReferReplaces {
        target: String,
        replaces: super::transfer::Replaces,
    },
}

/// One outbound call to a seat.
pub struct SeatLeg {
    pub seat: String,
    /// The leg's SIP Call-ID, for the call record.
    pub call_id: String,
    dialog: InviteDialog,
    states: UnboundedReceiver<DialogState>,
    invite: Option<JoinHandle<InviteAsyncResult>>,
    stream: Option<StreamHandle>,
    media_events: UnboundedReceiver<MediaEvent>,
    local: LocalAudio,
    negotiated: Option<Negotiated>,
    held: bool,
    answered: bool,
    ended: bool,
    /// The last REFER progress NOTIFY in flight: the next NOTIFY and the
    /// BYE wait for it, since a NOTIFY after the BYE is never sent.
    notifying: Option<JoinHandle<()>>,
}

/// Everything needed to dial a seat.
pub struct Dial<'a> {
    pub seat: &'a str,
    pub binding: &'a Binding,
    /// The stream this leg will be mixed with (the caller's): the leg's
    /// stream opens on the same media worker. `None` for a first leg (a
    /// call-back rings the agent before the caller).
    pub beside: Option<&'a StreamHandle>,
    /// Shown to the agent as From: the citizen's number.
    pub caller_number: &'a str,
    /// Our SIP address (Contact).
    pub sip_addr: SocketAddr,
    /// Our address in SDP; `None` picks the one that routes to the seat.
    pub advertise_ip: Option<IpAddr>,
    /// The caller's Call-ID, sent as a header so softphones and logs can
    /// tie the legs together.
    pub caller_call_id: &'a str,
    /// More headers for the INVITE (a trunk's P-Asserted-Identity).
    pub headers: Vec<Header>,
    /// Digest credentials if the far end challenges (a trunk's).
    pub credential: Option<rsipstack::dialog::authenticate::Credential>,
}

impl SeatLeg {
    /// Sends the INVITE; the answer arrives through [`SeatLeg::next`].
    pub fn dial(shared: &Shared, d: Dial<'_>) -> anyhow::Result<SeatLeg> {
        let dest = d.binding.source;
        let local_ip = d
            .advertise_ip
            .or_else(|| headers::local_ip_toward(dest.ip()))
            .unwrap_or(d.sip_addr.ip());
        let (events_tx, media_events) = tokio::sync::mpsc::unbounded_channel();
        let params = OpenParams {
            // Nothing is sent until the answer says where to.
            config: StreamConfig {
                law: Law::Ulaw,
                payload_type: 0,
                dtmf_pt: None,
                remote_rtp: None,
                remote_rtcp: None,
                send: false,
                expect_rtp: false,
            },
            events: events_tx,
            cname: format!("hotline@{local_ip}"),
        };
        let stream = match d.beside {
            Some(beside) => shared.media.open_beside(beside, params)?,
            None => shared.media.open(params)?,
        };
        let local = LocalAudio {
            ip: local_ip,
            port: stream.local_port(),
            session_id: rand::random::<u32>().into(),
            version: 1,
        };
        let host = |ip: IpAddr| match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let uri = |text: String| {
            rsipstack::sip::Uri::try_from(text.as_str())
                .map_err(|e| anyhow::anyhow!("bad SIP URI {text:?}: {e}"))
        };
        let caller_user = if d
            .caller_number
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_.".contains(c))
            && !d.caller_number.is_empty()
        {
            d.caller_number
        } else {
            "anonymous"
        };
        let ours = host(local_ip);
        let port = d.sip_addr.port();
        let callee =
            uri(d.binding.contact.clone()).or_else(|_| uri(format!("sip:{}@{}", d.seat, dest)))?;
        let option = InviteOption {
            caller: uri(format!("sip:{caller_user}@{ours}:{port}"))?,
            callee,
            destination: Some(dest.into()),
            content_type: Some("application/sdp".into()),
            offer: Some(sdp::offer_text(&local).into_bytes()),
            contact: uri(format!("sip:hotline@{ours}:{port}"))?,
            // rsipstack's default Call-ID names another product's domain.
            call_id: Some(format!("{:032x}@hotline", rand::random::<u128>())),
            headers: Some(
                [
                    headers::other("X-Hotline-Call-ID", d.caller_call_id),
                    Header::Allow(headers::ALLOW.into()),
                ]
                .into_iter()
                .chain(d.headers)
                .collect(),
            ),
            credential: d.credential,
            ..InviteOption::default()
        };
        let (state_tx, states) = shared.dialogs.new_dialog_state_channel();
        let (dialog, invite) = shared.dialogs.do_invite_async(option, state_tx)?;
        let call_id = dialog.id().call_id.clone();
        tracing::info!(seat = d.seat, %dest, leg = %call_id, "ringing seat");
        Ok(SeatLeg {
            seat: d.seat.to_owned(),
            call_id,
            dialog,
            states,
            invite: Some(invite),
            stream: Some(stream),
            media_events,
            local,
            negotiated: None,
            held: false,
            answered: false,
            ended: false,
            notifying: None,
        })
    }

    /// The agent's media stream.
    pub fn stream(&self) -> Option<&StreamHandle> {
        self.stream.as_ref()
    }

    /// Whether the agent answered.
    pub fn answered(&self) -> bool {
        self.answered
    }

    /// The codec the agent's softphone chose.
    pub fn codec(&self) -> Option<&'static str> {
        self.negotiated.as_ref().map(|n| n.law.name())
    }

    /// The next event worth telling the caller's actor about.
    pub async fn next(&mut self) -> LegEvent {
        loop {
            if self.ended {
                return std::future::pending().await;
            }
            tokio::select! {
                result = wait_invite(&mut self.invite) => {
                    self.invite = None;
                    if let Some(event) = self.on_final(result) {
                        return event;
                    }
                }
                state = self.states.recv() => match state {
                    Some(state) => if let Some(event) = self.on_state(state).await {
                        return event;
                    },
                    None => {
                        self.ended = true;
                        return LegEvent::Ended { by_agent: false };
                    }
                },
                // The agent's stream is bridged; its own events (a silent
                // softphone) end the leg like a BYE would.
                event = self.media_events.recv() => match event {
                    Some(MediaEvent::RtpTimeout) => {
                        tracing::info!(seat = %self.seat, "no RTP from the seat: ending its leg");
                        self.hang_up();
                        return LegEvent::Ended { by_agent: false };
                    }
                    Some(MediaEvent::RecordedStereoPart(samples)) => {
                        return LegEvent::Recording { samples, last: false };
                    }
                    Some(MediaEvent::RecordedStereo(samples)) => {
                        return LegEvent::Recording { samples, last: true };
                    }
                    Some(MediaEvent::Digit(d)) => return LegEvent::Digit(d),
                    _ => {}
                },
            }
        }
    }

    fn on_final(
        &mut self,
        result: Result<InviteAsyncResult, tokio::task::JoinError>,
    ) -> Option<LegEvent> {
        let response = match result {
            Ok(Ok((_, Some(resp)))) => resp,
            Ok(Ok((_, None))) => {
                self.ended = true;
                return Some(LegEvent::Failed { status: 408 });
            }
            Ok(Err(e)) => {
                tracing::info!(seat = %self.seat, error = %e, "INVITE to seat failed");
                self.ended = true;
                return Some(LegEvent::Failed { status: 408 });
            }
            Err(_) => {
                self.ended = true;
                return Some(LegEvent::Failed { status: 500 });
            }
        };
        let status = u16::from(response.status_code.clone());
        if status >= 300 {
            self.ended = true;
            return Some(LegEvent::Failed { status });
        }
        match sdp::parse(&response.body).and_then(|a| sdp::accept_answer(&a)) {
            Ok(n) => {
                self.apply(n);
                self.answered = true;
                Some(LegEvent::Answered)
            }
            Err(e) => {
                tracing::warn!(seat = %self.seat, error = %e, "seat answered without usable SDP");
                self.hang_up();
                self.ended = true;
                Some(LegEvent::Failed { status: 488 })
            }
        }
    }

    async fn on_state(&mut self, state: DialogState) -> Option<LegEvent> {
        match state {
            DialogState::Updated(_, req, handle) => return self.on_modify(req, handle).await,
            DialogState::Options(_, _, handle) => {
                handle
                    .respond(StatusCode::OK, Some(capabilities()), None)
                    .await
                    .ok();
            }
            DialogState::Info(_, req, handle) => {
                handle.reply(StatusCode::OK).await.ok();
                let content_type = headers::content_type(&req);
                if let Some(d) = crate::media::dtmf::parse_info_body(&content_type, &req.body) {
                    return Some(LegEvent::Digit(d));
                }
            }
            DialogState::Refer(_, req, handle) => {
                let accepted = on_refer(&req, &handle).await;
                if accepted.is_some() {
                    // The 202 leaves from the transaction's own task; the
                    // first NOTIFY waits a moment so it does not overtake
                    // it (RFC 3515 allows that, but phones trip on it).
                    let pause = std::time::Duration::from_millis(50);
                    self.notifying = Some(tokio::spawn(tokio::time::sleep(pause)));
                }
                return accepted;
            }
            DialogState::Notify(_, _, handle)
            | DialogState::Message(_, _, handle)
            | DialogState::Publish(_, _, handle) => {
                super::in_dialog::refuse_method(&handle).await;
            }
            DialogState::Terminated(_, reason) => {
                // Before the answer the INVITE's own outcome reports.
                if !self.answered {
                    return None;
                }
                self.ended = true;
                return Some(LegEvent::Ended {
                    by_agent: matches!(reason, TerminatedReason::UasBye),
                });
            }
            _ => {}
        }
        None
    }

    /// re-INVITE or UPDATE from the softphone: hold, unhold, new address.
    async fn on_modify(&mut self, req: Request, handle: TransactionHandle) -> Option<LegEvent> {
        let mut event = None;
        if super::in_dialog::has_offer(&req) {
            let n = super::in_dialog::accept_offer(&req, &handle).await?;
            // Hold is the softphone no longer wanting our audio
            // (sendonly or inactive).
            let held = !n.remote_direction.receives();
            if held != self.held {
                self.held = held;
                event = Some(LegEvent::Hold(held));
            }
            self.local.version += 1;
            self.apply(n);
        }
        super::in_dialog::answer_modify(
            &req,
            &handle,
            capabilities(),
            &self.local,
            self.negotiated.as_ref(),
        )
        .await;
        event
    }

    fn apply(&mut self, n: Negotiated) {
        if let Some(stream) = &self.stream {
            stream.update(super::in_dialog::stream_config(&n));
        }
        self.negotiated = Some(n);
    }

    /// Tells the softphone how the transfer it asked for is going (RFC 3515
    /// NOTIFY with a sipfrag); `done` ends the implicit subscription.
    pub fn notify_refer(&mut self, sipfrag: String, done: bool) {
        let dialog = self.dialog.clone();
        let state = if done {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let extra = vec![
            Header::Event("refer".into()),
            Header::SubscriptionState(state.into()),
            Header::ContentType("message/sipfrag;version=2.0".into()),
        ];
        let before = self.notifying.take();
        self.notifying = Some(tokio::spawn(async move {
            after(before).await;
            if let Err(e) = dialog.notify(Some(extra), Some(sipfrag.into_bytes())).await {
                tracing::debug!(error = %e, "REFER progress NOTIFY failed");
            }
        }));
    }

    /// Stops ringing (CANCEL), or ends the call (BYE) once answered. Runs on
    /// by itself: a vanished softphone must not hold up the caller.
    pub fn hang_up(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let dialog = self.dialog.clone();
        let answered = self.answered;
        let notifying = self.notifying.take();
        tokio::spawn(async move {
            after(notifying).await;
            let result = if answered {
                dialog.bye().await
            } else {
                dialog.cancel().await
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "ending the seat leg failed");
            }
        });
    }

    /// Frees the leg's stream and dialog; returns the stream's figures.
    pub async fn close(mut self, shared: &Shared) -> StreamStats {
        self.hang_up();
        shared.dialogs.remove_dialog(&self.dialog.id());
        match self.stream.take() {
            Some(s) => s.close().await,
            None => StreamStats::default(),
        }
    }
}

/// A REFER from the softphone: accepted (202) when it names a target we
/// can dial, refused with the reason otherwise.
async fn on_refer(req: &Request, handle: &TransactionHandle) -> Option<LegEvent> {
    use rsipstack::sip::prelude::HeadersExt;
    let refer_to = req.header_value("Refer-To").unwrap_or_default();
    match super::transfer::refer_target(&refer_to) {
        Ok(to) => {
            handle.reply(StatusCode::Accepted).await.ok();
            Some(match to {
                super::transfer::ReferTo::Blind(target) => LegEvent::Refer(target),
                super::transfer::ReferTo::Attended { target, replaces } => {
                    LegEvent::ReferReplaces { target, replaces }
                }
            })
        }
        Err(e) => {
            tracing::info!(%refer_to, error = %e, "REFER refused");
            let warning = headers::other("Warning", format!("399 hotline \"{e}\""));
            handle
                .respond(StatusCode::BadRequest, Some(vec![warning]), None)
                .await
                .ok();
            None
        }
    }
}

/// Waits (a little at most) for an earlier in-dialog request to go out.
async fn after(task: Option<JoinHandle<()>>) {
    if let Some(task) = task {
        tokio::time::timeout(std::time::Duration::from_secs(2), task)
            .await
            .ok();
    }
}

async fn wait_invite(
    invite: &mut Option<JoinHandle<InviteAsyncResult>>,
) -> Result<InviteAsyncResult, tokio::task::JoinError> {
    match invite {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}
