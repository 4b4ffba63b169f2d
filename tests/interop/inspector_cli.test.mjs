// python-mcp driven by the MCP Inspector CLI (@modelcontextprotocol/inspector --cli, pinned in
// package.json): the tool people use to poke at a server by hand. It starts the server over
// stdio, runs one method and prints the result as JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { makeHome, serverBinary } from './lib/server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const inspector = join(here, 'node_modules', '.bin', 'mcp-inspector');

// Runs `mcp-inspector --cli <python-mcp> ...args` with a throw-away HOME and XDG_DATA_HOME (the
// Inspector hands its environment to the server). Resolves to the parsed JSON it printed.
function inspect(args, home) {
  return new Promise((resolve, reject) => {
    execFile(inspector, ['--cli', serverBinary(), ...args], {
      cwd: here,
      env: { ...process.env, ...home.env },
      timeout: 60000,
      maxBuffer: 16 * 1024 * 1024,
    }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`mcp-inspector ${args.join(' ')} failed: ${error.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout));
      } catch (e) {
        reject(new Error(`mcp-inspector printed something that is not JSON: ${e.message}\n${stdout}\nstderr: ${stderr}`));
      }
    });
  });
}

async function withHome(fn) {
  const home = makeHome();
  try { return await fn(home); } finally { home.remove(); }
}

test('inspector CLI lists the tools', () => withHome(async (home) => {
  const result = await inspect(['--method', 'tools/list'], home);
  const names = result.tools.map((t) => t.name);
  assert.ok(names.includes('python'), `tools: ${names.join(', ')}`);
  assert.ok(names.includes('sqlite'), `tools: ${names.join(', ')} (expected sqlite)`);
  for (const tool of result.tools) assert.equal(tool.inputSchema.type, 'object', tool.name);
}));

test('inspector CLI calls python with a wrapped input object', () => withHome(async (home) => {
  // --tool-arg values are strings; the Inspector parses one as JSON when the tool's inputSchema
  // declares that property an object, which is how the original `input` wrapper is passed.
  const input = JSON.stringify({ operation: 'execute', code: 'print(1+1)' });
  const result = await inspect(['--method', 'tools/call', '--tool-name', 'python', '--tool-arg', `input=${input}`], home);
  assert.notEqual(result.isError, true, JSON.stringify(result));
  assert.equal(result.structuredContent.stdout, '2\n');
}));

test('inspector CLI calls python with flat key=value arguments', () => withHome(async (home) => {
  const result = await inspect(['--method', 'tools/call', '--tool-name', 'python',
    '--tool-arg', 'operation=execute', 'code=x = 6\nx * 7'], home);
  assert.notEqual(result.isError, true, JSON.stringify(result));
  assert.equal(result.structuredContent.result, '42');
}));

test('inspector CLI saves a script where the server says', () => withHome(async (home) => {
  const result = await inspect(['--method', 'tools/call', '--tool-name', 'python',
    '--tool-arg', 'operation=save_script', 'filename=from_inspector', 'code=print("hi")'], home);
  assert.notEqual(result.isError, true, JSON.stringify(result));
  const path = join(home.scriptsDir, 'from_inspector.py');
  assert.ok(existsSync(path), `${path} missing`);
  assert.equal(readFileSync(path, 'utf8'), 'print("hi")');
}));

test('inspector CLI shows a Python exception as a tool error', () => withHome(async (home) => {
  const result = await inspect(['--method', 'tools/call', '--tool-name', 'python',
    '--tool-arg', 'operation=execute', 'code=raise KeyError("nope")'], home);
  assert.equal(result.isError, true);
  assert.match(JSON.stringify(result.content), /KeyError/);
}));
