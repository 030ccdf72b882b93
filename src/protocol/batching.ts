// Frames sent in one event-loop iteration leave in one write: the socket is corked at the first send
// and uncorked in the check phase, after the poll phase that produced them. On loopback and LANs the
// write syscall is the dominant per-frame cost, and this adds no timer: under light load the check
// phase follows at once.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

const corked = new WeakSet<Socket>();

/** Sends a text frame (a string) or a binary one (a Buffer, binary-frames extension). */
export function sendBatched(ws: WebSocket, frame: string | Buffer): void {
  // ws keeps its socket private; without it we simply send unbatched.
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  if (socket && !corked.has(socket)) {
    corked.add(socket);
    socket.cork();
    setImmediate(() => {
      corked.delete(socket);
      socket.uncork();
    });
  }
  ws.send(frame);
}
