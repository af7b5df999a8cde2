//! `hotline flows check` and `hotline flows schema`, run as the real binary:
//! one broken fixture per kind of error (each must fail with the exact
//! `file:line:col:` of the offending YAML element), a valid fixture, and the
//! flows that ship.
//!
//! Fixtures live in `tests/fixtures/flows/<kind>/`; each test copies one
//! into a scratch folder and writes its prompts there as tiny WAV files, so
//! a fixture is only YAML and a missing or broken prompt is one line here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Prompts every fixture's flows play.
const PROMPTS: &[&str] = &[
    "welcome",
    "main_menu",
    "invalid",
    "no_input",
    "please_hold",
    "hold_music",
    "goodbye",
    "survey_intro",
    // What a queue node plays besides its own prompts.
    "callback_offer",
    "callback_confirm",
    "queue_timeout",
    // And when an agent's transfer rings or fails.
    "transfer_wait",
    "transfer_failed",
];

/// Prompts a `say` node needs.
const SAY: &[&str] = hotline::ivr::validate::SAY_PROMPTS;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A 16-bit PCM WAV of 0.1 s of a quiet tone.
fn wav(rate: u32, channels: u16) -> Vec<u8> {
    let frames = rate as usize / 10;
    let mut data = Vec::new();
    for i in 0..frames {
        let s = ((i as f64 * 0.3).sin() * 3000.0) as i16;
        for _ in 0..channels {
            data.extend_from_slice(&s.to_le_bytes());
        }
    }
    let block = channels * 2;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(&data);
    v
}

/// A scratch folder holding a copy of fixture `kind` (as `<root>/<kind>`)
/// with every prompt of [`PROMPTS`] and [`SAY`] except `omit`.
fn fixture(kind: &str, omit: &[&str]) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("flows-check-{}-{kind}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/flows")
        .join(kind);
    let to = root.join(kind);
    let prompts = to.join("prompts/cmn");
    std::fs::create_dir_all(&prompts).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    for name in PROMPTS.iter().chain(SAY) {
        if !omit.contains(name) {
            std::fs::write(prompts.join(format!("{name}.wav")), wav(8000, 1)).unwrap();
        }
    }
    root
}

