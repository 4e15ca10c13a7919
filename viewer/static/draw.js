// Painting maps over the grey photo: viewer/overlay.py, pixel for pixel (the tests hold the two equal).
//
// A "picture" is one of the analysis's two sizes (the display copy, the thumbnail): its grey backdrop and,
// for each stage's grid, the grid row under each picture row and the grid column under each picture column
// (-1 where the model saw nothing).

import {attentionIndices, standing, weight} from './levels.js';

// Per-cell colours (cells * 3) and weights blended over the backdrop: floor(grey * (1 - a) + colour * a + 0.5),
// the weight and the tint formed per cell first, as overlay.paint does; unseen pixels take the dimming table.
export function paint(picture, stage, colours, alphas, dim) {
  const {width, height, backdrop} = picture;
  const rows = picture.rows[stage], columns = picture.columns[stage], gridWidth = picture.gridWidths[stage];
  const cells = alphas.length;
  const keep = new Float64Array(cells), tint = new Float64Array(cells * 3);
  for (let c = 0; c < cells; c++) {
    keep[c] = 1.0 - alphas[c];
    for (let k = 0; k < 3; k++) tint[3 * c + k] = colours[3 * c + k] * alphas[c];
  }
  const image = new ImageData(width, height);
  const data = image.data;
  for (let y = 0; y < height; y++) {
    const row = rows[y];
    for (let x = 0; x < width; x++) {
      const p = y * width + x, o = 4 * p, grey = backdrop[p], column = columns[x];
      if (row < 0 || column < 0) {
        const v = dim[grey];
        data[o] = v; data[o + 1] = v; data[o + 2] = v;
      } else {
        const cell = row * gridWidth + column, kept = keep[cell], t = 3 * cell;
        data[o] = Math.floor(grey * kept + tint[t] + 0.5);
        data[o + 1] = Math.floor(grey * kept + tint[t + 1] + 0.5);
        data[o + 2] = Math.floor(grey * kept + tint[t + 2] + 0.5);
      }
      data[o + 3] = 255;
    }
  }
  return image;
}

// A map given as colour indices (one per cell), coloured from `table` (256 * 3) at the square root of its level.
export function paintLevels(picture, stage, indices, table, opacity, dim) {
  const colours = new Float64Array(indices.length * 3), alphas = new Float64Array(indices.length);
  for (let c = 0; c < indices.length; c++) {
    const index = indices[c];
    colours[3 * c] = table[3 * index]; colours[3 * c + 1] = table[3 * index + 1]; colours[3 * c + 2] = table[3 * index + 2];
    alphas[c] = weight(index, opacity);
  }
  return paint(picture, stage, colours, alphas, dim);
}

// Nested mass regions (levels 0-3 per cell) in the bands' colours, weighted by how far the map stands out.
export function paintMass(picture, stage, levels, bands, bandWeights, opacity, strength, dim) {
  const palette = [[0, 0, 0], [bands[6], bands[7], bands[8]], [bands[3], bands[4], bands[5]], [bands[0], bands[1], bands[2]]];
  const band = [0.0, ...bandWeights];
  const colours = new Float64Array(levels.length * 3), alphas = new Float64Array(levels.length);
  for (let c = 0; c < levels.length; c++) {
    const level = levels[c];
    colours[3 * c] = palette[level][0]; colours[3 * c + 1] = palette[level][1]; colours[3 * c + 2] = palette[level][2];
    alphas[c] = band[level] * opacity * strength;
  }
  return paint(picture, stage, colours, alphas, dim);
}

// A stored attention map (bytes, top in multiples of uniform, mass levels) drawn on a scale: "per map",
// "shared" (with `shared`, the largest top shown together) or "mass"; large pictures carry the half-mass outline.
export function paintStored(picture, stage, stored, style, tables, shared = null, outlined = false) {
  let image;
  if (style.scale === 'mass') {
    image = paintMass(picture, stage, stored.mass, tables.bands[style.colormap], tables.bandWeights, style.opacity,
                      standing(stored.cells, stored.top), tables.dim);
  } else {
    const indices = attentionIndices(stored.cells, stored.top, style.scale === 'shared' ? shared : null);
    image = paintLevels(picture, stage, indices, tables.colormaps[style.colormap], style.opacity, tables.dim);
  }
  if (outlined) {
    const half = new Uint8Array(stored.mass.length);
    for (let c = 0; c < half.length; c++) half[c] = stored.mass[c] >= 3 ? 1 : 0;
    outline(image, picture, stage, half, picture.lineWidth);
  }
  return image;
}

