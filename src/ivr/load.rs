//! Reading a flows folder: every `<name>.yaml` beside a `prompts/` tree of
//! `<language>/<name>.wav`, parsed, decoded and checked into a [`FlowSet`].
//!
//! [`load_dir`] is what the server calls at start and on every reload, and
//! what `hotline flows check` runs: any problem rejects the whole set with
//! every [`Diagnostic`] at once (`file:line:col: message`), so a bad edit
//! never replaces a running version. Positions come from two parsers: the
//! typed parse (`serde_yaml_ng`) for schema errors, and `marked_yaml` for the
//! position of every key and value that [`super::validate`] points at.

use super::model::Flow;
use super::validate::{self, Known, PromptIndex, Spans};
use crate::media::prompt::{Prompt, decode_wav};
use marked_yaml::{LoadError, LoaderOptions, Node as Yaml};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One problem in a flow or prompt file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The flow or prompt file, as found under the folder given.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong, naming the node, key or value.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// A checked flow with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedFlow {
    /// The parsed flow, shared by every call that runs this version.
    pub flow: Arc<Flow>,
    /// The file it was read from.
    pub file: PathBuf,
    /// Hex SHA-256 of the file's bytes: the version a call record names.
    pub hash: String,
}

/// The decoded prompts of a flows folder, by language and name.
#[derive(Debug, Clone, Default)]
pub struct PromptSet {
    by_language: BTreeMap<String, BTreeMap<String, Arc<Prompt>>>,
}

impl PromptSet {
    /// The prompt in exactly this language.
    pub fn get(&self, language: &str, name: &str) -> Option<Arc<Prompt>> {
        self.by_language.get(language)?.get(name).cloned()
    }

    /// The prompt in `language`, else in `default_language`.
    pub fn resolve(
        &self,
        language: &str,
        default_language: &str,
        name: &str,
    ) -> Option<Arc<Prompt>> {
        self.get(language, name)
            .or_else(|| self.get(default_language, name))
    }

    /// Languages with at least one prompt.
    pub fn languages(&self) -> Vec<String> {
        self.by_language.keys().cloned().collect()
    }

