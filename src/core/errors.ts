// The error catalogue: every failure the relay reports, with its HTTP status, its OpenAI and Anthropic
// error types, an optional Retry-After and which side caused it. The server's renderer is the only
// place that turns these into bytes.

export type ErrorSide = 'client' | 'relay' | 'worker' | 'backend';

interface ErrorSpec {
  status: number;
  openaiType: string;
  anthropicType: string;
  side: ErrorSide;
  retryAfterSecs?: number;
}

export const ERRORS = {
  invalid_request: { status: 400, openaiType: 'invalid_request_error', anthropicType: 'invalid_request_error', side: 'client' },
  invalid_api_key: { status: 401, openaiType: 'invalid_request_error', anthropicType: 'authentication_error', side: 'client' },
  admin_token_missing: { status: 401, openaiType: 'invalid_request_error', anthropicType: 'authentication_error', side: 'client' },
  admin_token_invalid: { status: 403, openaiType: 'permission_error', anthropicType: 'permission_error', side: 'client' },
  admin_disabled: { status: 403, openaiType: 'permission_error', anthropicType: 'permission_error', side: 'client' },
  auth_rate_limited: { status: 429, openaiType: 'rate_limit_error', anthropicType: 'rate_limit_error', side: 'client' },
  not_found: { status: 404, openaiType: 'invalid_request_error', anthropicType: 'not_found_error', side: 'client' },
  route_not_found: { status: 404, openaiType: 'invalid_request_error', anthropicType: 'not_found_error', side: 'client' },
  method_not_allowed: { status: 405, openaiType: 'invalid_request_error', anthropicType: 'invalid_request_error', side: 'client' },
  model_not_found: { status: 404, openaiType: 'invalid_request_error', anthropicType: 'not_found_error', side: 'client' },
  header_timeout: { status: 408, openaiType: 'invalid_request_error', anthropicType: 'invalid_request_error', side: 'client' },
  body_timeout: { status: 408, openaiType: 'invalid_request_error', anthropicType: 'invalid_request_error', side: 'client' },
  body_too_large: { status: 413, openaiType: 'invalid_request_error', anthropicType: 'request_too_large', side: 'client' },
  server_busy: { status: 503, openaiType: 'server_error', anthropicType: 'overloaded_error', side: 'relay', retryAfterSecs: 1 },
  too_many_connections: { status: 503, openaiType: 'rate_limit_error', anthropicType: 'rate_limit_error', side: 'client', retryAfterSecs: 1 },
  model_not_allowed: { status: 403, openaiType: 'permission_error', anthropicType: 'permission_error', side: 'client' },
  key_rate_limited: { status: 429, openaiType: 'rate_limit_error', anthropicType: 'rate_limit_error', side: 'client' },
  queue_full: { status: 429, openaiType: 'rate_limit_error', anthropicType: 'rate_limit_error', side: 'relay', retryAfterSecs: 1 },
  queue_timeout: { status: 503, openaiType: 'server_error', anthropicType: 'overloaded_error', side: 'relay', retryAfterSecs: 5 },
  shutting_down: { status: 503, openaiType: 'server_error', anthropicType: 'overloaded_error', side: 'relay', retryAfterSecs: 5 },
  request_timeout: { status: 504, openaiType: 'timeout_error', anthropicType: 'timeout_error', side: 'worker' },
  worker_lost: { status: 502, openaiType: 'server_error', anthropicType: 'api_error', side: 'worker' },
  requeue_exhausted: { status: 502, openaiType: 'server_error', anthropicType: 'api_error', side: 'worker' },
  backend_unreachable: { status: 502, openaiType: 'server_error', anthropicType: 'api_error', side: 'backend' },
  backend_error: { status: 502, openaiType: 'server_error', anthropicType: 'api_error', side: 'backend' },
  client_too_slow: { status: 502, openaiType: 'server_error', anthropicType: 'api_error', side: 'client' },
  internal_error: { status: 500, openaiType: 'server_error', anthropicType: 'api_error', side: 'relay' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** A failure with a stable code; `message` is what the client reads. */
export class RelayError extends Error {
  readonly spec: ErrorSpec;
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.spec = ERRORS[code];
  }
  get status(): number {
    return this.spec.status;
  }
}
