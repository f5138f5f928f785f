//! Events per second through the engine, and the size of one open conversation.
//!
//! Run: `cargo bench -p switchboard-routing --bench engine -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use switchboard_core::{Channel, Content, Timestamp};
use switchboard_routing::scenario::message;
use switchboard_routing::{
    AgentCommand, Availability, ConvId, Engine, Input, RoutingConfig, State,
};

const AGENTS: usize = 20;

fn engine() -> Engine {
    let agents: Vec<_> = (0..AGENTS)
        .map(|i| json!({"id": format!("agent{i}")}))
        .collect();
    let members: Vec<_> = (0..AGENTS)
        .map(|i| json!({"agent": format!("agent{i}"), "proficiency": 1 + i % 5}))
        .collect();
    let config: RoutingConfig = serde_json::from_value(json!({
        "defaults": {"concurrency": 1000},
        "agents": agents,
        "accounts": [{"id": "wa", "channel": "whatsapp",
            "messages": {"greeting": "Hello!", "chat_ended": "Bye", "menu_prompt": "Choose:"},
            "hours": {"time_zone": "Europe/Rome", "mon": ["00:00-24:00"]},
            "timers": {"unanswered_minutes": 30, "chat_timeout_minutes": 600, "response_target_minutes": 5,
                "inactivity": {"dismiss_after_minutes": 60, "warning_minutes": 5}},
            "queues": [
                {"id": "sales", "name": "Sales", "keywords": "buy", "agents": members.clone()},
                {"id": "support", "name": "Support", "agents": members}
            ]}]
    }))
    .expect("bench configuration parses");
    Engine::new(config).expect("bench configuration is valid")
}

/// One conversation's life: first contact with a keyword, accept, 3 customer and 3 agent
/// messages, end. 9 inputs per conversation.
fn timeline(conversations: u64) -> Vec<Input> {
    let mut inputs = Vec::new();
    for i in 0..AGENTS {
        inputs.push(Input::Agent(AgentCommand::SetAvailability {
            agent: format!("agent{i}"),
            availability: Availability::Available,
        }));
    }
    for c in 0..conversations {
        let from = format!("+1555{c:07}");
        let customer = |text: &str, n: u64| Input::Inbound {
            account: "wa".into(),
            event: message(
                &Channel::WhatsApp,
                &from,
                format!("m{c}.{n}"),
                Content::text(text),
            ),
        };
        // Cascade with equal groups: the agent is the most proficient, least busy one; the
        // bench accepts with whoever the engine picked, so look it up by replaying the rule.
        inputs.push(customer("I want to buy", 0));
        inputs.push(Input::Agent(AgentCommand::Accept {
            agent: String::new(),
            conversation: ConvId(c),
        }));
        for n in 1..=3 {
            inputs.push(customer("a question", n));
            inputs.push(Input::Agent(AgentCommand::Send {
                agent: String::new(),
                conversation: ConvId(c),
                content: Content::text("an answer"),
                tag: None,
            }));
        }
        inputs.push(Input::Agent(AgentCommand::End {
            agent: String::new(),
            conversation: ConvId(c),
            dispositions: vec![],
        }));
    }
    inputs
}

/// Runs the timeline, filling in the agent the engine chose for each conversation.
fn run(engine: &Engine, inputs: &[Input]) -> usize {
    let mut state = State::new();
    let mut out = Vec::with_capacity(64);
    let mut now = Timestamp::parse_rfc3339("2025-06-02T08:00:00Z").expect("valid timestamp");
    let mut actions = 0;
    for input in inputs {
        let input = match input {
            Input::Agent(command) => Input::Agent(with_agent(&state, command)),
            other => other.clone(),
        };
        out.clear();
        now = now.saturating_add(Duration::from_millis(10));
        let _ = engine.handle_into(&mut state, input, now, &mut out);
        actions += out.len();
    }
    actions
}

fn with_agent(state: &State, command: &AgentCommand) -> AgentCommand {
    let handler = |id: &ConvId| {
        state.conversation(*id).and_then(|c| match &c.phase {
            switchboard_routing::Phase::Offered { agent, .. } => Some(agent.clone()),
            _ => c.agent.clone(),
        })
    };
    let mut command = command.clone();
    match &mut command {
        AgentCommand::Accept {
            agent,
            conversation,
        }
        | AgentCommand::Send {
            agent,
            conversation,
            ..
        }
        | AgentCommand::End {
            agent,
            conversation,
            ..
        } => {
            if let Some(h) = handler(conversation) {
                *agent = h;
            }
        }
        _ => {}
    }
    command
}

fn events_per_second(c: &mut Criterion) {
    let engine = engine();
    let inputs = timeline(2_000);
    let actions = run(&engine, &inputs);
    println!("{} inputs -> {actions} actions per run", inputs.len());
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function("conversation_lifecycles", |b| {
        b.iter(|| black_box(run(&engine, &inputs)))
    });
    group.finish();
}

fn open_conversation_size(c: &mut Criterion) {
    // 1000 open, assigned conversations: report the serialized size per conversation (with its
    // contact) once, and time serializing the whole state.
    let engine = engine();
    let mut state = State::new();
    let mut now = Timestamp::parse_rfc3339("2025-06-02T08:00:00Z").expect("valid timestamp");
    let mut inputs = timeline(1_000);
    inputs.retain(|i| !matches!(i, Input::Agent(AgentCommand::End { .. })));
    for input in &inputs {
        let input = match input {
            Input::Agent(command) => Input::Agent(with_agent(&state, command)),
            other => other.clone(),
        };
        now = now.saturating_add(Duration::from_millis(10));
        let _ = engine.handle(&mut state, input, now);
    }
    let open = state.conversations.len().max(1);
    let conversations: usize = state
        .conversations
        .values()
        .map(|c| serde_json::to_vec(c).map_or(0, |v| v.len()))
        .sum();
    let contacts: usize = state
        .contacts
        .values()
        .map(|c| serde_json::to_vec(c).map_or(0, |v| v.len()))
        .sum();
    let whole = serde_json::to_vec(&state).map_or(0, |v| v.len());
    println!(
        "open conversations: {open}; serialized per conversation: {} B (+ contact {} B); whole state per conversation: {} B",
        conversations / open,
        contacts / open,
        whole / open
    );
    c.bench_function("serialize_state_1000_open", |b| {
        b.iter(|| black_box(serde_json::to_vec(&state).map_or(0, |v| v.len())))
    });
}

criterion_group!(benches, events_per_second, open_conversation_size);
criterion_main!(benches);