    /// Prompts across all languages.
    pub fn len(&self) -> usize {
        self.by_language.values().map(BTreeMap::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces a prompt (tests build sets by hand).
    pub fn insert(&mut self, language: &str, name: &str, prompt: Arc<Prompt>) {
        self.by_language
            .entry(language.to_string())
            .or_default()
            .insert(name.to_string(), prompt);
    }
}

/// A checked folder of flows with its prompts: one version of the IVR.
#[derive(Debug, Clone)]
pub struct FlowSet {
    /// By flow name.
    pub flows: BTreeMap<String, LoadedFlow>,
    /// Every decodable prompt under `prompts/`.
    pub prompts: PromptSet,
    /// The language prompts fall back to (`ivr.default_language`).
    pub default_language: String,
}

impl FlowSet {
    /// The flow with this name.
    pub fn flow(&self, name: &str) -> Option<&Arc<Flow>> {
        self.flows.get(name).map(|f| &f.flow)
    }

    /// The content hash of the flow with this name.
    pub fn hash(&self, name: &str) -> Option<&str> {
        self.flows.get(name).map(|f| f.hash.as_str())
    }

    /// Nodes across all flows.
    pub fn node_count(&self) -> usize {
        self.flows.values().map(|f| f.flow.nodes.len()).sum()
    }
}

/// What flows may refer to outside the folder, from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckContext {
    /// Queue names (`[[queue]]`).
    pub queues: Vec<String>,
    /// Trunk names (`[[trunk]]`).
    pub trunks: Vec<String>,
    /// `ivr.default_language`: every prompt must exist in it.
    pub default_language: String,
    /// `ivr.hold_prompt`: needed when a flow queues callers.
    pub hold_prompt: String,
    /// Flows the service enters by name (`ivr.main_flow`, `ivr.survey_flow`),
    /// with the config key that names each.
    pub required_flows: Vec<(&'static str, String)>,
}

impl CheckContext {
    /// The queues, trunks and prompt settings of a config.
    pub fn from_config(c: &crate::config::Config) -> CheckContext {
        CheckContext {
            queues: c.queues.iter().map(|q| q.name.clone()).collect(),
            trunks: c.trunks.iter().map(|t| t.name.clone()).collect(),
            default_language: c.ivr.default_language.clone(),
            hold_prompt: c.ivr.hold_prompt.clone(),
            required_flows: vec![
                ("ivr.main_flow", c.ivr.main_flow.clone()),
                ("ivr.survey_flow", c.ivr.survey_flow.clone()),
            ],
        }
    }
}

impl Default for CheckContext {
    /// The embedded default config's.
    fn default() -> Self {
        CheckContext::from_config(&crate::config::Config::default())
    }
}

/// Loads and checks every `*.yaml` in `dir` (not recursive) plus
/// `dir/prompts/`. Any problem → Err with all diagnostics, sorted by file,
/// line, col.
pub fn load_dir(dir: &Path, ctx: &CheckContext) -> Result<FlowSet, Vec<Diagnostic>> {
    let (set, mut diagnostics) = check_dir(dir, ctx);
    diagnostics.extend(missing_required(dir, &set, &diagnostics, ctx));
    diagnostics.sort();
    if diagnostics.is_empty() {
        Ok(set)
    } else {
        Err(diagnostics)
    }
}

/// The flows the config names (`ivr.main_flow`, `ivr.survey_flow`) that
/// the folder lacks; a flow that failed its own checks is not named twice.
pub fn missing_required(
    dir: &Path,
    set: &FlowSet,
    already: &[Diagnostic],
    ctx: &CheckContext,
) -> Vec<Diagnostic> {
    ctx.required_flows
        .iter()
        .filter(|(_, name)| {
            !set.flows.contains_key(name)
                && !already
                    .iter()
                    .any(|d| d.file.file_stem().is_some_and(|s| s == name.as_str()))
        })
        .map(|(key, name)| Diagnostic {
            file: dir.join(format!("{name}.yaml")),
            line: 1,
            col: 1,
            message: format!(
                "{key} names flow {name:?}, but there is no {name}.yaml in this folder"
            ),
        })
        .collect()
}

/// Like [`load_dir`], but returns the flows that parsed (checked or not)
/// together with every diagnostic, sorted; `flows check FILE` reports one
/// file of a folder this way.
pub fn check_dir(dir: &Path, ctx: &CheckContext) -> (FlowSet, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let prompts = load_prompts(dir);
    let files = match flow_files(dir) {
        Ok((files, others)) => {
            for other in others {
                diagnostics.push(at_start(
                    &other,
                    "flow files must end in .yaml; this one is ignored".into(),
                ));
            }
            if files.is_empty() {
                diagnostics.push(at_start(
                    dir,
                    "no flows here: expected <name>.yaml files".into(),
                ));
            }
            files
        }
        Err(e) => {
            diagnostics.push(at_start(dir, format!("cannot read the flows folder: {e}")));
            Vec::new()
        }
    };
    let names: BTreeSet<String> = files.iter().map(|f| stem(f)).collect();
    let known = Known {
        ctx,
        flows: &names,
        prompts: &prompts.index,
    };
    let mut flows = BTreeMap::new();
    for file in files {
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                diagnostics.push(at_start(&file, format!("cannot read: {e}")));
                continue;
            }
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                let (line, col) = position_of(&bytes[..e.valid_up_to()]);
                diagnostics.push(Diagnostic {
                    file,
                    line,
                    col,
                    message: "not UTF-8 text".into(),
                });
                continue;
            }
        };
        match parse_flow(&file, text) {
            Err(d) => diagnostics.extend(d),
            Ok((flow, spans)) => {
                diagnostics.extend(validate::check_flow(&file, &flow, &spans, known));
                flows.insert(
                    stem(&file),
                    LoadedFlow {
                        flow: Arc::new(flow),
                        hash: sha256_hex(&bytes),
                        file,
                    },
                );
            }
        }
    }
    // A broken prompt file no flow plays is reported at the file itself; the
    // used ones were reported where a flow plays them.
    let used: BTreeSet<String> = flows
        .values()
        .flat_map(|f| validate::used_prompts(&f.flow, ctx))
        .collect();
    for ((_, name), (path, why)) in &prompts.broken {
        if !used.contains(name) {
            diagnostics.push(at_start(path, format!("cannot be played: {why}")));
        }
    }
    diagnostics.sort();
    let set = FlowSet {
        flows,
        prompts: prompts.set,
        default_language: ctx.default_language.clone(),
    };
    (set, diagnostics)
}

fn at_start(file: &Path, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line: 1,
        col: 1,
        message,
    }
}

