// The summary cards, the problems banner, the top lists (ASNs, networks, repeat
// offenders, hosts) and the cluster panel.

import { countryName } from "./charts.js";
import { el, fill, num, rel, span, utc } from "./format.js";

function card(label, value, sub, cls) {
  return el("div", { class: `card ${cls || ""}` }, el("div", { class: "label", text: label }), el("div", { class: "value", text: value }), sub ? el("div", { class: "sub", text: sub }) : null);
}

/** The cards across the top, from `status`, `active` and (when on) `summary`. */
export function cards(status, active, summary, days) {
  const out = [];
  if (summary) {
    const r = summary.report;
    out.push(card(`Bans, ${days} days`, num(r.total), `${num(Math.round(r.total / Math.max(1, r.days)))} a day`));
    out.push(card("Distinct targets", num(r.targets), `${Object.keys(r.by_country).length} countries`));
  }
  if (active) {
    const c = active.counts || {};
    out.push(card("Blocked now", num(active.total), `${num(c.in_place || 0)} in place on every sink`));
    const failing = (c.failing || 0) + (c.not_enforced || 0);
    out.push(card("Failing", num(failing), `${num(c.pending || 0)} pending, ${num(c.removing || 0)} removing`, failing ? "bad" : ""));
  }
  if (status) {
    out.push(card("Refused, 24 h", num(status.refusals_24h), "by the guard", status.refusals_24h ? "warn" : ""));
    out.push(card("Up for", span(status.uptime), `since ${utc(status.started)}`));
  }
  fill(document.getElementById("cards"), out);
}

/** Everything that needs the operator, above the charts. */
export function problems(status, errors) {
  const out = [];
  for (const e of errors) out.push(el("div", { class: "problem bad" }, el("strong", { text: "error: " }), e));
  if (status) {
    for (const s of status.sinks) {
      if (s.failing > 0) {
        out.push(el("div", { class: "problem bad" }, el("strong", { text: `sink ${s.sink}: ` }), `${num(s.failing)} failing`, s.last_error ? ` (last error: ${s.last_error})` : ""));
      }
      if (s.not_enforced > 0) {
        out.push(el("div", { class: "problem bad" }, el("strong", { text: `sink ${s.sink}: ` }), `${num(s.not_enforced)} NOT ENFORCED by the sink`));
      }
    }
    for (const p of status.guard_problems) out.push(el("div", { class: "problem" }, el("strong", { text: "guard: " }), `${p}; fix the file`));
    for (const k of status.kept) {
      out.push(el("div", { class: "problem" }, el("strong", { text: `sink ${k.sink}: ` }), `${k.target} stays on the sink${k.expires ? ` until ${utc(k.expires)}` : ""}: ${k.reason} (${k.owner})`));
    }
    for (const m of status.mass_unbans) {
      out.push(el("div", { class: "problem" }, el("strong", { text: `jail ${m.jail}: ` }), `${num(m.unbanned)} bans were unbanned within seconds at ${utc(m.at)} (fail2ban stopped the jail without the netban action's actionflush?); ${num(m.restored)} re-added`));
    }
  }
  const box = document.getElementById("problems");
  fill(box, out);
  box.classList.toggle("hidden", out.length === 0);
}

function meter(value, max) {
  const m = el("div", { class: "meter" });
  m.style.width = `${Math.max(2, Math.round((value * 100) / Math.max(1, max)))}%`;
  return m;
}

function list(id, head, rows) {
  const t = document.getElementById(id);
  if (rows.length === 0) {
    fill(t, el("tbody", {}, el("tr", {}, el("td", { class: "empty", colspan: head.length, text: "no bans in this window" }))));
    return;
  }
  fill(
    t,
    el("thead", {}, el("tr", {}, head.map(([h, cls]) => el("th", { class: cls || "", text: h })))),
    el("tbody", {}, rows),
  );
}

