//! The egress policy: which hosts and addresses requests may go to.
//!
//! Two checks, both before any byte is sent:
//! - per URL ([`EgressPolicy::check_url`]): the scheme, the host against the allow-list, and
//!   IP-literal hosts against the blocked ranges;
//! - per resolved address, inside the client's DNS resolver ([`PolicyResolver`]): every address
//!   a name resolves to is classified ([`classify_ip`]) and a name that resolves to any blocked
//!   address is refused. The connection can only go to addresses that passed, so there is no
//!   window between the check and the use (no DNS-rebinding TOCTOU).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// A range of addresses requests are never sent to (unless a test switch allows loopback).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockedRange {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), IPv6 unique local `fc00::/7`, the
    /// deprecated site-local `fec0::/10` and local-use NAT64 `64:ff9b:1::/48`.
    Private,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// Cloud instance metadata endpoints: `169.254.169.254`, `169.254.170.2`, `fd00:ec2::254`.
    CloudMetadata,
    /// Carrier-grade NAT shared space `100.64.0.0/10`.
    SharedAddressSpace,
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `0.0.0.0/8` other than `0.0.0.0`.
    ThisNetwork,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// Anything else not globally routable: `192.0.0/24`, `192.88.99/24`, `240/4`, the IETF
    /// assignments `2001::/23` (Teredo `2001::/32`, ORCHID, ...), the discard prefix
    /// `100::/64`, deprecated IPv4-compatible forms of public addresses, and IPv6 outside
    /// `2000::/3`.
    Reserved,
}

impl BlockedRange {
    /// A short name for messages and metrics, e.g. `loopback`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedRange::Loopback => "loopback",
            BlockedRange::Private => "private",
            BlockedRange::LinkLocal => "link-local",
            BlockedRange::CloudMetadata => "cloud metadata",
            BlockedRange::SharedAddressSpace => "shared address space (CGNAT)",
            BlockedRange::Unspecified => "unspecified",
            BlockedRange::ThisNetwork => "this-network",
            BlockedRange::Multicast => "multicast",
            BlockedRange::Broadcast => "broadcast",
            BlockedRange::Documentation => "documentation",
            BlockedRange::Benchmarking => "benchmarking",
            BlockedRange::Reserved => "reserved",
        }
    }
}

impl fmt::Display for BlockedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The range `ip` falls in when requests must not go there; `None` for a public address.
///
/// IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address they
/// carry, so `::ffff:169.254.169.254` is [`BlockedRange::CloudMetadata`].
///
/// ```
/// use std::net::IpAddr;
/// use switchboard_transport::{classify_ip, BlockedRange};
/// let ip = |s: &str| s.parse::<IpAddr>().unwrap();
/// assert_eq!(classify_ip(ip("10.1.2.3")), Some(BlockedRange::Private));
/// assert_eq!(classify_ip(ip("::ffff:127.0.0.1")), Some(BlockedRange::Loopback));
/// assert_eq!(classify_ip(ip("93.184.216.34")), None);
/// ```
pub fn classify_ip(ip: IpAddr) -> Option<BlockedRange> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<BlockedRange> {
    let [a, b, c, d] = ip.octets();
    let range = match (a, b, c, d) {
        (0, 0, 0, 0) => BlockedRange::Unspecified,
        (0, ..) => BlockedRange::ThisNetwork,
        (255, 255, 255, 255) => BlockedRange::Broadcast,
        (127, ..) => BlockedRange::Loopback,
        (10, ..) => BlockedRange::Private,
        (172, 16..=31, ..) => BlockedRange::Private,
        (192, 168, ..) => BlockedRange::Private,
        (169, 254, 169, 254) | (169, 254, 170, 2) => BlockedRange::CloudMetadata,
        (169, 254, ..) => BlockedRange::LinkLocal,
        (100, 64..=127, ..) => BlockedRange::SharedAddressSpace,
        (192, 0, 0, _) => BlockedRange::Reserved,
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => BlockedRange::Documentation,
        (192, 88, 99, _) => BlockedRange::Reserved,
        (198, 18..=19, ..) => BlockedRange::Benchmarking,
        (224..=239, ..) => BlockedRange::Multicast,
        (240..=255, ..) => BlockedRange::Reserved,
        _ => return None,
    };
    Some(range)
}

