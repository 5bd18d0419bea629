// "Blocked now": the active targets, searched, sorted and paged by the server
// (`/api/v1/active`), so 20,000 targets cost a phone 100 rows.

import { get } from "./api.js";
import { el, fill, num, rel, stateWords, utc } from "./format.js";

const PAGE = 100;

const view = { q: "", state: "", sort: "since", order: "desc", offset: 0 };
let last = null;
let onData = () => {};

function query() {
  const p = new URLSearchParams({ sort: view.sort, order: view.order, offset: view.offset, limit: PAGE });
  if (view.q) p.set("q", view.q);
  if (view.state) p.set("state", view.state);
  return `active?${p}`;
}

function header(label, key, cls) {
  const th = el("th", { class: `sortable ${cls || ""}`, text: label, scope: "col", tabindex: 0 });
  if (view.sort === key) th.setAttribute("aria-sort", view.order === "asc" ? "ascending" : "descending");
  const go = () => {
    if (view.sort === key) view.order = view.order === "asc" ? "desc" : "asc";
    else {
      view.sort = key;
      view.order = key === "target" || key === "jail" ? "asc" : "desc";
    }
    view.offset = 0;
    refresh();
  };
  th.addEventListener("click", go);
  th.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && go());
  return th;
}

const narrow = matchMedia("(max-width: 760px)");

function badge(s, now, prefix) {
  if (!s) return el("span", { class: "badge none", text: prefix ? `${prefix}: –` : "–", title: "this sink does not take this target" });
  const title = [];
  if (s.remote_id) title.push(`remote id ${s.remote_id}`);
  if (s.expires) title.push(`expires ${utc(s.expires)}`);
  if (s.error) title.push(`last error: ${s.error}`);
  if (s.not_enforced) title.push(s.not_enforced);
  if (s.next_try) title.push(`next try ${rel(s.next_try, now)}`);
  if (s.foreign_owner) title.push(`made by ${s.foreign_owner}`);
  const words = stateWords(s);
  return el("span", { class: `badge ${s.state}`, text: prefix ? `${prefix}: ${words}` : words, title: title.join("\n") || null });
}

/** One column per sink on a wide screen; one "Sinks" column of badges on a phone. */
function sinkCells(it, sinks, now) {
  if (narrow.matches) return el("td", { class: "sinks" }, sinks.map((s) => badge(it.sinks[s], now, s)));
  return sinks.map((s) => el("td", {}, badge(it.sinks[s], now, null)));
}

function render(a) {
  const sinks = a.sinks;
  const thead = document.querySelector("#active thead");
  const wide = !narrow.matches;
  fill(thead, el("tr", {}, header("Target", "target"), wide ? header("Jails", "jail", "jails") : null, header("Since", "since", "opt"), header("Expires", "until"), narrow.matches ? header("Sinks", "state") : sinks.map((s) => header(s, "state"))));
  const tbody = document.querySelector("#active tbody");
  const rows = a.items.map((it) => {
    const jails = it.leases.length
      ? it.leases.map((l) => el("span", { class: "tag", text: l.origin === "local" ? l.jail : `${l.jail}@${l.origin}`, title: `since ${utc(l.since)}, ${l.until ? `until ${utc(l.until)}` : "permanent"}` }))
      : [el("span", { class: "muted", text: "no lease (being removed)" })];
    return el(
      "tr",
      { "data-target": it.target },
      wide ? el("td", { class: "mono", text: it.target }) : el("td", { class: "jails" }, el("div", { class: "mono", text: it.target }), jails),
      wide ? el("td", { class: "jails" }, jails) : null,
      el("td", { class: "opt", text: it.since ? rel(it.since, a.now) : "", title: utc(it.since) }),
      el("td", { text: it.permanent ? "permanent" : it.until ? rel(it.until, a.now) : "–", title: utc(it.until) }),
      sinkCells(it, sinks, a.now),
    );
  });
  if (rows.length === 0) {
    const text = a.total === 0 ? "nothing is blocked" : "no target matches the search";
    rows.push(el("tr", {}, el("td", { class: "empty", colspan: wide ? 4 + sinks.length : 4, text })));
  }
  fill(tbody, rows);
  const from = a.matched ? a.offset + 1 : 0;
  const to = Math.min(a.offset + a.items.length, a.matched);
  document.getElementById("page-info").textContent = `${num(from)}–${num(to)} of ${num(a.matched)}`;
  document.getElementById("active-count").textContent = a.matched === a.total ? `(${num(a.total)})` : `(${num(a.matched)} of ${num(a.total)})`;
  document.getElementById("prev").disabled = a.offset === 0;
  document.getElementById("next").disabled = a.offset + a.items.length >= a.matched;
}

let seq = 0;

/** Reloads the table with the current search, sort and page. */
export async function refresh() {
  const mine = ++seq;
  try {
    const a = await get(query());
    if (mine !== seq) return last; // a newer request (typing) won
    last = a;
    if (a.offset > 0 && a.items.length === 0 && a.matched > 0) {
      view.offset = Math.max(0, a.matched - PAGE);
      return refresh();
    }
    render(a);
    onData(a, null);
    return a;
  } catch (e) {
    onData(null, e);
    return null;
  }
}

/** Wires the search box, the state filter and the pager; `cb(active, error)` after loads. */
export function setup(cb) {
  onData = cb;
  narrow.addEventListener("change", () => last && render(last));
  const search = document.getElementById("search");
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      view.q = search.value.trim();
      view.offset = 0;
      refresh();
    }, 200);
  });
  document.getElementById("state-filter").addEventListener("change", (e) => {
    view.state = e.target.value;
    view.offset = 0;
    refresh();
  });
  document.getElementById("prev").addEventListener("click", () => {
    view.offset = Math.max(0, view.offset - PAGE);
    refresh();
  });
  document.getElementById("next").addEventListener("click", () => {
    view.offset += PAGE;
    refresh();
  });
}

export const latest = () => last;
