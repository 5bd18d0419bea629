-- netban statistics (stats.db), version 1. Days are days since 1970-01-01 in the configured
-- zone; a ban is one counted lease start (see model.rs for the counting rule).

-- marks: per host, the highest outbox id applied; written in the same transaction as the
-- counts, so a batch recorded twice counts once.
CREATE TABLE marks (
    host    TEXT    NOT NULL PRIMARY KEY,
    last_id INTEGER NOT NULL,
    last_at INTEGER NOT NULL
) WITHOUT ROWID;

-- targets / networks: dictionaries, so rollups and raw rows hold small integers (distinct
-- counts and top lists then aggregate integers, not strings). Pruned with the days.
CREATE TABLE targets (
    id     INTEGER NOT NULL PRIMARY KEY,
    target TEXT    NOT NULL UNIQUE
);

CREATE TABLE networks (
    id      INTEGER NOT NULL PRIMARY KEY,
    network TEXT    NOT NULL UNIQUE
);

-- events: the raw counted bans, for history and for rebuilding rollups.
CREATE TABLE events (
    day     INTEGER NOT NULL,
    host    TEXT    NOT NULL,
    id      INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    target  INTEGER NOT NULL, -- targets.id
    jail    TEXT    NOT NULL,
    country TEXT    NOT NULL,
    asn     INTEGER,
    network INTEGER NOT NULL, -- networks.id
    PRIMARY KEY (day, host, id)
) WITHOUT ROWID;

-- daily: bans per day and dimension: 0 total (key ''), 1 country, 2 jail, 3 asn ('AS<n>' or
-- 'unknown'), 4 host, 5 host and jail ('host<TAB>jail').
CREATE TABLE daily (
    day  INTEGER NOT NULL,
    dim  INTEGER NOT NULL,
    key  TEXT    NOT NULL,
    bans INTEGER NOT NULL,
    PRIMARY KEY (day, dim, key)
) WITHOUT ROWID;

-- daily_targets / daily_networks: bans per day and target (network), with what the latest
-- ban of that day said about it; distinct targets and top lists come from here.
CREATE TABLE daily_targets (
    day     INTEGER NOT NULL,
    target  INTEGER NOT NULL, -- targets.id
    bans    INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    country TEXT    NOT NULL,
    asn     INTEGER,
    jail    TEXT    NOT NULL,
    PRIMARY KEY (day, target)
) WITHOUT ROWID;

CREATE TABLE daily_networks (
    day     INTEGER NOT NULL,
    network INTEGER NOT NULL, -- networks.id
    bans    INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    country TEXT    NOT NULL,
    asn     INTEGER,
    PRIMARY KEY (day, network)
) WITHOUT ROWID;

-- asn_names: the latest organisation name seen per AS (bounded by the number of ASes).
CREATE TABLE asn_names (
    asn INTEGER NOT NULL PRIMARY KEY,
    org TEXT    NOT NULL
);
