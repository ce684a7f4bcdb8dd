// The dashboard's shell: sign-in, the navigation, and one page module per hash route
// (#/overview, #/executions, #/executions/<id>, #/live, #/deploys, #/jobs).

import { ApiError, apiKey, forgetKey, get, signIn } from "./api.js";
import { h, mount, notice } from "./dom.js";
import { deploysPage } from "./pages/deploys.js";
import { executionPage } from "./pages/execution.js";
import { executionsPage } from "./pages/executions.js";
import { jobsPage } from "./pages/jobs.js";
import { livePage } from "./pages/live.js";
import { overviewPage } from "./pages/overview.js";

const PAGES = { overview: overviewPage, executions: executionsPage, live: livePage, deploys: deploysPage, jobs: jobsPage };
let who = null;
let leave = null; // what the current page does when it is left (close its live stream)

function showSignIn(message) {
  who = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("who").replaceChildren();
  const form = document.getElementById("sign-in").content.cloneNode(true);
  mount(form);
  const error = document.getElementById("sign-in-error");
  if (message) error.textContent = message;
  document.getElementById("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = document.getElementById("api-key").value.trim();
    try {
      who = await signIn(key);
      route();
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401 ? "That key is unknown or revoked." : err.message;
    }
  });
  document.getElementById("api-key").focus();
}

function showWho() {
  document.getElementById("nav").hidden = false;
  const out = h("button", { type: "button", id: "sign-out", onclick: () => { forgetKey(); showSignIn(); } }, "Sign out");
  document.getElementById("who").replaceChildren(
    h("span", { id: "who-tenant", title: `key ${who.key_id}` }, who.tenant_id),
    h("span", { id: "who-scopes", class: "muted" }, who.scopes.join(", ")), out);
}

async function route() {
  if (leave) { leave(); leave = null; }
  if (!apiKey()) return showSignIn();
  if (!who) {
    try { who = await get("/v1/whoami"); } catch (err) {
      forgetKey();
      return showSignIn(err instanceof ApiError && err.status === 401 ? "Your key was revoked; sign in again." : err.message);
    }
  }
  showWho();
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, id] = path.split("/");
  const page = name || "overview";
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.page === page);
  const params = new URLSearchParams(search);
  try {
    if (page === "executions" && id) leave = await executionPage(decodeURIComponent(id), who);
    else if (PAGES[page]) leave = await PAGES[page](params, who);
    else mount(notice(`No page ${page}.`, true));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { forgetKey(); return showSignIn("Your key was revoked; sign in again."); }
    mount(notice(err.message, true));
  }
}

window.addEventListener("hashchange", route);
route();
