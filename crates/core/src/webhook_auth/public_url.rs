//! The public URL a provider signed: splitting it without normalising a byte, rebasing a
//! received URL onto the channel's public base URL, and the port and query-encoding forms
//! Twilio's validators accept.

use std::borrow::Cow;

use super::AuthError;
use super::common::malformed;

/// An absolute URL cut into its parts, verbatim (no case folding, no re-encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UrlParts<'a> {
    /// The scheme, without `://`.
    pub(super) scheme: &'a str,
    /// `user[:password]`, without the `@`.
    pub(super) userinfo: Option<&'a str>,
    /// The host (an IPv6 literal keeps its brackets).
    pub(super) host: &'a str,
    /// The port digits; `Some("")` for a bare `host:`.
    pub(super) port: Option<&'a str>,
    /// Path, query and fragment: everything after the authority.
    pub(super) rest: &'a str,
}

impl<'a> UrlParts<'a> {
    /// Splits `scheme://[userinfo@]host[:port]rest`; `None` when `url` has no such shape.
    pub(super) fn split(url: &'a str) -> Option<Self> {
        let (scheme, after) = url.split_once("://")?;
        let mut chars = scheme.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
            return None;
        }
        let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(authority_end);
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (host, port) = if host_port.starts_with('[') {
            let close = host_port.find(']')?;
            let (host, after_host) = host_port.split_at(close + 1);
            match after_host.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after_host.is_empty() => (host, None),
                None => return None,
            }
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if host.is_empty() || port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        Some(Self {
            scheme,
            userinfo,
            host,
            port,
            rest,
        })
    }

    /// Whether the scheme is `http` or `https` (any case).
    pub(super) fn is_http(&self) -> bool {
        self.default_port().is_some()
    }

    /// `443` for https, `80` for http.
    fn default_port(&self) -> Option<&'static str> {
        if self.scheme.eq_ignore_ascii_case("https") {
            Some("443")
        } else if self.scheme.eq_ignore_ascii_case("http") {
            Some("80")
        } else {
            None
        }
    }

    /// Reassembles the URL with `port` (none when `None`) and `rest`.
    fn assemble(&self, port: Option<&str>, rest: &str) -> String {
        let mut out = String::with_capacity(
            self.scheme.len()
                + self.host.len()
                + rest.len()
                + 16
                + self.userinfo.map_or(0, str::len),
        );
        out.push_str(self.scheme);
        out.push_str("://");
        if let Some(userinfo) = self.userinfo {
            out.push_str(userinfo);
            out.push('@');
        }
        out.push_str(self.host);
        if let Some(port) = port {
            out.push(':');
            out.push_str(port);
        }
        out.push_str(rest);
        out
    }

    /// The URL with any port removed.
    pub(super) fn without_port(&self) -> String {
        self.assemble(None, self.rest)
    }

    /// The URL with the scheme's default port added when it has none (`None` for schemes
    /// other than http and https, or when a port is present).
    pub(super) fn with_default_port(&self) -> Option<String> {
        match self.port {
            Some(port) if !port.is_empty() => None,
            _ => Some(self.assemble(self.default_port(), self.rest)),
        }
    }
}

