//! G.711 µ-law (PCMU) and A-law (PCMA): the only codecs the telephone network
//! side of the hotline needs.
//!
//! This room converts between 16-bit linear PCM and 8-bit G.711 code words,
//! sample by sample or a 20 ms frame at a time. It follows ITU-T G.711 exactly
//! as Sun's public-domain `g711.c` does, so our bytes match what every SIP
//! phone and trunk produces. Both directions are table lookups, the tables
//! computed at compile time from g711.c's formulas. Nothing here allocates or
//! can panic.
//! The RTP framing around these bytes is in [`super::rtp`].

/// A G.711 companding law, as negotiated in SDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, RTP payload type 0 ("PCMU"), used in North America and Japan.
    Ulaw,
    /// A-law, RTP payload type 8 ("PCMA"), used in China and Europe.
    Alaw,
}

impl Law {
    /// The static RTP payload type (RFC 3551): 0 for PCMU, 8 for PCMA.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The SDP encoding name: "PCMU" or "PCMA".
    pub fn name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }

    /// Encodes one linear sample into a G.711 code word.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode(sample),
            Law::Alaw => alaw_encode(sample),
        }
    }

    /// Decodes one G.711 code word into a linear sample.
    pub fn decode(self, byte: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_decode(byte),
            Law::Alaw => alaw_decode(byte),
        }
    }

    /// Encodes `pcm` into `out`; processes `min(pcm.len(), out.len())` samples.
    pub fn encode_frame(self, pcm: &[i16], out: &mut [u8]) {
        // The match is hoisted out of the loop so each loop is a tight, inlinable body.
        match self {
            Law::Ulaw => {
                for (o, &s) in out.iter_mut().zip(pcm) {
                    *o = ulaw_encode(s);
                }
            }
            Law::Alaw => {
                for (o, &s) in out.iter_mut().zip(pcm) {
                    *o = alaw_encode(s);
                }
            }
        }
    }

    /// Decodes `bytes` into `out`; processes `min(bytes.len(), out.len())` samples.
    pub fn decode_frame(self, bytes: &[u8], out: &mut [i16]) {
        let table = match self {
            Law::Ulaw => &ULAW_DECODE,
            Law::Alaw => &ALAW_DECODE,
        };
        for (o, &b) in out.iter_mut().zip(bytes) {
            *o = table[b as usize];
        }
    }

    /// The code word for digital silence (decodes to 0 or the smallest step).
    pub fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }
}

// Constants named as in g711.c.
const SIGN_BIT: u8 = 0x80;
const QUANT_MASK: u8 = 0x0F;
const SEG_SHIFT: u32 = 4;
const SEG_MASK: u8 = 0x70;
/// µ-law bias added before segment search (0x84 on the 16-bit scale).
const BIAS: i32 = 0x84;
/// Largest µ-law magnitude on the 14-bit scale, so magnitude + bias fits segment 7.
const CLIP: i32 = 8159;

/// Encodes a linear sample to µ-law (G.711, as Sun's `linear2ulaw`).
pub fn ulaw_encode(sample: i16) -> u8 {
    // The code depends only on the top 14 bits; indexing by their unsigned
    // pattern keeps the index provably in bounds.
    ULAW_ENCODE[((sample as u16) >> 2) as usize]
}

/// Sun's `linear2ulaw`, evaluated at compile time to fill [`ULAW_ENCODE`].
const fn linear_to_ulaw(sample: i16) -> u8 {
    // µ-law works on 14-bit magnitudes.
    let mut pcm = (sample as i32) >> 2;
    let mask: u8 = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    if pcm > CLIP {
        pcm = CLIP;
    }
    pcm += BIAS >> 2;
    // Segment = position of the top bit above bit 5; equivalent to g711.c's
    // search over seg_uend = {0x3F, 0x7F, ..., 0x1FFF}. pcm is in 33..=8192.
    let bits = 32 - (pcm as u32).leading_zeros();
    let seg = bits.saturating_sub(6);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let uval = ((seg as u8) << SEG_SHIFT) | (((pcm >> (seg + 1)) as u8) & QUANT_MASK);
    uval ^ mask
}

/// Decodes a µ-law code word to a linear sample (G.711, as Sun's `ulaw2linear`).
pub fn ulaw_decode(byte: u8) -> i16 {
    ULAW_DECODE[byte as usize]
}

/// Encodes a linear sample to A-law (G.711, as Sun's `linear2alaw`).
pub fn alaw_encode(sample: i16) -> u8 {
    // As for µ-law, but A-law uses the top 13 bits.
    ALAW_ENCODE[((sample as u16) >> 3) as usize]
}

