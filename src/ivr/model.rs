//! The flow format: what an operator writes in `ivr-flows/<name>.yaml`.
//!
//! One flow per file: a name, a start node, an optional operator node (where
//! 0 and every dead end lead), and a list of nodes, each with an `id` and a
//! `type`. The JSON Schema in `ivr-flows/flow.schema.json` is generated from
//! these types (`hotline flows schema`), so editors complete and check the
//! same fields the server reads.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A flow file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// The flow's name; must match its file name (`main` for `main.yaml`).
    pub name: String,
    /// What the flow is for.
    #[serde(default)]
    pub description: String,
    /// The first node.
    pub start: String,
    /// Where a caller goes on 0 in any menu, and when a menu runs out of
    /// retries: a queue or transfer node, so a menu never traps a caller.
    #[serde(default)]
    pub operator: Option<String>,
    /// The nodes, in any order.
    pub nodes: Vec<Node>,
}

/// One step of a flow.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct Node {
    /// Unique within the flow.
    pub id: String,
    #[serde(flatten)]
    pub kind: NodeKind,
}

/// The transition target that returns from a subflow to its caller's `next`.
pub const RETURN: &str = "@return";

fn yes() -> bool {
    true
}

/// The node types.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    Play(Play),
    Menu(Menu),
    Gather(Gather),
    Say(Say),
    Branch(Branch),
    Set(Set),
    Language(Language),
    Queue(Queue),
    Transfer(Transfer),
    CallbackRequest(CallbackRequest),
    Record(Record),
    LookupOrder(LookupOrder),
    Survey(Survey),
    Subflow(Subflow),
    Hangup(Hangup),
}

/// Play prompts, then go on.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Play {
    /// Prompt names, played in order (`prompts/<language>/<name>.wav`).
    pub prompts: Vec<String>,
    /// A keypress stops the prompts (and is then ignored).
    #[serde(default = "yes")]
    pub barge_in: bool,
    pub next: String,
}

/// How digits are collected (menus, gathers, order lookups).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Collect {
    pub min_digits: u8,
    pub max_digits: u8,
    /// Ends input early, e.g. `#`.
    pub terminator: Option<char>,
    /// Wait for the first digit after the prompts end (ms).
    pub timeout_ms: u32,
    /// Wait between digits (ms).
    pub inter_digit_ms: u32,
    /// Further attempts after a timeout or invalid input.
    pub retries: u8,
    /// Played on invalid input before the retry.
    pub invalid_prompts: Vec<String>,
    /// Played when nothing was pressed before the retry.
    pub timeout_prompts: Vec<String>,
}

impl Default for Collect {
    fn default() -> Self {
        Collect {
            min_digits: 1,
            max_digits: 1,
            terminator: None,
            timeout_ms: 5000,
            inter_digit_ms: 3000,
            retries: 2,
            invalid_prompts: vec!["invalid".into()],
            timeout_prompts: vec!["no_input".into()],
        }
    }
}

/// A menu: prompts, then a branch per key.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    pub prompts: Vec<String>,
    #[serde(default)]
    pub collect: Collect,
    /// Key (or key sequence) → node. `0` goes to the flow's operator unless
    /// given here.
    pub branches: BTreeMap<String, String>,
    /// Where to go when retries run out on no input (default: operator).
    #[serde(default)]
    pub on_timeout: Option<String>,
    /// Where to go when retries run out on invalid input (default: operator).
    #[serde(default)]
    pub on_invalid: Option<String>,
}

/// Collect digits into a variable.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gather {
    pub prompts: Vec<String>,
    #[serde(default)]
    pub collect: Collect,
    /// Variable that receives the digits.
    pub var: String,
    pub next: String,
    /// Where to go when retries run out (default: operator).
    #[serde(default)]
    pub on_fail: Option<String>,
}

/// What a `say` node reads out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SayKind {
    /// Digit by digit ("1 3 8 ...").
    Digits,
    /// A whole number ("one hundred and twenty").
    Number,
    /// A time of day, `HH:MM`.
    Time,
    /// A place in a queue ("you are number 3").
    QueuePosition,
}