function regionMask(picture, stage, inRegion) {
  const {width, height} = picture;
  const rows = picture.rows[stage], columns = picture.columns[stage], gridWidth = picture.gridWidths[stage];
  const mask = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = rows[y];
    if (row < 0) continue;
    for (let x = 0; x < width; x++) {
      const column = columns[x];
      if (column >= 0 && inRegion[row * gridWidth + column]) mask[y * width + x] = 1;
    }
  }
  return mask;
}

// The minimum (erode) or maximum (dilate) over a (2 * radius + 1)-square window clipped at the edges,
// as OpenCV's erode and dilate with their default borders: two passes, rows then columns.
function boxFilter(values, width, height, radius, pick, Type) {
  const across = new Type(values.length), out = new Type(values.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let best = values[y * width + x];
      for (let dx = Math.max(0, x - radius); dx <= Math.min(width - 1, x + radius); dx++) best = pick(best, values[y * width + dx]);
      across[y * width + x] = best;
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let best = across[y * width + x];
      for (let dy = Math.max(0, y - radius); dy <= Math.min(height - 1, y + radius); dy++) best = pick(best, across[dy * width + x]);
      out[y * width + x] = best;
    }
  }
  return out;
}

// The same for a mask of 0 and 1, by running counts along each row, then each column: a window holds only ones
// (erode) or any one (dilate). A pixel's window is clipped at the edges, as boxFilter's.
function binaryBox(mask, width, height, radius, every) {
  const across = new Uint8Array(mask.length), out = new Uint8Array(mask.length);
  const prefix = new Int32Array(Math.max(width, height) + 1);
  for (let y = 0; y < height; y++) {
    const base = y * width;
    for (let x = 0; x < width; x++) prefix[x + 1] = prefix[x] + mask[base + x];
    for (let x = 0; x < width; x++) {
      const low = x - radius < 0 ? 0 : x - radius, high = x + radius >= width ? width - 1 : x + radius;
      const ones = prefix[high + 1] - prefix[low];
      across[base + x] = every ? (ones === high - low + 1 ? 1 : 0) : (ones > 0 ? 1 : 0);
    }
  }
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) prefix[y + 1] = prefix[y] + across[y * width + x];
    for (let y = 0; y < height; y++) {
      const low = y - radius < 0 ? 0 : y - radius, high = y + radius >= height ? height - 1 : y + radius;
      const ones = prefix[high + 1] - prefix[low];
      out[y * width + x] = every ? (ones === high - low + 1 ? 1 : 0) : (ones > 0 ? 1 : 0);
    }
  }
  return out;
}

export const erode = (mask, width, height, radius) => binaryBox(mask, width, height, radius, true);
export const dilate = (mask, width, height, radius) => binaryBox(mask, width, height, radius, false);

// The border of a region of cells: white, `width` pixels inside it, a one-pixel dark edge on both sides.
export function outline(image, picture, stage, inRegion, width, colour = [255, 255, 255]) {
  const w = picture.width, h = picture.height;
  const mask = regionMask(picture, stage, inRegion);
  const eroded = erode(mask, w, h, width);
  const inner = new Uint8Array(mask.length);
  for (let p = 0; p < mask.length; p++) inner[p] = mask[p] && !eroded[p] ? 1 : 0;
  const grown = dilate(inner, w, h, 1);
  const data = image.data;
  for (let p = 0; p < mask.length; p++) {
    const o = 4 * p;
    if (inner[p]) { data[o] = colour[0]; data[o + 1] = colour[1]; data[o + 2] = colour[2]; }
    else if (grown[p]) { data[o] = 0; data[o + 1] = 0; data[o + 2] = 0; }
  }
}

