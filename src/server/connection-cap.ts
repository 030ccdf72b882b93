// Caps the TCP connections the server holds open: in all (so strangers can't take every socket the
// process has) and per peer address (so one host can't take them all). Counted per socket address
// (a reverse proxy of yours is one address: raise or disable the per-address cap there). Refused
// connections get a 503 in the OpenAI shape and are closed.
import type { Server, Socket } from 'node:net';
import { RelayError } from '../core/index.js';
import { errorBody } from './render-error.js';

export interface ConnectionCaps {
  /** Open connections in all; 0 = no cap. */
  total: number;
  /** Open connections per peer address; 0 = no cap. */
  perAddress: number;
}

export type RefusalReason = 'total' | 'address';

// No request has been read yet, so no route tells the shape: the OpenAI one, as for unknown routes.
function refusal(message: string): string {
  const body = errorBody('openai', new RelayError('too_many_connections', message));
  return (
    'HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}
const PER_ADDRESS = refusal('Too many open connections from your address; close some and retry.');

export function capConnections(server: Server, caps: ConnectionCaps, onRefused: (reason: RefusalReason, addr: string) => void): void {
  if (caps.total <= 0 && caps.perAddress <= 0) return;
  const total = refusal(`The relay is at its limit of ${caps.total} open connections; retry shortly.`);
  const open = new Map<string, number>();
  let all = 0;
  // Before node:http's own listener, so a refused socket is closed before any request is parsed.
  server.prependListener('connection', (socket: Socket) => {
    const addr = socket.remoteAddress ?? 'unknown';
    const n = (open.get(addr) ?? 0) + 1;
    const reason: RefusalReason | undefined = caps.total > 0 && all >= caps.total ? 'total' : caps.perAddress > 0 && n > caps.perAddress ? 'address' : undefined;
    if (reason) {
      onRefused(reason, addr);
      socket.end(reason === 'total' ? total : PER_ADDRESS, () => socket.destroy());
      return;
    }
    all++;
    open.set(addr, n);
    socket.once('close', () => {
      all--;
      const left = (open.get(addr) ?? 1) - 1;
      if (left <= 0) open.delete(addr);
      else open.set(addr, left);
    });
  });
}
