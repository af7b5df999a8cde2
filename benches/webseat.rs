//! Concurrent browser-seat calls through the real binary: N browser seats
//! (the `webrtc` crate as the browser: DTLS-SRTP, 48 kHz Opus) log in on
//! the desktop socket, N callers (G.711 A-law over plain RTP) come through
//! the real IVR to the operator queue, every call is answered by a browser
//! seat, and all N are held for `--hold` seconds with audio both ways. The
//! server transcodes every call both ways (Opus ↔ G.711).
//!
//! `cargo bench --bench webseat -- [--calls 10,25,50] [--hold 60]`
//! (without `--bench`, as `cargo test --all-targets` runs it: 2 calls, 3 s).
//!
//! Reported per N: the server process's CPU (utime+stime from /proc, 100 %
//! = one core) over the hold and per call, RSS growth per call, how much of
//! the expected 50 packets/s each side received, and a Goertzel check of
//! one call's audio in both directions. The clients run in this process
//! and share the machine's cores with the server.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use common::media::{CALLER_TONE, PCMA_DTMF, ToneMedia, dominance};
use common::rtc_client::{RtcSeat, opus_tone};
use common::{RawCall, Server, press};
use hotline::media::g711::Law;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const BROWSER_TONE: f32 = 1000.0;

struct Args {
    calls: Vec<usize>,
    hold: u64,
}

fn parse_args() -> Args {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let mut args = Args {
        calls: if smoke { vec![2] } else { vec![10, 25, 50] },
        hold: if smoke { 3 } else { 60 },
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--calls" => {
                args.calls = it
                    .next()
                    .expect("--calls N[,N...]")
                    .split(',')
                    .map(|n| n.parse().expect("--calls N[,N...]"))
                    .collect()
            }
            "--hold" => args.hold = it.next().and_then(|n| n.parse().ok()).expect("--hold SECS"),
            _ => {}
        }
    }
    args
}

/// utime+stime ticks and RSS (kB) of a process.
fn proc_usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th fields of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

fn seats_section(n: usize) -> String {
    (0..n)
        .map(|i| {
            let id = 30_001 + i;
            format!("id = \"{id}\"\npassword = \"pw-{id}\"\nname = \"Browser {id}\"\n")
        })
        .collect::<Vec<_>>()
        .join("\n[[seat]]\n")
}

struct Caller {
    call: RawCall,
    media: ToneMedia,
}

