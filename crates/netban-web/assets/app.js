// The dashboard: loads the statistics (`stats/summary`), what is blocked now (`active`),
// the daemon's status and the cluster, draws them, and refreshes every 30 seconds while
// the page is visible. Everything comes from this origin's JSON API.

import * as active from "./active.js";
import { get } from "./api.js";
import * as charts from "./charts.js";
import * as tables from "./tables.js";
import * as theme from "./theme.js";

const REFRESH_MS = 30_000;
const RANGES = [7, 30, 90, 365];

const state = { days: 30, summary: null, status: null, active: null, errors: new Map(), loading: false };
window.netban = state; // for the browser tests and the curious

function daysFromHash() {
  const m = /days=(\d+)/.exec(location.hash);
  const d = m ? Number(m[1]) : 30;
  return RANGES.includes(d) ? d : 30;
}

function showRange() {
  for (const b of document.querySelectorAll("#range button")) {
    b.setAttribute("aria-pressed", String(Number(b.dataset.days) === state.days));
  }
}

function redraw() {
  tables.cards(state.status, state.active, state.summary, state.days);
  tables.problems(state.status, [...state.errors.values()]);
  const host = state.status ? state.status.host_id : "";
  document.getElementById("host").textContent = host;
  document.title = host ? `netban: ${host}` : "netban";
}

function note(what, error) {
  if (error) state.errors.set(what, `${what}: ${error.message}`);
  else state.errors.delete(what);
}

function statsOff(off) {
  document.getElementById("stats-off").classList.toggle("hidden", !off);
  document.getElementById("charts").classList.toggle("hidden", off);
  document.getElementById("range").classList.toggle("hidden", off);
}

async function loadStats() {
  // The status says whether statistics are on: asking when they are off would only earn a
  // 404 (and a console error).
  if (state.status && !state.status.stats) {
    state.summary = null;
    note("statistics", null);
    statsOff(true);
    return;
  }
  try {
    const s = await get(`stats/summary?days=${state.days}&limit=10`);
    state.summary = s;
    note("statistics", null);
    statsOff(false);
    charts.draw(s);
    charts.fitLegends();
    tables.tops(s);
  } catch (e) {
    state.summary = null;
    if (e.status === 404) {
      note("statistics", null);
      statsOff(true);
    } else {
      note("statistics", e);
    }
  }
}

async function loadStatus() {
  try {
    state.status = await get("status");
    note("status", null);
  } catch (e) {
    note("status", e);
  }
}

async function loadCluster() {
  if (!state.status || !state.status.cluster) {
    tables.cluster(null);
    return;
  }
  try {
    tables.cluster(await get("cluster"));
    note("cluster", null);
  } catch (e) {
    tables.cluster(null);
    if (e.status !== 404) note("cluster", e);
  }
}

async function refresh() {
  if (state.loading) return;
  state.loading = true;
  try {
    await Promise.all([loadStatus().then(() => Promise.all([loadStats(), loadCluster()])), active.refresh()]);
    redraw();
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "true";
  } finally {
    state.loading = false;
  }
}

function start() {
  state.days = daysFromHash();
  showRange();
  charts.applyTheme();
  if (document.body.dataset.auth === "token") document.getElementById("logout").classList.remove("hidden");
  for (const b of document.querySelectorAll("#range button")) {
    b.addEventListener("click", () => {
      state.days = Number(b.dataset.days);
      history.replaceState(null, "", `#days=${state.days}`);
      showRange();
      loadStats().then(redraw);
    });
  }
  document.getElementById("theme").addEventListener("click", theme.toggle);
  theme.onChange(() => charts.applyTheme());
  active.setup((a, e) => {
    if (a) state.active = a;
    note("blocked now", e);
    redraw();
  });
  window.addEventListener("resize", charts.fitLegends);
  setInterval(() => {
    if (document.getElementById("auto").checked && document.visibilityState === "visible") refresh();
  }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && document.getElementById("auto").checked) refresh();
  });
  refresh();
}

start();
