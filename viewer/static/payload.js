// Reads what the server sends of an analysis (viewer/payload.py): a gzip stream of "DVX1", the header's
// length, the header (JSON), padding to 8 bytes, then the arrays. Returns {meta, arrays}, each array a
// typed view of one buffer, shaped by its header entry.

const TYPES = {uint8: Uint8Array, uint16: Uint16Array, int16: Int16Array, int32: Int32Array, float32: Float32Array};

export async function fetchPayload(url, signal) {
  const response = await fetch(url, {signal, credentials: 'same-origin'});
  if (!response.ok) {
    let detail = `${response.status}`;
    try { detail = (await response.json()).detail || detail; } catch (error) { /* not JSON: keep the status */ }
    throw new Error(detail);
  }
  const compressed = await response.arrayBuffer();
  return {...decode(await gunzip(compressed)), bytes: compressed.byteLength};
}

async function gunzip(buffer) {
  const stream = new Blob([buffer]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).arrayBuffer();
}

export function decode(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== 'DVX1') throw new Error('not an explorer payload');
  const length = new DataView(buffer).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const start = 8 + length + ((8 - ((8 + length) % 8)) % 8);
  const arrays = {};
  for (const [name, spec] of Object.entries(header.arrays)) {
    const Type = TYPES[spec.dtype];
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const view = new Type(buffer, start + spec.offset, count);
    view.shape = spec.shape;
    arrays[name] = view;
  }
  return {meta: header.meta, arrays};
}

// Row `index` of a 2-D array (a view, no copy).
export function row(array, index) {
  const width = array.shape[1];
  const view = array.subarray(index * width, (index + 1) * width);
  view.shape = [width];
  return view;
}
