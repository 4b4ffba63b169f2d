// python-mcp --http driven by the official TypeScript SDK client's StreamableHTTPClientTransport
// (@modelcontextprotocol/sdk, pinned): initialize, tools, a python execute, progress from a
// downstream server arriving on the call's own SSE stream, a cancelled call, and 100 clients at
// once, each in its own HTTP session with its own python session, nothing mixed.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { makeHome, python, payload, waitUntil } from './lib/server.mjs';
import { TOKEN, startHttpServer } from './lib/http_server.mjs';

async function httpClient(url, name = 'pymcp-http-interop') {
  const transport = new StreamableHTTPClientTransport(url, {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  });
  const client = new Client({ name, version: '1.0.0' });
  const errors = [];
  client.onerror = (e) => errors.push(e);
  await client.connect(transport);
  return { client, transport, errors };
}

describe('python-mcp over Streamable HTTP through the TypeScript SDK client', () => {
  let server;
  let c;
  before(async () => {
    const home = makeHome();
    const config = join(home.root, 'servers.json');
    const bin = (name) => join(process.cwd(), 'node_modules', '.bin', name);
    writeFileSync(config, JSON.stringify({ mcpServers: { everything: { command: bin('mcp-server-everything'), args: ['stdio'] } } }));
    server = await startHttpServer(['--config', config, '--max-sessions', '200'], home);
    c = await httpClient(server.url);
  });
  after(async () => {
    await c.transport.terminateSession();
    await c.client.close();
    assert.deepEqual(c.errors.filter((e) => !/AbortError|aborted/i.test(String(e))), []);
    const ended = await server.stop();
    assert.equal(ended.exitCode, 0, JSON.stringify(ended));
    assert.equal(server.stdout(), '', 'nothing on stdout with --http');
  });

  test('initialize gives a session; the generated-token path is not used', () => {
    assert.equal(c.client.getServerVersion().name, 'python-mcp');
    assert.match(c.transport.sessionId ?? '', /^[0-9a-f]{32}$/);
    assert.ok(c.client.getServerCapabilities().tools);
    assert.doesNotMatch(server.stderr(), /bearer token \(generated/);
  });

  test('tools/list and a python execute', async () => {
    const { tools } = await c.client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('python') && names.includes('sqlite'), names.join(', '));
    const r = await python(c.client, { operation: 'execute', code: 'print(6 * 7)' });
    assert.equal(r.isError, false);
    assert.equal(payload(r).stdout, '42\n');
  });

  test("progress notifications arrive on the call's SSE stream", async () => {
    const seen = [];
    const r = await python(c.client, {
      operation: 'execute',
      code: "mcp.call('everything.trigger-long-running-operation', {'duration': 1, 'steps': 4})['content'][0]['text']",
    }, { onprogress: (p) => seen.push(p) });
    assert.equal(r.isError, false, JSON.stringify(payload(r)));
    assert.match(payload(r).result, /Long running operation completed/);
    assert.ok(seen.length >= 2, `progress seen: ${JSON.stringify(seen)}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].progress > seen[i - 1].progress);
  });

  test('a cancelled call stops running and the session keeps serving', async () => {
    const marker = join(server.home.work, 'started-cancel');
    const controller = new AbortController();
    const call = python(c.client, {
      operation: 'execute', session_id: 'cancel-me', persistent: true,
      code: `import pathlib, time\npathlib.Path(${JSON.stringify(marker)}).touch()\ntime.sleep(60)`,
    }, { signal: controller.signal, timeout: 120000 });
    await waitUntil(() => existsSync(marker), { what: 'the call to start' });
    const started = Date.now();
    controller.abort('changed my mind');
    await assert.rejects(call);
    // The same python session answers at once: the sleep was interrupted, not waited out.
    const r = await python(c.client, { operation: 'execute', session_id: 'cancel-me', persistent: true, code: '"free"' });
    assert.equal(payload(r).result, "'free'");
    assert.ok(Date.now() - started < 30000, `took ${Date.now() - started} ms`);
  });

  test('100 clients at once, each with its own HTTP session and python session', async () => {
    const clients = await Promise.all(Array.from({ length: 100 }, (_, i) => httpClient(server.url, `c${i}`)));
    try {
      const ids = new Set(clients.map((x) => x.transport.sessionId));
      assert.equal(ids.size, 100);
      await Promise.all(clients.map((x, i) => python(x.client, {
        operation: 'execute', session_id: `s${i}`, persistent: true, code: `mine = ${i}`,
      })));
      const results = await Promise.all(clients.map((x, i) => python(x.client, {
        operation: 'execute', session_id: `s${i}`, persistent: true, code: 'mine',
      })));
      results.forEach((r, i) => assert.equal(payload(r).result, String(i)));
    } finally {
      await Promise.all(clients.map(async (x) => { await x.transport.terminateSession(); await x.client.close(); }));
    }
    // Closing aborts each client's own GET stream; the SDK reports that as an AbortError.
    for (const x of clients) assert.deepEqual(x.errors.filter((e) => !/AbortError|aborted/i.test(String(e))), []);
  });

  test('without the token: 401, and the SDK reports it', async () => {
    const transport = new StreamableHTTPClientTransport(server.url);
    const client = new Client({ name: 'no-token', version: '1' });
    await assert.rejects(client.connect(transport), /401|Unauthorized/);
  });
});
