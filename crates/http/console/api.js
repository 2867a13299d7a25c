// The admin JSON API client (contract: docs/admin-api.md). Every failure becomes an Error whose
// message is the API's own `{"error": ...}` text, or a plain description when the server could
// not be reached or answered something that is not JSON.

/** How long one API call may take before the console reports it as failed. */
const REQUEST_TIMEOUT_MS = 10_000;

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** `path` parts are encoded one by one: path('topics', name) → "/api/topics/<name>". */
export function path(...parts) {
  return `/api/${parts.map((p) => encodeURIComponent(String(p))).join('/')}`;
}

export async function request(method, url, body) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    // Against the origin, never the page's URL: a page opened as http://user:pw@host/ has
    // credentials in its URL, and fetch refuses a URL resolved against it (the browser sends
    // the remembered Basic login by itself).
    response = await fetch(new URL(url, location.origin), {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      cache: 'no-store',
    });
  } catch (err) {
    const why = err.name === 'AbortError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000}s` : 'server unreachable';
    throw new ApiError(`${method} ${url}: ${why}`, 0);
  } finally {
    clearTimeout(timer);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      if (response.ok) throw new ApiError(`${method} ${url}: answer is not JSON`, response.status);
    }
  }
  if (!response.ok) {
    const message = data && typeof data.error === 'string' ? data.error : text.trim() || response.statusText;
    throw new ApiError(`${message} (HTTP ${response.status})`, response.status);
  }
  return data;
}

export const get = (url) => request('GET', url);
export const post = (url, body = {}) => request('POST', url, body);
export const patch = (url, body) => request('PATCH', url, body);
export const del = (url) => request('DELETE', url);
