// Issue 5 through the TypeScript SDK client: python-mcp started with --config naming the real
// reference servers (filesystem, memory, everything; pinned in package.json) and one whose command
// does not exist. Python code calls them as functions and through mcp.call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { connect, python, payload } from './lib/server.mjs';

const bin = (name) => resolve('node_modules/.bin', name);
let s;
let fsDir;

function childPids(pid) {
  // Every process whose parent chain reaches `pid`.
  const parents = new Map();
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      parents.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const out = [];
  const walk = (q) => { for (const [c, pp] of parents) if (pp === q) { out.push(c); walk(c); } };
  walk(pid);
  return out;
}

let config;
before(async () => {
  const root = join(process.env.TMPDIR ?? '/tmp', `pymcp-ds-${process.pid}`);
  fsDir = join(root, 'files');
  mkdirSync(fsDir, { recursive: true });
  config = join(root, 'config.json');
  writeFileSync(config, JSON.stringify({
    mcpServers: {
      filesystem: { command: bin('mcp-server-filesystem'), args: [fsDir] },
      memory: { command: bin('mcp-server-memory'), env: { MEMORY_FILE_PATH: join(root, 'memory.jsonl') } },
      everything: { command: bin('mcp-server-everything'), args: ['stdio'] },
      missing: { command: 'no-such-command-for-python-mcp' },
    },
  }));
  s = await connect({ args: ['--config', config] });
});

after(async () => {
  const pid = s.transport._process.pid;
  const ended = await s.close();
  assert.equal(ended.exitCode, 0);
  assert.deepEqual(childPids(pid), [], 'downstream children survived the shutdown');
});

async function run(code, extra = {}) {
  const r = await python(s.client, { operation: 'execute', code, session_id: 'd', persistent: true, timeout: 60, ...extra });
  const p = payload(r);
  assert.equal(r.isError, false, JSON.stringify(p));
  return p.result;
}

test('files written and read through the filesystem server, as functions and via mcp.call', async () => {
  const path = join(fsDir, 'notes.txt');
  const result = await run(`
mcp.filesystem.write_file(path=${JSON.stringify(path)}, content='line one\\nline two')
text = mcp.filesystem.read_text_file(path=${JSON.stringify(path)})
raw = mcp.call('filesystem.read_text_file', {'path': ${JSON.stringify(path)}})
(text['content'] if isinstance(text, dict) else text, 'read_text_file' in dir(mcp.filesystem), raw['isError'])`);
  assert.equal(result, "('line one\\nline two', True, False)");
  assert.equal(readFileSync(path, 'utf8'), 'line one\nline two');
});

test('a knowledge graph built in the memory server from data computed in Python', async () => {
  const result = await run(`
people = [{'name': f'person{i}', 'entityType': 'person', 'observations': [f'square is {i*i}']} for i in range(5)]
mcp.memory.create_entities(entities=people)
mcp.memory.create_relations(relations=[{'from': f'person{i}', 'to': f'person{i+1}', 'relationType': 'knows'} for i in range(4)])
graph = mcp.memory.read_graph()
(len(graph['entities']), len(graph['relations']), sorted(e['name'] for e in graph['entities'])[-1])`);
  assert.equal(result, "(5, 4, 'person4')");
});

test("everything's echo and a structured-output tool; bad arguments are a TypeError", async () => {
  const result = await run(`
echo = mcp.everything.echo(message='hello')
structured = [t for t in mcp.list_tools(server='everything') if t.get('output_schema')]
name = structured[0]['tool']
try:
    mcp.everything.echo(wrong='x')
    bad = False
except TypeError as e:
    bad = 'wrong' in str(e)
(echo, bool(structured), bad, 'everything.echo' in [t['name'] for t in mcp.search_tools('echo')])`);
  assert.equal(result, "('Echo: hello', True, True, True)");
  const help = await run(`
import pydoc
'message' in pydoc.render_doc(mcp.everything.echo)`);
  assert.equal(help, 'True');
});

