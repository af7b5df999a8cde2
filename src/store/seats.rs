//! Seats kept in the database, managed by the API and `hotline agents`.
//!
//! Seats come from two places: `[[seat]]` in the config file and the `seats`
//! table. [`merge`] makes the one list the registrar and the ACD get; a config
//! seat wins an id clash, because the file is what operators keep under
//! change control. This room validates and stores; it never touches the
//! registrar or the ACD itself (the server applies [`merge`]'s result).

use super::{Store, StoreError};
use crate::config::{Config, SeatConfig};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet};

/// Longest seat id, name, password and language code accepted.
const MAX_ID: usize = 32;
const MAX_NAME: usize = 100;
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 128;
const MAX_SKILL_NAME: usize = 32;
const MAX_LANGUAGE: usize = 16;

/// Why a seat was refused or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SeatError {
    /// A field is wrong; `field` is its name in the API and the CLI.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no stored seat {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SeatError {
    fn from(e: sqlx::Error) -> Self {
        SeatError::Store(StoreError::Query(e))
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> SeatError {
    SeatError::Invalid {
        field,
        message: message.into(),
    }
}

/// A seat as the API or the CLI asks for it to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatInput {
    pub id: String,
    pub password: String,
    pub name: String,
    pub enabled: bool,
    pub skills: BTreeMap<String, u8>,
    pub languages: Vec<String>,
}

/// Where a seat of the merged list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatSource {
    Config,
    Store,
}

impl SeatSource {
    /// The word the CLI and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatSource::Config => "config",
            SeatSource::Store => "store",
        }
    }
}

/// A row of the `seats` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredSeat {
    pub id: String,
    /// Never shown: the API and the CLI print everything else.
    #[serde(skip_serializing)]
    pub password: String,
    pub name: String,
    pub enabled: bool,
    pub skills: BTreeMap<String, u8>,
    pub languages: Vec<String>,
    /// Unix ms.
    pub created_at: i64,
    pub updated_at: i64,
}

impl StoredSeat {
    /// The seat in the config's terms, for the registrar and the ACD.
    pub fn to_config(&self) -> SeatConfig {
        SeatConfig {
            id: self.id.clone(),
            password: self.password.clone(),
            name: self.name.clone(),
            enabled: self.enabled,
            skills: self.skills.clone(),
            languages: self.languages.clone(),
        }
    }
}

/// Checks a seat id: letters and digits, as a SIP user part must be to be
/// dialled from a phone keypad and to match `[[seat]]` ids.
pub fn validate_id(id: &str) -> Result<(), SeatError> {
    if id.is_empty() || id.len() > MAX_ID || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            "id",
            format!("{id:?} must be 1 to {MAX_ID} letters and digits"),
        ));
    }
    Ok(())
}

impl SeatInput {
    /// Checks every field; the error names the first one at fault.
    pub fn validate(&self) -> Result<(), SeatError> {
        validate_id(&self.id)?;
        let chars = self.password.chars().count();
        if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&chars) {
            return Err(invalid(
                "password",
                format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
            ));
        }
        if self.password.chars().any(char::is_control) {
            return Err(invalid("password", "must not contain control characters"));
        }
        if self.name.chars().count() > MAX_NAME || self.name.chars().any(char::is_control) {
            return Err(invalid(
                "name",
                format!("must be at most {MAX_NAME} characters, without control characters"),
            ));
        }
        for (skill, level) in &self.skills {
            let good_name = !skill.is_empty()
                && skill.len() <= MAX_SKILL_NAME
                && skill
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !good_name {
                return Err(invalid(
                    "skills",
                    format!(
                        "skill name {skill:?} must be 1 to {MAX_SKILL_NAME} letters, digits, '_' or '-'"
                    ),
                ));
            }
            if !(1..=10).contains(level) {
                return Err(invalid(
                    "skills",
                    format!("skill {skill:?} has level {level}; levels are 1 to 10"),
                ));
            }
        }
        if self.languages.is_empty() {
            return Err(invalid("languages", "a seat needs at least one language"));
        }
        let mut seen = BTreeSet::new();
        for lang in &self.languages {
            let good = !lang.is_empty()
                && lang.len() <= MAX_LANGUAGE
                && lang
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !good {
                return Err(invalid(
                    "languages",
                    format!(
                        "{lang:?} must be a language code of 1 to {MAX_LANGUAGE} lower-case letters, digits or '-' (e.g. cmn, mn)"
                    ),
                ));
            }
            if !seen.insert(lang.as_str()) {
                return Err(invalid("languages", format!("{lang:?} is listed twice")));
            }
        }
        Ok(())
    }
}

