#!/usr/bin/env node
// modelrelay-server: the central relay. Flags (each with an env var) come from one table below.
import { createLogger } from '../log.js';
import { startServer } from '../server/index.js';
import { VERSION } from '../version.js';
import { type FlagSpec, helpText, parseFlags, parseListen, runMain } from './flags.js';

export const SERVER_FLAGS: FlagSpec[] = [
  { name: 'listen', env: 'LISTEN_ADDR', kind: 'string', default: '0.0.0.0:8080', help: 'Address for clients and workers (HOST:PORT; port 0 picks a free one).' },
  { name: 'worker-secret', env: 'WORKER_SECRET', kind: 'string', required: true, help: 'Shared secret workers must present in X-Worker-Secret.' },
  { name: 'max-queue-len', env: 'MAX_QUEUE_LEN', kind: 'number', default: 100, help: 'Requests that may wait for a free worker (0 = unlimited); beyond it 429.' },
  { name: 'queue-timeout', env: 'QUEUE_TIMEOUT_SECS', kind: 'number', default: 30, help: 'Seconds a request may wait in the queue before 503 (0 = forever).' },
  { name: 'request-timeout', env: 'REQUEST_TIMEOUT_SECS', kind: 'number', default: 300, help: 'Seconds to wait for a response to start, and longest silence mid-stream, before 504 (0 = none).' },
  { name: 'max-body-bytes', env: 'MAX_BODY_BYTES', kind: 'number', default: 32 * 1024 * 1024, help: 'Largest request body accepted; beyond it 413.' },
  { name: 'max-frame-bytes', env: 'MAX_FRAME_BYTES', kind: 'number', default: 64 * 1024 * 1024, help: 'Largest WebSocket frame a worker may send; beyond it the worker is closed (1009).' },
  { name: 'heartbeat-interval', env: 'HEARTBEAT_INTERVAL_SECS', kind: 'number', default: 15, help: 'Seconds between pings to each worker.' },
  { name: 'heartbeat-timeout', env: 'HEARTBEAT_TIMEOUT_SECS', kind: 'number', default: 45, help: 'Seconds of silence after which a worker is dropped and its work requeued.' },
  { name: 'max-requeues', env: 'MAX_REQUEUES', kind: 'number', default: 3, help: 'Times a request is retried on another worker after its worker is lost.' },
  { name: 'drain-timeout', env: 'DRAIN_TIMEOUT_SECS', kind: 'number', default: 30, help: 'Seconds in-flight requests get to finish on SIGTERM.' },
  { name: 'trust-proxy', env: 'TRUST_PROXY', kind: 'boolean', default: false, help: 'Take the peer address from X-Forwarded-For (only behind your own proxy).' },
  { name: 'log-level', env: 'LOG_LEVEL', kind: 'string', default: 'info', help: 'trace, debug, info, warn, error or silent.' },
];

const SUMMARY = 'one OpenAI/Anthropic-compatible endpoint in front of LLM workers that connect out to it';

void runMain(async () => {
  const flags = parseFlags(SERVER_FLAGS, process.argv.slice(2), process.env);
  if (flags === 'help') return void process.stdout.write(helpText('modelrelay-server', SUMMARY, SERVER_FLAGS));
  if (flags === 'version') return void process.stdout.write(`${VERSION}\n`);
  const { host, port } = parseListen(flags['listen'] as string);
  const secs = (name: string): number => (flags[name] as number) * 1000;
  const log = createLogger(flags['log-level'] as string);
  const server = await startServer(
    {
      host,
      port,
      workerSecret: flags['worker-secret'] as string,
      maxBodyBytes: flags['max-body-bytes'] as number,
      maxFrameBytes: flags['max-frame-bytes'] as number,
      drainTimeoutMs: secs('drain-timeout'),
      trustProxy: flags['trust-proxy'] as boolean,
      logLevel: flags['log-level'] as string,
      scheduler: {
        maxQueueLen: flags['max-queue-len'] as number,
        queueTimeoutMs: secs('queue-timeout'),
        requestTimeoutMs: secs('request-timeout'),
        heartbeatIntervalMs: secs('heartbeat-interval'),
        heartbeatTimeoutMs: secs('heartbeat-timeout'),
        maxRequeues: flags['max-requeues'] as number,
      },
    },
    log,
  );
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
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
});