fn stem(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `*.yaml` files, sorted, and `*.yml` files (probably meant as flows).
fn flow_files(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut flows = Vec::new();
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = dir.join(entry.file_name());
        if !path.is_file() {
            continue;
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml") => flows.push(path),
            Some("yml") => others.push(path),
            _ => {}
        }
    }
    flows.sort();
    others.sort();
    Ok((flows, others))
}

/// 1-based line and column just after `bytes`.
fn position_of(bytes: &[u8]) -> (usize, usize) {
    let text = String::from_utf8_lossy(bytes);
    let line = text.matches('\n').count() + 1;
    let col = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct LoadedPrompts {
    set: PromptSet,
    index: PromptIndex,
    /// (language, name) → (file, why it cannot be played).
    broken: BTreeMap<(String, String), (PathBuf, String)>,
}

/// Decodes every `prompts/<language>/<name>.wav`; files directly under
/// `prompts/` and deeper folders are not prompts of a language and are left
/// alone.
fn load_prompts(dir: &Path) -> LoadedPrompts {
    let mut out = LoadedPrompts {
        set: PromptSet::default(),
        index: PromptIndex::default(),
        broken: BTreeMap::new(),
    };
    let root = dir.join("prompts");
    let Ok(languages) = std::fs::read_dir(&root) else {
        // No prompts at all: every prompt a flow names is reported missing.
        return out;
    };
    let mut languages: Vec<PathBuf> = languages
        .filter_map(Result::ok)
        .map(|e| root.join(e.file_name()))
        .filter(|p| p.is_dir())
        .collect();
    languages.sort();
    for lang_dir in languages {
        let language = stem(&lang_dir);
        let Ok(files) = std::fs::read_dir(&lang_dir) else {
            continue;
        };
        for entry in files.filter_map(Result::ok) {
            let path = lang_dir.join(entry.file_name());
            let is_wav = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("wav"));
            if !is_wav || !path.is_file() {
                continue;
            }
            let name = stem(&path);
            let decoded = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| decode_wav(&bytes))
                .and_then(|pcm| {
                    if pcm.is_empty() {
                        Err("no audio samples".to_string())
                    } else {
                        Ok(pcm)
                    }
                });
            match decoded {
                Ok(pcm) => {
                    let prompt = Prompt::from_pcm(path.display().to_string(), pcm);
                    out.set.insert(&language, &name, Arc::new(prompt));
                    out.index
                        .usable
                        .entry(language.clone())
                        .or_default()
                        .insert(name);
                }
                Err(why) => {
                    let why =
                        format!("{why} (prompts must be 8 kHz mono WAV, 16-bit PCM or G.711)");
                    let key = (language.clone(), name);
                    out.index.unusable.insert(key.clone(), why.clone());
                    out.broken.insert(key, (path, why));
                }
            }
        }
    }
    out
}

/// Parses one flow file and records where each element was written. A
/// schema error is reported at the position the parser gives, narrowed to
/// the offending key or value inside a node when it can be found.
pub fn parse_flow(file: &Path, text: &str) -> Result<(Flow, Spans), Vec<Diagnostic>> {
    let diagnostic = |(line, col): (usize, usize), message: String| {
        vec![Diagnostic {
            file: file.to_path_buf(),
            line,
            col,
            message,
        }]
    };
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let marked = marked_yaml::parse_yaml_with_options(0, text, options);
    // Duplicate keys are silently merged by some deserializers (maps such as
    // `branches`), so they are caught here first.
    if let Err(LoadError::DuplicateKey(d)) = &marked {
        let first = validate::start(d.prev_key.span()).0;
        return Err(diagnostic(
            validate::start(d.key.span()),
            format!("duplicate key {:?} (first at line {first})", d.key.as_str()),
        ));
    }
    let flow = match serde_yaml_ng::from_str::<Flow>(text) {
        Ok(flow) => flow,
        Err(e) => {
            let (pos, message) = schema_error(&e, marked.as_ref().ok());
            return Err(diagnostic(pos, message));
        }
    };
    match marked {
        Ok(root) => Ok((flow, Spans::from_yaml(&root))),
        Err(e) => {
            let (pos, message) = match &e {
                LoadError::UnexpectedAnchor(m) => (
                    *m,
                    "anchors and aliases (&name, *name) are not supported in flow files".into(),
                ),
                LoadError::UnexpectedTag(m) => (
                    *m,
                    "YAML tags (!tag) are not supported in flow files".into(),
                ),
                LoadError::MappingKeyMustBeScalar(m) => {
                    (*m, "keys must be plain values, not lists or maps".into())
                }
                LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => (
                    *m,
                    "a flow file must be a mapping of name, start and nodes".into(),
                ),
                LoadError::ScanError(m, s) => (*m, s.info().to_string()),
                LoadError::DuplicateKey(_) => unreachable!("handled above"),
            };
            Err(diagnostic((pos.line(), pos.column()), message))
        }
    }
}

