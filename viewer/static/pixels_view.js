// The Pixels tab: the photo under the pointer (a click pins the point), what that pixel reads from each
// token, the map of the token it reads most, its top tokens, and the ownership map, which names and lights
// the region under the pointer and isolates one token's region on a click.

import {cellAt, paintOwners, paintStored, outline, ring} from './draw.js';
import {tokenBars} from './charts.js';
import {attentionKey, share, swatchKey, joinNotes} from './keys.js';
import {buildSections, shownView, whileShown} from './layout.js';
import {MapPicture, TileGrid, follow, tokenPicture} from './pictures.js';
import {touched} from './store.js';
import {valueText} from './readout.js';

export function mountPixels(root, ctx, views) {
  const sections = buildSections(root, views, ctx.figureUrl);
  const {store} = ctx;
  sections.pixel_image.insertAdjacentHTML('beforeend',
    '<figure class="view-picture dvx-photo"><div class="dvx-frame"><img alt="the photo: move the pointer over it, click to pin a point">' +
    '<canvas class="dvx-marker"></canvas></div><p class="dvx-readout" aria-live="polite"></p></figure>');
  const photo = sections.pixel_image.querySelector('img');
  const marker = sections.pixel_image.querySelector('canvas');
  const photoReadout = sections.pixel_image.querySelector('.dvx-readout');
  const ownerMap = new MapPicture(sections.pixel_owner, 'the map of the token this pixel reads most');
  sections.pixel_reads.insertAdjacentHTML('beforeend', '<canvas class="dvx-chart"></canvas><p class="dvx-readout"></p>');
  const chart = sections.pixel_reads.querySelector('canvas');
  const chartReadout = sections.pixel_reads.querySelector('.dvx-readout');
  const top = new TileGrid(sections.top_tokens, 'the tokens this pixel reads most', {selectable: true, wide: true});
  const ownership = new MapPicture(sections.ownership, 'ownership map');
  let bars = null;
  let readsShown = null;  // what the reads, top tokens and owner's map now show: they change only with the cell

  follow(ownerMap.canvas, {
    move: (x, y) => {
      const {state} = store, view = ctx.blockView(state), token = Number(ownerMap.figure.dataset.token);
      if (view && Number.isInteger(token)) {
        ownerMap.say(valueText(view.data.tokens(token), cellAt(state.primary.display, view.block.stage, x, y),
                                   `token ${token}'s attention`));
      }
    },
    leave: () => ownerMap.say(''),
  });
  follow(marker, {
    move: (x, y) => store.set({hoverPoint: [x, y]}),
    leave: () => store.set({hoverPoint: null}),
    pick: (x, y) => store.set({point: [x, y], hoverPoint: null}),
  });
  chart.addEventListener('pointermove', (event) => {
    if (!bars) return;
    const token = bars.tokenAt(event.offsetX);
    const reads = currentReads(store.state);
    chartReadout.textContent = token === null || !reads ? '' : `token ${token}: reads ${reads.values[token].toFixed(4)}`;
  });
  top.grid.addEventListener('click', (event) => {
    const tile = event.target.closest('.dvx-tile');
    if (tile && tile.dataset.token !== undefined) { store.set({token: Number(tile.dataset.token), hoverToken: null}); ctx.openTab('tokens'); }
  });
  follow(ownership.canvas, {
    move: (x, y) => store.set({ownerHover: ownerAt(store.state, x, y)}),
    leave: () => store.set({ownerHover: null}),
    pick: (x, y) => {
      const owner = ownerAt(store.state, x, y);
      store.set({ownerIsolated: owner === null || owner === store.state.ownerIsolated ? null : owner});
    },
  });

  function ownerAt(state, x, y) {
    const view = ctx.blockView(state);
    if (!view) return null;
    const cell = cellAt(state.primary.display, view.block.stage, x, y);
    return cell < 0 ? null : view.data.owners[cell];
  }

  function currentReads(state) {
    const view = ctx.blockView(state);
    if (!view) return null;
    const [x, y] = ctx.displayedPoint(state);
    const cell = cellAt(state.primary.display, view.block.stage, x, y);
    if (cell < 0) return {cell, view};
    return {cell, view, values: view.data.readsAt(cell), top: view.data.topAt(cell)};
  }

  function drawPhoto(state) {
    const data = state.primary;
    if (photo.src !== data.photoUrl) photo.src = data.photoUrl;
    if (marker.width !== data.display.width || marker.height !== data.display.height) {
      marker.width = data.display.width; marker.height = data.display.height;
    }
    const [x, y] = ctx.displayedPoint(state);
    const context = marker.getContext('2d');
    context.clearRect(0, 0, marker.width, marker.height);
    ring(context, x, y, Math.max(5, Math.round(Math.min(marker.width, marker.height) / 40)), data.display.lineWidth, true);
    marker.dataset.point = `${Math.round(x)},${Math.round(y)}`;
  }

  function drawReads(state) {
    const data = state.primary, style = ctx.style(state), reads = currentReads(state);
    if (!reads) return;
    const shown = `${data.key}|${reads.view.block.label}|${reads.view.fusion}|${reads.cell}|${style.scale}|${style.colormap}|${style.opacity}`;
    if (shown === readsShown) return;
    readsShown = shown;
    if (reads.cell < 0) {
      photoReadout.textContent = 'outside what the model saw';
      return;
    }
    const highlight = new Set(reads.top);
    bars = tokenBars(chart, Array.from(reads.values), {highlight, uniform: reads.view.data.info.readsUniform,
      title: `top ${reads.top.length} in colour; dashed: uniform (1/${Math.round(1 / reads.view.data.info.readsUniform)})`,
      yTitle: 'attention weight'});
    chart.dataset.top = reads.top.join(',');
    const owner = reads.top[0];
    photoReadout.textContent = `this pixel reads token ${owner} most (${reads.values[owner].toFixed(3)}); ` +
      `then ${reads.top.slice(1).map((token) => `${token} (${reads.values[token].toFixed(3)})`).join(', ')}`;
    const stage = reads.view.block.stage;
    top.setCount(reads.top.length);
    const stored = reads.top.map((token) => reads.view.data.tokens(token));
    const shared = Math.max(...stored.map((map) => map.top));
    reads.top.forEach((token, index) => top.draw(index, paintStored(data.thumbnail, stage, stored[index], style, data.tables,
      shared), `token ${token}: reads ${reads.values[token].toFixed(2)}`, {token}));
    top.setKey(attentionKey(data, style, stored.map((map) => map.top), {small: true, uniform: reads.view.data.info.uniform}));
    const {image, key} = tokenPicture(ctx.cache, data, reads.view.block, reads.view.fusion, owner,
                                      reads.view.data.tokens(owner), style);
    ownerMap.show(image, key, `token ${owner}, ${reads.view.block.label}`);
    ownerMap.figure.dataset.token = owner;
    ownerMap.title(`token ${owner}, ${reads.view.block.label}: the token this pixel reads most`);
  }

  function drawOwnership(state) {
    const data = state.primary, view = ctx.blockView(state), style = ctx.style(state);
    const stage = view.block.stage, owners = view.data.owners;
    const base = ctx.cache.get(`owners|${data.key}|${view.block.label}|${view.fusion}|${style.opacity}|${state.ownerIsolated}`,
      () => paintOwners(data.display, stage, owners, view.data.ownerColours, data.tables.palette, style.opacity,
                        data.tables.dim, state.ownerIsolated));
    const image = new ImageData(new Uint8ClampedArray(base.data), base.width, base.height);
    const lit = state.ownerIsolated !== null ? state.ownerIsolated : state.ownerHover;
    if (lit !== null) outline(image, data.display, stage, Uint8Array.from(owners, (owner) => owner === lit ? 1 : 0),
                              data.display.lineWidth);
    const palette = data.tables.palette, colours = view.data.ownerColours;
    const swatches = view.data.info.largestOwners.map(([token, cells]) =>
      [`token ${token} (${share(cells / owners.length)})`, Array.from(palette.subarray(3 * colours[token], 3 * colours[token] + 3))]);
    const rest = view.data.info.ownedBy - swatches.length;
    const note = joinNotes(data.meta.notes.ownership + (rest > 0 ? `; ${rest} more tokens own smaller regions` : ''),
                           data.display.crops ? data.meta.notes.cropped : '', 'hover to light a region, click to isolate it');
    ownership.show(image, swatchKey('owner (share of the image)', swatches, note), `ownership map, ${view.block.label}`);
    const labels = view.data.info.labels.filter(([token]) => state.ownerIsolated === null || token === state.ownerIsolated);
    ownership.setLabels(labels.map(([token, x, y]) => ({text: String(token), x, y})),
                        data.display.width, data.display.height, 30 * data.display.labelScale);
    if (lit === null) ownership.say('hover or tap a region to name its token; click to isolate it');
    else {
      const cells = owners.reduce((count, owner) => count + (owner === lit ? 1 : 0), 0);
      ownership.say(`token ${lit} owns ${state.ownerIsolated !== null ? 'this region (isolated: click again to show all)' : 'this spot'} · ` +
                    `${share(cells / owners.length)} of the image`);
    }
    ownership.figure.dataset.owner = lit === null ? '' : lit;
  }

  store.subscribe(whileShown(root, (state, changed) => {
    const view = shownView(root, ctx, state, 'Analyse an image to see what its pixels read.');
    if (!view) return;
    const drawing = touched(changed, 'primary', 'block', 'fusion', 'scale', 'colormap', 'opacity', 'arrived');
    if (drawing || touched(changed, 'point', 'hoverPoint')) { drawPhoto(state); drawReads(state); }
    if (drawing || touched(changed, 'ownerHover', 'ownerIsolated')) drawOwnership(state);
  }, store));
}
