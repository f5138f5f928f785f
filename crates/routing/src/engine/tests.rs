use serde_json::{Value, json};
use switchboard_core::{Channel, Content, Timestamp};

use super::*;
use crate::scenario::{LineKind, Simulator, message};
use crate::timers::TimerKind;
use crate::{Availability, ConvId, EndReason};

/// Monday 2025-06-02 10:00 in Rome (08:00Z): open.
const OPEN: &str = "2025-06-02T08:00:00Z";
/// Monday 2025-06-02 21:00 in Rome: closed.
const CLOSED: &str = "2025-06-02T19:00:00Z";

fn config() -> Value {
    json!({
        "agents": [{"id": "anna"}, {"id": "bob"}, {"id": "carl"}],
        "canned_answers": [{"id": "thanks", "text": "Thank you!"}],
        "contact_lists": {"vip": ["+1000"]},
        "accounts": [{
            "id": "wa",
            "channel": "whatsapp",
            "messages": {
                "greeting": "Hello!",
                "after_hours_greeting": "We are closed.",
                "menu_prompt": "Choose:",
                "invalid_choice": "Sorry?",
                "dismissal_warning": "Still there?",
                "dismissed_chat": "Chat dismissed.",
                "chat_ended": "Bye.",
                "help_reply": "Help text."
            },
            "hours": {"time_zone": "Europe/Rome", "mon": ["09:00-18:00"], "tue": ["09:00-18:00"]},
            "timers": {
                "queue_selecting_minutes": 10,
                "unanswered_minutes": 30,
                "unanswered_after_hours_minutes": 600,
                "offer_timeout_seconds": 20
            },
            "dispositions": {"mandatory": true, "options": ["Resolved", "Callback"]},
            "queues": [
                {"id": "sales", "name": "Sales", "keywords": "buy, price", "queues": [
                    {"id": "new", "name": "New customers", "agents": [{"agent": "anna"}]},
                    {"id": "old", "name": "Existing", "agents": [{"agent": "bob"}]}
                ]},
                {"id": "support", "name": "Support", "priority": 5,
                 "agents": [{"agent": "anna"}, {"agent": "bob", "proficiency": 5}]},
                {"id": "pay", "name": "Payments", "hidden": true, "keywords": "pay",
                 "agents": [{"agent": "carl"}]}
            ]
        }]
    })
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn sim_with(config: Value, start: &str) -> Simulator {
    let config: RoutingConfig = serde_json::from_value(config).unwrap();
    Simulator::new(Engine::new(config).unwrap(), at(start))
}

fn sim() -> Simulator {
    sim_with(config(), OPEN)
}

fn actions(lines: Vec<crate::scenario::Line>) -> Vec<Action> {
    lines
        .into_iter()
        .filter_map(|l| match l.what {
            LineKind::Action(a) => Some(a),
            LineKind::Error(e) => panic!("refused: {e}"),
            LineKind::Transcript(_) => None,
        })
        .collect()
}

fn say(sim: &mut Simulator, from: &str, text: &str) -> Vec<Action> {
    say_content(sim, from, Content::text(text))
}

fn say_content(sim: &mut Simulator, from: &str, content: Content) -> Vec<Action> {
    let event = message(&Channel::WhatsApp, from, "m".into(), content);
    actions(sim.input(
        Input::Inbound {
            account: "wa".into(),
            event,
        },
        0,
    ))
}

fn run(sim: &mut Simulator, command: Value) -> Result<Vec<Action>, InputError> {
    let command: AgentCommand = serde_json::from_value(command).unwrap();
    let now = sim.now;
    let result = sim
        .engine
        .handle(&mut sim.state, Input::Agent(command), now);
    if let Ok(actions) = &result {
        for a in actions {
            match a {
                Action::StartTimer { id, due } => {
                    sim.timers.insert(*id, *due);
                }
                Action::CancelTimer { id } => {
                    sim.timers.remove(id);
                }
                _ => {}
            }
        }
    }
    result
}

fn ok(sim: &mut Simulator, command: Value) -> Vec<Action> {
    run(sim, command).unwrap()
}

fn available(sim: &mut Simulator, agent: &str) -> Vec<Action> {
    ok(
        sim,
        json!({"command": "set_availability", "agent": agent, "availability": "available"}),
    )
}

fn advance(sim: &mut Simulator, secs: u64) -> Vec<Action> {
    let until = sim.now.saturating_add(std::time::Duration::from_secs(secs));
    actions(sim.advance_to(until, 0))
}

fn texts(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { message, .. } => match &message.content {
                Content::Text { text, .. } => Some(text.clone()),
                Content::Template(t) => Some(format!("template:{}", t.name)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn offers(actions: &[Action]) -> Vec<(ConvId, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Offer {
                conversation,
                agent,
                ..
            } => Some((*conversation, agent.clone())),
            _ => None,
        })
        .collect()
}

fn closed(actions: &[Action]) -> Option<(EndReason, Vec<String>)> {
    actions.iter().find_map(|a| match a {
        Action::Close {
            reason,
            dispositions,
            ..
        } => Some((*reason, dispositions.clone())),
        _ => None,
    })
}

const C0: ConvId = ConvId(0);

/// Customer reaches the `support` leaf (option 2) and `agent` accepts.
fn handled_by(sim: &mut Simulator, agent: &str) {
    available(sim, agent);
    say(sim, "+1000", "hi");
    let out = say(sim, "+1000", "2");
    assert_eq!(offers(&out), [(C0, agent.to_owned())]);
    ok(
        sim,
        json!({"command": "accept", "agent": agent, "conversation": "conv_0"}),
    );
}

#[test]
fn first_contact_greets_then_shows_the_numbered_menu() {
    let mut sim = sim();
    let out = say(&mut sim, "+1000", "hello");
    assert_eq!(texts(&out), ["Hello!", "Choose:\n1. Sales\n2. Support"]);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Emit(IntegrationEvent::ConversationStarted {
            after_hours: false,
            ..
        })
    )));
    assert_eq!(sim.state.contacts["wa/+1000"].open, Some(C0));
}

