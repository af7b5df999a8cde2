//! Real-time data push to the region platform (regulation art. 14).
//!
//! Every call, seat and order change writes an event to the outbox in its
//! own transaction ([`crate::store::outbox`]). This room delivers those
//! events, at least once and in `seq` order (so in order per order), to a
//! Redis stream and/or an HTTP endpoint. Each sink runs on its own: a
//! lease in the database makes one node its pusher, a durable cursor
//! records what the sink acknowledged, failures back off with jitter, and
//! delivered events are pruned after the retention period.
//!
//! The decisions live in [`delivery`] (sans-IO, read it first); [`sink`]
//! and [`http`] move the bytes; [`mask`] hides personal data on the way
//! out; [`run`] below is the loop that ties them to the store. It runs
//! inside `hotline serve` when `[push]` is configured, and alone as
//! `hotline push`.

pub mod config;
pub mod delivery;
pub mod http;
pub mod mask;
pub mod sink;

pub use config::{MaskMode, PushConfig};

use crate::call::record::now_ms;
use crate::store::{Store, StoreError};
use delivery::{Backoff, Delivery};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use sink::{Outgoing, RedisSink, Sink};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the pusher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("push.redis_url: {0}")]
    RedisUrl(redis::RedisError),
    #[error("push.http_url: {0}")]
    HttpUrl(String),
}

/// One sink's figures, read by `/metrics`.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub name: String,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    /// The sink's acknowledged seq.
    pub cursor: AtomicI64,
    /// The newest seq in the outbox at the last look.
    pub head: AtomicI64,
    /// This node holds the sink's lease.
    pub leader: AtomicBool,
}

/// All sinks' figures.
#[derive(Debug, Default)]
pub struct PushStats {
    pub sinks: Vec<Arc<SinkStats>>,
    pub pruned: AtomicU64,
}

impl PushStats {
    /// A collector for [`crate::report::metrics::Metrics::render_with`].
    pub fn scrape(self: &Arc<Self>) -> Box<dyn Collector> {
        Box::new(Scrape(self.clone()))
    }
}

/// The figures alone as Prometheus text (`hotline push --metrics-listen`).
pub fn render(stats: &Arc<PushStats>) -> String {
    let mut registry = prometheus_client::registry::Registry::with_prefix("hotline");
    registry.register_collector(stats.scrape());
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).ok();
    out
}

#[derive(Debug)]
struct Scrape(Arc<PushStats>);

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let sinks = &self.0.sinks;
        type Pick = fn(&SinkStats) -> i64;
        let counters: [(&str, &str, Pick); 2] = [
            (
                "push_delivered",
                "Outbox events acknowledged by the sink.",
                |s| s.delivered.load(Ordering::Relaxed) as i64,
            ),
            (
                "push_failed",
                "Failed deliveries (each retried with backoff).",
                |s| s.failed.load(Ordering::Relaxed) as i64,
            ),
        ];
        for (name, help, pick) in counters {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for s in sinks {
                let labels = [("sink", s.name.as_str())];
                let c = ConstCounter::new(pick(s) as u64);
                c.encode(m.encode_family(&labels)?)?;
            }
        }
        let gauges: [(&str, &str, Pick); 3] = [
            (
                "push_lag_events",
                "Outbox events not yet acknowledged by the sink.",
                |s| (s.head.load(Ordering::Relaxed) - s.cursor.load(Ordering::Relaxed)).max(0),
            ),
            (
                "push_cursor",
                "The last outbox seq the sink acknowledged.",
                |s| s.cursor.load(Ordering::Relaxed),
            ),
            (
                "push_leader",
                "1 when this node holds the sink's lease and pushes.",
                |s| i64::from(s.leader.load(Ordering::Relaxed)),
            ),
        ];
        for (name, help, pick) in gauges {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for s in sinks {
                let labels = [("sink", s.name.as_str())];
                let g = ConstGauge::new(pick(s));
                g.encode(m.encode_family(&labels)?)?;
            }
        }
        let c = ConstCounter::new(self.0.pruned.load(Ordering::Relaxed));
        c.encode(e.encode_descriptor(
            "push_pruned",
            "Delivered outbox events deleted after the retention period.",
            None,
            c.metric_type(),
        )?)
    }
}

/// A sink with its name (the key of its cursor and lease).
struct Named {
    name: String,
    sink: Sink,
}

