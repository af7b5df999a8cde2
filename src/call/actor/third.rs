//! The caller's actor with a third party on the line: blind and attended
//! transfers, three-way calls, the IVR's transfers to a trunk, mute, and
//! who hears whom as parties come and go.
//!
//! The rule that shapes all of it: the caller is never dropped. A target
//! that is busy, does not answer or cannot be reached brings the caller
//! back to the agent with a prompt; with no agent left (they hung up after
//! asking, or the IVR sent the caller) the caller goes back to the head of
//! a queue.

use super::{Call, End, now_ms};
use crate::acd::events::SeatEvent;
use crate::call::consult_leg::{ConsultInvite, ConsultLeg};
use crate::call::control::{Attempt, ControlError};
use crate::call::mixplan::{self, Party, Roster, TargetRole};
use crate::call::seat_leg::{LegEvent, SeatLeg};
use crate::call::transfer::{Event, Kind, Outcome, Replaces};
use crate::media::engine::StreamHandle;
use rsipstack::sip::Header;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The playlist id of "the transfer did not go through".
pub(super) const TRANSFER_FAILED: u64 = u64::MAX - 3;

/// Who asked for the transfer, and so who hears how it went.
pub(super) enum Asker {
    Api(oneshot::Sender<Result<Attempt, ControlError>>),
    /// The agent's softphone, by REFER: NOTIFYs on the agent's leg.
    Refer,
    /// A transfer node of the IVR flow.
    Ivr,
    /// The agent's softphone dialled the target on a second line (the
    /// consult leg), which answers or fails as the target does.
    Phone,
    /// Already told, or nobody left to tell.
    Told,
}

impl Asker {
    fn via(&self) -> &'static str {
        match self {
            Asker::Api(_) => "api",
            Asker::Refer => "refer",
            Asker::Ivr => "ivr",
            Asker::Phone => "phone",
            Asker::Told => "",
        }
    }
}

/// The third party on the call.
pub(super) struct Third {
    kind: Kind,
    target: String,
    /// Its event in the record's transfers.
    event: usize,
    leg: SeatLeg,
    /// When ringing counts as no answer.
    ring_until: Instant,
    /// `None` while it rings.
    role: Option<TargetRole>,
    asker: Asker,
    /// A seat brought in: in call for the ACD until its leg ends.
    seat: Option<String>,
}

/// Where a target is and how to call it.
struct Route {
    binding: crate::sip::registrar::Binding,
    from_user: String,
    headers: Vec<Header>,
    credential: Option<rsipstack::dialog::authenticate::Credential>,
    ring: Duration,
    trunk: Option<String>,
    /// The target is a seat (engaged in the ACD while on the call).
    seat: Option<String>,
}

/// How long a seat brought in as a target may ring.
const SEAT_RING: Duration = Duration::from_secs(30);

