//! Outside lines (`[[trunk]]`): where a call to a trunk or a phone number
//! goes, who it says is calling, and whether the trunk is answering.
//!
//! The policy is sans-IO: [`destination`] turns a target into a trunk and a
//! URI, [`caller_id`] picks From and `P-Asserted-Identity`, and
//! [`TrunkHealth`] applies the up/down rule to check results with time
//! passed in. The shell around them is [`route`] (adds a DNS lookup) and
//! [`run`], which sends the OPTIONS health checks through
//! [`crate::sip::keepalive::options`] and keeps [`TrunkStates`] in
//! [`crate::server::Shared`] for calls, `/healthz` and `/metrics`.

use crate::config::{CallerId, Config, TrunkConfig};
use crate::server::Shared;
use crate::sip::registrar::Binding;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::sip::Header;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a trunk's URI has the dialled number.
const NUMBER_SLOT: &str = "{number}";

/// Longest a health check waits for an answer (less when checks are more
/// frequent, so one never overlaps the next).
const CHECK_TIMEOUT: Duration = Duration::from_secs(4);

/// Failed checks in a row that mark a trunk down; one miss may be a lost
/// datagram.
pub const DOWN_AFTER: u32 = 2;

/// How often the checker looks for trunks that are due.
const TICK: Duration = Duration::from_millis(250);

/// Whether `s` is a phone number: ASCII digits, an optional leading `+`,
/// at least three digits.
pub fn is_phone_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    digits.len() >= 3 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// From user and extra headers of a call out through a trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub from_user: String,
    pub headers: Vec<Header>,
}

/// Who a call through a trunk says is calling, for the trunk's policy.
/// `host` goes into the `P-Asserted-Identity` URI as written (bracket an
/// IPv6 address). A citizen number that is not a phone number (empty,
/// `anonymous`, ...) is never asserted; From is then the hotline's.
pub fn caller_id(policy: CallerId, citizen: &str, hotline: &str, host: &str) -> CallerIdentity {
    let known = is_phone_number(citizen);
    let pai = || {
        vec![Header::PAssertedIdentity(
            format!("<sip:{citizen}@{host}>").into(),
        )]
    };
    let (from_user, headers) = match policy {
        CallerId::Pai if known => (hotline, pai()),
        CallerId::Citizen if known => (citizen, pai()),
        CallerId::Pai | CallerId::Citizen | CallerId::Hotline => (hotline, Vec::new()),
    };
    CallerIdentity {
        from_user: from_user.to_owned(),
        headers,
    }
}

/// Why a target cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("{0:?} is neither a trunk in the config nor a phone number")]
    UnknownTarget(String),
    #[error("{0:?} is not a phone number")]
    NotANumber(String),
    #[error("the callback trunk {0:?} is not in the config")]
    NoCallbackTrunk(String),
    #[error("trunk {0:?} dials numbers ({{number}} in its uri): give a number, not the trunk")]
    NeedsNumber(String),
    #[error("trunk {0:?} has no {{number}} in its uri, so it cannot dial numbers")]
    NoNumberSlot(String),
    #[error("trunk {trunk:?}: no host in {uri:?}")]
    NoHost { trunk: String, uri: String },
    #[error("trunk {trunk:?}: {address} does not resolve ({reason})")]
    Unresolvable {
        trunk: String,
        address: String,
        reason: String,
    },
}

/// A target placed on a trunk, before any DNS lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination<'a> {
    pub trunk: &'a TrunkConfig,
    /// The Request-URI, with any number in.
    pub uri: String,
    /// `host:port` to send to.
    pub address: String,
}

/// Places a target: a trunk name (`119`, `water`) is that trunk's URI; a
/// phone number that is no trunk's name goes out on the callback trunk.
pub fn destination<'a>(config: &'a Config, target: &str) -> Result<Destination<'a>, RouteError> {
    if let Some(trunk) = config.trunks.iter().find(|t| t.name == target) {
        if trunk.uri.contains(NUMBER_SLOT) {
            return Err(RouteError::NeedsNumber(trunk.name.clone()));
        }
        return on(trunk, trunk.uri.clone());
    }
    if !is_phone_number(target) {
        return Err(RouteError::UnknownTarget(target.to_owned()));
    }
    number_destination(config, target)
}

