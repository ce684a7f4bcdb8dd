// Charts drawn as inline SVG from the API's figures. Every mark carries its numbers as data-*
// attributes and a <title>, so what a chart shows can be read back (by people and by tests).

import { h, ms, percent, s } from "./dom.js";

const WIDTH = 960;

function shortTime(date, withDay) {
  const options = withDay ? { weekday: "short", hour: "2-digit", minute: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
  return date.toLocaleTimeString([], options);
}

// Executions per minute over the window: one stacked bar (ok below, failed above) per bucket.
export function rateChart(buckets, since, until, bucketSeconds) {
  const height = 180, left = 40, bottom = 22, top = 8;
  const first = Math.floor(new Date(since).getTime() / 1000 / bucketSeconds);
  const last = Math.floor((new Date(until).getTime() / 1000 - 1e-3) / bucketSeconds);
  const slots = new Map();
  for (let n = first; n <= last; n++) slots.set(n, { ok: 0, failed: 0 });
  for (const b of buckets) {
    const n = Math.floor(new Date(b.start).getTime() / 1000 / bucketSeconds);
    const slot = slots.get(n);
    if (slot) { slot.ok += b.ok; slot.failed += b.failed; }
  }
  const perMinute = bucketSeconds / 60;
  const peak = Math.max(1, ...[...slots.values()].map((v) => (v.ok + v.failed) / perMinute));
  const plotWidth = WIDTH - left - 8, plotHeight = height - top - bottom;
  const step = plotWidth / slots.size;
  const y = (value) => (value / peak) * plotHeight;
  const bars = [];
  let i = 0;
  for (const [n, v] of slots) {
    const x = left + i * step;
    const start = new Date(n * bucketSeconds * 1000);
    const okHeight = y(v.ok / perMinute), failedHeight = y(v.failed / perMinute);
    bars.push(s("g", { class: "bucket", dataset: { start: start.toISOString(), ok: v.ok, failed: v.failed } },
      s("title", {}, `${shortTime(start, bucketSeconds > 60)}: ${v.ok} ok, ${v.failed} failed`),
      s("rect", { class: "bar-ok", x: x + 0.5, width: Math.max(step - 1, 1), y: top + plotHeight - okHeight, height: okHeight }),
      s("rect", { class: "bar-failed", x: x + 0.5, width: Math.max(step - 1, 1), y: top + plotHeight - okHeight - failedHeight, height: failedHeight })));
    if (i % Math.ceil(slots.size / 6) === 0) {
      bars.push(s("text", { x, y: height - 6 }, shortTime(start, bucketSeconds > 60)));
    }
    i++;
  }
  const label = peak >= 10 ? peak.toFixed(0) : peak.toFixed(1);
  return h("figure", { class: "chart", id: "rate-chart" },
    h("div", { class: "legend" }, h("span", { class: "ok" }, "ok"), h("span", { class: "failed" }, "failed"),
      h("span", {}, bucketSeconds === 60 ? "per minute" : `per minute, averaged over ${bucketSeconds / 60} min`)),
    s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, width: "100%", role: "img", "aria-label": "executions per minute" },
      s("line", { class: "axis", x1: left, x2: WIDTH - 8, y1: top + plotHeight, y2: top + plotHeight }),
      s("text", { x: 4, y: top + 10 }, label), s("text", { x: 4, y: top + plotHeight }, "0"),
      bars));
}

