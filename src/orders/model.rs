//! The work order's vocabulary: the names from the glossary in `DOMAIN.md`
//! as types that cannot hold garbage. Everything else in `orders/` speaks
//! these; the store keeps them as the lower-case strings serde gives them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where an appeal came in (统一受理).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Phone,
    Web,
    App,
    MiniProgram,
    Sms,
}

/// What kind of appeal (art. 8).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AppealType {
    /// 咨询
    Consultation,
    /// 求助
    Help,
    /// 投诉
    Complaint,
    /// 举报: the citizen's identity is hidden from units.
    Report,
    /// 意见建议
    Suggestion,
    /// 表扬
    Praise,
    /// 其他
    Other,
}

/// How urgent the handling is; `Emergency` is an emergency order (art. 10).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// 一般
    #[default]
    Normal,
    /// 紧急
    Urgent,
    /// 突发事件工单: water, power, gas, heating, disaster, public emergency.
    Emergency,
}

/// The order as a whole. The IVR's `lookup_order` node reads the status
/// aloud (`order_status_<status>` prompts), so every value has a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Being written at intake; nothing is promised yet.
    Draft,
    /// Accepted; waiting for triage or (again, after a return) dispatch.
    Accepted,
    /// Sent to units; none has replied.
    Dispatched,
    /// At least one unit has signed, or a reply was sent back, or rework.
    Handling,
    /// The lead replied; waiting for review.
    Replied,
    /// Handling is over (reply accepted, direct answer, out of scope,
    /// merged); follow-up may still be due.
    Closed,
    /// Followed up (or needing none) and filed.
    Archived,
}

impl OrderStatus {
    /// The lower-case name used in the store, the API and prompts.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Draft => "draft",
            OrderStatus::Accepted => "accepted",
            OrderStatus::Dispatched => "dispatched",
            OrderStatus::Handling => "handling",
            OrderStatus::Replied => "replied",
            OrderStatus::Closed => "closed",
            OrderStatus::Archived => "archived",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(text: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Draft,
            OrderStatus::Accepted,
            OrderStatus::Dispatched,
            OrderStatus::Handling,
            OrderStatus::Replied,
            OrderStatus::Closed,
            OrderStatus::Archived,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A unit's part in an order (主办 / 协办).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentRole {
    Lead,
    CoHandler,
}

/// Where one unit's assignment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentState {
    /// Dispatched, not yet signed for.
    PendingSign,
    /// Signed for (签收).
    Signed,
    /// The unit has contacted the citizen.
    Contacted,
    /// The lead replied (答复); waiting for review.
    Replied,
    /// A co-handler reported its part to the lead.
    Reported,
    /// Given back with an approved return (退回); the unit is done.
    Returned,
    /// Handling is over for this unit (the order closed).
    Done,
}

impl AssignmentState {
    /// Whether the unit still owes work on the order.
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            AssignmentState::Returned | AssignmentState::Done | AssignmentState::Reported
        )
    }
}

/// The step a clock times (限时办理). Order-level clocks have no unit.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ClockKind {
    /// The hotline dispatches an accepted order.
    Dispatch,
    /// A unit signs for its assignment.
    Sign,
    /// A unit contacts the citizen (响应).
    Contact,
    /// A unit handles and replies (the lead) or reports (a co-handler).
    Handle,
    /// The hotline reviews the lead's reply.
    Review,
    /// The hotline follows up with the citizen.
    FollowUp,
}

impl ClockKind {
    /// Every kind, in process order.
    pub const ALL: [ClockKind; 6] = [
        ClockKind::Dispatch,
        ClockKind::Sign,
        ClockKind::Contact,
        ClockKind::Handle,
        ClockKind::Review,
        ClockKind::FollowUp,
    ];

    /// The lower-case name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::Dispatch => "dispatch",
            ClockKind::Sign => "sign",
            ClockKind::Contact => "contact",
            ClockKind::Handle => "handle",
            ClockKind::Review => "review",
            ClockKind::FollowUp => "follow_up",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(text: &str) -> Option<ClockKind> {
        ClockKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// How satisfied the citizen said they were at follow-up (满意度).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    VerySatisfied,
    Satisfied,
    BasicallySatisfied,
    Unsatisfied,
}

impl Satisfaction {
    /// Counts toward the satisfaction rate (DOMAIN.md KPI formulas).
    pub fn is_satisfied(self) -> bool {
        !matches!(self, Satisfaction::Unsatisfied)
    }
}

/// One timed step (限时办理): when it started, when it is due, and what the
/// scheduler already said about it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Clock {
    pub kind: ClockKind,
    /// The unit whose step this is; `None` for the hotline's own steps
    /// (dispatch, review, follow-up).
    pub unit: Option<String>,
    pub started_at: i64,
    /// When it is due now (an approved extension moves this).
    pub due_at: i64,
    /// When it was first due; kept so on-time rates can use either.
    pub original_due_at: i64,
    /// When the step was done (or no longer owed).
    pub stopped_at: Option<i64>,
    /// Warnings and overdue notices the scheduler has recorded so far.
    pub alerts_sent: u8,
}

impl Clock {
    /// Still running.
    pub fn is_open(&self) -> bool {
        self.stopped_at.is_none()
    }

    /// Done late, or still running past its due time at `now`.
    pub fn is_overdue(&self, now: i64) -> bool {
        self.stopped_at.unwrap_or(now) > self.due_at
    }
}