fn sinks(config: &PushConfig) -> Result<Vec<Named>, PushError> {
    let mut out = Vec::new();
    if !config.redis_url.is_empty() {
        let client = redis::Client::open(config.redis_url.as_str()).map_err(PushError::RedisUrl)?;
        out.push(Named {
            name: format!("redis:{}", config.redis_stream),
            sink: Sink::Redis(RedisSink::new(
                client,
                &config.redis_stream,
                config.redis_maxlen,
                Duration::from_millis(config.http_timeout_ms),
            )),
        });
    }
    if !config.http_url.is_empty() {
        let target = http::Target::parse(&config.http_url).map_err(PushError::HttpUrl)?;
        out.push(Named {
            name: format!("http:{}", config.http_url),
            sink: Sink::Http(http::HttpSink::new(
                target,
                Duration::from_millis(config.http_timeout_ms),
            )),
        });
    }
    Ok(out)
}

/// The figures for `config`'s sinks, before [`spawn`].
pub fn stats_for(config: &PushConfig) -> Arc<PushStats> {
    let mut names = Vec::new();
    if !config.redis_url.is_empty() {
        names.push(format!("redis:{}", config.redis_stream));
    }
    if !config.http_url.is_empty() {
        names.push(format!("http:{}", config.http_url));
    }
    Arc::new(PushStats {
        sinks: names
            .into_iter()
            .map(|name| {
                Arc::new(SinkStats {
                    name,
                    ..SinkStats::default()
                })
            })
            .collect(),
        pruned: AtomicU64::new(0),
    })
}

/// Starts one task per sink plus the pruner; they stop (releasing their
/// leases) when `stop` is cancelled.
pub fn spawn(
    store: Store,
    config: PushConfig,
    stats: Arc<PushStats>,
    stop: CancellationToken,
) -> Result<Vec<JoinHandle<()>>, PushError> {
    let holder = crate::acd::redis::node_id();
    let mut tasks = Vec::new();
    let names: Vec<String> = stats.sinks.iter().map(|s| s.name.clone()).collect();
    for named in sinks(&config)? {
        let sink_stats = stats
            .sinks
            .iter()
            .find(|s| s.name == named.name)
            .cloned()
            .unwrap_or_default();
        tracing::info!(sink = %named.name, %holder, "pushing the outbox");
        tasks.push(tokio::spawn(
            Pusher {
                store: store.clone(),
                config: config.clone(),
                name: named.name,
                sink: named.sink,
                holder: holder.clone(),
                stats: sink_stats,
            }
            .run(stop.clone()),
        ));
    }
    tasks.push(tokio::spawn(prune(store, config, names, stats, stop)));
    Ok(tasks)
}

/// One sink's loop: lease, read, decide, send, acknowledge.
struct Pusher {
    store: Store,
    config: PushConfig,
    name: String,
    sink: Sink,
    holder: String,
    stats: Arc<SinkStats>,
}

impl Pusher {
    fn ttl_ms(&self) -> i64 {
        i64::from(self.config.lease_secs) * 1_000
    }

    async fn run(mut self, stop: CancellationToken) {
        let poll = Duration::from_millis(self.config.poll_ms);
        // `None` while another node holds the lease (or we never had it).
        let mut state: Option<Delivery> = None;
        let mut renewed_at = 0;
        let mut waiting_logged = false;
        while !stop.is_cancelled() {
            let now = now_ms();
            if state.is_none() || now - renewed_at > self.ttl_ms() / 3 {
                match self.lease(&mut state, now).await {
                    Ok(true) => {
                        renewed_at = now;
                        waiting_logged = false;
                    }
                    Ok(false) => {
                        if !waiting_logged {
                            tracing::info!(sink = %self.name, "another node holds the push lease; waiting");
                            waiting_logged = true;
                        }
                        sleep(&stop, Duration::from_millis(self.ttl_ms() as u64 / 3)).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(sink = %self.name, error = %e, "push lease: database unreachable");
                        sleep(&stop, poll.max(Duration::from_secs(1))).await;
                        continue;
                    }
                }
            }
            let Some(delivery) = state.as_mut() else {
                continue;
            };
            let wait = delivery.retry_at() - now;
            if wait > 0 {
                // Wake to renew the lease during a long backoff: another
                // node taking over here would only push the same batch.
                let wait = wait.min(self.ttl_ms() / 3).max(1);
                sleep(&stop, Duration::from_millis(wait as u64)).await;
                continue;
            }
            match self.step(delivery, now).await {
                Step::Sent => renewed_at = now,
                Step::Idle => sleep(&stop, poll).await,
                Step::LostLease => {
                    tracing::warn!(sink = %self.name, "push lease lost to another node");
                    state = None;
                    self.stats.leader.store(false, Ordering::Relaxed);
                }
            }
        }
        if state.is_some() {
            self.store
                .release_lease(&self.name, &self.holder)
                .await
                .ok();
            self.stats.leader.store(false, Ordering::Relaxed);
        }
    }

