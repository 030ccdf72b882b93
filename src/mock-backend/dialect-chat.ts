// OpenAI POST /v1/chat/completions: chat.completion and chat.completion.chunk objects.

import { countWords } from './content.js';
import { wantsUsage, type Body, type Dialect, type Turn } from './dialect.js';
import { SSE_DONE, sseData } from './sse.js';

const usage = (t: Turn) => ({
  prompt_tokens: t.promptTokens,
  completion_tokens: t.completionTokens,
  total_tokens: t.promptTokens + t.completionTokens,
});

function chunk(t: Turn, delta: Record<string, string>, finish: string | null): unknown {
  const c: Record<string, unknown> = {
    id: t.id,
    object: 'chat.completion.chunk',
    created: t.created,
    model: t.model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
  // like OpenAI: with include_usage every chunk carries usage:null until the final usage chunk
  if (t.includeUsage) c['usage'] = null;
  return c;
}

export const chatDialect: Dialect = {
  errorStyle: 'openai',
  idPrefix: 'chatcmpl-mock',
  promptTokens: (b: Body) => countWords(b['messages']),
  includeUsage: wantsUsage,
  complete: (t, text) => ({
    id: t.id,
    object: 'chat.completion',
    created: t.created,
    model: t.model,
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: usage(t),
  }),
  start: () => [],
  // the first chunk carries the role, as OpenAI's does
  token: (t, piece, i) => sseData(chunk(t, i === 0 ? { role: 'assistant', content: piece } : { content: piece }, null)),
  end: (t, _text, emitted) => {
    const out = [sseData(chunk(t, emitted ? {} : { role: 'assistant', content: '' }, 'stop'))];
    if (t.includeUsage) {
      out.push(sseData({ id: t.id, object: 'chat.completion.chunk', created: t.created, model: t.model, choices: [], usage: usage(t) }));
    }
    out.push(SSE_DONE);
    return out;
  },
};
