//! The media engine: worker threads that own many RTP streams each.
//!
//! Each worker runs one `mio` poll loop: it reads every socket that is ready
//! (arrival times stay exact for jitter), and every 20 ms it paces all of its
//! streams in one pass: play the next prompt frame, pull the jitter buffer,
//! send RTCP when due, notice a silent peer. Buffers live in the worker and are
//! reused; nothing is allocated or spawned per packet. Calls hold a
//! [`StreamHandle`] and talk to the worker through a command queue plus a
//! `mio::Waker`; the worker talks back through each call's event channel.

use super::dtmf::{DtmfDetector, KeyPress};
use super::g711::Law;
use super::jitter::{JitterBuffer, Playout, PushOutcome};
use super::prompt::Prompt;
use super::rtcp::{
    ReceptionStats, build_receiver_report, build_sender_report, ntp_now_from_unix, parse_compound,
};
use super::rtp::{FRAME_SAMPLES, Packetizer, is_rtcp, parse};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc::UnboundedSender, oneshot};

const TICK: Duration = Duration::from_millis(20);
const WAKER: Token = Token(usize::MAX);
/// After this long without packets from the latched source, another source
/// may take over (the caller's NAT rebound).
const RELATCH_AFTER: Duration = Duration::from_secs(2);

/// What a stream tells its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A DTMF digit arrived as an RFC 4733 event.
    Digit(char),
    /// The peer sent no RTP for the configured timeout.
    RtpTimeout,
    /// Playlist `id` played to its end (not sent for stopped or looped lists).
    PlaybackDone(u64),
    /// A recording ended: 8 kHz samples of what the caller said.
    Recorded(Vec<i16>),
    /// The next part of a bridged recording: interleaved stereo, this
    /// stream's caller left, the bridged peer right.
    RecordedStereoPart(Vec<i16>),
    /// A bridged recording ended; its last part, shaped as above.
    RecordedStereo(Vec<i16>),
}

/// The negotiated shape of a stream; changes on re-INVITE/UPDATE.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub law: Law,
    pub payload_type: u8,
    pub dtmf_pt: Option<u8>,
    pub remote_rtp: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    /// We send media (our SDP direction allows it).
    pub send: bool,
    /// The peer sends media, so silence from it means it vanished.
    pub expect_rtp: bool,
}

/// Everything needed to open a stream.
pub struct OpenParams {
    pub config: StreamConfig,
    pub events: UnboundedSender<MediaEvent>,
    /// RTCP CNAME (RFC 3550 §6.5.1).
    pub cname: String,
}

/// Per-stream figures for the call record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStats {
    pub packets_in: u64,
    pub packets_out: u64,
    pub octets_in: u64,
    pub octets_out: u64,
    pub lost: i64,
    pub late: u64,
    pub jitter_ms: f64,
    pub dtmf_events: u64,
    /// From the peer's RTCP receiver reports about our stream.
    pub peer_lost: Option<u32>,
    pub peer_jitter_ms: Option<f64>,
}

/// Engine-wide counters, read by `/metrics`.
#[derive(Debug, Default)]
pub struct MediaCounters {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub late_packets: AtomicU64,
    pub invalid_packets: AtomicU64,
    pub dtmf_digits: AtomicU64,
    pub streams: AtomicU64,
    /// Ticks that started more than one tick late (the worker fell behind).
    pub overruns: AtomicU64,
    /// Frames not sent because their tick was skipped after an overrun; the
    /// streams' RTP clocks and prompt positions moved past them.
    pub skipped_frames: AtomicU64,
    /// Workers running under SCHED_FIFO.
    pub realtime_workers: AtomicU64,
}

/// Engine settings taken from `[media]`.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub bind_ip: IpAddr,
    pub ports: std::ops::RangeInclusive<u16>,
    pub workers: usize,
    pub jitter_frames: usize,
    pub rtp_timeout: Option<Duration>,
    pub rtcp_interval: Duration,
    /// SCHED_FIFO priority for the worker threads; 0 leaves them alone.
    pub realtime_priority: u8,
}

enum Command {
    Add(Box<Stream>),
    Update(u64, StreamConfig),
    Play(u64, Playlist),
    StopPlayback(u64),
    Record(u64, usize),
    RecordStereo(u64, usize),
    StopRecording(u64),
    Bridge(u64, u64),
    Hear(u64, Vec<u64>),
    SendDigit(u64, u8),
    Unbridge(u64),
    Close(u64, oneshot::Sender<StreamStats>),
    Shutdown,
}

/// Even RTP ports not in use, shared by the engine (takes) and workers (return).
type PortPool = Arc<Mutex<VecDeque<u16>>>;

struct WorkerLink {
    commands: Sender<Command>,
    waker: Arc<Waker>,
}

struct Inner {
    config: EngineConfig,
    workers: Vec<WorkerLink>,
    ports: PortPool,
    next_worker: AtomicUsize,
    next_id: AtomicU64,
    counters: Arc<MediaCounters>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// A cheap, cloneable handle on the running engine.
#[derive(Clone)]
pub struct MediaEngine {
    inner: Arc<Inner>,
}

/// Why two streams could not be bridged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error("the streams run on different media workers; open one beside the other")]
    OtherWorker,
}

/// One call's stream; dropping it without [`StreamHandle::close`] still frees it.
pub struct StreamHandle {
    id: u64,
    worker: usize,
    port: u16,
    engine: Option<MediaEngine>,
}

