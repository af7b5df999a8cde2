//! The media of one browser call: SRTP from and to the browser (through the
//! peer connection's track) and plain RTP on loopback to and from the media
//! engine, with the codec step of [`super::transcode`] between them.
//!
//! Packets are bridged as they arrive, without buffering: the engine's
//! jitter buffer smooths the SIP side and the browser's the other, so the
//! gateway adds no delay of its own. Browser audio reaches the engine only
//! once the SIP leg is answered and while it is not on hold; engine audio
//! reaches the browser only once its peer connection is up.

use super::transcode::{BrowserCodec, FRAME, ToBrowser, ToSip};
use crate::media::dtmf::KeyPress;
use crate::media::g711::Law;
use crate::media::rtp::{Packetizer, parse};
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use webrtc::rtp::header::Header;
use webrtc::rtp::packet::Packet;
use webrtc::track::track_local::TrackLocalWriter;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_remote::TrackRemote;

/// What the SIP side negotiated with the call actor.
#[derive(Debug, Clone, Copy)]
pub struct SipSide {
    pub law: Law,
    pub dtmf_pt: Option<u8>,
    /// Where the engine's stream listens.
    pub remote: Option<SocketAddr>,
}

/// Packet counts for the log and the load driver.
#[derive(Debug, Default)]
pub struct BridgeCounts {
    pub to_sip: AtomicU64,
    pub to_browser: AtomicU64,
    pub codec_errors: AtomicU64,
}

/// State both directions read.
struct Flags {
    sip: Mutex<SipSide>,
    /// The SIP leg is answered and not held: browser audio goes on.
    sending: AtomicBool,
    /// The peer connection is up: engine audio goes on.
    connected: AtomicBool,
    keys: Mutex<VecDeque<char>>,
    key_waiting: Notify,
    counts: Arc<BridgeCounts>,
}

/// One call's bridge; its tasks stop when it is dropped.
pub struct Bridge {
    socket: Arc<UdpSocket>,
    flags: Arc<Flags>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    opus_bitrate: u32,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        for task in self.tasks.lock().expect("bridge tasks").drain(..) {
            task.abort();
        }
    }
}

impl Bridge {
    /// Binds the loopback RTP socket the engine will send to.
    pub async fn bind(
        ip: std::net::IpAddr,
        sip: SipSide,
        opus_bitrate: u32,
    ) -> std::io::Result<Bridge> {
        let socket = Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await?);
        Ok(Bridge {
            socket,
            flags: Arc::new(Flags {
                sip: Mutex::new(sip),
                sending: AtomicBool::new(false),
                connected: AtomicBool::new(false),
                keys: Mutex::new(VecDeque::new()),
                key_waiting: Notify::new(),
                counts: Arc::new(BridgeCounts::default()),
            }),
            tasks: Mutex::new(Vec::new()),
            opus_bitrate,
        })
    }

    /// The port to put in our SDP toward the call actor.
    pub fn local_port(&self) -> u16 {
        self.socket.local_addr().map_or(0, |a| a.port())
    }

    pub fn counts(&self) -> Arc<BridgeCounts> {
        Arc::clone(&self.flags.counts)
    }

    /// The SIP side changed (answer, re-INVITE).
    pub fn set_sip(&self, sip: SipSide) {
        *self.flags.sip.lock().expect("bridge sip") = sip;
    }

    /// Browser audio goes to the engine (answered and not held) or not.
    pub fn set_sending(&self, on: bool) {
        self.flags.sending.store(on, Ordering::Relaxed);
    }

    /// The peer connection came up (or went down).
    pub fn set_connected(&self, on: bool) {
        self.flags.connected.store(on, Ordering::Relaxed);
    }

    /// Queues key presses toward the engine.
    pub fn send_digits(&self, digits: &str) {
        self.flags
            .keys
            .lock()
            .expect("bridge keys")
            .extend(digits.chars());
        self.flags.key_waiting.notify_one();
    }

    /// Starts engine → browser.
    pub fn start_to_browser(&self, track: Arc<TrackLocalStaticRTP>, codec: BrowserCodec) {
        let task = tokio::spawn(to_browser(
            Arc::clone(&self.socket),
            Arc::clone(&self.flags),
            track,
            codec,
            self.opus_bitrate,
        ));
        self.tasks.lock().expect("bridge tasks").push(task);
    }

    /// Starts browser → engine, once the browser's track arrived.
    pub fn start_to_sip(&self, track: Arc<TrackRemote>, codec: BrowserCodec) {
        let task = tokio::spawn(to_sip(
            Arc::clone(&self.socket),
            Arc::clone(&self.flags),
            track,
            codec,
        ));
        self.tasks.lock().expect("bridge tasks").push(task);
    }
}

