//! The bridge's codec step, one 20 ms frame at a time: the browser's Opus
//! (or PCMU) to the call's G.711 and back. Sans-IO: payloads in, payloads
//! out.
//!
//! Opus runs at 8 kHz on both sides (the codec resamples inside), so no
//! separate resampler is needed: the SIP side is narrowband G.711 anyway.
//! Opus's RTP clock stays 48 kHz (RFC 7587), so one 20 ms frame advances
//! its timestamp by 960.

use crate::media::g711::Law;
use opus_rs::{Application, OpusDecoder, OpusEncoder};

/// Samples in 20 ms at 8 kHz.
pub const FRAME: usize = 160;
/// Longest Opus packet duration (120 ms) in 8 kHz samples.
const MAX_DECODED: usize = FRAME * 6;

/// What the browser's side of the bridge carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserCodec {
    Opus,
    Pcmu,
}

impl BrowserCodec {
    /// RTP clock ticks per 8 kHz sample.
    pub fn ticks_per_sample(self) -> u32 {
        match self {
            BrowserCodec::Opus => 6,
            BrowserCodec::Pcmu => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BrowserCodec::Opus => "opus",
            BrowserCodec::Pcmu => "PCMU",
        }
    }
}

/// Why a frame could not be transcoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("opus: {0}")]
pub struct CodecError(pub &'static str);

/// Browser payloads to G.711.
pub struct ToSip {
    codec: BrowserCodec,
    law: Law,
    decoder: Option<OpusDecoder>,
    decoded: Vec<f32>,
}

impl ToSip {
    pub fn new(codec: BrowserCodec, law: Law) -> Result<ToSip, CodecError> {
        let decoder = match codec {
            BrowserCodec::Opus => Some(OpusDecoder::new(8000, 1).map_err(CodecError)?),
            BrowserCodec::Pcmu => None,
        };
        Ok(ToSip {
            codec,
            law,
            decoder,
            decoded: vec![0.0; MAX_DECODED],
        })
    }

    /// Appends the G.711 bytes of one browser payload (160 per 20 ms) to `out`.
    pub fn frame(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        match (self.codec, self.decoder.as_mut()) {
            (BrowserCodec::Opus, Some(decoder)) => {
                let n = decoder
                    .decode(payload, MAX_DECODED, &mut self.decoded)
                    .map_err(CodecError)?;
                out.extend(self.decoded[..n].iter().map(|&s| {
                    self.law
                        .encode((s * 32767.0).clamp(-32768.0, 32767.0) as i16)
                }));
            }
            _ if self.law == Law::Ulaw => out.extend_from_slice(payload),
            _ => out.extend(
                payload
                    .iter()
                    .map(|&b| self.law.encode(Law::Ulaw.decode(b))),
            ),
        }
        Ok(())
    }
}

/// G.711 frames to browser payloads.
pub struct ToBrowser {
    law: Law,
    encoder: Option<OpusEncoder>,
    pcm: [i16; FRAME],
}

impl ToBrowser {
    pub fn new(codec: BrowserCodec, law: Law, opus_bitrate: u32) -> Result<ToBrowser, CodecError> {
        let encoder = match codec {
            BrowserCodec::Opus => {
                let mut e = OpusEncoder::new(8000, 1, Application::Voip).map_err(CodecError)?;
                e.bitrate_bps = opus_bitrate as i32;
                Some(e)
            }
            BrowserCodec::Pcmu => None,
        };
        Ok(ToBrowser {
            law,
            encoder,
            pcm: [0; FRAME],
        })
    }

    /// Encodes one 20 ms G.711 frame (160 bytes) into `out`; returns the
    /// payload's length.
    pub fn frame(&mut self, g711: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        let n = g711.len().min(FRAME);
        match self.encoder.as_mut() {
            Some(encoder) => {
                for (s, &b) in self.pcm.iter_mut().zip(&g711[..n]) {
                    *s = self.law.decode(b);
                }
                // A short frame is padded with silence: Opus takes whole frames.
                self.pcm[n..].fill(0);
                encoder
                    .encode_i16(&self.pcm, FRAME, out)
                    .map_err(CodecError)
            }
            None if self.law == Law::Ulaw => {
                out[..n].copy_from_slice(&g711[..n]);
                Ok(n)
            }
            None => {
                for (o, &b) in out.iter_mut().zip(&g711[..n]) {
                    *o = Law::Ulaw.encode(self.law.decode(b));
                }
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, frames: usize) -> Vec<i16> {
        (0..frames * FRAME)
            .map(|i| {
                let t = i as f32 / 8000.0;
                ((t * freq * std::f32::consts::TAU).sin() * 8000.0) as i16
            })
            .collect()
    }

    /// Goertzel power of `freq`, normalised by length.
    fn power(pcm: &[i16], freq: f32) -> f32 {
        let w = std::f32::consts::TAU * freq / 8000.0;
        let c = 2.0 * w.cos();
        let (mut a, mut b) = (0.0f32, 0.0f32);
        for &x in pcm {
            let y = x as f32 / 32768.0 + c * a - b;
            b = a;
            a = y;
        }
        (a * a + b * b - c * a * b) / (pcm.len() as f32).powi(2)
    }

    /// G.711 → Opus → G.711 keeps a tone's frequency and level.
    fn round_trip(law: Law) {
        let pcm = tone(1000.0, 50);
        let mut to_browser = ToBrowser::new(BrowserCodec::Opus, law, 24_000).unwrap();
        let mut to_sip = ToSip::new(BrowserCodec::Opus, law).unwrap();
        let mut opus = [0u8; 1500];
        let mut back = Vec::new();
        for chunk in pcm.chunks(FRAME) {
            let g711: Vec<u8> = chunk.iter().map(|&s| law.encode(s)).collect();
            let n = to_browser.frame(&g711, &mut opus).unwrap();
            assert!(n > 0 && n < 200, "{n} bytes for 20 ms");
            to_sip.frame(&opus[..n], &mut back).unwrap();
        }
        assert_eq!(back.len(), pcm.len());
        let heard: Vec<i16> = back[back.len() / 2..]
            .iter()
            .map(|&b| law.decode(b))
            .collect();
        let want = power(&heard, 1000.0);
        let sent = power(&pcm[pcm.len() / 2..], 1000.0);
        assert!(want > sent * 0.5, "tone level {want} of {sent}");
        assert!(power(&heard, 700.0) < want / 100.0);
        assert!(power(&heard, 1400.0) < want / 100.0);
    }

    #[test]
    fn opus_carries_a_tone_both_ways_for_either_law() {
        round_trip(Law::Ulaw);
        round_trip(Law::Alaw);
    }

    #[test]
    fn pcmu_passes_through_and_alaw_is_recoded() {
        let mut to_sip = ToSip::new(BrowserCodec::Pcmu, Law::Ulaw).unwrap();
        let mut out = Vec::new();
        to_sip.frame(&[1, 2, 3], &mut out).unwrap();
        assert_eq!(out, [1, 2, 3]);
        let sample = 1234i16;
        let mut to_sip = ToSip::new(BrowserCodec::Pcmu, Law::Alaw).unwrap();
        let mut out = Vec::new();
        to_sip.frame(&[Law::Ulaw.encode(sample)], &mut out).unwrap();
        let back = Law::Alaw.decode(out[0]);
        assert!((back - sample).abs() < 64, "{back} vs {sample}");
        let mut to_browser = ToBrowser::new(BrowserCodec::Pcmu, Law::Alaw, 24_000).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(
            to_browser.frame(&[Law::Alaw.encode(sample)], &mut buf),
            Ok(1)
        );
        assert!((Law::Ulaw.decode(buf[0]) - sample).abs() < 64);
    }

    #[test]
    fn a_broken_opus_packet_is_an_error_not_a_panic() {
        let mut to_sip = ToSip::new(BrowserCodec::Opus, Law::Ulaw).unwrap();
        let mut out = Vec::new();
        // A TOC byte announcing a code-3 packet with an impossible count.
        let r = to_sip.frame(&[0x03, 0xff, 0xff, 0xff], &mut out);
        assert!(r.is_err() || out.len() <= MAX_DECODED, "{r:?}");
    }
}
