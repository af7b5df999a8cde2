//! The browsers' WebRTC peer connections: one `webrtc` API for the node,
//! whose ICE agents all share one UDP port (so a firewall opens one port for
//! every browser seat), announce host candidates of the bound address (or
//! the configured public ones behind 1:1 NAT), and never use mDNS, which a
//! server has no use for.

use super::config::{Preferred, WebseatConfig};
use super::transcode::BrowserCodec;
use std::net::SocketAddr;
use std::sync::Arc;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_PCMU, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{API, APIBuilder};
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice::udp_mux::{UDPMuxDefault, UDPMuxParams};
use webrtc::ice::udp_network::UDPNetwork;
use webrtc::ice_transport::ice_candidate_type::RTCIceCandidateType;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;

const OPUS_PT: u8 = 111;
const PCMU_PT: u8 = 0;

/// The node's WebRTC factory.
pub struct Peers {
    api: API,
    prefer: BrowserCodec,
    /// The shared media port, as bound.
    pub local_addr: SocketAddr,
}

/// A new peer connection with its offer made.
pub struct Offered {
    pub pc: Arc<RTCPeerConnection>,
    /// What the bridge writes toward the browser.
    pub track: Arc<TrackLocalStaticRTP>,
    pub codec: BrowserCodec,
    /// The complete offer (candidates included: the browser need not trickle).
    pub sdp: String,
}

