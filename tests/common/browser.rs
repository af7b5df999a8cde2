//! A real headless Chromium driven over the Chrome DevTools Protocol: open
//! a page, read what it shows with `Runtime.evaluate`, take a screenshot.
//!
//! Chromium runs with its own scratch profile and picks its own debugging
//! port on loopback (`--remote-debugging-port=0`), which it writes to the
//! profile's `DevToolsActivePort`; the test connects to the browser's
//! DevTools socket with tokio-tungstenite and attaches to the page in a
//! flattened session. Each call blocks until Chromium answers.

use super::{poll, require, scratch};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The viewport every page gets: a 1080p wall screen.
pub const WIDTH: u32 = 1920;
pub const HEIGHT: u32 = 1080;

/// The Chromium process, killed when dropped (also when starting fails
/// half way).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// One Chromium with one page.
pub struct Browser {
    child: Process,
    pub profile: PathBuf,
    runtime: tokio::runtime::Runtime,
    /// The browser's DevTools socket.
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The page's session on it, once attached.
    session: Option<String>,
    next_id: u64,
}

impl Browser {
    /// Starts Chromium headless on a blank page, sized [`WIDTH`] × [`HEIGHT`].
    pub fn start(name: &str) -> Browser {
        require("chromium", "chromium");
        let profile = scratch(&format!("chromium-{name}"));
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--mute-audio",
                &format!("--window-size={WIDTH},{HEIGHT}"),
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Process)
            .expect("spawn chromium");
        // DevToolsActivePort: the port, then the browser target's path.
        let active = profile.join("DevToolsActivePort");
        let (port, path) = poll(Duration::from_secs(60), Duration::from_millis(100), || {
            let text = std::fs::read_to_string(&active).ok()?;
            let mut lines = text.lines();
            let port: u16 = lines.next()?.trim().parse().ok()?;
            let path = lines.next()?.trim().to_owned();
            path.starts_with("/devtools/browser/")
                .then_some((port, path))
        })
        .unwrap_or_else(|| panic!("chromium did not write {}", active.display()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (socket, _) = runtime
            .block_on(tokio_tungstenite::connect_async(url.as_str()))
            .expect("connect to chromium's DevTools socket");
        let mut browser = Browser {
            child,
            profile,
            runtime,
            socket,
            session: None,
            next_id: 0,
        };
        // The page Chromium opened on about:blank, driven through a
        // flattened session on the same socket.
        let targets = browser.call("Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["type"] == "page"))
            .map(|t| t["targetId"].clone())
            .unwrap_or_else(|| panic!("chromium has no page: {targets}"));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": page, "flatten": true}),
        );
        browser.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("a session")
                .to_owned(),
        );
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Sends a DevTools command (to the page, once attached) and returns
    /// its `result`, failing on an error answer. Events that arrive
    /// meanwhile are dropped.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            request["sessionId"] = json!(session);
        }
        let request = request.to_string();
        let page = &mut self.socket;
        let answer = self.runtime.block_on(async {
            page.send(Message::Text(request.into())).await.ok()?;
            let wait = async {
                while let Some(Ok(message)) = page.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let v: Value = serde_json::from_str(&text).ok()?;
                    if v["id"] == id {
                        return Some(v);
                    }
                }
                None
            };
            tokio::time::timeout(Duration::from_secs(30), wait)
                .await
                .ok()
                .flatten()
        });
        let answer = answer.unwrap_or_else(|| panic!("chromium did not answer {method}"));
        assert!(
            answer.get("error").is_none(),
            "{method} failed: {}",
            answer["error"]
        );
        answer["result"].clone()
    }

    /// Loads `url` and waits for its `load` event (its scripts have run).
    pub fn navigate(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({"url": url}));
        assert!(
            result.get("errorText").is_none(),
            "navigating to {url}: {}",
            result["errorText"]
        );
        let loaded = poll(Duration::from_secs(20), Duration::from_millis(50), || {
            (self.eval("document.readyState") == "complete").then_some(())
        });
        assert!(loaded.is_some(), "{url} did not finish loading");
    }

    /// The value of a JavaScript expression (JSON-able), failing on an
    /// exception.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression} threw: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// The text an element with `data-figure="name"` shows, trimmed; empty
    /// when there is none.
    pub fn figure(&mut self, name: &str) -> String {
        let expression = format!(
            "(document.querySelector('[data-figure=\"{name}\"]') || {{textContent: ''}}).textContent.trim()"
        );
        self.eval(&expression)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits up to `limit` for figure `name` to show `want`; fails with
    /// what it showed instead and `context`.
    pub fn expect_figure(
        &mut self,
        name: &str,
        want: &str,
        limit: Duration,
        context: &dyn Fn() -> String,
    ) {
        let mut shown = String::new();
        let seen = poll(limit, Duration::from_millis(100), || {
            shown = self.figure(name);
            (shown == want).then_some(())
        });
        assert!(
            seen.is_some(),
            "the page shows {name} = {shown:?}, not {want:?}, after {limit:?}\n{}",
            context()
        );
    }

    /// A PNG screenshot of the viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let result = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let data = result["data"].as_str().expect("screenshot data");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("screenshot is base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.child.0.kill().ok();
        self.child.0.wait().ok();
        std::fs::remove_dir_all(&self.profile).ok();
    }
}

/// Where test artifacts go: `<target dir>/test-artifacts`, beside the
/// test binary's own profile folder.
pub fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // <target>/<profile>/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
