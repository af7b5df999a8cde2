//! Test harness: the real `hotline` binary on free loopback ports, driven by
//! real peers (SIPp, baresip) and checked through its HTTP API and by
//! decoding the audio peers receive.
#![allow(dead_code)]

pub mod baresip;
pub mod browser;
pub mod callers;
pub mod conversation;
pub mod desk;
pub mod events;
pub mod media;
pub mod orders;
pub mod push;
pub mod rtc_client;
pub mod seat;
pub mod temp_db;
pub mod trunk;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running server with its ports and log.
pub struct Server {
    child: Option<Child>,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    log: Arc<Mutex<String>>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh scratch folder under the system temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("hotline-test-{}-{}-{n}", std::process::id(), name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Absolute path of a file in the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Copies the shipped flows and prompts to a folder a test may edit.
pub fn editable_flows(dir: &Path) -> PathBuf {
    let flows = dir.join("flows");
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo("ivr-flows"))
        .arg(&flows)
        .status()
        .unwrap();
    assert!(status.success());
    flows
}

/// Calls `check` every `every` until it gives a value or `limit` has
/// passed (then `None`); it is always called at least once.
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Fails with an install hint when a peer is missing: tests never pass silently.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is required for this test: apt-get install {package} (scripts/test installs it)"
    );
}

/// A config file for a test server: the shipped defaults plus `extra` TOML
/// lines appended to the named sections.
pub fn config_text(dir: &Path, sections: &[(&str, &str)]) -> String {
    let mut text = String::new();
    let db = format!("sqlite://{}/hotline.db", dir.display());
    let flows = repo("ivr-flows");
    let mut all: Vec<(String, String)> = vec![
        ("sip".into(), "listen = \"127.0.0.1:0\"\n".into()),
        ("http".into(), "listen = \"127.0.0.1:0\"\n".into()),
        ("media".into(), "bind_ip = \"127.0.0.1\"\n".into()),
        ("store".into(), format!("database_url = \"{db}\"\n")),
        (
            "ivr".into(),
            format!(
                "flows_dir = \"{}\"\ncalendar_dir = \"{}\"\nrecordings_dir = \"{}\"\n",
                flows.display(),
                repo("sip-config/calendar").display(),
                dir.join("recordings").display()
            ),
        ),
        (
            "orders".into(),
            format!(
                "catalogue = \"{}\"\nunits = \"{}\"\nspool_dir = \"{}\"\n",
                repo("sip-config/catalogue.toml").display(),
                repo("sip-config/units.toml").display(),
                dir.join("spool").display()
            ),
        ),
    ];
    for (section, lines) in sections {
        match all.iter_mut().find(|(s, _)| s == section) {
            Some((_, body)) => {
                // A key the test sets replaces the harness default.
                for line in lines.lines() {
                    if let Some((key, _)) = line.split_once('=') {
                        let key = format!("{} =", key.trim());
                        *body = body
                            .lines()
                            .filter(|l| !l.starts_with(&key))
                            .map(|l| format!("{l}\n"))
                            .collect();
                    }
                }
                body.push_str(lines);
                body.push('\n');
            }
            None => all.push((section.to_string(), format!("{lines}\n"))),
        }
    }
    for (section, body) in all {
        text.push_str(&format!("[{section}]\n{body}\n"));
    }
    text
}

impl Server {
    /// Starts a server with extra config lines per section.
    pub fn start(name: &str, sections: &[(&str, &str)]) -> Server {
        Self::start_with_env(name, sections, &[])
    }

    /// Starts a server with extra environment variables too.
    pub fn start_with_env(name: &str, sections: &[(&str, &str)], env: &[(&str, &str)]) -> Server {
        let dir = scratch(name);
        let config_path = dir.join("hotline.toml");
        std::fs::write(&config_path, config_text(&dir, sections)).unwrap();
        Self::spawn(dir, config_path, env).expect("server did not start")
    }

    /// Spawns the binary on a config; returns its error output if it exits.
    pub fn spawn(
        dir: PathBuf,
        config_path: PathBuf,
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let args = vec![
            "serve".to_string(),
            "--config".into(),
            config_path.display().to_string(),
        ];
        Self::spawn_args(dir, config_path, &args, env)
    }

