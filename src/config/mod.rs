//! Configuration: `sip-config/hotline.toml`, parsed and validated.
//!
//! Every key has a default equal to the shipped file, so `hotline serve` runs on
//! a fresh machine with no file at all. [`Config::load`] parses and then
//! [`Config::validate`]s; every error names the key at fault. Reload is "parse a
//! new one, validate, swap atomically" (see [`crate::server`]); a bad new file
//! leaves the running one in place.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The shipped configuration file, embedded so the binary's defaults and the
/// documented file can never drift apart (a unit test checks they agree).
pub const SHIPPED: &str = include_str!("../../sip-config/hotline.toml");

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub sip: SipConfig,
    pub media: MediaConfig,
    pub ivr: IvrConfig,
    /// Agent queues callers are routed to.
    #[serde(rename = "queue")]
    pub queues: Vec<QueueConfig>,
    /// Outside lines: emergency services, utility hotlines, partner desks.
    #[serde(rename = "trunk")]
    pub trunks: Vec<TrunkConfig>,
    /// Queued callback: callers who leave the queue to be called back.
    pub callback: CallbackConfig,
    pub registrar: RegistrarConfig,
    /// Agent seats (softphones register as `sip:<id>@<host>`).
    #[serde(rename = "seat")]
    pub seats: Vec<SeatConfig>,
    pub http: HttpConfig,
    pub store: StoreConfig,
    pub shutdown: ShutdownConfig,
    pub shared: SharedConfig,
    pub orders: OrdersConfig,
    /// `[report]`: the monthly assessment's weights, tiers and notice rules.
    pub report: crate::report::config::ReportConfig,
    /// Real-time data push to the region platform; absent: no pusher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<crate::push::PushConfig>,
    /// Repeat and abusive callers: detection thresholds, blocks (art. 26).
    pub callers: crate::callers::config::CallersConfig,
    /// Browser seats: the desktop's socket and WebRTC media.
    pub webseat: crate::webseat::config::WebseatConfig,
}

/// `[sip]`: signalling listeners and admission policy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Address for both the UDP and the TCP listener.
    pub listen: SocketAddr,
    /// The number callers dial.
    pub hotline_number: String,
    /// Server and User-Agent header value.
    pub user_agent: String,
    /// Send 180 Ringing before answering.
    pub send_ringing: bool,
    /// Ring this long before answering (0 answers at once).
    pub answer_delay_ms: u32,
    /// Calls in progress beyond which new INVITEs are refused.
    pub max_calls: usize,
    /// Status for INVITEs over `max_calls`: 486 or 503.
    pub max_calls_status: u16,
    /// INVITEs per second allowed from one source IP (token bucket rate).
    pub invite_rate_per_ip: f64,
    /// Burst of INVITEs allowed from one source IP (token bucket size).
    pub invite_burst_per_ip: f64,
    /// Retry-After seconds on 503 responses.
    pub retry_after_secs: u32,
    /// RFC 4028 session interval granted when a caller asks for one.
    pub session_expires_secs: u32,
    /// RFC 4028 Min-SE: smaller Session-Expires are refused with 422.
    pub min_se_secs: u32,
}

/// `[media]`: RTP ports and the media workers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Address RTP sockets bind to.
    pub bind_ip: IpAddr,
    /// Address written into SDP; empty means "the local address that routes to
    /// the caller", found per call.
    pub advertise_ip: String,
    /// First RTP port (even); RTCP uses the next odd port.
    pub rtp_port_min: u16,
    /// Last RTP port.
    pub rtp_port_max: u16,
    /// Media worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Jitter buffer depth in milliseconds (a multiple of 20).
    pub jitter_buffer_ms: u32,
    /// Hang up when no RTP arrived for this long (a vanished peer); 0 disables.
    pub rtp_timeout_secs: u32,
    /// Seconds between RTCP reports.
    pub rtcp_interval_secs: u32,
    /// SCHED_FIFO priority (1-99) for the media worker threads, so packet
    /// pacing survives CPU contention; 0 keeps the default scheduler.
    pub realtime_priority: u8,
}

/// `[ivr]`: where flows live and how they run.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IvrConfig {
    /// Folder with `<flow>.yaml` files and `prompts/<language>/<name>.wav`.
    pub flows_dir: PathBuf,
    /// The flow a call to the hotline number enters.
    pub main_flow: String,
    /// The flow a caller enters after the agent hangs up.
    pub survey_flow: String,
    /// Prompt set used when a flow has not chosen one, and the fallback for
    /// prompts missing in another language.
    pub default_language: String,
    /// Re-check and reload flows when a file in `flows_dir` changes.
    pub watch: bool,
    /// Prompt looped while a caller waits in a queue.
    pub hold_prompt: String,
    /// Local time zone for time-of-day branches, as a UTC offset.
    pub utc_offset: String,
    /// Folder with the working-day calendar, one `<year>.toml` per year.
    pub calendar_dir: PathBuf,
    /// Folder for voice messages left by callers.
    pub recordings_dir: PathBuf,
    /// Numbers blocked after review (article 26); matched exactly.
    pub blocked_numbers: Vec<String>,
    /// Longest a call may stay in the IVR and on hold, in seconds.
    pub max_call_secs: u32,
}

