//! Errors: why a plugin was refused at load, and why one call failed.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use switchboard_core::{ConnectorError, ErrorClass, ProviderError};

/// Why a plugin was not loaded. Every message names the plugin (or the file) and the check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest is missing or invalid.
    #[error("manifest {}: {reason}", path.display())]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The component's SHA-256 is not the manifest's.
    #[error(
        "plugin {id} {version}: sha256 of {} is {actual}, the manifest says {expected}; refusing to load",
        file.display()
    )]
    Sha256Mismatch {
        /// The plugin id.
        id: String,
        /// The plugin version.
        version: String,
        /// The component file.
        file: PathBuf,
        /// The manifest's hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// The plugin was built for a world version this host does not support.
    #[error(
        "plugin {id} {version}: built for switchboard:connector@{world}, which this host does not support (supported: {supported})"
    )]
    UnsupportedWorld {
        /// The plugin id.
        id: String,
        /// The plugin version.
        version: String,
        /// The world version the plugin uses.
        world: String,
        /// The versions this host supports.
        supported: String,
    },
    /// The component lacks an export the world requires.
    #[error("plugin {id} {version}: missing export: {what}")]
    MissingExport {
        /// The plugin id.
        id: String,
        /// The plugin version.
        version: String,
        /// What is missing.
        what: String,
    },
    /// The component imports something the host does not provide.
    #[error("plugin {id} {version}: imports `{import}`, which this host does not provide")]
    UnknownImport {
        /// The plugin id.
        id: String,
        /// The plugin version.
        version: String,
        /// The import's name.
        import: String,
    },
    /// Anything else that makes the plugin unusable: not a component, does not compile,
    /// `info` fails or disagrees with the manifest.
    #[error("plugin {id} {version}: {reason}")]
    Invalid {
        /// The plugin id.
        id: String,
        /// The plugin version.
        version: String,
        /// What is wrong.
        reason: String,
    },
    /// No plugin with that id is loaded.
    #[error("plugin {0}: not loaded")]
    NotLoaded(String),
    /// There is no previous version to roll back to.
    #[error("plugin {0}: no previous version to roll back to")]
    NoPrevious(String),
}

/// Why one call into a plugin failed, beyond the connector's own errors.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureCause {
    /// The call ran past its deadline and was interrupted.
    Deadline(Duration),
    /// The guest tried to grow its memory past the cap (bytes).
    MemoryCap(usize),
    /// The guest panicked; the message its SDK logged.
    Panic(String),
    /// Another trap (e.g. `unreachable`, out-of-bounds access), as wasmtime describes it.
    Trap(String),
    /// The input was larger than the plugin's cap (size, cap), checked before entering wasm.
    InputTooLarge(usize, usize),
    /// The output was larger than the host's cap (size, cap).
    OutputTooLarge(usize, usize),
    /// The plugin returned something that does not parse as the core type.
    InvalidOutput(String),
    /// The plugin used a capability it was not granted.
    Denied(String),
    /// The plugin trapped too often and is circuit-broken until the cool-down ends.
    CircuitOpen {
        /// Consecutive traps that opened the circuit.
        traps: u32,
        /// Time left until a trial call is allowed.
        retry_in: Duration,
    },
    /// A fresh instance could not be created (e.g. the instance pool is exhausted).
    Instantiate(String),
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureCause::Deadline(d) => write!(f, "deadline of {} ms exceeded", d.as_millis()),
            FailureCause::MemoryCap(cap) => {
                write!(f, "memory cap of {} MiB exceeded", cap / (1024 * 1024))
            }
            FailureCause::Panic(msg) => write!(f, "guest {msg}"),
            FailureCause::Trap(msg) => write!(f, "trapped: {msg}"),
            FailureCause::InputTooLarge(size, cap) => {
                write!(f, "input of {size} bytes exceeds the {cap}-byte cap")
            }
            FailureCause::OutputTooLarge(size, cap) => {
                write!(f, "output of {size} bytes exceeds the {cap}-byte cap")
            }
            FailureCause::InvalidOutput(why) => write!(f, "invalid output: {why}"),
            FailureCause::Denied(what) => write!(f, "denied: {what}"),
            FailureCause::CircuitOpen { traps, retry_in } => write!(
                f,
                "circuit open after {traps} consecutive traps; next trial in {} ms",
                retry_in.as_millis()
            ),
            FailureCause::Instantiate(msg) => write!(f, "could not instantiate: {msg}"),
        }
    }
}