    /// Spawns the binary with these arguments in `dir`.
    pub fn spawn_args(
        dir: PathBuf,
        config_path: PathBuf,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotline"));
        cmd.args(args)
            .current_dir(&dir)
            .env("HOTLINE_LOG", "info,rsipstack=warn,sqlx=warn")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn hotline");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("hotline ready")
                    && let Some(tx) = ready_tx.take()
                {
                    tx.send(line.clone()).ok();
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let line = match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                child.kill().ok();
                child.wait().ok();
                std::thread::sleep(Duration::from_millis(100));
                return Err(log.lock().unwrap().clone());
            }
        };
        let field = |name: &str| -> SocketAddr {
            let start = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
            let end = line[start..].find(' ').map_or(line.len(), |e| start + e);
            line[start..end].trim().parse().unwrap()
        };
        Ok(Server {
            sip: field("sip"),
            http: field("http"),
            child: Some(child),
            dir,
            config_path,
            log,
        })
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `text` (lines reach it through a pipe,
    /// a little after the server acts).
    pub fn wait_log(&self, text: &str, limit: Duration) -> bool {
        poll(limit, Duration::from_millis(50), || {
            self.log().contains(text).then_some(())
        })
        .is_some()
    }

    /// Fails, showing the log, unless `text` reaches the log within `limit`.
    pub fn expect_log(&self, text: &str, limit: Duration) {
        assert!(
            self.wait_log(text, limit),
            "{text:?} not logged within {limit:?}\n{}",
            self.log()
        );
    }

    /// GET a path; returns (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.http, "GET", path, "")
    }

    /// POST a path with a JSON body.
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        http(self.http, "POST", path, body)
    }

    /// A call record as JSON, waiting for the writer to commit it.
    pub fn call_record(&self, call_id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = self.get(&format!("/api/v1/calls/{}", urlencode(call_id)));
            if status == 200 {
                return serde_json::from_str(&body).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no call record for {call_id}: {status} {body}\nserver log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The newest `n` call records.
    pub fn recent_calls(&self, n: usize) -> Vec<serde_json::Value> {
        let (status, body) = self.get(&format!("/api/v1/calls?limit={n}"));
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["calls"].as_array().unwrap().clone()
    }

    /// A Prometheus metric's value (first sample whose line starts with `name`).
    pub fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} not found in:\n{text}"))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A minimal HTTP/1.1 exchange (Connection: close); enough for a JSON API.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to API");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// An RTP socket and its RTCP neighbour, both bound on 127.0.0.1 at an
/// even port and its odd successor. Held from the start, so no other test
/// can take the port between choosing it and using it.
pub fn rtp_sockets() -> (UdpSocket, UdpSocket) {
    for _ in 0..200 {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if !port.is_multiple_of(2) || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
            return (rtp, rtcp);
        }
    }
    panic!("no free UDP port pair");
}

/// A UDP port free right now on 127.0.0.1 (with `span` free ports above it),
/// for a peer that binds it itself (SIPp, baresip). A socket the test owns
/// comes from [`rtp_sockets`] instead, so the port cannot be lost.
pub fn free_udp_port(span: u16) -> u16 {
    for _ in 0..200 {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let base = s.local_addr().unwrap().port();
        if !base.is_multiple_of(2) || base > 65000 {
            continue;
        }
        let others: Vec<_> = (1..span)
            .map(|i| UdpSocket::bind(("127.0.0.1", base + i)))
            .collect();
        if others.iter().all(|o| o.is_ok()) {
            return base;
        }
    }
    panic!("no free UDP port range");
}

/// The outcome of a SIPp run.
pub struct SippRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub dir: PathBuf,
}