const COLUMNS: &str = "id, password, name, enabled, skills, languages, created_at, updated_at";

impl Store {
    /// Creates or replaces a stored seat (keeping its creation time);
    /// returns it and whether it is new.
    pub async fn upsert_seat(&self, seat: &SeatInput) -> Result<(StoredSeat, bool), SeatError> {
        seat.validate()?;
        let now = crate::call::record::now_ms();
        let skills = serde_json::to_string(&seat.skills).unwrap_or_else(|_| "{}".into());
        let languages = serde_json::to_string(&seat.languages).unwrap_or_else(|_| "[]".into());
        let mut tx = self.pool.begin().await?;
        let existed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM seats WHERE id = $1")
            .bind(seat.id.clone())
            .fetch_one(&mut *tx)
            .await?;
        // ON CONFLICT ... DO UPDATE is spelled the same in SQLite and PostgreSQL.
        sqlx::query(
            "INSERT INTO seats (id, password, name, enabled, skills, languages, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET password = excluded.password, name = excluded.name, \
             enabled = excluded.enabled, skills = excluded.skills, languages = excluded.languages, \
             updated_at = excluded.updated_at",
        )
        .bind(seat.id.clone())
        .bind(seat.password.clone())
        .bind(seat.name.clone())
        .bind(i32::from(seat.enabled))
        .bind(skills)
        .bind(languages)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let stored = self
            .stored_seat(&seat.id)
            .await?
            .ok_or_else(|| SeatError::NotFound(seat.id.clone()))?;
        Ok((stored, existed == 0))
    }

    /// Every stored seat, in id order.
    pub async fn stored_seats(&self) -> Result<Vec<StoredSeat>, SeatError> {
        let sql = format!("SELECT {COLUMNS} FROM seats ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_seat).collect()
    }

    /// One stored seat.
    pub async fn stored_seat(&self, id: &str) -> Result<Option<StoredSeat>, SeatError> {
        let sql = format!("SELECT {COLUMNS} FROM seats WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_seat).transpose()
    }

    /// Enables or disables a stored seat; returns it as changed.
    pub async fn set_seat_enabled(&self, id: &str, enabled: bool) -> Result<StoredSeat, SeatError> {
        validate_id(id)?;
        let done = sqlx::query("UPDATE seats SET enabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i32::from(enabled))
            .bind(crate::call::record::now_ms())
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(SeatError::NotFound(id.to_owned()));
        }
        self.stored_seat(id)
            .await?
            .ok_or_else(|| SeatError::NotFound(id.to_owned()))
    }
}

fn row_to_seat(row: &AnyRow) -> Result<StoredSeat, SeatError> {
    let id: String = row.try_get("id")?;
    let skills: String = row.try_get("skills")?;
    let languages: String = row.try_get("languages")?;
    // A row edited by hand into bad JSON must not take the server down:
    // say which seat, and let the caller decide.
    let skills = serde_json::from_str(&skills)
        .map_err(|e| invalid("skills", format!("stored seat {id:?}: {e}")))?;
    let languages = serde_json::from_str(&languages)
        .map_err(|e| invalid("languages", format!("stored seat {id:?}: {e}")))?;
    Ok(StoredSeat {
        password: row.try_get("password")?,
        name: row.try_get("name")?,
        enabled: row.try_get::<i32, _>("enabled")? != 0,
        skills,
        languages,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        id,
    })
}

/// The config's seats and the store's, as one list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merged {
    /// In id order.
    pub seats: Vec<(SeatConfig, SeatSource)>,
    /// Stored seats hidden by a config seat with the same id.
    pub shadowed: Vec<String>,
}

impl Merged {
    /// A copy of `config` whose `seats` are the merged list, for the code
    /// that reads seats from a config (registrar accounts, the ACD).
    pub fn apply_to(&self, config: &Config) -> Config {
        let mut c = config.clone();
        c.seats = self.seats.iter().map(|(s, _)| s.clone()).collect();
        c
    }

