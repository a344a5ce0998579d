// Plugins (upload, review, grant, enable/disable), channels, incidents, maintenance windows
// and API keys.

import {
  h, api, get, toast, fmtTime, ago, navigate, link, heading, errorBox, button, field, badge,
} from "./ui.js";
import { FieldSet, schemaForm, plainField } from "./form.js";
import { activePlugins, showError } from "./pages.js";

function table(caption, headers, rows, attrs = {}) {
  return h("div", { class: "table-wrap" }, h("table", attrs,
    h("caption", { class: "sr-only" }, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows)));
}

// ---------------------------------------------------------------- plugins

function stateLabel(s) {
  return { active: "Active", awaiting_grant: "Awaiting grant", disabled: "Disabled" }[s] || s;
}

/** The review-and-grant panel for one plugin version. */
function grantPanel(p, done) {
  const boxes = p.capabilities.map((c) => h("input", { type: "checkbox", id: `cap-${p.name}-${c}`, value: c, checked: true }));
  const hosts = h("input", { type: "text", id: `hosts-${p.name}`, placeholder: "api.example.com, *.example.org",
    value: p.grants?.allowed_hosts?.join(", ") || "" });
  const err = h("div", {});
  return h("form", { class: "card grant", id: "grant-form", dataset: { plugin: `${p.name}@${p.version}` },
    onsubmit: async (ev) => {
      ev.preventDefault();
      err.replaceChildren();
      const list = hosts.value.split(/[,\s]+/).map((x) => x.trim()).filter(Boolean);
      try {
        await api("POST", `/api/v1/plugins/${encodeURIComponent(p.name)}/${encodeURIComponent(p.version)}/grant`, {
          capabilities: boxes.filter((b) => b.checked).map((b) => b.value),
          ...(list.length ? { allowed_hosts: list } : {}),
        });
        toast(`Granted ${p.name}@${p.version}; it is active.`, "ok");
        done();
      } catch (e) { err.replaceChildren(errorBox(e)); }
    } },
    h("h2", {}, `Review ${p.name}@${p.version}`),
    h("p", {}, p.description),
    h("p", { class: "muted" }, `${p.kind} plugin · sha256 ${p.digest.slice(0, 16)}… · ${(p.size / 1024).toFixed(0)} KiB`),
    h("fieldset", {}, h("legend", {}, "Requested capabilities"),
      p.capabilities.length ? boxes.map((b) => h("div", { class: "field check" }, h("label", { for: b.id }, b, " ", b.value)))
        : h("p", { class: "muted" }, "This plugin asks for no capability.")),
    field("Allowed hosts (optional)", hosts, "Limit network capabilities to these hosts; empty allows any public host."),
    err,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "grant-button" }, "Grant and enable")));
}

export async function plugins({ main }) {
  const review = h("div", { id: "review" });
  const listBox = h("div", { id: "plugin-list" });
  async function load() {
    const page = await get("/api/v1/plugins?limit=500");
    const items = page.items || page;
    listBox.replaceChildren(table("Plugins", ["Plugin", "Kind", "State", "Capabilities", "Granted", ""],
      items.map((p) => h("tr", { dataset: { plugin: `${p.name}@${p.version}` } },
        h("td", {}, h("strong", {}, p.name), ` ${p.version}`, p.builtin ? h("span", { class: "tag" }, "built-in") : null,
          h("div", { class: "muted small" }, p.description)),
        h("td", {}, p.kind),
        h("td", { class: "state" }, h("span", { class: `pill ps-${p.state}` }, stateLabel(p.state))),
        h("td", {}, p.capabilities.join(", ") || "—"),
        h("td", {}, p.grants ? [p.grants.capabilities?.join(", ") || "none", p.grants.allowed_hosts ? h("div", { class: "muted small" }, `hosts: ${p.grants.allowed_hosts.join(", ")}`) : null] : "—"),
        h("td", { class: "actions" }, p.builtin ? null : [
          p.state === "awaiting_grant" ? button("Review", () => { review.replaceChildren(grantPanel(p, () => { review.replaceChildren(); load(); })); review.querySelector("h2").scrollIntoView(); }) : null,
          p.state === "active" ? button("Disable", async () => { await api("POST", `/api/v1/plugins/${p.name}/${p.version}/disable`); load(); }) : null,
          p.state === "disabled" ? button("Enable", async () => { await api("POST", `/api/v1/plugins/${p.name}/${p.version}/enable`); load(); }) : null,
          button("Delete", async () => {
            if (!confirm(`Delete ${p.name}@${p.version}?`)) return;
            await api("DELETE", `/api/v1/plugins/${p.name}/${p.version}`); load();
          }, { class: "danger" }),
        ])))), { id: "plugins" });
  }
  const file = h("input", { type: "file", id: "plugin-file", accept: ".wasm,application/wasm" });
  const upErr = h("div", {});
  const upload = h("form", { class: "card", id: "upload-form", onsubmit: async (ev) => {
    ev.preventDefault();
    upErr.replaceChildren();
    const f = file.files[0];
    if (!f) { upErr.replaceChildren(errorBox({ message: "Choose a .wasm file." })); file.focus(); return; }
    try {
      const p = await api("POST", "/api/v1/plugins", f, { headers: { "Content-Type": "application/wasm" } });
      toast(`Uploaded ${p.name}@${p.version}.`, "ok");
      await load();
      if (p.state === "awaiting_grant") {
        review.replaceChildren(grantPanel(p, () => { review.replaceChildren(); load(); }));
        review.querySelector("h2").focus?.();
      }
    } catch (e) { upErr.replaceChildren(errorBox(e)); }
  } },
  h("h2", {}, "Upload a plugin"),
  field("WebAssembly component (.wasm)", file, "A check or notifier component built with the Pharos SDK; at most 32 MiB."),
  upErr,
  h("button", { type: "submit", class: "primary", id: "upload-button" }, "Upload"));
  main.replaceChildren(heading("Plugins"), upload, review, listBox);
  await load();
}

