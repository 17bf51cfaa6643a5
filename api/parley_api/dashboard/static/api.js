// Talking to the stats API, and keeping the analyst's credentials.
//
// Credentials live in memory and in sessionStorage (this tab only, gone when it closes) — never in
// localStorage or a cookie. Requests are sent with `credentials: "omit"`: the Authorization header
// is set by us, and a 401 never makes the browser pop up its own Basic-auth dialog.

const STORAGE_KEY = "parley.dashboard.credentials";
const STATS_URL = "api/v1/stats";
const TIMEOUT_MS = 20_000; // a hung connection counts as unreachable

let current = null;

/** Base64 of UTF-8 text (btoa alone only takes Latin-1). */
function base64Utf8(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Credentials for `username`/`password`: the header value and the name to show. */
export function makeCredentials(username, password) {
  return { username, header: `Basic ${base64Utf8(`${username}:${password}`)}` };
}

/** The credentials of this tab, from memory or sessionStorage; null when signed out. */
export function loadCredentials() {
  if (current) return current;
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    if (stored && typeof stored.username === "string" && typeof stored.header === "string") {
      current = { username: stored.username, header: stored.header };
    }
  } catch {
    current = null;
  }
  return current;
}

/** Keep credentials for this tab. */
export function saveCredentials(credentials) {
  current = credentials;
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
  } catch {
    // Storage refused (private mode, quota): memory alone still works until a reload.
  }
}

/** Forget the credentials everywhere they were kept. */
export function clearCredentials() {
  current = null;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing stored.
  }
}

function retryAfterSeconds(response, fallback) {
  const value = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return Number.isFinite(value) && value >= 0 ? value : fallback;
}

async function detailOf(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : "";
  } catch {
    return "";
  }
}

/** The query of one period's window: `period=week&window=rolling`. */
function statsQuery(period, mode) {
  return `period=${encodeURIComponent(period)}&window=${encodeURIComponent(mode)}`;
}

/**
 * GET the stats of `period` in window mode `mode` ("rolling" or "calendar"). Resolves (never rejects) with one of:
 * {kind: "ok", data} | {kind: "unauthorized", detail} | {kind: "rate_limited", retryAfter, detail}
 * | {kind: "unavailable", retryAfter} | {kind: "unreachable"} | {kind: "error", status, detail}
 */
export async function fetchStats(period, mode, credentials, { signal } = {}) {
  const timeout = AbortSignal.timeout(TIMEOUT_MS);
  let response;
  try {
    response = await fetch(`${STATS_URL}?${statsQuery(period, mode)}`, {
      headers: { Authorization: credentials.header, Accept: "application/json" },
      credentials: "omit",
      cache: "no-store",
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch {
    if (signal?.aborted) return { kind: "aborted" };
    return { kind: "unreachable" };
  }
  if (response.ok) {
    try {
      return { kind: "ok", data: await response.json() };
    } catch {
      return { kind: "error", status: response.status, detail: "the answer was not JSON" };
    }
  }
  switch (response.status) {
    case 401:
      return { kind: "unauthorized", detail: await detailOf(response) };
    case 429:
      return { kind: "rate_limited", retryAfter: retryAfterSeconds(response, 60), detail: await detailOf(response) };
    case 502:
    case 503:
    case 504:
      return { kind: "unavailable", retryAfter: retryAfterSeconds(response, 10) };
    default:
      return { kind: "error", status: response.status, detail: await detailOf(response) };
  }
}

/**
 * GET one table of the stats of `period` in window mode `mode` as CSV. Resolves with {kind: "ok", blob, filename}, or with
 * the same failure kinds as fetchStats (a 401 signs the analyst out, a 429 says when to retry).
 */
export async function fetchExport(table, period, mode, credentials) {
  let response;
  try {
    response = await fetch(`${STATS_URL}/${encodeURIComponent(table)}.csv?${statsQuery(period, mode)}`, {
      headers: { Authorization: credentials.header, Accept: "text/csv" },
      credentials: "omit",
      cache: "no-store",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch {
    return { kind: "unreachable" };
  }
  if (response.ok) {
    const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    return { kind: "ok", blob: await response.blob(), filename: named ? named[1] : `parley-${table}-${period}-${mode}.csv` };
  }
  switch (response.status) {
    case 401:
      return { kind: "unauthorized", detail: await detailOf(response) };
    case 429:
      return { kind: "rate_limited", retryAfter: retryAfterSeconds(response, 60), detail: await detailOf(response) };
    default:
      return { kind: "error", status: response.status, detail: await detailOf(response) };
  }
}
