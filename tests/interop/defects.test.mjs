// Issue 11 through the official TypeScript SDK client: what a client saw go wrong before.
// - a request over --max-message-bytes is answered with its own id (the SDK's promise rejects at
//   once; it used to wait for its 60 s time-out because the answer said id null);
// - a misspelled field is refused, naming the known one, and nothing runs;
// - top-level await runs;
// - --session-ttl 0.5 really expires an idle session after half a second.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { connect, python, textOf, payload, waitUntil } from './lib/server.mjs';

describe('issue 11 defects through the TypeScript SDK client', () => {
  let s;
  before(async () => { s = await connect({ args: ['--max-message-bytes', '4000', '--session-ttl', '0.5'] }); });
  after(async () => {
    const ended = await s.close();
    assert.deepEqual(s.errors, [], 'the transport saw something that is not JSON-RPC');
    assert.equal(ended.exitCode, 0, `server ended with ${JSON.stringify(ended)}`);
  });

  test('an over-long request is answered under its own id, at once', async () => {
    const started = Date.now();
    await assert.rejects(
      python(s.client, { operation: 'execute', code: `x = '${'a'.repeat(10000)}'` }, { timeout: 30000 }),
      (e) => e instanceof McpError && e.code === -32600 && /4000-byte limit/.test(e.message),
    );
    assert.ok(Date.now() - started < 10000, 'the client waited for its time-out');
    // The connection goes on.
    const ok = await python(s.client, { operation: 'execute', code: '6 * 7' });
    assert.equal(ok.structuredContent.result, '42');
  });

  test('a misspelled field is refused with the known one, and nothing runs', async () => {
    const r = await python(s.client, { operation: 'execute', code: "open('ran', 'w').write('x')", persistant: true });
    assert.equal(r.isError, true);
    assert.match(textOf(r), /persistant/);
    assert.match(textOf(r), /persistent/);
    const check = await python(s.client, { operation: 'execute', code: "import os; os.path.exists('ran')" });
    assert.equal(check.structuredContent.result, 'False');
  });

  test('top-level await runs and returns its value', async () => {
    const r = await python(s.client, {
      operation: 'execute',
      code: 'import asyncio\nasync def twice(x):\n    await asyncio.sleep(0.01)\n    return 2 * x\nawait twice(21)',
    });
    assert.notEqual(r.isError, true, textOf(r));
    assert.equal(r.structuredContent.result, '42');
  });

  test('a fractional --session-ttl expires an idle session', async () => {
    const r = await python(s.client, { operation: 'execute', code: 'kept = 1', session_id: 'ttl', persistent: true });
    assert.notEqual(r.isError, true, textOf(r));
    await waitUntil(async () => {
      const sessions = payload(await python(s.client, { operation: 'list_sessions' })).sessions;
      return !sessions.some((x) => x.session_id === 'ttl' || x.id === 'ttl');
    }, { timeoutMs: 10000, what: 'the idle session to expire' });
  });
});
