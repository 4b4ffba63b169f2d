// Jobs through the official TypeScript SDK client with its DEFAULT request timeout (60 s, no
// progress reset): a 5-minute run started with a plain execute (the default 50 s wait budget)
// answers with a job handle before the SDK gives up, and wait_job calls follow it to its result.
// Every response is validated by the SDK against the tool's outputSchema. Label `long`: it runs
// against the Release build only, in the background of the sanitizer stage (scripts/test.sh).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { sharedServer } from '../lib/server.mjs';

describe('jobs through the TypeScript SDK client', () => {
  const s = sharedServer();

  test('a 5-minute run outlives the default 60 s request timeout as a job', { timeout: 600_000 }, async () => {
    const code = [
      'import time',
      'for i in range(60):',
      '    time.sleep(5)',
      '    print(f"step {i}", flush=True)',
      "'finished'",
    ].join('\n');
    const started = Date.now();
    // No options: the SDK's default timeout (60 s) applies.
    const handle = await s.client.callTool({ name: 'python', arguments: { operation: 'execute', code, timeout: 500 } });
    assert.notEqual(handle.isError, true, JSON.stringify(handle));
    const job = handle.structuredContent;
    assert.equal(job.state, 'running');
    assert.match(job.job_id, /^job-\d+$/);
    assert.ok(Date.now() - started < 60_000, 'the handle came before the SDK timeout');
    let result;
    let offset = 0;
    const seen = [];
    for (let i = 0; i < 40 && !result; ++i) {
      const r = await s.client.callTool({
        name: 'python',
        arguments: { operation: 'wait_job', job_id: job.job_id, wait: 20, since_offset: offset },
      });
      assert.notEqual(r.structuredContent.state === 'running' && r.isError, true, JSON.stringify(r));
      if (r.structuredContent.state === 'running') {
        seen.push(r.structuredContent.output);
        offset = r.structuredContent.next_offset;
      } else {
        result = r;
      }
    }
    assert.ok(result, 'the job ended');
    assert.equal(result.structuredContent.state, 'succeeded');
    assert.equal(result.structuredContent.result, "'finished'");
    assert.match(result.structuredContent.stdout, /step 59/);
    assert.ok(Date.now() - started >= 300_000);
    assert.ok(seen.join('').includes('step'), 'wait_job showed output while it ran');
  });
});
