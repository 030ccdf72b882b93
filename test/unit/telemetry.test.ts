// Telemetry's rules on their own: outcomes, percentile windows, the time series, and the metric
// families' Prometheus exposition.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { outcomeOf } from '../../src/telemetry/index.js';
import { percentiles, LatencyWindow } from '../../src/telemetry/latency-window.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { BUCKET_MS, TimeSeries } from '../../src/telemetry/time-series.js';

describe('telemetry rules', () => {
  test('outcomes', () => {
    assert.equal(outcomeOf(200, undefined), 'ok');
    assert.equal(outcomeOf(404, 'model_not_found'), 'client_error');
    assert.equal(outcomeOf(502, 'worker_lost'), 'backend_error');
    assert.equal(outcomeOf(500, undefined), 'backend_error');
    assert.equal(outcomeOf(200, 'client_disconnect'), 'cancelled');
    assert.equal(outcomeOf(503, 'queue_timeout'), 'timed_out');
    assert.equal(outcomeOf(200, 'backend_error'), 'backend_error', 'a stream that failed after its 200');
  });

  test('percentiles skip phases that never happened; the window forgets old samples', () => {
    assert.deepEqual(percentiles([NaN, 3, 1, 2]), { p50: 2, p90: 3, p99: 3 });
    assert.deepEqual(percentiles([]), { p50: null, p90: null, p99: null });
    const w = new LatencyWindow();
    w.record(0, 1, 2, 3);
    w.record(10_000, 5, NaN, 7);
    const s = w.summary(10_000, 5_000);
    assert.equal(s.samples, 1);
    assert.equal(s.first_byte.p50, null);
    assert.equal(s.total.p50, 7);
  });

  test('the time series fills buckets and reports empty ones as zero', () => {
    const ts = new TimeSeries();
    const t0 = 1_000 * BUCKET_MS;
    ts.record(t0, false, 10, 100);
    ts.record(t0 + 1, true, 0, 300);
    const pts = ts.points(t0 + 2 * BUCKET_MS, 1);
    assert.equal(pts.length, 12);
    const b = pts.find((p) => p.t === t0)!;
    assert.deepEqual([b.requests, b.errors, b.tokens, b.p50_ms], [2, 1, 10, 300]);
    assert.equal(pts.at(-1)!.requests, 0);
  });
});

test('metric families: cumulative buckets, sums and counts, scrape-time gauges, capped model labels', async () => {
  const m = new Metrics({ queueDepths: () => new Map([['a', 2]]), workers: () => [{ id: 'w1', name: 'gpu', inFlight: 1, maxConcurrent: 4 }] });
  m.finished('a', '/v1/chat/completions', 200, 0.002, 0.02, 0.3, 5, 7);
  m.finished('a', '/v1/chat/completions', 200, NaN, NaN, 7, 0, 0);
  m.rejected('/v1/messages', 401);
  for (let i = 0; i < 250; i++) m.finished(`model-${i}`, '/v1/completions', 200, 0, 0, 0, 0, 0);
  const text = await m.registry.metrics();
  const has = (line: string): void => assert.ok(text.split('\n').includes(line), line);
  has('modelrelay_requests_total{model="a",route="/v1/chat/completions",status="200"} 2');
  has('modelrelay_requests_total{model="",route="/v1/messages",status="401"} 1');
  has('modelrelay_queue_wait_seconds_bucket{model="a",le="0.001"} 0');
  has('modelrelay_queue_wait_seconds_bucket{model="a",le="0.005"} 1');
  has('modelrelay_queue_wait_seconds_bucket{model="a",le="+Inf"} 1');
  has('modelrelay_queue_wait_seconds_count{model="a"} 1');
  has('modelrelay_request_duration_seconds_bucket{model="a",le="5"} 1');
  has('modelrelay_request_duration_seconds_bucket{model="a",le="10"} 2');
  has('modelrelay_request_duration_seconds_sum{model="a"} 7.3');
  has('modelrelay_tokens_total{model="a",kind="completion"} 7');
  has('modelrelay_queue_depth{model="a"} 2');
  has('modelrelay_worker_in_flight{worker_id="w1",worker="gpu"} 1');
  has('modelrelay_auth_failures_total{kind="admin"} 0');
  const models = new Set([...text.matchAll(/modelrelay_requests_total\{model="([^"]*)"/g)].map((x) => x[1]));
  assert.ok(models.has('_other') && models.size <= 202, `model labels are capped (${models.size})`);
});
