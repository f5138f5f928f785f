//! [`TransportBuilder`]: timeouts, caps, egress policy, TLS; builds the one pooled client.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use crate::client::{Inner, Limits, Redirects, Transport};
use crate::egress::{EgressPolicy, PolicyResolver};
use crate::error::{TransportError, source_text};
use crate::oauth::{Clock, SystemClock, TokenCache};

/// Default time allowed to establish a connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed for a whole exchange, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on a response body: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Default cap on a downloaded media body: 100 MiB (WhatsApp documents go up to 100 MB).
pub const DEFAULT_MAX_MEDIA_BYTES: usize = 100 * 1024 * 1024;
/// Default time allowed for one media download request, body included.
pub const DEFAULT_MEDIA_TIMEOUT: Duration = Duration::from_secs(120);
/// Redirects a media download follows by default (provider media URLs redirect to CDNs).
pub const DEFAULT_MEDIA_REDIRECTS: u8 = 3;
/// The most requests a connector's media download may take.
pub const MAX_MEDIA_STEPS: usize = 8;
/// Configures a [`Transport`].
///
/// ```
/// use std::time::Duration;
/// use switchboard_transport::{EgressPolicy, Transport};
/// let transport = Transport::builder()
///     .egress(EgressPolicy::deny_all().allow_hosts(["api.twilio.com"]).unwrap())
///     .timeout(Duration::from_secs(20))
///     .max_body_bytes(1024 * 1024)
///     .build()
///     .unwrap();
/// # drop(transport);
/// ```
pub struct TransportBuilder {
    egress: EgressPolicy,
    connect_timeout: Duration,
    timeout: Duration,
    max_body_bytes: usize,
    media_timeout: Duration,
    max_media_bytes: usize,
    media_redirects: Redirects,
    clock: Arc<dyn Clock>,
    overrides: HashMap<String, Vec<IpAddr>>,
    user_agent: String,
    extra_roots: Vec<CertificateDer<'static>>,
}

impl Default for TransportBuilder {
    fn default() -> Self {
        Self {
            egress: EgressPolicy::deny_all(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            media_timeout: DEFAULT_MEDIA_TIMEOUT,
            max_media_bytes: DEFAULT_MAX_MEDIA_BYTES,
            media_redirects: Redirects::follow(DEFAULT_MEDIA_REDIRECTS),
            clock: Arc::new(SystemClock),
            overrides: HashMap::new(),
            user_agent: concat!("switchboard/", env!("CARGO_PKG_VERSION")).to_owned(),
            extra_roots: Vec::new(),
        }
    }
}

impl TransportBuilder {
    /// The egress policy (default: deny everything).
    pub fn egress(mut self, policy: EgressPolicy) -> Self {
        self.egress = policy;
        self
    }

    /// Time allowed to connect (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole exchange, body included (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Cap on response bodies (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Time allowed for each request of a media download (default [`DEFAULT_MEDIA_TIMEOUT`]).
    pub fn media_timeout(mut self, timeout: Duration) -> Self {
        self.media_timeout = timeout;
        self
    }

    /// Cap on media bodies (default [`DEFAULT_MAX_MEDIA_BYTES`]).
    pub fn max_media_bytes(mut self, limit: usize) -> Self {
        self.max_media_bytes = limit;
        self
    }

    /// Lets media downloads follow up to `max_hops` redirects (see [`Redirects::Follow`];
    /// default [`DEFAULT_MEDIA_REDIRECTS`], since provider media URLs redirect to CDNs); `0`
    /// follows none. Each hop passes the egress policy again and credentials are dropped when
    /// the origin changes. Sends never follow redirects.
    pub fn follow_redirects(mut self, max_hops: u8) -> Self {
        self.media_redirects = if max_hops == 0 {
            Redirects::None
        } else {
            Redirects::follow(max_hops)
        };
        self
    }

    /// The clock token expiry is judged by (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Resolves `host` to `addrs` instead of asking DNS. The addresses still go through the
    /// egress policy.
    pub fn resolve(mut self, host: &str, addrs: &[IpAddr]) -> Self {
        self.overrides.insert(
            host.trim_end_matches('.').to_ascii_lowercase(),
            addrs.to_vec(),
        );
        self
    }

    /// The `User-Agent` header (default `switchboard/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Trusts `cert` (DER) as a root in addition to the system's roots.
    pub fn add_root_certificate(mut self, cert: CertificateDer<'static>) -> Self {
        self.extra_roots.push(cert);
        self
    }

    /// Builds the transport: one pooled client, TLS by rustls with the `ring` provider and
    /// the platform's root certificates, no proxy, no automatic redirects.
    pub fn build(self) -> Result<Transport, TransportError> {
        let client_error = |reason: String| TransportError::Client { reason };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = if self.extra_roots.is_empty() {
            rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                self.extra_roots,
                Arc::clone(&provider),
            )
        }
        .map_err(|e| client_error(format!("TLS root certificates: {e}")))?;
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| client_error(format!("TLS versions: {e}")))?
            .dangerous() // A custom verifier, not an insecure one: it checks against the roots.
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let policy = Arc::new(self.egress);
        let resolver = PolicyResolver {
            policy: Arc::clone(&policy),
            overrides: Arc::new(self.overrides),
        };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(Arc::new(resolver))
            // A proxy would resolve names itself, out of the policy's reach.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| client_error(source_text(&e)))?;
        Ok(Transport {
            inner: Arc::new(Inner {
                client,
                policy,
                clock: self.clock,
                tokens: TokenCache::default(),
                api: Limits {
                    timeout: self.timeout,
                    max_body_bytes: self.max_body_bytes,
                },
                media: Limits {
                    timeout: self.media_timeout,
                    max_body_bytes: self.max_media_bytes,
                },
                media_redirects: self.media_redirects,
            }),
        })
    }
}
