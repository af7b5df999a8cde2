//! The order API from a test: a small HTTP/1.1 JSON client that sends an
//! `Authorization: Bearer` token and an `Idempotency-Key` and keeps the
//! response headers, and [`user`], which makes an API user with the real
//! `hotline users add` against a running server's config.

use super::Server;
use serde_json::Value;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// One answer from the API.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body as sent.
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
}

impl Answer {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON body, failing unless the status is `status`.
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "wanted {status}, got {self}");
        &self.json
    }

    /// The `field` a 400 names, failing unless it is a 400.
    pub fn field(&self) -> &str {
        self.expect(400)["field"]
            .as_str()
            .unwrap_or_else(|| panic!("no field named: {self}"))
    }

    /// The `error` text, failing unless the status is `status`.
    pub fn error(&self, status: u16) -> &str {
        let message = self.expect(status)["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error text: {self}"));
        assert!(!message.trim().is_empty(), "empty error text: {self}");
        message
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.text)
    }
}

/// A user of the API: the server's address and, normally, a bearer token.
#[derive(Debug, Clone)]
pub struct Client {
    addr: SocketAddr,
    token: Option<String>,
}

impl Client {
    /// Acts with `token`.
    pub fn new(server: &Server, token: &str) -> Client {
        Client {
            addr: server.http,
            token: Some(token.to_owned()),
        }
    }

    /// Sends no `Authorization` header (unless a test adds its own).
    pub fn anonymous(server: &Server) -> Client {
        Client {
            addr: server.http,
            token: None,
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], "")
    }

    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.send("POST", path, &[], &body.to_string())
    }

    /// POST with an `Idempotency-Key`.
    pub fn post_keyed(&self, path: &str, key: &str, body: &Value) -> Answer {
        self.send("POST", path, &[("Idempotency-Key", key)], &body.to_string())
    }

    /// One request with extra headers and a raw body; the token (if any)
    /// goes first as `Authorization: Bearer`.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        exchange(self.addr, &head, body)
    }
}

/// Writes one request and reads the answer to its end (`Connection: close`).
fn exchange(addr: SocketAddr, head: &str, body: &str) -> Answer {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to API");
    // Longer than the store's 5 s pool timeout, so a hang shows as one.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("no answer to {head:?}: {e}"));
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let text = if chunked {
        super::dechunk(body)
    } else {
        body.to_owned()
    };
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

/// Adds an API user with `hotline users add` on the server's config (and
/// so its database) and returns the token it printed.
pub fn user(server: &Server, name: &str, role: &str, unit: Option<&str>) -> String {
    let mut args = vec!["users", "add", "--name", name, "--role", role];
    if let Some(unit) = unit {
        args.extend(["--unit", unit]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(&args)
        .arg("--config")
        .arg(&server.config_path)
        .current_dir(&server.dir)
        .env("HOTLINE_LOG", "warn")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run hotline users add");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = stdout.trim().to_owned();
    assert!(token.starts_with("hl_"), "{args:?} printed {stdout:?}");
    token
}
