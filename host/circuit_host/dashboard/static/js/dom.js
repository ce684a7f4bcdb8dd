// Building the page: elements from data, text always as text (never parsed as HTML), so nothing
// a circuit logs or a webhook sends can run in the dashboard.

const SVG = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function h(tag, attrs, ...children) { return build(document.createElement(tag), attrs, children); }
export function s(tag, attrs, ...children) { return build(document.createElementNS(SVG, tag), attrs, children); }

export function mount(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
  return main;
}

export function status(value) { return h("span", { class: `status ${value}` }, value); }

export function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function ms(value) {
  if (value === null || value === undefined) return "–";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(value < 10 ? 2 : 1)} ms`;
}

export function percent(fraction) { return `${(fraction * 100).toFixed(fraction < 0.1 ? 1 : 0)}%`; }

export function table(headers, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", { class: cls }, label)))),
    h("tbody", {}, rows));
}

export function notice(text, bad = false) { return h("p", { class: bad ? "notice bad" : "notice", role: "status" }, text); }