/// Position and message of a typed-parse error. Errors inside a node come
/// from serde's buffered (flattened) node content, which only knows where the
/// node starts; the key or value named in the message is looked up in the
/// marked tree to point at it.
fn schema_error(e: &serde_yaml_ng::Error, root: Option<&Yaml>) -> ((usize, usize), String) {
    let mut pos = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    let mut message = e.to_string();
    if let Some(l) = e.location() {
        message = message.replacen(
            &format!(" at line {} column {}", l.line(), l.column()),
            "",
            1,
        );
    }
    if let Some(hint) = quote_hint(&message) {
        message.push_str(&hint);
    }
    let Some((index, rest)) = node_prefix(&message) else {
        return (pos, message);
    };
    let node = root
        .and_then(|r| r.as_mapping())
        .and_then(|m| m.get_sequence("nodes"))
        .and_then(|s| s.get_node(index));
    let Some(node) = node else {
        return (pos, message);
    };
    if pos == node_start(node)
        && let Some(better) = pinpoint(node, rest)
    {
        pos = better;
    }
    let mapping = node.as_mapping();
    let mut rest = rest.to_string();
    let type_name = mapping.and_then(|m| m.get_scalar("type"));
    if let Some(t) = type_name
        && rest.contains(&format!("unknown variant `{}`", t.as_str()))
    {
        rest = rest.replacen("unknown variant", "unknown node type", 1);
    }
    let id = mapping.and_then(|m| m.get_scalar("id"));
    message = match id {
        Some(id) => format!("node {:?}{rest}", id.as_str()),
        None => format!("nodes[{index}]{rest}"),
    };
    (pos, message)
}

/// `nodes[3]: unknown field ...` → (3, `: unknown field ...`).
fn node_prefix(message: &str) -> Option<(usize, &str)> {
    let rest = message.strip_prefix("nodes[")?;
    let (index, rest) = rest.split_once(']')?;
    Some((index.parse().ok()?, rest))
}

fn node_start(node: &Yaml) -> (usize, usize) {
    let own = validate::start(node.span());
    let first_key = node
        .as_mapping()
        .and_then(|m| m.keys().next())
        .map(|k| validate::start(k.span()));
    first_key.map_or(own, |k| k.min(own))
}

/// Where the key or value a serde message names is written in a node.
fn pinpoint(node: &Yaml, message: &str) -> Option<(usize, usize)> {
    let quoted = |open: &str, close: char| -> Option<String> {
        let at = message.find(open)? + open.len();
        let end = message[at..].find(close)?;
        Some(message[at..at + end].to_string())
    };
    if let Some(field) = quoted("unknown field `", '`') {
        return find(node, &|key, _| key.is_some_and(|k| k == field), true);
    }
    if let Some(variant) = quoted("unknown variant `", '`') {
        // Usually the node's `type`.
        if let Some(t) = node.as_mapping().and_then(|m| m.get_scalar("type"))
            && t.as_str() == variant
        {
            return Some(validate::start(t.span()));
        }
        return find(node, &|_, s| s.as_str() == variant, false);
    }
    for kind in ["integer `", "floating point `", "boolean `"] {
        if let Some(value) = quoted(&format!("invalid type: {kind}"), '`')
            .or_else(|| quoted(&format!("invalid value: {kind}"), '`'))
        {
            return find(node, &|_, s| s.may_coerce() && s.as_str() == value, false);
        }
    }
    if let Some(value) =
        quoted("invalid type: string \"", '"').or_else(|| quoted("invalid value: string \"", '"'))
    {
        return find(node, &|_, s| s.as_str() == value, false);
    }
    None
}

