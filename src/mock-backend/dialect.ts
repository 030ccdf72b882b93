// What differs between the generation APIs the mock speaks: request reading, answer and SSE shapes.
// The timing engine (generate.ts) is shared; each dialect only formats.

import type { ErrorStyle } from './errors.js';

/** One generation as the dialects see it. */
export interface Turn {
  id: string;
  model: string;
  /** Unix seconds. */
  created: number;
  promptTokens: number;
  completionTokens: number;
  /** OpenAI stream_options.include_usage. */
  includeUsage: boolean;
  /** Events emitted so far (Responses' sequence_number). */
  seq: number;
}

export type Body = Record<string, unknown>;

export interface Dialect {
  readonly errorStyle: ErrorStyle;
  readonly idPrefix: string;
  promptTokens(body: Body): number;
  includeUsage(body: Body): boolean;
  /** The non-streaming answer. */
  complete(t: Turn, text: string): unknown;
  /** Events written right after the headers, before any token. */
  start(t: Turn): string[];
  /** The event carrying token number `i` (0-based). */
  token(t: Turn, piece: string, i: number): string;
  /** Closing events; `emitted` is false when no token event was written. */
  end(t: Turn, text: string, emitted: boolean): string[];
}

export function wantsUsage(body: Body): boolean {
  const so = body['stream_options'];
  return typeof so === 'object' && so !== null && (so as Body)['include_usage'] === true;
}
