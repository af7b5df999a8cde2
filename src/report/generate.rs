//! The shell around the report core: reads a month's rows from the store,
//! runs [`kpi::compute`] and [`monthly::build`], and publishes (stores a
//! report for good). A published month is answered from the store, byte
//! for byte.

use super::kpi::{self, Input, Lateness, Watermarks};
use super::month::Month;
use super::monthly::{self, Context, HotTopicRow, MonthlyReport};
use crate::config::Config;
use crate::orders::units::Units;
use crate::store::report::{Published, Span};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;

/// Why a report could not be made or published.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{month} was already published; its report cannot change")]
    AlreadyPublished { month: String },
    #[error("{month} has not ended yet; a month is published after its last day")]
    NotEnded { month: String },
    #[error("the stored report of {month} cannot be read: {source}")]
    Stored {
        month: String,
        source: serde_json::Error,
    },
}

/// A month's report: stored (published) or counted now.
pub enum Report {
    /// The stored JSON, exactly as published.
    Published {
        json: String,
        report: MonthlyReport,
    },
    Draft(MonthlyReport),
}

impl Report {
    /// The model, for rendering.
    pub fn model(&self) -> &MonthlyReport {
        match self {
            Report::Published { report, .. } | Report::Draft(report) => report,
        }
    }

    /// The JSON text: the stored bytes of a published month.
    pub fn json(&self) -> String {
        match self {
            Report::Published { json, .. } => json.clone(),
            Report::Draft(report) => to_json(report),
        }
    }
}

/// Pretty JSON with a final newline.
pub fn to_json(report: &MonthlyReport) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
    text.push('\n');
    text
}

/// The month's report: the published one, or a draft counted at `now`.
pub async fn monthly(
    store: &Store,
    config: &Config,
    units: &Units,
    month: Month,
    now: i64,
) -> Result<Report, ReportError> {
    if let Some(p) = store.published_report(&month.to_string()).await? {
        let report = serde_json::from_str(&p.json).map_err(|source| ReportError::Stored {
            month: month.to_string(),
            source,
        })?;
        return Ok(Report::Published {
            json: p.json,
            report,
        });
    }
    let (report, _) = count(store, config, units, month, now).await?;
    Ok(Report::Draft(report))
}

/// Counts the month and stores its report for good; refuses a month that
/// has not ended or was published before.
pub async fn publish(
    store: &Store,
    config: &Config,
    units: &Units,
    month: Month,
    now: i64,
) -> Result<Report, ReportError> {
    let offset = config.orders.offset();
    if now < month.bounds(offset).1 {
        return Err(ReportError::NotEnded {
            month: month.to_string(),
        });
    }
    let name = month.to_string();
    if store.published_report(&name).await?.is_some() {
        return Err(ReportError::AlreadyPublished { month: name });
    }
    let (mut report, watermarks) = count(store, config, units, month, now).await?;
    report.published_at = Some(now);
    let json = to_json(&report);
    let stored = store
        .publish_report(
            &Published {
                month: name.clone(),
                published_at: now,
                watermarks,
                json: json.clone(),
            },
            report.from_ms,
            report.to_ms,
        )
        .await?;
    if !stored {
        // Another publisher got there between the check and the write.
        return Err(ReportError::AlreadyPublished { month: name });
    }
    Ok(Report::Published { json, report })
}

async fn count(
    store: &Store,
    config: &Config,
    units: &Units,
    month: Month,
    now: i64,
) -> Result<(MonthlyReport, Watermarks), ReportError> {
    let offset = config.orders.offset();
    let published: BTreeMap<Month, Watermarks> = store
        .published_months()
        .await?
        .into_iter()
        .filter_map(|(m, w)| Month::parse(&m).ok().map(|m| (m, w)))
        .collect();
    let (from, to) = month.bounds(offset);
    let mut spans = vec![Span {
        from,
        to,
        after: Watermarks::default(),
    }];
    // Late rows of the published months just before this one count here.
    let mut m = month.prev();
    while let Some(w) = published.get(&m) {
        let (a, b) = m.bounds(offset);
        spans.push(Span {
            from: a,
            to: b,
            after: *w,
        });
        m = m.prev();
    }
    let since = spans.last().map(|s| s.from).unwrap_or(from);
    let rows = store.report_rows(&spans, since).await?;
    let lateness = Lateness {
        published,
        order_change_ids: rows.order_change_ids,
    };
    let kpis = kpi::compute(&Input {
        month,
        offset,
        now,
        calls: &rows.calls,
        seat_log: &rows.seat_log,
        orders: &rows.orders,
        units,
        lateness: &lateness,
    });
    let hot_topics = store
        .kb_hot_topics(from, to, i64::from(config.report.hot_topics))
        .await?
        .into_iter()
        .map(|t| HotTopicRow {
            entry_id: t.entry_id,
            title: t.title,
            category: t.category,
            hits: t.hits,
        })
        .collect();
    let report = monthly::build(
        kpis,
        Context {
            month,
            utc_offset: &config.orders.utc_offset,
            bounds: (from, to),
            config: &config.report,
            units,
            orders: &rows.orders,
            hot_topics,
        },
    );
    Ok((report, rows.watermarks))
}