// ---------------------------------------------------------------- channels

export async function channels({ main }) {
  const listBox = h("div", {});
  async function load() {
    const page = await get("/api/v1/channels?limit=500");
    listBox.replaceChildren(page.items.length ? table("Channels", ["Name", "Plugin", "Binding", "Enabled", ""],
      page.items.map((c) => h("tr", {},
        h("td", {}, c.name), h("td", {}, c.plugin),
        h("td", {}, c.default ? "every monitor" : c.tags?.length ? `tags: ${c.tags.join(", ")}` : "monitors that name it"),
        h("td", {}, c.enabled ? "yes" : "no"),
        h("td", { class: "actions" },
          button("Send test", async () => { const r = await api("POST", `/api/v1/channels/${c.id}/test`); toast(`Test: ${r.outcome || r.status || "sent"} ${r.message || ""}`, "ok"); }),
          button(c.enabled ? "Disable" : "Enable", async () => { await api("PATCH", `/api/v1/channels/${c.id}`, { enabled: !c.enabled }); load(); }),
          button("Delete", async () => { if (confirm(`Delete channel “${c.name}”?`)) { await api("DELETE", `/api/v1/channels/${c.id}`); load(); } }, { class: "danger" })))))
    : h("p", { class: "muted" }, "No channels yet."));
  }
  const notifiers = await activePlugins("notifier");
  const fields = new FieldSet();
  const general = h("div", {});
  const name = h("input", { type: "text", id: "c-name" });
  const plugin = h("select", { id: "c-plugin" }, h("option", { value: "" }, "Choose…"),
    [...new Set(notifiers.map((p) => p.name))].sort().map((n) => h("option", { value: n }, n)));
  const isDefault = h("input", { type: "checkbox", id: "c-default" });
  const tags = h("input", { type: "text", id: "c-tags", placeholder: "prod" });
  const cfgBox = h("div", {});
  let cfg = null;
  plugin.addEventListener("change", () => {
    for (const k of [...fields.fields.keys()]) if (k.startsWith("/config")) fields.fields.delete(k);
    const p = notifiers.find((x) => x.name === plugin.value);
    cfg = p ? schemaForm(p.config_schema || {}, {}, "/config", fields) : null;
    cfgBox.replaceChildren(cfg ? cfg.el : "");
  });
  const body = () => ({ name: name.value.trim(), plugin: plugin.value, config: cfg ? cfg.value() : {}, default: isDefault.checked,
    tags: tags.value.split(/[,\s]+/).filter(Boolean) });
  const form = h("form", { class: "card form", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault(); fields.clear();
    try { await api("POST", "/api/v1/channels", body()); toast("Channel created.", "ok"); form.reset(); cfgBox.replaceChildren(); cfg = null; load(); }
    catch (e) { showError(fields, general, e); }
  } },
  h("h2", {}, "New channel"), general,
  plainField(fields, "/name", "Name", name), plainField(fields, "/plugin", "Notifier", plugin), cfgBox,
  h("div", { class: "field check" }, h("label", { for: "c-default" }, isDefault, " Default: notify for every monitor")),
  plainField(fields, "/tags", "Tags", tags, "Notify for monitors carrying any of these tags."),
  h("div", { class: "actions" },
    button("Send test", async () => { fields.clear(); try { const r = await api("POST", "/api/v1/channels/test", body()); toast(`Test: ${r.outcome || r.status || "sent"} ${r.message || ""}`, "ok"); } catch (e) { showError(fields, general, e); } }),
    h("button", { type: "submit", class: "primary" }, "Create channel")));
  main.replaceChildren(heading("Channels"), listBox, form);
  await load();
}

