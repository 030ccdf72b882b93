// The in-place rewrite of a body's top-level `model`: only that value changes, byte for byte, and
// the scan agrees with JSON.parse about which member is the top-level `model`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { modelValueSpans, replaceSpans, replaceSpansInBytes, rewriteModel, spliceSpans } from '../../src/protocol/body-model.js';
import { decodeBinaryServerMessage, encodeBinary } from '../../src/protocol/codec.js';
import { prng } from '../helpers/prng.js';

/** Rewrites, and checks that everything outside the model values is the input's bytes. */
function rewriteChecked(input: string, name: string): string {
  const spans = modelValueSpans(input);
  assert.ok(spans && spans.length > 0, `no model found in ${input}`);
  const out = replaceSpans(input, spans, name);
  const value = JSON.stringify(name);
  // Piecewise: every gap between model values is the input's, exactly.
  let o = 0;
  let i = 0;
  for (let k = 0; k < spans.length; k += 2) {
    const gap = input.slice(i, spans[k]);
    assert.equal(out.slice(o, o + gap.length), gap, 'bytes before a model value changed');
    o += gap.length + value.length;
    assert.equal(out.slice(o - value.length, o), value);
    i = spans[k + 1]!;
  }
  assert.equal(out.slice(o), input.slice(i), 'bytes after the model value changed');
  return out;
}