impl MediaEngine {
    /// Starts the worker threads.
    pub fn start(config: EngineConfig) -> std::io::Result<MediaEngine> {
        let workers = if config.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.workers
        };
        let counters = Arc::new(MediaCounters::default());
        let (start, end) = (*config.ports.start(), *config.ports.end());
        let ports: PortPool = Arc::new(Mutex::new((start..end).step_by(2).collect()));
        let mut links = Vec::new();
        let mut threads = Vec::new();
        let (sched_tx, sched_rx) = channel();
        let priority = config.realtime_priority;
        for n in 0..workers {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = channel();
            let worker = Worker::new(poll, rx, counters.clone(), ports.clone());
            let sched_tx = sched_tx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("media-{n}"))
                    .spawn(move || {
                        if priority > 0 {
                            sched_tx
                                .send(super::realtime::set_current_thread_fifo(priority))
                                .ok();
                        }
                        worker.run()
                    })?,
            );
            links.push(WorkerLink {
                commands: tx,
                waker,
            });
        }
        if priority > 0 {
            let results: Vec<_> = (0..workers).filter_map(|_| sched_rx.recv().ok()).collect();
            let granted = results.iter().filter(|r| r.is_ok()).count();
            counters
                .realtime_workers
                .store(granted as u64, Ordering::Relaxed);
            match results.iter().find_map(|r| r.as_ref().err()) {
                None => tracing::info!(workers, priority, "media workers run under SCHED_FIFO"),
                Some(e) => tracing::warn!(
                    error = %e,
                    granted,
                    workers,
                    priority,
                    "media workers could not get real-time priority; packet timing will \
                     suffer when the CPU is busy (run as root, grant CAP_SYS_NICE, or set \
                     LimitRTPRIO in the systemd unit; media.realtime_priority = 0 silences this)"
                ),
            }
        }
        Ok(MediaEngine {
            inner: Arc::new(Inner {
                config,
                workers: links,
                ports,
                next_worker: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                counters,
                threads: Mutex::new(threads),
            }),
        })
    }

    /// Engine-wide counters.
    pub fn counters(&self) -> &Arc<MediaCounters> {
        &self.inner.counters
    }

    /// Opens a stream on a free even/odd port pair and hands it to a worker.
    pub fn open(&self, params: OpenParams) -> std::io::Result<StreamHandle> {
        let worker =
            self.inner.next_worker.fetch_add(1, Ordering::Relaxed) % self.inner.workers.len();
        self.open_on(worker, params)
    }

    /// Opens a stream on the same worker as `other`, so the two can be
    /// bridged frame by frame without crossing threads.
    pub fn open_beside(
        &self,
        other: &StreamHandle,
        params: OpenParams,
    ) -> std::io::Result<StreamHandle> {
        self.open_on(other.worker, params)
    }

    fn open_on(&self, worker: usize, params: OpenParams) -> std::io::Result<StreamHandle> {
        let (rtp, rtcp, port) = self.bind_pair()?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let stream = Stream::new(id, port, rtp, rtcp, params, &self.inner.config);
        self.send(worker, Command::Add(Box::new(stream)));
        self.inner.counters.streams.fetch_add(1, Ordering::Relaxed);
        Ok(StreamHandle {
            id,
            worker,
            port,
            engine: Some(self.clone()),
        })
    }

    fn bind_pair(&self) -> std::io::Result<(UdpSocket, UdpSocket, u16)> {
        let ip = self.inner.config.bind_ip;
        let attempts = self.inner.ports.lock().expect("port pool").len();
        for _ in 0..attempts {
            let Some(port) = self.inner.ports.lock().expect("port pool").pop_front() else {
                break;
            };
            let rtp = UdpSocket::bind(SocketAddr::new(ip, port));
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1));
            match (rtp, rtcp) {
                (Ok(rtp), Ok(rtcp)) => return Ok((rtp, rtcp, port)),
                // Taken by someone else: keep it at the back and move on.
                _ => self.inner.ports.lock().expect("port pool").push_back(port),
            }
        }
        Err(std::io::Error::new(
            ErrorKind::AddrNotAvailable,
            "no free RTP port pair in media.rtp_port_min..media.rtp_port_max",
        ))
    }

    fn send(&self, worker: usize, command: Command) {
        let link = &self.inner.workers[worker];
        if link.commands.send(command).is_ok() {
            link.waker.wake().ok();
        }
    }

    /// Stops every worker; open streams are dropped.
    pub fn shutdown(&self) {
        for n in 0..self.inner.workers.len() {
            self.send(n, Command::Shutdown);
        }
        for t in self.inner.threads.lock().expect("threads").drain(..) {
            t.join().ok();
        }
    }
}

impl StreamHandle {
    /// The local RTP port (RTCP is this + 1).
    pub fn local_port(&self) -> u16 {
        self.port
    }

    /// Applies a renegotiated configuration (hold, new address, new codec).
    pub fn update(&self, config: StreamConfig) {
        self.command(|id| Command::Update(id, config));
    }

    /// Plays a playlist from its start, replacing what was playing.
    pub fn play(&self, list: Playlist) {
        self.command(|id| Command::Play(id, list));
    }

    /// Stops playback (silence follows); no `PlaybackDone` is sent.
    pub fn stop_playback(&self) {
        self.command(Command::StopPlayback);
    }

    /// Records what the caller says, up to `max` long; the samples come back
    /// as `MediaEvent::Recorded`.
    pub fn record(&self, max: Duration) {
        let samples = (max.as_millis() as usize) * 8;
        self.command(|id| Command::Record(id, samples));
    }

    /// Records both sides of a bridge to interleaved stereo (this stream's
    /// caller left, the peer right), up to `max`; comes back as
    /// `MediaEvent::RecordedStereo`.
    pub fn record_stereo(&self, max: Duration) {
        let samples = (max.as_millis() as usize) * 16;
        self.command(|id| Command::RecordStereo(id, samples));
    }

    /// Connects two streams' audio both ways (with transcoding when their
    /// laws differ); a prompt playing on either side goes first (music on
    /// hold). Both must be on one worker: see [`MediaEngine::open_beside`].
    pub fn bridge(&self, other: &StreamHandle) -> Result<(), BridgeError> {
        if other.worker != self.worker {
            return Err(BridgeError::OtherWorker);
        }
        let peer = other.id;
        self.command(|id| Command::Bridge(id, peer));
        Ok(())
    }

    /// Sets whose audio this stream receives, mixed (a supervisor listening
    /// to caller and agent; an agent hearing the caller and a whispering
    /// supervisor; everyone in a three-way call). Replaces what it heard
    /// before and leaves who hears it alone. All must be on one worker.
    pub fn hear(&self, sources: &[&StreamHandle]) -> Result<(), BridgeError> {
        if sources.iter().any(|s| s.worker != self.worker) {
            return Err(BridgeError::OtherWorker);
        }
        let ids = sources.iter().map(|s| s.id).collect();
        self.command(|id| Command::Hear(id, ids));
        Ok(())
    }

    /// Sends a key press to the peer as RFC 4733 telephone-events (when
    /// the peer negotiated them), in place of audio for the press's 100 ms.
    /// Presses sent while one is playing follow it in order.
    pub fn send_digit(&self, digit: char) {
        if let Some(event) = crate::media::dtmf::digit_to_event(digit) {
            self.command(|id| Command::SendDigit(id, event));
        }
    }

    /// Parts this stream from everything: it hears nobody and nobody hears
    /// it.
    pub fn unbridge(&self) {
        self.command(Command::Unbridge);
    }

    /// Ends a recording (mono or stereo) early.
    pub fn stop_recording(&self) {
        self.command(Command::StopRecording);
    }

    fn command(&self, make: impl FnOnce(u64) -> Command) {
        if let Some(engine) = &self.engine {
            engine.send(self.worker, make(self.id));
        }
    }

    /// Closes the stream and returns its final figures.
    pub async fn close(mut self) -> StreamStats {
        let Some(engine) = self.engine.take() else {
            return StreamStats::default();
        };
        let (tx, rx) = oneshot::channel();
        engine.send(self.worker, Command::Close(self.id, tx));
        rx.await.unwrap_or_default()
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            let (tx, _rx) = oneshot::channel();
            engine.send(self.worker, Command::Close(self.id, tx));
        }
    }
}

/// Prompts to play in order. With `loop_from`, playback goes back to that
/// prompt after the last one, for ever (a notice, then hold music).
#[derive(Debug, Clone)]
pub struct Playlist {
    pub id: u64,
    pub prompts: Vec<Arc<Prompt>>,
    pub loop_from: Option<usize>,
}

