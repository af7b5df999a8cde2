//! Shared ACD state on Redis: the I/O half of [`super::shared`].
//!
//! One task per node ([`run`]) owns two connections: a multiplexed one for
//! the seat script, heartbeats and reloads, and a pub/sub one for the other
//! nodes' changes. It carries out the writes [`super::service::Acd`] queues,
//! in order and batched into pipelines (a burst of offers costs one round
//! trip), and hands the answers back. Nothing here holds the ACD lock across
//! an await: every call into the ACD is synchronous and short.
//!
//! Every Redis exchange has a deadline of [`OP_TIMEOUT`]; any error or
//! silence ends the session, the ACD goes local ([`super::shared::Mirror::went_down`])
//! and the task reconnects every [`RETRY`]. A new session loads the scripts,
//! subscribes, reloads every seat, writes this node's own, and only then
//! beats (see the module docs of [`super::shared`] for why in that order).

use super::service::Acd;
use super::shared::{
    HEARTBEAT, HEARTBEAT_SCRIPT, HOLDER_STALE, Keys, LEASE, Op, SEAT_SCRIPT, ScriptReply,
    SeatRecord, SharedError, parse_published, parse_reply,
};
use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

/// The longest any one exchange with Redis may take.
pub const OP_TIMEOUT: Duration = Duration::from_millis(250);
/// Between reconnect attempts.
pub const RETRY: Duration = Duration::from_secs(1);
/// Most writes sent in one pipeline.
const BATCH: usize = 128;

/// Under which names and as whom.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Of every key and channel.
    pub prefix: String,
    /// This node's id in the shared state.
    pub node: String,
}

/// Why a session with Redis ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the subscription was closed")]
    Closed,
    #[error(transparent)]
    Reply(#[from] SharedError),
    #[error("{0} answers to {1} writes")]
    Count(usize, usize),
}

/// A node id: host, process and a random part (a restarted node is a new
/// node; its predecessor's lease simply lapses).
pub fn node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

async fn deadline<T, E: Into<LinkError>>(
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, LinkError> {
    match tokio::time::timeout(OP_TIMEOUT, f).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(LinkError::Timeout(OP_TIMEOUT)),
    }
}

