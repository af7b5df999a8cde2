//! The work-order store (`hotline::store::orders`) against both databases.
//!
//! Every case is written once as `async fn case(store: &Store)` and run
//! twice by `both!`: on a fresh SQLite file and on a private PostgreSQL
//! database (role and database made for the test and dropped after it, on
//! the machine's server: `HOTLINE_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Each case shows up as
//! `<case>::sqlite` and `<case>::postgres`.
//!
//! Covered: order numbers (`YYYYMMDD` + a 6-digit sequence per day, also
//! under concurrent intake), Idempotency-Key replays and reuse (also two
//! retries racing), lifecycle commands through `change_order` (version and
//! one audit entry per change with before/after diffs), refused and no-op
//! commands writing nothing, the personal-data read audit, every
//! `list_orders` filter and cursor paging, and the scheduler's
//! `clocks_due` before and after a recorded warning. One PostgreSQL-only
//! test repeats the category prefixes on a database with an `en-US` (ICU)
//! collation, as clusters initialised with a natural-language locale have.
//!
//! Orders are driven on a fixed working Monday, 2026-11-30 09:00 +08:00,
//! with the shipped calendar and default limits, so every due time is
//! known to the millisecond.

mod common;

use common::temp_db::TempDb as PgDb;
use hotline::auth::{Principal, Role};
use hotline::calendar::Calendar;
use hotline::orders::catalogue::Catalogue;
use hotline::orders::deadline::{Limits, WorkTime};
use hotline::orders::desk::Rules;
use hotline::orders::events::OrderEvents;
use hotline::orders::lifecycle::AlertKind as OrderAlert;
use hotline::orders::lifecycle::{
    Citizen, Command, Event, Intake, PhoneNumber, Plan, Policy, Refusal, WorkOrder,
};
use hotline::orders::model::{AppealType, Channel, ClockKind, OrderStatus, Urgency};
use hotline::orders::scheduler::{self, AlertKind};
use hotline::orders::sweeper::sweep_once;
use hotline::orders::units::Units;
use hotline::store::Store;
use hotline::store::orders::{
    Cursor, DueClock, Idempotency, OrderFilter, OrderStoreError, Written,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use time::UtcOffset;

// ---------------------------------------------------------------------------
// Two databases, one body
// ---------------------------------------------------------------------------

/// Runs `async fn $case(&Store)` as `$case::sqlite` and `$case::postgres`.
macro_rules! both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[test]
            fn sqlite() {
                let db = super::SqliteDb::new(stringify!($case));
                super::runtime().block_on(async {
                    super::$case(&super::connect(&db.url()).await).await
                });
            }

            #[test]
            fn postgres() {
                let db = super::PgDb::new(concat!("os_", stringify!($case)));
                db.rt.block_on(async {
                    super::$case(&super::connect(&db.url()).await).await
                });
            }
        }
    )*};
}

both!(
    numbers_count_per_day,
    concurrent_intake_takes_distinct_numbers,
    idempotent_create,
    racing_retries_share_one_order,
    change_order_versions_and_audits,
    refused_commands_write_nothing,
    personal_reads_are_audited,
    list_filters,
    category_prefixes,
    list_pages_with_cursor,
    clocks_due_follow_alerts,
    the_sweeper_urges_then_supervises,
);

