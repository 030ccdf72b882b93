// The worker daemon: keeps one outbound WebSocket to the server alive (reconnect with backoff and
// jitter, silence watchdog), registers its models, runs requests with a local concurrency limit,
// and drains on request. Connection states: connecting → registering → ready → (closed → connecting).
import type { Agent, ClientRequest } from 'node:http';
import WebSocket from 'ws';
import {
  CloseCode,
  EXTENSIONS,
  INFERENCE_ROUTES,
  PROTOCOL_VERSION,
  RequestErrorCode,
  decodeBinaryServerMessage,
  decodeServerMessage,
  encode,
  encodeBinary,
  sendBatched,
  type Decoded,
  type Extension,
  type MessageOf,
  type ServerMessage,
  type WorkerMessage,
} from '../protocol/index.js';
import type { Logger } from '../log.js';
import { LogLimiter } from '../log-limiter.js';
import { BackendClient } from './backend-client.js';
import { BackendHealth, describeFailure } from './backend-health.js';
import type { WorkerConfig } from './config.js';
import { describe, isLoopback, redact, refusalHint, tunnelAgent, tunnelFailure } from './egress-proxy.js';
import { discoverModels } from './model-discovery.js';
import { ModelNames, parseModelEntries, parseModelMap } from './model-names.js';
import { workerConnectUrl } from './relay-url.js';
import { RequestRunner, type RunnerOptions } from './request-runner.js';

export type AgentState = 'connecting' | 'registering' | 'ready' | 'stopped';

export class WorkerAgent {
  state: AgentState = 'connecting';
  private ws: WebSocket | undefined;
  private readonly backend: BackendClient;
  /** Carries the WebSocket through the egress proxy; undefined = direct. */
  private readonly tunnel: Agent | undefined;
  /** The proxy's answer to each attempt's CONNECT (HTTP proxies only). */
  private readonly tunnelStatus = new WeakMap<ClientRequest, number>();
  private readonly runners = new Map<string, RequestRunner>();
  private extensions = new Set<Extension>();
  private flowWindow: number | undefined;
  /** What every request runner of this session shares (set at register_ack). */
  private runnerOptions: RunnerOptions | undefined;
  /** What we advertise and what the backend calls each (current: --models auto re-reads it). */
  private names: ModelNames;
  /** The backend's own names, as last discovered (--models auto). */
  private backendModels: string[] = [];
  private readonly modelMap: ReadonlyMap<string, readonly string[]>;
  private unmatchedLogged = '';
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private lastHeard = 0;
  /** Why we take no new work: our own SIGTERM drain (final), or the server's graceful_shutdown
   * (lasts until that session ends). */
  private draining: 'self' | 'server' | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly stoppedPromise: Promise<void>;
  private resolveStopped!: () => void;
  /** Backend paths a server may ask for: the inference routes and --extra-endpoints, nothing else. */
  private readonly endpoints: ReadonlySet<string>;
  /** A misbehaving server can trigger a warning per frame: those go through this. */
  private readonly serverWarnings: LogLimiter;
  private readonly health: BackendHealth;

  constructor(
    private readonly cfg: WorkerConfig,
    private readonly log: Logger,
  ) {
    this.backend = new BackendClient(cfg.backendUrl, Math.max(2, cfg.maxConcurrency * 2), cfg.egress.backend.proxy);
    this.endpoints = new Set([...INFERENCE_ROUTES, ...cfg.extraEndpoints]);
    this.serverWarnings = new LogLimiter(log);
    this.health = new BackendHealth(this.backend, cfg.health, (up, reason) => this.onBackendChange(up, reason));
    const relayProxy = cfg.egress.relay.proxy;
    this.tunnel = relayProxy ? tunnelAgent(relayProxy) : undefined;
    this.tunnel?.on('proxyConnect', (connect: { statusCode: number }, req: ClientRequest) => this.tunnelStatus.set(req, connect.statusCode));
    this.stoppedPromise = new Promise((r) => (this.resolveStopped = r));
    this.modelMap = parseModelMap(cfg.modelMap);
    this.names = cfg.models === 'auto' ? ModelNames.discovered([], this.modelMap) : ModelNames.listed(parseModelEntries(cfg.models));
  }

  private get models(): string[] {
    return this.names.advertised;
  }

