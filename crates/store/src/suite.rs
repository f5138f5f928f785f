//! The behaviour every [`Store`] backend must have, as a reusable test suite.
//!
//! Each check takes a fresh, empty store and panics on a violation (it is test code). A
//! backend's tests call [`run_all`] with a factory, or the checks one by one:
//!
//! ```no_run
//! # async fn t() {
//! use std::sync::Arc;
//! use switchboard_store::{SqliteOptions, SqliteStore, Store, suite};
//! suite::run_all(|| async {
//!     Arc::new(SqliteStore::open("sqlite::memory:", SqliteOptions::default()).await.unwrap())
//!         as Arc<dyn Store>
//! })
//! .await;
//! # }
//! ```

#![allow(
    clippy::unwrap_used,
    reason = "test-suite code: a failed operation is a failed check"
)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{
    Address, AddressKind, Channel, Consent, Content, DeliveryStatus, Extensions, InboundEvent,
    InboundMessage, OutboundMessage, SendReceipt, StatusUpdate, Timestamp,
};

use crate::{
    ConversationFilter, ConversationUpdate, EventDeliveryOutcome, EventDeliveryState, MessageLink,
    NewEventDelivery, NewOutbox, OutboxOutcome, OutboxState, RoutingCommit, RoutingJobKind, Store,
    StoreError, TimerChange,
};

const LEASE: Duration = Duration::from_secs(30);

/// The suite's "now": 2023-11-14T22:13:20Z.
pub fn t0() -> Timestamp {
    Timestamp::from_unix_seconds(1_700_000_000)
}

/// `seconds` after [`t0`].
pub fn at(seconds: u64) -> Timestamp {
    t0().saturating_add(Duration::from_secs(seconds))
}

/// An inbound WhatsApp text with provider id `id`.
pub fn message(id: &str, from: &str) -> InboundEvent {
    InboundEvent::Message(InboundMessage {
        id: id.to_owned(),
        from: Address::new(Channel::WhatsApp, AddressKind::Phone, from),
        to: Address::new(Channel::WhatsApp, AddressKind::Phone, "+15550000000"),
        timestamp: None,
        content: Content::text("hello"),
        profile_name: Some("Kim".to_owned()),
        reply_to: None,
        extensions: Extensions::new(),
    })
}

/// A status of the outbound message `message_id`.
pub fn status(message_id: &str, status: DeliveryStatus) -> InboundEvent {
    InboundEvent::Status(StatusUpdate::new(message_id, status))
}

/// A WhatsApp text to +15551112222 with idempotency key `key`.
pub fn outbound(key: &str) -> OutboundMessage {
    OutboundMessage::new(
        key,
        Address::new(Channel::WhatsApp, AddressKind::Phone, "+15551112222"),
        Content::text("hi there"),
    )
}

/// A routing step of `worker` from `base_version` finishing `done_jobs`, with state
/// `{"v":base_version+1}` and nothing else, at [`t0`].
pub fn commit(worker: &str, base_version: i64, done_jobs: Vec<i64>) -> RoutingCommit {
    RoutingCommit {
        worker: worker.to_owned(),
        base_version,
        state: format!("{{\"v\":{}}}", base_version + 1),
        done_jobs,
        outbox: Vec::new(),
        timers: Vec::new(),
        conversations: Vec::new(),
        transcript_entries: Vec::new(),
        transcripts: Vec::new(),
        message_links: Vec::new(),
        event_deliveries: Vec::new(),
        now: t0(),
    }
}

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<F, Fut>(mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    ingest_stores_once_and_counts_duplicates(make().await).await;
    duplicates_within_one_batch_are_skipped(make().await).await;
    concurrent_duplicate_ingests_store_one(make().await).await;
    routing_jobs_are_claimed_once_and_reclaimed_after_the_lease(make().await).await;
    a_worker_takes_back_its_own_jobs_after_a_conflict(make().await).await;
    routing_commits_are_atomic_and_versioned(make().await).await;
    timers_upsert_cancel_and_fire(make().await).await;
    outbox_lifecycle_and_fencing(make().await).await;
    statuses_merge_before_and_after_the_send(make().await).await;
    conversations_filter_and_page_newest_first(make().await).await;
    conversation_messages_link_inbound_and_show_delivery(make().await).await;
    contacts_are_found_by_any_part_of_the_number(make().await).await;
    transcripts_read_back_in_order(make().await).await;
    proactive_outbox_rows_are_idempotent_and_readable(make().await).await;
    outbox_defer_rewrite_and_failure_feedback(make().await).await;
    unknown_sends_are_settled_by_a_status_with_their_reference(make().await).await;
    routing_job_ids_are_never_reused(make().await).await;
    event_deliveries_are_queued_with_their_cause(make().await).await;
    event_deliveries_are_claimed_once_retried_and_reclaimed(make().await).await;
    gone_disables_a_subscription_for_good(make().await).await;
}

/// Ingest writes each event once; a repeated delivery is counted as duplicates and writes
/// nothing; statuses get no routing job.
pub async fn ingest_stores_once_and_counts_duplicates(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    let events = vec![
        message("wamid.1", "+15551112222"),
        status("out.1", DeliveryStatus::Delivered),
        InboundEvent::OptOut(Consent {
            id: "stop.1".into(),
            from: Address::new(Channel::Sms, AddressKind::Phone, "+15551112222"),
            to: None,
            keyword: Some("STOP".into()),
            timestamp: None,
        }),
    ];
    let first = store.ingest("wa", &events, t0()).await.unwrap();
    assert_eq!((first.stored, first.duplicates), (3, 0));
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.events, 3);
    assert_eq!(counts.dedupe_keys, 3);
    assert_eq!(counts.messages, 1);
    assert_eq!(counts.contacts, 1);
    assert_eq!(counts.routing_jobs, 2, "statuses are merged, not routed");

    let again = store.ingest("wa", &events, at(5)).await.unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 3));
    assert_eq!(store.counts().await.unwrap(), counts);

    // The same provider id on another channel is another event.
    let other = store.ingest("sms", &events[..1], t0()).await.unwrap();
    assert_eq!(other.stored, 1);
    let messages = store.messages("wa").await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].direction, "in");
    assert_eq!(messages[0].provider_message_id.as_deref(), Some("wamid.1"));
    assert_eq!(messages[0].peer, "+15551112222");
}