#[test]
fn menu_by_number_title_invalid_back_and_exit() {
    let mut sim = sim();
    say(&mut sim, "+1000", "hello");
    let out = say(&mut sim, "+1000", "sales");
    assert_eq!(texts(&out), ["Choose:\n1. New customers\n2. Existing"]);
    let out = say(&mut sim, "+1000", "7");
    assert_eq!(
        texts(&out),
        ["Sorry?", "Choose:\n1. New customers\n2. Existing"]
    );
    let out = say(&mut sim, "+1000", "back");
    assert_eq!(texts(&out), ["Choose:\n1. Sales\n2. Support"]);
    let out = say(&mut sim, "+1000", "Exit");
    assert_eq!(closed(&out), Some((EndReason::Customer, vec![])));
    assert_eq!(texts(&out), ["Bye."]);
    assert!(sim.state.conversations.is_empty());
}

#[test]
fn keyword_in_first_message_goes_straight_to_a_hidden_queue() {
    let mut sim = sim();
    available(&mut sim, "carl");
    let out = say(&mut sim, "+1000", "I want to PAY my bill");
    assert_eq!(texts(&out), ["Hello!"], "no menu");
    assert_eq!(offers(&out), [(C0, "carl".into())]);
}

#[test]
fn keyword_to_a_menu_level_shows_that_level() {
    let mut sim = sim();
    let out = say(&mut sim, "+1000", "price?");
    assert_eq!(
        texts(&out),
        ["Hello!", "Choose:\n1. New customers\n2. Existing"]
    );
}

#[test]
fn after_hours_message_and_after_hours_expiration() {
    let mut cfg = config();
    cfg["accounts"][0]["messages"]["skip_greeting_after_hours"] = json!(true);
    let mut sim = sim_with(cfg, CLOSED);
    let out = say(&mut sim, "+1000", "hi");
    assert_eq!(texts(&out)[0], "We are closed.");
    let out = say(&mut sim, "+1000", "2");
    let due = out.iter().find_map(|a| match a {
        Action::StartTimer { id, due } if id.kind == TimerKind::Unanswered => Some(*due),
        _ => None,
    });
    assert_eq!(
        due,
        Some(at(CLOSED).saturating_add(std::time::Duration::from_secs(600 * 60)))
    );
    let out = advance(&mut sim, 600 * 60);
    assert_eq!(closed(&out), Some((EndReason::ExpiredInQueue, vec![])));
}