/// Many PostgreSQL clusters are initialised with a natural-language locale
/// (`en_US.UTF-8` is the default of the official container image), whose
/// collation sorts punctuation differently from byte order. Category
/// prefixes must work there too.
#[test]
fn category_prefixes_on_an_en_us_database() {
    let db = PgDb::with_options(
        "os_category_en_us",
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
    );
    db.rt
        .block_on(async { category_prefixes(&connect(&db.url()).await).await });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

async fn connect(url: &str) -> Store {
    Store::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// A fresh SQLite file in its own temp folder, removed on drop.
struct SqliteDb {
    dir: PathBuf,
}

impl SqliteDb {
    fn new(case: &str) -> SqliteDb {
        let dir = std::env::temp_dir().join(format!(
            "hotline-orders-store-{case}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        SqliteDb { dir }
    }

    fn url(&self) -> String {
        format!("sqlite:{}", self.dir.join("orders.db").display())
    }
}

impl Drop for SqliteDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------
// Fixtures: time, policy, people, intake
// ---------------------------------------------------------------------------

/// Monday 2026-11-30 09:00 +08:00, a working day.
const MON: i64 = 1_796_000_400_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Tuesday 09:00.
const TUE: i64 = MON + DAY;
/// Local midnight between Monday and Tuesday.
const TUE_MIDNIGHT: i64 = MON + 15 * HOUR;
const MON_NO: &str = "20261130";
const TUE_NO: &str = "20261201";
const PERCENTS: &[u8] = &[50, 80];

const WATER: &str = "water-bureau";
const HOUSING: &str = "housing-bureau";

fn policy() -> Policy<'static> {
    static TIME: OnceLock<WorkTime> = OnceLock::new();
    static LIMITS: OnceLock<Limits> = OnceLock::new();
    let time = TIME.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-config/calendar");
        WorkTime::new(
            Calendar::load_dir(&dir).unwrap(),
            UtcOffset::from_hms(8, 0, 0).unwrap(),
        )
    });
    Policy {
        time,
        limits: LIMITS.get_or_init(Limits::default),
    }
}

fn person(name: &str, role: Role, unit: Option<&str>) -> Principal {
    Principal {
        name: name.into(),
        role,
        unit: unit.map(str::to_owned),
    }
}

fn agent() -> Principal {
    person("agent-li", Role::Agent, None)
}

fn dispatcher() -> Principal {
    person("dispatcher-wang", Role::Dispatcher, None)
}

fn handler(unit: &str) -> Principal {
    person(&format!("handler-{unit}"), Role::UnitHandler, Some(unit))
}

fn intake(category: &str, phone: &str) -> Intake {
    Intake {
        channel: Channel::Phone,
        citizen: Citizen {
            name: Some("Zhang San".into()),
            phone: PhoneNumber::parse(phone).unwrap(),
            confidential: false,
        },
        appeal_type: AppealType::Help,
        category: category.into(),
        urgency: Urgency::Normal,
        life_at_risk: false,
        division: "110105".into(),
        location: Some("Courtyard 3, Jianguo Road".into()),
        content: "The water main in the courtyard has burst".into(),
        attachments: Vec::new(),
        calls: Vec::new(),
    }
}

/// What intake hands `create_order`: a draft submitted by the agent.
fn submitted(
    order_no: String,
    intake: Intake,
    now: i64,
) -> Result<(WorkOrder, Vec<Event>), Refusal> {
    let who = agent();
    let mut order = WorkOrder::new(order_no, intake, &who, now);
    let events = order.apply(&who, Command::Submit, now, &policy())?;
    Ok((order, events))
}

async fn create_with(
    store: &Store,
    day: &str,
    now: i64,
    intake: Intake,
    key: Option<Idempotency<'_>>,
) -> Result<Written, OrderStoreError> {
    store
        .create_order(day, &agent(), now, PERCENTS, key, |no| {
            submitted(no, intake, now)
        })
        .await
}

async fn create(store: &Store, day: &str, now: i64, intake: Intake) -> Written {
    create_with(store, day, now, intake, None).await.unwrap()
}

/// Applies a lifecycle command through the store, audited under its name.
async fn run(
    store: &Store,
    order_no: &str,
    who: &Principal,
    now: i64,
    command: Command,
) -> Result<Written, OrderStoreError> {
    store
        .change_order(order_no, who, now, PERCENTS, command.name(), |order| {
            order.apply(who, command, now, &policy())
        })
        .await
}

fn dispatch_to(lead: &str) -> Command {
    Command::Dispatch {
        plan: Plan {
            lead: lead.into(),
            co_handlers: Vec::new(),
        },
        default: None,
        override_reason: None,
    }
}

fn sign(unit: &str) -> Command {
    Command::Sign { unit: unit.into() }
}

async fn audit_actions(store: &Store, order_no: &str) -> Vec<String> {
    store
        .order_audit(order_no)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

async fn version(store: &Store, order_no: &str) -> i64 {
    store.order(order_no).await.unwrap().unwrap().1
}

fn all() -> OrderFilter {
    OrderFilter {
        limit: 500,
        ..OrderFilter::default()
    }
}

/// The order numbers a listing returns, in its order.
async fn listed(store: &Store, filter: OrderFilter, now: i64) -> Vec<String> {
    let page = store.list_orders(&filter, now).await.unwrap();
    assert!(page.next.is_none(), "more than one page: {filter:?}");
    page.orders.into_iter().map(|o| o.order_no).collect()
}

fn nos(list: &[&String]) -> Vec<String> {
    list.iter().map(|s| (*s).clone()).collect()
}

fn assert_refused(result: Result<Written, OrderStoreError>, what: &str) -> Refusal {
    match result {
        Err(OrderStoreError::Refused(refusal)) => refusal,
        Err(e) => panic!("{what}: expected a refusal, got {e}"),
        Ok(w) => panic!("{what}: expected a refusal, got version {}", w.version),
    }
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

/// `YYYYMMDD` + a 6-digit sequence that starts over each day.
async fn numbers_count_per_day(store: &Store) {
    let mut made = Vec::new();
    for (day, now) in [
        (MON_NO, MON),
        (MON_NO, MON + MINUTE),
        (TUE_NO, TUE),
        (MON_NO, MON + 2 * MINUTE),
        (TUE_NO, TUE + MINUTE),
    ] {
        let w = create(store, day, now, intake("010101", "13800000001")).await;
        assert!(!w.replayed);
        assert_eq!(w.version, 1);
        assert_eq!(w.order.status, OrderStatus::Accepted);
        assert_eq!(w.events[0].kind, "accepted");
        made.push(w.order.order_no);
    }
    assert_eq!(
        made,
        [
            "20261130000001",
            "20261130000002",
            "20261201000001",
            "20261130000003",
            "20261201000002",
        ]
    );
    for no in &made {
        assert_eq!(no.len(), 14);
        assert!(no.bytes().all(|b| b.is_ascii_digit()), "{no}");
        let (order, v) = store.order(no).await.unwrap().expect("stored");
        assert_eq!((order.order_no.as_str(), v), (no.as_str(), 1));
        assert_eq!(
            store.order_status(no).await.unwrap().as_deref(),
            Some("accepted")
        );
    }
    // Within a day, numbers grow with creation.
    let mon: Vec<&String> = made.iter().filter(|n| n.starts_with(MON_NO)).collect();
    assert!(mon.windows(2).all(|w| w[0] < w[1]), "{mon:?}");
    assert_eq!(
        listed(store, all(), MON).await.len(),
        5,
        "five distinct rows"
    );
}

/// Intake from many calls at once still numbers every order once.
async fn concurrent_intake_takes_distinct_numbers(store: &Store) {
    let made = futures::future::join_all((0..8).map(|i| {
        create_with(
            store,
            MON_NO,
            MON + i,
            intake("010101", "13800000001"),
            None,
        )
    }))
    .await;
    let numbers: BTreeSet<String> = made
        .into_iter()
        .map(|w| w.unwrap().order.order_no)
        .collect();
    let expected: BTreeSet<String> = (1..=8).map(|n| format!("{MON_NO}{n:06}")).collect();
    assert_eq!(numbers, expected);
}

/// A retried intake gets its first order back; a reused key is refused.
async fn idempotent_create(store: &Store) {
    let key = Idempotency {
        key: "call-7f3a",
        request_hash: "sha256:aaaa",
    };
    let first = create_with(
        store,
        MON_NO,
        MON,
        intake("010101", "13800000001"),
        Some(key),
    )
    .await
    .unwrap();
    assert!(!first.replayed);
    assert_eq!(first.order.order_no, "20261130000001");

    // The retry comes a little later; it must not build a second order.
    let again = create_with(
        store,
        MON_NO,
        MON + MINUTE,
        intake("010101", "13800000001"),
        Some(key),
    )
    .await
    .unwrap();
    assert!(again.replayed);
    assert_eq!(again.version, 1);
    assert_eq!(again.order, first.order);
    assert!(again.events.is_empty(), "a replay announces nothing");
    assert_eq!(
        listed(store, all(), MON).await,
        nos(&[&first.order.order_no])
    );
    assert_eq!(
        audit_actions(store, &first.order.order_no).await,
        ["create"]
    );

    // Same key, different request.
    let reused = create_with(
        store,
        MON_NO,
        MON + 2 * MINUTE,
        intake("020301", "13900000002"),
        Some(Idempotency {
            key: "call-7f3a",
            request_hash: "sha256:bbbb",
        }),
    )
    .await;
    match reused {
        Err(OrderStoreError::KeyReused(k)) => assert_eq!(k, "call-7f3a"),
        other => panic!("expected KeyReused, got {other:?}"),
    }
    assert_eq!(listed(store, all(), MON).await.len(), 1);

    // Neither the replay nor the refusal used up a number; a new key makes
    // a new order.
    let other = create_with(
        store,
        MON_NO,
        MON + 3 * MINUTE,
        intake("010101", "13800000001"),
        Some(Idempotency {
            key: "call-9b1c",
            request_hash: "sha256:aaaa",
        }),
    )
    .await
    .unwrap();
    assert!(!other.replayed);
    assert_eq!(other.order.order_no, "20261130000002");
    assert_eq!(listed(store, all(), MON).await.len(), 2);
}

/// Two retries of one request in flight together (the client timed out and
/// sent it again): one makes the order, the other gets it back.
async fn racing_retries_share_one_order(store: &Store) {
    let key = Idempotency {
        key: "call-race",
        request_hash: "sha256:cccc",
    };
    let (a, b) = tokio::join!(
        create_with(
            store,
            MON_NO,
            MON,
            intake("010101", "13800000001"),
            Some(key)
        ),
        create_with(
            store,
            MON_NO,
            MON,
            intake("010101", "13800000001"),
            Some(key)
        ),
    );
    let a = a.unwrap_or_else(|e| panic!("first retry: {e}"));
    let b = b.unwrap_or_else(|e| panic!("second retry: {e}"));
    assert_eq!(a.order.order_no, b.order.order_no);
    assert_ne!(a.replayed, b.replayed, "exactly one made the order");
    assert_eq!(listed(store, all(), MON).await.len(), 1);
}

/// Each command bumps the version and writes one audit entry with the
/// fields it changed.
async fn change_order_versions_and_audits(store: &Store) {
    let created = create(store, MON_NO, MON, intake("010101", "13800000001")).await;
    let no = created.order.order_no.clone();

    let audit = store.order_audit(&no).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].at, audit[0].actor.as_str(), audit[0].role.as_str()),
        (MON, "agent-li", "agent")
    );
    assert_eq!(audit[0].action, "create");
    assert_eq!(audit[0].changes["created"]["order_no"], json!(no));
    assert_eq!(audit[0].changes["created"]["status"], json!("accepted"));

    let t1 = MON + 10 * MINUTE;
    let dispatched = run(store, &no, &dispatcher(), t1, dispatch_to(WATER))
        .await
        .unwrap();
    assert_eq!(dispatched.version, 2);
    assert!(!dispatched.replayed);
    assert_eq!(dispatched.order.status, OrderStatus::Dispatched);
    assert_eq!(dispatched.events.len(), 1);
    assert_eq!(dispatched.events[0].kind, "dispatched");
    assert_eq!(dispatched.events[0].unit.as_deref(), Some(WATER));

    let t2 = MON + 20 * MINUTE;
    let signed = run(store, &no, &handler(WATER), t2, sign(WATER))
        .await
        .unwrap();
    assert_eq!(signed.version, 3);
    assert_eq!(signed.order.status, OrderStatus::Handling);

    // The stored document and projections follow.
    let (stored, v) = store.order(&no).await.unwrap().unwrap();
    assert_eq!(v, 3);
    assert_eq!(stored, signed.order);
    assert_eq!(
        store.order_status(&no).await.unwrap().as_deref(),
        Some("handling")
    );

    let audit = store.order_audit(&no).await.unwrap();
    assert_eq!(
        audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["create", "dispatch", "sign"]
    );
    let d = &audit[1];
    assert_eq!(
        (d.at, d.actor.as_str(), d.role.as_str()),
        (t1, "dispatcher-wang", "dispatcher")
    );
    assert_eq!(
        d.changes["status"],
        json!({"before": "accepted", "after": "dispatched"})
    );
    // The assignment list grew, so it is given whole.
    assert_eq!(d.changes["assignments"]["before"], json!([]));
    assert_eq!(d.changes["assignments"]["after"][0]["unit"], json!(WATER));
    assert!(
        d.changes.get("intake").is_none(),
        "unchanged fields are left out"
    );

    let s = &audit[2];
    assert_eq!(
        (s.at, s.actor.as_str(), s.role.as_str()),
        (t2, "handler-water-bureau", "unit_handler")
    );
    assert_eq!(
        s.changes["status"],
        json!({"before": "dispatched", "after": "handling"})
    );
    assert_eq!(
        s.changes["assignments.0.state"],
        json!({"before": "pending_sign", "after": "signed"})
    );
    assert_eq!(
        s.changes["assignments.0.signed_at"],
        json!({"before": null, "after": t2})
    );

    // An order that does not exist.
    let missing = run(
        store,
        "20991231000001",
        &dispatcher(),
        t2,
        dispatch_to(WATER),
    )
    .await;
    assert!(
        matches!(missing, Err(OrderStoreError::NotFound(ref n)) if n == "20991231000001"),
        "{missing:?}"
    );
}

