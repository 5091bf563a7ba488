// Until the API lists personas (GET /personas), the console remembers the ids of the personas created in this
// browser, per merchant, in localStorage. Only ids are kept; everything shown is read from the API.
import { merchant } from "./auth.js";

const key = () => `genjobs.console.personas.${merchant()}`;

export function knownPersonaIds() {
  try {
    const ids = JSON.parse(localStorage.getItem(key()) || "[]");
    return Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
  } catch {
    return [];
  }
}

export function rememberPersona(id) {
  localStorage.setItem(key(), JSON.stringify([id, ...knownPersonaIds().filter((x) => x !== id)].slice(0, 200)));
}

export function forgetPersona(id) {
  localStorage.setItem(key(), JSON.stringify(knownPersonaIds().filter((x) => x !== id)));
}
