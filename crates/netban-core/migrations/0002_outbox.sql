-- netban state, version 2.
-- events: the outbox. Every lease change appends one row in the same transaction; consumers
-- (the cluster publisher, the stats ingester) read id > their cursor, in order.
CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('start', 'extend', 'end')),
    target   TEXT    NOT NULL,
    jail     TEXT    NOT NULL,
    origin   TEXT    NOT NULL,
    until    INTEGER,
    bantime  INTEGER NOT NULL,
    cause    TEXT    NOT NULL,
    failures INTEGER,
    port     TEXT
);
CREATE INDEX events_target ON events (target, id);
CREATE INDEX events_at ON events (at);

-- cursors: the last event id each consumer has taken.
CREATE TABLE cursors (
    consumer TEXT    PRIMARY KEY,
    id       INTEGER NOT NULL,
    updated  INTEGER NOT NULL
) WITHOUT ROWID;

-- adopted: netban took the entry over from another state (a lost or restored state, the
-- old script, the other hub) and removes it at the last unban like its own.
-- foreign_owner: the sink matched an entry somebody else made; netban never removes it.
ALTER TABLE sink_records ADD COLUMN adopted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sink_records ADD COLUMN foreign_owner TEXT;

-- kept: entries netban finds on a sink, or leaves there after the last unban, on purpose
-- (not its own to remove). Shown by status, explain and metrics until they are gone.
CREATE TABLE kept (
    sink      TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    remote_id TEXT    NOT NULL DEFAULT '',
    owner     TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    expires   INTEGER,
    noticed   INTEGER NOT NULL,
    PRIMARY KEY (sink, target, remote_id)
) WITHOUT ROWID;

-- refusals: targets the guard refused, bounded (the oldest are pruned).
CREATE TABLE refusals (
    target TEXT    NOT NULL,
    jail   TEXT    NOT NULL,
    origin TEXT    NOT NULL,
    reason TEXT    NOT NULL,
    first  INTEGER NOT NULL,
    last   INTEGER NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (target, jail, origin)
) WITHOUT ROWID;
CREATE INDEX refusals_last ON refusals (last);
