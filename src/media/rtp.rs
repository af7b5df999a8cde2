//! RTP framing (RFC 3550) for one outgoing and any incoming G.711 stream.
//!
//! [`Packetizer`] owns the sender side of one stream: SSRC, sequence number,
//! timestamp, the marker bit and the counters an RTCP sender report needs. It
//! writes each packet into a buffer the caller reuses, so sending allocates
//! nothing. [`parse`] is the receiver side: it borrows the header fields and
//! payload out of a datagram. Both are sans-IO and lean on `rtp-rs` for the
//! wire format. Codecs are in [`super::g711`], telephone events in
//! [`super::dtmf`], and what happens to received frames in [`super::jitter`].

use rtp_rs::{RtpPacketBuilder, RtpReader, RtpReaderError, Seq};
use thiserror::Error;

/// Samples in one 20 ms G.711 frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// Length of an RTP header without CSRCs or extension.
pub const HEADER_LEN: usize = 12;

/// Builds the RTP packets of one outgoing stream.
#[derive(Debug, Clone)]
pub struct Packetizer {
    ssrc: u32,
    payload_type: u8,
    seq: u16,
    timestamp: u32,
    mark: bool,
    packets_sent: u32,
    octets_sent: u32,
}

impl Packetizer {
    /// Starts a stream; the first packet carries `initial_seq`, `initial_ts` and the marker bit.
    pub fn new(ssrc: u32, payload_type: u8, initial_seq: u16, initial_ts: u32) -> Self {
        Self {
            ssrc,
            payload_type,
            seq: initial_seq,
            timestamp: initial_ts,
            mark: true,
            packets_sent: 0,
            octets_sent: 0,
        }
    }

    /// Changes the payload type of following packets (e.g. 101 for a telephone-event).
    pub fn set_payload_type(&mut self, pt: u8) {
        self.payload_type = pt;
    }

    /// Writes one packet into `out` and returns its length, or 0 if `out` is too
    /// small (it needs [`HEADER_LEN`] + `payload.len()`) or the payload type is over 127.
    ///
    /// On success the sequence number advances by one and the timestamp by `samples`.
    pub fn write(&mut self, payload: &[u8], samples: u32, out: &mut [u8]) -> usize {
        let builder = RtpPacketBuilder::new()
            .payload_type(self.payload_type)
            .marked(self.mark)
            .sequence(Seq::from(self.seq))
            .timestamp(self.timestamp)
            .ssrc(self.ssrc)
            .payload(payload);
        // A failed build leaves the stream state untouched so the caller can retry.
        let Ok(len) = builder.build_into(out) else {
            return 0;
        };
        self.mark = false;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
        len
    }

    /// Sets the marker bit on the next packet (start of a talkspurt, RFC 3551 §4.1).
    pub fn mark_next(&mut self) {
        self.mark = true;
    }

    /// Advances the timestamp by `samples` without sending, keeping it in step
    /// with wall time across hold or silence; the next packet is marked.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        // The next packet starts a talkspurt after a gap, which RFC 3551 marks.
        if samples > 0 {
            self.mark = true;
        }
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will carry.
    pub fn seq(&self) -> u16 {
        self.seq
    }

    /// The timestamp the next packet will carry.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The payload type of following packets.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Packets written so far, wrapping at 2^32 like the RTCP SR field.
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }

    /// Payload octets written so far, wrapping at 2^32 like the RTCP SR field.
    pub fn octets_sent(&self) -> u32 {
        self.octets_sent
    }
}

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP packet too short: {0} bytes")]
    TooShort(usize),
    /// Version field is not 2.
    #[error("unsupported RTP version {0}")]
    BadVersion(u8),
    /// CSRC list or header extension runs past the end of the datagram.
    #[error("RTP header truncated: needs {needed} bytes, have {have}")]
    Truncated {
        /// Header length the flags call for.
        needed: usize,
        /// Datagram length.
        have: usize,
    },
    /// Padding length is zero or longer than the payload.
    #[error("invalid RTP padding length {0}")]
    BadPadding(u8),
    /// An RTCP packet arriving on a muxed port (RFC 5761); hand it to RTCP.
    #[error("RTCP packet on the RTP path")]
    Rtcp,
}

impl From<RtpReaderError> for RtpError {
    fn from(e: RtpReaderError) -> Self {
        match e {
            RtpReaderError::BufferTooShort(n) => RtpError::TooShort(n),
            RtpReaderError::UnsupportedVersion(v) => RtpError::BadVersion(v),
            RtpReaderError::HeadersTruncated {
                header_len,
                buffer_len,
            } => RtpError::Truncated {
                needed: header_len,
                have: buffer_len,
            },
            RtpReaderError::PaddingLengthInvalid(n) => RtpError::BadPadding(n),
        }
    }
}

