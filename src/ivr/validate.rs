//! The flow checks behind `hotline flows check`, server start and every
//! reload.
//!
//! Pure functions over one parsed [`Flow`], the positions of its YAML
//! elements ([`Spans`]) and what the rest of the system offers ([`Known`]:
//! queues, trunks, the other flows, the prompt files). Each finding is a
//! [`Diagnostic`] at the key or value at fault, so an operator can jump to
//! it. Reading files is [`super::load`]'s job; nothing here touches the disk.

use super::load::{CheckContext, Diagnostic};
use super::model::{Collect, Condition, Flow, NodeKind};
use marked_yaml::Node as Yaml;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

/// A 1-based (line, column).
pub type Pos = (usize, usize);

/// Prompts a `say` node builds its words from (see [`super::say`]).
pub const SAY_PROMPTS: &[&str] = &[
    "digit_0",
    "digit_1",
    "digit_2",
    "digit_3",
    "digit_4",
    "digit_5",
    "digit_6",
    "digit_7",
    "digit_8",
    "digit_9",
    "ten",
    "hundred",
    "thousand",
    "ten_thousand",
    "hour",
    "minute",
    "queue_position_before",
    "queue_position_after",
];

/// What only a waiting caller hears: the offer to be called back, its
/// confirmation, and the message at the queue's longest wait.
pub const QUEUE_EXTRA_PROMPTS: &[&str] = &[
    "callback_offer",
    "callback_confirm",
    "queue_timeout",
    // An agent's transfer rings, or fails and brings the caller back.
    "transfer_wait",
    "transfer_failed",
];

/// Everything a queue plays besides the node's own prompts: "N callers
/// ahead" (the say prompts without the clock words) and the extras.
pub fn queue_prompts() -> impl Iterator<Item = &'static str> {
    SAY_PROMPTS
        .iter()
        .copied()
        .filter(|p| !matches!(*p, "hour" | "minute"))
        .chain(QUEUE_EXTRA_PROMPTS.iter().copied())
}

/// Prompts the interpreter plays on its own for a node type, beyond those
/// named in the node.
fn implicit_prompts(kind: &NodeKind) -> Vec<&'static str> {
    match kind {
        NodeKind::Say(_) => SAY_PROMPTS.to_vec(),
        NodeKind::Queue(_) => queue_prompts().collect(),
        // While the target rings, and if it fails (the caller then waits
        // in a queue).
        NodeKind::Transfer(_) => vec!["transfer_wait", "transfer_failed"],
        // The tone before a voice message.
        NodeKind::Record(_) => vec!["beep"],
        // Status codes vary; intro and not-found are always needed.
        NodeKind::LookupOrder(_) => vec!["order_status_intro", "order_not_found"],
        _ => vec![],
    }
}

/// Where each element of a flow file was written, by path: `start`,
/// `nodes[3]` (the node's mapping), `nodes[3].next`, `nodes[3].branches.1`,
/// `nodes[3].cases[0].goto`, ...
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spans {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Spans {
    /// Records every key and value of a marked YAML tree.
    pub fn from_yaml(root: &Yaml) -> Spans {
        let mut spans = Spans::default();
        spans.walk(root, String::new());
        spans
    }

    fn walk(&mut self, node: &Yaml, path: String) -> Pos {
        let pos = match node {
            Yaml::Scalar(s) => start(s.span()),
            Yaml::Mapping(m) => {
                let mut first = None;
                for (key, value) in m.iter() {
                    let child = if path.is_empty() {
                        key.as_str().to_string()
                    } else {
                        format!("{path}.{}", key.as_str())
                    };
                    let at = start(key.span());
                    first.get_or_insert(at);
                    self.keys.insert(child.clone(), at);
                    self.walk(value, child);
                }
                // A block mapping's span starts after its first key; the
                // first key is where a reader sees it begin.
                first.map_or(start(m.span()), |f| f.min(start(m.span())))
            }
            Yaml::Sequence(s) => {
                let mut first = None;
                for (i, item) in s.iter().enumerate() {
                    let at = self.walk(item, format!("{path}[{i}]"));
                    first.get_or_insert(at);
                }
                first.map_or(start(s.span()), |f| f.min(start(s.span())))
            }
        };
        self.values.insert(path, pos);
        pos
    }

    /// Where the value at `path` was written.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.values.get(path).copied()
    }

    /// Where the key of `path` was written (`nodes[3].next` → `next:`).
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.keys.get(path).copied()
    }

    /// The value at `path`, else its nearest written ancestor (a default
    /// value has no position of its own), else 1:1. The flag says whether
    /// `path` itself was written.
    pub fn locate(&self, path: &str) -> (Pos, bool) {
        if let Some(pos) = self.value(path) {
            return (pos, true);
        }
        let mut path = path;
        while let Some(parent) = parent_path(path) {
            if let Some(pos) = self.value(parent) {
                return (pos, false);
            }
            path = parent;
        }
        (self.value("").unwrap_or((1, 1)), false)
    }
}

/// Where a marked YAML element starts.
pub(crate) fn start(span: &marked_yaml::Span) -> Pos {
    span.start().map_or((1, 1), |m| (m.line(), m.column()))
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``, `` → none.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']')
        && let Some(i) = path.rfind('[')
    {
        return Some(&path[..i]);
    }
    Some(path.rfind('.').map_or("", |i| &path[..i]))
}

/// The prompt files found, by language.
#[derive(Debug, Clone, Default)]
pub struct PromptIndex {
    /// Files that decoded: language → prompt names.
    pub usable: BTreeMap<String, BTreeSet<String>>,
    /// Files that exist but cannot be played: (language, name) → why.
    pub unusable: BTreeMap<(String, String), String>,
}

