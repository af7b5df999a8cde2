//! The running service: wires config, store, media, SIP and HTTP together,
//! and owns the around-the-clock duties: reload without dropping calls, and
//! drain on SIGTERM.
//!
//! [`Shared`] is what every call actor and API handler can see. Each call takes
//! a snapshot of the config and of the flows (with their prompts) when it
//! starts, so a reload changes new calls only. Next to read: [`crate::sip::listener`], then [`crate::call::actor`].

use crate::calendar::{Calendar, CalendarError};
use crate::config::{Config, ConfigError};
use crate::ivr::load::{CheckContext, Diagnostic, FlowSet, load_dir};
use crate::ivr::stats::FlowStats;
use crate::media::engine::{EngineConfig, MediaEngine};
use crate::report::metrics::Metrics;
use crate::sip::admission::{Admission, Limits};
use crate::sip::registrar::{Account, Policy, Registrar};
use crate::store::Store;
use crate::store::seats::{self, Merged, SeatCache, SeatError, StoredSeat};
use crate::store::writer::{self, RecordSender, WriterCounters, WriterLimits};
use arc_swap::ArcSwap;
use rsipstack::dialog::dialog_layer::DialogLayer;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Command-line values that win over the file, also after a reload.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub sip_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub rtp_ports: Option<(u16, u16)>,
    pub database_url: Option<String>,
    pub advertise_ip: Option<String>,
}

impl Overrides {
    fn apply(&self, c: &mut Config) {
        if let Some(a) = self.sip_listen {
            c.sip.listen = a;
        }
        if let Some(a) = self.http_listen {
            c.http.listen = a;
        }
        if let Some((min, max)) = self.rtp_ports {
            c.media.rtp_port_min = min;
            c.media.rtp_port_max = max;
        }
        if let Some(url) = &self.database_url {
            c.store.database_url = url.clone();
        }
        if let Some(ip) = &self.advertise_ip {
            c.media.advertise_ip = ip.clone();
        }
    }
}

/// Loads the config the way `serve` does: file (or embedded defaults), then
/// `DATABASE_URL`, then the command line; validated.
pub fn load_config(
    path: Option<&std::path::Path>,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let mut config = match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.is_empty()
    {
        config.store.database_url = url;
    }
    if let Ok(url) = std::env::var("REDIS_URL")
        && !url.is_empty()
    {
        config.shared.redis_url = url;
    }
    overrides.apply(&mut config);
    config.validate()?;
    Ok(config)
}

/// How long a token the database confirmed stays trusted while the
/// database is unreachable.
const TOKEN_TRUST_MS: i64 = 30 * 60 * 1000;

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{} problem(s) in the flows; the running flows stay:\n{}", .0.len(), join(.0))]
    Flows(Vec<Diagnostic>),
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error(transparent)]
    Orders(#[from] crate::orders::desk::RulesError),
}

fn join(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The state of the flows as the API shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FlowsStatus {
    /// Unix ms of the last successful load.
    pub loaded_at: i64,
    /// Problems of the last refused load (empty when it was accepted).
    pub last_errors: Vec<String>,
    pub last_error_at: Option<i64>,
}

/// What a reload changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadOutcome {
    /// Keys whose new value takes effect only after a restart.
    pub restart_required: Vec<&'static str>,
}

