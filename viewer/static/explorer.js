// The live explorer: the analysis's maps come to the browser once (viewer/payload.py), and every map view
// of the Semantic tokens, Pixels, Stages and Compare tabs is drawn here from them, following the pointer.
//
// Each of the page's live parts is a gr.HTML whose js_on_load calls mount(); they share one Store. The
// "controls" part holds the selection: the server sets its value to load an analysis, and it keeps the
// selection as its value for the server's own events (the tour, the explanations, the export).

import {AnalysisData} from './data.js';
import {fetchPayload} from './payload.js';
import {PictureCache} from './pictures.js';
import {Store} from './store.js';
import {bringIntoView} from './layout.js';
import {mountTokens} from './tokens_view.js';
import {mountPixels} from './pixels_view.js';
import {mountStages} from './stages_view.js';
import {mountCompare} from './compare_view.js';
import {present} from './deck.js';

const SELECTION = ['block', 'fusion', 'scale', 'colormap', 'opacity', 'token', 'point', 'stageToken'];
const STYLE = ['scale', 'colormap', 'opacity'];

function createExplorer() {
  const awaited = new WeakSet();  // the fetches of a block's other heads whose arrival is already awaited
  const store = new Store({
    primary: null, compare: null, loading: null, arrived: 0,
    block: null, fusion: 'mean', scale: 'per map', colormap: 'inferno', opacity: 0.8,
    token: 0, hoverToken: null, point: null, hoverPoint: null, stageToken: null,
    ownerHover: null, ownerIsolated: null, compareBlock: null, comparePoint: null,
  });
  const ctx = {
    store,
    cache: new PictureCache(48),
    style: (state) => ({scale: state.scale, colormap: state.colormap, opacity: state.opacity}),
    displayedToken: (state) => (state.hoverToken !== null ? state.hoverToken : state.token),
    displayedPoint: (state) => state.hoverPoint || state.point ||
      [state.primary.display.width / 2, state.primary.display.height / 2],
    // A block's data for a fusion: at once for the head mean, else once fetched (null until then; its
    // arrival, said once, redraws the views).
    blockData(data, index, fusion) {
      const found = data.blockData(index, fusion);
      if (!(found instanceof Promise)) return found;
      if (!awaited.has(found)) {
        awaited.add(found);
        found.then(() => store.set({arrived: store.state.arrived + 1}),
                   (error) => store.set({loading: `The heads could not be loaded: ${error.message}`}));
      }
      return null;
    },
    blockView(state) {
      const data = state.primary;
      if (!data) return null;
      const index = Math.max(0, data.blockIndex(state.block));
      const fusion = data.fusionIn(index, state.fusion);
      const found = ctx.blockData(data, index, fusion);
      return found && {block: data.blocks[index], data: found, fusion, index};
    },
    stepBlock(step) {
      const data = store.state.primary;
      const index = Math.min(data.blocks.length - 1, Math.max(0, data.blockIndex(store.state.block) + step));
      setBlock(data.blocks[index].label);
    },
    // Where the server draws one view of the selection as a file (viewer/live.py's figure route).
    // ``side``: another analysis and block than the selection's (Compare's right-hand picture).
    figureUrl(name, format, side = null) {
      const state = store.state;
      const asked = new URLSearchParams({block: side ? side.block : state.block, fusion: side ? side.fusion : state.fusion,
                                         scale: state.scale, colormap: state.colormap, opacity: state.opacity,
                                         token: state.token});
      if (state.point) asked.set('point', state.point.join(','));
      if (state.stageToken !== null) asked.set('stageToken', state.stageToken);
      const key = side ? side.key : state.primary.key;
      return new URL(`explorer-figure/${key}/${name}.${format}?${asked}`, document.baseURI).href;
    },
    openTab(name) {
      const tab = document.querySelector(`[role=tab][id$="${name}-button"], button[role=tab][aria-controls*="${name}"]`);
      const byTitle = [...document.querySelectorAll('[role=tab]')].find((element) => element.textContent.trim() === TAB_TITLES[name]);
      (tab || byTitle)?.click();
    },
  };
  const TAB_TITLES = {tokens: 'Semantic tokens', pixels: 'Pixels', stages: 'Stages', compare: 'Compare', atlas: 'Atlas'};

  function setBlock(label) {
    const data = store.state.primary;
    const block = data.blocks[data.blockIndex(label)];
    const fusion = block.fusions.includes(store.state.fusion) ? store.state.fusion : 'mean';
    store.set({block: label, fusion, ownerIsolated: null, ownerHover: null});
  }
  ctx.setBlock = setBlock;

  // Loads of the same part overtake each other: only the latest is shown.
  const loads = {primary: 0, compare: 0};
  async function load(which, reference) {
    const ticket = ++loads[which];
    store.set(which === 'primary' ? {loading: 'Loading the maps…'} : {});
    try {
      const data = new AnalysisData(await fetchPayload(reference.url), reference.key, reference.url);
      if (ticket !== loads[which]) { data.release(); return; }
      const old = store.state[which];
      if (which === 'primary') {
        ctx.cache.clear();  // the pictures of the analysis it replaces
        store.set({primary: data, loading: null, block: data.meta.opening, fusion: 'mean', token: data.meta.lead,
                   hoverToken: null, point: null, hoverPoint: null, stageToken: null, ownerHover: null,
                   ownerIsolated: null, compareBlock: null});
      } else {
        store.set({compare: data, compareBlock: data.blockIndex(store.state.block) >= 0 ? store.state.block : data.meta.opening});
      }
      if (old) old.release();
      // On a phone the answer lies a screen or more below the Analyse button: bring it into view. The server
      // draws the tour once the live views are drawn.
      if (which === 'primary') {
        bringIntoView(document.querySelector('#prediction'));
        requestAnimationFrame(() => requestAnimationFrame(() => explorer.askForTour && explorer.askForTour()));
      }
      window.dispatchEvent(new CustomEvent('dualvit:loaded', {detail: {which, key: data.key, bytes: data.bytes}}));
    } catch (error) {
      if (ticket === loads[which]) store.set({loading: `The maps could not be loaded: ${error.message}`});
    }
  }
  return {store, ctx, load};
}