async fn to_browser(
    socket: Arc<UdpSocket>,
    flags: Arc<Flags>,
    track: Arc<TrackLocalStaticRTP>,
    codec: BrowserCodec,
    opus_bitrate: u32,
) {
    let law = flags.sip.lock().expect("bridge sip").law;
    let mut step = match ToBrowser::new(codec, law, opus_bitrate) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "no encoder for the browser");
            return;
        }
    };
    let mut seq: u16 = rand::random();
    let mut timestamp: u32 = rand::random();
    let ticks = FRAME as u32 * codec.ticks_per_sample();
    let mut buf = [0u8; 2048];
    let mut out = [0u8; 1500];
    let mut marker = true;
    loop {
        let Ok((n, _)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let Ok(rtp) = parse(&buf[..n]) else { continue };
        // Telephone-events from the engine are for phones; a browser has
        // nothing to play them with.
        if rtp.payload_type != law.payload_type() || !flags.connected.load(Ordering::Relaxed) {
            continue;
        }
        let len = match step.frame(rtp.payload, &mut out) {
            Ok(len) => len,
            Err(e) => {
                flags.counts.codec_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "frame to the browser dropped");
                continue;
            }
        };
        let packet = Packet {
            header: Header {
                version: 2,
                marker,
                // The track sets the negotiated payload type and its SSRC.
                sequence_number: seq,
                timestamp,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(&out[..len]),
        };
        marker = false;
        seq = seq.wrapping_add(1);
        timestamp = timestamp.wrapping_add(ticks);
        if track.write_rtp(&packet).await.is_ok() {
            flags.counts.to_browser.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn to_sip(
    socket: Arc<UdpSocket>,
    flags: Arc<Flags>,
    track: Arc<TrackRemote>,
    codec: BrowserCodec,
) {
    let law = flags.sip.lock().expect("bridge sip").law;
    let mut step = match ToSip::new(codec, law) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "no decoder for the browser");
            return;
        }
    };
    let mut packetizer = Packetizer::new(
        rand::random(),
        law.payload_type(),
        rand::random(),
        rand::random(),
    );
    let mut g711 = Vec::with_capacity(FRAME * 6);
    let mut out = [0u8; 1500];
    let mut press: Option<KeyPress> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            read = track.read_rtp() => {
                let Ok((packet, _)) = read else { return };
                g711.clear();
                if let Err(e) = step.frame(&packet.payload, &mut g711) {
                    flags.counts.codec_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "frame from the browser dropped");
                    continue;
                }
                let sip = *flags.sip.lock().expect("bridge sip");
                let Some(remote) = sip.remote else { continue };
                // While a key press is sent, it stands in for the audio.
                if press.is_some() || !flags.sending.load(Ordering::Relaxed) {
                    continue;
                }
                for chunk in g711.chunks(FRAME) {
                    let n = packetizer.write(chunk, chunk.len() as u32, &mut out);
                    if n > 0 && socket.send_to(&out[..n], remote).await.is_ok() {
                        flags.counts.to_sip.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ = tick.tick(), if press.is_some() => {
                let sip = *flags.sip.lock().expect("bridge sip");
                let (Some(pt), Some(remote), Some(p)) = (sip.dtmf_pt, sip.remote, press.as_mut()) else {
                    press = None;
                    continue;
                };
                let packet = p.next_packet();
                if packet.first {
                    packetizer.mark_next();
                }
                packetizer.set_payload_type(pt);
                let n = packetizer.write(&packet.payload, 0, &mut out);
                packetizer.set_payload_type(law.payload_type());
                if n > 0 {
                    socket.send_to(&out[..n], remote).await.ok();
                }
                if packet.last {
                    packetizer.skip(KeyPress::SAMPLES);
                    press = next_press(&flags);
                }
            }
            _ = flags.key_waiting.notified(), if press.is_none() => {
                press = next_press(&flags);
            }
        }
    }
}

fn next_press(flags: &Flags) -> Option<KeyPress> {
    let mut keys = flags.keys.lock().expect("bridge keys");
    while let Some(key) = keys.pop_front() {
        if let Some(press) = KeyPress::new(key) {
            return Some(press);
        }
    }
    None
}
