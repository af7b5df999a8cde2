//! The store: SQLite (embedded default) or PostgreSQL, through sqlx.
//!
//! One code path serves both through sqlx's `Any` driver with `$n`
//! placeholders; each dialect has its own migration folder because their DDL
//! differs. Times are stored as Unix milliseconds (`BIGINT`) so both dialects
//! agree. Call records reach the database through [`writer`], which batches
//! them and keeps them in memory while the database is away.

pub mod callers;
pub mod kb;
pub mod order_import;
pub mod orders;
pub mod outbox;
pub mod report;
pub mod seat_log;
pub mod seats;
pub mod users;
pub mod wallboard;
pub mod writer;

use crate::call::record::{CallRecord, RtpSummary};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Row, Transaction};
use std::path::Path;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
    #[error("cannot create the folder for {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
}

/// Which SQL dialect the URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection pool plus its dialect.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

const COLUMNS: &str = "call_id, caller, callee, remote_addr, transport, started_at, answered_at, \
    ended_at, status, end_reason, hangup_by, codec, digits, packets_in, packets_out, octets_in, \
    octets_out, packets_lost, packets_late, jitter_ms, peer_lost, peer_jitter_ms, flow, flow_hash, \
    flow_path, final_action, queue, survey_score, callback_requested, recording, language, \
    queued_at, seat, seat_call_id, seat_codec, connected_at, seat_ended_at, call_recording, transfers";
