//! A browser seat played by the `webrtc` crate: logs in on the desktop's
//! socket, takes the call it is rung with (non-trickle SDP answer, like the
//! page), sends a tone as 48 kHz Opus (as Chrome does) and decodes what it
//! receives, so tests and the load driver can check both directions.

use futures::{SinkExt, StreamExt};
use opus_rs::{Application, OpusDecoder, OpusEncoder};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

/// A runtime for the seats of one test (the webrtc crate needs tokio).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// 20 ms at 48 kHz.
const FRAME_48K: usize = 960;

/// One logged-in seat on the desktop socket.
pub struct RtcSeat {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub token: String,
    pub pc: Option<Arc<RTCPeerConnection>>,
    /// What arrived from the server, decoded to 8 kHz (when decoding).
    pub heard: Arc<Mutex<Vec<i16>>>,
    /// RTP packets and payload bytes received.
    pub packets_in: Arc<AtomicU64>,
    pub bytes_in: Arc<AtomicU64>,
    sender: Option<JoinHandle<()>>,
    pub call: Option<String>,
    pub caller_call_id: Option<String>,
    /// Messages that arrived while waiting for others.
    pub seen: Vec<Value>,
}

impl Drop for RtcSeat {
    fn drop(&mut self) {
        if let Some(s) = self.sender.take() {
            s.abort();
        }
    }
}

/// `secs` of a tone as 20 ms Opus packets at 48 kHz.
pub fn opus_tone(freq: f32, secs: f32) -> Vec<bytes::Bytes> {
    let mut encoder = OpusEncoder::new(48_000, 1, Application::Voip).expect("opus encoder");
    encoder.bitrate_bps = 32_000;
    let frames = (secs * 50.0) as usize;
    let mut out = [0u8; 1500];
    (0..frames)
        .map(|f| {
            let pcm: Vec<i16> = (0..FRAME_48K)
                .map(|i| {
                    let t = (f * FRAME_48K + i) as f32 / 48_000.0;
                    ((t * freq * std::f32::consts::TAU).sin() * 8_000.0) as i16
                })
                .collect();
            let n = encoder
                .encode_i16(&pcm, FRAME_48K, &mut out)
                .expect("encode");
            bytes::Bytes::copy_from_slice(&out[..n])
        })
        .collect()
}

impl RtcSeat {
    /// Opens the socket and logs in; panics with the server's answer if
    /// the login is refused.
    pub async fn login(http: SocketAddr, seat: &str, password: &str) -> RtcSeat {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/api/v1/webseat"))
            .await
            .expect("connect to the desktop socket");
        let mut s = RtcSeat {
            ws,
            token: String::new(),
            pc: None,
            heard: Arc::default(),
            packets_in: Arc::default(),
            bytes_in: Arc::default(),
            sender: None,
            call: None,
            caller_call_id: None,
            seen: Vec::new(),
        };
        s.send(json!({"type": "login", "seat": seat, "password": password}))
            .await;
        let welcome = s.next(Duration::from_secs(10)).await;
        assert_eq!(welcome["type"], "welcome", "login of {seat}: {welcome}");
        s.token = welcome["token"].as_str().unwrap_or_default().to_owned();
        s
    }

