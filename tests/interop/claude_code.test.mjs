// python-mcp registered in real Claude Code (@anthropic-ai/claude-code, pinned in package.json):
// `claude mcp add` then `claude mcp list`, which starts every configured server, connects and
// prints "✔ Connected" or "✘ Failed to connect" (its exit code is 0 either way, so the text is
// what counts). Claude Code 2.1.332 is a dual-era client: it probes with `server/discover` in the
// 2026-07-28 era and stays there when the answer is a valid DiscoverResult, falling back to
// `initialize` otherwise. The server is started through a small wrapper that copies both
// directions of the stdio stream to files, so the test can prove the modern path was taken:
// discover answered with 2026-07-28 among supportedVersions, then a modern tools/list answered
// with resultType "complete", and no legacy `initialize` at all.
//
// Runs with a throw-away HOME and no API key: `mcp add`/`mcp list` need neither a login nor the
// network (the non-essential traffic switches below keep it from trying).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { makeHome, serverBinary } from './lib/server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const claude = join(here, 'node_modules', '.bin', 'claude');
const MODERN = '2026-07-28';
const META_VERSION = 'io.modelcontextprotocol/protocolVersion';

function run(args, home) {
  return new Promise((resolve, reject) => {
    execFile(claude, args, {
      cwd: home.work,
      env: {
        ...home.env,
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_TELEMETRY: '1',
      },
      timeout: 120000,
      maxBuffer: 4 * 1024 * 1024,
    }, (error, stdout, stderr) => {
      if (error) reject(new Error(`claude ${args.join(' ')} failed: ${error.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

// sh single quotes: the temporary paths are ours, but quote them properly anyway.
const q = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;

// A wrapper that logs what the server received (in.jsonl) and what it answered (out.jsonl).
function writeWrapper(home) {
  const wrapper = join(home.root, 'pymcp-wrapper.sh');
  const inLog = join(home.root, 'in.jsonl');
  const outLog = join(home.root, 'out.jsonl');
  writeFileSync(wrapper, `#!/bin/sh\ntee -a ${q(inLog)} | ${q(serverBinary())} | tee -a ${q(outLog)}\n`);
  chmodSync(wrapper, 0o755);
  return { wrapper, inLog, outLog };
}

const readJsonLines = (file) => (existsSync(file) ? readFileSync(file, 'utf8') : '')
  .split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));

test('claude mcp list connects to python-mcp through the 2026-07-28 era', async () => {
  const home = makeHome();
  try {
    const { wrapper, inLog, outLog } = writeWrapper(home);
    await run(['mcp', 'add', 'pymcp', '--', wrapper], home);
    const { stdout } = await run(['mcp', 'list'], home);
    const line = stdout.split('\n').find((l) => l.startsWith('pymcp:')) ?? '';
    assert.match(line, /Connected/, `claude mcp list printed:\n${stdout}`);

    const received = readJsonLines(inLog);
    const answered = readJsonLines(outLog);
    const answerTo = (id) => answered.find((m) => m.id === id && 'result' in m);
    const context = `received:\n${JSON.stringify(received, null, 1)}\nanswered:\n${JSON.stringify(answered, null, 1)}`;

    assert.ok(!received.some((m) => m.method === 'initialize'), `a legacy initialize was sent\n${context}`);
    const discover = received.find((m) => m.method === 'server/discover');
    assert.ok(discover, `no server/discover\n${context}`);
    assert.ok(answerTo(discover.id)?.result.supportedVersions.includes(MODERN), `discover not answered\n${context}`);

    const modern = received.filter((m) => m.method !== 'server/discover' && m.params?._meta?.[META_VERSION] === MODERN);
    const listed = modern.find((m) => m.method === 'tools/list');
    assert.ok(listed, `no modern tools/list\n${context}`);
    const tools = answerTo(listed.id)?.result;
    assert.equal(tools?.resultType, 'complete', context);
    assert.ok(tools.tools.some((t) => t.name === 'python'), context);
  } finally {
    home.remove();
  }
});
