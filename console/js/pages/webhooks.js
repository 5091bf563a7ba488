// Webhooks (ARCHITECTURE.md "Webhooks"): endpoints, the secret shown once, a test ping, the deliveries.
// Until the server has the routes, a notice says so.
import { api } from "../api.js";
import { badge, h, notAvailable, replace, shortId, when } from "../dom.js";
import { clickAction, errorBox, field, onSubmit, outcome } from "../ui.js";

const EVENTS = ["job.queued", "job.started", "job.progress", "job.output", "job.completed", "job.failed", "job.canceled"];

export async function render(main, _params, ctx) {
  const area = h("div", { "aria-live": "polite" });
  const out = outcome();
  const secretArea = h("div", { "aria-live": "polite" });
  const deliveries = h("div");
  main.append(h("h1", {}, "Webhooks"), area);

  async function load() {
    let data;
    try {
      ({ data } = await api("GET", "/webhooks", { signal: ctx.signal }));
    } catch (err) {
      replace(area, err.notAvailable ? notAvailable("Webhooks", "GET /webhooks") : errorBox(err));
      return;
    }
    const items = data.items || [];
    const form = h("form", { class: "stack", "aria-labelledby": "wh-new" },
      field("URL (https)", h("input", { name: "url", type: "url", required: true, placeholder: "https://example.com/hooks/genjobs" })),
      h("fieldset", {}, h("legend", {}, "Events (none checked: all)"),
        EVENTS.map((e) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "events", value: e }), e))),
      field("Description", h("input", { name: "description", maxlength: 200 })),
      h("div", {}, h("button", { type: "submit" }, "Add endpoint")));
    onSubmit(form, out, async (fd) => {
      const body = { url: String(fd.get("url")) };
      if (fd.getAll("events").length) body.events = fd.getAll("events");
      if (fd.get("description")) body.description = String(fd.get("description"));
      const { data: created } = await api("POST", "/webhooks", { body, signal: ctx.signal });
      await load();
      showSecret(created);
    });
    replace(area, items.length ? h("table", {},
      h("thead", {}, h("tr", {}, ["url", "events", "status", "created", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((w) => h("tr", {},
        h("td", { class: "mono" }, w.url), h("td", {}, (w.events || []).join(", ") || "all"),
        h("td", {}, badge(w.enabled === false ? "canceled" : "active")), h("td", {}, when(w.created_at)),
        h("td", { class: "row" }, actions(w)))))) : h("p", { class: "muted" }, "No endpoints yet."),
    secretArea, out, h("h2", { id: "wh-new" }, "New endpoint"), form, deliveries);
  }

  function showSecret(w) {
    if (!w?.secret) return;
    replace(secretArea, h("div", { class: "success", role: "status" },
      h("p", {}, "The signing secret, shown only now. Store it where your receiver can read it:"),
      h("p", { class: "secret mono" }, w.secret)));
  }

  function actions(w) {
    const id = encodeURIComponent(w.id);
    const test = h("button", { type: "button", class: "secondary" }, "Send test ping");
    test.addEventListener("click", () => clickAction(test, out, async () => {
      await api("POST", `/webhooks/${id}/test`, { signal: ctx.signal });
      out.ok("Ping queued: see the deliveries.");
      await showDeliveries(w);
    }));
    const rotate = h("button", { type: "button", class: "secondary" }, "Rotate secret");
    rotate.addEventListener("click", () => clickAction(rotate, out, async () => {
      if (!confirm("Rotate the secret? The receiver needs the new one.")) return;
      showSecret((await api("POST", `/webhooks/${id}/rotate-secret`, { signal: ctx.signal })).data);
    }));
    const list = h("button", { type: "button", class: "secondary" }, "Deliveries");
    list.addEventListener("click", () => clickAction(list, out, () => showDeliveries(w)));
    const del = h("button", { type: "button", class: "danger" }, "Delete");
    del.addEventListener("click", () => clickAction(del, out, async () => {
      if (!confirm(`Delete the endpoint ${w.url}?`)) return;
      await api("DELETE", `/webhooks/${id}`, { signal: ctx.signal });
      await load();
    }));
    return [test, rotate, list, del];
  }

  async function showDeliveries(w) {
    const { data } = await api("GET", `/webhooks/${encodeURIComponent(w.id)}/deliveries`, { signal: ctx.signal });
    const items = data.items || [];
    replace(deliveries, h("h2", {}, `Deliveries to ${w.url}`), items.length ? h("table", {},
      h("thead", {}, h("tr", {}, ["event", "type", "status", "duration", "error", "next attempt", "at"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((d) => h("tr", {}, [shortId(d.event_id || d.id), d.event_type || d.type,
        d.status_code ?? d.status ?? "—", d.duration_ms !== undefined ? `${d.duration_ms} ms` : "—", d.error || "—",
        when(d.next_attempt_at), when(d.created_at || d.attempted_at)].map((v) => h("td", {}, v))))))
      : h("p", { class: "muted" }, "No deliveries yet."));
  }

  ctx.reconnect = load;
  await load();
}