/** The top lists of a `summary` answer. */
export function tops(s) {
  const maxA = Math.max(0, ...s.top_asns.map((a) => a.bans));
  list(
    "top-asns",
    [["AS"], ["organisation", "opt"], ["bans", "num"]],
    s.top_asns.map((a) => el("tr", {}, el("td", { class: "mono", text: a.asn }), el("td", { class: "opt", text: a.org || "" }), el("td", { class: "num bar-cell" }, num(a.bans), meter(a.bans, maxA)))),
  );
  const maxN = Math.max(0, ...s.top_networks.map((n) => n.bans));
  list(
    "top-networks",
    [["network"], ["country"], ["AS", "opt"], ["bans", "num"]],
    s.top_networks.map((n) =>
      el("tr", {}, el("td", { class: "mono", text: n.network }), el("td", { text: n.country, title: countryName(n.country) }), el("td", { class: "mono opt", text: n.asn, title: n.org || "" }), el("td", { class: "num bar-cell" }, num(n.bans), meter(n.bans, maxN))),
    ),
  );
  const now = s.generated;
  list(
    "top-offenders",
    [["target"], ["bans", "num"], ["last seen"], ["country"], ["jail", "opt"]],
    s.top_offenders.map((o) =>
      el("tr", {}, el("td", { class: "mono", text: o.target }), el("td", { class: "num", text: num(o.bans) }), el("td", { text: rel(o.last_seen, now, true), title: utc(o.last_seen) }), el("td", { text: o.country, title: countryName(o.country) }), el("td", { class: "opt", text: o.jail })),
    ),
  );
  const hp = document.getElementById("hosts-panel");
  hp.classList.toggle("hidden", s.hosts.length < 2);
  list(
    "hosts",
    [["host"], ["bans", "num"], ["jails", "opt"], ["last ban"]],
    s.hosts.map((h) =>
      el(
        "tr",
        {},
        el("td", { class: "mono", text: h.host }),
        el("td", { class: "num", text: num(h.bans) }),
        el("td", { class: "opt", text: Object.entries(h.by_jail).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([j, n]) => `${j} ${num(n)}`).join(", ") }),
        el("td", { text: h.last_seen ? rel(h.last_seen, now, true) : "", title: utc(h.last_seen) }),
      ),
    ),
  );
}

/** One link of the cluster (publisher, receiver, fanout): up since when, or down and why. */
function link(l, now) {
  if (!l) return "";
  if (l.connected) return l.since ? `connected, ${rel(l.since, now)}` : "connected";
  return `DOWN${l.last_error ? `: ${l.last_error}` : ""}${l.since ? ` (${rel(l.since, now)})` : ""}`;
}

/** The cluster's status (`/api/v1/cluster`, netban_cluster::ClusterStatus): the bus and its
 * lag, the fanout link, the exclusive sinks' locks, and the peers as a table. */
export function cluster(c) {
  const panel = document.getElementById("cluster-panel");
  if (!c) {
    panel.classList.add("hidden");
    return;
  }
  panel.classList.remove("hidden");
  const now = Math.floor(Date.now() / 1000);
  const facts = [["host", c.host, ""]];
  const b = c.bus;
  if (b) {
    if (b.url) facts.push(["redis", b.url, ""]);
    facts.push(["publisher", link(b.publisher, now), b.publisher && !b.publisher.connected ? "bad" : ""]);
    facts.push(["receiver", link(b.receiver, now), b.receiver && !b.receiver.connected ? "bad" : ""]);
    facts.push(["to publish", b.publish_lag > 0 ? `${num(b.publish_lag)} events waiting in the outbox` : "nothing waiting", b.publish_lag > 0 ? "warn" : ""]);
    const lag = b.lag_seconds;
    facts.push(["reading", lag === null || lag === undefined ? "not yet" : lag > 0 ? `${span(lag)} behind the stream` : "caught up", lag > 5 ? "warn" : ""]);
    facts.push(["published", `${num(b.published || 0)} since the daemon started`, ""]);
  }
  if (c.fanout) facts.push(["fanout", link(c.fanout, now), c.fanout.connected ? "" : "bad"]);
  for (const [sink, held] of c.locks || []) facts.push([`sink ${sink}`, held ? "this host writes it (holds the lock)" : "standby (another hub holds the lock)", ""]);
  fill(document.getElementById("cluster-facts"), facts.flatMap(([k, v, cls]) => [el("dt", { text: k }), el("dd", { class: cls, text: v })]));
  const t = document.getElementById("cluster-peers");
  const peers = c.peers || [];
  if (peers.length === 0) {
    fill(t, el("tbody", {}, el("tr", {}, el("td", { class: "empty", text: "no peers" }))));
    return;
  }
  const refused = (p) => Object.entries(p.counts || {}).filter(([k, n]) => k !== "accepted" && n > 0).map(([k, n]) => `${k.replace(/_/g, " ")} ${num(n)}`).join(", ");
  fill(
    t,
    el("thead", {}, el("tr", {}, ["peer", "last event", "arrived", "leases here", "accepted", "refused", "snapshot"].map((h, i) => el("th", { class: i >= 3 && i <= 4 ? "num" : "", text: h })))),
    el(
      "tbody",
      {},
      peers.map((p) =>
        el(
          "tr",
          { class: p.trusted ? "" : "untrusted" },
          el("td", { class: "mono", text: p.trusted ? p.host : `${p.host} (not trusted)` }),
          el("td", { text: p.last_event ? rel(p.last_event, now) : "never", title: utc(p.last_event) }),
          el("td", { text: p.last_seen ? rel(p.last_seen, now) : "", title: utc(p.last_seen) }),
          el("td", { class: "num", text: num(p.leases || 0) }),
          el("td", { class: "num", text: num((p.counts && p.counts.accepted) || 0) }),
          el("td", { class: p.refused ? "bad" : "", text: refused(p) || "none" }),
          el("td", { text: p.resynced ? rel(p.resynced, now) : "", title: utc(p.resynced) }),
        ),
      ),
    ),
  );
}
