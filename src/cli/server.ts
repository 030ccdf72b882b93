#!/usr/bin/env node
// modelrelay-server: the central relay. Flags (each with an env var) come from one table below.
import { createLogger } from '../log.js';
import { ModelAliases, ROUTING_MODES, type RoutingMode } from '../core/index.js';
import { MAX_MODEL_NAME, startServer } from '../server/index.js';
import { VERSION } from '../version.js';
import { UsageError, helpText, listenError, parseCommand, parseListen, runMain } from './flags.js';
import { MIN_SECRET_LENGTH, readWorkerSecret, secretFlag } from './secret.js';
import { SERVER_FLAGS } from './server-flags.js';


const SUMMARY = 'one OpenAI/Anthropic-compatible endpoint in front of LLM workers that connect out to it';

void runMain(async () => {
  const parsed = parseCommand(SERVER_FLAGS, process.argv.slice(2), process.env);
  if (parsed === 'help') return void process.stdout.write(helpText('modelrelay-server', SUMMARY, SERVER_FLAGS));
  if (parsed === 'version') return void process.stdout.write(`${VERSION}\n`);
  const { flags, file } = parsed;
  const { host, port } = parseListen(flags['listen'] as string);
  const argv = process.argv.slice(2);
  const adminToken = secretFlag(flags, 'admin-token')?.value;
  // Without a shared secret workers need worker tokens, which only an admin token can issue.
  const secretGiven = flags['worker-secret'] !== undefined || flags['worker-secret-file'] !== undefined;
  if (!secretGiven && adminToken === undefined) throw new UsageError('missing --worker-secret (or WORKER_SECRET, or --worker-secret-file); it may be left out only with --admin-token, for worker tokens');
  const secret = secretGiven ? readWorkerSecret(flags, argv) : { value: '', warnings: [] };
  if (adminToken !== undefined && adminToken.length < MIN_SECRET_LENGTH) throw new UsageError(`the admin token (--admin-token, ADMIN_TOKEN or --admin-token-file) must be at least ${MIN_SECRET_LENGTH} characters`);
  if (argv.some((a) => a === '--admin-token' || a.startsWith('--admin-token='))) {
    secret.warnings.push('the admin token was given on the command line, where other users of this machine can read it (ps): prefer ADMIN_TOKEN');
  }
  const tlsCert = flags['tls-cert'] as string | undefined;
  const tlsKey = flags['tls-key'] as string | undefined;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new UsageError('give --tls-cert and --tls-key together (or TLS_CERT and TLS_KEY)');
  const secs = (name: string): number => (flags[name] as number) * 1000;
  const modelAliases = flags['model-alias'] as string[];
  try {
    ModelAliases.parse(modelAliases, MAX_MODEL_NAME);
  } catch (e) {
    throw new UsageError(`--model-alias (MODEL_ALIASES): ${(e as Error).message}`);
  }
  const routing = flags['routing'] as string;
  if (!(ROUTING_MODES as readonly string[]).includes(routing)) throw new UsageError(`--routing (ROUTING) must be ${ROUTING_MODES.join(' or ')}, not '${routing}'`);
  const loadFactor = flags['routing-load-factor'] as number;
  if (!(loadFactor >= 1)) throw new UsageError('--routing-load-factor (ROUTING_LOAD_FACTOR) must be a number of at least 1');
  const log = createLogger(flags['log-level'] as string);
  for (const w of [...(file?.warnings ?? []), ...secret.warnings]) log.warn(w);
  if (file) log.info({ config: file.path }, 'config file read');
  const server = await startServer(
    {
      host,
      port,
      workerSecret: secret.value,
      adminToken,
      requireApiKeys: flags['require-api-keys'] as boolean,
      dataDir: flags['data-dir'] as string | undefined,
      metricsPublic: flags['metrics-public'] as boolean,
      corsOrigins: (flags['cors-origins'] as string | undefined) ?? '',
      modelAliases,
      maxBodyBytes: flags['max-body-bytes'] as number,
      maxBufferedBytes: flags['max-buffered-bytes'] as number,
      headerTimeoutMs: Math.max(1000, secs('header-timeout')),
      bodyTimeoutMs: secs('body-timeout'),
      maxConnectionsPerIp: flags['max-connections-per-ip'] as number,
      maxConnections: flags['max-connections'] as number,
      maxHeaderBytes: Math.max(1024, Math.floor(flags['max-header-bytes'] as number)),
      keepAliveTimeoutMs: Math.max(1000, secs('keep-alive-timeout')),
      maxWorkers: Math.floor(flags['max-workers'] as number),
      maxPendingWorkers: Math.floor(flags['max-pending-workers'] as number),
      registerTimeoutMs: Math.max(100, secs('register-timeout')),
      maxWorkerConcurrency: Math.max(1, Math.floor(flags['max-worker-concurrency'] as number)),
      queueKeepaliveMs: secs('queue-keepalive'),
      maxFrameBytes: flags['max-frame-bytes'] as number,
      drainTimeoutMs: secs('drain-timeout'),
      trustProxy: flags['trust-proxy'] as boolean,
      trustedProxyHops: Math.floor(flags['trusted-proxy-hops'] as number),
      tls: tlsCert !== undefined && tlsKey !== undefined ? { certFile: tlsCert, keyFile: tlsKey } : undefined,
      routing: {
        mode: routing as RoutingMode,
        loadFactor,
        maxEntries: Math.max(0, Math.floor(flags['routing-max-entries'] as number)),
        maxBytes: Math.max(0, Math.floor(flags['routing-max-bytes'] as number)),
      },
      scheduler: {
        maxQueueLen: flags['max-queue-len'] as number,
        queueTimeoutMs: secs('queue-timeout'),
        requestTimeoutMs: secs('request-timeout'),
        heartbeatIntervalMs: secs('heartbeat-interval'),
        heartbeatTimeoutMs: secs('heartbeat-timeout'),
        maxRequeues: flags['max-requeues'] as number,
        priorityAgingMs: secs('priority-aging'),
        breakerFailures: Math.floor(flags['breaker-failures'] as number),
        breakerCooldownMs: Math.max(100, secs('breaker-cooldown')),
      },
    },
    log,
  ).catch((err: unknown) => {
    throw listenError(err, host, port, `--listen ${host.includes(':') ? `[${host}]` : host}:PORT (or LISTEN_ADDR)`);
  });
  log.info({ url: server.url, version: VERSION }, 'listening');
  let signals = 0;
  const onSignal = (sig: string): void => {
    if (++signals > 1) {
      log.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal: sig, in_flight: server.relay.inFlight }, 'shutting down: draining in-flight requests');
    void server.shutdown().then(() => {
      log.info('shutdown complete');
      log.flush();
      process.exit(0);
    });
  };
  // SIGHUP re-reads a renewed certificate (systemd's ExecReload); without TLS it keeps its default.
  if (tlsCert !== undefined) process.on('SIGHUP', () => void server.reloadTls());
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
});
