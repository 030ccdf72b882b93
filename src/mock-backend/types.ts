// Public types of the simulated OpenAI/Anthropic backend: its options, its handle and its counters.
// Kept apart so tests, the benchmark and the CLI can import them without the server code.

export interface MockOptions {
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Port to bind; 0 picks an ephemeral port (default 0). */
  port?: number;
  /** Shown as `[name] ` at the start of every answer and in the `x-mock-backend` header (default 'mock'). */
  name?: string;
  /** Model ids listed by GET /v1/models (default ['mock-model']). */
  models?: string[];
  /** Content tokens per answer (default 8). */
  tokens?: number;
  /** Delay before each token, the first one included (default 0 ms). */
  tokenDelayMs?: number;
  /** If set, every generation request fails with this HTTP status. */
  failStatus?: number;
  /** Serve Ollama's GET /api/tags too (default false). */
  ollama?: boolean;
  /** List models only at /api/tags (GET /v1/models answers 404), as an older Ollama does. */
  ollamaOnly?: boolean;
  /** Act like a llama-server still loading its model for this long after start: GET /health and
   * every generation request answer 503 "Loading model" (default 0). */
  loadingMs?: number;
  /** Silence the rare server-level warnings (the mock never logs per request). */
  quiet?: boolean;
}

export interface MockRequestRecord {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The raw body exactly as received, decoded as UTF-8. */
  body: string;
}

export interface MockStats {
  /** Generation requests received (POST to an API route). */
  requests: number;
  /** Generation requests whose response is still open. */
  active: number;
  /** High-water mark of `active` since start or the last reset. */
  maxActive: number;
  /** Generation responses written to the end (errors included). */
  completed: number;
  /** Generation requests whose client went away before the response ended. */
  aborted: number;
  /** Connections the mock destroyed on purpose (x-mock-reset, x-mock-reset-after). */
  resets: number;
  /** The last generation request (GETs are not recorded, so model polling can't hide it). */
  lastRequest: MockRequestRecord | null;
  /** Requests per path, every route but /_mock/* included. */
  byPath: Record<string, number>;
}

export interface MockBackend {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  stats(): MockStats;
  reset(): void;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
}