/// Sun's `linear2alaw`, evaluated at compile time to fill [`ALAW_ENCODE`].
const fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes.
    let mut pcm = (sample as i32) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        // One's complement magnitude, as the standard specifies for negatives.
        pcm = -pcm - 1;
        0x55
    };
    // Equivalent to g711.c's search over seg_aend = {0x1F, 0x3F, ..., 0xFFF}.
    let bits = 32 - (pcm as u32).leading_zeros();
    let seg = bits.saturating_sub(5);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if seg < 2 { 1 } else { seg };
    let aval = ((seg as u8) << SEG_SHIFT) | (((pcm >> shift) as u8) & QUANT_MASK);
    aval ^ mask
}

/// Decodes an A-law code word to a linear sample (G.711, as Sun's `alaw2linear`).
pub fn alaw_decode(byte: u8) -> i16 {
    ALAW_DECODE[byte as usize]
}

/// Sun's `ulaw2linear`, evaluated at compile time to fill [`ULAW_DECODE`].
const fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let mut t: i32 = (((u & QUANT_MASK) as i32) << 3) + BIAS;
    t <<= ((u & SEG_MASK) >> SEG_SHIFT) as i32;
    (if u & SIGN_BIT != 0 {
        BIAS - t
    } else {
        t - BIAS
    }) as i16
}

/// Sun's `alaw2linear`, evaluated at compile time to fill [`ALAW_DECODE`].
const fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t: i32 = ((a & QUANT_MASK) as i32) << 4;
    let seg = ((a & SEG_MASK) >> SEG_SHIFT) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & SIGN_BIT != 0 { t } else { -t }) as i16
}

// All tables are built at compile time; `static` so each exists once in the
// binary. Encoding by table is 3-5x faster than computing the segment, for
// 24 KiB that stay hot in cache while the media worker runs.
static ULAW_DECODE: [i16; 256] = build_ulaw();
static ALAW_DECODE: [i16; 256] = build_alaw();
/// µ-law code by the top 14 bits of the sample.
static ULAW_ENCODE: [u8; 1 << 14] = build_ulaw_encode();
/// A-law code by the top 13 bits of the sample.
static ALAW_ENCODE: [u8; 1 << 13] = build_alaw_encode();

const fn build_ulaw_encode() -> [u8; 1 << 14] {
    let mut table = [0u8; 1 << 14];
    let mut i = 0;
    while i < table.len() {
        table[i] = linear_to_ulaw((i << 2) as u16 as i16);
        i += 1;
    }
    table
}

const fn build_alaw_encode() -> [u8; 1 << 13] {
    let mut table = [0u8; 1 << 13];
    let mut i = 0;
    while i < table.len() {
        table[i] = linear_to_alaw((i << 3) as u16 as i16);
        i += 1;
    }
    table
}

const fn build_ulaw() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_to_linear(i as u8);
        i += 1;
    }
    table
}

