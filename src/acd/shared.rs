//! Seats shared between hotline nodes: the sans-IO half of the Redis state.
//!
//! Every node keeps its own [`Router`] for its own waiting callers, but the
//! router's seat table mirrors every seat of the cluster. The truth about a
//! seat is one Redis hash, `<prefix>seat:<id>` ([`SeatRecord`]): its status,
//! its activity and the node *holding* that activity (the node whose caller
//! it is offered to or talking with), the node that *owns* its registration
//! (binding contact and source), skills, languages and a version. Every
//! change goes through one Lua script ([`SEAT_SCRIPT`]) that checks a guard,
//! writes, bumps the version and publishes the new state on
//! `<prefix>seat-changes`; every node applies what the others publish.
//!
//! * **Offers are reserved.** Before a node tells its call actor to ring a
//!   seat, the script moves the seat from available + idle to offered, held
//!   by this node and call ([`Guard::Reserve`]). Only one reservation can
//!   win, so no seat is ever rung for two calls. A refused reservation takes
//!   the offer back ([`Router::retract_offer`]) and the call is routed again.
//!   Answer, end, wrap-up and release are written only by the holder
//!   ([`Guard::Held`]); anyone may end a wrap-up ([`Guard::WrapUp`]).
//! * **Nodes hold a lease.** Each node beats every second into the sorted
//!   set `<prefix>nodes` ([`HEARTBEAT_SCRIPT`]); a node silent for [`LEASE`]
//!   is gone: its seats count as logged out everywhere and cannot be
//!   reserved. A reservation held by a node silent for [`HOLDER_STALE`] may
//!   be taken over (its calls are long gone, or it has been cut off longer
//!   than a ring and a short conversation).
//! * **Redis down: each node on its own.** A node that loses Redis
//!   ([`Mirror::went_down`]) drops the other nodes' seats (logged out here)
//!   and routes the seats registered on it without reservations, but only
//!   once its lease has surely lapsed, so no other node can still be
//!   reserving them. When Redis returns ([`Mirror::came_up`]) the node
//!   writes its own seats (bindings, status, what its calls hold) *before*
//!   it beats again, then takes everyone else's from Redis.
//! * **Who is right.** For a seat's activity the holder's router is ahead of
//!   Redis (its writes may be in flight), so a node never takes its own
//!   holdings from Redis; for everything else Redis is. Changes to a seat
//!   with writes of this node in flight wait for the last reply, and older
//!   versions never overwrite newer ones.
//!
//! Routing stays per node: a caller on node A and one on node B compete for
//! a free seat and the first reservation wins, so the queue order across
//! nodes is not global. The I/O (connections, pipelines, pub/sub,
//! reconnects) is in [`super::redis`]; [`super::service`] calls into
//! [`Mirror`] under its lock.

use super::router::{Activity, CallId, Router, SeatId, Status};
use crate::sip::registrar::Binding;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A node that has not beaten for this long is gone.
pub const LEASE: Duration = Duration::from_secs(3);
/// How often a node beats (well inside [`LEASE`]).
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A reservation held by a node silent for this long may be taken over.
pub const HOLDER_STALE: Duration = Duration::from_secs(30);
/// A seat whose reservation was refused although it looked free here is
/// left alone this long, so a stale view cannot make the router spin.
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Checks, writes and publishes one seat, atomically.
///
/// KEYS: seat hash, live-node sorted set, set of seat ids. ARGV: node,
/// guard, call, lease ms, stale ms, channel, seat id, then field/value
/// pairs to write. Returns `{"ok": bool, "state": {field: value}}`, the
/// state after the write (or as it is, when the guard refused).
pub const SEAT_SCRIPT: &str = r#"
local seat, nodes, all = KEYS[1], KEYS[2], KEYS[3]
local node, guard, call = ARGV[1], ARGV[2], ARGV[3]
local lease, stale = tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function seen_within(n, ms)
  if not n or n == '' then return false end
  local at = redis.call('ZSCORE', nodes, n)
  return at and tonumber(at) >= now - ms
end
local cur = redis.call('HMGET', seat, 'status', 'activity', 'holder', 'call', 'owner')
local status = cur[1] or 'logged_out'
local activity = cur[2] or 'idle'
local holder = cur[3] or ''
local held = cur[4] or ''
local owner = cur[5] or ''
local free = activity == 'idle' or holder == '' or not seen_within(holder, stale)
local ok
if guard == 'reserve' then
  ok = status == 'available' and free and (owner == '' or seen_within(owner, lease))
elseif guard == 'held' then
  ok = holder == node and (call == '' or held == call)
elseif guard == 'wrap_up' then
  ok = activity == 'wrap_up'
elseif guard == 'restore' then
  ok = holder == node or free
elseif guard == 'owner' then
  ok = owner == node or owner == ''
else
  ok = true
end
if ok then
  if #ARGV > 7 then redis.call('HSET', seat, unpack(ARGV, 8)) end
  redis.call('HSET', seat, 'seat', ARGV[7], 'updated', now)
  redis.call('HINCRBY', seat, 'version', 1)
  redis.call('SADD', all, ARGV[7])
end
local flat = redis.call('HGETALL', seat)
local state = {}
for i = 1, #flat, 2 do state[flat[i]] = flat[i + 1] end
if ok then redis.call('PUBLISH', ARGV[6], cjson.encode({node = node, state = state})) end
return cjson.encode({ok = ok, state = state})
"#;

/// Renews a node's lease and answers the nodes alive now.
///
/// KEYS: live-node sorted set. ARGV: node, lease ms, stale ms.
pub const HEARTBEAT_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 2 * tonumber(ARGV[3]))
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]), '+inf')
"#;

/// The Redis names of one cluster, all under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `prefix` (e.g. `hotline:`).
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The hash of one seat.
    pub fn seat(&self, id: &str) -> String {
        format!("{}seat:{id}", self.prefix)
    }

    /// The set of every seat id ever written (for reloading).
    pub fn seats(&self) -> String {
        format!("{}seats", self.prefix)
    }

    /// Node → last heartbeat (Redis time, ms).
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// Where seat changes are published.
    pub fn channel(&self) -> String {
        format!("{}seat-changes", self.prefix)
    }
}