impl Call<'_> {
    /// The agent (or the IVR) asks to bring `target` in.
    pub(super) async fn start_transfer(&mut self, kind: Kind, target: String, asker: Asker) {
        let by = match (&asker, &self.agent) {
            (Asker::Ivr, _) => "ivr".to_owned(),
            (_, Some(agent)) => agent.seat.clone(),
            (_, None) => return self.refuse(asker, ControlError::NotConnected),
        };
        if let Some(t) = &self.third {
            let busy = ControlError::TransferBusy(t.target.clone());
            return self.refuse(asker, busy);
        }
        let route = match self.route(&target).await {
            Ok(r) => r,
            Err(e) => return self.refuse(asker, e),
        };
        // A seat brought in is taken out of the queues first, so the ACD
        // never offers it a caller meanwhile.
        if let Some(seat) = &route.seat {
            let call = self.shared.acd.new_call_id();
            let engaged = crate::acd::router::Event::Engaged {
                seat: seat.clone(),
                call,
            };
            if self.shared.acd.handle(engaged).is_err() {
                return self.refuse(asker, ControlError::SeatBusy(seat.clone()));
            }
        }
        let event = self.record.transfers.len();
        self.record.transfers.push(Event {
            kind: kind.as_str().into(),
            by: by.clone(),
            target: target.clone(),
            via: asker.via().into(),
            asked_at: now_ms(),
            ..Event::default()
        });
        tracing::info!(kind = kind.as_str(), %target, %by, via = asker.via(), "transfer asked");
        let down = route
            .trunk
            .as_deref()
            .is_some_and(|t| self.shared.trunks.state(t) == crate::sip::trunks::TrunkState::Down);
        let leg = if down {
            self.release_seat(route.seat.as_deref());
            Err(Outcome::TrunkDown)
        } else {
            self.dial_beside(
                &target,
                &route.binding,
                &route.from_user,
                route.headers.clone(),
                route.credential.clone(),
            )
            .map_err(|e| {
                tracing::warn!(%target, error = %e, "cannot dial the transfer target");
                self.release_seat(route.seat.as_deref());
                Outcome::Unreachable
            })
        };
        match leg {
            Ok(leg) => {
                if matches!(asker, Asker::Ivr) {
                    // The transfer node's own prompts and music are playing.
                    self.caller_music = true;
                }
                self.third = Some(Third {
                    kind,
                    target: target.clone(),
                    event,
                    leg,
                    ring_until: Instant::now() + route.ring,
                    role: None,
                    asker,
                    seat: route.seat,
                });
                if let Some(Third {
                    asker: Asker::Refer,
                    ..
                }) = &self.third
                    && let Some(agent) = &mut self.agent
                {
                    agent.notify_refer("SIP/2.0 100 Trying\r\n".into(), false);
                }
                self.publish_transfer(&by, kind, &target, "ringing", None);
                self.apply_mix();
            }
            Err(outcome) => {
                self.record.transfers[event].ended_at = Some(now_ms());
                self.attempt_failed(event, kind, &target, asker, outcome, None);
            }
        }
    }

    /// Refuses a request before anything was dialled.
    fn refuse(&mut self, asker: Asker, error: ControlError) {
        tracing::info!(%error, via = asker.via(), "transfer refused");
        match asker {
            Asker::Api(reply) => {
                reply.send(Err(error)).ok();
            }
            Asker::Refer => {
                let frag = match error {
                    ControlError::UnknownTarget(..) => "SIP/2.0 404 Not Found\r\n",
                    _ => "SIP/2.0 403 Forbidden\r\n",
                };
                if let Some(agent) = &mut self.agent {
                    agent.notify_refer(frag.into(), true);
                }
            }
            // The flow's target is unusable (`flows check` prevents most
            // of this): the caller waits for a person instead.
            Asker::Ivr => self.requeue(),
            Asker::Phone => {
                let status = match error {
                    ControlError::UnknownTarget(..) | ControlError::NotRegistered(_) => 404,
                    ControlError::SeatBusy(_) => 486,
                    _ => 403,
                };
                self.drop_consult(status);
            }
            Asker::Told => {}
        }
    }

    /// Where the target is: a seat with a registered phone, else a trunk
    /// by name, else a number through the outside-line trunk.
    async fn route(&self, target: &str) -> Result<Route, ControlError> {
        if !crate::call::transfer::valid_target(target) {
            return Err(ControlError::UnknownTarget(
                target.into(),
                "not a trunk, seat or number".into(),
            ));
        }
        let is_seat = self.shared.acd.seats().iter().any(|s| s.seat == target);
        if is_seat {
            let binding = self
                .seat_binding(target)
                .ok_or_else(|| ControlError::NotRegistered(target.into()))?;
            return Ok(Route {
                binding,
                from_user: self.record.caller.clone(),
                headers: Vec::new(),
                credential: None,
                ring: SEAT_RING,
                trunk: None,
                seat: Some(target.to_owned()),
            });
        }
        let route = crate::sip::trunks::route(&self.config, target)
            .await
            .map_err(|e| ControlError::UnknownTarget(target.into(), e.to_string()))?;
        let host = match self.shared.sip_addr.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let identity = crate::sip::trunks::caller_id(
            route.caller_id,
            &self.record.caller,
            &self.config.sip.hotline_number,
            &host,
        );
        Ok(Route {
            binding: route.binding,
            from_user: identity.from_user,
            headers: identity.headers,
            credential: route.credential,
            ring: route.ring,
            trunk: Some(route.trunk),
            seat: None,
        })
    }

    /// The target's leg answered, failed or ended.
    pub(super) async fn on_third(&mut self, event: LegEvent) -> Option<End> {
        match event {
            LegEvent::Answered => self.third_answered().await,
            LegEvent::Failed { status } => {
                self.third_failed(Outcome::of_status(status), Some(status))
                    .await;
            }
            LegEvent::Ended { .. } => return self.third_left().await,
            LegEvent::Digit(d) => {
                if self.third.as_ref().is_some_and(|t| t.role.is_some())
                    && let Some(stream) = &self.stream
                {
                    stream.send_digit(d);
                }
            }
            // A trunk or seat does not get to transfer our caller.
            LegEvent::Refer(_) | LegEvent::ReferReplaces { .. } => {
                if let Some(t) = &mut self.third {
                    t.leg.notify_refer("SIP/2.0 603 Decline\r\n".into(), true);
                }
            }
            LegEvent::Hold(_) | LegEvent::Recording { .. } => {}
        }
        None
    }

    /// The target rang too long.
    pub(super) async fn third_ring_timeout(&mut self) {
        tracing::info!("transfer target did not answer in time");
        self.third_failed(Outcome::NoAnswer, None).await;
    }

    /// When the ringing target counts as not answering; never otherwise.
    pub(super) fn third_deadline(&self) -> Option<Instant> {
        self.third
            .as_ref()
            .filter(|t| t.role.is_none())
            .map(|t| t.ring_until)
    }

    async fn third_answered(&mut self) {
        let Some(t) = &mut self.third else { return };
        let now = now_ms();
        let event = &mut self.record.transfers[t.event];
        event.answered_at = Some(now);
        event.result = Outcome::Answered.as_str().into();
        let by = event.by.clone();
        let agent_here = self.agent.is_some();
        t.role = Some(match t.kind {
            Kind::Attended if agent_here => TargetRole::Consult,
            _ => TargetRole::Joined,
        });
        let (kind, target) = (t.kind, t.target.clone());
        let caller_with = match (kind, agent_here) {
            (Kind::Attended, true) => "hold",
            (Kind::Conference, true) => "agent-and-target",
            _ => "target",
        };
        // Told before the agent's leg ends: a REFER's final NOTIFY goes out
        // ahead of the BYE.
        self.tell_asker(Outcome::Answered, None, caller_with);
        tracing::info!(kind = kind.as_str(), %target, "transfer target answered");
        self.publish_transfer(&by, kind, &target, "answered", None);
        if kind == Kind::Blind && agent_here {
            // The caller goes on with the target; the agent is free.
            self.end_agent().await;
        }
        self.apply_mix();
    }

    /// Reports the outcome to whoever asked (once).
    fn tell_asker(&mut self, outcome: Outcome, status: Option<u16>, caller_with: &'static str) {
        let Some(t) = &mut self.third else { return };
        let asker = std::mem::replace(&mut t.asker, Asker::Told);
        self.report(asker, outcome, status, caller_with);
    }

    fn report(
        &mut self,
        asker: Asker,
        outcome: Outcome,
        status: Option<u16>,
        caller_with: &'static str,
    ) {
        match asker {
            Asker::Api(reply) => {
                let attempt = Attempt {
                    outcome,
                    status,
                    caller_with,
                };
                reply.send(Ok(attempt)).ok();
            }
            Asker::Refer => {
                if let Some(agent) = &mut self.agent {
                    agent.notify_refer(outcome.sipfrag(status), true);
                }
            }
            Asker::Phone if outcome == Outcome::Answered => {
                if let Some(consult) = &mut self.consult {
                    consult.answer();
                }
            }
            Asker::Phone => {
                let code = status.filter(|s| *s >= 300).unwrap_or(match outcome {
                    Outcome::Busy => 486,
                    Outcome::NoAnswer => 480,
                    Outcome::Cancelled => 487,
                    _ => 503,
                });
                self.drop_consult(code);
            }
            Asker::Ivr | Asker::Told => {}
        }
    }

    /// The consult leg fails with `status` and goes.
    fn drop_consult(&mut self, status: u16) {
        if let Some(mut consult) = self.consult.take() {
            consult.reject(status);
            let owner = self.owner.clone();
            tokio::spawn(async move { consult.close(&owner).await });
        }
    }

    /// The agent's softphone dialled a consult call while on this call.
    pub(super) async fn on_consult(&mut self, invite: ConsultInvite) {
        let ours = self.agent.as_ref().is_some_and(|a| a.seat == invite.seat);
        let free = self.third.is_none() && self.consult.is_none();
        let (Some(stream), true, true) = (&self.stream, ours, free) else {
            tracing::info!(seat = %invite.seat, target = %invite.target, "consult call refused: a transfer is in progress");
            let mut tx = invite.tx;
            tokio::spawn(async move { tx.reply(rsipstack::sip::StatusCode::BusyHere).await.ok() });
            return;
        };
        let target = invite.target.clone();
        match ConsultLeg::ring(self.shared, invite, stream) {
            Ok(leg) => {
                tracing::info!(%target, "agent consults from the softphone");
                self.consult = Some(leg);
                self.start_transfer(Kind::Attended, target, Asker::Phone)
                    .await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot take the consult call"),
        }
    }

    /// The consult leg hung up, or a key on it.
    pub(super) async fn on_consult_leg(&mut self, event: LegEvent) {
        match event {
            LegEvent::Ended { .. } => {
                tracing::info!("agent ended the consult call");
                if let Some(consult) = self.consult.take() {
                    consult.close(self.shared).await;
                }
                if self
                    .third
                    .as_ref()
                    .is_some_and(|t| t.role != Some(TargetRole::Joined))
                {
                    self.end_third("agent-cancelled").await;
                }
                self.apply_mix();
            }
            LegEvent::Digit(d) => {
                if let Some(target) = self.talking_target() {
                    target.send_digit(d);
                }
            }
            _ => {}
        }
    }

    /// REFER with Replaces from the agent's softphone: if it names the
    /// consult call in progress, the caller goes on with the target and
    /// both of the agent's lines end.
    pub(super) async fn refer_replaces(&mut self, replaces: &Replaces) {
        let consulting = self
            .third
            .as_ref()
            .is_some_and(|t| t.role == Some(TargetRole::Consult));
        let named = self
            .consult
            .as_ref()
            .is_some_and(|c| c.replaced_by(replaces));
        let ringing = self.third.as_ref().is_some_and(|t| t.role.is_none());
        if !((consulting || ringing) && named) {
            tracing::info!(consult = %replaces.call_id, "REFER with Replaces names no consult in progress");
            if let Some(agent) = &mut self.agent {
                agent.notify_refer(
                    "SIP/2.0 481 Call/Transaction Does Not Exist\r\n".into(),
                    true,
                );
            }
            return;
        }
        if let Some(agent) = &mut self.agent {
            agent.notify_refer(Outcome::Answered.sipfrag(None), true);
        }
        if let Some(t) = &mut self.third {
            self.record.transfers[t.event].via = "refer".into();
            if ringing {
                // Transferred while the target still rings (semi-attended):
                // the caller waits for it as after a blind transfer, and a
                // failure brings them to the head of the queue.
                t.kind = Kind::Blind;
                t.asker = Asker::Told;
            }
        }
        if ringing {
            tracing::info!("agent's softphone transfers while the target rings");
            self.drop_consult(487);
            self.end_agent().await;
            self.apply_mix();
            return;
        }
        tracing::info!("agent's softphone completes an attended transfer");
        self.complete().await.ok();
        if let Some(consult) = self.consult.take() {
            consult.close(self.shared).await;
        }
        self.apply_mix();
    }

    /// The target never came on: the caller is back with the agent (or
    /// in the queue), and whoever asked learns why.
    async fn third_failed(&mut self, outcome: Outcome, status: Option<u16>) {
        let Some(t) = self.third.take() else { return };
        let Third {
            kind,
            target,
            event,
            leg,
            asker,
            seat,
            ..
        } = t;
        leg.close(self.shared).await;
        self.release_seat(seat.as_deref());
        self.forget_mute(Party::Target);
        self.record.transfers[event].ended_at = Some(now_ms());
        self.attempt_failed(event, kind, &target, asker, outcome, status);
    }

    fn attempt_failed(
        &mut self,
        event: usize,
        kind: Kind,
        target: &str,
        asker: Asker,
        outcome: Outcome,
        status: Option<u16>,
    ) {
        let record = &mut self.record.transfers[event];
        record.result = outcome.as_str().into();
        record.status = status;
        record.ending = Some("failed".into());
        let by = record.by.clone();
        let with_agent = self.agent.is_some();
        let caller_with = if with_agent { "agent" } else { "queue" };
        self.report(asker, outcome, status, caller_with);
        tracing::info!(
            kind = kind.as_str(),
            %target,
            result = outcome.as_str(),
            status,
            "transfer failed: caller back"
        );
        self.publish_transfer(&by, kind, target, "failed", Some(outcome));
        if with_agent {
            // A caller who held for the transfer hears why they are back;
            // in a three-way call they never left the agent.
            let held = self.caller_music;
            self.apply_mix();
            if held || kind != Kind::Conference {
                self.play_system_prompt("transfer_failed", TRANSFER_FAILED);
            }
        } else {
            self.requeue();
        }
    }

    /// The target hung up.
    async fn third_left(&mut self) -> Option<End> {
        tracing::info!("transfer target left");
        self.end_third("target-left").await;
        if self.agent.is_some() {
            self.apply_mix();
            None
        } else {
            Some(self.hang_up(End::TargetBye))
        }
    }

    /// Takes the third party off the call (`ending` says why).
    pub(super) async fn end_third(&mut self, ending: &str) {
        if self.third.as_ref().is_some_and(|t| t.role.is_none()) {
            let caller_with = if self.agent.is_some() {
                "agent"
            } else {
                "queue"
            };
            self.tell_asker(Outcome::Cancelled, None, caller_with);
            if let Some(t) = &self.third {
                self.record.transfers[t.event].result = Outcome::Cancelled.as_str().into();
            }
        }
        let Some(t) = self.third.take() else { return };
        self.record.transfers[t.event].end(now_ms(), ending);
        let by = self.record.transfers[t.event].by.clone();
        self.publish_transfer(&by, t.kind, &t.target, "ended", None);
        self.release_seat(t.seat.as_deref());
        self.forget_mute(Party::Target);
        // Who hears whom changes before the target's BYE goes: a caller
        // back from a consult hears no more hold music from then on.
        self.apply_mix();
        t.leg.close(self.shared).await;
    }

    /// A seat brought in is back to the ACD (idle: there is no wrap-up
    /// outside a queue).
    fn release_seat(&self, seat: Option<&str>) {
        if let Some(seat) = seat {
            let ended = crate::acd::router::Event::CallEnded { seat: seat.into() };
            self.shared.acd.handle(ended).ok();
        }
    }

    /// A party that left is unmuted, so whoever takes its place is heard.
    pub(super) fn forget_mute(&mut self, party: Party) {
        self.muted.retain(|p| *p != party);
    }

    /// The agent's leg ended with a third party on the call: a consult
    /// becomes the transfer, a three-way call goes on without the agent,
    /// and a target still ringing takes the caller when it answers.
    pub(super) async fn agent_left_third(&mut self) {
        if let Some(t) = &mut self.third
            && t.role == Some(TargetRole::Consult)
        {
            t.role = Some(TargetRole::Joined);
        }
        tracing::info!("agent left; caller stays with the transfer target");
        self.end_agent().await;
        if let Some(consult) = self.consult.take() {
            consult.close(self.shared).await;
        }
        self.apply_mix();
    }

    /// Completes an attended transfer.
    pub(super) async fn complete(&mut self) -> Result<&'static str, ControlError> {
        let t = self.third.as_mut().ok_or(ControlError::NoTransfer)?;
        match t.role {
            None => Err(ControlError::WrongStage("the target has not answered yet")),
            Some(TargetRole::Joined) => Err(ControlError::WrongStage(
                "caller and target already talk; the agent can leave",
            )),
            Some(TargetRole::Consult) => {
                t.role = Some(TargetRole::Joined);
                tracing::info!(target = %t.target, "attended transfer completed");
                self.end_agent().await;
                Ok("transferred")
            }
        }
    }

    /// Calls off the transfer in progress.
    pub(super) async fn cancel_transfer(&mut self) -> Result<&'static str, ControlError> {
        if self.third.is_none() {
            return Err(ControlError::NoTransfer);
        }
        if self.agent.is_none() {
            return Err(ControlError::NotConnected);
        }
        self.end_third("agent-cancelled").await;
        self.apply_mix();
        Ok("cancelled")
    }

    /// The agent leaves a three-way call.
    pub(super) async fn leave(&mut self) -> Result<&'static str, ControlError> {
        if self.agent.is_none() {
            return Err(ControlError::NotConnected);
        }
        match self.third.as_ref().map(|t| t.role) {
            Some(Some(TargetRole::Joined)) => {
                tracing::info!("agent left the three-way call");
                self.end_agent().await;
                Ok("left")
            }
            Some(_) => Err(ControlError::WrongStage(
                "the target is not in the conversation yet",
            )),
            None => Err(ControlError::NoTransfer),
        }
    }

    pub(super) fn mute(&mut self, party: Party, muted: bool) -> Result<&'static str, ControlError> {
        let present = match party {
            Party::Caller => true,
            Party::Agent => self.agent.is_some(),
            Party::Target => self.third.is_some(),
            Party::Supervisor => self.supervisor.is_some(),
        };
        if !present {
            return Err(ControlError::NotPresent(match party {
                Party::Caller => "caller",
                Party::Agent => "agent",
                Party::Target => "target",
                Party::Supervisor => "supervisor",
            }));
        }
        self.muted.retain(|p| *p != party);
        if muted {
            self.muted.push(party);
        }
        self.apply_mix();
        Ok(if muted { "muted" } else { "unmuted" })
    }

    /// The stream a party speaks and listens on, if it is on the call.
    /// An agent consulting on a second line talks there.
    fn stream_of(&self, party: Party) -> Option<&StreamHandle> {
        match party {
            Party::Caller => self.stream.as_ref(),
            Party::Agent => match &self.consult {
                Some(consult) => consult.stream(),
                None => self.agent.as_ref().and_then(SeatLeg::stream),
            },
            Party::Target => self.third.as_ref().and_then(|t| t.leg.stream()),
            Party::Supervisor => self.supervisor.as_ref().and_then(SeatLeg::stream),
        }
    }

    /// The stream of a target in the conversation (not ringing).
    pub(super) fn talking_target(&self) -> Option<&StreamHandle> {
        self.third
            .as_ref()
            .filter(|t| t.role.is_some())
            .and_then(|t| t.leg.stream())
    }

    /// Sets who hears whom for the parties on the call now, and starts or
    /// stops the caller's hold music.
    pub(super) fn apply_mix(&mut self) {
        let agent = self.agent.is_some();
        let ringing = self.third.as_ref().filter(|t| t.role.is_none());
        let roster = Roster {
            agent,
            // A target ringing for a transfer (or with nobody else to talk
            // to) keeps the caller on hold; a three-way call rings while
            // caller and agent talk on.
            caller_holds: (agent && self.agent_holds)
                || ringing.is_some_and(|t| t.kind != Kind::Conference || !agent),
            target: self.third.as_ref().and_then(|t| t.role),
            supervisor: self
                .supervisor
                .as_ref()
                .filter(|l| l.answered())
                .map(|_| self.monitor),
            muted: self.muted.clone(),
        };
        let plan = mixplan::plan(&roster);
        for (listener, sources) in &plan.hears {
            let Some(stream) = self.stream_of(*listener) else {
                continue;
            };
            let heard: Vec<&StreamHandle> =
                sources.iter().filter_map(|p| self.stream_of(*p)).collect();
            if let Err(e) = stream.hear(&heard) {
                tracing::error!(error = %e, party = ?listener, "cannot set what a party hears");
            }
        }
        // The held first line hears nothing while the agent consults.
        if self.consult.is_some()
            && let Some(first) = self.agent.as_ref().and_then(SeatLeg::stream)
        {
            first.hear(&[]).ok();
        }
        if plan.caller_music == self.caller_music {
            return;
        }
        self.caller_music = plan.caller_music;
        let Some(stream) = &self.stream else { return };
        match (&mut self.ivr, plan.caller_music) {
            (Some(ivr), true) if ringing.is_some() => ivr.hold_after("transfer_wait", stream),
            (Some(ivr), true) => ivr.hold_music(stream),
            _ => stream.stop_playback(),
        }
    }

    fn publish_transfer(
        &self,
        seat: &str,
        kind: Kind,
        target: &str,
        state: &str,
        result: Option<Outcome>,
    ) {
        self.shared.acd.events.publish(SeatEvent::Transfer {
            seat: seat.to_owned(),
            call_id: self.record.call_id.clone(),
            kind: kind.as_str().into(),
            target: target.to_owned(),
            state: state.to_owned(),
            result: result.map(|r| r.as_str().to_owned()),
        });
    }

    /// Back to the head of a queue: the one the caller came through, else
    /// the operator queue, else the first.
    pub(super) fn requeue(&mut self) {
        let config = self.config.clone();
        let queue = self
            .record
            .queue
            .clone()
            .filter(|q| config.queues.iter().any(|c| &c.name == q))
            .or_else(|| {
                config
                    .queues
                    .iter()
                    .find(|q| q.name == "operator")
                    .or(config.queues.first())
                    .map(|q| q.name.clone())
            });
        let Some(queue) = queue else {
            tracing::error!("no queue to return the caller to");
            return;
        };
        if let (Some(ivr), Some(stream)) = (&mut self.ivr, &self.stream) {
            ivr.hold_after("transfer_failed", stream);
        }
        self.caller_music = true;
        self.record.queue = Some(queue.clone());
        tracing::info!(%queue, "caller back in the queue after a failed transfer");
        self.join_queue(&queue, REQUEUE_PRIORITY);
    }
}

/// A caller coming back from a failed transfer goes ahead of everyone.
const REQUEUE_PRIORITY: u8 = 9;

/// The next event of the third party's leg, or never when there is none.
pub(super) async fn next_third(third: &mut Option<Third>) -> LegEvent {
    match third {
        Some(t) => t.leg.next().await,
        None => std::future::pending().await,
    }
}

/// The next event of the agent's consult line, or never when there is none.
pub(super) async fn next_consult(consult: &mut Option<ConsultLeg>) -> LegEvent {
    match consult {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}