impl SippRun {
    /// Call-IDs SIPp used (from the -trace_msg log when enabled, else from
    /// the scenario's fixed call ids).
    pub fn describe(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs SIPp with a scenario (XML text) against the server: `-m calls`.
pub fn sipp(server: &Server, scenario: &str, calls: u32, extra: &[&str]) -> SippRun {
    sipp_to(server.sip, scenario, calls, extra)
}

/// Runs SIPp with a scenario against a SIP address.
pub fn sipp_to(target: SocketAddr, scenario: &str, calls: u32, extra: &[&str]) -> SippRun {
    require("sipp", "sip-tester");
    let dir = scratch("sipp");
    std::fs::write(dir.join("scenario.xml"), scenario).unwrap();
    // play_pcap_audio paths are relative: pcap/ -> the shipped captures.
    std::os::unix::fs::symlink("/usr/share/sip-tester", dir.join("pcap")).ok();
    let port = free_udp_port(1);
    let media_port = free_udp_port(4);
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&dir)
        .args(["-sf", "scenario.xml", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-mp", &media_port.to_string()])
        .args([
            "-m",
            &calls.to_string(),
            "-nostdin",
            "-timeout",
            "60",
            "-timeout_error",
        ])
        .args(["-trace_err", "-trace_msg", "-s", "12345"])
        .args(extra)
        .arg(target.to_string())
        .stdin(Stdio::null());
    let out = cmd.output().expect("run sipp");
    SippRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        dir,
    }
}

/// SIPp running a scenario in the background on a loopback port (a UAS:
/// a trunk's far end, a seat), killed when dropped.
pub struct SippProcess {
    pub child: Child,
    /// SIPp's folder: the scenario and its `-trace_*` logs.
    pub dir: PathBuf,
}

impl SippProcess {
    /// Writes `scenario` (XML text) to a fresh folder named after `name`
    /// and starts SIPp on it at `127.0.0.1:port`, media on free ports,
    /// tracing messages and errors, with `extra` arguments; returns once
    /// SIPp holds the port.
    pub fn start(name: &str, scenario: &str, port: u16, extra: &[&str]) -> SippProcess {
        require("sipp", "sip-tester");
        let dir = scratch(name);
        std::fs::write(dir.join("scenario.xml"), scenario).unwrap();
        let child = Command::new("sipp")
            .current_dir(&dir)
            .args(["-sf", "scenario.xml", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string()])
            .args(["-mp", &free_udp_port(4).to_string()])
            .args(["-nostdin", "-trace_msg", "-trace_err"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn sipp ({name}): {e}"));
        // Ready once SIPp holds its port.
        let bound = poll(Duration::from_secs(5), Duration::from_millis(20), || {
            UdpSocket::bind(("127.0.0.1", port)).is_err().then_some(())
        });
        assert!(bound.is_some(), "SIPp ({name}) did not bind port {port}");
        SippProcess { child, dir }
    }

    /// The logs SIPp wrote whose names end with one of `suffixes`, each
    /// headed `--- <label> <file name> ---`.
    pub fn logs(&self, label: &str, suffixes: &[&str]) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if suffixes.iter().any(|s| name.ends_with(s)) {
                text.push_str(&format!("--- {label} {name} ---\n"));
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text
    }

    /// The SIP messages and errors SIPp logged, headed with `label`.
    pub fn messages(&self, label: &str) -> String {
        self.logs(label, &["_messages.log", "_errors.log"])
    }
}

impl Drop for SippProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A SIPp `<send>` of a request inside the dialog a UAS scenario answered,
/// to the caller's Contact and From (captured as `contact` and `from`):
/// From `from` with our tag, then `headers` (lines ending in `\n`) and
/// `body`.
pub fn uas_request(method: &str, cseq: u32, from: &str, headers: &str, body: &str) -> String {
    format!(
        r#"  <send retrans="500"><![CDATA[
{method} [$contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: {from};tag=[pid]SIPpTag01[call_number]
To: [$from]
Call-ID: [call_id]
CSeq: {cseq} {method}
{headers}Max-Forwards: 70
Content-Length: [len]

{body}]]></send>
"#
    )
}

/// A SIPp `<send>` of a response to the last request a UAS scenario
/// took: To with `to_tag` added if given (none for a request inside the
/// dialog, which already carries it), Contact `contact` (a URI), and
/// `body` as SDP if not empty.
pub fn uas_reply(status: &str, to_tag: Option<&str>, contact: &str, body: &str) -> String {
    let to = match to_tag {
        Some(tag) => format!("[last_To:];tag={tag}"),
        None => "[last_To:]".to_owned(),
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    format!(
        "  <send><![CDATA[\nSIP/2.0 {status}\n[last_Via:]\n[last_From:]\n{to}\n[last_Call-ID:]\n[last_CSeq:]\n\
         Contact: <{contact}>\n{ctype}Content-Length: [len]\n\n{body}]]></send>\n"
    )
}

/// A SIPp `<recv>` of a NOTIFY (with `attrs`, such as ` optional="true"`)
/// that keeps its sipfrag status line in the variable `frag` and its
/// Subscription-State in `state`, and logs `NOTIFY <status> <state>`
/// (`-trace_logs`).
pub fn logged_notify(attrs: &str, frag: &str, state: &str) -> String {
    format!(
        r#"  <recv request="NOTIFY"{attrs}>
    <action>
      <ereg regexp="SIP/2.0 [0-9]+" search_in="body" check_it="true" assign_to="{frag}"/>
      <ereg regexp="[a-z]+" search_in="hdr" header="Subscription-State:" check_it="true" assign_to="{state}"/>
      <log message="NOTIFY [${frag}] [${state}]"/>
    </action>
  </recv>
"#
    )
}

/// The SIP messages SIPp logged (`-trace_msg`).
pub fn sipp_messages(run: &SippRun) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(&run.dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with("_messages.log") || name.ends_with("_errors.log") {
            all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    all
}

/// RTP packets received on a socket until `quiet` passes without one or
/// `limit` is reached: (payload type, payload) in arrival order.
pub fn capture_rtp(
    socket: &UdpSocket,
    limit: Duration,
    quiet: Duration,
) -> Vec<(u8, Vec<u8>, Instant)> {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let start = Instant::now();
    let mut last = None::<Instant>;
    let mut packets = Vec::new();
    let mut buf = [0u8; 2048];
    while start.elapsed() < limit {
        match socket.recv_from(&mut buf) {
            Ok((n, _)) if n > 12 && buf[0] >> 6 == 2 => {
                let pt = buf[1] & 0x7f;
                let cc = (buf[0] & 0x0f) as usize;
                let off = 12 + 4 * cc;
                packets.push((pt, buf[off..n].to_vec(), Instant::now()));
                last = Some(Instant::now());
            }
            Ok(_) => {}
            Err(_) => {
                if last.is_some_and(|l| l.elapsed() > quiet) {
                    break;
                }
            }
        }
    }
    packets
}

/// Decodes G.711 µ-law or A-law bytes.
pub fn decode(law_pt: u8, bytes: &[u8]) -> Vec<i16> {
    let law = if law_pt == 8 {
        hotline::media::g711::Law::Alaw
    } else {
        hotline::media::g711::Law::Ulaw
    };
    let mut out = vec![0; bytes.len()];
    law.decode_frame(bytes, &mut out);
    out
}

/// Energy per 20 ms window.
pub fn envelope(pcm: &[i16]) -> Vec<f64> {
    pcm.chunks(160)
        .map(|w| {
            (w.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / w.len() as f64).sqrt()
        })
        .collect()
}

/// Best normalised correlation of `heard`'s envelope against `reference`'s,
/// over every alignment (the caller may have joined the loop anywhere).
pub fn best_envelope_correlation(heard: &[i16], reference: &[i16]) -> f64 {
    let h = envelope(heard);
    let r = envelope(reference);
    assert!(h.len() >= 25, "too little audio heard: {} frames", h.len());
    // Compare the reference looped twice so any starting offset fits.
    let rr: Vec<f64> = r.iter().chain(r.iter()).copied().collect();
    let n = h.len().min(r.len());
    let h = &h[..n];
    let mut best = f64::MIN;
    for off in 0..r.len() {
        let w = &rr[off..off + n];
        best = best.max(pearson(h, w));
    }
    best
}

/// Pearson correlation of two equally long series.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut num, mut da, mut db) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        num += (x - ma) * (y - mb);
        da += (x - ma) * (x - ma);
        db += (y - mb) * (y - mb);
    }
    if da == 0.0 || db == 0.0 {
        0.0
    } else {
        num / (da * db).sqrt()
    }
}

/// The shipped greeting, decoded.
pub fn greeting_pcm() -> Vec<i16> {
    hotline::media::prompt::Prompt::load(&repo("ivr-flows/prompts/cmn/welcome.wav"))
        .unwrap()
        .pcm()
        .to_vec()
}

/// A SIPp UAC scenario: INVITE (with `sdp` body or none), optional steps after
/// the ACK, then BYE. `[media_port]` etc. are SIPp keywords.
pub fn uac_scenario(sdp: Option<&str>, after_ack: &str) -> String {
    let (ctype, body) = match sdp {
        Some(s) => ("Content-Type: application/sdp\n", s.trim()),
        None => ("", ""),
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:13800138000@[local_ip]:[local_port]
Max-Forwards: 70
{ctype}Content-Length: [len]

{body}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:13800138000@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
{after_ack}
  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 10 BYE
Contact: sip:13800138000@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"#
    )
}

/// A SIPp UAC scenario whose call stays up until the server sends BYE
/// (answered with 200), waiting at most `timeout_ms` for it.
pub fn uac_until_server_bye(sdp: &str, timeout_ms: u32) -> String {
    let head = uac_scenario(Some(sdp), "");
    let head = head
        .split("  <send retrans=\"500\"><![CDATA[\nBYE")
        .next()
        .expect("the scenario ends with a BYE");
    format!(
        r#"{head}  <recv request="BYE" timeout="{timeout_ms}"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"#
    )
}

/// An SDP offer from SIPp's media socket with the given payload types.
pub fn offer(formats: &str, rtpmaps: &str) -> String {
    format!(
        "v=0\no=caller 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\nm=audio [media_port] RTP/AVP {formats}\n{rtpmaps}"
    )
}

/// An SDP offer pointing at a socket the test itself reads.
pub fn offer_to(port: u16, formats: &str, rtpmaps: &str) -> String {
    format!(
        "v=0\no=caller 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio {port} RTP/AVP {formats}\n{rtpmaps}"
    )
}

/// A SIP INFO carrying a DTMF digit (application/dtmf-relay).
pub fn info_dtmf(digit: char, cseq: u32) -> String {
    format!(
        r#"  <send retrans="500"><![CDATA[
INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} INFO
Contact: sip:13800138000@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={digit}
Duration=160
]]></send>
  <recv response="200"/>
"#
    )
}

