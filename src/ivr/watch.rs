//! Reload on edit: watch the flows folder and re-check it once edits settle.
//!
//! Editors write files in several steps (temp file, rename, chmod), so events
//! are gathered until the folder has been quiet for a moment; then the whole
//! folder is checked and swapped in only if every flow passes. Calls already
//! in progress keep the version they started with.

use crate::server::Shared;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::sync::Arc;
use std::time::Duration;

/// How long the folder must be quiet before a reload.
const SETTLE: Duration = Duration::from_millis(300);

/// A running watch; dropping it stops watching.
pub struct Watch {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `ivr.flows_dir`.
pub fn spawn(shared: Arc<Shared>) -> anyhow::Result<Watch> {
    let dir = shared.config.load().ivr.flows_dir.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
        {
            tx.send(()).ok();
        }
    })?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| anyhow::anyhow!("ivr.flows_dir {}: cannot watch: {e}", dir.display()))?;
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Let the burst of events settle.
            loop {
                match tokio::time::timeout(SETTLE, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let shared = shared.clone();
            // Errors are logged and kept for the API inside.
            tokio::task::spawn_blocking(move || shared.reload_flows().ok())
                .await
                .ok();
        }
    });
    Ok(Watch {
        _watcher: watcher,
        task,
    })
}
