//! `[webseat]`: where browser seats' signalling and media listen.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// `[webseat]` in `hotline.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebseatConfig {
    /// Serve `/agent`, `/supervisor` and the desktop's socket.
    pub enabled: bool,
    /// The gateway's internal SIP user agent, which browser seats are
    /// registered at. Other nodes must reach it when nodes share seats.
    pub sip_listen: SocketAddr,
    /// The one UDP port every browser's ICE, DTLS and SRTP use.
    pub media_listen: SocketAddr,
    /// Addresses announced to browsers instead of the bound one (1:1 NAT).
    pub public_ips: Vec<IpAddr>,
    /// Bits per second the server's Opus encoder aims at.
    pub opus_bitrate: u32,
    /// The codec offered first: `opus` (transcoded to G.711 by the bridge)
    /// or `pcmu` (passed through).
    pub prefer: Preferred,
}

/// The codec a browser is offered first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preferred {
    Opus,
    Pcmu,
}

impl Default for WebseatConfig {
    fn default() -> Self {
        WebseatConfig {
            enabled: true,
            sip_listen: "127.0.0.1:0".parse().expect("literal address"),
            media_listen: "127.0.0.1:0".parse().expect("literal address"),
            public_ips: Vec::new(),
            opus_bitrate: 24_000,
            prefer: Preferred::Opus,
        }
    }
}

impl WebseatConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(6_000..=128_000).contains(&self.opus_bitrate) {
            return Err(ConfigError::Invalid {
                key: "webseat.opus_bitrate",
                message: "must be 6000-128000 bits per second".into(),
            });
        }
        if let Some(ip) = self
            .public_ips
            .iter()
            .find(|ip| ip.is_unspecified() || ip.is_multicast())
        {
            return Err(ConfigError::Invalid {
                key: "webseat.public_ips",
                message: format!("{ip} cannot be announced to browsers"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn bad_webseat_settings_name_their_key() {
        for (text, key) in [
            ("[webseat]\nopus_bitrate = 100", "webseat.opus_bitrate"),
            (
                "[webseat]\npublic_ips = [\"0.0.0.0\"]",
                "webseat.public_ips",
            ),
            ("[webseat]\nprefer = \"g729\"", "prefer"),
            ("[webseat]\nmedia_listen = \"nowhere\"", "media_listen"),
            ("[webseat]\ncolour = 1", "colour"),
        ] {
            let err = Config::parse(text, Path::new("x.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let ok = Config::parse(
            "[webseat]\nprefer = \"pcmu\"\npublic_ips = [\"203.0.113.7\"]",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(ok.webseat.public_ips.len(), 1);
    }
}
