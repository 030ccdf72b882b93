// --cors-origins: lets browser apps call the API routes directly. Preflights for a listed origin (or
// any, with '*') get 204 and the methods and headers the SDKs send; answers carry
// Access-Control-Allow-Origin for a listed origin. Never applied to the admin API or metrics.
import type { IncomingMessage, ServerResponse } from 'node:http';

const ALLOWED_HEADER = /^(authorization|content-type|x-api-key|anthropic-[a-z0-9-]+|openai-[a-z0-9-]+|x-stainless-[a-z0-9-]+|x-request-id)$/;
const DEFAULT_HEADERS = 'authorization, content-type, x-api-key, anthropic-version, anthropic-beta, openai-organization, openai-project';

export class Cors {
  private readonly any: boolean;
  private readonly origins: Set<string>;

  constructor(list: string[]) {
    this.any = list.includes('*');
    this.origins = new Set(list.map((o) => o.replace(/\/+$/, '').toLowerCase()));
  }

  static parse(value: string | undefined): Cors | undefined {
    const list = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    return list.length ? new Cors(list) : undefined;
  }

  /** Adds the CORS headers for this request; true if it was a preflight, now answered. */
  apply(req: IncomingMessage, res: ServerResponse, allowMethods: string): boolean {
    const origin = req.headers.origin;
    const allowed = origin !== undefined && (this.any || this.origins.has(origin.toLowerCase()));
    res.setHeader('vary', 'Origin');
    if (allowed) {
      res.setHeader('access-control-allow-origin', this.any ? '*' : origin);
      res.setHeader('access-control-expose-headers', 'x-request-id, retry-after');
    }
    if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined) return false;
    req.resume();
    if (allowed) {
      const asked = req.headers['access-control-request-headers'];
      const headers = asked
        ? asked.split(',').map((h) => h.trim().toLowerCase()).filter((h) => ALLOWED_HEADER.test(h)).join(', ')
        : DEFAULT_HEADERS;
      res.setHeader('access-control-allow-methods', `${allowMethods}, OPTIONS`);
      if (headers) res.setHeader('access-control-allow-headers', headers);
      res.setHeader('access-control-max-age', '600');
    }
    res.writeHead(204, { 'content-length': 0 });
    res.end();
    return true;
  }
}
