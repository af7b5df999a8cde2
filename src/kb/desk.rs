//! The knowledge-base desk: the async shell around [`super::lifecycle`]
//! and [`super::search`]. It checks an entry's unit, category and division
//! against `units.toml` and the catalogue, writes through `store::kb`,
//! puts what changed into this node's index at once, shapes what each
//! role may read, and runs the background task that builds the index at
//! start, catches up with writes made on other nodes (polling the change
//! sequence) and expires entries whose source document has lapsed.
//!
//! The API (`api::kb`) calls this.

use super::lifecycle::{Command, Content, Entry, Refusal, Status};
use super::search::{KbIndex, SearchError, SearchHit, SearchQuery};
use crate::auth::{Principal, Role};
use crate::orders::desk::Rules;
use crate::server::Shared;
use crate::store::kb::{KbStoreError, KbWritten};
use crate::store::{Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a node looks for writes made elsewhere and for lapsed
/// entries.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Why a desk request failed; the API maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// 404: no such entry, or none the caller may read.
    #[error("no knowledge-base entry {0}")]
    NotFound(String),
    /// 403, 409 or 400.
    #[error(transparent)]
    Refused(Refusal),
    /// 503: the database is away.
    #[error("the knowledge base is unavailable: {0}")]
    Unavailable(StoreError),
    /// 503: the index is still being built.
    #[error(transparent)]
    Search(SearchError),
}

impl From<KbStoreError> for KbError {
    fn from(e: KbStoreError) -> Self {
        match e {
            KbStoreError::NotFound(id) => KbError::NotFound(id),
            KbStoreError::Refused(r) => KbError::Refused(r),
            KbStoreError::Store(s) => KbError::Unavailable(s),
        }
    }
}

impl From<StoreError> for KbError {
    fn from(e: StoreError) -> Self {
        KbError::Unavailable(e)
    }
}

fn invalid(field: &'static str, message: String) -> KbError {
    KbError::Refused(Refusal::Invalid { field, message })
}

/// Checks the parts of an entry that need the catalogue and the units.
pub fn check_content(rules: &Rules, content: &Content) -> Result<(), KbError> {
    if rules.units.unit(&content.unit).is_none() {
        return Err(invalid(
            "unit",
            format!("{:?} is not a unit in units.toml", content.unit),
        ));
    }
    if rules.catalogue.get(&content.category).is_none() {
        return Err(invalid(
            "category",
            format!("{:?} is not in the matter catalogue", content.category),
        ));
    }
    if rules.units.division(&content.division).is_none() {
        return Err(invalid(
            "division",
            format!("{:?} is not a known division code", content.division),
        ));
    }
    Ok(())
}

/// Local `YYYY-MM-DD` of `now` on the hotline's calendar.
pub fn local_day(rules: &Rules, now: i64) -> String {
    let date = rules.time.local_date(now).unwrap_or(time::Date::MIN);
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Puts written entries into this node's index (off the async threads:
/// a commit takes milliseconds).
async fn reindex(index: &Arc<KbIndex>, written: &KbWritten) {
    if written.events.is_empty() || !index.is_ready() {
        // The first build reads it from the database.
        return;
    }
    let index = index.clone();
    let entry = written.entry.clone();
    let result = tokio::task::spawn_blocking(move || index.apply([&entry])).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "knowledge-base index not updated; the next poll retries")
        }
        Err(e) => tracing::error!(error = %e, "knowledge-base index update panicked"),
    }
}

/// Makes a new draft. A unit handler's entry belongs to its own unit.
pub async fn create(
    store: &Store,
    index: &Arc<KbIndex>,
    rules: &Rules,
    who: &Principal,
    content: Content,
    now: i64,
) -> Result<KbWritten, KbError> {
    // The role first: an agent learns it may not write, not which field
    // it got wrong.
    super::lifecycle::may_write(who, &content.unit).map_err(KbError::Refused)?;
    content.check().map_err(KbError::Refused)?;
    check_content(rules, &content)?;
    let written = store
        .kb_create(now, |id| Entry::create(id, who, content, now))
        .await?;
    reindex(index, &written).await;
    Ok(written)
}

/// Runs a command on an entry for `who`.
pub async fn act(
    store: &Store,
    index: &Arc<KbIndex>,
    rules: &Rules,
    who: &Principal,
    id: &str,
    command: Command,
    now: i64,
) -> Result<KbWritten, KbError> {
    if let Command::Edit { content, .. } = &command {
        content.check().map_err(KbError::Refused)?;
        check_content(rules, content)?;
    }
    let written = store
        .kb_change(id, now, |entry| {
            if !may_see_drafts(who, entry) && entry.live().is_none() {
                return Err(Refusal::Forbidden(String::new()));
            }
            entry.apply(who, command, now)
        })
        .await
        .map_err(|e| match e {
            KbStoreError::Refused(Refusal::Forbidden(m)) if m.is_empty() => {
                KbError::NotFound(id.to_owned())
            }
            e => e.into(),
        })?;
    reindex(index, &written).await;
    Ok(written)
}