/// Read out a value built from digit prompts.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Say {
    pub say: SayKind,
    /// A literal or `${var}`.
    pub value: String,
    pub next: String,
}

/// One condition of a branch.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Local time within [from, to), `HH:MM`; wraps past midnight when
    /// `to` < `from`.
    Time { from: String, to: String },
    /// Day of the week: `mon` … `sun`.
    Weekday(Vec<String>),
    /// Today is (true) or is not (false) a public holiday on the calendar.
    Holiday(bool),
    /// Today is (true) or is not (false) a working day on the calendar
    /// (weekends off, holidays off, make-up working days on).
    WorkingDay(bool),
    /// The caller's number matches a pattern: digits, `?` for one digit,
    /// `*` for any run.
    Caller(String),
    /// A call variable equals a value.
    Var { name: String, equals: String },
    /// The caller has an open order created within the last `days` days.
    RepeatCaller { days: u32 },
    /// The caller's number is on the reviewed block list (article 26).
    Blocked(bool),
}

/// A case of a branch.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub when: Condition,
    pub goto: String,
}

/// Go to the first case that holds, else `otherwise`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    pub cases: Vec<Case>,
    pub otherwise: String,
}

/// Set call variables (values may use `${var}`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Set {
    pub vars: BTreeMap<String, String>,
    pub next: String,
}

/// Switch the prompt set; missing prompts fall back to the default language.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// e.g. `cmn` (Mandarin) or `mn` (Mongolian).
    pub language: String,
    pub next: String,
}

/// Hand the caller to a queue of agents.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// A queue named in the config.
    pub queue: String,
    /// Skills an agent needs to take the call.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Higher is answered first (0-9).
    #[serde(default)]
    pub priority: u8,
    /// Played once on entry (e.g. "please hold").
    #[serde(default)]
    pub prompts: Vec<String>,
}

/// Hand the call to a trunk or number.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// A trunk named in the config (e.g. `110`) or a number.
    pub target: String,
    #[serde(default)]
    pub prompts: Vec<String>,
}

/// Keep the caller's number for a call back.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackRequest {
    /// Confirmation played to the caller.
    #[serde(default)]
    pub prompts: Vec<String>,
    pub next: String,
}

/// Record a voice message to WAV.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Played before the beep.
    pub prompts: Vec<String>,
    /// Longest message in seconds.
    #[serde(default = "default_record_secs")]
    pub max_secs: u32,
    /// A key ends the recording.
    #[serde(default = "yes")]
    pub stop_on_key: bool,
    pub next: String,
}

fn default_record_secs() -> u32 {
    60
}

/// The caller keys an order number and hears its status.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupOrder {
    /// Asks for the order number.
    pub prompts: Vec<String>,
    #[serde(default = "order_collect")]
    pub collect: Collect,
    pub next: String,
}

fn order_collect() -> Collect {
    Collect {
        min_digits: 4,
        max_digits: 20,
        terminator: Some('#'),
        ..Collect::default()
    }
}

/// Satisfaction rating stored on the call record.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    pub prompts: Vec<String>,
    /// Highest accepted rating (keys 1..=scale), 3 or 5.
    #[serde(default = "default_scale")]
    pub scale: u8,
    #[serde(default)]
    pub collect: Collect,
    /// Played after a rating.
    #[serde(default)]
    pub thanks_prompts: Vec<String>,
    pub next: String,
}

fn default_scale() -> u8 {
    5
}

/// Run another flow, then come back to `next`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subflow {
    pub flow: String,
    pub next: String,
}

/// End the call.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hangup {
    /// A goodbye first.
    #[serde(default)]
    pub prompts: Vec<String>,
}

