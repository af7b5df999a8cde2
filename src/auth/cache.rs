//! Tokens seen valid recently, so a request still knows its user while the
//! database is away (an agent can still file the order of the call they are
//! on; the order waits in the spool). Only used when the user table cannot
//! be read: a disabled user is refused as soon as the database answers.

use super::Principal;
use std::collections::HashMap;
use std::sync::Mutex;

/// Token hash → the principal and when the database last vouched for it.
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Principal, i64)>>,
    ttl_ms: i64,
}

impl TokenCache {
    /// Trusts a vouched-for token for `ttl_ms` of outage.
    pub fn new(ttl_ms: i64) -> TokenCache {
        TokenCache {
            entries: Mutex::new(HashMap::new()),
            ttl_ms,
        }
    }

    /// The database just confirmed this token.
    pub fn remember(&self, hash: &str, principal: &Principal, now: i64) {
        let mut map = self.entries.lock().expect("token cache");
        // Bounded: forget stale entries before growing past a few thousand.
        if map.len() > 4096 {
            let ttl = self.ttl_ms;
            map.retain(|_, (_, at)| now - *at <= ttl);
        }
        map.insert(hash.to_owned(), (principal.clone(), now));
    }

    /// The database said the token is unknown or disabled.
    pub fn forget(&self, hash: &str) {
        self.entries.lock().expect("token cache").remove(hash);
    }

    /// The principal, if the database vouched for it within the TTL.
    pub fn recall(&self, hash: &str, now: i64) -> Option<Principal> {
        let map = self.entries.lock().expect("token cache");
        map.get(hash)
            .filter(|(_, at)| now - *at <= self.ttl_ms)
            .map(|(p, _)| p.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn a_token_is_recalled_only_within_its_ttl_and_until_forgotten() {
        let cache = TokenCache::new(1000);
        let p = Principal {
            name: "a".into(),
            role: Role::Agent,
            unit: None,
        };
        cache.remember("h", &p, 10);
        assert_eq!(cache.recall("h", 1010), Some(p.clone()));
        assert_eq!(cache.recall("h", 1011), None);
        assert_eq!(cache.recall("other", 20), None);
        cache.forget("h");
        assert_eq!(cache.recall("h", 20), None);
    }
}
