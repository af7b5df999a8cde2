//! Notices (通报, art. 24): units the monthly report names, detected from
//! the month's evidence ([`UnitEvidence`]) with the thresholds of
//! `[report]`. Each notice names the unit, the rule, the month and the order
//! numbers behind it.

use super::config::ReportConfig;
use super::kpi::UnitEvidence;
use super::month::Month;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Why a unit is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeRule {
    /// 多次退回: approved returns at or above `notice_returns`.
    RepeatedReturns,
    /// 超期办理: overdue orders at or above `notice_overdue`.
    Overdue,
    /// 协办不力: co-handler reports later than due.
    CoHandlerLate,
    /// 重办: reworks at or above `notice_rework`.
    Rework,
    /// 推诿扯皮: return requests rejected as within the unit's remit.
    BuckPassing,
}

impl NoticeRule {
    /// The heading used in the printed report.
    pub fn label(self) -> &'static str {
        match self {
            NoticeRule::RepeatedReturns => "多次退回",
            NoticeRule::Overdue => "超期办理",
            NoticeRule::CoHandlerLate => "协办单位未按时反馈",
            NoticeRule::Rework => "重办",
            NoticeRule::BuckPassing => "推诿扯皮",
        }
    }
}

/// One unit named for one rule in one month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub unit: String,
    pub rule: NoticeRule,
    pub month: String,
    /// The orders that are the evidence, in order-number order.
    pub orders: Vec<String>,
}

/// The month's notices, by unit then rule.
pub fn detect(
    evidence: &BTreeMap<String, UnitEvidence>,
    config: &ReportConfig,
    month: Month,
) -> Vec<Notice> {
    let mut out = Vec::new();
    for (unit, e) in evidence {
        let rules: [(NoticeRule, &BTreeSet<String>, u32); 5] = [
            (
                NoticeRule::RepeatedReturns,
                &e.returned,
                config.notice_returns,
            ),
            (NoticeRule::Overdue, &e.overdue, config.notice_overdue),
            (
                NoticeRule::CoHandlerLate,
                &e.late_co_handler,
                config.notice_late_co_handler,
            ),
            (NoticeRule::Rework, &e.reworked, config.notice_rework),
            (
                NoticeRule::BuckPassing,
                &e.buck_passing,
                config.notice_buck_passing,
            ),
        ];
        for (rule, orders, threshold) in rules {
            if orders.len() >= threshold as usize {
                out.push(Notice {
                    unit: unit.clone(),
                    rule,
                    month: month.to_string(),
                    orders: orders.iter().cloned().collect(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn thresholds_decide_who_is_named() {
        let mut ev = BTreeMap::new();
        ev.insert(
            "water".to_string(),
            UnitEvidence {
                returned: set(&["2", "1"]),
                overdue: set(&["3", "4"]),
                buck_passing: set(&["5"]),
                ..UnitEvidence::default()
            },
        );
        ev.insert(
            "gas".to_string(),
            UnitEvidence {
                returned: set(&["9"]),
                late_co_handler: set(&["8"]),
                ..UnitEvidence::default()
            },
        );
        let month = Month::parse("2026-10").unwrap();
        let found = detect(&ev, &ReportConfig::default(), month);
        let got: Vec<(&str, NoticeRule, Vec<String>)> = found
            .iter()
            .map(|n| (n.unit.as_str(), n.rule, n.orders.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("gas", NoticeRule::CoHandlerLate, vec!["8".to_string()]),
                (
                    "water",
                    NoticeRule::RepeatedReturns,
                    vec!["1".into(), "2".into()]
                ),
                ("water", NoticeRule::BuckPassing, vec!["5".into()]),
            ]
        );
        assert!(found.iter().all(|n| n.month == "2026-10"));
    }
}
