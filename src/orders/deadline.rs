//! Deadlines (限时办理) on the working-day calendar.
//!
//! A limit is a [`Span`]: whole working days (`"3d"`) that end at local
//! midnight, or wall-clock hours (`"2h"`) for emergency orders. [`WorkTime`]
//! turns a start instant and a span into a due instant using the statutory
//! [`Calendar`] and the hotline's UTC offset; [`Limits`] is the
//! `[orders.limits]` configuration that picks the span for a clock, an appeal
//! type and an urgency. Everything here is pure: times are Unix milliseconds
//! passed in, nothing reads a clock. [`super::scheduler`] uses the due times
//! to find warnings and overdue clocks.

use crate::calendar::Calendar;
use crate::orders::model::{AppealType, ClockKind, Urgency};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use time::{Date, UtcOffset};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
/// Longest span [`Limits::validate`] accepts in working days (about a year
/// and a half); keeps the day-by-day walk of [`WorkTime::due`] short.
pub const MAX_WORKING_DAYS: u32 = 366;
/// Longest span [`Limits::validate`] accepts in hours (a year).
pub const MAX_HOURS: u32 = 8784;

/// A time limit: whole working days, or wall-clock hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    /// Ends at the end (local midnight) of the N-th working day after the
    /// start's working day; written `"3d"`. `"0d"` is "the same working day".
    WorkingDays(u32),
    /// N hours after the start, nights and holidays included; written `"2h"`.
    Hours(u32),
}

/// A span that is not `<digits>d` or `<digits>h`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a time limit: write working days like \"3d\" or wall-clock hours like \"2h\""
)]
pub struct SpanError {
    /// The text as given.
    pub value: String,
}

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(text: &str) -> Result<Span, SpanError> {
        let fail = || SpanError {
            value: text.to_string(),
        };
        // strip_suffix, not split_at: the text may end in a multi-byte char.
        let (digits, make): (&str, fn(u32) -> Span) = if let Some(d) = text.strip_suffix('d') {
            (d, Span::WorkingDays)
        } else if let Some(h) = text.strip_suffix('h') {
            (h, Span::Hours)
        } else {
            return Err(fail());
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail());
        }
        digits.parse().map(make).map_err(|_| fail())
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Span::WorkingDays(n) => write!(f, "{n}d"),
            Span::Hours(n) => write!(f, "{n}h"),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Span, D::Error> {
        struct SpanVisitor;
        impl serde::de::Visitor<'_> for SpanVisitor {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time limit such as \"3d\" (working days) or \"2h\" (hours)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Span, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(SpanVisitor)
    }
}

/// Working-day arithmetic in the hotline's local time.
///
/// Days are counted as local day numbers (days since 1970-01-01 in local
/// time), so no instant can fail to convert; a day beyond what `time::Date`
/// holds just follows weekends, as a date outside the loaded calendar does.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkTime {
    calendar: Calendar,
    offset: UtcOffset,
}

impl WorkTime {
    /// Works on `calendar` in local time `offset` (China: `+08:00`).
    pub fn new(calendar: Calendar, offset: UtcOffset) -> WorkTime {
        WorkTime { calendar, offset }
    }

    /// The calendar deadlines follow.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The local UTC offset.
    pub fn offset(&self) -> UtcOffset {
        self.offset
    }

    /// When a step started at `start_ms` with limit `span` is due.
    ///
    /// Working days: day 0 is the start's local date if it is a working day,
    /// else the next working day; the step is due at the end (the following
    /// local midnight) of the N-th working day after day 0. So `0d` is the
    /// end of the same working day, and `1d` from Friday 15:00 is the end of
    /// Monday when Monday works. Hours: `start + N h`. The walk is one step
    /// per day, so callers bound N (config does, see [`Limits::validate`]).
    pub fn due(&self, start_ms: i64, span: Span) -> i64 {
        match span {
            Span::Hours(n) => start_ms.saturating_add(i64::from(n) * HOUR_MS),
            Span::WorkingDays(n) => {
                let day0 = self.working_on_or_after(self.local_day(start_ms));
                self.day_end(self.nth_working_after(day0, n))
            }
        }
    }

    /// An approved extension: the end of the N-th working day after the
    /// working day that ends at (or contains) `due_ms`.
    pub fn extend(&self, due_ms: i64, working_days: u32) -> i64 {
        // A working-day due is a local midnight that belongs to the day
        // before it; one millisecond back lands in that day. An hours due
        // lands in its own day.
        self.due(due_ms.saturating_sub(1), Span::WorkingDays(working_days))
    }

