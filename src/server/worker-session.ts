// One connected worker on the server side: the register handshake, frame decoding, and sending.
// States: awaiting_register → registered → closed. Every inbound frame is validated by the codec;
// a malformed frame or an unexpected message closes this worker with 1002 and nothing else.
import type { WebSocket } from 'ws';
import {
  CloseCode,
  EXTENSIONS,
  PROTOCOL_VERSION,
  decodeBinaryWorkerMessage,
  decodeWorkerMessage,
  encode,
  sendBatched,
  type Extension,
  type MessageOf,
  type ServerMessage,
  type WorkerMessage,
} from '../protocol/index.js';
import type { Logger } from '../log.js';
import { MAX_MODEL_NAME } from './config.js';
import type { WorkerCredential } from '../auth/index.js';
import type { DisconnectCause } from '../telemetry/index.js';

export type SessionState = 'awaiting_register' | 'registered' | 'closed';

export interface SessionHandlers {
  /** Returns the worker id the scheduler knows it by, and the sanitised models. */
  onRegister(session: WorkerSession, reg: SanitizedRegistration): void;
  onMessage(session: WorkerSession, msg: WorkerMessage): void;
  onClose(session: WorkerSession): void;
}

/** How the worker got in, for the admin view and for cutting it off when its token is revoked. */
export interface ConnectionInfo {
  peer: string;
  provider: string;
  credential: WorkerCredential;
}

export interface SanitizedRegistration {
  name: string;
  models: string[];
  maxConcurrent: number;
  extensions: Set<Extension>;
  /** The worker sent an `extensions` field: it negotiates, so the ack lists what we accept. */
  negotiates: boolean;
  warnings: string[];
}

// Registration caps: a worker's claims are bounded (what it claims is also what /v1/models and the
// 404 for an unknown model repeat to anyone who asks).
export const MAX_MODELS = 256;
export const MAX_WORKER_NAME = 128;

export interface SessionOptions {
  registerTimeoutMs: number;
  /** The most concurrent requests a registration may claim (--max-worker-concurrency). */
  maxConcurrent: number;
}

