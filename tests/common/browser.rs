//! A real headless Chromium driven over the Chrome DevTools Protocol: open
//! a page, read what it shows with `Runtime.evaluate`, drive it as a user
//! would (click, type, choose), wait for it, take a screenshot.
//!
//! Chromium runs with its own scratch profile and picks its own debugging
//! port on loopback (`--remote-debugging-port=0`), which it writes to the
//! profile's `DevToolsActivePort`; the test connects to the browser's
//! DevTools socket with tokio-tungstenite and attaches to the page in a
//! flattened session. Each call blocks until Chromium answers. What the
//! page logs to its console, the exceptions it throws and the browser's
//! own log entries are kept for failure messages.

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
    /// The page's console messages, exceptions and log entries, oldest
    /// first (at most [`CONSOLE_LINES`]).
    console: Vec<String>,
}

/// Console lines kept for failure messages.
const CONSOLE_LINES: usize = 200;

impl Browser {
    /// Starts Chromium headless on a blank page, sized [`WIDTH`] × [`HEIGHT`].
    pub fn start(name: &str) -> Browser {
        Self::start_with(name, &[])
    }

    /// [`Browser::start`] with more command-line flags (fake media devices,
    /// say).
    pub fn start_with(name: &str, extra_args: &[String]) -> Browser {
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
            .args(extra_args)
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
            console: Vec::new(),
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
        browser.call("Log.enable", json!({}));
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Sends a DevTools command (to the page, once attached) and returns
    /// its `result`, failing on an error answer. Console messages,
    /// exceptions and log entries that arrive meanwhile are kept (see
    /// [`Browser::console`]); other events are dropped.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            request["sessionId"] = json!(session);
        }
        let request = request.to_string();
        let page = &mut self.socket;
        let console = &mut self.console;
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
                    if let Some(line) = console_line(&v) {
                        if console.len() == CONSOLE_LINES {
                            console.remove(0);
                        }
                        console.push(line);
                    }
                }
                None
            };
            tokio::time::timeout(Duration::from_secs(30), wait)
                .await
                .ok()
                .flatten()
        });
        let answer = answer.unwrap_or_else(|| {
            panic!(
                "chromium did not answer {method}\npage console:\n{}",
                self.console.join("\n")
            )
        });
        assert!(
            answer.get("error").is_none(),
            "{method} failed: {}",
            answer["error"]
        );
        answer["result"].clone()
    }

    /// Runs `source` in every page loaded from now on, before the page's
    /// own scripts.
    pub fn run_on_every_page(&mut self, source: &str) {
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": source}),
        );
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

    /// The value a JavaScript expression's promise resolves to (JSON-able),
    /// failing on a rejection or an exception.
    pub fn eval_async(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(details) = result.get("exceptionDetails") {
            let console = self.console();
            panic!("{expression} threw: {details}\npage console:\n{console}");
        }
        result["result"]["value"].clone()
    }

    /// What the page logged to its console, the exceptions it threw and
    /// the browser's log entries (failed loads, ...), one per line, after
    /// fetching the ones still in flight.
    pub fn console(&mut self) -> String {
        self.call("Runtime.evaluate", json!({"expression": "0"}));
        self.console.join("\n")
    }

    /// Waits up to `limit` for a JavaScript expression to be true (an
    /// exception counts as false); fails saying `what` did not happen,
    /// with the expression's last exception, the page's console and
    /// `diag`.
    pub fn wait_until(
        &mut self,
        expression: &str,
        limit: Duration,
        what: &str,
        diag: &dyn Fn() -> String,
    ) {
        let check = format!(
            "(() => {{ try {{ return {{ok: !!({expression})}}; }} \
             catch (e) {{ return {{ok: false, error: String(e)}}; }} }})()"
        );
        let mut last = Value::Null;
        let done = poll(limit, Duration::from_millis(100), || {
            last = self.eval(&check);
            (last["ok"] == true).then_some(())
        });
        if done.is_none() {
            let console = self.console();
            panic!(
                "{what}: `{expression}` not true within {limit:?} (last error: {})\n\
                 page console:\n{console}\n{}",
                last["error"],
                diag()
            );
        }
    }

    /// Clicks the middle of the element `selector` names with the mouse,
    /// as a user would, after scrolling it into view. Fails unless it is
    /// there, enabled, visible and not covered by another element.
    pub fn click(&mut self, selector: &str) {
        let sel = js_string(selector);
        let target = self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); \
             if (!el) return {{error: 'no such element'}}; \
             if (el.disabled) return {{error: 'it is disabled'}}; \
             el.scrollIntoView({{block: 'center', inline: 'center'}}); \
             const r = el.getBoundingClientRect(); \
             if (r.width === 0 || r.height === 0) return {{error: 'it is not shown'}}; \
             const x = r.left + r.width / 2, y = r.top + r.height / 2; \
             const hit = document.elementFromPoint(x, y); \
             if (!hit || !(hit === el || el.contains(hit))) \
               return {{error: 'it is covered by ' + (hit ? hit.outerHTML.slice(0, 200) : 'nothing')}}; \
             return {{x, y}}; }})()"
        ));
        if let Some(error) = target["error"].as_str() {
            let console = self.console();
            panic!("cannot click {selector}: {error}\npage console:\n{console}");
        }
        let (x, y) = (target["x"].clone(), target["y"].clone());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Types `text` into the input or text area `selector` names, replacing
    /// what it held, as keyboard input (the page sees `input` events), then
    /// leaves it (`change`).
    pub fn type_into(&mut self, selector: &str, text: &str) {
        let sel = js_string(selector);
        let found = self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); \
             if (!el) return false; el.focus(); el.select && el.select(); \
             return document.activeElement === el; }})()"
        ));
        if found != true {
            let console = self.console();
            panic!(
                "cannot type into {selector}: missing or not focusable\npage console:\n{console}"
            );
        }
        // Typing over a selection replaces it; an empty text clears it.
        self.call("Input.dispatchKeyEvent", json!({"type": "keyDown", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46}));
        self.call("Input.dispatchKeyEvent", json!({"type": "keyUp", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46}));
        if !text.is_empty() {
            self.call("Input.insertText", json!({"text": text}));
        }
        let value = self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); \
             el.dispatchEvent(new Event('change', {{bubbles: true}})); el.blur(); \
             return el.value; }})()"
        ));
        assert_eq!(
            value, text,
            "{selector} holds {value} after typing {text:?}"
        );
    }

    /// Chooses, in the `<select>` `selector` names, the first option whose
    /// value is one of `choices` or whose label contains one, as a user
    /// would (`input` and `change` events); returns its value. Fails with
    /// the options there are when none fits.
    pub fn select(&mut self, selector: &str, choices: &[&str]) -> String {
        let sel = js_string(selector);
        let choices = serde_json::to_string(choices).unwrap();
        let chosen = self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); \
             if (!el || !el.options) return {{error: 'no such select'}}; \
             const opts = Array.from(el.options); const want = {choices}; \
             const opt = opts.find(o => want.includes(o.value)) \
               || opts.find(o => want.some(w => o.textContent.includes(w))); \
             if (!opt) return {{error: 'no option fits; it has ' + \
               JSON.stringify(opts.map(o => [o.value, o.textContent.trim()]))}}; \
             el.focus(); el.value = opt.value; \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); \
             el.dispatchEvent(new Event('change', {{bubbles: true}})); \
             return {{value: opt.value}}; }})()"
        ));
        match chosen["value"].as_str() {
            Some(value) => value.to_owned(),
            None => panic!("cannot choose {choices} in {selector}: {}", chosen["error"]),
        }
    }

    /// The trimmed text of the first element `selector` names (`None`
    /// when there is none).
    pub fn text(&mut self, selector: &str) -> Option<String> {
        let sel = js_string(selector);
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); \
             return el ? el.textContent.trim() : null; }})()"
        ))
        .as_str()
        .map(str::to_owned)
    }

    /// An attribute of the first element `selector` names.
    pub fn attribute(&mut self, selector: &str, name: &str) -> Option<String> {
        let (sel, name) = (js_string(selector), js_string(name));
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); \
             return el ? el.getAttribute({name}) : null; }})()"
        ))
        .as_str()
        .map(str::to_owned)
    }

    /// Kills Chromium at once (SIGKILL), as a crash or a pulled plug
    /// would end it: its sockets close without a goodbye.
    pub fn kill(&mut self) {
        self.child.0.kill().expect("kill chromium");
        self.child.0.wait().ok();
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

    /// Takes a screenshot, checks it (see [`check_png`]) and keeps it as
    /// test artifact `name` (`<name>.png`); returns where.
    pub fn keep_screenshot(&mut self, name: &str) -> PathBuf {
        let png = self.screenshot();
        check_png(&png, WIDTH, HEIGHT);
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
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

/// Checks the bytes are a PNG of `width` × `height` and decodes every row;
/// fails if the picture looks blank (a page that did not render).
pub fn check_png(bytes: &[u8], width: u32, height: u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("the screenshot is a PNG");
    let info = reader.info();
    assert_eq!(
        (info.width, info.height),
        (width, height),
        "screenshot size"
    );
    let mut pixels = vec![0; reader.output_buffer_size().expect("a sane PNG size")];
    let frame = reader.next_frame(&mut pixels).expect("the PNG decodes");
    // Not a blank page: a rendered page has many colours.
    let data = &pixels[..frame.buffer_size()];
    let distinct: std::collections::BTreeSet<&[u8]> = data
        .chunks(frame.line_size / width as usize)
        .step_by(97)
        .collect();
    assert!(
        distinct.len() > 20,
        "the screenshot looks blank: {} colours",
        distinct.len()
    );
}

/// A JavaScript string literal of `text`.
pub fn js_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// A console message, exception or log entry as one line; `None` for
/// other DevTools messages.
fn console_line(message: &Value) -> Option<String> {
    let params = &message["params"];
    match message["method"].as_str()? {
        "Runtime.consoleAPICalled" => {
            let args: Vec<String> = params["args"]
                .as_array()
                .map(|args| {
                    args.iter()
                        .map(|a| match &a["value"] {
                            Value::String(s) => s.clone(),
                            Value::Null => a["description"]
                                .as_str()
                                .or(a["unserializableValue"].as_str())
                                .unwrap_or("?")
                                .to_owned(),
                            v => v.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(format!(
                "console.{}: {}",
                params["type"].as_str()?,
                args.join(" ")
            ))
        }
        "Runtime.exceptionThrown" => {
            let d = &params["exceptionDetails"];
            let what = d["exception"]["description"]
                .as_str()
                .or(d["text"].as_str())
                .unwrap_or("?");
            Some(format!(
                "exception: {what} ({}:{})",
                d["url"].as_str().unwrap_or(""),
                d["lineNumber"]
            ))
        }
        "Log.entryAdded" => {
            let e = &params["entry"];
            Some(format!(
                "log.{} {}: {} {}",
                e["level"].as_str().unwrap_or("?"),
                e["source"].as_str().unwrap_or("?"),
                e["text"].as_str().unwrap_or(""),
                e["url"].as_str().unwrap_or("")
            ))
        }
        _ => None,
    }
}
