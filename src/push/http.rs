//! The HTTP sink: each batch is one `POST` of `{"events": [...]}` in
//! `seq` order; any 2xx acknowledges the whole batch, anything else (or no
//! answer in time) fails it. The receiver deduplicates by `event_id`.
//! HTTP/1.1 over hyper's client connection, kept open between batches;
//! plain `http://` only (put a TLS proxy in front for `https`).

use super::sink::{Outgoing, SinkError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// Where batches are posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// `Host` header value.
    pub authority: String,
    pub path: String,
}

impl Target {
    /// Parses `http://host[:port]/path`; the error says what is wrong.
    pub fn parse(url: &str) -> Result<Target, String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "{url:?}: https is not supported; use http:// to a local TLS proxy"
                ));
            }
            _ => return Err(format!("{url:?} must start with http://")),
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{url:?} has no host"))?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        Ok(Target {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: uri.port_u16().unwrap_or(80),
            authority,
            path: uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// POSTs batches to one endpoint.
pub struct HttpSink {
    target: Target,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpSink {
    pub fn new(target: Target, timeout: Duration) -> HttpSink {
        HttpSink {
            target,
            timeout,
            sender: None,
        }
    }

    pub(super) async fn send(&mut self, batch: &[Outgoing]) -> Result<(), SinkError> {
        let body = serde_json::to_vec(&serde_json::json!({ "events": batch }))
            .map_err(|e| SinkError::Http(e.to_string()))?;
        let result = tokio::time::timeout(self.timeout, self.post(body))
            .await
            .unwrap_or_else(|_| {
                Err(SinkError::Http(format!(
                    "no answer within {:?}",
                    self.timeout
                )))
            });
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn post(&mut self, body: Vec<u8>) -> Result<(), SinkError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| SinkError::Http(format!("{what}: {e}"));
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            let stream =
                tokio::net::TcpStream::connect((self.target.host.as_str(), self.target.port))
                    .await
                    .map_err(|e| fail(&format!("connect {}", self.target.authority), &e))?;
            stream.set_nodelay(true).ok();
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| fail("handshake", &e))?;
            tokio::spawn(async move {
                // Ends when the peer closes or the sender is dropped.
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err(SinkError::Http("no connection".into()));
        };
        sender.ready().await.map_err(|e| fail("connection", &e))?;
        let request = hyper::Request::post(self.target.path.as_str())
            .header(hyper::header::HOST, self.target.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| fail("request", &e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| fail("send", &e))?;
        let status = response.status();
        // Read the answer through so the connection can carry the next batch.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(SinkError::Http(format!(
                "{} answered {status}",
                self.target.authority
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_say_why() {
        let t = Target::parse("http://127.0.0.1:9000/platform/events?src=12345").unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 9000);
        assert_eq!(t.authority, "127.0.0.1:9000");
        assert_eq!(t.path, "/platform/events?src=12345");
        assert_eq!(Target::parse("http://platform.local").unwrap().port, 80);
        assert!(Target::parse("https://x/").unwrap_err().contains("https"));
        assert!(Target::parse("ftp://x/").unwrap_err().contains("http://"));
        assert!(
            Target::parse("not a url")
                .unwrap_err()
                .contains("not a URL")
        );
    }
}
