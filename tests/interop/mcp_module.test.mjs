// Issue 4 through the TypeScript SDK client: Python code calling tools in-process with mcp.call,
// the seed's sqlite examples as written, large results, errors, nested sessions and cancellation
// of an execution blocked in a tool call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { connect, python, payload, waitUntil } from './lib/server.mjs';

let s;
before(async () => { s = await connect(); });
after(async () => {
  const ended = await s.close();
  assert.deepEqual(s.errors, []);
  assert.equal(ended.exitCode, 0);
});

async function run(code, extra = {}) {
  const r = await python(s.client, { operation: 'execute', code, session_id: 'm', persistent: true, ...extra });
  return { r, p: payload(r) };
}

test('the seed sqlite example: create, insert with params, read [0][\'count\']', async () => {
  const { r, p } = await run(`
import json
mcp.call('sqlite', {'input': {'sql': 'CREATE TABLE IF NOT EXISTS urls (url TEXT, timestamp TEXT)', 'database': 'research.db', 'tool_unlock_token': '29e63eb5'}})
for url in ['https://a.example', 'https://b.example', 'https://c.example']:
    mcp.call('sqlite', {'input': {'sql': 'INSERT INTO urls VALUES (?, ?)', 'params': [url, '2026-01-01'], 'database': 'research.db', 'tool_unlock_token': '29e63eb5'}})
result = mcp.call('sqlite', {'input': {'sql': 'SELECT COUNT(*) as count FROM urls', 'database': 'research.db', 'tool_unlock_token': '29e63eb5'}})
count = json.loads(result['content'][0]['text'])[0]['count']
count`);
  assert.equal(r.isError, false, JSON.stringify(p));
  assert.equal(p.result, '3');
  assert.equal(p.mcp_calls.length, 5);
  assert.ok(existsSync(join(s.home.data, 'python-mcp', 'databases', 'research.db')));
});

test('the seed pandas ETL: rows from sqlite into a DataFrame, aggregated, summary written back', async () => {
  const { r, p } = await run(`
import json, pandas as pd
db = 'sales.db'
mcp.call('sqlite', {'input': {'sql': ['DROP TABLE IF EXISTS transactions',
    'CREATE TABLE transactions (transaction_id INT, product TEXT, region TEXT, quantity INT, price REAL, date TEXT)'], 'database': db}})
rows = [[i, 'p%d' % (i % 3), 'r%d' % (i % 2), 1 + i % 4, 2.5, '2026-01-01'] for i in range(60)]
for row in rows:
    mcp.call('sqlite', {'input': {'sql': 'INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?)', 'params': row, 'database': db}})
result = mcp.call('sqlite', {'input': {'sql': 'SELECT * FROM transactions WHERE date > ?', 'params': ['2025-01-01'], 'database': db}})
df = pd.DataFrame(json.loads(result['content'][0]['text']))
df['revenue'] = df['quantity'] * df['price']
summary = df.groupby(['product', 'region']).agg({'revenue': 'sum', 'quantity': 'sum', 'transaction_id': 'count'}).reset_index()
summary.columns = ['product', 'region', 'total_revenue', 'total_quantity', 'transaction_count']
mcp.call('sqlite', {'input': {'sql': ['DROP TABLE IF EXISTS sales_summary',
    'CREATE TABLE sales_summary (product TEXT, region TEXT, total_revenue REAL, total_quantity INT, transaction_count INT)'], 'database': db}})
for _, row in summary.iterrows():
    mcp.call('sqlite', {'input': {'sql': 'INSERT INTO sales_summary VALUES (?, ?, ?, ?, ?)',
        'params': [row['product'], row['region'], float(row['total_revenue']), int(row['total_quantity']), int(row['transaction_count'])], 'database': db}})
back = json.loads(mcp.call('sqlite', {'input': {'sql': 'SELECT SUM(transaction_count) AS n, COUNT(*) AS groups FROM sales_summary', 'database': db}})['content'][0]['text'])[0]
(back['n'], back['groups'], round(df['revenue'].sum(), 2))`);
  assert.equal(r.isError, false, JSON.stringify(p));
  const expectedRevenue = Array.from({ length: 60 }, (_, i) => (1 + (i % 4)) * 2.5).reduce((a, b) => a + b, 0);
  assert.equal(p.result, `(60, 6, ${expectedRevenue.toFixed(1)})`);
});