  get load(): number {
    return this.runners.size;
  }

  /** Resolves when the agent stopped for good (drain finished or stop()). */
  get stopped(): Promise<void> {
    return this.stoppedPromise;
  }

  async start(): Promise<void> {
    const { relay, backend } = this.cfg.egress;
    this.log.info({ relay: describe(relay), backend: describe(backend) }, 'egress proxies');
    if (backend.proxy && isLoopback(new URL(this.cfg.backendUrl))) {
      this.log.warn({ backend: this.cfg.backendUrl, proxy: redact(backend.proxy) }, `the local backend is reached through ${backend.reason}; add its host to NO_PROXY unless that is intended`);
    }
    // A backend that isn't up yet (a large model still loading) is probed with a short backoff, and
    // its models are registered the moment it answers, not at the next refresh.
    await this.health.probe();
    if (this.cfg.models === 'auto') {
      if (this.health.isUp) this.names = this.namesFrom(await this.discover());
      this.scheduleRefresh();
    }
    this.connect();
  }

  /**
   * Our own drain (SIGTERM): announce it, take nothing new, finish in-flight work within the drain
   * timeout, close with 1000 and stop.
   */
  async drain(): Promise<void> {
    if (this.draining === 'self') return this.stoppedPromise;
    this.draining = 'self';
    this.log.info({ in_flight: this.runners.size, drain_timeout_ms: this.cfg.drainTimeoutMs }, 'draining');
    if (this.extensions.has('drain-notice')) this.send({ type: 'draining', reason: 'worker shutting down' });
    await this.waitIdle(this.cfg.drainTimeoutMs);
    this.stop();
    return this.stoppedPromise;
  }