/// State shared by the SIP listener, call actors and API.
pub struct Shared {
    pub config: ArcSwap<Config>,
    /// The flows and prompts new calls get.
    pub flows: ArcSwap<FlowSet>,
    pub flows_status: Mutex<FlowsStatus>,
    pub flow_stats: Arc<FlowStats>,
    pub calendar: ArcSwap<Calendar>,
    /// The order desk's calendar, limits, catalogue and units.
    pub order_rules: ArcSwap<crate::orders::desk::Rules>,
    /// Orders filed from calls while the database is away.
    pub order_spool: crate::orders::spool::Spool,
    /// API tokens the database vouched for lately (used during outages).
    pub tokens: crate::auth::cache::TokenCache,
    /// Committed order changes, for live listeners.
    pub order_events: crate::orders::events::OrderEvents,
    /// The knowledge base's search index (published entries).
    pub kb: Arc<crate::kb::search::KbIndex>,
    config_path: Option<PathBuf>,
    overrides: Overrides,
    pub media: MediaEngine,
    pub records: RecordSender,
    pub metrics: Arc<Metrics>,
    pub admission: Mutex<Admission>,
    pub registrar: Mutex<Registrar>,
    /// Queues and seats of this node.
    pub acd: crate::acd::service::Acd,
    /// Calls in progress, for requests from outside their actors.
    pub directory: crate::call::control::CallDirectory,
    pub dialogs: Arc<DialogLayer>,
    /// The SIP listener's address (Contact of calls we place).
    pub sip_addr: std::net::SocketAddr,
    /// Cancelled when calls still up must be hung up now (end of drain).
    pub hangup_all: CancellationToken,
    active: AtomicUsize,
    call_ended: Notify,
    pub store: Store,
    /// The store's seats as last read (merged with the config's).
    pub seat_cache: SeatCache,
    /// Trunk health from the OPTIONS checks.
    pub trunks: Arc<crate::sip::trunks::TrunkStates>,
    /// The outbox pusher's figures (no sinks when `[push]` is absent).
    pub push: Arc<crate::push::PushStats>,
    /// Numbers blocked after review, as the call path reads them.
    pub blocks: Arc<crate::callers::blocks::BlockList>,
    /// The wallboard's feed, shared by every screen.
    pub wallboard: crate::wallboard::Hub,
    /// Browser seats' gateway; `None` when `[webseat]` is off.
    pub webseat: Option<Arc<crate::webseat::Gateway>>,
    reload_lock: Mutex<()>,
}

/// Where to ring a seat: its registration on this node, else (shared state)
/// its registration on another live node.
pub fn seat_binding(shared: &Shared, seat: &str) -> Option<crate::sip::registrar::Binding> {
    local_binding(shared, seat).or_else(|| shared.acd.shared_binding(seat))
}

/// A seat's newest registration on this node.
fn local_binding(shared: &Shared, seat: &str) -> Option<crate::sip::registrar::Binding> {
    shared
        .registrar
        .lock()
        .expect("registrar lock")
        .lookup(seat, std::time::Instant::now())
        .first()
        .map(|b| (*b).clone())
}

/// The registrar's policy from a config.
pub fn registrar_policy(c: &Config) -> Policy {
    let r = &c.registrar;
    Policy {
        realm: r.realm.clone(),
        algorithms: r.algorithms.clone(),
        min_expires: r.min_expires,
        max_expires: r.max_expires,
        default_expires: r.max_expires,
        max_contacts: r.max_contacts,
        nonce_ttl: Duration::from_secs(300),
        lockout_failures: r.lockout_failures,
        lockout_window: Duration::from_secs(r.lockout_window_secs.into()),
        ban: Duration::from_secs(r.ban_secs.into()),
    }
}

/// The seats' credentials from a config.
pub fn accounts(c: &Config) -> Vec<Account> {
    c.seats
        .iter()
        .map(|s| Account {
            id: s.id.clone(),
            password: s.password.clone(),
            enabled: s.enabled,
        })
        .collect()
}

/// The config with the store's seats added; a config seat wins a clash.
fn with_store_seats(c: &Config, stored: &[StoredSeat]) -> Config {
    let merged = seats::merge(&c.seats, stored);
    for id in &merged.shadowed {
        tracing::warn!(seat = %id, "seat is both in [[seat]] and in the store; the config file's wins");
    }
    merged.apply_to(c)
}

/// Demo passwords are for loopback only: say so loudly otherwise.
fn warn_demo_passwords(c: &Config) {
    let demo: Vec<&str> = c
        .seats
        .iter()
        .filter(|s| s.enabled && s.has_demo_password())
        .map(|s| s.id.as_str())
        .collect();
    if !demo.is_empty() && !c.sip.listen.ip().is_loopback() {
        tracing::warn!(
            seats = ?demo,
            listen = %c.sip.listen,
            "demo seat passwords (hotline-<id>) are active on a non-loopback SIP listener; replace them in [[seat]]"
        );
    }
}

/// Limits for the admission policy from a config.
pub fn admission_limits(c: &Config) -> Limits {
    Limits {
        rate_per_ip: c.sip.invite_rate_per_ip,
        burst_per_ip: c.sip.invite_burst_per_ip,
        max_calls: c.sip.max_calls,
        max_calls_status: c.sip.max_calls_status,
        retry_after_secs: c.sip.retry_after_secs,
    }
}

