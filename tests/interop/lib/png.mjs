// PNG checks for the interop suites: what an image content item's base64 data must be.
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';

// Width and height from a PNG's IHDR chunk, after checking the PNG signature.
export function pngSize(bytes) {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(bytes.toString('latin1', 12, 16), 'IHDR');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

// Checks the chunk layout and the image data: the IDAT chunks inflate to one filter byte plus
// width * channels bytes per row (8-bit grey, RGB, palette, grey+alpha or RGBA, not interlaced),
// and the file ends with IEND. Returns [width, height].
export function decodePng(bytes) {
  const [width, height] = pngSize(bytes);
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[bytes[25]];
  assert.equal(bytes[24], 8, 'bit depth');
  assert.ok(channels, `colour type ${bytes[25]}`);
  assert.equal(bytes[28], 0, 'not interlaced');
  const idat = [];
  let at = 8;
  let last = '';
  while (at < bytes.length) {
    const length = bytes.readUInt32BE(at);
    last = bytes.toString('latin1', at + 4, at + 8);
    if (last === 'IDAT') idat.push(bytes.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  assert.equal(last, 'IEND');
  assert.equal(inflateSync(Buffer.concat(idat)).length, height * (1 + width * channels));
  return [width, height];
}
