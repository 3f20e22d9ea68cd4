// The API client. The access token lives in this module's memory only; the refresh token is an
// HttpOnly cookie the page never sees (app/api/auth_cookie.py), spent by one tab at a time.
const API = "/api/v1";
const CSRF = { "X-CSRF-Protection": "1" };

let accessToken = null;
let refreshing = null;
const signedOutListeners = new Set();

export class ApiError extends Error {
  constructor(status, error, detail, retryAfter) {
    super(typeof detail === "string" ? detail : error);
    this.status = status;
    this.error = error;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

export function onSignedOut(listener) {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

function signedOut(reason) {
  accessToken = null;
  for (const listener of signedOutListeners) listener(reason);
}

export function isSignedIn() {
  return accessToken !== null;
}

async function errorFrom(res) {
  let body = {};
  try {
    body = await res.json();
  } catch {
    // not the service's error shape (a proxy's page, say)
  }
  const retry = Number(res.headers.get("Retry-After"));
  return new ApiError(
    res.status,
    body.error || `http_${res.status}`,
    body.detail ?? res.statusText,
    Number.isFinite(retry) && retry > 0 ? retry : null,
  );
}

function withLock(task) {
  // Every tab refreshes with the same cookie, which works once: take turns.
  return navigator.locks ? navigator.locks.request("agent-platform-refresh", task) : task();
}

export function refresh() {
  if (!refreshing) {
    refreshing = withLock(async () => {
      const res = await fetch(`${API}/auth/refresh`, {
        method: "POST",
        headers: CSRF,
        credentials: "same-origin",
      });
      if (!res.ok) {
        accessToken = null;
        return false;
      }
      accessToken = (await res.json()).access_token;
      return true;
    }).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

function encode(query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

// One call, with one silent refresh when the access token has expired.
async function send(method, path, { json, form, query, signal, headers = {} } = {}) {
  const build = () => {
    const init = { method, signal, credentials: "same-origin", headers: { ...headers } };
    if (accessToken) init.headers.Authorization = `Bearer ${accessToken}`;
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (form !== undefined) {
      init.body = new URLSearchParams(form);
    }
    return fetch(`${API}${path}${encode(query)}`, init);
  };
  let res = await build();
  if (res.status === 401 && accessToken !== null) {
    if (await refresh()) res = await build();
    if (res.status === 401) {
      const error = await errorFrom(res);
      signedOut("Your session has ended. Log in again to continue.");
      throw error;
    }
  }
  if (!res.ok) throw await errorFrom(res);
  return res;
}

export async function call(method, path, options) {
  const res = await send(method, path, options);
  return res.status === 204 ? null : res.json();
}

export const get = (path, query, options) => call("GET", path, { ...options, query });
export const post = (path, json, options) => call("POST", path, { ...options, json });
export const patch = (path, json) => call("PATCH", path, { json });
export const put = (path, json) => call("PUT", path, { json });
export const del = (path, query) => call("DELETE", path, { query });

export async function logIn(email, password) {
  const body = await call("POST", "/auth/login", {
    form: { username: email, password },
    query: { cookie: true },
    headers: CSRF,
  });
  accessToken = body.access_token;
}

export async function signUp(email, password) {
  await call("POST", "/auth/register", { json: { email, password } });
  await logIn(email, password);
}

export async function logOut() {
  try {
    await call("POST", "/auth/logout");
  } finally {
    accessToken = null;
  }
}

export async function changePassword(current, next) {
  const body = await call("POST", "/auth/password", {
    json: { current_password: current, new_password: next },
    query: { cookie: true },
    headers: CSRF,
  });
  accessToken = body.access_token;
}

// Server-sent events of a POST (or, without json, a GET): calls onEvent(name, data, id) for each;
// resolves when the stream ends.
export async function stream(path, json, { onEvent, signal }) {
  const method = json === undefined ? "GET" : "POST";
  const res = await send(method, path, { json, signal, headers: { Accept: "text/event-stream" } });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let id = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        else if (line.startsWith("id:")) id = Number(line.slice(3).trim());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")), id);
    }
  }
}

// A file the API streams, saved by the browser under the name the server gives.
export async function download(path) {
  const res = await send("GET", path);
  const disposition = res.headers.get("Content-Disposition") || "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] || "download";
  const url = URL.createObjectURL(await res.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
