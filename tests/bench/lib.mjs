// Shared pieces of the python-mcp benchmark: where things are, the three systems under test,
// a raw JSON-RPC driver over pipes, the official SDK client, and statistics.
//
// Nothing here depends on node_modules being on the resolution path of tests/bench: the SDK is
// loaded from tests/interop/node_modules (pinned by tests/interop/package-lock.json).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';

export const benchDir = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(benchDir, '..', '..');
export const interopDir = join(repoRoot, 'tests', 'interop');
export const nodeModules = join(interopDir, 'node_modules');

export const now = () => performance.now();

// ------------------------------------------------------------------------------------------------
// Packages

export function packageJson(name) {
  return JSON.parse(readFileSync(join(nodeModules, name, 'package.json'), 'utf8'));
}

// Resolves `<pkg>/<subpath>` through the package's "exports" map ("import" condition), so the
// same files load as when a script inside tests/interop imports them.
function resolveExport(pkg, subpath) {
  const manifest = packageJson(pkg);
  const key = `./${subpath}`;
  let target;
  const exportsMap = manifest.exports ?? {};
  if (exportsMap[key]) target = exportsMap[key].import ?? exportsMap[key].default ?? exportsMap[key];
  else if (exportsMap['./*']) {
    const pattern = exportsMap['./*'].import ?? exportsMap['./*'].default ?? exportsMap['./*'];
    target = pattern.replace('*', subpath);
  } else target = key;
  return pathToFileURL(join(nodeModules, pkg, target)).href;
}

let sdkPromise;
export function loadSdk() {
  sdkPromise ??= (async () => {
    const sdk = '@modelcontextprotocol/sdk';
    const { Client } = await import(resolveExport(sdk, 'client/index.js'));
    const { StdioClientTransport } = await import(resolveExport(sdk, 'client/stdio.js'));
    return { Client, StdioClientTransport };
  })();
  return sdkPromise;
}

// ------------------------------------------------------------------------------------------------
// Scratch space: a private HOME / XDG_DATA_HOME / TMPDIR per server, and a `python` on PATH that
// is the system CPython 3.11 (mcp-server-code-runner runs `python -u FILE`; a pyenv shim found
// first on PATH would add its own start-up to every call).

