use serde_json::json;

use crate::RoutingConfig;

fn valid() -> serde_json::Value {
    json!({
        "agents": [{"id": "anna"}],
        "contact_lists": {"vip": ["+1"]},
        "accounts": [{"id": "wa", "channel": "whatsapp",
            "queues": [{"id": "support", "name": "Support", "agents": [{"agent": "anna"}]}]}]
    })
}

fn errors(value: serde_json::Value) -> Vec<(String, String)> {
    let config: RoutingConfig = serde_json::from_value(value).unwrap();
    match config.validate() {
        Ok(()) => Vec::new(),
        Err(e) => e.0.into_iter().map(|e| (e.path, e.reason)).collect(),
    }
}

fn paths(value: serde_json::Value) -> Vec<String> {
    errors(value).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn a_minimal_configuration_is_valid() {
    assert_eq!(errors(valid()), []);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let config = json!({
        "defaults": {"concurrency": 0, "exit_words": ["STOP"], "back_words": ["back"]},
        "agents": [{"id": "anna"}, {"id": "anna"}],
        "accounts": [{"id": "wa", "channel": "whatsapp",
            "messages": {"greeting": "x".repeat(919), "chat_ended": "é".repeat(918)},
            "timers": {
                "queue_selecting_minutes": 0,
                "unanswered_minutes": 10081,
                "chat_timeout_minutes": 30,
                "inactivity": {"dismiss_after_minutes": 31, "warning_minutes": 40},
                "wait_for_assigned_agent_seconds": 0,
                "wait_for_assigned_queue_seconds": 2147484
            },
            "whitelist": {"enabled": true, "lists": ["nope"]},
            "dispositions": {"mandatory": true},
            "fallback": {"type": "queue", "queue": "menu"},
            "queues": [
                {"id": "menu", "name": "Stop", "agents": [{"agent": "anna"}], "queues": [
                    {"id": "leaf", "name": "Back", "language": "en", "keywords": "help pay",
                     "agents": [{"agent": "ghost", "proficiency": 0}]}
                ]},
                {"id": "menu", "name": "Sales", "assignment": "percent", "keywords": "pay",
                 "agents": [{"agent": "anna", "percent": 60}]}
            ]}]
    });
    let found = paths(config);
    for expected in [
        "defaults.concurrency",
        "defaults.exit_words[0]",
        "agents[1].id",
        "accounts[0].messages.greeting",
        "accounts[0].timers.queue_selecting_minutes",
        "accounts[0].timers.unanswered_minutes",
        "accounts[0].timers.inactivity.dismiss_after_minutes",
        "accounts[0].timers.inactivity.warning_minutes",
        "accounts[0].timers.wait_for_assigned_agent_seconds",
        "accounts[0].timers.wait_for_assigned_queue_seconds",
        "accounts[0].whitelist.lists[0]",
        "accounts[0].messages.whitelist_rejection",
        "accounts[0].dispositions.options",
        "accounts[0].fallback.queue",
        "accounts[0].queues[0].name",
        "accounts[0].queues[0].agents",
        "accounts[0].queues[0].queues[0].name",
        "accounts[0].queues[0].queues[0].language",
        "accounts[0].queues[0].queues[0].keywords",
        "accounts[0].queues[0].queues[0].agents[0].agent",
        "accounts[0].queues[0].queues[0].agents[0].proficiency",
        "accounts[0].queues[1].id",
        "accounts[0].queues[1].keywords",
        "accounts[0].queues[1].agents",
    ] {
        assert!(
            found.iter().any(|p| p == expected),
            "missing {expected} in {found:#?}"
        );
    }
    assert!(
        !found.iter().any(|p| p == "accounts[0].messages.chat_ended"),
        "918 characters are fine"
    );
}

#[test]
fn protected_words_are_refused_in_queue_names_in_any_case() {
    for word in [
        "STOP",
        "stopall",
        "Unsubscribe",
        "cancel",
        "END",
        "quit",
        "start",
        "yes",
        "unstop",
        "help",
        "info",
    ] {
        let mut config = valid();
        config["accounts"][0]["queues"][0]["name"] = json!(word);
        let errors = errors(config);
        assert_eq!(errors.len(), 1, "{word}");
        assert_eq!(errors[0].0, "accounts[0].queues[0].name");
        assert!(errors[0].1.contains("protected"), "{}", errors[0].1);
    }
}

#[test]
fn configured_exit_and_back_words_are_refused_as_queue_names() {
    let mut config = valid();
    config["defaults"] = json!({"exit_words": ["bye"], "back_words": ["up"]});
    config["accounts"][0]["queues"][0]["name"] = json!("Bye");
    assert_eq!(paths(config.clone()), ["accounts[0].queues[0].name"]);
    config["accounts"][0]["queues"][0]["name"] = json!("up");
    assert_eq!(paths(config), ["accounts[0].queues[0].name"]);
}

#[test]
fn a_tree_without_agents_is_not_enabled() {
    let mut config = valid();
    config["accounts"][0]["queues"][0]["agents"] = json!([]);
    assert_eq!(paths(config), ["accounts[0].queues"]);
}

#[test]
fn multi_language_needs_a_language_on_every_top_level_queue() {
    let mut config = valid();
    config["accounts"][0]["queues"][0]["language"] = json!("en");
    config["accounts"][0]["queues"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "b", "name": "B", "agents": [{"agent": "anna"}]}));
    assert_eq!(paths(config), ["accounts[0].queues"]);
}

#[test]
fn copy_queues_from_unknown_account_self_or_cycle() {
    let mut config = valid();
    config["accounts"][0]["copy_queues_from"] = json!("ghost");
    assert_eq!(paths(config.clone()), ["accounts[0].copy_queues_from"]);
    config["accounts"][0]["copy_queues_from"] = json!("wa");
    assert_eq!(paths(config.clone()), ["accounts[0].copy_queues_from"]);
    let mut other = config["accounts"][0].clone();
    other["id"] = json!("sms");
    config["accounts"][0]["copy_queues_from"] = json!("sms");
    other["copy_queues_from"] = json!("wa");
    config["accounts"].as_array_mut().unwrap().push(other);
    assert_eq!(
        paths(config),
        [
            "accounts[0].copy_queues_from",
            "accounts[1].copy_queues_from"
        ]
    );
}

#[test]
fn focus_lock_when_offline_needs_a_fallback_time() {
    let mut config = valid();
    config["accounts"][0]["queues"][0]["preferred_agent"] =
        json!({"mode": "per_case", "focus_lock": "when_offline"});
    assert_eq!(
        paths(config.clone()),
        ["accounts[0].queues[0].preferred_agent.fallback_minutes"]
    );
    config["accounts"][0]["queues"][0]["preferred_agent"]["fallback_minutes"] = json!(10081);
    assert_eq!(
        paths(config),
        ["accounts[0].queues[0].preferred_agent.fallback_minutes"]
    );
}

#[test]
fn display_lists_every_problem() {
    let mut config = valid();
    config["defaults"] = json!({"concurrency": 0});
    config["accounts"][0]["queues"][0]["name"] = json!("help");
    let config: RoutingConfig = serde_json::from_value(config).unwrap();
    let text = config.validate().unwrap_err().to_string();
    assert!(text.contains("2 problem(s)"), "{text}");
    assert!(text.contains("accounts[0].queues[0].name: `help` is a protected SMS command word"));
}
