//! The flow interpreter: a sans-IO state machine that runs one call through
//! a flow.
//!
//! Events go in ([`Interpreter::handle`]: a digit, a prompt list finished, a
//! lookup answered, a recording ended) with the time passed as a value;
//! actions come out ([`Interpreter::poll_action`]: play, stop, look up,
//! record, queue, transfer, hang up). [`Interpreter::poll_timeout`] says when
//! [`Interpreter::handle_timeout`] is due. Nothing here touches a socket, a
//! file or the clock, so the call actor and the simulator drive the very same
//! engine, and tests can run a flow to the millisecond.

use super::clock;
use super::model::{Collect, Condition, Flow, Node, NodeKind};
use super::say;
use crate::calendar::Calendar;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

pub use super::model::RETURN;

/// Where the interpreter finds flows by name (for `subflow`).
pub trait FlowSource: Send + Sync {
    fn flow(&self, name: &str) -> Option<Arc<Flow>>;
}

impl FlowSource for HashMap<String, Arc<Flow>> {
    fn flow(&self, name: &str) -> Option<Arc<Flow>> {
        self.get(name).cloned()
    }
}

/// What the call brings: who calls, when, and the calendar.
#[derive(Debug, Clone)]
pub struct CallFacts {
    pub caller: String,
    /// Local wall-clock time when the call started.
    pub wall_start: OffsetDateTime,
    pub calendar: Arc<Calendar>,
    pub default_language: String,
}

/// A prompt to play: its name in a language (the player falls back to the
/// default language when that set lacks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRef {
    pub language: String,
    pub name: String,
}

/// Questions the interpreter cannot answer itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// The status code of an order (`accepted`, `handling`, ...), or none.
    OrderStatus { order_no: String },
    /// Whether the caller has an open order created in the last `days` days.
    OpenOrder { caller: String, days: u32 },
    /// Whether the caller's number is blocked.
    Blocked { caller: String },
}

/// Answers to [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    OrderStatus(Option<String>),
    OpenOrder(bool),
    Blocked(bool),
}

/// Inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Digit(char),
    /// The prompts of the last `Play` finished (or were stopped).
    PlaybackDone,
    Answer(Answer),
    /// The recording ended (time limit, key, or stop).
    RecordingDone,
}

/// Outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Play {
        prompts: Vec<PromptRef>,
        barge_in: bool,
    },
    StopPlayback,
    Ask(Query),
    Record {
        max_secs: u32,
    },
    StopRecording,
    /// The caller waits for an agent, hearing `prompts` first.
    Queue {
        queue: String,
        skills: Vec<String>,
        priority: u8,
        prompts: Vec<PromptRef>,
    },
    /// The call goes to a trunk or number, after `prompts`.
    Transfer {
        target: String,
        prompts: Vec<PromptRef>,
    },
    /// A survey rating to store on the call record.
    SurveyScore(u8),
    /// Keep the caller's number for a call back.
    CallbackRequested,
    Hangup,
}

/// What happened at a node, for per-node counts and the call's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    Entered {
        flow: String,
        node: String,
    },
    Left {
        flow: String,
        node: String,
        via: String,
    },
}

/// How a flow run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Queue { queue: String, priority: u8 },
    Transfer { target: String },
    Hangup,
}

/// Steps without waiting for the caller after which a flow is stopped (the
/// checker rejects such loops; this guards the running call regardless).
const MAX_STEPS_WITHOUT_INPUT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Prompts playing; a digit barges in.
    Prompting,
    /// Prompts over; waiting for (more) digits until the deadline.
    Waiting,
    /// Playing the timeout or invalid prompt before prompting again.
    Reprompting,
}

#[derive(Debug)]
enum Wait {
    Nothing,
    /// A play node's prompts; then go on by `via`.
    Play {
        barge_in: bool,
        then: Then,
    },
    Collect {
        buf: String,
        attempts: u8,
        phase: Phase,
        deadline: Option<Instant>,
    },
    Answer,
    Recording {
        stopping: bool,
    },
    Done,
}

