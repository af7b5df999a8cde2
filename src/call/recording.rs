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
    /// Starts `<root>/calls/<queue>/<YYYY-MM-DD>/<call-id>.wav`; the date
    /// folders are what retention removes.
    pub fn create(root: &Path, queue: &str, call_id: &str) -> std::io::Result<StereoWav> {
        let day = time::OffsetDateTime::now_utc().date().to_string();
        let folder = queue_dir(root, queue).join(day);
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

/// Where a queue's conversation recordings go.
pub fn queue_dir(root: &Path, queue: &str) -> PathBuf {
    root.join("calls").join(super::ivr::sanitize(queue))
}

/// Date folders (`YYYY-MM-DD`) older than `days` before `today`, which
/// retention removes; other names are left alone.
pub fn expired_days(names: &[String], today: time::Date, days: u32) -> Vec<String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let Some(cutoff) = today.checked_sub(time::Duration::days(days.into())) else {
        return vec![];
    };
    names
        .iter()
        .filter(|n| time::Date::parse(n, &format).is_ok_and(|d| d < cutoff))
        .cloned()
        .collect()
}

/// Removes recordings past each queue's retention; returns how many day
/// folders went.
pub fn sweep(root: &Path, queues: &[crate::config::QueueConfig], today: time::Date) -> usize {
    let mut removed = 0;
    for q in queues.iter().filter(|q| q.recording_retention_days > 0) {
        let dir = queue_dir(root, &q.name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        for day in expired_days(&names, today, q.recording_retention_days) {
            match std::fs::remove_dir_all(dir.join(&day)) {
                Ok(()) => {
                    tracing::info!(queue = %q.name, %day, "recordings past retention removed");
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(queue = %q.name, %day, error = %e, "cannot remove recordings")
                }
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_last_days_and_foreign_names() {
        let today = time::macros::date!(2026 - 11 - 28);
        let names: Vec<String> = [
            "2026-11-28",
            "2026-11-21",
            "2026-11-20",
            "2025-01-01",
            "notes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut gone = expired_days(&names, today, 7);
        gone.sort();
        assert_eq!(gone, ["2025-01-01", "2026-11-20"]);
    }

    #[tokio::test]
    async fn sweep_removes_old_day_folders_of_queues_with_retention() {
        let root = std::env::temp_dir().join(format!("hotline-retention-{}", std::process::id()));
        let mut queue = crate::config::Config::default().queues[0].clone();
        queue.recording_retention_days = 30;
        let mut forever = crate::config::Config::default().queues[1].clone();
        forever.recording_retention_days = 0;
        for (q, day) in [
            (&queue, "2026-01-01"),
            (&queue, "2026-11-27"),
            (&forever, "2020-01-01"),
        ] {
            let dir = queue_dir(&root, &q.name).join(day);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("x.wav"), b"RIFF").unwrap();
        }
        let removed = sweep(
            &root,
            &[queue.clone(), forever.clone()],
            time::macros::date!(2026 - 11 - 28),
        );
        assert_eq!(removed, 1);
        assert!(!queue_dir(&root, &queue.name).join("2026-01-01").exists());
        assert!(queue_dir(&root, &queue.name).join("2026-11-27").exists());
        assert!(queue_dir(&root, &forever.name).join("2020-01-01").exists());
        std::fs::remove_dir_all(&root).ok();
    }

    #[tokio::test]
    async fn parts_become_one_stereo_wav() {
        let root = std::env::temp_dir().join(format!("hotline-wav-{}", std::process::id()));
        let wav = StereoWav::create(&root, "general", "a/b@c").unwrap();
        wav.push(vec![1, -1, 2, -2]);
        wav.push(vec![3, -3]);
        let path = wav.finish().await.unwrap();
        assert!(path.contains("calls/general/"), "{path}");
        let mut reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().channels, 2);
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(samples, [1, -1, 2, -2, 3, -3]);
        std::fs::remove_dir_all(&root).ok();
    }
}
