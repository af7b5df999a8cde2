//! A calendar month of the hotline's local time (`[orders] utc_offset`):
//! the period every monthly KPI, score and report covers.

use std::fmt;
use time::{Date, Month as TimeMonth, UtcOffset};

const DAY_MS: i64 = 86_400_000;

/// A month such as `2026-10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    /// 1-12.
    pub month: u8,
}

impl Month {
    /// Parses `YYYY-MM`; the error says what was expected.
    pub fn parse(text: &str) -> Result<Month, String> {
        let bad = || format!("{text:?} is not a month; expected YYYY-MM, e.g. 2026-10");
        let (y, m) = text.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !(1970..=9999).contains(&year) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    /// The month after this one.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before this one.
    pub fn prev(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    fn first_day(self) -> Date {
        let month = TimeMonth::try_from(self.month).unwrap_or(TimeMonth::January);
        Date::from_calendar_date(self.year, month, 1).unwrap_or(Date::MIN)
    }

    /// Unix ms of local midnight starting the month.
    pub fn start(self, offset: UtcOffset) -> i64 {
        let t = self.first_day().midnight().assume_offset(offset);
        t.unix_timestamp() * 1000
    }

    /// `[start, end)` in Unix ms.
    pub fn bounds(self, offset: UtcOffset) -> (i64, i64) {
        (self.start(offset), self.next().start(offset))
    }

    /// Days in the month.
    pub fn days(self, offset: UtcOffset) -> usize {
        let (a, b) = self.bounds(offset);
        ((b - a) / DAY_MS) as usize
    }

    /// The month a Unix ms time falls in, in local time.
    pub fn of(ms: i64, offset: UtcOffset) -> Month {
        let local = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .to_offset(offset);
        Month {
            year: local.year(),
            month: u8::from(local.month()),
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// `YYYY-MM-DD HH:MM` in local time, for lists in the report.
pub fn local_time(ms: i64, offset: UtcOffset) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CST: UtcOffset = time::macros::offset!(+08:00);

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            Month::parse("2026-10").unwrap(),
            Month {
                year: 2026,
                month: 10
            }
        );
        for bad in [
            "2026-13", "2026-1", "26-10", "2026/10", "", "2026-00", "abcd-ef",
        ] {
            assert!(Month::parse(bad).unwrap_err().contains("YYYY-MM"), "{bad}");
        }
    }

    #[test]
    fn bounds_are_local_midnights() {
        let m = Month::parse("2026-10").unwrap();
        let (a, b) = m.bounds(CST);
        // 2026-10-01T00:00+08:00 = 2026-09-30T16:00Z.
        assert_eq!(a, 1_790_784_000_000);
        assert_eq!(b - a, 31 * DAY_MS);
        assert_eq!(m.days(CST), 31);
        assert_eq!(Month::of(a, CST), m);
        assert_eq!(Month::of(a - 1, CST), m.prev());
        assert_eq!(Month::of(b, CST), m.next());
        assert_eq!(
            Month::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(local_time(a, CST), "2026-10-01 00:00");
    }
}
