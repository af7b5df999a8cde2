//! The knowledge base (知识库, art. 12): shared answers on policies,
//! procedures and unit duties that agents use to answer callers directly.
//!
//! [`lifecycle`] is the sans-IO core: an entry's versions and the
//! draft → review → approved → published → expired rules, with who may do
//! what. [`search`] is the in-memory Chinese full-text index of published
//! entries. [`desk`] is the async shell the API calls: it checks entries
//! against the catalogue and units, writes through `store::kb`, keeps the
//! index current and runs the background catch-up and expiry sweep.
//! Hits (direct answers given with an entry) are recorded by the order
//! desk in the same transaction that closes the order.

pub mod desk;
pub mod lifecycle;
pub mod search;
