// Sign-in through an OpenID Connect provider with the authorization-code flow and PKCE (RFC 7636, S256), as a
// public client: no secret in the browser. config.json's `oidc` names the endpoints (Cognito's hosted UI:
// https://<domain>/oauth2/authorize and /oauth2/token), the client id and the scopes. The code verifier and the
// state wait in sessionStorage for the provider's redirect back to this page.
import { config } from "./config.js";
import { setToken } from "./auth.js";

const PENDING = "genjobs.console.oidc";

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function randomString(bytes = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

export function redirectUri() {
  return config().oidc?.redirectUri || `${location.origin}${location.pathname}`;
}

export async function startSignIn(next) {
  const oidc = config().oidc;
  const verifier = randomString(48);  // 64 characters, within RFC 7636's 43-128
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  const state = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, next }));
  const url = new URL(oidc.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: "code", client_id: oidc.clientId, redirect_uri: redirectUri(),
    scope: oidc.scope || "openid", state, code_challenge: challenge, code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

// On the way back: ?code=&state= (or ?error=). Returns {next} when signed in, {error} when not, null when the
// URL carries no answer from the provider.
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", location.pathname + location.hash);  // the code is single-use: drop it from the URL
  if (params.has("error")) {
    return { error: `The identity provider answered ${params.get("error")}: ${params.get("error_description") || "no description"}.` };
  }
  if (!pending || pending.state !== params.get("state")) {
    return { error: "This sign-in answer does not match a sign-in started here (state mismatch). Try again." };
  }
  const oidc = config().oidc;
  let reply;
  try {
    reply = await fetch(oidc.tokenEndpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", client_id: oidc.clientId, code: params.get("code"),
        redirect_uri: redirectUri(), code_verifier: pending.verifier }),
    });
  } catch {
    return { error: "The identity provider's token endpoint cannot be reached." };
  }
  const data = await reply.json().catch(() => ({}));
  const token = data[oidc.tokenType || "access_token"];
  if (!reply.ok || !token) {
    return { error: `The identity provider refused the code: ${data.error || `HTTP ${reply.status}`}${data.error_description ? ` (${data.error_description})` : ""}.` };
  }
  setToken(token);
  return { next: pending.next };
}
