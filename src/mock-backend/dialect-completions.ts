// OpenAI POST /v1/completions (legacy): text_completion objects, streamed the same way as chat.

import { countWords } from './content.js';
import { wantsUsage, type Body, type Dialect, type Turn } from './dialect.js';
import { SSE_DONE, sseData } from './sse.js';

const usage = (t: Turn) => ({
  prompt_tokens: t.promptTokens,
  completion_tokens: t.completionTokens,
  total_tokens: t.promptTokens + t.completionTokens,
});

function chunk(t: Turn, text: string, finish: string | null): unknown {
  const c: Record<string, unknown> = {
    id: t.id,
    object: 'text_completion',
    created: t.created,
    model: t.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
  };
  if (t.includeUsage) c['usage'] = null;
  return c;
}

export const completionsDialect: Dialect = {
  errorStyle: 'openai',
  idPrefix: 'cmpl-mock',
  promptTokens: (b: Body) => countWords(b['prompt']),
  includeUsage: wantsUsage,
  complete: (t, text) => ({
    id: t.id,
    object: 'text_completion',
    created: t.created,
    model: t.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: 'stop' }],
    usage: usage(t),
  }),
  start: () => [],
  token: (t, piece) => sseData(chunk(t, piece, null)),
  end: (t) => {
    const out = [sseData(chunk(t, '', 'stop'))];
    if (t.includeUsage) {
      out.push(sseData({ id: t.id, object: 'text_completion', created: t.created, model: t.model, choices: [], usage: usage(t) }));
    }
    out.push(SSE_DONE);
    return out;
  },
};
