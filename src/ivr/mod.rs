//! IVR: flows operators edit as YAML files, checked, simulated and run.
//!
//! [`model`] is the file format; [`interpreter`] runs a flow as a sans-IO
//! state machine (events in, actions out, time passed in) for real calls and
//! the simulator alike.

pub mod clock;
pub mod interpreter;
pub mod model;
pub mod say;
pub mod simulate;
