// How a map's bytes become colour indices: viewer/levels.py, the same float64 arithmetic in the same order,
// so the browser's pictures equal the server's.

export const LEVELS = 255;

// Colour indices of an attention map stored with `top` (multiples of uniform), on its own scale or on
// `shared` (the largest top of the maps shown together).
export function attentionIndices(cells, top, shared = null) {
  const span = (shared !== null ? shared : top) - 1.0;
  const out = new Uint8Array(cells.length);
  for (let i = 0; i < cells.length; i++) {
    const ratio = cells[i] / LEVELS * top;
    const level = Math.min(Math.max((ratio - 1.0) / span, 0.0), 1.0);
    out[i] = Math.floor(level * LEVELS + 0.5);
  }
  return out;
}

// How far a map's peak stands above uniform on its own scale, 0 to 1: the mass view's bands are this strong.
export function standing(cells, top) {
  let peak = 0;
  for (let i = 0; i < cells.length; i++) if (cells[i] > peak) peak = cells[i];
  return attentionIndices([peak], top)[0] / LEVELS;
}

// The value a byte of a map stored with `top` (multiples of `uniform`; 1 for an attribution map) stands for.
export function valueOf(byte, top, uniform) {
  return byte / LEVELS * top * uniform;
}

export function weight(index, opacity) {
  return opacity * Math.sqrt(index / LEVELS);
}
