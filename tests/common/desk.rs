//! Browser seats from a test: the agent desktop (`/agent`) in a real
//! headless Chromium whose microphone speaks a tone, what the page's
//! WebRTC connection receives decoded in the page ([`LISTENER`]) and
//! judged by Goertzel like any other party's audio, and the seat socket
//! (`/api/v1/webseat`) spoken to directly.
//!
//! ```text
//! let mut desk = Desk::open(&server, "x", "/agent", AGENT_TONE);
//! desk.log_in("1001", "hotline-1001", &diag);
//! // ... a caller is offered to 1001 and the agent answers:
//! desk.browser.click("#btn-answer");
//! desk.listen_to_call(&diag);
//! let w = desk.listen(2.0);
//! desk.hears("the browser", &w, &[CALLER_TONE], &[AGENT_TONE], &diag);
//! caller.heard_between(w.from, w.to); // the same window for the others
//! ```

use super::browser::{Browser, js_string};
use super::media::assert_hears;
use super::{Server, poll, scratch};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The script that decodes, in the page, what a peer connection receives
/// (`window.hotlineTest`).
pub const LISTENER: &str = include_str!("desk_listen.js");

/// Put into every page before its own scripts: the page's request for
/// the microphone is passed on with noise suppression and gain control
/// turned off (echo cancellation stays as the page asks). Chromium's
/// noise suppressor takes the fake microphone's steady tone for noise
/// and, within seconds, takes it down to a hundredth of its level, and
/// the gain control then moves the level about; a voice would pass, a
/// test tone does not. The page's own constraints are kept in
/// `window.hotlineTestAskedFor`.
pub const MICROPHONE: &str = r#"(() => {
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getUserMedia) return;
  const ask = devices.getUserMedia.bind(devices);
  devices.getUserMedia = (constraints) => {
    window.hotlineTestAskedFor = constraints;
    if (constraints && constraints.audio) {
      const audio = constraints.audio === true ? {} : Object.assign({}, constraints.audio);
      audio.noiseSuppression = false;
      audio.autoGainControl = false;
      constraints = Object.assign({}, constraints, { audio });
    }
    return ask(constraints);
  };
})();"#;

/// How long the page may take to show what the server did.
pub const PAGE: Duration = Duration::from_secs(10);

/// Writes `secs` seconds of a `tone_hz` sine at a quarter of full scale
/// (the level [`super::media::tone`] speaks at) as a 48 kHz 16-bit mono
/// WAV in `dir`: Chromium's fake microphone plays it in a loop. A whole
/// number of cycles, so the loop has no seam.
pub fn tone_wav(dir: &Path, tone_hz: f32, secs: u32) -> PathBuf {
    let rate = 48_000;
    let path = dir.join(format!("tone-{tone_hz}.wav"));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(&path, spec).unwrap();
    for n in 0..rate * secs {
        let phase =
            2.0 * std::f64::consts::PI * f64::from(tone_hz) * f64::from(n) / f64::from(rate);
        wav.write_sample((8000.0 * phase.sin()) as i16).unwrap();
    }
    wav.finalize().unwrap();
    path
}

/// The Chromium flags of a browser seat: media permission granted
/// without asking, a fake microphone speaking `wav`, peer connections
/// over loopback (the server's ICE candidate is 127.0.0.1), and audio
/// that may play without a click.
pub fn media_flags(wav: &Path) -> Vec<String> {
    vec![
        "--use-fake-ui-for-media-stream".into(),
        "--use-fake-device-for-media-stream".into(),
        format!("--use-file-for-fake-audio-capture={}", wav.display()),
        "--allow-loopback-in-peer-connection".into(),
        "--autoplay-policy=no-user-gesture-required".into(),
    ]
}

/// A stretch of time listened to: by the test's clock (for peers whose
/// audio the test keeps, [`super::media::ToneMedia`]) and by the page's
/// (`performance.now()`, for what the browser heard).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: Instant,
    pub to: Instant,
    page_from: f64,
    page_to: f64,
}