const fn build_alaw() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_to_linear(i as u8);
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// g711.c's segment search, kept here to check the bit-length shortcut.
    fn search(val: i32, table: &[i32; 8]) -> u32 {
        table.iter().position(|&end| val <= end).unwrap_or(8) as u32
    }

    fn ref_ulaw_encode(sample: i16) -> u8 {
        const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
        let mut pcm = (sample as i32) >> 2;
        let mask = if pcm < 0 {
            pcm = -pcm;
            0x7F
        } else {
            0xFF
        };
        pcm = pcm.min(CLIP) + (BIAS >> 2);
        let seg = search(pcm, &SEG_UEND);
        if seg >= 8 {
            return 0x7F ^ mask;
        }
        (((seg << 4) as u8) | ((pcm >> (seg + 1)) as u8 & 0xF)) ^ mask
    }

    fn ref_alaw_encode(sample: i16) -> u8 {
        const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
        let mut pcm = (sample as i32) >> 3;
        let mask = if pcm >= 0 {
            0xD5
        } else {
            pcm = -pcm - 1;
            0x55
        };
        let seg = search(pcm, &SEG_AEND);
        if seg >= 8 {
            return 0x7F ^ mask;
        }
        let q = if seg < 2 { pcm >> 1 } else { pcm >> seg };
        (((seg << 4) as u8) | (q as u8 & 0xF)) ^ mask
    }

    #[test]
    fn encoders_match_reference_search_over_full_range() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(s), ref_ulaw_encode(s), "ulaw {s}");
            assert_eq!(alaw_encode(s), ref_alaw_encode(s), "alaw {s}");
            assert_eq!(linear_to_ulaw(s), ref_ulaw_encode(s), "ulaw calc {s}");
            assert_eq!(linear_to_alaw(s), ref_alaw_encode(s), "alaw calc {s}");
        }
    }

    #[test]
    fn tables_match_const_fns() {
        for b in 0..=255u8 {
            assert_eq!(ULAW_DECODE[b as usize], ulaw_to_linear(b));
            assert_eq!(ALAW_DECODE[b as usize], alaw_to_linear(b));
        }
    }

    #[test]
    fn known_ulaw_code_points() {
        assert_eq!(ulaw_encode(0), 0xFF);
        // g711.c shifts arithmetically, so -1 lands on the first negative step.
        assert_eq!(ulaw_encode(-1), 0x7E);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        // First step of segment 0: magnitude 8 on the 16-bit scale.
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0x7E), -8);
        assert_eq!(ulaw_encode(1000), 0xCE);
        assert_eq!(ulaw_decode(0xCE), 988);
    }

    #[test]
    fn known_alaw_code_points() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(1000), 0xFA);
        assert_eq!(alaw_decode(0xFA), 1008);
    }

    #[test]
    fn decode_encode_is_identity_on_code_words() {
        // Every code word's decoded value must encode back to itself, except the
        // redundant µ-law negative zero (0x7F) which encodes as positive zero.
        for b in 0..=255u8 {
            let u = ulaw_encode(ulaw_decode(b));
            if b == 0x7F {
                assert_eq!(u, 0xFF);
            } else {
                assert_eq!(u, b, "ulaw {b:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(b)), b, "alaw {b:#04x}");
        }
    }

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        // G.711 is logarithmic: the step is 1/16 of the segment and the decoder
        // returns the middle of the step, so error stays under ~1/32 of the value.
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let x = s as i32;
            for law in [Law::Ulaw, Law::Alaw] {
                let y = law.decode(law.encode(s)) as i32;
                // Half a quantisation step; µ-law segments are offset by the bias.
                let bound = (x.abs() + 2 * BIAS) / 32 + 8;
                assert!((x - y).abs() <= bound, "{law:?} {x} -> {y}");
                assert!(
                    x.signum() * y.signum() >= 0 || x.abs() < 16,
                    "{law:?} sign {x} {y}"
                );
            }
        }
    }

    #[test]
    fn silence_decodes_to_near_zero() {
        assert_eq!(Law::Ulaw.decode(Law::Ulaw.silence()), 0);
        assert!(Law::Alaw.decode(Law::Alaw.silence()).abs() <= 8);
        assert_eq!(Law::Ulaw.encode(0), Law::Ulaw.silence());
        assert_eq!(Law::Alaw.encode(0), Law::Alaw.silence());
    }

    #[test]
    fn decode_is_monotonic_in_magnitude() {
        for law in [Law::Ulaw, Law::Alaw] {
            let mut values: Vec<i16> = (0..=255u8).map(|b| law.decode(b)).collect();
            values.sort_unstable();
            values.dedup();
            // 256 code words, one redundant zero for µ-law.
            let expect = if law == Law::Ulaw { 255 } else { 256 };
            assert_eq!(values.len(), expect, "{law:?}");
        }
    }

    #[test]
    fn frames_process_min_length_without_panic() {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 200 - 16000) as i16).collect();
        for law in [Law::Ulaw, Law::Alaw] {
            let mut enc = [0u8; 160];
            law.encode_frame(&pcm, &mut enc);
            for (i, &s) in pcm.iter().enumerate() {
                assert_eq!(enc[i], law.encode(s));
            }
            let mut dec = [0i16; 160];
            law.decode_frame(&enc, &mut dec);
            for i in 0..160 {
                assert_eq!(dec[i], law.decode(enc[i]));
            }
            // Mismatched lengths: only the common prefix is touched.
            let mut short = [0xAAu8; 10];
            law.encode_frame(&pcm, &mut short);
            assert_eq!(short[9], law.encode(pcm[9]));
            let mut long = [7i16; 200];
            law.decode_frame(&enc, &mut long);
            assert_eq!(long[160], 7);
            law.encode_frame(&[], &mut enc);
            law.decode_frame(&[], &mut dec);
        }
    }

    #[test]
    fn names_and_payload_types() {
        assert_eq!(Law::Ulaw.payload_type(), 0);
        assert_eq!(Law::Alaw.payload_type(), 8);
        assert_eq!(Law::Ulaw.name(), "PCMU");
        assert_eq!(Law::Alaw.name(), "PCMA");
    }
}
