//! DTMF key presses from callers, however the network sends them.
//!
//! Most trunks and phones send RFC 4733 telephone-events in RTP: a press is a
//! run of packets sharing one RTP timestamp, with the end packet repeated three
//! times. [`DtmfDetector`] turns that run into exactly one digit. Some SIP
//! endpoints send SIP INFO instead; [`parse_info_body`] reads those bodies.
//! [`goertzel_power`] measures a single frequency in PCM, for tests that check
//! in-band tones. All of it is sans-IO and allocation-free; the IVR above only
//! ever sees `char` digits.

use thiserror::Error;

/// Length of the RFC 4733 telephone-event payload.
pub const EVENT_LEN: usize = 4;

/// Why a telephone-event payload was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DtmfError {
    /// The payload is shorter than the 4-byte event block.
    #[error("telephone-event payload too short: {0} bytes")]
    TooShort(usize),
}

/// One RFC 4733 telephone-event block (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9, 10 '*', 11 '#', 12-15 'A'-'D'.
    pub event: u8,
    /// E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4 bytes of a telephone-event payload; extra blocks are ignored.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::TooShort(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            // Bit 0x40 is reserved (R) and ignored, as §2.3 asks of receivers.
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }
}

/// Maps a key to its DTMF event code, the inverse of [`event_to_digit`].
pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        _ => None,
    }
}

/// Maps a DTMF event code to its key: 0-9, `*`, `#`, `A`-`D`; other events are not keys.
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// Event timestamps remembered, so late or retransmitted packets of recent
/// presses are not reported again after a newer press has started.
const RECENT: usize = 8;

/// A key press being sent as telephone-events, one packet per 20 ms tick:
/// growing-duration event packets for 100 ms, then the end packet three
/// times (RFC 4733 §2.5.1.4), all sharing the press's start timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPress {
    event: u8,
    /// Packets sent so far.
    sent: u32,
}

/// Ticks a sent key press lasts (100 ms).
const PRESS_TICKS: u32 = 5;
const END_COPIES: u32 = 3;
/// Samples one tick covers at 8 kHz.
const TICK_SAMPLES: u32 = 160;

/// One packet of a [`KeyPress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PressPacket {
    pub payload: [u8; 4],
    /// The press's first packet (RTP marker bit).
    pub first: bool,
    /// The press's last packet: afterwards the audio clock moves on by
    /// [`KeyPress::SAMPLES`].
    pub last: bool,
}

impl KeyPress {
    /// Samples of audio clock a whole press takes.
    pub const SAMPLES: u32 = (PRESS_TICKS + END_COPIES) * TICK_SAMPLES;

    /// A press of `digit`, or `None` for a key RFC 4733 has no event for.
    pub fn new(digit: char) -> Option<KeyPress> {
        digit_to_event(digit).map(|event| KeyPress { event, sent: 0 })
    }

    /// A press of an RFC 4733 event code.
    pub fn from_event(event: u8) -> KeyPress {
        KeyPress { event, sent: 0 }
    }

    /// The next packet (the press is over once one says `last`).
    pub fn next_packet(&mut self) -> PressPacket {
        let end = self.sent >= PRESS_TICKS;
        let duration = (self.sent.min(PRESS_TICKS - 1) + 1) * TICK_SAMPLES;
        let flags = if end { 0x80 } else { 0 } | 10;
        let [d0, d1] = (duration as u16).to_be_bytes();
        let first = self.sent == 0;
        self.sent += 1;
        PressPacket {
            payload: [self.event, flags, d0, d1],
            first,
            last: self.sent >= PRESS_TICKS + END_COPIES,
        }
    }
}

/// Turns a stream of telephone-event packets into one digit per key press.
///
/// A press is identified by its RTP timestamp (RFC 4733 §2.5.1.2: all packets
/// of an event share it). The digit is reported on the first packet seen of a
/// press, for the lowest latency and so a press whose end packets are all lost
/// still counts; every later packet of that press is ignored.
#[derive(Debug, Clone, Default)]
pub struct DtmfDetector {
    recent: [Option<u32>; RECENT],
    next: usize,
    /// The newest press: its timestamp, event code and whether its end was seen,
    /// to recognise an over-long event continuing under a new timestamp.
    current: Option<(u32, u8, bool)>,
}

