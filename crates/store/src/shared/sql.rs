//! The statements both backends run as they are (portable SQL: `$N` parameters,
//! `ON CONFLICT`, `RETURNING`, `LIKE … ESCAPE`, nested `REPLACE`; JSON in `TEXT`, instants as
//! unix milliseconds). Each names its parameters and what it returns.

// ---- ingest ------------------------------------------------------------------------------

/// `$1` channel, `$2` kind, `$3` provider id, `$4` now. Affects 0 rows for a duplicate.
/// (SQLite's per-event dedupe; PostgreSQL inserts a webhook's keys in one statement.)
pub(crate) const INSERT_DEDUPE_KEY: &str = "INSERT INTO dedupe_keys (channel_id, kind, provider_id, first_seen_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// `$1` channel, `$2` kind, `$3` provider id, `$4` ref id, `$5` payload, `$6` now.
/// Returns `id`.
pub(crate) const INSERT_EVENT: &str = "INSERT INTO inbound_events (channel_id, kind, provider_id, ref_id, payload, received_at) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";

/// `$1` channel, `$2` address id, `$3` address JSON, `$4` profile name, `$5` now.
pub(crate) const UPSERT_CONTACT: &str = "INSERT INTO contacts (channel_id, address, address_json, profile_name, first_seen_at, last_inbound_at) \
     VALUES ($1, $2, $3, $4, $5, $5) \
     ON CONFLICT (channel_id, address) DO UPDATE SET \
     last_inbound_at = excluded.last_inbound_at, \
     profile_name = COALESCE(excluded.profile_name, contacts.profile_name)";

/// `$1` channel, `$2` provider message id, `$3` peer, `$4` event JSON, `$5` now.
pub(crate) const INSERT_INBOUND_MESSAGE: &str = "INSERT INTO messages (channel_id, direction, provider_message_id, peer, body, created_at, updated_at) \
     VALUES ($1, 'in', $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING";

/// `$1` channel, `$2` event id, `$3` now.
pub(crate) const INSERT_INBOUND_JOB: &str = "INSERT INTO routing_jobs (kind, channel_id, event_id, created_at) \
     VALUES ('inbound', $1, $2, $3)";

/// `$1` kind, `$2` payload, `$3` now. Returns `id`.
pub(crate) const INSERT_JOB: &str =
    "INSERT INTO routing_jobs (kind, payload, created_at) VALUES ($1, $2, $3) RETURNING id";

/// `$1` channel, `$2` provider message id: the outbound message a status is about.
pub(crate) const SELECT_OUTBOUND_DELIVERY: &str = "SELECT id, delivery FROM messages \
     WHERE channel_id = $1 AND direction = 'out' AND provider_message_id = $2";

/// `$1` channel, `$2` the status's client reference (the outbox idempotency key), `$3` the
/// provider's message id, `$4` now: an `unknown` send that a status proves was sent becomes
/// `sent`. Returns its `id`.
pub(crate) const SETTLE_UNKNOWN_SEND: &str = "UPDATE outbox SET state = 'sent', provider_message_id = $3, \
            last_error = 'outcome was unknown; settled by a provider status', updated_at = $4 \
     WHERE channel_id = $1 AND idempotency_key = $2 AND state = 'unknown' RETURNING id";

/// `$1` delivery JSON, `$2` now, `$3` message id.
pub(crate) const UPDATE_DELIVERY: &str =
    "UPDATE messages SET delivery = $1, updated_at = $2 WHERE id = $3";

// ---- routing -----------------------------------------------------------------------------

/// `$1` event id: the payload of an inbound routing job.
pub(crate) const SELECT_EVENT_PAYLOAD: &str = "SELECT payload FROM inbound_events WHERE id = $1";

/// `$1` scope. Returns `version`, `state`.
pub(crate) const SELECT_STATE: &str = "SELECT version, state FROM routing_state WHERE scope = $1";

/// `$1` scope, `$2` state, `$3` now: the first commit. Returns `version`; no row when
/// another came first.
pub(crate) const INSERT_STATE: &str = "INSERT INTO routing_state (scope, version, state, updated_at) \
     VALUES ($1, 1, $2, $3) ON CONFLICT DO NOTHING RETURNING version";