/// Whether `who` maintains the entry (and so sees its drafts and history).
pub fn may_see_drafts(who: &Principal, entry: &Entry) -> bool {
    match who.role {
        Role::Supervisor | Role::Admin => true,
        Role::UnitHandler => who.unit.as_deref() == Some(entry.unit()),
        Role::Agent | Role::Dispatcher => false,
    }
}

/// The entry as `who` may read it: maintainers see every version and the
/// log; everyone else the live version only (404 when none is live).
pub fn view(entry: &Entry, who: &Principal) -> Option<Value> {
    if may_see_drafts(who, entry) {
        let live = entry.live().map(|v| v.version);
        return Some(json!({
            "id": entry.id,
            "status": entry.status(),
            "version": entry.head().version,
            "live_version": live,
            "created_at": entry.created_at,
            "current": entry.head(),
            "live": entry.live(),
        }));
    }
    let live = entry.live()?;
    Some(json!({
        "id": entry.id,
        "status": Status::Published,
        "version": live.version,
        "live_version": live.version,
        "created_at": entry.created_at,
        "current": live,
        "live": live,
    }))
}

/// Every version and the log, for maintainers; readers get the
/// published versions' history only.
pub fn versions_view(entry: &Entry, who: &Principal) -> Option<Value> {
    if may_see_drafts(who, entry) {
        return Some(json!({"id": entry.id, "versions": entry.versions, "log": entry.log}));
    }
    entry.live()?;
    let shown: Vec<_> = entry
        .versions
        .iter()
        .filter(|v| {
            matches!(
                v.status,
                Status::Published | Status::Expired | Status::Superseded
            ) && entry
                .log
                .iter()
                .any(|s| s.version == v.version && s.action == "publish")
        })
        .collect();
    Some(json!({"id": entry.id, "versions": shown}))
}

/// One entry as `who` may read it.
pub async fn get(store: &Store, who: &Principal, id: &str) -> Result<Entry, KbError> {
    store
        .kb_entry(id)
        .await?
        .filter(|e| may_see_drafts(who, e) || e.live().is_some())
        .ok_or_else(|| KbError::NotFound(id.to_owned()))
}

/// Searches the published entries.
pub async fn search(index: &Arc<KbIndex>, query: SearchQuery) -> Result<Vec<SearchHit>, KbError> {
    let index = index.clone();
    on_index(move || index.search(&query)).await
}

/// Runs `work` on the index off the async threads; a task that died is an
/// index error like any other.
async fn on_index<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SearchError> + Send + 'static,
) -> Result<T, KbError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| {
            KbError::Search(SearchError::Index(tantivy::TantivyError::InternalError(
                e.to_string(),
            )))
        })?
        .map_err(KbError::Search)
}

/// Builds the index from the database, then every [`POLL_INTERVAL`]
/// catches up with writes (this node's and others') and expires lapsed
/// entries, until `stop`. A database that is away is retried; search
/// answers 503 until the first build is done.
pub async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let index = shared.kb.clone();
    loop {
        match build(&shared.store, &index).await {
            Ok(n) => {
                tracing::info!(entries = n, "knowledge-base index built");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "knowledge-base index not built yet; retrying");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        let now = crate::call::record::now_ms();
        let today = local_day(&shared.order_rules.load(), now);
        if let Err(e) = expire_lapsed(&shared.store, &today, now).await {
            tracing::warn!(error = %e, "knowledge-base expiry sweep failed; retrying");
        }
        if let Err(e) = catch_up(&shared.store, &index).await {
            tracing::warn!(error = %e, "knowledge-base index did not catch up; retrying");
        }
    }
}

/// The first build: the sequence number is read before the entries, so
/// a write in between is applied again by the next catch-up.
pub async fn build(store: &Store, index: &Arc<KbIndex>) -> Result<usize, KbError> {
    let seq = store.kb_seq().await?;
    let entries = store.kb_live_entries().await?;
    let index = index.clone();
    on_index(move || index.rebuild(&entries, seq)).await
}

/// Applies every entry written since the index's sequence number.
pub async fn catch_up(store: &Store, index: &Arc<KbIndex>) -> Result<usize, KbError> {
    let since = index.seq();
    if store.kb_seq().await? <= since {
        return Ok(0);
    }
    let (entries, last) = store.kb_changed_since(since).await?;
    let n = entries.len();
    let index = index.clone();
    on_index(move || {
        index.apply(&entries)?;
        index.advance(last);
        Ok(())
    })
    .await?;
    Ok(n)
}

/// Expires the live versions whose source expired before `today`.
pub async fn expire_lapsed(store: &Store, today: &str, now: i64) -> Result<usize, KbError> {
    let mut n = 0;
    for id in store.kb_due_expiry(today).await? {
        let written = store
            .kb_change(&id, now, |entry| Ok(entry.expire_due(today, now)))
            .await?;
        if !written.events.is_empty() {
            tracing::info!(entry = %id, "knowledge-base entry expired: its source document lapsed");
            n += 1;
        }
    }
    Ok(n)
}
