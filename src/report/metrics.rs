//! Prometheus metrics at `/metrics`.
//!
//! Hot paths only bump atomics they own (the media workers even batch theirs
//! per tick); this module reads them all at scrape time through one
//! prometheus-client `Collector`, so no metric costs anything between scrapes.

use crate::ivr::stats::FlowStats;
use crate::media::engine::MediaCounters;
use crate::store::writer::WriterCounters;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// How a call ended, as counted in `hotline_calls_total{result=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    Answered,
    Cancelled,
    NotFound,
    NotAcceptable,
    RateLimited,
    Draining,
    AtCapacity,
    Failed,
}

impl CallResult {
    const ALL: [CallResult; 8] = [
        CallResult::Answered,
        CallResult::Cancelled,
        CallResult::NotFound,
        CallResult::NotAcceptable,
        CallResult::RateLimited,
        CallResult::Draining,
        CallResult::AtCapacity,
        CallResult::Failed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CallResult::Answered => "answered",
            CallResult::Cancelled => "cancelled",
            CallResult::NotFound => "not-found",
            CallResult::NotAcceptable => "not-acceptable",
            CallResult::RateLimited => "rate-limited",
            CallResult::Draining => "draining",
            CallResult::AtCapacity => "at-capacity",
            CallResult::Failed => "failed",
        }
    }
}

/// Every counter the service exposes.
#[derive(Debug)]
pub struct Metrics {
    pub active_calls: AtomicI64,
    calls: [AtomicU64; CallResult::ALL.len()],
    pub dtmf_info_digits: AtomicU64,
    pub reloads_ok: AtomicU64,
    /// Addresses banned for repeated wrong REGISTER passwords.
    pub register_lockouts: AtomicU64,
    pub register_auth_failures: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub media: Arc<MediaCounters>,
    pub writer: Arc<WriterCounters>,
    pub flow_stats: Arc<FlowStats>,
}

impl Metrics {
    /// Metrics reading the given media and writer counters.
    pub fn new(
        media: Arc<MediaCounters>,
        writer: Arc<WriterCounters>,
        flow_stats: Arc<FlowStats>,
    ) -> Metrics {
        Metrics {
            active_calls: AtomicI64::new(0),
            calls: Default::default(),
            dtmf_info_digits: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            register_lockouts: AtomicU64::new(0),
            register_auth_failures: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            media,
            writer,
            flow_stats,
        }
    }