/// What a write requires of the seat's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Nothing: status and registration facts, last writer wins.
    None,
    /// Available, idle (or held by a stale node), its owner alive.
    Reserve,
    /// This node holds the activity (for this call, when given).
    Held(Option<CallId>),
    /// The seat is in wrap-up (any node may end it).
    WrapUp,
    /// After an outage: held by this node, or free.
    Restore,
    /// The registration is this node's (or nobody's).
    Owner,
}

impl Guard {
    /// The script's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::None => "none",
            Guard::Reserve => "reserve",
            Guard::Held(_) => "held",
            Guard::WrapUp => "wrap_up",
            Guard::Restore => "restore",
            Guard::Owner => "owner",
        }
    }
}

/// One thing a node asks of the shared state, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Reserve a seat for a call; the offer waits for the answer.
    Reserve { seat: SeatId, call: CallId },
    /// Write fields if the guard holds.
    Write {
        seat: SeatId,
        guard: Guard,
        fields: Vec<(&'static str, String)>,
    },
}

impl Op {
    /// The seat it is about.
    pub fn seat(&self) -> &str {
        match self {
            Op::Reserve { seat, .. } | Op::Write { seat, .. } => seat,
        }
    }

    /// The script's guard, call and field arguments.
    pub fn script_args(&self, node: &str) -> (Guard, String, Vec<(&'static str, String)>) {
        match self {
            Op::Reserve { call, .. } => (
                Guard::Reserve,
                call.to_string(),
                activity_fields(&Activity::Offered(*call), node),
            ),
            Op::Write { guard, fields, .. } => {
                let call = match guard {
                    Guard::Held(Some(c)) => c.to_string(),
                    _ => String::new(),
                };
                (*guard, call, fields.clone())
            }
        }
    }
}

/// Why a reply or message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("unreadable shared-state JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("shared-state record without a seat id")]
    NoSeat,
}

/// One seat as the cluster sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatRecord {
    pub seat: SeatId,
    pub status: Status,
    /// `idle`, `offered`, `in_call` or `wrap_up`.
    pub activity: String,
    /// The node holding the activity; empty when idle.
    pub holder: String,
    /// The holder's call.
    pub call: CallId,
    /// The node the softphone registered with; empty when none.
    pub owner: String,
    pub contact: String,
    pub source: Option<SocketAddr>,
    /// When the registration expires, Unix ms.
    pub expires_ms: i64,
    pub skills: BTreeMap<String, u8>,
    pub languages: Vec<String>,
    pub version: u64,
}

impl SeatRecord {
    /// Reads a hash as HGETALL returns it.
    pub fn from_fields(fields: &HashMap<String, String>) -> Result<SeatRecord, SharedError> {
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        let seat = get("seat");
        if seat.is_empty() {
            return Err(SharedError::NoSeat);
        }
        let status = match get("status") {
            "available" => Status::Available,
            "on_break" => Status::OnBreak(get("reason").to_owned()),
            _ => Status::LoggedOut,
        };
        let activity = match get("activity") {
            a @ ("offered" | "in_call" | "wrap_up") => a.to_owned(),
            _ => "idle".to_owned(),
        };
        Ok(SeatRecord {
            seat: seat.to_owned(),
            status,
            activity,
            holder: get("holder").to_owned(),
            call: get("call").parse().unwrap_or(0),
            owner: get("owner").to_owned(),
            contact: get("contact").to_owned(),
            source: get("source").parse().ok(),
            expires_ms: get("expires").parse().unwrap_or(0),
            skills: serde_json::from_str(get("skills")).unwrap_or_default(),
            languages: serde_json::from_str(get("languages")).unwrap_or_default(),
            version: get("version").parse().unwrap_or(0),
        })
    }

    /// The activity as a router sees it.
    pub fn activity(&self) -> Activity {
        match self.activity.as_str() {
            "offered" => Activity::Offered(self.call),
            "in_call" => Activity::InCall(self.call),
            "wrap_up" => Activity::WrapUp,
            _ => Activity::Idle,
        }
    }
}

/// The seat script's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptReply {
    pub ok: bool,
    pub record: SeatRecord,
}

#[derive(serde::Deserialize)]
struct RawReply {
    ok: bool,
    #[serde(default)]
    state: HashMap<String, String>,
}

#[derive(serde::Deserialize)]
struct RawPublished {
    node: String,
    #[serde(default)]
    state: HashMap<String, String>,
}

/// Reads the seat script's answer.
pub fn parse_reply(text: &[u8]) -> Result<ScriptReply, SharedError> {
    let raw: RawReply = serde_json::from_slice(text)?;
    Ok(ScriptReply {
        ok: raw.ok,
        record: SeatRecord::from_fields(&raw.state)?,
    })
}

/// A change another node published.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub node: String,
    pub record: SeatRecord,
}

/// Reads a published change.
pub fn parse_published(text: &[u8]) -> Result<Published, SharedError> {
    let raw: RawPublished = serde_json::from_slice(text)?;
    Ok(Published {
        node: raw.node,
        record: SeatRecord::from_fields(&raw.state)?,
    })
}

/// The fields of a status.
pub fn status_fields(status: &Status) -> Vec<(&'static str, String)> {
    let (s, reason) = match status {
        Status::LoggedOut => ("logged_out", ""),
        Status::Available => ("available", ""),
        Status::OnBreak(r) => ("on_break", r.as_str()),
    };
    vec![("status", s.into()), ("reason", reason.into())]
}

/// The fields of an activity held by `node` (nobody's when idle).
pub fn activity_fields(activity: &Activity, node: &str) -> Vec<(&'static str, String)> {
    let (a, call) = match activity {
        Activity::Idle => ("idle", None),
        Activity::Offered(c) => ("offered", Some(*c)),
        Activity::InCall(c) => ("in_call", Some(*c)),
        Activity::WrapUp => ("wrap_up", None),
    };
    let holder = if *activity == Activity::Idle {
        ""
    } else {
        node
    };
    vec![
        ("activity", a.into()),
        ("holder", holder.into()),
        ("call", call.map(|c| c.to_string()).unwrap_or_default()),
    ]
}

