//! RTCP (RFC 3550 §6): reception statistics and the reports that carry them.
//!
//! [`ReceptionStats`] watches one incoming RTP stream and keeps the numbers a
//! receiver report needs: packets expected and lost (Appendix A.1 and A.3) and
//! interarrival jitter (A.8). [`build_sender_report`] and
//! [`build_receiver_report`] write a compound SR or RR plus SDES CNAME, and
//! [`parse_compound`] reads what the peer sends back, for call-quality metrics
//! and round-trip time. Packets are encoded and decoded by the webrtc-rs
//! `rtcp` crate. RTCP goes out every few seconds, so unlike [`super::rtp`]
//! this room may allocate. Time is always passed in by the caller.

use std::time::Duration;

use ::rtcp::goodbye::Goodbye;
use ::rtcp::packet::{Packet, marshal, unmarshal};
use ::rtcp::receiver_report::ReceiverReport;
use ::rtcp::reception_report::ReceptionReport;
use ::rtcp::sender_report::SenderReport;
use ::rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use bytes::Bytes;
use thiserror::Error;

/// A sequence jump of at least this many is a dropout or restart, not loss (A.1).
const MAX_DROPOUT: u16 = 3000;
/// A sequence this far behind the highest is a late or duplicate packet (A.1).
const MAX_MISORDER: u16 = 100;
/// Consecutive packets needed before a new source is believed (A.1).
const MIN_SEQUENTIAL: u16 = 2;
const RTP_SEQ_MOD: u32 = 1 << 16;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// RTCP packet types (RFC 3550 §12.1) this module reads.
const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_BYE: u8 = 203;

/// Why an RTCP packet could not be built or parsed.
#[derive(Debug, Error)]
pub enum RtcpError {
    /// The datagram is empty.
    #[error("empty RTCP packet")]
    Empty,
    /// A packet header or its declared length runs past the end of the datagram.
    #[error("RTCP packet truncated")]
    Truncated,
    /// A packet's version field is not 2.
    #[error("unsupported RTCP version {0}")]
    BadVersion(u8),
    /// The `rtcp` crate rejected a packet.
    #[error("RTCP codec: {0}")]
    Codec(#[from] ::rtcp::Error),
}

/// Statistics for one incoming RTP stream (one SSRC), per RFC 3550 A.1, A.3 and A.8.
#[derive(Debug, Clone, Default)]
pub struct ReceptionStats {
    /// Whether any packet has been seen.
    started: bool,
    /// Sequential packets still needed before the source is valid.
    probation: u16,
    max_seq: u16,
    /// Sequence wraps, pre-multiplied by 2^16.
    cycles: u64,
    base_seq: u32,
    /// Sequence number after a large jump; if it comes next, the sender restarted.
    bad_seq: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Relative transit time of the previous packet, for the jitter estimate.
    transit: Option<i32>,
    /// Jitter in timestamp units, scaled by 16 (A.8's integer form).
    jitter_q4: u64,
}

impl ReceptionStats {
    /// Statistics for a source not heard yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one RTP packet; `arrival_rtp_units` is its arrival time on the
    /// media clock (8 kHz for G.711), from any fixed origin.
    ///
    /// A new source's first packet is held in probation (A.1) and not counted.
    pub fn on_rtp(&mut self, seq: u16, rtp_timestamp: u32, arrival_rtp_units: u32) {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        if !self.update_seq(seq) {
            return;
        }
        // A.8: transit differences cancel the unknown clock offset; wrapping
        // arithmetic keeps that true across timestamp wrap.
        let transit = arrival_rtp_units.wrapping_sub(rtp_timestamp) as i32;
        if let Some(prev) = self.transit {
            let d = transit.wrapping_sub(prev).unsigned_abs() as i64;
            let j = self.jitter_q4 as i64;
            self.jitter_q4 = (j + d - ((j + 8) >> 4)).max(0) as u64;
        }
        self.transit = Some(transit);
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = seq as u32;
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1; // so seq == bad_seq is false
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        // A restarted sender has a new timestamp origin; its first transit
        // difference would be a spike, not jitter.
        self.transit = None;
    }