test('100,000 rows inserted and read back through mcp.call', async () => {
  const { r, p } = await run(`
import json
mcp.call('sqlite', {'sql': ['DROP TABLE IF EXISTS big', 'CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT)',
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) INSERT INTO big SELECT x, printf("v%d", x) FROM c'],
    'database': 'big.db'})
res = mcp.call('sqlite', {'sql': 'SELECT id, v FROM big ORDER BY id', 'database': 'big.db'})
rows = res['structuredContent']['rows']
text_rows = json.loads(res['content'][0]['text'])
(len(rows), rows[-1], len(text_rows), text_rows[99999]['v'], res['structuredContent']['truncated'])`, { timeout: 60 });
  assert.equal(r.isError, false, JSON.stringify(p));
  assert.equal(p.result, "(100000, [100000, 'v100000'], 100000, 'v100000', False)");
});

test('mcp.ToolError on a bad SQL statement and on an unknown tool', async () => {
  const { r, p } = await run(`
out = []
try:
    mcp.call('sqlite', {'sql': 'SELEC nonsense', 'database': ':memory:'})
except mcp.ToolError as e:
    out.append(('sql', 'syntax error' in str(e), e.result['isError']))
try:
    mcp.call('no_such_tool', {})
except mcp.ToolError as e:
    out.append(('unknown', 'no_such_tool' in str(e)))
out`);
  assert.equal(r.isError, false, JSON.stringify(p));
  assert.equal(p.result, "[('sql', True, True), ('unknown', True)]");
});

test('a nested mcp.call into another session works; into the calling session is refused', async () => {
  const { r, p } = await run(`
mcp.call('python', {'code': 'secret = 41', 'session_id': 'other', 'persistent': True})
got = mcp.call('python', {'code': 'secret + 1', 'session_id': 'other', 'persistent': True})['structuredContent']['result']
try:
    mcp.call('python', {'code': '1', 'session_id': 'm', 'persistent': True})
    refused = False
except mcp.ToolError as e:
    refused = 'wait for itself' in str(e)
(got, refused)`);
  assert.equal(r.isError, false, JSON.stringify(p));
  assert.equal(p.result, "('42', True)");
});

test('cancelling an execution blocked in a long mcp.call returns promptly; the session survives', async () => {
  const marker = join(s.home.work, 'nested-started');
  const ac = new AbortController();
  const started = Date.now();
  const pending = python(s.client, {
    operation: 'execute', session_id: 'm', persistent: true,
    code: `mcp.call('python', {'code': 'import pathlib, time\\npathlib.Path(${JSON.stringify(marker)}).touch()\\ntime.sleep(60)', 'session_id': 'sleeper', 'persistent': True})`,
  }, { signal: ac.signal, timeout: 90000 });
  await waitUntil(() => existsSync(marker), { what: 'the nested execution to start' });
  const cancelledAt = Date.now();
  ac.abort();
  await assert.rejects(pending);
  const { r, p } = await run("'still here'");
  assert.equal(p.result, "'still here'");
  const after = await python(s.client, { operation: 'execute', code: "'sleeper free'", session_id: 'sleeper', persistent: true });
  assert.equal(payload(after).result, "'sleeper free'");
  assert.ok(Date.now() - cancelledAt < 3000, `took ${Date.now() - cancelledAt} ms after the cancel`);
  assert.ok(Date.now() - started < 30000);
  assert.equal(r.isError, false);
});