// A rectangle's frame `thickness` pixels wide, centred on the lines through the box's first and last pixels.
export function frame(image, box, thickness, colour) {
  const [x0, y0, x1, y1] = box;
  const half = Math.floor(thickness / 2);
  const left = x0 - half, top = y0 - half, right = x1 + half, bottom = y1 + half;
  const {width, height, data} = image;
  for (let y = Math.max(0, top); y <= Math.min(height - 1, bottom); y++) {
    for (let x = Math.max(0, left); x <= Math.min(width - 1, right); x++) {
      const inner = y >= top + thickness && y <= bottom - thickness && x >= left + thickness && x <= right - thickness;
      if (inner) continue;
      const o = 4 * (y * width + x);
      data[o] = colour[0]; data[o + 1] = colour[1]; data[o + 2] = colour[2];
    }
  }
}

export function homeBox(image, box, lineWidth, colour) {
  frame(image, box, lineWidth + 2, [0, 0, 0]);
  frame(image, box, lineWidth, colour);
}

// Each pixel in its owner's palette colour at the opacity, dark seams where neighbouring owners differ.
export function paintOwners(picture, stage, owners, colourOf, palette, opacity, dim, only = null) {
  const colours = new Float64Array(owners.length * 3), alphas = new Float64Array(owners.length);
  for (let c = 0; c < owners.length; c++) {
    const index = colourOf[owners[c]];
    colours[3 * c] = palette[3 * index]; colours[3 * c + 1] = palette[3 * index + 1]; colours[3 * c + 2] = palette[3 * index + 2];
    alphas[c] = only === null || owners[c] === only ? opacity : 0.0;
  }
  const image = paint(picture, stage, colours, alphas, dim);
  seams(image, picture, stage, owners, dim);
  return image;
}

function seams(image, picture, stage, owners, dim) {
  const {width, height} = picture;
  const rows = picture.rows[stage], columns = picture.columns[stage], gridWidth = picture.gridWidths[stage];
  const labels = new Int32Array(width * height), inside = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if (rows[y] >= 0 && columns[x] >= 0) { labels[p] = owners[rows[y] * gridWidth + columns[x]]; inside[p] = 1; }
      else labels[p] = -1;
    }
  }
  const radius = Math.max(1, Math.floor(picture.lineWidth / 2));
  const most = boxFilter(labels, width, height, radius, Math.max, Int32Array);
  const least = boxFilter(labels, width, height, radius, Math.min, Int32Array);
  const withinView = erode(inside, width, height, radius);
  const data = image.data;
  for (let p = 0; p < labels.length; p++) {
    if (withinView[p] && most[p] !== least[p]) {
      const o = 4 * p;
      data[o] = dim[data[o]]; data[o + 1] = dim[data[o + 1]]; data[o + 2] = dim[data[o + 2]];
    }
  }
}

// The cell under a point of a picture (in its pixels), or -1 outside what the model saw.
export function cellAt(picture, stage, x, y) {
  const xi = Math.floor(x), yi = Math.floor(y);
  if (xi < 0 || yi < 0 || xi >= picture.width || yi >= picture.height) return -1;
  const row = picture.rows[stage][yi], column = picture.columns[stage][xi];
  return row < 0 || column < 0 ? -1 : row * picture.gridWidths[stage] + column;
}

export function put(canvas, image) {
  if (canvas.width !== image.width || canvas.height !== image.height) {
    canvas.width = image.width;
    canvas.height = image.height;
  }
  canvas.getContext('2d').putImageData(image, 0, 0);
}

// A ring (and, with `ticks`, a crosshair through it) at (x, y), white on a black edge so that it shows on
// any photo: the point the pointer reads.
export function ring(context, x, y, radius, width, ticks = false) {
  for (const [colour, lineWidth] of [['#000', width + 2], ['#fff', width]]) {
    context.strokeStyle = colour; context.lineWidth = lineWidth;
    context.beginPath(); context.arc(x, y, radius, 0, 2 * Math.PI); context.stroke();
    if (!ticks) continue;
    for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
      context.beginPath();
      context.moveTo(x + dx * radius / 2, y + dy * radius / 2);
      context.lineTo(x + dx * radius * 2, y + dy * radius * 2);
      context.stroke();
    }
  }
}
