//! The webhook handler in process, on a real SQLite store.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hmac::{Hmac, Mac};
use switchboard_store::{SqliteOptions, SqliteStore, Store};
use tower::ServiceExt as _;

use super::{App, router};
use crate::config::Config;

const SECRET: &str = "in-process-app-secret";

fn meta_channel_config() -> Config {
    let text = r#"
        data_dir = "/nonexistent"
        [[channels]]
        id = "wa"
        connector = "meta-whatsapp"
        settings = { phone_number_id = "277321005464405", waba_id = "264937493375603" }
        secrets = { app_secret = "value:in-process-app-secret", verify_token = "value:v", access_token = "value:t" }
    "#;
    Config::parse(text).unwrap()
}

fn signed_message(wamid: &str) -> Request<Body> {
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "264937493375603", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "277321005464405"},
            "contacts": [{"profile": {"name": "Kim"}, "wa_id": "15551234567"}],
            "messages": [{"from": "15551234567", "id": wamid, "timestamp": "1700000000",
                          "type": "text", "text": {"body": "hello"}}]
        }}]}]
    })
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    Request::post("/webhooks/wa")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-hub-signature-256", signature)
        .body(Body::from(body))
        .unwrap()
}

/// When the store cannot write, the provider gets 503 with Retry-After (so it retries) and
/// not a 2xx; once the store is back, the same delivery is stored.
#[tokio::test]
async fn a_store_that_cannot_write_answers_503_and_the_retry_is_stored() {
    let resolved = meta_channel_config().resolve().unwrap();
    let down = SqliteStore::open("sqlite::memory:", SqliteOptions::default())
        .await
        .unwrap();
    down.close().await;
    let app = Arc::new(App::new(
        Arc::new(down),
        resolved.channels.clone(),
        resolved.public_base_url.clone(),
    ));
    let response = router(app, 1 << 20, Duration::from_secs(5))
        .oneshot(signed_message("wamid.down1"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));

    let up: Arc<dyn Store> = Arc::new(
        SqliteStore::open("sqlite::memory:", SqliteOptions::default())
            .await
            .unwrap(),
    );
    let app = Arc::new(App::new(
        up.clone(),
        resolved.channels,
        resolved.public_base_url,
    ));
    let response = router(app, 1 << 20, Duration::from_secs(5))
        .oneshot(signed_message("wamid.down1"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(up.counts().await.unwrap().messages, 1);
}
