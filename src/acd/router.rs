//! The ACD router: which waiting caller goes to which seat, and when.
//!
//! Sans-IO like the IVR interpreter: events in ([`Router::handle`]: a call
//! joins or leaves a queue, a seat logs in, answers, misses, hangs up,
//! finishes wrap-up), actions out ([`Router::poll_action`]: offer a call to a
//! seat, withdraw an offer, announce a position, overflow, give up), time
//! passed in, and [`Router::poll_timeout`] for the next deadline. The call
//! and seat actors do the SIP and media; the shared-state store (memory or
//! Redis) will hold what this struct holds for one node.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A call waiting for a seat (the call actor's id).
pub type CallId = u64;
/// A seat, e.g. `1001`.
pub type SeatId = String;

/// How a queue picks among free seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The seat idle the longest.
    LongestIdle,
    /// Seats in turn, after the one offered last.
    RoundRobin,
    /// The seat that took the fewest calls.
    FewestCalls,
    /// The seat with the least talk time.
    LeastTalkTime,
    /// Every free seat at once; the first to answer takes it.
    RingAll,
    /// The best proficiency in the queue's skills, then the longest idle.
    SkillsBased,
}

/// One queue's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRules {
    pub name: String,
    pub strategy: Strategy,
    /// Skill → minimum proficiency (1-10) a seat needs.
    pub skills: BTreeMap<String, u8>,
    /// A language a seat must speak, if any.
    pub language: Option<String>,
    /// How long a seat may ring before the offer is withdrawn.
    pub ring_timeout: Duration,
    /// Wrap-up after each call of this queue.
    pub wrap_up: Duration,
    /// Missed offers in a row after which a seat goes on break.
    pub max_misses: u32,
    /// Move waiting callers to another queue after this wait.
    pub overflow: Option<(Duration, String)>,
    /// Give up on the queue after this wait (the call decides what next).
    pub max_wait: Option<Duration>,
    /// Tell waiting callers their position this often.
    pub announce_every: Option<Duration>,
}

/// A seat's availability, as the agent sets it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Status {
    LoggedOut,
    Available,
    OnBreak(String),
}

/// What a seat is doing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "call")]
pub enum Activity {
    Idle,
    /// Ringing with this call.
    Offered(CallId),
    InCall(CallId),
    WrapUp,
}

/// A seat's skills and history.
#[derive(Debug, Clone)]
pub struct Seat {
    pub id: SeatId,
    pub status: Status,
    pub activity: Activity,
    /// Skill → proficiency 1-10.
    pub skills: BTreeMap<String, u8>,
    pub languages: Vec<String>,
    idle_since: Instant,
    /// After a reject, the seat is left alone until then.
    busy_until: Option<Instant>,
    wrap_up_until: Option<Instant>,
    call_started: Option<Instant>,
    /// The queue of the call in progress (its wrap-up applies).
    call_queue: Option<String>,
    pub calls_taken: u64,
    pub talk_time: Duration,
    pub misses_in_row: u32,
}

#[derive(Debug, Clone)]
struct Waiting {
    id: CallId,
    queue: String,
    priority: u8,
    /// When the caller first queued (kept across re-queue and overflow).
    since: Instant,
    /// When the caller entered the current queue.
    in_queue_since: Instant,
    next_announce: Option<Instant>,
    /// Seats ringing for this call, with the offer deadline.
    offered: Vec<(SeatId, Instant)>,
}

/// Inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A call joins a queue; `priority` 0-9, higher first.
    Enqueue {
        call: CallId,
        queue: String,
        priority: u8,
    },
    /// The caller hung up (or left) before a seat answered.
    Abandon { call: CallId },
    /// A seat's availability changed.
    SetStatus { seat: SeatId, status: Status },
    /// A ringing seat answered.
    Answered { seat: SeatId, call: CallId },
    /// A ringing seat refused (busy, declined); it is left alone for `pause`.
    Rejected {
        seat: SeatId,
        call: CallId,
        pause: Duration,
    },
    /// The conversation ended; wrap-up starts.
    CallEnded { seat: SeatId },
    /// The agent finished wrap-up early.
    WrapUpDone { seat: SeatId },
    /// An available, idle seat takes a call outside the queues (another
    /// agent brought it into a transfer or three-way call); it is in call
    /// until `CallEnded`.
    Engaged { seat: SeatId, call: CallId },
}

/// Outputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Ring this seat with this call.
    Offer { call: CallId, seat: SeatId },
    /// Stop ringing (no answer, another seat answered, caller left).
    Withdraw { call: CallId, seat: SeatId },
    /// Tell the caller where they stand.
    Announce {
        call: CallId,
        position: usize,
        estimated_wait: Duration,
    },
    /// The call moved to another queue.
    Overflowed {
        call: CallId,
        from: String,
        to: String,
    },
    /// The call waited as long as the queue allows.
    MaxWait { call: CallId, queue: String },
    /// An abandoned call, for the missed-call list.
    Missed {
        call: CallId,
        queue: String,
        waited: Duration,
    },
    /// A seat changed state; logged for KPIs and audits.
    SeatChanged {
        seat: SeatId,
        status: Status,
        activity: Activity,
    },
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    #[error("no queue named {0:?}")]
    NoQueue(String),
    #[error("no seat {0:?}")]
    NoSeat(SeatId),
    #[error("call {0} is not waiting")]
    NotWaiting(CallId),
    #[error("seat {0:?} was not offered call {1}")]
    NotOffered(SeatId, CallId),
    #[error("seat {0:?} is not available and idle")]
    NotFree(SeatId),
}