test('ten calls at once from two sessions', async () => {
  const code = (tag) => `
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(5) as ex:
    out = list(ex.map(lambda i: mcp.everything.echo(message='${tag}%d' % i), range(5)))
out`;
  const [a, b] = await Promise.all([
    python(s.client, { operation: 'execute', code: code('a'), session_id: 'a' }),
    python(s.client, { operation: 'execute', code: code('b'), session_id: 'b' }),
  ]);
  assert.equal(payload(a).result, "['Echo: a0', 'Echo: a1', 'Echo: a2', 'Echo: a3', 'Echo: a4']");
  assert.equal(payload(b).result, "['Echo: b0', 'Echo: b1', 'Echo: b2', 'Echo: b3', 'Echo: b4']");
});

test('a downstream server killed during a call: a clear ToolError, then the next call works', async () => {
  const result = await run(`
import os, signal, threading, time
def kill_everything():
    # Only our own child: other suites may run their own everything server at the same time.
    time.sleep(0.5)
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            stat = open(f'/proc/{pid}/stat').read()
            cmd = open(f'/proc/{pid}/cmdline', 'rb').read()
        except OSError:
            continue
        if int(stat.rsplit(')', 1)[1].split()[1]) == os.getpid() and b'mcp-server-everything' in cmd:
            os.kill(int(pid), signal.SIGKILL)
threading.Thread(target=kill_everything).start()
try:
    mcp.call('everything.trigger-long-running-operation', {'duration': 5, 'steps': 5})
    first = 'no error'
except mcp.ToolError as e:
    first = 'ToolError'
    message = str(e)
time.sleep(1.5)
again = mcp.everything.echo(message='back')
(first, again, 'everything' in message)`);
  assert.equal(result, "('ToolError', 'Echo: back', True)");
});

test('progress from a downstream server keeps its call alive past the per-call time-out; silence does not', async () => {
  const t = await connect({ args: ['--config', config, '--downstream-timeout', '1'] });
  try {
    const r = await python(t.client, {
      operation: 'execute', session_id: 'p', persistent: true, timeout: 60, code: `
import time
t0 = time.monotonic()
done = mcp.call('everything.trigger-long-running-operation', {'duration': 2.4, 'steps': 8})['content'][0]['text']
took = time.monotonic() - t0
t0 = time.monotonic()
try:
    mcp.call('everything.trigger-long-running-operation', {'duration': 3, 'steps': 1})
    silent = 'answered'
except mcp.ToolError as e:
    silent = str(e)
(done, took > 2, silent, time.monotonic() - t0 < 2.5)` });
    const p = payload(r);
    assert.equal(r.isError, false, JSON.stringify(p));
    assert.match(p.result, /^\('Long running operation completed\. Duration: 2\.4 seconds, Steps: 8\.', True, "/);
    assert.match(p.result, /"call to 'everything\.trigger-long-running-operation' failed: server 'everything' did not answer within 1 s", True\)$/);
  } finally {
    await t.close();
  }
});

test('a server whose command is missing: a clear error, the built-ins still work', async () => {
  const result = await run(`
try:
    mcp.call('missing.anything', {})
    err = ''
except mcp.ToolError as e:
    err = str(e)
import json
ok = json.loads(mcp.call('sqlite', {'sql': 'SELECT 1 AS one'})['content'][0]['text'])[0]['one']
try:
    mcp.missing
    attr_err = ''
except AttributeError as e:
    attr_err = str(e)
(err, attr_err, ok)`);
  assert.match(result, /Unknown tool: 'missing\.anything': server 'missing' is not running: cannot start server 'missing': command 'no-such-command-for-python-mcp' not found/);
  assert.match(result, /has no attribute 'missing': server 'missing' is not running: cannot start server 'missing'/);
  assert.match(result, /, 1\)$/);
});
