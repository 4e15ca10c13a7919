// The Semantic tokens tab: every token's map at the block (on the home grid where it fits), one token large
// with its home cell, its statistics and the value under the pointer, and that token through every block.

import {paintStored, cellAt} from './draw.js';
import {attentionKey, share, escape} from './keys.js';
import {buildSections, bringIntoView, shownView, whileShown} from './layout.js';
import {MapPicture, TileGrid, follow, tokenPicture} from './pictures.js';
import {touched} from './store.js';
import {valueText} from './readout.js';

export function statisticsText(token, label, stats, homeGrid) {
  const home = [Math.floor(token / homeGrid[1]), token % homeGrid[1]];
  return `<p><strong>Token ${token}</strong>, ${escape(label)}<br>` +
    `home cell (row, column) on the ${homeGrid[0]}×${homeGrid[1]} home grid: (${home[0]}, ${home[1]}) · ` +
    `peak ${stats.peak.toFixed(3)} at pixel cell (${stats.peakCell[0]}, ${stats.peakCell[1]}) of the stage's grid<br>` +
    `entropy ${stats.entropy.toFixed(2)} nats (${Math.round(stats.normalisedEntropy * 100)}% of uniform) · half of its mass lies on ` +
    `${Math.round(stats.area50 * 100)}% of the pixels · total mass on pixels ${stats.mass.toFixed(2)}</p>`;
}