/// A registration on this node, as written for the others.
#[derive(Debug, Clone, PartialEq)]
struct LocalBinding {
    contact: String,
    source: SocketAddr,
    expires_ms: i64,
}

/// What became of an answered reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Tell the call actor to ring the seat.
    Ring { call: CallId, seat: SeatId },
    /// Nothing to tell (refused and routed again, or the call went).
    Nothing,
}

/// One node's view of the shared seats, and the writes it owes.
#[derive(Debug)]
pub struct Mirror {
    node: String,
    up: bool,
    /// When this node's lease surely ends, from its last heartbeat answer.
    lease_until: Option<Instant>,
    live: HashSet<String>,
    /// The newest state read from Redis, per seat.
    records: HashMap<SeatId, SeatRecord>,
    /// Writes of this node not answered yet, per seat.
    pending: HashMap<SeatId, u32>,
    /// Offers waiting for their reservation.
    reserving: HashSet<(CallId, SeatId)>,
    /// Seats whose activity this node's calls hold.
    held: HashSet<SeatId>,
    /// The router's state of each seat as last seen, to tell what changed.
    known: HashMap<SeatId, (Status, Activity)>,
    /// Seats registered on this node.
    local: HashMap<SeatId, LocalBinding>,
    ops: Vec<Op>,
    /// Reservations won and refused since start.
    pub reserved: u64,
    pub refused: u64,
}

impl Mirror {
    /// A node's mirror; down until [`Mirror::came_up`].
    pub fn new(node: &str) -> Mirror {
        Mirror {
            node: node.to_owned(),
            up: false,
            lease_until: None,
            live: HashSet::from([node.to_owned()]),
            records: HashMap::new(),
            pending: HashMap::new(),
            reserving: HashSet::new(),
            held: HashSet::new(),
            known: HashMap::new(),
            local: HashMap::new(),
            ops: Vec::new(),
            reserved: 0,
            refused: 0,
        }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether Redis is reachable and the seats are shared.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The writes owed so far, oldest first.
    pub fn take_ops(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.ops)
    }

    fn push(&mut self, op: Op) {
        *self.pending.entry(op.seat().to_owned()).or_default() += 1;
        self.ops.push(op);
    }

    /// The router offered `seat` to `call`: reserve it before ringing.
    pub fn reserve(&mut self, call: CallId, seat: &str) {
        self.reserving.insert((call, seat.to_owned()));
        self.push(Op::Reserve {
            seat: seat.to_owned(),
            call,
        });
    }

    /// The router changed a seat (one of its own [`SeatChanged`] actions):
    /// write what changed, with the guard the transition needs.
    ///
    /// [`SeatChanged`]: super::router::Action::SeatChanged
    pub fn local_change(&mut self, seat: &str, status: &Status, activity: &Activity) {
        let (old_status, old_activity) = self
            .known
            .insert(seat.to_owned(), (status.clone(), activity.clone()))
            .unwrap_or((Status::LoggedOut, Activity::Idle));
        // Changes the router makes itself come from this node's calls.
        if *activity == Activity::Idle {
            self.held.remove(seat);
        } else if old_activity != *activity {
            self.held.insert(seat.to_owned());
        }
        if !self.up {
            return;
        }
        if old_status != *status {
            self.push(Op::Write {
                seat: seat.to_owned(),
                guard: Guard::None,
                fields: status_fields(status),
            });
        }
        if old_activity == *activity {
            return;
        }
        let guard = match (&old_activity, activity) {
            // The reservation writes it.
            (_, Activity::Offered(_)) => return,
            (Activity::Offered(c), Activity::InCall(_) | Activity::Idle) => Guard::Held(Some(*c)),
            (Activity::WrapUp, Activity::Idle) => Guard::WrapUp,
            _ => Guard::Held(None),
        };
        self.push(Op::Write {
            seat: seat.to_owned(),
            guard,
            fields: activity_fields(activity, &self.node),
        });
    }

    /// A softphone registered here (or refreshed its registration).
    pub fn bound(
        &mut self,
        seat: &str,
        binding: &Binding,
        skills: &BTreeMap<String, u8>,
        languages: &[String],
        now: Instant,
        now_ms: i64,
    ) {
        let left = binding.expires_at.saturating_duration_since(now);
        let local = LocalBinding {
            contact: binding.contact.clone(),
            source: binding.source,
            expires_ms: now_ms + left.as_millis() as i64,
        };
        self.local.insert(seat.to_owned(), local.clone());
        if self.up {
            let fields = binding_fields(&self.node, &local, skills, languages);
            self.push(Op::Write {
                seat: seat.to_owned(),
                guard: Guard::None,
                fields,
            });
        }
    }

    /// A seat's registrations here are gone; true when the seat should be
    /// logged out (no other live node has it registered).
    pub fn unbound(&mut self, seat: &str, now_ms: i64) -> bool {
        let was_local = self.local.remove(seat).is_some();
        let record = self.records.get(seat);
        if self.up && (was_local || record.is_some_and(|r| r.owner == self.node)) {
            self.push(Op::Write {
                seat: seat.to_owned(),
                guard: Guard::Owner,
                fields: vec![
                    ("owner", String::new()),
                    ("contact", String::new()),
                    ("source", String::new()),
                    ("expires", "0".into()),
                ],
            });
        }
        let elsewhere = self.up
            && self.records.get(seat).is_some_and(|r| {
                !r.owner.is_empty()
                    && r.owner != self.node
                    && self.live.contains(&r.owner)
                    && r.expires_ms > now_ms
            });
        !elsewhere
    }

