//! baresip as a test peer: a headless softphone run from a config folder the
//! test writes: loopback only (`net_interface`/`sip_listen` on 127.0.0.1),
//! G.711 only, a WAV as its microphone (`aufile`), received audio recorded
//! to WAV (`sndfile`), and commands over `ctrl_tcp` (netstring-framed JSON on
//! a 127.0.0.1 port).

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
pub const MODULES: &str = "/usr/lib/baresip/modules";

/// A baresip process; killed on drop, whatever the test's outcome.
pub struct Baresip {
    child: Child,
    dir: PathBuf,
}

impl Baresip {
    /// Starts baresip on the config folder `dir` (output goes to files there).
    pub fn spawn(dir: &Path) -> Baresip {
        let stdout = std::fs::File::create(dir.join("stdout.txt")).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr.txt")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn baresip");
        Baresip {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// Whether the process has exited (and with what), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `limit` for the process to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// What baresip printed, without menu's carriage-return status lines.
    pub fn output(&self) -> String {
        let mut all = String::new();
        for name in ["stdout.txt", "stderr.txt"] {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let text: String = text
                .split('\r')
                .filter(|part| !part.trim_start().starts_with("[0:"))
                .collect::<Vec<_>>()
                .join("");
            all.push_str(&format!("--- baresip {name} ---\n{text}\n"));
        }
        all
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.child.kill().ok();
        }
        self.child.wait().ok();
    }
}

/// A ctrl_tcp connection: commands out, responses and events collected by a
/// reader thread.
pub struct Ctrl {
    stream: TcpStream,
    messages: Arc<Mutex<Vec<Value>>>,
}

impl Ctrl {
    /// Connects to baresip's ctrl_tcp port, retrying while baresip starts;
    /// the error says why baresip never accepted.
    pub fn connect(port: u16, baresip: &mut Baresip) -> Result<Ctrl, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    if let Some(status) = baresip.exited() {
                        return Err(format!(
                            "baresip exited ({status}) before ctrl_tcp accepted a connection\n{}",
                            baresip.output()
                        ));
                    }
                    let output = baresip.output();
                    if Instant::now() > deadline || output.contains("ctrl_tcp: failed to listen") {
                        return Err(format!(
                            "cannot connect to baresip's ctrl_tcp on 127.0.0.1:{port}: {e}\n{output}"
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        let mut reader = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some((payload, used)) = netstring_decode(&buf) {
                    let value = serde_json::from_slice(&payload).unwrap_or_else(
                        |_| json!({ "unparsed": String::from_utf8_lossy(&payload) }),
                    );
                    sink.lock().unwrap().push(value);
                    buf.drain(..used);
                }
            }
        });
        Ok(Ctrl { stream, messages })
    }

    /// Sends a command (`{"command":..,"params":..,"token":..}`).
    pub fn send(&mut self, command: &str, params: Option<&str>) {
        let mut msg = json!({ "command": command, "token": command });
        if let Some(p) = params {
            msg["params"] = json!(p);
        }
        let body = msg.to_string();
        // Failing to send (baresip gone) shows up in the waits that follow.
        self.stream
            .write_all(format!("{}:{body},", body.len()).as_bytes())
            .ok();
    }

    /// The first message matching `pred`, waiting up to `limit`.
    pub fn wait_for(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        super::poll(limit, Duration::from_millis(20), || {
            self.messages
                .lock()
                .unwrap()
                .iter()
                .find(|v| pred(v))
                .cloned()
        })
    }

    /// The first event of a type, waiting up to `limit`.
    pub fn event(&self, kind: &str, limit: Duration) -> Option<Value> {
        self.wait_for(limit, |v| v["event"] == true && v["type"] == kind)
    }

    /// Everything received so far, one message per line.
    pub fn transcript(&self) -> String {
        let mut text = String::from("--- ctrl_tcp messages ---\n");
        for v in self.messages.lock().unwrap().iter() {
            text.push_str(&v.to_string());
            text.push('\n');
        }
        text
    }
}

/// One netstring (`<len>:<payload>,`) from the front of `buf`: the payload
/// and the bytes it used, or None while it is incomplete.
pub fn netstring_decode(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let colon = buf.iter().position(|&b| b == b':')?;
    let len: usize = std::str::from_utf8(&buf[..colon])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let end = colon + 1 + len;
    if buf.len() <= end {
        return None;
    }
    Some((buf[colon + 1..end].to_vec(), end + 1))
}

/// A TCP port free right now on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mono 16-bit PCM WAV file of `secs` seconds of silence.
pub fn write_silence_wav(path: &Path, rate: u32, secs: u32) {
    write_pcm_wav(path, rate, &vec![0; (rate * secs) as usize]);
}

/// A mono 16-bit PCM WAV file of these samples.
pub fn write_pcm_wav(path: &Path, rate: u32, samples: &[i16]) {
    let data_len = samples.len() as u32 * 2;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, wav).unwrap();
}

