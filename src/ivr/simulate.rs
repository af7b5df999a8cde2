//! The simulator: runs a flow through the interpreter on a virtual clock,
//! with scripted keys and lookup answers, and reports every step.
//!
//! Deterministic by construction: prompts finish at once, a scripted key is
//! pressed when the flow waits for one (after its prompts), `T` lets the
//! wait time out, and when the script runs out every further wait times out.
//! `hotline flows simulate` prints the steps; tests assert on them.

use super::interpreter::{
    Action, Answer, CallFacts, Event, FlowSource, Interpreter, Outcome, Query, Trace,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One scripted caller move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Digit(char),
    /// Press nothing until the wait times out.
    Wait,
}

/// Parses `1,2,T,123#`: each entry is keys pressed one after another; `T`
/// (or `timeout`) is a wait.
pub fn parse_keys(text: &str) -> Result<Vec<Key>, String> {
    let mut keys = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry.eq_ignore_ascii_case("t") || entry.eq_ignore_ascii_case("timeout") {
            keys.push(Key::Wait);
            continue;
        }
        for c in entry.chars() {
            if !(c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')) {
                return Err(format!(
                    "{c:?} is not a key (0-9, *, #, A-D, or T for a timeout)"
                ));
            }
            keys.push(Key::Digit(c));
        }
    }
    Ok(keys)
}

/// Scripted answers to the interpreter's questions.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    pub open_order: bool,
    pub blocked: bool,
    /// Status code for any order number asked about; `None`: not found.
    pub order_status: Option<String>,
}

/// What a simulated run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// One line per step.
    pub lines: Vec<String>,
    pub outcome: Option<Outcome>,
    /// `flow:node` ids in order.
    pub path: Vec<String>,
    pub prompts: Vec<String>,
    pub survey: Option<u8>,
    pub callback: bool,
}

/// Longest a simulated call may run before it is called stuck.
const LIMIT: Duration = Duration::from_secs(3600);

