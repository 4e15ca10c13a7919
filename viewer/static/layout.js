// A tab's views laid out from the catalogue (viewer/catalogue.py, sent with the page): one section per view,
// a view marked "beside" in the row of the view before it, each with its title and its help text.

import {escape} from './keys.js';

// A view drawn here gets links that download it as a slide-ready figure (PNG, SVG, PDF) of the selection drawn
// now: the server draws it (viewer/export.py), headed, keyed and stamped as every exported figure is.
const FORMATS = ['png', 'svg', 'pdf'];

function downloadLinks(view, figureUrl) {
  const links = FORMATS.map((format) => `<a href="#" download="${escape(view.name)}.${format}" data-format="${format}">` +
    `${format.toUpperCase()}</a>`).join('');
  const element = document.createElement('div');
  element.className = 'dvx-download';
  element.innerHTML = `<span>Download as a figure:</span>${links}`;
  element.addEventListener('click', (event) => {
    const link = event.target.closest('a[data-format]');
    if (link) link.href = figureUrl(view.name, link.dataset.format);  // the selection at the moment of the click
  });
  return element;
}

export function buildSections(root, views, figureUrl = null) {
  const sections = {};
  let row = null;
  for (const view of views) {
    if (!view.beside || !row) {
      root.insertAdjacentHTML('beforeend', '<div class="dvx-row"></div>');
      row = root.lastElementChild;
    }
    row.insertAdjacentHTML('beforeend',
      `<section class="dvx-view" id="${escape(view.elemId)}" data-view="${escape(view.name)}">` +
      (view.title ? `<h4 class="dvx-title">${escape(view.title)}</h4>` : '') +
      '<div class="dvx-body"></div>' +
      (view.help ? `<p class="explanation dvx-help">${escape(view.help)}</p>` : '') + '</section>');
    const section = row.lastElementChild;
    if (view.downloadable && figureUrl) section.querySelector('.dvx-body').after(downloadLinks(view, figureUrl));
    sections[view.name] = section.querySelector('.dvx-body');
  }
  return sections;
}

export function notice(root, text) {
  let element = root.querySelector(':scope > .dvx-notice');
  if (!element) {
    root.insertAdjacentHTML('afterbegin', '<p class="view-message dvx-notice"></p>');
    element = root.firstElementChild;
  }
  element.textContent = text || '';
  element.hidden = !text;
}

// The block a tab draws, or null with a notice saying why not: no analysis yet (`empty`), or its heads still on
// their way.
export function shownView(root, ctx, state, empty) {
  if (!state.primary) { notice(root, state.loading || empty); return null; }
  const view = ctx.blockView(state);
  notice(root, view ? '' : 'Loading the heads of this block…');
  return view;
}

// Bring an element into the screen if it is not, on a narrow screen (a phone), where it may lie far below.
export function bringIntoView(element) {
  if (!element || window.innerWidth > 820) return;
  const box = element.getBoundingClientRect();
  if (box.top < 0 || box.top > window.innerHeight * 0.6) window.scrollTo({top: window.scrollY + box.top - 8, behavior: 'instant'});
}

// A view's listener that draws only while its tab is shown: changes made while it is hidden are kept and
// drawn at once when it is shown again (the tab's panel takes a size).
export function whileShown(root, listener, store) {
  let missed = new Set();
  const shown = () => root.offsetParent !== null;
  new ResizeObserver(() => {
    if (shown() && missed.size) {
      const changed = missed;
      missed = new Set();
      listener(store.state, changed);
    }
  }).observe(root);
  return (state, changed) => {
    if (!shown()) { for (const name of changed) missed.add(name); return; }
    if (missed.size) { for (const name of missed) changed.add(name); missed = new Set(); }
    listener(state, changed);
  };
}
