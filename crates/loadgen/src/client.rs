//! A small HTTP/1.1 keep-alive client for JSON APIs on loopback: one connection, reopened after
//! any failure, a timeout per exchange. Used by the `sends` mode (the gateway's API, the fake
//! provider's counters).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request};

use crate::load::{Outcome, connect};

/// One connection's worth of client.
pub(crate) struct Client {
    addr: SocketAddr,
    host: HeaderValue,
    authorization: Option<HeaderValue>,
    timeout: Duration,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    /// A client for the server at `addr` (`host` is the `Host` header), with an optional bearer
    /// token; nothing is connected until the first call.
    pub(crate) fn new(
        addr: SocketAddr,
        host: &str,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let authorization = bearer
            .map(|token| {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
                value.set_sensitive(true);
                Ok::<_, anyhow::Error>(value)
            })
            .transpose()?;
        Ok(Self {
            addr,
            host: HeaderValue::from_str(host)?,
            authorization,
            timeout,
            conn: None,
        })
    }

    /// `GET path`: the status and the body.
    pub(crate) async fn get(&mut self, path: &str) -> Result<(u16, Bytes), Outcome> {
        self.call(Method::GET, path, None, Bytes::new()).await
    }

    /// `POST path` with a JSON body and an optional extra header.
    pub(crate) async fn post_json(
        &mut self,
        path: &str,
        header: Option<(HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<(u16, Bytes), Outcome> {
        self.call(Method::POST, path, header, body).await
    }

    async fn call(
        &mut self,
        method: Method,
        path: &str,
        header: Option<(HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<(u16, Bytes), Outcome> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body)).map_err(|_| Outcome::Io)?;
        let conn = self.conn.take();
        let addr = self.addr;
        let exchange = async move {
            let mut sender = match conn {
                Some(s) if !s.is_closed() => s,
                _ => connect(addr).await.map_err(|_| Outcome::Connect)?,
            };
            sender.ready().await.map_err(|_| Outcome::Io)?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|_| Outcome::Io)?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|_| Outcome::Io)?
                .to_bytes();
            Ok::<_, Outcome>((sender, status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((sender, status, body))) => {
                self.conn = Some(sender);
                Ok((status, body))
            }
            // The connection is dropped on any failure; the next call opens a new one.
            Ok(Err(outcome)) => Err(outcome),
            Err(_) => Err(Outcome::Timeout),
        }
    }
}
