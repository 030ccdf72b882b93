// The ModelRelay worker protocol (bridge v1) and our negotiated extensions, defined once as zod schemas.
// Types are inferred from the schemas; unknown fields are ignored (zod strips them) for forward compatibility.
import { z } from 'zod';

export const PROTOCOL_VERSION = '2026-04-bridge-v1';
export const WORKER_CONNECT_PATH = '/v1/worker/connect';

/** Extensions we speak. A peer that sends no `extensions` field speaks only the base protocol. */
export const EXTENSIONS = ['request-error', 'cancel-ack', 'drain-notice', 'flow-control', 'binary-frames', 'backend-health', 'backend-slots'] as const;
export type Extension = (typeof EXTENSIONS)[number];

const requestId = z.string().min(1).max(256);
const load = z.number().int().nonnegative();

export const CancelReason = z.union([
  z.enum([
    'client_disconnect',
    'timeout',
    'graceful_shutdown',
    'worker_disconnect',
    'requeue_exhausted',
    'server_shutdown',
  ]),
  z.object({ other: z.string() }),
]);
export type CancelReason = z.infer<typeof CancelReason>;

export const TokenCounts = z.object({
  prompt_tokens: z.number().int().nonnegative().optional(),
  completion_tokens: z.number().int().nonnegative().optional(),
  total_tokens: z.number().int().nonnegative().optional(),
});
export type TokenCounts = z.infer<typeof TokenCounts>;

const Headers = z.record(z.string(), z.string());

// ---- server → worker ----
export const ServerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('register_ack'),
    worker_id: z.string(),
    models: z.array(z.string()),
    warnings: z.array(z.string()).optional(),
    protocol_version: z.string().optional(),
    extensions: z.array(z.string()).optional(),
    /** flow-control: bytes a worker may send per request before it needs more credit. */
    flow_window_bytes: z.number().int().positive().optional(),
  }),
  z.object({
    type: z.literal('request'),
    request_id: requestId,
    model: z.string(),
    endpoint_path: z.string(),
    is_streaming: z.boolean(),
    body: z.string(),
    headers: Headers.optional().default({}),
  }),
  z.object({ type: z.literal('cancel'), request_id: requestId, reason: CancelReason.optional() }),
  z.object({ type: z.literal('ping'), timestamp_unix_ms: z.number().optional() }),
  z.object({
    type: z.literal('graceful_shutdown'),
    reason: z.string().optional(),
    drain_timeout_secs: z.number().nonnegative().optional(),
  }),
  z.object({ type: z.literal('models_refresh'), reason: z.string().optional() }),
  /** flow-control: the client consumed `bytes` more of this request's stream. */
  z.object({ type: z.literal('credit'), request_id: requestId, bytes: z.number().int().positive() }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

// ---- worker → server ----
export const WorkerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('register'),
    worker_name: z.string(),
    models: z.array(z.string()),
    max_concurrent: z.number().int(),
    protocol_version: z.string().optional(),
    current_load: load.optional(),
    extensions: z.array(z.string()).optional(),
  }),
  z.object({
    type: z.literal('models_update'),
    models: z.array(z.string()),
    current_load: load.optional(),
    /** backend-slots: which models share how many of the worker's slots (one group per backend). */
    slot_groups: z.array(z.object({ models: z.array(z.string()), max_concurrency: z.number().int().positive() })).optional(),
  }),
  z.object({ type: z.literal('response_chunk'), request_id: requestId, chunk: z.string() }),
  z.object({
    type: z.literal('response_complete'),
    request_id: requestId,
    status_code: z.number().int().min(100).max(599),
    headers: Headers.optional(),
    body: z.string().optional(),
    token_counts: TokenCounts.optional(),
  }),
  z.object({ type: z.literal('pong'), current_load: load.optional(), timestamp_unix_ms: z.number().optional() }),
  z.object({
    type: z.literal('error'),
    request_id: requestId.optional(),
    code: z.string(),
    message: z.string(),
  }),
  /** drain-notice: the worker is draining on its own (SIGTERM); route nothing new to it. */
  z.object({ type: z.literal('draining'), reason: z.string().optional() }),
  /** backend-health: the worker's backend went down (route nothing to it) or came back. */
  z.object({ type: z.literal('backend_status'), state: z.enum(['up', 'down']), reason: z.string().max(1000).optional() }),
]);
export type WorkerMessage = z.infer<typeof WorkerMessage>;

export type MessageOf<U extends { type: string }, T extends U['type']> = Extract<U, { type: T }>;

/** WebSocket close codes the protocol assigns. */
export const CloseCode = {
  normal: 1000,
  protocolError: 1002,
  policy: 1008,
  tooLarge: 1009,
} as const;

/** `error.code` values a worker sends with the request-error extension. */
export const RequestErrorCode = {
  busy: 'worker_busy',
  draining: 'worker_draining',
  /** The backend could not be reached, or is loading, before any byte of the answer: retry elsewhere. */
  backendUnavailable: 'backend_unavailable',
} as const;
