// config.json beside index.html: the API's base URL ("" = same origin, as under `make run`) and, in AWS, the
// OIDC settings. `make deploy` writes it (scripts/deploy-console.sh); a missing file means the defaults.
const DEFAULTS = { apiBaseUrl: "", merchantClaim: "merchant_id", adminScope: "genjobs/admin", oidc: null };
let current = { ...DEFAULTS };

export async function loadConfig() {
  try {
    const reply = await fetch(new URL("config.json", document.baseURI));  // matches the preload in index.html
    if (reply.ok) current = { ...DEFAULTS, ...(await reply.json()) };
  } catch {
    // offline or no file: the defaults serve the same-origin case
  }
  current.apiBaseUrl = String(current.apiBaseUrl || "").replace(/\/+$/, "");
  return current;
}

export const config = () => current;
