// The benchmark's measures. Each takes the run's configuration (FULL or QUICK) and returns
//   { rows: [row, ...], checks: [{ what, actual, expected }, ...], info: {...} }
// A row is one line of the results table: a figure for python-mcp (stats over all samples, the
// spread over repetitions), its target, and the same figure for the peers where one exists.
// checks record whether what was measured was right (answers, counts); run.mjs refuses results
// whose checks fail, and the quick test (tests/interop/bench_quick.test.mjs) asserts them.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  SYSTEMS, EVERYTHING_ENTRY, RawConnection, sdkConnect, pipelined, summarize, median, now, delay,
  readRssKiB,
} from './lib.mjs';

export const FULL = {
  mode: 'full',
  spawn: { reps: 20 },
  latency: { rounds: 10, warmup: 100, perRound: { pymcp: 300, everything: 300, coderunner: 10 } },
  rawLatency: { rounds: 6, perRound: 500 },
  throughput: { rounds: 5, window: 256, warmup: 2000, total: { pymcp: 20000, everything: 20000, coderunner: 40 } },
  trivialCall: { calls: 100000, rounds: 3, probeCalls: 5000 },
  rows: { reps: 10 },
  cancel: { reps: 15, baseline: 30 },
  sleep8: { reps: 5 },
  cpuLoad: { rounds: 3, probes: 100 },
  memory: { startReps: 5, warmup: 2000, executes: 100000, chunks: 10 },
  downstream: { rounds: 5, calls: 2000, warmup: 200 },
};

export const QUICK = {
  mode: 'quick',
  spawn: { reps: 1 },
  latency: { rounds: 2, warmup: 5, perRound: { pymcp: 20, everything: 20, coderunner: 2 } },
  rawLatency: { rounds: 2, perRound: 20 },
  throughput: { rounds: 1, window: 64, warmup: 50, total: { pymcp: 400, everything: 400, coderunner: 4 } },
  trivialCall: { calls: 2000, rounds: 1, probeCalls: 200 },
  rows: { reps: 1 },
  cancel: { reps: 1, baseline: 5 },
  sleep8: { reps: 1 },
  cpuLoad: { rounds: 1, probes: 5 },
  memory: { startReps: 1, warmup: 100, executes: 1000, chunks: 2 },
  downstream: { rounds: 1, calls: 50, warmup: 5 },
};

const ORDER = ['pymcp', 'everything', 'coderunner'];
// A B C, B C A, C A B, ...: every system goes first as often as the others.
function rotated(keys, round) {
  const r = round % keys.length;
  return [...keys.slice(r), ...keys.slice(0, r)];
}

function check(checks, what, actual, expected) { checks.push({ what, actual, expected }); }

function row(fields) {
  return { peers: {}, ratios: {}, ...fields };
}

// Ratios taken pair by pair: value of python-mcp / value of the peer in the same round.
function ratioStats(pairs) {
  const ratios = pairs.map(([a, b]) => a / b);
  const s = [...ratios].sort((x, y) => x - y);
  return { median: median(ratios), spread: [s[0], s[s.length - 1]], n: ratios.length };
}

// ------------------------------------------------------------------------------------------------
// 1, 2: spawn -> initialize answered; spawn -> first result (raw driver: initialize is written
// the moment the process exists, the call as soon as initialize is answered).