/// Places a phone number on the callback trunk, even one that is also a
/// trunk's name (a call-back goes to the citizen, whatever their number).
pub fn number_destination<'a>(
    config: &'a Config,
    number: &str,
) -> Result<Destination<'a>, RouteError> {
    if !is_phone_number(number) {
        return Err(RouteError::NotANumber(number.to_owned()));
    }
    let name = &config.callback.trunk;
    let trunk = config
        .trunks
        .iter()
        .find(|t| &t.name == name)
        .ok_or_else(|| RouteError::NoCallbackTrunk(name.clone()))?;
    if !trunk.uri.contains(NUMBER_SLOT) {
        return Err(RouteError::NoNumberSlot(trunk.name.clone()));
    }
    on(trunk, trunk.uri.replace(NUMBER_SLOT, number))
}

fn on(trunk: &TrunkConfig, uri: String) -> Result<Destination<'_>, RouteError> {
    let address = address_of(&uri).ok_or_else(|| RouteError::NoHost {
        trunk: trunk.name.clone(),
        uri: uri.clone(),
    })?;
    Ok(Destination {
        trunk,
        uri,
        address,
    })
}

/// `host:port` of a SIP URI; the port defaults to 5060 (5061 for `sips:`).
fn address_of(uri: &str) -> Option<String> {
    let (rest, port) = match uri.strip_prefix("sips:") {
        Some(rest) => (rest, 5061),
        None => (uri.strip_prefix("sip:")?, 5060),
    };
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split([';', '?']).next().unwrap_or_default();
    // An IPv6 host is bracketed; its colons are not a port.
    let has_port = match host_port.rfind(']') {
        Some(end) => host_port[end..].contains(':'),
        None => host_port.contains(':'),
    };
    match host_port {
        "" => None,
        _ if has_port => Some(host_port.to_owned()),
        _ => Some(format!("{host_port}:{port}")),
    }
}

/// Everything needed to call out through a trunk.
#[derive(Clone)]
pub struct TrunkRoute {
    /// The trunk's name.
    pub trunk: String,
    /// Request-URI (`contact`) and the resolved address (`source`).
    pub binding: Binding,
    /// For a 401/407 from the trunk.
    pub credential: Option<Credential>,
    pub caller_id: CallerId,
    /// How long the call may ring.
    pub ring: Duration,
}

// By hand: `Credential` has no Debug, and the password must stay out of logs.
impl std::fmt::Debug for TrunkRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkRoute")
            .field("trunk", &self.trunk)
            .field("binding", &self.binding)
            .field("username", &self.credential.as_ref().map(|c| &c.username))
            .field("caller_id", &self.caller_id)
            .field("ring", &self.ring)
            .finish()
    }
}

/// Resolves a trunk name or phone number (see [`destination`]) to where
/// the INVITE goes and how.
pub async fn route(config: &Config, target: &str) -> Result<TrunkRoute, RouteError> {
    resolve(destination(config, target)?).await
}

/// Resolves a phone number on the callback trunk (see [`number_destination`]).
pub async fn route_number(config: &Config, number: &str) -> Result<TrunkRoute, RouteError> {
    resolve(number_destination(config, number)?).await
}

async fn resolve(d: Destination<'_>) -> Result<TrunkRoute, RouteError> {
    let trunk = d.trunk;
    let source = lookup(&trunk.name, &d.address).await?;
    Ok(TrunkRoute {
        trunk: trunk.name.clone(),
        binding: Binding {
            contact: d.uri,
            expires_at: Instant::now(),
            source,
        },
        credential: trunk.username.clone().zip(trunk.password.clone()).map(
            |(username, password)| Credential {
                username,
                password,
                realm: None,
                auth_username: None,
            },
        ),
        caller_id: trunk.caller_id,
        ring: Duration::from_secs(trunk.ring_secs.into()),
    })
}

async fn lookup(trunk: &str, address: &str) -> Result<SocketAddr, RouteError> {
    let unresolvable = |reason: String| RouteError::Unresolvable {
        trunk: trunk.to_owned(),
        address: address.to_owned(),
        reason,
    };
    tokio::net::lookup_host(address)
        .await
        .map_err(|e| unresolvable(e.to_string()))?
        .next()
        .ok_or_else(|| unresolvable("no address".into()))
}

