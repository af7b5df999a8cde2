//! Around the clock: drain on SIGTERM, reload without dropping calls, bad
//! input, rate limits and capacity, a caller that vanishes mid-call.

mod common;

use common::*;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// A call that stays up until the server sends BYE (then answers it).
fn held_call_scenario() -> String {
    uac_until_server_bye(&offer("0", ""), 60_000)
}

/// Runs SIPp in the background.
fn sipp_in_background(
    server: &Server,
    scenario: String,
    calls: u32,
) -> std::thread::JoinHandle<SippRun> {
    let sip = server.sip;
    std::thread::spawn(move || sipp_to(sip, &scenario, calls, &[]))
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rejected(status: u16, check: &str) -> String {
    let check = format!(
        "<action><ereg regexp=\"{check}\" search_in=\"msg\" check_it=\"true\" assign_to=\"1\"/></action>"
    );
    rejected_scenario("", status, &check)
}

#[test]
fn sigterm_drains_then_hangs_up_and_records() {
    let mut server = Server::start("drain", &[("shutdown", "drain_grace_secs = 3")]);
    let call = sipp_in_background(&server, held_call_scenario(), 1);
    wait_for("the call to be up", Duration::from_secs(10), || {
        server.metric("hotline_active_calls") >= 1.0
    });
    server.signal("TERM");
    wait_for("draining", Duration::from_secs(5), || {
        server.get("/healthz").0 == 503
    });
    // New calls are refused with 503 and Retry-After while draining.
    let refused = sipp(&server, &rejected(503, "Retry-After: *5"), 1, &[]);
    assert!(refused.success, "{}\n{}", refused.describe(), server.log());
    // The call in progress runs on through the grace period, then gets BYE.
    let started = Instant::now();
    let run = call.join().unwrap();
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "BYE came before the grace period"
    );
    assert_eq!(
        server.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        server.log()
    );
    // The record was flushed before exit.
    let rows = read_sqlite_calls(&server);
    let held = rows
        .iter()
        .find(|r| r.status == 200)
        .expect("the held call's record");
    assert_eq!(held.end_reason, "shutdown");
    assert_eq!(held.hangup_by, "hotline");
}

fn read_sqlite_calls(server: &Server) -> Vec<hotline::call::record::CallRecord> {
    let url = format!("sqlite://{}/hotline.db", server.dir.display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = hotline::store::Store::connect(&url).await.unwrap();
        let calls = store.recent_calls(100).await.unwrap();
        store.close().await;
        calls
    })
}

#[test]
fn reload_applies_to_new_calls_and_keeps_calls_up() {
    let server = Server::start("reload", &[]);
    let long_call = sipp_in_background(
        &server,
        uac_scenario(Some(&offer("0", "")), &pause(4000)),
        1,
    );
    wait_for("the call to be up", Duration::from_secs(10), || {
        server.metric("hotline_active_calls") >= 1.0
    });
    let original = std::fs::read_to_string(&server.config_path).unwrap();

    // A broken file is refused, names the key, and the running config stays.
    std::fs::write(
        &server.config_path,
        original.replace("[sip]\n", "[sip]\nmax_calls = 0\n"),
    )
    .unwrap();
    let (status, body) = server.post("/api/v1/admin/reload", "");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("sip.max_calls"), "{body}");
    std::fs::write(
        &server.config_path,
        original.replace("[sip]\n", "[sip]\nmax_calls = [\n"),
    )
    .unwrap();
    server.signal("HUP");
    wait_for("the failed SIGHUP reload", Duration::from_secs(5), || {
        server.metric("hotline_config_reloads_failed_total") >= 2.0
    });

    // A good file applies to new calls: one call at most, refused with 486.
    std::fs::write(
        &server.config_path,
        original.replace("[sip]\n", "[sip]\nmax_calls = 1\nmax_calls_status = 486\n"),
    )
    .unwrap();
    let (status, body) = server.post("/api/v1/admin/reload", "");
    assert_eq!(status, 200, "{body}");
    let busy = sipp(&server, &rejected(486, "486"), 1, &[]);
    assert!(busy.success, "{}\n{}", busy.describe(), server.log());

    // The call that was up all along ends normally.
    let run = long_call.join().unwrap();
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    let record = server.call_record(&sipp_call_id(&run));
    assert_eq!(record["end_reason"], "caller-bye");
    assert_eq!(server.metric("hotline_config_reloads_total"), 1.0);
}

