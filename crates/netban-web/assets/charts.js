// The charts (Chart.js, vendored): bans per day stacked by country and by jail (the top
// keys of the window, the rest as "other"), and a doughnut by country. Created once, then
// updated in place on every refresh; colours follow the theme.

import { num, shortDay } from "./format.js";

/** Keys shown one by one before the rest becomes "other". */
const TOP_COUNTRIES = 8;
const TOP_JAILS = 8;

// Tableau 10: distinguishable, and readable on both backgrounds.
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];
const OTHER = "#9aa0a6";

const charts = {};

let regionNames = null;
try {
  regionNames = new Intl.DisplayNames(["en"], { type: "region" });
} catch {
  regionNames = null;
}

/** `GB (United Kingdom)`; codes the browser does not know stay as they are. */
export function countryName(code) {
  if (!regionNames || !/^[A-Z]{2}$/.test(code)) return code;
  try {
    const n = regionNames.of(code);
    return n && n !== code ? `${code} (${n})` : code;
  } catch {
    return code;
  }
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** The colours of the current theme, for every chart. */
export function applyTheme() {
  if (!window.Chart) return;
  Chart.defaults.color = css("--muted");
  Chart.defaults.borderColor = css("--grid");
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  for (const c of Object.values(charts)) {
    if (c.config.type === "doughnut") {
      c.data.datasets.forEach((d) => (d.borderColor = css("--panel")));
    }
    c.options.scales &&
      Object.values(c.options.scales).forEach((s) => {
        s.grid.color = css("--grid");
        s.ticks.color = css("--muted");
      });
    c.options.plugins.legend.labels.color = css("--fg");
    c.update("none");
  }
}

/** The `n` largest keys of `totals`, largest first (ties by name). */
export function topKeys(totals, n) {
  return Object.entries(totals || {})
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([k]) => k);
}

/** Datasets of `perDay[field]` for the top keys of `totals`, the rest summed as "other". */
export function stackedSeries(perDay, field, totals, n) {
  const keys = topKeys(totals, n);
  const sets = keys.map((k, i) => ({
    label: k,
    data: perDay.map((d) => (d[field] && d[field][k]) || 0),
    backgroundColor: PALETTE[i % PALETTE.length],
  }));
  const other = perDay.map((d) =>
    Object.entries(d[field] || {})
      .filter(([k]) => !keys.includes(k))
      .reduce((s, [, v]) => s + v, 0),
  );
  if (other.some((v) => v > 0)) sets.push({ label: "other", data: other, backgroundColor: OTHER });
  return sets;
}

function barOptions(labelOf) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    scales: {
      x: { stacked: true, grid: { display: false, color: css("--grid") }, ticks: { color: css("--muted"), maxRotation: 0, autoSkipPadding: 12 } },
      y: { stacked: true, beginAtZero: true, grid: { color: css("--grid") }, ticks: { color: css("--muted"), precision: 0 } },
    },
    plugins: {
      legend: { position: "bottom", labels: { color: css("--fg"), boxWidth: 12 } },
      tooltip: {
        callbacks: {
          label: (ctx) => `${labelOf(ctx.dataset.label)}: ${num(ctx.parsed.y)}`,
          footer: (items) => `total ${num(items.reduce((s, i) => s + i.parsed.y, 0))}`,
        },
        filter: (item) => item.parsed.y > 0,
      },
    },
  };
}

function upsert(id, type, data, options) {
  const c = charts[id];
  if (c) {
    c.data.labels = data.labels;
    c.data.datasets = data.datasets;
    c.update("none");
    return c;
  }
  const canvas = document.getElementById(id);
  charts[id] = new Chart(canvas, { type, data, options });
  return charts[id];
}

/** Draws every chart from a `stats/summary` answer. */
export function draw(summary) {
  if (!window.Chart) return;
  const r = summary.report;
  const labels = r.per_day.map((d) => shortDay(d.day));
  upsert(
    "chart-country-days",
    "bar",
    { labels, datasets: stackedSeries(r.per_day, "by_country", r.by_country, TOP_COUNTRIES) },
    barOptions(countryName),
  );
  upsert(
    "chart-jail-days",
    "bar",
    { labels, datasets: stackedSeries(r.per_day, "by_jail", r.by_jail, TOP_JAILS) },
    barOptions((l) => l),
  );
  const keys = topKeys(r.by_country, TOP_COUNTRIES);
  const rest = Object.entries(r.by_country || {})
    .filter(([k]) => !keys.includes(k))
    .reduce((s, [, v]) => s + v, 0);
  const dLabels = rest > 0 ? [...keys, "other"] : keys;
  const dData = keys.map((k) => r.by_country[k]);
  if (rest > 0) dData.push(rest);
  upsert(
    "chart-country",
    "doughnut",
    {
      labels: dLabels,
      datasets: [
        {
          data: dData,
          backgroundColor: dLabels.map((k, i) => (k === "other" ? OTHER : PALETTE[i % PALETTE.length])),
          borderColor: css("--panel"),
          borderWidth: 2,
        },
      ],
    },
    {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      cutout: "55%",
      plugins: {
        legend: { position: "right", labels: { color: css("--fg"), boxWidth: 12 } },
        tooltip: {
          callbacks: {
            label: (ctx) => {
              const total = ctx.dataset.data.reduce((s, v) => s + v, 0) || 1;
              return `${countryName(ctx.label)}: ${num(ctx.parsed)} (${Math.round((ctx.parsed * 100) / total)} %)`;
            },
          },
        },
      },
    },
  );
}

/** Moves the doughnut's legend below it on narrow screens. */
export function fitLegends() {
  const c = charts["chart-country"];
  if (!c) return;
  const pos = window.innerWidth < 760 ? "bottom" : "right";
  if (c.options.plugins.legend.position !== pos) {
    c.options.plugins.legend.position = pos;
    c.update("none");
  }
}