/// Queues, seats and waiting calls of one routing domain.
#[derive(Debug, Default)]
pub struct Router {
    queues: BTreeMap<String, QueueRules>,
    seats: BTreeMap<SeatId, Seat>,
    waiting: Vec<Waiting>,
    /// Round-robin position per queue: the seat offered last.
    last_offered: HashMap<String, SeatId>,
    /// Average conversation, for wait estimates.
    handled: u64,
    handle_time: Duration,
    actions: VecDeque<Action>,
}

impl Router {
    /// A router with these queues.
    pub fn new(queues: Vec<QueueRules>) -> Router {
        Router {
            queues: queues.into_iter().map(|q| (q.name.clone(), q)).collect(),
            ..Router::default()
        }
    }

    /// Adds a seat (logged out) or replaces its skills.
    pub fn add_seat(
        &mut self,
        id: &str,
        skills: BTreeMap<String, u8>,
        languages: Vec<String>,
        now: Instant,
    ) {
        let seat = self.seats.entry(id.to_owned()).or_insert_with(|| Seat {
            id: id.to_owned(),
            status: Status::LoggedOut,
            activity: Activity::Idle,
            skills: BTreeMap::new(),
            languages: vec![],
            idle_since: now,
            busy_until: None,
            wrap_up_until: None,
            call_started: None,
            call_queue: None,
            calls_taken: 0,
            talk_time: Duration::ZERO,
            misses_in_row: 0,
        });
        seat.skills = skills;
        seat.languages = languages;
    }

    /// A seat, for boards and tests.
    pub fn seat(&self, id: &str) -> Option<&Seat> {
        self.seats.get(id)
    }

    /// Calls waiting in a queue, in the order they will be served.
    pub fn waiting_in(&self, queue: &str) -> Vec<CallId> {
        self.waiting
            .iter()
            .filter(|w| w.queue == queue)
            .map(|w| w.id)
            .collect()
    }

    /// Every seat, in id order.
    pub fn seats(&self) -> impl Iterator<Item = &Seat> {
        self.seats.values()
    }

    /// The queues' names.
    pub fn queue_names(&self) -> impl Iterator<Item = &str> {
        self.queues.keys().map(String::as_str)
    }

    /// Per queue: calls waiting and the longest of their waits (since they
    /// first queued), for boards and metrics.
    pub fn queue_load(&self, now: Instant) -> BTreeMap<&str, (usize, Duration)> {
        let mut load: BTreeMap<&str, (usize, Duration)> = self
            .queues
            .keys()
            .map(|q| (q.as_str(), (0, Duration::ZERO)))
            .collect();
        for w in &self.waiting {
            if let Some(entry) = load.get_mut(w.queue.as_str()) {
                entry.0 += 1;
                entry.1 = entry.1.max(now.saturating_duration_since(w.since));
            }
        }
        load
    }

    /// The queue a waiting call is in.
    pub fn queue_of(&self, call: CallId) -> Option<&str> {
        self.waiting
            .iter()
            .find(|w| w.id == call)
            .map(|w| w.queue.as_str())
    }

    /// Where a call stands among all waiting calls, if it is waiting.
    pub fn waiting_position(&self, call: CallId) -> Option<usize> {
        self.position(call)
    }

    /// The next action.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Feeds one event.
    pub fn handle(&mut self, event: Event, now: Instant) -> Result<(), RouterError> {
        match event {
            Event::Enqueue {
                call,
                queue,
                priority,
            } => {
                let rules = self
                    .queues
                    .get(&queue)
                    .ok_or_else(|| RouterError::NoQueue(queue.clone()))?;
                let next_announce = rules.announce_every.map(|d| now + d);
                self.insert(Waiting {
                    id: call,
                    queue,
                    priority,
                    since: now,
                    in_queue_since: now,
                    next_announce,
                    offered: vec![],
                });
            }
            Event::Abandon { call } => {
                let i = self.position(call).ok_or(RouterError::NotWaiting(call))?;
                let w = self.waiting.remove(i);
                for (seat, _) in &w.offered {
                    self.actions.push_back(Action::Withdraw {
                        call,
                        seat: seat.clone(),
                    });
                    self.set_activity(seat, Activity::Idle, now);
                }
                self.actions.push_back(Action::Missed {
                    call,
                    queue: w.queue,
                    waited: now.saturating_duration_since(w.since),
                });
            }
            Event::SetStatus { seat, status } => {
                let s = self
                    .seats
                    .get_mut(&seat)
                    .ok_or_else(|| RouterError::NoSeat(seat.clone()))?;
                if status == Status::Available {
                    s.misses_in_row = 0;
                    if s.activity == Activity::Idle {
                        s.idle_since = now;
                    }
                }
                s.status = status;
                self.changed(&seat);
            }
            Event::Answered { seat, call } => {
                let i = self.position(call).ok_or(RouterError::NotWaiting(call))?;
                if !self.waiting[i].offered.iter().any(|(s, _)| *s == seat) {
                    return Err(RouterError::NotOffered(seat, call));
                }
                let w = self.waiting.remove(i);
                for (other, _) in w.offered.iter().filter(|(s, _)| *s != seat) {
                    self.actions.push_back(Action::Withdraw {
                        call,
                        seat: other.clone(),
                    });
                    self.set_activity(other, Activity::Idle, now);
                }
                if let Some(s) = self.seats.get_mut(&seat) {
                    s.misses_in_row = 0;
                    s.call_started = Some(now);
                    s.call_queue = Some(w.queue.clone());
                }
                self.set_activity(&seat, Activity::InCall(call), now);
            }
            Event::Rejected { seat, call, pause } => {
                self.withdraw_one(call, &seat, now)?;
                if let Some(s) = self.seats.get_mut(&seat) {
                    s.busy_until = Some(now + pause);
                }
            }
            Event::CallEnded { seat } => {
                let s = self
                    .seats
                    .get_mut(&seat)
                    .ok_or_else(|| RouterError::NoSeat(seat.clone()))?;
                if let Some(start) = s.call_started.take() {
                    let talk = now.saturating_duration_since(start);
                    s.talk_time += talk;
                    s.calls_taken += 1;
                    self.handled += 1;
                    self.handle_time += talk;
                }
                let wrap = s
                    .call_queue
                    .take()
                    .and_then(|q| self.queues.get(&q))
                    .map_or(Duration::ZERO, |q| q.wrap_up);
                if wrap.is_zero() {
                    self.set_activity(&seat, Activity::Idle, now);
                } else {
                    if let Some(s) = self.seats.get_mut(&seat) {
                        s.wrap_up_until = Some(now + wrap);
                    }
                    self.set_activity(&seat, Activity::WrapUp, now);
                }
            }
            Event::Engaged { seat, call } => {
                let s = self
                    .seats
                    .get_mut(&seat)
                    .ok_or_else(|| RouterError::NoSeat(seat.clone()))?;
                if s.status != Status::Available || s.activity != Activity::Idle {
                    return Err(RouterError::NotFree(seat));
                }
                s.call_started = Some(now);
                s.call_queue = None;
                self.set_activity(&seat, Activity::InCall(call), now);
            }
            Event::WrapUpDone { seat } => {
                let s = self
                    .seats
                    .get_mut(&seat)
                    .ok_or_else(|| RouterError::NoSeat(seat.clone()))?;
                if s.activity == Activity::WrapUp {
                    s.wrap_up_until = None;
                    self.set_activity(&seat, Activity::Idle, now);
                }
            }
        }
        self.route(now);
        Ok(())
    }

