//! The [`Transport`]: one pooled HTTP client that executes connector requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use switchboard_core::outbound_auth::{
    AccessToken, OutboundAuth, TokenKey, TokenRequest, parse_token_response,
};
use switchboard_core::{
    ChannelContext, Connector, ConnectorError, HttpRequest, HttpResponse, MediaSource, MediaStep,
    Method, OutboundMessage, Secret, SecretStore, SendReceipt,
};
use url::Url;

use crate::auth::{self, Credential, Plan};
use crate::builder::{MAX_MEDIA_STEPS, TransportBuilder};
use crate::egress::{DnsFailure, EgressDenied, EgressPolicy};
use crate::error::{
    DownloadError, SendError, TokenFailure, TransportError, find_in_chain, source_text,
};
use crate::oauth::{Clock, TokenCache};
use crate::trace::{Trace, is_sensitive_name, redact_headers, redact_url};

/// Cap on a token endpoint's answer.
const MAX_TOKEN_BODY_BYTES: usize = 64 * 1024;

/// Whether redirects are followed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Redirects {
    /// Redirect responses are returned as they are (the default).
    #[default]
    None,
    /// `GET` requests follow up to `max_hops` redirects. Each hop is checked by the egress
    /// policy; credentials (the injected one and any sensitive-looking header) are dropped for
    /// good as soon as a hop leaves the original origin (scheme, host, port).
    Follow {
        /// The most redirects followed.
        max_hops: u8,
    },
}

impl Redirects {
    /// Follow up to `max_hops` redirects.
    pub fn follow(max_hops: u8) -> Self {
        Redirects::Follow { max_hops }
    }
}

/// A response and the redacted traces of the exchanges that produced it (token request,
/// redirects and 401 retry included), in order.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The final response. Its `Debug` shows header names and the body size only.
    pub response: HttpResponse,
    /// One trace per HTTP exchange, in order; the last is the final response's.
    pub traces: Vec<Trace>,
}

impl Exchange {
    /// The final exchange's trace.
    pub fn trace(&self) -> Option<&Trace> {
        self.traces.last()
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) max_body_bytes: usize,
}

/// What every clone of a [`Transport`] shares.
pub(crate) struct Inner {
    pub(crate) client: reqwest::Client,
    pub(crate) policy: Arc<EgressPolicy>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) tokens: TokenCache,
    pub(crate) api: Limits,
    pub(crate) media: Limits,
    pub(crate) media_redirects: Redirects,
}

/// Executes connector requests: injects credentials, enforces the egress policy, applies
/// timeouts and body caps, and records redacted traces.
///
/// Cheap to clone (one pooled client and one token cache, shared). Build it once with
/// [`Transport::builder`].
#[derive(Clone)]
pub struct Transport {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("egress", &self.inner.policy)
            .field("api", &self.inner.api)
            .field("media", &self.inner.media)
            .field("media_redirects", &self.inner.media_redirects)
            .finish_non_exhaustive()
    }
}

/// One request on the wire, borrowed.
struct Outgoing<'a> {
    method: Method,
    url: &'a Url,
    headers: &'a [(String, String)],
    body: &'a [u8],
}

impl Transport {
    /// A builder with the defaults: deny-all egress, [`crate::DEFAULT_CONNECT_TIMEOUT`],
    /// [`crate::DEFAULT_TIMEOUT`], [`crate::DEFAULT_MAX_BODY_BYTES`], no redirects.
    pub fn builder() -> TransportBuilder {
        TransportBuilder::default()
    }

    /// The egress policy.
    pub fn egress_policy(&self) -> &EgressPolicy {
        &self.inner.policy
    }

    /// Sends `req` with the credentials of `auth` (secret values from `secrets`), without
    /// following redirects.
    ///
    /// With OAuth 2, the token comes from the cache (fetched from the token endpoint, which
    /// must be allowed by the egress policy, when missing or due for refresh); a 401 answer
    /// invalidates that token and the request is sent once more with a fresh one.
    pub async fn execute(
        &self,
        req: &HttpRequest,
        auth: &OutboundAuth,
        secrets: &(dyn SecretStore + Sync),
    ) -> Result<Exchange, TransportError> {
        self.execute_with(req, auth, secrets, Redirects::None).await
    }