/// A refused command, or one that changes nothing, leaves the order, its
/// version and its audit log as they were.
async fn refused_commands_write_nothing(store: &Store) {
    let created = create(store, MON_NO, MON, intake("010101", "13800000001")).await;
    let no = created.order.order_no.clone();

    // A unit handler may not dispatch.
    let refusal = assert_refused(
        run(
            store,
            &no,
            &handler(WATER),
            MON + MINUTE,
            dispatch_to(WATER),
        )
        .await,
        "unit handler dispatching",
    );
    assert!(matches!(refusal, Refusal::Forbidden(_)), "{refusal:?}");
    assert_eq!(version(store, &no).await, 1);
    assert_eq!(audit_actions(store, &no).await, ["create"]);
    assert_eq!(store.order(&no).await.unwrap().unwrap().0, created.order);

    run(
        store,
        &no,
        &dispatcher(),
        MON + 2 * MINUTE,
        dispatch_to(WATER),
    )
    .await
    .unwrap();
    // Another unit's handler may not sign for the water bureau.
    let refusal = assert_refused(
        run(store, &no, &handler(HOUSING), MON + 3 * MINUTE, sign(WATER)).await,
        "signing for another unit",
    );
    assert!(matches!(refusal, Refusal::Forbidden(_)), "{refusal:?}");
    let signed = run(store, &no, &handler(WATER), MON + 4 * MINUTE, sign(WATER))
        .await
        .unwrap();
    assert_eq!(signed.version, 3);

    // Signing twice.
    let refusal = assert_refused(
        run(store, &no, &handler(WATER), MON + 5 * MINUTE, sign(WATER)).await,
        "signing twice",
    );
    assert!(matches!(refusal, Refusal::Conflict(_)), "{refusal:?}");
    assert_eq!(version(store, &no).await, 3);
    assert_eq!(
        audit_actions(store, &no).await,
        ["create", "dispatch", "sign"]
    );
    assert_eq!(store.order(&no).await.unwrap().unwrap().0, signed.order);

    // A change that changes nothing is not written either.
    let same = store
        .change_order(
            &no,
            &dispatcher(),
            MON + 6 * MINUTE,
            PERCENTS,
            "noop",
            |_| Ok(Vec::new()),
        )
        .await
        .unwrap();
    assert_eq!(same.version, 3);
    assert_eq!(same.order, signed.order);
    assert_eq!(version(store, &no).await, 3);
    assert_eq!(audit_actions(store, &no).await.len(), 3);
}