#[test]
fn queue_selection_expires() {
    let mut sim = sim();
    say(&mut sim, "+1000", "hi");
    let out = advance(&mut sim, 10 * 60);
    assert_eq!(closed(&out), Some((EndReason::ExpiredInQueue, vec![])));
}

#[test]
fn highest_proficiency_first() {
    let mut sim = sim();
    available(&mut sim, "anna");
    available(&mut sim, "bob");
    say(&mut sim, "+1000", "hi");
    let out = say(&mut sim, "+1000", "2");
    assert_eq!(offers(&out), [(C0, "bob".into())]);
}

#[test]
fn offer_not_accepted_in_time_is_rona_and_goes_to_the_next_agent() {
    let mut sim = sim();
    available(&mut sim, "anna");
    available(&mut sim, "bob");
    say(&mut sim, "+1000", "hi");
    say(&mut sim, "+1000", "2");
    let out = advance(&mut sim, 20);
    assert!(out.contains(&Action::WithdrawOffer {
        conversation: C0,
        agent: "bob".into()
    }));
    assert!(
        out.contains(&Action::Emit(IntegrationEvent::AgentAvailability {
            agent: "bob".into(),
            availability: Availability::Rona
        }))
    );
    assert_eq!(offers(&out), [(C0, "anna".into())]);
    assert_eq!(sim.state.agent("bob").availability, Availability::Rona);
    // RONA: nothing more for bob, even a new conversation, until he is available again.
    say(&mut sim, "+2000", "hi");
    let out = say(&mut sim, "+2000", "2");
    assert_eq!(offers(&out), [(ConvId(1), "anna".into())]);
    assert_eq!(sim.state.metrics.queues["wa/support"].rona, 1);
}

#[test]
fn rejected_offer_returns_to_queue_for_another_agent() {
    let mut sim = sim();
    available(&mut sim, "anna");
    available(&mut sim, "bob");
    say(&mut sim, "+1000", "hi");
    say(&mut sim, "+1000", "2");
    let out = ok(
        &mut sim,
        json!({"command": "reject", "agent": "bob", "conversation": "conv_0"}),
    );
    assert_eq!(offers(&out), [(C0, "anna".into())]);
    assert_eq!(sim.state.agent("bob").availability, Availability::Available);
}

#[test]
fn concurrency_limits_offers() {
    let mut cfg = config();
    cfg["defaults"] = json!({"concurrency": 1});
    let mut sim = sim_with(cfg, OPEN);
    available(&mut sim, "carl");
    say(&mut sim, "+1000", "pay");
    let out = say(&mut sim, "+2000", "pay");
    assert!(offers(&out).is_empty());
    ok(
        &mut sim,
        json!({"command": "accept", "agent": "carl", "conversation": "conv_0"}),
    );
    let out = ok(
        &mut sim,
        json!({"command": "end", "agent": "carl", "conversation": "conv_0", "dispositions": ["resolved"]}),
    );
    assert_eq!(
        closed(&out),
        Some((EndReason::Agent, vec!["Resolved".into()]))
    );
    assert_eq!(
        offers(&out),
        [(ConvId(1), "carl".into())],
        "the freed slot goes to the waiting chat"
    );
}

#[test]
fn higher_priority_queue_first_for_agents_in_several_queues() {
    let mut sim = sim();
    say(&mut sim, "+1000", "hi");
    say(&mut sim, "+1000", "1");
    say(&mut sim, "+1000", "1"); // sales/new: anna
    say(&mut sim, "+2000", "hi");
    say(&mut sim, "+2000", "2"); // support (priority 5): anna, bob
    let mut cfg_sim = sim;
    let out = ok(
        &mut cfg_sim,
        json!({"command": "set_availability", "agent": "anna", "availability": "available"}),
    );
    assert_eq!(offers(&out)[0], (ConvId(1), "anna".into()));
}

