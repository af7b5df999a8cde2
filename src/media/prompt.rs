//! Prompts: WAV files checked at load and pre-encoded into 20 ms G.711 frames.
//!
//! A prompt is loaded once and shared (`Arc`) by every call that plays it, so
//! playing costs a slice copy per frame and no encoding. Accepted files are
//! 8 kHz mono 16-bit PCM (read with hound) or 8 kHz mono G.711 (format tags 6
//! and 7, which hound does not read, so their RIFF chunks are walked here).

use super::g711::Law;
use super::rtp::FRAME_SAMPLES;
use std::path::Path;

/// Why a prompt file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// A decoded prompt with its frames pre-encoded in both laws.
#[derive(Debug)]
pub struct Prompt {
    name: String,
    pcm: Vec<i16>,
    ulaw: Vec<u8>,
    alaw: Vec<u8>,
}

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_ALAW: u16 = 6;
const WAVE_FORMAT_MULAW: u16 = 7;

impl Prompt {
    /// Loads and checks a WAV file.
    pub fn load(path: &Path) -> Result<Prompt, PromptError> {
        let fail = |message: String| PromptError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let pcm = decode_wav(&bytes).map_err(fail)?;
        if pcm.is_empty() {
            return Err(fail("no audio samples".into()));
        }
        Ok(Prompt::from_pcm(path.display().to_string(), pcm))
    }

    /// Builds a prompt from 8 kHz samples (padded with silence to whole frames).
    pub fn from_pcm(name: String, mut pcm: Vec<i16>) -> Prompt {
        let rem = pcm.len() % FRAME_SAMPLES;
        if rem != 0 {
            pcm.resize(pcm.len() + FRAME_SAMPLES - rem, 0);
        }
        let mut ulaw = vec![0; pcm.len()];
        let mut alaw = vec![0; pcm.len()];
        Law::Ulaw.encode_frame(&pcm, &mut ulaw);
        Law::Alaw.encode_frame(&pcm, &mut alaw);
        Prompt {
            name,
            pcm,
            ulaw,
            alaw,
        }
    }

    /// Where it was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of 20 ms frames.
    pub fn frames(&self) -> usize {
        self.pcm.len() / FRAME_SAMPLES
    }

    /// Frame `index` (modulo the length, so playback can loop) in `law`.
    pub fn frame(&self, law: Law, index: usize) -> &[u8] {
        let start = (index % self.frames()) * FRAME_SAMPLES;
        let data = match law {
            Law::Ulaw => &self.ulaw,
            Law::Alaw => &self.alaw,
        };
        &data[start..start + FRAME_SAMPLES]
    }

    /// The decoded samples.
    pub fn pcm(&self) -> &[i16] {
        &self.pcm
    }
}

/// Decodes a WAV image into 8 kHz mono PCM, or says what is wrong with it.
pub fn decode_wav(bytes: &[u8]) -> Result<Vec<i16>, String> {
    let fmt = find_format(bytes)?;
    if fmt.channels != 1 {
        return Err(format!("{} channels, expected mono", fmt.channels));
    }
    if fmt.sample_rate != 8000 {
        return Err(format!("sample rate {} Hz, expected 8000", fmt.sample_rate));
    }
    match fmt.tag {
        WAVE_FORMAT_PCM => {
            if fmt.bits != 16 {
                return Err(format!("{}-bit PCM, expected 16-bit", fmt.bits));
            }
            let reader = hound::WavReader::new(std::io::Cursor::new(bytes))
                .map_err(|e| format!("unreadable WAV: {e}"))?;
            reader
                .into_samples::<i16>()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("unreadable WAV data: {e}"))
        }
        WAVE_FORMAT_ALAW | WAVE_FORMAT_MULAW => {
            if fmt.bits != 8 {
                return Err(format!("{}-bit G.711, expected 8-bit", fmt.bits));
            }
            let law = if fmt.tag == WAVE_FORMAT_ALAW {
                Law::Alaw
            } else {
                Law::Ulaw
            };
            let data = chunk(bytes, b"data").ok_or("no data chunk")?;
            let mut pcm = vec![0; data.len()];
            law.decode_frame(data, &mut pcm);
            Ok(pcm)
        }
        tag => Err(format!(
            "format tag {tag} not supported: use 16-bit PCM or G.711 (A-law/u-law)"
        )),
    }
}

