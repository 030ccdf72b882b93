// The inference routes: what a server forwards as `endpoint_path`, and all a worker will call on its
// backend unless told otherwise. A worker only calls paths on this list (or its --extra-endpoints),
// compared exactly, so a server can't reach other routes of the backend host (Ollama's /api/pull, an
// admin endpoint, `..` out of a base path).
export const INFERENCE_ROUTES: ReadonlySet<string> = new Set([
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/messages',
  '/v1/messages/count_tokens',
]);

/** Why `path` can't be an extra endpoint, or undefined when it can: an absolute path of plain
 * segments (no `.`/`..` segments, no empty ones, no percent-encoding, no query). */
export function endpointProblem(path: string): string | undefined {
  if (!path.startsWith('/') || path.startsWith('//')) return 'must start with a single /';
  if (!/^[A-Za-z0-9._~\-/]+$/.test(path)) return 'may hold only letters, digits, / . _ ~ -';
  const segments = path.slice(1).split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return 'has an empty, . or .. segment';
  return undefined;
}
