//! `switchboard demo`, end to end: the real binary runs its script against its provider
//! simulator; the output must show every step in order, and the simulator's record must show
//! what the gateway sent (greeting, menu, the agent's reply, the goodbye, the SMS greeting)
//! with the right recipient and accepted credentials.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `switchboard demo` in `cwd` with a deadline; returns (exit code, stdout, stderr).
fn run_demo(cwd: &Path) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("demo")
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`switchboard demo` did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stdout, stderr)
}

/// Asserts that `markers` appear in `text` in this order; returns the text after the last.
fn in_order<'a>(text: &'a str, markers: &[&str]) -> &'a str {
    let mut rest = text;
    for marker in markers {
        match rest.find(marker) {
            Some(at) => rest = &rest[at + marker.len()..],
            None => panic!("{marker:?} missing (or out of order) in:\n{text}"),
        }
    }
    rest
}

#[test]
fn the_demo_plays_the_whole_conversation_and_exits_0() {
    let cwd = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_demo(cwd.path());
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");

    // The steps, in the order they happen.
    let summary = in_order(
        &stdout,
        &[
            "dangerous_allow_loopback_for_tests = true",
            "1. anna → gateway",
            "signs in",
            "2. customer → WhatsApp",
            "writes \"hi\"",
            "X-Hub-Signature-256: 200",
            "gateway → customer",
            "greeting \"Hello! Thanks for writing to Acme.\"",
            "gateway → customer",
            "menu",
            "1. Sales",
            "2. Support",
            "customer → WhatsApp",
            "writes \"2\"",
            "gateway",
            "to queue \"support\"",
            "gateway → anna",
            "offers",
            "anna → gateway",
            "accepts",
            "customer → WhatsApp",
            "My order #1042 has not arrived yet.",
            "gateway → anna",
            "event `message`",
            "anna → customer",
            "Hi Maria, this is Anna.",
            "gateway → Meta",
            "to=15551230001  auth=Bearer ok",
            "Meta → gateway",
            "GET …/conv_0 shows read",
            "anna → gateway",
            "ends",
            "\"Resolved\"",
            "event `conversation_ended`, reason agent",
            "gateway → customer",
            "This chat has ended.",
            "transcript of",
            "customer: hi",
            "system: Hello! Thanks for writing to Acme.",
            "customer: 2",
            "customer: My order #1042",
            "agent anna: Hi Maria, this is Anna.",
            "system: Thanks for contacting Acme. This chat has ended.",
            "customer → SMS",
            "texts \"What is the price of the premium plan?\"",
            "X-Twilio-Signature: 200",
            "gateway → customer",
            "Twilio Messages API, auth=Basic ok",
            "keyword \"price\"",
            "straight to queue \"sales\"",
            "anna → gateway",
            "accepts",
            "anna → customer",
            "Premium is $20 a month",
            "gateway → Twilio",
            "to=+15557770002  auth=Basic ok",
            "Twilio → gateway",
            "GET …/conv_1 shows delivered",
            "The provider simulator received 6 API request(s)",
        ],
    );

    // The simulator's record: what reached the provider APIs, with accepted credentials.
    let requests: Vec<&str> = summary
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.contains("POST "))
        .collect();
    assert!(!summary.contains("REFUSED"), "{summary}");
    let graph_to_maria: Vec<&&str> = requests
        .iter()
        .filter(|l| {
            l.contains("Graph")
                && l.contains("POST /v25.0/106540352242922/messages")
                && l.contains("auth=Bearer ok")
                && l.contains("to=15551230001")
        })
        .collect();
    for text in [
        "Hello! Thanks for writing to Acme.",
        "1. Sales",
        "Hi Maria, this is Anna.",
        "This chat has ended.",
    ] {
        assert!(
            graph_to_maria.iter().any(|l| l.contains(text)),
            "no Graph API send of {text:?} in:\n{summary}"
        );
    }
    let twilio_to_customer: Vec<&&str> = requests
        .iter()
        .filter(|l| {
            l.contains("Twilio")
                && l.contains("/2010-04-01/Accounts/AC")
                && l.contains("auth=Basic ok")
                && l.contains("to=+15557770002")
        })
        .collect();
    assert_eq!(
        twilio_to_customer.len(),
        2,
        "greeting and reply only (no menu):\n{summary}"
    );
    assert!(twilio_to_customer[0].contains("Acme here"), "{summary}");
    assert!(
        twilio_to_customer[1].contains("Premium is $20"),
        "{summary}"
    );
    assert_eq!(requests.len(), 6, "{summary}");
    assert!(stdout.contains("Demo finished in"), "{stdout}");

    // Nothing was written outside the demo's temporary directory, which is gone.
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
    let files = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("files"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo names its directory");
    assert!(
        !Path::new(files).exists(),
        "{files} was not removed at exit"
    );
}
