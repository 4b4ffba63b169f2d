// Issue 11 through the official TypeScript SDK client: mcp.call with numpy/pandas values (they
// become JSON as pandas' to_json writes them) and a chained exception's whole traceback. The
// SDK validates the structured results against the published outputSchema as well.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { python, textOf, sharedServer } from './lib/server.mjs';

describe('python values and tracebacks through the TypeScript SDK client', () => {
  const s = sharedServer();

  test('mcp.call takes numpy and pandas values; a chained exception shows its cause', async () => {
    const code = [
      'import json, numpy as np, pandas as pd',
      "values = [np.int64(7), np.float64('nan'), pd.Timestamp('2024-05-06 07:08:09'), pd.NaT, np.bool_(False)]",
      "r = mcp.call('sqlite', {'sql': 'SELECT ?, ?, ?, ?, ?', 'params': values})",
      "print(json.dumps(r['structuredContent']['rows'][0]))",
      "print(json.dumps(mcp.call('sqlite', {'sql': 'SELECT ?, ?', 'params': np.array([1.5, np.inf])})['structuredContent']['rows'][0]))",
    ].join('\n');
    const ok = await python(s.client, { operation: 'execute', code });
    assert.notEqual(ok.isError, true, textOf(ok));
    const [row, arr] = ok.structuredContent.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(row, [7, null, '2024-05-06T07:08:09', null, 0]);
    assert.deepEqual(arr, [1.5, null]);

    const failed = await python(s.client, {
      operation: 'execute',
      code: "try:\n    int('x')\nexcept ValueError as e:\n    raise RuntimeError('could not parse') from e",
    });
    assert.equal(failed.isError, true);
    const trace = failed.structuredContent.error.traceback;
    assert.match(trace, /ValueError: invalid literal for int\(\) with base 10: 'x'/);
    assert.match(trace, /The above exception was the direct cause of the following exception/);
    assert.match(trace, /RuntimeError: could not parse\n$/);
    assert.match(textOf(failed), /direct cause/);
  });
});
