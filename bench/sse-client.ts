// Streaming load: `concurrency` lanes, each opening one SSE stream after another against the simulated
// backend (N tokens, one every `delayMs`), recording when each event arrives. From that come
// time-to-first-token and the gaps between consecutive token events. Lanes start staggered over one
// stream's duration so the load is steady; only streams/gaps inside the measuring window count.
import { Pool } from 'undici';
import { MODEL } from './cluster.js';

const PATH = '/v1/chat/completions';
const BODY = JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'Tell me a story.' }] });
const LF = 10;

export interface StreamLoad {
  concurrency: number;
  tokens: number;
  delayMs: number;
  /** Measuring window after the ramp-up (which lasts one stream duration). */
  measureMs: number;
}

export interface StreamResult {
  ttft: number[];
  gaps: number[];
  streams: number;
  errors: number;
  /** Token events that arrived inside the window, per second. */
  eventRate: number;
  /** Token events received over the whole round (ramp and tail included), for CPU per chunk. */
  totalEvents: number;
}

export function streamPool(origin: string, connections: number): Pool {
  return new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
}

interface Window {
  from: number;
  to: number;
}

/** One stream; fills arrival times of its first `tokens` events. */
function oneStream(pool: Pool, load: StreamLoad, win: Window, out: StreamResult, counts: { events: number }): Promise<void> {
  const headers = {
    'content-type': 'application/json',
    'x-mock-tokens': String(load.tokens),
    'x-mock-delay-ms': String(load.delayMs),
    'x-mock-first-delay-ms': String(load.delayMs),
  };
  const t0 = performance.now();
  return pool.request({ method: 'POST', path: PATH, headers, body: BODY }).then(
    (res) =>
      new Promise<void>((resolve) => {
        if (res.statusCode !== 200) {
          out.errors++;
          res.body.resume().once('end', resolve).once('error', () => resolve());
          return;
        }
        const times = new Float64Array(load.tokens);
        let seen = 0;
        let lastByte = 0;
        res.body.on('data', (buf: Buffer) => {
          const t = performance.now();
          // count event ends ("\n\n"), including one split across two reads
          if (lastByte === LF && buf[0] === LF) seen < load.tokens ? (times[seen++] = t) : seen++;
          for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n', i + 2)) seen < load.tokens ? (times[seen++] = t) : seen++;
          lastByte = buf[buf.length - 1]!;
        });
        res.body.once('error', () => {
          out.errors++;
          resolve();
        });
        res.body.once('end', () => {
          if (seen < load.tokens) out.errors++;
          if (t0 >= win.from && t0 <= win.to && seen > 0) out.ttft.push(times[0]! - t0);
          for (let k = 1; k < Math.min(seen, load.tokens); k++) {
            // a gap counts when it ends inside the window (so a stall that began earlier still shows)
            if (times[k]! >= win.from && times[k]! <= win.to) out.gaps.push(times[k]! - times[k - 1]!);
          }
          out.totalEvents += Math.min(seen, load.tokens);
          for (let k = 0; k < Math.min(seen, load.tokens); k++) if (times[k]! >= win.from && times[k]! <= win.to) counts.events++;
          out.streams++;
          resolve();
        });
      }),
    () => {
      out.errors++;
      return new Promise<void>((r) => setTimeout(r, 10)); // don't spin on a refusing target
    },
  );
}

export async function streamRound(pool: Pool, load: StreamLoad): Promise<StreamResult> {
  const streamMs = load.tokens * load.delayMs;
  const start = performance.now();
  const win = { from: start + streamMs, to: start + streamMs + load.measureMs };
  const out: StreamResult = { ttft: [], gaps: [], streams: 0, errors: 0, eventRate: 0, totalEvents: 0 };
  const counts = { events: 0 };
  const lane = async (i: number): Promise<void> => {
    await new Promise((r) => setTimeout(r, (i / load.concurrency) * streamMs));
    while (performance.now() < win.to) await oneStream(pool, load, win, out, counts);
  };
  await Promise.all(Array.from({ length: load.concurrency }, (_, i) => lane(i)));
  out.eventRate = counts.events / (load.measureMs / 1000);
  return out;
}

/** The JSON `data:` events of an OpenAI-style SSE body, each with the time its chunk arrived; an
 * error event throws. (The llama-server workloads read usage and timings from them.) */
export async function* chatEvents<E>(body: AsyncIterable<unknown>): AsyncGenerator<{ ev: E; at: number }> {
  let rest = '';
  for await (const buf of body) {
    const at = performance.now();
    const lines = (rest + (buf as Buffer).toString('utf8')).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const ev = JSON.parse(line.slice(6)) as E & { error?: unknown };
      if (ev.error !== undefined) throw new Error(`error event: ${JSON.stringify(ev.error).slice(0, 160)}`);
      yield { ev, at };
    }
  }
}