    /// Where another node's seat can be rung, while its owner is alive and
    /// its registration current.
    pub fn binding(&self, seat: &str, now: Instant, now_ms: i64) -> Option<Binding> {
        if !self.up {
            return None;
        }
        let r = self.records.get(seat)?;
        // This node's own registrations are in its registrar, not here.
        if r.owner.is_empty()
            || r.owner == self.node
            || !self.live.contains(&r.owner)
            || r.expires_ms <= now_ms
        {
            return None;
        }
        Some(Binding {
            contact: r.contact.clone(),
            expires_at: now + Duration::from_millis((r.expires_ms - now_ms) as u64),
            source: r.source?,
        })
    }

    /// A write was answered; a won reservation may now ring.
    pub fn replied(
        &mut self,
        router: &mut Router,
        op: &Op,
        reply: ScriptReply,
        now: Instant,
    ) -> Reserved {
        let seat = op.seat().to_owned();
        if let Some(n) = self.pending.get_mut(&seat) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.pending.remove(&seat);
            }
        }
        self.store(reply.record);
        let mut outcome = Reserved::Nothing;
        match op {
            Op::Reserve { call, .. } => {
                self.reserving.remove(&(*call, seat.clone()));
                if reply.ok {
                    self.reserved += 1;
                    if router.is_offered(*call, &seat) {
                        self.held.insert(seat.clone());
                        outcome = Reserved::Ring {
                            call: *call,
                            seat: seat.clone(),
                        };
                    }
                } else {
                    self.refused += 1;
                    if router.is_offered(*call, &seat) {
                        self.retract(router, *call, &seat, now);
                    }
                }
            }
            Op::Write { guard, .. } if !reply.ok => {
                tracing::debug!(%seat, guard = guard.as_str(), "shared seat write refused; taking the stored state");
            }
            Op::Write { .. } => {}
        }
        if !self.pending.contains_key(&seat) {
            self.sync(router, &seat, now);
        }
        outcome
    }

    /// Another node changed a seat.
    pub fn message(&mut self, router: &mut Router, published: Published, now: Instant) {
        if !self.up || published.node == self.node {
            return;
        }
        let seat = published.record.seat.clone();
        if self.store(published.record) && !self.pending.contains_key(&seat) {
            self.sync(router, &seat, now);
        }
    }

    /// A heartbeat was answered at `answered_at` with the nodes alive now.
    pub fn live_nodes(
        &mut self,
        router: &mut Router,
        nodes: Vec<String>,
        answered_at: Instant,
        now: Instant,
    ) {
        self.lease_until = Some(answered_at + LEASE);
        let mut live: HashSet<String> = nodes.into_iter().collect();
        live.insert(self.node.clone());
        if live == self.live {
            return;
        }
        let changed: Vec<SeatId> = self
            .records
            .values()
            .filter(|r| self.live.contains(&r.owner) != live.contains(&r.owner))
            .map(|r| r.seat.clone())
            .collect();
        self.live = live;
        if !self.up {
            return;
        }
        for seat in changed {
            if !self.pending.contains_key(&seat) {
                self.sync(router, &seat, now);
            }
        }
    }

    /// Redis is reachable again: take the stored seats and answer the
    /// writes that restore this node's own (sent before its next heartbeat).
    pub fn came_up(
        &mut self,
        router: &mut Router,
        records: Vec<SeatRecord>,
        now: Instant,
    ) -> Vec<Op> {
        self.up = true;
        self.pending.clear();
        self.ops.clear();
        // What Redis holds now replaces everything read before: a Redis that
        // restarted empty counts versions from 1 again.
        self.records = records.into_iter().map(|r| (r.seat.clone(), r)).collect();
        let mut restore = Vec::new();
        for (seat, local) in &self.local {
            let Some(s) = router.seat(seat) else { continue };
            let mut fields = binding_fields(&self.node, local, &s.skills, &s.languages);
            fields.extend(status_fields(&s.status));
            restore.push(Op::Write {
                seat: seat.clone(),
                guard: Guard::None,
                fields,
            });
        }
        for s in router.seats() {
            let ours_in_redis = self
                .records
                .get(&s.id)
                .is_some_and(|r| r.holder == self.node && r.activity != "idle");
            if self.held.contains(&s.id) && s.activity != Activity::Idle {
                restore.push(Op::Write {
                    seat: s.id.clone(),
                    guard: Guard::Restore,
                    fields: activity_fields(&s.activity, &self.node),
                });
            } else if ours_in_redis {
                // Released (or never rung) while Redis was away.
                restore.push(Op::Write {
                    seat: s.id.clone(),
                    guard: Guard::Held(None),
                    fields: activity_fields(&Activity::Idle, &self.node),
                });
            }
        }
        for op in &restore {
            *self.pending.entry(op.seat().to_owned()).or_default() += 1;
        }
        let seats: Vec<SeatId> = self.records.keys().cloned().collect();
        for seat in seats {
            if !self.pending.contains_key(&seat) {
                self.sync(router, &seat, now);
            }
        }
        restore
    }

    /// Redis is gone: the other nodes' seats leave this router, reservations
    /// in flight are taken back, and this node's own seats are routed
    /// without reservations once its lease has surely lapsed.
    pub fn went_down(&mut self, router: &mut Router, now: Instant) {
        let was_up = std::mem::replace(&mut self.up, false);
        self.pending.clear();
        self.ops.clear();
        if !was_up {
            // Already down, or never up: nothing shared to give up.
            return;
        }
        let fence = self.lease_until.map_or(now, |t| t.max(now));
        for seat in self.local.keys() {
            router.pause_seat(seat, fence);
        }
        let remote: Vec<(SeatId, Activity)> = router
            .seats()
            .filter(|s| !self.local.contains_key(&s.id) && s.status != Status::LoggedOut)
            .map(|s| (s.id.clone(), s.activity.clone()))
            .collect();
        for (seat, activity) in remote {
            // A call of another node keeps the seat busy here until Redis
            // says otherwise; ringing it now could ring it twice.
            router
                .mirror_seat(&seat, Status::LoggedOut, activity.clone(), now)
                .ok();
            self.known.insert(seat, (Status::LoggedOut, activity));
        }
        for (call, seat) in std::mem::take(&mut self.reserving) {
            if router.is_offered(call, &seat) {
                let status = router
                    .seat(&seat)
                    .map_or(Status::LoggedOut, |s| s.status.clone());
                router
                    .retract_offer(call, &seat, status.clone(), Activity::Idle, now)
                    .ok();
                self.held.remove(&seat);
                self.known.insert(seat, (status, Activity::Idle));
            }
        }
    }

    /// Keeps the newer of two states; true when `record` was newer.
    fn store(&mut self, record: SeatRecord) -> bool {
        match self.records.get(&record.seat) {
            Some(old) if old.version >= record.version => false,
            _ => {
                self.records.insert(record.seat.clone(), record);
                true
            }
        }
    }

    /// The status a seat has for routing here: logged out while its
    /// registration is on a node that is gone.
    fn effective_status(&self, r: &SeatRecord) -> Status {
        if !r.owner.is_empty() && !self.live.contains(&r.owner) {
            Status::LoggedOut
        } else {
            r.status.clone()
        }
    }

    /// The state the router should have for a seat, from the stored record.
    fn wanted(&self, router: &Router, seat: &str) -> Option<(Status, Activity)> {
        let r = self.records.get(seat)?;
        let current = router.seat(seat)?;
        let activity = if r.holder == self.node {
            current.activity.clone()
        } else {
            r.activity()
        };
        Some((self.effective_status(r), activity))
    }

    /// Brings the router's seat in line with the stored record. Seats this
    /// node's config does not know are left out.
    fn sync(&mut self, router: &mut Router, seat: &str, now: Instant) {
        let Some((status, activity)) = self.wanted(router, seat) else {
            return;
        };
        let Some(current) = router.seat(seat) else {
            return;
        };
        if self
            .records
            .get(seat)
            .is_some_and(|r| r.holder != self.node)
        {
            self.held.remove(seat);
        }
        if current.status == status && current.activity == activity {
            return;
        }
        router
            .mirror_seat(seat, status.clone(), activity.clone(), now)
            .ok();
        self.known.insert(seat.to_owned(), (status, activity));
    }

    /// A refused reservation: the offer goes back with the seat as Redis
    /// has it, and the call is routed again.
    fn retract(&mut self, router: &mut Router, call: CallId, seat: &str, now: Instant) {
        let (status, activity) = match self.records.get(seat) {
            // Whoever holds it (this node too, for another of its calls).
            Some(r) if r.activity() != Activity::Offered(call) => {
                (self.effective_status(r), r.activity())
            }
            _ => (
                router
                    .seat(seat)
                    .map_or(Status::LoggedOut, |s| s.status.clone()),
                Activity::Idle,
            ),
        };
        // Redis said no although the seat looks free: do not pick it again
        // at once.
        if status == Status::Available && activity == Activity::Idle {
            router.pause_seat(seat, now + RETRY_PAUSE);
        }
        if activity == Activity::Idle
            || self
                .records
                .get(seat)
                .is_some_and(|r| r.holder != self.node)
        {
            self.held.remove(seat);
        }
        router
            .retract_offer(call, seat, status.clone(), activity.clone(), now)
            .ok();
        self.known.insert(seat.to_owned(), (status, activity));
    }
}

