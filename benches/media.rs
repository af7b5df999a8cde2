//! Per-packet costs on the media and signalling hot paths.
//!
//! Each bench is one unit of work the server does per packet (or per 20 ms
//! frame): G.711 coding, RTP framing, DTMF detection, jitter-buffer playout,
//! and parsing an INVITE the way the UDP transport does. Run with
//! `cargo bench --bench media`; the README keeps the numbers.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotline::media::dtmf::{DtmfDetector, TelephoneEvent};
use hotline::media::g711::Law;
use hotline::media::jitter::{JitterBuffer, Playout};
use hotline::media::rtp::{FRAME_SAMPLES, Packetizer, parse};
use rsipstack::sip::SipMessage;

/// One 20 ms frame of a 440 Hz tone plus some harmonics, so every G.711 segment is used.
fn pcm_frame() -> [i16; FRAME_SAMPLES] {
    let mut pcm = [0i16; FRAME_SAMPLES];
    for (i, s) in pcm.iter_mut().enumerate() {
        let t = i as f32 / 8000.0;
        let w = 2.0 * std::f32::consts::PI * 440.0 * t;
        *s = (20_000.0 * w.sin() + 6_000.0 * (3.0 * w).sin()) as i16;
    }
    pcm
}

fn g711(c: &mut Criterion) {
    let pcm = pcm_frame();
    let mut group = c.benchmark_group("g711");
    group.throughput(Throughput::Elements(FRAME_SAMPLES as u64));
    for (name, law) in [("ulaw", Law::Ulaw), ("alaw", Law::Alaw)] {
        let mut bytes = [0u8; FRAME_SAMPLES];
        group.bench_function(format!("{name}_encode_frame"), |b| {
            b.iter(|| law.encode_frame(black_box(&pcm), black_box(&mut bytes)))
        });
        law.encode_frame(&pcm, &mut bytes);
        let mut out = [0i16; FRAME_SAMPLES];
        group.bench_function(format!("{name}_decode_frame"), |b| {
            b.iter(|| law.decode_frame(black_box(&bytes), black_box(&mut out)))
        });
    }
    group.finish();
}

fn rtp(c: &mut Criterion) {
    let payload = [0xD5u8; FRAME_SAMPLES];
    let mut group = c.benchmark_group("rtp");
    group.throughput(Throughput::Elements(1));
    let mut packetizer = Packetizer::new(0x1234_5678, 8, 0, 0);
    let mut out = [0u8; 1500];
    group.bench_function("packetize", |b| {
        b.iter(|| packetizer.write(black_box(&payload), FRAME_SAMPLES as u32, &mut out))
    });
    let len = packetizer.write(&payload, FRAME_SAMPLES as u32, &mut out);
    let packet = &out[..len];
    group.bench_function("parse", |b| {
        b.iter(|| parse(black_box(packet)).map(|v| v.seq))
    });
    group.finish();
}

fn dtmf(c: &mut Criterion) {
    let mut group = c.benchmark_group("dtmf");
    group.throughput(Throughput::Elements(1));
    let payload = [5u8, 0x0A, 0x03, 0x20];
    group.bench_function("parse_event", |b| {
        b.iter(|| TelephoneEvent::parse(black_box(&payload)))
    });
    // A press is ~7 packets (start, continuations, 3 ends); each iteration is
    // one packet, with a new press every 8 so both paths are exercised.
    let mut detector = DtmfDetector::new();
    let mut n: u32 = 0;
    group.bench_function("detector", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let ts = (n / 8).wrapping_mul(1600);
            detector.on_rtp(black_box(ts), black_box(&payload))
        })
    });
    group.finish();
}

fn jitter(c: &mut Criterion) {
    let mut group = c.benchmark_group("jitter");
    group.throughput(Throughput::Elements(1));
    let payload = [0xFFu8; FRAME_SAMPLES];
    let mut jb = JitterBuffer::new(3, FRAME_SAMPLES);
    let mut seq: u16 = 0;
    // Prime to the target depth so each iteration is one steady-state tick.
    for _ in 0..3 {
        jb.push(seq, seq as u32 * 160, &payload);
        seq = seq.wrapping_add(1);
    }
    group.bench_function("push_pop", |b| {
        b.iter(|| {
            jb.push(black_box(seq), (seq as u32).wrapping_mul(160), &payload);
            seq = seq.wrapping_add(1);
            match jb.pop() {
                Playout::Frame(f) => f.len(),
                Playout::Missing | Playout::Buffering => 0,
            }
        })
    });
    group.finish();
}

/// An INVITE as a softphone sends it to 12345: Via, Max-Forwards, dialog
/// headers, Contact, Allow, Supported and an SDP offer with PCMU, PCMA and
/// telephone-event.
fn invite() -> Vec<u8> {
    let sdp = "v=0\r\n\
o=- 3987425621 3987425621 IN IP4 192.168.10.23\r\n\
s=call\r\n\
c=IN IP4 192.168.10.23\r\n\
t=0 0\r\n\
m=audio 40012 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";
    let head = format!(
        "INVITE sip:12345@hotline.example.gov.cn SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.10.23:5060;branch=z9hG4bK-524287-1---a1b2c3d4e5f6a7b8;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:13800138000@192.168.10.23:5060;transport=udp>\r\n\
To: <sip:12345@hotline.example.gov.cn>\r\n\
From: \"Caller\" <sip:13800138000@hotline.example.gov.cn>;tag=8f3e2a71\r\n\
Call-ID: 5f1c0a7e9b3d4c2a8e6f1b0d3c5a7e9f@192.168.10.23\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Content-Type: application/sdp\r\n\
Supported: replaces, norefersub, timer\r\n\
Session-Expires: 1800\r\n\
User-Agent: Z 5.6.1 v2.10.20.1\r\n\
Allow-Events: presence, kpml, talk\r\n\
Content-Length: {}\r\n\r\n",
        sdp.len()
    );
    let mut msg = head.into_bytes();
    msg.extend_from_slice(sdp.as_bytes());
    msg
}

fn sip(c: &mut Criterion) {
    let msg = invite();
    // Fail loudly rather than benchmark the error path.
    SipMessage::try_from(msg.as_slice()).expect("bench INVITE must parse");
    let mut group = c.benchmark_group("sip");
    group.throughput(Throughput::Bytes(msg.len() as u64));
    group.bench_function("parse_invite", |b| {
        b.iter(|| SipMessage::try_from(black_box(msg.as_slice())))
    });
    group.finish();
}

criterion_group!(benches, g711, rtp, dtmf, jitter, sip);
criterion_main!(benches);
