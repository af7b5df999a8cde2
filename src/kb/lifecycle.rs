//! A knowledge-base entry's versions and review rules as a sans-IO state
//! machine: [`Entry::create`] and [`Entry::apply`] take who acts, a
//! [`Command`] and the time, check role, unit and state, change the entry
//! and return the [`Event`]s; a refused command changes nothing and says
//! why ([`Refusal`], the order lifecycle's: 403, 409 or 400 at the API).
//!
//! Every edit makes a new version. A version goes draft → review →
//! approved → published; review may send it back to draft with a note.
//! Editing a published entry makes a new draft while the published
//! version stays live until the new one is published (the old one is then
//! superseded). A live version is expired by hand or when its source
//! document's expiry date has passed ([`Entry::expire_due`], given today's
//! local date). Dates are `YYYY-MM-DD`, so they compare as text.
//!
//! Roles: a unit handler writes and submits entries of its own unit only;
//! supervisors and admins review, publish and expire, and may edit any
//! entry; agents and dispatchers only read published entries.

use crate::auth::{Principal, Role};
pub use crate::orders::lifecycle::Refusal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The document an answer rests on (issuing body, number, validity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// 发文机关, e.g. 呼和浩特市医疗保障局.
    pub issuer: String,
    /// 文号, e.g. 呼医保发〔2025〕12号.
    pub number: String,
    /// First day the document applies (`YYYY-MM-DD`).
    pub effective: String,
    /// Last day it applies (`YYYY-MM-DD`); none while it stands.
    #[serde(default)]
    pub expires: Option<String>,
}

/// What one version of an entry says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Content {
    pub title: String,
    /// The question as citizens ask it.
    pub question: String,
    pub answer: String,
    pub source: Source,
    /// The owning unit (id from `units.toml`).
    pub unit: String,
    /// Matter catalogue code.
    pub category: String,
    /// Division code the answer applies to.
    pub division: String,
}

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Review,
    Approved,
    Published,
    Expired,
    /// Replaced by a later version before or after it was live.
    Superseded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Review => "review",
            Status::Approved => "approved",
            Status::Published => "published",
            Status::Expired => "expired",
            Status::Superseded => "superseded",
        }
    }
}

/// One version: its content as written, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Version {
    pub version: u32,
    pub status: Status,
    pub content: Content,
    pub author: String,
    pub created_at: i64,
    /// The reviewer's note of the last send-back.
    #[serde(default)]
    pub note: Option<String>,
}

/// One step of an entry's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    pub at: i64,
    pub by: String,
    pub action: String,
    pub version: u32,
    #[serde(default)]
    pub note: Option<String>,
}

/// A knowledge-base entry with its whole history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    pub id: String,
    pub created_at: i64,
    /// Oldest first; never shortened.
    pub versions: Vec<Version>,
    pub log: Vec<Step>,
}

/// What someone asks an entry to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A new version; `base` must be the newest version (else 409).
    Edit { base: u32, content: Box<Content> },
    /// Draft → review.
    Submit,
    /// Review → approved.
    Approve,
    /// Review or approved → draft, with the reviewer's note.
    SendBack { note: String },
    /// Approved → published; the version live before is superseded.
    Publish,
    /// The live version → expired.
    Expire { note: Option<String> },
}

impl Command {
    /// The action's name in logs and the API.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Edit { .. } => "edit",
            Command::Submit => "submit",
            Command::Approve => "approve",
            Command::SendBack { .. } => "send_back",
            Command::Publish => "publish",
            Command::Expire { .. } => "expire",
        }
    }
}

/// What changed, for logs and listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub kind: &'static str,
    pub version: u32,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Invalid {
        field,
        message: message.into(),
    }
}

fn forbidden(message: impl Into<String>) -> Refusal {
    Refusal::Forbidden(message.into())
}

fn conflict(message: impl Into<String>) -> Refusal {
    Refusal::Conflict(message.into())
}

