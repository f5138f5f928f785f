//! `switchboard plugin new | build | test` and `switchboard replay --plugin`, through the real
//! binary. Wasm builds are slow: each plugin is built once per test binary, into the target
//! directory the plugin host's tests use (`target/plugins`), so cargo's fingerprints make
//! later builds quick.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{repo, wasm_target_dir};

fn switchboard(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .expect("run the switchboard binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// `plugins/meta-whatsapp` built with `switchboard plugin build`; returns its `plugin.wasm`.
fn meta_whatsapp_wasm() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = wasm_target_dir().join("dist-cli").join("meta-whatsapp");
        let output = switchboard(&[
            "plugin".as_ref(),
            "build".as_ref(),
            repo().join("plugins/meta-whatsapp").as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--target-dir".as_ref(),
            wasm_target_dir().as_os_str(),
        ]);
        assert_ok(&output);
        let wasm = out.join("plugin.wasm");
        assert_eq!(
            text(&output.stdout).lines().next(),
            Some(wasm.display().to_string().as_str()),
            "the first line printed is the component's path"
        );
        wasm
    })
}

fn replay(source: &[&std::ffi::OsStr], case: &Path) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["replay".as_ref()];
    args.extend_from_slice(source);
    args.extend(["--channel".as_ref(), case.as_os_str(), case.as_os_str()]);
    switchboard(&args)
}

#[test]
fn replay_with_a_plugin_matches_the_builtin_connector() {
    let wasm = meta_whatsapp_wasm();
    for name in ["wa_text_reply_context.json", "wa_bad_signature.json"] {
        let case = repo().join("fixtures/meta").join(name);
        let builtin = replay(&["--connector".as_ref(), "meta-whatsapp".as_ref()], &case);
        let plugin = replay(&["--plugin".as_ref(), wasm.as_os_str()], &case);
        assert_eq!(plugin.status.code(), builtin.status.code(), "{name}");
        assert_eq!(text(&plugin.stdout), text(&builtin.stdout), "{name}");
        assert_eq!(text(&plugin.stderr), text(&builtin.stderr), "{name}");
    }
    // The accepted case printed its events; the tampered one was rejected (exit 1).
    let case = repo().join("fixtures/meta/wa_text_reply_context.json");
    let output = replay(&["--plugin".as_ref(), wasm.as_os_str()], &case);
    assert_ok(&output);
    assert!(!output.stdout.is_empty());
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&case).expect("fixture")).expect("json");
    let events: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        serde_json::Value::Array(events),
        expected["expect"]["events"]
    );
}