    /// [`Transport::execute`], choosing whether redirects are followed.
    pub async fn execute_with(
        &self,
        req: &HttpRequest,
        auth: &OutboundAuth,
        secrets: &(dyn SecretStore + Sync),
        redirects: Redirects,
    ) -> Result<Exchange, TransportError> {
        self.run(req, auth, secrets, redirects, self.inner.api)
            .await
    }

    /// Sends `msg` through `connector`: `build_send`, then [`Transport::execute`] with the
    /// channel's `outbound_auth`, then `parse_send_response` on whatever status came back.
    pub async fn send(
        &self,
        connector: &dyn Connector,
        ctx: &ChannelContext,
        secrets: &(dyn SecretStore + Sync),
        msg: &OutboundMessage,
    ) -> Result<SendReceipt, SendError> {
        let req = connector.build_send(ctx, msg)?;
        let auth = connector.outbound_auth(ctx)?;
        let exchange = self.execute(&req, &auth, secrets).await?;
        Ok(connector.parse_send_response(ctx, msg, &exchange.response)?)
    }

    /// Downloads media through `connector`'s [`Connector::media_step`]s, with the media
    /// limits and redirect mode ([`TransportBuilder::follow_redirects`]). Returns the last
    /// response, whose body is the media.
    pub async fn download_media(
        &self,
        connector: &dyn Connector,
        ctx: &ChannelContext,
        secrets: &(dyn SecretStore + Sync),
        source: &MediaSource,
    ) -> Result<HttpResponse, DownloadError> {
        let auth = connector.outbound_auth(ctx)?;
        let mut previous: Option<HttpResponse> = None;
        let mut fetches = 0;
        loop {
            match connector.media_step(ctx, source, previous.as_ref())? {
                MediaStep::Fetch(req) => {
                    if fetches == MAX_MEDIA_STEPS {
                        return Err(DownloadError::TooManySteps {
                            max: MAX_MEDIA_STEPS,
                        });
                    }
                    fetches += 1;
                    let exchange = self
                        .run(
                            &req,
                            &auth,
                            secrets,
                            self.inner.media_redirects,
                            self.inner.media,
                        )
                        .await?;
                    if exchange.response.status >= 400 {
                        return Err(DownloadError::Status {
                            status: exchange.response.status,
                        });
                    }
                    previous = Some(exchange.response);
                }
                MediaStep::Done => {
                    let resp = previous.ok_or_else(|| {
                        ConnectorError::malformed("media download finished before any request")
                    })?;
                    if !resp.is_success() {
                        return Err(DownloadError::Status {
                            status: resp.status,
                        });
                    }
                    return Ok(resp);
                }
            }
        }
    }

    async fn run(
        &self,
        req: &HttpRequest,
        auth: &OutboundAuth,
        secrets: &(dyn SecretStore + Sync),
        redirects: Redirects,
        limits: Limits,
    ) -> Result<Exchange, TransportError> {
        let url = parse_url(&req.url)?;
        self.inner.policy.check_url(&url)?;
        let mut traces = Vec::new();
        let plan = auth::plan(auth, secrets)?;
        let mut credential = self.credential(&plan, &mut traces).await?;
        let first = Outgoing {
            method: req.method,
            url: &url,
            headers: &req.headers,
            body: &req.body,
        };
        let mut response = self
            .send_once(&first, credential.as_ref(), limits, &mut traces)
            .await?;

        // A refused OAuth 2 token: drop it (once, whoever saw it first) and retry once.
        if response.status == 401
            && let Some((key, generation)) = credential.as_ref().and_then(|c| c.token.clone())
        {
            self.inner.tokens.invalidate(&key, generation);
            credential = self.credential(&plan, &mut traces).await?;
            response = self
                .send_once(&first, credential.as_ref(), limits, &mut traces)
                .await?;
        }

        if let Redirects::Follow { max_hops } = redirects
            && req.method == Method::Get
        {
            response = self
                .follow(first, response, credential, max_hops, limits, &mut traces)
                .await?;
        }
        Ok(Exchange { response, traces })
    }

