// A persona's page: facts, edit (PATCH) and delete; start a generation and watch its progress bar (long-poll);
// the variations with an Approve button each; the approved image; state videos playing inline; the job
// timeline; the persona's jobs.
import { api, watchJob } from "../api.js";
import { badge, facts, h, notAvailable, notice, replace, shortId, usd, when } from "../dom.js";
import { forgetPersona, rememberPersona } from "../store.js";
import { clickAction, errorBox, field, onSubmit, outcome } from "../ui.js";
import { jobProgress, timelineList } from "./job.js";

const ACTIVE = new Set(["queued", "processing", "generating_videos"]);
const DEFAULT_STATES = ["idle", "talking", "thinking"];

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function render(main, [personaId], ctx) {
  const path = `/personas/${encodeURIComponent(personaId)}`;
  const s = { persona: null, job: null, watching: null };
  const top = h("div");
  const header = h("div");
  const jobArea = h("div", { id: "job-progress" });
  const variationsArea = h("div", { id: "variations" });
  const approvedArea = h("div", { id: "approved" });
  const videosArea = h("div", { id: "videos" });
  const timelineArea = h("div", { id: "timeline" });
  const jobsArea = h("div", { id: "persona-jobs" });
  const genOut = outcome();
  const videoOut = outcome();
  const approveOut = outcome();

  main.append(top, header,
    h("section", { "aria-labelledby": "gen-title" }, h("h2", { id: "gen-title" }, "Generate variations"),
      generationForm(), genOut),
    h("section", { "aria-labelledby": "progress-title" }, h("h2", { id: "progress-title" }, "Current job"), jobArea),
    h("section", { "aria-labelledby": "var-title" }, h("h2", { id: "var-title" }, "Variations"), approveOut, variationsArea),
    h("section", { "aria-labelledby": "approved-title" }, h("h2", { id: "approved-title" }, "Approved image"), approvedArea),
    h("section", { "aria-labelledby": "videos-title" }, h("h2", { id: "videos-title" }, "State videos"),
      videoForm(), videoOut, videosArea),
    h("section", { "aria-labelledby": "tl-title" }, h("h2", { id: "tl-title" }, "Job timeline"), timelineArea),
    h("section", { "aria-labelledby": "jobs-title" }, h("h2", { id: "jobs-title" }, "Jobs of this persona"), jobsArea));

  // ------------------------------------------------------------ the persona
  async function loadPersona() {
    try {
      s.persona = (await api("GET", path, { signal: ctx.signal })).data;
    } catch (err) {
      if (err.status === 404 && !err.notAvailable) forgetPersona(personaId);
      replace(main, h("h1", {}, "Persona"), errorBox(err), h("p", {}, h("a", { href: "#/personas" }, "Back to personas")));
      throw Object.assign(new Error("stop"), { name: "AbortError" });
    }
    rememberPersona(s.persona.id);
    showPersona();
  }

  function showPersona() {
    const p = s.persona;
    const editOut = outcome();
    const edit = h("form", { class: "stack" },
      field("Name", h("input", { name: "name", value: p.name, required: true, maxlength: 200 })),
      field("Product name", h("input", { name: "product_name", value: p.product_name || "", maxlength: 200 })),
      field("Character type", h("input", { name: "character_type", value: p.character_type || "", maxlength: 100 })),
      field("Description", h("textarea", { name: "description", maxlength: 4000, rows: 3 }, p.description || "")),
      h("div", {}, h("button", { type: "submit" }, "Save changes")));
    onSubmit(edit, editOut, async (data) => {
      const body = {};
      for (const name of ["name", "product_name", "character_type", "description"]) {
        body[name] = String(data.get(name) || "").trim() || (name === "name" ? p.name : null);
      }
      try {
        s.persona = (await api("PATCH", path, { body, signal: ctx.signal })).data;
      } catch (err) {
        if (err.notAvailable) {
          replace(editOut, notAvailable("Editing a persona", "PATCH /personas/{persona_id}"));
          return;
        }
        throw err;
      }
      showPersona();
    });
    const delOut = outcome();
    const del = h("button", { type: "button", class: "danger" }, "Delete persona");
    del.addEventListener("click", () => clickAction(del, delOut, async () => {
      if (!confirm(`Delete persona “${p.name}”? Its jobs and media stay in the ledger.`)) return;
      await api("DELETE", path, { signal: ctx.signal });
      forgetPersona(p.id);
      ctx.go("#/personas");
    }));
    replace(top, h("p", {}, h("a", { href: "#/personas" }, "← Personas")));
    replace(header,
      h("h1", {}, p.name, " ", h("span", { id: "persona-status" }, badge(p.status))),
      facts([
        ["id", h("code", {}, p.id)],
        ["product", p.product_name || "—"],
        ["character type", p.character_type || "—"],
        p.description ? ["description", p.description] : null,
        ["created", when(p.created_at)],
        ["regeneration", p.regeneration_available_at ? `available ${when(p.regeneration_available_at)}` : "available now"],
      ]),
      h("details", {}, h("summary", {}, "Edit or delete"), edit, editOut, h("p", {}, del), delOut));
    showApproved();
    showVideos();
  }

  // ------------------------------------------------------------ generation
  function generationForm() {
    const modelSelect = h("select", { name: "model", disabled: true }, h("option", { value: "" }, "Server default"));
    const modelNote = h("small", { class: "muted" }, "Loading models…");
    const form = h("form", { class: "inline", id: "generate-form" },
      field("Variations", h("select", { name: "variation_count" },
        [1, 2, 3, 4].map((n) => h("option", { value: String(n), selected: n === 3 }, String(n))))),
      h("label", {}, "Model", modelSelect, modelNote),
      field("Prompt variables", h("textarea", { name: "prompt_variables", rows: 2, cols: 30, class: "mono",
        placeholder: "name=value, one per line" })),
      h("button", { type: "submit" }, "Generate"));
    loadModels("image", modelSelect, modelNote);
    let key = null;  // kept until the start succeeds, so a retry after a lost answer replays, not duplicates
    let lastBody = "";
    onSubmit(form, genOut, async (data) => {
      const body = { variation_count: Number(data.get("variation_count")) };
      const vars = parseVariables(String(data.get("prompt_variables") || ""));
      if (Object.keys(vars).length) body.prompt_variables = vars;
      if (data.get("model")) body.model = data.get("model");
      const text = JSON.stringify(body);
      if (!key || text !== lastBody) key = randomKey();
      lastBody = text;
      const { data: job } = await api("POST", `${path}/generations`,
        { body, headers: { "Idempotency-Key": key }, signal: ctx.signal });
      key = null;
      genOut.ok(`Job ${shortId(job.id)} started.`);
      follow(job);
      await loadPersona();
    });
    return form;
  }

  function videoForm() {
    const form = h("form", { class: "inline", id: "videos-form" },
      h("fieldset", {}, h("legend", {}, "States"),
        DEFAULT_STATES.map((st) => h("label", { class: "check" },
          h("input", { type: "checkbox", name: "state", value: st, checked: true }), st))),
      field("More states", h("input", { name: "extra", placeholder: "waving, cheering", autocomplete: "off" })),
      h("button", { type: "submit" }, "Generate state videos"));
    onSubmit(form, videoOut, async (data) => {
      const states = [...data.getAll("state"),
        ...String(data.get("extra") || "").split(/[\s,]+/).filter(Boolean)];
      const { data: job } = await api("POST", `${path}/state-videos`,
        { body: states.length ? { states } : {}, signal: ctx.signal });
      videoOut.ok(`Job ${shortId(job.id)} started.`);
      follow(job);
      await loadPersona();
    });
    return form;
  }

  // ------------------------------------------------------------ the current job, live
  const progress = jobProgress();
  function follow(job) {
    s.watching?.abort();
    s.job = job;
    const controller = new AbortController();
    ctx.signal.addEventListener("abort", () => controller.abort());
    s.watching = controller;
    const cancelOut = outcome();
    const cancel = h("button", { type: "button", class: "danger" }, "Cancel job");
    cancel.addEventListener("click", () => clickAction(cancel, cancelOut, async () => {
      const { data } = await api("POST", `/jobs/${job.id}/cancel`, { signal: ctx.signal });
      progress.update(data);
    }));
    replace(jobArea, h("p", {}, `${job.job_type.replaceAll("_", " ")} · `,
      h("a", { href: `#/jobs/${job.id}` }, `job ${shortId(job.id)}`)), progress.el, h("p", {}, cancel), cancelOut);
    progress.update(job);
    cancel.hidden = !ACTIVE.has(job.status);
    let lastStatus = job.status;
    let lastStates = (job.states_generated || []).length;
    watchJob(job.id, async (latest) => {
      s.job = latest;
      progress.update(latest);
      cancel.hidden = !ACTIVE.has(latest.status);
      if (latest.status !== lastStatus) {
        lastStatus = latest.status;
        if (!ACTIVE.has(latest.status)) await afterJob(latest);
      } else if ((latest.states_generated || []).length !== lastStates) {
        await loadPersona().catch(() => {});  // each state's video shows as soon as it is in
      }
      lastStates = (latest.states_generated || []).length;
    }, { signal: controller.signal, onError: (err) => jobArea.append(errorBox(err)) });
  }

  async function afterJob(job) {
    await Promise.all([
      loadPersona().catch(() => {}),
      job.job_type === "character_variations" ? loadVariations() : null,
      loadTimeline(job.id),
      loadJobs(),
    ]);
  }

  // ------------------------------------------------------------ variations and approval
  async function loadVariations() {
    let list;
    try {
      list = (await api("GET", `${path}/variations`, { signal: ctx.signal })).data;
    } catch (err) {
      replace(variationsArea, errorBox(err));
      return;
    }
    if (!list.items.length) {
      replace(variationsArea, h("p", { class: "muted" },
        list.job_status && ACTIVE.has(list.job_status) ? "The variations appear when the job completes." : "No variations yet."));
      return;
    }
    replace(variationsArea,
      list.job_status !== "completed" ? notice(`These variations come from a job that is ${list.job_status}; only a completed job's can be approved.`) : null,
      h("ul", { class: "grid plain", role: "list" }, list.items.map((v) => {
        const approved = v.id === list.approved_variation_id;
        const button = h("button", { type: "button", disabled: approved,
          "aria-label": `Approve variation ${v.variation_index + 1}` }, approved ? "Approved" : "Approve");
        button.addEventListener("click", () => clickAction(button, approveOut, async () => {
          s.persona = (await api("POST", `${path}/approve-variation`, { body: { variation_id: v.id }, signal: ctx.signal })).data;
          approveOut.ok(`Variation ${v.variation_index + 1} approved: the persona is ${s.persona.status}.`);
          showPersona();
          await loadVariations();
        }));
        return h("li", { class: `card${approved ? " approved" : ""}` }, h("figure", {},
          h("img", { src: v.image_url, alt: `Variation ${v.variation_index + 1} (seed ${v.seed})`, width: 200, height: 200 }),
          h("figcaption", {}, h("span", {}, `#${v.variation_index + 1}`, approved ? [" ", badge("active")] : null), button)));
      })));
  }

  function showApproved() {
    const p = s.persona;
    replace(approvedArea, p.image_url
      ? h("figure", { class: "card approved-figure" },
        h("img", { src: p.image_url, alt: `Approved image of ${p.name}`, width: 240, height: 240 }),
        h("figcaption", {}, badge(p.status), h("code", {}, shortId(p.approved_variation_id))))
      : h("p", { class: "muted" }, "No approved image yet: approve one of the variations."));
  }

  function showVideos() {
    const entries = Object.entries(s.persona.video_states || {}).sort(([a], [b]) => a.localeCompare(b));
    document.getElementById("videos-form")?.querySelector("button[type=submit]")
      ?.toggleAttribute("disabled", s.persona.status !== "active");
    replace(videosArea,
      s.persona.status !== "active" ? h("p", { class: "muted" }, "State videos start from the approved image.") : null,
      entries.length ? h("ul", { class: "grid plain", role: "list" },
        entries.map(([state, url]) => {
          const status = h("small", { class: "muted", "data-video-status": state }, "loading…");
          const video = h("video", { src: url, controls: true, muted: true, loop: true, playsinline: true,
            preload: "metadata", "data-state": state, "aria-label": `State video: ${state}` });
          video.addEventListener("loadedmetadata", () => {
            status.textContent = `${video.videoWidth}×${video.videoHeight}, ${video.duration.toFixed(1)} s`;
          });
          video.addEventListener("error", () => {
            status.textContent = "this browser cannot play the file (the local provider writes placeholder MP4s)";
          });
          return h("li", { class: "card" }, h("figure", {}, video,
            h("figcaption", {}, h("strong", {}, state), h("a", { href: url, download: "" }, "Download")), status));
        })) : null);
  }

  // ------------------------------------------------------------ timeline and jobs
  async function loadTimeline(jobId) {
    if (!jobId) {
      replace(timelineArea, h("p", { class: "muted" }, "No job yet."));
      return;
    }
    try {
      const { data } = await api("GET", `/jobs/${jobId}/events?limit=100`, { signal: ctx.signal });
      replace(timelineArea, h("p", { class: "muted" }, `job ${shortId(jobId)}`), timelineList(data.items));
    } catch (err) {
      replace(timelineArea, errorBox(err));
    }
  }

  async function loadJobs() {
    try {
      const { data } = await api("GET", `/jobs?persona_id=${encodeURIComponent(personaId)}&limit=10`, { signal: ctx.signal });
      replace(jobsArea, data.items.length ? h("table", {},
        h("thead", {}, h("tr", {}, ["job", "type", "status", "progress", "cost", "created"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, data.items.map((j) => h("tr", {},
          h("td", {}, h("a", { href: `#/jobs/${j.id}` }, shortId(j.id))), h("td", {}, j.job_type.replaceAll("_", " ")),
          h("td", {}, badge(j.status)), h("td", {}, `${j.progress} %`), h("td", {}, usd(j.cost_usd)),
          h("td", {}, when(j.created_at)))))) : h("p", { class: "muted" }, "No jobs yet."));
      return data.items;
    } catch (err) {
      replace(jobsArea, errorBox(err));
      return [];
    }
  }

  await loadPersona();
  const [jobs] = await Promise.all([loadJobs(), loadVariations()]);
  const latest = jobs[0];
  if (latest) {
    follow(latest);
    await loadTimeline(latest.id);
  } else {
    replace(jobArea, h("p", { class: "muted" }, "No job yet."));
    await loadTimeline(null);
  }
  ctx.reconnect = () => { loadPersona().catch(() => {}); loadVariations(); loadJobs(); };
}

function parseVariables(text) {
  const vars = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) vars[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return vars;
}

// GET /models (ARCHITECTURE.md): until the server has it, the job uses the server's default model.
async function loadModels(kind, select, note) {
  try {
    const { data } = await api("GET", "/models");
    const models = (data.items || data || []).filter((m) => m.kind === kind);
    for (const m of models) {
      select.append(h("option", { value: m.id },
        `${m.name || m.id}${m.default ? " (default)" : ""}${m.lifecycle === "legacy" ? " — legacy" : ""}`));
    }
    select.disabled = false;
    note.textContent = models.length ? "" : "No enabled models.";
  } catch (err) {
    note.textContent = err.notAvailable ? "This server has no model list yet: its default model is used." : err.message;
  }
}
