//! The serve process's part: the nuisance sweep over recent calls, the
//! expiry of blocks whose time is up, and the refresh of the in-memory
//! [`BlockList`](super::blocks::BlockList) the call path reads.
//!
//! One loop: every second it checks what is due. After its first round
//! the sweep reads only the numbers with new call records ([`Sweeper`]). The view is re-read every
//! `callers.refresh_secs` and at once when the API changed a block; expiry
//! runs with each re-read. A database that is away keeps the last view and
//! the sweep tries again next round.

use super::blocks::BlockView;
use super::detect::{Thresholds, detect};
use crate::auth::Principal;
use crate::call::record::now_ms;
use crate::server::Shared;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs until `stop`.
pub async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let (mut last_refresh, mut last_sweep) = (i64::MIN, now_ms());
    let mut sweeper = Sweeper::default();
    loop {
        let config = shared.config.load().callers.clone();
        let now = now_ms();
        if now.saturating_sub(last_refresh) >= i64::from(config.refresh_secs) * 1000 {
            last_refresh = now;
            refresh(&shared, now).await;
        }
        if config.sweep_secs > 0 && now - last_sweep >= i64::from(config.sweep_secs) * 1000 {
            last_sweep = now;
            match sweeper.run(&shared.store, &config.thresholds(), now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(flags = n, "nuisance sweep raised flags"),
                Err(e) => tracing::warn!(error = %e, "nuisance sweep failed; next round retries"),
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = shared.blocks.touched() => last_refresh = i64::MIN,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Expires what is due and re-reads the active blocks; on a database
/// error the last view stays.
pub async fn refresh(shared: &Shared, now: i64) {
    match shared.store.expire_blocks(now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(blocks = n, "blocks expired"),
        Err(e) => tracing::warn!(error = %e, "block expiry failed; next round retries"),
    }
    match shared.store.active_blocks(now).await {
        Ok(blocks) => shared.blocks.replace(BlockView::new(blocks)),
        Err(e) => tracing::warn!(error = %e, "active blocks not re-read; the last view stays"),
    }
}

/// One full sweep at `now`: reads every call of the window and the
/// evidence already used, writes a flag for each new pattern; returns how
/// many.
pub async fn sweep(store: &Store, thresholds: &Thresholds, now: i64) -> Result<usize, StoreError> {
    let calls = store.recent_call_facts(now - thresholds.window_ms).await?;
    flag(store, thresholds, now, &calls).await
}

/// Records re-read behind the newest one seen: on PostgreSQL several nodes
/// insert at once, and a record may commit after one with a higher key.
/// Re-reading is harmless (evidence is used once).
const MARGIN: i64 = 1_000;

/// The sweep as `serve` runs it: the first round reads the whole window,
/// later rounds only the numbers with call records written since (a
/// pattern can only grow by a new call), each over the window.
#[derive(Debug, Default)]
pub struct Sweeper {
    /// Records up to this key have been looked at.
    after: Option<i64>,
}

impl Sweeper {
    /// One round at `now`; returns the flags written.
    pub async fn run(
        &mut self,
        store: &Store,
        thresholds: &Thresholds,
        now: i64,
    ) -> Result<usize, StoreError> {
        let since = now - thresholds.window_ms;
        let calls = match self.after {
            None => {
                let newest = store.newest_call_key().await?;
                let calls = store.recent_call_facts(since).await?;
                self.after = Some(newest - MARGIN);
                calls
            }
            Some(after) => match store.callers_written_after(after).await? {
                None => return Ok(0),
                Some((numbers, newest)) => {
                    let calls = store.call_facts_of(&numbers, since).await?;
                    self.after = Some((newest - MARGIN).max(after));
                    calls
                }
            },
        };
        flag(store, thresholds, now, &calls).await
    }
}

/// Detects over `calls` and writes the new flags.
async fn flag(
    store: &Store,
    thresholds: &Thresholds,
    now: i64,
    calls: &[super::detect::CallFact],
) -> Result<usize, StoreError> {
    let used = store
        .flag_evidence_since(now - thresholds.window_ms)
        .await?;
    let system = Principal::system("nuisance-sweep");
    let mut n = 0;
    for found in detect(thresholds, now, calls, &used) {
        if let Some(flag) = store.insert_flag(&found, &system, now).await? {
            tracing::info!(flag = flag.id, pattern = %flag.pattern, calls = flag.call_ids.len(), "caller flagged for review");
            n += 1;
        }
    }
    Ok(n)
}
