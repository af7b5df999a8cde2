//! Knowledge-base entries, their change sequence, and hits.
//!
//! Each entry is one JSON document (every version and its log, see
//! [`crate::kb::lifecycle`]) beside the columns search and reports filter
//! on. Every write bumps the one-row `kb_meta.seq` inside its transaction
//! and stamps the entry with it: the row lock makes writers take turns, so
//! sequence order is commit order and a node that polls "changed since N"
//! never skips a write that commits late. Writers hand in a closure that
//! runs the sans-IO lifecycle on the current entry, as orders do.

use super::{Dialect, Store, StoreError};
use crate::auth::Principal;
use crate::kb::lifecycle::{Entry, Event, Refusal};
use crate::orders::lifecycle::{Event as OrderEvent, WorkOrder};
use crate::store::orders::{OrderStoreError, Written as OrderWritten};
use sqlx::{Any, Row, Transaction};

/// Why a knowledge-base write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum KbStoreError {
    #[error("no knowledge-base entry {0}")]
    NotFound(String),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for KbStoreError {
    fn from(e: sqlx::Error) -> Self {
        KbStoreError::Store(StoreError::Query(e))
    }
}

/// An entry as written, with its change sequence number.
#[derive(Debug, Clone)]
pub struct KbWritten {
    pub entry: Entry,
    pub events: Vec<Event>,
    pub seq: i64,
}

/// One of the most-hit entries in a time range.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HotTopic {
    pub entry_id: String,
    pub title: String,
    pub category: String,
    pub hits: i64,
}

fn parse_doc(text: &str) -> Result<Entry, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Query(sqlx::Error::Decode(
            format!("knowledge-base document: {e}").into(),
        ))
    })
}

impl Store {
    /// Takes the next change sequence number; holds the `kb_meta` row
    /// until the transaction ends.
    async fn kb_next_seq(tx: &mut Transaction<'static, Any>) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("UPDATE kb_meta SET seq = seq + 1 WHERE id = 1 RETURNING seq")
            .fetch_one(&mut **tx)
            .await
    }

