//! Repeat and abusive callers (regulation art. 26).
//!
//! Three kinds of number are dealt with here. A *repeat caller* has an order
//! still open: their new call is linked to that order when it ends
//! ([`repeat`]). A *nuisance* pattern in the recorded calls (many calls a
//! day, long calls with no appeal, silent hang-ups) or an agent's harassment
//! report raises a *flag* ([`detect`], swept by [`task`]); a flag never blocks
//! anything by itself. A supervisor reviews each flag and may *block* the
//! number for a bounded time; a blocked caller hears why, until when, and
//! where emergencies go, and is hung up politely ([`blocks`] is the view the
//! call path reads, without waiting on the database).
//!
//! The policy cores ([`detect`], [`blocks`]) are sans-IO; the store lives in
//! `store::callers` and the API in `api::callers`.

pub mod blocks;
pub mod config;
pub mod detect;
pub mod repeat;
pub mod task;

use serde::{Deserialize, Serialize};

/// What a flag says a number did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// More calls in a day than `callers.calls_per_day`.
    ManyCalls,
    /// Calls that held an agent long and left no appeal (no order).
    LongCalls,
    /// Calls hung up at once or without a word.
    SilentHangups,
    /// An agent reported harassment on a call.
    AgentReport,
}

impl Pattern {
    /// Every pattern.
    pub const ALL: [Pattern; 4] = [
        Pattern::ManyCalls,
        Pattern::LongCalls,
        Pattern::SilentHangups,
        Pattern::AgentReport,
    ];

    /// The snake_case name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::ManyCalls => "many_calls",
            Pattern::LongCalls => "long_calls",
            Pattern::SilentHangups => "silent_hangups",
            Pattern::AgentReport => "agent_report",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The reason a supervisor would most likely give for a block.
    pub fn suggested_reason(self) -> Reason {
        match self {
            Pattern::ManyCalls | Pattern::SilentHangups => Reason::RepeatedCalls,
            Pattern::LongCalls => Reason::LineOccupation,
            Pattern::AgentReport => Reason::Harassment,
        }
    }
}

/// Why a number is blocked: the three grounds article 26 names. Each has its
/// own recorded notice (`blocked_<reason>.wav`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// 无正当理由反复拨打.
    RepeatedCalls,
    /// 长时间占用热线.
    LineOccupation,
    /// 骚扰、辱骂话务员.
    Harassment,
}

impl Reason {
    /// Every reason.
    pub const ALL: [Reason; 3] = [
        Reason::RepeatedCalls,
        Reason::LineOccupation,
        Reason::Harassment,
    ];

    /// The snake_case name stored and accepted by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RepeatedCalls => "repeated_calls",
            Reason::LineOccupation => "line_occupation",
            Reason::Harassment => "harassment",
        }
    }

    /// Parses the name.
    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The notice a blocked caller hears first.
    pub fn prompt(self) -> String {
        format!("blocked_{}", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Pattern::ALL {
            assert_eq!(Pattern::parse(p.as_str()), Some(p));
        }
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("spam"), None);
        assert_eq!(Reason::Harassment.prompt(), "blocked_harassment");
    }
}
