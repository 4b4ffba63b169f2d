// The `user` tool with the official TypeScript SDK client as the one answering elicitation/create
// (Client with capabilities {elicitation: {}} and an ElicitRequestSchema handler): the SDK checks
// our requests against its schema and the accepted content against our requestedSchema, so these
// tests also prove the server's elicitation requests are well-formed. And a client without the
// capability, which must never be asked.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

import { makeHome, serverBinary, textOf } from './lib/server.mjs';

// A python-mcp process with an SDK client declaring `capabilities`; `onElicit(params)` answers.
async function connectWith(capabilities, onElicit) {
  const home = makeHome();
  const transport = new StdioClientTransport({
    command: serverBinary(), args: [], env: home.env, cwd: home.work, stderr: 'pipe',
  });
  const client = new Client({ name: 'pymcp-interop-user', version: '1.0.0' }, { capabilities });
  const asked = [];
  if (onElicit) {
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params);
      return onElicit(request.params);
    });
  }
  const errors = [];
  client.onerror = (error) => { errors.push(error); };
  await client.connect(transport);
  return {
    client,
    asked,
    errors,
    call: (args) => client.callTool({ name: 'user', arguments: args }),
    async close() { await client.close(); home.remove(); },
  };
}

describe('user tool, client with elicitation (TypeScript SDK)', () => {
  let answer = () => ({ action: 'cancel' });
  let s;
  const ready = connectWith({ elicitation: {} }, (params) => answer(params)).then((c) => { s = c; });
  after(async () => {
    assert.deepEqual(s.errors, [], 'the transport saw something that is not JSON-RPC');
    await s.close();
  });

  test('ask: accepted answers come back as structuredContent', async () => {
    await ready;
    answer = () => ({ action: 'accept', content: { answer: 'blue' } });
    const r = await s.call({ input: { operation: 'ask', message: 'Favourite colour?' } });
    assert.ok(!r.isError, textOf(r));
    assert.deepEqual(r.structuredContent, { action: 'accept', content: { answer: 'blue' } });
    const params = s.asked.at(-1);
    assert.equal(params.message, 'Favourite colour?');
    assert.equal(params.requestedSchema.properties.answer.type, 'string');
  });

  test('ask with a schema of several primitive fields', async () => {
    await ready;
    answer = () => ({ action: 'accept', content: { count: 3, sure: true, size: 'M' } });
    const schema = {
      type: 'object',
      properties: {
        count: { type: 'integer', minimum: 0 },
        sure: { type: 'boolean' },
        size: { type: 'string', enum: ['S', 'M', 'L'] },
      },
      required: ['count'],
    };
    const r = await s.call({ operation: 'ask', message: 'Order', schema });
    assert.ok(!r.isError, textOf(r));
    assert.deepEqual(r.structuredContent.content, { count: 3, sure: true, size: 'M' });
    assert.deepEqual(s.asked.at(-1).requestedSchema, schema);
  });

  test('ask: a cancelled form is reported as such, not as an error', async () => {
    await ready;
    answer = () => ({ action: 'cancel' });
    const r = await s.call({ operation: 'ask', message: 'Continue?' });
    assert.ok(!r.isError, textOf(r));
    assert.equal(r.structuredContent.action, 'cancel');
  });

  test('collect_api_key: accepted, then declined', async () => {
    await ready;
    answer = () => ({ action: 'accept', content: { api_key: 'sk-interop-1' } });
    let r = await s.call({ input: { operation: 'collect_api_key', service_name: 'OpenAI' } });
    assert.ok(!r.isError, textOf(r));
    assert.equal(r.structuredContent.api_key, 'sk-interop-1');
    assert.ok(!textOf(r).includes('sk-interop-1'), 'the key is not echoed in the text');
    answer = () => ({ action: 'decline' });
    r = await s.call({ input: { operation: 'collect_api_key', service_name: 'OpenAI' } });
    assert.equal(r.isError, true);
    assert.match(textOf(r), /declined/);
  });

  test('show_popup: HTML arrives as readable text with an empty form', async () => {
    await ready;
    answer = () => ({ action: 'accept' });
    const r = await s.call({ input: { operation: 'show_popup', title: 'Done', html: '<h1>Saved</h1><p>3 rows</p>' } });
    assert.ok(!r.isError, textOf(r));
    assert.deepEqual(r.structuredContent, { shown: true, action: 'accept' });
    assert.equal(s.asked.at(-1).message, 'Done\n\nSaved\n\n3 rows');
    assert.deepEqual(s.asked.at(-1).requestedSchema, { type: 'object', properties: {} });
  });
});

describe('user tool, client without elicitation (TypeScript SDK)', () => {
  let s;
  const ready = connectWith({}, null).then((c) => { s = c; });
  after(async () => { await s.close(); });

  test('collect_api_key and ask fail saying the client cannot ask', async () => {
    await ready;
    for (const args of [{ operation: 'collect_api_key', service_name: 'OpenAI' }, { operation: 'ask', message: '?' }]) {
      const r = await s.call(args);
      assert.equal(r.isError, true);
      assert.match(textOf(r), /did not declare the 'elicitation' capability/);
    }
  });

  test('show_popup returns its text and says it was not shown', async () => {
    await ready;
    const r = await s.call({ operation: 'show_popup', html: '<p>Hello &amp; bye</p>' });
    assert.ok(!r.isError, textOf(r));
    assert.equal(r.structuredContent.shown, false);
    assert.match(textOf(r), /Not shown to the user/);
    assert.match(textOf(r), /Hello & bye/);
    assert.equal(r.content.at(-1).resource.mimeType, 'text/html');
  });
});
