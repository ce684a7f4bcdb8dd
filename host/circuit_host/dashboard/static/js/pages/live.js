// Live tail: new executions and their debug-log lines as the server streams them
// (GET /v1/executions/stream, server-sent events; `circuit logs --tail` reads the same stream).

import { query, stream } from "../api.js";
import { h, mount, ms, status, when } from "../dom.js";

const KEPT = 200; // executions kept on the page, newest first

export async function livePage(params) {
  const env = params.get("env") || "";
  const state = h("span", { id: "live-state", class: "muted" }, "connecting…");
  const list = h("div", { id: "live-list" });
  const entries = new Map();
  const picker = h("select", { id: "live-env", onchange: (e) => { location.hash = `#/live${query({ env: e.target.value })}`; } },
    ["", "dev", "staging", "production"].map((v) => h("option", { value: v, selected: v === env }, v || "every environment")));
  mount(h("h1", {}, "Live tail"), h("div", { class: "toolbar" }, picker, state),
    h("section", { class: "card" }, list, h("p", { class: "muted", id: "live-empty" }, "Waiting for executions…")));

  const stop = stream(`/v1/executions/stream${query({ env })}`, (name, data) => {
    if (name === "execution") {
      document.getElementById("live-empty")?.remove();
      const log = h("pre", {});
      const entry = h("div", { class: "live-entry", dataset: { id: data.id, status: data.status } },
        h("a", { href: `#/executions/${encodeURIComponent(data.id)}` }, when(data.started_at)), " ",
        status(data.status), ` ${data.env} · ${data.trigger} · ${ms(data.duration_ms)}`,
        data.error ? h("span", { class: "error" }, ` ${data.error}`) : null, log);
      entries.set(data.id, log);
      list.prepend(entry);
      while (list.children.length > KEPT) { entries.delete(list.lastChild.dataset.id); list.lastChild.remove(); }
    } else if (name === "log") {
      const log = entries.get(data.execution_id);
      if (log) log.append(`${data.line}\n`);
    } else if (name === "gap") {
      list.prepend(h("p", { class: "notice" }, data.detail));
    }
  }, (what, error) => { state.textContent = error ? `${what}: ${error.message}` : what; state.dataset.state = what; });
  return stop;
}
