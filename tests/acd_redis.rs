//! Two hotline nodes on one Redis share their seats: a caller queued on
//! node A reaches a seat registered on node B; a burst of fifty callers on
//! both nodes never rings a seat for two calls at once (checked by the seats
//! themselves); and a node cut off from Redis (through a TCP proxy the test
//! stops and restarts) routes its own seats alone, says so in `/healthz`,
//! and shares them again when Redis is back.
//!
//! Needs Redis on 127.0.0.1:6379 (or `HOTLINE_TEST_REDIS`); each test uses
//! its own key prefix and deletes its keys.

mod common;

use common::seat::*;
use common::*;
use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The tests start several servers each: one at a time on two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn redis_url() -> String {
    std::env::var("HOTLINE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// The Redis address of `redis_url()`.
fn redis_addr() -> SocketAddr {
    let url = redis_url();
    let host = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_string();
    let host = if host.contains(':') {
        host
    } else {
        format!("{host}:6379")
    };
    host.parse()
        .unwrap_or_else(|e| panic!("HOTLINE_TEST_REDIS {url:?}: {e}"))
}

/// A key prefix of this test's own; its keys go when it is dropped.
struct Prefix {
    prefix: String,
    client: redis::Client,
}

impl Prefix {
    fn new(name: &str) -> Prefix {
        static N: AtomicU32 = AtomicU32::new(0);
        let client = redis::Client::open(redis_url()).unwrap();
        let pong: Result<String, _> = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .and_then(|mut c| redis::cmd("PING").query(&mut c));
        assert!(
            pong.is_ok(),
            "Redis is required for this test at {} (or set HOTLINE_TEST_REDIS): \
             apt-get install redis-server, then start it: {pong:?}",
            redis_url()
        );
        let prefix = format!(
            "hotline:test-{}-{}-{name}:",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Prefix { prefix, client }
    }

    /// The config section that puts a server under this prefix.
    fn section(&self) -> (&'static str, String) {
        ("shared", format!("key_prefix = \"{}\"", self.prefix))
    }

    fn conn(&self) -> redis::Connection {
        self.client
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap()
    }

    /// A seat's hash as stored.
    fn seat(&self, id: &str) -> HashMap<String, String> {
        redis::cmd("HGETALL")
            .arg(format!("{}seat:{id}", self.prefix))
            .query(&mut self.conn())
            .unwrap()
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(mut conn) = self.client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// Queues as the shipped flows name them, with a short wrap-up on the
/// operator queue so seats come back quickly.
const QUEUES: (&str, &str) = (
    "[queue]",
    "name = \"operator\"\nring_secs = 10\nwrap_up_secs = 1\n\
     [[queue]]\nname = \"emergency\"\n[[queue]]\nname = \"general\"\n\
     [[queue]]\nname = \"enterprise\"\n\
     [[queue]]\nname = \"mongolian\"\nlanguage = \"mn\"\n",
);

/// Many callers from one address, no RTP needed.
const LOAD: (&str, &str) = (
    "sip",
    "invite_rate_per_ip = 1000.0\ninvite_burst_per_ip = 1000.0",
);
const NO_RTP_TIMEOUT: (&str, &str) = ("media", "rtp_timeout_secs = 0");

/// A node of the test cluster.
fn node(name: &str, prefix: &Prefix, redis: &str) -> Server {
    let shared = prefix.section();
    Server::start_with_env(
        name,
        &[
            MD5_ONLY,
            QUEUES,
            LOAD,
            NO_RTP_TIMEOUT,
            (shared.0, &shared.1),
        ],
        &[("REDIS_URL", redis)],
    )
}

fn json(server: &Server, path: &str) -> serde_json::Value {
    let (status, body) = server.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn shared_state(server: &Server) -> String {
    json(server, "/healthz")["shared_state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until `check` holds; false when `limit` passes first.
fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A seat's (status, state) on a node's board.
fn seat_state(server: &Server, id: &str) -> (String, String) {
    let v = json(server, &format!("/api/v1/seats/{id}"));
    (
        v["status"].as_str().unwrap_or_default().to_string(),
        v["state"].as_str().unwrap_or_default().to_string(),
    )
}

fn available(server: &Server, id: &str) -> bool {
    seat_state(server, id).0 == "available"
}

/// A caller through the main flow: answered, presses 0 (SIP INFO) after the
/// greeting, which queues it for the operator, then stays `stay_ms`.
fn operator_caller(stay_ms: u32) -> String {
    let after = [pause(9_000), info_dtmf('0', 2), pause(stay_ms)].concat();
    uac_scenario(Some(&offer("0", "a=rtpmap:0 PCMU/8000\n")), &after)
}

#[test]
fn a_caller_on_one_node_reaches_a_seat_registered_on_the_other() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = Prefix::new("share");
    let url = redis_url();
    let a = node("redis-a", &prefix, &url);
    let b = node("redis-b", &prefix, &url);
    for s in [&a, &b] {
        assert_eq!(shared_state(s), "redis", "{}", s.log());
    }
    let seat = SippSeat::start(&b, "1003", Answer::Answers, 1);
    assert!(
        wait_until(Duration::from_secs(5), || available(&a, "1003")),
        "node A never learnt that 1003 registered on B: {:?}\n{}",
        seat_state(&a, "1003"),
        a.log()
    );
    let stored = prefix.seat("1003");
    assert_eq!(stored["status"], "available", "{stored:?}");
    assert!(!stored["owner"].is_empty(), "{stored:?}");
    assert_eq!(
        stored["source"],
        format!("127.0.0.1:{}", seat.port),
        "{stored:?}"
    );

    let run = sipp(&a, &operator_caller(4_000), 1, &[]);
    let diag = || {
        format!(
            "{}\n{}--- A ---\n{}--- B ---\n{}",
            run.describe(),
            seat.messages(),
            a.log(),
            b.log()
        )
    };
    assert!(run.success, "{}", diag());
    let record = a.call_record(&sipp_call_id(&run));
    assert_eq!(record["seat"], "1003", "{record}\n{}", diag());
    assert_eq!(record["final_action"], "queue:operator:5", "{record}");
    // The seat took A's INVITE at the address it registered with on B.
    assert!(seat.messages().contains("INVITE sip:1003@"), "{}", diag());
    // Both nodes see it in wrap-up or back, never left offered.
    assert!(
        wait_until(Duration::from_secs(5), || {
            let (_, state) = seat_state(&b, "1003");
            state == "wrap_up" || state == "idle"
        }),
        "B's view of 1003: {:?}\n{}",
        seat_state(&b, "1003"),
        diag()
    );
    assert_eq!(
        a.metric("hotline_shared_seat_reservations_total{result=\"won\"}"),
        1.0
    );
    assert_eq!(a.metric("hotline_shared_state_up"), 1.0);
}

/// What a seat saw.
#[derive(Debug, Default)]
struct SeatStats {
    /// INVITEs taken (answered).
    answered: u32,
    /// INVITEs that came while the seat was ringing or talking.
    overlaps: Vec<String>,
    /// The nodes that rang it.
    rung_by: HashSet<SocketAddr>,
}

/// A seat that answers every INVITE at once, talks `talk`, hangs up
/// itself, and notes any INVITE that comes while it is still busy (which it
/// refuses with 486). Registered by SIPp from the port it then listens on.
struct CountingSeat {
    id: String,
    stats: Arc<Mutex<SeatStats>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A call the seat is in.
struct Dialog {
    call_id: String,
    peer: SocketAddr,
    /// Request URI of our BYE: the INVITE's Contact.
    target: String,
    /// Our From (their To, with our tag) and our To (their From).
    ours: String,
    theirs: String,
    bye_at: Instant,
}

fn headers(msg: &str) -> Vec<(String, String)> {
    msg.split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            let k = match k.trim().to_ascii_lowercase().as_str() {
                "v" => "via".to_string(),
                "f" => "from".into(),
                "t" => "to".into(),
                "i" => "call-id".into(),
                "m" => "contact".into(),
                other => other.to_string(),
            };
            (k, v.trim().to_string())
        })
        .collect()
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// A response echoing a request's Via, From, To, Call-ID and CSeq.
fn response(status: &str, h: &[(String, String)], to: &str, extra: &str, body: &str) -> String {
    let vias: String = h
        .iter()
        .filter(|(k, _)| k == "via")
        .map(|(_, v)| format!("Via: {v}\r\n"))
        .collect();
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {status}\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        header(h, "from"),
        header(h, "call-id"),
        header(h, "cseq"),
        body.len()
    )
}

impl CountingSeat {
    fn start(server: &Server, id: &str, talk: Duration) -> CountingSeat {
        require("sipp", "sip-tester");
        let port = free_udp_port(1);
        let scenario = register_scenario(id, &format!("hotline-{id}"), 3600, 200, "");
        let run = sipp(server, &scenario, 1, &["-p", &port.to_string()]);
        assert!(
            run.success,
            "seat {id} did not register\n{}\n{}",
            run.describe(),
            server.log()
        );
        let socket = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let media = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stats = Arc::new(Mutex::new(SeatStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stats, stop, id) = (stats.clone(), stop.clone(), id.to_string());
            std::thread::spawn(move || {
                let media_port = media.local_addr().unwrap().port();
                let sdp = format!(
                    "v=0\r\no=seat 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {media_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                );
                let contact = format!("Contact: <sip:{id}@127.0.0.1:{port}>\r\n");
                let mut current: Option<Dialog> = None;
                // Call-ID → our last final answer, for retransmitted INVITEs.
                let mut answered: HashMap<String, String> = HashMap::new();
                let mut buf = [0u8; 8192];
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(d) = &current
                        && Instant::now() >= d.bye_at
                    {
                        let bye = format!(
                            "BYE {} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKbye{}{n};rport\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
                            d.target,
                            std::process::id(),
                            d.ours,
                            d.theirs,
                            d.call_id
                        );
                        socket.send_to(bye.as_bytes(), d.peer).ok();
                        // Free from here: the hotline may offer the next
                        // call as soon as it has the BYE.
                        current = None;
                    }
                    let (len, from) = match socket.recv_from(&mut buf) {
                        Ok(x) => x,
                        Err(_) => continue,
                    };
                    let msg = String::from_utf8_lossy(&buf[..len]).to_string();
                    if msg.starts_with("SIP/2.0") {
                        continue;
                    }
                    let method = msg.split(' ').next().unwrap_or("").to_string();
                    let h = headers(&msg);
                    let call_id = header(&h, "call-id").to_string();
                    let to = header(&h, "to").to_string();
                    match method.as_str() {
                        "INVITE" => {
                            if let Some(last) = answered.get(&call_id) {
                                socket.send_to(last.as_bytes(), from).ok();
                                continue;
                            }
                            n += 1;
                            let tagged = format!("{to};tag=seat{id}x{n}");
                            let mut s = stats.lock().unwrap();
                            s.rung_by.insert(from);
                            if let Some(busy) = &current {
                                s.overlaps.push(format!(
                                    "INVITE {call_id} from {from} while busy with {} ",
                                    busy.call_id
                                ));
                                let r = response("486 Busy Here", &h, &tagged, "", "");
                                socket.send_to(r.as_bytes(), from).ok();
                                answered.insert(call_id, r);
                                continue;
                            }
                            s.answered += 1;
                            drop(s);
                            let ringing = response("180 Ringing", &h, &tagged, &contact, "");
                            socket.send_to(ringing.as_bytes(), from).ok();
                            let ok = response("200 OK", &h, &tagged, &contact, &sdp);
                            socket.send_to(ok.as_bytes(), from).ok();
                            answered.insert(call_id.clone(), ok);
                            let target = header(&h, "contact")
                                .trim_start_matches('<')
                                .split('>')
                                .next()
                                .unwrap_or("")
                                .to_string();
                            current = Some(Dialog {
                                call_id,
                                peer: from,
                                target,
                                ours: tagged,
                                theirs: header(&h, "from").to_string(),
                                bye_at: Instant::now() + talk,
                            });
                        }
                        "ACK" => {}
                        "CANCEL" => {
                            let r = response("200 OK", &h, &to, "", "");
                            socket.send_to(r.as_bytes(), from).ok();
                            if current.as_ref().is_some_and(|d| d.call_id == call_id) {
                                current = None;
                            }
                        }
                        "BYE" => {
                            let r = response("200 OK", &h, &to, "", "");
                            socket.send_to(r.as_bytes(), from).ok();
                            if current.as_ref().is_some_and(|d| d.call_id == call_id) {
                                current = None;
                            }
                        }
                        _ => {
                            let r = response("200 OK", &h, &to, "", "");
                            socket.send_to(r.as_bytes(), from).ok();
                        }
                    }
                }
            })
        };
        CountingSeat {
            id: id.to_string(),
            stats,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for CountingSeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

#[test]
fn a_burst_of_fifty_callers_on_two_nodes_never_rings_a_seat_twice() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let prefix = Prefix::new("burst");
    let url = redis_url();
    let a = node("burst-a", &prefix, &url);
    let b = node("burst-b", &prefix, &url);
    // Five seats on each node; each talks 1 s and hangs up, then wraps up
    // for 1 s, so the seats take several calls each.
    let seats: Vec<CountingSeat> = (1001..=1010)
        .map(|id| {
            let server = if id <= 1005 { &a } else { &b };
            CountingSeat::start(server, &id.to_string(), Duration::from_secs(1))
        })
        .collect();
    for s in [&a, &b] {
        assert!(
            wait_until(Duration::from_secs(5), || {
                seats.iter().all(|seat| available(s, &seat.id))
            }),
            "not every seat is available on {}\n{}",
            s.http,
            s.log()
        );
    }

    // 40 callers on A and 10 on B, all placed within a second: both nodes
    // reach for the same free seats at once, and once B's callers are
    // served A's take B's seats too. Each caller stays 10 s after pressing
    // 0 (long enough to be served, not to hear the survey out).
    let scenario = operator_caller(10_000);
    let split = [(&a, 40u32), (&b, 10u32)];
    let runs: Vec<SippRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = split
            .into_iter()
            .map(|(server, calls)| {
                let scenario = scenario.clone();
                scope.spawn(move || {
                    let n = calls.to_string();
                    sipp(server, &scenario, calls, &["-r", "50", "-l", &n])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let diag = || {
        format!(
            "--- A ---\n{}--- B ---\n{}",
            a.log()
                .lines()
                .rev()
                .take(200)
                .collect::<Vec<_>>()
                .join("\n"),
            b.log()
                .lines()
                .rev()
                .take(200)
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    for run in &runs {
        assert!(run.success, "{}\n{}", run.describe(), diag());
    }

    // The seats' side: never rung while busy; the nodes rang each other's.
    let (sip_a, sip_b) = (a.sip, b.sip);
    let mut answered = 0;
    let mut across = 0;
    for (i, seat) in seats.iter().enumerate() {
        let s = seat.stats.lock().unwrap();
        assert!(
            s.overlaps.is_empty(),
            "seat {} was rung for two calls at once: {:?}\n{}",
            seat.id,
            s.overlaps,
            diag()
        );
        answered += s.answered;
        let home = if i < 5 { sip_a } else { sip_b };
        across += s.rung_by.iter().filter(|n| n.port() != home.port()).count();
        let by: Vec<&str> = s
            .rung_by
            .iter()
            .map(|n| if n.port() == sip_a.port() { "A" } else { "B" })
            .collect();
        eprintln!(
            "seat {} (registered on {}): {} calls, rung by {by:?}",
            seat.id,
            if i < 5 { "A" } else { "B" },
            s.answered
        );
    }
    assert!(
        across > 0,
        "no node rang a seat registered on the other\n{}",
        diag()
    );

    // The calls' side: every caller queued, and each call a seat answered
    // is in its node's records with that seat.
    let mut bridged = 0;
    for (server, calls) in split {
        // The writer commits in batches: wait for the last ones.
        let mut records = vec![];
        wait_until(Duration::from_secs(10), || {
            records = server.recent_calls(100);
            records.len() == calls as usize
        });
        assert_eq!(records.len(), calls as usize, "{records:?}");
        for r in &records {
            assert!(!r["queued_at"].is_null(), "never queued: {r}\n{}", diag());
            bridged += u32::from(!r["seat"].is_null());
        }
    }
    assert_eq!(bridged, answered, "records and seats disagree\n{}", diag());
    assert!(
        answered >= 20,
        "only {answered} of 50 calls reached a seat\n{}",
        diag()
    );
    let refused: f64 = [&a, &b]
        .iter()
        .map(|s| s.metric("hotline_shared_seat_reservations_total{result=\"refused\"}"))
        .sum();
    eprintln!(
        "{answered} calls bridged, {across} seats rung across nodes, {refused} reservations refused, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A TCP proxy in front of Redis that the test can cut and restore.
struct Proxy {
    stop: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(port: u16, target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let thread = {
            let (stop, links) = (stop.clone(), links.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let client = match listener.accept() {
                        Ok((c, _)) => c,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                        Err(_) => break,
                    };
                    client.set_nonblocking(false).ok();
                    let Ok(upstream) = TcpStream::connect(target) else {
                        continue;
                    };
                    let mut l = links.lock().unwrap();
                    for (from, to) in [(&client, &upstream), (&upstream, &client)] {
                        let (mut from, mut to) =
                            (from.try_clone().unwrap(), to.try_clone().unwrap());
                        std::thread::spawn(move || {
                            std::io::copy(&mut from, &mut to).ok();
                            to.shutdown(std::net::Shutdown::Both).ok();
                        });
                    }
                    l.push(client);
                    l.push(upstream);
                }
            })
        };
        Proxy {
            stop,
            links,
            thread: Some(thread),
        }
    }

    /// Refuses new connections and cuts the open ones.
    fn cut(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
        for s in self.links.lock().unwrap().drain(..) {
            s.shutdown(std::net::Shutdown::Both).ok();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

#[test]
fn a_node_cut_off_from_redis_routes_its_own_seats_and_shares_them_again() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = Prefix::new("down");
    let target = redis_addr();
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut proxy = Proxy::start(port, target);
    let a = node("down-a", &prefix, &format!("redis://127.0.0.1:{port}/"));
    let b = node("down-b", &prefix, &redis_url());
    for s in [&a, &b] {
        assert_eq!(shared_state(s), "redis", "{}", s.log());
    }
    let own = SippSeat::start(&a, "1001", Answer::Answers, 1);
    let _other = SippSeat::start(&b, "1002", Answer::Answers, 1);
    assert!(
        wait_until(Duration::from_secs(5), || available(&a, "1002")
            && available(&b, "1001")),
        "seats not shared: A sees 1002 {:?}, B sees 1001 {:?}",
        seat_state(&a, "1002"),
        seat_state(&b, "1001")
    );
    let owner_a = prefix.seat("1001")["owner"].clone();

    // Redis goes away for A.
    proxy.cut();
    assert!(
        wait_until(Duration::from_secs(3), || shared_state(&a)
            == "local (redis down)"),
        "A did not notice: {}\n{}",
        shared_state(&a),
        a.log()
    );
    assert_eq!(a.metric("hotline_shared_state_up"), 0.0);
    assert_eq!(shared_state(&b), "redis");
    // A drops B's seat at once; B drops A's when A's lease lapses.
    assert_eq!(seat_state(&a, "1002").0, "logged_out");
    assert!(
        wait_until(Duration::from_secs(6), || seat_state(&b, "1001").0
            == "logged_out"),
        "B still counts on A's seat: {:?}",
        seat_state(&b, "1001")
    );

    // A caller on A is still served by A's own seat.
    let run = sipp(&a, &operator_caller(3_000), 1, &[]);
    let diag = || {
        format!(
            "{}\n{}--- A ---\n{}--- B ---\n{}",
            run.describe(),
            own.messages(),
            a.log(),
            b.log()
        )
    };
    assert!(run.success, "{}", diag());
    let record = a.call_record(&sipp_call_id(&run));
    assert_eq!(record["seat"], "1001", "{record}\n{}", diag());

    // Redis is back: A shares again, its seat comes back to B (written by
    // A from its own state) and B's to A.
    let _proxy = Proxy::start(port, target);
    assert!(
        wait_until(Duration::from_secs(5), || shared_state(&a) == "redis"),
        "A did not reconnect\n{}",
        a.log()
    );
    assert_eq!(a.metric("hotline_shared_state_up"), 1.0);
    assert!(
        wait_until(Duration::from_secs(5), || available(&a, "1002")
            && available(&b, "1001")),
        "not restored: A sees 1002 {:?}, B sees 1001 {:?}\n{}",
        seat_state(&a, "1002"),
        seat_state(&b, "1001"),
        diag()
    );
    let stored = prefix.seat("1001");
    assert_eq!(stored["owner"], owner_a, "{stored:?}");
    assert_eq!(stored["status"], "available", "{stored:?}");
    assert!(
        wait_until(Duration::from_secs(5), || prefix.seat("1001")["activity"]
            == "idle"),
        "A's call on 1001 never ended in Redis: {:?}",
        prefix.seat("1001")
    );
}