impl PromptIndex {
    fn exists(&self, language: &str, name: &str) -> bool {
        self.usable
            .get(language)
            .is_some_and(|names| names.contains(name))
            || self
                .unusable
                .contains_key(&(language.to_string(), name.to_string()))
    }
}

/// What a flow may refer to outside itself.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// Queues, trunks, default language, hold prompt.
    pub ctx: &'a CheckContext,
    /// Names of the flows in the folder (file stems), this one included.
    pub flows: &'a BTreeSet<String>,
    /// The prompt files.
    pub prompts: &'a PromptIndex,
}

/// Every prompt name a flow may play: named in its nodes, played by the
/// interpreter for a node type, and the hold prompt when it queues callers.
pub fn used_prompts(flow: &Flow, ctx: &CheckContext) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for node in &flow.nodes {
        out.extend(node.kind.prompts().into_iter().map(|(_, p)| p.to_string()));
        out.extend(implicit_prompts(&node.kind).iter().map(|p| p.to_string()));
        if matches!(node.kind, NodeKind::Queue(_)) {
            out.insert(ctx.hold_prompt.clone());
        }
    }
    out
}

/// Runs every check on one flow; `file` names it in the diagnostics.
pub fn check_flow(file: &Path, flow: &Flow, spans: &Spans, known: Known<'_>) -> Vec<Diagnostic> {
    let mut first = HashMap::new();
    for (i, node) in flow.nodes.iter().enumerate() {
        first.entry(node.id.as_str()).or_insert(i);
    }
    let mut c = Checker {
        file,
        flow,
        spans,
        known,
        first,
        graph: Vec::new(),
        to_person: Vec::new(),
        out: Vec::new(),
    };
    c.graph = (0..flow.nodes.len()).map(|i| c.successors(i)).collect();
    c.to_person = c.paths_to_person();
    c.name();
    c.duplicate_ids();
    c.transitions();
    c.unreachable();
    c.spin_loops();
    c.prompts();
    c.queues_and_trunks();
    c.subflows();
    c.people();
    c.collects();
    c.conditions();
    c.values();
    c.out
}