/// Reading unmasked personal data leaves a trace, and nothing else.
async fn personal_reads_are_audited(store: &Store) {
    let created = create(store, MON_NO, MON, intake("010101", "13800000001")).await;
    let no = created.order.order_no.clone();
    let supervisor = person("supervisor-zhao", Role::Supervisor, None);
    store
        .audit_personal_read(&no, &supervisor, MON + HOUR, &["phone", "name"])
        .await
        .unwrap();
    let audit = store.order_audit(&no).await.unwrap();
    assert_eq!(audit.len(), 2);
    let read = &audit[1];
    assert_eq!(read.action, "read_personal_data");
    assert_eq!(
        (read.at, read.actor.as_str(), read.role.as_str()),
        (MON + HOUR, "supervisor-zhao", "supervisor")
    );
    assert_eq!(read.changes, json!({"read": ["phone", "name"]}));
    assert_eq!(version(store, &no).await, 1);
    assert_eq!(store.order(&no).await.unwrap().unwrap().0, created.order);
}

/// Every filter of the listing, alone and together.
async fn list_filters(store: &Store) {
    const P1: &str = "13800000001";
    const P2: &str = "13900000002";
    // o1: Monday, dispatched to the water bureau.
    let o1 = create(store, MON_NO, MON, intake("010101", P1))
        .await
        .order
        .order_no;
    run(
        store,
        &o1,
        &dispatcher(),
        MON + 10 * MINUTE,
        dispatch_to(WATER),
    )
    .await
    .unwrap();
    // o2: Monday, never dispatched (its same-day dispatch clock runs out).
    let o2 = create(store, MON_NO, MON + HOUR, intake("020301", P2))
        .await
        .order
        .order_no;
    // o3: Tuesday, dispatched to the housing bureau.
    let o3 = create(store, TUE_NO, TUE, intake("010203", P1))
        .await
        .order
        .order_no;
    run(
        store,
        &o3,
        &dispatcher(),
        TUE + 10 * MINUTE,
        dispatch_to(HOUSING),
    )
    .await
    .unwrap();
    // o4: Tuesday, out of scope: archived with no clock running.
    let o4 = create(store, TUE_NO, TUE + HOUR, intake("030101", P2))
        .await
        .order
        .order_no;
    run(
        store,
        &o4,
        &agent(),
        TUE + HOUR + 5 * MINUTE,
        Command::OutOfScope {
            reason: "a civil dispute between neighbours".into(),
            channel: "the people's court".into(),
        },
    )
    .await
    .unwrap();

    let now = TUE + 2 * HOUR;
    let f = |edit: &dyn Fn(&mut OrderFilter)| {
        let mut filter = all();
        edit(&mut filter);
        filter
    };
    assert_eq!(listed(store, all(), now).await, nos(&[&o4, &o3, &o2, &o1]));

    // Status.
    let status = |s| f(&move |x: &mut OrderFilter| x.status = Some(s));
    assert_eq!(
        listed(store, status(OrderStatus::Dispatched), now).await,
        nos(&[&o3, &o1])
    );
    assert_eq!(
        listed(store, status(OrderStatus::Accepted), now).await,
        nos(&[&o2])
    );
    assert_eq!(
        listed(store, status(OrderStatus::Archived), now).await,
        nos(&[&o4])
    );
    assert!(
        listed(store, status(OrderStatus::Handling), now)
            .await
            .is_empty()
    );

    // Unit: an order dispatched to A is found for A, not for B.
    let unit = |u: &'static str| f(&move |x: &mut OrderFilter| x.unit = Some(u.into()));
    assert_eq!(listed(store, unit(WATER), now).await, nos(&[&o1]));
    assert_eq!(listed(store, unit(HOUSING), now).await, nos(&[&o3]));
    assert!(listed(store, unit("parks-bureau"), now).await.is_empty());

    // Overdue. Right after intake only o2's same-day dispatch (due at
    // Tuesday's local midnight) has run out; two months on, every running
    // clock has, and o4 has none.
    let overdue = |b| f(&move |x: &mut OrderFilter| x.overdue = Some(b));
    assert!(
        listed(store, overdue(true), MON + 11 * MINUTE)
            .await
            .is_empty()
    );
    assert_eq!(
        listed(store, overdue(true), TUE_MIDNIGHT).await,
        Vec::<String>::new()
    );
    assert_eq!(
        listed(store, overdue(true), TUE_MIDNIGHT + 1).await,
        nos(&[&o2])
    );
    assert_eq!(listed(store, overdue(true), now).await, nos(&[&o2]));
    assert_eq!(
        listed(store, overdue(false), now).await,
        nos(&[&o4, &o3, &o1])
    );
    let later = MON + 60 * DAY;
    assert_eq!(
        listed(store, overdue(true), later).await,
        nos(&[&o3, &o2, &o1])
    );
    assert_eq!(listed(store, overdue(false), later).await, nos(&[&o4]));

    // Category prefix: 01 finds 010101 and 010203; 02 does not.
    let cat = |c: &'static str| f(&move |x: &mut OrderFilter| x.category = Some(c.into()));
    assert_eq!(listed(store, cat("01"), now).await, nos(&[&o3, &o1]));
    assert_eq!(listed(store, cat("0101"), now).await, nos(&[&o1]));
    assert_eq!(listed(store, cat("010101"), now).await, nos(&[&o1]));
    assert_eq!(listed(store, cat("02"), now).await, nos(&[&o2]));
    assert_eq!(listed(store, cat("03"), now).await, nos(&[&o4]));
    assert!(listed(store, cat("04"), now).await.is_empty());
    assert!(listed(store, cat("1"), now).await.is_empty());
    assert!(listed(store, cat("0101019"), now).await.is_empty());

    // Created from (inclusive) and to (exclusive).
    let range = |from: Option<i64>, to: Option<i64>| {
        f(&move |x: &mut OrderFilter| {
            x.created_from = from;
            x.created_to = to;
        })
    };
    assert_eq!(
        listed(store, range(Some(TUE_MIDNIGHT), None), now).await,
        nos(&[&o4, &o3])
    );
    assert_eq!(
        listed(store, range(None, Some(TUE_MIDNIGHT)), now).await,
        nos(&[&o2, &o1])
    );
    assert_eq!(
        listed(store, range(Some(MON + HOUR), Some(TUE + HOUR)), now).await,
        nos(&[&o3, &o2])
    );
    assert!(
        listed(store, range(Some(TUE + 2 * HOUR), None), now)
            .await
            .is_empty()
    );

    // Order number and phone.
    let o3_owned = o3.clone();
    let by_no = f(&move |x: &mut OrderFilter| x.order_no = Some(o3_owned.clone()));
    assert_eq!(listed(store, by_no, now).await, nos(&[&o3]));
    let none = f(&|x: &mut OrderFilter| x.order_no = Some("20991231000001".into()));
    assert!(listed(store, none, now).await.is_empty());
    let phone = |p: &'static str| f(&move |x: &mut OrderFilter| x.phone = Some(p.into()));
    assert_eq!(listed(store, phone(P1), now).await, nos(&[&o3, &o1]));
    assert_eq!(listed(store, phone(P2), now).await, nos(&[&o4, &o2]));
    assert!(listed(store, phone("12345"), now).await.is_empty());

    // Together.
    let together = f(&|x: &mut OrderFilter| {
        x.status = Some(OrderStatus::Dispatched);
        x.phone = Some(P1.into());
        x.category = Some("0101".into());
        x.unit = Some(WATER.into());
        x.overdue = Some(false);
        x.created_to = Some(TUE_MIDNIGHT);
    });
    assert_eq!(listed(store, together, now).await, nos(&[&o1]));
}

