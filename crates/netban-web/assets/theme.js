// Dark and light: the system's choice (prefers-color-scheme) until the toggle picks one,
// which is kept in localStorage and set as <html data-theme>. Loaded by every page.

const KEY = "netban-theme";

function stored() {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

/** "dark" or "light": what the page shows now. */
export function current() {
  const t = document.documentElement.dataset.theme;
  if (t === "dark" || t === "light") return t;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

/** Shows `theme` and remembers it. */
export function set(theme) {
  document.documentElement.dataset.theme = theme;
  try {
    localStorage.setItem(KEY, theme);
  } catch {
    // Private mode: the choice lasts as long as the page.
  }
}

/** Calls `f` whenever the theme changes (toggle or system). */
export function onChange(f) {
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => f(current()));
  document.addEventListener("netban-theme", () => f(current()));
}

export function toggle() {
  set(current() === "dark" ? "light" : "dark");
  document.dispatchEvent(new Event("netban-theme"));
}

const s = stored();
if (s === "dark" || s === "light") document.documentElement.dataset.theme = s;