struct Playing {
    list: Playlist,
    prompt: usize,
    frame: usize,
}

impl Playing {
    /// The next frame, or `None` at the end of a list that does not loop.
    fn next_frame(&mut self, law: Law) -> Option<&[u8]> {
        // Bounded: a list of empty prompts must not spin the media thread.
        for _ in 0..=2 * self.list.prompts.len() {
            let prompt = self.list.prompts.get(self.prompt)?;
            if self.frame < prompt.frames() {
                self.frame += 1;
                return Some(prompt.frame(law, self.frame - 1));
            }
            self.frame = 0;
            self.prompt += 1;
            if self.prompt >= self.list.prompts.len() {
                self.prompt = self.list.loop_from?;
            }
        }
        None
    }

    /// Moves `frames` frames on, as if they had been sent; false when the
    /// list ended on the way.
    fn skip(&mut self, frames: u32, law: Law) -> bool {
        (0..frames).all(|_| self.next_frame(law).is_some())
    }
}

struct Recording {
    samples: Vec<i16>,
    max: usize,
    /// Samples already handed out in parts (stereo recordings).
    flushed: usize,
}

/// A stereo recording is handed out in parts of this many samples (1 s), so
/// an hour-long call never sits in memory and a crash loses little.
const STEREO_PART: usize = 2 * 8000;

struct Stream {
    id: u64,
    port: u16,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    config: StreamConfig,
    events: UnboundedSender<MediaEvent>,
    cname: String,
    packetizer: Packetizer,
    jitter: JitterBuffer,
    dtmf: DtmfDetector,
    reception: ReceptionStats,
    remote_ssrc: Option<u32>,
    latched: bool,
    was_sending: bool,
    started: Instant,
    last_rx: Instant,
    timeout: Option<Duration>,
    timed_out: bool,
    next_rtcp: Instant,
    rtcp_interval: Duration,
    playing: Option<Playing>,
    recording: Option<Recording>,
    stereo: Option<Recording>,
    /// The slots of the streams this one hears, mixed (same worker); one
    /// for a plain bridge.
    hears: Vec<usize>,
    /// Whether this stream hears or is heard by another, so its audio must
    /// be decoded each tick.
    mixed: bool,
    /// Key presses to send, the first one in progress.
    dtmf_out: Option<KeyPress>,
    dtmf_queue: VecDeque<u8>,
    /// What this stream's peer said in the current tick, decoded.
    heard: [i16; FRAME_SAMPLES],
    /// The bridged peer's audio, encoded in this stream's law.
    relay: [u8; FRAME_SAMPLES],
    /// Middle 32 bits of the peer's last SR NTP time, and when it came.
    last_sr: Option<(u32, Instant)>,
    stats: StreamStats,
}

impl Stream {
    fn new(
        id: u64,
        port: u16,
        rtp: UdpSocket,
        rtcp: UdpSocket,
        params: OpenParams,
        config: &EngineConfig,
    ) -> Stream {
        let now = Instant::now();
        let ssrc: u32 = rand::random();
        let packetizer = Packetizer::new(
            ssrc,
            params.config.payload_type,
            rand::random(),
            rand::random(),
        );
        Stream {
            id,
            port,
            rtp,
            rtcp,
            events: params.events,
            cname: params.cname,
            packetizer,
            jitter: JitterBuffer::new(config.jitter_frames, 1024),
            dtmf: DtmfDetector::new(),
            reception: ReceptionStats::new(),
            remote_ssrc: None,
            latched: false,
            was_sending: params.config.send,
            started: now,
            last_rx: now,
            timeout: config.rtp_timeout,
            timed_out: false,
            // Stagger the first report so streams opened together do not all
            // report in the same tick.
            next_rtcp: now
                + config.rtcp_interval / 2
                + Duration::from_millis(u64::from(port % 1000)),
            rtcp_interval: config.rtcp_interval,
            playing: None,
            recording: None,
            stereo: None,
            hears: Vec::new(),
            mixed: false,
            dtmf_out: None,
            dtmf_queue: VecDeque::new(),
            heard: [0; FRAME_SAMPLES],
            relay: [0; FRAME_SAMPLES],
            last_sr: None,
            stats: StreamStats::default(),
            config: params.config,
        }
    }

    fn apply(&mut self, config: StreamConfig, now: Instant) {
        if config.remote_rtp != self.config.remote_rtp {
            self.latched = false;
        }
        if config.payload_type != self.config.payload_type {
            self.packetizer.set_payload_type(config.payload_type);
        }
        if !self.config.expect_rtp && config.expect_rtp {
            // Coming off hold: give the peer a full timeout to start again.
            self.last_rx = now;
            self.timed_out = false;
        }
        self.config = config;
    }

    fn on_rtp(&mut self, buf: &[u8], from: SocketAddr, now: Instant, counters: &mut LocalCounters) {
        if is_rtcp(buf) {
            // RTCP multiplexed on the RTP port (RFC 5761).
            self.on_rtcp(buf, now);
            return;
        }
        let Ok(packet) = parse(buf) else {
            counters.invalid += 1;
            return;
        };
        match self.config.remote_rtp {
            Some(remote) if remote == from => {}
            // Symmetric RTP (RFC 4961): answer where the caller's packets
            // really come from, which is what gets audio through NAT.
            _ if !self.latched || now.duration_since(self.last_rx) > RELATCH_AFTER => {
                self.config.remote_rtp = Some(from);
                self.config.remote_rtcp =
                    Some(SocketAddr::new(from.ip(), from.port().wrapping_add(1)));
                self.latched = true;
            }
            _ => {
                counters.invalid += 1;
                return;
            }
        }
        if self.remote_ssrc != Some(packet.ssrc) {
            if self.remote_ssrc.is_some() {
                self.reception = ReceptionStats::new();
                self.jitter.reset();
            }
            self.remote_ssrc = Some(packet.ssrc);
        }
        self.last_rx = now;
        self.timed_out = false;
        self.stats.packets_in += 1;
        self.stats.octets_in += packet.payload.len() as u64;
        counters.packets_in += 1;
        if Some(packet.payload_type) == self.config.dtmf_pt {
            self.stats.dtmf_events += 1;
            if let Some(digit) = self.dtmf.on_rtp(packet.timestamp, packet.payload) {
                counters.digits += 1;
                self.events.send(MediaEvent::Digit(digit)).ok();
            }
            return;
        }
        if packet.payload_type != self.config.payload_type {
            return;
        }
        let arrival = (now.duration_since(self.started).as_micros() * 8 / 1000) as u32;
        self.reception.on_rtp(packet.seq, packet.timestamp, arrival);
        if let PushOutcome::Late = self
            .jitter
            .push(packet.seq, packet.timestamp, packet.payload)
        {
            self.stats.late += 1;
            counters.late += 1;
        }
    }