#[test]
fn cascade_groups_in_order_and_percent_allocation() {
    let cfg = json!({
        "defaults": {"concurrency": 100},
        "agents": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
        "accounts": [
            {"id": "wa", "channel": "whatsapp", "queues": [
                {"id": "q", "name": "Q", "agents": [
                    {"agent": "a", "group": 2, "proficiency": 9},
                    {"agent": "b", "group": 1, "proficiency": 1}
                ]}
            ]}
        ]
    });
    let mut sim = sim_with(cfg.clone(), OPEN);
    available(&mut sim, "a");
    available(&mut sim, "b");
    let out = say(&mut sim, "+1", "hi");
    assert_eq!(offers(&out), [(C0, "b".into())]);

    let mut cfg = cfg;
    cfg["accounts"][0]["queues"][0] = json!({"id": "q", "name": "Q", "assignment": "percent", "agents": [
        {"agent": "a", "percent": 75}, {"agent": "b", "percent": 25}
    ]});
    let mut sim = sim_with(cfg, OPEN);
    available(&mut sim, "a");
    available(&mut sim, "b");
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..40 {
        let out = say(&mut sim, &format!("+{i}"), "hi");
        for (_, agent) in offers(&out) {
            *counts.entry(agent).or_insert(0) += 1;
        }
    }
    assert_eq!(counts["a"], 30);
    assert_eq!(counts["b"], 10);
}

#[test]
fn preferred_agent_with_focus_lock_when_offline_waits_then_falls_back() {
    let mut cfg = config();
    cfg["accounts"][0]["queues"][1]["preferred_agent"] =
        json!({"mode": "per_customer", "focus_lock": "when_offline", "fallback_minutes": 5});
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "bob");
    ok(
        &mut sim,
        json!({"command": "end", "agent": "bob", "conversation": "conv_0", "dispositions": ["Resolved"]}),
    );
    ok(
        &mut sim,
        json!({"command": "set_availability", "agent": "bob", "availability": "away"}),
    );
    available(&mut sim, "anna");
    say(&mut sim, "+1000", "hi again");
    let out = say(&mut sim, "+1000", "2");
    assert!(offers(&out).is_empty(), "waits for bob");
    let out = advance(&mut sim, 5 * 60);
    assert_eq!(offers(&out), [(ConvId(1), "anna".into())]);
}

#[test]
fn preferred_agent_when_available_routes_to_the_preferred_agent_first() {
    let mut cfg = config();
    cfg["accounts"][0]["queues"][1]["preferred_agent"] = json!({"mode": "per_customer"});
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "anna");
    ok(
        &mut sim,
        json!({"command": "end", "agent": "anna", "conversation": "conv_0", "dispositions": ["Resolved"]}),
    );
    available(&mut sim, "bob");
    say(&mut sim, "+1000", "hi again");
    let out = say(&mut sim, "+1000", "2");
    assert_eq!(
        offers(&out),
        [(ConvId(1), "anna".into())],
        "anna despite bob's proficiency"
    );
}

#[test]
fn new_message_waits_for_away_agent_then_queue_then_fallback() {
    let mut cfg = config();
    cfg["accounts"][0]["fallback"] = json!({"type": "close"});
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "anna");
    ok(
        &mut sim,
        json!({"command": "set_availability", "agent": "anna", "availability": "away"}),
    );
    let out = say(&mut sim, "+1000", "are you there?");
    assert!(matches!(
        out.iter().find(|a| matches!(a, Action::Offer { .. })),
        Some(Action::Offer {
            kind: OfferKind::Returning,
            ..
        })
    ));
    let out = advance(&mut sim, 10);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Emit(IntegrationEvent::Queued { .. })))
    );
    assert!(sim.state.agent("anna").active.is_empty());
    let out = advance(&mut sim, 10);
    assert_eq!(closed(&out), Some((EndReason::ExpiredInQueue, vec![])));
}

#[test]
fn away_agent_can_accept_the_returning_message() {
    let mut sim = sim();
    handled_by(&mut sim, "anna");
    ok(
        &mut sim,
        json!({"command": "set_availability", "agent": "anna", "availability": "offline"}),
    );
    say(&mut sim, "+1000", "hello?");
    ok(
        &mut sim,
        json!({"command": "accept", "agent": "anna", "conversation": "conv_0"}),
    );
    assert_eq!(sim.state.conversations[&C0].phase, Phase::Assigned);
    assert!(
        advance(&mut sim, 60)
            .iter()
            .all(|a| !matches!(a, Action::Close { .. }))
    );
}

