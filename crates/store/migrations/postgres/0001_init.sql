-- Switchboard store schema, version 1, PostgreSQL.
-- The same tables, columns and indexes as `../sqlite/0001_init.sql` (keep them in step): TEXT,
-- BIGINT, JSON as TEXT, instants as unix milliseconds (BIGINT), ON CONFLICT upserts. It differs
-- only in the id columns (BIGINT GENERATED ALWAYS AS IDENTITY instead of INTEGER PRIMARY KEY) and
-- in the counters (BIGINT: PostgreSQL does not decode an INTEGER as a 64-bit value).

-- Customers: one address on one channel.
CREATE TABLE contacts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id TEXT NOT NULL,
    address TEXT NOT NULL,            -- the provider-native id (E.164, WhatsApp id, PSID)
    address_json TEXT NOT NULL,       -- the full core Address
    profile_name TEXT,
    first_seen_at BIGINT NOT NULL,
    last_inbound_at BIGINT NOT NULL,
    UNIQUE (channel_id, address)
);

-- Conversations as the routing engine reports them (its state holds the live ones).
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,              -- conv_N
    channel_id TEXT NOT NULL,
    customer TEXT NOT NULL,
    state TEXT NOT NULL,              -- open | queued | assigned | dismissed | ended
    queue TEXT,
    agent TEXT,
    end_reason TEXT,
    opened_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX conversations_state ON conversations (state, channel_id);

-- Messages in and out, with the provider's id and the merged delivery state.
CREATE TABLE messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id TEXT NOT NULL,
    direction TEXT NOT NULL,          -- in | out
    provider_message_id TEXT,         -- NULL for outbound until the provider accepted it
    conversation_id TEXT,
    outbox_id BIGINT,
    peer TEXT NOT NULL,               -- the customer's address id
    body TEXT NOT NULL,               -- inbound: the event JSON; outbound: the OutboundMessage JSON
    delivery TEXT,                    -- DeliveryState JSON (outbound)
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX messages_provider_id ON messages (channel_id, direction, provider_message_id);
CREATE INDEX messages_conversation ON messages (conversation_id);

-- The routing engine's state: one serialized row per routing scope, versioned for
-- optimistic concurrency (a writer that read version N commits only while it is still N).
CREATE TABLE routing_state (
    scope TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Durable timers of the routing engine; one per (conversation, kind), a restart replaces.
CREATE TABLE timers (
    timer_key TEXT PRIMARY KEY,
    payload TEXT NOT NULL,            -- the routing TimerId JSON
    due_at BIGINT NOT NULL
);
CREATE INDEX timers_due ON timers (due_at);

-- Dedupe keys of inbound events: a provider retry or a replay inserts nothing.
CREATE TABLE dedupe_keys (
    channel_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (channel_id, kind, provider_id)
);
CREATE INDEX dedupe_keys_age ON dedupe_keys (first_seen_at);

-- Every inbound event, as the connector normalized it.
CREATE TABLE inbound_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    ref_id TEXT,                      -- statuses: the provider id of the message they are about
    payload TEXT NOT NULL,            -- the InboundEvent JSON
    received_at BIGINT NOT NULL
);
CREATE INDEX inbound_events_ref ON inbound_events (channel_id, ref_id);

-- Work for the routing driver: inbound events, due timers, agent commands.
CREATE TABLE routing_jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,               -- inbound | timer | command
    channel_id TEXT,
    event_id BIGINT,                  -- inbound: inbound_events.id
    payload TEXT,                     -- timer: TimerId JSON; command: AgentCommand JSON
    claimed_by TEXT,
    lease_until BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX routing_jobs_lease ON routing_jobs (lease_until);

-- Outbound messages to send: written with the state change that caused them.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    conversation_id TEXT,
    message TEXT NOT NULL,            -- the OutboundMessage JSON
    state TEXT NOT NULL,              -- pending | sending | sent | failed | unknown | opted_out
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by TEXT,
    lease_until BIGINT,
    provider_message_id TEXT,
    last_error TEXT,
    error_class TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (channel_id, idempotency_key)
);
CREATE INDEX outbox_ready ON outbox (state, next_attempt_at);

-- Transcripts: entries as they happen, and the CRM copies written at warning, dismissal, end.
CREATE TABLE transcript_entries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    entry TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX transcript_entries_conversation ON transcript_entries (conversation_id, id);

CREATE TABLE transcripts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    body TEXT NOT NULL,
    written_at BIGINT NOT NULL
);
CREATE INDEX transcripts_conversation ON transcripts (conversation_id, id);