fn classify_v6(ip: Ipv6Addr) -> Option<BlockedRange> {
    let seg = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));

    if ip == Ipv6Addr::UNSPECIFIED {
        return Some(BlockedRange::Unspecified);
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Some(BlockedRange::Loopback);
    }
    // IPv4-mapped ::ffff:a.b.c.d: the connection goes to the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated): never legitimate; named by what it carries.
    if seg[..6] == [0; 6] {
        return Some(classify_v4(embedded_v4(seg[6], seg[7])).unwrap_or(BlockedRange::Reserved));
    }
    // NAT64 well-known prefix 64:ff9b::/96 reaches the IPv4 address it carries.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(seg[6], seg[7]));
    }
    // Local-use NAT64 64:ff9b:1::/48 is for private translators.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1 {
        return Some(BlockedRange::Private);
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(BlockedRange::CloudMetadata);
    }
    let range = match seg[0] {
        0xfc00..=0xfdff => BlockedRange::Private,
        0xfe80..=0xfebf => BlockedRange::LinkLocal,
        0xfec0..=0xfeff => BlockedRange::Private,
        0xff00..=0xffff => BlockedRange::Multicast,
        // 6to4: 2002:AABB:CCDD::/48 tunnels to a.b.c.d.
        0x2002 => return classify_v4(embedded_v4(seg[1], seg[2])),
        0x2001 if seg[1] == 0x0db8 => BlockedRange::Documentation,
        0x2001 if seg[1] == 0x0002 && seg[2] == 0 => BlockedRange::Benchmarking,
        // IETF protocol assignments 2001::/23: Teredo 2001::/32 (hides an IPv4 address),
        // ORCHID 2001:10::/28, ORCHIDv2 2001:20::/28, ...
        0x2001 if seg[1] < 0x0200 => BlockedRange::Reserved,
        0x3fff if seg[1] <= 0x0fff => BlockedRange::Documentation,
        // Global unicast is 2000::/3; everything else (discard 100::/64, ...) is not routable.
        0x2000..=0x3fff => return None,
        _ => BlockedRange::Reserved,
    };
    Some(range)
}

/// An allow-list entry: an exact host (`api.twilio.com`) or every subdomain of a suffix
/// (`*.twilio.com`, which does not match `twilio.com` itself).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this host (lower case, no trailing dot).
    Exact(String),
    /// Any host ending in `.suffix` (the suffix stored without the leading `*.`).
    Subdomains(String),
}

impl HostPattern {
    /// Parses `host` or `*.suffix`. Hosts are compared case-insensitively and without a
    /// trailing dot.
    pub fn parse(pattern: &str) -> Result<Self, EgressConfigError> {
        let invalid = |reason: &str| EgressConfigError::InvalidHostPattern {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        let normalized = normalize_host(pattern.trim());
        let (wildcard, host) = match normalized.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, normalized.as_str()),
        };
        if host.is_empty() {
            return Err(invalid("is empty"));
        }
        if host.contains('*') {
            return Err(invalid("`*` is only allowed as a leading `*.`"));
        }
        if wildcard && !host.contains('.') {
            return Err(invalid(
                "a wildcard needs a suffix with at least two labels",
            ));
        }
        // Bracketed IPv6 literals are allowed as exact hosts.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if !bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'))
        {
            return Err(invalid("has characters not allowed in a host name"));
        }
        Ok(if wildcard {
            HostPattern::Subdomains(host.to_owned())
        } else {
            HostPattern::Exact(host.to_owned())
        })
    }

    /// Whether `host` (already normalized) matches.
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Subdomains(s) => write!(f, "*.{s}"),
        }
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// An egress policy that could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressConfigError {
    /// An allow-list entry is not a host or `*.suffix`.
    #[error("invalid egress host pattern `{pattern}`: {reason}")]
    InvalidHostPattern {
        /// The entry.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Which rule refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyRule {
    /// The URL's scheme is not allowed (only `https` unless plain HTTP is allowed).
    Scheme {
        /// The scheme.
        scheme: String,
    },
    /// The URL has no host.
    NoHost,
    /// The host is not on the allow-list.
    HostNotAllowed,
    /// The allow-list is empty: every host is denied.
    NoHostsAllowed,
    /// The host is, or resolved to, an address in a blocked range.
    BlockedAddress {
        /// The address.
        ip: IpAddr,
        /// The range it is in.
        range: BlockedRange,
    },
}

