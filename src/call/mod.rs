//! Calls: one actor per call gluing SIP dialog, media stream and call record.
//!
//! [`actor`] runs a call from its INVITE to its record; [`record`] is the call
//! record (CDR) it leaves behind.

pub mod actor;
pub mod callback;
pub mod consult_leg;
pub mod control;
pub mod in_dialog;
pub mod ivr;
pub mod mixplan;
pub mod record;
pub mod recording;
pub mod seat_leg;
pub mod transfer;