/// Whether `text` is a real calendar date written `YYYY-MM-DD`.
pub fn is_date(text: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    text.len() == 10 && time::Date::parse(text, &format).is_ok()
}

const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 20_000;

impl Content {
    /// Checks the fields that need no catalogue: present, sized, dated.
    pub fn check(&self) -> Result<(), Refusal> {
        let title = self.title.trim();
        if title.is_empty() {
            return Err(invalid("title", "a title is required"));
        }
        if title.chars().count() > MAX_TITLE {
            return Err(invalid("title", format!("at most {MAX_TITLE} characters")));
        }
        for (field, text) in [("question", &self.question), ("answer", &self.answer)] {
            if text.trim().is_empty() {
                return Err(invalid(field, format!("the {field} is required")));
            }
            if text.chars().count() > MAX_TEXT {
                return Err(invalid(field, format!("at most {MAX_TEXT} characters")));
            }
        }
        if self.source.issuer.trim().is_empty() {
            return Err(invalid("source.issuer", "name the issuing body"));
        }
        if self.source.number.trim().is_empty() {
            return Err(invalid("source.number", "give the document number"));
        }
        if !is_date(&self.source.effective) {
            return Err(invalid(
                "source.effective",
                format!("{:?} is not a date (YYYY-MM-DD)", self.source.effective),
            ));
        }
        if let Some(expires) = &self.source.expires {
            if !is_date(expires) {
                return Err(invalid(
                    "source.expires",
                    format!("{expires:?} is not a date (YYYY-MM-DD)"),
                ));
            }
            if *expires < self.source.effective {
                return Err(invalid(
                    "source.expires",
                    "the expiry date is before the effective date",
                ));
            }
        }
        Ok(())
    }
}

/// May `who` write entries of `unit`?
pub fn may_write(who: &Principal, unit: &str) -> Result<(), Refusal> {
    match who.role {
        Role::Supervisor | Role::Admin => Ok(()),
        Role::UnitHandler if who.unit.as_deref() == Some(unit) => Ok(()),
        Role::UnitHandler => Err(forbidden(format!(
            "{} writes entries of unit {} only, not {unit}",
            who.name,
            who.unit.as_deref().unwrap_or("(none)")
        ))),
        role => Err(forbidden(format!(
            "a {} reads published entries only",
            role.as_str()
        ))),
    }
}

/// May `who` review, publish and expire?
fn may_review(who: &Principal, action: &str) -> Result<(), Refusal> {
    match who.role {
        Role::Supervisor | Role::Admin => Ok(()),
        role => Err(forbidden(format!(
            "a {} may not {action}; supervisors and admins review",
            role.as_str()
        ))),
    }
}

impl Entry {
    /// A new entry whose first version is a draft by `who`.
    pub fn create(
        id: String,
        who: &Principal,
        content: Content,
        now: i64,
    ) -> Result<(Entry, Vec<Event>), Refusal> {
        may_write(who, &content.unit)?;
        content.check()?;
        let entry = Entry {
            id,
            created_at: now,
            versions: vec![Version {
                version: 1,
                status: Status::Draft,
                content,
                author: who.name.clone(),
                created_at: now,
                note: None,
            }],
            log: vec![Step {
                at: now,
                by: who.name.clone(),
                action: "create".into(),
                version: 1,
                note: None,
            }],
        };
        Ok((
            entry,
            vec![Event {
                kind: "created",
                version: 1,
            }],
        ))
    }

    /// The newest version.
    pub fn head(&self) -> &Version {
        self.versions.last().expect("an entry has a version")
    }

    fn head_mut(&mut self) -> &mut Version {
        self.versions.last_mut().expect("an entry has a version")
    }

