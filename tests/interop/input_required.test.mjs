// Code asking the client in the 2026-07-28 era, driven by the TypeScript SDK v2 client
// (@modelcontextprotocol/client, pinned in package.json) pinned to that revision, over stdio and
// over Streamable HTTP. The revision has no server-to-client requests: python-mcp answers the
// tools/call with an input_required result (inputRequests + requestState) and keeps the code
// parked; the client fulfils the requests through its registered elicitation and sampling
// handlers and retries the call with inputResponses and the state (its input-required driver),
// which resumes the same execution. Covered: input(), mcp.ask with a schema, mcp.sample, two
// questions in one call, decline, and the `user` tool's ask. Every test also checks, on the
// wire, that an input_required result came (the modern path, not a legacy request).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

import { makeHome, serverBinary, payload, textOf } from './lib/server.mjs';
import { TOKEN, startHttpServer } from './lib/http_server.mjs';

const MODERN = '2026-07-28';
const OPTIONS = {
  versionNegotiation: { mode: { pin: MODERN } },
  capabilities: { elicitation: { form: {} }, sampling: {} },
};

// The client with its handlers: `answers` decides each elicitation (by message), sampling
// answers with the text it was sent, upper-cased. `wire` records every message the client got.
function makeClient(name) {
  const client = new Client({ name, version: '1.0.0' }, OPTIONS);
  const asked = [];
  const answers = new Map();
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(request.params);
    const answer = answers.get(request.params.message);
    return answer ?? { action: 'decline' };
  });
  client.setRequestHandler('sampling/createMessage', async (request) => {
    asked.push(request.params);
    const text = request.params.messages.at(-1).content.text;
    return { role: 'assistant', model: 'upper-1', stopReason: 'endTurn', content: { type: 'text', text: text.toUpperCase() } };
  });
  const errors = [];
  client.onerror = (e) => errors.push(e);
  return { client, asked, answers, errors };
}

// Records what reaches the client (after connect, so the client's own handler stays in place).
function tap(transport) {
  const wire = [];
  const original = transport.onmessage;
  transport.onmessage = (message, extra) => {
    wire.push(message);
    original?.(message, extra);
  };
  return wire;
}

async function stdioClient() {
  const home = makeHome();
  const transport = new StdioClientTransport({
    command: serverBinary(), args: [], env: home.env, cwd: home.work, stderr: 'pipe',
  });
  const c = makeClient('pymcp-v2-ask');
  await c.client.connect(transport);
  return { ...c, wire: tap(transport), async close() { try { await c.client.close(); } finally { home.remove(); } } };
}

async function httpClient(server) {
  const transport = new StreamableHTTPClientTransport(server.url, {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  });
  const c = makeClient('pymcp-v2-ask-http');
  await c.client.connect(transport);
  return { ...c, wire: tap(transport), async close() { await c.client.close(); } };
}

const inputRequiredSeen = (wire) =>
  wire.some((m) => m?.result?.resultType === 'input_required' && typeof m.result.requestState === 'string');

function python(client, code, extra = {}) {
  return client.callTool({ name: 'python', arguments: { input: { operation: 'execute', code, ...extra } } });
}

function tests(get) {
  test('input(): asked through input_required, answered by the elicitation handler', async () => {
    const c = get();
    c.answers.set('Your name?', { action: 'accept', content: { answer: 'Ada' } });
    const r = await python(c.client, "runs = 1\nname = input('Your name? ')\nprint('hello', name, runs)");
    assert.equal(r.isError, false, textOf(r));
    assert.equal(payload(r).stdout, 'Your name? Ada\nhello Ada 1\n');
    assert.ok(inputRequiredSeen(c.wire), 'an input_required result came');
    assert.equal(c.wire.filter((m) => m?.method === 'elicitation/create').length, 0, 'no legacy request');
  });

  test('mcp.ask with a schema returns the form; decline raises AskDeclined', async () => {
    const c = get();
    c.answers.set('Details', { action: 'accept', content: { n: 7, ok: true } });
    const code = [
      "form = mcp.ask('Details', {'type': 'object', 'properties': {'n': {'type': 'integer'}, 'ok': {'type': 'boolean'}}})",
      'try:',
      "    mcp.ask('Really?')",
      'except mcp.AskDeclined:',
      "    print('declined')",
      "print(form['n'], form['ok'])",
    ].join('\n');
    const r = await python(c.client, code);
    assert.equal(r.isError, false, textOf(r));
    assert.equal(payload(r).stdout, 'declined\n7 True\n');
    const details = c.asked.find((p) => p.message === 'Details');
    assert.equal(details.requestedSchema.properties.n.type, 'integer');
  });

  test('mcp.sample: answered by the sampling handler, two questions in one call', async () => {
    const c = get();
    c.answers.set('Topic?', { action: 'accept', content: { answer: 'tea' } });
    const code = "topic = mcp.ask('Topic?')\nreply = mcp.sample('say ' + topic, max_tokens=20)\nprint(reply, reply.model)";
    const r = await python(c.client, code);
    assert.equal(r.isError, false, textOf(r));
    assert.equal(payload(r).stdout, 'SAY TEA upper-1\n');
    const sampled = c.asked.find((p) => p.messages);
    assert.equal(sampled.maxTokens, 20);
  });

  test("the user tool's ask", async () => {
    const c = get();
    c.answers.set('Which colour?', { action: 'accept', content: { answer: 'green' } });
    const r = await c.client.callTool({ name: 'user', arguments: { input: { operation: 'ask', message: 'Which colour?' } } });
    assert.equal(r.isError, false, textOf(r));
    assert.match(JSON.stringify(r.structuredContent), /green/);
  });

  test('a persistent session is the same across the rounds', async () => {
    const c = get();
    c.answers.set('More?', { action: 'accept', content: { answer: 'yes' } });
    const session = { session_id: 'ir-v2', persistent: true };
    await python(c.client, 'count = 0', session);
    const r = await python(c.client, "count += 1\nanswer = input('More? ')\ncount += 1\nprint(count, answer)", session);
    assert.equal(payload(r).stdout, 'More? yes\n2 yes\n');
    const after = await python(c.client, 'count', session);
    assert.equal(payload(after).result, '2');
  });
}

describe('SDK v2 client, 2026-07-28, stdio', () => {
  let c;
  before(async () => { c = await stdioClient(); });
  after(async () => {
    assert.deepEqual(c.errors.map(String), []);
    await c.close();
  });
  tests(() => c);
});

describe('SDK v2 client, 2026-07-28, HTTP', () => {
  let server;
  let c;
  before(async () => {
    server = await startHttpServer();
    c = await httpClient(server);
  });
  after(async () => {
    assert.deepEqual(c.errors.map(String), []);
    await c.close();
    await server.stop();
  });
  tests(() => c);
});