/// A category filter is a code or any prefix of one, and nothing else.
async fn category_prefixes(store: &Store) {
    let mut made = std::collections::BTreeMap::new();
    for (i, code) in ["010101", "010102", "010201", "019901", "020101", "100101"]
        .into_iter()
        .enumerate()
    {
        let w = create(
            store,
            MON_NO,
            MON + i as i64 * MINUTE,
            intake(code, "13800000001"),
        )
        .await;
        made.insert(code, w.order.order_no);
    }
    let cases: [(&str, &[&str]); 9] = [
        ("01", &["019901", "010201", "010102", "010101"]),
        ("0101", &["010102", "010101"]),
        ("010101", &["010101"]),
        ("0199", &["019901"]),
        ("02", &["020101"]),
        ("1", &["100101"]),
        ("10", &["100101"]),
        ("03", &[]),
        ("0101011", &[]),
    ];
    for (prefix, codes) in cases {
        let filter = OrderFilter {
            category: Some(prefix.into()),
            ..all()
        };
        let expected: Vec<String> = codes.iter().map(|c| made[c].clone()).collect();
        assert_eq!(
            listed(store, filter, MON).await,
            expected,
            "prefix {prefix}"
        );
    }
}

/// 25 orders, 10 a page: 10, 10, 5, newest first, none twice. Orders come
/// in pairs with the same creation time, and one pair straddles a page
/// boundary, so the cursor's tie-break on the order number counts.
async fn list_pages_with_cursor(store: &Store) {
    let mut made = Vec::new();
    for i in 0..25 {
        let at = MON + (i / 2) * MINUTE;
        made.push(create(store, MON_NO, at, intake("010101", "13800000001")).await);
    }
    let newest_first: Vec<String> = made
        .iter()
        .rev()
        .map(|w| w.order.order_no.clone())
        .collect();

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let filter = OrderFilter {
            after: after.clone(),
            limit: 10,
            ..OrderFilter::default()
        };
        let page = store.list_orders(&filter, MON + HOUR).await.unwrap();
        sizes.push(page.orders.len());
        seen.extend(page.orders.iter().map(|o| o.order_no.clone()));
        let Some(next) = page.next else { break };
        let last = page.orders.last().unwrap();
        assert_eq!(
            next,
            Cursor {
                created_at: last.created_at,
                order_no: last.order_no.clone()
            }
        );
        // Clients get the cursor as text and hand it back.
        let text = next.encode();
        assert_eq!(Cursor::decode(&text), Some(next));
        after = Cursor::decode(&text);
        assert!(sizes.len() < 5, "paging does not end: {sizes:?}");
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(seen, newest_first);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 25);

    // A page that ends exactly at the last order has no next page.
    let whole = OrderFilter {
        limit: 25,
        ..OrderFilter::default()
    };
    let page = store.list_orders(&whole, MON).await.unwrap();
    assert_eq!((page.orders.len(), page.next.is_none()), (25, true));
    let short = OrderFilter {
        limit: 24,
        ..OrderFilter::default()
    };
    assert!(store.list_orders(&short, MON).await.unwrap().next.is_some());
}

