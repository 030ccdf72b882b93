// Flags of `modelrelay-mock-backend`: one table gives parsing, env fallbacks, defaults and --help.
// Pure (argv and env in, options out) so it can be unit-tested.

import { parseArgs } from 'node:util';
import type { MockOptions } from './types.js';

interface Flag {
  name: string;
  env: string;
  type: 'string' | 'boolean';
  def: string;
  help: string;
}

const FLAGS: Flag[] = [
  { name: 'listen', env: 'MOCK_LISTEN', type: 'string', def: '127.0.0.1:8000', help: 'host:port to listen on (port 0 = ephemeral)' },
  { name: 'name', env: 'MOCK_NAME', type: 'string', def: 'mock', help: 'backend name, shown as "[name] " in answers and the x-mock-backend header' },
  { name: 'models', env: 'MOCK_MODELS', type: 'string', def: 'mock-model', help: 'comma-separated model ids for GET /v1/models' },
  { name: 'tokens', env: 'MOCK_TOKENS', type: 'string', def: '8', help: 'content tokens per answer' },
  { name: 'token-delay-ms', env: 'MOCK_TOKEN_DELAY_MS', type: 'string', def: '0', help: 'delay before each token, the first included' },
  { name: 'fail-status', env: 'MOCK_FAIL_STATUS', type: 'string', def: '', help: 'fail every generation request with this HTTP status' },
  { name: 'ollama', env: 'MOCK_OLLAMA', type: 'boolean', def: 'false', help: "also serve Ollama's GET /api/tags" },
  { name: 'ollama-only', env: 'MOCK_OLLAMA_ONLY', type: 'boolean', def: 'false', help: 'list models only at GET /api/tags, not GET /v1/models (an older Ollama)' },
  { name: 'loading-ms', env: 'MOCK_LOADING_MS', type: 'string', def: '0', help: 'answer 503 "Loading model" (GET /health and generation) for this long after start, like llama-server' },
  { name: 'help', env: '', type: 'boolean', def: '', help: 'show this help' },
];

export type ParsedMockArgs = { help: true } | { help: false; options: MockOptions & { host: string; port: number } };

export function mockHelp(): string {
  const rows = FLAGS.map((f) => {
    const flag = `--${f.name}${f.type === 'string' ? ' <v>' : ''}`.padEnd(22);
    const env = (f.env || '').padEnd(20);
    const def = f.def ? ` (default: ${f.def})` : '';
    return `  ${flag}${env}${f.help}${def}`;
  });
  return [
    'modelrelay-mock-backend: a simulated OpenAI/Anthropic LLM backend for tests, benchmarks and demos',
    '',
    'usage: modelrelay-mock-backend [flags]   (each flag falls back to its environment variable)',
    '',
    `  ${'flag'.padEnd(22)}${'env'.padEnd(20)}meaning`,
    ...rows,
    '',
    'per-request headers: x-mock-tokens, x-mock-delay-ms, x-mock-first-delay-ms, x-mock-status,',
    '  x-mock-split-utf8: 1, x-mock-chunk-bytes: N, x-mock-hang: 1, x-mock-reset: 1, x-mock-reset-once: KEY, x-mock-reset-after: K,',
    '  x-mock-digest: 1 (the first token carries a digest of the request body),',
    '  x-mock-fault-on: NAME (the status, hang and reset headers apply only on the backend of that --name)',
  ].join('\n');
}

function int(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new Error(`--${flag} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Splits "host:port", "[v6]:port" or ":port". */
export function parseListen(v: string): { host: string; port: number } {
  const i = v.lastIndexOf(':');
  if (i < 0) throw new Error(`--listen must be host:port, got ${JSON.stringify(v)}`);
  const host = v.slice(0, i).replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  return { host, port: int('listen', v.slice(i + 1), 0, 65535) };
}

export function parseMockArgs(argv: string[], env: NodeJS.ProcessEnv = {}): ParsedMockArgs {
  const options = Object.fromEntries(FLAGS.map((f) => [f.name, { type: f.type }]));
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  if (values['help'] === true) return { help: true };
  // flag, else env var, else default
  const get = (name: string): string => {
    const f = FLAGS.find((x) => x.name === name) as Flag;
    const v = values[name];
    if (typeof v === 'string') return v;
    if (v === true) return 'true';
    return env[f.env] ?? f.def;
  };
  const { host, port } = parseListen(get('listen'));
  const failStatus = get('fail-status');
  const ollama = get('ollama');
  const ollamaOnly = get('ollama-only');
  return {
    help: false,
    options: {
      host,
      port,
      name: get('name'),
      models: get('models').split(',').map((s) => s.trim()).filter(Boolean),
      tokens: int('tokens', get('tokens'), 0, 1_000_000),
      tokenDelayMs: int('token-delay-ms', get('token-delay-ms'), 0, 3_600_000),
      failStatus: failStatus === '' ? undefined : int('fail-status', failStatus, 400, 599),
      ollama: ollama === 'true' || ollama === '1',
      ollamaOnly: ollamaOnly === 'true' || ollamaOnly === '1',
      loadingMs: int('loading-ms', get('loading-ms'), 0, 3_600_000),
    },
  };
}
