//! Queued callback: a waiting caller pressed 1 to keep their place and hung
//! up. Their place stays in the ACD; when a seat is offered, the agent is
//! rung first, and once the agent answers the caller is called back through
//! the callback trunk, bridged to the agent, and recorded like any queued
//! call. The outcome is a call record of its own (`final_action`
//! `callback:<queue>`).

use super::record::{CallRecord, now_ms};
use super::recording::StereoWav;
use super::seat_leg::{Dial, LegEvent, SeatLeg};
use crate::acd::router::{CallId, Event as AcdEvent};
use crate::acd::service::QueueEvent;
use crate::config::Config;
use crate::server::Shared;
use crate::sip::registrar::Binding;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

/// A place in a queue that no longer has a caller on the line.
pub struct CallbackJob {
    pub queue_id: CallId,
    pub queue: String,
    pub events: UnboundedReceiver<QueueEvent>,
    pub record: bool,
    pub reject_pause: Duration,
    /// The number to call back.
    pub caller: String,
    /// The Call-ID of the call that asked for it.
    pub asked_on: String,
    pub config: Arc<Config>,
}

/// How a call-back ended, for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Agent and caller talked; who hung up.
    Talked {
        by_caller: bool,
    },
    /// The caller did not answer, was busy, or the trunk refused.
    NoAnswer(u16),
    /// The agent's leg ended before the caller answered.
    AgentGone,
    /// The queue's longest wait passed with no seat free.
    Expired,
    Shutdown,
}

impl Outcome {
    fn reason(self) -> &'static str {
        match self {
            Outcome::Talked { by_caller: true } => "caller-bye",
            Outcome::Talked { by_caller: false } => "agent-bye",
            Outcome::NoAnswer(_) => "callback-no-answer",
            Outcome::AgentGone => "agent-gone",
            Outcome::Expired => "callback-expired",
            Outcome::Shutdown => "shutdown",
        }
    }
}

/// Where the callback trunk sends a call to `number`: its URI with the
/// number in, and the address to send the INVITE to.
pub async fn trunk_target(config: &Config, number: &str) -> anyhow::Result<Binding> {
    Ok(crate::sip::trunks::route_number(config, number)
        .await?
        .binding)
}

/// Serves one call-back to its end and leaves its record.
pub async fn run(shared: Arc<Shared>, job: CallbackJob) {
    let span = tracing::info_span!("callback", asked_on = %job.asked_on, caller = %job.caller);
    tracing::Instrument::instrument(
        async move {
            let record = serve(&shared, job).await;
            tracing::info!(end = %record.end_reason, seat = ?record.seat, "call-back ended");
            shared.records.send(record);
        },
        span,
    )
    .await;
}