impl Shared {
    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// A call was admitted; pair with [`Shared::call_finished`].
    pub fn call_started(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.metrics.active_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A call is over.
    pub fn call_finished(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        self.metrics.active_calls.fetch_sub(1, Ordering::Relaxed);
        self.call_ended.notify_waiters();
    }

    /// Waits until no call is up or `limit` passes; true when none is up.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.call_ended.notified();
            if self.active_calls() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.active_calls() == 0;
            }
        }
    }

    /// Re-checks and reloads the flows folder; on any problem the running
    /// flows stay and the problems are kept for `GET /api/v1/flows`.
    pub fn reload_flows(&self) -> Result<(), ReloadError> {
        let _one_at_a_time = self.reload_lock.lock().expect("reload lock");
        let config = self.config.load_full();
        self.try_reload_flows(&config)
    }

    fn try_reload_flows(&self, config: &Config) -> Result<(), ReloadError> {
        match load_dir(&config.ivr.flows_dir, &CheckContext::from_config(config)) {
            Ok(set) => {
                self.flows.store(Arc::new(set));
                let mut status = self.flows_status.lock().expect("flows status");
                status.loaded_at = crate::call::record::now_ms();
                status.last_errors.clear();
                tracing::info!(dir = %config.ivr.flows_dir.display(), "flows reloaded");
                Ok(())
            }
            Err(problems) => {
                let mut status = self.flows_status.lock().expect("flows status");
                status.last_errors = problems.iter().map(|p| p.to_string()).collect();
                status.last_error_at = Some(crate::call::record::now_ms());
                for p in &problems {
                    tracing::error!(problem = %p, "flow refused; the running flows stay");
                }
                Err(ReloadError::Flows(problems))
            }
        }
    }

    /// Re-reads the config file, the flows and the calendar; on any error the
    /// running ones stay.
    pub fn reload(&self) -> Result<ReloadOutcome, ReloadError> {
        let _one_at_a_time = self.reload_lock.lock().expect("reload lock");
        let result = self.try_reload();
        match &result {
            Ok(outcome) => {
                self.metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(restart_required = ?outcome.restart_required, "configuration reloaded");
            }
            Err(e) => {
                self.metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "configuration reload refused; the running configuration stays");
            }
        }
        result
    }

    fn try_reload(&self) -> Result<ReloadOutcome, ReloadError> {
        let new = load_config(self.config_path.as_deref(), &self.overrides)?;
        // Everything is checked before anything is swapped.
        let flows =
            load_dir(&new.ivr.flows_dir, &CheckContext::from_config(&new)).map_err(|problems| {
                let mut status = self.flows_status.lock().expect("flows status");
                status.last_errors = problems.iter().map(|p| p.to_string()).collect();
                status.last_error_at = Some(crate::call::record::now_ms());
                ReloadError::Flows(problems)
            })?;
        let calendar = Calendar::load_dir(&new.ivr.calendar_dir)?;
        let order_rules = crate::orders::desk::Rules::load(&new, calendar.clone())?;
        let old = self.config.load();
        let mut restart_required = Vec::new();
        let fixed: [(&'static str, bool); 7] = [
            ("sip.listen", old.sip.listen != new.sip.listen),
            ("http.listen", old.http.listen != new.http.listen),
            ("media.bind_ip", old.media.bind_ip != new.media.bind_ip),
            (
                "media.rtp_port_min/max",
                (old.media.rtp_port_min, old.media.rtp_port_max)
                    != (new.media.rtp_port_min, new.media.rtp_port_max),
            ),
            ("media.workers", old.media.workers != new.media.workers),
            (
                "store.database_url",
                old.store.database_url != new.store.database_url,
            ),
            ("shared", old.shared != new.shared),
        ];
        for (key, changed) in fixed {
            if changed {
                restart_required.push(key);
            }
        }
        // The pusher's tasks are started once, with the config they began with.
        if old.push != new.push {
            restart_required.push("push");
        }
        // The gateway's sockets and codec settings are taken at start.
        if old.webseat != new.webseat {
            restart_required.push("webseat");
        }
        self.admission
            .lock()
            .expect("admission lock")
            .set_limits(admission_limits(&new));
        self.apply_seats(&new);
        self.flows.store(Arc::new(flows));
        {
            let mut status = self.flows_status.lock().expect("flows status");
            status.loaded_at = crate::call::record::now_ms();
            status.last_errors.clear();
        }
        self.calendar.store(Arc::new(calendar));
        self.order_rules.store(Arc::new(order_rules));
        self.config.store(Arc::new(new));
        Ok(ReloadOutcome { restart_required })
    }

    /// Hands config and stored seats to the registrar and the ACD.
    fn apply_seats(&self, config: &Config) {
        use crate::acd::router::{Event, Status};
        let effective = with_store_seats(config, &self.seat_cache.get());
        self.registrar
            .lock()
            .expect("registrar lock")
            .set_accounts(accounts(&effective));
        self.acd.sync_seats(&effective);
        // The ACD only ever adds seats; one that is disabled or gone has lost
        // its registration, so it must not be offered calls any more.
        for view in self.acd.seats() {
            let usable = effective
                .seats
                .iter()
                .any(|s| s.id == view.seat && s.enabled);
            if !usable && view.status != Status::LoggedOut {
                let seat = view.seat;
                self.acd
                    .handle(Event::SetStatus {
                        seat,
                        status: Status::LoggedOut,
                    })
                    .ok();
            }
        }
        warn_demo_passwords(&effective);
    }

    /// Re-reads the store's seats and applies them with the running config
    /// (after an API change, and before a reload so the CLI's changes count).
    pub async fn refresh_seats(&self) -> Result<(), SeatError> {
        let _one_read_at_a_time = self.seat_cache.refresh.lock().await;
        let stored = self.store.stored_seats().await?;
        let _no_reload_meanwhile = self.reload_lock.lock().expect("reload lock");
        self.seat_cache.set(stored);
        self.apply_seats(&self.config.load());
        Ok(())
    }

    /// Every seat, config and store, as the registrar and the ACD have them.
    pub fn seat_list(&self) -> Merged {
        seats::merge(&self.config.load().seats, &self.seat_cache.get())
    }

    /// Stops taking calls (new INVITEs get 503).
    pub fn start_draining(&self) {
        self.admission
            .lock()
            .expect("admission lock")
            .start_draining();
    }

    /// Whether the server is draining.
    pub fn is_draining(&self) -> bool {
        self.admission.lock().expect("admission lock").is_draining()
    }
}