/// A page in Chromium with a fake microphone: the agent desktop, the
/// supervisor view, or any page that sets `window.hotlineDesk`.
pub struct Desk {
    pub browser: Browser,
}

impl Desk {
    /// Chromium with its microphone speaking `tone_hz`, on the server's
    /// page at `path` (`/agent`, `/supervisor`).
    pub fn open(server: &Server, name: &str, path: &str, tone_hz: f32) -> Desk {
        Self::at(&format!("http://{}{path}", server.http), name, tone_hz)
    }

    /// The same on any page (one that sets `window.hotlineDesk`).
    pub fn at(url: &str, name: &str, tone_hz: f32) -> Desk {
        let wav = tone_wav(&scratch(&format!("mic-{name}")), tone_hz, 5);
        let mut browser = Browser::start_with(name, &media_flags(&wav));
        browser.run_on_every_page(MICROPHONE);
        browser.navigate(url);
        Desk { browser }
    }

    /// Logs in with the seat id and its SIP password; the desk shows.
    /// Fails with what `#login-error` says if the login is refused.
    pub fn log_in(&mut self, seat: &str, password: &str, diag: &dyn Fn() -> String) {
        self.browser.type_into("#seat", seat);
        self.browser.type_into("#password", password);
        self.browser.click("#login");
        let outcome = poll(PAGE, Duration::from_millis(100), || {
            let shown = self.browser.eval(&shown("#desk"));
            let error = self.browser.text("#login-error").unwrap_or_default();
            if shown == true {
                Some(Ok(()))
            } else if !error.is_empty() {
                Some(Err(error))
            } else {
                None
            }
        });
        match outcome {
            Some(Ok(())) => {}
            Some(Err(error)) => panic!(
                "seat {seat} could not log in: #login-error says {error:?}\npage console:\n{}\n{}",
                self.browser.console(),
                diag()
            ),
            None => panic!(
                "the desk did not show after logging in, within {PAGE:?}\npage console:\n{}\n{}",
                self.browser.console(),
                diag()
            ),
        }
        let expression = format!(
            "window.hotlineDesk && hotlineDesk.seat === {}",
            js_string(seat)
        );
        self.browser
            .wait_until(&expression, PAGE, "hotlineDesk.seat after logging in", diag);
    }

    /// Waits until the element `selector` names is shown; fails with `what`.
    pub fn wait_shown(&mut self, selector: &str, what: &str, diag: &dyn Fn() -> String) {
        self.browser.wait_until(&shown(selector), PAGE, what, diag);
    }

    /// Waits until `selector`'s attribute `name` is `want`.
    pub fn wait_attribute(
        &mut self,
        selector: &str,
        name: &str,
        want: &str,
        diag: &dyn Fn() -> String,
    ) {
        let expression = format!(
            "document.querySelector({})?.getAttribute({}) === {}",
            js_string(selector),
            js_string(name),
            js_string(want)
        );
        let shown = self.browser.attribute(selector, name);
        let what =
            format!("{selector} {name} is not {want:?} (it was {shown:?} when the wait began)");
        self.browser.wait_until(&expression, PAGE, &what, diag);
    }

    /// Waits for the seat status the desk shows (`#seat-status[data-status]`).
    pub fn expect_status(&mut self, want: &str, diag: &dyn Fn() -> String) {
        self.wait_attribute("#seat-status", "data-status", want, diag);
    }

    /// Waits for the call state the desk shows (`#call-state[data-state]`).
    pub fn expect_call_state(&mut self, want: &str, diag: &dyn Fn() -> String) {
        self.wait_attribute("#call-state", "data-state", want, diag);
    }

    /// A field of the page's `window.hotlineDesk` (`Null` when unset).
    pub fn desk_field(&mut self, field: &str) -> Value {
        self.browser.eval(&format!(
            "(() => {{ const d = window.hotlineDesk; \
             const v = d ? d[{}] : null; \
             return v == null ? null : (typeof v === 'object' ? String(v) : v); }})()",
            js_string(field)
        ))
    }

