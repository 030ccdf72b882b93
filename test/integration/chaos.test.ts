// The short chaos soak (issue 12): about 20 s of mixed load on four workers while every kind of
// fault strikes and the server restarts once; every request's outcome is checked, and the fleet
// must be whole afterwards. `npm run chaos -- --secs N --seed S` runs the same soak for longer.
// CHAOS_SEED=S replays a run (the seed is printed).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { killAll } from '../helpers/cluster.js';
import { WORKER_FAULTS } from '../chaos/faults.js';
import { DEFAULT_SOAK, formatReport, runSoak, violations } from '../chaos/soak.js';

after(killAll);

test('chaos soak: kills, freezes, drains, cuts, stalls and a server restart under load; every outcome checked', async (t) => {
  const seed = process.env['CHAOS_SEED'] ? Number(process.env['CHAOS_SEED']) : Math.floor(Math.random() * 2 ** 31);
  t.diagnostic(`seed ${seed} (replay: CHAOS_SEED=${seed}, or npm run chaos -- --secs 20 --seed ${seed})`);
  const report = await runSoak({ ...DEFAULT_SOAK, seed, secs: 20, faultGapSecs: [0.5, 1.5] });
  const text = formatReport(report);
  for (const line of text.split('\n')) t.diagnostic(line);
  assert.deepEqual(report.problems, [], text);
  assert.equal(violations(report).length, 0, text);
  const kinds = new Set(report.faults.map((f) => f.kind));
  for (const k of [...WORKER_FAULTS.map((f) => f.name), 'server-restart']) assert.ok(kinds.has(k), `the soak injected no ${k} fault:\n${text}`);
  assert.ok(report.requests.filter((r) => r.verdict?.outcome === 'ok').length > 100, `enough requests succeeded to mean something:\n${text}`);
});