/// What the health checker asks a trunk: its URI, or for a trunk that
/// dials numbers the host alone (there is no number to put in).
fn check_uri(trunk: &TrunkConfig) -> String {
    match trunk.uri.split_once('@') {
        Some((user, host)) if user.contains(NUMBER_SLOT) => {
            let scheme = user.split(':').next().unwrap_or("sip");
            format!("{scheme}:{host}")
        }
        _ => trunk.uri.clone(),
    }
}

/// A trunk's health as last checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TrunkState {
    /// Not checked yet, or checks are off.
    #[default]
    Unknown,
    Up,
    Down,
}

impl TrunkState {
    /// The word in `/healthz`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkState::Unknown => "unknown",
            TrunkState::Up => "up",
            TrunkState::Down => "down",
        }
    }
}

/// What one OPTIONS check got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A final status.
    Answered(u16),
    /// Nothing in time, or it could not be sent (no address, no route).
    NoAnswer,
}

impl Probe {
    /// Any answer below 500 (even 404, 405 or 481) shows a live SIP peer;
    /// 5xx and 6xx say it cannot take calls.
    pub fn is_healthy(self) -> bool {
        matches!(self, Probe::Answered(100..=499))
    }
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Answered(status) => write!(f, "{status}"),
            Probe::NoAnswer => f.write_str("none"),
        }
    }
}

/// One trunk's health record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkStatus {
    pub state: TrunkState,
    /// Failed checks since the last good one.
    pub consecutive_failures: u32,
    /// When `state` last changed.
    pub changed_at: Option<Instant>,
    /// Checks made.
    pub checks: u64,
    /// Checks that failed.
    pub failures: u64,
}

/// The up/down rule, sans-IO: check results in, state changes out. One good
/// answer makes a trunk up; [`DOWN_AFTER`] failures in a row make it down.
#[derive(Debug, Default)]
pub struct TrunkHealth {
    trunks: HashMap<String, TrunkStatus>,
}

impl TrunkHealth {
    /// Counts a check of `name`; returns the new state when it changed.
    pub fn observe(&mut self, name: &str, probe: Probe, now: Instant) -> Option<TrunkState> {
        let t = self.trunks.entry(name.to_owned()).or_default();
        let before = t.state;
        t.checks += 1;
        if probe.is_healthy() {
            t.consecutive_failures = 0;
            t.state = TrunkState::Up;
        } else {
            t.failures += 1;
            t.consecutive_failures += 1;
            if t.consecutive_failures >= DOWN_AFTER {
                t.state = TrunkState::Down;
            }
        }
        (t.state != before).then(|| {
            t.changed_at = Some(now);
            t.state
        })
    }

    /// A trunk's record; a default (unknown) one when never checked.
    pub fn status(&self, name: &str) -> TrunkStatus {
        self.trunks.get(name).cloned().unwrap_or_default()
    }

    /// Forgets trunks for which `keep` is false (removed, or checks off).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.trunks.retain(|name, _| keep(name));
    }
}

/// One configured trunk as `/healthz` and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkView {
    pub name: String,
    pub status: TrunkStatus,
}

/// The trunks' health, shared by the checker, calls and the API.
#[derive(Debug, Default)]
pub struct TrunkStates {
    health: Mutex<TrunkHealth>,
}

impl TrunkStates {
    /// A trunk's state (unknown for one never checked or not configured).
    pub fn state(&self, name: &str) -> TrunkState {
        self.lock().status(name).state
    }

    /// Every trunk in `config`, in its order.
    pub fn snapshot(&self, config: &Config) -> Vec<TrunkView> {
        let health = self.lock();
        config
            .trunks
            .iter()
            .map(|t| TrunkView {
                name: t.name.clone(),
                status: health.status(&t.name),
            })
            .collect()
    }