/// Parts of the service that must be stopped in order at shutdown.
pub struct Running {
    pub shared: Arc<Shared>,
    pub sip_addr: SocketAddr,
    pub http_addr: SocketAddr,
    sip_cancel: CancellationToken,
    http_cancel: CancellationToken,
    writer_stop: CancellationToken,
    writer_task: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Dropped at stop, which ends the watch.
    _watcher: Option<crate::ivr::watch::Watch>,
}

/// Starts everything; returns once all listeners are bound.
pub async fn start(config_path: Option<PathBuf>, overrides: Overrides) -> anyhow::Result<Running> {
    let config = load_config(config_path.as_deref(), &overrides)?;
    let flows = load_dir(&config.ivr.flows_dir, &CheckContext::from_config(&config))
        .map_err(|problems| anyhow::anyhow!("{}", ReloadError::Flows(problems)))?;
    let calendar = Calendar::load_dir(&config.ivr.calendar_dir)?;
    let order_rules = crate::orders::desk::Rules::load(&config, calendar.clone())?;
    let order_spool = crate::orders::spool::Spool::new(&config.orders.spool_dir);
    let redis = match config.shared.redis_url.as_str() {
        "" => None,
        url => Some(
            redis::Client::open(url)
                .map_err(|e| anyhow::anyhow!("shared.redis_url (REDIS_URL): {e}"))?,
        ),
    };
    let store = Store::connect(&config.store.database_url).await?;
    let stored_seats = store.stored_seats().await?;
    let seat_config = with_store_seats(&config, &stored_seats);

    let jitter_frames = (config.media.jitter_buffer_ms / 20) as usize;
    let media = MediaEngine::start(EngineConfig {
        bind_ip: config.media.bind_ip,
        ports: config.rtp_ports(),
        workers: config.media.workers,
        jitter_frames,
        rtp_timeout: (config.media.rtp_timeout_secs > 0)
            .then(|| Duration::from_secs(config.media.rtp_timeout_secs.into())),
        rtcp_interval: Duration::from_secs(config.media.rtcp_interval_secs.into()),
        realtime_priority: config.media.realtime_priority,
    })?;
    let writer_counters = Arc::new(WriterCounters::default());
    let flow_stats = Arc::new(FlowStats::default());
    let metrics = Arc::new(Metrics::new(
        media.counters().clone(),
        writer_counters.clone(),
        flow_stats.clone(),
    ));
    let writer_stop = CancellationToken::new();
    let (records, writer_task) = writer::spawn(
        store.clone(),
        WriterLimits {
            batch_size: config.store.batch_size,
            max_pending: config.store.max_pending,
        },
        writer_counters,
        writer_stop.clone(),
    );

    let sip_cancel = CancellationToken::new();
    let sip = crate::sip::listener::bind(&config, sip_cancel.clone()).await?;
    let sip_addr = sip.local_addr;
    let http_listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|e| anyhow::anyhow!("http.listen {}: {e}", config.http.listen))?;
    let http_addr = http_listener.local_addr()?;
    let webseat = if config.webseat.enabled {
        Some(crate::webseat::Gateway::bind(&config, sip_cancel.clone()).await?)
    } else {
        None
    };

    warn_demo_passwords(&seat_config);
    let push = config.push.clone();
    let push_stats = push
        .as_ref()
        .map(crate::push::stats_for)
        .unwrap_or_default();
    let shared = Arc::new(Shared {
        admission: Mutex::new(Admission::new(admission_limits(&config))),
        registrar: Mutex::new(Registrar::new(
            registrar_policy(&config),
            accounts(&seat_config),
        )),
        acd: crate::acd::service::Acd::new(&seat_config),
        directory: Default::default(),
        sip_addr,
        config: ArcSwap::from_pointee(config),
        flows: ArcSwap::from_pointee(flows),
        flows_status: Mutex::new(FlowsStatus {
            loaded_at: crate::call::record::now_ms(),
            ..FlowsStatus::default()
        }),
        flow_stats,
        calendar: ArcSwap::from_pointee(calendar),
        order_spool,
        tokens: crate::auth::cache::TokenCache::new(TOKEN_TRUST_MS),
        order_events: Default::default(),
        kb: Arc::new(crate::kb::search::KbIndex::new(1)?),
        order_rules: ArcSwap::from_pointee(order_rules),
        config_path,
        overrides,
        media,
        records,
        metrics,
        dialogs: sip.dialogs.clone(),
        hangup_all: CancellationToken::new(),
        active: AtomicUsize::new(0),
        call_ended: Notify::new(),
        store,
        seat_cache: SeatCache::new(stored_seats),
        trunks: Default::default(),
        push: push_stats.clone(),
        blocks: Default::default(),
        wallboard: Default::default(),
        webseat: webseat.as_ref().map(|(gateway, _)| gateway.clone()),
        reload_lock: Mutex::new(()),
    });

    let mut tasks = vec![
        tokio::spawn(crate::sip::listener::run(sip, shared.clone())),
        tokio::spawn(expire_registrations(shared.clone())),
        tokio::spawn(sweep_recordings(shared.clone())),
        tokio::spawn(crate::sip::keepalive::run(shared.clone())),
        tokio::spawn(crate::sip::trunks::run(shared.clone())),
        tokio::spawn(crate::acd::audit::run(shared.clone(), writer_stop.clone())),
        tokio::spawn(crate::orders::sweeper::run(
            shared.clone(),
            writer_stop.clone(),
        )),
        tokio::spawn(crate::kb::desk::run(shared.clone(), writer_stop.clone())),
        tokio::spawn(crate::callers::task::run(
            shared.clone(),
            writer_stop.clone(),
        )),
    ];
    if let Some(push) = push {
        tasks.extend(crate::push::spawn(
            shared.store.clone(),
            push,
            push_stats,
            writer_stop.clone(),
        )?);
    }
    let acd_shared = shared.clone();
    let acd_stop = sip_cancel.clone();
    tasks.push(tokio::spawn(async move {
        acd_shared.acd.run(acd_stop).await;
    }));
    if let Some(client) = redis {
        tasks.push(share_seats(&shared, client, sip_cancel.clone()).await);
    }
    if let Some((gateway, ua)) = webseat {
        tasks.push(tokio::spawn(crate::webseat::ua::run(
            ua,
            shared.clone(),
            gateway,
        )));
    }
    let http_cancel = CancellationToken::new();
    let app = crate::api::router(shared.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let stop = http_cancel.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(http_listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }));
    wait_for_tcp(sip_addr).await?;
    let watcher = if shared.config.load().ivr.watch {
        Some(crate::ivr::watch::spawn(shared.clone())?)
    } else {
        None
    };
    tracing::info!(sip = %sip_addr, http = %http_addr, "hotline ready");
    Ok(Running {
        shared,
        sip_addr,
        http_addr,
        sip_cancel,
        http_cancel,
        writer_stop,
        writer_task,
        tasks,
        _watcher: watcher,
    })
}

