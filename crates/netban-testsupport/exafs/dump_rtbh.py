"""Print every RTBH rule ExaFS stores, in any state, as a JSON list.

`python dump_rtbh.py DB_PATH` reads the SQLite database directly (standard library only, so
it is quick and works while the server is stopped). ExaFS stores naive local times; they are
converted to unix seconds with this process' time zone, so run it with the server's TZ.
"""

import json
import sqlite3
import sys
from datetime import datetime


def epoch(value):
    if value is None:
        return None
    return int(datetime.fromisoformat(value).timestamp())


def main():
    con = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    rows = con.execute(
        """
        SELECT r.id, r.ipv4, r.ipv4_mask, r.ipv6, r.ipv6_mask, r.community_id,
               c.name AS community, r.comment, r.expires, r.created, u.uuid AS user,
               r.org_id, r.rstate_id, s.description AS rstate
        FROM RTBH r
        JOIN community c ON c.id = r.community_id
        JOIN user u ON u.id = r.user_id
        JOIN rstate s ON s.id = r.rstate_id
        ORDER BY r.id
        """
    ).fetchall()
    out = []
    for row in rows:
        d = dict(row)
        d["expires"] = epoch(d["expires"])
        d["created"] = epoch(d["created"])
        out.append(d)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
