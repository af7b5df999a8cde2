//! The composite monthly score of a unit (art. 18-20): a base score from
//! its KPIs, plus bonuses and minus deductions, put in a tier. Weights,
//! caps and thresholds come from `[report]`.
//!
//! Base = 100 × Σ weightᵢ·rateᵢ / Σ weightᵢ over the weighted rates that had
//! cases this month (a unit with no follow-ups is scored on the rest). A
//! unit with none of them has no score and no tier.

use super::config::ReportConfig;
use super::kpi::{OrderKpis, UnitEvidence};
use serde::{Deserialize, Serialize};

/// 优秀 / 良好 / 合格 / 不合格.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Excellent,
    Good,
    Pass,
    Fail,
}

impl Tier {
    /// Every tier, best first.
    pub const ALL: [Tier; 4] = [Tier::Excellent, Tier::Good, Tier::Pass, Tier::Fail];

    /// The Chinese name printed in the report.
    pub fn label(self) -> &'static str {
        match self {
            Tier::Excellent => "优秀",
            Tier::Good => "良好",
            Tier::Pass => "合格",
            Tier::Fail => "不合格",
        }
    }
}

/// One bonus or deduction: the rule, how many cases, the points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adjustment {
    pub rule: String,
    pub count: u64,
    pub points: f64,
}

/// A unit's score for the month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub base: Option<f64>,
    pub bonuses: Vec<Adjustment>,
    pub deductions: Vec<Adjustment>,
    pub total: Option<f64>,
    pub tier: Option<Tier>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Scores one unit; `notices` is how many notices name it this month.
pub fn score(k: &OrderKpis, e: &UnitEvidence, notices: usize, c: &ReportConfig) -> Score {
    let w = &c.weights;
    let parts = [
        (w.response_rate, k.response_rate.rate),
        (w.on_time_closing_rate, k.on_time_closing_rate.rate),
        (w.resolution_rate, k.resolution_rate.rate),
        (w.satisfaction_rate, k.satisfaction_rate.rate),
    ];
    let (sum, weight) = parts
        .iter()
        .filter_map(|(w, r)| r.map(|r| (w * r, *w)))
        .fold((0.0, 0.0), |(s, t), (x, w)| (s + x, t + w));
    let base = (weight > 0.0).then(|| round2(100.0 * sum / weight));

    let mut bonuses = Vec::new();
    let praise = e.praise.len() as u64;
    if praise > 0 {
        bonuses.push(Adjustment {
            rule: "praise_orders".into(),
            count: praise,
            points: round2((praise as f64 * c.bonus_praise_order).min(c.bonus_praise_max)),
        });
    }
    let reached = k.satisfaction_rate.denominator;
    if reached >= u64::from(c.high_satisfaction_min_reached)
        && k.satisfaction_rate
            .rate
            .is_some_and(|r| r >= c.high_satisfaction_rate)
    {
        bonuses.push(Adjustment {
            rule: "high_satisfaction".into(),
            count: reached,
            points: c.bonus_high_satisfaction,
        });
    }
    let mut deductions = Vec::new();
    let returns = e.returned.len() as u64;
    for (rule, count, each) in [
        (
            "overdue_orders",
            e.overdue.len() as u64,
            c.deduct_overdue_order,
        ),
        ("notices", notices as u64, c.deduct_notice),
        (
            "repeated_returns",
            returns.saturating_sub(1),
            c.deduct_repeated_return,
        ),
        ("rework", e.reworked.len() as u64, c.deduct_rework),
        (
            "replies_sent_back",
            e.sent_back.len() as u64,
            c.deduct_reply_sent_back,
        ),
    ] {
        if count > 0 && each > 0.0 {
            deductions.push(Adjustment {
                rule: rule.into(),
                count,
                points: round2(count as f64 * each),
            });
        }
    }
    let plus: f64 = bonuses.iter().map(|a| a.points).fold(0.0, |a, b| a + b);
    let minus: f64 = deductions
        .iter()
        .map(|a| a.points)
        .sum::<f64>()
        .min(c.deduct_max);
    let total = base.map(|b| round2(b + plus - minus));
    let tier = total.map(|t| {
        if t >= c.tier_excellent {
            Tier::Excellent
        } else if t >= c.tier_good {
            Tier::Good
        } else if t >= c.tier_pass {
            Tier::Pass
        } else {
            Tier::Fail
        }
    });
    Score {
        base,
        bonuses,
        deductions,
        total,
        tier,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::kpi::Rate;

    fn rate(n: u64, d: u64) -> Rate {
        Rate {
            numerator: n,
            denominator: d,
            rate: (d > 0).then(|| n as f64 / d as f64),
        }
    }

    #[test]
    fn base_bonus_deduction_and_tier() {
        let k = OrderKpis {
            response_rate: rate(4, 4),
            on_time_closing_rate: rate(1, 2),
            resolution_rate: rate(3, 4),
            satisfaction_rate: rate(3, 4),
            ..OrderKpis::default()
        };
        let mut e = UnitEvidence::default();
        e.praise.insert("1".into());
        e.overdue.insert("2".into());
        e.returned.extend(["3".to_string(), "4".to_string()]);
        let s = score(&k, &e, 1, &ReportConfig::default());
        // 25·1 + 15·0.5 + 30·0.75 + 30·0.75 = 77.5 of 100.
        assert_eq!(s.base, Some(77.5));
        // +1 praise; −1 overdue, −2 notice, −1 second return.
        assert_eq!(s.total, Some(77.5 + 1.0 - 4.0));
        assert_eq!(s.tier, Some(Tier::Pass));
    }

    #[test]
    fn missing_rates_rescale_and_none_means_no_tier() {
        let k = OrderKpis {
            response_rate: rate(1, 1),
            on_time_closing_rate: rate(0, 1),
            ..OrderKpis::default()
        };
        let s = score(&k, &UnitEvidence::default(), 0, &ReportConfig::default());
        // 25·1 / (25 + 15).
        assert_eq!(s.base, Some(62.5));
        assert_eq!(s.tier, Some(Tier::Pass));
        let none = score(
            &OrderKpis::default(),
            &UnitEvidence::default(),
            0,
            &ReportConfig::default(),
        );
        assert_eq!((none.base, none.tier), (None, None));
    }

    #[test]
    fn deductions_are_capped() {
        let k = OrderKpis {
            response_rate: rate(1, 1),
            ..OrderKpis::default()
        };
        let mut e = UnitEvidence::default();
        e.overdue.extend((0..100).map(|i| i.to_string()));
        let s = score(&k, &e, 0, &ReportConfig::default());
        assert_eq!(s.total, Some(60.0));
        assert_eq!(s.tier, Some(Tier::Pass));
    }
}