async fn serve(shared: &Shared, mut job: CallbackJob) -> CallRecord {
    let mut record = CallRecord {
        call_id: format!("callback-{}", job.asked_on),
        caller: job.caller.clone(),
        callee: job.config.sip.hotline_number.clone(),
        transport: "udp".into(),
        started_at: now_ms(),
        queue: Some(job.queue.clone()),
        final_action: Some(format!("callback:{}", job.queue)),
        callback_requested: true,
        queued_at: Some(now_ms()),
        ..CallRecord::default()
    };
    let mut ringing: Option<SeatLeg> = None;
    let mut agent: Option<SeatLeg> = None;
    let mut citizen: Option<SeatLeg> = None;
    let mut citizen_deadline: Option<Instant> = None;
    let mut wav: Option<StereoWav> = None;
    let outcome = loop {
        let deadline = citizen_deadline.unwrap_or_else(far_future);
        tokio::select! {
            event = job.events.recv() => {
                let Some(event) = event else { break Outcome::Shutdown };
                match event {
                    QueueEvent::Offer { seat } if ringing.is_none() && agent.is_none() => {
                        match ring_agent(shared, &job, &seat) {
                            Ok(leg) => ringing = Some(leg),
                            Err(e) => {
                                tracing::warn!(%seat, error = %e, "cannot ring seat for a call-back");
                                shared.acd.handle(AcdEvent::Rejected {
                                    seat,
                                    call: job.queue_id,
                                    pause: job.reject_pause,
                                }).ok();
                            }
                        }
                    }
                    // One agent at a time: another offered seat (ring-all)
                    // is left to the ring timeout.
                    QueueEvent::Offer { .. } => {}
                    QueueEvent::Withdraw { seat } => {
                        if ringing.as_ref().is_some_and(|l| l.seat == seat)
                            && let Some(leg) = ringing.take()
                        {
                            leg.close(shared).await;
                        }
                    }
                    QueueEvent::Overflowed { to } => {
                        record.queue = Some(to.clone());
                        job.queue = to;
                    }
                    QueueEvent::MaxWait => break Outcome::Expired,
                    QueueEvent::Announce { .. } => {}
                }
            }
            event = next(&mut ringing) => match event {
                LegEvent::Answered => {
                    let leg = ringing.take().expect("a ringing leg reported");
                    let taken = shared.acd.handle(AcdEvent::Answered {
                        seat: leg.seat.clone(),
                        call: job.queue_id,
                    });
                    if taken.is_err() {
                        leg.close(shared).await;
                        continue;
                    }
                    record.seat = Some(leg.seat.clone());
                    record.seat_call_id = Some(leg.call_id.clone());
                    record.seat_codec = leg.codec().map(str::to_owned);
                    record.connected_at = Some(now_ms());
                    // The agent waits on the line (hold music would hide
                    // the ringing they expect to hear; silence it is) while
                    // the caller's phone rings.
                    match call_citizen(shared, &job, &leg).await {
                        Ok(leg) => {
                            citizen_deadline = Some(
                                Instant::now()
                                    + Duration::from_secs(job.config.callback.ring_secs.into()),
                            );
                            record.call_id = leg.call_id.clone();
                            citizen = Some(leg);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot call the caller back");
                            agent = Some(leg);
                            break Outcome::NoAnswer(503);
                        }
                    }
                    agent = Some(leg);
                }
                LegEvent::Failed { status } => {
                    let leg = ringing.take().expect("a ringing leg reported");
                    let seat = leg.seat.clone();
                    leg.close(shared).await;
                    tracing::info!(%seat, status, "seat did not take the call-back");
                    shared.acd.handle(AcdEvent::Rejected {
                        seat,
                        call: job.queue_id,
                        pause: job.reject_pause,
                    }).ok();
                }
                _ => {}
            },
            event = next(&mut agent) => match event {
                LegEvent::Ended { .. } => {
                    let talked = citizen.as_ref().is_some_and(SeatLeg::answered);
                    break if talked { Outcome::Talked { by_caller: false } } else { Outcome::AgentGone };
                }
                LegEvent::Digit(d) => {
                    if let Some(stream) = citizen.as_ref().and_then(SeatLeg::stream) {
                        stream.send_digit(d);
                    }
                }
                LegEvent::Hold(held) => {
                    if let Some(stream) = citizen.as_ref().and_then(SeatLeg::stream) {
                        if held {
                            hold_music(shared, &job.config, stream);
                        } else {
                            stream.stop_playback();
                        }
                    }
                }
                _ => {}
            },
            event = next(&mut citizen) => match event {
                LegEvent::Answered => {
                    citizen_deadline = None;
                    record.answered_at = Some(now_ms());
                    record.codec = citizen.as_ref().and_then(SeatLeg::codec).map(str::to_owned);
                    let (Some(c), Some(a)) = (
                        citizen.as_ref().and_then(SeatLeg::stream),
                        agent.as_ref().and_then(SeatLeg::stream),
                    ) else { break Outcome::AgentGone };
                    if let Err(e) = c.bridge(a) {
                        tracing::error!(error = %e, "cannot bridge the call-back");
                    }
                    if job.record {
                        match StereoWav::create(&job.config.ivr.recordings_dir, &job.queue, &record.call_id) {
                            Ok(w) => {
                                c.record_stereo(Duration::from_secs(job.config.ivr.max_call_secs.into()));
                                record.call_recording = Some(w.path().display().to_string());
                                wav = Some(w);
                            }
                            Err(e) => tracing::error!(error = %e, "cannot start the call recording"),
                        }
                    }
                    tracing::info!("caller called back and connected to the agent");
                }
                LegEvent::Failed { status } => break Outcome::NoAnswer(status),
                LegEvent::Ended { .. } => break Outcome::Talked { by_caller: true },
                LegEvent::Recording { samples, .. } => {
                    if let Some(w) = &wav {
                        w.push(samples);
                    }
                }
                LegEvent::Digit(d) => {
                    if let Some(stream) = agent.as_ref().and_then(SeatLeg::stream) {
                        stream.send_digit(d);
                    }
                }
                // Transfers are the agent's, from a queued call.
                LegEvent::Hold(_) | LegEvent::Refer(_) | LegEvent::ReferReplaces { .. } => {}
            },
            _ = tokio::time::sleep_until(deadline) => {
                tracing::info!("the caller did not answer the call-back");
                break Outcome::NoAnswer(408);
            }
            _ = shared.hangup_all.cancelled() => break Outcome::Shutdown,
        }
    };

    if let Some(leg) = ringing.take() {
        leg.close(shared).await;
    }
    if let Some(stream) = citizen.as_ref().and_then(SeatLeg::stream) {
        stream.stop_recording();
    }
    if let Some(leg) = citizen.as_mut() {
        // Collect the recording's last part before the stream goes.
        if wav.is_some() && leg.answered() {
            let until = Instant::now() + Duration::from_millis(500);
            while let Ok(event) = tokio::time::timeout_at(until, leg.next()).await {
                if let LegEvent::Recording { samples, last } = event {
                    if let Some(w) = &wav {
                        w.push(samples);
                    }
                    if last {
                        break;
                    }
                }
            }
        }
    }
    if let Some(leg) = citizen.take() {
        leg.close(shared).await;
    }
    if let Some(leg) = agent.take() {
        record.seat_ended_at = Some(now_ms());
        shared
            .acd
            .handle(AcdEvent::CallEnded {
                seat: leg.seat.clone(),
            })
            .ok();
        leg.close(shared).await;
    }
    shared.acd.leave(job.queue_id);
    if let Some(w) = wav {
        record.call_recording = w.finish().await;
    }
    record.ended_at = now_ms();
    record.end_reason = outcome.reason().into();
    record.status = match outcome {
        Outcome::NoAnswer(status) => status,
        _ if record.answered_at.is_some() => 200,
        _ => 487,
    };
    record.hangup_by = match outcome {
        Outcome::Talked { by_caller: true } => "caller".into(),
        Outcome::Talked { by_caller: false } => "agent".into(),
        _ => String::new(),
    };
    record
}