/// Starts sharing seats on Redis; waits briefly for the first connection so
/// a node that can reach Redis is ready in shared mode.
async fn share_seats(
    shared: &Arc<Shared>,
    client: redis::Client,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    use crate::acd::service::SharedState;
    let settings = crate::acd::redis::Settings {
        prefix: shared.config.load().shared.key_prefix.clone(),
        node: crate::acd::redis::node_id(),
    };
    tracing::info!(node = %settings.node, prefix = %settings.prefix, "sharing seats on Redis");
    // Weak: the ACD lives in `Shared`, which must not keep itself alive.
    let weak = Arc::downgrade(shared);
    let ops = shared.acd.enable_shared(
        &settings.node,
        Box::new(move |seat| weak.upgrade().and_then(|s| local_binding(&s, seat))),
    );
    let task_shared = shared.clone();
    let task = tokio::spawn(async move {
        crate::acd::redis::run(&task_shared.acd, client, settings, ops, stop).await;
    });
    for _ in 0..50 {
        if shared.acd.shared_state() == SharedState::Redis {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if shared.acd.shared_state() != SharedState::Redis {
        tracing::warn!("Redis not reachable at start: routing this node's own seats until it is");
    }
    task
}

/// Removes conversation recordings past their queue's retention, hourly.
async fn sweep_recordings(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        let config = shared.config.load_full();
        let today = time::OffsetDateTime::now_utc().date();
        tokio::task::spawn_blocking(move || {
            crate::call::recording::sweep(&config.ivr.recordings_dir, &config.queues, today)
        })
        .await
        .ok();
    }
}

/// Drops expired registrations, stale nonces and ended bans.
async fn expire_registrations(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(15));
    loop {
        every.tick().await;
        let gone = shared
            .registrar
            .lock()
            .expect("registrar lock")
            .expire(std::time::Instant::now());
        for seat in gone {
            tracing::info!(%seat, "registration expired");
            shared.acd.seat_unregistered(&seat);
        }
    }
}

