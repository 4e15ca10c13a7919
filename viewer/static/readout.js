// The value under the pointer and its share of the map's mass, in words: on the live views' maps, and on the
// pictures the server draws (the tour, the explanations), read from the stored map the picture carries; on
// an ownership map, the token that owns the spot. Hovering or tapping reads; leaving the picture asks again.

import {g3, share} from './keys.js';
import {valueOf} from './levels.js';

// A stored map's byte in words: its value, in multiples of uniform (attention maps: `uniform` not null), and
// its share of the map's `total` mass.
function byteText(byte, top, uniform, total) {
  if (byte === 0) return "about 0 here (under 1/255 of the scale's top)";
  const value = valueOf(byte, top, uniform !== null ? uniform : 1);
  const ofMass = total > 0 ? ` · ${share(value / total)} of the map's mass` : '';
  const times = uniform !== null ? ` (${g3(value / uniform)}× uniform)` : '';
  return `${g3(value)} here${times}${ofMass}`;
}

// What `stored` (a live view's attention map) holds at `cell`, said of `what`.
export function valueText(stored, cell, what) {
  if (cell < 0) return 'outside what the model saw';
  return `${what}: ${byteText(stored.cells[cell], stored.top, stored.uniform, stored.total)}`;
}

function bytes(text, Type) {
  const raw = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new Type(raw.buffer);
}

function mapOf(figure) {
  if (!figure.dataset.cells) return null;
  if (!figure._map) {
    const [height, width] = figure.dataset.grid.split(',').map(Number);
    figure._map = {cells: bytes(figure.dataset.cells, Uint8Array), width, height,
                   top: Number(figure.dataset.top), uniform: figure.dataset.uniform === '' ? null : Number(figure.dataset.uniform),
                   total: Number(figure.dataset.total),
                   rows: bytes(figure.dataset.rows, Int16Array), columns: bytes(figure.dataset.columns, Int16Array)};
  }
  return figure._map;
}

function describe(map, x, y) {
  const xi = Math.floor(x), yi = Math.floor(y);
  const row = map.rows[yi], column = map.columns[xi];
  if (row === undefined || column === undefined || row < 0 || column < 0) return 'outside what the model saw';
  return byteText(map.cells[row * map.width + column], map.top, map.uniform, map.total);
}

export function attach(element, prompt) {
  const target = (event) => {
    const image = event.target.closest('figure.view-picture img');
    return image ? {image, figure: image.closest('figure')} : null;
  };
  const read = (event) => {
    const found = target(event);
    if (!found) return;
    const {image, figure} = found;
    const box = image.getBoundingClientRect();
    const x = (event.clientX - box.left) / box.width, y = (event.clientY - box.top) / box.height;
    const parts = [];
    if (figure.dataset.owners) {
      const rows = Number(figure.dataset.ownerRows), columns = Number(figure.dataset.ownerColumns);
      const owners = figure.dataset.owners.split(',');
      const owner = owners[Math.min(rows - 1, Math.floor(y * rows)) * columns + Math.min(columns - 1, Math.floor(x * columns))];
      parts.push(owner < 0 ? 'outside what the model saw' : `token ${owner} owns this spot`);
    }
    const map = mapOf(figure);
    if (map) parts.push(describe(map, x * image.naturalWidth, y * image.naturalHeight));
    const readout = figure.querySelector('.owner-readout');
    if (readout) readout.textContent = parts.join(' · ');
  };
  element.addEventListener('pointermove', read);
  element.addEventListener('click', read);
  element.addEventListener('pointerout', (event) => {
    const found = target(event);
    if (found) found.figure.querySelector('.owner-readout').textContent = found.figure.dataset.owners ? prompt : '';
  });
}
