// Building DOM without innerHTML: every value from the API goes in as text, so nothing it says can run as code.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key in el && typeof value !== "string") el[key] = value;  // .value, .checked, .disabled ...
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export const usd = (value) =>
  value === null || value === undefined ? "—" : `$${Number(value).toFixed(Number(value) < 1 && Number(value) > 0 ? 4 : 2)}`;

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function badge(status) {
  const text = String(status || "unknown").replaceAll("_", " ");
  return h("span", { class: `badge ${status || ""}` }, text);
}

export function notice(text, kind = "") {
  return h("p", { class: `notice ${kind}`, role: "status" }, text);
}

// The standard notice for a route the server does not have yet (404 from the gateway itself).
export function notAvailable(what, route) {
  return notice(`${what} is not available on this server yet (${route} answered 404). ` +
    "It appears here as soon as the API has it.", "info");
}

export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export const shortId = (id) => (id ? String(id).slice(0, 8) : "");
