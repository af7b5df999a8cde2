//! `[callers]`: thresholds of nuisance detection, the sweep and refresh
//! periods, and the longest block a supervisor may set.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};

/// `[callers]` in `hotline.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallersConfig {
    /// Seconds between nuisance sweeps over recent calls; 0 disables them.
    pub sweep_secs: u32,
    /// How far back a sweep looks, in hours ("a day" of calls).
    pub window_hours: u32,
    /// Calls from one number within the window that raise a `many_calls` flag.
    pub calls_per_day: u32,
    /// Agent talk time (seconds) above which a call with no order counts
    /// as holding the line.
    pub long_talk_secs: u32,
    /// Such long calls within the window that raise a `long_calls` flag.
    pub long_calls: u32,
    /// A call the caller ends this soon after the answer (seconds), or
    /// without sending any audio, is a silent hang-up.
    pub short_call_secs: u32,
    /// Silent hang-ups within the window that raise a `silent_hangups` flag.
    pub silent_hangups: u32,
    /// The longest block a review may set, in days.
    pub max_block_days: u32,
    /// Seconds between re-reads of the active blocks (changes made through
    /// this node's API apply at once).
    pub refresh_secs: u32,
}

impl Default for CallersConfig {
    fn default() -> Self {
        CallersConfig {
            sweep_secs: 300,
            window_hours: 24,
            calls_per_day: 10,
            long_talk_secs: 1800,
            long_calls: 2,
            short_call_secs: 5,
            silent_hangups: 5,
            max_block_days: 90,
            refresh_secs: 30,
        }
    }
}

impl CallersConfig {
    /// Checks values types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.into(),
        };
        if !(1..=24 * 31).contains(&self.window_hours) {
            return Err(invalid("callers.window_hours", "must be from 1 to 744"));
        }
        for (key, n) in [
            ("callers.calls_per_day", self.calls_per_day),
            ("callers.long_calls", self.long_calls),
            ("callers.silent_hangups", self.silent_hangups),
        ] {
            if n < 2 {
                return Err(invalid(key, "must be at least 2 (one call is no pattern)"));
            }
        }
        if self.long_talk_secs == 0 {
            return Err(invalid("callers.long_talk_secs", "must be at least 1"));
        }
        if !(1..=3650).contains(&self.max_block_days) {
            return Err(invalid("callers.max_block_days", "must be from 1 to 3650"));
        }
        if self.refresh_secs == 0 {
            return Err(invalid("callers.refresh_secs", "must be at least 1"));
        }
        Ok(())
    }

    /// The detection thresholds in milliseconds.
    pub fn thresholds(&self) -> super::detect::Thresholds {
        super::detect::Thresholds {
            window_ms: i64::from(self.window_hours) * 3_600_000,
            calls_per_window: self.calls_per_day,
            long_talk_ms: i64::from(self.long_talk_secs) * 1000,
            long_calls: self.long_calls,
            short_call_ms: i64::from(self.short_call_secs) * 1000,
            silent_hangups: self.silent_hangups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        CallersConfig::default().validate().unwrap();
        let bad = [
            (
                CallersConfig {
                    calls_per_day: 1,
                    ..Default::default()
                },
                "callers.calls_per_day",
            ),
            (
                CallersConfig {
                    window_hours: 0,
                    ..Default::default()
                },
                "callers.window_hours",
            ),
            (
                CallersConfig {
                    max_block_days: 0,
                    ..Default::default()
                },
                "callers.max_block_days",
            ),
            (
                CallersConfig {
                    refresh_secs: 0,
                    ..Default::default()
                },
                "callers.refresh_secs",
            ),
        ];
        for (c, key) in bad {
            match c.validate() {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }
}
