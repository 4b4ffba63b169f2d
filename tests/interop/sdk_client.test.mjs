// python-mcp driven by the official TypeScript SDK client (@modelcontextprotocol/sdk, pinned in
// package.json): Client + StdioClientTransport, as MCP hosts use it. The client validates every
// structured result against the tool's outputSchema (listTools runs first), so these tests also
// prove the published schemas match what the server sends.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { connect, python, textOf, payload, waitUntil, sharedServer } from './lib/server.mjs';

const TIMED_OUT = /time[d]?[ _-]?out/i;

// Python code that creates `marker` (so the test knows it runs) and then runs `body`.
function touchThen(marker, body) {
  return `import pathlib\npathlib.Path(${JSON.stringify(marker)}).touch()\n${body}`;
}

describe('python-mcp through the TypeScript SDK client', () => {
  const s = sharedServer({ maxCloseMs: 2000 });  // the SDK sends SIGTERM after 2 s

  test('initialize: server info, capabilities and instructions', () => {
    const info = s.client.getServerVersion();
    assert.equal(info.name, 'python-mcp');
    assert.match(info.version, /^\d+\.\d+/);
    assert.ok(s.client.getServerCapabilities().tools, 'tools capability');
    assert.match(s.client.getInstructions() ?? '', /python/i);
  });

  test('listTools: python and sqlite with object input schemas', async () => {
    const { tools } = await s.client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('python') && names.includes('sqlite'), `tools: ${names.join(', ')} (expected python and sqlite)`);
    for (const tool of tools) assert.equal(tool.inputSchema.type, 'object', tool.name);
    const again = await s.client.listTools();
    assert.deepEqual(again.tools, tools);
  });

  test('callTool python execute prints and returns structured content', async () => {
    const result = await python(s.client, { operation: 'execute', code: 'print(1 + 1)' });
    assert.notEqual(result.isError, true);
    assert.equal(result.structuredContent.stdout, '2\n');
    assert.equal(result.structuredContent.success, true);
    assert.match(textOf(result), /2/);
  });

  test('unwrapped arguments', async () => {
    const result = await s.client.callTool({ name: 'python', arguments: { operation: 'execute', code: 'print("flat")' } });
    assert.equal(result.structuredContent.stdout, 'flat\n');
  });

  test('trailing expression value', async () => {
    const result = await python(s.client, { operation: 'execute', code: 'a = 6\na * 7' });
    assert.equal(result.structuredContent.result, '42');
  });

  test('an exception is a tool error with its traceback', async () => {
    const result = await python(s.client, { operation: 'execute', code: 'def f():\n    1 / 0\nf()' });
    assert.equal(result.isError, true);
    const { error } = result.structuredContent;
    assert.equal(error.type, 'ZeroDivisionError');
    assert.match(error.traceback, /ZeroDivisionError/);
    assert.match(error.traceback, /in f/);
    assert.match(textOf(result), /ZeroDivisionError/);
  });

  test('persistent session keeps variables', async () => {
    await python(s.client, { operation: 'execute', code: 'n = 10', session_id: 'p', persistent: true });
    const result = await python(s.client, { operation: 'execute', code: 'n * 2', session_id: 'p', persistent: true });
    assert.equal(result.structuredContent.result, '20');
  });

  test('timeout stops a busy loop and the session survives', async () => {
    await python(s.client, { operation: 'execute', code: 'kept = "yes"', session_id: 't', persistent: true });
    const started = Date.now();
    const result = await python(s.client, { operation: 'execute', code: 'while True:\n    pass', session_id: 't', persistent: true, timeout: 1 });
    const ms = Date.now() - started;
    assert.equal(result.isError, true);
    assert.match(textOf(result), TIMED_OUT);
    assert.ok(ms >= 900 && ms < 4000, `answered after ${ms} ms`);
    const after = await python(s.client, { operation: 'execute', code: 'kept', session_id: 't', persistent: true });
    assert.equal(after.structuredContent.result, "'yes'");
  });

  test('AbortSignal cancels `while True: pass` and the session still works', async () => {
    await python(s.client, { operation: 'execute', code: 'state = 1', session_id: 'c', persistent: true });
    const marker = join(s.home.work, 'spinning');
    const controller = new AbortController();
    const pending = python(s.client, { operation: 'execute', code: touchThen(marker, 'while True:\n    pass'), session_id: 'c', persistent: true },
      { signal: controller.signal, timeout: 60000 });
    await waitUntil(() => existsSync(marker), { what: 'the loop to start' });
    const started = Date.now();
    controller.abort('no longer needed');
    await assert.rejects(pending);
    const result = await python(s.client, { operation: 'execute', code: 'state + 1', session_id: 'c', persistent: true });
    const ms = Date.now() - started;
    assert.equal(result.structuredContent.result, '2');
    assert.ok(ms < 2000, `the session answered ${ms} ms after the cancel`);
  });

  test('AbortSignal cancels time.sleep(60) quickly', async () => {
    const marker = join(s.home.work, 'sleeping');
    const controller = new AbortController();
    const pending = python(s.client, { operation: 'execute', code: touchThen(marker, 'import time\ntime.sleep(60)'), session_id: 'z', persistent: true },
      { signal: controller.signal });
    await waitUntil(() => existsSync(marker), { what: 'the sleep to start' });
    const started = Date.now();
    controller.abort();
    await assert.rejects(pending);
    const result = await python(s.client, { operation: 'execute', code: '"awake"', session_id: 'z', persistent: true });
    const ms = Date.now() - started;
    assert.equal(result.structuredContent.result, "'awake'");
    assert.ok(ms < 1000, `the session answered ${ms} ms after the cancel`);
  });

  test('two sessions printing at the same time are not mixed', async () => {
    const code = (tag) => `import time\nfor i in range(40):\n    print("${tag}", i)\n    time.sleep(0.002)`;
    const [a, b] = await Promise.all([
      python(s.client, { operation: 'execute', code: code('A'), session_id: 'A', persistent: true }),
      python(s.client, { operation: 'execute', code: code('B'), session_id: 'B', persistent: true }),
    ]);
    const expected = (tag) => Array.from({ length: 40 }, (_, i) => `${tag} ${i}\n`).join('');
    assert.equal(a.structuredContent.stdout, expected('A'));
    assert.equal(b.structuredContent.stdout, expected('B'));
  });

  test('scripts: save, list, load, run, delete', async () => {
    const code = 'print("from a script")\nanswer = 42\n';
    const saved = payload(await python(s.client, { operation: 'save_script', filename: 'sdk_demo', code }));
    assert.equal(saved.filename, 'sdk_demo.py');
    assert.equal(saved.saved, true);
    assert.equal(saved.size, Buffer.byteLength(code));
    assert.equal(saved.path, join(s.home.scriptsDir, 'sdk_demo.py'));
    assert.equal(readFileSync(saved.path, 'utf8'), code);

    const listed = payload(await python(s.client, { operation: 'list_scripts' }));
    assert.equal(listed.count, 1);
    assert.equal(listed.directory, s.home.scriptsDir);
    assert.deepEqual(listed.scripts.map((x) => x.filename), ['sdk_demo.py']);

    const loaded = payload(await python(s.client, { operation: 'load_script', filename: 'sdk_demo.py' }));
    assert.equal(loaded.code, code);

    const ran = await python(s.client, { operation: 'run_script', filename: 'sdk_demo.py' });
    assert.equal(ran.structuredContent.stdout, 'from a script\n');

    const deleted = payload(await python(s.client, { operation: 'delete_script', filename: 'sdk_demo.py' }));
    assert.deepEqual({ filename: deleted.filename, deleted: deleted.deleted }, { filename: 'sdk_demo.py', deleted: true });
    assert.equal(existsSync(saved.path), false);
  });

  test('path traversal in a script name is refused', async () => {
    for (const filename of ['../escape', '.hidden', 'a/b.py']) {
      const result = await python(s.client, { operation: 'save_script', filename, code: 'print(1)' });
      assert.equal(result.isError, true, filename);
    }
    assert.equal(existsSync(join(s.home.data, 'python-mcp', 'escape.py')), false);
  });

  test('readme operation', async () => {
    const result = await python(s.client, { operation: 'readme' });
    assert.notEqual(result.isError, true);
    assert.ok(textOf(result).length > 1000);
    assert.match(textOf(result), /save_script/);
  });
});