struct Checker<'a> {
    file: &'a Path,
    flow: &'a Flow,
    spans: &'a Spans,
    known: Known<'a>,
    /// Node id → index of its first definition.
    first: HashMap<&'a str, usize>,
    /// [`Self::successors`] of every node.
    graph: Vec<Vec<usize>>,
    /// Whether some path from a node reaches a queue or transfer.
    to_person: Vec<bool>,
    out: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    fn report(&mut self, pos: Pos, message: String) {
        self.out.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: pos.0,
            col: pos.1,
            message,
        });
    }

    /// Where `nodes[i].field` was written, or its nearest ancestor.
    fn at(&self, i: usize, field: &str) -> Pos {
        self.spans.locate(&format!("nodes[{i}].{field}")).0
    }

    /// A node as a whole: its `id:` value.
    fn node_at(&self, i: usize) -> Pos {
        self.at(i, "id")
    }

    fn id(&self, i: usize) -> &'a str {
        &self.flow.nodes[i].id
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.first.get(id).copied()
    }

    /// A later definition of an id already defined (reported once).
    fn is_duplicate(&self, i: usize) -> bool {
        self.index(self.id(i)) != Some(i)
    }

    fn operator(&self) -> Option<usize> {
        self.flow.operator.as_deref().and_then(|op| self.index(op))
    }

    /// Whether the interpreter sends a caller from this node to the flow's
    /// operator without the node naming it: 0 in a menu without a "0"
    /// branch, and running out of retries with no target of its own. (An
    /// order lookup or a survey that runs out goes on to its `next`.)
    fn falls_to_operator(&self, i: usize) -> bool {
        match &self.flow.nodes[i].kind {
            NodeKind::Menu(m) => {
                m.on_timeout.is_none() || m.on_invalid.is_none() || !m.branches.contains_key("0")
            }
            NodeKind::Gather(g) => g.on_fail.is_none(),
            _ => false,
        }
    }

    /// Nodes reachable in one step: named transitions and the implicit
    /// operator fallback.
    fn successors(&self, i: usize) -> Vec<usize> {
        let mut out: Vec<usize> = self.flow.nodes[i]
            .kind
            .transitions()
            .into_iter()
            .filter_map(|(_, target)| self.index(target))
            .collect();
        if self.falls_to_operator(i)
            && let Some(op) = self.operator()
        {
            out.push(op);
        }
        out
    }

    /// Every node reachable from `from` (itself included).
    fn reach(&self, from: usize) -> Vec<bool> {
        let mut seen = vec![false; self.flow.nodes.len()];
        let mut todo = VecDeque::from([from]);
        seen[from] = true;
        while let Some(i) = todo.pop_front() {
            for &j in &self.graph[i] {
                if !seen[j] {
                    seen[j] = true;
                    todo.push_back(j);
                }
            }
        }
        seen
    }

    /// For every node, whether some path from it hands the caller to a
    /// queue or a transfer: a walk back from those nodes.
    fn paths_to_person(&self) -> Vec<bool> {
        let n = self.flow.nodes.len();
        let mut back = vec![Vec::new(); n];
        for (i, next) in self.graph.iter().enumerate() {
            for &j in next {
                back[j].push(i);
            }
        }
        let mut seen: Vec<bool> = self
            .flow
            .nodes
            .iter()
            .map(|node| node.kind.reaches_person())
            .collect();
        let mut todo: VecDeque<usize> = (0..n).filter(|&i| seen[i]).collect();
        while let Some(j) = todo.pop_front() {
            for &i in &back[j] {
                if !seen[i] {
                    seen[i] = true;
                    todo.push_back(i);
                }
            }
        }
        seen
    }

    /// Whether some path from `from` hands the caller to a queue or a
    /// transfer.
    fn reaches_person(&self, from: usize) -> bool {
        self.to_person[from]
    }

    fn name(&mut self) {
        let stem = self
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if self.flow.name != stem {
            let pos = self.spans.locate("name").0;
            let file_name = self
                .file
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.report(
                pos,
                format!(
                    "flow name {:?} must match the file name {stem:?} ({file_name})",
                    self.flow.name
                ),
            );
        }
    }

    fn duplicate_ids(&mut self) {
        for i in 0..self.flow.nodes.len() {
            if self.is_duplicate(i) {
                let first = self.index(self.id(i)).unwrap_or(0);
                let first_line = self.node_at(first).0;
                let message = format!(
                    "duplicate node id {:?} (first defined at line {first_line})",
                    self.id(i)
                );
                self.report(self.node_at(i), message);
            }
        }
    }

    fn missing_target(&self, field: &str, target: &str) -> String {
        let mut message = format!("{field} goes to {target:?}, which is not a node of this flow");
        if let Some(close) = closest(target, self.flow.nodes.iter().map(|n| n.id.as_str())) {
            message.push_str(&format!(" (did you mean {close:?}?)"));
        }
        message
    }

    fn transitions(&mut self) {
        if self.index(&self.flow.start).is_none() {
            let message = self.missing_target("start", &self.flow.start);
            self.report(self.spans.locate("start").0, message);
        }
        if let Some(op) = &self.flow.operator
            && self.index(op).is_none()
        {
            let message = self.missing_target("operator", op);
            self.report(self.spans.locate("operator").0, message);
        }
        for (i, node) in self.flow.nodes.iter().enumerate() {
            for (field, target) in node.kind.transitions() {
                if self.index(target).is_none() {
                    let message = self.missing_target(&field, target);
                    self.report(self.at(i, &field), message);
                }
            }
        }
    }

    fn unreachable(&mut self) {
        // A transition to a missing node (a typo, mostly) cuts off whatever
        // it was meant to reach; report the typo alone, not what it hides.
        let broken = self.flow.nodes.iter().any(|n| {
            n.kind
                .transitions()
                .iter()
                .any(|(_, t)| self.index(t).is_none())
        }) || self
            .flow
            .operator
            .as_deref()
            .is_some_and(|op| self.index(op).is_none());
        let Some(start) = self.index(&self.flow.start) else {
            return;
        };
        if broken {
            return;
        }
        let seen = self.reach(start);
        for (i, reached) in seen.into_iter().enumerate() {
            if !reached && !self.is_duplicate(i) {
                let message = format!(
                    "node {:?} is unreachable from start {:?}",
                    self.id(i),
                    self.flow.start
                );
                self.report(self.node_at(i), message);
            }
        }
    }

    /// Cycles of nodes none of which waits for the caller: the call would
    /// spin forever without a key press to break it.
    fn spin_loops(&mut self) {
        let n = self.flow.nodes.len();
        let spins = |i: usize| !self.flow.nodes[i].kind.waits_for_input() && !self.is_duplicate(i);
        let edges: Vec<Vec<usize>> = (0..n)
            .map(|i| {
                if !spins(i) {
                    return Vec::new();
                }
                let mut next: Vec<usize> = self.flow.nodes[i]
                    .kind
                    .transitions()
                    .into_iter()
                    .filter_map(|(_, t)| self.index(t))
                    .filter(|&j| spins(j))
                    .collect();
                next.dedup();
                next
            })
            .collect();
        for component in strongly_connected(&edges) {
            let cyclic = component.len() > 1 || edges[component[0]].contains(&component[0]);
            if !cyclic {
                continue;
            }
            // Report at the first node in file order, naming one cycle
            // through it.
            let head = *component.iter().min().unwrap_or(&component[0]);
            let cycle = shortest_cycle(&edges, head, &component);
            let names: Vec<&str> = cycle.iter().map(|&i| self.id(i)).collect();
            let message = format!(
                "loop without input: {} -> {}; no node in it waits for the caller, so a call would spin forever",
                names.join(" -> "),
                self.id(head)
            );
            self.report(self.node_at(head), message);
        }
    }

    fn prompts(&mut self) {
        let lang = self.known.ctx.default_language.clone();
        // A broken file is reported once per flow, where it is first used.
        let mut broken_reported = BTreeSet::new();
        let mut hold_checked = false;
        for i in 0..self.flow.nodes.len() {
            let kind = &self.flow.nodes[i].kind;
            for (field, name) in kind.prompts() {
                let (pos, written) = self.spans.locate(&format!("nodes[{i}].{field}"));
                if !self.known.prompts.exists(&lang, name) {
                    let what = if written {
                        format!("prompt {name:?}")
                    } else {
                        format!("prompt {name:?} (the default {field})")
                    };
                    let mut message = format!("{what} not found: no prompts/{lang}/{name}.wav");
                    if name.ends_with(".wav") || name.contains('/') {
                        message.push_str(" (write the name without folder or .wav)");
                    }
                    self.report(pos, message);
                }
                self.broken(pos, name, &mut broken_reported);
            }
            let mut needed: Vec<&str> = implicit_prompts(kind);
            let hold = self.known.ctx.hold_prompt.clone();
            if matches!(kind, NodeKind::Queue(_)) && !hold_checked {
                hold_checked = true;
                if !self.known.prompts.exists(&lang, &hold) {
                    let message = format!(
                        "a queue plays the hold prompt {hold:?} (ivr.hold_prompt): no prompts/{lang}/{hold}.wav"
                    );
                    self.report(self.node_at(i), message);
                }
                needed.push(&hold);
            }
            let missing: Vec<&str> = implicit_prompts(kind)
                .into_iter()
                .filter(|p| !self.known.prompts.exists(&lang, p))
                .collect();
            if !missing.is_empty() {
                let message = format!(
                    "a {} node needs prompts missing from prompts/{lang}/: {}",
                    kind.type_name(),
                    missing.join(", ")
                );
                self.report(self.node_at(i), message);
            }
            for name in needed {
                self.broken(self.node_at(i), name, &mut broken_reported);
            }
        }
    }

    /// Reports the unplayable files of prompt `name`, in any language.
    fn broken(&mut self, pos: Pos, name: &str, reported: &mut BTreeSet<(String, String)>) {
        let bad: Vec<((String, String), String)> = self
            .known
            .prompts
            .unusable
            .iter()
            .filter(|((_, n), _)| n == name)
            .map(|(k, why)| (k.clone(), why.clone()))
            .collect();
        for (key, why) in bad {
            if reported.insert(key.clone()) {
                let (lang, name) = key;
                self.report(
                    pos,
                    format!("prompt {name:?}: prompts/{lang}/{name}.wav cannot be played: {why}"),
                );
            }
        }
    }

    fn queues_and_trunks(&mut self) {
        let ctx = self.known.ctx;
        for (i, node) in self.flow.nodes.iter().enumerate() {
            match &node.kind {
                NodeKind::Queue(q) if !ctx.queues.contains(&q.queue) => {
                    let message = format!(
                        "queue {:?} is not in the config (queues: {})",
                        q.queue,
                        ctx.queues.join(", ")
                    );
                    self.report(self.at(i, "queue"), message);
                }
                NodeKind::Transfer(t)
                    if !ctx.trunks.contains(&t.target) && !is_number(&t.target) =>
                {
                    let message = format!(
                        "transfer target {:?} is neither a trunk in the config ({}) nor a number",
                        t.target,
                        ctx.trunks.join(", ")
                    );
                    self.report(self.at(i, "target"), message);
                }
                _ => {}
            }
        }
    }

    fn subflows(&mut self) {
        for (i, node) in self.flow.nodes.iter().enumerate() {
            if let NodeKind::Subflow(s) = &node.kind
                && !self.known.flows.contains(&s.flow)
            {
                let message = format!(
                    "subflow {:?} does not exist: no {}.yaml in this folder",
                    s.flow, s.flow
                );
                self.report(self.at(i, "flow"), message);
            }
        }
    }

    /// A 12345 menu never traps a caller: 0 and silence both lead to a
    /// person.
    fn people(&mut self) {
        let operator = self.operator();
        let has_operator = self.flow.operator.is_some();
        if let Some(op) = operator
            && !self.reaches_person(op)
        {
            let message = format!(
                "operator {:?} never reaches a person: it must lead to a queue or transfer node",
                self.id(op)
            );
            self.report(self.spans.locate("operator").0, message);
        }
        for i in 0..self.flow.nodes.len() {
            let NodeKind::Menu(m) = &self.flow.nodes[i].kind else {
                continue;
            };
            if self.is_duplicate(i) {
                continue;
            }
            let id = self.id(i);
            // An explicit target that leads nowhere is reported where it is
            // written; a missing fallback at the menu's id. A bad operator is
            // reported once, at `operator`.
            let mut zero_ok = true;
            match m.branches.get("0") {
                Some(target) => {
                    if let Some(j) = self.index(target)
                        && !self.reaches_person(j)
                    {
                        let message = format!(
                            "menu {id:?}: 0 goes to {target:?}, which never reaches a person (a queue or transfer node)"
                        );
                        self.report(self.at(i, "branches.0"), message);
                    }
                }
                None => zero_ok = has_operator,
            }
            let mut silence_ok = true;
            match &m.on_timeout {
                Some(target) => {
                    if let Some(j) = self.index(target)
                        && !self.reaches_person(j)
                    {
                        let message = format!(
                            "menu {id:?}: a caller who presses nothing goes to {target:?}, which never reaches a person (a queue or transfer node)"
                        );
                        self.report(self.at(i, "on_timeout"), message);
                    }
                }
                None => silence_ok = has_operator,
            }
            let message = match (zero_ok, silence_ok) {
                (true, true) => continue,
                (false, false) => format!(
                    "menu {id:?} traps the caller: neither 0 nor pressing nothing leads to a person; add a branch \"0\" and an on_timeout that reach a queue or transfer node, or give the flow an operator"
                ),
                (false, true) => format!(
                    "menu {id:?}: 0 does not reach a person; add a branch \"0\" to a queue or transfer node, or give the flow an operator"
                ),
                (true, false) => format!(
                    "menu {id:?}: a caller who presses nothing never reaches a person; add an on_timeout that reaches a queue or transfer node, or give the flow an operator"
                ),
            };
            self.report(self.node_at(i), message);
        }
    }

    fn collects(&mut self) {
        for i in 0..self.flow.nodes.len() {
            match &self.flow.nodes[i].kind {
                NodeKind::Menu(m) => {
                    self.collect(i, &m.collect);
                    for key in m.branches.keys() {
                        let path = format!("nodes[{i}].branches.{key}");
                        let pos = self
                            .spans
                            .key(&path)
                            .unwrap_or_else(|| self.spans.locate(&path).0);
                        let (min, max) = (m.collect.min_digits, m.collect.max_digits);
                        let len = key.chars().count();
                        if key.is_empty() || !key.chars().all(is_key) {
                            self.report(
                                pos,
                                format!("branch key {key:?} must be keypad keys: digits, * or #"),
                            );
                        } else if min <= max && (len < usize::from(min) || len > usize::from(max)) {
                            self.report(
                                pos,
                                format!(
                                    "branch key {key:?} has {len} keys but the menu collects {min} to {max} (collect.min_digits, collect.max_digits)"
                                ),
                            );
                        }
                    }
                }
                NodeKind::Gather(g) => self.collect(i, &g.collect),
                NodeKind::LookupOrder(l) => self.collect(i, &l.collect),
                NodeKind::Survey(s) => {
                    self.collect(i, &s.collect);
                    if !(1..=9).contains(&s.scale) {
                        let message = format!(
                            "survey scale {} must be between 1 and 9 (one key per rating)",
                            s.scale
                        );
                        self.report(self.at(i, "scale"), message);
                    }
                }
                _ => {}
            }
        }
    }

    fn collect(&mut self, i: usize, c: &Collect) {
        if c.max_digits < 1 {
            self.report(
                self.at(i, "collect.max_digits"),
                "collect: max_digits must be at least 1".into(),
            );
        } else if c.min_digits > c.max_digits {
            let message = format!(
                "collect: min_digits {} is above max_digits {}",
                c.min_digits, c.max_digits
            );
            self.report(self.at(i, "collect.min_digits"), message);
        }
        if let Some(t) = c.terminator
            && !matches!(t, '#' | '*')
        {
            self.report(
                self.at(i, "collect.terminator"),
                format!("collect: terminator {t:?} must be # or *"),
            );
        }
    }

    /// Branch conditions the interpreter could not evaluate.
    fn conditions(&mut self) {
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        for i in 0..self.flow.nodes.len() {
            let NodeKind::Branch(b) = &self.flow.nodes[i].kind else {
                continue;
            };
            for (k, case) in b.cases.iter().enumerate() {
                let when = format!("cases[{k}].when");
                match &case.when {
                    Condition::Time { from, to } => {
                        for (field, value) in [("from", from), ("to", to)] {
                            if super::clock::parse_hhmm(value).is_none() {
                                let message =
                                    format!("time {field} {value:?} must be HH:MM, 00:00 to 24:00");
                                self.report(self.at(i, &format!("{when}.time.{field}")), message);
                            }
                        }
                    }
                    Condition::Weekday(days) => {
                        for (d, day) in days.iter().enumerate() {
                            if !DAYS.contains(&day.as_str()) {
                                let message =
                                    format!("weekday {day:?} must be one of {}", DAYS.join(", "));
                                self.report(self.at(i, &format!("{when}.weekday[{d}]")), message);
                            }
                        }
                    }
                    Condition::Caller(pattern)
                        if pattern.is_empty()
                            || !pattern
                                .chars()
                                .all(|c| c.is_ascii_digit() || c == '?' || c == '*') =>
                    {
                        let message = format!(
                            "caller pattern {pattern:?} must be digits, ? (one digit) and * (any digits)"
                        );
                        self.report(self.at(i, &format!("{when}.caller")), message);
                    }
                    Condition::RepeatCaller { days: 0 } => {
                        self.report(
                            self.at(i, &format!("{when}.repeat_caller.days")),
                            "repeat_caller days must be at least 1".into(),
                        );
                    }
                    Condition::Var { name, .. } if name.is_empty() => {
                        self.report(
                            self.at(i, &format!("{when}.var.name")),
                            "var name must not be empty".into(),
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    /// Single values with a range the types cannot express.
    fn values(&mut self) {
        for i in 0..self.flow.nodes.len() {
            match &self.flow.nodes[i].kind {
                NodeKind::Queue(q) if q.priority > 9 => {
                    let message = format!("priority {} must be 0 to 9", q.priority);
                    self.report(self.at(i, "priority"), message);
                }
                NodeKind::Record(r) if r.max_secs == 0 => {
                    self.report(self.at(i, "max_secs"), "max_secs must be at least 1".into());
                }
                NodeKind::Say(s)
                    if !s.value.contains("${")
                        && super::say::prompts(s.say, &s.value).is_none() =>
                {
                    let message = format!("say cannot read {:?} as {:?}", s.value, s.say);
                    self.report(self.at(i, "value"), message);
                }
                _ => {}
            }
        }
    }
}

/// A phone number: digits only.
fn is_number(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

fn is_key(c: char) -> bool {
    c.is_ascii_digit() || c == '*' || c == '#'
}

/// Tarjan's strongly connected components, without recursion so a long
/// chain of nodes cannot overflow the stack.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, next edge to look at)
        let mut work = vec![(root, 0)];
        while let Some(&(v, e)) = work.last() {
            if e == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(e) {
                if let Some(top) = work.last_mut() {
                    top.1 += 1;
                }
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

/// The shortest cycle from `head` back to itself within `component`,
/// without repeating `head` at the end.
fn shortest_cycle(edges: &[Vec<usize>], head: usize, component: &[usize]) -> Vec<usize> {
    let inside: BTreeSet<usize> = component.iter().copied().collect();
    let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
    let mut todo = VecDeque::from([head]);
    while let Some(v) = todo.pop_front() {
        for &w in &edges[v] {
            if w == head {
                let mut cycle = vec![v];
                let mut at = v;
                while at != head {
                    at = parent[&at];
                    cycle.push(at);
                }
                cycle.reverse();
                return cycle;
            }
            if inside.contains(&w) && !parent.contains_key(&w) {
                parent.insert(w, v);
                todo.push_back(w);
            }
        }
    }
    vec![head]
}

/// The candidate nearest to `word` by edit distance, if close enough to be
/// a typo.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count().div_ceil(3)).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of neighbours (`mneu` → `menu` is one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * width + j] + 1)
                    .min(d[i * width + j - 1] + 1)
                    .min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivr::load::parse_flow;

    const FLOW: &str = r#"name: main
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
    branches:
      "1": general
      "2": hours
    on_timeout: person
  - id: hours
    type: branch
    cases:
      - when: {time: {from: "08:00", to: "18:00"}}
        goto: general
    otherwise: bye
  - id: general
    type: queue
    queue: general
  - id: person
    type: queue
    queue: operator
  - id: bye
    type: hangup
    prompts: [goodbye]
"#;

    fn all_prompts() -> PromptIndex {
        let mut index = PromptIndex::default();
        let names = ["welcome", "main_menu", "goodbye", "invalid", "no_input"];
        let extra = [
            "hold_music",
            "beep",
            "order_status_intro",
            "order_not_found",
        ];
        index.usable.insert(
            "cmn".into(),
            names
                .iter()
                .chain(&extra)
                .chain(SAY_PROMPTS)
                .chain(QUEUE_EXTRA_PROMPTS)
                .map(|s| s.to_string())
                .collect(),
        );
        index
    }

    fn run(text: &str, prompts: &PromptIndex, flows: &[&str]) -> Vec<String> {
        let (flow, spans) = parse_flow(Path::new("f/main.yaml"), text).unwrap();
        let flows: BTreeSet<String> = flows.iter().map(|s| s.to_string()).collect();
        let ctx = CheckContext::default();
        let known = Known {
            ctx: &ctx,
            flows: &flows,
            prompts,
        };
        let mut out = check_flow(Path::new("f/main.yaml"), &flow, &spans, known);
        out.sort();
        out.iter()
            .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
            .collect()
    }

    fn check(text: &str) -> Vec<String> {
        run(text, &all_prompts(), &["main"])
    }

    /// `FLOW` with one edit.
    fn edit(from: &str, to: &str) -> String {
        assert!(FLOW.contains(from), "{from}");
        FLOW.replacen(from, to, 1)
    }

    fn one(text: &str) -> String {
        let out = check(text);
        assert_eq!(out.len(), 1, "{out:#?}");
        out.into_iter().next().unwrap_or_default()
    }

    #[test]
    fn a_good_flow_passes() {
        assert_eq!(check(FLOW), Vec::<String>::new());
    }

    #[test]
    fn name_matches_file() {
        assert_eq!(
            one(&edit("name: main", "name: other")),
            "1:7: flow name \"other\" must match the file name \"main\" (main.yaml)"
        );
    }

    #[test]
    fn duplicate_ids_at_the_later_id() {
        let text = format!("{FLOW}  - id: hello\n    type: hangup\n");
        assert_eq!(
            one(&text),
            "31:9: duplicate node id \"hello\" (first defined at line 5)"
        );
    }

    #[test]
    fn missing_targets_everywhere() {
        assert_eq!(
            one(&edit("goto: general", "goto: genral")),
            "20:15: cases[0].goto goes to \"genral\", which is not a node of this flow (did you mean \"general\"?)"
        );
        assert_eq!(
            one(&edit("on_timeout: person", "on_timeout: xyz")),
            "15:17: on_timeout goes to \"xyz\", which is not a node of this flow"
        );
        // What a typo cuts off is not reported as unreachable on top.
        assert_eq!(
            one(&edit("next: menu", "next: mneu")),
            "8:11: next goes to \"mneu\", which is not a node of this flow (did you mean \"menu\"?)"
        );
        // Nor behind a bad start.
        assert_eq!(
            one(&edit("start: hello", "start: helo")),
            "2:8: start goes to \"helo\", which is not a node of this flow (did you mean \"hello\"?)"
        );
        let out = check(&edit("operator: person", "operator: persn"));
        assert_eq!(
            out[0],
            "3:11: operator goes to \"persn\", which is not a node of this flow (did you mean \"person\"?)"
        );
    }

    #[test]
    fn unreachable_nodes_at_their_id() {
        let text = format!("{FLOW}  - id: lost\n    type: hangup\n");
        assert_eq!(
            one(&text),
            "31:9: node \"lost\" is unreachable from start \"hello\""
        );
        // The operator is reached from a menu without naming it.
        let text = edit("on_timeout: person", "on_timeout: general");
        assert_eq!(check(&text), Vec::<String>::new());
    }

    #[test]
    fn spinning_loops_are_named() {
        let text = edit("goto: general", "goto: again").replace(
            "  - id: general\n",
            "  - id: again\n    type: set\n    vars: {x: \"1\"}\n    next: hours\n  - id: general\n",
        );
        assert_eq!(
            one(&text),
            "16:9: loop without input: hours -> again -> hours; no node in it waits for the caller, so a call would spin forever"
        );
        // The same loop through a menu waits for the caller each time.
        let text = edit("goto: general", "goto: menu");
        assert_eq!(check(&text), Vec::<String>::new());
        // A node that goes to itself.
        let text = edit("next: menu", "next: hello");
        let out = check(&text);
        assert!(
            out.iter()
                .any(|d| d.starts_with("5:9: loop without input: hello -> hello")),
            "{out:#?}"
        );
    }

    #[test]
    fn strongly_connected_components() {
        // 0 -> 1 -> 2 -> 0, 2 -> 3, 3 -> 3, 4 alone.
        let edges = vec![vec![1], vec![2], vec![0, 3], vec![3], vec![]];
        let mut sccs: Vec<Vec<usize>> = strongly_connected(&edges)
            .into_iter()
            .map(|mut c| {
                c.sort();
                c
            })
            .collect();
        sccs.sort();
        assert_eq!(sccs, vec![vec![0, 1, 2], vec![3], vec![4]]);
        assert_eq!(shortest_cycle(&edges, 0, &[0, 1, 2]), vec![0, 1, 2]);
        // A long chain does not overflow the stack.
        let n = 200_000;
        let chain: Vec<Vec<usize>> = (0..n).map(|i| vec![(i + 1) % n]).collect();
        let sccs = strongly_connected(&chain);
        assert_eq!(sccs.len(), 1);
        assert_eq!(sccs[0].len(), n);
    }

    #[test]
    fn missing_and_broken_prompts() {
        assert_eq!(
            one(&edit("prompts: [goodbye]", "prompts: [good_bye]")),
            "30:15: prompt \"good_bye\" not found: no prompts/cmn/good_bye.wav"
        );
        assert_eq!(
            one(&edit("prompts: [goodbye]", "prompts: [goodbye.wav]")),
            "30:15: prompt \"goodbye.wav\" not found: no prompts/cmn/goodbye.wav.wav (write the name without folder or .wav)"
        );
        // Defaults are reported at the node that uses them.
        let mut prompts = all_prompts();
        prompts.usable.get_mut("cmn").unwrap().remove("invalid");
        assert_eq!(
            run(FLOW, &prompts, &["main"]),
            [
                "9:5: prompt \"invalid\" (the default collect.invalid_prompts[0]) not found: no prompts/cmn/invalid.wav"
            ]
        );
        // A prompt only in another language is still missing.
        let mut prompts = all_prompts();
        prompts.usable.get_mut("cmn").unwrap().remove("welcome");
        prompts
            .usable
            .insert("mn".into(), ["welcome".to_string()].into());
        assert_eq!(
            run(FLOW, &prompts, &["main"]),
            ["7:15: prompt \"welcome\" not found: no prompts/cmn/welcome.wav"]
        );
        // A file that cannot be played: once per flow, where first used,
        // in any language.
        let mut prompts = all_prompts();
        prompts
            .unusable
            .insert(("mn".into(), "goodbye".into()), "2 channels".into());
        let text = edit("prompts: [welcome]", "prompts: [welcome, goodbye]");
        assert_eq!(
            run(&text, &prompts, &["main"]),
            ["7:24: prompt \"goodbye\": prompts/mn/goodbye.wav cannot be played: 2 channels"]
        );
    }

    #[test]
    fn implicit_prompts() {
        let mut prompts = all_prompts();
        let cmn = prompts.usable.get_mut("cmn").unwrap();
        cmn.remove("digit_4");
        cmn.remove("minute");
        cmn.remove("hold_music");
        cmn.remove("beep");
        let text = edit("next: menu", "next: time").replace(
            "  - id: menu\n",
            "  - id: time\n    type: say\n    say: time\n    value: \"${now}\"\n    next: msg\n  - id: msg\n    type: record\n    prompts: []\n    next: menu\n  - id: menu\n",
        );
        assert_eq!(
            run(&text, &prompts, &["main"]),
            [
                "9:9: a say node needs prompts missing from prompts/cmn/: digit_4, minute",
                "14:9: a record node needs prompts missing from prompts/cmn/: beep",
                // Queues read the number of callers ahead.
                "31:9: a queue node needs prompts missing from prompts/cmn/: digit_4",
                "31:9: a queue plays the hold prompt \"hold_music\" (ivr.hold_prompt): no prompts/cmn/hold_music.wav",
                "34:9: a queue node needs prompts missing from prompts/cmn/: digit_4",
            ]
        );
        let flow: Flow = serde_yaml_ng::from_str(&text).unwrap();
        let used = used_prompts(&flow, &CheckContext::default());
        assert!(used.contains("beep") && used.contains("hold_music") && used.contains("digit_0"));
        assert!(used.contains("no_input") && used.contains("goodbye"));
    }

    #[test]
    fn queues_trunks_and_subflows() {
        assert_eq!(
            one(&edit("queue: general", "queue: generl")),
            "24:12: queue \"generl\" is not in the config (queues: emergency, general, enterprise, mongolian, operator)"
        );
        let transfer = |target: &str| {
            check(&edit(
                "    queue: general\n",
                &format!("    queue: general\n  - id: police\n    type: transfer\n    target: {target}\n"),
            )
            .replace("\"2\": hours", "\"2\": hours\n      \"3\": police"))
        };
        assert_eq!(transfer("\"110\""), Vec::<String>::new());
        assert_eq!(transfer("\"12345678\""), Vec::<String>::new());
        assert_eq!(transfer("water"), Vec::<String>::new());
        let out = transfer("polce");
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].starts_with("28:13: transfer target \"polce\" is neither a trunk in the config (110, 119, 120, 122,"),
            "{out:?}"
        );
        let text = edit("next: menu", "next: sub").replace(
            "  - id: menu\n",
            "  - id: sub\n    type: subflow\n    flow: survey\n    next: menu\n  - id: menu\n",
        );
        assert_eq!(
            run(&text, &all_prompts(), &["main"]),
            ["11:11: subflow \"survey\" does not exist: no survey.yaml in this folder"]
        );
        assert_eq!(
            run(&text, &all_prompts(), &["main", "survey"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn menus_reach_a_person() {
        // No operator: 0 has nowhere to go; silence still reaches a queue.
        assert_eq!(
            one(&edit("operator: person\n", "")),
            "8:9: menu \"menu\": 0 does not reach a person; add a branch \"0\" to a queue or transfer node, or give the flow an operator"
        );
        // An explicit 0 to a person is enough.
        let text = edit("operator: person\n", "")
            .replace("\"1\": general", "\"0\": person\n      \"1\": general");
        assert_eq!(check(&text), Vec::<String>::new());
        // Neither.
        let text = edit("operator: person\n", "").replace("    on_timeout: person\n", "");
        let out = check(&text);
        assert!(
            out.iter()
                .any(|d| d.starts_with("8:9: menu \"menu\" traps the caller")),
            "{out:#?}"
        );
        // Silence to a hang-up, 0 to a hang-up.
        let text = edit("on_timeout: person", "on_timeout: bye")
            .replace("\"1\": general", "\"0\": bye\n      \"1\": general");
        let out = check(&text);
        assert_eq!(
            out,
            [
                "13:12: menu \"menu\": 0 goes to \"bye\", which never reaches a person (a queue or transfer node)",
                "16:17: menu \"menu\": a caller who presses nothing goes to \"bye\", which never reaches a person (a queue or transfer node)",
            ]
        );
        // Through a branch that reaches a queue in working hours: fine.
        assert_eq!(
            check(&edit("on_timeout: person", "on_timeout: hours")),
            Vec::<String>::new()
        );
        // The operator itself must reach a person; the menus relying on it
        // are not reported again.
        let out = check(&edit("operator: person", "operator: bye"));
        assert_eq!(
            out,
            [
                "3:11: operator \"bye\" never reaches a person: it must lead to a queue or transfer node"
            ]
        );
    }

    #[test]
    fn collect_sanity() {
        let collect = |c: &str| {
            check(&edit(
                "    prompts: [main_menu]\n",
                &format!("    prompts: [main_menu]\n    collect: {{{c}}}\n"),
            ))
        };
        assert_eq!(
            collect("min_digits: 2, max_digits: 1"),
            ["12:27: collect: min_digits 2 is above max_digits 1"]
        );
        assert_eq!(
            collect("max_digits: 0"),
            ["12:27: collect: max_digits must be at least 1"]
        );
        assert_eq!(
            collect("terminator: \"5\""),
            ["12:27: collect: terminator '5' must be # or *"]
        );
        assert_eq!(
            collect("min_digits: 2, max_digits: 3"),
            [
                "14:7: branch key \"1\" has 1 keys but the menu collects 2 to 3 (collect.min_digits, collect.max_digits)",
                "15:7: branch key \"2\" has 1 keys but the menu collects 2 to 3 (collect.min_digits, collect.max_digits)",
            ]
        );
        let text = edit(
            "\"2\": hours",
            "\"2\": hours\n      \"a\": hours\n      \"*\": hours",
        );
        assert_eq!(
            check(&text),
            ["15:7: branch key \"a\" must be keypad keys: digits, * or #"]
        );
        let survey = |scale: u8| {
            check(&edit("next: menu", "next: rate").replace(
                "  - id: menu\n",
                &format!("  - id: rate\n    type: survey\n    prompts: []\n    scale: {scale}\n    next: menu\n  - id: menu\n"),
            ))
        };
        assert_eq!(survey(5), Vec::<String>::new());
        assert_eq!(
            survey(0),
            ["12:12: survey scale 0 must be between 1 and 9 (one key per rating)"]
        );
    }

    #[test]
    fn conditions_and_values() {
        assert_eq!(
            one(&edit("from: \"08:00\"", "from: \"8h\"")),
            "19:29: time from \"8h\" must be HH:MM, 00:00 to 24:00"
        );
        assert_eq!(
            one(&edit(
                "{time: {from: \"08:00\", to: \"18:00\"}}",
                "{weekday: [mon, tues]}"
            )),
            "19:31: weekday \"tues\" must be one of mon, tue, wed, thu, fri, sat, sun"
        );
        assert_eq!(
            one(&edit(
                "{time: {from: \"08:00\", to: \"18:00\"}}",
                "{caller: \"138-*\"}"
            )),
            "19:24: caller pattern \"138-*\" must be digits, ? (one digit) and * (any digits)"
        );
        assert_eq!(
            one(&edit(
                "{time: {from: \"08:00\", to: \"18:00\"}}",
                "{repeat_caller: {days: 0}}"
            )),
            "19:38: repeat_caller days must be at least 1"
        );
        assert_eq!(
            one(&edit("queue: general", "queue: general\n    priority: 10")),
            "25:15: priority 10 must be 0 to 9"
        );
    }

    #[test]
    fn paths_and_typos() {
        assert_eq!(
            parent_path("nodes[3].cases[0].goto"),
            Some("nodes[3].cases[0]")
        );
        assert_eq!(parent_path("nodes[3].cases[0]"), Some("nodes[3].cases"));
        assert_eq!(parent_path("nodes"), Some(""));
        assert_eq!(parent_path(""), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("mneu", "menu"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("mneu", ["menu", "bye"].into_iter()), Some("menu"));
        assert_eq!(closest("xyz", ["menu", "bye"].into_iter()), None);
    }
}
