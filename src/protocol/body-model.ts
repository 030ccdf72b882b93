// The top-level `model` of a JSON request body, found and replaced in place: every other byte stays
// as the client sent it (no parse, no re-serialisation). Used where a name the client asked for
// becomes the name a backend knows (worker public names, server aliases).
//
// One forward scan of the top-level object, up to the `model` member: strings are skipped with
// indexOf (long message contents cost little; each escaped quote costs a call), nested objects and
// arrays by counting brackets outside strings. Keys are compared as JSON would decode them
// ("mod\u0065l" is `model`). The first top-level `model` member with a string value is the one
// replaced: a body with a second one is the client's ambiguity (a key limited to some models has such
// bodies refused, see `all`). Works on a JS string; for bytes, scan their latin1 view (one char per
// byte, and JSON's structural characters are ASCII, so the offsets are byte offsets).

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
/** The longest a key that decodes to `model` can be written: each letter as a \uXXXX escape. */
const MAX_MODEL_KEY_CHARS = 5 * 6;

/**
 * Where the top-level `model` value is: [start, end] of the value token, quotes included; with
 * `all`, every top-level `model` string as a flat list [start, end, start, end, …] (a scan to the end
 * of the body). Empty if the object has no `model` string; undefined if `text` is not a JSON object
 * as far as the scan can tell (it checks structure, not every token).
 */
export function modelValueSpans(text: string, all = false): number[] | undefined {
  const n = text.length;
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) return undefined;
  i = skipSpace(text, i + 1);
  const spans: number[] = [];
  if (text.charCodeAt(i) === CLOSE_BRACE) return spans;
  for (;;) {
    if (text.charCodeAt(i) !== QUOTE) return undefined;
    const keyEnd = stringEnd(text, i);
    if (keyEnd < 0) return undefined;
    const isModel = isModelKey(text, i, keyEnd);
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) return undefined;
    i = skipSpace(text, i + 1);
    if (i >= n) return undefined;
    const valueStart = i;
    const c = text.charCodeAt(i);
    if (c === QUOTE) i = stringEnd(text, i);
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) i = containerEnd(text, i);
    else i = scalarEnd(text, i);
    if (i < 0 || i === valueStart) return undefined;
    if (isModel && c === QUOTE) {
      spans.push(valueStart, i);
      if (!all) return spans;
    }
    i = skipSpace(text, i);
    const sep = text.charCodeAt(i);
    if (sep === CLOSE_BRACE) return spans;
    if (sep !== COMMA) return undefined;
    i = skipSpace(text, i + 1);
  }
}

/** `text` with each span replaced by `name` as a JSON string. */
export function replaceSpans(text: string, spans: readonly number[], name: string): string {
  const value = JSON.stringify(name);
  let out = '';
  let at = 0;
  for (let k = 0; k < spans.length; k += 2) {
    out += text.slice(at, spans[k]) + value;
    at = spans[k + 1]!;
  }
  return out + text.slice(at);
}

/** The same for bytes (spans from the latin1 view of `body`), as pieces: views of `body` around the
 * new value, so that a caller copying them on (into a frame) copies the body once. */
export function spliceSpans(body: Buffer, spans: readonly number[], name: string): Buffer[] {
  const value = Buffer.from(JSON.stringify(name), 'utf8');
  const parts: Buffer[] = [];
  let at = 0;
  for (let k = 0; k < spans.length; k += 2) {
    parts.push(body.subarray(at, spans[k]), value);
    at = spans[k + 1]!;
  }
  parts.push(body.subarray(at));
  return parts;
}

/** The same, joined. */
export function replaceSpansInBytes(body: Buffer, spans: readonly number[], name: string): Buffer {
  return Buffer.concat(spliceSpans(body, spans, name));
}

/** The body with its top-level `model` set to `name`, or undefined when there is none to set. */
export function rewriteModel(text: string, name: string): string | undefined {
  const spans = modelValueSpans(text);
  return spans && spans.length > 0 ? replaceSpans(text, spans, name) : undefined;
}

// ---------- the scan ----------

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    // JSON whitespace: space, tab, line feed, carriage return.
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** `i` is at an opening quote: the index just past its closing quote, or -1. */
function stringEnd(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return -1;
    // Escaped if an odd number of backslashes precede it.
    let b = q - 1;
    while (text.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** `i` is at `{` or `[`: the index just past the matching bracket, or -1. */
function containerEnd(text: string, i: number): number {
  const n = text.length;
  let depth = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i < 0) return -1;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) return i + 1;
    }
    i++;
  }
  return -1;
}

/** A number, true, false or null: it runs to the next separator or space. */
function scalarEnd(text: string, i: number): number {
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) return i;
    if (c === QUOTE || c === OPEN_BRACE || c === OPEN_BRACKET || c === COLON) return -1;
    i++;
  }
  return i;
}

/** Whether the key token text[start, end) decodes to `model`. */
function isModelKey(text: string, start: number, end: number): boolean {
  const len = end - start - 2;
  if (len === 5) return text.startsWith('model', start + 1);
  if (len < 5 || len > MAX_MODEL_KEY_CHARS) return false;
  // Longer than `model`: only escapes could make it so.
  let escaped = false;
  for (let i = start + 1; i < end - 1 && !escaped; i++) escaped = text.charCodeAt(i) === BACKSLASH;
  if (!escaped) return false;
  try {
    return JSON.parse(text.slice(start, end)) === 'model';
  } catch {
    return false;
  }
}