fn run(n: usize, hold: u64) {
    let seats = seats_section(n);
    // Two RTP ports per leg: the caller's and the seat's, with room to spare.
    let min = 40_000;
    let ports = format!("rtp_port_min = {min}\nrtp_port_max = {}", min + 8 * n + 100);
    let media = "media";
    let server = Server::start(
        &format!("webseat-load-{n}"),
        &[
            ("[seat]", seats.as_str()),
            (media, ports.as_str()),
            ("registrar", "keepalive_secs = 0"),
            (
                "sip",
                "invite_rate_per_ip = 1000\ninvite_burst_per_ip = 1000",
            ),
        ],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pid = server.pid();
    let (_, idle_rss) = proc_usage(pid);
    let mut browsers: Vec<RtcSeat> = rt.block_on(async {
        let mut list = Vec::new();
        for i in 0..n {
            let id = 30_001 + i;
            list.push(RtcSeat::login(server.http, &id.to_string(), &format!("pw-{id}")).await);
        }
        list
    });
    // Callers dial in parallel, wait out the greeting and press 0.
    let callers: Vec<Caller> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let server = &server;
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(20 * i as u64));
                    let rtp = (0..100)
                        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
                        .find(|s| s.local_addr().unwrap().port().is_multiple_of(2))
                        .expect("an even UDP port");
                    let port = rtp.local_addr().unwrap().port();
                    let call = RawCall::place_from(
                        server,
                        &format!("1390000{:04}", i),
                        port,
                        "8 101",
                        PCMA_DTMF,
                        Duration::from_secs(10),
                    );
                    let keys = rtp.try_clone().unwrap();
                    let media = ToneMedia::start(rtp, call.server_rtp, Law::Alaw, CALLER_TONE);
                    std::thread::sleep(Duration::from_millis(9_000));
                    let mut seq = 40_000;
                    press(&keys, call.server_rtp, '0', 900_000, &mut seq);
                    Caller { call, media }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let tone = opus_tone(BROWSER_TONE, 1.0);
    let started = Instant::now();
    let failed: Vec<String> = rt.block_on(async {
        let takes = browsers.iter_mut().enumerate().map(|(i, b)| {
            let tone = tone.clone();
            // One call is decoded to check the audio; the rest only count.
            b.try_take_call(tone, i == 0, Duration::from_secs(60))
        });
        futures::future::join_all(takes)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect()
    });
    assert!(
        failed.is_empty(),
        "{} of {n} browser seats were not rung: {}\n{}",
        failed.len(),
        failed[0],
        server.log()
    );
    let up = common::poll(Duration::from_secs(30), Duration::from_millis(200), || {
        let connected = server.log().matches("caller connected to agent").count();
        (connected >= n).then_some(connected)
    });
    assert!(
        up.is_some(),
        "not every call was bridged:\n{}",
        server.log()
    );
    let setup = started.elapsed();
    // Settle, then measure the hold.
    std::thread::sleep(Duration::from_secs(2));
    let packets_before: Vec<u64> = browsers
        .iter()
        .map(|b| b.packets_in.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    let caller_before: Vec<usize> = callers.iter().map(|c| c.media.packets()).collect();
    let heard_mark = browsers[0].heard.lock().unwrap().len();
    let (ticks0, _) = proc_usage(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(hold));
    let (ticks1, rss) = proc_usage(pid);
    let secs = t0.elapsed().as_secs_f64();
    let cpu = (ticks1 - ticks0) as f64 / clock_ticks() / secs * 100.0;
    let expected = 50.0 * secs;
    let to_browsers: Vec<f64> = browsers
        .iter()
        .zip(&packets_before)
        .map(|(b, before)| {
            (b.packets_in.load(std::sync::atomic::Ordering::Relaxed) - before) as f64 / expected
        })
        .collect();
    let to_callers: Vec<f64> = callers
        .iter()
        .zip(&caller_before)
        .map(|(c, before)| (c.media.packets() - before) as f64 / expected)
        .collect();
    let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let browser_pcm = browsers[0].heard_since(heard_mark);
    let browser_hears = dominance(&browser_pcm, CALLER_TONE, BROWSER_TONE);
    let caller_pcm = callers[0]
        .media
        .heard_between(Instant::now() - Duration::from_secs(2), Instant::now());
    let caller_hears = dominance(&caller_pcm, BROWSER_TONE, CALLER_TONE);
    println!(
        "webseat calls={n} hold={secs:.0}s setup={:.1}s server_cpu={cpu:.1}% per_call={:.2}% rss_per_call={:.0}kB \
         to_browser(median {:.3}, min {:.3}) to_caller(median {:.3}, min {:.3}) \
         call0: browser hears caller x{browser_hears:.0}, caller hears browser x{caller_hears:.0}",
        setup.as_secs_f64(),
        cpu / n as f64,
        rss.saturating_sub(idle_rss) as f64 / n as f64,
        median(&to_browsers),
        min(&to_browsers),
        median(&to_callers),
        min(&to_callers),
    );
    assert!(
        browser_hears > 10.0 && caller_hears > 10.0,
        "call 0's audio did not get through: browser x{browser_hears}, caller x{caller_hears}"
    );
    rt.block_on(async {
        for b in browsers.iter_mut() {
            b.hang_up().await;
        }
    });
    for c in &callers {
        c.call.bye();
    }
    drop(browsers);
    drop(callers);
}

/// The bridge's codec step alone: one 20 ms A-law frame to Opus and an
/// Opus frame back, as each call does 50 times a second each way.
fn codec_step() {
    use hotline::webseat::transcode::{BrowserCodec, FRAME, ToBrowser, ToSip};
    let mut to_browser = ToBrowser::new(BrowserCodec::Opus, Law::Alaw, 24_000).unwrap();
    let mut to_sip = ToSip::new(BrowserCodec::Opus, Law::Alaw).unwrap();
    let frame: Vec<u8> = (0..FRAME)
        .map(|i| Law::Alaw.encode(((i as f32 * 0.785).sin() * 8000.0) as i16))
        .collect();
    let mut opus = [0u8; 1500];
    let mut back = Vec::with_capacity(FRAME);
    let frames = 2_000;
    let started = Instant::now();
    for _ in 0..frames {
        let n = to_browser.frame(&frame, &mut opus).unwrap();
        back.clear();
        to_sip.frame(&opus[..n], &mut back).unwrap();
    }
    let per = started.elapsed() / frames;
    println!(
        "webseat codec: G.711 -> Opus -> G.711 of one 20 ms frame {per:?} ({:.2} % of a core per call, both ways)",
        per.as_secs_f64() * 50.0 * 100.0
    );
}

fn main() {
    let args = parse_args();
    codec_step();
    for &n in &args.calls {
        run(n, args.hold);
    }
}
