//! `switchboard simulate` runs the real binary over the example scenarios.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
}

fn simulate(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("simulate")
        .arg(path)
        .output()
        .expect("run the switchboard binary")
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each stdout line is JSON"))
        .collect()
}

fn actions<'a>(lines: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    lines
        .iter()
        .filter_map(|l| l.get("action"))
        .filter(move |a| a["action"] == kind)
}

fn sent_texts(lines: &[Value]) -> Vec<String> {
    actions(lines, "send")
        .filter_map(|a| a["message"]["content"]["text"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn keyword_menu_and_after_hours() {
    let output = simulate(&scenario("keyword-menu-after-hours.json"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = lines(&output);
    let texts = sent_texts(&lines);
    assert!(texts[0].starts_with("Hello! Thanks for reaching Support"));
    assert_eq!(texts[1], "How can we help?\n1. Sales\n2. Support");
    assert_eq!(texts[2], "Sorry, that is not an option.");
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("We are closed right now"))
    );
    let closes: Vec<_> = actions(&lines, "close")
        .map(|a| a["reason"].clone())
        .collect();
    assert_eq!(closes, ["agent", "expired_in_queue"]);
    let offer = actions(&lines, "offer").next().expect("an offer");
    assert_eq!(offer["agent"], "anna");
    assert_eq!(offer["queue"], "support");
}

#[test]
fn rona_then_reassignment() {
    let output = simulate(&scenario("rona-reassignment.json"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = lines(&output);
    let offers: Vec<_> = actions(&lines, "offer")
        .map(|a| a["agent"].clone())
        .collect();
    assert_eq!(offers, ["anna", "bruno"]);
    assert!(
        lines
            .iter()
            .any(|l| l["action"]["event"] == "agent_availability"
                && l["action"]["availability"] == "rona"
                && l["action"]["agent"] == "anna")
    );
}

#[test]
fn inactivity_dismissal_writes_transcripts() {
    let output = simulate(&scenario("inactivity-dismissal-transcript.json"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = lines(&output);
    let triggers: Vec<_> = lines
        .iter()
        .filter_map(|l| l.get("transcript"))
        .map(|t| t["trigger"].clone())
        .collect();
    assert_eq!(triggers, ["dismissal_warning", "dismissed", "ended"]);
    let last = lines
        .iter()
        .filter_map(|l| l.get("transcript"))
        .next_back()
        .expect("a final transcript");
    assert_eq!(last["reason"], "timeout");
    assert_eq!(last["comment"], "Chat session ended due to timeout");
    assert!(
        last["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["content"]["provider_id"] == "media-4711"),
        "media is referenced in the transcript"
    );
}

#[test]
fn an_invalid_configuration_lists_every_problem_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("switchboard-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.json");
    let bad = serde_json::json!({
        "start": "2025-06-02T08:00:00Z",
        "config": {"accounts": [{"id": "wa", "channel": "whatsapp",
            "queues": [{"id": "q", "name": "STOP", "agents": [{"agent": "ghost"}]}]}]},
        "steps": []
    });
    std::fs::write(&path, bad.to_string()).expect("write scenario");
    let output = simulate(&path);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("accounts[0].queues[0].name"), "{stderr}");
    assert!(
        stderr.contains("accounts[0].queues[0].agents[0].agent"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
