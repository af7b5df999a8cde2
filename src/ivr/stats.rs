//! Where callers drop out: per flow and node, how many calls entered, how
//! many left by each branch, and how many hung up there.
//!
//! Counts are kept per flow name across reloads (a node that disappears
//! keeps its history), in memory, and served at `/api/v1/flows/{name}/stats`
//! and `/metrics`. IVR steps are a few per call, so one mutex is plenty.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counts for one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeCounts {
    pub entered: u64,
    /// Exits by branch label (`next`, a key, `timeout`, `invalid`, `case1`...).
    pub left: BTreeMap<String, u64>,
    pub hung_up: u64,
}

/// All counts, by flow then node.
#[derive(Debug, Default)]
pub struct FlowStats {
    inner: Mutex<BTreeMap<String, BTreeMap<String, NodeCounts>>>,
}

impl FlowStats {
    fn with(&self, flow: &str, node: &str, f: impl FnOnce(&mut NodeCounts)) {
        let mut all = self.inner.lock().expect("flow stats lock");
        let counts = all
            .entry(flow.to_owned())
            .or_default()
            .entry(node.to_owned())
            .or_default();
        f(counts);
    }

    /// A call entered a node.
    pub fn entered(&self, flow: &str, node: &str) {
        self.with(flow, node, |c| c.entered += 1);
    }

    /// A call left a node by `via`.
    pub fn left(&self, flow: &str, node: &str, via: &str) {
        self.with(flow, node, |c| {
            *c.left.entry(via.to_owned()).or_default() += 1
        });
    }

    /// The caller hung up at a node.
    pub fn hung_up(&self, flow: &str, node: &str) {
        self.with(flow, node, |c| c.hung_up += 1);
    }

    /// The counts of one flow, by node.
    pub fn flow(&self, flow: &str) -> Option<BTreeMap<String, NodeCounts>> {
        self.inner
            .lock()
            .expect("flow stats lock")
            .get(flow)
            .cloned()
    }

    /// Everything, for `/metrics`.
    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<String, NodeCounts>> {
        self.inner.lock().expect("flow stats lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up() {
        let s = FlowStats::default();
        s.entered("main", "menu");
        s.entered("main", "menu");
        s.left("main", "menu", "1");
        s.hung_up("main", "menu");
        let menu = &s.flow("main").unwrap()["menu"];
        assert_eq!(menu.entered, 2);
        assert_eq!(menu.left["1"], 1);
        assert_eq!(menu.hung_up, 1);
        assert!(s.flow("other").is_none());
    }
}
