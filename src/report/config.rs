//! `[report]`: how the monthly assessment (art. 18-20) scores and names
//! units. The weights turn KPIs into a base score, bonuses and deductions
//! adjust it, and the tier thresholds put each unit in 优秀/良好/合格/不合格.
//! The notice thresholds say how many failures of a kind in a month name a
//! unit in the report (art. 24).

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};

/// `[report]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Points of the base score each rate gives at 100 %. A rate with no
    /// cases that month leaves the base scaled over the others.
    pub weights: ScoreWeights,
    /// Points added per praise order (表扬) a unit led that month.
    pub bonus_praise_order: f64,
    /// Most points praise orders may add.
    pub bonus_praise_max: f64,
    /// Points added when the satisfaction rate reaches `high_satisfaction_rate`
    /// over at least `high_satisfaction_min_reached` reached follow-ups.
    pub bonus_high_satisfaction: f64,
    pub high_satisfaction_rate: f64,
    pub high_satisfaction_min_reached: u32,
    /// Points taken per order whose handling went past its deadline.
    pub deduct_overdue_order: f64,
    /// Points taken per notice (通报) naming the unit.
    pub deduct_notice: f64,
    /// Points taken per approved return beyond the first in the month.
    pub deduct_repeated_return: f64,
    /// Points taken per rework (重办) sent back to the unit.
    pub deduct_rework: f64,
    /// Points taken per reply the review sent back as not specific,
    /// complete or compliant (the measurable part of a false reply).
    pub deduct_reply_sent_back: f64,
    /// Most points all deductions together may take.
    pub deduct_max: f64,
    /// Lowest total score of each tier.
    pub tier_excellent: f64,
    pub tier_good: f64,
    pub tier_pass: f64,
    /// A unit is named for repeated returns at this many approved returns.
    pub notice_returns: u32,
    /// ... for overdue orders at this many.
    pub notice_overdue: u32,
    /// ... for reworks at this many.
    pub notice_rework: u32,
    /// ... for buck-passing at this many rejected return requests.
    pub notice_buck_passing: u32,
    /// ... for co-handlers late with their report at this many.
    pub notice_late_co_handler: u32,
    /// Most typical cases listed.
    pub typical_cases: u32,
    /// Most hot topics listed.
    pub hot_topics: u32,
    /// Complaints in the month from one citizen, or about one place and
    /// category, that make a repeat complaint.
    pub repeat_complaints: u32,
}

/// `[report.weights]`: base-score points per rate.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreWeights {
    pub response_rate: f64,
    pub on_time_closing_rate: f64,
    pub resolution_rate: f64,
    pub satisfaction_rate: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights {
            response_rate: 25.0,
            on_time_closing_rate: 15.0,
            resolution_rate: 30.0,
            satisfaction_rate: 30.0,
        }
    }
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            weights: ScoreWeights::default(),
            bonus_praise_order: 1.0,
            bonus_praise_max: 5.0,
            bonus_high_satisfaction: 2.0,
            high_satisfaction_rate: 0.95,
            high_satisfaction_min_reached: 10,
            deduct_overdue_order: 1.0,
            deduct_notice: 2.0,
            deduct_repeated_return: 1.0,
            deduct_rework: 1.0,
            deduct_reply_sent_back: 0.5,
            deduct_max: 40.0,
            tier_excellent: 90.0,
            tier_good: 80.0,
            tier_pass: 60.0,
            notice_returns: 2,
            notice_overdue: 3,
            notice_rework: 2,
            notice_buck_passing: 1,
            notice_late_co_handler: 1,
            typical_cases: 10,
            hot_topics: 10,
            repeat_complaints: 2,
        }
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl ReportConfig {
    /// Checks every key; the error names the first one at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.weights;
        let points = [
            ("report.weights.response_rate", w.response_rate),
            (
                "report.weights.on_time_closing_rate",
                w.on_time_closing_rate,
            ),
            ("report.weights.resolution_rate", w.resolution_rate),
            ("report.weights.satisfaction_rate", w.satisfaction_rate),
            ("report.bonus_praise_order", self.bonus_praise_order),
            ("report.bonus_praise_max", self.bonus_praise_max),
            (
                "report.bonus_high_satisfaction",
                self.bonus_high_satisfaction,
            ),
            ("report.deduct_overdue_order", self.deduct_overdue_order),
            ("report.deduct_notice", self.deduct_notice),
            ("report.deduct_repeated_return", self.deduct_repeated_return),
            ("report.deduct_rework", self.deduct_rework),
            ("report.deduct_reply_sent_back", self.deduct_reply_sent_back),
            ("report.deduct_max", self.deduct_max),
        ];
        for (key, value) in points {
            if !value.is_finite() || !(0.0..=100.0).contains(&value) {
                return Err(invalid(key, format!("{value} must be 0 to 100 points")));
            }
        }
        let base =
            w.response_rate + w.on_time_closing_rate + w.resolution_rate + w.satisfaction_rate;
        if (base - 100.0).abs() > 1e-6 {
            return Err(invalid(
                "report.weights",
                format!("the weights add up to {base}; they must add up to 100"),
            ));
        }
        if !(0.0..=1.0).contains(&self.high_satisfaction_rate) {
            return Err(invalid(
                "report.high_satisfaction_rate",
                "must be a fraction from 0 to 1, e.g. 0.95",
            ));
        }
        if !(self.tier_pass < self.tier_good
            && self.tier_good < self.tier_excellent
            && self.tier_pass >= 0.0
            && self.tier_excellent <= 100.0 + self.bonus_praise_max + self.bonus_high_satisfaction)
        {
            return Err(invalid(
                "report.tier_excellent",
                format!(
                    "tiers must rise: tier_pass {} < tier_good {} < tier_excellent {}, from 0",
                    self.tier_pass, self.tier_good, self.tier_excellent
                ),
            ));
        }
        for (key, n) in [
            ("report.notice_returns", self.notice_returns),
            ("report.notice_overdue", self.notice_overdue),
            ("report.notice_rework", self.notice_rework),
            ("report.notice_buck_passing", self.notice_buck_passing),
            ("report.notice_late_co_handler", self.notice_late_co_handler),
            ("report.repeat_complaints", self.repeat_complaints),
        ] {
            if n == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ReportConfig::default().validate().unwrap();
    }

    type Change = fn(&mut ReportConfig);

    fn refused(change: impl Fn(&mut ReportConfig)) -> String {
        let mut c = ReportConfig::default();
        change(&mut c);
        c.validate().unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_key() {
        let cases: [(Change, &str); 5] = [
            (|c| c.weights.response_rate = 40.0, "report.weights:"),
            (|c| c.tier_good = 95.0, "report.tier_excellent:"),
            (|c| c.deduct_notice = -1.0, "report.deduct_notice:"),
            (|c| c.notice_overdue = 0, "report.notice_overdue:"),
            (
                |c| c.high_satisfaction_rate = 95.0,
                "report.high_satisfaction_rate:",
            ),
        ];
        for (change, key) in cases {
            let message = refused(change);
            assert!(message.starts_with(key), "{message}");
        }
    }

    #[test]
    fn a_bad_file_names_the_key() {
        let text = "[report]\ntier_pass = 95.0\n";
        let e = crate::config::Config::parse(text, std::path::Path::new("h.toml"))
            .and_then(|c| c.validate())
            .unwrap_err();
        assert!(e.to_string().starts_with("report.tier_excellent:"), "{e}");
    }
}
