//! Media: RTP sessions for calls, G.711, RFC 4733 DTMF, jitter buffer, RTCP and
//! WAV prompts.
//!
//! The codec, packet and statistics modules are sans-IO. [`engine`] is the one
//! place that touches sockets: a few worker threads, each owning many streams and
//! pacing all of them from one 20 ms tick (no task or allocation per packet).
//! Calls talk to it through [`engine::MediaHandle`].

pub mod dtmf;
pub mod engine;
pub mod g711;
pub mod jitter;
pub mod prompt;
pub mod realtime;
pub mod rtcp;
pub mod rtp;