export function makeScratch(tag) {
  const root = mkdtempSync(join(tmpdir(), `pymcp-bench-${tag}-`));
  const dirs = {};
  for (const d of ['home', 'data', 'work', 'tmp', 'bin']) {
    dirs[d] = join(root, d);
    mkdirSync(dirs[d]);
  }
  symlinkSync('/usr/bin/python3.11', join(dirs.bin, 'python'));
  const path = `${dirs.bin}:${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;
  return {
    root,
    ...dirs,
    env: { HOME: dirs.home, XDG_DATA_HOME: dirs.data, TMPDIR: dirs.tmp, PATH: path, LANG: 'C.UTF-8' },
    remove() { rmSync(root, { recursive: true, force: true }); },
  };
}

// ------------------------------------------------------------------------------------------------
// The systems. `call` is the per-call request each one answers in the latency and throughput
// measures: python-mcp runs `x = 1` in a persistent session, server-everything echoes,
// mcp-server-code-runner runs `x = 1` with a new python process.

export function pymcpBinary() {
  const bin = process.env.PYMCP_BIN;
  if (!bin) throw new Error('set PYMCP_BIN to the built python-mcp binary');
  if (!existsSync(bin)) throw new Error(`PYMCP_BIN=${bin} does not exist`);
  return resolve(bin);
}

export const EVERYTHING_ENTRY = join(nodeModules, '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
export const CODE_RUNNER_ENTRY = join(nodeModules, 'mcp-server-code-runner', 'dist', 'cli.js');

export const SYSTEMS = {
  pymcp: {
    key: 'pymcp',
    label: 'python-mcp',
    command: () => pymcpBinary(),
    args: (extra = []) => [...extra],
    call: (session = 'bench') => ({ name: 'python', arguments: { code: 'x = 1', session_id: session, persistent: true } }),
    // What a correct answer to `call` looks like (raw result object of tools/call).
    check: (r) => r && r.isError !== true && r.structuredContent?.success === true,
  },
  everything: {
    key: 'everything',
    label: 'server-everything',
    command: () => process.execPath,
    args: () => [EVERYTHING_ENTRY, 'stdio'],
    call: () => ({ name: 'echo', arguments: { message: 'x = 1' } }),
    check: (r) => r && r.isError !== true && r.content?.[0]?.text === 'Echo: x = 1',
  },
  coderunner: {
    key: 'coderunner',
    label: 'code-runner',
    command: () => process.execPath,
    args: () => [CODE_RUNNER_ENTRY],
    call: () => ({ name: 'run-code', arguments: { code: 'x = 1', languageId: 'python' } }),
    check: (r) => r && r.isError !== true && Array.isArray(r.content) && r.content[0]?.text === '',
  },
};

export const PROTOCOL_VERSION = '2025-06-18';
export const CLIENT_INFO = { name: 'pymcp-bench', version: '1.0.0' };

// ------------------------------------------------------------------------------------------------
// Raw JSON-RPC driver: the child's stdin/stdout are plain pipes, requests are written as lines,
// responses read as lines and matched by id. Times are performance.now() in ms.

export class RawConnection {
  constructor(system, { extraArgs = [], tag } = {}) {
    this.system = system;
    this.scratch = makeScratch(tag ?? system.key);
    this.pending = new Map();
    this.unmatched = [];
    this.nonJson = [];
    this.nextId = 1;
    this.buffer = '';
    this.stderr = '';
    this.onResponse = null;
    this.spawnedAt = now();
    this.child = spawn(system.command(), system.args(extraArgs), {
      cwd: this.scratch.work,
      env: this.scratch.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = new Promise((res) => this.child.once('exit', (code, signal) => res({ code, signal })));
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => this.#data(chunk));
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk) => {
      if (this.stderr.length < 200000) this.stderr += chunk;
    });
    this.child.stdin.on('error', () => {});
  }

  get pid() { return this.child.pid; }

  #data(chunk) {
    const t = now();
    this.buffer += chunk;
    let start = 0;
    let nl;
    while ((nl = this.buffer.indexOf('\n', start)) !== -1) {
      const line = this.buffer.slice(start, nl);
      start = nl + 1;
      if (line.trim() === '') continue;
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        if (this.nonJson.length < 100) this.nonJson.push(line.slice(0, 200));
        continue;
      }
      if (msg.id === undefined || msg.id === null || (msg.result === undefined && msg.error === undefined)) {
        // A notification or a request from the server: ignored (no bench system sends any that need an answer).
        continue;
      }
      const waiter = this.pending.get(msg.id);
      if (waiter) {
        this.pending.delete(msg.id);
        waiter.resolve({ msg, t, sentAt: waiter.sentAt, bytes: line.length });
      } else if (this.onResponse) {
        this.onResponse(msg, t);
      } else if (this.unmatched.length < 1000) {
        this.unmatched.push({ msg, t });
      }
    }
    this.buffer = this.buffer.slice(start);
    if (this.afterData) this.afterData();
  }

  line(method, params, id) {
    const m = { jsonrpc: '2.0', method };
    if (id !== undefined) m.id = id;
    if (params !== undefined) m.params = params;
    return JSON.stringify(m) + '\n';
  }

  write(text) { this.child.stdin.write(text); }

  // Registers a waiter for `id` (call before writing the request).
  expect(id, sentAt = now()) {
    return new Promise((res) => this.pending.set(id, { resolve: res, sentAt }));
  }

  request(method, params) {
    const id = this.nextId++;
    const sentAt = now();
    const p = this.expect(id, sentAt);
    this.write(this.line(method, params, id));
    return p;
  }

  notify(method, params) { this.write(this.line(method, params)); }

  async initialize() {
    const r = await this.request('initialize', {
      protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: CLIENT_INFO,
    });
    if (!r.msg.result) throw new Error(`${this.system.label}: initialize failed: ${JSON.stringify(r.msg.error)}`);
    this.notify('notifications/initialized');
    return r;
  }

  callTool(call) { return this.request('tools/call', call); }

  // Runs Python code in python-mcp and returns structuredContent (throws on a tool error).
  async execute(code, { session = 'bench', persistent = true, timeout } = {}) {
    const args = { code, session_id: session, persistent };
    if (timeout !== undefined) args.timeout = timeout;
    const r = await this.callTool({ name: 'python', arguments: args });
    const res = r.msg.result;
    if (!res || res.isError) {
      throw new Error(`execute failed: ${JSON.stringify(r.msg.error ?? res?.structuredContent?.error ?? res).slice(0, 2000)}`);
    }
    return { ...res.structuredContent, elapsedMs: r.t - r.sentAt, responseBytes: r.bytes };
  }

  // Runs code that prints one JSON document as its last stdout line; returns it parsed.
  async executeJson(code, options) {
    const out = await this.execute(code, options);
    const lines = out.stdout.trim().split('\n');
    return JSON.parse(lines[lines.length - 1]);
  }

  rssKiB() { return readRssKiB(this.pid); }

  async close({ graceMs = 3000 } = {}) {
    try { this.child.stdin.end(); } catch { /* already closed */ }
    const timer = setTimeout(() => { try { this.child.kill('SIGKILL'); } catch { /* gone */ } }, graceMs);
    const ended = await this.exited;
    clearTimeout(timer);
    this.scratch.remove();
    return ended;
  }
}

export function readRssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

// Sends `total` copies of requests made by `make(i)` keeping at most `window` in flight; each
// top-up is one write. Resolves with the wall time from the first write to the last answer and
// how many answers passed `check`.
export function pipelined(conn, { total, window, make, check }) {
  return new Promise((res, rej) => {
    let sent = 0;
    let answered = 0;
    let good = 0;
    const ids = new Set();
    const firstId = conn.nextId;
    conn.nextId += total;
    const topUp = () => {
      let text = '';
      while (sent < total && sent - answered < window) {
        const id = firstId + sent;
        ids.add(id);
        text += conn.line('tools/call', make(sent), id);
        sent++;
      }
      if (text) conn.write(text);
    };
    const t0 = now();
    conn.onResponse = (msg, t) => {
      if (!ids.delete(msg.id)) return;
      answered++;
      if (check(msg.result)) good++;
      if (answered === total) {
        conn.onResponse = null;
        conn.afterData = null;
        res({ ms: t - t0, answered, good });
      }
    };
    conn.afterData = topUp;
    conn.exited.then((e) => rej(new Error(`${conn.system.label} exited during the pipelined run: ${JSON.stringify(e)}`)));
    topUp();
  });
}

// ------------------------------------------------------------------------------------------------
// SDK client (Client + StdioClientTransport), the same harness for every system.

export async function sdkConnect(system, { extraArgs = [], tag } = {}) {
  const { Client, StdioClientTransport } = await loadSdk();
  const scratch = makeScratch(tag ?? `${system.key}-sdk`);
  const transport = new StdioClientTransport({
    command: system.command(),
    args: system.args(extraArgs),
    env: scratch.env,
    cwd: scratch.work,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (c) => { if (stderr.length < 200000) stderr += c.toString(); });
  const client = new Client(CLIENT_INFO);
  const errors = [];
  client.onerror = (e) => { errors.push(String(e?.message ?? e)); };
  await client.connect(transport);
  // As MCP hosts do: list the tools once (the client then validates structured results against
  // each tool's outputSchema).
  await client.listTools();
  return {
    system,
    client,
    transport,
    scratch,
    errors,
    stderr: () => stderr,
    pid: () => transport.pid ?? transport._process?.pid,
    async close() {
      try { await client.close(); } finally { scratch.remove(); }
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Statistics

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// samples: all observations; rounds: one value per round (its median, or its single result).
// spread is the range of the per-round values: how much the figure moved between repetitions.
export function summarize(samples, rounds = null) {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  const out = {
    n: s.length,
    median: median(s),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    min: s[0],
    max: s[s.length - 1],
    mean,
  };
  if (rounds && rounds.length) {
    const r = [...rounds].sort((a, b) => a - b);
    out.rounds = rounds.length;
    out.spread = [r[0], r[r.length - 1]];
  }
  return out;
}

export { delay };