/// `$1` state, `$2` now, `$3` scope, `$4` base version. Returns the new `version`; no row
/// when the version moved.
pub(crate) const UPDATE_STATE: &str = "UPDATE routing_state SET version = version + 1, state = $1, updated_at = $2 \
     WHERE scope = $3 AND version = $4 RETURNING version";

/// `$1` job id, `$2` worker. Returns `id`; no row when the worker lost its claim.
pub(crate) const DELETE_CLAIMED_JOB: &str =
    "DELETE FROM routing_jobs WHERE id = $1 AND claimed_by = $2 RETURNING id";

/// `$1` key, `$2` payload, `$3` due.
pub(crate) const UPSERT_TIMER: &str = "INSERT INTO timers (timer_key, payload, due_at) VALUES ($1, $2, $3) \
     ON CONFLICT (timer_key) DO UPDATE SET payload = excluded.payload, due_at = excluded.due_at";

/// `$1` key.
pub(crate) const DELETE_TIMER: &str = "DELETE FROM timers WHERE timer_key = $1";

/// `$1` id, `$2` channel, `$3` customer, `$4` state, `$5` queue, `$6` agent,
/// `$7` end reason, `$8` now.
pub(crate) const UPSERT_CONVERSATION: &str = "INSERT INTO conversations (id, channel_id, customer, state, queue, agent, end_reason, opened_at, updated_at, closed_at) \
     VALUES ($1, COALESCE($2, ''), COALESCE($3, ''), COALESCE($4, 'open'), $5, $6, $7, $8, $8, \
             CASE WHEN $4 = 'ended' THEN $8 ELSE NULL END) \
     ON CONFLICT (id) DO UPDATE SET \
       state = COALESCE($4, conversations.state), \
       queue = COALESCE($5, conversations.queue), \
       agent = COALESCE($6, conversations.agent), \
       end_reason = COALESCE($7, conversations.end_reason), \
       updated_at = $8, \
       closed_at = CASE WHEN $4 = 'ended' THEN $8 ELSE conversations.closed_at END";

/// `$1` conversation, `$2` entry JSON, `$3` now.
pub(crate) const INSERT_TRANSCRIPT_ENTRY: &str =
    "INSERT INTO transcript_entries (conversation_id, entry, created_at) VALUES ($1, $2, $3)";

/// `$1` conversation, `$2` body JSON, `$3` now.
pub(crate) const INSERT_TRANSCRIPT: &str =
    "INSERT INTO transcripts (conversation_id, body, written_at) VALUES ($1, $2, $3)";

/// `$1` conversation, `$2` channel, `$3` provider message id: an inbound message routing put
/// into a conversation (one already linked keeps its conversation).
pub(crate) const LINK_MESSAGE: &str = "UPDATE messages SET conversation_id = $1 \
     WHERE channel_id = $2 AND direction = 'in' AND provider_message_id = $3 \
       AND conversation_id IS NULL";

// ---- outbox ------------------------------------------------------------------------------

/// `$1` channel, `$2` idempotency key, `$3` conversation, `$4` message JSON, `$5` now.
/// Returns `id`, nothing for a known key.
pub(crate) const INSERT_OUTBOX: &str = "INSERT INTO outbox (channel_id, idempotency_key, conversation_id, message, state, attempts, next_attempt_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5) \
     ON CONFLICT (channel_id, idempotency_key) DO NOTHING RETURNING id";

/// `$1` channel, `$2` idempotency key. Returns `id`.
pub(crate) const SELECT_OUTBOX_ID: &str =
    "SELECT id FROM outbox WHERE channel_id = $1 AND idempotency_key = $2";

/// `$1` channel, `$2` conversation, `$3` outbox id, `$4` peer, `$5` message JSON, `$6` now.
pub(crate) const INSERT_OUTBOUND_MESSAGE: &str = "INSERT INTO messages (channel_id, direction, conversation_id, outbox_id, peer, body, created_at, updated_at) \
     VALUES ($1, 'out', $2, $3, $4, $5, $6, $6)";

