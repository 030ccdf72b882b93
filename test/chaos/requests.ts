// The soak's requests: what each one asks for (seeded), what it must get back, and the check of
// what it did get. Every body is unique and the simulated backend puts a digest of the body it
// received in its answer (x-mock-digest), so an answer is checked against exactly one expected text:
// `[backend] #digest tok1 tok2 … tokN`, from any backend that serves the model.
import { bodyDigest } from '../../src/mock-backend/content.js';

export type Route = 'chat' | 'messages';

/** What the backend is told to do (x-mock-* headers), and what the client does. Only failures the
 * relay takes for this request's alone: the backend's own 4xx and 500 answers, and a death after
 * bytes went out. A reset before any answer, or a 502-504, says the backend is sick (issue 15):
 * the request fails over to every other worker and counts against each one's circuit breaker, so
 * a few of them take the whole model out of rotation for a while. That is a fault of the fleet,
 * not of one request: a "backend down" fault kind (faults.ts) is where it belongs. */
export type Script =
  | { kind: 'normal' }
  | { kind: 'status'; status: number }
  | { kind: 'dies-after'; tokens: number }
  | { kind: 'client-abort'; afterMs: number };

export interface RequestPlan {
  n: number;
  route: Route;
  stream: boolean;
  model: string;
  tokens: number;
  delayMs: number;
  firstDelayMs: number;
  script: Script;
  body: string;
  headers: Record<string, string>;
}

/** The outcomes a request may have; all but `violation` are allowed by the soak's invariants. */
export type Outcome =
  | 'ok' // whole and exact
  | 'planned-error' // the error status the backend was told to give
  | 'planned-death' // a stream whose backend died as told: the exact prefix, then an error event
  | 'worker-lost' // a stream whose worker was lost after it began: an exact prefix, then an error event
  | 'client-abort'
  | 'restart' // refused, cut or failed while the server restarted
  | 'unserved' // 404: the server had no worker for the model at that moment (one lost without a planned fault)
  | 'backend-down' // a stream whose backend was killed after its first events reached the client: an exact prefix, then an error event
  | 'requeue-exhausted' // lost more workers than --max-requeues allows, with that many faults under way
  | 'violation';

export interface Observed {
  status?: number;
  headers?: Record<string, string | string[] | undefined>;
  text: string;
  /** A client-side failure: connection refused or reset, cut body, our own abort, or the hang bound. */
  error?: 'refused' | 'connection' | 'aborted' | 'hang';
  errorDetail?: string;
}

export interface Verdict {
  outcome: Outcome;
  detail?: string;
}

/** What the fault log says about a request's lifetime. */
export interface Context {
  /** Backends that serve the request's model (names as they appear in answers). */
  backends: string[];
  /** The lifetime overlapped a server restart. */
  duringRestart: boolean;
  /** The worker faults whose window overlapped the lifetime (a new fault kind that allows a new
   * outcome, like a backend down for a while, says so in `judge` by looking here). */
  workerFaults: { kind: string; target: string }[];
  /** Backends killed (the backend-down fault) while the request lived. */
  downBackends: string[];
  /** From the server's own log: it had no worker of the model at some moment of the lifetime. */
  unserved: boolean;
  /** From the server's own log: how many times it lost a worker of the model meanwhile. */
  serverLosses: number;
  maxRequeues: number;
}

export function makePlan(n: number, rnd: () => number, models: string[], tag: string): RequestPlan {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const route: Route = rnd() < 0.6 ? 'chat' : 'messages';
  const stream = rnd() < 0.6;
  const model = pick(models);
  const tokens = 2 + Math.floor(rnd() * 24);
  const delayMs = pick([0, 0, 5, 10, 20, 40]);
  const firstDelayMs = pick([0, 0, 10, 50, 200, 400]);
  const r = rnd();
  const script: Script =
    r < 0.06
      ? { kind: 'status', status: pick([400, 404, 429, 500]) }
      : r < 0.13 && stream
        ? { kind: 'dies-after', tokens: 1 + Math.floor(rnd() * (tokens - 1)) }
        : r < 0.18
          ? { kind: 'client-abort', afterMs: Math.floor(rnd() * 400) }
          : { kind: 'normal' };
  const content = `chaos ${tag} request ${n}: ${rnd().toString(36).slice(2)}`;
  const body =
    route === 'chat'
      ? JSON.stringify({ model, stream, messages: [{ role: 'user', content }] })
      : JSON.stringify({ model, stream, max_tokens: 64, messages: [{ role: 'user', content }] });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-mock-digest': '1',
    'x-mock-tokens': String(tokens),
    'x-mock-delay-ms': String(delayMs),
    'x-mock-first-delay-ms': String(firstDelayMs),
  };
  if (script.kind === 'status') headers['x-mock-status'] = String(script.status);
  if (script.kind === 'dies-after') headers['x-mock-reset-after'] = String(script.tokens);
  if (route === 'messages') headers['anthropic-version'] = '2023-06-01';
  return { n, route, stream, model, tokens, delayMs, firstDelayMs, script, body, headers };
}