    /// The published version, if one is live.
    pub fn live(&self) -> Option<&Version> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.status == Status::Published)
    }

    /// The entry's status as listed: the newest version's.
    pub fn status(&self) -> Status {
        self.head().status
    }

    /// The unit that owns the entry (the newest version's).
    pub fn unit(&self) -> &str {
        &self.head().content.unit
    }

    /// The version shown in lists and hot topics: the live one, else the
    /// newest.
    pub fn shown(&self) -> &Version {
        self.live().unwrap_or_else(|| self.head())
    }

    /// Runs a command for `who`; nothing changes when it is refused.
    pub fn apply(
        &mut self,
        who: &Principal,
        command: Command,
        now: i64,
    ) -> Result<Vec<Event>, Refusal> {
        let action = command.name();
        let head = self.head().version;
        let head_status = self.head().status;
        let mut note = None;
        let events = match command {
            Command::Edit { base, content } => {
                may_write(who, self.unit())?;
                may_write(who, &content.unit)?;
                if base != head {
                    return Err(conflict(format!(
                        "version {base} is not the newest; version {head} is (reload and edit again)"
                    )));
                }
                if matches!(head_status, Status::Review | Status::Approved) {
                    return Err(conflict(format!(
                        "version {head} is under review; it must be sent back before it is edited"
                    )));
                }
                content.check()?;
                // An unpublished draft is replaced; a live or expired
                // version stays as it was.
                if head_status == Status::Draft {
                    self.head_mut().status = Status::Superseded;
                }
                self.versions.push(Version {
                    version: head + 1,
                    status: Status::Draft,
                    content: *content,
                    author: who.name.clone(),
                    created_at: now,
                    note: None,
                });
                vec![Event {
                    kind: "edited",
                    version: head + 1,
                }]
            }
            Command::Submit => {
                may_write(who, self.unit())?;
                self.expect(&[Status::Draft], "submit")?;
                self.head_mut().status = Status::Review;
                vec![Event {
                    kind: "submitted",
                    version: head,
                }]
            }
            Command::Approve => {
                may_review(who, "approve")?;
                self.expect(&[Status::Review], "approve")?;
                self.head_mut().status = Status::Approved;
                vec![Event {
                    kind: "approved",
                    version: head,
                }]
            }
            Command::SendBack { note: text } => {
                may_review(who, "send back")?;
                self.expect(&[Status::Review, Status::Approved], "send back")?;
                if text.trim().is_empty() {
                    return Err(invalid("note", "say what must change"));
                }
                let v = self.head_mut();
                v.status = Status::Draft;
                v.note = Some(text.clone());
                note = Some(text);
                vec![Event {
                    kind: "sent_back",
                    version: head,
                }]
            }
            Command::Publish => {
                may_review(who, "publish")?;
                self.expect(&[Status::Approved], "publish")?;
                let mut events = Vec::new();
                for v in &mut self.versions {
                    if v.status == Status::Published {
                        v.status = Status::Superseded;
                        events.push(Event {
                            kind: "superseded",
                            version: v.version,
                        });
                    }
                }
                self.head_mut().status = Status::Published;
                events.push(Event {
                    kind: "published",
                    version: head,
                });
                events
            }
            Command::Expire { note: text } => {
                may_review(who, "expire")?;
                let Some(live) = self.live().map(|v| v.version) else {
                    return Err(conflict("no version is published, so none can expire"));
                };
                note = text;
                self.expire_version(live)
            }
        };
        let version = events.last().map_or(head, |e| e.version);
        self.log.push(Step {
            at: now,
            by: who.name.clone(),
            action: action.into(),
            version,
            note,
        });
        Ok(events)
    }

    /// Expires the live version when its source's expiry date is before
    /// `today` (local `YYYY-MM-DD`); no events when nothing is due.
    pub fn expire_due(&mut self, today: &str, now: i64) -> Vec<Event> {
        let Some(live) = self.live() else {
            return Vec::new();
        };
        let due = live
            .content
            .source
            .expires
            .as_deref()
            .is_some_and(|d| d < today);
        if !due {
            return Vec::new();
        }
        let version = live.version;
        let events = self.expire_version(version);
        self.log.push(Step {
            at: now,
            by: "system".into(),
            action: "expire".into(),
            version,
            note: Some("the source document's expiry date has passed".into()),
        });
        events
    }

    fn expire_version(&mut self, version: u32) -> Vec<Event> {
        if let Some(v) = self.versions.iter_mut().find(|v| v.version == version) {
            v.status = Status::Expired;
        }
        vec![Event {
            kind: "expired",
            version,
        }]
    }

    fn expect(&self, allowed: &[Status], action: &str) -> Result<(), Refusal> {
        let status = self.head().status;
        if allowed.contains(&status) {
            Ok(())
        } else {
            Err(conflict(format!(
                "cannot {action} version {} while it is {}",
                self.head().version,
                status.as_str()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, unit: Option<&str>) -> Principal {
        Principal {
            name: format!("{}-user", role.as_str()),
            role,
            unit: unit.map(str::to_owned),
        }
    }

    fn handler() -> Principal {
        who(Role::UnitHandler, Some("hhht-medsec"))
    }

    fn supervisor() -> Principal {
        who(Role::Supervisor, None)
    }

    fn content(title: &str) -> Content {
        Content {
            title: title.into(),
            question: "异地就医怎么备案？".into(),
            answer: "通过国家医保服务平台办理备案。".into(),
            source: Source {
                issuer: "呼和浩特市医疗保障局".into(),
                number: "呼医保发〔2025〕12号".into(),
                effective: "2025-01-01".into(),
                expires: Some("2026-12-31".into()),
            },
            unit: "hhht-medsec".into(),
            category: "030202".into(),
            division: "150100".into(),
        }
    }

    fn edit(base: u32, content: Content) -> Command {
        Command::Edit {
            base,
            content: Box::new(content),
        }
    }

    fn published() -> Entry {
        let (mut e, _) = Entry::create("KB1".into(), &handler(), content("v1"), 0).unwrap();
        e.apply(&handler(), Command::Submit, 1).unwrap();
        e.apply(&supervisor(), Command::Approve, 2).unwrap();
        e.apply(&supervisor(), Command::Publish, 3).unwrap();
        e
    }

    #[test]
    fn draft_to_published() {
        let e = published();
        assert_eq!(e.status(), Status::Published);
        assert_eq!(e.live().unwrap().version, 1);
        let actions: Vec<_> = e.log.iter().map(|s| s.action.as_str()).collect();
        assert_eq!(actions, ["create", "submit", "approve", "publish"]);
    }

    #[test]
    fn roles_are_checked() {
        let agent = who(Role::Agent, None);
        let other = who(Role::UnitHandler, Some("hhht-water"));
        assert!(matches!(
            Entry::create("x".into(), &agent, content("t"), 0),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            Entry::create("x".into(), &other, content("t"), 0),
            Err(Refusal::Forbidden(_))
        ));
        let (mut e, _) = Entry::create("x".into(), &handler(), content("t"), 0).unwrap();
        assert!(matches!(
            e.apply(&other, Command::Submit, 1),
            Err(Refusal::Forbidden(_))
        ));
        e.apply(&handler(), Command::Submit, 1).unwrap();
        for cmd in [Command::Approve, Command::Publish] {
            assert!(matches!(
                e.apply(&handler(), cmd, 2),
                Err(Refusal::Forbidden(_))
            ));
        }
        // A handler may not move its entry to another unit either.
        let mut e = published();
        let mut moved = content("t");
        moved.unit = "hhht-water".into();
        assert!(matches!(
            e.apply(&handler(), edit(1, moved), 4),
            Err(Refusal::Forbidden(_))
        ));
    }

    #[test]
    fn states_are_checked() {
        let (mut e, _) = Entry::create("x".into(), &handler(), content("t"), 0).unwrap();
        assert!(matches!(
            e.apply(&supervisor(), Command::Publish, 1),
            Err(Refusal::Conflict(_))
        ));
        assert!(matches!(
            e.apply(&supervisor(), Command::Approve, 1),
            Err(Refusal::Conflict(_))
        ));
        assert!(matches!(
            e.apply(&supervisor(), Command::Expire { note: None }, 1),
            Err(Refusal::Conflict(_))
        ));
        let before = e.clone();
        assert!(e.apply(&handler(), Command::Submit, 1).is_ok());
        assert_ne!(before, e);
    }

    #[test]
    fn send_back_needs_a_note_and_returns_to_draft() {
        let (mut e, _) = Entry::create("x".into(), &handler(), content("t"), 0).unwrap();
        e.apply(&handler(), Command::Submit, 1).unwrap();
        assert!(matches!(
            e.apply(&supervisor(), Command::SendBack { note: " ".into() }, 2),
            Err(Refusal::Invalid { field: "note", .. })
        ));
        e.apply(
            &supervisor(),
            Command::SendBack {
                note: "请补充办理时限".into(),
            },
            2,
        )
        .unwrap();
        assert_eq!(e.status(), Status::Draft);
        assert_eq!(e.head().note.as_deref(), Some("请补充办理时限"));
        // Under review it cannot be edited; sent back it can.
        e.apply(&handler(), Command::Submit, 3).unwrap();
        assert!(matches!(
            e.apply(&handler(), edit(1, content("t2")), 4),
            Err(Refusal::Conflict(_))
        ));
    }

    #[test]
    fn editing_a_published_entry_keeps_it_live() {
        let mut e = published();
        e.apply(&handler(), edit(1, content("v2")), 10).unwrap();
        assert_eq!(e.head().version, 2);
        assert_eq!(e.status(), Status::Draft);
        assert_eq!(e.live().unwrap().content.title, "v1");
        // A stale base is a conflict.
        assert!(matches!(
            e.apply(&handler(), edit(1, content("v3")), 11),
            Err(Refusal::Conflict(_))
        ));
        // Editing the draft again makes version 3; version 2 is superseded.
        e.apply(&handler(), edit(2, content("v3")), 12).unwrap();
        assert_eq!(e.versions[1].status, Status::Superseded);
        e.apply(&handler(), Command::Submit, 13).unwrap();
        e.apply(&supervisor(), Command::Approve, 14).unwrap();
        let events = e.apply(&supervisor(), Command::Publish, 15).unwrap();
        assert_eq!(events[0].kind, "superseded");
        assert_eq!(e.live().unwrap().content.title, "v3");
        assert_eq!(e.versions[0].status, Status::Superseded);
        assert_eq!(e.versions.len(), 3);
    }

    #[test]
    fn expiry_date_passing_expires() {
        let mut e = published();
        assert!(e.expire_due("2026-12-31", 100).is_empty());
        let events = e.expire_due("2027-01-01", 100);
        assert_eq!(events[0].kind, "expired");
        assert!(e.live().is_none());
        assert_eq!(e.status(), Status::Expired);
        assert!(e.expire_due("2027-01-02", 101).is_empty());
    }

    #[test]
    fn expire_by_hand_keeps_a_newer_draft() {
        let mut e = published();
        e.apply(&handler(), edit(1, content("v2")), 10).unwrap();
        e.apply(&supervisor(), Command::Expire { note: None }, 11)
            .unwrap();
        assert!(e.live().is_none());
        assert_eq!(e.versions[0].status, Status::Expired);
        assert_eq!(e.status(), Status::Draft);
    }

    #[test]
    fn content_is_checked() {
        let mut c = content("t");
        c.source.effective = "2025-02-30".into();
        assert!(matches!(
            c.check(),
            Err(Refusal::Invalid {
                field: "source.effective",
                ..
            })
        ));
        let mut c = content("t");
        c.source.expires = Some("2024-01-01".into());
        assert!(matches!(
            c.check(),
            Err(Refusal::Invalid {
                field: "source.expires",
                ..
            })
        ));
        let mut c = content(" ");
        assert!(matches!(
            c.check(),
            Err(Refusal::Invalid { field: "title", .. })
        ));
        c.title = "t".into();
        c.answer.clear();
        assert!(matches!(
            c.check(),
            Err(Refusal::Invalid {
                field: "answer",
                ..
            })
        ));
    }
}
