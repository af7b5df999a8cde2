//! The call-record writer: one task that batches records into the store.
//!
//! Calls hand their record to an unbounded channel and never wait on the
//! database. The writer commits in batches; when the database is unreachable
//! it keeps the records in memory (up to `max_pending`, oldest dropped and
//! counted beyond that) and retries with backoff, so a database restart loses
//! nothing. When every sender is gone it flushes what is left and returns.

use super::Store;
use crate::call::record::CallRecord;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Writer health and throughput, read by `/metrics` and `/healthz`.
#[derive(Debug, Default)]
pub struct WriterCounters {
    pub written: AtomicU64,
    pub failed_batches: AtomicU64,
    pub dropped: AtomicU64,
    pub pending: AtomicU64,
    /// False after a failed write, true again after a good one.
    pub healthy: AtomicBool,
}

/// Where calls send their finished records.
#[derive(Clone, Debug)]
pub struct RecordSender(mpsc::UnboundedSender<CallRecord>);

impl RecordSender {
    /// Queues a record; never blocks.
    pub fn send(&self, record: CallRecord) {
        if let Err(e) = self.0.send(record) {
            tracing::error!(call_id = %e.0.call_id, "call record writer is gone; record lost");
        }
    }
}

/// Settings for [`spawn`].
#[derive(Debug, Clone, Copy)]
pub struct WriterLimits {
    pub batch_size: usize,
    pub max_pending: usize,
}

/// Starts the writer task. Cancelling `stop` makes it take what is queued,
/// flush it and return (bound the wait with [`finish`]).
pub fn spawn(
    store: Store,
    limits: WriterLimits,
    counters: Arc<WriterCounters>,
    stop: CancellationToken,
) -> (RecordSender, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    counters.healthy.store(true, Ordering::Relaxed);
    let task = tokio::spawn(run(store, rx, limits, counters, stop));
    (RecordSender(tx), task)
}

async fn run(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<CallRecord>,
    limits: WriterLimits,
    counters: Arc<WriterCounters>,
    stop: CancellationToken,
) {
    let mut pending: VecDeque<CallRecord> = VecDeque::new();
    let mut backoff = Duration::from_millis(100);
    let mut open = true;
    loop {
        while let Ok(r) = rx.try_recv() {
            pending.push_back(r);
        }
        if pending.is_empty() {
            if !open {
                break;
            }
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => pending.push_back(r),
                    None => open = false,
                },
                _ = stop.cancelled() => open = false,
            }
            continue;
        }
        while pending.len() > limits.max_pending {
            if let Some(lost) = pending.pop_front() {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(call_id = %lost.call_id, "call record dropped: store.max_pending reached while the database is down");
            }
        }
        counters
            .pending
            .store(pending.len() as u64, Ordering::Relaxed);
        let n = pending.len().min(limits.batch_size);
        let batch = &pending.make_contiguous()[..n];
        match store.insert_calls(batch).await {
            Ok(()) => {
                pending.drain(..n);
                counters.written.fetch_add(n as u64, Ordering::Relaxed);
                counters
                    .pending
                    .store(pending.len() as u64, Ordering::Relaxed);
                if !counters.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("database writes resumed");
                }
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                if counters.healthy.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, pending = pending.len(), "database write failed; keeping call records in memory and retrying");
                }
                if !open {
                    // Shutting down: the caller bounds the final flush.
                    tokio::time::sleep(backoff).await;
                } else {
                    // Wait out the backoff, but notice when the senders go away.
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => open = false,
                        r = rx.recv() => match r {
                            Some(r) => pending.push_back(r),
                            None => open = false,
                        },
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        if stop.is_cancelled() {
            open = false;
        }
    }
}

/// Waits for the writer to flush, giving up after `limit`.
pub async fn finish(task: JoinHandle<()>, limit: Duration, counters: &WriterCounters) {
    if tokio::time::timeout(limit, task).await.is_err() {
        tracing::error!(
            pending = counters.pending.load(Ordering::Relaxed),
            "database still unreachable at shutdown; pending call records lost"
        );
    }
}
