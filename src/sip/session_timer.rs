//! RFC 4028 session timers, UAS side.
//!
//! Sans-IO: [`negotiate`] turns the caller's Session-Expires / Min-SE /
//! Supported headers into a grant (or a 422), and [`Granted::due`] says when the
//! call must next act, given the time of the last refresh. When the caller is
//! the refresher and goes silent we hang up; when we are, we send an UPDATE.

use std::time::{Duration, Instant};

/// Which side refreshes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

/// The caller's session-timer wishes, from its request headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerRequest {
    pub expires: Option<u32>,
    pub refresher: Option<Refresher>,
    pub min_se: Option<u32>,
    pub supports_timer: bool,
}

impl TimerRequest {
    /// Reads the header values (as given by the SIP stack, `None` when absent).
    pub fn from_headers(
        session_expires: Option<&str>,
        min_se: Option<&str>,
        supports_timer: bool,
    ) -> TimerRequest {
        let mut req = TimerRequest {
            supports_timer,
            ..TimerRequest::default()
        };
        if let Some(value) = session_expires {
            let mut parts = value.split(';');
            req.expires = parts.next().and_then(|d| d.trim().parse().ok());
            for param in parts {
                let Some((name, v)) = param.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("refresher") {
                    req.refresher = match v.trim().to_ascii_lowercase().as_str() {
                        "uac" => Some(Refresher::Uac),
                        "uas" => Some(Refresher::Uas),
                        _ => None,
                    };
                }
            }
        }
        req.min_se = min_se.and_then(|v| v.split(';').next()?.trim().parse().ok());
        req
    }
}

/// The session interval in force for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub interval: u32,
    pub refresher: Refresher,
}

/// The outcome of negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The caller asked for no session timer.
    None,
    Grant(Granted),
    /// Answer 422 with this Min-SE.
    TooSmall {
        min_se: u32,
    },
}

/// What is due next for a granted timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// We are the refresher: send a refresh (UPDATE).
    Refresh(Instant),
    /// The caller is the refresher: if nothing came by then, hang up.
    Expire(Instant),
}

/// Applies our policy (`our_expires`, `our_min_se`) to a request.
pub fn negotiate(req: &TimerRequest, our_expires: u32, our_min_se: u32) -> Decision {
    let Some(asked) = req.expires else {
        return Decision::None;
    };
    if asked < our_min_se {
        return Decision::TooSmall { min_se: our_min_se };
    }
    // We may shorten the interval, never below any Min-SE seen (RFC 4028 §9).
    let floor = our_min_se.max(req.min_se.unwrap_or(0));
    let interval = asked.min(our_expires).max(floor);
    // Only a caller that supports timers can be made the refresher.
    let refresher = match (req.refresher, req.supports_timer) {
        (Some(r), true) => r,
        (None, true) => Refresher::Uac,
        (_, false) => Refresher::Uas,
    };
    Decision::Grant(Granted {
        interval,
        refresher,
    })
}

impl Granted {
    /// The Session-Expires header value for our response.
    pub fn header_value(&self) -> String {
        let who = match self.refresher {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        };
        format!("{};refresher={who}", self.interval)
    }

    /// Whether our response must carry `Require: timer` (RFC 4028 §9: when
    /// the caller supports timers and we grant one).
    pub fn require_timer(&self, req: &TimerRequest) -> bool {
        req.supports_timer
    }

    /// The next deadline, counted from the last refresh.
    pub fn due(&self, refreshed_at: Instant) -> Due {
        let interval = Duration::from_secs(self.interval.into());
        match self.refresher {
            Refresher::Uas => Due::Refresh(refreshed_at + interval / 2),
            Refresher::Uac => {
                // §10: the side that is not the refresher sends BYE at
                // interval minus min(32 s, interval / 3).
                let margin = Duration::from_secs(32).min(interval / 3);
                Due::Expire(refreshed_at + interval - margin)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers() {
        let r = TimerRequest::from_headers(Some("1800;refresher=UAS"), Some("90"), true);
        assert_eq!(r.expires, Some(1800));
        assert_eq!(r.refresher, Some(Refresher::Uas));
        assert_eq!(r.min_se, Some(90));
        let r = TimerRequest::from_headers(Some("junk"), Some("x"), false);
        assert_eq!(r.expires, None);
        assert_eq!(r.min_se, None);
    }

    #[test]
    fn no_header_no_timer() {
        let r = TimerRequest::from_headers(None, None, true);
        assert_eq!(negotiate(&r, 1800, 90), Decision::None);
    }

    #[test]
    fn too_small_gets_422() {
        let r = TimerRequest::from_headers(Some("60"), None, true);
        assert_eq!(negotiate(&r, 1800, 90), Decision::TooSmall { min_se: 90 });
    }

    #[test]
    fn interval_is_capped_and_refresher_chosen() {
        let r = TimerRequest::from_headers(Some("7200"), None, true);
        let Decision::Grant(g) = negotiate(&r, 1800, 90) else {
            panic!()
        };
        assert_eq!(g.interval, 1800);
        assert_eq!(g.refresher, Refresher::Uac);
        assert_eq!(g.header_value(), "1800;refresher=uac");
        // A caller without timer support cannot refresh: we do.
        let r = TimerRequest::from_headers(Some("600;refresher=uac"), None, false);
        let Decision::Grant(g) = negotiate(&r, 1800, 90) else {
            panic!()
        };
        assert_eq!((g.interval, g.refresher), (600, Refresher::Uas));
        // Min-SE from the caller is a floor.
        let r = TimerRequest::from_headers(Some("7200"), Some("3600"), true);
        let Decision::Grant(g) = negotiate(&r, 1800, 90) else {
            panic!()
        };
        assert_eq!(g.interval, 3600);
    }

    #[test]
    fn deadlines() {
        let t = Instant::now();
        let uas = Granted {
            interval: 120,
            refresher: Refresher::Uas,
        };
        assert_eq!(uas.due(t), Due::Refresh(t + Duration::from_secs(60)));
        let uac = Granted {
            interval: 90,
            refresher: Refresher::Uac,
        };
        assert_eq!(uac.due(t), Due::Expire(t + Duration::from_secs(60)));
        let long = Granted {
            interval: 1800,
            refresher: Refresher::Uac,
        };
        assert_eq!(long.due(t), Due::Expire(t + Duration::from_secs(1768)));
    }
}