    pub async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send on the desktop socket");
    }

    /// The next message, or `{"type":"timeout"}`.
    pub async fn next(&mut self, limit: Duration) -> Value {
        loop {
            match tokio::time::timeout(limit, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return serde_json::from_str(&text).expect("JSON from the server");
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) => return json!({"type": "closed"}),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => return json!({"type": "closed", "error": e.to_string()}),
                Err(_) => return json!({"type": "timeout"}),
            }
        }
    }

    /// Waits for a message of type `kind`, keeping the others in `seen`.
    pub async fn wait_for(&mut self, kind: &str, limit: Duration) -> Value {
        self.try_wait_for(kind, limit)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`RtcSeat::wait_for`], saying what came instead when it does not come.
    pub async fn try_wait_for(&mut self, kind: &str, limit: Duration) -> Result<Value, String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.next(left).await;
            if m["type"] == kind {
                return Ok(m);
            }
            if m["type"] == "timeout" || m["type"] == "closed" {
                return Err(format!(
                    "no {kind} message: got {m}; earlier: {:?}",
                    self.seen
                ));
            }
            self.seen.push(m);
        }
    }

    /// Waits to be rung, answers the offer, answers the call, and sends
    /// `tone` (Opus packets, looped) from then on. `decode` keeps what is
    /// heard as PCM in [`RtcSeat::heard`].
    pub async fn take_call(
        &mut self,
        tone: Vec<bytes::Bytes>,
        decode: bool,
        limit: Duration,
    ) -> Value {
        self.try_take_call(tone, decode, limit)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`RtcSeat::take_call`], with an error when no ring comes.
    pub async fn try_take_call(
        &mut self,
        tone: Vec<bytes::Bytes>,
        decode: bool,
        limit: Duration,
    ) -> Result<Value, String> {
        let ring = self.try_wait_for("ring", limit).await?;
        let call = ring["call"].as_str().expect("call").to_owned();
        self.call = Some(call.clone());
        self.caller_call_id = ring["caller_call_id"].as_str().map(str::to_owned);
        let pc = new_peer().await;
        let track = Arc::new(TrackLocalStaticSample::new(
            RTCRtpCodecCapability {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                ..Default::default()
            },
            "audio".to_owned(),
            "client".to_owned(),
        ));
        pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>)
            .await
            .expect("add track");
        let heard = Arc::clone(&self.heard);
        let packets = Arc::clone(&self.packets_in);
        let bytes_in = Arc::clone(&self.bytes_in);
        pc.on_track(Box::new(move |remote, _, _| {
            let heard = Arc::clone(&heard);
            let packets = Arc::clone(&packets);
            let bytes_in = Arc::clone(&bytes_in);
            tokio::spawn(async move {
                let opus = remote
                    .codec()
                    .capability
                    .mime_type
                    .eq_ignore_ascii_case(MIME_TYPE_OPUS);
                let mut decoder = OpusDecoder::new(8_000, 1).expect("decoder");
                let mut pcm = vec![0f32; 960];
                while let Ok((packet, _)) = remote.read_rtp().await {
                    packets.fetch_add(1, Ordering::Relaxed);
                    bytes_in.fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                    if !decode {
                        continue;
                    }
                    let samples: Vec<i16> = if opus {
                        match decoder.decode(&packet.payload, 960, &mut pcm) {
                            Ok(n) => pcm[..n].iter().map(|s| (s * 32767.0) as i16).collect(),
                            Err(_) => continue,
                        }
                    } else {
                        packet
                            .payload
                            .iter()
                            .map(|&b| hotline::media::g711::Law::Ulaw.decode(b))
                            .collect()
                    };
                    heard.lock().unwrap().extend(samples);
                }
            });
            Box::pin(async {})
        }));
        let offer = RTCSessionDescription::offer(ring["sdp"].as_str().expect("sdp").to_owned())
            .expect("offer");
        pc.set_remote_description(offer)
            .await
            .expect("remote offer");
        let answer = pc.create_answer(None).await.expect("answer");
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(answer)
            .await
            .expect("local answer");
        let _ = gathered.recv().await;
        let sdp = pc.local_description().await.expect("answer sdp").sdp;
        self.send(json!({"type": "sdp", "call": call, "sdp": sdp}))
            .await;
        self.send(json!({"type": "answer", "call": call})).await;
        self.sender = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for data in tone.iter().cycle() {
                tick.tick().await;
                let sample = Sample {
                    data: data.clone(),
                    duration: Duration::from_millis(20),
                    ..Default::default()
                };
                if track.write_sample(&sample).await.is_err() {
                    return;
                }
            }
        }));
        self.pc = Some(pc);
        Ok(ring)
    }

    /// Sends `hangup` for the current call.
    pub async fn hang_up(&mut self) {
        let call = self.call.clone().unwrap_or_default();
        self.send(json!({"type": "hangup", "call": call})).await;
    }

    /// Heard samples from `from` on (an index into [`RtcSeat::heard`]).
    pub fn heard_since(&self, from: usize) -> Vec<i16> {
        let heard = self.heard.lock().unwrap();
        heard[from.min(heard.len())..].to_vec()
    }
}

async fn new_peer() -> Arc<RTCPeerConnection> {
    let mut media = MediaEngine::default();
    media.register_default_codecs().expect("codecs");
    let registry =
        register_default_interceptors(Registry::new(), &mut media).expect("interceptors");
    let mut setting = SettingEngine::default();
    setting.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    setting.set_include_loopback_candidate(true);
    setting.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(setting)
        .build();
    Arc::new(
        api.new_peer_connection(RTCConfiguration::default())
            .await
            .expect("peer connection"),
    )
}