    /// Whether `call` is waiting with an open offer to `seat`.
    pub fn is_offered(&self, call: CallId, seat: &str) -> bool {
        self.waiting
            .iter()
            .find(|w| w.id == call)
            .is_some_and(|w| w.offered.iter().any(|(s, _)| s == seat))
    }

    /// Sets a seat's state as another node reported it (the shared state,
    /// [`crate::acd::shared`]): no [`Action::SeatChanged`] is emitted, since
    /// the change is not this router's to report, and this router's own
    /// timers and talk-time bookkeeping for the seat end when its activity
    /// changes. Waiting calls are routed afterwards, so a seat that became
    /// free elsewhere can be offered here.
    pub fn mirror_seat(
        &mut self,
        seat: &str,
        status: Status,
        activity: Activity,
        now: Instant,
    ) -> Result<(), RouterError> {
        self.set_mirrored(seat, status, activity, now)?;
        self.route(now);
        Ok(())
    }

    /// Takes back an offer the call actor was never told about (the shared
    /// state refused to reserve the seat), without counting a miss or a
    /// pause, and gives the seat the state it really has; then routes again.
    pub fn retract_offer(
        &mut self,
        call: CallId,
        seat: &str,
        status: Status,
        activity: Activity,
        now: Instant,
    ) -> Result<(), RouterError> {
        let i = self.position(call).ok_or(RouterError::NotWaiting(call))?;
        let before = self.waiting[i].offered.len();
        self.waiting[i].offered.retain(|(s, _)| s != seat);
        if self.waiting[i].offered.len() == before {
            return Err(RouterError::NotOffered(seat.to_owned(), call));
        }
        self.set_mirrored(seat, status, activity, now)?;
        self.route(now);
        Ok(())
    }

    /// Keeps a seat out of routing until `until` (a later pause wins).
    pub fn pause_seat(&mut self, seat: &str, until: Instant) {
        if let Some(s) = self.seats.get_mut(seat) {
            s.busy_until = Some(s.busy_until.map_or(until, |t| t.max(until)));
        }
    }

    fn set_mirrored(
        &mut self,
        seat: &str,
        status: Status,
        activity: Activity,
        now: Instant,
    ) -> Result<(), RouterError> {
        let s = self
            .seats
            .get_mut(seat)
            .ok_or_else(|| RouterError::NoSeat(seat.to_owned()))?;
        if s.activity != activity {
            if activity == Activity::Idle {
                s.idle_since = now;
            }
            s.wrap_up_until = None;
            s.call_started = None;
            s.call_queue = None;
        }
        s.status = status;
        s.activity = activity;
        Ok(())
    }