// ---------------------------------------------------------------- incidents

export async function incidents({ main, query }) {
  const status = h("select", { id: "i-status" }, h("option", { value: "" }, "All"), h("option", { value: "open" }, "Open"), h("option", { value: "resolved" }, "Resolved"));
  status.value = query.get("status") || "";
  const listBox = h("div", {});
  async function load() {
    const page = await get(`/api/v1/incidents?limit=100${status.value ? `&status=${status.value}` : ""}`);
    listBox.replaceChildren(page.items.length ? table("Incidents", ["Incident", "Monitor", "Severity", "Status", "Opened", "Acknowledged"],
      page.items.map((i) => h("tr", {},
        h("td", {}, link(`/incidents/${i.id}`, `#${i.id}`)), h("td", {}, link(`/monitors/${i.monitor_id}`, i.monitor_name)),
        h("td", {}, badge(i.severity)), h("td", {}, i.status === "open" ? "Open" : `Resolved ${ago(i.resolved_at)}`),
        h("td", {}, fmtTime(i.opened_at)), h("td", {}, i.acknowledged_at ? `by ${i.acknowledged_by}` : "no"))))
      : h("p", { class: "muted" }, "No incidents."));
  }
  status.addEventListener("change", load);
  main.replaceChildren(heading("Incidents"), h("div", { class: "filters" }, field("Status", status)), listBox);
  await load();
}

export async function incidentDetail({ main, params }) {
  const id = Number(params[0]);
  const { incident: i, timeline } = await get(`/api/v1/incidents/${id}`);
  const note = h("textarea", { id: "note", rows: 2 });
  const ackNote = h("input", { type: "text", id: "ack-note" });
  const reload = () => navigate(`/incidents/${id}`, { replace: true });
  main.replaceChildren(
    heading(`Incident #${i.id}: ${i.monitor_name}`),
    h("p", {}, badge(i.severity), ` ${i.status === "open" ? "Open" : "Resolved"} · opened ${fmtTime(i.opened_at)}`,
      i.resolved_at ? ` · resolved ${fmtTime(i.resolved_at)}` : "", i.suppressed ? ` · suppressed (${i.suppressed})` : ""),
    h("p", {}, h("strong", {}, "Cause: "), i.cause), h("p", {}, link(`/monitors/${i.monitor_id}`, "Open the monitor")),
    i.status === "open" && !i.acknowledged_at
      ? h("form", { class: "card inline", onsubmit: async (ev) => { ev.preventDefault();
        await api("POST", `/api/v1/incidents/${id}/acknowledge`, ackNote.value.trim() ? { note: ackNote.value.trim() } : undefined); toast("Acknowledged.", "ok"); reload(); } },
      field("Note (optional)", ackNote), h("button", { type: "submit", class: "primary", id: "ack" }, "Acknowledge"))
      : h("p", { class: "muted" }, i.acknowledged_at ? `Acknowledged by ${i.acknowledged_by} ${ago(i.acknowledged_at)}.` : ""),
    h("section", { "aria-labelledby": "h-tl" }, h("h2", { id: "h-tl" }, "Timeline"),
      h("ol", { class: "timeline" }, timeline.map((t) => h("li", { dataset: { kind: t.kind } },
        h("time", { datetime: t.at }, fmtTime(t.at)), " ", h("strong", {}, t.kind.replace(/_/g, " ")), ` — ${t.message}`,
        t.actor !== "system" ? h("span", { class: "muted" }, ` (${t.actor})`) : null)))),
    h("form", { class: "card", onsubmit: async (ev) => { ev.preventDefault();
      if (!note.value.trim()) return;
      await api("POST", `/api/v1/incidents/${id}/notes`, { message: note.value.trim() }); toast("Note added.", "ok"); reload(); } },
    field("Add a note", note), h("button", { type: "submit" }, "Add note")));
}

