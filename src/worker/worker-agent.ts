// The worker daemon: keeps one outbound WebSocket to the server alive (reconnect with backoff and
// jitter, silence watchdog), registers the models of its backends (one, or several from a config
// file), runs each request on the backend that serves its model within that backend's concurrency
// limit, and drains on request. Connection states: connecting → registering → ready → (closed → connecting).
import type { Agent, ClientRequest } from 'node:http';
import { rootCertificates } from 'node:tls';
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
import type { WorkerConfig } from './config.js';
import { describe, isLoopback, redact, refusalHint, tunnelAgent, tunnelFailure } from './egress-proxy.js';
import { LocalBackend, advertise, route, slotGroups } from './local-backend.js';
import { workerConnectUrl } from './relay-url.js';
import { RequestRunner } from './request-runner.js';

export type AgentState = 'connecting' | 'registering' | 'ready' | 'stopped';

export class WorkerAgent {
  state: AgentState = 'connecting';
  private ws: WebSocket | undefined;
  private readonly backends: LocalBackend[];
  /** The sum of the backends' limits: what the server is told. */
  private readonly maxConcurrency: number;
  /** Carries the WebSocket through the egress proxy; undefined = direct. */
  private readonly tunnel: Agent | undefined;
  /** The proxy's answer to each attempt's CONNECT (HTTP proxies only). */
  private readonly tunnelStatus = new WeakMap<ClientRequest, number>();
  private readonly runners = new Map<string, RequestRunner>();
  private extensions = new Set<Extension>();
  private flowWindow: number | undefined;
  /** What the server was last told: the models, and whether the worker counts as down. */
  private models: string[] = [];
  private reportedDown: string | undefined;
  /** The slot groups last sent (backend-slots), as JSON: a change is sent even when the models did not change. */
  private sentGroups = '[]';
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
  /** How a wss:// relay's certificate is checked (--ca-file, --insecure-skip-verify). */
  private readonly tlsOptions: { ca?: string[]; rejectUnauthorized?: boolean };

  constructor(
    private readonly cfg: WorkerConfig,
    private readonly log: Logger,
  ) {
    if (cfg.backends.length === 0) throw new Error('a worker needs at least one backend');
    this.backends = cfg.backends.map((spec) => new LocalBackend(spec, cfg.health, (b, up, reason) => this.onBackendChange(b, up, reason)));
    this.maxConcurrency = cfg.backends.reduce((n, b) => n + b.maxConcurrency, 0);
    this.endpoints = new Set([...INFERENCE_ROUTES, ...cfg.extraEndpoints]);
    this.serverWarnings = new LogLimiter(log);
    const relayProxy = cfg.relayEgress.proxy;
    this.tunnel = relayProxy ? tunnelAgent(relayProxy) : undefined;
    this.tunnel?.on('proxyConnect', (connect: { statusCode: number }, req: ClientRequest) => this.tunnelStatus.set(req, connect.statusCode));
    this.stoppedPromise = new Promise((r) => (this.resolveStopped = r));
    const t = cfg.relayTls;
    this.tlsOptions = t.insecureSkipVerify ? { rejectUnauthorized: false } : t.ca ? { ca: [...rootCertificates, t.ca] } : {};
  }

  get load(): number {
    return this.runners.size;
  }

  /** Resolves when the agent stopped for good (drain finished or stop()). */
  get stopped(): Promise<void> {
    return this.stoppedPromise;
  }

