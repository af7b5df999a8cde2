//! ACD: queues of callers and the seats that answer them.
//!
//! [`router`] is the sans-IO core that decides which caller goes to which
//! seat. The registrar, the seat actors, the bridge and the shared-state
//! store (memory or Redis) build on it.

pub mod router;
pub mod service;