/// A SIPp action playing a shipped RTP capture.
pub fn play_pcap(name: &str) -> String {
    format!("  <nop><action><exec play_pcap_audio=\"pcap/{name}\"/></action></nop>\n")
}

/// A SIPp pause.
pub fn pause(ms: u32) -> String {
    format!("  <pause milliseconds=\"{ms}\"/>\n")
}

/// The Call-ID of the first call SIPp placed (from its message trace).
pub fn sipp_call_id(run: &SippRun) -> String {
    let messages = sipp_messages(run);
    messages
        .lines()
        .find_map(|l| {
            l.strip_prefix("Call-ID: ")
                .or_else(|| l.strip_prefix("Call-ID:"))
        })
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no Call-ID in SIPp trace:\n{messages}\n{}", run.describe()))
}

/// A call placed with hand-written SIP over a plain UDP socket, for tests
/// that need exact control of every message.
pub struct RawCall {
    pub sip: UdpSocket,
    pub server: SocketAddr,
    pub call_id: String,
    /// The server's To header (with its tag) from the 200.
    pub to: String,
    /// Where the server wants RTP, from its SDP answer.
    pub server_rtp: SocketAddr,
    pub answer: String,
    /// The caller's number, for the From of in-dialog requests.
    number: String,
}

impl RawCall {
    /// INVITE with an SDP offer pointing at `rtp_port` on 127.0.0.1; waits
    /// for the 200 and ACKs it.
    pub fn place(server: &Server, rtp_port: u16, formats: &str, rtpmaps: &str) -> RawCall {
        Self::place_from(
            server,
            "13800138000",
            rtp_port,
            formats,
            rtpmaps,
            Duration::from_secs(5),
        )
    }

