// Forms: fields generated from a plugin's JSON Schema, and server errors shown at the field
// their JSON pointer names.

import { h } from "./ui.js";

let seq = 0;
const nextId = () => `sf-${++seq}`;

/** True when the schema marks a secret (`x-secret`, `writeOnly` or `format: password`). */
export function isSecret(s) {
  return !!(s && (s["x-secret"] || s.writeOnly || s.format === "password"));
}

function typeOf(s) {
  let t = s.type;
  if (Array.isArray(t)) t = t.find((x) => x !== "null") || t[0];
  if (!t && s.enum) t = typeof s.enum[0] === "number" ? "number" : "string";
  if (!t && s.properties) t = "object";
  return t;
}

function titleOf(name, s) {
  return s.title || name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

/** Registry of fields by JSON pointer, with error display. */
export class FieldSet {
  constructor() { this.fields = new Map(); }

  /** Registers `input` (or a group) at `pointer`, returning the error element. */
  register(pointer, input, wrapper) {
    const err = h("p", { class: "field-error", id: `${input.id}-err`, hidden: true });
    wrapper.append(err);
    this.fields.set(pointer, { input, err, wrapper });
    return err;
  }

  clear() {
    for (const f of this.fields.values()) {
      f.err.hidden = true;
      f.err.textContent = "";
      f.input.removeAttribute("aria-invalid");
      f.wrapper.classList.remove("invalid");
      const d = (f.input.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== f.err.id);
      if (d.length) f.input.setAttribute("aria-describedby", d.join(" ")); else f.input.removeAttribute("aria-describedby");
    }
  }

  /** Shows `message` at the field `pointer` names (or its nearest registered parent);
   *  returns false when no field matches. */
  show(pointer, message) {
    let p = pointer || "";
    while (p && !this.fields.has(p)) p = p.slice(0, p.lastIndexOf("/"));
    const f = this.fields.get(p);
    if (!f) return false;
    f.err.hidden = false;
    f.err.textContent = message;
    f.input.setAttribute("aria-invalid", "true");
    f.wrapper.classList.add("invalid");
    const d = (f.input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!d.includes(f.err.id)) d.push(f.err.id);
    f.input.setAttribute("aria-describedby", d.join(" "));
    f.input.focus();
    return true;
  }
}

/**
 * Builds inputs for `schema` (an object schema) under `prefix` (e.g. "/config").
 * `values` are existing values (secrets read as "***"). Returns {el, value()}; value()
 * throws {pointer, message} for input that cannot be read (bad JSON).
 */
export function schemaForm(schema, values, prefix, fields) {
  const props = schema?.properties || {};
  const required = new Set(schema?.required || []);
  const readers = [];
  const el = h("div", { class: "schema-form" });
  for (const [name, s] of Object.entries(props)) {
    const pointer = `${prefix}/${name}`;
    const r = fieldFor(name, s, values?.[name], required.has(name), pointer, fields);
    el.append(r.el);
    readers.push([name, r.value]);
  }
  if (!Object.keys(props).length) {
    // No properties described: free JSON.
    const r = jsonField("Configuration (JSON)", schema, values, false, prefix, fields);
    return r;
  }
  return {
    el,
    value() {
      const out = {};
      for (const [name, read] of readers) {
        const v = read();
        if (v !== undefined) out[name] = v;
      }
      return out;
    },
  };
}

function describe(s, isReq) {
  const parts = [];
  if (s.description) parts.push(s.description);
  if (s.default !== undefined && typeof s.default !== "object") parts.push(`Default: ${s.default}.`);
  if (isReq) parts.push("Required.");
  return parts.join(" ");
}

function wrap(label, input, help, isReq) {
  const id = input.id;
  const helpEl = help ? h("small", { class: "help", id: `${id}-help` }, help) : null;
  if (helpEl) input.setAttribute("aria-describedby", `${id}-help`);
  return h("div", { class: "field" },
    h("label", { for: id }, label, isReq ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null),
    input, helpEl);
}

function fieldFor(name, s, value, isReq, pointer, fields) {
  const t = typeOf(s);
  const label = titleOf(name, s);
  const id = nextId();
  const help = describe(s, isReq);
  const common = { id, name: pointer, dataset: { pointer } };
  if (isReq) common["aria-required"] = "true";

  if (s.enum) {
    const sel = h("select", common,
      !isReq || s.default === undefined ? h("option", { value: "" }, s.default !== undefined ? `(default: ${s.default})` : "(none)") : null,
      s.enum.map((v) => h("option", { value: JSON.stringify(v), selected: (value ?? s.default) === v && value !== undefined }, String(v))));
    if (value !== undefined) sel.value = JSON.stringify(value);
    else if (isReq && s.default !== undefined) sel.value = JSON.stringify(s.default);
    const w = wrap(label, sel, help, isReq);
    fields.register(pointer, sel, w);
    return { el: w, value: () => (sel.value === "" ? undefined : JSON.parse(sel.value)) };
  }
  if (t === "boolean") {
    const cb = h("input", { ...common, type: "checkbox", checked: value ?? s.default ?? false });
    const w = h("div", { class: "field check" }, h("label", { for: id }, cb, " ", label),
      help ? h("small", { class: "help", id: `${id}-help` }, help) : null);
    if (help) cb.setAttribute("aria-describedby", `${id}-help`);
    fields.register(pointer, cb, w);
    const initial = cb.checked;
    return { el: w, value: () => (value === undefined && cb.checked === initial && s.default !== undefined ? undefined : cb.checked) };
  }
  if (t === "integer" || t === "number") {
    const inp = h("input", { ...common, type: "number", inputmode: t === "integer" ? "numeric" : "decimal",
      step: t === "integer" ? "1" : "any", min: s.minimum, max: s.maximum,
      placeholder: s.default !== undefined ? String(s.default) : "" });
    if (value !== undefined && value !== null) inp.value = String(value);
    const w = wrap(label, inp, help, isReq);
    fields.register(pointer, inp, w);
    return { el: w, value: () => (inp.value.trim() === "" ? undefined : Number(inp.value)) };
  }
  if (t === "string") {
    const secret = isSecret(s);
    const multiline = !secret && (s.maxLength > 200 || /body|script|template|pem|certificate/i.test(name)) ;
    const inp = multiline
      ? h("textarea", { ...common, rows: 3 })
      : h("input", { ...common, type: secret ? "password" : "text", autocomplete: secret ? "new-password" : "off",
        spellcheck: "false", placeholder: s.default !== undefined ? String(s.default) : (s.format === "uri" ? "https://…" : "") });
    let keep = false;
    if (secret && value === "***") {
      keep = true;
      inp.placeholder = "•••• stored — leave empty to keep";
    } else if (value !== undefined && value !== null) inp.value = String(value);
    if (secret) inp.dataset.secret = "true";
    const w = wrap(label, inp, secret ? `${help} Secret: stored encrypted, never shown again.` : help, isReq);
    fields.register(pointer, inp, w);
    return { el: w, value: () => (inp.value === "" ? (keep ? undefined : undefined) : inp.value) };
  }
  if (t === "array" && s.items && ["string", "number", "integer"].includes(typeOf(s.items)) && !s.items.enum) {
    const ta = h("textarea", { ...common, rows: 2 });
    const v = value ?? [];
    ta.value = Array.isArray(v) ? v.join("\n") : "";
    const w = wrap(`${label} (one per line)`, ta, help, isReq);
    fields.register(pointer, ta, w);
    const num = typeOf(s.items) !== "string";
    return {
      el: w,
      value: () => {
        const lines = ta.value.split("\n").map((x) => x.trim()).filter(Boolean);
        if (!lines.length) return value !== undefined ? [] : undefined;
        return num ? lines.map(Number) : lines;
      },
    };
  }
  if (t === "object" && s.properties) {
    const group = h("fieldset", { class: "subform", id });
    group.append(h("legend", {}, label));
    if (help) group.append(h("small", { class: "help" }, help));
    const inner = schemaForm(s, value || {}, pointer, fields);
    group.append(inner.el);
    fields.register(pointer, group, group);
    return {
      el: group,
      value: () => {
        const v = inner.value();
        return Object.keys(v).length ? v : undefined;
      },
    };
  }
  return jsonField(label, s, value, isReq, pointer, fields, help);
}

function jsonField(label, s, value, isReq, pointer, fields, help) {
  const id = nextId();
  const ta = h("textarea", { id, name: pointer, rows: 4, class: "mono", spellcheck: "false", dataset: { pointer } });
  if (value !== undefined) ta.value = JSON.stringify(value, null, 2);
  const w = wrap(`${label} (JSON)`, ta, help || s?.description, isReq);
  fields.register(pointer, ta, w);
  return {
    el: w,
    value: () => {
      if (!ta.value.trim()) return undefined;
      try { return JSON.parse(ta.value); } catch (e) {
        throw { pointer, message: `not valid JSON: ${e.message}` };
      }
    },
  };
}

/** A plain labelled input registered at `pointer`. */
export function plainField(fields, pointer, label, input, help) {
  input.id = input.id || nextId();
  input.name = input.name || pointer;
  input.dataset.pointer = pointer;
  const w = wrap(label, input, help, input.required);
  if (input.required) { input.required = false; input.setAttribute("aria-required", "true"); }
  fields.register(pointer, input, w);
  return w;
}