fn capability(codec: BrowserCodec) -> RTCRtpCodecCapability {
    match codec {
        BrowserCodec::Opus => RTCRtpCodecCapability {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        BrowserCodec::Pcmu => RTCRtpCodecCapability {
            mime_type: MIME_TYPE_PCMU.to_owned(),
            clock_rate: 8_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
    }
}

impl Peers {
    /// Binds the shared media port and builds the API.
    pub async fn bind(config: &WebseatConfig) -> anyhow::Result<Peers> {
        let socket = tokio::net::UdpSocket::bind(config.media_listen)
            .await
            .map_err(|e| anyhow::anyhow!("webseat.media_listen {}: {e}", config.media_listen))?;
        let local_addr = socket.local_addr()?;
        let mut setting = SettingEngine::default();
        setting.set_udp_network(UDPNetwork::Muxed(UDPMuxDefault::new(UDPMuxParams::new(
            socket,
        ))));
        setting.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
        let ip = local_addr.ip();
        setting.set_network_types(vec![if ip.is_ipv6() {
            NetworkType::Udp6
        } else {
            NetworkType::Udp4
        }]);
        // Candidates name the address the port is bound to; a wildcard bind
        // announces every interface's.
        if !ip.is_unspecified() {
            setting.set_ip_filter(Box::new(move |candidate| candidate == ip));
        }
        setting.set_include_loopback_candidate(ip.is_loopback() || ip.is_unspecified());
        if !config.public_ips.is_empty() {
            setting.set_nat_1to1_ips(
                config.public_ips.iter().map(|ip| ip.to_string()).collect(),
                RTCIceCandidateType::Host,
            );
        }
        let prefer = match config.prefer {
            Preferred::Opus => BrowserCodec::Opus,
            Preferred::Pcmu => BrowserCodec::Pcmu,
        };
        let other = match prefer {
            BrowserCodec::Opus => BrowserCodec::Pcmu,
            BrowserCodec::Pcmu => BrowserCodec::Opus,
        };
        let mut media = MediaEngine::default();
        // Registration order is offer order: the preferred codec first.
        for codec in [prefer, other] {
            media.register_codec(
                RTCRtpCodecParameters {
                    capability: capability(codec),
                    payload_type: match codec {
                        BrowserCodec::Opus => OPUS_PT,
                        BrowserCodec::Pcmu => PCMU_PT,
                    },
                    ..Default::default()
                },
                RTPCodecType::Audio,
            )?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let api = APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(setting)
            .build();
        Ok(Peers {
            api,
            prefer,
            local_addr,
        })
    }

    /// A peer connection with one send-and-receive audio track, and its
    /// offer once ICE gathering finished.
    pub async fn offer(&self) -> anyhow::Result<Offered> {
        let pc = Arc::new(
            self.api
                .new_peer_connection(RTCConfiguration::default())
                .await?,
        );
        let track = Arc::new(TrackLocalStaticRTP::new(
            capability(self.prefer),
            "audio".to_owned(),
            "hotline".to_owned(),
        ));
        pc.add_transceiver_from_track(
            Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendrecv,
                send_encodings: vec![],
            }),
        )
        .await?;
        let offer = pc.create_offer(None).await?;
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(offer).await?;
        let _ = gathered.recv().await;
        let sdp = pc
            .local_description()
            .await
            .ok_or_else(|| anyhow::anyhow!("no local description after gathering"))?
            .sdp;
        Ok(Offered {
            pc,
            track,
            codec: self.prefer,
            sdp,
        })
    }
}

/// The browser's answer, checked to be an SDP answer.
pub fn answer(sdp: String) -> anyhow::Result<RTCSessionDescription> {
    Ok(RTCSessionDescription::answer(sdp)?)
}

/// The codec the browser chose for what it sends, from its track.
pub fn remote_codec(mime_type: &str) -> Option<BrowserCodec> {
    if mime_type.eq_ignore_ascii_case(MIME_TYPE_OPUS) {
        Some(BrowserCodec::Opus)
    } else if mime_type.eq_ignore_ascii_case(MIME_TYPE_PCMU) {
        Some(BrowserCodec::Pcmu)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(sdp: &str) -> Vec<&str> {
        sdp.lines()
            .filter(|l| l.starts_with("a=candidate:"))
            .collect()
    }

    #[tokio::test]
    async fn every_offer_names_the_one_shared_port_and_both_codecs() {
        let peers = Peers::bind(&WebseatConfig::default()).await.unwrap();
        let port = peers.local_addr.port().to_string();
        let a = peers.offer().await.unwrap();
        let b = peers.offer().await.unwrap();
        for offer in [&a, &b] {
            let list = candidates(&offer.sdp);
            assert!(!list.is_empty(), "{}", offer.sdp);
            for c in list {
                assert!(c.contains(" 127.0.0.1 "), "{c}");
                assert!(c.contains(&format!(" {port} ")), "{c} is not on {port}");
            }
            assert!(offer.sdp.contains("opus/48000/2"), "{}", offer.sdp);
            assert!(offer.sdp.contains("PCMU/8000"), "{}", offer.sdp);
            assert!(offer.sdp.contains("a=fingerprint:sha-256"), "{}", offer.sdp);
            assert_eq!(offer.codec, BrowserCodec::Opus);
        }
        a.pc.close().await.unwrap();
        b.pc.close().await.unwrap();
    }

    #[tokio::test]
    async fn behind_nat_the_offer_announces_the_public_address() {
        let config = WebseatConfig {
            public_ips: vec!["203.0.113.7".parse().unwrap()],
            prefer: Preferred::Pcmu,
            ..WebseatConfig::default()
        };
        let peers = Peers::bind(&config).await.unwrap();
        let offer = peers.offer().await.unwrap();
        let list = candidates(&offer.sdp);
        assert!(
            !list.is_empty() && list.iter().all(|c| c.contains(" 203.0.113.7 ")),
            "{}",
            offer.sdp
        );
        // PCMU first: the browser's answer picks it and the bridge passes it through.
        let m = offer
            .sdp
            .lines()
            .find(|l| l.starts_with("m=audio"))
            .unwrap();
        assert!(m.ends_with(" 0 111"), "{m}");
        assert_eq!(offer.codec, BrowserCodec::Pcmu);
        offer.pc.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_taken_media_port_is_a_clear_start_error() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let config = WebseatConfig {
            media_listen: taken.local_addr().unwrap(),
            ..WebseatConfig::default()
        };
        let err = Peers::bind(&config).await.err().unwrap().to_string();
        assert!(err.contains("webseat.media_listen"), "{err}");
    }
}
