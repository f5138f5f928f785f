-- Switchboard store schema, version 2: indexes for the agent/admin API's reads.
-- Portable (plain CREATE INDEX).

-- Conversation lists: newest first, optionally by agent or state.
CREATE INDEX conversations_opened ON conversations (opened_at, id);
CREATE INDEX conversations_agent ON conversations (agent, opened_at);

-- An outbox row's message (delivery state), and the sender's update of it after a send.
CREATE INDEX messages_outbox ON messages (outbox_id);

-- Messages of a contact (inbound messages are linked to their conversation by routing).
CREATE INDEX messages_peer ON messages (channel_id, peer);
