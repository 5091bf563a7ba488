// Operator pages (scope genjobs/admin, ARCHITECTURE.md "Operator routes"): prompt templates (versions,
// preview, activate), models (enable, default, prices, lifecycle), merchants (limits, budget).
// A server without the routes shows a notice; a token without the scope gets the gateway's 403, shown as such.
import { api } from "../api.js";
import { badge, facts, h, notAvailable, notice, replace, usd, when } from "../dom.js";
import { clickAction, errorBox, field, onSubmit, outcome } from "../ui.js";

function problem(err, what, route) {
  if (err.notAvailable) return notAvailable(what, route);
  if (err.status === 403) return notice("Your token lacks the genjobs/admin scope (HTTP 403): operator pages need it.");
  return errorBox(err);
}

export async function render(main, [section], ctx) {
  const pages = { templates, models, merchants };
  await pages[section](main, ctx);
}

async function templates(main, ctx) {
  const area = h("div");
  const out = outcome();
  main.append(h("h1", {}, "Prompt templates"), out, area);
  async function load() {
    let data;
    try {
      ({ data } = await api("GET", "/admin/prompt-templates", { signal: ctx.signal }));
    } catch (err) {
      replace(area, problem(err, "Prompt templates", "GET /admin/prompt-templates"));
      return;
    }
    const items = data.items || [];
    const form = h("form", { class: "stack" },
      field("Job type", h("select", { name: "job_type" }, h("option", { value: "character_variations" }, "character variations"),
        h("option", { value: "state_videos" }, "state videos"))),
      field("Name", h("input", { name: "name", required: true })),
      field("Template", h("textarea", { name: "template", required: true, rows: 4, placeholder: "A ${character_type} for ${product_name}" })),
      field("Variables (JSON: name → default or null)", h("textarea", { name: "variables", rows: 2, class: "mono" }, "{}")),
      h("div", {}, h("button", { type: "submit" }, "Add version")));
    onSubmit(form, out, async (fd) => {
      let variables;
      try {
        variables = JSON.parse(String(fd.get("variables") || "{}"));
      } catch {
        throw new Error("Variables must be a JSON object.");
      }
      await api("POST", "/admin/prompt-templates", { signal: ctx.signal, body: {
        job_type: fd.get("job_type"), name: fd.get("name"), template: fd.get("template"), variables } });
      out.ok("New inactive version added.");
      await load();
    });
    replace(area, items.length ? h("table", {},
      h("thead", {}, h("tr", {}, ["type", "name", "version", "template", "status", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((t) => {
        const activate = h("button", { type: "button", disabled: t.is_active }, t.is_active ? "Active" : "Activate");
        activate.addEventListener("click", () => clickAction(activate, out, async () => {
          await api("POST", `/admin/prompt-templates/${encodeURIComponent(t.id)}/activate`, { signal: ctx.signal });
          out.ok(`Template ${t.name} v${t.version} is now active.`);
          await load();
        }));
        const preview = h("button", { type: "button", class: "secondary" }, "Preview");
        preview.addEventListener("click", () => clickAction(preview, out, async () => {
          const { data: p } = await api("POST", "/admin/prompt-templates/preview",
            { body: { template_id: t.id, variables: {} }, signal: ctx.signal });
          out.ok(`Preview: ${p.prompt ?? JSON.stringify(p)}`);
        }));
        return h("tr", {}, h("td", {}, t.job_type), h("td", {}, t.name), h("td", {}, String(t.version ?? "—")),
          h("td", { class: "mono" }, t.template), h("td", {}, badge(t.is_active ? "active" : "draft")),
          h("td", { class: "row" }, preview, activate));
      }))) : h("p", { class: "muted" }, "No templates: the built-in default is used."),
    h("h2", {}, "New version"), form);
  }
  await load();
}

async function models(main, ctx) {
  const area = h("div");
  const out = outcome();
  main.append(h("h1", {}, "Models"), out, area);
  async function load() {
    let data;
    try {
      ({ data } = await api("GET", "/admin/models", { signal: ctx.signal }));
    } catch (err) {
      replace(area, problem(err, "Model settings", "GET /admin/models"));
      return;
    }
    const patch = (m, body) => async () => {
      // a model id holds ":" (valid in a path segment): kept as it is, as the API and the template name it
      await api("PATCH", `/admin/models/${encodeURIComponent(m.id).replace(/%3A/gi, ":")}`, { body, signal: ctx.signal });
      out.ok(`Model ${m.id} updated.`);
      await load();
    };
    replace(area, h("table", {},
      h("thead", {}, h("tr", {}, ["model", "kind", "provider", "price", "lifecycle", "enabled", "default"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, (data.items || []).map((m) => {
        const toggle = h("button", { type: "button", class: "secondary" }, m.enabled ? "Disable" : "Enable");
        toggle.addEventListener("click", () => clickAction(toggle, out, patch(m, { enabled: !m.enabled })));
        const def = h("button", { type: "button", class: "secondary", disabled: m.default }, m.default ? "Default" : "Make default");
        def.addEventListener("click", () => clickAction(def, out, patch(m, { default: true })));
        return h("tr", {}, h("td", { class: "mono" }, m.id), h("td", {}, m.kind), h("td", {}, m.provider || "—"),
          h("td", {}, `${usd(m.unit_price_usd)} / ${m.unit || "unit"}`), h("td", {}, badge(m.lifecycle === "legacy" ? "failed" : "active"), " ", m.lifecycle || ""),
          h("td", {}, toggle), h("td", {}, def));
      }))));
  }
  await load();
}

async function merchants(main, ctx) {
  const area = h("div");
  const out = outcome();
  const find = h("form", { class: "inline" }, field("Merchant id", h("input", { name: "id", required: true, autocomplete: "off" })),
    h("button", { type: "submit" }, "Look up"));
  main.append(h("h1", {}, "Merchants"), find, out, area);
  onSubmit(find, out, async (fd) => show(String(fd.get("id")).trim()));
  async function show(id) {
    let m;
    try {
      ({ data: m } = await api("GET", `/admin/merchants/${encodeURIComponent(id)}`, { signal: ctx.signal }));
    } catch (err) {
      replace(area, problem(err, "Merchant settings", "GET /admin/merchants/{merchant_id}"));
      return;
    }
    const form = h("form", { class: "inline" },
      field("Hourly generation limit (empty: default)", h("input", { name: "hourly_generation_limit", type: "number", min: 0,
        value: m.hourly_generation_limit ?? "" })),
      field("Monthly budget USD (empty: none)", h("input", { name: "monthly_budget_usd", type: "number", min: 0, step: "0.01",
        value: m.monthly_budget_usd ?? "" })),
      h("button", { type: "submit" }, "Save"));
    onSubmit(form, out, async (fd) => {
      const num = (v) => (String(v).trim() === "" ? null : Number(v));
      await api("PATCH", `/admin/merchants/${encodeURIComponent(id)}`, { signal: ctx.signal, body: {
        hourly_generation_limit: num(fd.get("hourly_generation_limit")), monthly_budget_usd: num(fd.get("monthly_budget_usd")) } });
      out.ok("Saved: it applies to the next start.");
      await show(id);
    });
    replace(area, facts(Object.entries(m).filter(([, v]) => typeof v !== "object" || v === null)
      .map(([k, v]) => [k, k.endsWith("_at") ? when(v) : String(v ?? "—")])), form);
  }
}