    /// How many working days start after `from_ms`'s local date, up to and
    /// including `to_ms`'s local date; 0 when `to` is not after `from`.
    /// "A return is requested within 1 working day of signing" is
    /// `working_days_between(signed, requested) <= 1`.
    pub fn working_days_between(&self, from_ms: i64, to_ms: i64) -> u32 {
        let (from, to) = (self.local_day(from_ms), self.local_day(to_ms));
        let mut count = 0u32;
        let mut day = from;
        while day < to {
            day += 1;
            if self.is_working(day) {
                count = count.saturating_add(1);
            }
        }
        count
    }

    /// The local calendar date of an instant (`None` beyond year 9999).
    pub fn local_date(&self, ms: i64) -> Option<Date> {
        date_of(self.local_day(ms))
    }

    /// Whether the local date of `ms` is a working day.
    pub fn is_working_day_at(&self, ms: i64) -> bool {
        self.is_working(self.local_day(ms))
    }

    fn offset_ms(&self) -> i64 {
        i64::from(self.offset.whole_seconds()) * 1000
    }

    /// Local day number of an instant.
    fn local_day(&self, ms: i64) -> i64 {
        ms.saturating_add(self.offset_ms()).div_euclid(DAY_MS)
    }

    /// The instant a local day ends (the next local midnight).
    fn day_end(&self, day: i64) -> i64 {
        day.saturating_add(1)
            .saturating_mul(DAY_MS)
            .saturating_sub(self.offset_ms())
    }

    fn is_working(&self, day: i64) -> bool {
        match date_of(day) {
            Some(date) => self.calendar.is_working_day(date),
            // 1970-01-01 was a Thursday: (day + 4) mod 7 counts from Sunday.
            None => !matches!((day + 4).rem_euclid(7), 0 | 6),
        }
    }

    fn working_on_or_after(&self, mut day: i64) -> i64 {
        while !self.is_working(day) {
            day += 1;
        }
        day
    }

    fn nth_working_after(&self, mut day: i64, n: u32) -> i64 {
        for _ in 0..n {
            day = self.working_on_or_after(day + 1);
        }
        day
    }
}

fn date_of(day: i64) -> Option<Date> {
    let julian = i32::try_from(day.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()?;
    Date::from_julian_day(julian).ok()
}

/// Handling limits (办理时限) per appeal type: `[orders.limits.handle]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandleLimits {
    pub consultation: Span,
    pub help: Span,
    pub suggestion: Span,
    pub complaint: Span,
    pub report: Span,
    pub praise: Span,
    pub other: Span,
}

impl Default for HandleLimits {
    /// DOMAIN.md: consultation 3, help and suggestion 7, complaint and
    /// report 15 working days; praise 3 and other 7 by practice.
    fn default() -> Self {
        HandleLimits {
            consultation: Span::WorkingDays(3),
            help: Span::WorkingDays(7),
            suggestion: Span::WorkingDays(7),
            complaint: Span::WorkingDays(15),
            report: Span::WorkingDays(15),
            praise: Span::WorkingDays(3),
            other: Span::WorkingDays(7),
        }
    }
}

impl HandleLimits {
    /// The limit for one appeal type.
    pub fn get(&self, appeal: AppealType) -> Span {
        match appeal {
            AppealType::Consultation => self.consultation,
            AppealType::Help => self.help,
            AppealType::Suggestion => self.suggestion,
            AppealType::Complaint => self.complaint,
            AppealType::Report => self.report,
            AppealType::Praise => self.praise,
            AppealType::Other => self.other,
        }
    }
}

/// Some appeal types' handling limits, for an urgency override.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandleOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consultation: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complaint: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub praise: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<Span>,
}

impl HandleOverrides {
    /// The override for one appeal type, if any.
    pub fn get(&self, appeal: AppealType) -> Option<Span> {
        match appeal {
            AppealType::Consultation => self.consultation,
            AppealType::Help => self.help,
            AppealType::Suggestion => self.suggestion,
            AppealType::Complaint => self.complaint,
            AppealType::Report => self.report,
            AppealType::Praise => self.praise,
            AppealType::Other => self.other,
        }
    }
}

/// An urgency's handling override: `handle = "3d"` for every appeal type,
/// or `handle = { help = "3d", complaint = "5d" }` for some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum HandleOverride {
    All(Span),
    ByType(HandleOverrides),
}