#[test]
fn transfer_to_queue_and_to_agent() {
    let mut sim = sim();
    handled_by(&mut sim, "bob");
    available(&mut sim, "carl");
    let out = ok(
        &mut sim,
        json!({"command": "transfer", "agent": "bob", "conversation": "conv_0",
        "target": {"type": "queue", "queue": "pay"}}),
    );
    assert_eq!(offers(&out), [(C0, "carl".into())]);
    let out = ok(
        &mut sim,
        json!({"command": "accept", "agent": "carl", "conversation": "conv_0"}),
    );
    assert!(out.contains(&Action::Emit(IntegrationEvent::Transferred {
        conversation: C0,
        from: "bob".into(),
        to: "carl".into()
    })));
    assert!(sim.state.agent("bob").active.is_empty());
    assert_eq!(sim.state.conversations[&C0].queue.as_deref(), Some("pay"));

    // To an agent who lets it lapse: it fails back to carl.
    let out = ok(
        &mut sim,
        json!({"command": "transfer", "agent": "carl", "conversation": "conv_0",
        "target": {"type": "agent", "agent": "bob"}}),
    );
    assert_eq!(offers(&out), [(C0, "bob".into())]);
    let out = advance(&mut sim, 20);
    assert!(
        out.contains(&Action::Emit(IntegrationEvent::TransferFailed {
            conversation: C0,
            agent: "carl".into()
        }))
    );
    assert_eq!(sim.state.conversations[&C0].agent.as_deref(), Some("carl"));
    assert_eq!(sim.state.conversations[&C0].phase, Phase::Assigned);
}

#[test]
fn transfer_timeout_keeps_the_conversation_with_the_agent() {
    let mut sim = sim();
    handled_by(&mut sim, "bob");
    ok(
        &mut sim,
        json!({"command": "transfer", "agent": "bob", "conversation": "conv_0",
        "target": {"type": "queue", "queue": "pay"}}),
    );
    let out = advance(&mut sim, 60);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Emit(IntegrationEvent::TransferFailed { .. })))
    );
    assert!(!sim.state.waiting.contains(&C0));
}

#[test]
fn whatsapp_transfers_stay_on_their_account() {
    let mut cfg = config();
    let mut other = cfg["accounts"][0].clone();
    other["id"] = json!("sms");
    other["channel"] = json!("sms");
    cfg["accounts"].as_array_mut().unwrap().push(other);
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "bob");
    let err = run(
        &mut sim,
        json!({"command": "transfer", "agent": "bob", "conversation": "conv_0",
        "target": {"type": "queue", "account": "sms", "queue": "pay"}}),
    )
    .unwrap_err();
    assert!(matches!(err, InputError::Transfer(_)), "{err}");
}

#[test]
fn inactivity_warning_auto_dismissal_and_return_on_reply() {
    let mut cfg = config();
    cfg["accounts"][0]["timers"]["inactivity"] =
        json!({"dismiss_after_minutes": 10, "warning_minutes": 2, "method": "auto"});
    cfg["accounts"][0]["timers"]["chat_timeout_minutes"] = json!(60);
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "anna");
    let out = advance(&mut sim, 8 * 60);
    assert_eq!(texts(&out), ["Still there?"]);
    assert!(out.iter().any(
        |a| matches!(a, Action::WriteTranscript(w) if w.trigger == Trigger::DismissalWarning)
    ));
    let out = advance(&mut sim, 2 * 60);
    assert_eq!(texts(&out), ["Chat dismissed."]);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::WriteTranscript(w) if w.trigger == Trigger::Dismissed))
    );
    assert_eq!(sim.state.conversations[&C0].phase, Phase::Dismissed);
    assert!(sim.state.agent("anna").active.is_empty());
    let out = say(&mut sim, "+1000", "back again");
    assert_eq!(offers(&out), [(C0, "anna".into())]);
}

#[test]
fn dismissed_chat_times_out_without_a_reply() {
    let mut cfg = config();
    cfg["accounts"][0]["timers"]["inactivity"] = json!({"dismiss_after_minutes": 10});
    cfg["accounts"][0]["timers"]["chat_timeout_minutes"] = json!(60);
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "anna");
    let out = advance(&mut sim, 60 * 60);
    assert_eq!(closed(&out), Some((EndReason::Timeout, vec![])));
}