export function pathOf(route: Route): string {
  return route === 'chat' ? '/v1/chat/completions' : '/v1/messages';
}

/** The longest a backend takes for this request, faults aside. */
export function plannedMs(p: RequestPlan): number {
  return p.firstDelayMs + p.tokens * p.delayMs;
}

/** The token pieces backend `name` answers `p` with. */
function pieces(p: RequestPlan, name: string): string[] {
  const digest = bodyDigest(p.body);
  return Array.from({ length: p.tokens }, (_, i) => (i === 0 ? `[${name}] #${digest} tok1` : ` tok${i + 1}`));
}

interface StreamRead {
  content: string;
  /** Token events seen. */
  tokens: number;
  ended: boolean;
  error?: { code: string; message: string };
  problem?: string;
}

/** Reads an SSE body of either API: the text, whether it ended properly, and a final error event. */
export function readStream(route: Route, text: string): StreamRead {
  const out: StreamRead = { content: '', tokens: 0, ended: false };
  const events = text.split('\n\n');
  const tail = events.pop();
  if (tail !== '') return { ...out, problem: `the stream stops inside an event: ${JSON.stringify(tail?.slice(-120))}` };
  for (const [i, ev] of events.entries()) {
    if (out.ended || out.error) return { ...out, problem: `an event after the end: ${ev.slice(0, 160)}` };
    const lines = ev.split('\n');
    const name = lines.find((l) => l.startsWith('event: '))?.slice(7);
    const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    if (route === 'chat') {
      if (data === '[DONE]') {
        out.ended = true;
        continue;
      }
      let j: any;
      try {
        j = JSON.parse(data);
      } catch {
        return { ...out, problem: `event ${i} is not JSON: ${data.slice(0, 160)}` };
      }
      if (j.error) {
        out.error = { code: String(j.error.code), message: String(j.error.message) };
        continue;
      }
      const piece = j.choices?.[0]?.delta?.content;
      if (typeof piece === 'string' && piece !== '') {
        out.content += piece;
        out.tokens++;
      }
    } else {
      let j: any;
      try {
        j = JSON.parse(data);
      } catch {
        return { ...out, problem: `event ${i} is not JSON: ${data.slice(0, 160)}` };
      }
      if (name === 'error') {
        out.error = { code: anthropicCode(String(j.error?.message)), message: String(j.error?.message) };
        continue;
      }
      if (name !== j.type) return { ...out, problem: `event name ${name} carries type ${j.type}` };
      if (j.type === 'content_block_delta') {
        out.content += j.delta.text;
        out.tokens++;
      }
      if (j.type === 'message_stop') out.ended = true;
    }
  }
  return out;
}

/** Anthropic errors carry no code: tell ours apart by their messages (src/core, src/server). */
function anthropicCode(message: string): string {
  if (/disconnected mid-response/.test(message)) return 'worker_lost';
  if (/failed mid-stream|backend call failed/.test(message)) return 'backend_error';
  if (/backend .* is unreachable|has a working backend|closed the connection before answering/.test(message)) return 'backend_unreachable';
  if (/not served by any connected worker/.test(message)) return 'model_not_found';
  if (/shut(ting)? down/.test(message)) return 'shutting_down';
  if (/failed on \d+ workers in a row/.test(message)) return 'requeue_exhausted';
  return `anthropic: ${message.slice(0, 80)}`;
}

/** The code of an error body in either shape. */
function errorCode(route: Route, text: string): string | undefined {
  try {
    const j = JSON.parse(text);
    if (route === 'chat') return typeof j.error?.code === 'string' ? j.error.code : undefined;
    return j.type === 'error' && typeof j.error?.message === 'string' ? anthropicCode(j.error.message) : undefined;
  } catch {
    return undefined;
  }
}

/** Which backend's answer `content` is, if it is a prefix (at a token boundary) of one of them. */
function matchPrefix(p: RequestPlan, content: string, backends: string[]): { backend: string; tokens: number } | undefined {
  if (content === '') return { backend: '', tokens: 0 };
  for (const b of backends) {
    const ps = pieces(p, b);
    let acc = '';
    for (let i = 0; i < ps.length; i++) {
      acc += ps[i];
      if (acc === content) return { backend: b, tokens: i + 1 };
      if (!content.startsWith(acc)) break;
    }
  }
  return undefined;
}

function whole(p: RequestPlan, content: string, backends: string[]): boolean {
  return backends.some((b) => pieces(p, b).join('') === content);
}

const violation = (detail: string): Verdict => ({ outcome: 'violation', detail });

