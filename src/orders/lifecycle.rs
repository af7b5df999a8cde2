//! The work order's lifecycle as a sans-IO state machine (DOMAIN.md, "Work
//! order lifecycle"): [`WorkOrder::apply`] takes who acts, a [`Command`] and
//! the time, checks the role, the unit and the state, changes the order and
//! returns the [`Event`]s to announce. A refused command changes nothing and
//! says why ([`Refusal`]: 403, 409 or 400 at the API).
//!
//! Deadlines come from a [`Policy`] (the working-day calendar and the
//! limits), so the whole process can be driven to the millisecond in tests.
//! The store keeps the order as one document plus the projections it
//! filters on; the shell diffs the order before and after each command for
//! the audit log.

use super::deadline::{Limits, Span, WorkTime};
use super::model::*;
use crate::auth::{Principal, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How deadlines are computed: the calendar and the configured limits.
pub struct Policy<'a> {
    pub time: &'a WorkTime,
    pub limits: &'a Limits,
}

/// A citizen's phone number: digits, optionally with a leading `+` and `-`
/// separators, 3 to 20 digits. Parsed at the edge so no order holds garbage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number; the error says what is wrong.
    pub fn parse(text: &str) -> Result<PhoneNumber, String> {
        let text = text.trim();
        let body = text.strip_prefix('+').unwrap_or(text);
        if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit() || c == '-') {
            return Err(format!("{text:?} is not a phone number (digits only)"));
        }
        let digits = body.chars().filter(char::is_ascii_digit).count();
        if !(3..=20).contains(&digits) {
            return Err(format!("{text:?} has {digits} digits; 3 to 20 expected"));
        }
        Ok(PhoneNumber(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

/// Who appealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Citizen {
    #[serde(default)]
    pub name: Option<String>,
    pub phone: PhoneNumber,
    /// The citizen asked that their identity be kept from units (保密).
    #[serde(default)]
    pub confidential: bool,
}

/// A file that came with the appeal (photo, document), stored elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub content_type: Option<String>,
}

/// A call that belongs to the order, with what the IVR and recorder kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkedCall {
    pub call_id: String,
    #[serde(default)]
    pub recording: Option<String>,
    /// `flow:node` steps the caller went through.
    #[serde(default)]
    pub ivr_path: Vec<String>,
    #[serde(default)]
    pub seat: Option<String>,
    /// The caller's rating in the IVR survey after the call (1-5).
    #[serde(default)]
    pub survey_score: Option<u8>,
}

/// What intake collects; validated against the catalogue by the shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Intake {
    pub channel: Channel,
    pub citizen: Citizen,
    pub appeal_type: AppealType,
    /// A level-3 (or coarser) code from the matter catalogue.
    pub category: String,
    #[serde(default)]
    pub urgency: Urgency,
    /// An emergency with life or property at risk (shorter first feedback).
    #[serde(default)]
    pub life_at_risk: bool,
    /// Administrative division code (GB/T 2260).
    pub division: String,
    #[serde(default)]
    pub location: Option<String>,
    pub content: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub calls: Vec<LinkedCall>,
}

/// How an order's handling ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Closing {
    /// 直接答复: answered at intake from the knowledge base.
    DirectAnswer {
        kb_entry: Option<String>,
        answer: String,
    },
    /// Art. 9: not accepted; the citizen was told the right channel.
    OutOfScope { reason: String, channel: String },
    /// 并单: merged into another order about the same matter.
    Merged { into: String },
    /// The lead's reply was accepted at review.
    Replied,
}

/// One unit's part in the order, with its own state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Assignment {
    pub unit: String,
    pub role: AssignmentRole,
    pub state: AssignmentState,
    pub dispatched_at: i64,
    pub signed_at: Option<i64>,
    pub contacted_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// Where a request (return or extension) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Approved,
    Rejected,
    Cancelled,
}

/// 退回: a unit asks to give the order back as outside its remit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReturnRequest {
    pub unit: String,
    pub reason: String,
    /// The legal basis for saying it is not the unit's remit.
    pub basis: String,
    pub suggested_unit: Option<String>,
    pub requested_at: i64,
    pub state: RequestState,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
}

/// 延时: a unit asks for more time, before its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExtensionRequest {
    pub unit: String,
    pub working_days: u32,
    pub reason: String,
    pub basis: Option<String>,
    pub requested_at: i64,
    pub state: RequestState,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
    /// The handle deadline before and after an approval.
    pub due_before: Option<i64>,
    pub due_after: Option<i64>,
}

/// A unit's answer: the lead's reply or a co-handler's report to the lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reply {
    pub unit: String,
    pub by: String,
    pub at: i64,
    pub text: String,
    /// A co-handler's report rather than the lead's reply.
    pub report: bool,
    /// The review's verdict (the lead's replies only).
    pub review: Option<Review>,
}

/// 答复认定: the hotline's verdict on a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Review {
    pub accepted: bool,
    pub by: String,
    pub at: i64,
    pub note: Option<String>,
}

/// 回访: one follow-up attempt with the citizen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FollowUp {
    pub at: i64,
    pub by: String,
    pub reached: bool,
    pub resolved: Option<bool>,
    pub satisfaction: Option<Satisfaction>,
    pub note: Option<String>,
}

/// 催办 / 督办 / 通报.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Urge,
    Supervise,
    Notice,
}

/// An urge, supervision or notice, by a person or by the scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    pub kind: AlertKind,
    pub unit: Option<String>,
    pub clock: Option<ClockKind>,
    pub at: i64,
    pub by: String,
    pub text: String,
}

