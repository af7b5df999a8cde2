//! Wall-clock facts for branches: local time of day and date, from a UTC
//! offset passed in by the caller of the interpreter (sans-IO: nothing here
//! reads the clock).

use time::{OffsetDateTime, UtcOffset};

/// Parses `+08:00` / `-05:30` / `Z`.
pub fn parse_offset(text: &str) -> Option<UtcOffset> {
    if text == "Z" || text == "+00:00" {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1i8, &text[1..]),
        b'-' => (-1i8, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// Parses `HH:MM` into minutes after midnight.
pub fn parse_hhmm(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

/// Minutes after local midnight.
pub fn minute_of_day(t: OffsetDateTime) -> u16 {
    u16::from(t.hour()) * 60 + u16::from(t.minute())
}

/// Whether `now` (minutes) is within [from, to), wrapping past midnight.
pub fn within(now: u16, from: u16, to: u16) -> bool {
    if from <= to {
        (from..to).contains(&now)
    } else {
        now >= from || now < to
    }
}

/// `mon` … `sun` for a date.
pub fn weekday_name(t: OffsetDateTime) -> &'static str {
    match t.weekday() {
        time::Weekday::Monday => "mon",
        time::Weekday::Tuesday => "tue",
        time::Weekday::Wednesday => "wed",
        time::Weekday::Thursday => "thu",
        time::Weekday::Friday => "fri",
        time::Weekday::Saturday => "sat",
        time::Weekday::Sunday => "sun",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_times() {
        assert_eq!(parse_offset("+08:00"), UtcOffset::from_hms(8, 0, 0).ok());
        assert_eq!(parse_offset("-05:30"), UtcOffset::from_hms(-5, -30, 0).ok());
        assert_eq!(parse_offset("CST"), None);
        assert_eq!(parse_hhmm("08:30"), Some(510));
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        assert_eq!(parse_hhmm("8h"), None);
        assert!(within(600, 480, 1200));
        assert!(!within(1300, 480, 1200));
        assert!(within(1380, 1320, 480), "22:00-08:00 covers 23:00");
        assert!(within(60, 1320, 480));
        assert!(!within(600, 1320, 480));
    }
}