impl DtmfDetector {
    /// A detector that has seen no events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event packet; returns the key if this packet starts a new press.
    pub fn on_event(&mut self, rtp_timestamp: u32, ev: &TelephoneEvent) -> Option<char> {
        let digit = event_to_digit(ev.event)?;
        if self.recent.contains(&Some(rtp_timestamp)) {
            if let Some((ts, code, ended)) = &mut self.current
                && *ts == rtp_timestamp
                && *code == ev.event
            {
                *ended |= ev.end;
            }
            return None;
        }
        // An event longer than the 16-bit duration field goes on as a new
        // segment whose timestamp is the old one plus 0xFFFF (§2.5.1.3):
        // same key held, not a new press.
        let continues = matches!(self.current, Some((ts, code, false))
            if code == ev.event && rtp_timestamp == ts.wrapping_add(0xFFFF));
        self.recent[self.next] = Some(rtp_timestamp);
        self.next = (self.next + 1) % RECENT;
        self.current = Some((rtp_timestamp, ev.event, ev.end));
        if continues { None } else { Some(digit) }
    }

    /// Parses a telephone-event payload and feeds it; malformed payloads yield `None`.
    pub fn on_rtp(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = TelephoneEvent::parse(payload).ok()?;
        self.on_event(rtp_timestamp, &ev)
    }

    /// Forgets all presses, e.g. when the sender's SSRC changes.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Reads the key from a SIP INFO body: `application/dtmf-relay` (`Signal=5`)
/// or `application/dtmf` (a bare `5`); other types and garbage yield `None`.
pub fn parse_info_body(content_type: &str, body: &[u8]) -> Option<char> {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    // A body that is not UTF-8 cannot hold a key.
    let text = std::str::from_utf8(body).ok()?;
    if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            if key.trim().eq_ignore_ascii_case("signal") {
                parse_key(value)
            } else {
                None
            }
        })
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        parse_key(text)
    } else {
        None
    }
}

/// A key written as itself (`5`, `*`, `#`, `a`..`d`) or as its event code (`10` = `*`).
fn parse_key(value: &str) -> Option<char> {
    let value = value.trim();
    let mut chars = value.chars();
    let first = chars.next()?;
    if chars.next().is_none() {
        return match first.to_ascii_uppercase() {
            c @ ('0'..='9' | '*' | '#' | 'A'..='D') => Some(c),
            _ => None,
        };
    }
    // Multi-character values: only event codes, which some gateways send.
    value.parse::<u8>().ok().and_then(event_to_digit)
}

