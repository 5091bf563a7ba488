// The one way the console talks to the HTTP API. Every failure becomes an ApiError that pages can show:
// the API's own {"error": {code, message, details}}, API Gateway's {"message"} (no route: `notAvailable`),
// Retry-After on 429/503, and network failures (`offline`), which also start the connection monitor.
import { config } from "./config.js";
import { token } from "./auth.js";

export class ApiError extends Error {
  constructor({ status = 0, code = "", message = "", details = {}, retryAfter = null, offline = false,
                notAvailable = false, method = "", path = "" }) {
    super(message || `HTTP ${status}`);
    Object.assign(this, { status, code, details, retryAfter, offline, notAvailable, method, path });
  }
}

const listeners = { unauthorized: [], connection: [] };
export const on = (name, fn) => listeners[name].push(fn);
const emit = (name, ...args) => listeners[name].forEach((fn) => fn(...args));

export function apiUrl(path) {
  return `${config().apiBaseUrl}${path}`;
}

export async function api(method, path, { body, headers = {}, signal, auth = true } = {}) {
  const init = { method, headers: { ...headers }, signal, cache: "no-store" };
  if (auth && token()) init.headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let reply;
  try {
    reply = await fetch(apiUrl(path), init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    connectionLost();
    throw new ApiError({ offline: true, method, path,
      message: "The API cannot be reached (connection lost). The console keeps trying and recovers by itself." });
  }
  connectionOk();
  const text = await reply.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (reply.ok) return { status: reply.status, data, headers: reply.headers };
  const retryAfter = reply.headers.get("Retry-After");
  const envelope = data && typeof data.error === "object" && data.error ? data.error : null;
  const error = new ApiError({
    status: reply.status,
    code: envelope?.code || "",
    message: envelope?.message || data?.message || `HTTP ${reply.status}`,
    details: envelope?.details || {},
    retryAfter: retryAfter === null ? null : Number(retryAfter),
    // API Gateway answers a path or method it has no route for with 404 {"message":"Not Found"}; the
    // functions' own 404 always has the error envelope (NOT_FOUND). Only the first means "not built yet".
    notAvailable: reply.status === 404 && !envelope,
    method, path,
  });
  if (reply.status === 401) emit("unauthorized", error);
  throw error;
}

// ---------------------------------------------------------------- connection monitor
// After a network failure GET /health (no token, cheap) is probed with backoff until it answers; then the
// banner says so and pages reload what they show.
let probing = false;
let lost = false;

function connectionLost() {
  if (!lost) {
    lost = true;
    emit("connection", "lost");
  }
  if (!probing) probe();
}

function connectionOk() {
  if (lost) {
    lost = false;
    emit("connection", "restored");
  }
}

let wake = null;  // the browser saying it is online again cuts the backoff short

async function probe() {
  probing = true;
  let delay = 500;
  while (lost) {
    await new Promise((resolve) => {
      wake = resolve;
      setTimeout(resolve, delay);
    });
    wake = null;
    delay = Math.min(delay * 2, 8000);
    try {
      const reply = await fetch(apiUrl("/health"), { cache: "no-store" });
      if (reply.status < 500 || reply.status === 503) connectionOk();  // the API answered: we are connected
    } catch {
      // still unreachable
    }
  }
  probing = false;
}

export const isOffline = () => lost;
window.addEventListener("offline", () => connectionLost());
window.addEventListener("online", () => {
  if (wake) wake();
  else if (lost && !probing) probe();
});

// ---------------------------------------------------------------- job long-poll
// GET /jobs/{id}?wait=10 with If-None-Match: the server answers as soon as the job's version differs (or after
// ~10 s with the same job). Network failures wait for the connection monitor and go on; other errors end it.
export function watchJob(jobId, onJob, { signal, onError } = {}) {
  const terminal = new Set(["completed", "failed", "canceled"]);
  (async () => {
    let etag = null;
    let wait = 0;  // the first read answers at once
    while (!signal?.aborted) {
      try {
        const headers = etag ? { "If-None-Match": etag } : {};
        const reply = await api("GET", `/jobs/${encodeURIComponent(jobId)}?wait=${wait}`, { headers, signal });
        etag = reply.headers.get("ETag") || `"${reply.data.version}"`;
        onJob(reply.data);
        if (terminal.has(reply.data.status)) return;
        wait = 10;
      } catch (err) {
        if (err.name === "AbortError" || signal?.aborted) return;
        if (err.offline) {
          await waitUntilOnline(signal);
          continue;
        }
        onError?.(err);
        return;
      }
    }
  })();
}

function waitUntilOnline(signal) {
  return new Promise((resolve) => {
    const check = () => (!lost || signal?.aborted ? resolve() : setTimeout(check, 250));
    check();
  });
}

// Human text for an ApiError: the API's message, its code, when to retry, what was invalid.
export function describe(err) {
  if (!(err instanceof ApiError)) return { title: "Something went wrong", lines: [String(err?.message || err)] };
  const lines = [];
  if (err.retryAfter !== null && !Number.isNaN(err.retryAfter)) {
    const at = new Date(Date.now() + err.retryAfter * 1000);
    const atText = err.retryAfter > 12 * 3600 ? at.toLocaleString() : at.toLocaleTimeString();
    lines.push(`Try again in ${formatSeconds(err.retryAfter)} (at ${atText}).`);
  }
  const details = err.details || {};
  if (Array.isArray(details.errors)) {
    for (const e of details.errors) lines.push(`${[].concat(e.location || []).join(".")}: ${e.message}`);
  }
  for (const [key, value] of Object.entries(details)) {
    if (key !== "errors") lines.push(`${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`);
  }
  const title = err.offline ? err.message : `${err.message}${err.code ? ` (${err.code}, HTTP ${err.status})` : ` (HTTP ${err.status})`}`;
  return { title, lines };
}

export function formatSeconds(total) {
  const s = Math.max(0, Math.round(total));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
