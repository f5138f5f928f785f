//! `plugin.toml`: what a plugin is and what it asks for, and what the operator grants.
//!
//! ```toml
//! id = "meta-whatsapp"
//! version = "1.0.0"
//! world = "0.2.0"                 # the switchboard:connector version it was built against
//! component = "meta_whatsapp.wasm" # beside this file
//! sha256 = "…64 hex digits…"       # of the component
//! webhook_auth = "hmac_sha256_header"
//!
//! [capabilities]
//! egress_hosts = ["graph.facebook.com"]
//! secrets = ["app_secret", "verify_token", "access_token"]
//! http = false
//!
//! [limits]
//! memory_mib = 32
//! deadline_ms = 50
//! max_input_kib = 1024
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file name of a plugin's manifest, beside its component.
pub const MANIFEST_FILE: &str = "plugin.toml";

/// A plugin's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The connector id; must equal the id the plugin reports in `info`.
    pub id: String,
    /// The plugin's version (authoritative: the host reports it as the connector's version).
    pub version: String,
    /// The `switchboard:connector` world version the plugin was built against.
    pub world: String,
    /// The component's file name, relative to the manifest. Defaults to `plugin.wasm`.
    #[serde(default = "default_component")]
    pub component: String,
    /// The lowercase hex SHA-256 of the component file.
    pub sha256: String,
    /// The webhook-auth scheme the plugin uses (`scheme` tag of core `WebhookAuth`, e.g.
    /// `hmac_sha256_header`, `twilio`, `none`). The host refuses any other scheme at run time.
    pub webhook_auth: String,
    /// What the plugin asks for.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Per-call limits the plugin asks for; the host clamps them to its own ceilings.
    #[serde(default)]
    pub limits: Limits,
}

fn default_component() -> String {
    "plugin.wasm".into()
}

/// Capabilities: declared by a plugin, granted by the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Hosts the plugin's requests may go to (exact names, or `*.example.com`).
    #[serde(default)]
    pub egress_hosts: Vec<String>,
    /// Secret names the plugin's auth schemes may refer to.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Whether the plugin may make HTTP calls itself through the host (the `http` import of
    /// world 0.2.0), to its granted egress hosts only. Secrets named here are also what the
    /// `hmac` import may sign with.
    #[serde(default)]
    pub http: bool,
}

impl Capabilities {
    /// Declared ∧ granted: what a plugin actually gets.
    pub fn intersect(&self, granted: &Capabilities) -> Capabilities {
        let hosts: BTreeSet<&String> = granted.egress_hosts.iter().collect();
        let secrets: BTreeSet<&String> = granted.secrets.iter().collect();
        Capabilities {
            egress_hosts: self
                .egress_hosts
                .iter()
                .filter(|h| hosts.contains(h))
                .cloned()
                .collect(),
            secrets: self
                .secrets
                .iter()
                .filter(|s| secrets.contains(s))
                .cloned()
                .collect(),
            http: self.http && granted.http,
        }
    }

    /// Whether `host` is an allowed egress host (case-insensitive; `*.example.com` matches
    /// subdomains of `example.com`, not `example.com` itself).
    pub fn allows_host(&self, host: &str) -> bool {
        self.egress_hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(domain) => host.len().checked_sub(domain.len() + 1).is_some_and(|cut| {
                    host.as_bytes()[cut] == b'.' && host[cut + 1..].eq_ignore_ascii_case(domain)
                }),
                None => pattern.eq_ignore_ascii_case(host),
            })
    }

    /// Whether the secret `name` is allowed.
    pub fn allows_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s == name)
    }
}

/// Per-call limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap, MiB.
    #[serde(default)]
    pub memory_mib: Option<u32>,
    /// Per-call deadline, ms.
    #[serde(default)]
    pub deadline_ms: Option<u32>,
    /// Largest input (webhook body, response body, message) accepted, KiB.
    #[serde(default)]
    pub max_input_kib: Option<u32>,
}

impl Manifest {
    /// Parses a manifest from TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Reads and parses `dir/plugin.toml`.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join(MANIFEST_FILE);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text)
    }

    /// Serializes to TOML.
    pub fn to_toml(&self) -> String {
        // Plain strings, numbers and arrays always serialize.
        toml::to_string(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), String> {
        if self.id.is_empty() {
            return Err("`id` is empty".into());
        }
        if self.version.is_empty() {
            return Err("`version` is empty".into());
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("`sha256` must be 64 hex digits".into());
        }
        if self.component.contains('/') || self.component.contains('\\') || self.component == ".." {
            return Err("`component` must be a file name beside plugin.toml".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
id = "p"
version = "1.0.0"
world = "0.1.0"
component = "p.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
webhook_auth = "none"
[capabilities]
egress_hosts = ["api.example.com", "*.cdn.example.com", "evil.example.com"]
secrets = ["token", "other"]
http = true
[limits]
memory_mib = 16
"#;

    #[test]
    fn parses_and_intersects_with_grants() {
        let m = Manifest::parse(TEXT).unwrap();
        assert_eq!(m.limits.memory_mib, Some(16));
        let granted = Capabilities {
            egress_hosts: vec!["api.example.com".into(), "*.cdn.example.com".into()],
            secrets: vec!["token".into()],
            http: false,
        };
        let eff = m.capabilities.intersect(&granted);
        assert!(eff.allows_host("API.example.com"));
        assert!(eff.allows_host("img.cdn.example.com"));
        assert!(!eff.allows_host("cdn.example.com"));
        assert!(!eff.allows_host("evil.example.com"));
        assert!(!eff.allows_host("xcdn.example.com"));
        assert!(eff.allows_secret("token"));
        assert!(!eff.allows_secret("other"));
        assert!(!eff.http);
        assert_eq!(Manifest::parse(&m.to_toml()).unwrap(), m);
    }

    #[test]
    fn refuses_bad_manifests() {
        assert!(Manifest::parse(&TEXT.replace("\"p.wasm\"", "\"../x.wasm\"")).is_err());
        assert!(Manifest::parse(&TEXT.replace("00000000000000000000", "zz")).is_err());
        assert!(Manifest::parse(&format!("{TEXT}\nunknown = 1")).is_err());
        assert!(Manifest::parse("id = \"p\"").is_err());
    }
}