impl fmt::Display for DenyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyRule::Scheme { scheme } => write!(f, "scheme `{scheme}` is not allowed"),
            DenyRule::NoHost => f.write_str("the URL has no host"),
            DenyRule::HostNotAllowed => f.write_str("host is not on the egress allow-list"),
            DenyRule::NoHostsAllowed => f.write_str("the egress allow-list is empty"),
            DenyRule::BlockedAddress { ip, range } => {
                write!(f, "address {ip} is in a blocked range ({range})")
            }
        }
    }
}

/// A request the egress policy refused. It was not sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("egress denied for host `{host}`: {rule}")]
pub struct EgressDenied {
    /// The host the request was for.
    pub host: String,
    /// The rule that refused it.
    pub rule: DenyRule,
}

/// Where requests may go.
///
/// The default denies everything: give an allow-list ([`EgressPolicy::allow_hosts`]) or
/// explicitly [`EgressPolicy::allow_any_host`]. Addresses in [`BlockedRange`]s are refused
/// whatever the host list says; only loopback can be let through, for tests
/// ([`EgressPolicy::dangerous_allow_loopback`]).
///
/// ```
/// use switchboard_transport::EgressPolicy;
/// let policy = EgressPolicy::deny_all()
///     .allow_hosts(["api.twilio.com", "*.twilio.com"])
///     .unwrap();
/// let url = |s: &str| url::Url::parse(s).unwrap();
/// assert!(policy.check_url(&url("https://api.twilio.com/2010-04-01")).is_ok());
/// assert!(policy.check_url(&url("https://media.twilio.com/x")).is_ok());
/// assert!(policy.check_url(&url("https://evil.example/x")).is_err());
/// assert!(policy.check_url(&url("http://api.twilio.com/")).is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    hosts: Vec<HostPattern>,
    any_host: bool,
    plain_http: bool,
    loopback: bool,
}

impl EgressPolicy {
    /// A policy that denies every request (the default).
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// A policy that allows any host over HTTPS, still refusing blocked address ranges. For
    /// media downloads from provider CDNs, whose hosts are not known in advance.
    pub fn allow_any_host() -> Self {
        Self {
            any_host: true,
            ..Self::default()
        }
    }

    /// For tests against a local mock server: any host, plain HTTP, and loopback addresses.
    /// Never use it in production.
    pub fn allow_loopback_for_tests() -> Self {
        Self::allow_any_host()
            .allow_plain_http()
            .dangerous_allow_loopback()
    }

    /// Adds one allow-list entry (`host` or `*.suffix`).
    pub fn allow_host(mut self, pattern: &str) -> Result<Self, EgressConfigError> {
        let pattern = HostPattern::parse(pattern)?;
        if !self.hosts.contains(&pattern) {
            self.hosts.push(pattern);
        }
        Ok(self)
    }

