//! `switchboard simulate SCENARIO`: runs a routing scenario (configuration + timeline) through
//! the routing engine on a simulated clock and prints its actions as JSON lines.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use switchboard_routing::scenario::{LineKind, Scenario};

/// Exit 0 when every input was accepted, 1 when the engine refused some input, 2 on an invalid
/// file or configuration (every configuration problem is listed on stderr).
pub(crate) fn simulate(path: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let scenario: Scenario = serde_json::from_str(&text)
        .with_context(|| format!("parsing scenario {}", path.display()))?;
    let lines = match scenario.run() {
        Ok(lines) => lines,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut stdout = std::io::stdout().lock();
    let mut refused = 0;
    for line in &lines {
        if let LineKind::Error(e) = &line.what {
            refused += 1;
            eprintln!("step {}: refused: {e}", line.step);
        }
        let json = serde_json::to_string(line).context("serializing a line")?;
        writeln!(stdout, "{json}").context("writing to stdout")?;
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