#[test]
fn manual_dismissal_asks_the_agent() {
    let mut cfg = config();
    cfg["accounts"][0]["timers"]["inactivity"] =
        json!({"dismiss_after_minutes": 10, "method": "manual"});
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "anna");
    let out = advance(&mut sim, 10 * 60);
    assert!(
        out.contains(&Action::Emit(IntegrationEvent::DismissalSuggested {
            conversation: C0,
            agent: "anna".into()
        }))
    );
    let out = ok(
        &mut sim,
        json!({"command": "dismiss", "agent": "anna", "conversation": "conv_0"}),
    );
    assert_eq!(texts(&out), ["Chat dismissed."]);
}

#[test]
fn seven_day_compliance_expiry_whatever_the_settings() {
    let mut sim = sim();
    handled_by(&mut sim, "anna");
    let out = advance(&mut sim, 7 * 24 * 3600);
    assert_eq!(closed(&out), Some((EndReason::Timeout, vec![])));
}

#[test]
fn interaction_inactivity_closes_after_the_last_agent_message() {
    let mut cfg = config();
    cfg["accounts"][0]["timers"]["interaction_inactivity_minutes"] = json!(30);
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "anna");
    ok(
        &mut sim,
        json!({"command": "send", "agent": "anna", "conversation": "conv_0",
        "content": {"type": "text", "text": "Anything else?"}}),
    );
    let out = advance(&mut sim, 30 * 60);
    assert_eq!(
        closed(&out),
        Some((EndReason::Timeout, vec!["Closed for inactivity".into()]))
    );
}

#[test]
fn response_target_breach_is_counted() {
    let mut cfg = config();
    cfg["accounts"][0]["timers"]["response_target_minutes"] = json!(2);
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "anna");
    let out = advance(&mut sim, 120);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Emit(IntegrationEvent::ResponseTargetBreached { .. })
    )));
    assert_eq!(sim.state.metrics.response_target_breaches, 1);
    ok(
        &mut sim,
        json!({"command": "send_canned", "agent": "anna", "conversation": "conv_0", "canned": "thanks"}),
    );
    say(&mut sim, "+1000", "ok");
    assert!(
        sim.state.conversations[&C0]
            .timer(TimerKind::ResponseTarget)
            .is_some()
    );
}

#[test]
fn stop_ends_and_blocks_outbound_until_start_help_is_answered() {
    let mut sim = sim();
    handled_by(&mut sim, "anna");
    let out = say(&mut sim, "+1000", "STOP");
    assert_eq!(closed(&out), Some((EndReason::Customer, vec![])));
    assert!(texts(&out).is_empty(), "no chat-ended message after STOP");
    let out = say(&mut sim, "+1000", "help");
    assert_eq!(texts(&out), ["Help text."]);
    let out = say(&mut sim, "+1000", "hi");
    assert!(
        texts(&out).is_empty(),
        "greeting suppressed while opted out"
    );
    let out = say(&mut sim, "+1000", "START");
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Emit(IntegrationEvent::OptedIn { .. })))
    );
    let out = say(&mut sim, "+1000", "2");
    assert!(!offers(&out).is_empty() || sim.state.waiting.contains(&ConvId(1)));
}

#[test]
fn agent_send_to_opted_out_contact_is_refused() {
    let mut sim = sim();
    handled_by(&mut sim, "anna");
    let event = switchboard_core::InboundEvent::OptOut(switchboard_core::Consent {
        id: "c".into(),
        from: crate::scenario::customer_address(&Channel::WhatsApp, "+2000"),
        to: None,
        keyword: Some("STOP".into()),
        timestamp: None,
    });
    actions(sim.input(
        Input::Inbound {
            account: "wa".into(),
            event,
        },
        0,
    ));
    assert!(sim.state.contacts["wa/+2000"].opted_out);
    assert!(!sim.state.contacts["wa/+1000"].opted_out);
}

