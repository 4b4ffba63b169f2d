// Shared helpers for the interop suites: where the python-mcp binary is, a throw-away HOME and
// XDG_DATA_HOME for every server, and an SDK client connected over stdio.
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { before, after } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

export function serverBinary() {
  const bin = process.env.PYMCP_BIN;
  if (!bin) throw new Error('set PYMCP_BIN to the built python-mcp binary (ctest does this)');
  if (!existsSync(bin)) throw new Error(`PYMCP_BIN=${bin} does not exist`);
  return bin;
}

// Passed through to the servers when set: the sanitizer runner's settings (tests/sanitizers/run.sh,
// docs/hardening.md), so an ASan server writes its reports where the runner looks.
const SANITIZER_ENV = ['ASAN_OPTIONS', 'LSAN_OPTIONS', 'UBSAN_OPTIONS', 'PYTHONMALLOC'];
function sanitizerEnv() {
  return Object.fromEntries(SANITIZER_ENV.filter((n) => process.env[n] !== undefined).map((n) => [n, process.env[n]]));
}

// A private HOME and XDG_DATA_HOME (plus a scratch directory) that remove() deletes.
export function makeHome() {
  const root = mkdtempSync(join(tmpdir(), 'pymcp-interop-'));
  const home = join(root, 'home');
  const data = join(root, 'data');
  const work = join(root, 'work');
  for (const d of [home, data, work]) mkdirSync(d);
  return {
    root,
    home,
    data,
    work,
    scriptsDir: join(data, 'python-mcp', 'python_scripts'),
    env: { HOME: home, XDG_DATA_HOME: data, PATH: process.env.PATH ?? '/usr/bin:/bin', ...sanitizerEnv() },
    remove() { rmSync(root, { recursive: true, force: true }); },
  };
}

// Starts python-mcp through the SDK's StdioClientTransport and connects (initialize +
// notifications/initialized). listTools() runs once so the client validates every structured
// result against the tool's outputSchema, as real clients do.
export async function connect({ args = [], cwd } = {}) {
  const home = makeHome();
  const transport = new StdioClientTransport({
    command: serverBinary(),
    args,
    env: home.env,
    cwd: cwd ?? home.work,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk) => { stderr += chunk.toString(); });
  const client = new Client({ name: 'pymcp-interop', version: '1.0.0' });
  // Anything the transport could not read as a JSON-RPC message lands here.
  const errors = [];
  client.onerror = (error) => { errors.push(error); };
  await client.connect(transport);
  const tools = await client.listTools();
  return {
    client,
    transport,
    home,
    tools,
    errors,
    stderr: () => stderr,
    // Closes as the SDK does (stdin EOF, then SIGTERM after 2 s, then SIGKILL); returns how the
    // process ended and how long it took.
    async close() {
      const child = transport._process;
      const started = Date.now();
      try {
        await client.close();
        if (child && child.exitCode === null && child.signalCode === null) {
          await new Promise((resolve) => child.once('exit', resolve));
        }
        return { ms: Date.now() - started, exitCode: child?.exitCode, signal: child?.signalCode };
      } finally {
        home.remove();
      }
    },
  };
}

// One server for the tests of the enclosing describe(): connected before them, and closed after
// them as a client closes, which must end the process cleanly (exit code 0) with nothing on
// stdout the transport could not read. Returns the connection (client, errors, stderr(), ...)
// for the tests to use once they run. `ignoreErrors` matches transport errors that are the
// client's own doing, not the server's; `maxCloseMs` bounds how long closing may take.
export function sharedServer({ ignoreErrors, maxCloseMs, ...options } = {}) {
  let connection;
  before(async () => { connection = await connect(options); });
  after(async () => {
    const ended = await connection.close();
    const errors = connection.errors.filter((e) => !(ignoreErrors && ignoreErrors.test(String(e?.message))));
    assert.deepEqual(errors, [], 'the transport saw something that is not JSON-RPC');
    assert.equal(ended.exitCode, 0, `server ended with ${JSON.stringify(ended)}`);
    if (maxCloseMs) assert.ok(ended.ms < maxCloseMs, `closing took ${ended.ms} ms`);
  });
  return new Proxy({}, {
    get(_, key) {
      if (!connection) throw new Error(`the shared server is not connected yet (reading .${String(key)})`);
      return connection[key];
    },
  });
}

export function python(client, fields, options = {}) {
  return client.callTool({ name: 'python', arguments: { input: fields } }, undefined, options);
}

export function textOf(result) {
  return (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

// The structured answer of an operation: structuredContent, or else the text parsed as JSON.
export function payload(result) {
  if (result.structuredContent !== undefined) return result.structuredContent;
  return JSON.parse(textOf(result));
}

// Polls for a condition (a marker file written by user code, say) with a deadline.
export async function waitUntil(condition, { timeoutMs = 20000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}