const COLUMN_COUNT: usize = 39;

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = if url.starts_with("sqlite:") {
            (Dialect::Sqlite, prepare_sqlite(url)?)
        } else {
            (Dialect::Postgres, url.to_owned())
        };
        let mut options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .max_connections(if dialect == Dialect::Sqlite { 1 } else { 8 });
        if dialect == Dialect::Sqlite {
            // One writer connection: SQLite serialises writes anyway, and WAL
            // lets the API read while the writer commits.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode=WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout=5000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(&url),
                source,
            })?;
        let store = Store { pool, dialect };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.dialect {
            Dialect::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Dialect::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// The dialect in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Cheap liveness check for `/healthz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Writes records in one transaction: all or none.
    pub async fn insert_calls(&self, records: &[CallRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let head = format!("INSERT INTO calls ({COLUMNS}) VALUES ");
        insert_rows(
            &mut tx,
            self.dialect,
            &head,
            COLUMN_COUNT,
            "",
            records,
            |q, r| {
                q.bind(r.call_id.clone())
                    .bind(r.caller.clone())
                    .bind(r.callee.clone())
                    .bind(r.remote_addr.clone())
                    .bind(r.transport.clone())
                    .bind(r.started_at)
                    .bind(r.answered_at)
                    .bind(r.ended_at)
                    .bind(i32::from(r.status))
                    .bind(r.end_reason.clone())
                    .bind(r.hangup_by.clone())
                    .bind(r.codec.clone())
                    .bind(r.digits.clone())
                    .bind(r.rtp.packets_in)
                    .bind(r.rtp.packets_out)
                    .bind(r.rtp.octets_in)
                    .bind(r.rtp.octets_out)
                    .bind(r.rtp.lost)
                    .bind(r.rtp.late)
                    .bind(r.rtp.jitter_ms)
                    .bind(r.rtp.peer_lost)
                    .bind(r.rtp.peer_jitter_ms)
                    .bind(r.flow.clone())
                    .bind(r.flow_hash.clone())
                    .bind(serde_json::to_string(&r.flow_path).unwrap_or_default())
                    .bind(r.final_action.clone())
                    .bind(r.queue.clone())
                    .bind(r.survey_score.map(i32::from))
                    .bind(i32::from(r.callback_requested))
                    .bind(r.recording.clone())
                    .bind(r.language.clone())
                    .bind(r.queued_at)
                    .bind(r.seat.clone())
                    .bind(r.seat_call_id.clone())
                    .bind(r.seat_codec.clone())
                    .bind(r.connected_at)
                    .bind(r.seat_ended_at)
                    .bind(r.call_recording.clone())
                    .bind(
                        (!r.transfers.is_empty())
                            .then(|| serde_json::to_string(&r.transfers).unwrap_or_default()),
                    )
            },
        )
        .await?;
        let events: Vec<_> = records.iter().map(outbox::call_event).collect();
        outbox::write(&mut tx, self.dialect, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` calls, newest first.
    pub async fn recent_calls(&self, limit: i64) -> Result<Vec<CallRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM calls ORDER BY id DESC LIMIT $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_record).collect()
    }

    /// A caller's newest `limit` calls, newest first (the screen pop's
    /// history).
    pub async fn calls_from(
        &self,
        caller: &str,
        limit: i64,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM calls WHERE caller = $1 ORDER BY id DESC LIMIT $2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(caller.to_owned())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_record).collect()
    }

    /// The newest call with this SIP Call-ID.
    pub async fn call(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM calls WHERE call_id = $1 ORDER BY id DESC LIMIT 1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(call_id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_record).transpose()
    }

    /// The status of an order, by its number; a draft is nobody's business
    /// yet and reads as not found.
    pub async fn order_status(&self, order_no: &str) -> Result<Option<String>, StoreError> {
        let status = sqlx::query_scalar(
            "SELECT status FROM work_orders WHERE order_no = $1 AND status <> 'draft'",
        )
        .bind(order_no.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        Ok(status)
    }

    /// Whether the caller has an order created since `since_ms` that is not
    /// closed yet.
    pub async fn has_open_order(&self, caller: &str, since_ms: i64) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM work_orders WHERE caller = $1 AND created_at >= $2 \
             AND status NOT IN ('closed', 'archived')",
        )
        .bind(caller.to_owned())
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Bound parameters per statement: rows are chunked to stay well under
/// SQLite's limit of 32766 (PostgreSQL allows 65535).
const MAX_PARAMS: usize = 8_000;

type AnyQuery = sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>;

/// `head` + `($1, .., $width), ..` + `tail` for as many rows per statement
/// as [`MAX_PARAMS`] allows; `bind` binds one row's `width` values.
///
/// SQLite gets anonymous `?` placeholders: sqlx looks each numbered one up
/// by name (`sqlite3_bind_parameter_name`, a linear scan), which makes
/// binding a statement quadratic in its parameters; with 8,000 of them
/// that took 90 % of an import's time.
pub(crate) async fn insert_rows<T>(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    head: &str,
    width: usize,
    tail: &str,
    rows: &[T],
    bind: impl Fn(AnyQuery, &T) -> AnyQuery,
) -> Result<(), StoreError> {
    for chunk in rows.chunks((MAX_PARAMS / width).max(1)) {
        let mut sql = String::with_capacity(head.len() + tail.len() + chunk.len() * width * 7);
        sql.push_str(head);
        for row in 0..chunk.len() {
            if row > 0 {
                sql.push(',');
            }
            sql.push('(');
            for col in 0..width {
                if col > 0 {
                    sql.push(',');
                }
                match dialect {
                    Dialect::Sqlite => sql.push('?'),
                    Dialect::Postgres => {
                        sql.push('$');
                        sql.push_str(&(row * width + col + 1).to_string());
                    }
                }
            }
            sql.push(')');
        }
        sql.push_str(tail);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            q = bind(q, row);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

fn row_to_record(row: &AnyRow) -> Result<CallRecord, StoreError> {
    let status: i32 = row.try_get("status")?;
    Ok(CallRecord {
        call_id: row.try_get("call_id")?,
        caller: row.try_get("caller")?,
        callee: row.try_get("callee")?,
        remote_addr: row.try_get("remote_addr")?,
        transport: row.try_get("transport")?,
        started_at: row.try_get("started_at")?,
        answered_at: row.try_get("answered_at")?,
        ended_at: row.try_get("ended_at")?,
        status: u16::try_from(status).unwrap_or_default(),
        end_reason: row.try_get("end_reason")?,
        hangup_by: row.try_get("hangup_by")?,
        codec: row.try_get("codec")?,
        digits: row.try_get("digits")?,
        rtp: RtpSummary {
            packets_in: row.try_get("packets_in")?,
            packets_out: row.try_get("packets_out")?,
            octets_in: row.try_get("octets_in")?,
            octets_out: row.try_get("octets_out")?,
            lost: row.try_get("packets_lost")?,
            late: row.try_get("packets_late")?,
            jitter_ms: row.try_get("jitter_ms")?,
            peer_lost: row.try_get("peer_lost")?,
            peer_jitter_ms: row.try_get("peer_jitter_ms")?,
        },
        flow: row.try_get("flow")?,
        flow_hash: row.try_get("flow_hash")?,
        flow_path: row
            .try_get::<Option<String>, _>("flow_path")?
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default(),
        final_action: row.try_get("final_action")?,
        queue: row.try_get("queue")?,
        survey_score: row
            .try_get::<Option<i32>, _>("survey_score")?
            .and_then(|n| u8::try_from(n).ok()),
        callback_requested: row.try_get::<i32, _>("callback_requested")? != 0,
        recording: row.try_get("recording")?,
        language: row.try_get("language")?,
        queued_at: row.try_get("queued_at")?,
        seat: row.try_get("seat")?,
        seat_call_id: row.try_get("seat_call_id")?,
        seat_codec: row.try_get("seat_codec")?,
        connected_at: row.try_get("connected_at")?,
        seat_ended_at: row.try_get("seat_ended_at")?,
        call_recording: row.try_get("call_recording")?,
        transfers: row
            .try_get::<Option<String>, _>("transfers")?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
    })
}

/// Creates the database file's folder and asks SQLite to create the file.
fn prepare_sqlite(url: &str) -> Result<String, StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or(rest);
    if path != ":memory:"
        && !path.is_empty()
        && let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// Hides a password in a URL before it reaches a log or an error.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn sqlite_url_gets_create_mode() {
        let dir = std::env::temp_dir().join(format!("hotline-store-{}", std::process::id()));
        let url = format!("sqlite://{}/a/b.db", dir.display());
        assert!(prepare_sqlite(&url).unwrap().ends_with("?mode=rwc"));
        assert!(dir.join("a").is_dir());
        std::fs::remove_dir_all(dir).ok();
    }
}
