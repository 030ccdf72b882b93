#!/usr/bin/env node
// modelrelay-demo: a server, a worker and a backend on this machine in one command, with a curl to
// paste. The backend is the built-in simulated one, or a real llama.cpp llama-server with --llama.
import { createLogger } from '../log.js';
import { startMockBackend } from '../mock-backend/index.js';
import { startServer } from '../server/index.js';
import { DEFAULT_WORKER_CONFIG, WorkerAgent } from '../worker/index.js';
import { type FlagSpec, UsageError, helpText, listenError, parseFlags, parseListen, runMain } from './flags.js';

const DEMO_FLAGS: FlagSpec[] = [
  { name: 'listen', env: 'DEMO_LISTEN', kind: 'string', default: '127.0.0.1:8080', help: 'Where the relay listens.' },
  { name: 'port', env: 'DEMO_PORT', kind: 'number', help: "The relay's port (replaces the port of --listen)." },
  { name: 'backend-url', env: 'BACKEND_URL', kind: 'string', help: 'Use this backend instead of the simulated one (models read from it).' },
  { name: 'llama', env: 'DEMO_LLAMA', kind: 'boolean', default: false, help: "Run a real llama.cpp llama-server on a tiny generated model (fetched into .cache/)." },
  { name: 'token-delay-ms', env: 'DEMO_TOKEN_DELAY_MS', kind: 'number', default: 40, help: 'Simulated backend: delay between tokens.' },
  { name: 'log-level', env: 'LOG_LEVEL', kind: 'string', default: 'warn', help: 'Log level of the demo processes.' },
];

const SECRET = 'demo-secret';

void runMain(async () => {
  const flags = parseFlags(DEMO_FLAGS, process.argv.slice(2), process.env);
  if (flags === 'help') return void process.stdout.write(helpText('modelrelay-demo', 'a local relay + worker + backend to try things with', DEMO_FLAGS));
  if (flags === 'version') return;
  const log = createLogger(flags['log-level'] as string);
  const cleanups: (() => Promise<void> | void)[] = [];

  // The relay first: a taken port fails before a backend is started for nothing.
  const listen = parseListen(flags['listen'] as string);
  const { host } = listen;
  const port = (flags['port'] as number | undefined) ?? listen.port;
  if (!Number.isInteger(port) || port > 65535) throw new UsageError(`--port must be a port number, got '${port}'`);
  const server = await startServer({ host, port, workerSecret: SECRET }, log).catch((err: unknown) => {
    throw listenError(err, host, port, '--port PORT (npm run demo -- --port PORT)');
  });
  cleanups.push(() => server.destroy());

  let backendUrl: string;
  let backendLabel: string;
  const given = flags['backend-url'] as string | undefined;
  if (given) {
    backendUrl = given;
    backendLabel = given;
  } else if (flags['llama']) {
    const { ensureLlama, startLlama } = await import('../llama/llama-server.js');
    process.stdout.write('Starting llama.cpp llama-server on a tiny generated model (first run downloads it, ~10 s)...\n');
    const ready = await ensureLlama();
    if ('skip' in ready) throw new Error(ready.skip);
    const llama = await startLlama({ alias: 'tiny' });
    cleanups.push(() => llama.close());
    backendUrl = llama.url;
    backendLabel = `llama-server ${llama.url}`;
  } else {
    const mock = await startMockBackend({ name: 'demo', models: ['demo-model'], tokens: 24, tokenDelayMs: flags['token-delay-ms'] as number, quiet: true });
    cleanups.push(() => mock.close());
    backendUrl = mock.url;
    backendLabel = `simulated backend ${mock.url}`;
  }

  const agent = new WorkerAgent(
    {
      ...DEFAULT_WORKER_CONFIG,
      proxyUrl: server.url,
      workerSecret: SECRET,
      backends: [{ url: backendUrl, models: 'auto', modelMap: [], maxConcurrency: 4, egress: { proxy: undefined, reason: 'demo' } }],
      workerName: 'demo-worker',
    },
    log,
  );
  await agent.start();
  cleanups.push(() => agent.stop());
  // Registration is asynchronous: wait until the model shows up so the curl below works at once.
  const deadline = Date.now() + 10_000;
  while (server.relay.scheduler.models().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const model = server.relay.scheduler.models()[0] ?? 'demo-model';

  const body = JSON.stringify({ model, stream: true, max_tokens: 64, messages: [{ role: 'user', content: 'Hello!' }] });
  process.stdout.write(
    [
      '',
      'ModelRelay demo is running:',
      `  relay   ${server.url}   (OpenAI + Anthropic API; worker secret '${SECRET}')`,
      `  worker  demo-worker → ${backendLabel}   (model '${model}')`,
      '',
      'Try it:',
      `  curl -N ${server.url}/v1/chat/completions -H 'content-type: application/json' -d '${body}'`,
      `  curl ${server.url}/v1/models`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  const stop = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
});