/// One `[[queue]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How a free seat is chosen.
    #[serde(default = "default_strategy")]
    pub strategy: crate::acd::router::Strategy,
    /// Skill → minimum proficiency (1-10) a seat needs.
    #[serde(default)]
    pub skills: std::collections::BTreeMap<String, u8>,
    /// A language the seat must speak (e.g. `mn`).
    #[serde(default)]
    pub language: Option<String>,
    /// Seconds a seat may ring before the caller goes back to the queue.
    #[serde(default = "default_ring_secs")]
    pub ring_secs: u32,
    /// Wrap-up seconds after each call.
    #[serde(default = "default_wrap_up_secs")]
    pub wrap_up_secs: u32,
    /// Missed offers in a row that put a seat on break.
    #[serde(default = "default_max_misses")]
    pub max_misses: u32,
    /// After this many seconds, callers move to `overflow_queue`.
    #[serde(default)]
    pub overflow_secs: Option<u32>,
    #[serde(default)]
    pub overflow_queue: Option<String>,
    /// Longest wait in the queue, in seconds.
    #[serde(default)]
    pub max_wait_secs: Option<u32>,
    /// Seconds between position announcements.
    #[serde(default)]
    pub announce_secs: Option<u32>,
    /// Record this queue's conversations (stereo WAV, caller left, agent right).
    #[serde(default = "enabled")]
    pub record: bool,
    /// Seconds a seat that refused an offer (busy, declined) is left alone.
    #[serde(default = "default_reject_pause_secs")]
    pub reject_pause_secs: u32,
    /// Days a conversation recording is kept; 0 keeps it for ever.
    #[serde(default)]
    pub recording_retention_days: u32,
}

fn default_reject_pause_secs() -> u32 {
    10
}

fn default_strategy() -> crate::acd::router::Strategy {
    crate::acd::router::Strategy::LongestIdle
}

fn default_ring_secs() -> u32 {
    15
}

fn default_wrap_up_secs() -> u32 {
    30
}

fn default_max_misses() -> u32 {
    3
}

impl QueueConfig {
    /// The router's rules for this queue.
    pub fn rules(&self) -> crate::acd::router::QueueRules {
        let secs = |s: u32| std::time::Duration::from_secs(s.into());
        crate::acd::router::QueueRules {
            name: self.name.clone(),
            strategy: self.strategy,
            skills: self.skills.clone(),
            language: self.language.clone(),
            ring_timeout: secs(self.ring_secs),
            wrap_up: secs(self.wrap_up_secs),
            max_misses: self.max_misses,
            overflow: self
                .overflow_secs
                .zip(self.overflow_queue.clone())
                .map(|(after, to)| (secs(after), to)),
            max_wait: self.max_wait_secs.map(secs),
            announce_every: self.announce_secs.map(secs),
        }
    }
}

/// One `[[trunk]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// What flows and agents call it: `110`, `119`, `water`, ...
    pub name: String,
    /// Where calls go, e.g. `sip:110@127.0.0.1:5110`.
    pub uri: String,
    #[serde(default)]
    pub description: String,
    /// Digest user name for when the trunk challenges our INVITEs; given
    /// together with `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Whose number the far end sees (see [`CallerId`]).
    #[serde(default)]
    pub caller_id: CallerId,
    /// Seconds a transfer to this trunk may ring before it counts as no answer.
    #[serde(default = "default_trunk_ring_secs")]
    pub ring_secs: u32,
    /// Seconds between OPTIONS health checks; 0 turns them off (the trunk's
    /// state stays "unknown").
    #[serde(default = "default_options_secs")]
    pub options_secs: u32,
}

/// Who a call out through a trunk says is calling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerId {
    /// From is the hotline number; `P-Asserted-Identity` carries the
    /// citizen's, so an emergency service sees who is in need.
    #[default]
    Pai,
    /// From and `P-Asserted-Identity` are the citizen's number.
    Citizen,
    /// From is the hotline number and nothing more is said.
    Hotline,
}

fn default_trunk_ring_secs() -> u32 {
    30
}

fn default_options_secs() -> u32 {
    30
}

/// `[callback]`: a waiting caller presses 1 to keep their place and hang
/// up; when a seat is free the agent is rung first, then the caller is
/// called back through a trunk.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackConfig {
    /// Offer the callback in every queue's position announcements.
    pub offer: bool,
    /// The trunk call-backs go out on; its URI has `{number}` where the
    /// caller's number goes.
    pub trunk: String,
    /// Seconds the caller's phone may ring.
    pub ring_secs: u32,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            offer: true,
            trunk: "pstn".into(),
            ring_secs: 30,
        }
    }
}