describe('body model rewrite', () => {
  it('replaces only the top-level model value, leaving odd spacing, escapes and numbers alone', () => {
    const input = ' {\n\t"messages" : [ {"role":"user","content":"say \\"model\\": \\"x\\" \\\\"} ] ,\r\n  "model"  :\t"chat" , "n":1E+2,"t":-0.0e-0,"big":12345678901234567890123,"s":"\\u00e9\\ud83d\\ude00/\\/"}  ';
    const out = rewriteChecked(input, 'qwen2.5:7b-instruct');
    assert.equal(
      out,
      ' {\n\t"messages" : [ {"role":"user","content":"say \\"model\\": \\"x\\" \\\\"} ] ,\r\n  "model"  :\t"qwen2.5:7b-instruct" , "n":1E+2,"t":-0.0e-0,"big":12345678901234567890123,"s":"\\u00e9\\ud83d\\ude00/\\/"}  ',
    );
  });

  it('leaves nested "model" keys untouched', () => {
    const input =
      '{"tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"model":{"type":"string"}}}}}],"metadata":{"model":"keep"},"model":"chat","extra":[{"model":"keep too"}]}';
    const out = rewriteChecked(input, 'real');
    const parsed = JSON.parse(out) as Record<string, unknown>;
    assert.equal(parsed['model'], 'real');
    assert.deepEqual(parsed['metadata'], { model: 'keep' });
    assert.equal(out.split('"keep').length, 3);
  });

  it('decodes escaped keys the way JSON.parse does, and escaped values are replaced whole', () => {
    const input = '{"mod\\u0065l":"ch\\u0061t","x":"y"}';
    assert.equal(JSON.parse(input).model, 'chat');
    assert.equal(rewriteChecked(input, 'b/c'), '{"mod\\u0065l":"b/c","x":"y"}');
    // A key that only looks like model once unescaped wrongly is not model.
    assert.deepEqual(modelValueSpans('{"model\\u0073":"a","models":"b"}'), []);
    assert.deepEqual(modelValueSpans('{"mode":"a","modell":"b","Model":"c"}'), []);
  });

  it('replaces the first top-level model string; `all` finds every duplicate', () => {
    assert.equal(rewriteModel('{"model":null,"model":"a","x":1,"model":"b"}', 'z'), '{"model":null,"model":"z","x":1,"model":"b"}');
    assert.deepEqual(modelValueSpans('{"model":"a","x":1,"model":"b"}', true), [9, 12, 27, 30]);
    assert.deepEqual(modelValueSpans('{"model":"a","x":1,"model":"b"}'), [9, 12]);
  });

  it('ignores a model that is not a string, and refuses what is not an object', () => {
    assert.deepEqual(modelValueSpans('{"model":null,"a":[1,2,{"b":"}"}]}'), []);
    assert.equal(rewriteModel('{"model":12}', 'x'), undefined);
    for (const bad of ['', '[]', '"model"', '{"model" "a"}', '{model:"a"}', '{"a":[1,2}', '{"a":"unterminated}', '{"a":1 "model":"b"}']) {
      assert.equal(modelValueSpans(bad), undefined, bad);
    }
    // The scan stops at the model: what follows is checked only when it reads on (`all`).
    for (const bad of ['{"model":"a"', '{"model":"a",}']) {
      assert.deepEqual(modelValueSpans(bad), [9, 12], bad);
      assert.equal(modelValueSpans(bad, true), undefined, bad);
    }
    assert.deepEqual(modelValueSpans('{}'), []);
    assert.deepEqual(modelValueSpans(' { } '), []);
  });

  it('a name that needs escaping is written as a valid JSON string', () => {
    const out = rewriteChecked('{"model":"a"}', 'we"ird\\name\u0001é');
    assert.equal(JSON.parse(out).model, 'we"ird\\name\u0001é');
  });

  it('on bytes: spans from the latin1 view are byte offsets, multi-byte UTF-8 around them survives', () => {
    const text = '{"messages":[{"content":"héllo 😀 \\"model\\":\\"no\\" ünïcode"}],"model":"chat","tail":"ß"}';
    const bytes = Buffer.from(text, 'utf8');
    const spans = modelValueSpans(bytes.toString('latin1'))!;
    const out = replaceSpansInBytes(bytes, spans, 'qwen/é');
    assert.equal(out.toString('utf8'), text.replace('"model":"chat"', '"model":"qwen/é"'));
  });

  it('a binary frame takes the rewritten body in pieces: the same frame as from the joined bytes', () => {
    const bytes = Buffer.from('{"messages":[{"content":"é 😀"}],"model":"gpt-4o-mini","n":1}', 'utf8');
    const parts = spliceSpans(bytes, modelValueSpans(bytes.toString('latin1'))!, 'qwen-a');
    const msg = { type: 'request', request_id: 'r1', model: 'qwen-a', endpoint_path: '/v1/chat/completions', is_streaming: false, body: '', headers: {} } as const;
    const frame = encodeBinary(msg, parts)!;
    assert.deepEqual(frame, encodeBinary(msg, Buffer.concat(parts)));
    const decoded = decodeBinaryServerMessage(frame);
    assert.ok(decoded.ok && decoded.msg.type === 'request');
    assert.equal(decoded.msg.body, '{"messages":[{"content":"é 😀"}],"model":"qwen-a","n":1}');
  });

  it('property: on random JSON objects the scan agrees with JSON.parse and keeps every other byte', () => {
    const rnd = prng(18);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const space = (): string => (rnd() < 0.6 ? '' : pick([' ', '\n', '\t', '\r\n  ', '  ']));
    const str = (): string => {
      const raw = pick(['model', 'm', 'héllo 😀', 'a"b', 'back\\slash', '{[}]', ',:', '', 'mod\u0065l']);
      // Sometimes escape a letter as \uXXXX (JSON allows it anywhere in a string).
      let s = JSON.stringify(raw);
      if (rnd() < 0.3) s = s.replace(/[a-z]/, (ch) => `\\u00${ch.charCodeAt(0).toString(16)}`);
      if (rnd() < 0.2) s = s.replace('/', '\\/');
      return s;
    };
    const num = (): string => pick(['0', '-0', '1e5', '1E+2', '-0.0e-0', '3.14159', '12345678901234567890', '1.0']);
    const value = (depth: number): string => {
      const x = rnd();
      if (depth > 3 || x < 0.3) return pick([str(), num(), 'true', 'false', 'null']);
      if (x < 0.65) return `[${space()}${Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1)).join(`${space()},${space()}`)}${space()}]`;
      return object(depth + 1);
    };
    const object = (depth: number): string => {
      const member = (): string => {
        const isModel = rnd() < 0.3;
        const key = isModel ? pick(['"model"', '"model"', '"mod\\u0065l"']) : str();
        return `${key}${space()}:${space()}${isModel && rnd() < 0.8 ? str() : value(depth)}`;
      };
      const members = Array.from({ length: 1 + Math.floor(rnd() * 5) }, member);
      return `{${space()}${members.join(`${space()},${space()}`)}${space()}}`;
    };
    let withModel = 0;
    for (let n = 0; n < 3000; n++) {
      const doc = `${space()}${object(0)}${space()}`;
      const parsed = JSON.parse(doc) as Record<string, unknown>;
      const spans = modelValueSpans(doc);
      assert.ok(spans, `scan refused valid JSON: ${doc}`);
      const all = modelValueSpans(doc, true)!;
      // JSON.parse keeps the last duplicate; the scan with `all` sees each, and stops at the first.
      const stringModels = doc.length > 0 ? all.length / 2 : 0;
      assert.deepEqual(spans, all.slice(0, 2));
      if (typeof parsed['model'] === 'string') assert.equal(JSON.parse(doc.slice(all.at(-2), all.at(-1))), parsed['model']);
      if (typeof parsed['model'] !== 'string' || stringModels !== 1) continue;
      withModel++;
      const out = rewriteChecked(doc, 'new-name');
      const after = JSON.parse(out) as Record<string, unknown>;
      assert.equal(after['model'], 'new-name', doc);
      delete after['model'];
      delete parsed['model'];
      assert.deepEqual(after, parsed, `other members changed: ${doc}`);
    }
    assert.ok(withModel > 300, `only ${withModel} documents had a model`);
  });
});
