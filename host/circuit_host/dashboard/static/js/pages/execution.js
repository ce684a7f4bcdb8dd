// One execution: what ran and how it ended, its timeline (a waterfall of host calls and nested
// triggers, stored with the execution), its governor usage and its debug log.

import { get } from "../api.js";
import { waterfall } from "../charts.js";
import { h, mount, ms, percent, status, table, when } from "../dom.js";

export async function executionPage(id) {
  const e = await get(`/v1/executions/${encodeURIComponent(id)}`);
  const usage = Object.entries(e.usage).filter(([, u]) => u.used > 0);
  mount(
    h("p", {}, h("a", { href: "#/executions" }, "← Executions")),
    h("h1", {}, "Execution ", h("code", { id: "execution-id" }, e.id), " ", status(e.status)),
    h("section", { class: "card" }, h("dl", { class: "facts" },
      h("dt", {}, "started"), h("dd", {}, when(e.started_at)),
      h("dt", {}, "duration"), h("dd", {}, ms(e.duration_ms)),
      h("dt", {}, "environment"), h("dd", {}, e.env),
      h("dt", {}, "circuits"), h("dd", {}, e.version),
      h("dt", {}, "trigger"), h("dd", {}, e.trigger),
      h("dt", {}, "trace id"), h("dd", {}, e.trace_id || "–"),
      e.error ? [h("dt", {}, "error"), h("dd", { class: "error", id: "execution-error" }, e.error)] : null)),
    h("section", { class: "card" }, h("h2", {}, "Timeline"),
      e.timeline && e.timeline.length ? waterfall(e.timeline, e.duration_ms) : h("p", { class: "muted" }, "No host calls.")),
    h("section", { class: "card" }, h("h2", {}, "Governor usage"),
      table([["resource"], ["used", "num"], ["limit", "num"], ["of the limit", "num"]],
        usage.map(([name, u]) => h("tr", {}, h("td", {}, name), h("td", { class: "num" }, u.used), h("td", { class: "num" }, u.limit),
          h("td", { class: "num" }, u.limit ? percent(u.used / u.limit) : "–"))))),
    e.crm_writes && e.crm_writes.length ? h("section", { class: "card" }, h("h2", {}, "CRM writes"),
      table([["operation"], ["object"], ["rows", "num"], ["state"], ["last error"]],
        e.crm_writes.map((w) => h("tr", {}, h("td", {}, w.operation), h("td", {}, w.object), h("td", { class: "num" }, w.rows),
          h("td", {}, w.state), h("td", {}, w.last_error || ""))))) : null,
    h("section", { class: "card" }, h("h2", {}, "Debug log"), h("pre", { class: "log", id: "debug-log" }, e.debug_log || "")));
}