    /// Counts one finished call.
    pub fn call_ended(&self, result: CallResult) {
        let i = CallResult::ALL
            .iter()
            .position(|r| *r == result)
            .unwrap_or(0);
        self.calls[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Calls counted with this result so far.
    pub fn calls(&self, result: CallResult) -> u64 {
        let i = CallResult::ALL
            .iter()
            .position(|r| *r == result)
            .unwrap_or(0);
        self.calls[i].load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(self: &Arc<Self>) -> String {
        self.render_with(Vec::new())
    }

    /// Prometheus text with other figures as well (an [`AcdScrape`], a
    /// [`TrunkScrape`]), rendered after the engine's.
    pub fn render_with(self: &Arc<Self>, extra: Vec<Box<dyn Collector>>) -> String {
        let mut registry = Registry::with_prefix("hotline");
        registry.register_collector(Box::new(Scrape(self.clone())));
        for collector in extra {
            registry.register_collector(collector);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).ok();
        out
    }
}

#[derive(Debug)]
struct Scrape(Arc<Metrics>);

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let m = &self.0;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        gauge(
            &mut e,
            "active_calls",
            "Calls in progress.",
            m.active_calls.load(Ordering::Relaxed),
        )?;
        {
            let mut family = e.encode_descriptor(
                "calls",
                "Calls finished, by result.",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (result, count) in CallResult::ALL.iter().zip(&m.calls) {
                let labels = [("result", result.as_str())];
                ConstCounter::new(load(count)).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut e,
            "sip_malformed_messages",
            "SIP datagrams dropped as unparseable.",
            load(&crate::sip::listener::MALFORMED),
        )?;
        counter(
            &mut e,
            "rtp_packets_received",
            "RTP packets received.",
            load(&m.media.packets_in),
        )?;
        counter(
            &mut e,
            "rtp_packets_sent",
            "RTP packets sent.",
            load(&m.media.packets_out),
        )?;
        counter(
            &mut e,
            "rtp_late_packets",
            "RTP packets that missed their playout slot.",
            load(&m.media.late_packets),
        )?;
        counter(
            &mut e,
            "rtp_invalid_packets",
            "Datagrams on RTP ports that were not valid RTP from the peer.",
            load(&m.media.invalid_packets),
        )?;
        counter(
            &mut e,
            "media_tick_overruns",
            "Media ticks that started late.",
            load(&m.media.overruns),
        )?;
        counter(
            &mut e,
            "media_skipped_frames",
            "Frames a late media worker skipped; the streams' RTP clocks moved past them.",
            load(&m.media.skipped_frames),
        )?;
        gauge(
            &mut e,
            "media_realtime_workers",
            "Media worker threads running under SCHED_FIFO.",
            load(&m.media.realtime_workers) as i64,
        )?;
        gauge(
            &mut e,
            "media_streams",
            "RTP streams open.",
            load(&m.media.streams) as i64,
        )?;
        counter(
            &mut e,
            "dtmf_digits",
            "DTMF digits received (RTP events and SIP INFO).",
            load(&m.media.dtmf_digits) + load(&m.dtmf_info_digits),
        )?;
        counter(
            &mut e,
            "call_records_written",
            "Call records committed to the database.",
            load(&m.writer.written),
        )?;
        counter(
            &mut e,
            "call_records_dropped",
            "Call records lost because the database stayed down.",
            load(&m.writer.dropped),
        )?;
        counter(
            &mut e,
            "store_failed_batches",
            "Database write attempts that failed.",
            load(&m.writer.failed_batches),
        )?;
        gauge(
            &mut e,
            "call_records_pending",
            "Call records waiting for the database.",
            load(&m.writer.pending) as i64,
        )?;
        counter(
            &mut e,
            "config_reloads",
            "Configuration reloads applied.",
            load(&m.reloads_ok),
        )?;
        counter(
            &mut e,
            "config_reloads_failed",
            "Configuration reloads refused.",
            load(&m.reloads_failed),
        )?;
        counter(
            &mut e,
            "register_lockouts",
            "Addresses banned after repeated failed REGISTER authentication.",
            load(&m.register_lockouts),
        )?;
        counter(
            &mut e,
            "register_auth_failures",
            "REGISTERs with a wrong password or an unknown seat.",
            load(&m.register_auth_failures),
        )?;
        ivr_nodes(&mut e, &m.flow_stats)?;
        Ok(())
    }
}

/// Per-node IVR counts: where callers go and where they drop out.
fn ivr_nodes(e: &mut DescriptorEncoder, stats: &FlowStats) -> std::fmt::Result {
    use prometheus_client::metrics::MetricType;
    let all = stats.snapshot();
    {
        let mut family = e.encode_descriptor(
            "ivr_node_entered",
            "Calls that entered an IVR node.",
            None,
            MetricType::Counter,
        )?;
        for (flow, nodes) in &all {
            for (node, c) in nodes {
                let labels = [("flow", flow.as_str()), ("node", node.as_str())];
                ConstCounter::new(c.entered).encode(family.encode_family(&labels)?)?;
            }
        }
    }
    {
        let mut family = e.encode_descriptor(
            "ivr_node_left",
            "Calls that left an IVR node, by branch.",
            None,
            MetricType::Counter,
        )?;
        for (flow, nodes) in &all {
            for (node, c) in nodes {
                for (via, n) in &c.left {
                    let labels = [
                        ("flow", flow.as_str()),
                        ("node", node.as_str()),
                        ("via", via.as_str()),
                    ];
                    ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
    }
    let mut family = e.encode_descriptor(
        "ivr_node_hangups",
        "Callers who hung up at an IVR node.",
        None,
        MetricType::Counter,
    )?;
    for (flow, nodes) in &all {
        for (node, c) in nodes {
            let labels = [("flow", flow.as_str()), ("node", node.as_str())];
            ConstCounter::new(c.hung_up).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// The ACD's figures at one moment, rendered after the engine's.
#[derive(Debug)]
pub struct AcdScrape {
    pub queues: Vec<crate::acd::service::QueueView>,
    pub seats: Vec<crate::acd::service::SeatView>,
    pub totals: crate::acd::service::SeatTotals,
    /// The shared seat state (Redis); `None` when seats are kept in memory.
    pub shared: Option<crate::acd::service::SharedView>,
}

impl Collector for AcdScrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        use prometheus_client::metrics::MetricType;
        type Pick = fn(&crate::acd::service::QueueView) -> i64;
        let gauges: [(&str, &str, Pick); 2] = [
            ("queue_waiting", "Callers waiting, by queue.", |q| {
                q.waiting as i64
            }),
            (
                "queue_longest_wait_seconds",
                "The longest current wait, by queue.",
                |q| q.longest_wait_secs as i64,
            ),
        ];
        for (name, help, pick) in gauges {
            let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for q in &self.queues {
                let labels = [("queue", q.queue.as_str())];
                ConstGauge::new(pick(q)).encode(family.encode_family(&labels)?)?;
            }
        }
        type Count = fn(&crate::acd::service::QueueTotals) -> u64;
        let counters: [(&str, &str, Count); 5] = [
            ("queue_entered", "Calls that joined a queue.", |t| t.entered),
            ("queue_answered", "Queued calls an agent answered.", |t| {
                t.answered
            }),
            (
                "queue_answered_within_15s",
                "Queued calls answered within 15 s of queueing (service level).",
                |t| t.answered_in_time,
            ),
            (
                "queue_abandoned",
                "Callers who hung up while waiting in a queue.",
                |t| t.abandoned,
            ),
            (
                "queue_timed_out",
                "Calls that reached a queue's longest wait.",
                |t| t.timed_out,
            ),
        ];
        for (name, help, pick) in counters {
            let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for q in &self.queues {
                let labels = [("queue", q.queue.as_str())];
                ConstCounter::new(pick(&q.totals)).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            use crate::acd::router::{Activity, Status};
            let mut by_state: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
            for status in ["logged_out", "available", "on_break"] {
                for activity in ["idle", "offered", "in_call", "wrap_up"] {
                    by_state.insert((status, activity), 0);
                }
            }
            for s in &self.seats {
                let status = match s.status {
                    Status::LoggedOut => "logged_out",
                    Status::Available => "available",
                    Status::OnBreak(_) => "on_break",
                };
                let activity = match s.activity {
                    Activity::Idle => "idle",
                    Activity::Offered(_) => "offered",
                    Activity::InCall(_) => "in_call",
                    Activity::WrapUp => "wrap_up",
                };
                *by_state.entry((status, activity)).or_default() += 1;
            }
            let mut family = e.encode_descriptor(
                "seats",
                "Seats by status (as the agent set it) and activity.",
                None,
                MetricType::Gauge,
            )?;
            for ((status, activity), n) in by_state {
                let labels = [("status", status), ("activity", activity)];
                ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut e,
            "seat_talk_seconds",
            "Seconds agents spent in conversation.",
            self.totals.talk.as_secs(),
        )?;
        counter(
            &mut e,
            "seat_wrap_up_seconds",
            "Seconds agents spent in wrap-up.",
            self.totals.wrap_up.as_secs(),
        )?;
        if let Some(shared) = &self.shared {
            gauge(
                &mut e,
                "shared_state_up",
                "1 while seats are shared on Redis, 0 while this node routes its own alone.",
                i64::from(shared.up),
            )?;
            let mut family = e.encode_descriptor(
                "shared_seat_reservations",
                "Seat reservations in the shared state, by result (refused: another node's call got the seat first).",
                None,
                MetricType::Counter,
            )?;
            for (result, n) in [("won", shared.reserved), ("refused", shared.refused)] {
                ConstCounter::new(n).encode(family.encode_family(&[("result", result)])?)?;
            }
        }
        Ok(())
    }
}

/// The configured trunks' health at one moment.
#[derive(Debug)]
pub struct TrunkScrape(pub Vec<crate::sip::trunks::TrunkView>);

impl Collector for TrunkScrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        use crate::sip::trunks::TrunkState;
        use prometheus_client::metrics::MetricType;
        {
            let mut family = e.encode_descriptor(
                "trunk_up",
                "1 while a trunk answers its OPTIONS checks; 0 while it is down or not checked.",
                None,
                MetricType::Gauge,
            )?;
            for t in &self.0 {
                let up = i64::from(t.status.state == TrunkState::Up);
                ConstGauge::new(up).encode(family.encode_family(&[("trunk", t.name.as_str())])?)?;
            }
        }
        let mut family = e.encode_descriptor(
            "trunk_check_failures",
            "OPTIONS checks a trunk failed (no answer, 5xx or 6xx).",
            None,
            MetricType::Counter,
        )?;
        for t in &self.0 {
            ConstCounter::new(t.status.failures)
                .encode(family.encode_family(&[("trunk", t.name.as_str())])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Arc::new(Metrics::new(
            Default::default(),
            Default::default(),
            Default::default(),
        ));
        m.flow_stats.entered("main", "menu");
        m.flow_stats.left("main", "menu", "1");
        m.call_ended(CallResult::Answered);
        m.call_ended(CallResult::Answered);
        m.active_calls.store(3, Ordering::Relaxed);
        let text = m.render();
        assert!(
            text.contains("hotline_calls_total{result=\"answered\"} 2"),
            "{text}"
        );
        assert!(text.contains("hotline_active_calls 3"), "{text}");
        assert!(text.contains("hotline_rtp_packets_sent_total 0"), "{text}");
        assert!(
            text.contains("hotline_ivr_node_entered_total{flow=\"main\",node=\"menu\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hotline_ivr_node_left_total{flow=\"main\",node=\"menu\",via=\"1\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn renders_trunk_health() {
        use crate::sip::trunks::{Probe, TrunkStates};
        let m = Arc::new(Metrics::new(
            Default::default(),
            Default::default(),
            Default::default(),
        ));
        let states = TrunkStates::default();
        let now = std::time::Instant::now();
        states.observe("119", Probe::Answered(200), now);
        for _ in 0..3 {
            states.observe("120", Probe::NoAnswer, now);
        }
        let config = crate::config::Config::default();
        let text = m.render_with(vec![Box::new(TrunkScrape(states.snapshot(&config)))]);
        for line in [
            "hotline_trunk_up{trunk=\"119\"} 1",
            "hotline_trunk_up{trunk=\"120\"} 0",
            "hotline_trunk_up{trunk=\"110\"} 0",
            "hotline_trunk_check_failures_total{trunk=\"120\"} 3",
            "hotline_trunk_check_failures_total{trunk=\"119\"} 0",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
