// Caps the TCP connections one peer address may hold open, so one host can't take every socket the
// process has. Counted per socket address (a reverse proxy of yours is one address: raise or disable
// the cap there). Refused connections get a 503 in the OpenAI shape and are closed.
import type { Server, Socket } from 'node:net';
import { RelayError } from '../core/index.js';
import { errorBody } from './render-error.js';

// No request has been read yet, so no route tells the shape: the OpenAI one, as for unknown routes.
const REFUSAL_BODY = errorBody('openai', new RelayError('too_many_connections', 'Too many open connections from your address; close some and retry.'));
const REFUSAL =
  'HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\n' +
  `content-length: ${Buffer.byteLength(REFUSAL_BODY)}\r\n\r\n${REFUSAL_BODY}`;

export function capConnectionsPerAddress(server: Server, max: number, onRefused: (addr: string) => void): void {
  if (max <= 0) return;
  const open = new Map<string, number>();
  // Before node:http's own listener, so a refused socket is closed before any request is parsed.
  server.prependListener('connection', (socket: Socket) => {
    const addr = socket.remoteAddress ?? 'unknown';
    const n = (open.get(addr) ?? 0) + 1;
    if (n > max) {
      onRefused(addr);
      socket.end(REFUSAL, () => socket.destroy());
      return;
    }
    open.set(addr, n);
    socket.once('close', () => {
      const left = (open.get(addr) ?? 1) - 1;
      if (left <= 0) open.delete(addr);
      else open.set(addr, left);
    });
  });
}
