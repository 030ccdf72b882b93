// The operators' routes beside the API: /admin/*, /metrics and /dashboard.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RelayError } from '../core/index.js';
import type { Telemetry } from '../telemetry/index.js';
import type { AdminApi } from './admin-api.js';
import type { AdminGate } from './admin-gate.js';
import type { DashboardAssets } from './dashboard-assets.js';
import { sendError } from './render-error.js';

export interface OperatorRoutesOptions {
  admin: AdminApi;
  gate: AdminGate;
  telemetry: Telemetry;
  /** /metrics without the admin token even when one is set. */
  metricsPublic: boolean;
  dashboard: DashboardAssets;
}

/** Answers an operator route and returns true, or returns false for anything else. */
export function operatorRoutes(o: OperatorRoutesOptions): (req: IncomingMessage, res: ServerResponse, path: string) => boolean {
  return (req, res, path) => {
    if (path === '/admin' || path.startsWith('/admin/')) {
      o.admin.handle(req, res, path);
      return true;
    }
    if (path === '/metrics') {
      if (req.method !== 'GET') {
        req.resume();
        res.setHeader('allow', 'GET');
        sendError(res, 'openai', new RelayError('method_not_allowed', 'Use GET for this route.'));
        return true;
      }
      if (o.gate.configured && !o.metricsPublic && !o.gate.allow(req, res)) return true;
      req.resume();
      o.telemetry.metricsText().then(
        (text) => {
          res.writeHead(200, { 'content-type': o.telemetry.metricsContentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
          res.end(text);
        },
        (err: Error) => sendError(res, 'openai', new RelayError('internal_error', `Could not collect metrics: ${err.message}`)),
      );
      return true;
    }
    if (path === '/dashboard' || path.startsWith('/dashboard/')) return o.dashboard.serve(req, res, path);
    return false;
  };
}
