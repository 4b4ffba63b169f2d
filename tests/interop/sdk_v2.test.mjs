// python-mcp driven by the TypeScript SDK v2 client (@modelcontextprotocol/client, pinned in
// package.json), the client that implements the 2026-07-28 revision, over stdio
// (StdioClientTransport spawning the binary) and over Streamable HTTP (python-mcp --http with a
// bearer token), in both protocol eras. The client chooses its era by an option:
//   - modern: `versionNegotiation: { mode: { pin: '2026-07-28' } }`: connect() sends
//     `server/discover` and fails unless 2026-07-28 is offered; every later request carries the
//     per-request `_meta` (protocol version, client info and capabilities), no `initialize`.
//   - legacy: the client's default (`mode: 'legacy'`): the plain `initialize` handshake,
//     negotiating 2025-11-25 (the first 2025-era revision the client offers).
//   - `mode: 'auto'` (probe with server/discover, fall back to initialize) is checked to pick
//     the modern era on both transports.
// For each transport and era: the era negotiated, tools listed, a persistent python session
// across calls, a tool error and an unknown tool, an mcp.call to the built-in sqlite tool from
// Python, and a call cancelled through an AbortSignal actually interrupting the code (its
// session answers at once and never ran the line after the sleep). Over HTTP, two clients naming
// different session_ids share nothing (and the same session_id is the one thing they share).
//
// Known client behaviour, not a server fault: over stdio the client reports "Received a progress
// notification for an unknown token" (onerror) when a call's last progress notification and its
// answer arrive in one read, because it defers notification handlers to a microtask but handles
// responses at once. The server sends them in order (docs/protocol.md). These tests ask for no
// progress, so every onerror is a failure here.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

import { makeHome, serverBinary, payload, textOf, waitUntil } from './lib/server.mjs';
import { TOKEN, startHttpServer } from './lib/http_server.mjs';

const MODERN = '2026-07-28';
const ERAS = {
  modern: { options: { versionNegotiation: { mode: { pin: MODERN } } }, version: MODERN },
  legacy: { options: {}, version: '2025-11-25' },
};

// One v2 client over stdio: its own server process with a throw-away HOME.
async function stdioClient(options, name = 'pymcp-v2') {
  const home = makeHome();
  const transport = new StdioClientTransport({
    command: serverBinary(), args: [], env: home.env, cwd: home.work, stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk) => { stderr += chunk.toString(); });
  const client = new Client({ name, version: '1.0.0' }, options);
  const errors = [];
  client.onerror = (e) => errors.push(e);
  await client.connect(transport);
  return {
    client, transport, errors, work: home.work, stderr: () => stderr,
    async close() {
      const child = transport._process;
      try {
        await client.close();
        if (child && child.exitCode === null && child.signalCode === null) {
          await new Promise((resolve) => child.once('exit', resolve));
        }
        return { exitCode: child?.exitCode, signal: child?.signalCode };
      } finally {
        home.remove();
      }
    },
  };
}

// One v2 client over Streamable HTTP to `server` (startHttpServer), with the bearer token.
async function httpClient(server, options, name = 'pymcp-v2-http') {
  const transport = new StreamableHTTPClientTransport(server.url, {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  });
  const client = new Client({ name, version: '1.0.0' }, options);
  const errors = [];
  client.onerror = (e) => errors.push(e);
  await client.connect(transport);
  return {
    client, transport, errors, work: server.home.work,
    async close() {
      if (transport.sessionId) await transport.terminateSession();
      await client.close();
    },
  };
}

function python(client, input, options = {}) {
  return client.callTool({ name: 'python', arguments: { input } }, options);
}

// Closing a legacy HTTP client aborts its own GET stream; the client reports that as an abort.
const unexpected = (errors) => errors.filter((e) => !/AbortError|aborted/i.test(String(e)));