fn binding_fields(
    node: &str,
    b: &LocalBinding,
    skills: &BTreeMap<String, u8>,
    languages: &[String],
) -> Vec<(&'static str, String)> {
    vec![
        ("owner", node.to_owned()),
        ("contact", b.contact.clone()),
        ("source", b.source.to_string()),
        ("expires", b.expires_ms.to_string()),
        (
            "skills",
            serde_json::to_string(skills).unwrap_or_else(|_| "{}".into()),
        ),
        (
            "languages",
            serde_json::to_string(languages).unwrap_or_else(|_| "[]".into()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::router::{Action, Event, QueueRules, Strategy};

    fn queue() -> QueueRules {
        QueueRules {
            name: "q".into(),
            strategy: Strategy::LongestIdle,
            skills: BTreeMap::new(),
            language: None,
            ring_timeout: Duration::from_secs(15),
            wrap_up: Duration::ZERO,
            max_misses: 3,
            overflow: None,
            max_wait: None,
            announce_every: None,
        }
    }

    /// Redis as the seat script sees it (every node alive).
    #[derive(Default)]
    struct FakeRedis {
        seats: HashMap<String, HashMap<String, String>>,
    }

    impl FakeRedis {
        fn run(&mut self, node: &str, op: &Op) -> (ScriptReply, Option<Published>) {
            let (guard, call, fields) = op.script_args(node);
            let h = self.seats.entry(op.seat().to_owned()).or_default();
            let get = |k: &str, d: &str| h.get(k).cloned().unwrap_or_else(|| d.to_owned());
            let (status, activity) = (get("status", "logged_out"), get("activity", "idle"));
            let (holder, held, owner) = (get("holder", ""), get("call", ""), get("owner", ""));
            let free = activity == "idle" || holder.is_empty();
            let ok = match guard {
                Guard::Reserve => status == "available" && free,
                Guard::Held(_) => holder == node && (call.is_empty() || held == call),
                Guard::WrapUp => activity == "wrap_up",
                Guard::Restore => holder == node || free,
                Guard::Owner => owner == node || owner.is_empty(),
                Guard::None => true,
            };
            let version = get("version", "0").parse::<u64>().unwrap() + 1;
            if ok {
                for (k, v) in fields {
                    h.insert(k.to_owned(), v);
                }
                h.insert("version".into(), version.to_string());
                h.insert("seat".into(), op.seat().to_owned());
            }
            let record = SeatRecord::from_fields(h).unwrap_or_else(|_| SeatRecord {
                seat: op.seat().to_owned(),
                ..record("", "logged_out", "idle", "", 0)
            });
            let published = ok.then(|| Published {
                node: node.to_owned(),
                record: record.clone(),
            });
            (ScriptReply { ok, record }, published)
        }
    }

    fn record(seat: &str, status: &str, activity: &str, holder: &str, version: u64) -> SeatRecord {
        let fields: HashMap<String, String> = [
            ("seat", seat),
            ("status", status),
            ("activity", activity),
            ("holder", holder),
            ("call", if holder.is_empty() { "" } else { "77" }),
            ("version", &version.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        SeatRecord::from_fields(&fields).unwrap_or(SeatRecord {
            seat: seat.to_owned(),
            status: Status::LoggedOut,
            activity: "idle".into(),
            holder: String::new(),
            call: 0,
            owner: String::new(),
            contact: String::new(),
            source: None,
            expires_ms: 0,
            skills: BTreeMap::new(),
            languages: vec![],
            version,
        })
    }

    /// One node: its router, its mirror, and the seats it was told to ring.
    struct Node {
        router: Router,
        mirror: Mirror,
        rings: Vec<(CallId, SeatId)>,
    }

    impl Node {
        fn new(name: &str, seats: &[&str], t0: Instant) -> Node {
            let mut router = Router::new(vec![queue()]);
            for s in seats {
                router.add_seat(s, BTreeMap::new(), vec![], t0);
            }
            Node {
                router,
                mirror: Mirror::new(name),
                rings: vec![],
            }
        }

        /// What the service's dispatch does with the router's actions.
        fn pump(&mut self) {
            while let Some(a) = self.router.poll_action() {
                match a {
                    Action::Offer { call, seat } if self.mirror.is_up() => {
                        self.mirror.reserve(call, &seat)
                    }
                    Action::Offer { call, seat } => self.rings.push((call, seat)),
                    Action::SeatChanged {
                        seat,
                        status,
                        activity,
                    } => self.mirror.local_change(&seat, &status, &activity),
                    _ => {}
                }
            }
        }

        /// Sends the owed writes; returns what they published.
        fn flush(&mut self, redis: &mut FakeRedis, now: Instant) -> Vec<Published> {
            self.pump();
            let mut published = vec![];
            loop {
                let ops = self.mirror.take_ops();
                if ops.is_empty() {
                    return published;
                }
                for op in ops {
                    let (reply, p) = redis.run(self.mirror.node().to_owned().as_str(), &op);
                    published.extend(p);
                    if let Reserved::Ring { call, seat } =
                        self.mirror.replied(&mut self.router, &op, reply, now)
                    {
                        self.rings.push((call, seat));
                    }
                    self.pump();
                }
            }
        }

        fn ev(&mut self, e: Event, now: Instant) {
            self.router.handle(e, now).unwrap();
            self.pump();
        }
    }

    #[test]
    fn records_and_replies_parse() {
        let text = br#"{"ok":true,"state":{"seat":"1002","status":"on_break","reason":"lunch","activity":"in_call","holder":"b","call":"9","owner":"b","contact":"sip:1002@10.0.0.2:5062","source":"10.0.0.2:5062","expires":"1700000060000","skills":"{\"emergency\":5}","languages":"[\"cmn\"]","version":"12"}}"#;
        let reply = parse_reply(text).unwrap();
        assert!(reply.ok);
        let r = reply.record;
        assert_eq!(r.status, Status::OnBreak("lunch".into()));
        assert_eq!(r.activity(), Activity::InCall(9));
        assert_eq!(r.source, Some("10.0.0.2:5062".parse().unwrap()));
        assert_eq!(r.skills.get("emergency"), Some(&5));
        assert_eq!(r.languages, ["cmn"]);
        assert_eq!(r.version, 12);
        // An empty Lua table is encoded as {}: a seat never written.
        assert!(parse_reply(br#"{"ok":false,"state":{}}"#).is_err());
        let p = parse_published(br#"{"node":"a","state":{"seat":"1001","version":"1"}}"#).unwrap();
        assert_eq!(
            (p.node.as_str(), &p.record.status),
            ("a", &Status::LoggedOut)
        );
        assert_eq!(p.record.activity(), Activity::Idle);
        assert!(parse_published(b"not json").is_err());
    }

    #[test]
    fn an_offer_rings_only_once_the_seat_is_reserved() {
        let t0 = Instant::now();
        let mut redis = FakeRedis::default();
        let mut a = Node::new("a", &["1001"], t0);
        assert!(a.mirror.came_up(&mut a.router, vec![], t0).is_empty());
        a.ev(
            Event::SetStatus {
                seat: "1001".into(),
                status: Status::Available,
            },
            t0,
        );
        a.ev(
            Event::Enqueue {
                call: 1,
                queue: "q".into(),
                priority: 5,
            },
            t0,
        );
        let ops = a.mirror.ops.clone();
        assert_eq!(
            ops,
            vec![
                Op::Write {
                    seat: "1001".into(),
                    guard: Guard::None,
                    fields: status_fields(&Status::Available),
                },
                Op::Reserve {
                    seat: "1001".into(),
                    call: 1
                },
            ]
        );
        assert!(a.rings.is_empty(), "rung before the reservation");
        a.flush(&mut redis, t0);
        assert_eq!(a.rings, [(1, "1001".to_string())]);
        assert_eq!(redis.seats["1001"]["holder"], "a");
        // Answer and hang up: written as the holder, then released.
        a.ev(
            Event::Answered {
                seat: "1001".into(),
                call: 1,
            },
            t0,
        );
        a.ev(
            Event::CallEnded {
                seat: "1001".into(),
            },
            t0,
        );
        let guards: Vec<Guard> = a
            .mirror
            .ops
            .iter()
            .map(|op| match op {
                Op::Write { guard, .. } => *guard,
                Op::Reserve { .. } => Guard::Reserve,
            })
            .collect();
        assert_eq!(guards, [Guard::Held(Some(1)), Guard::Held(None)]);
        a.flush(&mut redis, t0);
        assert_eq!(redis.seats["1001"]["activity"], "idle");
        assert_eq!(redis.seats["1001"]["holder"], "");
    }

    #[test]
    fn a_refused_reservation_routes_the_call_to_another_seat() {
        let t0 = Instant::now();
        let mut redis = FakeRedis::default();
        let mut a = Node::new("a", &["1001", "1002"], t0);
        a.mirror.came_up(&mut a.router, vec![], t0);
        for (seat, at) in [("1001", 0), ("1002", 1)] {
            a.ev(
                Event::SetStatus {
                    seat: seat.into(),
                    status: Status::Available,
                },
                t0 + Duration::from_millis(at),
            );
        }
        a.flush(&mut redis, t0);
        // Node b reserved 1001 (the longest idle) a moment ago; its
        // message has not arrived yet.
        let (won, _) = redis.run(
            "b",
            &Op::Reserve {
                seat: "1001".into(),
                call: 500,
            },
        );
        assert!(won.ok);
        let now = t0 + Duration::from_secs(1);
        a.ev(
            Event::Enqueue {
                call: 1,
                queue: "q".into(),
                priority: 5,
            },
            now,
        );
        a.flush(&mut redis, now);
        assert_eq!(a.rings, [(1, "1002".to_string())], "rung 1002 instead");
        assert_eq!(
            a.router.seat("1001").unwrap().activity,
            Activity::Offered(500),
            "1001 is b's"
        );
        assert_eq!((a.mirror.reserved, a.mirror.refused), (1, 1));
    }

    #[test]
    fn other_nodes_changes_apply_but_never_undo_this_nodes_own() {
        let t0 = Instant::now();
        let mut a = Node::new("a", &["1001", "1002"], t0);
        a.mirror.came_up(&mut a.router, vec![], t0);
        let msg = |r: SeatRecord| Published {
            node: "b".into(),
            record: r,
        };
        a.mirror.message(
            &mut a.router,
            msg(record("1001", "available", "in_call", "b", 5)),
            t0,
        );
        let s = a.router.seat("1001").unwrap();
        assert_eq!(
            (&s.status, &s.activity),
            (&Status::Available, &Activity::InCall(77))
        );
        // An older version changes nothing.
        a.mirror.message(
            &mut a.router,
            msg(record("1001", "available", "idle", "", 4)),
            t0,
        );
        assert_eq!(
            a.router.seat("1001").unwrap().activity,
            Activity::InCall(77)
        );
        // The activity a's own call holds stays as a's router has it, even
        // when a change of b's (a break) carries an older activity.
        a.router
            .mirror_seat("1002", Status::Available, Activity::InCall(3), t0)
            .ok();
        a.mirror.message(
            &mut a.router,
            msg(record("1002", "on_break", "offered", "a", 9)),
            t0,
        );
        let s = a.router.seat("1002").unwrap();
        assert_eq!(
            (&s.status, &s.activity),
            (&Status::OnBreak(String::new()), &Activity::InCall(3))
        );
        // While a write of a's is in flight, the seat waits for its answer.
        a.mirror
            .local_change("1002", &Status::Available, &Activity::InCall(3));
        a.mirror
            .local_change("1002", &Status::Available, &Activity::WrapUp);
        assert!(a.mirror.pending.contains_key("1002"));
        a.mirror.message(
            &mut a.router,
            msg(record("1002", "logged_out", "in_call", "a", 10)),
            t0,
        );
        assert_eq!(
            a.router.seat("1002").unwrap().status,
            Status::OnBreak(String::new())
        );
    }

    #[test]
    fn a_redis_that_restarted_empty_is_believed() {
        let t0 = Instant::now();
        let mut a = Node::new("a", &["1001"], t0);
        let msg = |r: SeatRecord| Published {
            node: "b".into(),
            record: r,
        };
        a.mirror.came_up(&mut a.router, vec![], t0);
        a.mirror.message(
            &mut a.router,
            msg(record("1001", "available", "in_call", "b", 40)),
            t0,
        );
        a.mirror.went_down(&mut a.router, t0);
        a.mirror.came_up(&mut a.router, vec![], t0);
        a.mirror.message(
            &mut a.router,
            msg(record("1001", "available", "idle", "", 1)),
            t0,
        );
        let s = a.router.seat("1001").unwrap();
        assert_eq!(
            (&s.status, &s.activity),
            (&Status::Available, &Activity::Idle)
        );
    }

    #[test]
    fn a_seat_registered_on_a_node_that_is_gone_is_logged_out() {
        let t0 = Instant::now();
        let mut a = Node::new("a", &["1003"], t0);
        let mut r = record("1003", "available", "idle", "", 3);
        r.owner = "b".into();
        r.contact = "sip:1003@127.0.0.1:5070".into();
        r.source = Some("127.0.0.1:5070".parse().unwrap());
        let now_ms = 1_000_000;
        r.expires_ms = now_ms + 60_000;
        a.mirror.came_up(&mut a.router, vec![r], t0);
        // b has not been seen beating yet.
        assert_eq!(a.router.seat("1003").unwrap().status, Status::LoggedOut);
        assert!(a.mirror.binding("1003", t0, now_ms).is_none());
        a.mirror
            .live_nodes(&mut a.router, vec!["a".into(), "b".into()], t0, t0);
        assert_eq!(a.router.seat("1003").unwrap().status, Status::Available);
        let b = a.mirror.binding("1003", t0, now_ms).unwrap();
        assert_eq!(
            b.source,
            "127.0.0.1:5070".parse::<std::net::SocketAddr>().unwrap()
        );
        assert_eq!(b.expires_at, t0 + Duration::from_secs(60));
        assert!(
            a.mirror.binding("1003", t0, now_ms + 60_000).is_none(),
            "expired"
        );
        // b unregisters it elsewhere? a's own registration going does not
        // log out a seat b still has.
        assert!(!a.mirror.unbound("1003", now_ms));
        a.mirror.live_nodes(&mut a.router, vec!["a".into()], t0, t0);
        assert_eq!(a.router.seat("1003").unwrap().status, Status::LoggedOut);
        assert!(a.mirror.unbound("1003", now_ms));
    }

    #[test]
    fn redis_down_routes_own_seats_after_the_lease_and_restore_writes_them_first() {
        let t0 = Instant::now();
        let mut redis = FakeRedis::default();
        let mut a = Node::new("a", &["1001", "1002"], t0);
        a.mirror.came_up(&mut a.router, vec![], t0);
        a.mirror
            .live_nodes(&mut a.router, vec!["a".into(), "b".into()], t0, t0);
        // 1001 registered here; 1002 on b.
        let binding = Binding {
            contact: "sip:1001@127.0.0.1:5071".into(),
            expires_at: t0 + Duration::from_secs(3600),
            source: "127.0.0.1:5071".parse().unwrap(),
        };
        a.mirror
            .bound("1001", &binding, &BTreeMap::new(), &[], t0, 0);
        a.ev(
            Event::SetStatus {
                seat: "1001".into(),
                status: Status::Available,
            },
            t0,
        );
        a.flush(&mut redis, t0);
        let mut r = record("1002", "available", "idle", "", 1);
        r.owner = "b".into();
        a.mirror.message(
            &mut a.router,
            Published {
                node: "b".into(),
                record: r,
            },
            t0,
        );
        assert_eq!(a.router.seat("1002").unwrap().status, Status::Available);

        let down = t0 + Duration::from_secs(1);
        a.mirror.went_down(&mut a.router, down);
        assert_eq!(a.router.seat("1002").unwrap().status, Status::LoggedOut);
        a.ev(
            Event::Enqueue {
                call: 1,
                queue: "q".into(),
                priority: 5,
            },
            down,
        );
        assert!(a.rings.is_empty(), "rung while the lease may still hold");
        assert_eq!(a.router.poll_timeout(), Some(t0 + LEASE));
        a.router.handle_timeout(t0 + LEASE);
        a.pump();
        assert_eq!(
            a.rings,
            [(1, "1001".to_string())],
            "own seat, no reservation"
        );
        assert!(a.mirror.take_ops().is_empty(), "nothing written while down");

        // Back: 1001's registration, status and a's call on it are written
        // before anything else; 1002 comes back from Redis.
        let mut r = record("1002", "available", "idle", "", 2);
        r.owner = "b".into();
        let restore = a.mirror.came_up(&mut a.router, vec![r], t0 + LEASE);
        let seats_guards: Vec<(&str, Guard)> = restore
            .iter()
            .map(|op| match op {
                Op::Write { seat, guard, .. } => (seat.as_str(), *guard),
                Op::Reserve { seat, .. } => (seat.as_str(), Guard::Reserve),
            })
            .collect();
        assert_eq!(
            seats_guards,
            [("1001", Guard::None), ("1001", Guard::Restore)]
        );
        for op in &restore {
            let (reply, _) = redis.run("a", op);
            assert!(reply.ok);
            a.mirror.replied(&mut a.router, op, reply, t0 + LEASE);
        }
        assert_eq!(redis.seats["1001"]["activity"], "offered");
        assert_eq!(redis.seats["1001"]["owner"], "a");
        assert_eq!(a.router.seat("1002").unwrap().status, Status::Available);
        assert_eq!(
            a.router.seat("1001").unwrap().activity,
            Activity::Offered(1)
        );
    }

    /// Two nodes, ten seats, fifty callers at once, writes and messages
    /// interleaved: no seat is ever rung for two calls, and every caller
    /// is served.
    #[test]
    fn two_nodes_share_ten_seats_among_fifty_callers() {
        let t0 = Instant::now();
        let seats: Vec<String> = (1001..=1010).map(|n| n.to_string()).collect();
        let ids: Vec<&str> = seats.iter().map(String::as_str).collect();
        let mut redis = FakeRedis::default();
        let mut nodes = [Node::new("a", &ids, t0), Node::new("b", &ids, t0)];
        for n in &mut nodes {
            n.mirror.came_up(&mut n.router, vec![], t0);
        }
        // Half the seats log in on each node.
        for (i, seat) in ids.iter().enumerate() {
            nodes[i % 2].ev(
                Event::SetStatus {
                    seat: (*seat).into(),
                    status: Status::Available,
                },
                t0,
            );
        }
        for call in 0..50u64 {
            nodes[(call % 2) as usize].ev(
                Event::Enqueue {
                    call: 1000 * (call % 2 + 1) + call,
                    queue: "q".into(),
                    priority: 5,
                },
                t0,
            );
        }
        // Seat → the call ringing or talking there.
        let mut busy: HashMap<SeatId, CallId> = HashMap::new();
        let mut served = 0;
        let mut now = t0;
        // Messages reach the other node a round late, after its own writes.
        let mut in_flight: [Vec<Published>; 2] = [vec![], vec![]];
        for _round in 0..2000 {
            now += Duration::from_millis(10);
            for i in 0..2 {
                for p in std::mem::take(&mut in_flight[i]) {
                    nodes[i].mirror.message(&mut nodes[i].router, p, now);
                    nodes[i].pump();
                }
                let published = nodes[i].flush(&mut redis, now);
                in_flight[1 - i].extend(published);
                nodes[i].router.handle_timeout(now);
                nodes[i].pump();
            }
            // The seats rung since the last round answer, talk and hang up;
            // a seat already busy would have been rung twice.
            for n in &mut nodes {
                for (call, seat) in std::mem::take(&mut n.rings) {
                    if let Some(other) = busy.insert(seat.clone(), call) {
                        panic!("seat {seat} rung for call {call} while busy with {other}");
                    }
                    n.ev(
                        Event::Answered {
                            seat: seat.clone(),
                            call,
                        },
                        now,
                    );
                    n.ev(Event::CallEnded { seat: seat.clone() }, now);
                    busy.remove(&seat);
                    served += 1;
                }
            }
            if served == 50 {
                break;
            }
        }
        assert_eq!(served, 50, "callers left waiting");
        let refused = nodes[0].mirror.refused + nodes[1].mirror.refused;
        assert!(refused > 0, "the nodes never competed for a seat");
    }
}
