// The simulated OpenAI/Anthropic backend used by tests, the benchmark and the demo.
// Behaviour is steered per request with x-mock-* headers (see plan.ts).

export { startMockBackend } from './server.js';
export type { MockBackend, MockOptions, MockRequestRecord, MockStats } from './types.js';
export { parseMockArgs, mockHelp } from './cli-args.js';