    /// Follows redirects of a `GET`, checking each hop and dropping credentials for good when
    /// the origin changes.
    async fn follow(
        &self,
        first: Outgoing<'_>,
        mut response: HttpResponse,
        mut credential: Option<Credential>,
        max_hops: u8,
        limits: Limits,
        traces: &mut Vec<Trace>,
    ) -> Result<HttpResponse, TransportError> {
        let origin = first.url.origin();
        let mut current = first.url.clone();
        let mut headers = first.headers.to_vec();
        let mut hops = 0u8;
        while matches!(response.status, 301 | 302 | 303 | 307 | 308) {
            if hops >= max_hops {
                return Err(TransportError::TooManyRedirects { max_hops });
            }
            hops += 1;
            let host = current.host_str().unwrap_or_default().to_owned();
            let location =
                response
                    .header("location")
                    .ok_or_else(|| TransportError::BadRedirect {
                        host: host.clone(),
                        reason: "no Location header".into(),
                    })?;
            let next = current
                .join(location)
                .map_err(|e| TransportError::BadRedirect {
                    host,
                    reason: e.to_string(),
                })?;
            if next.origin() != origin {
                credential = None;
                headers.retain(|(name, _)| !is_sensitive_name(name));
            }
            current = next;
            let hop = Outgoing {
                method: Method::Get,
                url: &current,
                headers: &headers,
                body: &[],
            };
            response = self
                .send_once(&hop, credential.as_ref(), limits, traces)
                .await?;
        }
        Ok(response)
    }

    /// The credential header for `plan`, fetching an OAuth 2 token when needed.
    async fn credential(
        &self,
        plan: &Plan,
        traces: &mut Vec<Trace>,
    ) -> Result<Option<Credential>, TransportError> {
        match plan {
            Plan::None => Ok(None),
            Plan::Static(credential) => Ok(Some(credential.clone())),
            Plan::OAuth2 { key, client_secret } => {
                let clock = Arc::clone(&self.inner.clock);
                let cached = self
                    .inner
                    .tokens
                    .get(key, clock.as_ref(), || {
                        self.fetch_token(key, client_secret, traces)
                    })
                    .await?;
                let mut credential = Credential::bearer(&cached.token.value)?;
                credential.token = Some((key.clone(), cached.generation));
                Ok(Some(credential))
            }
        }
    }

    async fn fetch_token(
        &self,
        key: &TokenKey,
        client_secret: &Secret,
        traces: &mut Vec<Trace>,
    ) -> Result<AccessToken, TransportError> {
        let failed = |source: TokenFailure| TransportError::Token {
            token_url: redact_url(&key.token_url),
            source,
        };
        let request = TokenRequest::client_credentials(
            &key.token_url,
            &key.client_id,
            client_secret,
            key.scope.as_deref(),
        )
        .map_err(|e| failed(e.into()))?;
        let url =
            parse_url(&request.url).map_err(|e| failed(TokenFailure::Request(Box::new(e))))?;
        let credential = Credential::new(
            reqwest::header::AUTHORIZATION,
            request.authorization().expose(),
        )
        .map_err(|e| failed(TokenFailure::Request(Box::new(e))))?;
        let outgoing = Outgoing {
            method: Method::Post,
            url: &url,
            headers: &request.headers,
            body: &request.body,
        };
        let limits = Limits {
            timeout: self.inner.api.timeout,
            max_body_bytes: MAX_TOKEN_BODY_BYTES,
        };
        // Issued no later than the request was sent: expiry errs on the early side.
        let sent_at = self.inner.clock.now();
        let response = self
            .send_once(&outgoing, Some(&credential), limits, traces)
            .await
            .map_err(|e| failed(TokenFailure::Request(Box::new(e))))?;
        parse_token_response(&response, sent_at).map_err(|e| failed(e.into()))
    }

