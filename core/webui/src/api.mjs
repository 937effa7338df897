// The REST client, the token and WebSocket URLs: everything the page
// says to the server goes through here, so that the token is added in one
// place (the Authorization header on fetch; on a WebSocket, whose
// constructor cannot set headers, a second subprotocol, wsProtocols,
// which keeps it out of the URL and so out of proxies' access logs).

const TOKEN_KEY = 'ptyhost.token';
let memoryToken = '';

// The token lives in sessionStorage: kept for the tab (a reload keeps it),
// forgotten when the tab closes. Storage may be unavailable (a sandboxed
// frame, a strict privacy setting): the page then asks again on reload.
export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return memoryToken;
  }
}

export function setToken(token) {
  memoryToken = token;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // memoryToken holds it for this page's life.
  }
}

// sendableToken reports whether a browser can send token in a header:
// printable ASCII (a token with an em dash, as smart punctuation makes of
// a pasted "--", is not).
export function sendableToken(token) {
  return /^[\x20-\x7e]+$/.test(token);
}

// APIError carries the HTTP status (0 when the server could not be
// reached) and the server's JSON body, whose `error` is the message.
export class APIError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'APIError';
    this.status = status;
    this.body = body;
  }
}

let onUnauthorized = null;
let pendingAuth = null;

// setUnauthorizedHandler installs what api() calls on a 401: a function
// that asks the user for a token (setting it) and resolves when there is
// a new one to try. Concurrent 401s share one prompt.
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function askForToken(wrong) {
  if (!pendingAuth) {
    pendingAuth = Promise.resolve(onUnauthorized(wrong)).finally(() => {
      pendingAuth = null;
    });
  }
  return pendingAuth;
}

// api sends one request to the server's API. Paths are relative
// ("api/v1/sessions") so that the page works when it is mounted under a
// prefix. It resolves to the decoded JSON body (null for 204) and rejects
// with an APIError whose message is the server's `error`.
export async function api(method, path, body) {
  for (;;) {
    const sent = getToken();
    if (sent && !sendableToken(sent) && onUnauthorized) {
      // Kept from before the dialog refused such tokens: fetch would
      // throw building the header, which reads as "cannot reach".
      setToken('');
      await askForToken(true);
      continue;
    }
    const headers = { Accept: 'application/json' };
    if (sent) headers.Authorization = 'Bearer ' + sent;
    const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      throw new APIError(0, `cannot reach the server (${err.message}); is ptyhost running?`, null);
    }
    if (res.status === 401 && onUnauthorized) {
      // A token was sent and refused: it is wrong (or the server's token
      // changed). None was sent: the server wants one.
      await askForToken(sent !== '');
      continue;
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : `${method} ${path}: HTTP ${res.status}`;
      throw new APIError(res.status, msg, data);
    }
    return data;
  }
}

// wsURL turns an API path into a ws:// or wss:// URL on this page's
// origin, with the query params. The token does not go in it: see
// wsProtocols.
export function wsURL(path, params = {}) {
  const u = new URL(path, document.baseURI);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.hash = '';
  u.search = '';
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
  }
  return u.toString();
}

// TOKEN_PROTOCOL_PREFIX begins the subprotocol that carries the token:
// the server reads it and never chooses it (docs/protocol.md,
// Authentication).
const TOKEN_PROTOCOL_PREFIX = 'ptyhost.token.';

// wsProtocols returns the subprotocols to offer for an endpoint that
// speaks protocol: it, and the token, if any, as unpadded base64url of
// its UTF-8 bytes.
export function wsProtocols(protocol) {
  const token = getToken();
  if (!token) return [protocol];
  let bin = '';
  for (const b of new TextEncoder().encode(token)) bin += String.fromCharCode(b);
  const b64url = btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return [protocol, TOKEN_PROTOCOL_PREFIX + b64url];
}

export function sessionPath(id, suffix = '') {
  return 'api/v1/sessions/' + encodeURIComponent(id) + suffix;
}

// backoff is the delay before reconnect attempt n (0-based): 250 ms
// doubling up to 5 s, each jittered by ±25% so that many tabs a server
// restart disconnected do not come back in step.
export function backoff(attempt) {
  const base = Math.min(5000, 250 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

// ended says whether a session record is one that can no longer be
// attached.
export function ended(record) {
  return record.status === 'TERMINATED' || record.status === 'ERROR';
}

// exitText describes how a session ended, from an exit message
// ({code, signal, reason}) or a session record ({exit_code, exit_signal,
// status_reason}): "exited with code 0", "killed by SIGKILL".
export function exitText({ code, signal, reason }) {
  let text;
  if (signal) text = `killed by ${signal}`;
  else if (code !== null && code !== undefined) text = `exited with code ${code}`;
  else text = 'ended';
  if (reason) text += ` (${Object.hasOwn(REASONS, reason) ? REASONS[reason] : reason})`;
  return text;
}

// The reasons of docs/protocol.md said in words; others are shown as sent.
const REASONS = {
  plugin_crashed: 'its plugin crashed',
  plugin_restarted: 'its plugin was restarted',
  idle_timeout: 'no client for its idle timeout',
  server_lost: 'the server running it was lost',
};

export function recordExit(record) {
  return { code: record.exit_code, signal: record.exit_signal, reason: record.status_reason };
}
