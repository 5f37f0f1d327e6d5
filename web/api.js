// The daemon's public API: fetch with the session's bearer token, problem+json
// errors as ApiError, and URLs with ?access_token= for links and EventSource.

const KEY = 'dimd.session';

export class ApiError extends Error {
  constructor(status, problem, fallback) {
    const p = problem && typeof problem === 'object' ? problem : {};
    super(p.detail || p.title || fallback || `HTTP ${status}`);
    this.status = status;
    this.code = p.code || null;
    this.detail = p.detail || p.title || fallback || `HTTP ${status}`;
    this.errors = Array.isArray(p.errors) ? p.errors : [];
  }
}

// The session: {token, id, name, scope}, kept in sessionStorage for this tab.
export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || 'null');
  } catch {
    return null;
  }
}

export function saveSession(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

export function canWrite() {
  const s = session();
  return !!s && s.scope === 'write';
}

function token() {
  const s = session();
  return s ? s.token : null;
}

// A same-origin URL with the token as access_token (GET routes only: links,
// downloads, EventSource).
export function authUrl(path, params = {}) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v != null) u.searchParams.set(k, v);
  const t = token();
  if (t) u.searchParams.set('access_token', t);
  return u.pathname + u.search;
}

export function query(path, params = {}) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') u.searchParams.set(k, v);
  return u.pathname + u.search;
}

// request('GET', '/v1/jobs') -> parsed JSON (null for 204). opts: body (an
// object is sent as JSON; a Blob/File as is, with opts.type), headers, token
// (to try a token that is not the session's), signal.
export async function request(method, path, opts = {}) {
  const headers = {Accept: 'application/json', ...(opts.headers || {})};
  const t = opts.token !== undefined ? opts.token : token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let body;
  if (opts.body instanceof Blob) {
    body = opts.body;
    headers['Content-Type'] = opts.type || opts.body.type || 'application/octet-stream';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, {method, headers, body, signal: opts.signal, cache: 'no-store'});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, null, `cannot reach the daemon (${e.message})`);
  }
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  if (type.includes('json')) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  } else {
    data = await res.text();
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data, `${method} ${path}: HTTP ${res.status}`);
    if (res.status === 401 && opts.token === undefined && typeof onUnauthorized === 'function') {
      onUnauthorized(err);
    }
    throw err;
  }
  return data;
}

let onUnauthorized = null;
// Called when the session's token stops working (revoked, another daemon).
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts = {}) => request('POST', path, {...opts, body});
export const del = (path, opts) => request('DELETE', path, opts);

export function whoami(t) {
  return request('GET', '/v1/whoami', {token: t});
}
