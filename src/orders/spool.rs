//! The order spool: an order an agent files from a call while the database
//! is away is written to a local file first (fsynced, then renamed into
//! place), and the agent is told it is kept. A task replays the spool when
//! the database answers again; each entry carries its own idempotency key,
//! so a crash between writing the order and deleting the file never makes
//! two orders. Entries the desk refuses (a field the catalogue no longer
//! knows) move to `rejected/` with the reason beside them: nothing is lost.

use super::desk::{self, DeskError, Rules};
use super::events::OrderEvents;
use super::lifecycle::Intake;
use crate::auth::Principal;
use crate::store::Store;
use crate::store::orders::Idempotency;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One order waiting for the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spooled {
    /// `<ms>-<random>`: sorts in arrival order; the idempotency key.
    pub id: String,
    pub who: Principal,
    pub intake: Intake,
    pub submit: bool,
    /// When the agent filed it (the order's creation time).
    pub at: i64,
    /// The client's Idempotency-Key and request hash, when it sent one:
    /// a retry spooled twice still makes one order.
    #[serde(default)]
    pub key: Option<(String, String)>,
}

/// The spool folder (`<spool_dir>/orders`).
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub fn new(spool_dir: &Path) -> Spool {
        Spool {
            dir: spool_dir.join("orders"),
        }
    }

    /// A fresh entry id for `now`.
    pub fn new_id(now: i64) -> String {
        format!("{now:013}-{:08x}", rand::random::<u32>())
    }

    /// Writes an entry durably: once this returns, a crash loses nothing.
    pub fn put(&self, entry: &Spooled) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{}.tmp", entry.id));
        let path = self.dir.join(format!("{}.json", entry.id));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(entry).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        // The rename itself must reach the disk too.
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(path)
    }

    /// Entries waiting, oldest first; unreadable files are set aside.
    pub fn pending(&self) -> Vec<(PathBuf, Spooled)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for path in files {
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Spooled>(&b).map_err(|e| e.to_string()))
            {
                Ok(entry) => out.push((path, entry)),
                Err(e) => self.reject(&path, &format!("unreadable spool entry: {e}")),
            }
        }
        out
    }

    /// How many entries wait.
    pub fn len(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn reject(&self, path: &Path, why: &str) {
        let dir = self.dir.join("rejected");
        let name = path.file_name().unwrap_or_default();
        let moved = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::rename(path, dir.join(name)))
            .and_then(|()| {
                std::fs::write(dir.join(format!("{}.error", name.to_string_lossy())), why)
            });
        tracing::error!(entry = %path.display(), error = %why, moved = moved.is_ok(), "spooled order set aside");
    }
}

/// Writes spooled orders to the store, oldest first; stops at the first
/// sign the database is still away. Returns the orders written.
pub async fn drain(store: &Store, rules: &Rules, spool: &Spool, events: &OrderEvents) -> usize {
    let mut written = 0;
    for (path, entry) in spool.pending() {
        let own = (format!("spool:{}", entry.id), entry.id.clone());
        let (key, hash) = entry.key.as_ref().unwrap_or(&own);
        let idem = Idempotency {
            key,
            request_hash: hash,
        };
        match desk::create(
            store,
            rules,
            &entry.who,
            entry.intake.clone(),
            entry.submit,
            Some(idem),
            entry.at,
        )
        .await
        {
            Ok(w) => {
                tracing::info!(order = %w.order.order_no, entry = %entry.id, "spooled order written");
                events.publish(&w.order, &w.events, entry.at);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(error = %e, entry = %entry.id, "spool entry written but not removed; the key keeps it single");
                }
                written += 1;
            }
            Err(DeskError::Unavailable(_)) => break,
            Err(e) => spool.reject(&path, &e.to_string()),
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::orders::lifecycle::{Citizen, PhoneNumber};
    use crate::orders::model::{AppealType, Channel, Urgency};

    fn entry(id: &str) -> Spooled {
        Spooled {
            id: id.into(),
            who: Principal {
                name: "agent".into(),
                role: Role::Agent,
                unit: None,
            },
            intake: Intake {
                channel: Channel::Phone,
                citizen: Citizen {
                    name: None,
                    phone: PhoneNumber::parse("13800138000").unwrap(),
                    confidential: false,
                },
                appeal_type: AppealType::Help,
                category: "010101".into(),
                urgency: Urgency::Normal,
                life_at_risk: false,
                division: "150102".into(),
                location: None,
                content: "x".into(),
                attachments: vec![],
                calls: vec![],
            },
            submit: true,
            at: 1,
            key: None,
        }
    }

    #[test]
    fn entries_come_back_in_order_and_garbage_is_set_aside() {
        let dir = std::env::temp_dir().join(format!("hotline-spool-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let spool = Spool::new(&dir);
        assert!(spool.is_empty());
        spool.put(&entry("0000000000002-b")).unwrap();
        spool.put(&entry("0000000000001-a")).unwrap();
        std::fs::write(dir.join("orders/0000000000003-c.json"), "{not json").unwrap();
        let ids: Vec<String> = spool.pending().into_iter().map(|(_, e)| e.id).collect();
        assert_eq!(ids, ["0000000000001-a", "0000000000002-b"]);
        assert_eq!(spool.len(), 2);
        assert!(dir.join("orders/rejected/0000000000003-c.json").exists());
        assert!(
            dir.join("orders/rejected/0000000000003-c.json.error")
                .exists()
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
