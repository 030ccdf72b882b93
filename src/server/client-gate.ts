// --require-api-keys: the inference routes and GET /v1/models need a client key, read from the
// headers before any byte of the body. Refusals are 401 in the route's own error shape.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Auth, Credential } from '../auth/index.js';
import { RelayError } from '../core/index.js';
import type { Telemetry } from '../telemetry/index.js';
import { clientAddress, type TrustedProxies } from './client-address.js';
import { type ApiFlavor, sendError } from './render-error.js';

/** Where clients put keys; never forwarded to a worker. */
export const CLIENT_KEY_HEADERS: ReadonlySet<string> = new Set(['authorization', 'x-api-key']);

export class ClientGate {
  constructor(
    private readonly auth: Auth,
    private readonly telemetry: Telemetry,
    private readonly proxies: TrustedProxies,
  ) {}

  /** The key, or null once a 401 has been sent. */
  check(req: IncomingMessage, res: ServerResponse, flavor: ApiFlavor, route: string): Credential | null {
    const verdict = this.auth.client(req.headers.authorization, req.headers['x-api-key']);
    if (verdict.ok) return verdict.key;
    this.telemetry.authFailure('client_key', { peer: clientAddress(req, this.proxies), route, reason: verdict.reason === 'missing' ? 'missing key' : 'unknown or revoked key' });
    this.telemetry.rejected(route, 401);
    // Don't read (or wait for) a body we will not use: answer and close.
    if (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') res.setHeader('connection', 'close');
    else if (req.headers['transfer-encoding'] !== undefined) res.setHeader('connection', 'close');
    res.setHeader('www-authenticate', 'Bearer realm="modelrelay"');
    const message =
      verdict.reason === 'missing'
        ? "This server needs an API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
        : 'The API key is not valid (unknown or revoked).';
    sendError(res, flavor, new RelayError('invalid_api_key', message));
    req.resume();
    return null;
  }
}
