// A job's page: its facts, a live progress bar (long-poll), cancel, outputs and the full timeline (paged).
import { api, watchJob } from "../api.js";
import { badge, facts, h, replace, shortId, usd, when } from "../dom.js";
import { clickAction, errorBox, outcome } from "../ui.js";

const ACTIVE = new Set(["queued", "processing", "generating_videos"]);

// A progress bar with its text; `update(job)` moves it. The native <progress> is announced by screen readers.
export function jobProgress() {
  const bar = h("progress", { max: 100, value: 0, id: "progress-bar", "aria-labelledby": "progress-label" });
  const label = h("span", { id: "progress-label" }, "Progress");
  const text = h("span", { id: "progress-text", "aria-live": "polite" });
  const status = h("span", { id: "job-status" });
  const extra = h("div", { class: "muted" });
  const el = h("div", { class: "progress" }, h("div", { class: "row" }, label, status, text), bar, extra);
  return {
    el,
    update(job) {
      bar.value = job.progress;
      bar.setAttribute("aria-valuenow", String(job.progress));
      replace(status, badge(job.status));
      text.textContent = `${job.progress} %${job.current_step ? ` · ${job.current_step.replaceAll("_", " ")}` : ""}`;
      const parts = [];
      if (job.job_type === "state_videos") parts.push(`states ${(job.states_generated || []).length} of ${job.total_states}`);
      if (job.retry_count) parts.push(`retry ${job.retry_count} of ${job.max_retries}`);
      parts.push(`cost ${usd(job.cost_usd)}${job.status === "completed" ? "" : ` (estimated ${usd(job.estimated_cost_usd)})`}`);
      if (job.error) parts.push(`error ${job.error.code}: ${job.error.message}`);
      extra.textContent = parts.join(" · ");
    },
  };
}

export function timelineList(items) {
  if (!items.length) return h("p", { class: "muted" }, "No events.");
  return h("ol", { class: "timeline" }, items.map((e) => h("li", {},
    h("time", { datetime: e.created_at, class: "muted" }, when(e.created_at)), " ",
    h("strong", {}, e.event_type.replaceAll("_", " ")), " ",
    e.status ? badge(e.status) : null, " ",
    [e.current_step && `step ${e.current_step}`, e.progress !== null && e.progress !== undefined && `${e.progress} %`,
      e.attempt && `attempt ${e.attempt}`].filter(Boolean).join(" · "),
    Object.keys(e.details || {}).length ? h("div", { class: "muted mono" }, JSON.stringify(e.details)) : null)));
}

export async function render(main, [jobId], ctx) {
  const id = encodeURIComponent(jobId);
  let job;
  try {
    job = (await api("GET", `/jobs/${id}`, { signal: ctx.signal })).data;
  } catch (err) {
    main.append(h("h1", {}, "Job"), errorBox(err), h("p", {}, h("a", { href: "#/jobs" }, "Back to jobs")));
    return;
  }
  const progress = jobProgress();
  const factsArea = h("div");
  const outputs = h("div");
  const timeline = h("div");
  const cancelOut = outcome();
  const cancel = h("button", { type: "button", class: "danger" }, "Cancel job");
  cancel.addEventListener("click", () => clickAction(cancel, cancelOut, async () => {
    show((await api("POST", `/jobs/${id}/cancel`, { signal: ctx.signal })).data);
  }));
  main.append(h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
    h("h1", {}, `Job ${shortId(job.id)}`), progress.el, h("p", {}, cancel), cancelOut, factsArea,
    h("h2", {}, "Outputs"), outputs, h("h2", {}, "Timeline"), timeline);

  function show(j) {
    job = j;
    progress.update(j);
    cancel.hidden = !ACTIVE.has(j.status);
    replace(factsArea, facts([
      ["id", h("code", {}, j.id)],
      ["persona", h("a", { href: `#/personas/${j.persona_id}` }, shortId(j.persona_id))],
      ["type", j.job_type.replaceAll("_", " ")],
      ["model", j.model_id || "—"],
      ["attempt", String(j.attempt)],
      ["created", when(j.created_at)], ["started", when(j.started_at)], ["finished", when(j.completed_at)],
    ]));
    const urls = [...(j.variation_urls || []), ...(j.outputs || []).map((o) => o.url)];
    replace(outputs, urls.length ? h("ul", {}, [...new Set(urls)].map((u) => h("li", {}, h("a", { href: u }, u.split("/").slice(-3).join("/")))))
      : h("p", { class: "muted" }, j.job_type === "state_videos" ? `States: ${(j.states_generated || []).join(", ") || "none yet"}` : "None yet."));
  }

  async function loadTimeline() {
    const items = [];
    let after = null;
    try {
      for (let page = 0; page < 20; page++) {
        const { data } = await api("GET", `/jobs/${id}/events?limit=500${after ? `&after=${after}` : ""}`, { signal: ctx.signal });
        items.push(...data.items);
        if (!data.next_after) break;
        after = data.next_after;
      }
      replace(timeline, timelineList(items));
    } catch (err) {
      replace(timeline, errorBox(err));
    }
  }

  show(job);
  await loadTimeline();
  let version = job.version;
  watchJob(job.id, (latest) => {
    show(latest);
    if (latest.version !== version) loadTimeline();
    version = latest.version;
  }, { signal: ctx.signal, onError: (err) => cancelOut.error(err) });
  ctx.reconnect = loadTimeline;
}
