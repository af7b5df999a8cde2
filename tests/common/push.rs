//! The region platform's side of the data push, for tests: a consumer of
//! the Redis stream, an HTTP receiver that can fail on purpose, and the
//! standalone `hotline push` process (which a test may SIGKILL).

use super::poll;
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One pushed event as a consumer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub event_id: String,
    pub seq: i64,
    pub stream: String,
    pub kind: String,
    pub payload: Value,
}

impl Seen {
    fn from_json(v: &Value) -> Seen {
        Seen {
            event_id: v["event_id"].as_str().unwrap_or_default().to_owned(),
            seq: v["seq"].as_i64().unwrap_or(-1),
            stream: v["stream"].as_str().unwrap_or_default().to_owned(),
            kind: v["kind"].as_str().unwrap_or_default().to_owned(),
            payload: v["payload"].clone(),
        }
    }
}

/// The Redis URL tests use (`HOTLINE_TEST_REDIS`).
pub fn redis_url() -> String {
    std::env::var("HOTLINE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A stream key of this test's own, deleted on drop.
pub struct RedisStream {
    pub key: String,
    client: redis::Client,
}

impl RedisStream {
    pub fn new(tag: &str) -> RedisStream {
        let key = format!(
            "hotline-test:{}:{tag}:{}:events",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let client = redis::Client::open(redis_url()).unwrap();
        let mut con = client.get_connection().unwrap_or_else(|e| {
            panic!(
                "Redis at {} is required for this test (scripts/test starts it): {e}",
                redis_url()
            )
        });
        let _: () = redis::cmd("DEL").arg(&key).query(&mut con).unwrap();
        RedisStream { key, client }
    }

    /// Everything in the stream, oldest first.
    pub fn read(&self) -> Vec<Seen> {
        let mut con = self.client.get_connection().unwrap();
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&self.key)
            .arg("-")
            .arg("+")
            .query(&mut con)
            .unwrap();
        entries
            .into_iter()
            .map(|(_, fields)| {
                let get = |name: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                Seen {
                    event_id: get("event_id"),
                    seq: get("seq").parse().unwrap_or(-1),
                    stream: get("stream"),
                    kind: get("kind"),
                    payload: serde_json::from_str(&get("payload")).unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Waits until the stream holds at least `n` entries.
    pub fn wait_len(&self, n: usize, limit: Duration) -> Vec<Seen> {
        poll(limit, Duration::from_millis(50), || {
            let seen = self.read();
            (seen.len() >= n).then_some(seen)
        })
        .unwrap_or_else(|| panic!("{} has fewer than {n} entries: {:?}", self.key, self.read()))
    }
}

impl Drop for RedisStream {
    fn drop(&mut self) {
        if let Ok(mut con) = self.client.get_connection() {
            let _: Result<(), _> = redis::cmd("DEL").arg(&self.key).query(&mut con);
        }
    }
}

/// Events in first-seen order with repeats (by event_id) dropped, as a
/// platform that deduplicates keeps them.
pub fn dedup(seen: &[Seen]) -> Vec<Seen> {
    let mut ids = HashSet::new();
    seen.iter()
        .filter(|s| ids.insert(s.event_id.clone()))
        .cloned()
        .collect()
}

/// What the HTTP receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Ok = 0,
    Fail = 1,
}

/// An HTTP endpoint taking POSTed batches (`{"events": [...]}`): 200 and
/// keep them, or 500 and drop them.
pub struct Receiver {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    events: Arc<Mutex<Vec<Seen>>>,
    requests: Arc<AtomicU32>,
}

impl Receiver {
    /// Listens on `addr` (port 0: any free port).
    pub fn start(addr: SocketAddr, answer: Reply) -> Receiver {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(answer as u8));
        let events = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicU32::new(0));
        let (m, e, r) = (mode.clone(), events.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (m, e, r) = (m.clone(), e.clone(), r.clone());
                std::thread::spawn(move || serve(conn, &m, &e, &r));
            }
        });
        Receiver {
            addr,
            mode,
            events,
            requests,
        }
    }

    pub fn answer(&self, answer: Reply) {
        self.mode.store(answer as u8, Ordering::Relaxed);
    }

    /// Batches posted so far, accepted or not.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Accepted events, in arrival order.
    pub fn events(&self) -> Vec<Seen> {
        self.events.lock().unwrap().clone()
    }
}

/// One keep-alive connection: request after request.
fn serve(conn: TcpStream, mode: &AtomicU8, events: &Mutex<Vec<Seen>>, requests: &AtomicU32) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut length = 0;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::Relaxed);
        let status = if mode.load(Ordering::Relaxed) == Reply::Ok as u8 {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let batch = v["events"].as_array().cloned().unwrap_or_default();
            events
                .lock()
                .unwrap()
                .extend(batch.iter().map(Seen::from_json));
            "200 OK"
        } else {
            "500 Internal Server Error"
        };
        if write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").is_err() {
            return;
        }
    }
}

/// A `hotline push` process with its log.
pub struct PushProcess {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl PushProcess {
    /// Starts `hotline push --config <config>` in `dir` and waits until it
    /// is up.
    pub fn start(dir: &Path, config: &Path) -> PushProcess {
        PushProcess::start_with(dir, config, &[])
    }

    /// As [`PushProcess::start`], with more arguments.
    pub fn start_with(dir: &Path, config: &Path, args: &[&str]) -> PushProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .arg("push")
            .arg("--config")
            .arg(config)
            .args(args)
            .current_dir(dir)
            .env("HOTLINE_LOG", "info,sqlx=warn")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hotline push");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let p = PushProcess {
            child: Some(child),
            log,
        };
        p.expect_log("hotline push ready", Duration::from_secs(30));
        p
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn expect_log(&self, text: &str, limit: Duration) {
        let found = poll(limit, Duration::from_millis(50), || {
            self.log().contains(text).then_some(())
        });
        assert!(
            found.is_some(),
            "{text:?} not logged within {limit:?}:\n{}",
            self.log()
        );
    }

    /// The figures it serves (started with `--metrics-listen`).
    pub fn metrics(&self) -> String {
        let log = self.log();
        let addr = log
            .lines()
            .find_map(|l| l.split("metrics=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no metrics address logged:\n{log}"));
        let (status, body) = super::http(addr, "GET", "/metrics", "");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// SIGKILL: no chance to finish a batch or give up the lease.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Waits for the process to exit; its code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        poll(limit, Duration::from_millis(50), || {
            child.try_wait().unwrap().map(|s| s.code().unwrap_or(-1))
        })
    }
}

impl Drop for PushProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
