//! Flags, blocks and their audit log for repeat and abusive callers
//! (`callers` room), in both dialects.
//!
//! Every change is one transaction with its audit entry: a flag with its
//! evidence, a review with the block it makes, a block set, lifted or
//! expired. Evidence rows are unique per (call, pattern), so two sweeps
//! (or two nodes) seeing the same calls write one flag.

use super::{Store, StoreError};
use crate::auth::Principal;
use crate::call::record::format_ms;
use crate::callers::blocks::ActiveBlock;
use crate::callers::detect::{CallFact, Found};
use crate::callers::{Pattern, Reason};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::HashSet;

/// Why a change to a flag or block was not made.
#[derive(Debug, thiserror::Error)]
pub enum CallersError {
    #[error("no {0}")]
    NotFound(String),
    /// Not in a state that allows it (409).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CallersError {
    fn from(e: sqlx::Error) -> Self {
        CallersError::Store(StoreError::Query(e))
    }
}

/// A flag as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    pub id: i64,
    pub number: String,
    pub pattern: String,
    /// `pending`, `blocked` or `dismissed`.
    pub state: String,
    pub detail: String,
    /// The calls it rests on, oldest first.
    pub call_ids: Vec<String>,
    pub created_at: i64,
    pub created_by: String,
    pub reviewed_at: Option<i64>,
    pub reviewed_by: Option<String>,
    pub review_reason: Option<String>,
    pub review_note: Option<String>,
    pub block_id: Option<i64>,
}

/// A block as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Block {
    pub id: i64,
    pub number: String,
    pub reason: String,
    pub flag_id: Option<i64>,
    /// `active`, `expired` or `lifted`.
    pub state: String,
    pub note: String,
    pub created_at: i64,
    pub created_by: String,
    pub until: i64,
    pub ended_at: Option<i64>,
    pub ended_by: Option<String>,
    pub end_reason: Option<String>,
}

/// One entry of the callers' audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallerAudit {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub role: String,
    /// `flag`, `review`, `block`, `lift`, `expire`, `read_personal_data`.
    pub action: String,
    pub number: String,
    pub flag_id: Option<i64>,
    pub block_id: Option<i64>,
    pub detail: Value,
}

/// What a review decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Block the number until `until` for `reason`.
    Block {
        reason: Reason,
        until: i64,
    },
    Dismiss,
}

/// What detection reads of a call, and whether an order links it.
const FACTS: &str = "SELECT c.call_id, c.caller, c.started_at, c.answered_at, c.ended_at, \
    c.hangup_by, c.connected_at, c.seat_ended_at, c.packets_in, c.final_action, \
    (SELECT COUNT(*) FROM order_calls o WHERE o.call_id = c.call_id) AS orders FROM calls c";

const FLAG_COLUMNS: &str = "id, number, pattern, state, detail, created_at, created_by, \
    reviewed_at, reviewed_by, review_reason, review_note, block_id";
const BLOCK_COLUMNS: &str = "id, number, reason, flag_id, state, note, created_at, created_by, \
    until_at, ended_at, ended_by, end_reason";