// ---------------------------------------------------------------- maintenance

export async function maintenance({ main }) {
  const listBox = h("div", {});
  async function load() {
    const page = await get("/api/v1/maintenance-windows?limit=500");
    listBox.replaceChildren(page.items.length ? table("Maintenance windows", ["Name", "When", "Covers", "Active", ""],
      page.items.map((w) => h("tr", {},
        h("td", {}, w.name, w.description ? h("div", { class: "muted small" }, w.description) : null),
        h("td", {}, w.cron ? `cron ${w.cron} (${w.timezone}) for ${w.duration_secs} s` : `${fmtTime(w.starts_at)} → ${fmtTime(w.ends_at)}`),
        h("td", {}, [w.monitor_ids?.length ? `monitors ${w.monitor_ids.join(", ")}` : "", w.tags?.length ? ` tags ${w.tags.join(", ")}` : ""].join(" ") || "—"),
        h("td", {}, w.active ? "active now" : w.enabled ? (w.next_start ? `next ${fmtTime(w.next_start)}` : "no") : "disabled"),
        h("td", { class: "actions" }, button("Delete", async () => { if (confirm(`Delete “${w.name}”?`)) { await api("DELETE", `/api/v1/maintenance-windows/${w.id}`); load(); } }, { class: "danger" })))))
      : h("p", { class: "muted" }, "No maintenance windows."));
  }
  const fields = new FieldSet();
  const general = h("div", {});
  const name = h("input", { type: "text", id: "w-name" });
  const starts = h("input", { type: "datetime-local", id: "w-starts" });
  const ends = h("input", { type: "datetime-local", id: "w-ends" });
  const cron = h("input", { type: "text", id: "w-cron", placeholder: "0 3 * * 0" });
  const duration = h("input", { type: "number", id: "w-duration", min: 60, placeholder: "3600" });
  const tz = h("input", { type: "text", id: "w-tz", value: "UTC" });
  const monitors = h("input", { type: "text", id: "w-monitors", placeholder: "1, 2" });
  const tags = h("input", { type: "text", id: "w-tags" });
  const iso = (v) => (v ? new Date(v).toISOString() : undefined);
  const form = h("form", { class: "card form", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault(); fields.clear();
    const b = { name: name.value.trim(), starts_at: iso(starts.value), ends_at: iso(ends.value), timezone: tz.value.trim() || "UTC",
      monitor_ids: monitors.value.split(/[,\s]+/).filter(Boolean).map(Number), tags: tags.value.split(/[,\s]+/).filter(Boolean) };
    if (cron.value.trim()) { b.cron = cron.value.trim(); b.duration_secs = Number(duration.value) || undefined; }
    try { await api("POST", "/api/v1/maintenance-windows", b); toast("Maintenance window created.", "ok"); form.reset(); load(); }
    catch (e) { showError(fields, general, e); }
  } },
  h("h2", {}, "New maintenance window"), general,
  plainField(fields, "/name", "Name", name),
  h("div", { class: "grid2" }, plainField(fields, "/starts_at", "Starts (local time)", starts), plainField(fields, "/ends_at", "Ends (local time)", ends),
    plainField(fields, "/cron", "Recurring: cron", cron, "Leave empty for a one-off window."), plainField(fields, "/duration_secs", "Recurring: duration (s)", duration),
    plainField(fields, "/timezone", "Time zone of the cron", tz), plainField(fields, "/monitor_ids", "Monitor ids", monitors),
    plainField(fields, "/tags", "Tags", tags)),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create window")));
  main.replaceChildren(heading("Maintenance windows"), listBox, form);
  await load();
}

// ---------------------------------------------------------------- API keys

