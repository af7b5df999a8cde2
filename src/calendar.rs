//! The working-day calendar: China's statutory holidays and make-up working
//! days (调休), one TOML file per year in `sip-config/calendar/`.
//!
//! A date is a working day when it is a make-up working day, or a weekday
//! that is not a holiday. IVR branches ask it now; order deadlines will too.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;
use time::{Date, Weekday};

/// Why a calendar file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CalendarError {
    pub path: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    /// Days off (public holidays and the days moved next to them).
    holidays: Vec<String>,
    /// Weekend days that are working days.
    #[serde(default)]
    workdays: Vec<String>,
}

/// Holidays and make-up working days of all loaded years.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calendar {
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
}

fn parse_date(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format).ok()
}

impl Calendar {
    /// Loads every `*.toml` in a folder; a missing folder is an empty calendar.
    pub fn load_dir(dir: &Path) -> Result<Calendar, CalendarError> {
        let mut cal = Calendar::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(cal);
        };
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for path in files {
            let fail = |message: String| CalendarError {
                path: path.display().to_string(),
                message,
            };
            let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
            let year: YearFile = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
            for (list, set) in [
                (&year.holidays, &mut cal.holidays),
                (&year.workdays, &mut cal.workdays),
            ] {
                for day in list {
                    let date = parse_date(day)
                        .ok_or_else(|| fail(format!("{day:?} is not YYYY-MM-DD")))?;
                    if date.year() != year.year {
                        return Err(fail(format!("{day} is not in {}", year.year)));
                    }
                    set.insert(date);
                }
            }
        }
        Ok(cal)
    }

    /// Builds a calendar from lists (tests, simulator).
    pub fn from_dates(holidays: &[Date], workdays: &[Date]) -> Calendar {
        Calendar {
            holidays: holidays.iter().copied().collect(),
            workdays: workdays.iter().copied().collect(),
        }
    }

    /// A statutory day off.
    pub fn is_holiday(&self, date: Date) -> bool {
        self.holidays.contains(&date)
    }

    /// A day the government works.
    pub fn is_working_day(&self, date: Date) -> bool {
        if self.workdays.contains(&date) {
            return true;
        }
        !self.holidays.contains(&date)
            && !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn shipped_2026_calendar() {
        let cal = Calendar::load_dir(Path::new("sip-config/calendar")).unwrap();
        // National Day week off, the Saturday after it worked.
        assert!(cal.is_holiday(date!(2026 - 10 - 01)));
        assert!(!cal.is_working_day(date!(2026 - 10 - 05)));
        assert!(cal.is_working_day(date!(2026 - 10 - 10)));
        // An ordinary week.
        assert!(cal.is_working_day(date!(2026 - 11 - 27)));
        assert!(!cal.is_working_day(date!(2026 - 11 - 28)));
    }

    #[test]
    fn bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("hotline-cal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("2026.toml"),
            "year = 2026\nholidays = [\"2026-13-01\"]\n",
        )
        .unwrap();
        let err = Calendar::load_dir(&dir).unwrap_err().to_string();
        assert!(
            err.contains("2026.toml") && err.contains("2026-13-01"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
