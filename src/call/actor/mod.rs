//! One call, from its admitted INVITE to its record.
//!
//! The actor owns the call's state: the dialog, its media stream, the digits,
//! the timers. Everything reaches it as a message: dialog states from
//! rsipstack (ACK, re-INVITE, UPDATE, INFO, BYE, CANCEL), media events from
//! the stream (digits, a silent peer), timer expiries and the server's
//! "hang up now". Once answered, the call runs the main IVR flow
//! ([`super::ivr`]) on the flow version that was current when it arrived.

mod third;

use super::ivr::{IvrRun, Request as IvrRequest};
use super::record::{CallRecord, RtpSummary, now_ms};
use super::recording::StereoWav;
use super::seat_leg::{Dial, LegEvent, SeatLeg};
use crate::acd::router::{CallId, Event as AcdEvent};
use crate::acd::service::{QueueEvent, QueuedCall};
use crate::call::control::{CallCommand, ControlError, Listing, MonitorMode};
use crate::config::Config;
use crate::ivr::load::FlowSet;
use crate::media::dtmf::parse_info_body;
use crate::media::engine::{MediaEvent, OpenParams, StreamConfig, StreamHandle, StreamStats};
use crate::report::metrics::CallResult;
use crate::server::Shared;
use crate::sip::headers::{self, capabilities};
use crate::sip::sdp::{self, LocalAudio, Negotiated};
use crate::sip::session_timer::{self, Decision, Due, Granted, TimerRequest};
use rsipstack::dialog::DialogId;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason, TransactionHandle};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Request, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use third::{Asker, TRANSFER_FAILED, Third, next_consult, next_third};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use tracing::Instrument;

/// What the listener learned about an admitted INVITE.
pub struct CallSetup {
    pub tx: Transaction,
    /// The config in force when the call arrived; the call keeps it.
    pub config: Arc<Config>,
    /// The flows (and prompts) current when the call arrived; the call keeps them.
    pub flows: Arc<FlowSet>,
    /// The negotiated offer, or `None` for a late offer (INVITE without SDP).
    pub offer: Option<Negotiated>,
    pub timer: Option<Granted>,
    pub timer_request: TimerRequest,
    /// Our address for SDP and Contact.
    pub local_ip: IpAddr,
    pub contact_port: u16,
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub remote_addr: String,
    pub transport: &'static str,
    pub started_at: i64,
}

/// How a call ended, for the record and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    CallerBye,
    Cancelled,
    FlowHangup,
    MaxDuration,
    NoFlow,
    RtpTimeout,
    SessionExpired,
    Shutdown,
    NoAck,
    BadAnswer,
    MediaUnavailable,
    /// The agent hung up and there was no survey to go to.
    AgentBye,
    /// The agent's softphone vanished mid-call.
    SeatLost,
    QueueMaxWait,
    /// The caller kept their place for a call-back and was let go.
    CallbackQueued,
    /// The party the caller was transferred to hung up.
    TargetBye,
    Other,
}

impl End {
    fn reason(self) -> &'static str {
        match self {
            End::CallerBye => "caller-bye",
            End::Cancelled => "cancelled",
            End::FlowHangup => "flow-hangup",
            End::MaxDuration => "max-duration",
            End::NoFlow => "no-flow",
            End::RtpTimeout => "rtp-timeout",
            End::SessionExpired => "session-expired",
            End::Shutdown => "shutdown",
            End::NoAck => "no-ack",
            End::BadAnswer => "bad-sdp-answer",
            End::MediaUnavailable => "media-unavailable",
            End::AgentBye => "agent-bye",
            End::SeatLost => "seat-lost",
            End::QueueMaxWait => "queue-max-wait",
            End::CallbackQueued => "callback-queued",
            End::TargetBye => "target-bye",
            End::Other => "ended",
        }
    }

    /// Whether we sent the BYE.
    fn by_hotline(self) -> bool {
        matches!(
            self,
            End::FlowHangup
                | End::MaxDuration
                | End::NoFlow
                | End::RtpTimeout
                | End::SessionExpired
                | End::Shutdown
                | End::BadAnswer
                | End::AgentBye
                | End::SeatLost
                | End::QueueMaxWait
                | End::CallbackQueued
                | End::TargetBye
        )
    }
}

/// Runs the call to its end and leaves its record.
pub async fn run(shared: Arc<Shared>, setup: CallSetup) {
    let span = tracing::info_span!("call", call_id = %setup.call_id);
    async move {
        let record = Call::start(&shared, shared.clone(), setup).await;
        tracing::info!(
            status = record.status,
            end = %record.end_reason,
            digits = %record.digits,
            "call ended"
        );
        let rated = record
            .survey_score
            .map(|score| (record.call_id.clone(), score));
        // A call from a citizen with an open order joins that order.
        let repeat = record.clone();
        let linker = shared.clone();
        tokio::spawn(async move { crate::callers::repeat::link(&linker, &repeat).await });
        shared.records.send(record);
        if let Some((call_id, score)) = rated {
            // The orders filed during the call learn the caller's rating.
            let shared = shared.clone();
            tokio::spawn(async move {
                crate::orders::survey::rate(&shared, &call_id, score).await;
            });
        }
        shared.call_finished();
    }
    .instrument(span)
    .await
}

struct Call<'a> {
    shared: &'a Shared,
    config: Arc<Config>,
    flows: Arc<FlowSet>,
    ivr: Option<IvrRun>,
    dialog: InviteDialog,
    states: UnboundedReceiver<DialogState>,
    media_events: UnboundedReceiver<MediaEvent>,
    stream: Option<StreamHandle>,
    negotiated: Option<Negotiated>,
    local: LocalAudio,
    timer: Option<Granted>,
    refreshed_at: Instant,
    digits: String,
    answered_at: Option<i64>,
    status: u16,
    record: CallRecord,
    /// The ACD queue the caller waits in.
    queue: Option<Queued>,
    /// Seats ringing for this call (several with ring-all).
    ringing: Vec<SeatLeg>,
    /// The agent in conversation with the caller.
    agent: Option<SeatLeg>,
    wav: Option<StereoWav>,
    /// The main flow's record, kept when the caller moves on to the survey.
    main_ivr: Option<super::ivr::IvrRecord>,
    /// The call's entry in the directory of live calls, with its commands.
    control: Listing,
    /// The shared state again, owned, for tasks that outlive the call.
    owner: Arc<Shared>,
    /// The caller asked for a call-back; the confirmation is playing.
    callback_confirming: bool,
    /// A supervisor listening, whispering or barging in, and how.
    supervisor: Option<SeatLeg>,
    monitor: MonitorMode,
    /// A party the agent (or the IVR) brought in.
    third: Option<Third>,
    /// The agent's softphone holds the caller.
    agent_holds: bool,
    /// Parties nobody else hears.
    muted: Vec<crate::call::mixplan::Party>,
    /// Whether the caller hears hold music now.
    caller_music: bool,
    /// The agent's second line, dialled from the softphone to consult.
    consult: Option<crate::call::consult_leg::ConsultLeg>,
}

