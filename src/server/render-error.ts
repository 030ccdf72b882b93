// The one place that writes an error to a client: OpenAI or Anthropic body, or an SSE error event.
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { RelayError } from '../core/index.js';

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

/** Answers a request node:http could not parse (or that timed out) and closes the connection. No
 * request exists, so the route's shape comes from the request line if the bytes held one. */
export function sendClientError(socket: Duplex, err: NodeJS.ErrnoException & { rawPacket?: Buffer }, headerTimeoutMs: number): void {
  const [status, text, e] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', new RelayError('header_timeout', `The request did not arrive within ${headerTimeoutMs / 1000}s.`)]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', new RelayError('invalid_request', 'The request headers are too large.')]
        : [400, 'Bad Request', new RelayError('invalid_request', 'The request is not valid HTTP/1.1.')];
  const body = errorBody(flavorOfRequestLine(err.rawPacket), e);
  socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** Anthropic when raw bytes start with a request line for /v1/messages… (or for /v1/models… with an
 * `anthropic-version` header, as the models routes choose), else OpenAI's. */
function flavorOfRequestLine(raw: Buffer | undefined): ApiFlavor {
  const head = raw?.toString('latin1', 0, Math.min(raw.length, 16 * 1024));
  const target = head === undefined ? undefined : /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ (\/[^\s?]*)/.exec(head)?.[1];
  if (target?.startsWith('/v1/messages')) return 'anthropic';
  if ((target === '/v1/models' || target?.startsWith('/v1/models/')) && /\r\nanthropic-version:/i.test(head!)) return 'anthropic';
  return 'openai';
}
