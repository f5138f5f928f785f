//! Random timelines of customer messages, agent commands and clock advances.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;
use switchboard_core::{Channel, Content, Timestamp};
use switchboard_routing::scenario::{LineKind, Simulator, message};
use switchboard_routing::{
    Action, AgentCommand, Availability, ConvId, Engine, Input, RoutingConfig, TransferTarget,
};

const AGENTS: [&str; 3] = ["a", "b", "c"];
const CONCURRENCY: usize = 2;

fn engine() -> Engine {
    let config: RoutingConfig = serde_json::from_value(json!({
        "defaults": {"concurrency": CONCURRENCY},
        "agents": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
        "accounts": [{"id": "wa", "channel": "whatsapp",
            "messages": {"greeting": "Hi", "chat_ended": "Bye", "dismissal_warning": "?", "dismissed_chat": "x"},
            "dispositions": {"options": ["Done"]},
            "timers": {"queue_selecting_minutes": 30, "unanswered_minutes": 120,
                "chat_timeout_minutes": 600, "offer_timeout_seconds": 30,
                "response_target_minutes": 5, "interaction_inactivity_minutes": 300,
                "inactivity": {"dismiss_after_minutes": 60, "warning_minutes": 5, "method": "auto"}},
            "queues": [
                {"id": "sales", "name": "Sales", "keywords": "buy", "assignment": "percent",
                 "preferred_agent": {"mode": "per_customer", "focus_lock": "when_offline", "fallback_minutes": 2},
                 "agents": [{"agent": "a", "percent": 50}, {"agent": "b", "percent": 50}]},
                {"id": "help", "name": "Support", "priority": 3, "concurrency": 1, "queues": [
                    {"id": "l1", "name": "Level 1", "agents": [{"agent": "b"}, {"agent": "c", "group": 2}]},
                    {"id": "l2", "name": "Level 2", "hidden": true, "keywords": "urgent", "agents": [{"agent": "c"}]}
                ]}
            ]}]
    }))
    .expect("property configuration parses");
    Engine::new(config).expect("property configuration is valid")
}