    /// See [`TrunkHealth::observe`].
    pub fn observe(&self, name: &str, probe: Probe, now: Instant) -> Option<TrunkState> {
        self.lock().observe(name, probe, now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TrunkHealth> {
        self.health.lock().expect("trunk health lock")
    }
}

/// Checks every trunk with `options_secs` > 0 on its own interval until the
/// server stops; follows config reloads.
pub async fn run(shared: Arc<Shared>) {
    let mut due: HashMap<String, tokio::time::Instant> = HashMap::new();
    let mut checks = tokio::task::JoinSet::<(String, Probe)>::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(Ok((name, probe))) = checks.join_next() => {
                record(&shared, &name, probe);
                continue;
            }
        }
        let config = shared.config.load_full();
        let checked = |name: &str| {
            config
                .trunks
                .iter()
                .any(|t| t.name == name && t.options_secs > 0)
        };
        // Removed trunks, and trunks whose checks were turned off, go back
        // to unknown.
        shared.trunks.lock().retain(checked);
        due.retain(|name, _| checked(name));
        let now = tokio::time::Instant::now();
        for trunk in config.trunks.iter().filter(|t| t.options_secs > 0) {
            let every = Duration::from_secs(trunk.options_secs.into());
            // The first check comes one interval after start (or after the
            // trunk was added), as keep-alives do: a peer that just came up
            // is not asked before it had time to.
            let next = due.entry(trunk.name.clone()).or_insert(now + every);
            if *next > now {
                continue;
            }
            *next = now + every;
            let (shared, trunk) = (shared.clone(), trunk.clone());
            checks.spawn(async move {
                let probe = check(&shared, &trunk, every.min(CHECK_TIMEOUT)).await;
                (trunk.name, probe)
            });
        }
    }
}

/// One OPTIONS to a trunk, DNS included, within `limit`.
async fn check(shared: &Shared, trunk: &TrunkConfig, limit: Duration) -> Probe {
    let attempt = async {
        let uri = check_uri(trunk);
        let Some(address) = address_of(&uri) else {
            return Probe::NoAnswer;
        };
        let source = match lookup(&trunk.name, &address).await {
            Ok(source) => source,
            Err(e) => {
                tracing::debug!(error = %e, "trunk check not sent");
                return Probe::NoAnswer;
            }
        };
        let binding = Binding {
            contact: uri,
            expires_at: Instant::now(),
            source,
        };
        match crate::sip::keepalive::options(shared, &binding, limit).await {
            Some(status) => Probe::Answered(status),
            None => Probe::NoAnswer,
        }
    };
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or(Probe::NoAnswer)
}

