// The building blocks of the live views: a large picture with its key and a readout of what lies under the
// pointer, a grid of tiles, a small cache of drawn pictures, and one token's large picture.

import {homeBox, paintStored, put} from './draw.js';
import {attentionKey, escape} from './keys.js';

// Where a pointer event falls on a canvas, in the canvas's own pixels.
export function pointOn(canvas, event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

// Pointer, touch and click on an element: `move(x, y)` as the pointer moves or a finger drags, `leave()` when
// it goes, `pick(x, y)` on a click or tap.
export function follow(canvas, {move, leave, pick}) {
  // Every move goes straight to the store, which draws once per frame whatever came in between.
  let down = false;
  canvas.addEventListener('pointermove', (event) => {
    if (event.pointerType === 'touch' && !down) return;
    move && move(...pointOn(canvas, event));
  });
  canvas.addEventListener('pointerdown', (event) => {
    down = true;
    if (event.pointerType === 'touch') {
      try { canvas.setPointerCapture(event.pointerId); } catch (error) { /* the finger is already gone */ }
      move && move(...pointOn(canvas, event));
    }
  });
  const end = () => { down = false; };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  canvas.addEventListener('pointerleave', (event) => {
    if (event.pointerType !== 'touch') leave && leave();
  });
  canvas.addEventListener('click', (event) => pick && pick(...pointOn(canvas, event)));
}

export class MapPicture {
  constructor(container, alt) {
    container.insertAdjacentHTML('beforeend',
      '<figure class="view-picture dvx-picture"><div class="dvx-frame"><canvas></canvas><div class="dvx-labels"></div></div>' +
      '<p class="dvx-readout" aria-live="polite"></p><div class="dvx-key"></div><p class="view-message" hidden></p></figure>');
    this.figure = container.lastElementChild;
    this.canvas = this.figure.querySelector('canvas');
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', alt);
    this.labels = this.figure.querySelector('.dvx-labels');
    this.readout = this.figure.querySelector('.dvx-readout');
    this.key = this.figure.querySelector('.dvx-key');
    this.note = this.figure.querySelector('.view-message');
    this.keyHtml = null;
  }

  show(image, keyHtml, alt) {
    put(this.canvas, image);
    if (alt) this.canvas.setAttribute('aria-label', alt);
    if (keyHtml !== this.keyHtml) { this.key.innerHTML = keyHtml; this.keyHtml = keyHtml; }
    this.canvas.hidden = false;
    this.note.hidden = true;
  }

  say(text) {
    this.readout.textContent = text;
  }

  // A line above the picture naming what it shows.
  title(text) {
    let line = this.figure.querySelector(':scope > .dvx-title-line');
    if (!line) {
      this.figure.insertAdjacentHTML('afterbegin', '<p class="dvx-title-line"></p>');
      line = this.figure.firstElementChild;
    }
    line.textContent = text;
  }

  message(text) {
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  // Numbers written over the picture (HTML, so that they stay sharp at any size), at picture pixels.
  setLabels(labels, width, height, fontPixels) {
    this.labels.innerHTML = labels.map(({text, x, y}) =>
      `<span style="left:${(100 * x / width).toFixed(3)}%;top:${(100 * y / height).toFixed(3)}%;` +
      `font-size:${(100 * fontPixels / width).toFixed(3)}cqw">${escape(text)}</span>`).join('');
  }
}

// A grid of tiles, each a canvas and a caption; `columns`: a fixed number, or null to fill the width.
export class TileGrid {
  constructor(container, label, {selectable = false, wide = false} = {}) {
    container.insertAdjacentHTML('beforeend', `<div class="dvx-key"></div><div class="tile-grid dvx-tiles${wide ? ' wide' : ''}"` +
      ` role="${selectable ? 'listbox' : 'list'}" aria-label="${escape(label)}" tabindex="${selectable ? 0 : -1}"></div>`);
    this.key = container.lastElementChild.previousElementSibling;
    this.grid = container.lastElementChild;
    this.selectable = selectable;
    this.tiles = [];
    this.keyHtml = null;
  }

  setCount(count) {
    if (this.tiles.length === count) return;
    const tag = this.selectable ? 'button' : 'div';
    this.grid.innerHTML = Array.from({length: count}, (_, i) =>
      `<${tag} class="tile dvx-tile"${this.selectable ? ' type="button" role="option"' : ' role="listitem"'} data-index="${i}">` +
      `<canvas></canvas><span class="tile-caption"></span></${tag}>`).join('');
    this.tiles = [...this.grid.children].map((element) => ({element, canvas: element.querySelector('canvas'),
                                                           caption: element.querySelector('.tile-caption')}));
  }

  draw(index, image, caption, attributes = {}) {
    const tile = this.tiles[index];
    put(tile.canvas, image);
    if (tile.caption.textContent !== caption) {
      // On the home grid the tiles are small: "token 12" keeps its number alone.
      tile.caption.innerHTML = escape(caption).replace(/^token /, '<span class="caption-word">token </span>');
    }
    tile.element.title = caption;
    tile.canvas.setAttribute('aria-label', caption);
    for (const [name, value] of Object.entries(attributes)) tile.element.dataset[name] = value;
  }

  setKey(keyHtml) {
    if (keyHtml !== this.keyHtml) { this.key.innerHTML = keyHtml; this.keyHtml = keyHtml; }
  }

  // The home grid's columns where tiles that wide fit, else as many as fill the width.
  layout(columns, minimum = 36) {
    const width = this.grid.clientWidth;
    const fits = columns && width / columns >= minimum;
    this.grid.style.gridTemplateColumns = fits ? `repeat(${columns}, minmax(0, 1fr))` : '';
    this.grid.classList.toggle('on-home-grid', Boolean(fits));
  }
}

// Drawn pictures kept for a moment: moving the pointer back over a token draws it from here.
export class PictureCache {
  constructor(limit = 32) {
    this.limit = limit;
    this.entries = new Map();
  }

  get(key, draw) {
    if (this.entries.has(key)) {
      const value = this.entries.get(key);
      this.entries.delete(key);
      this.entries.set(key, value);
      return value;
    }
    const value = draw();
    this.entries.set(key, value);
    while (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value);
    return value;
  }

  clear() {
    this.entries.clear();
  }
}

// One token's large picture, its map on `top` (its own by default) outlined and its home cell boxed, drawn
// once per analysis, block, heads, scale and style (`cache`); and the key of the map on its own scale.
export function tokenPicture(cache, data, block, fusion, token, stored, style, top = stored.top) {
  const name = `token|${data.key}|${block.label}|${fusion}|${token}|${top}|${style.scale}|${style.colormap}|${style.opacity}`;
  const image = cache.get(name, () => {
    const drawn = paintStored(data.display, block.stage, stored, style, data.tables, top, true);
    homeBox(drawn, data.display.home(token), data.display.lineWidth, data.meta.homeColour);
    return drawn;
  });
  const key = attentionKey(data, style, [stored.top], {single: true, note: data.meta.notes.home, uniform: stored.uniform});
  return {image, key};
}