    /// A.1's `update_seq`: returns whether the packet counts as received.
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return false;
        } else if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD as u64;
            }
            self.max_seq = seq;
        } else if udelta as u32 <= RTP_SEQ_MOD - MAX_MISORDER as u32 {
            // A very large jump: believe it only if the next packet follows it.
            if seq as u32 == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (seq as u32 + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        }
        // Otherwise a duplicate or reordered packet: counted, as A.1 does.
        self.received += 1;
        true
    }

    /// Packets counted as received (duplicates included, as RFC 3550 defines it).
    pub fn packets_received(&self) -> u64 {
        self.received
    }

    /// The extended highest sequence number received (cycles in the high bits).
    pub fn extended_highest_seq(&self) -> u64 {
        if self.is_valid() {
            self.cycles + self.max_seq as u64
        } else {
            0
        }
    }

    /// Packets expected: extended highest minus first sequence number, plus one (A.3).
    pub fn expected(&self) -> u64 {
        if self.is_valid() {
            (self.extended_highest_seq() + 1).saturating_sub(self.base_seq as u64)
        } else {
            0
        }
    }

    /// Packets lost since the start; negative when duplicates outnumber losses.
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4).min(u32::MAX as u64) as u32
    }

    /// Interarrival jitter in milliseconds for a media clock of `clock_rate` Hz.
    pub fn jitter_ms(&self, clock_rate: u32) -> f64 {
        if clock_rate == 0 {
            return 0.0;
        }
        self.jitter() as f64 * 1000.0 / clock_rate as f64
    }

    /// A report block for this source; also starts the next fraction-lost interval (A.3).
    ///
    /// `last_sr` is the middle 32 bits of the peer's last SR NTP time (see
    /// [`ntp_to_lsr`]) and `delay_since_last_sr` is in 1/65536 s; both 0 if no SR yet.
    pub fn report_block(
        &mut self,
        ssrc: u32,
        last_sr: u32,
        delay_since_last_sr: u32,
    ) -> ReceptionReport {
        let expected = self.expected();
        let expected_interval = expected as i64 - self.expected_prior as i64;
        let received_interval = self.received as i64 - self.received_prior as i64;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval - received_interval;
        let fraction_lost = if expected_interval <= 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        };
        // The field is a signed 24-bit count; clamp, then keep the two's complement bits.
        let lost = self.cumulative_lost().clamp(-0x80_0000, 0x7F_FFFF) as i32;
        ReceptionReport {
            ssrc,
            fraction_lost,
            total_lost: (lost as u32) & 0xFF_FFFF,
            last_sequence_number: self.extended_highest_seq() as u32,
            jitter: self.jitter(),
            last_sender_report: last_sr,
            delay: delay_since_last_sr,
        }
    }

    fn is_valid(&self) -> bool {
        self.started && self.probation == 0
    }
}

/// Writes a compound SR + SDES CNAME (RFC 3550 §6.1) into `buf`, replacing its contents.
#[allow(clippy::too_many_arguments)] // the SR's fields, which the caller owns
pub fn build_sender_report(
    buf: &mut Vec<u8>,
    ssrc: u32,
    ntp_time: u64,
    rtp_time: u32,
    packets: u32,
    octets: u32,
    report: Option<ReceptionReport>,
    cname: &str,
) -> Result<(), RtcpError> {
    let sr = SenderReport {
        ssrc,
        ntp_time,
        rtp_time,
        packet_count: packets,
        octet_count: octets,
        reports: report.into_iter().collect(),
        profile_extensions: Bytes::new(),
    };
    write_compound(buf, Box::new(sr), ssrc, cname)
}

/// Writes a compound RR + SDES CNAME into `buf`, replacing its contents; for when we have sent no RTP.
pub fn build_receiver_report(
    buf: &mut Vec<u8>,
    ssrc: u32,
    report: Option<ReceptionReport>,
    cname: &str,
) -> Result<(), RtcpError> {
    let rr = ReceiverReport {
        ssrc,
        reports: report.into_iter().collect(),
        profile_extensions: Bytes::new(),
    };
    write_compound(buf, Box::new(rr), ssrc, cname)
}

fn write_compound(
    buf: &mut Vec<u8>,
    first: Box<dyn Packet + Send + Sync>,
    ssrc: u32,
    cname: &str,
) -> Result<(), RtcpError> {
    buf.clear();
    let sdes = SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: ssrc,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: Bytes::copy_from_slice(cname.as_bytes()),
            }],
        }],
    };
    let bytes = marshal(&[first, Box::new(sdes)])?;
    buf.extend_from_slice(&bytes);
    Ok(())
}

/// One reception report block from the peer, about a stream we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerReport {
    /// The SSRC the report is about (ours).
    pub ssrc: u32,
    /// Fraction lost since the peer's previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, as the raw 24-bit field.
    pub total_lost: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of our last SR the peer received.
    pub last_sr: u32,
    /// Delay since that SR at the peer, in 1/65536 s.
    pub delay: u32,
}

