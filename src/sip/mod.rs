//! Signalling: SIP on rsipstack.
//!
//! [`listener`] runs the endpoint and sorts incoming requests (new calls to
//! [`crate::call::actor`], in-dialog requests to their dialog, the rest
//! answered directly). The policy pieces are sans-IO: [`sdp`] offer/answer,
//! [`admission`] for rate limits and draining, [`session_timer`] for RFC 4028,
//! [`headers`] for reading what the stack leaves as text, and the trunk
//! policy in [`trunks`] (routing, caller ID, health).

pub mod admission;
pub mod headers;
pub mod keepalive;
pub mod listener;
pub mod registrar;
pub mod sdp;
pub mod session_timer;
pub mod trunks;