/// The scheduler sees a clock once its next warning falls due, and not
/// again once that warning is recorded.
async fn clocks_due_follow_alerts(store: &Store) {
    let created = create(store, MON_NO, MON, intake("010101", "13800000001")).await;
    let no = created.order.order_no.clone();
    let due = |now| async move { store.clocks_due(now, 100).await.unwrap() };

    // Accepted: the hotline's own dispatch clock (same working day, due at
    // local midnight) warns half way through, with no unit.
    assert!(due(MON).await.is_empty());
    let dispatch_warning = MON + (TUE_MIDNIGHT - MON) / 2;
    assert!(due(dispatch_warning - 1).await.is_empty());
    assert_eq!(
        due(dispatch_warning).await,
        [DueClock {
            order_no: no.clone(),
            unit: None,
            kind: ClockKind::Dispatch
        }]
    );

    // Dispatched: the dispatch clock stops, the water bureau's start.
    let at = MON + 10 * MINUTE;
    let dispatched = run(store, &no, &dispatcher(), at, dispatch_to(WATER))
        .await
        .unwrap();
    assert!(due(at).await.is_empty());
    assert!(due(dispatch_warning).await.is_empty());
    let sign_clock = dispatched
        .order
        .clock(ClockKind::Sign, Some(WATER))
        .unwrap()
        .clone();
    // One working day: due at the end of Tuesday, local time.
    assert_eq!(sign_clock.due_at, TUE_MIDNIGHT + DAY);
    let limit = sign_clock.due_at - sign_clock.started_at;
    let warn50 = sign_clock.started_at + limit * 50 / 100;
    let warn80 = sign_clock.started_at + limit * 80 / 100;
    let lead_sign = vec![DueClock {
        order_no: no.clone(),
        unit: Some(WATER.into()),
        kind: ClockKind::Sign,
    }];
    assert!(due(warn50 - 1).await.is_empty());
    assert_eq!(due(warn50).await, lead_sign);
    assert!(store.clocks_due(warn50, 0).await.unwrap().is_empty());

    // The sweep records the 50% warning ...
    let alerts = scheduler::sweep(warn50, &sign_clock, PERCENTS);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::Warning { percent: 50 });
    let scheduler = Principal::system("scheduler");
    let urged = run(
        store,
        &no,
        &scheduler,
        warn50,
        Command::ClockAlert {
            kind: ClockKind::Sign,
            unit: Some(WATER.into()),
            overdue: false,
            percent: 50,
            alerts_sent: alerts[0].alerts_sent_after,
        },
    )
    .await
    .unwrap();
    assert_eq!(urged.version, 3);
    assert_eq!(urged.events[0].kind, "urged");
    assert_eq!(
        audit_actions(store, &no).await.last().unwrap(),
        "clock_alert"
    );

    // ... so it is not listed again then, only at the next warning.
    assert!(due(warn50).await.is_empty());
    assert!(due(warn80 - 1).await.is_empty());
    assert_eq!(due(warn80).await, lead_sign);

    // Signing stops the clock for good.
    run(store, &no, &handler(WATER), warn80, sign(WATER))
        .await
        .unwrap();
    assert!(!due(warn80).await.contains(&lead_sign[0]));
    assert!(
        !due(sign_clock.due_at + DAY)
            .await
            .iter()
            .any(|c| c.kind == ClockKind::Sign)
    );
}