/// Rewrites the origin (scheme, user info, host, port) of a received webhook URL onto the
/// channel's configured public base URL, and puts the base URL's path in front of the received
/// path. For servers behind a TLS-terminating proxy or a path-stripping gateway: the provider
/// signed the public URL, not the one the server saw.
///
/// `request_url` is either absolute (`http://10.0.0.7:8080/hooks/tw?x=1`) or origin-form
/// (`/hooks/tw?x=1`); its path and query are kept byte for byte, never re-encoded.
/// `public_base_url` is an `http` or `https` URL with no query or fragment; a trailing `/` on
/// its path is ignored.
///
/// ```
/// use switchboard_core::webhook_auth::rebase_url;
/// let url = rebase_url(
///     "http://10.0.0.7:8080/hooks/twilio/sms?foo=1&bar=It's",
///     "https://gateway.example.com/switchboard/",
/// )
/// .unwrap();
/// assert_eq!(url, "https://gateway.example.com/switchboard/hooks/twilio/sms?foo=1&bar=It's");
/// ```
///
/// # Errors
///
/// [`AuthError::Malformed`] when either URL does not have the shape above.
pub fn rebase_url(request_url: &str, public_base_url: &str) -> Result<String, AuthError> {
    const BASE: &str = "public base URL";
    let base = UrlParts::split(public_base_url)
        .ok_or_else(|| malformed(BASE, "expected an absolute http(s) URL"))?;
    if !base.is_http() {
        return Err(malformed(BASE, "expected an http or https URL"));
    }
    if base.rest.contains(['?', '#']) {
        return Err(malformed(BASE, "must not have a query or fragment"));
    }
    if base.port.is_some_and(str::is_empty) {
        return Err(malformed(BASE, "empty port"));
    }
    let base_path = base.rest.trim_end_matches('/');

    let received = if request_url.starts_with('/') {
        request_url
    } else {
        UrlParts::split(request_url)
            .ok_or_else(|| malformed("request URL", "expected an absolute URL or a path"))?
            .rest
    };
    let received: Cow<'_, str> = if received.starts_with('/') {
        Cow::Borrowed(received)
    } else {
        Cow::Owned(format!("/{received}"))
    };
    let mut rest = String::with_capacity(base_path.len() + received.len());
    rest.push_str(base_path);
    rest.push_str(&received);
    Ok(base.assemble(base.port, &rest))
}

/// The `(before, query, after)` split of a URL around its query (without `?`; `after` keeps
/// the `#`); `None` when there is no query.
fn split_query(url: &str) -> Option<(&str, &str, &str)> {
    let fragment = url.find('#').unwrap_or(url.len());
    let question = url[..fragment].find('?')?;
    Some((
        &url[..question],
        &url[question + 1..fragment],
        &url[fragment..],
    ))
}

/// The URL with its query percent-encoded the way a WHATWG URL parser serialises it
/// (`new URL(u).toString()` in Node): controls, space, `"`, `<`, `>`, `'` and non-ASCII become
/// `%XX`. Twilio signed `It's` as `It%27s` (vector T15). `None` when nothing changes.
pub(super) fn whatwg_query(url: &str) -> Option<String> {
    let (before, query, after) = split_query(url)?;
    let needs = |b: u8| !(0x21..=0x7e).contains(&b) || matches!(b, b'"' | b'<' | b'>' | b'\'');
    if !query.bytes().any(needs) {
        return None;
    }
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(before);
    out.push('?');
    for b in query.bytes() {
        if needs(b) {
            push_percent(&mut out, b);
        } else {
            out.push(char::from(b));
        }
    }
    out.push_str(after);
    Some(out)
}

