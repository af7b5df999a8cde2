//! Admission policy for new INVITEs: draining, per-source-IP rate, call cap.
//!
//! Sans-IO: the caller passes the source address, the time and the number of
//! calls in progress; [`Admission::check`] says admit or which status to send.
//! Per-IP state is a token bucket, swept when idle so a scan from many
//! addresses cannot grow it without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Limits in force; rebuilt from config on reload.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub rate_per_ip: f64,
    pub burst_per_ip: f64,
    pub max_calls: usize,
    pub max_calls_status: u16,
    pub retry_after_secs: u32,
}

/// What to do with one INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// Refuse with this status; `retry_after` goes in a Retry-After header.
    Refuse {
        status: u16,
        retry_after: Option<u32>,
        reason: Refusal,
    },
}

/// Why an INVITE was refused (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Draining,
    RateLimited,
    AtCapacity,
}

impl Refusal {
    /// Label used in metrics and call records.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Draining => "draining",
            Refusal::RateLimited => "rate-limited",
            Refusal::AtCapacity => "at-capacity",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The admission state: token buckets per source IP plus the draining flag.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    buckets: HashMap<IpAddr, Bucket>,
    draining: bool,
    last_sweep: Option<Instant>,
}

/// Buckets idle this long are full again and can be forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

impl Admission {
    /// A fresh policy with these limits.
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            buckets: HashMap::new(),
            draining: false,
            last_sweep: None,
        }
    }

    /// Applies new limits; existing buckets keep their tokens.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// From now on every INVITE is refused with 503.
    pub fn start_draining(&mut self) {
        self.draining = true;
    }

    /// Whether the server is draining.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Decides on one INVITE from `source` at `now` with `active` calls up.
    pub fn check(&mut self, source: IpAddr, now: Instant, active: usize) -> Verdict {
        let retry_after = Some(self.limits.retry_after_secs);
        if self.draining {
            return Verdict::Refuse {
                status: 503,
                retry_after,
                reason: Refusal::Draining,
            };
        }
        self.sweep(now);
        let limits = &self.limits;
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: limits.burst_per_ip,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limits.rate_per_ip).min(limits.burst_per_ip);
        bucket.updated = now;
        if bucket.tokens < 1.0 {
            return Verdict::Refuse {
                status: 503,
                retry_after,
                reason: Refusal::RateLimited,
            };
        }
        bucket.tokens -= 1.0;
        if active >= limits.max_calls {
            let status = limits.max_calls_status;
            return Verdict::Refuse {
                status,
                retry_after: (status == 503).then_some(limits.retry_after_secs),
                reason: Refusal::AtCapacity,
            };
        }
        Verdict::Admit
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY)
        {
            return;
        }
        self.last_sweep = Some(now);
        let refill = self.limits.burst_per_ip / self.limits.rate_per_ip;
        let idle = Duration::from_secs_f64(refill.max(1.0));
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.updated) < idle);
    }

    /// Source addresses currently tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            rate_per_ip: 20.0,
            burst_per_ip: 20.0,
            max_calls: 3,
            max_calls_status: 486,
            retry_after_secs: 5,
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn rate_limit_per_ip_with_refill() {
        let mut a = Admission::new(limits());
        let t0 = Instant::now();
        for _ in 0..20 {
            assert_eq!(a.check(A, t0, 0), Verdict::Admit);
        }
        let v = a.check(A, t0, 0);
        assert!(matches!(
            v,
            Verdict::Refuse {
                status: 503,
                retry_after: Some(5),
                reason: Refusal::RateLimited
            }
        ));
        // Another source is unaffected.
        assert_eq!(a.check(B, t0, 0), Verdict::Admit);
        // 100 ms later two tokens came back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(a.check(A, t1, 0), Verdict::Admit);
        assert_eq!(a.check(A, t1, 0), Verdict::Admit);
        assert!(matches!(a.check(A, t1, 0), Verdict::Refuse { .. }));
    }

    #[test]
    fn capacity_uses_configured_status() {
        let mut a = Admission::new(limits());
        let t = Instant::now();
        assert_eq!(a.check(A, t, 2), Verdict::Admit);
        assert!(matches!(
            a.check(A, t, 3),
            Verdict::Refuse {
                status: 486,
                retry_after: None,
                reason: Refusal::AtCapacity
            }
        ));
        a.set_limits(Limits {
            max_calls_status: 503,
            ..limits()
        });
        assert!(matches!(
            a.check(A, t, 3),
            Verdict::Refuse {
                status: 503,
                retry_after: Some(5),
                ..
            }
        ));
    }

    #[test]
    fn draining_refuses_everything() {
        let mut a = Admission::new(limits());
        a.start_draining();
        assert!(matches!(
            a.check(A, Instant::now(), 0),
            Verdict::Refuse {
                reason: Refusal::Draining,
                status: 503,
                ..
            }
        ));
    }

    #[test]
    fn idle_sources_are_forgotten() {
        let mut a = Admission::new(limits());
        let t0 = Instant::now();
        for i in 0..1000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            a.check(ip, t0, 0);
        }
        assert_eq!(a.tracked(), 1000);
        a.check(A, t0 + Duration::from_secs(60), 0);
        assert_eq!(a.tracked(), 1);
    }
}