#[derive(Debug, Clone)]
enum Then {
    Goto { via: String, target: String },
    Finish(Outcome),
}

#[derive(Debug, Clone)]
struct Frame {
    flow: Arc<Flow>,
    /// Where to continue in the parent flow when this one returns.
    return_to: Option<String>,
}

/// A node of a shared flow.
struct NodeRef(Arc<Flow>, usize);

impl std::ops::Deref for NodeRef {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.0.nodes[self.1]
    }
}

/// One call's run through its flows.
pub struct Interpreter {
    flows: Arc<dyn FlowSource>,
    facts: CallFacts,
    started: Instant,
    stack: Vec<Frame>,
    node: usize,
    wait: Wait,
    vars: HashMap<String, String>,
    language: String,
    /// Answers already known (blocked, open order) so a branch asks once.
    answers: HashMap<String, bool>,
    /// Branch case being evaluated while a query is out.
    pending_case: usize,
    steps: u32,
    actions: VecDeque<Action>,
    traces: VecDeque<Trace>,
    outcome: Option<Outcome>,
    path: Vec<String>,
    /// The node to enter next: transitions go through this one slot and a
    /// loop in [`Interpreter::run`], so a long chain of nodes never deepens
    /// the stack.
    jump: Option<String>,
}

impl Interpreter {
    /// Starts `flow` at its start node.
    pub fn start(
        flows: Arc<dyn FlowSource>,
        flow: &str,
        facts: CallFacts,
        now: Instant,
    ) -> Option<Interpreter> {
        let flow = flows.flow(flow)?;
        let language = facts.default_language.clone();
        let mut it = Interpreter {
            flows,
            facts,
            started: now,
            stack: vec![Frame {
                flow: flow.clone(),
                return_to: None,
            }],
            node: 0,
            wait: Wait::Nothing,
            vars: HashMap::new(),
            language,
            answers: HashMap::new(),
            pending_case: 0,
            steps: 0,
            actions: VecDeque::new(),
            traces: VecDeque::new(),
            outcome: None,
            path: Vec::new(),
            jump: Some(flow.start.clone()),
        };
        it.run(now);
        Some(it)
    }

    /// The next action to carry out.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next trace record.
    pub fn poll_trace(&mut self) -> Option<Trace> {
        self.traces.pop_front()
    }

