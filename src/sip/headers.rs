//! Reading request facts the stack leaves as text, and the headers we add.

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Request};
use rsipstack::transport::SipConnection;
use std::net::SocketAddr;

/// Methods we answer; sent in Allow.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK";
/// Bodies we understand; sent in Accept.
pub const ACCEPT: &str = "application/sdp, application/dtmf-relay, application/dtmf";
/// Extensions we support; sent in Supported.
pub const SUPPORTED: &str = "timer, replaces";

/// Allow, Accept and Supported, as for an OPTIONS answer.
pub fn capabilities() -> Vec<Header> {
    vec![
        Header::Allow(ALLOW.into()),
        Header::Accept(ACCEPT.into()),
        Header::Supported(SUPPORTED.into()),
    ]
}

/// A Retry-After header.
pub fn retry_after(secs: u32) -> Header {
    Header::RetryAfter(secs.to_string().into())
}

/// A header the stack has no variant for.
pub fn other(name: &str, value: impl Into<String>) -> Header {
    Header::Other(name.into(), value.into())
}

/// The user part of a URI, or the whole URI when it has none.
fn user_or_uri(uri: &rsipstack::sip::Uri) -> String {
    uri.user().map_or_else(|| uri.to_string(), str::to_owned)
}

/// The caller: From's user part.
pub fn caller(req: &Request) -> String {
    req.from_header()
        .ok()
        .and_then(|f| f.uri().ok())
        .map(|u| user_or_uri(&u))
        .unwrap_or_default()
}

/// The number dialled: the request URI's user part (empty when none).
pub fn callee(req: &Request) -> String {
    req.uri.user().unwrap_or_default().to_owned()
}

/// The Call-ID.
pub fn call_id(req: &Request) -> String {
    req.call_id_header()
        .map(|c| c.value().to_owned())
        .unwrap_or_default()
}

/// Whether the request is inside a dialog (To has a tag).
pub fn in_dialog(req: &Request) -> bool {
    req.to_header()
        .ok()
        .and_then(|t| t.tag().ok().flatten())
        .is_some()
}

/// Where the request really came from: the connection's peer for streams,
/// the top Via's received/rport for UDP (filled in by the transport).
pub fn source(req: &Request, connection: Option<&SipConnection>) -> Option<SocketAddr> {
    if let Some(remote) = connection.and_then(|c| c.get_remote_addr())
        && let Ok(addr) = SocketAddr::try_from(remote.addr.clone())
    {
        return Some(addr);
    }
    let via = req.via_header().ok()?;
    let (_, host_with_port) = SipConnection::parse_target_from_via(via).ok()?;
    SocketAddr::try_from(host_with_port).ok()
}

/// `udp` or `tcp`, for records.
pub fn transport_name(connection: Option<&SipConnection>) -> &'static str {
    match connection {
        Some(c) if c.is_reliable() => "tcp",
        _ => "udp",
    }
}

/// Content-Type without parameters, lower-cased.
pub fn content_type(req: &Request) -> String {
    req.header_value("Content-Type")
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Whether a comma-separated header (Supported, Require) lists `token`.
pub fn lists_token(req: &Request, name: &str, token: &str) -> bool {
    req.headers.iter().any(|h| {
        h.name().eq_ignore_ascii_case(name)
            && h.value()
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// Splits a Contact header value into its comma-separated contacts (commas
/// inside `<...>` or quotes do not split).
pub fn split_contacts(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(value[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = value[start..].trim();
    if !last.is_empty() {
        out.push(last.to_owned());
    }
    out
}

/// One contact: its URI and `expires` parameter.
pub fn contact_param(contact: &str) -> super::registrar::ContactParam {
    let (uri, params) = match (contact.find('<'), contact.find('>')) {
        (Some(a), Some(b)) if a < b => (&contact[a + 1..b], &contact[b + 1..]),
        _ => match contact.split_once(';') {
            Some((u, p)) => (u, p),
            None => (contact, ""),
        },
    };
    let expires = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("expires")
            .then(|| v.trim().parse().ok())?
    });
    super::registrar::ContactParam {
        uri: uri.trim().to_owned(),
        expires,
    }
}

/// The local address the kernel would use to reach `peer`: what we write in
/// SDP and Contact when we listen on a wildcard address. Sends nothing.
pub fn local_ip_toward(peer: std::net::IpAddr) -> Option<std::net::IpAddr> {
    let bind: SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(SocketAddr::new(peer, 9)).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Request {
        match rsipstack::sip::SipMessage::try_from(text.replace('\n', "\r\n").as_str()).unwrap() {
            rsipstack::sip::SipMessage::Request(r) => r,
            _ => panic!("not a request"),
        }
    }

    const INVITE: &str = "INVITE sip:12345@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;received=192.0.2.9;rport=6000
From: \"Zhang\" <sip:13800138000@10.0.0.1>;tag=a
To: <sip:12345@127.0.0.1>
Call-ID: abc@10.0.0.1
CSeq: 1 INVITE
Supported: 100rel, Timer
Content-Type: Application/SDP; charset=x
Content-Length: 0

";

    #[test]
    fn reads_request_facts() {
        let r = request(INVITE);
        assert_eq!(caller(&r), "13800138000");
        assert_eq!(callee(&r), "12345");
        assert_eq!(call_id(&r), "abc@10.0.0.1");
        assert!(!in_dialog(&r));
        assert_eq!(source(&r, None), Some("192.0.2.9:6000".parse().unwrap()));
        assert_eq!(content_type(&r), "application/sdp");
        assert!(lists_token(&r, "supported", "timer"));
        assert!(!lists_token(&r, "Require", "timer"));
    }

    #[test]
    fn contacts_split_and_parse() {
        let v = "\"A, B\" <sip:1001@10.0.0.1:5060;transport=udp>;expires=60, sip:1001@10.0.0.2;expires=0";
        let list = split_contacts(v);
        assert_eq!(list.len(), 2);
        let a = contact_param(&list[0]);
        assert_eq!(a.uri, "sip:1001@10.0.0.1:5060;transport=udp");
        assert_eq!(a.expires, Some(60));
        let b = contact_param(&list[1]);
        assert_eq!((b.uri.as_str(), b.expires), ("sip:1001@10.0.0.2", Some(0)));
        assert_eq!(contact_param("<sip:x@y>").expires, None);
    }

    #[test]
    fn loopback_routes_to_loopback() {
        let ip = "127.0.0.1".parse().unwrap();
        assert_eq!(local_ip_toward(ip), Some(ip));
    }
}
