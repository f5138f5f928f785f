-- Switchboard store schema, version 3: routing job ids are never reused.
-- `INTEGER PRIMARY KEY` hands out max(id) + 1, so once `routing_jobs` emptied, the next job got
-- an id a finished job had had, and whoever keys results by job id (the API's command results)
-- could take a stale one for it. `AUTOINCREMENT` keeps the highest id ever used
-- (`sqlite_sequence`). SQLite cannot change a column's type: the table is rebuilt (same columns,
-- same index), its rows copied with their ids.

CREATE TABLE routing_jobs_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,               -- inbound | timer | command | send_failed
    channel_id TEXT,
    event_id BIGINT,                  -- inbound: inbound_events.id
    payload TEXT,                     -- timer: TimerId JSON; command: AgentCommand JSON
    claimed_by TEXT,
    lease_until BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
INSERT INTO routing_jobs_v3 (id, kind, channel_id, event_id, payload, claimed_by, lease_until,
                             attempts, created_at)
    SELECT id, kind, channel_id, event_id, payload, claimed_by, lease_until, attempts, created_at
    FROM routing_jobs;
DROP TABLE routing_jobs;
ALTER TABLE routing_jobs_v3 RENAME TO routing_jobs;
CREATE INDEX routing_jobs_lease ON routing_jobs (lease_until);