/// `$1` state, `$2` next attempt, `$3` provider id, `$4` error, `$5` error class, `$6` now,
/// `$7` job id, `$8` worker. Returns `channel_id`, `conversation_id`; no row unless the
/// worker holds the claim.
pub(crate) const FINISH_OUTBOX: &str = "UPDATE outbox SET state = $1, next_attempt_at = COALESCE($2, next_attempt_at), \
        provider_message_id = COALESCE($3, provider_message_id), last_error = $4, \
        error_class = $5, claimed_by = NULL, lease_until = NULL, updated_at = $6 \
     WHERE id = $7 AND claimed_by = $8 AND state = 'sending' \
     RETURNING channel_id, conversation_id";

/// `$1` at, `$2` now, `$3` job id, `$4` worker: pending again at `$1`, the claim's attempt not
/// counted. Returns `channel_id`; no row unless the worker holds the claim.
pub(crate) const DEFER_OUTBOX: &str = "UPDATE outbox SET state = 'pending', next_attempt_at = $1, attempts = attempts - 1, \
        claimed_by = NULL, lease_until = NULL, updated_at = $2 \
     WHERE id = $3 AND claimed_by = $4 AND state = 'sending' RETURNING channel_id";

/// `$1` now, `$2` message JSON, `$3` error, `$4` job id, `$5` worker: the new message, pending
/// now. Returns `channel_id`; no row unless the worker holds the claim.
pub(crate) const REWRITE_OUTBOX: &str = "UPDATE outbox SET state = 'pending', next_attempt_at = $1, message = $2, last_error = $3, \
        claimed_by = NULL, lease_until = NULL, updated_at = $1 \
     WHERE id = $4 AND claimed_by = $5 AND state = 'sending' RETURNING channel_id";

/// `$1` message JSON, `$2` now, `$3` outbox id: the outbound message record of a rewritten row.
pub(crate) const REWRITE_MESSAGE: &str =
    "UPDATE messages SET body = $1, updated_at = $2 WHERE outbox_id = $3";

/// `$1` channel, `$2` provider message id: statuses that came before the send's answer.
pub(crate) const SELECT_EARLY_STATUSES: &str = "SELECT payload FROM inbound_events \
     WHERE channel_id = $1 AND ref_id = $2 AND kind = 'status' ORDER BY id";

/// `$1` provider message id, `$2` delivery JSON, `$3` now, `$4` outbox id.
pub(crate) const SENT_MESSAGE: &str = "UPDATE messages SET provider_message_id = $1, delivery = $2, updated_at = $3 \
     WHERE outbox_id = $4";

/// `$1` now: sends whose lease ran out become `unknown`. Returns their `id`s.
pub(crate) const EXPIRE_SENDING: &str = "UPDATE outbox SET state = 'unknown', \
            last_error = 'the worker stopped during the send: outcome unknown', \
            claimed_by = NULL, lease_until = NULL, updated_at = $1 \
     WHERE state = 'sending' AND lease_until < $1 RETURNING id";

/// The outbox columns [`super::outbox_from_row`] reads (a macro, to build statements with
/// `concat!`).
macro_rules! outbox_columns {
    () => {
        "id, channel_id, conversation_id, message, state, attempts, next_attempt_at, \
         provider_message_id, last_error"
    };
}
pub(crate) use outbox_columns;

/// Every outbox job, oldest first.
pub(crate) const SELECT_OUTBOX: &str =
    concat!("SELECT ", outbox_columns!(), " FROM outbox ORDER BY id");

/// `$1` outbox id: the row with its message's delivery state ([`super::outbox_message_from_row`]).
pub(crate) const SELECT_OUTBOX_MESSAGE: &str = "SELECT o.id, o.channel_id, o.conversation_id, o.message, o.state, o.attempts, \
        o.next_attempt_at, o.provider_message_id, o.last_error, o.created_at, \
        o.updated_at, m.delivery \
     FROM outbox o LEFT JOIN messages m ON m.outbox_id = o.id WHERE o.id = $1";

// ---- operators' views and the API's reads ------------------------------------------------

/// `$1` channel: its messages, oldest first ([`super::message_from_row`]).
pub(crate) const SELECT_MESSAGES: &str = "SELECT id, direction, provider_message_id, conversation_id, peer, body, delivery \
     FROM messages WHERE channel_id = $1 ORDER BY id";

