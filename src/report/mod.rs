//! Reporting: Prometheus metrics, and the monthly KPIs, assessment and
//! report (art. 13, 18-20, 24).
//!
//! The monthly part reads in this order: [`month`] (the local-time month),
//! [`kpi`] (the sans-IO core: recorded rows in, KPI tables out), [`score`]
//! and [`notices`] (assessment and art. 24 notices from those tables),
//! [`monthly`] (the report as data), [`render_html`] with [`charts`] and
//! [`render_csv`] (its printed forms), and [`generate`], the shell that
//! reads the store and publishes. `[report]` settings live in [`config`].

pub mod charts;
pub mod config;
pub mod generate;
pub mod kpi;
pub mod metrics;
pub mod month;
pub mod monthly;
pub mod notices;
pub mod render_csv;
pub mod render_html;
pub mod score;
pub mod wallboard;