/// The work order (工单).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkOrder {
    pub order_no: String,
    pub intake: Intake,
    pub status: OrderStatus,
    pub created_at: i64,
    pub created_by: String,
    pub accepted_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub archived_at: Option<i64>,
    pub closing: Option<Closing>,
    pub assignments: Vec<Assignment>,
    pub clocks: Vec<Clock>,
    pub returns: Vec<ReturnRequest>,
    pub extensions: Vec<ExtensionRequest>,
    pub replies: Vec<Reply>,
    pub follow_ups: Vec<FollowUp>,
    pub alerts: Vec<Alert>,
    /// Times an unsatisfied follow-up sent the order back (重办).
    pub rework_count: u32,
    /// Units that were lead at some point, in order.
    pub leads: Vec<String>,
    /// Lead units whose return was approved.
    pub returned_by: Vec<String>,
    /// 提级督办, and why.
    pub escalated: Option<String>,
    /// Orders merged into this one.
    pub merged_from: Vec<String>,
    /// Why the dispatcher chose other units than the catalogue's default.
    pub dispatch_override: Option<String>,
    /// Calls the citizen made about it while it was open (repeat calls).
    #[serde(default)]
    pub repeat_calls: u32,
}

/// Units the dispatch catalogue suggests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    pub lead: String,
    #[serde(default)]
    pub co_handlers: Vec<String>,
}

impl From<super::units::DispatchPlan> for Plan {
    fn from(p: super::units::DispatchPlan) -> Plan {
        Plan {
            lead: p.lead,
            co_handlers: p.co_handlers,
        }
    }
}

/// What someone asks the order to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Draft → accepted.
    Submit,
    DirectAnswer {
        kb_entry: Option<String>,
        answer: String,
    },
    OutOfScope {
        reason: String,
        channel: String,
    },
    /// Send to units. `default` is the catalogue's suggestion; choosing
    /// other units needs `override_reason`.
    Dispatch {
        plan: Plan,
        default: Option<Plan>,
        override_reason: Option<String>,
    },
    Sign {
        unit: String,
    },
    Contact {
        unit: String,
        note: Option<String>,
    },
    /// A co-handler reports its part to the lead.
    Report {
        unit: String,
        text: String,
    },
    RequestReturn {
        unit: String,
        reason: String,
        basis: String,
        suggested_unit: Option<String>,
    },
    DecideReturn {
        unit: String,
        approve: bool,
        note: Option<String>,
    },
    CancelReturn {
        unit: String,
    },
    RequestExtension {
        unit: String,
        working_days: u32,
        reason: String,
        basis: Option<String>,
    },
    DecideExtension {
        unit: String,
        approve: bool,
        note: Option<String>,
    },
    CancelExtension {
        unit: String,
    },
    /// The lead's reply.
    Reply {
        unit: String,
        text: String,
    },
    Review {
        accept: bool,
        note: Option<String>,
    },
    FollowUp {
        reached: bool,
        resolved: Option<bool>,
        satisfaction: Option<Satisfaction>,
        note: Option<String>,
    },
    /// A person urges, supervises or names a unit.
    Alert {
        kind: AlertKind,
        unit: Option<String>,
        text: String,
    },
    /// The scheduler found a clock at a warning or past its due time.
    ClockAlert {
        kind: ClockKind,
        unit: Option<String>,
        overdue: bool,
        percent: u8,
        alerts_sent: u8,
    },
    /// This order repeats `into`; it closes there.
    MergeInto {
        into: String,
    },
    /// The other side of a merge: `order_no` now lives on in this order.
    Absorb {
        order_no: String,
        calls: Vec<LinkedCall>,
    },
    /// The caller rated the call in the IVR survey.
    CallSurvey {
        call_id: String,
        score: u8,
    },
    /// The citizen called again while the order was open.
    RepeatCall {
        call: LinkedCall,
    },
}

impl Command {
    /// The action's name in the audit log and the API.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Submit => "submit",
            Command::DirectAnswer { .. } => "direct_answer",
            Command::OutOfScope { .. } => "out_of_scope",
            Command::Dispatch { .. } => "dispatch",
            Command::Sign { .. } => "sign",
            Command::Contact { .. } => "contact",
            Command::Report { .. } => "report",
            Command::RequestReturn { .. } => "request_return",
            Command::DecideReturn { .. } => "decide_return",
            Command::CancelReturn { .. } => "cancel_return",
            Command::RequestExtension { .. } => "request_extension",
            Command::DecideExtension { .. } => "decide_extension",
            Command::CancelExtension { .. } => "cancel_extension",
            Command::Reply { .. } => "reply",
            Command::Review { .. } => "review",
            Command::FollowUp { .. } => "follow_up",
            Command::Alert { .. } => "alert",
            Command::ClockAlert { .. } => "clock_alert",
            Command::MergeInto { .. } => "merge",
            Command::Absorb { .. } => "absorb",
            Command::CallSurvey { .. } => "call_survey",
            Command::RepeatCall { .. } => "repeat_call",
        }
    }

    /// The unit the command acts for, when it is a unit's own step.
    fn acting_unit(&self) -> Option<&str> {
        match self {
            Command::Sign { unit }
            | Command::Contact { unit, .. }
            | Command::Report { unit, .. }
            | Command::RequestReturn { unit, .. }
            | Command::CancelReturn { unit }
            | Command::RequestExtension { unit, .. }
            | Command::CancelExtension { unit }
            | Command::Reply { unit, .. } => Some(unit),
            _ => None,
        }
    }
}

/// Why a command was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The role or unit may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Not in this state (409).
    #[error("{0}")]
    Conflict(String),
    /// A field is wrong (400).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn conflict(message: impl Into<String>) -> Refusal {
    Refusal::Conflict(message.into())
}