/** Checks one request's outcome against the soak's invariants. */
export function judge(p: RequestPlan, o: Observed, ctx: Context): Verdict {
  const restartOr = (detail: string): Verdict => (ctx.duringRestart ? { outcome: 'restart' } : violation(detail));
  if (o.error === 'hang') return violation(`no answer within the hang bound (${o.errorDetail ?? ''}); got ${o.status ?? 'no status'} ${o.text.slice(-200)}`);
  if (o.error === 'aborted') {
    if (p.script.kind !== 'client-abort') return violation('aborted by the client without a plan to');
    if (o.status === 200 && p.stream && matchPrefix(p, readStream(p.route, cutToEvents(o.text)).content, ctx.backends) === undefined) {
      return violation(`aborted stream carried text of another request: ${o.text.slice(0, 300)}`);
    }
    return { outcome: 'client-abort' };
  }
  if (o.error === 'refused') return restartOr(`connection refused: ${o.errorDetail}`);
  if (o.error === 'connection') {
    // A cut body: whatever arrived must still be this request's text.
    if (o.status === 200 && p.stream && matchPrefix(p, readStream(p.route, cutToEvents(o.text)).content, ctx.backends) === undefined) {
      return violation(`a cut stream carried text of another request: ${o.text.slice(0, 300)}`);
    }
    return restartOr(`connection failed (${o.errorDetail}) with ${o.status ?? 'no status'}: ${o.text.slice(-200)}`);
  }
  if (o.status === undefined) return violation('no status and no error');
  if (o.status === 200 && !o.headers?.['x-request-id']) return violation('a 200 without X-Request-Id');

  if (o.status !== 200) {
    const code = errorCode(p.route, o.text);
    if (o.status === 503 && code === 'shutting_down') return restartOr('503 shutting_down outside a server restart');
    // A server that just started knows no worker yet; and a worker can be lost without a planned
    // fault (its heartbeat missed on a starved machine): then the model is unserved for a moment.
    if (o.status === 404 && code === 'model_not_found') {
      if (ctx.duringRestart) return { outcome: 'restart' };
      return ctx.unserved ? { outcome: 'unserved' } : violation('404 model_not_found while the server had a worker for the model');
    }
    if (p.script.kind === 'status' && o.status === p.script.status) {
      return /mock backend b\d+ failed with status/.test(o.text) ? { outcome: 'planned-error' } : violation(`status ${o.status} without the backend's body: ${o.text.slice(0, 200)}`);
    }
    if (o.status === 502 && code === 'requeue_exhausted') {
      const lost = Math.max(ctx.workerFaults.length, ctx.serverLosses);
      return lost > ctx.maxRequeues ? { outcome: 'requeue-exhausted' } : violation(`requeue_exhausted with only ${lost} workers lost meanwhile`);
    }
    return violation(`status ${o.status} (${code ?? 'no code'}) for script ${p.script.kind}: ${o.text.slice(0, 300)}`);
  }

  if (!p.stream) {
    let j: any;
    try {
      j = JSON.parse(o.text);
    } catch {
      return violation(`a 200 whose body is not JSON: ${o.text.slice(0, 200)}`);
    }
    const content = p.route === 'chat' ? j.choices?.[0]?.message?.content : j.content?.[0]?.text;
    if (typeof content !== 'string' || !whole(p, content, ctx.backends)) return violation(`wrong answer: ${JSON.stringify(content)?.slice(0, 300)}`);
    if (j.model !== p.model) return violation(`answer for model ${j.model}, asked ${p.model}`);
    if (p.script.kind === 'status') return violation('a 200 where the backend was told to fail');
    return { outcome: 'ok' };
  }

  const s = readStream(p.route, o.text);
  if (s.problem) return violation(s.problem);
  const prefix = matchPrefix(p, s.content, ctx.backends);
  if (!prefix) return violation(`stream text is not this request's (spliced or mixed): ${JSON.stringify(s.content.slice(0, 300))}`);
  if (s.ended) {
    if (s.error) return violation('an error event and a proper end');
    if (prefix.tokens !== p.tokens) return violation(`the stream ended properly after ${prefix.tokens} of ${p.tokens} tokens`);
    if (p.script.kind === 'dies-after' || p.script.kind === 'status') return violation(`a whole stream where the backend was told to fail (${p.script.kind})`);
    return { outcome: 'ok' };
  }
  if (!s.error) return violation(`silently truncated after ${prefix.tokens} tokens: ${o.text.slice(-200)}`);
  switch (s.error.code) {
    case 'backend_error':
      if (p.script.kind === 'dies-after' && prefix.tokens === p.script.tokens) return { outcome: 'planned-death' };
      // Its own backend killed under it: any exact prefix of that backend's text (or none yet).
      if (prefix.tokens === 0 ? ctx.downBackends.length > 0 : ctx.downBackends.includes(prefix.backend)) return { outcome: 'backend-down' };
      return violation(`backend_error after ${prefix.tokens} tokens for script ${JSON.stringify(p.script)}: ${s.error.message}`);
    case 'worker_lost':
      return { outcome: 'worker-lost' };
    case 'shutting_down':
      return restartOr('a shutting_down event outside a server restart');
    default:
      return violation(`error event ${s.error.code}: ${s.error.message}`);
  }
}

/** The whole events of a body that was cut off (for checking the text it did carry). */
function cutToEvents(text: string): string {
  const end = text.lastIndexOf('\n\n');
  return end < 0 ? '' : text.slice(0, end + 2);
}
