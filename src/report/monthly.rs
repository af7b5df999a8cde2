//! The monthly report (art. 20) as data: [`MonthlyReport`] is what
//! `hotline report monthly --format json` prints, what a publication
//! stores, and what the HTML and CSV renderers read. [`build`] assembles it
//! from the KPI tables ([`super::kpi`]), scores, notices and lists, without
//! I/O. JSON keys are stable snake_case; rates carry numerator and
//! denominator and are null when nothing was counted.
//!
//! Lists, and how they are chosen:
//! - overdue: every lead reply and co-handler report due in the month and
//!   done late or still open, oldest due first;
//! - typical cases (典型案例): orders accepted in the month that were
//!   escalated (提级督办), reworked (重办), or praise (表扬), in that order
//!   then by number, at most `[report] typical_cases`;
//! - repeat complaints: complaints accepted in the month from one citizen,
//!   or about one place and category, at least `[report] repeat_complaints`
//!   times;
//! - hot topics: the knowledge-base entries most used in the month, read
//!   by the shell from `Store::kb_hot_topics`: a hit is an order closed as
//!   a direct answer naming a published entry, counted in the month of the
//!   closing; most hits first, ties by entry id, at most
//!   `[report] hot_topics`.
//!
//! Personal data (art. 15): phone numbers are masked ([`mask_phone`]); a
//! case summary has the citizen's name masked and any run of 7 or more
//! digits masked as a phone number.

use super::config::ReportConfig;
use super::kpi::{CallKpis, DayCalls, HotlineKpis, Kpis, Mean, OrderKpis, Overdue};
use super::month::Month;
use super::notices::{self, Notice};
use super::score::{self, Score, Tier};
use crate::auth::mask::{mask_name, mask_phone};
use crate::orders::lifecycle::WorkOrder;
use crate::orders::model::AppealType;
use crate::orders::units::Units;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole report of one month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyReport {
    pub month: String,
    pub utc_offset: String,
    /// `[from_ms, to_ms)`: the month in Unix ms.
    pub from_ms: i64,
    pub to_ms: i64,
    /// When the month was published; null in a draft.
    pub published_at: Option<i64>,
    pub calls: CallKpis,
    pub average_wrap_up_time: Mean,
    pub queues: Vec<QueueRow>,
    pub daily_calls: Vec<DayCalls>,
    pub hotline: HotlineKpis,
    pub divisions: Vec<DivisionRow>,
    /// Units by rank (best total first; unscored units last).
    pub units: Vec<UnitRow>,
    pub tiers: Vec<TierCount>,
    pub notices: Vec<Notice>,
    pub overdue: Vec<Overdue>,
    pub typical_cases: Vec<TypicalCase>,
    pub hot_topics: Vec<HotTopicRow>,
    pub repeat_complaints: Vec<RepeatComplaint>,
    /// Rows of published months recorded after publication, counted here.
    pub late_events: Vec<LateNote>,
}

/// One queue's call KPIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueRow {
    pub queue: String,
    #[serde(flatten)]
    pub kpis: CallKpis,
}

/// One division's order KPIs (its units and those of divisions inside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DivisionRow {
    pub code: String,
    pub name: String,
    #[serde(flatten)]
    pub kpis: OrderKpis,
}

/// One unit's KPIs and score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRow {
    pub unit: String,
    pub name: String,
    pub division: String,
    /// 1 = best total; null when not scored.
    pub rank: Option<u32>,
    pub score: Score,
    #[serde(flatten)]
    pub kpis: OrderKpis,
}

/// How many units fell in a tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierCount {
    pub tier: Tier,
    pub label: String,
    pub units: u64,
}

/// A typical case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypicalCase {
    pub order_no: String,
    /// `escalated`, `reworked` or `praise`.
    pub kind: String,
    pub appeal_type: AppealType,
    pub category: String,
    pub division: String,
    pub lead_unit: Option<String>,
    /// The appeal's first 80 characters, personal data masked.
    pub summary: String,
}

