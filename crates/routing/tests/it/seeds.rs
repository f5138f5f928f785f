//! The example scenarios (drawn from the seed documents) run through the library.

use switchboard_routing::scenario::{LineKind, Scenario};
use switchboard_routing::{Action, EndReason};

fn run(name: &str) -> Vec<LineKind> {
    let path = format!(
        "{}/../../examples/scenarios/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("example scenario exists");
    let scenario: Scenario = serde_json::from_str(&text).expect("example scenario parses");
    scenario
        .run()
        .expect("example configuration is valid")
        .into_iter()
        .map(|l| l.what)
        .collect()
}

fn closes(lines: &[LineKind]) -> Vec<EndReason> {
    lines
        .iter()
        .filter_map(|l| match l {
            LineKind::Action(Action::Close { reason, .. }) => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn keyword_menu_and_after_hours() {
    let lines = run("keyword-menu-after-hours.json");
    assert!(
        !lines.iter().any(|l| matches!(l, LineKind::Error(_))),
        "{lines:#?}"
    );
    assert_eq!(
        closes(&lines),
        [EndReason::Agent, EndReason::ExpiredInQueue]
    );
}

#[test]
fn rona_and_reassignment() {
    let lines = run("rona-reassignment.json");
    assert!(
        !lines.iter().any(|l| matches!(l, LineKind::Error(_))),
        "{lines:#?}"
    );
    let offers: Vec<_> = lines
        .iter()
        .filter_map(|l| match l {
            LineKind::Action(Action::Offer { agent, .. }) => Some(agent.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(offers, ["anna", "bruno"]);
}

#[test]
fn inactivity_dismissal_and_transcript() {
    let lines = run("inactivity-dismissal-transcript.json");
    assert!(
        !lines.iter().any(|l| matches!(l, LineKind::Error(_))),
        "{lines:#?}"
    );
    let transcripts = lines
        .iter()
        .filter(|l| matches!(l, LineKind::Transcript(_)))
        .count();
    assert_eq!(transcripts, 3, "warning, dismissal, end");
    assert_eq!(closes(&lines), [EndReason::Timeout]);
}
