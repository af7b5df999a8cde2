//! A fixed-depth playout buffer for one incoming 20 ms G.711 stream.
//!
//! Packets arrive unevenly, out of order, twice, or not at all; the media
//! worker plays one frame per 20 ms tick. [`JitterBuffer`] sits between them:
//! [`JitterBuffer::push`] files a packet by RTP sequence number, and
//! [`JitterBuffer::pop`] hands out the next frame, says it is missing (the
//! caller conceals the gap), or says it is still filling. G.711 frames are all
//! 20 ms, so sequence numbers alone drive playout; the buffer does not adapt
//! its depth. All storage is allocated in [`JitterBuffer::new`]; push and pop
//! only copy into and out of it. The frames come from [`super::rtp::parse`].

/// A sequence jump larger than this (either way) means the sender restarted.
const MAX_JUMP: i16 = 100;

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Filed for playout.
    Stored,
    /// Dropped: its playout slot has already passed.
    Late,
    /// Dropped: the same sequence number is already held.
    Duplicate,
    /// Dropped: the payload is larger than the buffer's slots.
    TooLarge,
    /// The sequence number jumped, so the buffer was emptied and restarted at this packet.
    Reset,
}

/// What to play on this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// The next frame's payload.
    Frame(&'a [u8]),
    /// The next frame was lost or is late; conceal it.
    Missing,
    /// Still filling to the target depth; play silence.
    Buffering,
}

/// A sequence-number-keyed ring of preallocated frame slots.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    depth: usize,
    /// Furthest a packet may be ahead of the playout point before the oldest
    /// frames are dropped; bounds the added latency.
    window: u16,
    /// Slot count minus one; the slot count is a power of two so that
    /// `seq & mask` stays consistent across the u16 wrap.
    mask: usize,
    max_payload: usize,
    data: Box<[u8]>,
    lens: Box<[u16]>,
    /// Sequence number held by each slot, if any.
    held: Box<[Option<u16>]>,
    count: usize,
    /// Sequence number of the next frame to play; `None` until the first packet.
    next: Option<u16>,
    /// Whether anything was played since the last reset; until then, packets
    /// older than `next` may still move the playout point back.
    played: bool,
    playing: bool,
    late: u64,
    duplicates: u64,
    missing: u64,
    dropped: u64,
}

impl JitterBuffer {
    /// A buffer that starts playing once `depth_frames` frames are queued
    /// (3 = 60 ms) and holds payloads of up to `max_payload` bytes.
    pub fn new(depth_frames: usize, max_payload: usize) -> Self {
        let depth = depth_frames.clamp(1, 1000);
        // Room for twice the depth plus a little, so a burst after a stall is kept.
        let window = 2 * depth + 2;
        let slots = window.next_power_of_two();
        let max_payload = max_payload.min(u16::MAX as usize);
        Self {
            depth,
            window: window as u16,
            mask: slots - 1,
            max_payload,
            data: vec![0; slots * max_payload].into_boxed_slice(),
            lens: vec![0; slots].into_boxed_slice(),
            held: vec![None; slots].into_boxed_slice(),
            count: 0,
            next: None,
            played: false,
            playing: false,
            late: 0,
            duplicates: 0,
            missing: 0,
            dropped: 0,
        }
    }

    /// Files one received packet. The timestamp is not needed for playout:
    /// every G.711 frame is 20 ms, so the sequence number orders them.
    pub fn push(&mut self, seq: u16, _timestamp: u32, payload: &[u8]) -> PushOutcome {
        if payload.len() > self.max_payload {
            return PushOutcome::TooLarge;
        }
        let Some(next) = self.next else {
            self.next = Some(seq);
            self.store(seq, payload);
            return PushOutcome::Stored;
        };
        let delta = seq.wrapping_sub(next) as i16;
        if !(-MAX_JUMP..=MAX_JUMP).contains(&delta) {
            self.reset();
            self.next = Some(seq);
            self.store(seq, payload);
            return PushOutcome::Reset;
        }
        if delta < 0 {
            // Before anything is played, an early packet that arrived second
            // may still become the start, if the window has room for it.
            let span = self.highest().map_or(0, |h| h.wrapping_sub(seq));
            if self.played || span >= self.window {
                self.late += 1;
                return PushOutcome::Late;
            }
            self.next = Some(seq);
        } else if !self.playing && self.count == 0 {
            // Refilling after an underrun: start from whatever arrives, instead
            // of waiting on (and later conceding) frames that never came.
            self.next = Some(seq);
        } else if delta as u16 >= self.window {
            // Too far ahead: drop the oldest frames to bound latency.
            self.advance_to(seq.wrapping_sub(self.window - 1));
        }
        if self.held[self.slot(seq)] == Some(seq) {
            self.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        self.store(seq, payload);
        PushOutcome::Stored
    }

    /// The frame for this 20 ms tick; call exactly once per tick.
    pub fn pop(&mut self) -> Playout<'_> {
        let Some(next) = self.next else {
            return Playout::Buffering;
        };
        if !self.playing {
            if self.count < self.depth {
                return Playout::Buffering;
            }
            self.playing = true;
        }
        if self.count == 0 {
            // The whole buffer ran dry (a stall, or the sender paused): refill
            // to depth rather than conceal frame after frame.
            self.playing = false;
            return Playout::Buffering;
        }
        self.played = true;
        self.next = Some(next.wrapping_add(1));
        let slot = self.slot(next);
        if self.held[slot] != Some(next) {
            self.missing += 1;
            return Playout::Missing;
        }
        self.held[slot] = None;
        self.count -= 1;
        let start = slot * self.max_payload;
        Playout::Frame(&self.data[start..start + self.lens[slot] as usize])
    }