export class WorkerSession {
  state: SessionState = 'awaiting_register';
  id = '';
  name = '';
  extensions = new Set<Extension>();
  /** The protocol version the worker announced (undefined: it sent none, so the base one). */
  protocolVersion: string | undefined;
  readonly connectedAt = Date.now();
  /** performance.now() of its last frame (the relay writes it). */
  lastSeen = performance.now();
  /** Why the connection ended, once it has. */
  cause: DisconnectCause | undefined;
  readonly peer: string;
  private registerTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly info: ConnectionInfo,
    private readonly handlers: SessionHandlers,
    private readonly log: Logger,
    private readonly options: SessionOptions,
  ) {
    this.peer = info.peer;
    this.registerTimer = setTimeout(() => this.close(CloseCode.protocolError, 'register expected'), options.registerTimeoutMs);
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    ws.on('close', (code, reason) => this.onSocketClose(code, reason.toString()));
    ws.on('error', (err) => this.log.warn({ worker: this.name || this.peer, err: err.message }, 'worker socket error'));
  }

  has(ext: Extension): boolean {
    return this.extensions.has(ext);
  }

  send(msg: ServerMessage): void {
    if (this.state === 'closed') return;
    sendBatched(this.ws, encode(msg));
  }

  /** Sends a pre-encoded frame: text, or binary with the binary-frames extension. */
  sendRaw(frame: string | Buffer): void {
    if (this.state !== 'closed') sendBatched(this.ws, frame);
  }

  close(code: number, reason: string, cause: DisconnectCause = 'protocol_error'): void {
    if (this.state === 'closed') return;
    this.cause ??= cause;
    this.log.info({ worker: this.name || this.peer, code, reason }, 'closing worker connection');
    this.ws.close(code, reason.slice(0, 120));
    this.onSocketClose(code, reason);
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    if (isBinary && !this.has('binary-frames')) return this.close(CloseCode.protocolError, 'binary frames need the binary-frames extension');
    const decoded = isBinary ? decodeBinaryWorkerMessage(data) : decodeWorkerMessage(data.toString('utf8'));
    if (!decoded.ok) {
      this.log.warn({ worker: this.name || this.peer, reason: decoded.reason }, 'protocol violation');
      return this.close(decoded.closeCode, decoded.reason);
    }
    const msg = decoded.msg;
    if (this.state === 'awaiting_register') {
      if (msg.type !== 'register') return this.close(CloseCode.protocolError, `expected register, got ${msg.type}`);
      if (msg.protocol_version !== undefined && msg.protocol_version !== PROTOCOL_VERSION) {
        return this.close(CloseCode.protocolError, `unsupported protocol_version ${msg.protocol_version}; this server speaks ${PROTOCOL_VERSION}`);
      }
      clearTimeout(this.registerTimer);
      this.protocolVersion = msg.protocol_version;
      const reg = sanitize(msg, this.options.maxConcurrent);
      this.name = reg.name;
      this.extensions = reg.extensions;
      this.state = 'registered';
      this.handlers.onRegister(this, reg);
      return;
    }
    if (msg.type === 'register') return this.close(CloseCode.protocolError, 'register sent twice');
    this.handlers.onMessage(this, msg);
  }

  private onSocketClose(code: number, reason: string): void {
    if (this.state === 'closed') return;
    const wasRegistered = this.state === 'registered';
    this.state = 'closed';
    this.cause ??= code === 1000 || code === 1001 ? 'closed_by_worker' : code >= 1002 && code <= 1009 ? 'protocol_error' : 'connection_lost';
    clearTimeout(this.registerTimer);
    if (wasRegistered) {
      this.log.info({ worker: this.name, worker_id: this.id, code, reason }, 'worker disconnected');
      this.handlers.onClose(this);
    }
  }
}

export function sanitizeModels(models: string[], warnings: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  let tooLong = 0;
  let overCount = 0;
  for (const raw of models) {
    const m = raw.trim();
    if (!m || seen.has(m)) continue;
    if (m.length > MAX_MODEL_NAME) {
      tooLong++;
      continue;
    }
    if (out.length >= MAX_MODELS) {
      overCount++;
      continue;
    }
    seen.add(m);
    out.push(m);
  }
  // One warning per kind, with a count: a list of 10,000 bad names must not become 10,000 warnings.
  if (tooLong) warnings.push(`${tooLong} model name(s) longer than ${MAX_MODEL_NAME} characters dropped`);
  if (overCount) warnings.push(`only the first ${MAX_MODELS} models were accepted (${overCount} more dropped)`);
  return out;
}

function sanitize(msg: MessageOf<WorkerMessage, 'register'>, maxConcurrentCap: number): SanitizedRegistration {
  const warnings: string[] = [];
  let name = msg.worker_name.trim() || 'worker';
  if (name.length > MAX_WORKER_NAME) {
    name = name.slice(0, MAX_WORKER_NAME);
    warnings.push(`worker_name truncated to ${MAX_WORKER_NAME} characters`);
  }
  const models = sanitizeModels(msg.models, warnings);
  let maxConcurrent = msg.max_concurrent;
  if (maxConcurrent < 1) {
    maxConcurrent = 1;
    warnings.push('max_concurrent raised to 1');
  } else if (maxConcurrent > maxConcurrentCap) {
    maxConcurrent = maxConcurrentCap;
    warnings.push(`max_concurrent capped at ${maxConcurrentCap} (the server's --max-worker-concurrency)`);
  }
  const offered = new Set(msg.extensions ?? []);
  const extensions = new Set(EXTENSIONS.filter((e) => offered.has(e)));
  return { name, models, maxConcurrent, extensions, negotiates: msg.extensions !== undefined, warnings };
}