/// A call's place in the ACD.
struct Queued {
    id: CallId,
    name: String,
    events: UnboundedReceiver<QueueEvent>,
    /// Whether this queue's conversations are recorded.
    record: bool,
    reject_pause: Duration,
}

impl<'a> Call<'a> {
    async fn start(shared: &'a Shared, owner: Arc<Shared>, setup: CallSetup) -> CallRecord {
        let CallSetup {
            mut tx,
            config,
            flows,
            offer,
            timer,
            timer_request,
            local_ip,
            contact_port,
            call_id,
            caller,
            callee,
            remote_addr,
            transport,
            started_at,
        } = setup;
        let mut record = CallRecord {
            call_id,
            caller,
            callee,
            remote_addr,
            transport: transport.into(),
            started_at,
            answered_at: None,
            ended_at: 0,
            status: 0,
            end_reason: String::new(),
            hangup_by: String::new(),
            codec: None,
            digits: String::new(),
            rtp: RtpSummary::default(),
            ..CallRecord::default()
        };
        let (state_tx, states) = shared.dialogs.new_dialog_state_channel();
        let contact = contact_uri(
            &config.sip.hotline_number,
            local_ip,
            contact_port,
            transport,
        );
        let dialog =
            match shared
                .dialogs
                .get_or_create_server_invite(&tx, state_tx, None, Some(contact))
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create dialog");
                    tx.reply(StatusCode::ServerInternalError).await.ok();
                    record.status = 500;
                    return finish_record(record, End::Other, None, shared, CallResult::Failed);
                }
            };
        // The dialog drives the INVITE transaction (100, retransmissions,
        // ACK, CANCEL) in its own task and reports to `states`.
        let mut driver = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = driver.handle(&mut tx).await {
                tracing::debug!(error = %e, "INVITE transaction ended with error");
            }
        });

        let (events_tx, media_events) = tokio::sync::mpsc::unbounded_channel();
        let stream_config = StreamConfig {
            law: offer
                .as_ref()
                .map_or(crate::media::g711::Law::Ulaw, |n| n.law),
            payload_type: offer.as_ref().map_or(0, |n| n.payload_type),
            dtmf_pt: offer.as_ref().and_then(|n| n.dtmf_pt),
            remote_rtp: offer.as_ref().and_then(|n| n.remote_rtp),
            remote_rtcp: offer.as_ref().and_then(|n| n.remote_rtcp),
            // With a late offer nothing is sent until the ACK's answer.
            send: offer.as_ref().is_some_and(|n| n.local_direction.sends()),
            expect_rtp: offer.as_ref().is_some_and(|n| n.remote_direction.sends()),
        };
        let stream = match shared.media.open(OpenParams {
            config: stream_config,
            events: events_tx,
            cname: format!("hotline@{local_ip}"),
        }) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no media port for call");
                dialog
                    .reject(
                        Some(StatusCode::ServiceUnavailable),
                        Some("no media port".into()),
                    )
                    .ok();
                record.status = 503;
                return finish_record(
                    record,
                    End::MediaUnavailable,
                    None,
                    shared,
                    CallResult::Failed,
                );
            }
        };
        let now = Instant::now();
        let control = shared.directory.list(&record.call_id);
        let mut call = Call {
            control,
            owner,
            callback_confirming: false,
            supervisor: None,
            monitor: MonitorMode::Listen,
            third: None,
            agent_holds: false,
            muted: Vec::new(),
            caller_music: false,
            consult: None,
            shared,
            local: LocalAudio {
                ip: local_ip,
                port: stream.local_port(),
                session_id: rand::random::<u32>().into(),
                version: 1,
            },
            config,
            flows,
            ivr: None,
            dialog,
            states,
            media_events,
            stream: Some(stream),
            negotiated: offer,
            timer,
            refreshed_at: now,
            digits: String::new(),
            answered_at: None,
            status: 0,
            record,
            queue: None,
            ringing: Vec::new(),
            agent: None,
            wav: None,
            main_ivr: None,
        };
        let end = call.drive(&timer_request).await;
        call.finish(end).await
    }

    /// Rings, answers, then serves the call until it ends.
    async fn drive(&mut self, timer_request: &TimerRequest) -> End {
        if self.config.sip.send_ringing {
            self.dialog.ringing(None, None).ok();
        }
        let delay = Duration::from_millis(self.config.sip.answer_delay_ms.into());
        if !delay.is_zero() {
            let answer_at = Instant::now() + delay;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(answer_at) => break,
                    _ = self.shared.hangup_all.cancelled() => {
                        self.dialog.reject(Some(StatusCode::ServiceUnavailable), None).ok();
                        self.status = 503;
                        return End::Shutdown;
                    }
                    state = self.states.recv() => match state {
                        Some(DialogState::Terminated(_, reason)) => return self.terminated(reason),
                        Some(_) => {}
                        None => return End::Other,
                    },
                }
            }
        }
        let body = match &self.negotiated {
            Some(n) => sdp::answer_text(&self.local, n),
            None => sdp::offer_text(&self.local),
        };
        let mut extra = vec![Header::ContentType("application/sdp".into())];
        extra.extend(capabilities());
        if let Some(timer) = &self.timer {
            extra.push(headers::other("Session-Expires", timer.header_value()));
            if timer.require_timer(timer_request) {
                extra.push(Header::Require("timer".into()));
            }
        }
        if let Err(e) = self.dialog.accept(Some(extra), Some(body.into_bytes())) {
            // The transaction is gone: the caller cancelled as we answered.
            tracing::debug!(error = %e, "answer failed");
            return self.wait_terminated().await;
        }
        self.status = 200;
        self.answered_at = Some(now_ms());
        let now = Instant::now();
        self.refreshed_at = now;
        let max_end = now + Duration::from_secs(self.config.ivr.max_call_secs.into());
        if let Some(end) = self.start_ivr(now) {
            return end;
        }

        loop {
            self.take_up_queue();
            if let Some(target) = self.ivr.as_mut().and_then(IvrRun::take_transfer_request) {
                self.start_transfer(crate::call::transfer::Kind::Blind, target, Asker::Ivr)
                    .await;
            }
            let third_at = self.third_deadline().unwrap_or_else(far_future);
            let timer_due = self.timer.map(|t| t.due(self.refreshed_at.into_std()));
            let timer_at = match timer_due {
                Some(Due::Refresh(at) | Due::Expire(at)) => Instant::from_std(at),
                None => far_future(),
            };
            let ivr_at = self
                .ivr
                .as_ref()
                .and_then(IvrRun::deadline)
                .unwrap_or_else(far_future);
            tokio::select! {
                state = self.states.recv() => {
                    let Some(state) = state else { return End::Other };
                    if let Some(end) = self.on_state(state).await {
                        return end;
                    }
                }
                event = self.media_events.recv() => {
                    let request = match event {
                        Some(MediaEvent::Digit(d)) => self.on_digit(d),
                        Some(MediaEvent::PlaybackDone(CALLBACK_CONFIRM)) if self.callback_confirming => {
                            return self.hand_over_for_callback();
                        }
                        Some(MediaEvent::PlaybackDone(QUEUE_TIMEOUT)) => {
                            return self.hang_up(End::QueueMaxWait);
                        }
                        Some(MediaEvent::PlaybackDone(TRANSFER_FAILED)) => IvrRequest::Continue,
                        Some(MediaEvent::PlaybackDone(id)) => self.with_ivr(|ivr, s| ivr.playback_done(id, s)),
                        Some(MediaEvent::Recorded(samples)) => match (&mut self.ivr, &self.stream) {
                            (Some(ivr), Some(stream)) => ivr.recorded(samples, stream).await,
                            _ => IvrRequest::Continue,
                        },
                        Some(MediaEvent::RecordedStereoPart(samples) | MediaEvent::RecordedStereo(samples)) => {
                            if let Some(wav) = &self.wav {
                                wav.push(samples);
                            }
                            IvrRequest::Continue
                        }
                        Some(MediaEvent::RtpTimeout) => {
                            tracing::info!("no RTP from the caller: hanging up");
                            return self.hang_up(End::RtpTimeout);
                        }
                        None => IvrRequest::Continue,
                    };
                    if request == IvrRequest::Hangup {
                        return self.hang_up(End::FlowHangup);
                    }
                }
                event = recv_queue(&mut self.queue) => {
                    if let Some(end) = self.on_queue_event(event).await {
                        return end;
                    }
                }
                (i, event) = next_ringing(&mut self.ringing) => {
                    self.on_ringing(i, event).await;
                }
                event = next_agent(&mut self.agent) => {
                    if let Some(end) = self.on_agent(event).await {
                        return end;
                    }
                }
                event = next_agent(&mut self.supervisor) => {
                    self.on_supervisor(event).await;
                }
                event = next_consult(&mut self.consult) => {
                    self.on_consult_leg(event).await;
                }
                event = next_third(&mut self.third) => {
                    if let Some(end) = self.on_third(event).await {
                        return end;
                    }
                }
                _ = tokio::time::sleep_until(third_at) => {
                    self.third_ring_timeout().await;
                }
                Some(command) = self.control.commands.recv() => {
                    self.on_command(command).await;
                }
                answer = recv_answer(&mut self.ivr) => {
                    if let Some(answer) = answer {
                        let request = self.with_ivr(|ivr, s| ivr.answer(answer, s));
                        self.record_if_blocked();
                        if request == IvrRequest::Hangup {
                            return self.hang_up(End::FlowHangup);
                        }
                    }
                }
                _ = tokio::time::sleep_until(ivr_at) => {
                    if self.with_ivr(IvrRun::timeout) == IvrRequest::Hangup {
                        return self.hang_up(End::FlowHangup);
                    }
                }
                _ = tokio::time::sleep_until(max_end) => {
                    return self.hang_up(End::MaxDuration);
                }
                _ = tokio::time::sleep_until(timer_at) => match timer_due {
                    Some(Due::Refresh(_)) => {
                        if !self.refresh_session().await {
                            return self.hang_up(End::SessionExpired);
                        }
                    }
                    _ => return self.hang_up(End::SessionExpired),
                },
                _ = self.shared.hangup_all.cancelled() => {
                    return self.hang_up(End::Shutdown);
                }
            }
        }
    }

    /// Enters the main flow; returns an end when there is none to enter.
    fn start_ivr(&mut self, now: Instant) -> Option<End> {
        let Some(stream) = &self.stream else {
            return Some(End::Other);
        };
        let main = self.config.ivr.main_flow.clone();
        let Some(mut ivr) = self.enter_flow(&main, now) else {
            tracing::error!(flow = %self.config.ivr.main_flow, "main flow missing: hanging up");
            return Some(self.hang_up(End::NoFlow));
        };
        let request = ivr.pump(stream);
        self.ivr = Some(ivr);
        (request == IvrRequest::Hangup).then(|| self.hang_up(End::FlowHangup))
    }

    /// A run of `flow` for this caller, if the flow exists.
    fn enter_flow(&self, flow: &str, now: Instant) -> Option<IvrRun> {
        IvrRun::start(
            flow,
            self.flows.clone(),
            self.config.clone(),
            self.shared.flow_stats.clone(),
            self.shared.store.clone(),
            self.shared.calendar.load_full(),
            self.shared.blocks.clone(),
            &self.record.call_id,
            &self.record.caller,
            now,
        )
    }

    /// Puts the caller in the queue the flow chose, once it chose one.
    fn take_up_queue(&mut self) {
        let Some((name, priority)) = self.ivr.as_mut().and_then(IvrRun::take_queue_request) else {
            return;
        };
        self.join_queue(&name, priority);
    }

    /// Puts the caller in a queue at `priority`.
    fn join_queue(&mut self, name: &str, priority: u8) {
        let name = name.to_owned();
        let Some(rules) = self.config.queues.iter().find(|q| q.name == name) else {
            // `flows check` refuses unknown queues; a flow edited past it
            // leaves the caller on hold music rather than cut off.
            tracing::error!(queue = %name, "flow queued to an unknown queue");
            return;
        };
        let (record, reject_pause) = (
            rules.record,
            Duration::from_secs(rules.reject_pause_secs.into()),
        );
        let id = self.shared.acd.new_call_id();
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let call = QueuedCall {
            call_id: self.record.call_id.clone(),
            caller: self.record.caller.clone(),
            events: tx,
        };
        // Queue is set first: the enqueue may offer a seat at once.
        self.queue = Some(Queued {
            id,
            name: name.clone(),
            events,
            record,
            reject_pause,
        });
        match self.shared.acd.enqueue(id, &name, priority, call) {
            Ok(()) => {
                tracing::info!(queue = %name, priority, "queued");
                self.record.queued_at = Some(now_ms());
            }
            Err(e) => {
                tracing::error!(queue = %name, error = %e, "queue refused the call");
                self.queue = None;
            }
        }
    }

    async fn on_queue_event(&mut self, event: Option<QueueEvent>) -> Option<End> {
        let event = event?;
        let queued = self.queue.as_ref()?;
        let call = queued.id;
        match event {
            QueueEvent::Offer { seat } => self.offer(call, seat),
            QueueEvent::Withdraw { seat } => {
                if let Some(i) = self.ringing.iter().position(|l| l.seat == seat) {
                    let leg = self.ringing.remove(i);
                    tracing::info!(%seat, "offer withdrawn");
                    leg.close(self.shared).await;
                }
            }
            QueueEvent::Announce {
                position,
                estimated_wait,
            } => {
                tracing::info!(
                    position,
                    wait_secs = estimated_wait.as_secs(),
                    "announcing queue position"
                );
                if self.agent.is_none()
                    && let (Some(ivr), Some(stream)) = (&mut self.ivr, &self.stream)
                {
                    ivr.announce_position(position, stream);
                }
            }
            QueueEvent::Overflowed { to } => {
                tracing::info!(queue = %to, "overflowed");
                self.record.queue = Some(to.clone());
                if let Some(q) = &mut self.queue {
                    q.name = to;
                }
            }
            QueueEvent::MaxWait => {
                tracing::info!("longest queue wait reached");
                // The ACD has let the place go; ringing seats stop.
                if let Some(q) = self.queue.take() {
                    self.shared.acd.leave(q.id);
                }
                for leg in std::mem::take(&mut self.ringing) {
                    leg.close(self.shared).await;
                }
                // "All agents are busy", then goodbye.
                self.play_system_prompt("queue_timeout", QUEUE_TIMEOUT);
            }
        }
        None
    }

    /// Where a seat's phone is registered: on this node, or (shared state)
    /// on another one.
    fn seat_binding(&self, seat: &str) -> Option<crate::sip::registrar::Binding> {
        crate::server::seat_binding(self.shared, seat)
    }

    /// Rings a seat with the caller's number, beside the caller's stream.
    fn dial_seat(
        &self,
        seat: &str,
        binding: &crate::sip::registrar::Binding,
    ) -> anyhow::Result<SeatLeg> {
        self.dial_beside(seat, binding, &self.record.caller, Vec::new(), None)
    }

    /// Sends an INVITE for a new leg whose stream opens beside the
    /// caller's, so the two can be mixed.
    fn dial_beside(
        &self,
        name: &str,
        binding: &crate::sip::registrar::Binding,
        from_user: &str,
        headers: Vec<Header>,
        credential: Option<rsipstack::dialog::authenticate::Credential>,
    ) -> anyhow::Result<SeatLeg> {
        let stream = self
            .stream
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the call has no media stream"))?;
        SeatLeg::dial(
            self.shared,
            Dial {
                seat: name,
                binding,
                beside: Some(stream),
                caller_number: from_user,
                sip_addr: self.shared.sip_addr,
                advertise_ip: self.config.media.advertise_ip.parse().ok(),
                caller_call_id: &self.record.call_id,
                headers,
                credential,
            },
        )
    }

    /// The screen pop for the seat now ringing.
    fn publish_offer(&self, seat: &str) {
        let waited_ms = self
            .record
            .queued_at
            .map_or(0, |at| u64::try_from(now_ms() - at).unwrap_or(0));
        let (ivr_path, language) = match &self.ivr {
            Some(ivr) => (ivr.path(), Some(ivr.language().to_owned())),
            None => (Vec::new(), None),
        };
        self.shared
            .acd
            .events
            .publish(crate::acd::events::SeatEvent::Offered {
                seat: seat.to_owned(),
                call_id: self.record.call_id.clone(),
                caller: self.record.caller.clone(),
                queue: self
                    .queue
                    .as_ref()
                    .map(|q| q.name.clone())
                    .unwrap_or_default(),
                waited_ms,
                ivr_path,
                language,
            });
    }

    /// Rings a seat at its registered softphone.
    fn offer(&mut self, call: CallId, seat: String) {
        let binding = self.seat_binding(&seat);
        let pause = self
            .queue
            .as_ref()
            .map_or(Duration::ZERO, |q| q.reject_pause);
        let (Some(binding), Some(_)) = (binding, &self.stream) else {
            // Registered as available but no softphone to ring: it cannot
            // take calls until it registers again.
            tracing::warn!(%seat, "offered seat has no registration");
            self.shared
                .acd
                .handle(AcdEvent::Rejected {
                    seat: seat.clone(),
                    call,
                    pause,
                })
                .ok();
            self.shared.acd.seat_unregistered(&seat);
            return;
        };
        match self.dial_seat(&seat, &binding) {
            Ok(leg) => {
                self.publish_offer(&seat);
                self.ringing.push(leg);
            }
            Err(e) => {
                tracing::warn!(%seat, error = %e, "cannot ring seat");
                self.shared
                    .acd
                    .handle(AcdEvent::Rejected { seat, call, pause })
                    .ok();
            }
        }
    }

    /// A ringing seat answered or failed.
    async fn on_ringing(&mut self, i: usize, event: LegEvent) {
        let Some(queued) = &self.queue else { return };
        let call = queued.id;
        let pause = queued.reject_pause;
        match event {
            LegEvent::Answered => {
                let leg = self.ringing.remove(i);
                let seat = leg.seat.clone();
                let taken = self.shared.acd.handle(AcdEvent::Answered {
                    seat: seat.clone(),
                    call,
                });
                if let Err(e) = taken {
                    // Withdrawn while the answer was on its way (another
                    // seat of a ring-all answered first).
                    tracing::info!(%seat, error = %e, "late answer: releasing seat");
                    leg.close(self.shared).await;
                    return;
                }
                self.connect(leg);
            }
            LegEvent::Failed { status } => {
                let leg = self.ringing.remove(i);
                let seat = leg.seat.clone();
                tracing::info!(%seat, status, "seat did not take the call");
                leg.close(self.shared).await;
                // Busy or declined: the seat is left alone a while. Other
                // failures (not found, no answer) too, so a broken phone is
                // not rung again at once; the ring timeout covers silence.
                self.shared
                    .acd
                    .handle(AcdEvent::Rejected { seat, call, pause })
                    .ok();
            }
            LegEvent::Hold(_)
            | LegEvent::Ended { .. }
            | LegEvent::Recording { .. }
            | LegEvent::Digit(_)
            | LegEvent::Refer(_)
            | LegEvent::ReferReplaces { .. } => {}
        }
    }

    /// A caller turned away by a reviewed block is recorded while they
    /// hear the notice (left: the caller; the notice itself is named in the
    /// call record), under the recordings folder's `calls/blocked/`.
    fn record_if_blocked(&mut self) {
        let (Some(stream), None) = (&self.stream, &self.wav) else {
            return;
        };
        if self.ivr.as_ref().and_then(IvrRun::block).is_none() {
            return;
        }
        match StereoWav::create(
            &self.config.ivr.recordings_dir,
            "blocked",
            &self.record.call_id,
        ) {
            Ok(wav) => {
                stream.record_stereo(Duration::from_secs(self.config.ivr.max_call_secs.into()));
                self.wav = Some(wav);
            }
            Err(e) => tracing::error!(error = %e, "cannot record the blocked call"),
        }
    }

    /// Bridges the caller with the agent who answered.
    fn connect(&mut self, leg: SeatLeg) {
        let (Some(stream), Some(agent_stream)) = (&self.stream, leg.stream()) else {
            return;
        };
        stream.stop_playback();
        if let Err(e) = stream.bridge(agent_stream) {
            tracing::error!(error = %e, "cannot bridge caller and agent");
        }
        self.caller_music = false;
        self.agent_holds = false;
        if self.queue.as_ref().is_some_and(|q| q.record) {
            let queue = self.queue.as_ref().map_or("", |q| q.name.as_str());
            match StereoWav::create(&self.config.ivr.recordings_dir, queue, &self.record.call_id) {
                Ok(wav) => {
                    stream.record_stereo(Duration::from_secs(self.config.ivr.max_call_secs.into()));
                    self.wav = Some(wav);
                }
                Err(e) => tracing::error!(error = %e, "cannot start the call recording"),
            }
        }
        tracing::info!(seat = %leg.seat, leg = %leg.call_id, "caller connected to agent");
        self.record.seat = Some(leg.seat.clone());
        self.record.seat_call_id = Some(leg.call_id.clone());
        self.record.seat_codec = leg.codec().map(str::to_owned);
        self.record.connected_at = Some(now_ms());
        self.shared
            .directory
            .seat_on_call(&leg.seat, &self.record.call_id);
        self.shared
            .acd
            .events
            .publish(crate::acd::events::SeatEvent::Connected {
                seat: leg.seat.clone(),
                call_id: self.record.call_id.clone(),
            });
        self.agent = Some(leg);
    }

    /// Hold, unhold or the end of the agent's leg.
    async fn on_agent(&mut self, event: LegEvent) -> Option<End> {
        match event {
            LegEvent::Hold(held) => {
                if held {
                    tracing::info!("agent put the caller on hold");
                } else {
                    tracing::info!("agent took the caller off hold");
                }
                self.agent_holds = held;
                self.apply_mix();
            }
            LegEvent::Digit(d) => {
                // The agent's keys go to the line they are talking to: one
                // brought in or consulted (its own menu: "press 1 for..."),
                // else the caller.
                let to = self
                    .talking_target()
                    .or_else(|| self.consult.as_ref().and_then(|c| c.stream()))
                    .or(self.stream.as_ref());
                if let Some(stream) = to {
                    stream.send_digit(d);
                }
            }
            LegEvent::Refer(target) => {
                tracing::info!(%target, "agent's softphone asked for a transfer");
                self.start_transfer(crate::call::transfer::Kind::Blind, target, Asker::Refer)
                    .await;
            }
            LegEvent::ReferReplaces { target, replaces } => {
                tracing::info!(%target, consult = %replaces.call_id, "REFER with Replaces from the agent's softphone");
                self.refer_replaces(&replaces).await;
            }
            LegEvent::Ended { .. } if self.third.is_some() => {
                self.agent_left_third().await;
            }
            LegEvent::Ended { by_agent } => {
                self.end_agent().await;
                if !by_agent {
                    return Some(self.hang_up(End::SeatLost));
                }
                return self.start_survey();
            }
            // The call records on the caller's stream, not the agent's.
            LegEvent::Answered | LegEvent::Failed { .. } | LegEvent::Recording { .. } => {}
        }
        None
    }

    /// Parts the caller from the agent; the seat goes to wrap-up.
    async fn end_agent(&mut self) {
        self.end_supervisor().await;
        let Some(leg) = self.agent.take() else { return };
        self.forget_mute(crate::call::mixplan::Party::Agent);
        self.shared
            .directory
            .seat_off_call(&leg.seat, &self.record.call_id);
        // With a third party on, the conversation (and its recording) goes
        // on without the agent.
        if self.third.is_none()
            && let Some(stream) = &self.stream
        {
            stream.stop_recording();
            stream.unbridge();
            stream.stop_playback();
        }
        self.record.seat_ended_at = Some(now_ms());
        self.shared
            .acd
            .events
            .publish(crate::acd::events::SeatEvent::Ended {
                seat: leg.seat.clone(),
                call_id: self.record.call_id.clone(),
            });
        self.shared
            .acd
            .handle(AcdEvent::CallEnded {
                seat: leg.seat.clone(),
            })
            .ok();
        leg.close(self.shared).await;
        if self.third.is_some() {
            self.apply_mix();
        }
    }

    /// A supervisor request from the API.
    async fn on_command(&mut self, command: CallCommand) {
        match command {
            CallCommand::Monitor {
                supervisor,
                mode,
                reply,
            } => {
                reply.send(self.monitor(supervisor, mode)).ok();
            }
            CallCommand::StopMonitor { reply } => {
                let result = if self.supervisor.is_some() {
                    self.end_supervisor().await;
                    Ok("left")
                } else {
                    Err(ControlError::NoSupervisor)
                };
                reply.send(result).ok();
            }
            CallCommand::Transfer {
                kind,
                target,
                reply,
            } => {
                self.start_transfer(kind, target, Asker::Api(reply)).await;
            }
            CallCommand::Complete { reply } => {
                reply.send(self.complete().await).ok();
            }
            CallCommand::CancelTransfer { reply } => {
                reply.send(self.cancel_transfer().await).ok();
            }
            CallCommand::Leave { reply } => {
                reply.send(self.leave().await).ok();
            }
            CallCommand::Mute {
                party,
                muted,
                reply,
            } => {
                reply.send(self.mute(party, muted)).ok();
            }
            CallCommand::Consult(invite) => self.on_consult(*invite).await,
            CallCommand::Describe { reply } => {
                let ivr_path = match (&self.main_ivr, &self.ivr) {
                    (Some(main), _) => main.path.clone(),
                    (None, Some(ivr)) => ivr.path(),
                    (None, None) => Vec::new(),
                };
                reply
                    .send(crate::call::control::CallFacts {
                        caller: self.record.caller.clone(),
                        seat: self.agent.as_ref().map(|a| a.seat.clone()),
                        ivr_path,
                        recording: self.wav.as_ref().map(|w| w.path().display().to_string()),
                        survey_score: None,
                    })
                    .ok();
            }
        }
    }

    fn monitor(&mut self, seat: String, mode: MonitorMode) -> Result<&'static str, ControlError> {
        if self.agent.is_none() {
            return Err(ControlError::NotConnected);
        }
        if let Some(leg) = &self.supervisor {
            if leg.seat != seat {
                return Err(ControlError::OtherSupervisor(leg.seat.clone()));
            }
            self.monitor = mode;
            if leg.answered() {
                self.apply_mix();
            }
            tracing::info!(supervisor = %seat, ?mode, "monitor mode changed");
            return Ok("mode changed");
        }
        let binding = self
            .seat_binding(&seat)
            .ok_or_else(|| ControlError::NotRegistered(seat.clone()))?;
        let leg = self
            .dial_seat(&seat, &binding)
            .map_err(|e| ControlError::Dial(seat.clone(), e.to_string()))?;
        tracing::info!(supervisor = %seat, ?mode, "ringing supervisor");
        self.monitor = mode;
        self.supervisor = Some(leg);
        Ok("ringing")
    }

    async fn on_supervisor(&mut self, event: LegEvent) {
        match event {
            LegEvent::Answered => {
                tracing::info!(mode = ?self.monitor, "supervisor joined");
                self.apply_mix();
            }
            LegEvent::Failed { status } => {
                tracing::info!(status, "supervisor did not answer");
                if let Some(leg) = self.supervisor.take() {
                    leg.close(self.shared).await;
                }
            }
            LegEvent::Ended { .. } => {
                tracing::info!("supervisor left");
                self.end_supervisor().await;
            }
            LegEvent::Hold(_)
            | LegEvent::Recording { .. }
            | LegEvent::Digit(_)
            | LegEvent::Refer(_)
            | LegEvent::ReferReplaces { .. } => {}
        }
    }

    /// The supervisor's leg ends; caller and agent hear only each other.
    async fn end_supervisor(&mut self) {
        let Some(leg) = self.supervisor.take() else {
            return;
        };
        self.forget_mute(crate::call::mixplan::Party::Supervisor);
        self.apply_mix();
        leg.close(self.shared).await;
    }

    /// Whether a waiting caller may leave the queue for a call-back now.
    fn may_call_back(&self) -> bool {
        self.config.callback.offer
            && self.queue.is_some()
            && self.agent.is_none()
            && self.ringing.is_empty()
            && !self.callback_confirming
    }

    /// "We have your number and will call you back", then the caller goes.
    fn confirm_callback(&mut self) {
        tracing::info!("caller keeps their place for a call-back");
        self.callback_confirming = true;
        self.record.callback_requested = true;
        self.play_system_prompt("callback_confirm", CALLBACK_CONFIRM);
    }

    /// Plays one of the queue's own prompts, in the caller's language, as
    /// playlist `id`. A missing prompt plays as an empty list, whose end
    /// is reported at once, so what waits for it goes on.
    fn play_system_prompt(&self, name: &str, id: u64) {
        let Some(stream) = &self.stream else { return };
        let language = match &self.ivr {
            Some(ivr) => ivr.language().to_owned(),
            None => self.config.ivr.default_language.clone(),
        };
        let prompt = self
            .flows
            .prompts
            .resolve(&language, &self.config.ivr.default_language, name);
        stream.play(crate::media::engine::Playlist {
            id,
            prompts: prompt.into_iter().collect(),
            loop_from: None,
        });
    }

    /// The queue place passes to a call-back task; the caller is let go.
    fn hand_over_for_callback(&mut self) -> End {
        if let Some(q) = self.queue.take() {
            let job = super::callback::CallbackJob {
                queue_id: q.id,
                queue: q.name,
                events: q.events,
                record: q.record,
                reject_pause: q.reject_pause,
                caller: self.record.caller.clone(),
                asked_on: self.record.call_id.clone(),
                config: self.config.clone(),
            };
            tokio::spawn(super::callback::run(self.owner.clone(), job));
        }
        self.hang_up(End::CallbackQueued)
    }

    /// After the agent hangs up the caller rates the call.
    fn start_survey(&mut self) -> Option<End> {
        let survey = self.config.ivr.survey_flow.clone();
        if let Some(ivr) = self.ivr.take() {
            self.main_ivr = Some(ivr.into_record());
        }
        let Some(stream) = &self.stream else {
            return Some(self.hang_up(End::AgentBye));
        };
        let Some(mut ivr) = self.enter_flow(&survey, Instant::now()) else {
            return Some(self.hang_up(End::AgentBye));
        };
        tracing::info!(flow = %survey, "agent hung up: survey");
        let request = ivr.pump(stream);
        self.ivr = Some(ivr);
        (request == IvrRequest::Hangup).then(|| self.hang_up(End::FlowHangup))
    }

    /// Runs `f` on the IVR and the stream, when both are there.
    fn with_ivr(&mut self, f: impl FnOnce(&mut IvrRun, &StreamHandle) -> IvrRequest) -> IvrRequest {
        match (&mut self.ivr, &self.stream) {
            (Some(ivr), Some(stream)) => f(ivr, stream),
            _ => IvrRequest::Continue,
        }
    }

    fn on_digit(&mut self, digit: char) -> IvrRequest {
        tracing::info!(%digit, "DTMF");
        self.digits.push(digit);
        // In conversation the key is the agent's to hear (a phone menu on
        // the other side, an extension).
        if let Some(agent) = self.agent.as_ref().and_then(SeatLeg::stream) {
            agent.send_digit(digit);
            return IvrRequest::Continue;
        }
        if let Some(target) = self.talking_target() {
            target.send_digit(digit);
            return IvrRequest::Continue;
        }
        if digit == '1' && self.may_call_back() {
            self.confirm_callback();
            return IvrRequest::Continue;
        }
        self.with_ivr(|ivr, s| ivr.digit(digit, s))
    }

    /// Handles one dialog state; returns the end when the call is over.
    async fn on_state(&mut self, state: DialogState) -> Option<End> {
        match state {
            DialogState::Confirmed(..) if self.negotiated.is_none() => {
                return self.on_late_answer().await;
            }
            DialogState::Updated(_, req, handle) => self.on_modify(req, handle).await,
            DialogState::Info(_, req, handle) => return self.on_info(req, handle).await,
            DialogState::Options(_, _, handle) => {
                handle
                    .respond(StatusCode::OK, Some(capabilities()), None)
                    .await
                    .ok();
            }
            DialogState::Refer(_, _, handle)
            | DialogState::Notify(_, _, handle)
            | DialogState::Message(_, _, handle)
            | DialogState::Publish(_, _, handle) => {
                super::in_dialog::refuse_method(&handle).await;
            }
            DialogState::Terminated(_, reason) => return Some(self.terminated(reason)),
            _ => {}
        }
        None
    }

    /// The ACK of a late-offer call carries the caller's answer.
    async fn on_late_answer(&mut self) -> Option<End> {
        let body = self
            .dialog
            .last_remote_ack()
            .map(|ack| ack.body)
            .unwrap_or_default();
        match sdp::parse(&body).and_then(|a| sdp::accept_answer(&a)) {
            Ok(n) => {
                self.apply_media(n);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "late-offer ACK without a usable answer");
                Some(self.hang_up(End::BadAnswer))
            }
        }
    }

    /// re-INVITE or UPDATE: new SDP (hold/unhold, new address) and/or a
    /// session refresh.
    async fn on_modify(&mut self, req: Request, handle: TransactionHandle) {
        let mut extra = capabilities();
        if self.timer.is_some() || req.header_value("Session-Expires").is_some() {
            let ask = TimerRequest::from_headers(
                req.header_value("Session-Expires").as_deref(),
                req.header_value("Min-SE").as_deref(),
                headers::lists_token(&req, "Supported", "timer"),
            );
            match session_timer::negotiate(
                &ask,
                self.config.sip.session_expires_secs,
                self.config.sip.min_se_secs,
            ) {
                Decision::TooSmall { min_se } => {
                    let extra = vec![headers::other("Min-SE", min_se.to_string())];
                    handle
                        .respond(StatusCode::SessionIntervalTooSmall, Some(extra), None)
                        .await
                        .ok();
                    return;
                }
                Decision::Grant(g) => {
                    extra.push(headers::other("Session-Expires", g.header_value()));
                    if g.require_timer(&ask) {
                        extra.push(Header::Require("timer".into()));
                    }
                    self.timer = Some(g);
                }
                // A refresh without Session-Expires keeps the interval.
                Decision::None => {
                    if let Some(g) = &self.timer {
                        extra.push(headers::other("Session-Expires", g.header_value()));
                    }
                }
            }
            self.refreshed_at = Instant::now();
        }
        if super::in_dialog::has_offer(&req) {
            let Some(n) = super::in_dialog::accept_offer(&req, &handle).await else {
                return;
            };
            tracing::info!(direction = ?n.remote_direction, "media renegotiated");
            self.local.version += 1;
            self.apply_media(n);
        }
        super::in_dialog::answer_modify(
            &req,
            &handle,
            extra,
            &self.local,
            self.negotiated.as_ref(),
        )
        .await;
    }

    fn apply_media(&mut self, n: Negotiated) {
        if let Some(stream) = &self.stream {
            stream.update(super::in_dialog::stream_config(&n));
        }
        self.negotiated = Some(n);
    }

    /// SIP INFO: a DTMF digit (or a probe); returns an end if the flow hangs up.
    async fn on_info(&mut self, req: Request, handle: TransactionHandle) -> Option<End> {
        let content_type = headers::content_type(&req);
        match parse_info_body(&content_type, &req.body) {
            Some(digit) => {
                self.shared
                    .metrics
                    .dtmf_info_digits
                    .fetch_add(1, Ordering::Relaxed);
                handle.reply(StatusCode::OK).await.ok();
                if self.on_digit(digit) == IvrRequest::Hangup {
                    return Some(self.hang_up(End::FlowHangup));
                }
            }
            None if content_type.starts_with("application/dtmf") => {
                handle.reply(StatusCode::BadRequest).await.ok();
            }
            // Empty INFO is a keep-alive probe some phones send.
            None if req.body.is_empty() => {
                handle.reply(StatusCode::OK).await.ok();
            }
            None => {
                let accept = vec![Header::Accept(headers::ACCEPT.into())];
                handle
                    .respond(StatusCode::UnsupportedMediaType, Some(accept), None)
                    .await
                    .ok();
            }
        }
        None
    }

    /// RFC 4028 refresh when we are the refresher; false if it failed.
    async fn refresh_session(&mut self) -> bool {
        let Some(timer) = self.timer else { return true };
        let extra = vec![
            headers::other("Session-Expires", timer.header_value()),
            Header::Supported(headers::SUPPORTED.into()),
        ];
        match self.dialog.update(Some(extra), None).await {
            Ok(Some(resp)) if u16::from(resp.status_code.clone()) < 300 => {
                self.refreshed_at = Instant::now();
                true
            }
            other => {
                tracing::warn!(?other, "session refresh failed");
                false
            }
        }
    }

    fn terminated(&mut self, reason: TerminatedReason) -> End {
        match reason {
            TerminatedReason::UacBye => End::CallerBye,
            TerminatedReason::UacCancel => {
                self.status = 487;
                End::Cancelled
            }
            TerminatedReason::Timeout => End::NoAck,
            _ => End::Other,
        }
    }

    async fn wait_terminated(&mut self) -> End {
        loop {
            match self.states.recv().await {
                Some(DialogState::Terminated(_, reason)) => return self.terminated(reason),
                Some(_) => {}
                None => return End::Other,
            }
        }
    }

    /// Sends BYE. The BYE transaction runs on by itself: a caller that
    /// vanished never answers it, and its record must not wait 32 s for that.
    fn hang_up(&mut self, end: End) -> End {
        tracing::info!(reason = end.reason(), "hanging up");
        let dialog = self.dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = dialog.bye().await {
                tracing::debug!(error = %e, "BYE failed");
            }
        });
        end
    }

    async fn finish(mut self, end: End) -> CallRecord {
        self.leave_acd().await;
        let stats = match self.stream.take() {
            Some(s) => s.close().await,
            None => StreamStats::default(),
        };
        let id: DialogId = self.dialog.id();
        self.shared.dialogs.remove_dialog(&id);
        let result = match (end, self.answered_at) {
            (End::Cancelled, _) => CallResult::Cancelled,
            (_, Some(_)) => CallResult::Answered,
            _ => CallResult::Failed,
        };
        let mut record = std::mem::take(&mut self.record);
        record.answered_at = self.answered_at;
        record.status = if self.status == 0 { 500 } else { self.status };
        record.codec = self.negotiated.as_ref().map(|n| n.law.name().to_owned());
        record.digits = std::mem::take(&mut self.digits);
        let wav = self.wav.take();
        if let Some(wav) = wav {
            record.call_recording = wav.finish().await;
        }
        if let Some(ivr) = self.ivr.take() {
            if !end.by_hotline() {
                ivr.caller_left();
            }
            let survey = ivr.into_record();
            // After an agent, the flow record is the main flow's; the survey
            // adds its rating.
            let r = match self.main_ivr.take() {
                Some(mut main) => {
                    main.survey_score = survey.survey_score.or(main.survey_score);
                    main
                }
                None => survey,
            };
            record.flow = r.flow;
            record.flow_hash = r.flow_hash;
            record.flow_path = r.path;
            record.final_action = r.final_action;
            // After an overflow the record names the queue the call ended
            // in; the flow's choice stays in final_action.
            record.queue = record.queue.or(r.queue);
            record.survey_score = r.survey_score;
            record.callback_requested |= r.callback_requested;
            record.recording = r.recording;
            record.language = r.language;
        }
        finish_record(record, end, Some(stats), self.shared, result)
    }
}

