//! The ACD of one node: the sans-IO [`Router`] behind a lock, its actions
//! delivered to the call actors that queued, its deadlines kept by one task.
//!
//! Call actors talk to it with [`Acd::enqueue`], [`Acd::handle`] and
//! [`Acd::leave`], and hear back through the [`QueueEvent`] channel they
//! handed in. Seat changes are kept in a bounded log for boards and audits.
//!
//! With shared state ([`Acd::enable_shared`], when `REDIS_URL` is set) the
//! router's seats mirror the whole cluster's ([`super::shared::Mirror`]):
//! an offer waits for its seat's reservation before the call actor hears
//! of it, and every seat change becomes a write that [`super::redis`]
//! carries out. Without it nothing changes.

use super::router::{
    Action, Activity, CallId, Event, QueueRules, Router, RouterError, SeatId, Status,
};
use super::shared::{Mirror, Op, Published, Reserved, ScriptReply, SeatRecord};
use crate::config::Config;
use crate::sip::registrar::Binding;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

/// What the ACD tells a queued call.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueEvent {
    /// Ring this seat.
    Offer { seat: SeatId },
    /// Stop ringing this seat.
    Withdraw { seat: SeatId },
    /// The caller's place in the queue.
    Announce {
        position: usize,
        estimated_wait: Duration,
    },
    /// The call moved to another queue.
    Overflowed { to: String },
    /// The caller waited as long as the queue allows.
    MaxWait,
}

/// A queued call, as the ACD knows it.
#[derive(Debug, Clone)]
pub struct QueuedCall {
    /// The caller's SIP Call-ID.
    pub call_id: String,
    pub caller: String,
    pub events: UnboundedSender<QueueEvent>,
}

struct Entry {
    call: QueuedCall,
    /// When the call first queued, for the service level.
    queued_at: Instant,
    /// The queue it is counted in.
    queue: String,
}

/// One change of a seat, for the seat log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeatChange {
    pub seat: SeatId,
    /// Unix ms.
    pub at: i64,
    #[serde(flatten)]
    pub status: Status,
    #[serde(flatten)]
    pub activity: Activity,
}

/// A caller who hung up while waiting, for the call-back list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MissedCall {
    pub call_id: String,
    pub caller: String,
    pub queue: String,
    pub waited_ms: u64,
    /// Unix ms.
    pub at: i64,
}

/// A seat on the board.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeatView {
    pub seat: SeatId,
    #[serde(flatten)]
    pub status: Status,
    #[serde(flatten)]
    pub activity: Activity,
    pub calls_taken: u64,
    pub talk_secs: u64,
}

/// A queue on the board.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueView {
    pub queue: String,
    pub waiting: usize,
    /// The longest current wait, in seconds.
    pub longest_wait_secs: u64,
    #[serde(flatten)]
    pub totals: QueueTotals,
}

/// What a queue has handled since start, for metrics and KPIs.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QueueTotals {
    /// Calls that joined the queue (overflowed calls count in the queue they
    /// joined first).
    pub entered: u64,
    /// Calls an agent answered.
    pub answered: u64,
    /// Of those, answered within the service-level threshold.
    pub answered_in_time: u64,
    /// Callers who hung up while waiting.
    pub abandoned: u64,
    /// Calls that reached the queue's longest wait.
    pub timed_out: u64,
}

/// Seat time totals since start, for metrics.
#[derive(Debug, Clone, Default)]
pub struct SeatTotals {
    pub talk: Duration,
    pub wrap_up: Duration,
}

/// Answered within this wait counts toward the service level (the 12345
/// KPI: answered within 15 s).
pub const SERVICE_LEVEL_WAIT: Duration = Duration::from_secs(15);

/// Entries kept in the in-memory seat log and missed list.
const LOG_LIMIT: usize = 10_000;

/// Where seats are kept, for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedState {
    /// This node alone (no `REDIS_URL`).
    Memory,
    /// Shared with the other nodes on Redis.
    Redis,
    /// Redis is configured but unreachable: this node's own seats only.
    RedisDown,
}