    /// The next moment something is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for w in &self.waiting {
            w.offered.iter().for_each(|(_, t)| consider(*t));
            if let Some(t) = w.next_announce {
                consider(t);
            }
            if let Some(rules) = self.queues.get(&w.queue) {
                if let Some((after, _)) = &rules.overflow {
                    consider(w.in_queue_since + *after);
                }
                if let Some(max) = rules.max_wait {
                    consider(w.in_queue_since + max);
                }
            }
        }
        for s in self.seats.values() {
            s.busy_until
                .into_iter()
                .chain(s.wrap_up_until)
                .for_each(&mut consider);
        }
        next
    }

    /// Acts on everything due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Seats coming back from a reject pause or wrap-up.
        let back: Vec<SeatId> = self
            .seats
            .values_mut()
            .filter_map(|s| {
                if s.busy_until.is_some_and(|t| t <= now) {
                    s.busy_until = None;
                }
                (s.wrap_up_until.is_some_and(|t| t <= now)).then(|| {
                    s.wrap_up_until = None;
                    s.id.clone()
                })
            })
            .collect();
        for seat in back {
            self.set_activity(&seat, Activity::Idle, now);
        }
        // Ring timeouts: the caller goes back to the head of the queue (its
        // original wait is kept), the seat counts a miss.
        let expired: Vec<(CallId, SeatId)> = self
            .waiting
            .iter()
            .flat_map(|w| {
                w.offered
                    .iter()
                    .filter(|(_, t)| *t <= now)
                    .map(|(s, _)| (w.id, s.clone()))
            })
            .collect();
        for (call, seat) in expired {
            self.withdraw_one(call, &seat, now).ok();
            let max_misses = self.max_misses_for(call);
            if let Some(s) = self.seats.get_mut(&seat) {
                s.misses_in_row += 1;
                if max_misses > 0 && s.misses_in_row >= max_misses {
                    s.status = Status::OnBreak("no-answer".into());
                    self.changed(&seat);
                }
            }
        }
        self.overflow_and_max_wait(now);
        self.announce(now);
        self.route(now);
    }

    fn max_misses_for(&self, call: CallId) -> u32 {
        self.waiting
            .iter()
            .find(|w| w.id == call)
            .and_then(|w| self.queues.get(&w.queue))
            .map_or(0, |q| q.max_misses)
    }

    fn overflow_and_max_wait(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.waiting.len() {
            let w = &self.waiting[i];
            let Some(rules) = self.queues.get(&w.queue) else {
                i += 1;
                continue;
            };
            let waited = now.saturating_duration_since(w.in_queue_since);
            if let Some((after, to)) = &rules.overflow
                && waited >= *after
                && w.offered.is_empty()
                && self.queues.contains_key(to)
            {
                let to = to.clone();
                let mut w = self.waiting.remove(i);
                let from = std::mem::replace(&mut w.queue, to.clone());
                w.in_queue_since = now;
                self.actions.push_back(Action::Overflowed {
                    call: w.id,
                    from,
                    to,
                });
                self.insert(w);
                continue;
            }
            if rules.max_wait.is_some_and(|max| waited >= max) && w.offered.is_empty() {
                let w = self.waiting.remove(i);
                self.actions.push_back(Action::MaxWait {
                    call: w.id,
                    queue: w.queue,
                });
                continue;
            }
            i += 1;
        }
    }

    fn announce(&mut self, now: Instant) {
        let average = if self.handled == 0 {
            Duration::from_secs(180)
        } else {
            self.handle_time / self.handled as u32
        };
        // Counted once per pass, and only if an announcement is due.
        let mut staffed: Option<usize> = None;
        let mut positions: HashMap<&str, usize> = HashMap::new();
        for w in &mut self.waiting {
            let position = positions.entry(w.queue.as_str()).or_default();
            *position += 1;
            let Some(at) = w.next_announce else { continue };
            if at > now {
                continue;
            }
            let every = self.queues.get(&w.queue).and_then(|q| q.announce_every);
            w.next_announce = every.map(|d| now + d);
            let staffed = *staffed.get_or_insert_with(|| {
                self.seats
                    .values()
                    .filter(|s| s.status == Status::Available)
                    .count()
                    .max(1)
            });
            let estimated_wait = average * (*position as u32) / staffed as u32;
            self.actions.push_back(Action::Announce {
                call: w.id,
                position: *position,
                estimated_wait,
            });
        }
    }

    /// Inserts by priority (higher first), then by how long the caller has
    /// waited in all (longer first).
    fn insert(&mut self, w: Waiting) {
        let at = self
            .waiting
            .iter()
            .position(|o| {
                (o.priority, std::cmp::Reverse(o.since)) < (w.priority, std::cmp::Reverse(w.since))
            })
            .unwrap_or(self.waiting.len());
        self.waiting.insert(at, w);
    }

    fn position(&self, call: CallId) -> Option<usize> {
        self.waiting.iter().position(|w| w.id == call)
    }

    fn withdraw_one(&mut self, call: CallId, seat: &str, now: Instant) -> Result<(), RouterError> {
        let i = self.position(call).ok_or(RouterError::NotWaiting(call))?;
        let before = self.waiting[i].offered.len();
        self.waiting[i].offered.retain(|(s, _)| s != seat);
        if self.waiting[i].offered.len() == before {
            return Err(RouterError::NotOffered(seat.to_owned(), call));
        }
        self.actions.push_back(Action::Withdraw {
            call,
            seat: seat.to_owned(),
        });
        self.set_activity(seat, Activity::Idle, now);
        Ok(())
    }

    fn set_activity(&mut self, seat: &str, activity: Activity, now: Instant) {
        if let Some(s) = self.seats.get_mut(seat) {
            if activity == Activity::Idle && s.activity != Activity::Idle {
                s.idle_since = now;
            }
            s.activity = activity;
            self.changed(seat);
        }
    }

    fn changed(&mut self, seat: &str) {
        if let Some(s) = self.seats.get(seat) {
            self.actions.push_back(Action::SeatChanged {
                seat: s.id.clone(),
                status: s.status.clone(),
                activity: s.activity.clone(),
            });
        }
    }

    /// Offers waiting calls to free seats, best-served call first.
    ///
    /// Runs after every event, so it must be cheap when nothing can happen:
    /// the free seats are found once (most events find none and stop
    /// there), each queue's eligible seats are worked out once per pass, and
    /// the pass ends as soon as every free seat has an offer.
    fn route(&mut self, now: Instant) {
        let idle: Vec<&Seat> = self
            .seats
            .values()
            .filter(|s| {
                s.status == Status::Available
                    && s.activity == Activity::Idle
                    && s.busy_until.is_none_or(|t| t <= now)
            })
            .collect();
        if idle.is_empty() {
            return;
        }
        let mut eligible: HashMap<&str, Vec<&Seat>> = HashMap::new();
        let mut taken: HashSet<&str> = HashSet::new();
        let mut offers: Vec<(usize, Vec<SeatId>, Instant)> = Vec::new();
        for (i, w) in self.waiting.iter().enumerate() {
            if taken.len() == idle.len() {
                break;
            }
            if !w.offered.is_empty() {
                continue;
            }
            let Some(rules) = self.queues.get(&w.queue) else {
                continue;
            };
            let free = eligible.entry(rules.name.as_str()).or_insert_with(|| {
                idle.iter()
                    .copied()
                    .filter(|s| qualifies(rules, s))
                    .collect()
            });
            free.retain(|s| !taken.contains(s.id.as_str()));
            if free.is_empty() {
                continue;
            }
            let chosen: Vec<&Seat> = match rules.strategy {
                Strategy::RingAll => free.clone(),
                Strategy::LongestIdle => pick(free, |s| (std::cmp::Reverse(s.idle_since), 0)),
                Strategy::FewestCalls => pick(free, |s| {
                    (std::cmp::Reverse(s.idle_since), u64::MAX - s.calls_taken)
                }),
                Strategy::LeastTalkTime => pick(free, |s| {
                    (
                        std::cmp::Reverse(s.idle_since),
                        u64::MAX - s.talk_time.as_millis() as u64,
                    )
                }),
                Strategy::SkillsBased => {
                    let score = |s: &Seat| -> u64 {
                        rules
                            .skills
                            .keys()
                            .map(|k| u64::from(*s.skills.get(k).unwrap_or(&0)))
                            .sum()
                    };
                    pick(free, |s| (std::cmp::Reverse(s.idle_since), score(s)))
                }
                Strategy::RoundRobin => {
                    // `free` is in seat-id order: the next id after the
                    // last one offered, wrapping to the first.
                    let last = self.last_offered.get(&rules.name);
                    free.iter()
                        .find(|s| last.is_none_or(|l| s.id > *l))
                        .or(free.first())
                        .copied()
                        .into_iter()
                        .collect()
                }
            };
            if let Some(last) = chosen.last() {
                self.last_offered
                    .insert(rules.name.clone(), last.id.clone());
            }
            taken.extend(chosen.iter().map(|s| s.id.as_str()));
            offers.push((
                i,
                chosen.iter().map(|s| s.id.clone()).collect(),
                now + rules.ring_timeout,
            ));
        }
        for (i, seats, deadline) in offers {
            let call = self.waiting[i].id;
            for seat in seats {
                self.waiting[i].offered.push((seat.clone(), deadline));
                self.actions.push_back(Action::Offer {
                    call,
                    seat: seat.clone(),
                });
                self.set_activity(&seat, Activity::Offered(call), now);
            }
        }
    }
}

