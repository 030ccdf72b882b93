// What cache-aware routing needs from a request, read from its already-parsed body: the prompt as
// chained block hashes, and an affinity key. Blocks: the head (tools, then a top-level system or
// instructions), then each message (or Responses input item), or for a plain `prompt` its text in
// fixed chunks; hash [i] covers blocks 0…i, so a conversation's next turn shares the hashes of the
// turns before it. Nothing is re-serialised and the body is forwarded as it came.
//
// Cheap by design: the hash is a two-lane multiplicative hash in plain JS, and a string longer than
// 64 characters is sampled (its first and last 16, 32 more at an even stride between, and its
// length) rather than read whole, so a 100 KB message costs what a 100-byte one does. Two prompts
// that differ only where the sample doesn't look are taken for one: a wrong guess costs a cache miss,
// never a wrong answer.
import type { RoutingHints } from '../core/index.js';

/** Routes whose prompt a backend caches (embeddings and token counting aren't worth routing). */
export const ROUTED_PATHS: ReadonlySet<string> = new Set(['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/messages']);

/** Blocks hashed per prompt: a longer conversation matches on its first MAX_BLOCKS blocks. */
export const MAX_BLOCKS = 128;
/** A `prompt` string is cut into blocks of this many characters. */
export const PROMPT_CHUNK = 2048;
/** Characters read from each end of a long string, and at an even stride between. */
const SAMPLE_EDGE = 16;
const SAMPLE_STRIDED = 32;
/** JSON nodes (values, keys) hashed per block of structured content (tools, content parts). */
const MAX_NODES = 512;
/** Affinity keys hash from another seed than prompts: a key never matches a prompt block. */
const AFFINITY_SEED = 0x5e55;

/** The hints for a parsed request body; undefined when it carries nothing to route by. */
export function routingHints(body: Record<string, unknown>, model: string, sessionHeader: string | string[] | undefined): RoutingHints | undefined {
  const prefix = promptHashes(body, model);
  const key = typeof body['prompt_cache_key'] === 'string' && body['prompt_cache_key'] !== '' ? body['prompt_cache_key'] : typeof sessionHeader === 'string' && sessionHeader !== '' ? sessionHeader : undefined;
  if (prefix === undefined && key === undefined) return undefined;
  const hints: RoutingHints = {};
  if (prefix !== undefined && prefix.length > 0) hints.prefix = prefix;
  if (key !== undefined) {
    const h = new Hasher(AFFINITY_SEED);
    h.text(model);
    h.sep();
    h.text(key);
    hints.affinity = h.value();
  }
  return hints;
}

/** The chained block hashes of the body's prompt, if it has one this understands. */
export function promptHashes(body: Record<string, unknown>, model: string): number[] | undefined {
  const h = new Hasher(0);
  h.text(model);
  h.sep();
  const out: number[] = [];
  // The head: what a chat template puts before the messages.
  const tools = body['tools'];
  const system = body['system'] ?? body['instructions'];
  if (tools !== undefined || system !== undefined) {
    if (tools !== undefined) h.json(tools);
    h.sep();
    if (system !== undefined) h.json(system);
    out.push(h.block());
  }
  const list = Array.isArray(body['messages']) ? body['messages'] : Array.isArray(body['input']) ? body['input'] : undefined;
  if (list) {
    for (const m of list) {
      if (out.length >= MAX_BLOCKS) break;
      h.message(m);
      out.push(h.block());
    }
    return out;
  }
  const text = typeof body['prompt'] === 'string' ? body['prompt'] : typeof body['input'] === 'string' ? body['input'] : undefined;
  if (text !== undefined) {
    for (let at = 0; at < text.length && out.length < MAX_BLOCKS; at += PROMPT_CHUNK) {
      h.text(text, at, Math.min(text.length, at + PROMPT_CHUNK));
      out.push(h.block());
    }
    return out;
  }
  return out.length > 0 ? out : undefined;
}

/** Two 32-bit multiplicative lanes; `value()` finalises both into one 53-bit number. */
class Hasher {
  private a: number;
  private b: number;
  private nodes = 0;

  constructor(seed: number) {
    this.a = 0x811c9dc5 ^ seed;
    this.b = 0x9747b28c ^ seed;
  }

  private code(c: number): void {
    this.a = Math.imul(this.a ^ c, 0x01000193);
    this.b = Math.imul(this.b ^ c, 0x5bd1e995);
  }

  /** s[from, to) at `step` (locals in the loop: the hot path of the hashing). */
  private range(s: string, from: number, to: number, step = 1): void {
    let a = this.a;
    let b = this.b;
    for (let i = from; i < to; i += step) {
      const c = s.charCodeAt(Math.floor(i));
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    this.a = a;
    this.b = b;
  }

  /** s[from, to): whole when short, else sampled. */
  text(s: string, from = 0, to = s.length): void {
    const n = to - from;
    this.code(n & 0xffff);
    this.code(n >>> 16);
    if (n <= 2 * SAMPLE_EDGE + SAMPLE_STRIDED) return this.range(s, from, to);
    this.range(s, from, from + SAMPLE_EDGE);
    const step = (n - 2 * SAMPLE_EDGE) / (SAMPLE_STRIDED + 1);
    this.range(s, from + SAMPLE_EDGE + step, to - SAMPLE_EDGE, step);
    this.range(s, to - SAMPLE_EDGE, to);
  }

  sep(): void {
    this.code(0x1e);
  }

  /** A message, normalised to what a chat template reads: role, content (text or parts), and the
   * tool fields; other fields (and key order) don't change its hash. */
  message(m: unknown): void {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return this.json(m);
    const { role, content, name, tool_calls: calls, tool_call_id: callId } = m as Record<string, unknown>;
    if (typeof role === 'string') this.text(role);
    this.sep();
    if (typeof content === 'string') this.text(content);
    else if (content !== undefined) this.json(content);
    if (name !== undefined || calls !== undefined || callId !== undefined) {
      this.sep();
      this.json(name);
      this.json(calls);
      this.json(callId);
    }
  }

  /** A parsed JSON value, keys in the order sent, up to MAX_NODES nodes per block. */
  json(v: unknown): void {
    if (++this.nodes > MAX_NODES) return;
    if (typeof v === 'string') {
      this.code(0x22);
      this.text(v);
    } else if (Array.isArray(v)) {
      this.code(0x5b);
      for (const x of v) this.json(x);
      this.code(0x5d);
    } else if (v !== null && typeof v === 'object') {
      this.code(0x7b);
      for (const k in v) {
        this.text(k);
        this.json((v as Record<string, unknown>)[k]);
      }
      this.code(0x7d);
    } else {
      this.text(String(v));
    }
  }

  /** Ends a block: the hash of everything so far. */
  block(): number {
    this.sep();
    this.nodes = 0;
    return this.value();
  }

  value(): number {
    return fmix(this.a) * 0x200000 + (fmix(this.b) >>> 11);
  }
}

/** murmur3's finaliser: every input bit reaches every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