    /// Takes or renews the lease; a fresh lease starts at the stored cursor.
    async fn lease(&self, state: &mut Option<Delivery>, now: i64) -> Result<bool, StoreError> {
        let held = self
            .store
            .take_lease(&self.name, &self.holder, now, self.ttl_ms())
            .await?;
        if !held {
            *state = None;
            self.stats.leader.store(false, Ordering::Relaxed);
            let cursor = self.store.push_cursor(&self.name).await?;
            self.stats.cursor.store(cursor, Ordering::Relaxed);
            return Ok(false);
        }
        if state.is_none() {
            let cursor = self.store.push_cursor(&self.name).await?;
            tracing::info!(sink = %self.name, cursor, "took the push lease");
            self.stats.cursor.store(cursor, Ordering::Relaxed);
            self.stats.leader.store(true, Ordering::Relaxed);
            *state = Some(Delivery::new(
                cursor,
                Backoff {
                    min_ms: self.config.backoff_min_ms as i64,
                    max_ms: self.config.backoff_max_ms as i64,
                },
            ));
        }
        Ok(true)
    }

    async fn step(&mut self, delivery: &mut Delivery, now: i64) -> Step {
        let limit = self.config.batch_size as i64;
        let (rows, horizon) = match self.store.outbox_after(delivery.cursor(), limit).await {
            Ok(read) => read,
            Err(e) => {
                self.fail(delivery, now, &e.to_string());
                return Step::Idle;
            }
        };
        if let Ok(head) = self.store.outbox_head().await {
            self.stats.head.store(head, Ordering::Relaxed);
        }
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let n = delivery.ready(&seqs, horizon);
        if n == 0 {
            if let Some(missing) = delivery.waiting_for() {
                tracing::debug!(sink = %self.name, missing, "waiting for an outbox row still being written");
            }
            return Step::Idle;
        }
        let batch: Vec<Outgoing> = rows[..n]
            .iter()
            .map(|row| {
                let mut payload = serde_json::from_str(&row.payload).unwrap_or_default();
                mask::mask_payload(&mut payload, self.config.mask);
                Outgoing::new(row, payload)
            })
            .collect();
        if let Err(e) = self.sink.send(&batch).await {
            self.fail(delivery, now, &e.to_string());
            return Step::Idle;
        }
        let last = batch[batch.len() - 1].seq;
        match self
            .store
            .advance_cursor(&self.name, &self.holder, last, now_ms(), self.ttl_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => return Step::LostLease,
            Err(e) => {
                // Delivered but not recorded: the batch goes again (the
                // receiver drops what it has by event_id).
                self.fail(delivery, now, &format!("saving the cursor: {e}"));
                return Step::Idle;
            }
        }
        if delivery.failures() > 0 {
            tracing::info!(sink = %self.name, "push delivering again");
        }
        delivery.acked(last);
        self.stats.cursor.store(last, Ordering::Relaxed);
        self.stats.delivered.fetch_add(n as u64, Ordering::Relaxed);
        Step::Sent
    }

    fn fail(&self, delivery: &mut Delivery, now: i64, error: &str) {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        let at = delivery.failed(now, rand::random::<f64>());
        let failures = delivery.failures();
        // The first failure and then every tenth, so an outage does not
        // flood the log.
        if failures == 1 || failures.is_multiple_of(10) {
            tracing::warn!(sink = %self.name, error, failures, retry_in_ms = at - now, "push delivery failed; retrying");
        }
    }
}

enum Step {
    Sent,
    Idle,
    LostLease,
}

async fn sleep(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.cancelled() => {}
    }
}

/// Deletes events every sink of this config acknowledged, once older than
/// the retention period.
async fn prune(
    store: Store,
    config: PushConfig,
    names: Vec<String>,
    stats: Arc<PushStats>,
    stop: CancellationToken,
) {
    let retention = i64::from(config.retention_hours) * 3_600_000;
    loop {
        sleep(&stop, Duration::from_secs(60)).await;
        if stop.is_cancelled() {
            return;
        }
        let mut upto = i64::MAX;
        for name in &names {
            match store.push_cursor(name).await {
                Ok(seq) => upto = upto.min(seq),
                Err(_) => upto = 0,
            }
        }
        if upto == 0 || upto == i64::MAX {
            continue;
        }
        match store.prune_outbox(upto, now_ms() - retention).await {
            Ok(n) if n > 0 => {
                stats.pruned.fetch_add(n, Ordering::Relaxed);
                tracing::info!(deleted = n, upto, "pruned delivered outbox events");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning the outbox failed"),
        }
    }
}
