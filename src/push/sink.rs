//! The two sinks: a Redis stream (XADD) and an HTTP endpoint (POST of a
//! JSON batch). A sink takes a batch in order and says whether all of it
//! was accepted; a partial success counts as failure and the whole batch
//! is sent again, which is why every event carries its `event_id`.

use super::http::HttpSink;
use crate::store::outbox::OutboxRow;
use redis::AsyncConnectionConfig;
use serde_json::Value;
use std::time::Duration;

/// One event as it leaves: the outbox row with its payload masked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outgoing {
    pub event_id: String,
    pub seq: i64,
    pub stream: String,
    pub kind: String,
    pub at: i64,
    pub payload: Value,
}

impl Outgoing {
    /// The row with `payload` (already masked).
    pub fn new(row: &OutboxRow, payload: Value) -> Outgoing {
        Outgoing {
            event_id: row.event_id.clone(),
            seq: row.seq,
            stream: row.stream.clone(),
            kind: row.kind.clone(),
            at: row.at,
            payload,
        }
    }
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis: no answer within {0:?}")]
    RedisTimeout(Duration),
    #[error("http: {0}")]
    Http(String),
}

/// A place events go.
pub enum Sink {
    Redis(RedisSink),
    Http(HttpSink),
}

impl Sink {
    /// Delivers the batch, in order; `Ok` only when all of it was taken.
    pub async fn send(&mut self, batch: &[Outgoing]) -> Result<(), SinkError> {
        match self {
            Sink::Redis(s) => s.send(batch).await,
            Sink::Http(s) => s.send(batch).await,
        }
    }
}

/// XADD to one stream over a connection kept between batches.
pub struct RedisSink {
    client: redis::Client,
    stream: String,
    maxlen: u64,
    timeout: Duration,
    con: Option<redis::aio::MultiplexedConnection>,
}

impl RedisSink {
    pub fn new(client: redis::Client, stream: &str, maxlen: u64, timeout: Duration) -> RedisSink {
        RedisSink {
            client,
            stream: stream.to_owned(),
            maxlen,
            timeout,
            con: None,
        }
    }

    async fn send(&mut self, batch: &[Outgoing]) -> Result<(), SinkError> {
        let result = tokio::time::timeout(self.timeout, self.send_once(batch)).await;
        let result = result.unwrap_or(Err(SinkError::RedisTimeout(self.timeout)));
        if result.is_err() {
            // A fresh connection next time: this one may be half dead.
            self.con = None;
        }
        result
    }

    async fn send_once(&mut self, batch: &[Outgoing]) -> Result<(), SinkError> {
        if self.con.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout));
            self.con = Some(
                self.client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            );
        }
        let Some(con) = self.con.as_mut() else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        for e in batch {
            let cmd = pipe.cmd("XADD").arg(&self.stream);
            if self.maxlen > 0 {
                cmd.arg("MAXLEN").arg("~").arg(self.maxlen);
            }
            cmd.arg("*")
                .arg("event_id")
                .arg(&e.event_id)
                .arg("seq")
                .arg(e.seq)
                .arg("stream")
                .arg(&e.stream)
                .arg("kind")
                .arg(&e.kind)
                .arg("at")
                .arg(e.at)
                .arg("payload")
                .arg(e.payload.to_string());
        }
        let _: Vec<String> = pipe.query_async(con).await?;
        Ok(())
    }
}
