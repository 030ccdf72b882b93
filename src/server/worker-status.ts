// A connected worker as the admin API and dashboard show it: the scheduler's view of its load joined
// with what its session knows (how it got in, what it speaks, when it was last heard from).
import { PROTOCOL_VERSION } from '../protocol/index.js';
import type { WorkerView } from '../core/index.js';
import type { WorkerSession } from './worker-session.js';

/** A connected worker as the admin API shows it. */
export interface WorkerStatus {
  id: string;
  name: string;
  models: string[];
  max_concurrent: number;
  in_flight: number;
  state: 'active' | 'draining';
  /** What the worker last reported of its backend (backend-health), and the server's circuit breaker for it. */
  backend: 'up' | 'down';
  breaker: 'closed' | 'open' | 'half_open';
  connected_at: string;
  peer: string;
  provider: string;
  protocol_version: string;
  extensions: string[];
  last_seen_at: string;
  credential: { kind: 'shared_secret' } | { kind: 'worker_token'; id: string; name: string };
}

/** `now` is performance.now(), the clock the session's lastSeen is on. */
export function workerStatuses(views: WorkerView[], session: (id: string) => WorkerSession | undefined, now: number): WorkerStatus[] {
  const wall = Date.now();
  return views.flatMap((w) => {
    const s = session(w.id);
    if (!s) return [];
    const cred = s.info.credential;
    return [
      {
        id: w.id,
        name: w.name,
        models: w.models,
        max_concurrent: w.maxConcurrent,
        in_flight: w.inFlight,
        state: w.draining ? 'draining' : 'active',
        backend: w.backendDown ? 'down' : 'up',
        breaker: w.breaker,
        connected_at: new Date(s.connectedAt).toISOString(),
        peer: s.peer,
        provider: s.info.provider,
        protocol_version: s.protocolVersion ?? PROTOCOL_VERSION,
        extensions: [...s.extensions],
        last_seen_at: new Date(wall - (now - s.lastSeen)).toISOString(),
        credential: cred.kind === 'shared_secret' ? { kind: 'shared_secret' } : { kind: 'worker_token', id: cred.id, name: cred.name },
      } satisfies WorkerStatus,
    ];
  });
}
