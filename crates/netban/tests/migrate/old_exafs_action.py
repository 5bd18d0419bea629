#!/usr/bin/env python3
"""A stand-in for the old exafs_action.py, for the migration test.

The real script is not published on any registry this project can reach, so this one does
what docs/fail2ban.md says the old script did, with its file formats: it reads `exafs.cfg`
(INI, section [exafs]: url, api_key, community, whitelist_file), and on `ban` posts an RTBH
rule to ExaFS (comment "fail2ban <jail>") and records its id in `rules.json`
({"address": id}); on `unban` it deletes the rule by that id and forgets it.

    old_exafs_action.py CONFIG RULES ban|unban IP [JAIL] [BANTIME]
"""
import configparser
import json
import math
import os
import sys
import time
import urllib.request


def call(base, method, path, headers, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + "/api/v3" + path, data=data, method=method)
    for k, v in headers.items():
        req.add_header(k, v)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def main():
    cfg_path, rules_path, what, ip = sys.argv[1:5]
    jail = sys.argv[5] if len(sys.argv) > 5 else "default"
    bantime = int(sys.argv[6]) if len(sys.argv) > 6 else 600
    cfg = configparser.ConfigParser()
    cfg.read(cfg_path)
    c = cfg["exafs"]
    base = c["url"].rstrip("/")
    token = call(base, "GET", "/auth", {"x-api-key": c["api_key"]})["token"]
    auth = {"x-access-token": token}
    rules = {}
    if os.path.exists(rules_path):
        with open(rules_path) as f:
            rules = json.load(f)
    if what == "ban":
        family = "ipv6" if ":" in ip else "ipv4"
        mask = 128 if family == "ipv6" else 32
        ahead = bantime if bantime > 0 else 7 * 86400
        expires = int(math.ceil((time.time() + ahead) / 600.0) * 600)
        body = {
            family: ip,
            family + "_mask": mask,
            "community": int(c["community"]),
            "expires": expires,
            "comment": "fail2ban " + jail,
        }
        rule = call(base, "POST", "/rules/rtbh", auth, body)["rule"]
        rules[ip] = rule["id"]
    elif what == "unban":
        rule_id = rules.pop(ip, None)
        if rule_id is not None:
            call(base, "DELETE", "/rules/rtbh/%d" % rule_id, auth)
    with open(rules_path + ".tmp", "w") as f:
        json.dump(rules, f)
    os.replace(rules_path + ".tmp", rules_path)


if __name__ == "__main__":
    main()
