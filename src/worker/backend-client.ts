// HTTP calls to the local backend through one undici pool (keep-alive, no per-call connection setup),
// or, when the environment puts the backend behind a proxy, through undici's ProxyAgent.
import { Pool, ProxyAgent, type Dispatcher } from 'undici';

export interface BackendCall {
  path: string;
  headers: Record<string, string>;
  body: string;
}

export class BackendClient {
  readonly origin: string;
  private readonly basePath: string;
  private readonly pool: Dispatcher;

  constructor(backendUrl: string, connections: number, proxy?: URL) {
    const u = new URL(backendUrl);
    this.origin = u.origin;
    // A backend URL may carry a path prefix (".../v1" is a common mistake: tolerate it).
    this.basePath = u.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
    // Timeouts are the server's job (it cancels); a long prompt may take minutes before its first byte.
    const opts = { connections, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000 };
    // undici spells SOCKS5 with remote name resolution as socks5: too.
    this.pool = proxy ? new ProxyAgent({ ...opts, uri: proxy.href.replace(/^socks5h:/, 'socks5:'), proxyTunnel: true }) : new Pool(this.origin, opts);
  }

  /** POSTs through the pool with a callback handler (no Readable, no AbortSignal per call). */
  dispatch(call: BackendCall, handler: Dispatcher.DispatchHandler): void {
    this.pool.dispatch({ origin: this.origin, method: 'POST', path: this.basePath + call.path, headers: call.headers, body: call.body }, handler);
  }

  get(path: string, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    return this.pool.request({ origin: this.origin, method: 'GET', path: this.basePath + path, signal, headersTimeout: 10_000, bodyTimeout: 10_000 });
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