async function bareCPythonStart() {
  const t0 = now();
  const child = spawn('/usr/bin/python3.11', ['-c', 'pass'], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin', HOME: tmpdir() } });
  const code = await new Promise((res) => child.once('exit', res));
  if (code !== 0) throw new Error(`python3.11 -c pass exited with ${code}`);
  return now() - t0;
}

export async function measureSpawn(cfg) {
  const checks = [];
  const init = { pymcp: [], everything: [], coderunner: [] };
  const first = { pymcp: [], everything: [], coderunner: [] };
  const bare = [];
  for (let rep = 0; rep < cfg.spawn.reps; rep++) {
    bare.push(await bareCPythonStart());
    for (const key of rotated(ORDER, rep)) {
      const sys = SYSTEMS[key];
      const conn = new RawConnection(sys, { tag: `spawn-${key}` });
      try {
        const i = await conn.initialize();
        init[key].push(i.t - conn.spawnedAt);
        const r = await conn.callTool(sys.call());
        first[key].push(r.t - conn.spawnedAt);
        check(checks, `${sys.label} first call answered correctly (rep ${rep})`, sys.check(r.msg.result), true);
      } finally {
        await conn.close();
      }
    }
  }
  const peerStats = (m) => ({ everything: summarize(m.everything, m.everything), coderunner: summarize(m.coderunner, m.coderunner) });
  const pairs = (m, peer) => m.pymcp.map((v, i) => [v, m[peer][i]]);
  return {
    checks,
    rows: [
      row({
        id: 'spawn_initialize', title: 'spawn -> `initialize` answered', unit: 'ms',
        target: { op: '<=', value: 30 },
        stats: summarize(init.pymcp, init.pymcp), peers: peerStats(init),
        ratios: { everything: ratioStats(pairs(init, 'everything')), coderunner: ratioStats(pairs(init, 'coderunner')) },
        method: 'raw driver; new process each repetition; clock starts before spawn()',
      }),
      row({
        id: 'spawn_first_execute', title: 'spawn -> first `execute` result', unit: 'ms',
        target: { op: '<=', value: 40 },
        stats: summarize(first.pymcp, first.pymcp), peers: peerStats(first),
        ratios: { everything: ratioStats(pairs(first, 'everything')), coderunner: ratioStats(pairs(first, 'coderunner')) },
        method: 'raw driver; the call (`x = 1`, echo, run-code) is sent when initialize is answered',
      }),
      row({
        id: 'spawn_bare_cpython', title: 'for scale: spawn -> exit of `python3.11 -c pass`', unit: 'ms', target: null,
        stats: summarize(bare, bare),
        method: 'informational: the system CPython starting (with site) and exiting, in the same repetitions: the floor under any CPython start here',
      }),
    ],
  };
}

// ------------------------------------------------------------------------------------------------
// 3: sequential per-call latency through the official SDK client, every system, interleaved.

export async function measureLatency(cfg) {
  const checks = [];
  const conns = {};
  try {
    for (const key of ORDER) conns[key] = await sdkConnect(SYSTEMS[key], { tag: `lat-${key}` });
    const callOnce = async (key) => {
      const sys = SYSTEMS[key];
      const t = now();
      const r = await conns[key].client.callTool(sys.call());
      const dt = now() - t;
      return { dt, ok: sys.check(r) };
    };
    for (const key of ORDER) {
      const n = key === 'coderunner' ? Math.min(3, cfg.latency.warmup) : cfg.latency.warmup;
      for (let i = 0; i < n; i++) await callOnce(key);
    }
    const samples = { pymcp: [], everything: [], coderunner: [] };
    const rounds = { pymcp: [], everything: [], coderunner: [] };
    for (let round = 0; round < cfg.latency.rounds; round++) {
      for (const key of rotated(ORDER, round)) {
        const these = [];
        let good = 0;
        for (let i = 0; i < cfg.latency.perRound[key]; i++) {
          const { dt, ok } = await callOnce(key);
          these.push(dt);
          if (ok) good++;
        }
        check(checks, `${SYSTEMS[key].label} answers correct in latency round ${round}`, good, these.length);
        samples[key].push(...these);
        rounds[key].push(median(these));
      }
    }
    // code-runner prints its console.debug lines on stdout, the protocol stream: the SDK reports
    // each as an error and goes on. The other two must write nothing but JSON-RPC.
    for (const key of ['pymcp', 'everything']) check(checks, `${SYSTEMS[key].label}: the SDK client saw no protocol errors`, conns[key].errors, []);
    const pair = (peer) => rounds.pymcp.map((v, i) => [v, rounds[peer][i]]);
    const ratioEverything = ratioStats(pair('everything'));
    const base = {
      stats: summarize(samples.pymcp, rounds.pymcp),
      peers: { everything: summarize(samples.everything, rounds.everything), coderunner: summarize(samples.coderunner, rounds.coderunner) },
      ratios: { everything: ratioEverything, coderunner: ratioStats(pair('coderunner')) },
    };
    return {
      checks,
      rows: [
        row({
          id: 'execute_latency', title: '`execute` of `x = 1`, persistent session, SDK client, sequential', unit: 'ms',
          target: { op: '<=', value: 0.25 }, ...base,
          method: 'SDK Client.callTool, one call at a time; peers: echo, run-code; rounds interleaved A B C / B C A / ...',
        }),
        row({
          id: 'execute_latency_vs_echo', title: '... the same, as a ratio to server-everything `echo`', unit: 'x',
          target: { op: '<=', value: 0.7 },
          stats: { n: ratioEverything.n, median: ratioEverything.median, spread: ratioEverything.spread },
          method: 'per round: median python-mcp / median echo, then the median of the rounds',
        }),
      ],
    };
  } finally {
    for (const c of Object.values(conns)) await c.close().catch(() => {});
  }
}

// Informational: the same sequential call with the raw driver (no SDK client in the loop), so
// the client's own share of the SDK figure is visible.
export async function measureRawLatency(cfg) {
  const checks = [];
  const keys = ['pymcp', 'everything'];
  const conns = {};
  try {
    for (const key of keys) {
      conns[key] = new RawConnection(SYSTEMS[key], { tag: `rawlat-${key}` });
      await conns[key].initialize();
      for (let i = 0; i < 50; i++) await conns[key].callTool(SYSTEMS[key].call());
    }
    const samples = { pymcp: [], everything: [] };
    const rounds = { pymcp: [], everything: [] };
    for (let round = 0; round < cfg.rawLatency.rounds; round++) {
      for (const key of rotated(keys, round)) {
        const these = [];
        let good = 0;
        for (let i = 0; i < cfg.rawLatency.perRound; i++) {
          const r = await conns[key].callTool(SYSTEMS[key].call());
          these.push(r.t - r.sentAt);
          if (SYSTEMS[key].check(r.msg.result)) good++;
        }
        check(checks, `${SYSTEMS[key].label} raw sequential answers correct (round ${round})`, good, these.length);
        samples[key].push(...these);
        rounds[key].push(median(these));
      }
    }
    return {
      checks,
      rows: [row({
        id: 'execute_latency_raw', title: 'the same call, raw driver (no SDK client), sequential', unit: 'ms',
        target: null,
        stats: summarize(samples.pymcp, rounds.pymcp),
        peers: { everything: summarize(samples.everything, rounds.everything) },
        ratios: { everything: ratioStats(rounds.pymcp.map((v, i) => [v, rounds.everything[i]])) },
        method: 'informational: one request line written, the answer line read, then the next',
      })],
    };
  } finally {
    for (const c of Object.values(conns)) await c.close();
  }
}

// ------------------------------------------------------------------------------------------------
// 4: executes per second, pipelined over 4 sessions (raw driver, sliding window of requests).

export async function measureThroughput(cfg) {
  const checks = [];
  const conns = {};
  const make = (key) => (i) => SYSTEMS[key].call(`s${i % 4}`);
  try {
    for (const key of ORDER) {
      conns[key] = new RawConnection(SYSTEMS[key], { tag: `tput-${key}` });
      await conns[key].initialize();
      const warm = key === 'coderunner' ? 2 : cfg.throughput.warmup;
      await pipelined(conns[key], { total: warm, window: cfg.throughput.window, make: make(key), check: SYSTEMS[key].check });
    }
    const rates = { pymcp: [], everything: [], coderunner: [] };
    for (let round = 0; round < cfg.throughput.rounds; round++) {
      for (const key of rotated(ORDER, round)) {
        if (key === 'coderunner' && round >= 2) continue;  // a process per call: two rounds are plenty
        const total = cfg.throughput.total[key];
        const r = await pipelined(conns[key], { total, window: cfg.throughput.window, make: make(key), check: SYSTEMS[key].check });
        check(checks, `${SYSTEMS[key].label} pipelined: all ${total} answered correctly (round ${round})`, r.good, total);
        rates[key].push(total / (r.ms / 1000));
      }
    }
    check(checks, 'python-mcp wrote only JSON-RPC on stdout', conns.pymcp.nonJson.length, 0);
    const pairRates = (peer) => rates[peer].map((v, i) => [rates.pymcp[i], v]);
    return {
      checks,
      rows: [row({
        id: 'throughput', title: 'executes per second, pipelined over 4 sessions', unit: '/s',
        target: { op: '>=', value: 20000 },
        stats: summarize(rates.pymcp, rates.pymcp),
        peers: { everything: summarize(rates.everything, rates.everything), coderunner: summarize(rates.coderunner, rates.coderunner) },
        ratios: { everything: ratioStats(pairRates('everything')), coderunner: ratioStats(pairRates('coderunner')) },
        method: `raw driver, ${cfg.throughput.total.pymcp} requests per round with at most ${cfg.throughput.window} in flight; `
          + 'sessions s0..s3 round robin; each round is one sample (the figure is the median round)',
      })],
    };
  } finally {
    for (const c of Object.values(conns)) await c.close();
  }
}

// ------------------------------------------------------------------------------------------------
// 5: in-process mcp.call of a trivial tool, timed inside Python. The cheapest of a few candidate
// calls (measured first, briefly) is used, and named in the results.

const TRIVIAL_CANDIDATES = [
  { label: "sqlite `SELECT 1`", tool: 'sqlite', params: "{'sql': 'SELECT 1'}", check: "r['structuredContent']['rows'] == [[1]]" },
  { label: 'python `list_sessions`', tool: 'python', params: "{'operation': 'list_sessions'}", check: "'sessions' in r['structuredContent']" },
];

function timedCallsCode(candidate, n) {
  return [
    'import json, time',
    '_call = mcp.call',
    `_p = ${candidate.params}`,
    `r = _call('${candidate.tool}', _p)`,
    `assert ${candidate.check}, r`,
    `_n = ${n}`,
    '_t = time.perf_counter()',
    'for _ in range(_n):',
    `    r = _call('${candidate.tool}', _p)`,
    '_dt = time.perf_counter() - _t',
    `assert ${candidate.check}, r`,
    '_t = time.perf_counter()',
    'for _ in range(_n):',
    '    pass',
    '_loop = time.perf_counter() - _t',
    "print(json.dumps({'us_per_call': _dt / _n * 1e6, 'loop_us': _loop / _n * 1e6}))",
  ].join('\n');
}

export async function measureTrivialCall(cfg) {
  const checks = [];
  const conn = new RawConnection(SYSTEMS.pymcp, { tag: 'trivial' });
  try {
    await conn.initialize();
    const perRound = TRIVIAL_CANDIDATES.map(() => []);
    let loopUs = 0;
    let bytes = 0;
    for (const c of TRIVIAL_CANDIDATES) await conn.execute(timedCallsCode(c, cfg.trivialCall.probeCalls), { session: 'trivial' });
    for (let round = 0; round < cfg.trivialCall.rounds; round++) {
      const order = round % 2 ? [...TRIVIAL_CANDIDATES.keys()].reverse() : [...TRIVIAL_CANDIDATES.keys()];
      for (const k of order) {
        const raw = await conn.execute(timedCallsCode(TRIVIAL_CANDIDATES[k], cfg.trivialCall.calls), { session: 'trivial' });
        const out = JSON.parse(raw.stdout.trim().split('\n').pop());
        perRound[k].push(out.us_per_call);
        loopUs = out.loop_us;
        bytes = Math.max(bytes, raw.responseBytes);
        const omitted = raw.mcp_calls_omitted ?? [];
        const counted = raw.mcp_calls.length + omitted.reduce((n, t) => n + t.calls, 0);
        const failed = raw.mcp_calls.filter((c) => c.isError).length + omitted.reduce((n, t) => n + t.errors, 0);
        check(checks, `${TRIVIAL_CANDIDATES[k].label}: every nested call counted in mcp_calls + mcp_calls_omitted (round ${round})`, counted, cfg.trivialCall.calls + 1);
        check(checks, `${TRIVIAL_CANDIDATES[k].label}: no nested call failed (round ${round})`, failed, 0);
      }
    }
    const medians = perRound.map((v) => median(v));
    const best = medians.indexOf(Math.min(...medians));
    const chosen = TRIVIAL_CANDIDATES[best];
    const probe = TRIVIAL_CANDIDATES.map((c, k) => ({ label: c.label, us: medians[k] }));
    return {
      checks,
      info: { candidates: probe, chosen: chosen.label, emptyLoopUs: loopUs, responseBytes: bytes },
      rows: [row({
        id: 'mcp_call_trivial', title: `in-process \`mcp.call\` of a trivial tool (${chosen.label})`, unit: 'µs',
        target: { op: '<=', value: 3 },
        stats: summarize(perRound[best], perRound[best]),
        method: `time.perf_counter() around ${cfg.trivialCall.calls.toLocaleString('en-US')} calls in one execute, per call; each candidate `
          + `run every round, the one with the lowest median reported: ${probe.map((p) => `${p.label} ${p.us.toFixed(2)} µs`).join(', ')}; `
          + `the execute's response carried ${(bytes / 1024).toFixed(1)} KiB (mcp_calls lists the first 20 calls, the rest are counted)`,
      })],
    };
  } finally {
    await conn.close();
  }
}

// ------------------------------------------------------------------------------------------------
// 6, 7: mcp.call returning 10,000 rows; sqlite SELECT of 100,000 rows into Python (rows as
// Python lists in structuredContent), timed inside Python.

const ROWS_SETUP = `
import json
r = mcp.call('sqlite', {'sql': [
    'DROP TABLE IF EXISTS bench_rows',
    "CREATE TABLE bench_rows AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) "
    "SELECT i AS id, 'name-' || i AS name, i * 0.5 AS value FROM c",
], 'database': ':memory:'})
n = mcp.call('sqlite', {'sql': 'SELECT COUNT(*) FROM bench_rows', 'database': ':memory:'})['structuredContent']['rows'][0][0]
print(json.dumps({'count': n}))
`;

function rowsCode(limit) {
  const sql = limit === 100000 ? 'SELECT id, name, value FROM bench_rows' : `SELECT id, name, value FROM bench_rows LIMIT ${limit}`;
  return `
import json, time
_t = time.perf_counter()
r = mcp.call('sqlite', {'sql': '${sql}', 'database': ':memory:'})
rows = r['structuredContent']['rows']
_dt = time.perf_counter() - _t
out = {'ms': _dt * 1000, 'n': len(rows), 'last': rows[-1], 'is_list': type(rows) is list}
del r, rows
print(json.dumps(out))
`;
}

export async function measureRows(cfg) {
  const checks = [];
  const conn = new RawConnection(SYSTEMS.pymcp, { tag: 'rows' });
  try {
    await conn.initialize();
    const setup = await conn.executeJson(ROWS_SETUP, { session: 'rows' });
    check(checks, 'table has 100,000 rows', setup.count, 100000);
    const times = { 10000: [], 100000: [] };
    for (let rep = 0; rep < cfg.rows.reps; rep++) {
      for (const limit of rep % 2 ? [100000, 10000] : [10000, 100000]) {
        const out = await conn.executeJson(rowsCode(limit), { session: 'rows' });
        check(checks, `${limit} rows came back (rep ${rep})`, out.n, limit);
        check(checks, `last of ${limit} rows is right (rep ${rep})`, JSON.stringify(out.last), JSON.stringify([limit, `name-${limit}`, limit * 0.5]));
        times[limit].push(out.ms);
      }
    }
    return {
      checks,
      rows: [
        row({
          id: 'rows_10k', title: '`mcp.call` returning 10,000 rows', unit: 'ms', target: { op: '<=', value: 30 },
          stats: summarize(times[10000], times[10000]),
          method: 'sqlite `SELECT id, name, value ... LIMIT 10000` (int, text, real) from :memory:, timed inside Python',
        }),
        row({
          id: 'rows_100k', title: 'sqlite SELECT of 100,000 rows into Python', unit: 'ms', target: { op: '<=', value: 300 },
          stats: summarize(times[100000], times[100000]),
          method: 'the same, all 100,000 rows, until `structuredContent.rows` is a Python list',
        }),
      ],
    };
  } finally {
    await conn.close();
  }
}

// ------------------------------------------------------------------------------------------------
// 8, 9: cancellation. The running call touches a marker file, then loops (or sleeps). Once the
// marker exists (+20 ms), ONE write carries notifications/cancelled for it and a probe execute
// `1` in the SAME session; a session runs its calls in order, so the probe is answered only
// after the cancelled code has stopped. Cancel latency = (probe answered - cancel sent) - the
// median latency of the same probe in the idle session, measured just before.

async function waitForFile(path, timeoutMs = 20000) {
  const deadline = now() + timeoutMs;
  while (!existsSync(path)) {
    if (now() > deadline) throw new Error(`timed out waiting for ${path}`);
    await delay(1);
  }
}

export async function measureCancel(cfg) {
  const checks = [];
  const conn = new RawConnection(SYSTEMS.pymcp, { tag: 'cancel' });
  const session = 'cancel';
  const cancelledIds = [];
  try {
    await conn.initialize();
    await conn.execute('import time, pathlib', { session });
    const probe = async () => {
      const r = await conn.callTool({ name: 'python', arguments: { code: '1', session_id: session, persistent: true } });
      return r.t - r.sentAt;
    };
    for (let i = 0; i < 5; i++) await probe();
    const base = [];
    for (let i = 0; i < cfg.cancel.baseline; i++) base.push(await probe());
    const baseline = median(base);
    const bodies = { loop: 'while True: pass', sleep: 'time.sleep(60)' };
    let lastCancel = -Infinity;
    // Starts `kind`, waits for its marker (+20 ms), cancels it with the probe behind it.
    const cancelOnce = async (kind, label) => {
      const marker = join(conn.scratch.tmp, `marker-${label}`);
      const a = conn.nextId++;
      cancelledIds.push(a);
      conn.write(conn.line('tools/call', {
        name: 'python',
        arguments: { code: `pathlib.Path(${JSON.stringify(marker)}).touch()\n${bodies[kind]}`, session_id: session, persistent: true, timeout: 120 },
      }, a));
      await waitForFile(marker);
      await delay(20);
      const b = conn.nextId++;
      const answered = conn.expect(b);
      const sent = now();
      const sincePrevious = sent - lastCancel;
      lastCancel = sent;
      conn.write(conn.line('notifications/cancelled', { requestId: a, reason: 'bench' })
        + conn.line('tools/call', { name: 'python', arguments: { code: '1', session_id: session, persistent: true } }, b));
      const r = await answered;
      check(checks, `probe after cancelling ${label} answered 1`, r.msg.result?.structuredContent?.result, '1');
      return { raw: r.t - sent, net: r.t - sent - baseline, sincePrevious };
    };
    const results = { loop: [], sleep: [], loopAfter: [] };
    const raw = { loop: [], sleep: [], loopAfter: [] };
    const gaps = [];
    for (let rep = 0; rep < cfg.cancel.reps; rep++) {
      // Isolated: at least 100 ms since the previous cancellation.
      for (const kind of rep % 2 ? ['sleep', 'loop'] : ['loop', 'sleep']) {
        await delay(100);
        const r = await cancelOnce(kind, `${kind}-${rep}`);
        raw[kind].push(r.raw);
        results[kind].push(r.net);
      }
      // Back to back: a loop cancelled right after another cancellation (the sleep's, or the
      // loop's just above), as when a client cancels several calls, or timeouts fall together.
      await delay(100);
      await cancelOnce('sleep', `pre-${rep}`);
      const r = await cancelOnce('loop', `after-${rep}`);
      raw.loopAfter.push(r.raw);
      results.loopAfter.push(r.net);
      gaps.push(r.sincePrevious);
    }
    await delay(100);
    const leaked = conn.unmatched.filter((u) => cancelledIds.includes(u.msg.id)).length;
    check(checks, 'cancelled requests got no answer', leaked, 0);
    const method = (kind) => `probe method (see Method), at least 100 ms after any other cancellation; raw probe time median ${median(raw[kind]).toFixed(2)} ms, idle probe ${baseline.toFixed(2)} ms subtracted`;
    return {
      checks,
      info: { baselineMs: baseline, rawLoop: summarize(raw.loop), rawSleep: summarize(raw.sleep), rawLoopAfter: summarize(raw.loopAfter), gapsMs: summarize(gaps) },
      rows: [
        row({ id: 'cancel_loop', title: 'cancellation of `while True: pass`', unit: 'ms', target: { op: '<=', value: 20 },
          stats: summarize(results.loop, results.loop), method: method('loop') }),
        row({ id: 'cancel_sleep', title: 'cancellation of `time.sleep(60)`', unit: 'ms', target: { op: '<=', value: 5 },
          stats: summarize(results.sleep, results.sleep), method: method('sleep') }),
        row({ id: 'cancel_loop_after_cancel', title: '... of `while True: pass` right after another cancellation', unit: 'ms', target: null,
          stats: summarize(results.loopAfter, results.loopAfter),
          method: `informational: the same, ${median(gaps).toFixed(0)} ms (median) after cancelling a \`time.sleep(60)\` in the same session` }),
      ],
    };
  } finally {
    await conn.close();
  }
}

// ------------------------------------------------------------------------------------------------
// 10: 8 sessions each running time.sleep(0.5) at once: wall time from the one write of the 8
// requests to the last answer. The sessions exist beforehand (each ran `import time`).

export async function measureSleep8(cfg) {
  const checks = [];
  const conn = new RawConnection(SYSTEMS.pymcp, { tag: 'sleep8' });
  try {
    await conn.initialize();
    for (let s = 0; s < 8; s++) await conn.execute('import time', { session: `sleep${s}` });
    const walls = [];
    for (let rep = 0; rep < cfg.sleep8.reps; rep++) {
      const waits = [];
      let text = '';
      for (let s = 0; s < 8; s++) {
        const id = conn.nextId++;
        waits.push(conn.expect(id));
        text += conn.line('tools/call', { name: 'python', arguments: { code: 'time.sleep(0.5)\n"slept"', session_id: `sleep${s}`, persistent: true } }, id);
      }
      const sent = now();
      conn.write(text);
      const answers = await Promise.all(waits);
      walls.push((Math.max(...answers.map((a) => a.t)) - sent) / 1000);
      check(checks, `8 sleeps answered (rep ${rep})`, answers.filter((a) => a.msg.result?.structuredContent?.result === "'slept'").length, 8);
    }
    return {
      checks,
      rows: [row({
        id: 'sleep8', title: '8 sessions each running `time.sleep(0.5)` at once', unit: 's', target: { op: '<=', value: 0.6 },
        stats: summarize(walls, walls), method: 'raw driver; 8 requests in one write; until the last answer',
      })],
    };
  } finally {
    await conn.close();
  }
}

// ------------------------------------------------------------------------------------------------
// 11: a trivial execute while 4 other sessions run CPU-bound loops (SDK client; the loops are
// cancelled through AbortSignal afterwards and their sessions must answer again).

export async function measureCpuLoad(cfg) {
  const checks = [];
  const c = await sdkConnect(SYSTEMS.pymcp, { tag: 'cpuload' });
  const call = (code, session, options) => c.client.callTool(
    { name: 'python', arguments: { code, session_id: session, persistent: true, timeout: 300 } }, undefined, options);
  try {
    const idle = [];
    for (let i = 0; i < 20; i++) {
      const t = now();
      await call('x = 1', 'probe');
      idle.push(now() - t);
    }
    const samples = [];
    const rounds = [];
    for (let round = 0; round < cfg.cpuLoad.rounds; round++) {
      const controllers = [];
      const loops = [];
      const markers = [];
      for (let k = 0; k < 4; k++) {
        const ac = new AbortController();
        controllers.push(ac);
        const marker = join(c.scratch.tmp, `busy-${round}-${k}`);
        markers.push(marker);
        loops.push(call(`import pathlib\npathlib.Path(${JSON.stringify(marker)}).touch()\nwhile True: pass`, `busy${k}`,
          { signal: ac.signal, timeout: 600000 }).then(() => 'answered', (e) => (e?.name === 'AbortError' || /abort/i.test(String(e)) ? 'aborted' : `failed: ${e}`)));
      }
      for (const m of markers) await waitForFile(m);
      await delay(50);
      const these = [];
      let good = 0;
      for (let i = 0; i < cfg.cpuLoad.probes; i++) {
        const t = now();
        const r = await call('x = 1', 'probe');
        these.push(now() - t);
        if (r.structuredContent?.success === true) good++;
      }
      for (const ac of controllers) ac.abort();
      const how = await Promise.all(loops);
      check(checks, `4 loops cancelled through AbortSignal (round ${round})`, how.filter((h) => h === 'aborted').length, 4);
      check(checks, `probes under load answered (round ${round})`, good, these.length);
      for (let k = 0; k < 4; k++) {
        const r = await call('21 * 2', `busy${k}`);
        check(checks, `busy session ${k} usable after cancel (round ${round})`, r.structuredContent?.result, '42');
      }
      samples.push(...these);
      rounds.push(median(these));
    }
    return {
      checks,
      info: { idle: summarize(idle) },
      rows: [row({
        id: 'execute_under_cpu_load', title: 'a trivial `execute` while 4 other sessions run CPU-bound loops', unit: 'ms',
        target: { op: '<=', value: 5 },
        stats: summarize(samples, rounds),
        method: `SDK client, sequential \`x = 1\` in a fifth session; same call idle: median ${median(idle).toFixed(3)} ms`,
      })],
    };
  } finally {
    await c.close();
  }
}

// ------------------------------------------------------------------------------------------------
// 12, 13: resident memory after start (initialize + tools/list answered, 200 ms idle), every
// system; growth of python-mcp's RSS over 100,000 executes (after a warm-up).

export async function measureMemory(cfg) {
  const checks = [];
  const rss = { pymcp: [], everything: [], coderunner: [] };
  const afterFirst = [];
  for (let rep = 0; rep < cfg.memory.startReps; rep++) {
    for (const key of rotated(ORDER, rep)) {
      const conn = new RawConnection(SYSTEMS[key], { tag: `rss-${key}` });
      try {
        await conn.initialize();
        const tl = await conn.request('tools/list', {});
        check(checks, `${SYSTEMS[key].label} tools/list answered`, Array.isArray(tl.msg.result?.tools), true);
        await delay(200);
        rss[key].push(conn.rssKiB() / 1024);
        if (key === 'pymcp') {
          const r = await conn.callTool(SYSTEMS.pymcp.call());
          check(checks, 'python-mcp first execute after start', SYSTEMS.pymcp.check(r.msg.result), true);
          afterFirst.push(conn.rssKiB() / 1024);
        }
      } finally {
        await conn.close();
      }
    }
  }

  const conn = new RawConnection(SYSTEMS.pymcp, { tag: 'growth' });
  let growth;
  let trend;
  try {
    await conn.initialize();
    const make = (i) => SYSTEMS.pymcp.call(`s${i % 4}`);
    const w = await pipelined(conn, { total: cfg.memory.warmup, window: 256, make, check: SYSTEMS.pymcp.check });
    check(checks, 'warm-up executes answered', w.good, cfg.memory.warmup);
    await delay(200);
    const before = conn.rssKiB();
    trend = [before];
    const chunk = Math.floor(cfg.memory.executes / cfg.memory.chunks);
    let good = 0;
    for (let k = 0; k < cfg.memory.chunks; k++) {
      const r = await pipelined(conn, { total: chunk, window: 256, make, check: SYSTEMS.pymcp.check });
      good += r.good;
      trend.push(conn.rssKiB());
    }
    await delay(200);
    const after = conn.rssKiB();
    trend.push(after);
    check(checks, `all ${chunk * cfg.memory.chunks} executes answered correctly`, good, chunk * cfg.memory.chunks);
    growth = ((after - before) / before) * 100;
  } finally {
    await conn.close();
  }
  const pair = (peer) => rss.pymcp.map((v, i) => [v, rss[peer][i]]);
  return {
    checks,
    info: { rssAfterFirstExecuteMiB: summarize(afterFirst), growthTrendKiB: trend },
    rows: [
      row({
        id: 'rss_start', title: 'resident memory after start', unit: 'MiB', target: { op: '<=', value: 20 },
        stats: summarize(rss.pymcp, rss.pymcp),
        peers: { everything: summarize(rss.everything, rss.everything), coderunner: summarize(rss.coderunner, rss.coderunner) },
        ratios: { everything: ratioStats(pair('everything')), coderunner: ratioStats(pair('coderunner')) },
        method: `VmRSS once initialize and tools/list are answered (+200 ms); python-mcp after its first execute: ${median(afterFirst).toFixed(1)} MiB`,
      }),
      row({
        id: 'rss_growth', title: `resident memory growth over ${cfg.memory.executes.toLocaleString('en-US')} executes`, unit: '%',
        target: { op: '<=', value: 5 },
        stats: summarize([growth], [growth]),
        method: `after ${cfg.memory.warmup} warm-up executes: ${(trend[0] / 1024).toFixed(1)} -> ${(trend[trend.length - 1] / 1024).toFixed(1)} MiB (VmRSS), pipelined over 4 sessions; one run`,
      }),
    ],
  };
}

// ------------------------------------------------------------------------------------------------
// 14: mcp.call to server-everything's echo through python-mcp's --config (per call, timed inside
// Python over N calls) vs the SDK client calling the same echo directly (N sequential calls).

export async function measureDownstream(cfg) {
  const checks = [];
  const dir = mkdtempSync(join(tmpdir(), 'pymcp-bench-config-'));
  const config = join(dir, 'servers.json');
  writeFileSync(config, JSON.stringify({ mcpServers: { everything: { command: process.execPath, args: [EVERYTHING_ENTRY, 'stdio'] } } }));
  const conn = new RawConnection(SYSTEMS.pymcp, { tag: 'downstream', extraArgs: ['--config', config] });
  let direct;
  // Each call is timed too (perf_counter before and after), so the medians and tails of both
  // paths can be compared; the target compares the means, as the issue states it.
  const loopCode = (n) => `
import json, time
_n = ${n}
_pc = time.perf_counter
_each = [0.0] * _n
_t = _pc()
for _i in range(_n):
    _s = _pc()
    r = mcp.call('everything.echo', {'message': 'hi'})
    _each[_i] = _pc() - _s
_dt = _pc() - _t
print(json.dumps({'us': _dt / _n * 1e6, 'each_us': [round(v * 1e6, 1) for v in _each], 'text': r['content'][0]['text']}))
`;
  try {
    await conn.initialize();
    direct = await sdkConnect(SYSTEMS.everything, { tag: 'downstream-direct' });
    const warm = await conn.executeJson(loopCode(cfg.downstream.warmup), { session: 'ds', timeout: 300 });
    check(checks, 'mcp.call echo through --config answers', warm.text, 'Echo: hi');
    for (let i = 0; i < cfg.downstream.warmup; i++) await direct.client.callTool({ name: 'echo', arguments: { message: 'hi' } });
    const viaPy = [];
    const pyAll = [];
    const pyMedians = [];
    const viaSdk = [];
    const sdkAll = [];
    const sdkMedians = [];
    const pairs = [];
    const medianPairs = [];
    for (let round = 0; round < cfg.downstream.rounds; round++) {
      const runPy = async () => {
        const out = await conn.executeJson(loopCode(cfg.downstream.calls), { session: 'ds', timeout: 300 });
        check(checks, `echo through python-mcp correct (round ${round})`, out.text, 'Echo: hi');
        check(checks, `every call timed (round ${round})`, out.each_us.length, cfg.downstream.calls);
        viaPy.push(out.us / 1000);
        const ms = out.each_us.map((v) => v / 1000);
        pyAll.push(...ms);
        pyMedians.push(median(ms));
      };
      const runSdk = async () => {
        const these = [];
        let good = 0;
        for (let i = 0; i < cfg.downstream.calls; i++) {
          const t = now();
          const r = await direct.client.callTool({ name: 'echo', arguments: { message: 'hi' } });
          these.push(now() - t);
          if (r.content?.[0]?.text === 'Echo: hi') good++;
        }
        check(checks, `echo direct correct (round ${round})`, good, these.length);
        sdkAll.push(...these);
        sdkMedians.push(median(these));
        viaSdk.push(these.reduce((a, b) => a + b, 0) / these.length);
      };
      if (round % 2) { await runSdk(); await runPy(); } else { await runPy(); await runSdk(); }
      pairs.push([viaPy[round], viaSdk[round]]);
      medianPairs.push([pyMedians[round], sdkMedians[round]]);
    }
    const ratio = ratioStats(pairs);
    return {
      checks,
      rows: [
        row({
          id: 'downstream_echo_ratio', title: '`mcp.call` to server-everything `echo` via --config / SDK client calling it directly', unit: 'x',
          target: { op: '<=', value: 1.2 },
          stats: { n: ratio.n, median: ratio.median, spread: ratio.spread },
          method: `per round: mean per call inside Python over ${cfg.downstream.calls} calls / mean of ${cfg.downstream.calls} sequential SDK calls; `
            + `median of the round means: via python-mcp ${median(viaPy).toFixed(3)} ms, direct ${median(viaSdk).toFixed(3)} ms`,
        }),
        row({
          id: 'downstream_echo', title: '... per call: `mcp.call` inside Python (peer: SDK client direct)', unit: 'ms', target: null,
          stats: summarize(pyAll, pyMedians),
          peers: { everything: summarize(sdkAll, sdkMedians) },
          ratios: { everything: ratioStats(medianPairs) },
          method: 'informational: every call timed on its own; the peer column is the SDK client calling echo directly, '
            + 'the ratio compares per-round medians',
        }),
      ],
    };
  } finally {
    await conn.close();
    if (direct) await direct.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const MEASURES = [
  ['spawn', measureSpawn],
  ['latency', measureLatency],
  ['rawLatency', measureRawLatency],
  ['throughput', measureThroughput],
  ['trivialCall', measureTrivialCall],
  ['rows', measureRows],
  ['cancel', measureCancel],
  ['sleep8', measureSleep8],
  ['cpuLoad', measureCpuLoad],
  ['memory', measureMemory],
  ['downstream', measureDownstream],
];

export function failedChecks(checks) {
  return checks.filter((c) => JSON.stringify(c.actual) !== JSON.stringify(c.expected));
}

export { readRssKiB };