/// Counts a finished check and logs a change of state.
fn record(shared: &Shared, name: &str, probe: Probe) {
    // A check that finished after its trunk was removed says nothing.
    let config = shared.config.load();
    if !config
        .trunks
        .iter()
        .any(|t| t.name == name && t.options_secs > 0)
    {
        return;
    }
    match shared.trunks.observe(name, probe, Instant::now()) {
        Some(TrunkState::Down) => tracing::warn!(trunk = name, answer = %probe, "trunk down"),
        Some(TrunkState::Up) => tracing::info!(trunk = name, answer = %probe, "trunk up"),
        Some(TrunkState::Unknown) | None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default()
    }

    #[test]
    fn pai_policy_asserts_the_citizen_behind_the_hotline_number() {
        let id = caller_id(CallerId::Pai, "13800138000", "12345", "10.0.0.1");
        assert_eq!(id.from_user, "12345");
        let headers: Vec<String> = id.headers.iter().map(|h| h.to_string()).collect();
        assert_eq!(headers, ["P-Asserted-Identity: <sip:13800138000@10.0.0.1>"]);
    }

    #[test]
    fn citizen_policy_shows_the_citizen_everywhere() {
        let id = caller_id(CallerId::Citizen, "+8613800138000", "12345", "[::1]");
        assert_eq!(id.from_user, "+8613800138000");
        assert_eq!(
            id.headers[0].to_string(),
            "P-Asserted-Identity: <sip:+8613800138000@[::1]>"
        );
    }

    #[test]
    fn hotline_policy_says_nothing_of_the_citizen() {
        let id = caller_id(CallerId::Hotline, "13800138000", "12345", "10.0.0.1");
        assert_eq!(id.from_user, "12345");
        assert!(id.headers.is_empty());
    }

    #[test]
    fn an_unknown_citizen_number_is_never_asserted() {
        for citizen in ["", "anonymous", "Anonymous", "138-0013", "12", "+", "1+23"] {
            for policy in [CallerId::Pai, CallerId::Citizen, CallerId::Hotline] {
                let id = caller_id(policy, citizen, "12345", "h");
                assert_eq!(id.from_user, "12345", "{policy:?} {citizen:?}");
                assert!(id.headers.is_empty(), "{policy:?} {citizen:?}");
            }
        }
    }

    #[test]
    fn phone_numbers() {
        for yes in ["110", "13800138000", "+8613800138000", "+123"] {
            assert!(is_phone_number(yes), "{yes}");
        }
        for no in ["", "12", "+12", "++123", "1 23", "１２３", "water", "12a"] {
            assert!(!is_phone_number(no), "{no}");
        }
    }

    #[test]
    fn a_trunk_name_is_its_uri() {
        let c = config();
        let d = destination(&c, "119").unwrap();
        assert_eq!(d.trunk.name, "119");
        assert_eq!(d.uri, "sip:119@127.0.0.1:5119");
        assert_eq!(d.address, "127.0.0.1:5119");
        let d = destination(&c, "water").unwrap();
        assert_eq!(d.address, "127.0.0.1:5200");
    }

    #[test]
    fn a_number_goes_out_on_the_callback_trunk() {
        let c = config();
        let d = destination(&c, "13800138000").unwrap();
        assert_eq!(d.trunk.name, "pstn");
        assert_eq!(d.uri, "sip:13800138000@127.0.0.1:5300");
        assert_eq!(d.address, "127.0.0.1:5300");
        let d = destination(&c, "+8613800138000").unwrap();
        assert_eq!(d.uri, "sip:+8613800138000@127.0.0.1:5300");
        // A call-back to a number that is also a trunk's name is a number.
        let d = number_destination(&c, "110").unwrap();
        assert_eq!(d.uri, "sip:110@127.0.0.1:5300");
    }

    #[test]
    fn bad_targets_say_why() {
        let c = config();
        assert_eq!(
            destination(&c, "polce"),
            Err(RouteError::UnknownTarget("polce".into()))
        );
        assert_eq!(
            destination(&c, "pstn"),
            Err(RouteError::NeedsNumber("pstn".into()))
        );
        assert_eq!(
            number_destination(&c, "anonymous"),
            Err(RouteError::NotANumber("anonymous".into()))
        );
        let mut c = config();
        c.callback.trunk = "110".into();
        assert_eq!(
            destination(&c, "13800138000"),
            Err(RouteError::NoNumberSlot("110".into()))
        );
        c.callback.trunk = "gone".into();
        let err = destination(&c, "13800138000").unwrap_err();
        assert_eq!(err, RouteError::NoCallbackTrunk("gone".into()));
        assert_eq!(
            err.to_string(),
            "the callback trunk \"gone\" is not in the config"
        );
        c.trunks[0].uri = "sip:110@;transport=udp".into();
        let err = destination(&c, "110").unwrap_err();
        assert!(err.to_string().contains("no host"), "{err}");
    }

    #[test]
    fn addresses_of_uris() {
        let cases = [
            ("sip:110@10.1.2.3:5110", Some("10.1.2.3:5110")),
            ("sip:110@10.1.2.3", Some("10.1.2.3:5060")),
            ("sips:110@trunk.example", Some("trunk.example:5061")),
            (
                "sip:110@trunk.example;transport=tcp",
                Some("trunk.example:5060"),
            ),
            ("sip:trunk.example:5070?x=y", Some("trunk.example:5070")),
            ("sip:110@[2001:db8::1]", Some("[2001:db8::1]:5060")),
            ("sip:110@[2001:db8::1]:5070", Some("[2001:db8::1]:5070")),
            ("sip:110@", None),
            ("tel:110", None),
        ];
        for (uri, want) in cases {
            assert_eq!(address_of(uri).as_deref(), want, "{uri}");
        }
    }

    #[test]
    fn a_numbers_trunk_is_checked_at_its_host() {
        let c = config();
        let pstn = c.trunks.iter().find(|t| t.name == "pstn").unwrap();
        assert_eq!(check_uri(pstn), "sip:127.0.0.1:5300");
        assert_eq!(check_uri(&c.trunks[0]), "sip:110@127.0.0.1:5110");
    }

    #[tokio::test]
    async fn a_route_carries_the_trunks_settings() {
        let mut c = config();
        let t = c.trunks.iter_mut().find(|t| t.name == "120").unwrap();
        t.username = Some("hotline".into());
        t.password = Some("secret".into());
        t.caller_id = CallerId::Hotline;
        t.ring_secs = 20;
        let r = route(&c, "120").await.unwrap();
        assert_eq!(r.trunk, "120");
        assert_eq!(r.binding.contact, "sip:120@127.0.0.1:5120");
        assert_eq!(
            r.binding.source,
            "127.0.0.1:5120".parse::<std::net::SocketAddr>().unwrap()
        );
        assert_eq!(r.caller_id, CallerId::Hotline);
        assert_eq!(r.ring, Duration::from_secs(20));
        let cred = r.credential.as_ref().unwrap();
        assert_eq!(
            (cred.username.as_str(), cred.password.as_str()),
            ("hotline", "secret")
        );
        assert!(!format!("{r:?}").contains("secret"));
        let r = route_number(&c, "13800138000").await.unwrap();
        assert_eq!(r.trunk, "pstn");
        assert!(r.credential.is_none());
        assert_eq!(r.ring, Duration::from_secs(30));
    }

    #[test]
    fn one_good_answer_is_up_two_failures_are_down() {
        let mut h = TrunkHealth::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(h.status("119").state, TrunkState::Unknown);
        assert_eq!(
            h.observe("119", Probe::Answered(200), at(0)),
            Some(TrunkState::Up)
        );
        assert_eq!(h.observe("119", Probe::Answered(200), at(1)), None);
        // One lost check is not enough.
        assert_eq!(h.observe("119", Probe::NoAnswer, at(2)), None);
        assert_eq!(h.status("119").state, TrunkState::Up);
        assert_eq!(
            h.observe("119", Probe::Answered(503), at(3)),
            Some(TrunkState::Down)
        );
        assert_eq!(h.observe("119", Probe::NoAnswer, at(4)), None);
        let s = h.status("119");
        assert_eq!(
            (s.consecutive_failures, s.checks, s.failures, s.changed_at),
            (3, 5, 3, Some(at(3)))
        );
        assert_eq!(
            h.observe("119", Probe::Answered(404), at(5)),
            Some(TrunkState::Up)
        );
        assert_eq!(h.status("119").consecutive_failures, 0);
        assert_eq!(h.status("119").changed_at, Some(at(5)));
    }

    #[test]
    fn a_trunk_never_answering_goes_from_unknown_to_down() {
        let mut h = TrunkHealth::default();
        let now = Instant::now();
        assert_eq!(h.observe("120", Probe::NoAnswer, now), None);
        assert_eq!(h.status("120").state, TrunkState::Unknown);
        assert_eq!(
            h.observe("120", Probe::NoAnswer, now),
            Some(TrunkState::Down)
        );
    }

    #[test]
    fn which_answers_count_as_alive() {
        for status in [100, 180, 200, 404, 405, 481, 499] {
            assert!(Probe::Answered(status).is_healthy(), "{status}");
        }
        for status in [500, 503, 600, 603] {
            assert!(!Probe::Answered(status).is_healthy(), "{status}");
        }
        assert!(!Probe::NoAnswer.is_healthy());
    }

    #[test]
    fn shared_states_follow_the_config() {
        let states = TrunkStates::default();
        let now = Instant::now();
        states.observe("119", Probe::Answered(200), now);
        states.observe("gone", Probe::Answered(200), now);
        assert_eq!(states.state("119"), TrunkState::Up);
        assert_eq!(states.state("119").as_str(), "up");
        assert_eq!(states.state("110").as_str(), "unknown");
        let c = config();
        let view = states.snapshot(&c);
        assert_eq!(view.len(), c.trunks.len());
        assert_eq!(view[1].name, "119");
        assert_eq!(view[1].status.checks, 1);
        states.lock().retain(|name| name != "gone");
        assert_eq!(states.state("gone"), TrunkState::Unknown);
    }
}