    /// [`RawCall::place`] from caller `number`, waiting up to `answer_within`
    /// for each answer to the INVITE.
    pub fn place_from(
        server: &Server,
        number: &str,
        rtp_port: u16,
        formats: &str,
        rtpmaps: &str,
        answer_within: Duration,
    ) -> RawCall {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = sip.local_addr().unwrap();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let call_id = format!("raw-{}-{n}", std::process::id());
        let sdp = offer_to(rtp_port, formats, rtpmaps).replace('\n', "\r\n");
        let invite = format!(
            "INVITE sip:12345@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call_id}i\r\nFrom: <sip:{number}@{me}>;tag=raw\r\nTo: <sip:12345@{dst}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:{number}@{me}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            dst = server.sip,
            len = sdp.len(),
        );
        sip.send_to(invite.as_bytes(), server.sip).unwrap();
        sip.set_read_timeout(Some(answer_within)).unwrap();
        let mut buf = [0u8; 4096];
        let ok = loop {
            let (len, _) = sip.recv_from(&mut buf).expect("no 200 to the raw INVITE");
            let text = String::from_utf8_lossy(&buf[..len]).to_string();
            if text.starts_with("SIP/2.0 200") {
                break text;
            }
            assert!(text.starts_with("SIP/2.0 1"), "unexpected answer:\n{text}");
        };
        let to = ok
            .lines()
            .find(|l| l.starts_with("To:"))
            .unwrap()
            .to_string();
        let port: u16 = ok
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .unwrap();
        let call = RawCall {
            server: server.sip,
            call_id,
            to,
            server_rtp: SocketAddr::new(server.sip.ip(), port),
            answer: ok,
            sip,
            number: number.to_owned(),
        };
        call.request("ACK", 1);
        call
    }

