// Personas: the list (GET /personas; until the server has it, the personas created in this browser) and a
// form to create one (POST /personas).
import { api } from "../api.js";
import { badge, h, notice, replace, when } from "../dom.js";
import { forgetPersona, knownPersonaIds, rememberPersona } from "../store.js";
import { errorBox, field, onSubmit, outcome } from "../ui.js";

export async function render(main, _params, ctx) {
  const listArea = h("div", { "aria-live": "polite" }, h("p", { class: "muted" }, "Loading personas…"));
  const out = outcome();
  const form = h("form", { class: "stack", "aria-labelledby": "create-title" },
    field("Name", h("input", { name: "name", required: true, maxlength: 200, autocomplete: "off" })),
    field("Product name", h("input", { name: "product_name", maxlength: 200, autocomplete: "off" })),
    field("Character type", h("input", { name: "character_type", maxlength: 100, autocomplete: "off",
      placeholder: "cartoon chef" })),
    field("Description", h("textarea", { name: "description", maxlength: 4000, rows: 3 })),
    h("div", {}, h("button", { type: "submit" }, "Create persona")));
  const open = h("form", { class: "inline", "aria-label": "Open a persona by id" },
    field("Persona id", h("input", { name: "id", required: true, size: 38, class: "mono", autocomplete: "off" })),
    h("button", { type: "submit", class: "secondary" }, "Open"));
  open.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.go(`#/personas/${encodeURIComponent(new FormData(open).get("id").trim())}`);
  });
  main.append(h("h1", {}, "Personas"), listArea,
    h("h2", { id: "create-title" }, "New persona"), form, out,
    h("h2", {}, "Open by id"), open);

  onSubmit(form, out, async (data) => {
    const body = { name: String(data.get("name")).trim() };
    for (const name of ["product_name", "character_type", "description"]) {
      const value = String(data.get(name) || "").trim();
      if (value) body[name] = value;
    }
    const { data: persona } = await api("POST", "/personas", { body, signal: ctx.signal });
    rememberPersona(persona.id);
    ctx.go(`#/personas/${persona.id}`);
  });

  const load = async () => replace(listArea, await list(ctx));
  ctx.reconnect = load;
  await load();
}

async function list(ctx) {
  try {
    const { data } = await api("GET", "/personas?limit=100", { signal: ctx.signal });
    return [cards(data.items || []), data.next_cursor ? notice("Showing the newest 100 personas.") : null];
  } catch (err) {
    if (!err.notAvailable) return errorBox(err);
  }
  // No GET /personas on this server yet: the personas this browser created, read one by one.
  const ids = knownPersonaIds();
  const personas = [];
  const failures = [];
  await Promise.all(ids.map(async (id) => {
    try {
      personas.push((await api("GET", `/personas/${encodeURIComponent(id)}`, { signal: ctx.signal })).data);
    } catch (err) {
      if (err.status === 404) forgetPersona(id);  // deleted (or not this merchant's): drop it
      else failures.push(err);
    }
  }));
  personas.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  return [
    notice("This server does not list personas yet (GET /personas answered 404), so this list shows the " +
      "personas created in this browser for this merchant. Open others by id below.", "info"),
    failures.length ? errorBox(failures[0]) : null,
    cards(personas),
  ];
}

function cards(personas) {
  if (!personas.length) return h("p", { class: "muted", id: "no-personas" }, "No personas yet.");
  return h("ul", { class: "grid plain persona-list", role: "list" },
    personas.map((p) => h("li", { class: "card", "data-persona-id": p.id },
      p.image_url ? h("img", { class: "thumb", src: p.image_url, alt: "", loading: "lazy" }) : h("span", { class: "thumb" }),
      h("div", {},
        h("a", { href: `#/personas/${p.id}` }, p.name), " ", badge(p.status),
        h("div", { class: "muted" }, [p.product_name, p.character_type].filter(Boolean).join(" · ") || "—"),
        h("small", { class: "muted" }, `created ${when(p.created_at)}`)))));
}
