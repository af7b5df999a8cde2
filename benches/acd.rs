//! ACD router benchmarks: routing-decision latency with 1,000 seats and
//! 5,000 waiting calls (a seat becomes free → the router offers it a call),
//! for the shipped queue mix and for each strategy on its own; plus one more
//! call joining the 5,000 and a timer tick with nothing due.
//!
//! `cargo bench --bench acd`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use hotline::acd::router::{Action, CallId, Event, QueueRules, Router, Status, Strategy};

const SEATS: usize = 1_000;
const WAITING: u64 = 5_000;

const STRATEGIES: [(Strategy, &str); 6] = [
    (Strategy::LongestIdle, "longest-idle"),
    (Strategy::RoundRobin, "round-robin"),
    (Strategy::FewestCalls, "fewest-calls"),
    (Strategy::LeastTalkTime, "least-talk-time"),
    (Strategy::SkillsBased, "skills-based"),
    (Strategy::RingAll, "ring-all"),
];

/// A queue with the shipped defaults: 15 s ring, 30 s wrap-up, three
/// misses, position announced every 30 s.
fn queue(name: &str, strategy: Strategy) -> QueueRules {
    QueueRules {
        name: name.into(),
        strategy,
        skills: BTreeMap::new(),
        language: None,
        ring_timeout: Duration::from_secs(15),
        wrap_up: Duration::from_secs(30),
        max_misses: 3,
        overflow: None,
        max_wait: None,
        announce_every: Some(Duration::from_secs(30)),
    }
}

/// The five queues of `sip-config/hotline.toml` (timers included, so a tick
/// walks the same overflow and announcement rules as in production), with
/// the operator desk on round-robin. With `only`, every queue uses that
/// strategy but keeps its skill and language requirements, so whichever
/// call a freed seat takes, `only` picks the seat.
fn queues(only: Option<Strategy>) -> Vec<QueueRules> {
    let s = |mix| only.unwrap_or(mix);
    let secs = Duration::from_secs;
    vec![
        QueueRules {
            overflow: Some((secs(120), "operator".into())),
            max_wait: Some(secs(600)),
            ..queue("general", s(Strategy::LongestIdle))
        },
        QueueRules {
            skills: BTreeMap::from([("emergency".into(), 3)]),
            ring_timeout: secs(10),
            wrap_up: secs(60),
            announce_every: Some(secs(20)),
            ..queue("emergency", s(Strategy::SkillsBased))
        },
        QueueRules {
            skills: BTreeMap::from([("enterprise".into(), 2)]),
            overflow: Some((secs(90), "general".into())),
            ..queue("enterprise", s(Strategy::SkillsBased))
        },
        QueueRules {
            language: Some("mn".into()),
            overflow: Some((secs(60), "general".into())),
            ..queue("mongolian", s(Strategy::LongestIdle))
        },
        QueueRules {
            max_wait: Some(secs(900)),
            ..queue("operator", s(Strategy::RoundRobin))
        },
    ]
}

/// Deterministic scatter, so runs compare without a seeded RNG.
fn mix(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40
}

fn seat_id(i: usize) -> String {
    format!("{}", 10_000 + i)
}

/// A fifth of the seats on the emergency desk and a fifth on the enterprise
/// desk, levels 1-9 (some below the queues' minimum), a few on both, one in
/// twenty-five also speaking Mongolian; everyone speaks Mandarin.
fn seat_profile(i: usize) -> (BTreeMap<String, u8>, Vec<String>) {
    let level = 1 + (mix(i as u64) % 9) as u8;
    let mut skills = BTreeMap::new();
    match i % 10 {
        0 | 1 => {
            skills.insert("emergency".to_string(), level);
        }
        2 | 3 => {
            skills.insert("enterprise".to_string(), level);
        }
        _ => {}
    }
    if i % 50 == 7 {
        skills.insert("emergency".to_string(), 5);
        skills.insert("enterprise".to_string(), 5);
    }
    let mut languages = vec!["cmn".to_string()];
    if i % 25 == 4 {
        languages.push("mn".to_string());
    }
    (skills, languages)
}

/// Where call `i` queues and at what priority: 55 % general, 15 % operator,
/// 15 % enterprise, 10 % emergency (priority 8-9), 5 % Mongolian; the rest
/// at priority 3-7.
fn call_profile(i: u64) -> (&'static str, u8) {
    let h = mix(i);
    let priority = 3 + (h % 5) as u8;
    match i % 20 {
        0 | 1 => ("emergency", 8 + (h % 2) as u8),
        2..=4 => ("enterprise", priority),
        5 => ("mongolian", priority),
        6..=8 => ("operator", priority),
        _ => ("general", priority),
    }
}

