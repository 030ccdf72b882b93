// Anthropic POST /v1/messages: the message object and the real SSE sequence
// (message_start, content_block_start, content_block_delta…, content_block_stop, message_delta, message_stop).

import { countWords } from './content.js';
import type { Body, Dialect, Turn } from './dialect.js';
import { sseEvent } from './sse.js';

const message = (t: Turn, content: unknown[], stop: string | null, outputTokens: number) => ({
  id: t.id,
  type: 'message',
  role: 'assistant',
  model: t.model,
  content,
  stop_reason: stop,
  stop_sequence: null,
  usage: { input_tokens: t.promptTokens, output_tokens: outputTokens },
});

export const messagesDialect: Dialect = {
  errorStyle: 'anthropic',
  idPrefix: 'msg_mock',
  promptTokens: (b: Body) => countWords(b['system'], b['messages']),
  includeUsage: () => true,
  complete: (t, text) => message(t, [{ type: 'text', text }], 'end_turn', t.completionTokens),
  start: (t) => [
    sseEvent('message_start', { type: 'message_start', message: message(t, [], null, 0) }),
    sseEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
  ],
  token: (_t, piece) =>
    sseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: piece } }),
  end: (t) => [
    sseEvent('content_block_stop', { type: 'content_block_stop', index: 0 }),
    sseEvent('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: t.completionTokens },
    }),
    sseEvent('message_stop', { type: 'message_stop' }),
  ],
};
