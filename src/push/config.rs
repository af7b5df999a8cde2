//! `[push]`: where the outbox goes and how hard the pusher tries.

use serde::{Deserialize, Serialize};

/// How much of a citizen's personal data leaves in pushed events (art. 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskMode {
    /// Numbers and names replaced by `*` whole.
    Full,
    /// `138****8000`, `张*` (as the API shows them to units).
    Partial,
    /// As recorded: only for a platform entitled to the identity.
    None,
}

/// `[push]`: the sinks (Redis stream, HTTP endpoint or both) and the
/// delivery policy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// `redis://host:port/db`; empty: no Redis sink.
    pub redis_url: String,
    /// The stream events are added to (XADD).
    pub redis_stream: String,
    /// Approximate cap on the stream's length (`MAXLEN ~`); 0: no cap.
    pub redis_maxlen: u64,
    /// `http://host:port/path` that takes a POSTed JSON batch; empty: no
    /// HTTP sink.
    pub http_url: String,
    /// How long one POST may take before it counts as failed.
    pub http_timeout_ms: u64,
    /// Most events per delivery.
    pub batch_size: usize,
    /// Pause between looks at an empty outbox.
    pub poll_ms: u64,
    /// First retry delay after a failed delivery; doubles per failure.
    pub backoff_min_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// A sink's lease: another node's pusher takes over this long after
    /// the holder stops renewing.
    pub lease_secs: u32,
    /// Delivered events are deleted from the outbox after this many hours.
    pub retention_hours: u32,
    /// Personal data in pushed payloads.
    pub mask: MaskMode,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            redis_url: String::new(),
            redis_stream: "hotline:events".into(),
            redis_maxlen: 1_000_000,
            http_url: String::new(),
            http_timeout_ms: 5_000,
            batch_size: 200,
            poll_ms: 200,
            backoff_min_ms: 200,
            backoff_max_ms: 30_000,
            lease_secs: 15,
            retention_hours: 72,
            mask: MaskMode::Partial,
        }
    }
}

impl PushConfig {
    /// Checks what types cannot; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let bad = |key: &'static str, message: &str| Err((key, message.to_owned()));
        if self.redis_url.is_empty() && self.http_url.is_empty() {
            return bad(
                "push.redis_url",
                "set push.redis_url or push.http_url (or both), or remove [push]",
            );
        }
        if !self.redis_url.is_empty()
            && !["redis://", "unix://", "redis+unix://"]
                .iter()
                .any(|s| self.redis_url.starts_with(s))
        {
            return bad(
                "push.redis_url",
                "must start with redis:// or unix:// (no TLS)",
            );
        }
        if self.redis_stream.trim().is_empty() {
            return bad(
                "push.redis_stream",
                "must name a stream, e.g. \"hotline:events\"",
            );
        }
        if !self.http_url.is_empty()
            && let Err(message) = super::http::Target::parse(&self.http_url)
        {
            return Err(("push.http_url", message));
        }
        if self.http_timeout_ms == 0 {
            return bad("push.http_timeout_ms", "must be at least 1");
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return bad("push.batch_size", "must be from 1 to 10000");
        }
        if self.poll_ms == 0 {
            return bad("push.poll_ms", "must be at least 1");
        }
        if self.backoff_min_ms == 0 || self.backoff_min_ms > self.backoff_max_ms {
            return bad(
                "push.backoff_min_ms",
                "must be at least 1 and at most push.backoff_max_ms",
            );
        }
        if self.lease_secs == 0 {
            return bad("push.lease_secs", "must be at least 1");
        }
        if self.retention_hours == 0 {
            return bad("push.retention_hours", "must be at least 1");
        }
        Ok(())
    }
}
