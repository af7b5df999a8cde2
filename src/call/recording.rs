//! A bridged call's stereo recording, written to WAV as its parts arrive.
//!
//! The media engine hands out the conversation in parts (caller left, agent
//! right). One writer thread appends them with hound for every recording
//! on the node, so the call's task never waits on the disk, an hour-long
//! call never sits in memory, and hundreds of recordings do not hold
//! hundreds of threads.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use tokio::sync::oneshot;

type Writer = hound::WavWriter<BufWriter<File>>;

enum Job {
    Open(u64, Box<Writer>),
    Part(u64, Vec<i16>),
    Close(u64, oneshot::Sender<Result<(), String>>),
}

/// The node's recording writer, started on first use.
fn writer() -> &'static Sender<Job> {
    static WRITER: OnceLock<Sender<Job>> = OnceLock::new();
    WRITER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("recordings".into())
            .spawn(move || {
                // Each open file, and the first error it met (later parts
                // are dropped; the call goes on).
                let mut open: HashMap<u64, (Writer, Result<(), String>)> = HashMap::new();
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Open(id, w) => {
                            open.insert(id, (*w, Ok(())));
                        }
                        Job::Part(id, samples) => {
                            let Some((w, state)) = open.get_mut(&id) else {
                                continue;
                            };
                            if state.is_err() {
                                continue;
                            }
                            let written = samples.iter().try_for_each(|s| w.write_sample(*s));
                            // The header is rewritten after each part so the
                            // file is a valid WAV up to the last part even if
                            // the process dies.
                            if let Err(e) = written.and_then(|()| w.flush()) {
                                *state = Err(e.to_string());
                            }
                        }
                        Job::Close(id, reply) => {
                            if let Some((w, state)) = open.remove(&id) {
                                let result =
                                    state.and_then(|()| w.finalize().map_err(|e| e.to_string()));
                                reply.send(result).ok();
                            }
                        }
                    }
                }
            })
            .expect("spawn the recording writer");
        tx
    })
}

/// An open recording.
pub struct StereoWav {
    id: u64,
    path: PathBuf,
}

impl StereoWav {
    /// Starts `<root>/calls/<queue>/<YYYY-MM-DD>/<call-id>.wav`; the date
    /// folders are what retention removes.
    pub fn create(root: &Path, queue: &str, call_id: &str) -> std::io::Result<StereoWav> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
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
        let w = hound::WavWriter::create(&path, spec).map_err(std::io::Error::other)?;
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        writer()
            .send(Job::Open(id, Box::new(w)))
            .map_err(|_| std::io::Error::other("the recording writer has stopped"))?;
        Ok(StereoWav { id, path })
    }

    /// Where the file is being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends interleaved stereo samples.
    pub fn push(&self, samples: Vec<i16>) {
        writer().send(Job::Part(self.id, samples)).ok();
    }

    /// Closes the file; its path, or `None` when writing failed.
    pub async fn finish(self) -> Option<String> {
        let (reply, done) = oneshot::channel();
        writer().send(Job::Close(self.id, reply)).ok()?;
        match done.await {
            Ok(Ok(())) => Some(self.path.display().to_string()),
            Ok(Err(e)) => {
                tracing::error!(path = %self.path.display(), error = %e, "recording write failed");
                None
            }
            Err(_) => None,
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
