// Usage: the hourly window, today, the month and the budget as meters (GET /usage); a daily chart from
// GET /usage/daily when the server has it.
import { api } from "../api.js";
import { h, notAvailable, replace, usd, when } from "../dom.js";
import { errorBox } from "../ui.js";

export async function render(main, _params, ctx) {
  const meters = h("div", { id: "usage-meters" });
  const daily = h("div", { id: "usage-daily" });
  main.append(h("h1", {}, "Usage"), meters, h("h2", {}, "Daily"), daily);

  async function load() {
    try {
      const { data: u } = await api("GET", "/usage", { signal: ctx.signal });
      const budget = u.monthly_budget_usd;
      replace(meters, h("div", { class: "meters" },
        h("div", { class: "card" }, h("label", { for: "meter-hourly" }, "Generations in the last hour"),
          h("strong", { id: "hourly-text" }, `${u.generations_last_hour} of ${u.hourly_limit}`),
          h("meter", { id: "meter-hourly", min: 0, max: u.hourly_limit, value: u.generations_last_hour,
            low: Math.floor(u.hourly_limit * 0.7), high: Math.floor(u.hourly_limit * 0.9), optimum: 0 }),
          h("small", { class: "muted" }, `${u.remaining} left${u.window_resets_at ? `; next slot frees ${when(u.window_resets_at)}` : ""}`)),
        h("div", { class: "card" }, h("span", {}, "Cost today"), h("strong", { id: "cost-today" }, usd(u.cost_today_usd))),
        h("div", { class: "card" }, h("span", {}, "Cost this month"), h("strong", { id: "cost-month" }, usd(u.cost_this_month_usd))),
        h("div", { class: "card" }, h("label", { for: "meter-budget" }, "Monthly budget"),
          budget === null || budget === undefined
            ? [h("strong", {}, "no budget"), h("small", { class: "muted" }, "No monthly limit is set for this merchant.")]
            : [h("strong", {}, `${usd(u.cost_this_month_usd)} of ${usd(budget)}`),
              h("meter", { id: "meter-budget", min: 0, max: budget, value: Math.min(u.cost_this_month_usd, budget),
                low: budget * 0.7, high: budget * 0.9, optimum: 0 }),
              h("small", { class: "muted" }, `${usd(u.budget_remaining_usd)} left`)])));
    } catch (err) {
      replace(meters, errorBox(err));
    }
    try {
      const { data } = await api("GET", "/usage/daily?days=30", { signal: ctx.signal });
      replace(daily, chart(data.items || data.days || []));
    } catch (err) {
      replace(daily, err.notAvailable ? notAvailable("The daily history", "GET /usage/daily") : errorBox(err));
    }
  }
  ctx.reconnect = load;
  await load();
}

// Bars of cost per day (SVG, no library); the table under it carries the same numbers for screen readers.
function chart(days) {
  if (!days.length) return h("p", { class: "muted" }, "No days yet.");
  const max = Math.max(...days.map((d) => Number(d.cost_usd) || 0), 0.0001);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${days.length * 10} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "chart");
  svg.setAttribute("aria-hidden", "true");
  days.forEach((d, i) => {
    const rect = document.createElementNS(ns, "rect");
    const height = ((Number(d.cost_usd) || 0) / max) * 100;
    Object.entries({ x: i * 10 + 1, y: 100 - height, width: 8, height }).forEach(([k, v]) => rect.setAttribute(k, v));
    svg.append(rect);
  });
  return h("div", {}, svg, h("details", {}, h("summary", {}, "As a table"), h("table", {},
    h("thead", {}, h("tr", {}, ["day", "created", "completed", "failed", "canceled", "cost"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, days.map((d) => h("tr", {}, [d.day || d.date, d.jobs_created ?? d.created, d.jobs_completed ?? d.completed,
      d.jobs_failed ?? d.failed, d.jobs_canceled ?? d.canceled, usd(d.cost_usd)].map((v) => h("td", {}, v ?? "—"))))))));
}
