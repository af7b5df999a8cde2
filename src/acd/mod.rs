//! ACD: queues of callers and the seats that answer them.
//!
//! [`router`] is the sans-IO core that decides which caller goes to which
//! seat; [`service`] is the node's ACD around it. Seats live in memory, or,
//! with `REDIS_URL`, are shared by every node on one Redis: [`shared`] is
//! the sans-IO mirror of the cluster's seats and [`redis`] the task that
//! talks to Redis for it. The registrar, the call actors and the bridge
//! build on them.

pub mod audit;
pub mod events;
pub mod redis;
pub mod router;
pub mod service;
pub mod shared;
