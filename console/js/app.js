// The console's shell: config, hash routing (static hosting needs no rewrites: S3/CloudFront serve one
// index.html), the signed-in header, the connection banner and the 401 → sign-in rule.
import { config, loadConfig } from "./config.js";
import { clearToken, isAdmin, merchant, token } from "./auth.js";
import { on } from "./api.js";
import { h, replace } from "./dom.js";

const routes = [
  [/^#\/signin$/, () => import("./pages/signin.js"), { public: true }],
  [/^#\/personas$/, () => import("./pages/personas.js")],
  [/^#\/personas\/([^/]+)$/, () => import("./pages/persona.js")],
  [/^#\/jobs$/, () => import("./pages/jobs.js")],
  [/^#\/jobs\/([^/]+)$/, () => import("./pages/job.js")],
  [/^#\/usage$/, () => import("./pages/usage.js")],
  [/^#\/webhooks$/, () => import("./pages/webhooks.js")],
  [/^#\/admin\/(templates|models|merchants)$/, () => import("./pages/admin.js")],
];

const main = document.getElementById("main");
let current = null;  // {controller, reconnect}

function currentHash() {
  const [path] = (location.hash || "").split("?");
  return path;
}

export function queryParams() {
  return new URLSearchParams((location.hash.split("?")[1]) || "");
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function header() {
  const signedIn = Boolean(token());
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  document.getElementById("merchant").textContent = signedIn ? `merchant ${merchant() ?? "?"}` : "";
  for (const link of document.querySelectorAll("[data-admin]")) link.hidden = !(signedIn && isAdmin());
  const path = currentHash();
  for (const link of document.querySelectorAll("#nav a")) {
    const active = path === link.getAttribute("href") || path.startsWith(link.getAttribute("href") + "/");
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function render() {
  current?.controller.abort();
  const path = currentHash();
  if (!path || path === "#" || path === "#/") {
    location.replace(token() ? "#/personas" : "#/signin");
    return;
  }
  const found = routes.find(([pattern]) => pattern.test(path));
  if (!found) {
    header();
    replace(main, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/personas" }, "Go to personas")));
    return;
  }
  const [pattern, load, options = {}] = found;
  if (!options.public && !token()) {
    sessionStorage.setItem("genjobs.console.next", location.hash);
    location.replace("#/signin");
    return;
  }
  header();
  const controller = new AbortController();
  const ctx = { signal: controller.signal, reconnect: null, go };
  current = { controller, ctx };
  const page = await load();
  if (controller.signal.aborted) return;
  replace(main);
  try {
    await page.render(main, path.match(pattern).slice(1).map(decodeURIComponent), ctx);
  } catch (err) {
    if (err?.name !== "AbortError") throw err;
  }
  document.title = `${main.querySelector("h1")?.textContent || "console"} · genjobs`;
  if (!window.__consoleRendered) {
    window.__consoleRendered = performance.now();  // first page on screen: read by the tests' measurement
    performance.mark("console-first-render");
  }
}

function signOut(reason) {
  clearToken();
  if (reason) sessionStorage.setItem("genjobs.console.reason", reason);
  location.hash = "#/signin";
}

on("unauthorized", () => {
  if (currentHash() === "#/signin") return;  // the sign-in page shows its own error
  sessionStorage.setItem("genjobs.console.next", location.hash);
  signOut("The API answered 401: the token has expired or was rejected. Sign in again.");
});

let bannerTimer = null;
on("connection", (state) => {
  const banner = document.getElementById("connection");
  clearTimeout(bannerTimer);
  if (state === "lost") {
    banner.className = "banner warn";
    banner.textContent = "Connection to the API lost. Retrying…";
    banner.hidden = false;
  } else {
    banner.className = "banner success";
    banner.textContent = "Connection restored.";
    bannerTimer = setTimeout(() => { banner.hidden = true; }, 3000);
    current?.ctx.reconnect?.();
  }
});

document.getElementById("signout").addEventListener("click", () => signOut(null));
window.addEventListener("hashchange", () => { render(); main.focus({ preventScroll: true }); });

await loadConfig();
if (config().oidc) {
  // back from the identity provider? finish the code exchange before the first page renders
  const { completeSignIn } = await import("./oidc.js");
  const result = await completeSignIn();
  // replaceState, not location.replace: no hashchange, so the page below renders once
  if (result?.error) {
    sessionStorage.setItem("genjobs.console.reason", result.error);
    history.replaceState(null, "", `${location.pathname}#/signin`);
  } else if (result) {
    history.replaceState(null, "", location.pathname + (result.next && result.next !== "#/signin" ? result.next : "#/personas"));
  }
}
render();
