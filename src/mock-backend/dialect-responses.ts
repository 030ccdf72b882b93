// OpenAI POST /v1/responses: a minimal Response object; streaming emits the event sequence the
// official SDK's accumulator needs (created, item/part added, text deltas, done events, completed).

import { countWords } from './content.js';
import type { Body, Dialect, Turn } from './dialect.js';
import { sseEvent } from './sse.js';

const itemId = (t: Turn) => `${t.id}_item`;

const textPart = (text: string) => ({ type: 'output_text', text, annotations: [] });

const outputItem = (t: Turn, text: string, status: string) => ({
  type: 'message',
  id: itemId(t),
  status,
  role: 'assistant',
  content: text === '' && status !== 'completed' ? [] : [textPart(text)],
});

const response = (t: Turn, status: string, text: string | null) => ({
  id: t.id,
  object: 'response',
  created_at: t.created,
  status,
  model: t.model,
  output: text === null ? [] : [outputItem(t, text, 'completed')],
  usage:
    text === null
      ? null
      : { input_tokens: t.promptTokens, output_tokens: t.completionTokens, total_tokens: t.promptTokens + t.completionTokens },
});

/** Each Responses event carries its own type and a running sequence number. */
function ev(t: Turn, type: string, fields: Record<string, unknown>): string {
  return sseEvent(type, { type, sequence_number: t.seq++, ...fields });
}

const at = (t: Turn) => ({ item_id: itemId(t), output_index: 0, content_index: 0 });

export const responsesDialect: Dialect = {
  errorStyle: 'openai',
  idPrefix: 'resp_mock',
  promptTokens: (b: Body) => countWords(b['instructions'], b['input']),
  includeUsage: () => true,
  complete: (t, text) => response(t, 'completed', text),
  start: (t) => [
    ev(t, 'response.created', { response: response(t, 'in_progress', null) }),
    ev(t, 'response.in_progress', { response: response(t, 'in_progress', null) }),
    ev(t, 'response.output_item.added', { output_index: 0, item: outputItem(t, '', 'in_progress') }),
    ev(t, 'response.content_part.added', { ...at(t), part: textPart('') }),
  ],
  token: (t, piece) => ev(t, 'response.output_text.delta', { ...at(t), delta: piece, logprobs: [] }),
  end: (t, text) => [
    ev(t, 'response.output_text.done', { ...at(t), text, logprobs: [] }),
    ev(t, 'response.content_part.done', { ...at(t), part: textPart(text) }),
    ev(t, 'response.output_item.done', { output_index: 0, item: outputItem(t, text, 'completed') }),
    ev(t, 'response.completed', { response: response(t, 'completed', text) }),
  ],
};