/// Row counts ([`super::counts_from_row`]).
pub(crate) const COUNTS: &str = "SELECT \
       (SELECT COUNT(*) FROM inbound_events) AS events, \
       (SELECT COUNT(*) FROM dedupe_keys) AS dedupe_keys, \
       (SELECT COUNT(*) FROM messages) AS messages, \
       (SELECT COUNT(*) FROM contacts) AS contacts, \
       (SELECT COUNT(*) FROM routing_jobs) AS routing_jobs, \
       (SELECT COUNT(*) FROM timers) AS timers, \
       (SELECT COUNT(*) FROM outbox) AS outbox, \
       (SELECT COUNT(*) FROM conversations) AS conversations, \
       (SELECT COUNT(*) FROM transcript_entries) AS transcript_entries";

/// The conversation columns [`super::conversation_from_row`] reads.
macro_rules! conversation_columns {
    () => {
        "SELECT id, channel_id, customer, state, queue, agent, end_reason, opened_at, \
         updated_at, closed_at FROM conversations "
    };
}

/// `$1` state, `$2` queue, `$3` channel, `$4` agent (each `NULL` for any), `$5`/`$6` the
/// cursor's `opened_at`/id (`NULL` for the first page), `$7` limit: newest first.
pub(crate) const SELECT_CONVERSATIONS: &str = concat!(
    conversation_columns!(),
    "WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR queue = $2) \
       AND ($3 IS NULL OR channel_id = $3) AND ($4 IS NULL OR agent = $4) \
       AND ($5 IS NULL OR opened_at < $5 OR (opened_at = $5 AND id < $6)) \
     ORDER BY opened_at DESC, id DESC LIMIT $7"
);

/// `$1` id.
pub(crate) const SELECT_CONVERSATION: &str = concat!(conversation_columns!(), "WHERE id = $1");

/// The columns of [`super::stored_message_from_row`], from `messages m` joined with its
/// `outbox o`.
macro_rules! stored_messages {
    () => {
        "SELECT m.id, m.channel_id, m.direction, m.provider_message_id, m.conversation_id, \
         m.outbox_id, m.peer, m.body, m.delivery, m.created_at, o.state AS outbox_state \
         FROM messages m LEFT JOIN outbox o ON o.id = m.outbox_id "
    };
}

/// `$1` conversation: its messages in the order they were stored.
pub(crate) const SELECT_CONVERSATION_MESSAGES: &str = concat!(
    stored_messages!(),
    "WHERE m.conversation_id = $1 ORDER BY m.id"
);

/// `$1` channel, `$2` provider message id: the outbound message first.
pub(crate) const SELECT_MESSAGE_BY_PROVIDER_ID: &str = concat!(
    stored_messages!(),
    "WHERE m.channel_id = $1 AND m.provider_message_id = $2 \
     ORDER BY m.direction DESC LIMIT 1"
);

/// The contact columns [`super::contact_from_row`] reads.
macro_rules! contacts {
    () => {
        "SELECT channel_id, address, address_json, profile_name, first_seen_at, \
         last_inbound_at FROM contacts "
    };
}

/// `$1` the lower-cased query as a "contains" pattern, `$2` its digits as one (or `NULL`),
/// `$3` limit: contacts whose address or profile name contains the query, or whose address
/// without the phone symbols `+ ( ) - .` and spaces contains its digits; most recently active
/// first.
pub(crate) const SEARCH_CONTACTS: &str = concat!(
    contacts!(),
    "WHERE LOWER(address) LIKE $1 ESCAPE '\\' \
        OR LOWER(COALESCE(profile_name, '')) LIKE $1 ESCAPE '\\' \
        OR ($2 IS NOT NULL AND \
            REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(address, '+', ''), '(', ''), \
                    ')', ''), '-', ''), ' ', ''), '.', '') LIKE $2 ESCAPE '\\') \
     ORDER BY last_inbound_at DESC, id DESC LIMIT $3"
);

/// `$1` channel, `$2` address.
pub(crate) const SELECT_CONTACT: &str =
    concat!(contacts!(), "WHERE channel_id = $1 AND address = $2");

/// `$1` conversation: its transcript entries in order.
pub(crate) const SELECT_TRANSCRIPT_ENTRIES: &str =
    "SELECT entry FROM transcript_entries WHERE conversation_id = $1 ORDER BY id";

/// `$1` conversation: its written transcript copies in order.
pub(crate) const SELECT_TRANSCRIPTS: &str =
    "SELECT written_at, body FROM transcripts WHERE conversation_id = $1 ORDER BY id";