export async function keys({ main }) {
  const listBox = h("div", {});
  const shown = h("div", { id: "new-key", role: "status" });
  async function load() {
    const page = await get("/api/v1/api-keys?limit=500");
    listBox.replaceChildren(table("API keys", ["Name", "Prefix", "Scopes", "Last used", "State", ""],
      page.items.map((k) => h("tr", {},
        h("td", {}, k.name), h("td", {}, h("code", {}, k.prefix)), h("td", {}, k.scopes.join(", ")),
        h("td", {}, ago(k.last_used_at)), h("td", {}, k.revoked_at ? `revoked ${ago(k.revoked_at)}` : "active"),
        h("td", { class: "actions" }, k.revoked_at ? null : button("Revoke", async () => {
          if (confirm(`Revoke “${k.name}”? Clients using it stop working.`)) { await api("DELETE", `/api/v1/api-keys/${k.id}`); load(); }
        }, { class: "danger" }))))));
  }
  const fields = new FieldSet();
  const general = h("div", {});
  const name = h("input", { type: "text", id: "k-name" });
  const scope = h("select", { id: "k-scope" }, ["read", "write", "admin"].map((s) => h("option", { value: s }, s)));
  const form = h("form", { class: "card form", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault(); fields.clear();
    try {
      const k = await api("POST", "/api/v1/api-keys", { name: name.value.trim(), scopes: [scope.value] });
      shown.replaceChildren(h("div", { class: "card notice" }, h("p", {}, "Copy the new key now — it is not shown again:"), h("code", { class: "secret" }, k.key)));
      form.reset(); load();
    } catch (e) { showError(fields, general, e); }
  } },
  h("h2", {}, "New API key"), general, plainField(fields, "/name", "Name", name), plainField(fields, "/scopes", "Scope", scope, "read ⊂ write ⊂ admin"),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create key")));
  main.replaceChildren(heading("API keys"), shown, listBox, form);
  await load();
}

// ---------------------------------------------------------------- status pages (admin)

export async function statusPages({ main }) {
  const listBox = h("div", { id: "status-page-list" });
  const monitors = (await get("/api/v1/monitors?limit=500")).items;
  async function load() {
    const page = await get("/api/v1/status-pages");
    listBox.replaceChildren(page.items.length ? page.items.map((p) => {
      const mon = h("select", { id: `sp-mon-${p.id}` }, monitors.map((m) => h("option", { value: m.id }, m.name)));
      const pub = h("input", { type: "text", id: `sp-name-${p.id}`, placeholder: "Public name" });
      return h("section", { class: "card", dataset: { page: p.slug } },
        h("h2", {}, p.title, " ", h("a", { href: `/status/${p.slug}`, target: "_blank", rel: "noopener" }, `/status/${p.slug}`)),
        h("p", { class: "muted" }, p.public ? "Public" : "Not public", p.description ? ` — ${p.description}` : ""),
        p.components?.length ? h("ul", { class: "plain" }, p.components.map((c) => h("li", {},
          `${c.group ? `${c.group} / ` : ""}${c.public_name} (monitor ${c.monitor_id}) `,
          button("Remove", async () => { await api("DELETE", `/api/v1/status-pages/${p.id}/components/${c.id}`); load(); }, { class: "danger" }))))
          : h("p", { class: "muted" }, "No components yet."),
        h("form", { class: "actions", onsubmit: async (ev) => {
          ev.preventDefault();
          const m = monitors.find((x) => String(x.id) === mon.value);
          try {
            await api("POST", `/api/v1/status-pages/${p.id}/components`, { monitor_id: Number(mon.value), public_name: pub.value.trim() || m?.name || "" });
            load();
          } catch (e) { toast(e.message, "error"); }
        } }, field("Monitor", mon), field("Public name", pub), h("button", { type: "submit" }, "Add component")),
        h("div", { class: "actions" }, button("Delete page", async () => {
          if (confirm(`Delete the status page “${p.title}”?`)) { await api("DELETE", `/api/v1/status-pages/${p.id}`); load(); }
        }, { class: "danger" })));
    }) : h("p", { class: "muted" }, "No status pages yet."));
  }
  const fields = new FieldSet();
  const general = h("div", {});
  const slug = h("input", { type: "text", id: "sp-slug", placeholder: "acme" });
  const title = h("input", { type: "text", id: "sp-title" });
  const desc = h("input", { type: "text", id: "sp-desc" });
  const isPublic = h("input", { type: "checkbox", id: "sp-public", checked: true });
  const form = h("form", { class: "card form", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault(); fields.clear();
    try {
      await api("POST", "/api/v1/status-pages", { slug: slug.value.trim(), title: title.value.trim(), description: desc.value.trim(), public: isPublic.checked });
      toast("Status page created.", "ok"); form.reset(); load();
    } catch (e) { showError(fields, general, e); }
  } },
  h("h2", {}, "New status page"), general,
  plainField(fields, "/slug", "Slug", slug, "Lowercase letters, digits and dashes; the page is /status/<slug>."),
  plainField(fields, "/title", "Title", title), plainField(fields, "/description", "Description", desc),
  h("div", { class: "field check" }, h("label", { for: "sp-public" }, isPublic, " Public")),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create page")));
  main.replaceChildren(heading("Status pages"), listBox, form);
  await load();
}