impl NodeKind {
    /// The type name as written in YAML.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Play(_) => "play",
            NodeKind::Menu(_) => "menu",
            NodeKind::Gather(_) => "gather",
            NodeKind::Say(_) => "say",
            NodeKind::Branch(_) => "branch",
            NodeKind::Set(_) => "set",
            NodeKind::Language(_) => "language",
            NodeKind::Queue(_) => "queue",
            NodeKind::Transfer(_) => "transfer",
            NodeKind::CallbackRequest(_) => "callback_request",
            NodeKind::Record(_) => "record",
            NodeKind::LookupOrder(_) => "lookup_order",
            NodeKind::Survey(_) => "survey",
            NodeKind::Subflow(_) => "subflow",
            NodeKind::Hangup(_) => "hangup",
        }
    }

    /// Every transition out of this node to another node, as (field path
    /// under the node, target id). [`RETURN`] (back from a subflow) leads to
    /// no node and is left out; the operator, reached from menus implicitly,
    /// is the checker's business.
    pub fn transitions(&self) -> Vec<(String, &str)> {
        let mut out = self.all_transitions();
        out.retain(|(_, target)| *target != RETURN);
        out
    }

    fn all_transitions(&self) -> Vec<(String, &str)> {
        let mut out: Vec<(String, &str)> = Vec::new();
        match self {
            NodeKind::Play(n) => out.push(("next".into(), &n.next)),
            NodeKind::Menu(n) => {
                for (key, target) in &n.branches {
                    out.push((format!("branches.{key}"), target));
                }
                if let Some(t) = &n.on_timeout {
                    out.push(("on_timeout".into(), t));
                }
                if let Some(t) = &n.on_invalid {
                    out.push(("on_invalid".into(), t));
                }
            }
            NodeKind::Gather(n) => {
                out.push(("next".into(), &n.next));
                if let Some(t) = &n.on_fail {
                    out.push(("on_fail".into(), t));
                }
            }
            NodeKind::Say(n) => out.push(("next".into(), &n.next)),
            NodeKind::Branch(n) => {
                for (i, case) in n.cases.iter().enumerate() {
                    out.push((format!("cases[{i}].goto"), &case.goto));
                }
                out.push(("otherwise".into(), &n.otherwise));
            }
            NodeKind::Set(n) => out.push(("next".into(), &n.next)),
            NodeKind::Language(n) => out.push(("next".into(), &n.next)),
            NodeKind::CallbackRequest(n) => out.push(("next".into(), &n.next)),
            NodeKind::Record(n) => out.push(("next".into(), &n.next)),
            NodeKind::LookupOrder(n) => out.push(("next".into(), &n.next)),
            NodeKind::Survey(n) => out.push(("next".into(), &n.next)),
            NodeKind::Subflow(n) => out.push(("next".into(), &n.next)),
            NodeKind::Queue(_) | NodeKind::Transfer(_) | NodeKind::Hangup(_) => {}
        }
        out
    }

    /// Every prompt name the node may play, with its field path.
    pub fn prompts(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        fn push_all<'a>(out: &mut Vec<(String, &'a str)>, field: &str, list: &'a [String]) {
            for (i, p) in list.iter().enumerate() {
                out.push((format!("{field}[{i}]"), p.as_str()));
            }
        }
        match self {
            NodeKind::Play(n) => push_all(&mut out, "prompts", &n.prompts),
            NodeKind::Menu(n) => {
                push_all(&mut out, "prompts", &n.prompts);
                push_all(
                    &mut out,
                    "collect.invalid_prompts",
                    &n.collect.invalid_prompts,
                );
                push_all(
                    &mut out,
                    "collect.timeout_prompts",
                    &n.collect.timeout_prompts,
                );
            }
            NodeKind::Gather(n) => {
                push_all(&mut out, "prompts", &n.prompts);
                push_all(
                    &mut out,
                    "collect.invalid_prompts",
                    &n.collect.invalid_prompts,
                );
                push_all(
                    &mut out,
                    "collect.timeout_prompts",
                    &n.collect.timeout_prompts,
                );
            }
            NodeKind::LookupOrder(n) => {
                push_all(&mut out, "prompts", &n.prompts);
                push_all(
                    &mut out,
                    "collect.invalid_prompts",
                    &n.collect.invalid_prompts,
                );
                push_all(
                    &mut out,
                    "collect.timeout_prompts",
                    &n.collect.timeout_prompts,
                );
            }
            NodeKind::Survey(n) => {
                push_all(&mut out, "prompts", &n.prompts);
                push_all(&mut out, "thanks_prompts", &n.thanks_prompts);
                push_all(
                    &mut out,
                    "collect.invalid_prompts",
                    &n.collect.invalid_prompts,
                );
                push_all(
                    &mut out,
                    "collect.timeout_prompts",
                    &n.collect.timeout_prompts,
                );
            }
            NodeKind::Queue(n) => push_all(&mut out, "prompts", &n.prompts),
            NodeKind::Transfer(n) => push_all(&mut out, "prompts", &n.prompts),
            NodeKind::CallbackRequest(n) => push_all(&mut out, "prompts", &n.prompts),
            NodeKind::Record(n) => push_all(&mut out, "prompts", &n.prompts),
            NodeKind::Hangup(n) => push_all(&mut out, "prompts", &n.prompts),
            NodeKind::Say(_)
            | NodeKind::Branch(_)
            | NodeKind::Set(_)
            | NodeKind::Language(_)
            | NodeKind::Subflow(_) => {}
        }
        out
    }

    /// Whether the node waits for the caller (a key, a recording) or ends
    /// the flow; a cycle through none of these would spin forever.
    pub fn waits_for_input(&self) -> bool {
        matches!(
            self,
            NodeKind::Menu(_)
                | NodeKind::Gather(_)
                | NodeKind::Record(_)
                | NodeKind::LookupOrder(_)
                | NodeKind::Survey(_)
        )
    }

    /// Whether the node hands the caller to a person.
    pub fn reaches_person(&self) -> bool {
        matches!(self, NodeKind::Queue(_) | NodeKind::Transfer(_))
    }
}