/// A knowledge-base entry agents used often this month: `hits` is the
/// number of orders closed with it as a direct answer in the month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotTopicRow {
    pub entry_id: String,
    pub title: String,
    pub category: String,
    pub hits: i64,
}

/// Complaints repeated by one citizen or about one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatComplaint {
    /// `citizen` or `place`.
    pub by: String,
    /// The masked phone number (by citizen) or the location (by place).
    pub key: String,
    /// The category (by place); null by citizen.
    pub category: Option<String>,
    pub orders: Vec<String>,
}

/// Late rows from a published month counted in this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LateNote {
    pub from_month: String,
    pub count: u64,
    pub note: String,
}

/// What [`build`] reads besides the KPIs.
pub struct Context<'a> {
    pub month: Month,
    pub utc_offset: &'a str,
    pub bounds: (i64, i64),
    pub config: &'a ReportConfig,
    pub units: &'a Units,
    pub orders: &'a [WorkOrder],
    pub hot_topics: Vec<HotTopicRow>,
}

/// Assembles the report.
pub fn build(k: Kpis, cx: Context) -> MonthlyReport {
    let config = cx.config;
    let notices = notices::detect(&k.evidence, config, cx.month);
    let mut units: Vec<UnitRow> = k
        .units
        .iter()
        .map(|(id, kpis)| {
            let evidence = k.evidence.get(id).cloned().unwrap_or_default();
            let named = notices.iter().filter(|n| &n.unit == id).count();
            let unit = cx.units.unit(id);
            UnitRow {
                unit: id.clone(),
                name: unit.map(|u| u.name.clone()).unwrap_or_else(|| id.clone()),
                division: unit.map(|u| u.division.clone()).unwrap_or_default(),
                rank: None,
                score: score::score(kpis, &evidence, named, config),
                kpis: kpis.clone(),
            }
        })
        .collect();
    units.sort_by(|a, b| {
        let key = |u: &UnitRow| u.score.total.map(|t| -t);
        match (key(a), key(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| a.unit.cmp(&b.unit))
    });
    let mut rank = 0;
    let mut last: Option<f64> = None;
    for (i, u) in units.iter_mut().enumerate() {
        if let Some(t) = u.score.total {
            // Equal totals share a rank.
            if last != Some(t) {
                rank = i as u32 + 1;
            }
            last = Some(t);
            u.rank = Some(rank);
        }
    }
    let tiers = Tier::ALL
        .iter()
        .map(|t| TierCount {
            tier: *t,
            label: t.label().into(),
            units: units.iter().filter(|u| u.score.tier == Some(*t)).count() as u64,
        })
        .collect();
    let divisions = k
        .divisions
        .iter()
        .map(|(code, kpis)| DivisionRow {
            code: code.clone(),
            name: cx
                .units
                .division(code)
                .map(|d| d.name.clone())
                .unwrap_or_else(|| code.clone()),
            kpis: kpis.clone(),
        })
        .collect();
    let accepted: Vec<&WorkOrder> = k.accepted.iter().map(|&i| &cx.orders[i]).collect();
    MonthlyReport {
        month: cx.month.to_string(),
        utc_offset: cx.utc_offset.to_owned(),
        from_ms: cx.bounds.0,
        to_ms: cx.bounds.1,
        published_at: None,
        calls: k.calls,
        average_wrap_up_time: k.average_wrap_up_time,
        queues: k
            .queues
            .into_iter()
            .map(|(queue, kpis)| QueueRow { queue, kpis })
            .collect(),
        daily_calls: k.daily,
        hotline: k.hotline,
        divisions,
        units,
        tiers,
        notices,
        overdue: k.overdue,
        typical_cases: typical_cases(&accepted, config.typical_cases as usize),
        hot_topics: cx.hot_topics,
        repeat_complaints: repeat_complaints(&accepted, config.repeat_complaints as usize),
        late_events: k
            .late
            .iter()
            .map(|(m, n)| LateNote {
                from_month: m.to_string(),
                count: *n,
                note: format!(
                    "{n} 条属于 {m} 的记录在该月报告发布后才登记，计入本月 \
                     ({n} record(s) of {m} arrived after its report was published and are counted here)"
                ),
            })
            .collect(),
    }
}

fn typical_cases(accepted: &[&WorkOrder], max: usize) -> Vec<TypicalCase> {
    let mut cases: Vec<(u8, TypicalCase)> = accepted
        .iter()
        .filter_map(|o| {
            let (rank, kind) = if o.escalated.is_some() {
                (0, "escalated")
            } else if o.rework_count > 0 {
                (1, "reworked")
            } else if o.intake.appeal_type == AppealType::Praise {
                (2, "praise")
            } else {
                return None;
            };
            Some((
                rank,
                TypicalCase {
                    order_no: o.order_no.clone(),
                    kind: kind.into(),
                    appeal_type: o.intake.appeal_type,
                    category: o.intake.category.clone(),
                    division: o.intake.division.clone(),
                    lead_unit: o.leads.last().cloned(),
                    summary: summary(o),
                },
            ))
        })
        .collect();
    cases.sort_by(|a, b| (a.0, &a.1.order_no).cmp(&(b.0, &b.1.order_no)));
    cases.into_iter().take(max).map(|(_, c)| c).collect()
}

/// The first 80 characters of the appeal with the citizen's name and
/// anything that looks like a phone number masked.
pub fn summary(o: &WorkOrder) -> String {
    let mut text = o.intake.content.clone();
    if let Some(name) = o
        .intake
        .citizen
        .name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
    {
        text = text.replace(name, &mask_name(name));
    }
    let phone = o.intake.citizen.phone.as_str();
    text = text.replace(phone, &mask_phone(phone));
    let masked = mask_digit_runs(&text);
    masked.chars().take(80).collect()
}

/// Masks every run of 7 or more ASCII digits as a phone number.
fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 7 {
            out.push_str(&mask_phone(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn repeat_complaints(accepted: &[&WorkOrder], min: usize) -> Vec<RepeatComplaint> {
    let complaints = accepted
        .iter()
        .filter(|o| o.intake.appeal_type == AppealType::Complaint);
    let mut by_citizen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut by_place: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for o in complaints {
        by_citizen
            .entry(o.intake.citizen.phone.as_str())
            .or_default()
            .push(o.order_no.clone());
        if let Some(place) = o
            .intake
            .location
            .as_deref()
            .filter(|l| !l.trim().is_empty())
        {
            by_place
                .entry((place, &o.intake.category))
                .or_default()
                .push(o.order_no.clone());
        }
    }
    let mut out: Vec<RepeatComplaint> = by_citizen
        .into_iter()
        .filter(|(_, v)| v.len() >= min)
        .map(|(phone, mut orders)| {
            orders.sort();
            RepeatComplaint {
                by: "citizen".into(),
                key: mask_phone(phone),
                category: None,
                orders,
            }
        })
        .collect();
    // Masked numbers may collide; order by the evidence, not the mask.
    out.sort_by(|a, b| a.orders.cmp(&b.orders));
    out.extend(by_place.into_iter().filter(|(_, v)| v.len() >= min).map(
        |((place, category), mut orders)| {
            orders.sort();
            RepeatComplaint {
                by: "place".into(),
                key: mask_digit_runs(place),
                category: Some(category.to_owned()),
                orders,
            }
        },
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_runs_are_masked() {
        assert_eq!(
            mask_digit_runs("电话13800138000，3号楼"),
            "电话138****8000，3号楼"
        );
        assert_eq!(mask_digit_runs("no 123456 here"), "no 123456 here");
    }
}