    fn on_rtcp(&mut self, buf: &[u8], now: Instant) {
        let Ok(parsed) = parse_compound(buf) else {
            return;
        };
        if let Some(ntp) = parsed.sender_ntp {
            self.last_sr = Some(((ntp >> 16) as u32, now));
        }
        let ours = self.packetizer.ssrc();
        if let Some(r) = parsed.reports.iter().find(|r| r.ssrc == ours) {
            self.stats.peer_lost = Some(r.total_lost);
            self.stats.peer_jitter_ms = Some(f64::from(r.jitter) / 8.0);
        }
    }

    /// First half of a tick: take this tick's frame from the jitter buffer
    /// (one per tick whether or not anyone listens, which keeps its clock
    /// and late/missing counts honest), decode it, feed a recording.
    fn listen(&mut self) -> &[i16; FRAME_SAMPLES] {
        let law = self.config.law;
        let frame = self.jitter.pop();
        // Decoding is for a bridged peer or a recording; most streams (IVR,
        // hold) have neither, and the hot loop skips the work for them.
        if !self.mixed && self.recording.is_none() && self.stereo.is_none() {
            return &self.heard;
        }
        match frame {
            Playout::Frame(frame) => law.decode_frame(frame, &mut self.heard),
            // Lost or not started: silence keeps the timing.
            _ => self.heard = [0; FRAME_SAMPLES],
        }
        if let Some(rec) = &mut self.recording {
            rec.samples.extend_from_slice(&self.heard);
            if rec.samples.len() >= rec.max {
                let rec = self.recording.take().expect("just checked");
                self.events.send(MediaEvent::Recorded(rec.samples)).ok();
            }
        }
        &self.heard
    }

    /// Second half of a tick: send this stream's frame (a prompt, else the
    /// bridged peer's audio in this stream's law, else silence), RTCP when
    /// due, and notice a silent peer.
    fn tick(
        &mut self,
        now: Instant,
        peer: Option<&[i16; FRAME_SAMPLES]>,
        out: &mut [u8],
        rtcp_buf: &mut Vec<u8>,
        counters: &mut LocalCounters,
    ) {
        let law = self.config.law;
        if let Some(rec) = &mut self.stereo {
            let other = peer.copied().unwrap_or([0; FRAME_SAMPLES]);
            for (l, r) in self.heard.iter().zip(other.iter()) {
                rec.samples.push(*l);
                rec.samples.push(*r);
            }
            if rec.flushed + rec.samples.len() >= rec.max {
                let rec = self.stereo.take().expect("just checked");
                self.events
                    .send(MediaEvent::RecordedStereo(rec.samples))
                    .ok();
            } else if rec.samples.len() >= STEREO_PART {
                let part = std::mem::replace(&mut rec.samples, Vec::with_capacity(STEREO_PART));
                rec.flushed += part.len();
                self.events.send(MediaEvent::RecordedStereoPart(part)).ok();
            }
        }
        if let Some(peer) = peer {
            law.encode_frame(peer, &mut self.relay);
        }

        let silence = [law.silence(); FRAME_SAMPLES];
        let mut finished = None;
        let payload: &[u8] = match &mut self.playing {
            Some(playing) => match playing.next_frame(law) {
                Some(frame) => frame,
                None => {
                    finished = Some(playing.list.id);
                    &silence
                }
            },
            None if peer.is_some() => &self.relay,
            None => &silence,
        };
        let remote = self.config.remote_rtp;
        if self.dtmf_out.is_none()
            && let Some(event) = self.dtmf_queue.pop_front()
        {
            self.dtmf_out = Some(KeyPress::from_event(event));
        }
        match (self.config.send, remote) {
            (true, Some(remote)) if self.dtmf_out.is_some() && self.config.dtmf_pt.is_some() => {
                self.send_dtmf(remote, out, counters);
                self.was_sending = true;
            }
            (true, Some(remote)) => {
                // The peer cannot take telephone-events: presses are dropped.
                self.dtmf_out = None;
                if !self.was_sending {
                    self.packetizer.mark_next();
                }
                let len = self.packetizer.write(payload, FRAME_SAMPLES as u32, out);
                if len > 0 && self.rtp.send_to(&out[..len], remote).is_ok() {
                    self.stats.packets_out += 1;
                    self.stats.octets_out += payload.len() as u64;
                    counters.packets_out += 1;
                }
                self.was_sending = true;
            }
            _ => {
                // On hold: keep the RTP clock running so timestamps stay true.
                self.packetizer.skip(FRAME_SAMPLES as u32);
                self.was_sending = false;
            }
        }
        if let Some(id) = finished {
            self.playing = None;
            self.events.send(MediaEvent::PlaybackDone(id)).ok();
        }

        if now >= self.next_rtcp {
            self.next_rtcp = now + self.rtcp_interval;
            self.send_rtcp(now, rtcp_buf);
        }

        if let Some(timeout) = self.timeout
            && self.config.expect_rtp
            && !self.timed_out
            && now.duration_since(self.last_rx) > timeout
        {
            self.timed_out = true;
            self.events.send(MediaEvent::RtpTimeout).ok();
        }
    }

    /// One tick of a key press: growing-duration event packets, then the end
    /// packet three times, all with the press's start timestamp; then the
    /// audio clock jumps past the press so audio resumes in time.
    fn send_dtmf(&mut self, remote: SocketAddr, out: &mut [u8], counters: &mut LocalCounters) {
        let (Some(pt), Some(dtmf)) = (self.config.dtmf_pt, self.dtmf_out.as_mut()) else {
            return;
        };
        let packet = dtmf.next_packet();
        if packet.first {
            self.packetizer.mark_next();
        }
        let audio_pt = self.packetizer.payload_type();
        self.packetizer.set_payload_type(pt);
        let len = self.packetizer.write(&packet.payload, 0, out);
        self.packetizer.set_payload_type(audio_pt);
        if len > 0 && self.rtp.send_to(&out[..len], remote).is_ok() {
            self.stats.packets_out += 1;
            counters.packets_out += 1;
        }
        if packet.last {
            self.dtmf_out = None;
            self.packetizer.skip(KeyPress::SAMPLES);
        }
    }

    /// Ticks the worker missed: the frames are not sent late, but the RTP
    /// timestamp and the prompt position move on as if they had been, so a
    /// phone's playout stays in step with the sender's clock.
    fn skip_frames(&mut self, frames: u32) {
        // A stall longer than a prompt's worth is rare; cap the walk through
        // the playlist at ten seconds of frames.
        let walk = frames.min(500);
        if let Some(playing) = &mut self.playing
            && !playing.skip(walk, self.config.law)
        {
            let id = playing.list.id;
            self.playing = None;
            self.events.send(MediaEvent::PlaybackDone(id)).ok();
        }
        self.packetizer
            .skip(frames.saturating_mul(FRAME_SAMPLES as u32));
    }

