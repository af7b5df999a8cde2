//! A call's run through the IVR: the glue between the interpreter's actions
//! and the call's media stream, lookups and record.
//!
//! The call actor feeds it events (digits, playlists done, recordings,
//! lookup answers, timeouts); it turns the interpreter's actions into media
//! commands and background lookups, and keeps what the call record needs:
//! the flow and its version, the path of nodes, the final action, survey
//! score, callback request and voice message.

use crate::callers::blocks::{ActiveBlock, BlockList, notice_prompts};
use crate::config::Config;
use crate::ivr::interpreter::{
    Action, Answer, CallFacts, Event, FlowSource, Interpreter, Outcome, PromptRef, Query, Trace,
};
use crate::ivr::load::FlowSet;
use crate::ivr::stats::FlowStats;
use crate::media::engine::{Playlist, StreamHandle};
use crate::media::prompt::Prompt;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::Instant;

/// The flow's prompt for a blocked caller; a reviewed block replaces it
/// with the notice for its reason.
const BLOCKED_NOTICE: &str = "blocked_notice";

impl FlowSource for FlowSet {
    fn flow(&self, name: &str) -> Option<Arc<crate::ivr::model::Flow>> {
        FlowSet::flow(self, name).cloned()
    }
}

/// What the IVR asks of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Keep going.
    Continue,
    /// The flow ended the call.
    Hangup,
}

/// The IVR part of a call record.
#[derive(Debug, Clone, Default)]
pub struct IvrRecord {
    pub flow: Option<String>,
    pub flow_hash: Option<String>,
    pub path: Vec<String>,
    pub final_action: Option<String>,
    pub queue: Option<String>,
    pub survey_score: Option<u8>,
    pub callback_requested: bool,
    pub recording: Option<String>,
    pub language: Option<String>,
}

/// One call's IVR.
pub struct IvrRun {
    it: Interpreter,
    flows: Arc<FlowSet>,
    config: Arc<Config>,
    stats: Arc<FlowStats>,
    store: Store,
    call_id: String,
    /// The playlist whose end the interpreter waits for.
    playing: Option<u64>,
    next_playlist: u64,
    answers_tx: UnboundedSender<Answer>,
    /// Lookup answers from background tasks.
    pub answers: UnboundedReceiver<Answer>,
    pub record: IvrRecord,
    /// A queue the flow sent the caller to, not yet taken up by the call.
    queue_request: Option<(String, u8)>,
    transfer_request: Option<String>,
    /// Numbers blocked after review (article 26), read without waiting.
    blocks: Arc<BlockList>,
    /// The reviewed block the caller was found under, if any.
    block: Option<ActiveBlock>,
}

