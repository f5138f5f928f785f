//! Fixture maintenance for `fixtures/meta/generate.py`: writes what the Meta connectors make of
//! every success case to `OUT_DIR/<case>.json`. The generator copies them into the cases;
//! every changed expectation is then reviewed by hand against the provider's documentation.
//!
//! `cargo run -p switchboard-providers --example meta_dump_outcomes -- target/meta-outcomes`
#![allow(
    clippy::unwrap_used,
    reason = "a maintenance tool: a failure should stop it loudly"
)]

use std::path::{Path, PathBuf};

use switchboard_conformance::fixture::{CaseKind, load_dir};
use switchboard_core::{Connector, Timestamp, receive_webhook};
use switchboard_providers::meta::{MessengerConnector, WhatsAppConnector};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/meta")
}

fn connector(id: &str) -> Box<dyn Connector> {
    match id {
        "meta-whatsapp" => Box::new(WhatsAppConnector::new()),
        "meta-messenger" => Box::new(MessengerConnector::new()),
        other => panic!("no connector {other}"),
    }
}

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!(
            "usage: cargo run -p switchboard-providers --example meta_dump_outcomes -- OUT_DIR"
        );
        std::process::exit(2);
    };
    std::fs::create_dir_all(&out).unwrap();
    for (path, case) in load_dir(&fixtures()).unwrap() {
        let connector = connector(&case.connector);
        let ctx = case.channel.context();
        let secrets = case.channel.resolve_secrets().unwrap();
        let value = match &case.kind {
            CaseKind::Webhook {
                request,
                expect: Some(_),
                ..
            } => {
                let now = case
                    .now
                    .unwrap_or(Timestamp::from_unix_seconds(1_700_000_000));
                let outcome =
                    receive_webhook(connector.as_ref(), &ctx, &secrets, request, now).unwrap();
                serde_json::to_value(&outcome).unwrap()
            }
            CaseKind::Send {
                message,
                expect_request: Some(_),
                ..
            } => serde_json::to_value(connector.build_send(&ctx, message).unwrap()).unwrap(),
            _ => continue,
        };
        let name = path.file_name().unwrap();
        std::fs::write(
            Path::new(&out).join(name),
            serde_json::to_string_pretty(&value).unwrap(),
        )
        .unwrap();
    }
}
