// Pulls token counts out of a backend's answer: OpenAI `usage` (prompt/completion/total_tokens),
// Anthropic and Responses `usage` (input/output_tokens), from a JSON body or from SSE events.
import type { TokenCounts } from '../protocol/index.js';

interface RawUsage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  total_tokens?: unknown;
  input_tokens?: unknown;
  output_tokens?: unknown;
  cache_read_input_tokens?: unknown;
  cache_creation_input_tokens?: unknown;
}

export class UsageCollector {
  private prompt: number | undefined;
  private completion: number | undefined;
  private total: number | undefined;

  /** The token counts in a JSON body held as bytes: only the tail from the last `"usage"` is decoded. */
  static fromBytes(body: Buffer): TokenCounts | undefined {
    const at = body.lastIndexOf('"usage"');
    if (at < 0) return undefined;
    const c = new UsageCollector();
    c.fromBody(body.toString('utf8', at));
    return c.result();
  }

  /** Looks at a JSON body (non-streaming answer). */
  fromBody(body: string): void {
    // Parse only the usage object, not the whole answer (which may be megabytes of embeddings).
    const at = body.lastIndexOf('"usage"');
    if (at < 0) return;
    const usage = objectAfter(body, at + 7);
    if (usage === undefined) return;
    try {
      this.take({ usage: JSON.parse(usage) });
    } catch {
      // not JSON: no usage to report
    }
  }

  /** Looks at SSE text holding whole events; only events that mention usage are parsed. */
  fromEvents(text: string): void {
    if (!text.includes('"usage"')) return;
    for (const line of text.split('\n')) {
      if (!line.startsWith('data:') || !line.includes('"usage"')) continue;
      try {
        this.take(JSON.parse(line.slice(5)));
      } catch {
        // a partial or non-JSON data line: skip
      }
    }
  }

  result(): TokenCounts | undefined {
    if (this.prompt === undefined && this.completion === undefined && this.total === undefined) return undefined;
    // A plain literal (undefined fields vanish in JSON.stringify): spreads here cost microseconds.
    return {
      prompt_tokens: this.prompt,
      completion_tokens: this.completion,
      total_tokens: this.total ?? num((this.prompt ?? 0) + (this.completion ?? 0)),
    };
  }

  private take(value: unknown): void {
    if (typeof value !== 'object' || value === null) return;
    const v = value as { usage?: RawUsage; message?: { usage?: RawUsage }; response?: { usage?: RawUsage } };
    // Anthropic's message_start nests usage in `message`; Responses' response.completed in `response`.
    for (const u of [v.usage, v.message?.usage, v.response?.usage]) if (u && typeof u === 'object') this.merge(u);
  }

  private merge(u: RawUsage): void {
    // Anthropic counts cached prompt tokens apart; prompt_tokens (OpenAI's meaning) includes them.
    const input = num(u.input_tokens);
    const cached = (num(u.cache_read_input_tokens) ?? 0) + (num(u.cache_creation_input_tokens) ?? 0);
    const prompt = num(u.prompt_tokens) ?? (input !== undefined ? num(input + cached) : undefined);
    const completion = num(u.completion_tokens) ?? num(u.output_tokens);
    const total = num(u.total_tokens);
    if (prompt !== undefined && (prompt > 0 || this.prompt === undefined)) this.prompt = prompt;
    if (completion !== undefined) this.completion = completion;
    if (total !== undefined) this.total = total;
  }
}

/** A count the protocol can carry: a non-negative safe integer (a larger one would make the
 * server refuse the whole frame, and close this worker). */
function num(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : undefined;
}

/** The balanced `{...}` that follows `"key":` at `from`, or undefined. Usage objects hold no strings
 * with braces, so counting braces is enough. */
function objectAfter(text: string, from: number): string | undefined {
  let i = from;
  while (i < text.length && (text[i] === ' ' || text[i] === ':' || text[i] === '\n' || text[i] === '\t' || text[i] === '\r')) i++;
  if (text[i] !== '{') return undefined;
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 123) depth++;
    else if (c === 125 && --depth === 0) return text.slice(i, j + 1);
  }
  return undefined;
}
