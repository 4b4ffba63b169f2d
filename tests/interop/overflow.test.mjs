// Issue 14, overflow and downstream images, through the official TypeScript SDK client (which
// validates resource_link and image content and structuredContent against the outputSchema) and
// the MCP Inspector CLI: output past max_output is linked and read back whole with
// client.readResource / `--method resources/read`; an image a downstream tool returned comes back
// as image content whose PNG decodes.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { connect, makeHome, python, serverBinary, textOf } from './lib/server.mjs';
import { decodePng } from './lib/png.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const BIG = "for i in range(20000):\n    print(f'línea {i:05d} ✓')";
const BIG_TEXT = Array.from({ length: 20000 }, (_, i) => `línea ${String(i).padStart(5, '0')} ✓\n`).join('');

describe('overflow and downstream images through the TypeScript SDK client', () => {
  let s;
  let root;
  before(async () => {
    root = makeHome();
    const config = join(root.root, 'servers.json');
    writeFileSync(config, JSON.stringify({ mcpServers: {
      everything: { command: join(here, 'node_modules', '.bin', 'mcp-server-everything'), args: ['stdio'] },
    } }));
    s = await connect({ args: ['--config', config] });
  });
  after(async () => {
    const ended = await s.close();
    root.remove();
    assert.deepEqual(s.errors, [], 'the transport saw something that is not JSON-RPC');
    assert.equal(ended.exitCode, 0, `server ended with ${JSON.stringify(ended)}`);
  });

  test('the server declares resources and hints a result size on its tools', async () => {
    assert.deepEqual(s.client.getServerCapabilities().resources, {});
    for (const tool of s.tools.tools) {
      assert.ok(tool.description.length <= 4096, tool.name);
      assert.ok(tool._meta['anthropic/maxResultSizeChars'] >= 50000, tool.name);
    }
  });

  test('big output is a resource_link that client.readResource reads back whole', async () => {
    const r = await python(s.client, { operation: 'execute', code: BIG, max_output: 2000 });
    assert.notEqual(r.isError, true, textOf(r));
    const links = r.content.filter((c) => c.type === 'resource_link');
    assert.equal(links.length, 1, JSON.stringify(r.content.map((c) => c.type)));
    assert.equal(links[0].size, Buffer.byteLength(BIG_TEXT));
    assert.match(textOf(r), new RegExp(`resources/read ${links[0].uri}`));
    const read = await s.client.readResource({ uri: links[0].uri });
    assert.equal(read.contents[0].text, BIG_TEXT);
    const listed = await s.client.listResources();
    assert.ok(listed.resources.some((x) => x.uri === links[0].uri));
    await assert.rejects(s.client.readResource({ uri: 'python-mcp://results/none-1/stdout' }),
      (e) => e.code === -32002 && /unknown/.test(e.message));
  });

  test("a downstream tool's image is passed back as image content", async () => {
    const r = await python(s.client, {
      operation: 'execute',
      timeout: 90,
      code: "mcp._wait_for_server('everything')\n"
        + "r = mcp.call('everything.get-tiny-image', {})\n"
        + "display(*[c for c in r['content'] if c['type'] == 'image'])",
    });
    assert.notEqual(r.isError, true, textOf(r));
    const images = r.content.filter((c) => c.type === 'image');
    assert.equal(images.length, 1, JSON.stringify(r.content.map((c) => c.type)));
    assert.equal(images[0].mimeType, 'image/png');
    assert.deepEqual(decodePng(Buffer.from(images[0].data, 'base64')), [20, 20]);
    assert.deepEqual(r.structuredContent.display.map((d) => d.type), ['image']);
  });
});

// The Inspector CLI starts a server per run over stdio, so the link of one run would be gone by
// the next: here it talks to one python-mcp --http server (test-only, no token, loopback).
test('the MCP Inspector CLI reads the overflow link with resources/read', async () => {
  const home = makeHome();
  const child = spawn(serverBinary(), ['--http', '127.0.0.1:0', '--http-insecure-no-token'], {
    env: home.env, cwd: home.work, stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    let stderr = '';
    const url = await new Promise((resolve, reject) => {
      child.stderr.on('data', (c) => {
        stderr += c.toString();
        const m = stderr.match(/serving MCP over HTTP at (http:\/\/\S+)/);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`python-mcp exited (${code}): ${stderr}`)));
    });
    const inspect = (args) => new Promise((resolve, reject) => {
      execFile(join(here, 'node_modules', '.bin', 'mcp-inspector'), ['--cli', url, '--transport', 'http', ...args],
        { cwd: here, env: { ...process.env, ...home.env }, timeout: 60000, maxBuffer: 16 * 1024 * 1024 },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${out}\n${err}`)) : resolve(JSON.parse(out))));
    });
    const called = await inspect(['--method', 'tools/call', '--tool-name', 'python',
      '--tool-arg', 'operation=execute', `code=${BIG}`, 'max_output=2000']);
    const link = called.content.find((c) => c.type === 'resource_link');
    assert.ok(link, JSON.stringify(called.content.map((c) => c.type)));
    const read = await inspect(['--method', 'resources/read', '--uri', link.uri]);
    assert.equal(read.contents[0].text, BIG_TEXT);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    home.remove();
  }
});
