// Sign in by pasting a bearer token (`make token MERCHANT=acme` locally; an access token from the identity
// provider in AWS). The token is checked with GET /usage before it is kept.
import { api } from "../api.js";
import { claims, clearToken, setToken } from "../auth.js";
import { config } from "../config.js";
import { append, h } from "../dom.js";
import { field, onSubmit, outcome } from "../ui.js";

export async function render(main, _params, ctx) {
  const reason = sessionStorage.getItem("genjobs.console.reason");
  sessionStorage.removeItem("genjobs.console.reason");
  const out = outcome();
  const oidcButton = h("p", {}, h("button", { type: "button", id: "oidc-signin", onclick: async () => {
    const next = sessionStorage.getItem("genjobs.console.next");
    const { startSignIn } = await import("../oidc.js");
    await startSignIn(next);
  } }, `Sign in with ${config().oidc?.name || "the identity provider"}`));
  const input = h("textarea", { id: "token", name: "token", required: true, rows: 4, spellcheck: "false",
    autocomplete: "off", class: "mono", placeholder: "eyJhbGciOi…" });
  const form = h("form", { class: "stack", "aria-labelledby": "signin-title" },
    field("Bearer token", input, "Locally: make token MERCHANT=acme (or the token make run prints)."),
    h("div", {}, h("button", { type: "submit" }, "Sign in")));
  append(main, [
    h("h1", { id: "signin-title" }, "Sign in"),
    reason ? h("div", { class: "error", role: "alert" }, h("strong", {}, reason)) : null,
    config().oidc ? [oidcButton, h("p", { class: "muted" }, "Or paste a token:")] : null,
    form, out]);
  onSubmit(form, out, async (data) => {
    const value = String(data.get("token") || "").trim().replace(/^bearer\s+/i, "");
    setToken(value);
    try {
      await api("GET", "/usage", { signal: ctx.signal });
    } catch (err) {
      clearToken();
      if (err.status === 401) {
        out.error(Object.assign(err, { message: `The API rejected this token: ${err.message}` }));
        return;
      }
      throw err;
    }
    const merchant = claims(value)[config().merchantClaim];
    const next = sessionStorage.getItem("genjobs.console.next");
    sessionStorage.removeItem("genjobs.console.next");
    ctx.go(next && next !== "#/signin" ? next : "#/personas");
    console.info(`signed in as merchant ${merchant}`);
  });
  input.focus();
}
