// Login, overview, monitor detail and the create/edit monitor form.

import {
  h, api, get, apiKey, setKey, toast, badge, fmtMs, fmtPct, fmtTime, ago, navigate, link,
  heading, errorBox, button, field, statusLabel, ApiError,
} from "./ui.js";
import { sparkline, uptimeBar, latencyChart, phaseBreakdown } from "./charts.js";
import { FieldSet, schemaForm, plainField } from "./form.js";

// ---------------------------------------------------------------- login

export async function login({ main }) {
  const input = h("input", { type: "password", id: "api-key", autocomplete: "current-password", spellcheck: "false", required: true });
  const remember = h("input", { type: "checkbox", id: "remember", checked: true });
  const err = h("div", { role: "alert", class: "login-error" });
  const form = h("form", { class: "card login", novalidate: true },
    h("h1", { tabindex: "-1", id: "page-title" }, "Sign in to Pharos"),
    h("p", { class: "muted" }, "Use an API key (the first start prints an admin key). Sessions for user accounts come later."),
    field("API key", input, "A key such as phk_…; kept in this browser only."),
    h("div", { class: "field check" }, h("label", { for: "remember" }, remember, " Remember on this device")),
    err,
    h("button", { type: "submit", class: "primary", id: "login-submit" }, "Sign in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.replaceChildren();
    const key = input.value.trim();
    if (!key) { err.textContent = "Enter an API key."; input.focus(); return; }
    try {
      await api("GET", "/api/v1/dashboard/summary", undefined, { key });
      setKey(key, remember.checked);
      const next = sessionStorage.getItem("pharos.after-login") || "/";
      sessionStorage.removeItem("pharos.after-login");
      navigate(next === "/login" ? "/" : next, { replace: true });
    } catch (e) {
      err.textContent = e.status === 401 ? "This API key is not valid (or was revoked)." : e.message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
  main.replaceChildren(form);
  input.focus();
}

// ---------------------------------------------------------------- overview

const STATUS_ORDER = { down: 0, error: 1, degraded: 2, pending: 3, up: 4, paused: 5 };

function liveStatus(m) { return !m.enabled ? "paused" : m.status || "pending"; }

export async function overview({ main, live, onLeave, query }) {
  const data = await get("/api/v1/dashboard/monitors");
  const byId = new Map(data.items.map((m) => [m.id, m]));
  const rows = new Map();

  const counts = h("ul", { class: "counts", "aria-label": "Monitors by status" });
  const text = h("input", { type: "search", id: "filter-text", placeholder: "Name contains…", value: query.get("q") || "" });
  const statusSel = h("select", { id: "filter-status" },
    h("option", { value: "" }, "Any status"),
    ["up", "degraded", "down", "error", "pending", "paused"].map((s) => h("option", { value: s }, statusLabel(s))));
  statusSel.value = query.get("status") || "";
  const tagSel = h("select", { id: "filter-tag" }, h("option", { value: "" }, "Any tag"));
  const tbody = h("tbody", { id: "monitor-rows" });
  const empty = h("p", { class: "muted", id: "no-monitors", hidden: true });

  function fillTags() {
    const tags = [...new Set([...byId.values()].flatMap((m) => m.tags))].sort();
    const cur = tagSel.value || query.get("tag") || "";
    tagSel.replaceChildren(h("option", { value: "" }, "Any tag"), tags.map((t) => h("option", { value: t }, t)));
    tagSel.value = tags.includes(cur) ? cur : "";
  }

  function renderCounts() {
    const c = { up: 0, degraded: 0, down: 0, error: 0, pending: 0, paused: 0 };
    for (const m of byId.values()) c[liveStatus(m)]++;
    counts.replaceChildren(...Object.entries(c).map(([s, n]) =>
      h("li", { class: `count st-${s}`, dataset: { status: s } },
        h("button", { type: "button", class: "count-btn", "aria-pressed": statusSel.value === s ? "true" : "false",
          onclick: () => { statusSel.value = statusSel.value === s ? "" : s; applyFilter(); renderCounts(); } },
        h("span", { class: "n", dataset: { count: s } }, String(n)), " ", badge(s === "paused" ? null : s, s !== "paused")))));
  }

  function rowFor(m) {
    const tr = h("tr", { dataset: { id: m.id }, class: "mon-row" },
      h("td", { class: "c-status" }, badge(m.status, m.enabled)),
      h("td", { class: "c-name" }, link(`/monitors/${m.id}`, m.name),
        h("div", { class: "tags" }, m.tags.map((t) => h("span", { class: "tag" }, t)))),
      h("td", { class: "c-lat num" }, fmtMs(m.last_latency_ms)),
      h("td", { class: "c-spark" }, sparkline(m.spark)),
      h("td", { class: "c-bar" }, uptimeBar(m.days)),
      h("td", { class: "c-up num" }, fmtPct(m.uptime_24h)),
      h("td", { class: "c-when" }, h("time", { datetime: m.last_checked_at || "" }, ago(m.last_checked_at))));
    rows.set(m.id, tr);
    return tr;
  }

  function matches(m) {
    const q = text.value.trim().toLowerCase();
    if (q && !m.name.toLowerCase().includes(q)) return false;
    if (statusSel.value && liveStatus(m) !== statusSel.value) return false;
    if (tagSel.value && !m.tags.includes(tagSel.value)) return false;
    return true;
  }

  function sorted() {
    return [...byId.values()].sort((a, b) =>
      (STATUS_ORDER[liveStatus(a)] - STATUS_ORDER[liveStatus(b)]) || a.name.localeCompare(b.name));
  }

  // Rows are built in chunks so the first screenful paints at once with thousands of monitors.
  let renderToken = 0;
  function renderRows() {
    const token = ++renderToken;
    tbody.replaceChildren();
    const list = sorted();
    let i = 0;
    const chunk = () => {
      if (token !== renderToken) return;
      const frag = document.createDocumentFragment();
      for (const end = Math.min(i + (i === 0 ? 60 : 250), list.length); i < end; i++) {
        const tr = rows.get(list[i].id) || rowFor(list[i]);
        tr.hidden = !matches(list[i]);
        frag.append(tr);
      }
      tbody.append(frag);
      if (!window.__pharosOverviewPainted) {
        // For `pharos bench ui`: when the first rows reach the screen.
        requestAnimationFrame(() => { window.__pharosOverviewPainted = performance.now(); });
      }
      if (i < list.length) requestAnimationFrame(chunk);
      else updateEmpty();
    };
    chunk();
  }

  function applyFilter() {
    for (const m of byId.values()) { const tr = rows.get(m.id); if (tr) tr.hidden = !matches(m); }
    const params = new URLSearchParams();
    if (text.value.trim()) params.set("q", text.value.trim());
    if (statusSel.value) params.set("status", statusSel.value);
    if (tagSel.value) params.set("tag", tagSel.value);
    const qs = params.toString();
    history.replaceState(null, "", qs ? `${location.pathname}?${qs}` : location.pathname);
    updateEmpty();
  }

  function updateEmpty() {
    const shown = [...rows.values()].filter((r) => !r.hidden).length;
    empty.hidden = shown > 0;
    empty.textContent = byId.size ? "No monitor matches the filter." : "No monitors yet — create the first one.";
  }

  function updateRow(m) {
    const tr = rows.get(m.id);
    if (!tr) return;
    tr.querySelector(".c-status").replaceChildren(badge(m.status, m.enabled));
    tr.querySelector(".c-lat").textContent = fmtMs(m.last_latency_ms);
    const t = tr.querySelector(".c-when time");
    t.setAttribute("datetime", m.last_checked_at || "");
    t.textContent = ago(m.last_checked_at);
    tr.hidden = !matches(m);
    tr.classList.remove("flash");
    void tr.offsetWidth;
    tr.classList.add("flash");
  }

  async function addMonitor(id) {
    if (byId.has(id) || pendingAdds.has(id)) return;
    pendingAdds.add(id);
    try {
      const m = await get(`/api/v1/monitors/${id}`);
      const row = {
        id: m.id, name: m.name, type: m.type, plugin: m.plugin, enabled: m.enabled, tags: m.tags,
        status: m.status, since: m.since, last_checked_at: m.last_checked_at, last_latency_ms: m.last_latency_ms,
        last_message: m.last_message, interval_secs: m.interval_secs, uptime_24h: null,
        spark: Array(48).fill(null), days: Array(90).fill(null),
      };
      byId.set(id, row);
      fillTags();
      renderCounts();
      renderRows();
    } catch { /* deleted meanwhile or not ours */ } finally { pendingAdds.delete(id); }
  }
  const pendingAdds = new Set();

  async function reload() {
    const fresh = await get("/api/v1/dashboard/monitors");
    byId.clear();
    rows.clear();
    for (const m of fresh.items) byId.set(m.id, m);
    fillTags();
    renderCounts();
    renderRows();
  }

  onLeave(live.on("result", (r) => {
    const m = byId.get(r.monitor_id);
    if (!m) { addMonitor(r.monitor_id); return; }
    const changed = m.status !== r.status;
    if (changed) m.since = r.started_at;
    m.status = r.status;
    m.last_latency_ms = r.latency_ms;
    m.last_checked_at = r.started_at;
    m.last_message = r.message;
    if (r.status === "up" || r.status === "degraded") {
      // The newest sparkline bucket follows live results (a running mean of this session's).
      const n = (m._liveN = (m._liveN || 0) + 1);
      const last = m.spark.length - 1;
      m.spark[last] = m.spark[last] === null || n === 1 && m.spark[last] === undefined ? r.latency_ms
        : (m.spark[last] * (n - 1) + r.latency_ms) / n;
      rows.get(m.id)?.querySelector(".c-spark")?.replaceChildren(sparkline(m.spark));
    }
    updateRow(m);
    if (changed) renderCounts();
  }));
  onLeave(live.on("resync", () => { reload().catch(() => {}); }));
  const ticker = setInterval(() => {
    for (const [id, tr] of rows) {
      const m = byId.get(id);
      const t = tr.querySelector(".c-when time");
      if (m && t) t.textContent = ago(m.last_checked_at);
    }
  }, 15000);
  onLeave(() => clearInterval(ticker));

  text.addEventListener("input", applyFilter);
  statusSel.addEventListener("change", () => { applyFilter(); renderCounts(); });
  tagSel.addEventListener("change", applyFilter);

  main.replaceChildren(
    heading("Overview", link("/monitors/new", "New monitor")),
    counts,
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      field("Search", text), field("Status", statusSel), field("Tag", tagSel)),
    h("div", { class: "table-wrap" },
      h("table", { class: "monitors", id: "monitors" },
        h("caption", { class: "sr-only" }, "Monitors with live status, latency, 24-hour sparkline and 90-day uptime"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Monitor"),
          h("th", { scope: "col", class: "num" }, "Latency"), h("th", { scope: "col" }, "24 h"),
          h("th", { scope: "col" }, "90 days"), h("th", { scope: "col", class: "num" }, "Uptime 24 h"),
          h("th", { scope: "col" }, "Checked"))),
        tbody)),
    empty);
  main.querySelector(".page-head a").classList.add("btn", "primary");
  main.querySelector(".page-head a").id = "new-monitor";
  fillTags();
  renderCounts();
  renderRows();
}

// ---------------------------------------------------------------- monitor detail

const RANGES = [["1h", "1 h", 3600], ["24h", "24 h", 86400], ["7d", "7 d", 7 * 86400], ["30d", "30 d", 30 * 86400]];

export async function monitorDetail({ main, params, live, onLeave, query }) {
  const id = Number(params[0]);
  const m = await get(`/api/v1/monitors/${id}`);
  let range = RANGES.find(([k]) => k === query.get("range")) || RANGES[1];

  const statusBox = h("div", { class: "status-line", id: "status-line" });
  function renderStatus() {
    statusBox.replaceChildren(badge(m.status, m.enabled), " ",
      m.since ? h("span", {}, "since ", h("time", { datetime: m.since }, fmtTime(m.since)), ` (${ago(m.since)})`) : h("span", { class: "muted" }, "no result yet"),
      m.last_message ? h("span", { class: "muted msg" }, ` — ${m.last_message}`) : null);
  }
  renderStatus();

  const uptimeBox = h("dl", { class: "uptimes", id: "uptimes" });
  async function loadUptime() {
    const now = new Date();
    const spans = [["24 h", 1], ["7 d", 7], ["30 d", 30], ["90 d", 90]];
    const res = await Promise.all(spans.map(([, d]) => get(`/api/v1/monitors/${id}/uptime?from=${new Date(now - d * 86400e3).toISOString()}&to=${now.toISOString()}`)));
    uptimeBox.replaceChildren(...spans.flatMap(([label], i) => [h("dt", {}, label), h("dd", {}, fmtPct(res[i].uptime_pct, 3))]));
  }

  const chartBox = h("div", { id: "latency-chart", class: "chart-wrap" });
  const phaseBox = h("div", { id: "phases" });
  const rangeButtons = h("div", { class: "segmented", role: "group", "aria-label": "Chart range" },
    RANGES.map(([k, label]) => h("button", { type: "button", dataset: { range: k }, "aria-pressed": k === range[0] ? "true" : "false",
      onclick: () => { range = RANGES.find(([x]) => x === k); history.replaceState(null, "", `?range=${k}`); loadChart(); } }, label)));
  async function loadChart() {
    for (const b of rangeButtons.children) b.setAttribute("aria-pressed", b.dataset.range === range[0] ? "true" : "false");
    const to = new Date();
    const from = new Date(to - range[2] * 1000);
    const buckets = await get(`/api/v1/monitors/${id}/latency?from=${from.toISOString()}&to=${to.toISOString()}&buckets=60`);
    const list = buckets.items || buckets.buckets || buckets;
    chartBox.replaceChildren(latencyChart(list));
    chartBox.dataset.drawn = "true";
    phaseBox.replaceChildren(phaseBreakdown(list));
  }

  const resultsBody = h("tbody", { id: "results" });
  function resultRow(r) {
    return h("tr", {}, h("td", {}, h("time", { datetime: r.started_at }, fmtTime(r.started_at))),
      h("td", {}, badge(r.status)), h("td", { class: "num" }, fmtMs(r.latency_ms)), h("td", {}, r.message || ""));
  }
  async function loadResults() {
    const page = await get(`/api/v1/monitors/${id}/results?limit=20`);
    resultsBody.replaceChildren(...page.items.map(resultRow));
  }

  const incidentsBox = h("div", { id: "monitor-incidents" });
  async function loadIncidents() {
    const page = await get(`/api/v1/incidents?monitor_id=${id}&limit=10`);
    incidentsBox.replaceChildren(page.items.length
      ? h("ul", { class: "plain" }, page.items.map((i) => h("li", {}, link(`/incidents/${i.id}`, `#${i.id} ${i.severity}`), " ",
        h("span", { class: "muted" }, `${i.status}, opened ${fmtTime(i.opened_at)}`), i.cause ? ` — ${i.cause}` : "")))
      : h("p", { class: "muted" }, "No incidents."));
  }

  const config = { ...m };
  const cfgPre = h("pre", { class: "mono config", id: "config", tabindex: "0" }, JSON.stringify({
    type: m.type, plugin: m.plugin, config: m.config, interval_secs: m.interval_secs, timeout_ms: m.timeout_ms,
    tags: m.tags, enabled: m.enabled, failure_threshold: m.failure_threshold, recovery_threshold: m.recovery_threshold,
    channels: m.channels, depends_on: m.depends_on, push_url: m.push_url,
  }, null, 2));

  onLeave(live.on("result", (r) => {
    if (r.monitor_id !== id) return;
    if (m.status !== r.status) m.since = r.started_at;
    m.status = r.status;
    m.last_message = r.message;
    renderStatus();
    resultsBody.prepend(resultRow(r));
    while (resultsBody.children.length > 20) resultsBody.lastChild.remove();
  }));

  main.replaceChildren(
    heading(m.name,
      h("div", { class: "actions" },
        button("Check now", async () => {
          const r = await api("POST", `/api/v1/monitors/${id}/check-now`);
          toast(`Checked: ${statusLabel(r.status)} in ${fmtMs(r.latency_ms)} — ${r.message || ""}`, r.status === "up" ? "ok" : "error");
          await Promise.all([loadResults(), loadUptime(), loadChart()]);
        }, { id: "check-now", class: "primary" }),
        link(`/monitors/${id}/edit`, "Edit"),
        button(m.enabled ? "Pause" : "Resume", async () => {
          await api("PATCH", `/api/v1/monitors/${id}`, { enabled: !m.enabled });
          navigate(`/monitors/${id}`, { replace: true });
        }),
        button("Delete", async () => {
          if (!confirm(`Delete monitor “${m.name}” and its results?`)) return;
          await api("DELETE", `/api/v1/monitors/${id}`);
          toast("Monitor deleted.");
          navigate("/");
        }, { class: "danger" }))),
    h("p", { class: "muted" }, `${m.type === "push" ? "Push" : m.plugin} · every ${m.interval_secs} s`, m.tags.length ? ` · ${m.tags.join(", ")}` : ""),
    statusBox,
    h("section", { "aria-labelledby": "h-up" }, h("h2", { id: "h-up" }, "Uptime"), uptimeBox),
    h("section", { "aria-labelledby": "h-lat" }, h("div", { class: "section-head" }, h("h2", { id: "h-lat" }, "Latency"), rangeButtons), chartBox,
      h("h3", {}, "Phase breakdown (mean)"), phaseBox),
    h("section", { "aria-labelledby": "h-res" }, h("h2", { id: "h-res" }, "Recent results"),
      h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Status"),
        h("th", { scope: "col", class: "num" }, "Latency"), h("th", { scope: "col" }, "Message"))), resultsBody))),
    h("section", { "aria-labelledby": "h-inc" }, h("h2", { id: "h-inc" }, "Incidents"), incidentsBox),
    h("section", { "aria-labelledby": "h-cfg" }, h("h2", { id: "h-cfg" }, "Configuration"),
      h("p", { class: "muted" }, "Secret fields are shown as ***."), cfgPre));
  main.querySelector(".actions a").classList.add("btn");
  void config;
  await Promise.all([loadUptime(), loadChart(), loadResults(), loadIncidents()].map((p) => p.catch((e) => toast(e.message, "error"))));
}

