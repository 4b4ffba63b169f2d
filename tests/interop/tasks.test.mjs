// The 2025-11-25 tasks utility through the official TypeScript SDK client (1.32.2), which has it
// as client.experimental.tasks: callToolStream() sends tools/call with params.task, then polls
// tasks/get at the server's pollInterval and fetches tasks/result; listTasks/getTask/cancelTask.
// A task is one of the python tool's jobs (same id in list_jobs). A client that negotiated an
// older revision (raw JSON-RPC over the SDK's stdio transport) sees nothing of tasks.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connect, makeHome, serverBinary, sharedServer } from './lib/server.mjs';
import { TOKEN, startHttpServer } from './lib/http_server.mjs';

// The first message of a task stream: the created task (the stream is then left).
async function createTask(client, args, ttl = 60_000) {
  for await (const m of client.experimental.tasks.callToolStream({ name: 'python', arguments: args }, undefined, {
    task: { ttl },
  })) {
    assert.equal(m.type, 'taskCreated', JSON.stringify(m));
    return m.task;
  }
  throw new Error('no taskCreated message');
}

describe('tasks through the TypeScript SDK client', () => {
  const s = sharedServer();

  test('the server offers tasks and the python tool may run as one', () => {
    const caps = s.client.getServerCapabilities();
    assert.ok(caps.tasks?.requests?.tools?.call, JSON.stringify(caps));
    assert.ok(caps.tasks.list && caps.tasks.cancel);
    const python = s.tools.tools.find((t) => t.name === 'python');
    assert.equal(python.execution?.taskSupport, 'optional');
  });

  test('a long execute run as a task is polled to its result', { timeout: 60_000 }, async () => {
    const code = ['import time', 'for i in range(4):', '    time.sleep(0.5)', '    print(f"tick {i}", flush=True)', '6 * 7'].join('\n');
    const messages = [];
    for await (const m of s.client.experimental.tasks.callToolStream(
      { name: 'python', arguments: { code } }, undefined, { task: { ttl: 120_000 } })) {
      messages.push(m);
    }
    const types = messages.map((m) => m.type);
    assert.equal(types[0], 'taskCreated', JSON.stringify(messages));
    assert.equal(types.at(-1), 'result', JSON.stringify(messages));
    const created = messages[0].task;
    assert.match(created.taskId, /^job-\d+$/);
    assert.equal(created.status, 'working');
    assert.equal(created.ttl, 120_000);
    assert.ok(created.pollInterval > 0);
    assert.ok(messages.some((m) => m.type === 'taskStatus' && m.task.status === 'working'), 'polled while working');
    const result = messages.at(-1).result;
    assert.equal(result.structuredContent.result, '42');
    assert.match(result.structuredContent.stdout, /tick 3/);
    assert.equal(result._meta['io.modelcontextprotocol/related-task'].taskId, created.taskId);
    // The task is a job: list_jobs and job_status name it.
    const jobs = await s.client.callTool({ name: 'python', arguments: { operation: 'list_jobs' } });
    assert.ok(jobs.structuredContent.jobs.some((j) => j.job_id === created.taskId && j.state === 'succeeded'));
    const listed = await s.client.experimental.tasks.listTasks();
    const mine = listed.tasks.find((t) => t.taskId === created.taskId);
    assert.equal(mine?.status, 'completed', JSON.stringify(listed));
  });

  test('tasks/cancel really interrupts the code', { timeout: 60_000 }, async () => {
    const task = await createTask(s.client, {
      code: 'import time\nprint("started", flush=True)\nwhile True:\n    time.sleep(0.05)',
      session_id: 'tcancel', persistent: true, timeout: 600,
    });
    // Cancelled while the loop runs (not while queued): wait until it printed.
    for (let i = 0; i < 300; ++i) {
      const st = await s.client.callTool({ name: 'python', arguments: { operation: 'job_status', job_id: task.taskId } });
      if (st.structuredContent.output?.includes('started')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const cancelled = await s.client.experimental.tasks.cancelTask(task.taskId);
    assert.equal(cancelled.status, 'cancelled');
    const status = await s.client.callTool({ name: 'python', arguments: { operation: 'job_status', job_id: task.taskId } });
    assert.equal(status.structuredContent.state, 'cancelled', JSON.stringify(status));
    // The loop really stopped: the next call in its persistent session runs (it would queue
    // behind a loop that goes on, and answer with a running job's handle after 'wait').
    const started = Date.now();
    const next = await s.client.callTool({ name: 'python', arguments: { code: '1 + 1', session_id: 'tcancel', persistent: true, wait: 20 } });
    assert.equal(next.structuredContent.result, '2');
    assert.ok(Date.now() - started < 30_000);
    // A second cancel is refused: the task is terminal.
    await assert.rejects(s.client.experimental.tasks.cancelTask(task.taskId), (e) => e.code === -32602);
  });

  test('cancel_job cancels a task too', { timeout: 60_000 }, async () => {
    const task = await createTask(s.client, { code: 'import time\ntime.sleep(300)', timeout: 600 });
    const r = await s.client.callTool({ name: 'python', arguments: { operation: 'cancel_job', job_id: task.taskId } });
    assert.equal(r.structuredContent.state, 'cancelled', JSON.stringify(r));
    assert.equal((await s.client.experimental.tasks.getTask(task.taskId)).status, 'cancelled');
  });

  test('unknown task ids are invalid params', async () => {
    for (const call of [
      () => s.client.experimental.tasks.getTask('job-99999'),
      () => s.client.experimental.tasks.cancelTask('nope'),
    ]) {
      await assert.rejects(call(), (e) => e.code === -32602 && /Task not found/.test(e.message));
    }
  });
});

// A 2025-06-18 client over the same SDK transport, raw JSON-RPC: no task capability, no
// execution field, params.task ignored (a plain CallToolResult), tasks/* unknown.
describe('a client of an older revision sees no task fields', () => {
  let transport;
  let home;
  const pending = new Map();
  let nextId = 1;
  const send = (method, params) => new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    transport.send({ jsonrpc: '2.0', id, method, params });
  });
  before(async () => {
    home = makeHome();
    transport = new StdioClientTransport({ command: serverBinary(), env: home.env, cwd: home.work, stderr: 'pipe' });
    transport.onmessage = (m) => { if (pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); } };
    await transport.start();
  });
  after(async () => { await transport.close(); home.remove(); });

  test('2025-06-18', { timeout: 60_000 }, async () => {
    const init = await send('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'old', version: '1' } });
    assert.equal(init.result.protocolVersion, '2025-06-18');
    assert.equal(init.result.capabilities.tasks, undefined);
    await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    const list = await send('tools/list', {});
    for (const t of list.result.tools) assert.equal(t.execution, undefined, t.name);
    const call = await send('tools/call', { name: 'python', arguments: { code: '2 + 3' }, task: { ttl: 1000 } });
    assert.equal(call.result.task, undefined, JSON.stringify(call));
    assert.equal(call.result.structuredContent.result, '5');
    assert.equal(call.result._meta, undefined);
    const tasks = await send('tasks/list', {});
    assert.equal(tasks.error?.code, -32601, JSON.stringify(tasks));
  });
});

// The same over --http (a legacy 2025-11-25 session): the task outlives the POST that created it,
// and tasks/result on a later POST gets its result.
describe('tasks over Streamable HTTP', () => {
  let server;
  let client;
  before(async () => {
    server = await startHttpServer();
    client = new Client({ name: 'pymcp-tasks-http', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL('/mcp', server.url), {
      requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
    }));
    await client.listTools();
  });
  after(async () => {
    await client.close();
    const ended = await server.stop();
    assert.equal(server.stdout(), '', 'nothing on stdout with --http');
    assert.equal(ended.signal ?? ended.exitCode, ended.signal ? 'SIGTERM' : 0);
  });

  test('a task is created, listed and its result fetched on later POSTs', { timeout: 60_000 }, async () => {
    const task = await createTask(client, { code: 'import time\ntime.sleep(0.3)\n"over http"' });
    assert.equal(task.status, 'working');
    const listed = await client.experimental.tasks.listTasks();
    assert.ok(listed.tasks.some((t) => t.taskId === task.taskId));
    const result = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    assert.equal(result.structuredContent.result, "'over http'");
    assert.equal((await client.experimental.tasks.getTask(task.taskId)).status, 'completed');
  });
});