    /// Adds allow-list entries, e.g. a connector's [`switchboard_core::ConnectorInfo`]
    /// `egress_hosts`.
    pub fn allow_hosts<I>(self, patterns: I) -> Result<Self, EgressConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        patterns
            .into_iter()
            .try_fold(self, |policy, p| policy.allow_host(p.as_ref()))
    }

    /// Allows `http` URLs as well as `https`.
    pub fn allow_plain_http(mut self) -> Self {
        self.plain_http = true;
        self
    }

    /// Lets requests reach loopback addresses (`127.0.0.0/8`, `::1`): for tests with a local
    /// mock server only. Every other blocked range stays blocked.
    pub fn dangerous_allow_loopback(mut self) -> Self {
        self.loopback = true;
        self
    }

    /// The allow-list.
    pub fn hosts(&self) -> &[HostPattern] {
        &self.hosts
    }

    /// Checks a URL before sending: scheme, host, and the address of an IP-literal host.
    /// Names are checked again, by address, when they are resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), EgressDenied> {
        let host_text = url.host_str().map(normalize_host).unwrap_or_default();
        let deny = |rule| EgressDenied {
            host: host_text.clone(),
            rule,
        };
        match url.scheme() {
            "https" => {}
            "http" if self.plain_http => {}
            other => {
                return Err(deny(DenyRule::Scheme {
                    scheme: other.to_owned(),
                }));
            }
        }
        let host = url.host().ok_or_else(|| deny(DenyRule::NoHost))?;
        self.check_host_name(&host_text)?;
        let ip = match host {
            Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            Host::Domain(d) => d.parse::<IpAddr>().ok(),
        };
        match ip {
            Some(ip) => self.check_ip(&host_text, ip),
            None => Ok(()),
        }
    }

    /// Checks a host name against the allow-list.
    pub fn check_host_name(&self, host: &str) -> Result<(), EgressDenied> {
        let host = normalize_host(host);
        if host.is_empty() {
            return Err(EgressDenied {
                host,
                rule: DenyRule::NoHost,
            });
        }
        if self.any_host || self.hosts.iter().any(|p| p.matches(&host)) {
            return Ok(());
        }
        let rule = if self.hosts.is_empty() {
            DenyRule::NoHostsAllowed
        } else {
            DenyRule::HostNotAllowed
        };
        Err(EgressDenied { host, rule })
    }

    /// Checks an address `host` resolved to (or is).
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), EgressDenied> {
        match classify_ip(ip) {
            None => Ok(()),
            Some(BlockedRange::Loopback) if self.loopback => Ok(()),
            Some(range) => Err(EgressDenied {
                host: normalize_host(host),
                rule: DenyRule::BlockedAddress { ip, range },
            }),
        }
    }
}

/// A name that could not be resolved.
#[derive(Debug, thiserror::Error)]
#[error("could not resolve `{host}`: {reason}")]
pub(crate) struct DnsFailure {
    pub(crate) host: String,
    pub(crate) reason: String,
}