#[derive(Clone, Debug)]
enum Op {
    Customer(u8, &'static str),
    Availability(usize, Availability),
    Accept(usize, u64),
    Reject(usize, u64),
    Send(usize, u64),
    End(usize, u64),
    Dismiss(usize, u64),
    TransferQueue(usize, u64),
    TransferAgent(usize, u64, usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let words = prop::sample::select(vec![
        "hi", "1", "2", "3", "back", "exit", "stop", "start", "help", "buy", "urgent", "level 1",
        "??",
    ]);
    let agent = 0..AGENTS.len();
    let conv = 0u64..12;
    let availability = prop::sample::select(vec![
        Availability::Available,
        Availability::Away,
        Availability::Offline,
        Availability::Available,
    ]);
    prop_oneof![
        4 => (0u8..5, words).prop_map(|(c, w)| Op::Customer(c, w)),
        2 => (agent.clone(), availability).prop_map(|(a, v)| Op::Availability(a, v)),
        3 => (agent.clone(), conv.clone()).prop_map(|(a, c)| Op::Accept(a, c)),
        1 => (agent.clone(), conv.clone()).prop_map(|(a, c)| Op::Reject(a, c)),
        2 => (agent.clone(), conv.clone()).prop_map(|(a, c)| Op::Send(a, c)),
        1 => (agent.clone(), conv.clone()).prop_map(|(a, c)| Op::End(a, c)),
        1 => (agent.clone(), conv.clone()).prop_map(|(a, c)| Op::Dismiss(a, c)),
        1 => (agent.clone(), conv.clone()).prop_map(|(a, c)| Op::TransferQueue(a, c)),
        1 => (agent.clone(), conv.clone(), agent).prop_map(|(a, c, t)| Op::TransferAgent(a, c, t)),
        3 => prop::sample::select(vec![1u64, 10, 31, 60, 130, 600, 3700, 7300, 90_000])
            .prop_map(Op::Advance),
    ]
}

fn command(op: &Op) -> Option<AgentCommand> {
    let name = |a: &usize| AGENTS[*a].to_owned();
    Some(match op {
        Op::Availability(a, v) => AgentCommand::SetAvailability {
            agent: name(a),
            availability: *v,
        },
        Op::Accept(a, c) => AgentCommand::Accept {
            agent: name(a),
            conversation: ConvId(*c),
        },
        Op::Reject(a, c) => AgentCommand::Reject {
            agent: name(a),
            conversation: ConvId(*c),
        },
        Op::Send(a, c) => AgentCommand::Send {
            agent: name(a),
            conversation: ConvId(*c),
            content: Content::text("hello"),
            tag: None,
        },
        Op::End(a, c) => AgentCommand::End {
            agent: name(a),
            conversation: ConvId(*c),
            dispositions: vec!["Done".into()],
        },
        Op::Dismiss(a, c) => AgentCommand::Dismiss {
            agent: name(a),
            conversation: ConvId(*c),
        },
        Op::TransferQueue(a, c) => AgentCommand::Transfer {
            agent: name(a),
            conversation: ConvId(*c),
            target: TransferTarget::Queue {
                account: None,
                queue: "l2".into(),
            },
        },
        Op::TransferAgent(a, c, t) => AgentCommand::Transfer {
            agent: name(a),
            conversation: ConvId(*c),
            target: TransferTarget::Agent { agent: name(t) },
        },
        Op::Customer(..) | Op::Advance(_) => return None,
    })
}

struct Audit {
    closes: BTreeMap<ConvId, usize>,
}

impl Audit {
    fn check(&mut self, sim: &Simulator, lines: Vec<switchboard_routing::scenario::Line>) {
        for line in lines {
            if let LineKind::Action(Action::Close { conversation, .. }) = line.what {
                *self.closes.entry(conversation).or_default() += 1;
                assert!(!sim.state.conversations.contains_key(&conversation));
            }
        }
        for (id, count) in &self.closes {
            assert_eq!(*count, 1, "{id} closed {count} times");
        }
        for (name, agent) in &sim.state.agents {
            assert!(
                agent.active.len() <= CONCURRENCY,
                "{name} has {:?}",
                agent.active
            );
            for id in &agent.active {
                assert!(
                    sim.state.conversations.contains_key(id),
                    "{name} holds closed {id}"
                );
            }
        }
        for id in &sim.state.waiting {
            assert!(sim.state.conversations.contains_key(id));
        }
        // Every conversation ever started is open or closed, never both, never neither.
        for n in 0..sim.state.next_conversation {
            let id = ConvId(n);
            let open = sim.state.conversations.contains_key(&id);
            let closed = self.closes.contains_key(&id);
            assert!(open != closed, "{id}: open {open}, closed {closed}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_timelines_keep_the_invariants(ops in prop::collection::vec(op(), 1..120)) {
        let mut sim = Simulator::new(engine(), Timestamp::from_unix_seconds(1_750_000_000));
        let mut audit = Audit { closes: BTreeMap::new() };
        for (step, op) in ops.iter().enumerate() {
            let lines = match op {
                Op::Customer(c, text) => {
                    let event = message(&Channel::WhatsApp, &format!("+{c}"), format!("m{step}"), Content::text(*text));
                    sim.input(Input::Inbound { account: "wa".into(), event }, step)
                }
                Op::Advance(secs) => {
                    let until = sim.now.saturating_add(std::time::Duration::from_secs(*secs));
                    sim.advance_to(until, step)
                }
                other => match command(other) {
                    Some(command) => sim.input(Input::Agent(command), step),
                    None => Vec::new(),
                },
            };
            audit.check(&sim, lines);
        }
        // Eight quiet days later every conversation has ended (the 7-day expiry at the latest).
        let until = sim.now.saturating_add(std::time::Duration::from_secs(8 * 24 * 3600));
        let lines = sim.advance_to(until, ops.len());
        audit.check(&sim, lines);
        prop_assert!(sim.state.conversations.is_empty(), "{:?}", sim.state.conversations.keys());
        prop_assert!(sim.state.waiting.is_empty());
        prop_assert_eq!(audit.closes.len() as u64, sim.state.next_conversation);
        for agent in sim.state.agents.values() {
            prop_assert!(agent.active.is_empty());
        }
    }

    #[test]
    fn refused_inputs_leave_the_state_unchanged(ops in prop::collection::vec(op(), 1..60)) {
        let engine = engine();
        let mut sim = Simulator::new(engine.clone(), Timestamp::from_unix_seconds(1_750_000_000));
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Customer(c, text) => {
                    let event = message(&Channel::WhatsApp, &format!("+{c}"), format!("m{step}"), Content::text(*text));
                    sim.input(Input::Inbound { account: "wa".into(), event }, step);
                }
                Op::Advance(secs) => {
                    let until = sim.now.saturating_add(std::time::Duration::from_secs(*secs));
                    sim.advance_to(until, step);
                }
                other => {
                    let Some(command) = command(other) else { continue };
                    let before = sim.state.clone();
                    let mut state = sim.state.clone();
                    if engine.handle(&mut state, Input::Agent(command.clone()), sim.now).is_err() {
                        prop_assert_eq!(&state, &before);
                    }
                    sim.input(Input::Agent(command), step);
                }
            }
        }
    }
}
