//! Reporting: metrics now; KPIs and monthly reports come here too.

pub mod metrics;
pub mod wallboard;