fn ring_agent(shared: &Shared, job: &CallbackJob, seat: &str) -> anyhow::Result<SeatLeg> {
    let binding = shared
        .registrar
        .lock()
        .expect("registrar lock")
        .lookup(seat, std::time::Instant::now())
        .first()
        .map(|b| (*b).clone())
        .ok_or_else(|| anyhow::anyhow!("seat {seat} has no registration"))?;
    SeatLeg::dial(
        shared,
        Dial {
            seat,
            binding: &binding,
            beside: None,
            caller_number: &job.caller,
            sip_addr: shared.sip_addr,
            advertise_ip: job.config.media.advertise_ip.parse().ok(),
            caller_call_id: &job.asked_on,
            headers: Vec::new(),
            credential: None,
        },
    )
}

async fn call_citizen(
    shared: &Shared,
    job: &CallbackJob,
    agent: &SeatLeg,
) -> anyhow::Result<SeatLeg> {
    let target = trunk_target(&job.config, &job.caller).await?;
    tracing::info!(uri = %target.contact, "calling the caller back");
    SeatLeg::dial(
        shared,
        Dial {
            seat: &job.caller,
            binding: &target,
            beside: agent.stream(),
            caller_number: &job.config.sip.hotline_number,
            sip_addr: shared.sip_addr,
            advertise_ip: job.config.media.advertise_ip.parse().ok(),
            caller_call_id: &job.asked_on,
            headers: Vec::new(),
            credential: None,
        },
    )
}

fn hold_music(shared: &Shared, config: &Config, stream: &crate::media::engine::StreamHandle) {
    let flows = shared.flows.load();
    if let Some(prompt) = flows.prompts.resolve(
        &config.ivr.default_language,
        &config.ivr.default_language,
        &config.ivr.hold_prompt,
    ) {
        stream.play(crate::media::engine::Playlist {
            id: 0,
            prompts: vec![prompt],
            loop_from: Some(0),
        });
    }
}

async fn next(leg: &mut Option<SeatLeg>) -> LegEvent {
    match leg {
        Some(leg) => leg.next().await,
        None => std::future::pending().await,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}