impl HandleOverride {
    /// The override for one appeal type, if any.
    pub fn get(&self, appeal: AppealType) -> Option<Span> {
        match self {
            HandleOverride::All(span) => Some(*span),
            HandleOverride::ByType(types) => types.get(appeal),
        }
    }
}

impl<'de> Deserialize<'de> for HandleOverride {
    // By hand rather than `untagged`, so a bad value inside the table is
    // reported as itself, not as "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HandleOverride, D::Error> {
        struct OverrideVisitor;
        impl<'de> serde::de::Visitor<'de> for OverrideVisitor {
            type Value = HandleOverride;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time limit such as \"3d\", or a table of them per appeal type")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HandleOverride, E> {
                v.parse().map(HandleOverride::All).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<HandleOverride, A::Error> {
                HandleOverrides::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(HandleOverride::ByType)
            }
        }
        deserializer.deserialize_any(OverrideVisitor)
    }
}

/// `[orders.limits.urgent]` / `[orders.limits.emergency]`: limits that
/// replace the normal ones for more urgent orders. A key the file leaves
/// out keeps its shipped value; a key with no value at all falls back to
/// the level below (emergency → urgent → normal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Span>,
    /// First contact (首次反馈) when life or property is at risk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_life_at_risk: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<HandleOverride>,
}

impl Overrides {
    /// Keys set here, else those of `base`.
    fn or(self, base: Overrides) -> Overrides {
        Overrides {
            dispatch: self.dispatch.or(base.dispatch),
            sign: self.sign.or(base.sign),
            contact: self.contact.or(base.contact),
            contact_life_at_risk: self.contact_life_at_risk.or(base.contact_life_at_risk),
            review: self.review.or(base.review),
            follow_up: self.follow_up.or(base.follow_up),
            handle: self.handle.or(base.handle),
        }
    }

    fn get(&self, kind: ClockKind, appeal: AppealType) -> Option<Span> {
        match kind {
            ClockKind::Dispatch => self.dispatch,
            ClockKind::Sign => self.sign,
            ClockKind::Contact => self.contact,
            ClockKind::Handle => self.handle.as_ref().and_then(|h| h.get(appeal)),
            ClockKind::Review => self.review,
            ClockKind::FollowUp => self.follow_up,
        }
    }

    fn entries(&self, prefix: &str) -> Vec<(String, Span)> {
        let mut out: Vec<(String, Span)> = [
            ("dispatch", self.dispatch),
            ("sign", self.sign),
            ("contact", self.contact),
            ("contact_life_at_risk", self.contact_life_at_risk),
            ("review", self.review),
            ("follow_up", self.follow_up),
        ]
        .into_iter()
        .filter_map(|(key, span)| span.map(|s| (format!("{prefix}.{key}"), s)))
        .collect();
        match &self.handle {
            Some(HandleOverride::All(span)) => out.push((format!("{prefix}.handle"), *span)),
            Some(HandleOverride::ByType(types)) => {
                for appeal in APPEAL_TYPES {
                    if let Some(span) = types.get(appeal) {
                        out.push((format!("{prefix}.handle.{}", appeal_key(appeal)), span));
                    }
                }
            }
            None => {}
        }
        out
    }
}

const APPEAL_TYPES: [AppealType; 7] = [
    AppealType::Consultation,
    AppealType::Help,
    AppealType::Suggestion,
    AppealType::Complaint,
    AppealType::Report,
    AppealType::Praise,
    AppealType::Other,
];

fn appeal_key(appeal: AppealType) -> &'static str {
    match appeal {
        AppealType::Consultation => "consultation",
        AppealType::Help => "help",
        AppealType::Suggestion => "suggestion",
        AppealType::Complaint => "complaint",
        AppealType::Report => "report",
        AppealType::Praise => "praise",
        AppealType::Other => "other",
    }
}

/// `[orders.limits]`: the time limit of every clock. The top-level keys
/// are for normal orders; `urgent` and `emergency` override some of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The hotline dispatches an accepted order (default: same working day).
    pub dispatch: Span,
    /// A unit signs for its assignment (default: 1 working day).
    pub sign: Span,
    /// A unit contacts the citizen (default: 2 working days).
    pub contact: Span,
    /// The hotline reviews the lead's reply (default: 1 working day).
    pub review: Span,
    /// The hotline follows up after closing (default: the working day after).
    pub follow_up: Span,
    /// Handling and replying, per appeal type.
    pub handle: HandleLimits,
    /// Urgent orders (紧急); nothing overridden by default.
    #[serde(deserialize_with = "urgent_over_defaults")]
    pub urgent: Overrides,
    /// Emergency orders (art. 10): dispatched at once, first contact within
    /// 24 h, 2 h when life or property is at risk.
    #[serde(deserialize_with = "emergency_over_defaults")]
    pub emergency: Overrides,
}

