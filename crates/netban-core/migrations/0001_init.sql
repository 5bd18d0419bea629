-- netban state, version 1.
-- leases: one reason to ban a target. until NULL = permanent.
CREATE TABLE leases (
    target  TEXT    NOT NULL,
    jail    TEXT    NOT NULL,
    origin  TEXT    NOT NULL,
    until   INTEGER,
    bantime INTEGER NOT NULL,
    since   INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (target, jail, origin)
) WITHOUT ROWID;
CREATE INDEX leases_until ON leases (until);

-- sink_records: what netban knows a sink holds, and the work pending on it.
-- state: 'held' (the sink confirmed it holds the target) or 'adding' (an add was tried and
-- not confirmed: the remote side may or may not hold it).
CREATE TABLE sink_records (
    sink         TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('held', 'adding')),
    remote_id    TEXT,
    expires      INTEGER,
    lease        TEXT    NOT NULL,
    not_enforced TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_try     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    updated      INTEGER NOT NULL,
    PRIMARY KEY (sink, target)
) WITHOUT ROWID;
CREATE INDEX sink_records_target ON sink_records (target);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
