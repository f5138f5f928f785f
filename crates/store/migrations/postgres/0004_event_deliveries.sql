-- Switchboard store schema, version 4: integration event webhooks.
-- One row per (event, subscription): the signed POST the delivery worker makes, queued in the
-- same transaction as the change that caused the event. `webhook_id` is the Standard Webhooks
-- `webhook-id` (`msg_…`), the receiver's idempotency key: the same on every attempt.
CREATE TABLE event_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription TEXT NOT NULL,
    event_type TEXT NOT NULL,
    webhook_id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,            -- the exact JSON body sent
    state TEXT NOT NULL,              -- pending | sending | delivered | failed | disabled
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by TEXT,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX event_deliveries_due ON event_deliveries (state, next_attempt_at);
CREATE INDEX event_deliveries_subscription ON event_deliveries (subscription, state);

-- Subscriptions whose endpoint answered 410 Gone: nothing more is queued or sent for them.
CREATE TABLE event_subscriptions_disabled (
    subscription TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    disabled_at BIGINT NOT NULL
);