impl SharedState {
    /// As `/healthz` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            SharedState::Memory => "memory",
            SharedState::Redis => "redis",
            SharedState::RedisDown => "local (redis down)",
        }
    }
}

/// The shared state's figures, for `/metrics`.
#[derive(Debug, Clone)]
pub struct SharedView {
    pub up: bool,
    /// Seat reservations won and refused since start.
    pub reserved: u64,
    pub refused: u64,
}

/// Finds a seat's registration on this node (the registrar), so it can be
/// written for the other nodes.
pub type BindingLookup = Box<dyn Fn(&str) -> Option<Binding> + Send + Sync>;

struct State {
    router: Router,
    calls: HashMap<CallId, Entry>,
    seat_log: VecDeque<SeatChange>,
    missed: VecDeque<MissedCall>,
    totals: HashMap<String, QueueTotals>,
    /// Seats in wrap-up, since when.
    wrapping: HashMap<SeatId, Instant>,
    wrap_up_total: Duration,
    /// The cluster's seats, when they are shared.
    mirror: Option<Mirror>,
    /// Where the mirror's writes go (to [`super::redis::run`]).
    outbox: Option<UnboundedSender<Op>>,
}

/// The node's ACD.
pub struct Acd {
    state: Mutex<State>,
    /// Re-arms the timer task when a new deadline may be earlier.
    wake: Notify,
    next_call: AtomicU64,
    /// Set with shared state; called without the state lock held.
    binding_lookup: OnceLock<BindingLookup>,
    /// Offers, conversations and seat changes, for desktops and wallboards.
    pub events: crate::acd::events::SeatEvents,
}

impl Acd {
    /// An ACD with the config's queues and seats.
    pub fn new(config: &Config) -> Acd {
        let queues: Vec<QueueRules> = config.queues.iter().map(|q| q.rules()).collect();
        let acd = Acd {
            state: Mutex::new(State {
                router: Router::new(queues),
                calls: HashMap::new(),
                seat_log: VecDeque::new(),
                missed: VecDeque::new(),
                totals: HashMap::new(),
                wrapping: HashMap::new(),
                wrap_up_total: Duration::ZERO,
                mirror: None,
                outbox: None,
            }),
            wake: Notify::new(),
            next_call: AtomicU64::new(1),
            binding_lookup: OnceLock::new(),
            events: Default::default(),
        };
        acd.sync_seats(config);
        acd
    }

