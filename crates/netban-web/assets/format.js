// Small helpers: building DOM nodes (text only, never HTML from data), numbers and times.

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Replaces the children of `parent`. */
export function fill(parent, ...children) {
  parent.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

const nf = new Intl.NumberFormat("en");
export const num = (n) => nf.format(n ?? 0);

/** `2026-12-01 23:30 UTC` */
export function utc(secs) {
  if (secs === null || secs === undefined) return "";
  return new Date(secs * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

/** `3 h 5 min`, `2 d 4 h`, `45 s`; `coarse`: the largest unit only (`3 h`, `2 d`). */
export function span(secs, coarse = false) {
  secs = Math.max(0, Math.round(secs));
  if (secs < 60) return `${secs} s`;
  const m = Math.floor(secs / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 && !coarse ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 && !coarse ? `${d} d ${h % 24} h` : `${d} d`;
}

/** `5 min ago` / `in 2 h` relative to `now` (unix seconds). */
export function rel(secs, now, coarse = false) {
  if (secs === null || secs === undefined) return "";
  const d = secs - now;
  return d >= 0 ? `in ${span(d, coarse)}` : `${span(-d, coarse)} ago`;
}

/** A day `YYYY-MM-DD` as `Dec 1`. */
export function shortDay(day) {
  const [, m, d] = day.split("-").map(Number);
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  return `${months[m - 1]} ${d}`;
}

/** Words for a sink state. */
export function stateWords(s) {
  if (!s) return "–";
  switch (s.state) {
    case "in_place":
      return s.adopted ? "in place (adopted)" : s.foreign_owner ? "in place (not netban's)" : "in place";
    case "not_enforced":
      return "NOT ENFORCED";
    case "pending":
      return "pending";
    case "failing":
      return `failing (${s.attempts})`;
    case "removing":
      return s.attempts ? `removing, failing (${s.attempts})` : "removing";
    default:
      return s.state;
  }
}
