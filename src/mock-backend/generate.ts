// The shared timing engine: paces tokens, honours backpressure and the x-mock-* fault plans,
// and leaves the shapes to a Dialect.

import { SPLIT_BYTES } from './content.js';
import type { Dialect, Turn } from './dialect.js';
import type { Exchange } from './exchange.js';
import type { Plan } from './plan.js';

const SPLIT_PAUSE_MS = 20;

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
};

/**
 * Writes `buf` cutting the 😀 in it across two socket writes ~20 ms apart, then calls `done`.
 * Writes it whole if it holds no 😀.
 */
function writeSplit(x: Exchange, buf: Buffer, last: boolean, done: () => void): void {
  const cut = buf.indexOf(SPLIT_BYTES);
  if (cut < 0) {
    if (last) x.res.end(buf);
    else x.res.write(buf);
    return done();
  }
  x.res.write(buf.subarray(0, cut + 2));
  x.after(SPLIT_PAUSE_MS, () => {
    if (last) x.res.end(buf.subarray(cut + 2));
    else x.res.write(buf.subarray(cut + 2));
    done();
  });
}

/** Non-streaming: wait as long as the whole generation would take, then send one JSON body. */
export function answerWhole(x: Exchange, d: Dialect, t: Turn, pieces: string[], plan: Plan): void {
  const wait = plan.firstDelayMs + Math.max(0, pieces.length - 1) * plan.delayMs;
  x.after(wait, () => {
    const buf = Buffer.from(JSON.stringify(d.complete(t, pieces.join(''))), 'utf8');
    x.res.writeHead(200, { 'content-type': 'application/json', 'content-length': buf.length });
    if (plan.splitUtf8) writeSplit(x, buf, true, () => {});
    else x.res.end(buf);
  });
}

/** Streaming: headers and opening events now, then one write per token as it is produced. */
export function answerStream(x: Exchange, d: Dialect, t: Turn, pieces: string[], plan: Plan): void {
  const res = x.res;
  res.writeHead(200, SSE_HEADERS);
  const opening = d.start(t);
  if (opening.length === 0) res.flushHeaders(); // clients see the status before the first token
  for (const e of opening) res.write(e);

  const cutAt = plan.resetAfter ?? Infinity;
  const lastIndex = pieces.length - 1;
  let i = 0;
  // after a token: wait for the client to drain a full buffer, then for the inter-token delay
  // (none after the last token: the closing events follow it at once, as with real backends)
  const afterToken = (flushed: boolean): void => {
    const delay = i < pieces.length ? plan.delayMs : 0;
    if (!flushed) res.once('drain', () => x.after(delay, next));
    else x.after(delay, next);
  };
  const next = (): void => {
    while (i < pieces.length) {
      if (i >= cutAt) return x.cutAfterFlush();
      const ev = d.token(t, pieces[i] as string, i);
      i++;
      if (plan.splitUtf8 && i - 1 === lastIndex) {
        return writeSplit(x, Buffer.from(ev, 'utf8'), false, () => afterToken(true));
      }
      const flushed = res.write(ev);
      // zero delay and room in the buffer: keep going in this tick (the benchmark path)
      if (!flushed || (plan.delayMs > 0 && i < pieces.length)) return afterToken(flushed);
    }
    if (i >= cutAt) return x.cutAfterFlush();
    for (const e of d.end(t, pieces.join(''), pieces.length > 0)) res.write(e);
    res.end();
  };
  x.after(plan.firstDelayMs, next);
}