/// Goertzel filter: the power of `freq_hz` in `samples` (unnormalised |X(k)|²;
/// compare values computed over blocks of the same length).
pub fn goertzel_power(samples: &[i16], freq_hz: f32, sample_rate: f32) -> f32 {
    if samples.is_empty() || sample_rate <= 0.0 {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * std::f32::consts::PI * freq_hz / sample_rate).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = x as f32 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    fn bytes(e: &TelephoneEvent) -> [u8; 4] {
        let d = e.duration.to_be_bytes();
        [e.event, (e.end as u8) << 7 | e.volume, d[0], d[1]]
    }

    #[test]
    fn parse_event_fields() {
        let e = TelephoneEvent::parse(&[5, 0x8A, 0x03, 0x20]).unwrap();
        assert_eq!(e, ev(5, true, 800));
        let e = TelephoneEvent::parse(&[11, 0x3F, 0, 0]).unwrap();
        assert_eq!((e.event, e.end, e.volume, e.duration), (11, false, 63, 0));
        // Reserved bit is ignored.
        let e = TelephoneEvent::parse(&[1, 0x40 | 7, 0, 160]).unwrap();
        assert_eq!((e.end, e.volume), (false, 7));
        // Extra bytes (a second block, RFC 4733 §2.5.1.5) are ignored.
        let e = TelephoneEvent::parse(&[1, 0, 0, 160, 2, 0, 0, 0]).unwrap();
        assert_eq!(e.event, 1);
    }

    #[test]
    fn parse_rejects_short() {
        for n in 0..4 {
            assert_eq!(
                TelephoneEvent::parse(&[0u8; 4][..n]),
                Err(DtmfError::TooShort(n))
            );
        }
    }

    #[test]
    fn event_codes_map_to_keys() {
        let keys: String = (0..=15).filter_map(event_to_digit).collect();
        assert_eq!(keys, "0123456789*#ABCD");
        for e in 16..=255 {
            assert_eq!(event_to_digit(e), None);
        }
    }

    #[test]
    fn one_report_per_press_with_triple_end() {
        let mut d = DtmfDetector::new();
        let ts = 12_000;
        let mut got = Vec::new();
        for dur in [160, 320, 480, 640] {
            got.extend(d.on_event(ts, &ev(5, false, dur)));
        }
        for _ in 0..3 {
            got.extend(d.on_event(ts, &ev(5, true, 800)));
        }
        assert_eq!(got, ['5']);
    }

    #[test]
    fn press_reported_even_if_all_end_packets_lost() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.on_event(1000, &ev(1, false, 160)), Some('1'));
        assert_eq!(d.on_event(1000, &ev(1, false, 320)), None);
        // Next press, same key, new timestamp: a new press.
        assert_eq!(d.on_event(3000, &ev(1, false, 160)), Some('1'));
        assert_eq!(d.on_event(3000, &ev(1, true, 480)), None);
    }

    #[test]
    fn press_reported_when_only_end_packets_arrive() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.on_event(500, &ev(11, true, 800)), Some('#'));
        assert_eq!(d.on_event(500, &ev(11, true, 800)), None);
        assert_eq!(d.on_event(500, &ev(11, true, 800)), None);
    }

    #[test]
    fn late_packets_of_an_older_press_are_ignored() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.on_event(1000, &ev(1, false, 160)), Some('1'));
        assert_eq!(d.on_event(2000, &ev(2, false, 160)), Some('2'));
        // Reordered end packet of the first press arrives after the second started.
        assert_eq!(d.on_event(1000, &ev(1, true, 800)), None);
        assert_eq!(d.on_event(2000, &ev(2, true, 800)), None);
    }

    #[test]
    fn digit_sequence_with_timestamp_wraparound() {
        let mut d = DtmfDetector::new();
        let mut got = String::new();
        let mut ts = u32::MAX - 2000;
        for key in [1u8, 2, 3, 10, 11, 0, 15] {
            for (dur, end) in [(160, false), (320, false), (400, true), (400, true)] {
                got.extend(d.on_event(ts, &ev(key, end, dur)));
            }
            ts = ts.wrapping_add(1600);
        }
        assert_eq!(got, "123*#0D");
    }

    #[test]
    fn long_event_continuation_is_not_a_new_press() {
        let mut d = DtmfDetector::new();
        let ts = u32::MAX - 10;
        assert_eq!(d.on_event(ts, &ev(7, false, 0xFFFF)), Some('7'));
        // Segment continues under ts + 0xFFFF, key still held.
        assert_eq!(
            d.on_event(ts.wrapping_add(0xFFFF), &ev(7, false, 160)),
            None
        );
        assert_eq!(d.on_event(ts.wrapping_add(0xFFFF), &ev(7, true, 800)), None);
        // But after the end, the same offset is a new press.
        let ts2 = ts.wrapping_add(0xFFFF);
        assert_eq!(
            d.on_event(ts2.wrapping_add(0xFFFF), &ev(7, false, 160)),
            Some('7')
        );
    }

    #[test]
    fn non_key_events_are_ignored() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.on_event(100, &ev(16, false, 160)), None); // flash
        assert_eq!(d.on_event(100, &ev(255, true, 160)), None);
        assert_eq!(d.on_event(100, &ev(4, false, 160)), Some('4'));
    }

    #[test]
    fn on_rtp_parses_and_ignores_malformed() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.on_rtp(10, &[]), None);
        assert_eq!(d.on_rtp(10, &[9, 0x80]), None);
        assert_eq!(d.on_rtp(10, &bytes(&ev(9, false, 160))), Some('9'));
        assert_eq!(d.on_rtp(10, &bytes(&ev(9, true, 800))), None);
        d.reset();
        assert_eq!(d.on_rtp(10, &bytes(&ev(9, true, 800))), Some('9'));
    }

    #[test]
    fn many_presses_evict_old_timestamps() {
        let mut d = DtmfDetector::new();
        for i in 0..100u32 {
            assert_eq!(
                d.on_event(i * 1000, &ev((i % 10) as u8, false, 160)),
                event_to_digit((i % 10) as u8)
            );
            assert_eq!(d.on_event(i * 1000, &ev((i % 10) as u8, true, 800)), None);
        }
    }

    #[test]
    fn info_dtmf_relay() {
        let ct = "application/dtmf-relay";
        assert_eq!(
            parse_info_body(ct, b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            parse_info_body(ct, b"Signal= 5\r\nDuration= 160"),
            Some('5')
        );
        assert_eq!(parse_info_body(ct, b"Duration=160\nsignal=*\n"), Some('*'));
        assert_eq!(parse_info_body(ct, b"SIGNAL = #"), Some('#'));
        assert_eq!(parse_info_body(ct, b"Signal=10\r\n"), Some('*'));
        assert_eq!(parse_info_body(ct, b"Signal=11\r\n"), Some('#'));
        assert_eq!(parse_info_body(ct, b"Signal=12"), Some('A'));
        assert_eq!(parse_info_body(ct, b"Signal=d"), Some('D'));
        assert_eq!(
            parse_info_body("Application/DTMF-Relay; charset=utf-8", b"Signal=0"),
            Some('0')
        );
        assert_eq!(parse_info_body(ct, b"Signal=\r\n"), None);
        assert_eq!(parse_info_body(ct, b"Signal=16"), None);
        assert_eq!(parse_info_body(ct, b"Signal=55"), None);
        assert_eq!(parse_info_body(ct, b"Signal=E"), None);
        assert_eq!(parse_info_body(ct, b"Duration=160"), None);
        assert_eq!(parse_info_body(ct, b""), None);
        assert_eq!(parse_info_body(ct, b"Signal"), None);
        assert_eq!(parse_info_body(ct, b"Signal=\xFF"), None);
    }

    #[test]
    fn info_dtmf() {
        assert_eq!(parse_info_body("application/dtmf", b"5"), Some('5'));
        assert_eq!(parse_info_body("application/dtmf", b" *\r\n"), Some('*'));
        assert_eq!(parse_info_body("APPLICATION/DTMF ;x=y", b"#\n"), Some('#'));
        assert_eq!(parse_info_body("application/dtmf", b"11"), Some('#'));
        assert_eq!(parse_info_body("application/dtmf", b""), None);
        assert_eq!(parse_info_body("application/dtmf", b"12 3"), None);
        assert_eq!(parse_info_body("application/dtmf", b"x"), None);
    }

    #[test]
    fn info_other_types_are_ignored() {
        assert_eq!(parse_info_body("application/sdp", b"5"), None);
        assert_eq!(parse_info_body("text/plain", b"Signal=5"), None);
        assert_eq!(parse_info_body("", b"5"), None);
        assert_eq!(
            parse_info_body("application/dtmf-relayx", b"Signal=5"),
            None
        );
    }

    fn sine(freq: f32, n: usize, amp: f32) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn goertzel_picks_the_right_tone() {
        let tone = sine(1000.0, 800, 10_000.0);
        let at_1k = goertzel_power(&tone, 1000.0, 8000.0);
        let at_2k = goertzel_power(&tone, 2000.0, 8000.0);
        assert!(at_1k > 1000.0 * at_2k.max(1.0), "{at_1k} vs {at_2k}");
        // Pure sine: |X(k)|² = (A·N/2)².
        let expect = (10_000.0f32 * 800.0 / 2.0).powi(2);
        assert!((at_1k / expect - 1.0).abs() < 0.01, "{at_1k} vs {expect}");

        let tone2 = sine(2000.0, 800, 10_000.0);
        assert!(
            goertzel_power(&tone2, 2000.0, 8000.0)
                > 1000.0 * goertzel_power(&tone2, 1000.0, 8000.0).max(1.0)
        );
        // A DTMF '5' (770 + 1336 Hz) shows both its tones and not a neighbour.
        let five: Vec<i16> = sine(770.0, 400, 8000.0)
            .iter()
            .zip(sine(1336.0, 400, 8000.0))
            .map(|(a, b)| a + b)
            .collect();
        let p770 = goertzel_power(&five, 770.0, 8000.0);
        let p1336 = goertzel_power(&five, 1336.0, 8000.0);
        let p941 = goertzel_power(&five, 941.0, 8000.0);
        assert!(p770 > 50.0 * p941 && p1336 > 50.0 * p941);
    }

    #[test]
    fn goertzel_edge_cases() {
        assert_eq!(goertzel_power(&[], 1000.0, 8000.0), 0.0);
        assert_eq!(goertzel_power(&[1, 2, 3], 1000.0, 0.0), 0.0);
        assert!(goertzel_power(&[0; 160], 1000.0, 8000.0).abs() < 1e-6);
        let loud = [i16::MAX; 160];
        assert!(goertzel_power(&loud, 0.0, 8000.0).is_finite());
    }
}
