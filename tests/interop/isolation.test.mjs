// Process isolation (issue 16) through the official TypeScript SDK client: a segfault, an abort,
// a blocking read nobody answers and a C call that never returns each cost their own session only. The call is answered with why, the
// session is reported lost by list_sessions, its next call starts it fresh, and another
// session's variables survive. Every response is validated by the SDK against the tool's
// outputSchema. Also prints execute latency in a worker next to in-process (measured, not asserted).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { python, sharedServer, textOf } from './lib/server.mjs';

function sessionsById(result) {
  return Object.fromEntries(result.structuredContent.sessions.map((s) => [s.session_id, s]));
}

// The sanitizer stage: the deliberate segfault must end its worker as in a plain build, not
// become an ASan report (handle_segv=0 leaves SIGSEGV to the kernel).
if (process.env.PYMCP_SANITIZED && process.env.ASAN_OPTIONS) process.env.ASAN_OPTIONS += ':handle_segv=0';

describe('process isolation through the TypeScript SDK client', () => {
  const s = sharedServer({ args: ['--isolation', 'process', '--kill-grace', '0.5'] });

  async function expectLostThenFresh(victim, words) {
    const listed = sessionsById(await python(s.client, { operation: 'list_sessions' }));
    assert.equal(listed[victim].isolation, 'process');
    assert.equal(listed[victim].losses, 1, JSON.stringify(listed[victim]));
    assert.ok(listed[victim].lost.includes(words), listed[victim].lost);
    const fresh = await python(s.client, { code: 'x', session_id: victim, persistent: true });
    assert.equal(fresh.isError, true);
    assert.match(textOf(fresh), /NameError/);
    const again = await python(s.client, { code: 'x = 3\nx * 2', session_id: victim, persistent: true });
    assert.equal(again.structuredContent.result, '6');
    const kept = await python(s.client, { code: 'keep', session_id: 'bystander', persistent: true });
    assert.equal(kept.structuredContent.result, "'kept'");
  }

  test('a segfault is answered with its signal and costs one session', { timeout: 120_000 }, async () => {
    await python(s.client, { code: "keep = 'kept'", session_id: 'bystander', persistent: true });
    await python(s.client, { code: 'x = 1', session_id: 'crash', persistent: true });
    const r = await python(s.client, { code: 'import ctypes\nctypes.string_at(0)', session_id: 'crash', persistent: true });
    assert.equal(r.isError, true);
    assert.match(textOf(r), /SIGSEGV/);
    assert.equal(r.structuredContent.error.type, 'SessionLost');
    await expectLostThenFresh('crash', 'SIGSEGV');
  });

  test('os.abort() is answered with SIGABRT and costs one session', { timeout: 120_000 }, async () => {
    await python(s.client, { code: 'x = 1', session_id: 'aborter', persistent: true });
    const r = await python(s.client, { code: 'import os\nos.abort()', session_id: 'aborter', persistent: true });
    assert.equal(r.isError, true);
    assert.equal(r.structuredContent.error.type, 'SessionLost');
    assert.match(textOf(r), /SIGABRT/);
    await expectLostThenFresh('aborter', 'SIGABRT');
  });

  test('a read from a pipe nobody writes is killed after the grace', { timeout: 120_000 }, async () => {
    await python(s.client, { code: 'x = 1', session_id: 'reader', persistent: true });
    const r = await python(s.client, {
      code: "import os\nr, w = os.pipe()\nprint('reading', flush=True)\nos.read(r, 1)",
      session_id: 'reader', persistent: true, timeout: 1,
    });
    assert.equal(r.isError, true);
    assert.equal(r.structuredContent.timed_out, true);
    assert.match(r.structuredContent.stdout, /reading/);
    await expectLostThenFresh('reader', 'did not stop');
  });

  test('a C sleep past its timeout is killed after the grace', { timeout: 120_000 }, async () => {
    await python(s.client, { code: 'x = 1', session_id: 'sleeper', persistent: true });
    const r = await python(s.client, {
      code: 'import ctypes\nctypes.CDLL(None).sleep(3600)', session_id: 'sleeper', persistent: true, timeout: 1,
    });
    assert.equal(r.isError, true);
    assert.equal(r.structuredContent.timed_out, true);
    assert.match(textOf(r), /killed/);
    await expectLostThenFresh('sleeper', 'did not stop');
  });

  test('restart_session, and execute latency in a worker vs in-process', { timeout: 120_000 }, async () => {
    await python(s.client, { code: 'x = 1', session_id: 'r', persistent: true });
    const restarted = await python(s.client, { operation: 'restart_session', session_id: 'r' });
    assert.equal(restarted.structuredContent.restarted, true, JSON.stringify(restarted));
    const fresh = await python(s.client, { code: "'x' in globals()", session_id: 'r', persistent: true });
    assert.equal(fresh.structuredContent.result, 'False');

    await python(s.client, { code: 'x = 1', session_id: 'lat-t', persistent: true, isolation: 'thread' });
    const median = (a) => a.sort((p, q) => p - q)[Math.floor(a.length / 2)];
    const worker = [];
    const thread = [];
    for (let i = 0; i < 220; ++i) {
      for (const [sid, into] of [['r', worker], ['lat-t', thread]]) {
        const t = performance.now();
        await python(s.client, { code: '1 + 1', session_id: sid, persistent: true });
        if (i >= 20) into.push(performance.now() - t);
      }
    }
    console.log(`SDK client execute median: worker ${median(worker).toFixed(3)} ms, in-process ${median(thread).toFixed(3)} ms`);
  });
});