// A section in the file changes only the keys it names, like every other
// section: `[orders.limits.emergency]` with one key keeps the shipped
// `dispatch = "0h"`. (A plain `#[serde(default)]` on `Overrides` would
// drop the shipped keys as soon as the section appears.)
fn urgent_over_defaults<'de, D: Deserializer<'de>>(d: D) -> Result<Overrides, D::Error> {
    Ok(Overrides::deserialize(d)?.or(Limits::default().urgent))
}

fn emergency_over_defaults<'de, D: Deserializer<'de>>(d: D) -> Result<Overrides, D::Error> {
    Ok(Overrides::deserialize(d)?.or(Limits::default().emergency))
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            dispatch: Span::WorkingDays(0),
            sign: Span::WorkingDays(1),
            contact: Span::WorkingDays(2),
            review: Span::WorkingDays(1),
            follow_up: Span::WorkingDays(1),
            handle: HandleLimits::default(),
            urgent: Overrides::default(),
            emergency: Overrides {
                dispatch: Some(Span::Hours(0)),
                sign: Some(Span::Hours(1)),
                contact: Some(Span::Hours(24)),
                contact_life_at_risk: Some(Span::Hours(2)),
                ..Overrides::default()
            },
        }
    }
}

impl Limits {
    /// The limit of one clock. Emergency orders look in `emergency`, then
    /// `urgent`, then the normal keys; urgent orders in `urgent`, then the
    /// normal keys. `life_at_risk` picks `contact_life_at_risk` for the
    /// contact clock where one of those override sections sets it (shipped:
    /// emergency only); otherwise it changes nothing.
    pub fn span(
        &self,
        kind: ClockKind,
        appeal: AppealType,
        urgency: Urgency,
        life_at_risk: bool,
    ) -> Span {
        let sections: &[&Overrides] = match urgency {
            Urgency::Normal => &[],
            Urgency::Urgent => &[&self.urgent],
            Urgency::Emergency => &[&self.emergency, &self.urgent],
        };
        if kind == ClockKind::Contact
            && life_at_risk
            && let Some(span) = sections.iter().find_map(|o| o.contact_life_at_risk)
        {
            return span;
        }
        if let Some(span) = sections.iter().find_map(|o| o.get(kind, appeal)) {
            return span;
        }
        match kind {
            ClockKind::Dispatch => self.dispatch,
            ClockKind::Sign => self.sign,
            ClockKind::Contact => self.contact,
            ClockKind::Handle => self.handle.get(appeal),
            ClockKind::Review => self.review,
            ClockKind::FollowUp => self.follow_up,
        }
    }

