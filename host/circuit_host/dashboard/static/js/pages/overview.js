// Overview: executions per minute, error rates, latency percentiles and governor headroom, from
// GET /v1/stats (the stored executions) over the last hour or day.

import { get, query } from "../api.js";
import { headroomChart, latencyChart, rateChart } from "../charts.js";
import { h, mount, ms, percent, table } from "../dom.js";

export async function overviewPage(params) {
  const range = params.get("window") === "24h" ? "24h" : "1h";
  const selected = params.get("circuit") || ""; // "env|circuit", or every circuit
  const stats = await get(`/v1/stats${query({ window: range })}`);
  const chosen = (c) => !selected || `${c.env}|${c.circuit}` === selected;
  const circuits = stats.circuits.filter(chosen);
  const total = circuits.reduce((n, c) => n + c.executions, 0);
  const failed = circuits.reduce((n, c) => n + c.failed, 0);
  const minutes = (new Date(stats.until) - new Date(stats.since)) / 60000;

  const picker = h("select", { id: "circuit-filter", onchange: (e) => { location.hash = `#/overview${query({ window: range, circuit: e.target.value })}`; } },
    h("option", { value: "" }, "every environment and circuit"),
    stats.circuits.map((c) => h("option", { value: `${c.env}|${c.circuit}`, selected: `${c.env}|${c.circuit}` === selected }, `${c.env} · ${c.circuit}`)));
  const windows = ["1h", "24h"].map((w) => h("button", { type: "button", class: w === range ? "" : "secondary", dataset: { window: w },
    onclick: () => { location.hash = `#/overview${query({ window: w, circuit: selected })}`; } }, w === "1h" ? "Last hour" : "Last day"));

  mount(
    h("h1", {}, "Overview"),
    h("div", { class: "toolbar" }, windows, picker, stats.sampled ? h("span", { class: "muted" }, "percentiles from the newest 20,000 executions") : null),
    h("div", { class: "grid", id: "totals" },
      figure("executions", total, "total"),
      figure("per minute", (total / minutes).toFixed(2), "rate"),
      figure("failed", failed, "failed"),
      figure("error rate", total ? percent(failed / total) : "–", "error-rate")),
    h("section", { class: "card" }, h("h2", {}, "Executions per minute"),
      rateChart(stats.buckets.filter(chosen), stats.since, stats.until, stats.bucket_seconds)),
    h("section", { class: "card" }, h("h2", {}, "Latency per environment and circuit"),
      circuits.length ? latencyChart(circuits) : h("p", { class: "muted" }, "No executions in this window."),
      circuits.length ? table(
        [["environment"], ["circuit"], ["executions", "num"], ["error rate", "num"], ["p50", "num"], ["p95", "num"], ["p99", "num"], ["by status"]],
        circuits.map((c) => h("tr", { class: "circuit-row", dataset: { env: c.env, circuit: c.circuit } },
          h("td", {}, c.env), h("td", {}, c.circuit), h("td", { class: "num" }, c.executions),
          h("td", { class: "num" }, percent(c.error_rate)), h("td", { class: "num" }, ms(c.p50_ms)),
          h("td", { class: "num" }, ms(c.p95_ms)), h("td", { class: "num" }, ms(c.p99_ms)),
          h("td", {}, Object.entries(c.by_status).map(([k, v]) => `${k} ${v}`).join(", "))))) : null),
    h("section", { class: "card", id: "headroom" }, h("h2", {}, "Governor headroom"),
      h("p", { class: "muted" }, "Per resource, the highest fraction of its limit one execution used: a circuit drifting toward a limit shows here before it fails on it."),
      circuits.map((c) => h("div", {}, h("h3", {}, `${c.env} · ${c.circuit}`), headroomChart(c)))));
}

function figure(label, value, id) {
  return h("div", { class: "figure", id: `figure-${id}` }, h("div", { class: "value" }, value), h("div", { class: "label" }, label));
}
