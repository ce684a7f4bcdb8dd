// Jobs and the CRM outbox: how many wait in each state, the dead letters, and a retry for keys
// that may (jobs: deploy; outbox: admin; the server checks).

import { allows, get, post, query } from "../api.js";
import { h, mount, notice, table, when } from "../dom.js";

const PAGE = 500;
const JOB_STATES = ["todo", "doing", "dead"];
const OUTBOX_STATES = ["pending", "sending", "dead"];

export async function jobsPage(params, who) {
  const [jobs, outbox] = await Promise.all([
    Promise.all(JOB_STATES.map((state) => get(`/v1/jobs${query({ state, limit: PAGE })}`).then((p) => p.jobs))),
    Promise.all(OUTBOX_STATES.map((state) => get(`/v1/outbox${query({ state, limit: PAGE })}`)))]);
  const message = h("div", { id: "jobs-message" });
  const count = (list) => (list.length >= PAGE ? `${PAGE}+` : String(list.length));
  const retry = (path, scope, label) => {
    const button = h("button", { type: "button", class: "retry", disabled: !allows(who, scope),
      title: allows(who, scope) ? "" : `this key lacks the ${scope} scope`, onclick: async () => {
        button.disabled = true;
        try {
          await post(path);
          message.replaceChildren(notice(`${label} queued again.`));
          setTimeout(() => jobsPage(params, who), 600);
        } catch (err) {
          message.replaceChildren(notice(err.message, true));
          button.disabled = false;
        }
      } }, "Retry");
    return button;
  };
  const deadJobs = jobs[JOB_STATES.indexOf("dead")];
  const deadWrites = outbox[OUTBOX_STATES.indexOf("dead")];
  mount(h("h1", {}, "Jobs & outbox"), message,
    h("div", { class: "grid" },
      JOB_STATES.map((s, i) => h("div", { class: "figure", dataset: { queue: "jobs", state: s } },
        h("div", { class: "value" }, count(jobs[i])), h("div", { class: "label" }, `jobs ${s}`))),
      OUTBOX_STATES.map((s, i) => h("div", { class: "figure", dataset: { queue: "outbox", state: s } },
        h("div", { class: "value" }, count(outbox[i])), h("div", { class: "label" }, `CRM writes ${s}`)))),
    h("section", { class: "card" }, h("h2", {}, "Dead jobs"), deadJobs.length
      ? table([["id"], ["kind"], ["circuit"], ["attempts", "num"], ["created"], ["last error"], [""]],
        deadJobs.map((j) => h("tr", { class: "dead-job", dataset: { id: j.id } }, h("td", {}, j.id), h("td", {}, j.kind),
          h("td", {}, j.circuit || ""), h("td", { class: "num" }, `${j.attempts}/${j.max_attempts}`), h("td", {}, when(j.created_at)),
          h("td", { class: "muted" }, j.last_error || ""), h("td", {}, retry(`/v1/jobs/${j.id}/retry`, "deploy", `Job ${j.id}`)))))
      : h("p", { class: "muted" }, "None.")),
    h("section", { class: "card" }, h("h2", {}, "Dead-lettered CRM writes"), deadWrites.length
      ? table([["id"], ["CRM"], ["operation"], ["object"], ["rows", "num"], ["attempts", "num"], ["last error"], [""]],
        deadWrites.map((w) => h("tr", { class: "dead-write", dataset: { id: w.id } }, h("td", {}, w.id), h("td", {}, w.crm),
          h("td", {}, w.operation), h("td", {}, w.object), h("td", { class: "num" }, w.rows), h("td", { class: "num" }, w.attempts),
          h("td", { class: "muted" }, w.last_error || ""), h("td", {}, retry(`/v1/outbox/${w.id}/retry`, "admin", `Write ${w.id}`)))))
      : h("p", { class: "muted" }, "None.")));
}
