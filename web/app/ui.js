// Small helpers shared by every page: element builder, API client, formatting, toasts.

const KEY = "pharos.key";

/** Creates an element: h("a", {href: "/", class: "x", onclick: fn}, "text", child, …). */
export function h(tag, attrs, ...children) {
  const el = tag === "svg" || SVG_TAGS.has(tag)
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.setAttribute("class", v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && !(el instanceof SVGElement) && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}
const SVG_TAGS = new Set(["path", "polyline", "line", "rect", "g", "text", "title", "circle"]);

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** The stored API key. */
export function apiKey() {
  return localStorage.getItem(KEY) || sessionStorage.getItem(KEY);
}

/** Stores the key (remember: across browser restarts). */
export function setKey(key, remember) {
  clearKey();
  (remember ? localStorage : sessionStorage).setItem(KEY, key);
}

export function clearKey() {
  localStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY);
}

/** An API error carrying the envelope. */
export class ApiError extends Error {
  constructor(status, envelope) {
    const e = envelope?.error || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
    this.field = e.field;
    this.details = e.details;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

/** Calls the API; resolves with the JSON body (null for 204), rejects with ApiError. */
export async function api(method, path, body, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  const key = opts.key || apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let payload;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    payload = body;
    headers["Content-Type"] = headers["Content-Type"] || "application/wasm";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(path, { method, headers, body: payload });
  const text = await resp.text();
  let json = null;
  if (text) { try { json = JSON.parse(text); } catch { json = { error: { message: text } }; } }
  if (!resp.ok) {
    const err = new ApiError(resp.status, json);
    if (resp.status === 401 && !opts.key) onUnauthorized(err);
    throw err;
  }
  return json;
}

export const get = (p) => api("GET", p);

/** A short toast for `ms` milliseconds. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const t = h("div", { class: `toast ${kind}` }, message);
  box.append(t);
  setTimeout(() => t.remove(), 5000);
}

const STATUS = {
  up: { icon: "▲", label: "Up" },
  degraded: { icon: "◆", label: "Degraded" },
  down: { icon: "▼", label: "Down" },
  error: { icon: "✖", label: "Error" },
  pending: { icon: "○", label: "Pending" },
  paused: { icon: "‖", label: "Paused" },
};

/** A status badge: shape + text, never colour alone. */
export function badge(status, enabled = true) {
  const s = !enabled ? "paused" : status || "pending";
  const meta = STATUS[s] || { icon: "?", label: s };
  return h("span", { class: `badge st-${s}`, dataset: { status: s } },
    h("span", { "aria-hidden": "true" }, meta.icon), " ", meta.label);
}

export function statusLabel(s) { return (STATUS[s] || { label: s }).label; }

export function fmtMs(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;
}

export function fmtPct(v, digits = 2) {
  return v === null || v === undefined ? "—" : `${v.toFixed(digits)} %`;
}

export function fmtTime(t) {
  if (!t) return "—";
  const d = new Date(t);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** "3 min ago" style. */
export function ago(t) {
  if (!t) return "—";
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Navigates inside the app (set by app.js). */
export let navigate = (path) => { location.assign(path); };
export function setNavigate(f) { navigate = f; }

/** A link handled by the router. */
export function link(href, ...children) {
  return h("a", { href, dataset: { link: "" } }, ...children);
}

/** A page heading that takes focus after navigation (screen readers announce it). */
export function heading(text, ...extra) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1", id: "page-title" }, text), ...extra);
}

/** Shows an API error in a container (role=alert). */
export function errorBox(err) {
  return h("div", { class: "error-box", role: "alert" },
    h("strong", {}, err.code || "Error"), ": ", err.message);
}

/** A button that disables itself while `action` runs. */
export function button(label, action, attrs = {}) {
  const b = h("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", async (ev) => {
    b.disabled = true;
    try { await action(ev); } catch (e) { toast(e.message, "error"); } finally { b.disabled = false; }
  });
  return b;
}

/** A labelled field wrapper. */
export function field(label, input, help) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const helpEl = help ? h("small", { class: "help", id: `${id}-help` }, help) : null;
  if (helpEl) input.setAttribute("aria-describedby", `${id}-help`);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, helpEl);
}