/// `[registrar]`: how softphones register.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarConfig {
    /// Digest realm.
    pub realm: String,
    /// Digest algorithms offered, most preferred first (RFC 8760):
    /// `SHA-256`, `MD5`.
    pub algorithms: Vec<String>,
    /// Shortest registration accepted (seconds); shorter gets 423.
    pub min_expires: u32,
    /// Longest registration granted (seconds).
    pub max_expires: u32,
    /// Contacts one seat may register at once.
    pub max_contacts: usize,
    /// Wrong passwords from one address, within `lockout_window_secs`,
    /// that ban it for `ban_secs`.
    pub lockout_failures: u32,
    pub lockout_window_secs: u32,
    pub ban_secs: u32,
    /// A seat becomes available as soon as its softphone registers.
    pub available_on_register: bool,
    /// Seconds between OPTIONS pings to every registered phone, which keep
    /// NAT mappings open and find phones that are gone; 0 turns them off.
    pub keepalive_secs: u32,
    /// Pings in a row a phone may leave unanswered before its registration
    /// is dropped.
    pub keepalive_failures: u32,
}

/// One `[[seat]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeatConfig {
    /// The seat's SIP user, e.g. `1001`.
    pub id: String,
    /// Digest password.
    pub password: String,
    #[serde(default)]
    pub name: String,
    /// A disabled seat cannot register.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Skill → proficiency 1-10, matched against queues' skills.
    #[serde(default)]
    pub skills: std::collections::BTreeMap<String, u8>,
    /// Languages the agent speaks.
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
}

fn default_languages() -> Vec<String> {
    vec!["cmn".into()]
}

fn enabled() -> bool {
    true
}

impl SeatConfig {
    /// Whether the password is the documented demo one (`hotline-<id>`).
    pub fn has_demo_password(&self) -> bool {
        self.password == format!("hotline-{}", self.id)
    }
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: "hotline".into(),
            algorithms: vec!["SHA-256".into(), "MD5".into()],
            min_expires: 60,
            max_expires: 3600,
            max_contacts: 5,
            lockout_failures: 5,
            lockout_window_secs: 60,
            ban_secs: 600,
            available_on_register: true,
            keepalive_secs: 30,
            keepalive_failures: 3,
        }
    }
}

/// The demo seats that ship: 1001-1010, password `hotline-<id>`. Demo only.
pub fn demo_seats() -> Vec<SeatConfig> {
    (1001..=1010)
        .map(|id| {
            // 1001-1003 take emergencies, 1004-1006 the business desk,
            // 1009-1010 also speak Mongolian.
            let mut skills = std::collections::BTreeMap::new();
            match id {
                1001..=1003 => {
                    skills.insert("emergency".to_string(), 5);
                }
                1004..=1006 => {
                    skills.insert("enterprise".to_string(), 5);
                }
                _ => {}
            }
            let mut languages = default_languages();
            if id >= 1009 {
                languages.push("mn".into());
            }
            SeatConfig {
                id: id.to_string(),
                password: format!("hotline-{id}"),
                name: format!("Demo seat {id}"),
                enabled: true,
                skills,
                languages,
            }
        })
        .collect()
}

/// `[http]`: the API listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

/// `[store]`: where call records go.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://path` or `postgres://...`; the `DATABASE_URL` environment
    /// variable overrides it.
    pub database_url: String,
    /// Most records written in one transaction.
    pub batch_size: usize,
    /// Records held in memory while the database is unreachable.
    pub max_pending: usize,
}

/// `[shared]`: seats and queues shared between hotline nodes on Redis.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedConfig {
    /// `redis://host:port/db`; empty keeps the ACD state in this process.
    /// The `REDIS_URL` environment variable overrides it.
    pub redis_url: String,
    /// Prefix of every Redis key and channel, so several clusters (or
    /// tests) can use one Redis.
    pub key_prefix: String,
}

/// `[shutdown]`: draining on SIGTERM.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Seconds calls in progress may run on after SIGTERM before they get BYE.
    pub drain_grace_secs: u32,
}

/// `[orders]`: work orders, their deadlines and the deadline sweep. The
/// working-day calendar is `ivr.calendar_dir`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrdersConfig {
    /// Local time zone that working days and deadlines are counted in.
    pub utc_offset: String,
    /// Urge (催办) when these percentages of a limit have gone by; 1-99,
    /// ascending. Supervision (督办) follows when the limit passes.
    pub warn_percents: Vec<u8>,
    /// Seconds between deadline sweeps; 0 disables them.
    pub sweep_secs: u32,
    /// Matter categories (the catalogue) and their dispatch defaults.
    pub catalogue: PathBuf,
    /// The handling units and their hierarchy.
    pub units: PathBuf,
    /// Folder for orders accepted while the database is unreachable.
    pub spool_dir: PathBuf,
    /// Time limits of every step (`[orders.limits]`).
    pub limits: crate::orders::deadline::Limits,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        OrdersConfig {
            utc_offset: "+08:00".into(),
            warn_percents: vec![50, 80],
            sweep_secs: 60,
            catalogue: "sip-config/catalogue.toml".into(),
            units: "sip-config/units.toml".into(),
            spool_dir: "data/spool".into(),
            limits: crate::orders::deadline::Limits::default(),
        }
    }
}

