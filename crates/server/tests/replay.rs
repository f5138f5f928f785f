//! `switchboard replay` runs the real binary over the bundled fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    repo().join("fixtures").join(name)
}

fn replay(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("replay")
        .args(args)
        .output()
        .expect("run the switchboard binary")
}

fn stdout_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each stdout line is JSON"))
        .collect()
}

fn expected_events(case: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(case).expect("read the fixture");
    let case: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    case["expect"]["events"].clone()
}

#[test]
fn prints_the_events_of_a_signed_webhook_as_json_lines() {
    let case = fixture("twilio/opt_out_stop.json");
    let output = replay(&[
        "--connector".as_ref(),
        "twilio".as_ref(),
        "--channel".as_ref(),
        case.as_os_str(),
        case.as_os_str(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events = stdout_lines(&output);
    assert_eq!(serde_json::Value::Array(events), expected_events(&case));
    assert!(String::from_utf8_lossy(&output.stderr).contains("2 event(s); reply 200"));
}

#[test]
fn a_bare_request_file_and_a_channel_file_work_too() {
    let dir = tempdir("bare");
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("twilio/inbound_sms.json")).unwrap())
            .unwrap();
    let request = dir.join("request.json");
    let channel = dir.join("channel.json");
    std::fs::write(&request, case["request"].to_string()).unwrap();
    let mut channel_spec = case["channel"].clone();
    channel_spec["secrets"]["auth_token"] = "env:SB_TEST_TWILIO_TOKEN".into();
    std::fs::write(&channel, channel_spec.to_string()).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["replay", "--connector", "twilio", "--channel"])
        .arg(&channel)
        .arg(&request)
        .env("SB_TEST_TWILIO_TOKEN", "12345")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        serde_json::Value::Array(stdout_lines(&output)),
        case["expect"]["events"]
    );
}

#[test]
fn a_tampered_body_is_rejected_with_the_reason_and_exit_code_1() {
    let dir = tempdir("tampered");
    let mut case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("twilio/inbound_sms.json")).unwrap())
            .unwrap();
    let body = case["request"]["body"]
        .as_str()
        .unwrap()
        .replacen("Body=", "Body=X", 1);
    case["request"]["body"] = body.into();
    let tampered = dir.join("tampered.json");
    std::fs::write(&tampered, case.to_string()).unwrap();

    let output = replay(&[
        "--connector".as_ref(),
        "twilio".as_ref(),
        "--channel".as_ref(),
        tampered.as_os_str(),
        tampered.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "no events for a rejected request");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rejected: invalid signature"), "{stderr}");
    assert!(
        !stderr.contains("12345"),
        "the auth token must not be printed"
    );
}

#[test]
fn a_missing_secret_is_a_clear_error() {
    let dir = tempdir("missing-secret");
    let channel = dir.join("channel.json");
    std::fs::write(
        &channel,
        r#"{"channel_id": "c", "settings": {}, "secrets": {"auth_token": "env:SB_TEST_SURELY_UNSET_VAR"}}"#,
    )
    .unwrap();
    let case = fixture("twilio/inbound_sms.json");
    let output = replay(&[
        "--connector".as_ref(),
        "twilio".as_ref(),
        "--channel".as_ref(),
        channel.as_os_str(),
        case.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SB_TEST_SURELY_UNSET_VAR"), "{stderr}");
}

#[test]
fn an_unknown_connector_lists_the_built_in_ones() {
    let case = fixture("twilio/inbound_sms.json");
    let output = replay(&[
        "--connector".as_ref(),
        "pigeon".as_ref(),
        "--channel".as_ref(),
        case.as_os_str(),
        case.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown connector `pigeon`") && stderr.contains("twilio"),
        "{stderr}"
    );
}

#[test]
fn a_request_file_that_is_not_json_names_the_file_and_position() {
    let dir = tempdir("not-json");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"method\": \"POST\",").unwrap();
    let case = fixture("twilio/inbound_sms.json");
    let output = replay(&[
        "--connector".as_ref(),
        "twilio".as_ref(),
        "--channel".as_ref(),
        case.as_os_str(),
        bad.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.json") && stderr.contains("line 1"),
        "{stderr}"
    );
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-replay-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}
