// The dashboard: a plain HTML page with its script and stylesheet, served as they are from
// src/dashboard (copied into dist by the build, or carried inside a standalone executable). Read
// once at start; no CDN, works offline. A strict Content-Security-Policy keeps everything
// same-origin and the page out of frames.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STANDALONE } from '../standalone.js';

const FILES: Record<string, { file: string; type: string }> = {
  '/dashboard': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export class DashboardAssets {
  private readonly assets = new Map<string, { body: Buffer; type: string }>();
  /** Set when the files are missing (a build that skipped copying them): the API still runs. */
  private readonly missing: string | undefined;

  constructor() {
    try {
      for (const [path, { file, type }] of Object.entries(FILES)) this.assets.set(path, { body: readAsset(file), type });
    } catch (err) {
      this.missing = `The dashboard's files are missing (${(err as Error).message}); build with 'npm run build'.`;
    }
  }

  /** True if `path` is a dashboard asset (answered). */
  serve(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (!(path in FILES)) return false;
    req.resume();
    if (this.missing !== undefined) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(this.missing) });
      res.end(this.missing);
      return true;
    }
    const asset = this.assets.get(path)!;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
      res.end();
      return true;
    }
    res.writeHead(200, { 'content-type': asset.type, 'content-length': asset.body.length, ...SECURITY_HEADERS });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
    return true;
  }
}

function readAsset(file: string): Buffer {
  const embedded = STANDALONE?.files[`dashboard/${file}`];
  if (embedded !== undefined) return Buffer.from(embedded, 'utf8');
  return readFileSync(new URL(`../dashboard/${file}`, import.meta.url));
}