impl OrdersConfig {
    /// The parsed `utc_offset` (checked by [`Config::validate`]; +08:00 if
    /// the config was never validated).
    pub fn offset(&self) -> time::UtcOffset {
        crate::ivr::clock::parse_offset(&self.utc_offset).unwrap_or(time::macros::offset!(+08:00))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sip: SipConfig::default(),
            media: MediaConfig::default(),
            ivr: IvrConfig::default(),
            queues: default_queues(),
            trunks: default_trunks(),
            callback: CallbackConfig::default(),
            registrar: RegistrarConfig::default(),
            seats: demo_seats(),
            http: HttpConfig::default(),
            store: StoreConfig::default(),
            shutdown: ShutdownConfig::default(),
            shared: SharedConfig::default(),
            orders: OrdersConfig::default(),
            report: crate::report::config::ReportConfig::default(),
            push: None,
            callers: Default::default(),
            webseat: Default::default(),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "0.0.0.0:5060".parse().expect("literal address"),
            hotline_number: "12345".into(),
            user_agent: concat!("hotline/", env!("CARGO_PKG_VERSION")).into(),
            send_ringing: true,
            answer_delay_ms: 0,
            max_calls: 2000,
            max_calls_status: 503,
            invite_rate_per_ip: 20.0,
            invite_burst_per_ip: 20.0,
            retry_after_secs: 5,
            session_expires_secs: 1800,
            min_se_secs: 90,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind_ip: "0.0.0.0".parse().expect("literal address"),
            advertise_ip: String::new(),
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            workers: 0,
            jitter_buffer_ms: 60,
            rtp_timeout_secs: 30,
            rtcp_interval_secs: 5,
            realtime_priority: 10,
        }
    }
}

impl Default for IvrConfig {
    fn default() -> Self {
        IvrConfig {
            flows_dir: "ivr-flows".into(),
            main_flow: "main".into(),
            survey_flow: "survey".into(),
            default_language: "cmn".into(),
            watch: true,
            hold_prompt: "hold_music".into(),
            utc_offset: "+08:00".into(),
            calendar_dir: "sip-config/calendar".into(),
            recordings_dir: "data/recordings".into(),
            blocked_numbers: vec![],
            max_call_secs: 3600,
        }
    }
}

fn queue(name: &str, description: &str) -> QueueConfig {
    QueueConfig {
        name: name.into(),
        description: description.into(),
        strategy: default_strategy(),
        skills: Default::default(),
        language: None,
        ring_secs: default_ring_secs(),
        wrap_up_secs: default_wrap_up_secs(),
        max_misses: default_max_misses(),
        overflow_secs: None,
        overflow_queue: None,
        max_wait_secs: None,
        announce_secs: Some(30),
        record: true,
        reject_pause_secs: default_reject_pause_secs(),
        recording_retention_days: 0,
    }
}

fn trunk(name: &str, port: u16, description: &str) -> TrunkConfig {
    TrunkConfig {
        name: name.into(),
        uri: format!("sip:{name}@127.0.0.1:{port}"),
        description: description.into(),
        username: None,
        password: None,
        caller_id: CallerId::default(),
        ring_secs: default_trunk_ring_secs(),
        options_secs: default_options_secs(),
    }
}

/// The queues that ship.
pub fn default_queues() -> Vec<QueueConfig> {
    use crate::acd::router::Strategy;
    let skill = |name: &str| std::collections::BTreeMap::from([(name.to_string(), 1u8)]);
    vec![
        QueueConfig {
            strategy: Strategy::SkillsBased,
            skills: skill("emergency"),
            ring_secs: 10,
            wrap_up_secs: 60,
            announce_secs: Some(20),
            ..queue(
                "emergency",
                "Water, power, gas, heating and disaster appeals (article 10)",
            )
        },
        QueueConfig {
            overflow_secs: Some(120),
            overflow_queue: Some("operator".into()),
            max_wait_secs: Some(600),
            ..queue(
                "general",
                "Consultation, help, complaints, reports and suggestions",
            )
        },
        QueueConfig {
            strategy: Strategy::SkillsBased,
            skills: skill("enterprise"),
            overflow_secs: Some(90),
            overflow_queue: Some("general".into()),
            ..queue("enterprise", "Business services desk (涉企专席)")
        },
        QueueConfig {
            language: Some("mn".into()),
            overflow_secs: Some(60),
            overflow_queue: Some("general".into()),
            ..queue("mongolian", "Mongolian-language desk")
        },
        QueueConfig {
            max_wait_secs: Some(900),
            ..queue(
                "operator",
                "Any agent: callers who pressed 0 or pressed nothing",
            )
        },
    ]
}