/// Waits until the SIP TCP listener accepts, so "ready" means ready.
async fn wait_for_tcp(addr: SocketAddr) -> anyhow::Result<()> {
    let target = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(target).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("sip.listen {addr} (TCP): the listener did not come up")
}

impl Running {
    /// Drains: refuse new calls, let calls run on for the grace period, hang
    /// up the rest, flush call records, stop.
    pub async fn drain(self) {
        let shared = &self.shared;
        shared.start_draining();
        let grace = shared.config.load().drain_grace();
        tracing::info!(
            active = shared.active_calls(),
            ?grace,
            "draining: new calls refused"
        );
        if !shared.wait_idle(grace).await {
            tracing::info!(
                active = shared.active_calls(),
                "drain grace over: hanging up"
            );
            shared.hangup_all.cancel();
            shared.wait_idle(Duration::from_secs(10)).await;
            // The BYEs run as their own transactions; give them time to be
            // answered (or retransmitted once) before the transport closes.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        self.stop().await;
    }

    /// Stops listeners and flushes records without waiting for calls.
    pub async fn stop(self) {
        self.sip_cancel.cancel();
        self.http_cancel.cancel();
        self.writer_stop.cancel();
        writer::finish(
            self.writer_task,
            Duration::from_secs(10),
            &self.shared.metrics.writer,
        )
        .await;
        for t in self.tasks {
            t.abort();
        }
        self.shared.media.shutdown();
        self.shared.store.close().await;
        tracing::info!("hotline stopped");
    }
}

/// Runs until SIGTERM/SIGINT (drain) with SIGHUP reloading.
pub async fn serve(config_path: Option<PathBuf>, overrides: Overrides) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let running = start(config_path, overrides).await?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                // A database that is away keeps the seats last read; the
                // config file is reloaded all the same.
                if let Err(e) = running.shared.refresh_seats().await {
                    tracing::error!(error = %e, "stored seats not re-read; the last read stay");
                }
                // Errors are logged and counted inside; the old config stays.
                running.shared.reload().ok();
            }
        }
    }
    running.drain().await;
    Ok(())
}