  async start(): Promise<void> {
    const backendRoutes = [...new Set(this.backends.map((b) => describe(b.spec.egress)))];
    this.log.info({ relay: describe(this.cfg.relayEgress), backend: backendRoutes.join('; ') }, 'egress proxies');
    if (this.cfg.relayTls.insecureSkipVerify) this.log.warn(INSECURE_WARNING);
    for (const b of this.backends) {
      const { proxy, reason } = b.spec.egress;
      if (proxy && isLoopback(new URL(b.url))) {
        this.log.warn({ backend: b.url, proxy: redact(proxy) }, `the local backend is reached through ${reason}; add its host to NO_PROXY unless that is intended`);
      }
    }
    // A backend that isn't up yet (a large model still loading) is probed with a short backoff, and
    // its models are registered the moment it answers, not at the next refresh.
    await Promise.all(this.backends.map((b) => b.health.probe()));
    await Promise.all(this.backends.filter((b) => b.auto && b.health.isUp).map((b) => b.discover(this.log)));
    if (this.backends.length > 1) this.log.info({ backends: this.backends.map((b) => ({ url: b.url, models: b.models, max_concurrency: b.spec.maxConcurrency, up: b.health.isUp })) }, 'backends');
    ({ models: this.models, down: this.reportedDown } = advertise(this.backends));
    if (this.backends.some((b) => b.auto)) this.scheduleRefresh();
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
    for (const r of this.runners.values()) r.cancel(false);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.watchdog);
    clearTimeout(this.refreshTimer);
    for (const b of this.backends) b.close();
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
      ...this.tlsOptions,
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
        this.log.warn({ proxy: redact(this.cfg.relayEgress.proxy!), status, reason: res.statusMessage, hint: refusalHint(status) }, 'the egress proxy refused the tunnel to the relay');
        res.resume();
        return ws.terminate();
      }
      refused = res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 429;
      if (res.statusCode === 401) this.log.error({ server: this.cfg.proxyUrl }, 'the server refused the worker secret (401): check --worker-secret');
      else if (res.statusCode === 400 && workerConnectUrl(this.cfg.proxyUrl, 'x').protocol === 'ws:') {
        this.log.warn({ server: this.cfg.proxyUrl, status: 400 }, 'the server refused the connection; if it serves TLS, use https:// (or wss://) in --proxy-url');
      } else this.log.warn({ server: this.cfg.proxyUrl, status: res.statusCode }, 'the server refused the connection');
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      opened = true;
      if (this.cfg.relayTls.insecureSkipVerify && ws.url.startsWith('wss:')) this.log.warn({ server: this.cfg.proxyUrl }, INSECURE_WARNING);
      this.state = 'registering';
      this.extensions = new Set(); // each session negotiates afresh, in its register_ack
      this.heard();
      ws.send(
        encode({
          type: 'register',
          worker_name: this.cfg.workerName,
          models: this.models,
          max_concurrent: this.maxConcurrency,
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
      const proxy = this.cfg.relayEgress.proxy;
      // Before the socket opens, through a proxy, a failure is the proxy's or the tunnel's.
      if (proxy && !proxyFailed && !opened) {
        proxyFailed = true;
        this.log.warn({ proxy: redact(proxy), err: err.message }, tunnelFailure(err));
        return;
      }
      const tlsProblem = opened ? undefined : relayTlsProblem(err);
      if (tlsProblem) return void this.log.error({ server: this.cfg.proxyUrl, code: (err as { code?: string }).code, err: err.message }, tlsProblem);
      this.log.debug({ err: err.message }, 'socket error');
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      clearTimeout(this.watchdog);
      this.watchdog = undefined;
      const wasReady = this.state === 'ready';
      // Work on a lost link can't be delivered: the server requeues or fails it. Stop the GPU.
      for (const r of this.runners.values()) r.cancel(false);
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
        for (const b of this.backends) {
          b.runnerOptions = {
            backend: b.client,
            send: (m, bodyBytes) => this.send(m, bodyBytes),
            backendApiKey: b.spec.apiKey,
            maxBodyBytes: this.cfg.maxFrameBytes - 64 * 1024,
            flowWindow: this.flowWindow,
            cancelAck: this.extensions.has('cancel-ack'),
            retryElsewhere: this.extensions.has('backend-health') && this.extensions.has('request-error'),
            backendDown: (reason) => b.health.markDown(reason),
            backendAnswered: () => b.health.markUp(),
          };
        }
        if (msg.warnings?.length) this.log.warn({ warnings: msg.warnings }, 'registration warnings');
        this.log.info({ worker_id: msg.worker_id, models: msg.models.slice(0, 10), model_count: msg.models.length, extensions: [...this.extensions] }, 'registered');
        if (this.draining === 'self' && this.extensions.has('drain-notice')) this.send({ type: 'draining', reason: 'worker shutting down' });
        if (this.reportedDown !== undefined && this.extensions.has('backend-health')) this.send({ type: 'backend_status', state: 'down', reason: this.reportedDown });
        // backend-slots: say which models share which backend's slots (a lone backend has none to say).
        if (this.extensions.has('backend-slots') && this.backends.length > 1) this.publish(true);
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
    if (this.runners.size >= this.maxConcurrency) {
      return this.refuse(req, RequestErrorCode.busy, `worker is at its limit of ${this.maxConcurrency} concurrent requests`);
    }
    const backend = route(this.backends, req.model);
    if (backend === 'busy') return this.refuse(req, RequestErrorCode.busy, `every backend serving '${req.model.slice(0, 256)}' on this worker is at its concurrency limit`);
    if (!backend) return this.refuseModel(req);
    if (!backend.runnerOptions) return; // a request before register_ack: not from a conforming server
    // A public name the backend knows by another: the runner rewrites the body's `model` (one map
    // look-up here when some name is renamed, nothing otherwise).
    const runner = new RequestRunner(req, backend.runnerOptions, backend.names.rewrites ? backend.names.backendFor(req.model) : undefined);
    this.runners.set(runner.id, runner);
    backend.running++;
    runner.run((outcome) => {
      this.runners.delete(runner.id);
      backend.running--;
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

  /** A model no backend of this worker serves (its lists changed meanwhile): 404 in the route's shape. */
  private refuseModel(req: MessageOf<ServerMessage, 'request'>): void {
    const message = `No backend of this worker serves the model ${JSON.stringify(req.model.slice(0, 256))}.`;
    const body = req.endpoint_path.startsWith('/v1/messages')
      ? JSON.stringify({ type: 'error', error: { type: 'not_found_error', message } })
      : JSON.stringify({ error: { message, type: 'invalid_request_error', code: 'model_not_found' } });
    this.send({ type: 'response_complete', request_id: req.request_id, status_code: 404, headers: { 'content-type': 'application/json' }, body });
  }

  /** A backend went down or came back. On recovery an 'auto' backend's models are re-read first, so
   * the server routes the right ones the moment they are back in rotation. */
  private onBackendChange(backend: LocalBackend, up: boolean, reason: string): void {
    if (!up) this.log.warn({ backend: backend.url, reason }, 'backend down');
    else this.log.info({ backend: backend.url }, 'backend up');
    void (async () => {
      if (up && backend.auto) await backend.discover(this.log);
      if (backend.health.isUp === up) this.publish(false);
    })();
  }

  /**
   * Tells the server what changed: the advertised models (a down backend's withdrawn) and, with
   * backend-health, whether the worker as a whole is down. Down is said before the models change and
   * up after, so the server never routes to a backend in between.
   */
  private publish(force: boolean): void {
    const next = advertise(this.backends);
    const health = this.extensions.has('backend-health');
    const wasDown = this.reportedDown;
    this.reportedDown = next.down;
    if (health && next.down !== undefined && wasDown === undefined) this.send({ type: 'backend_status', state: 'down', reason: next.down });
    const groups = this.extensions.has('backend-slots') ? slotGroups(this.backends) : undefined;
    const groupsKey = JSON.stringify(groups ?? []);
    if (force || next.models.join('\n') !== this.models.join('\n') || groupsKey !== this.sentGroups) {
      if (next.models.join('\n') !== this.models.join('\n')) this.log.info({ models: next.models }, 'models changed');
      this.models = next.models;
      this.sentGroups = groupsKey;
      this.send({ type: 'models_update', models: next.models, current_load: this.runners.size, ...(groups ? { slot_groups: groups } : {}) });
    }
    if (health && next.down === undefined && wasDown !== undefined) this.send({ type: 'backend_status', state: 'up' });
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

  private scheduleRefresh(): void {
    if (this.cfg.modelsRefreshMs <= 0) return;
    this.refreshTimer = setTimeout(() => {
      void this.refreshModels(false).finally(() => this.state !== 'stopped' && this.scheduleRefresh());
    }, this.cfg.modelsRefreshMs);
    this.refreshTimer.unref();
  }

  /** Re-reads the 'auto' backends' lists; tells the server when they changed, or always when
   * `force` (models_refresh). */
  private async refreshModels(force: boolean): Promise<void> {
    await Promise.all(this.backends.filter((b) => b.auto).map((b) => b.discover(this.log)));
    this.publish(force);
  }
}

const INSECURE_WARNING = "TLS certificate verification is OFF (--insecure-skip-verify): anyone on the path to the relay can read and change the traffic, the worker secret included";

const UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE',
]);

/** One line saying what to do about a TLS failure before the WebSocket opened, or undefined. */
function relayTlsProblem(err: Error): string | undefined {
  const code = (err as { code?: string }).code ?? '';
  if (UNTRUSTED_CODES.has(code)) return "refused the relay: its TLS certificate is not signed by a CA this worker trusts; give the CA's certificate with --ca-file (retrying)";
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return "refused the relay: its TLS certificate is for another host name than --proxy-url's (retrying)";
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return "refused the relay: its TLS certificate is outside its validity dates (retrying)";
  if (code === 'EPROTO' || code.startsWith('ERR_SSL_')) return 'could not speak TLS with the relay; if it serves plain HTTP, use http:// in --proxy-url (retrying)';
  return undefined;
}

/** The path without its query string. */
function pathPart(endpoint: string): string {
  const q = endpoint.indexOf('?');
  return q < 0 ? endpoint : endpoint.slice(0, q);
}
