//! Knowledge-base queries the monthly report needs.

use super::{Store, StoreError};

/// One of the most-hit knowledge-base entries of a period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HotTopic {
    pub entry_id: String,
    pub title: String,
    pub category: String,
    pub hits: i64,
}

impl Store {
    /// The `limit` entries hit most often in `[from_ms, to_ms)`, most hits first.
    pub async fn kb_hot_topics(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<HotTopic>, StoreError> {
        // stub: replaced by the knowledge-base branch at merge
        let _ = (from_ms, to_ms, limit);
        Ok(Vec::new())
    }
}
