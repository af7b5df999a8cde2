//! A caller with a chosen number who stays on the line until the hotline
//! hangs up, speaking (a quiet 300 Hz tone in PCMU) the whole time and
//! keeping every frame it heard, for tests of what a blocked number hears.

use super::{RawCall, Server, decode};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// What the caller heard and how the call ended.
pub struct Heard {
    pub call_id: String,
    /// Decoded PCMU from the hotline, in arrival order.
    pub pcm: Vec<i16>,
    /// The hotline sent BYE (and got its 200).
    pub hung_up_by_hotline: bool,
    pub elapsed: Duration,
}

/// Calls 12345 from `number` and stays until the hotline's BYE or `limit`
/// (then hangs up itself).
pub fn call_and_listen(server: &Server, number: &str, limit: Duration) -> Heard {
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let call = RawCall::place_from(
        server,
        number,
        rtp_port,
        "0",
        "a=rtpmap:0 PCMU/8000\n",
        Duration::from_secs(10),
    );
    let (sip, server_rtp) = (&call.sip, call.server_rtp);
    let mut buf = [0u8; 4096];

    // Speak every 20 ms and listen; look at SIP between frames.
    sip.set_nonblocking(true).unwrap();
    rtp.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let tone: Vec<u8> = (0..160)
        .map(|i| {
            let s =
                (f32::sin(i as f32 * 2.0 * std::f32::consts::PI * 300.0 / 8000.0) * 2000.0) as i16;
            hotline::media::g711::Law::Ulaw.encode(s)
        })
        .collect();
    let start = Instant::now();
    let mut next_send = start;
    let (mut seq, mut ts) = (0u16, 0u32);
    let mut heard = Vec::new();
    let mut hung_up_by_hotline = false;
    while start.elapsed() < limit {
        if Instant::now() >= next_send {
            let mut p = vec![0x80u8, 0];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&0x5eed_0000u32.wrapping_add(n).to_be_bytes());
            p.extend_from_slice(&tone);
            rtp.send_to(&p, server_rtp).ok();
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            next_send += Duration::from_millis(20);
        }
        if let Ok((len, _)) = rtp.recv_from(&mut buf)
            && len > 12
            && buf[0] >> 6 == 2
            && buf[1] & 0x7f == 0
        {
            let off = 12 + 4 * (buf[0] & 0x0f) as usize;
            heard.extend(decode(0, &buf[off..len]));
        }
        if let Ok((len, _)) = sip.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..len]).to_string();
            if text.starts_with("BYE ") {
                let reply = ok_to(&text);
                sip.send_to(reply.as_bytes(), server.sip).unwrap();
                hung_up_by_hotline = true;
                break;
            }
        }
    }
    if !hung_up_by_hotline {
        call.request("BYE", 2);
        std::thread::sleep(Duration::from_millis(300));
    }
    Heard {
        call_id: call.call_id.clone(),
        pcm: heard,
        hung_up_by_hotline,
        elapsed: start.elapsed(),
    }
}

/// A 200 OK to a request, with its Via, From, To, Call-ID and CSeq.
fn ok_to(request: &str) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in request.lines() {
        let lower = line.to_ascii_lowercase();
        if ["via:", "from:", "to:", "call-id:", "cseq:"]
            .iter()
            .any(|h| lower.starts_with(h))
        {
            out.push_str(line.trim_end());
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}