struct Centre {
    router: Router,
    seats: Vec<String>,
    /// 5 s after the first call joined; nothing falls due before its first
    /// announcement at 20 s, so every case runs at this instant.
    now: Instant,
    next_call: CallId,
}

fn drain(router: &mut Router) -> Option<(CallId, String)> {
    let mut offer = None;
    while let Some(action) = router.poll_action() {
        if let Action::Offer { call, seat } = action {
            offer = Some((call, seat));
        }
    }
    offer
}

/// 5,000 waiting calls and 1,000 logged-out seats. Calls go in before the
/// seats exist because every event re-routes all waiting calls against all
/// seats: with the seats present the set-up alone would be ~10^10 seat checks.
/// Logged-out seats keep the calls waiting as busy ones would; the router
/// rejects both at the same early test of its seat filter (a one-off run with
/// all seats in call, freed by `WrapUpDone`, measured within 5 % of this).
fn centre(queues: Vec<QueueRules>) -> Centre {
    let t0 = Instant::now();
    let mut router = Router::new(queues);
    for i in 0..WAITING {
        let (queue, priority) = call_profile(i);
        let at = t0 + Duration::from_millis(i);
        router
            .handle(
                Event::Enqueue {
                    call: i,
                    queue: queue.into(),
                    priority,
                },
                at,
            )
            .unwrap();
    }
    let now = t0 + Duration::from_millis(WAITING);
    let seats: Vec<String> = (0..SEATS).map(seat_id).collect();
    for (i, id) in seats.iter().enumerate() {
        let (skills, languages) = seat_profile(i);
        router.add_seat(id, skills, languages, now);
    }
    drain(&mut router);
    Centre {
        router,
        seats,
        now,
        next_call: WAITING,
    }
}

/// One decision per iteration: a seat logs in and the router offers it a
/// call. Only that is timed. The seat then logs out and rejects the offer
/// with no pause, which puts the call back where it stood, so every
/// iteration starts from the same 5,000 calls and 1,000 unavailable seats.
/// Seats take turns so successive decisions cover every seat profile.
fn decisions(centre: &mut Centre, iters: u64, turn: &mut usize) -> Duration {
    let Centre {
        router, seats, now, ..
    } = centre;
    let now = *now;
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let seat = &seats[*turn % SEATS];
        *turn += 1;
        let start = Instant::now();
        router
            .handle(
                Event::SetStatus {
                    seat: seat.clone(),
                    status: Status::Available,
                },
                now,
            )
            .unwrap();
        let offer = drain(router);
        spent += start.elapsed();
        let (call, offered) = offer.expect("every seat qualifies for a waiting call");
        assert_eq!(&offered, seat);
        router
            .handle(
                Event::SetStatus {
                    seat: seat.clone(),
                    status: Status::LoggedOut,
                },
                now,
            )
            .unwrap();
        router
            .handle(
                Event::Rejected {
                    seat: seat.clone(),
                    call,
                    pause: Duration::ZERO,
                },
                now,
            )
            .unwrap();
        drain(router);
    }
    spent
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("acd");
    // Each event costs tens of milliseconds at this size and the restoring
    // events, untimed, cost as much again, so keep samples few and flat to
    // stay near a minute.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));

    let mut shipped = centre(queues(None));
    let mut turn = 0;
    group.bench_function(BenchmarkId::new("decision", "shipped-mix"), |b| {
        b.iter_custom(|iters| decisions(&mut shipped, iters, &mut turn))
    });

    group.bench_function("enqueue_one_more", |b| {
        b.iter_custom(|iters| {
            let Centre {
                router,
                now,
                next_call,
                ..
            } = &mut shipped;
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let call = *next_call;
                *next_call += 1;
                let (queue, priority) = call_profile(call);
                let start = Instant::now();
                router
                    .handle(
                        Event::Enqueue {
                            call,
                            queue: queue.into(),
                            priority,
                        },
                        *now,
                    )
                    .unwrap();
                let offer = drain(router);
                spent += start.elapsed();
                assert!(offer.is_none(), "no seat is free");
                router.handle(Event::Abandon { call }, *now).unwrap();
                drain(router);
            }
            spent
        })
    });

    shipped.router.handle_timeout(shipped.now);
    assert!(
        shipped.router.poll_action().is_none(),
        "the tick is meant to find nothing due"
    );
    group.bench_function("tick_nothing_due", |b| {
        b.iter(|| {
            shipped.router.handle_timeout(shipped.now);
            drain(&mut shipped.router)
        })
    });
    drop(shipped);

    for (strategy, name) in STRATEGIES {
        let mut centre = centre(queues(Some(strategy)));
        let mut turn = 0;
        group.bench_function(BenchmarkId::new("decision", name), |b| {
            b.iter_custom(|iters| decisions(&mut centre, iters, &mut turn))
        });
    }
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