// ---------------------------------------------------------------- create / edit monitor

/** Plugins of `kind` usable now (active), newest version of each name first. */
export async function activePlugins(kind) {
  const page = await get("/api/v1/plugins?limit=500");
  const items = (page.items || page).filter((p) => p.kind === kind && p.state === "active");
  return items;
}

/** Shows a server error at its field (or in `general`). */
export function showError(fields, general, err) {
  general.replaceChildren();
  if (err instanceof ApiError && err.field && fields.show(err.field, err.message)) return;
  if (err && err.pointer && fields.show(err.pointer, err.message)) return;
  general.replaceChildren(errorBox(err));
  general.querySelector("[role=alert]")?.focus?.();
}

export async function monitorForm({ main, params }) {
  const editId = params[0] ? Number(params[0]) : null;
  const existing = editId ? await get(`/api/v1/monitors/${editId}`) : null;
  const plugins = await activePlugins("check");
  const fields = new FieldSet();
  const general = h("div", { id: "form-errors" });
  const outcome = h("div", { id: "test-outcome", role: "status", "aria-live": "polite" });

  const typeSel = h("select", { id: "m-type", disabled: !!existing },
    h("option", { value: "check" }, "Check (a plugin runs on schedule)"), h("option", { value: "push" }, "Push (heartbeat URL)"));
  typeSel.value = existing?.type || "check";
  const names = [...new Set(plugins.map((p) => p.name))].sort();
  const pluginSel = h("select", { id: "m-plugin" }, h("option", { value: "" }, "Choose a plugin…"),
    names.map((n) => h("option", { value: n }, `${n} — ${plugins.find((p) => p.name === n).description}`)));
  if (existing?.plugin) {
    const base = existing.plugin.split("@")[0];
    if (!names.includes(base)) pluginSel.append(h("option", { value: existing.plugin }, existing.plugin));
    pluginSel.value = names.includes(existing.plugin) ? existing.plugin : (names.includes(base) && !existing.plugin.includes("@") ? base : existing.plugin);
  }
  const name = h("input", { type: "text", id: "m-name", value: existing?.name || "", required: true, autocomplete: "off" });
  const interval = h("input", { type: "number", id: "m-interval", min: 1, max: 86400, value: existing?.interval_secs ?? 60 });
  const timeout = h("input", { type: "number", id: "m-timeout", min: 1, max: 300000, placeholder: "min(10000, interval)", value: existing?.timeout_ms ?? "" });
  const tags = h("input", { type: "text", id: "m-tags", value: existing?.tags?.join(", ") || "", placeholder: "prod, api" });
  const enabled = h("input", { type: "checkbox", id: "m-enabled", checked: existing ? existing.enabled : true });
  const failure = h("input", { type: "number", id: "m-failure", min: 1, max: 100, value: existing?.failure_threshold ?? 2 });

  const configBox = h("fieldset", { class: "config-box", id: "config-fields" }, h("legend", {}, "Plugin configuration"));
  let configForm = null;
  let configFieldsStart = 0;

  async function loadSchema() {
    // Fields under /config are re-created for the chosen plugin.
    for (const k of [...fields.fields.keys()]) if (k.startsWith("/config")) fields.fields.delete(k);
    configBox.replaceChildren(h("legend", {}, "Plugin configuration"));
    configForm = null;
    if (typeSel.value === "push") { configBox.hidden = true; return; }
    configBox.hidden = false;
    const ref = pluginSel.value;
    if (!ref) { configBox.append(h("p", { class: "muted" }, "Choose a plugin to see its settings.")); return; }
    const [pname, pver] = ref.split("@");
    const candidates = plugins.filter((p) => p.name === pname && (!pver || p.version === pver));
    const p = candidates[0] || (await get(`/api/v1/plugins/${pname}/${pver}`));
    const values = existing && (existing.plugin || "").split("@")[0] === pname ? existing.config : {};
    configForm = schemaForm(p.config_schema || {}, values, "/config", fields);
    configBox.append(h("p", { class: "muted" }, p.description), configForm.el);
  }
  void configFieldsStart;

  function body() {
    const b = {
      name: name.value.trim(),
      interval_secs: interval.value === "" ? undefined : Number(interval.value),
      timeout_ms: timeout.value === "" ? (existing ? null : undefined) : Number(timeout.value),
      tags: tags.value.split(/[,\s]+/).map((t) => t.trim()).filter(Boolean),
      enabled: enabled.checked,
      failure_threshold: failure.value === "" ? undefined : Number(failure.value),
    };
    if (!existing) b.type = typeSel.value;
    if (typeSel.value === "check") {
      b.plugin = pluginSel.value || undefined;
      b.config = configForm ? configForm.value() : {};
    }
    return b;
  }

  async function submit(ev) {
    ev.preventDefault();
    fields.clear();
    general.replaceChildren();
    try {
      const b = body();
      if (!b.name) throw { pointer: "/name", message: "A name is required." };
      if (b.type !== "push" && !b.plugin) throw { pointer: "/plugin", message: "Choose a plugin." };
      const saved = existing ? await api("PATCH", `/api/v1/monitors/${editId}`, b) : await api("POST", "/api/v1/monitors", b);
      toast(existing ? "Monitor saved." : "Monitor created.", "ok");
      navigate(`/monitors/${saved.id}`);
    } catch (e) { showError(fields, general, e); }
  }

  async function test() {
    fields.clear();
    general.replaceChildren();
    outcome.replaceChildren(h("p", { class: "muted" }, "Running the check once…"));
    try {
      const b = body();
      if (existing) { delete b.enabled; b.type = existing.type; }
      if (!b.name) b.name = "test";
      const r = await api("POST", "/api/v1/monitors/test", b);
      outcome.replaceChildren(h("div", { class: `outcome st-${r.status}`, dataset: { status: r.status } },
        h("strong", {}, "Test result: "), badge(r.status), ` in ${fmtMs(r.latency_ms)}`,
        r.message ? h("p", {}, r.message) : null,
        r.error_cause ? h("p", { class: "muted" }, `cause: ${r.error_cause}`) : null,
        r.timings ? h("p", { class: "muted" }, Object.entries(r.timings).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${fmtMs(v)}`).join(" · ")) : null));
    } catch (e) {
      outcome.replaceChildren();
      showError(fields, general, e);
    }
  }

  typeSel.addEventListener("change", () => { pluginField.hidden = typeSel.value === "push"; loadSchema(); });
  pluginSel.addEventListener("change", loadSchema);
  const pluginField = plainField(fields, "/plugin", "Plugin", pluginSel, "Built-in and uploaded check plugins that are granted and enabled.");
  pluginField.hidden = typeSel.value === "push";

  const form = h("form", { id: "monitor-form", class: "card form", novalidate: true, onsubmit: submit },
    general,
    plainField(fields, "/name", "Name", name),
    plainField(fields, "/type", "Type", typeSel, existing ? "The type cannot change." : null),
    pluginField,
    configBox,
    h("fieldset", {}, h("legend", {}, "Schedule and alerting"),
      h("div", { class: "grid2" },
        plainField(fields, "/interval_secs", "Interval (seconds)", interval, "1–86 400."),
        plainField(fields, "/timeout_ms", "Timeout (ms)", timeout, "At most the interval."),
        plainField(fields, "/failure_threshold", "Failures before an incident", failure),
        plainField(fields, "/tags", "Tags", tags, "Comma separated.")),
      h("div", { class: "field check" }, h("label", { for: "m-enabled" }, enabled, " Enabled"))),
    outcome,
    h("div", { class: "actions" },
      button("Test", test, { id: "test-button" }),
      h("button", { type: "submit", class: "primary", id: "save-button" }, existing ? "Save" : "Create monitor"),
      link(existing ? `/monitors/${editId}` : "/", "Cancel")));
  main.replaceChildren(heading(existing ? `Edit ${existing.name}` : "New monitor"), form);
  await loadSchema();
}
