// The one place that writes an error to a client: OpenAI or Anthropic body, or an SSE error event.
import type { ServerResponse } from 'node:http';
import type { RelayError } from '../core/index.js';

export type ApiFlavor = 'openai' | 'anthropic';

export function errorBody(flavor: ApiFlavor, err: RelayError): string {
  if (flavor === 'anthropic') {
    return JSON.stringify({ type: 'error', error: { type: err.spec.anthropicType, message: err.message } });
  }
  return JSON.stringify({ error: { message: err.message, type: err.spec.openaiType, code: err.code } });
}

/** An SSE event that ends a stream that already sent bytes: no silent truncation. */
export function errorEvent(flavor: ApiFlavor, err: RelayError): string {
  const body = errorBody(flavor, err);
  return flavor === 'anthropic' ? `event: error\ndata: ${body}\n\n` : `data: ${body}\n\n`;
}

/** Writes the error as a complete response, or as a final SSE event if the response already began. */
export function sendError(res: ServerResponse, flavor: ApiFlavor, err: RelayError, requestId?: string): void {
  if (res.destroyed || res.writableEnded) return;
  if (res.headersSent) {
    res.end(errorEvent(flavor, err));
    return;
  }
  const body = errorBody(flavor, err);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  };
  if (err.spec.retryAfterSecs !== undefined) headers['retry-after'] = err.spec.retryAfterSecs;
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  res.writeHead(err.status, headers);
  res.end(body);
}
