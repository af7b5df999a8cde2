//! The registrar: where agents' softphones say they are.
//!
//! Sans-IO: a REGISTER's facts and the time go in, the answer comes out.
//! Digest authentication (RFC 8760: SHA-256 offered first, MD5 for older
//! phones; qop=auth) uses rsipstack's digest functions; nonces, bindings
//! with expiry, several contacts per seat, unregistration and the lockout
//! of an address that keeps guessing passwords are kept here.

use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::Method;
use rsipstack::sip::headers::auth::Algorithm;
use rsipstack::sip::typed::Authorization;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A seat's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub password: String,
    pub enabled: bool,
}

/// Registrar policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub realm: String,
    /// Offered in this order: `SHA-256`, `MD5`.
    pub algorithms: Vec<String>,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts: usize,
    /// A nonce is good this long (then the phone is told `stale=true`).
    pub nonce_ttl: Duration,
    /// Wrong passwords from one address within `lockout_window` before it
    /// is banned for `ban`.
    pub lockout_failures: u32,
    pub lockout_window: Duration,
    pub ban: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            realm: "hotline".into(),
            algorithms: vec!["SHA-256".into(), "MD5".into()],
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 5,
            nonce_ttl: Duration::from_secs(300),
            lockout_failures: 5,
            lockout_window: Duration::from_secs(60),
            ban: Duration::from_secs(600),
        }
    }
}

/// One contact of a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub contact: String,
    pub expires_at: Instant,
    /// Where the REGISTER came from: requests go there (NAT).
    pub source: SocketAddr,
}

/// A contact in a REGISTER, with its own `expires` parameter if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactParam {
    pub uri: String,
    pub expires: Option<u32>,
}

/// What the shell read from a REGISTER.
#[derive(Debug, Clone)]
pub struct Register<'a> {
    /// The user part of To: the seat id.
    pub user: &'a str,
    pub contacts: Vec<ContactParam>,
    /// `Contact: *` (remove every binding; needs `Expires: 0`).
    pub star: bool,
    pub expires: Option<u32>,
    /// The raw Authorization header value, if any.
    pub authorization: Option<&'a str>,
    pub source: SocketAddr,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 401 with these WWW-Authenticate values.
    Challenge(Vec<String>),
    /// 200 with the seat's bindings and their remaining seconds.
    Registered(Vec<(String, u32)>),
    /// 423 Interval Too Brief.
    TooBrief { min_expires: u32 },
    /// 403: a wrong password, a disabled seat, a banned address.
    Forbidden(&'static str),
    /// 404: no such seat.
    NotFound,
    /// 400.
    BadRequest(&'static str),
}

/// Why a password login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// Unknown seat or wrong password (not told apart).
    WrongPassword,
    Disabled,
    /// Too many failures from this address.
    LockedOut,
}

/// Bindings, nonces and failed attempts.
#[derive(Debug)]
pub struct Registrar {
    policy: Policy,
    accounts: HashMap<String, Account>,
    bindings: HashMap<String, Vec<Binding>>,
    nonces: HashMap<String, Instant>,
    failures: HashMap<IpAddr, (u32, Instant)>,
    bans: HashMap<IpAddr, Instant>,
    /// Lockouts so far, for `/metrics`.
    pub lockouts: u64,
    /// Failed authentications so far.
    pub auth_failures: u64,
}

impl Registrar {
    /// A registrar for these seats.
    pub fn new(policy: Policy, accounts: Vec<Account>) -> Registrar {
        Registrar {
            policy,
            accounts: accounts.into_iter().map(|a| (a.id.clone(), a)).collect(),
            bindings: HashMap::new(),
            nonces: HashMap::new(),
            failures: HashMap::new(),
            bans: HashMap::new(),
            lockouts: 0,
            auth_failures: 0,
        }
    }

