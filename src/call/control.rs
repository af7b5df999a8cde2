//! Requests to a call in progress from outside its actor (supervisors,
//! transfers and three-way calls; the agent desktop later): a directory of live
//! calls by SIP Call-ID, each with a command channel into its actor.

use crate::call::mixplan::Party;
use crate::call::transfer::{Kind, Outcome};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

/// How a supervisor joins a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    /// Hears caller and agent; nobody hears the supervisor.
    Listen,
    /// Hears both; only the agent hears the supervisor (coaching).
    Whisper,
    /// Everyone hears everyone.
    Barge,
}

/// A request to a live call; the answer comes back on `reply`.
#[derive(Debug)]
pub enum CallCommand {
    /// Ring the supervisor's seat and join them in `mode`, or switch the
    /// mode of a supervisor already on the call.
    Monitor {
        supervisor: String,
        mode: MonitorMode,
        reply: oneshot::Sender<Result<&'static str, ControlError>>,
    },
    /// The supervisor leaves.
    StopMonitor {
        reply: oneshot::Sender<Result<&'static str, ControlError>>,
    },
    /// The agent brings in a third party: a blind or attended transfer, or
    /// a three-way call. The reply comes once the target answers or fails.
    Transfer {
        kind: Kind,
        target: String,
        reply: oneshot::Sender<Result<Attempt, ControlError>>,
    },
    /// Completes an attended transfer: the caller goes on with the target
    /// and the agent is free.
    Complete {
        reply: oneshot::Sender<Result<&'static str, ControlError>>,
    },
    /// Calls off the transfer in progress (ringing or consulting); the
    /// caller is back with the agent.
    CancelTransfer {
        reply: oneshot::Sender<Result<&'static str, ControlError>>,
    },
    /// The agent leaves a three-way call; caller and target stay.
    Leave {
        reply: oneshot::Sender<Result<&'static str, ControlError>>,
    },
    /// The agent's softphone dialled a consult call through the hotline
    /// while on this call: the call takes it as an attended transfer.
    Consult(Box<crate::call::consult_leg::ConsultInvite>),
    /// What an order made during the call needs to know about it.
    Describe { reply: oneshot::Sender<CallFacts> },
    /// Mutes or unmutes one party of the call for everyone else.
    Mute {
        party: Party,
        muted: bool,
        reply: oneshot::Sender<Result<&'static str, ControlError>>,
    },
}

/// A live call as a work order sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFacts {
    /// The citizen's number as the caller presented it.
    pub caller: String,
    /// The seat talking to the caller, if any.
    pub seat: Option<String>,
    /// `flow:node` steps the caller went through.
    pub ivr_path: Vec<String>,
    /// Where the conversation is being recorded.
    pub recording: Option<String>,
    /// The caller's IVR survey rating (a call that has ended).
    pub survey_score: Option<u8>,
}

/// How an attempt to reach a transfer target ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    /// The final SIP status of a failed INVITE.
    pub status: Option<u16>,
    /// Where the caller is now: `target`, `hold` (consulting),
    /// `agent-and-target`, `agent` or `queue`.
    pub caller_with: &'static str,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no call in progress with that Call-ID")]
    NoCall,
    #[error("the call is not connected to an agent")]
    NotConnected,
    #[error("seat {0} has no registered phone")]
    NotRegistered(String),
    #[error("no supervisor is on the call")]
    NoSupervisor,
    #[error("another supervisor ({0}) is on the call")]
    OtherSupervisor(String),
    #[error("cannot ring seat {0}: {1}")]
    Dial(String, String),
    #[error("a transfer to {0} is already in progress")]
    TransferBusy(String),
    #[error("no transfer is in progress")]
    NoTransfer,
    #[error("{0}")]
    WrongStage(&'static str),
    #[error("unknown transfer target {0:?}: {1}")]
    UnknownTarget(String, String),
    #[error("the {0} is not on the call")]
    NotPresent(&'static str),
    #[error("seat {0} is not available for another call")]
    SeatBusy(String),
}

type Senders = Arc<Mutex<HashMap<String, UnboundedSender<CallCommand>>>>;

/// Live calls by SIP Call-ID, and which call each seat is talking on.
#[derive(Default)]
pub struct CallDirectory {
    calls: Senders,
    seats: Mutex<HashMap<String, String>>,
}

/// A call's entry; dropping it takes the call out of the directory.
pub struct Listing {
    call_id: String,
    calls: Senders,
    pub commands: UnboundedReceiver<CallCommand>,
}

impl Drop for Listing {
    fn drop(&mut self) {
        self.calls
            .lock()
            .expect("call directory lock")
            .remove(&self.call_id);
    }
}

impl CallDirectory {
    /// Lists a call for as long as the returned entry lives.
    pub fn list(&self, call_id: &str) -> Listing {
        let (tx, commands) = unbounded_channel();
        self.calls
            .lock()
            .expect("call directory lock")
            .insert(call_id.to_owned(), tx);
        Listing {
            call_id: call_id.to_owned(),
            calls: self.calls.clone(),
            commands,
        }
    }

    /// Sends a request to a live call.
    pub fn send(&self, call_id: &str, command: CallCommand) -> Result<(), ControlError> {
        let calls = self.calls.lock().expect("call directory lock");
        let tx = calls.get(call_id).ok_or(ControlError::NoCall)?;
        tx.send(command).map_err(|_| ControlError::NoCall)
    }

    /// The seat is now talking on `call_id`.
    pub fn seat_on_call(&self, seat: &str, call_id: &str) {
        self.seat_map().insert(seat.to_owned(), call_id.to_owned());
    }

    /// The seat left `call_id` (a later call of the seat's is kept).
    pub fn seat_off_call(&self, seat: &str, call_id: &str) {
        let mut seats = self.seat_map();
        if seats.get(seat).is_some_and(|c| c == call_id) {
            seats.remove(seat);
        }
    }

    /// The call a seat is talking on.
    pub fn call_of_seat(&self, seat: &str) -> Option<String> {
        self.seat_map().get(seat).cloned()
    }

    fn seat_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.seats.lock().expect("seat directory lock")
    }

    /// How many calls are listed.
    pub fn len(&self) -> usize {
        self.calls.lock().expect("call directory lock").len()
    }

    /// Whether no call is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_ends_with_its_call() {
        let directory = CallDirectory::default();
        let mut listing = directory.list("abc@host");
        let (reply, _rx) = oneshot::channel();
        directory
            .send("abc@host", CallCommand::StopMonitor { reply })
            .unwrap();
        assert!(matches!(
            listing.commands.try_recv(),
            Ok(CallCommand::StopMonitor { .. })
        ));
        drop(listing);
        assert!(directory.is_empty());
        directory.seat_on_call("1001", "abc@host");
        directory.seat_on_call("1001", "def@host");
        directory.seat_off_call("1001", "abc@host");
        assert_eq!(directory.call_of_seat("1001").as_deref(), Some("def@host"));
        directory.seat_off_call("1001", "def@host");
        assert_eq!(directory.call_of_seat("1001"), None);
        let (reply, _rx) = oneshot::channel();
        assert_eq!(
            directory.send("abc@host", CallCommand::StopMonitor { reply }),
            Err(ControlError::NoCall)
        );
    }
}
