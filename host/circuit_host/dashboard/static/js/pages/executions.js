// Executions: the stored list, filtered by status, circuit, environment and time (GET /v1/executions).

import { get, query } from "../api.js";
import { h, mount, ms, status, table, when } from "../dom.js";

const STATUSES = ["ok", "error", "limit_exceeded", "timeout", "trap"];
const ENVIRONMENTS = ["dev", "staging", "production"];

export async function executionsPage(params) {
  const filters = {
    status: params.get("status") || "", env: params.get("env") || "", circuit: params.get("circuit") || "",
    since: params.get("since") || "", until: params.get("until") || "", before: params.get("before") || "",
  };
  const asUtc = (local) => (local ? new Date(local).toISOString() : "");
  const page = await get(`/v1/executions${query({ ...filters, since: asUtc(filters.since), until: asUtc(filters.until), limit: 50 })}`);

  const choose = (name, values) => h("div", {}, h("label", { for: `filter-${name}` }, name),
    h("select", { id: `filter-${name}`, name }, h("option", { value: "" }, "any"),
      values.map((v) => h("option", { value: v, selected: v === filters[name] }, v))));
  const field = (name, type) => h("div", {}, h("label", { for: `filter-${name}` }, name),
    h("input", { id: `filter-${name}`, name, type, value: filters[name] }));
  const form = h("form", { class: "filters", id: "execution-filters", onsubmit: (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(event.target));
    location.hash = `#/executions${query(data)}`;
  } }, choose("status", STATUSES), choose("env", ENVIRONMENTS), field("circuit", "text"),
  field("since", "datetime-local"), field("until", "datetime-local"), h("button", { type: "submit" }, "Filter"));

  const rows = page.executions.map((e) => h("tr", { class: "link execution-row", dataset: { id: e.id, status: e.status },
    onclick: () => { location.hash = `#/executions/${encodeURIComponent(e.id)}`; } },
  h("td", {}, when(e.started_at)), h("td", {}, e.env), h("td", {}, e.circuit), h("td", {}, e.trigger),
  h("td", {}, status(e.status)), h("td", { class: "num" }, ms(e.duration_ms)), h("td", { class: "muted" }, e.error || "")));
  const older = page.next_before
    ? h("a", { href: `#/executions${query({ ...filters, before: page.next_before })}` }, "Older →") : null;
  mount(h("h1", {}, "Executions"), form,
    h("section", { class: "card" }, rows.length
      ? table([["started"], ["environment"], ["circuit"], ["trigger"], ["status"], ["duration", "num"], ["error"]], rows)
      : h("p", { class: "muted" }, "No executions match."), older));
}
