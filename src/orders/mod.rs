//! Work orders (工单): the record that follows an appeal from intake to
//! follow-up. [`model`] holds the glossary's names as types; [`lifecycle`]
//! is the sans-IO state machine (commands in, changes and notices out, time
//! passed in); [`deadline`] computes due times on the working-day calendar
//! and [`scheduler`] finds warnings and overdue clocks; [`catalogue`] and
//! [`units`] load the matter categories, the unit hierarchy and the
//! dispatch defaults from `sip-config/`. The store (`store::orders`) keeps
//! orders; the API (`api::orders`) serves them.

pub mod audit;
pub mod catalogue;
pub mod deadline;
pub mod desk;
pub mod events;
pub mod lifecycle;
pub mod model;
pub mod scheduler;
pub mod spool;
pub mod survey;
pub mod sweeper;
pub mod units;
