// The Compare tab: one token on two images side by side (or on one image at two blocks), the pointer
// mirrored on both, in each image's own coordinates, and one colour key for the pair on a shared scale.

import {cellAt, ring} from './draw.js';
import {attentionKey} from './keys.js';
import {buildSections, notice, whileShown} from './layout.js';
import {MapPicture, follow, tokenPicture} from './pictures.js';
import {touched} from './store.js';
import {valueText} from './readout.js';

export function mountCompare(root, ctx, views) {
  const {store} = ctx;
  root.insertAdjacentHTML('beforeend', '<div class="dvx-compare-controls">' +
    '<label class="dvx-select">Token <input type="number" min="0" step="1" class="dvx-compare-token"></label>' +
    '<label class="dvx-select">Right-hand block <select class="dvx-compare-block"></select></label>' +
    '<span class="dvx-compare-said"></span></div><div class="dvx-key dvx-pair-key"></div>');
  const tokenInput = root.querySelector('.dvx-compare-token');
  const blockChoice = root.querySelector('.dvx-compare-block');
  const said = root.querySelector('.dvx-compare-said');
  const pairKey = root.querySelector('.dvx-pair-key');
  // A side downloads as the token's picture of its own image at its own block.
  const sections = buildSections(root, views, (name, format) => {
    const state = store.state, side = sidesOf(state)[name === 'compare_left' ? 'left' : 'right'];
    return ctx.figureUrl('token_image', format, {key: side.data.key, block: side.data.blocks[side.index].label,
                                                 fusion: side.data.fusionIn(side.index, state.fusion)});
  });
  const sides = {left: new MapPicture(sections.compare_left, 'the token on the first image'),
                 right: new MapPicture(sections.compare_right, 'the token on the second image')};
  for (const picture of Object.values(sides)) {
    picture.canvas.insertAdjacentHTML('afterend', '<canvas class="dvx-marker"></canvas>');
    picture.marker = picture.canvas.nextElementSibling;
  }

  tokenInput.addEventListener('change', () => {
    const number = Number(tokenInput.value), count = store.state.primary ? store.state.primary.tokens : 0;
    if (Number.isInteger(number) && number >= 0 && number < count) store.set({token: number, hoverToken: null});
  });
  blockChoice.addEventListener('change', () => store.set({compareBlock: blockChoice.value}));
  for (const [name, picture] of Object.entries(sides)) {
    follow(picture.marker, {
      move: (x, y) => store.set({comparePoint: [x / picture.marker.width, y / picture.marker.height]}),
      leave: () => store.set({comparePoint: null}),
    });
  }

  // Each side: its analysis and its block (the right-hand one: the second image, or the first at another block).
  function sidesOf(state) {
    const right = state.compare || state.primary;
    // Without a second image, the first at another block: the last one, where the token has merged with the pixels.
    const fallback = state.compare ? state.block : right.blocks[right.blocks.length - 1].label;
    const rightIndex = Math.max(0, right.blockIndex(state.compareBlock || fallback));
    return {
      left: {data: state.primary, index: state.primary.blockIndex(state.block)},
      right: {data: right, index: rightIndex},
    };
  }

  function draw(state) {
    const style = ctx.style(state), token = state.token, chosen = sidesOf(state);
    const maps = {};
    for (const [name, side] of Object.entries(chosen)) {
      const block = ctx.blockData(side.data, side.index, side.data.fusionIn(side.index, state.fusion));
      if (!block) return;
      maps[name] = {side, block, stored: token < side.data.tokens ? block.tokens(token) : null};
    }
    const tops = Object.values(maps).filter((item) => item.stored).map((item) => item.stored.top);
    const shared = style.scale === 'shared' ? Math.max(...tops) : null;
    for (const [name, item] of Object.entries(maps)) {
      const picture = sides[name], data = item.side.data, block = data.blocks[item.side.index];
      if (!item.stored) {
        picture.message(`This image has tokens 0 to ${data.tokens - 1} only.`);
        continue;
      }
      const fusion = data.fusionIn(item.side.index, state.fusion);
      const {image, key} = tokenPicture(ctx.cache, data, block, fusion, token, item.stored, style,
                                        shared !== null ? shared : item.stored.top);
      picture.show(image, shared !== null ? '' : key, `token ${token}, ${block.label}`);
      picture.title(`token ${token}, ${block.label}${data === state.primary ? '' : ' (second image)'} · ${data.meta.resolution}`);
      picture.marker.width = data.display.width; picture.marker.height = data.display.height;
      picture.figure.dataset.token = token;
      picture.figure.dataset.block = block.label;
    }
    pairKey.innerHTML = shared !== null ? attentionKey(state.primary, style, tops, {single: true, note: 'one key for the pair'}) : '';
    const left = state.primary, right = chosen.right.data;
    const scaleSaid = style.scale === 'per map'
      ? ' Each side is coloured to its own peak (see its key): choose the shared colour scale to compare how much.' : '';
    said.textContent = (right === left
      ? 'No second image: the right-hand side shows this image at another block. Analyse a second image above to compare two.'
      : (left.homeGrid.join('×') !== right.homeGrid.join('×')
        ? `The home grids differ (${left.homeGrid.join('×')} and ${right.homeGrid.join('×')}): a token number names another query on each.`
        : '')) + scaleSaid;
  }

  function drawPointer(state) {
    const chosen = sidesOf(state);
    for (const [name, picture] of Object.entries(sides)) {
      const context = picture.marker.getContext('2d');
      context.clearRect(0, 0, picture.marker.width, picture.marker.height);
      const side = chosen[name];
      if (!state.comparePoint || state.token >= side.data.tokens) { picture.say(''); continue; }
      const x = state.comparePoint[0] * picture.marker.width, y = state.comparePoint[1] * picture.marker.height;
      ring(context, x, y, Math.max(4, Math.round(picture.marker.width / 60)), 2);
      const block = ctx.blockData(side.data, side.index, side.data.fusionIn(side.index, state.fusion));
      if (!block) continue;
      const stage = side.data.blocks[side.index].stage;
      picture.say(valueText(block.tokens(state.token), cellAt(side.data.display, stage, x, y), `token ${state.token}'s attention`));
    }
  }

  store.subscribe(whileShown(root, (state, changed) => {
    if (!state.primary) { notice(root, state.loading || 'Analyse an image, then compare one token on two images here.'); return; }
    notice(root, '');
    const right = state.compare || state.primary;
    if (touched(changed, 'primary', 'compare')) {
      blockChoice.innerHTML = right.blocks.map((block) => `<option>${block.label}</option>`).join('');
    }
    blockChoice.value = right.blocks[sidesOf(state).right.index].label;
    tokenInput.max = state.primary.tokens - 1;
    if (document.activeElement !== tokenInput) tokenInput.value = state.token;
    if (touched(changed, 'primary', 'compare', 'block', 'compareBlock', 'fusion', 'scale', 'colormap', 'opacity', 'token', 'arrived')) {
      draw(state);
    }
    drawPointer(state);
  }, store));
}