// p50/p95/p99 per environment and circuit: three bars a row, on one scale.
export function latencyChart(circuits) {
  const rowHeight = 34, left = 240, height = Math.max(1, circuits.length) * rowHeight + 10;
  const peak = Math.max(1, ...circuits.map((c) => c.p99_ms || 0));
  const scale = (value) => ((value || 0) / peak) * (WIDTH - left - 90);
  const rows = circuits.map((c, i) => {
    const y = 6 + i * rowHeight;
    return s("g", { class: "latency", dataset: { env: c.env, circuit: c.circuit, p50: c.p50_ms, p95: c.p95_ms, p99: c.p99_ms } },
      s("text", { class: "label", x: 4, y: y + 18 }, `${c.env} · ${c.circuit}`),
      ["p50", "p95", "p99"].map((p, k) => s("rect", { class: p, x: left, y: y + k * 9, height: 8, width: scale(c[`${p}_ms`]) },
        s("title", {}, `${p} ${ms(c[`${p}_ms`])}`))),
      s("text", { x: left + scale(c.p99_ms) + 6, y: y + 18 }, `p99 ${ms(c.p99_ms)}`));
  });
  return h("figure", { class: "chart", id: "latency-chart" },
    h("div", { class: "legend" }, h("span", { class: "p50" }, "p50"), h("span", { class: "p95" }, "p95"), h("span", { class: "p99" }, "p99")),
    s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, width: "100%", role: "img", "aria-label": "latency percentiles" }, rows));
}

// Governor headroom: per resource, the highest fraction of its limit one execution used.
export function headroomChart(circuit, shown = 6) {
  const entries = Object.entries(circuit.headroom).sort((a, b) => b[1] - a[1]).slice(0, shown);
  const rowHeight = 20, left = 140, barWidth = 300, height = entries.length * rowHeight + 4;
  return s("svg", { class: "headroom-chart", viewBox: `0 0 ${left + barWidth + 70} ${height}`, width: left + barWidth + 70,
    role: "img", "aria-label": `governor headroom of ${circuit.env} ${circuit.circuit}`, dataset: { env: circuit.env, circuit: circuit.circuit } },
  entries.map(([resource, fraction], i) => {
    const y = 2 + i * rowHeight;
    const level = fraction >= 1 ? "full" : fraction >= 0.8 ? "warn" : "";
    return s("g", { class: "resource", dataset: { resource, fraction } },
      s("text", { class: "label", x: 0, y: y + 12 }, resource),
      s("rect", { class: "axis", x: left, y: y + 3, width: barWidth, height: 10, fill: "none" }),
      s("rect", { class: `headroom ${level}`, x: left, y: y + 3, width: Math.min(fraction, 1) * barWidth, height: 10 }),
      s("text", { x: left + barWidth + 6, y: y + 12 }, percent(fraction)));
  }));
}

// The execution's waterfall: one bar per host call and trigger run, indented by nesting.
export function waterfall(steps, totalMs) {
  const rowHeight = 22, left = 380, height = steps.length * rowHeight + 24;
  const span = Math.max(totalMs || 0, ...steps.map((t) => t.start_ms + t.duration_ms), 0.001);
  const x = (value) => left + (value / span) * (WIDTH - left - 70);
  const rows = steps.map((step, i) => {
    const y = 4 + i * rowHeight;
    const name = step.name.length > 60 ? `${step.name.slice(0, 59)}…` : step.name;
    const failed = step.outcome !== "ok" ? " step-failed" : "";
    return s("g", { class: "step", dataset: { kind: step.kind, name: step.name, start: step.start_ms, duration: step.duration_ms, depth: step.depth, outcome: step.outcome } },
      s("title", {}, `${step.kind.toUpperCase()} ${step.name}: ${ms(step.duration_ms)} from ${ms(step.start_ms)}${step.rows != null ? `, ${step.rows} rows` : ""}, ${step.outcome}`),
      s("text", { class: "label", x: 4 + step.depth * 14, y: y + 14 }, step.kind === "trigger" ? name : `${step.kind.toUpperCase()} ${name}`),
      s("rect", { class: `step-${step.kind}${failed}`, x: x(step.start_ms), y: y + 3, height: 14, width: Math.max(x(step.start_ms + step.duration_ms) - x(step.start_ms), 1.5) }),
      s("text", { x: x(step.start_ms + step.duration_ms) + 4, y: y + 14 }, ms(step.duration_ms)));
  });
  return h("figure", { class: "chart", id: "timeline" },
    h("div", { class: "legend" }, ["query", "dml", "callout", "trigger"].map((k) => h("span", { class: k }, k))),
    s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, width: "100%", role: "img", "aria-label": "execution timeline" },
      rows,
      s("text", { x: left, y: height - 4 }, "0"),
      s("text", { x: WIDTH - 70, y: height - 4 }, ms(span))));
}