    /// One HTTP exchange: egress check, headers, send, capped body, trace.
    async fn send_once(
        &self,
        out: &Outgoing<'_>,
        credential: Option<&Credential>,
        limits: Limits,
        traces: &mut Vec<Trace>,
    ) -> Result<HttpResponse, TransportError> {
        self.inner.policy.check_url(out.url)?;
        let host = out.url.host_str().unwrap_or_default().to_owned();
        let mut headers = HeaderMap::new();
        for (name, value) in out.headers {
            let invalid = || TransportError::InvalidHeader { name: name.clone() };
            let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let header_value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            headers.append(header_name, header_value);
        }
        if let Some(credential) = credential {
            headers.insert(credential.name.clone(), credential.value.clone());
        }
        let mut builder = self
            .inner
            .client
            .request(reqwest_method(out.method), out.url.clone())
            .headers(headers)
            .timeout(limits.timeout);
        // Methods with a body get one even when empty (`Content-Length: 0`).
        if !out.body.is_empty() || matches!(out.method, Method::Post | Method::Put | Method::Patch)
        {
            builder = builder.body(out.body.to_vec());
        }
        let request = builder
            .build()
            .map_err(|e| TransportError::InvalidRequest {
                reason: source_text(&e),
            })?;

        let credential_name = credential.map(|c| c.name.as_str());
        let also_redact: Vec<&str> = credential_name.into_iter().collect();
        let mut trace = Trace {
            method: out.method,
            url: redact_url(out.url.as_str()),
            status: None,
            duration: Duration::ZERO,
            request_headers: redact_headers(
                borrowed(&header_pairs(request.headers())),
                &also_redact,
            ),
            response_headers: Vec::new(),
            request_body_bytes: out.body.len(),
            response_body_bytes: 0,
            error: None,
        };
        let started = Instant::now();
        let result = self
            .exchange(request, &host, limits, &mut trace, &also_redact)
            .await;
        trace.duration = started.elapsed();
        if let Err(err) = &result {
            trace.error = Some(err.to_string());
        }
        trace.log();
        traces.push(trace);
        result
    }

    async fn exchange(
        &self,
        request: reqwest::Request,
        host: &str,
        limits: Limits,
        trace: &mut Trace,
        also_redact: &[&str],
    ) -> Result<HttpResponse, TransportError> {
        let mut response = self
            .inner
            .client
            .execute(request)
            .await
            .map_err(|e| self.map_send_error(&e, host, limits))?;
        let status = response.status().as_u16();
        trace.status = Some(status);
        let headers = header_pairs(response.headers());
        trace.response_headers = redact_headers(borrowed(&headers), also_redact);
        let too_large = || TransportError::BodyTooLarge {
            host: host.to_owned(),
            limit: limits.max_body_bytes,
        };
        let declared = response.content_length().unwrap_or(0);
        if usize::try_from(declared).map_or(true, |n| n > limits.max_body_bytes) {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(usize::try_from(declared).unwrap_or(0).min(64 * 1024));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.map_body_error(&e, host, limits))?
        {
            trace.response_body_bytes += chunk.len();
            if body.len() + chunk.len() > limits.max_body_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// Classifies a failure to get a response: not sent, or outcome unknown.
    fn map_send_error(&self, err: &reqwest::Error, host: &str, limits: Limits) -> TransportError {
        if let Some(denied) = find_in_chain::<EgressDenied>(err) {
            return TransportError::EgressDenied(denied.clone());
        }
        if let Some(dns) = find_in_chain::<DnsFailure>(err) {
            return TransportError::Dns {
                host: dns.host.clone(),
                reason: dns.reason.clone(),
            };
        }
        if err.is_connect() {
            return TransportError::Connect {
                host: host.to_owned(),
                reason: source_text(err),
            };
        }
        if err.is_timeout() {
            return TransportError::Timeout {
                host: host.to_owned(),
                after: limits.timeout,
            };
        }
        if err.is_builder() {
            return TransportError::InvalidRequest {
                reason: source_text(err),
            };
        }
        TransportError::Interrupted {
            host: host.to_owned(),
            reason: source_text(err),
        }
    }

    fn map_body_error(&self, err: &reqwest::Error, host: &str, limits: Limits) -> TransportError {
        if err.is_timeout() {
            TransportError::Timeout {
                host: host.to_owned(),
                after: limits.timeout,
            }
        } else {
            TransportError::Interrupted {
                host: host.to_owned(),
                reason: source_text(err),
            }
        }
    }
}

fn parse_url(url: &str) -> Result<Url, TransportError> {
    Url::parse(url).map_err(|e| TransportError::InvalidUrl {
        url: redact_url(url),
        reason: e.to_string(),
    })
}

fn reqwest_method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// Header pairs with values as text (bytes that are not UTF-8 replaced).
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn borrowed(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
}
