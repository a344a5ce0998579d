// Charts drawn as inline SVG: sparkline, 90-day uptime bar, latency lines, phase breakdown.

import { h, fmtMs } from "./ui.js";

/** A 24 h latency sparkline from bucket means (nulls are gaps). */
export function sparkline(values, w = 120, hgt = 28) {
  const finite = values.filter((v) => v !== null);
  const svg = h("svg", { class: "spark", viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, role: "img",
    "aria-label": finite.length
      ? `Latency over 24 hours: ${fmtMs(Math.min(...finite))} to ${fmtMs(Math.max(...finite))}`
      : "No latency data in the last 24 hours" });
  if (!finite.length) return svg;
  const max = Math.max(...finite) || 1;
  const step = w / Math.max(values.length - 1, 1);
  let d = "";
  let pen = false;
  let last = null;
  values.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    const x = (i * step).toFixed(1);
    const y = (hgt - 2 - (v / max) * (hgt - 4)).toFixed(1);
    d += `${pen ? "L" : "M"}${x} ${y}`;
    pen = true;
    last = [x, y];
  });
  svg.append(h("path", { d, class: "spark-line" }));
  if (last) svg.append(h("circle", { cx: last[0], cy: last[1], r: 2, class: "spark-dot" }));
  return svg;
}

/** Class of one day's uptime. */
function dayClass(v) {
  if (v === null) return "none";
  if (v >= 99.9) return "ok";
  if (v >= 95) return "partial";
  return "bad";
}

/** 90 daily uptime bars, one path per class (cheap for a thousand rows). */
export function uptimeBar(days, w = 180, hgt = 22) {
  const bw = w / days.length;
  const paths = { ok: "", partial: "", bad: "", none: "" };
  let counted = 0;
  let sum = 0;
  days.forEach((v, i) => {
    const c = dayClass(v);
    const x = (i * bw + 0.3).toFixed(1);
    const height = c === "none" ? hgt / 3 : hgt;
    paths[c] += `M${x} ${hgt - height}h${(bw - 0.6).toFixed(2)}v${height}h${(-(bw - 0.6)).toFixed(2)}z`;
    if (v !== null) { counted++; sum += v; }
  });
  const label = counted
    ? `90-day uptime ${(sum / counted).toFixed(2)} % over ${counted} days with data`
    : "No uptime data in the last 90 days";
  const svg = h("svg", { class: "bar90", viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, role: "img", "aria-label": label },
    h("title", {}, label));
  for (const [c, d] of Object.entries(paths)) if (d) svg.append(h("path", { d, class: `day-${c}` }));
  return svg;
}

/** Latency chart: p50/p95/p99 lines over time buckets, with axes and a legend. */
export function latencyChart(buckets, { width = 760, height = 240 } = {}) {
  const pad = { l: 56, r: 12, t: 12, b: 28 };
  const iw = width - pad.l - pad.r;
  const ih = height - pad.t - pad.b;
  const series = [["p50_ms", "l-p50", "p50"], ["p95_ms", "l-p95", "p95"], ["p99_ms", "l-p99", "p99"]];
  const vals = buckets.flatMap((b) => series.map(([k]) => b[k]).filter((v) => v !== null && v !== undefined));
  const max = vals.length ? Math.max(...vals) * 1.1 : 1;
  const t0 = new Date(buckets[0]?.start || Date.now()).getTime();
  const t1 = new Date(buckets.at(-1)?.end || Date.now()).getTime();
  const x = (t) => pad.l + ((t - t0) / Math.max(t1 - t0, 1)) * iw;
  const y = (v) => pad.t + ih - (v / max) * ih;
  const svg = h("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": vals.length ? `Latency percentiles, up to ${fmtMs(Math.max(...vals))}` : "No latency data in this range",
    preserveAspectRatio: "none" });
  // grid + y labels
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const yy = y(v);
    svg.append(h("line", { x1: pad.l, x2: width - pad.r, y1: yy, y2: yy, class: "grid" }));
    svg.append(h("text", { x: pad.l - 6, y: yy + 4, class: "axis", "text-anchor": "end" }, fmtMs(v)));
  }
  // x labels
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    const d = new Date(t);
    const label = t1 - t0 > 2 * 86400e3 ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" })
      : d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    svg.append(h("text", { x: x(t), y: height - 8, class: "axis", "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, label));
  }
  for (const [k, cls] of series) {
    let d = "";
    let pen = false;
    const dots = [];
    for (const b of buckets) {
      const v = b[k];
      if (v === null || v === undefined) { pen = false; continue; }
      const mid = (new Date(b.start).getTime() + new Date(b.end).getTime()) / 2;
      d += `${pen ? "L" : "M"}${x(mid).toFixed(1)} ${y(v).toFixed(1)}`;
      pen = true;
      dots.push([x(mid), y(v)]);
    }
    if (d) svg.append(h("path", { d, class: `line ${cls}`, dataset: { series: k } }));
    if (dots.length <= 60) {
      for (const [cx, cy] of dots) svg.append(h("circle", { cx, cy, r: 2.5, class: `dot ${cls}` }));
    }
  }
  const legend = h("ul", { class: "legend" },
    series.map(([, cls, label]) => h("li", {}, h("span", { class: `swatch ${cls}`, "aria-hidden": "true" }), label)));
  return h("figure", { class: "chart-box" }, svg, legend);
}

/** Mean phase timings over buckets, as one stacked bar with a labelled table. */
export function phaseBreakdown(buckets) {
  const names = [["dns_ms", "DNS"], ["connect_ms", "Connect"], ["tls_ms", "TLS"], ["first_byte_ms", "First byte"]];
  const sums = {};
  for (const [k] of names) {
    let s = 0, n = 0;
    for (const b of buckets) {
      const v = b[k];
      if (v !== null && v !== undefined) { s += v * (b.count || 1); n += b.count || 1; }
    }
    sums[k] = n ? s / n : null;
  }
  const total = names.reduce((a, [k]) => a + (sums[k] || 0), 0);
  const w = 600;
  const svg = h("svg", { class: "phases", viewBox: `0 0 ${w} 20`, role: "img", "aria-label": "Phase breakdown", preserveAspectRatio: "none" });
  let x = 0;
  names.forEach(([k], i) => {
    const v = sums[k];
    if (!v || !total) return;
    const bw = (v / total) * w;
    svg.append(h("rect", { x, y: 0, width: bw, height: 20, class: `ph ph-${i}` }, h("title", {}, `${k}: ${fmtMs(v)}`)));
    x += bw;
  });
  const table = h("dl", { class: "phase-list" },
    names.map(([k, label], i) => [h("dt", {}, h("span", { class: `swatch ph-${i}`, "aria-hidden": "true" }), label), h("dd", {}, fmtMs(sums[k]))]));
  return h("div", { class: "phase-box" }, total ? svg : h("p", { class: "muted" }, "No phase timings in this range."), table);
}