#[test]
fn whitelist_rejects_unknown_contacts_and_closes() {
    let mut cfg = config();
    cfg["accounts"][0]["whitelist"] = json!({"enabled": true, "lists": ["vip"]});
    cfg["accounts"][0]["messages"]["whitelist_rejection"] = json!("Not allowed.");
    let mut sim = sim_with(cfg, OPEN);
    let out = say(&mut sim, "+9999", "hi");
    assert_eq!(texts(&out), ["Not allowed."]);
    assert_eq!(closed(&out), Some((EndReason::NotWhitelisted, vec![])));
    let out = say(&mut sim, "+1000", "hi");
    assert_eq!(texts(&out)[0], "Hello!");
}

#[test]
fn window_closed_refuses_free_text_or_substitutes_the_recontact_template() {
    let mut cfg = config();
    cfg["accounts"][0]["timers"]["unanswered_minutes"] = json!(10080);
    let mut sim = sim_with(cfg.clone(), OPEN);
    handled_by(&mut sim, "anna");
    sim.now = sim
        .now
        .saturating_add(std::time::Duration::from_secs(25 * 3600));
    let out = ok(
        &mut sim,
        json!({"command": "send", "agent": "anna", "conversation": "conv_0",
        "content": {"type": "text", "text": "Hello?"}}),
    );
    assert!(
        matches!(&out[..], [Action::SendRefused { reason, .. }] if reason.contains("window is closed"))
    );

    cfg["accounts"][0]["recontact_template"] = json!({"name": "recontact", "language": "en"});
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "anna");
    sim.now = sim
        .now
        .saturating_add(std::time::Duration::from_secs(25 * 3600));
    let out = ok(
        &mut sim,
        json!({"command": "send", "agent": "anna", "conversation": "conv_0",
        "content": {"type": "text", "text": "Hello?"}}),
    );
    assert_eq!(texts(&out), ["template:recontact"]);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Send {
            recontact_template: true,
            ..
        }
    )));
}