/// What the running sweeper decides with: the shipped calendar, catalogue
/// and units, default limits, warnings at 50% and 80%.
fn rules() -> Rules {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    Rules {
        time: WorkTime::new(
            Calendar::load_dir(&repo.join("sip-config/calendar")).unwrap(),
            UtcOffset::from_hms(8, 0, 0).unwrap(),
        ),
        limits: Limits::default(),
        percents: PERCENTS.to_vec(),
        catalogue: Catalogue::load(&repo.join("sip-config/catalogue.toml")).unwrap(),
        units: Units::load(&repo.join("sip-config/units.toml")).unwrap(),
    }
}

/// The deadline sweep over the store: an urge at each warning, supervision
/// once the limit passes, each recorded on the order once, with events for
/// listeners; stopped clocks say nothing.
async fn the_sweeper_urges_then_supervises(store: &Store) {
    let rules = rules();
    let events = OrderEvents::default();
    let mut heard = events.subscribe();
    let no = create(store, MON_NO, MON, intake("010201", "13800138000"))
        .await
        .order
        .order_no;
    run(store, &no, &dispatcher(), MON, dispatch_to(WATER))
        .await
        .unwrap();
    let order = store.order(&no).await.unwrap().unwrap().0;
    let sign_clock = order.clock(ClockKind::Sign, Some(WATER)).unwrap().clone();
    let warn50 = MON + (sign_clock.due_at - MON) / 2;

    // Nothing is due right after dispatch.
    assert_eq!(sweep_once(store, &rules, &events, MON).await.unwrap(), 0);
    // Half the sign limit gone: one urge, once.
    assert_eq!(sweep_once(store, &rules, &events, warn50).await.unwrap(), 1);
    assert_eq!(sweep_once(store, &rules, &events, warn50).await.unwrap(), 0);
    let e = heard.try_recv().unwrap();
    assert_eq!((e.kind.as_str(), e.unit.as_deref()), ("urged", Some(WATER)));
    assert_eq!(e.units, [WATER]);

    // Past the deadline (the server slept through the 80% mark): only the
    // supervision, plus whatever the contact clock owes by then.
    let late = sign_clock.due_at + HOUR;
    assert!(sweep_once(store, &rules, &events, late).await.unwrap() >= 1);
    let order = store.order(&no).await.unwrap().unwrap().0;
    let sign_alerts: Vec<(OrderAlert, String)> = order
        .alerts
        .iter()
        .filter(|a| a.clock == Some(ClockKind::Sign))
        .map(|a| (a.kind, a.by.clone()))
        .collect();
    assert_eq!(
        sign_alerts,
        [
            (OrderAlert::Urge, "scheduler".to_string()),
            (OrderAlert::Supervise, "scheduler".to_string())
        ]
    );
    assert_eq!(
        order
            .clock(ClockKind::Sign, Some(WATER))
            .unwrap()
            .alerts_sent,
        3
    );
    assert!(
        audit_actions(store, &no)
            .await
            .contains(&"clock_alert".to_string())
    );

    // Signed: the sign clock is done; nothing more about it, ever.
    run(store, &no, &handler(WATER), late, sign(WATER))
        .await
        .unwrap();
    sweep_once(store, &rules, &events, late + 30 * DAY)
        .await
        .unwrap();
    let order = store.order(&no).await.unwrap().unwrap().0;
    assert_eq!(
        order
            .alerts
            .iter()
            .filter(|a| a.clock == Some(ClockKind::Sign))
            .count(),
        2
    );
}
