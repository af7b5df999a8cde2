//! The serve process's part: the nuisance sweep over recent calls, the
//! expiry of blocks whose time is up, and the refresh of the in-memory
//! [`BlockList`](super::blocks::BlockList) the call path reads.
//!
//! One loop: every second it checks what is due. The view is re-read every
//! `callers.refresh_secs` and at once when the API changed a block; expiry
//! runs with each re-read. A database that is away keeps the last view and
//! the sweep tries again next round.

use super::blocks::BlockView;
use super::detect::detect;
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
    loop {
        let config = shared.config.load().callers.clone();
        let now = now_ms();
        if now.saturating_sub(last_refresh) >= i64::from(config.refresh_secs) * 1000 {
            last_refresh = now;
            refresh(&shared, now).await;
        }
        if config.sweep_secs > 0 && now - last_sweep >= i64::from(config.sweep_secs) * 1000 {
            last_sweep = now;
            match sweep(&shared.store, &config.thresholds(), now).await {
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

/// One sweep at `now`: reads the window's calls and the evidence already
/// used, writes a flag for each new pattern; returns how many.
pub async fn sweep(
    store: &Store,
    thresholds: &super::detect::Thresholds,
    now: i64,
) -> Result<usize, StoreError> {
    let since = now - thresholds.window_ms;
    let calls = store.recent_call_facts(since).await?;
    let used = store.flag_evidence_since(since).await?;
    let system = Principal::system("nuisance-sweep");
    let mut n = 0;
    for found in detect(thresholds, now, &calls, &used) {
        if let Some(flag) = store.insert_flag(&found, &system, now).await? {
            tracing::info!(flag = flag.id, pattern = %flag.pattern, calls = flag.call_ids.len(), "caller flagged for review");
            n += 1;
        }
    }
    Ok(n)
}
