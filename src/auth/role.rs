//! Roles and the principal a request acts as.

use serde::{Deserialize, Serialize};

/// A user's role (issue order of trust: agent < unit handler < dispatcher <
/// supervisor < admin, but each may only do its own part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A hotline agent: intake, direct answers, follow-up calls.
    Agent,
    /// Hotline dispatcher and reviewer: triage, dispatch, decisions, review.
    Dispatcher,
    /// A handler at a government unit: sees and acts on its unit's orders only.
    UnitHandler,
    /// Hotline supervisor: reads everything, urges and supervises.
    Supervisor,
    /// Administrator: everything, including users.
    Admin,
}

impl Role {
    /// Every role, in the order help texts list them.
    pub const ALL: [Role; 5] = [
        Role::Agent,
        Role::Dispatcher,
        Role::UnitHandler,
        Role::Supervisor,
        Role::Admin,
    ];

    /// The lower-case name (`unit_handler`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Dispatcher => "dispatcher",
            Role::UnitHandler => "unit_handler",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Parses the lower-case name; `reviewer` is the dispatcher's other hat.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "agent" => Some(Role::Agent),
            "dispatcher" | "reviewer" => Some(Role::Dispatcher),
            "unit_handler" | "unit" => Some(Role::UnitHandler),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Works at the hotline itself (not at a unit).
    pub fn is_hotline(self) -> bool {
        !matches!(self, Role::UnitHandler)
    }

    /// May see citizens' numbers and names unmasked (each read is audited).
    pub fn sees_personal_data(self) -> bool {
        matches!(
            self,
            Role::Agent | Role::Dispatcher | Role::Supervisor | Role::Admin
        )
    }
}

/// The user a request acts as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user's name, written into the audit log.
    pub name: String,
    pub role: Role,
    /// The unit of a unit handler.
    pub unit: Option<String>,
}

impl Principal {
    /// The system itself (scheduler, intake from calls).
    pub fn system(name: &str) -> Principal {
        Principal {
            name: name.to_owned(),
            role: Role::Admin,
            unit: None,
        }
    }
}
