// OpenAI POST /v1/embeddings: one deterministic 8-float vector per input string.

import type { ServerResponse } from 'node:http';
import { countWords, embeddingOf } from './content.js';
import type { Body } from './dialect.js';
import { sendJson } from './errors.js';

export function answerEmbeddings(res: ServerResponse, body: Body, model: string): void {
  const input = body['input'];
  const texts = Array.isArray(input) ? input.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))) : [String(input ?? '')];
  const tokens = countWords(texts);
  sendJson(res, 200, {
    object: 'list',
    data: texts.map((text, index) => ({ object: 'embedding', index, embedding: embeddingOf(text) })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}
