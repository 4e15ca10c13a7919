// Colour keys as the server writes them (viewer/keys.py, key_html): a bar from its low to its high end,
// or named swatches, with a note. The words come from the server (payload meta "notes").

export function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
}

function hex(r, g, b) {
  return '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
}

// A number as Python's format "{:.3g}" writes it.
export function g3(value) {
  if (value === 0) return '0';
  const exponent = Math.floor(Math.log10(Math.abs(value)));
  if (exponent < -4 || exponent >= 3) {
    const [mantissa, power] = value.toExponential(2).split('e');
    const trimmed = mantissa.replace(/\.?0+$/, '');
    const sign = power[0] === '-' ? '-' : '+';
    return `${trimmed}e${sign}${power.replace(/^[+-]/, '').padStart(2, '0')}`;
  }
  return String(Number(value.toPrecision(3)));
}

// A share as the page writes it (viewer/render.py, share): never "0%" for a share above zero.
export function share(value) {
  if (value >= 0.01) return `${Math.round(value * 100)}%`;
  if (value >= 0.001) return `${(value * 100).toFixed(1)}%`;
  return `${(value * 100).toFixed(2)}%`;
}

export function barKey(ramp, unit, low, high, note) {
  const stops = [];
  for (let i = 0; i < ramp.length / 3; i++) {
    stops.push(hex(ramp[3 * i], ramp[3 * i + 1], ramp[3 * i + 2]) + (i === 0 ? '00' : ''));
  }
  return `<div class="colour-key" role="img" aria-label="colour key: ${escape(unit)} from ${escape(low)} to ${escape(high)}">` +
    `<span class="key-end">${escape(low)}</span>` +
    `<span class="key-bar" style="background-image: linear-gradient(to right, ${stops.join(', ')})"></span>` +
    `<span class="key-end">${escape(high)}</span><span class="key-unit">${escape(unit)}</span>` +
    (note ? `<span class="key-note">${escape(note)}</span>` : '') + '</div>';
}

export function swatchKey(unit, swatches, note) {
  const items = swatches.map(([label, [r, g, b]]) =>
    `<span class="key-swatch"><i style="background:${hex(r, g, b)}"></i>${escape(label)}</span>`).join('');
  return `<div class="colour-key" role="img" aria-label="colour key: ${escape(unit)}"><span class="key-unit">${escape(unit)}</span>` +
    items + (note ? `<span class="key-note">${escape(note)}</span>` : '') + '</div>';
}

export function joinNotes(...parts) {
  return parts.filter(Boolean).join('; ');
}

// The key of attention maps drawn together on `style`: `tops` their scales' tops (multiples of uniform).
export function attentionKey(data, style, tops, {small = false, single = false, note = '', uniform = null} = {}) {
  const notes = data.meta.notes;
  const crop = data.display.crops ? notes.cropped : '';
  if (style.scale === 'mass') {
    const bands = data.tables.bands[style.colormap];
    const shares = data.meta.massShares;
    const swatches = shares.map((value, i) => [`${Math.round(value * 100)}%`, [bands[3 * i], bands[3 * i + 1], bands[3 * i + 2]]]);
    return swatchKey("smallest region holding this share of the map's mass", swatches,
                     joinNotes(small ? notes.tile : 'outline: the 50% region', notes.massBands, crop, note));
  }
  const top = style.scale === 'shared' || single ? Math.max(...tops) : null;
  const high = top !== null ? `${g3(top)}× uniform`
    : `each map's own peak (at least ${g3(data.meta.topAtLeast)}× uniform)`;
  // As viewer/render.py, uniform_label: the weight of uniform attention where the maps share one.
  const low = uniform !== null ? `uniform (1/${Math.round(1 / uniform)})` : 'uniform';
  return barKey(data.tables.ramps[style.colormap], 'attention weight', low, high,
                joinNotes(small ? notes.tile : notes.halfMass, notes.uniform, crop, note));
}
