// JSON error bodies in the two shapes clients expect: OpenAI's and Anthropic's.

import type { ServerResponse } from 'node:http';

export type ErrorStyle = 'openai' | 'anthropic';

function openaiType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  return status < 500 ? 'invalid_request_error' : 'server_error';
}

export function errorBody(style: ErrorStyle, status: number, message: string): unknown {
  if (style === 'anthropic') return { type: 'error', error: { type: 'api_error', message } };
  return { error: { message, type: openaiType(status), code: `mock_${status}` } };
}

/** Writes a complete JSON response (Content-Length set, so keep-alive works). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const buf = Buffer.from(JSON.stringify(body), 'utf8');
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': buf.length });
  res.end(buf);
}

export function sendError(res: ServerResponse, style: ErrorStyle, status: number, message: string): void {
  sendJson(res, status, errorBody(style, status, message));
}