impl Flow {
    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The JSON Schema of the format.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(Flow);
        serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
name: sample
start: hello
operator: person
nodes:
  - id: hello
    type: play
    prompts: [welcome]
    next: menu
  - id: menu
    type: menu
    prompts: [main_menu]
    branches: {"1": bye}
  - id: person
    type: queue
    queue: general
    priority: 5
  - id: bye
    type: hangup
"#;

    #[test]
    fn parses_and_lists_transitions() {
        let flow: Flow = serde_yaml_ng::from_str(SAMPLE).unwrap();
        assert_eq!(flow.nodes.len(), 4);
        let menu = flow.node("menu").unwrap();
        assert_eq!(
            menu.kind.transitions(),
            vec![("branches.1".to_string(), "bye")]
        );
        let NodeKind::Menu(m) = &menu.kind else {
            panic!()
        };
        assert_eq!(m.collect.max_digits, 1);
        assert_eq!(m.collect.timeout_prompts, vec!["no_input".to_string()]);
        assert!(flow.node("person").unwrap().kind.reaches_person());
    }

    #[test]
    fn unknown_fields_and_types_are_refused() {
        let typo = SAMPLE.replace("prompts: [welcome]", "promts: [welcome]");
        let err = serde_yaml_ng::from_str::<Flow>(&typo)
            .unwrap_err()
            .to_string();
        assert!(err.contains("promts"), "{err}");
        let bad_type = SAMPLE.replace("type: hangup", "type: explode");
        let err = serde_yaml_ng::from_str::<Flow>(&bad_type)
            .unwrap_err()
            .to_string();
        assert!(err.contains("explode"), "{err}");
    }

    #[test]
    fn schema_names_every_node_type() {
        let schema = Flow::json_schema();
        for t in [
            "play",
            "menu",
            "gather",
            "say",
            "branch",
            "set",
            "language",
            "queue",
            "transfer",
            "callback_request",
            "record",
            "lookup_order",
            "survey",
            "subflow",
            "hangup",
        ] {
            assert!(
                schema.contains(&format!("\"{t}\"")),
                "{t} missing from schema"
            );
        }
    }
}