/// Sends datagrams that are not valid SIP, or are SIP with lies in them.
fn bad_datagrams() -> Vec<Vec<u8>> {
    let good = "INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad{n}\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: bad{n}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{body}";
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
    let fill = |n: usize, len: &str, body: &str| {
        good.replace("{n}", &n.to_string())
            .replace("{len}", len)
            .replace("{body}", body)
    };
    let mut out: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        b"\0\0\0\0\0\0\0\0".to_vec(),
        vec![0xff; 1400],
        b"INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP".to_vec(),
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
        b"FOO sip:12345@127.0.0.1 SIP/2.0\r\n\r\n".to_vec(),
        fill(1, "9999", sdp).into_bytes(),
        fill(2, "3", sdp).into_bytes(),
        fill(3, "-5", sdp).into_bytes(),
        fill(4, "abc", sdp).into_bytes(),
        vec![b'A'; 65000],
    ];
    let truncated = fill(5, &sdp.len().to_string(), sdp);
    for cut in (10..truncated.len()).step_by(37) {
        out.push(truncated.as_bytes()[..cut].to_vec());
    }
    out
}

fn rss_kib(pid_dir: &str) -> u64 {
    std::fs::read_to_string(format!("{pid_dir}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn bad_input_is_dropped_and_a_call_still_works() {
    let server = Server::start("badinput", &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let bad = bad_datagrams();
    for d in &bad {
        socket.send_to(d, server.sip).ok();
    }
    // Garbage over TCP too, then a connection that just goes away.
    {
        use std::io::Write;
        let mut tcp = std::net::TcpStream::connect(server.sip)
            .unwrap_or_else(|e| panic!("server gone after UDP garbage: {e}\n{}", server.log()));
        tcp.write_all(b"NOT SIP AT ALL\r\n\r\n").ok();
        tcp.write_all(&vec![0u8; 100_000]).ok();
    }
    let pid_dir = format!("/proc/{}", server.pid());
    let before = rss_kib(&pid_dir);
    for _ in 0..30 {
        for d in &bad {
            socket.send_to(d, server.sip).ok();
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(&pid_dir);
    assert!(
        after < before + 20_000,
        "RSS grew from {before} KiB to {after} KiB on garbage"
    );
    assert!(server.metric("hotline_sip_malformed_messages_total") >= 10.0);

    // The server is alive and a normal call right after works.
    let run = sipp(
        &server,
        &uac_scenario(Some(&offer("0", "")), &pause(300)),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    assert_eq!(server.call_record(&sipp_call_id(&run))["status"], 200);
}

/// Sends raw INVITEs (to an unknown number, so nothing is answered) and
/// returns the final status each got.
fn raw_invites(server: &Server, n: usize) -> Vec<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    for i in 0..n {
        let msg = format!(
            "INVITE sip:99999@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKrl{i}\r\nFrom: <sip:a@{local}>;tag={i}\r\nTo: <sip:99999@{dst}>\r\nCall-ID: rl{i}-{pid}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            dst = server.sip,
            pid = std::process::id()
        );
        socket.send_to(msg.as_bytes(), server.sip).unwrap();
    }
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut finals = std::collections::HashMap::new();
    let mut buf = [0u8; 4096];
    while let Ok((len, _)) = socket.recv_from(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let call_id = text
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: "))
            .unwrap_or("")
            .to_string();
        if status >= 200 {
            if status == 503 {
                assert!(
                    text.contains("Retry-After: 5"),
                    "503 without Retry-After:\n{text}"
                );
            }
            finals.insert(call_id, status);
        }
    }
    finals.into_values().collect()
}

#[test]
fn invite_flood_from_one_address_is_rate_limited() {
    let server = Server::start(
        "ratelimit",
        &[("sip", "invite_rate_per_ip = 2.0\ninvite_burst_per_ip = 3.0")],
    );
    let statuses = raw_invites(&server, 20);
    assert_eq!(
        statuses.len(),
        20,
        "every INVITE got a final answer: {statuses:?}"
    );
    let passed = statuses.iter().filter(|&&s| s == 404).count();
    let limited = statuses.iter().filter(|&&s| s == 503).count();
    assert!((3..=4).contains(&passed), "burst of 3 passes: {statuses:?}");
    assert_eq!(passed + limited, 20, "{statuses:?}");
    assert!(server.metric("hotline_calls_total{result=\"rate-limited\"}") >= 16.0);
    // Refused floods leave no call records behind.
    assert_eq!(server.recent_calls(100).len(), passed);
}

#[test]
fn caller_that_vanishes_is_hung_up_on_rtp_timeout() {
    let server = Server::start("vanish", &[("media", "rtp_timeout_secs = 2")]);
    // SIPp answers nothing after the ACK and sends no RTP: the test kills it.
    let scenario = uac_scenario(Some(&offer("0", "")), &pause(30_000));
    let sip = server.sip;
    let dir = scratch("vanish-sipp");
    std::fs::write(dir.join("scenario.xml"), &scenario).unwrap();
    let mut child = std::process::Command::new("sipp")
        .current_dir(&dir)
        .args([
            "-sf",
            "scenario.xml",
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-m",
            "1",
            "-nostdin",
            "-s",
            "12345",
        ])
        .args([
            "-p",
            &free_udp_port(1).to_string(),
            "-mp",
            &free_udp_port(4).to_string(),
        ])
        .arg(sip.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the call to be up", Duration::from_secs(10), || {
        server.metric("hotline_active_calls") >= 1.0
    });
    child.kill().ok();
    child.wait().ok();
    wait_for("the call to end", Duration::from_secs(10), || {
        server.metric("hotline_active_calls") == 0.0
    });
    // The record is written just after the call ends.
    let mut calls = server.recent_calls(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        calls = server.recent_calls(1);
    }
    assert_eq!(calls[0]["end_reason"], "rtp-timeout", "{:?}", calls[0]);
    assert_eq!(calls[0]["hangup_by"], "hotline");
}

#[test]
fn broken_config_is_refused_at_start_with_the_key() {
    let dir = scratch("badconfig");
    let path = dir.join("hotline.toml");
    std::fs::write(&path, "[media]\nrtp_port_min = 20001\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("media.rtp_port_min"), "{err}");
    let err = match Server::spawn(dir.clone(), path, &[]) {
        Ok(_) => panic!("server started on a broken config"),
        Err(log) => log,
    };
    assert!(err.contains("media.rtp_port_min"), "{err}");
    // The shipped file passes.
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["config", "check"])
        .arg(repo("sip-config/hotline.toml"))
        .current_dir(repo(""))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// `cargo run --release` in the repository: no file named, embedded
/// defaults (only the listen addresses moved to free loopback ports).
#[test]
fn embedded_defaults_serve_a_call() {
    let args: Vec<String> = [
        "--sip-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let server = Server::spawn_args(repo(""), repo("sip-config/hotline.toml"), &args, &[])
        .unwrap_or_else(|log| panic!("defaults did not start:\n{log}"));
    let run = sipp(
        &server,
        &uac_scenario(Some(&offer("0", "")), &pause(300)),
        1,
        &[],
    );
    assert!(run.success, "{}\n{}", run.describe(), server.log());
    assert_eq!(server.call_record(&sipp_call_id(&run))["status"], 200);
    assert!(
        repo("data/hotline.db").is_file(),
        "the default SQLite file was not created"
    );
}
