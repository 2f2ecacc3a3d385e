// The HTTP client of the dashboard: same origin, the API key from localStorage sent as
// "Authorization: Bearer <key>" (what src/serve/api_keys.h accepts), JSON errors
// {error, detail, field?, column?} turned into ApiError.

const KEY_STORAGE = 'persona.apiKey';

export function apiKey(): string {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

export function setApiKey(key: string): void {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Private mode without storage: the key lasts for this page only.
  }
  sessionKey = key;
}

let sessionKey: string | null = null;

function currentKey(): string {
  return sessionKey ?? apiKey();
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly body: Record<string, unknown> | null,
  ) {
    super(detail || code || `HTTP ${status}`);
  }
  get column(): number | null {
    const c = this.body?.['column'];
    if (typeof c === 'number') return c;
    const m = /column (\d+)/.exec(this.detail);
    return m ? Number(m[1]) : null;
  }
}

// Listeners told about 401/403 answers, so the header can ask for a key.
type AuthListener = (status: number, detail: string) => void;
const authListeners: AuthListener[] = [];
export function onAuthProblem(fn: AuthListener): void {
  authListeners.push(fn);
}

export function authHeaders(): Record<string, string> {
  const key = currentKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  accept?: string;
}

async function send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...authHeaders(), Accept: opts.accept ?? 'application/json' };
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(path, { method, headers, body, signal: opts.signal, cache: 'no-store' });
  if (!res.ok) {
    let parsed: Record<string, unknown> | null = null;
    const text = await res.text();
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    const code = typeof parsed?.['error'] === 'string' ? (parsed['error'] as string) : '';
    const detail =
      typeof parsed?.['detail'] === 'string' ? (parsed['detail'] as string) : text.slice(0, 200);
    if (res.status === 401 || res.status === 403) authListeners.forEach((fn) => fn(res.status, detail));
    throw new ApiError(res.status, code, detail, parsed);
  }
  return res;
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await send(method, path, opts);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  return request<T>('GET', path, { signal });
}

export async function getText(path: string, accept = 'text/plain'): Promise<string> {
  const res = await send('GET', path, { accept });
  return res.text();
}

// GET that treats "not there" (404, and 503 for a feature the server runs without) as null.
export async function optional<T>(path: string): Promise<T | null> {
  try {
    return await get<T>(path);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 503)) return null;
    throw e;
  }
}

// Fetches `path` with the key and saves the body as a file named `filename`: export links cannot
// carry an Authorization header, so downloads go through fetch + a blob URL.
export async function download(path: string, filename: string): Promise<Blob> {
  const res = await send('GET', path, { accept: '*/*' });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10000);
  return blob;
}

export function describeError(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 401) return 'An API key is required: enter one above (scope "read").';
    if (e.status === 403) return `Forbidden: ${e.detail}`;
    return `${e.status} ${e.code ? e.code + ': ' : ''}${e.detail}`;
  }
  if (e instanceof DOMException && e.name === 'AbortError') return 'cancelled';
  return e instanceof Error ? e.message : String(e);
}

export function enc(s: string): string {
  return encodeURIComponent(s);
}