/// Runs `flow` with the given keys and answers.
pub fn simulate(
    flows: Arc<dyn FlowSource>,
    flow: &str,
    facts: CallFacts,
    keys: &[Key],
    answers: &Answers,
) -> Result<Run, String> {
    let t0 = Instant::now();
    let mut now = t0;
    let mut it = Interpreter::start(flows, flow, facts, now)
        .ok_or_else(|| format!("no flow named {flow:?}"))?;
    let mut run = Run {
        lines: Vec::new(),
        outcome: None,
        path: Vec::new(),
        prompts: Vec::new(),
        survey: None,
        callback: false,
    };
    let mut keys = keys.iter().copied().peekable();
    let mut playing = false;
    let mut recording = false;
    let stamp = |now: Instant| format!("{:>7.1}s", now.duration_since(t0).as_secs_f64());
    loop {
        let mut progressed = false;
        while let Some(trace) = it.poll_trace() {
            progressed = true;
            run.lines.push(match trace {
                Trace::Entered { flow, node } => format!("{} enter {flow}:{node}", stamp(now)),
                Trace::Left { flow, node, via } => {
                    format!("{} leave {flow}:{node} via {via}", stamp(now))
                }
            });
        }
        let mut pending = Vec::new();
        while let Some(action) = it.poll_action() {
            pending.push(action);
        }
        progressed |= !pending.is_empty();
        for action in pending {
            match action {
                Action::Play { prompts, barge_in } => {
                    let names: Vec<String> = prompts
                        .iter()
                        .map(|p| format!("{}/{}", p.language, p.name))
                        .collect();
                    run.prompts.extend(names.iter().cloned());
                    let barge = if barge_in { "" } else { " (no barge-in)" };
                    run.lines
                        .push(format!("{} play {}{barge}", stamp(now), names.join(" ")));
                    playing = true;
                }
                Action::StopPlayback => {
                    run.lines.push(format!("{} stop playback", stamp(now)));
                    playing = false;
                }
                Action::Ask(query) => {
                    let (text, answer) = match query {
                        Query::OrderStatus { order_no } => (
                            format!(
                                "order {order_no}: {}",
                                answers.order_status.as_deref().unwrap_or("not found")
                            ),
                            Answer::OrderStatus(answers.order_status.clone()),
                        ),
                        Query::OpenOrder { caller, days } => (
                            format!(
                                "open order for {caller} in {days} days: {}",
                                answers.open_order
                            ),
                            Answer::OpenOrder(answers.open_order),
                        ),
                        Query::Blocked { caller } => (
                            format!("{caller} blocked: {}", answers.blocked),
                            Answer::Blocked(answers.blocked),
                        ),
                    };
                    run.lines.push(format!("{} ask {text}", stamp(now)));
                    it.handle(Event::Answer(answer), now);
                }
                Action::Record { max_secs } => {
                    run.lines
                        .push(format!("{} record up to {max_secs}s", stamp(now)));
                    recording = true;
                }
                Action::StopRecording => run.lines.push(format!("{} stop recording", stamp(now))),
                Action::SurveyScore(n) => {
                    run.lines.push(format!("{} survey score {n}", stamp(now)));
                    run.survey = Some(n);
                }
                Action::CallbackRequested => {
                    run.lines.push(format!("{} callback requested", stamp(now)));
                    run.callback = true;
                }
                Action::Queue {
                    queue,
                    skills,
                    priority,
                    prompts,
                } => {
                    let skills = if skills.is_empty() {
                        String::new()
                    } else {
                        format!(" skills {}", skills.join(","))
                    };
                    run.lines.push(format!(
                        "{} queue {queue} priority {priority}{skills}",
                        stamp(now)
                    ));
                    let names: Vec<String> = prompts
                        .iter()
                        .map(|p| format!("{}/{}", p.language, p.name))
                        .collect();
                    if !names.is_empty() {
                        run.lines.push(format!(
                            "{} play {} then hold",
                            stamp(now),
                            names.join(" ")
                        ));
                    }
                    run.prompts.extend(names);
                }
                Action::Transfer { target, prompts } => {
                    run.lines.push(format!("{} transfer {target}", stamp(now)));
                    run.prompts
                        .extend(prompts.iter().map(|p| format!("{}/{}", p.language, p.name)));
                }
                Action::Hangup => run.lines.push(format!("{} hang up", stamp(now))),
            }
        }
        if progressed {
            continue;
        }
        if it.outcome().is_some() {
            break;
        }
        if now.duration_since(t0) > LIMIT {
            return Err("the flow ran for an hour without ending".into());
        }
        if playing {
            playing = false;
            it.handle(Event::PlaybackDone, now);
            continue;
        }
        if recording {
            recording = false;
            now += Duration::from_secs(5);
            run.lines.push(format!("{} recording done", stamp(now)));
            it.handle(Event::RecordingDone, now);
            continue;
        }
        match it.poll_timeout() {
            Some(deadline) => match keys.peek() {
                Some(Key::Digit(d)) => {
                    let d = *d;
                    keys.next();
                    now += Duration::from_millis(500);
                    run.lines.push(format!("{} key {d}", stamp(now)));
                    it.handle(Event::Digit(d), now);
                }
                Some(Key::Wait) | None => {
                    if keys.peek() == Some(&Key::Wait) {
                        keys.next();
                    }
                    now = now.max(deadline);
                    run.lines.push(format!("{} timeout", stamp(now)));
                    it.handle_timeout(now);
                }
            },
            None => return Err(format!("the flow is stuck at {:?}", it.position())),
        }
    }
    run.outcome = it.outcome().cloned();
    run.path = it.path().to_vec();
    let end = match &run.outcome {
        Some(Outcome::Queue { queue, priority }) => format!("queue {queue} (priority {priority})"),
        Some(Outcome::Transfer { target }) => format!("transfer to {target}"),
        Some(Outcome::Hangup) | None => "hang up".into(),
    };
    run.lines.push(format!("result: {end}"));
    Ok(run)
}

/// Parses `--at`: RFC 3339 with or without seconds
/// (`2026-10-01T20:00+08:00`, `2026-10-01T20:00:00Z`).
pub fn parse_at(text: &str) -> Result<time::OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let (stamp, offset) = match text.rfind(['+', '-']).filter(|&i| i > 10) {
        Some(i) => (&text[..i], &text[i..]),
        None => match text.strip_suffix('Z') {
            Some(stamp) => (stamp, "Z"),
            None => (text, ""),
        },
    };
    let with_seconds = format!("{stamp}:00{offset}");
    time::OffsetDateTime::parse(&with_seconds, &Rfc3339)
        .map_err(|_| format!("{text:?}: expected a time like 2026-10-01T20:00+08:00"))
}