impl IvrRun {
    /// Starts `flow` (the main flow, or the survey after an agent);
    /// `None` when it is missing.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        flow: &str,
        flows: Arc<FlowSet>,
        config: Arc<Config>,
        stats: Arc<FlowStats>,
        store: Store,
        calendar: Arc<crate::calendar::Calendar>,
        blocks: Arc<BlockList>,
        call_id: &str,
        caller: &str,
        now: Instant,
    ) -> Option<IvrRun> {
        let flow = flow.to_owned();
        let offset =
            crate::ivr::clock::parse_offset(&config.ivr.utc_offset).unwrap_or(time::UtcOffset::UTC);
        let facts = CallFacts {
            caller: caller.to_owned(),
            wall_start: time::OffsetDateTime::now_utc().to_offset(offset),
            calendar,
            default_language: config.ivr.default_language.clone(),
        };
        let source: Arc<dyn FlowSource> = flows.clone();
        let it = Interpreter::start(source, &flow, facts, now.into_std())?;
        let (answers_tx, answers) = unbounded_channel();
        let record = IvrRecord {
            flow_hash: flows.hash(&flow).map(str::to_owned),
            flow: Some(flow),
            ..IvrRecord::default()
        };
        Some(IvrRun {
            it,
            flows,
            config,
            stats,
            store,
            call_id: call_id.to_owned(),
            playing: None,
            next_playlist: 1,
            answers_tx,
            answers,
            record,
            queue_request: None,
            transfer_request: None,
            blocks,
            block: None,
        })
    }

    /// When [`IvrRun::timeout`] is next due.
    pub fn deadline(&self) -> Option<Instant> {
        self.it.poll_timeout().map(Instant::from_std)
    }

    /// A digit from the caller.
    pub fn digit(&mut self, d: char, stream: &StreamHandle) -> Request {
        self.it.handle(Event::Digit(d), Instant::now().into_std());
        self.pump(stream)
    }

    /// A playlist finished.
    pub fn playback_done(&mut self, id: u64, stream: &StreamHandle) -> Request {
        if self.playing != Some(id) {
            // Stopped or replaced since: nobody waits for it.
            return Request::Continue;
        }
        self.playing = None;
        self.it
            .handle(Event::PlaybackDone, Instant::now().into_std());
        self.pump(stream)
    }

    /// A recording came back: write it, then go on.
    pub async fn recorded(&mut self, samples: Vec<i16>, stream: &StreamHandle) -> Request {
        let dir = self.config.ivr.recordings_dir.clone();
        let name = format!(
            "{}-{}.wav",
            sanitize(&self.call_id),
            crate::call::record::now_ms()
        );
        let path = dir.join(name);
        match tokio::task::spawn_blocking({
            let path = path.clone();
            move || write_wav(&path, &samples)
        })
        .await
        {
            Ok(Ok(())) => self.record.recording = Some(path.display().to_string()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, path = %path.display(), "voice message not saved")
            }
            Err(e) => tracing::error!(error = %e, "voice message writer failed"),
        }
        self.it
            .handle(Event::RecordingDone, Instant::now().into_std());
        self.pump(stream)
    }

    /// A lookup answered.
    pub fn answer(&mut self, answer: Answer, stream: &StreamHandle) -> Request {
        self.it
            .handle(Event::Answer(answer), Instant::now().into_std());
        self.pump(stream)
    }

    /// The digit timer is due.
    pub fn timeout(&mut self, stream: &StreamHandle) -> Request {
        self.it.handle_timeout(Instant::now().into_std());
        self.pump(stream)
    }

    /// Carries out what the interpreter asked for.
    pub fn pump(&mut self, stream: &StreamHandle) -> Request {
        let mut request = Request::Continue;
        while let Some(action) = self.it.poll_action() {
            match action {
                Action::Play { prompts, .. } => {
                    let prompts = self.block_notice(prompts);
                    let list = self.resolve(&prompts);
                    if list.is_empty() {
                        // Nothing to play: it is over at once.
                        self.it
                            .handle(Event::PlaybackDone, Instant::now().into_std());
                        continue;
                    }
                    let id = self.next_playlist;
                    self.next_playlist += 1;
                    self.playing = Some(id);
                    stream.play(Playlist {
                        id,
                        prompts: list,
                        loop_from: None,
                    });
                }
                Action::StopPlayback => {
                    self.playing = None;
                    stream.stop_playback();
                }
                Action::Ask(query) => self.ask(query),
                Action::Record { max_secs } => stream.record(Duration::from_secs(max_secs.into())),
                Action::StopRecording => stream.stop_recording(),
                Action::SurveyScore(n) => self.record.survey_score = Some(n),
                Action::CallbackRequested => self.record.callback_requested = true,
                Action::Queue {
                    queue,
                    priority,
                    prompts,
                    ..
                } => {
                    self.record.final_action = Some(format!("queue:{queue}:{priority}"));
                    self.record.queue = Some(queue.clone());
                    self.queue_request = Some((queue, priority));
                    self.hold(&prompts, stream);
                }
                Action::Transfer { target, prompts } => {
                    // The node's prompts play while the call actor dials.
                    self.record.final_action = Some(format!("transfer:{target}"));
                    self.transfer_request = Some(target);
                    self.hold(&prompts, stream);
                }
                Action::Hangup => {
                    self.record.final_action = Some(match &self.block {
                        Some(b) => format!("blocked:{}", b.id),
                        None => "hangup".into(),
                    });
                    request = Request::Hangup;
                }
            }
        }
        while let Some(trace) = self.it.poll_trace() {
            match trace {
                Trace::Entered { flow, node } => self.stats.entered(&flow, &node),
                Trace::Left { flow, node, via } => self.stats.left(&flow, &node, &via),
            }
        }
        request
    }

    /// The trunk or number a transfer node sends the caller to, once.
    pub fn take_transfer_request(&mut self) -> Option<String> {
        self.transfer_request.take()
    }

    /// The queue and priority the flow asked for, once.
    pub fn take_queue_request(&mut self) -> Option<(String, u8)> {
        self.queue_request.take()
    }

    /// Tells a waiting caller how many callers are ahead ("您前面还有 N
    /// 位来电者"; position 1 is nobody ahead), then hold music again.
    pub fn announce_position(&mut self, position: usize, stream: &StreamHandle) {
        let language = self.it.language().to_owned();
        let ahead = position.saturating_sub(1);
        let names = crate::ivr::say::prompts(
            crate::ivr::model::SayKind::QueuePosition,
            &ahead.to_string(),
        )
        .unwrap_or_default();
        let mut refs: Vec<PromptRef> = names
            .into_iter()
            .map(|name| PromptRef {
                language: language.clone(),
                name,
            })
            .collect();
        if self.config.callback.offer {
            refs.push(PromptRef {
                language: language.clone(),
                name: "callback_offer".into(),
            });
        }
        self.hold(&refs, stream);
    }

    /// Hold music alone, for a caller the agent put on hold.
    pub fn hold_music(&mut self, stream: &StreamHandle) {
        self.hold(&[], stream);
    }

    /// One of the hotline's own prompts (in the caller's language), then
    /// hold music.
    pub fn hold_after(&mut self, prompt: &str, stream: &StreamHandle) {
        let first = PromptRef {
            language: self.it.language().to_owned(),
            name: prompt.to_owned(),
        };
        self.hold(std::slice::from_ref(&first), stream);
    }

    /// The node's prompts once, then hold music until an agent (or the
    /// caller's patience) ends the wait.
    fn hold(&mut self, first: &[PromptRef], stream: &StreamHandle) {
        let mut prompts = self.resolve(first);
        let loop_from = prompts.len();
        let hold = PromptRef {
            language: self.it.language().to_owned(),
            name: self.config.ivr.hold_prompt.clone(),
        };
        prompts.extend(self.resolve(std::slice::from_ref(&hold)));
        self.playing = None;
        if prompts.is_empty() {
            stream.stop_playback();
        } else {
            stream.play(Playlist {
                id: 0,
                prompts,
                loop_from: Some(loop_from),
            });
        }
    }

    fn resolve(&self, refs: &[PromptRef]) -> Vec<Arc<Prompt>> {
        refs.iter()
            .filter_map(|p| {
                let found = self
                    .flows
                    .prompts
                    .resolve(&p.language, &self.config.ivr.default_language, &p.name);
                if found.is_none() {
                    tracing::warn!(prompt = %p.name, language = %p.language, "prompt missing; skipped");
                }
                found
            })
            .collect()
    }

    /// The reviewed block the caller was turned away under.
    pub fn block(&self) -> Option<&ActiveBlock> {
        self.block.as_ref()
    }

    /// A caller under a reviewed block hears its reason and end in place
    /// of the flow's generic `blocked_notice`.
    fn block_notice(&self, prompts: Vec<PromptRef>) -> Vec<PromptRef> {
        let Some(block) = &self.block else {
            return prompts;
        };
        let mut out = Vec::with_capacity(prompts.len() + 6);
        for p in prompts {
            if p.name == BLOCKED_NOTICE {
                let now = crate::call::record::now_ms();
                out.extend(
                    notice_prompts(block, now)
                        .into_iter()
                        .map(|name| PromptRef {
                            language: p.language.clone(),
                            name,
                        }),
                );
            } else {
                out.push(p);
            }
        }
        out
    }

    fn ask(&mut self, query: Query) {
        let tx = self.answers_tx.clone();
        match query {
            Query::Blocked { caller } => {
                // The in-memory view: the call path never waits on the
                // database for this.
                let now = crate::call::record::now_ms();
                self.block = self.blocks.current().lookup(&caller, now).cloned();
                if let Some(b) = &self.block {
                    // Known now, so a caller who hangs up during the notice
                    // is still on record as turned away.
                    self.record.final_action = Some(format!("blocked:{}", b.id));
                }
                let blocked =
                    self.block.is_some() || self.config.ivr.blocked_numbers.contains(&caller);
                tx.send(Answer::Blocked(blocked)).ok();
            }
            Query::OpenOrder { caller, days } => {
                let store = self.store.clone();
                tokio::spawn(async move {
                    let since = crate::call::record::now_ms() - i64::from(days) * 86_400_000;
                    let open = store
                        .has_open_order(&caller, since)
                        .await
                        .unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "open-order lookup failed; treated as none");
                            false
                        });
                    tx.send(Answer::OpenOrder(open)).ok();
                });
            }
            Query::OrderStatus { order_no } => {
                let store = self.store.clone();
                tokio::spawn(async move {
                    let status = store.order_status(&order_no).await.unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "order lookup failed; treated as not found");
                        None
                    });
                    tx.send(Answer::OrderStatus(status)).ok();
                });
            }
        }
    }

    /// The caller hung up: count it at the node they were at.
    pub fn caller_left(&self) {
        let at = match self.it.position() {
            Some((flow, node)) => Some((flow.to_owned(), node.to_owned())),
            // Already queued or transferring: they hung up while holding.
            None => self
                .it
                .path()
                .last()
                .and_then(|p| p.split_once(':').map(|(f, n)| (f.to_owned(), n.to_owned()))),
        };
        if let Some((flow, node)) = at {
            self.stats.hung_up(&flow, &node);
        }
    }

    /// Whether the flow has handed the caller on (queue or transfer).
    pub fn finished(&self) -> bool {
        matches!(
            self.it.outcome(),
            Some(Outcome::Queue { .. } | Outcome::Transfer { .. })
        )
    }

    /// `flow:node` ids the call has entered so far.
    pub fn path(&self) -> Vec<String> {
        self.it.path().to_vec()
    }

    /// The prompt language in use.
    pub fn language(&self) -> &str {
        self.it.language()
    }

    /// The record fields, at the end of the call.
    pub fn into_record(mut self) -> IvrRecord {
        self.record.path = self.it.path().to_vec();
        self.record.language = Some(self.it.language().to_owned());
        self.record
    }
}

/// Call-IDs may hold any character; file names may not.
pub(crate) fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn write_wav(path: &PathBuf, samples: &[i16]) -> Result<(), hound::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for s in samples {
        w.write_sample(*s)?;
    }
    w.finalize()
}
