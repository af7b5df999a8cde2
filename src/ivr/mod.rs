//! IVR: flows operators edit as YAML files, checked, simulated and run.
//!
//! [`model`] is the file format; [`load`] reads a folder of flows and
//! prompts into a [`load::FlowSet`] and [`validate`] checks it, with every
//! problem at its `file:line:col`. [`interpreter`] runs a flow as a sans-IO
//! state machine (events in, actions out, time passed in) for real calls
//! ([`crate::call::ivr`]) and for [`simulate`] alike. [`watch`] reloads on
//! edit; [`stats`] counts where callers go and where they drop out.

pub mod clock;
pub mod interpreter;
pub mod load;
pub mod model;
pub mod say;
pub mod simulate;
pub mod stats;
pub mod validate;
pub mod watch;
