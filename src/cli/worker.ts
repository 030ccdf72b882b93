#!/usr/bin/env node
// modelrelay-worker: runs on a GPU box, connects out to the server and serves its local backend.
import { hostname } from 'node:os';
import { createLogger } from '../log.js';
import { WorkerAgent, DEFAULT_WORKER_CONFIG } from '../worker/index.js';
import { VERSION } from '../version.js';
import { type FlagSpec, UsageError, helpText, parseFlags, runMain } from './flags.js';

export const WORKER_FLAGS: FlagSpec[] = [
  { name: 'proxy-url', env: 'PROXY_URL', kind: 'string', required: true, help: 'The server to connect to, e.g. http://relay.example:8080 (https → wss).' },
  { name: 'worker-secret', env: 'WORKER_SECRET', kind: 'string', required: true, help: 'Shared secret the server expects.' },
  { name: 'backend-url', env: 'BACKEND_URL', kind: 'string', default: 'http://127.0.0.1:8000', help: 'The local OpenAI-compatible backend (llama-server, Ollama, vLLM, ...).' },
  { name: 'models', env: 'MODELS', kind: 'string', default: 'auto', help: "Comma-separated model names, or 'auto' (or '*') to read them from the backend." },
  { name: 'worker-name', env: 'WORKER_NAME', kind: 'string', help: 'Name shown in logs and the dashboard (default: the host name).' },
  { name: 'max-concurrency', env: 'MAX_CONCURRENCY', kind: 'number', default: DEFAULT_WORKER_CONFIG.maxConcurrency, help: 'Backend calls run at once; the worker never exceeds it.' },
  { name: 'backend-api-key', env: 'BACKEND_API_KEY', kind: 'string', help: "Sent to the backend as 'Authorization: Bearer …' (e.g. vLLM --api-key)." },
  { name: 'provider', env: 'PROVIDER', kind: 'string', default: DEFAULT_WORKER_CONFIG.provider, help: 'Provider label sent to the server.' },
  { name: 'models-refresh', env: 'MODELS_REFRESH_SECS', kind: 'number', default: DEFAULT_WORKER_CONFIG.modelsRefreshMs / 1000, help: "Seconds between re-reads of the backend's models with --models auto (0 = never)." },
  { name: 'heartbeat-timeout', env: 'HEARTBEAT_TIMEOUT_SECS', kind: 'number', default: DEFAULT_WORKER_CONFIG.heartbeatTimeoutMs / 1000, help: 'Reconnect after hearing nothing from the server for this long.' },
  { name: 'drain-timeout', env: 'DRAIN_TIMEOUT_SECS', kind: 'number', default: DEFAULT_WORKER_CONFIG.drainTimeoutMs / 1000, help: 'Seconds in-flight requests get to finish on SIGTERM.' },
  { name: 'max-frame-bytes', env: 'MAX_FRAME_BYTES', kind: 'number', default: DEFAULT_WORKER_CONFIG.maxFrameBytes, help: "Largest frame to send; a bigger backend answer fails with 502 instead of breaking the link." },
  { name: 'log-level', env: 'LOG_LEVEL', kind: 'string', default: 'info', help: 'trace, debug, info, warn, error or silent.' },
];

const SUMMARY = 'connects out to a modelrelay-server and serves requests from a local LLM backend';

void runMain(async () => {
  const flags = parseFlags(WORKER_FLAGS, process.argv.slice(2), process.env);
  if (flags === 'help') return void process.stdout.write(helpText('modelrelay-worker', SUMMARY, WORKER_FLAGS));
  if (flags === 'version') return void process.stdout.write(`${VERSION}\n`);
  const proxyUrl = flags['proxy-url'] as string;
  if (!/^(https?|wss?):\/\//.test(proxyUrl)) throw new UsageError(`--proxy-url must start with http:// or https://, got '${proxyUrl}'`);
  const modelsFlag = (flags['models'] as string).trim();
  const models = modelsFlag === 'auto' || modelsFlag === '*' || modelsFlag === '' ? 'auto' : modelsFlag.split(',').map((m) => m.trim()).filter(Boolean);
  const maxConcurrency = Math.floor(flags['max-concurrency'] as number);
  if (maxConcurrency < 1) throw new UsageError('--max-concurrency must be at least 1');
  const log = createLogger(flags['log-level'] as string);
  const agent = new WorkerAgent(
    {
      ...DEFAULT_WORKER_CONFIG,
      proxyUrl,
      workerSecret: flags['worker-secret'] as string,
      backendUrl: flags['backend-url'] as string,
      models,
      workerName: (flags['worker-name'] as string | undefined) ?? hostname(),
      maxConcurrency,
      backendApiKey: flags['backend-api-key'] as string | undefined,
      provider: flags['provider'] as string,
      modelsRefreshMs: (flags['models-refresh'] as number) * 1000,
      heartbeatTimeoutMs: (flags['heartbeat-timeout'] as number) * 1000,
      drainTimeoutMs: (flags['drain-timeout'] as number) * 1000,
      maxFrameBytes: flags['max-frame-bytes'] as number,
      logLevel: flags['log-level'] as string,
    },
    log,
  );
  let signals = 0;
  const onSignal = (sig: string): void => {
    if (++signals > 1) {
      log.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(1);
    }
    void agent.drain().then(() => {
      log.info('drained; exiting');
      log.flush();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  await agent.start();
});
