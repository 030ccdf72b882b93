// OpenAI POST /v1/embeddings: one deterministic 8-float vector per input string,
// as a JSON array or, with encoding_format 'base64' (the openai SDK's default), as base64 float32 LE.

import type { ServerResponse } from 'node:http';
import { countWords, embeddingOf } from './content.js';
import type { Body } from './dialect.js';
import { sendJson } from './errors.js';

function encode(v: number[], base64: boolean): number[] | string {
  return base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v;
}

export function answerEmbeddings(res: ServerResponse, body: Body, model: string): void {
  const input = body['input'];
  const texts = Array.isArray(input) ? input.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))) : [String(input ?? '')];
  const tokens = countWords(texts);
  const base64 = body['encoding_format'] === 'base64';
  sendJson(res, 200, {
    object: 'list',
    data: texts.map((text, index) => ({ object: 'embedding', index, embedding: encode(embeddingOf(text), base64) })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}
