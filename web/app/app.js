// Pharos dashboard: router, layout, theme, live events. No framework, no build step.

import { h, apiKey, clearKey, setUnauthorizedHandler, setNavigate, toast } from "./ui.js";
import * as pages from "./pages.js";
import * as admin from "./admin.js";

/** Live events from `/api/v1/events` (Server-Sent Events), fanned out to listeners. */
export const live = {
  source: null,
  listeners: new Map(),
  connected: false,
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type)?.delete(fn);
  },
  emit(type, data) {
    for (const fn of this.listeners.get(type) || []) {
      try { fn(data); } catch (e) { console.error(e); }
    }
  },
  connect() {
    this.close();
    const key = apiKey();
    if (!key) return;
    // EventSource cannot send headers: the key goes in `access_token` (this route only).
    const es = new EventSource(`/api/v1/events?access_token=${encodeURIComponent(key)}`);
    this.source = es;
    for (const type of ["result", "state", "resync", "hello"]) {
      es.addEventListener(type, (ev) => {
        let data = {};
        try { data = JSON.parse(ev.data); } catch { /* keep {} */ }
        this.emit(type, data);
      });
    }
    es.onopen = () => { this.setConnected(true); };
    es.onerror = () => { this.setConnected(false); };
  },
  setConnected(v) {
    if (this.connected === v) return;
    const wasDown = !this.connected;
    this.connected = v;
    const dot = document.getElementById("live-dot");
    if (dot) {
      dot.dataset.state = v ? "on" : "off";
      dot.textContent = v ? "Live" : "Reconnecting…";
    }
    // After a reconnect, anything missed meanwhile is fetched again.
    if (v && wasDown && this.everConnected) this.emit("resync", { reconnected: true });
    if (v) this.everConnected = true;
  },
  close() {
    if (this.source) this.source.close();
    this.source = null;
    this.connected = false;
  },
};

const ROUTES = [
  [/^\/login$/, pages.login, { public: true }],
  [/^\/$/, pages.overview],
  [/^\/monitors$/, pages.overview],
  [/^\/monitors\/new$/, pages.monitorForm],
  [/^\/monitors\/(\d+)\/edit$/, pages.monitorForm],
  [/^\/monitors\/(\d+)$/, pages.monitorDetail],
  [/^\/incidents$/, admin.incidents],
  [/^\/incidents\/(\d+)$/, admin.incidentDetail],
  [/^\/plugins$/, admin.plugins],
  [/^\/channels$/, admin.channels],
  [/^\/maintenance$/, admin.maintenance],
  [/^\/keys$/, admin.keys],
  [/^\/status-pages$/, admin.statusPages],
];

const NAV = [
  ["/", "Overview"],
  ["/incidents", "Incidents"],
  ["/plugins", "Plugins"],
  ["/channels", "Channels"],
  ["/maintenance", "Maintenance"],
  ["/status-pages", "Status pages"],
  ["/keys", "API keys"],
];

let cleanup = [];

function renderNav(path) {
  const nav = document.getElementById("nav");
  const actions = document.getElementById("top-actions");
  nav.replaceChildren();
  actions.replaceChildren(themeButton());
  if (!apiKey()) return;
  const list = h("ul", {});
  for (const [href, label] of NAV) {
    const current = href === "/" ? path === "/" || path.startsWith("/monitors") : path.startsWith(href);
    list.append(h("li", {}, h("a", { href, dataset: { link: "" }, "aria-current": current ? "page" : null }, label)));
  }
  nav.append(list);
  actions.prepend(
    h("span", { id: "live-dot", class: "live", dataset: { state: live.connected ? "on" : "off" }, role: "status" },
      live.connected ? "Live" : "Connecting…"),
    h("button", { type: "button", class: "ghost", id: "logout", onclick: logout }, "Log out"),
  );
}

function logout() {
  clearKey();
  live.close();
  navigate("/login");
  toast("Logged out.");
}

/** Renders the page of the current location. */
async function render() {
  for (const f of cleanup) { try { f(); } catch { /* ignore */ } }
  cleanup = [];
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const main = document.getElementById("main");
  const match = ROUTES.map(([re, page, opts]) => [path.match(re), page, opts || {}]).find(([m]) => m);
  if (!apiKey() && !(match && match[2].public)) {
    sessionStorage.setItem("pharos.after-login", location.pathname + location.search);
    history.replaceState(null, "", "/login");
    return render();
  }
  renderNav(path);
  if (apiKey() && !live.source) live.connect();
  if (!match) {
    main.replaceChildren(h("h1", { tabindex: "-1", id: "page-title" }, "Not found"),
      h("p", {}, "No page at ", h("code", {}, path), ". ", h("a", { href: "/", dataset: { link: "" } }, "Back to the overview")));
    return;
  }
  const [m, page] = match;
  const ctx = {
    params: m.slice(1),
    query: new URLSearchParams(location.search),
    main,
    live,
    onLeave: (f) => cleanup.push(f),
  };
  try {
    await page(ctx);
  } catch (e) {
    console.error(e);
    main.replaceChildren(h("h1", { tabindex: "-1", id: "page-title" }, "Something went wrong"),
      h("div", { class: "error-box", role: "alert" }, e.message || String(e)));
  }
  const title = document.getElementById("page-title");
  document.title = title ? `${title.textContent} · Pharos` : "Pharos";
  if (navigated && title) title.focus({ preventScroll: true });
}

let navigated = false;

/** Client-side navigation (history API). */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path); else history.pushState(null, "", path);
  navigated = true;
  window.scrollTo(0, 0);
  render();
}

function themeButton() {
  const modes = ["system", "light", "dark"];
  const current = localStorage.getItem("pharos.theme") || "system";
  const label = { system: "Theme: system", light: "Theme: light", dark: "Theme: dark" };
  return h("button", {
    type: "button", class: "ghost", id: "theme",
    "aria-label": `${label[current]} (switch)`,
    onclick: () => {
      const next = modes[(modes.indexOf(localStorage.getItem("pharos.theme") || "system") + 1) % 3];
      localStorage.setItem("pharos.theme", next);
      applyTheme();
      const b = document.getElementById("theme");
      b.setAttribute("aria-label", `${label[next]} (switch)`);
      b.textContent = label[next];
    },
  }, label[current]);
}

function applyTheme() {
  const t = localStorage.getItem("pharos.theme") || "system";
  if (t === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

applyTheme();
setNavigate(navigate);
setUnauthorizedHandler(() => {
  if (location.pathname !== "/login") {
    clearKey();
    live.close();
    toast("Your API key was refused; please log in again.", "error");
    navigate("/login", { replace: true });
  }
});
document.addEventListener("click", (ev) => {
  const a = ev.target.closest?.("a[data-link]");
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => { navigated = true; render(); });
// Close the stream when the page goes away, so its connection is freed at once (browsers allow
// only six connections per host over HTTP/1.1).
window.addEventListener("pagehide", () => live.close());
render();
