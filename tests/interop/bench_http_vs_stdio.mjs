// Measures a python execute's round trip through the TypeScript SDK client over stdio and over
// --http (median and p90 of N calls after a warm-up), side by side. Not a test: run by hand,
//   PYMCP_BIN=build/python-mcp node tests/interop/bench_http_vs_stdio.mjs [N]
// Figures are reported in docs/protocol.md; nothing is asserted (the machine may be loaded).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { connect, python } from './lib/server.mjs';
import { TOKEN, startHttpServer } from './lib/http_server.mjs';

const N = Number(process.argv[2] ?? 300);

async function measure(client) {
  for (let i = 0; i < 20; i++) await python(client, { operation: 'execute', code: '1' });
  const ms = [];
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    await python(client, { operation: 'execute', code: 'x = 1 + 1' });
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(N / 2)], p90: ms[Math.floor(N * 0.9)] };
}

const stdio = await connect();
const s = await measure(stdio.client);
await stdio.close();

const server = await startHttpServer();
const transport = new StreamableHTTPClientTransport(server.url, {
  requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
});
const client = new Client({ name: 'bench', version: '1' });
await client.connect(transport);
const h = await measure(client);
await transport.terminateSession();
await client.close();
await server.stop();

const f = (x) => x.toFixed(3);
console.log(`execute round trip, ${N} calls: stdio median ${f(s.median)} ms (p90 ${f(s.p90)}), ` +
            `http median ${f(h.median)} ms (p90 ${f(h.p90)}), ratio ${(h.median / s.median).toFixed(2)}`);
