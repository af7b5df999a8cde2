//! IVR benchmarks: interpreter steps per second on the shipped main flow,
//! and the time to check and load (= reload) 100 flows of 100 nodes each.
//!
//! `cargo bench --bench ivr`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hotline::calendar::Calendar;
use hotline::ivr::interpreter::{
    Action, Answer, CallFacts, Event, FlowSource, Interpreter, Query, Trace,
};
use hotline::ivr::load::{CheckContext, load_dir};
use hotline::ivr::simulate::{Answers, Key, simulate};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

fn facts() -> CallFacts {
    CallFacts {
        caller: "13800138000".into(),
        wall_start: time::macros::datetime!(2026-11-27 10:00 +08:00),
        calendar: Arc::new(Calendar::default()),
        default_language: "cmn".into(),
    }
}

fn shipped() -> Arc<dyn FlowSource> {
    let set =
        load_dir(Path::new("ivr-flows"), &CheckContext::default()).expect("shipped flows pass");
    let map: HashMap<_, _> = set
        .flows
        .iter()
        .map(|(k, v)| (k.clone(), v.flow.clone()))
        .collect();
    Arc::new(map)
}

/// Runs the main flow with the interpreter alone (what a live call does),
/// answering prompts at once; returns the node steps taken.
fn drive(flows: &Arc<dyn FlowSource>, keys: &[Key]) -> u64 {
    let now = std::time::Instant::now();
    let mut it = Interpreter::start(flows.clone(), "main", facts(), now).unwrap();
    let mut keys = keys.iter();
    let mut steps = 0;
    loop {
        let mut playing = false;
        let mut asks = Vec::new();
        while let Some(action) = it.poll_action() {
            match action {
                Action::Play { .. } => playing = true,
                Action::StopPlayback => playing = false,
                Action::Ask(q) => asks.push(q),
                _ => {}
            }
        }
        while let Some(trace) = it.poll_trace() {
            if let Trace::Entered { .. } = trace {
                steps += 1;
            }
        }
        if it.outcome().is_some() {
            return steps;
        }
        if let Some(q) = asks.pop() {
            let answer = match q {
                Query::Blocked { .. } => Answer::Blocked(false),
                Query::OpenOrder { .. } => Answer::OpenOrder(false),
                Query::OrderStatus { .. } => Answer::OrderStatus(None),
            };
            it.handle(Event::Answer(answer), now);
            continue;
        }
        if playing {
            it.handle(Event::PlaybackDone, now);
            continue;
        }
        match keys.next() {
            Some(Key::Digit(d)) => it.handle(Event::Digit(*d), now),
            _ => {
                let at = it.poll_timeout().expect("waiting for a key");
                it.handle_timeout(at);
            }
        }
    }
}

fn interpreter(c: &mut Criterion) {
    let flows = shipped();
    // A caller who presses a wrong key, waits once, then takes the emergency
    // path: most node types of the main flow.
    let keys = [
        Key::Digit('1'),
        Key::Digit('9'),
        Key::Wait,
        Key::Digit('1'),
        Key::Digit('3'),
    ];
    let run = simulate(flows.clone(), "main", facts(), &keys, &Answers::default()).unwrap();
    let steps = run.path.len() as u64;
    let mut group = c.benchmark_group("ivr");
    group.throughput(Throughput::Elements(steps));
    assert_eq!(drive(&flows, &keys), steps);
    group.bench_function(BenchmarkId::new("interpreter_steps", steps), |b| {
        b.iter(|| drive(&flows, &keys))
    });
    group.bench_function(BenchmarkId::new("simulated_call_with_log", steps), |b| {
        b.iter(|| simulate(flows.clone(), "main", facts(), &keys, &Answers::default()).unwrap())
    });
    group.finish();
}

/// Writes `flows` flows of `nodes` nodes each (menus, plays, sets and a
/// queue, all valid) plus the prompts they use.
fn generate(dir: &Path, flows: usize, nodes: usize) {
    let prompts = dir.join("prompts/cmn");
    std::fs::create_dir_all(&prompts).unwrap();
    let wav = std::fs::read("ivr-flows/prompts/cmn/beep.wav").unwrap();
    let queue_prompts = hotline::ivr::validate::queue_prompts();
    for name in ["p", "invalid", "no_input", "hold_music"]
        .into_iter()
        .chain(queue_prompts)
    {
        std::fs::write(prompts.join(format!("{name}.wav")), &wav).unwrap();
    }
    for f in 0..flows {
        let mut text = format!("name: f{f}\nstart: n0\noperator: person\nnodes:\n");
        for i in 0..nodes - 1 {
            let next = format!("n{}", i + 1);
            let last = i + 1 == nodes - 1;
            let next = if last { "person".to_string() } else { next };
            match i % 3 {
                0 => text.push_str(&format!(
                    "  - id: n{i}\n    type: menu\n    prompts: [p]\n    branches: {{\"1\": {next}, \"2\": person}}\n"
                )),
                1 => text.push_str(&format!("  - id: n{i}\n    type: play\n    prompts: [p]\n    next: {next}\n")),
                _ => text.push_str(&format!("  - id: n{i}\n    type: set\n    vars: {{step: \"{i}\"}}\n    next: {next}\n")),
            }
        }
        text.push_str("  - id: person\n    type: queue\n    queue: general\n");
        std::fs::write(dir.join(format!("f{f}.yaml")), text).unwrap();
    }
}

fn check_and_reload(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("hotline-bench-flows-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    generate(&dir, 100, 100);
    let mut ctx = CheckContext::default();
    ctx.required_flows.clear();
    let set = load_dir(&dir, &ctx).expect("generated flows pass");
    assert_eq!(set.node_count(), 10_000);
    let mut group = c.benchmark_group("ivr");
    group.sample_size(10);
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("check_and_load_100_flows_x_100_nodes", |b| {
        b.iter(|| load_dir(&dir, &ctx).unwrap())
    });
    group.finish();
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, interpreter, check_and_reload);
criterion_main!(benches);