#[test]
fn transcript_has_every_message_and_the_end_reason() {
    let mut sim = sim();
    available(&mut sim, "anna");
    say(&mut sim, "+1000", "hi");
    say(&mut sim, "+1000", "2");
    ok(
        &mut sim,
        json!({"command": "accept", "agent": "anna", "conversation": "conv_0"}),
    );
    let send: AgentCommand = serde_json::from_value(json!({"command": "send", "agent": "anna",
        "conversation": "conv_0", "content": {"type": "text", "text": "How can I help?"}}))
    .unwrap();
    actions(sim.input(Input::Agent(send), 0));
    say_content(
        &mut sim,
        "+1000",
        Content::Media(switchboard_core::Media::from_provider_id(
            switchboard_core::MediaKind::Image,
            "media-1",
        )),
    );
    let command: AgentCommand = serde_json::from_value(
        json!({"command": "end", "agent": "anna", "conversation": "conv_0", "dispositions": ["Resolved"]}),
    )
    .unwrap();
    let lines = sim.input(Input::Agent(command), 0);
    let transcript = lines
        .iter()
        .find_map(|l| match &l.what {
            LineKind::Transcript(t) => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    let from: Vec<_> = transcript.messages.iter().map(|m| m.from.clone()).collect();
    use crate::transcript::Party;
    assert_eq!(
        from,
        [
            Party::Customer,
            Party::System,
            Party::System,
            Party::Customer,
            Party::Agent("anna".into()),
            Party::Customer,
            Party::System
        ]
    );
    assert_eq!(transcript.write.reason, Some(EndReason::Agent));
    assert_eq!(transcript.write.dispositions, ["Resolved"]);
    assert_eq!(
        transcript.write.comment.as_deref(),
        Some("Chat session ended by the agent")
    );
}

#[test]
fn mandatory_disposition_and_unknown_disposition_are_refused_without_change() {
    let mut sim = sim();
    handled_by(&mut sim, "anna");
    let before = sim.state.clone();
    let err = run(
        &mut sim,
        json!({"command": "end", "agent": "anna", "conversation": "conv_0"}),
    )
    .unwrap_err();
    assert!(matches!(err, InputError::Disposition(_)));
    let err = run(&mut sim, json!({"command": "end", "agent": "anna", "conversation": "conv_0", "dispositions": ["Nope"]})).unwrap_err();
    assert!(matches!(err, InputError::Disposition(_)));
    assert_eq!(sim.state, before);
}

#[test]
fn wrong_agent_and_unknown_ids_are_refused() {
    let mut sim = sim();
    handled_by(&mut sim, "anna");
    assert!(matches!(
        run(
            &mut sim,
            json!({"command": "send", "agent": "bob", "conversation": "conv_0", "content": {"type": "text", "text": "x"}})
        ),
        Err(InputError::WrongState { .. })
    ));
    assert!(matches!(
        run(
            &mut sim,
            json!({"command": "accept", "agent": "zed", "conversation": "conv_0"})
        ),
        Err(InputError::UnknownAgent(_))
    ));
    assert!(matches!(
        run(
            &mut sim,
            json!({"command": "accept", "agent": "anna", "conversation": "conv_9"})
        ),
        Err(InputError::UnknownConversation(_))
    ));
}

#[test]
fn stale_timer_firings_are_ignored() {
    let mut sim = sim();
    say(&mut sim, "+1000", "hi");
    let id = crate::TimerId {
        conversation: C0,
        kind: TimerKind::QueueSelecting,
    };
    let now = sim.now;
    let out = sim
        .engine
        .handle(&mut sim.state, Input::Timer { id }, now)
        .unwrap();
    assert!(out.is_empty(), "fired before its due time");
    let id = crate::TimerId {
        conversation: C0,
        kind: TimerKind::Offer,
    };
    let out = sim
        .engine
        .handle(&mut sim.state, Input::Timer { id }, now)
        .unwrap();
    assert!(out.is_empty(), "no such timer");
}

#[test]
fn multi_language_tree_sets_language_and_localized_messages() {
    let cfg = json!({
        "agents": [{"id": "a"}],
        "accounts": [{"id": "wa", "channel": "whatsapp",
            "messages": {"menu_prompt": "Language?", "chat_ended": "Bye"},
            "localized_messages": {"it": {"menu_prompt": "Scegli:", "chat_ended": "Ciao"}},
            "queues": [
                {"id": "en", "name": "English", "language": "en", "queues": [
                    {"id": "en-sales", "name": "Sales", "agents": [{"agent": "a"}]},
                    {"id": "en-help", "name": "Support", "agents": [{"agent": "a"}]}]},
                {"id": "it", "name": "Italiano", "language": "it", "queues": [
                    {"id": "it-sales", "name": "Vendite", "agents": [{"agent": "a"}]},
                    {"id": "it-help", "name": "Assistenza", "agents": [{"agent": "a"}]}]}
            ]}]
    });
    let mut sim = sim_with(cfg, OPEN);
    let out = say(&mut sim, "+1", "ciao");
    assert_eq!(texts(&out), ["Language?\n1. English\n2. Italiano"]);
    let out = say(&mut sim, "+1", "italiano");
    assert_eq!(texts(&out), ["Scegli:\n1. Vendite\n2. Assistenza"]);
    assert_eq!(sim.state.conversations[&C0].language.as_deref(), Some("it"));
    let out = say(&mut sim, "+1", "exit");
    assert_eq!(texts(&out), ["Ciao"]);
}

#[test]
fn one_open_conversation_stays_under_two_kilobytes() {
    let mut cfg = config();
    cfg["accounts"][0]["timers"]["inactivity"] =
        json!({"dismiss_after_minutes": 10, "warning_minutes": 2});
    cfg["accounts"][0]["timers"]["chat_timeout_minutes"] = json!(60);
    cfg["accounts"][0]["timers"]["response_target_minutes"] = json!(5);
    let mut sim = sim_with(cfg, OPEN);
    handled_by(&mut sim, "anna");
    for i in 0..50 {
        say(
            &mut sim,
            "+1000",
            &format!("message {i} with some words in it"),
        );
    }
    let conv = serde_json::to_vec(&sim.state.conversations[&C0]).unwrap();
    assert!(conv.len() < 2048, "{} bytes", conv.len());
}

#[test]
fn state_round_trips_through_json() {
    let mut sim = sim();
    handled_by(&mut sim, "anna");
    let json = serde_json::to_string(&sim.state).unwrap();
    let back: State = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sim.state);
}
