use serde_json::json;

use super::*;

#[test]
fn keywords_split_on_commas_and_spaces() {
    let queue: QueueConfig = serde_json::from_value(
        json!({"id": "pay", "name": "Payments", "keywords": "pay, bill  invoice,,card"}),
    )
    .unwrap();
    assert_eq!(
        queue.keyword_list().collect::<Vec<_>>(),
        ["pay", "bill", "invoice", "card"]
    );
}

#[test]
fn defaults_match_the_documented_values() {
    let timers = Timers::default();
    assert_eq!(timers.wait_for_assigned_agent_seconds, 10);
    assert_eq!(timers.wait_for_assigned_queue_seconds, 10);
    let account: AccountConfig =
        serde_json::from_value(json!({"id": "a", "channel": "whatsapp"})).unwrap();
    assert_eq!(account.fallback, FallbackRoute::KeepWaiting);
    assert!(account.transfer.enabled);
}

#[test]
fn unknown_fields_are_errors_not_silently_ignored() {
    let err = serde_json::from_value::<RoutingConfig>(json!({"acounts": []})).unwrap_err();
    assert!(err.to_string().contains("acounts"), "{err}");
}

#[test]
fn copying_a_queue_structure_replaces_the_target() {
    let mut config: RoutingConfig = serde_json::from_value(json!({
        "accounts": [
            {"id": "web", "channel": "sms", "queues": [{"id": "a", "name": "A"}]},
            {"id": "wa", "channel": "whatsapp", "queues": [{"id": "old", "name": "Old"}]},
            {"id": "fb", "channel": "messenger", "copy_queues_from": "wa"}
        ]
    }))
    .unwrap();
    assert!(config.copy_queues("web", "wa"));
    assert_eq!(config.accounts[1].queues[0].id, "a");
    config.resolve_copies();
    assert_eq!(config.accounts[2].queues[0].id, "a");
    assert!(!config.copy_queues("ghost", "wa"));
}

#[test]
fn whatsapp_gets_a_24_hour_window_by_default() {
    let account: AccountConfig =
        serde_json::from_value(json!({"id": "a", "channel": "whatsapp"})).unwrap();
    assert_eq!(
        account.effective_capabilities().window,
        WindowPolicy::whatsapp()
    );
    let sms: AccountConfig = serde_json::from_value(json!({"id": "s", "channel": "sms"})).unwrap();
    assert_eq!(sms.effective_capabilities().window, WindowPolicy::None);
}
