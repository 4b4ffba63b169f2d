// Issue 14 through the official TypeScript SDK client (which validates every content item's
// type, and structuredContent against the published outputSchema) and the MCP Inspector CLI:
// a matplotlib figure comes back as `image` content whose base64 decodes to a valid PNG.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { makeHome, python, serverBinary, textOf, sharedServer } from './lib/server.mjs';
import { decodePng, pngSize } from './lib/png.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PLOT = [
  'import pandas as pd',
  'import matplotlib.pyplot as plt',
  "df = pd.DataFrame({'x': range(10), 'y': [v * v for v in range(10)]})",
  "df.plot(x='x', y='y')",
  'plt.show()',
  "print('plotted')",
].join('\n');

function imagesOf(result) {
  return (result.content ?? []).filter((c) => c.type === 'image');
}

describe('figures as image content through the TypeScript SDK client', () => {
  const s = sharedServer();

  test('a pandas plot shown with plt.show() is a PNG image after the text', async () => {
    const r = await python(s.client, { operation: 'execute', code: PLOT });
    assert.notEqual(r.isError, true, textOf(r));
    assert.equal(r.content[0].type, 'text');
    assert.match(r.content[0].text, /plotted/);
    const imgs = imagesOf(r);
    assert.equal(imgs.length, 1);
    assert.equal(imgs[0].mimeType, 'image/png');
    const png = Buffer.from(imgs[0].data, 'base64');
    assert.deepEqual(decodePng(png), [640, 480]);
    assert.deepEqual(r.structuredContent.display, [{ bytes: png.length, mimeType: 'image/png', type: 'image' }]);
  });

  test('display() of a DataFrame is text; the budget drops the ninth figure with a note', async () => {
    const table = await python(s.client, {
      operation: 'execute', code: "import pandas as pd\ndisplay(pd.DataFrame({'a': [1, 2]}))",
    });
    assert.equal(table.content.length, 2);
    assert.match(table.content[1].text, /\| +a \|/);
    const many = await python(s.client, {
      operation: 'execute',
      code: 'import matplotlib.pyplot as plt\nfor i in range(9):\n    plt.figure(figsize=(1, 1)); plt.plot([i])',
    });
    assert.equal(imagesOf(many).length, 8);
    for (const img of imagesOf(many)) assert.deepEqual(pngSize(Buffer.from(img.data, 'base64')), [100, 100]);
    assert.equal(many.structuredContent.images_dropped, 1);
    assert.match(textOf(many), /1 image\(s\) .* were left out/);
  });
});

test('the MCP Inspector CLI gets the figure as image content', async () => {
  const home = makeHome();
  try {
    const stdout = await new Promise((resolve, reject) => {
      execFile(join(here, 'node_modules', '.bin', 'mcp-inspector'),
        ['--cli', serverBinary(), '--method', 'tools/call', '--tool-name', 'python',
          '--tool-arg', 'operation=execute', `code=${PLOT}`],
        { cwd: here, env: { ...process.env, ...home.env }, timeout: 60000, maxBuffer: 16 * 1024 * 1024 },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${out}\n${err}`)) : resolve(out)));
    });
    const result = JSON.parse(stdout);
    const imgs = imagesOf(result);
    assert.equal(imgs.length, 1, stdout.slice(0, 500));
    assert.deepEqual(decodePng(Buffer.from(imgs[0].data, 'base64')), [640, 480]);
  } finally {
    home.remove();
  }
});
