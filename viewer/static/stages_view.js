// The Stages tab: the last block of each stage for one token or the mean over tokens, the class token's
// attention, the tokens' attention to each other at the block, and where Merge-block attention goes.

import {cellAt, paintStored} from './draw.js';
import {heatmap, quadrantBars} from './charts.js';
import {attentionKey, barKey, escape, g3, share} from './keys.js';
import {buildSections, shownView, whileShown} from './layout.js';
import {MapPicture, TileGrid, follow} from './pictures.js';
import {touched} from './store.js';
import {valueText} from './readout.js';

export function mountStages(root, ctx, views) {
  const {store} = ctx;
  root.insertAdjacentHTML('beforeend', '<label class="dvx-select">Token (or the mean over tokens) ' +
    '<select class="dvx-stage-token"></select></label>');
  const choice = root.lastElementChild.querySelector('select');
  const sections = buildSections(root, views, ctx.figureUrl);
  const stages = new TileGrid(sections.stages, 'the last block of each stage', {wide: true});
  const classPicture = new MapPicture(sections.class_attention, 'class attention');
  sections.semantic_self.insertAdjacentHTML('beforeend',
    '<canvas class="dvx-heatmap"></canvas><p class="dvx-readout"></p><div class="dvx-key"></div>');
  const heat = sections.semantic_self.querySelector('canvas');
  const heatReadout = sections.semantic_self.querySelector('.dvx-readout');
  const heatKey = sections.semantic_self.querySelector('.dvx-key');
  sections.merge_quadrants.insertAdjacentHTML('beforeend', '<canvas class="dvx-chart"></canvas>');
  const quadrants = sections.merge_quadrants.querySelector('canvas');
  let cells = null;

  choice.addEventListener('change', () => store.set({stageToken: choice.value === '' ? null : Number(choice.value)}));
  heat.addEventListener('pointermove', (event) => {
    const found = cells && cells.cellAt(event.offsetX, event.offsetY);
    heatReadout.textContent = found ? `token ${found.query} reads token ${found.key}: ${found.value.toFixed(4)}` : '';
  });
  follow(classPicture.canvas, {
    move: (x, y) => {
      const {state} = store;
      if (state.primary) {
        const map = state.primary.classMap(state.fusion);
        classPicture.say(valueText(map, cellAt(state.primary.display, 4, x, y), "the class token's attention"));
      }
    },
    leave: () => classPicture.say(''),
  });
  stages.grid.addEventListener('click', (event) => {
    const tile = event.target.closest('.dvx-tile');
    if (tile && tile.dataset.block) store.set({block: tile.dataset.block});
  });

  function drawChoice(state) {
    const tokens = state.primary.tokens;
    if (choice.options.length !== tokens + 1) {
      choice.innerHTML = '<option value="">mean over tokens</option>' +
        Array.from({length: tokens}, (_, i) => `<option value="${i}">${i}</option>`).join('');
    }
    choice.value = state.stageToken === null ? '' : String(state.stageToken);
  }

  function drawStages(state) {
    const data = state.primary, style = ctx.style(state), token = state.stageToken;
    const series = data.stageBlocks().map((index) => ({block: data.blocks[index],
      data: ctx.blockData(data, index, data.fusionIn(index, state.fusion))}));
    if (series.some((item) => !item.data)) return;
    stages.setCount(series.length);
    const maps = series.map((item) => token === null ? item.data.mean : item.data.tokens(token));
    const shared = Math.max(...maps.map((map) => map.top));
    series.forEach((item, index) => {
      const area = token === null ? item.data.info.meanArea50 : item.data.statistics(token).area50;
      const spread = Number.isFinite(area) ? `half on ${share(area)}` : 'no mass';
      stages.draw(index, paintStored(data.thumbnail, item.block.stage, maps[index], style, data.tables, shared),
                  `${item.block.label} · ${spread}`, {block: item.block.label});
    });
    const uniforms = new Set(maps.map((map) => map.uniform));
    stages.setKey(attentionKey(data, style, maps.map((map) => map.top), {small: true, note: data.meta.notes.spread,
                                                                        uniform: uniforms.size === 1 ? [...uniforms][0] : null}));
  }

  function drawClass(state) {
    const data = state.primary, style = ctx.style(state), map = data.classMap(state.fusion);
    const image = paintStored(data.display, 4, map, style, data.tables, map.top, true);
    const headNote = data.classFusion(state.fusion) === state.fusion ? ''
      : `mean of the class block's heads (${state.fusion} is a head of ${state.block}, not of the class block)`;
    classPicture.show(image, attentionKey(data, style, [map.top], {single: true, note: headNote, uniform: map.uniform}),
                      'class attention');
  }

  function drawSelf(state, view) {
    const data = state.primary, size = data.tokens;
    const title = view.block.kind === 'dual' ? `semantic self-attention, ${view.block.label}`
      : `token-to-token part of the joint attention, ${view.block.label}`;
    cells = heatmap(heat, view.data.self, view.data.selfTops, size, data.tables.colormaps.inferno, title);
    heatKey.innerHTML = barKey(data.tables.ramps.inferno, 'attention weight', '0', g3(cells.most),
                               'row: the query token; column: the token it reads; hover to read a cell');
    heat.setAttribute('aria-label', escape(title));
  }

  store.subscribe(whileShown(root, (state, changed) => {
    const view = shownView(root, ctx, state, 'Analyse an image to see its stages.');
    if (!view) return;
    const drawing = touched(changed, 'primary', 'fusion', 'scale', 'colormap', 'opacity', 'arrived');
    if (drawing || touched(changed, 'stageToken')) { drawChoice(state); drawStages(state); }
    if (drawing || touched(changed, 'block')) drawClass(state);
    if (drawing || touched(changed, 'block')) drawSelf(state, view);
    if (touched(changed, 'primary')) quadrantBars(quadrants, state.primary.meta.quadrants);
  }, store));
}
