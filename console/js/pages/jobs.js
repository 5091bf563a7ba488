// Jobs: filters (status, type, persona), keyset paging with the API's opaque cursor, cancel.
import { api } from "../api.js";
import { badge, h, replace, shortId, usd, when } from "../dom.js";
import { clickAction, errorBox, field, outcome } from "../ui.js";

const STATUSES = ["queued", "processing", "generating_videos", "completed", "failed", "canceled"];
const ACTIVE = new Set(["queued", "processing", "generating_videos"]);
const PAGE = 20;

export async function render(main, _params, ctx) {
  const area = h("div", { "aria-live": "polite" });
  const out = outcome();
  const form = h("form", { class: "inline", "aria-label": "Filter jobs" },
    field("Status", h("select", { name: "status" }, h("option", { value: "" }, "any"),
      STATUSES.map((st) => h("option", { value: st }, st.replaceAll("_", " "))))),
    field("Type", h("select", { name: "job_type" }, h("option", { value: "" }, "any"),
      h("option", { value: "character_variations" }, "character variations"),
      h("option", { value: "state_videos" }, "state videos"))),
    field("Persona id", h("input", { name: "persona_id", class: "mono", size: 38, autocomplete: "off" })),
    h("button", { type: "submit" }, "Filter"));
  main.append(h("h1", {}, "Jobs"), form, out, area);

  let filters = new URLSearchParams();
  const cursors = [null];  // cursors[i] opens page i; Previous pops back
  let page = 0;

  async function load() {
    const query = new URLSearchParams(filters);
    query.set("limit", String(PAGE));
    if (cursors[page]) query.set("cursor", cursors[page]);
    let data;
    try {
      ({ data } = await api("GET", `/jobs?${query}`, { signal: ctx.signal }));
    } catch (err) {
      replace(area, errorBox(err));
      return;
    }
    cursors[page + 1] = data.next_cursor;
    const prev = h("button", { type: "button", class: "secondary", disabled: page === 0 }, "← Newer");
    const next = h("button", { type: "button", class: "secondary", disabled: !data.next_cursor }, "Older →");
    prev.addEventListener("click", () => { page -= 1; load(); });
    next.addEventListener("click", () => { page += 1; load(); });
    replace(area, data.items.length ? h("table", { id: "jobs-table" },
      h("thead", {}, h("tr", {}, ["job", "persona", "type", "status", "progress", "cost", "created", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, data.items.map((j) => {
        const cancel = h("button", { type: "button", class: "danger", hidden: !ACTIVE.has(j.status) }, "Cancel");
        cancel.addEventListener("click", () => clickAction(cancel, out, async () => {
          await api("POST", `/jobs/${j.id}/cancel`, { signal: ctx.signal });
          out.ok(`Job ${shortId(j.id)} canceled.`);
          await load();
        }));
        return h("tr", { "data-job-id": j.id },
          h("td", {}, h("a", { href: `#/jobs/${j.id}` }, shortId(j.id))),
          h("td", {}, h("a", { href: `#/personas/${j.persona_id}` }, shortId(j.persona_id))),
          h("td", {}, j.job_type.replaceAll("_", " ")), h("td", {}, badge(j.status)), h("td", {}, `${j.progress} %`),
          h("td", {}, usd(j.cost_usd)), h("td", {}, when(j.created_at)), h("td", {}, cancel));
      }))) : h("p", { class: "muted", id: "no-jobs" }, "No jobs match."),
    h("p", { class: "row" }, prev, `page ${page + 1}`, next));
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    filters = new URLSearchParams([...new FormData(form)].filter(([, v]) => String(v).trim()));
    cursors.length = 1;
    page = 0;
    load();
  });
  ctx.reconnect = load;
  await load();
}
