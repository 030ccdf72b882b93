// The relay's engine room: feeds client and worker events into the scheduler and carries out the
// commands it returns (send a request, fail a client, cancel, ping, close a worker). It owns the
// one timer, armed for the scheduler's earliest deadline.
import { randomBytes } from 'node:crypto';
import { CloseCode, PROTOCOL_VERSION, encode, encodeBinary, RequestErrorCode, type WorkerMessage } from '../protocol/index.js';
import { RelayError, Scheduler, type Command, type SlotGroupSpec } from '../core/index.js';
import type { Logger } from '../log.js';
import type { DisconnectCause, Telemetry } from '../telemetry/index.js';
import type { Exchange } from './exchange.js';
import { FLOW_OVERDRAFT_BYTES, FLOW_WINDOW_BYTES, FlowCredit } from './flow-credit.js';
import { LogLimiter } from '../log-limiter.js';
import { type WorkerStatus, workerStatuses } from './worker-status.js';
import { MAX_MODELS, sanitizeModels, type SanitizedRegistration, type SessionHandlers, type WorkerSession } from './worker-session.js';

export type { WorkerStatus } from './worker-status.js';

export interface RelayOptions {
  scheduler: Scheduler;
  log: Logger;
  drainTimeoutMs: number;
  /** A streaming request waiting this long in the queue gets SSE headers and a comment every so
   * often (0 = off). */
  queueKeepaliveMs: number;
  telemetry: Telemetry;
  /** Whether a worker's credential is still valid when it registers (a token may be revoked meanwhile). */
  credentialValid?: (session: WorkerSession) => boolean;
}


const now = (): number => performance.now();
/** Bytes the server queues for one slow client, whatever the worker negotiated; beyond it the
 * stream ends with client_too_slow. With flow-control a worker stays far below it. */
export const STREAM_BUFFER_CAP = 16 * 1024 * 1024;
const LOGGED_MODELS = 10;