/// The fields of a received RTP packet, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    /// Payload type (0..=127).
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Marker bit (start of talkspurt for audio).
    pub marker: bool,
    /// Payload without CSRCs, header extension or padding.
    pub payload: &'a [u8],
}

/// Parses an RTP packet; rejects non-version-2, truncated and RTCP packets.
pub fn parse(buf: &[u8]) -> Result<RtpView<'_>, RtpError> {
    // Checked first: an RTCP packet is a well-formed RTP header to rtp-rs and
    // would otherwise reach the codec as payload type 72..=76.
    if is_rtcp(buf) {
        return Err(RtpError::Rtcp);
    }
    let r = RtpReader::new(buf)?;
    Ok(RtpView {
        payload_type: r.payload_type(),
        seq: r.sequence_number().into(),
        timestamp: r.timestamp(),
        ssrc: r.ssrc(),
        marker: r.mark(),
        payload: r.payload(),
    })
}

/// Whether a datagram on a muxed RTP/RTCP port is RTCP (RFC 5761 §4).
///
/// RFC 5761 reserves second-byte values 192..=223 for RTCP (SR 200 .. XR 207
/// and the feedback types), which is why RTP payload types 64..=95 are never used.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(b0: u8, b1: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut v = vec![b0, b1];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(&ssrc.to_be_bytes());
        v
    }

    #[test]
    fn packetizer_writes_header_and_payload() {
        let mut p = Packetizer::new(0xDEAD_BEEF, 8, 1000, 5000);
        let payload = [0xD5u8; 160];
        let mut out = [0u8; 1500];
        let n = p.write(&payload, 160, &mut out);
        assert_eq!(n, HEADER_LEN + 160);
        assert_eq!(out[0], 0x80);
        assert_eq!(out[1], 0x80 | 8, "first packet is marked");
        assert_eq!(&out[2..4], &1000u16.to_be_bytes());
        assert_eq!(&out[4..8], &5000u32.to_be_bytes());
        assert_eq!(&out[8..12], &0xDEAD_BEEFu32.to_be_bytes());
        assert_eq!(&out[12..n], &payload[..]);

        let v = parse(&out[..n]).unwrap();
        assert_eq!(
            (v.payload_type, v.seq, v.timestamp, v.ssrc, v.marker),
            (8, 1000, 5000, 0xDEAD_BEEF, true)
        );
        assert_eq!(v.payload, &payload[..]);
    }

    #[test]
    fn seq_and_timestamp_advance_and_wrap() {
        let mut p = Packetizer::new(1, 0, u16::MAX, u32::MAX - 100);
        let mut out = [0u8; 200];
        let n = p.write(&[0xFF; 160], 160, &mut out);
        let v = parse(&out[..n]).unwrap();
        assert_eq!((v.seq, v.timestamp), (u16::MAX, u32::MAX - 100));
        assert_eq!(p.seq(), 0);
        assert_eq!(p.timestamp(), 59);
        let n = p.write(&[0xFF; 160], 160, &mut out);
        let v = parse(&out[..n]).unwrap();
        assert_eq!((v.seq, v.timestamp, v.marker), (0, 59, false));
        assert_eq!(p.packets_sent(), 2);
        assert_eq!(p.octets_sent(), 320);
    }

    #[test]
    fn marker_only_on_first_and_after_mark_next_or_skip() {
        let mut p = Packetizer::new(7, 0, 0, 0);
        let mut out = [0u8; 200];
        let mut marks = Vec::new();
        for i in 0..6 {
            if i == 3 {
                p.mark_next();
            }
            if i == 5 {
                p.skip(1600);
            }
            let n = p.write(&[0; 160], 160, &mut out);
            marks.push(parse(&out[..n]).unwrap().marker);
        }
        assert_eq!(marks, [true, false, false, true, false, true]);
        // skip(0) is not a gap.
        p.skip(0);
        let n = p.write(&[0; 160], 160, &mut out);
        assert!(!parse(&out[..n]).unwrap().marker);
    }

    #[test]
    fn skip_keeps_timestamps_continuous() {
        let mut p = Packetizer::new(7, 0, 10, 100);
        let mut out = [0u8; 200];
        p.write(&[0; 160], 160, &mut out);
        p.skip(160 * 50);
        assert_eq!(p.seq(), 11, "skip sends nothing");
        let n = p.write(&[0; 160], 160, &mut out);
        let v = parse(&out[..n]).unwrap();
        assert_eq!(v.timestamp, 100 + 160 + 8000);
        assert_eq!(p.packets_sent(), 2);
    }

    #[test]
    fn write_into_small_buffer_returns_zero_and_keeps_state() {
        let mut p = Packetizer::new(7, 0, 10, 100);
        let mut out = [0u8; 100];
        assert_eq!(p.write(&[0; 160], 160, &mut out), 0);
        assert_eq!((p.seq(), p.timestamp(), p.packets_sent()), (10, 100, 0));
        p.set_payload_type(200);
        let mut big = [0u8; 400];
        assert_eq!(p.write(&[0; 160], 160, &mut big), 0, "pt over 127");
        p.set_payload_type(101);
        assert_eq!(p.payload_type(), 101);
        let n = p.write(&[1, 2, 3, 4], 0, &mut big);
        assert_eq!(n, 16);
        let v = parse(&big[..n]).unwrap();
        assert_eq!((v.payload_type, v.marker, v.timestamp), (101, true, 100));
        assert_eq!(p.timestamp(), 100, "events may keep the timestamp");
        assert_eq!(p.ssrc(), 7);
    }

    #[test]
    fn empty_payload_is_allowed() {
        let mut p = Packetizer::new(7, 0, 10, 100);
        let mut out = [0u8; HEADER_LEN];
        assert_eq!(p.write(&[], 0, &mut out), HEADER_LEN);
        assert_eq!(parse(&out).unwrap().payload, &[] as &[u8]);
    }

    #[test]
    fn parse_handles_csrc_extension_and_padding() {
        // CC=2, X=1, P=1.
        let mut v = header(0x80 | 0x20 | 0x10 | 2, 0, 1, 2, 3);
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // CSRCs
        v.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]); // one-word extension
        v.extend_from_slice(&[0xAA, 0xBB, 0xCC]); // payload
        v.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let p = parse(&v).unwrap();
        assert_eq!(p.payload, &[0xAA, 0xBB, 0xCC]);
        assert_eq!((p.seq, p.timestamp, p.ssrc), (1, 2, 3));
    }

    #[test]
    fn parse_rejects_malformed() {
        assert_eq!(parse(&[]), Err(RtpError::TooShort(0)));
        assert_eq!(parse(&[0x80; 11]), Err(RtpError::TooShort(11)));
        let v1 = header(0x40, 0, 1, 2, 3);
        assert_eq!(parse(&v1), Err(RtpError::BadVersion(1)));
        let v0 = header(0x00, 0, 1, 2, 3);
        assert_eq!(parse(&v0), Err(RtpError::BadVersion(0)));
        // 15 CSRCs announced, none present.
        let cc = header(0x8F, 0, 1, 2, 3);
        assert!(matches!(parse(&cc), Err(RtpError::Truncated { .. })));
        // Extension flag without the extension header.
        let x = header(0x90, 0, 1, 2, 3);
        assert!(matches!(parse(&x), Err(RtpError::Truncated { .. })));
        // Extension length past the end.
        let mut x2 = header(0x90, 0, 1, 2, 3);
        x2.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        assert!(matches!(parse(&x2), Err(RtpError::Truncated { .. })));
        // Padding flag with zero or too-long padding.
        let mut p0 = header(0xA0, 0, 1, 2, 3);
        p0.extend_from_slice(&[1, 2, 0]);
        assert_eq!(parse(&p0), Err(RtpError::BadPadding(0)));
        let mut p1 = header(0xA0, 0, 1, 2, 3);
        p1.extend_from_slice(&[1, 2, 9]);
        assert_eq!(parse(&p1), Err(RtpError::BadPadding(9)));
        // Padding flag and nothing after the header.
        let p2 = header(0xA0, 0, 1, 2, 3);
        assert!(parse(&p2).is_err());
    }

    #[test]
    fn parse_never_panics_on_noise() {
        // xorshift: deterministic noise without a dependency.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buf = [0u8; 64];
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 65) as usize;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (x >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(31);
            }
            // Bias half the cases towards version 2 to get past the first check.
            if x & 1 == 0 {
                buf[0] = (buf[0] & 0x3F) | 0x80;
            }
            if let Ok(v) = parse(&buf[..len]) {
                assert!(v.payload.len() <= len);
            }
        }
    }

    #[test]
    fn rtcp_demux() {
        for pt in 192..=223u8 {
            assert!(is_rtcp(&[0x80, pt, 0, 1]), "{pt}");
            let mut v = header(0x80, pt, 1, 2, 3);
            v.extend_from_slice(&[0; 8]);
            assert_eq!(parse(&v), Err(RtpError::Rtcp));
        }
        assert!(is_rtcp(&[0x81, 200]));
        assert!(!is_rtcp(&[0x80, 0]));
        assert!(!is_rtcp(&[0x80, 0x80 | 8]), "marked PCMA");
        assert!(!is_rtcp(&[0x80, 101]));
        assert!(!is_rtcp(&[0x80, 0x80 | 101]));
        assert!(!is_rtcp(&[0x40, 200]), "not version 2");
        assert!(!is_rtcp(&[0x80]));
        assert!(!is_rtcp(&[]));
    }
}