/// The same event twice in one webhook is stored once.
pub async fn duplicates_within_one_batch_are_skipped(store: Arc<dyn Store>) {
    let events = vec![
        message("m1", "+1"),
        message("m1", "+1"),
        message("m2", "+1"),
    ];
    let result = store.ingest("wa", &events, t0()).await.unwrap();
    assert_eq!((result.stored, result.duplicates), (2, 1));
    assert_eq!(store.counts().await.unwrap().contacts, 1);
}

/// Concurrent deliveries of the same webhook store exactly one copy.
pub async fn concurrent_duplicate_ingests_store_one(store: Arc<dyn Store>) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            let events = vec![message("race.1", "+1"), status("x", DeliveryStatus::Read)];
            store.ingest("wa", &events, t0()).await
        });
    }
    let mut stored = 0;
    let mut duplicates = 0;
    while let Some(result) = tasks.join_next().await {
        let result = result.unwrap().unwrap();
        stored += result.stored;
        duplicates += result.duplicates;
    }
    assert_eq!(stored, 2);
    assert_eq!(duplicates, 30);
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.events, counts.messages, counts.routing_jobs),
        (2, 1, 1)
    );
}

/// A claimed job is invisible to other workers until its lease expires, then reclaimed; only
/// the current claimant can finish it.
pub async fn routing_jobs_are_claimed_once_and_reclaimed_after_the_lease(store: Arc<dyn Store>) {
    store
        .ingest("wa", &[message("a", "+1"), message("b", "+2")], t0())
        .await
        .unwrap();
    let command = store
        .enqueue_routing_job(RoutingJobKind::Command, "{\"command\":\"x\"}", t0())
        .await
        .unwrap();
    let jobs = store
        .claim_routing_jobs("w1", t0(), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 3);
    assert!(jobs.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(jobs[0].kind, RoutingJobKind::Inbound);
    assert_eq!(jobs[0].channel_id.as_deref(), Some("wa"));
    let event: InboundEvent = serde_json::from_str(&jobs[0].payload).unwrap();
    assert_eq!(event, message("a", "+1"));
    assert_eq!(jobs[2].id, command);
    assert_eq!(jobs[2].kind, RoutingJobKind::Command);
    assert_eq!(jobs[2].payload, "{\"command\":\"x\"}");

    assert!(
        store
            .claim_routing_jobs("w2", at(10), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let reclaimed = store
        .claim_routing_jobs("w2", at(31), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(reclaimed.len(), 3);
    assert!(reclaimed.iter().all(|job| job.attempts == 2));

    // w1 lost its claim: its commit is refused and writes nothing.
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let stale = store.commit_routing(&commit("w1", 0, ids.clone())).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert!(store.routing_state().await.unwrap().is_none());
    let version = store.commit_routing(&commit("w2", 0, ids)).await.unwrap();
    assert_eq!(version, 1);
    assert_eq!(store.counts().await.unwrap().routing_jobs, 0);
}

/// A worker whose commit lost the version race to another instance takes its claimed jobs
/// back at once (they are not stuck until its lease runs out), while other workers still
/// cannot take them; its retry from the new version finishes them.
pub async fn a_worker_takes_back_its_own_jobs_after_a_conflict(store: Arc<dyn Store>) {
    store
        .ingest("wa", &[message("a", "+1"), message("b", "+2")], t0())
        .await
        .unwrap();
    let first = store
        .claim_routing_jobs("w1", t0(), LEASE, 1)
        .await
        .unwrap();
    let second = store
        .claim_routing_jobs("w2", t0(), LEASE, 1)
        .await
        .unwrap();
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_ne!(first[0].id, second[0].id);
    // w2 commits first; w1's commit from the same version conflicts and writes nothing.
    assert_eq!(
        store
            .commit_routing(&commit("w2", 0, vec![second[0].id]))
            .await
            .unwrap(),
        1
    );
    let lost = store
        .commit_routing(&commit("w1", 0, vec![first[0].id]))
        .await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    // Long before the lease ends, nobody else may take w1's job, but w1 takes it back.
    assert!(
        store
            .claim_routing_jobs("w3", at(1), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_routing_jobs("w1", at(1), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        store
            .commit_routing(&commit("w1", 1, vec![first[0].id]))
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.counts().await.unwrap().routing_jobs, 0);
}

/// A commit writes state, outbox, messages, conversations and transcripts together, only from
/// the current version; outbox idempotency keys are unique per channel.
pub async fn routing_commits_are_atomic_and_versioned(store: Arc<dyn Store>) {
    let mut first = commit("w", 0, Vec::new());
    first.outbox.push(NewOutbox {
        channel_id: "wa".into(),
        conversation_id: Some("conv_1".into()),
        message: outbound("msg_1"),
    });
    first.conversations.push(ConversationUpdate {
        id: "conv_1".into(),
        channel_id: Some("wa".into()),
        customer: Some("+15551112222".into()),
        state: Some("open".into()),
        queue: None,
        agent: None,
        end_reason: None,
    });
    first
        .transcript_entries
        .push(("conv_1".into(), "{\"text\":\"hi\"}".into()));
    assert_eq!(store.commit_routing(&first).await.unwrap(), 1);
    let state = store.routing_state().await.unwrap().unwrap();
    assert_eq!((state.version, state.state.as_str()), (1, "{\"v\":1}"));

    // A second writer from version 0 conflicts and writes nothing.
    let mut racing = commit("w", 0, Vec::new());
    racing.outbox.push(NewOutbox {
        channel_id: "wa".into(),
        conversation_id: None,
        message: outbound("msg_9"),
    });
    assert!(matches!(
        store.commit_routing(&racing).await,
        Err(StoreError::Conflict(_))
    ));
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.outbox, 1);
    assert_eq!(counts.messages, 1);
    assert_eq!(counts.conversations, 1);
    assert_eq!(counts.transcript_entries, 1);

    // The same idempotency key again (a replayed step) adds nothing.
    let mut replay = commit("w", 1, Vec::new());
    replay.outbox = first.outbox.clone();
    replay.conversations.push(ConversationUpdate {
        id: "conv_1".into(),
        channel_id: None,
        customer: None,
        state: Some("ended".into()),
        queue: None,
        agent: None,
        end_reason: Some("agent".into()),
    });
    replay
        .transcripts
        .push(("conv_1".into(), "{\"end\":true}".into()));
    assert_eq!(store.commit_routing(&replay).await.unwrap(), 2);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.outbox, counts.messages), (1, 1));
    let jobs = store.outbox_jobs().await.unwrap();
    assert_eq!(jobs[0].state, OutboxState::Pending);
    assert_eq!(jobs[0].conversation_id.as_deref(), Some("conv_1"));
    assert_eq!(jobs[0].message, outbound("msg_1"));
}

/// Timers are upserted by key, cancelled, and turned into routing jobs when due.
pub async fn timers_upsert_cancel_and_fire(store: Arc<dyn Store>) {
    let mut step = commit("w", 0, Vec::new());
    step.timers = vec![
        TimerChange::Start {
            key: "conv_1/offer".into(),
            payload: "{\"t\":1}".into(),
            due: at(10),
        },
        TimerChange::Start {
            key: "conv_1/offer".into(),
            payload: "{\"t\":2}".into(),
            due: at(20),
        },
        TimerChange::Start {
            key: "conv_2/offer".into(),
            payload: "{\"t\":3}".into(),
            due: at(5),
        },
        TimerChange::Start {
            key: "conv_3/offer".into(),
            payload: "{\"t\":4}".into(),
            due: at(5),
        },
        TimerChange::Cancel {
            key: "conv_3/offer".into(),
        },
    ];
    store.commit_routing(&step).await.unwrap();
    assert_eq!(store.counts().await.unwrap().timers, 2);
    assert_eq!(store.fire_due_timers(at(4), 10).await.unwrap(), 0);
    assert_eq!(store.fire_due_timers(at(15), 10).await.unwrap(), 1);
    assert_eq!(store.fire_due_timers(at(25), 10).await.unwrap(), 1);
    assert_eq!(store.fire_due_timers(at(99), 10).await.unwrap(), 0);
    let jobs = store
        .claim_routing_jobs("w", at(30), LEASE, 10)
        .await
        .unwrap();
    let payloads: Vec<&str> = jobs.iter().map(|j| j.payload.as_str()).collect();
    assert_eq!(payloads, ["{\"t\":3}", "{\"t\":2}"]);
    assert!(jobs.iter().all(|j| j.kind == RoutingJobKind::Timer));
}

async fn one_outbox_job(store: &Arc<dyn Store>, key: &str) {
    let version = store
        .routing_state()
        .await
        .unwrap()
        .map_or(0, |s| s.version);
    let mut step = commit("w", version, Vec::new());
    step.outbox.push(NewOutbox {
        channel_id: "wa".into(),
        conversation_id: None,
        message: outbound(key),
    });
    store.commit_routing(&step).await.unwrap();
}

/// Claims are exclusive and fenced; retries wait for their time; unknown outcomes and expired
/// sends are never claimed again.
pub async fn outbox_lifecycle_and_fencing(store: Arc<dyn Store>) {
    one_outbox_job(&store, "msg_1").await;
    let claimed = store.claim_outbox("s1", t0(), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let job = &claimed[0];
    assert_eq!((job.state, job.attempts), (OutboxState::Sending, 1));
    assert!(
        store
            .claim_outbox("s2", t0(), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Retry later: invisible until then; a stranger cannot finish it.
    let retry = OutboxOutcome::Retry {
        at: at(60),
        error: "throttled".into(),
    };
    assert!(
        !store
            .finish_outbox(job.id, "s2", &retry, t0())
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_outbox(job.id, "s1", &retry, t0())
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_outbox("s1", at(59), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_outbox("s1", at(60), LEASE, 10).await.unwrap();
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("throttled"));

    // Unknown outcome: recorded, never claimed again.
    let unknown = OutboxOutcome::Unknown {
        error: "connection reset after the request was written".into(),
    };
    assert!(
        store
            .finish_outbox(job.id, "s1", &unknown, at(61))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_outbox("s1", at(9999), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A worker that died mid-send: its job becomes unknown after the lease, not re-sent.
    one_outbox_job(&store, "msg_2").await;
    let second = store
        .claim_outbox("dead", at(100), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(store.expire_sending(at(120)).await.unwrap(), 0);
    assert_eq!(store.expire_sending(at(131)).await.unwrap(), 1);
    assert!(
        !store
            .finish_outbox(
                second[0].id,
                "dead",
                &OutboxOutcome::Sent(SendReceipt::new("late", DeliveryStatus::Sent)),
                at(132)
            )
            .await
            .unwrap()
    );
    let states: Vec<OutboxState> = store
        .outbox_jobs()
        .await
        .unwrap()
        .iter()
        .map(|j| j.state)
        .collect();
    assert_eq!(states, [OutboxState::Unknown, OutboxState::Unknown]);

    // Permanent failure and opt-out are terminal.
    one_outbox_job(&store, "msg_3").await;
    one_outbox_job(&store, "msg_4").await;
    let jobs = store.claim_outbox("s1", at(200), LEASE, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    let failed = OutboxOutcome::Failed {
        class: Some(switchboard_core::ErrorClass::InvalidRecipient),
        error: "invalid recipient".into(),
    };
    let opted = OutboxOutcome::OptedOut {
        error: "21610".into(),
    };
    assert!(
        store
            .finish_outbox(jobs[0].id, "s1", &failed, at(201))
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_outbox(jobs[1].id, "s1", &opted, at(201))
            .await
            .unwrap()
    );
    let states: Vec<OutboxState> = store
        .outbox_jobs()
        .await
        .unwrap()
        .iter()
        .map(|j| j.state)
        .collect();
    assert_eq!(&states[2..], [OutboxState::Failed, OutboxState::OptedOut]);
    assert!(
        store
            .claim_outbox("s1", at(9999), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A sent message gets the provider's id; statuses merge into it whichever arrives first.
pub async fn statuses_merge_before_and_after_the_send(store: Arc<dyn Store>) {
    one_outbox_job(&store, "msg_1").await;
    let job = store
        .claim_outbox("s", t0(), LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    // The delivered status overtakes the send's answer.
    store
        .ingest("wa", &[status("SM1", DeliveryStatus::Delivered)], at(1))
        .await
        .unwrap();
    let sent = OutboxOutcome::Sent(SendReceipt::new("SM1", DeliveryStatus::Queued));
    assert!(
        store
            .finish_outbox(job.id, "s", &sent, at(2))
            .await
            .unwrap()
    );
    let out = |messages: Vec<crate::MessageRecord>| {
        messages.into_iter().find(|m| m.direction == "out").unwrap()
    };
    let message = out(store.messages("wa").await.unwrap());
    assert_eq!(message.provider_message_id.as_deref(), Some("SM1"));
    assert_eq!(message.delivery.unwrap().status, DeliveryStatus::Delivered);
    // Later statuses, out of order and twice.
    store
        .ingest(
            "wa",
            &[
                status("SM1", DeliveryStatus::Sent),
                status("SM1", DeliveryStatus::Read),
                status("SM1", DeliveryStatus::Read),
            ],
            at(3),
        )
        .await
        .unwrap();
    let message = out(store.messages("wa").await.unwrap());
    assert_eq!(message.delivery.unwrap().status, DeliveryStatus::Read);
    let job = store.outbox_jobs().await.unwrap().remove(0);
    assert_eq!(job.state, OutboxState::Sent);
    assert_eq!(job.provider_message_id.as_deref(), Some("SM1"));
}

fn conversation_update(id: &str, channel: &str, customer: &str, state: &str) -> ConversationUpdate {
    ConversationUpdate {
        id: id.into(),
        channel_id: Some(channel.into()),
        customer: Some(customer.into()),
        state: Some(state.into()),
        queue: None,
        agent: None,
        end_reason: None,
    }
}

async fn commit_next(store: &Arc<dyn Store>, mut step: RoutingCommit, now: Timestamp) {
    step.base_version = store
        .routing_state()
        .await
        .unwrap()
        .map_or(0, |s| s.version);
    step.now = now;
    store.commit_routing(&step).await.unwrap();
}

/// Conversations are listed newest first, filtered by state, queue, channel and agent, and
/// paged with a cursor that neither repeats nor skips a row.
pub async fn conversations_filter_and_page_newest_first(store: Arc<dyn Store>) {
    for i in 1..=5u64 {
        let mut step = commit("w", 0, Vec::new());
        let mut update = conversation_update(
            &format!("conv_{i}"),
            if i % 2 == 0 { "sms" } else { "wa" },
            "+15551112222",
            "queued",
        );
        update.queue = Some(if i <= 3 { "support" } else { "sales" }.into());
        step.conversations.push(update);
        commit_next(&store, step, at(i)).await;
    }
    let mut step = commit("w", 0, Vec::new());
    step.conversations.push(ConversationUpdate {
        agent: Some("anna".into()),
        state: Some("assigned".into()),
        ..conversation_update("conv_2", "sms", "+15551112222", "assigned")
    });
    commit_next(&store, step, at(10)).await;

    let ids = |page: &crate::ConversationPage| {
        page.conversations
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>()
    };
    let all = store
        .conversations(&ConversationFilter::default())
        .await
        .unwrap();
    assert_eq!(
        ids(&all),
        ["conv_5", "conv_4", "conv_3", "conv_2", "conv_1"]
    );
    assert!(all.next.is_none());
    assert_eq!(all.conversations[4].opened_at, at(1));
    assert_eq!(all.conversations[3].updated_at, at(10));

    let filtered = |filter: ConversationFilter| {
        let store = store.clone();
        async move { ids(&store.conversations(&filter).await.unwrap()) }
    };
    assert_eq!(
        filtered(ConversationFilter {
            queue: Some("support".into()),
            channel_id: Some("wa".into()),
            ..ConversationFilter::default()
        })
        .await,
        ["conv_3", "conv_1"]
    );
    assert_eq!(
        filtered(ConversationFilter {
            agent: Some("anna".into()),
            ..ConversationFilter::default()
        })
        .await,
        ["conv_2"]
    );
    assert_eq!(
        filtered(ConversationFilter {
            state: Some("queued".into()),
            ..ConversationFilter::default()
        })
        .await,
        ["conv_5", "conv_4", "conv_3", "conv_1"]
    );

    // Pages of two: 5 4 | 3 2 | 1.
    let mut filter = ConversationFilter {
        limit: 2,
        ..ConversationFilter::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.conversations(&filter).await.unwrap();
        assert!(page.conversations.len() <= 2);
        seen.extend(ids(&page));
        match page.next {
            Some(next) => filter.cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["conv_5", "conv_4", "conv_3", "conv_2", "conv_1"]);

    let one = store.conversation("conv_2").await.unwrap().unwrap();
    assert_eq!(
        (
            one.state.as_str(),
            one.agent.as_deref(),
            one.channel_id.as_str()
        ),
        ("assigned", Some("anna"), "sms")
    );
    assert!(store.conversation("conv_99").await.unwrap().is_none());
}

/// A routing commit links inbound messages to their conversation; a conversation's messages
/// come back in order, both directions, with the outbound delivery state.
pub async fn conversation_messages_link_inbound_and_show_delivery(store: Arc<dyn Store>) {
    store
        .ingest("wa", &[message("in.1", "+15551112222")], t0())
        .await
        .unwrap();
    let mut step = commit("w", 0, Vec::new());
    step.conversations
        .push(conversation_update("conv_1", "wa", "+15551112222", "open"));
    step.message_links.push(MessageLink {
        channel_id: "wa".into(),
        provider_message_id: "in.1".into(),
        conversation_id: "conv_1".into(),
    });
    step.outbox.push(NewOutbox {
        channel_id: "wa".into(),
        conversation_id: Some("conv_1".into()),
        message: outbound("msg_1"),
    });
    commit_next(&store, step, at(1)).await;
    // A second link of the same message does not move it.
    let mut again = commit("w", 0, Vec::new());
    again.message_links.push(MessageLink {
        channel_id: "wa".into(),
        provider_message_id: "in.1".into(),
        conversation_id: "conv_7".into(),
    });
    commit_next(&store, again, at(2)).await;

    let job = store
        .claim_outbox("s", at(3), LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    let sent = OutboxOutcome::Sent(SendReceipt::new("SM1", DeliveryStatus::Sent));
    assert!(
        store
            .finish_outbox(job.id, "s", &sent, at(4))
            .await
            .unwrap()
    );
    store
        .ingest("wa", &[status("SM1", DeliveryStatus::Delivered)], at(5))
        .await
        .unwrap();

    let messages = store.conversation_messages("conv_1").await.unwrap();
    let summary: Vec<(&str, Option<&str>)> = messages
        .iter()
        .map(|m| (m.direction.as_str(), m.provider_message_id.as_deref()))
        .collect();
    assert_eq!(summary, [("in", Some("in.1")), ("out", Some("SM1"))]);
    assert_eq!(messages[0].created_at, t0());
    assert_eq!(messages[0].outbox_state, None);
    assert_eq!(messages[1].outbox_id, Some(job.id));
    assert_eq!(messages[1].outbox_state, Some(OutboxState::Sent));
    assert_eq!(
        messages[1].delivery.as_ref().unwrap().status,
        DeliveryStatus::Delivered
    );
    assert!(
        store
            .conversation_messages("conv_7")
            .await
            .unwrap()
            .is_empty()
    );

    let by_id = store
        .message_by_provider_id("wa", "SM1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (by_id.direction.as_str(), by_id.conversation_id.as_deref()),
        ("out", Some("conv_1"))
    );
    assert!(
        store
            .message_by_provider_id("sms", "SM1")
            .await
            .unwrap()
            .is_none()
    );
}

/// Contacts are found by any fragment of their number, typed with or without its symbols, and
/// by profile name; `%` and `_` in a query are literal.
pub async fn contacts_are_found_by_any_part_of_the_number(store: Arc<dyn Store>) {
    store
        .ingest(
            "wa",
            &[
                message("c.1", "+14155238886"),
                message("c.2", "+11231233211"),
            ],
            t0(),
        )
        .await
        .unwrap();
    store
        .ingest("sms", &[message("c.3", "+4930123456")], at(1))
        .await
        .unwrap();
    let found = |q: &'static str| {
        let store = store.clone();
        async move {
            let mut addresses: Vec<String> = store
                .search_contacts(q, 0)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.address)
                .collect();
            addresses.sort();
            addresses
        }
    };
    for q in [
        "523-88",
        "4155238886",
        "(415)",
        "+1415",
        "+1 (415) 523-8886",
        "415.523",
    ] {
        assert_eq!(found(q).await, ["+14155238886"], "query {q:?}");
    }
    for q in ["3211", "+1(123)123-3211", "123)123-3", "+1(123)123"] {
        assert_eq!(found(q).await, ["+11231233211"], "query {q:?}");
    }
    // Digits are compared without symbols: `+1 4` is `14`, anywhere in the number.
    assert_eq!(found("+1 4").await, ["+14155238886"]);
    assert_eq!(found("1").await.len(), 3, "a single digit is a broad query");
    assert_eq!(found("kim").await.len(), 3, "profile names match too");
    assert!(found("%").await.is_empty(), "wildcards are literal");
    assert!(found("_").await.is_empty());
    assert!(found("999").await.is_empty());

    let hits = store.search_contacts("30123", 0).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].channel_id, "sms");
    assert_eq!(hits[0].profile_name.as_deref(), Some("Kim"));
    assert_eq!(hits[0].last_inbound_at, at(1));
    let address: switchboard_core::Address = serde_json::from_str(&hits[0].address_json).unwrap();
    assert_eq!(address.id, "+4930123456");
    assert_eq!(store.search_contacts("+1", 1).await.unwrap().len(), 1);

    let exact = store.contact("wa", "+14155238886").await.unwrap().unwrap();
    assert_eq!(exact.first_seen_at, t0());
    assert!(
        store
            .contact("sms", "+14155238886")
            .await
            .unwrap()
            .is_none()
    );
}

/// A conversation's transcript entries and written copies come back in order, and only its
/// own.
pub async fn transcripts_read_back_in_order(store: Arc<dyn Store>) {
    let mut step = commit("w", 0, Vec::new());
    step.transcript_entries = vec![
        ("conv_1".into(), "{\"n\":1}".into()),
        ("conv_2".into(), "{\"n\":9}".into()),
        ("conv_1".into(), "{\"n\":2}".into()),
    ];
    commit_next(&store, step, at(1)).await;
    let mut step = commit("w", 0, Vec::new());
    step.transcript_entries = vec![("conv_1".into(), "{\"n\":3}".into())];
    step.transcripts = vec![("conv_1".into(), "{\"trigger\":\"ended\"}".into())];
    commit_next(&store, step, at(2)).await;

    let record = store.transcript("conv_1").await.unwrap();
    assert_eq!(record.entries, ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]);
    assert_eq!(
        record.writes,
        [(at(2), "{\"trigger\":\"ended\"}".to_owned())]
    );
    assert_eq!(store.transcript("conv_2").await.unwrap().entries.len(), 1);
    assert_eq!(
        store.transcript("conv_3").await.unwrap(),
        crate::TranscriptRecord::default()
    );
}

/// A proactive outbox row is written with its message in one go, once per idempotency key,
/// sent by the sender like any other, and read back with its delivery state.
pub async fn proactive_outbox_rows_are_idempotent_and_readable(store: Arc<dyn Store>) {
    let out = NewOutbox {
        channel_id: "wa".into(),
        conversation_id: None,
        message: outbound("api:key-1"),
    };
    let first = store.enqueue_outbox(&out, t0()).await.unwrap();
    assert!(first.created);
    let again = store.enqueue_outbox(&out, at(1)).await.unwrap();
    assert_eq!((again.id, again.created), (first.id, false));
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.outbox, counts.messages), (1, 1));

    let row = store.outbox_message(first.id).await.unwrap().unwrap();
    assert_eq!(row.job.state, OutboxState::Pending);
    assert_eq!(row.job.message, outbound("api:key-1"));
    assert_eq!((row.created_at, row.delivery.clone()), (t0(), None));

    let job = store
        .claim_outbox("s", at(2), LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(job.id, first.id);
    let sent = OutboxOutcome::Sent(SendReceipt::new("SM9", DeliveryStatus::Queued));
    assert!(
        store
            .finish_outbox(job.id, "s", &sent, at(3))
            .await
            .unwrap()
    );
    store
        .ingest("wa", &[status("SM9", DeliveryStatus::Read)], at(4))
        .await
        .unwrap();
    let row = store.outbox_message(first.id).await.unwrap().unwrap();
    assert_eq!(row.job.state, OutboxState::Sent);
    assert_eq!(row.job.provider_message_id.as_deref(), Some("SM9"));
    assert_eq!(row.delivery.unwrap().status, DeliveryStatus::Read);
    assert_eq!(row.updated_at, at(3));
    assert!(
        store
            .outbox_message(first.id + 100)
            .await
            .unwrap()
            .is_none()
    );
}

/// A deferred send waits without spending an attempt; a rewritten one goes out as the new
/// message; a conversation's final failure becomes a `send_failed` routing job in the same
/// transaction (permanent unless the gateway gave up on a retryable error).
pub async fn outbox_defer_rewrite_and_failure_feedback(store: Arc<dyn Store>) {
    let mut step = commit("w", 0, Vec::new());
    for key in ["a", "b"] {
        step.outbox.push(NewOutbox {
            channel_id: "wa".into(),
            conversation_id: Some("conv_7".into()),
            message: outbound(key),
        });
    }
    store.commit_routing(&step).await.unwrap();
    let claimed = store.claim_outbox("s1", t0(), LEASE, 1).await.unwrap();
    let first = &claimed[0];

    let defer = OutboxOutcome::Defer { at: at(6) };
    assert!(
        store
            .finish_outbox(first.id, "s1", &defer, t0())
            .await
            .unwrap()
    );
    let next = store.claim_outbox("s1", at(1), LEASE, 1).await.unwrap();
    assert_ne!(next[0].id, first.id, "the deferred row waits for its time");
    let again = store.claim_outbox("s1", at(6), LEASE, 1).await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (first.id, 1));

    let mut template = outbound("a");
    template.content = Content::text("the re-contact template");
    let rewrite = OutboxOutcome::Rewrite {
        message: Box::new(template.clone()),
        error: "window closed".into(),
    };
    assert!(
        store
            .finish_outbox(first.id, "s1", &rewrite, at(6))
            .await
            .unwrap()
    );
    let rewritten = store.claim_outbox("s1", at(6), LEASE, 1).await.unwrap();
    assert_eq!(rewritten[0].id, first.id);
    assert_eq!(rewritten[0].message, template);
    assert_eq!(rewritten[0].last_error.as_deref(), Some("window closed"));

    let invalid = OutboxOutcome::Failed {
        class: Some(switchboard_core::ErrorClass::InvalidRecipient),
        error: "not a WhatsApp user".into(),
    };
    assert!(
        store
            .finish_outbox(first.id, "s1", &invalid, at(7))
            .await
            .unwrap()
    );
    let gave_up = OutboxOutcome::Failed {
        class: Some(switchboard_core::ErrorClass::Retryable),
        error: "gave up".into(),
    };
    assert!(
        store
            .finish_outbox(next[0].id, "s1", &gave_up, at(7))
            .await
            .unwrap()
    );
    let jobs = store
        .claim_routing_jobs("r", at(8), LEASE, 10)
        .await
        .unwrap();
    let failures: Vec<crate::SendFailure> = jobs
        .iter()
        .filter(|j| j.kind == RoutingJobKind::SendFailed)
        .map(|j| serde_json::from_str(&j.payload).unwrap())
        .collect();
    assert_eq!(
        failures,
        vec![
            crate::SendFailure {
                conversation: "conv_7".into(),
                permanent: true
            },
            crate::SendFailure {
                conversation: "conv_7".into(),
                permanent: false
            },
        ]
    );
}

/// A routing job id is never handed out twice, also after the table emptied: the API's command
/// results are keyed by it, so a reused id would hand a stale result to a new command.
pub async fn routing_job_ids_are_never_reused(store: Arc<dyn Store>) {
    let first = store
        .enqueue_routing_job(RoutingJobKind::Command, "{\"n\":1}", t0())
        .await
        .unwrap();
    let claimed = store
        .claim_routing_jobs("r", t0(), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), [first]);
    store
        .commit_routing(&commit("r", 0, vec![first]))
        .await
        .unwrap();
    assert_eq!(
        store.counts().await.unwrap().routing_jobs,
        0,
        "the job is gone"
    );
    let second = store
        .enqueue_routing_job(RoutingJobKind::Command, "{\"n\":2}", at(1))
        .await
        .unwrap();
    assert!(second > first, "id {second} after {first}");
}

/// A fresh, empty PostgreSQL schema for one test, in the database a URL names (e.g.
/// `SWITCHBOARD_TEST_DATABASE_URL`), dropped with everything in it when this value is dropped
/// (also when the test panicked). [`TestSchema::url`] is the URL whose connections use it
/// (`options[search_path]`), for [`crate::open`] or a gateway config's `[store] url`.
#[derive(Debug)]
pub struct TestSchema {
    base_url: String,
    name: String,
    url: String,
}

impl TestSchema {
    /// Creates a schema named `sb_test_<pid>_<n>_<nanos>` in the database `base_url` names.
    pub async fn create(base_url: &str) -> Result<Self, StoreError> {
        use sqlx::Connection;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "sb_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(base_url).await?;
        sqlx::raw_sql(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let separator = if base_url.contains('?') { '&' } else { '?' };
        Ok(Self {
            url: format!("{base_url}{separator}options%5Bsearch_path%5D={name}"),
            base_url: base_url.to_owned(),
            name,
        })
    }

    /// The URL of the database with this schema as the search path.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestSchema {
    /// Drops the schema on a runtime of its own (the test's may be unwinding or gone).
    fn drop(&mut self) {
        use sqlx::Connection;
        let (url, name) = (self.base_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> Result<(), sqlx::Error> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::raw_sql("SET lock_timeout = '20s'")
                    .execute(&mut conn)
                    .await?;
                sqlx::raw_sql(&format!("DROP SCHEMA {name} CASCADE"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            _ if std::thread::panicking() => eprintln!("could not drop test schema {}", self.name),
            Ok(Err(e)) => panic!("dropping test schema {}: {e}", self.name),
            Err(_) => panic!("dropping test schema {} panicked", self.name),
        }
    }
}

/// A send whose outcome was unknown is settled by a later status that carries its reference
/// (the idempotency key under `CLIENT_REFERENCE`): the row becomes `sent` with the provider's
/// id and the message shows the status. A status without the reference, or for a row that is
/// not `unknown`, changes nothing.
pub async fn unknown_sends_are_settled_by_a_status_with_their_reference(store: Arc<dyn Store>) {
    let mut step = commit("w", 0, Vec::new());
    for key in ["lost", "fine"] {
        step.outbox.push(NewOutbox {
            channel_id: "wa".into(),
            conversation_id: None,
            message: outbound(key),
        });
    }
    store.commit_routing(&step).await.unwrap();
    let claimed = store.claim_outbox("s1", t0(), LEASE, 2).await.unwrap();
    let unknown = OutboxOutcome::Unknown {
        error: "connection reset after the request was written".into(),
    };
    for job in &claimed {
        assert!(
            store
                .finish_outbox(job.id, "s1", &unknown, t0())
                .await
                .unwrap()
        );
    }
    let lost = claimed
        .iter()
        .find(|j| j.message.idempotency_key == "lost")
        .unwrap();

    let with_reference = |id: &str, key: &str, state: DeliveryStatus| {
        let mut update = StatusUpdate::new(id, state);
        update
            .extensions
            .insert(switchboard_core::CLIENT_REFERENCE.into(), key.into());
        InboundEvent::Status(update)
    };
    // No reference: nothing to settle.
    store
        .ingest(
            "wa",
            &[status("wamid.anon", DeliveryStatus::Delivered)],
            at(1),
        )
        .await
        .unwrap();
    // A reference nobody sent under: nothing either.
    store
        .ingest(
            "wa",
            &[with_reference(
                "wamid.other",
                "nope",
                DeliveryStatus::Delivered,
            )],
            at(1),
        )
        .await
        .unwrap();
    let states = |jobs: Vec<crate::OutboxJob>| {
        jobs.into_iter()
            .map(|j| (j.message.idempotency_key, j.state, j.provider_message_id))
            .collect::<Vec<_>>()
    };
    assert!(
        states(store.outbox_jobs().await.unwrap())
            .iter()
            .all(|(_, state, _)| *state == OutboxState::Unknown)
    );

    store
        .ingest(
            "wa",
            &[with_reference(
                "wamid.LOST",
                "lost",
                DeliveryStatus::Delivered,
            )],
            at(2),
        )
        .await
        .unwrap();
    let jobs = states(store.outbox_jobs().await.unwrap());
    assert!(jobs.contains(&("lost".into(), OutboxState::Sent, Some("wamid.LOST".into()))));
    assert!(jobs.contains(&("fine".into(), OutboxState::Unknown, None)));
    // Later statuses merge into the settled message like any other.
    store
        .ingest("wa", &[status("wamid.LOST", DeliveryStatus::Read)], at(3))
        .await
        .unwrap();
    let message = store
        .outbox_message(lost.id)
        .await
        .unwrap()
        .expect("the settled row");
    assert_eq!(
        message.job.provider_message_id.as_deref(),
        Some("wamid.LOST")
    );
    assert_eq!(
        message.delivery.map(|d| d.status),
        Some(DeliveryStatus::Read)
    );
}

/// An integration-event delivery for `subscription` (`webhook_id` doubles as the payload).
pub fn event_delivery(subscription: &str, webhook_id: &str) -> NewEventDelivery {
    NewEventDelivery {
        subscription: subscription.to_owned(),
        event_type: "message.received".to_owned(),
        webhook_id: webhook_id.to_owned(),
        payload: format!("{{\"id\":\"{webhook_id}\"}}"),
    }
}

/// Deliveries are queued with what caused them: ingest queues an event's deliveries only when
/// the event is new (a duplicate webhook queues nothing), a routing commit queues its own and
/// a conflicting commit none; a known `webhook_id` is queued once.
pub async fn event_deliveries_are_queued_with_their_cause(store: Arc<dyn Store>) {
    let events = vec![message("m1", "+1"), message("m2", "+1")];
    let deliveries = vec![
        (0, event_delivery("crm", "msg_a")),
        (0, event_delivery("audit", "msg_b")),
        (1, event_delivery("crm", "msg_c")),
    ];
    let result = store
        .ingest_with_events("wa", &events, &deliveries, t0())
        .await
        .unwrap();
    assert_eq!(result.stored, 2);
    let queued = store.event_deliveries().await.unwrap();
    let ids: Vec<&str> = queued.iter().map(|d| d.webhook_id.as_str()).collect();
    assert_eq!(ids, ["msg_a", "msg_b", "msg_c"]);
    assert!(queued.iter().all(|d| d.state == EventDeliveryState::Pending
        && d.attempts == 0
        && d.next_attempt_at == t0()
        && d.event_type == "message.received"));
    assert_eq!(queued[1].subscription, "audit");
    assert_eq!(queued[2].payload, "{\"id\":\"msg_c\"}");

    // The same webhook again: duplicates, nothing queued (even with fresh webhook ids).
    let again = vec![
        (0, event_delivery("crm", "msg_d")),
        (1, event_delivery("crm", "msg_e")),
    ];
    let result = store
        .ingest_with_events("wa", &events, &again, at(1))
        .await
        .unwrap();
    assert_eq!(result.duplicates, 2);
    // Only the new event of a partly duplicate webhook queues its deliveries.
    let mixed = vec![message("m2", "+1"), message("m3", "+1")];
    let mixed_deliveries = vec![
        (0, event_delivery("crm", "msg_f")),
        (1, event_delivery("crm", "msg_g")),
    ];
    store
        .ingest_with_events("wa", &mixed, &mixed_deliveries, at(1))
        .await
        .unwrap();
    let ids: Vec<String> = store
        .event_deliveries()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.webhook_id)
        .collect();
    assert_eq!(ids, ["msg_a", "msg_b", "msg_c", "msg_g"]);

    // A routing commit queues its deliveries in its transaction; a conflicting one none.
    let mut step = commit("w1", 0, Vec::new());
    step.event_deliveries.push(event_delivery("crm", "msg_r1"));
    store.commit_routing(&step).await.unwrap();
    let mut stale = commit("w1", 0, Vec::new());
    stale.event_deliveries.push(event_delivery("crm", "msg_r2"));
    assert!(matches!(
        store.commit_routing(&stale).await,
        Err(StoreError::Conflict(_))
    ));
    // A known webhook id is not queued twice.
    store
        .enqueue_event_deliveries(
            &[
                event_delivery("crm", "msg_r1"),
                event_delivery("crm", "msg_x"),
            ],
            at(2),
        )
        .await
        .unwrap();
    let ids: Vec<String> = store
        .event_deliveries()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.webhook_id)
        .collect();
    assert_eq!(ids, ["msg_a", "msg_b", "msg_c", "msg_g", "msg_r1", "msg_x"]);
}

/// A claim takes due deliveries once, with a lease; only the claimer finishes one; a retry is
/// due again at its time; a delivery whose worker died is claimed again after the lease (at
/// least once); delivered and failed ones are never claimed again.
pub async fn event_deliveries_are_claimed_once_retried_and_reclaimed(store: Arc<dyn Store>) {
    let lease = Duration::from_secs(30);
    store
        .enqueue_event_deliveries(
            &[
                event_delivery("crm", "msg_1"),
                event_delivery("crm", "msg_2"),
                event_delivery("crm", "msg_3"),
            ],
            t0(),
        )
        .await
        .unwrap();
    let a = store
        .claim_event_deliveries("a", t0(), lease, 2)
        .await
        .unwrap();
    let ids: Vec<&str> = a.iter().map(|d| d.webhook_id.as_str()).collect();
    assert_eq!(ids, ["msg_1", "msg_2"]);
    assert!(
        a.iter()
            .all(|d| d.state == EventDeliveryState::Sending && d.attempts == 1)
    );
    let b = store
        .claim_event_deliveries("b", t0(), lease, 10)
        .await
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].webhook_id, "msg_3");
    assert!(
        store
            .claim_event_deliveries("c", t0(), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Fencing: b cannot finish a's delivery.
    let delivered = EventDeliveryOutcome::Delivered;
    assert!(
        !store
            .finish_event_delivery(a[0].id, "b", &delivered, at(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_event_delivery(a[0].id, "a", &delivered, at(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_event_delivery(a[0].id, "a", &delivered, at(1))
            .await
            .unwrap()
    );

    // A retry is pending until its time, with the error kept.
    let retry = EventDeliveryOutcome::Retry {
        at: at(60),
        error: "HTTP 503".into(),
    };
    assert!(
        store
            .finish_event_delivery(a[1].id, "a", &retry, at(1))
            .await
            .unwrap()
    );
    // Failed for good.
    let failed = EventDeliveryOutcome::Failed {
        error: "HTTP 400".into(),
    };
    assert!(
        store
            .finish_event_delivery(b[0].id, "b", &failed, at(1))
            .await
            .unwrap()
    );

    assert!(
        store
            .claim_event_deliveries("c", at(59), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_event_deliveries("c", at(60), lease, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].webhook_id, "msg_2");
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 503"));

    // c dies: after the lease, d takes it (the same webhook id: the receiver dedupes).
    assert!(
        store
            .claim_event_deliveries("d", at(89), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let taken = store
        .claim_event_deliveries("d", at(91), lease, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (taken[0].webhook_id.as_str(), taken[0].attempts),
        ("msg_2", 3)
    );
    assert!(
        !store
            .finish_event_delivery(taken[0].id, "c", &delivered, at(92))
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_event_delivery(taken[0].id, "d", &delivered, at(92))
            .await
            .unwrap()
    );

    let states: Vec<(String, EventDeliveryState)> = store
        .event_deliveries()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.webhook_id, d.state))
        .collect();
    assert_eq!(
        states,
        [
            ("msg_1".to_owned(), EventDeliveryState::Delivered),
            ("msg_2".to_owned(), EventDeliveryState::Delivered),
            ("msg_3".to_owned(), EventDeliveryState::Failed),
        ]
    );
    assert!(
        store
            .claim_event_deliveries("e", at(10_000), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A 410 (`Gone`) disables the subscription: recorded, its queued and in-flight deliveries
/// become `disabled` (their claimers can no longer finish them), nothing more is queued for it,
/// and other subscriptions are untouched.
pub async fn gone_disables_a_subscription_for_good(store: Arc<dyn Store>) {
    let lease = Duration::from_secs(30);
    store
        .enqueue_event_deliveries(
            &[
                event_delivery("gone", "msg_1"),
                event_delivery("gone", "msg_2"),
                event_delivery("gone", "msg_3"),
                event_delivery("crm", "msg_4"),
            ],
            t0(),
        )
        .await
        .unwrap();
    let first = store
        .claim_event_deliveries("a", t0(), lease, 1)
        .await
        .unwrap();
    let second = store
        .claim_event_deliveries("b", t0(), lease, 1)
        .await
        .unwrap();
    assert_eq!(second[0].webhook_id, "msg_2");
    let gone = EventDeliveryOutcome::Gone {
        error: "HTTP 410".into(),
    };
    assert!(
        store
            .finish_event_delivery(first[0].id, "a", &gone, at(1))
            .await
            .unwrap()
    );
    // b's in-flight delivery was disabled under it.
    let delivered = EventDeliveryOutcome::Delivered;
    assert!(
        !store
            .finish_event_delivery(second[0].id, "b", &delivered, at(2))
            .await
            .unwrap()
    );

    let disabled = store.disabled_event_subscriptions().await.unwrap();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0].subscription, "gone");
    assert_eq!(disabled[0].reason, "HTTP 410");
    assert_eq!(disabled[0].disabled_at, at(1));

    // Nothing more is queued for it, by any path.
    store
        .enqueue_event_deliveries(&[event_delivery("gone", "msg_5")], at(3))
        .await
        .unwrap();
    store
        .ingest_with_events(
            "wa",
            &[message("m1", "+1")],
            &[(0, event_delivery("gone", "msg_6"))],
            at(3),
        )
        .await
        .unwrap();
    let states: Vec<(String, EventDeliveryState)> = store
        .event_deliveries()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.webhook_id, d.state))
        .collect();
    assert_eq!(
        states,
        [
            ("msg_1".to_owned(), EventDeliveryState::Disabled),
            ("msg_2".to_owned(), EventDeliveryState::Disabled),
            ("msg_3".to_owned(), EventDeliveryState::Disabled),
            ("msg_4".to_owned(), EventDeliveryState::Pending),
        ]
    );
    // Only the other subscription's delivery is claimable.
    let rest = store
        .claim_event_deliveries("c", at(100), lease, 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].subscription, "crm");
}
