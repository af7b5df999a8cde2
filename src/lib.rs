//! hotline: a contact-centre backend for the 12345 government service hotline.
//!
//! The crate is laid out as rooms, each with one job (see `DESIGN.md`):
//! [`config`] loads and validates `sip-config/hotline.toml`; [`sip`] speaks SIP
//! on top of rsipstack; [`media`] moves RTP; [`call`] runs one actor per call and
//! glues signalling, media and records together; [`store`] keeps call records in
//! SQLite or PostgreSQL; [`api`] serves HTTP; [`report`] holds the metrics.
//! Start reading at [`server`], which wires the rooms into a running service.

pub mod acd;
pub mod api;
pub mod auth;
pub mod calendar;
pub mod call;
pub mod callers;
pub mod config;
pub mod ivr;
pub mod kb;
pub mod media;
pub mod orders;
pub mod push;
pub mod report;
pub mod server;
pub mod sip;
pub mod store;
pub mod wallboard;
pub mod webseat;
