//! Starts the gateway's background workers: the routing driver ([`super::driver`]), the
//! sender ([`super::sender`]) and the metrics' store sampler ([`super::metrics`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::{Content, Timestamp};
use switchboard_routing::Engine;
use switchboard_transport::{EgressPolicy, Transport};

use super::App;
use super::driver::RoutingDriver;
use super::sender::{Pacer, Sender};
use crate::config::Resolved;

/// How long an idle worker waits for a wake-up before polling the store again.
pub(crate) const IDLE_POLL: Duration = Duration::from_millis(250);

/// The wall clock as a core timestamp.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

fn worker_id(role: &str) -> String {
    format!("{role}-{}-{}", std::process::id(), jitter_seed())
}

/// A random seed for backoff jitter.
pub(crate) fn jitter_seed() -> u64 {
    std::hash::RandomState::new().build_hasher().finish()
}

/// Starts the routing driver and the sender on the current runtime.
pub(crate) fn spawn(app: &Arc<App>, config: &Resolved) -> anyhow::Result<()> {
    let engine = Engine::new(config.routing.clone())
        .map_err(|e| anyhow::anyhow!("routing configuration: {e}"))?;
    let send_wake = app.send_wake.clone();
    let driver = RoutingDriver {
        store: app.store.clone(),
        engine,
        worker: worker_id("routing"),
        lease: Duration::from_secs(config.workers.routing_lease_secs),
        wake: app.routing_wake.clone(),
        send_wake: send_wake.clone(),
        hub: app.hub.clone(),
        events: config.events.clone(),
    };
    tokio::spawn(driver.run());

    let mut policy = if config.transport.dangerous_allow_loopback_for_tests {
        tracing::warn!("transport: loopback and plain HTTP allowed (tests only)");
        EgressPolicy::allow_loopback_for_tests()
    } else {
        EgressPolicy::deny_all()
    };
    for channel in config.channels.values() {
        policy = policy.allow_hosts(&channel.connector.info().egress_hosts)?;
    }
    policy = policy.allow_hosts(&config.transport.allow_hosts)?;
    let event_transport = Transport::builder()
        .egress(policy.clone())
        .timeout(Duration::from_secs(config.workers.event_timeout_secs))
        .build()?;
    let transport = Transport::builder().egress(policy).build()?;
    super::events::check_egress(&config.events, &event_transport)?;
    if !config.events.subscriptions().is_empty() {
        let retry: Arc<Vec<Duration>> = Arc::new(
            config
                .workers
                .event_retry_secs
                .iter()
                .map(|&secs| Duration::from_secs(secs))
                .collect(),
        );
        let deliverer = super::events::EventDeliverer {
            store: app.store.clone(),
            router: config.events.clone(),
            transport: event_transport,
            worker: worker_id("events"),
            // Past the request timeout, so a live worker keeps its claim for the whole call.
            lease: Duration::from_secs(config.workers.event_timeout_secs * 2 + 30),
            retry,
        };
        tokio::spawn(deliverer.run());
    }
    let pacer = Arc::new(Mutex::new(Pacer::default()));
    let recontact: Arc<HashMap<String, Content>> = Arc::new(
        config
            .routing
            .accounts
            .iter()
            .filter_map(|account| {
                let template = account.recontact_template.clone()?;
                Some((account.id.clone(), Content::Template(template)))
            })
            .collect(),
    );
    for _ in 0..config.workers.senders {
        let sender = Sender {
            store: app.store.clone(),
            channels: app.channels.clone(),
            transport: transport.clone(),
            worker: worker_id("sender"),
            lease: Duration::from_secs(config.workers.send_lease_secs),
            wake: send_wake.clone(),
            pacer: pacer.clone(),
            recontact: recontact.clone(),
            metrics: app.metrics.clone(),
        };
        tokio::spawn(sender.run());
    }
    tokio::spawn(super::metrics::sample_store(
        app.store.clone(),
        app.metrics.clone(),
    ));
    Ok(())
}
