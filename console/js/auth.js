// The bearer token lives in sessionStorage: it is gone when the tab closes and other sites cannot read it.
// The token's claims are read only to show who is signed in and whether admin pages apply; the API checks it.
import { config } from "./config.js";

const KEY = "genjobs.console.token";

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  sessionStorage.setItem(KEY, value);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

export function claims(value = token()) {
  try {
    const part = value.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    const json = decodeURIComponent(Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""));
    return JSON.parse(json);
  } catch {
    return {};
  }
}

export function merchant() {
  const c = claims();
  return c[config().merchantClaim] ?? null;
}

export function isAdmin() {
  const scope = claims().scope ?? claims().scp ?? "";
  const scopes = Array.isArray(scope) ? scope : String(scope).split(/\s+/);
  return scopes.includes(config().adminScope);
}
