//! `hotline flows simulate` over every branch of the shipped `main` and
//! `survey` flows: keys, timeouts, wrong keys, lookups and the time of day.

use std::process::Command;

struct Sim {
    lines: Vec<String>,
}

impl Sim {
    fn result(&self) -> &str {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix("result: "))
            .unwrap_or_else(|| panic!("no result line:\n{}", self.lines.join("\n")))
    }

    fn path(&self) -> Vec<&str> {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix("path: "))
            .unwrap()
            .split(" > ")
            .collect()
    }

    fn visited(&self, node: &str) -> bool {
        self.path().contains(&node)
    }

    fn played(&self, prompt: &str) -> bool {
        self.lines
            .iter()
            .any(|l| l.contains(" play ") && l.contains(&format!("/{prompt}")))
    }
}

fn simulate(flow: &str, digits: &str, extra: &[&str]) -> Sim {
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(repo)
        .args(["flows", "simulate", flow, "--digits", digits])
        .args(["--at", "2026-11-27T10:00+08:00", "--caller", "13800000000"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "simulate {flow} {digits} {extra:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Sim {
        lines: stdout.lines().map(str::to_owned).collect(),
    }
}

#[test]
fn main_menu_branches() {
    // The first key picks the language (1: Mandarin); then the main menu.
    let cases = [
        (
            "1,1,1",
            "queue emergency (priority 9)",
            "main:emergency_water",
        ),
        (
            "1,1,2",
            "queue emergency (priority 9)",
            "main:emergency_power",
        ),
        (
            "1,1,3",
            "queue emergency (priority 9)",
            "main:emergency_gas",
        ),
        (
            "1,1,4",
            "queue emergency (priority 9)",
            "main:emergency_heating",
        ),
        (
            "1,1,5",
            "queue emergency (priority 9)",
            "main:emergency_disaster",
        ),
        ("1,2", "queue general (priority 5)", "main:general"),
        ("1,3", "queue enterprise (priority 5)", "main:enterprise"),
        ("1,0", "queue operator (priority 5)", "main:operator"),
        ("1,1,0", "queue operator (priority 5)", "main:operator"),
    ];
    for (digits, result, node) in cases {
        let sim = simulate("main", digits, &[]);
        assert_eq!(sim.result(), result, "{digits}\n{}", sim.lines.join("\n"));
        assert!(
            sim.visited(node),
            "{digits}: {node} not in {:?}",
            sim.path()
        );
        assert!(
            sim.played("emergency_guidance"),
            "{digits}: guidance not played"
        );
    }
}

#[test]
fn language_choice() {
    let mandarin = simulate("main", "1,2", &[]);
    assert!(mandarin.visited("main:lang_cmn"));
    assert!(mandarin.played("main_menu"));
    let mongolian = simulate("main", "2,2", &[]);
    assert!(mongolian.visited("main:lang_mn"));
    assert!(
        mongolian
            .lines
            .iter()
            .any(|l| l.contains("play mn/main_menu")),
        "the Mongolian set is asked for (falling back to Mandarin audio)"
    );
    assert!(
        mongolian.visited("main:mongolian"),
        "a Mongolian caller reaches the Mongolian-language desk: {:?}",
        mongolian.path()
    );
    assert!(mandarin.visited("main:general"), "{:?}", mandarin.path());
    let mongolian_operator = simulate("main", "2,0", &[]);
    assert!(mongolian_operator.visited("main:mongolian"));
    let silent = simulate("main", "T,2", &[]);
    assert!(silent.visited("main:lang_cmn"), "no key: Mandarin");
    let wrong = simulate("main", "7,2", &[]);
    assert!(wrong.visited("main:lang_cmn"), "a wrong key: Mandarin");
    let zero = simulate("main", "0", &[]);
    assert_eq!(zero.result(), "queue operator (priority 5)");
}

#[test]
fn nobody_is_trapped_in_the_main_menu() {
    // Nothing pressed at all: two rounds of the menu, then a person.
    let silent = simulate("main", "", &[]);
    assert_eq!(silent.result(), "queue operator (priority 5)");
    assert!(
        silent
            .lines
            .iter()
            .any(|l| l.contains("leave main:main_menu via timeout"))
    );
    assert!(silent.played("no_input"));
    // Wrong keys: the invalid notice, then a person.
    let wrong = simulate("main", "1,9,9", &[]);
    assert_eq!(wrong.result(), "queue operator (priority 5)");
    assert!(wrong.played("invalid"));
    assert!(
        wrong
            .lines
            .iter()
            .any(|l| l.contains("leave main:main_menu via invalid"))
    );
    // A wrong key and then a good one.
    let recovered = simulate("main", "1,9,2", &[]);
    assert_eq!(recovered.result(), "queue general (priority 5)");
    // In the emergency menu, silence and wrong keys still reach the desk.
    let urgent_silent = simulate("main", "1,1,T,T", &[]);
    assert_eq!(urgent_silent.result(), "queue emergency (priority 9)");
    let urgent_wrong = simulate("main", "1,1,8,8", &[]);
    assert_eq!(urgent_wrong.result(), "queue emergency (priority 9)");
}

#[test]
fn repeat_callers_get_a_priority_bump() {
    for (digits, normal, bumped) in [
        (
            "1,2",
            "queue general (priority 5)",
            "queue general (priority 7)",
        ),
        (
            "1,3",
            "queue enterprise (priority 5)",
            "queue enterprise (priority 7)",
        ),
        (
            "1,0",
            "queue operator (priority 5)",
            "queue operator (priority 7)",
        ),
        (
            "1,T,T",
            "queue operator (priority 5)",
            "queue operator (priority 7)",
        ),
    ] {
        assert_eq!(simulate("main", digits, &[]).result(), normal, "{digits}");
        let sim = simulate("main", digits, &["--open-order"]);
        assert_eq!(sim.result(), bumped, "{digits}");
        assert!(sim.played("repeat_caller_priority"));
    }
}

#[test]
fn blocked_numbers_hear_the_notice_and_are_hung_up() {
    let sim = simulate("main", "1,2", &["--blocked"]);
    assert_eq!(sim.result(), "hang up");
    assert!(sim.played("blocked_notice"));
    assert!(!sim.visited("main:welcome"));
}

#[test]
fn order_status_lookup() {
    let found = simulate(
        "main",
        "1,4,20261127001#,2",
        &["--order-status", "handling"],
    );
    assert!(
        found.played("order_status_handling"),
        "{}",
        found.lines.join("\n")
    );
    assert_eq!(
        found.result(),
        "queue general (priority 5)",
        "back at the menu"
    );
    let missing = simulate("main", "1,4,20261127001#,2", &[]);
    assert!(missing.played("order_not_found"));
    let silent = simulate("main", "1,4,T,T,T,2", &[]);
    assert!(silent.visited("main:order_lookup"));
    assert_eq!(silent.result(), "queue general (priority 5)");
}

#[test]
fn survey_ratings() {
    for (digits, score) in [("1", 1), ("2", 2), ("3", 3), ("5,2", 2)] {
        let sim = simulate("survey", digits, &[]);
        assert_eq!(sim.result(), "hang up");
        assert!(
            sim.lines
                .iter()
                .any(|l| l.ends_with(&format!("survey score {score}"))),
            "{digits}:\n{}",
            sim.lines.join("\n")
        );
        assert!(sim.played("survey_thanks"));
        assert!(sim.visited("survey:done"));
    }
    let silent = simulate("survey", "", &[]);
    assert!(!silent.lines.iter().any(|l| l.contains("survey score")));
    assert!(silent.visited("survey:done_unrated"));
    assert!(silent.played("goodbye"));
    let wrong = simulate("survey", "7,8", &[]);
    assert!(wrong.visited("survey:done_unrated"));
    assert!(wrong.played("invalid"));
}

#[test]
fn simulation_is_deterministic_and_bad_input_is_explained() {
    let a = simulate("main", "1,9,T,2", &[]);
    let b = simulate("main", "1,9,T,2", &[]);
    assert_eq!(a.lines, b.lines);
    let repo = env!("CARGO_MANIFEST_DIR");
    let bad = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(repo)
        .args(["flows", "simulate", "main", "--digits", "1,x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--digits"));
    let missing = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(repo)
        .args(["flows", "simulate", "nope"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));
}

fn simulate_at(digits: &str, at: &str) -> Sim {
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(repo)
        .args(["flows", "simulate", "main", "--digits", digits, "--at", at])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Sim {
        lines: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    }
}

/// The business desk keeps office hours on working days; the statutory
/// calendar decides what a working day is (holidays off, make-up days on).
#[test]
fn enterprise_desk_follows_office_hours_and_the_calendar() {
    let cases = [
        (
            "2026-11-27T10:00+08:00",
            "queue enterprise (priority 5)",
            "Friday morning",
        ),
        (
            "2026-11-27T08:29+08:00",
            "queue general (priority 5)",
            "before opening",
        ),
        (
            "2026-11-27T17:30+08:00",
            "queue general (priority 5)",
            "at closing",
        ),
        (
            "2026-11-27T20:00+08:00",
            "queue general (priority 5)",
            "Friday evening",
        ),
        (
            "2026-11-28T10:00+08:00",
            "queue general (priority 5)",
            "Saturday",
        ),
        (
            "2026-10-02T10:00+08:00",
            "queue general (priority 5)",
            "National Day holiday",
        ),
        (
            "2026-10-10T10:00+08:00",
            "queue enterprise (priority 5)",
            "make-up working Saturday",
        ),
    ];
    for (at, result, what) in cases {
        let sim = simulate_at("1,3", at);
        assert_eq!(
            sim.result(),
            result,
            "{what} ({at})\n{}",
            sim.lines.join("\n")
        );
        assert_eq!(
            sim.played("enterprise_closed"),
            result.contains("general"),
            "{what}"
        );
    }
}