fn invalid(field: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Invalid {
        field,
        message: message.into(),
    }
}

/// Something others should hear about (event stream, unit portal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    pub kind: String,
    pub unit: Option<String>,
    pub detail: String,
}

fn event(kind: &str, unit: Option<&str>, detail: impl Into<String>) -> Event {
    Event {
        kind: kind.to_owned(),
        unit: unit.map(str::to_owned),
        detail: detail.into(),
    }
}

/// Reworks or lead returns that make an order escalate (提级督办).
pub const ESCALATE_AFTER: usize = 3;

impl WorkOrder {
    /// A new draft; nothing is promised until [`Command::Submit`].
    pub fn new(order_no: String, intake: Intake, by: &Principal, now: i64) -> WorkOrder {
        WorkOrder {
            order_no,
            intake,
            status: OrderStatus::Draft,
            created_at: now,
            created_by: by.name.clone(),
            accepted_at: None,
            closed_at: None,
            archived_at: None,
            closing: None,
            assignments: Vec::new(),
            clocks: Vec::new(),
            returns: Vec::new(),
            extensions: Vec::new(),
            replies: Vec::new(),
            follow_ups: Vec::new(),
            alerts: Vec::new(),
            rework_count: 0,
            leads: Vec::new(),
            returned_by: Vec::new(),
            escalated: None,
            merged_from: Vec::new(),
            dispatch_override: None,
            repeat_calls: 0,
        }
    }

    /// An emergency order (art. 10): dispatched at once on short limits.
    pub fn is_emergency(&self) -> bool {
        self.intake.urgency == Urgency::Emergency
    }

    /// The lead's current assignment.
    pub fn lead(&self) -> Option<&Assignment> {
        self.assignments
            .iter()
            .find(|a| a.role == AssignmentRole::Lead && a.state != AssignmentState::Returned)
    }

    /// The unit's live assignment (not returned).
    pub fn assignment(&self, unit: &str) -> Option<&Assignment> {
        self.assignments
            .iter()
            .find(|a| a.unit == unit && a.state != AssignmentState::Returned)
    }

    /// Whether `unit` ever had a part in the order (what a unit may see).
    pub fn involves(&self, unit: &str) -> bool {
        self.assignments.iter().any(|a| a.unit == unit)
    }

    /// The clock of `kind` for `unit` (`None`: the hotline's own).
    pub fn clock(&self, kind: ClockKind, unit: Option<&str>) -> Option<&Clock> {
        self.clocks
            .iter()
            .rev()
            .find(|c| c.kind == kind && c.unit.as_deref() == unit)
    }

    /// Open clocks past their due time at `now`.
    pub fn overdue_clocks(&self, now: i64) -> impl Iterator<Item = &Clock> {
        self.clocks
            .iter()
            .filter(move |c| c.is_open() && c.is_overdue(now))
    }

