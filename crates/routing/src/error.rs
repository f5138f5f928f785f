//! Errors: configuration problems (all reported at once) and refused inputs.

use std::fmt;

use crate::ConvId;

/// One configuration problem: where it is and why it is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// The field path, e.g. `accounts[0].queues[1].name`.
    pub path: String,
    /// Why the value is wrong.
    pub reason: String,
}

impl ValidationError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Every problem found in a configuration (never empty).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid routing configuration ({} problem(s)):\n{}", .0.len(), ValidationErrors::lines(.0))]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    fn lines(errors: &[ValidationError]) -> String {
        errors
            .iter()
            .map(|e| format!("  - {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether some problem is reported at exactly `path`.
    pub fn has(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }
}

/// An input the engine refused; the state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// No account with this id is configured.
    #[error("unknown account `{0}`")]
    UnknownAccount(String),
    /// No agent with this id is configured.
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    /// No open conversation with this id.
    #[error("no open conversation {0}")]
    UnknownConversation(ConvId),
    /// The queue does not exist (or is not a leaf with agents).
    #[error("unknown or disabled queue `{0}`")]
    UnknownQueue(String),
    /// The command needs the conversation in another state (e.g. accepting without an offer).
    #[error("{command} is not possible now: {reason}")]
    WrongState {
        /// The command.
        command: &'static str,
        /// Why not.
        reason: String,
    },
    /// A mandatory disposition was missing, or a disposition is not configured.
    #[error("disposition: {0}")]
    Disposition(String),
    /// Transfers are disabled, or the target is not allowed.
    #[error("transfer refused: {0}")]
    Transfer(String),
    /// No canned answer with this id.
    #[error("unknown canned answer `{0}`")]
    UnknownCannedAnswer(String),
}
