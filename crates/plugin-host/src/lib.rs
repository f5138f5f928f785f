//! The WebAssembly plugin host of Switchboard: third-party connectors, compiled to components
//! of the `switchboard:connector` world (`wit/connector.wit`), loaded at run time and served
//! behind the core [`Connector`](switchboard_core::Connector) trait as [`WasmConnector`].
//!
//! Invariant: a plugin can fail only its own call. Every call runs in a fresh instance (unless
//! the operator opts a plugin into [`InstancePolicy::Warm`]) with a deadline (epoch
//! interruption), a memory cap and an input cap checked before entering wasm; a trap becomes
//! an error naming the plugin, its version, the export and the cause (the guest's panic
//! message when there is one), and a plugin that keeps trapping is circuit-broken. A plugin
//! gets only what its manifest declares and the operator grants (declared ∧ granted), and a
//! load is refused outright on a SHA-256 mismatch, an unsupported world version, an unknown
//! import or a missing export.
//!
//! Worlds: the host links `switchboard:connector@0.2.0` (current) and `@0.1.0` (frozen, in
//! `wit/v0.1.0/`) side by side; [`WasmConnector::world`] says which a plugin uses. 0.2.0 adds
//! two capability-gated imports, served only for what is declared ∧ granted:
//!
//! - `hmac.sign(secret-name, algorithm, data)`: the host computes the MAC with the current
//!   channel's secret from the embedder's [`PluginSecrets`]; the plugin never sees the value.
//! - `http.send(request, auth)`: for I/O the sans-IO exports cannot express (a token
//!   exchange, an upload whose id the plugin needs); the URL's host must be granted, and the
//!   request goes through the embedder's [`PluginHttp`] (its transport and egress policy)
//!   with the call's remaining deadline as timeout.
//!
//! A denied use returns `denied` to the guest, sends nothing, reads no secret, and fails the
//! export call with [`FailureCause::Denied`] naming the capability (whatever the plugin makes
//! of the refusal). Lend the services with [`WasmConnector::with_services`]; without them a
//! granted import answers `unavailable`.
//!
//! ```no_run
//! use std::path::Path;
//! use switchboard_core::Connector;
//! use switchboard_plugin_host::{
//!     Capabilities, HostConfig, InstancePolicy, PluginHost, PluginRegistry,
//! };
//!
//! let host = PluginHost::new(HostConfig::default())?;
//! let registry = PluginRegistry::new();
//! let grants = Capabilities {
//!     egress_hosts: vec!["graph.facebook.com".into()],
//!     secrets: vec!["app_secret".into(), "access_token".into()],
//!     http: false,
//! };
//! // Fresh instance per call (the default); `InstancePolicy::warm()` is opt-in.
//! let plugin = host
//!     .load_dir(Path::new("plugins/meta-whatsapp/dist"), &grants)?
//!     .with_instance_policy(InstancePolicy::Fresh);
//! registry.insert(plugin);
//! let connector = registry.get("meta-whatsapp").expect("loaded");
//! println!("{} {}", connector.info().id, connector.info().version);
//! # Ok::<(), switchboard_plugin_host::LoadError>(())
//! ```
//!
//! Building plugins (cargo for `wasm32-unknown-unknown`, then `wit-component`) is in
//! [`build`].

mod bindings;
pub mod build;
mod connector;
mod decode;
mod error;
mod host;
mod imports;
pub mod manifest;
mod registry;

pub use connector::{InstancePolicy, PluginHealth, WasmConnector};
pub use error::{CallError, FailureCause, LoadError, PluginError};
pub use host::{EffectiveLimits, HostConfig, PluginHost};
pub use imports::{HttpCall, HttpFailure, PluginHttp, PluginSecrets, Services};
pub use manifest::{Capabilities, Limits, Manifest};
pub use registry::PluginRegistry;

/// For benchmarks only: the host's decoding of a `parse-webhook` outcome. Not public API.
#[doc(hidden)]
pub mod __bench {
    /// The host's outcome decoding (tag-first, with core's serde as the fallback).
    pub fn decode_outcome(
        json: &str,
    ) -> Result<switchboard_core::WebhookOutcome, serde_json::Error> {
        crate::decode::outcome(json)
    }
}

/// The `switchboard:connector` world versions this host links.
pub const SUPPORTED_WORLDS: &[&str] = &["0.1.0", "0.2.0"];

/// The world version new plugins are built against.
pub const CURRENT_WORLD: &str = "0.2.0";

/// The WIT of the current world, as plugins and tools need it.
pub const WORLD_WIT: &str = include_str!("../../../wit/connector.wit");

/// Whether a world version is supported: the same `0.MINOR` (or the same major from 1.0 on)
/// as a supported version, patch at most as high (wasmtime links semver-compatible versions).
pub fn world_supported(version: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
        let out = (it.next()??, it.next()??, it.next()??);
        it.next().is_none().then_some(out)
    };
    let Some((major, minor, patch)) = parse(version) else {
        return false;
    };
    SUPPORTED_WORLDS
        .iter()
        .filter_map(|s| parse(s))
        .any(|(ma, mi, pa)| {
            if ma == 0 {
                major == 0 && minor == mi && patch <= pa
            } else {
                major == ma && (minor, patch) <= (mi, pa)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_versions() {
        assert!(world_supported("0.1.0"));
        assert!(world_supported("0.2.0"));
        assert!(!world_supported("0.1.1"));
        assert!(!world_supported("0.2.1"));
        assert!(!world_supported("0.3.0"));
        assert!(!world_supported("9.0.0"));
        assert!(!world_supported("0.1"));
        assert!(!world_supported("0.1.0-rc1"));
    }

    #[test]
    fn embedded_wit_is_the_current_world() {
        assert!(WORLD_WIT.contains(&format!("package switchboard:connector@{CURRENT_WORLD};")));
    }
}