export class Relay implements SessionHandlers {
  readonly scheduler: Scheduler;
  private readonly log: Logger;
  /** Warnings a misbehaving worker can trigger per frame go through this. */
  private readonly workerWarnings: LogLimiter;
  private readonly telemetry: Telemetry;
  private readonly exchanges = new Map<string, Exchange>();
  private readonly sessions = new Map<string, WorkerSession>();
  private readonly idPrefix = randomBytes(4).toString('hex');
  private nextId = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closing = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: RelayOptions) {
    this.scheduler = opts.scheduler;
    this.log = opts.log;
    this.workerWarnings = new LogLimiter(opts.log);
    this.telemetry = opts.telemetry;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  get inFlight(): number {
    return this.exchanges.size;
  }

  newRequestId(): string {
    return `req_${this.idPrefix}${(++this.nextId).toString(36)}`;
  }

  // ---------- client side ----------

  submit(ex: Exchange): void {
    this.exchanges.set(ex.id, ex);
    ex.res.on('close', () => {
      if (this.exchanges.get(ex.id) !== ex) return;
      this.exchanges.delete(ex.id);
      ex.errorCode = 'client_disconnect';
      this.finished(ex);
      this.run(this.scheduler.cancel(ex.id, 'client_disconnect', now()));
    });
    this.run(this.scheduler.submit(ex.id, ex.model, now(), { tenant: ex.tenant, priority: ex.priority, tenantLimit: ex.tenantLimit, routing: ex.routing }));
    const position = this.scheduler.queuePosition(ex.id);
    if (position === undefined) return;
    // Queued: say where it stood, and keep a waiting stream alive if asked to.
    ex.res.setHeader('x-relay-queue-position', String(position));
    if (ex.streaming && this.opts.queueKeepaliveMs > 0) this.keepAliveWhileQueued(ex);
  }

  private keepAliveWhileQueued(ex: Exchange): void {
    // Runs until the response closes: a request requeued after its worker died waits again.
    const timer = setInterval(() => {
      if (ex.ended) return clearInterval(timer);
      if (this.scheduler.requestState(ex.id) === 'queued' && !ex.answered) ex.keepAlive(this.scheduler.queuePosition(ex.id));
    }, this.opts.queueKeepaliveMs);
    timer.unref();
    ex.res.once('close', () => clearInterval(timer));
  }

  // ---------- worker side ----------

  onRegister(session: WorkerSession, reg: SanitizedRegistration): void {
    if (this.opts.credentialValid && !this.opts.credentialValid(session)) {
      return session.close(CloseCode.policy, 'worker token revoked', 'credential_revoked');
    }
    session.id = `w_${this.idPrefix}${(++this.nextId).toString(36)}`;
    this.sessions.set(session.id, session);
    session.send({
      type: 'register_ack',
      worker_id: session.id,
      models: reg.models,
      ...(reg.warnings.length ? { warnings: reg.warnings } : {}),
      protocol_version: PROTOCOL_VERSION,
      ...(reg.negotiates ? { extensions: [...reg.extensions] } : {}),
      ...(reg.extensions.has('flow-control') ? { flow_window_bytes: FLOW_WINDOW_BYTES } : {}),
    });
    this.log.info(
      { worker: reg.name, worker_id: session.id, peer: session.peer, ...modelFields(reg.models), max_concurrent: reg.maxConcurrent, extensions: [...reg.extensions] },
      'worker registered',
    );
    const cmds = this.scheduler.registerWorker(
      { id: session.id, name: reg.name, models: reg.models, maxConcurrent: reg.maxConcurrent, cancelAck: reg.extensions.has('cancel-ack') },
      now(),
    );
    this.telemetry.workerRegistered(session.id, reg.name);
    if (this.closing) this.sendShutdown(session);
    this.run(cmds);
  }

  onMessage(session: WorkerSession, msg: WorkerMessage): void {
    const t = now();
    this.scheduler.workerSeen(session.id, t);
    session.lastSeen = t;
    switch (msg.type) {
      case 'response_chunk': {
        const ex = this.owned(session, msg.request_id, msg.type);
        if (!ex) return;
        if (ex.flow && ex.flow.unacknowledged >= FLOW_OVERDRAFT_BYTES) {
          // It negotiated flow-control and ignores it: nothing it sends can be trusted to stop.
          this.log.warn({ worker: session.name, worker_id: session.id, request_id: ex.id, unacknowledged: ex.flow.unacknowledged }, 'worker sent beyond its flow-control credit');
          session.close(CloseCode.policy, 'sent beyond flow-control credit');
          return;
        }
        const first = !ex.answered;
        ex.writeChunk(msg.chunk);
        if (first) this.scheduler.markStarted(ex.id);
        this.scheduler.touch(ex.id, t);
        // Bound what a stalled client makes us hold (a base-protocol worker can't be slowed down).
        if (ex.res.writableLength > STREAM_BUFFER_CAP) this.abandon(ex, t);
        return;
      }
      case 'response_complete': {
        const owner = this.scheduler.ownership(session.id, msg.request_id);
        if (owner === 'foreign') return this.foreign(session, msg.request_id, msg.type);
        const ex = owner === 'active' ? this.exchanges.get(msg.request_id) : undefined;
        // A relay-side failure before any byte (a 502-504 instead of an answer) counts against the
        // worker's circuit breaker; the backend's own 4xx and anything after a byte do not.
        const outcome = ex === undefined || msg.status_code === 499 ? 'neutral' : !ex.started && msg.status_code >= 502 && msg.status_code <= 504 ? 'backend_failure' : 'ok';
        if (ex) {
          this.exchanges.delete(ex.id);
          ex.complete(msg);
          this.finished(ex);
        }
        this.run(this.scheduler.complete(msg.request_id, session.id, t, outcome));
        return;
      }
      case 'error': {
        if (msg.request_id === undefined) {
          this.workerWarnings.warn(`error ${session.id}`, { worker: session.name, code: msg.code, message: msg.message.slice(0, 500) }, 'worker reported an error');
          return;
        }
        const ex = this.owned(session, msg.request_id, msg.type);
        if (!ex) return;
        if (msg.code === RequestErrorCode.backendUnavailable) {
          this.log.info({ request_id: ex.id, worker: session.name, message: msg.message.slice(0, 500) }, 'worker backend unavailable: trying another worker');
          const rerouted = this.scheduler.backendUnavailable(ex.id, session.id, msg.message.slice(0, 500), t);
          this.noteRequeue(ex, session.id);
          this.run(rerouted);
          return;
        }
        const retryable = msg.code === RequestErrorCode.busy || msg.code === RequestErrorCode.draining;
        if (msg.code === RequestErrorCode.draining) this.scheduler.drainWorker(session.id, t);
        this.log.info({ request_id: ex.id, worker: session.name, code: msg.code, message: msg.message }, 'worker could not serve request');
        const cmds = this.scheduler.requestFailed(ex.id, session.id, retryable, msg.message, t);
        this.noteRequeue(ex, session.id);
        this.run(cmds);
        return;
      }
      case 'pong':
        if (msg.current_load !== undefined) this.run(this.scheduler.workerLoad(session.id, msg.current_load, t));
        return;
      case 'models_update': {
        const warnings: string[] = [];
        const models = sanitizeModels(msg.models, warnings);
        this.log.info({ worker: session.name, ...modelFields(models), ...(warnings.length ? { warnings } : {}) }, 'worker models updated');
        this.run(this.scheduler.updateModels(session.id, models, t));
        if (session.has('backend-slots') && msg.slot_groups) {
          const groups = slotGroups(msg.slot_groups);
          this.log.info({ worker: session.name, slot_groups: groups.map((g) => ({ models: g.models.slice(0, 10), max_concurrency: g.maxConcurrent })) }, 'worker slot groups');
          this.run(this.scheduler.setSlotGroups(session.id, groups, t));
        }
        return;
      }
      case 'draining':
        this.log.info({ worker: session.name, reason: msg.reason }, 'worker draining');
        this.run(this.scheduler.drainWorker(session.id, t));
        return;
      case 'backend_status': {
        const up = msg.state === 'up';
        const fields = { worker: session.name, worker_id: session.id, ...(msg.reason ? { reason: msg.reason } : {}) };
        if (up) this.log.info(fields, 'worker backend up');
        else this.workerWarnings.warn(`backend ${session.id}`, fields, 'worker backend down');
        this.run(this.scheduler.backendState(session.id, up, msg.reason ?? 'the backend is down', t));
        return;
      }
      case 'register':
        return; // the session rejects a second register before it gets here
      default: {
        const never: never = msg;
        return never;
      }
    }
  }

  onClose(session: WorkerSession): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    const cmds = this.scheduler.workerLost(session.id, now());
    this.noteRequeues(session.id);
    this.telemetry.workerLost(session.id, session.cause ?? 'connection_lost');
    this.run(cmds);
  }

  /** Connected workers with what the admin API shows of each. */
  workers(): WorkerStatus[] {
    return workerStatuses(this.scheduler.workerList(), (id) => this.sessions.get(id), now());
  }

  /** Asks the worker to re-read its backend's models (models_refresh); false if unknown. */
  refreshModels(workerId: string): boolean {
    const session = this.sessions.get(workerId);
    if (!session) return false;
    session.send({ type: 'models_refresh', reason: 'operator request' });
    return true;
  }

  /** A worker token was revoked: every worker using it goes now, its unstarted work requeued. */
  disconnectToken(tokenId: string): number {
    let n = 0;
    for (const s of [...this.sessions.values()]) {
      const c = s.info.credential;
      if (c.kind === 'worker_token' && c.id === tokenId) {
        n++;
        s.close(CloseCode.policy, 'worker token revoked', 'credential_revoked');
      }
    }
    return n;
  }

  /** A client key was revoked: its requests still in flight end now (401, or an error event). */
  /** Requests of this client key being served or waiting now (for the admin API: O(in flight)). */
  inFlightForKey(keyId: string): number {
    let n = 0;
    for (const ex of this.exchanges.values()) if (ex.key?.id === keyId) n++;
    return n;
  }

  endForKey(keyId: string): void {
    const t = now();
    for (const ex of [...this.exchanges.values()]) {
      if (ex.key?.id !== keyId) continue;
      this.exchanges.delete(ex.id);
      ex.fail(new RelayError('invalid_api_key', 'The API key was revoked.'));
      this.finished(ex);
      this.run(this.scheduler.cancel(ex.id, { other: 'api key revoked' }, t));
    }
  }

  /** Routes nothing new to the worker, lets it finish within the drain timeout. */
  drainWorker(workerId: string): boolean {
    const session = this.sessions.get(workerId);
    if (!session) return false;
    this.log.info({ worker: session.name, worker_id: workerId, drain_timeout_secs: Math.ceil(this.opts.drainTimeoutMs / 1000) }, 'draining worker');
    this.run(this.scheduler.drainWorker(workerId, now(), this.opts.drainTimeoutMs));
    this.sendShutdown(session);
    return true;
  }

  // ---------- shutdown ----------

  /** Stop intake, drain workers, resolve when in-flight work finished or the deadline passed. */
  async shutdown(drainTimeoutMs: number): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.run(this.scheduler.stopAccepting());
    for (const session of this.sessions.values()) {
      this.scheduler.drainWorker(session.id, now());
      this.sendShutdown(session);
    }
    if (this.exchanges.size > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, drainTimeoutMs);
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.destroy();
  }

  /** Fail everything now and close every worker. */
  destroy(): void {
    this.closing = true;
    for (const ex of [...this.exchanges.values()]) {
      const wid = this.scheduler.workerOf(ex.id);
      if (wid) {
        this.telemetry.cancelled('server_shutdown');
        this.sessions.get(wid)?.send({ type: 'cancel', request_id: ex.id, reason: 'server_shutdown' });
      }
      this.exchanges.delete(ex.id);
      ex.fail(new RelayError('shutting_down', 'The relay shut down before this request finished.'));
      this.finished(ex);
    }
    for (const session of [...this.sessions.values()]) session.close(CloseCode.normal, 'server shutdown', 'server_shutdown');
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  // ---------- commands ----------

  private run(cmds: Command[]): void {
    for (const c of cmds) this.execute(c);
    this.armTimer();
    if (this.exchanges.size === 0 && this.idleWaiters.length) for (const w of this.idleWaiters.splice(0)) w();
  }

  private execute(c: Command): void {
    switch (c.type) {
      case 'dispatch': {
        const ex = this.exchanges.get(c.requestId);
        const session = this.sessions.get(c.workerId);
        if (!ex || !session) {
          this.log.error({ request_id: c.requestId, worker_id: c.workerId }, 'dispatch without exchange or session');
          return;
        }
        ex.workerId = session.id;
        ex.workerName = session.name;
        ex.dispatchedAt = now();
        ex.route = this.scheduler.routeOf(ex.id);
        ex.matchedBlocks = this.scheduler.matchedBlocksOf(ex.id);
        ex.flow = ex.streaming && session.has('flow-control') ? new FlowCredit(ex.res, (bytes) => session.send({ type: 'credit', request_id: ex.id, bytes })) : undefined;
        // An alias: the worker is asked for the target chosen for it, in the message and the body.
        ex.target = c.target;
        const body = c.target === undefined ? ex.body : ex.bodyAs(c.target);
        const request = { type: 'request', request_id: ex.id, model: c.target ?? ex.model, endpoint_path: ex.endpoint, is_streaming: ex.streaming, body: '', headers: ex.headers } as const;
        // binary-frames: the client's body bytes go as they came, not escaped into a JSON string.
        session.sendRaw(session.has('binary-frames') ? encodeBinary(request, body)! : encode({ ...request, body: (Buffer.isBuffer(body) ? body : Buffer.concat(body)).toString('utf8') }));
        return;
      }
      case 'fail': {
        const ex = this.exchanges.get(c.requestId);
        if (!ex) return;
        this.exchanges.delete(ex.id);
        ex.fail(new RelayError(c.code, c.message));
        this.finished(ex);
        return;
      }
      case 'cancel':
        this.telemetry.cancelled(typeof c.reason === 'string' ? c.reason : 'other');
        this.sessions.get(c.workerId)?.send({ type: 'cancel', request_id: c.requestId, reason: c.reason });
        return;
      case 'ping':
        this.sessions.get(c.workerId)?.send({ type: 'ping', timestamp_unix_ms: Date.now() });
        return;
      case 'close_worker': {
        const session = this.sessions.get(c.workerId);
        this.sessions.delete(c.workerId);
        // The scheduler lost it already (heartbeat or drain deadline) and requeued its work.
        this.noteRequeues(c.workerId);
        session?.close(c.code, c.reason, c.reason.startsWith('heartbeat') ? 'heartbeat_timeout' : 'drain_timeout');
        return;
      }
      default: {
        const never: never = c;
        return never;
      }
    }
  }

  private armTimer(): void {
    const at = this.scheduler.nextDeadline();
    if (at === undefined || at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    // The deadlines are judged after the poll phase (setImmediate), not in the timers phase before
    // it: if this process was held up (a GC pause, a starved or paused VM), the frames that arrived
    // meanwhile are read first, so a worker that kept talking is never taken for silent.
    const t = setTimeout(() => {
      setImmediate(() => {
        if (this.timer !== t) return; // replaced or cleared meanwhile
        this.timerAt = Infinity;
        this.run(this.scheduler.tick(now()));
      });
    }, Math.max(0, at - now()) + 1);
    t.unref();
    this.timer = t;
  }

  /** The client reads too slowly for a worker we can't throttle: end its stream, free the slot. */
  private abandon(ex: Exchange, t: number): void {
    this.exchanges.delete(ex.id);
    ex.fail(new RelayError('client_too_slow', `The client read too slowly; more than ${STREAM_BUFFER_CAP} bytes were waiting for it.`));
    this.finished(ex);
    this.run(this.scheduler.cancel(ex.id, { other: 'client too slow' }, t));
  }

  private sendShutdown(session: WorkerSession): void {
    session.send({ type: 'graceful_shutdown', reason: 'server draining', drain_timeout_secs: Math.ceil(this.opts.drainTimeoutMs / 1000) });
  }

  /** The exchange this worker may write to, or undefined (late messages quietly, foreign ones loudly). */
  private owned(session: WorkerSession, requestId: string, type: string): Exchange | undefined {
    const owner = this.scheduler.ownership(session.id, requestId);
    if (owner === 'active') return this.exchanges.get(requestId);
    if (owner === 'foreign') this.foreign(session, requestId, type);
    return undefined;
  }

  private foreign(session: WorkerSession, requestId: string, type: string): void {
    const fields = { worker: session.name, worker_id: session.id, request_id: requestId, type };
    this.workerWarnings.warn(`foreign ${session.id}`, fields, 'dropped a message for a request this worker was never given');
  }

  private finished(ex: Exchange): void {
    this.telemetry.requestFinished(ex, now());
  }

  /** After the scheduler lost a worker: its unstarted requests it kept are requeued. */
  private noteRequeues(workerId: string): void {
    for (const ex of this.exchanges.values()) if (ex.workerId === workerId) this.noteRequeue(ex, workerId);
  }

  private noteRequeue(ex: Exchange, fromWorkerId: string): void {
    if (ex.workerId !== fromWorkerId || ex.started || this.scheduler.requestState(ex.id) === undefined) return;
    if (this.scheduler.workerOf(ex.id) === fromWorkerId) return;
    ex.workerId = undefined;
    this.telemetry.requeued(ex, fromWorkerId, ex.workerName);
  }
}

/** Log fields for a model list: a count and the first few names, never a worker's whole list. */
function modelFields(models: string[]): { models: string[]; model_count: number } {
  return { models: models.length > LOGGED_MODELS ? models.slice(0, LOGGED_MODELS) : models, model_count: models.length };
}

/** A worker's slot groups, bounded like its registration: at most 64 groups of at most 256 names
 * (the scheduler caps each at the worker's own limit). */
function slotGroups(groups: { models: string[]; max_concurrency: number }[]): SlotGroupSpec[] {
  return groups.slice(0, 64).map((g) => ({ models: g.models.slice(0, MAX_MODELS).filter((m) => m.length <= 256), maxConcurrent: g.max_concurrency }));
}
