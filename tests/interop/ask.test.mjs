// Issue 17 with the official TypeScript SDK client answering: input(), getpass and mcp.ask() send
// elicitation/create, mcp.sample() sends sampling/createMessage (the SDK checks each request
// against its schemas, and accepted content against our requestedSchema), a client without the
// capabilities is never asked, and the reference `everything` server's own elicitation, sampling
// and roots requests, made while Python code calls its tools, reach this client (forwarded).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

import { makeHome, serverBinary, payload } from './lib/server.mjs';

// A python-mcp process with an SDK client declaring `capabilities`; the handlers answer.
async function connectWith(capabilities, { onElicit, onSample, roots, args = [] } = {}) {
  const home = makeHome();
  const transport = new StdioClientTransport({
    command: serverBinary(), args, env: home.env, cwd: home.work, stderr: 'pipe',
  });
  const client = new Client({ name: 'pymcp-interop-ask', version: '1.0.0' }, { capabilities });
  const asked = { elicit: [], sample: [], roots: 0 };
  if (onElicit) {
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.elicit.push(request.params);
      return onElicit(request.params);
    });
  }
  if (onSample) {
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      asked.sample.push(request.params);
      return onSample(request.params);
    });
  }
  if (roots) {
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      asked.roots += 1;
      return { roots };
    });
  }
  const errors = [];
  client.onerror = (error) => { errors.push(error); };
  await client.connect(transport);
  return {
    client,
    asked,
    errors,
    async run(code, extra = {}) {
      const r = await client.callTool({ name: 'python', arguments: { input: { operation: 'execute', code, timeout: 60, ...extra } } },
        undefined, { timeout: 120000 });
      const p = payload(r);
      assert.equal(p.success, true, JSON.stringify(p));
      return p;
    },
    async close() { await client.close(); home.remove(); },
  };
}

describe('code asking an SDK client with elicitation and sampling', () => {
  let elicit = () => ({ action: 'cancel' });
  let sample = () => ({ role: 'assistant', content: { type: 'text', text: '?' }, model: 'none' });
  let s;
  before(async () => {
    s = await connectWith({ elicitation: {}, sampling: {} }, {
      onElicit: (p) => elicit(p), onSample: (p) => sample(p),
    });
  });
  after(async () => {
    assert.deepEqual(s.errors, [], 'the transport saw something that is not JSON-RPC');
    await s.close();
  });

  test('input() and mcp.ask() return what the user accepted', async () => {
    elicit = (p) => ({ action: 'accept', content: p.requestedSchema.properties.answer ? { answer: 'Ada' } : { n: 4, ok: true } });
    const p = await s.run(`
name = input('Name? ')
form = mcp.ask('Details', {'type': 'object', 'properties': {'n': {'type': 'integer'}, 'ok': {'type': 'boolean'}}, 'required': ['n']})
print(name, mcp.ask('Again?'), form)`);
    assert.equal(p.stdout, "Name? Ada\nAda Ada {'n': 4, 'ok': True}\n");
    assert.equal(s.asked.elicit.at(-3).message, 'Name?');
  });

  test('getpass returns the secret without printing it', async () => {
    elicit = () => ({ action: 'accept', content: { password: 'hunter2' } });
    const p = await s.run("import getpass\nprint(len(getpass.getpass()))");
    assert.equal(p.stdout, 'Password: \n7\n');
  });

  test('decline and cancel raise mcp.AskDeclined and mcp.AskCancelled', async () => {
    const actions = ['decline', 'cancel'];
    elicit = () => ({ action: actions.shift() });
    const p = await s.run(`
out = []
for _ in range(2):
    try:
        mcp.ask('Continue?')
    except mcp.AskError as e:
        out.append(type(e).__name__)
print(out)`);
    assert.equal(p.stdout, "['AskDeclined', 'AskCancelled']\n");
  });

  test('mcp.sample returns the text of the client model, with its model and stop reason', async () => {
    sample = (params) => ({
      role: 'assistant',
      content: { type: 'text', text: `echo: ${params.messages.at(-1).content.text}` },
      model: 'sdk-model',
      stopReason: 'endTurn',
    });
    const p = await s.run("r = mcp.sample('Hello there', max_tokens=20, system='terse')\nprint(r, r.model, r.stop_reason)");
    assert.equal(p.stdout, 'echo: Hello there sdk-model endTurn\n');
    const params = s.asked.sample.at(-1);
    assert.equal(params.maxTokens, 20);
    assert.equal(params.systemPrompt, 'terse');
  });

  test('the call\'s timeout pauses while the user answers', async () => {
    elicit = async () => {
      await new Promise((r) => setTimeout(r, 3000)); // the person thinking: longer than the timeout
      return { action: 'accept', content: { answer: 'late' } };
    };
    const p = await s.run("print(mcp.ask('Slow?'))", { timeout: 1.5 });
    assert.equal(p.stdout, 'late\n');
  });
});

describe('a client without elicitation or sampling', () => {
  let s;
  before(async () => { s = await connectWith({}); });
  after(async () => { await s.close(); });

  test('input() stays a clear EOFError and mcp.ask / mcp.sample raise AskUnavailable', async () => {
    const p = await s.run(`
try:
    input('x? ')
except EOFError as e:
    print('EOF', 'elicitation' in str(e))
for f in (lambda: mcp.ask('q'), lambda: mcp.sample('q')):
    try:
        f()
    except mcp.AskUnavailable as e:
        print('unavailable', str(e).split(' capability')[0])`);
    assert.equal(p.stdout, 'x? EOF True\n'
      + "unavailable the MCP client did not declare the 'elicitation'\n"
      + "unavailable the MCP client did not declare the 'sampling'\n");
  });
});

describe("downstream servers' requests are forwarded to the client (everything server)", () => {
  const bin = (name) => resolve('node_modules/.bin', name);
  let s;
  before(async () => {
    const root = join(process.env.TMPDIR ?? '/tmp', `pymcp-ask-${process.pid}`);
    mkdirSync(root, { recursive: true });
    const config = join(root, 'config.json');
    writeFileSync(config, JSON.stringify({
      mcpServers: { everything: { command: bin('mcp-server-everything'), args: ['stdio'] } },
    }));
    s = await connectWith({ elicitation: {}, sampling: {}, roots: {} }, {
      args: ['--config', config],
      onElicit: () => ({ action: 'accept', content: { name: 'Grace Hopper' } }),
      onSample: (p) => ({ role: 'assistant', content: { type: 'text', text: `sampled(${p.maxTokens})` }, model: 'fwd-model' }),
      roots: [{ uri: 'file:///projects/demo', name: 'demo project' }],
    });
  });
  after(async () => { await s.close(); });

  test('elicitation, sampling and roots requests made during mcp.call reach this client', async () => {
    const p = await s.run(`
e = mcp.call('everything.trigger-elicitation-request', {})
m = mcp.call('everything.trigger-sampling-request', {'prompt': 'hi', 'maxTokens': 7})
r = mcp.call('everything.get-roots-list', {})
text = lambda res: '\\n'.join(c.get('text', '') for c in res['content'])
print(text(e)); print('---'); print(text(m)); print('---'); print(text(r))`);
    assert.match(p.stdout, /Grace Hopper/);
    assert.match(p.stdout, /sampled\(7\)/);
    assert.match(p.stdout, /fwd-model/);
    assert.match(p.stdout, /file:\/\/\/projects\/demo/);
    assert.ok(s.asked.elicit.length >= 1 && s.asked.sample.length >= 1 && s.asked.roots >= 1, JSON.stringify(s.asked));
  });
});