// The seed document's "Persistent Sessions" example, verbatim: load data.csv with pandas, then
// describe it, then filter it, in three calls of one session.
test('seed example: a pandas DataFrame kept across three calls', async () => {
  const values = [50, 150, 250, 99, 101, 300, 20];
  const s = await connect();
  try {
    writeFileSync(join(s.home.work, 'data.csv'), 'name,value\n' + values.map((v, i) => `item${i},${v}`).join('\n') + '\n');
    const step = (code) => python(s.client, { operation: 'execute', code, session_id: 'analysis', persistent: true });

    const first = await step("import pandas as pd; df = pd.read_csv('data.csv')");
    assert.notEqual(first.isError, true, textOf(first));

    const second = await step('print(df.describe())');
    assert.notEqual(second.isError, true, textOf(second));
    assert.match(second.structuredContent.stdout, /count\s+7\.0/);
    assert.match(second.structuredContent.stdout, /mean/);

    const third = await step("filtered = df[df['value'] > 100]; print(len(filtered))");
    assert.equal(third.structuredContent.stdout, `${values.filter((v) => v > 100).length}\n`);
  } finally {
    await s.close();
  }
});

test('closing the client ends the server promptly with exit code 0', async () => {
  const s = await connect();
  await python(s.client, { operation: 'execute', code: 'x = 1', session_id: 'k', persistent: true });
  const ended = await s.close();
  assert.equal(ended.exitCode, 0, JSON.stringify(ended));
  assert.ok(ended.ms < 2000, `took ${ended.ms} ms`);
});