    /// Empties the buffer and forgets the stream position (e.g. on a new SSRC).
    pub fn reset(&mut self) {
        self.held.fill(None);
        self.count = 0;
        self.next = None;
        self.played = false;
        self.playing = false;
    }

    /// Frames currently held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no frames are held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The target depth in frames.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Packets dropped because their slot had passed.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Packets dropped as duplicates.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Ticks on which the expected frame was absent.
    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// Frames discarded unplayed because newer packets overran the buffer.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn slot(&self, seq: u16) -> usize {
        seq as usize & self.mask
    }

    fn store(&mut self, seq: u16, payload: &[u8]) {
        let slot = self.slot(seq);
        let start = slot * self.max_payload;
        self.data[start..start + payload.len()].copy_from_slice(payload);
        self.lens[slot] = payload.len() as u16;
        if self.held[slot].is_none() {
            self.count += 1;
        }
        self.held[slot] = Some(seq);
    }

    /// The highest sequence number held, relative to `next`.
    fn highest(&self) -> Option<u16> {
        let next = self.next?;
        (0..self.window)
            .rev()
            .map(|i| next.wrapping_add(i))
            .find(|&s| self.held[self.slot(s)] == Some(s))
    }

    /// Moves the playout point forward to `new_next`, discarding what it passes.
    fn advance_to(&mut self, new_next: u16) {
        let Some(mut s) = self.next else { return };
        // Bounded by the window: nothing is held further back than that.
        let steps = new_next.wrapping_sub(s).min(self.window);
        for _ in 0..steps {
            let slot = self.slot(s);
            if self.held[slot] == Some(s) {
                self.held[slot] = None;
                self.count -= 1;
                self.dropped += 1;
            }
            s = s.wrapping_add(1);
        }
        self.next = Some(new_next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u16) -> [u8; 4] {
        let b = seq.to_be_bytes();
        [b[0], b[1], 0xAB, 0xCD]
    }

    fn play(jb: &mut JitterBuffer) -> Option<Option<u16>> {
        match jb.pop() {
            Playout::Frame(p) => Some(Some(u16::from_be_bytes([p[0], p[1]]))),
            Playout::Missing => Some(None),
            Playout::Buffering => None,
        }
    }

    #[test]
    fn buffers_to_depth_then_plays_in_order() {
        let mut jb = JitterBuffer::new(3, 160);
        assert_eq!(jb.pop(), Playout::Buffering);
        assert!(jb.is_empty());
        assert_eq!(jb.push(10, 0, &frame(10)), PushOutcome::Stored);
        assert_eq!(jb.pop(), Playout::Buffering);
        jb.push(11, 160, &frame(11));
        assert_eq!(jb.pop(), Playout::Buffering);
        jb.push(12, 320, &frame(12));
        assert_eq!(jb.len(), 3);
        assert_eq!(play(&mut jb), Some(Some(10)));
        jb.push(13, 480, &frame(13));
        assert_eq!(play(&mut jb), Some(Some(11)));
        assert_eq!(play(&mut jb), Some(Some(12)));
        assert_eq!(play(&mut jb), Some(Some(13)));
        assert_eq!(jb.missing(), 0);
    }

    #[test]
    fn frame_payload_is_returned_intact() {
        let mut jb = JitterBuffer::new(1, 160);
        let payload: Vec<u8> = (0..160).map(|i| i as u8).collect();
        jb.push(1, 0, &payload);
        assert_eq!(jb.pop(), Playout::Frame(&payload));
        jb.push(2, 0, &[]);
        assert_eq!(jb.pop(), Playout::Frame(&[]));
    }

    #[test]
    fn reorders_within_the_window() {
        let mut jb = JitterBuffer::new(3, 160);
        for s in [5, 3, 4, 7, 6] {
            assert_eq!(jb.push(s, 0, &frame(s)), PushOutcome::Stored, "{s}");
        }
        let got: Vec<_> = (0..5).map(|_| play(&mut jb)).collect();
        assert_eq!(got, [3, 4, 5, 6, 7].map(|s| Some(Some(s))));
    }

    #[test]
    fn loss_is_reported_as_missing() {
        let mut jb = JitterBuffer::new(2, 160);
        for s in [1, 2, 4, 5] {
            jb.push(s, 0, &frame(s));
        }
        let got: Vec<_> = (0..5).map(|_| play(&mut jb)).collect();
        assert_eq!(
            got,
            [
                Some(Some(1)),
                Some(Some(2)),
                Some(None),
                Some(Some(4)),
                Some(Some(5))
            ]
        );
        assert_eq!(jb.missing(), 1);
    }

    #[test]
    fn late_and_duplicate_packets_are_dropped() {
        let mut jb = JitterBuffer::new(2, 160);
        jb.push(1, 0, &frame(1));
        jb.push(2, 0, &frame(2));
        assert_eq!(jb.push(2, 0, &frame(2)), PushOutcome::Duplicate);
        assert_eq!(play(&mut jb), Some(Some(1)));
        assert_eq!(jb.push(1, 0, &frame(1)), PushOutcome::Late);
        assert_eq!(jb.push(0, 0, &frame(0)), PushOutcome::Late);
        assert_eq!((jb.late(), jb.duplicates()), (2, 1));
        // A frame that arrives after its tick was concealed is late too.
        jb.push(4, 0, &frame(4));
        assert_eq!(play(&mut jb), Some(Some(2)));
        assert_eq!(play(&mut jb), Some(None));
        assert_eq!(jb.push(3, 0, &frame(3)), PushOutcome::Late);
        assert_eq!(play(&mut jb), Some(Some(4)));
    }

    #[test]
    fn too_large_payload_is_refused() {
        let mut jb = JitterBuffer::new(2, 160);
        assert_eq!(jb.push(1, 0, &[0; 161]), PushOutcome::TooLarge);
        assert!(jb.is_empty());
        assert_eq!(jb.push(1, 0, &[0; 160]), PushOutcome::Stored);
    }

    #[test]
    fn sequence_wraparound() {
        let mut jb = JitterBuffer::new(3, 160);
        let seqs: Vec<u16> = (0..40u16).map(|i| 65520u16.wrapping_add(i)).collect();
        let mut played = Vec::new();
        for &s in &seqs {
            assert_eq!(jb.push(s, 0, &frame(s)), PushOutcome::Stored);
            if let Some(p) = play(&mut jb) {
                played.push(p.unwrap());
            }
        }
        while let Some(Some(p)) = play(&mut jb) {
            played.push(p);
        }
        assert_eq!(played, seqs);
    }

    #[test]
    fn reordering_across_wrap() {
        let mut jb = JitterBuffer::new(3, 160);
        for s in [0u16, 65535, 1, 65534] {
            assert_eq!(jb.push(s, 0, &frame(s)), PushOutcome::Stored, "{s}");
        }
        let got: Vec<_> = (0..4).map(|_| play(&mut jb).unwrap().unwrap()).collect();
        assert_eq!(got, [65534, 65535, 0, 1]);
    }

    #[test]
    fn big_jump_resets() {
        let mut jb = JitterBuffer::new(2, 160);
        jb.push(100, 0, &frame(100));
        jb.push(101, 0, &frame(101));
        assert_eq!(play(&mut jb), Some(Some(100)));
        assert_eq!(jb.push(30_000, 0, &frame(30_000)), PushOutcome::Reset);
        assert_eq!(jb.len(), 1);
        assert_eq!(jb.pop(), Playout::Buffering, "refills after reset");
        jb.push(30_001, 0, &frame(30_001));
        assert_eq!(play(&mut jb), Some(Some(30_000)));
        // Backwards jump too (sender restarted with a lower sequence).
        assert_eq!(jb.push(5, 0, &frame(5)), PushOutcome::Reset);
        assert_eq!(jb.len(), 1);
    }

    #[test]
    fn explicit_reset_forgets_position() {
        let mut jb = JitterBuffer::new(1, 160);
        jb.push(10, 0, &frame(10));
        assert_eq!(play(&mut jb), Some(Some(10)));
        jb.reset();
        assert!(jb.is_empty());
        assert_eq!(jb.pop(), Playout::Buffering);
        // Seq 9 would be late without the reset.
        assert_eq!(jb.push(9, 0, &frame(9)), PushOutcome::Stored);
        assert_eq!(play(&mut jb), Some(Some(9)));
    }

    #[test]
    fn underrun_rebuffers_and_skips_the_gap() {
        let mut jb = JitterBuffer::new(2, 160);
        jb.push(1, 0, &frame(1));
        jb.push(2, 0, &frame(2));
        assert_eq!(play(&mut jb), Some(Some(1)));
        assert_eq!(play(&mut jb), Some(Some(2)));
        // Stall: nothing arrives for several ticks.
        for _ in 0..5 {
            assert_eq!(jb.pop(), Playout::Buffering);
        }
        assert_eq!(jb.missing(), 0, "a stall is not counted as loss");
        // 3..=9 were lost in the stall; playout resumes at 10 after refilling.
        jb.push(10, 0, &frame(10));
        assert_eq!(jb.pop(), Playout::Buffering);
        jb.push(11, 0, &frame(11));
        assert_eq!(play(&mut jb), Some(Some(10)));
        assert_eq!(play(&mut jb), Some(Some(11)));
        // A stale packet from the gap is late.
        assert_eq!(jb.push(5, 0, &frame(5)), PushOutcome::Late);
    }

    #[test]
    fn overrun_drops_oldest_and_bounds_latency() {
        let mut jb = JitterBuffer::new(3, 160);
        // A burst of 30 packets with no ticks in between.
        for s in 0..30u16 {
            jb.push(s, 0, &frame(s));
        }
        assert_eq!(jb.len(), 8, "window = 2 * depth + 2");
        assert_eq!(jb.dropped(), 22);
        let first = play(&mut jb).unwrap().unwrap();
        assert_eq!(first, 22);
    }

    #[test]
    fn early_packet_before_start_is_kept_only_within_window() {
        let mut jb = JitterBuffer::new(3, 160);
        jb.push(50, 0, &frame(50));
        assert_eq!(jb.push(45, 0, &frame(45)), PushOutcome::Stored);
        // 50 - 30 spans more than the window of 8.
        assert_eq!(jb.push(30, 0, &frame(30)), PushOutcome::Late);
        jb.push(46, 0, &frame(46));
        assert_eq!(play(&mut jb), Some(Some(45)));
    }

    #[test]
    fn depth_zero_behaves_as_one() {
        let mut jb = JitterBuffer::new(0, 4);
        assert_eq!(jb.depth(), 1);
        jb.push(1, 0, &frame(1));
        assert_eq!(play(&mut jb), Some(Some(1)));
        let mut empty = JitterBuffer::new(3, 0);
        assert_eq!(empty.push(1, 0, &[1]), PushOutcome::TooLarge);
        assert_eq!(empty.push(1, 0, &[]), PushOutcome::Stored);
    }

    #[test]
    fn random_traffic_never_panics_and_keeps_invariants() {
        let mut x: u64 = 0xDEAD_BEEF_1234_5678;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut jb = JitterBuffer::new(3, 8);
        let mut seq: u16 = 65000;
        for _ in 0..200_000 {
            let r = rnd();
            match r % 10 {
                0..=5 => {
                    // Mostly in order, with some jitter, loss and duplicates.
                    let jitter = (r >> 8) % 7;
                    let s = seq.wrapping_add(jitter as u16).wrapping_sub(3);
                    let len = ((r >> 16) % 12) as usize;
                    let _ = jb.push(s, 0, &[0u8; 12][..len]);
                    seq = seq.wrapping_add(((r >> 24) % 2) as u16);
                }
                6 => {
                    let _ = jb.push((r >> 32) as u16, 0, &[1]);
                }
                _ => {
                    if let Playout::Frame(p) = jb.pop() {
                        assert!(p.len() <= 8);
                    }
                }
            }
            assert!(jb.len() <= jb.window as usize);
            let held = jb.held.iter().filter(|h| h.is_some()).count();
            assert_eq!(held, jb.len());
        }
    }
}