struct Format {
    tag: u16,
    channels: u16,
    sample_rate: u32,
    bits: u16,
}

fn find_format(bytes: &[u8]) -> Result<Format, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let fmt = chunk(bytes, b"fmt ").ok_or("no fmt chunk")?;
    if fmt.len() < 16 {
        return Err("fmt chunk too short".into());
    }
    let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
    let mut tag = u16_at(0);
    // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the GUID.
    if tag == 0xFFFE && fmt.len() >= 26 {
        tag = u16_at(24);
    }
    Ok(Format {
        tag,
        channels: u16_at(2),
        sample_rate: u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]),
        bits: u16_at(14),
    })
}

fn chunk<'a>(bytes: &'a [u8], id: &[u8; 4]) -> Option<&'a [u8]> {
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = pos + 8;
        let end = body.checked_add(size)?.min(bytes.len());
        if &bytes[pos..pos + 4] == id {
            return Some(&bytes[body..end]);
        }
        // Chunks are word aligned.
        pos = end + (size & 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        let block = channels * bits / 8;
        v.extend_from_slice(&(rate * block as u32).to_le_bytes());
        v.extend_from_slice(&block.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn pcm16_loads_and_pads() {
        let samples: Vec<u8> = (0..200i16).flat_map(|s| (s * 100).to_le_bytes()).collect();
        let pcm = decode_wav(&wav(1, 1, 8000, 16, &samples)).unwrap();
        assert_eq!(pcm.len(), 200);
        let p = Prompt::from_pcm("t".into(), pcm);
        assert_eq!(p.frames(), 2);
        assert_eq!(p.frame(Law::Ulaw, 0).len(), 160);
        // Looping wraps.
        assert_eq!(p.frame(Law::Alaw, 2), p.frame(Law::Alaw, 0));
    }

    #[test]
    fn g711_wav_loads() {
        let data = [0xFFu8; 320];
        let pcm = decode_wav(&wav(7, 1, 8000, 8, &data)).unwrap();
        assert_eq!(pcm.len(), 320);
        assert!(pcm.iter().all(|s| s.abs() < 10));
        let pcm = decode_wav(&wav(6, 1, 8000, 8, &[0xD5; 160])).unwrap();
        assert!(pcm.iter().all(|s| s.abs() < 10));
    }

    #[test]
    fn wrong_files_are_explained() {
        let cases = [
            (wav(1, 2, 8000, 16, &[0; 8]), "channels"),
            (wav(1, 1, 16000, 16, &[0; 8]), "16000"),
            (wav(1, 1, 8000, 8, &[0; 8]), "8-bit PCM"),
            (wav(2, 1, 8000, 4, &[0; 8]), "format tag 2"),
            (b"not a wav at all".to_vec(), "RIFF"),
        ];
        for (bytes, needle) in cases {
            let err = decode_wav(&bytes).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        // Truncated files never panic.
        let good = wav(1, 1, 8000, 16, &[0; 64]);
        for n in 0..good.len() {
            let _ = decode_wav(&good[..n]);
        }
    }

    #[test]
    fn shipped_greeting_is_valid() {
        let p = Prompt::load(Path::new("ivr-flows/prompts/cmn/welcome.wav")).unwrap();
        assert!(p.frames() > 50);
        let err = Prompt::load(Path::new("ivr-flows/prompts/missing.wav")).unwrap_err();
        assert!(err.to_string().contains("missing.wav"));
    }
}
