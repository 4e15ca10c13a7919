// One analysis as the live views read it: its pictures, its blocks' maps (head means from the analysis's
// payload; another fusion of a block fetched once when chosen), the drawing tables. Every number here was
// computed by the server (viewer/payload.py); this only finds them.

import {fetchPayload, row} from './payload.js';

export class Picture {
  constructor(meta, arrays, size) {
    const said = meta.pictures[size];
    this.width = said.width;
    this.height = said.height;
    this.lineWidth = said.lineWidth;
    this.crops = said.crops;
    this.labelScale = said.labelScale;
    this.backdrop = arrays[`${size}/backdrop`];
    this.homes = arrays[`${size}/homes`];
    this.rows = {}; this.columns = {}; this.gridWidths = {};
    for (const stage of [1, 2, 3, 4]) {
      this.rows[stage] = arrays[`${size}/cells${stage}/rows`];
      this.columns[stage] = arrays[`${size}/cells${stage}/columns`];
      this.gridWidths[stage] = meta.grids[stage][1];
    }
  }

  home(token) {
    return Array.from(row(this.homes, token));
  }
}

// A stored map: one byte a cell, its top (multiples of uniform), its mass levels, its uniform weight.
function storedMaps(arrays, prefix, uniform, stage) {
  const cells = arrays[`${prefix}/cells`], tops = arrays[`${prefix}/tops`], mass = arrays[`${prefix}/mass`];
  const totals = arrays[`${prefix}/totals`];
  return (index) => ({cells: row(cells, index), top: tops[index], mass: row(mass, index), total: totals[index],
                      uniform, stage});
}

export class BlockData {
  constructor(arrays, prefix, info, block) {
    this.info = info;
    this.block = block;
    this.tokens = storedMaps(arrays, `${prefix}/tokens`, info.uniform, block.stage);
    this.tokenTops = arrays[`${prefix}/tokens/tops`];
    this.mean = storedMaps(arrays, `${prefix}/mean`, info.uniform, block.stage)(0);
    this.stats = arrays[`${prefix}/stats`];
    this.reads = arrays[`${prefix}/reads`];
    this.readTops = arrays[`${prefix}/readTops`];
    this.topTokens = arrays[`${prefix}/topTokens`];
    this.owners = arrays[`${prefix}/owners`];
    this.ownerColours = arrays[`${prefix}/ownerColours`];
    this.self = arrays[`${prefix}/self`];
    this.selfTops = arrays[`${prefix}/selfTops`];
  }

  // What the pixel in `cell` reads from each token (its values, reconstructed from their bytes).
  readsAt(cell) {
    const bytes = row(this.reads, cell), top = this.readTops[cell];
    return Float64Array.from(bytes, (byte) => byte / 255 * top);
  }

  topAt(cell) {
    return Array.from(row(this.topTokens, cell));
  }

  statistics(token) {
    const [entropy, normalisedEntropy, peak, peakRow, peakColumn, area50, mass] = row(this.stats, token);
    return {entropy, normalisedEntropy, peak, peakCell: [peakRow, peakColumn], area50, mass};
  }
}

export class AnalysisData {
  constructor(payload, key, url) {
    const {meta, arrays} = payload;
    this.key = key;
    this.url = url;
    this.meta = meta;
    this.arrays = arrays;
    this.bytes = payload.bytes;
    this.tokens = meta.tokens;
    this.homeGrid = meta.homeGrid;
    this.blocks = meta.blocks;
    this.display = new Picture(meta, arrays, 'display');
    this.thumbnail = new Picture(meta, arrays, 'thumbnail');
    this.tables = {
      colormaps: Object.fromEntries(meta.colormaps.map((name) => [name, arrays[`colormap/${name}`]])),
      ramps: Object.fromEntries(meta.colormaps.map((name) => [name, arrays[`ramp/${name}`]])),
      bands: Object.fromEntries(meta.colormaps.map((name) => [name, arrays[`bands/${name}`]])),
      bandWeights: meta.bandWeights, dim: arrays.dimming, palette: arrays.ownerPalette,
    };
    this.fused = new Map();  // "block index|fusion" -> BlockData (a promise while it is fetched)
    this.blocks.forEach((block, index) => this.fused.set(`${index}|mean`, new BlockData(arrays, block.mean.name, block.mean, block)));
    this.photoUrl = URL.createObjectURL(new Blob([arrays.photo], {type: 'image/jpeg'}));
  }

  blockIndex(label) {
    return this.blocks.findIndex((block) => block.label === label);
  }

  // The block's data for `fusion`: at once for the head mean; otherwise a promise, fetched once.
  blockData(index, fusion) {
    const name = `${index}|${fusion}`;
    if (this.fused.has(name)) return this.fused.get(name);
    const block = this.blocks[index];
    const url = `${this.url}/${block.stage}/${block.block}/${encodeURIComponent(fusion)}`;
    const promise = fetchPayload(url).then(({meta, arrays}) => {
      const data = new BlockData(arrays, 'block', meta.block, block);
      this.fused.set(name, data);
      return data;
    });
    this.fused.set(name, promise);
    return promise;
  }

  // The fusion a block takes when `fusion` names a head it lacks (views across blocks fall back to the mean).
  fusionIn(index, fusion) {
    return this.blocks[index].fusions.includes(fusion) ? fusion : 'mean';
  }

  // The fusion the class attention takes for `fusion`: its heads are not any block's, so a head is the mean.
  classFusion(fusion) {
    return ['mean', 'max', 'min'].includes(fusion) ? fusion : 'mean';
  }

  classMap(fusion) {
    return storedMaps(this.arrays, `class/${this.classFusion(fusion)}`, this.meta.classUniform, 4)(0);
  }

  // The last block of each stage that has token maps, in order.
  stageBlocks() {
    const last = new Map();
    this.blocks.forEach((block, index) => last.set(block.stage, index));
    return [...last.values()];
  }

  release() {
    URL.revokeObjectURL(this.photoUrl);
  }
}