// The checks every transport and era must pass. `connect(name)` makes one more client like `c`.
function commonTests(era, get) {
  test(`connects in the ${era} era`, () => {
    const { client } = get().c;
    assert.equal(client.getProtocolEra(), era);
    assert.equal(client.getNegotiatedProtocolVersion(), ERAS[era].version);
    assert.equal(client.getServerVersion()?.name, 'python-mcp');
    assert.ok(client.getServerCapabilities()?.tools, 'tools capability');
    if (era === 'modern') assert.ok(client.getDiscoverResult()?.supportedVersions.includes(MODERN));
  });

  test('listTools: python and sqlite with object input schemas', async () => {
    const { tools } = await get().c.client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('python') && names.includes('sqlite'), names.join(', '));
    for (const tool of tools) assert.equal(tool.inputSchema.type, 'object', tool.name);
  });

  test('a persistent python session keeps its variables across calls', async () => {
    const { client } = get().c;
    const session = { session_id: `keep-${era}`, persistent: true };
    const first = await python(client, { operation: 'execute', code: 'n = 21\nprint("set")', ...session });
    assert.equal(first.isError, false, textOf(first));
    assert.equal(payload(first).stdout, 'set\n');
    const second = await python(client, { operation: 'execute', code: 'n * 2', ...session });
    assert.equal(payload(second).result, '42');
  });

  test('an exception is a tool error; an unknown tool is a protocol error', async () => {
    const { client } = get().c;
    const r = await python(client, { operation: 'execute', code: 'def f():\n    1 / 0\nf()' });
    assert.equal(r.isError, true);
    assert.equal(payload(r).error.type, 'ZeroDivisionError');
    assert.match(payload(r).error.traceback, /in f/);
    await assert.rejects(client.callTool({ name: 'no-such-tool', arguments: {} }),
      (e) => e.code === -32602 && /no-such-tool/.test(e.message));
  });

  test('mcp.call reaches the built-in sqlite tool from Python', async () => {
    const { client } = get().c;
    const db = `v2-${era}.db`;
    const code = [
      'import json',
      `db = ${JSON.stringify(db)}`,
      "mcp.call('sqlite', {'sql': ['DROP TABLE IF EXISTS t', 'CREATE TABLE t (k TEXT, v INTEGER)'], 'database': db})",
      "for k, v in [('a', 1), ('b', 2), ('c', 39)]:",
      "    mcp.call('sqlite', {'sql': 'INSERT INTO t VALUES (?, ?)', 'params': [k, v], 'database': db})",
      "res = mcp.call('sqlite', {'sql': 'SELECT COUNT(*) AS n, SUM(v) AS total FROM t', 'database': db})",
      "json.loads(res['content'][0]['text'])[0]",
    ].join('\n');
    const r = await python(client, { operation: 'execute', code });
    assert.equal(r.isError, false, textOf(r));
    assert.equal(payload(r).result, "{'n': 3, 'total': 42}");
  });

  test('a call cancelled through an AbortSignal interrupts the running code', async () => {
    const { client, work } = get().c;
    const marker = join(work, `started-${era}-${Date.now()}`);
    const session = { session_id: `cancel-${era}`, persistent: true };
    const controller = new AbortController();
    const call = python(client, {
      operation: 'execute', ...session,
      code: `import pathlib, time\npathlib.Path(${JSON.stringify(marker)}).touch()\ntime.sleep(60)\nfinished = True`,
    }, { signal: controller.signal, timeout: 120000 });
    await waitUntil(() => existsSync(marker), { what: 'the call to start' });
    controller.abort('changed my mind');
    await assert.rejects(call);
    // Calls in one session run one at a time: this one is answered only once the sleep is over,
    // and it must be answered well before the sleep's 60 s would be. The line after the sleep
    // never ran.
    const r = await python(client, { operation: 'execute', code: "'finished' in globals()", ...session },
      { timeout: 30000 });
    assert.equal(payload(r).result, 'False');
  });
}

for (const era of ['modern', 'legacy']) {
  describe(`SDK v2 client over stdio, ${era} era`, () => {
    const ctx = {};
    before(async () => { ctx.c = await stdioClient(ERAS[era].options); });
    after(async () => {
      const ended = await ctx.c.close();
      assert.deepEqual(ctx.c.errors, [], 'the client reported errors');
      assert.equal(ended.exitCode, 0, `server ended with ${JSON.stringify(ended)}\n${ctx.c.stderr()}`);
    });
    commonTests(era, () => ctx);
  });
}

describe('SDK v2 client over Streamable HTTP', () => {
  let server;
  before(async () => { server = await startHttpServer(); });
  after(async () => {
    const ended = await server.stop();
    assert.equal(ended.exitCode, 0, JSON.stringify(ended));
    assert.equal(server.stdout(), '', 'nothing on stdout with --http');
  });

  for (const era of ['modern', 'legacy']) {
    describe(`${era} era`, () => {
      const ctx = {};
      before(async () => { ctx.c = await httpClient(server, ERAS[era].options); });
      after(async () => {
        await ctx.c.close();
        assert.deepEqual(unexpected(ctx.c.errors), []);
      });
      commonTests(era, () => ctx);

      test('two clients naming different session_ids share nothing; the same session_id is shared', async () => {
        const other = await httpClient(server, ERAS[era].options, 'pymcp-v2-other');
        try {
          if (era === 'legacy') assert.notEqual(other.transport.sessionId, ctx.c.transport.sessionId);
          const mine = { session_id: `mine-${era}`, persistent: true };
          const theirs = { session_id: `theirs-${era}`, persistent: true };
          await python(ctx.c.client, { operation: 'execute', code: "secret = 'mine'", ...mine });
          await python(other.client, { operation: 'execute', code: "secret = 'theirs'", ...theirs });
          const seenByOther = await python(other.client, { operation: 'execute', code: 'secret', ...theirs });
          assert.equal(payload(seenByOther).result, "'theirs'");
          const seenByMe = await python(ctx.c.client, { operation: 'execute', code: 'secret', ...mine });
          assert.equal(payload(seenByMe).result, "'mine'");
          // Only a session_id both name is shared, whichever connection names it.
          const shared = await python(other.client, { operation: 'execute', code: 'secret', ...mine });
          assert.equal(payload(shared).result, "'mine'");
        } finally {
          await other.close();
        }
        assert.deepEqual(unexpected(other.errors), []);
      });
    });
  }

  test("mode 'auto' probes server/discover and goes on in the modern era", async () => {
    const c = await httpClient(server, { versionNegotiation: { mode: 'auto' } }, 'pymcp-v2-auto');
    try {
      assert.equal(c.client.getProtocolEra(), 'modern');
      const r = await python(c.client, { operation: 'execute', code: '6 * 7' });
      assert.equal(payload(r).result, '42');
    } finally {
      await c.close();
    }
    assert.deepEqual(unexpected(c.errors), []);
  });
});

test("stdio, mode 'auto': probes server/discover and goes on in the modern era", async () => {
  const c = await stdioClient({ versionNegotiation: { mode: 'auto' } }, 'pymcp-v2-auto');
  let ended;
  try {
    assert.equal(c.client.getProtocolEra(), 'modern');
    const r = await python(c.client, { operation: 'execute', code: '6 * 7' });
    assert.equal(payload(r).result, '42');
  } finally {
    ended = await c.close();
  }
  assert.deepEqual(c.errors, []);
  assert.equal(ended.exitCode, 0, JSON.stringify(ended));
});