  /** Stop now: abort every backend call and close. */
  stop(): void {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    for (const r of this.runners.values()) r.cancel();
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.watchdog);
    clearTimeout(this.refreshTimer);
    this.health.stop();
    void this.backend.close().catch(() => {});
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return this.resolveStopped();
    // Resolve once the close handshake is done, so an exiting process still sends its 1000.
    const done = setTimeout(() => this.resolveStopped(), 1000);
    ws.once('close', () => {
      clearTimeout(done);
      this.resolveStopped();
    });
    ws.close(CloseCode.normal, 'worker stopping');
  }

  // ---------- connection ----------

  private connect(): void {
    if (this.state === 'stopped') return;
    this.state = 'connecting';
    const ws = new WebSocket(workerConnectUrl(this.cfg.proxyUrl, this.cfg.provider), {
      headers: { 'x-worker-secret': this.cfg.workerSecret },
      maxPayload: Math.max(this.cfg.maxFrameBytes, 256 * 1024 * 1024),
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
      ...(this.tunnel ? { agent: this.tunnel } : {}),
    });
    this.ws = ws;
    let refused = false;
    let proxyFailed = false;
    let opened = false;
    ws.on('unexpected-response', (req, res) => {
      const tunnel = this.tunnelStatus.get(req);
      if (tunnel !== undefined && tunnel !== 200) {
        // The answer is the proxy's, not the relay's: retry with the usual backoff, never go direct.
        proxyFailed = true;
        const status = res.statusCode ?? 0;
        this.log.warn({ proxy: redact(this.cfg.egress.relay.proxy!), status, reason: res.statusMessage, hint: refusalHint(status) }, 'the egress proxy refused the tunnel to the relay');
        res.resume();
        return ws.terminate();
      }
      refused = res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 429;
      if (res.statusCode === 401) this.log.error({ server: this.cfg.proxyUrl }, 'the server refused the worker secret (401): check --worker-secret');
      else this.log.warn({ server: this.cfg.proxyUrl, status: res.statusCode }, 'the server refused the connection');
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      opened = true;
      this.state = 'registering';
      this.extensions = new Set(); // each session negotiates afresh, in its register_ack
      this.heard();
      ws.send(
        encode({
          type: 'register',
          worker_name: this.cfg.workerName,
          models: this.models,
          max_concurrent: this.cfg.maxConcurrency,
          protocol_version: PROTOCOL_VERSION,
          current_load: this.runners.size,
          extensions: [...EXTENSIONS],
        }),
      );
    });
    ws.on('message', (data, isBinary) => {
      this.heard();
      if (!isBinary) return this.onMessage(decodeServerMessage(data.toString()));
      // Binary frames only once negotiated (binary-frames); a server that sends them otherwise is broken.
      if (this.extensions.has('binary-frames')) this.onMessage(decodeBinaryServerMessage(data as Buffer));
      else this.serverWarnings.warn('binary', {}, 'ignoring a binary frame: binary-frames was not negotiated');
    });
    ws.on('error', (err) => {
      const proxy = this.cfg.egress.relay.proxy;
      // Before the socket opens, through a proxy, a failure is the proxy's or the tunnel's.
      if (proxy && !proxyFailed && !opened) {
        proxyFailed = true;
        this.log.warn({ proxy: redact(proxy), err: err.message }, tunnelFailure(err));
        return;
      }
      this.log.debug({ err: err.message }, 'socket error');
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      clearTimeout(this.watchdog);
      this.watchdog = undefined;
      const wasReady = this.state === 'ready';
      // Work on a lost link can't be delivered: the server requeues or fails it. Stop the GPU.
      for (const r of this.runners.values()) r.cancel();
      if (this.state === 'stopped') return;
      if (wasReady) this.log.warn({ code, reason: reason.toString() }, 'disconnected from server');
      if (this.draining === 'server') this.draining = undefined;
      this.scheduleReconnect(refused);
    });
  }

  private scheduleReconnect(refused: boolean): void {
    this.state = 'connecting';
    let delay: number;
    if (refused) delay = this.cfg.authRetryMs;
    else {
      const base = Math.min(this.cfg.reconnectMaxMs, this.cfg.reconnectMinMs * 2 ** this.attempt);
      delay = base / 2 + Math.random() * (base / 2); // jitter: spread a fleet's reconnects
      this.attempt++;
    }
    this.log.info({ in_ms: Math.round(delay) }, 'reconnecting');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Any frame from the server proves the link alive; silence past the timeout means reconnect. */
  private heard(): void {
    this.lastHeard = Date.now();
    if (this.watchdog) return;
    const timeout = this.cfg.heartbeatTimeoutMs;
    // Judged after the poll phase (setImmediate): if this process was held up, the server's frames
    // that arrived meanwhile are read (and heard) before its silence is measured.
    const arm = (ms: number): void => {
      const t = setTimeout(() => {
        setImmediate(() => {
          if (this.watchdog !== t) return; // cleared meanwhile: the connection closed
          const silent = Date.now() - this.lastHeard;
          if (silent < timeout) return arm(timeout - silent);
          this.watchdog = undefined;
          this.log.warn({ silent_ms: silent }, 'server silent past the heartbeat timeout; reconnecting');
          this.ws?.terminate();
        });
      }, ms);
      this.watchdog = t;
    };
    arm(timeout);
  }

  private send(msg: WorkerMessage, bodyBytes?: Buffer): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    // binary-frames: bodies and chunks cross as raw bytes instead of escaped JSON strings.
    if (this.extensions.has('binary-frames')) {
      const frame = encodeBinary(msg, bodyBytes);
      if (frame) return sendBatched(this.ws, frame);
    }
    sendBatched(this.ws, encode(bodyBytes && msg.type === 'response_complete' ? { ...msg, body: bodyBytes.toString('utf8') } : msg));
  }

  // ---------- messages ----------

  private onMessage(decoded: Decoded<ServerMessage>): void {
    if (!decoded.ok) {
      this.serverWarnings.warn('malformed', { reason: decoded.reason.slice(0, 300) }, 'ignoring a malformed server message');
      return;
    }
    const msg = decoded.msg;
    switch (msg.type) {
      case 'register_ack':
        this.state = 'ready';
        this.attempt = 0;
        this.extensions = new Set((msg.extensions ?? []).filter((e): e is Extension => (EXTENSIONS as readonly string[]).includes(e)));
        this.flowWindow = this.extensions.has('flow-control') ? msg.flow_window_bytes : undefined;
        this.runnerOptions = {
          backend: this.backend,
          send: (m, bodyBytes) => this.send(m, bodyBytes),
          backendApiKey: this.cfg.backendApiKey,
          maxBodyBytes: this.cfg.maxFrameBytes - 64 * 1024,
          flowWindow: this.flowWindow,
          cancelAck: this.extensions.has('cancel-ack'),
          retryElsewhere: this.extensions.has('backend-health') && this.extensions.has('request-error'),
          backendDown: (reason) => this.health.markDown(reason),
          backendAnswered: () => this.health.markUp(),
        };
        if (msg.warnings?.length) this.log.warn({ warnings: msg.warnings }, 'registration warnings');
        this.log.info({ worker_id: msg.worker_id, models: msg.models.slice(0, 10), model_count: msg.models.length, extensions: [...this.extensions] }, 'registered');
        if (this.draining === 'self' && this.extensions.has('drain-notice')) this.send({ type: 'draining', reason: 'worker shutting down' });
        if (!this.health.isUp && this.extensions.has('backend-health')) this.send({ type: 'backend_status', state: 'down', reason: this.health.reason });
        return;
      case 'request':
        return this.onRequest(msg);
      case 'cancel':
        this.runners.get(msg.request_id)?.cancel();
        return;
      case 'ping':
        this.send({ type: 'pong', current_load: this.runners.size, ...(msg.timestamp_unix_ms !== undefined ? { timestamp_unix_ms: msg.timestamp_unix_ms } : {}) });
        return;
      case 'graceful_shutdown':
        return this.onServerDrain(msg);
      case 'models_refresh':
        void this.refreshModels(true);
        return;
      case 'credit':
        this.runners.get(msg.request_id)?.credit(msg.bytes);
        return;
      default: {
        const never: never = msg;
        return never;
      }
    }
  }

  private onRequest(req: MessageOf<ServerMessage, 'request'>): void {
    if (this.runners.has(req.request_id)) {
      // Running it again would bypass --max-concurrency and orphan the first runner (no cancel could
      // reach it). Not answered per request: that would end the one already running.
      this.serverWarnings.warn('duplicate', { request_id: req.request_id }, 'refused a request whose id is already running');
      this.send({ type: 'error', code: 'duplicate_request_id', message: `request ${req.request_id.slice(0, 64)} is already running on this worker; refused the second` });
      return;
    }
    if (!this.endpoints.has(pathPart(req.endpoint_path))) return this.refuseEndpoint(req);
    if (this.draining || this.state === 'stopped') return this.refuse(req, RequestErrorCode.draining, 'worker is draining');
    if (this.runners.size >= this.cfg.maxConcurrency) {
      return this.refuse(req, RequestErrorCode.busy, `worker is at its limit of ${this.cfg.maxConcurrency} concurrent requests`);
    }
    if (!this.runnerOptions) return; // a request before register_ack: not from a conforming server
    // A public name the backend knows by another: the runner rewrites the body's `model` (one map
    // look-up here when some name is renamed, nothing otherwise).
    const runner = new RequestRunner(req, this.runnerOptions, this.names.rewrites ? this.names.backendFor(req.model) : undefined);
    this.runners.set(runner.id, runner);
    runner.run((outcome) => {
      this.runners.delete(runner.id);
      if (this.log.isLevelEnabled('debug')) this.log.debug({ request_id: runner.id, outcome }, 'request done');
      if (this.runners.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  /** Refuse back to the server, which re-routes it (request-error), or a 503 for a base server. */
  private refuse(req: MessageOf<ServerMessage, 'request'>, code: string, message: string): void {
    this.log.info({ request_id: req.request_id, code }, 'refused a request');
    if (this.extensions.has('request-error')) {
      this.send({ type: 'error', request_id: req.request_id, code, message });
      return;
    }
    const body = JSON.stringify({ error: { message, type: 'server_error', code } });
    this.send({ type: 'response_complete', request_id: req.request_id, status_code: 503, headers: { 'content-type': 'application/json' }, body });
  }

  /** A path this worker does not forward: a 404 in the route's shape, which any server relays. */
  private refuseEndpoint(req: MessageOf<ServerMessage, 'request'>): void {
    const shown = JSON.stringify(req.endpoint_path.slice(0, 200));
    this.serverWarnings.warn('endpoint', { request_id: req.request_id, endpoint_path: req.endpoint_path.slice(0, 200) }, 'refused a request for a path this worker does not forward');
    const message = `This worker does not forward ${shown} to its backend (allowed: the inference routes and --extra-endpoints).`;
    const body = req.endpoint_path.startsWith('/v1/messages')
      ? JSON.stringify({ type: 'error', error: { type: 'not_found_error', message } })
      : JSON.stringify({ error: { message, type: 'invalid_request_error', code: 'endpoint_not_allowed' } });
    this.send({ type: 'response_complete', request_id: req.request_id, status_code: 404, headers: { 'content-type': 'application/json' }, body });
  }

  /** The backend went down or came back: tell the server (backend-health); on recovery re-read the
   * models first, so the server routes the right ones the moment it puts us back in rotation. */
  private onBackendChange(up: boolean, reason: string): void {
    if (!up) {
      this.log.warn({ backend: this.cfg.backendUrl, reason }, 'backend down');
      if (this.extensions.has('backend-health')) this.send({ type: 'backend_status', state: 'down', reason });
      return;
    }
    this.log.info({ backend: this.cfg.backendUrl }, 'backend up');
    void (async () => {
      if (this.cfg.models === 'auto') await this.refreshModels(false);
      if (this.health.isUp && this.extensions.has('backend-health')) this.send({ type: 'backend_status', state: 'up' });
    })();
  }

  private onServerDrain(msg: MessageOf<ServerMessage, 'graceful_shutdown'>): void {
    if (this.draining) return;
    const ms = (msg.drain_timeout_secs ?? this.cfg.drainTimeoutMs / 1000) * 1000;
    this.draining = 'server';
    this.log.info({ reason: msg.reason, drain_timeout_ms: ms }, 'server asked us to drain');
    const ws = this.ws;
    void this.waitIdle(ms).then(() => {
      if (this.ws === ws && this.state !== 'stopped') ws?.close(CloseCode.normal, 'drained');
    });
  }

  private waitIdle(ms: number): Promise<void> {
    if (this.runners.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  // ---------- models ----------

  /** The backend's model names, or the last ones known when it can't be read. */
  private async discover(): Promise<string[]> {
    try {
      const models = await discoverModels(this.backend);
      this.log.info({ models }, 'discovered backend models');
      this.backendModels = models;
      return models;
    } catch (err) {
      this.log.warn({ err: (err as Error).message, backend: this.cfg.backendUrl }, 'could not read the backend model list; will retry');
      if ((err as { code?: string }).code === 'ECONNREFUSED') this.health.markDown(describeFailure(err, this.backend.origin));
      return this.backendModels;
    }
  }

  /** Discovered names renamed by --model-map; a map entry that matches nothing is worth a warning. */
  private namesFrom(backendModels: string[]): ModelNames {
    const names = ModelNames.discovered(backendModels, this.modelMap);
    // (An empty list is a backend not read yet, not one without those models.)
    const unmatched = backendModels.length > 0 ? ModelNames.unmatched(backendModels, this.modelMap) : [];
    if (unmatched.join('\n') !== this.unmatchedLogged) {
      this.unmatchedLogged = unmatched.join('\n');
      if (unmatched.length > 0) this.log.warn({ unmatched, backend_models: backendModels.slice(0, 20) }, '--model-map names models the backend does not list');
    }
    return names;
  }

  private scheduleRefresh(): void {
    if (this.cfg.modelsRefreshMs <= 0) return;
    this.refreshTimer = setTimeout(() => {
      void this.refreshModels(false).finally(() => this.state !== 'stopped' && this.scheduleRefresh());
    }, this.cfg.modelsRefreshMs);
    this.refreshTimer.unref();
  }

  /** Re-reads the list; tells the server when it changed, or always when `force` (models_refresh). */
  private async refreshModels(force: boolean): Promise<void> {
    const before = this.models;
    // Replaced even when the advertised list is the same: a public name may now stand for another
    // backend name.
    if (this.cfg.models === 'auto') this.names = this.namesFrom(await this.discover());
    const next = this.models;
    if (next.join('\n') === before.join('\n')) {
      if (force) this.send({ type: 'models_update', models: next, current_load: this.runners.size });
      return;
    }
    this.log.info({ models: next }, 'models changed');
    this.send({ type: 'models_update', models: next, current_load: this.runners.size });
  }
}

/** The path without its query string. */
function pathPart(endpoint: string): string {
  const q = endpoint.indexOf('?');
  return q < 0 ? endpoint : endpoint.slice(0, q);
}
