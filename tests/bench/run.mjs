#!/usr/bin/env node
// Runs the python-mcp benchmark and writes the results: JSON (every figure) and Markdown (the
// table in docs/benchmarks.md). Usually started by scripts/bench.sh, which builds the binary and
// installs the npm packages first.
//
//   PYMCP_BIN=build/python-mcp node tests/bench/run.mjs [--quick] [--json FILE] [--md FILE] [--only a,b]
//
// Defaults: full run -> tests/bench/results.json and docs/benchmarks.md; --quick ->
// build/bench-quick/results.json and build/bench-quick/benchmarks.md (the committed files
// keep the last full run). --only runs some measures (names: see MEASURES in measures.mjs).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';

import { FULL, QUICK, MEASURES, failedChecks } from './measures.mjs';
import { RawConnection, SYSTEMS, packageJson, pymcpBinary, repoRoot } from './lib.mjs';
import { renderMarkdown, verdict, fmt } from './report.mjs';

function parseArgs(argv) {
  const opts = { quick: false, only: null, json: null, md: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--only') opts.only = argv[++i].split(',');
    else if (a === '--json') opts.json = argv[++i];
    else if (a === '--md') opts.md = argv[++i];
    else if (a === '--help' || a === '-h') {
      console.log('usage: PYMCP_BIN=... node tests/bench/run.mjs [--quick] [--only m1,m2] [--json FILE] [--md FILE]');
      console.log(`measures: ${MEASURES.map((m) => m[0]).join(', ')}`);
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  const out = opts.quick ? join(repoRoot, 'build', 'bench-quick') : null;
  opts.json ??= opts.quick ? join(out, 'results.json') : join(repoRoot, 'tests', 'bench', 'results.json');
  opts.md ??= opts.quick ? join(out, 'benchmarks.md') : join(repoRoot, 'docs', 'benchmarks.md');
  return opts;
}

function git() {
  try {
    const head = execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no', '--', 'src', 'include', 'python', 'CMakeLists.txt'],
      { encoding: 'utf8' }).trim();
    return dirty ? `${head}, with uncommitted changes in src/include/python` : head;
  } catch {
    return 'unknown';
  }
}

async function versions() {
  const bin = pymcpBinary();
  const pythonMcp = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim().replace(/^python-mcp\s*/, '');
  const conn = new RawConnection(SYSTEMS.pymcp, { tag: 'versions' });
  let inner;
  try {
    await conn.initialize();
    inner = await conn.executeJson(`import json, sys
print(json.dumps({'python': sys.version.split()[0],
                  'sqlite': mcp.call('sqlite', {'sql': 'SELECT sqlite_version()'})['structuredContent']['rows'][0][0]}))`);
  } finally {
    await conn.close();
  }
  let codeRunnerPython = 'unknown';
  try {
    codeRunnerPython = `/usr/bin/python3.11 ${execFileSync('/usr/bin/python3.11', ['--version'], { encoding: 'utf8' }).trim().replace(/^Python /, '')}`;
  } catch { /* reported as unknown */ }
  return {
    pythonMcp,
    python: inner.python,
    sqlite: inner.sqlite,
    node: process.version,
    npm: Object.fromEntries(['@modelcontextprotocol/sdk', '@modelcontextprotocol/server-everything', 'mcp-server-code-runner']
      .map((p) => [p, packageJson(p).version])),
    codeRunnerPython,
  };
}

function osName() {
  try {
    const rel = readFileSync('/etc/os-release', 'utf8');
    return rel.match(/^PRETTY_NAME="?([^"\n]*)"?/m)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const cfg = opts.quick ? QUICK : FULL;
  const started = Date.now();
  const meta = {
    mode: cfg.mode,
    date: new Date().toISOString(),
    cores: os.availableParallelism?.() ?? os.cpus().length,
    cpu: os.cpus()[0]?.model?.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    os: osName(),
    loadStart: os.loadavg()[0],
    git: git(),
    binary: pymcpBinary(),
    versions: await versions(),
  };
  const rows = [];
  const info = {};
  const checks = [];
  for (const [name, fn] of MEASURES) {
    if (opts.only && !opts.only.includes(name)) continue;
    const t = Date.now();
    process.stderr.write(`bench: ${name} ... `);
    const r = await fn(cfg);
    rows.push(...r.rows);
    checks.push(...r.checks.map((c) => ({ measure: name, ...c })));
    if (r.info) info[name] = r.info;
    const failed = failedChecks(r.checks);
    process.stderr.write(`${((Date.now() - t) / 1000).toFixed(1)} s${failed.length ? ` (${failed.length} checks FAILED)` : ''}\n`);
    for (const row of r.rows) process.stderr.write(`  ${row.title}: ${fmt(row.stats.median, row.unit)} ${verdict(row).text}\n`);
  }
  meta.loadEnd = os.loadavg()[0];
  meta.durationS = (Date.now() - started) / 1000;
  const failed = failedChecks(checks);
  const results = {
    meta,
    config: cfg,
    rows: rows.map((row) => ({ ...row, verdict: verdict(row).pass })),
    info,
    checks: { total: checks.length, failed },
  };
  mkdirSync(dirname(opts.json), { recursive: true });
  writeFileSync(opts.json, `${JSON.stringify(results, null, 2)}\n`);
  const md = renderMarkdown(results);
  mkdirSync(dirname(opts.md), { recursive: true });
  writeFileSync(opts.md, `${md}\n`);
  process.stderr.write(`bench: wrote ${opts.json} and ${opts.md}\n`);
  if (failed.length) {
    process.stderr.write(`bench: ${failed.length} correctness checks failed:\n`);
    for (const c of failed) process.stderr.write(`  ${c.measure}: ${c.what}: got ${JSON.stringify(c.actual)}, expected ${JSON.stringify(c.expected)}\n`);
    process.exitCode = 1;
  }
}

await main();
