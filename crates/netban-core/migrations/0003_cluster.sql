-- netban state, version 3: the cluster bus (crate netban-cluster).

-- cluster_peers: per origin (a trusted peer's host id, or `fanout`), the newest event taken
-- from it. (epoch, seq, sub) is the replay high-water mark: it only grows, and an event at or
-- below it is a replay. last_at is the origin's own timestamp of that event, last_seen when it
-- arrived here, resynced when the origin's snapshot was last loaded.
CREATE TABLE cluster_peers (
    origin    TEXT    PRIMARY KEY,
    epoch     INTEGER NOT NULL DEFAULT 0,
    seq       INTEGER NOT NULL DEFAULT 0,
    sub       INTEGER NOT NULL DEFAULT 0,
    last_at   INTEGER,
    last_seen INTEGER,
    resynced  INTEGER
) WITHOUT ROWID;

-- cluster_counts: events taken (`accepted`) or refused (`replay`, `rate`, ...) per origin.
CREATE TABLE cluster_counts (
    origin TEXT    NOT NULL,
    cause  TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (origin, cause)
) WITHOUT ROWID;

-- cluster_bus: where a reader of the Redis stream is (the last entry id it handled) and the
-- stream's epoch that id belongs to (a Redis that lost its data starts a new epoch).
CREATE TABLE cluster_bus (
    name      TEXT    PRIMARY KEY,
    stream_id TEXT    NOT NULL,
    epoch     TEXT    NOT NULL,
    updated   INTEGER NOT NULL
) WITHOUT ROWID;

-- cluster_revokes: fleet-wide unbans (`netban unban --everywhere`) waiting to be published.
-- after_event is the newest outbox event id when it was asked, so the publisher sends it in
-- order with the events around it.
CREATE TABLE cluster_revokes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    after_event INTEGER NOT NULL,
    target      TEXT    NOT NULL
);