    /// Applies a command for `who` at `now`: all or nothing.
    pub fn apply(
        &mut self,
        who: &Principal,
        command: Command,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Event>, Refusal> {
        self.authorize(who, &command)?;
        let mut next = self.clone();
        let events = next.transition(who, command, now, policy)?;
        *self = next;
        Ok(events)
    }

    fn authorize(&self, who: &Principal, command: &Command) -> Result<(), Refusal> {
        use Role::*;
        let role = who.role;
        let allowed: &[Role] = match command {
            Command::Submit | Command::DirectAnswer { .. } | Command::OutOfScope { .. } => {
                &[Agent, Dispatcher, Admin]
            }
            Command::Dispatch { .. }
            | Command::DecideReturn { .. }
            | Command::DecideExtension { .. }
            | Command::Review { .. }
            | Command::MergeInto { .. }
            | Command::Absorb { .. } => &[Dispatcher, Admin],
            Command::FollowUp { .. } => &[Agent, Dispatcher, Admin],
            Command::Alert { .. } => &[Dispatcher, Supervisor, Admin],
            Command::ClockAlert { .. }
            | Command::CallSurvey { .. }
            | Command::RepeatCall { .. } => &[Admin],
            Command::Sign { .. }
            | Command::Contact { .. }
            | Command::Report { .. }
            | Command::RequestReturn { .. }
            | Command::CancelReturn { .. }
            | Command::RequestExtension { .. }
            | Command::CancelExtension { .. }
            | Command::Reply { .. } => &[UnitHandler, Admin],
        };
        if !allowed.contains(&role) {
            return Err(Refusal::Forbidden(format!(
                "a {} may not {}",
                role.as_str(),
                command.name().replace('_', " ")
            )));
        }
        if role == UnitHandler
            && let Some(unit) = command.acting_unit()
            && who.unit.as_deref() != Some(unit)
        {
            return Err(Refusal::Forbidden(format!(
                "{} acts for unit {}, not {unit}",
                who.name,
                who.unit.as_deref().unwrap_or("(none)")
            )));
        }
        Ok(())
    }

    fn transition(
        &mut self,
        who: &Principal,
        command: Command,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Event>, Refusal> {
        match command {
            Command::Submit => self.submit(now, policy),
            Command::DirectAnswer { kb_entry, answer } => {
                self.expect(&[OrderStatus::Accepted], "answer directly")?;
                if answer.trim().is_empty() {
                    return Err(invalid("answer", "the answer given is empty"));
                }
                self.stop_clock(ClockKind::Dispatch, None, now);
                self.closing = Some(Closing::DirectAnswer { kb_entry, answer });
                self.close(now, policy, true);
                Ok(vec![event("closed", None, "direct answer")])
            }
            Command::OutOfScope { reason, channel } => {
                self.expect(&[OrderStatus::Accepted], "close as out of scope")?;
                if reason.trim().is_empty() {
                    return Err(invalid("reason", "say why it is out of scope (art. 9)"));
                }
                if channel.trim().is_empty() {
                    return Err(invalid("channel", "name the channel the citizen was told"));
                }
                self.stop_clock(ClockKind::Dispatch, None, now);
                self.closing = Some(Closing::OutOfScope { reason, channel });
                // Nothing is owed: no dispatch, no follow-up.
                self.close(now, policy, false);
                self.archive(now);
                Ok(vec![event("closed", None, "out of scope")])
            }
            Command::Dispatch {
                plan,
                default,
                override_reason,
            } => self.dispatch(plan, default, override_reason, now, policy),
            Command::Sign { unit } => {
                self.expect_handling("sign for")?;
                let a = self.unit_mut(&unit)?;
                if a.state != AssignmentState::PendingSign {
                    return Err(conflict(format!("{unit} has already signed")));
                }
                a.state = AssignmentState::Signed;
                a.signed_at = Some(now);
                let lead = a.role == AssignmentRole::Lead;
                self.stop_clock(ClockKind::Sign, Some(&unit), now);
                if lead && self.status == OrderStatus::Dispatched {
                    self.status = OrderStatus::Handling;
                }
                Ok(vec![event("signed", Some(&unit), "")])
            }
            Command::Contact { unit, note } => {
                self.expect_handling("contact the citizen on")?;
                let a = self.unit_mut(&unit)?;
                match a.state {
                    AssignmentState::Signed => {}
                    AssignmentState::PendingSign => {
                        return Err(conflict(format!("{unit} must sign for the order first")));
                    }
                    _ => return Err(conflict(format!("{unit} has already contacted"))),
                }
                a.state = AssignmentState::Contacted;
                a.contacted_at = Some(now);
                self.stop_clock(ClockKind::Contact, Some(&unit), now);
                Ok(vec![event(
                    "contacted",
                    Some(&unit),
                    note.unwrap_or_default(),
                )])
            }
            Command::Report { unit, text } => {
                self.expect_handling("report on")?;
                if text.trim().is_empty() {
                    return Err(invalid("text", "the report is empty"));
                }
                let a = self.unit_mut(&unit)?;
                if a.role != AssignmentRole::CoHandler {
                    return Err(conflict(format!(
                        "{unit} is the lead; the lead replies, co-handlers report"
                    )));
                }
                if !matches!(
                    a.state,
                    AssignmentState::Signed | AssignmentState::Contacted
                ) {
                    return Err(conflict(format!(
                        "{unit} cannot report while {:?}",
                        a.state
                    )));
                }
                a.state = AssignmentState::Reported;
                a.finished_at = Some(now);
                self.stop_unit_clocks(&unit, now);
                self.replies.push(Reply {
                    unit: unit.clone(),
                    by: who.name.clone(),
                    at: now,
                    text,
                    report: true,
                    review: None,
                });
                Ok(vec![event("reported", Some(&unit), "")])
            }
            Command::RequestReturn {
                unit,
                reason,
                basis,
                suggested_unit,
            } => self.request_return(unit, reason, basis, suggested_unit, now, policy),
            Command::DecideReturn {
                unit,
                approve,
                note,
            } => self.decide_return(who, unit, approve, note, now, policy),
            Command::CancelReturn { unit } => {
                let r = self
                    .returns
                    .iter_mut()
                    .rev()
                    .find(|r| r.unit == unit && r.state == RequestState::Pending)
                    .ok_or_else(|| conflict(format!("{unit} has no pending return")))?;
                r.state = RequestState::Cancelled;
                r.decided_at = Some(now);
                Ok(vec![event("return_cancelled", Some(&unit), "")])
            }
            Command::RequestExtension {
                unit,
                working_days,
                reason,
                basis,
            } => self.request_extension(unit, working_days, reason, basis, now, policy),
            Command::DecideExtension {
                unit,
                approve,
                note,
            } => self.decide_extension(who, unit, approve, note, now, policy),
            Command::CancelExtension { unit } => {
                let x = self
                    .extensions
                    .iter_mut()
                    .rev()
                    .find(|x| x.unit == unit && x.state == RequestState::Pending)
                    .ok_or_else(|| conflict(format!("{unit} has no pending extension")))?;
                x.state = RequestState::Cancelled;
                x.decided_at = Some(now);
                Ok(vec![event("extension_cancelled", Some(&unit), "")])
            }
            Command::Reply { unit, text } => self.reply(who, unit, text, now, policy),
            Command::Review { accept, note } => self.review(who, accept, note, now, policy),
            Command::FollowUp {
                reached,
                resolved,
                satisfaction,
                note,
            } => self.follow_up(who, reached, resolved, satisfaction, note, now, policy),
            Command::Alert { kind, unit, text } => {
                if matches!(self.status, OrderStatus::Draft | OrderStatus::Archived) {
                    return Err(conflict(format!(
                        "an order that is {} cannot be urged",
                        self.status.as_str()
                    )));
                }
                if text.trim().is_empty() {
                    return Err(invalid("text", "say what the unit must do"));
                }
                if let Some(u) = &unit
                    && !self.involves(u)
                {
                    return Err(invalid("unit", format!("{u} has no part in this order")));
                }
                self.alerts.push(Alert {
                    kind,
                    unit: unit.clone(),
                    clock: None,
                    at: now,
                    by: who.name.clone(),
                    text,
                });
                Ok(vec![event(alert_name(kind), unit.as_deref(), "")])
            }
            Command::ClockAlert {
                kind,
                unit,
                overdue,
                percent,
                alerts_sent,
            } => {
                let clock = self
                    .clocks
                    .iter_mut()
                    .rev()
                    .find(|c| c.kind == kind && c.unit == unit && c.is_open())
                    .ok_or_else(|| conflict("that clock has stopped"))?;
                clock.alerts_sent = alerts_sent;
                let alert = if overdue {
                    AlertKind::Supervise
                } else {
                    AlertKind::Urge
                };
                let text = if overdue {
                    format!("{} is overdue", kind.as_str())
                } else {
                    format!("{percent}% of the {} limit used", kind.as_str())
                };
                self.alerts.push(Alert {
                    kind: alert,
                    unit: unit.clone(),
                    clock: Some(kind),
                    at: now,
                    by: who.name.clone(),
                    text: text.clone(),
                });
                Ok(vec![event(alert_name(alert), unit.as_deref(), text)])
            }
            Command::MergeInto { into } => {
                self.expect(&[OrderStatus::Draft, OrderStatus::Accepted], "merge")?;
                if into == self.order_no {
                    return Err(invalid("into", "an order cannot merge into itself"));
                }
                self.stop_clock(ClockKind::Dispatch, None, now);
                self.closing = Some(Closing::Merged { into: into.clone() });
                self.close(now, policy, false);
                self.archive(now);
                Ok(vec![event("merged", None, into)])
            }
            Command::Absorb { order_no, calls } => {
                if matches!(self.status, OrderStatus::Draft | OrderStatus::Archived) {
                    return Err(conflict(format!(
                        "an order that is {} cannot take in another",
                        self.status.as_str()
                    )));
                }
                if self.merged_from.contains(&order_no) {
                    return Err(conflict(format!("{order_no} is already merged here")));
                }
                self.merged_from.push(order_no.clone());
                self.intake.calls.extend(calls);
                Ok(vec![event("absorbed", None, order_no)])
            }
            Command::CallSurvey { call_id, score } => {
                if self.status == OrderStatus::Draft {
                    return Err(conflict("a draft has no calls to rate yet"));
                }
                let call = self
                    .intake
                    .calls
                    .iter_mut()
                    .find(|c| c.call_id == call_id)
                    .ok_or_else(|| conflict(format!("call {call_id} is not on this order")))?;
                call.survey_score = Some(score);
                Ok(vec![event("call_survey", None, score.to_string())])
            }
            Command::RepeatCall { call } => {
                if matches!(
                    self.status,
                    OrderStatus::Draft | OrderStatus::Closed | OrderStatus::Archived
                ) {
                    return Err(conflict(format!(
                        "an order that is {} takes no repeat calls",
                        self.status.as_str()
                    )));
                }
                // Linked already (filed from this very call): nothing new.
                if self.intake.calls.iter().any(|c| c.call_id == call.call_id) {
                    return Ok(Vec::new());
                }
                let id = call.call_id.clone();
                self.intake.calls.push(call);
                self.repeat_calls += 1;
                Ok(vec![event("repeat_call", None, id)])
            }
        }
    }

    fn expect(&self, states: &[OrderStatus], action: &str) -> Result<(), Refusal> {
        if states.contains(&self.status) {
            return Ok(());
        }
        Err(conflict(format!(
            "cannot {action} an order that is {}",
            self.status.as_str()
        )))
    }

    fn expect_handling(&self, action: &str) -> Result<(), Refusal> {
        self.expect(
            &[
                OrderStatus::Dispatched,
                OrderStatus::Handling,
                OrderStatus::Replied,
            ],
            action,
        )
    }

    fn unit_mut(&mut self, unit: &str) -> Result<&mut Assignment, Refusal> {
        let order_no = self.order_no.clone();
        self.assignments
            .iter_mut()
            .find(|a| a.unit == unit && a.state != AssignmentState::Returned)
            .ok_or_else(|| conflict(format!("{unit} has no part in order {order_no}")))
    }

    fn start_clock(&mut self, kind: ClockKind, unit: Option<&str>, now: i64, policy: &Policy) {
        let span = policy.limits.span(
            kind,
            self.intake.appeal_type,
            self.intake.urgency,
            self.intake.life_at_risk,
        );
        let due = policy.time.due(now, span);
        // One clock per step and unit: a restarted step replaces the old.
        self.clocks
            .retain(|c| !(c.kind == kind && c.unit.as_deref() == unit && c.is_open()));
        self.clocks.push(Clock {
            kind,
            unit: unit.map(str::to_owned),
            started_at: now,
            due_at: due,
            original_due_at: due,
            stopped_at: None,
            alerts_sent: 0,
        });
    }

    fn stop_clock(&mut self, kind: ClockKind, unit: Option<&str>, now: i64) {
        for c in self.clocks.iter_mut() {
            if c.kind == kind && c.unit.as_deref() == unit && c.is_open() {
                c.stopped_at = Some(now);
            }
        }
    }

    fn stop_unit_clocks(&mut self, unit: &str, now: i64) {
        for c in self.clocks.iter_mut() {
            if c.unit.as_deref() == Some(unit) && c.is_open() {
                c.stopped_at = Some(now);
            }
        }
    }

    fn submit(&mut self, now: i64, policy: &Policy) -> Result<Vec<Event>, Refusal> {
        self.expect(&[OrderStatus::Draft], "submit")?;
        if self.intake.content.trim().is_empty() {
            return Err(invalid("content", "say what the citizen wants"));
        }
        self.status = OrderStatus::Accepted;
        self.accepted_at = Some(now);
        self.start_clock(ClockKind::Dispatch, None, now, policy);
        let mut events = vec![event("accepted", None, "")];
        if self.is_emergency() {
            events.push(event("emergency", None, "dispatch at once (art. 10)"));
        }
        Ok(events)
    }

    fn dispatch(
        &mut self,
        plan: Plan,
        default: Option<Plan>,
        override_reason: Option<String>,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Event>, Refusal> {
        self.expect(&[OrderStatus::Accepted], "dispatch")?;
        if plan.lead.trim().is_empty() {
            return Err(invalid("lead", "name the lead unit"));
        }
        let mut seen = vec![plan.lead.as_str()];
        for co in &plan.co_handlers {
            if seen.contains(&co.as_str()) {
                return Err(invalid(
                    "co_handlers",
                    format!("{co} is named twice (a unit has one part in an order)"),
                ));
            }
            seen.push(co);
        }
        let reason = override_reason.filter(|r| !r.trim().is_empty());
        let differs = default.as_ref().is_some_and(|d| !same_plan(d, &plan));
        if differs && reason.is_none() {
            return Err(invalid(
                "override_reason",
                "these units differ from the dispatch catalogue's; say why",
            ));
        }
        if self.returned_by.contains(&plan.lead) && reason.is_none() {
            return Err(invalid(
                "override_reason",
                format!(
                    "{} already returned this order; say why it leads again",
                    plan.lead
                ),
            ));
        }
        self.stop_clock(ClockKind::Dispatch, None, now);
        if reason.is_some() {
            self.dispatch_override = reason;
        }
        // A re-dispatch after a lead's return starts afresh: earlier live
        // parts are closed so each unit has one live assignment.
        let units: Vec<(String, AssignmentRole)> =
            std::iter::once((plan.lead.clone(), AssignmentRole::Lead))
                .chain(
                    plan.co_handlers
                        .iter()
                        .map(|c| (c.clone(), AssignmentRole::CoHandler)),
                )
                .collect();
        for (unit, role) in &units {
            self.assignments
                .retain(|a| !(a.unit == *unit && a.state == AssignmentState::Done));
            self.assignments.push(Assignment {
                unit: unit.clone(),
                role: *role,
                state: AssignmentState::PendingSign,
                dispatched_at: now,
                signed_at: None,
                contacted_at: None,
                finished_at: None,
            });
            for kind in [ClockKind::Sign, ClockKind::Contact, ClockKind::Handle] {
                self.start_clock(kind, Some(unit), now, policy);
            }
        }
        if !self.leads.contains(&plan.lead) {
            self.leads.push(plan.lead.clone());
        }
        self.status = OrderStatus::Dispatched;
        Ok(units
            .iter()
            .map(|(u, r)| {
                event(
                    "dispatched",
                    Some(u),
                    match r {
                        AssignmentRole::Lead => "lead",
                        AssignmentRole::CoHandler => "co_handler",
                    },
                )
            })
            .collect())
    }

    fn request_return(
        &mut self,
        unit: String,
        reason: String,
        basis: String,
        suggested_unit: Option<String>,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Event>, Refusal> {
        self.expect(&[OrderStatus::Dispatched, OrderStatus::Handling], "return")?;
        if reason.trim().is_empty() {
            return Err(invalid("reason", "say why the order is not the unit's"));
        }
        if basis.trim().is_empty() {
            return Err(invalid("basis", "a return needs its legal basis"));
        }
        let a = self.unit_mut(&unit)?;
        let signed_at = match a.state {
            AssignmentState::PendingSign => None,
            AssignmentState::Signed | AssignmentState::Contacted => a.signed_at,
            state => {
                return Err(conflict(format!(
                    "{unit} cannot return an order it has {}",
                    match state {
                        AssignmentState::Replied => "replied to",
                        AssignmentState::Reported => "reported on",
                        _ => "finished",
                    }
                )));
            }
        };
        if let Some(signed) = signed_at
            && policy.time.working_days_between(signed, now) > 1
        {
            return Err(conflict(format!(
                "{unit} signed more than 1 working day ago; a return must be asked within 1"
            )));
        }
        if self
            .returns
            .iter()
            .any(|r| r.unit == unit && r.state == RequestState::Pending)
        {
            return Err(conflict(format!("{unit} already has a return pending")));
        }
        self.returns.push(ReturnRequest {
            unit: unit.clone(),
            reason,
            basis,
            suggested_unit,
            requested_at: now,
            state: RequestState::Pending,
            decided_at: None,
            decided_by: None,
            note: None,
        });
        Ok(vec![event("return_requested", Some(&unit), "")])
    }

    fn decide_return(
        &mut self,
        who: &Principal,
        unit: String,
        approve: bool,
        note: Option<String>,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Event>, Refusal> {
        let Some(i) = self
            .returns
            .iter()
            .rposition(|r| r.unit == unit && r.state == RequestState::Pending)
        else {
            return Err(conflict(format!("{unit} has no pending return")));
        };
        let r = &mut self.returns[i];
        r.state = if approve {
            RequestState::Approved
        } else {
            RequestState::Rejected
        };
        r.decided_at = Some(now);
        r.decided_by = Some(who.name.clone());
        r.note = note;
        if !approve {
            return Ok(vec![event("return_rejected", Some(&unit), "")]);
        }
        let a = self.unit_mut(&unit)?;
        a.state = AssignmentState::Returned;
        a.finished_at = Some(now);
        let lead = a.role == AssignmentRole::Lead;
        self.stop_unit_clocks(&unit, now);
        let mut events = vec![event("return_approved", Some(&unit), "")];
        if lead {
            // The order goes back to the hotline for a new dispatch; the
            // co-handlers' parts end with it.
            self.returned_by.push(unit.clone());
            let open: Vec<String> = self
                .assignments
                .iter()
                .filter(|a| a.state.is_open() || a.state == AssignmentState::Reported)
                .filter(|a| a.state != AssignmentState::Returned)
                .map(|a| a.unit.clone())
                .collect();
            for u in open {
                if let Some(a) = self
                    .assignments
                    .iter_mut()
                    .find(|a| a.unit == u && a.state != AssignmentState::Returned)
                {
                    a.state = AssignmentState::Done;
                    a.finished_at.get_or_insert(now);
                }
                self.stop_unit_clocks(&u, now);
            }
            self.status = OrderStatus::Accepted;
            self.start_clock(ClockKind::Dispatch, None, now, policy);
            if self.returned_by.len() >= ESCALATE_AFTER {
                events.push(self.escalate(format!(
                    "returned by {} units with no lead",
                    self.returned_by.len()
                )));
            }
        }
        Ok(events)
    }

    fn request_extension(
        &mut self,
        unit: String,
        working_days: u32,
        reason: String,
        basis: Option<String>,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Event>, Refusal> {
        self.expect_handling("extend")?;
        if reason.trim().is_empty() {
            return Err(invalid("reason", "say why more time is needed"));
        }
        if working_days == 0 {
            return Err(invalid("working_days", "ask for at least 1 working day"));
        }
        let a = self.unit_mut(&unit)?;
        if !matches!(
            a.state,
            AssignmentState::PendingSign | AssignmentState::Signed | AssignmentState::Contacted
        ) {
            return Err(conflict(format!("{unit} has finished handling")));
        }
        let clock = self
            .clock(ClockKind::Handle, Some(&unit))
            .filter(|c| c.is_open())
            .ok_or_else(|| conflict(format!("{unit} has no running handling deadline")))?;
        if now >= clock.due_at {
            return Err(conflict(
                "an extension must be asked before the deadline; it has passed",
            ));
        }
        if self
            .extensions
            .iter()
            .any(|x| x.unit == unit && x.state == RequestState::Pending)
        {
            return Err(conflict(format!("{unit} already has an extension pending")));
        }
        if self
            .extensions
            .iter()
            .any(|x| x.unit == unit && x.state == RequestState::Approved)
        {
            return Err(conflict(format!(
                "{unit} was granted an extension already; at most one per order"
            )));
        }
        let limit = match policy.limits.span(
            ClockKind::Handle,
            self.intake.appeal_type,
            self.intake.urgency,
            self.intake.life_at_risk,
        ) {
            Span::WorkingDays(d) => d,
            Span::Hours(h) => h.div_ceil(24),
        };
        if working_days > limit.max(1) {
            return Err(invalid(
                "working_days",
                format!("at most {} working days (the original limit)", limit.max(1)),
            ));
        }
        self.extensions.push(ExtensionRequest {
            unit: unit.clone(),
            working_days,
            reason,
            basis,
            requested_at: now,
            state: RequestState::Pending,
            decided_at: None,
            decided_by: None,
            note: None,
            due_before: None,
            due_after: None,
        });
        Ok(vec![event(
            "extension_requested",
            Some(&unit),
            format!("{working_days} working days"),
        )])
    }

    fn decide_extension(
        &mut self,
        who: &Principal,
        unit: String,
        approve: bool,
        note: Option<String>,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Event>, Refusal> {
        let Some(i) = self
            .extensions
            .iter()
            .rposition(|x| x.unit == unit && x.state == RequestState::Pending)
        else {
            return Err(conflict(format!("{unit} has no pending extension")));
        };
        let days = self.extensions[i].working_days;
        let mut moved = None;
        if approve {
            let clock = self
                .clocks
                .iter_mut()
                .rev()
                .find(|c| {
                    c.kind == ClockKind::Handle && c.unit.as_deref() == Some(&unit) && c.is_open()
                })
                .ok_or_else(|| conflict(format!("{unit} has no running handling deadline")))?;
            let before = clock.due_at;
            clock.due_at = policy.time.extend(before, days);
            // Warnings start over against the new deadline.
            clock.alerts_sent = 0;
            moved = Some((before, clock.due_at));
        }
        let x = &mut self.extensions[i];
        x.state = if approve {
            RequestState::Approved
        } else {
            RequestState::Rejected
        };
        x.decided_at = Some(now);
        x.decided_by = Some(who.name.clone());
        x.note = note;
        if let Some((before, after)) = moved {
            x.due_before = Some(before);
            x.due_after = Some(after);
        }
        Ok(vec![event(
            if approve {
                "extension_approved"
            } else {
                "extension_rejected"
            },
            Some(&unit),
            "",
        )])
    }

    fn reply(
        &mut self,
        who: &Principal,
        unit: String,
        text: String,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Event>, Refusal> {
        self.expect(
            &[OrderStatus::Dispatched, OrderStatus::Handling],
            "reply to",
        )?;
        if text.trim().is_empty() {
            return Err(invalid("text", "the reply is empty"));
        }
        let a = self.unit_mut(&unit)?;
        if a.role != AssignmentRole::Lead {
            return Err(conflict(format!(
                "{unit} is a co-handler; it reports to the lead, the lead replies"
            )));
        }
        match a.state {
            AssignmentState::Contacted => {}
            AssignmentState::PendingSign => {
                return Err(conflict(format!("{unit} must sign for the order first")));
            }
            AssignmentState::Signed => {
                return Err(conflict(format!(
                    "{unit} must contact the citizen before replying"
                )));
            }
            _ => return Err(conflict(format!("{unit} has already replied"))),
        }
        let waiting: Vec<&str> = self
            .assignments
            .iter()
            .filter(|a| a.role == AssignmentRole::CoHandler && a.state.is_open())
            .map(|a| a.unit.as_str())
            .collect();
        if !waiting.is_empty() {
            return Err(conflict(format!(
                "co-handlers have not reported yet: {}",
                waiting.join(", ")
            )));
        }
        let a = self.unit_mut(&unit)?;
        a.state = AssignmentState::Replied;
        a.finished_at = Some(now);
        self.stop_clock(ClockKind::Handle, Some(&unit), now);
        self.replies.push(Reply {
            unit: unit.clone(),
            by: who.name.clone(),
            at: now,
            text,
            report: false,
            review: None,
        });
        self.status = OrderStatus::Replied;
        self.start_clock(ClockKind::Review, None, now, policy);
        Ok(vec![event("replied", Some(&unit), "")])
    }

    fn review(
        &mut self,
        who: &Principal,
        accept: bool,
        note: Option<String>,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Event>, Refusal> {
        self.expect(&[OrderStatus::Replied], "review")?;
        if !accept && note.as_deref().is_none_or(|n| n.trim().is_empty()) {
            return Err(invalid(
                "note",
                "say what the reply lacks when sending it back",
            ));
        }
        let lead = self
            .lead()
            .map(|a| a.unit.clone())
            .ok_or_else(|| conflict("the order has no lead"))?;
        if let Some(reply) = self
            .replies
            .iter_mut()
            .rev()
            .find(|r| !r.report && r.unit == lead)
        {
            reply.review = Some(Review {
                accepted: accept,
                by: who.name.clone(),
                at: now,
                note: note.clone(),
            });
        }
        self.stop_clock(ClockKind::Review, None, now);
        if accept {
            for a in self.assignments.iter_mut() {
                if a.state != AssignmentState::Returned {
                    a.state = AssignmentState::Done;
                }
            }
            self.closing = Some(Closing::Replied);
            self.close(now, policy, true);
            return Ok(vec![event("closed", Some(&lead), "reply accepted")]);
        }
        // Sent back: the lead completes the reply within the same deadline.
        let a = self.unit_mut(&lead)?;
        a.state = AssignmentState::Contacted;
        a.finished_at = None;
        for c in self.clocks.iter_mut().rev() {
            if c.kind == ClockKind::Handle && c.unit.as_deref() == Some(&lead) {
                c.stopped_at = None;
                break;
            }
        }
        self.status = OrderStatus::Handling;
        Ok(vec![event(
            "reply_sent_back",
            Some(&lead),
            note.unwrap_or_default(),
        )])
    }

    #[allow(clippy::too_many_arguments)]
    fn follow_up(
        &mut self,
        who: &Principal,
        reached: bool,
        resolved: Option<bool>,
        satisfaction: Option<Satisfaction>,
        note: Option<String>,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Event>, Refusal> {
        self.expect(&[OrderStatus::Closed], "follow up")?;
        if reached && satisfaction.is_none() {
            return Err(invalid(
                "satisfaction",
                "a reached citizen's satisfaction is required",
            ));
        }
        if reached && resolved.is_none() {
            return Err(invalid("resolved", "say whether the appeal was resolved"));
        }
        self.follow_ups.push(FollowUp {
            at: now,
            by: who.name.clone(),
            reached,
            resolved,
            satisfaction,
            note,
        });
        if !reached {
            return Ok(vec![event("follow_up_unreached", None, "")]);
        }
        self.stop_clock(ClockKind::FollowUp, None, now);
        if satisfaction.is_some_and(Satisfaction::is_satisfied) {
            self.archive(now);
            return Ok(vec![event("archived", None, "satisfied")]);
        }
        // 重办: the unit verifies and fixes; clocks start over.
        self.rework_count += 1;
        self.closed_at = None;
        self.closing = None;
        let mut events = Vec::new();
        match self.lead().map(|a| a.unit.clone()) {
            Some(lead) => {
                let a = self.unit_mut(&lead)?;
                a.state = AssignmentState::Signed;
                a.finished_at = None;
                a.contacted_at = None;
                self.start_clock(ClockKind::Contact, Some(&lead), now, policy);
                self.start_clock(ClockKind::Handle, Some(&lead), now, policy);
                self.status = OrderStatus::Handling;
                events.push(event("rework", Some(&lead), ""));
            }
            None => {
                // Answered at intake: it goes to dispatch this time.
                self.status = OrderStatus::Accepted;
                self.start_clock(ClockKind::Dispatch, None, now, policy);
                events.push(event("rework", None, "to dispatch"));
            }
        }
        if self.rework_count as usize >= ESCALATE_AFTER {
            events.push(self.escalate(format!("reworked {} times", self.rework_count)));
        }
        Ok(events)
    }

    fn close(&mut self, now: i64, policy: &Policy, follow_up: bool) {
        self.status = OrderStatus::Closed;
        self.closed_at = Some(now);
        if follow_up {
            self.start_clock(ClockKind::FollowUp, None, now, policy);
        }
    }

    fn archive(&mut self, now: i64) {
        self.status = OrderStatus::Archived;
        self.archived_at = Some(now);
        for c in self.clocks.iter_mut() {
            if c.is_open() {
                c.stopped_at = Some(now);
            }
        }
    }

    fn escalate(&mut self, why: String) -> Event {
        self.escalated = Some(why.clone());
        event("escalated", None, why)
    }
}

fn same_plan(a: &Plan, b: &Plan) -> bool {
    let mut x = a.co_handlers.clone();
    let mut y = b.co_handlers.clone();
    x.sort();
    y.sort();
    a.lead == b.lead && x == y
}

fn alert_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Urge => "urged",
        AlertKind::Supervise => "supervised",
        AlertKind::Notice => "noticed",
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