    /// When [`Interpreter::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.wait {
            Wait::Collect { deadline, .. } => *deadline,
            _ => None,
        }
    }

    /// How the run ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// `flow:node` ids entered so far, in order.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// The current flow and node, while running.
    pub fn position(&self) -> Option<(&str, &str)> {
        if self.outcome.is_some() {
            return None;
        }
        let frame = self.stack.last()?;
        Some((&frame.flow.name, &frame.flow.nodes.get(self.node)?.id))
    }

    /// Call variables.
    pub fn vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    /// The prompt language in use.
    pub fn language(&self) -> &str {
        &self.language
    }

    fn flow(&self) -> &Arc<Flow> {
        &self.stack.last().expect("a flow is always running").flow
    }

    /// The node being run: a handle on the shared flow, not a copy.
    fn current(&self) -> NodeRef {
        NodeRef(self.flow().clone(), self.node)
    }

    fn prompts(&self, names: &[String]) -> Vec<PromptRef> {
        names
            .iter()
            .map(|name| PromptRef {
                language: self.language.clone(),
                name: name.clone(),
            })
            .collect()
    }

    fn play(&mut self, names: &[String], barge_in: bool) {
        let prompts = self.prompts(names);
        self.actions.push_back(Action::Play { prompts, barge_in });
    }

    fn wall_now(&self, now: Instant) -> OffsetDateTime {
        self.facts.wall_start + now.saturating_duration_since(self.started)
    }

    fn expand(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            match rest[start..].find('}') {
                Some(end) => {
                    let name = &rest[start + 2..start + end];
                    out.push_str(self.vars.get(name).map_or("", String::as_str));
                    rest = &rest[start + end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn finish(&mut self, outcome: Outcome) {
        // Queueing and transfer happen at once: their prompts are heard while
        // the call already waits (an agent may answer during them).
        let (skills, prompts) = match &self.current().kind {
            NodeKind::Queue(q) => (q.skills.clone(), self.prompts(&q.prompts)),
            NodeKind::Transfer(t) => (vec![], self.prompts(&t.prompts)),
            _ => (vec![], vec![]),
        };
        self.actions.push_back(match &outcome {
            Outcome::Queue { queue, priority } => Action::Queue {
                queue: queue.clone(),
                skills,
                priority: *priority,
                prompts,
            },
            Outcome::Transfer { target } => Action::Transfer {
                target: target.clone(),
                prompts,
            },
            Outcome::Hangup => Action::Hangup,
        });
        self.outcome = Some(outcome);
        self.wait = Wait::Done;
    }

    /// Leaves the current node by `via` and enters `target`.
    fn leave(&mut self, via: &str, target: &str, now: Instant) {
        let (flow, node) = {
            let f = self.flow();
            (f.name.clone(), f.nodes[self.node].id.clone())
        };
        self.traces.push_back(Trace::Left {
            flow,
            node,
            via: via.to_owned(),
        });
        let _ = now;
        self.jump = Some(target.to_owned());
    }

    /// Follows transitions until the flow waits for something.
    fn run(&mut self, now: Instant) {
        while let Some(target) = self.jump.take() {
            if self.outcome.is_some() {
                break;
            }
            self.goto(&target, now);
        }
    }

    fn goto(&mut self, target: &str, now: Instant) {
        self.steps += 1;
        if self.steps > MAX_STEPS_WITHOUT_INPUT {
            // A loop that waits for nothing; end the call rather than spin.
            self.finish(Outcome::Hangup);
            return;
        }
        if target == RETURN {
            if self.stack.len() > 1 {
                let frame = self.stack.pop().expect("checked");
                let parent = self.flow().clone();
                if let Some(i) = frame
                    .return_to
                    .and_then(|ret| parent.nodes.iter().position(|n| n.id == ret))
                {
                    self.node = i;
                    self.enter(now);
                    return;
                }
            }
            self.finish(Outcome::Hangup);
            return;
        }
        match self.flow().nodes.iter().position(|n| n.id == target) {
            Some(i) => {
                self.node = i;
                self.enter(now);
            }
            // The checker rules this out; a running call hangs up cleanly.
            None => self.finish(Outcome::Hangup),
        }
    }

    fn enter(&mut self, now: Instant) {
        let node = self.current();
        let flow_name = self.flow().name.clone();
        self.path.push(format!("{flow_name}:{}", node.id));
        self.traces.push_back(Trace::Entered {
            flow: flow_name,
            node: node.id.clone(),
        });
        match &node.kind {
            NodeKind::Play(p) => {
                self.play(&p.prompts, p.barge_in);
                self.wait = Wait::Play {
                    barge_in: p.barge_in,
                    then: Then::Goto {
                        via: "next".into(),
                        target: p.next.clone(),
                    },
                };
            }
            NodeKind::Menu(m) => self.start_collect(&m.prompts),
            NodeKind::Gather(g) => self.start_collect(&g.prompts),
            NodeKind::LookupOrder(l) => self.start_collect(&l.prompts),
            NodeKind::Survey(s) => self.start_collect(&s.prompts),
            NodeKind::Say(s) => {
                let value = self.expand(&s.value);
                match say::prompts(s.say, &value) {
                    Some(names) => {
                        self.play(&names, true);
                        self.wait = Wait::Play {
                            barge_in: true,
                            then: Then::Goto {
                                via: "next".into(),
                                target: s.next.clone(),
                            },
                        };
                    }
                    // Nothing sensible to say: skip it.
                    None => self.leave("next", &s.next, now),
                }
            }
            NodeKind::Branch(_) => {
                self.pending_case = 0;
                self.evaluate_branch(now);
            }
            NodeKind::Set(s) => {
                for (k, v) in &s.vars {
                    let v = self.expand(v);
                    self.vars.insert(k.clone(), v);
                }
                self.leave("next", &s.next, now);
            }
            NodeKind::Language(l) => {
                self.language = l.language.clone();
                self.leave("next", &l.next, now);
            }
            NodeKind::Queue(q) => self.finish(Outcome::Queue {
                queue: q.queue.clone(),
                priority: q.priority,
            }),
            NodeKind::Transfer(t) => self.finish(Outcome::Transfer {
                target: t.target.clone(),
            }),
            NodeKind::Hangup(h) => self.play_then_finish(&h.prompts, Outcome::Hangup, now),
            NodeKind::CallbackRequest(c) => {
                self.actions.push_back(Action::CallbackRequested);
                if c.prompts.is_empty() {
                    self.leave("next", &c.next, now);
                } else {
                    self.play(&c.prompts, true);
                    self.wait = Wait::Play {
                        barge_in: true,
                        then: Then::Goto {
                            via: "next".into(),
                            target: c.next.clone(),
                        },
                    };
                }
            }
            NodeKind::Record(r) => {
                let mut names = r.prompts.clone();
                names.push("beep".into());
                self.play(&names, false);
                self.wait = Wait::Play {
                    barge_in: false,
                    then: Then::Goto {
                        via: "@record".into(),
                        target: String::new(),
                    },
                };
            }
            NodeKind::Subflow(s) => match self.flows.flow(&s.flow) {
                Some(sub) => {
                    let start = sub.start.clone();
                    self.stack.push(Frame {
                        flow: sub,
                        return_to: Some(s.next.clone()),
                    });
                    self.jump = Some(start);
                }
                None => self.finish(Outcome::Hangup),
            },
        }
    }

    fn play_then_finish(&mut self, prompts: &[String], outcome: Outcome, _now: Instant) {
        if prompts.is_empty() {
            self.finish(outcome);
        } else {
            self.play(prompts, false);
            self.wait = Wait::Play {
                barge_in: false,
                then: Then::Finish(outcome),
            };
        }
    }

    fn collect_spec(&self) -> Collect {
        match &self.current().kind {
            NodeKind::Menu(m) => m.collect.clone(),
            NodeKind::Gather(g) => g.collect.clone(),
            NodeKind::LookupOrder(l) => l.collect.clone(),
            NodeKind::Survey(s) => s.collect.clone(),
            _ => Collect::default(),
        }
    }

    fn start_collect(&mut self, prompts: &[String]) {
        self.play(prompts, true);
        self.wait = Wait::Collect {
            buf: String::new(),
            attempts: 0,
            phase: Phase::Prompting,
            deadline: None,
        };
    }

    fn node_prompts(&self) -> Vec<String> {
        match &self.current().kind {
            NodeKind::Menu(m) => m.prompts.clone(),
            NodeKind::Gather(g) => g.prompts.clone(),
            NodeKind::LookupOrder(l) => l.prompts.clone(),
            NodeKind::Survey(s) => s.prompts.clone(),
            _ => vec![],
        }
    }

    /// Feeds one event.
    pub fn handle(&mut self, event: Event, now: Instant) {
        self.steps = 0;
        match event {
            Event::Digit(d) => self.on_digit(d, now),
            Event::PlaybackDone => self.on_playback_done(now),
            Event::Answer(a) => self.on_answer(a, now),
            Event::RecordingDone => {
                if let Wait::Recording { .. } = self.wait {
                    self.after_record(now);
                }
            }
        }
        self.run(now);
    }

    fn after_record(&mut self, now: Instant) {
        if let NodeKind::Record(r) = &self.current().kind {
            self.wait = Wait::Nothing;
            self.leave("next", &r.next, now);
        }
    }

    fn on_playback_done(&mut self, now: Instant) {
        match std::mem::replace(&mut self.wait, Wait::Nothing) {
            Wait::Play { then, .. } => self.then(then, now),
            Wait::Collect {
                buf,
                attempts,
                phase: Phase::Prompting,
                ..
            } => {
                let spec = self.collect_spec();
                self.wait = Wait::Collect {
                    buf,
                    attempts,
                    phase: Phase::Waiting,
                    deadline: Some(now + Duration::from_millis(spec.timeout_ms.into())),
                };
            }
            Wait::Collect {
                attempts,
                phase: Phase::Reprompting,
                ..
            } => {
                let prompts = self.node_prompts();
                self.play(&prompts, true);
                self.wait = Wait::Collect {
                    buf: String::new(),
                    attempts,
                    phase: Phase::Prompting,
                    deadline: None,
                };
            }
            other => self.wait = other,
        }
    }

    fn then(&mut self, then: Then, now: Instant) {
        match then {
            Then::Goto { via, target } if via == "@record" && target.is_empty() => {
                if let NodeKind::Record(r) = &self.current().kind {
                    self.actions.push_back(Action::Record {
                        max_secs: r.max_secs,
                    });
                    self.wait = Wait::Recording { stopping: false };
                }
            }
            Then::Goto { via, target } => self.leave(&via, &target, now),
            Then::Finish(outcome) => self.finish(outcome),
        }
    }

    fn on_digit(&mut self, d: char, now: Instant) {
        let stop_on_key = matches!(&self.current().kind, NodeKind::Record(r) if r.stop_on_key);
        match &mut self.wait {
            Wait::Play { barge_in: true, .. } => {
                self.actions.push_back(Action::StopPlayback);
                if let Wait::Play { then, .. } = std::mem::replace(&mut self.wait, Wait::Nothing) {
                    self.then(then, now);
                }
            }
            Wait::Collect { phase, .. } if *phase == Phase::Reprompting => {
                // A key during the "invalid"/"no input" notice starts over.
                self.actions.push_back(Action::StopPlayback);
                self.collect_digit(d, now);
            }
            Wait::Collect { phase, .. } => {
                if *phase == Phase::Prompting {
                    self.actions.push_back(Action::StopPlayback);
                }
                self.collect_digit(d, now);
            }
            Wait::Recording { stopping } if !*stopping && stop_on_key => {
                *stopping = true;
                self.actions.push_back(Action::StopRecording);
            }
            _ => {}
        }
    }

    fn collect_digit(&mut self, d: char, now: Instant) {
        let spec = self.collect_spec();
        let Wait::Collect { buf, phase, .. } = &mut self.wait else {
            return;
        };
        if *phase == Phase::Reprompting {
            buf.clear();
        }
        *phase = Phase::Waiting;
        if Some(d) == spec.terminator {
            let input = std::mem::take(buf);
            return self.complete(input, now);
        }
        buf.push(d);
        let input = buf.clone();
        if input.len() >= usize::from(spec.max_digits.max(1)) || self.menu_is_decided(&input) {
            if let Wait::Collect { buf, .. } = &mut self.wait {
                buf.clear();
            }
            return self.complete(input, now);
        }
        if let Wait::Collect { deadline, .. } = &mut self.wait {
            *deadline = Some(now + Duration::from_millis(spec.inter_digit_ms.into()));
        }
    }

    /// In a menu, input that names a branch and is no prefix of a longer one
    /// needs no more digits.
    fn menu_is_decided(&self, buf: &str) -> bool {
        match &self.current().kind {
            NodeKind::Menu(m) => {
                let is_key =
                    m.branches.contains_key(buf) || (buf == "0" && self.flow().operator.is_some());
                is_key
                    && !m
                        .branches
                        .keys()
                        .any(|k| k.len() > buf.len() && k.starts_with(buf))
            }
            _ => false,
        }
    }

    /// Handles a digit timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.steps = 0;
        let Wait::Collect {
            buf,
            phase: Phase::Waiting,
            deadline: Some(deadline),
            ..
        } = &mut self.wait
        else {
            return;
        };
        if now < *deadline {
            return;
        }
        if buf.is_empty() {
            self.retry(false, now);
        } else {
            let input = std::mem::take(buf);
            self.complete(input, now);
        }
        self.run(now);
    }

    /// Input is complete: act on it.
    fn complete(&mut self, input: String, now: Instant) {
        let spec = self.collect_spec();
        if input.len() < usize::from(spec.min_digits) {
            return self.retry(true, now);
        }
        match &self.current().kind {
            NodeKind::Menu(m) => {
                if let Some(target) = m.branches.get(&input) {
                    self.wait = Wait::Nothing;
                    return self.leave(&input, target, now);
                }
                if let Some(op) = self.flow().operator.clone().filter(|_| input == "0") {
                    self.wait = Wait::Nothing;
                    return self.leave("0", &op, now);
                }
                self.retry(true, now)
            }
            NodeKind::Gather(g) => {
                self.vars.insert(g.var.clone(), input);
                self.wait = Wait::Nothing;
                self.leave("next", &g.next, now);
            }
            NodeKind::LookupOrder(_) => {
                self.vars.insert("order_no".into(), input.clone());
                self.wait = Wait::Answer;
                self.actions
                    .push_back(Action::Ask(Query::OrderStatus { order_no: input }));
            }
            NodeKind::Survey(s) => match input.parse::<u8>() {
                Ok(n) if (1..=s.scale).contains(&n) => {
                    self.vars.insert("survey".into(), n.to_string());
                    self.actions.push_back(Action::SurveyScore(n));
                    let then = Then::Goto {
                        via: n.to_string(),
                        target: s.next.clone(),
                    };
                    if s.thanks_prompts.is_empty() {
                        self.wait = Wait::Nothing;
                        self.then(then, now);
                    } else {
                        self.play(&s.thanks_prompts, false);
                        self.wait = Wait::Play {
                            barge_in: false,
                            then,
                        };
                    }
                }
                _ => self.retry(true, now),
            },
            _ => {}
        }
    }

    /// No input (`invalid` false) or bad input: notice and prompt again, or
    /// give up along the node's fallback path.
    fn retry(&mut self, invalid: bool, now: Instant) {
        let spec = self.collect_spec();
        let attempts = match &self.wait {
            Wait::Collect { attempts, .. } => *attempts + 1,
            _ => 1,
        };
        if attempts > spec.retries {
            self.wait = Wait::Nothing;
            return self.give_up(invalid, now);
        }
        let notice = if invalid {
            spec.invalid_prompts
        } else {
            spec.timeout_prompts
        };
        if notice.is_empty() {
            let prompts = self.node_prompts();
            self.play(&prompts, true);
            self.wait = Wait::Collect {
                buf: String::new(),
                attempts,
                phase: Phase::Prompting,
                deadline: None,
            };
        } else {
            self.play(&notice, true);
            self.wait = Wait::Collect {
                buf: String::new(),
                attempts,
                phase: Phase::Reprompting,
                deadline: None,
            };
        }
    }

    fn give_up(&mut self, invalid: bool, now: Instant) {
        let operator = self.flow().operator.clone();
        let via = if invalid { "invalid" } else { "timeout" };
        let target = match &self.current().kind {
            NodeKind::Menu(m) => if invalid {
                &m.on_invalid
            } else {
                &m.on_timeout
            }
            .clone()
            .or(operator),
            NodeKind::Gather(g) => g.on_fail.clone().or(operator),
            NodeKind::LookupOrder(l) => Some(l.next.clone()),
            NodeKind::Survey(s) => Some(s.next.clone()),
            _ => operator,
        };
        match target {
            Some(t) => self.leave(via, &t, now),
            None => self.finish(Outcome::Hangup),
        }
    }

    fn on_answer(&mut self, answer: Answer, now: Instant) {
        if !matches!(self.wait, Wait::Answer) {
            return;
        }
        self.wait = Wait::Nothing;
        match answer {
            Answer::OrderStatus(status) => {
                let node = self.current();
                let NodeKind::LookupOrder(l) = &node.kind else {
                    return;
                };
                let names = match status {
                    Some(code) => {
                        self.vars.insert("order_status".into(), code.clone());
                        vec![
                            "order_status_intro".to_string(),
                            format!("order_status_{code}"),
                        ]
                    }
                    None => vec!["order_not_found".to_string()],
                };
                self.play(&names, true);
                self.wait = Wait::Play {
                    barge_in: true,
                    then: Then::Goto {
                        via: "next".into(),
                        target: l.next.clone(),
                    },
                };
            }
            Answer::OpenOrder(yes) => {
                self.answers.insert("open_order".into(), yes);
                self.evaluate_branch(now);
            }
            Answer::Blocked(yes) => {
                self.answers.insert("blocked".into(), yes);
                self.evaluate_branch(now);
            }
        }
    }

    fn evaluate_branch(&mut self, now: Instant) {
        let node = self.current();
        let NodeKind::Branch(b) = &node.kind else {
            return;
        };
        while self.pending_case < b.cases.len() {
            let case = &b.cases[self.pending_case];
            match self.condition(&case.when, now) {
                Some(true) => {
                    let via = format!("case{}", self.pending_case + 1);
                    return self.leave(&via, &case.goto.clone(), now);
                }
                Some(false) => self.pending_case += 1,
                // A query went out; continue on its answer.
                None => return,
            }
        }
        self.leave("otherwise", &b.otherwise, now);
    }

    /// `None` when the answer must be asked for first.
    fn condition(&mut self, c: &Condition, now: Instant) -> Option<bool> {
        let wall = self.wall_now(now);
        Some(match c {
            Condition::Time { from, to } => {
                let (Some(from), Some(to)) = (clock::parse_hhmm(from), clock::parse_hhmm(to))
                else {
                    return Some(false);
                };
                clock::within(clock::minute_of_day(wall), from, to)
            }
            Condition::Weekday(days) => {
                let today = clock::weekday_name(wall);
                days.iter().any(|d| d.eq_ignore_ascii_case(today))
            }
            Condition::Holiday(want) => self.facts.calendar.is_holiday(wall.date()) == *want,
            Condition::WorkingDay(want) => self.facts.calendar.is_working_day(wall.date()) == *want,
            Condition::Caller(pattern) => matches_pattern(pattern, &self.facts.caller),
            Condition::Var { name, equals } => self.vars.get(name).is_some_and(|v| v == equals),
            Condition::RepeatCaller { days } => {
                let key = "open_order".to_string();
                match self.answers.get(&key) {
                    Some(v) => *v,
                    None => {
                        self.wait = Wait::Answer;
                        self.actions.push_back(Action::Ask(Query::OpenOrder {
                            caller: self.facts.caller.clone(),
                            days: *days,
                        }));
                        return None;
                    }
                }
            }
            Condition::Blocked(want) => match self.answers.get("blocked") {
                Some(v) => *v == *want,
                None => {
                    self.wait = Wait::Answer;
                    self.actions.push_back(Action::Ask(Query::Blocked {
                        caller: self.facts.caller.clone(),
                    }));
                    return None;
                }
            },
        })
    }
}

/// Digits with `?` for any one character and `*` for any run.
pub fn matches_pattern(pattern: &str, number: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), number.as_bytes())
}