impl From<&ReceptionReport> for PeerReport {
    fn from(r: &ReceptionReport) -> Self {
        PeerReport {
            ssrc: r.ssrc,
            fraction_lost: r.fraction_lost,
            total_lost: r.total_lost,
            jitter: r.jitter,
            last_sr: r.last_sender_report,
            delay: r.delay,
        }
    }
}

/// What a compound RTCP packet from the peer told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedRtcp {
    /// NTP time of the peer's SR, kept to fill LSR in our next report.
    pub sender_ntp: Option<u64>,
    /// Report blocks from SRs and RRs.
    pub reports: Vec<PeerReport>,
    /// Whether the peer said BYE.
    pub bye: bool,
}

/// Parses a compound RTCP datagram; SDES, APP and feedback packets are skipped.
pub fn parse_compound(buf: &[u8]) -> Result<ParsedRtcp, RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut parsed = ParsedRtcp::default();
    let mut rest = buf;
    while !rest.is_empty() {
        // Framing is checked here so that only the SR, RR and BYE decoders of
        // the `rtcp` crate ever see peer bytes, each bounded to its own packet.
        if rest.len() < 4 {
            return Err(RtcpError::Truncated);
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize + 1) * 4;
        if len > rest.len() {
            return Err(RtcpError::Truncated);
        }
        let (mut packet, tail) = rest.split_at(len);
        rest = tail;
        if !matches!(packet[1], PT_SR | PT_RR | PT_BYE) {
            continue;
        }
        for p in unmarshal(&mut packet)? {
            let any = p.as_any();
            if let Some(sr) = any.downcast_ref::<SenderReport>() {
                parsed.sender_ntp = Some(sr.ntp_time);
                parsed
                    .reports
                    .extend(sr.reports.iter().map(PeerReport::from));
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                parsed
                    .reports
                    .extend(rr.reports.iter().map(PeerReport::from));
            } else if any.downcast_ref::<Goodbye>().is_some() {
                parsed.bye = true;
            }
        }
    }
    Ok(parsed)
}