/// The URL with its query parsed and re-serialised the way Node's legacy `querystring` module
/// does (`stringify(parse(q))`, which twilio-node also tries): `+` and `%20` become `%20`,
/// escapes are normalised, repeated names are grouped at their first position, and
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )` stay literal. `None` when nothing changes, or when a
/// decoded name or value is not UTF-8 (Node would replace it lossily, which would let two
/// different queries share one signature).
pub(super) fn legacy_query(url: &str) -> Option<String> {
    let (before, query, after) = split_query(url)?;
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for segment in query.split('&').filter(|s| !s.is_empty()) {
        let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
        let name = percent_decode_plus(name.as_bytes()).ok()?.into_owned();
        let value = percent_decode_plus(value.as_bytes()).ok()?.into_owned();
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => groups.push((name, vec![value])),
        }
    }
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(before);
    out.push('?');
    let mut first = true;
    for (name, values) in &groups {
        for value in values {
            if !first {
                out.push('&');
            }
            first = false;
            push_component(&mut out, name);
            out.push('=');
            push_component(&mut out, value);
        }
    }
    out.push_str(after);
    (out != url).then_some(out)
}

/// Appends `text` escaped like `encodeURIComponent` / `querystring.escape`.
fn push_component(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            )
        {
            out.push(char::from(b));
        } else {
            push_percent(out, b);
        }
    }
}

fn push_percent(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte, a
/// `%` not followed by two hex digits stays literal (as `form_urlencoded` does). Fails when the
/// result is not UTF-8. Borrows when there is nothing to decode.
pub(super) fn percent_decode_plus(raw: &[u8]) -> Result<Cow<'_, str>, std::str::Utf8Error> {
    let first_percent = find_byte(raw, b'%');
    let has_plus = find_byte(raw, b'+').is_some();
    if first_percent.is_none() && !has_plus {
        return std::str::from_utf8(raw).map(Cow::Borrowed);
    }
    let mut bytes: Vec<u8> = if has_plus {
        raw.iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect()
    } else {
        raw.to_vec()
    };
    if let Some(first) = first_percent {
        // Compact in place: `read` is always on a `%`, `write` never passes `read`.
        let (mut read, mut write) = (first, first);
        while read < bytes.len() {
            let escaped = bytes
                .get(read + 1)
                .and_then(hex_value)
                .zip(bytes.get(read + 2).and_then(hex_value));
            match escaped {
                Some((high, low)) => {
                    bytes[write] = high << 4 | low;
                    read += 3;
                }
                None => {
                    bytes[write] = b'%';
                    read += 1;
                }
            }
            write += 1;
            let next = bytes
                .get(read..)
                .and_then(|rest| find_byte(rest, b'%'))
                .map_or(bytes.len(), |at| read + at);
            bytes.copy_within(read.min(next)..next, write);
            write += next.saturating_sub(read);
            read = next;
        }
        bytes.truncate(write);
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Cow::Owned(text)),
        Err(e) => Err(e.utf8_error()),
    }
}

/// The index of the first `needle` in `haystack`, eight bytes at a time (form bodies are
/// scanned several times per verification).
pub(super) fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    let mut offset = 0;
    for chunk in haystack.chunks_exact(8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(word) ^ pattern;
        // A zero byte in `x` is a match (the classic "has zero byte" test).
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            break;
        }
        offset += 8;
    }
    haystack
        .get(offset..)?
        .iter()
        .position(|&b| b == needle)
        .map(|at| offset + at)
}

fn hex_value(b: &u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_verbatim() {
        let p = UrlParts::split("HTTPS://user:pa@ss@Example.COM:8443/a/b?q=1#f").unwrap();
        assert_eq!(
            p,
            UrlParts {
                scheme: "HTTPS",
                userinfo: Some("user:pa@ss"),
                host: "Example.COM",
                port: Some("8443"),
                rest: "/a/b?q=1#f",
            }
        );
        let p = UrlParts::split("http://[::1]:80?x").unwrap();
        assert_eq!((p.host, p.port, p.rest), ("[::1]", Some("80"), "?x"));
        let p = UrlParts::split("http://h:").unwrap();
        assert_eq!(
            (p.port, p.with_default_port().as_deref()),
            (Some(""), Some("http://h:80"))
        );
        for bad in [
            "",
            "h/p",
            "://h",
            "1http://h",
            "http://",
            "http://h:8x/",
            "http://[::1/",
            "http://[::1]x/",
        ] {
            assert!(UrlParts::split(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn port_forms() {
        let p = UrlParts::split("https://u@h:1234/p?q").unwrap();
        assert_eq!(p.without_port(), "https://u@h/p?q");
        assert_eq!(p.with_default_port(), None);
        let p = UrlParts::split("http://h/p").unwrap();
        assert_eq!(p.with_default_port().as_deref(), Some("http://h:80/p"));
        let p = UrlParts::split("ftp://h/p").unwrap();
        assert_eq!(p.with_default_port().as_deref(), Some("ftp://h/p"));
    }

    #[test]
    fn query_reencodings() {
        let u = "https://h/p?foo=1&Body=It's+amazing#frag";
        assert_eq!(
            whatwg_query(u).as_deref(),
            Some("https://h/p?foo=1&Body=It%27s+amazing#frag")
        );
        assert_eq!(
            legacy_query(u).as_deref(),
            Some("https://h/p?foo=1&Body=It's%20amazing#frag")
        );
        assert_eq!(
            legacy_query("https://h/?a=1&b=%27&a=%7e&&c").as_deref(),
            Some("https://h/?a=1&a=~&b='&c=")
        );
        assert_eq!(whatwg_query("https://h/p?a=1"), None);
        assert_eq!(legacy_query("https://h/p?a=1"), None);
        assert_eq!(whatwg_query("https://h/p'"), None);
        assert_eq!(legacy_query("https://h/?a=%FF"), None);
        assert_eq!(
            whatwg_query("https://h/?é").as_deref(),
            Some("https://h/?%C3%A9")
        );
    }

    #[test]
    fn find_byte_agrees_with_position() {
        let text: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
        for needle in [b'a', b'h', b'z', b'%', 0] {
            for start in 0..text.len() {
                let hay = &text[start..];
                assert_eq!(
                    find_byte(hay, needle),
                    hay.iter().position(|&b| b == needle)
                );
            }
        }
        assert_eq!(find_byte(b"", b'a'), None);
        assert_eq!(
            find_byte(&[0x80, 0x81, 0xff, 0x25, 0, 0, 0, 0, 0x25], 0x25),
            Some(3)
        );
    }

    #[test]
    fn rebases_onto_public_base() {
        let cases = [
            (
                "http://10.0.0.7:8080/hooks/x?a=1&b=2",
                "https://pub.example.com",
                "https://pub.example.com/hooks/x?a=1&b=2",
            ),
            (
                "/hooks/x?a=It's",
                "https://pub.example.com/",
                "https://pub.example.com/hooks/x?a=It's",
            ),
            (
                "http://internal/hooks/x",
                "https://u:p@pub.example.com:8443/sb/",
                "https://u:p@pub.example.com:8443/sb/hooks/x",
            ),
            (
                "http://internal?x=1",
                "https://pub.example.com/sb",
                "https://pub.example.com/sb/?x=1",
            ),
            (
                "http://internal",
                "http://Pub.Example.com",
                "http://Pub.Example.com/",
            ),
        ];
        for (received, base, expected) in cases {
            assert_eq!(
                rebase_url(received, base).as_deref(),
                Ok(expected),
                "{received} on {base}"
            );
        }
        for bad_base in [
            "pub.example.com",
            "ftp://pub/",
            "https://pub/?x=1",
            "https://pub/#f",
            "https://pub:/",
            "https://",
        ] {
            assert!(rebase_url("/x", bad_base).is_err(), "{bad_base:?}");
        }
        assert!(rebase_url("hooks/x", "https://pub").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn find_byte_matches_position(hay in proptest::collection::vec(any::<u8>(), 0..64), needle in any::<u8>()) {
            prop_assert_eq!(find_byte(&hay, needle), hay.iter().position(|&b| b == needle));
        }

        /// Our strict decoder agrees with `form_urlencoded` wherever the input is UTF-8.
        #[test]
        fn decoder_matches_form_urlencoded(raw in proptest::collection::vec(
            prop_oneof![Just(b'%'), Just(b'+'), Just(b'='), Just(b'&'), any::<u8>(), b'0'..=b'9', b'a'..=b'f'],
            0..40,
        )) {
            let ours: Option<Vec<(String, String)>> = raw
                .split(|&b| b == b'&')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let (n, v) = match s.iter().position(|&b| b == b'=') {
                        Some(i) => (&s[..i], &s[i + 1..]),
                        None => (s, &[][..]),
                    };
                    Some((percent_decode_plus(n).ok()?.into_owned(), percent_decode_plus(v).ok()?.into_owned()))
                })
                .collect();
            if let Some(ours) = ours {
                let theirs: Vec<(String, String)> = form_urlencoded::parse(&raw)
                    .map(|(n, v)| (n.into_owned(), v.into_owned()))
                    .collect();
                prop_assert_eq!(ours, theirs);
            }
        }
    }
}