impl Call<'_> {
    /// The call is over: it leaves the queue (a missed call if it was still
    /// waiting), ringing seats stop, the agent's leg ends, and the last part
    /// of the recording is collected.
    async fn leave_acd(&mut self) {
        for leg in std::mem::take(&mut self.ringing) {
            leg.close(self.shared).await;
        }
        self.end_third("caller-left").await;
        if let Some(consult) = self.consult.take() {
            consult.close(self.shared).await;
        }
        self.end_agent().await;
        if let Some(q) = self.queue.take() {
            self.shared.acd.leave(q.id);
        }
        if self.wav.is_some() {
            // Already stopped if the agent was still on; not if the caller
            // was with a transfer target.
            if let Some(stream) = &self.stream {
                stream.stop_recording();
            }
            // The engine answers stop_recording with the last part.
            let deadline = Instant::now() + Duration::from_millis(500);
            while let Ok(Some(event)) =
                tokio::time::timeout_at(deadline, self.media_events.recv()).await
            {
                match event {
                    MediaEvent::RecordedStereoPart(samples) => {
                        if let Some(wav) = &self.wav {
                            wav.push(samples);
                        }
                    }
                    MediaEvent::RecordedStereo(samples) => {
                        if let Some(wav) = &self.wav {
                            wav.push(samples);
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The playlist id of the call-back confirmation (IVR playlists count up
/// from 1).
const CALLBACK_CONFIRM: u64 = u64::MAX - 1;
/// The playlist id of "all agents are busy" at the longest wait.
const QUEUE_TIMEOUT: u64 = u64::MAX - 2;

/// The next ACD event, or never when the call is not queued.
async fn recv_queue(queue: &mut Option<Queued>) -> Option<QueueEvent> {
    match queue {
        Some(q) => q.events.recv().await,
        None => std::future::pending().await,
    }
}

/// The next event of any ringing seat, with its index.
async fn next_ringing(legs: &mut [SeatLeg]) -> (usize, LegEvent) {
    if legs.is_empty() {
        return std::future::pending().await;
    }
    let (event, i, _) =
        futures::future::select_all(legs.iter_mut().map(|l| Box::pin(l.next()))).await;
    (i, event)
}

/// The next event of the connected agent's leg.
async fn next_agent(agent: &mut Option<SeatLeg>) -> LegEvent {
    match agent {
        Some(leg) => leg.next().await,
        None => std::future::pending().await,
    }
}

/// The next lookup answer, or never when there is no IVR.
async fn recv_answer(ivr: &mut Option<IvrRun>) -> Option<crate::ivr::interpreter::Answer> {
    match ivr {
        Some(ivr) => ivr.answers.recv().await,
        None => std::future::pending().await,
    }
}

fn finish_record(
    mut record: CallRecord,
    end: End,
    stats: Option<StreamStats>,
    shared: &Shared,
    result: CallResult,
) -> CallRecord {
    shared.metrics.call_ended(result);
    record.ended_at = now_ms();
    record.end_reason = end.reason().into();
    record.hangup_by = if record.answered_at.is_none() {
        String::new()
    } else if end.by_hotline() {
        "hotline".into()
    } else {
        "caller".into()
    };
    if let Some(s) = stats {
        record.rtp = RtpSummary {
            packets_in: s.packets_in as i64,
            packets_out: s.packets_out as i64,
            octets_in: s.octets_in as i64,
            octets_out: s.octets_out as i64,
            lost: s.lost,
            late: s.late as i64,
            jitter_ms: s.jitter_ms,
            peer_lost: s.peer_lost.map(i64::from),
            peer_jitter_ms: s.peer_jitter_ms,
        };
    }
    record
}

fn contact_uri(user: &str, ip: IpAddr, port: u16, transport: &str) -> rsipstack::sip::Uri {
    let host = match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let suffix = if transport == "tcp" {
        ";transport=tcp"
    } else {
        ""
    };
    let text = format!("sip:{user}@{host}:{port}{suffix}");
    rsipstack::sip::Uri::try_from(text.as_str()).unwrap_or_default()
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}
