// The benchmark's quick mode (tests/bench, scripts/bench.sh): a small version of every measure,
// so the benchmark keeps working. It asserts what was measured was right (answers, counts, the
// cancelled request never answered, sessions usable afterwards), never how fast it was: times
// on a shared machine are no pass/fail signal. The full run is scripts/bench.sh.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { MEASURES, QUICK, failedChecks } from '../bench/measures.mjs';
import { renderMarkdown } from '../bench/report.mjs';

describe('benchmark, quick mode', () => {
  const rows = [];
  const info = {};
  let checkCount = 0;

  for (const [name, fn] of MEASURES) {
    test(name, async () => {
      const r = await fn(QUICK);
      assert.ok(r.checks.length > 0, `${name} checked nothing`);
      assert.deepEqual(failedChecks(r.checks), [], `${name}: wrong answers or counts`);
      checkCount += r.checks.length;
      assert.ok(r.rows.length > 0);
      for (const row of r.rows) {
        assert.ok(Number.isFinite(row.stats.median), `${row.id}: no figure (${row.stats.median})`);
        assert.ok(row.stats.n >= 1, `${row.id}: no samples`);
        for (const [peer, stats] of Object.entries(row.peers)) {
          assert.ok(Number.isFinite(stats.median), `${row.id}: no figure for ${peer}`);
        }
      }
      rows.push(...r.rows);
      if (r.info) info[name] = r.info;
    });
  }

  test('the report names every measure, its target and a verdict', () => {
    const md = renderMarkdown({
      meta: {
        mode: 'quick', date: new Date().toISOString(), cores: 2, cpu: 'test', memoryGiB: 1, kernel: 'k', os: 'o',
        loadStart: 0, loadEnd: 0, git: 'test', durationS: 1,
        versions: { pythonMcp: '0', python: '3.11', sqlite: '3', node: process.version, npm: {}, codeRunnerPython: 'python' },
      },
      rows,
      info,
      checks: { total: checkCount, failed: [] },
    });
    for (const id of ['spawn_initialize', 'spawn_first_execute', 'execute_latency', 'execute_latency_vs_echo', 'throughput',
      'mcp_call_trivial', 'rows_10k', 'rows_100k', 'cancel_loop', 'cancel_sleep', 'sleep8', 'execute_under_cpu_load',
      'rss_start', 'rss_growth', 'downstream_echo_ratio']) {
      const row = rows.find((r) => r.id === id);
      assert.ok(row, `measure ${id} missing`);
      assert.ok(row.target, `${id} has no target`);
      const line = md.split('\n').find((l) => l.startsWith(`| ${row.title} |`));
      assert.ok(line, `${id} not in the table`);
      assert.match(line, /\| (pass|\*\*miss\*\* \([+-]\d+(\.\d)? %\)) \|$/, line);
    }
  });
});