    /// Sends an in-dialog request with no body.
    pub fn request(&self, method: &str, cseq: u32) {
        let me = self.sip.local_addr().unwrap();
        let msg = format!(
            "{method} sip:12345@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{id}{method}{cseq}\r\nFrom: <sip:{number}@{me}>;tag=raw\r\n{to}\r\nCall-ID: {id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            dst = self.server,
            id = self.call_id,
            to = self.to,
            number = self.number,
        );
        self.sip.send_to(msg.as_bytes(), self.server).unwrap();
    }

    /// Hangs up and waits for the 200.
    pub fn bye(&self) {
        self.request("BYE", 2);
        let mut buf = [0u8; 4096];
        loop {
            let (len, _) = self.sip.recv_from(&mut buf).expect("no answer to BYE");
            if String::from_utf8_lossy(&buf[..len]).contains("CSeq: 2 BYE") {
                return;
            }
        }
    }
}

/// An RTP packet: PCMU, this SSRC, sequence and timestamp.
pub fn rtp_packet(ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80u8, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A SIPp scenario whose INVITE (with `sdp`, or none when empty) must be
/// refused with `status`; `checks` go inside the `<recv>` (an `<action>`).
pub fn rejected_scenario(sdp: &str, status: u16, checks: &str) -> String {
    let (ctype, body) = if sdp.is_empty() {
        ("", "")
    } else {
        ("Content-Type: application/sdp\n", sdp)
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="rejected">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:13800138000@[local_ip]:[local_port]
Max-Forwards: 70
{ctype}Content-Length: [len]

{body}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="{status}">{checks}</recv>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
{reference}</scenario>
"#,
        reference = if checks.contains("assign_to") {
            "  <Reference variables=\"1\"/>\n"
        } else {
            ""
        },
    )
}

/// Presses a key as RFC 4733 events from the caller's RTP socket.
pub fn press(socket: &UdpSocket, to: std::net::SocketAddr, key: char, ts: u32, seq: &mut u16) {
    let event = match key {
        '*' => 10,
        '#' => 11,
        d => d.to_digit(10).unwrap() as u8,
    };
    for i in 0..8u16 {
        let end = i >= 5;
        let duration = (i + 1) * 160;
        let mut payload = vec![event, if end { 0x80 | 10 } else { 10 }];
        payload.extend_from_slice(&duration.to_be_bytes());
        let mut p = rtp_packet(0x00c0_ffee, *seq, ts, &payload);
        p[1] = 101 | if i == 0 { 0x80 } else { 0 };
        socket.send_to(&p, to).unwrap();
        *seq = seq.wrapping_add(1);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A shipped Mandarin prompt, decoded.
pub fn prompt_pcm(name: &str) -> Vec<i16> {
    hotline::media::prompt::Prompt::load(&repo(&format!("ivr-flows/prompts/cmn/{name}.wav")))
        .unwrap()
        .pcm()
        .to_vec()
}

/// Where (in 20 ms frames) the first `secs` of a prompt best match what was
/// heard, and how well (Pearson correlation of energy envelopes).
pub fn locate(heard: &[f64], prompt: &str, secs: f64) -> (usize, f64) {
    let reference = envelope(&prompt_pcm(prompt));
    let n = ((secs * 50.0) as usize).min(reference.len());
    let template = &reference[..n];
    let mut best = (0, f64::MIN);
    for off in 0..heard.len().saturating_sub(n) {
        let c = pearson(&heard[off..off + n], template);
        if c > best.1 {
            best = (off, c);
        }
    }
    best
}

/// Fails unless the first `secs` of `prompt` are heard in `pcm` (energy
/// envelopes correlated above 0.8), within its first second if
/// `at_start`; `context` and `diag` explain a failure. Returns where (in
/// 20 ms frames) and how well.
pub fn expect_prompt(
    pcm: &[i16],
    prompt: &str,
    secs: f64,
    at_start: bool,
    context: &str,
    diag: impl Fn() -> String,
) -> (usize, f64) {
    let (at, corr) = locate(&envelope(pcm), prompt, secs);
    assert!(
        corr > 0.8 && (!at_start || at < 50),
        "{context}: {prompt} not heard{}: best r = {corr:.2} at {:.2} s\n{}",
        if at_start { " at the start" } else { "" },
        at as f64 / 50.0,
        diag()
    );
    (at, corr)
}