    fn send_rtcp(&mut self, now: Instant, buf: &mut Vec<u8>) {
        let Some(dest) = self.config.remote_rtcp else {
            return;
        };
        let report = self.remote_ssrc.map(|ssrc| {
            let (lsr, dlsr) = match self.last_sr {
                // DLSR is in 1/65536 s units.
                Some((lsr, at)) => (lsr, (now.duration_since(at).as_secs_f64() * 65536.0) as u32),
                None => (0, 0),
            };
            self.reception.report_block(ssrc, lsr, dlsr)
        });
        let ssrc = self.packetizer.ssrc();
        let built = if self.packetizer.packets_sent() > 0 {
            let unix = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            build_sender_report(
                buf,
                ssrc,
                ntp_now_from_unix(unix),
                self.packetizer.timestamp(),
                self.packetizer.packets_sent(),
                self.packetizer.octets_sent(),
                report,
                &self.cname,
            )
        } else {
            build_receiver_report(buf, ssrc, report, &self.cname)
        };
        if built.is_ok() {
            self.rtcp.send_to(buf, dest).ok();
        }
    }

    fn final_stats(&self) -> StreamStats {
        let mut stats = self.stats.clone();
        stats.lost = self.reception.cumulative_lost();
        stats.jitter_ms = self.reception.jitter_ms(8000);
        stats
    }
}

#[derive(Default)]
struct LocalCounters {
    packets_in: u64,
    packets_out: u64,
    late: u64,
    invalid: u64,
    digits: u64,
}

impl LocalCounters {
    fn publish(&mut self, shared: &MediaCounters) {
        let pairs = [
            (&mut self.packets_in, &shared.packets_in),
            (&mut self.packets_out, &shared.packets_out),
            (&mut self.late, &shared.late_packets),
            (&mut self.invalid, &shared.invalid_packets),
            (&mut self.digits, &shared.dtmf_digits),
        ];
        for (local, shared) in pairs {
            if *local > 0 {
                shared.fetch_add(std::mem::take(local), Ordering::Relaxed);
            }
        }
    }
}

struct Worker {
    poll: Poll,
    commands: Receiver<Command>,
    counters: Arc<MediaCounters>,
    local: LocalCounters,
    slots: Vec<Option<Stream>>,
    free: Vec<usize>,
    by_id: HashMap<u64, usize>,
    ports: PortPool,
    /// Each slot's decoded frame of the current tick, for bridged peers.
    heard: Vec<[i16; FRAME_SAMPLES]>,
}