/// The first scalar, in file order, that `test` accepts; keys are passed
/// with `Some(key)` and tested as scalars too unless `keys_only`.
fn find(
    node: &Yaml,
    test: &dyn Fn(Option<&str>, &marked_yaml::types::MarkedScalarNode) -> bool,
    keys_only: bool,
) -> Option<(usize, usize)> {
    match node {
        Yaml::Scalar(s) => (!keys_only && test(None, s)).then(|| validate::start(s.span())),
        Yaml::Mapping(m) => m.iter().find_map(|(k, v)| {
            if test(Some(k.as_str()), k) {
                return Some(validate::start(k.span()));
            }
            find(v, test, keys_only)
        }),
        Yaml::Sequence(s) => s.iter().find_map(|v| find(v, test, keys_only)),
    }
}

/// Suggests quotes when a number or boolean was written where text is
/// expected (`target: 110`, a branch key `1:` inside a node).
fn quote_hint(message: &str) -> Option<String> {
    if !message.contains("expected a string") {
        return None;
    }
    for kind in ["integer `", "floating point `", "boolean `"] {
        let Some(at) = message.find(&format!("invalid type: {kind}")) else {
            continue;
        };
        let start = at + "invalid type: ".len() + kind.len();
        let end = message[start..].find('`')? + start;
        return Some(format!(
            "; write it in quotes: \"{}\"",
            &message[start..end]
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = r#"name: sample
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
    collect:
      max_digits: 1
    branches: {"1": bye}
  - id: person
    type: queue
    queue: general
    priority: 5
  - id: bye
    type: hangup
"#;

    fn parse_err(text: &str) -> Diagnostic {
        let mut d = parse_flow(Path::new("f/sample.yaml"), text).unwrap_err();
        assert_eq!(d.len(), 1, "{d:?}");
        d.remove(0)
    }

    fn at(d: &Diagnostic) -> (usize, usize) {
        (d.line, d.col)
    }

    #[test]
    fn parses_with_positions() {
        let (flow, spans) = parse_flow(Path::new("sample.yaml"), FLOW).unwrap();
        assert_eq!(flow.nodes.len(), 4);
        assert_eq!(spans.value("start"), Some((2, 8)));
        assert_eq!(spans.value("nodes[0]"), Some((5, 5)));
        assert_eq!(spans.value("nodes[0].next"), Some((8, 11)));
        assert_eq!(spans.value("nodes[1].branches.1"), Some((14, 21)));
        assert_eq!(spans.key("nodes[1].branches.1"), Some((14, 16)));
        assert_eq!(spans.value("nodes[1].prompts[0]"), Some((11, 15)));
        // Defaults have no position: the nearest written ancestor stands in.
        assert_eq!(
            spans.locate("nodes[1].collect.invalid_prompts[0]"),
            ((13, 7), false)
        );
        assert_eq!(spans.locate("nodes[0].collect.x"), ((5, 5), false));
    }

    #[test]
    fn schema_errors_point_inside_nodes() {
        let d = parse_err(&FLOW.replace("prompts: [welcome]", "promts: [welcome]"));
        assert_eq!(at(&d), (7, 5));
        assert!(
            d.message
                .starts_with("node \"hello\": unknown field `promts`"),
            "{}",
            d.message
        );
        assert!(!d.message.contains("line 5"), "{}", d.message);

        let d = parse_err(&FLOW.replace("type: hangup", "type: explode"));
        assert_eq!(at(&d), (20, 11));
        assert!(
            d.message
                .starts_with("node \"bye\": unknown node type `explode`, expected one of `play`"),
            "{}",
            d.message
        );

        let d = parse_err(&FLOW.replace("type: hangup", "type: say\n    say: sing"));
        assert_eq!(at(&d), (21, 10));
        assert!(
            d.message.contains("unknown variant `sing`"),
            "{}",
            d.message
        );

        let d = parse_err(&FLOW.replace("priority: 5", "priority: high"));
        assert_eq!(at(&d), (18, 15));

        let d = parse_err(&FLOW.replace("max_digits: 1", "maxdigits: 1"));
        assert_eq!(at(&d), (13, 7));

        let d = parse_err(&FLOW.replace("queue: general", "queue: 12"));
        assert_eq!(at(&d), (17, 12));
        assert!(
            d.message.contains("write it in quotes: \"12\""),
            "{}",
            d.message
        );

        // Missing fields: at the node.
        let d = parse_err(&FLOW.replace("    next: menu\n", ""));
        assert_eq!(at(&d), (5, 5));
        assert!(d.message.contains("missing field `next`"), "{}", d.message);
    }

    #[test]
    fn top_level_and_syntax_errors() {
        let d = parse_err(&FLOW.replace("start: hello", "strt: hello"));
        assert_eq!(at(&d), (2, 1));
        assert!(
            d.message.starts_with("unknown field `strt`"),
            "{}",
            d.message
        );

        let d = parse_err(&FLOW.replace(r#"{"1": bye}"#, r#"{"1": bye"#));
        assert_eq!(d.line, 15);
        assert!(d.message.contains("did not find expected"), "{}", d.message);

        let d = parse_err(&FLOW.replace("start: hello", "start: hello\nstart: menu"));
        assert_eq!(at(&d), (3, 1));
        assert_eq!(d.message, "duplicate key \"start\" (first at line 2)");

        let d = parse_err(&FLOW.replace(r#"{"1": bye}"#, r#"{"1": bye, "1": menu}"#));
        assert_eq!(at(&d), (14, 26));

        let d = parse_err(&FLOW.replace("start: hello", "start: &a hello"));
        assert!(d.message.contains("anchors"), "{}", d.message);
        assert_eq!(d.line, 2);

        let d = parse_err("");
        assert!(d.message.contains("missing field"), "{}", d.message);
    }

    #[test]
    fn broken_text_never_panics() {
        let ctx = CheckContext::default();
        let flows = BTreeSet::from(["sample".to_string()]);
        let prompts = PromptIndex::default();
        let known = Known {
            ctx: &ctx,
            flows: &flows,
            prompts: &prompts,
        };
        let mut texts: Vec<String> = Vec::new();
        for (i, _) in FLOW.char_indices() {
            texts.push(FLOW[..i].to_string());
            texts.push(format!("{}{}", &FLOW[..i], &FLOW[i + 1..]));
        }
        let lines: Vec<&str> = FLOW.lines().collect();
        for i in 0..lines.len() {
            let mut l = lines.clone();
            l.remove(i);
            texts.push(l.join("\n"));
            texts.push(
                lines
                    .join("\n")
                    .replacen(lines[i], &format!("  {}", lines[i]), 1),
            );
        }
        texts.extend(["[", "- - -", "a: *b", "\t", "nodes: 5", "{{{"].map(String::from));
        for text in texts {
            let file = Path::new("sample.yaml");
            match parse_flow(file, &text) {
                Ok((flow, spans)) => {
                    validate::check_flow(file, &flow, &spans, known);
                }
                Err(d) => assert!(d.iter().all(|d| d.line >= 1 && d.col >= 1), "{d:?}"),
            }
        }
    }

    #[test]
    fn diagnostics_display_and_sort() {
        let d = |file: &str, line, col| Diagnostic {
            file: file.into(),
            line,
            col,
            message: "m".into(),
        };
        assert_eq!(d("f/a.yaml", 3, 7).to_string(), "f/a.yaml:3:7: m");
        let mut v = [d("b", 1, 1), d("a", 10, 1), d("a", 2, 5), d("a", 2, 1)];
        v.sort();
        let order: Vec<String> = v.iter().map(|d| d.to_string()).collect();
        assert_eq!(order, ["a:2:1: m", "a:2:5: m", "a:10:1: m", "b:1:1: m"]);
    }

    #[test]
    fn prompt_sets_fall_back_to_the_default_language() {
        let mut set = PromptSet::default();
        let p = |n: &str| Arc::new(Prompt::from_pcm(n.into(), vec![0; 160]));
        set.insert("cmn", "welcome", p("cmn/welcome"));
        set.insert("cmn", "bye", p("cmn/bye"));
        set.insert("mn", "welcome", p("mn/welcome"));
        assert_eq!(set.len(), 3);
        assert_eq!(set.languages(), ["cmn", "mn"]);
        assert!(set.get("mn", "bye").is_none());
        assert_eq!(set.resolve("mn", "cmn", "bye").unwrap().name(), "cmn/bye");
        assert_eq!(
            set.resolve("mn", "cmn", "welcome").unwrap().name(),
            "mn/welcome"
        );
        assert!(set.resolve("mn", "cmn", "nothing").is_none());
    }

    #[test]
    fn hashes_are_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn committed_schema_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ivr-flows/flow.schema.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == Flow::json_schema(),
            "{} is out of date: run `cargo run -- flows schema > ivr-flows/flow.schema.json`",
            path.display()
        );
    }
}
