#!/usr/bin/env node
// modelrelay-worker: runs on a GPU box, connects out to the server and serves its local backend.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createLogger } from '../log.js';
import { WorkerAgent, DEFAULT_WORKER_CONFIG, chooseEgress, workerConnectUrl, type ProxyChoice } from '../worker/index.js';
import { VERSION } from '../version.js';
import { UsageError, helpText, parseCommand, runMain } from './flags.js';
import { WORKER_FLAGS } from './worker-flags.js';
import { readWorkerSecret } from './secret.js';
import { BACKENDS_KEY, workerBackends } from './worker-backends.js';
import { endpointProblem } from '../protocol/index.js';


const SUMMARY = 'connects out to a modelrelay-server and serves requests from a local LLM backend';

void runMain(async () => {
  const parsed = parseCommand(WORKER_FLAGS, process.argv.slice(2), process.env, [BACKENDS_KEY]);
  if (parsed === 'help') return void process.stdout.write(helpText('modelrelay-worker', SUMMARY, WORKER_FLAGS));
  if (parsed === 'version') return void process.stdout.write(`${VERSION}\n`);
  const { flags, file } = parsed;
  const proxyUrl = flags['proxy-url'] as string;
  let relayUrl: URL;
  try {
    relayUrl = workerConnectUrl(proxyUrl, 'check');
  } catch {
    throw new UsageError(`--proxy-url must be an http://, https://, ws:// or wss:// URL, got '${proxyUrl}'`);
  }
  const backends = workerBackends(parsed, relayUrl, process.env);
  let relayEgress: ProxyChoice;
  try {
    relayEgress = chooseEgress(relayUrl, new URL(backends[0]!.url), flags['egress-proxy'] as string | undefined, process.env).relay;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const secret = readWorkerSecret(flags, process.argv.slice(2));
  const extraEndpoints = ((flags['extra-endpoints'] as string | undefined) ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  for (const p of extraEndpoints) {
    const problem = endpointProblem(p);
    if (problem) throw new UsageError(`--extra-endpoints: '${p}' ${problem}`);
  }
  const caFile = flags['ca-file'] as string | undefined;
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read --ca-file ${caFile}: ${(e as Error).message}`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--ca-file ${caFile} holds no PEM certificate`);
  }
  const log = createLogger(flags['log-level'] as string);
  for (const w of [...(file?.warnings ?? []), ...secret.warnings]) log.warn(w);
  if (file) log.info({ config: file.path }, 'config file read');
  const agent = new WorkerAgent(
    {
      ...DEFAULT_WORKER_CONFIG,
      proxyUrl,
      workerSecret: secret.value,
      backends,
      workerName: (flags['worker-name'] as string | undefined) ?? hostname(),
      provider: flags['provider'] as string,
      extraEndpoints,
      modelsRefreshMs: (flags['models-refresh'] as number) * 1000,
      health: { ...DEFAULT_WORKER_CONFIG.health, upIntervalMs: (flags['health-interval'] as number) * 1000 },
      heartbeatTimeoutMs: (flags['heartbeat-timeout'] as number) * 1000,
      drainTimeoutMs: (flags['drain-timeout'] as number) * 1000,
      maxFrameBytes: flags['max-frame-bytes'] as number,
      logLevel: flags['log-level'] as string,
      relayEgress,
      relayTls: { ca, insecureSkipVerify: flags['insecure-skip-verify'] as boolean },
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