/// `hotline flows simulate`: loads and checks the flows folder of `config`,
/// then runs `flow` and returns the lines to print.
pub fn run_cli(
    config: &crate::config::Config,
    flow: &str,
    keys: &[Key],
    at: Option<time::OffsetDateTime>,
    caller: &str,
    answers: &Answers,
) -> Result<Vec<String>, String> {
    use super::load::{CheckContext, load_dir};
    let set = load_dir(&config.ivr.flows_dir, &CheckContext::from_config(config)).map_err(
        |problems| {
            let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            format!("the flows do not pass the check:\n{}", lines.join("\n"))
        },
    )?;
    let calendar =
        crate::calendar::Calendar::load_dir(&config.ivr.calendar_dir).map_err(|e| e.to_string())?;
    let offset = super::clock::parse_offset(&config.ivr.utc_offset).unwrap_or(time::UtcOffset::UTC);
    let wall_start = at.unwrap_or_else(|| time::OffsetDateTime::now_utc().to_offset(offset));
    let facts = CallFacts {
        caller: caller.to_owned(),
        wall_start,
        calendar: Arc::new(calendar),
        default_language: config.ivr.default_language.clone(),
    };
    let mut map = std::collections::HashMap::new();
    for (name, loaded) in &set.flows {
        map.insert(name.clone(), loaded.flow.clone());
    }
    let run = simulate(Arc::new(map), flow, facts, keys, answers)?;
    let mut lines = vec![format!(
        "simulating {flow} at {} for caller {caller}",
        wall_start
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    )];
    lines.extend(run.lines);
    lines.push(format!("path: {}", run.path.join(" > ")));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Calendar;
    use crate::ivr::model::Flow;
    use std::collections::HashMap;
    use time::macros::datetime;

    const FLOW: &str = r##"
name: t
start: blocked
operator: person
nodes:
  - id: blocked
    type: branch
    cases:
      - when: {blocked: true}
        goto: refuse
    otherwise: night
  - id: refuse
    type: hangup
    prompts: [blocked_notice]
  - id: night
    type: branch
    cases:
      - when: {time: {from: "22:00", to: "06:00"}}
        goto: night_notice
      - when: {holiday: true}
        goto: holiday_notice
    otherwise: repeat
  - id: night_notice
    type: play
    prompts: [night]
    next: repeat
  - id: holiday_notice
    type: play
    prompts: [holiday]
    next: repeat
  - id: repeat
    type: branch
    cases:
      - when: {repeat_caller: {days: 7}}
        goto: bump
    otherwise: menu
  - id: bump
    type: set
    vars: {bumped: "yes"}
    next: menu
  - id: menu
    type: menu
    prompts: [main_menu]
    branches:
      "1": urgent
      "2": general
      "4": lookup
      "5": rate
      "6": sub
      "7": leave_message
      "8": account
      "9": mongolian
  - id: urgent
    type: branch
    cases:
      - when: {var: {name: bumped, equals: "yes"}}
        goto: urgent_high
    otherwise: urgent_normal
  - id: urgent_high
    type: queue
    queue: emergency
    priority: 9
  - id: urgent_normal
    type: queue
    queue: emergency
    priority: 8
  - id: general
    type: queue
    queue: general
    prompts: [please_hold]
  - id: person
    type: queue
    queue: operator
  - id: lookup
    type: lookup_order
    prompts: [order_ask_number]
    next: menu
  - id: rate
    type: survey
    prompts: [survey_intro]
    scale: 3
    thanks_prompts: [survey_thanks]
    next: bye
  - id: bye
    type: hangup
  - id: sub
    type: subflow
    flow: inner
    next: menu
  - id: leave_message
    type: record
    prompts: [record_intro]
    max_secs: 30
    next: bye
  - id: account
    type: gather
    prompts: [ask_account]
    collect: {min_digits: 3, max_digits: 6, terminator: "#"}
    var: account
    next: read_back
  - id: read_back
    type: say
    say: digits
    value: "${account}"
    next: bye
  - id: mongolian
    type: language
    language: mn
    next: menu
"##;

    const INNER: &str = r#"
name: inner
start: hello
nodes:
  - id: hello
    type: play
    prompts: [inner_hello]
    next: "@return"
"#;

    fn flows() -> Arc<dyn FlowSource> {
        let mut map = HashMap::new();
        for text in [FLOW, INNER] {
            let f: Flow = serde_yaml_ng::from_str(text).unwrap();
            map.insert(f.name.clone(), Arc::new(f));
        }
        Arc::new(map)
    }

    fn facts(at: time::OffsetDateTime) -> CallFacts {
        CallFacts {
            caller: "13800138000".into(),
            wall_start: at,
            calendar: Arc::new(Calendar::from_dates(
                &[time::macros::date!(2026 - 10 - 01)],
                &[],
            )),
            default_language: "cmn".into(),
        }
    }

    const DAY: time::OffsetDateTime = datetime!(2026-11-27 10:00 +08:00);

    fn sim(keys: &str, answers: &Answers) -> Run {
        simulate(
            flows(),
            "t",
            facts(DAY),
            &parse_keys(keys).unwrap(),
            answers,
        )
        .unwrap()
    }

    fn queue(run: &Run) -> (String, u8) {
        match run.outcome.clone() {
            Some(Outcome::Queue { queue, priority }) => (queue, priority),
            other => panic!("not queued: {other:?}\n{}", run.lines.join("\n")),
        }
    }

    #[test]
    fn menu_key_routes_to_queue() {
        let run = sim("2", &Answers::default());
        assert_eq!(queue(&run), ("general".into(), 0));
        assert!(run.prompts.contains(&"cmn/please_hold".to_string()));
        assert_eq!(
            run.lines.last().unwrap(),
            "result: queue general (priority 0)"
        );
    }

    #[test]
    fn zero_and_silence_reach_a_person() {
        assert_eq!(queue(&sim("0", &Answers::default())).0, "operator");
        let silent = sim("", &Answers::default());
        assert_eq!(queue(&silent).0, "operator");
        // Prompted three times (retries 2), with the no-input notice between.
        let menus = silent
            .prompts
            .iter()
            .filter(|p| *p == "cmn/main_menu")
            .count();
        assert_eq!(menus, 3, "{}", silent.lines.join("\n"));
        assert_eq!(
            silent
                .prompts
                .iter()
                .filter(|p| *p == "cmn/no_input")
                .count(),
            2
        );
        assert!(
            silent
                .lines
                .iter()
                .any(|l| l.contains("leave t:menu via timeout"))
        );
    }

    #[test]
    fn invalid_keys_then_a_good_one() {
        let run = sim("3,2", &Answers::default());
        assert!(run.prompts.contains(&"cmn/invalid".to_string()));
        assert_eq!(queue(&run).0, "general");
        let run = sim("3,3,3", &Answers::default());
        assert_eq!(
            queue(&run).0,
            "operator",
            "invalid three times goes to a person"
        );
    }

    #[test]
    fn blocked_callers_are_turned_away() {
        let run = sim(
            "2",
            &Answers {
                blocked: true,
                ..Answers::default()
            },
        );
        assert_eq!(run.outcome, Some(Outcome::Hangup));
        assert!(run.prompts.contains(&"cmn/blocked_notice".to_string()));
    }

    #[test]
    fn repeat_callers_get_priority() {
        let normal = sim("1", &Answers::default());
        assert_eq!(queue(&normal), ("emergency".into(), 8));
        let repeat = sim(
            "1",
            &Answers {
                open_order: true,
                ..Answers::default()
            },
        );
        assert_eq!(queue(&repeat), ("emergency".into(), 9));
    }

    #[test]
    fn time_and_holiday_branches() {
        let night = simulate(
            flows(),
            "t",
            facts(datetime!(2026-11-27 23:30 +08:00)),
            &[Key::Digit('2')],
            &Answers::default(),
        )
        .unwrap();
        assert!(night.prompts.contains(&"cmn/night".to_string()));
        let holiday = simulate(
            flows(),
            "t",
            facts(datetime!(2026-10-01 12:00 +08:00)),
            &[Key::Digit('2')],
            &Answers::default(),
        )
        .unwrap();
        assert!(holiday.prompts.contains(&"cmn/holiday".to_string()));
        let day = sim("2", &Answers::default());
        assert!(
            !day.prompts
                .iter()
                .any(|p| p.ends_with("night") || p.ends_with("holiday"))
        );
    }

    #[test]
    fn order_lookup_found_and_not_found() {
        let found = sim(
            "4,20261127001#,2",
            &Answers {
                order_status: Some("handling".into()),
                ..Answers::default()
            },
        );
        assert!(
            found
                .prompts
                .contains(&"cmn/order_status_handling".to_string()),
            "{}",
            found.lines.join("\n")
        );
        assert_eq!(queue(&found).0, "general", "back to the menu afterwards");
        let missing = sim("4,9999#,2", &Answers::default());
        assert!(missing.prompts.contains(&"cmn/order_not_found".to_string()));
    }

    #[test]
    fn survey_scores_and_rejects_out_of_scale() {
        let run = sim("5,2", &Answers::default());
        assert_eq!(run.survey, Some(2));
        assert_eq!(run.outcome, Some(Outcome::Hangup));
        let run = sim("5,7,1", &Answers::default());
        assert_eq!(run.survey, Some(1));
        assert!(run.prompts.contains(&"cmn/invalid".to_string()));
        let run = sim("5,T,T,T", &Answers::default());
        assert_eq!(run.survey, None);
        assert_eq!(run.outcome, Some(Outcome::Hangup));
    }

    #[test]
    fn subflow_returns() {
        let run = sim("6,2", &Answers::default());
        assert!(run.path.contains(&"inner:hello".to_string()));
        assert_eq!(queue(&run).0, "general");
    }

    #[test]
    fn record_and_gather_and_say() {
        let run = sim("7", &Answers::default());
        assert!(run.lines.iter().any(|l| l.contains("record up to 30s")));
        assert!(run.prompts.contains(&"cmn/beep".to_string()));
        let run = sim("8,4321#", &Answers::default());
        let said: Vec<_> = run
            .prompts
            .iter()
            .filter(|p| p.contains("digit_"))
            .cloned()
            .collect();
        assert_eq!(
            said,
            ["cmn/digit_4", "cmn/digit_3", "cmn/digit_2", "cmn/digit_1"]
        );
        // Too short: retried.
        let run = sim("8,12#,555#", &Answers::default());
        assert!(run.prompts.contains(&"cmn/invalid".to_string()));
    }

    #[test]
    fn language_switch_changes_prompt_set() {
        let run = sim("9,2", &Answers::default());
        assert!(
            run.prompts.contains(&"mn/please_hold".to_string()),
            "{:?}",
            run.prompts
        );
    }

    #[test]
    fn runs_are_deterministic() {
        let a = sim("3,T,4,123#,2", &Answers::default());
        let b = sim("3,T,4,123#,2", &Answers::default());
        assert_eq!(a, b);
    }

    #[test]
    fn timing_is_on_the_virtual_clock() {
        let run = sim("", &Answers::default());
        // Three 5 s waits for the first key.
        assert!(
            run.lines
                .iter()
                .any(|l| l.trim_start().starts_with("15.0s")),
            "{}",
            run.lines.join("\n")
        );
    }

    #[test]
    fn a_loop_without_input_is_cut() {
        let looping: Flow = serde_yaml_ng::from_str(
            "name: l\nstart: a\nnodes:\n  - {id: a, type: set, vars: {}, next: b}\n  - {id: b, type: set, vars: {}, next: a}\n",
        )
        .unwrap();
        let mut map = HashMap::new();
        map.insert("l".to_string(), Arc::new(looping));
        let run = simulate(Arc::new(map), "l", facts(DAY), &[], &Answers::default()).unwrap();
        assert_eq!(run.outcome, Some(Outcome::Hangup));
    }

    #[test]
    fn at_parses_with_or_without_seconds() {
        assert_eq!(
            parse_at("2026-10-01T20:00+08:00").unwrap(),
            datetime!(2026-10-01 20:00 +08:00)
        );
        assert_eq!(
            parse_at("2026-10-01T20:00:30Z").unwrap(),
            datetime!(2026-10-01 20:00:30 UTC)
        );
        assert_eq!(
            parse_at("2026-10-01T20:00Z").unwrap(),
            datetime!(2026-10-01 20:00 UTC)
        );
        assert!(parse_at("tomorrow").is_err());
    }

    #[test]
    fn keys_parse() {
        assert_eq!(
            parse_keys("1, 2#,T").unwrap(),
            vec![Key::Digit('1'), Key::Digit('2'), Key::Digit('#'), Key::Wait]
        );
        assert!(parse_keys("x").is_err());
    }
}
