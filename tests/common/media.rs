//! Test-owned RTP media: a loopback socket that speaks a G.711 tone every
//! 20 ms and keeps what it hears with arrival times, so a test can ask by
//! Goertzel which tones reached which party in a given window. Also the
//! caller who dials 12345 through the real IVR with such media.

use super::{RawCall, Server, press, rtp_packet};
use hotline::media::dtmf::goertzel_power;
use hotline::media::g711::Law;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An A-law offer with telephone-events (the caller's).
pub const PCMA_DTMF: &str =
    "a=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n";

/// `secs` of a sine at `freq` Hz, 8 kHz, a quarter of full scale.
pub fn tone(freq: f32, secs: f32) -> Vec<i16> {
    (0..(8000.0 * secs) as usize)
        .map(|n| (8000.0 * (2.0 * std::f32::consts::PI * freq * n as f32 / 8000.0).sin()) as i16)
        .collect()
}

/// Goertzel power of `freq` in 8 kHz samples.
pub fn power(samples: &[i16], freq: f32) -> f32 {
    goertzel_power(samples, freq, 8000.0)
}

/// How much stronger `want` is than `other` in these samples.
pub fn dominance(samples: &[i16], want: f32, other: f32) -> f32 {
    power(samples, want) / power(samples, other).max(1e-9)
}

/// How loud `freq` is in `pcm` against a party's tone at full level
/// over the same length (1.0: as loud as a party speaking).
pub fn presence(pcm: &[i16], freq: f32) -> f32 {
    power(pcm, freq) / power(&tone(freq, pcm.len() as f32 / 8000.0), freq)
}

/// The share of `pcm`'s energy that is not in these tones (a sine of
/// amplitude A has Goertzel power (A N / 2)² and energy A² N / 2).
pub fn others_share(pcm: &[i16], tones: &[f32]) -> f32 {
    let total: f64 = pcm.iter().map(|s| f64::from(*s).powi(2)).sum();
    let n = pcm.len() as f64;
    let in_tones: f64 = tones
        .iter()
        .map(|&f| 2.0 * f64::from(power(pcm, f)) / n)
        .sum();
    (1.0 - in_tones / total.max(1.0)) as f32
}

/// How much stronger a tone someone hears must be than one they must not.
pub const CLEAR: f32 = 20.0;

/// Checks by Goertzel that `pcm` holds at least a second, that every
/// `want` tone is present and far ([`CLEAR`]) stronger than every `not`
/// tone; `who` heard it, `diag` explains a failure.
pub fn assert_hears(who: &str, pcm: &[i16], want: &[f32], not: &[f32], diag: impl Fn() -> String) {
    assert!(
        pcm.len() >= 8000,
        "{who} heard only {} samples\n{}",
        pcm.len(),
        diag()
    );
    let powers = |tones: &[f32]| -> Vec<String> {
        tones
            .iter()
            .map(|&f| format!("{f} Hz: {:.3e}", power(pcm, f)))
            .collect()
    };
    eprintln!("{who}: heard {:?}, not {:?}", powers(want), powers(not));
    for &w in want {
        let level = presence(pcm, w);
        assert!(
            level > 0.1,
            "{who}: {w} Hz is at {level:.4} of a party's level ({:?})\n{}",
            powers(want),
            diag()
        );
        for &n in not {
            let ratio = dominance(pcm, w, n);
            assert!(
                ratio > CLEAR,
                "{who}: {w} Hz / {n} Hz power is {ratio:.2} (want {:?}, not {:?})\n{}",
                powers(want),
                powers(not),
                diag()
            );
        }
    }
}

/// The 8 kHz samples from `from_end` seconds before the end to `to_end`
/// before it.
pub fn before_end(pcm: &[i16], from_end: f32, to_end: f32) -> &[i16] {
    let at = |secs: f32| pcm.len().saturating_sub((secs * 8000.0) as usize);
    &pcm[at(from_end)..at(to_end)]
}

/// Stereo samples of a 16-bit 8 kHz WAV file, split into (left, right).
pub fn stereo(path: &str) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let all: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left = all.iter().step_by(2).copied().collect();
    let right = all.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// Received audio with its arrival time.
type Heard = Arc<Mutex<Vec<(Instant, Vec<i16>)>>>;

/// Keys received as RFC 4733 telephone-events, with when each began.
type Keys = Arc<Mutex<Vec<(Instant, char)>>>;

/// A socket's media: sends `law` frames of a tone every 20 ms and keeps the
/// audio it receives in that law, and the keys that arrive as RFC 4733
/// telephone-events (any dynamic payload type), until dropped.
pub struct ToneMedia {
    stop: Arc<AtomicBool>,
    heard: Heard,
    keys: Keys,
    peer: Arc<Mutex<Option<SocketAddr>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

impl ToneMedia {
    /// Sends to `to` from the start.
    pub fn start(socket: UdpSocket, to: SocketAddr, law: Law, tone_hz: f32) -> ToneMedia {
        Self::run(socket, Some(to), law, tone_hz)
    }

    /// Sends nothing until a packet arrives, then answers wherever the
    /// latest packet came from (symmetric RTP: an endpoint whose peer's
    /// address is in an INVITE the test never reads). Stops sending when
    /// nothing has come for a second (the call is over), so it never
    /// feeds a port the server has since given to another call.
    pub fn answering(socket: UdpSocket, law: Law, tone_hz: f32) -> ToneMedia {
        Self::run(socket, None, law, tone_hz)
    }

    fn run(socket: UdpSocket, to: Option<SocketAddr>, law: Law, tone_hz: f32) -> ToneMedia {
        let port = socket.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let heard: Heard = Arc::new(Mutex::new(Vec::new()));
        let keys: Keys = Arc::new(Mutex::new(Vec::new()));
        let peer = Arc::new(Mutex::new(to));
        let last_rx = Arc::new(Mutex::new(None::<Instant>));
        let receiver = socket.try_clone().unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let pt = law.payload_type();
        {
            let (stop, heard, peer) = (stop.clone(), heard.clone(), peer.clone());
            let (last_rx, keys) = (last_rx.clone(), keys.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                // The RTP timestamp of the last key's event: each packet
                // of one press (and its repeated end) carries the same.
                let mut last_key: Option<u32> = None;
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = receiver.recv_from(&mut buf) else {
                        continue;
                    };
                    if n <= 12 || buf[0] >> 6 != 2 {
                        continue;
                    }
                    if to.is_none() {
                        *peer.lock().unwrap() = Some(from);
                        *last_rx.lock().unwrap() = Some(Instant::now());
                    }
                    let off = (12 + 4 * usize::from(buf[0] & 0x0f)).min(n);
                    let payload_type = buf[1] & 0x7f;
                    if payload_type == pt {
                        let pcm = super::decode(pt, &buf[off..n]);
                        heard.lock().unwrap().push((Instant::now(), pcm));
                    } else if (96..=127).contains(&payload_type) && n - off == 4 {
                        let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                        let key = hotline::media::dtmf::event_to_digit(buf[off]);
                        if let Some(key) = key.filter(|_| last_key != Some(ts)) {
                            last_key = Some(ts);
                            keys.lock().unwrap().push((Instant::now(), key));
                        }
                    }
                }
            });
        }
        let ssrc = 0x7e57_0000 | u32::from(port);
        let (stop2, peer2) = (stop.clone(), peer.clone());
        let thread = std::thread::spawn(move || {
            let pcm = tone(tone_hz, 1.0);
            let mut frame = [0u8; 160];
            let mut seq: u16 = 1;
            let mut ts: u32 = 0;
            let mut next = Instant::now();
            let mut at = 0;
            while !stop2.load(Ordering::Relaxed) {
                law.encode_frame(&pcm[at..at + 160], &mut frame);
                at = (at + 160) % pcm.len();
                let mut p = rtp_packet(ssrc, seq, ts, &frame);
                p[1] = pt;
                let live = to.is_some()
                    || last_rx
                        .lock()
                        .unwrap()
                        .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
                if let Some(to) = *peer2.lock().unwrap()
                    && live
                {
                    socket.send_to(&p, to).ok();
                }
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(160);
                next += Duration::from_millis(20);
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        ToneMedia {
            stop,
            heard,
            keys,
            peer,
            thread: Some(thread),
            port,
        }
    }

    /// The local RTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the media is being sent (`None` before an answering socket
    /// heard anything).
    pub fn peer(&self) -> Option<SocketAddr> {
        *self.peer.lock().unwrap()
    }

    /// Audio received between two moments.
    pub fn heard_between(&self, from: Instant, to: Instant) -> Vec<i16> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .flat_map(|(_, pcm)| pcm.clone())
            .collect()
    }

    /// The keys received as telephone-events so far, in order.
    pub fn keys(&self) -> String {
        self.keys.lock().unwrap().iter().map(|(_, k)| k).collect()
    }

    /// Packets of audio received so far.
    pub fn packets(&self) -> usize {
        self.heard.lock().unwrap().len()
    }

    /// Port, peer and packets heard, for a failed assertion.
    pub fn describe(&self) -> String {
        format!(
            "media on 127.0.0.1:{}: sending to {:?}, {} packets heard, keys {:?}\n",
            self.port,
            self.peer(),
            self.packets(),
            self.keys()
        )
    }

    /// When the last packet arrived, if any.
    pub fn last_heard(&self) -> Option<Instant> {
        self.heard.lock().unwrap().last().map(|(at, _)| *at)
    }
}

impl Drop for ToneMedia {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

/// A `[media]` section giving this server RTP ports of its own.
///
/// Every server starts its port pool at 20000, so servers of tests
/// running side by side reuse each other's ports at once; a peer of one
/// test still sending to a closed port then lands in another test's new
/// call, whose stream latches onto it (symmetric RTP) and sends there.
pub fn own_rtp_ports() -> (&'static str, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() * 7;
    let min = 21_000 + 200 * (n % 50);
    (
        "media",
        format!("rtp_port_min = {min}\nrtp_port_max = {}", min + 198),
    )
}

/// The caller's tone.
pub const CALLER_TONE: f32 = 600.0;

/// A caller through the real IVR: an A-law call to 12345 from
/// 13800138000 with its media speaking [`CALLER_TONE`], and the socket it
/// presses keys on.
pub fn dial(server: &Server) -> (RawCall, ToneMedia, UdpSocket) {
    // Bound here and kept: a port found free and bound later can be taken
    // by a parallel test in between.
    let rtp = (0..100)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .find(|s| s.local_addr().unwrap().port().is_multiple_of(2))
        .expect("an even UDP port");
    let port = rtp.local_addr().unwrap().port();
    let call = RawCall::place(server, port, "8 101", PCMA_DTMF);
    let keys = rtp.try_clone().unwrap();
    let media = ToneMedia::start(rtp, call.server_rtp, Law::Alaw, CALLER_TONE);
    (call, media, keys)
}

/// After the greeting (no barge-in), 0 in the language menu: the operator
/// queue. Returns the next RTP sequence number for more keys.
pub fn to_operator(keys: &UdpSocket, call: &RawCall) -> u16 {
    std::thread::sleep(Duration::from_millis(9_000));
    let mut seq = 40_000;
    press(keys, call.server_rtp, '0', 900_000, &mut seq);
    seq
}