/// Reads a 16-bit PCM WAV as (sample rate, first channel's samples). Tolerates
/// a data chunk whose size was never patched (a writer that did not close).
pub fn read_wav(path: &Path) -> Result<(u32, Vec<i16>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!("{}: not a RIFF/WAVE file", path.display()));
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let mut pos = 12;
    let mut format = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " && body + 16 <= bytes.len() {
            format = Some((
                u16_at(body),
                u16_at(body + 2),
                u32_at(body + 4),
                u16_at(body + 14),
            ));
        } else if id == b"data" {
            let (tag, channels, rate, bits) =
                format.ok_or_else(|| format!("{}: data before fmt", path.display()))?;
            if !(tag == 1 || tag == 0xfffe) || bits != 16 || channels == 0 {
                return Err(format!(
                    "{}: not 16-bit PCM (format {tag:#x}, {bits} bits, {channels} channels)",
                    path.display()
                ));
            }
            let end = if size == 0 || body + size > bytes.len() {
                bytes.len()
            } else {
                body + size
            };
            let pcm: Vec<i16> = bytes[body..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .step_by(channels as usize)
                .collect();
            return Ok((rate, pcm));
        }
        pos = body + size + (size & 1);
    }
    Err(format!("{}: no data chunk", path.display()))
}

/// Linear-interpolation resampling to 8 kHz (enough for energy envelopes).
pub fn to_8khz(rate: u32, pcm: &[i16]) -> Vec<i16> {
    if rate == 8000 || pcm.is_empty() {
        return pcm.to_vec();
    }
    let step = f64::from(rate) / 8000.0;
    let n = (pcm.len() as f64 / step) as usize;
    (0..n)
        .map(|i| {
            let x = i as f64 * step;
            let j = x as usize;
            let frac = x - j as f64;
            let a = f64::from(pcm[j]);
            let b = f64::from(pcm[(j + 1).min(pcm.len() - 1)]);
            (a + (b - a) * frac) as i16
        })
        .collect()
}

/// Writes baresip's config folder; returns the ctrl_tcp port and the folder
/// where sndfile records.
pub fn write_baresip_config(dir: &Path) -> (u16, PathBuf) {
    write_baresip_config_with(
        dir,
        "<sip:tester@127.0.0.1>;regint=0;audio_codecs=pcmu,pcma;answermode=manual",
        None,
    )
}

/// Like [`write_baresip_config`] with another account line and, optionally,
/// another microphone WAV (8 kHz mono, longer than the call).
pub fn write_baresip_config_with(
    dir: &Path,
    account: &str,
    source: Option<&Path>,
) -> (u16, PathBuf) {
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    // aufile needs the codec's rate (8 kHz) and mono; baresip hangs up when
    // the file ends, so it must outlast the call.
    let silence = match source {
        Some(path) => path.to_path_buf(),
        None => {
            let path = dir.join("silence.wav");
            write_silence_wav(&path, 8000, 15);
            path
        }
    };
    // Without a trailing newline: baresip reads the whole file as the UUID.
    std::fs::write(dir.join("uuid"), "0f6c2d7e-6a41-4f5e-9b0e-1234567890ab").unwrap();
    std::fs::write(dir.join("accounts"), format!("{account}\n")).unwrap();
    let ctrl_port = free_tcp_port();
    let config = format!(
        "poll_method epoll\n\
         sip_listen 127.0.0.1:0\n\
         net_interface 127.0.0.1\n\
         call_local_timeout 20\n\
         call_max_calls 1\n\
         audio_player aubridge,hotline-test-play\n\
         audio_alert aubridge,hotline-test-alert\n\
         audio_source aufile,{silence}\n\
         audio_level no\n\
         ausrc_format s16\n\
         auplay_format s16\n\
         auenc_format s16\n\
         audec_format s16\n\
         rtcp_mux no\n\
         jitter_buffer_delay 5-10\n\
         statmode_default off\n\
         module_path {MODULES}\n\
         module g711.so\n\
         module aufile.so\n\
         module aubridge.so\n\
         module sndfile.so\n\
         module_tmp account.so\n\
         module_app menu.so\n\
         module_app ctrl_tcp.so\n\
         ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n\
         snd_path {rec}\n",
        silence = silence.display(),
        rec = rec.display(),
    );
    std::fs::write(dir.join("config"), config).unwrap();
    (ctrl_port, rec)
}

/// The WAV files sndfile wrote for decoded (received) audio:
/// `dump-<YYYY-MM-DD-hh-mm-ss>-dec.wav` (the sent audio is `...-enc.wav`).
pub fn decoded_recordings(rec: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(rec)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("-dec.wav"))
    });
    found.sort();
    found
}

/// A baresip softphone registered as seat `id` (demo password
/// `hotline-<id>`), answering by itself, speaking a tone, µ-law only; with
/// its ctrl_tcp connection and the folder where it records what it hears
/// (see [`decoded_recordings`]).
pub fn baresip_seat(server: &super::Server, id: &str, tone_hz: f32) -> (Baresip, Ctrl, PathBuf) {
    let mut attempts = Vec::new();
    loop {
        let dir = super::scratch(&format!("seat-{id}"));
        let mic = dir.join("tone.wav");
        write_pcm_wav(&mic, 8000, &super::media::tone(tone_hz, 120.0));
        let account = format!(
            "<sip:{id}@{sip};transport=udp>;auth_pass=hotline-{id};regint=300;answermode=auto;audio_codecs=pcmu",
            sip = server.sip
        );
        let (ctrl_port, rec) = write_baresip_config_with(&dir, &account, Some(&mic));
        let mut baresip = Baresip::spawn(&dir);
        match Ctrl::connect(ctrl_port, &mut baresip) {
            Ok(ctrl) => return (baresip, ctrl, rec),
            Err(e) => attempts.push(e),
        }
        assert!(
            attempts.len() < 3,
            "baresip did not start:\n{}",
            attempts.join("\n")
        );
    }
}
