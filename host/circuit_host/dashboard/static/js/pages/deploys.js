// Deploys: the active version of each circuit per environment, a rollback for keys that may deploy
// (POST /v1/environments/{env}/rollback: the server checks the scope and the deploy gate), and the
// audit trail with the gate's verdicts and coverage.

import { allows, get, post } from "../api.js";
import { h, mount, notice, table, when } from "../dom.js";

const ENVIRONMENTS = ["dev", "staging", "production"];

export async function deploysPage(params, who) {
  const [active, bundles, audit, gates] = await Promise.all([
    Promise.all(ENVIRONMENTS.map((env) => get(`/v1/environments/${env}/circuits`))),
    get("/v1/bundles"), get("/v1/audit?limit=100"), get("/v1/gate-runs?limit=50")]);
  const mayDeploy = allows(who, "deploy");
  const message = h("div", { id: "deploy-message" });

  const versionsOf = (name) => bundles.filter((b) => b.name === name).map((b) => b.version);
  const environments = ENVIRONMENTS.map((env, i) => h("section", { class: "card environment", dataset: { env } },
    h("h2", {}, env),
    active[i].length ? table([["circuit"], ["active version"], ["roll back to"]], active[i].map((c) => {
      const choice = h("select", { class: "rollback-version", "aria-label": `version of ${c.name} to roll back to` },
        h("option", { value: "" }, "the previous version"),
        versionsOf(c.name).filter((v) => v !== c.version).map((v) => h("option", { value: v }, v)));
      const button = h("button", { type: "button", class: "danger rollback", disabled: !mayDeploy,
        title: mayDeploy ? "" : "this key lacks the deploy scope", onclick: async () => {
          const to = choice.value || null;
          if (!confirm(`Roll back ${c.name} in ${env} from ${c.version} to ${to || "the previous version"}?`)) return;
          button.disabled = true;
          try {
            const now = await post(`/v1/environments/${env}/rollback`, { circuit: c.name, to_version: to });
            const running = now.find((x) => x.name === c.name);
            message.replaceChildren(notice(`${env} now runs ${c.name} ${running ? running.version : "(none)"}.`));
            setTimeout(() => deploysPage(params, who), 600);
          } catch (err) {
            message.replaceChildren(notice(err.message, true));
            button.disabled = false;
          }
        } }, "Roll back");
      return h("tr", { class: "active-circuit", dataset: { name: c.name, version: c.version } },
        h("td", {}, c.name), h("td", { class: "active-version" }, c.version),
        h("td", {}, mayDeploy ? [choice, " ", button] : h("span", { class: "muted" }, "needs a key with the deploy scope")));
    })) : h("p", { class: "muted" }, "Nothing deployed.")));

  const gate = (g) => (g ? `${g.passed ? "passed" : "refused"}${g.coverage != null ? `, coverage ${g.coverage.toFixed(1)}%` : ""}` : "");
  mount(h("h1", {}, "Deploys"), message, environments,
    h("section", { class: "card" }, h("h2", {}, "Audit trail"),
      table([["when"], ["actor"], ["action"], ["environment"], ["circuit"], ["from → to"], ["deploy gate"]],
        audit.map((a) => h("tr", { class: "audit-row", dataset: { action: a.action } }, h("td", {}, when(a.at)), h("td", {}, a.actor),
          h("td", {}, a.action), h("td", {}, a.env || ""), h("td", {}, a.circuit),
          h("td", {}, a.action === "settings" ? a.changed_keys.join(", ") : `${a.from_version || "–"} → ${a.to_version || "–"}`),
          h("td", {}, gate(a.gate)))))),
    h("section", { class: "card" }, h("h2", {}, "Deploy-gate verdicts"), gates.length === 0
      ? h("p", { class: "muted" }, "No deploy to staging or production has run the gate yet.") :
      table([["when"], ["environment"], ["circuit"], ["version"], ["verdict"], ["coverage", "num"], ["detail"]],
        gates.map((g) => h("tr", { class: "gate-row" }, h("td", {}, when(g.at)), h("td", {}, g.env), h("td", {}, g.circuit),
          h("td", {}, g.version), h("td", {}, g.passed ? "passed" : "refused"),
          h("td", { class: "num" }, g.coverage != null ? `${g.coverage.toFixed(1)}%` : "–"), h("td", { class: "muted" }, g.detail))))));
}
