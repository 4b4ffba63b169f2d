// Shared by the HTTP interop suite and the HTTP-vs-stdio timing script: python-mcp --http on a
// free port with a known bearer token.
import { spawn } from 'node:child_process';

import { serverBinary, makeHome } from './server.mjs';

export const TOKEN = 'interop-http-token-0123456789';

// Starts python-mcp --http on a free port; resolves with its URL once it listens.
export async function startHttpServer(extraArgs = [], home = makeHome()) {
  const child = spawn(serverBinary(), ['--http', '127.0.0.1:0', ...extraArgs], {
    env: { ...home.env, PYTHON_MCP_HTTP_TOKEN: TOKEN },
    cwd: home.work,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (c) => { stdout += c.toString(); });
  const url = await new Promise((resolve, reject) => {
    child.stderr.on('data', (c) => {
      stderr += c.toString();
      const m = stderr.match(/serving MCP over HTTP at (http:\/\/\S+)/);
      if (m) resolve(new URL(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`python-mcp exited (${code}): ${stderr}`)));
  });
  return {
    url, child, home,
    stderr: () => stderr,
    stdout: () => stdout,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const ended = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await ended;
      }
      home.remove();
      return { exitCode: child.exitCode, signal: child.signalCode };
    },
  };
}

