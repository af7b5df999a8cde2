//! The active blocks as the call path sees them.
//!
//! [`BlockView`] is a plain map from number to its active block; a block
//! whose time is up no longer applies, whether or not the database has
//! marked it expired yet. [`BlockList`] holds the current view for the whole
//! server: the IVR reads it without waiting on anything, and the refresh in
//! [`super::task`] swaps in a new view after each read of the database (and
//! at once after a change through the API). A database that is away leaves
//! the last view in place.

use super::Reason;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// A block in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveBlock {
    pub id: i64,
    pub number: String,
    pub reason: Reason,
    /// When it ends by itself (Unix ms).
    pub until: i64,
}

/// The blocks read at one moment.
#[derive(Debug, Clone, Default)]
pub struct BlockView {
    by_number: HashMap<String, ActiveBlock>,
}

impl BlockView {
    /// A view of `blocks`; where a number has several, the one lasting
    /// longest applies.
    pub fn new(blocks: impl IntoIterator<Item = ActiveBlock>) -> BlockView {
        let mut by_number: HashMap<String, ActiveBlock> = HashMap::new();
        for b in blocks {
            match by_number.get(&b.number) {
                Some(have) if have.until >= b.until => {}
                _ => {
                    by_number.insert(b.number.clone(), b);
                }
            }
        }
        BlockView { by_number }
    }

    /// The block that applies to `number` at `now`, if any.
    pub fn lookup(&self, number: &str, now: i64) -> Option<&ActiveBlock> {
        self.by_number.get(number).filter(|b| b.until > now)
    }

    /// Blocks in the view.
    pub fn len(&self) -> usize {
        self.by_number.len()
    }

    /// Whether the view holds no block.
    pub fn is_empty(&self) -> bool {
        self.by_number.is_empty()
    }
}

/// What a blocked caller hears: the reason's notice, when the block ends
/// (in days, or hours on its last day), and where emergencies go.
pub fn notice_prompts(block: &ActiveBlock, now: i64) -> Vec<String> {
    const HOUR: i64 = 3_600_000;
    let left = (block.until - now).max(1);
    let (n, unit) = if left < 24 * HOUR {
        ((left + HOUR - 1) / HOUR, "blocked_until_hours")
    } else {
        ((left + 24 * HOUR - 1) / (24 * HOUR), "blocked_until_days")
    };
    let mut out = vec![block.reason.prompt(), "blocked_until_before".to_string()];
    out.extend(
        crate::ivr::say::prompts(crate::ivr::model::SayKind::Number, &n.to_string())
            .unwrap_or_default(),
    );
    out.push(unit.to_string());
    out.push("blocked_emergency".to_string());
    out
}

/// The server's current view, swapped whole.
#[derive(Default)]
pub struct BlockList {
    view: ArcSwap<BlockView>,
    changed: Notify,
}

impl BlockList {
    /// The view now.
    pub fn current(&self) -> Arc<BlockView> {
        self.view.load_full()
    }

    /// Puts a freshly read view in place.
    pub fn replace(&self, view: BlockView) {
        self.view.store(Arc::new(view));
    }

    /// Asks the refresh task to re-read now (a block was set or lifted).
    pub fn touch(&self) {
        self.changed.notify_one();
    }

    /// Resolves when [`BlockList::touch`] was called.
    pub async fn touched(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(id: i64, number: &str, until: i64) -> ActiveBlock {
        ActiveBlock {
            id,
            number: number.into(),
            reason: Reason::RepeatedCalls,
            until,
        }
    }

    #[test]
    fn a_block_applies_until_its_time() {
        let view = BlockView::new([
            block(1, "139", 1000),
            block(2, "139", 5000),
            block(3, "138", 10),
        ]);
        assert_eq!(view.len(), 2);
        assert_eq!(view.lookup("139", 0).map(|b| b.id), Some(2));
        assert_eq!(view.lookup("139", 4999).map(|b| b.id), Some(2));
        assert!(view.lookup("139", 5000).is_none());
        assert!(view.lookup("138", 10).is_none());
        assert!(view.lookup("137", 0).is_none());
    }

    #[test]
    fn the_notice_names_reason_time_left_and_emergency_lines() {
        const H: i64 = 3_600_000;
        let mut b = block(1, "139", 3 * 24 * H);
        b.reason = Reason::Harassment;
        let days = notice_prompts(&b, 0);
        assert_eq!(
            days,
            [
                "blocked_harassment",
                "blocked_until_before",
                "digit_3",
                "blocked_until_days",
                "blocked_emergency"
            ]
        );
        // 2.5 days left is still "3 days"; 30 minutes is "1 hour".
        assert!(notice_prompts(&b, 12 * H).contains(&"digit_3".to_string()));
        let short = notice_prompts(&b, 3 * 24 * H - H / 2);
        assert_eq!(short[2..4], ["digit_1", "blocked_until_hours"]);
        let hours = notice_prompts(&b, 3 * 24 * H - 12 * H);
        assert_eq!(hours[2..5], ["ten", "digit_2", "blocked_until_hours"]);
    }

    #[tokio::test]
    async fn the_list_swaps_views_and_wakes_the_refresh() {
        let list = Arc::new(BlockList::default());
        assert!(list.current().is_empty());
        list.replace(BlockView::new([block(1, "139", i64::MAX)]));
        assert_eq!(list.current().len(), 1);
        list.touch();
        tokio::time::timeout(std::time::Duration::from_secs(1), list.touched())
            .await
            .unwrap();
    }
}