impl FailureCause {
    /// What an operator can do about it, when there is something: the manifest limit or the
    /// grant involved. Included in the errors the [`Connector`](switchboard_core::Connector)
    /// methods return, which is what the gateway logs.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            FailureCause::Deadline(_) => {
                "the plugin ran past its deadline: raise `limits.deadline_ms` in its plugin.toml (up to the host's maximum) or fix the plugin"
            }
            FailureCause::MemoryCap(_) => {
                "raise `limits.memory_mib` in its plugin.toml (up to the host's maximum) or fix the plugin"
            }
            FailureCause::InputTooLarge(..) => "raise `limits.max_input_kib` in its plugin.toml",
            FailureCause::Denied(_) => {
                "grant it to the plugin in the gateway's configuration if the plugin should have it; otherwise the plugin must not use it"
            }
            FailureCause::CircuitOpen { .. } => {
                "the plugin kept trapping: see the earlier errors in the log; it gets one trial call when the cool-down ends"
            }
            FailureCause::Panic(_) | FailureCause::Trap(_) | FailureCause::InvalidOutput(_) => {
                "a bug in the plugin: report it to its author with this message"
            }
            FailureCause::OutputTooLarge(..) | FailureCause::Instantiate(_) => return None,
        })
    }

    /// Whether this is a trap (counts toward the circuit breaker).
    pub fn is_trap(&self) -> bool {
        matches!(
            self,
            FailureCause::Deadline(_)
                | FailureCause::MemoryCap(_)
                | FailureCause::Panic(_)
                | FailureCause::Trap(_)
        )
    }
}

/// A call into a plugin that failed on the host's side of the contract: a trap, a limit, a
/// denied capability. Names the plugin, its version, the export and the cause.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin} {version}: {export}: {cause}")]
pub struct PluginError {
    /// The plugin id.
    pub plugin: String,
    /// The plugin version.
    pub version: String,
    /// The export that was called, e.g. `parse-webhook`.
    pub export: &'static str,
    /// What happened.
    pub cause: FailureCause,
}

impl PluginError {
    /// The error with the operator's hint ([`FailureCause::hint`]) appended, when there is
    /// one: `plugin hostile 0.1.0: parse-webhook: memory cap of 32 MiB exceeded; raise …`.
    pub fn with_hint(&self) -> String {
        match self.cause.hint() {
            Some(hint) => format!("{self}; {hint}"),
            None => self.to_string(),
        }
    }
}

impl From<PluginError> for ConnectorError {
    /// Oversized input is the caller's problem ([`ConnectorError::Malformed`]). Everything
    /// else is a broken, misbehaving or under-granted plugin, which the operator must fix —
    /// and which must not be taken for a bad webhook (a provider does not redeliver what was
    /// refused as malformed): core has no plugin variant, so it is
    /// [`ConnectorError::Config`] with the field `plugin <id> <version>` and a reason that
    /// says it is the plugin, not a channel setting, with the hint. The gateway answers 500 to
    /// it, so the provider redelivers.
    fn from(e: PluginError) -> Self {
        match &e.cause {
            FailureCause::InputTooLarge(..) => ConnectorError::malformed(e.with_hint()),
            cause => ConnectorError::config(
                format!("plugin {} {}", e.plugin, e.version),
                match cause.hint() {
                    Some(hint) => format!(
                        "(the plugin failed, not a setting) {}: {cause}; {hint}",
                        e.export
                    ),
                    None => format!("(the plugin failed, not a setting) {}: {cause}", e.export),
                },
            ),
        }
    }
}

impl From<PluginError> for ProviderError {
    /// A failure while reading a send's response: the message may have been sent, so it is
    /// [`ErrorClass::Permanent`] (never retried, never sent twice).
    fn from(e: PluginError) -> Self {
        ProviderError::new(ErrorClass::Permanent, e.with_hint())
    }
}

/// A connector's own error, or a failure of the plugin around it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError<E> {
    /// The connector returned an error (data, not a trap).
    #[error(transparent)]
    Connector(E),
    /// The host failed the call.
    #[error(transparent)]
    Plugin(PluginError),
}