    /// A seat of the list.
    pub fn get(&self, id: &str) -> Option<&(SeatConfig, SeatSource)> {
        self.seats.iter().find(|(s, _)| s.id == id)
    }
}

/// Merges config seats and stored seats; a config seat wins an id clash.
pub fn merge(config: &[SeatConfig], stored: &[StoredSeat]) -> Merged {
    let mut all: BTreeMap<&str, (SeatConfig, SeatSource)> = BTreeMap::new();
    for s in config {
        all.insert(&s.id, (s.clone(), SeatSource::Config));
    }
    let mut shadowed = Vec::new();
    for s in stored {
        if all.contains_key(s.id.as_str()) {
            shadowed.push(s.id.clone());
        } else {
            all.insert(&s.id, (s.to_config(), SeatSource::Store));
        }
    }
    Merged {
        seats: all.into_values().collect(),
        shadowed,
    }
}

/// The store's seats as last read, kept by the server so that a config
/// reload (which cannot wait on the database) still sees them.
#[derive(Debug, Default)]
pub struct SeatCache {
    seats: std::sync::Mutex<Vec<StoredSeat>>,
    /// Serialises read-then-apply, so an older read never lands last.
    pub refresh: tokio::sync::Mutex<()>,
}

impl SeatCache {
    /// A cache holding these seats.
    pub fn new(seats: Vec<StoredSeat>) -> SeatCache {
        SeatCache {
            seats: std::sync::Mutex::new(seats),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The seats last read.
    pub fn get(&self) -> Vec<StoredSeat> {
        self.seats.lock().expect("seat cache").clone()
    }

    /// Replaces the seats last read.
    pub fn set(&self, seats: Vec<StoredSeat>) {
        *self.seats.lock().expect("seat cache") = seats;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SeatInput {
        SeatInput {
            id: "2001".into(),
            password: "secret-2001".into(),
            name: "Wang Fang".into(),
            enabled: true,
            skills: BTreeMap::from([("general".into(), 5)]),
            languages: vec!["cmn".into()],
        }
    }

    fn stored(id: &str) -> StoredSeat {
        StoredSeat {
            id: id.into(),
            password: "secret-pass".into(),
            name: String::new(),
            enabled: true,
            skills: BTreeMap::new(),
            languages: vec!["cmn".into()],
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn bad_fields_are_named() {
        assert!(input().validate().is_ok());
        type Change = fn(&mut SeatInput);
        let cases: Vec<(Change, &str)> = vec![
            (|s| s.id = "20 01".into(), "id"),
            (|s| s.id = String::new(), "id"),
            (|s| s.id = "a".repeat(33), "id"),
            (|s| s.password = "short".into(), "password"),
            (|s| s.name = "a\nb".into(), "name"),
            (
                |s| {
                    s.skills.insert("general".into(), 11);
                },
                "skills",
            ),
            (
                |s| {
                    s.skills.insert("general".into(), 0);
                },
                "skills",
            ),
            (
                |s| {
                    s.skills.insert("a b".into(), 3);
                },
                "skills",
            ),
            (|s| s.languages.clear(), "languages"),
            (|s| s.languages = vec!["CMN".into()], "languages"),
            (
                |s| s.languages = vec!["mn".into(), "mn".into()],
                "languages",
            ),
        ];
        for (change, field) in cases {
            let mut s = input();
            change(&mut s);
            match s.validate() {
                Err(SeatError::Invalid { field: f, .. }) => assert_eq!(f, field, "{s:?}"),
                other => panic!("{s:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn config_wins_a_clash() {
        let config = crate::config::demo_seats();
        let merged = merge(&config[..2], &[stored("1001"), stored("2001")]);
        assert_eq!(merged.shadowed, vec!["1001".to_string()]);
        let ids: Vec<_> = merged
            .seats
            .iter()
            .map(|(s, src)| (s.id.as_str(), *src))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("1001", SeatSource::Config),
                ("1002", SeatSource::Config),
                ("2001", SeatSource::Store)
            ]
        );
        assert_eq!(merged.get("1001").unwrap().0.password, "hotline-1001");
        let c = merged.apply_to(&Config::default());
        assert_eq!(c.seats.len(), 3);
    }

    #[tokio::test]
    async fn stored_seats_round_trip() {
        let dir = std::env::temp_dir().join(format!("hotline-seats-{}", std::process::id()));
        let url = format!("sqlite://{}/seats.db", dir.display());
        let store = Store::connect(&url).await.unwrap();
        let (seat, created) = store.upsert_seat(&input()).await.unwrap();
        assert!(created);
        assert_eq!(seat.skills.get("general"), Some(&5));
        let mut changed = input();
        changed.name = "Li Lei".into();
        let (seat, created) = store.upsert_seat(&changed).await.unwrap();
        assert!(!created);
        assert_eq!(seat.name, "Li Lei");
        let seat = store.set_seat_enabled("2001", false).await.unwrap();
        assert!(!seat.enabled);
        assert!(matches!(
            store.set_seat_enabled("9999", false).await,
            Err(SeatError::NotFound(_))
        ));
        assert_eq!(store.stored_seats().await.unwrap().len(), 1);
        store.close().await;
        std::fs::remove_dir_all(dir).ok();
    }
}
