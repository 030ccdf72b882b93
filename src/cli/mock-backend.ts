#!/usr/bin/env node
// `modelrelay-mock-backend`: runs the simulated LLM backend as a process (demo, benchmark, manual tests).
// Prints one JSON line once listening; exits cleanly on SIGTERM/SIGINT.

import { mockHelp, parseMockArgs, startMockBackend } from '../mock-backend/index.js';

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseMockArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`modelrelay-mock-backend: ${(err as Error).message}\n\n${mockHelp()}\n`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(`${mockHelp()}\n`);
    return;
  }
  const mock = await startMockBackend(parsed.options);
  process.stdout.write(`${JSON.stringify({ msg: 'mock backend listening', url: mock.url })}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(1); // a second signal: don't wait
    stopping = true;
    void mock.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`modelrelay-mock-backend: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
