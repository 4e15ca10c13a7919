// The live views' charts, drawn on canvases: one bar per token, a token-by-token heatmap, grouped bars.
// Each returns what lies under a point, for the readouts.

const HIGHLIGHT = '#e4572e';
const MUTED = '#9aa5b1';
const GRID = '#e5e7eb';
const TEXT = '#374151';
const QUADRANT_COLOURS = ['#4c78a8', '#72b7b2', '#f58518', '#e45756'];

function sized(canvas, cssHeight) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(200, canvas.clientWidth || canvas.parentElement.clientWidth || 400);
  canvas.style.height = `${cssHeight}px`;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  const context = canvas.getContext('2d');
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, cssHeight);
  context.font = '12px system-ui, sans-serif';
  return {context, width, height: cssHeight};
}

// A step for an axis's ticks that reads: 1, 2 or 5 times a power of ten, about `count` ticks up to `most`.
function niceStep(most, count = 4) {
  const rough = most / count, power = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= rough) || rough;
}

// One bar per token; `highlight` tokens in colour; a dashed line at `uniform`. Returns the plot's geometry.
export function tokenBars(canvas, values, {highlight = new Set(), uniform = null, title = '', yTitle = ''} = {}) {
  const {context, width, height} = sized(canvas, 230);
  const left = 48, right = 8, top = 22, bottom = 40;
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  const step = niceStep(Math.max(...values, uniform || 0, 1e-12));
  const most = step * Math.ceil(Math.max(...values, uniform || 0, 1e-12) / step);
  context.fillStyle = TEXT;
  context.fillText(title, left, 14);
  context.strokeStyle = GRID;
  for (let value = 0; value <= most + step / 2; value += step) {
    const y = top + plotHeight * (1 - value / most);
    context.beginPath(); context.moveTo(left, y); context.lineTo(left + plotWidth, y); context.stroke();
    context.fillText(Number(value.toPrecision(2)).toString(), 2, y + 4);
  }
  const barStep = plotWidth / values.length;
  for (let i = 0; i < values.length; i++) {
    const barHeight = plotHeight * values[i] / most;
    context.fillStyle = highlight.has(i) ? HIGHLIGHT : MUTED;
    context.fillRect(left + i * barStep + barStep * 0.1, top + plotHeight - barHeight, Math.max(1, barStep * 0.8), barHeight);
  }
  context.fillStyle = TEXT;
  const every = values.length > 32 ? 8 : 4;
  for (let i = 0; i < values.length; i += every) context.fillText(String(i), left + i * barStep, top + plotHeight + 14);
  if (uniform !== null) {
    const y = top + plotHeight * (1 - uniform / most);
    context.setLineDash([4, 3]); context.strokeStyle = TEXT;
    context.beginPath(); context.moveTo(left, y); context.lineTo(left + plotWidth, y); context.stroke();
    context.setLineDash([]);
  }
  context.fillText(yTitle ? `semantic token (bars: ${yTitle})` : 'semantic token', left, height - 6);
  return {tokenAt: (x) => {
    const index = Math.floor((x - left) / barStep);
    return index >= 0 && index < values.length ? index : null;
  }};
}

// An (M, M) matrix of bytes, each row scaled by its own top, on a colour map: query tokens down, keys across.
export function heatmap(canvas, bytes, tops, size, table, title) {
  const cssWidth = Math.min(420, canvas.parentElement.clientWidth || 420);
  const ratio = window.devicePixelRatio || 1;
  const top = 22, left = 4, side = cssWidth - 2 * left - 14;
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${side + top + 4}px`;
  canvas.width = Math.round(cssWidth * ratio); canvas.height = Math.round((side + top + 4) * ratio);
  const context = canvas.getContext('2d');
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.font = '12px system-ui, sans-serif';
  context.fillStyle = TEXT;
  context.fillText(title, left, 14);
  let most = 0;
  for (let q = 0; q < size; q++) for (let k = 0; k < size; k++) most = Math.max(most, bytes[q * size + k] / 255 * tops[q]);
  const cell = side / size;
  for (let q = 0; q < size; q++) {
    for (let k = 0; k < size; k++) {
      const value = bytes[q * size + k] / 255 * tops[q];
      const index = most > 0 ? Math.round(value / most * 255) : 0;
      context.fillStyle = `rgb(${table[3 * index]}, ${table[3 * index + 1]}, ${table[3 * index + 2]})`;
      context.fillRect(left + k * cell, top + q * cell, Math.ceil(cell), Math.ceil(cell));
    }
  }
  context.fillStyle = TEXT;
  context.save();
  context.translate(left + side + 12, top + side / 2 + 60);
  context.rotate(-Math.PI / 2);
  context.fillText('query token ↓ · key token →', 0, 0);
  context.restore();
  return {most, cellAt: (x, y) => {
    const k = Math.floor((x - left) / cell), q = Math.floor((y - top) / cell);
    if (k < 0 || q < 0 || k >= size || q >= size) return null;
    return {query: q, key: k, value: bytes[q * size + k] / 255 * tops[q]};
  }};
}

// Grouped bars: for each Merge block, the mean share of each query group's attention to each key group.
export function quadrantBars(canvas, quadrants) {
  const {context, width, height} = sized(canvas, 240);
  const left = 40, right = 8, top = 24, bottom = 64;
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  context.fillStyle = TEXT;
  context.fillText('Where attention goes (head mean)', left, 14);
  context.strokeStyle = GRID;
  for (let k = 0; k <= 4; k++) {
    const y = top + plotHeight * (1 - k / 4);
    context.beginPath(); context.moveTo(left, y); context.lineTo(left + plotWidth, y); context.stroke();
    context.fillText((k / 4).toFixed(2), 4, y + 4);
  }
  if (!quadrants.length) {
    context.fillText('this trace holds no Merge-block map', left + 10, top + plotHeight / 2);
    return;
  }
  const names = Object.keys(quadrants[0][1]);
  const group = plotWidth / quadrants.length, bar = group * 0.8 / names.length;
  quadrants.forEach(([label, shares], g) => {
    names.forEach((name, n) => {
      const barHeight = plotHeight * shares[name];
      context.fillStyle = QUADRANT_COLOURS[n % QUADRANT_COLOURS.length];
      context.fillRect(left + g * group + group * 0.1 + n * bar, top + plotHeight - barHeight, bar - 1, barHeight);
    });
    context.fillStyle = TEXT;
    const [stage, block] = label.split(' · ');
    context.fillText(stage, left + g * group + group * 0.1, top + plotHeight + 14);
    context.fillText(block, left + g * group + group * 0.1, top + plotHeight + 28);
  });
  let x = left;
  names.forEach((name, n) => {
    context.fillStyle = QUADRANT_COLOURS[n % QUADRANT_COLOURS.length];
    context.fillRect(x, height - 16, 10, 10);
    context.fillStyle = TEXT;
    context.fillText(name, x + 14, height - 7);
    x += context.measureText(name).width + 30;
  });
}