let explorer = null;

function controls(element, props, watch, trigger) {
  const {store, ctx, load} = explorer;
  element.innerHTML = '<div class="dvx-controls">' +
    '<label>Block <select data-control="block"></select></label>' +
    '<label>Heads <select data-control="fusion"></select></label>' +
    '<label>Colour scale <select data-control="scale"></select></label>' +
    '<label>Colormap <select data-control="colormap"></select></label>' +
    '<label class="dvx-opacity">Opacity <input type="range" min="0" max="1" step="0.05" data-control="opacity"><output></output></label>' +
    '</div>';
  const field = (name) => element.querySelector(`[data-control="${name}"]`);
  const options = (select, values) => {
    const html = values.map((value) => `<option>${value}</option>`).join('');
    if (select.dataset.options !== html) { select.innerHTML = html; select.dataset.options = html; }
  };
  options(field('scale'), props.scales);
  options(field('colormap'), props.colormaps);
  field('block').addEventListener('change', (event) => ctx.setBlock(event.target.value));
  field('fusion').addEventListener('change', (event) => store.set({fusion: event.target.value}));
  field('scale').addEventListener('change', (event) => store.set({scale: event.target.value}));
  field('colormap').addEventListener('change', (event) => store.set({colormap: event.target.value}));
  field('opacity').addEventListener('input', (event) => store.set({opacity: Number(event.target.value)}));
  // The tour is drawn by the server: a new analysis, or a new drawing once the control is let go, asks for it.
  explorer.askForTour = () => { publish(); trigger('submit'); };
  for (const name of STYLE) field(name).addEventListener('change', explorer.askForTour);

  function publish() {
    const {state} = store;
    const selection = Object.fromEntries(SELECTION.map((name) => [name, state[name]]));
    props.value = {...(props.value || {}), selection, key: state.primary ? state.primary.key : null};
  }
  store.subscribe((state, changed) => {
    if (state.primary) {
      options(field('block'), state.primary.blocks.map((block) => block.label));
      const block = state.primary.blocks[state.primary.blockIndex(state.block)];
      options(field('fusion'), block ? block.fusions : ['mean']);
    }
    field('block').value = state.block || '';
    field('fusion').value = state.fusion;
    field('scale').value = state.scale;
    field('colormap').value = state.colormap;
    field('opacity').value = state.opacity;
    element.querySelector('.dvx-opacity output').textContent = Number(state.opacity).toFixed(2);
    if (SELECTION.some((name) => changed.has(name)) || changed.has('primary')) publish();
  });
  const loadFromValue = () => {
    const reference = props.value && props.value.load;
    if (reference && (!store.state.primary || store.state.primary.key !== reference.key)) load('primary', reference);
  };
  watch('value', loadFromValue);
  loadFromValue();
}

function second(props, watch) {
  const {store, load} = explorer;
  const loadFromValue = () => {
    const reference = props.value && props.value.load;
    if (reference && (!store.state.compare || store.state.compare.key !== reference.key)) load('compare', reference);
  };
  watch('value', loadFromValue);
  loadFromValue();
}

// The Tour tab as a presenter: one step at a time, Previous and Next, arrow keys, full screen.
function presenter(root) {
  const panel = root.closest('[role="tabpanel"]') || root.parentElement;
  const steps = [...panel.querySelectorAll('[id^="tour-step-"]')];
  if (!steps.length || panel.dataset.presenting) return;
  panel.dataset.presenting = 'yes';
  panel.classList.add('dvx-presenter');
  present(panel, steps, {barIn: root});
}

const VIEWS = {tokens: mountTokens, pixels: mountPixels, stages: mountStages, compare: mountCompare};

export function mount(element, props, watch, trigger) {
  if (!explorer) {
    explorer = createExplorer();
    window.dualvitExplorer = explorer;  // for the tests and the benches
  }
  const root = element.querySelector('.dvx-root') || element;
  const role = props.role;
  if (role === 'controls') controls(root, props, watch, trigger);
  else if (role === 'presenter') presenter(root);
  else {
    if (role === 'compare') second(props, watch);
    VIEWS[role](root, explorer.ctx, props.views || []);
    // A part mounted late (a tab opened for the first time) draws what is there already.
    const {store} = explorer;
    if (store.state.primary) {
      for (const listener of [...store.listeners].slice(-1)) listener(store.state, new Set(Object.keys(store.state)));
    }
  }
}