    /// Replaces the seat list (config reload, API); bindings of removed or
    /// disabled seats go.
    pub fn set_accounts(&mut self, accounts: Vec<Account>) {
        self.accounts = accounts.into_iter().map(|a| (a.id.clone(), a)).collect();
        let accounts = &self.accounts;
        self.bindings
            .retain(|id, _| accounts.get(id).is_some_and(|a| a.enabled));
    }

    /// Whether an address is banned now.
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.bans.get(&ip).is_some_and(|until| *until > now)
    }

    /// The live bindings of a seat.
    pub fn lookup(&self, seat: &str, now: Instant) -> Vec<&Binding> {
        self.bindings
            .get(seat)
            .map(|b| b.iter().filter(|b| b.expires_at > now).collect())
            .unwrap_or_default()
    }

    /// Every live binding, for keep-alive pings.
    pub fn all_bindings(&self, now: Instant) -> Vec<(String, Binding)> {
        self.bindings
            .iter()
            .flat_map(|(seat, list)| {
                list.iter()
                    .filter(|b| b.expires_at > now)
                    .map(|b| (seat.clone(), b.clone()))
            })
            .collect()
    }

    /// Drops one contact of a seat (its phone stopped answering); true when
    /// the seat has no binding left.
    pub fn drop_binding(&mut self, seat: &str, contact: &str) -> bool {
        let Some(list) = self.bindings.get_mut(seat) else {
            return false;
        };
        list.retain(|b| b.contact != contact);
        let empty = list.is_empty();
        if empty {
            self.bindings.remove(seat);
        }
        empty
    }

    /// Drops expired bindings, nonces, failure counts and bans; returns the
    /// seats left with no binding.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut gone = Vec::new();
        self.bindings.retain(|seat, list| {
            list.retain(|b| b.expires_at > now);
            if list.is_empty() {
                gone.push(seat.clone());
            }
            !list.is_empty()
        });
        let ttl = self.policy.nonce_ttl;
        self.nonces
            .retain(|_, at| now.saturating_duration_since(*at) < ttl);
        let window = self.policy.lockout_window;
        self.failures
            .retain(|_, (_, first)| now.saturating_duration_since(*first) < window);
        self.bans.retain(|_, until| *until > now);
        gone
    }

    fn challenge(&mut self, now: Instant, stale: bool) -> Outcome {
        let nonce = format!("{:032x}", rand::random::<u128>());
        self.nonces.insert(nonce.clone(), now);
        let stale = if stale { ", stale=true" } else { "" };
        let realm = &self.policy.realm;
        Outcome::Challenge(
            self.policy
                .algorithms
                .iter()
                .map(|alg| {
                    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={alg}, qop=\"auth\"{stale}")
                })
                .collect(),
        )
    }

    fn fail(&mut self, ip: IpAddr, now: Instant) {
        self.auth_failures += 1;
        let window = self.policy.lockout_window;
        let entry = self.failures.entry(ip).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= window {
            *entry = (0, now);
        }
        entry.0 += 1;
        if entry.0 >= self.policy.lockout_failures {
            self.failures.remove(&ip);
            self.bans.insert(ip, now + self.policy.ban);
            self.lockouts += 1;
            tracing::warn!(%ip, "REGISTER lockout: too many wrong passwords");
        }
    }

    /// Checks a seat's password given in the clear (the browser desktop's
    /// login, over the API's TLS); wrong guesses count toward the same
    /// lockout as REGISTER's.
    pub fn check_password(
        &mut self,
        seat: &str,
        password: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(), LoginRefused> {
        if self.is_banned(ip, now) {
            return Err(LoginRefused::LockedOut);
        }
        let matches = self.accounts.get(seat).is_some_and(|a| {
            // Compared in constant time: timing must not tell how much matched.
            let (a, b) = (a.password.as_bytes(), password.as_bytes());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        });
        if !matches {
            self.fail(ip, now);
            return Err(if self.is_banned(ip, now) {
                LoginRefused::LockedOut
            } else {
                LoginRefused::WrongPassword
            });
        }
        if !self.accounts.get(seat).is_some_and(|a| a.enabled) {
            return Err(LoginRefused::Disabled);
        }
        self.failures.remove(&ip);
        Ok(())
    }

    /// Binds a contact for a seat whose login was checked elsewhere (a
    /// browser seat at the gateway's user agent), for the longest time a
    /// REGISTER may ask; the owner renews it.
    pub fn bind_checked(&mut self, seat: &str, contact: &str, source: SocketAddr, now: Instant) {
        let register = Register {
            user: seat,
            contacts: vec![ContactParam {
                uri: contact.to_owned(),
                expires: Some(self.policy.max_expires),
            }],
            star: false,
            expires: None,
            authorization: None,
            source,
        };
        self.bind(&register, now);
    }

    /// Handles one REGISTER.
    pub fn register(&mut self, req: &Register<'_>, now: Instant) -> Outcome {
        let ip = req.source.ip();
        if self.is_banned(ip, now) {
            return Outcome::Forbidden("too many failed attempts; try later");
        }
        let Some(raw) = req.authorization else {
            return self.challenge(now, false);
        };
        let Ok(auth) = Authorization::parse(raw) else {
            return Outcome::BadRequest("malformed Authorization header");
        };
        if auth.realm != self.policy.realm {
            return self.challenge(now, false);
        }
        match self.nonces.get(&auth.nonce) {
            Some(at) if now.saturating_duration_since(*at) < self.policy.nonce_ttl => {}
            // Unknown or old nonce: not a wrong password, just ask again.
            _ => return self.challenge(now, true),
        }
        let offered = |name: &str| self.policy.algorithms.iter().any(|a| a == name);
        let allowed = match auth.algorithm.unwrap_or(Algorithm::Md5) {
            Algorithm::Md5 => offered("MD5"),
            Algorithm::Sha256 => offered("SHA-256"),
            _ => false,
        };
        if !allowed {
            return self.challenge(now, false);
        }
        let account = match self.accounts.get(req.user) {
            Some(a) if auth.username == req.user => a.clone(),
            // An unknown seat counts as a failure, so scanning for seats is
            // as slow as guessing passwords.
            _ => {
                self.fail(ip, now);
                return Outcome::NotFound;
            }
        };
        if !verify_digest(&auth, &account.password, &Method::Register, raw) {
            self.fail(ip, now);
            return Outcome::Forbidden("wrong password");
        }
        if !account.enabled {
            return Outcome::Forbidden("seat disabled");
        }
        self.failures.remove(&ip);
        self.bind(req, now)
    }

    fn bind(&mut self, req: &Register<'_>, now: Instant) -> Outcome {
        let p = &self.policy;
        let list = self.bindings.entry(req.user.to_owned()).or_default();
        if req.star {
            if req.expires != Some(0) {
                return Outcome::BadRequest("Contact: * needs Expires: 0");
            }
            list.clear();
            return Outcome::Registered(vec![]);
        }
        for c in &req.contacts {
            let asked = c.expires.or(req.expires).unwrap_or(p.default_expires);
            if asked != 0 && asked < p.min_expires {
                return Outcome::TooBrief {
                    min_expires: p.min_expires,
                };
            }
        }
        for c in &req.contacts {
            let asked = c
                .expires
                .or(req.expires)
                .unwrap_or(p.default_expires)
                .min(p.max_expires);
            list.retain(|b| b.contact != c.uri);
            if asked > 0 {
                list.push(Binding {
                    contact: c.uri.clone(),
                    expires_at: now + Duration::from_secs(asked.into()),
                    source: req.source,
                });
            }
        }
        // The oldest contacts give way when a seat has too many.
        while list.len() > p.max_contacts {
            list.remove(0);
        }
        let bound = list
            .iter()
            .map(|b| {
                (
                    b.contact.clone(),
                    b.expires_at.saturating_duration_since(now).as_secs() as u32,
                )
            })
            .collect();
        Outcome::Registered(bound)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_password_login_counts_toward_the_lockout_and_binds_like_a_register() {
        let policy = Policy {
            lockout_failures: 2,
            ..Policy::default()
        };
        let accounts = vec![
            Account {
                id: "2001".into(),
                password: "secret".into(),
                enabled: true,
            },
            Account {
                id: "2002".into(),
                password: "other".into(),
                enabled: false,
            },
        ];
        let mut r = Registrar::new(policy, accounts);
        let now = Instant::now();
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        assert_eq!(r.check_password("2001", "secret", ip, now), Ok(()));
        assert_eq!(
            r.check_password("2002", "other", ip, now),
            Err(LoginRefused::Disabled)
        );
        assert_eq!(
            r.check_password("2001", "secre", ip, now),
            Err(LoginRefused::WrongPassword)
        );
        assert_eq!(
            r.check_password("nobody", "secret", ip, now),
            Err(LoginRefused::LockedOut)
        );
        // Even the right password waits out the ban.
        assert_eq!(
            r.check_password("2001", "secret", ip, now),
            Err(LoginRefused::LockedOut)
        );
        let source: SocketAddr = "127.0.0.1:5999".parse().unwrap();
        r.bind_checked("2001", "sip:2001@127.0.0.1:5999", source, now);
        let bound = r.lookup("2001", now);
        assert_eq!(bound.len(), 1);
        assert_eq!(bound[0].source, source);
        assert!(r.drop_binding("2001", "sip:2001@127.0.0.1:5999"));
    }

    use super::*;
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::sip::headers::auth::AuthQop;

    fn registrar() -> Registrar {
        Registrar::new(
            Policy::default(),
            vec![
                Account {
                    id: "1001".into(),
                    password: "hotline-1001".into(),
                    enabled: true,
                },
                Account {
                    id: "1002".into(),
                    password: "hotline-1002".into(),
                    enabled: false,
                },
            ],
        )
    }

    fn nonce_of(outcome: &Outcome) -> String {
        let Outcome::Challenge(values) = outcome else {
            panic!("{outcome:?}")
        };
        let v = &values[0];
        let start = v.find("nonce=\"").unwrap() + 7;
        v[start..start + 32].to_string()
    }

    /// The Authorization a phone would send.
    fn authorization(user: &str, password: &str, nonce: &str, alg: Algorithm) -> String {
        let uri = "sip:127.0.0.1";
        let qop = AuthQop::Auth {
            cnonce: "abc".into(),
            nc: 1,
        };
        let response = compute_digest(
            user,
            password,
            "hotline",
            nonce,
            &Method::Register,
            uri,
            alg,
            Some(&qop),
        );
        format!(
            "Digest username=\"{user}\", realm=\"hotline\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={alg}, qop=auth, nc=00000001, cnonce=\"abc\""
        )
    }

    fn req<'a>(
        user: &'a str,
        auth: Option<&'a str>,
        expires: Option<u32>,
        contacts: &[&str],
    ) -> Register<'a> {
        Register {
            user,
            contacts: contacts
                .iter()
                .map(|c| ContactParam {
                    uri: c.to_string(),
                    expires: None,
                })
                .collect(),
            star: false,
            expires,
            authorization: auth,
            source: "192.0.2.7:5062".parse().unwrap(),
        }
    }

    #[test]
    fn challenge_then_register_with_either_algorithm() {
        for alg in [Algorithm::Sha256, Algorithm::Md5] {
            let mut r = registrar();
            let now = Instant::now();
            let first = r.register(
                &req("1001", None, Some(600), &["sip:1001@192.0.2.7:5062"]),
                now,
            );
            let Outcome::Challenge(values) = &first else {
                panic!()
            };
            assert!(values[0].contains("algorithm=SHA-256") && values[1].contains("algorithm=MD5"));
            let auth = authorization("1001", "hotline-1001", &nonce_of(&first), alg);
            let ok = r.register(
                &req("1001", Some(&auth), Some(600), &["sip:1001@192.0.2.7:5062"]),
                now,
            );
            assert_eq!(
                ok,
                Outcome::Registered(vec![("sip:1001@192.0.2.7:5062".into(), 600)]),
                "{alg}"
            );
            assert_eq!(r.lookup("1001", now).len(), 1);
        }
    }

    #[test]
    fn several_contacts_expiry_and_unregister() {
        let mut r = registrar();
        let t0 = Instant::now();
        let nonce = nonce_of(&r.register(&req("1001", None, None, &[]), t0));
        let auth = authorization("1001", "hotline-1001", &nonce, Algorithm::Md5);
        r.register(&req("1001", Some(&auth), Some(120), &["sip:a@h"]), t0);
        let two = r.register(&req("1001", Some(&auth), Some(3600), &["sip:b@h"]), t0);
        let Outcome::Registered(b) = two else {
            panic!()
        };
        assert_eq!(b.len(), 2);
        // Too brief.
        assert_eq!(
            r.register(&req("1001", Some(&auth), Some(10), &["sip:c@h"]), t0),
            Outcome::TooBrief { min_expires: 60 }
        );
        // The first contact expires after 120 s.
        let later = t0 + Duration::from_secs(121);
        assert_eq!(r.lookup("1001", later).len(), 1);
        // Unregister one contact with expires=0, then all with *.
        let mut one = req("1001", Some(&auth), Some(0), &["sip:b@h"]);
        assert_eq!(
            r.register(&one, t0),
            Outcome::Registered(vec![("sip:a@h".into(), 120)])
        );
        one.star = true;
        one.contacts.clear();
        assert_eq!(r.register(&one, t0), Outcome::Registered(vec![]));
        assert!(r.lookup("1001", t0).is_empty());
        assert_eq!(r.expire(later), vec!["1001".to_string()]);
    }

    #[test]
    fn wrong_passwords_lock_the_address_out() {
        let mut r = registrar();
        let now = Instant::now();
        for i in 0..5 {
            let nonce = nonce_of(&r.register(&req("1001", None, None, &[]), now));
            let auth = authorization("1001", "guess", &nonce, Algorithm::Md5);
            let out = r.register(&req("1001", Some(&auth), None, &["sip:x@h"]), now);
            assert_eq!(out, Outcome::Forbidden("wrong password"), "attempt {i}");
        }
        assert_eq!(r.lockouts, 1);
        // Banned: even the right password is refused for now.
        assert!(r.is_banned("192.0.2.7".parse().unwrap(), now));
        let out = r.register(&req("1001", None, None, &[]), now);
        assert_eq!(
            out,
            Outcome::Forbidden("too many failed attempts; try later")
        );
        // The ban ends.
        let later = now + Duration::from_secs(601);
        r.expire(later);
        assert!(matches!(
            r.register(&req("1001", None, None, &[]), later),
            Outcome::Challenge(_)
        ));
    }

    #[test]
    fn stale_nonce_unknown_and_disabled_seats() {
        let mut r = registrar();
        let now = Instant::now();
        let nonce = nonce_of(&r.register(&req("1001", None, None, &[]), now));
        let auth = authorization("1001", "hotline-1001", &nonce, Algorithm::Md5);
        let late = now + Duration::from_secs(301);
        let Outcome::Challenge(v) = r.register(&req("1001", Some(&auth), None, &["sip:x@h"]), late)
        else {
            panic!()
        };
        assert!(v[0].contains("stale=true"));
        let nonce = nonce_of(&r.register(&req("9999", None, None, &[]), now));
        let auth = authorization("9999", "x", &nonce, Algorithm::Md5);
        assert_eq!(
            r.register(&req("9999", Some(&auth), None, &["sip:x@h"]), now),
            Outcome::NotFound
        );
        let auth = authorization("1002", "hotline-1002", &nonce, Algorithm::Md5);
        assert_eq!(
            r.register(&req("1002", Some(&auth), None, &["sip:x@h"]), now),
            Outcome::Forbidden("seat disabled")
        );
        assert_eq!(
            r.register(&req("1001", Some("Digest garbage"), None, &[]), now),
            Outcome::BadRequest("malformed Authorization header")
        );
    }
}