    /// Starts decoding the call's audio in the page, once its remote
    /// stream has an audio track; again after it changed.
    pub fn listen_to_call(&mut self, diag: &dyn Fn() -> String) {
        self.browser.eval(LISTENER);
        self.browser.wait_until(
            "window.hotlineDesk && hotlineDesk.remoteStream && \
             hotlineDesk.remoteStream.getAudioTracks().length > 0",
            PAGE,
            "the desk has no remote audio stream",
            diag,
        );
        let state = self
            .browser
            .eval_async("hotlineTest.listen(hotlineDesk.remoteStream)");
        assert_eq!(
            state["context"],
            "running",
            "the page's audio context does not run: {state}\n{}",
            diag()
        );
    }

    /// Lets the media settle for half a second, then listens for `secs`.
    pub fn listen(&mut self, secs: f32) -> Window {
        std::thread::sleep(Duration::from_millis(500));
        let from = Instant::now();
        let page_from = self.page_now();
        std::thread::sleep(Duration::from_secs_f32(secs));
        let to = Instant::now();
        let page_to = self.page_now();
        Window {
            from,
            to,
            page_from,
            page_to,
        }
    }

    fn page_now(&mut self) -> f64 {
        self.browser
            .eval("performance.now()")
            .as_f64()
            .expect("performance.now()")
    }

    /// What the page heard in `window`, at 8 kHz.
    pub fn heard(&mut self, window: &Window) -> Vec<i16> {
        use base64::Engine;
        let text = self.browser.eval(&format!(
            "hotlineTest.heard({}, {})",
            window.page_from, window.page_to
        ));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_str().expect("base64 samples"))
            .expect("the samples are base64");
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    /// Checks by Goertzel that the page heard the `want` tones in
    /// `window`, each far stronger than every `not` tone (see
    /// [`assert_hears`]).
    pub fn hears(
        &mut self,
        who: &str,
        window: &Window,
        want: &[f32],
        not: &[f32],
        diag: &dyn Fn() -> String,
    ) {
        let pcm = self.heard(window);
        let page = self.describe();
        assert_hears(who, &pcm, want, not, || format!("{page}{}", diag()));
    }

    /// What the connection `hotlineDesk.pc` reports of its audio.
    pub fn stats(&mut self) -> Value {
        self.browser.eval(LISTENER);
        self.browser
            .eval_async("hotlineTest.stats(window.hotlineDesk && hotlineDesk.pc)")
    }

    /// The listener's state, the connection's statistics and the page's
    /// console, for a failed assertion.
    pub fn describe(&mut self) -> String {
        let listener = self
            .browser
            .eval("window.hotlineTest ? hotlineTest.state() : null");
        let stats = self.stats();
        format!(
            "--- browser ---\nlistener: {listener}\npeer connection: {stats:#}\nconsole:\n{}\n",
            self.browser.console()
        )
    }
}

/// A JavaScript expression: the element `selector` names is shown.
fn shown(selector: &str) -> String {
    format!(
        "(el => !!el && el.getClientRects().length > 0 && \
         getComputedStyle(el).visibility !== 'hidden')(document.querySelector({}))",
        js_string(selector)
    )
}

/// The seat as the API shows it (`GET /api/v1/seats/{id}`).
pub fn seat_state(server: &Server, id: &str) -> Value {
    let (status, body) = server.get(&format!("/api/v1/seats/{id}"));
    assert_eq!(status, 200, "seat {id}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Waits until the API shows seat `id` as `check` wants; fails with what
/// it showed last, `what` and `diag`.
pub fn wait_seat(
    server: &Server,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
    diag: &dyn Fn() -> String,
) -> Value {
    let mut last = Value::Null;
    poll(PAGE, Duration::from_millis(100), || {
        last = seat_state(server, id);
        check(&last).then(|| last.clone())
    })
    .unwrap_or_else(|| panic!("seat {id} {what}: the API shows {last}\n{}", diag()))
}

/// A page served to every GET on a loopback port (a secure context for
/// Chromium, unlike a `data:` URL: pages there may use the microphone),
/// until dropped.
pub struct LocalPage {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl LocalPage {
    pub fn serve(html: &str) -> LocalPage {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{html}",
            html.len()
        );
        let done = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
                // The request's head, then the page.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                stream.write_all(response.as_bytes()).ok();
            }
        });
        LocalPage { addr, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for LocalPage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread so it sees the flag.
        std::net::TcpStream::connect(self.addr).ok();
    }
}