/// Keeps the shared state until cancelled: connects, carries out `ops`,
/// applies what the other nodes publish, and falls back and reconnects
/// when Redis goes away.
pub async fn run(
    acd: &Acd,
    client: Client,
    settings: Settings,
    mut ops: UnboundedReceiver<Op>,
    cancel: CancellationToken,
) {
    let link = Link {
        acd,
        client,
        keys: Keys::new(&settings.prefix),
        node: settings.node,
    };
    let mut was_up = None::<bool>;
    loop {
        let ended = tokio::select! {
            ended = link.session(&mut ops, &mut was_up) => ended,
            _ = cancel.cancelled() => return,
        };
        match ended {
            Ok(()) => return,
            Err(e) => {
                if was_up != Some(false) {
                    tracing::warn!(error = %e, "shared state (Redis) unreachable: this node routes its own seats until it returns");
                }
                was_up = Some(false);
            }
        }
        acd.shared_down();
        // Writes queued before the fall are void; the restore rewrites.
        while ops.try_recv().is_ok() {}
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

struct Link<'a> {
    acd: &'a Acd,
    client: Client,
    keys: Keys,
    node: String,
}

impl Link<'_> {
    /// One connection's life; `Ok` only when the ACD has gone away.
    async fn session(
        &self,
        ops: &mut UnboundedReceiver<Op>,
        was_up: &mut Option<bool>,
    ) -> Result<(), LinkError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT));
        let mut con = deadline(
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await?;
        let seat_script = redis::Script::new(SEAT_SCRIPT);
        let beat_script = redis::Script::new(HEARTBEAT_SCRIPT);
        deadline(seat_script.load_async(&mut con)).await?;
        deadline(beat_script.load_async(&mut con)).await?;
        let mut pubsub = deadline(self.client.get_async_pubsub()).await?;
        deadline(pubsub.subscribe(self.keys.channel())).await?;
        let mut messages = pubsub.into_on_message();

        let records = self.load_all(&mut con).await?;
        let restore = self.acd.shared_up(records);
        let restored = restore.len();
        self.execute(&mut con, seat_script.get_hash(), restore)
            .await?;
        self.beat(&mut con, beat_script.get_hash()).await?;
        tracing::info!(node = %self.node, restored, "shared state (Redis) up");
        *was_up = Some(true);

        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                op = ops.recv() => {
                    let Some(op) = op else { return Ok(()) };
                    let mut batch = vec![op];
                    while batch.len() < BATCH {
                        match ops.try_recv() {
                            Ok(op) => batch.push(op),
                            Err(_) => break,
                        }
                    }
                    self.execute(&mut con, seat_script.get_hash(), batch).await?;
                }
                message = messages.next() => {
                    let Some(message) = message else { return Err(LinkError::Closed) };
                    match parse_published(message.get_payload_bytes()) {
                        Ok(published) => self.acd.shared_message(published),
                        Err(e) => tracing::warn!(error = %e, "unreadable shared seat change ignored"),
                    }
                }
                _ = tick.tick() => self.beat(&mut con, beat_script.get_hash()).await?,
            }
        }
    }

    /// Every seat stored under the prefix.
    async fn load_all(
        &self,
        con: &mut MultiplexedConnection,
    ) -> Result<Vec<SeatRecord>, LinkError> {
        let ids: Vec<String> = deadline(
            redis::cmd("SMEMBERS")
                .arg(self.keys.seats())
                .query_async::<Vec<String>>(con),
        )
        .await?;
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(256) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HGETALL").arg(self.keys.seat(id));
            }
            let hashes: Vec<HashMap<String, String>> = deadline(pipe.query_async(con)).await?;
            records.extend(
                hashes
                    .iter()
                    .filter(|h| !h.is_empty())
                    .filter_map(|h| SeatRecord::from_fields(h).ok()),
            );
        }
        Ok(records)
    }

    /// Runs the seat script for each write, in one pipeline, and hands the
    /// answers to the ACD.
    async fn execute(
        &self,
        con: &mut MultiplexedConnection,
        sha: &str,
        batch: Vec<Op>,
    ) -> Result<(), LinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let channel = self.keys.channel();
        let (lease, stale) = (LEASE.as_millis() as u64, HOLDER_STALE.as_millis() as u64);
        let mut pipe = redis::pipe();
        for op in &batch {
            let (guard, call, fields) = op.script_args(&self.node);
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(sha)
                .arg(3)
                .arg(self.keys.seat(op.seat()))
                .arg(self.keys.nodes())
                .arg(self.keys.seats())
                .arg(&self.node)
                .arg(guard.as_str())
                .arg(call)
                .arg(lease)
                .arg(stale)
                .arg(&channel)
                .arg(op.seat());
            for (field, value) in fields {
                cmd.arg(field).arg(value);
            }
        }
        let answers: Vec<Vec<u8>> = deadline(pipe.query_async(con)).await?;
        if answers.len() != batch.len() {
            return Err(LinkError::Count(answers.len(), batch.len()));
        }
        let replies = batch
            .into_iter()
            .zip(answers)
            .map(|(op, answer)| Ok((op, parse_reply(&answer)?)))
            .collect::<Result<Vec<(Op, ScriptReply)>, SharedError>>()?;
        self.acd.shared_replies(replies);
        Ok(())
    }

    /// Renews this node's lease and learns which nodes are alive.
    async fn beat(&self, con: &mut MultiplexedConnection, sha: &str) -> Result<(), LinkError> {
        let nodes: Vec<String> = deadline(
            redis::cmd("EVALSHA")
                .arg(sha)
                .arg(1)
                .arg(self.keys.nodes())
                .arg(&self.node)
                .arg(LEASE.as_millis() as u64)
                .arg(HOLDER_STALE.as_millis() as u64)
                .query_async::<Vec<String>>(con),
        )
        .await?;
        self.acd.shared_live(nodes, Instant::now());
        Ok(())
    }
}