/// Whether a seat has a queue's skills (at their levels) and language.
fn qualifies(rules: &QueueRules, s: &Seat) -> bool {
    rules
        .skills
        .iter()
        .all(|(skill, min)| s.skills.get(skill).is_some_and(|l| l >= min))
        && rules
            .language
            .as_ref()
            .is_none_or(|l| s.languages.contains(l))
}

/// The seat with the greatest key: the number first, then the ordering
/// (ties on both go to the lowest seat id, so routing is deterministic).
fn pick<'a, K: Ord>(free: &[&'a Seat], key: impl Fn(&Seat) -> (K, u64)) -> Vec<&'a Seat> {
    free.iter()
        .max_by(|a, b| {
            let (ka, sa) = key(a);
            let (kb, sb) = key(b);
            sa.cmp(&sb).then(ka.cmp(&kb)).then(b.id.cmp(&a.id))
        })
        .copied()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(name: &str, strategy: Strategy) -> QueueRules {
        QueueRules {
            name: name.into(),
            strategy,
            skills: BTreeMap::new(),
            language: None,
            ring_timeout: Duration::from_secs(15),
            wrap_up: Duration::ZERO,
            max_misses: 2,
            overflow: None,
            max_wait: None,
            announce_every: None,
        }
    }

    struct T {
        r: Router,
        t0: Instant,
    }

    impl T {
        fn new(queues: Vec<QueueRules>, seats: &[&str]) -> T {
            let t0 = Instant::now();
            let mut r = Router::new(queues);
            for s in seats {
                r.add_seat(s, BTreeMap::new(), vec!["cmn".into()], t0);
            }
            T { r, t0 }
        }
        fn at(&self, secs: u64) -> Instant {
            self.t0 + Duration::from_secs(secs)
        }
        fn ev(&mut self, secs: u64, e: Event) {
            let now = self.at(secs);
            self.r.handle(e, now).unwrap();
        }
        fn tick(&mut self, secs: u64) {
            let now = self.at(secs);
            self.r.handle_timeout(now);
        }
        fn available(&mut self, secs: u64, seat: &str) {
            self.ev(
                secs,
                Event::SetStatus {
                    seat: seat.into(),
                    status: Status::Available,
                },
            );
        }
        fn enqueue(&mut self, secs: u64, call: CallId, queue: &str, priority: u8) {
            self.ev(
                secs,
                Event::Enqueue {
                    call,
                    queue: queue.into(),
                    priority,
                },
            );
        }
        /// Offers made since the last look, as (call, seat).
        fn offers(&mut self) -> Vec<(CallId, String)> {
            let mut out = vec![];
            while let Some(a) = self.r.poll_action() {
                if let Action::Offer { call, seat } = a {
                    out.push((call, seat));
                }
            }
            out
        }
        fn actions(&mut self) -> Vec<Action> {
            std::iter::from_fn(|| self.r.poll_action()).collect()
        }
        /// Answers and ends a call at once.
        fn serve(&mut self, secs: u64, seat: &str, call: CallId, talk: u64) {
            self.ev(
                secs,
                Event::Answered {
                    seat: seat.into(),
                    call,
                },
            );
            self.ev(secs + talk, Event::CallEnded { seat: seat.into() });
        }
    }

    #[test]
    fn priority_then_first_come() {
        let mut t = T::new(vec![rules("q", Strategy::LongestIdle)], &["1001"]);
        t.enqueue(0, 1, "q", 5);
        t.enqueue(1, 2, "q", 5);
        t.enqueue(2, 3, "q", 7);
        t.enqueue(3, 4, "q", 9);
        assert_eq!(t.r.waiting_in("q"), vec![4, 3, 1, 2]);
        t.available(4, "1001");
        assert_eq!(t.offers(), vec![(4, "1001".to_string())]);
    }

    #[test]
    fn longest_idle_seat_first() {
        let mut t = T::new(
            vec![rules("q", Strategy::LongestIdle)],
            &["1001", "1002", "1003"],
        );
        t.available(0, "1002");
        t.available(1, "1003");
        t.available(2, "1001");
        t.enqueue(10, 1, "q", 5);
        t.enqueue(10, 2, "q", 5);
        t.enqueue(10, 3, "q", 5);
        assert_eq!(
            t.offers(),
            vec![(1, "1002".into()), (2, "1003".into()), (3, "1001".into())]
        );
    }

    #[test]
    fn round_robin_takes_turns() {
        let mut t = T::new(
            vec![rules("q", Strategy::RoundRobin)],
            &["1001", "1002", "1003"],
        );
        for s in ["1001", "1002", "1003"] {
            t.available(0, s);
        }
        let mut order = vec![];
        for call in 1..=6 {
            t.enqueue(call, call, "q", 5);
            let (c, seat) = t.offers().pop().unwrap();
            order.push(seat.clone());
            t.serve(call, &seat, c, 0);
        }
        assert_eq!(order, ["1001", "1002", "1003", "1001", "1002", "1003"]);
    }

    #[test]
    fn fewest_calls_and_least_talk_time() {
        let mut t = T::new(
            vec![rules("q", Strategy::FewestCalls)],
            &["1001", "1002", "1003"],
        );
        for (seat, taken) in [("1001", 2), ("1002", 1), ("1003", 3)] {
            t.r.seats.get_mut(seat).unwrap().calls_taken = taken;
            t.available(0, seat);
        }
        t.enqueue(1, 1, "q", 5);
        assert_eq!(t.offers(), vec![(1, "1002".into())]);
        t.serve(1, "1002", 1, 5);
        // Now 1001 and 1002 have taken two each: the longer idle one, 1001.
        t.enqueue(10, 2, "q", 5);
        assert_eq!(t.offers(), vec![(2, "1001".into())]);

        let mut t = T::new(vec![rules("q", Strategy::LeastTalkTime)], &["1001", "1002"]);
        t.available(0, "1001");
        t.available(0, "1002");
        t.enqueue(1, 1, "q", 5);
        let (c, s) = t.offers()[0].clone();
        t.serve(1, &s, c, 300);
        t.enqueue(400, 2, "q", 5);
        let (c2, s2) = t.offers()[0].clone();
        assert_ne!(s2, s, "the seat that talked 300 s waits");
        t.serve(400, &s2, c2, 10);
        t.enqueue(500, 3, "q", 5);
        assert_eq!(t.offers()[0].1, s2, "least talk time");
    }

    #[test]
    fn ring_all_first_answer_wins() {
        let mut t = T::new(
            vec![rules("q", Strategy::RingAll)],
            &["1001", "1002", "1003"],
        );
        for s in ["1001", "1002", "1003"] {
            t.available(0, s);
        }
        t.enqueue(1, 7, "q", 5);
        assert_eq!(t.offers().len(), 3);
        t.ev(
            2,
            Event::Answered {
                seat: "1002".into(),
                call: 7,
            },
        );
        let withdrawn: Vec<_> = t
            .actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Withdraw { seat, .. } => Some(seat),
                _ => None,
            })
            .collect();
        assert_eq!(withdrawn, ["1001", "1003"]);
        assert_eq!(t.r.seat("1002").unwrap().activity, Activity::InCall(7));
        assert_eq!(t.r.seat("1001").unwrap().activity, Activity::Idle);
    }

    #[test]
    fn a_seat_brought_into_a_call_is_not_offered_queue_calls() {
        let mut t = T::new(vec![rules("q", Strategy::LongestIdle)], &["1001", "1002"]);
        t.available(0, "1002");
        let engage = |t: &mut T, seat: &str| {
            t.r.handle(
                Event::Engaged {
                    seat: seat.into(),
                    call: 90,
                },
                t.at(1),
            )
        };
        // Not logged in: refused.
        assert_eq!(
            engage(&mut t, "1001"),
            Err(RouterError::NotFree("1001".into()))
        );
        assert_eq!(engage(&mut t, "1002"), Ok(()));
        assert_eq!(t.r.seat("1002").unwrap().activity, Activity::InCall(90));
        assert_eq!(
            engage(&mut t, "1002"),
            Err(RouterError::NotFree("1002".into()))
        );
        t.enqueue(2, 7, "q", 5);
        assert!(t.offers().is_empty(), "an engaged seat is not offered");
        // Outside a queue there is no wrap-up: idle again at once.
        t.ev(
            3,
            Event::CallEnded {
                seat: "1002".into(),
            },
        );
        assert_eq!(t.offers().len(), 1);
    }

    #[test]
    fn skills_language_and_proficiency() {
        let mut q = rules("mn", Strategy::SkillsBased);
        q.skills.insert("policy".into(), 3);
        q.language = Some("mn".into());
        let mut t = T::new(vec![q], &[]);
        let skill = |l: u8| BTreeMap::from([("policy".to_string(), l)]);
        t.r.add_seat("1001", skill(9), vec!["cmn".into()], t.t0);
        t.r.add_seat("1002", skill(2), vec!["mn".into()], t.t0);
        t.r.add_seat("1003", skill(5), vec!["mn".into()], t.t0);
        t.r.add_seat("1004", skill(8), vec!["mn".into(), "cmn".into()], t.t0);
        for s in ["1001", "1002", "1003", "1004"] {
            t.available(0, s);
        }
        t.enqueue(1, 1, "mn", 5);
        t.enqueue(1, 2, "mn", 5);
        t.enqueue(1, 3, "mn", 5);
        // 1001 lacks the language, 1002 the level; 1004 is the most proficient.
        assert_eq!(t.offers(), vec![(1, "1004".into()), (2, "1003".into())]);
        assert_eq!(
            t.r.waiting_in("mn").len(),
            3,
            "call 3 waits for a qualified seat"
        );
    }

    #[test]
    fn no_answer_requeues_at_the_head_and_breaks_the_seat() {
        let mut t = T::new(vec![rules("q", Strategy::LongestIdle)], &["1001"]);
        t.available(0, "1001");
        t.enqueue(1, 1, "q", 5);
        t.enqueue(2, 2, "q", 5);
        assert_eq!(t.offers(), vec![(1, "1001".into())]);
        assert_eq!(t.r.poll_timeout(), Some(t.at(16)));
        t.tick(16);
        let actions = t.actions();
        assert!(actions.contains(&Action::Withdraw {
            call: 1,
            seat: "1001".into()
        }));
        // Back at the head: offered again before call 2.
        assert!(
            actions.contains(&Action::Offer {
                call: 1,
                seat: "1001".into()
            }),
            "{actions:?}"
        );
        assert_eq!(t.r.waiting_in("q"), vec![1, 2]);
        t.tick(31);
        // Two misses in a row: the seat goes on break.
        assert_eq!(
            t.r.seat("1001").unwrap().status,
            Status::OnBreak("no-answer".into())
        );
        assert!(t.offers().is_empty());
    }

    #[test]
    fn wrap_up_is_respected() {
        let mut q = rules("q", Strategy::LongestIdle);
        q.wrap_up = Duration::from_secs(30);
        let mut t = T::new(vec![q], &["1001"]);
        t.available(0, "1001");
        t.enqueue(1, 1, "q", 5);
        t.offers();
        t.serve(2, "1001", 1, 60);
        t.enqueue(70, 2, "q", 5);
        assert!(t.offers().is_empty(), "no offer during wrap-up");
        assert_eq!(t.r.seat("1001").unwrap().activity, Activity::WrapUp);
        t.tick(91);
        t.tick(92);
        assert_eq!(t.offers(), vec![(2, "1001".into())], "after wrap-up");
        // Wrap-up done early by the agent.
        t.serve(93, "1001", 2, 10);
        t.enqueue(104, 3, "q", 5);
        assert!(t.offers().is_empty());
        t.ev(
            105,
            Event::WrapUpDone {
                seat: "1001".into(),
            },
        );
        assert_eq!(t.offers(), vec![(3, "1001".into())]);
    }

    #[test]
    fn reject_pauses_the_seat() {
        let mut t = T::new(vec![rules("q", Strategy::LongestIdle)], &["1001"]);
        t.available(0, "1001");
        t.enqueue(1, 1, "q", 5);
        t.offers();
        t.ev(
            2,
            Event::Rejected {
                seat: "1001".into(),
                call: 1,
                pause: Duration::from_secs(10),
            },
        );
        assert!(t.offers().is_empty());
        t.tick(12);
        assert_eq!(t.offers(), vec![(1, "1001".into())]);
    }

    #[test]
    fn overflow_then_max_wait() {
        let mut general = rules("general", Strategy::LongestIdle);
        general.overflow = Some((Duration::from_secs(60), "operator".into()));
        let mut operator = rules("operator", Strategy::LongestIdle);
        operator.max_wait = Some(Duration::from_secs(120));
        let mut t = T::new(vec![general, operator], &[]);
        t.enqueue(0, 1, "general", 5);
        assert_eq!(t.r.poll_timeout(), Some(t.at(60)));
        t.tick(60);
        assert!(t.actions().contains(&Action::Overflowed {
            call: 1,
            from: "general".into(),
            to: "operator".into()
        }));
        assert_eq!(t.r.waiting_in("operator"), vec![1]);
        t.tick(180);
        assert!(t.actions().contains(&Action::MaxWait {
            call: 1,
            queue: "operator".into()
        }));
        assert!(t.r.waiting_in("operator").is_empty());
    }

    #[test]
    fn positions_are_announced() {
        let mut q = rules("q", Strategy::LongestIdle);
        q.announce_every = Some(Duration::from_secs(30));
        let mut t = T::new(vec![q], &["1001"]);
        t.available(0, "1001");
        t.ev(
            0,
            Event::SetStatus {
                seat: "1001".into(),
                status: Status::OnBreak("lunch".into()),
            },
        );
        t.enqueue(0, 1, "q", 5);
        t.enqueue(0, 2, "q", 5);
        t.actions();
        t.tick(30);
        let announced: Vec<_> = t
            .actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Announce { call, position, .. } => Some((call, position)),
                _ => None,
            })
            .collect();
        assert_eq!(announced, [(1, 1), (2, 2)]);
    }

    #[test]
    fn abandoned_calls_are_missed_and_offers_withdrawn() {
        let mut t = T::new(vec![rules("q", Strategy::LongestIdle)], &["1001"]);
        t.available(0, "1001");
        t.enqueue(0, 1, "q", 5);
        t.offers();
        t.ev(8, Event::Abandon { call: 1 });
        let actions = t.actions();
        assert!(actions.contains(&Action::Withdraw {
            call: 1,
            seat: "1001".into()
        }));
        assert!(actions.contains(&Action::Missed {
            call: 1,
            queue: "q".into(),
            waited: Duration::from_secs(8)
        }));
        assert_eq!(t.r.seat("1001").unwrap().activity, Activity::Idle);
    }

    #[test]
    fn no_seat_is_offered_two_calls() {
        let mut t = T::new(vec![rules("q", Strategy::RingAll)], &["1001", "1002"]);
        t.available(0, "1001");
        t.available(0, "1002");
        for call in 1..=50 {
            t.enqueue(0, call, "q", 5);
        }
        let offers = t.offers();
        let mut seats: Vec<_> = offers.iter().map(|(_, s)| s.clone()).collect();
        seats.sort();
        seats.dedup();
        assert_eq!(
            seats.len(),
            offers.len(),
            "a seat was offered twice: {offers:?}"
        );
    }

    #[test]
    fn bad_events_are_refused() {
        let mut t = T::new(vec![rules("q", Strategy::LongestIdle)], &["1001"]);
        let now = t.at(0);
        assert_eq!(
            t.r.handle(
                Event::Enqueue {
                    call: 1,
                    queue: "nope".into(),
                    priority: 5
                },
                now
            ),
            Err(RouterError::NoQueue("nope".into()))
        );
        assert_eq!(
            t.r.handle(Event::Abandon { call: 9 }, now),
            Err(RouterError::NotWaiting(9))
        );
        t.enqueue(0, 1, "q", 5);
        assert_eq!(
            t.r.handle(
                Event::Answered {
                    seat: "1001".into(),
                    call: 1
                },
                now
            ),
            Err(RouterError::NotOffered("1001".into(), 1))
        );
        assert_eq!(
            t.r.handle(
                Event::WrapUpDone {
                    seat: "9999".into()
                },
                now
            ),
            Err(RouterError::NoSeat("9999".into()))
        );
    }

    #[test]
    fn mirrored_seats_route_without_reporting_themselves() {
        let mut t = T::new(vec![rules("q", Strategy::LongestIdle)], &["1001", "1002"]);
        t.enqueue(0, 1, "q", 5);
        t.actions();
        // Another node says 1001 is free: offered here, and no SeatChanged
        // for the mirrored change itself.
        let now = t.at(1);
        t.r.mirror_seat("1001", Status::Available, Activity::Idle, now)
            .unwrap();
        let actions = t.actions();
        assert_eq!(
            actions[0],
            Action::Offer {
                call: 1,
                seat: "1001".into()
            }
        );
        assert!(t.r.is_offered(1, "1001"));
        assert!(
            !actions.iter().any(|a| matches!(
                a,
                Action::SeatChanged {
                    activity: Activity::Idle,
                    ..
                }
            )),
            "{actions:?}"
        );
        // The reservation failed (1001 is busy elsewhere): the offer is
        // taken back without a miss, and the call waits for 1002.
        let now = t.at(2);
        t.r.retract_offer(1, "1001", Status::Available, Activity::InCall(900), now)
            .unwrap();
        assert!(!t.r.is_offered(1, "1001"));
        assert_eq!(t.r.seat("1001").unwrap().misses_in_row, 0);
        assert_eq!(t.r.seat("1001").unwrap().activity, Activity::InCall(900));
        assert!(t.offers().is_empty());
        assert_eq!(
            t.r.retract_offer(1, "1001", Status::Available, Activity::Idle, now),
            Err(RouterError::NotOffered("1001".into(), 1))
        );
        // A paused seat is passed over until the pause ends.
        t.r.pause_seat("1002", t.at(10));
        t.available(3, "1002");
        assert!(t.offers().is_empty());
        assert_eq!(t.r.poll_timeout(), Some(t.at(10)));
        t.tick(10);
        assert_eq!(t.offers(), vec![(1, "1002".into())]);
    }
}