/// The 64-bit NTP timestamp (RFC 5905 fixed point) for a time since the Unix epoch.
pub fn ntp_now_from_unix(unix: Duration) -> u64 {
    // Seconds wrap into the next NTP era in 2036, as the 32-bit field does.
    let secs = (unix.as_secs() + NTP_UNIX_OFFSET) & 0xFFFF_FFFF;
    let frac = ((unix.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp, as carried in LSR and compared for round-trip time.
pub fn ntp_to_lsr(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(stats: &mut ReceptionStats, seqs: impl IntoIterator<Item = u16>) {
        for s in seqs {
            let ts = (s as u32).wrapping_mul(160);
            stats.on_rtp(s, ts, ts);
        }
    }

    #[test]
    fn empty_stats_report_zero() {
        let mut s = ReceptionStats::new();
        assert_eq!(s.expected(), 0);
        assert_eq!(s.packets_received(), 0);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.jitter(), 0);
        let r = s.report_block(9, 0, 0);
        assert_eq!(
            (
                r.ssrc,
                r.fraction_lost,
                r.total_lost,
                r.last_sequence_number
            ),
            (9, 0, 0, 0)
        );
    }

    #[test]
    fn probation_then_counting() {
        let mut s = ReceptionStats::new();
        s.on_rtp(100, 0, 0);
        assert_eq!(
            (s.packets_received(), s.expected()),
            (0, 0),
            "first packet on probation"
        );
        feed(&mut s, 101..=110);
        assert_eq!(s.packets_received(), 10);
        assert_eq!(s.expected(), 10);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.extended_highest_seq(), 110);
    }

    #[test]
    fn probation_at_seq_zero_does_not_expect_65536() {
        let mut s = ReceptionStats::new();
        s.on_rtp(0, 0, 0);
        assert_eq!(s.expected(), 0);
        s.on_rtp(1, 160, 160);
        assert_eq!((s.expected(), s.packets_received()), (1, 1));
    }

    #[test]
    fn probation_restarts_on_gap() {
        let mut s = ReceptionStats::new();
        feed(&mut s, [10, 20, 30]);
        assert_eq!(s.packets_received(), 0);
        feed(&mut s, [31]);
        assert_eq!((s.packets_received(), s.expected()), (1, 1));
    }

    #[test]
    fn loss_and_fraction_lost() {
        let mut s = ReceptionStats::new();
        // Every 4th packet lost. Packet 1 is spent on probation, so counting
        // starts at 2: expected 2..=99 = 98, of which 24 are multiples of 4.
        feed(&mut s, (1..=99).filter(|n| n % 4 != 0));
        assert_eq!(s.expected(), 98);
        assert_eq!(s.packets_received(), 74);
        assert_eq!(s.cumulative_lost(), 24);
        let r = s.report_block(1, 0, 0);
        assert_eq!(r.fraction_lost, (24 * 256 / 98) as u8);
        assert_eq!(r.total_lost, 24);
        assert_eq!(r.last_sequence_number, 99);
        // Next interval without loss: fraction back to 0, total unchanged.
        feed(&mut s, 100..=150);
        let r = s.report_block(1, 0x1234_5678, 65536);
        assert_eq!(r.fraction_lost, 0);
        assert_eq!(r.total_lost, 24);
        assert_eq!(r.last_sequence_number, 150);
        assert_eq!((r.last_sender_report, r.delay), (0x1234_5678, 65536));
        // Interval with half lost.
        feed(&mut s, (151..=250).filter(|n| n % 2 == 0));
        let r = s.report_block(1, 0, 0);
        assert_eq!(r.fraction_lost, 128);
        assert_eq!(r.total_lost, 74);
        // Nothing new: no interval, fraction 0.
        let r = s.report_block(1, 0, 0);
        assert_eq!(r.fraction_lost, 0);
    }

    #[test]
    fn wraparound_counts_cycles() {
        let mut s = ReceptionStats::new();
        let seqs: Vec<u16> = (0..200u32).map(|i| (65_500 + i) as u16).collect();
        feed(&mut s, seqs);
        assert_eq!(s.packets_received(), 199);
        assert_eq!(s.expected(), 199);
        assert_eq!(s.extended_highest_seq(), 65_536 + 163);
        let r = s.report_block(1, 0, 0);
        assert_eq!(r.last_sequence_number, 65_536 + 163);
        assert_eq!(r.total_lost, 0);
    }

    #[test]
    fn duplicates_make_loss_negative() {
        let mut s = ReceptionStats::new();
        feed(&mut s, 1..=10);
        feed(&mut s, [10, 10, 9]);
        assert_eq!(s.cumulative_lost(), -3);
        let r = s.report_block(1, 0, 0);
        assert_eq!(r.total_lost, 0xFF_FFFD, "24-bit two's complement");
        assert_eq!(r.fraction_lost, 0);
    }

    #[test]
    fn reordered_packet_does_not_move_highest() {
        let mut s = ReceptionStats::new();
        feed(&mut s, [1, 2, 3, 5, 4, 6]);
        assert_eq!(s.extended_highest_seq(), 6);
        assert_eq!(s.cumulative_lost(), 0);
    }

    #[test]
    fn big_jump_needs_confirmation_then_resyncs() {
        let mut s = ReceptionStats::new();
        feed(&mut s, 1..=50);
        assert_eq!(s.packets_received(), 49);
        // One stray packet far away is ignored.
        feed(&mut s, [40_000]);
        assert_eq!(s.packets_received(), 49);
        feed(&mut s, [51]);
        assert_eq!(s.packets_received(), 50);
        // Two in a row: the sender restarted; statistics start again.
        feed(&mut s, [20_000, 20_001, 20_002]);
        assert_eq!(s.packets_received(), 2);
        assert_eq!(s.expected(), 2);
        assert_eq!(s.cumulative_lost(), 0);
    }

    #[test]
    fn moderate_gap_counts_as_loss() {
        let mut s = ReceptionStats::new();
        feed(&mut s, 1..=10);
        feed(&mut s, [2_000]);
        assert_eq!(s.cumulative_lost(), 1_989);
    }

    #[test]
    fn jitter_zero_for_perfect_timing() {
        let mut s = ReceptionStats::new();
        for i in 0..500u32 {
            s.on_rtp(i as u16, 1_000 + i * 160, 77_777 + i * 160);
        }
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn jitter_converges_to_mean_deviation() {
        // Arrivals alternate 0 and +80 units (10 ms) late: |D| = 80 every packet,
        // so the estimate converges to 80.
        let mut s = ReceptionStats::new();
        for i in 0..2000u32 {
            let ts = (u32::MAX - 100_000).wrapping_add(i * 160); // crosses the wrap
            let late = if i % 2 == 0 { 0 } else { 80 };
            s.on_rtp(i as u16, ts, ts.wrapping_add(5_000 + late));
        }
        assert!((78..=80).contains(&s.jitter()), "{}", s.jitter());
        assert!((s.jitter_ms(8000) - 10.0).abs() < 0.3);
        assert_eq!(s.jitter_ms(0), 0.0);
        let r = s.report_block(1, 0, 0);
        assert_eq!(r.jitter, s.jitter());
    }

    #[test]
    fn jitter_survives_extreme_values() {
        let mut s = ReceptionStats::new();
        for i in 0..100u32 {
            let arrival = if i % 2 == 0 { 0 } else { 0x8000_0000 };
            s.on_rtp(i as u16, 0, arrival);
        }
        assert!(s.jitter() > 0);
    }

    #[test]
    fn sender_report_round_trip() {
        let mut stats = ReceptionStats::new();
        feed(&mut stats, (1..=100).filter(|n| n % 10 != 0));
        let block = stats.report_block(0xAAAA, 0x1111_2222, 3 * 65536);
        let mut buf = Vec::new();
        let ntp = ntp_now_from_unix(Duration::from_secs(1_700_000_000));
        build_sender_report(
            &mut buf,
            0x5555,
            ntp,
            160_000,
            1000,
            160_000,
            Some(block),
            "hotline@10.0.0.1",
        )
        .unwrap();
        assert_eq!(buf[0] >> 6, 2);
        assert_eq!(buf[1], PT_SR);
        assert_eq!(buf.len() % 4, 0);
        let parsed = parse_compound(&buf).unwrap();
        assert_eq!(parsed.sender_ntp, Some(ntp));
        assert!(!parsed.bye);
        assert_eq!(
            parsed.reports,
            [PeerReport {
                ssrc: 0xAAAA,
                fraction_lost: (9 * 256 / 98) as u8,
                total_lost: 9,
                jitter: 0,
                last_sr: 0x1111_2222,
                delay: 3 * 65536,
            }]
        );
        // SDES follows the SR and carries the CNAME.
        let sr_len = (u16::from_be_bytes([buf[2], buf[3]]) as usize + 1) * 4;
        assert_eq!(buf[sr_len + 1], 202);
        let cname_at = sr_len + 8;
        assert_eq!(buf[cname_at], 1, "CNAME item");
        assert_eq!(&buf[cname_at + 2..cname_at + 2 + 16], b"hotline@10.0.0.1");
    }

    #[test]
    fn receiver_report_round_trip_and_buffer_reuse() {
        let mut buf = vec![0xEE; 500];
        build_receiver_report(&mut buf, 7, None, "x").unwrap();
        assert_eq!(buf[1], PT_RR);
        assert_eq!(buf[0] & 0x1F, 0, "no report blocks");
        let parsed = parse_compound(&buf).unwrap();
        assert_eq!(parsed, ParsedRtcp::default());

        let block = ReceptionReport {
            ssrc: 1,
            fraction_lost: 3,
            total_lost: 4,
            last_sequence_number: 5,
            jitter: 6,
            last_sender_report: 7,
            delay: 8,
        };
        build_receiver_report(&mut buf, 7, Some(block), "x").unwrap();
        let parsed = parse_compound(&buf).unwrap();
        assert_eq!(parsed.sender_ntp, None);
        assert_eq!(
            parsed.reports,
            [PeerReport {
                ssrc: 1,
                fraction_lost: 3,
                total_lost: 4,
                jitter: 6,
                last_sr: 7,
                delay: 8
            }]
        );
    }

    #[test]
    fn overlong_cname_is_an_error() {
        let mut buf = Vec::new();
        let long = "x".repeat(300);
        assert!(matches!(
            build_receiver_report(&mut buf, 7, None, &long),
            Err(RtcpError::Codec(_))
        ));
        assert!(build_sender_report(&mut buf, 7, 0, 0, 0, 0, None, &long).is_err());
    }

    #[test]
    fn parses_bye_and_skips_other_packets() {
        let mut buf = Vec::new();
        build_receiver_report(&mut buf, 7, None, "peer").unwrap();
        // APP packet (204), then a PLI feedback packet (206), then BYE.
        buf.extend_from_slice(&[0x80, 204, 0, 2, 0, 0, 0, 7, b'n', b'a', b'm', b'e']);
        buf.extend_from_slice(&[0x81, 206, 0, 2, 0, 0, 0, 7, 0, 0, 0, 9]);
        buf.extend_from_slice(&[0x81, PT_BYE, 0, 1, 0, 0, 0, 7]);
        let parsed = parse_compound(&buf).unwrap();
        assert!(parsed.bye);
        assert!(parsed.reports.is_empty());
    }

    #[test]
    fn parses_foreign_compound() {
        // RR with one block + SDES + BYE, as in the rtcp crate's own test vector.
        let buf: &[u8] = &[
            0x81, 0xc9, 0x0, 0x7, 0x90, 0x2f, 0x9e, 0x2e, 0xbc, 0x5e, 0x9a, 0x40, 0x0, 0x0, 0x0,
            0x0, 0x0, 0x0, 0x46, 0xe1, 0x0, 0x0, 0x1, 0x11, 0x9, 0xf3, 0x64, 0x32, 0x0, 0x2, 0x4a,
            0x79, 0x81, 0xca, 0x0, 0x2, 0x90, 0x2f, 0x9e, 0x2e, 0x1, 0x1, b'a', 0x0, 0x81, 0xcb,
            0x0, 0x1, 0x90, 0x2f, 0x9e, 0x2e,
        ];
        let parsed = parse_compound(buf).unwrap();
        assert!(parsed.bye);
        assert_eq!(parsed.reports.len(), 1);
        let r = parsed.reports[0];
        assert_eq!(
            (r.ssrc, r.jitter, r.last_sr, r.delay),
            (0xbc5e9a40, 273, 0x9f36432, 150137)
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(matches!(parse_compound(&[]), Err(RtcpError::Empty)));
        assert!(matches!(
            parse_compound(&[0x80, 200]),
            Err(RtcpError::Truncated)
        ));
        assert!(matches!(
            parse_compound(&[0x40, 200, 0, 0]),
            Err(RtcpError::BadVersion(1))
        ));
        // Length says 100 words, 4 bytes present.
        assert!(matches!(
            parse_compound(&[0x81, 203, 0, 100]),
            Err(RtcpError::Truncated)
        ));
        // SR whose length is too short for the sender info.
        assert!(parse_compound(&[0x80, 200, 0, 1, 0, 0, 0, 1]).is_err());
        // RR claiming a report block it does not have.
        assert!(parse_compound(&[0x81, 201, 0, 1, 0, 0, 0, 1]).is_err());
        // BYE claiming more sources than fit.
        assert!(parse_compound(&[0x83, 203, 0, 1, 0, 0, 0, 1]).is_err());
        // Valid RR followed by trailing garbage.
        let mut buf = Vec::new();
        build_receiver_report(&mut buf, 7, None, "x").unwrap();
        buf.extend_from_slice(&[0x80, 201]);
        assert!(parse_compound(&buf).is_err());
    }

    #[test]
    fn parse_never_panics_on_noise() {
        let mut x: u64 = 0x0123_4567_89AB_CDEF;
        let mut buf = [0u8; 96];
        let mut valid = Vec::new();
        build_sender_report(
            &mut valid,
            1,
            2,
            3,
            4,
            5,
            Some(ReceptionReport::default()),
            "c",
        )
        .unwrap();
        for round in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 97) as usize;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (x >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
            }
            if round % 3 == 0 {
                // Start from a valid compound and flip a few bytes.
                buf[..valid.len()].copy_from_slice(&valid);
                for k in 0..3 {
                    let at = ((x >> (k * 16)) as usize) % valid.len();
                    buf[at] ^= (x >> (k * 8 + 3)) as u8;
                }
            } else {
                buf[0] = (buf[0] & 0x3F) | 0x80;
                buf[1] = 200 + (buf[1] % 5);
            }
            let _ = parse_compound(&buf[..len]);
        }
    }

    #[test]
    fn ntp_conversion() {
        assert_eq!(ntp_now_from_unix(Duration::ZERO), NTP_UNIX_OFFSET << 32);
        let t = ntp_now_from_unix(Duration::new(1, 500_000_000));
        assert_eq!(t >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(t & 0xFFFF_FFFF, 0x8000_0000);
        let t = ntp_now_from_unix(Duration::new(0, 999_999_999));
        assert!(t & 0xFFFF_FFFF < 0xFFFF_FFFF);
        // After 2036-02-07 the seconds wrap into NTP era 1.
        let era1 = Duration::from_secs((1u64 << 32) - NTP_UNIX_OFFSET + 5);
        assert_eq!(ntp_now_from_unix(era1) >> 32, 5);
        assert_eq!(ntp_to_lsr(0x1122_3344_5566_7788), 0x3344_5566);
    }
}
