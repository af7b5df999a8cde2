//! A bridged call's stereo recording, written to WAV as its parts arrive.
//!
//! The media engine hands out the conversation in parts (caller left, agent
//! right); a blocking task appends them with hound so the call's task never
//! waits on the disk, and an hour-long call never sits in memory.

use std::path::{Path, PathBuf};
use tokio::sync::oneshot;

/// An open recording.
pub struct StereoWav {
    parts: std::sync::mpsc::Sender<Vec<i16>>,
    done: oneshot::Receiver<Result<(), String>>,
    path: PathBuf,
}

impl StereoWav {
    /// Starts `<dir>/<YYYY-MM-DD>/<call-id>.wav`.
    pub fn create(dir: &Path, call_id: &str) -> std::io::Result<StereoWav> {
        let day = time::OffsetDateTime::now_utc().date().to_string();
        let folder = dir.join(day);
        std::fs::create_dir_all(&folder)?;
        let path = folder.join(format!("{}.wav", super::ivr::sanitize(call_id)));
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).map_err(std::io::Error::other)?;
        let (parts, rx) = std::sync::mpsc::channel::<Vec<i16>>();
        let (done_tx, done) = oneshot::channel();
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let mut result = Ok(());
            while let Ok(part) = rx.recv() {
                if result.is_err() {
                    continue;
                }
                for s in part {
                    if let Err(e) = writer.write_sample(s) {
                        result = Err(e.to_string());
                        break;
                    }
                }
                // The header is rewritten after each part so the file is a
                // valid WAV up to the last part even if the process dies.
                if result.is_ok()
                    && let Err(e) = writer.flush()
                {
                    result = Err(e.to_string());
                }
            }
            let result = result.and_then(|()| writer.finalize().map_err(|e| e.to_string()));
            if let Err(e) = &result {
                tracing::error!(path = %shown, error = %e, "recording write failed");
            }
            done_tx.send(result).ok();
        });
        Ok(StereoWav { parts, done, path })
    }

    /// Appends interleaved stereo samples.
    pub fn push(&self, samples: Vec<i16>) {
        self.parts.send(samples).ok();
    }

    /// Closes the file; its path, or `None` when writing failed.
    pub async fn finish(self) -> Option<String> {
        drop(self.parts);
        match self.done.await {
            Ok(Ok(())) => Some(self.path.display().to_string()),
            _ => None,
        }
    }
}
