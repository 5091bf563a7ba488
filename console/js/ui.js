// Pieces shared by the pages: error boxes and async button handling.
import { describe } from "./api.js";
import { h, replace } from "./dom.js";

export function errorBox(err) {
  const { title, lines } = describe(err);
  return h("div", { class: "error", role: "alert" }, h("strong", {}, title),
    lines.length ? h("ul", {}, lines.map((line) => h("li", {}, line))) : null);
}

// An area that shows the outcome of an action: errors (role=alert) or a short success line.
export function outcome() {
  const el = h("div", { class: "outcome", "aria-live": "polite" });
  el.error = (err) => replace(el, errorBox(err));
  el.ok = (text) => replace(el, h("p", { class: "success", role: "status" }, text));
  el.clear = () => replace(el);
  return el;
}

// Runs `action` for a form submit, disabling the submit button meanwhile; errors go to `out`.
export function onSubmit(form, out, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => { b.disabled = true; });
    out?.clear();
    try {
      await action(new FormData(form));
    } catch (err) {
      if (err?.name !== "AbortError") out ? out.error(err) : console.error(err);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return form;
}

export async function clickAction(button, out, action) {
  button.disabled = true;
  out?.clear();
  try {
    await action();
  } catch (err) {
    if (err?.name !== "AbortError") out ? out.error(err) : console.error(err);
  } finally {
    if (button.isConnected) button.disabled = false;
  }
}

export const field = (label, input, hint) =>
  h("label", {}, label, input, hint ? h("small", { class: "muted" }, hint) : null);