impl Store {
    /// The calls started since `since` as detection sees them (the
    /// `calls_started_at` index keeps this to the window).
    pub async fn recent_call_facts(&self, since: i64) -> Result<Vec<CallFact>, StoreError> {
        let sql = format!("{FACTS} WHERE c.started_at >= $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_fact).collect()
    }

    /// The numbers whose call records were written after record `after`
    /// (the `calls` key), and the newest record's key; `None` when none.
    pub async fn callers_written_after(
        &self,
        after: i64,
    ) -> Result<Option<(Vec<String>, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT caller, MAX(id) AS newest FROM calls WHERE id > $1 GROUP BY caller",
        )
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        let mut newest = None::<i64>;
        let mut numbers = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("newest")?;
            newest = Some(newest.map_or(id, |n| n.max(id)));
            numbers.push(r.try_get("caller")?);
        }
        Ok(newest.map(|n| (numbers, n)))
    }

    /// The newest call record's key (0 for none).
    pub async fn newest_call_key(&self) -> Result<i64, StoreError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM calls")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// The calls of these numbers started since `since` (the
    /// `calls_caller` index: a few rows per number).
    pub async fn call_facts_of(
        &self,
        numbers: &[String],
        since: i64,
    ) -> Result<Vec<CallFact>, StoreError> {
        let mut out = Vec::new();
        for chunk in numbers.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "{FACTS} WHERE c.started_at >= $1 AND c.caller IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since);
            for n in chunk {
                q = q.bind(n.clone());
            }
            let rows = q.fetch_all(&self.pool).await?;
            for r in &rows {
                out.push(row_to_fact(r)?);
            }
        }
        Ok(out)
    }

    /// (call, pattern) pairs already used as evidence by flags raised since
    /// `since`: a flag is always raised after the calls it rests on.
    pub async fn flag_evidence_since(
        &self,
        since: i64,
    ) -> Result<HashSet<(String, Pattern)>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.call_id, e.pattern FROM caller_flag_calls e \
             JOIN caller_flags f ON f.id = e.flag_id WHERE f.created_at >= $1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashSet::new();
        for r in rows {
            let pattern: String = r.try_get("pattern")?;
            if let Some(p) = Pattern::parse(&pattern) {
                out.insert((r.try_get("call_id")?, p));
            }
        }
        Ok(out)
    }

    /// Writes a new pending flag with its evidence and audit entry. `None`
    /// when any of its calls is already evidence of the same pattern
    /// (nothing is written then).
    pub async fn insert_flag(
        &self,
        found: &Found,
        who: &Principal,
        now: i64,
    ) -> Result<Option<Flag>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO caller_flags (number, pattern, state, detail, created_at, created_by) \
             VALUES ($1, $2, 'pending', $3, $4, $5) RETURNING id",
        )
        .bind(found.number.clone())
        .bind(found.pattern.as_str())
        .bind(found.detail.clone())
        .bind(now)
        .bind(who.name.clone())
        .fetch_one(&mut *tx)
        .await?;
        for call_id in &found.call_ids {
            let done = sqlx::query(
                "INSERT INTO caller_flag_calls (call_id, pattern, flag_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (call_id, pattern) DO NOTHING",
            )
            .bind(call_id.clone())
            .bind(found.pattern.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let detail = json!({
            "pattern": found.pattern.as_str(),
            "detail": found.detail,
            "call_ids": found.call_ids,
        });
        insert_audit(
            &mut tx,
            now,
            who,
            "flag",
            &found.number,
            Some(id),
            None,
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Flag {
            id,
            number: found.number.clone(),
            pattern: found.pattern.as_str().into(),
            state: "pending".into(),
            detail: found.detail.clone(),
            call_ids: found.call_ids.clone(),
            created_at: now,
            created_by: who.name.clone(),
            reviewed_at: None,
            reviewed_by: None,
            review_reason: None,
            review_note: None,
            block_id: None,
        }))
    }

    /// The flag that already holds `call_id` as evidence of `pattern`.
    pub async fn flag_of_call(
        &self,
        call_id: &str,
        pattern: Pattern,
    ) -> Result<Option<Flag>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT flag_id FROM caller_flag_calls WHERE call_id = $1 AND pattern = $2",
        )
        .bind(call_id.to_owned())
        .bind(pattern.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => self.flag(id).await,
            None => Ok(None),
        }
    }

    /// One flag.
    pub async fn flag(&self, id: i64) -> Result<Option<Flag>, StoreError> {
        let row = row_by_id(&self.pool, FLAG_COLUMNS, "caller_flags", id).await?;
        match row {
            Some(r) => {
                let mut f = row_to_flag(&r)?;
                f.call_ids = self.evidence_of(f.id).await?;
                Ok(Some(f))
            }
            None => Ok(None),
        }
    }

    /// Flags in `state` (all when `None`), newest first.
    pub async fn flags(&self, state: Option<&str>, limit: i64) -> Result<Vec<Flag>, StoreError> {
        let rows = self
            .newest_rows(FLAG_COLUMNS, "caller_flags", ("state", state), limit)
            .await?;
        let mut flags = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut f = row_to_flag(r)?;
            f.call_ids = self.evidence_of(f.id).await?;
            flags.push(f);
        }
        Ok(flags)
    }

    async fn evidence_of(&self, flag_id: i64) -> Result<Vec<String>, StoreError> {
        // Oldest call first; evidence without a record yet sorts last.
        let rows = sqlx::query(
            "SELECT e.call_id FROM caller_flag_calls e LEFT JOIN calls c ON c.call_id = e.call_id \
             WHERE e.flag_id = $1 ORDER BY COALESCE(c.started_at, 9223372036854775807), e.call_id",
        )
        .bind(flag_id)
        .fetch_all(&self.pool)
        .await?;
        let mut ids: Vec<String> = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get("call_id")?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// A supervisor's decision on a pending flag; a block decision sets the
    /// block in the same transaction.
    pub async fn review_flag(
        &self,
        id: i64,
        who: &Principal,
        decision: &Decision,
        note: &str,
        now: i64,
    ) -> Result<(Flag, Option<Block>), CallersError> {
        let mut tx = self.pool.begin().await?;
        let row = row_by_id(&mut *tx, FLAG_COLUMNS, "caller_flags", id)
            .await?
            .ok_or_else(|| CallersError::NotFound(format!("flag {id}")))?;
        let flag = row_to_flag(&row)?;
        if flag.state != "pending" {
            return Err(CallersError::Conflict(format!(
                "flag {id} was already reviewed ({})",
                flag.state
            )));
        }
        let (state, reason, block) = match decision {
            Decision::Block { reason, until } => {
                let block = insert_block(
                    &mut tx,
                    &flag.number,
                    *reason,
                    Some(id),
                    *until,
                    note,
                    who,
                    now,
                )
                .await?;
                ("blocked", Some(reason.as_str()), Some(block))
            }
            Decision::Dismiss => ("dismissed", None, None),
        };
        let changed = sqlx::query(
            "UPDATE caller_flags SET state = $1, reviewed_at = $2, reviewed_by = $3, \
             review_reason = $4, review_note = $5, block_id = $6 WHERE id = $7 AND state = 'pending'",
        )
        .bind(state)
        .bind(now)
        .bind(who.name.clone())
        .bind(reason.map(str::to_owned))
        .bind(note.to_owned())
        .bind(block.as_ref().map(|b| b.id))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            return Err(CallersError::Conflict(format!(
                "flag {id} was already reviewed"
            )));
        }
        let detail = json!({
            "decision": if block.is_some() { "block" } else { "dismiss" },
            "reason": reason,
            "until": block.as_ref().map(|b| format_ms(b.until)),
            "note": note,
        });
        insert_audit(
            &mut tx,
            now,
            who,
            "review",
            &flag.number,
            Some(id),
            block.as_ref().map(|b| b.id),
            &detail,
        )
        .await?;
        tx.commit().await?;
        let flag = Flag {
            state: state.into(),
            reviewed_at: Some(now),
            reviewed_by: Some(who.name.clone()),
            review_reason: reason.map(str::to_owned),
            review_note: Some(note.to_owned()),
            block_id: block.as_ref().map(|b| b.id),
            call_ids: self.evidence_of(id).await?,
            ..flag
        };
        Ok((flag, block))
    }

    /// A supervisor blocks a number directly (e.g. a harassment report
    /// handed over from elsewhere).
    pub async fn create_block(
        &self,
        number: &str,
        reason: Reason,
        until: i64,
        note: &str,
        who: &Principal,
        now: i64,
    ) -> Result<Block, StoreError> {
        let mut tx = self.pool.begin().await?;
        let block = insert_block(&mut tx, number, reason, None, until, note, who, now).await?;
        tx.commit().await?;
        Ok(block)
    }

    /// One block.
    pub async fn block(&self, id: i64) -> Result<Option<Block>, StoreError> {
        let row = row_by_id(&self.pool, BLOCK_COLUMNS, "caller_blocks", id).await?;
        row.as_ref().map(row_to_block).transpose()
    }

    /// Blocks in `state` (all when `None`), newest first.
    pub async fn blocks(&self, state: Option<&str>, limit: i64) -> Result<Vec<Block>, StoreError> {
        let rows = self
            .newest_rows(BLOCK_COLUMNS, "caller_blocks", ("state", state), limit)
            .await?;
        rows.iter().map(row_to_block).collect()
    }

    /// Ends an active block early.
    pub async fn lift_block(
        &self,
        id: i64,
        who: &Principal,
        why: &str,
        now: i64,
    ) -> Result<Block, CallersError> {
        let mut tx = self.pool.begin().await?;
        let row = row_by_id(&mut *tx, BLOCK_COLUMNS, "caller_blocks", id)
            .await?
            .ok_or_else(|| CallersError::NotFound(format!("block {id}")))?;
        let block = row_to_block(&row)?;
        if block.state != "active" || block.until <= now {
            return Err(CallersError::Conflict(format!(
                "block {id} is no longer active ({})",
                if block.state == "active" {
                    "expired"
                } else {
                    &block.state
                }
            )));
        }
        let changed = end_block(&mut tx, id, "lifted", &who.name, why, now).await?;
        if !changed {
            return Err(CallersError::Conflict(format!(
                "block {id} is no longer active"
            )));
        }
        insert_audit(
            &mut tx,
            now,
            who,
            "lift",
            &block.number,
            block.flag_id,
            Some(id),
            &json!({ "reason": why }),
        )
        .await?;
        tx.commit().await?;
        Ok(Block {
            state: "lifted".into(),
            ended_at: Some(now),
            ended_by: Some(who.name.clone()),
            end_reason: Some(why.to_owned()),
            ..block
        })
    }

    /// The blocks in force at `now`.
    pub async fn active_blocks(&self, now: i64) -> Result<Vec<ActiveBlock>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, number, reason, until_at FROM caller_blocks \
             WHERE state = 'active' AND until_at > $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let reason: String = r.try_get("reason")?;
            out.push(ActiveBlock {
                id: r.try_get("id")?,
                number: r.try_get("number")?,
                reason: Reason::parse(&reason).unwrap_or(Reason::RepeatedCalls),
                until: r.try_get("until_at")?,
            });
        }
        Ok(out)
    }

    /// Marks blocks whose time is up as expired, each with its audit entry;
    /// returns how many. Safe to run on several nodes at once.
    pub async fn expire_blocks(&self, now: i64) -> Result<usize, StoreError> {
        let rows = sqlx::query(
            "SELECT id, number, flag_id, until_at FROM caller_blocks \
             WHERE state = 'active' AND until_at <= $1 ORDER BY until_at LIMIT 100",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let system = Principal::system("callers-expiry");
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let until: i64 = r.try_get("until_at")?;
            if end_block(&mut tx, id, "expired", &system.name, "expired", now).await? {
                let number: String = r.try_get("number")?;
                let detail = json!({ "until": format_ms(until) });
                insert_audit(
                    &mut tx,
                    now,
                    &system,
                    "expire",
                    &number,
                    r.try_get("flag_id")?,
                    Some(id),
                    &detail,
                )
                .await?;
                n += 1;
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    /// The callers' audit log, newest first; one number's when given.
    pub async fn caller_audit(
        &self,
        number: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CallerAudit>, StoreError> {
        const COLS: &str = "id, at, actor, role, action, number, flag_id, block_id, detail";
        let rows = self
            .newest_rows(COLS, "caller_audit", ("number", number), limit)
            .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(CallerAudit {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    role: r.try_get("role")?,
                    action: r.try_get("action")?,
                    number: r.try_get("number")?,
                    flag_id: r.try_get("flag_id")?,
                    block_id: r.try_get("block_id")?,
                    detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
                })
            })
            .collect()
    }

    /// Records that `who` listed callers' numbers unmasked.
    pub async fn audit_caller_read(
        &self,
        who: &Principal,
        what: &str,
        numbers: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut numbers = numbers.to_vec();
        numbers.sort();
        numbers.dedup();
        for number in &numbers {
            insert_audit(
                &mut tx,
                now,
                who,
                "read_personal_data",
                number,
                None,
                None,
                &json!({ "read": what }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Open orders of `caller` filed before `before` (a new call from
    /// them is a repeat call), oldest first.
    pub async fn open_orders_of(
        &self,
        caller: &str,
        before: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query_scalar(
            "SELECT order_no FROM work_orders WHERE caller = $1 AND created_at < $2 \
             AND status NOT IN ('draft', 'closed', 'archived') ORDER BY created_at",
        )
        .bind(caller.to_owned())
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

impl Store {
    /// `columns` of `table`'s newest `limit` rows, only those whose
    /// `filter.0` column equals `filter.1` when that is given.
    async fn newest_rows(
        &self,
        columns: &str,
        table: &str,
        filter: (&str, Option<&str>),
        limit: i64,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let rows = match filter {
            (column, Some(value)) => {
                let sql = format!(
                    "SELECT {columns} FROM {table} WHERE {column} = $1 ORDER BY id DESC LIMIT $2"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(value.to_owned())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            (_, None) => {
                let sql = format!("SELECT {columns} FROM {table} ORDER BY id DESC LIMIT $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }
}

/// `columns` of `table`'s row `id`, on the pool or inside a transaction.
async fn row_by_id<'e, E>(
    ex: E,
    columns: &str,
    table: &str,
    id: i64,
) -> Result<Option<AnyRow>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let sql = format!("SELECT {columns} FROM {table} WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(ex)
        .await
}

#[allow(clippy::too_many_arguments)]
async fn insert_block(
    tx: &mut Transaction<'static, Any>,
    number: &str,
    reason: Reason,
    flag_id: Option<i64>,
    until: i64,
    note: &str,
    who: &Principal,
    now: i64,
) -> Result<Block, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO caller_blocks (number, reason, flag_id, state, note, created_at, created_by, \
         until_at) VALUES ($1, $2, $3, 'active', $4, $5, $6, $7) RETURNING id",
    )
    .bind(number.to_owned())
    .bind(reason.as_str())
    .bind(flag_id)
    .bind(note.to_owned())
    .bind(now)
    .bind(who.name.clone())
    .bind(until)
    .fetch_one(&mut **tx)
    .await?;
    let detail = json!({
        "reason": reason.as_str(),
        "until": format_ms(until),
        "note": note,
    });
    insert_audit(tx, now, who, "block", number, flag_id, Some(id), &detail).await?;
    Ok(Block {
        id,
        number: number.to_owned(),
        reason: reason.as_str().into(),
        flag_id,
        state: "active".into(),
        note: note.to_owned(),
        created_at: now,
        created_by: who.name.clone(),
        until,
        ended_at: None,
        ended_by: None,
        end_reason: None,
    })
}

/// Ends an active block; false when it was not active any more.
async fn end_block(
    tx: &mut Transaction<'static, Any>,
    id: i64,
    state: &str,
    by: &str,
    why: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE caller_blocks SET state = $1, ended_at = $2, ended_by = $3, end_reason = $4 \
         WHERE id = $5 AND state = 'active'",
    )
    .bind(state.to_owned())
    .bind(now)
    .bind(by.to_owned())
    .bind(why.to_owned())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[allow(clippy::too_many_arguments)]
async fn insert_audit(
    tx: &mut Transaction<'static, Any>,
    now: i64,
    who: &Principal,
    action: &str,
    number: &str,
    flag_id: Option<i64>,
    block_id: Option<i64>,
    detail: &Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO caller_audit (at, actor, role, action, number, flag_id, block_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(now)
    .bind(who.name.clone())
    .bind(who.role.as_str())
    .bind(action.to_owned())
    .bind(number.to_owned())
    .bind(flag_id)
    .bind(block_id)
    .bind(detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn row_to_fact(r: &AnyRow) -> Result<CallFact, StoreError> {
    let final_action: Option<String> = r.try_get("final_action")?;
    Ok(CallFact {
        call_id: r.try_get("call_id")?,
        caller: r.try_get("caller")?,
        started_at: r.try_get("started_at")?,
        answered_at: r.try_get("answered_at")?,
        ended_at: r.try_get("ended_at")?,
        hangup_by: r.try_get("hangup_by")?,
        connected_at: r.try_get("connected_at")?,
        seat_ended_at: r.try_get("seat_ended_at")?,
        packets_in: r.try_get("packets_in")?,
        has_order: r.try_get::<i64, _>("orders")? > 0,
        blocked: final_action.is_some_and(|a| a.starts_with("blocked")),
    })
}

fn row_to_flag(r: &AnyRow) -> Result<Flag, StoreError> {
    Ok(Flag {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        pattern: r.try_get("pattern")?,
        state: r.try_get("state")?,
        detail: r.try_get("detail")?,
        call_ids: Vec::new(),
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        reviewed_at: r.try_get("reviewed_at")?,
        reviewed_by: r.try_get("reviewed_by")?,
        review_reason: r.try_get("review_reason")?,
        review_note: r.try_get("review_note")?,
        block_id: r.try_get("block_id")?,
    })
}

fn row_to_block(r: &AnyRow) -> Result<Block, StoreError> {
    Ok(Block {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        reason: r.try_get("reason")?,
        flag_id: r.try_get("flag_id")?,
        state: r.try_get("state")?,
        note: r.try_get("note")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        until: r.try_get("until_at")?,
        ended_at: r.try_get("ended_at")?,
        ended_by: r.try_get("ended_by")?,
        end_reason: r.try_get("end_reason")?,
    })
}