    /// Shares the seats with other nodes as `node`: returns the writes to
    /// carry out, in order ([`super::redis::run`] does). Call once, at start.
    pub fn enable_shared(&self, node: &str, lookup: BindingLookup) -> UnboundedReceiver<Op> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.binding_lookup.set(lookup).ok();
        // Call ids appear in the shared seat state: start this node's at a
        // random point so two nodes' ids do not meet.
        self.next_call
            .store(u64::from(rand::random::<u32>()) << 20, Ordering::Relaxed);
        let mut state = self.lock();
        state.mirror = Some(Mirror::new(node));
        state.outbox = Some(tx);
        rx
    }

    /// Where the seats are kept right now.
    pub fn shared_state(&self) -> SharedState {
        match &self.lock().mirror {
            None => SharedState::Memory,
            Some(m) if m.is_up() => SharedState::Redis,
            Some(_) => SharedState::RedisDown,
        }
    }

    /// Where to ring a seat registered on another node, if one is alive.
    pub fn shared_binding(&self, seat: &str) -> Option<Binding> {
        let state = self.lock();
        let mirror = state.mirror.as_ref()?;
        mirror.binding(seat, Instant::now(), crate::call::record::now_ms())
    }

    /// Writes were answered (in the order they were sent).
    pub(super) fn shared_replies(&self, replies: Vec<(Op, ScriptReply)>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(mirror) = state.mirror.as_mut() else {
            return;
        };
        let now = Instant::now();
        for (op, reply) in replies {
            if let Reserved::Ring { call, seat } =
                mirror.replied(&mut state.router, &op, reply, now)
                && let Some(e) = state.calls.get(&call)
            {
                e.call.events.send(QueueEvent::Offer { seat }).ok();
            }
        }
        self.dispatch(state);
    }

    /// Another node changed a seat.
    pub(super) fn shared_message(&self, published: Published) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if let Some(mirror) = state.mirror.as_mut() {
            mirror.message(&mut state.router, published, Instant::now());
        }
        self.dispatch(state);
    }

    /// A heartbeat was answered at `answered_at` with the live nodes.
    pub(super) fn shared_live(&self, nodes: Vec<String>, answered_at: Instant) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if let Some(mirror) = state.mirror.as_mut() {
            mirror.live_nodes(&mut state.router, nodes, answered_at, Instant::now());
        }
        self.dispatch(state);
    }

    /// Redis is reachable with these seats stored: returns the writes that
    /// restore this node's own, to be sent before anything else.
    pub(super) fn shared_up(&self, records: Vec<SeatRecord>) -> Vec<Op> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let restore = match state.mirror.as_mut() {
            Some(mirror) => mirror.came_up(&mut state.router, records, Instant::now()),
            None => Vec::new(),
        };
        self.dispatch(state);
        restore
    }

    /// Redis is unreachable.
    pub(super) fn shared_down(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if let Some(mirror) = state.mirror.as_mut() {
            mirror.went_down(&mut state.router, Instant::now());
        }
        self.dispatch(state);
    }

    /// Adds the config's enabled seats (new ones logged out) and updates the
    /// skills of known ones.
    pub fn sync_seats(&self, config: &Config) {
        let now = Instant::now();
        let mut state = self.lock();
        for seat in config.seats.iter().filter(|s| s.enabled) {
            state
                .router
                .add_seat(&seat.id, seat.skills.clone(), seat.languages.clone(), now);
        }
    }

    /// A seat's softphone registered: with `available_on_register`, a
    /// logged-out seat becomes available.
    pub fn seat_registered(&self, seat: &str, make_available: bool) {
        // The registrar is asked before the lock is taken (never both).
        let binding = self.binding_lookup.get().and_then(|lookup| lookup(seat));
        let mut guard = self.lock();
        let state = &mut *guard;
        if let (Some(mirror), Some(binding), Some(s)) =
            (state.mirror.as_mut(), binding, state.router.seat(seat))
        {
            let now_ms = crate::call::record::now_ms();
            mirror.bound(
                seat,
                &binding,
                &s.skills,
                &s.languages,
                Instant::now(),
                now_ms,
            );
        }
        let logged_out = state
            .router
            .seat(seat)
            .is_some_and(|s| s.status == Status::LoggedOut);
        if make_available && logged_out {
            state
                .router
                .handle(
                    Event::SetStatus {
                        seat: seat.to_owned(),
                        status: Status::Available,
                    },
                    Instant::now(),
                )
                .ok();
        }
        self.dispatch(state);
    }

    /// A seat's last binding went (unregister or expiry): it cannot take
    /// calls, so it is logged out, unless it is registered on another live
    /// node (shared state).
    pub fn seat_unregistered(&self, seat: &str) {
        let mut state = self.lock();
        let nowhere = match state.mirror.as_mut() {
            Some(mirror) => mirror.unbound(seat, crate::call::record::now_ms()),
            None => true,
        };
        let logged_in = state
            .router
            .seat(seat)
            .is_some_and(|s| s.status != Status::LoggedOut);
        if logged_in && nowhere {
            state
                .router
                .handle(
                    Event::SetStatus {
                        seat: seat.to_owned(),
                        status: Status::LoggedOut,
                    },
                    Instant::now(),
                )
                .ok();
        }
        self.dispatch(&mut state);
    }

    /// A fresh id for a call that will queue.
    pub fn new_call_id(&self) -> CallId {
        self.next_call.fetch_add(1, Ordering::Relaxed)
    }

    /// Puts a call in a queue; its events arrive on `call.events`.
    pub fn enqueue(
        &self,
        id: CallId,
        queue: &str,
        priority: u8,
        call: QueuedCall,
    ) -> Result<(), RouterError> {
        let mut state = self.lock();
        let now = Instant::now();
        state.calls.insert(
            id,
            Entry {
                call,
                queued_at: now,
                queue: queue.to_owned(),
            },
        );
        let result = state.router.handle(
            Event::Enqueue {
                call: id,
                queue: queue.to_owned(),
                priority,
            },
            now,
        );
        match result {
            Ok(()) => state.totals.entry(queue.to_owned()).or_default().entered += 1,
            Err(_) => {
                state.calls.remove(&id);
            }
        }
        self.dispatch(&mut state);
        result
    }

    /// Feeds a seat or call event (answer, reject, end, status).
    pub fn handle(&self, event: Event) -> Result<(), RouterError> {
        let mut state = self.lock();
        let now = Instant::now();
        let answered = match &event {
            Event::Answered { call, .. } => Some(*call),
            _ => None,
        };
        let result = state.router.handle(event, now);
        if let (Some(call), Ok(())) = (answered, &result)
            && let Some(entry) = state.calls.get(&call)
        {
            let in_time = now.saturating_duration_since(entry.queued_at) <= SERVICE_LEVEL_WAIT;
            let queue = entry.queue.clone();
            let totals = state.totals.entry(queue).or_default();
            totals.answered += 1;
            totals.answered_in_time += u64::from(in_time);
        }
        self.dispatch(&mut state);
        result
    }

    /// The call is done with the ACD: abandoned if it was still waiting.
    pub fn leave(&self, id: CallId) {
        let mut state = self.lock();
        if state.router.waiting_position(id).is_some() {
            state
                .router
                .handle(Event::Abandon { call: id }, Instant::now())
                .ok();
        }
        self.dispatch(&mut state);
        state.calls.remove(&id);
    }

    /// Seats, for boards and the API.
    pub fn seats(&self) -> Vec<SeatView> {
        self.lock()
            .router
            .seats()
            .map(|s| SeatView {
                seat: s.id.clone(),
                status: s.status.clone(),
                activity: s.activity.clone(),
                calls_taken: s.calls_taken,
                talk_secs: s.talk_time.as_secs(),
            })
            .collect()
    }

    /// One seat.
    pub fn seat(&self, id: &str) -> Option<SeatView> {
        self.seats().into_iter().find(|s| s.seat == id)
    }

    /// Queues: who waits, for how long, and what each has handled.
    pub fn queues(&self) -> Vec<QueueView> {
        let state = self.lock();
        state
            .router
            .queue_load(Instant::now())
            .into_iter()
            .map(|(q, (waiting, longest))| QueueView {
                queue: q.to_owned(),
                waiting,
                longest_wait_secs: longest.as_secs(),
                totals: state.totals.get(q).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Queues and seats at this moment, for `/metrics`.
    pub fn scrape(&self) -> crate::report::metrics::AcdScrape {
        crate::report::metrics::AcdScrape {
            queues: self.queues(),
            seats: self.seats(),
            totals: self.seat_totals(),
            shared: self.shared_view(),
        }
    }

    /// The shared state's figures; `None` in memory.
    pub fn shared_view(&self) -> Option<SharedView> {
        let state = self.lock();
        let m = state.mirror.as_ref()?;
        Some(SharedView {
            up: m.is_up(),
            reserved: m.reserved,
            refused: m.refused,
        })
    }

    /// Talk and wrap-up time of every seat since start.
    pub fn seat_totals(&self) -> SeatTotals {
        let state = self.lock();
        let now = Instant::now();
        let open_wrap: Duration = state
            .wrapping
            .values()
            .map(|t| now.saturating_duration_since(*t))
            .sum();
        SeatTotals {
            talk: state.router.seats().map(|s| s.talk_time).sum(),
            wrap_up: state.wrap_up_total + open_wrap,
        }
    }

    /// The newest seat changes, oldest first.
    pub fn seat_log(&self, limit: usize) -> Vec<SeatChange> {
        let state = self.lock();
        let skip = state.seat_log.len().saturating_sub(limit);
        state.seat_log.iter().skip(skip).cloned().collect()
    }

    /// Callers who hung up while waiting, oldest first.
    pub fn missed(&self) -> Vec<MissedCall> {
        self.lock().missed.iter().cloned().collect()
    }

    /// Keeps the router's deadlines (ring timeouts, wrap-up, overflow,
    /// announcements) until cancelled.
    pub async fn run(&self, cancel: CancellationToken) {
        loop {
            let due = self.lock().router.poll_timeout();
            let sleep = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {
                    let mut state = self.lock();
                    state.router.handle_timeout(Instant::now());
                    self.dispatch(&mut state);
                }
                _ = self.wake.notified() => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("acd lock")
    }

    /// Delivers the router's actions, and wakes the timer task: any event
    /// may have brought a deadline forward (a new caller's first
    /// announcement, a ring timeout) even when it produced no action.
    fn dispatch(&self, state: &mut State) {
        self.wake.notify_one();
        while let Some(action) = state.router.poll_action() {
            let (call, event) = match action {
                Action::Offer { call, seat } => match state.mirror.as_mut() {
                    // Shared: rung once the seat is reserved
                    // ([`Acd::shared_replies`]).
                    Some(mirror) if mirror.is_up() => {
                        mirror.reserve(call, &seat);
                        continue;
                    }
                    _ => (call, QueueEvent::Offer { seat }),
                },
                Action::Withdraw { call, seat } => (call, QueueEvent::Withdraw { seat }),
                Action::Announce {
                    call,
                    position,
                    estimated_wait,
                } => (
                    call,
                    QueueEvent::Announce {
                        position,
                        estimated_wait,
                    },
                ),
                Action::Overflowed { call, from, to } => {
                    tracing::info!(call, %from, %to, "queue overflow");
                    (call, QueueEvent::Overflowed { to })
                }
                Action::MaxWait { call, queue } => {
                    tracing::info!(call, %queue, "longest wait reached");
                    state.totals.entry(queue).or_default().timed_out += 1;
                    (call, QueueEvent::MaxWait)
                }
                Action::Missed {
                    call,
                    queue,
                    waited,
                } => {
                    let counted = state
                        .calls
                        .get(&call)
                        .map_or_else(|| queue.clone(), |e| e.queue.clone());
                    state.totals.entry(counted).or_default().abandoned += 1;
                    if let Some(e) = state.calls.get(&call) {
                        let c = &e.call;
                        push_bounded(
                            &mut state.missed,
                            MissedCall {
                                call_id: c.call_id.clone(),
                                caller: c.caller.clone(),
                                queue,
                                waited_ms: waited.as_millis() as u64,
                                at: crate::call::record::now_ms(),
                            },
                        );
                    }
                    continue;
                }
                Action::SeatChanged {
                    seat,
                    status,
                    activity,
                } => {
                    tracing::info!(%seat, ?status, ?activity, "seat changed");
                    if let Some(mirror) = state.mirror.as_mut() {
                        mirror.local_change(&seat, &status, &activity);
                    }
                    let now = Instant::now();
                    if activity == Activity::WrapUp {
                        state.wrapping.entry(seat.clone()).or_insert(now);
                    } else if let Some(since) = state.wrapping.remove(&seat) {
                        state.wrap_up_total += now.saturating_duration_since(since);
                    }
                    let at = crate::call::record::now_ms();
                    self.events.publish(crate::acd::events::SeatEvent::State {
                        seat: seat.clone(),
                        at,
                        status: status.clone(),
                        activity: activity.clone(),
                    });
                    push_bounded(
                        &mut state.seat_log,
                        SeatChange {
                            seat,
                            at,
                            status,
                            activity,
                        },
                    );
                    continue;
                }
            };
            if let Some(e) = state.calls.get(&call) {
                e.call.events.send(event).ok();
            }
        }
        if let (Some(mirror), Some(outbox)) = (state.mirror.as_mut(), &state.outbox) {
            for op in mirror.take_ops() {
                outbox.send(op).ok();
            }
        }
    }
}

fn push_bounded<T>(list: &mut VecDeque<T>, item: T) {
    if list.len() >= LOG_LIMIT {
        list.pop_front();
    }
    list.push_back(item);
}