impl Worker {
    fn new(
        poll: Poll,
        commands: Receiver<Command>,
        counters: Arc<MediaCounters>,
        ports: PortPool,
    ) -> Worker {
        Worker {
            poll,
            commands,
            counters,
            local: LocalCounters::default(),
            slots: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            ports,
            heard: Vec::new(),
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; 2048];
        let mut out = vec![0u8; 512];
        let mut rtcp_buf = Vec::with_capacity(256);
        // A stream hearing several others gets their sum here.
        let mut mix = [0i16; FRAME_SAMPLES];
        let mut next_tick = Instant::now() + TICK;
        loop {
            let now = Instant::now();
            let wait = next_tick.saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "media poll failed");
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(t) => self.read_ready(t, &mut buf, now),
                }
            }
            if !self.drain_commands(now) {
                return;
            }
            if now >= next_tick {
                // Everyone listens first, so a bridged stream sends what
                // its peer heard in this same tick.
                self.heard.resize(self.slots.len(), [0; FRAME_SAMPLES]);
                for (slot, stream) in self.slots.iter_mut().enumerate() {
                    if let Some(stream) = stream {
                        self.heard[slot] = *stream.listen();
                    }
                }
                for stream in self.slots.iter_mut().flatten() {
                    let peer = match stream.hears.as_slice() {
                        [] => None,
                        [one] => Some(&self.heard[*one]),
                        several => {
                            mix.fill(0);
                            for &p in several {
                                for (m, s) in mix.iter_mut().zip(self.heard[p].iter()) {
                                    *m = m.saturating_add(*s);
                                }
                            }
                            Some(&mix)
                        }
                    };
                    stream.tick(now, peer, &mut out, &mut rtcp_buf, &mut self.local);
                }
                self.local.publish(&self.counters);
                next_tick += TICK;
                if now > next_tick + TICK {
                    // Fell behind (machine stalled): skip ahead rather than
                    // bursting the backlog at the callers, but move every
                    // stream's clock past the skipped frames so RTP time
                    // keeps pace with the wall clock.
                    let skipped = (now - next_tick).as_nanos() / TICK.as_nanos() + 1;
                    let skipped = u32::try_from(skipped).unwrap_or(u32::MAX);
                    for stream in self.slots.iter_mut().flatten() {
                        stream.skip_frames(skipped);
                    }
                    self.counters.overruns.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .skipped_frames
                        .fetch_add(u64::from(skipped), Ordering::Relaxed);
                    next_tick += TICK * skipped;
                }
            }
        }
    }

    fn read_ready(&mut self, token: usize, buf: &mut [u8], now: Instant) {
        let (slot, is_rtcp_socket) = (token / 2, token % 2 == 1);
        let Some(Some(stream)) = self.slots.get_mut(slot) else {
            return;
        };
        // Edge-triggered: read until the socket is empty.
        loop {
            let socket = if is_rtcp_socket {
                &stream.rtcp
            } else {
                &stream.rtp
            };
            match socket.recv_from(buf) {
                Ok((len, from)) => {
                    if is_rtcp_socket {
                        stream.on_rtcp(&buf[..len], now);
                    } else {
                        stream.on_rtp(&buf[..len], from, now, &mut self.local);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // ICMP port unreachable from an earlier send and the like.
                Err(_) => continue,
            }
        }
    }

    /// Returns false on shutdown.
    fn drain_commands(&mut self, now: Instant) -> bool {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Add(stream) => self.add(*stream),
                Command::Update(id, config) => {
                    if let Some(stream) = self.stream(id) {
                        stream.apply(config, now);
                    }
                }
                Command::Play(id, list) => {
                    if let Some(stream) = self.stream(id) {
                        stream.playing = Some(Playing {
                            list,
                            prompt: 0,
                            frame: 0,
                        });
                    }
                }
                Command::StopPlayback(id) => {
                    if let Some(stream) = self.stream(id) {
                        stream.playing = None;
                    }
                }
                Command::Record(id, max_samples) => {
                    if let Some(stream) = self.stream(id) {
                        stream.recording = Some(Recording {
                            samples: Vec::with_capacity(max_samples),
                            max: max_samples,
                            flushed: 0,
                        });
                    }
                }
                Command::RecordStereo(id, max_samples) => {
                    if let Some(stream) = self.stream(id) {
                        stream.stereo = Some(Recording {
                            samples: Vec::with_capacity(max_samples.min(STEREO_PART)),
                            max: max_samples,
                            flushed: 0,
                        });
                    }
                }
                Command::StopRecording(id) => {
                    if let Some(stream) = self.stream(id) {
                        if let Some(rec) = stream.recording.take() {
                            stream.events.send(MediaEvent::Recorded(rec.samples)).ok();
                        }
                        if let Some(rec) = stream.stereo.take() {
                            stream
                                .events
                                .send(MediaEvent::RecordedStereo(rec.samples))
                                .ok();
                        }
                    }
                }
                Command::Bridge(a, b) => {
                    if let (Some(&sa), Some(&sb)) = (self.by_id.get(&a), self.by_id.get(&b)) {
                        self.set_hears(sa, vec![sb]);
                        self.set_hears(sb, vec![sa]);
                    }
                }
                Command::SendDigit(id, event) => {
                    if let Some(stream) = self.stream(id) {
                        stream.dtmf_queue.push_back(event);
                    }
                }
                Command::Hear(id, sources) => {
                    if let Some(&slot) = self.by_id.get(&id) {
                        let slots = sources
                            .iter()
                            .filter_map(|s| self.by_id.get(s).copied())
                            .filter(|&s| s != slot)
                            .collect();
                        self.set_hears(slot, slots);
                    }
                }
                Command::Unbridge(id) => {
                    if let Some(&slot) = self.by_id.get(&id) {
                        self.unbridge(slot);
                    }
                }
                Command::Close(id, reply) => {
                    if let Some(stats) = self.remove(id) {
                        reply.send(stats).ok();
                    }
                }
                Command::Shutdown => return false,
            }
        }
        true
    }

    /// Parts a stream from everything: it hears nobody, nobody hears it.
    /// Also run before a slot is reused, so a new call never gets an old
    /// call's audio.
    fn unbridge(&mut self, slot: usize) {
        for s in self.slots.iter_mut().flatten() {
            s.hears.retain(|&p| p != slot);
        }
        if let Some(s) = self.slots[slot].as_mut() {
            s.hears.clear();
        }
        self.refresh_mixed();
    }

    fn set_hears(&mut self, slot: usize, sources: Vec<usize>) {
        if let Some(s) = self.slots[slot].as_mut() {
            s.hears = sources;
        }
        self.refresh_mixed();
    }

    /// Marks the streams whose audio must be decoded: commands are rare, so
    /// a scan here keeps the per-tick check to one flag.
    fn refresh_mixed(&mut self) {
        let mut heard = vec![false; self.slots.len()];
        for s in self.slots.iter().flatten() {
            for &p in &s.hears {
                if let Some(h) = heard.get_mut(p) {
                    *h = true;
                }
            }
        }
        for (slot, s) in self.slots.iter_mut().enumerate() {
            if let Some(s) = s {
                s.mixed = !s.hears.is_empty() || heard[slot];
            }
        }
    }

    fn stream(&mut self, id: u64) -> Option<&mut Stream> {
        let slot = *self.by_id.get(&id)?;
        self.slots[slot].as_mut()
    }

    fn add(&mut self, mut stream: Stream) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let registry = self.poll.registry();
        let ok = registry
            .register(&mut stream.rtp, Token(slot * 2), Interest::READABLE)
            .and_then(|_| {
                registry.register(&mut stream.rtcp, Token(slot * 2 + 1), Interest::READABLE)
            });
        if let Err(e) = ok {
            tracing::error!(error = %e, "cannot register RTP socket");
        }
        self.by_id.insert(stream.id, slot);
        self.slots[slot] = Some(stream);
    }

    fn remove(&mut self, id: u64) -> Option<StreamStats> {
        let slot = *self.by_id.get(&id)?;
        self.unbridge(slot);
        self.by_id.remove(&id);
        let mut stream = self.slots[slot].take()?;
        self.free.push(slot);
        let registry = self.poll.registry();
        registry.deregister(&mut stream.rtp).ok();
        registry.deregister(&mut stream.rtcp).ok();
        self.counters.streams.fetch_sub(1, Ordering::Relaxed);
        let stats = stream.final_stats();
        let port = stream.port;
        drop(stream);
        // Back of the queue, so a stray late packet for the old call is
        // unlikely to land in the next one.
        self.ports.lock().expect("port pool").push_back(port);
        Some(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> MediaEngine {
        MediaEngine::start(EngineConfig {
            bind_ip: "127.0.0.1".parse().unwrap(),
            ports: 41000..=41999,
            workers: 1,
            jitter_frames: 3,
            rtp_timeout: Some(Duration::from_millis(300)),
            rtcp_interval: Duration::from_secs(5),
            realtime_priority: 0,
        })
        .unwrap()
    }

    fn config(remote: SocketAddr, send: bool) -> StreamConfig {
        StreamConfig {
            law: Law::Ulaw,
            payload_type: 0,
            dtmf_pt: Some(101),
            remote_rtp: Some(remote),
            remote_rtcp: None,
            send,
            expect_rtp: true,
        }
    }

    fn count_for(socket: &std::net::UdpSocket, d: Duration) -> usize {
        socket
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let end = Instant::now() + d;
        let mut n = 0;
        let mut buf = [0u8; 512];
        while Instant::now() < end {
            if socket.recv_from(&mut buf).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// A key press goes out as RFC 4733 events: 5 packets of growing
    /// duration and 3 end packets, one timestamp, the first marked; audio
    /// resumes with its clock moved past the press; a receiver sees one key.
    #[tokio::test]
    async fn digits_are_sent_as_telephone_events() {
        let engine = engine();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let stream = engine
            .open(OpenParams {
                config: config(peer.local_addr().unwrap(), true),
                events: tokio::sync::mpsc::unbounded_channel().0,
                cname: "t".into(),
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(60));
        stream.send_digit('5');
        peer.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut packets = Vec::new();
        let end = Instant::now() + Duration::from_millis(400);
        let mut buf = [0u8; 512];
        while Instant::now() < end {
            if let Ok((n, _)) = peer.recv_from(&mut buf) {
                packets.push(
                    crate::media::rtp::parse(&buf[..n])
                        .map(|p| {
                            (
                                p.payload_type,
                                p.marker,
                                p.seq,
                                p.timestamp,
                                p.payload.to_vec(),
                            )
                        })
                        .unwrap(),
                );
            }
        }
        let events: Vec<_> = packets.iter().filter(|p| p.0 == 101).collect();
        assert_eq!(events.len(), 8, "{packets:?}");
        let ts = events[0].3;
        assert!(events[0].1, "the first event packet is marked");
        assert!(events.iter().all(|p| p.3 == ts && p.4[0] == 5));
        let ends: Vec<bool> = events.iter().map(|p| p.4[1] & 0x80 != 0).collect();
        assert_eq!(ends, [false, false, false, false, false, true, true, true]);
        let durations: Vec<u16> = events
            .iter()
            .map(|p| u16::from_be_bytes([p.4[2], p.4[3]]))
            .collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800, 800]);
        let after = packets
            .iter()
            .skip_while(|p| p.0 != 101)
            .find(|p| p.0 == 0)
            .expect("audio after the press");
        assert!(
            after.3.wrapping_sub(ts) >= 8 * 160,
            "audio clock moved past the press"
        );
        let mut detector = crate::media::dtmf::DtmfDetector::new();
        let keys: Vec<char> = events
            .iter()
            .filter_map(|p| detector.on_rtp(p.3, &p.4))
            .collect();
        assert_eq!(keys, ['5']);
        stream.close().await;
        engine.shutdown();
    }

    #[test]
    fn skipping_frames_moves_through_the_playlist() {
        let prompt = Arc::new(Prompt::from_pcm("t".into(), vec![0; 160 * 3]));
        let list = |loop_from| Playlist {
            id: 1,
            prompts: vec![prompt.clone(), prompt.clone()],
            loop_from,
        };
        let mut playing = Playing {
            list: list(None),
            prompt: 0,
            frame: 0,
        };
        assert!(playing.skip(4, Law::Ulaw));
        assert_eq!((playing.prompt, playing.frame), (1, 1));
        assert!(playing.next_frame(Law::Ulaw).is_some());
        assert!(!playing.skip(2, Law::Ulaw), "a list that ends says so");
        let mut looping = Playing {
            list: list(Some(1)),
            prompt: 0,
            frame: 0,
        };
        assert!(looping.skip(6 + 3 * 100 + 1, Law::Ulaw));
        assert_eq!((looping.prompt, looping.frame), (1, 1));
    }

    #[test]
    fn workers_take_real_time_priority_when_allowed() {
        let engine = MediaEngine::start(EngineConfig {
            bind_ip: "127.0.0.1".parse().unwrap(),
            ports: 42000..=42099,
            workers: 2,
            jitter_frames: 3,
            rtp_timeout: None,
            rtcp_interval: Duration::from_secs(5),
            realtime_priority: 3,
        })
        .unwrap();
        let granted = engine.counters().realtime_workers.load(Ordering::Relaxed);
        // Root or CAP_SYS_NICE gets both workers; otherwise the engine runs
        // on with none (and has warned).
        let allowed =
            std::thread::spawn(|| crate::media::realtime::set_current_thread_fifo(3).is_ok())
                .join()
                .unwrap();
        assert_eq!(granted, if allowed { 2 } else { 0 });
        engine.shutdown();
    }

    #[tokio::test]
    async fn sends_pauses_on_hold_and_reports_silence() {
        let engine = engine();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let stream = engine
            .open(OpenParams {
                config: config(peer.local_addr().unwrap(), true),
                events: tx,
                cname: "t".into(),
            })
            .unwrap();
        let tone = Arc::new(Prompt::from_pcm("t".into(), vec![1000; 1600]));
        stream.play(Playlist {
            id: 1,
            prompts: vec![tone],
            loop_from: Some(0),
        });
        let sent = count_for(&peer, Duration::from_millis(400));
        assert!((15..=25).contains(&sent), "{sent} packets in 400 ms");
        stream.update(config(peer.local_addr().unwrap(), false));
        // Packets sent before the hold took effect may still sit in the
        // socket: read them away first.
        std::thread::sleep(Duration::from_millis(60));
        count_for(&peer, Duration::from_millis(50));
        let held = count_for(&peer, Duration::from_millis(400));
        assert_eq!(held, 0, "still sending on hold");
        // The peer never sent anything: the timeout fires once.
        let ev = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap();
        assert_eq!(ev, Some(MediaEvent::RtpTimeout));
        let stats = stream.close().await;
        assert!(stats.packets_out >= 15);
        engine.shutdown();
    }

    #[tokio::test]
    async fn playlist_ends_with_an_event_and_recording_returns_samples() {
        let engine = engine();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let stream = engine
            .open(OpenParams {
                config: config(peer.local_addr().unwrap(), true),
                events: tx,
                cname: "t".into(),
            })
            .unwrap();
        // Two prompts of 5 frames each: done after about 200 ms.
        let short = Arc::new(Prompt::from_pcm("s".into(), vec![500; 800]));
        let started = Instant::now();
        stream.play(Playlist {
            id: 7,
            prompts: vec![short.clone(), short],
            loop_from: None,
        });
        let ev = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap();
        assert_eq!(ev, Some(MediaEvent::PlaybackDone(7)));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(160) && took < Duration::from_millis(600),
            "{took:?}"
        );

        // The peer talks (a 1 kHz-ish square in u-law); 300 ms are recorded.
        stream.record(Duration::from_millis(300));
        let me = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = SocketAddr::new("127.0.0.1".parse().unwrap(), stream.local_port());
        let loud: Vec<u8> = (0..160)
            .map(|i| if i % 8 < 4 { 0x80 } else { 0x00 })
            .collect();
        let sender = std::thread::spawn(move || {
            for seq in 0..40u16 {
                let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
                p[2..4].copy_from_slice(&seq.to_be_bytes());
                p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                p.extend_from_slice(&loud);
                me.send_to(&p, target).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let samples = loop {
            match tokio::time::timeout(Duration::from_secs(3), rx.recv())
                .await
                .unwrap()
            {
                Some(MediaEvent::Recorded(samples)) => break samples,
                Some(_) => continue,
                None => panic!("stream gone"),
            }
        };
        sender.join().unwrap();
        assert_eq!(samples.len(), 2400);
        let loud_samples = samples.iter().filter(|s| s.abs() > 1000).count();
        assert!(loud_samples > 500, "recording is silent: {loud_samples}");
        stream.close().await;
        engine.shutdown();
    }

    /// A peer that sends a tone in `law` to `to` and keeps what it hears.
    fn tone_peer(
        law: Law,
        freq: f32,
        to: SocketAddr,
        secs: f32,
    ) -> (std::thread::JoinHandle<Vec<i16>>, SocketAddr) {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = socket.local_addr().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let handle = std::thread::spawn(move || {
            let mut heard = Vec::new();
            let mut buf = [0u8; 512];
            let frames = (secs * 50.0) as u32;
            let mut next = Instant::now();
            for n in 0..frames {
                let pcm: Vec<i16> = (0..160)
                    .map(|i| {
                        let t = (n * 160 + i) as f32 / 8000.0;
                        (8000.0 * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
                    })
                    .collect();
                let mut payload = [0u8; 160];
                law.encode_frame(&pcm, &mut payload);
                let mut p = vec![0x80, law.payload_type(), 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
                p[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                p[4..8].copy_from_slice(&(n * 160).to_be_bytes());
                p.extend_from_slice(&payload);
                socket.send_to(&p, to).unwrap();
                next += Duration::from_millis(20);
                while Instant::now() < next {
                    if let Ok((len, _)) = socket.recv_from(&mut buf)
                        && len > 12
                    {
                        let mut pcm = [0i16; 160];
                        law.decode_frame(&buf[12..len], &mut pcm);
                        heard.extend_from_slice(&pcm[..len - 12]);
                    }
                }
            }
            heard
        });
        (handle, me)
    }

    fn dominant(pcm: &[i16]) -> (f32, f32) {
        use crate::media::dtmf::goertzel_power;
        let tail = &pcm[pcm.len() / 2..];
        (
            goertzel_power(tail, 1000.0, 8000.0),
            goertzel_power(tail, 2000.0, 8000.0),
        )
    }

    /// A supervisor whispering: the agent hears the caller and the
    /// supervisor mixed, the caller hears only the agent, the supervisor
    /// hears both. Then a slot freed by a closed stream carries no audio to
    /// its old listeners.
    #[tokio::test]
    async fn whisper_mixes_for_the_agent_only() {
        use crate::media::dtmf::goertzel_power;
        let engine = MediaEngine::start(EngineConfig {
            bind_ip: "127.0.0.1".parse().unwrap(),
            ports: 43000..=43999,
            workers: 1,
            jitter_frames: 3,
            rtp_timeout: None,
            rtcp_interval: Duration::from_secs(5),
            realtime_priority: 0,
        })
        .unwrap();
        let open = || {
            engine
                .open(OpenParams {
                    config: StreamConfig {
                        law: Law::Ulaw,
                        payload_type: 0,
                        dtmf_pt: None,
                        remote_rtp: None,
                        remote_rtcp: None,
                        send: true,
                        expect_rtp: true,
                    },
                    events: tokio::sync::mpsc::unbounded_channel().0,
                    cname: "t".into(),
                })
                .unwrap()
        };
        let (caller, agent, supervisor) = (open(), open(), open());
        caller.bridge(&agent).unwrap();
        agent.hear(&[&caller, &supervisor]).unwrap();
        supervisor.hear(&[&caller, &agent]).unwrap();
        let at = |s: &StreamHandle| SocketAddr::new("127.0.0.1".parse().unwrap(), s.local_port());
        let (c, _) = tone_peer(Law::Ulaw, 1000.0, at(&caller), 1.5);
        let (a, _) = tone_peer(Law::Ulaw, 2000.0, at(&agent), 1.5);
        let (s, _) = tone_peer(Law::Ulaw, 3000.0, at(&supervisor), 1.5);
        let power = |pcm: &[i16], f: f32| goertzel_power(&pcm[pcm.len() / 2..], f, 8000.0);
        let heard = |h: std::thread::JoinHandle<Vec<i16>>| {
            let pcm = h.join().unwrap();
            [
                power(&pcm, 1000.0),
                power(&pcm, 2000.0),
                power(&pcm, 3000.0),
            ]
        };
        let (by_caller, by_agent, by_supervisor) = (heard(c), heard(a), heard(s));
        assert!(
            by_caller[1] > 100.0 * by_caller[2],
            "the caller must not hear the whisper: {by_caller:?}"
        );
        assert!(
            by_agent[0] > 10.0 * by_agent[1] && by_agent[2] > 10.0 * by_agent[1],
            "the agent hears caller and supervisor: {by_agent:?}"
        );
        assert!(
            by_supervisor[0] > 10.0 * by_supervisor[2]
                && by_supervisor[1] > 10.0 * by_supervisor[2],
            "the supervisor hears caller and agent: {by_supervisor:?}"
        );
        // The supervisor leaves; a new stream takes its slot and must not
        // reach the agent.
        supervisor.close().await;
        let newcomer = open();
        let (a, _) = tone_peer(Law::Ulaw, 2000.0, at(&agent), 1.0);
        let (n, _) = tone_peer(Law::Ulaw, 3000.0, at(&newcomer), 1.0);
        let by_agent = heard(a);
        n.join().unwrap();
        assert!(
            by_agent[2] * 100.0 < by_agent[0].max(1.0) || by_agent[2] < 1.0,
            "a reused slot leaked into the agent: {by_agent:?}"
        );
        caller.close().await;
        agent.close().await;
        newcomer.close().await;
        engine.shutdown();
    }

    #[tokio::test]
    async fn bridged_streams_carry_both_ways_with_transcoding_and_stereo_recording() {
        let engine = MediaEngine::start(EngineConfig {
            bind_ip: "127.0.0.1".parse().unwrap(),
            ports: 42000..=42999,
            workers: 2,
            jitter_frames: 3,
            rtp_timeout: None,
            rtcp_interval: Duration::from_secs(5),
            realtime_priority: 0,
        })
        .unwrap();
        let (tx_a, mut rx_a) = tokio::sync::mpsc::unbounded_channel();
        let (tx_b, _rx_b) = tokio::sync::mpsc::unbounded_channel();
        let open = |law: Law, events, beside: Option<&StreamHandle>| {
            let params = OpenParams {
                config: StreamConfig {
                    law,
                    payload_type: law.payload_type(),
                    dtmf_pt: None,
                    remote_rtp: None,
                    remote_rtcp: None,
                    send: true,
                    expect_rtp: true,
                },
                events,
                cname: "t".into(),
            };
            match beside {
                Some(other) => engine.open_beside(other, params).unwrap(),
                None => engine.open(params).unwrap(),
            }
        };
        // The caller speaks u-law, the agent A-law.
        let caller = open(Law::Ulaw, tx_a, None);
        let agent = open(Law::Alaw, tx_b, Some(&caller));
        let other_worker = open(Law::Ulaw, tokio::sync::mpsc::unbounded_channel().0, None);
        assert_eq!(agent.bridge(&other_worker), Err(BridgeError::OtherWorker));
        caller.bridge(&agent).unwrap();
        caller.record_stereo(Duration::from_millis(1000));
        let at = |s: &StreamHandle| SocketAddr::new("127.0.0.1".parse().unwrap(), s.local_port());
        let (a, _) = tone_peer(Law::Ulaw, 1000.0, at(&caller), 1.5);
        let (b, _) = tone_peer(Law::Alaw, 2000.0, at(&agent), 1.5);
        let heard_by_caller = a.join().unwrap();
        let heard_by_agent = b.join().unwrap();
        let (c1k, c2k) = dominant(&heard_by_caller);
        assert!(
            c2k > 10.0 * c1k,
            "the caller hears the agent's 2 kHz: {c1k} vs {c2k}"
        );
        let (a1k, a2k) = dominant(&heard_by_agent);
        assert!(
            a1k > 10.0 * a2k,
            "the agent hears the caller's 1 kHz: {a1k} vs {a2k}"
        );

        let stereo = loop {
            match tokio::time::timeout(Duration::from_secs(3), rx_a.recv())
                .await
                .unwrap()
            {
                Some(MediaEvent::RecordedStereo(s)) => break s,
                Some(_) => continue,
                None => panic!("stream gone"),
            }
        };
        assert_eq!(stereo.len(), 16000);
        let left: Vec<i16> = stereo.iter().step_by(2).copied().collect();
        let right: Vec<i16> = stereo.iter().skip(1).step_by(2).copied().collect();
        let (l1, l2) = dominant(&left);
        let (r1, r2) = dominant(&right);
        assert!(l1 > 10.0 * l2, "left is the caller (1 kHz): {l1} vs {l2}");
        assert!(r2 > 10.0 * r1, "right is the agent (2 kHz): {r1} vs {r2}");
        caller.close().await;
        agent.close().await;
        other_worker.close().await;
        engine.shutdown();
    }
}