#[test]
fn plugin_test_runs_the_kit_over_a_built_plugin() {
    let wasm = meta_whatsapp_wasm();
    let output = switchboard(&[
        "plugin".as_ref(),
        "test".as_ref(),
        wasm.as_os_str(),
        "--fixtures".as_ref(),
        repo().join("fixtures/meta").as_os_str(),
    ]);
    assert_ok(&output);
    assert!(
        text(&output.stdout).contains(" 0 failed"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn connector_and_plugin_are_mutually_exclusive_and_one_is_required() {
    let case = repo().join("fixtures/meta/wa_text_reply_context.json");
    let both = replay(
        &[
            "--connector".as_ref(),
            "meta-whatsapp".as_ref(),
            "--plugin".as_ref(),
            "x.wasm".as_ref(),
        ],
        &case,
    );
    assert_eq!(both.status.code(), Some(2));
    assert!(
        text(&both.stderr).contains("cannot be used with"),
        "{}",
        text(&both.stderr)
    );
    let neither = replay(&[], &case);
    assert_eq!(neither.status.code(), Some(2));
    assert!(
        text(&neither.stderr).contains("required"),
        "{}",
        text(&neither.stderr)
    );
}

#[test]
fn a_plugin_that_is_not_built_is_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crate_dir = dir.path().join("nobuilt");
    assert_ok(&switchboard(&[
        "plugin".as_ref(),
        "new".as_ref(),
        "nobuilt".as_ref(),
        "--dir".as_ref(),
        crate_dir.as_os_str(),
    ]));
    let output = switchboard(&["plugin".as_ref(), "test".as_ref(), crate_dir.as_os_str()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("switchboard plugin build"),
        "{}",
        text(&output.stderr)
    );
    // `plugin new` never writes into a non-empty directory.
    let again = switchboard(&[
        "plugin".as_ref(),
        "new".as_ref(),
        "nobuilt".as_ref(),
        "--dir".as_ref(),
        crate_dir.as_os_str(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );
    let bad_name = switchboard(&["plugin".as_ref(), "new".as_ref(), "Bad/Name".as_ref()]);
    assert_eq!(bad_name.status.code(), Some(2));
}

#[test]
fn new_then_build_then_test_a_scaffolded_plugin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crate_dir = dir.path().join("hello-sms");
    let output = switchboard(&[
        "plugin".as_ref(),
        "new".as_ref(),
        "hello-sms".as_ref(),
        "--dir".as_ref(),
        crate_dir.as_os_str(),
    ]);
    assert_ok(&output);
    for file in [
        "Cargo.toml",
        "plugin.toml",
        "src/lib.rs",
        "fixtures/README.md",
        "fixtures/send_text.json",
        "fixtures/send_response_ok.json",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file} scaffolded");
    }
    // Resolve dependencies to the versions the example plugins use, so the build reuses their
    // compiled dependencies in the shared target directory (a user's crate resolves afresh).
    std::fs::copy(
        repo().join("plugins/Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .expect("copy Cargo.lock");

    let output = switchboard(&[
        "plugin".as_ref(),
        "build".as_ref(),
        crate_dir.as_os_str(),
        "--target-dir".as_ref(),
        wasm_target_dir().as_os_str(),
    ]);
    assert_ok(&output);
    let dist = crate_dir.join("dist");
    let printed: Vec<String> = text(&output.stdout).lines().map(str::to_owned).collect();
    assert_eq!(
        printed,
        [
            dist.join("plugin.wasm").display().to_string(),
            dist.join("plugin.toml").display().to_string()
        ]
    );
    let manifest = std::fs::read_to_string(dist.join("plugin.toml")).expect("manifest");
    let wasm = std::fs::read(dist.join("plugin.wasm")).expect("component");
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&wasm))
    };
    assert!(manifest.contains(&sha), "{manifest}");

    // The crate directory, its dist/ and the .wasm all name the same built plugin.
    for path in [crate_dir.clone(), dist.clone(), dist.join("plugin.wasm")] {
        let output = switchboard(&["plugin".as_ref(), "test".as_ref(), path.as_os_str()]);
        assert_ok(&output);
        let stdout = text(&output.stdout);
        assert!(stdout.starts_with("2 cases, "), "{stdout}");
        assert!(stdout.contains(" 0 failed"), "{stdout}");
        assert!(stdout.contains("passed the conformance kit"), "{stdout}");
    }

    // A wrong expectation fails the kit: exit 1 and the failure in the report.
    let case = crate_dir.join("fixtures/send_response_ok.json");
    let fixture = std::fs::read_to_string(&case).expect("fixture");
    std::fs::write(
        &case,
        fixture.replace(
            "\"provider_message_id\": \"msg-0001\"",
            "\"provider_message_id\": \"msg-0002\"",
        ),
    )
    .expect("write fixture");
    let output = switchboard(&["plugin".as_ref(), "test".as_ref(), crate_dir.as_os_str()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert!(
        stdout.contains("send_response_ok.json [parse_send_response]"),
        "{stdout}"
    );

    // The scaffolded webhook parser and its HMAC scheme, through `replay --plugin`.
    let body = r#"{"id":"m1","from":"+14155550100","to":"+14155550199","text":"hi"}"#;
    let signature = {
        use hmac::Mac;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(b"test_webhook_secret").expect("key");
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let request = serde_json::json!({
        "method": "POST",
        "url": "https://gw.example.com/webhooks/sms-main",
        "headers": [["Content-Type", "application/json"], ["X-Signature", format!("sha256={signature}")]],
        "body": body,
    });
    let request_file = dir.path().join("request.json");
    std::fs::write(&request_file, request.to_string()).expect("write request");
    let channel = dir.path().join("channel.json");
    std::fs::write(
        &channel,
        r#"{"channel_id": "sms-main", "settings": {}, "secrets": {"webhook_secret": "value:test_webhook_secret"}}"#,
    )
    .expect("write channel");
    let output = switchboard(&[
        "replay".as_ref(),
        "--plugin".as_ref(),
        dist.join("plugin.wasm").as_os_str(),
        "--channel".as_ref(),
        channel.as_os_str(),
        request_file.as_os_str(),
    ]);
    assert_ok(&output);
    let event: serde_json::Value =
        serde_json::from_str(text(&output.stdout).trim()).expect("one JSON event");
    assert_eq!(event["type"], "message", "{event}");
    assert_eq!(event["from"]["id"], "+14155550100", "{event}");
    std::fs::write(&request_file, request.to_string().replace("hi", "ho")).expect("tamper");
    let output = switchboard(&[
        "replay".as_ref(),
        "--plugin".as_ref(),
        dist.join("plugin.wasm").as_os_str(),
        "--channel".as_ref(),
        channel.as_os_str(),
        request_file.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("rejected"),
        "{}",
        text(&output.stderr)
    );
}

/// Builds `plugins/<name>` with `switchboard plugin build` (once per plugin per test binary);
/// returns its `plugin.wasm`.
fn example_plugin_wasm(name: &'static str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(&'static str, PathBuf)>> =
        std::sync::Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, wasm)) = built.iter().find(|(n, _)| *n == name) {
        return wasm.clone();
    }
    let out = wasm_target_dir().join("dist-cli").join(name);
    let output = switchboard(&[
        "plugin".as_ref(),
        "build".as_ref(),
        repo().join("plugins").join(name).as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--target-dir".as_ref(),
        wasm_target_dir().as_os_str(),
    ]);
    assert_ok(&output);
    let wasm = out.join("plugin.wasm");
    built.push((name, wasm.clone()));
    wasm
}

/// The example provider plugins (Vonage Messages, Telnyx) pass the conformance kit over their
/// own fixtures, generic checks included, each case counted.
#[test]
fn provider_example_plugins_pass_their_fixtures() {
    for name in ["vonage-messages", "telnyx"] {
        let wasm = example_plugin_wasm(name);
        let fixtures = repo().join("plugins").join(name).join("fixtures");
        let cases = std::fs::read_dir(&fixtures)
            .expect("fixtures dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count();
        assert!(cases >= 20, "{name}: only {cases} cases");
        let output = switchboard(&[
            "plugin".as_ref(),
            "test".as_ref(),
            wasm.as_os_str(),
            "--fixtures".as_ref(),
            fixtures.as_os_str(),
        ]);
        assert_ok(&output);
        let stdout = text(&output.stdout);
        assert!(
            stdout.starts_with(&format!("{cases} cases, ")),
            "{name}: {stdout}"
        );
        assert!(stdout.contains(" 0 failed"), "{name}: {stdout}");
    }
}

/// `replay --plugin` with a signed Telnyx fixture at the fixture's clock prints its event; the
/// same request with one body byte changed, or replayed an hour later, fails the host's Ed25519
/// check (exit 1) before the plugin parses anything.
#[test]
fn telnyx_plugin_replays_a_signed_webhook_and_rejects_tampering_and_replays() {
    let wasm = example_plugin_wasm("telnyx");
    let case = repo().join("plugins/telnyx/fixtures/inbound_sms.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&case).expect("fixture")).expect("json");
    let now = fixture["now"].as_str().expect("the case fixes its clock");
    let run = |request: &Path, now: &str| {
        switchboard(&[
            "replay".as_ref(),
            "--plugin".as_ref(),
            wasm.as_os_str(),
            "--channel".as_ref(),
            case.as_os_str(),
            "--now".as_ref(),
            now.as_ref(),
            request.as_os_str(),
        ])
    };
    let output = run(&case, now);
    assert_ok(&output);
    let events: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        serde_json::Value::Array(events),
        fixture["expect"]["events"]
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let tampered = dir.path().join("tampered.json");
    let mut request = fixture["request"].clone();
    let body = request["body"]
        .as_str()
        .expect("body")
        .replace("Hello", "Jello");
    request["body"] = serde_json::Value::String(body);
    std::fs::write(&tampered, request.to_string()).expect("write request");
    let output = run(&tampered, now);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert!(
        text(&output.stderr).contains("mismatch"),
        "{}",
        text(&output.stderr)
    );

    let output = run(&case, "2023-11-14T23:13:25Z");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert!(
        text(&output.stderr).contains("window"),
        "{}",
        text(&output.stderr)
    );
}