/// Resolves host names to addresses. The transport's default uses the system resolver
/// (`getaddrinfo` on tokio's blocking pool); tests may pin names to addresses with
/// [`crate::TransportBuilder::resolve`], which still goes through the policy.
pub(crate) struct PolicyResolver {
    pub(crate) policy: Arc<EgressPolicy>,
    pub(crate) overrides: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl PolicyResolver {
    /// Resolves `host` and checks every address; used by reqwest for every new connection.
    pub(crate) async fn resolve_checked(
        policy: &EgressPolicy,
        overrides: &HashMap<String, Vec<IpAddr>>,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let host = normalize_host(host);
        policy.check_host_name(&host)?;
        let addrs: Vec<SocketAddr> = match overrides.get(&host) {
            Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
            None => tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| DnsFailure {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Box::new(DnsFailure {
                host,
                reason: "no addresses".into(),
            }));
        }
        // One blocked address refuses the name: a provider's host never resolves to one.
        for addr in &addrs {
            policy.check_ip(&host, addr.ip())?;
        }
        Ok(addrs)
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let overrides = Arc::clone(&self.overrides);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = Self::resolve_checked(&policy, &overrides, &host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_every_special_range() {
        use BlockedRange::*;
        let table: &[(&str, Option<BlockedRange>)] = &[
            // Public.
            ("93.184.216.34", None),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("192.167.255.255", None),
            ("192.169.0.0", None),
            ("169.253.255.255", None),
            ("198.17.255.255", None),
            ("198.20.0.0", None),
            ("223.255.255.255", None),
            ("2606:4700:4700::1111", None),
            ("2a03:2880:f10c:83:face:b00c:0:25de", None),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", None),
            ("2002:808:808::1", None),
            // IPv4.
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(ThisNetwork)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("169.254.0.1", Some(LinkLocal)),
            ("169.254.169.254", Some(CloudMetadata)),
            ("169.254.170.2", Some(CloudMetadata)),
            ("100.64.0.1", Some(SharedAddressSpace)),
            ("100.127.255.255", Some(SharedAddressSpace)),
            ("192.0.0.8", Some(Reserved)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("192.88.99.1", Some(Reserved)),
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("255.255.255.254", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            // IPv6.
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fec0::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("fd00:ec2::254", Some(CloudMetadata)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("2001:2::1", Some(Benchmarking)),
            ("2001::1", Some(Reserved)),
            ("2001:10::1", Some(Reserved)),
            ("2001:20::1", Some(Reserved)),
            ("100::1", Some(Reserved)),
            ("4000::1", Some(Reserved)),
            ("64:ff9b:1::1", Some(Private)),
            // IPv4 carried in IPv6.
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.0.0.1", Some(Private)),
            ("::ffff:169.254.169.254", Some(CloudMetadata)),
            ("::ffff:169.254.1.1", Some(LinkLocal)),
            ("::ffff:100.64.0.1", Some(SharedAddressSpace)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:255.255.255.255", Some(Broadcast)),
            ("::127.0.0.1", Some(Loopback)),
            ("::169.254.169.254", Some(CloudMetadata)),
            ("::8.8.8.8", Some(Reserved)),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(CloudMetadata)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            ("2002:a9fe:a9fe::", Some(CloudMetadata)),
        ];
        for (addr, expected) in table {
            assert_eq!(classify_ip(ip(addr)), *expected, "{addr}");
        }
    }

    #[test]
    fn host_patterns_match_exactly_or_by_suffix() {
        let exact = HostPattern::parse("API.Twilio.com.").unwrap();
        assert_eq!(exact, HostPattern::Exact("api.twilio.com".into()));
        assert!(exact.matches("api.twilio.com"));
        assert!(!exact.matches("x.api.twilio.com"));
        let wild = HostPattern::parse("*.twilio.com").unwrap();
        assert!(wild.matches("api.twilio.com"));
        assert!(wild.matches("a.b.twilio.com"));
        assert!(!wild.matches("twilio.com"));
        assert!(!wild.matches("eviltwilio.com"));
        assert!(!wild.matches(".twilio.com"));
        assert_eq!(wild.to_string(), "*.twilio.com");
        for bad in ["", "*", "*.", "*.com", "a.*.com", "ex ample.com", "a/b"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert!(HostPattern::parse("[::1]").is_ok());
    }

    #[test]
    fn policy_checks_scheme_host_and_literal_addresses() {
        let url = |s: &str| Url::parse(s).unwrap();
        let deny_all = EgressPolicy::deny_all();
        let err = deny_all
            .check_url(&url("https://api.example.com/"))
            .unwrap_err();
        assert_eq!(err.rule, DenyRule::NoHostsAllowed);
        assert_eq!(err.host, "api.example.com");
        assert!(err.to_string().contains("api.example.com"));

        let policy = EgressPolicy::deny_all()
            .allow_hosts(["api.example.com", "*.cdn.example.com", "127.0.0.1"])
            .unwrap();
        assert!(policy.check_url(&url("https://API.example.com./x")).is_ok());
        assert!(
            policy
                .check_url(&url("https://a.cdn.example.com/x"))
                .is_ok()
        );
        let err = policy
            .check_url(&url("https://other.example.com/"))
            .unwrap_err();
        assert_eq!(err.rule, DenyRule::HostNotAllowed);
        let err = policy
            .check_url(&url("http://api.example.com/"))
            .unwrap_err();
        assert!(matches!(err.rule, DenyRule::Scheme { ref scheme } if scheme == "http"));
        assert!(policy.check_url(&url("ftp://api.example.com/")).is_err());
        // An allow-listed IP literal is still classified.
        let err = policy.check_url(&url("https://127.0.0.1/")).unwrap_err();
        assert!(matches!(
            err.rule,
            DenyRule::BlockedAddress {
                range: BlockedRange::Loopback,
                ..
            }
        ));

        let any = EgressPolicy::allow_any_host();
        for blocked in [
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00:ec2::254]/",
            "https://0x7f.1/",
            "https://2130706433/",
            "https://0/",
            "https://[::1]:8443/",
        ] {
            let err = any.check_url(&url(blocked)).unwrap_err();
            assert!(
                matches!(err.rule, DenyRule::BlockedAddress { .. }),
                "{blocked}: {err}"
            );
        }
        assert!(any.check_url(&url("https://93.184.216.34/")).is_ok());
        assert!(any.check_url(&url("http://93.184.216.34/")).is_err());

        let tests = EgressPolicy::allow_loopback_for_tests();
        assert!(tests.check_url(&url("http://127.0.0.1:8080/")).is_ok());
        assert!(tests.check_url(&url("http://[::1]:8080/")).is_ok());
        assert!(
            tests
                .check_url(&url("http://[::ffff:127.0.0.1]:8080/"))
                .is_ok()
        );
        assert!(tests.check_url(&url("http://10.0.0.1/")).is_err());
        assert!(tests.check_url(&url("http://169.254.169.254/")).is_err());
    }

    #[tokio::test]
    async fn resolver_refuses_names_with_any_blocked_address() {
        let policy = EgressPolicy::allow_any_host();
        let overrides: HashMap<String, Vec<IpAddr>> = [
            ("public.test".to_owned(), vec![ip("93.184.216.34")]),
            (
                "mixed.test".to_owned(),
                vec![ip("93.184.216.34"), ip("10.0.0.1")],
            ),
            ("meta.test".to_owned(), vec![ip("::ffff:169.254.169.254")]),
            ("cgnat.test".to_owned(), vec![ip("100.64.1.1")]),
            ("loop.test".to_owned(), vec![ip("127.0.0.1")]),
            ("empty.test".to_owned(), vec![]),
        ]
        .into_iter()
        .collect();
        let resolve = |host: &'static str, policy: EgressPolicy| {
            let overrides = overrides.clone();
            async move { PolicyResolver::resolve_checked(&policy, &overrides, host).await }
        };
        let ok = resolve("public.test", policy.clone()).await.unwrap();
        assert_eq!(ok, vec![SocketAddr::new(ip("93.184.216.34"), 0)]);
        for (host, range) in [
            ("mixed.test", BlockedRange::Private),
            ("meta.test", BlockedRange::CloudMetadata),
            ("cgnat.test", BlockedRange::SharedAddressSpace),
            ("loop.test", BlockedRange::Loopback),
        ] {
            let err = resolve(host, policy.clone()).await.unwrap_err();
            let denied = err.downcast_ref::<EgressDenied>().unwrap();
            assert_eq!(denied.host, host);
            assert!(matches!(denied.rule, DenyRule::BlockedAddress { range: r, .. } if r == range));
        }
        assert!(
            resolve("empty.test", policy.clone())
                .await
                .unwrap_err()
                .downcast_ref::<DnsFailure>()
                .is_some()
        );
        // Loopback only with the explicit switch.
        let loopback_ok = policy.clone().dangerous_allow_loopback();
        assert!(resolve("loop.test", loopback_ok.clone()).await.is_ok());
        assert!(resolve("meta.test", loopback_ok).await.is_err());
        // The allow-list applies in the resolver too.
        let listed = EgressPolicy::deny_all().allow_host("public.test").unwrap();
        assert!(resolve("public.test", listed.clone()).await.is_ok());
        let err = resolve("cgnat.test", listed).await.unwrap_err();
        assert_eq!(
            err.downcast_ref::<EgressDenied>().unwrap().rule,
            DenyRule::HostNotAllowed
        );
    }
}