/// The trunks that ship; they point at loopback ports for testing.
pub fn default_trunks() -> Vec<TrunkConfig> {
    vec![
        trunk("110", 5110, "Police"),
        trunk("119", 5119, "Fire"),
        trunk("120", 5120, "Ambulance"),
        trunk("122", 5122, "Traffic police"),
        trunk("water", 5200, "Water utility hotline"),
        trunk("power", 5201, "Power utility hotline (95598)"),
        trunk("gas", 5202, "Gas utility hotline"),
        trunk("heating", 5203, "Heating utility hotline"),
        TrunkConfig {
            uri: "sip:{number}@127.0.0.1:5300".into(),
            ..trunk("pstn", 5300, "Outside lines for call-backs to citizens")
        },
    ]
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".parse().expect("literal address"),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            database_url: "sqlite://data/hotline.db".into(),
            batch_size: 64,
            max_pending: 100_000,
        }
    }
}

impl Default for SharedConfig {
    fn default() -> Self {
        SharedConfig {
            redis_url: String::new(),
            key_prefix: "hotline:".into(),
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_grace_secs: 30,
        }
    }
}

impl Config {
    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.sip;
        if s.hotline_number.is_empty() || !s.hotline_number.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(
                "sip.hotline_number",
                "must be digits, e.g. \"12345\"",
            ));
        }
        if s.answer_delay_ms > 60_000 {
            return Err(invalid("sip.answer_delay_ms", "must be at most 60000"));
        }
        if s.max_calls == 0 {
            return Err(invalid("sip.max_calls", "must be at least 1"));
        }
        if !matches!(s.max_calls_status, 486 | 503) {
            return Err(invalid("sip.max_calls_status", "must be 486 or 503"));
        }
        if !(s.invite_rate_per_ip > 0.0 && s.invite_rate_per_ip.is_finite()) {
            return Err(invalid(
                "sip.invite_rate_per_ip",
                "must be a positive number",
            ));
        }
        if !(s.invite_burst_per_ip >= 1.0 && s.invite_burst_per_ip.is_finite()) {
            return Err(invalid("sip.invite_burst_per_ip", "must be at least 1"));
        }
        if s.min_se_secs < 90 {
            return Err(invalid("sip.min_se_secs", "RFC 4028 requires at least 90"));
        }
        if s.session_expires_secs < s.min_se_secs {
            return Err(invalid(
                "sip.session_expires_secs",
                "must not be below sip.min_se_secs",
            ));
        }
        let m = &self.media;
        if !m.advertise_ip.is_empty() && m.advertise_ip.parse::<IpAddr>().is_err() {
            return Err(invalid(
                "media.advertise_ip",
                format!(
                    "{:?} is not an IP address (leave empty for automatic)",
                    m.advertise_ip
                ),
            ));
        }
        if m.rtp_port_min < 1024 || !m.rtp_port_min.is_multiple_of(2) {
            return Err(invalid(
                "media.rtp_port_min",
                "must be an even port >= 1024",
            ));
        }
        if m.rtp_port_max <= m.rtp_port_min {
            return Err(invalid(
                "media.rtp_port_max",
                "must be above media.rtp_port_min",
            ));
        }
        if m.jitter_buffer_ms == 0
            || !m.jitter_buffer_ms.is_multiple_of(20)
            || m.jitter_buffer_ms > 400
        {
            return Err(invalid(
                "media.jitter_buffer_ms",
                "must be a multiple of 20 between 20 and 400",
            ));
        }
        if m.rtcp_interval_secs == 0 {
            return Err(invalid("media.rtcp_interval_secs", "must be at least 1"));
        }
        if m.realtime_priority > 99 {
            return Err(invalid(
                "media.realtime_priority",
                "must be 0 (default scheduler) or a SCHED_FIFO priority 1 to 99",
            ));
        }
        if m.workers > 256 {
            return Err(invalid("media.workers", "must be 0 (one per core) to 256"));
        }
        let ivr = &self.ivr;
        if ivr.main_flow.is_empty() {
            return Err(invalid("ivr.main_flow", "must name a flow"));
        }
        if ivr.default_language.is_empty() {
            return Err(invalid(
                "ivr.default_language",
                "must name a prompt set, e.g. \"cmn\"",
            ));
        }
        if crate::ivr::clock::parse_offset(&ivr.utc_offset).is_none() {
            return Err(invalid("ivr.utc_offset", "must look like \"+08:00\""));
        }
        if ivr.max_call_secs == 0 {
            return Err(invalid("ivr.max_call_secs", "must be at least 1"));
        }
        let mut names = std::collections::HashSet::new();
        for q in &self.queues {
            if q.name.is_empty() || !names.insert(q.name.as_str()) {
                return Err(invalid(
                    "queue.name",
                    format!("{:?} is empty or named twice", q.name),
                ));
            }
        }
        for q in &self.queues {
            if q.overflow_secs.is_some() != q.overflow_queue.is_some() {
                return Err(invalid(
                    "queue.overflow_queue",
                    format!(
                        "queue {}: give overflow_secs and overflow_queue together",
                        q.name
                    ),
                ));
            }
            if let Some(to) = &q.overflow_queue
                && (!names.contains(to.as_str()) || *to == q.name)
            {
                return Err(invalid(
                    "queue.overflow_queue",
                    format!("queue {}: {to:?} is not another queue", q.name),
                ));
            }
            if q.ring_secs == 0 {
                return Err(invalid(
                    "queue.ring_secs",
                    format!("queue {}: must be at least 1", q.name),
                ));
            }
            if q.skills.values().any(|l| !(1..=10).contains(l)) {
                return Err(invalid(
                    "queue.skills",
                    format!("queue {}: levels are 1 to 10", q.name),
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for t in &self.trunks {
            if t.name.is_empty() || !names.insert(t.name.as_str()) {
                return Err(invalid(
                    "trunk.name",
                    format!("{:?} is empty or named twice", t.name),
                ));
            }
            if !(t.uri.starts_with("sip:") || t.uri.starts_with("sips:")) {
                return Err(invalid(
                    "trunk.uri",
                    format!("{:?} is not a SIP URI", t.uri),
                ));
            }
            // Half a credential would only show up as a refused call.
            match (&t.username, &t.password) {
                (Some(_), None) => {
                    return Err(invalid(
                        "trunk.password",
                        format!("trunk {}: username is set, password is missing", t.name),
                    ));
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        "trunk.username",
                        format!("trunk {}: password is set, username is missing", t.name),
                    ));
                }
                (Some(user), Some(_)) if user.is_empty() => {
                    return Err(invalid(
                        "trunk.username",
                        format!("trunk {}: must not be empty", t.name),
                    ));
                }
                _ => {}
            }
            if t.ring_secs == 0 {
                return Err(invalid(
                    "trunk.ring_secs",
                    format!("trunk {}: must be at least 1", t.name),
                ));
            }
        }
        let cb = &self.callback;
        if cb.offer {
            match self.trunks.iter().find(|t| t.name == cb.trunk) {
                None => {
                    return Err(invalid(
                        "callback.trunk",
                        format!("{:?} is not a [[trunk]] name", cb.trunk),
                    ));
                }
                Some(t) if !t.uri.contains("{number}") => {
                    return Err(invalid(
                        "callback.trunk",
                        format!("trunk {:?} has no {{number}} in its uri", t.name),
                    ));
                }
                Some(_) => {}
            }
            if cb.ring_secs == 0 {
                return Err(invalid("callback.ring_secs", "must be at least 1"));
            }
        }
        let r = &self.registrar;
        if r.realm.is_empty() || r.realm.contains('"') {
            return Err(invalid(
                "registrar.realm",
                "must be a non-empty name without quotes",
            ));
        }
        if r.algorithms.is_empty() || r.algorithms.iter().any(|a| a != "SHA-256" && a != "MD5") {
            return Err(invalid(
                "registrar.algorithms",
                "must list \"SHA-256\" and/or \"MD5\"",
            ));
        }
        if r.min_expires == 0 || r.max_expires < r.min_expires {
            return Err(invalid(
                "registrar.max_expires",
                "must be at least registrar.min_expires, which must be at least 1",
            ));
        }
        if r.max_contacts == 0 {
            return Err(invalid("registrar.max_contacts", "must be at least 1"));
        }
        if r.keepalive_secs > 0 && r.keepalive_failures == 0 {
            return Err(invalid(
                "registrar.keepalive_failures",
                "must be at least 1",
            ));
        }
        if r.lockout_failures == 0 {
            return Err(invalid("registrar.lockout_failures", "must be at least 1"));
        }
        let mut names = std::collections::HashSet::new();
        for seat in &self.seats {
            if seat.id.is_empty() || !seat.id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "seat.id",
                    format!("{:?} must be letters and digits", seat.id),
                ));
            }
            if !names.insert(seat.id.as_str()) {
                return Err(invalid("seat.id", format!("{:?} is listed twice", seat.id)));
            }
            if seat.password.len() < 8 {
                return Err(invalid(
                    "seat.password",
                    format!("seat {} needs at least 8 characters", seat.id),
                ));
            }
        }
        let url = &self.store.database_url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(invalid(
                "store.database_url",
                "must start with sqlite: or postgres:",
            ));
        }
        if self.store.batch_size == 0 {
            return Err(invalid("store.batch_size", "must be at least 1"));
        }
        if self.store.max_pending < self.store.batch_size {
            return Err(invalid(
                "store.max_pending",
                "must be at least store.batch_size",
            ));
        }
        let shared = &self.shared;
        if !shared.redis_url.is_empty()
            && !["redis://", "unix://", "redis+unix://"]
                .iter()
                .any(|scheme| shared.redis_url.starts_with(scheme))
        {
            return Err(invalid(
                "shared.redis_url",
                "must be empty or start with redis:// or unix:// (no TLS)",
            ));
        }
        if shared.key_prefix.is_empty() || shared.key_prefix.chars().any(char::is_whitespace) {
            return Err(invalid(
                "shared.key_prefix",
                "must be non-empty, without spaces, e.g. \"hotline:\"",
            ));
        }
        let o = &self.orders;
        if crate::ivr::clock::parse_offset(&o.utc_offset).is_none() {
            return Err(invalid("orders.utc_offset", "must look like \"+08:00\""));
        }
        if o.warn_percents.iter().any(|p| !(1..=99).contains(p))
            || o.warn_percents.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(invalid(
                "orders.warn_percents",
                format!(
                    "{:?} must be percentages from 1 to 99 in ascending order, e.g. [50, 80]",
                    o.warn_percents
                ),
            ));
        }
        for (key, path) in [
            ("orders.catalogue", &o.catalogue),
            ("orders.units", &o.units),
            ("orders.spool_dir", &o.spool_dir),
        ] {
            if path.as_os_str().is_empty() {
                return Err(invalid(key, "must name a path"));
            }
        }
        o.limits
            .validate()
            .map_err(|message| invalid("orders.limits", message))?;
        self.report.validate()?;
        if let Some(push) = &self.push {
            push.validate()
                .map_err(|(key, message)| invalid(key, message))?;
        }
        self.callers.validate()?;
        self.webseat.validate()?;
        Ok(())
    }

    /// Ports usable for RTP (even numbers only; RTCP takes the odd one above).
    pub fn rtp_ports(&self) -> std::ops::RangeInclusive<u16> {
        self.media.rtp_port_min..=self.media.rtp_port_max
    }

    /// How long a draining server lets calls run on.
    pub fn drain_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown.drain_grace_secs.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_equals_defaults() {
        let parsed = Config::parse(SHIPPED, Path::new("hotline.toml")).unwrap();
        assert_eq!(parsed, Config::default());
    }

    /// A `[[trunk]]` list of one, with `extra` lines; call-backs off so no
    /// `pstn` trunk is needed.
    fn one_trunk(extra: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[callback]\noffer = false\n[[trunk]]\nname = \"110\"\nuri = \"sip:110@127.0.0.1:5110\"\n{extra}"
        );
        Config::parse(&text, Path::new("x"))
    }

    #[test]
    fn trunk_credentials_come_in_pairs() {
        let err = one_trunk("username = \"hotline\"").unwrap_err().to_string();
        assert!(err.starts_with("trunk.password: trunk 110:"), "{err}");
        let err = one_trunk("password = \"secret\"").unwrap_err().to_string();
        assert!(err.starts_with("trunk.username: trunk 110:"), "{err}");
        let err = one_trunk("username = \"\"\npassword = \"secret\"")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("trunk.username"), "{err}");
        let c = one_trunk("username = \"hotline\"\npassword = \"secret\"").unwrap();
        assert_eq!(c.trunks[0].username.as_deref(), Some("hotline"));
    }

    #[test]
    fn trunk_fields_default_and_parse() {
        let c = one_trunk("").unwrap();
        let t = &c.trunks[0];
        assert_eq!(t.caller_id, CallerId::Pai);
        assert_eq!((t.ring_secs, t.options_secs), (30, 30));
        assert_eq!((&t.username, &t.password), (&None, &None));
        let c = one_trunk("caller_id = \"citizen\"\nring_secs = 20\noptions_secs = 0").unwrap();
        let t = &c.trunks[0];
        assert_eq!(t.caller_id, CallerId::Citizen);
        assert_eq!((t.ring_secs, t.options_secs), (20, 0));
        let err = one_trunk("caller_id = \"nobody\"").unwrap_err().to_string();
        assert!(err.contains("caller_id"), "{err}");
    }

    #[test]
    fn queues_become_router_rules() {
        let c = Config::default();
        let general = c
            .queues
            .iter()
            .find(|q| q.name == "general")
            .unwrap()
            .rules();
        assert_eq!(
            general.overflow,
            Some((Duration::from_secs(120), "operator".to_string()))
        );
        let mn = c
            .queues
            .iter()
            .find(|q| q.name == "mongolian")
            .unwrap()
            .rules();
        assert_eq!(mn.language.as_deref(), Some("mn"));
        assert!(
            c.seats
                .iter()
                .any(|s| s.languages.contains(&"mn".to_string()))
        );
    }

    #[test]
    fn orders_section_parses_and_names_bad_limits() {
        use crate::orders::deadline::Span;
        use crate::orders::model::{AppealType, ClockKind, Urgency};
        let text = "[orders]\nwarn_percents = []\nsweep_secs = 0\n\
                    [orders.limits]\nsign = \"2d\"\n\
                    [orders.limits.urgent]\nsign = \"4h\"\n\
                    handle = { help = \"3d\" }\n";
        let c = Config::parse(text, Path::new("x")).unwrap();
        assert!(c.orders.warn_percents.is_empty());
        assert_eq!(c.orders.sweep_secs, 0);
        assert_eq!(c.orders.offset(), time::macros::offset!(+08:00));
        let l = &c.orders.limits;
        let span = |kind, urgency| l.span(kind, AppealType::Help, urgency, false);
        assert_eq!(span(ClockKind::Sign, Urgency::Normal), Span::WorkingDays(2));
        assert_eq!(span(ClockKind::Sign, Urgency::Urgent), Span::Hours(4));
        assert_eq!(
            span(ClockKind::Handle, Urgency::Urgent),
            Span::WorkingDays(3)
        );
        assert_eq!(span(ClockKind::Sign, Urgency::Emergency), Span::Hours(1));
        // A bad span names the key, the line and the value.
        let err = Config::parse("[orders.limits]\nsign = \"1 day\"\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml"), "{err}");
        assert!(err.contains("sign") && err.contains("\"1 day\""), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = Config::parse(
            "[orders.limits.handle]\ncomplaint = \"400d\"",
            Path::new("x"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("handle.complaint"), "{err}");
    }

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(
            Config::parse("", Path::new("x")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[sip]\nlisten_typo = 1\n", Path::new("x.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("listen_typo"), "{text}");
        assert!(text.starts_with("x.toml"), "{text}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let err = Config::parse("[sip]\nmax_calls = \"many\"\n", Path::new("x.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("max_calls"), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn bad_address_is_rejected() {
        let err = Config::parse("[http]\nlisten = \"nowhere\"\n", Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let cases = [
            ("[sip]\nhotline_number = \"12a\"", "sip.hotline_number"),
            ("[sip]\nmax_calls = 0", "sip.max_calls"),
            ("[sip]\nmax_calls_status = 404", "sip.max_calls_status"),
            ("[sip]\nmin_se_secs = 30", "sip.min_se_secs"),
            ("[media]\nrtp_port_min = 20001", "media.rtp_port_min"),
            ("[media]\nrtp_port_max = 100", "media.rtp_port_max"),
            ("[media]\njitter_buffer_ms = 30", "media.jitter_buffer_ms"),
            (
                "[media]\nrealtime_priority = 120",
                "media.realtime_priority",
            ),
            ("[media]\nadvertise_ip = \"host\"", "media.advertise_ip"),
            (
                "[store]\ndatabase_url = \"mysql://x\"",
                "store.database_url",
            ),
            ("[ivr]\nmax_call_secs = 0", "ivr.max_call_secs"),
            (
                "[[seat]]\nid = \"10 01\"\npassword = \"longenough\"",
                "seat.id",
            ),
            (
                "[[seat]]\nid = \"1001\"\npassword = \"short\"",
                "seat.password",
            ),
            ("[registrar]\nmax_expires = 10", "registrar.max_expires"),
            (
                "[[queue]]\nname = \"a\"\noverflow_secs = 5\noverflow_queue = \"nope\"",
                "queue.overflow_queue",
            ),
            (
                "[[queue]]\nname = \"a\"\noverflow_secs = 5",
                "queue.overflow_queue",
            ),
            (
                "[[queue]]\nname = \"a\"\nskills = { x = 11 }",
                "queue.skills",
            ),
            (
                "[callback]\noffer = false\n[[trunk]]\nname = \"110\"\nuri = \"sip:110@h\"\nring_secs = 0",
                "trunk.ring_secs",
            ),
            ("[orders]\nutc_offset = \"CST\"", "orders.utc_offset"),
            ("[orders]\nwarn_percents = [80, 50]", "orders.warn_percents"),
            ("[orders]\nwarn_percents = [50, 50]", "orders.warn_percents"),
            ("[orders]\nwarn_percents = [0, 50]", "orders.warn_percents"),
            ("[orders]\nwarn_percents = [100]", "orders.warn_percents"),
            ("[orders]\ncatalogue = \"\"", "orders.catalogue"),
            ("[orders]\nspool_dir = \"\"", "orders.spool_dir"),
            (
                "[orders.limits.handle]\ncomplaint = \"400d\"",
                "orders.limits",
            ),
            (
                "[orders.limits.emergency]\ncontact = \"9999h\"",
                "orders.limits",
            ),
        ];
        for (text, key) in cases {
            let err = Config::parse(text, Path::new("x")).unwrap_err();
            assert!(err.to_string().starts_with(key), "{text}: {err}");
        }
    }
}
