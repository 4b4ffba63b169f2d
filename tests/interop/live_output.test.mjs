// Live output through the official TypeScript SDK client: a 90 s job that prints a line every
// 10 s, called with a 60 s request timeout that each progress notification resets
// (resetTimeoutOnProgress). It completes only because the prints arrive as progress; each line
// must reach the client within 1 s of its print (the code prints its own wall-clock time). The
// only long test in this file.
//
// The SDK dispatches a notification in a microtask but a response at once, so a progress
// notification that arrives in the same read as the response (the server flushes what waits just
// before the result, as it must) is reported through onerror as "unknown token" after the
// response removed the handler. Those, for this call's token, are the SDK's race and are
// filtered; any other transport error fails the suite.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { sharedServer } from './lib/server.mjs';

describe('live output through the TypeScript SDK client', () => {
  const s = sharedServer({ ignoreErrors: /progress notification for an unknown token: .*"progressToken":\d+\}/ });

  test('a 90 s job printing every 10 s completes under a 60 s timeout reset by progress', { timeout: 180_000 }, async () => {
    const code = [
      'import time',
      'for i in range(9):',
      '    time.sleep(10)',
      '    print(f"tick {i} at {time.time():.3f}", flush=True)',
      // The last line goes out as a live notification too, not only in the final flush: the SDK
      // client reads a flush that arrives together with the response after the response, and
      // then drops it as progress for a finished request (the text is in the result either way).
      'time.sleep(1)',
      "'finished'",
    ].join('\n');
    const seen = [];  // [line, printed at (ms), received at (ms)]
    let lastProgress = -Infinity;
    const result = await s.client.callTool(
      // wait: 150 keeps the call open for the whole run (the default wait budget, 50 s, would
      // answer with a job handle instead: tests/interop/jobs.test.mjs follows that path).
      { name: 'python', arguments: { operation: 'execute', code, timeout: 150, wait: 150 } },
      undefined,
      {
        timeout: 60_000,
        resetTimeoutOnProgress: true,
        onprogress: (p) => {
          const received = Date.now();
          assert.ok(p.progress > lastProgress, `progress ${p.progress} after ${lastProgress}`);
          lastProgress = p.progress;
          for (const m of (p.message ?? '').matchAll(/tick (\d+) at ([\d.]+)/g))
            seen.push([Number(m[1]), Number(m[2]) * 1000, received]);
        },
      },
    );
    assert.notEqual(result.isError, true, JSON.stringify(result));
    assert.equal(result.structuredContent.result, "'finished'");
    assert.deepEqual(seen.map((x) => x[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    for (const [line, printed, received] of seen)
      assert.ok(received - printed < 1000, `tick ${line} arrived ${received - printed} ms after its print`);
  });
});
