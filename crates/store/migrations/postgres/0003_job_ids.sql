-- Switchboard store schema, version 3, PostgreSQL: routing job ids are never reused.
-- SQLite's version 3 rebuilds `routing_jobs` with AUTOINCREMENT; here the id is an identity
-- column, whose sequence never hands out a value twice, so nothing changes but the note. (Kept so
-- both backends have the same schema versions.)
COMMENT ON COLUMN routing_jobs.id IS 'identity: never reused (the API keys command results by it)';
