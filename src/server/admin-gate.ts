// The admin token's door, for /admin/* and (unless --metrics-public) /metrics: missing → 401,
// wrong → 403, no admin token configured → 403. Failures are counted per peer address; past the
// budget they get 429 + Retry-After, but a correct token is never refused.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FailureLimiter, type AdminToken } from '../auth/index.js';
import { RelayError } from '../core/index.js';
import type { Telemetry } from '../telemetry/index.js';
import { clientAddress, type TrustedProxies } from './client-address.js';
import { sendError } from './render-error.js';

export class AdminGate {
  private readonly limiter: FailureLimiter;

  constructor(
    private readonly token: AdminToken,
    private readonly telemetry: Telemetry,
    private readonly proxies: TrustedProxies,
    failuresPerMinute: number,
  ) {
    this.limiter = new FailureLimiter(failuresPerMinute);
  }

  get configured(): boolean {
    return this.token.configured;
  }

  /** True if the caller may go on; otherwise the refusal has been sent. */
  allow(req: IncomingMessage, res: ServerResponse): boolean {
    const verdict = this.token.check(req.headers.authorization);
    if (verdict === 'ok') return true;
    req.resume(); // never read an unauthenticated body
    if (verdict === 'disabled') {
      sendError(res, 'openai', new RelayError('admin_disabled', 'The admin API is not enabled on this server (start it with --admin-token).'));
      return false;
    }
    const peer = clientAddress(req, this.proxies);
    const now = Date.now();
    const wait = this.limiter.retryAfter(peer, now);
    if (wait > 0) {
      res.setHeader('retry-after', String(wait));
      sendError(res, 'openai', new RelayError('auth_rate_limited', `Too many failed admin authentications from this address; retry in ${wait}s.`));
      return false;
    }
    this.limiter.noteFailure(peer, now);
    this.telemetry.authFailure('admin', { peer, reason: verdict === 'missing' ? 'missing token' : 'wrong token', path: req.url?.split('?')[0] });
    if (verdict === 'missing') {
      res.setHeader('www-authenticate', 'Bearer realm="modelrelay-admin"');
      sendError(res, 'openai', new RelayError('admin_token_missing', "The admin API needs 'Authorization: Bearer <admin token>'."));
    } else {
      sendError(res, 'openai', new RelayError('admin_token_invalid', 'The admin token is not valid.'));
    }
    return false;
  }
}
