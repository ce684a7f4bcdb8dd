// The server's API as the dashboard uses it: the key from this tab's session storage, sent as a
// Bearer token; problem documents turned into errors with the server's own words.

const KEY = "circuit.apiKey";

export function apiKey() { return sessionStorage.getItem(KEY); }
export function forgetKey() { sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function failure(response) {
  let message = `HTTP ${response.status}`;
  try {
    const problem = await response.json();
    message = [problem.title, problem.detail].filter(Boolean).join(": ") || message;
  } catch { /* not a problem document */ }
  return new ApiError(response.status, message);
}

export async function call(method, path, body, key = apiKey()) {
  const headers = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

// Sign in: the key is kept only once the server accepted it (GET /v1/whoami says its scopes).
export async function signIn(key) {
  const who = await call("GET", "/v1/whoami", undefined, key);
  sessionStorage.setItem(KEY, key);
  return who;
}

// Does the signed-in key hold `scope`? admin implies every scope, as on the server.
export function allows(who, scope) { return who.scopes.includes("admin") || who.scopes.includes(scope); }

// Server-sent events over fetch (EventSource cannot send an Authorization header). Calls
// onEvent(name, data) for each event; reconnects after the server's retry delay with
// Last-Event-ID, until the returned stop() is called.
export function stream(path, onEvent, onState = () => {}) {
  const controller = new AbortController();
  let lastId = null;
  let retry = 1000;
  let stopped = false;
  async function connect() {
    while (!stopped) {
      try {
        const headers = { authorization: `Bearer ${apiKey()}`, accept: "text/event-stream" };
        if (lastId) headers["last-event-id"] = lastId;
        const response = await fetch(path, { headers, signal: controller.signal });
        if (!response.ok) throw await failure(response);
        onState("open");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = "message", data = "", id = null;
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) continue;
              const [field, ...rest] = line.split(":");
              const text = rest.join(":").replace(/^ /, "");
              if (field === "event") name = text;
              else if (field === "data") data += text;
              else if (field === "id") id = text;
              else if (field === "retry" && /^\d+$/.test(text)) retry = Number(text);
            }
            if (id) lastId = id;
            if (data) onEvent(name, JSON.parse(data));
          }
        }
      } catch (error) {
        if (stopped) return;
        onState("error", error);
        if (error.status === 401 || error.status === 403) return;
      }
      if (!stopped) { onState("reconnecting"); await new Promise((r) => setTimeout(r, retry)); }
    }
  }
  connect();
  return () => { stopped = true; controller.abort(); onState("closed"); };
}
