// Execute latency through the TypeScript SDK v2 client (@modelcontextprotocol/client, pinned in
// tests/interop/package.json): stdio vs Streamable HTTP, 2026-07-28 era vs legacy (2025-11-25),
// median and p95 of N `x = 1 + 1` executes in a persistent session after a warm-up. Not a test:
// run by hand, nothing is asserted (the machine may be loaded); figures go to docs/protocol.md.
//   PYMCP_BIN=build/python-mcp node tests/bench/sdk_v2_latency.mjs [N=200] [--json]
// The four configurations are measured in rounds, interleaved, so load that comes and goes on a
// shared machine falls on all of them alike.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { nodeModules, packageJson, percentile, median } from './lib.mjs';
// The interop helpers resolve their own packages from tests/interop/node_modules.
import { makeHome, serverBinary } from '../interop/lib/server.mjs';
import { TOKEN, startHttpServer } from '../interop/lib/http_server.mjs';

const N = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 200);
const ROUNDS = 4;
const WARMUP = 20;

// `<pkg>/<subpath>` through the package's "exports" ("import" condition), from tests/interop.
function exported(pkg, subpath) {
  const entry = packageJson(pkg).exports[subpath === '' ? '.' : `./${subpath}`];
  return pathToFileURL(join(nodeModules, pkg, entry.import?.default ?? entry.import ?? entry.default)).href;
}
const PKG = '@modelcontextprotocol/client';
const { Client, StreamableHTTPClientTransport } = await import(exported(PKG, ''));
const { StdioClientTransport } = await import(exported(PKG, 'stdio'));

const ERAS = {
  modern: { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  legacy: {},
};

async function open(transportName, era, server) {
  let transport;
  let home;
  if (transportName === 'stdio') {
    home = makeHome();
    transport = new StdioClientTransport({ command: serverBinary(), env: home.env, cwd: home.work, stderr: 'ignore' });
  } else {
    transport = new StreamableHTTPClientTransport(server.url, {
      requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
    });
  }
  const client = new Client({ name: 'pymcp-bench-v2', version: '1' }, ERAS[era]);
  await client.connect(transport);
  if (client.getProtocolEra() !== era) throw new Error(`asked for ${era}, got ${client.getProtocolEra()}`);
  return {
    client,
    async close() {
      if (transport.sessionId) await transport.terminateSession();
      await client.close();
      home?.remove();
    },
  };
}

const call = (client, code) => client.callTool({
  name: 'python', arguments: { input: { operation: 'execute', code, session_id: 'bench', persistent: true } },
});

async function sample(client, n) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const r = await call(client, 'x = 1 + 1');
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.isError) throw new Error(JSON.stringify(r));
  }
  return ms;
}

const server = await startHttpServer();
const configs = [];
for (const t of ['stdio', 'http']) for (const era of ['modern', 'legacy']) configs.push({ t, era, ms: [], rounds: [] });
try {
  for (const c of configs) {
    c.conn = await open(c.t, c.era, server);
    for (let i = 0; i < WARMUP; i++) await call(c.conn.client, '1');
  }
  const per = Math.ceil(N / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of configs) {
      const ms = await sample(c.conn.client, Math.min(per, N - c.ms.length));
      c.ms.push(...ms);
      c.rounds.push(median(ms));
    }
  }
} finally {
  for (const c of configs) await c.conn?.close();
  await server.stop();
}

const f = (x) => x.toFixed(3);
const rows = configs.map((c) => {
  const s = [...c.ms].sort((a, b) => a - b);
  return { transport: c.t, era: c.era, n: s.length, median: median(s), p95: percentile(s, 95),
           roundMedians: c.rounds.map((x) => Number(f(x))) };
});
if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 1));
else {
  console.log(`execute latency through @modelcontextprotocol/client ${packageJson(PKG).version}, ms`);
  for (const r of rows)
    console.log(`${r.transport.padEnd(5)} ${r.era.padEnd(6)} n=${r.n} median ${f(r.median)} p95 ${f(r.p95)}` +
                `  (round medians ${r.roundMedians.join(', ')})`);
  const m = (t, e) => rows.find((r) => r.transport === t && r.era === e).median;
  for (const e of ['modern', 'legacy'])
    console.log(`${e}: HTTP / stdio = ${(m('http', e) / m('stdio', e)).toFixed(2)}`);
}