    async fn kb_write(
        tx: &mut Transaction<'static, Any>,
        entry: &Entry,
        seq: i64,
        now: i64,
        insert: bool,
    ) -> Result<(), sqlx::Error> {
        let head = entry.head();
        let shown = entry.shown();
        let live = entry.live();
        let doc = serde_json::to_string(entry).unwrap_or_default();
        let sql = if insert {
            "INSERT INTO kb_entries (unit, status, head_version, live_version, title, category, \
             division, expires_on, doc, updated_at, seq, entry_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        } else {
            "UPDATE kb_entries SET unit = $1, status = $2, head_version = $3, live_version = $4, \
             title = $5, category = $6, division = $7, expires_on = $8, doc = $9, \
             updated_at = $10, seq = $11 WHERE entry_id = $12 AND created_at = $13"
        };
        sqlx::query(sql)
            .bind(head.content.unit.clone())
            .bind(entry.status().as_str())
            .bind(i64::from(head.version))
            .bind(live.map(|v| i64::from(v.version)))
            .bind(shown.content.title.clone())
            .bind(shown.content.category.clone())
            .bind(shown.content.division.clone())
            .bind(live.and_then(|v| v.content.source.expires.clone()))
            .bind(doc)
            .bind(now)
            .bind(seq)
            .bind(entry.id.clone())
            .bind(entry.created_at)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Makes a new entry: `make` gets its id (`KB` + a number) and runs
    /// the lifecycle's create.
    pub async fn kb_create(
        &self,
        now: i64,
        make: impl FnOnce(String) -> Result<(Entry, Vec<Event>), Refusal>,
    ) -> Result<KbWritten, KbStoreError> {
        let mut tx = self.pool.begin().await?;
        let seq = Self::kb_next_seq(&mut tx).await?;
        let (entry, events) = make(format!("KB{seq:06}"))?;
        Self::kb_write(&mut tx, &entry, seq, now, true).await?;
        tx.commit().await?;
        Ok(KbWritten { entry, events, seq })
    }

    /// Runs `change` on an entry and writes it when it produced events.
    pub async fn kb_change(
        &self,
        id: &str,
        now: i64,
        change: impl FnOnce(&mut Entry) -> Result<Vec<Event>, Refusal>,
    ) -> Result<KbWritten, KbStoreError> {
        let mut tx = self.pool.begin().await?;
        // The sequence row first: writers queue there, so the entry read
        // next is the newest.
        let seq = Self::kb_next_seq(&mut tx).await?;
        let text: Option<String> =
            sqlx::query_scalar("SELECT doc FROM kb_entries WHERE entry_id = $1")
                .bind(id.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        let text = text.ok_or_else(|| KbStoreError::NotFound(id.to_owned()))?;
        let mut entry = parse_doc(&text)?;
        let events = change(&mut entry)?;
        if events.is_empty() {
            // Nothing changed: the sequence number is not spent.
            tx.rollback().await?;
            return Ok(KbWritten {
                entry,
                events,
                seq: 0,
            });
        }
        Self::kb_write(&mut tx, &entry, seq, now, false).await?;
        tx.commit().await?;
        Ok(KbWritten { entry, events, seq })
    }

    /// One entry with its history.
    pub async fn kb_entry(&self, id: &str) -> Result<Option<Entry>, StoreError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT doc FROM kb_entries WHERE entry_id = $1")
                .bind(id.to_owned())
                .fetch_optional(&self.pool)
                .await?;
        text.as_deref().map(parse_doc).transpose()
    }

    /// The current change sequence number.
    pub async fn kb_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT seq FROM kb_meta WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Entries with a live version (the search index's source).
    pub async fn kb_live_entries(&self) -> Result<Vec<Entry>, StoreError> {
        let rows = sqlx::query("SELECT doc FROM kb_entries WHERE live_version IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| parse_doc(&r.try_get::<String, _>("doc")?))
            .collect()
    }

    /// Entries written after sequence number `seq`, oldest change first,
    /// with the highest number seen.
    pub async fn kb_changed_since(&self, seq: i64) -> Result<(Vec<Entry>, i64), StoreError> {
        let rows = sqlx::query("SELECT doc, seq FROM kb_entries WHERE seq > $1 ORDER BY seq")
            .bind(seq)
            .fetch_all(&self.pool)
            .await?;
        let mut last = seq;
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            last = last.max(row.try_get::<i64, _>("seq")?);
            entries.push(parse_doc(&row.try_get::<String, _>("doc")?)?);
        }
        Ok((entries, last))
    }

    /// Ids of entries whose live version's source expired before `today`.
    pub async fn kb_due_expiry(&self, today: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT entry_id FROM kb_entries WHERE live_version IS NOT NULL \
             AND expires_on IS NOT NULL AND expires_on < $1 ORDER BY entry_id",
        )
        .bind(today.to_owned())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Entries of a unit (all statuses) or all entries, newest change
    /// first, for the maintainers' list.
    pub async fn kb_entries(
        &self,
        unit: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Entry>, StoreError> {
        let rows = match unit {
            Some(unit) => {
                sqlx::query("SELECT doc FROM kb_entries WHERE unit = $1 ORDER BY seq DESC LIMIT $2")
                    .bind(unit.to_owned())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT doc FROM kb_entries ORDER BY seq DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| parse_doc(&r.try_get::<String, _>("doc")?))
            .collect()
    }

    /// Records that `agent` answered order `order_no` with `entry_id`; a
    /// second record of the same pair is ignored.
    pub async fn kb_record_hit(
        &self,
        entry_id: &str,
        order_no: &str,
        agent: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::kb_insert_hit(&mut tx, entry_id, order_no, agent, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn kb_insert_hit(
        tx: &mut Transaction<'static, Any>,
        entry_id: &str,
        order_no: &str,
        agent: &str,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO kb_hits (entry_id, order_no, agent, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (entry_id, order_no) DO NOTHING",
        )
        .bind(entry_id.to_owned())
        .bind(order_no.to_owned())
        .bind(agent.to_owned())
        .bind(at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The most-hit entries with a hit in `[from_ms, to_ms)`: most hits
    /// first, ties by entry id.
    pub async fn kb_hot_topics(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<HotTopic>, StoreError> {
        let rows = sqlx::query(
            "SELECT h.entry_id AS entry_id, e.title AS title, e.category AS category, \
             COUNT(*) AS hits FROM kb_hits h JOIN kb_entries e ON e.entry_id = h.entry_id \
             WHERE h.at >= $1 AND h.at < $2 GROUP BY h.entry_id, e.title, e.category \
             ORDER BY hits DESC, h.entry_id LIMIT $3",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HotTopic {
                    entry_id: r.try_get("entry_id")?,
                    title: r.try_get("title")?,
                    category: r.try_get("category")?,
                    hits: r.try_get("hits")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// An order command that closes the order with a knowledge-base entry
    /// (直接答复): the entry must be published, and the hit is recorded in
    /// the same transaction as the order's change.
    #[allow(clippy::too_many_arguments)]
    pub async fn change_order_with_hit(
        &self,
        order_no: &str,
        entry_id: &str,
        who: &Principal,
        now: i64,
        percents: &[u8],
        action: &str,
        change: impl FnOnce(&mut WorkOrder) -> Result<Vec<OrderEvent>, Refusal>,
    ) -> Result<OrderWritten, OrderStoreError> {
        let mut tx = self.pool.begin().await?;
        let lock = match self.dialect {
            Dialect::Postgres => " FOR SHARE",
            Dialect::Sqlite => "",
        };
        let sql = format!("SELECT live_version FROM kb_entries WHERE entry_id = $1{lock}");
        let live: Option<Option<i64>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(entry_id.to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        match live {
            Some(Some(_)) => {}
            Some(None) => {
                return Err(OrderStoreError::Refused(Refusal::Invalid {
                    field: "kb_entry",
                    message: format!("knowledge-base entry {entry_id} is not published"),
                }));
            }
            None => {
                return Err(OrderStoreError::Refused(Refusal::Invalid {
                    field: "kb_entry",
                    message: format!("there is no knowledge-base entry {entry_id}"),
                }));
            }
        }
        let w = self
            .change_in(&mut tx, order_no, who, now, percents, action, change)
            .await?;
        if !w.events.is_empty() {
            Self::kb_insert_hit(&mut tx, entry_id, order_no, &who.name, now).await?;
        }
        tx.commit().await?;
        Ok(w)
    }
}