/// Runs `hotline flows check ARGS...` in `dir` (no sip-config there, so
/// the embedded default config applies unless `--config` is given).
fn check(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(dir)
        .args(["flows", "check"])
        .args(args)
        .env("HOTLINE_LOG", "warn")
        .output()
        .expect("run hotline")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks fixture `kind` and asserts exit 1 with exactly `expected` lines,
/// each given as (`file:line:col: ` prefix, text the message contains).
fn fails_with(kind: &str, omit: &[&str], expected: &[(&str, &str)]) -> String {
    let root = fixture(kind, omit);
    let out = check(&root, &[kind]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{kind}: expected exit 1\nstdout:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        expected.len(),
        "{kind}: expected {} diagnostics, got:\n{text}",
        expected.len()
    );
    for (line, (prefix, needle)) in lines.iter().zip(expected) {
        let prefix = format!("{kind}/{prefix} ");
        assert!(
            line.starts_with(&prefix),
            "{kind}: want {prefix:?}, got {line:?}"
        );
        assert!(line.contains(needle), "{kind}: want {needle:?} in {line:?}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("problem"), "{kind}: stderr {stderr}");
    let _ = std::fs::remove_dir_all(&root);
    text
}

#[test]
fn valid_flows_pass_with_a_summary() {
    let root = fixture("valid", &[]);
    let out = check(&root, &["valid"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout(&out),
        format!(
            "valid: 2 flows, 10 nodes, {} prompts (cmn): ok\n",
            PROMPTS.len() + SAY.len()
        )
    );
}

#[test]
fn schema_errors_point_at_the_field() {
    fails_with(
        "schema_field",
        &[],
        &[(
            "main.yaml:9:5:",
            "node \"welcome\": unknown field `promts`, expected one of `prompts`, `barge_in`, `next`",
        )],
    );
    fails_with(
        "schema_type",
        &[],
        &[(
            "main.yaml:43:11:",
            "node \"bye\": unknown node type `hang_up`, expected one of",
        )],
    );
    let text = fails_with(
        "schema_syntax",
        &[],
        &[("main.yaml:20:15:", "did not find expected ',' or ']'")],
    );
    assert!(!text.contains("at line 20"), "{text}");
}

#[test]
fn flow_name_must_match_the_file() {
    fails_with(
        "name",
        &[],
        &[(
            "main.yaml:1:7:",
            "flow name \"mian\" must match the file name \"main\" (main.yaml)",
        )],
    );
}

#[test]
fn duplicate_node_ids() {
    fails_with(
        "duplicate_id",
        &[],
        &[(
            "main.yaml:46:9:",
            "duplicate node id \"bye\" (first defined at line 42)",
        )],
    );
}

#[test]
fn transitions_to_missing_nodes() {
    fails_with(
        "missing_target",
        &[],
        &[(
            "main.yaml:10:11:",
            "next goes to \"mneu\", which is not a node of this flow (did you mean \"menu\"?)",
        )],
    );
}

#[test]
fn unreachable_nodes() {
    fails_with(
        "unreachable",
        &[],
        &[(
            "main.yaml:46:9:",
            "node \"orphan\" is unreachable from start \"welcome\"",
        )],
    );
}

#[test]
fn loops_that_wait_for_no_input() {
    fails_with(
        "spin_loop",
        &[],
        &[(
            "main.yaml:47:9:",
            "loop without input: announce -> count -> announce",
        )],
    );
}

#[test]
fn missing_prompts() {
    fails_with(
        "missing_prompt",
        &[],
        &[(
            "main.yaml:14:26:",
            "prompt \"menu_extra\" not found: no prompts/cmn/menu_extra.wav",
        )],
    );
    // A default prompt the menu plays without naming it.
    fails_with(
        "valid",
        &["no_input"],
        &[
            (
                "main.yaml:12:5:",
                "prompt \"no_input\" (the default collect.timeout_prompts[0]) not found",
            ),
            (
                "survey.yaml:4:5:",
                "prompt \"no_input\" (the default collect.timeout_prompts[0]) not found",
            ),
        ],
    );
    // The hold prompt of the config, needed by queue nodes.
    fails_with(
        "valid",
        &["hold_music"],
        &[(
            "main.yaml:28:9:",
            "the hold prompt \"hold_music\" (ivr.hold_prompt): no prompts/cmn/hold_music.wav",
        )],
    );
}

#[test]
fn prompts_in_the_wrong_audio_format() {
    let root = fixture("bad_wav", &[]);
    let prompts = root.join("bad_wav/prompts/cmn");
    // Used by the flow: reported where the flow plays it.
    std::fs::write(prompts.join("welcome.wav"), wav(16000, 1)).unwrap();
    // Used by nothing: reported at the file.
    std::fs::write(prompts.join("unused.wav"), wav(8000, 2)).unwrap();
    let out = check(&root, &["bad_wav"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "bad_wav/main.yaml:9:15: prompt \"welcome\": prompts/cmn/welcome.wav cannot be played: \
         sample rate 16000 Hz, expected 8000 (prompts must be 8 kHz mono WAV, 16-bit PCM or G.711)\n\
         bad_wav/prompts/cmn/unused.wav:1:1: cannot be played: 2 channels, expected mono \
         (prompts must be 8 kHz mono WAV, 16-bit PCM or G.711)\n"
    );
}

#[test]
fn say_needs_its_digit_prompts() {
    fails_with(
        "say_prompts",
        &["digit_7", "ten_thousand"],
        &[
            (
                "main.yaml:22:9:",
                "a say node needs prompts missing from prompts/cmn/: digit_7, ten_thousand",
            ),
            // A queue reads the number of callers ahead with them too.
            (
                "main.yaml:28:9:",
                "a queue node needs prompts missing from prompts/cmn/: digit_7, ten_thousand",
            ),
            (
                "main.yaml:37:9:",
                "a queue node needs prompts missing from prompts/cmn/: digit_7, ten_thousand",
            ),
        ],
    );
}

#[test]
fn queues_and_trunks_must_be_in_the_config() {
    fails_with(
        "unknown_queue",
        &[],
        &[(
            "main.yaml:30:12:",
            "queue \"complaints\" is not in the config (queues: emergency, general, enterprise, mongolian, operator)",
        )],
    );
    fails_with(
        "transfer_target",
        &[],
        &[(
            "main.yaml:35:13:",
            "transfer target \"police\" is neither a trunk in the config (110, 119,",
        )],
    );
}

#[test]
fn the_config_names_the_queues() {
    let root = fixture("unknown_queue", &[]);
    let config = root.join("hotline.toml");
    std::fs::write(
        &config,
        "[[queue]]\nname = \"complaints\"\n\n[[queue]]\nname = \"operator\"\n",
    )
    .unwrap();
    let out = check(&root, &["unknown_queue", "--config", "hotline.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with(": ok\n"), "{}", stdout(&out));
}

#[test]
fn subflows_must_exist() {
    fails_with(
        "missing_subflow",
        &[],
        &[(
            "main.yaml:48:11:",
            "subflow \"surveys\" does not exist: no surveys.yaml in this folder",
        )],
    );
}

#[test]
fn every_menu_reaches_a_person() {
    fails_with(
        "no_person",
        &[],
        &[
            (
                "main.yaml:11:9:",
                "menu \"menu\": 0 does not reach a person; add a branch \"0\"",
            ),
            (
                "main.yaml:20:17:",
                "menu \"menu\": a caller who presses nothing goes to \"bye\", which never reaches a person",
            ),
        ],
    );
    fails_with(
        "operator_no_person",
        &[],
        &[(
            "main.yaml:4:11:",
            "operator \"bye\" never reaches a person: it must lead to a queue or transfer node",
        )],
    );
}

#[test]
fn collect_settings_make_sense() {
    fails_with(
        "collect",
        &[],
        &[
            (
                "main.yaml:16:19:",
                "collect: min_digits 2 is above max_digits 1",
            ),
            (
                "main.yaml:24:7:",
                "branch key \"1a\" must be keypad keys: digits, * or #",
            ),
            (
                "main.yaml:54:12:",
                "survey scale 12 must be between 1 and 9",
            ),
        ],
    );
}

#[test]
fn one_file_of_a_folder() {
    let root = fixture("mixed", &[]);
    // The folder: only other.yaml is broken.
    let out = check(&root, &["mixed"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "mixed/other.yaml:6:5: node \"a\": unknown field `promts`, expected `prompts`\n"
    );
    // main.yaml alone passes: its subflow to the broken flow still resolves.
    let out = check(&root, &["mixed/main.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "mixed/main.yaml: 1 flow, 8 nodes, {} prompts (cmn): ok\n",
            PROMPTS.len() + SAY.len()
        )
    );
    // other.yaml alone reports itself under the path as given.
    let out = check(&root.join("mixed"), &["other.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("other.yaml:6:5: "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_missing_folder_is_an_error() {
    let root = fixture("valid", &[]);
    let out = check(&root, &["nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("nowhere:1:1: cannot read the flows folder"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn shipped_flows_pass() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        repo.join("ivr-flows/main.yaml").is_file(),
        "ivr-flows/main.yaml is missing"
    );
    // No PATH: the config's ivr.flows_dir (sip-config/hotline.toml).
    let out = check(repo, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("ivr-flows: "), "{text}");
    assert!(text.ends_with(": ok\n"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["flows", "schema"])
        .output()
        .expect("run hotline");
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ivr-flows/flow.schema.json"),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert!(schema["properties"]["nodes"].is_object(), "{schema}");
}
