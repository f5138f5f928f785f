//! The conformance kit: the checks every Switchboard connector must pass, native or WebAssembly.
//!
//! A connector's tests call [`check_fixtures`] with its fixtures directory. Each fixture file is
//! one case (format: `fixtures/README.md`, types: [`fixture`]): a recorded webhook with the
//! events and reply it must produce, a message with the request it must build, or a provider
//! response with the receipt or error class it must yield. Around each case the kit runs the
//! generic checks of the design (§9): signature accept and reject, duplicate delivery,
//! malformed, truncated and oversized input (an error, never a panic), determinism of
//! `build_send`, no secret in a built request, and 5xx responses never read as success.
//!
//! ```no_run
//! # let connector: std::sync::Arc<dyn switchboard_core::Connector> = unimplemented!();
//! switchboard_conformance::check_fixtures(connector.as_ref(), "fixtures/twilio".as_ref());
//! ```
//!
//! The same types load the request files of `switchboard replay`.

mod checks;
pub mod fixture;

use std::fmt;
use std::path::{Path, PathBuf};

use switchboard_core::Connector;

pub use checks::run_case;

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The fixture file.
    pub case: PathBuf,
    /// The check's name, e.g. `signature_rejects_mutated_body`.
    pub check: &'static str,
    /// What went wrong.
    pub detail: String,
}

/// What a run of the kit found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Cases run.
    pub cases: usize,
    /// Checks run, over all cases.
    pub checks: usize,
    /// The checks that failed.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} cases, {} checks, {} failed",
            self.cases,
            self.checks,
            self.failures.len()
        )?;
        for failure in &self.failures {
            writeln!(
                f,
                "- {} [{}]: {}",
                failure.case.display(),
                failure.check,
                failure.detail
            )?;
        }
        Ok(())
    }
}

/// Runs every case in `dir` (files ending in `.json`, sorted by name, subdirectories included)
/// against `connector`, skipping cases whose `connector` field names another connector.
pub fn run_fixtures(connector: &dyn Connector, dir: &Path) -> Report {
    let mut report = Report::default();
    let cases = match fixture::load_dir(dir) {
        Ok(cases) => cases,
        Err(e) => {
            report.failures.push(Failure {
                case: dir.to_owned(),
                check: "load_fixtures",
                detail: e.to_string(),
            });
            return report;
        }
    };
    for (path, case) in cases {
        if case.connector != connector.info().id {
            continue;
        }
        report.cases += 1;
        checks::run_case(connector, &path, &case, &mut report);
    }
    if report.cases == 0 {
        report.failures.push(Failure {
            case: dir.to_owned(),
            check: "load_fixtures",
            detail: format!("no case for connector `{}`", connector.info().id),
        });
    }
    report
}

/// Runs [`run_fixtures`] and panics with the full report when any check fails. For tests.
#[track_caller]
pub fn check_fixtures(connector: &dyn Connector, dir: &Path) -> Report {
    let report = run_fixtures(connector, dir);
    assert!(report.passed(), "conformance failed:\n{report}");
    report
}