export function mountTokens(root, ctx, views) {
  const sections = buildSections(root, views, ctx.figureUrl);
  const gallery = new TileGrid(sections.token_gallery, 'every token\'s map', {selectable: true});
  sections.token_gallery.insertAdjacentHTML('beforeend',
    '<label class="dvx-token-box">Token (type a number and press Enter, or click a tile) ' +
    '<input type="number" min="0" step="1" inputmode="numeric"><span class="dvx-error" role="alert"></span></label>');
  const box = sections.token_gallery.querySelector('.dvx-token-box input');
  const boxError = sections.token_gallery.querySelector('.dvx-error');
  const detail = new MapPicture(sections.token_image, 'one token\'s map');
  const stats = sections.token_stats;
  // The token's numbers under its picture, not a gallery's height below it.
  sections.token_image.appendChild(stats.closest('.dvx-view'));
  const strip = new TileGrid(sections.filmstrip, 'the token through every block', {wide: true});
  // The token's entry in the atlas: the Atlas tab shows the block and token picked here.
  stats.addEventListener('click', (event) => {
    if (!event.target.closest('a[data-atlas]')) return;
    event.preventDefault();
    store.set({hoverToken: null});
    ctx.openTab('atlas');
    // The tab's parts are mounted once it is shown: ask for the picked token as soon as its button is there.
    const started = performance.now();
    const ask = () => {
      const button = document.querySelector('#atlas-picked');
      if (button) button.click();
      else if (performance.now() - started < 5000) requestAnimationFrame(ask);
    };
    ask();
  });
  const {store} = ctx;

  gallery.grid.addEventListener('pointerover', (event) => {
    const tile = event.target.closest('.dvx-tile');
    if (tile) store.set({hoverToken: Number(tile.dataset.index)});
  });
  gallery.grid.addEventListener('pointerleave', () => store.set({hoverToken: null}));
  gallery.grid.addEventListener('click', (event) => {
    const tile = event.target.closest('.dvx-tile');
    if (!tile) return;
    store.set({token: Number(tile.dataset.index), hoverToken: null});
    bringIntoView(detail.figure);
  });
  gallery.grid.addEventListener('keydown', (event) => {
    const {state} = store;
    if (!state.primary) return;
    const steps = {ArrowLeft: -1, ArrowRight: 1};
    if (event.key in steps) {
      store.set({token: Math.min(state.primary.tokens - 1, Math.max(0, state.token + steps[event.key])), hoverToken: null});
    } else if (event.key === 'ArrowUp' || event.key === 'ArrowDown') {
      ctx.stepBlock(event.key === 'ArrowDown' ? 1 : -1);
    } else return;
    event.preventDefault();
  });
  box.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || !store.state.primary) return;
    const count = store.state.primary.tokens, number = Number(box.value);
    if (box.value === '' || !Number.isInteger(number)) boxError.textContent = ` Token must be a whole number from 0 to ${count - 1}.`;
    else if (number < 0 || number >= count) boxError.textContent = ` Token ${number} does not exist: this image has tokens 0 to ${count - 1}.`;
    else { boxError.textContent = ''; store.set({token: number, hoverToken: null}); }
  });
  follow(detail.canvas, {
    move: (x, y) => {
      const {state} = store, view = ctx.blockView(state);
      if (!view) return;
      const token = ctx.displayedToken(state);
      detail.say(valueText(view.data.tokens(token), cellAt(state.primary.display, view.block.stage, x, y),
                               `token ${token}'s attention`));
    },
    leave: () => detail.say(''),
  });
  strip.grid.addEventListener('click', (event) => {
    const tile = event.target.closest('.dvx-tile');
    if (tile && tile.dataset.block) store.set({block: tile.dataset.block});
  });
  new ResizeObserver(() => store.state.primary && gallery.layout(store.state.primary.homeGrid[1])).observe(gallery.grid);

  function drawGallery(state, view) {
    const data = state.primary, style = ctx.style(state), stage = view.block.stage;
    gallery.setCount(data.tokens);
    gallery.layout(data.homeGrid[1]);
    const tops = Array.from(view.data.tokenTops);
    const shared = Math.max(...tops);
    for (let token = 0; token < data.tokens; token++) {
      const image = paintStored(data.thumbnail, stage, view.data.tokens(token), style, data.tables, shared);
      gallery.draw(token, image, `token ${token}`, {token});
    }
    gallery.setKey(attentionKey(data, style, tops, {small: true, uniform: view.data.info.uniform}));
    gallery.grid.setAttribute('aria-label', `every token's map, ${view.block.label}`);
  }

  function drawDetail(state, view) {
    const data = state.primary, style = ctx.style(state), token = ctx.displayedToken(state);
    const {image, key} = tokenPicture(ctx.cache, data, view.block, view.fusion, token, view.data.tokens(token), style);
    detail.show(image, key, `token ${token}, ${view.block.label}`);
    stats.innerHTML = statisticsText(token, view.block.label, view.data.statistics(token), data.homeGrid) +
      `<p class="dvx-atlas-link"><a href="#" data-atlas>token ${token} across the dataset (Atlas)</a></p>`;
    detail.figure.dataset.token = token;
  }

  function drawStrip(state) {
    const data = state.primary, style = ctx.style(state), token = ctx.displayedToken(state);
    const series = data.blocks.map((block, index) => ({block, data: ctx.blockData(data, index, data.fusionIn(index, state.fusion))}));
    if (series.some((item) => !item.data)) return;  // drawn when the heads arrive
    strip.setCount(series.length);
    const tops = series.map((item) => item.data.tokens(token).top);
    const shared = Math.max(...tops);
    series.forEach((item, index) => {
      const stored = item.data.tokens(token), area = item.data.statistics(token).area50;
      const spread = Number.isFinite(area) ? `half on ${share(area)}` : 'no mass';
      strip.draw(index, paintStored(data.thumbnail, item.block.stage, stored, style, data.tables, shared),
                 `${item.block.label} · ${spread}`, {block: item.block.label});
    });
    const uniforms = new Set(series.map((item) => item.data.info.uniform));
    strip.setKey(attentionKey(data, style, tops, {small: true, note: data.meta.notes.spread,
                                                  uniform: uniforms.size === 1 ? [...uniforms][0] : null}));
  }

  function markSelection(state) {
    for (const tile of gallery.tiles) {
      const index = Number(tile.element.dataset.index);
      tile.element.classList.toggle('selected', index === state.token);
      tile.element.setAttribute('aria-selected', index === state.token ? 'true' : 'false');
      tile.element.classList.toggle('hovered', index === state.hoverToken);
    }
    if (document.activeElement !== box) box.value = state.token;
  }

  store.subscribe(whileShown(root, (state, changed) => {
    const view = shownView(root, ctx, state, 'Analyse an image to see its tokens.');
    if (!view) return;
    const drawing = touched(changed, 'primary', 'block', 'fusion', 'scale', 'colormap', 'opacity', 'arrived');
    if (drawing) drawGallery(state, view);
    if (drawing || touched(changed, 'token', 'hoverToken')) {
      drawDetail(state, view);
      drawStrip(state);
    }
    if (drawing || touched(changed, 'token', 'hoverToken')) markSelection(state);
    box.max = state.primary.tokens - 1;
  }, store));
}