    /// Checks every span is at most [`MAX_WORKING_DAYS`] or [`MAX_HOURS`];
    /// the error names the key (e.g. `urgent.handle.help: ...`).
    pub fn validate(&self) -> Result<(), String> {
        let mut entries: Vec<(String, Span)> = vec![
            ("dispatch".into(), self.dispatch),
            ("sign".into(), self.sign),
            ("contact".into(), self.contact),
            ("review".into(), self.review),
            ("follow_up".into(), self.follow_up),
        ];
        for appeal in APPEAL_TYPES {
            entries.push((
                format!("handle.{}", appeal_key(appeal)),
                self.handle.get(appeal),
            ));
        }
        entries.extend(self.urgent.entries("urgent"));
        entries.extend(self.emergency.entries("emergency"));
        for (key, span) in entries {
            match span {
                Span::WorkingDays(n) if n > MAX_WORKING_DAYS => {
                    return Err(format!(
                        "{key}: \"{span}\" is longer than {MAX_WORKING_DAYS} working days"
                    ));
                }
                Span::Hours(n) if n > MAX_HOURS => {
                    return Err(format!(
                        "{key}: \"{span}\" is longer than {MAX_HOURS} hours"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use time::PrimitiveDateTime;
    use time::macros::{date, datetime, offset};

    fn work_time() -> WorkTime {
        let calendar = Calendar::load_dir(Path::new("sip-config/calendar")).unwrap();
        WorkTime::new(calendar, offset!(+08:00))
    }

    /// Unix ms of a Beijing local time.
    fn at(local: PrimitiveDateTime) -> i64 {
        (local.assume_offset(offset!(+08:00)).unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Unix ms of the local midnight that ends `day`.
    fn end_of(day: Date) -> i64 {
        at(day.next_day().unwrap().midnight())
    }

    #[test]
    fn spans_parse_and_print() {
        assert_eq!("3d".parse(), Ok(Span::WorkingDays(3)));
        assert_eq!("0d".parse(), Ok(Span::WorkingDays(0)));
        assert_eq!("24h".parse(), Ok(Span::Hours(24)));
        assert_eq!(Span::WorkingDays(15).to_string(), "15d");
        assert_eq!(Span::Hours(2).to_string(), "2h");
        for bad in [
            "",
            "d",
            "3",
            "3D",
            "3 d",
            " 3d",
            "-1d",
            "+1d",
            "3w",
            "1.5h",
            "99999999999d",
            "三d",
        ] {
            let err = bad.parse::<Span>().unwrap_err();
            assert_eq!(err.value, bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn span_errors_in_toml_name_the_value_and_key() {
        let err = toml::from_str::<Limits>("sign = \"1 day\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"1 day\"") && err.contains("sign"), "{err}");
        let err = toml::from_str::<Limits>("sign = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"3d\""), "{err}");
        let err = toml::from_str::<Limits>("[urgent]\nhandle = { help = \"3x\" }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"3x\""), "{err}");
        let err = toml::from_str::<Limits>("[urgent]\nhandle = { helping = \"3d\" }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("helping"), "{err}");
        let err = toml::from_str::<Limits>("[handle]\nquestion = \"3d\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("question"), "{err}");
    }

    #[test]
    fn working_days_in_a_normal_week() {
        let w = work_time();
        // Mon 2026-11-23 10:00.
        let monday = at(datetime!(2026-11-23 10:00));
        assert_eq!(
            w.due(monday, Span::WorkingDays(0)),
            end_of(date!(2026 - 11 - 23))
        );
        assert_eq!(
            w.due(monday, Span::WorkingDays(1)),
            end_of(date!(2026 - 11 - 24))
        );
        assert_eq!(
            w.due(monday, Span::WorkingDays(3)),
            end_of(date!(2026 - 11 - 26))
        );
        // Friday 15:00 + 1 working day: end of Monday.
        let friday = at(datetime!(2026-11-27 15:00));
        assert_eq!(
            w.due(friday, Span::WorkingDays(1)),
            end_of(date!(2026 - 11 - 30))
        );
        // 15 working days from Mon 2026-11-02: three full weeks.
        let start = at(datetime!(2026-11-02 09:00));
        assert_eq!(
            w.due(start, Span::WorkingDays(15)),
            end_of(date!(2026 - 11 - 23))
        );
    }

    #[test]
    fn a_weekend_start_counts_from_monday() {
        let w = work_time();
        let saturday = at(datetime!(2026-11-28 11:00));
        assert_eq!(
            w.due(saturday, Span::WorkingDays(0)),
            end_of(date!(2026 - 11 - 30))
        );
        assert_eq!(
            w.due(saturday, Span::WorkingDays(1)),
            end_of(date!(2026 - 12 - 01))
        );
        let sunday = at(datetime!(2026-11-29 23:00));
        assert_eq!(
            w.due(sunday, Span::WorkingDays(0)),
            end_of(date!(2026 - 11 - 30))
        );
    }

    #[test]
    fn national_day_holiday_and_make_up_saturday() {
        let w = work_time();
        // Wed 2026-09-30 16:00: Oct 1-7 are off, Sat Oct 10 works.
        let start = at(datetime!(2026-09-30 16:00));
        assert_eq!(
            w.due(start, Span::WorkingDays(0)),
            end_of(date!(2026 - 09 - 30))
        );
        assert_eq!(
            w.due(start, Span::WorkingDays(1)),
            end_of(date!(2026 - 10 - 08))
        );
        assert_eq!(
            w.due(start, Span::WorkingDays(2)),
            end_of(date!(2026 - 10 - 09))
        );
        assert_eq!(
            w.due(start, Span::WorkingDays(3)),
            end_of(date!(2026 - 10 - 10))
        );
        assert_eq!(
            w.due(start, Span::WorkingDays(4)),
            end_of(date!(2026 - 10 - 12))
        );
        // Complaint: 15 working days from Sep 30.
        // Oct 8,9,10,12-16 (8), 19-23 (13), 26, 27 (15).
        assert_eq!(
            w.due(start, Span::WorkingDays(15)),
            end_of(date!(2026 - 10 - 27))
        );
    }

    #[test]
    fn a_holiday_start_counts_from_the_next_working_day() {
        let w = work_time();
        // Oct 3 (a Saturday inside the holiday) and Oct 5 (a Monday off).
        for start in [
            at(datetime!(2026-10-03 10:00)),
            at(datetime!(2026-10-05 00:00)),
        ] {
            assert_eq!(
                w.due(start, Span::WorkingDays(0)),
                end_of(date!(2026 - 10 - 08))
            );
            assert_eq!(
                w.due(start, Span::WorkingDays(1)),
                end_of(date!(2026 - 10 - 09))
            );
            assert_eq!(
                w.due(start, Span::WorkingDays(2)),
                end_of(date!(2026 - 10 - 10))
            );
        }
        // The make-up Saturday is itself a day 0.
        let saturday = at(datetime!(2026-10-10 09:00));
        assert_eq!(
            w.due(saturday, Span::WorkingDays(0)),
            end_of(date!(2026 - 10 - 10))
        );
    }

    #[test]
    fn spring_festival() {
        let w = work_time();
        // Sat 2026-02-14 is a make-up working day; Feb 15-23 are off.
        let start = at(datetime!(2026-02-13 17:00));
        assert_eq!(
            w.due(start, Span::WorkingDays(1)),
            end_of(date!(2026 - 02 - 14))
        );
        assert_eq!(
            w.due(start, Span::WorkingDays(2)),
            end_of(date!(2026 - 02 - 24))
        );
        // Consultation (3d) from the eve: day 0 is Feb 24; 25, 26, 27.
        let eve = at(datetime!(2026-02-16 20:00));
        assert_eq!(
            w.due(eve, Span::WorkingDays(3)),
            end_of(date!(2026 - 02 - 27))
        );
        // Sat Feb 28 works: help (7d) from Mon Feb 23 (off) runs
        // Feb 24 (day 0); 25, 26, 27, 28, Mar 2, 3, 4.
        let off = at(datetime!(2026-02-23 09:00));
        assert_eq!(
            w.due(off, Span::WorkingDays(7)),
            end_of(date!(2026 - 03 - 04))
        );
    }

    #[test]
    fn local_date_not_utc_date_decides() {
        let w = work_time();
        // Mon 23:59 local is Mon 15:59 UTC: same working day, due a minute later.
        let late = at(datetime!(2026-11-23 23:59));
        assert_eq!(w.due(late, Span::WorkingDays(0)), late + 60_000);
        assert_eq!(
            w.due(late, Span::WorkingDays(1)),
            end_of(date!(2026 - 11 - 24))
        );
        // Sat 07:00 local is Fri 23:00 UTC, but it is Saturday here.
        let early = at(datetime!(2026-11-28 07:00));
        assert_eq!(
            w.due(early, Span::WorkingDays(0)),
            end_of(date!(2026 - 11 - 30))
        );
        // Exactly local midnight starts the new day.
        let midnight = at(datetime!(2026-11-24 00:00));
        assert_eq!(
            w.due(midnight, Span::WorkingDays(0)),
            end_of(date!(2026 - 11 - 24))
        );
        assert_eq!(w.local_date(midnight), Some(date!(2026 - 11 - 24)));
        assert_eq!(w.local_date(midnight - 1), Some(date!(2026 - 11 - 23)));
        assert!(!w.is_working_day_at(early));
    }

    #[test]
    fn hours_are_wall_clock() {
        let w = work_time();
        let start = at(datetime!(2026-10-01 22:30));
        assert_eq!(
            w.due(start, Span::Hours(2)),
            at(datetime!(2026-10-02 00:30))
        );
        assert_eq!(
            w.due(start, Span::Hours(24)),
            at(datetime!(2026-10-02 22:30))
        );
        assert_eq!(w.due(start, Span::Hours(0)), start);
        assert_eq!(w.due(i64::MAX - 1, Span::Hours(1)), i64::MAX);
    }

    #[test]
    fn dates_outside_the_calendar_follow_weekends() {
        let w = work_time();
        // 2030 is not loaded: May 1 2030 (a Wednesday) is an ordinary day.
        let start = at(datetime!(2030-05-01 10:00));
        assert_eq!(
            w.due(start, Span::WorkingDays(0)),
            end_of(date!(2030 - 05 - 01))
        );
        // Fri 2030-05-03 + 1 = Mon 2030-05-06.
        let friday = at(datetime!(2030-05-03 10:00));
        assert_eq!(
            w.due(friday, Span::WorkingDays(1)),
            end_of(date!(2030 - 05 - 06))
        );
        // Beyond what `time::Date` holds: no panic, still a weekday rule.
        let far = w.due(i64::MAX / 2, Span::WorkingDays(3));
        assert!(far > i64::MAX / 2);
        assert!(w.due(i64::MIN, Span::WorkingDays(1)) > i64::MIN);
    }

    #[test]
    fn extensions_add_working_days_to_the_due_day() {
        let w = work_time();
        // Due at the end of Fri 2026-11-27; 3 more working days: Wed Dec 2.
        let due = end_of(date!(2026 - 11 - 27));
        assert_eq!(w.extend(due, 3), end_of(date!(2026 - 12 - 02)));
        assert_eq!(w.extend(due, 0), due);
        // Due at the end of Wed Sep 30: the holiday is skipped.
        let due = end_of(date!(2026 - 09 - 30));
        assert_eq!(w.extend(due, 1), end_of(date!(2026 - 10 - 08)));
        assert_eq!(w.extend(due, 3), end_of(date!(2026 - 10 - 10)));
        // An hours due (Mon 14:00) extends from its own day.
        let due = at(datetime!(2026-11-23 14:00));
        assert_eq!(w.extend(due, 1), end_of(date!(2026 - 11 - 24)));
    }

    #[test]
    fn working_days_between_counts_after_from_up_to_to() {
        let w = work_time();
        let mon = at(datetime!(2026-11-23 09:00));
        assert_eq!(w.working_days_between(mon, mon), 0);
        assert_eq!(
            w.working_days_between(mon, at(datetime!(2026-11-23 23:59))),
            0
        );
        assert_eq!(
            w.working_days_between(mon, at(datetime!(2026-11-24 00:00))),
            1
        );
        assert_eq!(
            w.working_days_between(mon, at(datetime!(2026-11-27 18:00))),
            4
        );
        assert_eq!(
            w.working_days_between(mon, at(datetime!(2026-11-30 08:00))),
            5
        );
        // Backwards is zero.
        assert_eq!(w.working_days_between(mon, mon - DAY_MS * 3), 0);
        // Signed Friday, asked Sunday: no working day has started yet;
        // Monday is the first.
        let fri = at(datetime!(2026-11-27 16:00));
        assert_eq!(
            w.working_days_between(fri, at(datetime!(2026-11-29 12:00))),
            0
        );
        assert_eq!(
            w.working_days_between(fri, at(datetime!(2026-11-30 12:00))),
            1
        );
        // Across National Day: Sep 30 → Oct 10 has Oct 8, 9, 10.
        let sep30 = at(datetime!(2026-09-30 10:00));
        assert_eq!(
            w.working_days_between(sep30, at(datetime!(2026-10-10 10:00))),
            3
        );
        assert_eq!(
            w.working_days_between(sep30, at(datetime!(2026-10-07 10:00))),
            0
        );
    }

    #[test]
    fn default_limits_follow_domain() {
        let l = Limits::default();
        use AppealType::*;
        use ClockKind::*;
        use Urgency::*;
        assert_eq!(l.span(Dispatch, Help, Normal, false), Span::WorkingDays(0));
        assert_eq!(l.span(Sign, Help, Normal, false), Span::WorkingDays(1));
        assert_eq!(l.span(Contact, Help, Normal, false), Span::WorkingDays(2));
        assert_eq!(l.span(Review, Help, Normal, false), Span::WorkingDays(1));
        assert_eq!(l.span(FollowUp, Help, Normal, false), Span::WorkingDays(1));
        let handle = |a| l.span(Handle, a, Normal, false);
        assert_eq!(handle(Consultation), Span::WorkingDays(3));
        assert_eq!(handle(Help), Span::WorkingDays(7));
        assert_eq!(handle(Suggestion), Span::WorkingDays(7));
        assert_eq!(handle(Complaint), Span::WorkingDays(15));
        assert_eq!(handle(Report), Span::WorkingDays(15));
        assert_eq!(handle(Praise), Span::WorkingDays(3));
        assert_eq!(handle(Other), Span::WorkingDays(7));
        // Urgent changes nothing by default.
        for kind in ClockKind::ALL {
            assert_eq!(
                l.span(kind, Complaint, Urgent, false),
                l.span(kind, Complaint, Normal, false)
            );
        }
        // Emergency: dispatched at once, first contact 24 h, 2 h at risk.
        assert_eq!(l.span(Dispatch, Help, Emergency, false), Span::Hours(0));
        assert_eq!(l.span(Sign, Help, Emergency, false), Span::Hours(1));
        assert_eq!(l.span(Contact, Help, Emergency, false), Span::Hours(24));
        assert_eq!(l.span(Contact, Help, Emergency, true), Span::Hours(2));
        assert_eq!(l.span(Handle, Help, Emergency, true), Span::WorkingDays(7));
        // life_at_risk only matters where a section sets it.
        assert_eq!(l.span(Contact, Help, Normal, true), Span::WorkingDays(2));
        assert!(l.validate().is_ok());
    }

    #[test]
    fn limits_toml_round_trip() {
        let l = Limits::default();
        let text = toml::to_string(&l).unwrap();
        assert_eq!(toml::from_str::<Limits>(&text).unwrap(), l, "{text}");
        assert_eq!(toml::from_str::<Limits>("").unwrap(), l);
        let mut custom = Limits::default();
        custom.urgent.sign = Some(Span::Hours(4));
        custom.urgent.handle = Some(HandleOverride::ByType(HandleOverrides {
            help: Some(Span::WorkingDays(3)),
            ..Default::default()
        }));
        custom.emergency.handle = Some(HandleOverride::All(Span::WorkingDays(3)));
        let text = toml::to_string(&custom).unwrap();
        assert_eq!(toml::from_str::<Limits>(&text).unwrap(), custom, "{text}");
    }

    #[test]
    fn urgency_overrides_fall_back_level_by_level() {
        let text = r#"
            sign = "2d"
            [handle]
            complaint = "10d"
            [urgent]
            sign = "4h"
            contact = "1d"
            review = "8h"
            handle = { consultation = "1d", help = "3d" }
            [emergency]
            contact_life_at_risk = "1h"
            handle = "2d"
        "#;
        let l: Limits = toml::from_str(text).unwrap();
        use AppealType::*;
        use ClockKind::*;
        use Urgency::*;
        // Normal keys not given keep their defaults.
        assert_eq!(l.span(Sign, Help, Normal, false), Span::WorkingDays(2));
        assert_eq!(
            l.span(Handle, Complaint, Normal, false),
            Span::WorkingDays(10)
        );
        assert_eq!(l.span(Handle, Report, Normal, false), Span::WorkingDays(15));
        // Urgent: overridden where given, normal elsewhere.
        assert_eq!(l.span(Sign, Help, Urgent, false), Span::Hours(4));
        assert_eq!(l.span(Contact, Help, Urgent, true), Span::WorkingDays(1));
        assert_eq!(
            l.span(Handle, Consultation, Urgent, false),
            Span::WorkingDays(1)
        );
        assert_eq!(l.span(Handle, Help, Urgent, false), Span::WorkingDays(3));
        assert_eq!(
            l.span(Handle, Complaint, Urgent, false),
            Span::WorkingDays(10)
        );
        assert_eq!(l.span(Dispatch, Help, Urgent, false), Span::WorkingDays(0));
        // Emergency: its own keys, then urgent's, then normal.
        assert_eq!(
            l.span(Handle, Complaint, Emergency, false),
            Span::WorkingDays(2)
        );
        assert_eq!(l.span(Review, Help, Emergency, false), Span::Hours(8));
        assert_eq!(l.span(Review, Help, Urgent, false), Span::Hours(8));
        assert_eq!(l.span(Review, Help, Normal, false), Span::WorkingDays(1));
        assert_eq!(
            l.span(FollowUp, Help, Emergency, false),
            Span::WorkingDays(1)
        );
        assert_eq!(l.span(Contact, Help, Emergency, true), Span::Hours(1));
        // Shipped emergency keys the file does not name stay.
        assert_eq!(l.span(Dispatch, Help, Emergency, false), Span::Hours(0));
        assert_eq!(l.emergency.sign, Some(Span::Hours(1)));
        assert_eq!(l.emergency.contact, Some(Span::Hours(24)));
    }

    #[test]
    fn overlong_limits_are_refused_by_key() {
        let l: Limits = toml::from_str("[urgent]\nhandle = { help = \"400d\" }\n").unwrap();
        let err = l.validate().unwrap_err();
        assert!(err.starts_with("urgent.handle.help:"), "{err}");
        let l: Limits = toml::from_str("[emergency]\ncontact = \"9000h\"\n").unwrap();
        let err = l.validate().unwrap_err();
        assert!(err.starts_with("emergency.contact:"), "{err}");
        let l: Limits = toml::from_str("[handle]\nreport = \"367d\"\n").unwrap();
        assert!(l.validate().unwrap_err().starts_with("handle.report:"));
        let l: Limits = toml::from_str("review = \"366d\"\n").unwrap();
        assert!(l.validate().is_ok());
    }
}