/// The seat socket (`/api/v1/webseat`) spoken to directly, as a browser
/// would: JSON messages, kept in order of arrival.
pub struct SeatSocket {
    runtime: tokio::runtime::Runtime,
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Every message received so far (text frames as JSON; a close as
    /// `{"type": "<closed>"}`).
    pub received: Vec<Value>,
    /// Messages before this one have been looked for.
    cursor: usize,
    closed: bool,
}

impl SeatSocket {
    pub fn connect(server: &Server) -> SeatSocket {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = format!("ws://{}/api/v1/webseat", server.http);
        let (socket, _) = runtime
            .block_on(tokio_tungstenite::connect_async(url.as_str()))
            .unwrap_or_else(|e| panic!("open {url}: {e}\n{}", server.log()));
        SeatSocket {
            runtime,
            socket,
            received: Vec::new(),
            cursor: 0,
            closed: false,
        }
    }

    /// Sends a text frame as it is.
    pub fn send_text(&mut self, text: &str) {
        let socket = &mut self.socket;
        self.runtime
            .block_on(socket.send(Message::Text(text.to_owned().into())))
            .unwrap_or_else(|e| panic!("send {text}: {e}"));
    }

    /// Sends a JSON message.
    pub fn send(&mut self, message: Value) {
        self.send_text(&message.to_string());
    }

    /// The next message of `kind` (its `type`) after the last one
    /// looked for, waiting up to `limit`; `None` when the socket closed
    /// or nothing came. Messages of other types in between are passed
    /// over (they stay in [`SeatSocket::received`]).
    pub fn next_of(&mut self, kind: &str, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let ahead = &self.received[self.cursor..];
            if let Some(at) = ahead.iter().position(|m| m["type"] == kind) {
                self.cursor += at + 1;
                return Some(self.received[self.cursor - 1].clone());
            }
            if self.closed {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let socket = &mut self.socket;
            let next = self
                .runtime
                .block_on(async { tokio::time::timeout(left, socket.next()).await });
            match next {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(text)))) => {
                    let v = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("the server sent bad JSON ({e}): {text}"));
                    self.received.push(v);
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    self.received
                        .push(json!({"type": "<closed>", "frame": format!("{frame:?}")}));
                    self.closed = true;
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => {
                    self.received.push(json!({"type": "<closed>"}));
                    self.closed = true;
                }
            }
        }
    }

    /// Fails unless the next message of `kind` comes within 5 s; returns it.
    pub fn expect(&mut self, kind: &str, context: &str) -> Value {
        self.next_of(kind, Duration::from_secs(5))
            .unwrap_or_else(|| {
                panic!(
                    "{context}: no {kind:?} message; received {:#?}",
                    self.received
                )
            })
    }

    /// Fails unless the next error has `code`; returns it.
    pub fn expect_error(&mut self, code: &str, context: &str) -> Value {
        let error = self.expect("error", context);
        assert_eq!(error["code"], code, "{context}: {error}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{context}: an error without a message: {error}"
        );
        error
    }

    /// Waits up to `limit` for the server to close the socket.
    pub fn wait_closed(&mut self, limit: Duration) -> bool {
        self.next_of("<closed>", limit).is_some()
    }

    /// Closes the socket (a browser tab closed).
    pub fn close(mut self) {
        let socket = &mut self.socket;
        self.runtime.block_on(socket.close(None)).ok();
    }
}
