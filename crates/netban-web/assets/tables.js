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

function scalar(v) {
  return v === null || ["string", "number", "boolean"].includes(typeof v);
}

function show(key, v, now) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number" && /(_at|seen|time|since|until)$/.test(key) && v > 1e9) return rel(v, now);
  if (typeof v === "number") return num(v);
  return String(v);
}

/** The cluster's status: its scalar facts, and its peers as a table. */
export function cluster(c) {
  const panel = document.getElementById("cluster-panel");
  if (!c) {
    panel.classList.add("hidden");
    return;
  }
  panel.classList.remove("hidden");
  const now = Math.floor(Date.now() / 1000);
  const facts = Object.entries(c).filter(([, v]) => scalar(v));
  fill(document.getElementById("cluster-facts"), facts.flatMap(([k, v]) => [el("dt", { text: k.replace(/_/g, " ") }), el("dd", { text: show(k, v, now) })]));
  const peers = Array.isArray(c.peers) ? c.peers : c.peers && typeof c.peers === "object" ? Object.entries(c.peers).map(([host, p]) => ({ host, ...(typeof p === "object" ? p : { value: p }) })) : [];
  const cols = [];
  for (const p of peers) for (const [k, v] of Object.entries(p)) if (scalar(v) && !cols.includes(k)) cols.push(k);
  // The peer's name first, whatever order the JSON has.
  cols.sort((a, b) => ["host", "id", "name"].includes(b) - ["host", "id", "name"].includes(a));
  const t = document.getElementById("cluster-peers");
  if (peers.length === 0) {
    fill(t, el("tbody", {}, el("tr", {}, el("td", { class: "empty", text: "no peers" }))));
    return;
  }
  fill(
    t,
    el("thead", {}, el("tr", {}, cols.map((k) => el("th", { text: k.replace(/_/g, " ") })))),
    el("tbody", {}, peers.map((p) => el("tr", {}, cols.map((k) => el("td", { class: /lag/.test(k) ? "num" : "", text: show(k, p[k], now) }))))),
  );
}
